"""Records every dataset module shares: the raw split a loader returns, the prepared
tensors, and the one error type for unusable raw or prepared files."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch


class DatasetError(ValueError):
    """Raw or prepared dataset files are missing, truncated or corrupt (the message
    names which, and how to rebuild them)."""


@dataclass
class Raw:
    """One dataset's train/test split as a loader returns it, before preparation.

    ``x_*``: arrays ``[N, *input_shape]`` (uint8 images, or floats for generated data);
    ``y_*``: int64 labels ``[N]``; ``files``: the raw files read (their sha256 goes into
    the prepared meta; empty for generated data); ``provenance``: what else a reader of
    the prepared meta needs to rebuild the split (split rule, generator arguments...).
    """

    x_train: np.ndarray
    y_train: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray
    files: list[Path] = field(default_factory=list)
    provenance: dict[str, Any] = field(default_factory=dict)


@dataclass
class Prepared:
    """Prepared tensors: float32 features ``[N, D]``, int64 labels ``[N]``, plus meta.
    The validation split (``x_val``, ``y_val``; 0 rows when none is drawn) comes out of
    the training split; it selects hyper-parameters, so the test split stays unseen."""

    x_train: torch.Tensor
    y_train: torch.Tensor
    x_test: torch.Tensor
    y_test: torch.Tensor
    x_val: torch.Tensor | None = None
    y_val: torch.Tensor | None = None
    meta: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self):
        if self.x_val is None:  # no validation split: 0 rows of the training shape
            self.x_val = self.x_train[:0].clone()
            self.y_val = self.y_train[:0].clone()


TENSOR_KEYS = ("x_train", "y_train", "x_test", "y_test", "x_val", "y_val")
