"""Episode replay: insertion, FIFO wrap-around, and the relabelling law."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from contrastive_rl.envs.base import EnvSpec
from contrastive_rl.training.replay import EpisodeReplay

T = 10


def tagged_spec(dtype="float32"):
    # state = [episode id, time, marker]; the goal is the time coordinate.
    return EnvSpec(
        "tagged",
        state_dim=3,
        action_dim=1,
        episode_length=T,
        goal_start=1,
        goal_end=2,
        success_threshold=0.5,
        obs_dtype=dtype,
    )


def tagged_episodes(first_id, n):
    ids = np.arange(first_id, first_id + n)[:, None].repeat(T + 1, 1)
    times = np.arange(T + 1)[None, :].repeat(n, 0)
    states = np.stack([ids, times, np.full_like(ids, 7)], -1).astype(np.float32)
    actions = (ids[:, :T] * 100 + times[:, :T])[..., None].astype(np.float32)
    return jnp.asarray(states), jnp.asarray(actions)


def truncated_geometric(n, g):
    p = g ** np.arange(1, n + 1)
    return p / p.sum()


@pytest.mark.parametrize("n, g", [(1, 0.99), (5, 0.5), (49, 0.99), (30, 0.9)])
def test_future_offsets_follow_the_truncated_geometric(n, g):
    replay = EpisodeReplay(tagged_spec(), capacity=4, discount=g)
    draws = 200_000
    k = np.asarray(replay.sample_future_offset(jax.random.key(0), jnp.full((draws,), n)))
    assert k.min() >= 1 and k.max() <= n
    expected = truncated_geometric(n, g) * draws
    observed = np.bincount(k, minlength=n + 1)[1:]
    # Pearson chi-square against the law, bins with enough mass; fixed seed, generous bound
    keep = expected > 20
    chi2 = (((observed - expected) ** 2 / expected)[keep]).sum()
    dof = max(int(keep.sum()) - 1, 1)
    assert chi2 < dof + 6 * np.sqrt(2 * dof), (chi2, dof)


def test_offsets_vary_with_the_remaining_length():
    replay = EpisodeReplay(tagged_spec(), capacity=4, discount=0.99)
    remaining = jnp.tile(jnp.array([1, 2, 50]), 30_000)
    k = np.asarray(replay.sample_future_offset(jax.random.key(1), remaining)).reshape(-1, 3)
    assert (k[:, 0] == 1).all()
    assert set(np.unique(k[:, 1])) == {1, 2}
    assert abs(k[:, 1].mean() - (1 * 1 + 2 * 0.99) / 1.99) < 0.01
    assert k[:, 2].max() <= 50


def test_samples_relabel_from_the_same_episode_future():
    replay = EpisodeReplay(tagged_spec(), capacity=8, discount=0.9)
    state = replay.insert(replay.init(), *tagged_episodes(0, 5))
    batch = jax.jit(replay.sample, static_argnums=2)(state, jax.random.key(3), 4096)
    s, ns, a, g = (np.asarray(x) for x in (batch.state, batch.next_state, batch.action, batch.goal))
    assert s[:, 0].max() <= 4  # only valid episodes
    np.testing.assert_array_equal(ns[:, 0], s[:, 0])  # same episode
    np.testing.assert_array_equal(ns[:, 1], s[:, 1] + 1)  # next step
    np.testing.assert_array_equal(a[:, 0], s[:, 0] * 100 + s[:, 1])  # action of that step
    assert g.shape == (4096, 1)
    assert (g[:, 0] > s[:, 1]).all() and (g[:, 0] <= T).all()  # strictly future, inside
    assert set(np.unique(s[:, 1]).astype(int)) == set(range(T))  # every time index


def test_insert_wraps_around_fifo_and_keeps_dtype():
    replay = EpisodeReplay(tagged_spec("uint8"), capacity=3, discount=0.9)
    state = replay.init()
    assert state.states.dtype == jnp.uint8
    state = replay.insert(state, *tagged_episodes(1, 2))
    state = replay.insert(state, *tagged_episodes(3, 2))
    assert int(state.num_episodes) == 3 and int(state.next_slot) == 1
    ids = sorted(np.asarray(state.states[:, 0, 0]).tolist())
    assert ids == [2, 3, 4]  # episode 1 was the oldest and left first
    assert state.states.dtype == jnp.uint8


def test_capacity_from_transitions_as_the_original():
    spec = tagged_spec()
    assert EpisodeReplay.for_transitions(spec, 1_000_000, 0.99, 1).capacity == 1_000_000 // 11
    assert EpisodeReplay.for_transitions(spec, 20, 0.99, 5).capacity == 5
