"""Training protocols: the main one and claim C9's pre-declared variants, resolved from
the config into what trains where (pure functions of config values).

The *main* protocol is the grid of the config: every dataset × optimiser × architecture,
the weight-decay grid at every learning rate, the equivalents and matched pairs. A
*variant* (config ``protocols``) is a small set of overrides of the main protocol on its
first dataset and first optimiser -- another dataset, training-set size, optimiser,
learning-rate schedule or length -- and trains only what claim C6's test needs there:
its architectures (by default the headline architectures and their positive controls)
at λ = 0 and its λ*, for every seed (with ``tuned``, its optimiser's whole learning-rate
grid × its weight decays, so C8's test runs inside it too).

Where runs train follows from what differs. A variant whose data settings differ gets a
data variant of its own (``{dataset}-{protocol}``, prepared separately); one whose
slab-level training (optimiser entry, epochs, batch size, evaluations) differs gets a
slab setting named after it; a variant that differs only in what is per member (the
learning-rate schedule) trains *in the main protocol's slabs*, beside the grid. A run's
protocol is the one that asked for it; every protocol must differ from every other in
something that changes its runs (checked).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from . import archs

MAIN = "main"
#: The keys of the data a run trains on (with its dataset's own options block).
DATA_KEYS = ("n_train", "n_validation", "subset_seed")
#: Slab-level training settings: members that differ in one of them cannot share a slab.
SLAB_TRAINING_KEYS = ("epochs", "batch_size", "eval_every", "final_evals", "collapse_ratio")
#: Per-member training settings: members of one slab may differ in them.
MEMBER_TRAINING_KEYS = ("lr_schedule", "lr_decay_fraction")


@dataclass(frozen=True)
class DataVariant:
    """One prepared dataset: a registry dataset with its subset settings and options."""
    name: str                 # data/prepared/{name}.pt and the runs' {dataset} directory
    dataset: str              # the registry's dataset
    n_train: int | None
    n_validation: int
    subset_seed: int
    options: Mapping = field(default_factory=dict)

    def values(self) -> dict:
        return {"dataset": self.dataset, "n_train": self.n_train,
                "n_validation": self.n_validation, "subset_seed": self.subset_seed,
                "options": dict(self.options)}


@dataclass(frozen=True)
class Protocol:
    name: str
    data: DataVariant
    optimiser: str            # the slab setting's name (results/runs/{data}/{optimiser}/)
    optimiser_entry: Mapping  # algorithm, lr, lr_grid and hyper-parameters
    training: Mapping         # the whole training block, schedule included
    weight_decays: tuple[float, ...]
    weight_decay: float       # its pre-declared λ*
    architectures: tuple[str, ...]
    tuned: bool               # trains the optimiser's learning-rate grid (C8's test)
    changes: str              # what it changes, in words ("" for the main protocol)

    @property
    def is_main(self) -> bool:
        return self.name == MAIN

    @property
    def schedule(self) -> tuple[str, float]:
        return self.training["lr_schedule"], float(self.training["lr_decay_fraction"])


def default_architectures(config: Mapping) -> tuple[str, ...]:
    """A variant's architectures: C6's headline ones and its positive controls among the
    main grid's architectures."""
    return tuple(a for a in config["architectures"]
                 if archs.get(a).role in ("headline", "control"))


def data_variant(config: Mapping, dataset: str, overrides: Mapping, protocol: str) -> DataVariant:
    values = {key: overrides.get(key, config[key]) for key in DATA_KEYS}
    options = dict(config.get(dataset) or {})
    # a dataset the main grid does not train keeps its own name, whatever its sizes; one
    # it trains keeps it only with the main grid's sizes (else {dataset}-{protocol})
    own_name = dataset not in config["datasets"] or all(
        values[key] == config[key] for key in DATA_KEYS)
    name = dataset if own_name else f"{dataset}-{protocol}"
    return DataVariant(name, dataset, values["n_train"], int(values["n_validation"]),
                       int(values["subset_seed"]), options)


def main_protocols(config: Mapping) -> list[Protocol]:
    """The main grid: one protocol entry per dataset × optimiser, all named ``main``."""
    out = []
    for dataset in config["datasets"]:
        data = data_variant(config, dataset, {}, MAIN)
        for name, entry in config["optimisers"].items():
            out.append(Protocol(MAIN, data, name, dict(entry), dict(config["training"]),
                                tuple(float(w) for w in config["weight_decays"]),
                                float(config["claims"]["weight_decay"]),
                                tuple(config["architectures"]), True, ""))
    return out


