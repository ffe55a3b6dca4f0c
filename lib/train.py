"""Train one run: config -> device -> data -> model (fresh or resumed) -> optimiser -> one loop that
evaluates and checkpoints every N steps. Variants plug in through the model and the config.

    python -m lib.cli train --preset cpu-smoke --set train.steps=100 --out outputs/smoke [--resume]
    torchrun --nproc_per_node 2 -m lib.cli train ...   # DDP: global batch = per-rank x ranks x grad_accum

The file runs in the order a run does: the context (device, ranks, logging), the data, the parts (model,
optimiser, EMA, carry), the step, evaluation, checkpoints, and last `train`, whose loop reads top to bottom:
set the lr; draw the step's batch; `train_step`; stop on a non-finite loss; update EMA and curriculum; log;
evaluate; checkpoint.

A resumed run continues bit-for-bit (on CPU): the batch of step s is drawn from
np.random.default_rng([seed, s, stage]) over the stage's pool, and the checkpoint holds the model,
optimiser, EMA, curriculum stage, metric window and torch RNG.
"""
from __future__ import annotations

import contextlib
import dataclasses
import datetime
import json
import logging
import math
import os
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
import torch
import torch.distributed as dist
from torch.nn.parallel import DistributedDataParallel as DDP
from tqdm.auto import tqdm

from lib import data as data_lib
from lib import files
from lib.machine import gpu, memory, watch
from lib.machine.faults import Faults
from lib.sudoku import puzzles
from lib.config import RunConfig, flatten
from lib.curriculum import Curriculum, CurriculumState, batch_indices, batch_rng
from lib.evaluate import at_iteration, evaluate
from lib.model import amp_dtype_for, autocast, blank_accuracy, build_model, count_params, sequence_loss
from lib.optim import EMA, make_optimizer
from lib.provenance import code_identity
from lib.schedule import lr_at

log = logging.getLogger("lib.train")  # not __name__: under `python -m` that is __main__


# --- the run's context: ranks, device, logging ------------------------------------------------------

@dataclass
class Dist:
    rank: int = 0
    world: int = 1
    local_rank: int = 0

    @property
    def main(self) -> bool:
        return self.rank == 0


@dataclass
class Context:
    """What every part of a run needs to know, said once: the config, where it runs, in which precision,
    on which ranks, into which folder."""
    cfg: RunConfig
    device: torch.device
    amp_dtype: torch.dtype | None  # the autocast dtype, None for plain fp32
    ranks: Dist
    files: files.RunFiles
    progress: bool  # a progress bar on this process
    plan: memory.Plan | None = None  # CUDA, train.grad_accum=0: micro-batches that fit the card

    @property
    def grad_accum(self) -> int:
        """The step's micro-batches: the memory plan's, or train.grad_accum (auto, 0, is 1)."""
        return self.plan.grad_accum if self.plan else self.cfg.train.grad_accum or 1

    @property
    def per_rank(self) -> int:
        """The micro-batch size on each rank."""
        cfg, ranks = self.cfg, self.ranks
        if (cfg.train.carry or cfg.model.sharing == "nested") and ranks.world > 1:
            raise ValueError("train.carry and model.sharing=nested step outside DDP's forward; run them without torchrun")
        per_rank, rem = divmod(cfg.train.batch_size, ranks.world * self.grad_accum)
        if rem:
            raise ValueError(f"train.batch_size ({cfg.train.batch_size}) must be divisible by ranks ({ranks.world}) "
                             f"x train.grad_accum ({self.grad_accum})")
        return per_rank


