"""TD InfoNCE: the loss against hand computations, no gradient into the target critic, the
occupancy it recovers on a tabular chain (and Monte Carlo InfoNCE's larger error from the same
small dataset), its settings, and a run through the real trainer."""

from __future__ import annotations

import functools
import math

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from toy import TOY_SPEC  # tests/toy.py

from contrastive_rl.agent import td_infonce
from contrastive_rl.agent.algorithms import ALGORITHMS
from contrastive_rl.agent.batch_goals import mix_goals
from contrastive_rl.agent.learner import Learner
from contrastive_rl.agent.losses import make_actor_loss, make_critic_loss
from contrastive_rl.agent.networks import GoalCritic, init_params, make_networks
from contrastive_rl.agent.residual import ResidualSpec, residual_param_count
from contrastive_rl.agent.td_infonce import td_infonce_loss, td_infonce_weights
from contrastive_rl.cli import main
from contrastive_rl.config import make_config
from contrastive_rl.presets import OFFLINE_SETTINGS
from contrastive_rl.types import Batch


def _count(tree) -> int:
    return sum(int(np.prod(x.shape)) for x in jax.tree.leaves(tree))


def _logits(shape, seed=0):
    return jnp.asarray(np.random.default_rng(seed).normal(0.0, 2.0, shape).astype(np.float32))


def _log_softmax(row: list[float]) -> list[float]:
    m = max(row)
    lse = m + math.log(sum(math.exp(x - m) for x in row))
    return [x - lse for x in row]


# -- the loss on given logits ------------------------------------------------------------------


@pytest.mark.parametrize("n", [1, 2])
def test_with_discount_zero_the_loss_is_next_state_infonce(n):
    b = 5
    next_logits = np.asarray(_logits((b, b, n)))
    loss, metrics = td_infonce_loss(
        jnp.asarray(next_logits), _logits((b, 7, n), 1), _logits((b, 7, 2), 2), 0.0
    )
    # InfoNCE written out: -log of the softmax probability of the row's own next state.
    expected = np.mean(
        [-_log_softmax(next_logits[i, :, k].tolist())[i] for i in range(b) for k in range(n)]
    )
    assert float(loss) == pytest.approx(expected, rel=1e-5)
    assert float(metrics["loss_next"]) == pytest.approx(expected, rel=1e-5)


def test_the_second_term_is_the_cross_entropy_to_the_target_softmax_over_candidates():
    b, c, g = 3, 4, 0.7
    next_logits, future, target = _logits((b, b, 2)), _logits((b, c, 2), 1), _logits((b, c, 2), 2)
    nl, fl, tl = (np.asarray(x) for x in (next_logits, future, target))
    total = 0.0
    for i in range(b):
        tmin = [min(tl[i, j, 0], tl[i, j, 1]) for j in range(c)]  # min over the target twins
        z = sum(math.exp(x) for x in tmin)
        w = [math.exp(x) / z for x in tmin]
        for k in range(2):
            term1 = -_log_softmax(nl[i, :, k].tolist())[i]
            log_q = _log_softmax(fl[i, :, k].tolist())
            term2 = -sum(w[j] * log_q[j] for j in range(c))
            total += (1 - g) * term1 + g * term2
    loss, metrics = td_infonce_loss(next_logits, future, target, g)
    assert float(loss) == pytest.approx(total / (2 * b), rel=1e-5)
    # the weights are constants: no gradient flows back through them
    grad = jax.grad(lambda t: td_infonce_loss(next_logits, future, t, g)[0])(target)
    assert np.all(np.asarray(grad) == 0)
    w = np.asarray(td_infonce_weights(target))
    assert np.allclose(w.sum(axis=1), 1.0, atol=1e-6)


def test_bad_shapes_are_refused():
    with pytest.raises(ValueError, match=r"\[B, B, n\]"):
        td_infonce_loss(_logits((3, 4, 1)), _logits((3, 4, 1)), _logits((3, 4, 1)), 0.5)
    with pytest.raises(ValueError, match="share"):
        td_infonce_loss(_logits((3, 3, 1)), _logits((3, 4, 1)), _logits((3, 5, 1)), 0.5)


# -- the factories on tiny networks, against per-row calls ---------------------------------------


