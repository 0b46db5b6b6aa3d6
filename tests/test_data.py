"""wdnorm.data: the registry, digits end to end, MNIST-1D from its package's generator,
tiny files in the real on-disk formats of (Fashion)MNIST (uncompressed IDX under
``root/<Class>/raw/``) and CIFAR-10 (python pickle batches under
``root/cifar-10-batches-py/``) read by torchvision's own readers, torchvision's
checksummed download path, and the safety of prepared files (content-addressed mtimes,
:func:`verify_prepared`)."""

from __future__ import annotations

import gzip
import hashlib
import json
import os
import pickle
import random
import shutil
import tarfile
from pathlib import Path

import numpy as np
import pytest
import torch
import torchvision.datasets.utils as tv_utils
from torchvision.datasets import CIFAR10, MNIST

from wdnorm import config, data, fileio
from wdnorm.layout import Layout

TENSORS = ("x_train", "y_train", "x_test", "y_test", "x_val", "y_val")


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
    train_list = [[f"data_batch_{i}", _md5(folder / f"data_batch_{i}")] for i in range(1, 6)]
    monkeypatch.setattr(CIFAR10, "train_list", train_list)
    monkeypatch.setattr(CIFAR10, "test_list", [["test_batch", _md5(folder / "test_batch")]])
    monkeypatch.setattr(CIFAR10, "meta", {"filename": "batches.meta", "key": "label_names",
                                          "md5": _md5(folder / "batches.meta")})


def saved(prepared, folder: Path, name: str) -> tuple[Path, Path]:
    layout = Layout(results=folder / "results", data=folder / "data")
    pt, meta = layout.prepared(name), layout.prepared_meta(name)
    data.save_prepared(prepared, pt, meta)
    return pt, meta


@pytest.fixture(scope="module")
def digits_full():
    return data.prepare("digits", None)


@pytest.fixture(scope="module")
def mnist1d_default():
    return data.prepare("mnist1d", None)


# --------------------------------------------------------------------------- registry

def test_check_dataset():
    for name in data.DATASETS:
        assert data.check_dataset(name) == name
    with pytest.raises(ValueError) as err:
        data.check_dataset("imagenet")
    msg = str(err.value)
    assert "imagenet" in msg and all(name in msg for name in data.DATASETS)
    with pytest.raises(ValueError, match="cifar10"):
        data.prepare("svhn", None)


def test_registry_records_and_the_config():
    assert set(data.DATASETS) == {"digits", "mnist1d", "mnist5k", "mnist", "fashion_mnist",
                                  "cifar10"}
    offline = {name for name, d in data.REGISTRY.items() if d.offline}
    assert offline == {"digits", "mnist1d", "mnist5k"}
    assert {d.source for d in data.REGISTRY.values()} == {"offline", "download"}
    assert data.get("mnist1d").options == ("num_samples", "train_split", "corr_noise_scale",
                                            "iid_noise_scale", "seed")
    assert data.INPUT_SHAPE["cifar10"] == (3, 32, 32) and data.N_CLASSES["mnist1d"] == 10
    # the config names datasets of the registry, checked against it (no list restated)
    from wdnorm import checks
    bad = config.with_defaults({"datasets": ["imagenet"], "weight_decays": [0.0],
                                "optimisers": {"o": {"algorithm": "sgd", "lr": 0.1}}})
    with pytest.raises(ValueError, match="datasets: unknown dataset 'imagenet'; valid"):
        checks.check_config(bad)
    # the schema's mnist1d defaults are the package's generator defaults
    from mnist1d.data import get_dataset_args
    package = get_dataset_args(as_dict=True)
    block = config.defaults("mnist1d")
    assert set(block) == set(data.get("mnist1d").options)
    assert block == {key: package[key] for key in block}


def test_unknown_options_refused():
    with pytest.raises(ValueError, match="num_samples"):
        data.prepare("mnist1d", None, options={"n_samples": 100})
    with pytest.raises(ValueError, match="digits.*valid options: none"):
        data.prepare("digits", None, options={"seed": 1})
    with pytest.raises(ValueError, match="train_split"):
        data.prepare("mnist1d", None, options={"train_split": 1.5})


