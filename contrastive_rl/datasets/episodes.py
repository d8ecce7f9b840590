"""The one form every dataset reader returns (``Episodes``), its error, the readers' helpers.

Plain NumPy; h5py is imported only when an HDF5 file is opened.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from contrastive_rl.errors import InputError


class DatasetError(InputError):
    """A dataset that cannot be trained on; the message names the file, the key and what was
    expected."""


@dataclass
class Episodes:
    """Whole episodes as a reader found them, before any check against an environment.

    Episode i has ``states[i]`` [L_i + 1, state_dim] and ``actions[i]`` [L_i, action_dim]: action
    t leads from state t to state t + 1 (a row's last action, whose outcome the file does not
    hold, is dropped, as the original did).
    """

    states: list[np.ndarray]
    actions: list[np.ndarray]
    source: str
    format: str
    metadata: dict[str, Any] = field(default_factory=dict)  # how the file was made, if it says
    notes: list[str] = field(default_factory=list)  # what the reader left out, and why

    @property
    def lengths(self) -> np.ndarray:
        return np.array([len(a) for a in self.actions], dtype=np.int64)


def split_rows(
    observations: np.ndarray, actions: np.ndarray, ends: np.ndarray, path: str, end_key: str
) -> tuple[list[np.ndarray], list[np.ndarray], list[str]]:
    """Episodes from flat rows, ``ends[t]`` true on each episode's last row (D4RL's
    ``timeouts``, OGBench's ``terminals``); rows after the last end are an unfinished episode,
    left out (the original never stored one)."""
    last_rows = np.flatnonzero(ends)
    if len(last_rows) == 0:
        raise DatasetError(
            f"{path}: key {end_key!r} marks no episode end (all {len(ends)} entries are false); "
            f"expected true on the last row of every episode"
        )
    starts = np.concatenate([[0], last_rows[:-1] + 1])
    states, acts, notes = [], [], []
    single = 0
    for start, last in zip(starts, last_rows, strict=True):
        if last == start:  # one row: no transition
            single += 1
            continue
        states.append(observations[start : last + 1])
        acts.append(actions[start:last])
    if single:
        notes.append(f"{single} episode(s) of a single row left out (no transition)")
    tail = len(ends) - (last_rows[-1] + 1)
    if tail:
        notes.append(f"the last {tail} row(s) end no episode ({end_key!r}): left out")
    if not states:
        raise DatasetError(f"{path}: no episode of two rows or more")
    return states, acts, notes


def require_h5py(path: str, fmt: str) -> Any:
    """``h5py``, or a clear error with the command that installs it."""
    try:
        import h5py
    except ImportError:
        from contrastive_rl.envs.registry import install_hint

        raise DatasetError(
            f"reading {fmt} dataset {path} needs h5py, which is not installed; install it "
            f"with: {install_hint('offline')}"
        ) from None
    return h5py


def open_hdf5(path: str, fmt: str) -> Any:
    """``path`` opened for reading, or a clear error: h5py missing, or not a readable HDF5 file."""
    h5py = require_h5py(path, fmt)
    try:
        return h5py.File(path, "r")
    except OSError as e:
        raise DatasetError(
            f"{path}: not a readable HDF5 file (truncated, damaged or another format?): {e}"
        ) from None
