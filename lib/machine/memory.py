"""Does the training step fit the card? A probe counts the bytes autograd keeps for backward per
sample, and a plan picks the fewest micro-batches (train.grad_accum) that fit, or activation
checkpointing where even a small micro-batch does not. The global batch, and so the recipe, stays.

    python -m lib.cli memory --preset gpu-paper --gpu-memory 80   # an 80 GiB card's plan, on a CPU

A CUDA run with train.grad_accum=0 (auto, as the GPU presets have it) plans before it trains
(`fit`, called by lib.train); an explicit train.grad_accum runs as set. Without a GPU the probe
runs on the CPU, and lib.model's two device-dependent functions keep what their CUDA kernels
would (`cuda_kernels`). The estimate, which must stay under (1 - MARGIN) of the card's free memory:

    peak = fixed + micro-batch x bytes per sample x (1 + TRANSIENT)

The probe runs eager: a compiled step keeps a little less (about 26 MiB a sample at gpu-paper
against the eager 28.4), so the plan errs on the safe side. `fixed` is the weights, their gradients
and AdamW's two moments (4 x the weights' bytes), the probe's constant part (the weights' bf16
copies) and, without a GPU to ask, the training pool that lib.train keeps on the device.
"""
from __future__ import annotations

import contextlib
import dataclasses
import functools
import logging
import warnings
from dataclasses import dataclass

import torch
import torch.nn.functional as F

from lib import files
from lib import model as model_lib
from lib.config import RunConfig
from lib.model import autocast, build_model, sequence_loss

log = logging.getLogger("lib.memory")

GIB = 2**30
MARGIN = 0.10  # of the card kept free: fragmentation, the CUDA context, cuBLAS, the compiler
TRANSIENT = 0.05  # gradients in flight on top of what backward keeps (about 1% on a CPU)
MIN_MICRO_BATCH = 256  # smaller micro-batches leave the card idle: checkpointing instead
PROBE_BATCHES = (1, 2)  # their difference is the per-sample part; the rest is constant
GIVEN_SHARE = 0.3  # the probe's puzzles: about a third of the cells given, as in sudoku-extreme


@dataclass(frozen=True)
class Probe:
    per_sample: float  # bytes kept for backward per sample
    fixed: float  # bytes that do not grow with the batch


@dataclass(frozen=True)
class Plan:
    micro_batch: int  # per rank
    grad_accum: int
    checkpointing: bool
    peak_bytes: float  # estimated
    budget_bytes: float  # what the step may use: (1 - MARGIN) x the card's free memory
    chosen: str  # "auto" (planned) or "as set" (an explicit train.grad_accum)

    @property
    def fits(self) -> bool:
        return self.peak_bytes <= self.budget_bytes

    def describe(self) -> str:
        checkpointing = "on" if self.checkpointing else "off"
        return (f"micro-batch {self.micro_batch}, grad_accum {self.grad_accum}, checkpointing "
                f"{checkpointing}, estimated peak {self.peak_bytes / GIB:.1f} GiB")

    def record(self) -> dict:
        """What config.json and summary.json keep of it."""
        return {"micro_batch": self.micro_batch, "grad_accum": self.grad_accum,
                "checkpointing": self.checkpointing, "chosen": self.chosen,
                "estimated_peak_gib": round(self.peak_bytes / GIB, 2),
                "budget_gib": round(self.budget_bytes / GIB, 2)}


# --- the probe ------------------------------------------------------------------------------

@contextlib.contextmanager
def cuda_kernels():
    """lib.model's dropout and attention keeping on a CPU what their CUDA kernels keep for
    backward: fused dropout a bool mask (the CPU path one in the activations' dtype), flash
    attention q, k, v, its output and log-sum-exp (SDPA's CPU flash kernel keeps the same five; the
    CPU's written-out attention its weights). The values differ from CUDA's; the bytes do not."""
    dropout, attention = model_lib.dropout, model_lib.attention
    model_lib.dropout = lambda x, p, training: \
        torch.native_dropout(x, p, True)[0] if training and p else x
    model_lib.attention = lambda q, k, v, p, training: F.scaled_dot_product_attention(q, k, v)
    try:
        yield
    finally:
        model_lib.dropout, model_lib.attention = dropout, attention