def _setup(b=4, **overrides):
    config = make_config(alg="td_infonce", hidden_layer_sizes=(8,), repr_dim=4, **overrides)
    nets = make_networks(TOY_SPEC, config)
    actor_p, critic_p = init_params(nets, jax.random.key(0))
    _, target_p = init_params(nets, jax.random.key(1))
    ks = jax.random.split(jax.random.key(2), 4)
    batch = Batch(
        state=jax.random.normal(ks[0], (b, 3)),
        action=jax.random.uniform(ks[1], (b, 2), minval=-1.0, maxval=1.0),
        next_state=jax.random.normal(ks[2], (b, 3)),
        goal=jax.random.normal(ks[3], (b, 2)),
    )
    return config, nets, actor_p, critic_p, target_p, batch


def fake_sample(loc, scale, key):
    """A deterministic stand-in for the sampler, so expected values need no RNG bookkeeping."""
    del key
    return jnp.tanh(loc + 0.3 * scale)


@functools.cache
def _jit(fn):
    return jax.jit(fn)


def _f(nets, params, s, a, g, f) -> np.ndarray:
    """One logit per critic, f(s, a, g, future): [n]."""
    row = (jnp.asarray(x)[None] for x in (s, a, g, f))
    return np.asarray(_jit(nets.goal_critic_logits)(params, *row))[0, 0]


def _policy_row(nets, params, s, g):
    """``(loc, scale)`` of one row, each [1, action_dim]."""
    return _jit(nets.policy)(params, jnp.asarray(s)[None], jnp.asarray(g)[None])


def test_the_networks_are_goal_conditioned_twins():
    config, nets, *_ = _setup()
    assert isinstance(nets.critic, GoalCritic) and nets.critic.twin and nets.critic.repr_norm
    plain = make_networks(TOY_SPEC, make_config(hidden_layer_sizes=(8,), repr_dim=4))
    assert not isinstance(plain.critic, GoalCritic)  # the other algorithms keep phi(s, a)


@pytest.mark.parametrize("discount", [0.0, 0.6])
def test_critic_loss_by_hand(discount, monkeypatch):
    monkeypatch.setattr(td_infonce, "sample_action", fake_sample)
    config, nets, actor_p, critic_p, target_p, batch = _setup(discount=discount)
    b = 4
    s, a, s2 = (np.asarray(x) for x in (batch.state, batch.action, batch.next_state))
    goal = np.roll(s, 1, axis=0)[:, 1:3]  # row i commands the goal of row i-1's state
    next_goal = s2[:, 1:3]
    total = 0.0
    for i in range(b):
        a2 = np.asarray(fake_sample(*_policy_row(nets, actor_p, s2[i], goal[i]), None))[0]
        tmin = [min(_f(nets, target_p, s2[i], a2, goal[i], goal[j])) for j in range(b)]
        w = np.exp(tmin) / np.sum(np.exp(tmin))
        for k in range(2):
            nxt = [float(_f(nets, critic_p, s[i], a[i], goal[i], f)[k]) for f in next_goal]
            fut = [float(_f(nets, critic_p, s[i], a[i], goal[i], f)[k]) for f in goal]
            term1 = -_log_softmax(nxt)[i]
            term2 = -sum(w[j] * x for j, x in enumerate(_log_softmax(fut)))
            total += (1 - discount) * term1 + discount * term2
    loss, metrics = make_critic_loss("td_infonce", nets, config)(
        critic_p, target_p, actor_p, batch, jax.random.key(3)
    )
    assert float(loss) == pytest.approx(total / (2 * b), rel=1e-4)
    assert float(metrics["critic_loss"]) == float(loss)


def test_no_gradient_reaches_the_target_critic_and_polyak_alone_moves_it():
    config, nets, actor_p, critic_p, target_p, batch = _setup(discount=0.9)
    loss_fn = make_critic_loss("td_infonce", nets, config)
    grads = jax.grad(
        lambda c, t, p: loss_fn(c, t, p, batch, jax.random.key(4))[0], argnums=(0, 1, 2)
    )(critic_p, target_p, actor_p)
    critic_g, target_g, actor_g = (jax.tree.leaves(g) for g in grads)
    assert any(np.any(np.asarray(x) != 0) for x in critic_g)
    assert all(np.all(np.asarray(x) == 0) for x in target_g)
    assert all(np.all(np.asarray(x) == 0) for x in actor_g)

    learner = Learner(nets, config)
    state = learner.init(jax.random.key(5))
    state = state.replace(target_critic_params=target_p)  # a target that differs
    new, _ = jax.jit(learner.update)(state, batch, jax.random.key(6))
    expected = optax.incremental_update(new.critic_params, target_p, config.tau)
    for got, want in zip(
        jax.tree.leaves(new.target_critic_params), jax.tree.leaves(expected), strict=True
    ):
        np.testing.assert_allclose(np.asarray(got), np.asarray(want), rtol=1e-6, atol=1e-7)
    assert ALGORITHMS["td_infonce"].uses_target and config.tau == 0.005


