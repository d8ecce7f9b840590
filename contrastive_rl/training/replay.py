"""Replay of whole fixed-length episodes on the device, with hindsight goal relabelling.

Episodes are stored as ``states [capacity, T + 1, state_dim]`` and ``actions [capacity, T,
action_dim]`` (a FIFO ring over episodes). The commanded goals are not stored: every training
goal is relabelled from the episode's own future, as in the original.

Sampling draws, per batch row, an episode uniformly among the valid ones, a time ``i`` uniformly
in ``[0, T)`` and a future offset ``k`` in ``1..T-i`` from the truncated geometric law
``P(k) ∝ discount^k`` by inverse CDF: O(1) per sample, no T x T matrix. The goal is
``obs_to_goal(states[i + k])``.

Environments with ``spec.render`` (point images) store a few numbers per state (the position);
``sample`` renders the batch's states and goals, so the learner sees what the agent sees.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import jax
import jax.numpy as jnp
from flax import struct

from contrastive_rl.envs.spec import EnvSpec
from contrastive_rl.types import Batch

# The replay may take at most this share of the memory it lives in; the rest is for the
# networks, the optimiser, the collector's episodes and the batches being built.
MEMORY_FRACTION = 0.6
GIB = 2**30


def memory_limit() -> tuple[int, str]:
    """``(bytes, where)``: the accelerator's memory where JAX reports it, else the machine's RAM."""
    stats = jax.local_devices()[0].memory_stats() or {}
    if stats.get("bytes_limit"):
        return int(stats["bytes_limit"]), f"{jax.local_devices()[0].device_kind} memory"
    return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES"), "physical memory"


@struct.dataclass
class ReplayState:
    states: jax.Array  # [capacity, T + 1, stored size] (spec.stored_shape)
    actions: jax.Array  # [capacity, T, action_dim]
    next_slot: jax.Array  # int32, where the next episode goes
    num_episodes: jax.Array  # int32, valid episodes (<= capacity)


@dataclass(frozen=True)
class EpisodeReplay:
    """Static shape of the replay; ``init``, ``insert`` and ``sample`` are pure functions."""

    spec: EnvSpec
    capacity: int  # episodes
    discount: float

    @classmethod
    def for_transitions(
        cls, spec: EnvSpec, max_transitions: int, discount: float, min_episodes: int
    ):
        """Capacity as the original: ``max_transitions // (T + 1)`` episodes (or more)."""
        capacity = max(max_transitions // (spec.episode_length + 1), min_episodes)
        return cls(spec=spec, capacity=capacity, discount=discount)

    @property
    def episode_length(self) -> int:
        return self.spec.episode_length

    @property
    def bytes_per_episode(self) -> int:
        """Bytes of one stored episode: T + 1 states and T float32 actions."""
        size, dtype = self.spec.stored_shape
        t = self.spec.episode_length
        return (t + 1) * size * jnp.dtype(dtype).itemsize + t * self.spec.action_dim * 4

    @property
    def bytes_per_transition(self) -> float:
        return self.bytes_per_episode / self.spec.episode_length

    @property
    def nbytes(self) -> int:
        """Bytes of the whole replay once allocated."""
        return self.capacity * self.bytes_per_episode

    def memory_report(self) -> str:
        """One line: capacity, bytes per stored transition and the whole replay's size."""
        return (
            f"replay: {self.capacity} episodes x {self.spec.episode_length} transitions, "
            f"{self.bytes_per_transition:,.0f} bytes per transition, "
            f"{self.nbytes / GIB:.2f} GiB in all"
        )

    def check_fits(self, limit: int, where: str, remedy: str | None = None) -> None:
        """Refuse a replay larger than ``MEMORY_FRACTION`` of ``limit`` bytes, before allocating;
        the message ends with ``remedy`` (default: the max_replay_size that would fit)."""
        allowed = MEMORY_FRACTION * limit
        if self.nbytes > allowed:
            if remedy is None:
                fitting = int(allowed // self.bytes_per_episode) * (self.spec.episode_length + 1)
                remedy = f"lower max_replay_size to {fitting:,} or less"
            raise ValueError(
                f"the replay needs {self.nbytes / GIB:.2f} GiB ({self.capacity} episodes, "
                f"{self.bytes_per_transition:,.0f} bytes per transition) but may use at most "
                f"{allowed / GIB:.2f} GiB ({MEMORY_FRACTION:.0%} of {limit / GIB:.2f} GiB of "
                f"{where}); {remedy}"
            )

    def init(self) -> ReplayState:
        t, (s, dtype) = self.spec.episode_length, self.spec.stored_shape
        return ReplayState(
            states=jnp.zeros((self.capacity, t + 1, s), jnp.dtype(dtype)),
            actions=jnp.zeros((self.capacity, t, self.spec.action_dim), jnp.float32),
            next_slot=jnp.zeros((), jnp.int32),
            num_episodes=jnp.zeros((), jnp.int32),
        )

    def insert(self, replay: ReplayState, states: jax.Array, actions: jax.Array) -> ReplayState:
        """Append N whole episodes (``states [N, T+1, S]``, ``actions [N, T, A]``), oldest out."""
        n = states.shape[0]
        if n > self.capacity:
            raise ValueError(f"cannot insert {n} episodes into a replay of {self.capacity}")
        slots = (replay.next_slot + jnp.arange(n, dtype=jnp.int32)) % self.capacity
        return ReplayState(
            states=replay.states.at[slots].set(states.astype(replay.states.dtype)),
            actions=replay.actions.at[slots].set(actions.astype(replay.actions.dtype)),
            next_slot=(replay.next_slot + n) % self.capacity,
            num_episodes=jnp.minimum(replay.num_episodes + n, self.capacity),
        )

    def sample_future_offset(self, key: jax.Array, remaining: jax.Array) -> jax.Array:
        """Offsets k in 1..remaining with P(k) ∝ discount^k, by inverse CDF (vectorised).

        P(K <= k) = (1 - g^k) / (1 - g^n), so k = ceil(log(1 - u (1 - g^n)) / log g).
        """
        u = jax.random.uniform(key, remaining.shape)
        g = jnp.float32(self.discount)
        tail = 1.0 - u * (1.0 - g ** remaining.astype(jnp.float32))
        k = jnp.ceil(jnp.log(tail) / jnp.log(g))
        return jnp.clip(k, 1, remaining).astype(jnp.int32)

    def sample(self, replay: ReplayState, key: jax.Array, batch_size: int) -> Batch:
        """B relabelled transitions drawn uniformly over valid (episode, time) pairs."""
        episode_key, time_key, offset_key = jax.random.split(key, 3)
        t = self.spec.episode_length
        episode = jax.random.randint(episode_key, (batch_size,), 0, replay.num_episodes)
        i = jax.random.randint(time_key, (batch_size,), 0, t)
        j = i + self.sample_future_offset(offset_key, t - i)
        spec = self.spec
        return Batch(
            state=spec.observe(replay.states[episode, i]),
            action=replay.actions[episode, i],
            next_state=spec.observe(replay.states[episode, i + 1]),
            goal=spec.obs_to_goal(spec.observe(replay.states[episode, j])),
        )
