"""contrastive_rl: goal-conditioned RL by contrastive representation learning, in JAX.

``import contrastive_rl`` is light: the training stack (JAX, Flax) loads on the first call of
:func:`train` or :func:`load_policy`.
"""

from __future__ import annotations

from typing import Any

from contrastive_rl.config import Config, ConfigError, make_config
from contrastive_rl.presets import PRESETS
from contrastive_rl.version import __version__


def train(config: Config, run_dir: str | None = None, **kwargs: Any) -> dict[str, Any]:
    """Train ``config`` in ``run_dir``; see :func:`contrastive_rl.api.train`."""
    from contrastive_rl.api import train as _train

    return _train(config, run_dir, **kwargs)


def load_policy(run_dir: str, seed: int = 0) -> Any:
    """The trained policy of ``run_dir``; see :func:`contrastive_rl.api.load_policy`."""
    from contrastive_rl.api import load_policy as _load_policy

    return _load_policy(run_dir, seed)


def make_gym(name: str, **kwargs: Any) -> Any:
    """Environment ``name`` as a ``gymnasium.Env``; see :func:`contrastive_rl.envs.gym.make_gym`."""
    from contrastive_rl.envs.gym import make_gym as _make_gym

    return _make_gym(name, **kwargs)


__all__ = [
    "PRESETS",
    "Config",
    "ConfigError",
    "load_policy",
    "make_config",
    "make_gym",
    "train",
    "__version__",
]