# --------------------------------------------------------------------------- digits

def test_digits_full(digits_full):
    p = digits_full
    assert p.x_train.shape == (1347, 64) and p.x_test.shape == (450, 64)
    assert p.x_train.dtype == p.x_test.dtype == torch.float32
    assert p.y_train.dtype == p.y_test.dtype == torch.int64
    assert set(p.y_train.tolist()) == set(range(10)) == set(p.y_test.tolist())
    m = p.meta
    assert (m["name"], m["d_in"], m["n_classes"], m["source"]) == ("digits", 64, 10, "offline")
    assert (m["n_train"], m["n_test"], m["n_train_full"]) == (1347, 450, 1347)
    assert m["input_shape"] == [1, 8, 8] and "standardis" in m["standardisation"]
    assert "stratified" in m["split"]
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
    # raw sha256 of the CSV sklearn ships; sha256 of each prepared tensor's bytes
    csv = data.digits_csv_path()
    assert m["raw_sha256"] == {"sklearn/datasets/data/digits.csv.gz": fileio.sha256_file(csv)}
    assert m["tensors_sha256"]["y_test"] == hashlib.sha256(p.y_test.numpy().tobytes()).hexdigest()


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
    for key in TENSORS:
        assert getattr(a, key).numpy().tobytes() == getattr(b, key).numpy().tobytes()
    assert a.meta == b.meta
    assert not torch.equal(a.y_train, c.y_train) or not torch.equal(a.x_train, c.x_train)
    # standardised with the subset's own statistics
    assert torch.allclose(a.x_train.double().mean(0), torch.zeros(64, dtype=torch.float64),
                          atol=1e-6)


def test_validation_split_comes_from_the_training_split():
    """The validation rows are training-split rows the training subset does not hold; the
    subset itself does not move when a validation split is added; test stays complete."""
    plain = data.prepare("digits", None, n_train=200, subset_seed=3)
    split = data.prepare("digits", None, n_train=200, subset_seed=3, n_validation=300)
    assert torch.equal(plain.y_train, split.y_train)
    assert split.x_val.shape == (300, 64) and split.meta["n_validation"] == 300
    assert plain.x_val.shape == (0, 64) and plain.meta["n_validation"] == 0
    assert torch.equal(plain.x_test, split.x_test)
    train_rows = {tuple(r) for r in split.x_train.numpy().round(4).tolist()}
    assert not train_rows & {tuple(r) for r in split.x_val.numpy().round(4).tolist()}
    rest = data.prepare("digits", None, subset_seed=3, n_validation=300)  # n_train unset
    assert len(rest.x_train) == 1347 - 300 and len(rest.x_val) == 300
    with pytest.raises(ValueError, match="n_validation=1200"):
        data.prepare("digits", None, n_train=200, n_validation=1200)


def test_n_train_too_large():
    with pytest.raises(ValueError) as err:
        data.prepare("digits", None, n_train=5000)
    assert "5000" in str(err.value) and "1347" in str(err.value)
    with pytest.raises(ValueError):
        data.prepare("digits", None, n_train=0)


def test_save_load_roundtrip(tmp_path):
    p = data.prepare("digits", None, n_train=100, subset_seed=1)
    pt, meta_path = saved(p, tmp_path, "digits")
    assert not list(pt.parent.glob("*.tmp")) and not list(pt.parent.glob(".digits*"))
    q = data.load_prepared(pt)
    for key in TENSORS:
        assert torch.equal(getattr(p, key), getattr(q, key))
        assert getattr(p, key).dtype == getattr(q, key).dtype
    assert q.meta == p.meta
    # weights_only=True loads it directly, too
    raw = torch.load(pt, weights_only=True)
    assert set(raw) == {*TENSORS, "meta"}
    meta = json.loads(meta_path.read_text())
    assert meta["sha256"] == fileio.sha256_file(pt)
    assert {k: v for k, v in meta.items() if k not in ("sha256", "file")} == p.meta
    # saving the same dataset again gives the same bytes
    pt2 = tmp_path / "again.pt"
    data.save_prepared(data.prepare("digits", None, n_train=100, subset_seed=1), pt2,
                       tmp_path / "again.json")
    assert fileio.sha256_file(pt2) == meta["sha256"]


