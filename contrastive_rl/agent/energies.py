"""Critic energies and the contrastive loss family (issue 26, docs/algorithms.md).

An energy turns the representations ``phi [B, n, d]`` (of each row's state-action) and
``psi [B, n, d]`` (of each row's goal) into logits ``L[i, j, k] = f(phi_ik, psi_jk)``, k over
twin critics:

- ``dot``: ``<phi, psi>``, the original's.
- ``l2``: ``-||phi - psi||^2``.
- ``norm``: ``-||phi - psi||`` (its gradient at phi = psi is taken as 0, not NaN).
- ``cosine``: ``<phi / ||phi||, psi / ||psi||> / exp(log_temperature)``, every representation
  normalised by its own norm (per sample: one row's logits do not depend on another row's
  scale), ``log_temperature`` a learned scalar of the critic.

A contrastive loss reads the ``[B, B, n]`` logits, positives on the diagonal; every one takes a
coefficient ``c`` of a logsumexp penalty ``c * mean(lse^2)`` that pins the normaliser near 0:

- ``binary_nce``: the sigmoid cross-entropy of every entry against the identity,
  ``mean_ijk[-y_ij log s(L_ijk) - (1 - y_ij) log(1 - s(L_ijk))]``, y = I, penalty on the row
  logsumexp ``lse_i = log sum_j exp L_ij``.
- ``forward_infonce``: per row, the cross-entropy of the softmax over goals against its own,
  ``mean_ik[lse_ik - L_iik + c lse_ik^2]`` with ``lse_ik = log sum_j exp L_ijk``.
- ``backward_infonce``: per goal, the softmax over rows, i.e. ``forward_infonce(L^T)``.
- ``symmetric_infonce``: ``forward_infonce(L) + backward_infonce(L)``.

Two defects of JaxGCRL's versions are absent by construction and tested: its binary NCE,
``-mean(sigmoid(L))``, has no labels, so nothing pushes the negatives down; its cosine normalises
by the norm of the whole batch tensor instead of each sample's.
"""

from __future__ import annotations

from collections.abc import Callable

import jax
import jax.numpy as jnp
import optax

from contrastive_rl.config import CONTRASTIVE_LOSSES, ENERGIES


def _check_energy(energy: str) -> None:
    if energy not in ENERGIES:
        raise ValueError(f"unknown energy {energy!r}; valid choices: {', '.join(ENERGIES)}")


def _unit(x: jax.Array) -> jax.Array:
    # x / ||x|| over the representation axis of each sample; the floor keeps an exactly-zero
    # representation (zero input through zero biases at initialisation) from producing NaN.
    return x * jax.lax.rsqrt(jnp.maximum(jnp.sum(x * x, axis=-1, keepdims=True), 1e-12))


def _safe_sqrt(sq: jax.Array) -> jax.Array:
    # sqrt with a zero (not infinite) gradient at 0: where phi = psi exactly.
    positive = sq > 0
    return jnp.where(positive, jnp.sqrt(jnp.where(positive, sq, 1.0)), 0.0)


def _from_squared_distance(sq: jax.Array, energy: str) -> jax.Array:
    return -sq if energy == "l2" else -_safe_sqrt(sq)


def pairwise_energy(
    phi: jax.Array, psi: jax.Array, energy: str = "dot", log_temperature: jax.Array | None = None
) -> jax.Array:
    """Logits ``[B, B, n]``: ``f(phi_i, psi_j)`` for every row i and goal j (module docstring).

    ``log_temperature`` is required by (and only read for) the ``cosine`` energy.
    """
    _check_energy(energy)
    if energy == "dot":
        return jnp.einsum("ikd,jkd->ijk", phi, psi)
    if energy == "cosine":
        if log_temperature is None:
            raise ValueError("the cosine energy needs the critic's log_temperature")
        return jnp.einsum("ikd,jkd->ijk", _unit(phi), _unit(psi)) / jnp.exp(log_temperature)
    diff = phi[:, None, :, :] - psi[None, :, :, :]  # [B, B, n, d]: exact, no expansion
    return _from_squared_distance(jnp.sum(diff * diff, axis=-1), energy)


