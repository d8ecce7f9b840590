"""Where each iteration's data comes from: one small ``Collector`` interface, two collectors.

``JaxCollector`` steps vmapped JAX environments inside the jit-compiled iteration.
``HostCollector`` runs CPU simulators in workers (local processes or Ray actors, both
``EnvGroup``s behind the same hand-over), each with its own copy of the policy; it can collect the
next unroll while the learner runs this iteration's updates (``overlap_collection``).

Both write ``unroll_length`` steps of ``num_envs`` environments per iteration into the episodes in
flight, which they keep in their part of the loop state. The envs step in lockstep, so every
episode ends at the same iteration; the finished episodes go to the replay whole, and every
environment starts again with a fresh goal and start (never a cached first state).
"""

from __future__ import annotations

import os
import sys
from typing import Any, Protocol

import jax
import jax.numpy as jnp
import numpy as np
from flax import struct

from contrastive_rl.actors.workers import HOWS, EnvWorkers, UnrollRequest
from contrastive_rl.agent.networks import Networks, make_networks, mode, sample_action
from contrastive_rl.config import Config, ConfigError
from contrastive_rl.envs.base import EnvState, JaxEnv
from contrastive_rl.envs.spec import EnvSpec
from contrastive_rl.training.budget import unroll_steps


@struct.dataclass
class Finished:
    """The episodes a collector hands to the replay: whole ones, inserted when ``done``."""

    states: jax.Array  # [N, T + 1, stored size]
    actions: jax.Array  # [N, T, action_dim]
    done: jax.Array  # bool: the episodes ended in this iteration


class Collector(Protocol):
    """What the trainer asks of a source of experience; it never asks which one it has.

    Per iteration the trainer calls, outside the jit, ``gather`` (the data of this iteration's
    unroll: host arrays, or None where collection happens inside the jit) and ``prefetch`` (start
    the next unroll while the learner works; a no-op unless the collector overlaps), then, inside
    the jitted iteration, ``absorb`` (write the unroll into the episodes in flight, return the
    finished ones) and, after the updates, ``refresh`` (which parameters act next).
    """

    spec: EnvSpec
    num_envs: int

    def init(self, key: jax.Array, actor_params: Any) -> Any:
        """The collector's part of the loop state: a pytree saved with every checkpoint."""

    def restore(self, state: Any) -> Any:
        """Bring what lives outside the loop state (simulators) in line with a loaded one."""

    def gather(self, state: Any, how: str) -> Any:
        """The data of the unroll after those ``state`` holds; waits for it."""

    def prefetch(self, state: Any, actor_params: Any, absorbed: bool = False) -> None:
        """Start the unroll after the one just gathered, acting with ``actor_params``; with
        ``absorbed``, ``state`` already holds that one (an iteration finished on resume)."""

    def absorb(
        self, state: Any, actor_params: Any, key: jax.Array, data: Any, how: str
    ) -> tuple[Any, Finished, dict[str, jax.Array]]:
        """In the jit: the new state, the finished episodes and ``episodes``/``successes``."""

    def refresh(self, state: Any, before: Any, after: Any) -> Any:
        """In the jit, after the updates: record the parameters the next unroll acts with."""

    def close(self) -> None:
        """Stop workers (nothing to do for JAX environments)."""


# -- acting -----------------------------------------------------------------------------------


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


# -- JAX environments: inside the jit ---------------------------------------------------------


@struct.dataclass
class CollectorState:
    envs: EnvState  # leaves [N, ...]
    states: jax.Array  # [N, T + 1, stored size], the episodes being written
    actions: jax.Array  # [N, T, action_dim]
    reached: jax.Array  # [N] bool, goal reached at some step of the current episode


