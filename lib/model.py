"""The recurrent-depth Sudoku model: one file, the recursion written out.

The baseline is the log's best architecture ("no x after init" + recur_add + 2D RoPE):

    h = encoder(onehot(puzzle))             # the puzzle enters once
    preds = 0
    for i in range(T):
        h = h + pred_proj(preds) + pos      # pos = 0 with RoPE: positions live inside attention
        h = transformer(h)                  # pre-norm blocks, the same weights every iteration
        logits = head(h)                    # LayerNorm + Linear -> N digits
        preds = softmax(logits)             # what the next iteration sees

Every ablation of the log is one ModelConfig field that picks a small module or branch below:

- input: how the puzzle and the predictions enter each iteration (`_input`).
    encode_once  puzzle encoded into h once; each iteration adds pred_proj(preds)
    concat       input_proj(concat(onehot(puzzle), preds)) every iteration (the log's original)
    proj_add     digit_proj(digits) + pred_proj(preds) + empty_embed(is_empty) every iteration
    proj_concat  the same three projections at widths d/2, d - d/2 - d/8, d/8, concatenated
- recurrence: how h_prev enters the next iteration (`_step`).
    add     h_in = h_prev + x
    none    h_in = x; only preds carry (with encode_once the encoded puzzle is re-added instead)
    concat  h_in = x + W h_prev, which is input_proj over [input, h_prev] split into two matmuls
    gated   h_in = g * h_prev + (1 - g) * x, g = sigmoid(Linear(concat(x, h_prev)))
    mem     h_in = x + mem_out(m), m += mem_in(h) after each iteration: a separate 64-dim bank
            (with encode_once the encoded puzzle is re-added, as for none)
- pos: rope2d (rotary inside attention: half of each head's dims rotate with the row, half with
  the column; no additive term), rcb (learned row + column + box embeddings), sinusoidal (fixed
  1D over the C flattened cells), none. Positions enter every iteration, or with
  pos_every_iter=False only in iteration 0: the additive term is added once, and RoPE rotates
  queries and keys in iteration 0's attention only. block=mixer has no attention to rotate, so
  config.validate rejects pos=rope2d there; its token MLP sees positions through its weights.
- block: attention (pre-norm: self-attention + FFN) or mixer (pre-norm: a token MLP across the
  C cells, C -> token_mlp (default d_ff) -> C, then the same channel FFN), the log's MLP-Mixer.
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
              so an iteration costs h_cycles * (l_cycles + 1) core passes, T = iterations as for
              every sharing, and the defaults 16 x 3 x 6 are TRM's N_sup x T x n. Here x is the
              injection (encoded puzzle + input + pos); nested needs recurrence=add (z and h are
              its recurrence). With h_init=random, h and z start from fixed random vectors (std 1,
              one per state, the same for every cell and puzzle, as TRM's H_init / L_init buffers).

The step API serves verified-halting inference: `state = model.init_state(puzzle)`, then
`state, logits = model.step(state, i)`. The state is a dict of tensors that all have the batch
first, so callers may index rows (e.g. drop solved puzzles) between steps.
"""
from __future__ import annotations

import contextlib
import numbers

import torch
import torch.nn as nn
import torch.nn.functional as F
from torch.utils.checkpoint import checkpoint

from lib.config import BOX_SHAPES, ModelConfig, validate_model

MEM_DIM = 64  # recurrence=mem: width of the memory bank (the log's 64)
ROPE_BASE = 100.0  # coordinates only span 0..8, so a small base keeps every frequency useful


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


