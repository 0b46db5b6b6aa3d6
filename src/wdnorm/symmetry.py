"""Scale symmetries of the architecture zoo: claims C1 (symmetry map) and C2 (removable
penalty) of DESIGN.md §4.

Pure computation on modules and tensors; every function returns plain Python values or
tidy ``pandas`` tables and never mutates the model it is given (it works on deep copies).

Precision and the normalisation ε
---------------------------------
LN(a·z) = LN(z) holds exactly only for ε = 0. A real LayerNorm/BatchNorm computes
(z − μ)/sqrt(Var + ε), so scaling its input by a gives, per sample,

    LN_ε(a·z) = (z − μ) / sqrt(Var(z) + ε/a²),

i.e. the normalised activations change by a relative δ(a) ≈ ε·(1/a² − 1) / (2·Var(z)).
With PyTorch's default ε = 1e-5 and Var(z) ≈ 0.3, δ is ~1e-5 already at a = 10 and ~1e-3 at
a = 0.1. A 1e-5 tolerance therefore cannot tell "ε = 1e-5" from "not a symmetry" at any
scale. So the two questions are kept apart:

* :func:`symmetry_map` (C1) asks *which transforms are symmetries* of the architecture's
  function. It probes a **float64** copy of the model (``copy.deepcopy(model).double()``)
  so that float32 rounding (~1e-7) cannot hide or fake an invariance, and with every
  norm's ε set to :data:`EXACT_EPS` (1e-30: ε → 0 without the 0/0 of an all-zero row).
  ``rel_change``/``invariant`` are these exact numbers. The same probes with the model's
  own ε are reported as ``rel_change_model_eps``/``invariant_model_eps``.
* :func:`epsilon_floor` and :func:`remove_penalty` (C2) ask *how far a real model can
  actually be shrunk*: they keep the model's ε, and :func:`remove_penalty` works in the
  model's own dtype (float32 for trained models) because that is what trains and predicts.
"""

from __future__ import annotations

import copy
import math
from collections.abc import Iterable, Sequence

import numpy as np
import pandas as pd
import torch
from torch import nn
from torch.nn import functional as F

from .models import (
    MLP,
    PREDICTED_JOINT_INVARIANT,
    PREDICTED_PER_LAYER_INVARIANT,
    layer_names,
)

#: ε used by the exact (C1) probes: effectively 0, but an all-zero row normalises to 0,
#: not NaN.
EXACT_EPS = 1e-30
#: Relative output change below which a transform counts as a symmetry.
DEFAULT_TOL = 1e-5
#: The scales of DESIGN §4, C1.
DEFAULT_SCALES = (1e-2, 1e-1, 10.0, 100.0)
#: BatchNorm probe modes: batch statistics; running statistics left as they are; running
#: statistics rescaled with the weights (running_mean·a, running_var·a²).
BN_MODES = ("train", "eval", "eval_rescaled")
#: Forward passes used to give untouched BatchNorm running statistics realistic values.
BN_WARMUP_PASSES = 20
#: Architectures whose ReLU positive homogeneity allows a function-preserving rebalance
#: that moves penalty between the hidden layers and the head.
REBALANCE_ARCHS = ("plain", "res", "preln")

SYMMETRY_COLUMNS = [
    "arch", "layer", "layer_index", "transform", "scale", "mode",
    "rel_change", "predicted_invariant", "invariant", "matches_prediction",
    "rel_change_model_eps", "invariant_model_eps", "norm_eps", "tol",
]
CURVE_COLUMNS = ["arch", "method", "scale", "penalty", "total_penalty", "rel_loss_change"]


# --------------------------------------------------------------------------- helpers

def _norm_modules(model: nn.Module) -> list[nn.Module]:
    return [m for m in model.modules()
            if isinstance(m, (nn.LayerNorm, nn.modules.batchnorm._BatchNorm))]


