"""wdnorm audit on a results tree written file by file (no training): it passes when
nothing is wrong, and every check fails on what it exists to catch. The replay tests
train one tiny slab of random data."""

import dataclasses
import json
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
import yaml

from wdnorm import audit, claims, cli, data, fileio, grid, layout, provenance, runs
from wdnorm import config as config_schema
from wdnorm.engine import SlabConfig
from wdnorm.layout import Layout

torch.set_num_threads(1)

CONFIG = {
    "datasets": ["digits"],
    "n_train": 1280,  # 10 steps of 128 per epoch: STEPS over 2 epochs
    "architectures": ["plain", "ln"],
    "weight_decays": [0.0, 0.01],
    "seeds": [0],
    "optimisers": {"sgdm": {"algorithm": "sgd", "lr": 0.05, "momentum": 0.9}},
    "model": {"width": 16, "depth": 2},
    "training": {"epochs": 2, "batch_size": 128, "eval_every": 1},
    "claims": {"weight_decay": 0.01},
    "device": "cpu",
    "threads": 1,
}
FULL = config_schema.with_defaults(CONFIG)
OPT = "sgdm"
# The slabs of the config: two grid runs each, and for ln (the architecture with a
# symmetry) the three equivalents of the claims' λ.
GRID_IDS = {"lr0.05_wd0_s0_const", "lr0.05_wd0.01_s0_const"}
RUN_IDS = GRID_IDS | {"lr0.05_wd0.01_s0_const_exact", "lr0.05_wd0.01_s0_const_schedule",
                      "lr0.05_wd0.01_s0_const_mimic"}
N_RUNS = len(RUN_IDS) + len(GRID_IDS)
CLAIMS_SETTINGS = claims.settings_from_config(FULL)  # as the workflow passes them
STEPS = 20
DATA_SHA = "d" * 64
CODE = {"package_version": "0.test", "git_commit": "a" * 40, "git_dirty": False,
        "training_code_sha256": "c" * 64}


# --------------------------------------------------------------------------- a fake tree

def _save_npz(path: Path, arrays: dict) -> None:
    with open(path, "wb") as handle:  # a handle: np.savez would append ".npz" to a name
        np.savez(handle, **arrays)


def _slab_config(arch: str) -> dict:
    """A slab config as metrics.json records it: built from the config's values as the
    training job builds it."""
    settings = provenance.training_values(FULL, "digits", OPT)
    return SlabConfig.from_settings(arch, {"d_in": 64, "n_classes": 10}, settings).to_dict()


def _write_run(results: Path, arch: str, member) -> Path:
    run_dir = Layout(results=results).run_dir("digits", OPT, arch, member.run_id)
    slab = _slab_config(arch)
    reference = None if member.kind == "grid" else member.reference.run_id
    metrics = {"run_id": member.run_id, "kind": member.kind, "dataset": "digits",
               "optimiser": OPT, "arch": arch, "lr": member.lr,
               "weight_decay": member.weight_decay, "seed": member.seed, "slab": slab,
               "lr_schedule": member.lr_schedule, "lr_decay_fraction": member.lr_decay_fraction,
               "protocol": member.protocol,
               "reference": reference, "status": "ok", "steps": STEPS,
               "final": {"test_acc": 0.9 - member.weight_decay}}
    loss = (2.3 * np.exp(-np.arange(STEPS) / 10) + member.weight_decay).astype(np.float32)
    values = provenance.run_values(provenance.training_values(FULL, "digits", OPT),
                                   dataset="digits",
                                   slab=slab, member=dataclasses.asdict(member),
                                   kind=member.kind)
    prov = provenance.collect(config_values=values, dataset_sha256=DATA_SHA, device="cpu",
                              threads=1, seed=member.seed, wall_seconds=1.0, code=CODE)
    fileio.write_json(run_dir / "metrics.json", metrics)
    fileio.atomic_write(run_dir / "trace.npz", lambda tmp: _save_npz(tmp, {"loss": loss}))
    fileio.write_bytes(run_dir / "model.pt", f"weights of {member.run_id}".encode())
    fileio.write_json(run_dir / "provenance.json", prov)
    fileio.write_manifest(run_dir)
    return run_dir


