"""wdnorm audit on a tiny real run set: it passes when nothing is wrong and names what is
wrong otherwise (a flipped byte, a missing run, an edited trace, an edited verdict)."""

import json
import shutil
import sys
import types
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
import yaml

from wdnorm import audit, cli, data, fileio, grid, provenance, runs
from wdnorm.engine import train_slab
from wdnorm.layout import Layout

torch.set_num_threads(1)

REPO = Path(__file__).resolve().parents[1]
SCHEMA = REPO / "src" / "wdnorm" / "config.schema.yaml"

CONFIG = {
    "datasets": ["digits"],
    "architectures": ["plain", "ln"],
    "weight_decays": [0.0, 0.01],
    "seeds": [0],
    "matched_pairs": [],
    "mimic": {"weight_decay": 0.01},
    "optimisers": {"sgdm": {"algorithm": "sgd", "lr": 0.05, "momentum": 0.9}},
    "model": {"width": 16, "depth": 2},
    "training": {"epochs": 2, "batch_size": 128, "eval_every": 1},
    "device": "cpu",
    "threads": 1,
}
N_RUNS = 6  # 2 archs x 2 weight decays + 2 mimic runs
CLAIMS_SETTINGS_KEYS = audit.CLAIMS_KEYS


# --------------------------------------------------------------------------- fixtures

def _train_and_write(*, prepared_path, arch, settings, members, results_root, kind,
                     reference_dirs=None):
    """wdnorm.tasks.train_and_write when it imports (it needs wdnorm.gpu), else the same
    steps written out: the runs carry real provenance either way."""
    try:
        from wdnorm import tasks
    except ImportError:
        tasks = None
    if tasks is not None:
        return tasks.train_and_write(
            prepared_path=prepared_path, dataset="digits", arch=arch, optimiser_name="sgdm",
            settings=settings, members=members, results_root=results_root, kind=kind,
            device_request="cpu", lock_dir=Path(results_root).parent / "locks", threads=1,
            reference_dirs=reference_dirs)
    prepared = data.load_prepared(prepared_path)
    from wdnorm.engine import OptimiserConfig, SlabConfig
    opt = {k: v for k, v in settings["optimiser"].items() if k != "lr"}
    cfg = SlabConfig(arch=arch, d_in=prepared.meta["d_in"], n_classes=prepared.meta["n_classes"],
                     width=settings["model"]["width"], depth=settings["model"]["depth"],
                     norm_eps=settings["model"]["norm_eps"], optimiser=OptimiserConfig(**opt),
                     decay_scope=settings["decay_scope"], epochs=settings["training"]["epochs"],
                     batch_size=settings["training"]["batch_size"],
                     eval_every=settings["training"]["eval_every"])
    reference = None
    if reference_dirs is not None:
        reference = np.stack([runs.read_trace(d)["sq_norm"] for d in reference_dirs], 1)
    result = train_slab(cfg, members, prepared.x_train, prepared.y_train, prepared.x_test,
                        prepared.y_test, reference_sq_norms=reference)
    layout = Layout(results=Path(results_root))
    written = []
    for i, member in enumerate(members):
        extra = {}
        if reference_dirs is not None:
            extra["mimic_reference"] = str(Path(reference_dirs[i]).relative_to(results_root))
        metrics = runs.member_metrics(result, i, dataset="digits", optimiser="sgdm",
                                      kind=kind, extra=extra)
        prov = provenance.collect(
            config_values={**settings, "dataset": "digits", "optimiser": "sgdm",
                           "slab": cfg.to_dict(), "member": vars(member), "kind": kind},
            dataset_sha256=fileio.sha256_file(prepared_path), device="cpu", threads=1,
            seed=member.seed, wall_seconds=1.0)
        run_dir = layout.run_dir("digits", "sgdm", arch, member.run_id, kind)
        written.append(runs.write_run(run_dir, metrics, runs.member_trace(result, i),
                                      result.state_dict(i), prov))
    return written