# --------------------------------------------------------------------------- MNIST-1D

def test_mnist1d_default(mnist1d_default):
    p = mnist1d_default
    assert p.x_train.shape == (4000, 40) and p.x_test.shape == (1000, 40)
    assert p.x_train.dtype == torch.float32 and p.y_train.dtype == torch.int64
    counts = torch.bincount(p.y_train, minlength=10) + torch.bincount(p.y_test, minlength=10)
    assert counts.tolist() == [500] * 10  # num_samples // 10 per class before the split
    assert torch.bincount(p.y_test, minlength=10).min() > 50  # shuffled, not sorted
    m = p.meta
    assert (m["name"], m["source"], m["d_in"], m["n_classes"]) == ("mnist1d", "offline", 40, 10)
    assert m["raw_sha256"] == {}
    from mnist1d.data import get_dataset_args
    package = get_dataset_args(as_dict=True)
    assert "url" in package and "url" not in m["generator"]
    assert m["generator"] == {k: v for k, v in package.items() if k != "url"}
    assert m["generator_package"] == {"name": "mnist1d", "version": "0.0.2.post1"}
    assert torch.allclose(p.x_train.double().mean(0), torch.zeros(40, dtype=torch.float64),
                          atol=1e-6)


def test_mnist1d_deterministic_and_global_rng_untouched(mnist1d_default, tmp_path):
    random.seed(123)
    np.random.seed(123)
    expected = (random.random(), np.random.rand())
    random.seed(123)
    np.random.seed(123)
    options = {**config.defaults("mnist1d"), "num_samples": 1000}  # small: fast
    first = data.prepare("mnist1d", None, options=options)
    # make_dataset reseeded the global generators; their states were given back
    assert (random.random(), np.random.rand()) == expected
    again = data.prepare("mnist1d", None, options=options)
    a = saved(first, tmp_path / "a", "mnist1d")[0]
    b = saved(again, tmp_path / "b", "mnist1d")[0]
    assert fileio.sha256_file(a) == fileio.sha256_file(b)
    assert again.meta["tensors_sha256"] == first.meta["tensors_sha256"]
    # options fill only the keys they name; the rest are the package defaults
    assert first.meta["generator"] == {**mnist1d_default.meta["generator"], "num_samples": 1000}


def test_mnist1d_options_change_the_data():
    small = {"num_samples": 300}
    base = data.prepare("mnist1d", None, options=small)
    noisy = data.prepare("mnist1d", None, options={**small, "iid_noise_scale": 0.5})
    reseeded = data.prepare("mnist1d", None, options={**small, "seed": 7})
    assert base.x_train.shape == (240, 40) and base.x_test.shape == (60, 40)
    assert noisy.meta["generator"]["iid_noise_scale"] == 0.5
    # same seed: same labels and order, different sequences
    assert torch.equal(base.y_train, noisy.y_train)
    assert (base.x_train - noisy.x_train).abs().max() > 0.1
    assert base.meta["tensors_sha256"]["x_train"] != noisy.meta["tensors_sha256"]["x_train"]
    assert not torch.equal(base.y_train, reseeded.y_train)


# --------------------------------------------------------------------------- (Fashion)MNIST