def _write_slab_json(slab_dir: Path) -> None:
    members = sorted(p.name for p in slab_dir.iterdir() if p.is_dir())
    fileio.write_json(slab_dir / layout.SLAB_MANIFEST, {
        "dataset": slab_dir.parts[-3], "optimiser": slab_dir.parts[-2],
        "arch": slab_dir.parts[-1], "members": members,
        "manifests": {m: fileio.sha256_file(slab_dir / m / fileio.MANIFEST_NAME)
                      for m in members}})


def _reseal(run_dir: Path) -> None:
    """What a careful forger does after an edit: a new manifest and slab.json."""
    fileio.write_manifest(run_dir)
    _write_slab_json(run_dir.parent)


def _runs_row(m: dict) -> dict:
    """A runs.csv row (the table's contract columns) for a fake run's metrics."""
    acc = m["final"]["test_acc"]
    grid_run = m["kind"] == "grid"
    return {**{k: m[k] for k in ("dataset", "optimiser", "arch", "protocol", "kind", "run_id",
                                 "reference", "lr", "weight_decay", "seed", "status",
                                 "steps", "lr_schedule")},
            **{k: m["slab"]["optimiser"][k] for k in ("algorithm", "momentum", "beta1")},
            "diverged_step": None, "n_classes": 10, "train_loss": 0.1, "train_acc": 1.0,
            "test_loss": 0.4, "test_acc": acc, "gen_gap_loss": 0.3, "gen_gap_acc": 1 - acc,
            "test_acc_last": acc, "min_var_ratio": 50.0, "hidden_penalty": 1.0,
            "head_sq_norm": 1.0, "is_matched_pair": False,
            "loss_track_steps": np.nan if grid_run else m["steps"],
            "loss_rel_diff_100": np.nan if grid_run else 0.0}


def _write_claims(results: Path) -> None:
    rows = [_runs_row(fileio.read_json(p)) for p in sorted(results.rglob("metrics.json"))]
    fileio.write_csv(Layout(results=results).table("runs"), pd.DataFrame(rows))
    tables = claims.load_tables(Layout(results=results).table("runs").parent)
    fileio.write_json(Layout(results=results).claims,
                      claims.decide_all(tables, CLAIMS_SETTINGS))


@pytest.fixture(scope="module")
def pristine(tmp_path_factory):
    """results/ of the tiny config (every run kind), tables, claims.json, config.yaml."""
    root = tmp_path_factory.mktemp("pristine")
    results = root / "results"
    for arch in CONFIG["architectures"]:
        for member in grid.slab_members(FULL, "digits", OPT, arch):
            _write_run(results, arch, member)
        _write_slab_json(Layout(results=results).slab_dir("digits", OPT, arch))
    _write_claims(results)
    (root / "config.yaml").write_text(yaml.safe_dump(CONFIG))
    return root


@pytest.fixture
def site(pristine, tmp_path, monkeypatch):
    """A private copy of the pristine tree to break; this checkout's code is CODE."""
    monkeypatch.setattr(provenance, "code_version", lambda repo=None: dict(CODE))
    shutil.copytree(pristine / "results", tmp_path / "results")
    shutil.copy(pristine / "config.yaml", tmp_path / "config.yaml")
    return tmp_path


def run_audit(site, **kwargs):
    kwargs.setdefault("config", CONFIG)
    kwargs.setdefault("seed", 0)
    return audit.audit(site / "results", **kwargs)


def cli_audit(site, *extra):
    return cli.main(["audit", str(site / "results"), "--config", str(site / "config.yaml"),
                     "--seed", "0", *extra])


