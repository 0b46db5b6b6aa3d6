"""The slab trainer: M runs of one architecture trained at once as one batched model.

Every parameter carries a leading member axis M (a linear layer is one ``[M, out, in+1]``
tensor holding (W | b)), linear layers are batched matmuls and the architecture is the
very :func:`wdnorm.models.forward` the ordinary module runs, so a member extracted with
:meth:`SlabResult.module` is exactly what was trained. Members differ in learning rate,
weight decay, seed and run kind (:data:`wdnorm.engine.spec.KINDS`); all of them train
together, the LR-schedule equivalents and the mimic beside the grid runs they stand for.
"""

from __future__ import annotations

import ctypes
import time
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Callable

import numpy as np
import torch

from . import state as slab_state
from .batches import epoch_batches
from .evaluate import evaluate, recalibrate_batchnorm
from .interrupt import StopRequest, StopRequested
from .setup import Hyper, prepare_slab
from .spec import Member, SlabConfig, check_members
from .step import TRACE_KEYS, CompiledStep, StepPlan, compiled_or_eager, make_step

@dataclass(frozen=True)
class Checkpointing:
    path: Path
    every_steps: int = 1000
    every_seconds: float = 600.0
    code: str = ""  # the training code's hash: a checkpoint of other code is not resumed


@dataclass
class SlabResult:
    cfg: SlabConfig
    members: list[Member]
    state: dict[str, torch.Tensor]          # stacked, [M, ...], module names, on CPU
    history: dict[str, np.ndarray]          # per evaluation: epoch, step, [E, M(, norms)]
    trace: dict[str, np.ndarray]            # per step: [T, M] / [T, M, L]; k [T+1, M]
    diverged_step: np.ndarray               # [M], -1 where the run never diverged
    eps_final: np.ndarray                   # [M], each member's ε at the end
    train_seconds: float
    compiled: bool = False
    compile_seconds: float | None = None    # the first step's compilation (compiled only)
    eval_seconds: float = 0.0               # this job's evaluations (inside train_seconds)
    resumed_from: int | None = None

    def state_dict(self, i: int) -> dict[str, torch.Tensor]:
        return {k: v[i].clone() for k, v in self.state.items()}

    def module(self, i: int):
        """Member ``i`` as an ordinary module, with the ε it ended at (an exact
        equivalent's norms run at ε/k_T², so its weights mean nothing without it)."""
        net = replace(self.cfg, norm_eps=float(self.eps_final[i])).build_model()
        net.load_state_dict(self.state_dict(i))
        return net.eval()

    def member_history(self, i: int) -> dict[str, list]:
        return {k: (v[:, i] if v.ndim >= 2 else v).tolist() for k, v in self.history.items()}

    def member_trace(self, i: int) -> dict[str, np.ndarray]:
        return {k: v[:, i] for k, v in self.trace.items()}


