"""The run directory of a training run: its config, its metrics, its checkpoint.

Layout of a run directory::

    config.json                      the resolved Config of the run (written first)
    metrics.jsonl                    one JSON object per logged record, appended and flushed
    metrics.csv                      the same records as CSV (header = union of all keys)
    tb/events.out.tfevents.*         TensorBoard scalars, step = record["env_steps"] (offline
                                     runs: record["grad_steps"])
    checkpoint.msgpack, .json        the latest checkpoint (contrastive_rl.checkpoint)
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
a run, or leftover run files           --overwrite  the old run's files (config, metrics, tb/,
                                                    checkpoint) are deleted; fresh run. Files
                                                    this package does not write are kept.
run files but no config.json           none         RunDirError: pass --overwrite
=====================================  ===========  ============================================

``--resume`` together with ``--overwrite`` is refused. While a run writes to its directory it
holds an exclusive ``flock`` on ``.crl.lock`` there (the :class:`RunDir` returned by
:func:`prepare` holds it until ``release``, or until the process ends, however it ends).
"Same config" ignores the ``run_dir`` field (the place, not the experiment; the stored
config.json records the directory it was written to) and the ``wandb*`` fields (where the scalars
are mirrored).

Metrics: non-finite floats are written to JSONL as the strings ``"NaN"``, ``"Infinity"`` and
``"-Infinity"`` (the file stays strict JSON, and NaN stays distinguishable from a diverged +-inf);
:func:`read_metrics` turns them back into floats. In CSV they are ``nan``, ``inf``, ``-inf``
(what Python's ``float()`` and pandas read). A key a record lacks is absent from its JSONL line
and an empty CSV cell; a ``None`` value is ``null`` in JSONL and an empty CSV cell.
"""

from __future__ import annotations

import contextlib
import csv
import dataclasses
import errno
import fcntl
import io
import json
import math
import numbers
import os
import shutil
import warnings
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

import numpy as np

from contrastive_rl.config import FIELDS, Config, ConfigError, coerce_values
from contrastive_rl.errors import InputError, MissingInputError
from contrastive_rl.files import DATA_FILE, META_FILE, atomic_write, has_checkpoint

CONFIG_FILE = "config.json"
METRICS_JSONL = "metrics.jsonl"
METRICS_CSV = "metrics.csv"
TB_DIR = "tb"
LOCK_FILE = ".crl.lock"
STEP_KEY = "env_steps"

# Everything a run writes; --overwrite deletes exactly these (and their temporary files).
RUN_FILES = (CONFIG_FILE, METRICS_JSONL, METRICS_CSV, DATA_FILE, META_FILE)
LOG_FILES = (METRICS_JSONL, METRICS_CSV)
# Ignored when comparing a stored config with a new one: where the run is written and where its
# scalars are mirrored, not what it computes.
IGNORED_FIELDS = ("run_dir", "wandb", "wandb_project", "wandb_name", "wandb_mode")


class RunDirError(InputError):
    """A run directory that cannot be used as asked; the message says which flag to pass."""


class StorageError(RuntimeError):
    """The file system refused a read or write of the run (full, read-only, not a directory).

    The message is one line: the path, the cause, whether the last checkpoint is intact and how
    to continue.
    """


# -- config -----------------------------------------------------------------------------------


def default_run_dir(config: Config) -> str:
    """``config.run_dir``, or ``runs/<env>-<alg>-s<seed>`` when it is empty."""
    if config.run_dir:
        return config.run_dir
    return os.path.join("runs", f"{config.env}-{config.alg}-s{config.seed}")


def _config_json(config: Config) -> str:
    return json.dumps(config.to_dict(), indent=2) + "\n"


