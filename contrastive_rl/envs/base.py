"""The goal-conditioned environment contract every environment family implements.

The agent sees ``obs = [state ; goal]``. ``goal`` lives in goal space: the slice
``state[goal_start:goal_end]`` of a state (``obs_to_goal``), which is also how hindsight
relabelling turns a future state into a goal. Actions are in [-1, 1]^action_dim. Episodes have
a fixed length and never terminate early; goals are drawn anew at every reset.

JAX environments are pure functions of explicit state and keys (``reset``, ``step``), so many
of them run under ``vmap`` inside the jit-compiled training loop.
"""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp
from flax import struct

from contrastive_rl.envs.spec import EnvSpec, uniform_standardiser

__all__ = ["EnvSpec", "EnvState", "JaxEnv", "uniform_standardiser"]


@struct.dataclass
class EnvState:
    """State of one environment; vmapped, every leaf gains a leading env axis."""

    state: jax.Array  # [state_dim], what the agent sees of the world
    goal: jax.Array  # [goal_dim], the commanded goal of this episode
    t: jax.Array  # int32, steps taken in this episode
    sim: Any = None  # simulator internals the agent does not see (None for point mazes)


class JaxEnv:
    """A goal-conditioned environment written in JAX: pure ``reset`` and ``step``."""

    spec: EnvSpec

    def reset(self, key: jax.Array) -> EnvState:
        """A fresh episode: a new goal, then a new start."""
        raise NotImplementedError

    def step(self, env_state: EnvState, action: jax.Array, key: jax.Array) -> EnvState:
        """One environment step; ``t`` counts up, episodes never end early."""
        raise NotImplementedError

    def goal_distance(self, env_state: EnvState) -> jax.Array:
        """Distance to the goal by the task's own measure (what success thresholds)."""
        return jnp.linalg.norm(self.spec.obs_to_goal(env_state.state) - env_state.goal, axis=-1)

    def success(self, env_state: EnvState) -> jax.Array:
        """Whether the goal is reached now (the original's reward of 1)."""
        return self.goal_distance(env_state) < self.spec.success_threshold

    @staticmethod
    def observation(env_state: EnvState) -> jax.Array:
        """The agent's observation ``[state ; goal]``."""
        return jnp.concatenate([env_state.state, env_state.goal], axis=-1)