@pytest.mark.parametrize("random_goals", [0.0, 1.0])
@pytest.mark.parametrize("bc_coef", [0.0, 0.2])
def test_actor_loss_by_hand(random_goals, bc_coef, monkeypatch):
    monkeypatch.setattr(td_infonce, "sample_action", fake_sample)
    config, nets, actor_p, critic_p, _, batch = _setup(random_goals=random_goals, bc_coef=bc_coef)
    b = 4
    s, a_data = np.asarray(batch.state), np.asarray(batch.action)
    goal = np.asarray(batch.goal) if random_goals == 0.0 else np.roll(s, 1, axis=0)[:, 1:3]
    alpha = 0.3
    actions, logps = [], []
    for i in range(b):
        loc, scale = _policy_row(nets, actor_p, s[i], goal[i])
        act = fake_sample(loc, scale, None)
        actions.append(np.asarray(act)[0])
        logps.append(float(td_infonce.log_prob(loc, scale, act)[0]))
    total = 0.0
    for i in range(b):
        row = [float(min(_f(nets, critic_p, s[i], actions[i], goal[i], goal[j]))) for j in range(b)]
        per_row = alpha * logps[i] - _log_softmax(row)[i]
        bc = float(np.mean((actions[i] - a_data[i]) ** 2))
        total += bc_coef * bc + (1 - bc_coef) * per_row if bc_coef else per_row
    loss, metrics = make_actor_loss("td_infonce", nets, config)(
        actor_p, critic_p, batch, jax.random.key(3), jnp.float32(alpha)
    )
    assert float(loss) == pytest.approx(total / b, rel=1e-4)
    assert ("bc_loss" in metrics) == (bc_coef > 0)


def test_the_actor_loss_doubles_the_batch_with_half_random_goals():
    config, nets, actor_p, critic_p, _, batch = _setup(random_goals=0.5)
    other = td_infonce.random_goals(nets.spec, batch)
    state, goal, data_action = mix_goals(batch, 0.5, other)
    assert state.shape == (8, 3) and data_action.shape == (8, 2)
    np.testing.assert_array_equal(goal[:4], batch.goal)
    np.testing.assert_array_equal(goal[4:], np.roll(np.asarray(batch.state), 1, axis=0)[:, 1:3])
    with pytest.raises(ValueError, match="one of 0, 0.5, 1"):
        mix_goals(batch, 0.25, other)


# -- a tabular Markov chain -----------------------------------------------------------------------

# A lazy walk on a line of 8 states: action 0 steps right, action 1 left, each with probability
# 0.7 (else stay; the ends reflect); a fixed policy takes action 0 with probability 0.6.
NS, NA, GAMMA = 8, 2, 0.9


def _chain() -> tuple[np.ndarray, np.ndarray]:
    t = np.zeros((NS, NA, NS))
    for s in range(NS):
        t[s, 0, min(s + 1, NS - 1)] += 0.7
        t[s, 1, max(s - 1, 0)] += 0.7
        t[s, :, s] += 0.3
    return t, np.tile([0.6, 0.4], (NS, 1))


def _occupancy(t: np.ndarray, pi: np.ndarray) -> np.ndarray:
    """``[S * A, S]``: the discounted occupancy counted from the next state on, exactly.

    Over states, ``M_s = (1 - g) sum_k g^k P^(k+1) = (1 - g) (I - g P)^-1 P``; from (s, a),
    ``M(s, a) = (1 - g) T(s, a) + g T(s, a) M_s``: the fixed point of the TD InfoNCE loss, whose
    term 1 scores the next state itself (k = 0) and term 2 what follows it.
    """
    p = np.einsum("sa,sat->st", pi, t)
    m_s = (1 - GAMMA) * np.linalg.inv(np.eye(NS) - GAMMA * p) @ p
    m = (1 - GAMMA) * t + GAMMA * np.einsum("sat,tu->sau", t, m_s)
    return m.reshape(NS * NA, NS)


