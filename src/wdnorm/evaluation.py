"""The evaluation stage: tidy tables from probes and trained runs (claims C1-C6).

Pure computation on tensors, run directories and DataFrames, plus small read helpers; no
snakemake, no config. The column contract is the README's "Result tables" section; this
module may add columns, never rename them (claims, figures and the audit read them).

==================  ===========================================  ========================
table               rows                                         made by
==================  ===========================================  ========================
symmetry            arch x layer/joint x scale x mode (fresh)    :func:`symmetry_tables`
epsilon_floor       arch x predicted-invariant layer x dtype     :func:`symmetry_tables`
gradient_identity   arch x layer (+ joint row), plain SGD, λ=0   :func:`gradient_identity_table`
runs                trained run (grid "runs" and "mimic")        :func:`slab_tables`
dynamics            run x linear layer (head included)           :func:`slab_tables`
penalty             grid run                                     :func:`slab_tables`
penalty_curve       seed-0 run of the mimic weight decay          :func:`slab_tables`
==================  ===========================================  ========================

Diverged runs keep their rows (``status == "diverged"``) with NaN metrics: a table that
silently drops them would make a grid look cleaner than it is.
"""

from __future__ import annotations

import copy
import logging
import math
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from . import models, runs, symmetry
from .engine import Member, OptimiserConfig, SlabConfig, train_slab

log = logging.getLogger("wdnorm")

#: Fraction of training (at the end) over which the equilibrium angle is averaged.
WINDOW_FRACTION = 0.25
#: t_equilibrium = EQUILIBRIUM_FACTOR / (2 lr wd): three e-folding times of the norm.
EQUILIBRIUM_FACTOR = 3.0
#: C2: loss change allowed by a symmetry transform, relative.
PENALTY_REL_TOL = 1e-4
#: C2: bisection steps on log a over [1e-4, 1] (9.2 log units / 2^14 = 6e-4: the scale
#: to 0.06 %, the ratio to 0.1 %, far finer than the tables or figures resolve; the
#: symmetry module's default of 40 steps on [1e-12, 1] only costs time). See _shrink_result.
PENALTY_BISECT = 14
#: C2: L-BFGS iterations of the ReLU rebalance (plain/res/preln); see _rebalance_result.
REBALANCE_ITER = 50
#: C2: the loss is evaluated on at most this many training rows (a fixed, seeded subset
#: when the training set is larger: digits' 1347 rows are used in full).
PENALTY_MAX_ROWS = 4096
PENALTY_ROWS_SEED = 0
#: C2: the scales of penalty_curve.csv.
CURVE_SCALES = tuple(np.logspace(-12, 0, 25))
#: C1: inputs of the symmetry probes (first rows of the training set).
PROBE_ROWS = 256

RUNS_COLUMNS = [
    "dataset", "optimiser", "arch", "kind", "run_id", "lr", "weight_decay", "seed",
    "algorithm", "momentum", "beta1", "decay_scope", "status", "diverged_step", "steps",
    "train_loss", "train_acc", "test_loss", "test_acc", "gen_gap_loss", "gen_gap_acc",
    "hidden_penalty", "head_sq_norm", "is_matched_pair", "mimic_reference",
]
DYNAMICS_COLUMNS = [
    "dataset", "optimiser", "arch", "kind", "run_id", "lr", "weight_decay", "seed",
    "algorithm", "momentum", "beta1", "status", "layer", "layer_index", "is_head",
    "predicted_invariant", "decayed", "steps", "t_equilibrium", "past_equilibrium",
    "window_start", "angle_mean", "angle_std", "angle_pred", "angle_ratio",
    "cos_abs_mean", "sq_norm_init", "sq_norm_final", "layer_lr_final", "eff_lr_final",
]
GRADIENT_IDENTITY_COLUMNS = [
    "dataset", "arch", "layer", "layer_index", "transform", "is_head",
    "predicted_invariant", "steps", "lr", "cos_abs_max", "cos_abs_mean",
    "identity_rel_err", "identity_rel_err_median", "identity_rel_err_total",
    "norm_growth", "sq_norm_init", "sq_norm_final",
]
PENALTY_COLUMNS = [
    "dataset", "optimiser", "arch", "run_id", "lr", "weight_decay", "seed", "status",
    "is_matched_pair", "method", "group_kind", "groups", "penalty_before", "penalty_after",
    "ratio", "scale", "loss_before", "loss_after", "rel_loss_change", "loss_ok",
    "eps_limited", "total_penalty_before", "total_penalty_after", "total_ratio",
    "ratio_eps0", "scale_eps0", "rel_loss_change_eps0", "eps_limited_eps0",
    "norm_eps", "rel_tol", "loss_rows", "group_penalty_before", "group_ratio",
    "group_ratio_eps0",
]
PENALTY_CURVE_COLUMNS = [
    "dataset", "optimiser", "arch", "run_id", "variant", "method", "scale", "penalty",
    "total_penalty", "rel_loss_change",
]
EPSILON_FLOOR_COLUMNS = [
    "dataset", "arch", "layer", "layer_index", "transform", "mode", "dtype", "floor",
    "grid_floor", "reached_grid_end", "norm_eps", "a_eps", "first_order_floor",
    "var_z_median", "var_z_min", "tol",
]