def _fake_claims_module():
    """Stands in for wdnorm.claims (load_tables, decide_all; the same output shape) with
    verdicts that really depend on the tables and the settings."""
    module = types.ModuleType("wdnorm.claims")

    def load_tables(tables_dir):
        out = {}
        for path in sorted(Path(tables_dir).glob("*.csv")):
            out[path.stem] = pd.read_csv(path)
            out[path.stem].attrs["sha256"] = fileio.sha256_file(path)
        return out

    def decide_all(tables, settings):
        acc = tables["runs"]
        grid_runs = acc[acc["kind"] == "runs"]
        by_wd = grid_runs.groupby("weight_decay")["test_acc"].mean()
        effect = float(by_wd.max() - by_wd.min())
        claims = [
            {"id": "C5", "verdict": "inconclusive" if not settings["matched_pairs"]
             else "supported"},
            {"id": "C6", "verdict": "supported" if effect > 0.05 else "refuted",
             "measured": {"effect": effect}},
        ]
        return {"claims": claims, "verdicts": {c["id"]: c["verdict"] for c in claims},
                "inputs": {name: {"path": f"tables/{name}.csv", "sha256": df.attrs["sha256"],
                                  "rows": len(df)} for name, df in tables.items()},
                "tolerances": {"c6_effect": 0.05}, "settings": dict(settings)}

    module.load_tables, module.decide_all = load_tables, decide_all
    return module


def _write_tables_and_claims(results: Path, claims_module, settings: dict) -> None:
    rows = []
    for ref in audit.find_runs(results):
        m = runs.read_metrics(ref.path(results))
        rows.append({"dataset": m["dataset"], "optimiser": m["optimiser"], "arch": m["arch"],
                     "kind": m["kind"], "run_id": m["run_id"], "weight_decay": m["weight_decay"],
                     "test_acc": m["final"]["test_acc"]})
    fileio.write_csv(results / "tables" / "runs.csv", pd.DataFrame(rows))
    fileio.write_csv(results / "tables" / "symmetry.csv",
                     pd.DataFrame({"arch": ["plain", "ln"], "invariant": [False, True]}))
    tables = claims_module.load_tables(results / "tables")
    fileio.write_json(results / "claims.json", claims_module.decide_all(tables, settings))


def _set_verdict(claims_json: dict, claim: str, verdict: str) -> None:
    """Edit a verdict the way a person would: the claim entry and the summary map."""
    next(c for c in claims_json["claims"] if c["id"] == claim)["verdict"] = verdict
    if "verdicts" in claims_json:
        claims_json["verdicts"][claim] = verdict


@pytest.fixture(scope="module")
def pristine(tmp_path_factory):
    """data/ and results/ of the tiny grid, with tables and a claims.json."""
    root = tmp_path_factory.mktemp("pristine")
    prepared_path = Layout(data=root / "data").prepared("digits")
    data.save_prepared(data.prepare("digits", None), prepared_path,
                       Layout(data=root / "data").prepared_meta("digits"))
    results = root / "results"
    full = audit.with_config_defaults(CONFIG)
    settings = audit.training_values(full, "sgdm")  # what common.smk passes to the rule
    lr = full["optimisers"]["sgdm"]["lr"]
    for arch in CONFIG["architectures"]:
        members = grid.slab_members(lr, full["weight_decays"], full["seeds"],
                                    full["matched_pairs"])
        _train_and_write(prepared_path=prepared_path, arch=arch, settings=settings,
                         members=members, results_root=results, kind="runs")
        references = [Layout(results=results).run_dir(
            "digits", "sgdm", arch, grid.mimic_reference(lr, 0.01, s).run_id)
            for s in full["seeds"]]
        _train_and_write(prepared_path=prepared_path, arch=arch, settings=settings,
                         members=grid.mimic_members(lr, full["seeds"]),
                         results_root=results, kind="mimic", reference_dirs=references)
    claims_settings = {k: full[k] for k in CLAIMS_SETTINGS_KEYS}
    _write_tables_and_claims(results, _fake_claims_module(), claims_settings)
    (root / "config.yaml").write_text(yaml.safe_dump(CONFIG))
    return root


@pytest.fixture
def fake_claims(monkeypatch):
    monkeypatch.setitem(sys.modules, "wdnorm.claims", _fake_claims_module())


