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
from wdnorm import archs, checks, grid

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture
def config():
    return yaml.safe_load((REPO / "config.yaml").read_text())


def check(config):
    checks.check_config(config_schema.validate(config))


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


def test_equivalents_must_exist_where_they_train(config):
    """ηλ ≤ (1 − √α)² (momentum 0.9: 2.6e-3; λ* = 3e-3, so lr 1.0 crosses it) where the
    equivalents train: at the optimiser's lr, or at every lr_grid value too when asked."""
    config["optimisers"]["sgdm"]["lr_grid"] = [0.05, 1.0]
    check(config)  # the equivalents train at lr 0.1 only
    config["equivalents"] = {"every_learning_rate": True}
    _fails(config, "optimisers.sgdm", "lr=1", "LR-schedule equivalent")
    config["equivalents"] = {"every_learning_rate": True, "kinds": []}
    check(config)


def test_learning_rate_grid_trains_the_lambda_grid_at_each_rate(config):
    config["optimisers"]["sgdm"]["lr_grid"] = [0.05, 0.1]  # 0.1 is the grid lr: once
    config["protocols"] = {}
    config["matched_pairs"] = [[0.1, 3.0e-3], [0.05, 6.0e-3]]
    full = config_schema.with_defaults(config)
    plain = grid.slab_members(full, "mnist1d", "sgdm", "plain")
    ln = grid.slab_members(full, "mnist1d", "sgdm", "ln")
    per_seed = 2 * len(full["weight_decays"]) + 1  # 2 lrs × λ grid, 1 more matched pair
    assert len(plain) == len(full["seeds"]) * per_seed
    kinds = len(full["equivalents"]["kinds"])
    assert len(ln) == len(full["seeds"]) * (per_seed + kinds)  # equivalents at lr 0.1 only
    assert {m.lr for m in ln if m.kind == "exact"} == {0.1}
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
    entry = schema["$defs"]["optimiser"]["properties"]
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


def _dry_run(workdir: Path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "snakemake", "-s", str(REPO / "Snakefile"),
                           "-d", str(workdir), "--cores", "1", "-n", *args],
                          capture_output=True, text=True, timeout=180)


@pytest.mark.parametrize("change, needles", [
    ({"training": {"batch_size": 4096}}, ("training.batch_size=4096", "2000 training")),
    ({"n_train": 3000}, ("n_train=3000 + n_validation=2000", "has 4000")),
    ({"mnist1d": {"num_samples": 20, "train_split": 0.01}}, ("mnist1d", "0 training examples")),
    ({"protocols": {"big": {"n_train": 4000}}}, ("n_train=4000 + n_validation=2000",
                                                  "data mnist1d-big")),
    ({"protocols": {"main": {"lr_schedule": "constant"}}}, ("'main' is the name",)),
    ({"protocols": {"again": {"lr_schedule": "cosine"}}}, ("trains the same runs",)),
    ({"protocols": {"x": {"dataset": "imagenet"}}}, ("protocols.x.dataset", "imagenet")),
    # two protocols on one dataset the main grid does not train, with other sizes
    ({"protocols": {"a": {"dataset": "digits", "n_train": 500},
                    "b": {"dataset": "digits", "n_train": 600, "lr_schedule": "constant"}}},
     ("both train on data digits", "n_train")),
])
def test_impossible_combinations_fail_naming_the_keys(config, change, needles):
    for key, value in change.items():
        config[key] = {**config[key], **value} if isinstance(config.get(key), dict) else value
    _fails(config, *needles)


def test_config_list_overrides_are_coerced_to_the_schema():
    """snakemake --config seeds=[0,1,2] passes the list items as strings."""
    coerced = config_schema.coerce({"seeds": ["0", "1"], "weight_decays": ["0.0", "3e-3"],
                                    "architectures": ["ln"], "training": {"epochs": "3"},
                                    "compile": "false", "n_train": "null"})
    assert coerced == {"seeds": [0, 1], "weight_decays": [0.0, 0.003], "architectures": ["ln"],
                       "training": {"epochs": 3}, "compile": False, "n_train": None}
    assert config_schema.coerce({"seeds": ["x"]}) == {"seeds": ["x"]}  # validation names it


def test_overrides_on_the_command_line_change_what_would_run(tmp_path):
    (tmp_path / "config.yaml").write_text((REPO / "config.yaml").read_text())
    for override in (["seeds=[0,1,2]"], ["weight_decays=[0.0,0.003]"],
                     ["architectures=[ln,res]"]):
        proc = _dry_run(tmp_path, "--config", *override)
        out = proc.stdout + proc.stderr
        assert proc.returncode == 0, out[-2000:]
        assert "train_slab" in out
    two = _dry_run(tmp_path, "--config", "architectures=[ln,res]")
    jobs = [line for line in (two.stdout + two.stderr).splitlines()
            if line.strip().startswith("train_slab")]
    # ln and res in the main grid and in each of the 3 protocols of their own slabs
    assert jobs and jobs[0].split()[-1] == "8"  # not the default's 20


def test_a_yaml_error_names_the_file_and_the_line(tmp_path):
    (tmp_path / "config.yaml").write_text("seeds: [0, 1\nweight_decays: [0.0]\n")
    proc = _dry_run(tmp_path)
    assert proc.returncode != 0
    assert "config.yaml, line 2" in proc.stdout + proc.stderr


def test_the_workflow_lints_clean():
    proc = subprocess.run([sys.executable, "-m", "snakemake", "-s", str(REPO / "Snakefile"),
                           "-d", str(REPO), "--lint"], capture_output=True, text=True,
                          timeout=180)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    assert "Congratulations" in proc.stdout + proc.stderr
