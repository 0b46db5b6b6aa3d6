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
import time
from dataclasses import dataclass

import torch
import torch._functorch.config
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


class CompiledStep:
    """A step function compiled by ``torch.compile`` into one graph, every shape static:
    one compilation per architecture, optimiser and slab shape (members, width, data),
    which inductor's on-disk cache then serves to later runs. Static shapes, not a
    dynamic member axis: each architecture trains one compiled slab per run, and a
    static graph compiles faster, cold and warm (160 members, width 64, one thread on
    the Intel Xeon: 24 s and 2.6 s against 31 s and 4.4 s with the member axis dynamic).

    The first call compiles and ``compile_seconds`` records how long it took. A compiler
    failure falls back to the eager step with one warning, or is raised with ``strict``.
    ``mode``: torch.compile's ("reduce-overhead": CUDA graphs); on a CPU
    (``device_type``) the graph gets inductor's C++ wrapper instead of its Python one,
    which calls the step's kernels with less overhead (5-10 % of a width-64 step at one
    thread; the kernels, and so the numbers, are the same)."""

    def __init__(self, step, strict: bool = False, mode: str = "default",
                 device_type: str = "cpu"):
        self.step, self.strict = step, strict
        # torch.compile takes a mode or inductor options, not both
        how = dict(options={"cpp_wrapper": True}) if device_type == "cpu" else dict(mode=mode)
        self.fn = torch.compile(step, fullgraph=True, dynamic=False, **how)
        self.how, self.compile_seconds = "compiled", None

    def __call__(self, state, batch, hyper):
        if self.how != "compiled":
            return self.step(state, batch, hyper)
        try:
            if self.compile_seconds is not None:
                return self.fn(state, batch, hyper)
            started = time.perf_counter()
            # the ops' autograd.Functions are traced into the graph, so AOTAutograd's
            # on-disk cache is safe for them; it is off for them by default, and without
            # it a warm compile redoes the joint-graph tracing (~2 s of a 5 s compile)
            with torch._functorch.config.patch(
                    autograd_cache_allow_custom_autograd_functions=True):
                out = self.fn(state, batch, hyper)
            self.compile_seconds = time.perf_counter() - started
            return out
        except Exception as error:  # noqa: BLE001 -- any compiler failure
            if self.strict:
                raise
            _warn_once(f"torch.compile failed ({type(error).__name__}: "
                       f"{str(error).splitlines()[0][:200]}); training eagerly")
            self.how = "eager"
            return self.step(state, batch, hyper)


# ``compile: auto`` trains a CPU slab eagerly below this many member-steps (members x
# steps), where compiling costs more than it saves. Measured at 1 thread, width 64
# (benchmarks/README.md): a compile costs ~3 s when its kernels are in the on-disk
# cache and 15-25 s when not (a fresh clone), and a compiled step saves ~0.3 ms per
# member-step over the eager one (20 members: 9.9 vs 4.5 ms per step), so compiling
# pays from ~10k member-steps warm and ~60k cold; 30k sits between the two.
AUTO_MIN_MEMBER_STEPS = 30_000


def compiled_or_eager(step, mode, device: torch.device, member_steps: int | None = None):
    """(``step`` as a :class:`CompiledStep`, "compiled"), or (``step``, why it runs
    eagerly). ``off`` never compiles; ``on`` always (no C++ compiler, which inductor's
    CPU code needs, is then an error); ``auto`` compiles unless there is no C++
    compiler (one warning) or a CPU slab has fewer than :data:`AUTO_MIN_MEMBER_STEPS`."""
    mode = {True: "on", False: "off"}.get(mode, mode)  # config.yaml's true/false
    if mode not in COMPILE_CHOICES:
        raise ValueError(f"compile must be one of {COMPILE_CHOICES}, got {mode!r}")
    if mode == "off":
        return step, "eager (compile: off)"
    if device.type == "cpu" and not compiler_available():
        if mode == "on":
            raise RuntimeError("compile: on, but no C++ compiler is on PATH for inductor")
        _warn_once("no C++ compiler found: training the slab eagerly (slower)")
        return step, "eager (no C++ compiler)"
    if (mode == "auto" and device.type == "cpu" and member_steps is not None
            and member_steps < AUTO_MIN_MEMBER_STEPS):
        return step, f"eager (compile auto: {member_steps} member-steps < {AUTO_MIN_MEMBER_STEPS})"
    return CompiledStep(step, strict=mode == "on", device_type=device.type), "compiled"
