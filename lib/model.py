"""The recurrent-depth Sudoku model: one file, the recursion written out.

The recipe is the log's exp_cosine_no_sam.py ("no x after init" + recur_add + row/col/box positions):

    h = encoder(onehot(puzzle))             # the puzzle enters once
    preds = 0
    for i in range(T):
        h = h + pred_proj(preds) + pos      # pos: learned row + column + box embeddings
        h = transformer(h)                  # nn.TransformerEncoderLayer-style pre-norm blocks, shared weights
        logits = head(h)                    # Linear -> N digits (no norm before it, as the scripts)
        preds = softmax(logits)             # what the next iteration sees

Every ablation of the log is one ModelConfig field that picks a small module or branch below:

- input, recurrence, pos: how the puzzle and predictions, h_prev and positions enter an iteration.
  Each choice is a part in a registry (INPUTS, RECURRENCES, POSITIONS below, documented where defined).
  input: encode_once, concat, proj_add, proj_concat, embed. recurrence: add, none, concat, gated, mem
  (with encode_once, none and mem re-add the encoded puzzle each iteration, as h does not carry it).
  pos: rcb, rope2d (half of each head's dims rotate with the row, half with the column), sinusoidal,
  learned, none; every iteration, or with pos_every_iter=False only in iteration 0 (added to the
  encoded puzzle once; RoPE rotates iteration 0's attention only).
- block: attention (pre-norm: self-attention + FFN, nn.TransformerEncoderLayer's layout and its four
  dropouts), mixer (pre-norm: a token MLP across the C cells, C -> token_mlp (default d_ff) -> C,
  then the channel FFN; the log's MLP-Mixer), or trm (TRM's post-norm block: parameter-free RMSNorm,
  bias-free SwiGLU token and channel MLPs, as exp_trm_nested.py).
- sharing: which transformer ("core" = n_layers blocks) runs at iteration i.
    shared    one core for every iteration
    phased    n_phases cores, each for iterations / n_phases consecutive iterations (middle1/2)
    unrolled  one core per trained iteration
    Past the trained count (evaluation at 2x) phased and unrolled keep using their last core.
    nested    TRM's H/L cycles with one shared core. One iteration = one TRM supervision step:
                  h, z = h.detach(), z.detach()                # TRM detaches between supervision steps
                  for each of h_cycles outer cycles (all but the last without gradients):
                      l_cycles times: z = core(z + h + x)      # z: reasoning state
                      h = core(h + z)                          # h: answer state -> logits
              The log's exp_trm_nested.py ran one supervision step (iterations=1) of 3 x (6 + 1) core
              passes. Here x is the injection (input + pos); nested needs recurrence=add. With
              h_init=random, h and z start from two fixed vectors (TRM's H_init / L_init: parameters
              the script never trains, since the no-gradient cycles overwrite them; kept as such).
- head: Linear(d, N), with a LayerNorm before it only when head_norm=True; an optional Q-head
  (q_head > 0, the sequel's exp_qhead.py): Linear(d, 1) on the cells' mean h, predicting whether this
  iteration's argmax solves the puzzle.
- init: encoder (PyTorch's defaults as nn.TransformerEncoder builds them: xavier q/k/v, zero attention
  biases, and every layer of a stack a copy of the first), torch (PyTorch's defaults, each layer drawn
  on its own, as the scripts' custom RoPE layers), small (N(0, 0.02) everywhere).

The step API serves verified-halting inference and test-time scaling: `state = model.init_state(puzzle)`,
then `state, logits = model.step(state, i)`. The state is a dict of tensors that all have the batch
first, so callers may index rows (e.g. drop solved puzzles) between steps.
"""
from __future__ import annotations

import contextlib
import math
import numbers
from typing import NamedTuple

import torch
import torch.nn as nn
import torch.nn.functional as F
from torch.utils.checkpoint import checkpoint

from lib.config import BOX_SHAPES, ModelConfig, validate_model

MEM_DIM = 64  # recurrence=mem: width of the memory bank (the log's 64)


def relu2(x: torch.Tensor) -> torch.Tensor:
    return F.relu(x).square()


ACTIVATIONS = {"relu": F.relu, "gelu": F.gelu, "relu2": relu2}


# --- positions ---------------------------------------------------------------------------------

