"""Every environment as a ``gymnasium.Env`` with the goal-conditioned dict observation.

A view for other libraries and for one's own agents: ``observation`` (the state),
``achieved_goal`` (its goal-space part) and ``desired_goal``, ``compute_reward`` for hindsight
relabelling, ``info["is_success"]``, seeding through ``reset(seed=...)`` and the original's
episode length as truncation. The reward is the original's: 1 when the goal is reached, else 0.

The training loop does not use this: JAX environments keep their pure functional API (vmapped
inside the jit) and CPU simulators their worker processes. This module wraps both, one
environment at a time.
"""

from __future__ import annotations

from typing import Any

from contrastive_rl.envs.registry import STATE_ENVS, missing_extra_error, resolve_backend
from contrastive_rl.envs.spec import EnvSpec

if problem := missing_extra_error("gym", "the Gymnasium view (make_gym)"):
    raise ImportError(problem)

import gymnasium  # noqa: E402
import numpy as np  # noqa: E402
from gymnasium import spaces  # noqa: E402


class _JaxStepper:
    """One JAX environment stepped eagerly through jitted ``reset``/``step``."""

    def __init__(self, name: str, backend: str):
        import jax

        from contrastive_rl.envs import make_env

        env = make_env(name, backend)
        self.spec = env.spec
        self._jax = jax
        self._reset = jax.jit(env.reset)
        self._step = jax.jit(env.step)
        self._success = jax.jit(env.success)
        self._distance = jax.jit(env.goal_distance)
        self._state: Any = None
        self._key: Any = None

    def reset(self, seed: int) -> tuple[np.ndarray, np.ndarray]:
        reset_key, self._key = self._jax.random.split(self._jax.random.key(seed))
        self._state = self._reset(reset_key)
        return np.asarray(self._state.state), np.asarray(self._state.goal)

    def step(self, action: np.ndarray) -> np.ndarray:
        step_key = self._jax.random.fold_in(self._key, int(self._state.t))
        self._state = self._step(self._state, self._jax.numpy.asarray(action), step_key)
        return np.asarray(self._state.state)

    def success(self) -> bool:
        return bool(self._success(self._state))

    def goal_distance(self) -> float:
        return float(self._distance(self._state))

    def close(self) -> None:
        pass


class GoalEnv(gymnasium.Env):
    """The environment called ``name`` (any backend) as a Gymnasium goal environment."""

    metadata: dict[str, Any] = {"render_modes": []}

    def __init__(self, name: str, backend: str = "auto"):
        if resolve_backend(name, backend) == "mujoco":
            from contrastive_rl.envs.host import make_host_env

            self._env: Any = make_host_env(name)
        else:
            self._env = _JaxStepper(name, backend)
        spec: EnvSpec = self._env.spec
        if spec.image_shape is not None:
            raise ValueError(f"{name!r} observes images; the Gymnasium view covers state tasks")
        self.env_spec = spec
        self.max_episode_steps = spec.episode_length
        vector = {"float32": np.float32}[spec.obs_dtype]

        def box(dim: int) -> spaces.Box:
            return spaces.Box(-np.inf, np.inf, (dim,), vector)

        self.observation_space = spaces.Dict(
            {
                "observation": box(spec.state_dim),
                "achieved_goal": box(spec.goal_dim),
                "desired_goal": box(spec.goal_dim),
            }
        )
        self.action_space = spaces.Box(-1.0, 1.0, (spec.action_dim,), np.float32)
        self._goal = np.zeros(spec.goal_dim, np.float32)
        self._t = 0

    def _observation(self, state: np.ndarray) -> dict[str, np.ndarray]:
        state = np.asarray(state, np.float32)
        return {
            "observation": state,
            "achieved_goal": self.env_spec.obs_to_goal(state).copy(),
            "desired_goal": self._goal.copy(),
        }

    def _info(self) -> dict[str, Any]:
        return {"is_success": self._env.success(), "distance": self._env.goal_distance()}

    def reset(
        self, *, seed: int | None = None, options: dict[str, Any] | None = None
    ) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
        """A new episode: a new goal, then a new start, both drawn from the env's generator."""
        super().reset(seed=seed)
        state, goal = self._env.reset(int(self.np_random.integers(2**31 - 1)))
        self._goal = np.asarray(goal, np.float32)
        self._t = 0
        return self._observation(state), self._info()

    def step(
        self, action: np.ndarray
    ) -> tuple[dict[str, np.ndarray], float, bool, bool, dict[str, Any]]:
        action = np.clip(np.asarray(action, np.float32), -1.0, 1.0)
        state = self._env.step(action)
        self._t += 1
        info = self._info()
        truncated = self._t >= self.max_episode_steps  # goals never end an episode early
        return self._observation(state), float(info["is_success"]), False, truncated, info

    def compute_reward(
        self, achieved_goal: np.ndarray, desired_goal: np.ndarray, info: Any = None
    ) -> np.ndarray:
        """1 where ``achieved_goal`` reaches ``desired_goal`` by the task's rule (batched)."""
        distance = self.env_spec.success_distance(achieved_goal, desired_goal)
        return (distance < self.env_spec.success_threshold).astype(np.float32)

    def close(self) -> None:
        self._env.close()


def make_gym(name: str, backend: str = "auto") -> GoalEnv:
    """Environment ``name`` as a ``gymnasium.Env`` (see :class:`GoalEnv`)."""
    return GoalEnv(name, backend)


def register(namespace: str = "crl") -> list[str]:
    """Register every state environment as ``<namespace>/<name>-v0``; returns the ids.

    ``gymnasium.make("crl/point_FourRooms-v0")`` then works; the episode length is the
    environment's own truncation, so no extra time limit wrapper is added.
    """
    ids = []
    for name in STATE_ENVS:
        env_id = f"{namespace}/{name}-v0"
        if env_id not in gymnasium.registry:
            gymnasium.register(env_id, entry_point=GoalEnv, kwargs={"name": name})
        ids.append(env_id)
    return ids
