"""Paired statistics shared by the claims: Wilcoxon signed-rank tests, the Hodges-Lehmann
estimate with its distribution-free CI, two one-sided tests (TOST) for equivalence,
Holm's step-down correction and a seeded paired bootstrap.

Why the signed-rank test and not a paired t-test: diverged and collapsed runs are kept
as outcomes (a diverged run scores 1/n_classes), so paired differences are heavy-tailed
-- one collapsed seed is a -80 pp outlier among ±1 pp differences. The t-test's variance
is dominated by such a point; the signed-rank test only sees its rank.

Zero differences (both runs of a pair at the same accuracy, e.g. both diverged) use
``zero_method="zsplit"``: each zero stays in n and gives half its rank to each sign.
Dropping zeros (``"wilcox"``) discards evidence of "no difference"; ``"pratt"`` ranks
zeros but gives them to neither sign, which shifts the statistic's null mean away from
the one scipy's exact distribution assumes, biasing one-sided p-values in one direction.
With ``zsplit`` the statistic stays centred on n(n+1)/4, so the exact no-ties null
distribution (used for n <= 25) is conservative in both directions; above 25 the normal
approximation with tie correction is used.
"""

from __future__ import annotations

import math
from functools import lru_cache

import numpy as np
from scipy import stats as sps

ZERO_METHOD = "zsplit"
EXACT_MAX_N = 25
TEST_NAME = "Wilcoxon signed-rank (paired by seed, zero_method=zsplit; exact null for n ≤ 25)"


def finite(values) -> np.ndarray:
    """``values`` as float64 with NaN/inf dropped."""
    v = np.asarray(values, dtype=np.float64).ravel()
    return v[np.isfinite(v)]


def wilcoxon(d, alternative: str = "two-sided") -> float:
    """p-value of the signed-rank test of the paired differences ``d`` against a zero
    shift; ``alternative``: "two-sided", "greater" (shift > 0) or "less". NaN if no
    difference is finite."""
    d = finite(d)
    if d.size == 0:
        return math.nan
    if not np.any(d):  # every pair tied: the statistic sits on its null mean
        return 1.0
    if d.size <= EXACT_MAX_N:
        return exact_signed_rank_p(d, alternative)
    return float(sps.wilcoxon(d, zero_method=ZERO_METHOD, method="asymptotic",
                              alternative=alternative).pvalue)


def exact_signed_rank_p(d: np.ndarray, alternative: str) -> float:
    """scipy.stats.wilcoxon's exact p-value with zero_method="zsplit", computed here
    from :func:`signed_rank_cdf` (scipy's wrapper costs ~10 ms a call, and the stability
    bootstrap calls it hundreds of thousands of times): T+ = the ranks of |d| (ties
    averaged) of the positive differences plus half those of the zeros; a non-integral
    T+ is rounded up for the lower tail and down for the upper one, as scipy does."""
    ranks = sps.rankdata(np.abs(d))
    r_plus = ranks[d > 0].sum() + ranks[d == 0].sum() / 2
    cdf = signed_rank_cdf(d.size)

    def at_most(k: float) -> float:
        k = int(k)
        return 0.0 if k < 0 else 1.0 if k >= len(cdf) - 1 else float(cdf[k])

    less = at_most(math.ceil(r_plus))
    greater = 1.0 - at_most(math.floor(r_plus) - 1)
    if alternative == "less":
        return less
    if alternative == "greater":
        return greater
    return float(min(1.0, 2 * min(less, greater)))


@lru_cache(maxsize=None)
def signed_rank_cdf(n: int) -> np.ndarray:
    """cdf[k] = P(T+ <= k) of the signed-rank statistic for n untied, nonzero
    differences under the null (every sign pattern equally likely): built by adding one
    rank at a time, each in or out of T+ with probability 1/2."""
    m = n * (n + 1) // 2
    pmf = np.zeros(m + 1)
    pmf[0] = 1.0
    for rank in range(1, n + 1):
        shifted = np.zeros_like(pmf)
        shifted[rank:] = pmf[:-rank]
        pmf = 0.5 * (pmf + shifted)
    return np.cumsum(pmf)


def walsh_averages(d) -> np.ndarray:
    """(d_i + d_j)/2 for i <= j, sorted."""
    d = finite(d)
    i, j = np.triu_indices(d.size)
    return np.sort((d[i] + d[j]) / 2)


