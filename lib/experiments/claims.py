"""The log's claims, each a comparison of two variants' runs with an expected direction: the registry the
findings check (lib/findings/findings.py computes every verdict from runs; none is typed here).

    Claim("gelu", a=Side("gelu"), b=B, direction="≈", margin=1.0,
          text="GELU ≈ ReLU", section="Experiment: GELU Activation", log_figure="GELU 83.2% vs ReLU 83.6%")

`notes` are keyed by preset ("*" for every preset): what a preset's scale tests, as text or computed from the
preset's config; `untestable` names a preset where a knob cannot be carried at all (the claim then reads "not
testable here" with the reason, never a verdict). A side at `iterations_x` x its trained count is scored that far
at test time (the sequel's claims: at a stated multiple, where the log saw a collapse or a climb).
"""
from __future__ import annotations

from dataclasses import dataclass, field

from lib.experiments.presets import PRESETS

DIRECTIONS = (">", "<", "≈", "≥", "≤")


@dataclass(frozen=True)
class Side:
    """One side of a comparison: a variant's runs, evaluated at its trained iteration count or a multiple
    of it, with its EMA or live weights (empty: EMA when the run has both, as the variant evaluates)."""
    variant: str
    iterations_x: int = 1  # evaluated iteration count = iterations_x * the run's trained count
    weights: str = ""

    def label(self) -> str:
        extra = [f"{self.iterations_x}x iterations"] if self.iterations_x != 1 else []
        extra += [f"{self.weights} weights"] if self.weights else []
        return self.variant + (f" ({', '.join(extra)})" if extra else "")


@dataclass(frozen=True)
class Claim:
    name: str
    a: Side
    b: Side
    direction: str  # A vs B: ">", "<", "≈" (within ±margin), "≥" / "≤" (at least as good / no better, ±margin)
    margin: float = 1.0  # percentage points; used by ≈, ≥ and ≤
    text: str = ""  # what the log says, as the claim to test: "A > B"
    section: str = ""  # the log's section heading
    log_figure: str = ""  # the log's numbers, as the log states them
    log_effect: float | None = None  # the log's A - B in percentage points (None: the log has no number)
    log_sides: tuple[float | None, float | None] = (None, None)  # the log's solved % of A and of B, where stated
    # preset (or "*") -> a note on what that scale tests: text, or a function of the preset's baseline config
    notes: dict = field(default_factory=dict)
    # preset (or "*") -> why that scale cannot test the claim at all ("not testable here", never a verdict)
    untestable: dict = field(default_factory=dict)
    beyond_log: bool = False

    def __post_init__(self):
        if self.direction not in DIRECTIONS:
            raise ValueError(f"claim {self.name}: direction {self.direction!r} is not one of {DIRECTIONS}")
        if self.margin < 0:
            raise ValueError(f"claim {self.name}: margin must not be negative, got {self.margin}")

    def note(self, preset: str, cfg=None) -> str:
        texts = [self.notes.get("*", ""), self.notes.get(preset, "")]
        return "; ".join(filter(None, (t(cfg) if callable(t) else t for t in texts if t and (cfg or not callable(t)))))

    def why_untestable(self, preset: str, configs=()) -> str:
        """Why `preset` cannot test the claim: the declared reason, else one computed from the sides' configs
        (`configs`: the RunConfig each side trains at that preset)."""
        declared = self.untestable.get(preset, self.untestable.get("*", ""))
        return declared or "; ".join(filter(None, (degenerate(cfg) for cfg in configs)))


MIN_BATCH = 4  # below it a batch is noise, not a recipe: the ratio of a small script batch to 4096 rounds here


def degenerate(cfg) -> str:
    """Why a side's config at a scaled-down preset is not the knob it names, or ""."""
    if cfg.train.batch_size < MIN_BATCH:
        return (f"{cfg.variant} trains at a batch of {cfg.train.batch_size} here: the script's batch keeps its "
                f"ratio to the recipe's and rounds below {MIN_BATCH}")
    # AdamW's step moves a weight by at most about lr and its decay by lr x wd x w, so no weight can grow
    # past about 1 / wd; below the initial weights' own scale (PyTorch's Linear: 1 / sqrt(fan_in)) the
    # model cannot even keep its initialisation. Carrying a large decay's dose to a short run lands there.
    init_scale = cfg.model.d_model ** -0.5
    if cfg.optim.weight_decay * init_scale > 1:
        return (f"{cfg.variant} trains at weight decay {cfg.optim.weight_decay:.3g} here (its dose carried to "
                f"{cfg.train.steps:,} steps): AdamW caps a weight near 1 / wd = {1 / cfg.optim.weight_decay:.2g}, "
                f"below the initial weights' 1 / sqrt(d_model) = {init_scale:.2g}, so the run cannot learn; "
                "a run this short cannot carry both the decay's dose and its per-step strength")
    return ""


