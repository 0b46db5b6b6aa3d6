"""Bad config fails at load time with the key, the value and what is allowed; the
schema (package data) is the one source of defaults, and snakemake fills the same ones."""

import copy
import json
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from snakemake.utils import validate as snakemake_validate

from wdnorm import config as config_schema
from wdnorm import archs, grid

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture
def config():
    return yaml.safe_load((REPO / "config.yaml").read_text())


def check(config):
    grid.check_config(config_schema.validate(config))


def test_default_config_is_valid(config):
    check(config)


def _fails(config, *needles):
    with pytest.raises(ValueError) as info:
        check(config)
    message = str(info.value)
    for needle in needles:
        assert needle in message, f"{needle!r} not in: {message}"


def test_unknown_architecture(config):
    config["architectures"] = ["ln", "mlp"]
    _fails(config, "'mlp'", "architectures", "preln_final")


def test_unknown_dataset(config):
    config["datasets"] = ["imagenet"]
    _fails(config, "'imagenet'", "datasets", "fashion_mnist")


def test_negative_weight_decay(config):
    config["weight_decays"] = [0.0, -1e-3]
    _fails(config, "-0.001", "weight_decays", "minimum")


def test_non_numeric_weight_decay(config):
    config["weight_decays"] = [0.0, "1e-3x"]
    _fails(config, "'1e-3x'", "weight_decays", "number")


def test_empty_grid(config):
    config["weight_decays"] = []
    _fails(config, "weight_decays")
    config = copy.deepcopy(config)
    config["weight_decays"] = [0.0]
    config["seeds"] = []
    _fails(config, "seeds")


def test_unknown_key(config):
    config["epochs"] = 3
    _fails(config, "'epochs'", "Additional properties")


def test_wrong_type(config):
    config["training"]["batch_size"] = "large"
    _fails(config, "'large'", "batch_size", "integer")


def test_claims_weight_decay_must_be_in_grid(config):
    config["claims"] = {**config.get("claims", {}), "weight_decay": 0.5}
    _fails(config, "claims.weight_decay", "0.5", "weight_decays")


def test_matched_pairs_must_share_one_product(config):
    config["matched_pairs"] = [[0.1, 0.02], [0.05, 0.02]]
    _fails(config, "matched_pairs", "product")


def test_equivalents_must_exist_at_every_learning_rate(config):
    """ηλ ≤ (1 − √α)² at the optimiser's lr and at every lr_grid value (momentum 0.9:
    2.6e-3; λ* = 3e-3, so lr 1.0 crosses it)."""
    config["optimisers"]["sgdm"]["lr_grid"] = [0.05, 1.0]
    _fails(config, "optimisers.sgdm", "lr=1", "LR-schedule equivalent")
    config["equivalents"] = {"kinds": []}
    check(config)


def test_learning_rate_grid_trains_the_lambda_grid_at_each_rate(config):
    config["optimisers"]["sgdm"]["lr_grid"] = [0.05, 0.1]  # 0.1 is the grid lr: once
    full = config_schema.with_defaults(config)
    plain = grid.slab_members(full, "sgdm", "plain")
    ln = grid.slab_members(full, "sgdm", "ln")
    per_seed = 2 * len(full["weight_decays"]) + 2  # 2 lrs × λ grid, 2 more matched pairs
    assert len(plain) == len(full["seeds"]) * per_seed
    assert len(ln) == len(full["seeds"]) * (per_seed + 2 * 3)  # 3 equivalents at each lr
    assert {m.lr for m in ln if m.kind == "exact"} == {0.1, 0.05}
    assert len(set(ln)) == len(ln)


def test_defaults_are_the_ones_snakemake_fills():
    """wdnorm.config.with_defaults (used by the audit, the benchmarks) fills exactly what
    snakemake's validate fills from the same schema, nested objects included."""
    minimal = {"weight_decays": [0.0],
               "optimisers": {"a": {"algorithm": "sgd", "lr": 0.1},
                              "b": {"algorithm": "adamw", "lr": 0.01, "beta1": 0.8}}}
    for cfg in (minimal, {**minimal, "model": {"width": 8}, "training": {"epochs": 3}}):
        filled = json.loads(json.dumps(cfg))
        snakemake_validate(filled, str(config_schema.SCHEMA_PATH))
        # the one default the schema leaves to the registry: every architecture
        filled["architectures"] = list(archs.ARCHITECTURES)
        assert config_schema.with_defaults(cfg) == filled
        assert config_schema.validate(cfg) == filled


def test_defaults_read_from_the_schema():
    schema = yaml.safe_load(config_schema.SCHEMA_PATH.read_text())
    entry = schema["properties"]["optimisers"]["additionalProperties"]["properties"]
    assert config_schema.optimiser_hyper_defaults() == {
        k: v["default"] for k, v in entry.items() if k not in ("algorithm", "lr", "lr_grid")}
    model = schema["properties"]["model"]["properties"]
    assert config_schema.defaults("model") == {k: v["default"] for k, v in model.items()}
    assert config_schema.defaults("model", "width") == model["width"]["default"]


def test_snakemake_refuses_bad_config_before_any_job(tmp_path):
    text = (REPO / "config.yaml").read_text()
    (tmp_path / "config.yaml").write_text(text.replace("architectures: [plain,",
                                                       "architectures: [mlp,"))
    proc = subprocess.run([sys.executable, "-m", "snakemake", "-s", str(REPO / "Snakefile"),
                           "-d", str(tmp_path), "--cores", "1", "-n"],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode != 0
    assert "'mlp'" in proc.stdout + proc.stderr
    assert not (tmp_path / "results").exists() and not (tmp_path / "data").exists()
