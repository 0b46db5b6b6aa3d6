"""Provenance: every field, code version with and without git, a stable config hash."""

import json
import shutil
import subprocess

import pytest
import torch

from wdnorm import __version__, provenance

torch.set_num_threads(1)

HAS_GIT = shutil.which("git") is not None


def _collect(**overrides):
    kwargs = dict(config_values={"model": {"width": 8}, "dataset": "digits"},
                  dataset_sha256="ab" * 32, device="cpu", threads=1, seed=3,
                  wall_seconds=1.5)
    kwargs.update(overrides)
    return provenance.collect(**kwargs)


def test_collect_has_every_field():
    prov = _collect()
    assert set(prov) == set(provenance.FIELDS)
    assert prov["config_hash"] == provenance.config_hash(prov["config_values"])
    assert prov["dataset_sha256"] == "ab" * 32
    assert (prov["seed"], prov["threads"], prov["wall_seconds"]) == (3, 1, 1.5)
    assert prov["device"] == "cpu" and prov["device_name"]
    assert prov["torch_threads"] == torch.get_num_threads()
    code = prov["code"]
    assert {"package_version", "git_commit", "git_dirty", "training_code_sha256"} <= set(code)
    assert code["package_version"] == __version__
    assert code["training_code_sha256"] == provenance.source_hash(provenance.TRAINING_MODULES)
    packages = prov["packages"]
    for name in ("python", "torch", "numpy", "snakemake"):
        assert name in packages
    assert packages["torch"] == torch.__version__.split("+")[0]
    json.dumps(prov)  # plain JSON


def test_collect_takes_a_precomputed_code_version():
    code = {"package_version": "x", "git_commit": None, "git_dirty": None}
    assert _collect(code=code)["code"] is code


def test_code_version_outside_a_git_repo_falls_back_to_the_package_version(tmp_path):
    info = provenance.code_version(tmp_path)
    assert info["package_version"] == __version__
    assert info["git_commit"] is None and info["git_dirty"] is None
    assert info["git_error"]
    assert info["training_code_sha256"]


def test_code_version_without_a_git_binary(tmp_path, monkeypatch):
    monkeypatch.setenv("PATH", str(tmp_path))  # no git on PATH
    info = provenance.code_version(provenance.default_repo())
    assert info["git_commit"] is None and info["git_error"] == "git not found"
    assert info["package_version"] == __version__


def _git(repo, *args):
    subprocess.run(["git", "-C", str(repo), "-c", "user.name=t", "-c", "user.email=t@t",
                    "-c", "commit.gpgsign=false", *args], check=True, capture_output=True)


@pytest.mark.skipif(not HAS_GIT, reason="git is not installed")
def test_code_version_commit_and_dirty_flag(tmp_path):
    repo = tmp_path / "repo"
    (repo / "src").mkdir(parents=True)
    (repo / "src" / "a.py").write_text("x = 1\n")
    (repo / ".gitignore").write_text("results/\n")
    _git(repo, "init", "-q")
    _git(repo, "add", ".")
    _git(repo, "commit", "-q", "-m", "init")
    head = subprocess.run(["git", "-C", str(repo), "rev-parse", "HEAD"], check=True,
                          capture_output=True, text=True).stdout.strip()

    clean = provenance.code_version(repo)
    assert clean["git_commit"] == head and clean["git_dirty"] is False

    (repo / "results").mkdir()
    (repo / "results" / "x.json").write_text("{}")   # ignored output
    (repo / "notes.txt").write_text("scratch")        # untracked, outside the code paths
    assert provenance.code_version(repo)["git_dirty"] is False

    (repo / "src" / "new_module.py").write_text("y = 2\n")  # untracked code
    info = provenance.code_version(repo)
    assert info["git_dirty"] is True and "src/new_module.py" in info["git_dirty_paths"]
    (repo / "src" / "new_module.py").unlink()

    (repo / "src" / "a.py").write_text("x = 2\n")           # modified tracked file
    assert provenance.code_version(repo)["git_dirty"] is True

    # a directory inside the checkout is not the checkout: no commit claimed for it
    inner = provenance.code_version(repo / "src")
    assert inner["git_commit"] is None and "not the root" in inner["git_error"]


def test_config_hash_is_stable_and_order_independent():
    a = {"model": {"width": 64, "depth": 3}, "training": {"epochs": 2}, "n_train": None}
    b = {"n_train": None, "training": {"epochs": 2}, "model": {"depth": 3, "width": 64}}
    assert provenance.config_hash(a) == provenance.config_hash(b)
    # a fixed value: the canonical JSON must never change silently (it names results)
    assert provenance.config_hash({"b": [1, 2], "a": 1}) == \
        "8baa73198470c7bb4c3ce142a8fd651affc0310d878bb9bd159e37a573fb4874"
    assert provenance.config_hash(a) != provenance.config_hash({**a, "n_train": 100})
    assert provenance.config_hash({"x": [1, 2]}) != provenance.config_hash({"x": [2, 1]})


def test_settings_hash_ignores_what_names_the_run():
    base = {"model": {"width": 8}, "training": {"epochs": 2}}
    one = {**base, "dataset": "digits", "optimiser": "sgdm", "kind": "runs",
           "member": {"lr": 0.1, "weight_decay": 0.0, "seed": 0}, "slab": {"arch": "ln"}}
    two = {**base, "dataset": "digits", "optimiser": "sgdm", "kind": "mimic",
           "member": {"lr": 0.1, "weight_decay": 0.0, "seed": 1}, "slab": {"arch": "bn"}}
    assert provenance.settings_hash(one) == provenance.settings_hash(two)
    assert provenance.settings_hash(one) != provenance.settings_hash(
        {**one, "training": {"epochs": 3}})


def test_source_hash_follows_the_source():
    assert provenance.source_hash(["grid"]) == provenance.source_hash(["grid"])
    assert provenance.source_hash(["grid"]) != provenance.source_hash(["layout"])
    assert provenance.source_hash(["grid", "layout"]) == provenance.source_hash(["layout", "grid"])
