"""SIGINT and SIGTERM handled for the length of a ``with`` block (a run, a sweep); plain Python."""

from __future__ import annotations

import signal
from typing import Any


class StopSignals:
    """Installs ``self.handle`` for SIGINT and SIGTERM on entry, restores the old ones on exit.

    Outside the main thread signals cannot be handled and keep their handlers. Subclasses say
    what a signal does (``handle``); ``signal`` is the last one received.
    """

    def __init__(self) -> None:
        self.signal: int | None = None
        self._previous: dict[int, Any] = {}

    def __enter__(self) -> StopSignals:
        for sig in (signal.SIGINT, signal.SIGTERM):
            try:
                self._previous[sig] = signal.signal(sig, self.handle)
            except ValueError:  # not the main thread
                pass
        return self

    def handle(self, signum: int, frame: Any) -> None:
        self.signal = signum

    def __exit__(self, *exc: Any) -> None:
        for sig, handler in self._previous.items():
            signal.signal(sig, handler)
