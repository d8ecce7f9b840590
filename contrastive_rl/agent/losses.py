"""Each algorithm's losses: the original's critic, actor and entropy losses (spec section 5),
and the factories the learner calls (``make_critic_loss``, ``make_actor_loss``).

Every critic loss here works on the ``[B, B, n]`` logit matrix of ``Critic``: entry (i, j) scores
row i's state-action against row j's goal, so the diagonal holds the positives and the other
entries the negatives. The original's five algorithms differ only in the critic loss (GCBC has
none) and in the actor loss (GCBC clones the data actions); ``ALGORITHMS`` describes each. A
contrastive loss other than the algorithm's own comes from ``energies.py``; TD InfoNCE's losses
from ``td_infonce.py``.
"""

from __future__ import annotations

from collections.abc import Callable

import jax
import jax.numpy as jnp
import optax

from contrastive_rl.agent.algorithms import ALGORITHMS, Algorithm
from contrastive_rl.agent.batch_goals import mix_goals, ranking_metrics
from contrastive_rl.agent.energies import (
    binary_nce,
    check_logits,
    contrastive_loss,
    forward_infonce,
)
from contrastive_rl.agent.networks import Networks, log_prob, sample_action
from contrastive_rl.agent.td_infonce import make_td_infonce_actor_loss, make_td_infonce_critic_loss
from contrastive_rl.config import Config, contrastive_loss_choice
from contrastive_rl.presets import CONTRASTIVE_LOSS_DEFAULTS
from contrastive_rl.types import Batch

Metrics = dict[str, jax.Array]
CriticLoss = Callable[[dict, dict, dict, Batch, jax.Array], tuple[jax.Array, Metrics]]
ActorLoss = Callable[[dict, dict, Batch, jax.Array, jax.Array], tuple[jax.Array, Metrics]]
AlphaLoss = Callable[[jax.Array, dict, Batch, jax.Array], tuple[jax.Array, Metrics]]

TD_WEIGHT_CLIP = 20.0  # the original's clip of the C-learning importance weight
CPC_LOGSUMEXP_COEF = 0.01  # the original's logsumexp^2 regulariser of the CPC loss


# -- critic losses on logits [B, B, n] ------------------------------------------------------------


def nce_loss(logits: jax.Array) -> jax.Array:
    """Binary NCE: sigmoid cross-entropy of every (row, goal) pair against the identity.

    A plain mean over all B^2 entries (positives are not up-weighted) and over the n critics:
    ``energies.binary_nce`` without a penalty.
    """
    return binary_nce(logits)


def cpc_loss(logits: jax.Array) -> jax.Array:
    """InfoNCE: per row, softmax cross-entropy to its own goal + 0.01 * logsumexp_row^2.

    The regulariser pins the row normaliser near zero, so logits stay interpretable as log ratios:
    ``energies.forward_infonce`` with the original's penalty.
    """
    return forward_infonce(logits, CPC_LOGSUMEXP_COEF)


def td_weight(next_prob: jax.Array) -> jax.Array:
    """C-learning importance weight ``clip(c / (1 - c), 0, 20)`` of the target classifier c."""
    return jnp.clip(next_prob / (1.0 - next_prob), 0.0, TD_WEIGHT_CLIP)


def num_next_state_rows(batch_size: int, discount: float) -> int:
    """Rows of an nce+c_learning batch whose goal is the next state: int(B (1-g) / (2-g))."""
    next_fraction = (1.0 - discount) / ((1.0 - discount) + 1.0)
    return int(batch_size * next_fraction)


def _td_loss(
    logits: jax.Array, w: jax.Array, pos_coef: float, neg1_coef: float, neg0_coef: float
) -> jax.Array:
    """``mean[pos_coef BCE(pos,1) + neg1_coef w BCE(neg,1) + neg0_coef BCE(neg,0)]`` over B x n.

    ``pos = logits[i, i]``, ``neg = logits[i, i+1 mod B]``: the goal the target critic scored.
    """
    check_logits(logits)
    b = logits.shape[0]
    pos = jnp.diagonal(logits, axis1=0, axis2=1).T  # [B, n]
    neg = logits[jnp.arange(b), jnp.roll(jnp.arange(b), -1)]  # [B, n]
    bce = optax.sigmoid_binary_cross_entropy
    loss_pos = bce(pos, jnp.ones_like(pos))
    loss_neg1 = w[:, None] * bce(neg, jnp.ones_like(neg))
    loss_neg0 = bce(neg, jnp.zeros_like(neg))
    return jnp.mean(pos_coef * loss_pos + neg1_coef * loss_neg1 + neg0_coef * loss_neg0)


