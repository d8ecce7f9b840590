"""The point-maze stitch tasks (``offline_point_<maze>_stitch``): evaluation on far pairs only.

Their datasets (``crl collect --stitch``) hold short segments, each to a goal 4 BFS cells from
its start. Evaluation draws start-goal pairs that no segment joins: from the start cell, every
cell that may hold a point within the success distance of the goal cell is at least
``STITCH_EVAL_CELLS`` (8, twice a segment's) BFS steps away, so the agent cannot succeed by
getting near the goal through a wall, and has to chain what several segments show.
"""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp
import numpy as np

from contrastive_rl.envs.base import EnvState
from contrastive_rl.envs.point import SUCCESS_DISTANCE, PointMaze
from contrastive_rl.envs.registry import POINT_STITCH_MAZES

STITCH_EVAL_CELLS = 8


def far_pairs(walls_name: str, min_cells: int = STITCH_EVAL_CELLS) -> np.ndarray:
    """``[P, 2]`` (start, goal) indices into the free cells (row-major): the pairs where every
    cell within reach of the goal's success region is at least ``min_cells`` BFS steps from the
    start. A cell is within reach when its centre is within ``SUCCESS_DISTANCE + sqrt(2)`` of
    the goal cell's centre (some point of it may lie within the success distance)."""
    from contrastive_rl.envs.mazes import point_grid

    grid = point_grid(walls_name)
    free = grid.free_cells
    steps = np.array([grid.distances_from(tuple(c))[free[:, 0], free[:, 1]] for c in free])
    steps = np.where(steps < 0, np.iinfo(np.int64).max, steps)  # unreachable: never near
    centres = free + 0.5
    near = np.linalg.norm(centres[:, None] - centres[None], axis=-1) <= (
        SUCCESS_DISTANCE + math.sqrt(2.0)
    )
    # reach[s, g]: BFS steps from start cell s to the nearest cell near goal cell g
    reach = np.min(np.where(near[None, :, :], steps[:, :, None], np.iinfo(np.int64).max), axis=1)
    return np.argwhere(reach >= min_cells)


class FarGoalPointMaze(PointMaze):
    """A point maze whose resets draw a uniform pair of ``far_pairs``, each position uniform in
    its cell; the dynamics, episode length and success are the maze's own."""

    def __init__(self, walls_name: str, min_cells: int = STITCH_EVAL_CELLS):
        super().__init__(walls_name)
        pairs = far_pairs(walls_name, min_cells)
        if len(pairs) == 0:
            valid = [m for m in POINT_STITCH_MAZES if len(far_pairs(m, min_cells))]
            raise ValueError(
                f"point maze {walls_name!r} has no start-goal pair {min_cells} cells apart; "
                f"valid: {', '.join(valid)}"
            )
        self.pairs = jnp.asarray(pairs, jnp.int32)

    def reset(self, key: jax.Array) -> EnvState:
        pair_key, offset_key = jax.random.split(key)
        pair = self.pairs[jax.random.randint(pair_key, (), 0, self.pairs.shape[0])]
        offsets = jax.random.uniform(offset_key, (2, 2))
        return EnvState(
            state=self.free_cells[pair[0]] + offsets[0],
            goal=self.free_cells[pair[1]] + offsets[1],
            t=jnp.zeros((), jnp.int32),
        )
