"""AntMaze of the original (``ant_env.AntMaze``, §2.6 of the spec) on two backends.

One MJCF model (``ant_model.build_mjcf``) is stepped either by MuJoCo's own bindings on the CPU
(``make_ant_host``, a ``HostEnv``) or by MJX inside JAX (``make_ant_mjx``, a pure ``JaxEnv``).
Both draw episodes from the same law:

* goal: a uniformly chosen 'g' cell (every free cell but the start), its centre plus
  U(0, 0.25 s) + U(0, 0.5) * 0.25 s on each axis (s = 4; D4RL's ``goal_sampler``); then, as the
  original, the ant is put there with the reset's joint noise and 50 zero-action env steps are
  simulated; the goal is the xy the ant settles at (``goal_settle_steps``, 0 skips this);
* start: with probability 0.5 the start cell plus U(0, 1) per axis (D4RL's reset-location
  sampler, whose only eligible cell is 'r'), else a fresh goal-sampler draw;
* joints: qpos0 + U(-0.1, 0.1) on all 15 coordinates (xy then overwritten; the quaternion is
  left unnormalised, as D4RL), qvel 0.1 * N(0, 1).

State: ``qpos[:15] ++ qvel[:14]`` (29-D, x and y first); goal: xy; actions in [-1, 1] scaled
to the motors' +-30. Success: ||xy - goal|| <= 0.5 (the original's ``<=``).
"""

from __future__ import annotations

import dataclasses

import jax
import jax.numpy as jnp
import mujoco
import numpy as np
from flax import struct
from mujoco import mjx

from contrastive_rl.envs.ant_model import (
    CTRL_LIMIT,
    FRAME_SKIP,
    MAZE_SIZE_SCALING,
    OFFLINE_ANT_TASKS,
    build_mjcf,
    cell_xy,
    maze_cells,
)
from contrastive_rl.envs.base import EnvSpec, EnvState, JaxEnv, uniform_standardiser
from contrastive_rl.envs.host import HostEnv

STATE_DIM = 29  # qpos[:15] ++ qvel[:14]
NQ, NV = 15, 14
SUCCESS_DISTANCE = 0.5
GOAL_SETTLE_STEPS = 50
EPISODE_LENGTHS = {"umaze": 700, "medium": 1000, "large": 1000}
QPOS_NOISE = 0.1
QVEL_NOISE = 0.1
# MJX's line search stops at MuJoCo's tolerance, which float32 never reaches, so it would run
# all of MuJoCo's default 50 iterations; with 8 the measured MJX-vs-MuJoCo trajectory errors
# change by less than 1e-6 and MJX steps about 3x faster. Only the MJX copy of the model.
MJX_LS_ITERATIONS = 8
# Goal offsets on each axis: U(0, 0.25 s) from ``_rowcol_to_xy(add_random_noise=True)`` plus
# U(0, 0.5) * 0.25 s from ``goal_sampler``; start offsets U(0, 0.5) * 0.5 s = U(0, 1).
GOAL_OFFSET_HIGH = (0.25 * MAZE_SIZE_SCALING, 0.5 * 0.25 * MAZE_SIZE_SCALING)
START_OFFSET_HIGH = 0.5 * 0.5 * MAZE_SIZE_SCALING


def maze_name(name: str) -> str:
    """'ant_umaze' -> 'umaze', with a clear error for other names."""
    maze = name.removeprefix("ant_")
    if not name.startswith("ant_") or maze not in EPISODE_LENGTHS:
        valid = ", ".join(f"ant_{m}" for m in EPISODE_LENGTHS)
        raise ValueError(f"unknown ant maze environment {name!r}; valid: {valid}")
    return maze


def ant_spec(name: str, layout: MazeLayout) -> EnvSpec:
    """The spec shared by both backends: 29-D state, xy goal, 8 actions."""
    low, high = layout.free_box()
    xy_shift, xy_scale = uniform_standardiser(tuple(low), tuple(high))  # joints etc. as they are
    return EnvSpec(
        name=name,
        state_dim=STATE_DIM,
        action_dim=8,
        episode_length=EPISODE_LENGTHS[maze_name(name)],
        goal_start=0,
        goal_end=2,
        success_threshold=SUCCESS_DISTANCE,
        input_shift=xy_shift + (0.0,) * (STATE_DIM - 2),
        input_scale=xy_scale + (1.0,) * (STATE_DIM - 2),
    )


