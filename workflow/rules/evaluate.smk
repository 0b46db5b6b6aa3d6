# Evaluation: symmetry probes (C1), the gradient identity probe (C3), per-slab tables of
# trained runs (metrics, dynamics, removable penalty), then one tidy table of each kind.

localrules:
    aggregate_tables,


rule symmetry_probes:
    input:
        data=LAYOUT.prepared("{dataset}"),
    output:
        symmetry=LAYOUT.table("{dataset}/symmetry"),
        epsilon_floor=LAYOUT.table("{dataset}/epsilon_floor"),
    params:
        architectures=ARCHS,
        model=CONFIG["model"],
        code=script_code("symmetry_probes.py"),
    conda:
        CONDA_ENV
    log:
        LOGS / "symmetry_probes/{dataset}.log",
    script:
        "../scripts/symmetry_probes.py"


rule gradient_identity:
    input:
        data=LAYOUT.prepared("{dataset}"),
    output:
        table=LAYOUT.table("{dataset}/gradient_identity"),
    params:
        architectures=ARCHS,
        model=CONFIG["model"],
        batch_size=CONFIG["training"]["batch_size"],
        probe=CONFIG["gradient_identity"],
        code=script_code("gradient_identity.py"),
    threads: CONFIG["threads"]
    conda:
        CONDA_ENV
    log:
        LOGS / "gradient_identity/{dataset}.log",
    script:
        "../scripts/gradient_identity.py"


# One slab's tables from its slab.json (written last by train_slab; it lists the members,
# whose run directories sit beside it), so every run kind of the slab is read together.
rule evaluate_slab:
    input:
        data=LAYOUT.prepared("{dataset}"),
        slab=LAYOUT.slab_manifest("{dataset}", "{optimiser}", "{arch}"),
    output:
        **{name: LAYOUT.table(f"{{dataset}}/{{optimiser}}/{{arch}}/{name}") for name in SLAB_TABLES},
    params:
        matched_pairs=CONFIG["matched_pairs"],
        curve_weight_decay=CONFIG["claims"]["weight_decay"],
        code=script_code("evaluate_slab.py"),
    conda:
        CONDA_ENV
    log:
        LOGS / "evaluate_slab/{dataset}/{optimiser}/{arch}.log",
    script:
        "../scripts/evaluate_slab.py"


rule aggregate_tables:
    input:
        **{name: tables_to_aggregate(name) for name in TABLES},
    output:
        **{name: LAYOUT.table(name) for name in TABLES},
    conda:
        CONDA_ENV
    log:
        LOGS / "aggregate_tables.log",
    script:
        "../scripts/aggregate_tables.py"
