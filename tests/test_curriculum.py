"""Schedules and curricula: pure functions of (config, step, state)."""
import logging
import math

import numpy as np
import pytest

from lib.experiments.resolve import make_config
from lib.schedule import lr_at
from lib.curriculum import (Curriculum, CurriculumState, batch_indices, batch_rng, phase_bounds,
                            plateau_rule, plateaued, stage_pools, stage_rule)


def cfg_with(**overrides):
    pinned = {"train.steps": 40, "schedule.warmup_steps": 5, "optim.lr": 2e-3}  # independent of preset tuning
    return make_config("cpu-smoke", "baseline", {**pinned, **{k.replace("__", "."): v for k, v in overrides.items()}})


# --- schedules -----------------------------------------------------------------------------------

def test_cosine_is_the_logs_get_lr():
    cfg = make_config("gpu-paper")  # the log's numbers: lr 1.5e-3, warmup 2000, 70K steps, floor 1%
    lr, warmup_steps, total_steps, lr_min_ratio = 1.5e-3, 2000, 70_000, 0.01

    def get_lr(step):  # verbatim from the experiment log
        if step < warmup_steps:
            return lr * (step + 1) / warmup_steps
        progress = (step - warmup_steps) / (total_steps - warmup_steps)
        cosine_decay = 0.5 * (1 + math.cos(math.pi * progress))
        return lr * (lr_min_ratio + (1 - lr_min_ratio) * cosine_decay)

    for step in [0, 1, 999, 1999, 2000, 2001, 10_000, 36_000, 69_998, 69_999]:
        assert lr_at(step, cfg) == pytest.approx(get_lr(step), rel=1e-12, abs=0)
    assert lr_at(69_999, cfg) == pytest.approx(1.5e-5, rel=1e-3)


def test_warmup_and_constant():
    cfg = cfg_with(schedule__kind="warmup", schedule__warmup_steps=10, optim__lr=1e-3)
    assert lr_at(0, cfg) == pytest.approx(1e-4)
    assert lr_at(9, cfg) == pytest.approx(1e-3)
    assert lr_at(39, cfg) == pytest.approx(1e-3)
    cfg = cfg_with(schedule__kind="constant", schedule__warmup_steps=0, optim__lr=1e-3)
    assert {lr_at(s, cfg) for s in (0, 5, 39)} == {1e-3}


def test_stage_restarts_restart_to_peak_and_decay_to_each_stage_floor():
    cfg = cfg_with(schedule__kind="stage_restarts", schedule__warmup_steps=4, schedule__stage_min_ratios=[0.1, 0.05],
                   curriculum__kind="reverse", curriculum__thresholds=[3, 2], curriculum__phase_fractions=[0.25, 0.25],
                   train__steps=40, optim__lr=1.0)
    # stage 0: steps 0-9 with warmup; stage 1: 10-19; stage 2 (all): 20-39
    assert [lr_at(s, cfg, 0, 0) for s in range(4)] == pytest.approx([0.25, 0.5, 0.75, 1.0])
    assert lr_at(10, cfg, 0, 0) == pytest.approx(0.1)  # decayed to stage 0's floor at its planned end
    assert lr_at(10, cfg, 10, 1) == pytest.approx(1.0)  # restart to peak
    assert lr_at(20, cfg, 10, 1) == pytest.approx(0.05)
    assert lr_at(20, cfg, 20, 2) == pytest.approx(1.0)
    assert lr_at(40, cfg, 20, 2) == pytest.approx(0.05)  # the last floor is reused for later stages
    assert lr_at(15, cfg, 10, 1) == pytest.approx(0.05 + 0.95 * 0.5)  # half-way down the cosine
    # a plateau stage that outlasts its plan holds the floor
    cfg.curriculum.kind = "plateau"
    assert lr_at(35, cfg, 12, 1) == pytest.approx(0.05)
    assert lr_at(12, cfg, 12, 1) == pytest.approx(1.0)