def grid_coords(n: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Row, column and box index of each of the n*n cells (row-major)."""
    box_rows, box_cols = BOX_SHAPES[n]
    cell = torch.arange(n * n)
    row, col = cell // n, cell % n
    return row, col, (row // box_rows) * (n // box_cols) + col // box_cols


def rope2d_tables(n: int, head_dim: int, base: float) -> tuple[torch.Tensor, torch.Tensor]:
    """cos, sin [C, head_dim] for rotate-half RoPE where dim j pairs with j + head_dim/2.
    The first head_dim/4 pairs turn with the row, the rest with the column, at frequencies
    base^(-k / (head_dim/4)): the scripts' 10^(-k/8) at head_dim 32. (The scripts pair adjacent dims;
    a fixed permutation of a head's dims, which the learned q/k projections absorb.)"""
    row, col, _ = grid_coords(n)
    quarter = head_dim // 4
    freqs = base ** (-torch.arange(quarter, dtype=torch.float64) / quarter)
    angles = torch.cat([row[:, None] * freqs, col[:, None] * freqs], dim=1)  # [C, head_dim/2]
    angles = torch.cat([angles, angles], dim=1)
    sin = angles.sin()
    sin[:, : head_dim // 2] *= -1  # rotate-half's minus sign, folded into the table
    return angles.cos().float(), sin.float()


def apply_rope(x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor) -> torch.Tensor:
    """Rotate pairs (j, j + d/2) of x [..., C, d]: x*cos + swap_halves(x)*sin (sign is in sin)."""
    return torch.addcmul(x * cos.to(x.dtype), x.roll(x.shape[-1] // 2, dims=-1), sin.to(x.dtype))


def sinusoidal_table(n_positions: int, d: int) -> torch.Tensor:
    """The Transformer paper's fixed encoding over positions 0..n_positions-1, [P, d]."""
    pos = torch.arange(n_positions, dtype=torch.float64)[:, None]
    freqs = 10_000.0 ** (-torch.arange(0, d, 2, dtype=torch.float64) / d)
    table = torch.zeros(n_positions, d, dtype=torch.float64)
    table[:, 0::2] = torch.sin(pos * freqs)
    table[:, 1::2] = torch.cos(pos * freqs)[:, : d // 2]
    return table.float()


# --- dropout -----------------------------------------------------------------------------------

def dropout(x: torch.Tensor, p: float, training: bool) -> torch.Tensor:
    """F.dropout, with CPU keep masks cut from 64-bit draws. torch's CPU generator spends ~5 ns per element
    in bernoulli_, 41% of a cpu-quick step at dropout 0.1 (profiled: benchmarks/bench_dropout.py); two 32-bit
    masks per draw halve that. The same dropout: each element kept with probability 1 - p (to 2^-32, finer
    than bernoulli_'s float compare), kept ones scaled by 1 / (1 - p). Elsewhere (CUDA's Philox) F.dropout."""
    if not training or not p:
        return x
    if x.device.type != "cpu":
        return F.dropout(x, p, True)
    return x * keep_mask(x.shape, p).to(x.dtype).mul_(1.0 / (1.0 - p))  # one multiply each way


def keep_mask(shape, p: float) -> torch.Tensor:
    """A bool mask, True with probability 1 - p: each int64 draw gives two int32s, kept when >= the threshold."""
    n = math.prod(shape)
    bits = torch.randint(-2 ** 63, 2 ** 63 - 1, ((n + 1) // 2,), dtype=torch.int64).view(torch.int32)[:n]
    return (bits >= round(p * 2 ** 32) - 2 ** 31).view(shape)


def attention(q, k, v, p: float, training: bool) -> torch.Tensor:
    """softmax(q k^T / sqrt(d)) v, with dropout p on the weights in training (nn.MultiheadAttention's).
    Fused SDPA, except for CPU training with dropout, where SDPA leaves its flash kernel for the math path
    anyway: written out, so the weights take dropout()'s cheaper masks."""
    if not (training and p and q.device.type == "cpu"):
        return F.scaled_dot_product_attention(q, k, v, dropout_p=p if training else 0.0)
    weights = torch.softmax((q @ k.transpose(-2, -1)) * q.shape[-1] ** -0.5, dim=-1)
    return dropout(weights, p, True) @ v


# --- blocks ------------------------------------------------------------------------------------

class FeedForward(nn.Module):
    """fc2(dropout(act(fc1(x)))), then dropout: nn.TransformerEncoderLayer's FFN and its dropout2."""

    def __init__(self, d: int, d_ff: int, activation: str, dropout: float):
        super().__init__()
        self.fc1, self.fc2 = nn.Linear(d, d_ff), nn.Linear(d_ff, d)
        self.act, self.dropout = ACTIVATIONS[activation], dropout

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = dropout(self.act(self.fc1(x)), self.dropout, self.training)
        return dropout(self.fc2(y), self.dropout, self.training)


class SwiGLU(nn.Module):
    """w3(silu(w1 x) * w2 x), bias-free (TRM's MLPs)."""

    def __init__(self, d: int, hidden: int):
        super().__init__()
        self.w1, self.w2, self.w3 = nn.Linear(d, hidden, bias=False), nn.Linear(d, hidden, bias=False), \
            nn.Linear(hidden, d, bias=False)

    def forward(self, x):
        return self.w3(F.silu(self.w1(x)) * self.w2(x))


class Attention(nn.Module):
    """Multi-head self-attention over the cells: one fused qkv matmul, RoPE on q and k together,
    attention() with dropout on its weights (MHA's), dropout after the projection (dropout1).
    No mask: every cell sees every cell."""

    def __init__(self, d: int, n_heads: int, dropout: float):
        super().__init__()
        self.qkv, self.proj = nn.Linear(d, 3 * d), nn.Linear(d, d)
        self.n_heads, self.dropout = n_heads, dropout

    def forward(self, x: torch.Tensor, rope: tuple[torch.Tensor, torch.Tensor] | None) -> torch.Tensor:
        B, C, D = x.shape
        # [3, B, H, C, hd], made contiguous once: CPU SDPA and RoPE ran about 2x slower on
        # the strided view (measured), and the copy is cheap
        qkv = self.qkv(x).view(B, C, 3, self.n_heads, D // self.n_heads).permute(2, 0, 3, 1, 4).contiguous()
        qk, v = qkv.split([2, 1])  # split, not indexing: its backward is one cat, not zero-fill + copies
        if rope is not None:
            qk = apply_rope(qk, *rope)  # one rotation for q and k together
        q, k = qk.unbind(0)
        y = attention(q, k, v[0], self.dropout, self.training)  # [B, H, C, hd]
        y = self.proj(y.transpose(1, 2).reshape(B, C, D))
        return dropout(y, self.dropout, self.training)


class AttentionBlock(nn.Module):
    """Pre-norm transformer layer (nn.TransformerEncoderLayer with norm_first=True)."""

    def __init__(self, cfg: ModelConfig, n_cells: int):
        super().__init__()
        d = cfg.d_model
        self.norm1, self.norm2 = nn.LayerNorm(d), nn.LayerNorm(d)
        self.attn = Attention(d, cfg.n_heads, cfg.dropout)
        self.ff = FeedForward(d, cfg.d_ff, cfg.activation, cfg.dropout)

    def forward(self, x, rope):
        x = x + self.attn(self.norm1(x), rope)
        return x + self.ff(self.norm2(x))


class MixerBlock(nn.Module):
    """Pre-norm MLP-Mixer layer: a token MLP mixes the C cells (C -> token_mlp -> C, the same for
    every channel), then the channel FFN. Positions are baked into the token weights."""

    def __init__(self, cfg: ModelConfig, n_cells: int):
        super().__init__()
        d = cfg.d_model
        self.norm1, self.norm2 = nn.LayerNorm(d), nn.LayerNorm(d)
        self.token_mix = FeedForward(n_cells, cfg.token_mlp or cfg.d_ff, cfg.activation, cfg.dropout)
        self.ff = FeedForward(d, cfg.d_ff, cfg.activation, cfg.dropout)

    def forward(self, x, rope=None):
        x = x + self.token_mix(self.norm1(x).transpose(1, 2)).transpose(1, 2)
        return x + self.ff(self.norm2(x))


def rms_norm(x: torch.Tensor, eps: float = 1e-5) -> torch.Tensor:
    """Parameter-free RMSNorm (TRM's)."""
    return x * torch.rsqrt(x.float().square().mean(-1, keepdim=True) + eps).to(x.dtype)


class TRMBlock(nn.Module):
    """TRM's MLP-T block, post-norm: x = rms(x + tokens(x)); x = rms(x + channels(x)), with bias-free SwiGLU
    MLPs across the C cells (hidden token_mlp) and across the channels (hidden d_ff)."""

    def __init__(self, cfg: ModelConfig, n_cells: int):
        super().__init__()
        self.token_mix = SwiGLU(n_cells, cfg.token_mlp or cfg.d_ff)
        self.ff = SwiGLU(cfg.d_model, cfg.d_ff)

    def forward(self, x, rope=None):
        x = rms_norm(x + self.token_mix(x.transpose(1, 2)).transpose(1, 2))
        return rms_norm(x + self.ff(x))


BLOCKS = {"attention": AttentionBlock, "mixer": MixerBlock, "trm": TRMBlock}


class Core(nn.Module):
    """n_layers blocks: the 'transformer' one iteration applies."""

    def __init__(self, cfg: ModelConfig, n_cells: int):
        super().__init__()
        self.layers = nn.ModuleList(BLOCKS[cfg.block](cfg, n_cells) for _ in range(cfg.n_layers))

    def forward(self, h, rope):
        for layer in self.layers:
            h = layer(h, rope)
        return h


# --- parts: how the puzzle, h_prev and the positions enter an iteration --------------------------------
# Each is a small class in a registry, as BLOCKS: a new recurrence is one class and one entry. A part makes
# its layers on the model itself (model.encoder, model.rec_proj, ...), so checkpoints keep the log's
# parameter names and a model draws its initial weights in the order it always has; the part holds the
# rules that use them.

class EncodeOnce:
    """encode_once: the puzzle is encoded into h once; each iteration adds pred_proj(preds) (re-adding the
    encoded puzzle when h does not start from it: h_init=random, as exp_fixed_init.py's puzzle_proj)."""

    def __init__(self, m: "RecurrentSudoku", n: int, d: int):
        m.encoder = nn.Linear(n + 1, d)  # onehot(puzzle) -> initial h
        m.pred_proj = nn.Linear(n, d) if m.feeds_preds else None

    def start(self, m, state: dict, onehot: torch.Tensor, puzzle: torch.Tensor) -> torch.Tensor | None:
        return m.encoder(onehot)  # the others keep what they need of the puzzle in the state

    def __call__(self, m, state: dict) -> torch.Tensor:
        return m.pred_proj(state["preds"]) if m.feeds_preds else torch.zeros_like(state["h"])


class ConcatInput:
    """concat: input_proj(concat(onehot(puzzle), preds)) every iteration (the log's original)."""

    def __init__(self, m, n: int, d: int):
        m.input_proj = nn.Linear(n + 1 + (n if m.feeds_preds else 0), d)

    def start(self, m, state, onehot, puzzle):
        state["onehot"] = onehot

    def __call__(self, m, state):
        onehot = state["onehot"]
        return m.input_proj(torch.cat([onehot, state["preds"]], dim=-1) if m.feeds_preds else onehot)


class Embed:
    """embed: embed(digit) * sqrt(d) every iteration (TRM's embed_tokens; no predictions fed back)."""

    def __init__(self, m, n: int, d: int):
        m.embed = nn.Embedding(n + 1, d)

    def start(self, m, state, onehot, puzzle):
        state["digits"] = puzzle

    def __call__(self, m, state):
        return m.embed(state["digits"]) * math.sqrt(m.cfg.d_model)


class Projections:
    """proj_add: digit_proj(digits) + pred_proj(preds) + empty_embed(is_empty) every iteration;
    proj_concat: the same three at widths d/2, d - d/2 - d/8, d/8, concatenated."""

    def __init__(self, m, n: int, d: int):
        self.add = m.cfg.input == "proj_add"
        widths = (d, d, d) if self.add else _split_width(d, m.feeds_preds)
        m.digit_proj = nn.Linear(n, widths[0])
        m.pred_proj = nn.Linear(n, widths[1]) if m.feeds_preds else None
        m.empty_embed = nn.Embedding(2, widths[2])

    def start(self, m, state, onehot, puzzle):
        state["onehot"], state["empty"] = onehot, (puzzle == 0).long()

    def __call__(self, m, state):
        parts = [m.digit_proj(state["onehot"][..., 1:]), m.empty_embed(state["empty"])]
        if m.feeds_preds:
            parts.insert(1, m.pred_proj(state["preds"]))
        return sum(parts) if self.add else torch.cat(parts, dim=-1)


def _split_width(d: int, with_preds: bool = True) -> tuple[int, int, int]:
    """proj_concat widths for (digits, preds, empty): the log's 64/48/16 at d=128 (without
    predictions the digits take the predictions' share)."""
    empty = max(1, d // 8)
    digits = d // 2 if with_preds else d - empty
    return digits, d - digits - empty, empty


INPUTS = {"encode_once": EncodeOnce, "concat": ConcatInput, "embed": Embed,
          "proj_add": Projections, "proj_concat": Projections}


class Add:
    """add: h_in = h_prev + x."""
    carries_h = True  # False: h_prev does not carry the encoded puzzle, which is re-added every iteration

    def __init__(self, m, d: int):
        pass

    def start(self, state: dict, like: dict) -> None:  # the recurrence's own state, beside h
        pass

    def enter(self, m, state: dict, x: torch.Tensor) -> torch.Tensor:
        return state["h"] + x

    def leave(self, m, state: dict, h: torch.Tensor, new: dict) -> torch.Tensor:  # h after the core
        return h


class NoRecurrence(Add):
    """none: h_in = x; only the predictions carry."""
    carries_h = False

    def enter(self, m, state, x):
        return x


class ConcatRecurrence(Add):
    """concat: h_in = input_proj([x, preds, h_prev]), i.e. x + W h_prev, the projection's h_prev columns apart."""

    def __init__(self, m, d: int):
        m.rec_proj = nn.Linear(d, d, bias=False)  # the input projection's h_prev columns

    def enter(self, m, state, x):
        return x + m.rec_proj(state["h"])


class Gated(Add):
    """gated: h = g * h_prev + (1 - g) * core(x), g = sigmoid(Linear([h_prev, core(x)])): the gate blends
    after the core, which never sees h_prev (exp_recur_gated.py)."""

    def __init__(self, m, d: int):
        m.gate = nn.Linear(2 * d, d)

    def enter(self, m, state, x):
        return x

    def leave(self, m, state, h, new):
        h_prev = state["h"]
        gate = torch.sigmoid(m.gate(torch.cat([h_prev, h], dim=-1)))
        return h + gate * (h_prev - h)  # gate * h_prev + (1 - gate) * h


class Memory(Add):
    """mem: h_in = x + mem_out(m), m += mem_in(h) after each iteration: a separate MEM_DIM-wide bank."""
    carries_h = False

    def __init__(self, m, d: int):
        m.mem_in, m.mem_out = nn.Linear(d, MEM_DIM), nn.Linear(MEM_DIM, d)

    def start(self, state, like):
        state["mem"] = torch.zeros(*state["preds"].shape[:2], MEM_DIM, **like)

    def enter(self, m, state, x):
        return x + m.mem_out(state["mem"])

    def leave(self, m, state, h, new):
        new["mem"] = state["mem"] + m.mem_in(h)
        return h


RECURRENCES = {"add": Add, "none": NoRecurrence, "concat": ConcatRecurrence, "gated": Gated, "mem": Memory}


class NoPositions:
    """none: no positions (a block=mixer or trm token MLP still sees them)."""
    rotary = False

    def __init__(self, m, n: int, d: int):
        pass

    def additive(self, m) -> torch.Tensor | None:  # the [C, d] term added to h
        return None


class RowColBox(NoPositions):
    """rcb: learned row + column + box embeddings (the recipe's)."""

    def __init__(self, m, n, d):
        m.row_embed, m.col_embed, m.box_embed = (nn.Embedding(n, d) for _ in range(3))

    def additive(self, m):
        return m.row_embed(m.row_ids) + m.col_embed(m.col_ids) + m.box_embed(m.box_ids)


class Learned(NoPositions):
    """learned: one learned vector per cell (the log's "no Sudoku positions"; init_weights draws std 0.02)."""

    def __init__(self, m, n, d):
        m.cell_embed = nn.Embedding(n * n, d)

    def additive(self, m):
        return m.cell_embed.weight


class Sinusoidal(NoPositions):
    """sinusoidal: one fixed n-position table indexed by row, column and box, the same table for all three
    (exp_sinusoidal_pos.py)."""

    def __init__(self, m, n, d):
        m.register_buffer("sinusoid", sinusoidal_table(n, d), persistent=False)

    def additive(self, m):
        return m.sinusoid[m.row_ids] + m.sinusoid[m.col_ids] + m.sinusoid[m.box_ids]


class Rope2d(NoPositions):
    """rope2d: rotary inside attention at rope_base, no additive term (config.validate rejects it for a
    block without attention)."""
    rotary = True

    def __init__(self, m, n, d):
        cos, sin = rope2d_tables(n, d // m.cfg.n_heads, m.cfg.rope_base)
        m.register_buffer("rope_cos", cos, persistent=False)
        m.register_buffer("rope_sin", sin, persistent=False)


POSITIONS = {"none": NoPositions, "rcb": RowColBox, "learned": Learned, "sinusoidal": Sinusoidal,
             "rope2d": Rope2d}


# --- the model ---------------------------------------------------------------------------------

class Rollout(NamedTuple):
    logits: torch.Tensor  # [T, B, C, N] float32
    state: dict  # the state after the last iteration
    q: torch.Tensor | None  # [T, B] Q-head logits, when the model has one


class RecurrentSudoku(nn.Module):
    def __init__(self, cfg: ModelConfig, grid_size: int):
        super().__init__()
        check_config(cfg, grid_size)
        self.cfg, self.n, self.n_cells = cfg, grid_size, grid_size * grid_size
        n, C, d = grid_size, grid_size * grid_size, cfg.d_model
        self.register_buffer("digit_ids", torch.arange(n + 1), persistent=False)
        # no prediction weights when none are fed back: every parameter a model has is one it trains
        self.feeds_preds = cfg.feed_preds and cfg.pred_update == "softmax"
        self.inputs = INPUTS[cfg.input](self, n, d)
        self.recurrence = RECURRENCES[cfg.recurrence](self, d)
        self.pos_kind, self.positions = cfg.pos, POSITIONS[cfg.pos](self, n, d)
        for name, idx in zip(("row_ids", "col_ids", "box_ids"), grid_coords(n)):
            self.register_buffer(name, idx, persistent=False)
        if cfg.pred_update == "norm_residual":  # TRM-style: a separate, RMS-normalised prediction state
            self.pred_update = nn.Sequential(nn.Linear(d + n, 4 * d), nn.GELU(), nn.Linear(4 * d, n))
            self.pred_norm = nn.RMSNorm(n, eps=1e-5)
        seed = torch.Generator().manual_seed(0)  # h_init=random: every run starts from the same vectors
        if cfg.h_init == "random" and cfg.sharing == "nested":  # TRM's H_init and L_init (never trained)
            self.h_random = nn.Parameter(torch.randn(2, 1, 1, d, generator=seed) * 0.02)
        elif cfg.h_init == "random":  # fixed, not learned
            self.register_buffer("h_random", torch.randn(1, C, d, generator=seed))
        n_cores = {"shared": 1, "nested": 1, "phased": cfg.n_phases, "unrolled": cfg.iterations}[cfg.sharing]
        self.cores = nn.ModuleList(Core(cfg, C) for _ in range(n_cores))
        norm = [nn.LayerNorm(d)] if cfg.head_norm else []
        self.head = nn.Sequential(*norm, nn.Linear(d, n, bias=cfg.head_bias))
        if cfg.q_head:
            self.q_head = nn.Linear(d, 1)
        init_weights(self, cfg.init)

    def _core(self, i: int) -> Core:
        return self.cores[core_index(self.cfg, i, len(self.cores))]

    def init_state(self, puzzle: torch.Tensor) -> dict:
        """puzzle: integer [B, C] (or [B, N, N]), 0 = blank, 1..N digits."""
        puzzle = check_puzzle(puzzle, self.n)
        B, C, cfg = puzzle.shape[0], self.n_cells, self.cfg
        new = dict(device=puzzle.device, dtype=torch.float32)
        onehot = (puzzle[..., None] == self.digit_ids).float()  # [B, C, N+1]; compile-friendly one_hot
        state = {"preds": torch.zeros(B, C, self.n, **new)}
        encoded = self.inputs.start(self, state, onehot, puzzle)
        if cfg.sharing == "nested":  # TRM: answer state h and reasoning state z
            start = self.h_random if cfg.h_init == "random" else torch.zeros(2, 1, 1, cfg.d_model, **new)
            state["h"], state["z"] = (s.expand(B, C, -1) for s in start)
        elif cfg.h_init == "random":  # the log's fixed-init test: one fixed random start for every puzzle
            state["h"] = self.h_random.expand(B, -1, -1)
        else:
            state["h"] = encoded if encoded is not None else torch.zeros(B, C, cfg.d_model, **new)
        h_lacks_it = cfg.sharing == "nested" or not self.recurrence.carries_h or cfg.h_init == "random"
        if encoded is not None and h_lacks_it:
            state["h0"] = encoded  # h does not start from it (or is not carried): re-added each time
        self.recurrence.start(state, new)
        if cfg.pred_update == "norm_residual":
            state["pred_state"] = torch.zeros(B, C, self.n, **new)
        return state

    def step(self, state: dict, i: int) -> tuple[dict, torch.Tensor]:
        """Iteration i (0-based): returns the new state and logits [B, C, N] (float32)."""
        if self.cfg.activation_checkpointing and self.training and torch.is_grad_enabled():
            return checkpoint(self._step, state, i, use_reentrant=False)
        return self._step(state, i)

    def _step(self, state: dict, i: int) -> tuple[dict, torch.Tensor]:
        x = self.inputs(self, state)  # from the predictions and the puzzle
        if "h0" in state:
            x = x + state["h0"]
        positions = self.cfg.pos_every_iter or i == 0  # once: in iteration 0, added to the encoded puzzle
        pos = self.positions.additive(self) if positions else None
        rope = (self.rope_cos, self.rope_sin) if self.positions.rotary and positions else None
        if self.cfg.sharing == "nested":
            return self._nested_step(state, x if pos is None else x + pos, rope)
        h = self.recurrence.enter(self, state, x)
        if pos is not None:
            h = h + pos
        new = {}
        h = self.recurrence.leave(self, state, self._core(i)(h, rope), new)
        return self._emit(state, h, new)

    def _nested_step(self, state: dict, x: torch.Tensor, rope) -> tuple[dict, torch.Tensor]:
        core, h, z = self.cores[0], state["h"].detach(), state["z"].detach()
        for cycle in range(self.cfg.h_cycles):
            grad = contextlib.nullcontext() if cycle == self.cfg.h_cycles - 1 else torch.no_grad()
            with grad:
                for _ in range(self.cfg.l_cycles):
                    z = core(z + h + x, rope)
                h = core(h + z, rope)
        return self._emit(state, h, {"z": z})

    def _emit(self, state: dict, h: torch.Tensor, new: dict) -> tuple[dict, torch.Tensor]:
        logits = self.head(h).float()
        if self.cfg.pred_update == "norm_residual":  # pred_state = RMSNorm(pred_state + MLP([h, pred_state]))
            ps = state["pred_state"]
            ps = self.pred_norm(ps + self.pred_update(torch.cat([h, ps.to(h.dtype)], dim=-1)).float())
            new = {**new, "pred_state": ps}
            logits = logits + ps
        if self.cfg.q_head:
            new = {**new, "q": self.q_head(h.mean(1)).squeeze(-1).float()}
        return {**state, **new, "h": h, "preds": F.softmax(logits, dim=-1)}, logits

    def forward(self, puzzle: torch.Tensor, iterations: int | None = None,
                carried: tuple[torch.Tensor, dict] | None = None) -> Rollout:
        """Every iteration's logits, the final state and the Q-head's logits. `carried` = (keep [B] bool,
        state): rows where keep is true start from that earlier state (a puzzle carried over from the
        previous batch), the rest from init_state(puzzle)."""
        T = check_iterations(self.cfg.iterations if iterations is None else iterations)
        state = self.init_state(puzzle)
        if carried is not None:
            keep, old = carried
            state = {k: torch.where(keep.view(-1, *[1] * (v.dim() - 1)), old[k].to(v.dtype), v) for k, v in state.items()}
        logits, q = [], []
        for i in range(T):
            state, out = self.step(state, i)
            logits.append(out)
            if "q" in state:
                q.append(state["q"])
        return Rollout(torch.stack(logits), state, torch.stack(q) if q else None)


def core_index(cfg: ModelConfig, i: int, n_cores: int) -> int:
    """The core iteration i runs: shared and nested 0, unrolled i, phased its phase; the last beyond them."""
    if cfg.sharing == "phased":
        return min(i // (cfg.iterations // cfg.n_phases), n_cores - 1)
    return min(i, n_cores - 1)


def check_iterations(T) -> int:
    if isinstance(T, bool) or not isinstance(T, numbers.Integral) or T < 1:
        raise ValueError(f"iterations must be a positive int, got {T!r}")
    return int(T)


def check_puzzle(puzzle: torch.Tensor, n: int) -> torch.Tensor:
    """An integer [B, C] puzzle ([B, N, N] is flattened) with values 0..n, or an error naming the problem."""
    if not torch.is_tensor(puzzle) or puzzle.is_floating_point() or puzzle.dtype == torch.bool:
        raise TypeError(f"puzzle must be an integer tensor (0 = blank, 1..{n}), got {type(puzzle).__name__} "
                        f"{getattr(puzzle, 'dtype', '')}")
    if puzzle.dim() == 3:
        puzzle = puzzle.flatten(1)
    if puzzle.dim() != 2 or puzzle.shape[1] != n * n:
        raise ValueError(f"puzzle must have shape [B, {n * n}] (or [B, {n}, {n}]) for a "
                         f"{n}x{n} model, got {list(puzzle.shape)}")
    puzzle = puzzle.long()
    if not torch.compiler.is_compiling() and ((puzzle < 0) | (puzzle > n)).any():
        raise ValueError(f"puzzle values must be 0 (blank) or digits 1..{n}")
    return puzzle


# --- initialisation ------------------------------------------------------------------------------

def init_weights(model: RecurrentSudoku, scheme: str) -> None:
    """The init a scheme names (see the module docstring). Modules start with PyTorch's own defaults."""
    if scheme == "small":
        model.apply(_small_init)
    elif scheme == "encoder":
        for module in model.modules():
            if isinstance(module, Attention):  # nn.MultiheadAttention._reset_parameters
                nn.init.xavier_uniform_(module.qkv.weight)
                nn.init.zeros_(module.qkv.bias)
                nn.init.zeros_(module.proj.bias)
        for core in model.cores:  # nn.TransformerEncoder deep-copies one layer: every layer starts the same
            for layer in core.layers[1:]:
                layer.load_state_dict(core.layers[0].state_dict())
    elif scheme != "torch":
        raise ValueError(f"model.init: unknown init {scheme!r}")
    if model.cfg.recurrence == "concat" and model.cfg.input == "concat" and scheme != "small":
        _one_linear_init(model.input_proj, model.rec_proj)
    if model.pos_kind == "learned":
        nn.init.normal_(model.cell_embed.weight, std=0.02)  # the log's randn(81, d) * 0.02
    if model.cfg.q_head:  # the sequel's: predict "not solved" with confidence at the start
        nn.init.zeros_(model.q_head.weight)
        nn.init.constant_(model.q_head.bias, -5.0)


def _one_linear_init(input_proj: nn.Linear, rec_proj: nn.Linear) -> None:
    # exp_recur_concat.py has one Linear([x, preds, h_prev] -> d): PyTorch's default init draws from its whole
    # fan-in, so two layers each initialised on its own would start 2.7x (3.7x without preds) wider
    fan_in = input_proj.in_features + rec_proj.in_features
    whole = torch.empty(input_proj.out_features, fan_in)
    nn.init.kaiming_uniform_(whole, a=math.sqrt(5))
    with torch.no_grad():
        input_proj.weight.copy_(whole[:, :input_proj.in_features])
        rec_proj.weight.copy_(whole[:, input_proj.in_features:])
        bound = 1 / math.sqrt(fan_in)
        input_proj.bias.uniform_(-bound, bound)


def _small_init(module: nn.Module) -> None:
    # small weights everywhere, so a fresh model predicts ~uniformly (loss ~ ln N)
    if isinstance(module, nn.Linear):
        nn.init.normal_(module.weight, std=0.02)
        if module.bias is not None:
            nn.init.zeros_(module.bias)
    elif isinstance(module, nn.Embedding):
        nn.init.normal_(module.weight, std=0.02)


def check_config(cfg: ModelConfig, grid_size: int) -> None:
    """config.validate_model's rules (build_model may get a bare ModelConfig), and the grid size."""
    if not isinstance(cfg, ModelConfig):
        raise TypeError(f"build_model needs a ModelConfig (cfg.model), got {type(cfg).__name__}")
    if grid_size not in BOX_SHAPES:
        raise ValueError(f"grid_size {grid_size} is not supported; choose one of {tuple(BOX_SHAPES)}")
    validate_model(cfg)


def build_model(model_cfg: ModelConfig, grid_size: int) -> RecurrentSudoku:
    return RecurrentSudoku(model_cfg, grid_size)


def count_params(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


# --- precision and accuracy, shared by training and evaluation ------------------------------------

def amp_dtype_for(setting: str, device: torch.device) -> torch.dtype | None:
    """train.dtype -> the autocast dtype, or None for plain fp32: "auto" is bf16 on CUDA, fp32 on CPU."""
    if setting == "bfloat16" or (setting == "auto" and torch.device(device).type == "cuda"):
        return torch.bfloat16
    return None


def autocast(device: torch.device, dtype: torch.dtype | None):
    return torch.autocast(torch.device(device).type, dtype=dtype) if dtype is not None else contextlib.nullcontext()


def filled(logits: torch.Tensor, puzzle: torch.Tensor) -> torch.Tensor:
    """The predicted grid with the givens copied from the puzzle, as the log's scripts score: [B, C] digits."""
    return torch.where(puzzle > 0, puzzle, logits.argmax(-1) + 1)


def blank_accuracy(logits: torch.Tensor, answer: torch.Tensor, puzzle: torch.Tensor) -> torch.Tensor:
    """Per puzzle, the share of its blank cells predicted right [B]; a puzzle with nothing to fill
    scores 1 (vacuously right). logits [B, C, N], answer and puzzle [B, C]."""
    blank = puzzle == 0
    n_blank = blank.sum(1)
    right = ((logits.argmax(-1) + 1 == answer) & blank).sum(1) / n_blank.clamp(min=1)
    return torch.where(n_blank > 0, right, torch.ones_like(right))


# --- the loss: every iteration, the blank cells ----------------------------------------------------
# The scripts' loss: cross-entropy over the blank cells of the whole batch (flattened, so a puzzle with more
# blanks weighs more), one mean per iteration, averaged over the iterations ("all") or the last one only
# ("final"). The sequel's fixed-point terms reweight or add to iteration i >= 1 on the blank cells that
# iteration i - 1 already had right:
#     weight    their cross-entropy counts twice (exp_bs2048_fixedpoint.py; still / the blank count)
#     gradmask  their cross-entropy is dropped (exp_bs2048_fp_gradmask.py; still / the blank count)
#     l2        + sum of |softmax_i - onehot(answer)|^2 over them / their count (exp_bs2048_fp_l2.py)
#     copy      + sum of |softmax_i - softmax_{i-1} (detached)|^2 over them / their count (..._fp_copy.py)
# With a Q-head: + q_head x the mean over iterations of BCE(q_i, iteration i solves the puzzle).

def sequence_loss(out: Rollout | torch.Tensor, answer: torch.Tensor, puzzle: torch.Tensor | None = None,
                  cfg: ModelConfig | None = None) -> torch.Tensor:
    """The training loss of a rollout (or of logits [T, B, C, N]) against answers [B, C] (1..N). Without
    `puzzle` every cell counts; without `cfg` the recipe's loss (every iteration, no extra terms)."""
    logits = out.logits if isinstance(out, Rollout) else out
    if logits.dim() != 4:
        raise ValueError(f"logits must be [T, B, C, N], got shape {list(logits.shape)}")
    T, B, C, N = logits.shape
    answer = answer.reshape(answer.shape[0], -1) if answer.dim() == 3 else answer
    if answer.shape != (B, C):
        raise ValueError(f"answer must be [B, C] = [{B}, {C}] to match the logits, got {list(answer.shape)}")
    mode = cfg.loss if cfg is not None else "all"
    if mode not in ("all", "final"):
        raise ValueError(f"loss mode must be 'all' or 'final', got {mode!r}")
    counted = puzzle.reshape(B, C) == 0 if puzzle is not None and (cfg is None or cfg.loss_cells == "blanks") \
        else torch.ones(B, C, dtype=torch.bool, device=logits.device)
    target = answer.long() - 1  # digits 1..N -> classes 0..N-1
    fixed_point = cfg.fixed_point if cfg is not None else "none"
    iterations = range(T) if mode == "all" else [T - 1]
    terms = [_iteration_loss(logits, i, target, counted, fixed_point) for i in iterations]
    loss = torch.stack(terms).mean()
    if cfg is not None and cfg.q_head and isinstance(out, Rollout) and out.q is not None:
        solved = ((logits.argmax(-1) == target) | ~counted).all(-1).float()  # [T, B]
        loss = loss + cfg.q_head * F.binary_cross_entropy_with_logits(out.q.float(), solved)
    return loss


def _iteration_loss(logits, i: int, target, counted, fixed_point: str) -> torch.Tensor:
    ce = F.cross_entropy(logits[i].transpose(1, 2), target, reduction="none")  # [B, C]
    n = counted.sum().clamp(min=1)
    if fixed_point == "none" or i == 0:
        return (ce * counted).sum() / n
    held = (logits[i - 1].detach().argmax(-1) == target) & counted
    if fixed_point == "weight":
        return (ce * counted * (1 + held)).sum() / n
    if fixed_point == "gradmask":
        return (ce * counted * ~held).sum() / n
    probs = F.softmax(logits[i], -1)
    toward = F.one_hot(target, logits.shape[-1]).float() if fixed_point == "l2" else F.softmax(logits[i - 1].detach(), -1)
    if fixed_point not in ("l2", "copy"):
        raise ValueError(f"model.fixed_point: unknown term {fixed_point!r}")
    extra = ((probs - toward).square().sum(-1) * held).sum() / held.sum().clamp(min=1)
    return (ce * counted).sum() / n + extra


def iteration_loss(logits: torch.Tensor, answer: torch.Tensor, mode: str = "all") -> torch.Tensor:
    """Mean cross-entropy over all cells: averaged over iterations ("all") or the last only ("final")."""
    return sequence_loss(logits, answer, cfg=ModelConfig(loss=mode))
