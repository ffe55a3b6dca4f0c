"""What a config is: plain dataclasses, each field's scale rule, CHOICES, overrides and the rules that check
them. Which configs exist is lib/experiments/: a run is `preset` + `variant` + `--set key=value` overrides, in
that order (lib/experiments/resolve.py: make_config). Unknown keys, unknown choices and non-positive
counts are errors that name the field.

Every field declares beside it how a variant's 9x9 value carries to a scaled-down preset (`scale`):
    ratio    keeps its ratio to the recipe: value x preset / recipe (iterations, batch, steps, lr, heads)
    depth    layers as a whole-number fraction of the preset's depth (middle1's 2 x 2 becomes 2 x half)
    width    widths in ratio to the preset's d_model or d_ff, rounded to what the heads need
    preset   the preset's own value (the log's 9x9 rating thresholds mean nothing on a small grid)
    horizon  an average's horizon keeps its share of the run: (1 - decay) x recipe steps / preset steps
             (EMA 0.999 over 70K steps is 0.953 over 1,500)
    dose     weight decay keeps its dose, wd x the lr summed over the run: AdamW shrinks a weight by
             exp(-wd x sum(lr)), e^-0.53 for the recipe's 0.01 over 70K steps at every scale
    rope     2D RoPE's base keeps the angle its slowest frequency turns across the grid
    copy     the same number at every scale (a choice, a rate, a probability, a fraction of the run)
The preset's own horizon and dose fields are carried from the recipe the same way. A test checks that every
field declares one, so no knob can silently fail to scale.
"""
from __future__ import annotations

import dataclasses
import functools
import json
import typing
from dataclasses import dataclass, field

from lib.sudoku import BOX_SHAPES, SIZES



class ConfigError(ValueError):
    """A bad configuration value; the message names the field."""


# Each choice field lists its valid values; the model and loop dispatch on these names.
CHOICES = {
    "data.bucket_by": ["rating", "deduction_depth", "guesses_full"],
    "model.block": ["attention", "mixer", "trm"],
    "model.input": ["encode_once", "concat", "proj_add", "proj_concat", "embed"],
    "model.recurrence": ["add", "none", "concat", "gated", "mem"],
    "model.pos": ["rcb", "rope2d", "sinusoidal", "learned", "none"],
    "model.pos_every_iter": [True, False],
    "model.feed_preds": [True, False],
    "model.h_init": ["learned", "random"],
    "model.pred_update": ["softmax", "norm_residual"],
    "model.sharing": ["shared", "phased", "unrolled", "nested"],
    "model.activation": ["relu", "gelu", "relu2"],
    "model.loss": ["all", "final"],
    "model.loss_cells": ["blanks", "all"],
    "model.fixed_point": ["none", "weight", "gradmask", "l2", "copy"],
    "model.init": ["encoder", "torch", "small"],
    "model.head_norm": [True, False],
    "model.head_bias": [True, False],
    "optim.name": ["adamw", "sam", "muon"],
    "optim.decay": ["all", "matrices"],
    "schedule.kind": ["cosine", "warmup", "constant", "stage_restarts"],
    "curriculum.kind": ["mixed", "reverse", "regular", "hard_only", "easy_only", "plateau"],
    "train.dtype": ["auto", "float32", "bfloat16"],
    "train.compile": ["auto", "off", "default", "reduce-overhead", "max-autotune", "max-autotune-no-cudagraphs"],
}


def knob(default, scale: str = "copy", like: str = "", observer: bool = False):
    """A config field and how it scales to a CPU preset (see the module docstring). An observer
    changes what a run writes beside its results, never what it computes: RunConfig.to_dict leaves
    it out at its default."""
    meta = {"scale": scale, **({"like": like} if like else {})}
    if observer:
        meta["observer"] = True
    if isinstance(default, list):
        return field(default_factory=lambda: list(default), metadata=meta)
    return field(default=default, metadata=meta)


SCALES = ("ratio", "depth", "width", "preset", "horizon", "dose", "rope", "copy")