def config_from_dict(values: Mapping[str, Any], source: str = "config") -> Config:
    """Rebuild a Config from its ``to_dict()`` after a JSON round trip.

    Values are read as :func:`contrastive_rl.config.coerce_values` says (lists to tuples, integers
    to floats where the field is a float); fields missing from ``values`` take their defaults.

    Raises:
        RunDirError: unknown fields. ConfigError: a value that does not validate.
    """
    unknown = [k for k in values if k not in FIELDS]
    if unknown:
        raise RunDirError(
            f"{source} has fields this version does not know: {', '.join(sorted(unknown))}"
        )
    kwargs = coerce_values(values, source)
    try:
        return Config(**kwargs)
    except ConfigError as e:
        raise ConfigError(f"{source}: {e}") from e
    except TypeError as e:
        raise RunDirError(f"{source} is not a valid config: {e}") from e


def load_config(path: str | os.PathLike[str]) -> Config:
    """The Config stored in a run directory (``path`` is the directory or its config.json).

    Raises:
        FileNotFoundError: no config.json there. RunDirError: not readable as a config.
    """
    path = os.fspath(path)
    file = os.path.join(path, CONFIG_FILE) if os.path.isdir(path) else path
    if not os.path.isfile(file):
        raise MissingInputError(f"no run config at {file}")
    try:
        with open(file, encoding="utf-8") as f:
            values = json.load(f)
    except (OSError, json.JSONDecodeError) as e:
        raise RunDirError(f"cannot read the run config {file}: {e}") from e
    if not isinstance(values, dict):
        raise RunDirError(f"the run config {file} is not a JSON object")
    return config_from_dict(values, source=file)


def extend_budget(config: Config, steps: int) -> Config:
    """``config`` with a larger budget of ``steps``, for ``--resume --steps``.

    Only a constant ``lr_schedule`` can be extended: a decaying one is laid over the budget, so a
    new budget would change the rates of the steps still to come and no longer match a run
    planned for it. Nothing else in a run depends on its total budget.

    Raises:
        ConfigError: ``steps`` not larger than the run's budget, or a decaying schedule.
    """
    if isinstance(steps, bool) or not isinstance(steps, int) or steps <= config.steps:
        raise ConfigError(
            f"--steps with --resume extends the run's budget: give more than its {config.steps} "
            f"steps (got {steps!r})"
        )
    if config.lr_schedule != "constant":
        raise ConfigError(
            f"this run's lr_schedule {config.lr_schedule!r} decays over its budget of "
            f"{config.steps} steps; a longer budget would change its learning rates. Only runs "
            "with lr_schedule 'constant' can be extended"
        )
    return dataclasses.replace(config, steps=steps)


def budget_fields(config: Config) -> tuple[str, ...]:
    """Fields that may differ between a checkpoint's config and the run's: the extendable budget."""
    return ("steps",) if config.lr_schedule == "constant" else ()


def config_differences(stored: Config, given: Config) -> list[str]:
    """``'field: stored -> given'`` for each field that differs (``run_dir`` ignored)."""
    out = []
    for f in dataclasses.fields(Config):
        if f.name in IGNORED_FIELDS:
            continue
        a, b = getattr(stored, f.name), getattr(given, f.name)
        if a != b:
            out.append(f"{f.name}: {a!r} -> {b!r}")
    return out


def _as_json(values: Mapping[str, Any]) -> dict[str, Any]:  # tuples as lists, as saved
    return json.loads(json.dumps(dict(values)))


def with_defaults(saved: Mapping[str, Any]) -> dict[str, Any]:
    """A saved config's JSON values, with the default of each field added since it was saved."""
    return {**_as_json({f.name: f.default for f in dataclasses.fields(Config)}), **saved}


def stored_config_differences(saved: Mapping[str, Any], config: Config) -> list[str]:
    """``'field: saved -> config'`` for each field where a checkpoint's saved config (a dict
    from its JSON metadata) and ``config`` differ (``run_dir`` and an extended budget ignored)."""
    saved = with_defaults(saved)
    return [
        f"{name}: {saved[name]!r} -> {value!r}"
        for name, value in _as_json(config.to_dict()).items()
        if name not in IGNORED_FIELDS + budget_fields(config) and saved[name] != value
    ]


# -- the directory ----------------------------------------------------------------------------


