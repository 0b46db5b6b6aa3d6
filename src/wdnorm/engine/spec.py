"""What a slab trains: its members (run kinds) and its settings, as plain dataclasses."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, fields

from types import MappingProxyType

from .. import archs, models, optimisers
from ..config import optimiser_hyper_defaults
from ..layout import run_id

# grid: the run with weight decay. The others stand for the grid run (lr, weight_decay,
# seed) of the same slab without weight decay on the architecture's group layers:
# exact: LR schedule lr/(k_t k_{t+1}) and the norms' eps/k_t^2 (docs/math.md);
# schedule: the same LR schedule, eps fixed; mimic: Hoffer et al.'s per-layer LR
# lr * ||w_t||^2 / ||w_ref,t||^2, the reference read from the grid member at the same step.
KINDS = ("grid", "exact", "schedule", "mimic")
DTYPES = ("float32", "float64")


class OptimiserConfig:
    """An optimiser record (:mod:`wdnorm.optimisers`) and the values of every
    hyper-parameter the config schema declares (its defaults fill what is not given):
    ``OptimiserConfig("sgd", momentum=0.9)``. The learning rate and weight decay are per
    member, not part of it. Immutable and hashable."""

    __slots__ = ("algorithm", "hyper")

    def __init__(self, algorithm: str = "sgd", **hyper: float):
        defaults = optimiser_hyper_defaults()
        unknown = sorted(set(hyper) - set(defaults))
        if unknown:
            raise ValueError(f"unknown optimiser hyper-parameter(s) {', '.join(unknown)}; "
                             f"valid: {', '.join(defaults)}")
        optimisers.get(algorithm)  # a clear error for an unknown algorithm
        values = {k: float(v) for k, v in {**defaults, **hyper}.items()}
        object.__setattr__(self, "algorithm", algorithm)
        object.__setattr__(self, "hyper", MappingProxyType(values))

    def __setattr__(self, name, value):
        raise AttributeError("OptimiserConfig is immutable")

    @property
    def record(self) -> optimisers.Optimiser:
        return optimisers.get(self.algorithm)

    def to_dict(self) -> dict:
        return {"algorithm": self.algorithm, **self.hyper}

    def __eq__(self, other) -> bool:
        return isinstance(other, OptimiserConfig) and self.to_dict() == other.to_dict()

    def __hash__(self) -> int:
        return hash(tuple(sorted(self.to_dict().items())))

    def __repr__(self) -> str:
        return "OptimiserConfig(" + ", ".join(f"{k}={v!r}" for k, v in self.to_dict().items()) + ")"


@dataclass(frozen=True)
class Member:
    lr: float
    weight_decay: float
    seed: int
    kind: str = "grid"

    def __post_init__(self):
        if self.kind not in KINDS:
            raise ValueError(f"unknown run kind {self.kind!r}; valid: {', '.join(KINDS)}")

    @property
    def run_id(self) -> str:
        return run_id(self.lr, self.weight_decay, self.seed, self.kind)

    @property
    def reference(self) -> "Member":
        """The grid run a non-grid member stands for (itself for a grid member)."""
        return Member(self.lr, self.weight_decay, self.seed)


@dataclass(frozen=True)
class SlabConfig:
    arch: str
    d_in: int
    width: int
    depth: int
    n_classes: int
    optimiser: OptimiserConfig = field(default_factory=OptimiserConfig)
    decay_scope: str = "hidden"
    epochs: int = 10
    batch_size: int = 128
    eval_every: int = 5         # epochs between full train/test evaluations
    final_evals: int = 1        # also evaluate after each of the last this-many epochs
    norm_eps: float = 1e-5
    bn_momentum: float = 0.1
    trace: bool = True          # per-step, per-layer dynamics (C3-C5 need them)
    dtype: str = "float32"      # float64 for the exact-equivalence probe
    lr_schedule: str = "constant"  # constant | cosine (to 0 after the last step)
    lr_decay_fraction: float = 1.0  # cosine: the decay spans this last fraction of steps

    def __post_init__(self):
        archs.check_architecture(self.arch)
        archs.check_decay_scope(self.decay_scope)
        for name in ("epochs", "batch_size", "eval_every", "final_evals"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be >= 1, got {getattr(self, name)!r}")
        if self.lr_schedule not in ("constant", "cosine"):
            raise ValueError(f"lr_schedule must be constant or cosine, got {self.lr_schedule!r}")
        if not 0 < self.lr_decay_fraction <= 1:
            raise ValueError(f"lr_decay_fraction must be in (0, 1], got "
                             f"{self.lr_decay_fraction!r}")
        if self.dtype not in DTYPES:
            raise ValueError(f"dtype must be one of {DTYPES}, got {self.dtype!r}")

    @classmethod
    def from_settings(cls, arch: str, meta: Mapping, settings: Mapping,
                      **overrides) -> "SlabConfig":
        """The one way to build a slab's config from config-shaped values: ``meta`` of
        the prepared dataset (``d_in``, ``n_classes``) and ``settings`` as
        :func:`wdnorm.provenance.training_values` gives them (``model``, ``training``,
        ``decay_scope``, the ``optimiser`` entry; defaults filled). ``overrides``: what a
        probe changes on purpose (dtype, trace, epochs, its own optimiser...)."""
        model, training, entry = settings["model"], settings["training"], settings["optimiser"]
        hyper = {k: v for k, v in entry.items() if k in optimiser_hyper_defaults()}
        values = dict(arch=arch, d_in=int(meta["d_in"]), n_classes=int(meta["n_classes"]),
                      width=model["width"], depth=model["depth"], norm_eps=model["norm_eps"],
                      optimiser=OptimiserConfig(entry["algorithm"], **hyper),
                      decay_scope=settings["decay_scope"], epochs=training["epochs"],
                      batch_size=training["batch_size"], eval_every=training["eval_every"],
                      final_evals=training["final_evals"],
                      lr_schedule=training["lr_schedule"],
                      lr_decay_fraction=training["lr_decay_fraction"])
        return cls(**{**values, **overrides})

    @property
    def record(self) -> archs.Arch:
        return archs.get(self.arch)

    def to_dict(self) -> dict:
        return {**{f.name: getattr(self, f.name) for f in fields(self)},
                "optimiser": self.optimiser.to_dict()}

    @classmethod
    def from_dict(cls, d: dict) -> "SlabConfig":
        d = dict(d)
        d["optimiser"] = OptimiserConfig(**d["optimiser"])
        return cls(**{k: v for k, v in d.items() if k in cls.__dataclass_fields__})

    def build_model(self) -> models.MLP:
        return models.build_model(self.arch, self.d_in, self.width, self.depth,
                                  self.n_classes, norm_eps=self.norm_eps,
                                  bn_momentum=self.bn_momentum)


def check_members(cfg: SlabConfig, members: list[Member]) -> None:
    """Raise before training on a slab that cannot be trained as asked."""
    if not members:
        raise ValueError("a slab needs at least one member")
    ids = [m.run_id for m in members]
    if len(set(ids)) != len(ids):
        raise ValueError(f"duplicate members in a slab: {sorted(i for i in ids if ids.count(i) > 1)}")
    grid = {m.run_id for m in members if m.kind == "grid"}
    for m in members:
        if m.kind == "grid":
            continue
        if not cfg.optimiser.record.exact_equivalent:
            raise ValueError(f"run kind {m.kind!r} ({m.run_id}) needs an optimiser with an "
                             f"exact LR-schedule equivalent; {cfg.optimiser.algorithm} has "
                             f"none (docs/math.md)")
        if m.kind == "mimic" and m.reference.run_id not in grid:
            raise ValueError(f"mimic member {m.run_id} needs its reference grid run "
                             f"{m.reference.run_id} in the same slab")