class JaxCollector:
    """``num_envs`` vmapped JAX environments stepped ``unroll`` times under ``lax.scan`` in the
    jitted iteration, with the learner's current parameters (no lag, nothing outside the jit)."""

    def __init__(self, env: JaxEnv, config: Config):
        self.env = env
        self.spec = env.spec
        self.nets = make_networks(env.spec, config)
        self.num_envs = config.num_envs
        self.unroll = unroll_steps(config.unroll_length, env.spec.episode_length)

    def reset_envs(self, key: jax.Array) -> EnvState:
        return jax.vmap(self.env.reset)(jax.random.split(key, self.num_envs))

    def init(self, key: jax.Array, actor_params: Any = None) -> CollectorState:
        spec, n = self.env.spec, self.num_envs
        t, (size, dtype) = spec.episode_length, spec.stored_shape
        return CollectorState(
            envs=self.reset_envs(key),
            states=jnp.zeros((n, t + 1, size), jnp.dtype(dtype)),
            actions=jnp.zeros((n, t, spec.action_dim), jnp.float32),
            reached=jnp.zeros((n,), bool),
        )

    def restore(self, state: CollectorState) -> CollectorState:
        return state  # the environments are in the loop state: nothing lives outside

    def gather(self, state: CollectorState, how: str) -> None:
        return None

    def prefetch(self, state: CollectorState, actor_params: Any, absorbed: bool = False) -> None:
        return None

    def refresh(self, state: CollectorState, before: Any, after: Any) -> CollectorState:
        return state  # acts with the learner's parameters of the moment

    def close(self) -> None:
        return None

    def absorb(
        self,
        collector: CollectorState,
        actor_params: Any,
        key: jax.Array,
        data: None,
        how: str,
    ) -> tuple[CollectorState, Finished, dict[str, jax.Array]]:
        """``unroll`` steps of every env; the episodes end together when their time is up."""
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

        collector, _ = jax.lax.scan(one_step, collector, jax.random.split(step_key, self.unroll))
        done = collector.envs.t[0] == t_max
        successes = jnp.where(done, collector.reached.sum(dtype=jnp.float32), 0.0)

        def finish_episodes(c: CollectorState) -> CollectorState:
            states = c.states.at[:, t_max].set(c.envs.state.astype(c.states.dtype))
            return c.replace(
                states=states, envs=self.reset_envs(reset_key), reached=jnp.zeros_like(c.reached)
            )

        collector = jax.lax.cond(done, finish_episodes, lambda c: c, collector)
        episodes = jnp.where(done, jnp.float32(self.num_envs), 0.0)
        stats = {"episodes": episodes, "successes": successes}
        return collector, Finished(collector.states, collector.actions, done), stats


# -- host environments: workers with their own copy of the policy ----------------------------


def episode_seeds(num_envs: int, *entropy: int) -> np.ndarray:
    """Reset seeds of one round of episodes (e.g. from run seed, stream and round number).

    Env i's seed depends on the run only, not on how the envs are spread over workers.
    """
    return np.random.SeedSequence(list(entropy)).generate_state(num_envs, dtype=np.uint32)


_UNROLL_KEY_STREAM = 0x5EED  # host unrolls draw their actions from their own stream of the seed


def unroll_key_data(seed: int, index: int) -> np.ndarray:
    """Raw data of the PRNG key of the host unroll ``index`` of a run (a function of both only)."""
    base = jax.random.fold_in(jax.random.key(seed), _UNROLL_KEY_STREAM)
    return np.asarray(jax.random.key_data(jax.random.fold_in(base, index)))


@struct.dataclass
class HostCollectorState:
    """The host collector's part of the loop state: the episodes in flight, as far as the
    workers have stepped them, and the parameters the next unroll acts with."""

    unrolls: jax.Array  # int32: unrolls written so far (the episode time is derived from it)
    states: jax.Array  # [N, T + 1, stored size]
    actions: jax.Array  # [N, T, action_dim]
    reached: jax.Array  # [N] bool, goal reached at some step of the current episode
    policy: Any  # actor parameters of the next unroll to collect