@pytest.fixture
def site(pristine, tmp_path, fake_claims):
    """A private copy of the pristine tree to break."""
    for name in ("data", "results", "config.yaml"):
        src = pristine / name
        (shutil.copytree if src.is_dir() else shutil.copy)(src, tmp_path / name)
    return tmp_path


def run_audit(site, **kwargs):
    kwargs.setdefault("config", CONFIG)
    kwargs.setdefault("seed", 0)
    return audit.audit(site / "results", **kwargs)


def cli_audit(site, *extra):
    return cli.main(["audit", str(site / "results"), "--config", str(site / "config.yaml"),
                     "--seed", "0", *extra])


# --------------------------------------------------------------------------- clean

def test_clean_results_pass_every_check(site, capsys):
    report = run_audit(site, replay=N_RUNS)
    assert report.n_runs == N_RUNS
    for check in report.checks:
        assert check.status == audit.PASS, (check.name, check.problems)
    replayed = report.check("replay").details["runs"]
    assert len(replayed) == N_RUNS  # mimic runs included: they replay with their reference
    assert any(r.get("reference") for r in replayed)
    assert all(r["max_rel_err"] <= audit.DEFAULT_RTOL for r in replayed)
    assert report.check("completeness").details["expected"] == N_RUNS
    assert set(report.check("claims").details["recomputed"]) == {"C5", "C6"}

    assert cli_audit(site, "--replay", "2") == 0
    out = capsys.readouterr().out
    assert "result: PASS" in out and "replay" in out


def test_json_report(site, capsys):
    assert cli_audit(site, "--json", "--replay", "1", "--seed", "7") == 0
    report = json.loads(capsys.readouterr().out)
    assert report["ok"] is True and report["failed"] == []
    assert {c["name"] for c in report["checks"]} == set(audit.CHECKS)
    replay = next(c for c in report["checks"] if c["name"] == "replay")
    assert replay["details"]["seed"] == 7 and len(replay["details"]["runs"]) == 1


def test_replay_choice_is_seeded_and_reported(site):
    first = run_audit(site, replay=2, seed=3, checks=("replay",))
    again = run_audit(site, replay=2, seed=3, checks=("replay",))
    runs_of = lambda r: [e["run"] for e in r.check("replay").details["runs"]]  # noqa: E731
    assert runs_of(first) == runs_of(again)
    drawn = run_audit(site, replay=1, seed=None, checks=("replay",))
    assert isinstance(drawn.check("replay").details["seed"], int)


def test_results_copied_elsewhere_still_pass(site, tmp_path_factory):
    elsewhere = tmp_path_factory.mktemp("elsewhere") / "deep" / "copy"
    shutil.copytree(site / "results", elsewhere / "results")
    shutil.copytree(site / "data", elsewhere / "data")
    report = audit.audit(elsewhere / "results", config=CONFIG, replay=N_RUNS, seed=0)
    assert report.ok, report.failed
    # the data directory may live anywhere else too
    moved = tmp_path_factory.mktemp("data_elsewhere")
    shutil.move(str(elsewhere / "data"), moved / "d")
    report = audit.audit(elsewhere / "results", config=CONFIG, replay=2, seed=0,
                         data_dir=moved / "d")
    assert report.ok, report.failed


# --------------------------------------------------------------------------- integrity

def _a_run(site, kind="runs", arch="ln", run="lr0.05_wd0.01_s0") -> Path:
    return site / "results" / kind / "digits" / "sgdm" / arch / run


