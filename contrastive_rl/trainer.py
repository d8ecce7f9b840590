"""The training loop: one jit-compiled iteration of collection, insertion and K updates.

An iteration steps ``num_envs`` JAX environments ``unroll_length`` times, hands finished episodes
to the replay, then runs K = round(num_envs * unroll_length * utd) gradient steps under
``lax.scan``, each sampling and relabelling its own batch. A warm-up of random-action episodes
comes first (``min_replay_size``). The host loop around it only evaluates, logs and
checkpoints. The budget is exact: the run does the env steps asked, rounded up to whole
iterations (and says so), never fewer.
"""

from __future__ import annotations

import math
import os
import sys
from dataclasses import dataclass, field
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from flax import struct
from jax.sharding import Mesh, NamedSharding, PartitionSpec

from contrastive_rl.collect import CollectorState, HostCollector, JaxCollector, episode_seeds
from contrastive_rl.config import Config, ConfigError
from contrastive_rl.envs import HOST_ENVS, JaxEnv, make_env, resolve_backend
from contrastive_rl.evaluate import evaluate_host, evaluate_jax
from contrastive_rl.learner import Learner, TrainState
from contrastive_rl.networks import make_networks
from contrastive_rl.replay import EpisodeReplay, ReplayState, memory_limit
from contrastive_rl.workers import EnvWorkers


@struct.dataclass
class LoopState:
    """Everything a run needs to continue exactly: the checkpoint is this pytree."""

    learner: TrainState
    replay: ReplayState
    collector: CollectorState | jax.Array  # host environments: episode rounds collected
    key: jax.Array


@dataclass(frozen=True)
class Budget:
    """The run's exact schedule, in whole iterations; ``notes`` say where a number was rounded."""

    steps_per_iteration: int
    grad_steps_per_iteration: int
    warmup_iterations: int  # random-action rounds of one whole episode per env
    warmup_steps_per_iteration: int
    train_iterations: int
    notes: tuple[str, ...] = field(default=())

    @property
    def warmup_steps(self) -> int:
        return self.warmup_iterations * self.warmup_steps_per_iteration

    @property
    def total_env_steps(self) -> int:
        return self.warmup_steps + self.train_iterations * self.steps_per_iteration

    @property
    def total_grad_steps(self) -> int:
        return self.train_iterations * self.grad_steps_per_iteration

    @staticmethod
    def make(config: Config, episode_length: int) -> Budget:
        unroll = config.unroll_length or episode_length
        if episode_length % unroll:
            divisors = [d for d in range(1, episode_length + 1) if episode_length % d == 0]
            raise ConfigError(
                f"unroll_length ({unroll}) must divide the episode length ({episode_length}) "
                f"so that episodes end between iterations; valid: 0 (whole episodes) or one "
                f"of {divisors}"
            )
        notes = []
        per_iteration = config.num_envs * unroll
        exact_k = per_iteration * config.utd
        k = max(1, round(exact_k))
        if not math.isclose(k, exact_k):
            notes.append(
                f"utd {config.utd} gives {exact_k:g} gradient steps per iteration of "
                f"{per_iteration} env steps; using {k} (utd {k / per_iteration:g})"
            )
        warmup_round = config.num_envs * episode_length
        warmup_iterations = max(1, math.ceil(config.min_replay_size / warmup_round))
        remaining = config.steps - warmup_iterations * warmup_round
        if remaining <= 0:
            raise ConfigError(
                f"steps ({config.steps}) leaves no training after the random-action warm-up of "
                f"{warmup_iterations * warmup_round} env steps (min_replay_size "
                f"{config.min_replay_size}, rounded up to whole episodes of {config.num_envs} "
                f"envs); raise steps, or lower min_replay_size or num_envs"
            )
        train_iterations = math.ceil(remaining / per_iteration)
        total = warmup_iterations * warmup_round + train_iterations * per_iteration
        if total != config.steps:
            notes.append(
                f"steps {config.steps} rounded up to {total} "
                f"(whole iterations of {per_iteration} env steps)"
            )
        return Budget(
            per_iteration, k, warmup_iterations, warmup_round, train_iterations, tuple(notes)
        )


def data_parallel_mesh(config: Config) -> Mesh | None:
    """A 1-D mesh over the devices that share each batch, or None for a single device.

    Every device holds the parameters and the replay; each computes the losses of its rows of
    the batch, while the contrastive logits still pair every row with every goal of the whole
    batch (the compiler gathers the representations), so results match one device.
    """
    available = jax.local_devices()
    count = config.devices or len(available)
    if count > len(available):
        raise ConfigError(
            f"devices ({count}) exceeds the {len(available)} local "
            f"{available[0].platform} device(s); valid: 0 (all) or 1..{len(available)}"
        )
    if count == 1:
        return None
    if config.batch_size % count:
        raise ConfigError(
            f"batch_size ({config.batch_size}) must be divisible by the {count} devices "
            f"that split it"
        )
    return Mesh(np.array(available[:count]), ("data",))