@pytest.mark.parametrize("name,cls_name", [("mnist", "MNIST"), ("fashion_mnist", "FashionMNIST")])
def test_mnist_like_real_format(tmp_path, name, cls_name):
    raw_dir = Layout(data=tmp_path).raw_dir(name)
    folder, arrays = make_mnist(raw_dir, cls_name)
    raw = data.load_raw(name, raw_dir, download=False)
    assert raw.x_train.shape == (30, 1, 28, 28) and raw.x_test.shape == (12, 1, 28, 28)
    assert np.array_equal(raw.x_train[:, 0], arrays["train"][0])
    assert np.array_equal(raw.y_test, arrays["t10k"][1].astype(np.int64))
    assert [f.name for f in raw.files] == ["train-images-idx3-ubyte", "train-labels-idx1-ubyte",
                                           "t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"]
    p = data.prepare(name, raw_dir, n_train=20, subset_seed=0)
    assert p.x_train.shape == (20, 784) and p.meta["d_in"] == 784
    assert p.meta["n_train_full"] == 30 and p.meta["n_test"] == 12
    assert set(p.meta["raw_sha256"]) == {f"{cls_name}/raw/{f.name}" for f in raw.files}
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
    raw = data.load_raw("cifar10", tmp_path, download=False)
    assert raw.x_train.shape == (30, 3, 32, 32) and raw.x_test.shape == (8, 3, 32, 32)
    assert raw.x_train.dtype == np.uint8
    assert np.array_equal(raw.x_train[:6], batches["data_batch_1"][0])  # channel-first kept
    assert np.array_equal(raw.x_test, batches["test_batch"][0])
    assert raw.y_train.tolist() == sum((batches[f"data_batch_{i}"][1] for i in range(1, 6)), [])
    p = data.prepare("cifar10", tmp_path, n_train=None)
    assert p.x_train.shape == (30, 3072) and p.meta["d_in"] == 3072
    assert p.meta["input_shape"] == [3, 32, 32]
    assert set(p.meta["raw_sha256"]) == {f"cifar-10-batches-py/{f.name}" for f in raw.files}
    assert len(raw.files) == 7


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


# --------------------------------------------------------------------------- downloads

class FakeServer:
    """Stands in for the internet under torchvision's own download path
    (download_and_extract_archive -> download_url -> check_integrity -> extract).
    ``files``: URL basename -> local file served for it; ``stand_in``: md5 torchvision
    declares -> md5 of the small file served in its place. The patched check_integrity
    passes a file only if it is byte-identical to the stand-in of the md5 it is asked
    about, so a wrong md5 or a corrupted download still fails."""

    def __init__(self, monkeypatch, files: dict[str, Path], stand_in: dict[str, str]):
        self.files, self.stand_in = files, stand_in
        self.urls: list[str] = []
        self.md5s: list[str | None] = []
        monkeypatch.setattr(tv_utils, "_urlretrieve", self.urlretrieve)
        monkeypatch.setattr(tv_utils, "_get_redirect_url", lambda url, max_hops=3: url)
        monkeypatch.setattr(tv_utils, "_is_remote_location_available", lambda: False)
        monkeypatch.setattr(tv_utils, "check_integrity", self.check_integrity)

    def urlretrieve(self, url, filename, chunk_size=None):
        self.urls.append(url)
        shutil.copyfile(self.files[os.path.basename(url)], filename)

    def check_integrity(self, fpath, md5=None):
        self.md5s.append(md5)
        if not os.path.isfile(fpath):
            return False
        return md5 is None or tv_utils.calculate_md5(fpath) == self.stand_in.get(md5)


def serve_mnist(tmp_path: Path, monkeypatch) -> tuple[FakeServer, dict]:
    folder, arrays = make_mnist(tmp_path / "source", "MNIST")
    files, stand_in = {}, {}
    for gz_name, declared_md5 in MNIST.resources:
        gz = tmp_path / "served" / gz_name
        gz.parent.mkdir(parents=True, exist_ok=True)
        gz.write_bytes(gzip.compress((folder / gz_name[:-3]).read_bytes(), mtime=0))
        files[gz_name], stand_in[declared_md5] = gz, _md5(gz)
    return FakeServer(monkeypatch, files, stand_in), arrays


