"""One training step of a whole slab as a pure function: forward, backward, the
optimiser update of every member and the per-layer trace statistics.

Pure (tensors in, tensors out) so that ``torch.compile`` can fuse it into one graph;
the same function runs eagerly where compilation is off or unavailable. The optimiser
formulas follow ``torch.optim.SGD``/``Adam``/``AdamW`` step for step (the equivalence
tests hold them to that); the loss is the *sum* of per-member mean losses, so every
member's gradient is exactly its standalone gradient.
"""

from __future__ import annotations

import logging
import os
import shutil
from dataclasses import dataclass

import torch
from torch.nn import functional as F

from .. import models
from ..optimisers import Optimiser
from .ops import TrainOps, member_view

log = logging.getLogger("wdnorm")


@dataclass(frozen=True)
class StepPlan:
    """What the step function needs to know that does not change between steps."""
    arch: str
    depth: int
    n_classes: int
    optimiser: Optimiser          # the record whose update every parameter takes
    hyper: dict                   # its hyper-parameters (plain floats: graph constants)
    bn_momentum: float
    linear_names: tuple[str, ...]
    batch_norm: bool
    trace: bool
    mimic: bool = False  # a member follows another's norms (Hoffer et al.)


# the per-step trace of every member and linear layer, in the order the step returns it
TRACE_KEYS = ("sq_norm", "grad_sq_norm", "cos_wg", "angle", "lr")


def _loss(plan: StepPlan, params, buffers, x, y, eps):
    """Sum over members of their mean cross-entropy on x [M, B, D], y [M, B]; the
    forward runs feature-major (``TrainOps``), so the logits come out [M, C, B]."""
    ops = TrainOps(params, buffers, eps, plan.batch_norm, plan.bn_momentum)
    logits = models.forward(plan.arch, plan.depth, x.transpose(1, 2), ops)
    losses = F.cross_entropy(logits, y, reduction="none").mean(1)
    return losses.sum(), (losses.detach(), ops.new_buffers)


def _gradients(loss, params: dict):
    """(d loss / d params, aux) of ``loss(params) -> (value, aux)``. Under
    ``torch.compile``, ``torch.func.grad`` (traced into the graph); eagerly, plain
    autograd, which runs the ops' hand-written backward without functorch's per-call
    Python overhead (3x slower steps on small slabs)."""
    if torch.compiler.is_compiling():
        return torch.func.grad(loss, has_aux=True)(params)
    leaves = {name: p.detach().requires_grad_() for name, p in params.items()}
    with torch.enable_grad():
        value, aux = loss(leaves)
        grads = torch.autograd.grad(value, list(leaves.values()))
    return dict(zip(leaves, grads)), aux


def _layer_stats(w, g, u):
    """Per member: ||w||², ||g||², <w,g>, ||u||², <w,u> as fused reductions (no stacked
    copies of the three tensors): [M, 5]."""
    dims = tuple(range(1, w.dim()))
    return torch.stack([(w * w).sum(dims), (g * g).sum(dims), (w * g).sum(dims),
                        (u * u).sum(dims), (w * u).sum(dims)], 1)


def _trace_rows(stats, lr_layer):
    """From (||w||², ||g||², <w,g>, ||u||², <w,u>) [M, L, 5]: the rows of
    :data:`TRACE_KEYS` [5, M, L] -- the squared norm, the gradient's, cos(w, g), the
    angle between w_t and w_{t+1}, atan2(|u_perp|, |w| + <u,w>/|w|) (stable where arccos
    of a cosine within 1e-5 of 1 would lose most digits in float32), and the LR used."""
    ww, gg, wg, uu, wu = stats.unbind(-1)
    norm = ww.sqrt()
    cos = wg / (ww * gg).sqrt().clamp_min(1e-30)
    u_perp = (uu - wu * wu / ww).clamp_min(0).sqrt()
    return torch.stack([ww, gg, cos, torch.atan2(u_perp, norm + wu / norm), lr_layer])


def _mimic_lr(plan: StepPlan, params, hyper):
    """Hoffer's mimic: each group layer's LR times ||w||^2 / ||w_ref||^2, read from the
    reference member of this very slab at this very step."""
    lr_layer = hyper["lr_layer"]
    if not plan.mimic:
        return lr_layer
    sq = torch.stack([params[n].square().sum((1, 2)) for n in plan.linear_names], 1)
    return torch.where(hyper["mimic_mask"], lr_layer * (sq / sq[hyper["mimic_ref"]]), lr_layer)


