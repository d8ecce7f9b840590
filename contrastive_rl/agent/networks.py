"""The agent's networks: the critics, the actor and its tanh-Gaussian distribution (spec
section 4), and ``make_networks``, which builds them for a run's config.

The critic is bilinear: ``logits[i, j] = phi(s_i, a_i) . psi(g_j)`` for every row/goal pair of a
batch, so one call scores each row's own goal (the diagonal) against the other rows' goals (the
negatives); ``GoalCritic`` is TD InfoNCE's, ``phi(s, a, g) . psi(s_f)``. Encoders and the actor's
torso are the original's MLPs or deep residual networks (``residual.py``). The actor has acme's
``NormalTanhDistribution`` head; its distribution is written out by hand below
(``sample_action``, ``log_prob``, ``mode``) with acme's exact clipping at +-0.999 and tail
masses, so no distribution library is needed.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import flax.linen as nn
import jax
import jax.numpy as jnp
from jax.scipy.special import log_ndtr

from contrastive_rl.agent.algorithms import ALGORITHMS
from contrastive_rl.agent.energies import diagonal_energy, pairwise_energy
from contrastive_rl.agent.residual import ResidualMLP, ResidualSpec
from contrastive_rl.config import Config, ConfigError
from contrastive_rl.envs.spec import EnvSpec

Initializer = Callable[..., jax.Array]

# Haiku's VarianceScaling(1.0, fan_avg, uniform) and (1.0, fan_in, uniform) of the original.
glorot_uniform: Initializer = nn.initializers.variance_scaling(1.0, "fan_avg", "uniform")
lecun_uniform: Initializer = nn.initializers.variance_scaling(1.0, "fan_in", "uniform")

COMPUTE_DTYPES = {"fp32": jnp.float32, "bf16": jnp.bfloat16}  # --precision
MIN_SCALE = 1e-6  # the original passes min_scale=1e-6 to acme's NormalTanhDistribution
THRESHOLD = 0.999  # acme TanhTransformedDistribution: actions are clipped to +-THRESHOLD
_HALF_LOG_2PI = 0.5 * math.log(2.0 * math.pi)


class MLP(nn.Module):
    """Dense layers with ReLU between them; zero biases; optional LayerNorm before each ReLU."""

    sizes: tuple[int, ...]
    kernel_init: Initializer
    activate_final: bool = False
    layer_norm: bool = False
    dtype: jnp.dtype = jnp.float32  # compute dtype; parameters stay float32

    @nn.compact
    def __call__(self, x: jax.Array) -> jax.Array:
        for i, size in enumerate(self.sizes):
            zeros = nn.initializers.zeros
            x = nn.Dense(size, kernel_init=self.kernel_init, bias_init=zeros, dtype=self.dtype)(x)
            if i < len(self.sizes) - 1 or self.activate_final:
                if self.layer_norm:
                    x = nn.LayerNorm(dtype=self.dtype)(x)
                x = nn.relu(x)
        return x


def haiku_conv_init(key: jax.Array, shape: tuple[int, ...], dtype=jnp.float32) -> jax.Array:
    """Haiku's default conv kernel: a normal truncated at +-2, times 1/sqrt(fan_in) (no
    correction of the truncated variance, unlike flax's variance_scaling)."""
    fan_in = math.prod(shape[:-1])
    return jax.random.truncated_normal(key, -2.0, 2.0, shape, dtype) / math.sqrt(fan_in)