def diagonal_energy(
    phi: jax.Array, psi: jax.Array, energy: str = "dot", log_temperature: jax.Array | None = None
) -> jax.Array:
    """``[B, n]``: each row's own ``f(phi_i, psi_i)``, the diagonal of ``pairwise_energy``
    without the B x B matrix."""
    _check_energy(energy)
    if energy == "dot":
        return jnp.sum(phi * psi, axis=-1)
    if energy == "cosine":
        if log_temperature is None:
            raise ValueError("the cosine energy needs the critic's log_temperature")
        return jnp.sum(_unit(phi) * _unit(psi), axis=-1) / jnp.exp(log_temperature)
    diff = phi - psi
    return _from_squared_distance(jnp.sum(diff * diff, axis=-1), energy)


# -- contrastive losses on logits [B, B, n] -------------------------------------------------------


def check_logits(logits: jax.Array) -> None:
    """Raises ``ValueError`` unless ``logits`` is ``[B, B, n]`` (rows by goals by critics)."""
    if logits.ndim != 3 or logits.shape[0] != logits.shape[1]:
        raise ValueError(f"expected logits of shape [B, B, n], got {logits.shape}")


def binary_nce(logits: jax.Array, logsumexp_penalty: float = 0.0) -> jax.Array:
    """Sigmoid cross-entropy of every (row, goal) entry against the identity: the diagonal is
    pushed up, every off-diagonal entry down; mean over all B^2 n entries, plus
    ``c * mean(lse_row^2)``."""
    check_logits(logits)
    labels = jnp.eye(logits.shape[0])[:, :, None]
    loss = jnp.mean(
        optax.sigmoid_binary_cross_entropy(logits, jnp.broadcast_to(labels, logits.shape))
    )
    if logsumexp_penalty:
        loss = loss + logsumexp_penalty * jnp.mean(jax.nn.logsumexp(logits, axis=1) ** 2)
    return loss


def forward_infonce(logits: jax.Array, logsumexp_penalty: float = 0.0) -> jax.Array:
    """Per row i (and critic k): softmax over the goals j, cross-entropy against j = i, plus
    ``c * lse_i^2``; mean over rows and critics."""
    check_logits(logits)
    lse = jax.nn.logsumexp(logits, axis=1)  # [B, n]
    positives = jnp.diagonal(logits, axis1=0, axis2=1).T  # [B, n]
    if logsumexp_penalty:
        return jnp.mean(lse - positives + logsumexp_penalty * lse**2)
    return jnp.mean(lse - positives)


def backward_infonce(logits: jax.Array, logsumexp_penalty: float = 0.0) -> jax.Array:
    """Per goal j: softmax over the rows i, cross-entropy against i = j: the forward loss of
    the transposed logits (penalty on the column logsumexp)."""
    check_logits(logits)
    return forward_infonce(jnp.swapaxes(logits, 0, 1), logsumexp_penalty)


def symmetric_infonce(logits: jax.Array, logsumexp_penalty: float = 0.0) -> jax.Array:
    """``forward_infonce + backward_infonce``, each with its own penalty."""
    return forward_infonce(logits, logsumexp_penalty) + backward_infonce(logits, logsumexp_penalty)


CONTRASTIVE_LOSS_FNS: dict[str, Callable[[jax.Array, float], jax.Array]] = {
    "binary_nce": binary_nce,
    "forward_infonce": forward_infonce,
    "backward_infonce": backward_infonce,
    "symmetric_infonce": symmetric_infonce,
}
assert tuple(CONTRASTIVE_LOSS_FNS) == CONTRASTIVE_LOSSES


def contrastive_loss(name: str, logsumexp_penalty: float = 0.0) -> Callable[[jax.Array], jax.Array]:
    """The loss ``name`` as a function of the logits alone, with its penalty coefficient.

    Raises:
        ValueError: an unknown name (the message lists the valid ones).
    """
    if name not in CONTRASTIVE_LOSS_FNS:
        raise ValueError(
            f"unknown contrastive loss {name!r}; valid choices: {', '.join(CONTRASTIVE_LOSSES)}"
        )
    fn = CONTRASTIVE_LOSS_FNS[name]
    return lambda logits: fn(logits, logsumexp_penalty)