class Trainer:
    """The jitted pieces of a run; the host loop in ``runner.Run`` drives them.

    JAX environments (``jax``, ``mjx`` backends) collect inside the jitted iteration. Host
    environments (``mujoco``) collect one round of whole episodes in worker processes, then hand
    them to the same jitted insertion and K updates. Call ``close`` to stop the workers.
    """

    def __init__(self, config: Config):
        self.config = config
        self.backend = resolve_backend(config.env, config.backend)
        self.on_host = self.backend == "mujoco"
        self.env: JaxEnv | None = None
        self.collector: JaxCollector | None = None
        self._workers: list[EnvWorkers] = []  # host environments: training, then evaluation
        self._train_envs: HostCollector | None = None
        self._eval_envs: HostCollector | None = None
        try:
            self._build()
        except BaseException:  # a refused config must not leave worker processes behind
            self.close()
            raise

    def _build(self) -> None:
        config = self.config
        if self.on_host:
            self.num_actors = config.num_actors or os.cpu_count() or 1
            train_workers = self._start_workers(config.num_envs)
            spec = train_workers.spec
            if config.unroll_length not in (0, spec.episode_length):
                raise ConfigError(
                    f"unroll_length ({config.unroll_length}) must be 0 or the episode length "
                    f"({spec.episode_length}) for {config.env!r}: CPU simulators collect whole "
                    f"episodes per iteration"
                )
        else:
            self.env = make_env(config.env, self.backend)
            spec = self.env.spec
        self.spec = spec
        self.mesh = data_parallel_mesh(config)
        self.nets = make_networks(spec, config)
        self.budget = Budget.make(config, spec.episode_length)
        self.learner = Learner(self.nets, config, self.budget.total_grad_steps)
        self.replay = EpisodeReplay.for_transitions(
            spec, config.max_replay_size, config.discount, min_episodes=config.num_envs
        )
        try:
            self.replay.check_fits(*memory_limit())
        except ValueError as error:
            raise ConfigError(str(error)) from None
        print(self.replay.memory_report(), file=sys.stderr)
        if config.batch_size > self.replay.capacity * spec.episode_length:
            raise ConfigError(
                f"batch_size ({config.batch_size}) is larger than the replay "
                f"({self.replay.capacity} episodes of {spec.episode_length} transitions)"
            )
        if self.on_host:
            self._train_envs = HostCollector(train_workers, self.nets)
            self._insert = jax.jit(self._insert_episodes, donate_argnums=0)
            self._learn = jax.jit(self._learn_from_episodes, donate_argnums=0)
        else:
            self.collector = JaxCollector(self.env, self.nets, self.replay, config.num_envs)
            self._jax_warmup = jax.jit(self._warmup, donate_argnums=0)
            self._jax_iteration = jax.jit(self._iteration, donate_argnums=0)
            self._jax_evaluate = jax.jit(self._evaluate)

    def _start_workers(self, num_envs: int) -> EnvWorkers:
        workers = EnvWorkers(
            self.config.env,
            HOST_ENVS[self.config.env],
            num_envs,
            self.num_actors,
            timeout_s=self.config.worker_timeout_s,
        )
        self._workers.append(workers)
        return workers

    def init(self) -> LoopState:
        key = jax.random.key(self.config.seed)
        learner_key, collector_key, loop_key = jax.random.split(key, 3)
        if self.on_host:  # the host collector's state is the number of episode rounds so far
            collector = jnp.zeros((), jnp.int32)
        else:
            collector = self.collector.init(collector_key)
        state = LoopState(
            learner=self.learner.init(learner_key),
            replay=self.replay.init(),
            collector=collector,
            key=loop_key,
        )
        return self.place(state)

    def place(self, state: LoopState) -> LoopState:
        """Replicate the loop state over the data-parallel devices (a no-op on one device)."""
        if self.mesh is None:
            return state
        return jax.device_put(state, NamedSharding(self.mesh, PartitionSpec()))

    def close(self) -> None:
        """Stop the worker processes of host environments (nothing to do for JAX ones)."""
        for workers in self._workers:
            workers.close()
        self._workers = []
        self._train_envs = self._eval_envs = None

    # -- what the run loop calls ---------------------------------------------------------------
    def warmup(self, state: LoopState) -> LoopState:
        """One whole episode per env with random actions (or the initial policy)."""
        if not self.on_host:
            return self._jax_warmup(state)
        key, rollout_key = jax.random.split(state.key)
        states, actions, _ = self._host_rollout(state, rollout_key, self._warmup_how)
        return self._insert(state.replace(key=key), states, actions)

    def iteration(self, state: LoopState) -> tuple[LoopState, dict[str, jax.Array]]:
        """Collection, insertion and K gradient steps."""
        if not self.on_host:
            return self._jax_iteration(state)
        key, rollout_key = jax.random.split(state.key)
        states, actions, episodes = self._host_rollout(state, rollout_key, "sample")
        state, metrics = self._learn(state.replace(key=key), states, actions)
        metrics["collect/episodes"] = np.float32(len(episodes["success"]))
        metrics["collect/successes"] = np.float32(episodes["success"].sum())
        return state, metrics

    def evaluate(self, actor_params: Any, key: jax.Array) -> dict[str, Any]:
        if not self.on_host:
            return self._jax_evaluate(actor_params, key)
        if self._eval_envs is None:  # the evaluator's own environments, started on first use
            workers = self._start_workers(min(self.config.num_envs, self.config.eval_episodes))
            self._eval_envs = HostCollector(workers, self.nets)
        return evaluate_host(self._eval_envs, actor_params, key, self.config.eval_episodes)

    @property
    def _warmup_how(self) -> str:
        return "random" if self.config.use_random_actor else "sample"

    def eval_key(self, env_steps: int) -> jax.Array:
        """Evaluation draws depend on the seed and the step only, so a resumed run sees the same."""
        return jax.random.fold_in(jax.random.key(self.config.seed + 1_000_003), env_steps)

    # -- host environments ---------------------------------------------------------------------
    def _host_rollout(self, state: LoopState, key: jax.Array, how: str):
        round_index = int(state.collector)
        seeds = episode_seeds(self.config.num_envs, self.config.seed, round_index)
        return self._train_envs.rollout(state.learner.actor_params, key, seeds, how)

    def _insert_episodes(self, state: LoopState, states: jax.Array, actions: jax.Array):
        replay = self.replay.insert(state.replay, states, actions)
        return state.replace(replay=replay, collector=state.collector + 1)

    def _learn_from_episodes(self, state: LoopState, states: jax.Array, actions: jax.Array):
        state = self._insert_episodes(state, states, actions)
        key, update_key = jax.random.split(state.key)
        learner, metrics = self._updates(state.learner, state.replay, update_key)
        return state.replace(learner=learner, key=key), metrics

    # -- JAX environments ----------------------------------------------------------------------
    def _warmup(self, state: LoopState) -> LoopState:
        key, rollout_key = jax.random.split(state.key)
        collector, replay, _ = self.collector.rollout(
            state.collector,
            state.replay,
            state.learner.actor_params,
            rollout_key,
            self.spec.episode_length,
            self._warmup_how,
        )
        return state.replace(collector=collector, replay=replay, key=key)

    def _iteration(self, state: LoopState) -> tuple[LoopState, dict[str, jax.Array]]:
        key, rollout_key, update_key = jax.random.split(state.key, 3)
        unroll = self.config.unroll_length or self.spec.episode_length
        collector, replay, episode_stats = self.collector.rollout(
            state.collector,
            state.replay,
            state.learner.actor_params,
            rollout_key,
            unroll,
            "sample",
        )
        learner, metrics = self._updates(state.learner, replay, update_key)
        metrics.update({f"collect/{k}": v for k, v in episode_stats.items()})
        return LoopState(learner=learner, replay=replay, collector=collector, key=key), metrics

    def _evaluate(self, actor_params: Any, key: jax.Array) -> dict[str, jax.Array]:
        return evaluate_jax(self.env, self.nets, actor_params, key, self.config.eval_episodes)

    # -- shared: K gradient steps under lax.scan -------------------------------------------------
    def _updates(self, learner: TrainState, replay: ReplayState, key: jax.Array):
        def one_update(learner: TrainState, k: jax.Array):
            sample_key, step_key = jax.random.split(k)
            batch = self.replay.sample(replay, sample_key, self.config.batch_size)
            if self.mesh is not None:  # rows split over devices; XLA gathers the negatives
                rows = NamedSharding(self.mesh, PartitionSpec("data"))
                batch = jax.lax.with_sharding_constraint(batch, rows)
            return self.learner.update(learner, batch, step_key)

        keys = jax.random.split(key, self.budget.grad_steps_per_iteration)
        learner, metrics = jax.lax.scan(one_update, learner, keys)
        return learner, {f"train/{k}": v.mean() for k, v in metrics.items()}