B = Side("baseline")
ORIGINAL = Side("original")  # the log's first model, the base of its early ablations
CLAIMS: list[Claim] = [
    # --- the log ------------------------------------------------------------------------------------------
    Claim("iteration", a=ORIGINAL, b=Side("no-iteration"), direction=">", log_effect=64.3,
          text="iteration is needed: 1 iteration fails", section="Ablation: No Iteration",
          log_figure="1 iteration: 0/1000 solved (64.3% cells) vs 16 iterations: 643/1000", log_sides=(64.3, 0.0)),
    Claim("intermediate-supervision", a=ORIGINAL, b=Side("final-only-loss"), direction=">", log_effect=21.5,
          text="intermediate supervision beats a final-only loss", section="Ablation: No Intermediate Supervision",
          log_figure="final-only 428/1000 vs all iterations 643/1000", log_sides=(64.3, 42.8)),
    Claim("weight-sharing", a=ORIGINAL, b=Side("unrolled"), direction=">", log_effect=6.2,
          text="weight sharing beats unrolled at 16x the parameters",
          section="Experiment: Unrolled (16 Separate Transformers)", log_figure="unrolled 581/1000 vs shared 643/1000",
          log_sides=(64.3, 58.1),
          notes={"*": lambda cfg: f"{cfg.model.iterations} iterations here: unrolled has {cfg.model.iterations}x the "
                                  "parameters" if cfg.model.iterations != 16 else ""}),
    Claim("phases-2x2", a=ORIGINAL, b=Side("middle1"), direction=">", log_effect=48.1,
          text="4 shared layers beat 2 phase blocks of 2 layers", section="Experiment: 2 Transformers × 2 Layers (Middle1)",
          log_figure="middle1 162/1000 vs shared 643/1000", log_sides=(64.3, 16.2)),
    Claim("phases-4x1", a=ORIGINAL, b=Side("middle2"), direction=">", log_effect=64.3,
          text="4 shared layers beat 4 phase blocks of 1 layer", section="Experiment: 4 Transformers × 1 Layer (Middle2)",
          log_figure="middle2 0/1000 vs shared 643/1000", log_sides=(64.3, 0.0)),
    Claim("recurrence", a=Side("recur-add"), b=Side("kaggle-reverse"), direction=">", log_effect=10.8,
          text="adding h_prev (recurrence) beats no recurrence", section="Experiment: Hidden State Recurrence",
          log_figure="recur_add 2265/2500 vs none 1994/2500 (+10.8pp)", log_sides=(90.6, 79.8)),
    Claim("encode-once", a=Side("no-x-after-init"), b=Side("recur-add"), direction="≥", margin=1.0, log_effect=-0.7,
          text="encoding the puzzle once is at least as good as feeding it every iteration",
          section="Experiment: No X After Init (TRM-style Input)",
          log_figure="once 2248/2500 vs every iteration 2265/2500 (-0.7pp)", log_sides=(89.9, 90.6)),
    Claim("mixed-vs-easy", a=Side("kaggle-mixed"), b=Side("curriculum-easy-only"), direction=">", log_effect=51.4,
          text="training on every difficulty beats training on the easiest only", section="Experiment: Mixed Difficulty Training",
          log_figure="difficulties 1.x-5.x: mixed 95.3/90.4/85.1/81.5/77.5% vs easy-only 65.3/47.6/27.9/19.3/12.5% "
                     "(mean +51.4pp)", log_sides=(86.0, 34.5)),
    Claim("reverse-vs-mixed-kaggle", a=Side("kaggle-reverse"), b=Side("kaggle-mixed"), direction=">", log_effect=2.6,
          text="before cosine, a reverse curriculum beats mixed sampling", section="Experiment: Curriculum Learning",
          log_figure="reverse 1994/2500 vs mixed 1930/2500 (+2.6pp)", log_sides=(79.8, 77.2)),
    Claim("reverse-vs-regular-kaggle", a=Side("kaggle-reverse"), b=Side("kaggle-regular"), direction=">",
          log_effect=8.2, text="before cosine, a reverse curriculum beats a regular (easy to hard) one",
          section="Experiment: Curriculum Learning", log_figure="reverse 1994/2500 vs regular 1790/2500 (+8.2pp)",
          log_sides=(79.8, 71.6)),
    Claim("sam-gap", a=Side("sam-bs512"), b=Side("bs-512"), direction=">", log_effect=27.6,
          text="SAM closes the large-batch generalisation gap", section="Experiment: SAM (Sharpness-Aware Minimization)",
          log_figure="batch 512, final: SAM 948/1000 vs vanilla 672/1000 (+27.6pp)", log_sides=(94.8, 67.2)),
    Claim("batch-4096", a=Side("no-warmup"), b=Side("extreme-bs512"), direction=">", log_effect=4.9,
          text="batch 4096 beats batch 512 on sudoku-extreme", section="Experiment: Batch Size Scaling on Sudoku-Extreme",
          log_figure="batch 4096 76.3% vs 512 71.4% (+4.9pp)", log_sides=(76.3, 71.4)),
    Claim("warmup", a=Side("warmup-only"), b=Side("no-warmup"), direction=">", log_effect=2.2,
          text="a 2K-step LR warmup helps", section="Experiment: LR Warmup",
          log_figure="warmup 78.5% vs none 76.3% (+2.2pp)", log_sides=(78.5, 76.3)),
    Claim("trm-nested", a=Side("no-warmup"), b=Side("trm-nested"), direction=">", log_effect=16.0,
          text="TRM's nested H/L cycles hurt", section="Experiment: TRM Architecture (Nested H_cycles/L_cycles)",
          log_figure="TRM nested 60.3% vs baseline (batch 4096) 76.3% (-16pp)", log_sides=(76.3, 60.3)),
    Claim("fixed-init", a=Side("fixed-init"), b=Side("warmup-only"), direction="≤", margin=1.0, log_effect=-1.0,
          text="a fixed random initial h does not help", section="Experiment: Fixed Random Hidden State Init",
          log_figure="fixed init 77.5% vs warmup 78.5% (-1.0pp)", log_sides=(77.5, 78.5)),
    Claim("carry", a=Side("warmup-only"), b=Side("carry-batches"), direction=">",
          text="carrying unsolved puzzles and their state across batches does not work",
          section="Experiment: Carry Hidden State Across Batches", log_figure="carry: training diverged",
          log_sides=(78.5, None)),
    Claim("reverse-vs-mixed", a=Side("sam"), b=Side("curriculum-mixed"), direction="≥", margin=1.0, log_effect=0.2,
          text="a reverse (hard to easy) curriculum is at least as good as mixed", section="Experiment: Cosine LR + Mixed Sampling",
          log_figure="reverse 84.0% vs mixed 83.8% (cosine, SAM)", log_sides=(84.0, 83.8)),
    Claim("mixed-vs-regular", a=Side("curriculum-mixed"), b=Side("curriculum-regular"), direction=">", log_effect=3.2,
          text="mixed sampling beats a regular (easy to hard) curriculum", section="Experiment: Cosine LR + Regular Curriculum",
          log_figure="mixed 83.8% vs regular 80.6% (cosine, SAM)", log_sides=(83.8, 80.6)),
    Claim("cosine", a=Side("sam"), b=Side("warmup-only"), direction=">", log_effect=5.5,
          text="warmup + cosine decay beats warmup only", section="Experiment: Cosine LR Decay (NEW SOTA)",
          log_figure="cosine 84.0% vs warmup only 78.5% (+5.5pp), both with SAM", log_sides=(84.0, 78.5)),
    Claim("sam", a=Side("sam"), b=B, direction="≈", margin=1.0, log_effect=0.4,
          text="SAM is redundant under cosine", section="Experiment: Cosine LR Without SAM (NEW RECOMMENDED BASELINE)",
          log_figure="SAM 84.0% vs AdamW 83.6% (+0.4pp)", log_sides=(84.0, 83.6)),
    Claim("weight-decay", a=B, b=Side("wd-1.0"), direction=">", log_effect=13.5,
          text="weight decay 1.0 is harmful", section="Experiment: High Weight Decay (nano-trm style)",
          log_figure="wd 0.01 83.6% vs wd 1.0 70.1% (+13.5pp)", log_sides=(83.6, 70.1),
          notes={"*": lambda cfg: f"both decays carried at the log's dose: wd {cfg.optim.weight_decay:.3g} and "
                                  f"{100 * cfg.optim.weight_decay:.3g} here keep exp(-wd x the lr summed over the run) "
                                  "as the recipe's 0.01 and 1.0" if cfg.data.grid_size != 9 else ""}),
    Claim("ema", a=Side("ema", weights="ema"), b=Side("ema", weights="live"), direction="≈", margin=1.0, log_effect=0.0,
          text="EMA weights are neutral (EMA vs live weights of one run)", section="Experiment: EMA on Cosine LR (Retest)",
          log_figure="EMA 83.6% vs live 83.6% (0pp)", log_sides=(83.6, 83.6)),
    Claim("mlp-mixer", a=Side("mlp-mixer"), b=Side("extreme-bs512"), direction="≈", margin=3.0, log_effect=0.5,
          text="the MLP-Mixer is within a few points of attention", section="Experiment: MLP-Mixer (Architecture Swap)",
          log_figure="mixer 71.9% vs attention 71.4% (+0.5pp)", log_sides=(71.9, 71.4)),
    Claim("gelu", a=Side("gelu"), b=B, direction="≈", margin=1.0, log_effect=-0.4,
          text="GELU ≈ ReLU", section="Experiment: GELU Activation", log_figure="GELU 83.2% vs ReLU 83.6% (-0.4pp)",
          log_sides=(83.2, 83.6)),
    Claim("relu2", a=B, b=Side("relu2"), direction=">", log_effect=1.7,
          text="ReLU beats ReLU²", section="Experiment: ReLU Squared Activation", log_figure="ReLU 83.6% vs ReLU² 81.9% (+1.7pp)",
          log_sides=(83.6, 81.9)),
    Claim("pos-none", a=ORIGINAL, b=Side("pos-none"), direction=">", log_effect=23.4,
          text="Sudoku's row/column/box positions are needed", section="Ablation: No Sudoku Positional Encoding",
          log_figure="no Sudoku positions 409/1000 vs 643/1000 (-23.4pp)", log_sides=(64.3, 40.9)),
    Claim("sinusoidal", a=ORIGINAL, b=Side("pos-sinusoidal"), direction=">", log_effect=64.3,
          text="sinusoidal row/column/box positions fail", section="Experiment: Sinusoidal Positional Encoding",
          log_figure="sinusoidal 0/1000 (summary table) vs 643/1000", log_sides=(64.3, 0.0)),
    Claim("rope-vs-rcb", a=Side("pos-rope2d"), b=Side("steps-50k"), direction="≈", margin=1.0, log_effect=-0.3,
          text="2D RoPE ≈ row/column/box embeddings", section="Key Insights (6): positional encoding",
          log_figure="2D RoPE 82.5% vs row/col/box 82.8% at 50K steps (-0.3pp)", log_sides=(82.5, 82.8)),
    Claim("scale-down", a=Side("extreme-bs512"), b=Side("scale-down"), direction=">", log_effect=63.1,
          text="the 100K model is far worse", section="Experiment: Scale DOWN", log_figure="100K params 8.3% vs 800K 71.4%",
          log_sides=(71.4, 8.3)),

    # --- beyond the log ---------------------------------------------------------------------------------------
    # The log never claimed it: its "failed puzzles peak at iteration 4" was the pre-recurrence model within
    # its trained iterations. The sequel found more test-time iterations help its recipe; this asks it of the log's.
    Claim("test-time-iterations", a=Side("baseline", iterations_x=2), b=B, direction=">",
          text="twice the trained iterations at test time solve more", section="iters/EXPERIMENTS_ITERS.md (the sequel)",
          log_figure="not measured on the log's recipe (the sequel's recipe: 81.8% at 16, 98.9% at 1024)",
          beyond_log=True),
    Claim("plateau", a=Side("curriculum-plateau"), b=B, direction=">",
          text="a plateau-gated curriculum with LR restarts beats fixed phases",
          section="plateau-aligned-lr-curriculum.md (another task; not in the log)", log_figure="not measured on Sudoku",
          beyond_log=True),
    Claim("augment", a=Side("augment"), b=B, direction=">",
          text="symmetry augmentation beats none", section="Experiment: MLP-Mixer (TRM's edge: augmentation?)",
          log_figure="not measured: the log never augmented", beyond_log=True),
]

