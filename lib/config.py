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
    "model.schedule": ["shared", "phased", "unrolled", "nested"],
    "model.activation": ["relu", "gelu", "relu2"],
    "model.loss": ["all", "final"],
    "optim.name": ["adamw", "sam"],
    "schedule.kind": ["cosine", "warmup", "constant", "stage_restarts"],
    "curriculum.kind": ["mixed", "reverse", "regular", "hard_only", "plateau"],
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
    augment: bool = True  # random validity-preserving symmetry per training sample
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
    h_init: str = "learned"  # initial h: the encoded puzzle (learned) or a fixed random buffer (std 1)
    pred_update: str = "softmax"  # preds = softmax(head(h)), or a TRM-style RMS-normalised residual state
    schedule: str = "shared"  # shared weights, phased, unrolled, or nested H/L cycles
    n_phases: int = 2  # schedule=phased: distinct transformers, each for iterations/n_phases steps
    h_cycles: int = 3  # schedule=nested
    l_cycles: int = 6  # schedule=nested
    loss: str = "all"  # intermediate supervision at every iteration, or final only
    activation_checkpointing: bool = False  # recompute each iteration in backward


@dataclass
class OptimConfig:
    name: str = "adamw"
    lr: float = 1.5e-3
    weight_decay: float = 0.01
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


@dataclass
class EvalConfig:
    iterations: list[int] = field(default_factory=lambda: [16, 32])  # trained count and beyond
    batch_size: int = 1_024
    max_puzzles: int = 0  # 0 = the whole test split


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
        cfg = cls()
        apply_overrides(cfg, flatten(d))
        return cfg

    @classmethod
    def from_json(cls, path: str | Path) -> "RunConfig":
        return cls.from_dict(json.loads(Path(path).read_text()))


# --- presets -----------------------------------------------------------------------------------
# A preset is a dict of dotted overrides on the defaults above (which follow the log's recipe).

PRESETS: dict[str, dict] = {
    # the log's recommended recipe: 800K params, 16 iterations, batch 4096, 70K steps, reverse curriculum
    "gpu-paper": {
        "data.source": "sudoku-extreme",
        "data.train_size": 0,  # 0 = every training puzzle the source has
    },
    # 6x6 puzzles with extra clues give a rating spread a 2-core CPU can learn in minutes
    "cpu-quick": {
        "data.grid_size": 6,
        "data.train_size": 5_000,
        "data.test_per_bucket": 200,
        "data.bucket_by": "deduction_depth",
        "data.bucket_edges": [2, 3, 4, 5],
        "data.min_clues": 14,
        "model.d_model": 64,
        "model.n_layers": 2,
        "model.n_heads": 4,
        "model.d_ff": 256,
        "model.iterations": 8,
        "optim.lr": 1e-3,
        "schedule.warmup_steps": 100,
        "curriculum.kind": "mixed",
        "curriculum.thresholds": [4, 3, 2],
        "train.steps": 1_500,
        "train.batch_size": 64,
        "train.threads": 2,
        "train.log_every": 50,
        "train.eval_every": 250,
        "train.checkpoint_every": 250,
        "eval.iterations": [8, 16],
        "eval.batch_size": 256,
    },
    # seconds: tests and notebook smoke runs
    "cpu-smoke": {
        "data.grid_size": 4,
        "data.train_size": 300,
        "data.test_per_bucket": 20,
        "data.bucket_by": "deduction_depth",
        "data.bucket_edges": [1, 2, 3],
        "model.d_model": 32,
        "model.n_layers": 2,
        "model.n_heads": 2,
        "model.d_ff": 64,
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
    },
}


# --- variants ----------------------------------------------------------------------------------
# Every experiment of the log is a named variant: a small set of overrides applied on a preset.
# (description, overrides)

