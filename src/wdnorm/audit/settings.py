"""A run's recorded slab settings: what it was trained with (``metrics.json``'s ``slab``,
the same in provenance ``config_values.slab``). Replay retrains from them and the
figures read epochs and steps from them, yet they are no config value: a resealed edit
there would pass every hash. So they must be what the run's own recorded config values
give (through :meth:`wdnorm.engine.SlabConfig.from_settings`, as the training job
built them), and
``steps`` must be epochs × (n_train // batch_size). With ``--config``, provenance
compares those config values with the config's, so the slab settings are checked
against the config too: a slab setting that differs from the config's differs from its
own config values, or they differ from the config (one line, where the difference is)."""

from __future__ import annotations

from typing import Any

from .common import MISSING, RunRef, differences, show

OWN = "its config_values give"


def slab_settings_problems(ref: RunRef, values: dict, metrics: dict | None) -> list[str]:
    """How a run's recorded slab settings differ from its metrics' and from what its
    own config values give; and whether its steps add up."""
    recorded = values.get("slab")
    if not isinstance(recorded, dict):
        return ["provenance records no slab settings (config_values.slab)"]
    out = []
    if metrics is not None:
        out += [f"metrics.json {d}" for d in differences(
            "slab", metrics.get("slab", MISSING), recorded, "provenance.json")]
    own, error = expected_slab(ref.arch, values, recorded)
    out += [f"slab settings: {error}"] if error else differences("slab", recorded, own, OWN)
    if metrics is not None:
        out += steps_problems(metrics.get("steps", MISSING), recorded, values.get("n_train"))
    return out


def expected_slab(arch: str, settings: dict, recorded: dict) -> tuple[dict | None,
                                                                      str | None]:
    """``(slab settings, None)`` the training job builds from ``settings`` (training
    values: model, training, optimiser, decay scope) for ``arch``; the dataset's
    dimensions are taken from ``recorded`` (only the data can tell them: replay checks).
    ``(None, why)`` when the settings cannot build one."""
    from ..engine import SlabConfig

    meta = {"d_in": recorded.get("d_in"), "n_classes": recorded.get("n_classes")}
    try:
        cfg = SlabConfig.from_settings(arch, meta, settings)
    except (KeyError, TypeError, ValueError) as error:
        return None, (f"config_values cannot build a slab config "
                      f"({type(error).__name__}: {error})")
    return cfg.to_dict(), None


def steps_problems(steps: Any, recorded: dict, n_train: Any) -> list[str]:
    """``steps`` must be epochs × (n_train // batch_size) (only a multiple of epochs when
    n_train is unset: the whole training split, whose size only the data knows)."""
    epochs, batch = recorded.get("epochs"), recorded.get("batch_size")
    if not all(_count(v) for v in (steps, epochs, batch)):
        return [f"metrics steps {show(steps)}, slab epochs {show(epochs)} and batch_size "
                f"{show(batch)} are not all positive integers"]
    if n_train is None:
        return [] if steps % epochs == 0 else [
            f"metrics steps {steps} is not a multiple of the slab's epochs {epochs}"]
    if not _count(n_train):
        return [f"config_values n_train {show(n_train)} is not a positive integer"]
    want = epochs * (n_train // batch)
    return [] if steps == want else [
        f"metrics steps {steps} is not epochs × (n_train // batch_size) = {epochs} × "
        f"({n_train} // {batch}) = {want}"]


def _count(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value > 0
