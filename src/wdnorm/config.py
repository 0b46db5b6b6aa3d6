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


def read_yaml(path: str | Path) -> Any:
    """A YAML file's content; a :class:`ValueError` naming the file, line and column of
    a syntax error (snakemake's own message names neither)."""
    try:
        with open(path, encoding="utf-8") as handle:
            return yaml.safe_load(handle)
    except yaml.MarkedYAMLError as error:
        mark = error.problem_mark or error.context_mark
        where = f"{path}, line {mark.line + 1}, column {mark.column + 1}" if mark else str(path)
        raise ValueError(f"{where}: not valid YAML: {error.problem or error.context}"
                         ) from None


def schema() -> dict:
    return copy.deepcopy(_schema())


def _resolve(node: dict) -> dict:
    """A schema node with its local ``$ref`` ("#/$defs/name") followed."""
    ref = node.get("$ref")
    if not ref:
        return node
    target: Any = _schema()
    for part in ref.lstrip("#/").split("/"):
        target = target[part]
    return {**target, **{k: v for k, v in node.items() if k != "$ref"}}


def _fill(value: Any, node: dict) -> Any:
    """``value`` with the schema's defaults filled in, recursively (as snakemake's
    ``validate(set_default=True)`` does for objects)."""
    node = _resolve(node)
    if value is None and "default" in node:
        value = copy.deepcopy(node["default"])
    if isinstance(value, dict):
        props = node.get("properties", {})
        out = dict(value)
        for key, sub in props.items():
            if key in out or "default" in sub:
                out[key] = _fill(out.get(key), sub)
        extra = node.get("additionalProperties")
        if isinstance(extra, dict) and extra:
            for key in out:
                if key not in props:
                    out[key] = _fill(out[key], extra)
        return out
    return value


def _as_number(value: str, types) -> Any:
    """A ``--config`` string as the number (or boolean) the schema asks for; the string
    itself when it is not one (validation then names it)."""
    text = value.strip()
    if "boolean" in types and text.lower() in ("true", "false"):
        return text.lower() == "true"
    if "null" in types and text.lower() in ("null", "none", "~"):
        return None
    for kind, parse in (("integer", int), ("number", float)):
        if kind in types:
            try:
                return parse(text)
            except ValueError:
                continue
    return value


def coerce(value: Any, node: dict | None = None) -> Any:
    """``value`` with the strings snakemake's ``--config key=[0,1]`` passes (list items
    and nested values stay strings) turned into the numbers and booleans the schema
    declares there; everything else unchanged. Applied before validation, so a value
    that is no number still fails with its key named."""
    node = _resolve(node if node is not None else _schema())
    types = node.get("type", [])
    types = [types] if isinstance(types, str) else list(types)
    if isinstance(value, str) and "enum" in node:
        return next((e for e in node["enum"] if str(e).lower() == value.strip().lower()),
                    value)
    if isinstance(value, str) and types:
        return _as_number(value, types)
    if isinstance(value, dict):
        props = node.get("properties", {})
        extra = node.get("additionalProperties")
        return {k: coerce(v, props[k]) if k in props else
                coerce(v, extra) if isinstance(extra, dict) else v for k, v in value.items()}
    if isinstance(value, list) and isinstance(node.get("items"), dict):
        return [coerce(v, node["items"]) for v in value]
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
        node = _resolve(props[key] if key in props else node["additionalProperties"])
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
    entry = _schema()["$defs"]["optimiser"]
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
