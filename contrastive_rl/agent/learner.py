"""The learner: one state pytree and one update for every algorithm.

``update(state, batch, key)`` never knows where the batch came from (JAX environments, worker
processes or a dataset); algorithms differ only in the losses ``losses.py`` builds for them.
The order of one update is the original's: alpha, critic and actor gradients all from the
pre-update parameters, then the actor, critic (+ target) and alpha steps.
"""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp
import optax
from flax import struct

from contrastive_rl.agent.losses import (
    ALGORITHMS,
    make_actor_loss,
    make_alpha_loss,
    make_critic_loss,
)
from contrastive_rl.agent.networks import Networks, init_params
from contrastive_rl.config import Config
from contrastive_rl.types import Batch

ALPHA_LEARNING_RATE = 3e-4  # the original's fixed rate for log alpha


@struct.dataclass
class TrainState:
    actor_params: Any
    critic_params: Any
    target_critic_params: Any
    actor_opt_state: Any
    critic_opt_state: Any
    log_alpha: jax.Array
    alpha_opt_state: Any


def learning_rate(peak: float, schedule: str, total_steps: int) -> optax.ScalarOrSchedule:
    """The constant rate of the original, or a decay to 0 over the run's gradient steps."""
    if schedule == "linear":
        return optax.linear_schedule(peak, 0.0, max(total_steps, 1))
    if schedule == "cosine":
        return optax.cosine_decay_schedule(peak, max(total_steps, 1))
    return peak


class Learner:
    """Builds the optimisers and losses of ``config.alg`` once; ``init`` and ``update`` are pure.

    ``total_grad_steps`` is the run's budget of updates, the horizon of a decaying ``lr_schedule``.
    """

    def __init__(self, nets: Networks, config: Config, total_grad_steps: int = 0):
        self.nets = nets
        self.config = config
        self.algorithm = ALGORITHMS[config.alg]
        actor_lr, critic_lr = (
            learning_rate(lr, config.lr_schedule, total_grad_steps)
            for lr in (config.actor_learning_rate, config.learning_rate)
        )
        self.actor_optimizer = optax.adam(actor_lr, eps=config.adam_eps)
        self.critic_optimizer = optax.adam(critic_lr, eps=config.adam_eps)
        self.alpha_optimizer = optax.adam(ALPHA_LEARNING_RATE)
        self.actor_loss = make_actor_loss(config.alg, nets, config)
        self.critic_loss = (
            make_critic_loss(config.alg, nets, config) if self.algorithm.trains_critic else None
        )
        self.alpha_loss = make_alpha_loss(nets, config) if config.adaptive_entropy else None

    def init(self, key: jax.Array) -> TrainState:
        actor_params, critic_params = init_params(self.nets, key)
        log_alpha = jnp.zeros((), jnp.float32)
        return TrainState(
            actor_params=actor_params,
            critic_params=critic_params,
            target_critic_params=jax.tree.map(jnp.copy, critic_params),  # own buffers
            actor_opt_state=self.actor_optimizer.init(actor_params),
            critic_opt_state=self.critic_optimizer.init(critic_params),
            log_alpha=log_alpha,
            alpha_opt_state=self.alpha_optimizer.init(log_alpha),
        )

    def update(
        self, state: TrainState, batch: Batch, key: jax.Array
    ) -> tuple[TrainState, dict[str, jax.Array]]:
        """One gradient step of alpha, critic and actor on one batch."""
        alpha_key, critic_key, actor_key = jax.random.split(key, 3)
        metrics: dict[str, jax.Array] = {}

        if self.alpha_loss is not None:
            (alpha_loss, alpha_aux), alpha_grad = jax.value_and_grad(self.alpha_loss, has_aux=True)(
                state.log_alpha, state.actor_params, batch, alpha_key
            )
            alpha = jnp.exp(state.log_alpha)
            metrics.update(alpha_aux, alpha_loss=alpha_loss)
        else:
            alpha = jnp.float32(self.config.entropy_coefficient)

        if self.critic_loss is not None:
            (critic_loss, critic_aux), critic_grad = jax.value_and_grad(
                self.critic_loss, has_aux=True
            )(
                state.critic_params,
                state.target_critic_params,
                state.actor_params,
                batch,
                critic_key,
            )
            metrics.update(critic_aux, critic_loss=critic_loss)

        (actor_loss, actor_aux), actor_grad = jax.value_and_grad(self.actor_loss, has_aux=True)(
            state.actor_params, state.critic_params, batch, actor_key, alpha
        )
        metrics.update(actor_aux, actor_loss=actor_loss)

        updates, actor_opt_state = self.actor_optimizer.update(
            actor_grad, state.actor_opt_state, state.actor_params
        )
        state = state.replace(
            actor_params=optax.apply_updates(state.actor_params, updates),
            actor_opt_state=actor_opt_state,
        )
        if self.critic_loss is not None:
            updates, critic_opt_state = self.critic_optimizer.update(
                critic_grad, state.critic_opt_state, state.critic_params
            )
            critic_params = optax.apply_updates(state.critic_params, updates)
            state = state.replace(critic_params=critic_params, critic_opt_state=critic_opt_state)
            if self.algorithm.uses_target:  # only the TD losses read the target critic
                target = optax.incremental_update(
                    critic_params, state.target_critic_params, self.config.tau
                )
                state = state.replace(target_critic_params=target)
        if self.alpha_loss is not None:
            updates, alpha_opt_state = self.alpha_optimizer.update(
                alpha_grad, state.alpha_opt_state, state.log_alpha
            )
            log_alpha = optax.apply_updates(state.log_alpha, updates)
            state = state.replace(log_alpha=log_alpha, alpha_opt_state=alpha_opt_state)
            metrics["alpha"] = jnp.exp(log_alpha)
        return state, metrics
