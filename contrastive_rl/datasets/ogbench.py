"""OGBench's ``.npz`` layout: flat rows, episodes ended by ``terminals``.

Keys read: ``observations`` [N, state_dim], ``actions`` [N, action_dim], ``terminals`` [N] (true
on the last row of each episode: OGBench marks the time limit, not a goal). ``qpos``/``qvel``
are not needed. AntMaze positions are already in D4RL's frame (origin at the start cell).
"""

from __future__ import annotations

import json
import zipfile
from collections.abc import Mapping
from typing import Any

import numpy as np

from contrastive_rl.datasets.episodes import DatasetError, Episodes, split_rows

LAYOUT = "OGBench's layout: observations [N, state_dim], actions [N, action_dim], terminals [N]"


def read(path: str) -> Episodes:
    """Whole episodes of the OGBench file at ``path``."""
    try:
        archive = np.load(path, allow_pickle=False)
    except (OSError, ValueError, zipfile.BadZipFile, EOFError) as e:
        raise DatasetError(
            f"{path}: not a readable .npz file (truncated, damaged or another format?): {e}"
        ) from None
    if not isinstance(archive, np.lib.npyio.NpzFile):
        raise DatasetError(f"{path}: a single array, not an .npz archive; expected {LAYOUT}")
    with archive:
        values = {}
        for key, ndim in (("observations", 2), ("actions", 2), ("terminals", 1)):
            if key not in archive.files:
                found = ", ".join(sorted(archive.files)) or "nothing"
                raise DatasetError(f"{path}: no key {key!r} (found: {found}); expected {LAYOUT}")
            try:
                value = archive[key]
            except (OSError, ValueError, zipfile.BadZipFile, EOFError, KeyError) as e:
                raise DatasetError(
                    f"{path}: key {key!r} cannot be read (a truncated or damaged file?): {e}"
                ) from None
            if value.ndim != ndim:
                raise DatasetError(
                    f"{path}: key {key!r} has shape {value.shape}; expected {ndim} dimension(s)"
                    + (
                        " (OGBench's visual datasets hold images: not supported)"
                        if ndim == 2
                        else ""
                    )
                )
            values[key] = value
        metadata = _metadata(archive, path)
    rows = len(values["observations"])
    for key in ("actions", "terminals"):
        if len(values[key]) != rows:
            raise DatasetError(
                f"{path}: key {key!r} has {len(values[key])} rows, 'observations' {rows}; every "
                f"key has one row per step"
            )
    states, acts, notes = split_rows(
        values["observations"].astype(np.float32),
        values["actions"].astype(np.float32),
        values["terminals"].astype(bool),
        path,
        "terminals",
    )
    return Episodes(states, acts, source=path, format="ogbench", metadata=metadata, notes=notes)


def _metadata(archive: Any, path: str) -> dict[str, Any]:
    if "metadata" not in archive.files:
        return {}
    try:
        value = json.loads(str(archive["metadata"]))
    except ValueError:
        raise DatasetError(f"{path}: key 'metadata' is not JSON") from None
    return value if isinstance(value, dict) else {}


def write(path: str, rows: Mapping[str, np.ndarray], metadata: Mapping[str, Any]) -> None:
    """Write ``rows`` as OGBench's layout (``terminals`` = the episode ends), compressed, with
    ``metadata`` as a JSON string under the key ``metadata``; atomically."""
    import os

    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    tmp = f"{path}.tmp{os.getpid()}.npz"
    arrays = {
        "observations": rows["observations"],
        "actions": rows["actions"],
        "terminals": rows["timeouts"],
        **{
            k.removeprefix("infos/"): v
            for k, v in rows.items()
            if k in ("infos/qpos", "infos/qvel")
        },
        "metadata": np.array(json.dumps(dict(metadata), sort_keys=True)),
    }
    try:
        np.savez_compressed(tmp, **arrays)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)