class RunLock:
    """An exclusive ``flock`` on ``<path>/.crl.lock``, so that one process at a time writes a run.

    The file holds the PID of the holder, for the refusal message. The kernel drops the lock
    when the process ends, however it ends, so a killed run never leaves its directory locked.
    The file itself stays (removing it would let two processes lock two different files).
    """

    def __init__(self, path: str):
        self._fd: int | None = None
        file = os.path.join(path, LOCK_FILE)
        fd = os.open(file, os.O_RDWR | os.O_CREAT, 0o666)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.read(fd, 32).decode("ascii", "replace").strip() or "unknown"
            os.close(fd)
            raise RunDirError(
                f"{path} is in use by another run (process {holder}); wait for it to end, or "
                f"stop it (Ctrl-C, or kill {holder}: it saves a checkpoint) and then "
                f"`crl train --resume {path}`"
            ) from None
        except BaseException:
            os.close(fd)
            raise
        os.ftruncate(fd, 0)
        os.write(fd, f"{os.getpid()}\n".encode())
        self._fd = fd

    def release(self) -> None:
        if self._fd is not None:
            os.close(self._fd)  # closing the descriptor drops the lock
            self._fd = None

    def __del__(self) -> None:
        self.release()


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


def _remove(path: str) -> None:
    if os.path.isdir(path) and not os.path.islink(path):
        shutil.rmtree(path)
    else:
        with contextlib.suppress(FileNotFoundError):
            os.remove(path)


def _remove_temps(path: str, names: Iterable[str]) -> None:
    for entry in os.listdir(path):
        if entry.endswith(".tmp") and any(entry.startswith(f".{n}.") for n in names):
            _remove(os.path.join(path, entry))


def _remove_logs(path: str) -> None:
    for name in (*LOG_FILES, TB_DIR):
        _remove(os.path.join(path, name))
    _remove_temps(path, LOG_FILES)


def _remove_run(path: str) -> None:
    for name in (*RUN_FILES, TB_DIR):
        _remove(os.path.join(path, name))
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
            atomic_write(config_file, _config_json(stored))
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

    atomic_write(config_file, _config_json(given))
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


# -- metrics ----------------------------------------------------------------------------------


def _clean_value(key: str, value: Any) -> int | float | None:
    if value is None:
        return None
    if isinstance(value, bool | np.bool_):
        return int(value)
    if not isinstance(value, int | float) and hasattr(value, "__array__"):  # numpy, jax
        arr = np.asarray(value)
        if arr.size != 1:
            raise TypeError(f"metric {key!r} is not a scalar (shape {arr.shape})")
        value = arr.reshape(()).item()
        if isinstance(value, bool):
            return int(value)
    if isinstance(value, numbers.Integral):
        return int(value)
    if isinstance(value, numbers.Real):
        return float(value)
    raise TypeError(f"metric {key!r} has a value of type {type(value).__name__}; numbers only")


_NONFINITE_JSON = {"NaN": math.nan, "Infinity": math.inf, "-Infinity": -math.inf}


def _json_value(v: int | float | None) -> Any:
    if isinstance(v, float) and not math.isfinite(v):
        return "NaN" if math.isnan(v) else ("Infinity" if v > 0 else "-Infinity")
    return v


def _from_json_value(v: Any) -> Any:
    if isinstance(v, str) and v in _NONFINITE_JSON:
        return _NONFINITE_JSON[v]
    return v


def _csv_cell(v: Any) -> str:
    v = _from_json_value(v)
    if v is None:
        return ""
    if isinstance(v, float):
        if math.isnan(v):
            return "nan"
        if math.isinf(v):
            return "inf" if v > 0 else "-inf"
        return repr(v)
    return str(v)


def _read_jsonl(file: str) -> tuple[list[dict[str, Any]], bool]:
    """Raw records (non-finite still as strings) and whether every line was whole and valid."""
    if not os.path.exists(file):
        return [], True
    with open(file, encoding="utf-8") as f:
        text = f.read()
    records, clean = [], True
    lines = text.split("\n")
    if lines and lines[-1] == "":
        lines.pop()
    elif lines:
        clean = False  # an interrupted write: last line without its newline
        lines.pop()
    for n, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            rec = json.loads(line)
        except json.JSONDecodeError:
            rec = None
        if not isinstance(rec, dict):
            warnings.warn(f"{file}:{n}: dropping a line that is not a JSON record", stacklevel=3)
            clean = False
            continue
        records.append(rec)
    return records, clean