def setup_distributed(cfg: RunConfig) -> Dist:
    """Join the process group when launched by torchrun (WORLD_SIZE > 1)."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world <= 1:
        return Dist()
    if not dist.is_initialized():
        backend = "nccl" if _wants_cuda(cfg) else "gloo"
        dist.init_process_group(backend, timeout=datetime.timedelta(hours=2))  # rank 0 evaluates alone
    return Dist(dist.get_rank(), dist.get_world_size(), int(os.environ.get("LOCAL_RANK", "0")))


def _wants_cuda(cfg: RunConfig) -> bool:
    return cfg.train.device.startswith("cuda") or (cfg.train.device == "auto" and torch.cuda.is_available())


def setup_device(cfg: RunConfig, ranks: Dist) -> tuple[torch.device, torch.dtype | None]:
    """(device, autocast dtype or None for plain fp32); TF32 matmuls on CUDA, as the scripts'
    set_float32_matmul_precision('high'), except at train.dtype=float32: the early scripts that set neither
    autocast nor TF32 ran plain IEEE fp32. device=auto warns if torch cannot use an NVIDIA GPU."""
    if cfg.train.threads > 0:
        torch.set_num_threads(cfg.train.threads)
    if _wants_cuda(cfg):
        device = cuda_device(cfg.train.device, ranks)
        torch.cuda.set_device(device)
        gpu.set_tf32(cfg.train.dtype != "float32")
    else:
        device = torch.device(cfg.train.device.replace("auto", "cpu"))
        if cfg.train.device == "auto":
            gpu.warn_if_unusable()
    return device, amp_dtype_for(cfg.train.dtype, device)


def cuda_device(setting: str, ranks: Dist) -> torch.device:
    """The one CUDA device of this process, always with its index: a torchrun rank's cuda:LOCAL_RANK, the
    named cuda:N, or for "auto" and "cuda" the current device (cuda:0 unless CUDA_VISIBLE_DEVICES says more)."""
    if not torch.cuda.is_available():
        raise RuntimeError(f"train.device={setting!r} but CUDA is not available")
    if ranks.world > 1:
        index = ranks.local_rank
    elif setting in ("auto", "cuda"):
        index = torch.cuda.current_device()
    else:
        index = torch.device(setting).index or 0
    if index >= torch.cuda.device_count():
        raise RuntimeError(f"train.device={setting!r}: this machine has {torch.cuda.device_count()} CUDA device(s)")
    return torch.device("cuda", index)


def make_context(cfg: RunConfig, out_dir, progress: bool) -> Context:
    ranks = setup_distributed(cfg)
    device, amp_dtype = setup_device(cfg, ranks)
    return Context(cfg, device, amp_dtype, ranks, files.RunFiles(out_dir), progress and ranks.main)


@contextlib.contextmanager
def file_logging(path: Path | None):
    """Send the lib.* loggers to out_dir/train.log (not the console) for the length of a run."""
    lib_log = logging.getLogger("lib")
    old = lib_log.level, lib_log.propagate
    handler = None
    if path is not None:
        handler = logging.FileHandler(path)
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
        lib_log.addHandler(handler)
        lib_log.setLevel(logging.INFO)
        lib_log.propagate = False
    try:
        yield
    finally:
        if handler is not None:
            lib_log.removeHandler(handler)
            handler.close()
        lib_log.setLevel(old[0])
        lib_log.propagate = old[1]


# --- data ----------------------------------------------------------------------------------------

class Batcher:
    """The global batch of a step as LongTensors on the device, with one random validity-preserving
    symmetry per sample. All randomness comes from the step's numpy generator, so batches are the
    same on every device and every rank.

    Symmetries are vectorised: a bank of cell permutations from puzzles.random_symmetry, two
    composed per sample (the symmetries form a group, so compositions are symmetries too: 512^2
    combinations), and a fresh digit relabelling per sample; applying them is torch.gather on the
    device, which keeps a 4096-puzzle batch at ~1 ms of host work on a GPU."""

    def __init__(self, puzzles_flat: np.ndarray, answers_flat: np.ndarray, n: int, augment: bool,
                 seed: int, device="cpu", bank_size: int = 512):
        self.n, self.augment, self.device = n, augment, torch.device(device)
        self.puzzles = torch.from_numpy(puzzles_flat).to(self.device)  # uint8: 2 x 81 bytes a 9x9 puzzle
        self.answers = torch.from_numpy(answers_flat).to(self.device)
        rng = np.random.default_rng([seed, 0x5EED])
        bank = [puzzles.random_symmetry(n, rng)[0] for _ in range(bank_size if augment else 0)]
        self.bank = torch.from_numpy(np.stack(bank)).to(self.device) if augment else None

    def _tensor(self, a: np.ndarray) -> torch.Tensor:
        return torch.from_numpy(a).to(self.device, non_blocking=True)

    def __call__(self, pool: np.ndarray, rng: np.random.Generator, size: int) -> tuple[torch.Tensor, torch.Tensor]:
        idx = self._tensor(batch_indices(pool, rng, size))
        p, a = self.puzzles[idx].long(), self.answers[idx].long()
        if not self.augment:
            return p, a
        pick = self._tensor(rng.integers(0, len(self.bank), size=(2, size)))
        cells = self.bank[pick[0]].gather(1, self.bank[pick[1]])  # apply bank[pick0], then bank[pick1]
        digits = np.zeros((size, self.n + 1), np.int64)
        digits[:, 1:] = np.argsort(rng.random((size, self.n)), axis=1) + 1
        digits = self._tensor(digits)
        return digits.gather(1, p.gather(1, cells)), digits.gather(1, a.gather(1, cells))


@dataclass
class RunData:
    curriculum: Curriculum  # stage pools over the train split
    batcher: Batcher
    tests: dict  # "test" -> the test split; each of eval.sources -> its sample


def prepare_data(ctx: Context) -> RunData:
    """The run's data. Rank 0 builds (and caches) the splits first, so other ranks only read the cache."""
    cfg, ranks = ctx.cfg, ctx.ranks
    if ranks.world > 1 and not ranks.main:
        dist.barrier()
    splits = data_lib.load_splits(cfg.data, progress=ctx.progress)
    if ranks.world > 1 and ranks.main:
        dist.barrier()
    train_puzzles, train_answers = data_lib.to_arrays(splits.train)
    curriculum = Curriculum(cfg, np.asarray(splits.train[cfg.data.bucket_by]))
    for s in range(curriculum.n_stages):
        log.info("curriculum %s: %s", cfg.curriculum.kind, curriculum.describe(s))
    batcher = Batcher(train_puzzles, train_answers, cfg.data.grid_size, cfg.data.augment, cfg.train.seed, ctx.device)
    tests = {"test": data_lib.eval_subset(splits.test, cfg.eval.max_puzzles)}
    for spec in cfg.eval.sources:  # loaded now, so a bad source fails before training, not after
        tests[spec] = data_lib.load_eval_source(spec, cfg.data, ctx.progress)
    log.info("data: %d train puzzles, test sets: %s", len(train_puzzles),
             ", ".join(f"{name} {len(t)}" for name, t in tests.items()))
    return RunData(curriculum, batcher, tests)


