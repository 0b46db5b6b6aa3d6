"""Every registered claim from the tables, and the files around it: reading the tables
(with their sha256, which the audit recomputes) and writing claims.json / CLAIMS.md."""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from pathlib import Path

import pandas as pd

from .. import fileio
from ..frames import read_table
from . import common
from .answer import answer
from .registry import REGISTRY, TABLE_NAMES, TOLERANCES
from .render import jsonable, render_markdown

NAMING_NOTE = ("The article's 'pre-norm' LN(x+f(x)) is postln (standard Post-LN); its "
               "'post-norm' x+LN(f(x)) is resln; standard Pre-LN x+f(LN(x)) is preln.")


#: The config sections the claims are decided with.
SETTINGS_KEYS = ("optimisers", "weight_decays", "matched_pairs", "claims", "training")


def settings_from_config(config: Mapping) -> dict:
    """The ``settings`` of :func:`decide_all` from a defaults-filled config: its
    :data:`SETTINGS_KEYS` sections, copied as they are (so the audit can compare them
    with a config key by key); tolerance overrides ride in ``claims.tolerances``."""
    return {key: config.get(key) for key in SETTINGS_KEYS}


def table_sha(df: pd.DataFrame) -> str:
    """The file's sha256 when the frame came from :func:`load_tables`, else that of the
    frame's CSV."""
    if "sha256" in df.attrs:
        return df.attrs["sha256"]
    return hashlib.sha256(df.to_csv(index=False).encode("utf-8")).hexdigest()


def decide(cid: str, tables: Mapping[str, pd.DataFrame], settings: Mapping | None = None) -> dict:
    """One claim's record (missing tables count as empty)."""
    return REGISTRY[cid].evaluate(tables, settings)


def decide_all(tables: Mapping[str, pd.DataFrame], settings: Mapping | None = None) -> dict:
    """Every registered claim, the answer, the inputs' sha256, the tolerances in force,
    the settings and the architectures' naming."""
    settings = dict(settings or {})
    present = {name: tables[name] for name in TABLE_NAMES if tables.get(name) is not None}
    claims = [claim.evaluate(present, settings) for claim in REGISTRY.values()]
    inputs = {name: {"path": f"tables/{name}.csv", "sha256": table_sha(df), "rows": int(len(df))}
              for name, df in present.items()}
    return jsonable({
        "answer": answer(claims),
        "verdicts": {x["id"]: x["verdict"] for x in claims},
        "claims": claims, "inputs": inputs,
        "tolerances": common.tolerances(settings, TOLERANCES),
        "settings": settings, "naming": common.naming(), "naming_note": NAMING_NOTE,
    })


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


def write_claims(result: Mapping, json_path, markdown_path) -> None:
    """claims.json and CLAIMS.md, each atomically."""
    fileio.write_json(json_path, jsonable(result))
    fileio.write_text(markdown_path, render_markdown(result))