VARIANTS: dict[str, tuple[str, dict]] = {
    "baseline": ("the log's recommended recipe: encode once, h_prev + proj(preds) + pos, 2D RoPE", {}),
    # iterations and supervision
    "no-iteration": ("a single forward pass (log: 0 solved)", {"model.iterations": 1}),
    "final-only-loss": ("loss on the final iteration only", {"model.loss": "final"}),
    "iterations-32": ("32 iterations (log: unstable at BS 256)", {"model.iterations": 32}),
    # input schemes
    "input-concat": ("concat(puzzle, preds) re-fed every iteration", {"model.input": "concat"}),
    "input-proj-add": ("separate digit/pred/empty projections, added", {"model.input": "proj_add"}),
    "input-proj-concat": ("separate projections, concatenated", {"model.input": "proj_concat"}),
    # recurrence
    "no-recurrence": ("only predictions carry between iterations", {"model.recurrence": "none", "model.input": "concat"}),
    "recur-concat": ("h_prev concatenated into the input projection", {"model.recurrence": "concat"}),
    "recur-gated": ("GRU-style gate between h_prev and h_new", {"model.recurrence": "gated"}),
    "recur-mem": ("a separate 64-dim memory bank", {"model.recurrence": "mem"}),
    "recur-add-nopred": ("h_prev only: predictions are not fed back", {"model.feed_preds": False}),
    "recur-concat-nopred": ("concat recurrence without predictions", {"model.recurrence": "concat", "model.feed_preds": False}),
    "recur-mem-nopred": ("memory bank without predictions", {"model.recurrence": "mem", "model.feed_preds": False}),
    "norm-pred": ("TRM-style prediction state: residual MLP update + RMS norm, added to the logits", {"model.pred_update": "norm_residual"}),
    "fixed-init": ("fixed random h init (std 1), puzzle re-fed every iteration (log: -1.0pp)", {"model.h_init": "random", "model.input": "concat"}),
    # positional encodings
    "pos-rcb": ("learned row + column + box embeddings", {"model.pos": "rcb"}),
    "pos-sinusoidal": ("1D sinusoidal positions over the flattened grid", {"model.pos": "sinusoidal"}),
    "pos-none": ("no positional information", {"model.pos": "none"}),
    "pos-once": ("positional term only at initialisation", {"model.pos_every_iter": False}),
    # blocks and schedules
    "mlp-mixer": ("token- and channel-mixing MLPs instead of attention", {"model.block": "mixer"}),
    "middle1": ("2 transformers x 2 layers, one per half of the iterations", {"model.schedule": "phased", "model.n_phases": 2, "model.n_layers": 2}),
    "middle2": ("4 transformers x 1 layer, one per quarter", {"model.schedule": "phased", "model.n_phases": 4, "model.n_layers": 1}),
    "unrolled": ("a separate transformer per iteration (16x params)", {"model.schedule": "unrolled"}),
    "trm-nested": ("TRM-style nested H/L cycles (3 x 6), outer cycles but the last without gradients", {"model.schedule": "nested", "model.block": "mixer", "model.n_layers": 2, "model.d_model": 512, "model.d_ff": 2048, "model.n_heads": 8, "optim.weight_decay": 1.0, "optim.lr": 1e-4}),
    # scale
    "scale-down": ("d64 L2 H2, ~100K params", {"model.d_model": 64, "model.n_layers": 2, "model.n_heads": 2, "model.d_ff": 256}),
    "scale-1m": ("d144 ff576, ~1M params", {"model.d_model": 144, "model.d_ff": 576}),
    "scale-wide": ("d512 ff2048 (the log says ~3.2M params; this shape has 12.6M at 9x9)", {"model.d_model": 512, "model.d_ff": 2048, "model.n_heads": 8}),
    "scale-up": ("d256 L8 H8, ~6.3M params", {"model.d_model": 256, "model.n_layers": 8, "model.n_heads": 8, "model.d_ff": 1024}),
    # batch and optimiser
    "bs-256": ("batch 256 (the pre-SAM sweet spot)", {"train.batch_size": 256, "optim.lr": 1e-3}),
    "bs-512": ("batch 512", {"train.batch_size": 512, "optim.lr": 1e-3}),
    "bs-2048": ("batch 2048", {"train.batch_size": 2048, "optim.lr": 1e-3}),
    "bs-8192-accum": ("batch 8192 as 2 x 4096 accumulation", {"train.batch_size": 8192, "train.grad_accum": 2, "train.steps": 25_000}),
    "sam": ("sharpness-aware minimisation, rho 0.05", {"optim.name": "sam"}),
    "ema": ("EMA of weights, decay 0.999, used for evaluation", {"optim.ema_decay": 0.999}),
    "wd-1.0": ("weight decay 1.0 (log: -13.5pp)", {"optim.weight_decay": 1.0}),
    "gelu": ("GELU activation", {"model.activation": "gelu"}),
    "relu2": ("ReLU squared activation", {"model.activation": "relu2"}),
    # schedules
    "no-warmup": ("constant lr, no warmup", {"schedule.kind": "constant", "schedule.warmup_steps": 0}),
    "warmup-only": ("warmup then constant lr (log: 78.5%)", {"schedule.kind": "warmup"}),
    "steps-50k": ("50K steps, warmup 1400 (log: pareto)", {"train.steps": 50_000, "schedule.warmup_steps": 1_400}),
    "steps-140k": ("140K steps", {"train.steps": 140_000}),
    # curricula
    "curriculum-mixed": ("all difficulties from step 0", {"curriculum.kind": "mixed"}),
    "curriculum-regular": ("easy to hard", {"curriculum.kind": "regular", "curriculum.thresholds": [2, 10, 50]}),
    "curriculum-hard-only": ("only hard puzzles", {"curriculum.kind": "hard_only"}),
    "curriculum-scaled-10k": ("10K steps with the phases scaled to them (log: 70.5%)", {"train.steps": 10_000, "schedule.warmup_steps": 400}),
    "curriculum-plateau": ("gate raised on a loss plateau, lr restarted each stage", {"curriculum.kind": "plateau", "schedule.kind": "stage_restarts"}),
}


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
    """The one way to build a run's config: defaults <- preset <- variant <- overrides, validated."""
    if preset not in PRESETS:
        raise ConfigError(f"unknown preset {preset!r}; choose one of: {', '.join(PRESETS)}")
    if variant not in VARIANTS:
        raise ConfigError(f"unknown variant {variant!r}; choose one of: {', '.join(VARIANTS)}")
    cfg = RunConfig(preset=preset, variant=variant)
    apply_overrides(cfg, PRESETS[preset])
    apply_overrides(cfg, _scaled_variant(cfg, variant))
    apply_overrides(cfg, overrides or {})
    validate(cfg)
    return cfg