# --- the parts: model, optimiser (lib/optim.py), EMA, carry ---------------------------------------

class Carry:
    """Batch slots that keep an unsolved puzzle, and the model state it ended the step in, for the
    next step (the log's "Carry Hidden State Across Batches", after nano-trm); a slot whose puzzle
    was solved takes the step's fresh puzzle. The carried state is detached: gradients stay inside
    a step."""

    def __init__(self):
        self.puzzles = self.answers = self.state = None

    def fill(self, fresh_p: torch.Tensor, fresh_a: torch.Tensor):
        """(puzzles, answers, (carried rows, their state)) of this step's slots, for model.rollout."""
        if self.state is None:
            return fresh_p, fresh_a, None
        # a slot is solved when its blanks are right, as exp_carry.py's check_solved (a blanks-trained model
        # rarely reproduces the givens, so counting them would keep every slot forever)
        right = (self.state["preds"].argmax(-1) + 1 == self.answers) | (self.puzzles > 0)
        keep = ~right.all(1)  # unsolved slots stay
        p = torch.where(keep[:, None], self.puzzles, fresh_p)
        a = torch.where(keep[:, None], self.answers, fresh_a)
        return p, a, (keep, self.state)

    def keep(self, p: torch.Tensor, a: torch.Tensor, state: dict) -> None:
        self.puzzles, self.answers = p, a
        self.state = {k: v.detach() for k, v in state.items()}

    def state_dict(self) -> dict | None:
        return None if self.state is None else {"puzzles": self.puzzles, "answers": self.answers, "state": self.state}

    def load_state_dict(self, d: dict | None) -> None:
        if d is not None:
            self.puzzles, self.answers, self.state = d["puzzles"], d["answers"], d["state"]


@dataclass
class Parts:
    model: torch.nn.Module  # the plain model: checkpoints and evaluation use it
    optimizer: object
    ema: EMA | None
    carry: Carry | None
    step_model: torch.nn.Module  # what the step calls: the model, DDP-wrapped on several ranks
    steps: dict  # step_functions(ctx): the step's forward and loss, compiled when the run compiles

    @property
    def eval_model(self) -> torch.nn.Module:
        return self.ema.model if self.ema else self.model


def build_parts(ctx: Context) -> Parts:
    """The model (seeded by train.seed), its optimiser, EMA and carry, and the module the step calls."""
    cfg, device = ctx.cfg, ctx.device
    torch.manual_seed(cfg.train.seed)
    model = build_model(memory.model_config(ctx), cfg.data.grid_size).to(device)
    ema = EMA(model, cfg.optim.ema_decay) if cfg.optim.ema_decay > 0 else None
    optimizer = make_optimizer(model, cfg, device)
    step_model = DDP(model, device_ids=[device.index] if device.type == "cuda" else None) if ctx.ranks.world > 1 \
        else model
    return Parts(model, optimizer, ema, Carry() if cfg.train.carry else None, step_model, step_functions(ctx))


# --- one optimiser step ----------------------------------------------------------------------------

def set_lr(optimizer, lr: float, peak: float) -> float:
    """Every group at the schedule's lr; a group with a peak of its own (Muon's) at the same share of it."""
    for group in optimizer.param_groups:
        group["lr"] = lr * group["peak_lr"] / peak if "peak_lr" in group else lr
    return lr


