"""The slab trainer: M runs of one architecture trained at once as one batched model.

A grid of small MLP runs is dominated by per-step Python and kernel-launch overhead when
each run trains alone. Here every parameter carries a leading member axis M
(``linears.0.weight`` is ``[M, out, in]``), linear layers are batched matmuls and the
architecture itself is the very :func:`wdnorm.models.forward` the ordinary module runs,
so a member extracted with :meth:`SlabResult.module` is exactly what was trained.

Members differ in learning rate, weight decay and seed. The optimisers are written out
(not one ``torch.optim`` instance per member) with per-member hyper-parameter tensors and
follow ``torch.optim.SGD`` / ``Adam`` / ``AdamW`` update rules step for step; the
equivalence tests hold them to that.

The loss is the *sum* of per-member mean losses, so each member's gradient is exactly its
standalone gradient: members share no parameters and the graph never mixes them.
"""

from __future__ import annotations

import math
import time
from dataclasses import asdict, dataclass, field
from typing import Callable

import numpy as np
import torch
from torch.nn import functional as F

from . import models
from .layout import run_id

OPTIMISERS = ("sgd", "adam", "adamw")


@dataclass(frozen=True)
class OptimiserConfig:
    algorithm: str = "sgd"      # sgd | adam | adamw
    momentum: float = 0.0       # sgd only (torch.optim.SGD semantics, no dampening)
    beta1: float = 0.9          # adam/adamw
    beta2: float = 0.999
    eps: float = 1e-8

    def __post_init__(self):
        if self.algorithm not in OPTIMISERS:
            raise ValueError(f"unknown optimiser algorithm {self.algorithm!r}; "
                             f"valid: {', '.join(OPTIMISERS)}")


@dataclass(frozen=True)
class Member:
    lr: float
    weight_decay: float
    seed: int

    @property
    def run_id(self) -> str:
        return run_id(self.lr, self.weight_decay, self.seed)