def _scaled_variant(cfg: RunConfig, variant: str) -> dict:
    """A variant's overrides for this preset; a changed iteration count is also evaluated at itself and 2x."""
    overrides = copy.deepcopy(VARIANTS[variant][1])
    scaled = _relative_to_preset(cfg, overrides) if cfg.preset != "gpu-paper" else overrides
    if "model.iterations" in scaled and "eval.iterations" not in scaled:  # evaluate at the new count and 2x
        scaled["eval.iterations"] = [scaled["model.iterations"], 2 * scaled["model.iterations"]]
    return scaled


def _relative_to_preset(cfg: RunConfig, overrides: dict) -> dict:
    """Iteration counts, batch sizes, steps and widths keep their ratio to the log's recipe on a CPU preset,
    so that e.g. `iterations-32` doubles a cpu preset's 8 iterations instead of forcing 32."""
    base = RunConfig()
    for key in ("model.iterations", "train.batch_size", "train.steps", "schedule.warmup_steps"):
        if key in overrides:
            section, name = key.split(".")
            ratio = overrides[key] / getattr(getattr(base, section), name)
            overrides[key] = max(1, round(getattr(getattr(cfg, section), name) * ratio))
    if "model.d_model" in overrides:  # scale variants keep their ratio to the preset's width
        for name in ("d_model", "d_ff"):
            key = f"model.{name}"
            if key in overrides:
                ratio = overrides[key] / getattr(RunConfig().model, name)
                overrides[key] = max(8, round(getattr(cfg.model, name) * ratio))
        quantum = 4 * overrides.get("model.n_heads", cfg.model.n_heads)  # rope2d wants head_dim % 4 == 0
        overrides["model.d_model"] = max(quantum, quantum * round(overrides["model.d_model"] / quantum))
    if "curriculum.thresholds" in overrides:  # the log's 9x9 ratings mean nothing on a small grid's scale
        overrides["curriculum.thresholds"] = sorted(cfg.curriculum.thresholds)
    return overrides


