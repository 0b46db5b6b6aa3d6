"""The replication's figures: one module per figure, one registry that says what each
draws (:mod:`.registry`). Importing the package is light (no pandas, no matplotlib);
a figure's module loads when it is drawn::

    from wdnorm import figures
    record = figures.get("mechanism")
    fig = record.draw(figures.read_tables(paths), figures.ClaimsView.load("results/claims.json"))
    figures.save_figure(fig, "figures/mechanism", ["png", "pdf"])
"""

from .claims_view import ClaimsView
from .registry import NAMES, REGISTRY, Figure, get


def read_tables(paths):
    from .data import read_tables as read
    return read(paths)


def save_figure(fig, stem, formats=("png",), dpi: int = 150):
    from .style import save_figure as save
    return save(fig, stem, formats, dpi)


__all__ = ["ClaimsView", "Figure", "NAMES", "REGISTRY", "get", "read_tables", "save_figure"]