def _batchnorms(model: nn.Module) -> list[nn.modules.batchnorm._BatchNorm]:
    return [m for m in model.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]


def _has_bn(model: nn.Module) -> bool:
    return bool(_batchnorms(model))


def _n_hidden(model: MLP) -> int:
    return len(model.linears) - 1


def _model_eps(model: nn.Module) -> float:
    eps = {float(m.eps) for m in _norm_modules(model)}
    return eps.pop() if len(eps) == 1 else (float("nan") if not eps else max(eps))


def _set_eps(model: nn.Module, eps: float) -> None:
    for m in _norm_modules(model):
        m.eps = eps


def _following_bn(model: MLP, index: int):
    """The BatchNorm that normalises linear layer ``index``'s output (``bn`` only)."""
    if model.arch == "bn" and index < _n_hidden(model):
        return model.norms[index]
    return None


def _dtype_name(dtype: torch.dtype) -> str:
    return str(dtype).replace("torch.", "")


def _layer_params(index: int) -> list[str]:
    return [f"linears.{index}.weight", f"linears.{index}.bias"]


@torch.no_grad()
def _scale_layers(model: MLP, indices: Iterable[int], a: float, rescale_bn: bool) -> None:
    """In place: (W, b) of each layer in ``indices`` times a; with ``rescale_bn`` the
    running statistics of the BatchNorm that follows it become (mean·a, var·a²)."""
    for i in indices:
        lin = model.linears[i]
        lin.weight.mul_(a)
        lin.bias.mul_(a)
        bn = _following_bn(model, i)
        if rescale_bn and bn is not None:
            bn.running_mean.mul_(a)
            bn.running_var.mul_(a * a)


@torch.no_grad()
def _warm_bn(model: nn.Module, x: torch.Tensor, passes: int = BN_WARMUP_PASSES) -> None:
    """Give running statistics realistic values: ``passes`` train-mode forwards on x with
    each BatchNorm's own momentum (default 0.1: 20 passes move the stats 88% of the way
    from the init 0/1 to the batch statistics)."""
    was_training = model.training
    model.train()
    for _ in range(passes):
        model(x)
    model.train(was_training)


def _needs_warmup(model: nn.Module) -> bool:
    return any(int(bn.num_batches_tracked) == 0 for bn in _batchnorms(model))


@torch.no_grad()
def _logits(base: MLP, x: torch.Tensor, mode: str, indices: Sequence[int] = (),
            a: float = 1.0) -> torch.Tensor:
    """Logits of a fresh copy of ``base`` with ``indices`` scaled by ``a`` in ``mode``
    (a copy each time: a train-mode BatchNorm forward updates running statistics)."""
    m = copy.deepcopy(base)
    _scale_layers(m, indices, a, rescale_bn=(mode == "eval_rescaled"))
    m.train(mode == "train")
    return m(x)


def _rel_change(new: torch.Tensor, ref: torch.Tensor) -> float:
    return float((new - ref).abs().max() / ref.abs().max())


def _layer_predicted(arch: str, index: int, n_hidden: int) -> bool:
    rule = PREDICTED_PER_LAYER_INVARIANT[arch]
    if rule == "hidden":
        return index < n_hidden
    if rule == "blocks":  # residual archs: linears.0 is the stem
        return 1 <= index < n_hidden
    if rule == "none":
        return False
    raise ValueError(f"unknown per-layer prediction {rule!r} for {arch!r}")


def predicted_invariant(arch: str, transform: str, layer_index: int, mode: str,
                        n_hidden: int) -> bool:
    """DESIGN §3's prediction for one cell of the symmetry map. BatchNorm in eval mode
    with running statistics *not* rescaled is predicted not invariant."""
    if mode == "eval" and arch == "bn":
        return False
    if transform == "joint":
        return PREDICTED_JOINT_INVARIANT[arch]
    return _layer_predicted(arch, layer_index, n_hidden)


