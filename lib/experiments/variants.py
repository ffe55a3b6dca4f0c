"""The log's experiments as named variants: the script that ran it, a base variant and the config keys it changes.

A variant is written in the log's 9x9 numbers (`overrides`); on a CPU preset each key keeps its ratio to the
recipe as its field declares (lib/config.py), so `iterations-32` doubles the preset's count. `derived` is a
function of the config built so far for values that depend on the preset's own scale (which rating buckets a
phase trains on); what it returns is used as it is. Adding a variant never stales a finished run: a run is
identified by its resolved config, not by this registry.

    "recur-mine": Variant(
        {"model.recurrence": "mine"},
        base="kaggle-reverse", family="architecture", script="exp_recur_mine.py", section="...",
        description="what runs; the log's figure"),

Scripts are paths in chenglou/sudoku-solver at commit c716dfe (the log's EXPERIMENTS.md), and at its head for
the sequel (iters/). tests/log_scripts.yaml holds what each script ran, read from it, and a test holds every
variant's resolved gpu-paper config and parameter count to it.

The log's eras, each a base the next experiments changed one thing of:
    original         sudoku.py: concat(puzzle, preds) re-fed, no hidden state, Muon, batch 128, easy puzzles
    kaggle-reverse   train_curriculum_reverse.py: the same model with SAM, batch 512, a reverse curriculum
    extreme-bs512    exp_extreme_baseline.py: encode once + h_prev, 2.7M sudoku-extreme, SAM, batch 512
    no-warmup        exp_scale_batch_4k.py: the same at batch 4096, lr 1.5e-3
    sam              exp_cosine.py: warmup + cosine decay, still SAM
    baseline         exp_cosine_no_sam.py: the recipe (AdamW), 83.6%
    iters-bs2048     iters/exp_bs2048_baseline.py: the sequel's 2D RoPE at batch 2048, 50K steps
"""
from __future__ import annotations

import typing
from dataclasses import dataclass, field

from lib.experiments.presets import PRESETS


@dataclass(frozen=True)
class Variant:
    overrides: dict = field(default_factory=dict)  # dotted keys, the log's 9x9 numbers
    derived: typing.Callable | None = None  # cfg -> overrides already on the preset's scale
    base: str | None = "baseline"  # the variant this one modifies, applied first (None: the defaults)
    family: str = ""  # the notebook that runs it (notebooks/NN_<family>.ipynb)
    # presets where it runs another variant's config exactly (config.config_twin checks the declaration)
    twin_on: dict = field(default_factory=dict)
    script: str = ""  # the log's script that ran it ("" beyond the log)
    section: str = ""  # the log's section heading ("" for an experiment beyond the log)
    description: str = ""  # what runs, the log's figure, and where the workbook differs on purpose and why
    # keys that take the preset's own value on a relative (CPU) preset instead of keeping their ratio: where
    # the ratio makes a degenerate run (a batch of 2), the claims are re-based, and the description says so
    rebased: tuple = ()


# --- rating gates on the preset's own buckets ------------------------------------------------------
# The scripts gate whole rating buckets. These name the same buckets on whatever edges a preset cuts.

def _easiest_bucket(cfg) -> dict:
    return {"curriculum.kind": "easy_only", "curriculum.easy_max": cfg.data.bucket_edges[1] - 1}


def _easy_at_9x9(cfg) -> dict:
    # the early scripts trained on Kaggle's easiest puzzles only; a small grid's easiest bucket is solved
    # by every variant, so on a relative (CPU) preset the whole pool trains, and the claims keep a spread
    return {} if PRESETS[cfg.preset].relative else _easiest_bucket(cfg)


def _top_buckets(cfg) -> dict:
    # train_hard.py kept Kaggle difficulty >= 3.0: the top two of its five buckets
    return {"curriculum.kind": "hard_only", "curriculum.hard_min": cfg.data.bucket_edges[-2]}


def _kaggle_reverse(cfg) -> dict:
    # train_curriculum_reverse.py: >= 3.0, >= 2.0, >= 1.0 of Kaggle's five buckets, 20K steps each, then all:
    # the top two buckets, the top three, all but the easiest
    gates = list(reversed(cfg.data.bucket_edges[1:-1]))
    return {"curriculum.kind": "reverse", "curriculum.thresholds": gates, "curriculum.phase_fractions": [0.2] * len(gates)}


def _kaggle_regular(cfg) -> dict:
    # train_curriculum.py: < 1.0, < 2.0, < 3.0, < 4.0 of Kaggle's buckets, 20K steps each, then all
    gates = [edge - 1 for edge in cfg.data.bucket_edges[1:]]
    return {"curriculum.kind": "regular", "curriculum.thresholds": gates, "curriculum.phase_fractions": [0.2] * len(gates)}


def _three_phases(fractions: list[float]):
    # iters/exp_3phase_*.py: the top bucket ("rating 21+" keeps 51+), then all but the easiest ("1+"), then all
    def gates(cfg) -> dict:
        edges = cfg.data.bucket_edges
        return {"curriculum.thresholds": [edges[-1], edges[1]], "curriculum.phase_fractions": fractions}
    return gates


