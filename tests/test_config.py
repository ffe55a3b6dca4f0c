import json

import pytest

from lib import files
from lib.config import PRESETS, VARIANTS, ConfigError, RunConfig, bucket_labels, make_config, parse_set


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
    ({"model.h_init": "random"}, "the puzzle must be re-fed"),
    ({"model.block": "mixer"}, "no attention for 2D RoPE"),
    ({"model.pos": "none", "model.pos_every_iter": False}, "changes nothing"),
    ({"schedule.kind": "constant"}, "ignores schedule.warmup_steps"),
    ({"optim.sam_rho": 0.1}, "only matters with optim.name=sam"),
    ({"model.n_phases": 4}, "only matters with model.sharing=phased"),
    ({"train.carry": True, "train.grad_accum": 2, "train.batch_size": 64}, "train.carry keeps one state"),
])
def test_bad_values_name_the_field(overrides, message):
    with pytest.raises(ConfigError, match=message.replace("(", r"\(").replace(")", r"\)")):
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
