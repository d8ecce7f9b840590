"""Collection of whole episodes: JAX environments inside the jit-compiled loop, host
environments (CPU simulators) from worker processes.

``num_envs`` environments step in lockstep (every episode has the same fixed length), so they
all finish together; finished episodes go to the replay whole, and every environment is reset
with a fresh goal and start (never a cached first state).
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import partial
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from flax import struct

from contrastive_rl.envs.base import EnvState, JaxEnv
from contrastive_rl.networks import Networks, mode, sample_action
from contrastive_rl.replay import EpisodeReplay, ReplayState
from contrastive_rl.workers import EnvWorkers


@struct.dataclass
class CollectorState:
    envs: EnvState  # leaves [N, ...]
    states: jax.Array  # [N, T + 1, stored size], the episodes being written
    actions: jax.Array  # [N, T, action_dim]
    reached: jax.Array  # [N] bool, goal reached at some step of the current episode


def policy_action(
    nets: Networks,
    actor_params: Any,
    state: jax.Array,
    goal: jax.Array,
    key: jax.Array,
    how: str,
) -> jax.Array:
    """Actions for a batch: 'sample' (training), 'mode' (evaluation) or 'random' (warm-up)."""
    if how == "random":
        shape = (state.shape[0], nets.spec.action_dim)
        return jax.random.uniform(key, shape, minval=-1.0, maxval=1.0)
    loc, scale = nets.policy(actor_params, state, goal)
    return mode(loc) if how == "mode" else sample_action(loc, scale, key)


def observed_action(
    nets: Networks, actor_params: Any, envs: EnvState, key: jax.Array, how: str
) -> jax.Array:
    """``policy_action`` on what the agent sees of JAX environments (rendered, for images)."""
    spec = nets.spec
    state, goal = spec.observe(envs.state), spec.observe_goal(envs.goal)
    return policy_action(nets, actor_params, state, goal, key, how)


@dataclass(frozen=True)
class JaxCollector:
    env: JaxEnv
    nets: Networks
    replay: EpisodeReplay
    num_envs: int

    def reset_envs(self, key: jax.Array) -> EnvState:
        return jax.vmap(self.env.reset)(jax.random.split(key, self.num_envs))

    def init(self, key: jax.Array) -> CollectorState:
        spec, n = self.env.spec, self.num_envs
        t, (size, dtype) = spec.episode_length, spec.stored_shape
        return CollectorState(
            envs=self.reset_envs(key),
            states=jnp.zeros((n, t + 1, size), jnp.dtype(dtype)),
            actions=jnp.zeros((n, t, spec.action_dim), jnp.float32),
            reached=jnp.zeros((n,), bool),
        )

    def rollout(
        self,
        collector: CollectorState,
        replay: ReplayState,
        actor_params: Any,
        key: jax.Array,
        num_steps: int,
        how: str,
    ) -> tuple[CollectorState, ReplayState, dict[str, jax.Array]]:
        """``num_steps`` steps of every env; ``num_steps`` divides the episode length."""
        t_max = self.env.spec.episode_length
        step_key, reset_key = jax.random.split(key)

        def one_step(c: CollectorState, k: jax.Array) -> tuple[CollectorState, None]:
            act_key, env_key = jax.random.split(k)
            t = c.envs.t[0]  # lockstep: every env is at the same time
            action = observed_action(self.nets, actor_params, c.envs, act_key, how)
            envs = jax.vmap(self.env.step)(c.envs, action, jax.random.split(env_key, self.num_envs))
            return c.replace(
                envs=envs,
                states=c.states.at[:, t].set(c.envs.state.astype(c.states.dtype)),
                actions=c.actions.at[:, t].set(action),
                reached=c.reached | jax.vmap(self.env.success)(envs),
            ), None

        collector, _ = jax.lax.scan(one_step, collector, jax.random.split(step_key, num_steps))

        def finish_episodes(args):
            c, r = args
            states = c.states.at[:, t_max].set(c.envs.state.astype(c.states.dtype))
            r = self.replay.insert(r, states, c.actions)
            stats = {
                "episodes": jnp.float32(self.num_envs),
                "successes": c.reached.sum(dtype=jnp.float32),
            }
            c = c.replace(
                states=states, envs=self.reset_envs(reset_key), reached=jnp.zeros_like(c.reached)
            )
            return c, r, stats

        def keep_going(args):
            c, r = args
            return c, r, {"episodes": jnp.float32(0), "successes": jnp.float32(0)}

        done = collector.envs.t[0] == t_max
        return jax.lax.cond(done, finish_episodes, keep_going, (collector, replay))


def episode_seeds(num_envs: int, *entropy: int) -> np.ndarray:
    """Reset seeds of one round of episodes (e.g. from run seed, stream and round number).

    Env i's seed depends on the run only, not on how the envs are spread over workers.
    """
    return np.random.SeedSequence(list(entropy)).generate_state(num_envs, dtype=np.uint32)


class HostCollector:
    """Whole episodes from host environments in worker processes, one lockstep round at a time.

    The policy is one jitted call per step, batched over every environment; the simulators step
    in the worker processes. Every reset takes an explicit seed (``episode_seeds``), so a
    resumed run draws the same episodes.
    """

    def __init__(self, workers: EnvWorkers, nets: Networks):
        self.workers = workers
        self.spec = workers.spec
        self._act = jax.jit(partial(policy_action, nets), static_argnames="how")

    def rollout(
        self, actor_params: Any, key: jax.Array, seeds: np.ndarray, how: str
    ) -> tuple[np.ndarray, np.ndarray, dict[str, np.ndarray]]:
        """One episode per env from reset ``seeds``: ``states [N, T+1, S]``, ``actions
        [N, T, A]`` and per-episode metrics (``episode_metrics``)."""
        spec, n = self.spec, self.workers.num_envs
        t_max = spec.episode_length
        states = np.zeros((n, t_max + 1, spec.state_dim), spec.obs_dtype)
        actions = np.zeros((n, t_max, spec.action_dim), np.float32)
        state, goal, initial = self.workers.reset(seeds)
        distance = np.zeros((t_max, n), np.float32)
        success = np.zeros((t_max, n), bool)
        for t, k in enumerate(jax.random.split(key, t_max)):
            states[:, t] = state
            action = np.asarray(self._act(actor_params, state, goal, k, how=how))
            actions[:, t] = action
            result = self.workers.step(action)
            state, success[t], distance[t] = result.states, result.success, result.distance
        states[:, t_max] = state
        return states, actions, episode_metrics(initial, distance, success)


def episode_metrics(initial: Any, distance: Any, success: Any) -> dict[str, Any]:
    """Success and distances of each episode from ``distance``/``success`` of shape [T, episodes]
    and the initial distance [episodes]; NumPy and JAX arrays alike."""
    final = distance[-1]
    return {
        "success": success.any(axis=0),
        "success_final": success[-1],
        "init_dist": initial,
        "final_dist": final,
        "min_dist": jnp.minimum(initial, distance.min(axis=0)),
        "delta_dist": initial - final,
    }