def test_mnist_download_checks_torchvision_md5s(tmp_path, monkeypatch):
    server, arrays = serve_mnist(tmp_path, monkeypatch)
    raw_dir = tmp_path / "raw"
    p = data.prepare("mnist", raw_dir, download=True)
    assert p.x_train.shape == (30, 784) and p.x_test.shape == (12, 784)
    assert p.y_test.tolist() == arrays["t10k"][1].tolist()
    declared = [md5 for _, md5 in MNIST.resources]
    assert set(server.md5s) == set(declared)  # every download checked against its pin
    assert server.urls == [MNIST.mirrors[0] + name for name, _ in MNIST.resources]
    # present and sound: no second download
    data.prepare("mnist", raw_dir, download=True)
    assert len(server.urls) == 4


def test_mnist_download_corrupt_is_refused(tmp_path, monkeypatch):
    server, _ = serve_mnist(tmp_path, monkeypatch)
    served = server.files["t10k-labels-idx1-ubyte.gz"]
    served.write_bytes(served.read_bytes()[:-3])  # truncated in transit
    with pytest.raises(data.DatasetError) as err:
        data.prepare("mnist", tmp_path / "raw", download=True)
    assert "downloading 'mnist'" in str(err.value) and "corrupted" in str(err.value)
    assert not (tmp_path / "raw" / "MNIST" / "raw" / "t10k-labels-idx1-ubyte").exists()


def test_cifar10_download_checks_torchvision_md5(tmp_path, monkeypatch):
    folder, batches = make_cifar(tmp_path / "source", monkeypatch)  # pins the batch md5s
    archive = tmp_path / "served" / CIFAR10.filename
    archive.parent.mkdir()
    with tarfile.open(archive, "w:gz") as tar:
        tar.add(folder, arcname=CIFAR10.base_folder)
    server = FakeServer(monkeypatch, {CIFAR10.filename: archive},
                        {CIFAR10.tgz_md5: _md5(archive)})
    assert CIFAR10.tgz_md5 == "c58f30108f718f92721af3b95e74349a"  # torchvision's own pin
    p = data.prepare("cifar10", tmp_path / "raw", download=True)
    assert server.urls == [CIFAR10.url]
    assert CIFAR10.tgz_md5 in server.md5s and set(server.md5s) == {CIFAR10.tgz_md5}
    assert p.x_test.shape == (8, 3072)
    assert p.y_test.tolist() == batches["test_batch"][1]


# --------------------------------------------------------------------------- prepared files

def test_unchanged_content_keeps_mtime(tmp_path):
    p = data.prepare("digits", None, n_train=100)
    pt, meta = saved(p, tmp_path, "digits")
    stamp_file = data.stamp_path(pt)
    assert stamp_file == pt.parent / ".stamps" / "digits.json"
    # pretend the previous content was written an hour ago
    old = {pt: pt.stat().st_mtime_ns - 3600 * 10**9, meta: meta.stat().st_mtime_ns - 3599 * 10**9}
    for path, ns in old.items():
        os.utime(path, ns=(ns, ns))
    stamp = fileio.read_json(stamp_file)
    stamp.update(pt_mtime_ns=old[pt], meta_mtime_ns=old[meta])
    fileio.write_json(stamp_file, stamp)
    # snakemake deletes the outputs, then the job writes the same bytes again
    pt.unlink()
    meta.unlink()
    assert data.save_prepared(data.prepare("digits", None, n_train=100), pt, meta) is True
    assert {path: path.stat().st_mtime_ns for path in old} == old
    # different content: a fresh mtime and a new stamp
    assert data.save_prepared(data.prepare("digits", None, n_train=101), pt, meta) is False
    assert pt.stat().st_mtime_ns > old[pt] + 3000 * 10**9
    assert fileio.read_json(stamp_file)["pt_sha256"] == fileio.sha256_file(pt)


