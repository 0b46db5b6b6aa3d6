"""wdnorm.data: digits end to end, and tiny files in the real on-disk formats of
(Fashion)MNIST (uncompressed IDX under ``root/<Class>/raw/``) and CIFAR-10 (python
pickle batches under ``root/cifar-10-batches-py/``) read by torchvision's own readers."""

from __future__ import annotations

import hashlib
import json
import pickle
from pathlib import Path

import numpy as np
import pytest
import torch
from torchvision.datasets import CIFAR10

from wdnorm import data, fileio
from wdnorm.layout import Layout


# --------------------------------------------------------------------------- helpers

def write_idx(path: Path, array: np.ndarray) -> None:
    """IDX (``SN3 Pascal Vincent``) file: magic 0,0,0x08 (uint8),ndim; big-endian dims."""
    array = np.ascontiguousarray(array, dtype=np.uint8)
    header = bytes([0, 0, 0x08, array.ndim]) + b"".join(
        int(d).to_bytes(4, "big") for d in array.shape)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(header + array.tobytes())


def make_mnist(root: Path, cls_name: str, n_train: int = 30, n_test: int = 12, seed: int = 0):
    rng = np.random.default_rng(seed)
    folder = root / cls_name / "raw"
    arrays = {}
    for prefix, n in (("train", n_train), ("t10k", n_test)):
        images = rng.integers(0, 256, size=(n, 28, 28), dtype=np.uint8)
        labels = (np.arange(n) % 10).astype(np.uint8)
        write_idx(folder / f"{prefix}-images-idx3-ubyte", images)
        write_idx(folder / f"{prefix}-labels-idx1-ubyte", labels)
        arrays[prefix] = (images, labels)
    return folder, arrays


def _md5(path: Path) -> str:
    return hashlib.md5(path.read_bytes()).hexdigest()


def make_cifar(root: Path, monkeypatch, per_batch: int = 6, n_test: int = 8, seed: int = 0):
    """Tiny CIFAR-10 python batches (dicts with 'data' [n, 3072] uint8 in CHW order and
    'labels', pickled as the originals). torchvision pins the md5 of each real batch
    file, so the test points CIFAR10.train_list/test_list/meta at the tiny files' md5s
    (monkeypatch: restored after the test); everything else is torchvision's reader."""
    rng = np.random.default_rng(seed)
    folder = root / "cifar-10-batches-py"
    folder.mkdir(parents=True)
    batches = {}
    names = [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]
    for i, name in enumerate(names):
        n = n_test if name == "test_batch" else per_batch
        images = rng.integers(0, 256, size=(n, 3, 32, 32), dtype=np.uint8)
        labels = [int(v) for v in (np.arange(n) + i) % 10]
        entry = {"batch_label": name, "data": images.reshape(n, -1), "labels": labels,
                 "filenames": [f"img{j}.png" for j in range(n)]}
        with open(folder / name, "wb") as handle:
            pickle.dump(entry, handle, protocol=2)
        batches[name] = (images, labels)
    with open(folder / "batches.meta", "wb") as handle:
        pickle.dump({"label_names": ["airplane", "automobile", "bird", "cat", "deer", "dog",
                                     "frog", "horse", "ship", "truck"],
                     "num_cases_per_batch": per_batch, "num_vis": 3072}, handle, protocol=2)
    pin_cifar_md5s(folder, monkeypatch)
    return folder, batches


def pin_cifar_md5s(folder: Path, monkeypatch) -> None:
    monkeypatch.setattr(CIFAR10, "train_list",
                        [[f"data_batch_{i}", _md5(folder / f"data_batch_{i}")] for i in range(1, 6)])
    monkeypatch.setattr(CIFAR10, "test_list", [["test_batch", _md5(folder / "test_batch")]])
    monkeypatch.setattr(CIFAR10, "meta", {"filename": "batches.meta", "key": "label_names",
                                          "md5": _md5(folder / "batches.meta")})


@pytest.fixture(scope="module")
def digits_full():
    return data.prepare("digits", None)


# --------------------------------------------------------------------------- names

def test_check_dataset():
    for name in data.DATASETS:
        assert data.check_dataset(name) == name
    with pytest.raises(ValueError) as err:
        data.check_dataset("imagenet")
    msg = str(err.value)
    assert "imagenet" in msg and all(name in msg for name in data.DATASETS)
    with pytest.raises(ValueError, match="cifar10"):
        data.prepare("svhn", None)


# --------------------------------------------------------------------------- digits

