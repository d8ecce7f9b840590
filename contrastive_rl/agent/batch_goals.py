"""What the losses of every critic-based algorithm share about a batch: the actor's goals and
the critic's diagnostics.

The actor of the original and of TD InfoNCE trains on the relabelled goals, on goals taken
from other rows (goals its own trajectory never visited), or on both halves: ``mix_goals``.
Both read the same ranking diagnostics off a ``[B, C(, n)]`` logit matrix whose diagonal holds
the positives: ``ranking_metrics``.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

from contrastive_rl.types import Batch


def mix_goals(
    batch: Batch, share: float, other_goals: jax.Array
) -> tuple[jax.Array, jax.Array, jax.Array]:
    """The actor's ``(state, goal, data_action)``: the batch's goals (``share`` 0), ``other_goals``
    (1), or both, stacked (0.5; each state and data action then appears twice).

    ``other_goals`` are row i's goals drawn independently of row i, e.g. row i-1's."""
    if share == 0.0:
        return batch.state, batch.goal, batch.action
    if share == 0.5:
        double = lambda x: jnp.concatenate([x, x], axis=0)  # noqa: E731
        goal = jnp.concatenate([batch.goal, other_goals], axis=0)
        return double(batch.state), goal, double(batch.action)
    if share == 1.0:
        return batch.state, other_goals, batch.action
    raise ValueError(f"random_goals must be one of 0, 0.5, 1, got {share}")


def ranking_metrics(logits: jax.Array) -> dict[str, jax.Array]:
    """How well row i's own candidate (the diagonal) stands out, on logits ``[B, B]`` or
    ``[B, B, n]`` (averaged over the n critics first)."""
    if logits.ndim == 3:
        logits = jnp.mean(logits, axis=-1)
    b = logits.shape[0]
    eye = jnp.eye(b)
    return {
        "categorical_accuracy": jnp.mean(jnp.argmax(logits, axis=1) == jnp.arange(b)),
        "logits_pos": jnp.sum(logits * eye) / b,
        "logits_neg": jnp.sum(logits * (1 - eye)) / max(b * b - b, 1),
    }
