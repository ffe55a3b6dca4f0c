"""Every named variant changes what runs, every parameter it has trains, and the recipe follows the log.

A variant that silently equals the baseline is a bug: on cpu-smoke, with the same seed and batch, a
variant must differ from the baseline in its parameter count, its forward outputs at init or after
one optimiser step, its learning-rate schedule, or its training data, unless its registry entry
says it is meant to equal the baseline on that preset.
"""
import hashlib
from pathlib import Path

import numpy as np
import pytest
import torch

from lib import data as data_lib
from lib.config import flatten
from lib.experiments.resolve import PRESETS, VARIANTS, config_twin, make_config, variant_chain
from lib.curriculum import phase_bounds, stage_pools
from lib.model import build_model, count_params, sequence_loss
from lib.schedule import lr_at
from lib.optim import make_optimizer
from lib.train import set_lr

REPO = Path(__file__).resolve().parent.parent
PRESET = "cpu-smoke"


def _digest(*arrays) -> str:
    h = hashlib.sha256()
    for a in arrays:
        h.update(np.ascontiguousarray(np.asarray(a, dtype=np.float64)).round(6).tobytes())
    return h.hexdigest()[:16]


@pytest.fixture(scope="module")
def batch():
    splits = data_lib.load_splits(make_config(PRESET).data, progress=False)
    p, a = data_lib.to_arrays(splits.train.select(range(16)))
    return torch.from_numpy(p).long(), torch.from_numpy(a).long()


def signature(variant: str, batch) -> dict:
    """What a run of this variant computes, in parts that a no-op would leave unchanged."""
    cfg = make_config(PRESET, variant)
    torch.manual_seed(0)
    model = build_model(cfg.model, cfg.data.grid_size)
    x, y = batch
    with torch.no_grad():
        before = model(x).logits
    optimizer = make_optimizer(model, cfg, torch.device("cpu"))
    set_lr(optimizer, lr_at(0, cfg), cfg.optim.lr)

    def closure():
        optimizer.zero_grad()
        loss = sequence_loss(model(x), y, x, cfg.model)
        loss.backward()
        return loss

    torch.manual_seed(1)
    optimizer.step(closure)
    with torch.no_grad():
        after = model(x).logits
    splits = data_lib.load_splits(cfg.data, progress=False)
    pools = stage_pools(cfg, np.asarray(splits.train[cfg.data.bucket_by]))
    return {
        "params": count_params(model),
        "forward": _digest(before),
        "after one step": _digest(after),
        "lr schedule": _digest([lr_at(s, cfg) for s in range(cfg.train.steps)]),
        "data": (splits.cache_key, cfg.data.augment, cfg.train.carry, cfg.train.batch_size,
                 tuple(phase_bounds(cfg)), tuple(_digest(p) for p in pools)),
        "evaluation": (cfg.optim.ema_decay, tuple(cfg.eval.sources), tuple(cfg.eval.iterations)),
    }


@pytest.fixture(scope="module")
def signatures(batch):
    cache = {}
    return lambda name: cache.setdefault(name, signature(name, batch))


@pytest.mark.parametrize("variant", [v for v in VARIANTS if v != "baseline"])
def test_every_variant_changes_the_computation(variant, signatures):
    """Against its base (and the baseline): a variant that changes nothing there is a silent no-op, unless
    its registry entry says which variant it runs the config of on this preset."""
    mine, twin = signatures(variant), VARIANTS[variant].twin_on.get(PRESET)
    for other in dict.fromkeys([VARIANTS[variant].base, "baseline"]):
        differs = [part for part in mine if mine[part] != signatures(other)[part]]
        if twin == other:
            assert not differs, f"{variant} says it runs {other}'s config on {PRESET}, but differs in {differs}"
        else:
            assert differs, f"{variant} runs exactly {other} on {PRESET}: a silent no-op"