def micro_batches(p: torch.Tensor, a: torch.Tensor, ctx: Context):
    """This rank's share of the global batch, split into grad_accum micro-batches: (puzzles, answers)."""
    per_rank, accum, rank = ctx.per_rank, ctx.grad_accum, ctx.ranks.rank
    mine = slice(rank * per_rank * accum, (rank + 1) * per_rank * accum)
    return p[mine].split(per_rank), a[mine].split(per_rank)


@dataclass
class StepResult:
    loss: float  # mean loss over the step's micro-batches (and ranks)
    cell_acc: float  # final-iteration blank-cell accuracy, likewise
    end_state: dict | None  # train.carry: the final model state of the step's (single) micro-batch


def compile_mode(ctx: Context) -> str | None:
    """The torch.compile mode of the run's step, or None for eager: train.compile=auto compiles on CUDA,
    as every script of the log did (torch.compile(model)); the CPU runs eager, where compiling was slower."""
    mode = ctx.cfg.train.compile
    if mode == "auto":
        return "default" if ctx.device.type == "cuda" else None
    return None if mode == "off" else mode


def _compile(fn, mode: str):
    # one place that compiles, so a test can count what gets compiled (and when it recompiles)
    return torch.compile(fn, mode=None if mode == "default" else mode, dynamic=False)


def step_functions(ctx: Context) -> dict:
    """The training step's forward and loss, compiled when the run compiles: the whole rollout (the carried
    start included) and the loss, whose backward the compiled graph also covers; for nested sharing, one
    supervision step with its loss. Checkpoints keep the plain model's parameter names."""
    cfg, device, amp = ctx.cfg, ctx.device, ctx.amp_dtype
    one_step = dataclasses.replace(cfg.model, loss="all")  # a supervision step's loss is its own iteration's

    def forward_loss(model, x, y, start):
        with autocast(device, amp):  # forward only: backward runs outside autocast
            out = model(x, carried=start)
            return sequence_loss(out, y, x, cfg.model), out

    def supervision_step(model, state, first: bool, y, x):
        # a nested step depends on its index only through i == 0 (positions in the first step only)
        with autocast(device, amp):
            state, logits = model.step(state, 0 if first else 1)
            return state, logits, sequence_loss(logits[None], y, x, one_step)

    mode = compile_mode(ctx)
    if mode is None:
        return {"forward_loss": forward_loss, "supervision_step": supervision_step}
    # each run its own compile budget: dynamo recompiles these for every new config, and past its
    # recompile limit (8) a process's next run would go on eager without a word
    torch._dynamo.reset()
    return {"forward_loss": _compile(forward_loss, mode), "supervision_step": _compile(supervision_step, mode)}


def train_step(ctx: Context, parts: Parts, xs, ys, start: tuple | None = None) -> StepResult:
    """One optimiser step over the step's micro-batches. SAM calls the closure twice and returns the first
    call's figures."""
    cfg, device, model, optimizer = ctx.cfg, ctx.device, parts.step_model, parts.optimizer
    params = [p for g in optimizer.param_groups for p in g["params"]]

    def closure():
        optimizer.zero_grad(set_to_none=True)
        total, acc, end = torch.zeros((), device=device), torch.zeros((), device=device), None
        for j, (x, y) in enumerate(zip(xs, ys)):
            sync = j == len(xs) - 1 or not isinstance(model, DDP)  # all-reduce once, on the last micro-batch
            with (contextlib.nullcontext() if sync else model.no_sync()):
                if cfg.model.sharing == "nested":
                    loss, logits = backward_per_supervision_step(model, x, y, ctx, len(xs), parts.steps)
                else:
                    loss, out = parts.steps["forward_loss"](model, x, y, start)
                    loss = loss / len(xs)
                    loss.backward()
                    logits, end = out.logits, out.state
            total += loss.detach()
            with torch.no_grad():
                acc += blank_accuracy(logits[-1], y, x).mean() / len(xs)
        if cfg.optim.grad_clip > 0:
            torch.nn.utils.clip_grad_norm_(params, cfg.optim.grad_clip)
        return torch.stack([total, acc]), end if cfg.train.carry else None

    stats, end = optimizer.step(closure)
    if ctx.ranks.world > 1:
        dist.all_reduce(stats)
        stats /= ctx.ranks.world
    loss, acc = stats.tolist()
    return StepResult(loss, acc, end)


