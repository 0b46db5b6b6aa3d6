"""The architecture names, formulas and predictions of DESIGN.md §3, without torch:
plots and claims import these, and a figure notebook should not pay for importing torch."""

from __future__ import annotations

ARCHITECTURES: tuple[str, ...] = (
    "plain", "ln", "bn", "res", "postln", "resln", "preln", "preln_final",
)
# plain/ln/bn stack L hidden layers on the input; the rest use a linear stem D->W and L
# residual blocks of width W.
STACKED = ("plain", "ln", "bn")
RESIDUAL = ("res", "postln", "resln", "preln", "preln_final")

FORMULAS: dict[str, str] = {
    "plain": "h <- ReLU(W h + b)",
    "ln": "h <- ReLU(LN(W h + b))",
    "bn": "h <- ReLU(BN(W h + b))",
    "res": "h <- h + f(h)",
    "postln": "h <- LN(h + f(h))",
    "resln": "h <- h + LN(f(h))",
    "preln": "h <- h + f(LN(h))",
    "preln_final": "h <- h + f(LN(h)); LN before head",
}

# Which linear layers the DESIGN §3 table predicts to be scale-invariant on their own.
PREDICTED_PER_LAYER_INVARIANT: dict[str, str] = {
    "plain": "none", "ln": "hidden", "bn": "hidden", "res": "none", "postln": "none",
    "resln": "blocks", "preln": "none", "preln_final": "none",
}
# ... and whether scaling every layer before the head together leaves the output unchanged.
PREDICTED_JOINT_INVARIANT: dict[str, bool] = {
    "plain": False, "ln": True, "bn": True, "res": False, "postln": False,
    "resln": False, "preln": False, "preln_final": True,
}

# Decay scopes: which parameters get the L2 / decoupled weight-decay term.
#   hidden: weights *and* biases of every linear layer before the head. A hidden layer's
#           symmetry scales (W, b) together, so the invariant group -- and the article's
#           penalty whose removal we test -- is the pair, not W alone.
#   all:    every parameter, head and norm gamma/beta included (torch.optim's default).
#   none:   nothing.
DECAY_SCOPES: tuple[str, ...] = ("hidden", "all", "none")


def check_architecture(arch: str) -> str:
    if arch not in ARCHITECTURES:
        raise ValueError(
            f"unknown architecture {arch!r}; valid names are: {', '.join(ARCHITECTURES)}"
        )
    return arch


def check_decay_scope(scope: str) -> str:
    if scope not in DECAY_SCOPES:
        raise ValueError(
            f"unknown decay scope {scope!r}; valid scopes are: {', '.join(DECAY_SCOPES)}"
        )
    return scope
