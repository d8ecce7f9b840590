"""Data passed between replay, learner and losses."""

from __future__ import annotations

import jax
from flax import struct


@struct.dataclass
class Batch:
    """B relabelled transitions; ``goal[i]`` is obs_to_goal of a future state of row i's episode.

    The other rows' goals are row i's negatives. ``next_state`` shares the row's goal.
    """

    state: jax.Array  # [B, state_dim]
    action: jax.Array  # [B, action_dim]
    next_state: jax.Array  # [B, state_dim]
    goal: jax.Array  # [B, goal_dim]
