"""Symmetry transforms on a built model: scale linear layers, set the norms' ε, keep
BatchNorm running statistics consistent. Shared by the C1 and C2 probes.

Every function here either mutates the model it is given *explicitly* (names ending in
the verb: ``scale_layers``, ``set_eps``, ``warm_batchnorms``), works on a deep copy, or
(:func:`scaled`, and :func:`logits` through it) changes the model only for the duration
and then restores its tensors bit for bit.
"""

from __future__ import annotations

import contextlib
import copy
from collections.abc import Iterable, Iterator, Sequence

import torch
from torch import nn

from .. import archs
from ..models import MLP

#: ε of the exact probes: effectively 0, but an all-zero row normalises to 0, not NaN.
EXACT_EPS = 1e-30
#: Forward passes that give untouched BatchNorm running statistics realistic values.
BN_WARMUP_PASSES = 20

_BatchNorm = nn.modules.batchnorm._BatchNorm


def record(model: MLP) -> archs.Arch:
    return archs.get(model.arch)


def n_hidden(model: MLP) -> int:
    """Linear layers before the head (stacked hidden layers, or stem + blocks)."""
    return len(model.linears) - 1


def norm_modules(model: nn.Module) -> list[nn.Module]:
    return [m for m in model.modules() if isinstance(m, (nn.LayerNorm, _BatchNorm))]


def batchnorms(model: nn.Module) -> list[nn.Module]:
    return [m for m in model.modules() if isinstance(m, _BatchNorm)]


def model_eps(model: nn.Module) -> float:
    """The norms' ε (the largest if they differ; NaN without norms)."""
    eps = {float(m.eps) for m in norm_modules(model)}
    return max(eps) if eps else float("nan")


def set_eps(model: nn.Module, eps: float) -> None:
    for m in norm_modules(model):
        m.eps = eps


def block_norm(model: MLP, index: int) -> nn.Module | None:
    """The norm in the same block as linear layer ``index`` -- the one that makes the layer
    invariant when the record predicts it is (None without one). Block i of
    :func:`wdnorm.models.forward` pairs ``norms.{i}`` with ``linears.{i}`` in a stacked
    layout and with ``linears.{i+1}`` after a residual layout's stem."""
    if record(model).norm is None:
        return None
    block = index if record(model).layout == "stacked" else index - 1
    return model.norms[block] if 0 <= block < len(model.norms) else None


def layer_params(index: int) -> list[str]:
    return [f"linears.{index}.weight", f"linears.{index}.bias"]


@torch.no_grad()
def scale_layers(model: MLP, indices: Iterable[int], a: float, rescale_bn: bool) -> None:
    """In place: (W, b) of each layer in ``indices`` times ``a``. With ``rescale_bn`` the
    running statistics of the BatchNorm in the layer's block become (mean·a, var·a²), so
    that eval mode sees the same normalised activations as before."""
    for i in indices:
        model.linears[i].weight.mul_(a)
        model.linears[i].bias.mul_(a)
        norm = block_norm(model, i)
        if rescale_bn and isinstance(norm, _BatchNorm):
            norm.running_mean.mul_(a)
            norm.running_var.mul_(a * a)


def shrink(model: MLP, indices: Iterable[int], a: float) -> MLP:
    """A copy of ``model`` with layers ``indices`` scaled by ``a`` (BatchNorm running
    statistics rescaled along)."""
    m = copy.deepcopy(model)
    scale_layers(m, indices, a, rescale_bn=True)
    return m


@contextlib.contextmanager
def scaled(model: MLP, indices: Iterable[int], a: float, rescale_bn: bool,
           train: bool | None = None) -> Iterator[MLP]:
    """``model`` itself with layers ``indices`` scaled by ``a`` (and in train mode if
    ``train``) inside the block; on leaving it, every parameter and buffer gets its saved
    value back (copied, not divided back: bit for bit), BatchNorm running statistics
    that a train-mode forward moved included. What a deep copy per probe gave, at a
    fraction of its cost: the probes bisect and sweep scales, thousands of copies a slab."""
    tensors = [*model.parameters(), *model.buffers()]
    saved = [t.detach().clone() for t in tensors]
    was_training = model.training
    try:
        scale_layers(model, indices, a, rescale_bn)
        if train is not None:
            model.train(train)
        yield model
    finally:
        with torch.no_grad():
            for t, value in zip(tensors, saved):
                t.copy_(value)
        model.train(was_training)


def needs_warmup(model: nn.Module) -> bool:
    return any(int(bn.num_batches_tracked) == 0 for bn in batchnorms(model))


@torch.no_grad()
def warm_batchnorms(model: nn.Module, x: torch.Tensor,
                    passes: int = BN_WARMUP_PASSES) -> None:
    """In place: ``passes`` train-mode forwards on ``x`` with each BatchNorm's own momentum
    (0.1: 20 passes move the statistics 88% of the way from the init 0/1 to the batch's),
    so that eval-mode probes of a fresh model do not run on the init's 0/1."""
    was_training = model.training
    model.train()
    for _ in range(passes):
        model(x)
    model.train(was_training)


@torch.no_grad()
def logits(base: MLP, x: torch.Tensor, mode: str, indices: Sequence[int] = (),
           a: float = 1.0) -> torch.Tensor:
    """Logits of a copy of ``base`` with ``indices`` scaled by ``a``, in ``mode`` ("train":
    batch statistics; "eval"; "eval_rescaled": BatchNorm statistics scaled along). A copy
    each time: a train-mode BatchNorm forward updates the running statistics; ``base``
    is left as it was (:func:`scaled`)."""
    with scaled(base, indices, a, rescale_bn=(mode == "eval_rescaled"),
                train=(mode == "train")) as m:
        return m(x)


def rel_change(new: torch.Tensor, ref: torch.Tensor) -> float:
    """max|new − ref| / max|ref|: the output change of C1."""
    return float((new - ref).abs().max() / ref.abs().max())


def dtype_name(dtype: torch.dtype) -> str:
    return str(dtype).replace("torch.", "")
