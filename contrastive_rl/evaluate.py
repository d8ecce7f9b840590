"""Evaluation on fresh goals with the deterministic policy, as the original's evaluator.

Metrics per episode, averaged: ``success`` (goal reached at any step, the original's
``success``), ``success_final`` (reached at the last step), and the distances to the goal at
the start, at the end and the smallest along the way.
"""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp

from contrastive_rl.collect import policy_action
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
        action = policy_action(nets, actor_params, envs.state, envs.goal, act_key, "mode")
        envs = jax.vmap(env.step)(envs, action, jax.random.split(env_key, num_episodes))
        return envs, (jax.vmap(env.goal_distance)(envs), jax.vmap(env.success)(envs))

    steps = jax.random.split(step_key, env.spec.episode_length)
    _, (distance, success) = jax.lax.scan(one_step, envs, steps)  # [T, episodes]
    return {
        "eval/success": success.any(axis=0).mean(),
        "eval/success_final": success[-1].mean(),
        "eval/init_dist": initial.mean(),
        "eval/final_dist": distance[-1].mean(),
        "eval/min_dist": jnp.minimum(initial, distance.min(axis=0)).mean(),
        "eval/delta_dist": (initial - distance[-1]).mean(),
    }