def probe_modes(model: nn.Module) -> tuple[str, ...]:
    """BatchNorm archs are probed in the three :data:`BN_MODES`; the others in ``eval``
    (``model.eval()``; they have no train/eval difference anyway)."""
    return BN_MODES if _has_bn(model) else ("eval",)


# --------------------------------------------------------------------------- C1

def symmetry_map(model: MLP, x: torch.Tensor,
                 scales: Sequence[float] = DEFAULT_SCALES, tol: float = DEFAULT_TOL,
                 warm_bn: bool | None = None) -> pd.DataFrame:
    """Claim C1: does scaling a layer (or all hidden layers together) change the logits?

    For every linear layer before the head (``transform="layer"``: that layer's W and b
    times a) and for the joint transform (``transform="joint"``, ``layer_index=-1``:
    every linear layer before the head times a -- for residual archs the stem and every
    block) and every a in ``scales``, ``rel_change = max|logits' − logits| / max|logits|``
    on the inputs ``x``.

    Probes run on a float64 deep copy with ε → :data:`EXACT_EPS` (see the module
    docstring): ``rel_change``/``invariant`` (rel_change < tol) measure the exact symmetry;
    ``rel_change_model_eps``/``invariant_model_eps`` repeat it with the model's own ε.

    Modes: non-BN archs run in ``eval``. BatchNorm archs run in ``train`` (batch
    statistics), ``eval`` (running statistics left alone -- predicted NOT invariant) and
    ``eval_rescaled`` (running_mean·a, running_var·a² for the BN after every scaled
    layer). If the BN running statistics are untouched (``num_batches_tracked == 0``, the
    init mean 0 / var 1) they are first given realistic values by
    :data:`BN_WARMUP_PASSES` train-mode forwards on ``x`` (on the copy; ``warm_bn``
    forces or forbids this). A trained model keeps its own statistics.

    Columns: :data:`SYMMETRY_COLUMNS`.
    """
    arch, n_hidden = model.arch, _n_hidden(model)
    names = layer_names(arch, model.depth)
    device = next(model.parameters()).device
    x64 = x.detach().to(device=device, dtype=torch.float64)
    base = copy.deepcopy(model).double()
    if warm_bn or (warm_bn is None and _needs_warmup(base)):
        _warm_bn(base, x64)
    model_eps = _model_eps(base)
    exact = copy.deepcopy(base)
    _set_eps(exact, EXACT_EPS)
    variants = {"exact": exact, "model_eps": base}

    transforms = [("layer", i, [i]) for i in range(n_hidden)]
    transforms.append(("joint", -1, list(range(n_hidden))))
    rows = []
    for mode in probe_modes(model):
        refs = {k: _logits(m, x64, mode) for k, m in variants.items()}
        for transform, index, indices in transforms:
            for a in scales:
                rel = {k: _rel_change(_logits(m, x64, mode, indices, float(a)), refs[k])
                       for k, m in variants.items()}
                pred = predicted_invariant(arch, transform, index, mode, n_hidden)
                inv = rel["exact"] < tol
                rows.append(dict(
                    arch=arch, layer=names[index] if index >= 0 else "joint",
                    layer_index=index, transform=transform, scale=float(a), mode=mode,
                    rel_change=rel["exact"], predicted_invariant=pred, invariant=inv,
                    matches_prediction=inv == pred,
                    rel_change_model_eps=rel["model_eps"],
                    invariant_model_eps=rel["model_eps"] < tol,
                    norm_eps=model_eps, tol=tol,
                ))
    return pd.DataFrame(rows, columns=SYMMETRY_COLUMNS)