def _run(site, arch="ln", run="lr0.05_wd0.01_s0_const") -> Path:
    return Layout(results=site / "results").run_dir("digits", OPT, arch, run)


def _edit_provenance(run_dir: Path, edit) -> None:
    """Edit config_values, then re-hash them and reseal: only the contents can tell."""
    prov = fileio.read_json(run_dir / "provenance.json")
    edit(prov["config_values"])
    prov["config_hash"] = provenance.config_hash(prov["config_values"])
    fileio.write_json(run_dir / "provenance.json", prov)
    _reseal(run_dir)


# --------------------------------------------------------------------------- clean

def test_the_tree_holds_every_run_kind(pristine):
    found = {p.name for p in (pristine / "results" / "runs").glob("*/*/*/*") if p.is_dir()}
    assert found == RUN_IDS


def test_clean_results_pass_every_check(site, capsys):
    report = run_audit(site)
    assert report.n_runs == N_RUNS
    statuses = {c.name: c.status for c in report.checks}
    assert statuses == {**{name: audit.PASS for name in audit.CHECKS}, "replay": audit.SKIP}, \
        [(c.name, c.problems) for c in report.checks]
    assert report.check("completeness").details["expected"] == N_RUNS
    assert report.check("integrity").details == {"runs": N_RUNS, "verified": N_RUNS,
                                                 "slabs": 2}
    assert cli_audit(site) == 0
    assert "result: PASS (skipped: replay)" in capsys.readouterr().out


def test_json_report(site, capsys):
    assert cli_audit(site, "--json") == 0
    report = json.loads(capsys.readouterr().out)
    assert report["ok"] is True and report["failed"] == []
    assert [c["name"] for c in report["checks"]] == list(audit.CHECKS)


def test_results_copied_elsewhere_still_pass(site, tmp_path_factory):
    elsewhere = tmp_path_factory.mktemp("elsewhere") / "deep" / "copy"
    shutil.copytree(site / "results", elsewhere / "results")
    assert audit.audit(elsewhere / "results", config=CONFIG).ok


# --------------------------------------------------------------------------- integrity

