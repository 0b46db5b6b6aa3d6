"""The architecture registry: one record per architecture, named by formula.

Everything that depends on *which* architecture a run uses asks its record -- the model
builds its blocks with ``record.block``, the engine picks the norm kind, probes and claims
read the predicted invariances, figures the colour -- so adding an architecture is one
record (and its block function) here, plus a test. Torch-free on purpose: figure
notebooks and claims import this module without paying for torch.

The science (why these predictions, the article's reversed "pre/post-norm" naming) is in
``docs/architectures.md``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable

# A block maps the hidden state h to the next one through ``ops`` (linear/norm looked up
# by parameter name, and relu), so the same function runs on one module or on a slab.
Block = Callable[[Any, Any, str, str], Any]


@dataclass(frozen=True)
class Arch:
    name: str
    formula: str
    # "stacked": L hidden layers on the input (the first maps D -> W);
    # "residual": a linear stem D -> W, then L blocks of width W.
    layout: str
    block: Block                 # (h, ops, linear_name, norm_name) -> h
    norm: str | None             # "layer" | "batch" | None: the kind of every norm
    final_norm: bool = False     # a norm between the last block and the head
    # Predicted invariance of each hidden linear layer on its own: "none", "hidden"
    # (every hidden layer) or "blocks" (every block's layer, not the stem).
    per_layer_invariant: str = "none"
    # ... and of scaling every hidden layer together (stem and blocks).
    joint_invariant: bool = False
    # The positive-rescaling symmetry C2 uses where no layer is invariant:
    # "neuron" (ReLU rebalancing per hidden neuron), "channel" (residual-stream
    # diagonal), "scalar" (one factor for the stem and all blocks), or None.
    rebalance: str | None = None
    colour: str = "#7f7f7f"
    article_name: str = "-"      # the source article's name, where it gives one
    standard_name: str = "-"     # the usual name in the literature (Xiong et al. 2020)

    @property
    def invariant(self) -> bool:
        """Has a predicted scale symmetry of its hidden layers (per layer or joint)."""
        return self.per_layer_invariant != "none" or self.joint_invariant

    @property
    def role(self) -> str:
        """Its part in claim C6: ``headline`` (the article's subject: normalised, no
        residual connection, scale-invariant: ln, bn), ``control`` (no symmetry and no
        norm: plain, res, the positive controls) or ``other``."""
        if self.norm is not None and self.layout == "stacked" and self.invariant:
            return "headline"
        return "control" if not self.invariant and self.norm is None else "other"

    def n_linear(self, depth: int) -> int:
        """Linear layers in forward order: hidden (or stem + blocks), then the head."""
        return depth + 1 if self.layout == "stacked" else depth + 2

    def layer_names(self, depth: int) -> list[str]:
        n = self.n_linear(depth)
        if self.layout == "stacked":
            return [f"hidden{i}" for i in range(n - 1)] + ["head"]
        return ["stem"] + [f"block{i}" for i in range(n - 2)] + ["head"]

    def layer_invariant(self, index: int, depth: int) -> bool:
        """Predicted per-layer invariance of linear layer ``index`` (the head: never)."""
        n_hidden = self.n_linear(depth) - 1
        if index >= n_hidden:
            return False
        if self.per_layer_invariant == "hidden":
            return True
        if self.per_layer_invariant == "blocks":
            return index >= 1  # linears.0 is the stem
        return False

    def group_layers(self, depth: int) -> list[int]:
        """The hidden layers a common rescaling leaves the function unchanged for (the
        per-layer invariant ones, else all hidden layers when jointly invariant), or
        every hidden layer for an architecture with no symmetry: the set the exact
        LR-schedule equivalents rescale, where on the non-invariant architectures it is
        the contrast that must fail."""
        n_hidden = self.n_linear(depth) - 1
        per_layer = [i for i in range(n_hidden) if self.layer_invariant(i, depth)]
        return per_layer if per_layer else list(range(n_hidden))


# -- blocks: f(h) = ReLU(W h + b) ------------------------------------------------------

def _dense(h, ops, lin, nrm):
    return ops.relu(ops.linear(h, lin))


def _dense_norm(h, ops, lin, nrm):
    return ops.relu(ops.norm(ops.linear(h, lin), nrm))


def _residual(h, ops, lin, nrm):
    return h + ops.relu(ops.linear(h, lin))


def _norm_after_add(h, ops, lin, nrm):
    return ops.norm(h + ops.relu(ops.linear(h, lin)), nrm)


def _norm_on_branch(h, ops, lin, nrm):
    return h + ops.norm(ops.relu(ops.linear(h, lin)), nrm)


def _norm_before_branch(h, ops, lin, nrm):
    return h + ops.relu(ops.linear(ops.norm(h, nrm), lin))


# Related architectures share a hue family: LN/BN stacks blue, plain residual and
# LN-after-add orange/red, LN-on-branch green, pre-LN purples; plain is the grey baseline.
REGISTRY: dict[str, Arch] = {a.name: a for a in (
    Arch("plain", "h <- ReLU(W h + b)", "stacked", _dense, None,
         rebalance="neuron", colour="#404040"),
    Arch("ln", "h <- ReLU(LN(W h + b))", "stacked", _dense_norm, "layer",
         per_layer_invariant="hidden", joint_invariant=True, colour="#0173b2"),
    Arch("bn", "h <- ReLU(BN(W h + b))", "stacked", _dense_norm, "batch",
         per_layer_invariant="hidden", joint_invariant=True, colour="#56b4e9"),
    Arch("res", "h <- h + f(h)", "residual", _residual, None,
         rebalance="channel", colour="#de8f05"),
    Arch("postln", "h <- LN(h + f(h))", "residual", _norm_after_add, "layer",
         colour="#d55e00", article_name="pre-norm",
         standard_name="Post-LN (Xiong et al. 2020)"),
    Arch("resln", "h <- h + LN(f(h))", "residual", _norm_on_branch, "layer",
         per_layer_invariant="blocks", colour="#029e73", article_name="post-norm"),
    Arch("preln", "h <- h + f(LN(h))", "residual", _norm_before_branch, "layer",
         rebalance="scalar", colour="#cc78bc", standard_name="Pre-LN (Xiong et al. 2020)"),
    Arch("preln_final", "h <- h + f(LN(h)); LN before head", "residual",
         _norm_before_branch, "layer", final_norm=True, joint_invariant=True,
         colour="#7a3b8f", standard_name="Pre-LN with a final LN before the head"),
)}

ARCHITECTURES: tuple[str, ...] = tuple(REGISTRY)
MISSING_COLOUR = "#7f7f7f"

# Decay scopes: which parameters get the L2 / decoupled weight-decay term.
#   hidden: weights *and* biases of every linear layer before the head. A hidden layer's
#           symmetry scales (W, b) together, so the invariant group -- and the article's
#           penalty whose removal we test -- is the pair, not W alone.
#   all:    every parameter, head and norm gamma/beta included (torch.optim's default).
#   none:   nothing.
DECAY_SCOPES: tuple[str, ...] = ("hidden", "all", "none")


def get(arch: str) -> Arch:
    """The record of ``arch``; a clear error naming the allowed names otherwise."""
    try:
        return REGISTRY[arch]
    except KeyError:
        raise ValueError(f"unknown architecture {arch!r}; valid names are: "
                         f"{', '.join(ARCHITECTURES)}") from None


def check_architecture(arch: str) -> str:
    return get(arch).name


def check_decay_scope(scope: str) -> str:
    if scope not in DECAY_SCOPES:
        raise ValueError(
            f"unknown decay scope {scope!r}; valid scopes are: {', '.join(DECAY_SCOPES)}"
        )
    return scope


def colour(arch: str) -> str:
    return REGISTRY[arch].colour if arch in REGISTRY else MISSING_COLOUR


def order(values) -> list[str]:
    """The architectures present in ``values``, registry order first, unknown ones last."""
    present = list(dict.fromkeys(values))
    return [a for a in ARCHITECTURES if a in present] + [a for a in present
                                                          if a not in REGISTRY]
