"""The training loop: one jit-compiled iteration of insertion and K updates around a collector.

An iteration takes ``num_envs x unroll_length`` env steps from the collector (``collect.py``:
JAX environments inside the jit, CPU simulators in workers), hands finished episodes to the
replay, then runs K = round(num_envs * unroll_length * utd) gradient steps under ``lax.scan``,
each sampling and relabelling its own batch (a long K in several calls, the stop flag checked
between them: ``budget.update_calls``). Iterations without updates come first: uniform
random actions for ``min_replay_size`` env steps, and in any case until the first episodes are
whole. The host loop around it only evaluates, logs and checkpoints. The budget is exact: the
run does the env steps asked, rounded up to whole iterations (and says so), never fewer
(``budget.Budget``).

Offline tasks (``offline_*``) have no collector: the dataset's episodes fill a replay of their
own once, and each iteration is K gradient steps of the same sampler and learner; their budget
counts gradient steps.
"""

from __future__ import annotations

import dataclasses
import sys
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from flax import struct
from jax.sharding import Mesh, NamedSharding, PartitionSpec

from contrastive_rl.agent.learner import Learner, TrainState
from contrastive_rl.agent.networks import make_networks
from contrastive_rl.config import Config, ConfigError
from contrastive_rl.datasets import DatasetError, TrainingData, load_training_data
from contrastive_rl.envs import env_spec, is_offline, resolve_backend
from contrastive_rl.training.budget import (
    IMAGE_UPDATES_PER_CALL,
    MAX_SCAN_UPDATES,
    ONE_CALL_UPDATES,
    Budget,
    update_calls,
)
from contrastive_rl.training.collect import Collector, Finished, make_collector
from contrastive_rl.training.evaluate import make_evaluator
from contrastive_rl.training.replay import EpisodeReplay, ReplayState, memory_limit


@struct.dataclass
class LoopState:
    """Everything a run needs to continue exactly: the checkpoint is this pytree."""

    learner: TrainState
    # Offline runs: None; the dataset's replay is the trainer's (read again from the dataset file
    # on resume, never checkpointed).
    replay: ReplayState | None
    collector: Any  # the collector's own state (Collector.init): its episodes in flight; offline ()
    key: jax.Array