def invariant_layers(table: pd.DataFrame, mode: str | None = None) -> tuple[list[int], bool]:
    """From a :func:`symmetry_map` table: the layers invariant on their own at every
    probed scale, and whether the joint transform is. ``mode`` defaults to
    ``eval_rescaled`` when present (BN), else ``eval``."""
    if mode is None:
        mode = "eval_rescaled" if (table["mode"] == "eval_rescaled").any() else "eval"
    t = table[table["mode"] == mode]
    per_layer = t[t["transform"] == "layer"].groupby("layer_index")["invariant"].all()
    joint = bool(t[t["transform"] == "joint"]["invariant"].all())
    return sorted(int(i) for i, ok in per_layer.items() if ok), joint


# --------------------------------------------------------------------------- ε floor

def _norm_input_variance(model: MLP, x: torch.Tensor, layer_index: int) -> np.ndarray:
    """Variances of the input of the norm that follows ``layer_index`` (LN: per sample
    over features; BN: per feature over the batch). Empty if there is no single one."""
    arch = model.arch
    if arch in ("ln", "bn"):
        norm = model.norms[layer_index]
    elif arch == "resln" and layer_index >= 1:
        norm = model.norms[layer_index - 1]
    else:
        return np.array([])
    seen = []
    handle = norm.register_forward_pre_hook(lambda mod, inp: seen.append(inp[0].detach()))
    try:
        with torch.no_grad():
            model(x)
    finally:
        handle.remove()
    z = seen[0].double()
    var = z.var(dim=0, unbiased=False) if arch == "bn" else z.var(dim=-1, unbiased=False)
    return var.cpu().numpy()


