"""Critic, actor and alpha losses against hand computations with explicit loops."""

from __future__ import annotations

import functools
import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from toy import TOY_SPEC  # tests/toy.py

from contrastive_rl.agent import losses
from contrastive_rl.agent.losses import (
    ALGORITHMS,
    c_learning_loss,
    cpc_loss,
    critic_metrics,
    make_actor_loss,
    make_alpha_loss,
    make_critic_loss,
    nce_c_learning_loss,
    nce_loss,
    num_next_state_rows,
    td_weight,
)
from contrastive_rl.agent.networks import init_params, log_prob, make_networks
from contrastive_rl.config import make_config
from contrastive_rl.types import Batch

SPEC = TOY_SPEC


def bce(x: float, y: float) -> float:
    """Sigmoid binary cross-entropy, written out."""
    p = 1.0 / (1.0 + math.exp(-x))
    return -(y * math.log(p) + (1.0 - y) * math.log(1.0 - p))


def sigmoid(x: float) -> float:
    return 1.0 / (1.0 + math.exp(-x))


def _logits(b: int, n: int, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).normal(0.0, 2.0, (b, b, n)).astype(np.float32)


# -- losses on given logits ------------------------------------------------------------------------


@pytest.mark.parametrize("n", [1, 2])
def test_nce_loss_by_hand(n):
    logits = _logits(3, n)
    total = 0.0
    for k in range(n):
        for i in range(3):
            for j in range(3):
                total += bce(float(logits[i, j, k]), 1.0 if i == j else 0.0)
    assert float(nce_loss(jnp.asarray(logits))) == pytest.approx(total / (9 * n), rel=1e-5)


@pytest.mark.parametrize("n", [1, 2])
def test_cpc_loss_by_hand(n):
    logits = _logits(4, n, seed=1)
    total = 0.0
    for k in range(n):
        for i in range(4):
            lse = math.log(sum(math.exp(float(logits[i, j, k])) for j in range(4)))
            total += lse - float(logits[i, i, k]) + 0.01 * lse**2
    assert float(cpc_loss(jnp.asarray(logits))) == pytest.approx(total / (4 * n), rel=1e-5)


def _td_by_hand(logits, w, pos_c, neg1_c, neg0_c):
    b, _, n = logits.shape
    total = 0.0
    for i in range(b):
        j = (i + 1) % b
        for k in range(n):
            pos, neg = float(logits[i, i, k]), float(logits[i, j, k])
            total += pos_c * bce(pos, 1) + neg1_c * float(w[i]) * bce(neg, 1) + neg0_c * bce(neg, 0)
    return total / (b * n)


def test_c_learning_losses_by_hand():
    logits = _logits(4, 2, seed=2)
    w = np.array([0.0, 0.5, 3.0, 20.0], np.float32)
    g = 0.9
    got = float(c_learning_loss(jnp.asarray(logits), jnp.asarray(w), g))
    assert got == pytest.approx(_td_by_hand(logits, w, 1 - g, g, 1.0), rel=1e-5)
    got = float(nce_c_learning_loss(jnp.asarray(logits), jnp.asarray(w), g))
    assert got == pytest.approx(_td_by_hand(logits, w, 1 + (1 - g), g, 2.0), rel=1e-5)


def test_td_weight_is_odds_clipped_at_20():
    c = jnp.array([0.0, 0.5, 0.9, 0.95, 0.96, 0.999, 1.0])
    np.testing.assert_allclose(td_weight(c), [0.0, 1.0, 9.0, 19.0, 20.0, 20.0, 20.0], rtol=1e-5)


def test_num_next_state_rows():
    assert num_next_state_rows(256, 0.99) == 2
    assert num_next_state_rows(1024, 0.99) == 10
    assert num_next_state_rows(4, 0.5) == 1


