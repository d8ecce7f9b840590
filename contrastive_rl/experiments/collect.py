"""``crl collect``: the offline tasks' datasets, made here (nothing can be downloaded).

Both collectors steer an agent through the maze by D4RL's waypoints (``mazes.MazeGrid``): a
breadth-first search over the free cells gives the next cell towards the episode's goal; the
waypoint is that cell's centre with a little noise, or the goal itself once in the goal's cell.
Every episode has a fixed number of steps and its goal is held to the end (the agent loiters
there). Episodes are written as ``episode_length + 1`` rows in D4RL's layout (``.hdf5``; the last
row's action is computed but never executed, as D4RL's generator) or OGBench's (``.npz``), with a
``metadata`` record of the policy, the noise and the seed.

* Point mazes (``offline_point_*``): a scripted navigator, action = the direction to the waypoint
  (full speed beyond one cell) plus N(0, noise^2), clipped; starts and goals as the environment
  draws them (uniform free positions). Runs in JAX, vmapped over episodes. ``--stitch``: short
  segments instead, each from a uniform free cell to a goal cell 4 BFS steps away (OGBench's
  stitch datasets), so reaching far goals needs several segments stitched together.
* AntMaze (``offline_ant_*``): D4RL's recipe: a goal-reaching ant policy trained by this library
  (a run directory of ``ant_<maze>``) is given the waypoint as its goal; its deterministic action
  plus N(0, 0.2^2), clipped; 1000-step episodes (700 for umaze), 1M rows in all by default. The
  six datasets differ in starts and goals (``ANT_RECIPES``). A policy trained on another maze
  steers in a corridor frame (``CorridorFrame``), as D4RL's expert saw only the way to its
  waypoint, not where it was.
"""

from __future__ import annotations

import contextlib
import dataclasses
import functools
import os
import sys
import time
from dataclasses import dataclass
from typing import Any

import numpy as np

from contrastive_rl.datasets import DatasetError
from contrastive_rl.envs.mazes import MazeGrid, ant_grid, point_grid

# D4RL's waypoint noise: U(0, cell / 4) added to the next cell's centre on each axis (AntMaze);
# for the point mazes' unit cells, U(-0.25, 0.25) around the centre.
POINT_WAYPOINT_NOISE = 0.25
POINT_ACTION_NOISE = 0.5  # OGBench's point-maze noise
ANT_ACTION_NOISE = 0.2  # D4RL's
POINT_STEPS = 200_000
# Stitch datasets (--stitch), after OGBench's: each episode a short segment from a uniform free
# cell to a goal cell this many BFS steps away; the navigator covers about a cell a step.
STITCH_CELLS = 4
STITCH_EPISODE_LENGTH = 12
ANT_STEPS = 1_000_000
ANT_EPISODE_LENGTHS = {"umaze": 700}  # D4RL's umaze file; 1000 for the others (its default)

# The goal-eligible cells ('g') of D4RL's generation maps (U_MAZE, BIG_MAZE, HARDEST_MAZE): the
# hand-picked goals of the "play" datasets (and umaze's single goal).
D4RL_GOAL_CELLS: dict[str, tuple[tuple[int, int], ...]] = {
    "umaze": ((3, 1),),
    "medium": ((2, 6), (5, 1), (6, 5)),
    "large": ((1, 6), (3, 5), (3, 10), (5, 2), (7, 4), (7, 6), (7, 9)),
}


@dataclass(frozen=True)
class AntRecipe:
    """How one AntMaze dataset picks each episode's start and goal.

    start ``fixed``: the start cell, joint noise only (D4RL without multistart); ``free``: D4RL's
    reset sampler, a uniform free cell that is not a goal cell, plus U(0, 1) per axis. goal
    ``play``: one of D4RL's goal cells of the map; ``any``: any free cell; both plus D4RL's goal
    offsets (U(0, 1) + U(0, 0.5) per axis).
    """

    maze: str
    start: str
    goal: str


ANT_RECIPES: dict[str, AntRecipe] = {
    "umaze": AntRecipe("umaze", "fixed", "play"),
    "umaze_diverse": AntRecipe("umaze", "free", "any"),
    "medium_play": AntRecipe("medium", "free", "play"),
    "medium_diverse": AntRecipe("medium", "free", "any"),
    "large_play": AntRecipe("large", "free", "play"),
    "large_diverse": AntRecipe("large", "free", "any"),
}


