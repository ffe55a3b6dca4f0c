"""What a training step sees: which puzzles (the curriculum stage) and in which order.

Everything here is a pure function of (config, step, curriculum state), so a resumed run
draws exactly the batches and learning rates an uninterrupted run would have.

Stages. A curriculum is a list of stages, each a filter on the train split's `data.bucket_by`
column; the last stage of every staged curriculum trains on everything:
  mixed      one stage, all puzzles
  hard_only  one stage, values >= hard_min
  easy_only  one stage, values <= easy_max
  reverse    values >= thresholds[i] for phase_fractions[i] of train.steps, then all (hard -> easy)
  regular    values <= thresholds[i] for phase_fractions[i] of train.steps, then all (easy -> hard)
  plateau    the reverse gates, but a stage ends when the loss plateaus rather than at a fixed step
A stage whose pool is empty (small grids may lack hard puzzles) is skipped with a warning.
"""
from __future__ import annotations

import dataclasses
import logging
from dataclasses import dataclass, field

import numpy as np

from lib.config import RunConfig

log = logging.getLogger(__name__)


# --- stage boundaries ------------------------------------------------------------------------------

def planned_stage_end(cfg: RunConfig, stage: int, stage_start: int) -> int:
    """The step a stage is planned to end at: its fixed phase boundary (reverse/regular), its
    phase_fractions share from where it started (plateau), or the end of training (last stage)."""
    cur, steps = cfg.curriculum, cfg.train.steps
    if stage >= n_stages(cfg) - 1:
        return steps
    if cur.kind == "plateau":
        return min(steps, stage_start + round(cur.phase_fractions[stage] * steps))
    return phase_bounds(cfg)[stage + 1]


# --- stages ----------------------------------------------------------------------------------------

STAGED = ("reverse", "regular", "plateau")  # the curricula with phases; mixed, hard_only, easy_only have one


def n_stages(cfg: RunConfig) -> int:
    return len(cfg.curriculum.thresholds) + 1 if cfg.curriculum.kind in STAGED else 1


def stage_rule(cfg: RunConfig, stage: int) -> tuple[str, int | None]:
    """(comparison, threshold) a stage's puzzles satisfy; ("all", None) for no filter."""
    cur = cfg.curriculum
    if cur.kind == "hard_only":
        return (">=", cur.hard_min)
    if cur.kind == "easy_only":
        return ("<=", cur.easy_max)
    if cur.kind == "mixed" or (cur.kind in STAGED and stage >= len(cur.thresholds)):
        return ("all", None)
    if cur.kind == "regular":
        return ("<=", cur.thresholds[stage])
    if cur.kind in ("reverse", "plateau"):
        return (">=", cur.thresholds[stage])
    raise ValueError(f"curriculum.kind: unknown curriculum {cur.kind!r}")


def stage_pools(cfg: RunConfig, values: np.ndarray) -> list[np.ndarray]:
    """Index pool (int64, sorted) of each stage over the train split's bucket_by values."""
    values = np.asarray(values)
    pools = []
    for stage in range(n_stages(cfg)):
        op, threshold = stage_rule(cfg, stage)
        keep = {"all": lambda v: np.ones(len(v), bool), ">=": lambda v: v >= threshold,
                "<=": lambda v: v <= threshold}[op](values)
        pools.append(np.flatnonzero(keep).astype(np.int64))
    return pools


def phase_bounds(cfg: RunConfig) -> list[int]:
    """Nominal first step of each stage of a fixed-phase curriculum: [0, b1, b2, ...]."""
    fractions = np.cumsum(cfg.curriculum.phase_fractions)
    return [0] + [int(round(f * cfg.train.steps)) for f in fractions]


@dataclass
class CurriculumState:
    """The checkpointed part of the curriculum: the current stage and when it began, plus the
    plateau rule's recent losses (this stage only)."""
    stage: int = 0
    stage_start: int = 0
    losses: list[float] = field(default_factory=list)

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> "CurriculumState":
        return cls(stage=int(d["stage"]), stage_start=int(d["stage_start"]), losses=[float(x) for x in d["losses"]])