def rope2d_tables(n: int, head_dim: int, base: float = ROPE_BASE) -> tuple[torch.Tensor, torch.Tensor]:
    """cos, sin [C, head_dim] for rotate-half RoPE where dim j pairs with j + head_dim/2.
    The first head_dim/4 pairs turn with the row, the rest with the column, so a q.k score
    depends on the cells' row and column offsets, not on where they are."""
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
    """The Transformer paper's fixed 1D encoding over positions 0..n_positions-1, [P, d]."""
    pos = torch.arange(n_positions, dtype=torch.float64)[:, None]
    freqs = 10_000.0 ** (-torch.arange(0, d, 2, dtype=torch.float64) / d)
    table = torch.zeros(n_positions, d, dtype=torch.float64)
    table[:, 0::2] = torch.sin(pos * freqs)
    table[:, 1::2] = torch.cos(pos * freqs)[:, : d // 2]
    return table.float()


# --- blocks ------------------------------------------------------------------------------------

class FeedForward(nn.Module):
    def __init__(self, d: int, d_ff: int, activation: str, dropout: float):
        super().__init__()
        self.fc1, self.fc2 = nn.Linear(d, d_ff), nn.Linear(d_ff, d)
        self.act, self.dropout = ACTIVATIONS[activation], dropout

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.fc2(self.act(self.fc1(x)))
        return F.dropout(y, self.dropout, self.training) if self.dropout else y


class Attention(nn.Module):
    """Multi-head self-attention over the cells: one fused qkv matmul, RoPE on q and k together,
    fused SDPA. No mask: every cell sees every cell."""

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
        drop = self.dropout if self.training else 0.0
        y = F.scaled_dot_product_attention(q, k, v[0], dropout_p=drop)  # [B, H, C, hd]
        y = self.proj(y.transpose(1, 2).reshape(B, C, D))
        return F.dropout(y, self.dropout, self.training) if self.dropout else y


class AttentionBlock(nn.Module):
    """Pre-norm transformer layer."""

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
    """Pre-norm MLP-Mixer layer: a token MLP mixes the C cells (C -> d_ff -> C, the same for
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


class Core(nn.Module):
    """n_layers blocks: the 'transformer' one iteration applies."""

    def __init__(self, cfg: ModelConfig, n_cells: int):
        super().__init__()
        block = AttentionBlock if cfg.block == "attention" else MixerBlock
        self.layers = nn.ModuleList(block(cfg, n_cells) for _ in range(cfg.n_layers))

    def forward(self, h, rope):
        for layer in self.layers:
            h = layer(h, rope)
        return h


# --- the model ---------------------------------------------------------------------------------

class RecurrentSudoku(nn.Module):
    def __init__(self, cfg: ModelConfig, grid_size: int):
        super().__init__()
        check_config(cfg, grid_size)
        self.cfg, self.n, self.n_cells = cfg, grid_size, grid_size * grid_size
        n, C, d = grid_size, grid_size * grid_size, cfg.d_model
        self.register_buffer("digit_ids", torch.arange(n + 1), persistent=False)

        # how the puzzle and the predictions enter
        if cfg.input == "encode_once":
            self.encoder = nn.Linear(n + 1, d)  # onehot(puzzle) -> initial h
            self.pred_proj = nn.Linear(n, d)
        elif cfg.input == "concat":
            self.input_proj = nn.Linear(2 * n + 1, d)
        else:  # proj_add / proj_concat
            widths = (d, d, d) if cfg.input == "proj_add" else _split_width(d)
            self.digit_proj = nn.Linear(n, widths[0])
            self.pred_proj = nn.Linear(n, widths[1])
            self.empty_embed = nn.Embedding(2, widths[2])

        # how h_prev enters
        if cfg.recurrence == "concat":
            self.rec_proj = nn.Linear(d, d, bias=False)  # the input projection's h_prev columns
        elif cfg.recurrence == "gated":
            self.gate = nn.Linear(2 * d, d)
        elif cfg.recurrence == "mem":
            self.mem_in, self.mem_out = nn.Linear(d, MEM_DIM), nn.Linear(MEM_DIM, d)

        # positions
        self.pos_kind = cfg.pos
        if self.pos_kind == "rope2d":
            cos, sin = rope2d_tables(n, d // cfg.n_heads)
            self.register_buffer("rope_cos", cos, persistent=False)
            self.register_buffer("rope_sin", sin, persistent=False)
        elif self.pos_kind == "rcb":
            self.row_embed, self.col_embed, self.box_embed = (nn.Embedding(n, d) for _ in range(3))
            for name, idx in zip(("row_ids", "col_ids", "box_ids"), grid_coords(n)):
                self.register_buffer(name, idx, persistent=False)
        elif self.pos_kind == "sinusoidal":
            self.register_buffer("sinusoid", sinusoidal_table(C, d), persistent=False)

        if cfg.pred_update == "norm_residual":  # TRM-style: a separate, RMS-normalised prediction state
            self.pred_update = nn.Sequential(nn.Linear(d + n, 4 * d), nn.ReLU(), nn.Linear(4 * d, n))
            self.pred_norm = nn.RMSNorm(n)
        if cfg.h_init == "random":  # fixed, not learned; a fixed seed so every run starts from the same buffer
            shape = (2, 1, 1, d) if cfg.sharing == "nested" else (1, C, d)  # nested: one vector for h, one for z
            self.register_buffer("h_random", torch.randn(*shape, generator=torch.Generator().manual_seed(0)))
        n_cores = {"shared": 1, "nested": 1, "phased": cfg.n_phases, "unrolled": cfg.iterations}[cfg.sharing]
        self.cores = nn.ModuleList(Core(cfg, C) for _ in range(n_cores))
        self.head = nn.Sequential(nn.LayerNorm(d), nn.Linear(d, n))
        self.apply(_init_weights)

    # -- pieces of one iteration

    def _additive_pos(self) -> torch.Tensor | None:
        if self.pos_kind == "rcb":
            return self.row_embed(self.row_ids) + self.col_embed(self.col_ids) + self.box_embed(self.box_ids)
        if self.pos_kind == "sinusoidal":
            return self.sinusoid
        return None  # rope2d lives inside attention; none is none

    def _core(self, i: int) -> Core:
        if self.cfg.sharing == "phased":
            return self.cores[min(i // (self.cfg.iterations // self.cfg.n_phases), len(self.cores) - 1)]
        return self.cores[min(i, len(self.cores) - 1)]  # shared/nested: 0; unrolled: i, last beyond

    def _input(self, state: dict) -> torch.Tensor:
        """This iteration's input term x from the predictions (and the puzzle, if re-fed)."""
        kind, preds = self.cfg.input, state["preds"]
        if not self.cfg.feed_preds or self.cfg.pred_update == "norm_residual":  # only h_prev carries the state
            preds = torch.zeros_like(preds)
        if kind == "encode_once":
            return self.pred_proj(preds)
        if kind == "concat":
            return self.input_proj(torch.cat([state["onehot"], preds], dim=-1))
        parts = (self.digit_proj(state["onehot"][..., 1:]), self.pred_proj(preds), self.empty_embed(state["empty"]))
        return parts[0] + parts[1] + parts[2] if kind == "proj_add" else torch.cat(parts, dim=-1)

    # -- the step API

    def init_state(self, puzzle: torch.Tensor) -> dict:
        """puzzle: integer [B, C] (or [B, N, N]), 0 = blank, 1..N digits."""
        puzzle = self._check_puzzle(puzzle)
        B, C, cfg = puzzle.shape[0], self.n_cells, self.cfg
        new = dict(device=puzzle.device, dtype=torch.float32)
        onehot = (puzzle[..., None] == self.digit_ids).float()  # [B, C, N+1]; compile-friendly one_hot
        state = {"preds": torch.zeros(B, C, self.n, **new)}
        encoded = self.encoder(onehot) if cfg.input == "encode_once" else None
        if cfg.input != "encode_once":
            state["onehot"] = onehot
            if cfg.input != "concat":
                state["empty"] = (puzzle == 0).long()
        if cfg.sharing == "nested":  # TRM: answer state h and reasoning state z
            start = self.h_random if cfg.h_init == "random" else torch.zeros(2, 1, 1, cfg.d_model, **new)
            state["h"], state["z"] = (s.expand(B, C, -1) for s in start)
        elif cfg.h_init == "random":  # the log's fixed-init test: one fixed random start for every puzzle
            state["h"] = self.h_random.expand(B, -1, -1)
        else:
            state["h"] = encoded if encoded is not None else torch.zeros(B, C, cfg.d_model, **new)
        if encoded is not None and (cfg.sharing == "nested" or cfg.recurrence in ("none", "mem")):
            state["h0"] = encoded  # h is not carried as-is, so the encoded puzzle is re-added
        if cfg.recurrence == "mem":
            state["mem"] = torch.zeros(B, C, MEM_DIM, **new)
        if cfg.pred_update == "norm_residual":
            state["pred_state"] = torch.zeros(B, C, self.n, **new)
        return state

    def step(self, state: dict, i: int) -> tuple[dict, torch.Tensor]:
        """Iteration i (0-based): returns the new state and logits [B, C, N] (float32)."""
        if self.cfg.activation_checkpointing and self.training and torch.is_grad_enabled():
            return checkpoint(self._step, state, i, use_reentrant=False)
        return self._step(state, i)

    def _step(self, state: dict, i: int) -> tuple[dict, torch.Tensor]:
        cfg = self.cfg
        x = self._input(state)
        if "h0" in state:
            x = x + state["h0"]
        positions = cfg.pos_every_iter or i == 0
        pos = self._additive_pos() if positions else None
        rope = (self.rope_cos, self.rope_sin) if self.pos_kind == "rope2d" and positions else None
        if cfg.sharing == "nested":
            return self._nested_step(state, x if pos is None else x + pos, rope)

        h_prev, new = state["h"], {}
        if cfg.recurrence == "add":
            h = h_prev + x
        elif cfg.recurrence == "none":
            h = x
        elif cfg.recurrence == "concat":
            h = x + self.rec_proj(h_prev)
        elif cfg.recurrence == "gated":
            gate = torch.sigmoid(self.gate(torch.cat([x, h_prev], dim=-1)))
            h = x + gate * (h_prev - x)  # gate * h_prev + (1 - gate) * x
        else:  # mem
            h = x + self.mem_out(state["mem"])
        if pos is not None:
            h = h + pos
        h = self._core(i)(h, rope)
        if cfg.recurrence == "mem":
            new["mem"] = state["mem"] + self.mem_in(h)
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
        if self.cfg.pred_update == "norm_residual":  # pred_state += MLP([h, pred_state]), then RMS norm
            ps = state["pred_state"]
            ps = self.pred_norm(ps + self.pred_update(torch.cat([h, ps.to(h.dtype)], dim=-1)).float())
            new = {**new, "pred_state": ps}
            logits = logits + ps
        return {**state, **new, "h": h, "preds": F.softmax(logits, dim=-1)}, logits

    def forward(self, puzzle: torch.Tensor, iterations: int | None = None) -> torch.Tensor:
        """Logits [T, B, C, N] for T = iterations (default: the trained count)."""
        return self.rollout(puzzle, iterations)[0]

    def rollout(self, puzzle: torch.Tensor, iterations: int | None = None,
                carried: tuple[torch.Tensor, dict] | None = None) -> tuple[torch.Tensor, dict]:
        """(logits [T, B, C, N], final state). `carried` = (keep [B] bool, state): rows where keep is
        true start from that earlier state (a puzzle carried over from the previous batch), the rest
        from init_state(puzzle)."""
        T = self.cfg.iterations if iterations is None else iterations
        if isinstance(T, bool) or not isinstance(T, numbers.Integral) or T < 1:
            raise ValueError(f"iterations must be a positive int, got {T!r}")
        state = self.init_state(puzzle)
        if carried is not None:
            keep, old = carried
            state = {k: torch.where(keep.view(-1, *[1] * (v.dim() - 1)), old[k].to(v.dtype), v) for k, v in state.items()}
        logits = []
        for i in range(int(T)):
            state, out = self.step(state, i)
            logits.append(out)
        return torch.stack(logits), state

    def _check_puzzle(self, puzzle: torch.Tensor) -> torch.Tensor:
        if not torch.is_tensor(puzzle) or puzzle.is_floating_point() or puzzle.dtype == torch.bool:
            raise TypeError(f"puzzle must be an integer tensor (0 = blank, 1..{self.n}), got {type(puzzle).__name__} "
                            f"{getattr(puzzle, 'dtype', '')}")
        if puzzle.dim() == 3:
            puzzle = puzzle.flatten(1)
        if puzzle.dim() != 2 or puzzle.shape[1] != self.n_cells:
            raise ValueError(f"puzzle must have shape [B, {self.n_cells}] (or [B, {self.n}, {self.n}]) for a "
                             f"{self.n}x{self.n} model, got {list(puzzle.shape)}")
        puzzle = puzzle.long()
        if not torch.compiler.is_compiling() and ((puzzle < 0) | (puzzle > self.n)).any():
            raise ValueError(f"puzzle values must be 0 (blank) or digits 1..{self.n}")
        return puzzle


def _split_width(d: int) -> tuple[int, int, int]:
    """proj_concat widths for (digits, preds, empty): the log's 64/48/16 at d=128."""
    digits, empty = d // 2, max(1, d // 8)
    return digits, d - digits - empty, empty


def _init_weights(module: nn.Module) -> None:
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


def blank_accuracy(logits: torch.Tensor, answer: torch.Tensor, puzzle: torch.Tensor) -> torch.Tensor:
    """Per puzzle, the share of its blank cells predicted right [B]; a puzzle with nothing to fill
    scores 1 (vacuously right). logits [B, C, N], answer and puzzle [B, C]."""
    blank = puzzle == 0
    n_blank = blank.sum(1)
    right = ((logits.argmax(-1) + 1 == answer) & blank).sum(1) / n_blank.clamp(min=1)
    return torch.where(n_blank > 0, right, torch.ones_like(right))


def iteration_loss(logits: torch.Tensor, answer: torch.Tensor, mode: str = "all") -> torch.Tensor:
    """Mean cross-entropy over all cells: averaged over iterations ("all", intermediate
    supervision) or on the last iteration only ("final"). logits [T, B, C, N], answer [B, C] 1..N."""
    if mode not in ("all", "final"):
        raise ValueError(f"loss mode must be 'all' or 'final', got {mode!r}")
    if logits.dim() != 4:
        raise ValueError(f"logits must be [T, B, C, N], got shape {list(logits.shape)}")
    T, B, C, N = logits.shape
    answer = answer.reshape(answer.shape[0], -1) if answer.dim() == 3 else answer
    if answer.shape != (B, C):
        raise ValueError(f"answer must be [B, C] = [{B}, {C}] to match the logits, got {list(answer.shape)}")
    target = answer.long() - 1  # digits 1..N -> classes 0..N-1
    if mode == "final":
        return F.cross_entropy(logits[-1].reshape(-1, N), target.reshape(-1))
    # every iteration has B*C cells, so the mean over all of them is the mean of per-iteration means
    return F.cross_entropy(logits.reshape(-1, N), target.expand(T, B, C).reshape(-1))
