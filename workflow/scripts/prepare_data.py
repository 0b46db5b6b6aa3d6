"""Thin adapter: snakemake object -> wdnorm.data.prepare + save_prepared.

save_prepared is content-addressed: identical bytes keep the previous mtime (see
wdnorm.data.store), so re-running this job without a change in the data does not
make the training outputs built from it look stale.
"""
import logging

from wdnorm import data, fileio, tasks

tasks.setup_logging(snakemake.log[0])
variant = snakemake.params.variant
prepared = data.prepare(variant["dataset"], snakemake.params.raw_dir,
                        n_train=variant["n_train"], subset_seed=variant["subset_seed"],
                        n_validation=variant["n_validation"],
                        download=snakemake.params.download, options=variant["options"])
unchanged = data.save_prepared(prepared, snakemake.output.pt, snakemake.output.meta)
logging.getLogger("wdnorm").info(
    "prepared %s: %d train / %d validation / %d test, d_in=%d, sha256 %s (%s)",
    snakemake.wildcards.dataset, prepared.meta["n_train"], prepared.meta["n_validation"],
    prepared.meta["n_test"], prepared.meta["d_in"],
    fileio.read_json(snakemake.output.meta)["sha256"],
    "same bytes as before: previous mtime kept" if unchanged else "new content")
