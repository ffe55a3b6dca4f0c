"""The optimisers and the weight average the loop steps: AdamW with its decay groups, SAM around it, Muon
beside it (the log's early scripts), and EMA shadow weights. Each keeps torch's optimiser surface (step,
zero_grad, state_dict, param_groups), so the loop and the checkpoints treat them alike."""
from __future__ import annotations

import copy

import torch

from lib.config import RunConfig


def make_optimizer(model: torch.nn.Module, cfg: RunConfig, device: torch.device):
    """AdamW, SAM around it, or Muon on the matrices beside it. optim.decay=all decays every parameter, as
    torch's AdamW does when given model.parameters() (the log); matrices spares biases, norms and embeddings."""
    params = [p for p in model.parameters() if p.requires_grad]
    if cfg.optim.name == "muon":
        return MuonAdamW(params, cfg, device)
    if cfg.optim.decay == "all":
        groups = [{"params": params, "weight_decay": cfg.optim.weight_decay}]
    else:
        embeddings = {id(m.weight) for m in model.modules() if isinstance(m, torch.nn.Embedding)}
        names = {id(p): name for name, p in model.named_parameters()}
        spared = [p for p in params if p.dim() < 2 or id(p) in embeddings or "emb" in names[id(p)].lower()]
        decay = [p for p in params if all(p is not q for q in spared)]
        groups = [{"params": decay, "weight_decay": cfg.optim.weight_decay},
                  {"params": spared, "weight_decay": 0.0}]
    opt = torch.optim.AdamW(groups, lr=cfg.optim.lr, betas=(cfg.optim.beta1, cfg.optim.beta2),
                            fused=device.type == "cuda")
    return SAM(opt, cfg.optim.sam_rho) if cfg.optim.name == "sam" else opt


class SAM:
    """Sharpness-aware minimisation (Foret et al. 2021) around a base optimiser. step(closure):
    gradient at w, move to w + rho * g / |g|, gradient there, move back, base step with it.
    Returns the first closure call's result (the figures at w itself)."""

    def __init__(self, base: torch.optim.Optimizer, rho: float):
        self.base, self.rho = base, rho
        self.param_groups = base.param_groups

    @torch.no_grad()
    def step(self, closure):
        with torch.enable_grad():
            result = closure()
        params = [p for g in self.param_groups for p in g["params"] if p.grad is not None]
        norm = torch.linalg.vector_norm(torch.stack([torch.linalg.vector_norm(p.grad) for p in params]))
        eps = torch._foreach_mul([p.grad for p in params], float(self.rho / (norm + 1e-12)))
        torch._foreach_add_(params, eps)
        with torch.enable_grad():
            closure()
        torch._foreach_sub_(params, eps)
        self.base.step()
        return result

    def zero_grad(self, set_to_none: bool = True):
        self.base.zero_grad(set_to_none=set_to_none)

    def state_dict(self):
        return self.base.state_dict()

    def load_state_dict(self, state):
        self.base.load_state_dict(state)


class Muon(torch.optim.Optimizer):
    """Momentum orthogonalised by Newton-Schulz, as the log's early scripts wrote it (sudoku.py): Nesterov
    momentum 0.95, then the update of a matrix is G / |G|_F pushed toward an orthogonal matrix by 5 steps
    of G = 1.5 G - 0.5 G G^T G, scaled by sqrt(max(1, rows / cols)). No weight decay."""

    def __init__(self, params, lr: float, momentum: float = 0.95, ns_steps: int = 5):
        super().__init__(params, dict(lr=lr, momentum=momentum, ns_steps=ns_steps))

    @torch.no_grad()
    def step(self, closure=None):
        result = None
        if closure is not None:
            with torch.enable_grad():
                result = closure()
        for group in self.param_groups:
            for p in group["params"]:
                if p.grad is None:
                    continue
                buf = self.state[p].setdefault("momentum_buffer", torch.zeros_like(p.grad))
                buf.mul_(group["momentum"]).add_(p.grad)
                g = p.grad.add(buf, alpha=group["momentum"])
                g = newton_schulz(g.view(g.shape[0], -1), group["ns_steps"]).view(g.shape)
                p.add_(g * max(1, g.shape[0] / g.shape[1]) ** 0.5, alpha=-group["lr"])
        return result


def newton_schulz(g: torch.Tensor, steps: int) -> torch.Tensor:
    g = g / (g.norm() + 1e-7)
    for _ in range(steps):
        g = 1.5 * g - 0.5 * (g @ g.T) @ g
    return g


class MuonAdamW:
    """The log's early optimiser pair: Muon (optim.muon_lr) on every parameter with 2 or more dimensions,
    embeddings included, and AdamW (optim.lr, optim.weight_decay) on the rest (biases, norms). The lr
    schedule scales both: each group keeps its peak in "peak_lr"."""

    def __init__(self, params, cfg: RunConfig, device: torch.device):
        matrices, rest = [p for p in params if p.dim() >= 2], [p for p in params if p.dim() < 2]
        self.muon = Muon(matrices, lr=cfg.optim.muon_lr)
        self.adamw = torch.optim.AdamW(rest, lr=cfg.optim.lr, betas=(cfg.optim.beta1, cfg.optim.beta2),
                                       weight_decay=cfg.optim.weight_decay, fused=device.type == "cuda")
        for opt, peak in ((self.muon, cfg.optim.muon_lr), (self.adamw, cfg.optim.lr)):
            for group in opt.param_groups:
                group["peak_lr"] = peak
        self.param_groups = self.muon.param_groups + self.adamw.param_groups

    def step(self, closure):
        with torch.enable_grad():
            result = closure()
        self.muon.step()
        self.adamw.step()
        return result

    def zero_grad(self, set_to_none: bool = True):
        self.muon.zero_grad(set_to_none=set_to_none)
        self.adamw.zero_grad(set_to_none=set_to_none)

    def state_dict(self):
        return {"muon": self.muon.state_dict(), "adamw": self.adamw.state_dict()}

    def load_state_dict(self, state):
        self.muon.load_state_dict(state["muon"])
        self.adamw.load_state_dict(state["adamw"])


class EMA:
    """Shadow weights: shadow = decay * shadow + (1 - decay) * live, after every step."""

    def __init__(self, model: torch.nn.Module, decay: float):
        self.decay = decay
        self.model = copy.deepcopy(model).eval().requires_grad_(False)

    @torch.no_grad()
    def update(self, model: torch.nn.Module):
        torch._foreach_lerp_(list(self.model.parameters()), list(model.parameters()), 1 - self.decay)
        for shadow, live in zip(self.model.buffers(), model.buffers()):
            shadow.copy_(live)
