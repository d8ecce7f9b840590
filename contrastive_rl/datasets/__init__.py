"""Offline datasets: one reader per format, all giving whole episodes in one form.

Readers (each imports its file library only when called): ``d4rl.py`` (HDF5 files, episodes
split at ``timeouts``), ``minari.py`` (dataset directories, one group per episode, AntMaze
positions converted to D4RL's frame) and ``ogbench.py`` (``.npz`` files, episodes split at
``terminals``). ``load_training_data`` reads one for an offline task, checks it against the
task's environment (sizes, finite values, action range, the maze) and cuts it into the
fixed-length episodes the replay holds. Nothing is downloaded: the user gives the path.
"""

from __future__ import annotations

import hashlib
import os
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from contrastive_rl.envs.spec import EnvSpec
from contrastive_rl.errors import InputError

FORMATS = ("d4rl", "minari", "ogbench")
# How far (as a share of the maze's extent) positions may lie outside it, and the share of
# positions that may fall in a wall cell (bodies touch walls; a point never enters one).
EXTENT_MARGIN = 0.05
MAX_WALL_SHARE = 0.01


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


@dataclass(frozen=True)
class TrainingData:
    """A dataset as the replay holds it: ``states [N, T + 1, S]``, ``actions [N, T, A]``."""

    states: np.ndarray
    actions: np.ndarray
    identity: dict[str, Any]  # path, format, sizes and the SHA-256 of the arrays
    notes: tuple[str, ...] = ()
    metadata: dict[str, Any] = field(default_factory=dict)

    @property
    def episode_length(self) -> int:
        return self.actions.shape[1]

    def summary(self) -> str:
        n, t = self.actions.shape[:2]
        return (
            f"dataset: {self.identity['path']} ({self.identity['format']}): {n} episodes of "
            f"{t} transitions ({n * t:,} in all)"
        )


def detect_format(path: str) -> str:
    """The format of ``path`` from what it is: a directory is Minari, ``.npz`` OGBench,
    ``.hdf5``/``.h5`` D4RL."""
    if os.path.isdir(path):
        return "minari"
    if not os.path.exists(path):
        raise DatasetError(f"dataset {path} does not exist")
    lower = path.lower()
    if lower.endswith(".npz"):
        return "ogbench"
    if lower.endswith((".hdf5", ".h5")):
        return "d4rl"
    raise DatasetError(
        f"cannot tell the format of dataset {path} from its name: expected a D4RL .hdf5 (or .h5) "
        f"file, a Minari dataset directory or an OGBench .npz file"
    )


def read_episodes(path: str, env: str) -> Episodes:
    """Read the dataset at ``path`` for the offline task ``env`` (its maze, for Minari's frame)."""
    fmt = detect_format(path)
    if fmt == "d4rl":
        from contrastive_rl.datasets import d4rl

        return d4rl.read(path)
    if fmt == "minari":
        from contrastive_rl.datasets import minari

        return minari.read(path, env)
    from contrastive_rl.datasets import ogbench

    return ogbench.read(path)


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


def check_episodes(episodes: Episodes, spec: EnvSpec, env: str) -> None:
    """Refuse episodes that do not fit the environment ``spec`` of the task ``env``."""
    path = episodes.source
    state_key = "observations"
    for i, (s, a) in enumerate(zip(episodes.states, episodes.actions, strict=True)):
        if s.ndim != 2 or s.shape[1] != spec.state_dim:
            raise DatasetError(
                f"{path}: key {state_key!r} has states of shape {s.shape[1:]}; {env} expects "
                f"{spec.state_dim} numbers per state (episode {i})"
            )
        if a.ndim != 2 or a.shape[1] != spec.action_dim:
            raise DatasetError(
                f"{path}: key 'actions' has actions of shape {a.shape[1:]}; {env} expects "
                f"{spec.action_dim} numbers per action (episode {i})"
            )
    states = np.concatenate(episodes.states)
    actions = np.concatenate(episodes.actions)
    for key, values in ((state_key, states), ("actions", actions)):
        bad = ~np.isfinite(values)
        if bad.any():
            row = int(np.argwhere(bad)[0][0])
            raise DatasetError(f"{path}: key {key!r} holds NaN or infinite values (row {row})")
    if np.abs(actions).max() > 1.0 + 1e-5:
        raise DatasetError(
            f"{path}: key 'actions' reaches {np.abs(actions).max():.3g}; {env} expects actions "
            f"in [-1, 1] (the environment's normalised actions)"
        )
    check_maze(states, spec, env, path)


