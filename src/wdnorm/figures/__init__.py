"""The replication's figures: one module per figure, one registry that says what each
draws (:mod:`.registry`). Importing the package is light (no pandas, no matplotlib,
and nothing else of the package: the claims read the registry for each claim's figure,
and their code hash is the closure of what they import); a figure's module loads when
it is drawn::

    from wdnorm import figures
    from wdnorm.figures import data, style
    record = figures.get("mechanism")
    fig = record.draw(data.read_tables(paths), figures.ClaimsView.load("results/claims.json"))
    style.save_figure(fig, "figures/mechanism", ["png", "pdf"])
"""

from .claims_view import ClaimsView
from .registry import NAMES, REGISTRY, Figure, get

__all__ = ["ClaimsView", "Figure", "NAMES", "REGISTRY", "get"]