def train_slab(cfg: SlabConfig, members: list[Member], x_train: torch.Tensor,
               y_train: torch.Tensor, x_test: torch.Tensor, y_test: torch.Tensor,
               device: str | torch.device = "cpu", max_steps: int | None = None,
               log: Callable[[str], None] | None = None, compile: str = "off",
               checkpoint: Checkpointing | None = None, data_id: str = "",
               x_val: torch.Tensor | None = None,
               y_val: torch.Tensor | None = None, label: str = "",
               stop: StopRequest | None = None) -> SlabResult:
    """Train every member for ``cfg.epochs`` epochs (or stop after ``max_steps`` steps:
    the schedules are the full run's either way), resuming
    from ``checkpoint`` when it holds a matching earlier state. Each evaluation also
    scores the validation split ``x_val, y_val`` when it has rows (NaN otherwise).
    ``label`` names the slab in every log line (e.g. dataset/optimiser/arch; default
    the optimiser's algorithm and the architecture). Once ``stop`` is set (see
    :func:`wdnorm.engine.interrupt.on_signals`) the slab saves its checkpoint at the
    next step boundary, mid-epoch if need be, and raises :class:`StopRequested`."""
    check_members(cfg, members)
    label = label or f"{cfg.optimiser.algorithm}/{cfg.arch}"
    retain_freed_memory()
    device = torch.device(device)
    if device.type == "cuda":  # TF32 off: keep GPU numbers close to the CPU's
        torch.backends.cuda.matmul.allow_tf32 = False
        torch.backends.cudnn.allow_tf32 = False
    dtype = getattr(torch, cfg.dtype)
    x_train, x_test = x_train.to(device, dtype), x_test.to(device, dtype)
    y_train, y_test = y_train.to(device), y_test.to(device)
    if x_val is None or len(x_val) == 0:
        x_val, y_val = x_test[:0], y_test[:0]
    x_val, y_val = x_val.to(device, dtype), y_val.to(device)
    n_train = len(x_train)
    if cfg.batch_size > n_train:
        raise ValueError(f"batch_size {cfg.batch_size} exceeds the {n_train} training samples")
    steps_per_epoch = n_train // cfg.batch_size
    # the schedules always span the run's full length; max_steps only stops it early (a
    # replayed prefix then follows the run's own learning rates)
    length = cfg.epochs * steps_per_epoch
    total = length if max_steps is None else min(length, max_steps)
    st, hyper, plan, sched = prepare_slab(cfg, members, device, dtype, total, length)
    # the run's length, not the steps to train now: a stopped run's checkpoint resumes
    key = slab_state.fingerprint(cfg.to_dict(), [m.run_id for m in members], length, data_id,
                                 str(device), checkpoint.code if checkpoint else "")
    if checkpoint is not None and slab_state.load_into(checkpoint.path, st, key):
        if log:
            log(f"{label}: resumed from checkpoint {checkpoint.path} at step {st.step} "
                f"(epoch {st.epoch})")
    step_fn, how = compiled_or_eager(make_step(plan), compile, device,
                                     len(members) * (total - st.step))
    data = (x_train, y_train, x_test, y_test, x_val, y_val)
    started = time.perf_counter()
    if st.step == 0 and not st.history["epoch"]:
        _record_eval(cfg, st, hyper, data)
    eval_seconds = time.perf_counter() - started
    progress = _Progress(label, cfg, total, steps_per_epoch, st.step, step_fn, how)
    last_save, seconds_before = (time.perf_counter(), st.step), st.train_seconds
    while st.step < total:
        run_epoch(cfg, st, hyper, plan, step_fn, x_train, y_train, steps_per_epoch, total,
                  stop)
        if stop:
            st.train_seconds = seconds_before + progress.elapsed()
            _stop(label, st, checkpoint, key, stop, log)
        st.epoch += 1
        evaluated = _evaluates(cfg, st.epoch, st.step >= total)
        if evaluated:
            started = time.perf_counter()
            _record_eval(cfg, st, hyper, data)
            eval_seconds += time.perf_counter() - started
        st.train_seconds = seconds_before + progress.elapsed()
        if log:
            log(progress.line(st, evaluated))
        if checkpoint is not None and st.step < total and _due(checkpoint, last_save, st.step):
            slab_state.save(checkpoint.path, st, key)
            last_save = (time.perf_counter(), st.step)
            if log:
                log(f"{label}: checkpoint at step {st.step} -> {checkpoint.path}")
    compiled = isinstance(step_fn, CompiledStep) and step_fn.how == "compiled"
    result = _result(cfg, members, st, hyper, plan, sched.k, compiled,
                     step_fn.compile_seconds if compiled else None)
    result.eval_seconds = eval_seconds
    return result


def _stop(label, st, checkpoint, key, stop, log):
    where = f"step {st.step} (epoch {st.epoch}, {st.epoch_pos} steps into it)"
    if checkpoint is None:
        raise StopRequested(f"{label}: {stop.reason} at {where}; no checkpoint configured")
    slab_state.save(checkpoint.path, st, key)
    message = (f"{label}: {stop.reason} at {where}: checkpoint saved -> {checkpoint.path}; "
               f"a rerun resumes from it")
    if log:
        log(message)
    raise StopRequested(message)


