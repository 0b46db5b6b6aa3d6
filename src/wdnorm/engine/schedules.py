"""Data-independent per-member schedules of the LR-schedule equivalents (docs/math.md).

For SGD with momentum α and coupled L2 λ on a scale-invariant group, the run without
weight decay w~_t = w_t / k_t with k_{-1} = k_0 = 1 and
k_{t+1} = (1 + α − ηλ) k_t − α k_{t−1}, trained at η / (k_t k_{t+1}) on the group with the
norms' ε at ε / k_t², reproduces the weight-decay run exactly. The schedules depend only
on (η, λ, α), so they are computed before training in double precision.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

# float32 holds values up to ~3e38; a schedule past this would overflow the slab's
# learning rate or ε long before the run ends.
FLOAT32_LIMIT = 1e30


LR_SCHEDULES = ("constant", "cosine")


@dataclass(frozen=True)
class Schedules:
    """A slab's data-independent schedules (float64), see :func:`member_schedules`."""
    group_factor: np.ndarray   # [T, M]: LR factor of each member's group layers
    eps_factor: np.ndarray     # [T+1, M]: factor of every norm's ε
    k: np.ndarray              # [T+1, M]: k_t (1 for members that are not equivalents)
    scale: np.ndarray          # [T, M]: each member's LR factor s_t on every other layer


def lr_scale(schedule: str, steps: int, decay_fraction: float = 1.0) -> np.ndarray:
    """s_t, the factor of every learning rate at step t: 1 (constant), or 1 until the
    last ``decay_fraction`` of the steps and then the cosine decay
    0.5 (1 + cos(π (t − t₀) / (T − t₀))), which reaches 0 after the last step."""
    if schedule == "constant":
        return np.ones(steps)
    if schedule == "cosine":
        start = decay_start(steps, decay_fraction)
        s = np.ones(steps)
        s[start:] = 0.5 * (1.0 + np.cos(np.pi * np.arange(steps - start) / (steps - start)))
        return s
    raise ValueError(f"lr_schedule must be one of {LR_SCHEDULES}, got {schedule!r}")


def decay_start(steps: int, decay_fraction: float) -> int:
    """t₀, the first step of a cosine decay over the last ``decay_fraction`` of training
    (at least the last step decays)."""
    if not 0 < decay_fraction <= 1:
        raise ValueError(f"lr_decay_fraction must be in (0, 1], got {decay_fraction!r}")
    return min(steps - 1, int(round(steps * (1 - decay_fraction))))


def k_sequence(lr: float, weight_decay: float, momentum: float, steps: int,
               scale: np.ndarray | None = None) -> np.ndarray:
    """k_0 .. k_{steps} (length steps + 1), float64, under the learning rates
    η_t = lr·s_t: k_{t+1} = (1 + αρ_t − η_t λ) k_t − αρ_t k_{t−1}, ρ_t = η_t / η_{t−1}
    (ρ_0 plays no part: k_{−1} = k_0)."""
    s = np.ones(steps) if scale is None else np.asarray(scale, dtype=np.float64)
    k = np.empty(steps + 1)
    k_prev, k_now = 1.0, 1.0
    k[0] = 1.0
    for t in range(steps):
        rho = s[t] / s[t - 1] if t > 0 else 1.0
        a = 1.0 + momentum * rho - lr * s[t] * weight_decay
        k_prev, k_now = k_now, a * k_now - momentum * rho * k_prev
        k[t + 1] = k_now
    return k


def member_scales(schedules: list[tuple[str, float]], steps: int) -> np.ndarray:
    """[T, M]: each member's s_t from its (lr_schedule, lr_decay_fraction), computed once
    per distinct schedule."""
    by_schedule = {sched: lr_scale(sched[0], steps, sched[1]) for sched in set(schedules)}
    return np.stack([by_schedule[sched] for sched in schedules], axis=1) if schedules \
        else np.ones((steps, 0))


def member_schedules(kinds: list[str], lrs: list[float], weight_decays: list[float],
                     momentum: float, steps: int, scales: np.ndarray | None = None
                     ) -> Schedules:
    """Per member and step, the schedules of :class:`Schedules`; ``scales`` [T, M] are
    the members' s_t (constant when None).

    The group factor multiplies the member's learning rate on its group layers at step t
    (s_t/(k_t k_{t+1}) for exact and schedule members, s_t otherwise); the ε factor
    multiplies every norm's ε when the parameters are w_t (1/k_t² for exact members, 1
    otherwise); every other layer's learning rate is the member's times s_t."""
    m = len(kinds)
    s_all = np.ones((steps, m)) if scales is None else np.asarray(scales, dtype=np.float64)
    group_factor = s_all.copy()
    eps_factor = np.ones((steps + 1, m))
    k_all = np.ones((steps + 1, m))
    for i, (kind, lr, wd) in enumerate(zip(kinds, lrs, weight_decays)):
        if kind not in ("exact", "schedule"):
            continue
        s = s_all[:, i]
        k = k_sequence(lr, wd, momentum, steps, s)
        if not (k > 0).all():
            raise ValueError(f"k_t of the LR-schedule equivalent (lr={lr:g}, λ={wd:g}, "
                             f"momentum={momentum:g}) reaches {k.min():.3g} ≤ 0: ηλ is too "
                             f"large for an equivalent run (need ηλ ≤ (1−√α)²)")
        k_all[:, i] = k
        group_factor[:, i] = s / (k[:-1] * k[1:])
        if kind == "exact":
            eps_factor[:, i] = 1.0 / k ** 2
    worst = max(group_factor.max(), eps_factor.max())
    if worst > FLOAT32_LIMIT:
        raise ValueError(f"the LR-schedule equivalents' factors reach {worst:.3g} within "
                         f"{steps} steps (beyond float32): lower λ or the number of steps "
                         f"of the equivalent runs")
    return Schedules(group_factor, eps_factor, k_all, s_all)
