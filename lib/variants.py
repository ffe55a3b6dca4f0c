"""The log's experiments as named variants: a base variant and the config keys it changes.

A variant is written in the log's 9x9 numbers; on a CPU preset each key keeps its ratio to the recipe as
its field declares (lib/config.py), so `iterations-32` doubles the preset's count. `overrides` may be a
function of the config built so far, for values that depend on the preset (rating thresholds). Adding a
variant never stales a finished run: a run is identified by its resolved config, not by this registry.

    "recur-mine": Variant(
        {"model.recurrence": "mine"},
        base="original", family="architecture", section="...",
        description="what runs; the log's figure"),
"""
from __future__ import annotations

import typing
from dataclasses import dataclass, field


@dataclass(frozen=True)
class Variant:
    overrides: dict | typing.Callable = field(default_factory=dict)  # dotted keys, the log's 9x9 numbers
    base: str | None = "baseline"  # the variant this one modifies, applied first (None: the defaults)
    family: str = ""  # the notebook that runs it (notebooks/NN_<family>.ipynb)
    # presets where it is meant to run another variant's config exactly (config.config_twin checks it)
    twin_on: dict = field(default_factory=dict)
    section: str = ""  # the log's section heading ("" for an experiment beyond the log)
    description: str = ""  # what runs, the log's figure, and any choice where the log is ambiguous


def _top_buckets(cfg) -> dict:
    # The log's "difficulty >= 3.0" (Kaggle scale) kept the top two of its five difficulty buckets;
    # on our axes that is the top two rating buckets (rating >= 11 at 9x9).
    return {"curriculum.kind": "hard_only", "curriculum.hard_min": cfg.data.bucket_edges[-2]}


def _easiest_bucket(cfg) -> dict:
    # The log's easy-only model trained on difficulty 0.0, its easiest bucket.
    return {"curriculum.kind": "easy_only", "curriculum.easy_max": cfg.data.bucket_edges[1] - 1}


def _domain_swap(cfg) -> dict:
    if cfg.data.source == "generated":  # minimal puzzles against clue-rich ones (half the cells given)
        other = 0 if cfg.data.min_clues else cfg.data.grid_size ** 2 // 2
        return {"data.min_clues": other, "eval.sources": [f"generated:min_clues={cfg.data.min_clues}"]}
    return {"data.source": "kaggle", "eval.sources": [cfg.data.source]}


_SAM_ERA = {"optim.name": "sam", "schedule.kind": "constant", "schedule.warmup_steps": 0}
_SCALE_UP = {"model.d_model": 256, "model.n_layers": 8, "model.n_heads": 8, "model.d_ff": 1024}

