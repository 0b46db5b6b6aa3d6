"""Cross-key checks of a config that the JSON schema cannot express, run while the
workflow builds its DAG (and by the audit), so an impossible config fails before any
job starts, naming the keys, their values and what is allowed."""

from __future__ import annotations

from . import archs, optimisers, protocols
from .data import registry as data_registry
from .grid import equivalent_learning_rates, equivalent_weight_decays


def check_config(config: dict) -> None:
    """Every check below, on a defaults-filled config; the first failure raises
    :class:`ValueError`."""
    check_names(config)
    check_weight_decays(config)
    check_equivalents_exist(config)
    protocols.check(config)
    for variant in protocols.data_variants(config).values():
        check_data_sizes(config, variant)


def check_names(config: dict) -> None:
    """Architectures, datasets and optimiser algorithms against their registries."""
    named = [("architectures", a, archs.check_architecture) for a in config["architectures"]]
    named += [("datasets", d, data_registry.check_dataset) for d in config["datasets"]]
    named += [(f"optimisers.{n}.algorithm", o["algorithm"], optimisers.get)
              for n, o in config["optimisers"].items()]
    for name, p in config["protocols"].items():
        if "dataset" in p:
            named.append((f"protocols.{name}.dataset", p["dataset"], data_registry.check_dataset))
        if "optimiser" in p:
            named.append((f"protocols.{name}.optimiser.algorithm", p["optimiser"]["algorithm"],
                          optimisers.get))
    for key, value, check in named:
        try:
            check(value)
        except ValueError as error:
            raise ValueError(f"{key}: {error}") from None


def check_weight_decays(config: dict) -> None:
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
    products = [a * b for a, b in config["matched_pairs"]]
    if products and max(products) > min(products) * (1 + 1e-9):
        raise ValueError(f"matched_pairs must share one product lr*weight_decay, got "
                         f"{config['matched_pairs']} with products {products}")


def check_equivalents_exist(config: dict) -> None:
    """An equivalent exists only up to the optimiser record's ηλ limit (for SGD with
    momentum α, (1 − √α)²: beyond, k_t oscillates through 0)."""
    if not config["equivalents"]["kinds"]:
        return
    for name, opt in config["optimisers"].items():
        record = optimisers.get(opt["algorithm"])
        if not record.exact_equivalent:
            continue
        limit = record.equivalent_limit(opt)
        for lr, wd in ((lr, wd) for lr in equivalent_learning_rates(config, opt)
                       for wd in equivalent_weight_decays(config)):
            if lr * wd > limit:
                raise ValueError(
                    f"optimisers.{name}: lr*λ = {lr * wd:g} at lr={lr:g}, λ={wd:g} exceeds "
                    f"{limit:.4g}, the limit of {record.name}'s LR-schedule equivalent (k_t "
                    f"crosses 0). Lower equivalents.weight_decays / claims.weight_decay "
                    f"or the learning rate, or set equivalents.kinds: []")


def check_data_sizes(config: dict, variant: protocols.DataVariant) -> None:
    """The training subset and the validation split fit the dataset's training split, and
    a minibatch (of training, and of the probes, which train like the runs) fits the
    training subset."""
    record = data_registry.get(variant.dataset)
    where = "" if variant.name == variant.dataset else f" (data {variant.name})"
    full = record.train_split_size(variant.options)
    if full < 1:
        raise ValueError(f"{variant.dataset}: its options {dict(variant.options)} give "
                         f"{full} training examples{where}")
    n_val = variant.n_validation
    n_fit = full - n_val if variant.n_train is None else variant.n_train
    if n_fit < 1 or n_fit + n_val > full:
        raise ValueError(
            f"n_train={variant.n_train} + n_validation={n_val} need {n_fit + n_val} "
            f"examples, but the training split of {variant.dataset} has {full}{where}")
    batch = int(config["training"]["batch_size"])
    if batch > n_fit:
        raise ValueError(f"training.batch_size={batch} exceeds the {n_fit} training "
                         f"examples (n_train) of {variant.dataset}{where}: every step "
                         "needs a full minibatch")