@dataclass(frozen=True)
class CollectOptions:
    env: str  # offline_point_* or offline_ant_*
    out: str  # .hdf5 (D4RL layout) or .npz (OGBench layout)
    steps: int = 0  # rows in all, rounded up to whole episodes; 0 = the task's default
    episode_length: int = 0  # steps per episode; 0 = the task's default
    noise: float | None = None  # std of the Gaussian action noise; None = the task's default
    seed: int = 0
    policy: str = ""  # AntMaze: the run directory of a goal-reaching ant policy
    num_envs: int = 64  # episodes collected side by side (a chunk)
    workers: int = 1  # AntMaze: processes that collect chunks at once (the data do not change)
    overwrite: bool = False
    stitch: bool = False  # point mazes: short segments to a goal STITCH_CELLS away (OGBench's)


def collect(options: CollectOptions) -> dict[str, Any]:
    """Collect and write the dataset; returns its metadata (what was written to the file)."""
    env = options.env
    out_format = _out_format(options.out)
    if os.path.exists(options.out) and not options.overwrite:
        raise DatasetError(f"{options.out} exists; pass --overwrite to replace it")
    if options.num_envs <= 0 or options.workers <= 0:
        raise DatasetError(
            f"num_envs and workers must be positive, got {options.num_envs} and {options.workers}"
        )
    if options.steps < 0 or options.episode_length < 0:
        raise DatasetError("steps and episode_length must be >= 0 (0 = the task's default)")
    if options.noise is not None and options.noise < 0:
        raise DatasetError(f"noise must be >= 0, got {options.noise}")
    start = time.perf_counter()
    if env.startswith("offline_point_"):
        rows, metadata = _collect_point(options)
    elif env.startswith("offline_ant_"):
        if options.stitch:
            raise DatasetError("--stitch makes point-maze datasets; AntMaze has no stitch recipe")
        rows, metadata = _collect_ant(options)
    else:
        from contrastive_rl.envs.registry import OFFLINE_ENVS

        raise DatasetError(
            f"crl collect makes datasets for the offline tasks; {env!r} is not one (valid: "
            f"{', '.join(OFFLINE_ENVS)})"
        )
    from contrastive_rl.version import __version__

    metadata.update(
        env=env,
        seed=options.seed,
        rows=int(len(rows["observations"])),
        collect_seconds=round(time.perf_counter() - start, 1),
        created_by=f"contrastive_rl {__version__} crl collect",
    )
    if out_format == "d4rl":
        from contrastive_rl.datasets import d4rl

        d4rl.write(options.out, rows, metadata)
    else:
        from contrastive_rl.datasets import ogbench

        ogbench.write(options.out, rows, metadata)
    return metadata


def _out_format(path: str) -> str:
    lower = path.lower()
    if lower.endswith((".hdf5", ".h5")):
        return "d4rl"
    if lower.endswith(".npz"):
        return "ogbench"
    raise DatasetError(
        f"cannot tell the output format from {path}: name it .hdf5 (D4RL's layout) or .npz "
        f"(OGBench's)"
    )


