"""Presets: the scale a run is made at. A preset is a dict of dotted overrides on RunConfig's defaults
(which are the log's recipe); a variant is then applied on top of it (lib/variants.py).

On a relative preset, a variant's 9x9 numbers keep their ratio to the recipe as each field of lib/config.py
declares, so `iterations-32` doubles the preset's count.
"""
from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Preset:
    description: str
    overrides: dict
    # On a scaled-down preset, a variant's 9x9 numbers (iterations, batch, steps, lr, widths, depth)
    # keep their ratio to the log's recipe instead of being copied: iterations-32 doubles the
    # preset's count, middle1's 2 x 2 layers become 2 x (half the preset's depth).
    relative: bool = True


PRESETS: dict[str, Preset] = {
    "gpu-paper": Preset(
        "the log's recommended recipe (\"New Baseline: 2.7M Sudoku-Extreme\" + \"Cosine LR Without SAM\"): "
        "800K params, 16 iterations, 2.7M sudoku-extreme puzzles, batch 4096, 70K steps, reverse curriculum",
        {"data.source": "sudoku-extreme", "data.train_size": 2_700_000},
        relative=False),
    "cpu-quick": Preset(
        "6x6 puzzles with extra clues, 4 layers like the recipe: a rating spread a 2-core CPU learns in minutes",
        {
            "data.grid_size": 6,
            "data.train_size": 5_000,
            "data.test_per_bucket": 200,
            "data.bucket_by": "deduction_depth",
            "data.bucket_edges": [2, 3, 4, 5],
            "data.min_clues": 14,
            "model.d_model": 48,
            "model.n_layers": 4,
            "model.n_heads": 4,
            "model.d_ff": 192,
            "model.iterations": 8,
            "optim.lr": 1e-3,
            "schedule.warmup_steps": 100,
            "curriculum.kind": "mixed",  # 1,500 steps leave little room for phases; curriculum-reverse tests them
            "curriculum.thresholds": [4, 3, 2],
            "train.steps": 1_500,
            "train.batch_size": 64,
            "train.threads": 2,
            "train.log_every": 50,
            "train.eval_every": 250,
            "train.checkpoint_every": 250,
            "eval.iterations": [8, 16],
            "eval.batch_size": 256,
        }),
    "cpu-smoke": Preset(
        "4x4 puzzles in seconds: tests and notebook smoke runs",
        {
            "data.grid_size": 4,
            "data.train_size": 300,
            "data.test_per_bucket": 20,
            "data.bucket_by": "deduction_depth",
            "data.bucket_edges": [1, 2, 3],
            "model.d_model": 24,
            "model.n_layers": 4,
            "model.n_heads": 2,
            "model.d_ff": 96,
            "model.iterations": 4,
            "optim.lr": 3e-3,
            "schedule.warmup_steps": 15,
            "curriculum.kind": "reverse",
            "curriculum.thresholds": [3, 2],
            "curriculum.phase_fractions": [0.3, 0.3],
            "train.steps": 150,
            "train.batch_size": 64,
            "train.threads": 1,
            "train.log_every": 10,
            "train.eval_every": 50,
            "train.checkpoint_every": 50,
            "eval.iterations": [4, 8],
            "eval.batch_size": 128,
        }),
}
