"""The package's version: written into checkpoints and datasets, read by ``contrastive_rl``."""

__version__ = "0.1.0"