def _episode_count(steps: int, episode_length: int) -> int:
    """Episodes of ``episode_length + 1`` rows covering ``steps`` rows (rounded up)."""
    return -(-steps // (episode_length + 1))


def flatten_episodes(
    states: np.ndarray, actions: np.ndarray, goals: np.ndarray, reached: np.ndarray, **infos: Any
) -> dict[str, np.ndarray]:
    """D4RL's flat rows from episodes: ``states`` [E, T+1, S], ``actions`` [E, T+1, A] (the last
    never executed), ``goals`` [E, G], ``reached`` [E, T+1] (within the success distance)."""
    e, rows = states.shape[:2]
    timeouts = np.zeros((e, rows), bool)
    timeouts[:, -1] = True
    out = {
        "observations": states.reshape(e * rows, -1).astype(np.float32),
        "actions": actions.reshape(e * rows, -1).astype(np.float32),
        "rewards": reached.reshape(-1).astype(np.float32),
        "terminals": reached.reshape(-1).astype(bool),
        "timeouts": timeouts.reshape(-1),
        "infos/goal": np.repeat(goals, rows, axis=0).astype(np.float32),
    }
    for key, value in infos.items():
        out[f"infos/{key}"] = value.reshape(e * rows, -1).astype(np.float32)
    return out


# -- point mazes ----------------------------------------------------------------------------------


def _collect_point(options: CollectOptions) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
    import jax
    import jax.numpy as jnp

    from contrastive_rl.envs.point import PointMaze

    maze = options.env.removeprefix("offline_point_")
    if maze.endswith("_stitch"):  # the stitch tasks' datasets are stitch segments
        maze = maze.removesuffix("_stitch")
        options = dataclasses.replace(options, stitch=True)
    env = PointMaze(maze)
    grid = point_grid(maze)
    default_length = STITCH_EPISODE_LENGTH if options.stitch else env.spec.episode_length
    t = options.episode_length or default_length
    noise = POINT_ACTION_NOISE if options.noise is None else options.noise
    episodes = _episode_count(options.steps or POINT_STEPS, t)
    table = jnp.asarray(grid.next_cells())
    threshold = env.spec.success_threshold
    reset = stitch_reset(grid) if options.stitch else env.reset

    def navigate(position, goal, key):
        return point_navigator_action(table, position, goal, key, noise)

    def episode(key):
        reset_key, step_key = jax.random.split(key)
        first = reset(reset_key)

        def one_step(s, k):
            act_key, env_key = jax.random.split(k)
            action = navigate(s.state, s.goal, act_key)
            return env.step(s, action, env_key), (s.state, action)

        last, (states, actions) = jax.lax.scan(one_step, first, jax.random.split(step_key, t))
        final_action = navigate(last.state, last.goal, jax.random.fold_in(step_key, t))
        states = jnp.concatenate([states, last.state[None]])
        actions = jnp.concatenate([actions, final_action[None]])
        return states, actions, first.goal

    run = jax.jit(jax.vmap(episode))
    parts = []
    base = jax.random.key(options.seed)
    for r in range(-(-episodes // options.num_envs)):
        keys = jax.random.split(jax.random.fold_in(base, r), options.num_envs)
        parts.append(jax.device_get(run(keys)))
    states, actions, goals = (np.concatenate(x)[:episodes] for x in zip(*parts, strict=True))
    reached = np.linalg.norm(states - goals[:, None], axis=-1) < threshold
    metadata = {
        "policy": "scripted BFS waypoint navigator (contrastive_rl.experiments.collect)",
        "action_noise": noise,
        "waypoint_noise": POINT_WAYPOINT_NOISE,
        "episode_length": t,
        "episodes": int(episodes),
        "starts_goals": "as the environment's reset: uniform free positions",
        "policy_success": float(reached.any(axis=1).mean()),
    }
    if options.stitch:
        metadata["starts_goals"] = (
            f"stitch: a uniform free cell, the goal in a uniform cell {STITCH_CELLS} BFS steps "
            f"away (the farthest where none is), each plus U[0, 1)^2"
        )
        metadata["stitch_cells"] = STITCH_CELLS
    return flatten_episodes(states, actions, goals, reached), metadata


def stitch_goal_cells(grid: MazeGrid, cells: int = STITCH_CELLS) -> np.ndarray:
    """``[n, n]`` bool over the free cells (row-major): the goal cells a segment from each start
    cell may take, those ``cells`` BFS steps away, or the farthest reachable where none is."""
    free = grid.free_cells
    mask = np.zeros((len(free), len(free)), bool)
    for i, cell in enumerate(free):
        distance = grid.distances_from(tuple(cell))[free[:, 0], free[:, 1]]
        reach = distance[distance >= 0]
        mask[i] = distance == (cells if np.any(reach == cells) else reach.max())
    return mask


def stitch_reset(grid: MazeGrid):
    """``reset(key) -> EnvState`` for stitch segments (JAX): the start uniform over the free
    cells, the goal uniform over ``stitch_goal_cells`` of the start's cell, each at a U[0, 1)^2
    offset in its cell, as the point mazes' own reset places positions."""
    import jax
    import jax.numpy as jnp

    from contrastive_rl.envs.base import EnvState

    free = jnp.asarray(grid.free_cells, jnp.float32)
    log_mask = jnp.log(jnp.asarray(stitch_goal_cells(grid), jnp.float32))

    def reset(key):
        start_key, goal_key, offset_key = jax.random.split(key, 3)
        start = jax.random.randint(start_key, (), 0, free.shape[0])
        goal = jax.random.categorical(goal_key, log_mask[start])
        offsets = jax.random.uniform(offset_key, (2, 2))
        return EnvState(
            state=free[start] + offsets[0], goal=free[goal] + offsets[1], t=jnp.zeros((), jnp.int32)
        )

    return reset


def point_navigator_action(table, position, goal, key, noise: float):
    """The scripted point navigator (JAX): towards the next waypoint, plus Gaussian noise."""
    import jax
    import jax.numpy as jnp

    wp_key, noise_key = jax.random.split(key)
    h, w = table.shape[:2]
    high = jnp.array([h - 1, w - 1])
    cell = jnp.clip(jnp.floor(position).astype(jnp.int32), 0, high)
    target = jnp.clip(jnp.floor(goal).astype(jnp.int32), 0, high)
    nxt = table[cell[0], cell[1], target[0], target[1]]
    jitter = jax.random.uniform(
        wp_key, (2,), minval=-POINT_WAYPOINT_NOISE, maxval=POINT_WAYPOINT_NOISE
    )
    in_goal_cell = jnp.all(cell == target)
    waypoint = jnp.where(in_goal_cell, goal, nxt + 0.5 + jitter)
    delta = waypoint - position
    action = delta / jnp.maximum(1.0, jnp.max(jnp.abs(delta)))
    action = action + noise * jax.random.normal(noise_key, (2,))
    return jnp.clip(action, -1.0, 1.0)


# -- AntMaze ------------------------------------------------------------------------------------


def ant_waypoints(
    grid: MazeGrid, table: np.ndarray, xy: np.ndarray, goal: np.ndarray, rng: np.random.Generator
) -> np.ndarray:
    """D4RL's waypoints for ant positions ``xy`` [N, 2] and goals [N, 2] (numpy)."""
    cell = grid.cell_of(xy)
    target = grid.cell_of(goal)
    nxt = table[cell[:, 0], cell[:, 1], target[:, 0], target[:, 1]]
    in_goal_cell = np.all(cell == target, axis=-1)
    noise = rng.uniform(0.0, grid.cell_size / 4, xy.shape)
    return np.where(in_goal_cell[:, None], goal, grid.centre(nxt) + noise)


class CorridorFrame:
    """Positions for a policy of maze A that steers an ant through maze B.

    An ant's dynamics do not depend on where it is, only its goal-reaching policy does (it was
    trained on positions in maze A). Each waypoint lies about one cell away along one axis, so
    the policy is shown the ant at the centre of a cell of maze A whose neighbour in that
    direction is free (the start of the longest straight run that way), and the waypoint at the
    same offset from there, shortened to one cell and to 3/8 of a cell across the corridor:
    D4RL's expert likewise saw only the vector to its waypoint. The ant's orientation, joints
    and velocities are shown as they are. (All AntMazes share cell size and axes, so offsets in
    maze B's cells are offsets in maze A's.)
    """

    ACROSS = 0.375  # of a cell: the part of the offset across the corridor that is kept

    def __init__(self, policy_grid: MazeGrid):
        self.grid = policy_grid
        free = {tuple(c) for c in policy_grid.free_cells}

        def run(cell: tuple[int, int], step: tuple[int, int]) -> int:
            n = 0
            while (cell[0] + (n + 1) * step[0], cell[1] + (n + 1) * step[1]) in free:
                n += 1
            return n

        self.anchors = {}  # (d_row, d_col) -> the anchor cell's centre in grid coordinates
        for step in ((0, 1), (0, -1), (1, 0), (-1, 0)):
            best = max(sorted(free), key=lambda cell: run(cell, step))
            if run(best, step) == 0:
                raise DatasetError(f"maze {policy_grid.name} has no two free cells in a row")
            self.anchors[step] = np.array(best) + 0.5

    def __call__(self, xy: np.ndarray, waypoint: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(positions, waypoints) [N, 2] to show the policy for ants at ``xy`` [N, 2]."""
        cells = self.grid.to_grid(waypoint) - self.grid.to_grid(xy)  # (row, col) offsets
        cells /= np.maximum(1.0, np.linalg.norm(cells, axis=-1, keepdims=True))  # one cell
        rows = np.abs(cells[:, 0]) >= np.abs(cells[:, 1])  # along a column: a row step
        along = np.where(rows, 0, 1)
        across = 1 - along
        n = np.arange(len(cells))
        cells[n, across] = np.clip(cells[n, across], -self.ACROSS, self.ACROSS)
        steps = np.zeros((len(cells), 2), np.int64)
        steps[n, along] = np.where(cells[n, along] >= 0, 1, -1)
        anchor = np.stack([self.anchors[tuple(step)] for step in steps])
        return self.grid.from_grid(anchor), self.grid.from_grid(anchor + cells)


def _ant_policy(policy_dir: str, maze: str, env: str):
    if not policy_dir:
        raise DatasetError(
            f"{env} is collected by a goal-reaching ant policy: give --policy RUN_DIR, a run "
            f"of ant_{maze} trained by `crl train --env ant_{maze}` (docs/offline.md)"
        )
    from contrastive_rl.api import load_policy

    try:
        policy = load_policy(policy_dir)
    except (FileNotFoundError, ValueError) as e:
        raise DatasetError(f"--policy {policy_dir}: {e}") from None
    from contrastive_rl.envs.ant_model import MAZES

    if policy.config.env.removeprefix("ant_") not in MAZES:
        raise DatasetError(
            f"--policy {policy_dir} was trained on {policy.config.env}; {env} needs a "
            f"goal-reaching ant policy: a run of ant_{maze} (or of another ant maze: "
            f"{', '.join('ant_' + m for m in MAZES)})"
        )
    return policy


def _sample_cell_xy(grid: MazeGrid, cells: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """D4RL's goal sampler: a cell of ``cells`` plus U(0, 1) + U(0, 0.5) per axis, at least 0."""
    from contrastive_rl.envs.ant import GOAL_OFFSET_HIGH

    cell = cells[rng.integers(len(cells))]
    offset = rng.uniform(0.0, GOAL_OFFSET_HIGH[0], 2) + rng.uniform(0.0, GOAL_OFFSET_HIGH[1], 2)
    return np.maximum(grid.centre(cell) + offset, 0.0)


def ant_start_goal(
    recipe: AntRecipe, grid: MazeGrid, rng: np.random.Generator
) -> tuple[np.ndarray | None, np.ndarray]:
    """(start xy or None for the start cell, goal xy) of one episode of ``recipe``."""
    from contrastive_rl.envs.ant import START_OFFSET_HIGH

    goal_cells = np.array(D4RL_GOAL_CELLS[recipe.maze])
    free = grid.free_cells
    goal = _sample_cell_xy(grid, goal_cells if recipe.goal == "play" else free, rng)
    if recipe.start == "fixed":
        return None, goal
    eligible = np.array([c for c in free if tuple(c) not in set(map(tuple, goal_cells))])
    cell = eligible[rng.integers(len(eligible))]
    start = np.maximum(grid.centre(cell) + rng.uniform(0.0, START_OFFSET_HIGH, 2), 0.0)
    return start, goal


def _collect_ant(options: CollectOptions) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
    task = options.env.removeprefix("offline_ant_")
    if task not in ANT_RECIPES:
        raise DatasetError(f"unknown offline ant task {options.env!r}")
    recipe = ANT_RECIPES[task]
    policy = _ant_policy(options.policy, recipe.maze, options.env)  # refused here, not in a worker
    policy_maze = policy.config.env.removeprefix("ant_")
    t = options.episode_length or ANT_EPISODE_LENGTHS.get(task, 1000)
    noise = ANT_ACTION_NOISE if options.noise is None else options.noise
    episodes = _episode_count(options.steps or ANT_STEPS, t)
    n = min(options.num_envs, episodes)
    chunks = [
        AntChunk(options.policy, task, t, noise, options.seed, first, min(n, episodes - first))
        for first in range(0, episodes, n)
    ]
    parts = []
    with _pool(options.workers, len(chunks)) as pool:  # workers load the policy themselves
        run = (
            pool.map(collect_ant_chunk, chunks)
            if pool
            else (collect_ant_chunk(c, policy) for c in chunks)
        )
        for part in run:
            parts.append(part)
            done = sum(len(p["goals"]) for p in parts)
            print(f"collect: {done}/{episodes} episodes ({done * (t + 1):,} rows)", file=sys.stderr)
    states, actions, qpos, qvel, goals = (
        np.concatenate([p[k] for p in parts])
        for k in ("states", "actions", "qpos", "qvel", "goals")
    )
    from contrastive_rl.envs import env_spec

    threshold = env_spec(f"ant_{recipe.maze}").success_threshold
    reached = np.linalg.norm(states[..., :2] - goals[:, None], axis=-1) <= threshold
    own_frame = policy_maze == recipe.maze
    metadata = {
        "policy": os.path.abspath(options.policy),
        "policy_env": policy.config.env,
        "policy_env_steps": int(policy.env_steps),
        "policy_action": "deterministic (tanh of the mean), goal = the waypoint",
        "policy_frame": "the maze's own" if own_frame else f"corridor of {policy_maze}",
        "action_noise": noise,
        "waypoint_noise": f"U(0, {ant_grid(recipe.maze).cell_size / 4:g}) per axis",
        "episode_length": t,
        "episodes": int(episodes),
        "recipe": dataclasses.asdict(recipe),
        "policy_success": float(reached.any(axis=1).mean()),
    }
    return flatten_episodes(states, actions, goals, reached, qpos=qpos, qvel=qvel), metadata


@dataclass(frozen=True)
class AntChunk:
    """``count`` episodes of one AntMaze dataset, collected side by side, from episode ``first``.

    Each chunk draws from its own stream (the seed and ``first``), so a dataset is the same
    whether its chunks run in one process or in several.
    """

    policy_dir: str
    task: str
    episode_length: int
    noise: float
    seed: int
    first: int
    count: int


def collect_ant_chunk(chunk: AntChunk, policy: Any = None) -> dict[str, np.ndarray]:
    """Collect one chunk: ``states``, ``actions``, ``qpos``, ``qvel`` [count, T + 1, .] and
    ``goals`` [count, 2]. ``policy``: the loaded ``chunk.policy_dir`` (a worker loads it once)."""
    from contrastive_rl.envs.ant import AntMazeHost, joint_noise_np

    recipe = ANT_RECIPES[chunk.task]
    if policy is None:
        policy = _worker_policy(chunk.policy_dir)
    policy_maze = policy.config.env.removeprefix("ant_")
    grid = ant_grid(recipe.maze)
    table = _next_cells(recipe.maze)
    frame = None if policy_maze == recipe.maze else CorridorFrame(ant_grid(policy_maze))
    t, count = chunk.episode_length, chunk.count
    envs = [AntMazeHost(f"ant_{recipe.maze}", goal_settle_steps=0) for _ in range(count)]
    qpos0 = envs[0].model.qpos0
    out = {
        "states": np.zeros((count, t + 1, 29), np.float32),
        "actions": np.zeros((count, t + 1, 8), np.float32),
        "qpos": np.zeros((count, t + 1, 15), np.float32),
        "qvel": np.zeros((count, t + 1, 14), np.float32),
        "goals": np.zeros((count, 2), np.float32),
    }
    rng = np.random.default_rng(np.random.SeedSequence([chunk.seed, 0xA17, chunk.first]))
    for i, env in enumerate(envs):
        start, out["goals"][i] = ant_start_goal(recipe, grid, rng)
        q, v = joint_noise_np(rng, qpos0)
        if start is not None:
            q[:2] = start
        env.set_state(q, v)
        env.goal = out["goals"][i]
    for step in range(t + 1):
        state = np.stack([env.state() for env in envs])
        waypoint = ant_waypoints(grid, table, state[:, :2], out["goals"], rng)
        shown = state
        if frame is not None:
            shown = state.copy()
            shown[:, :2], waypoint = frame(state[:, :2], waypoint)
        action = policy(np.concatenate([shown, waypoint], axis=1), deterministic=True)
        action = np.clip(action + chunk.noise * rng.standard_normal(action.shape), -1.0, 1.0)
        out["states"][:, step], out["actions"][:, step] = state, action
        out["qpos"][:, step] = np.stack([env.data.qpos[:15] for env in envs])
        out["qvel"][:, step] = np.stack([env.data.qvel[:14] for env in envs])
        if step < t:  # the last row's action is recorded, never executed (as D4RL's)
            for env, a in zip(envs, action, strict=True):
                env.step(a)
    return out


@functools.cache
def _worker_policy(policy_dir: str):  # a worker process lives for one collection
    from contrastive_rl.api import load_policy

    return load_policy(policy_dir)


@functools.cache
def _next_cells(maze: str) -> np.ndarray:
    return ant_grid(maze).next_cells()


@contextlib.contextmanager
def _pool(workers: int, chunks: int):
    """A pool of ``workers`` processes (fresh interpreters), or None to collect here."""
    if workers <= 1 or chunks <= 1:
        yield None
        return
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor

    context = multiprocessing.get_context("spawn")  # JAX and MuJoCo do not survive a fork
    with ProcessPoolExecutor(min(workers, chunks), mp_context=context) as pool:
        yield pool