def test_critic_metrics_on_hand_made_matrix():
    m = np.array([[2.0, -1.0, 0.5], [3.0, 1.0, -2.0], [-1.0, -1.0, -0.5]], np.float32)
    # twins that average to m
    twin = jnp.asarray(np.stack([m + 1.0, m - 1.0], axis=-1))
    got = {k: float(v) for k, v in critic_metrics(twin).items()}
    assert got["binary_accuracy"] == pytest.approx(6 / 9)
    assert got["categorical_accuracy"] == pytest.approx(2 / 3)
    assert got["logits_pos"] == pytest.approx((2.0 + 1.0 - 0.5) / 3)
    assert got["logits_neg"] == pytest.approx((-1.0 + 0.5 + 3.0 - 2.0 - 1.0 - 1.0) / 6)
    lse2 = [math.log(sum(math.exp(x) for x in row)) ** 2 for row in m.tolist()]
    assert got["logsumexp"] == pytest.approx(sum(lse2) / 3, rel=1e-5)


def test_algorithm_registry():
    assert set(ALGORITHMS) == {
        "contrastive_nce",
        "contrastive_cpc",
        "c_learning",
        "nce+c_learning",
        "gcbc",
        "td_infonce",
    }
    assert [a for a, x in ALGORITHMS.items() if x.uses_target] == [
        "c_learning",
        "nce+c_learning",
        "td_infonce",
    ]
    assert [a for a, x in ALGORITHMS.items() if not x.trains_critic] == ["gcbc"]
    assert all(x.summary for x in ALGORITHMS.values())


# -- factories on tiny networks, against per-row bookkeeping ---------------------------------------


def _setup(alg="contrastive_nce", b=4, **overrides):
    config = make_config(alg=alg, hidden_layer_sizes=(8,), repr_dim=4, **overrides)
    nets = make_networks(SPEC, config)
    actor_params, critic_params = init_params(nets, jax.random.key(0))
    _, target_params = init_params(nets, jax.random.key(1))
    ks = jax.random.split(jax.random.key(2), 4)
    batch = Batch(
        state=jax.random.normal(ks[0], (b, 3)),
        action=jax.random.uniform(ks[1], (b, 2), minval=-1.0, maxval=1.0).at[0, 0].set(1.0),
        next_state=jax.random.normal(ks[2], (b, 3)),
        goal=jax.random.normal(ks[3], (b, 2)),
    )
    return config, nets, actor_params, critic_params, target_params, batch


def fake_sample(loc, scale, key):
    """A deterministic stand-in for the sampler, so expected values need no RNG bookkeeping."""
    del key
    return jnp.tanh(loc + 0.3 * scale)


@functools.cache
def _jit(fn):
    return jax.jit(fn)  # the per-row helpers below call the same shapes many times


def _q(nets, params, s, a, g) -> np.ndarray:
    """The critic's logits of one (s, a, g) triple, one per twin: [n]."""
    return np.asarray(_jit(nets.critic_logits)(params, s[None], a[None], g[None]))[0, 0]


def _policy_row(nets, params, s, g):
    """``(loc, scale)`` of one row, each [1, action_dim]."""
    return _jit(nets.policy)(params, jnp.asarray(s)[None], jnp.asarray(g)[None])