def hl_ci_rank(n: int, conf: float) -> int:
    """k such that [W_(k), W_(M+1-k)] (1-based order statistics of the M Walsh averages)
    is the distribution-free ``conf`` CI of the shift: the largest k with
    P(T+ <= k-1) <= (1-conf)/2. 0 when n is too small for that level."""
    cdf = signed_rank_cdf(n)
    tail = (1 - conf) / 2
    # cdf[k-1] <= tail for k = 1..K: K = number of cdf entries at or below the tail
    return int(np.searchsorted(cdf, tail + 1e-12, side="right"))


def hodges_lehmann(d, conf: float = 0.95) -> tuple[float, float, float]:
    """(estimate, low, high): the median of the Walsh averages and its distribution-free
    CI from the signed-rank critical value (Hollander & Wolfe). The bounds are ∓inf when
    n is too small for the level (e.g. n < 6 at 95%); NaNs without data."""
    w = walsh_averages(d)
    if w.size == 0:
        return math.nan, math.nan, math.nan
    n = finite(d).size
    k = hl_ci_rank(n, conf)
    est = float(np.median(w))
    if k == 0:
        return est, -math.inf, math.inf
    return est, float(w[k - 1]), float(w[w.size - k])


def rank_biserial(d) -> float:
    """Matched-pairs rank-biserial correlation (R+ - R-)/(R+ + R-), ranks of |d| with
    ties averaged; zeros split between the signs like the test (so they only dilute)."""
    d = finite(d)
    if d.size == 0:
        return math.nan
    ranks = sps.rankdata(np.abs(d))
    total = ranks.sum()
    return float((ranks[d > 0].sum() - ranks[d < 0].sum()) / total)


def holm(pvalues) -> list[float]:
    """Holm's step-down adjusted p-values, in the input order; NaN entries are not part
    of the family and stay NaN."""
    p = np.asarray(pvalues, dtype=np.float64)
    out = np.full(p.shape, np.nan)
    idx = np.flatnonzero(np.isfinite(p))
    order = idx[np.argsort(p[idx], kind="stable")]
    m, running = len(order), 0.0
    for rank, i in enumerate(order):
        running = max(running, min(1.0, (m - rank) * p[i]))
        out[i] = running
    return out.tolist()


def tost(d, margin: float) -> dict:
    """Two one-sided signed-rank tests of equivalence within ±``margin``: H0 shift <=
    -margin (test d + margin > 0) and H0 shift >= +margin (test d - margin < 0). The
    TOST p-value is the larger of the two."""
    d = finite(d)
    lower = wilcoxon(d + margin, "greater")
    upper = wilcoxon(d - margin, "less")
    return {"p_lower": lower, "p_upper": upper, "p": max(lower, upper)
            if d.size else math.nan, "margin": margin}


def paired_effect(d, alpha: float) -> dict:
    """Everything C5-C7 report about paired differences ``d``: n, mean, the HL estimate
    with its (1-alpha) CI and one-sided (1-alpha) bounds, the rank-biserial r, and the
    signed-rank p-values for the three alternatives."""
    d = finite(d)
    est, lo, hi = hodges_lehmann(d, 1 - alpha)
    _, lo1, hi1 = hodges_lehmann(d, 1 - 2 * alpha)  # its bounds are one-sided 1-alpha
    return {"n": int(d.size), "mean": float(d.mean()) if d.size else math.nan,
            "hl": est, "ci_low": lo, "ci_high": hi, "ci_level": 1 - alpha,
            "lower_bound_one_sided": lo1, "upper_bound_one_sided": hi1,
            "rank_biserial": rank_biserial(d),
            "p_two_sided": wilcoxon(d, "two-sided"), "p_greater": wilcoxon(d, "greater"),
            "p_less": wilcoxon(d, "less"), "test": TEST_NAME}


def paired_bootstrap(columns: np.ndarray, statistic, resamples: int = 2000, seed: int = 0,
                     conf: float = 0.95) -> tuple[float, float]:
    """Percentile CI of ``statistic(means)`` where ``means`` [resamples, k] are the column
    means of ``columns`` [n seeds, k arms] resampled by whole rows (seeds) with
    replacement, so paired arms stay paired. ``numpy.random.default_rng(seed)``;
    ``statistic`` maps each row of means to a value (vectorised over rows)."""
    columns = np.asarray(columns, dtype=np.float64)
    if len(columns) < 2:
        return math.nan, math.nan
    rng = np.random.default_rng(seed)
    draws = rng.integers(0, len(columns), size=(int(resamples), len(columns)))
    values = np.asarray(statistic(columns[draws].mean(axis=1)), dtype=np.float64)
    values = values[np.isfinite(values)]
    if values.size == 0:
        return math.nan, math.nan
    lo, hi = np.percentile(values, [50 * (1 - conf), 50 * (1 + conf)])
    return float(lo), float(hi)
