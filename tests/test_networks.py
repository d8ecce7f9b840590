"""Critic and actor architecture, initialisation and the tanh-Gaussian policy distribution."""

from __future__ import annotations

import dataclasses
import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from scipy import stats
from toy import TOY_SPEC  # tests/toy.py

from contrastive_rl.agent.networks import (
    THRESHOLD,
    Actor,
    Critic,
    init_params,
    log_prob,
    make_networks,
    mode,
    sample_action,
)
from contrastive_rl.config import make_config

SPEC = TOY_SPEC
B = 5


def _inputs(key, b=B):
    ks, ka, kg = jax.random.split(key, 3)
    return (
        jax.random.normal(ks, (b, SPEC.state_dim)),
        jax.random.uniform(ka, (b, SPEC.action_dim), minval=-1, maxval=1),
        jax.random.normal(kg, (b, SPEC.goal_dim)),
    )


def _np_mlp(params: dict, x: np.ndarray, activate_final: bool, layer_norm=False) -> np.ndarray:
    """Forward pass of an MLP in float64 numpy: Dense, [LayerNorm], ReLU between layers."""
    n = len([k for k in params if k.startswith("Dense_")])
    for i in range(n):
        dense = params[f"Dense_{i}"]
        x = x @ np.asarray(dense["kernel"], np.float64) + np.asarray(dense["bias"])
        if i < n - 1 or activate_final:
            if layer_norm:
                ln = params[f"LayerNorm_{i}"]
                x = (x - x.mean(-1, keepdims=True)) / np.sqrt(x.var(-1, keepdims=True) + 1e-6)
                x = x * np.asarray(ln["scale"]) + np.asarray(ln["bias"])
            x = np.maximum(x, 0.0)
    return x


@pytest.mark.parametrize("twin", [False, True])
def test_critic_logits_are_dot_products_of_separate_encoders(twin):
    critic = Critic(hidden=(16, 8), repr_dim=4, twin=twin)
    s, a, g = _inputs(jax.random.key(0))
    params = critic.init(jax.random.key(1), s, a, g)
    logits = np.asarray(critic.apply(params, s, a, g))
    n = 2 if twin else 1
    assert logits.shape == (B, B, n)

    p = params["params"]
    sa = np.concatenate([np.asarray(s), np.asarray(a)], axis=1)
    for k in range(n):
        phi = _np_mlp(p[f"sa_encoders_{k}"], sa, activate_final=False)
        psi = _np_mlp(p[f"g_encoders_{k}"], np.asarray(g), activate_final=False)
        assert phi.shape == (B, 4) and psi.shape == (B, 4)
        for i in range(B):
            for j in range(B):
                assert logits[i, j, k] == pytest.approx(phi[i] @ psi[j], rel=1e-4, abs=1e-5)
    if twin:  # independent encoders: the two critics disagree
        assert not np.allclose(logits[..., 0], logits[..., 1])

    phi, psi = critic.apply(params, s, a, g, method=Critic.representations)
    np.testing.assert_allclose(np.einsum("ikd,jkd->ijk", phi, psi), logits, rtol=1e-5, atol=1e-6)


def test_critic_repr_norm_unit_vectors_and_temperature():
    critic = Critic(hidden=(8,), repr_dim=4, twin=True, repr_norm=True)
    s, a, g = _inputs(jax.random.key(2))
    params = critic.init(jax.random.key(3), s, a, g)
    assert float(params["params"]["log_scale"]) == 0.0
    params = jax.tree.map(lambda x: x, params)
    params["params"]["log_scale"] = jnp.asarray(math.log(2.0))
    phi, psi = critic.apply(params, s, a, g, method=Critic.representations)
    np.testing.assert_allclose(np.linalg.norm(psi, axis=-1), 1.0, rtol=1e-5)
    np.testing.assert_allclose(np.linalg.norm(phi, axis=-1), 0.5, rtol=1e-5)
    # |logit| <= 1 / exp(log_scale) by Cauchy-Schwarz
    assert np.all(np.abs(critic.apply(params, s, a, g)) <= 0.5 + 1e-6)


