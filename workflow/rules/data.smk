# Raw files -> one prepared tensor file per dataset. Local: on a cluster the login node
# downloads (compute nodes often have no internet).
#
# The job is content-addressed (wdnorm.data.store): snakemake deletes the outputs before
# rerunning it, so a stamp outside the outputs (data/prepared/.stamps/{dataset}.json)
# remembers the last content's sha256 and mtime, and identical bytes get that mtime back.

localrules:
    prepare_data,


rule prepare_data:
    output:
        pt=LAYOUT.prepared("{dataset}"),
        meta=LAYOUT.prepared_meta("{dataset}"),
    params:
        raw_dir=lambda wc: str(LAYOUT.raw_dir(wc.dataset)),
        n_train=CONFIG["n_train"],
        subset_seed=CONFIG["subset_seed"],
        n_validation=CONFIG["n_validation"],
        download=CONFIG["download"],
        # the dataset's own options: the config block named after it (mnist1d: the
        # generator's arguments); {} for datasets without one
        options=lambda wc: CONFIG.get(wc.dataset, {}),
    conda:
        CONDA_ENV
    log:
        LOGS / "prepare_data/{dataset}.log",
    script:
        "../scripts/prepare_data.py"