@dataclass
class DataConfig:
    source: str = knob("generated")  # "generated", "sudoku-extreme", or a CSV/text file path
    grid_size: int = knob(9)  # 4, 6 or 9
    train_size: int = knob(100_000)  # puzzles in the training pool (generated count, or a subsample)
    test_per_bucket: int = knob(5_000)  # fixed test count per bucket, as in the log
    bucket_by: str = knob("rating")  # column the buckets cut
    bucket_edges: list[int] = knob([0, 1, 3, 11, 51], "preset")  # lower edges
    min_clues: int = knob(0)  # generated: stop removing clues at this count (0 = minimal puzzles)
    hard_fraction: float = knob(0.0)  # generated: share of the pool made harder by hill climbing
    augment: bool = knob(False)  # random validity-preserving symmetry per training sample (the log never augmented)
    # the scripts' buckets stop at rating 1000 (51-1000), so a rating above it is neither trained nor tested
    # (the name predates the test cap); 0 = no cap
    train_max: int = knob(1000, "preset")
    seed: int = knob(0)


@dataclass
class ModelConfig:
    d_model: int = knob(128, "width", like="d_model")
    n_layers: int = knob(4, "depth")
    n_heads: int = knob(4, "ratio")
    d_ff: int = knob(512, "width", like="d_ff")
    activation: str = knob("relu")
    dropout: float = knob(0.1)  # nn.TransformerEncoderLayer's default, as every script left it
    iterations: int = knob(16, "ratio")  # recurrent steps in training
    block: str = knob("attention")  # attention or MLP-Mixer layers
    input: str = knob("encode_once")  # how the puzzle enters: encoded once, or re-fed each iteration
    recurrence: str = knob("add")  # how h_prev enters the next iteration
    pos: str = knob("rcb")
    rope_base: float = knob(10.0, "rope")  # pos=rope2d: the scripts' base 10 (8 frequencies per axis at head_dim 32)
    pos_every_iter: bool = knob(True)  # add the positional term at every iteration, or only at init
    feed_preds: bool = knob(True)  # feed softmax(preds) back each iteration (the log: dropping them costs 27-62 puzzles)
    h_init: str = knob("learned")  # initial h: the encoded puzzle (learned) or a fixed random buffer (std 1; nested: h and z)
    pred_update: str = knob("softmax")  # preds = softmax(head(h)), or a TRM-style RMS-normalised residual state
    sharing: str = knob("shared")  # which weights each iteration uses: shared, phased, unrolled, or nested H/L cycles
    n_phases: int = knob(2)  # sharing=phased: distinct transformers, each for iterations/n_phases steps
    h_cycles: int = knob(3)  # sharing=nested
    l_cycles: int = knob(6)  # sharing=nested
    token_mlp: int = knob(0, "width", like="d_model")  # block=mixer: hidden width of the token-mixing MLP (0 = d_ff)
    loss: str = knob("all")  # intermediate supervision at every iteration, or final only
    loss_cells: str = knob("blanks")  # cross-entropy on the blank cells (the scripts), or on every cell
    fixed_point: str = knob("none")  # the sequel's fixed-point loss terms (model.sequence_loss)
    q_head: float = knob(0.0)  # > 0: a Q-head predicting "solved", its loss weight (the sequel's 0.5)
    head_norm: bool = knob(False)  # a LayerNorm before the output head (none in the scripts)
    head_bias: bool = knob(True)
    init: str = knob("encoder")  # the scripts' init: PyTorch's, layers of nn.TransformerEncoder copies of one
    activation_checkpointing: bool = knob(False)  # recompute each iteration in backward


@dataclass
class OptimConfig:
    name: str = knob("adamw")
    lr: float = knob(1.5e-3, "ratio")
    weight_decay: float = knob(0.01, "dose")
    decay: str = knob("all")  # which parameters decay: all (torch AdamW's default, as the log) or matrices only
    beta1: float = knob(0.9)
    beta2: float = knob(0.95)
    grad_clip: float = knob(0.0)  # 0 disables clipping (no script of the recipe's line clipped)
    sam_rho: float = knob(0.05)  # optim.name=sam
    muon_lr: float = knob(0.02)  # optim.name=muon: Muon's lr on every matrix; optim.lr is AdamW's on the rest
    ema_decay: float = knob(0.0, "horizon")  # 0 disables EMA; evaluation uses EMA weights when on


