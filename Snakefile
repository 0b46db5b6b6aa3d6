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
