"""The configuration's one description: ``config.schema.yaml`` beside this module.

The schema is the single source of every key, its allowed values and its default; the
workflow validates ``config.yaml`` against it (snakemake fills the defaults), and the
audit, the benchmarks and the tests read defaults from here rather than restating them.
"""

from __future__ import annotations

import copy
from functools import lru_cache
from pathlib import Path
from typing import Any

import yaml

SCHEMA_PATH = Path(__file__).with_name("config.schema.yaml")


@lru_cache(maxsize=1)
def _schema() -> dict:
    with open(SCHEMA_PATH, encoding="utf-8") as handle:
        return yaml.safe_load(handle)


def schema() -> dict:
    return copy.deepcopy(_schema())


def _fill(value: Any, node: dict) -> Any:
    """``value`` with the schema's defaults filled in, recursively (as snakemake's
    ``validate(set_default=True)`` does for objects)."""
    if value is None and "default" in node:
        value = copy.deepcopy(node["default"])
    if isinstance(value, dict):
        props = node.get("properties", {})
        out = dict(value)
        for key, sub in props.items():
            if key in out or "default" in sub:
                out[key] = _fill(out.get(key), sub)
        extra = node.get("additionalProperties")
        if isinstance(extra, dict):
            for key in out:
                if key not in props:
                    out[key] = _fill(out[key], extra)
        return out
    return value


def with_defaults(config: dict) -> dict:
    """A copy of ``config`` with every default of the schema filled in (the default
    architectures are every record of the registry, which the schema does not repeat)."""
    from . import archs

    filled = _fill(copy.deepcopy(config), _schema())
    filled.setdefault("architectures", list(archs.ARCHITECTURES))
    return filled


def defaults(*path: str) -> Any:
    """The default of the key at ``path`` (e.g. ``defaults("training", "eval_every")``);
    for an object, the object its properties' defaults make."""
    node = _schema()
    for key in path:
        props = node.get("properties", {})
        node = props[key] if key in props else node["additionalProperties"]
    return _fill(copy.deepcopy(node.get("default")), node)


def learning_rates(optimiser: dict) -> list[float]:
    """An optimiser entry's learning rates: its grid ``lr`` (the one claims C5–C7 read)
    first, then its ``lr_grid`` (where claim C8 tunes the learning rate), each once."""
    lrs = [optimiser["lr"], *(optimiser.get("lr_grid") or [])]
    return list(dict.fromkeys(float(lr) for lr in lrs))


#: The keys of an optimiser entry that are not hyper-parameters of its update rule.
OPTIMISER_SETTINGS = ("algorithm", "lr", "lr_grid")


def optimiser_hyper_defaults() -> dict:
    """The hyper-parameters an optimiser entry may set (momentum, betas, eps...) with
    their defaults: every property of the schema's optimiser entry but
    :data:`OPTIMISER_SETTINGS`."""
    entry = _schema()["properties"]["optimisers"]["additionalProperties"]
    return {k: v["default"] for k, v in entry["properties"].items()
            if k not in OPTIMISER_SETTINGS}


def validate(config: dict) -> dict:
    """Validate against the schema (jsonschema) and return the defaults-filled copy;
    a :class:`ValueError` names the bad key, its value and what is allowed."""
    import jsonschema

    filled = with_defaults(config)
    validator = jsonschema.Draft202012Validator(_schema())
    errors = sorted(validator.iter_errors(filled), key=lambda e: list(e.absolute_path))
    if errors:
        e = errors[0]
        where = "/".join(map(str, e.absolute_path)) or "(top level)"
        raise ValueError(f"invalid config at {where}: {e.message}")
    return filled