class Curriculum:
    """Stage pools for one train split and the rule that moves between stages."""

    def __init__(self, cfg: RunConfig, values: np.ndarray):
        self.cfg = cfg
        self.pools = stage_pools(cfg, values)
        if len(self.pools[-1]) == 0:
            op, threshold = stage_rule(cfg, len(self.pools) - 1)
            raise ValueError(f"curriculum {cfg.curriculum.kind!r}: no training puzzles with "
                             f"{cfg.data.bucket_by} {op} {threshold} (train split has {len(np.asarray(values))} puzzles)")
        self._warned: set[int] = set()

    @property
    def n_stages(self) -> int:
        return len(self.pools)

    def describe(self, stage: int) -> str:
        op, threshold = stage_rule(self.cfg, stage)
        rule = "all puzzles" if op == "all" else f"{self.cfg.data.bucket_by} {op} {threshold}"
        return f"stage {stage}: {rule} ({len(self.pools[stage])} puzzles)"

    def pool(self, state: CurriculumState) -> np.ndarray:
        return self.pools[state.stage]

    def _nonempty_from(self, stage: int) -> int:
        """First stage >= `stage` with puzzles; the last stage is never empty."""
        while not len(self.pools[stage]):
            if stage not in self._warned:
                log.warning("curriculum %s has no puzzles; skipping it", self.describe(stage))
                self._warned.add(stage)
            stage += 1
        return stage

    def _scheduled(self, step: int) -> int:
        """Fixed-phase stage of a step (plateau: unused; mixed/hard_only: 0)."""
        if self.cfg.curriculum.kind not in ("reverse", "regular"):
            return 0
        return int(np.searchsorted(phase_bounds(self.cfg), step, side="right")) - 1

    def start(self) -> CurriculumState:
        return CurriculumState(stage=self._nonempty_from(self._scheduled(0)), stage_start=0)

    def update(self, state: CurriculumState, step: int, loss: float) -> CurriculumState:
        """The state for step+1, after `step` trained with mean loss `loss`. Never moves back."""
        nxt = step + 1
        if self.cfg.curriculum.kind == "plateau":
            return self._plateau_update(state, nxt, loss)
        stage = self._nonempty_from(max(state.stage, self._scheduled(nxt)))
        if stage != state.stage:
            return CurriculumState(stage=stage, stage_start=nxt)
        return state

    def _plateau_update(self, state: CurriculumState, nxt: int, loss: float) -> CurriculumState:
        window, threshold, guard = plateau_rule(self.cfg)
        losses = (state.losses + [float(loss)])[-2 * window:]
        state = CurriculumState(state.stage, state.stage_start, losses)
        if state.stage == self.n_stages - 1 or nxt - state.stage_start < guard:
            return state
        if plateaued(losses, window, threshold):
            stage = self._nonempty_from(state.stage + 1)
            log.info("curriculum: loss plateaued at step %d; raising to %s", nxt, self.describe(stage))
            return CurriculumState(stage=stage, stage_start=nxt)
        return state


def plateau_rule(cfg: RunConfig) -> tuple[int, float, int]:
    """(window in steps, relative-improvement threshold over it, guard in steps) of the plateau gate: the
    config's shares of the run, the window no shorter than plateau_min_window, and the threshold scaled with
    the window so that the gate asks for the same improvement per share of the run at any window."""
    cur, steps = cfg.curriculum, cfg.train.steps
    nominal = cur.plateau_window * steps
    window = max(cur.plateau_min_window, round(nominal))
    return window, cur.plateau_threshold * window / max(nominal, 1e-9), round(cur.min_steps_per_stage * steps)


def plateaued(losses: list[float], window: int, threshold: float) -> bool:
    """True when the mean loss of the last `window` steps improved on the window before by less
    than `threshold` (relative). Needs 2 * window losses."""
    if len(losses) < 2 * window:
        return False
    before = float(np.mean(losses[-2 * window:-window]))
    recent = float(np.mean(losses[-window:]))
    if not before > 0:
        return True
    return (before - recent) / before < threshold


# --- batches ---------------------------------------------------------------------------------------

def batch_rng(seed: int, step: int, stage: int) -> np.random.Generator:
    """The one random stream of a step: its sample indices and their augmentations."""
    return np.random.default_rng([seed, step, stage])


def batch_indices(pool: np.ndarray, rng: np.random.Generator, size: int) -> np.ndarray:
    """`size` train-split indices drawn uniformly with replacement from a stage's pool."""
    return pool[rng.integers(0, len(pool), size=size)]
