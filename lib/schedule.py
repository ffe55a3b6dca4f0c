"""Learning-rate schedules: pure functions of (config, step, curriculum stage), nanoGPT's get_lr style.

    cosine          linear warmup, then cosine from the peak down to lr_min_ratio (the log's recipe)
    warmup          linear warmup, then constant
    constant        the peak from step 0
    stage_restarts  back to the peak at every curriculum stage start, cosine down to that stage's
                    floor over the stage's planned length (the plateau-gated recipe); warmup only once
"""
from __future__ import annotations

import math

from lib.config import RunConfig
from lib.curriculum import planned_stage_end


def lr_at(step: int, cfg: RunConfig, stage_start: int = 0, stage: int = 0) -> float:
    """Learning rate for 0-based `step`. `stage`/`stage_start` matter only for stage_restarts."""
    peak, warmup, total = cfg.optim.lr, cfg.schedule.warmup_steps, cfg.train.steps
    kind = cfg.schedule.kind
    if kind == "constant":
        return peak
    if kind == "warmup":
        return peak * (step + 1) / warmup if step < warmup else peak
    if kind == "cosine":  # the log's get_lr, verbatim
        if step < warmup:
            return peak * (step + 1) / warmup
        progress = (step - warmup) / (total - warmup)
        return peak * cosine(progress, cfg.schedule.lr_min_ratio)
    if kind == "stage_restarts":
        return peak * _stage_restart_factor(step, cfg, stage_start, stage)
    raise ValueError(f"schedule.kind: unknown schedule {kind!r}")


def cosine(progress: float, floor: float) -> float:
    progress = min(max(progress, 0.0), 1.0)
    return floor + (1 - floor) * 0.5 * (1 + math.cos(math.pi * progress))


def _stage_restart_factor(step: int, cfg: RunConfig, stage_start: int, stage: int) -> float:
    """Peak at each stage start, cosine down to the stage's floor over the stage's planned length,
    then hold the floor (a plateau stage may outlast its plan). Warmup only at the run's start."""
    ratios = cfg.schedule.stage_min_ratios or [cfg.schedule.lr_min_ratio]
    floor = ratios[min(stage, len(ratios) - 1)]
    warmup = cfg.schedule.warmup_steps if stage_start == 0 else 0
    if step - stage_start < warmup:
        return (step - stage_start + 1) / warmup
    end = planned_stage_end(cfg, stage, stage_start)
    span = end - stage_start - warmup
    progress = (step - stage_start - warmup) / span if span > 0 else 1.0
    return cosine(progress, floor)
