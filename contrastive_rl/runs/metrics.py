"""The metrics of a run: ``metrics.jsonl``, ``metrics.csv`` and TensorBoard, written and read.

Metrics: non-finite floats are written to JSONL as the strings ``"NaN"``, ``"Infinity"`` and
``"-Infinity"`` (the file stays strict JSON, and NaN stays distinguishable from a diverged +-inf);
:func:`read_metrics` turns them back into floats. In CSV they are ``nan``, ``inf``, ``-inf``
(what Python's ``float()`` and pandas read). A key a record lacks is absent from its JSONL line
and an empty CSV cell; a ``None`` value is ``null`` in JSONL and an empty CSV cell.
"""

from __future__ import annotations

import csv
import io
import json
import math
import numbers
import os
import warnings
from collections.abc import Iterable, Mapping
from typing import Any, Protocol

import numpy as np

from contrastive_rl.runs.files import atomic_write, remove

METRICS_JSONL = "metrics.jsonl"
METRICS_CSV = "metrics.csv"
# The re-evaluations of a run's checkpoints by `crl eval` (one record each: env_steps,
# grad_steps, episodes, the eval/* metrics), kept apart from the training's own evaluations.
EVALUATIONS_JSONL = "evaluations.jsonl"
TB_DIR = "tb"
STEP_KEY = "env_steps"


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


def read_evaluations(path: str | os.PathLike[str]) -> list[dict[str, Any]]:
    """The records of the run's ``evaluations.jsonl`` (``crl eval``), oldest first."""
    return read_metrics(os.path.join(os.fspath(path), EVALUATIONS_JSONL))


def record_evaluation(path: str | os.PathLike[str], record: Mapping[str, Any]) -> str:
    """Add ``record`` to the run's ``evaluations.jsonl`` and return the file's path. The file is
    rewritten whole (atomically), so an interrupted write leaves the earlier records intact; the
    earlier lines are kept as they are, except a last line cut short (no newline)."""
    file = os.path.join(os.fspath(path), EVALUATIONS_JSONL)
    kept = ""
    if os.path.exists(file):
        with open(file, encoding="utf-8") as f:
            kept = f.read()
        kept = kept[: kept.rfind("\n") + 1]  # "" when no line is whole
    clean = {k: _json_value(_clean_value(k, v)) for k, v in record.items()}
    atomic_write(file, kept + json.dumps(clean, allow_nan=False) + "\n")
    return file


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
            remove(self.tb_dir)
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