def test_critic_layer_norm_before_each_hidden_relu():
    critic = Critic(hidden=(8, 8), repr_dim=4, layer_norm=True)
    s, a, g = _inputs(jax.random.key(4))
    params = critic.init(jax.random.key(5), s, a, g)
    p = params["params"]
    assert sorted(k for k in p["g_encoders_0"] if k.startswith("LayerNorm")) == [
        "LayerNorm_0",
        "LayerNorm_1",
    ]
    # Give the norms non-trivial affine parameters so their placement matters.
    p = jax.tree.map(lambda x: x + 0.1 * jnp.arange(x.size).reshape(x.shape) / x.size, p)
    sa = np.concatenate([np.asarray(s), np.asarray(a)], axis=1)
    phi = _np_mlp(p["sa_encoders_0"], sa, activate_final=False, layer_norm=True)
    psi = _np_mlp(p["g_encoders_0"], np.asarray(g), activate_final=False, layer_norm=True)
    logits = critic.apply({"params": p}, s, a, g)
    np.testing.assert_allclose(logits[..., 0], phi @ psi.T, rtol=1e-4, atol=1e-4)
    plain = Critic(hidden=(8, 8), repr_dim=4).init(jax.random.key(5), s, a, g)["params"]
    assert not any("LayerNorm" in k for k in plain["sa_encoders_0"])


def test_zero_init_for_zero_input_does_not_nan_with_repr_norm():
    nets = make_networks(SPEC, make_config(hidden_layer_sizes=(8,), repr_dim=4, repr_norm=True))
    _, critic_params = init_params(nets, jax.random.key(0))
    z = jnp.zeros((2, SPEC.state_dim)), jnp.zeros((2, 2)), jnp.zeros((2, SPEC.goal_dim))
    assert np.all(np.isfinite(nets.critic_logits(critic_params, *z)))


def _dense_layers(tree, path=()):
    for name, sub in tree.items():
        if isinstance(sub, dict) and "kernel" in sub:
            yield path + (name,), sub
        elif isinstance(sub, dict):
            yield from _dense_layers(sub, path + (name,))


def test_init_params_shapes_zero_biases_and_uniform_kernels():
    config = make_config(hidden_layer_sizes=(256, 256), repr_dim=64, twin_q=True)
    nets = make_networks(SPEC, config)
    actor_params, critic_params = init_params(nets, jax.random.key(0))
    for params, fan in [(critic_params, "avg"), (actor_params, "in")]:
        layers = list(_dense_layers(params["params"]))
        assert layers
        for path, layer in layers:
            assert np.all(np.asarray(layer["bias"]) == 0.0), path
            fan_in, fan_out = layer["kernel"].shape
            n = (fan_in + fan_out) / 2 if fan == "avg" else fan_in
            limit = math.sqrt(3.0 / n)  # VarianceScaling(1, fan, uniform)
            w = np.abs(np.asarray(layer["kernel"]))
            assert w.max() <= limit, path
            if w.size >= 256 * 256:  # a big layer fills its interval
                assert w.max() > 0.99 * limit, path
                assert np.mean(w) == pytest.approx(limit / 2, rel=0.02), path
    # the critic with batch 1 from init gives [1, 1, 2]
    s, a, g = _inputs(jax.random.key(1), b=1)
    assert nets.critic_logits(critic_params, s, a, g).shape == (1, 1, 2)
    loc, scale = nets.policy(actor_params, s, g)
    assert loc.shape == scale.shape == (1, SPEC.action_dim)


