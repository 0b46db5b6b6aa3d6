"""Thin adapter: snakemake object -> wdnorm.probes.equivalence (claim C7a), one table for
every optimiser of the config whose record has an exact LR-schedule equivalent."""
import pandas as pd
import torch

from wdnorm import data, fileio, optimisers, tasks
from wdnorm.probes.equivalence import COLUMNS, equivalence_table

tasks.setup_logging(snakemake.log[0])
torch.set_num_threads(snakemake.threads)
prepared = data.load_prepared(snakemake.input.data)
probe = snakemake.params.probe
frames = [equivalence_table(snakemake.params.architectures, settings, prepared,
                            dataset=snakemake.wildcards.dataset, optimiser=name,
                            weight_decay=snakemake.params.weight_decay,
                            steps=probe["steps"], tol=probe["tol"])
          for name, settings in snakemake.params.settings.items()
          if optimisers.get(settings["optimiser"]["algorithm"]).exact_equivalent]
fileio.write_csv(snakemake.output.table,
                 pd.concat(frames, ignore_index=True) if frames else pd.DataFrame(columns=COLUMNS))