class MazeLayout:
    """Cell geometry of one maze: goal cells and the start cell in world xy."""

    def __init__(self, maze: str):
        walls, goals, start = maze_cells(maze)
        self.maze = maze
        self.start_cell = start
        self.wall_cells = walls
        self.goal_cells = goals
        self.goal_xy = cell_xy(goals, start)  # [m, 2], cell centres

    def free_box(self) -> tuple[np.ndarray, np.ndarray]:
        """``(low, high)`` xy corners of the box around every free cell (goals and start)."""
        centres = np.vstack([self.goal_xy, np.zeros((1, 2))])  # the start cell is the origin
        half_cell = MAZE_SIZE_SCALING / 2
        return centres.min(axis=0) - half_cell, centres.max(axis=0) + half_cell

    def xy_to_cell(self, xy: np.ndarray) -> np.ndarray:
        """(row, col) of the cell containing each xy [..., 2]."""
        xy = np.asarray(xy, dtype=np.float64)
        col = np.floor(xy[..., 0] / MAZE_SIZE_SCALING + 0.5).astype(int) + self.start_cell[1]
        row = np.floor(xy[..., 1] / MAZE_SIZE_SCALING + 0.5).astype(int) + self.start_cell[0]
        return np.stack([row, col], axis=-1)

    def is_free(self, xy: np.ndarray) -> np.ndarray:
        """Whether each xy lies in a free (start or goal) cell."""
        cells = self.xy_to_cell(xy)
        free = {tuple(c) for c in self.goal_cells} | {self.start_cell}
        return np.array([tuple(c) in free for c in cells.reshape(-1, 2)]).reshape(cells.shape[:-1])

    # NumPy draws (host backend).
    def sample_goal_xy(self, rng: np.random.Generator) -> np.ndarray:
        cell = self.goal_xy[rng.integers(len(self.goal_xy))]
        offset = rng.uniform(0.0, GOAL_OFFSET_HIGH[0], 2) + rng.uniform(0.0, GOAL_OFFSET_HIGH[1], 2)
        return np.maximum(cell + offset, 0.0)

    def sample_start_xy(self, rng: np.random.Generator) -> np.ndarray:
        near_start = rng.uniform() < 0.5
        start = rng.uniform(0.0, START_OFFSET_HIGH, 2)
        anywhere = self.sample_goal_xy(rng)
        return start if near_start else anywhere


def build_maze(name: str, cone: str) -> tuple[EnvSpec, MazeLayout, mujoco.MjModel]:
    """What both backends start from: the spec, the maze's cells and the one compiled model."""
    layout = MazeLayout(maze_name(name))
    model = mujoco.MjModel.from_xml_string(build_mjcf(layout.maze, cone=cone))
    return ant_spec(name, layout), layout, model


