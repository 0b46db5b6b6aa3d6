"""``wdnorm audit``: decide whether a results directory made somewhere else can be trusted.

Five checks, one module each, each returning a :class:`Check` (pass / fail / skip, the
problems that make it fail, each naming a run or a file, notes and structured details):

integrity (:mod:`.integrity`)
    nothing in the tree is a link; every run's files match its ``MANIFEST.sha256``; every
    slab's ``slab.json`` lists its run directories and the sha256 of their manifests.
completeness (:mod:`.completeness`)
    with a config: every member of every slab (:func:`wdnorm.grid.slab_members`) is
    there; stale run directories (:mod:`.stale`) are named.
provenance (:mod:`.provenance`)
    every run's ``provenance.json`` is complete, hashes right, names its run, folder and
    optimiser settings, comes from this training code and (with a config) from its
    values; its recorded slab settings and steps are what those give (:mod:`.settings`).
replay (:mod:`.replay`)
    K seeded-random runs re-trained for a prefix of their steps reproduce their loss.
claims (:mod:`.claims`)
    ``claims.json`` is what :func:`wdnorm.claims.decide_all` decides from the tables.

Files are read through :mod:`.tree` only: never through a link. Stale run directories
are left out of every check but completeness. Nothing is written, except by
:func:`remove_stale_runs`. Computation only: :mod:`wdnorm.cli` prints.
"""

from __future__ import annotations

import random
from pathlib import Path
from typing import Callable

from .claims import check_claims
from .common import find_runs, prepare_config
from .completeness import check_completeness
from .integrity import check_integrity
from .provenance import check_provenance
from .replay import DEFAULT_ATOL, DEFAULT_REPLAY_STEPS, DEFAULT_RTOL, check_replay
from .report import FAIL, PASS, SKIP, AuditError, AuditReport, Check
from .stale import find_stale, remove_stale
from .tree import scan

CHECKS = ("integrity", "completeness", "provenance", "replay", "claims")

__all__ = ["CHECKS", "DEFAULT_ATOL", "DEFAULT_REPLAY_STEPS", "DEFAULT_RTOL", "FAIL", "PASS",
           "SKIP", "AuditError", "AuditReport", "Check", "audit", "remove_stale_runs"]


def audit(results_dir: str | Path, *, config: dict | None = None,
          data_dir: str | Path | None = None, replay: int = 0, seed: int | None = None,
          replay_steps: int = DEFAULT_REPLAY_STEPS, rtol: float = DEFAULT_RTOL,
          atol: float = DEFAULT_ATOL, device: str = "cpu", strict_code: bool = False,
          checks: tuple[str, ...] = CHECKS, current_code: dict | None = None,
          log: Callable[[str], None] | None = None) -> AuditReport:
    """Audit ``results_dir``. ``config``: the parsed user config (validated and
    defaults-filled here); ``data_dir`` defaults to ``results_dir/../data``; ``seed``
    (the replay's choice of runs) is drawn when None and reported."""
    root = _results_root(results_dir)
    unknown = set(checks) - set(CHECKS)
    if unknown:
        raise AuditError(f"unknown checks {sorted(unknown)}; valid: {', '.join(CHECKS)}")
    data_dir = Path(data_dir) if data_dir is not None else root.parent / "data"
    config = prepare_config(config) if config is not None else None
    seed = random.SystemRandom().randrange(2**31) if seed is None else seed
    listing = scan(root)
    found = find_runs(listing)
    stale = find_stale(listing, found, config)
    refs = [r for r in found if r not in set(stale.runs)]  # the current results' runs
    run = {
        "integrity": lambda: check_integrity(listing, refs, stale, config is not None),
        "completeness": lambda: check_completeness(listing, found, config, stale),
        "provenance": lambda: check_provenance(root, refs, config, data_dir, strict_code,
                                               current_code),
        "replay": lambda: check_replay(listing, refs, data_dir, replay, seed, replay_steps,
                                       rtol, atol, device, log),
        "claims": lambda: check_claims(root, config),
    }
    return AuditReport(results_dir=str(root), data_dir=str(data_dir), n_runs=len(found),
                       checks=[run[name]() for name in CHECKS if name in checks])


def remove_stale_runs(results_dir: str | Path, config: dict,
                      log: Callable[[str], None] | None = None) -> list[str]:
    """Delete the stale run directories of ``results_dir`` under ``config`` (see
    :mod:`.stale`; a config is required: only it tells a leftover from a damaged slab);
    returns what was removed, relative to the results directory (``log``: told each)."""
    root = _results_root(results_dir)
    if config is None:
        raise AuditError("removing stale run directories needs the config (--config)")
    listing = scan(root)
    stale = find_stale(listing, find_runs(listing), prepare_config(config))
    return remove_stale(root, stale, log)


def _results_root(results_dir: str | Path) -> Path:
    root = Path(results_dir)
    if not root.is_dir():
        raise AuditError(f"no results directory at {root}")
    return root
