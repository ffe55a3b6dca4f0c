"""One RunConfig for every experiment: plain dataclasses, presets, named variants.

A run is `preset` + `variant` overrides + `--set key=value` overrides, in that order.
Unknown keys, unknown choices and non-positive counts are errors that name the field.
"""
from __future__ import annotations

import copy
import dataclasses
import json
import typing
from dataclasses import dataclass, field
from pathlib import Path


# The supported grids and their box shapes (rows, cols); every module reads them from here.
BOX_SHAPES = {4: (2, 2), 6: (2, 3), 9: (3, 3)}
SIZES = tuple(BOX_SHAPES)


class ConfigError(ValueError):
    """A bad configuration value; the message names the field."""


# Each choice field lists its valid values; the model and loop dispatch on these names.
CHOICES = {
    "data.bucket_by": ["rating", "deduction_depth", "guesses_full"],
    "model.block": ["attention", "mixer"],
    "model.input": ["encode_once", "concat", "proj_add", "proj_concat"],
    "model.recurrence": ["add", "none", "concat", "gated", "mem"],
    "model.pos": ["rope2d", "rcb", "sinusoidal", "none"],
    "model.pos_every_iter": [True, False],
    "model.feed_preds": [True, False],
    "model.h_init": ["learned", "random"],
    "model.pred_update": ["softmax", "norm_residual"],
    "model.sharing": ["shared", "phased", "unrolled", "nested"],
    "model.activation": ["relu", "gelu", "relu2"],
    "model.loss": ["all", "final"],
    "optim.name": ["adamw", "sam"],
    "optim.decay": ["all", "matrices"],
    "schedule.kind": ["cosine", "warmup", "constant", "stage_restarts"],
    "curriculum.kind": ["mixed", "reverse", "regular", "hard_only", "easy_only", "plateau"],
    "train.dtype": ["auto", "float32", "bfloat16"],
}


@dataclass
class DataConfig:
    source: str = "generated"  # "generated", "sudoku-extreme", or a CSV/text file path
    grid_size: int = 9  # 4, 6 or 9
    train_size: int = 100_000  # puzzles in the training pool (generated count, or a subsample)
    test_per_bucket: int = 5_000  # fixed test count per bucket, as in the log
    bucket_by: str = "rating"  # column the buckets cut
    bucket_edges: list[int] = field(default_factory=lambda: [0, 1, 3, 11, 51])  # lower edges
    min_clues: int = 0  # generated: stop removing clues at this count (0 = minimal puzzles)
    hard_fraction: float = 0.0  # generated: share of the pool made harder by hill climbing
    augment: bool = False  # random validity-preserving symmetry per training sample (the log never augmented)
    seed: int = 0


@dataclass
class ModelConfig:
    d_model: int = 128
    n_layers: int = 4
    n_heads: int = 4
    d_ff: int = 512
    activation: str = "relu"
    dropout: float = 0.0
    iterations: int = 16  # recurrent steps in training
    block: str = "attention"  # attention or MLP-Mixer layers
    input: str = "encode_once"  # how the puzzle enters: encoded once, or re-fed each iteration
    recurrence: str = "add"  # how h_prev enters the next iteration
    pos: str = "rope2d"
    pos_every_iter: bool = True  # add the positional term at every iteration, or only at init
    feed_preds: bool = True  # feed softmax(preds) back each iteration (the log: dropping them costs 27-62 puzzles)
    h_init: str = "learned"  # initial h: the encoded puzzle (learned) or a fixed random buffer (std 1; nested: h and z)
    pred_update: str = "softmax"  # preds = softmax(head(h)), or a TRM-style RMS-normalised residual state
    sharing: str = "shared"  # which weights each iteration uses: shared, phased, unrolled, or nested H/L cycles
    n_phases: int = 2  # sharing=phased: distinct transformers, each for iterations/n_phases steps
    h_cycles: int = 3  # sharing=nested
    l_cycles: int = 6  # sharing=nested
    token_mlp: int = 0  # block=mixer: hidden width of the token-mixing MLP (0 = d_ff)
    loss: str = "all"  # intermediate supervision at every iteration, or final only
    activation_checkpointing: bool = False  # recompute each iteration in backward


@dataclass
class OptimConfig:
    name: str = "adamw"
    lr: float = 1.5e-3
    weight_decay: float = 0.01
    decay: str = "all"  # which parameters decay: all (torch AdamW's default, as the log) or matrices only
    beta1: float = 0.9
    beta2: float = 0.999
    grad_clip: float = 1.0  # 0 disables clipping
    sam_rho: float = 0.05  # optim.name=sam
    ema_decay: float = 0.0  # 0 disables EMA; evaluation uses EMA weights when on


@dataclass
class ScheduleConfig:
    kind: str = "cosine"
    warmup_steps: int = 2_000
    lr_min_ratio: float = 0.01  # floor as a fraction of peak lr
    stage_min_ratios: list[float] = field(default_factory=lambda: [0.1, 0.1, 0.05])  # stage_restarts


@dataclass
class CurriculumConfig:
    kind: str = "reverse"
    # Phase thresholds on data.bucket_by. reverse: phase i trains on values >= thresholds[i];
    # regular: on values <= thresholds[i]; the last phase always trains on everything.
    thresholds: list[int] = field(default_factory=lambda: [21, 6, 1])
    phase_fractions: list[float] = field(default_factory=lambda: [0.2, 0.2, 0.2])  # of train.steps
    hard_min: int = 3  # hard_only: train on values >= hard_min
    easy_max: int = 0  # easy_only: train on values <= easy_max
    # plateau: raise the gate when the loss stops improving, restarting the lr each stage
    plateau_window: int = 50
    plateau_threshold: float = 0.005
    min_steps_per_stage: int = 200