def read_metrics(path: str | os.PathLike[str]) -> list[dict[str, Any]]:
    """The records of ``metrics.jsonl`` (``path``: the run directory or the file), with the
    strings "NaN"/"Infinity"/"-Infinity" turned back into floats and ``null`` into None."""
    path = os.fspath(path)
    file = os.path.join(path, METRICS_JSONL) if os.path.isdir(path) else path
    records, _ = _read_jsonl(file)
    return [{k: _from_json_value(v) for k, v in r.items()} for r in records]


def _columns(records: Iterable[Mapping[str, Any]]) -> list[str]:
    """Union of keys: env_steps first, then in order of first appearance."""
    cols: dict[str, None] = {}
    for r in records:
        cols.update(dict.fromkeys(r))
    if STEP_KEY in cols:
        return [STEP_KEY] + [c for c in cols if c != STEP_KEY]
    return list(cols)


def _csv_text(columns: list[str], records: Iterable[Mapping[str, Any]]) -> str:
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    if columns:
        w.writerow(columns)
    for r in records:
        w.writerow([_csv_cell(r.get(c)) for c in columns])
    return buf.getvalue()


class ScalarMirror(Protocol):
    """Somewhere else the logged scalars go (Weights & Biases): what TensorBoard gets."""

    def log(self, scalars: Mapping[str, int | float], step: int) -> None: ...

    def close(self) -> None: ...


