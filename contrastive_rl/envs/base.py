"""The goal-conditioned environment contract every environment family implements.

The agent sees ``obs = [state ; goal]``. ``goal`` lives in goal space: the slice
``state[goal_start:goal_end]`` of a state (``obs_to_goal``), which is also how hindsight
relabelling turns a future state into a goal. Actions are in [-1, 1]^action_dim. Episodes have
a fixed length and never terminate early; goals are drawn anew at every reset.

JAX environments are pure functions of explicit state and keys (``reset``, ``step``), so many
of them run under ``vmap`` inside the jit-compiled training loop.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import jax
import jax.numpy as jnp
from flax import struct


@dataclass(frozen=True)
class EnvSpec:
    """Static facts of an environment, shared by every backend that steps it."""

    name: str
    state_dim: int
    action_dim: int
    episode_length: int  # env steps per episode; T + 1 observations are stored
    goal_start: int  # obs_to_goal(state) = state[goal_start:goal_end]
    goal_end: int
    success_threshold: float  # distance below which the goal counts as reached
    obs_dtype: str = "float32"
    # Image environments: the state is an image flattened in HWC order (state_dim = H * W * C,
    # uint8) and the goal is the whole image (goal_start = 0, goal_end = state_dim); None for
    # environments whose state is a vector.
    image_shape: tuple[int, int, int] | None = None
    # Where the world's extent is known (maze positions): per state dimension, the shift and scale
    # that give it zero mean and unit variance over that extent (``--input_norm``); None where not.
    input_shift: tuple[float, ...] | None = None
    input_scale: tuple[float, ...] | None = None
    # Environments whose observation is a pure function of a few numbers (point images: the 2-D
    # position) keep those numbers in the replay, ``stored_dim`` float32 per state, and ``render``
    # turns them into what the agent sees ([..., stored_dim] -> [..., state_dim]) whenever a batch
    # is sampled or an action chosen; the replay then stays as small as for the state tasks.
    # None: the replay stores the observation itself.
    render: Callable[[jax.Array], jax.Array] | None = field(default=None, compare=False, repr=False)
    stored_dim: int = 0

    @property
    def goal_dim(self) -> int:
        return self.goal_end - self.goal_start

    @property
    def stored_shape(self) -> tuple[int, str]:
        """``(size, dtype)`` of one state as the replay and the collector keep it."""
        if self.render is None:
            return self.state_dim, self.obs_dtype
        return self.stored_dim, "float32"

    def observe(self, stored: jax.Array) -> jax.Array:
        """What the agent sees of stored states ``[..., stored]`` (identity without ``render``)."""
        return stored if self.render is None else self.render(stored)

    def observe_goal(self, goal: jax.Array) -> jax.Array:
        """The goal the agent sees; with ``render``, a commanded goal is a stored goal *state*."""
        return goal if self.render is None else self.obs_to_goal(self.render(goal))

    @property
    def obs_dim(self) -> int:
        return self.state_dim + self.goal_dim

    def obs_to_goal(self, state: jax.Array) -> jax.Array:
        """The goal-space part of a state (or of a batch of states)."""
        return state[..., self.goal_start : self.goal_end]


def uniform_standardiser(
    low: tuple[float, ...], high: tuple[float, ...]
) -> tuple[tuple[float, ...], tuple[float, ...]]:
    """``(shift, scale)`` that standardise a uniform draw from the box [low, high]."""
    shift = tuple((lo + hi) / 2 for lo, hi in zip(low, high, strict=True))
    scale = tuple((hi - lo) / 12**0.5 for lo, hi in zip(low, high, strict=True))
    return shift, scale


@struct.dataclass
class EnvState:
    """State of one environment; vmapped, every leaf gains a leading env axis."""

    state: jax.Array  # [state_dim], what the agent sees (spec.observe of it, with spec.render)
    goal: jax.Array  # [goal_dim], the commanded goal (with spec.render: a stored goal state)
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
