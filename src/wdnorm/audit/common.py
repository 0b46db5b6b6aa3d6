"""What the checks share: the runs and slabs on disk, the config, value comparison.

Paths come from :class:`wdnorm.layout.Layout` relative to the results root, so a results
directory copied anywhere (without ``.snakemake/``) audits the same.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .. import config as config_schema
from .. import checks, fileio, grid, layout, protocols
from . import tree
from .report import AuditError

GRID = layout.GRID_KIND
SLAB_FILE = layout.SLAB_MANIFEST  # written last by a slab's training job
PLACE = layout.Layout(results=Path())  # paths relative to the results root
MISSING = "<absent>"


@dataclass(frozen=True, order=True)
class SlabRef:
    dataset: str
    optimiser: str
    arch: str

    @property
    def rel(self) -> str:
        return PLACE.slab_dir(self.dataset, self.optimiser, self.arch).as_posix()

    def path(self, root: Path) -> Path:
        return root / self.rel


@dataclass(frozen=True, order=True)
class RunRef:
    dataset: str
    optimiser: str
    arch: str
    run_id: str

    @property
    def slab(self) -> SlabRef:
        return SlabRef(self.dataset, self.optimiser, self.arch)

    @property
    def rel(self) -> str:
        """The run directory relative to the results root, as reports name it."""
        return PLACE.run_dir(self.dataset, self.optimiser, self.arch, self.run_id).as_posix()

    @property
    def kind(self) -> str | None:
        """The run kind its name says (None for a name that is not a run id)."""
        parsed = parse_run(self.run_id)
        return parsed[3] if parsed else None

    def path(self, root: Path) -> Path:
        return root / self.rel


def parse_run(name: str) -> tuple[float, float, int, str, str, float] | None:
    """``(lr, weight_decay, seed, kind, lr_schedule, lr_decay_fraction)`` of a run id;
    None when it is not one."""
    try:
        return layout.parse_run_id(name)
    except (ValueError, IndexError):
        return None


RUN_PATTERN = PLACE.run_dir("*", "*", "*", "*")  # runs/{dataset}/{optimiser}/{arch}/{run}
SLAB_PATTERN = PLACE.slab_dir("*", "*", "*")
RUN_DEPTH = len(RUN_PATTERN.parts)


def find_runs(listing: tree.Listing) -> list[RunRef]:
    """Every run directory of the tree (runs/{dataset}/{optimiser}/{arch}/{run_id}): real
    directories only, a link there is no run (integrity names it)."""
    return sorted(RunRef(*rel.split("/")[-4:]) for rel in listing.dirs
                  if _matches(rel, RUN_PATTERN))


def find_slabs(listing: tree.Listing) -> list[SlabRef]:
    """Every slab directory of the tree (runs/{dataset}/{optimiser}/{arch})."""
    return sorted(SlabRef(*rel.split("/")[-3:]) for rel in listing.dirs
                  if _matches(rel, SLAB_PATTERN))


def _matches(rel: str, pattern: Path) -> bool:
    parts = rel.split("/")
    return len(parts) == len(pattern.parts) and all(
        want == "*" or want == part for want, part in zip(pattern.parts, parts))


def has_manifest(listing: tree.Listing, ref: RunRef) -> bool:
    return f"{ref.rel}/{fileio.MANIFEST_NAME}" in listing.files


def read_json(root: Path, path: Path) -> tuple[Any, str | None]:
    """``(value, None)``, or ``(None, why it could not be read)``; never through a link
    below ``root``."""
    try:
        return tree.read_json(root, path), None
    except FileNotFoundError:
        return None, "missing"
    except tree.Refused as refused:
        return None, str(refused)
    except (OSError, ValueError) as error:
        return None, f"unreadable ({type(error).__name__}: {error})"


def prepared_file(data_dir: Path, dataset: str) -> tuple[Path, str | None]:
    """The local prepared dataset and, when it cannot be read, why: ``"missing"`` or a
    refusal (a link below ``data_dir``)."""
    path = layout.Layout(data=data_dir).prepared(dataset)
    try:
        tree.check(data_dir, path)
    except FileNotFoundError:
        return path, "missing"
    except OSError as error:
        return path, str(error)
    return path, None


# --------------------------------------------------------------------------- config

def prepare_config(config: dict) -> dict:
    """The user's config validated against the schema, with its defaults filled in."""
    if not isinstance(config, dict):
        raise AuditError("the config is not a mapping")
    try:
        filled = config_schema.validate(config)
        checks.check_config(filled)
    except ValueError as error:
        raise AuditError(str(error)) from None
    return filled


def expected_runs(config: dict) -> list[RunRef]:
    """Every run the config trains: every member of every slab, all kinds."""
    refs = {RunRef(dataset, optimiser, arch, member.run_id)
            for dataset, optimiser, arch in protocols.slabs(config)
            for member in grid.slab_members(config, dataset, optimiser, arch)}
    return sorted(refs)


# --------------------------------------------------------------------------- values

def differences(path: str, recorded: Any, expected: Any, against: str = "config",
                rel_tol: float = 0.0) -> list[str]:
    """Where ``recorded`` differs from ``expected``, one line per differing leaf (a
    mapping's key or a whole list), named by its path; numbers within ``rel_tol`` agree."""
    if isinstance(recorded, dict) and isinstance(expected, dict):
        out = []
        for key in sorted(set(recorded) | set(expected), key=str):
            out += differences(f"{path}.{key}", recorded.get(key, MISSING),
                               expected.get(key, MISSING), against, rel_tol)
        return out
    if same(recorded, expected, rel_tol):
        return []
    return [f"{path}: recorded {show(recorded)}, {against} {show(expected)}"]


def same(a: Any, b: Any, rel_tol: float = 0.0) -> bool:
    """Equal as JSON values (1 == 1.0, NaN == NaN, True != 1; numbers within
    ``rel_tol``)."""
    if isinstance(a, dict) and isinstance(b, dict):
        return set(a) == set(b) and all(same(a[k], b[k], rel_tol) for k in a)
    if isinstance(a, (list, tuple)) and isinstance(b, (list, tuple)):
        return len(a) == len(b) and all(same(x, y, rel_tol) for x, y in zip(a, b))
    if isinstance(a, bool) or isinstance(b, bool):
        return a is b
    if isinstance(a, (int, float)) and isinstance(b, (int, float)):
        return (math.isclose(a, b, rel_tol=rel_tol, abs_tol=0.0)
                or (math.isnan(a) and math.isnan(b)))
    return a == b


def show(value: Any) -> str:
    return value if value is MISSING else json.dumps(value, default=str)