def make_step(plan: StepPlan):
    """The step function ``step(state, batch, hyper) -> (state, losses, rows)``.

    ``state``: dict with ``params``, ``opt_state`` (per parameter, the tuple of the
    optimiser record's state tensors), ``buffers`` (dicts of stacked tensors), ``alive``
    [M] and ``diverged_step`` [M] (-1, or the step at which the member's loss became
    non-finite). ``batch``: ``x`` [N, D] and ``y`` [N] (the training set), ``rows``
    [S, B] (this step's rows of each seed's stream), ``stream_of`` [M] (each member's
    stream) and ``step`` (0-d: the step's index): the gather happens in the graph.
    ``hyper``: ``lr_layer`` [M, L] (each linear layer's LR this step, equivalents'
    schedule included), ``lr_other`` [M], ``wd`` (leaf name -> [M]), ``eps`` [M],
    ``mimic_ref`` [M] (index of the member whose norms a mimic follows; itself
    otherwise), ``mimic_mask`` [M, L], ``t`` (step count, Adam). ``rows``: the trace
    (:data:`TRACE_KEYS` x [M, L]), None without ``plan.trace``."""

    def step(state, batch, hyper):
        params = state["params"]
        idx = batch["rows"][batch["stream_of"]]                               # [M, B]
        x, y = batch["x"][idx], batch["y"][idx]
        grads, (losses, new_buffers) = _gradients(
            lambda p: _loss(plan, p, state["buffers"], x, y, hyper["eps"]), params)
        alive = state["alive"] & torch.isfinite(losses)
        lr_layer = _mimic_lr(plan, params, hyper)
        new_p, new_opt, stats = {}, {}, []
        for name, p in params.items():
            if name in plan.linear_names:
                lr = lr_layer[:, plan.linear_names.index(name)]
            else:
                lr = hyper["lr_other"]
            p_new, new_opt[name] = _update(plan, p, grads[name], lr, hyper["wd"][name],
                                           state["opt_state"][name], hyper["t"])
            # a diverged member is frozen; its optimiser state may go NaN unread
            new_p[name] = torch.where(member_view(alive, p), p_new, p)
            if plan.trace and name in plan.linear_names:
                stats.append(_layer_stats(p, grads[name], new_p[name] - p))
        buffers = {**state["buffers"], **{k: torch.where(member_view(alive, v), v,
                                                         state["buffers"][k])
                                          for k, v in new_buffers.items()}}
        diverged = torch.where(state["alive"] & ~alive, batch["step"], state["diverged_step"])
        new_state = dict(params=new_p, opt_state=new_opt, buffers=buffers, alive=alive,
                         diverged_step=diverged)
        rows = _trace_rows(torch.stack(stats, 1), lr_layer) if stats else None
        return new_state, losses, rows

    return step


def _update(plan: StepPlan, p, g, lr, wd, opt_state, t):
    """One optimiser step of a stacked parameter: the record's update, with the
    per-member learning rate and weight decay viewed to broadcast against ``p``."""
    return plan.optimiser.update(p, g, opt_state, member_view(lr, p), member_view(wd, p), t,
                                 plan.hyper)


# -- compilation -----------------------------------------------------------------------

COMPILE_CHOICES = ("auto", "on", "off")
_warned: set[str] = set()


def compiler_available() -> bool:
    """Inductor's CPU code needs a C++ compiler."""
    return any(shutil.which(c) for c in (os.environ.get("CXX", "g++"), "g++", "c++", "clang++"))


def use_inductor_cache(cache_dir) -> None:
    """Keep inductor's compiled kernels in the project's cache, so later jobs (and later
    runs) compile from disk in seconds instead of tens of seconds."""
    if cache_dir is not None:
        os.environ.setdefault("TORCHINDUCTOR_CACHE_DIR", str(cache_dir))


def _warn_once(message: str) -> None:
    if message not in _warned:
        _warned.add(message)
        log.warning(message)


def compiled_or_eager(step, mode: str, device: torch.device):
    """``step`` compiled with ``torch.compile`` when ``mode`` allows it, else eager.
    A failure to compile (no C++ compiler, an unsupported op) falls back to eager with
    one warning; ``mode == "on"`` makes it an error instead."""
    mode = {True: "on", False: "off"}.get(mode, mode)  # config.yaml's true/false
    if mode not in COMPILE_CHOICES:
        raise ValueError(f"compile must be one of {COMPILE_CHOICES}, got {mode!r}")
    if mode == "off":
        return step, "eager"
    if device.type == "cpu" and not compiler_available():
        if mode == "on":
            raise RuntimeError("compile: on, but no C++ compiler is on PATH for inductor")
        _warn_once("no C++ compiler found: training the slab eagerly (slower)")
        return step, "eager"
    compiled = torch.compile(step, fullgraph=True, dynamic=False)
    state = {"fn": compiled, "how": "compiled"}

    def run(*args):
        if state["how"] == "compiled":
            try:
                return state["fn"](*args)
            except Exception as error:  # noqa: BLE001 -- any compiler failure
                if mode == "on":
                    raise
                _warn_once(f"torch.compile failed ({type(error).__name__}: "
                           f"{str(error).splitlines()[0][:200]}); training eagerly")
                state.update(fn=step, how="eager")
        return state["fn"](*args)

    run.how = lambda: state["how"]
    return run, "compiled"