@dataclass(frozen=True)
class Unfinished:
    """What an iteration interrupted by a stop request between two update calls hands back in
    place of its metrics: its collection's ``episodes``/``successes``. The state beside it holds
    the iteration's collection (in the replay and the episodes in flight) and not its updates;
    ``Trainer.finish_iteration`` runs them (on resume), exactly as they would have run."""

    stats: dict[str, float]


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
    """The jitted pieces of a run around its collector; the host loop in ``runner.Run`` drives
    them. Offline tasks read their dataset here instead (``load_data``; refused here if it cannot
    be trained on). Call ``close`` to stop the collector's and the evaluator's workers."""

    def __init__(self, config: Config, load_data: bool = True):
        self.config = config
        self.backend = resolve_backend(config.env, config.backend)
        self.offline = is_offline(config.env)
        self.load_data = load_data
        self.data: TrainingData | None = None
        self.dataset_replay: ReplayState | None = None
        self.collector: Collector | None = None
        self.evaluator: Any = None
        self.split, self.unrolled_updates, self.update_calls = False, False, ()  # set online
        self.stop_requested: Callable[[], bool] = lambda: False  # set by the run loop
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
        self.collector = make_collector(config, self.backend)
        spec = self.spec = self.collector.spec
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
        self.evaluator = make_evaluator(config, self.backend, self.nets)
        self._warmup_jit = jax.jit(self._warmup, donate_argnums=0, static_argnames="how")
        self._iteration_jit = jax.jit(self._iteration, donate_argnums=0)
        # Iterations whose K updates would run long in one call run them in several (the
        # stop flag is checked between calls); the others stay one jitted iteration.
        k = self.budget.grad_steps_per_iteration
        self.unrolled_updates = spec.image_shape is not None
        if self.unrolled_updates:
            self.update_calls = update_calls(k, IMAGE_UPDATES_PER_CALL)
        else:
            self.update_calls = (k,) if k <= ONE_CALL_UPDATES else update_calls(k, MAX_SCAN_UPDATES)
        self.split = self.unrolled_updates or len(self.update_calls) > 1
        self._absorb_jit = jax.jit(self._absorb, donate_argnums=0)
        self._update_keys_jit = jax.jit(self._update_keys)
        self._update_call_jit = jax.jit(self._update_call)
        self._finish_jit = jax.jit(self._finish, donate_argnums=0)

    def _build_offline(self) -> None:
        """The evaluation environment's spec, the dataset in a replay, K jitted updates."""
        config = self.config
        spec = self.spec = env_spec(config.env, self.backend)
        self.mesh = data_parallel_mesh(config)
        self.nets = make_networks(spec, config)
        self.budget = Budget.offline(config)
        self.learner = Learner(self.nets, config, self.budget.total_grad_steps)
        self.evaluator = make_evaluator(config, self.backend, self.nets)
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
        try:
            self.replay.check_fits(
                *memory_limit(), remedy=f"the dataset {config.dataset} is too large for it"
            )
        except ValueError as error:
            raise ConfigError(str(error)) from None
        if config.batch_size > n * t:
            raise ConfigError(
                f"batch_size ({config.batch_size}) is larger than the dataset ({n} episodes of "
                f"{t} transitions)"
            )

    @property
    def dataset_identity(self) -> dict[str, Any] | None:
        """Path, format, sizes and SHA-256 of an offline run's dataset (None online)."""
        return None if self.data is None else self.data.identity

    def init(self) -> LoopState:
        key = jax.random.key(self.config.seed)
        learner_key, collector_key, loop_key = jax.random.split(key, 3)
        learner = self.learner.init(learner_key)
        if self.offline:
            if self.data is not None and self.dataset_replay is None:
                self.dataset_replay = self.place(self._dataset_replay())
            state = LoopState(learner=learner, replay=None, collector=(), key=loop_key)
            return self.place(state)
        state = LoopState(
            learner=learner,
            replay=self.replay.init(),
            collector=self.collector.init(collector_key, learner.actor_params),
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

    def restore(self, state: LoopState) -> LoopState:
        """Bring the collector's simulators in line with a state loaded from a checkpoint."""
        if self.collector is None:  # offline: nothing in flight
            return state
        return state.replace(collector=self.collector.restore(state.collector))

    def close(self) -> None:
        """Stop the workers of the collector and of the evaluator (if any)."""
        for part in (self.collector, self.evaluator):
            if part is not None:
                part.close()

    # -- what the run loop calls ---------------------------------------------------------------
    def warmup(self, state: LoopState, index: int) -> LoopState:
        """Warm-up iteration ``index``: collection and insertion, no updates; random actions in
        the first ``budget.random_iterations`` (with ``use_random_actor``), else the policy."""
        random = self.config.use_random_actor and index < self.budget.random_iterations
        how = "random" if random else "sample"
        data = self.collector.gather(state.collector, how)
        return self._warmup_jit(state, data, how=how)

    def iteration(self, state: LoopState) -> tuple[LoopState, Any]:
        """Collection, insertion and K gradient steps (the next unroll may start meanwhile);
        offline, the K gradient steps only.

        Where the K updates run in several calls (``split``), a stop request seen between two
        of them (``stop_requested``) ends the iteration early: ``(state, Unfinished)``, the
        state with this iteration's collection and without its updates.
        """
        if self.offline:
            return self._learn_offline(state, self.dataset_replay)
        data = self.collector.gather(state.collector, "sample")
        self.collector.prefetch(state.collector, state.learner.actor_params)
        if not self.split:
            return self._iteration_jit(state, data)
        absorbed, stats = self._absorb_jit(state, data)
        return self._learn(absorbed, stats)

    def finish_iteration(self, state: LoopState, stats: dict[str, float]) -> tuple[LoopState, Any]:
        """The updates of an iteration a stop interrupted (``Unfinished``), on resume: the next
        unroll starts as it did, then the K updates and the refresh, as uninterrupted."""
        self.collector.prefetch(state.collector, state.learner.actor_params, absorbed=True)
        return self._learn(state, {k: jnp.float32(v) for k, v in stats.items()})

    def _learn(self, absorbed: LoopState, stats: dict[str, Any]) -> tuple[LoopState, Any]:
        keys = self._update_keys_jit(absorbed.key)
        learner, metrics, start = absorbed.learner, [], 0
        for size in self.update_calls:
            if self.stop_requested():
                host = {k: float(v) for k, v in jax.device_get(stats).items()}
                return absorbed, Unfinished(host)
            learner, call_metrics = self._update_call_jit(
                learner, absorbed.replay, keys[start : start + size]
            )
            jax.block_until_ready(learner)  # the stop flag is checked after each call
            metrics.append(call_metrics)
            start += size
        # Each metric's K values as one array, as the one scan returns them: their mean in
        # ``_finish`` is then the one scan's, bit for bit.
        stacked = {k: jnp.concatenate([m[k] for m in metrics]) for k in metrics[0]}
        return self._finish_jit(absorbed, learner, stacked, stats)

    def evaluate(self, actor_params: Any, key: jax.Array) -> dict[str, Any]:
        return self.evaluator.evaluate(actor_params, key)

    def eval_key(self, step: int) -> jax.Array:
        """Evaluation draws depend on the seed and the step (of the budget's counter) only, so a
        resumed run sees the same."""
        return jax.random.fold_in(jax.random.key(self.config.seed + 1_000_003), step)

    # -- jitted ----------------------------------------------------------------------------------
    def _insert(self, replay: ReplayState, finished: Finished) -> ReplayState:
        return jax.lax.cond(
            finished.done,
            lambda r: self.replay.insert(r, finished.states, finished.actions),
            lambda r: r,
            replay,
        )

    def _warmup(self, state: LoopState, data: Any, how: str) -> LoopState:
        key, collect_key = jax.random.split(state.key)
        collector, finished, _ = self.collector.absorb(
            state.collector, state.learner.actor_params, collect_key, data, how
        )
        replay = self._insert(state.replay, finished)
        return state.replace(collector=collector, replay=replay, key=key)

    def _iteration(self, state: LoopState, data: Any) -> tuple[LoopState, dict[str, jax.Array]]:
        key, collect_key, update_key = jax.random.split(state.key, 3)
        collector, finished, episode_stats = self.collector.absorb(
            state.collector, state.learner.actor_params, collect_key, data, "sample"
        )
        replay = self._insert(state.replay, finished)
        learner, metrics = self._updates(state.learner, replay, update_key)
        collector = self.collector.refresh(
            collector, state.learner.actor_params, learner.actor_params
        )
        metrics.update({f"collect/{k}": v for k, v in episode_stats.items()})
        return LoopState(learner=learner, replay=replay, collector=collector, key=key), metrics

    # The iteration in parts (``split``): the same keys, the same updates as ``_iteration``.
    def _absorb(self, state: LoopState, data: Any) -> tuple[LoopState, dict[str, jax.Array]]:
        """Collection and insertion; the loop key is left as it was (``_finish`` splits it)."""
        _, collect_key, _ = jax.random.split(state.key, 3)
        collector, finished, episode_stats = self.collector.absorb(
            state.collector, state.learner.actor_params, collect_key, data, "sample"
        )
        replay = self._insert(state.replay, finished)
        return state.replace(collector=collector, replay=replay), episode_stats

    def _update_keys(self, key: jax.Array) -> jax.Array:
        _, _, update_key = jax.random.split(key, 3)
        return jax.random.split(update_key, self.budget.grad_steps_per_iteration)

    def _update_call(self, learner: TrainState, replay: ReplayState, keys: jax.Array):
        """One call's share of the K updates: a scan, or written out for image networks."""
        if not self.unrolled_updates:
            return jax.lax.scan(lambda ts, k: self._one_update(ts, replay, k), learner, keys)
        steps = []
        for i in range(keys.shape[0]):
            learner, step_metrics = self._one_update(learner, replay, keys[i])
            steps.append(step_metrics)
        return learner, jax.tree.map(lambda *v: jnp.stack(v), *steps)

    def _finish(
        self,
        absorbed: LoopState,
        learner: TrainState,
        update_metrics: dict[str, jax.Array],
        episode_stats: dict[str, jax.Array],
    ) -> tuple[LoopState, dict[str, jax.Array]]:
        key, _, _ = jax.random.split(absorbed.key, 3)
        metrics = {f"train/{k}": v.mean() for k, v in update_metrics.items()}
        collector = self.collector.refresh(
            absorbed.collector, absorbed.learner.actor_params, learner.actor_params
        )
        metrics.update({f"collect/{k}": v for k, v in episode_stats.items()})
        state = LoopState(learner=learner, replay=absorbed.replay, collector=collector, key=key)
        return state, metrics

    def _learn_from_dataset(self, state: LoopState, replay: ReplayState):
        key, update_key = jax.random.split(state.key)
        learner, metrics = self._updates(state.learner, replay, update_key)
        return state.replace(learner=learner, key=key), metrics

    # -- K gradient steps under lax.scan ---------------------------------------------------------
    def _one_update(self, learner: TrainState, replay: ReplayState, k: jax.Array):
        """One gradient step on a batch it samples (and relabels) with its own key."""
        sample_key, step_key = jax.random.split(k)
        batch = self.replay.sample(replay, sample_key, self.config.batch_size)
        if self.mesh is not None:  # rows split over devices; XLA gathers the negatives
            rows = NamedSharding(self.mesh, PartitionSpec("data"))
            batch = jax.lax.with_sharding_constraint(batch, rows)
        return self.learner.update(learner, batch, step_key)

    def _updates(self, learner: TrainState, replay: ReplayState, key: jax.Array):
        def one_update(learner: TrainState, k: jax.Array):
            return self._one_update(learner, replay, k)

        keys = jax.random.split(key, self.budget.grad_steps_per_iteration)
        learner, metrics = jax.lax.scan(one_update, learner, keys)
        return learner, {f"train/{k}": v.mean() for k, v in metrics.items()}