def check_maze(states: np.ndarray, spec: EnvSpec, env: str, path: str) -> None:
    """Positions must lie in the task's maze: inside its extent and (almost) never in a wall."""
    from contrastive_rl.datasets.mazes import maze_grid

    grid = maze_grid(env)
    if grid is None:
        return
    xy = spec.obs_to_goal(states)
    low, high = grid.extent()
    margin = EXTENT_MARGIN * (high - low)
    outside = np.any((xy < low - margin) | (xy > high + margin), axis=-1)
    if outside.any():
        row = int(np.flatnonzero(outside)[0])
        raise DatasetError(
            f"{path}: key 'observations' has positions outside the {grid.name} maze of {env} "
            f"(row {row}: {np.round(xy[row], 3).tolist()}; the maze spans {low.tolist()} to "
            f"{high.tolist()}): a dataset of another maze, or in another frame?"
        )
    in_wall = grid.in_wall(xy)
    if in_wall.mean() > MAX_WALL_SHARE:
        raise DatasetError(
            f"{path}: {in_wall.mean():.0%} of the positions in key 'observations' lie in wall "
            f"cells of the {grid.name} maze of {env}: a dataset of another maze?"
        )


def fixed_length(episodes: Episodes) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """Episodes of one length T (the most common), as the replay stores them.

    Longer episodes are cut into consecutive pieces of T transitions (the remainder is left
    out); shorter ones are left out. Returns ``(states [N, T+1, S], actions [N, T, A], notes)``.
    """
    lengths = episodes.lengths
    counts = Counter(lengths.tolist())
    t = max(counts, key=lambda n: (counts[n], n))
    states, actions, notes = [], [], []
    cut = short = 0
    for s, a in zip(episodes.states, episodes.actions, strict=True):
        short += len(a) < t
        cut += len(a) > t
        for k in range(len(a) // t):
            states.append(s[k * t : (k + 1) * t + 1])
            actions.append(a[k * t : (k + 1) * t])
    if short:
        notes.append(f"{short} episode(s) shorter than {t} transitions left out")
    if cut:
        notes.append(f"{cut} episode(s) longer than {t} transitions cut into pieces of {t}")
    return np.stack(states).astype(np.float32), np.stack(actions).astype(np.float32), notes


def fingerprint(states: np.ndarray, actions: np.ndarray) -> str:
    """SHA-256 of what training sees: the arrays' shapes and bytes."""
    h = hashlib.sha256()
    for x in (states, actions):
        h.update(repr(x.shape).encode())
        h.update(np.ascontiguousarray(x).tobytes())
    return h.hexdigest()


def load_training_data(path: str, env: str, spec: EnvSpec) -> TrainingData:
    """The dataset at ``path`` for the offline task ``env``, checked and cut to one length.

    Raises:
        DatasetError: a missing, unreadable, truncated or malformed file, or one whose sizes,
            values or maze do not fit ``env`` (the message names the file and the key).
    """
    episodes = read_episodes(path, env)
    check_episodes(episodes, spec, env)
    states, actions, notes = fixed_length(episodes)
    identity = {
        "path": os.path.abspath(path),
        "format": episodes.format,
        "episodes": int(states.shape[0]),
        "episode_length": int(actions.shape[1]),
        "sha256": fingerprint(states, actions),
    }
    return TrainingData(
        states=states,
        actions=actions,
        identity=identity,
        notes=tuple(episodes.notes + notes),
        metadata=episodes.metadata,
    )


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


__all__ = [
    "FORMATS",
    "DatasetError",
    "Episodes",
    "TrainingData",
    "check_episodes",
    "detect_format",
    "fingerprint",
    "fixed_length",
    "load_training_data",
    "read_episodes",
    "split_rows",
]