def epsilon_floor(model: MLP, x: torch.Tensor, layer_index: int, tol: float = DEFAULT_TOL,
                  scales: Sequence[float] | np.ndarray = np.logspace(-8, 0, 33),
                  dtypes: Sequence[torch.dtype] = (torch.float32, torch.float64),
                  mode: str | None = None, refine: int = 20) -> dict:
    """How far down can an invariant layer be scaled before the norm's ε shows?

    The layer ``layer_index`` (or the joint group with ``layer_index=-1``) must be a
    predicted symmetry. With ε in the denominator, LN_ε(a·z) = (z − μ)/sqrt(Var(z) + ε/a²):
    once a²·Var(z) ≲ ε the output is no longer normalised at all (the O(1) breakdown at
    ``a_eps = sqrt(ε / median Var(z))``), and to first order the relative change is
    δ(a) ≈ ε·(1/a² − 1)/(2·Var(z)) long before that -- so at a tight ``tol`` the floor
    sits far above ``a_eps``.

    Scans ``scales`` from the largest down, with the model's own ε, once per dtype
    (float32 -- the dtype the models train in -- and float64). ``grid_floor`` is the
    smallest scale down to which every scanned scale keeps rel_change < tol; ``floor``
    refines it by ``refine`` bisection steps on log a between that scale and the first
    failing one. If the scan never fails, ``reached_grid_end`` is True and
    ``floor = min(scales)``. ``first_order_floor = sqrt(ε / (2·tol·min Var(z) + ε))`` is
    where δ(a), for the sample with the smallest Var(z), reaches ``tol``; the curve's
    ``first_order`` column is δ(a) itself. δ is the change of the norm's *output*: for the
    last hidden layer it tracks the logits' change closely; an earlier layer's change is
    partly normalised away by the next norm, so there it is an upper bound. Since ε, not rounding, sets the floor, float32 and
    float64 floors are expected to agree; dtype only matters with ε → 0 (float32 rounding
    ~1e-7 stays below any sensible tol down to underflow).

    Returns a dict: ``arch``, ``layer``, ``layer_index``, ``mode``, ``tol``, ``norm_eps``,
    ``var_z_median``, ``var_z_min``, ``a_eps``, ``first_order_floor``, ``floor``
    ({dtype name: scale}), ``reached_grid_end`` ({dtype name: bool}), ``floors``
    (DataFrame: dtype, floor, grid_floor, reached_grid_end) and ``curve`` (DataFrame:
    arch, layer, dtype, scale, rel_change, invariant, first_order).
    """
    arch, n_hidden = model.arch, _n_hidden(model)
    if mode is None:
        mode = "eval_rescaled" if _has_bn(model) else "eval"
    transform = "joint" if layer_index == -1 else "layer"
    if layer_index != -1 and not 0 <= layer_index < n_hidden:
        raise ValueError(f"layer_index must be -1 or in [0, {n_hidden}), got {layer_index}")
    if not predicted_invariant(arch, transform, layer_index, mode, n_hidden):
        raise ValueError(f"{arch!r}: {transform} {layer_index} is not a predicted symmetry "
                         f"in mode {mode!r}; there is no ε floor to measure")
    indices = list(range(n_hidden)) if layer_index == -1 else [layer_index]
    name = "joint" if layer_index == -1 else layer_names(arch, model.depth)[layer_index]
    scales = np.sort(np.asarray(scales, dtype=float))[::-1]
    device = next(model.parameters()).device

    base64 = copy.deepcopy(model).double()
    x64 = x.detach().to(device=device, dtype=torch.float64)
    if _needs_warmup(base64):
        _warm_bn(base64, x64)
    var = _norm_input_variance(copy.deepcopy(base64).eval(), x64, layer_index) \
        if layer_index >= 0 else np.array([])
    eps = _model_eps(base64)

    med = float(np.median(var)) if var.size else float("nan")
    vmin = float(var.min()) if var.size else float("nan")
    rows, floors = [], []
    for dtype in dtypes:
        base = copy.deepcopy(base64).to(dtype)
        xd = x64.to(dtype)
        ref = _logits(base, xd, mode)

        def rel_at(a: float) -> float:
            return _rel_change(_logits(base, xd, mode, indices, a), ref)

        last_ok, first_fail = float("nan"), None
        for a in scales:
            rel = rel_at(float(a))
            ok = rel < tol
            rows.append(dict(arch=arch, layer=name, dtype=_dtype_name(dtype),
                             scale=float(a), rel_change=rel, invariant=ok,
                             first_order=eps * (1 / a**2 - 1) / (2 * vmin)))
            if first_fail is None:
                if ok:
                    last_ok = float(a)
                else:
                    first_fail = float(a)
        floor = last_ok
        if first_fail is not None and not math.isnan(last_ok) and refine:
            lo_, hi_ = math.log(first_fail), math.log(last_ok)  # fails at lo_, holds at hi_
            for _ in range(refine):
                mid = 0.5 * (lo_ + hi_)
                if rel_at(math.exp(mid)) < tol:
                    hi_ = mid
                else:
                    lo_ = mid
            floor = math.exp(hi_)
        floors.append(dict(dtype=_dtype_name(dtype), floor=floor,
                           grid_floor=last_ok, reached_grid_end=first_fail is None))
    floors_df = pd.DataFrame(floors)
    first_order_floor = math.sqrt(eps / (2 * tol * vmin + eps)) if var.size else float("nan")
    return dict(
        arch=arch, layer=name, layer_index=layer_index, mode=mode, tol=tol, norm_eps=eps,
        var_z_median=med, var_z_min=vmin,
        a_eps=math.sqrt(eps / med) if var.size else float("nan"),
        first_order_floor=first_order_floor,
        floor=dict(zip(floors_df["dtype"], floors_df["floor"])),
        reached_grid_end=dict(zip(floors_df["dtype"], floors_df["reached_grid_end"])),
        floors=floors_df, curve=pd.DataFrame(rows),
    )


# --------------------------------------------------------------------------- C2

def total_penalty(model: nn.Module) -> float:
    """Σ‖p‖² over every parameter (hidden layers, head, norm γ/β): what decay scope
    ``all`` penalises, and where penalty moved out of the hidden layers ends up."""
    with torch.no_grad():
        return float(sum(p.double().square().sum() for p in model.parameters()))


def _hidden_penalty(model: MLP) -> float:
    with torch.no_grad():
        return float(model.hidden_penalty())