def _domain_swap(cfg) -> dict:
    if cfg.data.source == "generated":  # minimal puzzles against clue-rich ones (half the cells given)
        other = 0 if cfg.data.min_clues else cfg.data.grid_size ** 2 // 2
        return {"data.min_clues": other, "eval.sources": [f"generated:min_clues={cfg.data.min_clues}"]}
    return {"data.source": "kaggle", "eval.sources": [cfg.data.source]}


# --- the eras' settings -----------------------------------------------------------------------------

_MUON = {"optim.name": "muon", "optim.muon_lr": 0.02, "optim.lr": 1e-3, "schedule.kind": "constant",
         "schedule.warmup_steps": 0}  # sudoku.py: Muon 0.02 on matrices, AdamW 1e-3 on the rest, constant
# the ablation scripts of era 1 set neither autocast nor TF32, unlike sudoku.py: plain IEEE fp32 on a GPU
_FP32 = {"train.dtype": "float32"}
_FP32_NOTE = "; plain fp32 on a GPU, as its script (no autocast, no TF32; sudoku.py had both)"
_SAM_CONSTANT = {"optim.name": "sam", "optim.lr": 1e-3, "schedule.kind": "constant", "schedule.warmup_steps": 0}
_KAGGLE = "the script trained on Kaggle's 3M-puzzle CSV (difficulty buckets), which is not here: the preset's " \
          "data and buckets stand in, the script's phases gating the same rank of bucket"
_SCALE_UP = {"model.d_model": 256, "model.n_layers": 8, "model.n_heads": 8, "model.d_ff": 1024}
_ITERS = "the sequel's iteration-scaling runs (iters/EXPERIMENTS_ITERS.md) evaluate to 1024-2048 iterations"