# --------------------------------------------------------------------------- helpers

def _n_hidden(arch: str, depth: int) -> int:
    return models.n_linear_layers(arch, depth) - 1


def layer_predicted_invariant(arch: str, depth: int, index: int) -> bool:
    """DESIGN §3's per-layer prediction for linear layer ``index`` (the head: False;
    BatchNorm as trained, i.e. with batch statistics)."""
    n_hidden = _n_hidden(arch, depth)
    if index >= n_hidden:
        return False
    return symmetry.predicted_invariant(arch, "layer", index, "train", n_hidden)


def angle_prediction(algorithm: str, lr: float, weight_decay: float, momentum: float = 0.0,
                     beta1: float = 0.9) -> float:
    """Equilibrium angular update per step of a scale-invariant weight (DESIGN §2):
    SGD(momentum α) √(2ηλ/(1+α)); AdamW √(2ηλ(1−β₁)/(1+β₁)); NaN for Adam with coupled L2
    (no closed form) and for λ = 0 (no equilibrium)."""
    if not weight_decay > 0 or not lr > 0:
        return float("nan")
    if algorithm == "sgd":
        return math.sqrt(2 * lr * weight_decay / (1 + momentum))
    if algorithm == "adamw":
        return math.sqrt(2 * lr * weight_decay * (1 - beta1) / (1 + beta1))
    return float("nan")


def equilibrium_step(lr: float, weight_decay: float) -> float:
    """t_equilibrium = 3/(2 η λ): three e-folding times of the norm's approach (inf: λ=0)."""
    if not weight_decay > 0 or not lr > 0:
        return float("inf")
    return EQUILIBRIUM_FACTOR / (2 * lr * weight_decay)


def window_start(steps: int, t_equilibrium: float) -> int:
    """First step of the averaging window: the last 25% of training, moved later to
    t_equilibrium when training got past it (always leaving at least one step)."""
    start = int(math.floor((1 - WINDOW_FRACTION) * steps))
    if steps >= t_equilibrium:
        start = max(start, int(math.ceil(t_equilibrium)))
    return max(0, min(start, steps - 1))


def is_matched(lr: float, weight_decay: float, matched_pairs: Iterable) -> bool:
    return any(math.isclose(lr, float(a), rel_tol=1e-9) and
               math.isclose(weight_decay, float(b), rel_tol=1e-9, abs_tol=1e-15)
               for a, b in (matched_pairs or []))


def sq_norm_series(trace: dict[str, np.ndarray]) -> np.ndarray:
    """``[T+1, L]`` squared norms (before every step, then the end), from a run's trace
    as written by :func:`wdnorm.runs.member_trace` (already concatenated) or straight from
    a :class:`~wdnorm.engine.SlabResult` member (``sq_norm`` + ``sq_norm_end``)."""
    sq = np.asarray(trace["sq_norm"], dtype=np.float64)
    if "sq_norm_end" in trace:
        sq = np.concatenate([sq, np.asarray(trace["sq_norm_end"], dtype=np.float64)])
    return sq


def _penalty_rows(x: torch.Tensor, y: torch.Tensor, max_rows: int | None,
                  seed: int = PENALTY_ROWS_SEED) -> tuple[torch.Tensor, torch.Tensor]:
    if max_rows is None or len(x) <= max_rows:
        return x, y
    gen = torch.Generator().manual_seed(seed)
    idx = torch.randperm(len(x), generator=gen)[:max_rows].sort().values
    return x[idx], y[idx]


def _frame(rows: list[dict], columns: Sequence[str]) -> pd.DataFrame:
    """Rows as a DataFrame with the contract's columns first (any extra ones after)."""
    df = pd.DataFrame(rows)
    extra = [c for c in df.columns if c not in columns]
    return df.reindex(columns=list(columns) + extra)


def _dedupe_dirs(paths: Iterable) -> list[Path]:
    """Run directories from a list of run directories or files inside them."""
    out: list[Path] = []
    for p in paths:
        p = Path(p)
        d = p if p.is_dir() else p.parent
        if d not in out:
            out.append(d)
    return out


# --------------------------------------------------------------------------- C1

