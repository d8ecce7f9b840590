"""The original's conv torsos for image tasks: shapes, /255 inside, sharing, uint8 inputs."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from contrastive_rl.agent.networks import Actor, AtariTorso, Critic, init_params, make_networks
from contrastive_rl.config import make_config
from contrastive_rl.envs import make_env

SHAPE = (64, 64, 3)
B = 3


def _images(key, b=B, shape=SHAPE):
    return jax.random.randint(key, (b, int(np.prod(shape))), 0, 256).astype(jnp.uint8)


@pytest.mark.parametrize("pool, features", [(1, 8 * 8 * 64), (2, 4 * 4 * 64)])
def test_torso_output_size(pool, features):
    torso = AtariTorso(SHAPE, pool)
    x = jax.ShapeDtypeStruct((B, int(np.prod(SHAPE))), jnp.uint8)
    params = jax.eval_shape(torso.init, jax.random.key(1), x)
    assert jax.eval_shape(torso.apply, params, x).shape == (B, features)


def test_torso_is_the_atari_convs_on_pixels_over_255():
    torso = AtariTorso(SHAPE)
    x = _images(jax.random.key(0))
    params = torso.init(jax.random.key(1), x)["params"]
    h = x.reshape(B, *SHAPE).astype(jnp.float32) / 255.0
    for i, (features, kernel, stride) in enumerate(((32, 8, 4), (64, 4, 2), (64, 3, 1))):
        conv = params[f"Conv_{i}"]
        assert conv["kernel"].shape[-1] == features and conv["kernel"].shape[0] == kernel
        assert not np.any(conv["bias"])  # zero biases at initialisation
        # Haiku's default: N(0, 1) truncated at +-2 (std 0.8796) over sqrt(fan_in), bound 2/sqrt.
        fan_in = np.prod(conv["kernel"].shape[:-1])
        std, bound = np.std(conv["kernel"]) * np.sqrt(fan_in), np.abs(conv["kernel"]).max()
        assert abs(std - 0.8796) < 0.05 and bound <= 2 / np.sqrt(fan_in) + 1e-6
        h = jax.lax.conv_general_dilated(
            h, conv["kernel"], (stride, stride), "SAME", dimension_numbers=("NHWC", "HWIO", "NHWC")
        )
        h = jax.nn.relu(h + conv["bias"])
    expected = h.reshape(B, -1)
    np.testing.assert_allclose(torso.apply({"params": params}, x), expected, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("twin", [False, True])
def test_critic_shares_one_torso_between_state_goal_and_twins(twin):
    critic = Critic(hidden=(16,), repr_dim=4, twin=twin, image_shape=SHAPE, image_pool=2)
    s, g = _images(jax.random.key(0)), _images(jax.random.key(1))
    a = jnp.zeros((B, 2))
    params = critic.init(jax.random.key(2), s, a, g)["params"]
    torsos = [name for name in params if "torso" in name]
    assert torsos == ["torso"]
    logits = critic.apply({"params": params}, s, a, g)
    assert logits.shape == (B, B, 2 if twin else 1) and logits.dtype == jnp.float32
    # The goal encoder sees the torso's features of the goal image: same image, same psi input.
    phi, psi = critic.apply({"params": params}, s, a, s, method=Critic.representations)
    assert np.isfinite(np.asarray(phi)).all() and psi.shape == (B, 2 if twin else 1, 4)


def test_actor_has_its_own_torso_on_the_six_channel_stack():
    actor = Actor(hidden=(16,), action_dim=2, image_shape=SHAPE)
    s, g = _images(jax.random.key(0)), _images(jax.random.key(1))
    params = actor.init(jax.random.key(2), s, g)["params"]
    assert params["image_torso"]["Conv_0"]["kernel"].shape == (8, 8, 6, 32)
    loc, scale = actor.apply({"params": params}, s, g)
    assert loc.shape == (B, 2) and (np.asarray(scale) > 0).all()
    swapped, _ = actor.apply({"params": params}, g, s)  # the order of the stack matters
    assert not np.allclose(loc, swapped)


def test_networks_for_an_image_spec_take_uint8_images():
    spec = make_env("point_image_Small").spec
    config = make_config("point_image_Small", hidden_layer_sizes=(16,), image_pool=4)
    nets = make_networks(spec, config)
    assert nets.critic.image_shape == SHAPE and nets.actor.image_shape == SHAPE
    actor_params, critic_params = init_params(nets, jax.random.key(0))
    s, g = _images(jax.random.key(1)), _images(jax.random.key(2))
    loc, _ = nets.policy(actor_params, s, g)
    logits = nets.critic_logits(critic_params, s, jnp.tanh(loc), g)
    assert loc.shape == (B, 2) and logits.shape == (B, B, 1)
    state_nets = make_networks(make_env("point_Small").spec, make_config("point_Small"))
    assert state_nets.critic.image_shape is None  # vector tasks keep their MLPs


def test_torso_takes_float_pixels_as_they_are():
    """Standardised (float) pixels skip the /255 that uint8 pixels get."""
    torso = AtariTorso(SHAPE)
    x = _images(jax.random.key(0))
    params = torso.init(jax.random.key(1), x)
    as_float = x.astype(jnp.float32) / 255.0
    np.testing.assert_allclose(
        torso.apply(params, as_float), torso.apply(params, x), rtol=1e-5, atol=1e-6
    )
    assert not np.allclose(torso.apply(params, x.astype(jnp.float32)), torso.apply(params, x))