@pytest.mark.parametrize("preset", list(PRESETS))
def test_declared_twins_are_the_computed_ones(preset):
    """One notion of "runs that variant's config": config_twin computes it, and every variant whose config
    another earlier variant already runs on a preset must say so in its registry entry (twin_on), and no other."""
    for name, variant in VARIANTS.items():
        assert config_twin(preset, name) == variant.twin_on.get(preset, name), (name, preset)


@pytest.mark.parametrize("variant", list(VARIANTS))
def test_every_parameter_gets_a_gradient(variant, batch):
    cfg = make_config(PRESET, variant)
    torch.manual_seed(0)
    model = build_model(cfg.model, cfg.data.grid_size)
    x, y = batch
    sequence_loss(model(x), y, x, cfg.model).backward()
    dead = [name for name, p in model.named_parameters()
            if p.requires_grad and (p.grad is None or not p.grad.abs().sum() > 0)]
    if cfg.model.sharing == "nested" and cfg.model.h_init == "random":
        dead.remove("h_random")  # TRM's H_init and L_init: the no-gradient cycles overwrite them, as in the script
    assert not dead, f"{variant}: parameters without a gradient: {dead}"


def test_every_variant_names_its_log_section_and_family():
    notebooks = {p.stem.split("_", 1)[1] for p in (REPO / "notebooks").glob("[0-9]*_*.ipynb")}
    log_path = REPO.parent / "shared/reference/experiment-log.md"
    if not log_path.exists():
        pytest.skip(f"the experiment log is not beside the checkout ({log_path}): ../shared is laid by CI")
    log = log_path.read_text()
    for name, variant in VARIANTS.items():
        assert variant.family in notebooks, f"{name}: no notebook for family {variant.family!r}"
        if variant.section.startswith("iters:"):  # the sequel, iters/EXPERIMENTS_ITERS.md
            assert variant.script.startswith("iters/"), name
        elif variant.section:  # "" marks an experiment beyond the log
            first = variant.section.split(" / ")[0].split(" (pos_embedding")[0]
            assert first.split(": ", 1)[-1] in log or first.startswith("Key Insight"), (name, variant.section)
            assert variant.script and variant.script.split("/")[-1] in log or variant.script.startswith("pos_embedding/"), name
        else:
            assert "beyond the log" in variant.description or not variant.script, name
        variant_chain(name)  # the base chain resolves


def test_gpu_paper_follows_the_log():
    cfg = make_config("gpu-paper")
    assert cfg.data.augment is False  # the log never augmented
    assert (cfg.data.source, cfg.data.train_size) == ("sudoku-extreme", 2_700_000)
    assert cfg.data.bucket_by == "rating" and cfg.data.bucket_edges == [0, 1, 3, 11, 51]
    # "rating 21+, 6+, 1+" admit the buckets whose lower edge passes: 51+, 11+, 1+
    assert (cfg.curriculum.kind, cfg.curriculum.thresholds) == ("reverse", [51, 11, 1])
    assert phase_bounds(cfg) == [0, 14_000, 28_000, 42_000]
    assert (cfg.optim.name, cfg.optim.lr, cfg.optim.weight_decay, cfg.optim.decay) == ("adamw", 1.5e-3, 0.01, "all")
    assert (cfg.optim.beta1, cfg.optim.beta2, cfg.optim.grad_clip) == (0.9, 0.95, 0.0)
    assert (cfg.schedule.kind, cfg.schedule.warmup_steps, cfg.schedule.lr_min_ratio) == ("cosine", 2_000, 0.01)
    # grad_accum 0 (auto): the whole batch where the card holds it, as scripted (lib/machine/memory.py)
    t = cfg.train
    assert (t.batch_size, t.grad_accum, t.steps, t.compile) == (4096, 0, 70_000, "auto")
    m = cfg.model
    assert (m.d_model, m.d_ff, m.n_layers, m.n_heads, m.iterations, m.dropout) == (128, 512, 4, 4, 16, 0.1)
    assert (m.activation, m.pos, m.input, m.recurrence, m.sharing, m.loss, m.loss_cells, m.head_norm, m.init) == \
           ("relu", "rcb", "encode_once", "add", "shared", "all", "blanks", False, "encoder")
    assert count_params(build_model(m, 9)) == 800_393  # exp_cosine_no_sam.py's model