def c_learning_loss(logits: jax.Array, w: jax.Array, discount: float) -> jax.Array:
    """C-learning: ``(1-g) BCE(pos,1) + g w BCE(neg,1) + BCE(neg,0)``; w from ``td_weight``."""
    return _td_loss(logits, w, 1.0 - discount, discount, 1.0)


def nce_c_learning_loss(logits: jax.Array, w: jax.Array, discount: float) -> jax.Array:
    """nce+c_learning: ``(1+(1-g)) BCE(pos,1) + g w BCE(neg,1) + 2 BCE(neg,0)``."""
    return _td_loss(logits, w, 1.0 + (1.0 - discount), discount, 2.0)


def critic_metrics(logits: jax.Array) -> Metrics:
    """The original's diagnostics, on twin-averaged logits ``[B, B]`` (or ``[B, B, n]``)."""
    if logits.ndim == 3:
        logits = jnp.mean(logits, axis=-1)
    eye = jnp.eye(logits.shape[0])
    return {
        "binary_accuracy": jnp.mean((logits > 0) == (eye > 0)),
        **ranking_metrics(logits),
        "logsumexp": jnp.mean(jax.nn.logsumexp(logits, axis=1) ** 2),
    }


# -- loss factories -------------------------------------------------------------------------------


def _contrastive_critic_loss(nets: Networks, loss_on_logits: Callable) -> CriticLoss:
    def loss_fn(critic_params, target_critic_params, actor_params, batch, key):
        del target_critic_params, actor_params, key  # Monte Carlo: relabelled goals only
        logits = nets.critic_logits(critic_params, batch.state, batch.action, batch.goal)
        loss = loss_on_logits(logits)
        return loss, {"critic_loss": loss, **critic_metrics(logits)}

    return loss_fn


def _td_critic_loss(nets: Networks, config: Config, mix_in_nce: bool) -> CriticLoss:
    discount = config.discount
    loss_on_logits = nce_c_learning_loss if mix_in_nce else c_learning_loss

    def loss_fn(critic_params, target_critic_params, actor_params, batch, key):
        next_goal = nets.spec.obs_to_goal(batch.next_state)
        if mix_in_nce:  # the first few rows take next-state goals, the rest keep future goals
            n = num_next_state_rows(batch.state.shape[0], discount)
            goal = jnp.concatenate([next_goal[:n], batch.goal[n:]], axis=0)
        else:
            goal = next_goal
        logits = nets.critic_logits(critic_params, batch.state, batch.action, goal)

        # Row i's negative is goal i+1; bootstrap it from the target critic at (s'_i, a'_i).
        random_goal = jnp.roll(goal, -1, axis=0)
        loc, scale = nets.policy(actor_params, batch.next_state, random_goal)
        next_action = sample_action(loc, scale, key)
        # Only the diagonal (s'_i, a'_i, g_{i+1}) has a meaning; no gradient into the actor.
        next_logits = nets.critic_diagonal(
            target_critic_params, batch.next_state, next_action, random_goal
        )
        next_prob = jnp.min(jax.nn.sigmoid(next_logits), axis=-1)  # twin-min, [B]
        w = jax.lax.stop_gradient(td_weight(next_prob))

        loss = loss_on_logits(logits, w, discount)
        return loss, {"critic_loss": loss, "td_weight": jnp.mean(w), **critic_metrics(logits)}

    return loss_fn


def contrastive_loss_on_logits(alg: str, config: Config) -> Callable[[jax.Array], jax.Array]:
    """The critic loss of a contrastive algorithm on its logits: the member of
    ``energies.CONTRASTIVE_LOSS_FNS`` that ``config`` chooses, with its penalty. Left at the
    algorithm's own, that is ``nce_loss`` or ``cpc_loss`` (the same function, the same graph)."""
    name, penalty = contrastive_loss_choice(config, alg)
    return contrastive_loss(name, penalty)


