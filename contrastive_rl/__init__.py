"""contrastive_rl: goal-conditioned RL by contrastive representation learning, in JAX."""

from contrastive_rl.config import Config, ConfigError, make_config

__version__ = "0.1.0"

__all__ = ["Config", "ConfigError", "make_config", "__version__"]