@dataclass
class ScheduleConfig:
    kind: str = knob("cosine")
    warmup_steps: int = knob(2_000, "ratio")
    lr_min_ratio: float = knob(0.01)  # floor as a fraction of peak lr
    stage_min_ratios: list[float] = knob([0.1, 0.1, 0.05])  # stage_restarts


@dataclass
class CurriculumConfig:
    kind: str = knob("reverse")
    # Phase thresholds on data.bucket_by. reverse: phase i trains on values >= thresholds[i];
    # regular: on values <= thresholds[i]; the last phase always trains on everything. The recipe's
    # 51, 11, 1 are what the scripts' "rating 21+, 6+, 1+" gates train on: they admit a rating bucket
    # when its lower edge passes, so 21+ keeps only the 51-1000 bucket and 6+ only 11 and above.
    thresholds: list[int] = knob([51, 11, 1], "preset")
    phase_fractions: list[float] = knob([0.2, 0.2, 0.2])  # of train.steps
    hard_min: int = knob(3)  # hard_only: train on values >= hard_min
    easy_max: int = knob(0)  # easy_only: train on values <= easy_max
    # plateau: raise the gate when the loss stops improving, restarting the lr each stage. As fractions of the
    # run, from the plateau-aligned recipe's 50-step window, 0.5% threshold and 2-epoch guard in 50K steps;
    # the window is at least plateau_min_window steps, so that batch noise cannot read as a plateau, and the
    # threshold grows with it, so the rule asks for the same improvement rate per share of the run.
    plateau_window: float = knob(0.001)  # of train.steps
    plateau_min_window: int = knob(25)
    plateau_threshold: float = knob(0.005)  # relative loss improvement per plateau_window of the run
    min_steps_per_stage: float = knob(0.04)  # of train.steps: the guard before a stage may end


@dataclass
class TrainConfig:
    steps: int = knob(70_000, "ratio")
    batch_size: int = knob(4_096, "ratio")  # global batch (per rank x ranks x grad_accum)
    # micro-batches a step; 0 = auto: on CUDA the fewest that fit (lib/machine/memory.py), 1 on a CPU
    grad_accum: int = knob(1)
    device: str = knob("auto")  # auto, cpu, cuda, cuda:1, ...
    dtype: str = knob("auto")  # auto = bf16 autocast on CUDA, fp32 on CPU
    compile: str = knob("auto")  # torch.compile mode, "off", or auto: compile on CUDA, as the scripts ran
    threads: int = knob(0)  # torch CPU threads; 0 = leave torch's default
    seed: int = knob(0)
    log_every: int = knob(100)
    eval_every: int = knob(5_000)
    checkpoint_every: int = knob(1_000)
    carry: bool = knob(False)  # keep unsolved puzzles and their state in their batch slots across steps (the log: diverged)
    tensorboard: bool = knob(False, observer=True)  # also TensorBoard event files (lib/machine/watch.py)


@dataclass
class EvalConfig:
    iterations: list[int] = knob([16, 32])  # trained count and beyond
    batch_size: int = knob(1_024)
    max_puzzles: int = knob(0)  # 0 = the whole test split
    # extra test sets, each evaluated at the end and reported per bucket: "sudoku-extreme", "benchmark"
    # (shared/data/external), "kaggle", a CSV/text path, or "generated:key=value,..." (the run's generator
    # with those data fields changed, e.g. generated:min_clues=0)
    sources: list[str] = knob([])


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
        """Plain values. An observer field at its default is left out, so adding one changes no
        earlier run's record and no config's identity (workbook.same_resolved_config,
        findings.config_hash)."""
        d = dataclasses.asdict(self)
        for section in dataclasses.fields(self):
            sub = getattr(self, section.name)
            for f in dataclasses.fields(sub) if dataclasses.is_dataclass(sub) else ():
                if f.metadata.get("observer") and getattr(sub, f.name) == f.default:
                    del d[section.name][f.name]
        return d

    @classmethod
    def from_dict(cls, d: dict) -> "RunConfig":
        """From to_dict's output, or a run's config.json (whose "code" entry records the code, not the run).
        A field the dict lacks keeps its default: a run made before the field existed ran what the default
        runs (adding a field whose default changes a result is a change of RESULTS_VERSION)."""
        cfg = cls()
        # "code" and "memory_plan" (a CUDA run's micro-batches) record how it ran, not what it is
        records = ("code", "memory_plan")
        apply_overrides(cfg, flatten({k: v for k, v in d.items() if k not in records}))
        return cfg