def symmetry_tables(arch_list: Sequence[str], model_cfg: dict, x: torch.Tensor,
                    dataset: str, n_classes: int = 10,
                    scales: Sequence[float] = symmetry.DEFAULT_SCALES,
                    tol: float = symmetry.DEFAULT_TOL) -> tuple[pd.DataFrame, pd.DataFrame]:
    """C1 tables on freshly initialised models (``torch.manual_seed(0)``), probed on the
    first :data:`PROBE_ROWS` rows of ``x`` (real training inputs).

    ``symmetry``: :func:`wdnorm.symmetry.symmetry_map` per arch, plus ``dataset``.
    ``epsilon_floor``: :func:`wdnorm.symmetry.epsilon_floor` on every predicted-invariant
    hidden layer (``ln``, ``bn``: every hidden layer; ``resln``: the blocks) and on the
    joint group (``layer_index=-1``) where it is a predicted symmetry (``ln``, ``bn``,
    ``preln_final``), one row per dtype (float32, float64). BatchNorm is probed in
    ``eval_rescaled`` mode (the only mode in which its scaling is an exact symmetry of a
    network whose running statistics move with it).
    """
    x = x[:PROBE_ROWS]
    d_in = int(x.shape[1])
    width, depth = int(model_cfg["width"]), int(model_cfg["depth"])
    norm_eps = float(model_cfg.get("norm_eps", 1e-5))
    maps, floors = [], []
    for arch in arch_list:
        torch.manual_seed(0)
        net = models.build_model(arch, d_in, width, depth, n_classes, norm_eps=norm_eps)
        table = symmetry.symmetry_map(net, x, scales=scales, tol=tol)
        maps.append(table.assign(dataset=dataset))
        n_hidden = _n_hidden(arch, depth)
        mode = "eval_rescaled" if arch == "bn" else "eval"
        targets = [i for i in range(n_hidden)
                   if symmetry.predicted_invariant(arch, "layer", i, mode, n_hidden)]
        if symmetry.predicted_invariant(arch, "joint", -1, mode, n_hidden):
            targets.append(-1)
        for index in targets:
            res = symmetry.epsilon_floor(net, x, index, tol=tol, mode=mode)
            for _, f in res["floors"].iterrows():
                floors.append(dict(
                    dataset=dataset, arch=arch, layer=res["layer"], layer_index=index,
                    transform="joint" if index == -1 else "layer", mode=res["mode"],
                    dtype=f["dtype"], floor=f["floor"], grid_floor=f["grid_floor"],
                    reached_grid_end=bool(f["reached_grid_end"]), norm_eps=res["norm_eps"],
                    a_eps=res["a_eps"], first_order_floor=res["first_order_floor"],
                    var_z_median=res["var_z_median"], var_z_min=res["var_z_min"],
                    tol=res["tol"]))
        log.info("symmetry %s: %d cells, %d mismatches", arch, len(table),
                 int((~table["matches_prediction"]).sum()))
    sym = pd.concat(maps, ignore_index=True) if maps else pd.DataFrame(
        columns=symmetry.SYMMETRY_COLUMNS)
    sym = sym[["dataset"] + [c for c in sym.columns if c != "dataset"]]
    return sym, _frame(floors, EPSILON_FLOOR_COLUMNS)


# --------------------------------------------------------------------------- C3

def identity_columns(sq: np.ndarray, grad_sq: np.ndarray, cos: np.ndarray,
                     lr: float | np.ndarray) -> dict:
    """C3 numbers for one series (``sq`` [T+1], ``grad_sq``/``cos`` [T]; ``lr`` scalar or
    [T]): with ⟨w, g⟩ = 0 and plain SGD, ‖w_{t+1}‖² − ‖w_t‖² = η²‖g_t‖² exactly."""
    sq, grad_sq, cos = (np.asarray(a, dtype=np.float64) for a in (sq, grad_sq, cos))
    lr = np.broadcast_to(np.asarray(lr, dtype=np.float64), grad_sq.shape)
    growth = np.diff(sq)
    pred = lr ** 2 * grad_sq
    with np.errstate(divide="ignore", invalid="ignore"):
        per_step = np.abs(growth - pred) / pred
        total = abs(growth.sum() - pred.sum()) / pred.sum()
    per_step = per_step[np.isfinite(per_step)]
    return dict(
        cos_abs_max=float(np.abs(cos).max()) if cos.size else float("nan"),
        cos_abs_mean=float(np.abs(cos).mean()) if cos.size else float("nan"),
        identity_rel_err=float(per_step.max()) if per_step.size else float("nan"),
        identity_rel_err_median=float(np.median(per_step)) if per_step.size else float("nan"),
        identity_rel_err_total=float(total),
        norm_growth=float(sq[-1] / sq[0]), sq_norm_init=float(sq[0]),
        sq_norm_final=float(sq[-1]),
    )


