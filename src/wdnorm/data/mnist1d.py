"""MNIST-1D (Greydanus & Kobak, 2024): generated offline by the ``mnist1d`` package.

The sequences come from the package's own generator
(``mnist1d.data.make_dataset(get_dataset_args())``), never from its download path
(the ``url`` argument, a pickle on GitHub) and never from a copy of its code: the
pinned package version *is* the dataset's definition. With the package's defaults
that is 5000 sequences of 40 features, 10 classes (500 each), split 4000 train /
1000 test after the generator's own shuffle.

The options (the config's ``mnist1d`` block) override the generator arguments named
in :data:`OPTIONS`; every other argument keeps the package's default. The full
argument set (minus ``url``) and the package version go into the prepared meta.

``make_dataset`` seeds Python's and numpy's *global* generators (``set_seed``); their
states are saved and restored around it, so generating the data perturbs nothing else.
"""

from __future__ import annotations

import contextlib
import random
from importlib import metadata
from pathlib import Path
from typing import Any, Iterator, Mapping

import numpy as np

from .base import DatasetError, Raw

PACKAGE = "mnist1d"
OPTIONS = ("num_samples", "train_split", "corr_noise_scale", "iid_noise_scale", "seed")
INPUT_SHAPE = (40,)  # the generator's final_seq_length (not an option)
SPLIT_NOTE = ("mnist1d make_dataset: num_samples // 10 sequences per class, shuffled "
              "with the generator's seed; the first int(n * train_split) are the train "
              "split, the rest the test split")
SCALING_NOTE = ("make_dataset centres and scales all sequences by one global mean and "
                "std (train and test together) before the pipeline's per-feature "
                "standardisation")


def generator_args(options: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """The package's default generator arguments, minus ``url``, with ``options``
    (checked: types and ranges) applied on top."""
    from mnist1d.data import get_dataset_args

    args = get_dataset_args(as_dict=True)
    args.pop("url", None)  # never downloaded: the data are generated here
    args.update(_checked(dict(options or {})))
    return args


def _checked(options: dict[str, Any]) -> dict[str, Any]:
    def number(key, low, *, integer=False, below=None):
        value = options[key]
        wrong_type = isinstance(value, bool) or not isinstance(
            value, (int, np.integer) if integer else (int, float, np.integer, np.floating))
        if wrong_type or value < low or (below is not None and value >= below):
            bound = f"in [{low}, {below})" if below is not None else f">= {low}"
            kind = "an integer" if integer else "a number"
            raise ValueError(f"mnist1d option {key}={value!r} must be {kind} {bound}")
        return int(value) if integer else float(value)

    limits = {"num_samples": dict(low=10, integer=True), "seed": dict(low=0, integer=True),
              "train_split": dict(low=0.0, below=1.0),
              "corr_noise_scale": dict(low=0.0), "iid_noise_scale": dict(low=0.0)}
    unknown = sorted(set(options) - set(limits))
    if unknown:
        raise ValueError(f"unknown mnist1d option(s) {', '.join(unknown)}; "
                         f"valid options: {', '.join(OPTIONS)}")
    return {key: number(key, **limits[key]) for key in options}


def train_split_size(options: Mapping[str, Any] | None = None) -> int:
    """The generator's training split size: num_samples // 10 sequences per class, the
    first int(n · train_split) of them (mnist1d.data.make_dataset's own rule)."""
    args = generator_args(options)
    return int((args["num_samples"] // 10) * 10 * args["train_split"])


@contextlib.contextmanager
def _global_rng_preserved() -> Iterator[None]:
    """Restore Python's and numpy's global RNG states on exit (make_dataset reseeds them)."""
    py_state, np_state = random.getstate(), np.random.get_state()
    try:
        yield
    finally:
        random.setstate(py_state)
        np.random.set_state(np_state)


def load(raw_dir: Path | None, download: bool, options: Mapping[str, Any]) -> Raw:
    """Generate the split: float64 sequences ``[N, 40]``, int64 labels. ``raw_dir`` and
    ``download`` are unused (nothing is read or downloaded)."""
    from mnist1d.data import make_dataset
    from mnist1d.utils import ObjectView

    args = generator_args(options)
    with _global_rng_preserved():
        generated = make_dataset(ObjectView(dict(args)))
    x_tr, x_te = (np.ascontiguousarray(generated[k], dtype=np.float64) for k in ("x", "x_test"))
    y_tr, y_te = (np.ascontiguousarray(generated[k], dtype=np.int64) for k in ("y", "y_test"))
    if not len(x_tr) or not len(x_te):
        raise DatasetError(f"mnist1d with num_samples={args['num_samples']} and "
                           f"train_split={args['train_split']} gives {len(x_tr)} train / "
                           f"{len(x_te)} test sequences; both must be non-empty")
    if x_tr.shape[1:] != INPUT_SHAPE:
        raise DatasetError(f"mnist1d generated sequences of shape {x_tr.shape[1:]}, "
                           f"expected {INPUT_SHAPE}")
    provenance = {"split": SPLIT_NOTE, "scaling": SCALING_NOTE, "generator": args,
                  "generator_package": {"name": PACKAGE, "version": metadata.version(PACKAGE)}}
    return Raw(x_tr, y_tr, x_te, y_te, files=[], provenance=provenance)
