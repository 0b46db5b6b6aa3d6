"""The architecture zoo (``docs/architectures.md``), named by formula.

Every architecture is described once, by :func:`forward`, which is written against a
small ``ops`` interface (``linear`` and ``norm`` looked up by parameter name). The
ordinary :class:`MLP` module runs it with its own parameters; the slab engine runs the
very same function on parameters stacked along a leading "member" axis. One definition
means a trained slab member and its extracted ``nn.Module`` cannot drift apart.

Naming (the article's "pre/post-norm" is reversed from standard usage):

=============  =========================  ============================
name           block                      article / standard name
=============  =========================  ============================
plain          h <- ReLU(W h + b)         -
ln             h <- ReLU(LN(W h + b))     -
bn             h <- ReLU(BN(W h + b))     -
res            h <- h + f(h)              -
postln         h <- LN(h + f(h))          article "pre-norm"  / Post-LN
resln          h <- h + LN(f(h))          article "post-norm" / -
preln          h <- h + f(LN(h))          - / Pre-LN
preln_final    preln, then LN before head - / Pre-LN with final LN
=============  =========================  ============================

with f(h) = ReLU(W h + b).
"""

from __future__ import annotations

from typing import Protocol

import torch
from torch import nn

from . import archs
from .archs import (  # noqa: F401  (re-exported: the names every user imports from here)
    ARCHITECTURES, DECAY_SCOPES, check_architecture, check_decay_scope,
)


class Ops(Protocol):
    def linear(self, h: torch.Tensor, name: str) -> torch.Tensor: ...
    def norm(self, h: torch.Tensor, name: str) -> torch.Tensor: ...
    def relu(self, h: torch.Tensor) -> torch.Tensor: ...


def n_linear_layers(arch: str, depth: int) -> int:
    """Linear layers in forward order: hidden (or stem + blocks), then the head."""
    return archs.get(arch).n_linear(depth)


def forward(arch: str, depth: int, x: torch.Tensor, ops: Ops) -> torch.Tensor:
    """The single definition of every architecture's computation: the record's block,
    repeated ``depth`` times (after a linear stem for residual layouts)."""
    record = archs.get(arch)
    if record.layout == "stacked":
        h = x
        for i in range(depth):
            h = record.block(h, ops, f"linears.{i}", f"norms.{i}")
    else:
        h = ops.linear(x, "linears.0")
        for i in range(depth):
            h = record.block(h, ops, f"linears.{i + 1}", f"norms.{i}")
    if record.final_norm:
        h = ops.norm(h, "final_norm")
    return ops.linear(h, f"linears.{record.n_linear(depth) - 1}")


class _ModuleOps:
    """``Ops`` over an ordinary module's own submodules."""

    def __init__(self, module: nn.Module):
        self.module = module

    def linear(self, h, name):
        return self.module.get_submodule(name)(h)

    def norm(self, h, name):
        return self.module.get_submodule(name)(h)

    relu = staticmethod(torch.relu)


class MLP(nn.Module):
    """One member of the zoo. ``linears`` holds every ``nn.Linear`` in forward order,
    the head last; ``norms`` holds one norm per hidden layer / block where the
    architecture has one; ``final_norm`` exists for ``preln_final`` only."""

    def __init__(self, arch: str, d_in: int, width: int, depth: int, n_classes: int,
                 norm_eps: float = 1e-5, bn_momentum: float = 0.1):
        super().__init__()
        check_architecture(arch)
        for name, value in (("d_in", d_in), ("width", width), ("depth", depth),
                            ("n_classes", n_classes)):
            if not isinstance(value, int) or value < 1:
                raise ValueError(f"{name} must be a positive integer, got {value!r}")
        self.arch, self.depth = arch, depth
        self.dims = dict(d_in=d_in, width=width, depth=depth, n_classes=n_classes)
        n_hidden = n_linear_layers(arch, depth) - 1
        ins = [d_in] + [width] * (n_hidden - 1)
        self.linears = nn.ModuleList(
            [nn.Linear(i, width) for i in ins] + [nn.Linear(width, n_classes)]
        )
        record = archs.get(arch)

        def make_norm():
            if record.norm == "batch":
                return nn.BatchNorm1d(width, eps=norm_eps, momentum=bn_momentum)
            return nn.LayerNorm(width, eps=norm_eps)
        self.norms = nn.ModuleList(make_norm() for _ in range(depth if record.norm else 0))
        if record.final_norm:
            self.final_norm = make_norm()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return forward(self.arch, self.depth, x, _ModuleOps(self))

    @property
    def hidden_linears(self) -> list[nn.Linear]:
        return list(self.linears)[:-1]

    @property
    def head(self) -> nn.Linear:
        return self.linears[-1]

    def parameter_groups(self) -> dict[str, list[str]]:
        """Parameter names by role; the weight-decay policy is written in these terms."""
        return parameter_groups(self.arch, self.depth, [n for n, _ in self.named_parameters()])

    def decayed_parameter_names(self, scope: str) -> list[str]:
        return decayed_names(self.parameter_groups(), scope)

    def hidden_penalty(self) -> torch.Tensor:
        """sum over hidden linear layers of ||W||^2 + ||b||^2 (the penalty the article removes)."""
        return sum(lin.weight.square().sum() + lin.bias.square().sum()
                   for lin in self.hidden_linears)


def parameter_groups(arch: str, depth: int, names: list[str]) -> dict[str, list[str]]:
    head = n_linear_layers(arch, depth) - 1
    groups: dict[str, list[str]] = {
        "hidden_weights": [], "hidden_biases": [], "norm_affine": [], "head": [],
    }
    for name in names:
        if name.startswith("linears."):
            index = int(name.split(".")[1])
            if index == head:
                groups["head"].append(name)
            elif name.endswith("weight"):
                groups["hidden_weights"].append(name)
            else:
                groups["hidden_biases"].append(name)
        else:
            groups["norm_affine"].append(name)
    return groups


def decayed_names(groups: dict[str, list[str]], scope: str) -> list[str]:
    check_decay_scope(scope)
    if scope == "none":
        return []
    if scope == "hidden":
        return groups["hidden_weights"] + groups["hidden_biases"]
    return [n for names in groups.values() for n in names]


def layer_names(arch: str, depth: int) -> list[str]:
    """Human names of the linear layers in forward order (used in every table)."""
    return archs.get(arch).layer_names(depth)


def build_model(arch: str, d_in: int, width: int, depth: int, n_classes: int,
                **kwargs) -> MLP:
    """Build one architecture of the registry with PyTorch's default initialisation."""
    return MLP(arch, d_in, width, depth, n_classes, **kwargs)
