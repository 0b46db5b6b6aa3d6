"""Provenance: every field, code version with and without git, a stable config hash."""

import json
import shutil
import subprocess

import pytest
import torch

from wdnorm import __version__, dependencies, provenance
from wdnorm import config as config_schema

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
    assert code["training_code_sha256"] == dependencies.code_hash([provenance.TRAINING_ENTRY])
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


SETTINGS = {"model": {"width": 8}, "training": {"epochs": 2},
            "optimiser": {"name": "sgdm", "algorithm": "sgd", "lr": 0.1, "momentum": 0.9}}


def test_settings_hash_ignores_what_names_the_run():
    one = provenance.run_values(SETTINGS, dataset="digits", slab={"arch": "ln"},
                                member={"lr": 0.1, "weight_decay": 0.0, "seed": 0}, kind="grid")
    two = provenance.run_values(SETTINGS, dataset="mnist", slab={"arch": "bn"},
                                member={"lr": 0.1, "weight_decay": 0.01, "seed": 1},
                                kind="exact")
    assert provenance.settings_hash(one) == provenance.settings_hash(two)
    assert provenance.settings_hash(one) != provenance.settings_hash(
        {**one, "training": {"epochs": 3}})


@pytest.mark.parametrize("key, value", [("momentum", 0.5), ("algorithm", "adamw"),
                                        ("name", "other"), ("lr", 0.2)])
def test_settings_hash_counts_the_optimiser(key, value):
    values = provenance.run_values(SETTINGS, dataset="digits", slab={}, member={}, kind="grid")
    changed = {**values, "optimiser": {**values["optimiser"], key: value}}
    assert provenance.settings_hash(values) != provenance.settings_hash(changed)


def test_training_values_name_the_slab_settings():
    """Per slab: its data variant, model, decay scope, slab-level training (the member
    records its own schedule) and its optimiser, named."""
    config = config_schema.with_defaults({
        "datasets": ["digits"], "model": {"width": 8}, "training": {"epochs": 2},
        "weight_decays": [0.0, 0.01], "seeds": [0, 1], "claims": {"weight_decay": 0.01},
        "optimisers": {"sgdm": {"algorithm": "sgd", "lr": 0.1, "momentum": 0.9},
                       "adamw": {"algorithm": "adamw", "lr": 0.001}},
        "protocols": {"long": {"epochs": 4}}})
    values = provenance.training_values(config, "digits", "sgdm")
    assert values["optimiser"] == {"name": "sgdm", **config["optimisers"]["sgdm"]}
    assert values["data"] == {"dataset": "digits", "n_train": None, "n_validation": 0,
                              "subset_seed": 0, "options": {}}
    assert values["training"]["epochs"] == 2 and "lr_schedule" not in values["training"]
    assert provenance.training_values(config, "digits", "adamw")["optimiser"]["name"] == "adamw"
    # a protocol with another training length trains in a slab setting of its own
    assert provenance.training_values(config, "digits", "long")["training"]["epochs"] == 4


def _package(root, files: dict):
    for name, text in files.items():
        path = root / "wdnorm" / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    return root / "wdnorm"


def test_code_hash_follows_the_imports(tmp_path):
    """The closure of an entry: absolute, relative and function-level imports, package
    __init__s on the way; a module nobody imports is not part of it."""
    pkg = _package(tmp_path, {
        "__init__.py": "", "a.py": "from . import b\nfrom .sub import deep\n",
        "b.py": "def f():\n    import wdnorm.lazy\n", "lazy.py": "",
        "sub/__init__.py": "from ..c import thing\n", "sub/deep.py": "", "c.py": "thing = 1\n",
        "unrelated.py": ""})
    script = tmp_path / "script.py"
    script.write_text("from wdnorm import a\n")
    names = {dependencies.module_name(p, pkg) for p in dependencies.closure([script], pkg)}
    assert names == {"wdnorm", "wdnorm.a", "wdnorm.b", "wdnorm.lazy", "wdnorm.sub",
                     "wdnorm.sub.deep", "wdnorm.c"}
    before = dependencies.code_hash([script], pkg)
    (pkg / "unrelated.py").write_text("x = 2\n")
    assert dependencies.code_hash([script], pkg) == before      # not imported: no change
    (pkg / "c.py").write_text("thing = 2\n")
    assert dependencies.code_hash([script], pkg) != before      # imported by an __init__
    with pytest.raises(FileNotFoundError):
        dependencies.closure(["wdnorm.nowhere"], pkg)


def test_notebook_code_cells_count(tmp_path):
    pkg = _package(tmp_path, {"__init__.py": "", "fig.py": ""})
    nb = tmp_path / "n.ipynb"
    nb.write_text(json.dumps({"cells": [
        {"cell_type": "markdown", "source": ["import wdnorm.nothing"]},
        {"cell_type": "code", "source": ["%matplotlib inline\n", "from wdnorm import fig\n"]}]}))
    assert {p.name for p in dependencies.closure([nb], pkg)} == {"__init__.py", "fig.py"}


def test_the_training_code_is_what_the_training_imports():
    files = {dependencies.module_name(p) for p in dependencies.closure(["wdnorm.tasks"])}
    assert {"wdnorm.layout", "wdnorm.engine.step", "wdnorm.optimisers.sgd",
            "wdnorm.runs"} <= files
    assert "wdnorm.claims" not in files and "wdnorm.figures" not in files
    assert provenance.training_code_hash() is not None


def test_outputs_load_tables_claims_and_a_model(tmp_path):
    """The documented API (wdnorm.outputs) reads what the pipeline writes."""
    from wdnorm import fileio, outputs, runs
    from wdnorm.engine import Member, OptimiserConfig, SlabConfig, train_slab
    from wdnorm.layout import Layout

    layout = Layout(results=tmp_path)
    fileio.write_csv(layout.table("runs"), __import__("pandas").DataFrame({"test_acc": [0.5]}))
    fileio.write_json(layout.claims, {"verdicts": {"C6": "refuted"}})
    cfg = SlabConfig(arch="ln", d_in=4, width=4, depth=1, n_classes=2, epochs=1, batch_size=8)
    member = Member(0.1, 0.0, 0)
    x, y = torch.randn(16, 4), torch.randint(0, 2, (16,))
    result = train_slab(cfg, [member], x, y, x, y)
    metrics = runs.member_metrics(result, 0, dataset="d", optimiser="o", final_evals=1,
                                  collapse_ratio=10)
    runs.write_run(layout.run_dir("d", "o", "ln", member.run_id), metrics,
                   runs.member_trace(result, 0), result.state_dict(0), {})
    assert outputs.load_tables(tmp_path)["runs"]["test_acc"].tolist() == [0.5]
    assert outputs.load_claims(tmp_path)["verdicts"] == {"C6": "refuted"}
    net = outputs.load_model(tmp_path, "d", "o", "ln", member.run_id)
    assert not net.training and torch.allclose(net(x), result.module(0)(x))
