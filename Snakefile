# Replication pipeline for "weight decay is useless without residual connections".
# `snakemake --cores all` runs: prepare data -> train slabs -> evaluate -> claims ->
# figures -> report. See README.md and docs/.

import os
import sys

# The checkout's own package, first on the path of the controller and of every job, so
# both import the code the rules' code hashes are computed from (an installed wdnorm of
# another clone must not win in one and lose in the other).
REPO_DIR = workflow.basedir  # this file's directory (also when run with -s from elsewhere)
SRC = os.path.join(REPO_DIR, "src")
sys.path.insert(0, SRC)
os.environ["PYTHONPATH"] = os.pathsep.join(
    p for p in (SRC, os.environ.get("PYTHONPATH")) if p
)


# Declared, so that executors that start jobs elsewhere (SLURM) pass it on to them.
envvars:
    "PYTHONPATH",


# A YAML syntax error in config.yaml named with its line, before snakemake reads it.
from snakemake.exceptions import WorkflowError  # noqa: E402
from wdnorm.config import read_yaml  # noqa: E402

if os.path.exists("config.yaml"):
    try:
        read_yaml("config.yaml")
    except ValueError as error:
        raise WorkflowError(str(error)) from None


configfile: "config.yaml"


report: "workflow/report/workflow.rst"


include: "workflow/rules/common.smk"
include: "workflow/rules/data.smk"
include: "workflow/rules/train.smk"
include: "workflow/rules/evaluate.smk"
include: "workflow/rules/claims.smk"
include: "workflow/rules/figures.smk"


rule all:
    default_target: True
    input:
        rules.claims.output,
        rules.figures.input,


# The end of a run: the answer, the verdicts, where everything is, and where the time
# went (from the jobs' logs).
onsuccess:
    from wdnorm import timing
    from wdnorm.claims.render import closing_summary
    from wdnorm.fileio import read_json

    if LAYOUT.claims.exists():
        print(closing_summary(read_json(LAYOUT.claims), {
            "verdicts": f"{LAYOUT.claims_markdown} and {LAYOUT.claims}",
            "tables": str(LAYOUT.table("runs").parent),
            "figures": str(LAYOUT.figures),
            "report": "snakemake --report report.html",
        }))
    _log = timing.latest_log(Path("."))
    if _log is not None:
        print(f"\nTime budget:\n{timing.render(timing.budget(Path('.'), _log))}")

