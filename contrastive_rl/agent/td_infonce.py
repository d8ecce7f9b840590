"""TD InfoNCE (Zheng, Salakhutdinov and Eysenbach, ICLR 2024): the critic and actor losses.

The critic scores ``f(s, a, g, s_f) = phi(s, a, g) . psi(s_f)``: phi sees the commanded goal g,
so ``softmax`` over candidate future states ``s_f`` estimates the discounted occupancy of the
goal-conditioned policy ``pi(. | ., g)``. Instead of sampling ``s_f`` from the episode's future
(Monte Carlo), the loss bootstraps it, as a TD target, from the next state:

- term 1, per row i: cross-entropy of ``[f(s_i, a_i, g_i, s'_j)]_j`` against j = i (the other
  rows' next states are the negatives);
- term 2: with ``a'_i ~ pi(. | s'_i, g_i)``, the weights ``w_ij = softmax_j min_k
  f_target,k(s'_i, a'_i, g_i, c_j)`` (gradients stopped) over the candidates c_j, and the loss
  ``-sum_j w_ij log softmax_j f(s_i, a_i, g_i, c_j)``;
- critic loss ``(1 - gamma) term 1 + gamma term 2``, averaged over rows and critics.

At its fixed point ``softmax_j f(s, a, g, c_j)`` over candidates drawn from a marginal p is
``M(c | s, a) / p(c)`` renormalised, where ``M = (1 - gamma) sum_k gamma^k P^(k+1)`` is the
occupancy counted from the next state on (tests/test_td_infonce.py checks it on a tabular chain).

The actor maximises, per row, the log-softmax of its own goal among the batch's goals:
``log softmax_j min_k f_k(s_i, a_i, g_i, g_j)`` at ``a_i ~ pi(. | s_i, g_i)`` (the authors' code;
an entropy term ``alpha log pi`` when alpha > 0, and a behaviour-cloning MSE offline).
docs/algorithms.md gives the defaults and where the authors' code and the summary differ.
"""

from __future__ import annotations

from collections.abc import Callable

import jax
import jax.numpy as jnp

from contrastive_rl.agent.batch_goals import mix_goals, ranking_metrics
from contrastive_rl.agent.networks import Networks, log_prob, sample_action
from contrastive_rl.config import Config
from contrastive_rl.envs.spec import EnvSpec
from contrastive_rl.types import Batch

Metrics = dict[str, jax.Array]


# -- the loss on given logits ---------------------------------------------------------------------


def _check(name: str, logits: jax.Array) -> None:
    if logits.ndim != 3:
        raise ValueError(f"expected {name} of shape [B, C, n], got {logits.shape}")


def td_infonce_weights(target_logits: jax.Array) -> jax.Array:
    """``w [B, C] = softmax_j min_k target_logits[i, j, k]``, gradients stopped: the TD target,
    the target critic's distribution of row i's future over the C candidates."""
    _check("target_logits", target_logits)
    return jax.lax.stop_gradient(jax.nn.softmax(jnp.min(target_logits, axis=-1), axis=1))


def td_infonce_loss(
    next_logits: jax.Array,
    future_logits: jax.Array,
    target_logits: jax.Array,
    discount: float,
) -> tuple[jax.Array, Metrics]:
    """``(1 - gamma) term1 + gamma term2``, averaged over rows and critics, and its parts.

    Args:
        next_logits: ``[B, B, n]``, ``f(s_i, a_i, g_i, s'_j)``; the diagonal holds the positives.
        future_logits: ``[B, C, n]``, ``f(s_i, a_i, g_i, c_j)`` over C candidates.
        target_logits: ``[B, C, m]``, the target critic's ``f(s'_i, a'_i, g_i, c_j)``; the
            minimum over its m critics gives the weights (``td_infonce_weights``).
        discount: gamma in [0, 1).
    """
    _check("next_logits", next_logits)
    _check("future_logits", future_logits)
    b = next_logits.shape[0]
    if next_logits.shape[1] != b:
        raise ValueError(f"next_logits must be [B, B, n], got {next_logits.shape}")
    if future_logits.shape[:2] != target_logits.shape[:2] or future_logits.shape[0] != b:
        raise ValueError(
            f"future_logits {future_logits.shape} and target_logits {target_logits.shape} must "
            f"share [B, C] with B = {b}"
        )
    positives = jnp.diagonal(next_logits, axis1=0, axis2=1).T  # [B, n]
    term1 = jax.nn.logsumexp(next_logits, axis=1) - positives  # [B, n]
    w = td_infonce_weights(target_logits)  # [B, C]
    log_q = jax.nn.log_softmax(future_logits, axis=1)  # [B, C, n]
    term2 = -jnp.sum(w[:, :, None] * log_q, axis=1)  # [B, n]
    loss = jnp.mean((1.0 - discount) * term1 + discount * term2)
    metrics = {
        "loss_next": jnp.mean(term1),
        "loss_future": jnp.mean(term2),
        **ranking_metrics(next_logits),
        "w_entropy": -jnp.mean(jnp.sum(w * jnp.log(jnp.maximum(w, 1e-30)), axis=1)),
    }
    return loss, metrics


