"""A tiny host environment for the worker and host-loop tests (no simulator needed).

A point on the plane [0, 4]^2 moved by 0.5 * action, goal anywhere, success within 0.5,
20 steps per episode. Names ``toy_raise``, ``toy_exit`` and ``toy_hang`` misbehave at their
third step: they raise, kill the process, or never answer. ``toy_kill_once`` kills its process
(SIGKILL) at the step number in ``CRL_TOY_KILL_STEP``, once: the first to get there creates the
file named in ``CRL_TOY_KILL_MARK``, and none kills once it exists.
"""

from __future__ import annotations

import os
import signal
import time

import numpy as np

from contrastive_rl.envs import HostEnv
from contrastive_rl.envs.base import EnvSpec

SPEC = EnvSpec("toy", 2, 2, 20, 0, 2, 0.5)


class ToyReach(HostEnv):
    def __init__(self, name: str = "toy"):
        self.spec = SPEC
        self.name = name
        self.steps = 0

    def reset(self, seed: int):
        rng = np.random.default_rng(seed)
        self.goal = rng.uniform(0, 4, 2).astype(np.float32)
        self.state = rng.uniform(0, 4, 2).astype(np.float32)
        return self.state.copy(), self.goal.copy()

    def step(self, action):
        self.steps += 1
        if self.steps == 3 and self.name == "toy_raise":
            raise RuntimeError("simulator exploded")
        if self.steps == 3 and self.name == "toy_exit":
            os._exit(3)
        if self.steps == 3 and self.name == "toy_hang":
            time.sleep(3600)
        if self.name == "toy_kill_once" and self.steps == int(os.environ["CRL_TOY_KILL_STEP"]):
            try:
                os.close(os.open(os.environ["CRL_TOY_KILL_MARK"], os.O_CREAT | os.O_EXCL))
            except FileExistsError:
                pass
            else:
                os.kill(os.getpid(), signal.SIGKILL)
        move = 0.5 * np.clip(np.asarray(action, np.float32), -1, 1)
        self.state = np.clip(self.state + move, 0, 4).astype(np.float32)
        return self.state.copy()

    def goal_distance(self) -> float:
        return float(np.linalg.norm(self.state - self.goal))


def make(name: str) -> ToyReach:
    return ToyReach(name)
