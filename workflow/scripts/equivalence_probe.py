"""Thin adapter: snakemake object -> wdnorm.probes.equivalence (claim C7a), one table for
every SGD optimiser of the config (Adam/AdamW have no exact equivalent)."""
import pandas as pd
import torch

from wdnorm import data, fileio, tasks
from wdnorm.probes.equivalence import COLUMNS, equivalence_table

tasks.setup_logging(snakemake.log[0])
torch.set_num_threads(snakemake.threads)
prepared = data.load_prepared(snakemake.input.data)
probe = snakemake.params.probe
frames = [equivalence_table(snakemake.params.architectures, snakemake.params.model, prepared,
                            dataset=snakemake.wildcards.dataset, optimiser=name, lr=opt["lr"],
                            weight_decay=snakemake.params.weight_decay,
                            momentum=opt.get("momentum", 0.0),
                            batch_size=snakemake.params.batch_size, steps=probe["steps"],
                            tol=probe["tol"], lr_schedule=snakemake.params.lr_schedule,
                            lr_decay_fraction=snakemake.params.lr_decay_fraction)
          for name, opt in snakemake.params.optimisers.items() if opt["algorithm"] == "sgd"]
fileio.write_csv(snakemake.output.table,
                 pd.concat(frames, ignore_index=True) if frames else pd.DataFrame(columns=COLUMNS))