def scale_rules() -> dict[str, dict]:
    """{dotted key: {"scale": ..., "like": ...}} for every field of RunConfig's sections."""
    sections = [(f.name, getattr(RunConfig(), f.name)) for f in dataclasses.fields(RunConfig)]
    return {f"{name}.{f.name}": dict(f.metadata) for name, sub in sections if dataclasses.is_dataclass(sub)
            for f in dataclasses.fields(sub)}


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


# Older spellings a choice field still reads: train.compile was a bool.
ALIASES = {"train.compile": {True: "default", False: "off", "true": "default", "false": "off"}}


def _coerce(key: str, value, typ):
    """Turn a value (maybe a CLI string) into the field's type, or raise naming the field."""
    if key in ALIASES and isinstance(value, (bool, str)) and value in ALIASES[key]:
        value = ALIASES[key][value]
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
    return _type_hints(type(obj))


@functools.lru_cache(maxsize=None)
def _type_hints(cls) -> dict:
    # get_type_hints evaluates every annotation's string: cached, a config builds in a fraction of the time
    return typing.get_type_hints(cls)


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


def validate(cfg: RunConfig, reference: RunConfig | None = None) -> None:
    """Every rule on a whole config: a bad value, or a combination that would silently do nothing,
    fails here, at make_config, not when the model is built or the run starts. `reference` is the preset's
    own config: a field that differs from it where the config's other choices make the field inert is an
    error naming it (a flag that does nothing is a bug)."""
    flat = flatten(cfg.to_dict())
    _check_choices(flat, "")
    _check_signs(flat, ["data.grid_size", "data.test_per_bucket", "optim.lr", "train.steps", "train.batch_size",
                        "train.log_every", "train.eval_every", "train.checkpoint_every",
                        "eval.batch_size", "curriculum.plateau_min_window"],
                 ["data.train_size", "data.min_clues", "data.train_max", "schedule.warmup_steps", "optim.weight_decay",
                  "optim.grad_clip", "optim.ema_decay", "optim.muon_lr", "model.q_head", "train.threads",
                  "train.grad_accum", "eval.max_puzzles"])
    validate_model(cfg.model)
    if cfg.data.grid_size not in SIZES:
        raise ConfigError(f"data.grid_size: {cfg.data.grid_size} is not supported; choose one of {SIZES}")
    if cfg.train.grad_accum and cfg.train.batch_size % cfg.train.grad_accum:
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
    if cfg.train.carry and (cfg.train.grad_accum > 1 or cfg.model.sharing == "nested"):
        raise ConfigError("train.carry keeps one state per batch slot: it needs train.grad_accum=1 and a "
                          "non-nested model.sharing")
    if cfg.optim.name == "muon" and cfg.optim.decay != "all":
        raise ConfigError("optim.name=muon decays only the 1-D parameters AdamW steps (as the log's scripts); "
                          "optim.decay=matrices would change nothing")
    if not cfg.eval.iterations or min(cfg.eval.iterations) <= 0:
        raise ConfigError("eval.iterations needs at least one positive iteration count")
    _check_inert(cfg, reference or RunConfig(preset=cfg.preset))


