"""The original's Fetch image tasks (``fetch_reach_image``, ``fetch_push_image``), from pixels.

Each wraps its state task (``envs/fetch.py``: Gymnasium-Robotics' Fetch, gym's actions) and
adds the original's image version: its viewer camera (look-at point, distance, azimuth,
elevation; MuJoCo's default 45 degree field of view), the mocap "lasers" and the target marker
hidden, a scripted goal scene rendered as the goal image, 50 steps, success within 0.05.

* reach: goal = gym's target; the gripper is driven toward it for 10 steps (action
  ``clip(10 * (target - grip))``) and rendered; the start is a fresh gym reset. Distance:
  gripper to the stored target, 3-D.
* push: after gym's reset the gripper backs off for 8 steps (action x = -1); goal scene: the
  block where gym put it, the gripper driven next to it; start: the block moved to
  (1.15, 0.75), the gripper driven next to it. Distance: block to goal in the table plane. A
  scene whose block fell off the table is drawn again, as in the original.
"""

from __future__ import annotations

import mujoco
import numpy as np
from gymnasium_robotics.utils import mujoco_utils

from contrastive_rl.envs.fetch import FetchEnv
from contrastive_rl.envs.host_image import ImageHostEnv, image_spec
from contrastive_rl.envs.render import FreeCamera, SceneRenderer

EPISODE_LENGTH = 50
SUCCESS_THRESHOLD = 0.05
CAMERAS = {
    "fetch_reach_image": FreeCamera((1.2, 0.8, 0.5), distance=0.8, azimuth=180, elevation=-30),
    "fetch_push_image": FreeCamera((1.25, 0.8, 0.4), distance=0.65, azimuth=90, elevation=-40),
}
PUSH_START_XY = (1.15, 0.75)
TABLE_HEIGHT = 0.4  # a block below this fell off the table
MAX_DRAWS = 100  # scenes drawn before giving up on a block that keeps falling


class FetchImage(ImageHostEnv):
    """A Fetch state task seen by the original's viewer camera."""

    def __init__(self, name: str):
        self.task = FetchEnv(name.removesuffix("_image"))
        self.spec = image_spec(name, EPISODE_LENGTH, SUCCESS_THRESHOLD)
        model = self.model
        lasers = tuple(
            i for i in range(model.ngeom) if model.body(model.geom_bodyid[i]).name == "robot0:mocap"
        )
        self.camera = CAMERAS[name]
        self.renderer = SceneRenderer(
            model,
            self.camera,
            hide_geoms=lasers,
            hide_sites=("target0",),
            rows_top_down=True,
        )
        self.goal = np.zeros(3)

    @property
    def model(self):
        return self.task.gym_env.model

    @property
    def data(self):
        return self.task.gym_env.data

    def grip(self) -> np.ndarray:
        return self.data.site("robot0:grip").xpos.copy()


class FetchReachImage(FetchImage):
    def _place_goal(self, rng: np.random.Generator) -> None:
        self.goal = self.task.desired_goal
        for _ in range(10):
            pull = np.clip(10.0 * (self.goal - self.grip()), -1.0, 1.0)
            self.task.step(np.append(pull, 0.0))

    def _place_start(self, rng: np.random.Generator) -> None:
        pass  # a fresh gym reset

    def goal_distance(self) -> float:
        return float(np.linalg.norm(self.grip() - self.goal))


class FetchPushImage(FetchImage):
    def block(self) -> np.ndarray:
        return self.task.achieved_goal()

    def _back_off(self) -> None:
        for _ in range(8):
            self.task.step(np.array([-1.0, 0.0, 0.0, 0.0]))

    def _grip_to_block(self) -> None:
        """Drive the gripper to 2 cm behind the block (at most 100 steps, stop within 6 cm)."""
        for _ in range(100):
            delta = self.block() + np.array([-0.02, 0.0, 0.0]) - self.grip()
            if np.linalg.norm(delta) < 0.06:
                break
            self.task.step(np.append(np.clip(delta, -1.0, 1.0), 0.0))

    def _place_goal(self, rng: np.random.Generator) -> None:
        self._back_off()
        self._grip_to_block()
        self.goal = self.block()

    def _place_start(self, rng: np.random.Generator) -> None:
        self._back_off()
        model, data = self.model, self.data
        qpos = mujoco_utils.get_joint_qpos(model, data, "object0:joint").copy()
        qpos[:2] = PUSH_START_XY
        mujoco_utils.set_joint_qpos(model, data, "object0:joint", qpos)
        mujoco.mj_forward(model, data)
        self._grip_to_block()

    def reset(self, seed: int) -> tuple[np.ndarray, np.ndarray]:
        rng = np.random.default_rng(int(seed))
        for _ in range(MAX_DRAWS):
            state, goal = super().reset(int(rng.integers(2**31)))
            if min(self.goal[2], self.block()[2]) >= TABLE_HEIGHT:
                return state, goal
        raise RuntimeError(f"fetch_push_image: the block fell off the table {MAX_DRAWS} times")

    def goal_distance(self) -> float:
        return float(np.linalg.norm(self.block()[:2] - self.goal[:2]))


def make(name: str) -> FetchImage:
    """The Fetch image task called ``name`` (``fetch_reach_image`` or ``fetch_push_image``)."""
    tasks = {"fetch_reach_image": FetchReachImage, "fetch_push_image": FetchPushImage}
    if name not in tasks:
        raise ValueError(f"unknown Fetch image task {name!r}; valid choices: {', '.join(tasks)}")
    return tasks[name](name)