@pytest.mark.parametrize("variant, params, log", [
    ("trm-nested", 4.5e6, "TRM Architecture: ~4.5M"),
    ("mlp-mixer", 870e3, "MLP-Mixer: 870K"),
    ("scale-wide", 3.2e6, "Scale WIDE: ~3.2M"),
    ("scale-up", 6.3e6, "Scale UP with True Batch Size: ~6.3M"),
    ("scale-1m", 1.0e6, "1M Parameters"),
    ("scale-down", 100e3, "Scale DOWN: ~100K"),
])
def test_parameter_counts_match_the_log_at_9x9(variant, params, log):
    cfg = make_config("gpu-paper", variant)
    assert count_params(build_model(cfg.model, 9)) == pytest.approx(params, rel=0.05), log


@pytest.mark.parametrize("variant, expect", [
    ("scale-1m", {"train.steps": 50_000, "schedule.warmup_steps": 1_400}),
    ("scale-up", {"train.batch_size": 512, "train.grad_accum": 1}),  # a true batch: never split by the plan
    ("scale-up-accum", {"train.batch_size": 512, "train.grad_accum": 4}),
    ("wd-1.0", {"optim.weight_decay": 1.0, "optim.decay": "all"}),
    ("warmup-only", {"optim.name": "sam", "schedule.kind": "warmup", "train.batch_size": 4096}),
    ("no-warmup", {"optim.name": "sam", "schedule.kind": "constant", "schedule.warmup_steps": 0}),
    ("recur-concat", {"model.input": "concat", "model.recurrence": "concat"}),
    ("recur-add-nopred", {"model.input": "concat", "model.recurrence": "add", "model.feed_preds": False}),
    ("curriculum-hard-only", {"curriculum.kind": "hard_only", "curriculum.hard_min": 11}),
    ("curriculum-easy-only", {"curriculum.kind": "easy_only", "curriculum.easy_max": 0}),
    ("original", {"train.batch_size": 128, "optim.name": "muon", "schedule.kind": "constant"}),
    ("bs-512", {"train.batch_size": 512}),
    ("scale-model", {"model.d_model": 192, "model.n_layers": 6}),
    ("trm-nested", {"model.h_init": "random", "model.sharing": "nested", "optim.decay": "all", "optim.lr": 1e-4}),
])
def test_variants_run_the_logs_numbers_at_9x9(variant, expect):
    got = flatten(make_config("gpu-paper", variant).to_dict())
    assert {k: got[k] for k in expect} == expect


def test_depth_variants_keep_the_logs_ratio_on_every_preset():
    for preset in PRESETS:
        base = make_config(preset).model.n_layers
        m1, m2 = make_config(preset, "middle1").model, make_config(preset, "middle2").model
        assert (m1.n_phases, m1.n_layers * m1.n_phases) == (2, base), preset  # 2 x 2 against 4
        assert (m2.n_phases, m2.n_layers * m2.n_phases) == (4, base), preset  # 4 x 1 against 4
        assert make_config(preset, "scale-down").model.n_layers * 2 == base, preset


def test_the_log_table_is_what_the_cli_prints_and_lists_every_variant():
    from lib.workbook.cli import log_table_markdown
    table = (REPO / "docs" / "log-experiments.md").read_text()
    assert table == log_table_markdown(), "docs/log-experiments.md is stale: python -m lib.cli variants --markdown"
    for name in VARIANTS:
        assert f"| `{name}` |" in table, name
    assert "not valid here" not in table