def backward_per_supervision_step(model, x, y, ctx: Context, n_micro: int, steps: dict | None = None):
    """TRM's deep supervision for sharing=nested: its state is detached between supervision steps
    (iterations), so each step's graph is independent and is backpropagated as soon as its loss is known.
    The gradient is the one of the loss over all iterations, but memory holds one step's activations
    instead of all of them, which is what lets the log's batch 4096 fit (benchmarks/bench_memory.py).
    Returns (loss, logits [T, B, C, N] detached)."""
    cfg, device = ctx.cfg, ctx.device
    step = (steps or step_functions(ctx))["supervision_step"]
    T, total, outs = cfg.model.iterations, torch.zeros((), device=device), []
    with autocast(device, ctx.amp_dtype):
        state = model.init_state(x)
    for i in range(T):
        state, logits, loss = step(model, state, i == 0, y, x)
        supervised = cfg.model.loss == "all" or i == T - 1
        loss = loss / (T if cfg.model.loss == "all" else 1) / n_micro
        if supervised:
            loss.backward(retain_graph=True)  # retained: the puzzle's encoding, which later steps reuse
            total += loss.detach()
        state = {k: v if k == "h0" else v.detach() for k, v in state.items()}
        outs.append(logits.detach())
    return total, torch.stack(outs)


# --- evaluation during training ------------------------------------------------------------------

@dataclass
class EvalResult:
    solved: dict  # bucket -> solved fraction at the trained iteration count
    cell_acc: dict  # bucket -> blank-cell accuracy at the trained count
    by_iterations: dict  # str(count) -> {bucket: solved}
    per_puzzle: pd.DataFrame  # lib.evaluate.evaluate's per-puzzle frame, tagged with the trained count


def eval_counts(cfg: RunConfig, final: bool = True) -> list[int]:
    """The counts a run reports: the trained one and eval.iterations; the evaluations during training stop at
    2x the trained count (a rollout to 1024 iterations is for the end)."""
    counts = sorted(set(cfg.eval.iterations) | {cfg.model.iterations})  # the trained count is always reported
    return counts if final else [c for c in counts if c <= 2 * cfg.model.iterations]


def run_eval(ctx: Context, model, test, metrics: MetricsWriter, step: int, final: bool = True) -> EvalResult:
    """Evaluate once to the largest count (lib.evaluate.scored_counts keeps every count to 2x the trained one
    and the powers of two beyond); log solved and cell_acc at every reported count."""
    cfg = ctx.cfg
    trained = cfg.model.iterations
    counts = eval_counts(cfg, final)
    curves, per_puzzle = evaluate(model, test, counts, cfg.eval.batch_size, ctx.device, amp_dtype=ctx.amp_dtype,
                                  trained=trained)
    for k in counts:
        for metric in ("solved", "cell_acc"):
            for bucket, value in at_iteration(curves, k, metric).items():
                metrics.write(step, "test", metric, value, bucket, iterations=k)
    per_puzzle["trained_iterations"] = trained
    return EvalResult(at_iteration(curves, trained), at_iteration(curves, trained, "cell_acc"),
                      {str(k): at_iteration(curves, k) for k in counts}, per_puzzle)


def _per_puzzle(ctx: Context, model, test) -> pd.DataFrame:
    _, per = evaluate(model, test, eval_counts(ctx.cfg), ctx.cfg.eval.batch_size, ctx.device,
                      amp_dtype=ctx.amp_dtype, trained=ctx.cfg.model.iterations)
    return per.assign(trained_iterations=ctx.cfg.model.iterations)


def write_eval(ctx: Context, result: EvalResult, parts: Parts, tests: dict, metrics: MetricsWriter, step: int) -> None:
    """eval.parquet of the final evaluation, and eval-sources.parquet for eval.sources. An EMA run
    also evaluates its live weights, so the two can be compared puzzle by puzzle, as the log did
    ("EMA on Cosine LR (Retest)")."""
    cfg, out = ctx.cfg, ctx.files
    frame = result.per_puzzle
    if parts.ema is not None:
        live = _per_puzzle(ctx, parts.model, tests["test"])
        frame = pd.concat([frame.assign(weights="ema"), live.assign(weights="live")], ignore_index=True)
    files.atomic_write(out.evals, lambda tmp: frame.to_parquet(tmp, index=False))
    extra = []
    for spec, test in list(tests.items())[1:]:
        per = _per_puzzle(ctx, parts.eval_model, test).assign(source=spec)
        at_trained = per[per["iteration"] == cfg.model.iterations]
        for bucket, group in [*at_trained.groupby("bucket"), ("all", at_trained)]:
            metrics.write(step, f"source:{spec}", "solved", group["solved"].mean(), bucket, cfg.model.iterations)
        extra.append(per)
    if extra:
        files.atomic_write(out.eval_sources, lambda tmp: pd.concat(extra, ignore_index=True).to_parquet(tmp, index=False))


# --- run state, checkpoints, metrics ---------------------------------------------------------------