@torch.no_grad()
def train_loss(model: MLP, x: torch.Tensor, y: torch.Tensor) -> float:
    """Mean cross-entropy in eval mode, in the model's own dtype."""
    was_training = model.training
    model.eval()
    p = next(model.parameters())
    loss = F.cross_entropy(model(x.to(device=p.device, dtype=p.dtype)), y.to(p.device))
    model.train(was_training)
    return float(loss)


def shrink(model: MLP, indices: Iterable[int], a: float) -> MLP:
    """A copy of ``model`` with the (W, b) of every layer in ``indices`` times ``a`` and,
    for BatchNorm, the running statistics rescaled with them (mean·a, var·a²) so that
    eval mode sees the same normalised activations."""
    m = copy.deepcopy(model)
    _scale_layers(m, indices, a, rescale_bn=True)
    return m


def _rebalance_log_multipliers(model: MLP, u: list[torch.Tensor]) -> dict[str, torch.Tensor]:
    """log of the factor each parameter is multiplied by, as a function of the
    rebalancing variables ``u`` (broadcastable to the parameter's shape).

    plain  (per hidden neuron j of layer l, factor c = exp(u_l[j])):
           W_l -> diag(c_l) W_l diag(c_{l-1})^-1, b_l -> c_l ⊙ b_l, head W -> W diag(c_{L-1})^-1
           (ReLU(c·z) = c·ReLU(z) for c > 0).
    res    (per residual-stream channel, D = diag(exp(u))): stem W, b -> D W, D b;
           block W, b -> D W D^-1, D b; head W -> W D^-1.  Then h -> D h everywhere.
    preln  (one scalar c = exp(u)): stem and every block's W, b -> c·(W, b); head W -> W/c.
           LN(c·h) = LN(h) inside the blocks, so h -> c·h everywhere.
    """
    arch, n_hidden = model.arch, _n_hidden(model)
    head = n_hidden
    out: dict[str, torch.Tensor] = {}
    if arch == "plain":
        prev = None
        for l in range(n_hidden):
            ul = u[l]
            out[f"linears.{l}.weight"] = ul[:, None] - (0 if prev is None else prev[None, :])
            out[f"linears.{l}.bias"] = ul
            prev = ul
        out[f"linears.{head}.weight"] = -prev[None, :]
    elif arch == "res":
        d = u[0]
        out["linears.0.weight"] = d[:, None]
        out["linears.0.bias"] = d
        for l in range(1, n_hidden):
            out[f"linears.{l}.weight"] = d[:, None] - d[None, :]
            out[f"linears.{l}.bias"] = d
        out[f"linears.{head}.weight"] = -d[None, :]
    elif arch == "preln":
        c = u[0]
        for l in range(n_hidden):
            out[f"linears.{l}.weight"] = c
            out[f"linears.{l}.bias"] = c
        out[f"linears.{head}.weight"] = -c
    else:
        raise ValueError(f"no rebalancing symmetry implemented for {arch!r}")
    return out


def _rebalance_init(model: MLP, granularity: str) -> list[torch.Tensor]:
    width, n_hidden = model.dims["width"], _n_hidden(model)
    kw = dict(dtype=torch.float64, requires_grad=True)
    if model.arch == "plain":
        size = width if granularity == "neuron" else 1
        return [torch.zeros(size, **kw) for _ in range(n_hidden)]
    if model.arch == "res":
        return [torch.zeros(width if granularity == "neuron" else 1, **kw)]
    return [torch.zeros((), **kw)]


