"""Minari's dataset directories (HDF5 data format), read with h5py alone.

A dataset directory (``<root>/D4RL/antmaze/umaze-v1``, or its ``data/`` folder) holds
``metadata.json`` (``total_episodes``, ``total_steps``, ``data_format``, ``env_spec``...) and
``main_data.hdf5`` with one group ``episode_<i>`` per episode: ``observations`` (T + 1 rows,
the reset observation first; a subgroup per key for dict spaces) and ``actions`` (T rows).

AntMaze observations are a dict: ``achieved_goal`` (x, y), ``observation`` (qpos[2:15] then
qvel[:14]) and ``desired_goal``; the state is ``[achieved_goal ; observation]``, D4RL's 29
numbers. **Frames differ**: Gymnasium-Robotics centres the maze and flips y (cell (i, j) at
``x = (j + 0.5) s - W s / 2``, ``y = H s / 2 - (i + 0.5) s``), D4RL puts the start cell's centre at
the origin with y growing with the row (``x = (j - j0) s``, ``y = (i - i0) s``). The y flip
is a reflection of the world, so a recorded episode is the mirror image of an episode in D4RL's
frame: ``to_d4rl_frame`` reflects the whole state (x, y; the torso's orientation, velocity and
angular velocity; the joint angles and velocities, leg for mirrored leg) and ``mirror_actions``
the actions, each joint's torque to its mirrored joint. The ant is mirror-symmetric, so the
reflected episode is one the same ant can make: which joint mirrors which, and with which sign,
is derived from the MJCF (``ant_mirror``), and tested by replaying the converted actions in
the simulator.
"""

from __future__ import annotations

import functools
import json
import os
import re
from dataclasses import dataclass
from typing import Any

import numpy as np

from contrastive_rl.datasets.episodes import DatasetError, Episodes, open_hdf5

NQ, NV = 15, 14  # the ant's qpos (free joint 7, eight hinges) and qvel (6 + 8)


@dataclass(frozen=True)
class Mirror:
    """The reflection y -> -y of the ant, as index maps with signs: ``mirrored[i] = sign[i] *
    value[source[i]]``, for D4RL's 29-number state and for the 8 actions."""

    state_source: np.ndarray
    state_sign: np.ndarray
    action_source: np.ndarray
    action_sign: np.ndarray


@functools.cache
def ant_mirror() -> Mirror:
    """The ant's mirror map, derived from its MJCF at rest.

    Reflecting the world through the plane y = 0 (matrix M = diag(1, -1, 1)) maps a point p to
    M p and a rotation axis a (a pseudovector) to -M a. Each hinge's mirrored joint is the one
    anchored at M p; its angle keeps its sign where that joint's axis is -M a and flips where it
    is M a (hips about z flip; ankles, whose axes swap to minus each other, keep theirs). The
    free joint: position (x, -y, z), quaternion (w, -qx, qy, -qz), linear velocity (vx, -vy,
    vz), angular velocity (-wx, wy, -wz). An actuator's torque goes where its joint goes.
    """
    import mujoco

    from contrastive_rl.envs.ant_model import build_mjcf

    model = mujoco.MjModel.from_xml_string(build_mjcf("umaze"))
    data = mujoco.MjData(model)
    mujoco.mj_forward(model, data)  # at rest: torso at the origin's xy, legs straight out
    reflect = np.diag([1.0, -1.0, 1.0])
    q_source, q_sign = np.arange(NQ), np.ones(NQ)
    v_source, v_sign = np.arange(NV), np.ones(NV)
    q_sign[[1, 4, 6]] = -1  # y, qx, qz of the free joint
    v_sign[[1, 3, 5]] = -1  # vy, wx, wz
    hinges = [j for j in range(model.njnt) if model.jnt_type[j] == mujoco.mjtJoint.mjJNT_HINGE]
    partner = {}
    for j in hinges:
        gaps = [np.abs(data.xanchor[k] - reflect @ data.xanchor[j]).max() for k in hinges]
        k = hinges[int(np.argmin(gaps))]
        alignment = float(data.xaxis[k] @ (-reflect @ data.xaxis[j]))
        if min(gaps) > 1e-9 or abs(abs(alignment) - 1) > 1e-9:
            raise RuntimeError(f"the ant's joint {model.joint(j).name} has no mirror image")
        partner[j] = k
        q_source[model.jnt_qposadr[k]] = model.jnt_qposadr[j]
        q_sign[model.jnt_qposadr[k]] = np.sign(alignment)
        v_source[model.jnt_dofadr[k]] = model.jnt_dofadr[j]
        v_sign[model.jnt_dofadr[k]] = np.sign(alignment)
    if any(partner[partner[j]] != j for j in hinges):
        raise RuntimeError("the ant's joint mirror is not an involution")
    joints = list(model.actuator_trnid[:, 0])
    a_source = np.array([joints.index(partner[j]) for j in joints])
    a_sign = np.array([q_sign[model.jnt_qposadr[j]] for j in joints])
    if not np.allclose(model.actuator_gear[a_source, 0], model.actuator_gear[:, 0]):
        raise RuntimeError("the ant's mirrored motors have different gears")
    return Mirror(
        np.concatenate([q_source, NQ + v_source]),
        np.concatenate([q_sign, v_sign]).astype(np.float32),
        a_source,
        a_sign.astype(np.float32),
    )


def mirror_actions(actions: np.ndarray) -> np.ndarray:
    """Actions [..., 8] of the mirrored ant: each motor's torque on its mirrored joint."""
    mirror = ant_mirror()
    return (np.asarray(actions)[..., mirror.action_source] * mirror.action_sign).astype(np.float32)


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
    """AntMaze states [..., 29] from Gymnasium-Robotics' frame to D4RL's: x, y by the frames'
    placement of the maze, everything else by the ant's reflection (``ant_mirror``)."""
    from contrastive_rl.envs.ant_model import MAZE_SIZE_SCALING, MAZES, maze_cells

    _, _, start = maze_cells(maze)
    shape = (len(MAZES[maze]), len(MAZES[maze][0]))
    mirror = ant_mirror()
    states = np.asarray(states)
    out = (states[..., mirror.state_source] * mirror.state_sign).astype(np.float32)
    out[..., :2] = gymnasium_robotics_to_d4rl(states[..., :2], shape, start, MAZE_SIZE_SCALING)
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
            actions.append(mirror_actions(act))
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