def test_digits_full(digits_full):
    p = digits_full
    assert p.x_train.shape == (1347, 64) and p.x_test.shape == (450, 64)
    assert p.x_train.dtype == p.x_test.dtype == torch.float32
    assert p.y_train.dtype == p.y_test.dtype == torch.int64
    assert set(p.y_train.tolist()) == set(range(10)) == set(p.y_test.tolist())
    m = p.meta
    assert (m["name"], m["d_in"], m["n_classes"]) == ("digits", 64, 10)
    assert (m["n_train"], m["n_test"], m["n_train_full"]) == (1347, 450, 1347)
    assert m["input_shape"] == [1, 8, 8] and "standardis" in m["standardisation"]
    # train statistics: mean 0 / std 1 for non-constant features, constant ones stay 0
    x = p.x_train.double()
    std = x.std(0, unbiased=False)
    varying = std > 0
    assert 50 < int(varying.sum()) < 64  # digits has a few always-blank pixels
    assert torch.allclose(x.mean(0), torch.zeros(64, dtype=torch.float64), atol=1e-6)
    assert torch.allclose(std[varying], torch.ones(int(varying.sum()), dtype=torch.float64),
                          atol=1e-5)
    assert torch.all(x[:, ~varying] == 0)
    assert torch.isfinite(p.x_test).all()
    # raw sha256 of the CSV sklearn ships
    csv = data.digits_csv_path()
    assert m["raw_sha256"] == {"sklearn/datasets/data/digits.csv.gz": fileio.sha256_file(csv)}


def test_digits_split_stratified(digits_full):
    counts_tr = torch.bincount(digits_full.y_train, minlength=10).double()
    counts_te = torch.bincount(digits_full.y_test, minlength=10).double()
    frac = counts_te / (counts_tr + counts_te)
    assert torch.all((frac - 0.25).abs() < 0.02)


def test_digits_subset_deterministic():
    a = data.prepare("digits", None, n_train=200, subset_seed=3)
    b = data.prepare("digits", None, n_train=200, subset_seed=3)
    c = data.prepare("digits", None, n_train=200, subset_seed=4)
    assert a.x_train.shape == (200, 64) and a.y_train.shape == (200,)
    assert a.x_test.shape == (450, 64)  # the test split is always complete
    assert (a.meta["n_train"], a.meta["n_train_full"], a.meta["subset_seed"]) == (200, 1347, 3)
    for key in ("x_train", "y_train", "x_test", "y_test"):
        assert getattr(a, key).numpy().tobytes() == getattr(b, key).numpy().tobytes()
    assert a.meta == b.meta
    assert not torch.equal(a.y_train, c.y_train) or not torch.equal(a.x_train, c.x_train)
    # standardised with the subset's own statistics
    assert torch.allclose(a.x_train.double().mean(0), torch.zeros(64, dtype=torch.float64),
                          atol=1e-6)


def test_n_train_too_large():
    with pytest.raises(ValueError) as err:
        data.prepare("digits", None, n_train=5000)
    assert "5000" in str(err.value) and "1347" in str(err.value)
    with pytest.raises(ValueError):
        data.prepare("digits", None, n_train=0)


def test_save_load_roundtrip(tmp_path):
    layout = Layout(results=tmp_path / "results", data=tmp_path / "data")
    p = data.prepare("digits", None, n_train=100, subset_seed=1)
    pt, meta_path = layout.prepared("digits"), layout.prepared_meta("digits")
    data.save_prepared(p, pt, meta_path)
    assert not list(pt.parent.glob("*.tmp"))
    q = data.load_prepared(pt)
    for key in ("x_train", "y_train", "x_test", "y_test"):
        assert torch.equal(getattr(p, key), getattr(q, key))
        assert getattr(p, key).dtype == getattr(q, key).dtype
    assert q.meta == p.meta
    # weights_only=True loads it directly, too
    raw = torch.load(pt, weights_only=True)
    assert set(raw) == {"x_train", "y_train", "x_test", "y_test", "meta"}
    meta = json.loads(meta_path.read_text())
    assert meta["sha256"] == fileio.sha256_file(pt)
    assert {k: v for k, v in meta.items() if k not in ("sha256", "file")} == p.meta
    # saving the same dataset again gives the same bytes
    pt2 = tmp_path / "again.pt"
    data.save_prepared(data.prepare("digits", None, n_train=100, subset_seed=1), pt2,
                       tmp_path / "again.json")
    assert fileio.sha256_file(pt2) == meta["sha256"]


# --------------------------------------------------------------------------- (Fashion)MNIST