def _identity_probe(arch: str, cfg_kw: dict, steps: int, lr: float, prepared,
                    dataset: str) -> list[dict]:
    cfg = SlabConfig(arch=arch, optimiser=OptimiserConfig("sgd", momentum=0.0),
                     decay_scope="hidden", trace=True, **cfg_kw)
    result = train_slab(cfg, [Member(float(lr), 0.0, 0)], prepared.x_train,
                        prepared.y_train, prepared.x_test, prepared.y_test,
                        max_steps=int(steps))
    trace = result.member_trace(0)
    sq = sq_norm_series(trace)
    gsq = trace["grad_sq_norm"].astype(np.float64)
    cos = trace["cos_wg"].astype(np.float64)
    depth = cfg.depth
    names = models.layer_names(arch, depth)
    n_hidden = _n_hidden(arch, depth)
    base = dict(dataset=dataset, arch=arch, steps=int(gsq.shape[0]), lr=float(lr),
                status="diverged" if result.diverged_step[0] >= 0 else "ok")
    rows = []
    for i, name in enumerate(names):
        rows.append(dict(base, layer=name, layer_index=i, transform="layer",
                         is_head=i == n_hidden,
                         predicted_invariant=layer_predicted_invariant(arch, depth, i),
                         **identity_columns(sq[:, i], gsq[:, i], cos[:, i], lr)))
    if symmetry.predicted_invariant(arch, "joint", -1, "train", n_hidden):
        h = slice(0, n_hidden)
        dot = (cos[:, h] * np.sqrt(sq[:-1, h] * gsq[:, h])).sum(1)
        jsq, jgsq = sq[:, h].sum(1), gsq[:, h].sum(1)
        jcos = dot / np.sqrt(jsq[:-1] * jgsq)
        rows.append(dict(base, layer="joint", layer_index=-1, transform="joint",
                         is_head=False, predicted_invariant=True,
                         **identity_columns(jsq, jgsq, jcos, lr)))
    log.info("gradient identity %s (eps %g): %d steps in %.1f s", arch, cfg.norm_eps,
             base["steps"], result.train_seconds)
    return rows


