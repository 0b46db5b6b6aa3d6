"""Stale run directories: a config shrunk after a run leaves directories no slab.json
lists and no check should fail on; `--remove-stale` deletes them, and only them."""

import shutil

import pytest
import yaml

from test_audit import (CONFIG, OPT, _run, cli_audit, pristine, run_audit,  # noqa: F401
                        site)
from wdnorm import audit, cli, fileio, layout
from wdnorm.layout import Layout

SEED1 = ("lr0.05_wd0_s1_const", "lr0.05_wd0.01_s1_const")


def _leave_seed_1(site) -> list[str]:
    """What a rerun after dropping seed 1 from the config leaves: seed 1's finished run
    directories, beside slabs whose slab.json (rewritten by the rerun) lists seed 0's."""
    left = []
    for arch in CONFIG["architectures"]:
        for run in SEED1:
            shutil.copytree(_run(site, arch, run.replace("_s1", "_s0")), _run(site, arch, run))
            left.append(f"runs/digits/sgdm/{arch}/{run}")
    return sorted(left)


def _write_config(site, config) -> None:
    (site / "config.yaml").write_text(yaml.safe_dump(config))


def test_directories_of_a_dropped_seed_are_stale_not_failures(site, capsys):
    left = _leave_seed_1(site)
    report = run_audit(site)
    assert report.ok, [(c.name, c.problems) for c in report.checks]
    completeness = report.check("completeness")
    assert completeness.details["stale"] == left
    assert [n for n in completeness.notes if n.startswith("stale: ")] == \
        [f"stale: {rel}" for rel in left]
    assert "--remove-stale" in completeness.notes[0]
    assert report.check("integrity").details["runs"] == report.n_runs - len(left)
    assert cli_audit(site) == 0
    assert f"stale: {left[0]}" in capsys.readouterr().out


def test_remove_stale_lists_and_removes_only_stale_directories(site, capsys):
    left = _leave_seed_1(site)
    outside = site / "outside.txt"
    outside.write_text("keep me")
    (site / "results" / left[0] / "link").symlink_to(outside)  # removed as a link
    before = {p for p in (site / "results").rglob("*") if not str(p).startswith(
        tuple(str(site / "results" / rel) for rel in left))}
    assert cli_audit(site, "--remove-stale") == 0
    out = capsys.readouterr().out
    assert [line for line in out.splitlines() if line.startswith("removed runs/")] == \
        [f"removed {rel}" for rel in left]
    assert outside.read_text() == "keep me"
    assert set((site / "results").rglob("*")) == before
    assert run_audit(site).check("completeness").details["stale"] == []


def test_remove_stale_needs_a_config(site, capsys):
    left = _leave_seed_1(site)
    assert cli.main(["audit", str(site / "results"), "--remove-stale"]) == 2
    assert "--remove-stale needs --config" in capsys.readouterr().err
    assert all((site / "results" / rel).is_dir() for rel in left)
    with pytest.raises(audit.AuditError):
        audit.remove_stale_runs(site / "results", None)


def test_remove_stale_never_follows_a_link(site):
    """A link where a stale run directory would be is named by integrity and left, with
    what it points to."""
    _leave_seed_1(site)
    away = site / "away"
    shutil.move(str(_run(site, "ln", SEED1[0])), away)
    _run(site, "ln", SEED1[0]).symlink_to(away)
    removed = audit.remove_stale_runs(site / "results", CONFIG)
    assert f"runs/digits/sgdm/ln/{SEED1[0]}" not in removed and len(removed) == 3
    assert (away / fileio.MANIFEST_NAME).is_file()
    assert _run(site, "ln", SEED1[0]).is_symlink()
    assert "symbolic link" in run_audit(site).check("integrity").problems[0]


def test_a_slab_the_config_lacks_is_stale_and_removed_whole(site, capsys):
    smaller = {**CONFIG, "architectures": ["ln"]}
    _write_config(site, smaller)
    report = run_audit(site, config=smaller)
    assert report.ok
    assert report.check("completeness").details["stale_slabs"] == ["runs/digits/sgdm/plain"]
    assert cli_audit(site, "--remove-stale") == 0
    assert "removed runs/digits/sgdm/plain/slab.json" in capsys.readouterr().out
    assert not Layout(results=site / "results").slab_dir("digits", OPT, "plain").exists()


def test_an_unlisted_directory_the_config_wants_is_not_stale(site):
    """slab.json that lacks a run of the config's grid: the slab is not the config's."""
    slab = _run(site).parent / layout.SLAB_MANIFEST
    record = fileio.read_json(slab)
    record["members"].remove("lr0.05_wd0_s0_const")
    del record["manifests"]["lr0.05_wd0_s0_const"]
    fileio.write_json(slab, record)
    report = run_audit(site)
    assert report.check("completeness").details["stale"] == []
    assert report.check("integrity").problems == [
        "runs/digits/sgdm/ln/lr0.05_wd0_s0_const: run directory not listed in slab.json"]
    assert audit.remove_stale_runs(site / "results", CONFIG) == []