VARIANTS: dict[str, Variant] = {
    # --- the recipe --------------------------------------------------------------------------------
    "baseline": Variant(
        {}, base=None, family="baseline", script="exp_cosine_no_sam.py",
        section="Experiment: Cosine LR Without SAM (NEW RECOMMENDED BASELINE)",
        description="the recipe: the puzzle encoded once, h = h_prev + pred_proj(preds) + row/col/box embeddings, "
                    "4 nn.TransformerEncoder-style layers (dropout 0.1), a Linear head, AdamW betas (0.9, 0.95) "
                    "with wd 0.01 on every parameter and no clipping, 2K warmup + cosine to 1%, the reverse "
                    "curriculum (the rating buckets the script's 21+/6+/1+ gates admit: 51+, 11+, 1+), loss on "
                    "the blank cells at every iteration; log 83.6% on sudoku-extreme"),

    # --- era 1: the first model (Kaggle's easy puzzles, Muon) ---------------------------------------
    "original": Variant(
        {"model.input": "concat", "model.recurrence": "none", **_MUON, "train.batch_size": 128,
         "train.steps": 100_000}, derived=_easy_at_9x9, family="iterations", script="sudoku.py",
        section="Baseline: Iterative Transformer", rebased=("train.batch_size", "train.steps"),
        description="the log's first model: input_proj(concat(onehot(puzzle), preds)) re-fed every iteration, no "
                    "hidden-state recurrence, row/col/box embeddings; Muon (lr 0.02, momentum 0.95, Newton-Schulz) "
                    "on every matrix and AdamW (1e-3) on the rest, constant lr, batch 128, 100K steps, on the "
                    "easiest puzzles only; log 643 of 1K easy Kaggle puzzles. " + _KAGGLE + "; on a CPU preset "
                    "every bucket trains, since a small grid's easiest bucket is solved by every variant; and it trains at the "
                    "preset's own batch and steps (re-based): the batch ratio (128 of 4096) makes a batch of 2 at "
                    "cpu-quick, where the model does not learn on most seeds, and its ablations' claims are about "
                    "the architecture, not the sample budget"),
    "no-iteration": Variant(
        {"model.iterations": 1, **_FP32}, base="original", family="iterations", script="ablation_no_iteration.py",
        section="Ablation: No Iteration",
        description="one forward pass of the original model (the 19-wide input kept, predictions zero); log 0 "
                    "solved (64.3% cells)" + _FP32_NOTE),
    "final-only-loss": Variant(
        {"model.loss": "final", **_FP32}, base="original", family="iterations", script="ablation_no_intermediate.py",
        section="Ablation: No Intermediate Supervision",
        description="the original model with the loss on the last iteration only; log 428 vs 643 solved"
                    + _FP32_NOTE),
    "pos-none": Variant(
        {"model.pos": "learned", **_FP32}, base="original", family="architecture",
        script="pos_embedding/ablation_no_sudoku_pos.py", section="Ablation: No Sudoku Positional Encoding",
        description="no row/col/box structure: one learned vector per cell (std 0.02), original model; log 409 vs "
                    "643 solved" + _FP32_NOTE),
    "pos-sinusoidal": Variant(
        {"model.pos": "sinusoidal", **_FP32}, base="original", family="architecture",
        script="pos_embedding/exp_sinusoidal_pos.py", section="Experiment: Sinusoidal Positional Encoding",
        description="fixed sinusoidal row + column + box encodings, original model, built as the script did: one "
                    "9-position table for all three, so mirror-image cells of the diagonal boxes get the same "
                    "encoding and, both blank, the same digit; log 0 solved" + _FP32_NOTE),
    "input-proj-add": Variant(
        {"model.input": "proj_add", **_FP32}, base="original", family="architecture", script="exp_proj_add.py",
        section="Experiment: Project-then-Add Input",
        description="separate digit / prediction / empty projections, added, original model; log 555 solved "
                    "(rerun) vs 643" + _FP32_NOTE),
    "input-proj-concat": Variant(
        {"model.input": "proj_concat", **_FP32}, base="original", family="architecture", script="exp_proj_concat.py",
        section="Experiment: Project-then-Concat Input",
        description="the same three projections at widths d/2, 3d/8, d/8, concatenated, original model; log 582 "
                    "vs 643" + _FP32_NOTE),
    "middle1": Variant(
        {"model.sharing": "phased", "model.n_phases": 2, "model.n_layers": 2, **_FP32}, base="original",
        family="architecture", script="exp_middle1.py", section="Experiment: 2 Transformers × 2 Layers (Middle1)",
        description="2 transformers x 2 layers, one per half of the iterations (same total depth); log 162 vs "
                    "643 solved" + _FP32_NOTE),
    "middle2": Variant(
        {"model.sharing": "phased", "model.n_phases": 4, "model.n_layers": 1, **_FP32}, base="original",
        family="architecture", script="exp_middle2.py", section="Experiment: 4 Transformers × 1 Layer (Middle2)",
        description="4 transformers x 1 layer, one per quarter of the iterations; log 0 solved" + _FP32_NOTE),
    "unrolled": Variant(
        {"model.sharing": "unrolled", **_FP32}, base="original", family="architecture", script="exp_unrolled.py",
        section="Experiment: Unrolled (16 Separate Transformers)",
        description="a separate 4-layer transformer per iteration (12.7M params at 9x9); log 581 vs 643 solved"
                    + _FP32_NOTE),
    "bs-256": Variant(
        {"train.batch_size": 256, "train.steps": 100_000}, base="original", family="scale", script="sudoku_bs256.py",
        section="Experiment: Batch Size Scaling",
        description="the original at batch 256 (lr unchanged; the BS=128 row is `original`); log 833 final / 897 "
                    "peak of 1K"),
    "bs-512": Variant(
        {"train.batch_size": 512, "train.steps": 100_000}, base="original", family="scale", script="sudoku_bs512.py",
        section="Experiment: Batch Size Scaling",
        description="the original at batch 512; log 672 / 866 of 1K"),
    "sam-bs512": Variant(
        {**_SAM_CONSTANT, "train.batch_size": 512, "train.steps": 100_000}, base="original", family="optimisation",
        script="exp_sam.py",
        section="Experiment: SAM (Sharpness-Aware Minimization)",
        description="SAM (rho 0.05) around AdamW on every parameter, lr 1e-3 constant, batch 512, the original "
                    "model (the script dropped Muon too, so the log's SAM gain is not SAM's alone); log 959 of "
                    "1K easy vs 672 (Muon, batch 512)"),
    "sam-bs256": Variant(
        {"train.batch_size": 256}, base="sam-bs512", family="optimisation", script="exp_sam_bs256.py",
        section="Experiment: SAM (Sharpness-Aware Minimization)",
        description="SAM at batch 256; log 927 of 1K"),
    "curriculum-easy-only": Variant(
        {}, derived=_easiest_bucket, base="sam-bs512", family="curriculum",
        twin_on={"gpu-paper": "sam-bs512", "gpu-iters": "sam-bs512"},
        script="exp_sam.py", section="Experiment: Mixed Difficulty Training",
        description="the section's zero-shot model: exp_sam.py's, trained on the easiest bucket only (at every "
                    "preset) and tested on all; log 95.9% easy, 12.5% on the hardest"),

    # --- era 2: Kaggle's five buckets, SAM, batch 512 -------------------------------------------------
    "kaggle-reverse": Variant(
        {}, derived=_kaggle_reverse, base="sam-bs512", family="curriculum",
        script="train_curriculum_reverse.py", section="Experiment: Curriculum Learning",
        description="the original model with SAM, batch 512, lr 1e-3 constant, 100K steps, every bucket, hard to "
                    "easy: the top two buckets, the top three, all but the easiest for 20K steps each, then all "
                    "(the base of the recurrence experiments); log 74.1% of 2.5K Kaggle. " + _KAGGLE),
    "kaggle-regular": Variant(
        {}, derived=_kaggle_regular, base="kaggle-reverse", family="curriculum", script="train_curriculum.py",
        section="Experiment: Curriculum Learning",
        description="easy to hard: the easiest bucket, the two easiest, ... for 20K steps each, then all; log 70.7%"),
    "kaggle-mixed": Variant(
        {"curriculum.kind": "mixed"}, base="sam-bs512", family="curriculum", script="train_mixed.py",
        section="Experiment: Mixed Difficulty Training",
        description="every bucket from step 0, uniformly (the script's size-proportional draw); log 85.1% on "
                    "difficulty 3.x vs the easy-only model's 27.9%"),
    "curriculum-hard-only": Variant(
        {}, derived=_top_buckets, base="sam-bs512", family="curriculum", script="train_hard.py",
        section="Experiment: Hard-Only Training",
        description="only the top two buckets (Kaggle difficulty >= 3.0), SAM, batch 512; log: better on hard, "
                    "much worse on easy"),
    "iterations-32": Variant(
        {"model.iterations": 32, "train.batch_size": 256}, base="kaggle-reverse", family="iterations",
        script="exp_scale_iter.py", section="Scale Iterations (32)",
        description="32 iterations at batch 256 (the log's confound) on the reverse-curriculum model; log 62.4% "
                    "vs 79.8%, unstable"),
    "scale-model": Variant(
        {"model.d_model": 192, "model.n_layers": 6, "model.n_heads": 6, "model.d_ff": 768,
         "train.batch_size": 256}, base="kaggle-reverse", family="scale", script="exp_scale_model.py",
        section="Scale Model (d=192, L=6)",
        description="d192 L6 H6 ff768 (2.68M params at 9x9, the log's ~2.4M) at batch 256 on the "
                    "reverse-curriculum model (confounded by the batch); log 75.5% vs 79.8%"),
    "recur-add": Variant(
        {"model.recurrence": "add"}, base="kaggle-reverse", family="architecture", script="exp_recur_add.py",
        section="Experiment: Hidden State Recurrence",
        description="h = input_proj(concat(x, preds)) + pos + h_prev; log 2265 vs 1994 of 2.5K"),
    "recur-concat": Variant(
        {"model.recurrence": "concat"}, base="kaggle-reverse", family="architecture", script="exp_recur_concat.py",
        section="Experiment: Hidden State Recurrence",
        description="input_proj(concat(x, preds, h_prev)), one Linear's init over the whole 147-wide input as the "
                    "script's (two layers, the h_prev columns apart, drawn from their joint fan-in); log 2206"),
    "recur-gated": Variant(
        {"model.recurrence": "gated"}, base="kaggle-reverse", family="architecture", script="exp_recur_gated.py",
        section="Experiment: Hidden State Recurrence",
        description="a sigmoid gate blends h_prev with the transformer's output (h_prev never enters the "
                    "transformer); log 2141"),
    "recur-mem": Variant(
        {"model.recurrence": "mem"}, base="kaggle-reverse", family="architecture", script="exp_recur_mem.py",
        section="Experiment: Hidden State Recurrence",
        description="a separate 64-dim memory bank per cell, read into h and added to every iteration; log 2254"),
    "recur-add-nopred": Variant(
        {"model.feed_preds": False}, base="recur-add", family="architecture", script="exp_recur_add_nopred.py",
        section="Ablation: Recurrence Without Predictions",
        description="x + h_prev: the puzzle still re-fed, predictions not; log 2238 vs 2265"),
    "recur-concat-nopred": Variant(
        {"model.feed_preds": False}, base="recur-concat", family="architecture",
        script="exp_recur_concat_nopred.py", section="Ablation: Recurrence Without Predictions",
        description="concat(x, h_prev) without predictions; log 2204 vs 2206"),
    "recur-mem-nopred": Variant(
        {"model.feed_preds": False}, base="recur-mem", family="architecture", script="exp_recur_mem_nopred.py",
        section="Ablation: Recurrence Without Predictions",
        description="memory bank without predictions; log 2192 vs 2254"),
    "no-x-after-init": Variant(
        {"model.input": "encode_once", "model.recurrence": "add"}, base="kaggle-reverse", family="architecture",
        script="exp_no_x_after_init.py", section="Experiment: No X After Init (TRM-style Input)",
        description="the puzzle encoded once into h, then h = h_prev + pred_proj(preds) + pos; log 2248 vs "
                    "recur-add's 2265 of 2.5K"),
    "norm-pred": Variant(
        {"model.pred_update": "norm_residual"}, base="no-x-after-init", family="architecture",
        script="exp_norm_pred.py", section="Experiment: Normalized Prediction Residuals (TRM-style)",
        description="TRM-style prediction state: pred = RMSNorm(pred + MLP([h, pred])) (a GELU MLP, 4d wide, as "
                    "the script's) added to the logits, h updated from h_prev alone; log 2257 vs 2265"),
    "domain-swap": Variant(
        {}, derived=_domain_swap, base="kaggle-reverse", family="curriculum", script="train_curriculum_reverse.py",
        section="Experiment: Training on Sudoku-Extreme",
        description="train on the other domain, evaluate on both: at 9x9 Kaggle-format data (data.source = a "
                    "Kaggle CSV) against sudoku-extreme, at a CPU preset minimal generated puzzles against the "
                    "preset's clue-rich ones; log: the Kaggle-trained model 31.7% on sudoku-extreme vs 63.4% for "
                    "one trained on it (exp_extreme_curriculum.py, which trained on 400K rows of sudoku-extreme's test split)"),

    # --- era 3: sudoku-extreme, SAM, constant lr ----------------------------------------------------
    "extreme-bs512": Variant(
        {**_SAM_CONSTANT, "train.batch_size": 512}, family="scale", script="exp_extreme_baseline.py",
        section="New Baseline: 2.7M Sudoku-Extreme",
        description="the first 2.7M sudoku-extreme model: the recipe's architecture and curriculum with SAM, "
                    "batch 512, lr 1e-3 constant, no warmup; log 71.4%"),
    "mlp-mixer": Variant(
        {"model.block": "mixer", "model.activation": "gelu", "model.dropout": 0.0, "model.pos": "rcb",
         "model.init": "torch"}, base="extreme-bs512",
        family="architecture", script="exp_mlp_mixer.py", section="Experiment: MLP-Mixer (Architecture Swap)",
        description="pre-norm token MLP (81 -> 512 -> 81) and channel MLP, GELU, no dropout, row/col/box "
                    "embeddings, instead of attention, its four layers initialised each on its own (870K at 9x9); log "
                    "71.9% vs 71.4%"),
    "scale-down": Variant(
        {"model.d_model": 64, "model.n_layers": 2, "model.n_heads": 2, "model.d_ff": 256}, base="extreme-bs512",
        family="scale", script="exp_scale_down.py", section="Experiment: Scale DOWN",
        description="d64 L2 H2 ff256, 104K params at 9x9; log 8.3%"),
    "scale-up-accum": Variant(
        {**_SCALE_UP, "train.grad_accum": 4}, base="extreme-bs512", family="scale", script="exp_scale_up.py",
        section="Experiment: Scale UP",
        description="d256 L8 H8 ff1024 (6.3M at 9x9, the log's ~5M), batch 512 as 4 x 128 accumulation; log 69.7%"),
    "scale-up": Variant(
        {**_SCALE_UP, "train.grad_accum": 1}, base="extreme-bs512", family="scale", script="exp_scale_up_big_gpu.py",
        section="Experiment: Scale UP with True Batch Size",
        description="d256 L8 H8 ff1024 (6.3M at 9x9), a true batch 512 (grad_accum pinned to 1: the memory plan "
                    "never splits it); log 73.5%. Accumulation is exact for "
                    "this model (LayerNorm, no BatchNorm), so scale-up-accum differs only by rounding and dropout"),
    "scale-wide": Variant(
        {"model.d_model": 256, "model.n_heads": 8, "model.d_ff": 1024}, base="extreme-bs512", family="scale",
        script="exp_scale_wide.py", section="Experiment: Scale WIDE",
        description="d256 L4 H8 ff1024 (3.17M at 9x9): the code's shape (the log's text says d512, which would be "
                    "12.6M); log 74.8%"),
    "bs-2048": Variant(
        {"train.batch_size": 2048}, base="extreme-bs512", family="scale", script="exp_scale_batch.py",
        section="Experiment: Batch Size Scaling on Sudoku-Extreme",
        description="batch 2048, lr 1e-3, SAM, constant; log 73.7%"),
    "no-warmup": Variant(
        {"train.batch_size": 4096, "optim.lr": 1.5e-3}, base="extreme-bs512", family="optimisation",
        script="exp_scale_batch_4k.py", section="Experiment: Batch Size Scaling on Sudoku-Extreme",
        description="batch 4096, lr 1.5e-3, SAM, constant lr from step 0 (the warmup experiments' base); log 76.3%"),
    "curriculum-scaled-10k": Variant(
        {"train.steps": 10_000}, base="no-warmup", family="curriculum", script="exp_scale_batch_4k_v2.py",
        section="Experiment: Curriculum Scaling at Large Batch Size",
        description="10K steps with the reverse phases scaled to them (2K each), SAM, constant lr, batch 4096; "
                    "log 70.5%"),
    "curriculum-regular-scaled-10k": Variant(
        {"curriculum.kind": "regular", "curriculum.thresholds": [2, 10, 50]}, base="curriculum-scaled-10k",
        family="curriculum", script="exp_scale_batch_4k_curriculum.py",
        section="Experiment: Curriculum Scaling at Large Batch Size",
        description="10K steps, easy-to-hard phases (ratings <= 2, <= 10, <= 50, then all) scaled; log 67.1%"),
    "trm-nested": Variant(
        {"model.sharing": "nested", "model.h_cycles": 3, "model.l_cycles": 6, "model.iterations": 1,
         "model.block": "trm", "model.n_layers": 2, "model.d_model": 512, "model.d_ff": 1408, "model.token_mlp": 256,
         "model.input": "embed", "model.feed_preds": False, "model.pos": "none", "model.h_init": "random",
         "model.loss": "final", "model.head_bias": False, "model.init": "torch", "optim.lr": 1e-4,
         "optim.weight_decay": 1.0, "optim.grad_clip": 1.0, "schedule.kind": "constant", "schedule.warmup_steps": 0},
        family="architecture", script="exp_trm_nested.py", section="Experiment: TRM Architecture (Nested H_cycles/L_cycles)",
        description="TRM's nested recursion as the script ran it: one supervision step of 3 outer cycles x (6 z "
                    "updates + 1 h update) through 2 post-norm MLP-T blocks (parameter-free RMSNorm, bias-free "
                    "SwiGLU token (81 -> 256) and channel (512 -> 1408) MLPs), only the last cycle with gradients, "
                    "digit embeddings x sqrt(512) injected into every z update, H_init/L_init that never train, "
                    "loss on the final output; AdamW lr 1e-4 constant, wd 1.0, clipping 1.0, batch 4096 "
                    "(4.46M params at 9x9); log 60.3% vs 76.3%"),
    "warmup-only": Variant(
        {"schedule.kind": "warmup", "schedule.warmup_steps": 2_000}, base="no-warmup", family="optimisation",
        script="exp_warmup.py", section="Experiment: LR Warmup",
        description="SAM, 2K-step linear warmup then constant lr, batch 4096; log 78.5% (its cosine twin is `sam`, 84.0%)"),
    "fixed-init": Variant(
        {"model.h_init": "random"}, base="warmup-only", family="architecture", script="exp_fixed_init.py",
        section="Experiment: Fixed Random Hidden State Init",
        description="h starts from one fixed random vector per cell (std 1, shared by all puzzles, never "
                    "trained) and the encoded puzzle is added every iteration; log 77.5% vs 78.5%"),
    "carry-batches": Variant(
        {"train.carry": True}, base="warmup-only", family="optimisation", script="exp_carry.py",
        section="Experiment: Carry Hidden State Across Batches",
        description="batch slots keep an unsolved puzzle and its state across steps, and a solved slot takes a "
                    "fresh puzzle every step, as in the script (a slot is solved when its blank cells are right, "
                    "as the script's check); the log's run diverged. Unlike the script, the "
                    "workbook judges 'solved' at the unperturbed weights (the script at SAM's perturbed second "
                    "pass) and keeps carried slots across a phase change (the script reset every slot there): "
                    "the workbook's carry is the mechanism the log names, not the script's SAM-bound details"),
    "ema-warmup": Variant(
        {"optim.ema_decay": 0.999}, base="warmup-only", family="optimisation", script="exp_ema.py",
        section="Experiment: EMA (Exponential Moving Average)",
        description="EMA 0.999 on the warmup base, EMA and live weights both evaluated. The script's EMA never "
                    "ran (built before torch.compile, its names never matched), so the log's 77.5% vs 78.5% "
                    "compares two live runs; the workbook runs the EMA the script meant"),

    # --- era 4: cosine decay -------------------------------------------------------------------------
    "sam": Variant(
        {"optim.name": "sam"}, family="optimisation", script="exp_cosine.py",
        section="Experiment: Cosine LR Decay (NEW SOTA)",
        description="the recipe with SAM (rho 0.05), warmup + cosine, the reverse curriculum; log 84.0% vs 83.6%"),
    "curriculum-mixed": Variant(
        {"curriculum.kind": "mixed"}, base="sam", family="curriculum", script="exp_cosine_mixed.py",
        section="Experiment: Cosine LR + Mixed Sampling",
        description="every rating from step 0 (SAM, cosine); log 83.8% vs reverse 84.0%"),
    "curriculum-regular": Variant(
        {"curriculum.kind": "regular", "curriculum.thresholds": [2, 10, 50]}, base="sam", family="curriculum",
        script="exp_cosine_regular.py", section="Experiment: Cosine LR + Regular Curriculum",
        description="easy to hard: ratings <= 2, <= 10, <= 50 (a CPU preset's own gates), then all (SAM, "
                    "cosine); log 80.6%"),
    "pos-once": Variant(
        {"model.pos_every_iter": False}, base="sam", family="architecture",
        script="pos_embedding/exp_cosine_pos_once.py", section="Experiment: Position Embedding Once vs Every Iteration",
        description="row/col/box added once, to the encoded puzzle, with SAM as the script (the log compares its "
                    "82.8% with the no-SAM 83.6%; against SAM's 84.0% the gap is 1.2pp)"),
    "steps-140k": Variant(
        {"train.steps": 140_000}, base="sam", family="optimisation", script="exp_cosine_140k.py",
        section="Experiment: Longer Training (140K steps)",
        description="140K steps with SAM (the script derives from exp_cosine.py, not the no-SAM recipe the log "
                    "names), phases doubled, warmup kept at 2K; the log's run timed out at 95K (82.4% there)"),
    "wd-1.0": Variant(
        {"optim.weight_decay": 1.0}, family="optimisation", script="exp_cosine_wd.py",
        section="Experiment: High Weight Decay (nano-trm style)",
        description="weight decay 1.0 on every parameter; log 70.1% vs 83.6%"),
    "gelu": Variant(
        {"model.activation": "gelu"}, family="optimisation", script="exp_cosine_gelu.py",
        section="Experiment: GELU Activation", description="GELU in the FFN; log 83.2% vs 83.6%"),
    "relu2": Variant(
        {"model.activation": "relu2"}, family="optimisation", script="exp_cosine_relu2.py",
        section="Experiment: ReLU Squared Activation", description="ReLU squared in the FFN; log 81.9% vs 83.6%"),
    "steps-50k": Variant(
        {"train.steps": 50_000, "schedule.warmup_steps": 1_400}, family="optimisation", script="exp_cosine_50k.py",
        twin_on={"gpu-iters": "baseline", "cpu-iters": "baseline"},
        section="Experiment: Shorter Training (50K steps)",
        description="50K steps, warmup 1400, phases scaled with them; log 82.8%"),
    "ema": Variant(
        {"optim.ema_decay": 0.999}, family="optimisation", script="exp_cosine_ema.py",
        section="Experiment: EMA on Cosine LR (Retest)",
        description="EMA 0.999 on the recipe; EMA and live weights evaluated in the same run; log 83.6% both"),
    "bs-8192-accum": Variant(
        {"train.batch_size": 8192, "train.grad_accum": 2, "train.steps": 25_000, "schedule.warmup_steps": 700},
        family="scale", script="exp_cosine_25k_bs8k.py", section="Experiment: Batch Size 8192 (OOM)",
        description="batch 8192, 25K steps, warmup 700: the script's true batch ran out of memory, so the workbook "
                    "takes it as 2 x 4096 accumulated (exact for this model but for dropout's draws)"),
    "scale-1m": Variant(
        {"model.d_model": 144, "model.d_ff": 576, "train.steps": 50_000, "schedule.warmup_steps": 1_400},
        family="scale", script="exp_cosine_50k_1M.py", section="Experiment: 1M Parameters (NEW PARETO)",
        description="d144 ff576 (1.01M at 9x9), 50K steps, warmup 1400; log 83.2% vs 82.8% (50K/800K). At a CPU "
                    "preset the width rounds to the next multiple of 4 x heads"),
    "pos-rope2d": Variant(
        # batch and lr stated, though the recipe's: on the sequel's presets this is its batch-4096 control
        {"model.pos": "rope2d", "model.rope_base": 10.0, "model.init": "torch", "train.batch_size": 4096,
         "optim.lr": 1.5e-3}, base="steps-50k", family="architecture", script="pos_embedding/exp_faster_2drope.py",
        section="Key Insights (6): positional encoding",
        description="2D RoPE (base 10, half of each head's dims turning with the row, half with the column) "
                    "instead of row/col/box, in custom layers each initialised on its own, 50K steps, batch 4096; "
                    "the position study: 82.5% vs row/col/box 82.8%"),

    # --- beyond the log ------------------------------------------------------------------------------
    "curriculum-plateau": Variant(
        {"curriculum.kind": "plateau", "schedule.kind": "stage_restarts"}, family="curriculum",
        description="the reverse gates, each raised when the loss plateaus, the lr restarted at every stage "
                    "(the plateau-aligned recipe, carried over from a language model's frequency cutoff)"),
    "augment": Variant(
        {"data.augment": True}, family="curriculum",
        description="a random validity-preserving symmetry and digit relabelling per training sample (the log "
                    "never augmented; it names augmentation as TRM's likely edge)"),
    "wd-1.0-matrices": Variant(
        {"optim.weight_decay": 1.0, "optim.decay": "matrices"}, family="optimisation",
        description="weight decay 1.0 on weight matrices only (not biases, norms, embeddings)"),

    # --- the sequel: test-time iteration scaling (iters/, at the repository's head) --------------------
    "iters-bs2048": Variant(
        {"train.batch_size": 2048, "optim.lr": 1.5e-3}, base="pos-rope2d", family="test_time",
        script="iters/exp_bs2048_baseline.py",
        section="iters: Batch size 2048",
        description="2D RoPE at batch 2048, lr 1.5e-3, 50K steps, warmup 1400, phases at 10K/20K/30K (the "
                    "sequel's control); " + _ITERS + ": 81.4% at 16, 98.1% at 1024"),
    "iters-lr2e3": Variant(
        {"optim.lr": 2e-3}, base="iters-bs2048", family="test_time", script="iters/exp_baseline_lr2e3.py",
        twin_on={"gpu-iters": "baseline", "cpu-iters": "baseline"},
        section="iters: Learning rate",
        description="lr 2e-3: the sequel's best, 81.8% at 16 test iterations, 95.3% at 128, 98.9% at 1024 (the "
                    "gpu-iters preset's baseline)"),
    "iters-lr1e3": Variant(
        {"optim.lr": 1e-3}, base="iters-bs2048", family="test_time", script="iters/exp_baseline_lr1e3.py",
        section="iters: Learning rate", description="lr 1e-3: peaks at 64 test iterations (90.9%), 20.8% at 1024"),
    "iters-lr25e4": Variant(
        {"optim.lr": 2.5e-3}, base="iters-bs2048", family="test_time", script="iters/exp_baseline_lr25e4.py",
        section="iters: Learning rate", description="lr 2.5e-3: collapses at 128 test iterations (84.1%, 0.1% at 1024)"),
    "iters-lr3e3": Variant(
        {"optim.lr": 3e-3}, base="iters-bs2048", family="test_time", script="iters/exp_baseline_lr3e3.py",
        section="iters: Learning rate", description="lr 3e-3: collapses at 64 (39.9%)"),
    "iters-bs1024": Variant(
        {"train.batch_size": 1024}, base="iters-bs2048", family="test_time", script="iters/exp_bs1024_curriculum.py",
        section="iters: Batch size", description="batch 1024: collapses at 256 (54.8%); batch 4096 is pos-rope2d "
                                                   "(the sequel: collapses at 48)"),
    "iters-d96": Variant(
        {"model.d_model": 96, "model.n_heads": 3, "model.d_ff": 384}, base="iters-bs2048", family="test_time",
        script="iters/exp_smaller_3h.py", section="iters: Model size",
        description="d96, 3 heads (450K at 9x9): peaks at 128 (87.8%), drifts to 73.2% at 2048"),
    "iters-d192": Variant(
        {"model.d_model": 192, "model.n_heads": 6, "model.d_ff": 768}, base="iters-bs2048", family="test_time",
        script="iters/exp_wider_6h.py", section="iters: Model size",
        description="d192, 6 heads (1.79M at 9x9), lr 1.5e-3: 91.3% at 32, collapses at 64"),
    "iters-d192-lr1e3": Variant(
        {"optim.lr": 1e-3}, base="iters-d192", family="test_time", script="iters/exp_wider_6h_lowlr.py",
        section="iters: Model size", description="d192 at lr 1e-3: 94.7% at 128, collapses at 256"),
    "iters-d192-lr2e3": Variant(
        {"optim.lr": 2e-3}, base="iters-d192", family="test_time", script="iters/exp_wider_6h_lr2e3.py",
        section="iters: Model size", description="d192 at lr 2e-3: 94.3% at 64, collapses at 128"),
    "iters-32": Variant(
        {"model.iterations": 32, "curriculum.kind": "mixed"}, base="iters-bs2048", family="test_time",
        script="iters/exp_32iters.py", section="iters: 32 training iterations",
        description="32 training iterations, mixed sampling: 91.8% at 256, down at 512"),
    "iters-32-curriculum": Variant(
        {"model.iterations": 32}, base="iters-bs2048", family="test_time", script="iters/exp_32iters_curriculum.py",
        section="iters: 32 training iterations", description="32 training iterations, the curriculum: collapses at 128"),
    "iters-100k": Variant(
        {"train.steps": 100_000}, derived=lambda cfg: {"curriculum.phase_fractions": [0.1] * len(cfg.curriculum.thresholds)},
        base="iters-bs2048",
        family="test_time", script="iters/exp_bs2048_100k.py", section="iters: Longer training",
        description="100K steps, the cosine stretched to them, the phases kept at 10K/20K/30K: collapses at 64"),
    "iters-3phase-40k": Variant(
        {"train.steps": 40_000}, derived=_three_phases([0.25, 0.25]), base="iters-bs2048", family="test_time",
        script="iters/exp_3phase_40k.py", section="iters: Curriculum",
        description="40K steps, 3 phases (the top bucket 10K, all but the easiest 10K, then all): stable, 95.9% at 1024"),
    "iters-3phase-50k": Variant(
        {}, derived=_three_phases([0.3, 0.3]), base="iters-bs2048", family="test_time", twin_on={"cpu-smoke": "iters-bs2048"},
        script="iters/exp_3phase_50k.py", section="iters: Curriculum",
        description="50K steps, 3 phases of 15K/15K/20K: collapses at 64"),
    "iters-fp-weight": Variant(
        {"model.fixed_point": "weight"}, base="iters-bs2048", family="test_time",
        script="iters/exp_bs2048_fixedpoint.py", section="iters: Fixed-point losses",
        description="twice the cross-entropy on cells the previous iteration had right: collapses at 512"),
    "iters-fp-l2": Variant(
        {"model.fixed_point": "l2"}, base="iters-bs2048", family="test_time", script="iters/exp_bs2048_fp_l2.py",
        section="iters: Fixed-point losses",
        description="+ L2 of the softmax toward the answer on cells already right: collapses at 128-256"),
    "iters-fp-copy": Variant(
        {"model.fixed_point": "copy"}, base="iters-bs2048", family="test_time", script="iters/exp_bs2048_fp_copy.py",
        section="iters: Fixed-point losses",
        description="+ L2 of the softmax toward the previous iteration's on cells already right: holds to 512 (93.3%)"),
    "iters-fp-gradmask": Variant(
        {"model.fixed_point": "gradmask"}, base="iters-bs2048", family="test_time",
        script="iters/exp_bs2048_fp_gradmask.py", section="iters: Fixed-point losses",
        description="no cross-entropy on cells already right: training failed (3.2%)"),
    "iters-qhead": Variant(
        {"model.q_head": 0.5, "train.batch_size": 4096}, base="iters-bs2048", family="test_time",
        script="iters/exp_qhead.py", section="iters: Q-head halting",
        description="a Q-head (Linear on the cells' mean h) learns whether each iteration solves the puzzle, loss "
                    "weight 0.5, batch 4096: 79.4%"),
    "iters-qhead-32": Variant(
        {"model.q_head": 0.5, "model.iterations": 32}, base="iters-bs2048", family="test_time",
        script="iters/exp_qhead_32.py", section="iters: Q-head halting",
        description="the Q-head at 32 training iterations, batch 2048: 78.4%"),
    "iters-mixed": Variant(
        {"curriculum.kind": "mixed"}, base="iters-bs2048", family="test_time", script="iters/exp_bs2048_mixed.py",
        section="iters: Curriculum", description="mixed sampling instead of the curriculum: 97.3% at 1024"),
}
