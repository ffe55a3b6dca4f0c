"""The log's claims, each a comparison of two variants' runs with an expected direction: the registry the
findings check (lib/findings.py computes every verdict from runs; none is typed here).

    Claim("gelu", a=Side("gelu"), b=B, direction="≈", margin=1.0,
          text="GELU ≈ ReLU", section="Experiment: GELU Activation", log_figure="GELU 83.2% vs ReLU 83.6%")

`notes` are keyed by preset: what a preset's scale cannot test as the log meant it ("*" for every preset).
"""
from __future__ import annotations

from dataclasses import dataclass, field

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
    notes: dict = field(default_factory=dict)  # preset (or "*") -> why that scale cannot test it as the log meant
    beyond_log: bool = False

    def __post_init__(self):
        if self.direction not in DIRECTIONS:
            raise ValueError(f"claim {self.name}: direction {self.direction!r} is not one of {DIRECTIONS}")
        if self.margin < 0:
            raise ValueError(f"claim {self.name}: margin must not be negative, got {self.margin}")

    def note(self, preset: str) -> str:
        return "; ".join(filter(None, [self.notes.get("*", ""), self.notes.get(preset, "")]))


B = Side("baseline")
ORIGINAL = Side("original")  # the log's first model, the base of its early ablations
CLAIMS: list[Claim] = [
    Claim("iteration", a=ORIGINAL, b=Side("no-iteration"), direction=">",
          text="iteration is needed: 1 iteration fails",
          section="Ablation: No Iteration",
          log_figure="1 iteration: 0/1000 solved (64.3% cells) vs 16 iterations: 643/1000"),
    Claim("intermediate-supervision", a=ORIGINAL, b=Side("final-only-loss"), direction=">",
          text="intermediate supervision beats a final-only loss",
          section="Ablation: No Intermediate Supervision",
          log_figure="final-only 428/1000 vs all iterations 643/1000"),
    Claim("weight-sharing", a=ORIGINAL, b=Side("unrolled"), direction=">",
          text="weight sharing beats unrolled at 16x the parameters",
          section="Experiment: Unrolled (16 Separate Transformers)",
          log_figure="unrolled 581/1000 vs shared 643/1000",
          notes={"cpu-quick": "cpu-quick trains 8 iterations, so unrolled has 8x the parameters, not 16x"}),
    Claim("phases-2x2", a=ORIGINAL, b=Side("middle1"), direction=">",
          text="4 shared layers beat 2 phase blocks of 2 layers",
          section="Experiment: 2 Transformers × 2 Layers (Middle1)",
          log_figure="middle1 162/1000 vs shared 643/1000"),
    Claim("phases-4x1", a=ORIGINAL, b=Side("middle2"), direction=">",
          text="4 shared layers beat 4 phase blocks of 1 layer",
          section="Experiment: 4 Transformers × 1 Layer (Middle2)",
          log_figure="middle2 0/1000 vs shared 643/1000"),
    Claim("recurrence", a=Side("recur-add"), b=ORIGINAL, direction=">",
          text="adding h_prev (recurrence) beats no recurrence",
          section="Experiment: Hidden State Recurrence",
          log_figure="recur_add 2265/2500 vs none 1994/2500 (+13.6%)"),
    Claim("encode-once", a=Side("no-x-after-init"), b=Side("recur-add"), direction="≥", margin=1.0,
          text="encoding the puzzle once is at least as good as feeding it every iteration",
          section="Experiment: No X After Init (TRM-style Input)",
          log_figure="once 2248/2500 vs every iteration 2265/2500 (-0.7%)"),
    Claim("reverse-vs-mixed", a=Side("curriculum-reverse"), b=Side("curriculum-mixed"), direction="≥", margin=1.0,
          text="a reverse (hard to easy) curriculum is at least as good as mixed",
          section="Experiment: Cosine LR + Mixed Sampling",
          log_figure="reverse 84.0% vs mixed 83.8% (cosine)",
          notes={"cpu-quick": "cpu-quick buckets by deduction depth on 6x6 grids, not by the log's 9x9 rating"}),
    Claim("mixed-vs-regular", a=Side("curriculum-mixed"), b=Side("curriculum-regular"), direction=">",
          text="mixed sampling beats a regular (easy to hard) curriculum",
          section="Experiment: Cosine LR + Regular Curriculum",
          log_figure="mixed 83.8% vs regular 80.6% (cosine)",
          notes={"cpu-quick": "cpu-quick buckets by deduction depth on 6x6 grids, not by the log's 9x9 rating"}),
    Claim("cosine", a=Side("sam"), b=Side("warmup-only"), direction=">",
          text="warmup + cosine decay beats warmup only",
          section="Experiment: Cosine LR Decay (NEW SOTA)",
          log_figure="cosine 84.0% vs warmup only 78.5% (+5.5pp), both with SAM"),
    Claim("sam", a=Side("sam"), b=B, direction="≈", margin=1.0,
          text="SAM is redundant under cosine",
          section="Experiment: Cosine LR Without SAM (NEW RECOMMENDED BASELINE)",
          log_figure="SAM 84.0% vs AdamW 83.6% (+0.4pp)"),
    Claim("weight-decay", a=B, b=Side("wd-1.0"), direction=">",
          text="weight decay 1.0 is harmful",
          section="Experiment: High Weight Decay (nano-trm style)",
          log_figure="wd 0.01 83.6% vs wd 1.0 70.1% (+13.5pp)",
          notes={"cpu-quick": "AdamW shrinks a weight by exp(-wd x the lr summed over steps): e^-0.76 over cpu-quick's 1,500 steps against e^-53 over the log's 70K, so at CPU scale wd 1.0 is a far weaker dose"}),
    Claim("ema", a=Side("ema", weights="ema"), b=Side("ema", weights="live"), direction="≈", margin=1.0,
          text="EMA weights are neutral (EMA vs live weights of one run)",
          section="Experiment: EMA on Cosine LR (Retest)",
          log_figure="EMA 83.6% vs live 83.6% (0pp)",
          notes={"cpu-quick": "the EMA starts from the initial weights, which still weigh 0.999^1500 = 22% in it after cpu-quick's 1,500 steps (0.999^70000 = 4e-31 over the log's 70K): the preset does not scale the decay, so at CPU scale this tests an EMA that has not forgotten its start; keeping the log's horizon-to-run ratio would take decay 0.953 (not run)"}),
    Claim("mlp-mixer", a=Side("mlp-mixer"), b=Side("extreme-bs512"), direction="≈", margin=3.0,
          text="the MLP-Mixer is within a few points of attention",
          section="Experiment: MLP-Mixer (Architecture Swap)",
          log_figure="mixer 71.9% vs attention 71.4% (+0.5pp)",
          notes={"cpu-quick": "the log's SAM / batch-512 base keeps its ratio to the recipe: batch 8 at cpu-quick"}),
    Claim("gelu", a=Side("gelu"), b=B, direction="≈", margin=1.0,
          text="GELU ≈ ReLU",
          section="Experiment: GELU Activation",
          log_figure="GELU 83.2% vs ReLU 83.6% (-0.4pp)"),
    Claim("relu2", a=B, b=Side("relu2"), direction=">",
          text="ReLU beats ReLU²",
          section="Experiment: ReLU Squared Activation",
          log_figure="ReLU 83.6% vs ReLU² 81.9% (+1.7pp)"),
    Claim("sinusoidal", a=ORIGINAL, b=Side("pos-sinusoidal"), direction=">",
          text="1D sinusoidal positions fail",
          section="Experiment: Sinusoidal Positional Encoding",
          log_figure="sinusoidal 0/1000 (summary table) vs 643/1000"),
    Claim("rope-vs-rcb", a=B, b=Side("pos-rcb"), direction="≈", margin=1.0,
          text="2D RoPE ≈ row/column/box embeddings",
          section="Key Insights (6): positional encoding",
          log_figure="2D RoPE -0.3pp vs row/col/box"),
    Claim("scale-down", a=Side("extreme-bs512"), b=Side("scale-down"), direction=">",
          text="the 100K model is far worse",
          section="Experiment: Scale DOWN",
          log_figure="100K params 8.3% vs 800K 71.4%",
          notes={"cpu-quick": "scale-down halves width, depth and heads as the log did (about 8x fewer parameters), from cpu-quick's ~113K rather than 800K; batch 8 at cpu-quick (the log's 512, kept in ratio)"}),
    Claim("test-time-iterations", a=Side("baseline", iterations_x=2), b=B, direction="≤", margin=1.0,
          text="more iterations at test time do not help",
          section="Experiment: Hidden State Recurrence (failure analysis)",
          log_figure="failed puzzles peak at iteration 4, then get worse"),
    Claim("plateau", a=Side("curriculum-plateau"), b=Side("curriculum-reverse"), direction=">",
          text="a plateau-gated curriculum with LR restarts beats fixed phases",
          section="plateau-aligned-lr-curriculum.md (another task; not in the log)",
          log_figure="not measured on Sudoku",
          beyond_log=True),
    Claim("augment", a=Side("augment"), b=B, direction=">",
          text="symmetry augmentation beats none",
          section="Experiment: MLP-Mixer (TRM's edge: augmentation?)",
          log_figure="not measured: the log never augmented",
          beyond_log=True),
]


def claim_variants(claims: list[Claim] = CLAIMS) -> list[str]:
    """Every variant the claims need, in claim order."""
    return list(dict.fromkeys(s.variant for c in claims for s in (c.a, c.b)))