def joint_noise_np(rng: np.random.Generator, qpos0: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """D4RL's reset noise: qpos0 + U(-0.1, 0.1), qvel 0.1 N(0, 1)."""
    qpos = qpos0 + rng.uniform(-QPOS_NOISE, QPOS_NOISE, NQ)
    qvel = QVEL_NOISE * rng.standard_normal(NV)
    return qpos, qvel


class AntMazeHost(HostEnv):
    """AntMaze stepped by MuJoCo on the CPU (one environment per object)."""

    def __init__(
        self, name: str, goal_settle_steps: int = GOAL_SETTLE_STEPS, cone: str = "pyramidal"
    ):
        self.spec, self.layout, self.model = build_maze(name, cone)
        self.data = mujoco.MjData(self.model)
        self.goal_settle_steps = goal_settle_steps
        self.goal = np.zeros(2, np.float32)

    def _set(self, qpos: np.ndarray, qvel: np.ndarray) -> None:
        """Fresh simulator state (as mujoco-py's reset + set_state: warm start from forward)."""
        mujoco.mj_resetData(self.model, self.data)
        self.data.qpos[:] = qpos
        self.data.qvel[:] = qvel
        mujoco.mj_forward(self.model, self.data)

    def _simulate(self, ctrl: np.ndarray) -> None:
        self.data.ctrl[:] = ctrl
        mujoco.mj_step(self.model, self.data, nstep=FRAME_SKIP)

    def state(self) -> np.ndarray:
        return np.concatenate([self.data.qpos[:NQ], self.data.qvel[:NV]]).astype(np.float32)

    def reset(self, seed: int) -> tuple[np.ndarray, np.ndarray]:
        rng = np.random.default_rng(seed)
        qpos0 = self.model.qpos0
        goal_xy = self.layout.sample_goal_xy(rng)
        if self.goal_settle_steps > 0:
            qpos, qvel = joint_noise_np(rng, qpos0)
            qpos[:2] = goal_xy
            self._set(qpos, qvel)
            for _ in range(self.goal_settle_steps):
                self._simulate(np.zeros(self.model.nu))
            goal_xy = self.data.qpos[:2].copy()
        self.goal = goal_xy.astype(np.float32)
        start_xy = self.layout.sample_start_xy(rng)
        qpos, qvel = joint_noise_np(rng, qpos0)
        qpos[:2] = start_xy
        self._set(qpos, qvel)
        return self.state(), self.goal.copy()

    def set_state(self, qpos: np.ndarray, qvel: np.ndarray) -> np.ndarray:
        """Put the ant in a given configuration (tests, backend comparisons)."""
        self._set(np.asarray(qpos, np.float64), np.asarray(qvel, np.float64))
        return self.state()

    def step(self, action: np.ndarray) -> np.ndarray:
        action = np.clip(np.asarray(action, np.float64), -1.0, 1.0)
        self._simulate(CTRL_LIMIT * action)
        return self.state()

    def goal_distance(self) -> float:
        return float(np.linalg.norm(self.data.qpos[:2] - self.goal))

    def success(self) -> bool:
        return bool(self.goal_distance() <= self.spec.success_threshold)


def make_ant_host(name: str) -> AntMazeHost:
    """Factory for the host registry: ``ant_umaze``, ``ant_medium``, ``ant_large``."""
    return AntMazeHost(name)


def offline_ant_task(name: str) -> tuple[str, tuple[int, int]]:
    """``offline_ant_<dataset>`` -> (maze, target cell), with a clear error for other names.

    Episode limits are the mazes' (700 for the U-maze, also for umaze-diverse, whose stored
    episodes are longer, as the original's; 1000 otherwise).
    """
    task = name.removeprefix("offline_ant_")
    if not name.startswith("offline_ant_") or task not in OFFLINE_ANT_TASKS:
        valid = ", ".join(f"offline_ant_{t}" for t in OFFLINE_ANT_TASKS)
        raise ValueError(f"unknown offline ant task {name!r}; valid: {valid}")
    return OFFLINE_ANT_TASKS[task]


class OfflineAntMazeHost(AntMazeHost):
    """The evaluation environment of an offline AntMaze task, as D4RL's antmaze-*-v2.

    Goal: the target cell's centre plus D4RL's goal-sampler offsets (U(0, 1) + U(0, 0.5) per
    axis), redrawn at every reset (v2); no settling, the goal is that xy. Start: the start cell,
    only the joints' reset noise (D4RL's ``non_zero_reset=False``: xy = U(-0.1, 0.1)). Success as
    online: x, y within 0.5 of the goal at some step (D4RL's evaluation ends the episode there).
    """

    def __init__(self, name: str, cone: str = "pyramidal"):
        maze, target = offline_ant_task(name)
        super().__init__(f"ant_{maze}", goal_settle_steps=0, cone=cone)
        self.spec = dataclasses.replace(self.spec, name=name)
        self.target_xy = cell_xy(np.array([target]), self.layout.start_cell)[0]

    def reset(self, seed: int) -> tuple[np.ndarray, np.ndarray]:
        rng = np.random.default_rng(seed)
        offset = rng.uniform(0.0, GOAL_OFFSET_HIGH[0], 2) + rng.uniform(0.0, GOAL_OFFSET_HIGH[1], 2)
        self.goal = np.maximum(self.target_xy + offset, 0.0).astype(np.float32)
        qpos, qvel = joint_noise_np(rng, self.model.qpos0)
        self._set(qpos, qvel)
        return self.state(), self.goal.copy()


def make_offline_ant_host(name: str) -> OfflineAntMazeHost:
    """Factory for the host registry: the six ``offline_ant_*`` tasks."""
    return OfflineAntMazeHost(name)


@struct.dataclass
class AntSim:
    """What MJX needs to continue a trajectory: positions, velocities and the solver warm start."""

    qpos: jax.Array  # [15]
    qvel: jax.Array  # [14]
    qacc_warmstart: jax.Array  # [14]


class AntMazeMJX(JaxEnv):
    """AntMaze stepped by MJX; ``reset``/``step`` are pure, jit- and vmap-able."""

    def __init__(
        self, name: str, goal_settle_steps: int = GOAL_SETTLE_STEPS, cone: str = "pyramidal"
    ):
        self.spec, self.layout, self.mj_model = build_maze(name, cone)
        self.mj_model.opt.ls_iterations = MJX_LS_ITERATIONS
        self.model = mjx.put_model(self.mj_model)
        self.data0 = mjx.make_data(self.model)
        self.goal_settle_steps = goal_settle_steps
        self.goal_cells_xy = jnp.asarray(self.layout.goal_xy, jnp.float32)
        self.qpos0 = jnp.asarray(self.mj_model.qpos0, self.data0.qpos.dtype)

    # Physics.
    def _data(self, sim: AntSim, ctrl: jax.Array) -> mjx.Data:
        return self.data0.replace(
            qpos=sim.qpos, qvel=sim.qvel, qacc_warmstart=sim.qacc_warmstart, ctrl=ctrl
        )

    def _set(self, qpos: jax.Array, qvel: jax.Array) -> AntSim:
        """A fresh state; the warm start comes from one forward pass, as the host's."""
        sim = AntSim(qpos=qpos, qvel=qvel, qacc_warmstart=jnp.zeros_like(qvel))
        d = mjx.forward(self.model, self._data(sim, jnp.zeros(self.model.nu)))
        return sim.replace(qacc_warmstart=d.qacc_warmstart)

    def simulate(self, sim: AntSim, ctrl: jax.Array) -> AntSim:
        """One env step: ``FRAME_SKIP`` MuJoCo steps with constant ``ctrl``."""
        d = jax.lax.fori_loop(
            0, FRAME_SKIP, lambda _, d: mjx.step(self.model, d), self._data(sim, ctrl)
        )
        return AntSim(qpos=d.qpos, qvel=d.qvel, qacc_warmstart=d.qacc_warmstart)

    @staticmethod
    def state_of(sim: AntSim) -> jax.Array:
        return jnp.concatenate([sim.qpos[:NQ], sim.qvel[:NV]]).astype(jnp.float32)

    # Draws (same law as the host's).
    def sample_goal_xy(self, key: jax.Array) -> jax.Array:
        k_cell, k_a, k_b = jax.random.split(key, 3)
        cell = self.goal_cells_xy[jax.random.randint(k_cell, (), 0, self.goal_cells_xy.shape[0])]
        offset = jax.random.uniform(k_a, (2,), maxval=GOAL_OFFSET_HIGH[0]) + jax.random.uniform(
            k_b, (2,), maxval=GOAL_OFFSET_HIGH[1]
        )
        return jnp.maximum(cell + offset, 0.0)

    def sample_start_xy(self, key: jax.Array) -> jax.Array:
        k_coin, k_start, k_goal = jax.random.split(key, 3)
        start = jax.random.uniform(k_start, (2,), maxval=START_OFFSET_HIGH)
        anywhere = self.sample_goal_xy(k_goal)
        return jnp.where(jax.random.uniform(k_coin) < 0.5, start, anywhere)

    def joint_noise(self, key: jax.Array) -> tuple[jax.Array, jax.Array]:
        k_pos, k_vel = jax.random.split(key)
        qpos = self.qpos0 + jax.random.uniform(k_pos, (NQ,), minval=-QPOS_NOISE, maxval=QPOS_NOISE)
        qvel = QVEL_NOISE * jax.random.normal(k_vel, (NV,))
        return qpos, qvel

    def reset(self, key: jax.Array) -> EnvState:
        k_goal, k_settle, k_start, k_joints = jax.random.split(key, 4)
        goal = self.sample_goal_xy(k_goal)
        if self.goal_settle_steps > 0:
            qpos, qvel = self.joint_noise(k_settle)
            sim = self._set(qpos.at[:2].set(goal), qvel)
            zero = jnp.zeros(self.model.nu)
            sim = jax.lax.fori_loop(
                0, self.goal_settle_steps, lambda _, s: self.simulate(s, zero), sim
            )
            goal = sim.qpos[:2]
        qpos, qvel = self.joint_noise(k_joints)
        sim = self._set(qpos.at[:2].set(self.sample_start_xy(k_start)), qvel)
        return EnvState(
            state=self.state_of(sim),
            goal=goal.astype(jnp.float32),
            t=jnp.zeros((), jnp.int32),
            sim=sim,
        )

    def set_state(self, env_state: EnvState, qpos: jax.Array, qvel: jax.Array) -> EnvState:
        """Put the ant in a given configuration (tests, backend comparisons)."""
        dtype = self.data0.qpos.dtype
        sim = self._set(jnp.asarray(qpos, dtype), jnp.asarray(qvel, dtype))
        return env_state.replace(state=self.state_of(sim), sim=sim)

    def step(self, env_state: EnvState, action: jax.Array, key: jax.Array) -> EnvState:
        del key  # the ant's dynamics are deterministic
        sim = self.simulate(env_state.sim, CTRL_LIMIT * jnp.clip(action, -1.0, 1.0))
        return env_state.replace(state=self.state_of(sim), sim=sim, t=env_state.t + 1)

    def success(self, env_state: EnvState) -> jax.Array:
        return self.goal_distance(env_state) <= self.spec.success_threshold


def make_ant_mjx(name: str) -> AntMazeMJX:
    """Factory for the JAX registry: ``ant_umaze``, ``ant_medium``, ``ant_large``."""
    return AntMazeMJX(name)