@dataclass(frozen=True)
class SlabConfig:
    arch: str
    d_in: int
    width: int
    depth: int
    n_classes: int
    optimiser: OptimiserConfig = field(default_factory=OptimiserConfig)
    decay_scope: str = "hidden"
    epochs: int = 10
    batch_size: int = 128
    eval_every: int = 1         # epochs between full train/test evaluations
    norm_eps: float = 1e-5
    bn_momentum: float = 0.1
    trace: bool = True          # per-step, per-layer dynamics (C3-C5 need them)

    def __post_init__(self):
        models.check_architecture(self.arch)
        models.check_decay_scope(self.decay_scope)
        for name in ("epochs", "batch_size", "eval_every"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be >= 1, got {getattr(self, name)!r}")

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> "SlabConfig":
        d = dict(d)
        d["optimiser"] = OptimiserConfig(**d["optimiser"])
        return cls(**d)

    def build_model(self) -> models.MLP:
        return models.build_model(self.arch, self.d_in, self.width, self.depth,
                                  self.n_classes, norm_eps=self.norm_eps,
                                  bn_momentum=self.bn_momentum)


def batch_generator(seed: int) -> torch.Generator:
    """The minibatch-order stream of a seed: separate from the init stream so that the
    order does not depend on how many random numbers the initialisation drew."""
    gen = torch.Generator(device="cpu")
    gen.manual_seed(10_007 * seed + 1)
    return gen


def epoch_batches(gen: torch.Generator, n: int, batch_size: int) -> torch.Tensor:
    """``[n_batches, batch_size]`` indices of one epoch (last partial batch dropped, so
    every step has the same shape and the same per-sample weight)."""
    n_batches = n // batch_size
    return torch.randperm(n, generator=gen)[: n_batches * batch_size].view(n_batches, batch_size)


def init_state(cfg: SlabConfig, seed: int) -> dict[str, torch.Tensor]:
    torch.manual_seed(seed)
    return cfg.build_model().state_dict()


class StackedOps:
    """``models.Ops`` over parameters with a leading member axis."""

    def __init__(self, params: dict, buffers: dict, training: bool, eps: float,
                 bn_momentum: float, arch: str):
        self.p, self.buffers, self.training = params, buffers, training
        self.eps, self.bn_momentum = eps, bn_momentum
        self.is_bn = models.archs.get(arch).norm == "batch"

    relu = staticmethod(torch.relu)

    def linear(self, h, name):
        w, b = self.p[f"{name}.weight"], self.p[f"{name}.bias"]
        if h.dim() == 2:  # the same input for every member (evaluation)
            return torch.matmul(h, w.transpose(1, 2)) + b.unsqueeze(1)
        return torch.baddbmm(b.unsqueeze(1), h, w.transpose(1, 2))

    def norm(self, h, name):
        g, b = self.p[f"{name}.weight"], self.p[f"{name}.bias"]
        m, n, d = h.shape
        if self.is_bn:
            # [M, B, d] -> [B, M*d]: BatchNorm over the batch per (member, feature) is
            # torch's own kernel, running statistics stay per member.
            flat = h.transpose(0, 1).reshape(n, m * d)
            out = F.batch_norm(flat, self.buffers[f"{name}.running_mean"].view(-1),
                               self.buffers[f"{name}.running_var"].view(-1),
                               g.reshape(-1), b.reshape(-1), self.training,
                               self.bn_momentum, self.eps)
            return out.view(n, m, d).transpose(0, 1)
        # per-member affine (F.layer_norm's must be shared): one fused pass
        return torch.addcmul(b.unsqueeze(1), F.layer_norm(h, (d,), eps=self.eps), g.unsqueeze(1))


@dataclass
class SlabResult:
    cfg: SlabConfig
    members: list[Member]
    state: dict[str, torch.Tensor]          # stacked, [M, ...], on CPU
    history: dict[str, np.ndarray]          # per evaluation: epoch, step, [E, M] metrics
    trace: dict[str, np.ndarray]            # per step: [T, M] / [T, M, L]
    diverged_step: np.ndarray               # [M], -1 where the run never diverged
    train_seconds: float

    def state_dict(self, i: int) -> dict[str, torch.Tensor]:
        return {k: v[i].clone() for k, v in self.state.items()}

    def module(self, i: int) -> models.MLP:
        net = self.cfg.build_model()
        net.load_state_dict(self.state_dict(i))
        return net.eval()

    def member_history(self, i: int) -> dict[str, list]:
        return {k: (v[:, i] if v.ndim == 2 else v).tolist() for k, v in self.history.items()}

    def member_trace(self, i: int) -> dict[str, np.ndarray]:
        return {k: v[:, i] for k, v in self.trace.items()}


def _per_member(x: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
    """View a [M] tensor so it broadcasts against a stacked parameter."""
    return x.view(-1, *([1] * (like.dim() - 1)))


def _linear_names(cfg: SlabConfig) -> list[str]:
    return [f"linears.{i}" for i in range(models.n_linear_layers(cfg.arch, cfg.depth))]


def _named_views(leaves: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Parameter names of the module -> tensors. A linear layer's leaf is one
    ``[M, out, in + 1]`` tensor holding (W | b): the layer's symmetry group, its decay,
    its norm and its angle are all about the pair, so one tensor serves them in one op."""
    views = {}
    for name, leaf in leaves.items():
        if name.startswith("linears."):
            views[f"{name}.weight"], views[f"{name}.bias"] = leaf[..., :-1], leaf[..., -1]
        else:
            views[name] = leaf
    return views


@torch.no_grad()
def evaluate(cfg: SlabConfig, params: dict, buffers: dict, x: torch.Tensor,
             y: torch.Tensor, chunk: int = 8192) -> tuple[torch.Tensor, torch.Tensor]:
    """Mean cross-entropy and accuracy of every member on (x, y), eval mode: [M], [M]."""
    ops = StackedOps(params, buffers, False, cfg.norm_eps, cfg.bn_momentum, cfg.arch)
    m = next(iter(params.values())).shape[0]
    loss_sum = torch.zeros(m, dtype=torch.float64, device=x.device)
    correct = torch.zeros(m, dtype=torch.float64, device=x.device)
    for start in range(0, len(x), chunk):
        xb, yb = x[start:start + chunk], y[start:start + chunk]
        logits = models.forward(cfg.arch, cfg.depth, xb, ops)          # [M, n, C]
        ce = F.cross_entropy(logits.reshape(-1, logits.shape[-1]), yb.repeat(m),
                             reduction="none").view(m, -1)
        loss_sum += ce.sum(1, dtype=torch.float64)
        correct += (logits.argmax(-1) == yb).sum(1, dtype=torch.float64)
    return (loss_sum / len(x)).float(), (correct / len(x)).float()


def train_slab(cfg: SlabConfig, members: list[Member], x_train: torch.Tensor,
               y_train: torch.Tensor, x_test: torch.Tensor, y_test: torch.Tensor,
               device: str | torch.device = "cpu", max_steps: int | None = None,
               reference_sq_norms: np.ndarray | None = None,
               log: Callable[[str], None] | None = None) -> SlabResult:
    """Train every member for ``cfg.epochs`` epochs (or ``max_steps`` steps).

    ``reference_sq_norms`` ([T+1, M, L], squared norms of each hidden layer's (W, b) in a
    reference run, usually one *with* weight decay) turns on the Hoffer et al. mimic:
    each hidden layer's learning rate at step t is lr * ||w_t||^2 / ||w_ref,t||^2, so the
    member's effective learning rate lr/||w||^2 follows the reference run's.
    """
    if not members:
        raise ValueError("a slab needs at least one member")
    device = torch.device(device)
    if device.type == "cuda":  # TF32 off: keep GPU numbers close to the CPU's
        torch.backends.cuda.matmul.allow_tf32 = False
        torch.backends.cudnn.allow_tf32 = False
    opt = cfg.optimiser
    m_count = len(members)
    x_train, y_train = x_train.to(device), y_train.to(device)
    x_test, y_test = x_test.to(device), y_test.to(device)
    n_train = len(x_train)
    if cfg.batch_size > n_train:
        raise ValueError(f"batch_size {cfg.batch_size} exceeds the {n_train} training samples")
    steps_per_epoch = n_train // cfg.batch_size
    total_steps = cfg.epochs * steps_per_epoch
    if max_steps is not None:
        total_steps = min(total_steps, max_steps)

    # -- state: stacked parameters, buffers, optimiser state ------------------------
    inits = [init_state(cfg, mem.seed) for mem in members]
    template = cfg.build_model()
    param_names = [n for n, _ in template.named_parameters()]
    buffer_names = [n for n, _ in template.named_buffers()]

    def stacked(name):
        return torch.stack([s[name] for s in inits]).to(device)

    linear_names = _linear_names(cfg)
    leaves = {name: torch.cat([stacked(f"{name}.weight"), stacked(f"{name}.bias").unsqueeze(-1)],
                              -1) for name in linear_names}
    leaves.update({n: stacked(n) for n in param_names if not n.startswith("linears.")})
    for leaf in leaves.values():
        leaf.requires_grad_()
    buffers = {n: stacked(n) for n in buffer_names}
    decayed_params = set(models.decayed_names(
        models.parameter_groups(cfg.arch, cfg.depth, param_names), cfg.decay_scope))
    decayed = {n for n in leaves if n in decayed_params or f"{n}.weight" in decayed_params}
    # hyper-parameters in double: torch.optim computes its scalar factors from python
    # floats and rounds them once; _update does the same
    lr = torch.tensor([mem.lr for mem in members], dtype=torch.float64, device=device)
    wd = torch.tensor([mem.weight_decay for mem in members], dtype=torch.float64, device=device)
    leaf_lr = {n: _hyper(lr, p) for n, p in leaves.items()}
    leaf_wd = {n: _hyper(wd if n in decayed else torch.zeros_like(wd), p)
               for n, p in leaves.items()}
    moments = {n: torch.zeros_like(p) for n, p in leaves.items()}
    moments2 = {n: torch.zeros_like(p) for n, p in leaves.items()} if opt.algorithm != "sgd" else {}
    n_layers = len(linear_names)
    layer_lr = lr.float().unsqueeze(1).expand(m_count, n_layers).contiguous()

    # -- batch streams: one per distinct seed, shared by the members that use it ----
    seeds = sorted({mem.seed for mem in members})
    stream_of = torch.tensor([seeds.index(mem.seed) for mem in members], device=device)
    gens = [batch_generator(s) for s in seeds]

    ref = None
    if reference_sq_norms is not None:
        ref = torch.as_tensor(reference_sq_norms, dtype=torch.float32, device=device)
        if ref.shape[0] < total_steps + 1 or ref.shape[1:] != (m_count, n_layers):
            raise ValueError(f"reference_sq_norms has shape {tuple(ref.shape)}, need at least "
                             f"({total_steps + 1}, {m_count}, {n_layers})")

    # -- records ---------------------------------------------------------------------
    tracing = cfg.trace or ref is not None
    trace = {"loss": torch.zeros(total_steps, m_count, device=device)}
    if tracing:
        for key in ("sq_norm", "grad_sq_norm", "cos_wg", "angle", "lr"):
            trace[key] = torch.zeros(total_steps, m_count, n_layers, device=device)
        trace["sq_norm_end"] = torch.zeros(1, m_count, n_layers, device=device)
    history: dict[str, list] = {k: [] for k in ("epoch", "step", "train_loss", "train_acc",
                                                "test_loss", "test_acc")}
    alive = torch.ones(m_count, dtype=torch.bool, device=device)
    diverged_step = torch.full((m_count,), -1, dtype=torch.long, device=device)

    def record_eval(epoch: int, step: int):
        views = _named_views({n: p.detach() for n, p in leaves.items()})
        tl, ta = evaluate(cfg, views, buffers, x_train, y_train)
        vl, va = evaluate(cfg, views, buffers, x_test, y_test)
        for key, value in (("train_loss", tl), ("train_acc", ta), ("test_loss", vl),
                           ("test_acc", va)):
            history[key].append(value.cpu())
        history["epoch"].append(epoch)
        history["step"].append(step)

    def layer_sq_norms() -> torch.Tensor:
        return torch.stack([leaves[n].detach().square().sum((1, 2)) for n in linear_names], 1)

    start_time = time.perf_counter()
    record_eval(0, 0)
    step, epoch = 0, 0
    leaf_names = list(leaves)
    while step < total_steps:
        epoch += 1
        orders = torch.stack([epoch_batches(g, n_train, cfg.batch_size) for g in gens]).to(device)
        for b in range(steps_per_epoch):
            if step >= total_steps:
                break
            idx = orders[stream_of, b]                                   # [M, B]
            ops = StackedOps(_named_views(leaves), buffers, True, cfg.norm_eps,
                             cfg.bn_momentum, cfg.arch)
            logits = models.forward(cfg.arch, cfg.depth, x_train[idx], ops)
            losses = F.cross_entropy(logits.reshape(-1, cfg.n_classes), y_train[idx].reshape(-1),
                                     reduction="none").view(m_count, -1).mean(1)
            grads = dict(zip(leaf_names, torch.autograd.grad(
                losses.sum(), [leaves[n] for n in leaf_names])))
            finite = torch.isfinite(losses)
            diverged_step = torch.where(alive & ~finite, torch.full_like(diverged_step, step),
                                        diverged_step)
            alive = alive & finite
            trace["loss"][step] = losses.detach()

            with torch.no_grad():
                old = {n: p.detach() for n, p in leaves.items()}
                if ref is not None:
                    scale = (layer_sq_norms()[:, :-1] / ref[step, :, :-1]).double()
                    for i, name in enumerate(linear_names[:-1]):
                        leaf_lr[name] = _hyper(lr * scale[:, i], old[name])
                    layer_lr = torch.stack([leaf_lr[n][1].view(-1) for n in linear_names], 1)
                for name in leaf_names:
                    new_p = _update(opt, old[name], grads[name], leaf_lr[name], leaf_wd[name],
                                    moments, moments2, name, step + 1)
                    # a diverged member is frozen; its optimiser state may go NaN unread
                    leaves[name] = torch.where(_per_member(alive, new_p), new_p,
                                               old[name]).requires_grad_()
                if tracing:
                    _record_step(trace, step, linear_names, old, grads, leaves, layer_lr)
            step += 1
        evaluated = epoch % cfg.eval_every == 0 or step >= total_steps
        if evaluated:
            record_eval(epoch, step)
        if log is not None:  # one line per epoch: the job's progress in its log
            batch_loss = trace["loss"][step - steps_per_epoch:step].nanmean()
            line = (f"epoch {epoch}/{cfg.epochs} step {step}/{total_steps} "
                    f"minibatch_loss {batch_loss:.4f} alive {int(alive.sum())}/{m_count} "
                    f"{time.perf_counter() - start_time:.1f}s")
            if evaluated:
                ta, va = history["train_acc"][-1], history["test_acc"][-1]
                line += (f" | train_acc {ta.nanmean():.3f} test_acc {va.nanmean():.3f} "
                         f"(min {va.min():.3f} max {va.max():.3f})")
            log(line)
    for name in buffer_names:
        if name.endswith("num_batches_tracked"):  # F.batch_norm does not count; modules do
            buffers[name].fill_(step)
    if "sq_norm_end" in trace:
        trace["sq_norm_end"][0] = layer_sq_norms()
    train_seconds = time.perf_counter() - start_time

    hist_np = {k: (np.array(v) if k in ("epoch", "step") else torch.stack(v).numpy())
               for k, v in history.items()}
    return SlabResult(
        cfg=cfg, members=list(members),
        state={**{n: v.contiguous().cpu()
                  for n, v in _named_views({k: p.detach() for k, p in leaves.items()}).items()},
               **{n: b.cpu() for n, b in buffers.items()}},
        history=hist_np, trace={k: v.cpu().numpy() for k, v in trace.items()},
        diverged_step=diverged_step.cpu().numpy(), train_seconds=train_seconds)


def _hyper(x64: torch.Tensor, like: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """A per-member hyper-parameter shaped to broadcast on ``like``, in double and float."""
    x64 = _per_member(x64, like)
    return x64, x64.float()


def _update(opt: OptimiserConfig, p, g, lr, wd, moments, moments2, name, t):
    """One optimiser step for a stacked parameter, following torch.optim's formulas.
    ``lr``, ``wd``: (double, float) pairs from :func:`_hyper`."""
    (lr64, lr32), (wd64, wd32) = lr, wd
    if opt.algorithm == "sgd":
        d_p = torch.addcmul(g, wd32, p)  # g + wd p: coupled L2, as torch.optim.SGD
        if opt.momentum != 0:
            d_p = moments[name].mul_(opt.momentum).add_(d_p)
        return torch.addcmul(p, lr32, d_p, value=-1)
    if opt.algorithm == "adamw":
        p = p * (1 - lr64 * wd64).float()  # decoupled decay
    else:
        g = torch.addcmul(g, wd32, p)
    m = moments[name].lerp_(g, 1 - opt.beta1)
    v = moments2[name].mul_(opt.beta2).addcmul_(g, g, value=1 - opt.beta2)
    # scalars in double then rounded once, as torch.optim does with its python floats
    step_size = (lr64 / (1 - opt.beta1 ** t)).float()
    denom = v.sqrt() / math.sqrt(1 - opt.beta2 ** t) + opt.eps
    return p - step_size * (m / denom)


def _gram(*tensors: torch.Tensor) -> torch.Tensor:
    """Per member, the Gram matrix of the flattened tensors: [M, k, k] in one GEMM."""
    flat = torch.stack([t.reshape(t.shape[0], -1) for t in tensors], 1)
    return torch.bmm(flat, flat.transpose(1, 2))


def _record_step(trace, step, linear_names, old, grads, new, layer_lr):
    """Per linear layer w = (W | b), from one Gram matrix of (w_t, g_t, u_t = w_{t+1} - w_t):
    ||w_t||^2, ||g_t||^2, cos(w_t, g_t) and the angle between w_t and w_{t+1},
    atan2(|u_perp|, |w_t| + u.w_t/|w_t|) -- stable where arccos of a cosine within 1e-5
    of 1 would lose most digits in float32."""
    gram = torch.stack([_gram(old[n], grads[n], new[n].detach() - old[n])
                        for n in linear_names], 1)                     # [M, L, 3, 3]
    ww, gg, uu = gram[..., 0, 0], gram[..., 1, 1], gram[..., 2, 2]
    wg, wu = gram[..., 0, 1], gram[..., 0, 2]
    norm = ww.sqrt()
    trace["sq_norm"][step] = ww
    trace["grad_sq_norm"][step] = gg
    trace["cos_wg"][step] = wg / (ww * gg).sqrt().clamp_min(1e-30)
    u_perp = (uu - wu * wu / ww).clamp_min(0).sqrt()
    trace["angle"][step] = torch.atan2(u_perp, norm + wu / norm)
    trace["lr"][step] = layer_lr