def variant(config: Mapping, name: str, overrides: Mapping) -> Protocol:
    """A C9 protocol: the main protocol's first dataset and optimiser, overridden."""
    base = main_protocols(config)[0]
    dataset = overrides.get("dataset", base.data.dataset)
    data = data_variant(config, dataset, overrides, name)
    training = {**base.training, **{k: overrides[k] for k in
                                    (*SLAB_TRAINING_KEYS, *MEMBER_TRAINING_KEYS)
                                    if k in overrides}}
    entry = dict(overrides.get("optimiser") or base.optimiser_entry)
    same_slab = entry == dict(base.optimiser_entry) and all(
        training[k] == base.training[k] for k in SLAB_TRAINING_KEYS)
    wd_star = float(overrides.get("weight_decay", base.weight_decay))
    wds = overrides.get("weight_decays") or [0.0, wd_star]
    return Protocol(name, data, base.optimiser if same_slab else name, entry, training,
                    tuple(float(w) for w in wds), wd_star,
                    tuple(overrides.get("architectures") or default_architectures(config)),
                    bool(overrides.get("tuned", False)),
                    overrides.get("changes") or describe(overrides))


def describe(overrides: Mapping) -> str:
    """The overrides in a few words: "lr_schedule=constant, n_train=4000"."""
    def show(value):
        if isinstance(value, Mapping):  # an optimiser entry
            return f"{value.get('algorithm')} at lr {value.get('lr')}"
        return str(value)
    return ", ".join(f"{k}={show(v)}" for k, v in overrides.items()
                     if k not in ("changes", "architectures", "tuned"))


def resolve(config: Mapping) -> list[Protocol]:
    """Every protocol of a defaults-filled config: the main grid first, then C9's."""
    return main_protocols(config) + [variant(config, name, overrides)
                                     for name, overrides in config["protocols"].items()]


def variants(config: Mapping) -> list[Protocol]:
    return [p for p in resolve(config) if not p.is_main]


def data_variants(config: Mapping) -> dict[str, DataVariant]:
    """Every prepared dataset the protocols train on, by name."""
    return {p.data.name: p.data for p in resolve(config)}


def slabs(config: Mapping) -> list[tuple[str, str, str]]:
    """Every (data, optimiser, arch) slab some protocol trains in, in protocol order."""
    return list(dict.fromkeys((p.data.name, p.optimiser, arch) for p in resolve(config)
                              for arch in p.architectures))


def in_slab(config: Mapping, data: str, optimiser: str, arch: str) -> list[Protocol]:
    """The protocols that train members in one slab (main first)."""
    return [p for p in resolve(config) if p.data.name == data and p.optimiser == optimiser
            and arch in p.architectures]


def slab_settings(config: Mapping, data: str, optimiser: str) -> Protocol:
    """The protocol that defines a slab's shared settings: the first one training there
    (every other differs from it in per-member settings only, see :func:`check`)."""
    for p in resolve(config):
        if p.data.name == data and p.optimiser == optimiser:
            return p
    raise ValueError(f"no protocol trains in {data}/{optimiser}")


def check(config: Mapping) -> None:
    """Cross-key checks of the protocols; raise before any job runs."""
    names = list(config["protocols"])
    if MAIN in names:
        raise ValueError(f"protocols: {MAIN!r} is the name of the main protocol (the grid); "
                         "choose another name")
    seen: dict[tuple, str] = {}
    data_of: dict[str, Protocol] = {}
    for p in resolve(config):
        other = data_of.setdefault(p.data.name, p)
        if other.data != p.data:
            raise ValueError(
                f"protocols.{p.name} and {other.name!r} both train on data {p.data.name} "
                f"with other sizes ({p.data.values()} vs {other.data.values()}): give them "
                "the same n_train, n_validation and subset_seed")
        for arch in p.architectures:
            try:
                archs.check_architecture(arch)
            except ValueError as error:
                raise ValueError(f"protocols.{p.name}.architectures: {error}") from None
        if not p.is_main and p.weight_decay not in p.weight_decays:
            raise ValueError(f"protocols.{p.name}: weight_decay {p.weight_decay:g} is not one "
                             f"of its weight_decays {list(p.weight_decays)}")
        if not p.is_main and 0.0 not in p.weight_decays:
            raise ValueError(f"protocols.{p.name}: weight_decays {list(p.weight_decays)} have "
                             "no 0: its comparison is against the λ = 0 run of each seed")
        key = (p.data.name, p.optimiser, p.schedule)
        if p.is_main:
            seen.setdefault(key, p.name)
            continue
        if key in seen:
            raise ValueError(
                f"protocols.{p.name} trains the same runs as protocol {seen[key]!r} (same "
                f"data {p.data.name}, optimiser and training settings {p.optimiser}, "
                f"schedule {p.schedule}): a protocol must change the data, the optimiser, "
                "the training length or the learning-rate schedule")
        seen[key] = p.name
        first = slab_settings(config, p.data.name, p.optimiser)
        if first.name != p.name and any(first.training[k] != p.training[k]
                                        for k in SLAB_TRAINING_KEYS):
            raise ValueError(f"protocols.{p.name}: shares slab {p.data.name}/{p.optimiser} "
                             f"with {first.name!r} but not its {SLAB_TRAINING_KEYS}")