def _evaluates(cfg: SlabConfig, epoch: int, last: bool) -> bool:
    """Every ``eval_every`` epochs (the curves), after each of the last ``final_evals``
    epochs (the end-of-training estimate averages them), and after the last step."""
    return last or epoch % cfg.eval_every == 0 or epoch > cfg.epochs - cfg.final_evals


def _due(checkpoint: Checkpointing, last_save: tuple[float, int], step: int) -> bool:
    seconds, at = last_save
    return (step - at >= checkpoint.every_steps
            or time.perf_counter() - seconds >= checkpoint.every_seconds)


# glibc's mallopt parameters (malloc.h)
_M_TRIM_THRESHOLD, _M_MMAP_THRESHOLD = -1, -3


def retain_freed_memory() -> None:
    """Let glibc's malloc keep freed memory for reuse instead of handing it back to the
    OS. Every step frees and allocates the same buffers (the state it replaces, its
    activations and gradients); by default the large ones are mmapped or trimmed away
    and the next step faults them in again: ~1800 page faults and 3-4 ms of kernel time
    per step at width 64 with 30 members (about half the step). Process-wide and
    harmless for a training job; a no-op where the C library is not glibc."""
    try:
        libc = ctypes.CDLL("libc.so.6")
        libc.mallopt(_M_MMAP_THRESHOLD, 1 << 30)
        libc.mallopt(_M_TRIM_THRESHOLD, 2 ** 31 - 1)
    except (OSError, AttributeError):
        pass


def run_epoch(cfg, st, hyper: Hyper, plan, step_fn, x_train, y_train, steps_per_epoch, total,
              stop: StopRequest | None = None):
    """The rest of the current epoch (all of it unless a checkpoint stopped inside it;
    fewer steps when ``total`` comes first, or when ``stop`` is set), updating ``st`` in
    place. Nothing here waits for the device: the batch gather, the divergence
    bookkeeping and the trace arithmetic all happen inside the step."""
    device = x_train.device
    # the epoch's order is drawn from the generators as they were at its start (kept,
    # so that a checkpoint taken inside the epoch redraws the very same order)
    st.epoch_gens = [g.get_state() for g in st.gens]
    orders = torch.stack([epoch_batches(g, len(x_train), cfg.batch_size) for g in st.gens],
                         1).to(device)                                    # [batches, S, B]
    first = st.epoch_pos
    n = min(steps_per_epoch - first, total - st.step)
    steps = torch.arange(st.step, st.step + n, device=device)
    data = {"x": x_train, "y": y_train, "stream_of": hyper.stream_of}
    for b in range(first, first + n):
        new, losses, rows = step_fn({**st.tensors, "diverged_step": st.diverged_step},
                                    {**data, "rows": orders[b], "step": steps[b - first]},
                                    hyper.at(st.step))
        st.diverged_step = new.pop("diverged_step")
        st.tensors = new
        st.trace["loss"][st.step] = losses
        if rows is not None:
            for key, row in zip(TRACE_KEYS, rows):
                st.trace[key][st.step] = row
        st.step += 1
        st.epoch_pos = b + 1
        if stop:
            return
    st.epoch_pos = 0


def _record_eval(cfg, st, hyper: Hyper, data):
    x_train, y_train, x_test, y_test, x_val, y_val = data
    params, eps = st.tensors["params"], hyper.eps_at(st.step)
    buffers = recalibrate_batchnorm(cfg, params, st.tensors["buffers"], eps, x_train)
    st.tensors["buffers"] = buffers
    tl, ta, ratios = evaluate(cfg, params, buffers, eps, x_train, y_train, collect=True)
    el, ea, _ = evaluate(cfg, params, buffers, eps, x_test, y_test)
    if len(x_val):
        vl, va, _ = evaluate(cfg, params, buffers, eps, x_val, y_val)
    else:
        vl = va = torch.full_like(ta, float("nan"))
    h = st.history
    for key, value in (("train_loss", tl), ("train_acc", ta), ("val_loss", vl),
                       ("val_acc", va), ("test_loss", el), ("test_acc", ea)):
        h[key].append(value.cpu())
    m = len(ta)
    h["var_ratio"].append(ratios.float().cpu() if ratios is not None else torch.zeros(m, 0))
    h["epoch"].append(st.epoch)
    h["step"].append(st.step)