def rebalance(model: MLP, granularity: str = "neuron",
              max_iter: int = 500) -> tuple[MLP, dict]:
    """Minimise the total penalty (:func:`total_penalty`; hidden layers plus head) over
    the positive-rescaling symmetry of a ``plain``/``res``/``preln`` net (see
    :func:`_rebalance_log_multipliers`); the function is unchanged by construction.

    The objective Σ_p Σ p²·exp(2·logmult_p(u)) is a sum of exponentials of linear
    functions of u, hence convex; L-BFGS in float64 finds its minimum. ``granularity``
    "neuron" uses one factor per hidden unit (the full ReLU rescaling group; for ``res``
    per stream channel), "layer" one per layer (the coarser version; ``preln`` has only
    one scalar either way). Returns the rebalanced copy and the optimiser's record.
    """
    if granularity not in ("neuron", "layer"):
        raise ValueError(f"granularity must be 'neuron' or 'layer', got {granularity!r}")
    params = dict(model.named_parameters())
    sq = {n: p.detach().double().cpu().square() for n, p in params.items()}
    u = _rebalance_init(model, granularity)

    def objective() -> torch.Tensor:
        logm = _rebalance_log_multipliers(model, u)
        return sum((sq[n] * torch.exp(2 * lm)).sum() for n, lm in logm.items())

    opt = torch.optim.LBFGS(u, lr=1, max_iter=max_iter, tolerance_grad=1e-12,
                            tolerance_change=1e-15, line_search_fn="strong_wolfe")

    def closure():
        opt.zero_grad()
        value = objective()
        value.backward()
        return value

    with torch.no_grad():
        start = float(objective())
    opt.step(closure)
    with torch.no_grad():
        end = float(objective())
        if not end <= start:  # never accept a worse point
            for t in u:
                t.zero_()
        logm = _rebalance_log_multipliers(model, u)
        out = copy.deepcopy(model)
        for n, p in out.named_parameters():
            if n in logm:
                factor = torch.exp(logm[n]).to(device=p.device, dtype=p.dtype)
                p.mul_(factor)
    log_factors = torch.cat([t.detach().reshape(-1) for t in u])
    return out, dict(objective_before=start, objective_after=min(start, end),
                     log_factor_min=float(log_factors.min()),
                     log_factor_max=float(log_factors.max()))


def _default_groups(model: MLP, x: torch.Tensor) -> tuple[list[int], str]:
    """Invariant groups as found by the symmetry map (exact probes on up to 256 rows):
    the per-layer invariant layers, else the joint group if that is invariant."""
    table = symmetry_map(model, x[:256])
    per_layer, joint = invariant_layers(table)
    if per_layer:
        return per_layer, "layer"
    if joint:
        return list(range(_n_hidden(model))), "joint"
    return [], "none"


