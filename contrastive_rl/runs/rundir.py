"""The run directory's life cycle: create, reopen, resume or refuse it; its storage errors.

Layout of a run directory::

    config.json                      the resolved Config of the run (written first)
    metrics.jsonl                    one JSON object per logged record, appended and flushed
    metrics.csv                      the same records as CSV (header = union of all keys)
    evaluations.jsonl                re-evaluations of its checkpoints by ``crl eval``
    tb/events.out.tfevents.*         TensorBoard scalars, step = record["env_steps"] (offline
                                     runs: record["grad_steps"])
    checkpoint.msgpack, .json        the latest checkpoint (contrastive_rl.runs.checkpoint)
    .crl.lock                        flock held by the process writing the run (its PID)

What :func:`prepare` does with an existing directory (so that nothing written is silently lost):

=====================================  ===========  ============================================
directory holds                        flags        outcome
=====================================  ===========  ============================================
nothing (or does not exist)            none         fresh run
nothing                                --resume     RunDirError naming the path: nothing to resume
a run, same config, no checkpoint      none         fresh run (its old logs are removed: a run
                                                    that never checkpointed has nothing to keep)
a run, same config, a checkpoint       none         RunDirError: pass --resume or --overwrite
a run, different config                none         RunDirError listing the differing fields:
                                                    pass --resume or --overwrite
a run (any config)                     --resume     continue with the *directory's* config (the
                                                    given one is ignored); ``RunDir.resume`` is
                                                    True when there is a checkpoint to restore,
                                                    else the run restarts from step 0 with the
                                                    stored config and its old logs are removed
checkpoint.json without its .msgpack   any but      RunDirError: the checkpoint data is missing;
                                       --overwrite  nothing is deleted
a run another process is writing       any          RunDirError naming that process's PID
a run, or leftover run files           --overwrite  the old run's files (config, metrics,
                                                    evaluations, tb/, checkpoint) are deleted;
                                                    fresh run. Files this package does not
                                                    write are kept.
run files but no config.json           none         RunDirError: pass --overwrite
=====================================  ===========  ============================================

``--resume`` together with ``--overwrite`` is refused. While a run writes to its directory it
holds an exclusive ``flock`` on ``.crl.lock`` there (the :class:`RunDir` returned by
:func:`prepare` holds it until ``release``, or until the process ends, however it ends).
"Same config" ignores the ``run_dir`` field (the place, not the experiment; the stored
config.json records the directory it was written to) and the ``wandb*`` fields (where the scalars
are mirrored).
"""

from __future__ import annotations

import contextlib
import dataclasses
import errno
import json
import os
import shutil
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field

from contrastive_rl.config import Config
from contrastive_rl.errors import RunDirError, StorageError
from contrastive_rl.runs.config_files import (
    CONFIG_FILE,
    config_differences,
    config_json,
    extend_budget,
    load_config,
)
from contrastive_rl.runs.files import DATA_FILE, META_FILE, atomic_write, has_checkpoint, remove
from contrastive_rl.runs.lock import RunLock
from contrastive_rl.runs.metrics import EVALUATIONS_JSONL, METRICS_CSV, METRICS_JSONL, TB_DIR

# Everything a run writes; --overwrite deletes exactly these (and their temporary files).
LOG_FILES = (METRICS_JSONL, METRICS_CSV, EVALUATIONS_JSONL)
RUN_FILES = (CONFIG_FILE, *LOG_FILES, DATA_FILE, META_FILE)


def default_run_dir(config: Config) -> str:
    """``config.run_dir``, or ``runs/<env>-<alg>-s<seed>`` when it is empty."""
    if config.run_dir:
        return config.run_dir
    return os.path.join("runs", f"{config.env}-{config.alg}-s{config.seed}")