def test_flipped_byte_fails_integrity_naming_the_file(site, capsys):
    path = _a_run(site) / "metrics.json"
    raw = bytearray(path.read_bytes())
    raw[len(raw) // 2] ^= 0x01
    path.write_bytes(bytes(raw))
    report = run_audit(site)
    integrity = report.check("integrity")
    assert integrity.status == audit.FAIL
    assert integrity.problems == ["runs/digits/sgdm/ln/lr0.05_wd0.01_s0/metrics.json: "
                                  "sha256 differs from the manifest"]
    assert cli_audit(site) == 1
    out = capsys.readouterr().out
    assert "runs/digits/sgdm/ln/lr0.05_wd0.01_s0/metrics.json" in out
    assert "result: FAIL (integrity" in out


def test_extra_missing_and_unmanifested_files_are_named(site):
    (_a_run(site) / "notes.txt").write_text("added later")
    (_a_run(site, arch="plain") / "model.pt").unlink()
    (_a_run(site, kind="mimic", run="lr0.05_wd0_s0") / fileio.MANIFEST_NAME).unlink()
    problems = run_audit(site).check("integrity").problems
    assert "runs/digits/sgdm/ln/lr0.05_wd0.01_s0/notes.txt: extra file, not in the manifest" \
        in problems
    assert "runs/digits/sgdm/plain/lr0.05_wd0.01_s0/model.pt: missing (listed in the " \
           "manifest)" in problems
    assert any(p.startswith("mimic/digits/sgdm/ln/lr0.05_wd0_s0: no MANIFEST.sha256")
               for p in problems)
    assert len(problems) == 3


# --------------------------------------------------------------------------- completeness

def test_deleted_run_is_listed_missing(site):
    shutil.rmtree(_a_run(site, arch="plain", run="lr0.05_wd0_s0"))
    report = run_audit(site)
    completeness = report.check("completeness")
    assert completeness.status == audit.FAIL
    assert completeness.problems == ["runs/digits/sgdm/plain/lr0.05_wd0_s0: missing"]
    assert report.check("integrity").status == audit.PASS
    assert cli_audit(site) == 1


def test_completeness_needs_a_config_and_notes_runs_outside_the_grid(site):
    report = run_audit(site, config=None)
    assert report.check("completeness").status == audit.SKIP
    assert report.ok
    smaller = {**CONFIG, "weight_decays": [0.01], "architectures": ["ln"]}
    completeness = run_audit(site, config=smaller).check("completeness")
    assert completeness.status == audit.PASS
    assert "not in the grid: runs/digits/sgdm/plain/lr0.05_wd0_s0" in completeness.notes


# --------------------------------------------------------------------------- provenance

def test_config_differences_are_named(site):
    changed = {**CONFIG, "training": {**CONFIG["training"], "epochs": 3},
               "optimisers": {"sgdm": {**CONFIG["optimisers"]["sgdm"], "momentum": 0.5}}}
    problems = run_audit(site, config=changed).check("provenance").problems
    assert any(p.startswith("runs/digits/sgdm/ln/lr0.05_wd0_s0: config differs: "
                            "training.epochs: recorded 2, config 3") for p in problems)
    assert any("optimiser.momentum: recorded 0.9, config 0.5" in p for p in problems)


def test_other_training_code_fails_other_commit_is_a_note(site):
    current = provenance.code_version()
    other = {**current, "training_code_sha256": "0" * 64}
    check = run_audit(site, current_code=other).check("provenance")
    assert check.status == audit.FAIL
    assert all("made by other training code" in p for p in check.problems)
    assert len(check.problems) == N_RUNS

    same_code = {**current, "git_commit": "f" * 40, "git_dirty": False}
    check = run_audit(site, current_code=same_code).check("provenance")
    assert check.status == audit.PASS
    assert any("same training code, made at commit" in n for n in check.notes)
    strict = run_audit(site, current_code=same_code, strict_code=True).check("provenance")
    assert strict.status == audit.FAIL


def test_placeholder_or_inconsistent_provenance_fails(site):
    run_dir = _a_run(site)
    fileio.write_json(run_dir / "provenance.json", {"note": "sample"})
    other = _a_run(site, arch="plain")
    prov = fileio.read_json(other / "provenance.json")
    prov["config_values"]["model"]["width"] = 999  # hash no longer matches
    fileio.write_json(other / "provenance.json", prov)
    for d in (run_dir, other):
        fileio.write_manifest(d)
    problems = run_audit(site).check("provenance").problems
    assert any(p.startswith("runs/digits/sgdm/ln/lr0.05_wd0.01_s0/provenance.json: lacks "
                            "config_values") for p in problems)
    assert any("plain/lr0.05_wd0.01_s0/provenance.json: config_hash does not match" in p
               for p in problems)


def test_package_and_device_differences_are_notes(site):
    run_dir = _a_run(site)
    prov = fileio.read_json(run_dir / "provenance.json")
    prov["packages"]["torch"] = "2.11.0"
    prov["device_name"] = "NVIDIA H100 80GB HBM3"
    fileio.write_json(run_dir / "provenance.json", prov)
    fileio.write_manifest(run_dir)
    report = run_audit(site)
    check = report.check("provenance")
    assert check.status == audit.PASS and report.ok
    assert any(n.startswith("packages differ") and "torch: " in n and "2.11.0" in n
               for n in check.notes)
    assert any(n.startswith("device differ") and "H100" in n for n in check.notes)


# --------------------------------------------------------------------------- replay

def test_edited_loss_fails_replay_not_integrity(site):
    run_dir = _a_run(site)
    trace = runs.read_trace(run_dir)
    trace["loss"][3] *= 1.01
    runs._save_npz(run_dir / "trace.npz", trace)
    fileio.write_manifest(run_dir)
    report = run_audit(site, replay=N_RUNS)
    assert report.check("integrity").status == audit.PASS
    replay = report.check("replay")
    assert replay.status == audit.FAIL
    assert len(replay.problems) == 1
    assert replay.problems[0].startswith("runs/digits/sgdm/ln/lr0.05_wd0.01_s0: loss differs "
                                         "from trace.npz at step 3")
    assert report.failed == ["replay"]
    assert cli_audit(site, "--replay", str(N_RUNS)) == 1


def test_replay_refuses_other_data(site):
    prepared = site / "data" / "prepared" / "digits.pt"
    other = data.prepare("digits", None, n_train=500)
    data.save_prepared(other, prepared, prepared.with_suffix(".json"))
    report = run_audit(site, replay=1)
    problems = report.check("replay").problems
    assert len(problems) == 1 and "cannot replay: " in problems[0] and "sha256" in problems[0]
    assert any("is not the prepared dataset" in n for n in report.check("provenance").notes)
    shutil.rmtree(site / "data")
    problems = run_audit(site, replay=1).check("replay").problems
    assert "cannot replay: no prepared dataset at" in problems[0]


# --------------------------------------------------------------------------- claims

def test_edited_verdict_fails_claims(site, capsys):
    path = site / "results" / "claims.json"
    recorded = fileio.read_json(path)
    old = recorded["verdicts"]["C6"]
    new = "supported" if old != "supported" else "refuted"
    _set_verdict(recorded, "C6", new)
    fileio.write_json(path, recorded)
    claims = run_audit(site).check("claims")
    assert claims.status == audit.FAIL
    assert claims.problems == [f"claim C6: claims.json says {new!r}, the tables give {old!r}"]
    assert cli_audit(site) == 1
    assert "claim C6" in capsys.readouterr().out
    # half an edit (the claim entry only) is caught as an inconsistent claims.json too
    recorded["verdicts"]["C6"] = old
    fileio.write_json(path, recorded)
    problems = run_audit(site).check("claims").problems
    assert any("claims.json is inconsistent" in p for p in problems)


def test_changed_tolerances_are_a_note(site):
    path = site / "results" / "claims.json"
    recorded = fileio.read_json(path)
    recorded["tolerances"]["c6_effect"] = 0.5
    fileio.write_json(path, recorded)
    claims = run_audit(site).check("claims")
    assert claims.status == audit.PASS
    assert claims.notes == ["tolerances.c6_effect: recorded 0.5, this code 0.05"]


def test_edited_table_fails_its_recorded_hash(site):
    path = site / "results" / "tables" / "symmetry.csv"
    path.write_text(path.read_text().replace("False", "True"))
    claims = run_audit(site).check("claims")
    assert claims.problems == ["tables/symmetry.csv: sha256 differs from the one claims.json "
                               "records"]


def test_claims_without_claims_module(site, monkeypatch):
    monkeypatch.setitem(sys.modules, "wdnorm.claims", None)  # import raises ImportError
    claims = run_audit(site).check("claims")
    assert claims.status == audit.SKIP
    assert any("wdnorm.claims is not available" in n for n in claims.notes)


def _real_tables(results: Path, data_root: Path, config: dict) -> None:
    """The evaluation stage's tables of the tiny grid, written where the workflow puts
    them (results/tables/{name}.csv)."""
    from wdnorm import evaluation

    prepared = data.load_prepared(Layout(data=data_root).prepared("digits"))
    frames: dict[str, list] = {}
    for arch in config["architectures"]:
        slab = Layout(results=results).slab_dir("digits", "sgdm", arch)
        mimic = Layout(results=results).slab_dir("digits", "sgdm", arch, "mimic")
        tables = evaluation.slab_tables(sorted(slab.iterdir()), sorted(mimic.iterdir()),
                                        prepared, config["matched_pairs"],
                                        config["mimic"]["weight_decay"])
        for name, frame in tables.items():
            frames.setdefault(name, []).append(frame)
    symmetry_table, floor = evaluation.symmetry_tables(config["architectures"], config["model"],
                                                       prepared.x_train, "digits")
    identity = evaluation.gradient_identity_table(config["architectures"], config["model"],
                                                  config["training"]["batch_size"], 20, 0.05,
                                                  prepared, "digits")
    frames.update(symmetry=[symmetry_table], epsilon_floor=[floor],
                  gradient_identity=[identity])
    for name, parts in frames.items():
        fileio.write_csv(results / "tables" / f"{name}.csv", pd.concat(parts, ignore_index=True))


def test_real_claims_api(pristine, tmp_path):
    """The claims check with the real wdnorm.claims on real evaluation tables."""
    claims = pytest.importorskip("wdnorm.claims", reason="wdnorm.claims is not written yet: "
                                 "the claims check is tested with a stand-in module above")
    if not (hasattr(claims, "decide_all") and hasattr(claims, "load_tables")):
        pytest.skip("wdnorm.claims has no load_tables/decide_all yet")
    shutil.copytree(pristine / "results", tmp_path / "results")
    results = tmp_path / "results"
    shutil.rmtree(results / "tables")
    full = audit.with_config_defaults(CONFIG)
    _real_tables(results, pristine / "data", full)
    settings = {k: full[k] for k in CLAIMS_SETTINGS_KEYS}
    decided = claims.decide_all(claims.load_tables(results / "tables"), settings)
    verdicts = audit._claim_verdicts(decided)
    assert verdicts, "decide_all returned no verdicts the audit can read"
    fileio.write_json(results / "claims.json", decided)  # what the claims rule writes
    check = audit.audit(results, config=CONFIG, checks=("claims",)).check("claims")
    assert check.status == audit.PASS, check.problems
    assert check.details["tables"] == sorted(claims.TABLE_NAMES)

    recorded = fileio.read_json(results / "claims.json")
    first = sorted(verdicts)[0]
    flipped = "refuted" if verdicts[first] != "refuted" else "supported"
    _set_verdict(recorded, first, flipped)
    fileio.write_json(results / "claims.json", recorded)
    check = audit.audit(results, config=CONFIG, checks=("claims",)).check("claims")
    assert check.status == audit.FAIL
    assert check.problems == [f"claim {first}: claims.json says {flipped!r}, the tables give "
                              f"{verdicts[first]!r}"]

    table = results / "tables" / "runs.csv"
    table.write_text(table.read_text() + "\n")
    check = audit.audit(results, config=CONFIG, checks=("claims",)).check("claims")
    assert "tables/runs.csv: sha256 differs from the one claims.json records" in check.problems


# --------------------------------------------------------------------------- CLI and config

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
    assert cli.main([]) == 2


def test_cli_skip_a_check(site):
    (_a_run(site) / "extra.bin").write_bytes(b"x")
    assert cli_audit(site) == 1
    assert cli_audit(site, "--skip", "integrity") == 0


def test_config_defaults_match_the_schema():
    """audit.with_config_defaults fills what snakemake's validate fills from the schema."""
    validate = pytest.importorskip("snakemake.utils").validate
    minimal = {"weight_decays": [0.0],
               "optimisers": {"a": {"algorithm": "sgd", "lr": 0.1},
                              "b": {"algorithm": "adamw", "lr": 0.01, "beta1": 0.8}}}
    snake = json.loads(json.dumps(minimal))
    validate(snake, str(SCHEMA))
    assert audit.with_config_defaults(minimal) == snake
    partial = {**minimal, "model": {"width": 8}, "training": {"epochs": 3}}
    snake = json.loads(json.dumps(partial))
    validate(snake, str(SCHEMA))
    assert audit.with_config_defaults(partial) == snake