def remove_penalty(model: MLP, x_train: torch.Tensor, y_train: torch.Tensor,
                   groups: Sequence[int] | None = None, rel_tol: float = 1e-4,
                   lo: float = 1e-12, n_bisect: int = 40,
                   curve_scales: Sequence[float] | np.ndarray = np.logspace(-12, 0, 49),
                   granularity: str = "neuron") -> dict:
    """Claim C2: how much of a trained net's hidden L2 penalty (``model.hidden_penalty()``)
    can symmetry transforms remove with the train loss unchanged to ``rel_tol``?

    method ``invariant_shrink`` (archs with invariant groups: by default the layers the
    :func:`symmetry_map` finds invariant on their own, else the joint group -- ``ln``,
    ``bn``, ``resln`` blocks, ``preln_final`` stem+blocks; or ``groups``, a list of layer
    indices): all groups shrink by one common factor a. The model is in eval mode and, for
    BN, running statistics are rescaled with the weights. Bisection on log a over
    [``lo``, 1] finds the smallest a with |L(a) − L(1)| ≤ rel_tol·L(1) (it assumes the
    violation grows as a falls, as the ε term ε/a² does). The computation stays in the
    model's own dtype (float32 for trained nets): the ε floor in that dtype is the one
    that matters in practice. ``eps_limited`` is True when the bisection stopped above
    ``lo`` -- with ε = 0 the loss would not move at all. ``curve`` gives (scale, penalty,
    total_penalty, rel_loss_change) on ``curve_scales`` for a figure.

    method ``relu_rebalance`` (``plain``, ``res``, ``preln``: no invariant group, but a
    positive-rescaling symmetry with the head absorbing the factor; see :func:`rebalance`):
    minimises the *total* penalty (hidden + head), since the hidden penalty alone can be
    emptied into the head. ``scale`` is NaN; ``curve`` is empty.

    method ``none`` (``postln``): ratio 1.

    Returns a dict with ``arch, method, group_kind`` ("layer"/"joint" from the map,
    "given", or "none"), ``penalty_before, penalty_after, ratio, scale,
    loss_before, loss_after, rel_loss_change, loss_ok, eps_limited, total_penalty_before,
    total_penalty_after, total_ratio, shrunk`` (comma-joined parameter names) and
    ``curve`` (DataFrame, :data:`CURVE_COLUMNS`). ``pd.DataFrame([{k: v for k, v in
    r.items() if k != "curve"}])`` makes it a table row.
    """
    arch = model.arch
    work = copy.deepcopy(model).eval()
    p0 = next(work.parameters())
    x = x_train.detach().to(device=p0.device, dtype=p0.dtype)
    y = y_train.detach().to(p0.device)
    loss0 = train_loss(work, x, y)
    pen0 = _hidden_penalty(work)
    tot0 = total_penalty(work)
    if groups is None:
        indices, kind = _default_groups(work, x)
    else:
        indices, kind = sorted(int(g) for g in groups), "given"
    base = dict(arch=arch, group_kind=kind, penalty_before=pen0, loss_before=loss0,
                total_penalty_before=tot0)

    def row(method, after: MLP, scale, eps_limited, shrunk, curve):
        loss1 = train_loss(after, x, y)
        pen1, tot1 = _hidden_penalty(after), total_penalty(after)
        rel = abs(loss1 - loss0) / abs(loss0)
        return dict(base, method=method, penalty_after=pen1,
                    ratio=pen1 / pen0 if pen0 else float("nan"), scale=scale,
                    loss_after=loss1, rel_loss_change=rel, loss_ok=rel <= rel_tol,
                    eps_limited=eps_limited, total_penalty_after=tot1,
                    total_ratio=tot1 / tot0 if tot0 else float("nan"),
                    shrunk=",".join(shrunk), curve=curve)

    if indices:
        def rel_loss(a: float) -> tuple[float, MLP]:
            m = shrink(work, indices, a)
            return abs(train_loss(m, x, y) - loss0) / abs(loss0), m

        def ok(a: float) -> bool:
            return rel_loss(a)[0] <= rel_tol

        if ok(lo):
            scale, eps_limited = lo, False
        else:  # invariant: ok(lo) false, ok(hi) true
            log_lo, log_hi = math.log(lo), 0.0
            for _ in range(n_bisect):
                mid = 0.5 * (log_lo + log_hi)
                if ok(math.exp(mid)):
                    log_hi = mid
                else:
                    log_lo = mid
            scale, eps_limited = math.exp(log_hi), True
        curve = []
        for a in curve_scales:
            rel, m = rel_loss(float(a))
            curve.append(dict(arch=arch, method="invariant_shrink", scale=float(a),
                              penalty=_hidden_penalty(m),
                              total_penalty=total_penalty(m), rel_loss_change=rel))
        shrunk = [n for i in indices for n in _layer_params(i)]
        return row("invariant_shrink", shrink(work, indices, scale), scale, eps_limited,
                   shrunk, pd.DataFrame(curve, columns=CURVE_COLUMNS))

    empty = pd.DataFrame(columns=CURVE_COLUMNS)
    if arch in REBALANCE_ARCHS:
        after, _ = rebalance(work, granularity=granularity)
        shrunk = list(_rebalance_log_multipliers(work, _rebalance_init(work, granularity)))
        return row("relu_rebalance", after, float("nan"), False, shrunk, empty)
    return row("none", copy.deepcopy(work), 1.0, False, [], empty)
