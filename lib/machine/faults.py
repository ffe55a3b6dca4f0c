"""Test-only faults: the hook the training loop calls after each step's loss and after each step. Unset
(every real run) it does nothing; the fault tests set it through a child process's environment to check
that a killed run resumes bit for bit and that a NaN loss stops a run as diverged."""
from __future__ import annotations

import os
import signal
from dataclasses import dataclass


@dataclass
class Faults:
    """What the fault tests inject into a run (in a child process, through its environment): report a
    NaN loss at step `nan_at`, or die by SIGKILL once step `kill_at` has finished (its checkpoint
    included, if one was due). Unset in every real run."""
    nan_at: int | None = None
    kill_at: int | None = None

    KILL_AT_STEP = "SUDOKU_TEST_KILL_AT_STEP"
    NAN_AT_STEP = "SUDOKU_TEST_NAN_AT_STEP"

    @classmethod
    def from_env(cls) -> "Faults":
        step = lambda name: int(os.environ[name]) if os.environ.get(name) else None
        return cls(nan_at=step(cls.NAN_AT_STEP), kill_at=step(cls.KILL_AT_STEP))

    def loss(self, step: int, loss: float) -> float:
        return float("nan") if step == self.nan_at else loss

    def after_step(self, step: int) -> None:
        if step == self.kill_at:
            os.kill(os.getpid(), signal.SIGKILL)


KILL_AT_STEP, NAN_AT_STEP = Faults.KILL_AT_STEP, Faults.NAN_AT_STEP
