"""Minari's dataset directories (HDF5 data format), read with h5py alone.

A dataset directory (``<root>/D4RL/antmaze/umaze-v1``, or its ``data/`` folder) holds
``metadata.json`` (``total_episodes``, ``total_steps``, ``data_format``, ``env_spec``...) and
``main_data.hdf5`` with one group ``episode_<i>`` per episode: ``observations`` (T + 1 rows,
the reset observation first; a subgroup per key for dict spaces) and ``actions`` (T rows).

AntMaze observations are a dict: ``achieved_goal`` (x, y), ``observation`` (qpos[2:15] then
qvel[:14]) and ``desired_goal``; the state is ``[achieved_goal ; observation]``, D4RL's 29
numbers. **Frames differ**: Gymnasium-Robotics centres the maze and flips y (cell (i, j) at
``x = (j + 0.5) s - W s / 2``, ``y = H s / 2 - (i + 0.5) s``), D4RL puts the start cell's centre at
the origin with y growing with the row (``x = (j - j0) s``, ``y = (i - i0) s``). ``to_d4rl_frame``
converts x, y and the y velocity; the body's orientation and joint angles are left as they are
(a mirrored legged body cannot be un-mirrored by a change of frame).
"""

from __future__ import annotations

import json
import os
import re
from typing import Any

import numpy as np

from contrastive_rl.datasets.episodes import DatasetError, Episodes, open_hdf5

VY_INDEX = 16  # qvel[1] in D4RL's 29-number ant state qpos[:15] ++ qvel[:14]


def gymnasium_robotics_to_d4rl(
    xy: np.ndarray, shape: tuple[int, int], start: tuple[int, int], cell_size: float
) -> np.ndarray:
    """x, y [..., 2] in Gymnasium-Robotics' centred, y-flipped frame -> D4RL's frame.

    ``shape`` is the maze map's (rows, cols), ``start`` D4RL's start cell (row, col).
    """
    rows, cols = shape
    x_shift = cols * cell_size / 2 - (start[1] + 0.5) * cell_size
    y_shift = rows * cell_size / 2 - (start[0] + 0.5) * cell_size
    xy = np.asarray(xy, np.float64)
    return np.stack([xy[..., 0] + x_shift, y_shift - xy[..., 1]], axis=-1)


def to_d4rl_frame(states: np.ndarray, maze: str) -> np.ndarray:
    """AntMaze states [..., 29] from Gymnasium-Robotics' frame to D4RL's (x, y and y velocity)."""
    from contrastive_rl.envs.ant_model import MAZE_SIZE_SCALING, MAZES, maze_cells

    _, _, start = maze_cells(maze)
    shape = (len(MAZES[maze]), len(MAZES[maze][0]))
    out = np.array(states, np.float32)
    out[..., :2] = gymnasium_robotics_to_d4rl(states[..., :2], shape, start, MAZE_SIZE_SCALING)
    out[..., VY_INDEX] = -out[..., VY_INDEX]
    return out


def _files(path: str) -> tuple[str, str]:
    for folder in (path, os.path.join(path, "data")):
        meta, data = os.path.join(folder, "metadata.json"), os.path.join(folder, "main_data.hdf5")
        if os.path.isfile(meta) or os.path.isfile(data):
            for f in (meta, data):
                if not os.path.isfile(f):
                    raise DatasetError(
                        f"{path}: Minari dataset without {os.path.basename(f)} (expected "
                        f"metadata.json and main_data.hdf5 in {folder})"
                    )
            return meta, data
    raise DatasetError(
        f"{path}: not a Minari dataset directory (expected metadata.json and main_data.hdf5 "
        f"in it or in its data/ folder)"
    )


def _read_metadata(file: str) -> dict[str, Any]:
    try:
        with open(file, encoding="utf-8") as f:
            meta = json.load(f)
    except (OSError, ValueError) as e:
        raise DatasetError(f"{file}: not readable JSON: {e}") from None
    if not isinstance(meta, dict):
        raise DatasetError(f"{file}: expected a JSON object of dataset facts")
    fmt = meta.get("data_format", "hdf5")
    if fmt != "hdf5":
        raise DatasetError(
            f"{file}: data_format {fmt!r}; this reader takes Minari's 'hdf5' format (convert with "
            f"Minari, or save the dataset with data_format='hdf5')"
        )
    return meta


def _maze_map(meta: dict[str, Any]) -> list | None:
    spec = meta.get("env_spec")
    if isinstance(spec, str):
        try:
            spec = json.loads(spec)
        except ValueError:
            return None
    if isinstance(spec, dict):
        maze_map = (spec.get("kwargs") or {}).get("maze_map")
        return maze_map if isinstance(maze_map, list) else None
    return None


