"""D4RL's HDF5 layout: flat rows, episodes ended by ``timeouts``.

Keys read: ``observations`` [N, state_dim], ``actions`` [N, action_dim], ``timeouts`` [N] (true
on the last row of each episode). As the original: row t starts an episode when t = 0 or
``timeouts[t-1]``, ends it when ``timeouts[t]``; each episode's last action is dropped (its next
observation is not in the file); ``terminals`` (goal reached, not an episode end) is ignored;
episode lengths are whatever the file says. ``infos/goal``, ``infos/qpos``, ``infos/qvel``,
``rewards`` and ``terminals`` are written by ``write`` (``crl collect``) but never needed.
A root attribute ``metadata`` (JSON) says how ``crl collect`` made the file.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

import numpy as np

from contrastive_rl.datasets.episodes import (
    DatasetError,
    Episodes,
    open_hdf5,
    require_h5py,
    split_rows,
)

LAYOUT = "the D4RL layout: observations [N, state_dim], actions [N, action_dim], timeouts [N]"


def _array(f: Any, key: str, path: str, ndim: int) -> np.ndarray:
    if key not in f:
        found = ", ".join(sorted(f.keys())) or "nothing"
        raise DatasetError(f"{path}: no key {key!r} (found: {found}); expected {LAYOUT}")
    try:
        value = f[key][()]
    except (OSError, ValueError, TypeError, AttributeError) as e:
        raise DatasetError(
            f"{path}: key {key!r} cannot be read (a truncated or damaged file?): {e}"
        ) from None
    if not isinstance(value, np.ndarray) or value.ndim != ndim:
        shape = getattr(value, "shape", "a group" if hasattr(value, "keys") else type(value))
        raise DatasetError(f"{path}: key {key!r} has shape {shape}; expected {ndim} dimension(s)")
    return value


def read(path: str) -> Episodes:
    """Whole episodes of the D4RL file at ``path``."""
    f = open_hdf5(path, "D4RL")
    with f:
        observations = _array(f, "observations", path, 2)
        actions = _array(f, "actions", path, 2)
        timeouts = _array(f, "timeouts", path, 1)
        metadata = _metadata(f.attrs.get("metadata"), path)
    rows = len(observations)
    for key, value in (("actions", actions), ("timeouts", timeouts)):
        if len(value) != rows:
            raise DatasetError(
                f"{path}: key {key!r} has {len(value)} rows, 'observations' {rows}; every key "
                f"has one row per step"
            )
    states, acts, notes = split_rows(
        observations.astype(np.float32), actions.astype(np.float32), timeouts, path, "timeouts"
    )
    return Episodes(states, acts, source=path, format="d4rl", metadata=metadata, notes=notes)


def _metadata(raw: Any, path: str) -> dict[str, Any]:
    if raw is None:
        return {}
    try:
        value = json.loads(raw.decode() if isinstance(raw, bytes) else str(raw))
    except ValueError:
        raise DatasetError(f"{path}: attribute 'metadata' is not JSON") from None
    return value if isinstance(value, dict) else {}


def write(path: str, rows: Mapping[str, np.ndarray], metadata: Mapping[str, Any]) -> None:
    """Write ``rows`` (flat keys such as ``observations``, ``infos/goal``) in D4RL's layout,
    gzip-compressed, with ``metadata`` as a JSON root attribute; atomically (a temporary file
    in the same directory, then a rename)."""
    import os

    h5py = require_h5py(path, "D4RL")
    directory = os.path.dirname(os.path.abspath(path))
    os.makedirs(directory, exist_ok=True)
    tmp = f"{path}.tmp{os.getpid()}"
    try:
        with h5py.File(tmp, "w") as f:
            for key, value in rows.items():
                f.create_dataset(key, data=value, compression="gzip")
            f.attrs["metadata"] = json.dumps(dict(metadata), sort_keys=True)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)
