import re
import json

import pytest

from lib import files
from lib.config import ConfigError, RunConfig, bucket_labels, parse_set
from lib.experiments.resolve import PRESETS, VARIANTS, make_config


@pytest.mark.parametrize("preset", list(PRESETS))
def test_presets_build_and_round_trip_json(preset, tmp_path):
    cfg = make_config(preset)
    path = tmp_path / "config.json"
    files.write_json(path, cfg.to_dict())
    back = RunConfig.from_dict(files.read_json(path))
    assert back == cfg
    assert json.loads(path.read_text())["preset"] == preset


@pytest.mark.parametrize("variant", list(VARIANTS))
def test_every_variant_builds_on_every_preset(variant):
    for preset in PRESETS:
        assert make_config(preset, variant).variant == variant


def test_variants_scale_relative_to_cpu_presets():
    quick = make_config("cpu-quick")
    assert make_config("cpu-quick", "iterations-32").model.iterations == 2 * quick.model.iterations
    assert make_config("gpu-paper", "iterations-32").model.iterations == 32
    assert make_config("cpu-quick", "scale-wide").model.d_model == 2 * quick.model.d_model  # d256 against d128
    assert make_config("cpu-quick", "bs-2048").optim.lr == pytest.approx(quick.optim.lr * 1e-3 / 1.5e-3)


@pytest.mark.parametrize("overrides, message", [
    ({"train.stepz": 3}, "unknown config key 'train.stepz'"),
    ({"nosection.x": 3}, "unknown config key"),
    ({"train.steps": -5}, "train.steps must be positive"),
    ({"train.batch_size": 0}, "train.batch_size must be positive"),
    ({"model.block": "lstm"}, "model.block: unknown choice 'lstm'; choose one of: attention, mixer"),
    ({"train.steps": "many"}, "train.steps: cannot read 'many'"),
    ({"model.d_model": 30, "model.n_heads": 4}, "divisible by model.n_heads"),
    ({"data.grid_size": 5}, "data.grid_size: 5 is not supported"),
    ({"data.bucket_edges": [3, 1]}, "strictly increasing"),
    ({"model.sharing": "nested", "model.recurrence": "gated"}, "nested carries its own two states"),
    ({"model.block": "mixer", "model.pos": "rope2d"}, "no attention for 2D RoPE"),
    ({"model.pos": "none", "model.pos_every_iter": False}, "changes nothing"),
    ({"schedule.kind": "constant"}, "ignores schedule.warmup_steps"),
    # every flag that once did nothing in some combination is an error naming it
    ({"optim.sam_rho": 0.1}, "optim.sam_rho=0.1 does nothing here: only optim.name=sam"),
    ({"model.n_phases": 4}, "model.n_phases=4 does nothing here: only model.sharing=phased"),
    ({"model.block": "mixer", "model.n_heads": 4}, "model.n_heads=4 does nothing here"),
    ({"model.rope_base": 100.0}, "model.rope_base=100.0 does nothing here"),
    ({"model.h_cycles": 2}, "model.h_cycles=2 does nothing here"),
    ({"model.l_cycles": 2}, "model.l_cycles=2 does nothing here"),
    ({"curriculum.plateau_window": 0.01}, "curriculum.plateau_window=0.01 does nothing here"),
    ({"curriculum.min_steps_per_stage": 0.1}, "curriculum.min_steps_per_stage=0.1 does nothing here"),
    ({"schedule.stage_min_ratios": [0.2]}, "schedule.stage_min_ratios=[0.2] does nothing here"),
    ({"schedule.kind": "warmup", "schedule.lr_min_ratio": 0.1}, "schedule.lr_min_ratio=0.1 does nothing here"),
    ({"schedule.kind": "constant", "schedule.warmup_steps": 0, "schedule.lr_min_ratio": 0.1},
     "schedule.lr_min_ratio=0.1 does nothing here"),
    ({"curriculum.kind": "mixed", "curriculum.thresholds": [2, 1]}, r"curriculum.thresholds=\[2, 1\] does nothing"),
    ({"curriculum.kind": "hard_only", "curriculum.easy_max": 2}, "curriculum.easy_max=2 does nothing here"),
    ({"curriculum.kind": "easy_only", "curriculum.easy_max": 2, "curriculum.hard_min": 5},
     "curriculum.hard_min=5 does nothing here"),
    ({"optim.weight_decay": 0.0, "optim.decay": "matrices"}, "optim.decay='matrices' does nothing here"),
    ({"optim.muon_lr": 0.05}, "optim.muon_lr=0.05 does nothing here"),
    ({"model.block": "trm", "model.activation": "gelu", "model.pos": "none"}, "model.activation='gelu' does nothing"),
    ({"data.source": "benchmark", "data.grid_size": 9, "data.min_clues": 3}, "data.min_clues=3 does nothing here"),
    ({"train.carry": True, "train.grad_accum": 2, "train.batch_size": 64}, "train.carry keeps one state"),
])
def test_bad_values_name_the_field(overrides, message):
    with pytest.raises(ConfigError, match=message if "\\[" in message else re.escape(message)):
        make_config("cpu-smoke", overrides=overrides)


def test_unknown_preset_and_variant_list_the_choices():
    with pytest.raises(ConfigError, match="unknown preset 'gpu'.*cpu-smoke"):
        make_config("gpu")
    with pytest.raises(ConfigError, match="unknown variant 'nope'.*baseline"):
        make_config("cpu-smoke", "nope")


def test_cli_strings_are_coerced():
    cfg = make_config("cpu-smoke", overrides=parse_set(["train.steps=40", "data.augment=false", "eval.iterations=[4,8,12]",
                                                        "optim.lr=3e-3"]))
    assert cfg.train.steps == 40 and cfg.data.augment is False and cfg.eval.iterations == [4, 8, 12]
    assert cfg.optim.lr == 3e-3
    with pytest.raises(ConfigError, match="key=value"):
        parse_set(["train.steps"])


def test_bucket_labels():
    assert bucket_labels([0, 1, 3, 11, 51]) == ["0", "1-2", "3-10", "11-50", "51+"]
    assert bucket_labels([1, 2, 3]) == ["1", "2", "3+"]


def test_bucket_order_is_by_lower_edge_with_all_last():
    from lib.config import bucket_order
    assert bucket_order(["all", "11-50", "3-10", "51+", "0", "1-2", "3-10"]) == ["0", "1-2", "3-10", "11-50", "51+", "all"]


def test_a_variant_that_changes_iterations_is_evaluated_at_them_and_twice_them():
    assert make_config("cpu-quick", "no-iteration").eval.iterations == [1, 2]
    assert make_config("gpu-paper", "iterations-32").eval.iterations == [32, 64]
    assert make_config("cpu-quick", "iterations-32").eval.iterations == [16, 32]
