"""The experiment grid: which members a slab trains (pure functions of config values)."""

from __future__ import annotations

from . import archs, optimisers, protocols
from .config import learning_rates
from .engine import Member

EQUIVALENT_KINDS = ("exact", "schedule", "mimic")


def grid_points(lrs, weight_decays, matched_pairs=()) -> list[tuple[float, float]]:
    """Every (lr, weight decay) of the grid plus the matched-ηλ pairs of claim C5;
    a pair that is also a grid point is trained once."""
    points = [(lr, wd) for lr in lrs for wd in weight_decays] + [tuple(p) for p in matched_pairs]
    return list(dict.fromkeys((float(a), float(b)) for a, b in points))


def equivalent_weight_decays(config: dict) -> list[float]:
    """The λ at which the LR-schedule equivalents and the mimic train: the claims' λ
    unless ``equivalents.weight_decays`` lists more."""
    listed = config["equivalents"].get("weight_decays")
    return [float(w) for w in (listed or [config["claims"]["weight_decay"]])]


def equivalent_learning_rates(config: dict, entry: dict) -> list[float]:
    """Where the equivalents train: the optimiser's lr (claims C6, C7 compare there),
    or every learning rate with ``equivalents.every_learning_rate``."""
    lrs = learning_rates(entry)
    return lrs if config["equivalents"]["every_learning_rate"] else lrs[:1]


def protocol_members(config: dict, protocol: protocols.Protocol, arch: str) -> list[list[Member]]:
    """Per seed, the members one protocol trains for ``arch``. The main protocol: the λ
    grid at each of the optimiser's learning rates (:func:`wdnorm.config.learning_rates`),
    the matched pairs, and the equivalents of the grid runs at
    :func:`equivalent_weight_decays` where they are informative -- an optimiser with an
    exact equivalent (its record says so) on an architecture with a predicted symmetry
    (elsewhere the float64 equivalence probe is the contrast that shows the equivalence
    failing, at a fraction of the cost). A C9 variant: its weight decays at its
    optimiser's lr (its whole learning-rate grid when ``tuned``)."""
    entry = protocol.optimiser_entry
    lrs = learning_rates(entry) if protocol.tuned else learning_rates(entry)[:1]
    pairs = config["matched_pairs"] if protocol.is_main else []
    points = grid_points(lrs, protocol.weight_decays, pairs)
    wanted = (protocol.is_main and optimisers.get(entry["algorithm"]).exact_equivalent
              and archs.get(arch).invariant)
    kinds = list(config["equivalents"]["kinds"]) if wanted else []
    schedule = dict(lr_schedule=protocol.training["lr_schedule"],
                    lr_decay_fraction=float(protocol.training["lr_decay_fraction"]),
                    protocol=protocol.name)
    out = []
    for seed in config["seeds"]:
        members = [Member(a, b, int(seed), **schedule) for a, b in points]
        members += [Member(lr, wd, int(seed), kind, **schedule)
                    for lr in equivalent_learning_rates(config, entry)
                    for wd in equivalent_weight_decays(config) for kind in kinds]
        out.append(members)
    return out


def slab_members(config: dict, data: str, optimiser: str, arch: str) -> list[Member]:
    """Every member of one slab (``config`` defaults-filled): the members of every
    protocol that trains there (:func:`wdnorm.protocols.in_slab`, the main grid first).
    Seed-major, so members sharing a batch stream sit side by side."""
    per_protocol = [protocol_members(config, p, arch)
                    for p in protocols.in_slab(config, data, optimiser, arch)]
    return [m for by_seed in zip(*per_protocol) for members in by_seed for m in members]
