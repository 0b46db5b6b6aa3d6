"""The experiment grid: which members a slab trains (pure functions of config values)."""

from __future__ import annotations

from . import archs, optimisers
from .data import registry as data_registry
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


def slab_members(config: dict, optimiser: str, arch: str) -> list[Member]:
    """Every member of the slab of ``optimiser`` and ``arch`` (``config`` defaults-filled):
    the λ grid at each of the optimiser's learning rates
    (:func:`wdnorm.config.learning_rates`), the matched pairs, and the equivalents of the
    grid runs at :func:`equivalent_weight_decays` (at each learning rate) where they are
    informative -- an optimiser with an exact equivalent (its record says so) on an
    architecture with a predicted symmetry (elsewhere the float64
    equivalence probe is the contrast that shows the equivalence failing, at a fraction
    of the cost). Seed-major, so members sharing a batch stream sit side by side."""
    opt = config["optimisers"][optimiser]
    lrs = learning_rates(opt)
    points = grid_points(lrs, config["weight_decays"], config.get("matched_pairs", []))
    wanted = optimisers.get(opt["algorithm"]).exact_equivalent and archs.get(arch).invariant
    kinds = list(config["equivalents"]["kinds"]) if wanted else []
    members = []
    for seed in config["seeds"]:
        members += [Member(a, b, int(seed)) for a, b in points]
        members += [Member(lr, wd, int(seed), kind) for lr in lrs
                    for wd in equivalent_weight_decays(config) for kind in kinds]
    return members


def check_config(config: dict) -> None:
    """Cross-key checks the JSON schema cannot express; raise before any job runs."""
    for arch in config["architectures"]:
        try:
            archs.check_architecture(arch)
        except ValueError as error:
            raise ValueError(f"architectures: {error}") from None
    for name in config["datasets"]:
        try:
            data_registry.check_dataset(name)
        except ValueError as error:
            raise ValueError(f"datasets: {error}") from None
    for name, opt in config["optimisers"].items():
        try:
            optimisers.get(opt["algorithm"])
        except ValueError as error:
            raise ValueError(f"optimisers.{name}.algorithm: {error}") from None
    wds = [float(w) for w in config["weight_decays"]]
    claims_wd = float(config["claims"]["weight_decay"])
    if claims_wd not in wds:
        raise ValueError(f"claims.weight_decay={claims_wd!r} is not one of weight_decays="
                         f"{wds}: the claims compare the grid run at that λ with λ = 0")
    if 0.0 not in wds:
        raise ValueError(f"weight_decays={wds} has no 0: every comparison is against the "
                         "λ = 0 run of the same seed")
    for wd in equivalent_weight_decays(config):
        if wd not in wds:
            raise ValueError(f"equivalents.weight_decays has {wd!r}, not one of "
                             f"weight_decays={wds}: an equivalent stands for a grid run")
    products = [a * b for a, b in config.get("matched_pairs", [])]
    if products and max(products) > min(products) * (1 + 1e-9):
        raise ValueError(f"matched_pairs must share one product lr*weight_decay, got "
                         f"{config['matched_pairs']} with products {products}")
    _check_equivalents_exist(config)


def _check_equivalents_exist(config: dict) -> None:
    """An equivalent exists only up to the optimiser record's ηλ limit (for SGD with
    momentum α, (1 − √α)²: beyond, k_t oscillates through 0)."""
    if not config["equivalents"]["kinds"]:
        return
    for name, opt in config["optimisers"].items():
        record = optimisers.get(opt["algorithm"])
        if not record.exact_equivalent:
            continue
        limit = record.equivalent_limit(opt)
        for lr, wd in ((lr, wd) for lr in learning_rates(opt)
                       for wd in equivalent_weight_decays(config)):
            if lr * wd > limit:
                raise ValueError(
                    f"optimisers.{name}: lr*λ = {lr * wd:g} at lr={lr:g}, λ={wd:g} exceeds "
                    f"{limit:.4g}, the limit of {record.name}'s LR-schedule equivalent (k_t "
                    f"crosses 0). Lower equivalents.weight_decays / claims.weight_decay "
                    f"or the learning rate, or set equivalents.kinds: []")
