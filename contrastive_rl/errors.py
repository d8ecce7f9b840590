"""Errors that end a run with a message for the user; plain Python, so the CLI can catch them
without importing the training stack."""

from __future__ import annotations


class InputError(ValueError):
    """Input refused before anything was written: a flag or value, a file or run directory that
    cannot be used as asked. ``crl`` reports it in one line and exits 2; any other exception
    raised while training is a bug and keeps its traceback."""


class MissingInputError(InputError, FileNotFoundError):
    """A run directory, config or checkpoint that the command names does not exist."""


class WorkerError(RuntimeError):
    """A worker process crashed, hung, or its environment raised."""


class ConfigError(InputError):
    """A configuration value that cannot run; the message names the field and the valid choices."""


class RunDirError(InputError):
    """A run directory that cannot be used as asked; the message says which flag to pass."""


class StorageError(RuntimeError):
    """The file system refused a read or write of the run (full, read-only, not a directory).

    The message is one line: the path, the cause, whether the last checkpoint is intact and how
    to continue.
    """
