"""Weights & Biases as a mirror of the run's TensorBoard scalars (``crl train --wandb``).

Imported only when a run enables it, so that the core never needs ``wandb``. The mirror gets
exactly what TensorBoard gets (``MetricsLogger``), with ``env_steps`` (``grad_steps``
for offline tasks) as the x-axis of every chart. Without an API key (``wandb_mode auto``) the
run is written offline under ``RUN_DIR/wandb/`` and can be uploaded later with ``wandb sync``;
nothing needs a network.

A resumed run continues the same W&B run (its id is kept in ``RUN_DIR/wandb/run_id``). The
records a resumed run logs again (those after its last checkpoint) appear twice in W&B, at the
same ``env_steps`` and with the same values.
"""

from __future__ import annotations

import netrc
import os
import secrets
import sys
from collections.abc import Mapping
from typing import Any
from urllib.parse import urlparse

from contrastive_rl.config import Config, ConfigError
from contrastive_rl.envs.registry import install_hint
from contrastive_rl.runs.files import atomic_write

WANDB_DIR = "wandb"
RUN_ID_FILE = "run_id"
STEP_METRIC = "env_steps"
# WANDB_MODE's values (with W&B's old names) -> the mode.
ENV_MODES = {
    "online": "online",
    "run": "online",
    "offline": "offline",
    "dryrun": "offline",
    "disabled": "disabled",
}


def import_wandb() -> Any:
    """The ``wandb`` module, or a ConfigError with the command that installs it."""
    try:
        import wandb
    except ImportError:
        raise ConfigError(
            f"--wandb needs the optional dependency wandb; install it with: {install_hint('wandb')}"
        ) from None
    return wandb


def has_api_key() -> bool:
    """Whether W&B would find credentials here (``WANDB_API_KEY`` or a netrc entry)."""
    if os.environ.get("WANDB_API_KEY"):
        return True
    host = urlparse(os.environ.get("WANDB_BASE_URL", "https://api.wandb.ai")).hostname
    try:
        return netrc.netrc().authenticators(host or "api.wandb.ai") is not None
    except (OSError, netrc.NetrcParseError):
        return False


def resolve_mode(mode: str) -> str:
    """``auto``: ``WANDB_MODE`` if set, else online with an API key and offline without."""
    if mode != "auto":
        return mode
    from_env = ENV_MODES.get(os.environ.get("WANDB_MODE", "").lower())
    if from_env:
        return from_env
    return "online" if has_api_key() else "offline"


def _run_id(directory: str, resume: bool) -> str:
    """The W&B id of this run: kept on resume, new for a fresh run (also after --overwrite)."""
    file = os.path.join(directory, RUN_ID_FILE)
    if resume and os.path.isfile(file):
        with open(file, encoding="utf-8") as f:
            saved = f.read().strip()
        if saved:
            return saved
    run_id = secrets.token_hex(4)  # W&B ids: lowercase letters and digits
    atomic_write(file, run_id + "\n")
    return run_id


class WandbMirror:
    """A W&B run receiving every scalar the run logs, at its ``env_steps`` (or ``step_metric``)."""

    def __init__(
        self, config: Config, path: str, resume: bool = False, step_metric: str = STEP_METRIC
    ):
        self.step_metric = step_metric
        wandb = import_wandb()
        self.mode = resolve_mode(config.wandb_mode)
        directory = os.path.join(path, WANDB_DIR)
        os.makedirs(directory, exist_ok=True)
        self.run = wandb.init(
            project=config.wandb_project,
            name=config.wandb_name or os.path.basename(os.path.abspath(path)),
            id=_run_id(directory, resume),
            resume="allow",
            dir=path,
            mode=self.mode,
            config=config.to_dict(),
            settings=wandb.Settings(console="off", quiet=True),
        )
        self.run.define_metric(step_metric)
        self.run.define_metric("*", step_metric=step_metric)
        if self.mode == "offline":
            print(
                f"W&B: offline run in {directory}; upload it with `wandb sync {directory}/"
                "offline-run-*`",
                file=sys.stderr,
            )

    def log(self, scalars: Mapping[str, int | float], step: int) -> None:
        self.run.log({self.step_metric: int(step), **scalars})

    def close(self) -> None:
        if self.run is None:
            return
        self.run.finish()
        self.run = None
        wandb = import_wandb()
        if wandb.run is None:  # finish() can return before W&B's service wrote everything
            wandb.teardown()
