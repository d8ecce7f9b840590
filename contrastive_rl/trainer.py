"""The training loop: one jit-compiled iteration of collection, insertion and K updates.

An iteration steps ``num_envs`` JAX environments ``unroll_length`` times, hands finished episodes
to the replay, then runs K = round(num_envs * unroll_length * utd) gradient steps under
``lax.scan``, each sampling and relabelling its own batch. A warm-up of random-action episodes
comes first (``min_replay_size``). The host loop around it only evaluates, logs and
checkpoints. The budget is exact: the run does the env steps asked, rounded up to whole
iterations (and says so), never fewer.

Offline tasks (``offline_*``) collect nothing: the dataset's episodes fill the same replay once,
and each iteration is K gradient steps of the same sampler and learner; their budget counts
gradient steps.
"""

from __future__ import annotations

import dataclasses
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
from contrastive_rl.datasets import DatasetError, TrainingData, load_training_data
from contrastive_rl.envs import HOST_ENVS, JaxEnv, env_spec, is_offline, make_env, resolve_backend
from contrastive_rl.evaluate import evaluate_host, evaluate_jax
from contrastive_rl.learner import Learner, TrainState
from contrastive_rl.networks import make_networks
from contrastive_rl.replay import GIB, MEMORY_FRACTION, EpisodeReplay, ReplayState, memory_limit
from contrastive_rl.workers import EnvWorkers


@struct.dataclass
class LoopState:
    """Everything a run needs to continue exactly: the checkpoint is this pytree."""

    learner: TrainState
    # Offline runs: None; the dataset's replay is the trainer's (read again from the dataset file
    # on resume, never checkpointed).
    replay: ReplayState | None
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
    # What the budget counts, a field of ``runner.Progress``: env_steps, or grad_steps (offline).
    counter: str = "env_steps"

    @property
    def unit(self) -> str:
        return "env steps" if self.counter == "env_steps" else "gradient steps"

    @property
    def total(self) -> int:
        """The budget in its own unit (``counter``)."""
        return self.total_env_steps if self.counter == "env_steps" else self.total_grad_steps

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

    @staticmethod
    def offline(config: Config) -> Budget:
        """``config.steps`` gradient steps, in iterations of K = ``offline_steps_per_iteration``."""
        k = offline_steps_per_iteration(config.eval_every)
        iterations = math.ceil(config.steps / k)
        notes = []
        if iterations * k != config.steps:
            notes.append(
                f"steps {config.steps} rounded up to {iterations * k} gradient steps "
                f"(whole iterations of {k})"
            )
        return Budget(0, k, 0, 0, iterations, tuple(notes), counter="grad_steps")


# The most gradient steps an offline iteration scans: the original's 64 per learner step; the
# host loop checks for evaluations, checkpoints and Ctrl-C between iterations.
MAX_OFFLINE_STEPS_PER_ITERATION = 64


def offline_steps_per_iteration(eval_every: int) -> int:
    """K for offline runs: the largest divisor of ``eval_every`` up to 64 (so evaluations fall
    on their exact steps), or 64 when that divisor is below 8."""
    best = max(d for d in range(1, MAX_OFFLINE_STEPS_PER_ITERATION + 1) if eval_every % d == 0)
    return best if best >= 8 else MAX_OFFLINE_STEPS_PER_ITERATION


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
    them to the same jitted insertion and K updates. Offline tasks read their dataset here
    (``load_data``; refused here if it cannot be trained on) and only evaluate in environments.
    Call ``close`` to stop the workers.
    """

    def __init__(self, config: Config, load_data: bool = True):
        self.config = config
        self.backend = resolve_backend(config.env, config.backend)
        self.on_host = self.backend == "mujoco"
        self.offline = is_offline(config.env)
        self.load_data = load_data
        self.data: TrainingData | None = None
        self.dataset_replay: ReplayState | None = None
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
        if self.offline:
            self._build_offline()
            return
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

    def _build_offline(self) -> None:
        """The evaluation environment's spec, the dataset in the replay, K jitted updates."""
        config = self.config
        if self.on_host:  # evaluation workers start on first use
            self.num_actors = config.num_actors or os.cpu_count() or 1
            spec = env_spec(config.env, self.backend)
        else:
            self.env = make_env(config.env, self.backend)
            spec = self.env.spec
            self._jax_evaluate = jax.jit(self._evaluate)
        self.spec = spec
        self.mesh = data_parallel_mesh(config)
        self.nets = make_networks(spec, config)
        self.budget = Budget.offline(config)
        self.learner = Learner(self.nets, config, self.budget.total_grad_steps)
        self._learn_offline = jax.jit(self._learn_from_dataset, donate_argnums=0)
        if not self.load_data:
            return
        try:
            self.data = load_training_data(config.dataset, config.env, spec)
        except DatasetError as error:
            raise ConfigError(str(error)) from None
        print(self.data.summary(), file=sys.stderr)
        for note in self.data.notes:
            print(f"note: dataset: {note}", file=sys.stderr)
        n, t = self.data.actions.shape[:2]
        # The replay holds the dataset's episodes, whatever the evaluation episodes' length.
        self.replay = EpisodeReplay(
            dataclasses.replace(spec, episode_length=t), capacity=n, discount=config.discount
        )
        limit, where = memory_limit()
        if self.replay.nbytes > MEMORY_FRACTION * limit:
            raise ConfigError(
                f"the dataset needs {self.replay.nbytes / GIB:.2f} GiB in the replay, more than "
                f"{MEMORY_FRACTION:.0%} of the {limit / GIB:.2f} GiB of {where}"
            )
        if config.batch_size > n * t:
            raise ConfigError(
                f"batch_size ({config.batch_size}) is larger than the dataset ({n} episodes of "
                f"{t} transitions)"
            )

    @property
    def dataset_identity(self) -> dict[str, Any] | None:
        """Path, format, sizes and SHA-256 of an offline run's dataset (None online)."""
        return None if self.data is None else self.data.identity

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
        if self.offline or self.on_host:  # host: the number of episode rounds collected so far
            collector = jnp.zeros((), jnp.int32)
        else:
            collector = self.collector.init(collector_key)
        if self.offline and self.data is not None and self.dataset_replay is None:
            self.dataset_replay = self.place(self._dataset_replay())
        state = LoopState(
            learner=self.learner.init(learner_key),
            replay=None if self.offline else self.replay.init(),
            collector=collector,
            key=loop_key,
        )
        return self.place(state)

    def _dataset_replay(self) -> ReplayState:
        """The dataset's episodes as a full replay (written once; the host copy is released)."""
        data = self.data
        n = data.states.shape[0]
        replay = ReplayState(
            states=jnp.asarray(data.states),
            actions=jnp.asarray(data.actions),
            next_slot=jnp.zeros((), jnp.int32),
            num_episodes=jnp.asarray(n, jnp.int32),
        )
        self.data = dataclasses.replace(data, states=None, actions=None)
        return replay

    def place(self, state: Any) -> Any:
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
        """Collection, insertion and K gradient steps (offline: the K gradient steps only)."""
        if self.offline:
            return self._learn_offline(state, self.dataset_replay)
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

    def eval_key(self, step: int) -> jax.Array:
        """Evaluation draws depend on the seed and the step (of the budget's counter) only, so a
        resumed run sees the same."""
        return jax.random.fold_in(jax.random.key(self.config.seed + 1_000_003), step)

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

    # -- offline: the dataset is the replay ------------------------------------------------------
    def _learn_from_dataset(self, state: LoopState, replay: ReplayState):
        key, update_key = jax.random.split(state.key)
        learner, metrics = self._updates(state.learner, replay, update_key)
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