def test_restore_stamped_mtimes_after_touch(tmp_path):
    pt, meta = saved(data.prepare("digits", None, n_train=50), tmp_path, "digits")
    stamped = {pt: pt.stat().st_mtime_ns, meta: meta.stat().st_mtime_ns}
    later = stamped[pt] + 60 * 10**9  # snakemake touches a job's outputs when it ends
    for path in stamped:
        os.utime(path, ns=(later, later))
    assert data.restore_stamped_mtimes(pt, meta) is True
    assert {path: path.stat().st_mtime_ns for path in stamped} == stamped
    assert data.restore_stamped_mtimes(pt, meta) is False  # nothing left to do
    with open(pt, "ab") as handle:  # other bytes: the mtime is not the stamp's business
        handle.write(b"x")
    os.utime(pt, ns=(later, later))
    assert data.restore_stamped_mtimes(pt, meta) is False
    assert pt.stat().st_mtime_ns == later
    assert data.restore_stamped_mtimes(tmp_path / "none.pt", tmp_path / "none.json") is False


def test_verify_prepared(tmp_path, digits_full):
    pt, meta = saved(digits_full, tmp_path, "digits")
    assert data.verify_prepared(pt, meta) == []
    assert data.verify_prepared(tmp_path / "nothing.pt", tmp_path / "nothing.json") == []
    rebuild = f"rm -f {pt} {meta} && snakemake --cores all"
    good = pt.read_bytes()

    pt.write_bytes(good[: len(good) // 2])  # truncated
    problems = data.verify_prepared(pt, meta)
    assert len(problems) == 1 and str(pt) in problems[0] and rebuild in problems[0]
    assert "sha256" in problems[0] and "truncated" in problems[0]

    # swapped: another dataset's (sound) file in its place
    other_pt, other_meta = saved(data.prepare("digits", None, n_train=10), tmp_path / "o",
                                 "digits")
    shutil.copyfile(other_pt, pt)
    problems = data.verify_prepared(pt, meta)
    assert len(problems) == 1 and str(meta) in problems[0] and rebuild in problems[0]

    # both files swapped consistently, but for another dataset
    m1 = saved(data.prepare("mnist1d", None, options={"num_samples": 100}), tmp_path / "m",
               "mnist1d")
    shutil.copyfile(m1[0], pt)
    shutil.copyfile(m1[1], meta)
    problems = data.verify_prepared(pt, meta)
    assert len(problems) == 1 and "holds dataset 'mnist1d', not 'digits'" in problems[0]
    assert str(pt) in problems[0] and rebuild in problems[0]
    assert data.verify_prepared(*m1) == []


def test_verify_prepared_meta_and_torch_problems(tmp_path, digits_full):
    pt, meta = saved(digits_full, tmp_path, "digits")
    record = fileio.read_json(meta)
    meta.unlink()
    problems = data.verify_prepared(pt, meta)
    assert len(problems) == 1 and f"{meta}: missing" in problems[0] and "rm -f" in problems[0]
    fileio.write_json(meta, {k: v for k, v in record.items() if k != "sha256"})
    assert "records no sha256" in data.verify_prepared(pt, meta)[0]
    # bytes as recorded but not a torch file (e.g. written by something else)
    pt.write_bytes(b"not a zip archive")
    fileio.write_json(meta, {**record, "sha256": fileio.sha256_file(pt)})
    problems = data.verify_prepared(pt, meta)
    assert len(problems) == 1 and "unreadable torch file" in problems[0] and str(pt) in problems[0]
    # a meta that disagrees with the tensors it describes
    pt2, meta2 = saved(digits_full, tmp_path / "b", "digits")
    fileio.write_json(meta2, {**fileio.read_json(meta2), "n_test": 449})
    assert "x_test has shape (450, 64), its meta says (449, 64)" in \
        data.verify_prepared(pt2, meta2)[0]


def test_a_protocol_data_variant_holds_its_source_dataset(tmp_path, digits_full):
    """``digits-more.pt`` (a C9 protocol's variant of digits) holds dataset 'digits': sound
    when the caller says which dataset it must hold, foreign to a file-stem check."""
    pt, meta = saved(digits_full, tmp_path, "digits-more")
    assert data.verify_prepared(pt, meta, "digits") == []
    problems = data.verify_prepared(pt, meta, "mnist1d")
    assert len(problems) == 1 and "holds dataset 'digits', not 'mnist1d'" in problems[0]
