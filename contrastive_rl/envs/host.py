"""Host environments: goal-conditioned tasks stepped on the CPU by a simulator (MuJoCo).

They keep the contract of ``base.py`` (``EnvSpec``, observation ``[state ; goal]``, actions in
[-1, 1], fixed-length episodes, a fresh goal at every reset) but step in NumPy, one environment
per object, usually inside a worker process (``contrastive_rl.actors.workers``). Every reset
takes an explicit integer seed, so a run's episodes depend on its seed only, not on how the
environments are spread over processes.

Host environments are registered by name with the module that builds them, so that
``crl list`` and config validation never import a simulator.
"""

from __future__ import annotations

import importlib

import numpy as np

from contrastive_rl.envs.registry import HOST_ENVS, requirements_error
from contrastive_rl.envs.spec import EnvSpec


class HostEnv:
    """One goal-conditioned environment stepped in NumPy.

    Subclasses set ``spec`` and implement ``reset``, ``step`` and ``goal_distance``; ``success``
    thresholds the distance unless the task has its own rule.
    """

    spec: EnvSpec

    def reset(self, seed: int) -> tuple[np.ndarray, np.ndarray]:
        """A new episode drawn from ``seed``: returns ``(state [state_dim], goal [goal_dim])``.

        The goal is drawn first, then the start, as in the original task.
        """
        raise NotImplementedError

    def step(self, action: np.ndarray) -> np.ndarray:
        """Apply ``action`` (in [-1, 1]^action_dim); returns the new state. Never terminates."""
        raise NotImplementedError

    def goal_distance(self) -> float:
        """Distance to the goal by the task's own measure (what success thresholds)."""
        raise NotImplementedError

    def success(self) -> bool:
        """Whether the goal is reached now (the original's reward of 1)."""
        return bool(self.goal_distance() < self.spec.success_threshold)

    def close(self) -> None:
        """Release the simulator (renderers, files)."""


def make_host_env(name: str) -> HostEnv:
    """Build the host environment called ``name`` (imports its simulator)."""
    problem = requirements_error(name)
    if problem:
        raise ValueError(problem)
    module_name, factory = HOST_ENVS[name].split(":")
    return getattr(importlib.import_module(module_name), factory)(name)