def _episodes(t, pi, k: int, length: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    states = np.zeros((k, length + 1), int)
    actions = np.zeros((k, length), int)
    states[:, 0] = rng.integers(0, NS, k)
    for i in range(length):
        s = states[:, i]
        a = (rng.random(k) >= pi[s, 0]).astype(int)
        cdf = np.cumsum(t[s, a], axis=1)
        actions[:, i] = a
        states[:, i + 1] = np.minimum((rng.random(k)[:, None] > cdf).sum(axis=1), NS - 1)
    return states, actions


def _learned_occupancy(table: np.ndarray, marginal: np.ndarray) -> np.ndarray:
    """The model's distribution over states: the softmax over candidates drawn from
    ``marginal``, gathered by state: ``q(c | s, a) ∝ marginal(c) exp f(s, a, c)``."""
    q = marginal[None] * np.exp(table - table.max(axis=1, keepdims=True))
    return q / q.sum(axis=1, keepdims=True)


def _tv(q: np.ndarray, m: np.ndarray) -> float:
    """Total-variation distance, averaged over the state-action pairs."""
    return float(0.5 * np.abs(q - m).sum(axis=1).mean())


STEPS, BATCH, LR, TAU = 1500, 256, 0.05, 0.05  # tau faster than 0.005: seconds, not minutes


def _train_td(states, actions, pi, seed=0) -> tuple[np.ndarray, np.ndarray]:
    """TD InfoNCE on a table ``f(s, a, c) = F[s * A + a, c]`` (one-hot phi and psi), batches of
    transitions drawn from the dataset; the candidates of both terms are the batch's next states.
    Returns ``(F, the next-state marginal)``."""
    s = jnp.asarray(states[:, :-1].ravel())
    a = jnp.asarray(actions.ravel())
    s2 = jnp.asarray(states[:, 1:].ravel())
    log_pi = jnp.log(jnp.asarray(pi))
    opt = optax.adam(optax.cosine_decay_schedule(LR, STEPS))
    table0 = jnp.zeros((NS * NA, NS))

    def step(carry, key):
        table, target, opt_state = carry
        row_key, action_key = jax.random.split(key)
        idx = jax.random.randint(row_key, (BATCH,), 0, s.shape[0])
        sa, nxt = s[idx] * NA + a[idx], s2[idx]
        next_action = jax.random.categorical(action_key, log_pi[nxt])  # a' ~ pi(. | s')

        def loss(table):
            logits = table[sa][:, nxt][..., None]  # f(s_i, a_i, s'_j): term 1 and candidates
            target_logits = target[nxt * NA + next_action][:, nxt][..., None]
            return td_infonce_loss(logits, logits, target_logits, GAMMA)[0]

        updates, opt_state = opt.update(jax.grad(loss)(table), opt_state)
        table = optax.apply_updates(table, updates)
        return (table, optax.incremental_update(table, target, TAU), opt_state), None

    run = jax.jit(lambda k: jax.lax.scan(step, (table0, table0, opt.init(table0)), k)[0][0])
    table = run(jax.random.split(jax.random.key(seed), STEPS))
    marginal = np.bincount(states[:, 1:].ravel(), minlength=NS) / states[:, 1:].size
    return np.asarray(table), marginal


def _train_monte_carlo(states, actions, seed=0) -> tuple[np.ndarray, np.ndarray]:
    """Forward InfoNCE on (s, a, future) with futures relabelled from the episode as the replay
    does (offset k in 1..T-t, P(k) ∝ g^k), the other rows' futures as negatives. Returns ``(F,
    the exact marginal of the relabelled futures)``."""
    k_eps, length = actions.shape
    episode = np.repeat(np.arange(k_eps), length)
    time = np.tile(np.arange(length), k_eps)
    sa_all = states[:, :-1].ravel() * NA + actions.ravel()
    marginal = np.zeros(NS)
    for e, t in zip(episode, time, strict=True):
        offsets = np.arange(1, length - t + 1)
        p = GAMMA**offsets / np.sum(GAMMA**offsets)
        np.add.at(marginal, states[e, t + offsets], p / episode.size)
    states_j, episode_j, time_j, sa_j = (jnp.asarray(x) for x in (states, episode, time, sa_all))
    opt = optax.adam(optax.cosine_decay_schedule(LR, STEPS))
    table0 = jnp.zeros((NS * NA, NS))

    def step(carry, key):
        table, opt_state = carry
        row_key, offset_key = jax.random.split(key)
        idx = jax.random.randint(row_key, (BATCH,), 0, episode.size)
        remaining = length - time_j[idx]
        u = jax.random.uniform(offset_key, (BATCH,))
        k = jnp.ceil(jnp.log(1 - u * (1 - GAMMA**remaining)) / jnp.log(GAMMA))
        k = jnp.clip(k, 1, remaining).astype(jnp.int32)
        future = states_j[episode_j[idx], time_j[idx] + k]

        def loss(table):
            logits = table[sa_j[idx]][:, future]
            return jnp.mean(jax.nn.logsumexp(logits, axis=1) - jnp.diagonal(logits))

        updates, opt_state = opt.update(jax.grad(loss)(table), opt_state)
        return (optax.apply_updates(table, updates), opt_state), None

    run = jax.jit(lambda k: jax.lax.scan(step, (table0, opt.init(table0)), k)[0][0])
    return np.asarray(run(jax.random.split(jax.random.key(seed), STEPS))), marginal


def test_tabular_td_infonce_recovers_the_discounted_occupancy():
    """Measured (dataset seeds 0-2): TV to the exact occupancy 0.009-0.010, to the occupancy of
    the dataset's own empirical chain 0.005-0.008; the untrained softmax (the marginal) 0.32."""
    t, pi = _chain()
    exact = _occupancy(t, pi)
    states, actions = _episodes(t, pi, k=400, length=50, seed=0)
    table, marginal = _train_td(states, actions, pi)
    learned = _learned_occupancy(table, marginal)
    assert _tv(_learned_occupancy(np.zeros_like(table), marginal), exact) > 0.3
    assert _tv(learned, exact) < 0.02
    counts = np.full((NS, NA, NS), 1e-12)  # the chain the dataset shows, its TD fixed point
    np.add.at(counts, (states[:, :-1].ravel(), actions.ravel(), states[:, 1:].ravel()), 1.0)
    assert _tv(learned, _occupancy(counts / counts.sum(axis=2, keepdims=True), pi)) < 0.015


@pytest.mark.parametrize("episodes,length", [(10, 20), (20, 10)])
def test_tabular_td_infonce_beats_monte_carlo_infonce_on_a_small_dataset(episodes, length):
    """200 transitions. Measured TV to the exact occupancy, dataset seeds 0-2: 10 x 20 steps,
    TD 0.06-0.12, Monte Carlo 0.16-0.24 (seed 0, tested: 0.12 and 0.16); 20 x 10, TD 0.05-0.11,
    Monte Carlo 0.25-0.31 (its relabelled futures stop at the episode's end)."""
    t, pi = _chain()
    exact = _occupancy(t, pi)
    states, actions = _episodes(t, pi, k=episodes, length=length, seed=0)
    td = _tv(_learned_occupancy(*_train_td(states, actions, pi)), exact)
    mc = _tv(_learned_occupancy(*_train_monte_carlo(states, actions)), exact)
    assert td < mc


# -- settings and the trainer ---------------------------------------------------------------------


def test_settings_follow_the_authors_online_and_offline():
    online = make_config("point_U", alg="td_infonce")
    assert online.twin_q and online.repr_norm and online.repr_dim == 16
    assert online.hidden_layer_sizes == (512,) * 4 and online.actor_learning_rate == 5e-5
    assert (online.random_goals, online.bc_coef, online.tau) == (1.0, 0.0, 0.005)
    offline = make_config("offline_point_U", alg="td_infonce", dataset="x.hdf5")
    assert (offline.bc_coef, offline.random_goals, offline.batch_size) == (0.2, 0.0, 1024)
    assert offline.hidden_layer_sizes == (1024,) * 4
    assert make_config("offline_point_U", alg="td_infonce", dataset="x", bc_coef=0.1).bc_coef == 0.1
    # the other algorithms keep the contrastive RL offline settings
    assert make_config("offline_point_U", dataset="x").bc_coef == OFFLINE_SETTINGS["bc_coef"]


def test_residual_network_builds_a_residual_goal_critic_that_trains():
    """``--network residual`` reaches TD InfoNCE's GoalCritic (phi sees s, a and g) and actor:
    parameter counts in closed form, and one learner update with finite losses that moves
    the residual blocks."""
    spec = ResidualSpec(depth=8, width=8)
    config = make_config(
        alg="td_infonce",
        network="residual",
        residual_depth=spec.depth,
        residual_width=spec.width,
        repr_dim=4,
    )
    nets = make_networks(TOY_SPEC, config)
    assert isinstance(nets.critic, GoalCritic) and nets.critic.residual == spec
    assert nets.actor.residual == spec
    learner = Learner(nets, config)
    state = learner.init(jax.random.key(1))
    actor_p, critic_p = state.actor_params, state.critic_params
    s, a, g = TOY_SPEC.state_dim, TOY_SPEC.action_dim, TOY_SPEC.goal_dim
    per_critic = residual_param_count(s + a + g, spec, 4) + residual_param_count(g, spec, 4)
    assert _count(critic_p) == 2 * per_critic  # twin critics, no temperature parameter
    assert _count(actor_p) == residual_param_count(s + g, spec, None) + 2 * (spec.width * a + a)
    for name in ("sag_encoders_0", "sag_encoders_1", "f_encoders_0", "f_encoders_1"):
        blocks = critic_p["params"][name]["blocks"]  # depth / 4 blocks, stacked for the scan
        assert {x.shape[0] for x in jax.tree.leaves(blocks)} == {spec.depth // 4}, name

    *_, batch = _setup(b=8)
    new, metrics = jax.jit(learner.update)(state, batch, jax.random.key(2))
    for key in ("critic_loss", "loss_next", "loss_future", "actor_loss"):
        assert np.isfinite(float(metrics[key])), key
    moved = jax.tree.map(
        lambda x, y: bool(np.any(np.asarray(x) != np.asarray(y))),
        state.critic_params["params"]["sag_encoders_0"]["blocks"],
        new.critic_params["params"]["sag_encoders_0"]["blocks"],
    )
    assert all(jax.tree.leaves(moved))


@pytest.mark.parametrize(
    ("flags", "refused"),
    [
        (["--energy", "l2"], "energy only applies"),
        (["--contrastive_loss", "forward_infonce"], "contrastive_loss only applies"),
        (["--logsumexp_penalty", "0.1"], "logsumexp_penalty only applies"),
        (
            ["--energy", "cosine", "--logsumexp_penalty", "0"],
            "energy, logsumexp_penalty only apply",
        ),
    ],
)
def test_critic_choices_are_refused_with_the_reason(flags, refused, capsys):
    """The contrastive family's options would be silently ignored by TD InfoNCE's own loss:
    ``crl train`` refuses them (exit 2, before anything is written) and says why."""
    assert main(["train", "--alg", "td_infonce", *flags, "--print-config"]) == 2
    err = capsys.readouterr().err
    assert f"{refused} to the contrastive algorithms (contrastive_nce, contrastive_cpc)" in err
    it = "it" if len(flags) == 2 else "them"
    assert f"td_infonce cannot use {it}: its TD loss is a softmax over candidate futures" in err


def test_crl_list_shows_td_infonce(capsys):
    assert main(["list"]) == 0
    assert "td_infonce" in capsys.readouterr().out


def test_an_offline_run_through_the_trainer_logs_finite_losses(tmp_path):
    """offline_point_Small from a tiny collected dataset, the real loop, replay and learner."""
    pytest.importorskip("h5py")
    from contrastive_rl.api import train
    from contrastive_rl.experiments.collect import CollectOptions, collect
    from contrastive_rl.runs import metrics

    data = str(tmp_path / "small.hdf5")
    collect(CollectOptions("offline_point_Small", data, steps=16 * 51, num_envs=16, seed=3))
    config = make_config(
        "offline_point_Small",
        alg="td_infonce",
        dataset=data,
        steps=128,
        batch_size=32,
        hidden_layer_sizes=(16, 16),
        repr_dim=8,
        eval_every=64,
        eval_episodes=10,
    )
    assert config.bc_coef == 0.2
    train(config, str(tmp_path / "run"), progress_bar=False)
    records = metrics.read_metrics(str(tmp_path / "run"))
    assert [r["grad_steps"] for r in records] == [64, 128]
    for key in ("critic_loss", "loss_next", "loss_future", "actor_loss", "bc_loss"):
        assert all(math.isfinite(r[f"train/{key}"]) for r in records), key


@pytest.mark.slow  # about 20 s of training and 15 s of compilation on a loaded 2-core CPU
def test_td_infonce_learns_point_small_online(tmp_path):
    """The debug preset's networks, 6.4k env steps (3.2k updates). Measured, seed 0: success at
    the final step 1.0, final distance 0.45; the untrained policy (seeds 0, 1) 0.22-0.35 and
    2.8-3.0."""
    from contrastive_rl.api import train

    config = make_config("point_Small", alg="td_infonce", preset="debug", steps=6400)
    result = train(config, str(tmp_path / "run"), progress_bar=False)
    assert result["eval/success_final"] >= 0.9 and result["eval/final_dist"] < 1.0
