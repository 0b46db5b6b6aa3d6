# Replication pipeline for "weight decay is useless without residual connections".
# `snakemake --cores all` runs: prepare data -> train slabs -> evaluate -> claims ->
# figures. See README.md and DESIGN.md.

configfile: "config.yaml"


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
        figure_outputs(),
