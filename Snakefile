# Replication pipeline for "weight decay is useless without residual connections".
# `snakemake --cores all` runs: prepare data -> train slabs -> evaluate -> claims ->
# figures -> report. See README.md and docs/.

import os
import sys

# The checkout's own package, for a snakemake (or a --sdm conda env) that has not
# pip-installed it; appended, so an installed or PYTHONPATH-given wdnorm wins.
REPO_DIR = workflow.basedir  # this file's directory (also when run with -s from elsewhere)
SRC = os.path.join(REPO_DIR, "src")
sys.path.append(SRC)
os.environ["PYTHONPATH"] = os.pathsep.join(
    p for p in (os.environ.get("PYTHONPATH"), SRC) if p
)

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
