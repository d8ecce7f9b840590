"""Evaluation on fresh goals with the deterministic policy, as the original's evaluator.

Metrics per episode, averaged: ``success`` (goal reached at any step, the original's
``success``), ``success_final`` (reached at the last step), and the distances to the goal at
the start, at the end and the smallest along the way. Evaluation has its own environments, of
the same kind as the run's collector: JAX ones inside a jitted function, or host ones in workers
of their own (started on the first evaluation).
"""

from __future__ import annotations

from typing import Any

import jax
import numpy as np

from contrastive_rl.actors.workers import UnrollRequest
from contrastive_rl.agent.networks import Networks
from contrastive_rl.config import Config
from contrastive_rl.envs.base import EnvState, JaxEnv
from contrastive_rl.training.collect import (
    episode_metrics,
    episode_seeds,
    observed_action,
    start_actors,
)


def evaluate_jax(
    env: JaxEnv, nets: Networks, actor_params: Any, key: jax.Array, num_episodes: int
) -> dict[str, jax.Array]:
    """Run ``num_episodes`` whole episodes in parallel; jit with ``num_episodes`` static."""
    reset_key, step_key = jax.random.split(key)
    envs = jax.vmap(env.reset)(jax.random.split(reset_key, num_episodes))
    initial = jax.vmap(env.goal_distance)(envs)

    def one_step(envs: EnvState, k: jax.Array):
        act_key, env_key = jax.random.split(k)
        action = observed_action(nets, actor_params, envs, act_key, "mode")
        envs = jax.vmap(env.step)(envs, action, jax.random.split(env_key, num_episodes))
        return envs, (jax.vmap(env.goal_distance)(envs), jax.vmap(env.success)(envs))

    steps = jax.random.split(step_key, env.spec.episode_length)
    _, (distance, success) = jax.lax.scan(one_step, envs, steps)  # [T, episodes]
    per_episode = episode_metrics(initial, distance, success)
    return {f"eval/{k}": v.mean() for k, v in per_episode.items()}


def evaluate_host(
    actors: Any, actor_params: Any, key: jax.Array, num_episodes: int
) -> dict[str, float]:
    """``num_episodes`` whole episodes on host environments in workers (``EnvWorkers`` or
    ``RayWorkers``), in rounds of as many as there are envs."""
    base = int(jax.random.randint(key, (), 0, np.iinfo(np.int32).max))
    n, t = actors.num_envs, actors.spec.episode_length
    params = jax.device_get(actor_params)
    rounds = -(-num_episodes // n)
    parts: dict[str, list[np.ndarray]] = {}
    for r, k in enumerate(jax.random.split(key, rounds)):
        seeds = episode_seeds(n, base, r)
        key_data = np.asarray(jax.random.key_data(k))
        actors.submit_unroll(UnrollRequest(params, key_data, seeds, t, "mode"))
        unroll = actors.receive_unroll()
        stats = episode_metrics(unroll.initial, unroll.distance.T, unroll.success.T)
        for name, value in stats.items():
            parts.setdefault(name, []).append(np.asarray(value))
    return {
        f"eval/{name}": float(np.concatenate(values)[:num_episodes].mean())
        for name, values in parts.items()
    }


class JaxEvaluator:
    """Evaluation of JAX environments, one jitted function."""

    def __init__(self, env: JaxEnv, nets: Networks, num_episodes: int):
        def evaluate(actor_params: Any, key: jax.Array) -> dict[str, jax.Array]:
            return evaluate_jax(env, nets, actor_params, key, num_episodes)

        self._evaluate = jax.jit(evaluate)

    def evaluate(self, actor_params: Any, key: jax.Array) -> dict[str, Any]:
        return self._evaluate(actor_params, key)

    def close(self) -> None:
        return None


class HostEvaluator:
    """Evaluation of host environments in workers of its own, started on first use."""

    def __init__(self, config: Config):
        self.config = config
        self.actors: Any = None

    def evaluate(self, actor_params: Any, key: jax.Array) -> dict[str, Any]:
        config = self.config
        if self.actors is None:
            # Ray actors of the evaluator reserve no CPU: they step only between iterations
            n = min(config.num_envs, config.eval_episodes)
            self.actors = start_actors(config, n, cpus_per_actor=0.0)
        return evaluate_host(self.actors, actor_params, key, config.eval_episodes)

    def close(self) -> None:
        if self.actors is not None:
            self.actors.close()
            self.actors = None


def make_evaluator(config: Config, backend: str, nets: Networks) -> JaxEvaluator | HostEvaluator:
    """The evaluator of ``config``'s environment as ``backend`` steps it."""
    if backend == "mujoco":
        return HostEvaluator(config)
    from contrastive_rl.envs import make_env

    return JaxEvaluator(make_env(config.env, backend), nets, config.eval_episodes)