def _empty_window() -> dict:
    return {"loss": 0.0, "cell_acc": 0.0, "n": 0, "puzzles": 0, "seconds": 0.0}


@dataclass
class TrainState:
    """Everything besides tensors that a resume needs."""
    step: int = 0  # completed optimiser steps
    curriculum: CurriculumState = field(default_factory=CurriculumState)
    best_solved: float = -1.0  # overall solved at the trained iteration count
    peak: dict = field(default_factory=dict)  # bucket -> best solved fraction so far
    last_eval: dict = field(default_factory=dict)  # solved / cell_acc / by_iterations of the latest eval
    window: dict = field(default_factory=_empty_window)  # training figures since the last log row
    wall_seconds: float = 0.0  # of earlier segments of a resumed run

    def to_dict(self) -> dict:
        d = asdict(self)
        d["curriculum"] = self.curriculum.to_dict()
        return d

    @classmethod
    def from_dict(cls, d: dict) -> "TrainState":
        d = dict(d)
        d["curriculum"] = CurriculumState.from_dict(d["curriculum"])
        return cls(**d)

    def add(self, loss: float, acc: float, puzzles: int, seconds: float) -> None:
        w = self.window
        w["loss"], w["cell_acc"], w["n"] = w["loss"] + loss, w["cell_acc"] + acc, w["n"] + 1
        w["puzzles"], w["seconds"] = w["puzzles"] + puzzles, w["seconds"] + seconds

    def take_window(self) -> dict:
        """Mean loss / cell_acc and throughput since the last call, and a fresh window."""
        w, self.window = self.window, _empty_window()
        return {"loss": w["loss"] / w["n"], "cell_acc": w["cell_acc"] / w["n"],
                "puzzles_per_second": w["puzzles"] / max(w["seconds"], 1e-9)}

    def record_eval(self, result: EvalResult) -> bool:
        """Fold an evaluation at this step into the state; True when it is the best so far."""
        self.last_eval = {"step": self.step, "solved": result.solved, "cell_acc": result.cell_acc,
                          "by_iterations": result.by_iterations}
        self.peak = {b: max(v, self.peak.get(b, -1.0)) for b, v in result.solved.items()}
        log.info("eval step %d: solved %s", self.step, {b: f"{100 * v:.1f}%" for b, v in result.solved.items()})
        best = result.solved["all"] > self.best_solved
        if best:
            self.best_solved = result.solved["all"]
        return best


def parts_device(parts: Parts) -> torch.device:
    return next(parts.model.parameters()).device


def save_checkpoint(path: Path, parts: Parts, state: TrainState, cfg: RunConfig) -> None:
    """Atomically: a kill or a full disk mid-save leaves the previous checkpoint at `path` loadable."""
    ckpt = {
        "model": parts.model.state_dict(),
        "optimizer": parts.optimizer.state_dict(),
        "ema": parts.ema.model.state_dict() if parts.ema else None,
        "carry": parts.carry.state_dict() if parts.carry else None,
        "state": state.to_dict(),
        "config": cfg.to_dict(),
        "code": code_identity(),
        "torch_rng": torch.get_rng_state(),
        # the run's own device only: a checkpoint from an 8-GPU machine must load on a 1-GPU one
        "cuda_rng": [torch.cuda.get_rng_state(parts_device(parts))] if parts_device(parts).type == "cuda" else [],
    }
    files.atomic_write(path, lambda tmp: torch.save(ckpt, tmp))


def restore(path: Path, parts: Parts, cfg: RunConfig, device) -> TrainState:
    ckpt = torch.load(path, map_location=device, weights_only=True)
    mine = flatten(cfg.to_dict())
    changed = {k for k, v in flatten(ckpt["config"]).items() if mine.get(k) != v}
    if changed:
        log.warning("resuming with a config that differs from the checkpoint's in: %s", ", ".join(sorted(changed)))
    parts.model.load_state_dict(ckpt["model"])
    parts.optimizer.load_state_dict(ckpt["optimizer"])
    if parts.ema is not None:
        parts.ema.model.load_state_dict(ckpt["ema"] if ckpt["ema"] is not None else ckpt["model"])
    if parts.carry is not None:
        parts.carry.load_state_dict(ckpt["carry"])
    restore_rng(ckpt, device)
    return TrainState.from_dict(ckpt["state"])


def restore_rng(ckpt: dict, device) -> None:
    """The CPU generator, and the run's CUDA device's: a checkpoint keeps one CUDA state, the run's. (Older ones
    kept every device's, of which the run's own device's is the one that matters.)"""
    torch.set_rng_state(ckpt["torch_rng"].cpu())
    device = torch.device(device)
    states = ckpt.get("cuda_rng") or []
    if states and device.type == "cuda":
        torch.cuda.set_rng_state(states[min(device.index or 0, len(states) - 1)].cpu(), device)


