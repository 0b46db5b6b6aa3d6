"""Datasets: read or generate the raw split, make the prepared tensors, save, load and
verify them.

Five datasets (:data:`DATASETS`, one :class:`Dataset` record each in
:data:`REGISTRY`), every one a 10-class classification problem that the MLPs of
:mod:`wdnorm.models` see as flat feature vectors:

==============  ======================================  ==========  =============
name            raw source                              input       train / test
==============  ======================================  ==========  =============
digits          ``sklearn.datasets.load_digits``        1 x 8 x 8   1347 / 450
mnist1d         ``mnist1d.data.make_dataset`` (offline) 40          4000 / 1000
mnist           ``torchvision.datasets.MNIST``          1 x 28 x 28 60000 / 10000
fashion_mnist   ``torchvision.datasets.FashionMNIST``   1 x 28 x 28 60000 / 10000
cifar10         ``torchvision.datasets.CIFAR10``        3 x 32 x 32 50000 / 10000
==============  ======================================  ==========  =============

Modules: :mod:`.registry` (the records), one module per source (:mod:`.digits`,
:mod:`.mnist1d`, :mod:`.torchvision_sets`), :mod:`.prepare` (subset, standardisation,
provenance meta), :mod:`.store` (atomic save/load, content-addressed mtimes,
:func:`verify_prepared`). Adding a dataset = one module with a loader + one registry
entry.
"""

from .base import DatasetError, Prepared, Raw
from .digits import csv_path as digits_csv_path
from .prepare import (STANDARDISATION_NOTE, load_raw, prepare, raw_sha256, standardise,
                      subset_indices, tensors_sha256)
from .registry import DATASETS, REGISTRY, Dataset, check_dataset, get
from .store import (load_prepared, restore_stamped_mtimes, save_prepared, stamp_path,
                    verify_prepared)

N_CLASSES: dict[str, int] = {name: d.n_classes for name, d in REGISTRY.items()}
INPUT_SHAPE: dict[str, tuple[int, ...]] = {name: d.input_shape for name, d in REGISTRY.items()}

__all__ = [
    "DATASETS", "INPUT_SHAPE", "N_CLASSES", "REGISTRY", "STANDARDISATION_NOTE", "Dataset",
    "DatasetError", "Prepared", "Raw", "check_dataset", "digits_csv_path", "get",
    "load_prepared", "load_raw", "prepare", "raw_sha256", "restore_stamped_mtimes",
    "save_prepared", "stamp_path", "standardise", "subset_indices", "tensors_sha256",
    "verify_prepared",
]