def _check_maze_map(meta: dict[str, Any], maze: str, file: str, env: str) -> None:
    from contrastive_rl.envs.ant_model import MAZES

    maze_map = _maze_map(meta)
    if maze_map is None:
        return
    theirs = np.array([[cell == 1 for cell in row] for row in maze_map])
    ours = np.array([[ch == "#" for ch in row] for row in MAZES[maze]])
    if theirs.shape != ours.shape or not (theirs == ours).all():
        raise DatasetError(
            f"{file}: key env_spec.kwargs.maze_map is a {theirs.shape[0]}x{theirs.shape[1]} maze "
            f"that is not the {maze} maze of {env} ({ours.shape[0]}x{ours.shape[1]})"
        )


def _episode_groups(f: Any, file: str) -> list[str]:
    names = [k for k in f.keys() if re.fullmatch(r"episode_\d+", k)]
    if not names:
        raise DatasetError(f"{file}: no group 'episode_<i>' (found: {', '.join(f.keys())})")
    return sorted(names, key=lambda k: int(k.split("_")[1]))


def _observation_rows(group: Any, file: str, name: str) -> np.ndarray:
    if "observations" not in group:
        raise DatasetError(f"{file}: {name} has no key 'observations'")
    obs = group["observations"]
    if hasattr(obs, "keys"):  # a dict space: AntMaze's observation/achieved_goal/desired_goal
        keys = set(obs.keys())
        if not {"observation", "achieved_goal"} <= keys:
            raise DatasetError(
                f"{file}: {name}/observations has keys {sorted(keys)}; expected 'observation' "
                f"and 'achieved_goal' (a goal-conditioned dict space such as AntMaze's)"
            )
        parts = [obs["achieved_goal"][()], obs["observation"][()]]
        if any(p.ndim != 2 for p in parts) or parts[0].shape[0] != parts[1].shape[0]:
            raise DatasetError(
                f"{file}: {name}/observations/achieved_goal and /observation must be 2-D with "
                f"one row per step, got {parts[0].shape} and {parts[1].shape}"
            )
        return np.concatenate(parts, axis=1)
    value = obs[()]
    if value.ndim != 2:
        raise DatasetError(
            f"{file}: {name}/observations has shape {value.shape}; expected [T + 1, state_dim]"
        )
    return value


def read(path: str, env: str) -> Episodes:
    """Whole episodes of the Minari dataset directory ``path``, for the offline task ``env``."""
    meta_file, data_file = _files(path)
    meta = _read_metadata(meta_file)
    maze = _ant_maze(env, path)
    _check_maze_map(meta, maze, meta_file, env)
    f = open_hdf5(data_file, "Minari")
    states, actions = [], []
    with f:
        names = _episode_groups(f, data_file)
        expected = meta.get("total_episodes")
        if isinstance(expected, int) and expected != len(names):
            raise DatasetError(
                f"{data_file}: holds {len(names)} episode groups where {meta_file} says "
                f"total_episodes {expected}: a truncated or partly written dataset"
            )
        for name in names:
            group = f[name]
            try:
                obs = _observation_rows(group, data_file, name)
                if "actions" not in group:
                    raise DatasetError(f"{data_file}: {name} has no key 'actions'")
                act = group["actions"][()]
            except (OSError, ValueError, TypeError) as e:
                if isinstance(e, DatasetError):
                    raise
                raise DatasetError(
                    f"{data_file}: {name} cannot be read (a truncated or damaged file?): {e}"
                ) from None
            if act.ndim != 2 or len(obs) != len(act) + 1:
                raise DatasetError(
                    f"{data_file}: {name}/actions has shape {act.shape} for {len(obs)} "
                    f"observations; expected [T, action_dim] with T + 1 observations"
                )
            if len(act) == 0:
                continue
            states.append(to_d4rl_frame(obs, maze))
            actions.append(act.astype(np.float32))
    total_steps = meta.get("total_steps")
    steps = sum(len(a) for a in actions)
    if isinstance(total_steps, int) and total_steps != steps:
        raise DatasetError(
            f"{data_file}: holds {steps} steps where {meta_file} says total_steps {total_steps}"
        )
    keep = ("dataset_id", "minari_version", "algorithm_name", "author", "total_steps")
    metadata = {k: meta[k] for k in keep if k in meta}
    return Episodes(states, actions, source=path, format="minari", metadata=metadata)


def _ant_maze(env: str, path: str) -> str:
    from contrastive_rl.envs.ant_model import OFFLINE_ANT_TASKS

    task = env.removeprefix("offline_ant_")
    if not env.startswith("offline_ant_") or task not in OFFLINE_ANT_TASKS:
        raise DatasetError(
            f"{path}: Minari datasets are read for the offline AntMaze tasks (offline_ant_*), "
            f"whose frame this reader converts; {env} is not one (Gymnasium-Robotics' point "
            f"mazes are other mazes than the original's: make a point dataset with `crl collect`)"
        )
    return OFFLINE_ANT_TASKS[task][0]