def gradient_identity_table(arch_list: Sequence[str], model_cfg: dict, batch_size: int,
                            steps: int, lr: float, prepared, dataset: str) -> pd.DataFrame:
    """C3 probe: each arch trained alone with plain SGD (no momentum), λ = 0, seed 0, for
    ``steps`` steps (trace on). One row per linear layer and, where the joint group is a
    predicted symmetry (``ln``, ``bn``, ``preln_final``), one ``transform="joint"`` row
    (``layer_index=-1``) on the group's summed squared norms, whose cosine is
    Σ⟨w_l, g_l⟩ / √(Σ‖w_l‖² Σ‖g_l‖²) -- for ``preln_final`` the identity holds only there.

    Like :func:`wdnorm.symmetry.symmetry_map`, the contract columns measure the *exact*
    symmetry: archs with norms are probed with every norm's ε = EXACT_EPS (→ 0), because
    LN/BN with ε > 0 leave a radial gradient component of relative size ~ε/Var(z) (cos
    ~1e-5..1e-4 with ε = 1e-5), which the identity's error 2⟨w,g⟩/(η‖g‖²) amplifies to
    ~1e-2. The same probe with the model's ε is repeated and reported in the
    ``*_model_eps`` columns (``norm_eps``: the ε of the contract columns;
    ``model_norm_eps``: the model's). Architectures without norms run once.

    ``identity_rel_err`` (max over steps) is dominated by float32 rounding of the logged
    squared norms when the per-step growth η²‖g‖² is tiny against ‖w‖² (differences of two
    ~1e1 numbers with 7 digits); ``identity_rel_err_total`` (sums over all steps, which
    telescope) is the robust test. ``identity_rel_err_median`` is reported as well.
    """
    n_train = len(prepared.x_train)
    batch_size = min(int(batch_size), n_train)
    epochs = max(1, math.ceil(int(steps) / (n_train // batch_size)))
    model_eps = float(model_cfg.get("norm_eps", 1e-5))
    cfg_kw = dict(d_in=int(prepared.meta["d_in"]), n_classes=int(prepared.meta["n_classes"]),
                  width=int(model_cfg["width"]), depth=int(model_cfg["depth"]),
                  epochs=epochs, batch_size=batch_size, eval_every=epochs)
    extra = ("cos_abs_max", "cos_abs_mean", "identity_rel_err", "identity_rel_err_median",
             "identity_rel_err_total", "norm_growth", "status")
    rows = []
    for arch in arch_list:
        has_norm = arch not in ("plain", "res")
        exact = _identity_probe(arch, dict(cfg_kw, norm_eps=symmetry.EXACT_EPS if has_norm
                                           else model_eps), steps, lr, prepared, dataset)
        if has_norm:
            real = _identity_probe(arch, dict(cfg_kw, norm_eps=model_eps), steps, lr,
                                   prepared, dataset)
        else:
            real = exact
        for e, r in zip(exact, real):
            e.update(norm_eps=symmetry.EXACT_EPS if has_norm else float("nan"),
                     model_norm_eps=model_eps if has_norm else float("nan"),
                     **{f"{k}_model_eps": r[k] for k in extra})
            rows.append(e)
    return _frame(rows, GRADIENT_IDENTITY_COLUMNS + ["status", "norm_eps", "model_norm_eps"])


# --------------------------------------------------------------------------- slabs

def _optimiser_fields(metrics: dict) -> dict:
    slab = metrics.get("slab", {})
    opt = slab.get("optimiser", {})
    return dict(algorithm=opt.get("algorithm"), momentum=float(opt.get("momentum", 0.0)),
                beta1=float(opt.get("beta1", 0.9)))


def _run_base(metrics: dict, matched_pairs) -> dict:
    lr, wd = float(metrics["lr"]), float(metrics["weight_decay"])
    return dict(dataset=metrics["dataset"], optimiser=metrics["optimiser"],
                arch=metrics["arch"], kind=metrics.get("kind", "runs"),
                run_id=metrics["run_id"], lr=lr, weight_decay=wd, seed=int(metrics["seed"]),
                **_optimiser_fields(metrics), status=metrics.get("status", "ok"),
                is_matched_pair=is_matched(lr, wd, matched_pairs))


def run_row(metrics: dict, trace: dict | None, matched_pairs=()) -> dict:
    """One row of runs.csv. Penalties come from the trace's last squared norms (the
    squared norm of (W, b) after the last step); NaN metrics for diverged runs."""
    base = _run_base(metrics, matched_pairs)
    ok = base["status"] == "ok"
    final = metrics.get("final", {})
    keys = ("train_loss", "train_acc", "test_loss", "test_acc", "gen_gap_loss", "gen_gap_acc")
    row = dict(base, decay_scope=metrics.get("slab", {}).get("decay_scope"),
               diverged_step=metrics.get("diverged_step"), steps=int(metrics["steps"]),
               **{k: float(final[k]) if ok and final.get(k) is not None else float("nan")
                  for k in keys})
    hidden = head = float("nan")
    if ok and trace is not None and "sq_norm" in trace:
        last = sq_norm_series(trace)[-1]
        hidden, head = float(last[:-1].sum()), float(last[-1])
    row.update(hidden_penalty=hidden, head_sq_norm=head)
    ref = metrics.get("mimic_reference")
    row["mimic_reference"] = Path(ref).name if ref else None
    return row


def dynamics_rows(metrics: dict, trace: dict, matched_pairs=()) -> list[dict]:
    """Rows of dynamics.csv for one run: one per linear layer (head included).

    A layer's effective weight decay is the run's λ when the slab's decay scope decays it
    (``decayed``; scope ``hidden`` leaves the head undecayed) and 0 otherwise, so
    ``t_equilibrium`` is inf and ``angle_pred`` NaN for undecayed layers (the head under
    ``hidden``) and for every layer of a λ = 0 or mimic run. ``eff_lr_final`` is the
    layer's last learning rate (the trace's ``lr``: the run's lr, or the mimic's rescaled
    one) over ``sq_norm_final``; ``layer_lr_final`` is that learning rate."""
    base = _run_base(metrics, matched_pairs)
    slab = metrics.get("slab", {})
    arch, depth = metrics["arch"], int(slab.get("depth", len(metrics["layers"]) - 1))
    scope = slab.get("decay_scope", "hidden")
    names = metrics.get("layers") or models.layer_names(arch, depth)
    n_hidden = len(names) - 1
    ok = base["status"] == "ok"
    angle = np.asarray(trace.get("angle"), dtype=np.float64) if "angle" in trace else None
    cos = np.asarray(trace.get("cos_wg"), dtype=np.float64) if "cos_wg" in trace else None
    sq = sq_norm_series(trace) if "sq_norm" in trace else None
    layer_lr = np.asarray(trace["lr"], dtype=np.float64) if "lr" in trace else None
    steps = int(metrics["steps"])
    rows = []
    for i, name in enumerate(names):
        is_head = i == n_hidden
        decayed = scope == "all" or (scope == "hidden" and not is_head)
        wd = base["weight_decay"] if decayed else 0.0
        t_eq = equilibrium_step(base["lr"], wd)
        start = window_start(steps, t_eq)
        pred = angle_prediction(base["algorithm"], base["lr"], wd, base["momentum"],
                                base["beta1"])
        nan = float("nan")
        a_mean = a_std = c_mean = s0 = s1 = lr_last = nan
        if ok and angle is not None and len(angle) > start:
            a = angle[start:, i]
            a_mean, a_std = float(a.mean()), float(a.std())
        if ok and cos is not None and len(cos):
            c_mean = float(np.abs(cos[:, i]).mean())
        if ok and sq is not None:
            s0, s1 = float(sq[0, i]), float(sq[-1, i])
        if ok:
            lr_last = float(layer_lr[-1, i]) if layer_lr is not None and len(layer_lr) \
                else base["lr"]
        rows.append(dict(
            base, layer=name, layer_index=i, is_head=is_head,
            predicted_invariant=layer_predicted_invariant(arch, depth, i), decayed=decayed,
            steps=steps, t_equilibrium=t_eq, past_equilibrium=bool(steps >= t_eq),
            window_start=start, angle_mean=a_mean, angle_std=a_std, angle_pred=pred,
            angle_ratio=a_mean / pred if pred == pred and pred > 0 else nan,
            cos_abs_mean=c_mean, sq_norm_init=s0, sq_norm_final=s1,
            layer_lr_final=lr_last, eff_lr_final=lr_last / s1 if s1 and s1 == s1 else nan))
    return rows


def _curve_run(grid: list[dict], mimic_weight_decay: float | None) -> str | None:
    """run_id of the penalty curve's run: weight decay = the mimic's, the lowest seed, at
    the lr most runs of the slab share (the grid lr, not a matched pair's)."""
    if mimic_weight_decay is None or not grid:
        return None
    lrs = pd.Series([m["lr"] for m in grid]).mode()
    grid_lr = float(lrs.iloc[0]) if len(lrs) else None
    cands = [m for m in grid if m.get("status", "ok") == "ok"
             and math.isclose(float(m["weight_decay"]), float(mimic_weight_decay), rel_tol=1e-9)
             and (grid_lr is None or math.isclose(float(m["lr"]), grid_lr, rel_tol=1e-9))]
    if not cands:
        return None
    return min(cands, key=lambda m: int(m["seed"]))["run_id"]


def penalty_groups(model: models.MLP, x: torch.Tensor) -> tuple[list[int], str]:
    """The invariant groups C2 shrinks, *measured* (exact symmetry map on up to 256 rows
    of ``x``): the layers invariant on their own, else the joint group if invariant, else
    none. Symmetry is a property of the architecture, so one call per slab suffices."""
    table = symmetry.symmetry_map(model, x[:PROBE_ROWS])
    per_layer, joint = symmetry.invariant_layers(table)
    if per_layer:
        return per_layer, "layer"
    if joint:
        return list(range(len(model.linears) - 1)), "joint"
    return [], "none"


def _rebalance_result(model: models.MLP, x: torch.Tensor, y: torch.Tensor,
                      rel_tol: float, max_iter: int) -> dict:
    """``remove_penalty``'s ``relu_rebalance`` branch with a bounded L-BFGS budget
    (``remove_penalty`` fixes ``max_iter=500``; 50 iterations leave the minimised total
    penalty within 1e-4 relative of the 500-iteration value on the default grid's runs
    while costing 10x less -- the rest is dead neurons' factors drifting to ±inf)."""
    work = copy.deepcopy(model).eval()
    loss0 = symmetry.train_loss(work, x, y)
    pen0, tot0 = symmetry._hidden_penalty(work), symmetry.total_penalty(work)
    after, _ = symmetry.rebalance(work, granularity="neuron", max_iter=max_iter)
    loss1 = symmetry.train_loss(after, x, y)
    pen1, tot1 = symmetry._hidden_penalty(after), symmetry.total_penalty(after)
    rel = abs(loss1 - loss0) / abs(loss0)
    return dict(method="relu_rebalance", penalty_before=pen0, penalty_after=pen1,
                ratio=pen1 / pen0 if pen0 else float("nan"), scale=float("nan"),
                loss_before=loss0, loss_after=loss1, rel_loss_change=rel,
                loss_ok=rel <= rel_tol, eps_limited=False, total_penalty_before=tot0,
                total_penalty_after=tot1, total_ratio=tot1 / tot0 if tot0 else float("nan"),
                curve=pd.DataFrame(columns=symmetry.CURVE_COLUMNS))


def _shrink_result(model: models.MLP, x, y, groups, *, n_bisect, rel_tol, curve_scales):
    """``remove_penalty`` (invariant_shrink) in two stages: the bisection first runs on
    [1e-4, 1] (trained float32 nets with ε = 1e-5 stop far above 1e-4, so no steps are
    spent between 1e-12 and 1e-4); only when a = 1e-4 already keeps the loss does it run
    again on the full [1e-12, 1]."""
    kw = dict(groups=groups, rel_tol=rel_tol, curve_scales=curve_scales)
    res = symmetry.remove_penalty(model, x, y, lo=1e-4, n_bisect=n_bisect, **kw)
    if not res["eps_limited"]:
        res = symmetry.remove_penalty(model, x, y, lo=1e-12, n_bisect=n_bisect + 6, **kw)
    return res


def penalty_removal(model: models.MLP, x: torch.Tensor, y: torch.Tensor,
                    groups: list[int], *, curve: bool = False,
                    n_bisect: int = PENALTY_BISECT, rel_tol: float = PENALTY_REL_TOL,
                    rebalance_iter: int = REBALANCE_ITER) -> tuple[dict, list[dict]]:
    """C2 for one trained net. With invariant ``groups`` (method ``invariant_shrink``):
    :func:`wdnorm.symmetry.remove_penalty` with the model's own ε (practical, float32)
    and again on a deep copy whose norms have ε → 0 (:data:`wdnorm.symmetry.EXACT_EPS`:
    the ideal symmetry, ``*_eps0`` columns). Without (``plain``, ``res``, ``preln``):
    the ReLU rebalance (see :func:`_rebalance_result`), which does not involve ε, so the
    ``*_eps0`` columns repeat the practical ones; ``postln``: method ``none``."""
    scales = CURVE_SCALES if curve else ()
    has_norm = bool(symmetry._norm_modules(model))
    if groups:
        res = _shrink_result(model, x, y, groups, n_bisect=n_bisect, rel_tol=rel_tol,
                             curve_scales=scales)
        ideal = copy.deepcopy(model)
        symmetry._set_eps(ideal, symmetry.EXACT_EPS)
        res0 = _shrink_result(ideal, x, y, groups, n_bisect=n_bisect, rel_tol=rel_tol,
                              curve_scales=scales)
    elif model.arch in symmetry.REBALANCE_ARCHS:
        res = res0 = _rebalance_result(model, x, y, rel_tol, rebalance_iter)
    else:
        res = res0 = symmetry.remove_penalty(model, x, y, groups=[], rel_tol=rel_tol)
    row = {k: v for k, v in res.items() if k not in ("curve", "shrunk")}
    row.update(ratio_eps0=res0["ratio"], scale_eps0=res0["scale"],
               rel_loss_change_eps0=res0["rel_loss_change"],
               eps_limited_eps0=res0["eps_limited"],
               norm_eps=symmetry._model_eps(model) if has_norm else float("nan"),
               rel_tol=rel_tol)
    curves = []
    if curve and groups:
        for variant, r in (("model_eps", res), ("eps0", res0)):
            for c in r["curve"].to_dict("records"):
                curves.append(dict(c, variant=variant))
    return row, curves


def slab_tables(run_dirs: Sequence, mimic_dirs: Sequence, prepared,
                matched_pairs: Iterable = (), mimic_weight_decay: float | None = None,
                *, penalty_max_rows: int | None = PENALTY_MAX_ROWS,
                n_bisect: int = PENALTY_BISECT,
                progress: Callable[[str], None] | None = None) -> dict[str, pd.DataFrame]:
    """The per-slab tables ``runs``, ``dynamics``, ``penalty``, ``penalty_curve``.

    ``run_dirs`` / ``mimic_dirs``: run directories (or files inside them) of one slab's
    grid and mimic runs. The penalty (C2) is computed for every grid run (matched pairs
    included) on its trained ``model.pt``:

    * the invariant groups are measured once per slab (:func:`penalty_groups`, on the
      first healthy run) and passed to :func:`wdnorm.symmetry.remove_penalty`;
    * the train loss is evaluated on at most ``penalty_max_rows`` training rows (a fixed
      seeded subset; the full set when smaller, as for digits);
    * the bisection on log a takes ``n_bisect`` = 14 steps on [1e-4, 1] (scale to 0.06 %),
      not 40 on [1e-12, 1], falling back to [1e-12, 1] when a = 1e-4 still keeps the loss;
    * the ReLU rebalance (plain/res/preln) runs 50 L-BFGS iterations, not 500;
    * the curve (25 scales from 1e-12 to 1) is computed only for the penalty_curve run
      (seed 0 of the mimic weight decay), in both ε variants (``variant`` column);
    * ``group_penalty_before`` is the penalty of the shrunk layers alone and
      ``group_ratio``/``group_ratio_eps0`` (= scale²) their own ratio: ``ratio`` is over
      all hidden layers, which for ``resln`` includes the stem -- not invariant, so it
      keeps its penalty even in the ideal symmetry.

    With these settings a 30-run digits slab takes a few seconds on one core.
    Diverged runs get rows with NaN numbers and ``status == "diverged"``.
    """
    say = progress or log.info
    matched_pairs = [tuple(map(float, p)) for p in (matched_pairs or [])]
    x, y = _penalty_rows(prepared.x_train, prepared.y_train, penalty_max_rows)
    run_rows, dyn_rows, pen_rows, curve_rows = [], [], [], []
    grid_metrics = []
    for kind, dirs in (("runs", run_dirs), ("mimic", mimic_dirs)):
        for d in _dedupe_dirs(dirs):
            metrics = runs.read_metrics(d)
            metrics.setdefault("kind", kind)
            trace = runs.read_trace(d) if (d / "trace.npz").exists() else None
            run_rows.append(run_row(metrics, trace, matched_pairs))
            if trace is not None:
                dyn_rows.extend(dynamics_rows(metrics, trace, matched_pairs))
            if kind == "runs":
                grid_metrics.append((d, metrics))

    curve_id = _curve_run([m for _, m in grid_metrics], mimic_weight_decay)
    groups: tuple[list[int], str] | None = None
    for d, metrics in grid_metrics:
        base = _run_base(metrics, matched_pairs)
        row = {k: base[k] for k in ("dataset", "optimiser", "arch", "run_id", "lr",
                                    "weight_decay", "seed", "status", "is_matched_pair")}
        if base["status"] != "ok" or not (d / "model.pt").exists():
            pen_rows.append(row)
            continue
        model = runs.load_model(d, metrics)
        if groups is None:
            groups = penalty_groups(model, x)
        res, curve = penalty_removal(model, x, y, groups[0], curve=metrics["run_id"] == curve_id,
                                     n_bisect=n_bisect)
        with torch.no_grad():
            group_pen = float(sum(model.linears[i].weight.double().square().sum()
                                  + model.linears[i].bias.double().square().sum()
                                  for i in groups[0])) if groups[0] else float("nan")
        # every group shrinks by the one factor a, so its own penalty ratio is exactly a²;
        # ``ratio`` also counts hidden layers outside the groups (resln's stem)
        res.update(group_kind=groups[1], groups=",".join(map(str, groups[0])),
                   loss_rows=len(x), group_penalty_before=group_pen,
                   group_ratio=res["scale"] ** 2 if groups[0] else float("nan"),
                   group_ratio_eps0=res["scale_eps0"] ** 2 if groups[0] else float("nan"))
        res.pop("arch", None)
        pen_rows.append(dict(row, **res))
        for c in curve:
            c.pop("arch", None)
            curve_rows.append(dict(dataset=row["dataset"], optimiser=row["optimiser"],
                                   arch=row["arch"], run_id=row["run_id"], **c))
    if run_rows:
        say(f"slab {run_rows[0]['dataset']}/{run_rows[0]['optimiser']}/{run_rows[0]['arch']}: "
            f"{len(run_rows)} runs, {len(pen_rows)} penalty rows, curve {curve_id}")
    return dict(runs=_frame(run_rows, RUNS_COLUMNS),
                dynamics=_frame(dyn_rows, DYNAMICS_COLUMNS),
                penalty=_frame(pen_rows, PENALTY_COLUMNS),
                penalty_curve=_frame(curve_rows, PENALTY_CURVE_COLUMNS))


# --------------------------------------------------------------------------- IO

def read_table(path) -> pd.DataFrame:
    """A CSV table; an empty (0-byte) file reads as an empty DataFrame."""
    path = Path(path)
    if path.stat().st_size == 0:
        return pd.DataFrame()
    try:
        return pd.read_csv(path)
    except pd.errors.EmptyDataError:
        return pd.DataFrame()


def aggregate(paths: Sequence) -> pd.DataFrame:
    """Concatenate per-slab/per-dataset tables (empty ones skipped; the union of columns,
    in first-seen order). A single path is accepted too."""
    if isinstance(paths, (str, Path)):
        paths = [paths]
    frames = [read_table(p) for p in paths]
    frames = [f for f in frames if len(f.columns)]
    if not frames:
        return pd.DataFrame()
    columns = list(dict.fromkeys(c for f in frames for c in f.columns))
    nonempty = [f for f in frames if len(f)]
    if not nonempty:
        return pd.DataFrame(columns=columns)
    return pd.concat(nonempty, ignore_index=True).reindex(columns=columns)
