"""Claims: ``claims.json`` is what :func:`wdnorm.claims.decide_all` decides from the
tables on disk. The sha256 of every input table it records matches the file, every table
the claims read is recorded, its settings are the config's (with ``--config``), and the
verdicts -- and every other recomputed field -- equal the recorded ones."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from . import tree
from .common import PLACE, differences, read_json
from .report import Check

CLAIMS_FILE = PLACE.claims.as_posix()
# Recomputed numbers agree to this relative tolerance (other library versions may move
# the last bits of a bootstrap or a p-value; a tampered number moves more).
REL_TOL = 1e-6
# Recorded fields that name files rather than results (checked by their sha256).
NOT_RECOMPUTED = ("inputs",)


def check_claims(root: Path, config: dict | None) -> Check:
    check = Check("claims")
    recorded, error = read_json(root, root / CLAIMS_FILE)
    if error or not isinstance(recorded, dict):
        check.problems.append(f"{CLAIMS_FILE}: {error or 'not a JSON object'} (--skip claims "
                              "audits the runs alone)")
        return check.finish(f"no usable {CLAIMS_FILE}")
    from .. import claims

    inputs = recorded.get("inputs")
    paths, refused = readable_tables(root, set(claims.TABLE_NAMES) | set(
        inputs if isinstance(inputs, dict) else ()))
    check.problems += [refused[name] for name in sorted(refused)]
    tables = claims.load_tables({name: path for name, path in paths.items()
                                 if name in claims.TABLE_NAMES})
    check.problems += table_problems(root, recorded, tables, skip=set(refused))
    verdicts = claim_verdicts(recorded)
    check.details = {"tables": sorted(tables), "recorded": verdicts}
    check.problems += _consistency_problems(recorded, verdicts)
    settings = recorded.get("settings")
    if not isinstance(settings, dict):
        check.problems.append(f"{CLAIMS_FILE} records no settings: its verdicts cannot be "
                              "recomputed")
        return check.finish("verdicts not recomputed")
    if config is not None:
        check.problems += [f"claims were decided with other settings: {d}"
                           for d in settings_differences(settings, config)]
    try:
        # every core: the stability bootstrap re-decides each claim hundreds of times
        decided = json.loads(json.dumps(claims.decide_all(
            tables, settings, workers=os.cpu_count() or 1), default=str))
    except Exception as failure:  # noqa: BLE001 -- failing to recompute is a finding
        check.problems.append(f"recomputing the claims failed ({type(failure).__name__}: "
                              f"{failure})")
        return check.finish("verdicts not recomputed")
    check.details["recomputed"] = claim_verdicts(decided)
    check.problems += recomputed_problems(recorded, decided)
    return check.finish(f"{len(check.details['recomputed'])} verdicts recomputed from "
                        f"{len(tables)} tables")


def table_problems(root: Path, recorded: dict, tables: dict,
                   skip: set[str] = frozenset()) -> list[str]:
    """Every recorded input table is on disk with its recorded sha256; every table the
    claims read is recorded (``skip``: tables refused, named already)."""
    inputs = recorded.get("inputs")
    if not isinstance(inputs, dict) or not inputs:
        return [f"{CLAIMS_FILE} records no sha256 of its input tables"]
    out = []
    for name, entry in sorted(inputs.items()):
        if name in skip:
            continue
        digest = entry.get("sha256") if isinstance(entry, dict) else None
        table = PLACE.table(name).as_posix()
        path = root / table
        if not digest:
            out.append(f"table {name}: {CLAIMS_FILE} records no sha256 for it")
        elif not tree.is_file(root, path):
            out.append(f"table {name}: recorded in {CLAIMS_FILE}, not found at {table}")
        elif tree.sha256(root, path) != digest:
            out.append(f"{table}: sha256 differs from the one {CLAIMS_FILE} records")
    out += [f"{PLACE.table(name).as_posix()}: read by the claims, not recorded in "
            f"{CLAIMS_FILE}"
            for name in sorted(set(tables) - set(inputs))]
    return out


def readable_tables(root: Path, names: set[str]) -> tuple[dict[str, Path], dict[str, str]]:
    """``({name: path}, {name: refusal})`` of the named tables on disk: one reached
    through a link is refused (named), not read."""
    paths, refused = {}, {}
    for name in sorted(names):
        path = root / PLACE.table(str(name))
        try:
            tree.check(root, path)
        except FileNotFoundError:
            continue
        except OSError as error:
            refused[name] = f"{PLACE.table(str(name)).as_posix()}: {error}"
            continue
        paths[name] = path
    return paths, refused


def claim_verdicts(output: Any) -> dict[str, Any]:
    """``{claim id: verdict}`` of a claims output (its ``claims`` list)."""
    entries = output.get("claims") if isinstance(output, dict) else None
    return {str(c.get("id")): c.get("verdict") for c in entries or []
            if isinstance(c, dict)}


def _consistency_problems(recorded: dict, verdicts: dict) -> list[str]:
    """claims.json's summary map must agree with its claim entries."""
    if not verdicts:
        return [f"{CLAIMS_FILE} records no claims"]
    summary = recorded.get("verdicts")
    if not isinstance(summary, dict):
        return [f"{CLAIMS_FILE} has no verdicts map"]
    return [f"claim {claim}: {CLAIMS_FILE} is inconsistent (verdicts says "
            f"{summary.get(claim)!r}, the claim entry {verdicts.get(claim)!r})"
            for claim in sorted(set(summary) | set(verdicts))
            if summary.get(claim) != verdicts.get(claim)]


def settings_differences(settings: dict, config: dict) -> list[str]:
    """Recorded claims settings that differ from those the (defaults-filled) config
    gives (:func:`wdnorm.claims.settings_from_config`)."""
    from .. import claims

    expected = claims.settings_from_config(config)
    out = []
    for key, value in sorted(settings.items()):
        if key not in expected:
            out.append(f"settings.{key}: recorded, not a setting of the claims")
        else:
            out += differences(f"settings.{key}", value, expected[key])
    return out


def recomputed_problems(recorded: dict, decided: dict) -> list[str]:
    """Verdicts first (one line per claim), then any other recorded field that the
    tables do not give."""
    ours, theirs = claim_verdicts(recorded), claim_verdicts(decided)
    out = []
    for claim in sorted(set(ours) | set(theirs)):
        if claim not in theirs:
            out.append(f"claim {claim}: recorded {ours[claim]!r}, not decided from the "
                       "tables")
        elif claim not in ours:
            out.append(f"claim {claim}: decided {theirs[claim]!r} from the tables, not in "
                       f"{CLAIMS_FILE}")
        elif ours[claim] != theirs[claim]:
            out.append(f"claim {claim}: {CLAIMS_FILE} says {ours[claim]!r}, the tables give "
                       f"{theirs[claim]!r}")
    if out:
        return out
    return [f"{CLAIMS_FILE} {d.lstrip('.')}" for d in
            differences("", _by_id(recorded), _by_id(decided), "the tables give", REL_TOL)]


def _by_id(output: dict) -> dict:
    """The output with its claims keyed by id (so differences name the claim)."""
    out = {k: v for k, v in output.items() if k not in NOT_RECOMPUTED}
    out["claims"] = {str(c.get("id")): c for c in output.get("claims") or []
                     if isinstance(c, dict)}
    return out
