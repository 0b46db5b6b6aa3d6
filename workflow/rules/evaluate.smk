# Evaluation: symmetry probes (C1), the gradient identity probe (C3), per-slab tables of
# trained runs (metrics, dynamics, removable penalty), then one tidy table of each kind.

EVAL_CODE = source_hash(["evaluation", "symmetry", "models", "archs", "engine", "runs"])

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
        model=config["model"],
        code=EVAL_CODE,
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
        model=config["model"],
        batch_size=config["training"]["batch_size"],
        probe=config["gradient_identity"],
        code=EVAL_CODE,
    threads: config["threads"]
    conda:
        CONDA_ENV
    log:
        LOGS / "gradient_identity/{dataset}.log",
    script:
        "../scripts/gradient_identity.py"


rule evaluate_slab:
    input:
        data=LAYOUT.prepared("{dataset}"),
        runs=lambda wc: slab_files(wc, "runs", ("metrics.json", "trace.npz", "model.pt")),
        mimic=lambda wc: slab_files(wc, "mimic", ("metrics.json", "trace.npz")),
    output:
        **{name: LAYOUT.table(f"{{dataset}}/{{optimiser}}/{{arch}}/{name}") for name in SLAB_TABLES},
    params:
        matched_pairs=config.get("matched_pairs", []),
        mimic_weight_decay=config["mimic"]["weight_decay"],
        code=EVAL_CODE,
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