def test_actor_relu_after_last_hidden_and_positive_scale():
    actor = Actor(hidden=(8, 8), action_dim=2)
    s, _, g = _inputs(jax.random.key(6))
    params = actor.init(jax.random.key(7), s, g)
    p = params["params"]
    h = _np_mlp(p["torso"], np.concatenate([s, g], axis=1), activate_final=True)
    loc, scale = actor.apply(params, s, g)
    expected_loc = h @ np.asarray(p["loc"]["kernel"]) + np.asarray(p["loc"]["bias"])
    np.testing.assert_allclose(loc, expected_loc, rtol=1e-4, atol=1e-5)
    pre = h @ np.asarray(p["scale"]["kernel"])
    np.testing.assert_allclose(scale, np.logaddexp(0.0, pre) + 1e-6, rtol=1e-4, atol=1e-6)

    # A scale head driven far negative still gives scale >= min_scale 1e-6.
    p2 = jax.tree.map(lambda x: x, params)
    p2["params"]["scale"]["bias"] = jnp.full((2,), -200.0)
    _, small = actor.apply(p2, s, g)
    assert np.all(np.asarray(small) > 0)
    np.testing.assert_allclose(small, 1e-6, rtol=1e-3)


def test_mode_is_tanh_of_loc():
    loc = jnp.array([[-3.0, 0.0, 0.5, 20.0]])
    np.testing.assert_allclose(mode(loc), np.tanh(np.asarray(loc)), rtol=1e-6)


def _np_log_prob(loc, scale, action):
    """Reference in float64: change of variables inside, tail mass per width at the clip."""
    loc, scale, action = (np.asarray(x, np.float64) for x in (loc, scale, action))
    out = np.zeros(action.shape[:-1])
    edge = np.arctanh(THRESHOLD)
    for idx in np.ndindex(*action.shape):
        a, m, sd = action[idx], loc[idx], scale[idx]
        if a <= -THRESHOLD:
            lp = stats.norm.logcdf(-edge, m, sd) - math.log(1 - THRESHOLD)
        elif a >= THRESHOLD:
            lp = stats.norm.logsf(edge, m, sd) - math.log(1 - THRESHOLD)
        else:
            u = np.arctanh(a)
            lp = stats.norm.logpdf(u, m, sd) - np.log(1 - a * a)
        out[idx[:-1]] += lp
    return out


def test_log_prob_matches_change_of_variables_and_tail_masses():
    loc = np.array([[0.3, -1.0, 2.0], [0.0, 0.5, -0.2], [1.5, -3.0, 0.1], [0.0, 0.0, 0.0]])
    scale = np.array([[0.5, 1.2, 0.1], [2.0, 0.05, 1.0], [0.7, 0.3, 3.0], [1.0, 1.0, 1.0]])
    action = np.array(
        [
            [0.1, -0.5, 0.9],  # interior
            [0.0, 0.45, -0.99],  # interior, close to the edge
            [1.0, -1.0, 0.9995],  # at / beyond the clip: tails
            [-0.9999, 0.999, -0.999],  # tails exactly at the threshold
        ]
    )
    got = np.asarray(log_prob(jnp.asarray(loc), jnp.asarray(scale), jnp.asarray(action)))
    np.testing.assert_allclose(got, _np_log_prob(loc, scale, action), rtol=2e-4, atol=2e-3)
    assert got.shape == (4,)


def test_log_prob_of_tail_has_finite_gradient():
    loc, scale = jnp.array([[0.2, -0.3]]), jnp.array([[0.5, 0.5]])
    grad = jax.grad(lambda m, s: log_prob(m, s, jnp.array([[1.0, -1.0]])).sum(), (0, 1))(loc, scale)
    assert all(np.all(np.isfinite(x)) for x in grad)
    assert np.all(np.asarray(grad[0]) != 0)


