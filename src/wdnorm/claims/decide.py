"""Every registered claim from the tables, and the files around it: reading the tables
(with their sha256, which the audit recomputes) and writing claims.json / CLAIMS.md."""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from concurrent.futures import ProcessPoolExecutor
from multiprocessing import get_context
from pathlib import Path

import pandas as pd

from .. import fileio, protocols
from ..frames import read_table
from . import common, stability
from .answer import answer
from .effects_table import effects_rows
from .registry import REGISTRY, TABLE_NAMES, TOLERANCES
from .render import jsonable, render_markdown

NAMING_NOTE = ("The article's 'pre-norm' LN(x+f(x)) is postln (standard Post-LN); its "
               "'post-norm' x+LN(f(x)) is resln; standard Pre-LN x+f(LN(x)) is preln.")


#: The config sections the claims are decided with.
SETTINGS_KEYS = ("optimisers", "weight_decays", "matched_pairs", "claims", "training")


def settings_from_config(config: Mapping) -> dict:
    """The ``settings`` of :func:`decide_all` from a defaults-filled config: its
    :data:`SETTINGS_KEYS` sections, copied as they are (so the audit can compare them
    with a config key by key), and the protocols it trains (``protocols``: the main
    one, on its first dataset and optimiser, then C9's); tolerance overrides ride in
    ``claims.tolerances``."""
    resolved = protocols.resolve(config)
    described = {p.name: protocol_settings(p) for p in reversed(resolved)}
    return {**{key: config.get(key) for key in SETTINGS_KEYS},
            "protocols": {"main": described["main"],
                          **{k: v for k, v in described.items() if k != "main"}}}


def protocol_settings(p) -> dict:
    """What the claims need to know of a protocol (:class:`wdnorm.protocols.Protocol`)."""
    return {"name": p.name, "changes": p.changes, "data": p.data.name,
            "dataset": p.data.dataset, "n_train": p.data.n_train,
            "optimiser": p.optimiser, "optimiser_entry": dict(p.optimiser_entry),
            "lr": float(p.optimiser_entry["lr"]), "weight_decay": p.weight_decay,
            "weight_decays": list(p.weight_decays), "lr_schedule": p.schedule[0],
            "lr_decay_fraction": p.schedule[1],
            "tuned": p.tuned}


def table_sha(df: pd.DataFrame) -> str:
    """The file's sha256 when the frame came from :func:`load_tables`, else that of the
    frame's CSV."""
    if "sha256" in df.attrs:
        return df.attrs["sha256"]
    return hashlib.sha256(df.to_csv(index=False).encode("utf-8")).hexdigest()


def decide(cid: str, tables: Mapping[str, pd.DataFrame], settings: Mapping | None = None) -> dict:
    """One claim's record (missing tables count as empty)."""
    return REGISTRY[cid].evaluate(tables, settings)


def decide_all(tables: Mapping[str, pd.DataFrame], settings: Mapping | None = None,
               workers: int = 1) -> dict:
    """Every registered claim with its stability record, the answer, the inputs' sha256,
    the tolerances in force, the settings and the architectures' naming. ``workers``:
    processes for the stability bootstrap (the one expensive part)."""
    settings = dict(settings or {})
    present = {name: tables[name] for name in TABLE_NAMES if tables.get(name) is not None}
    claims = [claim.evaluate(present, settings) for claim in REGISTRY.values()]
    for record, stable in zip(claims, stability_records(present, settings, claims, workers)):
        record["stability"] = stable
    inputs = {name: {"path": f"tables/{name}.csv", "sha256": table_sha(df), "rows": int(len(df))}
              for name, df in present.items()}
    return jsonable({
        "answer": answer(claims),
        "verdicts": {x["id"]: x["verdict"] for x in claims},
        "claims": claims, "inputs": inputs,
        "tolerances": common.tolerances(settings, TOLERANCES),
        "settings": settings, "naming": common.naming(), "naming_note": NAMING_NOTE,
    })


#: What the bootstrap's worker processes read: set before they fork, so the tables reach
#: them without being pickled once per task.
_SHARED: dict = {}


def _redecide(task) -> dict[str, int]:
    cid, draws = task
    own, settings = _SHARED[cid], _SHARED["settings"]
    return stability.redecide(REGISTRY[cid], own, settings, draws)


def stability_records(tables: Mapping, settings: Mapping, claims: list[dict],
                      workers: int) -> list[dict]:
    """Each claim's stability record (:mod:`~wdnorm.claims.stability`), its re-decisions
    shared between ``workers`` processes in slices of resamples rather than one claim
    per process: C9 alone costs as much as the other claims together, so claim-sized
    tasks leave a core idle. The draws are made up front, so the records do not depend
    on ``workers``."""
    plans = {x["id"]: stability.plan(REGISTRY[x["id"]], tables, settings) for x in claims}
    slices = 2 * workers if workers > 1 else 1  # a few per worker: their ends come out even
    tasks = [(cid, draws[k::slices]) for cid, (_, _, draws) in plans.items()
             for k in range(min(slices, len(draws)))]
    counts: dict[str, dict[str, int]] = {cid: {} for cid in plans}
    _SHARED.update({cid: own for cid, (_, own, _) in plans.items()}, settings=settings)
    try:
        if workers > 1:
            with ProcessPoolExecutor(max_workers=workers, mp_context=get_context("fork")) as pool:
                parts = list(pool.map(_redecide, tasks))
        else:
            parts = [_redecide(task) for task in tasks]
    finally:
        _SHARED.clear()
    for (cid, _), part in zip(tasks, parts):
        for verdict, n in part.items():
            counts[cid][verdict] = counts[cid].get(verdict, 0) + n
    return [stability.summarise(plans[x["id"]][0], counts[x["id"]], x["verdict"])
            for x in claims]


def load_tables(tables) -> dict[str, pd.DataFrame]:
    """The tables from a directory (``{name}.csv`` for every registered table) or a
    mapping name -> path. Each frame carries ``attrs["sha256"]`` (of the file) and
    ``attrs["path"]``; missing files are left out, 0-byte ones read as empty."""
    if isinstance(tables, Mapping):
        paths = {k: Path(v) for k, v in tables.items()}
    else:
        paths = {name: Path(tables) / f"{name}.csv" for name in TABLE_NAMES}
    out = {}
    for name, path in paths.items():
        if not path.exists():
            continue
        df = read_table(path)
        df.attrs["sha256"] = fileio.sha256_file(path)
        df.attrs["path"] = str(path)
        out[name] = df
    return out


def write_claims(result: Mapping, json_path, markdown_path, effects_path=None) -> None:
    """claims.json, CLAIMS.md and (given a path) the effects table, each atomically."""
    fileio.write_json(json_path, jsonable(result))
    fileio.write_text(markdown_path, render_markdown(result))
    if effects_path is not None:
        fileio.write_csv(effects_path, effects_rows(result["claims"]))
