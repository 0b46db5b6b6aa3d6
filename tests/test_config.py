"""Bad config fails at load time with the key, the value and what is allowed."""

import copy
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from snakemake.exceptions import WorkflowError
from snakemake.utils import validate

from wdnorm import grid

REPO = Path(__file__).resolve().parents[1]
SCHEMA = str(REPO / "src" / "wdnorm" / "config.schema.yaml")


@pytest.fixture
def config():
    return yaml.safe_load((REPO / "config.yaml").read_text())


def check(config):
    validate(config, SCHEMA)
    grid.check_config(config)


def test_default_config_is_valid(config):
    check(config)


def _fails(config, *needles):
    with pytest.raises((WorkflowError, ValueError)) as info:
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


def test_mimic_weight_decay_must_be_in_grid(config):
    config["mimic"]["weight_decay"] = 0.5
    _fails(config, "mimic.weight_decay=0.5", "weight_decays")


def test_snakemake_refuses_bad_config_before_any_job(tmp_path):
    (tmp_path / "config.yaml").write_text((REPO / "config.yaml").read_text()
                                          .replace("architectures: [plain,", "architectures: [mlp,"))
    proc = subprocess.run([sys.executable, "-m", "snakemake", "-s", str(REPO / "Snakefile"),
                           "-d", str(tmp_path), "--cores", "1", "-n"],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode != 0
    assert "'mlp'" in proc.stdout + proc.stderr
    assert not (tmp_path / "results").exists() and not (tmp_path / "data").exists()
