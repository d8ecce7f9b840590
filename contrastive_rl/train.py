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
from dataclasses import dataclass, field
from typing import Any

import jax
from flax import struct

from contrastive_rl.collect import CollectorState, JaxCollector
from contrastive_rl.config import Config, ConfigError
from contrastive_rl.envs import make_env
from contrastive_rl.evaluate import evaluate_jax
from contrastive_rl.learner import Learner, TrainState
from contrastive_rl.networks import make_networks
from contrastive_rl.replay import EpisodeReplay, ReplayState


@struct.dataclass
class LoopState:
    """Everything a run needs to continue exactly: the checkpoint is this pytree."""

    learner: TrainState
    replay: ReplayState
    collector: CollectorState
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
                f"envs); raise steps or lower min_replay_size"
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


class Trainer:
    """The jitted pieces of a run; the host loop in ``run_training`` drives them."""

    def __init__(self, config: Config):
        self.config = config
        self.env = make_env(config.env)
        spec = self.env.spec
        self.nets = make_networks(spec, config)
        self.learner = Learner(self.nets, config)
        self.budget = Budget.make(config, spec.episode_length)
        self.replay = EpisodeReplay.for_transitions(
            spec, config.max_replay_size, config.discount, min_episodes=config.num_envs
        )
        if config.batch_size > self.replay.capacity * spec.episode_length:
            raise ConfigError(
                f"batch_size ({config.batch_size}) is larger than the replay "
                f"({self.replay.capacity} episodes of {spec.episode_length} transitions)"
            )
        self.collector = JaxCollector(self.env, self.nets, self.replay, config.num_envs)
        self.warmup = jax.jit(self._warmup, donate_argnums=0)
        self.iteration = jax.jit(self._iteration, donate_argnums=0)
        self.evaluate = jax.jit(self._evaluate)

    def init(self) -> LoopState:
        key = jax.random.key(self.config.seed)
        learner_key, collector_key, loop_key = jax.random.split(key, 3)
        return LoopState(
            learner=self.learner.init(learner_key),
            replay=self.replay.init(),
            collector=self.collector.init(collector_key),
            key=loop_key,
        )

    def _warmup(self, state: LoopState) -> LoopState:
        """One whole episode per env with random actions (or the initial policy)."""
        key, rollout_key = jax.random.split(state.key)
        how = "random" if self.config.use_random_actor else "sample"
        collector, replay, _ = self.collector.rollout(
            state.collector,
            state.replay,
            state.learner.actor_params,
            rollout_key,
            self.env.spec.episode_length,
            how,
        )
        return state.replace(collector=collector, replay=replay, key=key)

    def _iteration(self, state: LoopState) -> tuple[LoopState, dict[str, jax.Array]]:
        key, rollout_key, update_key = jax.random.split(state.key, 3)
        unroll = self.config.unroll_length or self.env.spec.episode_length
        collector, replay, episode_stats = self.collector.rollout(
            state.collector,
            state.replay,
            state.learner.actor_params,
            rollout_key,
            unroll,
            "sample",
        )

        def one_update(learner: TrainState, k: jax.Array):
            sample_key, step_key = jax.random.split(k)
            batch = self.replay.sample(replay, sample_key, self.config.batch_size)
            return self.learner.update(learner, batch, step_key)

        keys = jax.random.split(update_key, self.budget.grad_steps_per_iteration)
        learner, metrics = jax.lax.scan(one_update, state.learner, keys)
        metrics = {f"train/{k}": v.mean() for k, v in metrics.items()}
        metrics.update({f"collect/{k}": v for k, v in episode_stats.items()})
        return LoopState(learner=learner, replay=replay, collector=collector, key=key), metrics

    def _evaluate(self, actor_params: Any, key: jax.Array) -> dict[str, jax.Array]:
        return evaluate_jax(self.env, self.nets, actor_params, key, self.config.eval_episodes)

    def eval_key(self, env_steps: int) -> jax.Array:
        """Evaluation draws depend on the seed and the step only, so a resumed run sees the same."""
        return jax.random.fold_in(jax.random.key(self.config.seed + 1_000_003), env_steps)
