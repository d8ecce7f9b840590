"""2-D point mazes of the original (``point_env.py``), written in JAX.

The state is a continuous (row, col) position in [0, H] x [0, W]; a cell is a wall when its map
entry is 1. The dynamics are the original's exactly: the action gets N(0, 0.01^2) noise and is
clipped to [-1, 1]; 10 sub-steps of 0.1 move each axis in turn, and a move is rejected when it
leaves the box or enters a wall cell. Success: within 2.0 of the goal.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

from contrastive_rl.envs.base import EnvSpec, EnvState, JaxEnv, uniform_standardiser

# Wall maps copied cell by cell from the original (1 = wall).
WALLS: dict[str, np.ndarray] = {
    "Small": np.zeros((4, 4), dtype=np.int32),
    "Cross": np.array(
        [
            [0, 0, 0, 0, 0, 0, 0],
            [0, 0, 0, 1, 0, 0, 0],
            [0, 0, 0, 1, 0, 0, 0],
            [0, 1, 1, 1, 1, 1, 0],
            [0, 0, 0, 1, 0, 0, 0],
            [0, 0, 0, 1, 0, 0, 0],
            [0, 0, 0, 0, 0, 0, 0],
        ]
    ),
    "FourRooms": np.array(
        [
            [0, 0, 0, 0, 0, 1, 0, 0, 0, 0, 0],
            [0, 0, 0, 0, 0, 1, 0, 0, 0, 0, 0],
            [0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0],
            [0, 0, 0, 0, 0, 1, 0, 0, 0, 0, 0],
            [0, 0, 0, 0, 0, 1, 0, 0, 0, 0, 0],
            [1, 0, 1, 1, 1, 1, 0, 0, 0, 0, 0],
            [0, 0, 0, 0, 0, 1, 1, 1, 0, 1, 1],
            [0, 0, 0, 0, 0, 1, 0, 0, 0, 0, 0],
            [0, 0, 0, 0, 0, 1, 0, 0, 0, 0, 0],
            [0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0],
            [0, 0, 0, 0, 0, 1, 0, 0, 0, 0, 0],
        ]
    ),
    "U": np.array(
        [
            [0, 0, 0],
            [0, 1, 0],
            [0, 1, 0],
            [0, 1, 0],
            [1, 1, 0],
            [0, 1, 0],
            [0, 1, 0],
            [0, 1, 0],
            [0, 0, 0],
        ]
    ),
    "Spiral11x11": np.array(
        [
            [1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1],
            [1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0],
            [1, 0, 1, 1, 1, 1, 1, 1, 1, 1, 0],
            [1, 0, 1, 0, 0, 0, 0, 0, 0, 1, 0],
            [1, 0, 1, 0, 1, 1, 1, 1, 0, 1, 0],
            [1, 0, 1, 0, 1, 0, 0, 1, 0, 1, 0],
            [1, 0, 1, 0, 1, 1, 0, 1, 0, 1, 0],
            [1, 0, 1, 0, 0, 0, 0, 1, 0, 1, 0],
            [1, 0, 1, 1, 1, 1, 1, 1, 0, 1, 0],
            [1, 0, 0, 0, 0, 0, 0, 0, 0, 1, 0],
            [1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 0],
        ]
    ),
    "Maze11x11": np.array(
        [
            [0, 1, 0, 0, 0, 1, 0, 0, 0, 1, 0],
            [0, 1, 0, 1, 0, 1, 0, 1, 0, 1, 0],
            [0, 1, 0, 1, 0, 1, 0, 1, 0, 1, 0],
            [0, 1, 0, 1, 0, 1, 0, 1, 0, 1, 0],
            [0, 0, 0, 1, 0, 0, 0, 1, 0, 1, 0],
            [1, 1, 1, 1, 1, 1, 1, 1, 0, 1, 0],
            [1, 1, 1, 0, 0, 0, 1, 0, 0, 1, 0],
            [1, 1, 1, 0, 1, 0, 1, 0, 1, 1, 0],
            [0, 0, 0, 0, 1, 0, 0, 0, 1, 1, 0],
            [0, 1, 1, 1, 1, 1, 1, 1, 1, 1, 0],
            [0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0],
        ]
    ),
}

ACTION_NOISE = 0.01
NUM_SUBSTEPS = 10
SUCCESS_DISTANCE = 2.0


def episode_length(walls_name: str) -> int:
    """50 steps, 100 for the two names with the literal '11x11' (FourRooms is 11x11 but gets 50)."""
    return 100 if "11x11" in walls_name else 50


class PointMaze(JaxEnv):
    """One wall map; ``reset``/``step`` are pure and vmap-able."""

    def __init__(self, walls_name: str):
        if walls_name not in WALLS:
            raise ValueError(f"unknown point maze {walls_name!r}; valid: {', '.join(WALLS)}")
        walls = np.asarray(WALLS[walls_name], dtype=np.int32)
        self.walls_name = walls_name
        self.walls = jnp.asarray(walls)
        self.height, self.width = walls.shape
        self.free_cells = jnp.asarray(np.argwhere(walls == 0), dtype=jnp.float32)
        shift, scale = uniform_standardiser((0.0, 0.0), (float(self.height), float(self.width)))
        self.spec = EnvSpec(
            name=f"point_{walls_name}",
            state_dim=2,
            action_dim=2,
            episode_length=episode_length(walls_name),
            goal_start=0,
            goal_end=2,
            success_threshold=SUCCESS_DISTANCE,
            input_shift=shift,  # positions lie in the [0, height] x [0, width] box
            input_scale=scale,
        )

    def sample_free_position(self, key: jax.Array) -> jax.Array:
        """A uniformly chosen free cell plus a U[0, 1)^2 offset."""
        cell_key, offset_key = jax.random.split(key)
        index = jax.random.randint(cell_key, (), 0, self.free_cells.shape[0])
        return self.free_cells[index] + jax.random.uniform(offset_key, (2,))

    def is_blocked(self, position: jax.Array) -> jax.Array:
        """Outside [0, H] x [0, W], or inside a wall cell (the cell index clipped to the grid)."""
        high = jnp.array([self.height, self.width], dtype=position.dtype)
        outside = jnp.any(position < 0) | jnp.any(position > high)
        cell = jnp.clip(jnp.floor(position).astype(jnp.int32), 0, high.astype(jnp.int32) - 1)
        return outside | (self.walls[cell[0], cell[1]] == 1)

    def reset(self, key: jax.Array) -> EnvState:
        goal_key, start_key = jax.random.split(key)
        goal = self.sample_free_position(goal_key)  # the goal is drawn first, as the original
        start = self.sample_free_position(start_key)
        return EnvState(state=start, goal=goal, t=jnp.zeros((), jnp.int32))

    def step(self, env_state: EnvState, action: jax.Array, key: jax.Array) -> EnvState:
        noise = ACTION_NOISE * jax.random.normal(key, (2,), dtype=action.dtype)
        action = jnp.clip(action + noise, -1.0, 1.0)
        dt = 1.0 / NUM_SUBSTEPS
        position = env_state.state
        for _ in range(NUM_SUBSTEPS):
            for axis in range(2):
                moved = position.at[axis].add(dt * action[axis])
                position = jnp.where(self.is_blocked(moved), position, moved)
        return env_state.replace(state=position, t=env_state.t + 1)