def start_state(ctx: Context, resume: bool, curriculum: Curriculum, parts: Parts) -> tuple[TrainState, bool]:
    """The resumed state from checkpoints/last.pt, or a fresh one (clearing an older run's outputs)."""
    out = ctx.files
    if resume and out.last.exists():
        state = restore(out.last, parts, ctx.cfg, ctx.device)
        log.info("resumed from %s at step %d (stage %d)", files.relative(out.last), state.step, state.curriculum.stage)
        return state, True
    if resume:
        log.info("resume requested but %s does not exist; starting fresh", files.relative(out.last))
    if ctx.ranks.main:  # a fresh start must not leave an older run's results to be mistaken for its own
        for stale in [out.last, out.best, out.evals, out.summary]:
            stale.unlink(missing_ok=True)
    return TrainState(curriculum=curriculum.start()), False


class MetricsWriter:
    """metrics.jsonl, one tidy row per line, flushed as written. A resume first drops rows past
    the checkpoint's step, so a run killed between checkpoints leaves no duplicates. `board`: a
    lib.machine.watch.Board that gets every row too (train.tensorboard)."""

    def __init__(self, path: Path, seed: int, keep_until: int | None, enabled: bool, board=None):
        self.seed, self.file, self.board = seed, None, board
        if not enabled:
            return
        kept = []
        if keep_until is not None and path.exists():
            for line in path.read_text().splitlines():
                try:
                    if json.loads(line)["step"] <= keep_until:
                        kept.append(line + "\n")
                except (json.JSONDecodeError, KeyError, TypeError):
                    continue  # torn last line of a killed run
        files.write_text(path, "".join(kept))
        self.file = open(path, "a")

    def write(self, step: int, split: str, metric: str, value: float, bucket: str = "all", iterations=None):
        if self.file is None:
            return
        row = {"step": step, "split": split, "bucket": bucket, "metric": metric, "value": float(value),
               "seed": self.seed, "iterations": iterations}
        self.file.write(json.dumps(row) + "\n")
        self.file.flush()
        if self.board is not None:
            self.board.add(row)

    def close(self):
        if self.file is not None:
            self.file.close()
        if self.board is not None:
            self.board.close()


def log_training(metrics: MetricsWriter, state: TrainState, lr: float, stage: int, bar) -> None:
    values = {**state.take_window(), "lr": lr, "stage": stage}
    for metric in ("loss", "lr", "cell_acc", "puzzles_per_second", "stage"):
        metrics.write(state.step, "train", metric, values[metric])
    log.info("step %d: %s", state.step, " ".join(f"{k}={values[k]:.4g}" for k in
                                                  ("loss", "lr", "cell_acc", "puzzles_per_second", "stage")))
    solved = state.last_eval.get("solved", {}).get("all")
    bar.set_postfix(loss=f"{values['loss']:.4f}", lr=f"{lr:.2e}", solved="-" if solved is None else f"{100 * solved:.1f}%")


def report_divergence(ctx: Context, loss: float, step: int, last_good: int | None) -> None:
    last = ctx.files.last
    where = f"{files.relative(last)} (step {last_good})" if last_good is not None else "none (no checkpoint written yet)"
    message = f"diverged: non-finite loss ({loss}) at step {step}; stopping. Last good checkpoint: {where}"
    log.error(message)
    if ctx.progress:
        tqdm.write(message)


def pct(d: dict) -> dict:
    return {k: round(100 * v, 4) for k, v in d.items()}


def make_summary(ctx: Context, state: TrainState, status: str, params: int, wall: float) -> dict:
    cfg, last = ctx.cfg, state.last_eval
    return {
        "preset": cfg.preset, "variant": cfg.variant, "grid_size": cfg.data.grid_size,
        "steps": state.step, "wall_seconds": round(wall, 2), "params": params, "seed": cfg.train.seed,
        "status": status,
        "final": pct(last.get("solved", {})),
        "peak": pct(state.peak),
        "final_cell_acc": pct(last.get("cell_acc", {})),
        "eval_iterations": {k: pct(v) for k, v in last.get("by_iterations", {}).items()},
        "device": str(ctx.device),
        "code": code_identity(),
        **({"memory_plan": ctx.plan.record()} if ctx.plan else {}),
    }


# --- the run -------------------------------------------------------------------------------------

