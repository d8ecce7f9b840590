"""The original's state-based Fetch tasks (``fetch_reach``, ``fetch_push``) on Gymnasium-Robotics.

The original wrapped gym 0.19's mujoco-py ``FetchReach`` / ``FetchPush``; here the same tasks
come from Gymnasium-Robotics' MuJoCo-bindings versions (``-v4``, whose reset matches the old
initial states). Everything task-related is gym's default, as in the original: sparse reward,
success when the achieved goal is within 0.05, 4-D actions in [-1, 1] (x 0.05 m mocap delta,
gripper blocked), targets within 0.15 of the initial gripper position, push objects within
0.15 of the gripper's xy but at least 0.1 away, push targets on the table.

The agent's state is gym's ``observation`` vector and its goal is a state-shaped vector with
only the target position filled in (the rest zero), as in the original: reach puts the target
at the gripper position ``[0:3]``; push puts it at both the gripper ``[0:3]`` and the object
``[3:6]`` positions. The goal space is the whole state (``goal_start=0``, ``goal_end=state_dim``).

The environment is used unwrapped: Gymnasium's ``TimeLimit`` (50 steps) and checkers are dropped,
since the training loop itself counts ``spec.episode_length`` steps and never resets early.

Joint limits are the original's: in gym 0.19's ``robot.xml`` seven arm and body joints
(``ORIGINAL_UNLIMITED_JOINTS``) have a ``range`` but no ``limited`` attribute, so MuJoCo 2.0 left
them unlimited; Gymnasium-Robotics marks them limited and MuJoCo 3 enforces them (the torso
starts below its lower limit). They are unlimited here as soon as the model is loaded, before
Gymnasium-Robotics' set-up steps compute the initial state.
"""

from __future__ import annotations

from typing import Any

import gymnasium as gym
import gymnasium_robotics
import mujoco
import numpy as np

from contrastive_rl.envs.host import HostEnv
from contrastive_rl.envs.spec import EnvSpec

EPISODE_LENGTH = 50
SUCCESS_THRESHOLD = 0.05  # gym's distance_threshold


# name -> (Gymnasium id, state dim, site whose position is the achieved goal, goal slots)
FETCH_TASKS: dict[str, tuple[str, int, str, tuple[int, ...]]] = {
    "fetch_reach": ("FetchReach-v4", 10, "robot0:grip", (0,)),
    "fetch_push": ("FetchPush-v4", 25, "object0", (0, 3)),
}


# Joints with a range but no `limited` attribute in gym 0.19's Fetch robot.xml: unlimited there.
ORIGINAL_UNLIMITED_JOINTS = tuple(
    f"robot0:{name}_joint"
    for name in (
        "torso_lift",
        "head_pan",
        "head_tilt",
        "shoulder_pan",
        "shoulder_lift",
        "elbow_flex",
        "wrist_flex",
    )
)


def unlimit_original_joints(model: mujoco.MjModel) -> None:
    """Turn off the limits of ``ORIGINAL_UNLIMITED_JOINTS``, as MuJoCo 2.0 read gym 0.19's XML."""
    for name in ORIGINAL_UNLIMITED_JOINTS:
        joint = mujoco.mj_name2id(model, mujoco.mjtObj.mjOBJ_JOINT, name)
        if joint < 0:
            raise RuntimeError(f"the Fetch model has no joint {name!r}")
        model.jnt_limited[joint] = 0


def make_gym_fetch(gym_id: str) -> Any:
    """The unwrapped Gymnasium-Robotics environment ``gym_id`` with the original's joint limits.

    Its class is subclassed so that the limits change between loading the model and the set-up
    steps that compute the initial state (``_env_setup``), as if the XML had declared them so.
    """
    gym.register_envs(gymnasium_robotics)
    spec = gym.spec(gym_id)
    base = gym.envs.registration.load_env_creator(spec.entry_point)

    class OriginalLimits(base):
        def _env_setup(self, initial_qpos: Any) -> None:
            unlimit_original_joints(self.model)
            super()._env_setup(initial_qpos)

    OriginalLimits.__name__ = OriginalLimits.__qualname__ = f"{base.__name__}OriginalLimits"
    env = OriginalLimits(**spec.kwargs)
    env.spec = spec  # what gym.make records on the environment it builds
    return env


# Where the achieved goal (gripper or object position) sits in the state: what success measures.
ACHIEVED_DIMS = {"fetch_reach": (0, 1, 2), "fetch_push": (3, 4, 5)}


class FetchEnv(HostEnv):
    """One Fetch task; ``gym_env`` is the unwrapped Gymnasium-Robotics environment."""

    def __init__(self, name: str) -> None:
        gym_id, state_dim, achieved_site, self._goal_slots = FETCH_TASKS[name]
        self.gym_env = make_gym_fetch(gym_id)
        self.spec = EnvSpec(
            name=name,
            state_dim=state_dim,
            action_dim=int(self.gym_env.action_space.shape[0]),
            episode_length=EPISODE_LENGTH,
            goal_start=0,
            goal_end=state_dim,
            success_threshold=SUCCESS_THRESHOLD,
            success_dims=ACHIEVED_DIMS[name],
        )
        model = self.gym_env.model
        self._site = mujoco.mj_name2id(model, mujoco.mjtObj.mjOBJ_SITE, achieved_site)
        if self._site < 0:
            raise RuntimeError(f"{gym_id} has no site {achieved_site!r}")

    @property
    def desired_goal(self) -> np.ndarray:
        """The target position gym drew at the last reset (3-D, float64)."""
        return self.gym_env.goal.copy()

    def achieved_goal(self) -> np.ndarray:
        """Where the gripper (reach) or the object (push) is now, read from the simulator."""
        return self.gym_env.data.site_xpos[self._site].copy()

    def reset(self, seed: int) -> tuple[np.ndarray, np.ndarray]:
        """Gym's own reset, reseeded: start (push: object xy), then target, from ``seed``."""
        obs, _ = self.gym_env.reset(seed=int(seed))
        goal = np.zeros(self.spec.state_dim, np.float32)
        for start in self._goal_slots:
            goal[start : start + 3] = obs["desired_goal"]
        return obs["observation"].astype(np.float32), goal

    def step(self, action: np.ndarray) -> np.ndarray:
        """One gym step (gym clips the action to [-1, 1]); truncation never happens unwrapped."""
        obs, _, _, _, _ = self.gym_env.step(np.asarray(action, np.float64).reshape(-1))
        return obs["observation"].astype(np.float32)

    def goal_distance(self) -> float:
        """``||achieved - desired||``: gripper (reach) or object (push) to the target, 3-D."""
        return float(np.linalg.norm(self.achieved_goal() - self.gym_env.goal))

    def close(self) -> None:
        self.gym_env.close()


def make_fetch(name: str) -> HostEnv:
    """The Fetch task called ``name`` (``fetch_reach`` or ``fetch_push``)."""
    if name not in FETCH_TASKS:
        raise ValueError(f"unknown Fetch task {name!r}; valid choices: {', '.join(FETCH_TASKS)}")
    return FetchEnv(name)