@pytest.mark.parametrize("name,cls_name", [("mnist", "MNIST"), ("fashion_mnist", "FashionMNIST")])
def test_mnist_like_real_format(tmp_path, name, cls_name):
    raw = Layout(data=tmp_path).raw_dir(name)
    folder, arrays = make_mnist(raw, cls_name)
    x_tr, y_tr, x_te, y_te, files = data.load_raw(name, raw, download=False)
    assert x_tr.shape == (30, 1, 28, 28) and x_te.shape == (12, 1, 28, 28)
    assert np.array_equal(x_tr[:, 0], arrays["train"][0])
    assert np.array_equal(y_te, arrays["t10k"][1].astype(np.int64))
    assert [f.name for f in files] == ["train-images-idx3-ubyte", "train-labels-idx1-ubyte",
                                       "t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"]
    p = data.prepare(name, raw, n_train=20, subset_seed=0)
    assert p.x_train.shape == (20, 784) and p.meta["d_in"] == 784
    assert p.meta["n_train_full"] == 30 and p.meta["n_test"] == 12
    assert set(p.meta["raw_sha256"]) == {f"{cls_name}/raw/{f.name}" for f in files}
    assert p.meta["raw_sha256"][f"{cls_name}/raw/train-images-idx3-ubyte"] == \
        fileio.sha256_file(folder / "train-images-idx3-ubyte")


def test_mnist_truncated_file(tmp_path):
    folder, _ = make_mnist(tmp_path, "MNIST")
    bad = folder / "t10k-images-idx3-ubyte"
    bad.write_bytes(bad.read_bytes()[:-100])
    with pytest.raises(data.DatasetError) as err:
        data.load_raw("mnist", tmp_path, download=False)
    assert str(bad) in str(err.value)
    # truncated inside the header, too
    bad.write_bytes(bad.read_bytes()[:9])
    with pytest.raises(data.DatasetError, match="t10k-images-idx3-ubyte"):
        data.prepare("mnist", tmp_path)


def test_mnist_missing(tmp_path):
    with pytest.raises(data.DatasetError) as err:
        data.load_raw("fashion_mnist", tmp_path / "nothing", download=False)
    msg = str(err.value)
    assert str(tmp_path / "nothing" / "FashionMNIST" / "raw") in msg and "download=True" in msg


# --------------------------------------------------------------------------- CIFAR-10

def test_cifar10_real_format(tmp_path, monkeypatch):
    folder, batches = make_cifar(tmp_path, monkeypatch)
    x_tr, y_tr, x_te, y_te, files = data.load_raw("cifar10", tmp_path, download=False)
    assert x_tr.shape == (30, 3, 32, 32) and x_te.shape == (8, 3, 32, 32)
    assert x_tr.dtype == np.uint8
    assert np.array_equal(x_tr[:6], batches["data_batch_1"][0])  # channel-first order kept
    assert np.array_equal(x_te, batches["test_batch"][0])
    assert y_tr.tolist() == sum((batches[f"data_batch_{i}"][1] for i in range(1, 6)), [])
    p = data.prepare("cifar10", tmp_path, n_train=None)
    assert p.x_train.shape == (30, 3072) and p.meta["d_in"] == 3072
    assert p.meta["input_shape"] == [3, 32, 32]
    assert set(p.meta["raw_sha256"]) == {f"cifar-10-batches-py/{f.name}" for f in files}
    assert len(files) == 7


def test_cifar10_corrupt_batch(tmp_path, monkeypatch):
    folder, _ = make_cifar(tmp_path, monkeypatch)
    bad = folder / "data_batch_3"
    bad.write_bytes(bad.read_bytes()[:500])  # truncated: md5 no longer matches
    with pytest.raises(data.DatasetError) as err:
        data.load_raw("cifar10", tmp_path, download=False)
    assert str(bad) in str(err.value) and "md5" in str(err.value)
    # md5 matching but unreadable (pins re-pointed at the truncated file): the pickle
    # error from torchvision's reader is traced back to the file
    pin_cifar_md5s(folder, monkeypatch)
    with pytest.raises(data.DatasetError) as err:
        data.load_raw("cifar10", tmp_path, download=False)
    assert str(bad) in str(err.value) and "unpickled" in str(err.value)


def test_cifar10_missing(tmp_path, monkeypatch):
    folder, _ = make_cifar(tmp_path, monkeypatch)
    (folder / "test_batch").unlink()
    with pytest.raises(data.DatasetError) as err:
        data.load_raw("cifar10", tmp_path, download=False)
    assert str(folder) in str(err.value) and "test_batch" in str(err.value)
    assert "download=True" in str(err.value)