# The sequel (iters/EXPERIMENTS_ITERS.md): the conditions under which more test-time iterations keep helping.
# Judged on cpu-iters (the sequel's recipe at CPU scale), each at the multiple of the trained count the sequel
# reports.
SEQUEL_CLAIMS: list[Claim] = [
    Claim("lr-band-high", a=Side("iters-lr2e3", iterations_x=8), b=Side("iters-lr3e3", iterations_x=8), direction=">",
          log_effect=85.4, text="lr 2e-3 scales where 3e-3 collapses (8x the trained count)",
          section="iters: Learning rate", log_figure="at 128 iterations: lr 2e-3 95.3% vs 3e-3 7.1%"),
    Claim("lr-band-low", a=Side("iters-lr2e3", iterations_x=64), b=Side("iters-lr1e3", iterations_x=64), direction=">",
          log_effect=78.1, text="lr 2e-3 keeps climbing where 1e-3 falls back (64x)",
          section="iters: Learning rate", log_figure="at 1024: lr 2e-3 98.9% vs 1e-3 20.8%"),
    Claim("batch-2048-vs-1024", a=Side("iters-bs2048", iterations_x=16), b=Side("iters-bs1024", iterations_x=16),
          direction=">", log_effect=41.8, text="batch 2048 scales where 1024 collapses (16x)", section="iters: Batch size",
          log_figure="at 256: batch 2048 96.6% vs 1024 54.8%"),
    Claim("batch-2048-vs-4096", a=Side("iters-bs2048", iterations_x=4), b=Side("pos-rope2d", iterations_x=4),
          direction=">", log_effect=71.6, text="batch 2048 scales where 4096 collapses (4x)", section="iters: Batch size",
          log_figure="at 64: batch 2048 92.4% vs 4096 20.8%"),
    Claim("small-model", a=Side("iters-bs2048", iterations_x=8), b=Side("iters-d192", iterations_x=8), direction=">",
          log_effect=66.7, text="the d128 model scales where d192 collapses (8x)", section="iters: Model size",
          log_figure="at 128: d128 94.9% vs d192 28.2%"),
    Claim("full-annealing", a=Side("iters-bs2048", iterations_x=8), b=Side("iters-100k", iterations_x=8), direction=">",
          log_effect=85.7, text="a fully annealed 50K run scales where a stretched 100K one collapses (8x)",
          section="iters: Longer training", log_figure="at 128: 50K 94.9% vs 100K 9.2%"),
    Claim("train-16-vs-32", a=Side("iters-bs2048", iterations_x=16), b=Side("iters-32-curriculum", iterations_x=8),
          direction=">", log_effect=35.0, text="training at 16 iterations scales further than at 32 (both at 256)",
          section="iters: 32 training iterations", log_figure="at 256: 16-iteration 96.6% vs 32-iteration 61.6%"),
    Claim("no-fixed-point-loss", a=Side("iters-bs2048", iterations_x=32), b=Side("iters-fp-weight", iterations_x=32),
          direction=">", log_effect=26.0, text="no explicit fixed-point loss scales further (32x)",
          section="iters: Fixed-point losses", log_figure="at 512: 97.5% vs 2x-CE-on-held-cells 71.5%"),
    Claim("curriculum-vs-mixed-scaling", a=Side("iters-bs2048", iterations_x=64), b=Side("iters-mixed", iterations_x=64),
          direction="≥", margin=1.0, log_effect=0.8, text="the curriculum scales at least as far as mixed sampling (64x)",
          section="iters: Curriculum", log_figure="at 1024: curriculum 98.1% vs mixed 97.3%"),

]


def claims_for(preset: str) -> list[Claim]:
    """The claims a preset's findings judge: the sequel's on the presets of its recipe, the log's elsewhere."""
    sequel = preset == "gpu-iters" or PRESETS[preset].recipe == "gpu-iters"
    return SEQUEL_CLAIMS if sequel else CLAIMS


def claim_variants(claims: list[Claim] = CLAIMS) -> list[str]:
    """Every variant the claims need, in claim order."""
    return list(dict.fromkeys(s.variant for c in claims for s in (c.a, c.b)))
