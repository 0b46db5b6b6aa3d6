"""Stale run directories: left behind by an earlier, larger config, read by nothing now.

The pipeline never deletes a run directory: drop a seed (or an architecture) from the
config and rerun, and the slab is retrained with its new members and a new ``slab.json``
while the old directories stay. The tables read ``slab.json`` only, so those
directories are no part of the current results. With a config, a run directory is
*stale* when the config's grid does not contain it and its slab's ``slab.json`` does not
list it; every run directory of a slab the config does not contain at all is stale, and
so is that slab. Stale directories are reported (completeness) and left out of the other
checks, never failed; :func:`remove_stale` deletes them.
"""

from __future__ import annotations

import os
import shutil
import stat
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

from . import tree
from .common import (PLACE, SLAB_FILE, RunRef, SlabRef, expected_runs, find_slabs,
                     read_json)

RUNS = PLACE.slab_dir("d", "o", "a").parts[0]  # runs/: every slab lies under it


@dataclass(frozen=True)
class Stale:
    runs: list[RunRef] = field(default_factory=list)
    slabs: list[SlabRef] = field(default_factory=list)   # slabs the config lacks


def find_stale(listing: tree.Listing, refs: list[RunRef], config: dict | None) -> Stale:
    """The stale run directories and slabs of the tree under ``config`` (none without
    one: only the config can tell a leftover from a damaged slab)."""
    if config is None:
        return Stale()
    expected = set(expected_runs(config))
    wanted = {r.slab for r in expected}
    slabs = [s for s in find_slabs(listing) if s not in wanted]
    listed = {slab: _listed(listing.root, slab) for slab in wanted}
    # only a directory named like a run is one (integrity fails any other there)
    runs = [r for r in refs if r.kind is not None and (
        r.slab in slabs or (r not in expected and r.run_id not in listed[r.slab]))]
    return Stale(sorted(runs), sorted(slabs))


def _listed(root: Path, slab: SlabRef) -> set[str]:
    """The members a slab's ``slab.json`` lists (none when it cannot be read:
    integrity reports that)."""
    record, error = read_json(root, slab.path(root) / SLAB_FILE)
    members = record.get("members") if isinstance(record, dict) else None
    return {str(m) for m in members} if not error and isinstance(members, list) else set()


def remove_stale(root: Path, stale: Stale,
                 log: Callable[[str], None] | None = None) -> list[str]:
    """Delete the stale run directories (and the ``slab.json`` and emptied folders of a
    slab the config lacks); returns what was removed, relative to ``root``, and tells
    ``log`` each one as it goes (an error stops it half-way). Each one is checked first
    to be a real directory of the tree (no link on its way); a link inside one is
    removed as a link, never followed (``shutil.rmtree``)."""
    removed: list[str] = []

    def done(rel: str) -> None:
        removed.append(rel)
        if log:
            log(rel)
    for ref in stale.runs:
        tree.check(root, ref.path(root), want_dir=True)
        shutil.rmtree(ref.path(root))
        done(ref.rel)
    for slab in stale.slabs:
        manifest = slab.path(root) / SLAB_FILE
        if _is_plain_file(root, manifest):
            manifest.unlink()
            done(f"{slab.rel}/{SLAB_FILE}")
        for rel in _remove_empty_dirs(root, slab.path(root)):
            done(rel)
    return removed


def _empty(directory: Path) -> bool:
    with os.scandir(directory) as entries:
        return next(entries, None) is None


def _is_plain_file(root: Path, path: Path) -> bool:
    try:
        tree.check(root, path)
    except FileNotFoundError:
        return False
    return True  # a link there raises: tree.Refused


def _remove_empty_dirs(root: Path, top: Path) -> list[str]:
    """``top`` and its parents below ``root/runs`` while they are empty, real
    directories."""
    removed = []
    runs = root / RUNS
    here = top
    while here != runs and runs in here.parents:
        if not stat.S_ISDIR(os.lstat(here).st_mode) or not _empty(here):
            break
        here.rmdir()
        removed.append(here.relative_to(root).as_posix() + "/")
        here = here.parent
    return removed
