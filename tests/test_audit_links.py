"""Links in a results tree (or the data directory it reads) are refused and named, never
followed: a link can make a file from anywhere look like part of a run, with a manifest
entry that hashes right."""

import builtins
import io
import os
import shutil
from pathlib import Path

from test_audit import (_reseal, _run, cli_audit, pristine, run_audit,  # noqa: F401
                        site)
from wdnorm import audit, fileio
from wdnorm.layout import Layout

RUN = "runs/digits/sgdm/ln/lr0.05_wd0.01_s0_const"


def _outside(site, name="secret.txt", text="not part of any run\n") -> Path:
    """A file beside the results tree, not in it."""
    path = site / "elsewhere" / name
    path.parent.mkdir(exist_ok=True)
    path.write_text(text)
    return path


def test_a_link_listed_in_its_manifest_fails_integrity(site, capsys):
    (_run(site) / "passwd").symlink_to("/etc/passwd")
    _reseal(_run(site))  # the manifest hashes what the link points to, slab.json follows
    assert "passwd" in fileio.read_manifest(_run(site) / fileio.MANIFEST_NAME)
    report = run_audit(site)
    assert report.check("integrity").problems == [
        f"{RUN}/passwd: symbolic link to /etc/passwd, not followed (links are refused)"]
    assert report.check("integrity").details["verified"] == report.n_runs - 1
    assert cli_audit(site) == 1
    assert f"{RUN}/passwd: symbolic link" in capsys.readouterr().out


def test_a_linked_metrics_file_is_read_by_no_check(site):
    other = _outside(site, "metrics.json", (_run(site) / "metrics.json").read_text())
    (_run(site) / "metrics.json").unlink()
    (_run(site) / "metrics.json").symlink_to(other)
    _reseal(_run(site))
    report = run_audit(site)
    assert not report.ok
    assert report.check("integrity").problems == [
        f"{RUN}/metrics.json: symbolic link to {other}, not followed (links are refused)"]
    assert f"{RUN}/metrics.json: symbolic link to {other}, not followed (links are " \
           "refused)" in report.check("provenance").problems


def test_linked_directories_are_not_entered(site):
    """A run directory, or a whole dataset's runs, that is a link is no run."""
    runs = site / "results" / "runs"
    away = site / "elsewhere"
    shutil.move(str(_run(site, run="lr0.05_wd0.01_s0_const_exact")), away / "exact")
    _run(site, run="lr0.05_wd0.01_s0_const_exact").symlink_to(away / "exact")
    shutil.copytree(runs / "digits", away / "digits_copy")
    (runs / "mnist").symlink_to(away / "digits_copy")
    report = run_audit(site)
    assert report.n_runs == 6  # neither the linked run nor the linked dataset's
    assert report.check("integrity").problems == [
        f"runs/digits/sgdm/ln/lr0.05_wd0.01_s0_const_exact: symbolic link to {away / 'exact'}, "
        "not followed (links are refused)",
        f"runs/mnist: symbolic link to {away / 'digits_copy'}, not followed (links are "
        "refused)",
        "runs/digits/sgdm/ln/slab.json: member lr0.05_wd0.01_s0_const_exact has no run directory"]
    assert report.check("completeness").problems == [
        "runs/digits/sgdm/ln/lr0.05_wd0.01_s0_const_exact: a symbolic link, not followed "
        "(integrity names it)"]


def test_the_audit_opens_nothing_through_a_link(site, monkeypatch):
    secret = _outside(site)
    for name in ("notes.txt", "model.pt"):
        target = _run(site) / name
        target.unlink(missing_ok=True)
        target.symlink_to(secret)
    (site / "results" / "tables" / "runs.csv").rename(site / "elsewhere" / "runs.csv")
    (site / "results" / "tables" / "runs.csv").symlink_to(site / "elsewhere" / "runs.csv")
    _reseal(_run(site))
    opened = []

    def spy(opener):
        def wrapper(file, *args, **kwargs):
            if isinstance(file, (str, bytes, os.PathLike)):
                opened.append(os.path.realpath(file))
            return opener(file, *args, **kwargs)
        return wrapper
    monkeypatch.setattr(builtins, "open", spy(builtins.open))
    monkeypatch.setattr(io, "open", spy(io.open))
    monkeypatch.setattr(os, "open", spy(os.open))
    report = run_audit(site)
    monkeypatch.undo()
    assert opened, "the spy saw no file opened"
    assert str(secret) not in opened
    assert str(site / "elsewhere" / "runs.csv") not in opened
    assert report.check("claims").problems[0] == (
        f"tables/runs.csv: symbolic link to {site / 'elsewhere' / 'runs.csv'}, not followed "
        "(links are refused)")


def test_a_linked_prepared_dataset_is_refused(site):
    data = Layout(data=site / "data").prepared("digits")
    data.parent.mkdir(parents=True)
    data.symlink_to(_outside(site, "digits.pt"))
    check = run_audit(site).check("provenance")
    assert check.problems == [f"{data}: symbolic link to {site / 'elsewhere' / 'digits.pt'}, "
                              "not followed (links are refused)"]


def test_a_fifo_is_named_not_read(site):
    """Opening a FIFO would block the audit: it is named, not opened."""
    os.mkfifo(_run(site) / "pipe")
    check = run_audit(site).check("integrity")
    assert check.status == audit.FAIL
    assert check.problems == [f"{RUN}/pipe: not a regular file or directory, not read"]