class HostCollector:
    """CPU simulators in workers (``EnvWorkers`` or ``RayWorkers``), ``unroll`` steps per
    iteration, the policy refreshed once per unroll.

    The workers keep their environments mid-episode between unrolls. Every reset takes a seed
    from ``episode_seeds(run seed, round)`` and every unroll a key from ``unroll_key_data(run
    seed, unroll)``, so a run's episodes depend on its seed only. With ``lag`` (the config's
    ``overlap_collection``), the unroll of iteration t + 1 is collected while the learner runs
    iteration t's updates, with the parameters from before them: a fixed lag of one iteration.
    """

    def __init__(self, actors: Any, config: Config):
        self.actors = actors
        self.spec = actors.spec
        self.num_envs = actors.num_envs
        self.seed = config.seed
        self.episode_length = self.spec.episode_length
        self.unroll = unroll_steps(config.unroll_length, self.episode_length)
        self.unrolls_per_episode = self.episode_length // self.unroll
        self.lag = config.overlap_collection
        self._pending: int | None = None  # index of the unroll submitted and not yet gathered

    def init(self, key: jax.Array, actor_params: Any) -> HostCollectorState:
        spec, n = self.spec, self.num_envs
        t, (size, dtype) = spec.episode_length, spec.stored_shape
        return HostCollectorState(
            unrolls=jnp.zeros((), jnp.int32),
            states=jnp.zeros((n, t + 1, size), jnp.dtype(dtype)),
            actions=jnp.zeros((n, t, spec.action_dim), jnp.float32),
            reached=jnp.zeros((n,), bool),
            policy=jax.tree.map(jnp.copy, actor_params),
        )

    def _time(self, index: int) -> int:
        return (index % self.unrolls_per_episode) * self.unroll

    def _seeds(self, index: int) -> np.ndarray:
        return episode_seeds(self.num_envs, self.seed, index // self.unrolls_per_episode)

    def restore(self, state: HostCollectorState) -> HostCollectorState:
        """Put fresh workers where a checkpoint's episodes in flight were: reset them with their
        seeds and replay the recorded actions. A deterministic simulator (same machine and
        versions) lands on exactly the recorded states; otherwise the replayed states replace
        them, so each episode stays one consistent trajectory, and a note says so."""
        self._drain()
        index = int(state.unrolls)
        t = self._time(index)
        if t == 0:
            return state  # between episodes: the next unroll resets every env
        actions = np.asarray(state.actions[:, :t])
        replayed = self.actors.resimulate(self._seeds(index), actions)
        recorded = np.asarray(state.states[:, : t + 1])
        if np.array_equal(replayed, recorded):
            return state
        deviation = np.abs(replayed.astype(np.float64) - recorded).max()
        print(
            f"note: replaying the {self.num_envs} episodes in flight ({t} steps each) did not "
            f"reproduce their recorded states (largest difference {deviation:.3g}): the "
            f"simulator is not deterministic here (another machine or version?); the episodes "
            f"continue from the replayed states, so this resume is valid but not exact",
            file=sys.stderr,
        )
        return state.replace(states=state.states.at[:, : t + 1].set(replayed))

    def _submit(self, index: int, params: Any, how: str) -> None:
        t = self._time(index)
        request = UnrollRequest(
            # a copy: the learner's buffers may be donated to the next jitted iteration
            params=None if how == "random" else jax.tree.map(np.array, params),
            key_data=unroll_key_data(self.seed, index),
            seeds=self._seeds(index) if t == 0 else None,
            num_steps=self.unroll,
            how=how,
        )
        self.actors.submit_unroll(request)
        self._pending = index

    def _drain(self) -> None:
        """Receive and drop an unroll under way (its envs' episodes are then replayed anew)."""
        if self._pending is not None:
            self._pending = None
            self.actors.receive_unroll()

    def gather(self, state: HostCollectorState, how: str) -> dict[str, np.ndarray]:
        """The unroll's ``states``, ``actions`` and ``success`` (arrays for the jit)."""
        index = int(state.unrolls)
        if self._pending != index:  # nothing ahead: at the start, after a resume, or strict
            self._drain()
            self._submit(index, state.policy, how)
        self._pending = None
        unroll = self.actors.receive_unroll()
        return {"states": unroll.states, "actions": unroll.actions, "success": unroll.success}

    def prefetch(
        self, state: HostCollectorState, actor_params: Any, absorbed: bool = False
    ) -> None:
        if self.lag:
            self._submit(int(state.unrolls) + (0 if absorbed else 1), actor_params, "sample")

    def absorb(
        self,
        collector: HostCollectorState,
        actor_params: Any,
        key: jax.Array,
        data: dict[str, jax.Array],
        how: str,
    ) -> tuple[HostCollectorState, Finished, dict[str, jax.Array]]:
        t = (collector.unrolls % self.unrolls_per_episode) * self.unroll
        dtype = collector.states.dtype
        states = jax.lax.dynamic_update_slice(
            collector.states, data["states"].astype(dtype), (0, t, 0)
        )
        actions = jax.lax.dynamic_update_slice(
            collector.actions, data["actions"].astype(jnp.float32), (0, t, 0)
        )
        reached = jnp.where(t == 0, False, collector.reached) | data["success"].any(axis=1)
        done = t + self.unroll == self.episode_length
        stats = {
            "episodes": jnp.where(done, jnp.float32(self.num_envs), 0.0),
            "successes": jnp.where(done, reached.sum(dtype=jnp.float32), 0.0),
        }
        collector = collector.replace(
            unrolls=collector.unrolls + 1, states=states, actions=actions, reached=reached
        )
        return collector, Finished(states, actions, done), stats

    def refresh(self, state: HostCollectorState, before: Any, after: Any) -> HostCollectorState:
        return state.replace(policy=before if self.lag else after)

    def close(self) -> None:
        self._pending = None
        self.actors.close()


# -- construction -----------------------------------------------------------------------------


def start_actors(config: Config, num_envs: int, cpus_per_actor: float = 1.0) -> Any:
    """Workers for ``num_envs`` copies of the config's host environment: local processes, or
    Ray actors with ``actors='ray'`` (Ray is imported only then), each reserving
    ``cpus_per_actor`` CPUs of the cluster."""
    from contrastive_rl.envs.registry import HOST_ENVS

    factory = HOST_ENVS[config.env]
    if config.actors == "ray":
        from contrastive_rl.actors.ray_actors import RayWorkers

        return RayWorkers(
            config.env,
            factory,
            num_envs,
            config.num_actors,
            timeout_s=config.worker_timeout_s,
            config=config,
            address=config.ray_address,
            cpus_per_actor=cpus_per_actor,
        )
    return EnvWorkers(
        config.env,
        factory,
        num_envs,
        config.num_actors or os.cpu_count() or 1,
        timeout_s=config.worker_timeout_s,
        config=config,
    )


def make_collector(config: Config, backend: str) -> Collector:
    """The collector of ``config``'s environment as ``backend`` steps it (starts its workers)."""
    if config.actors == "ray" and backend != "mujoco":
        raise ConfigError(
            f"actors 'ray' runs CPU simulators (the mujoco backend); {config.env!r} runs on the "
            f"{backend!r} backend inside the jit: use actors 'local'"
        )
    if backend == "mujoco":
        actors = start_actors(config, config.num_envs)
        try:  # an unroll_length that does not divide the episode is known only now
            return HostCollector(actors, config)
        except BaseException:
            actors.close()
            raise
    from contrastive_rl.envs import make_env

    return JaxCollector(make_env(config.env, backend), config)


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


__all__ = [
    "HOWS",
    "Collector",
    "CollectorState",
    "Finished",
    "HostCollector",
    "HostCollectorState",
    "JaxCollector",
    "episode_metrics",
    "episode_seeds",
    "make_collector",
    "policy_action",
    "start_actors",
    "unroll_key_data",
]
