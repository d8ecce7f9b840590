"""Errors that end a run with a message for the user; plain Python, so the CLI can catch them
without importing the training stack."""

from __future__ import annotations


class WorkerError(RuntimeError):
    """A worker process crashed, hung, or its environment raised."""