VARIANTS: dict[str, Variant] = {
    "baseline": Variant(
        {},
        base=None, family="baseline", section="Cosine LR Without SAM (NEW RECOMMENDED BASELINE)",
        description=(
        "the recipe: encode once, h_prev + proj(preds), 2D RoPE, AdamW, warmup + cosine; log 83.6% on "
        "sudoku-extreme")),
    "original": Variant(
        {"model.input": "concat", "model.recurrence": "none", "model.pos": "rcb"},
        base="baseline", family="iterations", section="Baseline: Iterative Transformer",
        description=(
        "the log's first model: concat(puzzle, preds) re-fed every iteration, no hidden-state recurrence, row "
        "+ col + box embeddings; trained with the preset's recipe, not the log's early 100K steps on easy "
        "Kaggle puzzles; log 643 solved of 1K easy")),
    "extreme-bs512": Variant(
        {**_SAM_ERA, "train.batch_size": 512, "optim.lr": 1e-3},
        base="baseline", family="scale", section="New Baseline: 2.7M Sudoku-Extreme",
        description=(
        "the first 2.7M sudoku-extreme baseline: SAM, batch 512, lr 1e-3, constant lr, no warmup; log 71.4%")),
    "no-iteration": Variant(
        {"model.iterations": 1},
        base="original", family="iterations", section="Ablation: No Iteration",
        description=(
        "a single forward pass on the original model; log 0 solved (64.3% cells)")),
    "final-only-loss": Variant(
        {"model.loss": "final"},
        base="original", family="iterations", section="Ablation: No Intermediate Supervision",
        description=(
        "loss on the final iteration only, original model; log 428 vs 643 solved")),
    "iterations-32": Variant(
        {"model.iterations": 32},
        base="baseline", family="iterations", section="Scale Iterations (32)",
        description=(
        "32 iterations on the recipe; the log ran it at batch 256 (confounded) and it was unstable, 62.4% vs "
        "79.8%")),
    "input-proj-add": Variant(
        {"model.input": "proj_add"},
        base="original", family="architecture", section="Project-then-Add Input",
        description=(
        "separate digit / prediction / empty projections, added, original model; log 555 solved (rerun) vs "
        "643")),
    "input-proj-concat": Variant(
        {"model.input": "proj_concat"},
        base="original", family="architecture", section="Project-then-Concat Input",
        description=(
        "the same three projections at widths d/2, 3d/8, d/8, concatenated, original model; log 582 vs 643")),
    "no-x-after-init": Variant(
        {"model.input": "encode_once", "model.recurrence": "add"},
        base="original", family="architecture", section="No X After Init (TRM-style Input)",
        description=(
        "the original model with h_prev added and the puzzle encoded once (no x after init); log 2248 vs "
        "recur-add's 2265 of 2.5K")),
    "recur-add": Variant(
        {"model.recurrence": "add"},
        base="original", family="architecture", section="Hidden State Recurrence",
        description=(
        "h = input_proj(concat(x, preds)) + h_prev; log 2265 vs 1994 of 2.5K")),
    "recur-concat": Variant(
        {"model.recurrence": "concat"},
        base="original", family="architecture", section="Hidden State Recurrence",
        description=(
        "input_proj(concat(x, preds, h_prev)); log 2206")),
    "recur-gated": Variant(
        {"model.recurrence": "gated"},
        base="original", family="architecture", section="Hidden State Recurrence",
        description=(
        "GRU-style gate between h_prev and the new input; log 2141")),
    "recur-mem": Variant(
        {"model.recurrence": "mem"},
        base="original", family="architecture", section="Hidden State Recurrence",
        description=(
        "a separate 64-dim memory bank, accumulated; log 2254")),
    "recur-add-nopred": Variant(
        {"model.feed_preds": False},
        base="recur-add", family="architecture", section="Recurrence Without Predictions",
        description=(
        "x + h_prev: the puzzle still re-fed, predictions not; log 2238 vs 2265")),
    "recur-concat-nopred": Variant(
        {"model.feed_preds": False},
        base="recur-concat", family="architecture", section="Recurrence Without Predictions",
        description=(
        "concat(x, h_prev) without predictions; log 2204 vs 2206")),
    "recur-mem-nopred": Variant(
        {"model.feed_preds": False},
        base="recur-mem", family="architecture", section="Recurrence Without Predictions",
        description=(
        "memory bank without predictions; log 2192 vs 2254")),
    "norm-pred": Variant(
        {"model.pred_update": "norm_residual"},
        base="baseline", family="architecture", section="Normalized Prediction Residuals (TRM-style)",
        description=(
        "TRM-style prediction state: residual MLP + RMS norm added to the logits, h updated without preds; on "
        "the recipe (the log's base was recur-add); log 2257 vs 2265")),
    "pos-none": Variant(
        {"model.pos": "none"},
        base="original", family="architecture", section="Ablation: No Sudoku Positional Encoding",
        description=(
        "no positional information, original model; log 409 vs 643 solved")),
    "pos-sinusoidal": Variant(
        {"model.pos": "sinusoidal"},
        base="original", family="architecture", section="Experiment: Sinusoidal Positional Encoding",
        description=(
        "1D sinusoidal positions over the flattened grid, original model; log 0 solved")),
    "pos-rcb": Variant(
        {"model.pos": "rcb"},
        base="baseline", family="architecture",
        twin_on={"gpu-paper": "no-x-after-init", "cpu-quick": "no-x-after-init", "cpu-smoke": "no-x-after-init"},
        section="Key Insight 6 (pos_embedding study)",
        description=(
        "learned row + column + box embeddings instead of 2D RoPE; log: RoPE within 0.3pp")),
    "pos-once": Variant(
        {"model.pos_every_iter": False},
        base="baseline", family="architecture", section="Position Embedding Once vs Every Iteration",
        description=(
        "positions only in the first iteration: with 2D RoPE the rotation is applied in iteration 0 only (our "
        "reading; the pos study itself is not in the log); log 82.8% vs 83.6%")),
    "mlp-mixer": Variant(
        {"model.block": "mixer", "model.pos": "rcb"},
        base="extreme-bs512", family="architecture", section="MLP-Mixer (Architecture Swap)",
        description=(
        "token- and channel-mixing MLPs instead of attention (870K at 9x9) with row + col + box embeddings "
        "(no attention to rotate), on the 2.7M/SAM/BS512 base; log 71.9% vs 71.4%")),
    "middle1": Variant(
        {"model.sharing": "phased", "model.n_phases": 2, "model.n_layers": 2},
        base="original", family="architecture", section="2 Transformers × 2 Layers (Middle1)",
        description=(
        "2 transformers x 2 layers, one per half of the iterations (same total depth); log 162 vs 643 solved")),
    "middle2": Variant(
        {"model.sharing": "phased", "model.n_phases": 4, "model.n_layers": 1},
        base="original", family="architecture", section="4 Transformers × 1 Layer (Middle2)",
        description=(
        "4 transformers x 1 layer, one per quarter; log 0 solved")),
    "unrolled": Variant(
        {"model.sharing": "unrolled"},
        base="original", family="architecture", section="Unrolled (16 Separate Transformers)",
        description=(
        "a separate 4-layer transformer per iteration (16x params at 9x9); log 581 vs 643 solved")),
    "trm-nested": Variant(
        {"model.sharing": "nested", "model.block": "mixer", "model.n_layers": 2, "model.d_model": 512, "model.d_ff": 2048, "model.token_mlp": 512, "model.h_init": "random", "model.feed_preds": False, "model.pos": "none", "optim.weight_decay": 1.0, "optim.lr": 0.0001, "optim.name": "adamw"},
        base="no-warmup", family="architecture", section="TRM Architecture (Nested H_cycles/L_cycles)",
        description=(
        "TRM's nested H/L cycles (3 x 6, all but the last outer cycle without gradients, state detached "
        "between supervision steps and each step backpropagated on its own), fixed random initial states, 2 "
        "MLP-T layers at hidden 512 with ReLU MLPs: a 512-wide token MLP where TRM has a SwiGLU of width 256 "
        "(4 x 81 x 2/3 rounded up to 256), positions living in its weights, and a 2048-wide channel MLP "
        "(~4.4M params at 9x9 against the log's ~4.5M); lr 1e-4, wd 1.0 on every parameter, constant lr; log "
        "60.3% vs 76.3%")),
    "fixed-init": Variant(
        {"model.h_init": "random", "model.input": "concat"},
        base="warmup-only", family="architecture", section="Fixed Random Hidden State Init",
        description=(
        "a fixed random initial h (std 1) with the puzzle re-fed every iteration, on the warmup base; log "
        "77.5% vs 78.5%")),
    "carry-batches": Variant(
        {"train.carry": True},
        base="warmup-only", family="optimisation", section="Carry Hidden State Across Batches",
        description=(
        "slots keep an unsolved puzzle and its hidden state across training steps, on the warmup base; the "
        "log's run diverged")),
    "scale-down": Variant(
        {"model.d_model": 64, "model.n_layers": 2, "model.n_heads": 2, "model.d_ff": 256},
        base="extreme-bs512", family="scale", section="Scale DOWN",
        description=(
        "d64 L2 H2 ff256, ~100K params at 9x9, on the 2.7M/SAM/BS512 base; log 8.3%")),
    "scale-model": Variant(
        {"model.d_model": 192, "model.n_layers": 6, "model.n_heads": 6, "model.d_ff": 768, "train.batch_size": 256},
        base="original", family="scale", section="Scale Model (d=192, L=6)",
        description=(
        "d192 L6 H6 ff768 (~2.4M at 9x9) at batch 256, original model (the log's run was confounded by the "
        "halved batch); log 75.5% vs 79.8%")),
    "scale-up-accum": Variant(
        {**_SCALE_UP, "train.grad_accum": 4},
        base="extreme-bs512", family="scale", section="Scale UP",
        description=(
        "d256 L8 H8 ff1024 (~6.3M at 9x9), batch 512 as 128 x 4 accumulation; log 69.7%")),
    "scale-up": Variant(
        _SCALE_UP,
        base="extreme-bs512", family="scale", section="Scale UP with True Batch Size",
        description=(
        "d256 L8 H8 ff1024 (~6.3M at 9x9), true batch 512; log 73.5%. Accumulation is exact for this model "
        "(LayerNorm, no BatchNorm), so scale-up-accum differs only by rounding")),
    "scale-wide": Variant(
        {"model.d_model": 256, "model.d_ff": 1024},
        base="extreme-bs512", family="scale", section="Scale WIDE",
        description=(
        "d256 ff1024 L4 H4 (3.2M at 9x9): the log's text says d512 ff2048 but ~3.2M params, and d512 at 4 "
        "layers has 12.6M; d256 is the 4-layer shape with 3.2M (scale-wide-d512 runs the text's shape); log "
        "74.8%")),
    "scale-wide-d512": Variant(
        {"model.d_model": 512, "model.d_ff": 2048, "model.n_heads": 8},
        base="extreme-bs512", family="scale", section="Scale WIDE",
        description=(
        "d512 ff2048 L4 H8 as the log's text reads (12.6M at 9x9, not its ~3.2M)")),
    "scale-1m": Variant(
        {"model.d_model": 144, "model.d_ff": 576, "train.steps": 50000, "schedule.warmup_steps": 1400},
        base="baseline", family="scale", section="1M Parameters (NEW PARETO)",
        description=(
        "d144 ff576 (~1M at 9x9), 50K steps, warmup 1400; log 83.2% vs 82.8% (50K/800K). At a CPU preset the "
        "width rounds to the next multiple of 4 x heads")),
    "bs-128": Variant(
        {"train.batch_size": 128},
        base="original", family="scale", section="Batch Size Scaling",
        description=(
        "batch 128 on the original model (the log's first batch size); trained with the preset's recipe, not "
        "the log's early 100K steps on easy Kaggle puzzles; log 537 final / 679 peak of 1K")),
    "bs-256": Variant(
        {"train.batch_size": 256},
        base="original", family="scale", section="Batch Size Scaling",
        description=(
        "batch 256, original model; log 833 / 897 of 1K")),
    "bs-512": Variant(
        {"train.batch_size": 512},
        base="original", family="scale", section="Batch Size Scaling",
        description=(
        "batch 512, original model; log 672 / 866 of 1K")),
    "bs-2048": Variant(
        {"train.batch_size": 2048, "optim.lr": 0.001},
        base="extreme-bs512", family="scale", section="Batch Size Scaling on Sudoku-Extreme",
        description=(
        "batch 2048, lr 1e-3, on the 2.7M/SAM base; log 73.7%")),
    "bs-8192-accum": Variant(
        {"train.batch_size": 8192, "train.grad_accum": 2, "train.steps": 25000, "schedule.warmup_steps": 700},
        base="baseline", family="scale", section="Batch Size 8192 (OOM)",
        description=(
        "batch 8192 as 2 x 4096 accumulation, 25K steps, warmup 700 (the log's run ran out of memory at a "
        "true 8192)")),
    "sam": Variant(
        {"optim.name": "sam"},
        base="baseline", family="optimisation", section="Cosine LR Decay (NEW SOTA)",
        description=(
        "the recipe with SAM (rho 0.05); log 84.0% vs 83.6%")),
    "no-warmup": Variant(
        _SAM_ERA,
        base="baseline", family="optimisation", section="Batch Size Scaling on Sudoku-Extreme / LR Warmup",
        description=(
        "SAM, constant lr from step 0 (the log's BS=4096 run); log 76.3%")),
    "warmup-only": Variant(
        {"optim.name": "sam", "schedule.kind": "warmup"},
        base="baseline", family="optimisation", section="LR Warmup",
        description=(
        "SAM, 2K-step warmup then constant lr; log 78.5% (its cosine twin is `sam`, 84.0%)")),
    "ema-warmup": Variant(
        {"optim.ema_decay": 0.999},
        base="warmup-only", family="optimisation", section="EMA (Exponential Moving Average)",
        description=(
        "EMA (decay 0.999) on the warmup base; EMA and live weights both evaluated; log 77.5% vs 78.5%")),
    "ema": Variant(
        {"optim.ema_decay": 0.999},
        base="baseline", family="optimisation", section="EMA on Cosine LR (Retest)",
        description=(
        "EMA (decay 0.999) on the recipe; EMA and live weights both evaluated in the same run; log 83.6% both")),
    "wd-1.0": Variant(
        {"optim.weight_decay": 1.0},
        base="baseline", family="optimisation", section="High Weight Decay (nano-trm style)",
        description=(
        "weight decay 1.0 on every parameter (torch AdamW's default grouping); log 70.1% vs 83.6%")),
    "wd-1.0-matrices": Variant(
        {"optim.weight_decay": 1.0, "optim.decay": "matrices"},
        base="baseline", family="optimisation", section="",
        description=(
        "weight decay 1.0 on weight matrices only (not biases, norms, embeddings): beyond the log")),
    "gelu": Variant(
        {"model.activation": "gelu"},
        base="baseline", family="optimisation", section="GELU Activation",
        description=(
        "GELU activation; log 83.2% vs 83.6%")),
    "relu2": Variant(
        {"model.activation": "relu2"},
        base="baseline", family="optimisation", section="ReLU Squared Activation",
        description=(
        "ReLU squared activation; log 81.9% vs 83.6%")),
    "steps-50k": Variant(
        {"train.steps": 50000, "schedule.warmup_steps": 1400},
        base="baseline", family="optimisation", section="Shorter Training (50K steps)",
        description=(
        "50K steps, warmup 1400, phases scaled with them; log 82.8%")),
    "steps-140k": Variant(
        {"train.steps": 140000},
        base="baseline", family="optimisation", section="Longer Training (140K steps)",
        description=(
        "140K steps, phases scaled with them; the log's run timed out at 95K (82.4% there)")),
    "curriculum-reverse": Variant(
        {"curriculum.kind": "reverse"},
        base="baseline", family="curriculum", twin_on={"gpu-paper": "baseline", "cpu-smoke": "baseline"}, section="Curriculum Learning / Cosine LR Decay",
        description=(
        "hard to easy phases (the recipe's curriculum) on the recipe; the log's cosine curriculum runs used "
        "SAM: 84.0%")),
    "curriculum-mixed": Variant(
        {"curriculum.kind": "mixed"},
        base="baseline", family="curriculum", twin_on={"cpu-quick": "baseline"}, section="Cosine LR + Mixed Sampling",
        description=(
        "all difficulties from step 0 on the recipe; log (with SAM) 83.8% vs reverse 84.0%")),
    "curriculum-regular": Variant(
        {"curriculum.kind": "regular", "curriculum.thresholds": [2, 10, 50]},
        base="baseline", family="curriculum", section="Cosine LR + Regular Curriculum",
        description=(
        "easy to hard phases (rating <= 2, <= 10, <= 50, then all; at a CPU preset the preset's thresholds) "
        "on the recipe; log (with SAM) 80.6%")),
    "curriculum-hard-only": Variant(
        _top_buckets,
        base="baseline", family="curriculum", section="Hard-Only Training",
        description=(
        "only the top two rating buckets (the log's Kaggle difficulty >= 3.0 kept its top two of five "
        "buckets; rating >= 11 here); log: better on hard, much worse on easy")),
    "curriculum-easy-only": Variant(
        _easiest_bucket,
        base="baseline", family="curriculum", section="Mixed Difficulty Training",
        description=(
        "only the easiest rating bucket (the log's zero-shot model trained on difficulty 0.0); log 12.5% on "
        "its hardest bucket")),
    "curriculum-scaled-10k": Variant(
        {**_SAM_ERA, "curriculum.kind": "reverse", "train.steps": 10_000},
        base="baseline", family="curriculum", section="Curriculum Scaling at Large Batch Size",
        description=(
        "10K steps with the reverse phases scaled to them, SAM, constant lr (batch 4096 era); log 70.5%")),
    "curriculum-regular-scaled-10k": Variant(
        {"curriculum.kind": "regular", "curriculum.thresholds": [2, 10, 50]},
        base="curriculum-scaled-10k", family="curriculum", section="Curriculum Scaling at Large Batch Size",
        description=(
        "10K steps, easy-to-hard phases scaled, SAM, constant lr; log 67.1%")),
    "curriculum-plateau": Variant(
        {"curriculum.kind": "plateau", "schedule.kind": "stage_restarts"},
        base="baseline", family="curriculum", section="",
        description=(
        "gate raised when the loss plateaus, lr restarted at every stage (beyond the log: the plateau-aligned "
        "recipe)")),
    "augment": Variant(
        {"data.augment": True},
        base="baseline", family="curriculum", section="",
        description=(
        "a random validity-preserving symmetry and digit relabelling per training sample (beyond the log, "
        "which never augmented; the log names it as TRM's likely edge)")),
    "domain-swap": Variant(
        _domain_swap,
        base="baseline", family="curriculum", section="Training on Sudoku-Extreme",
        description=(
        "train on the other domain and evaluate on both: at 9x9 Kaggle-format data (data.source = a Kaggle "
        "CSV) against sudoku-extreme; at a CPU preset minimal generated puzzles (hard profile) against the "
        "preset's clue-rich ones; log: 31.7% vs 63.4% on extreme")),
}