@dataclass
class TrainConfig:
    steps: int = 70_000
    batch_size: int = 4_096  # global batch (per rank x ranks x grad_accum)
    grad_accum: int = 1
    device: str = "auto"  # auto, cpu, cuda, cuda:1, ...
    dtype: str = "auto"  # auto = bf16 autocast on CUDA, fp32 on CPU
    compile: bool = False
    threads: int = 0  # torch CPU threads; 0 = leave torch's default
    seed: int = 0
    log_every: int = 100
    eval_every: int = 5_000
    checkpoint_every: int = 1_000
    carry: bool = False  # keep unsolved puzzles and their state in their batch slots across steps (the log: diverged)


@dataclass
class EvalConfig:
    iterations: list[int] = field(default_factory=lambda: [16, 32])  # trained count and beyond
    batch_size: int = 1_024
    max_puzzles: int = 0  # 0 = the whole test split
    # extra test sets, each evaluated at the end and reported per bucket: "sudoku-extreme", "benchmark"
    # (shared/data/external), "kaggle", a CSV/text path, or "generated:key=value,..." (the run's generator
    # with those data fields changed, e.g. generated:min_clues=0)
    sources: list[str] = field(default_factory=list)


@dataclass
class RunConfig:
    preset: str = "custom"
    variant: str = "baseline"
    data: DataConfig = field(default_factory=DataConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    optim: OptimConfig = field(default_factory=OptimConfig)
    schedule: ScheduleConfig = field(default_factory=ScheduleConfig)
    curriculum: CurriculumConfig = field(default_factory=CurriculumConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    eval: EvalConfig = field(default_factory=EvalConfig)

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    def to_json(self, path: str | Path | None = None) -> str:
        text = json.dumps(self.to_dict(), indent=2)
        if path is not None:
            Path(path).write_text(text)
        return text

    @classmethod
    def from_dict(cls, d: dict) -> "RunConfig":
        """From to_dict's output, or a run's config.json (whose "code" entry records the code, not the run)."""
        cfg = cls()
        apply_overrides(cfg, flatten({k: v for k, v in d.items() if k != "code"}))
        return cfg

    @classmethod
    def from_json(cls, path: str | Path) -> "RunConfig":
        return cls.from_dict(json.loads(Path(path).read_text()))


# --- presets -----------------------------------------------------------------------------------
# A preset is a dict of dotted overrides on the defaults above (which follow the log's recipe).

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


# --- variants ----------------------------------------------------------------------------------
# Every experiment of the log is a named variant: the log's section, the base it ran on (another
# variant, applied first) and its own overrides, in the log's 9x9 numbers. `overrides` may be a
# function of the config built so far, for values that depend on the preset (rating thresholds).

@dataclass(frozen=True)
class Variant:
    description: str  # what runs, the log's figure, and any choice where the log is ambiguous
    section: str  # the log's section heading ("" for an experiment beyond the log)
    overrides: dict | typing.Callable[["RunConfig"], dict] = field(default_factory=dict)
    base: str | None = "baseline"  # the variant this one modifies (None: the defaults themselves)
    family: str = ""  # the notebook that runs it (notebooks/NN_<family>.ipynb)
    equals_baseline_on: tuple[str, ...] = ()  # presets where it is meant to run the baseline's config


def _top_buckets(cfg: "RunConfig") -> dict:
    # The log's "difficulty >= 3.0" (Kaggle scale) kept the top two of its five difficulty buckets;
    # on our axes that is the top two rating buckets (rating >= 11 at 9x9).
    return {"curriculum.kind": "hard_only", "curriculum.hard_min": cfg.data.bucket_edges[-2]}


def _easiest_bucket(cfg: "RunConfig") -> dict:
    # The log's easy-only model trained on difficulty 0.0, its easiest bucket.
    return {"curriculum.kind": "easy_only", "curriculum.easy_max": cfg.data.bucket_edges[1] - 1}


_EARLY = "trained with the preset's recipe, not the log's early 100K steps on easy Kaggle puzzles"
_SAM_ERA = {"optim.name": "sam", "schedule.kind": "constant", "schedule.warmup_steps": 0}
_SCALE_UP = {"model.d_model": 256, "model.n_layers": 8, "model.n_heads": 8, "model.d_ff": 1024}

VARIANTS: dict[str, Variant] = {
    # the recipe and the bases that earlier experiments ran on
    "baseline": Variant("the recipe: encode once, h_prev + proj(preds), 2D RoPE, AdamW, warmup + cosine; "
                        "log 83.6% on sudoku-extreme", "Cosine LR Without SAM (NEW RECOMMENDED BASELINE)",
                        base=None, family="baseline"),
    "original": Variant("the log's first model: concat(puzzle, preds) re-fed every iteration, no hidden-state "
                        f"recurrence, row + col + box embeddings; {_EARLY}; log 643 solved of 1K easy",
                        "Baseline: Iterative Transformer",
                        {"model.input": "concat", "model.recurrence": "none", "model.pos": "rcb"}, family="iterations"),
    "extreme-bs512": Variant("the first 2.7M sudoku-extreme baseline: SAM, batch 512, lr 1e-3, constant lr, no warmup; "
                             "log 71.4%", "New Baseline: 2.7M Sudoku-Extreme",
                             {**_SAM_ERA, "train.batch_size": 512, "optim.lr": 1e-3}, family="scale"),
    # iterations and supervision
    "no-iteration": Variant("a single forward pass on the original model; log 0 solved (64.3% cells)",
                            "Ablation: No Iteration", {"model.iterations": 1}, base="original", family="iterations"),
    "final-only-loss": Variant("loss on the final iteration only, original model; log 428 vs 643 solved",
                               "Ablation: No Intermediate Supervision", {"model.loss": "final"}, base="original",
                               family="iterations"),
    "iterations-32": Variant("32 iterations on the recipe; the log ran it at batch 256 (confounded) and it was unstable, "
                             "62.4% vs 79.8%", "Scale Iterations (32)", {"model.iterations": 32}, family="iterations"),
    # how the puzzle and the predictions enter
    "input-proj-add": Variant("separate digit / prediction / empty projections, added, original model; "
                              "log 555 solved (rerun) vs 643", "Project-then-Add Input",
                              {"model.input": "proj_add"}, base="original", family="architecture"),
    "input-proj-concat": Variant("the same three projections at widths d/2, 3d/8, d/8, concatenated, original model; "
                                 "log 582 vs 643", "Project-then-Concat Input",
                                 {"model.input": "proj_concat"}, base="original", family="architecture"),
    "no-x-after-init": Variant("the original model with h_prev added and the puzzle encoded once (no x after init); "
                               "log 2248 vs recur-add's 2265 of 2.5K", "No X After Init (TRM-style Input)",
                               {"model.input": "encode_once", "model.recurrence": "add"}, base="original",
                               family="architecture"),
    # hidden-state recurrence, on the log's base: concat(x, preds) re-fed every iteration
    "recur-add": Variant("h = input_proj(concat(x, preds)) + h_prev; log 2265 vs 1994 of 2.5K",
                         "Hidden State Recurrence", {"model.recurrence": "add"}, base="original", family="architecture"),
    "recur-concat": Variant("input_proj(concat(x, preds, h_prev)); log 2206", "Hidden State Recurrence",
                            {"model.recurrence": "concat"}, base="original", family="architecture"),
    "recur-gated": Variant("GRU-style gate between h_prev and the new input; log 2141", "Hidden State Recurrence",
                           {"model.recurrence": "gated"}, base="original", family="architecture"),
    "recur-mem": Variant("a separate 64-dim memory bank, accumulated; log 2254", "Hidden State Recurrence",
                         {"model.recurrence": "mem"}, base="original", family="architecture"),
    "recur-add-nopred": Variant("x + h_prev: the puzzle still re-fed, predictions not; log 2238 vs 2265",
                                "Recurrence Without Predictions", {"model.feed_preds": False}, base="recur-add",
                                family="architecture"),
    "recur-concat-nopred": Variant("concat(x, h_prev) without predictions; log 2204 vs 2206",
                                   "Recurrence Without Predictions", {"model.feed_preds": False}, base="recur-concat",
                                   family="architecture"),
    "recur-mem-nopred": Variant("memory bank without predictions; log 2192 vs 2254", "Recurrence Without Predictions",
                                {"model.feed_preds": False}, base="recur-mem", family="architecture"),
    "norm-pred": Variant("TRM-style prediction state: residual MLP + RMS norm added to the logits, h updated without "
                         "preds; on the recipe (the log's base was recur-add); log 2257 vs 2265",
                         "Normalized Prediction Residuals (TRM-style)", {"model.pred_update": "norm_residual"},
                         family="architecture"),
    # positions
    "pos-none": Variant("no positional information, original model; log 409 vs 643 solved",
                        "Ablation: No Sudoku Positional Encoding", {"model.pos": "none"}, base="original",
                        family="architecture"),
    "pos-sinusoidal": Variant("1D sinusoidal positions over the flattened grid, original model; log 0 solved",
                              "Experiment: Sinusoidal Positional Encoding", {"model.pos": "sinusoidal"},
                              base="original", family="architecture"),
    "pos-rcb": Variant("learned row + column + box embeddings instead of 2D RoPE; log: RoPE within 0.3pp",
                       "Key Insight 6 (pos_embedding study)", {"model.pos": "rcb"}, family="architecture"),
    "pos-once": Variant("positions only in the first iteration: with 2D RoPE the rotation is applied in iteration 0 "
                        "only (our reading; the pos study itself is not in the log); log 82.8% vs 83.6%",
                        "Position Embedding Once vs Every Iteration", {"model.pos_every_iter": False},
                        family="architecture"),
    # blocks and weight sharing
    "mlp-mixer": Variant("token- and channel-mixing MLPs instead of attention (870K at 9x9) with row + col + box "
                         "embeddings (no attention to rotate), on the 2.7M/SAM/BS512 base; log 71.9% vs 71.4%", "MLP-Mixer (Architecture Swap)", {"model.block": "mixer", "model.pos": "rcb"},
                         base="extreme-bs512", family="architecture"),
    "middle1": Variant("2 transformers x 2 layers, one per half of the iterations (same total depth); log 162 vs "
                       "643 solved", "2 Transformers × 2 Layers (Middle1)",
                       {"model.sharing": "phased", "model.n_phases": 2, "model.n_layers": 2}, base="original",
                       family="architecture"),
    "middle2": Variant("4 transformers x 1 layer, one per quarter; log 0 solved", "4 Transformers × 1 Layer (Middle2)",
                       {"model.sharing": "phased", "model.n_phases": 4, "model.n_layers": 1}, base="original",
                       family="architecture"),
    "unrolled": Variant("a separate 4-layer transformer per iteration (16x params at 9x9); log 581 vs 643 solved",
                        "Unrolled (16 Separate Transformers)", {"model.sharing": "unrolled"}, base="original",
                        family="architecture"),
    "trm-nested": Variant("TRM's nested H/L cycles (3 x 6, all but the last outer cycle without gradients, state "
                          "detached between supervision steps and each step backpropagated on its own), fixed random "
                          "initial states, 2 MLP-T layers at hidden 512 with ReLU MLPs: a 512-wide token MLP where TRM "
                          "has a SwiGLU of width 256 (4 x 81 x 2/3 rounded up to 256), positions living in its weights, "
                          "and a 2048-wide channel MLP (~4.4M params at 9x9 against the log's ~4.5M); lr 1e-4, wd 1.0 on "
                          "every parameter, constant lr; log 60.3% vs 76.3%", "TRM Architecture (Nested H_cycles/L_cycles)",
                          {"model.sharing": "nested", "model.block": "mixer", "model.n_layers": 2,
                           "model.d_model": 512, "model.d_ff": 2048, "model.token_mlp": 512,
                           "model.h_init": "random", "model.feed_preds": False, "model.pos": "none", "optim.weight_decay": 1.0,
                           "optim.lr": 1e-4, "optim.name": "adamw"},
                          base="no-warmup", family="architecture"),
    "fixed-init": Variant("a fixed random initial h (std 1) with the puzzle re-fed every iteration, on the warmup "
                          "base; log 77.5% vs 78.5%", "Fixed Random Hidden State Init",
                          {"model.h_init": "random", "model.input": "concat"}, base="warmup-only",
                          family="architecture"),
    "carry-batches": Variant("slots keep an unsolved puzzle and its hidden state across training steps, on the "
                             "warmup base; the log's run diverged", "Carry Hidden State Across Batches",
                             {"train.carry": True}, base="warmup-only", family="optimisation"),
    # scale
    "scale-down": Variant("d64 L2 H2 ff256, ~100K params at 9x9, on the 2.7M/SAM/BS512 base; log 8.3%",
                          "Scale DOWN", {"model.d_model": 64, "model.n_layers": 2, "model.n_heads": 2, "model.d_ff": 256},
                          base="extreme-bs512", family="scale"),
    "scale-model": Variant("d192 L6 H6 ff768 (~2.4M at 9x9) at batch 256, original model (the log's run was "
                           "confounded by the halved batch); log 75.5% vs 79.8%", "Scale Model (d=192, L=6)",
                           {"model.d_model": 192, "model.n_layers": 6, "model.n_heads": 6, "model.d_ff": 768,
                            "train.batch_size": 256}, base="original", family="scale"),
    "scale-up-accum": Variant("d256 L8 H8 ff1024 (~6.3M at 9x9), batch 512 as 128 x 4 accumulation; log 69.7%",
                              "Scale UP", {**_SCALE_UP, "train.grad_accum": 4}, base="extreme-bs512", family="scale"),
    "scale-up": Variant("d256 L8 H8 ff1024 (~6.3M at 9x9), true batch 512; log 73.5%. Accumulation is exact for "
                        "this model (LayerNorm, no BatchNorm), so scale-up-accum differs only by rounding",
                        "Scale UP with True Batch Size", _SCALE_UP, base="extreme-bs512", family="scale"),
    "scale-wide": Variant("d256 ff1024 L4 H4 (3.2M at 9x9): the log's text says d512 ff2048 but ~3.2M params, and "
                          "d512 at 4 layers has 12.6M; d256 is the 4-layer shape with 3.2M (scale-wide-d512 runs the "
                          "text's shape); log 74.8%", "Scale WIDE",
                          {"model.d_model": 256, "model.d_ff": 1024}, base="extreme-bs512", family="scale"),
    "scale-wide-d512": Variant("d512 ff2048 L4 H8 as the log's text reads (12.6M at 9x9, not its ~3.2M)", "Scale WIDE",
                               {"model.d_model": 512, "model.d_ff": 2048, "model.n_heads": 8}, base="extreme-bs512",
                               family="scale"),
    "scale-1m": Variant("d144 ff576 (~1M at 9x9), 50K steps, warmup 1400; log 83.2% vs 82.8% (50K/800K). At a CPU "
                        "preset the width rounds to the next multiple of 4 x heads", "1M Parameters (NEW PARETO)",
                        {"model.d_model": 144, "model.d_ff": 576, "train.steps": 50_000,
                         "schedule.warmup_steps": 1_400}, family="scale"),
    # batch size
    "bs-128": Variant(f"batch 128 on the original model (the log's first batch size); {_EARLY}; log 537 final / "
                      "679 peak of 1K", "Batch Size Scaling", {"train.batch_size": 128}, base="original", family="scale"),
    "bs-256": Variant("batch 256, original model; log 833 / 897 of 1K", "Batch Size Scaling",
                      {"train.batch_size": 256}, base="original", family="scale"),
    "bs-512": Variant("batch 512, original model; log 672 / 866 of 1K", "Batch Size Scaling",
                      {"train.batch_size": 512}, base="original", family="scale"),
    "bs-2048": Variant("batch 2048, lr 1e-3, on the 2.7M/SAM base; log 73.7%", "Batch Size Scaling on Sudoku-Extreme",
                       {"train.batch_size": 2048, "optim.lr": 1e-3}, base="extreme-bs512", family="scale"),
    "bs-8192-accum": Variant("batch 8192 as 2 x 4096 accumulation, 25K steps, warmup 700 (the log's run ran out of "
                             "memory at a true 8192)", "Batch Size 8192 (OOM)",
                             {"train.batch_size": 8192, "train.grad_accum": 2, "train.steps": 25_000,
                              "schedule.warmup_steps": 700}, family="scale"),
    # optimiser and schedule
    "sam": Variant("the recipe with SAM (rho 0.05); log 84.0% vs 83.6%", "Cosine LR Decay (NEW SOTA)",
                   {"optim.name": "sam"}, family="optimisation"),
    "no-warmup": Variant("SAM, constant lr from step 0 (the log's BS=4096 run); log 76.3%",
                         "Batch Size Scaling on Sudoku-Extreme / LR Warmup", _SAM_ERA, family="optimisation"),
    "warmup-only": Variant("SAM, 2K-step warmup then constant lr; log 78.5% (its cosine twin is `sam`, 84.0%)",
                           "LR Warmup", {"optim.name": "sam", "schedule.kind": "warmup"}, family="optimisation"),
    "ema-warmup": Variant("EMA (decay 0.999) on the warmup base; EMA and live weights both evaluated; log 77.5% vs "
                          "78.5%", "EMA (Exponential Moving Average)", {"optim.ema_decay": 0.999}, base="warmup-only",
                          family="optimisation"),
    "ema": Variant("EMA (decay 0.999) on the recipe; EMA and live weights both evaluated in the same run; log 83.6% "
                   "both", "EMA on Cosine LR (Retest)", {"optim.ema_decay": 0.999}, family="optimisation"),
    "wd-1.0": Variant("weight decay 1.0 on every parameter (torch AdamW's default grouping); log 70.1% vs 83.6%",
                      "High Weight Decay (nano-trm style)", {"optim.weight_decay": 1.0}, family="optimisation"),
    "wd-1.0-matrices": Variant("weight decay 1.0 on weight matrices only (not biases, norms, embeddings): beyond "
                               "the log", "", {"optim.weight_decay": 1.0, "optim.decay": "matrices"},
                               family="optimisation"),
    "gelu": Variant("GELU activation; log 83.2% vs 83.6%", "GELU Activation", {"model.activation": "gelu"},
                    family="optimisation"),
    "relu2": Variant("ReLU squared activation; log 81.9% vs 83.6%", "ReLU Squared Activation",
                     {"model.activation": "relu2"}, family="optimisation"),
    "steps-50k": Variant("50K steps, warmup 1400, phases scaled with them; log 82.8%", "Shorter Training (50K steps)",
                         {"train.steps": 50_000, "schedule.warmup_steps": 1_400}, family="optimisation"),
    "steps-140k": Variant("140K steps, phases scaled with them; the log's run timed out at 95K (82.4% there)",
                          "Longer Training (140K steps)", {"train.steps": 140_000}, family="optimisation"),
    # curricula and data
    "curriculum-reverse": Variant("hard to easy phases (the recipe's curriculum) on the recipe; the log's cosine "
                                  "curriculum runs used SAM: 84.0%", "Curriculum Learning / Cosine LR Decay",
                                  {"curriculum.kind": "reverse"}, family="curriculum",
                                  equals_baseline_on=("gpu-paper", "cpu-smoke")),
    "curriculum-mixed": Variant("all difficulties from step 0 on the recipe; log (with SAM) 83.8% vs reverse 84.0%",
                                "Cosine LR + Mixed Sampling", {"curriculum.kind": "mixed"}, family="curriculum",
                                equals_baseline_on=("cpu-quick",)),
    "curriculum-regular": Variant("easy to hard phases (rating <= 2, <= 10, <= 50, then all; at a CPU preset the "
                                  "preset's thresholds) on the recipe; log (with SAM) 80.6%", "Cosine LR + Regular Curriculum",
                                  {"curriculum.kind": "regular", "curriculum.thresholds": [2, 10, 50]}, family="curriculum"),
    "curriculum-hard-only": Variant("only the top two rating buckets (the log's Kaggle difficulty >= 3.0 kept its top "
                                    "two of five buckets; rating >= 11 here); log: better on hard, much worse on easy",
                                    "Hard-Only Training", _top_buckets, family="curriculum"),
    "curriculum-easy-only": Variant("only the easiest rating bucket (the log's zero-shot model trained on difficulty "
                                    "0.0); log 12.5% on its hardest bucket", "Mixed Difficulty Training",
                                    _easiest_bucket, family="curriculum"),
    "curriculum-scaled-10k": Variant("10K steps with the reverse phases scaled to them, SAM, constant lr (batch 4096 "
                                     "era); log 70.5%", "Curriculum Scaling at Large Batch Size",
                                     {**_SAM_ERA, "curriculum.kind": "reverse", "train.steps": 10_000},
                                     family="curriculum"),
    "curriculum-regular-scaled-10k": Variant("10K steps, easy-to-hard phases scaled, SAM, constant lr; log 67.1%",
                                             "Curriculum Scaling at Large Batch Size",
                                             {"curriculum.kind": "regular", "curriculum.thresholds": [2, 10, 50]},
                                             base="curriculum-scaled-10k", family="curriculum"),
    "curriculum-plateau": Variant("gate raised when the loss plateaus, lr restarted at every stage (beyond the log: "
                                  "the plateau-aligned recipe)", "", {"curriculum.kind": "plateau",
                                                                      "schedule.kind": "stage_restarts"},
                                  family="curriculum"),
    "augment": Variant("a random validity-preserving symmetry and digit relabelling per training sample (beyond the "
                       "log, which never augmented; the log names it as TRM's likely edge)", "",
                       {"data.augment": True}, family="curriculum"),
    "domain-swap": Variant("train on the other domain and evaluate on both: at 9x9 Kaggle-format data "
                           "(data.source = a Kaggle CSV) against sudoku-extreme; at a CPU preset minimal generated "
                           "puzzles (hard profile) against the preset's clue-rich ones; log: 31.7% vs 63.4% on extreme",
                           "Training on Sudoku-Extreme", lambda cfg: _domain_swap(cfg), family="curriculum"),
}


def _domain_swap(cfg: "RunConfig") -> dict:
    if cfg.data.source == "generated":  # minimal puzzles against clue-rich ones (half the cells given)
        other = 0 if cfg.data.min_clues else cfg.data.grid_size ** 2 // 2
        return {"data.min_clues": other, "eval.sources": [f"generated:min_clues={cfg.data.min_clues}"]}
    return {"data.source": "kaggle", "eval.sources": [cfg.data.source]}


# --- overrides ---------------------------------------------------------------------------------

def flatten(d: dict, prefix: str = "") -> dict:
    out = {}
    for k, v in d.items():
        key = f"{prefix}{k}"
        if isinstance(v, dict):
            out.update(flatten(v, key + "."))
        else:
            out[key] = v
    return out


def _coerce(key: str, value, typ):
    """Turn a value (maybe a CLI string) into the field's type, or raise naming the field."""
    origin = typing.get_origin(typ)
    try:
        if origin is list:
            (inner,) = typing.get_args(typ)
            if isinstance(value, str):
                value = json.loads(value) if value.strip().startswith("[") else value.split(",")
            return [_coerce(key, v, inner) for v in value]
        if typ is bool:
            if isinstance(value, str):
                if value.lower() not in ("true", "false", "1", "0", "yes", "no"):
                    raise ValueError
                return value.lower() in ("true", "1", "yes")
            if not isinstance(value, bool):
                raise ValueError
            return value
        if typ is int:
            if isinstance(value, bool) or (isinstance(value, float) and not value.is_integer()):
                raise ValueError
            return int(value)
        if typ is float:
            if isinstance(value, bool):
                raise ValueError
            return float(value)
        return str(value)
    except (ValueError, TypeError, json.JSONDecodeError):
        raise ConfigError(f"{key}: cannot read {value!r} as {getattr(typ, '__name__', typ)}") from None


def _field_types(obj) -> dict:
    return typing.get_type_hints(type(obj))


def set_value(cfg: RunConfig, key: str, value) -> None:
    parts = key.split(".")
    obj = cfg
    for part in parts[:-1]:
        if not dataclasses.is_dataclass(obj) or part not in _field_types(obj):
            raise ConfigError(f"unknown config key {key!r}; sections: {', '.join(_field_types(cfg))}")
        obj = getattr(obj, part)
    name = parts[-1]
    types = _field_types(obj) if dataclasses.is_dataclass(obj) else {}
    if name not in types or dataclasses.is_dataclass(getattr(obj, name)):
        valid = ", ".join(f"{'.'.join(parts[:-1])}.{n}" for n in types) if types else ""
        raise ConfigError(f"unknown config key {key!r}; valid keys here: {valid}")
    setattr(obj, name, _coerce(key, value, types[name]))


def apply_overrides(cfg: RunConfig, overrides: dict) -> RunConfig:
    for key, value in overrides.items():
        set_value(cfg, key, value)
    return cfg


def parse_set(items: list[str]) -> dict:
    """`["train.steps=100", ...]` -> {"train.steps": "100", ...}"""
    out = {}
    for item in items:
        if "=" not in item:
            raise ConfigError(f"--set expects key=value, got {item!r}")
        k, v = item.split("=", 1)
        out[k.strip()] = v.strip()
    return out


def make_config(preset: str = "cpu-quick", variant: str = "baseline", overrides: dict | None = None) -> RunConfig:
    """The one way to build a run's config: defaults <- preset <- the variant's bases <- the variant
    <- overrides, validated. A variant that changes the iteration count is also evaluated at 2x."""
    if preset not in PRESETS:
        raise ConfigError(f"unknown preset {preset!r}; choose one of: {', '.join(PRESETS)}")
    if variant not in VARIANTS:
        raise ConfigError(f"unknown variant {variant!r}; choose one of: {', '.join(VARIANTS)}")
    cfg = RunConfig(preset=preset, variant=variant)
    apply_overrides(cfg, PRESETS[preset].overrides)
    reference = copy.deepcopy(cfg)  # the preset's own numbers, which scaled variants keep their ratio to
    for name in variant_chain(variant):
        apply_overrides(cfg, variant_overrides(name, cfg, reference))
    if cfg.model.iterations != reference.model.iterations and cfg.eval.iterations == reference.eval.iterations:
        cfg.eval.iterations = [cfg.model.iterations, 2 * cfg.model.iterations]
    apply_overrides(cfg, overrides or {})
    validate(cfg)
    return cfg


def variant_chain(name: str) -> list[str]:
    """The variant and its bases, the root first: recur-add-nopred -> [original, recur-add, recur-add-nopred]."""
    chain = []
    while name is not None:
        if name in chain or name not in VARIANTS:
            raise ConfigError(f"variant base chain is broken at {name!r}: {' <- '.join(chain)}")
        chain.append(name)
        name = VARIANTS[name].base
    return chain[::-1]


def variant_overrides(name: str, cfg: RunConfig, reference: RunConfig) -> dict:
    """One variant's own overrides, resolved against the config so far and scaled to the preset."""
    own = VARIANTS[name].overrides
    overrides = copy.deepcopy(own(cfg) if callable(own) else own)
    return _scaled(overrides, reference) if PRESETS[cfg.preset].relative else overrides


# Counts that keep their ratio to the log's recipe on a scaled-down preset.
RELATIVE_KEYS = ("model.iterations", "model.n_heads", "train.batch_size", "train.steps", "schedule.warmup_steps",
                 "optim.lr")
WIDTH_KEYS = {"model.d_model": "d_model", "model.d_ff": "d_ff", "model.token_mlp": "d_model"}


def _scaled(overrides: dict, reference: RunConfig) -> dict:
    recipe = flatten(RunConfig().to_dict())
    preset = flatten(reference.to_dict())
    for key in RELATIVE_KEYS:
        if key in overrides:
            value = preset[key] * overrides[key] / recipe[key]
            overrides[key] = value if isinstance(recipe[key], float) else max(min(1, overrides[key]), round(value))
    if "train.batch_size" in overrides:  # whole micro-batches
        accum = overrides.get("train.grad_accum", preset["train.grad_accum"])
        overrides["train.batch_size"] = max(accum, accum * round(overrides["train.batch_size"] / accum))
    if "model.n_layers" in overrides:
        overrides["model.n_layers"] = _scaled_depth(overrides["model.n_layers"], preset["model.n_layers"],
                                                    recipe["model.n_layers"])
    if any(key in overrides for key in WIDTH_KEYS):
        _scale_widths(overrides, preset, recipe)
    if "curriculum.thresholds" in overrides:  # the log's 9x9 ratings mean nothing on a small grid's scale
        overrides["curriculum.thresholds"] = sorted(reference.curriculum.thresholds)
    return overrides


def _scaled_depth(layers: int, preset_layers: int, recipe_layers: int) -> int:
    depth = layers * preset_layers / recipe_layers
    if depth != int(depth) or depth < 1:
        raise ConfigError(f"model.n_layers: {layers} of the recipe's {recipe_layers} layers is {depth:g} of this "
                          f"preset's {preset_layers}; the log's depth ratio needs a whole number of layers")
    return int(depth)


def _scale_widths(overrides: dict, preset: dict, recipe: dict) -> None:
    for key, like in WIDTH_KEYS.items():
        if key in overrides:
            overrides[key] = max(8, round(preset[f"model.{like}"] * overrides[key] / recipe[f"model.{like}"]))
    if "model.d_model" in overrides:
        quantum = 4 * overrides.get("model.n_heads", preset["model.n_heads"])  # rope2d: head_dim % 4 == 0
        d = max(quantum, quantum * round(overrides["model.d_model"] / quantum))
        if d == preset["model.d_model"] != overrides["model.d_model"]:  # rounding must not undo the change
            d += quantum if overrides["model.d_model"] > d else -quantum
        overrides["model.d_model"] = max(quantum, d)


def validate(cfg: RunConfig) -> None:
    """Every rule on a whole config: a bad value, or a combination that would silently do nothing,
    fails here, at make_config, not when the model is built or the run starts."""
    flat = flatten(cfg.to_dict())
    _check_choices(flat, "")
    _check_signs(flat, ["data.grid_size", "data.test_per_bucket", "optim.lr", "train.steps", "train.batch_size",
                        "train.grad_accum", "train.log_every", "train.eval_every", "train.checkpoint_every",
                        "eval.batch_size"],
                 ["data.train_size", "data.min_clues", "schedule.warmup_steps", "optim.weight_decay",
                  "optim.grad_clip", "optim.ema_decay", "train.threads", "eval.max_puzzles"])
    validate_model(cfg.model)
    if cfg.data.grid_size not in SIZES:
        raise ConfigError(f"data.grid_size: {cfg.data.grid_size} is not supported; choose one of {SIZES}")
    if cfg.train.batch_size % cfg.train.grad_accum:
        raise ConfigError(f"train.batch_size ({cfg.train.batch_size}) must be divisible by train.grad_accum ({cfg.train.grad_accum})")
    _validate_schedule(cfg)
    if sorted(cfg.data.bucket_edges) != cfg.data.bucket_edges or len(set(cfg.data.bucket_edges)) != len(cfg.data.bucket_edges):
        raise ConfigError(f"data.bucket_edges must be strictly increasing, got {cfg.data.bucket_edges}")
    if len(cfg.curriculum.phase_fractions) != len(cfg.curriculum.thresholds):
        raise ConfigError("curriculum.phase_fractions needs one fraction per curriculum.thresholds entry")
    if sum(cfg.curriculum.phase_fractions) > 1:
        raise ConfigError("curriculum.phase_fractions must sum to at most 1")
    if cfg.curriculum.kind == "easy_only" and cfg.curriculum.easy_max < min(cfg.data.bucket_edges):
        raise ConfigError(f"curriculum.easy_max ({cfg.curriculum.easy_max}) is below the easiest bucket "
                          f"({min(cfg.data.bucket_edges)}): no puzzle would train")
    if cfg.train.carry and (cfg.train.grad_accum != 1 or cfg.model.sharing == "nested"):
        raise ConfigError("train.carry keeps one state per batch slot: it needs train.grad_accum=1 and a "
                          "non-nested model.sharing")
    if cfg.optim.name != "sam" and cfg.optim.sam_rho != OptimConfig().sam_rho:
        raise ConfigError("optim.sam_rho only matters with optim.name=sam")
    if not cfg.eval.iterations or min(cfg.eval.iterations) <= 0:
        raise ConfigError("eval.iterations needs at least one positive iteration count")


def _validate_schedule(cfg: RunConfig) -> None:
    kind, warmup = cfg.schedule.kind, cfg.schedule.warmup_steps
    if kind == "constant" and warmup:
        raise ConfigError("schedule.kind=constant ignores schedule.warmup_steps; set it to 0 or use schedule.kind=warmup")
    if kind == "warmup" and not warmup:
        raise ConfigError("schedule.kind=warmup with schedule.warmup_steps=0 is a constant lr: use schedule.kind=constant")
    if warmup >= cfg.train.steps:
        raise ConfigError(f"schedule.warmup_steps ({warmup}) must be below train.steps ({cfg.train.steps})")
    if not 0 < cfg.schedule.lr_min_ratio <= 1:
        raise ConfigError(f"schedule.lr_min_ratio must be in (0, 1], got {cfg.schedule.lr_min_ratio}")
    if kind == "stage_restarts" and cfg.curriculum.kind in ("mixed", "hard_only", "easy_only"):
        raise ConfigError(f"schedule.kind=stage_restarts restarts the lr at curriculum stages, and "
                          f"curriculum.kind={cfg.curriculum.kind} has only one")


def validate_model(m: ModelConfig) -> None:
    """The model's own rules; build_model checks them too, for a bare ModelConfig."""
    _check_choices({k: getattr(m, k.split(".")[1]) for k in CHOICES if k.startswith("model.")}, "model.")
    sizes = {f"model.{k}": getattr(m, k) for k in ("d_model", "n_layers", "n_heads", "d_ff", "iterations",
                                                    "n_phases", "h_cycles", "l_cycles", "token_mlp")}
    _check_signs(sizes, [k for k in sizes if k != "model.token_mlp"], ["model.token_mlp"])
    if not 0 <= m.dropout < 1:
        raise ConfigError(f"model.dropout must be in [0, 1), got {m.dropout}")
    if m.block == "attention" and m.d_model % m.n_heads:  # a mixer has no heads: n_heads is not used
        raise ConfigError(f"model.d_model ({m.d_model}) must be divisible by model.n_heads ({m.n_heads})")
    if m.block == "attention" and m.pos == "rope2d" and (m.d_model // m.n_heads) % 4:
        raise ConfigError("model.pos=rope2d needs a head dimension divisible by 4 (rows and columns each rotate half)")
    if m.input == "proj_concat" and m.d_model < 4:
        raise ConfigError("model.input=proj_concat needs model.d_model >= 4 to split into three projections")
    if m.sharing == "phased" and m.iterations % m.n_phases:
        raise ConfigError(f"model.iterations ({m.iterations}) must be divisible by model.n_phases ({m.n_phases})")
    if m.sharing == "nested" and m.recurrence != "add":
        raise ConfigError(f"model.sharing=nested carries its own two states; it needs model.recurrence=add, got {m.recurrence!r}")
    if m.sharing == "nested" and m.pred_update != "softmax":
        raise ConfigError("model.sharing=nested has no norm_residual prediction state; use model.pred_update=softmax")
    if m.h_init == "random" and m.input == "encode_once" and m.sharing != "nested":
        raise ConfigError("model.h_init=random replaces the encoded puzzle, so the puzzle must be re-fed every "
                          "iteration: use model.input=concat, proj_add or proj_concat (or model.sharing=nested)")
    if m.block == "mixer" and m.pos == "rope2d":
        raise ConfigError("model.block=mixer has no attention for 2D RoPE to rotate; choose model.pos=rcb, "
                          "sinusoidal or none (the token MLP already sees positions)")
    if m.block == "attention" and m.token_mlp:
        raise ConfigError("model.token_mlp sizes the mixer's token MLP; model.block=attention has none")
    if not m.pos_every_iter and m.pos == "none":
        raise ConfigError("model.pos_every_iter=false with model.pos=none changes nothing: there are no positions")
    if m.pred_update == "norm_residual" and not m.feed_preds:
        raise ConfigError("model.pred_update=norm_residual never feeds predictions back; model.feed_preds=false "
                          "would change nothing")
    if m.sharing not in ("phased",) and m.n_phases != ModelConfig().n_phases:
        raise ConfigError("model.n_phases only matters with model.sharing=phased")


def _check_choices(flat: dict, prefix: str) -> None:
    for key, valid in CHOICES.items():
        if key.startswith(prefix) and key in flat and flat[key] not in valid:
            raise ConfigError(f"{key}: unknown choice {flat[key]!r}; choose one of: {', '.join(map(str, valid))}")


def _check_signs(flat: dict, positive: list[str], nonneg: list[str]) -> None:
    for key in positive:
        if flat[key] <= 0:
            raise ConfigError(f"{key} must be positive, got {flat[key]}")
    for key in nonneg:
        if flat[key] < 0:
            raise ConfigError(f"{key} must not be negative, got {flat[key]}")


def bucket_labels(edges: list[int]) -> list[str]:
    """[0, 1, 3, 11, 51] -> ["0", "1-2", "3-10", "11-50", "51+"]"""
    labels = []
    for lo, hi in zip(edges, edges[1:] + [None]):
        if hi is None:
            labels.append(f"{lo}+")
        elif hi - lo == 1:
            labels.append(str(lo))
        else:
            labels.append(f"{lo}-{hi - 1}")
    return labels


def bucket_order(labels) -> list[str]:
    """Bucket labels in difficulty order by lower edge ("3-10" -> 3), with "all" (and any other label) last."""
    def key(label):
        head = str(label).split("-")[0].rstrip("+")
        return (0, int(head)) if head.isdigit() else (1, 0)
    return sorted(dict.fromkeys(labels), key=key)
