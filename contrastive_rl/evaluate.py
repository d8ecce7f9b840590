"""Evaluation on fresh goals with the deterministic policy, as the original's evaluator.

Metrics per episode, averaged: ``success`` (goal reached at any step, the original's
``success``), ``success_final`` (reached at the last step), and the distances to the goal at
the start, at the end and the smallest along the way. Evaluation has its own environments.
"""

from __future__ import annotations

from typing import Any

import jax
import numpy as np

from contrastive_rl.collect import HostCollector, episode_metrics, episode_seeds, observed_action
from contrastive_rl.envs.base import EnvState, JaxEnv
from contrastive_rl.networks import Networks


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
    collector: HostCollector, actor_params: Any, key: jax.Array, num_episodes: int
) -> dict[str, float]:
    """``num_episodes`` episodes on the evaluator's own host environments, in rounds."""
    base = int(jax.random.randint(key, (), 0, np.iinfo(np.int32).max))
    n = collector.workers.num_envs
    rounds = -(-num_episodes // n)
    parts: dict[str, list[np.ndarray]] = {}
    for r, k in enumerate(jax.random.split(key, rounds)):
        seeds = episode_seeds(n, base, r)
        _, _, stats = collector.rollout(actor_params, k, seeds, how="mode")
        for name, value in stats.items():
            parts.setdefault(name, []).append(value)
    return {
        f"eval/{name}": float(np.concatenate(values)[:num_episodes].mean())
        for name, values in parts.items()
    }