def validate(cfg: RunConfig) -> None:
    flat = flatten(cfg.to_dict())
    for key, valid in CHOICES.items():
        if flat[key] not in valid:
            raise ConfigError(f"{key}: unknown choice {flat[key]!r}; choose one of: {', '.join(map(str, valid))}")
    positive = ["data.grid_size", "data.test_per_bucket", "model.d_model", "model.n_layers", "model.n_heads",
                "model.d_ff", "model.iterations", "model.n_phases", "model.h_cycles", "model.l_cycles",
                "optim.lr", "train.steps", "train.batch_size", "train.grad_accum", "train.log_every",
                "train.eval_every", "train.checkpoint_every", "eval.batch_size"]
    for key in positive:
        if flat[key] <= 0:
            raise ConfigError(f"{key} must be positive, got {flat[key]}")
    nonneg = ["data.train_size", "data.min_clues", "schedule.warmup_steps", "optim.weight_decay",
              "optim.grad_clip", "optim.ema_decay", "train.threads", "eval.max_puzzles"]
    for key in nonneg:
        if flat[key] < 0:
            raise ConfigError(f"{key} must not be negative, got {flat[key]}")
    if cfg.data.grid_size not in SIZES:
        raise ConfigError(f"data.grid_size: {cfg.data.grid_size} is not supported; choose one of {SIZES}")
    if cfg.model.d_model % cfg.model.n_heads:
        raise ConfigError(f"model.d_model ({cfg.model.d_model}) must be divisible by model.n_heads ({cfg.model.n_heads})")
    if cfg.model.pos == "rope2d" and (cfg.model.d_model // cfg.model.n_heads) % 4:
        raise ConfigError("model.pos=rope2d needs a head dimension divisible by 4 (rows and columns each rotate half)")
    if cfg.train.batch_size % cfg.train.grad_accum:
        raise ConfigError(f"train.batch_size ({cfg.train.batch_size}) must be divisible by train.grad_accum ({cfg.train.grad_accum})")
    if cfg.schedule.warmup_steps >= cfg.train.steps and cfg.schedule.kind != "constant":
        raise ConfigError(f"schedule.warmup_steps ({cfg.schedule.warmup_steps}) must be below train.steps ({cfg.train.steps})")
    if not 0 < cfg.schedule.lr_min_ratio <= 1:
        raise ConfigError(f"schedule.lr_min_ratio must be in (0, 1], got {cfg.schedule.lr_min_ratio}")
    if sorted(cfg.data.bucket_edges) != cfg.data.bucket_edges or len(set(cfg.data.bucket_edges)) != len(cfg.data.bucket_edges):
        raise ConfigError(f"data.bucket_edges must be strictly increasing, got {cfg.data.bucket_edges}")
    if len(cfg.curriculum.phase_fractions) != len(cfg.curriculum.thresholds):
        raise ConfigError("curriculum.phase_fractions needs one fraction per curriculum.thresholds entry")
    if sum(cfg.curriculum.phase_fractions) > 1:
        raise ConfigError("curriculum.phase_fractions must sum to at most 1")
    if cfg.model.schedule == "phased" and cfg.model.iterations % cfg.model.n_phases:
        raise ConfigError(f"model.iterations ({cfg.model.iterations}) must be divisible by model.n_phases ({cfg.model.n_phases})")
    if not cfg.eval.iterations or min(cfg.eval.iterations) <= 0:
        raise ConfigError("eval.iterations needs at least one positive iteration count")


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
