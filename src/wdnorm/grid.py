"""The experiment grid: which members a slab trains (pure functions of config values)."""

from __future__ import annotations

from .engine import Member


def slab_members(lr: float, weight_decays: list[float], seeds: list[int],
                 matched_pairs: list[tuple[float, float]] = ()) -> list[Member]:
    """Every (lr, weight decay) of the grid plus the matched-ηλ pairs of claim C5, for
    every seed; duplicates (a pair that is also a grid point) are trained once. Ordered
    seed-major so that members sharing a batch stream sit side by side."""
    points = [(lr, wd) for wd in weight_decays] + [tuple(p) for p in matched_pairs]
    unique = list(dict.fromkeys((float(a), float(b)) for a, b in points))
    return [Member(a, b, int(s)) for s in seeds for a, b in unique]


def mimic_members(lr: float, seeds: list[int]) -> list[Member]:
    """The C6 mechanism runs: no weight decay, one per seed, each following the grid run
    :func:`mimic_reference` (lr, the mimic weight decay, seed)."""
    return [Member(lr, 0.0, int(s)) for s in seeds]


def mimic_reference(lr: float, weight_decay: float, seed: int) -> Member:
    return Member(lr, weight_decay, int(seed))


def check_config(config: dict) -> None:
    """Cross-key checks the JSON schema cannot express; raise before any job runs."""
    wds = [float(w) for w in config["weight_decays"]]
    mimic = config.get("mimic", {}).get("weight_decay")
    if mimic is not None and float(mimic) not in wds:
        raise ValueError(f"mimic.weight_decay={mimic!r} is not one of weight_decays={wds}: "
                         "the mimic runs follow the grid run with that weight decay")
    products = [a * b for a, b in config.get("matched_pairs", [])]
    if products and max(products) > min(products) * (1 + 1e-9):
        raise ValueError(f"matched_pairs must share one product lr*weight_decay, got "
                         f"{config['matched_pairs']} with products {products}")