class AtariTorso(nn.Module):
    """acme's AtariTorso on flattened HWC uint8 images: three SAME convs, ReLU, flatten.

    uint8 pixels are divided by 255 here, so images stay uint8 in the replay and on the way to
    the device; float pixels (standardised by ``--input_norm``) are used as they are.
    ``pool`` > 1 first averages ``pool x pool`` pixel blocks, a CPU option (its measured cost in
    docs/images.md); 1 is the original.
    """

    image_shape: tuple[int, int, int]  # (H, W, C) of one image; C may be a stack of images
    pool: int = 1
    dtype: jnp.dtype = jnp.float32

    @nn.compact
    def __call__(self, flat: jax.Array) -> jax.Array:
        h, w, c = self.image_shape
        x = flat.reshape(*flat.shape[:-1], h, w, c).astype(self.dtype)
        if flat.dtype == jnp.uint8:  # float pixels arrive standardised (``--input_norm``)
            x = x / 255.0
        p = self.pool
        if p > 1:  # a reshape and a mean: far cheaper on XLA's CPU backend than reduce_window
            if h % p or w % p:
                divisors = [d for d in range(1, min(h, w) + 1) if h % d == 0 and w % d == 0]
                raise ValueError(
                    f"image_pool ({p}) must divide the image size {h}x{w}; valid: {divisors}"
                )
            x = x.reshape(*x.shape[:-3], h // p, p, w // p, p, c).mean(axis=(-4, -2))
        for features, kernel, stride in ((32, 8, 4), (64, 4, 2), (64, 3, 1)):
            conv = nn.Conv(
                features,
                (kernel, kernel),
                (stride, stride),
                "SAME",
                kernel_init=haiku_conv_init,
                dtype=self.dtype,
            )
            x = nn.relu(conv(x))
        return x.reshape(*x.shape[:-3], -1)


def _l2_normalise(x: jax.Array) -> jax.Array:
    # Equal to x / ||x|| for ||x|| >= 1e-6. The floor only keeps an exactly-zero representation
    # (zero input through zero biases at initialisation) from producing NaN.
    return x * jax.lax.rsqrt(jnp.maximum(jnp.sum(x * x, axis=-1, keepdims=True), 1e-12))


def _encoder(critic: Critic | GoalCritic) -> nn.Module:
    """One encoder of ``critic`` (called in its ``setup``): the original's MLP to ``repr_dim``,
    or a residual network (``residual.py``) when the critic has a ``residual`` spec."""
    if critic.residual is not None:
        return ResidualMLP(critic.residual, critic.repr_dim, dtype=critic.dtype)
    sizes = (*critic.hidden, critic.repr_dim)
    return MLP(sizes, glorot_uniform, layer_norm=critic.layer_norm, dtype=critic.dtype)


class Critic(nn.Module):
    """Contrastive critic: ``logits[i, j, k] = phi_k(s_i, a_i) . psi_k(g_j)``, k over twins.

    ``twin`` adds a second, independent pair of encoders. ``repr_norm`` L2-normalises both
    representations and divides phi by ``exp(log_scale)``, one learned scalar (initialised to 0)
    shared by the twins, as the original's top-level ``hk.get_parameter`` is. ``energy`` other
    than ``dot`` scores the pairs by ``energies.pairwise_energy``; ``residual`` builds the
    encoders as residual networks (``residual.py``).
    """

    hidden: tuple[int, ...]
    repr_dim: int
    twin: bool = False
    repr_norm: bool = False
    layer_norm: bool = False
    dtype: jnp.dtype = jnp.float32  # compute dtype of the encoders (bf16 option)
    image_shape: tuple[int, int, int] | None = None  # images: one torso for states and goals
    image_pool: int = 1
    energy: str = "dot"  # energies.py; cosine adds a learned log_temperature
    residual: ResidualSpec | None = None  # residual encoders (residual.py) instead of MLPs

    def setup(self) -> None:
        if self.image_shape is not None:  # the original shares it, also between twins
            self.torso = AtariTorso(self.image_shape, self.image_pool, self.dtype)
        n = 2 if self.twin else 1
        self.sa_encoders = [_encoder(self) for _ in range(n)]
        self.g_encoders = [_encoder(self) for _ in range(n)]
        if self.repr_norm:
            self.log_scale = self.param("log_scale", nn.initializers.zeros, ())
        if self.energy == "cosine":
            self.log_temperature = self.param("log_temperature", nn.initializers.zeros, ())

    def representations(
        self, state: jax.Array, action: jax.Array, goal: jax.Array
    ) -> tuple[jax.Array, jax.Array]:
        """``(phi [B, n, repr_dim], psi [B, n, repr_dim])`` with n = 2 for twins, else 1."""
        if self.image_shape is not None:
            state, goal = self.torso(state), self.torso(goal)
        sa = jnp.concatenate([state, action.astype(state.dtype)], axis=-1)
        # Encoders may compute in bf16; representations, logits and losses are float32.
        phi = jnp.stack([enc(sa) for enc in self.sa_encoders], axis=-2).astype(jnp.float32)
        psi = jnp.stack([enc(goal) for enc in self.g_encoders], axis=-2).astype(jnp.float32)
        if self.repr_norm:
            phi = _l2_normalise(phi) / jnp.exp(self.log_scale)
            psi = _l2_normalise(psi)
        return phi, psi

    def __call__(self, state: jax.Array, action: jax.Array, goal: jax.Array) -> jax.Array:
        """Logits ``[B, B, n]``: row i = (s_i, a_i), column j = goal g_j, k = critic."""
        phi, psi = self.representations(state, action, goal)
        if self.energy != "dot":
            return pairwise_energy(phi, psi, self.energy, self._log_temperature())
        return jnp.einsum("ikd,jkd->ijk", phi, psi)

    def _log_temperature(self) -> jax.Array | None:
        return self.log_temperature if self.energy == "cosine" else None

    def diagonal(self, state: jax.Array, action: jax.Array, goal: jax.Array) -> jax.Array:
        """``[B, n]``: each row's own logit ``f(phi(s_i, a_i), psi(g_i))`` under the energy."""
        phi, psi = self.representations(state, action, goal)
        return diagonal_energy(phi, psi, self.energy, self._log_temperature())


GOAL_CRITIC_TEMPERATURE = 1.0  # the authors' repr_norm_temp (td_infonce/config.py)


class GoalCritic(nn.Module):
    """TD InfoNCE's critic: ``logits[i, j, k] = phi_k(s_i, a_i, g_i) . psi_k(f_j)``.

    phi also sees the commanded goal g, so the logits score futures f of the goal-conditioned
    policy; ``future`` defaults to ``goal`` (the actor's matrix, goal j as row i's candidate).
    ``repr_norm`` L2-normalises both representations at the authors' fixed temperature
    (``GOAL_CRITIC_TEMPERATURE``), not the learned one of ``Critic``.
    """

    hidden: tuple[int, ...]
    repr_dim: int
    twin: bool = False
    repr_norm: bool = False
    layer_norm: bool = False
    dtype: jnp.dtype = jnp.float32
    image_shape: tuple[int, int, int] | None = None
    image_pool: int = 1
    residual: ResidualSpec | None = None  # residual encoders (residual.py) instead of MLPs

    def setup(self) -> None:
        if self.image_shape is not None:
            self.torso = AtariTorso(self.image_shape, self.image_pool, self.dtype)
        n = 2 if self.twin else 1
        self.sag_encoders = [_encoder(self) for _ in range(n)]
        self.f_encoders = [_encoder(self) for _ in range(n)]

    def representations(
        self, state: jax.Array, action: jax.Array, goal: jax.Array, future: jax.Array | None = None
    ) -> tuple[jax.Array, jax.Array]:
        """``(phi [B, n, repr_dim], psi [F, n, repr_dim])``; F rows of ``future`` (or ``goal``)."""
        same = future is None
        future = goal if same else future
        if self.image_shape is not None:
            state, goal = self.torso(state), self.torso(goal)
            future = goal if same else self.torso(future)
        sag = jnp.concatenate([state, action.astype(state.dtype), goal], axis=-1)
        phi = jnp.stack([enc(sag) for enc in self.sag_encoders], axis=-2).astype(jnp.float32)
        psi = jnp.stack([enc(future) for enc in self.f_encoders], axis=-2).astype(jnp.float32)
        if self.repr_norm:
            phi = _l2_normalise(phi) / GOAL_CRITIC_TEMPERATURE
            psi = _l2_normalise(psi)
        return phi, psi

    def __call__(
        self, state: jax.Array, action: jax.Array, goal: jax.Array, future: jax.Array | None = None
    ) -> jax.Array:
        """Logits ``[B, F, n]``: row i = (s_i, a_i, g_i), column j = future f_j, k = critic."""
        phi, psi = self.representations(state, action, goal, future)
        return jnp.einsum("ikd,jkd->ijk", phi, psi)


class Actor(nn.Module):
    """Tanh-Gaussian policy parameters ``(loc, scale)`` for the observation ``[state ; goal]``."""

    hidden: tuple[int, ...]
    action_dim: int
    dtype: jnp.dtype = jnp.float32  # compute dtype of the torso (bf16 option)
    image_shape: tuple[int, int, int] | None = None  # images: own conv torso on state ++ goal
    image_pool: int = 1
    residual: ResidualSpec | None = None  # a residual torso (residual.py) instead of the MLP

    @nn.compact
    def __call__(self, state: jax.Array, goal: jax.Array) -> tuple[jax.Array, jax.Array]:
        if self.image_shape is None:
            x = jnp.concatenate([state, goal], axis=-1)
        else:  # the two images stacked along channels: H x W x 2C
            h, w, c = self.image_shape
            stack = jnp.concatenate(
                [
                    state.reshape(*state.shape[:-1], h, w, c),
                    goal.reshape(*goal.shape[:-1], h, w, c),
                ],
                axis=-1,
            )
            stack = stack.reshape(*stack.shape[:-3], -1)
            x = AtariTorso((h, w, 2 * c), self.image_pool, self.dtype, name="image_torso")(stack)
        if self.residual is not None:
            torso = ResidualMLP(self.residual, dtype=self.dtype, name="torso")
        else:
            torso = MLP(tuple(self.hidden), lecun_uniform, True, dtype=self.dtype, name="torso")
        x = torso(x).astype(jnp.float32)  # the distribution's head stays float32
        zeros = nn.initializers.zeros
        loc = nn.Dense(self.action_dim, kernel_init=lecun_uniform, bias_init=zeros, name="loc")(x)
        pre_scale = nn.Dense(
            self.action_dim, kernel_init=lecun_uniform, bias_init=zeros, name="scale"
        )(x)
        return loc, jax.nn.softplus(pre_scale) + MIN_SCALE


# -- the tanh-Gaussian distribution (acme NormalTanhDistribution), per dimension, summed ---------


def sample_action(loc: jax.Array, scale: jax.Array, key: jax.Array) -> jax.Array:
    """Reparameterised sample ``tanh(loc + scale * eps)``, eps ~ N(0, I); shape of ``loc``."""
    eps = jax.random.normal(key, loc.shape, loc.dtype)
    return jnp.tanh(loc + scale * eps)


def mode(loc: jax.Array) -> jax.Array:
    """The deterministic action used for evaluation, ``tanh(loc)``."""
    return jnp.tanh(loc)


def _normal_log_pdf(x: jax.Array, loc: jax.Array, scale: jax.Array) -> jax.Array:
    z = (x - loc) / scale
    return -0.5 * z * z - jnp.log(scale) - _HALF_LOG_2PI


def _tanh_log_det_jacobian(u: jax.Array) -> jax.Array:
    # log(1 - tanh(u)^2) in the stable form TFP's Tanh bijector uses.
    return 2.0 * (math.log(2.0) - u - jax.nn.softplus(-2.0 * u))


def log_prob(loc: jax.Array, scale: jax.Array, action: jax.Array) -> jax.Array:
    """Log density of ``action`` [..., A], summed over the last axis -> [...].

    As acme's ``TanhTransformedDistribution``: the action is clipped to +-0.999; inside, the
    change of variables ``N(atanh(a)) - log|d tanh/du|``; at the clip bounds the mass of the
    Gaussian tail beyond ``atanh(0.999)`` spread over the last 0.001 of the interval, so data
    actions at exactly +-1 get a finite, differentiable log-probability.
    """
    a = jnp.clip(action, -THRESHOLD, THRESHOLD)
    u = jnp.arctanh(a)
    inside = _normal_log_pdf(u, loc, scale) - _tanh_log_det_jacobian(u)
    edge = jnp.arctanh(jnp.asarray(THRESHOLD, loc.dtype))
    log_epsilon = math.log(1.0 - THRESHOLD)
    left = log_ndtr((-edge - loc) / scale) - log_epsilon  # log P(u <= -edge)
    right = log_ndtr(-(edge - loc) / scale) - log_epsilon  # log P(u >= edge)
    per_dim = jnp.where(a <= -THRESHOLD, left, jnp.where(a >= THRESHOLD, right, inside))
    return jnp.sum(per_dim, axis=-1)


# -- construction --------------------------------------------------------------------------------


@dataclass(frozen=True)
class Networks:
    """The critic and actor modules of one run, with the environment spec they were built for."""

    critic: Critic | GoalCritic  # GoalCritic for algorithms whose critic sees the goal
    actor: Actor
    spec: EnvSpec
    input_norm: bool = False  # standardise states and goals by the spec's known extent

    def _inputs(self, state: jax.Array, goal: jax.Array) -> tuple[jax.Array, jax.Array]:
        # Raw maze coordinates span [0, 11] or more; with zero biases every first-layer ReLU
        # boundary starts through the origin, a corner of the maze. Centred, unit-variance inputs
        # spread them over the maze (docs/results.md, "Quick check").
        spec = self.spec
        if not self.input_norm or spec.input_shift is None:
            return state, goal
        shift = jnp.asarray(spec.input_shift, jnp.float32)
        scale = jnp.asarray(spec.input_scale, jnp.float32)
        g = slice(spec.goal_start, spec.goal_end)
        return (state - shift) / scale, (goal - shift[g]) / scale[g]

    def critic_logits(
        self, params: dict, state: jax.Array, action: jax.Array, goal: jax.Array
    ) -> jax.Array:
        """``[B, B, n]`` logits of the critic with ``params``."""
        state, goal = self._inputs(state, goal)
        return self.critic.apply(params, state, action, goal)

    def critic_diagonal(
        self, params: dict, state: jax.Array, action: jax.Array, goal: jax.Array
    ) -> jax.Array:
        """``[B, n]``: each row's own logit ``phi(s_i, a_i) . psi(g_i)`` (or the critic's other
        energy, ``energies.py``), no B x B matrix."""
        if self.critic.energy != "dot":
            state, goal = self._inputs(state, goal)
            return self.critic.apply(params, state, action, goal, method=Critic.diagonal)
        phi, psi = self.critic_representations(params, state, action, goal)
        return jnp.sum(phi * psi, axis=-1)

    def critic_representations(
        self, params: dict, state: jax.Array, action: jax.Array, goal: jax.Array
    ) -> tuple[jax.Array, jax.Array]:
        """``(phi, psi)``, each ``[B, n, repr_dim]``, for diagnostics."""
        state, goal = self._inputs(state, goal)
        return self.critic.apply(
            params, state, action, goal, method=type(self.critic).representations
        )

    def goal_critic_logits(
        self, params: dict, state: jax.Array, action: jax.Array, goal: jax.Array, future: jax.Array
    ) -> jax.Array:
        """``[B, F, n]`` logits ``phi(s_i, a_i, g_i) . psi(f_j)`` of a ``GoalCritic``."""
        _, future = self._inputs(state, future)
        state, goal = self._inputs(state, goal)
        return self.critic.apply(params, state, action, goal, future)

    def policy(
        self, params: dict, state: jax.Array, goal: jax.Array
    ) -> tuple[jax.Array, jax.Array]:
        """``(loc, scale)``, each ``[B, action_dim]``."""
        state, goal = self._inputs(state, goal)
        return self.actor.apply(params, state, goal)


def make_networks(spec: EnvSpec, config: Config) -> Networks:
    """The original's networks for ``spec`` with the sizes and options of ``config``.

    Image environments (``spec.image_shape``) get the original's conv torsos: one shared by the
    critic's state and goal encoders, one of the actor's own on the stacked images.
    """
    hidden = tuple(config.hidden_layer_sizes)
    dtype = COMPUTE_DTYPES[config.precision]
    image = {"image_shape": spec.image_shape, "image_pool": config.image_pool}
    if spec.image_shape is not None:  # refused here, before a run directory is written
        h, w, _ = spec.image_shape
        if h % config.image_pool or w % config.image_pool:
            divisors = [d for d in range(1, min(h, w) + 1) if h % d == 0 and w % d == 0]
            raise ConfigError(
                f"image_pool ({config.image_pool}) must divide the image size {h}x{w} of "
                f"{spec.name}; valid: {', '.join(map(str, divisors))}"
            )
    residual = (
        ResidualSpec(config.residual_depth, config.residual_width)
        if config.network == "residual"
        else None
    )
    common = {
        "hidden": hidden,
        "repr_dim": config.repr_dim,
        "twin": config.twin_q,
        "repr_norm": config.repr_norm,
        "layer_norm": config.layer_norm,
        "dtype": dtype,
        "residual": residual,
        **image,
    }
    if ALGORITHMS[config.alg].critic_sees_goal:  # the dot energy (validation refuses others)
        critic: Critic | GoalCritic = GoalCritic(**common)
    else:
        critic = Critic(**common, energy=config.energy)
    actor = Actor(
        hidden=hidden, action_dim=spec.action_dim, dtype=dtype, residual=residual, **image
    )
    return Networks(critic=critic, actor=actor, spec=spec, input_norm=config.input_norm)


def init_params(nets: Networks, key: jax.Array) -> tuple[dict, dict]:
    """``(actor_params, critic_params)``: flax variable dicts, built from zero dummy inputs."""
    actor_key, critic_key = jax.random.split(key)
    spec = nets.spec
    state = jnp.zeros((1, spec.state_dim), spec.obs_dtype)
    action = jnp.zeros((1, spec.action_dim))
    goal = jnp.zeros((1, spec.goal_dim), spec.obs_dtype)
    # Jitted: eager initialisation of the conv torsos compiles op by op (tens of seconds on a CPU).
    actor_params = jax.jit(nets.actor.init)(actor_key, state, goal)
    critic_params = jax.jit(nets.critic.init)(critic_key, state, action, goal)
    return actor_params, critic_params
