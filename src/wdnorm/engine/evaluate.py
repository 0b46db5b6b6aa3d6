"""Evaluation of every member of a slab: loss, accuracy and the ε-floor monitor.

BatchNorm is evaluated with running statistics *recomputed on the training set* (the
population statistics of the current weights) rather than the exponential averages
collected during training, which lag behind weights that move fast (a stale average
cost ``bn`` up to 9 pp of test accuracy at strong weight decay).
"""

from __future__ import annotations

import torch
from torch.nn import functional as F

from .. import models
from .ops import StackedOps

# Rows per evaluation chunk: small enough that the [M, rows, width] activations of the
# written-out norms stay in cache (4096 rows ran 2x slower than 256 on 80 members).
CHUNK = 256


class _Stop(Exception):
    """Ends a forward pass once the norm being calibrated has seen its input."""


class _CalibrateOps(StackedOps):
    """Eval ops that accumulate the input statistics of one BatchNorm (``target``)."""

    def __init__(self, *args, target: str, sums: dict, **kwargs):
        super().__init__(*args, **kwargs)
        self.target, self.sums = target, sums

    def norm(self, h, name):
        if name != self.target:
            return super().norm(h, name)
        # per-chunk sums in the working precision, accumulated across chunks in double
        self.sums["n"] = self.sums.get("n", 0) + h.shape[1]
        self.sums["s1"] = self.sums.get("s1", 0) + h.sum(1).double()
        self.sums["s2"] = self.sums.get("s2", 0) + h.square().sum(1).double()
        raise _Stop


def norm_names(record, depth: int) -> list[str]:
    """Every norm of an architecture, in forward order."""
    if record.norm is None:
        return []
    return [f"norms.{i}" for i in range(depth)] + (["final_norm"] if record.final_norm else [])


@torch.no_grad()
def recalibrate_batchnorm(cfg, params: dict, buffers: dict, eps: torch.Tensor,
                          x: torch.Tensor) -> dict:
    """Running statistics set to the training set's own (mean, unbiased variance) of
    each BatchNorm's input, layer by layer in forward order (a layer's input depends on
    the statistics of the layers before it). Other buffers are returned unchanged."""
    record = cfg.record
    if record.norm != "batch":
        return buffers
    buffers = dict(buffers)
    for name in norm_names(record, cfg.depth):
        sums: dict = {}
        for start in range(0, len(x), CHUNK):
            ops = _CalibrateOps(params, buffers, eps, "eval", True, target=name, sums=sums)
            try:
                models.forward(cfg.arch, cfg.depth, x[start:start + CHUNK], ops)
            except _Stop:
                pass
        n, s1, s2 = sums["n"], sums["s1"], sums["s2"]
        mean = s1 / n
        var = (s2 - n * mean.square()) / max(n - 1, 1)
        like = buffers[f"{name}.running_mean"]
        buffers[f"{name}.running_mean"] = mean.to(like.dtype)
        buffers[f"{name}.running_var"] = var.clamp_min(0).to(like.dtype)
    return buffers


@torch.no_grad()
def evaluate(cfg, params: dict, buffers: dict, eps: torch.Tensor, x: torch.Tensor,
             y: torch.Tensor, collect: bool = False):
    """Mean cross-entropy and accuracy of every member on (x, y): ([M], [M], ratios).
    With ``collect``, ``ratios`` is [M, norms]: each norm's median pre-norm variance over
    the member's ε on the first chunk (None without norms or without ``collect``)."""
    m = next(iter(params.values())).shape[0]
    loss_sum = torch.zeros(m, dtype=torch.float64, device=x.device)
    correct = torch.zeros(m, dtype=torch.float64, device=x.device)
    ratios = None
    batch_norm = cfg.record.norm == "batch"
    for start in range(0, len(x), CHUNK):
        mode = "collect" if collect and start == 0 else "eval"
        ops = StackedOps(params, buffers, eps, mode, batch_norm)
        xb, yb = x[start:start + CHUNK], y[start:start + CHUNK]
        logits = models.forward(cfg.arch, cfg.depth, xb, ops)            # [M, n, C]
        ce = F.cross_entropy(logits.reshape(-1, logits.shape[-1]), yb.repeat(m),
                             reduction="none").view(m, -1)
        loss_sum += ce.sum(1, dtype=torch.float64)
        correct += (logits.argmax(-1) == yb).sum(1, dtype=torch.float64)
        if ops.stats:
            ratios = torch.stack([ops.stats[n] for n in norm_names(cfg.record, cfg.depth)], 1)
    return (loss_sum / len(x)).float(), (correct / len(x)).float(), ratios