def test_schedules_are_monotone_where_they_should_be():
    cfg = cfg_with(train__steps=200, schedule__warmup_steps=20)
    lrs = [lr_at(s, cfg) for s in range(200)]
    assert lrs[:20] == sorted(lrs[:20]) and lrs[20:] == sorted(lrs[20:], reverse=True)
    assert min(lrs) >= cfg.optim.lr * cfg.schedule.lr_min_ratio


# --- stages ----------------------------------------------------------------------------------------

VALUES = np.array([0, 1, 1, 2, 3, 3, 5, 8, 13, 21])


@pytest.mark.parametrize("kind,expected", [
    ("mixed", [list(range(10))]),
    ("hard_only", [[4, 5, 6, 7, 8, 9]]),  # hard_min = 3
    ("reverse", [[6, 7, 8, 9], [3, 4, 5, 6, 7, 8, 9], list(range(10))]),  # >= 5, >= 2, all
    ("regular", [[0, 1, 2], [0, 1, 2, 3, 4, 5, 6], list(range(10))]),  # <= 1, <= 5, all
    ("plateau", [[6, 7, 8, 9], [3, 4, 5, 6, 7, 8, 9], list(range(10))]),
    ("easy_only", [[0, 1, 2, 3, 4, 5]]),  # easy_max = 3 (it once fell through to the hard gate)
])
def test_stage_pools(kind, expected):
    settings = {"mixed": {}, "hard_only": {"curriculum__hard_min": 3}, "easy_only": {"curriculum__easy_max": 3},
                "regular": {"curriculum__thresholds": [1, 5]}}.get(kind, {"curriculum__thresholds": [5, 2]})
    cfg = cfg_with(curriculum__kind=kind, **settings)
    assert [p.tolist() for p in stage_pools(cfg, VALUES)] == expected


def test_fixed_phases_follow_train_steps():
    cfg = cfg_with(curriculum__kind="reverse", curriculum__thresholds=[5, 2], curriculum__phase_fractions=[0.3, 0.3],
                   train__steps=40)
    assert phase_bounds(cfg) == [0, 12, 24]
    cur = Curriculum(cfg, VALUES)
    state, stages = cur.start(), []
    for step in range(40):
        stages.append(state.stage)
        state = cur.update(state, step, loss=1.0)
    assert stages == [0] * 12 + [1] * 12 + [2] * 16
    assert state.stage_start == 24


def test_empty_stage_is_skipped_with_a_warning(caplog):
    cfg = cfg_with(curriculum__kind="reverse", curriculum__thresholds=[100, 2], curriculum__phase_fractions=[0.3, 0.3],
                   train__steps=40)
    cur = Curriculum(cfg, VALUES)
    with caplog.at_level(logging.WARNING, logger="lib.curriculum"):
        state = cur.start()
    assert state.stage == 1 and state.stage_start == 0
    assert "no puzzles" in caplog.text and "stage 0" in caplog.text
    stages = []
    for step in range(40):
        stages.append(state.stage)
        state = cur.update(state, step, 1.0)
    assert stages == [1] * 24 + [2] * 16


def test_hard_only_without_hard_puzzles_is_a_clear_error():
    cfg = cfg_with(curriculum__kind="hard_only", curriculum__hard_min=50)
    with pytest.raises(ValueError, match="deduction_depth >= 50"):
        Curriculum(cfg, VALUES)


def test_plateau_rule():
    assert plateaued([1.0] * 10, 5, 0.01)
    assert not plateaued([1.0] * 9, 5, 0.01)  # needs two full windows
    assert not plateaued([2.0] * 5 + [1.0] * 5, 5, 0.01)
    assert plateaued([1.0] * 5 + [0.999] * 5, 5, 0.01)