def test_changed_byte_fails_integrity_naming_the_file(site, capsys):
    path = _run(site) / "metrics.json"
    raw = bytearray(path.read_bytes())
    raw[len(raw) // 2] ^= 0x01
    path.write_bytes(bytes(raw))
    integrity = run_audit(site).check("integrity")
    assert integrity.status == audit.FAIL
    assert integrity.problems == ["runs/digits/sgdm/ln/lr0.05_wd0.01_s0_const/metrics.json: "
                                  "sha256 differs from the manifest"]
    assert cli_audit(site) == 1
    out = capsys.readouterr().out
    assert "runs/digits/sgdm/ln/lr0.05_wd0.01_s0_const/metrics.json" in out
    assert "result: FAIL (integrity" in out


def test_extra_missing_and_unmanifested_files_are_named(site):
    (_run(site) / "notes.txt").write_text("added later")
    (_run(site, arch="plain") / "model.pt").unlink()
    (_run(site, run="lr0.05_wd0.01_s0_const_mimic") / fileio.MANIFEST_NAME).unlink()
    problems = run_audit(site).check("integrity").problems
    assert problems == [
        "runs/digits/sgdm/ln/lr0.05_wd0.01_s0_const/notes.txt: extra file, not in the manifest",
        "runs/digits/sgdm/ln/lr0.05_wd0.01_s0_const_mimic: no MANIFEST.sha256 (incomplete run)",
        "runs/digits/sgdm/plain/lr0.05_wd0.01_s0_const/model.pt: missing (listed in the manifest)",
    ]


def test_resealed_run_fails_against_slab_json(site):
    """A file edited and its manifest rewritten still differs from slab.json."""
    run_dir = _run(site)
    metrics = fileio.read_json(run_dir / "metrics.json")
    metrics["final"]["test_acc"] = 0.99
    fileio.write_json(run_dir / "metrics.json", metrics)
    fileio.write_manifest(run_dir)
    assert run_audit(site).check("integrity").problems == [
        "runs/digits/sgdm/ln/lr0.05_wd0.01_s0_const/MANIFEST.sha256: sha256 differs from the one "
        "slab.json records"]


def test_slab_json_missing_or_not_matching_its_runs(site):
    slab = Layout(results=site / "results").slab_dir("digits", OPT, "plain")
    (slab / layout.SLAB_MANIFEST).unlink()
    shutil.copytree(_run(site), _run(site, run="lr0.05_wd0.1_s0_const"))
    # without a config nothing tells a leftover from a damaged slab
    problems = run_audit(site, config=None).check("integrity").problems
    assert problems == [
        "runs/digits/sgdm/ln/lr0.05_wd0.1_s0_const: run directory not listed in slab.json (with "
        "--config, one outside its grid is stale)",
        "runs/digits/sgdm/plain/slab.json: missing (the slab's training job did not finish)"]
    # one in the config's grid but not in slab.json: the slab is not the config's
    shutil.rmtree(_run(site, run="lr0.05_wd0.1_s0_const"))
    ln_slab = _run(site).parent
    listed = fileio.read_json(ln_slab / layout.SLAB_MANIFEST)
    listed["members"].remove("lr0.05_wd0_s0_const")
    del listed["manifests"]["lr0.05_wd0_s0_const"]
    fileio.write_json(ln_slab / layout.SLAB_MANIFEST, listed)
    assert run_audit(site).check("integrity").problems == [
        "runs/digits/sgdm/ln/lr0.05_wd0_s0_const: run directory not listed in slab.json",
        "runs/digits/sgdm/plain/slab.json: missing (the slab's training job did not finish)"]


# --------------------------------------------------------------------------- completeness

def test_missing_run_fails_completeness(site):
    shutil.rmtree(_run(site, arch="ln", run="lr0.05_wd0.01_s0_const_exact"))
    _write_slab_json(_run(site, arch="ln").parent)
    report = run_audit(site)
    completeness = report.check("completeness")
    assert completeness.status == audit.FAIL
    assert completeness.problems == ["runs/digits/sgdm/ln/lr0.05_wd0.01_s0_const_exact: missing"]
    assert report.check("integrity").status == audit.PASS
    assert cli_audit(site) == 1


def test_completeness_needs_a_config_and_notes_runs_outside_it(site):
    report = run_audit(site, config=None)
    assert report.check("completeness").status == audit.SKIP and report.ok
    smaller = {**CONFIG, "architectures": ["ln"], "equivalents": {"kinds": ["exact"]}}
    report = run_audit(site, config=smaller)
    completeness = report.check("completeness")
    assert completeness.status == audit.PASS and report.ok
    # ln's schedule and mimic runs: trained in the slab (slab.json lists them)
    assert "2 run directories are not in the config's grid" in completeness.notes
    assert "not in the grid: runs/digits/sgdm/ln/lr0.05_wd0.01_s0_const_mimic" in completeness.notes
    # plain's two runs: a slab the config lacks, so stale
    assert completeness.details["stale"] == ["runs/digits/sgdm/plain/lr0.05_wd0.01_s0_const",
                                             "runs/digits/sgdm/plain/lr0.05_wd0_s0_const"]
    assert completeness.details["stale_slabs"] == ["runs/digits/sgdm/plain"]


# --------------------------------------------------------------------------- provenance

def test_tampered_config_value_fails_provenance(site):
    def edit(values):
        values["training"]["epochs"] = 3
    _edit_provenance(_run(site), edit)
    report = run_audit(site)
    assert report.check("integrity").status == audit.PASS
    assert report.check("provenance").problems == [
        "runs/digits/sgdm/ln/lr0.05_wd0.01_s0_const: slab.epochs: recorded 2, its config_values "
        "give 3",
        "runs/digits/sgdm/ln/lr0.05_wd0.01_s0_const: config differs: training.epochs: recorded 3, "
        "config 2"]


def test_tampered_optimiser_fails_provenance_with_or_without_config(site):
    def edit(values):
        values["optimiser"]["momentum"] = 0.5
    _edit_provenance(_run(site), edit)
    assert run_audit(site, config=None).check("provenance").problems == [
        "runs/digits/sgdm/ln/lr0.05_wd0.01_s0_const: slab.optimiser.momentum: recorded 0.9, its "
        "config_values give 0.5"]
    problems = run_audit(site).check("provenance").problems
    assert "runs/digits/sgdm/ln/lr0.05_wd0.01_s0_const: config differs: optimiser.momentum: " \
           "recorded 0.5, config 0.9" in problems


def _edit_slab(run_dir: Path, edit) -> None:
    """Edit the slab settings in metrics.json and provenance.json alike, re-hash and
    reseal: every hash holds, only the values can tell."""
    metrics = fileio.read_json(run_dir / "metrics.json")
    edit(metrics["slab"])
    fileio.write_json(run_dir / "metrics.json", metrics)
    _edit_provenance(run_dir, lambda values: edit(values["slab"]))


def test_resealed_slab_settings_fail_provenance(site):
    """What replay and the figures read (epochs, batch size, schedule, optimiser) must be
    what the run's config values and the config give."""
    def edit(slab):
        slab.update(epochs=999, lr_schedule="cosine")
    _edit_slab(_run(site), edit)
    report = run_audit(site)
    assert report.check("integrity").status == audit.PASS
    assert report.check("provenance").problems == [
        f"runs/digits/sgdm/ln/lr0.05_wd0.01_s0_const: {line}" for line in (
            "slab.epochs: recorded 999, its config_values give 2",
            'slab.lr_schedule: recorded "cosine", its config_values give <absent>',
            "metrics steps 20 is not epochs × (n_train // batch_size) = 999 × (1280 // "
            "128) = 9990")]
    assert cli_audit(site) == 1


def test_slab_settings_the_config_does_not_give_fail(site):
    """Edited consistently (slab settings and config values), the config tells."""
    def edit(values):
        values["slab"]["batch_size"] = 64
        values["training"]["batch_size"] = 64
    _edit_provenance(_run(site), edit)
    metrics = fileio.read_json(_run(site) / "metrics.json")
    metrics["slab"]["batch_size"], metrics["steps"] = 64, 40
    fileio.write_json(_run(site) / "metrics.json", metrics)
    _reseal(_run(site))
    assert run_audit(site, config=None).check("provenance").status == audit.PASS
    assert run_audit(site).check("provenance").problems == [
        "runs/digits/sgdm/ln/lr0.05_wd0.01_s0_const: config differs: training.batch_size: "
        "recorded 64, config 128"]


def test_metrics_slab_and_steps_must_agree_with_provenance(site):
    metrics = fileio.read_json(_run(site) / "metrics.json")
    metrics["slab"]["width"], metrics["steps"] = 32, 19
    fileio.write_json(_run(site) / "metrics.json", metrics)
    _reseal(_run(site))
    assert run_audit(site, config=None).check("provenance").problems == [
        f"runs/digits/sgdm/ln/lr0.05_wd0.01_s0_const: {line}" for line in (
            "metrics.json slab.width: recorded 32, provenance.json 16",
            "metrics steps 19 is not epochs × (n_train // batch_size) = 2 × (1280 // 128) = "
            "20")]


def test_optimiser_of_another_folder_fails(site):
    def edit(values):
        values["optimiser"]["name"] = "adamw"
    _edit_provenance(_run(site), edit)
    problems = run_audit(site, config=None).check("provenance").problems
    assert problems == ["runs/digits/sgdm/ln/lr0.05_wd0.01_s0_const: recorded optimiser 'adamw' "
                        "is not its folder's ('sgdm')"]


def test_optimiser_settings_other_than_the_config_fail(site):
    config = {**CONFIG, "optimisers": {OPT: {**CONFIG["optimisers"][OPT], "momentum": 0.5}}}
    check = run_audit(site, config=config).check("provenance")
    assert check.status == audit.FAIL
    assert len(check.problems) == N_RUNS
    assert all(p.endswith("config differs: optimiser.momentum: recorded 0.9, config 0.5")
               for p in check.problems)


def test_run_recorded_under_another_member_fails(site):
    def edit(values):
        values["member"]["weight_decay"] = 0.0
    _edit_provenance(_run(site), edit)
    problems = run_audit(site, config=None).check("provenance").problems
    assert "runs/digits/sgdm/ln/lr0.05_wd0.01_s0_const: provenance member is lr0.05_wd0_s0_const, the " \
           "directory is lr0.05_wd0.01_s0_const" in problems


def test_other_training_code_fails_other_commit_is_a_note(site):
    check = run_audit(site, current_code={**CODE, "training_code_sha256": "0" * 64}
                      ).check("provenance")
    assert check.status == audit.FAIL and len(check.problems) == N_RUNS
    assert all("made by other training code" in p for p in check.problems)
    other_commit = {**CODE, "git_commit": "f" * 40}
    check = run_audit(site, current_code=other_commit).check("provenance")
    assert check.status == audit.PASS
    assert any("same training code, made at commit" in n for n in check.notes)
    strict = run_audit(site, current_code=other_commit, strict_code=True).check("provenance")
    assert strict.status == audit.FAIL


def test_placeholder_or_unhashed_provenance_fails(site):
    fileio.write_json(_run(site) / "provenance.json", {"note": "sample"})
    _reseal(_run(site))
    other = _run(site, arch="plain")
    prov = fileio.read_json(other / "provenance.json")
    prov["config_values"]["model"]["width"] = 999  # its config_hash no longer matches
    fileio.write_json(other / "provenance.json", prov)
    _reseal(other)
    problems = run_audit(site, config=None).check("provenance").problems
    assert problems == [
        "runs/digits/sgdm/ln/lr0.05_wd0.01_s0_const/provenance.json: lacks config_values, "
        "config_hash, code, packages, device, device_name, threads, seed, wall_seconds, "
        "dataset_sha256",
        "runs/digits/sgdm/plain/lr0.05_wd0.01_s0_const/provenance.json: config_hash does not "
        "match its config_values",
        "runs/digits/sgdm/plain/lr0.05_wd0.01_s0_const: slab.width: recorded 16, its "
        "config_values give 999"]


def test_package_and_device_differences_are_notes(site):
    prov = fileio.read_json(_run(site) / "provenance.json")
    prov["packages"]["torch"] = "2.11.0"
    prov["device_name"] = "NVIDIA H100 80GB HBM3"
    fileio.write_json(_run(site) / "provenance.json", prov)
    _reseal(_run(site))
    check = run_audit(site).check("provenance")
    assert check.status == audit.PASS
    assert any(n.startswith("packages differ") and "2.11.0" in n for n in check.notes)
    assert any(n.startswith("device differ") and "H100" in n for n in check.notes)


# --------------------------------------------------------------------------- claims

def _set_verdict(path: Path, claim: str, verdict: str, summary_too: bool = True) -> None:
    recorded = fileio.read_json(path)
    next(c for c in recorded["claims"] if c["id"] == claim)["verdict"] = verdict
    if summary_too:
        recorded["verdicts"][claim] = verdict
    fileio.write_json(path, recorded)


def test_tampered_verdict_fails_claims(site, capsys):
    path = Layout(results=site / "results").claims
    recorded = fileio.read_json(path)["verdicts"]
    claim = sorted(recorded)[0]
    forged = "supported" if recorded[claim] != "supported" else "refuted"
    _set_verdict(path, claim, forged)
    claims = run_audit(site).check("claims")
    assert claims.problems == [f"claim {claim}: claims.json says {forged!r}, the tables give "
                               f"{recorded[claim]!r}"]
    assert cli_audit(site) == 1
    assert f"claim {claim}" in capsys.readouterr().out
    _set_verdict(path, claim, recorded[claim], summary_too=False)  # half an edit back
    assert run_audit(site).check("claims").problems == [
        f"claim {claim}: claims.json is inconsistent (verdicts says {forged!r}, the claim "
        f"entry {recorded[claim]!r})",
        f"claims.json verdicts.{claim}: recorded {json.dumps(forged)}, the tables give "
        f"{json.dumps(recorded[claim])}"]


def test_tampered_table_fails_claims(site):
    table = Layout(results=site / "results").table("runs")
    table.write_text(table.read_text().replace("0.89", "0.95"))
    claims = run_audit(site).check("claims")
    assert claims.status == audit.FAIL
    # first the hash; verdicts recomputed from the edited table may differ too
    assert claims.problems[0] == "tables/runs.csv: sha256 differs from the one claims.json " \
                                 "records"


def test_claims_of_other_settings_or_none_fail(site):
    other = {**CONFIG, "matched_pairs": [[0.1, 0.005], [0.05, 0.01]]}
    problems = run_audit(site, config=other).check("claims").problems
    assert problems == ["claims were decided with other settings: settings.matched_pairs: "
                        "recorded [], config [[0.1, 0.005], [0.05, 0.01]]"]
    Layout(results=site / "results").claims.unlink()
    claims = run_audit(site).check("claims")
    assert claims.status == audit.FAIL
    assert claims.problems == ["claims.json: missing (--skip claims audits the runs alone)"]


# --------------------------------------------------------------------------- CLI

def test_cli_usage_errors_exit_2(site, tmp_path, capsys):
    assert cli.main(["audit", str(tmp_path / "nowhere")]) == 2
    assert "no results directory" in capsys.readouterr().err
    assert cli.main(["audit", str(site / "results"), "--config", str(tmp_path / "no.yaml")]) == 2
    bad = tmp_path / "bad.yaml"
    bad.write_text("weight_decays: [0.0]\n")  # no optimisers
    assert cli.main(["audit", str(site / "results"), "--config", str(bad)]) == 2
    assert "optimisers" in capsys.readouterr().err
    assert cli.main(["audit"]) == 2
    assert cli.main(["audit", str(site / "results"), "--replay", "-1"]) == 2


def test_cli_skip_a_check(site):
    (_run(site) / "extra.bin").write_bytes(b"x")
    assert cli_audit(site) == 1
    assert cli_audit(site, "--skip", "integrity") == 0


# --------------------------------------------------------------------------- replay

REPLAY_MEMBERS = (("grid", 0.0), ("grid", 0.01), ("exact", 0.01), ("schedule", 0.01),
                  ("mimic", 0.01))


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """One tiny slab (random digits-like data, 8 steps) written as runs: every kind."""
    from wdnorm.engine import Member, OptimiserConfig, SlabConfig, train_slab

    root = tmp_path_factory.mktemp("trained")
    g = torch.Generator().manual_seed(0)
    x_train, x_test = torch.randn(256, 8, generator=g), torch.randn(64, 8, generator=g)
    y_train, y_test = (torch.randint(0, 4, (n,), generator=g) for n in (256, 64))
    prepared = data.Prepared(x_train, y_train, x_test, y_test, meta={"d_in": 8, "n_classes": 4})
    where = Layout(data=root / "data")
    data.save_prepared(prepared, where.prepared("digits"), where.prepared_meta("digits"))
    cfg = SlabConfig(arch="ln", d_in=8, width=8, depth=1, n_classes=4, epochs=1,
                     batch_size=32, eval_every=1,
                     optimiser=OptimiserConfig("sgd", momentum=0.9))
    members = [Member(0.05, wd, 0, kind) for kind, wd in REPLAY_MEMBERS]
    result = train_slab(cfg, members, prepared.x_train, prepared.y_train, prepared.x_test,
                        prepared.y_test)
    sha = fileio.sha256_file(where.prepared("digits"))
    run_dirs = []
    for i, member in enumerate(members):
        run_dir = Layout(results=root / "results").run_dir("digits", OPT, "ln", member.run_id)
        loss = result.member_trace(i)["loss"].astype(np.float32)
        fileio.write_json(run_dir / "metrics.json", {
            **dataclasses.asdict(member), "run_id": member.run_id, "slab": cfg.to_dict(),
            "steps": len(loss)})
        fileio.atomic_write(run_dir / "trace.npz", lambda tmp: _save_npz(tmp, {"loss": loss}))
        fileio.write_json(run_dir / "provenance.json", {"dataset_sha256": sha})
        fileio.write_manifest(run_dir)
        run_dirs.append(run_dir)
    # replay trains a run beside its slab's members, in slab.json's (training) order
    runs.write_slab_manifest(run_dirs[0].parent, dataset="digits", optimiser=OPT, arch="ln",
                             run_dirs=run_dirs)
    return root


def replay(root, k=len(REPLAY_MEMBERS), **kwargs):
    return audit.audit(root / "results", replay=k, checks=("replay",), **{"seed": 0, **kwargs})


def test_replay_reproduces_every_run_kind(trained):
    check = replay(trained).check("replay")
    assert check.status == audit.PASS, check.problems
    runs = check.details["runs"]
    assert {Path(r["run"]).name.split("_s0_const")[-1] for r in runs} == \
        {"", "_exact", "_schedule", "_mimic"}
    assert all(r["steps"] == 8 and r["max_rel_err"] <= audit.DEFAULT_RTOL for r in runs)


def test_tampered_loss_fails_replay_not_integrity(trained, tmp_path):
    shutil.copytree(trained, tmp_path, dirs_exist_ok=True)
    run_dir = Layout(results=tmp_path / "results").run_dir("digits", OPT, "ln",
                                                           "lr0.05_wd0.01_s0_const_exact")
    with np.load(run_dir / "trace.npz") as npz:
        loss = npz["loss"].copy()
    loss[3] *= 1.01
    fileio.atomic_write(run_dir / "trace.npz", lambda tmp: _save_npz(tmp, {"loss": loss}))
    fileio.write_manifest(run_dir)
    check = replay(tmp_path).check("replay")
    assert check.status == audit.FAIL
    assert len(check.problems) == 1
    assert check.problems[0].startswith("runs/digits/sgdm/ln/lr0.05_wd0.01_s0_const_exact: loss "
                                        "differs from trace.npz at step 3")
    assert cli.main(["audit", str(tmp_path / "results"), "--replay", "5", "--seed", "0",
                     "--skip", "provenance", "--skip", "integrity", "--skip", "claims"]) == 1


def test_replay_refuses_other_data(trained, tmp_path):
    shutil.copytree(trained, tmp_path, dirs_exist_ok=True)
    where = Layout(data=tmp_path / "data")
    other = data.load_prepared(where.prepared("digits"))
    other.x_train[0, 0] += 1.0
    data.save_prepared(other, where.prepared("digits"), where.prepared_meta("digits"))
    problems = replay(tmp_path, k=1).check("replay").problems
    assert len(problems) == 1 and "cannot replay: " in problems[0] and "sha256" in problems[0]


def test_replay_choice_is_seeded_and_reported(trained):
    def chosen(report):
        return [e["run"] for e in report.check("replay").details["runs"]]
    assert chosen(replay(trained, k=2, seed=3)) == chosen(replay(trained, k=2, seed=3))
    assert isinstance(replay(trained, k=1, seed=None).check("replay").details["seed"], int)
