"""The actor's policy as a worker process runs it: one jitted call per step over its envs.

JAX loads with this module, so a worker imports it only once it is asked to act.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

from contrastive_rl.agent.networks import make_networks, mode
from contrastive_rl.config import Config
from contrastive_rl.envs.spec import EnvSpec


class ActorPolicy:
    """The policy as a worker runs it, one jitted call per step over the worker's envs.

    Env i's noise at step s of an unroll comes from ``fold_in(fold_in(unroll key, i), s)``, so
    its actions do not depend on which worker steps it or with how many others.
    """

    def __init__(self, spec: EnvSpec, config: Config | None):
        self.spec = spec
        self.nets = make_networks(spec, config) if config is not None else None
        self._act = jax.jit(self._actions, static_argnames="how")

    def _actions(self, params, states, goals, key_data, env_indices, step, how):
        base = jax.random.wrap_key_data(key_data)
        keys = jax.vmap(lambda i: jax.random.fold_in(jax.random.fold_in(base, i), step))(
            env_indices
        )
        dim = self.spec.action_dim
        if how == "random":
            return jax.vmap(lambda k: jax.random.uniform(k, (dim,), minval=-1.0, maxval=1.0))(keys)
        if self.nets is None:
            raise ValueError(f"acting with how={how!r} needs the run's config (networks)")
        loc, scale = self.nets.policy(params, states, goals)
        if how == "mode":
            return mode(loc)
        noise = jax.vmap(lambda k: jax.random.normal(k, (dim,), loc.dtype))(keys)
        return jnp.tanh(loc + scale * noise)

    def __call__(self, params, states, goals, key_data, env_indices, step: int, how: str):
        """Actions ``[n, action_dim]`` (float32 NumPy) for the envs ``env_indices``."""
        actions = self._act(params, states, goals, key_data, env_indices, np.int32(step), how=how)
        return np.asarray(actions, np.float32)