def train(cfg: RunConfig, out_dir, resume: bool = False, progress: bool = True) -> dict:
    """Train `cfg` into `out_dir` and return the summary (written to summary.json).
    resume=True continues from checkpoints/last.pt when there is one. Non-zero DDP ranks return {}."""
    ctx = make_context(cfg, out_dir, progress)
    if ctx.ranks.main:
        ctx.files.checkpoints.mkdir(parents=True, exist_ok=True)
    with file_logging(ctx.files.train_log if ctx.ranks.main else None):
        try:
            return _run(ctx, resume, Faults.from_env())  # the fault tests' hook; inert otherwise
        except Exception:
            log.exception("training failed")
            raise


def _run(ctx: Context, resume: bool, hooks: Faults) -> dict:
    cfg, out, main = ctx.cfg, ctx.files, ctx.ranks.main
    t_segment = time.time()
    log.info("config preset=%s variant=%s out=%s device=%s dtype=%s ranks=%d", cfg.preset, cfg.variant,
             files.relative(out.root), ctx.device, ctx.amp_dtype or torch.float32, ctx.ranks.world)
    ctx.per_rank  # a batch the ranks cannot split fails here, before any work
    if main:
        files.write_json(out.config, {**cfg.to_dict(), "code": code_identity()})
    run_data = prepare_data(ctx)
    ctx = memory.fit(ctx)  # CUDA, train.grad_accum=0: the micro-batches that fit the card, printed
    if main and ctx.plan:
        record = {**cfg.to_dict(), "code": code_identity(), "memory_plan": ctx.plan.record()}
        files.write_json(out.config, record)
    parts = build_parts(ctx)
    params = count_params(parts.model)
    state, resumed = start_state(ctx, resume, run_data.curriculum, parts)
    keep_until = state.step if resumed else None
    board = watch.open_board(out.root, cfg, keep_until) if main else None
    metrics = MetricsWriter(out.metrics, cfg.train.seed, keep_until, main, board)
    log.info("parameters: %d", params)
    if ctx.progress:
        tqdm.write(f"{cfg.preset}/{cfg.variant}: {params:,} parameters on {ctx.device}; "
                   f"logs in {files.relative(out.train_log)}")
    last_good = state.step if resumed else None

    status = "complete"
    bar = tqdm(total=cfg.train.steps, initial=state.step, disable=not ctx.progress, dynamic_ncols=True,
               mininterval=float(os.environ.get("TQDM_MININTERVAL", 2.0)), desc=cfg.variant)
    try:
        while state.step < cfg.train.steps:
            t0 = time.perf_counter()
            step, cur = state.step, state.curriculum
            lr = set_lr(parts.optimizer, lr_at(step, cfg, cur.stage_start, cur.stage), cfg.optim.lr)
            p, a = run_data.batcher(run_data.curriculum.pool(cur), batch_rng(cfg.train.seed, step, cur.stage),
                                    cfg.train.batch_size)
            p, a, start = parts.carry.fill(p, a) if parts.carry else (p, a, None)
            result = train_step(ctx, parts, *micro_batches(p, a, ctx), start)
            loss = hooks.loss(step, result.loss)
            if not math.isfinite(loss):
                status = "diverged"
                report_divergence(ctx, loss, step, last_good)
                break
            if parts.carry:
                parts.carry.keep(p, a, result.end_state)
            if parts.ema is not None:
                parts.ema.update(parts.model)
            state.curriculum = run_data.curriculum.update(cur, step, loss)
            state.step += 1
            state.add(loss, result.cell_acc, cfg.train.batch_size, time.perf_counter() - t0)
            bar.update(1)

            if state.step % cfg.train.log_every == 0:
                log_training(metrics, state, lr, cur.stage, bar)
            final = state.step == cfg.train.steps
            if main and (state.step % cfg.train.eval_every == 0 or final):
                evaluation = run_eval(ctx, parts.eval_model, run_data.tests["test"], metrics, state.step, final)
                if state.record_eval(evaluation):
                    save_checkpoint(out.best, parts, state, cfg)
                if final:
                    write_eval(ctx, evaluation, parts, run_data.tests, metrics, state.step)
            if main and (state.step % cfg.train.checkpoint_every == 0 or final):
                state.wall_seconds += time.time() - t_segment
                t_segment = time.time()
                save_checkpoint(out.last, parts, state, cfg)
                last_good = state.step
            hooks.after_step(state.step)
    except torch.cuda.OutOfMemoryError as error:  # which setting to change; where to resume from
        message = memory.out_of_memory_message(ctx, state.step, last_good)
        raise torch.cuda.OutOfMemoryError(message) from error
    finally:
        bar.close()
        metrics.close()

    if ctx.ranks.world > 1:
        dist.barrier()
    if not main:
        return {}
    summary = make_summary(ctx, state, status, params, state.wall_seconds + time.time() - t_segment)
    files.write_json(out.summary, summary)
    log.info("%s after %d steps: final solved %s", status, state.step, summary["final"])
    return summary