@dataclass(frozen=True)
class RunDir:
    """A prepared run directory (see :func:`prepare`), locked for this process.

    Attributes:
        path: the directory.
        config: the config to run: the given one, or on ``--resume`` the directory's.
        resume: True when a checkpoint is there to restore (only on ``--resume``); open the
            metrics with ``MetricsLogger(path, resume=True)`` and call ``truncate_after`` with
            the checkpoint's env_steps.
        lock: the directory's lock; :meth:`release` it when the run ends (it is also released
            when this object is garbage-collected or the process ends).
    """

    path: str
    config: Config
    resume: bool
    lock: RunLock | None = field(default=None, repr=False, compare=False)

    def release(self) -> None:
        if self.lock is not None:
            self.lock.release()

    def __enter__(self) -> RunDir:
        return self

    def __exit__(self, *exc: object) -> None:
        self.release()


def _remove_temps(path: str, names: Iterable[str]) -> None:
    for entry in os.listdir(path):
        if entry.endswith(".tmp") and any(entry.startswith(f".{n}.") for n in names):
            remove(os.path.join(path, entry))


def _remove_logs(path: str) -> None:
    for name in (*LOG_FILES, TB_DIR):
        remove(os.path.join(path, name))
    _remove_temps(path, LOG_FILES)


def _remove_run(path: str) -> None:
    for name in (*RUN_FILES, TB_DIR):
        remove(os.path.join(path, name))
    _remove_temps(path, RUN_FILES)


def _leftovers(path: str) -> list[str]:
    return [n for n in (*RUN_FILES, TB_DIR) if os.path.exists(os.path.join(path, n))]


def _missing_checkpoint_data(path: str) -> str | None:
    """The refusal when checkpoint.json is there but its data file is not, else None."""
    if has_checkpoint(path) or not os.path.isfile(os.path.join(path, META_FILE)):
        return None
    steps = checkpoint_env_steps(path)
    said = f" (checkpoint.json says {steps} env steps)" if steps is not None else ""
    return (
        f"{os.path.join(path, DATA_FILE)} is missing{said}, so the run cannot continue; nothing "
        f"was changed. Restore the file, or start over on purpose with the run's flags and "
        f"--overwrite (this deletes its metrics and checkpoint)"
    )


def checkpoint_env_steps(path: str) -> int | None:
    """The env steps checkpoint.json records, or None when it is absent or unreadable."""
    try:
        with open(os.path.join(path, META_FILE), encoding="utf-8") as f:
            meta = json.load(f)
        return int(meta.get("progress", {}).get("env_steps", meta["step"]))
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        return None


def prepare(
    path: str | os.PathLike[str] | None,
    config: Config,
    resume: bool = False,
    overwrite: bool = False,
) -> RunDir:
    """Create or reopen the run directory ``path`` (None or "": :func:`default_run_dir`).

    Writes ``config.json`` (atomically) unless resuming; a resume whose ``config`` has a larger
    ``steps`` extends the run's budget (:func:`extend_budget`) and rewrites it. The outcome for
    an existing directory is the table in this module's docstring: a different config, or the same
    config with a checkpoint, is refused unless ``resume`` or ``overwrite``.

    Returns:
        The :class:`RunDir`; its ``config`` is the one to run (on resume, the stored one, with
        ``run_dir`` set to ``path``).

    Raises:
        RunDirError: refusals (the message names the path and the flag to pass).
    """
    path = os.fspath(path) if path else default_run_dir(config)
    if resume and overwrite:
        raise RunDirError("--resume and --overwrite exclude each other: pass one of them")
    if os.path.exists(path) and not os.path.isdir(path):
        raise RunDirError(f"run directory {path} exists and is not a directory")
    config_file = os.path.join(path, CONFIG_FILE)
    if resume and not os.path.isfile(config_file):
        raise RunDirError(
            f"--resume: there is no run to resume in {path} (no {CONFIG_FILE}); "
            "leave out --resume to start one there"
        )
    created = not os.path.isdir(path)
    os.makedirs(path, exist_ok=True)
    lock = RunLock(path)  # before anything is read to decide, or deleted
    try:
        config, resume = _prepare_locked(path, config, resume, overwrite)
    except BaseException:
        lock.release()
        if created:  # a refused or failed start leaves no half-made directory behind
            shutil.rmtree(path, ignore_errors=True)
        raise
    return RunDir(path, config, resume, lock)


