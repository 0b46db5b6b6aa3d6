# Raw files -> one prepared tensor file per dataset. Local: on a cluster the login node
# downloads (compute nodes often have no internet).

localrules:
    prepare_data,


rule prepare_data:
    output:
        pt=LAYOUT.prepared("{dataset}"),
        meta=LAYOUT.prepared_meta("{dataset}"),
    params:
        raw_dir=lambda wc: str(LAYOUT.raw_dir(wc.dataset)),
        n_train=config.get("n_train"),
        subset_seed=config.get("subset_seed", 0),
        download=config.get("download", True),
    conda:
        CONDA_ENV
    log:
        LOGS / "prepare_data/{dataset}.log",
    script:
        "../scripts/prepare_data.py"