def saved_bytes(model, cfg: RunConfig, batch: int, device, amp_dtype) -> int:
    """Bytes autograd keeps for backward after one forward and loss at `batch`: each storage once,
    the weights themselves not."""
    n = cfg.data.grid_size
    gen = torch.Generator().manual_seed(0)  # its own: the run's random streams stay untouched
    answers = torch.randint(1, n + 1, (batch, n * n), generator=gen)
    puzzles = answers * (torch.rand(batch, n * n, generator=gen) < GIVEN_SHARE)
    x, y = puzzles.to(device), answers.to(device)
    weights = {p.untyped_storage().data_ptr() for p in model.parameters()}
    kept = {}

    def pack(t):
        storage = t.untyped_storage()
        if storage.data_ptr() not in weights:
            kept[storage.data_ptr()] = storage.nbytes()
        return t

    hooks = torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t)
    with hooks, autocast(device, amp_dtype):
        loss = sequence_loss(model(x), y, x, cfg.model)  # alive to the end: no address reused
    total = sum(kept.values())
    del loss
    return total


def measure(cfg: RunConfig, device, amp_dtype, checkpointing: bool,
            like_cuda: bool = True) -> Probe:
    """Per-sample and constant bytes of a training step of `cfg`'s model on `device`, with
    activation checkpointing on or off; on a CPU with like_cuda, as the CUDA kernels keep them."""
    device = torch.device(device)
    model_cfg = dataclasses.replace(cfg.model, activation_checkpointing=checkpointing)
    kernels = cuda_kernels() if like_cuda and device.type == "cpu" else contextlib.nullcontext()
    with torch.random.fork_rng(devices=[device] if device.type == "cuda" else []):
        model = build_model(model_cfg, cfg.data.grid_size).to(device).train()
        with kernels:
            small, large = (saved_bytes(model, cfg, b, device, amp_dtype) for b in PROBE_BATCHES)
    per_sample = (large - small) / (PROBE_BATCHES[1] - PROBE_BATCHES[0])
    constant = small - per_sample * PROBE_BATCHES[0]
    if model_cfg.sharing == "nested":  # lib.train backpropagates one supervision step at a time
        per_sample /= model_cfg.iterations
    if checkpointing:
        per_sample += _checkpoint_inputs(model, cfg, device)
    weights = sum(p.numel() * p.element_size() for p in model.parameters())
    return Probe(per_sample, 4 * weights + constant)


def _checkpoint_inputs(model, cfg: RunConfig, device) -> float:
    """What the hooks do not see under checkpointing, per sample: every iteration's input state,
    kept for its recompute. The recompute itself is `plan`'s to add (`_with_recompute`)."""
    x = torch.zeros(1, cfg.data.grid_size ** 2, dtype=torch.long, device=device)
    with torch.no_grad():
        state = model.init_state(x)
    storages = {t.untyped_storage().data_ptr(): t.untyped_storage().nbytes()
                for t in state.values()}
    return cfg.model.iterations * sum(storages.values())


# --- the plan -------------------------------------------------------------------------------

def peak(probe: Probe, micro_batch: int, extra: float = 0.0) -> float:
    return probe.fixed + extra + micro_batch * probe.per_sample * (1 + TRANSIENT)