def test_plateau_curriculum_raises_on_plateau_only_and_never_regresses():
    # shares of the 1,000-step run: a 5-step window (threshold 1% over it) and a 20-step guard
    cfg = cfg_with(curriculum__kind="plateau", curriculum__thresholds=[5, 2], curriculum__plateau_window=0.005,
                   curriculum__plateau_min_window=5, curriculum__plateau_threshold=0.01,
                   curriculum__min_steps_per_stage=0.02, train__steps=1000)
    assert plateau_rule(cfg) == (5, pytest.approx(0.01), 20)
    cur = Curriculum(cfg, VALUES)
    state = cur.start()
    for step in range(100):  # a loss still falling > 1% per window: no raise
        state = cur.update(state, step, loss=100.0 - 0.5 * step)
    assert state.stage == 0
    raised_at = None
    for step in range(100, 200):  # flat (a drop first): raise once two windows are flat
        state = cur.update(state, step, loss=1.0)
        if state.stage == 1 and raised_at is None:
            raised_at = step + 1
    assert raised_at == 110  # the first step whose last 2 windows are all flat
    assert state.stage == 2 and state.stage_start == raised_at + 20  # min_steps_per_stage in stage 1
    for step in range(200, 400):
        state = cur.update(state, step, loss=1.0)
    assert state.stage == 2  # the last stage is final
    # the state survives a checkpoint round trip (the resume never regresses the gate)
    again = CurriculumState.from_dict(state.to_dict())
    assert again == state and len(again.losses) <= 2 * plateau_rule(cfg)[0]


def test_the_plateau_gate_keeps_its_share_of_the_run_at_any_length():
    """The plateau-aligned recipe's window (0.1% of the run), guard (4%) and 0.5% threshold: a run 50x shorter
    keeps the guard's share, and a window floored at plateau_min_window asks for the same improvement per
    share of the run (the threshold grows with the window)."""
    long_run = cfg_with(curriculum__kind="plateau", curriculum__thresholds=[5, 2], train__steps=70_000)
    short = cfg_with(curriculum__kind="plateau", curriculum__thresholds=[5, 2], train__steps=1_400)
    (w_long, t_long, g_long), (w_short, t_short, g_short) = plateau_rule(long_run), plateau_rule(short)
    assert (w_long, g_long) == (70, 2_800) and t_long == pytest.approx(0.005)
    assert g_short == 56 and w_short == 25 and t_short == pytest.approx(0.005 * 25 / 1.4)
    assert t_short / (w_short / 1_400) == pytest.approx(t_long / (w_long / 70_000))


def test_every_curriculum_draws_its_pool_on_cpu_smoke():
    """On cpu-smoke's real split: each curriculum's stages hold the puzzles its rule names, the last all."""
    from lib import data
    depth_edges = make_config("cpu-smoke").data.bucket_edges
    for kind, settings in {"mixed": {}, "reverse": {}, "regular": {"curriculum.thresholds": [1, 2]},
                           "plateau": {}, "hard_only": {"curriculum.hard_min": depth_edges[-1]},
                           "easy_only": {"curriculum.easy_max": depth_edges[0]}}.items():
        cfg = make_config("cpu-smoke", overrides={"curriculum.kind": kind, **settings})
        values = np.asarray(data.load_splits(cfg.data, progress=False).train[cfg.data.bucket_by])
        pools = Curriculum(cfg, values).pools
        rules = [stage_rule(cfg, s) for s in range(len(pools))]
        for pool, (op, threshold) in zip(pools, rules):
            want = {"all": np.ones(len(values), bool), ">=": values >= (threshold or 0),
                    "<=": values <= (threshold or 0)}[op]
            assert np.array_equal(pool, np.flatnonzero(want)), (kind, op, threshold)
        if kind == "easy_only":
            assert values[pools[0]].max() <= depth_edges[0] < values.max(), "easy-only trains the easiest puzzles only"
        if kind == "hard_only":
            assert values[pools[0]].min() >= depth_edges[-1] > values.min()


# --- batches -----------------------------------------------------------------------------------------

def test_batches_are_reproducible_from_seed_step_stage():
    pool = np.arange(100, 200)
    a = batch_indices(pool, batch_rng(0, 7, 1), 64)
    assert np.array_equal(a, batch_indices(pool, batch_rng(0, 7, 1), 64))
    assert not np.array_equal(a, batch_indices(pool, batch_rng(0, 8, 1), 64))
    assert not np.array_equal(a, batch_indices(pool, batch_rng(1, 7, 1), 64))
    assert set(a.tolist()) <= set(pool.tolist())