# -- goals ---------------------------------------------------------------------------------------


def random_goals(spec: EnvSpec, batch: Batch) -> jax.Array:
    """Row i's commanded goal in the critic: the goal of row i-1's state (the authors' "random
    goal", a state of the batch; rows are independent draws, so it is independent of row i)."""
    return spec.obs_to_goal(jnp.roll(batch.state, 1, axis=0))


# -- loss factories for the learner ---------------------------------------------------------------


def make_td_infonce_critic_loss(
    nets: Networks, config: Config
) -> Callable[[dict, dict, dict, Batch, jax.Array], tuple[jax.Array, Metrics]]:
    """``fn(critic_params, target_critic_params, actor_params, batch, key) -> (loss, metrics)``.

    Candidates c_j are the batch's commanded (random) goals, as in the authors' code; the
    gradient reaches only ``critic_params`` (the learner differentiates the first argument; the
    target critic and the next action enter as constants).
    """
    discount = config.discount
    spec = nets.spec

    def loss_fn(critic_params, target_critic_params, actor_params, batch, key):
        b = batch.state.shape[0]
        goal = random_goals(spec, batch)
        next_goal = spec.obs_to_goal(batch.next_state)
        # One call scores both candidate sets: next states (term 1) and goals (term 2).
        logits = nets.goal_critic_logits(
            critic_params,
            batch.state,
            batch.action,
            goal,
            jnp.concatenate([next_goal, goal], axis=0),
        )
        next_logits, future_logits = logits[:, :b], logits[:, b:]
        loc, scale = nets.policy(actor_params, batch.next_state, goal)
        next_action = jax.lax.stop_gradient(sample_action(loc, scale, key))
        target_logits = nets.goal_critic_logits(
            target_critic_params, batch.next_state, next_action, goal, goal
        )
        loss, metrics = td_infonce_loss(next_logits, future_logits, target_logits, discount)
        return loss, {"critic_loss": loss, **metrics}

    return loss_fn


def make_td_infonce_actor_loss(
    nets: Networks, config: Config
) -> Callable[[dict, dict, Batch, jax.Array, jax.Array], tuple[jax.Array, Metrics]]:
    """``fn(actor_params, critic_params, batch, key, alpha) -> (loss, metrics)``.

    Per row: ``alpha log pi(a|s,g) - log softmax_j min_k f_k(s, a, g, g_j)``; with ``bc_coef``
    > 0 mixed as ``bc_coef * ||a - a_data||^2 / A + (1 - bc_coef) * that`` (the authors' MSE
    on the sampled action, where the other algorithms clone with the log-likelihood).
    """
    bc_coef = config.bc_coef
    share = config.random_goals
    spec = nets.spec

    def loss_fn(actor_params, critic_params, batch, key, alpha):
        state, goal, data_action = mix_goals(batch, share, random_goals(spec, batch))
        loc, scale = nets.policy(actor_params, state, goal)
        action = sample_action(loc, scale, key)
        logp = log_prob(loc, scale, action)
        logits = jnp.min(nets.goal_critic_logits(critic_params, state, action, goal, goal), -1)
        own = jnp.diagonal(logits)
        log_softmax_own = own - jax.nn.logsumexp(logits, axis=1)  # [B]
        per_row = alpha * logp - log_softmax_own
        metrics = {
            "entropy": -jnp.mean(logp),
            "actor_q": jnp.mean(own),
            "actor_log_softmax": jnp.mean(log_softmax_own),
        }
        if bc_coef > 0:
            bc = jnp.mean((action - data_action) ** 2, axis=-1)
            per_row = bc_coef * bc + (1.0 - bc_coef) * per_row
            metrics["bc_loss"] = jnp.mean(bc)
        loss = jnp.mean(per_row)
        return loss, {"actor_loss": loss, **metrics}

    return loss_fn