def _prepare_locked(
    path: str, config: Config, resume: bool, overwrite: bool
) -> tuple[Config, bool]:
    """:func:`prepare` once the lock is held: the config to run and whether to restore."""
    config_file = os.path.join(path, CONFIG_FILE)
    given = dataclasses.replace(config, run_dir=path)
    has_run = os.path.isfile(config_file)
    missing_data = None if overwrite else _missing_checkpoint_data(path)
    if missing_data:
        raise RunDirError(missing_data)

    if resume:
        stored = dataclasses.replace(load_config(config_file), run_dir=path)
        if given.steps > stored.steps:  # --resume --steps: the budget extended
            stored = extend_budget(stored, given.steps)
            atomic_write(config_file, config_json(stored))
        if has_checkpoint(path):
            return stored, True
        # A run that never checkpointed: restart it from step 0 with its own config.
        _remove_logs(path)
        return stored, False

    if overwrite:
        _remove_run(path)
    elif has_run:
        stored = load_config(config_file)
        diffs = config_differences(stored, given)
        if diffs:
            raise RunDirError(
                f"{path} already holds a run with a different config ("
                + "; ".join(f"{d}" for d in diffs)
                + "). Pass --resume to continue that run with its own config, --overwrite to "
                "delete it and start this one, or choose another --run_dir"
            )
        if has_checkpoint(path):
            raise RunDirError(
                f"{path} already holds this run with a checkpoint. Pass --resume to continue it, "
                "--overwrite to delete it and start again, or choose another --run_dir"
            )
        _remove_run(path)  # same config, never checkpointed: nothing worth keeping
    elif os.path.isdir(path) and _leftovers(path):
        raise RunDirError(
            f"{path} holds files of a run ({', '.join(_leftovers(path))}) but no {CONFIG_FILE}. "
            "Pass --overwrite to delete them, or choose another --run_dir"
        )

    atomic_write(config_file, config_json(given))
    return given, False


# -- file-system errors -------------------------------------------------------------------------

# What the file system says when a run cannot write (or read) its directory.
STORAGE_ERRNOS = frozenset(
    {
        errno.EACCES,
        errno.EPERM,
        errno.EROFS,
        errno.ENOSPC,
        errno.EDQUOT,
        errno.EFBIG,
        errno.ENOTDIR,
        errno.EISDIR,
        errno.EEXIST,
        errno.ENOENT,
        errno.ENAMETOOLONG,
        errno.EIO,
    }
)


def storage_error(error: OSError, path: str) -> StorageError:
    """One line: the path and the cause, what the last checkpoint holds, how to continue."""
    where = error.filename or path
    cause = error.strerror or str(error)
    steps = checkpoint_env_steps(path) if has_checkpoint(path) else None
    if steps is not None:
        after = (
            f"the last checkpoint ({steps} env steps) is intact; fix this, then continue with "
            f"`crl train --resume {path}`"
        )
    elif has_checkpoint(path):
        after = f"the last checkpoint is intact; fix this, then `crl train --resume {path}`"
    else:
        after = "no checkpoint was written; fix this and start the run again"
    return StorageError(f"file-system error at {where}: {cause}; {after}")


@contextlib.contextmanager
def storage_errors(path: str) -> Iterator[None]:
    """Turn a file-system error of the run in ``path`` into a :class:`StorageError`."""
    try:
        yield
    except OSError as error:
        if error.errno not in STORAGE_ERRNOS:
            raise
        raise storage_error(error, path) from error