class _Progress:
    """The job log's line per epoch: the slab, how far it is, an ETA, and on the first
    line how the step runs (how long compilation took, or why it is eager)."""

    def __init__(self, label, cfg, total, steps_per_epoch, start_step, step_fn, how):
        self.label, self.cfg, self.total, self.per_epoch = label, cfg, total, steps_per_epoch
        self.start_step, self.step_fn, self.how = start_step, step_fn, how
        self.started, self.first = time.perf_counter(), True

    def elapsed(self) -> float:
        return time.perf_counter() - self.started

    def _compile_seconds(self) -> float:
        return getattr(self.step_fn, "compile_seconds", None) or 0.0

    def _how(self) -> str:
        if not isinstance(self.step_fn, CompiledStep):
            return f"step {self.how}"
        if self.step_fn.how != "compiled":
            return "step eager (compilation failed)"
        return f"compiled in {self._compile_seconds():.1f} s"

    def line(self, st, evaluated) -> str:
        batch_loss = st.trace["loss"][max(0, st.step - self.per_epoch):st.step].nanmean()
        alive = st.tensors["alive"]
        done = st.step - self.start_step  # the ETA leaves compilation out
        eta = (self.elapsed() - self._compile_seconds()) / max(done, 1) * (self.total - st.step)
        line = (f"{self.label}: epoch {st.epoch}/{self.cfg.epochs} step {st.step}/{self.total} "
                f"minibatch_loss {batch_loss:.4f} alive {int(alive.sum())}/{len(alive)} "
                f"{st.train_seconds:.1f}s ETA {eta:.0f}s")
        if self.first:
            line, self.first = f"{line} | {self._how()}", False
        if evaluated:
            ta, va = st.history["train_acc"][-1], st.history["test_acc"][-1]
            line += (f" | train_acc {ta.nanmean():.3f} test_acc {va.nanmean():.3f} "
                     f"(min {va.min():.3f} max {va.max():.3f})")
        return line


def _result(cfg, members, st, hyper: Hyper, plan: StepPlan, k, compiled,
            compile_seconds) -> SlabResult:
    tensors = st.tensors
    params = tensors["params"]
    state = {}
    for name, leaf in params.items():
        if name in plan.linear_names:
            state[f"{name}.weight"] = leaf[..., :-1].contiguous().cpu()
            state[f"{name}.bias"] = leaf[..., -1].contiguous().cpu()
        else:
            state[name] = leaf.cpu()
    for name, buf in tensors["buffers"].items():
        state[name] = buf.cpu()
    m = len(members)
    for name in [n for n in state if n.endswith("running_mean")]:  # modules count; we don't
        state[name.replace("running_mean", "num_batches_tracked")] = torch.full(
            (m,), st.step, dtype=torch.long)
    trace = {key: v.cpu().numpy() for key, v in st.trace.items()}
    if "sq_norm" in trace:
        end = torch.stack([params[n].detach().square().sum((1, 2)) for n in plan.linear_names], 1)
        trace["sq_norm"] = np.concatenate([trace["sq_norm"], end.cpu().numpy()[None]])
    if any(m.kind in ("exact", "schedule") for m in members):
        trace["k"] = k[:st.step + 1]  # k_0 .. k_T of the steps trained
    history = {key: (np.array(v) if key in ("epoch", "step") else torch.stack(v).numpy())
               for key, v in st.history.items()}
    return SlabResult(cfg=cfg, members=list(members), state=state, history=history,
                      trace=trace, diverged_step=st.diverged_step.cpu().numpy(),
                      eps_final=hyper.eps_at(st.step).cpu().double().numpy(),
                      train_seconds=st.train_seconds, compiled=compiled,
                      compile_seconds=compile_seconds, resumed_from=st.resumed_from)