def test_samples_in_open_interval_and_reparameterised():
    key = jax.random.key(8)
    loc = jnp.tile(jnp.array([[0.5, -1.0]]), (20_000, 1))
    scale = jnp.tile(jnp.array([[0.3, 1.0]]), (20_000, 1))
    a = np.asarray(sample_action(loc, scale, key))
    assert np.all(np.abs(a) < 1.0)
    u = np.arctanh(a.astype(np.float64))
    np.testing.assert_allclose(u.mean(0), [0.5, -1.0], atol=0.03)
    np.testing.assert_allclose(u.std(0), [0.3, 1.0], rtol=0.03)
    # a saturated sample still has a finite log-probability (the clip)
    big = sample_action(jnp.array([[30.0]]), jnp.array([[0.01]]), key)
    assert float(big[0, 0]) == 1.0 and np.isfinite(
        log_prob(jnp.array([[30.0]]), jnp.array([[0.01]]), big)
    )
    # reparameterised: the sample moves with loc
    g = jax.grad(lambda m: sample_action(m, scale[:4], key).sum())(loc[:4])
    assert np.all(np.asarray(g) > 0)


def test_bf16_networks_keep_float32_parameters_and_outputs_close_to_fp32():
    full = make_networks(SPEC, make_config(preset="paper"))
    half = make_networks(SPEC, make_config(preset="paper", precision="bf16"))
    actor_params, critic_params = init_params(full, jax.random.key(3))
    assert {x.dtype for x in jax.tree.leaves((actor_params, critic_params))} == {
        np.dtype("float32")
    }
    state, action, goal = _inputs(jax.random.key(4), b=16)
    want = full.critic_logits(critic_params, state, action, goal)
    got = half.critic_logits(critic_params, state, action, goal)  # same parameters
    assert got.dtype == jnp.float32
    scale = float(jnp.abs(want).max())
    assert float(jnp.abs(got - want).max()) < 0.05 * scale  # bf16 keeps ~3 significant digits
    assert float(jnp.abs(got - want).max()) > 0  # and it did compute in bf16
    loc_full, _ = full.policy(actor_params, state, goal)
    loc_half, scale_half = half.policy(actor_params, state, goal)
    assert loc_half.dtype == scale_half.dtype == jnp.float32
    np.testing.assert_allclose(loc_half, loc_full, atol=0.05 * float(jnp.abs(loc_full).max()))


def test_input_norm_standardises_states_and_goal_slices_for_actor_and_critic():
    shift, scale = (1.0, -2.0, 3.0), (2.0, 0.5, 4.0)
    spec = dataclasses.replace(SPEC, input_shift=shift, input_scale=scale)
    plain = make_networks(spec, make_config(hidden_layer_sizes=(8, 8), repr_dim=4))
    normed = make_networks(
        spec, make_config(hidden_layer_sizes=(8, 8), repr_dim=4, input_norm=True)
    )
    actor_params, critic_params = init_params(plain, jax.random.key(0))
    s, a, g = _inputs(jax.random.key(1))
    # goal indices 1:3 of the toy spec: the goal takes the shift and scale of those state dims
    s_std = (s - jnp.array(shift)) / jnp.array(scale)
    g_std = (g - jnp.array(shift[1:])) / jnp.array(scale[1:])
    np.testing.assert_allclose(
        normed.critic_logits(critic_params, s, a, g),
        plain.critic_logits(critic_params, s_std, a, g_std),
        rtol=1e-6,
    )
    for got, want in zip(
        normed.policy(actor_params, s, g), plain.policy(actor_params, s_std, g_std), strict=True
    ):
        np.testing.assert_allclose(got, want, rtol=1e-6)
    assert not np.allclose(
        normed.critic_logits(critic_params, s, a, g), plain.critic_logits(critic_params, s, a, g)
    )


def test_input_norm_leaves_inputs_alone_without_a_known_extent():
    assert SPEC.input_shift is None
    plain = make_networks(SPEC, make_config(hidden_layer_sizes=(8,), repr_dim=4))
    normed = make_networks(SPEC, make_config(hidden_layer_sizes=(8,), repr_dim=4, input_norm=True))
    _, critic_params = init_params(plain, jax.random.key(0))
    s, a, g = _inputs(jax.random.key(1))
    np.testing.assert_array_equal(
        normed.critic_logits(critic_params, s, a, g), plain.critic_logits(critic_params, s, a, g)
    )