def make_critic_loss(alg: str, nets: Networks, config: Config) -> CriticLoss:
    """``fn(critic_params, target_critic_params, actor_params, batch, key) -> (loss, metrics)``.

    Raises:
        ValueError: for ``gcbc`` (it trains no critic) or an unknown algorithm.
    """
    _algorithm(alg)
    if alg in CONTRASTIVE_LOSS_DEFAULTS:
        return _contrastive_critic_loss(nets, contrastive_loss_on_logits(alg, config))
    if alg == "c_learning":
        return _td_critic_loss(nets, config, mix_in_nce=False)
    if alg == "nce+c_learning":
        return _td_critic_loss(nets, config, mix_in_nce=True)
    if alg == "td_infonce":
        return make_td_infonce_critic_loss(nets, config)
    raise ValueError(f"algorithm {alg!r} trains no critic, so it has no critic loss")


def _critic_actor_loss(nets: Networks, config: Config) -> ActorLoss:
    bc_coef = config.bc_coef
    random_goals = config.random_goals

    def loss_fn(actor_params, critic_params, batch, key, alpha):
        # Row i's other goal is row i-1's, a future state of another episode.
        other = jnp.roll(batch.goal, 1, axis=0)
        state, goal, data_action = mix_goals(batch, random_goals, other)
        loc, scale = nets.policy(actor_params, state, goal)
        action = sample_action(loc, scale, key)
        logp = log_prob(loc, scale, action)
        # The raw logit of each row's own (s, a, g), min over twins first.
        q = jnp.min(nets.critic_diagonal(critic_params, state, action, goal), axis=-1)
        per_row = alpha * logp - q
        metrics = {"entropy": -jnp.mean(logp), "actor_q": jnp.mean(q)}
        if bc_coef > 0:
            bc = -log_prob(loc, scale, data_action)
            per_row = bc_coef * bc + (1.0 - bc_coef) * per_row
            metrics["bc_loss"] = jnp.mean(bc)
        loss = jnp.mean(per_row)
        return loss, {"actor_loss": loss, **metrics}

    return loss_fn


def _gcbc_actor_loss(nets: Networks) -> ActorLoss:
    def loss_fn(actor_params, critic_params, batch, key, alpha):
        del critic_params, alpha
        loc, scale = nets.policy(actor_params, batch.state, batch.goal)
        loss = -jnp.mean(log_prob(loc, scale, batch.action))
        sampled = jax.lax.stop_gradient(sample_action(loc, scale, key))
        entropy = -jnp.mean(log_prob(loc, scale, sampled))  # a diagnostic only
        return loss, {"actor_loss": loss, "entropy": jax.lax.stop_gradient(entropy)}

    return loss_fn


def make_actor_loss(alg: str, nets: Networks, config: Config) -> ActorLoss:
    """``fn(actor_params, critic_params, batch, key, alpha) -> (loss, metrics)``.

    Critic-based algorithms maximise the critic's logit (SAC-style, optional entropy and BC
    terms); ``gcbc`` maximises the likelihood of the data actions.
    """
    if alg == "td_infonce":  # log-softmax of its own goal among the batch's (td_infonce.py)
        return make_td_infonce_actor_loss(nets, config)
    if _algorithm(alg).trains_critic:
        return _critic_actor_loss(nets, config)
    return _gcbc_actor_loss(nets)


def make_alpha_loss(nets: Networks, config: Config) -> AlphaLoss:
    """``fn(log_alpha, actor_params, batch, key) -> (loss, metrics)`` for a learned alpha.

    The gradient pushes alpha up when the policy's entropy is below ``target_entropy``; the
    sample is fresh and on the relabelled (un-mixed) batch, as in the original.
    """
    target_entropy = config.target_entropy

    def loss_fn(log_alpha, actor_params, batch, key):
        loc, scale = nets.policy(actor_params, batch.state, batch.goal)
        logp = log_prob(loc, scale, sample_action(loc, scale, key))
        loss = jnp.mean(jnp.exp(log_alpha) * jax.lax.stop_gradient(-logp - target_entropy))
        return loss, {"alpha_loss": loss}

    return loss_fn


def _algorithm(alg: str) -> Algorithm:
    if alg not in ALGORITHMS:
        raise ValueError(f"unknown algorithm {alg!r}; valid choices: {', '.join(ALGORITHMS)}")
    return ALGORITHMS[alg]