def plan(cfg: RunConfig, batch: int, budget: float, probe_fn,
         extra: float = 0.0) -> tuple[Plan, list[Plan]]:
    """The plan for a per-rank batch within `budget` bytes, and every plan tried on the way;
    probe_fn(checkpointing) -> Probe. An explicit train.grad_accum is planned as set. Auto takes
    the fewest micro-batches that fit with at least MIN_MICRO_BATCH samples each (train.carry: one
    micro-batch), then the same with activation checkpointing; if none fits, the smallest step."""
    measured = functools.lru_cache(maxsize=None)(probe_fn)

    def probe(ckpt: bool) -> Probe:
        if not ckpt:
            return measured(False)
        return _with_recompute(measured(True), measured(False), cfg.model.iterations)

    def candidate(accum: int, ckpt: bool, chosen: str) -> Plan:
        micro = batch // accum
        return Plan(micro, accum, ckpt, peak(probe(ckpt), micro, extra), budget, chosen)

    checkpointing = cfg.model.activation_checkpointing
    if cfg.train.grad_accum:
        explicit = candidate(cfg.train.grad_accum, checkpointing, "as set")
        return explicit, [explicit]
    smallest = min(MIN_MICRO_BATCH, batch)
    counts = [a for a in range(1, batch + 1) if batch % a == 0 and batch // a >= smallest]
    if cfg.train.carry:  # one carried state per batch slot: no accumulation
        counts = [1]
    tried = []
    for ckpt in dict.fromkeys([checkpointing, True]):
        for accum in counts:
            tried.append(candidate(accum, ckpt, "auto"))
            if tried[-1].fits:
                return tried[-1], tried
    return tried[-1], tried


def _with_recompute(checkpointed: Probe, plain: Probe, iterations: int) -> Probe:
    """Backward recomputes one iteration at a time: that iteration's bytes come back."""
    return Probe(checkpointed.per_sample + plain.per_sample / iterations, checkpointed.fixed)


def pool_bytes(cfg: RunConfig) -> float:
    """The training pool lib.train keeps on the device: puzzles and answers, a byte a cell."""
    return 2.0 * cfg.data.train_size * cfg.data.grid_size ** 2


def plan_offline(cfg: RunConfig, gpu_memory_gib: float,
                 ranks: int = 1) -> tuple[Plan, list[Plan], Probe]:
    """The plan for a card of `gpu_memory_gib`, probed on this CPU in the dtype the run would
    have on CUDA; and the probe without checkpointing."""
    from lib.model import amp_dtype_for
    if gpu_memory_gib <= 0:
        raise ValueError(f"--gpu-memory must be positive, got {gpu_memory_gib}")
    if ranks < 1 or cfg.train.batch_size % ranks:
        raise ValueError(f"train.batch_size ({cfg.train.batch_size}) does not split over "
                         f"{ranks} rank(s)")
    amp = amp_dtype_for(cfg.train.dtype, torch.device("cuda", 0))
    probes = {}

    def probe_fn(checkpointing: bool) -> Probe:
        probes[checkpointing] = measure(cfg, "cpu", amp, checkpointing)
        return probes[checkpointing]

    budget = (1 - MARGIN) * gpu_memory_gib * GIB
    chosen, tried = plan(cfg, cfg.train.batch_size // ranks, budget, probe_fn, pool_bytes(cfg))
    return chosen, tried, probes[False]


# --- a CUDA run ---------------------------------------------------------------------------------

def fit(ctx):
    """The run's context with the plan that fits the card (ctx.plan), on CUDA with
    train.grad_accum=0; otherwise ctx as it is (an explicit grad_accum runs as set, and auto is 1
    on a CPU). The plan is printed and logged."""
    cfg = ctx.cfg
    if cfg.train.grad_accum or ctx.device.type != "cuda":
        return ctx
    torch.cuda.empty_cache()
    free, _ = torch.cuda.mem_get_info(ctx.device)
    batch = cfg.train.batch_size // ctx.ranks.world
    chosen, _ = plan(cfg, batch, (1 - MARGIN) * free,
                     lambda ckpt: measure(cfg, ctx.device, ctx.amp_dtype, ckpt))
    torch.cuda.empty_cache()  # the probe's model and tensors
    message = (f"memory plan: {chosen.describe()} of {chosen.budget_bytes / GIB:.1f} GiB usable "
               f"({free / GIB:.1f} GiB free); set train.grad_accum to choose")
    log.info(message)
    if ctx.ranks.main:
        print(message, flush=True)
    if not chosen.fits:
        warnings.warn(f"{message}: even this does not fit; lower train.batch_size",
                      RuntimeWarning, stacklevel=2)
    return dataclasses.replace(ctx, plan=chosen)


def model_config(ctx):
    """ctx.cfg.model, with activation checkpointing where the plan turned it on."""
    if ctx.plan is None or ctx.plan.checkpointing == ctx.cfg.model.activation_checkpointing:
        return ctx.cfg.model
    return dataclasses.replace(ctx.cfg.model, activation_checkpointing=ctx.plan.checkpointing)


def out_of_memory_message(ctx, step: int, last_good: int | None) -> str:
    """What an out-of-memory error that still happens says: the setting to change, and where the
    run can resume from."""
    accum = ctx.grad_accum
    where = "none yet" if last_good is None else \
        f"{files.relative(ctx.files.last)} (step {last_good}); continue it with --resume"
    return (f"out of memory at step {step} with train.grad_accum={accum} (micro-batch "
            f"{ctx.per_rank}): set train.grad_accum={2 * accum} or "
            f"model.activation_checkpointing=true (or lower train.batch_size); "
            f"`python -m lib.cli memory` shows the plan. Last checkpoint: {where}")