# A field that does nothing while its condition holds: (field, condition, what makes it inert). A field there
# that differs from the preset's own value is a silent no-op, and an error.
INERT = [
    ("model.n_heads", lambda c: c.model.block != "attention", "only model.block=attention has heads"),
    ("model.rope_base", lambda c: c.model.pos != "rope2d", "only model.pos=rope2d has a base"),
    ("model.h_cycles", lambda c: c.model.sharing != "nested", "only model.sharing=nested has cycles"),
    ("model.l_cycles", lambda c: c.model.sharing != "nested", "only model.sharing=nested has cycles"),
    ("model.n_phases", lambda c: c.model.sharing != "phased", "only model.sharing=phased has phases"),
    ("model.activation", lambda c: c.model.block == "trm", "model.block=trm has SwiGLU MLPs"),
    ("model.dropout", lambda c: c.model.block == "trm", "model.block=trm has no dropout (as TRM)"),
    ("optim.sam_rho", lambda c: c.optim.name != "sam", "only optim.name=sam perturbs the weights"),
    ("optim.muon_lr", lambda c: c.optim.name != "muon", "only optim.name=muon steps with Muon"),
    ("optim.decay", lambda c: c.optim.weight_decay == 0, "optim.weight_decay is 0"),
    ("schedule.stage_min_ratios", lambda c: c.schedule.kind != "stage_restarts",
     "only schedule.kind=stage_restarts has stage floors"),
    ("schedule.lr_min_ratio", lambda c: c.schedule.kind in ("warmup", "constant")
     or (c.schedule.kind == "stage_restarts" and c.schedule.stage_min_ratios), "the schedule has no such floor"),
    ("curriculum.thresholds", lambda c: c.curriculum.kind in ("mixed", "hard_only", "easy_only"),
     "the curriculum has no phases"),
    ("curriculum.phase_fractions", lambda c: c.curriculum.kind in ("mixed", "hard_only", "easy_only"),
     "the curriculum has no phases"),
    ("curriculum.hard_min", lambda c: c.curriculum.kind != "hard_only", "only curriculum.kind=hard_only reads it"),
    ("curriculum.easy_max", lambda c: c.curriculum.kind != "easy_only", "only curriculum.kind=easy_only reads it"),
    *((f"curriculum.{name}", lambda c: c.curriculum.kind != "plateau", "only curriculum.kind=plateau reads it")
      for name in ("plateau_window", "plateau_min_window", "plateau_threshold", "min_steps_per_stage")),
    ("data.min_clues", lambda c: c.data.source != "generated", "only a generated source has clues to remove"),
    ("data.hard_fraction", lambda c: c.data.source != "generated", "only a generated source is hill-climbed"),
]


def _check_inert(cfg: RunConfig, reference: RunConfig) -> None:
    mine, base = flatten(cfg.to_dict()), flatten(reference.to_dict())
    for key, inert, why in INERT:
        if inert(cfg) and mine[key] != base[key]:
            raise ConfigError(f"{key}={mine[key]!r} does nothing here: {why}")


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
    if m.rope_base <= 1:
        raise ConfigError(f"model.rope_base must be above 1, got {m.rope_base}")
    if m.block == "attention" and m.d_model % m.n_heads:
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
    if m.block != "attention" and m.pos == "rope2d":
        raise ConfigError(f"model.block={m.block} has no attention for 2D RoPE to rotate; choose model.pos=rcb, "
                          "sinusoidal, learned or none (the token MLP already sees positions)")
    if m.block == "attention" and m.token_mlp:
        raise ConfigError("model.token_mlp sizes the token MLP of model.block=mixer or trm; attention has none")
    if not m.pos_every_iter and m.pos == "none":
        raise ConfigError("model.pos_every_iter=false with model.pos=none changes nothing: there are no positions")
    if m.pred_update == "norm_residual" and not m.feed_preds:
        raise ConfigError("model.pred_update=norm_residual never feeds predictions back; model.feed_preds=false "
                          "would change nothing")
    if m.input == "embed" and m.feed_preds:
        raise ConfigError("model.input=embed (TRM's) feeds no predictions back: set model.feed_preds=false")
    if m.h_init == "random" and m.input == "embed" and m.sharing != "nested":
        raise ConfigError("model.h_init=random with model.input=embed is TRM's start: it needs model.sharing=nested")


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
