"""The results as data, for a reader with Python: the tidy tables, the verdicts and any
trained network, loaded from a results directory (docs/outputs.md says what each holds
and in which units)::

    from wdnorm import outputs
    tables = outputs.load_tables("results")            # {"runs": DataFrame, ...}
    claims = outputs.load_claims("results")            # claims.json as a dict
    curves = tables["history"].query("arch == 'ln' and protocol == 'main'")
    net = outputs.load_model("results", "mnist1d", "sgdm", "ln", "lr0.1_wd0.003_s0_cos0.3")

Nothing read here is executed: the tables are CSV, claims.json is JSON, a network is
rebuilt from its recorded slab settings and its weights are read with
``torch.load(weights_only=True)``.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from . import fileio
from .frames import read_table
from .layout import Layout


def load_tables(results: str | Path = "results") -> dict[str, pd.DataFrame]:
    """Every table of ``results/tables/*.csv`` by name (runs, history, effects, dynamics,
    penalty, ...): fractions for accuracies, nats for losses (docs/outputs.md)."""
    folder = Layout(results=Path(results)).table("runs").parent
    return {path.stem: read_table(path) for path in sorted(folder.glob("*.csv"))}


def load_claims(results: str | Path = "results") -> dict:
    """``results/claims.json``: the answer, every claim's verdict, test, n, rule,
    tolerance, stability and measurements (keys: docs/outputs.md)."""
    return fileio.read_json(Layout(results=Path(results)).claims)


def load_model(results: str | Path, dataset: str, optimiser: str, arch: str, run_id: str):
    """One trained network, in evaluation mode, as the ordinary ``wdnorm.models.MLP``
    module it was trained as (an exact equivalent with the ε it ended at)."""
    from . import runs

    return runs.load_model(Layout(results=Path(results)).run_dir(dataset, optimiser, arch,
                                                                 run_id))