@pytest.mark.parametrize("alg", ["c_learning", "nce+c_learning"])
def test_td_critic_loss_by_hand(alg, monkeypatch):
    monkeypatch.setattr(losses, "sample_action", fake_sample)
    g = 0.5
    config, nets, actor_p, critic_p, target_p, batch = _setup(alg, b=4, discount=g)
    b = 4
    next_goal = np.asarray(batch.next_state)[:, 1:3]
    goals = next_goal.copy()
    if alg == "nce+c_learning":  # n = int(4 * 0.5 / 1.5) = 1 next-state row
        goals[1:] = np.asarray(batch.goal)[1:]
    s, a, s2 = (np.asarray(x) for x in (batch.state, batch.action, batch.next_state))
    logits = np.zeros((b, b, 2))
    for i in range(b):
        for j in range(b):
            logits[i, j] = _q(nets, critic_p, s[i], a[i], goals[j])
    w = np.zeros(b)
    for i in range(b):
        rand_goal = goals[(i + 1) % b]
        loc, scale = _policy_row(nets, actor_p, s2[i], rand_goal)
        next_a = np.asarray(fake_sample(loc, scale, None))[0]
        c = min(sigmoid(float(x)) for x in _q(nets, target_p, s2[i], next_a, rand_goal))
        w[i] = min(max(c / (1 - c), 0.0), 20.0)
    coefs = (1 - g, g, 1.0) if alg == "c_learning" else (1 + (1 - g), g, 2.0)
    expected = _td_by_hand(logits, w, *coefs)

    loss_fn = make_critic_loss(alg, nets, config)
    loss, metrics = loss_fn(critic_p, target_p, actor_p, batch, jax.random.key(3))
    assert float(loss) == pytest.approx(expected, rel=1e-4)
    assert float(metrics["critic_loss"]) == float(loss)
    assert float(metrics["logits_pos"]) == pytest.approx(
        np.mean([logits[i, i].mean() for i in range(b)]), rel=1e-4, abs=1e-6
    )
    # w is a constant: no gradient reaches the actor or the target critic.
    g_actor, g_target = jax.grad(lambda p, t: loss_fn(critic_p, t, p, batch, None)[0], (0, 1))(
        actor_p, target_p
    )
    assert all(np.all(np.asarray(x) == 0) for x in jax.tree.leaves((g_actor, g_target)))


@pytest.mark.parametrize(
    "alg,loss_on_logits", [("contrastive_nce", nce_loss), ("contrastive_cpc", cpc_loss)]
)
def test_contrastive_critic_loss_uses_relabelled_goals(alg, loss_on_logits):
    config, nets, actor_p, critic_p, target_p, batch = _setup(alg)
    s, a, goal = (np.asarray(x) for x in (batch.state, batch.action, batch.goal))
    logits = np.array(
        [[_q(nets, critic_p, s[i], a[i], goal[j]) for j in range(4)] for i in range(4)]
    )
    loss, metrics = make_critic_loss(alg, nets, config)(
        critic_p, target_p, actor_p, batch, jax.random.key(0)
    )
    assert float(loss) == pytest.approx(float(loss_on_logits(jnp.asarray(logits))), rel=1e-5)
    assert set(metrics) >= {
        "critic_loss",
        "binary_accuracy",
        "categorical_accuracy",
        "logits_pos",
        "logits_neg",
        "logsumexp",
    }


def test_gcbc_has_no_critic_loss():
    config, nets, *_ = _setup("gcbc")
    with pytest.raises(ValueError, match="gcbc"):
        make_critic_loss("gcbc", nets, config)
    with pytest.raises(ValueError, match="valid choices"):
        make_critic_loss("sac", nets, config)


@pytest.mark.parametrize(
    "random_goals,bc_coef,twin",
    [
        (0.0, 0.0, False),
        (0.5, 0.0, True),
        (1.0, 0.0, False),
        (0.5, 0.3, False),
        (0.0, 1.0, True),
        (0.0, 0.05, True),  # the offline settings: relabelled goals, bc 0.05, min of twins
    ],
)
def test_actor_loss_by_hand(random_goals, bc_coef, twin, monkeypatch):
    monkeypatch.setattr(losses, "sample_action", fake_sample)
    config, nets, actor_p, critic_p, _, batch = _setup(
        random_goals=random_goals, bc_coef=bc_coef, twin_q=twin
    )
    alpha = 0.2
    s, a, goal = (np.asarray(x) for x in (batch.state, batch.action, batch.goal))
    b = len(s)
    rows = []  # (state, goal, data action) the actor is trained on
    if random_goals in (0.0, 0.5):
        rows += [(s[i], goal[i], a[i]) for i in range(b)]
    if random_goals in (0.5, 1.0):
        rows += [(s[i], goal[(i - 1) % b], a[i]) for i in range(b)]  # row i-1's goal
    per_row, logps = [], []
    for st, gl, data_a in rows:
        loc, scale = _policy_row(nets, actor_p, st, gl)
        act = fake_sample(loc, scale, None)
        logp = float(log_prob(loc, scale, act)[0])
        q = float(np.min(_q(nets, critic_p, st, np.asarray(act)[0], gl)))
        loss = alpha * logp - q
        if bc_coef > 0:
            bc = -float(log_prob(loc, scale, data_a[None])[0])
            loss = bc_coef * bc + (1 - bc_coef) * loss
        per_row.append(loss)
        logps.append(logp)

    loss, metrics = make_actor_loss("contrastive_nce", nets, config)(
        actor_p, critic_p, batch, jax.random.key(0), alpha
    )
    assert float(loss) == pytest.approx(np.mean(per_row), rel=1e-4, abs=1e-5)
    assert float(metrics["actor_loss"]) == float(loss)
    assert float(metrics["entropy"]) == pytest.approx(-np.mean(logps), rel=1e-4, abs=1e-5)


