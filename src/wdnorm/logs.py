"""Logging of a pipeline step: to its snakemake log file and to stderr."""

from __future__ import annotations

import logging
from pathlib import Path


def setup_logging(path: str | Path | None = None) -> None:
    handlers: list[logging.Handler] = [logging.StreamHandler()]
    if path:
        Path(path).parent.mkdir(parents=True, exist_ok=True)
        handlers.append(logging.FileHandler(path, mode="w"))
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s",
                        handlers=handlers, force=True)
