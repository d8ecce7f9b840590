"""Static facts of a goal-conditioned environment, shared by every backend that steps it.

Plain Python (no JAX), so the registry, the command line and worker processes can read specs
without starting JAX.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

Array = Any  # a NumPy or JAX array


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
    # Point images: the mean image over the maze's free space and one scale for all pixels
    # (arrays of state_dim; derived from the name, so left out of comparisons and hashes).
    input_shift: Sequence[float] | None = field(default=None, compare=False, repr=False)
    input_scale: Sequence[float] | None = field(default=None, compare=False, repr=False)
    # The goal dimensions whose Euclidean distance the success rule thresholds (the puck of
    # sawyer_push, the handle of sawyer_drawer); None = the whole goal.
    success_dims: tuple[int, ...] | None = None
    # Environments whose observation is a pure function of a few numbers (point images: the 2-D
    # position) keep those numbers in the replay, ``stored_dim`` float32 per state, and ``render``
    # turns them into what the agent sees ([..., stored_dim] -> [..., state_dim]) whenever a batch
    # is sampled or an action chosen; the replay then stays as small as for the state tasks.
    # None: the replay stores the observation itself.
    render: Callable[[Array], Array] | None = field(default=None, compare=False, repr=False)
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

    def observe(self, stored: Array) -> Array:
        """What the agent sees of stored states ``[..., stored]`` (identity without ``render``)."""
        return stored if self.render is None else self.render(stored)

    def observe_goal(self, goal: Array) -> Array:
        """The goal the agent sees; with ``render``, a commanded goal is a stored goal *state*."""
        return goal if self.render is None else self.obs_to_goal(self.render(goal))

    @property
    def obs_dim(self) -> int:
        return self.state_dim + self.goal_dim

    def obs_to_goal(self, state: Array) -> Array:
        """The goal-space part of a state (or of a batch of states)."""
        return state[..., self.goal_start : self.goal_end]

    def success_distance(self, achieved: Array, desired: Array) -> Array:
        """What the success rule thresholds, from goal-space vectors (batched on leading axes).

        Equals the environment's own ``goal_distance`` for the state tasks; lets a goal be
        scored without the simulator (hindsight rewards, ``compute_reward``).
        """
        import numpy as np

        delta = np.asarray(achieved, np.float64) - np.asarray(desired, np.float64)
        if self.success_dims is not None:
            delta = delta[..., list(self.success_dims)]
        return np.linalg.norm(delta, axis=-1)


def uniform_standardiser(
    low: tuple[float, ...], high: tuple[float, ...]
) -> tuple[tuple[float, ...], tuple[float, ...]]:
    """``(shift, scale)`` that standardise a uniform draw from the box [low, high]."""
    shift = tuple((lo + hi) / 2 for lo, hi in zip(low, high, strict=True))
    scale = tuple((hi - lo) / 12**0.5 for lo, hi in zip(low, high, strict=True))
    return shift, scale