def test_gcbc_actor_loss_is_negative_log_likelihood():
    config, nets, actor_p, critic_p, _, batch = _setup("gcbc")
    expected = -np.mean(
        [
            float(
                log_prob(
                    *_policy_row(nets, actor_p, batch.state[i], batch.goal[i]),
                    batch.action[i : i + 1],
                )[0]
            )
            for i in range(4)
        ]
    )
    loss, metrics = make_actor_loss("gcbc", nets, config)(
        actor_p, critic_p, batch, jax.random.key(0), 0.0
    )
    assert np.isfinite(float(loss))  # the data action at exactly 1.0 uses the tail mass
    assert float(loss) == pytest.approx(expected, rel=1e-5)
    assert "entropy" in metrics


def test_alpha_loss(monkeypatch):
    monkeypatch.setattr(losses, "sample_action", fake_sample)
    config, nets, actor_p, _, _, batch = _setup(
        entropy_coefficient=None, target_entropy=-1.0, random_goals=0.5
    )
    loc, scale = nets.policy(actor_p, batch.state, batch.goal)  # the un-mixed batch
    logp = np.asarray(log_prob(loc, scale, fake_sample(loc, scale, None)))
    log_alpha = jnp.asarray(0.4)
    expected = math.exp(0.4) * np.mean(-logp + 1.0)
    loss_fn = make_alpha_loss(nets, config)
    loss, metrics = loss_fn(log_alpha, actor_p, batch, jax.random.key(0))
    assert float(loss) == pytest.approx(expected, rel=1e-5)
    grad_alpha, grad_actor = jax.grad(lambda la, p: loss_fn(la, p, batch, None)[0], (0, 1))(
        log_alpha, actor_p
    )
    assert float(grad_alpha) == pytest.approx(expected, rel=1e-5)  # d/dx e^x c = e^x c
    assert all(np.all(np.asarray(x) == 0) for x in jax.tree.leaves(grad_actor))


@pytest.mark.parametrize("alg", list(ALGORITHMS))
def test_gradients_finite_for_every_algorithm(alg):
    config, nets, actor_p, critic_p, target_p, batch = _setup(
        alg, b=8, entropy_coefficient=None, bc_coef=0.1
    )
    key = jax.random.key(5)

    @jax.jit
    def grads(actor_p, critic_p, target_p, batch, key):
        out = {}
        if ALGORITHMS[alg].trains_critic:
            out["critic"] = jax.grad(
                lambda p: make_critic_loss(alg, nets, config)(p, target_p, actor_p, batch, key)[0]
            )(critic_p)
        out["actor"] = jax.grad(
            lambda p: make_actor_loss(alg, nets, config)(p, critic_p, batch, key, 0.1)[0]
        )(actor_p)
        out["alpha"] = jax.grad(
            lambda la: make_alpha_loss(nets, config)(la, actor_p, batch, key)[0]
        )(jnp.asarray(0.0))
        return out

    out = grads(actor_p, critic_p, target_p, batch, key)
    for name, tree in out.items():
        leaves = [np.asarray(x) for x in jax.tree.leaves(tree)]
        assert all(np.all(np.isfinite(x)) for x in leaves), name
        assert any(np.any(x != 0) for x in leaves), name
