"""Stop requests: SIGTERM (what SLURM sends before its SIGKILL at a time limit, and what
``kill`` sends) or SIGINT asks a training slab to stop at the next step boundary, save
its checkpoint and exit non-zero, so the rerun or the scheduler's retry resumes."""

from __future__ import annotations

import signal
import threading
from contextlib import contextmanager


class StopRequested(Exception):
    """A slab stopped on request after saving its checkpoint (the job must fail: its
    outputs are incomplete, and a rerun resumes from the checkpoint)."""


class StopRequest:
    """Set once a stop is asked for; the trainer reads it after every step."""

    def __init__(self) -> None:
        self.reason: str | None = None

    def ask(self, reason: str) -> None:
        self.reason = reason

    def __bool__(self) -> bool:
        return self.reason is not None


@contextmanager
def on_signals(signals=(signal.SIGTERM, signal.SIGINT)):
    """A :class:`StopRequest` set by ``signals`` while the block runs (only the main
    thread can install handlers; elsewhere the request is never set)."""
    request = StopRequest()
    if threading.current_thread() is not threading.main_thread():
        yield request
        return
    previous = {}
    for sig in signals:
        previous[sig] = signal.signal(
            sig, lambda number, _frame: request.ask(signal.Signals(number).name))
    try:
        yield request
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