class MetricsLogger:
    """Appends records to ``metrics.jsonl``, ``metrics.csv`` and TensorBoard under ``path``.

    ``resume=False`` starts new files (old metrics and ``tb/`` event files are removed);
    ``resume=True`` keeps the records there (a half-written last line from a killed process is
    dropped) and appends. On resume call :meth:`truncate_after` with the checkpoint's env_steps
    before logging, so the steps the interrupted run logged after its last checkpoint, which the
    resumed run logs again, appear once.

    Each :meth:`log` flushes the JSONL line and the CSV row. When a record brings a key no earlier
    record had, the CSV is rewritten (atomically) from the JSONL with the union of keys as its
    header (``env_steps`` first, then order of first appearance), so it stays rectangular.

    ``step_key`` names the record field that is the TensorBoard step and that
    :meth:`truncate_after` compares: ``env_steps``, or ``grad_steps`` for offline runs.

    ``mirrors`` (e.g. ``wandb_mirror.WandbMirror``) receive exactly the scalars TensorBoard gets,
    ``mirror.log(scalars, step)``, and are closed with the logger.
    """

    def __init__(
        self,
        path: str | os.PathLike[str],
        resume: bool = False,
        step_key: str = STEP_KEY,
        mirrors: Iterable[ScalarMirror] = (),
    ):
        self.path = os.fspath(path)
        self.step_key = step_key
        self.mirrors = list(mirrors)
        os.makedirs(self.path, exist_ok=True)
        self.jsonl_file = os.path.join(self.path, METRICS_JSONL)
        self.csv_file = os.path.join(self.path, METRICS_CSV)
        self.tb_dir = os.path.join(self.path, TB_DIR)
        self._writer: Any = None
        self._purge_step: int | None = None
        self._closed = False
        if resume:
            records, clean = _read_jsonl(self.jsonl_file)
            if not clean:
                self._rewrite_jsonl(records)
        else:
            records = []
            _remove(self.tb_dir)
            atomic_write(self.jsonl_file, b"")
        self.columns = _columns(records)
        atomic_write(self.csv_file, _csv_text(self.columns, records))
        self._jsonl = open(self.jsonl_file, "a", encoding="utf-8")
        self._csv = open(self.csv_file, "a", encoding="utf-8", newline="")

    # -- writing --------------------------------------------------------------------------

    def log(self, record: Mapping[str, Any]) -> None:
        """Append one record; it must have an integer ``step_key`` (the TensorBoard step).

        Values: Python/numpy/jax scalar numbers (bools become 0/1) or None.
        """
        if self._closed:
            raise ValueError("MetricsLogger is closed")
        key = self.step_key
        if key not in record:
            raise ValueError(f"a metrics record needs {key!r}, got keys {sorted(record)}")
        clean = {str(k): _clean_value(str(k), v) for k, v in record.items()}
        step = clean[key]
        if not isinstance(step, int):
            raise TypeError(f"{key} must be an integer, got {record[key]!r}")
        raw = {k: _json_value(v) for k, v in clean.items()}

        self._jsonl.write(json.dumps(raw, allow_nan=False) + "\n")
        self._jsonl.flush()

        new = [k for k in raw if k not in self.columns]
        if new:
            records, _ = _read_jsonl(self.jsonl_file)
            self.columns = _columns(records)
            self._rewrite_csv(records)
        else:
            csv.writer(self._csv, lineterminator="\n").writerow(
                [_csv_cell(raw.get(c)) for c in self.columns]
            )
            self._csv.flush()

        scalars = {k: v for k, v in clean.items() if k != key and v is not None}
        writer = self._tb()
        for k, v in scalars.items():
            writer.add_scalar(k, v, global_step=step)
        writer.flush()
        for mirror in self.mirrors:
            mirror.log(scalars, step)

    def truncate_after(self, env_steps: int) -> int:
        """Drop the records whose ``step_key`` is greater than ``env_steps``; returns how many.

        Rewrites JSONL and CSV atomically; TensorBoard events from the next log on carry a purge
        step of ``env_steps + 1``, so TensorBoard hides the dropped steps of older event files.
        """
        records, _ = _read_jsonl(self.jsonl_file)
        key = self.step_key
        kept = [r for r in records if not (isinstance(r.get(key), int) and r[key] > env_steps)]
        dropped = len(records) - len(kept)
        if dropped:
            self._rewrite_jsonl(kept)
            self.columns = _columns(kept)
            self._rewrite_csv(kept)
        self._purge_step = int(env_steps) + 1
        if self._writer is not None:  # reopen so that the purge applies to what follows
            self._writer.close()
            self._writer = None
        return dropped

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        self._jsonl.close()
        self._csv.close()
        if self._writer is not None:
            self._writer.close()
            self._writer = None
        for mirror in self.mirrors:
            mirror.close()

    def __enter__(self) -> MetricsLogger:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- helpers ----------------------------------------------------------------------------

    def _tb(self) -> Any:
        if self._writer is None:
            from tensorboardX import SummaryWriter

            self._writer = SummaryWriter(logdir=self.tb_dir, purge_step=self._purge_step)
            self._purge_step = None
        return self._writer

    def _rewrite_jsonl(self, records: list[dict[str, Any]]) -> None:
        handle = getattr(self, "_jsonl", None)
        if handle is not None:
            handle.close()
        text = "".join(json.dumps(r, allow_nan=False) + "\n" for r in records)
        atomic_write(self.jsonl_file, text)
        if handle is not None:
            self._jsonl = open(self.jsonl_file, "a", encoding="utf-8")

    def _rewrite_csv(self, records: list[dict[str, Any]]) -> None:
        handle = getattr(self, "_csv", None)
        if handle is not None:
            handle.close()
        atomic_write(self.csv_file, _csv_text(self.columns, records))
        if handle is not None:
            self._csv = open(self.csv_file, "a", encoding="utf-8", newline="")


__all__ = [
    "CONFIG_FILE",
    "LOCK_FILE",
    "METRICS_CSV",
    "METRICS_JSONL",
    "TB_DIR",
    "MetricsLogger",
    "RunDir",
    "RunDirError",
    "RunLock",
    "ScalarMirror",
    "StorageError",
    "budget_fields",
    "config_differences",
    "config_from_dict",
    "default_run_dir",
    "extend_budget",
    "load_config",
    "prepare",
    "read_metrics",
    "storage_error",
    "storage_errors",
    "stored_config_differences",
    "with_defaults",
]
