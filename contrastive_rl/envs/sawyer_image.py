"""The original's Sawyer image tasks (``sawyer_{drawer,window,push,bin}_image``), from pixels.

Each wraps its state task (``envs/sawyer.py``: Meta-World v3, seeded resets, the same action)
and adds the original's image version: camera ``corner2`` moved and narrowed as the original
did at every reset, Meta-World's goal marker hidden, a scripted goal scene (the hand driven
onto the object through the mocap, the object pinned where the goal is), a scripted start,
the image version's episode length and success rule:

============== ===== ================================ ====================================
task           steps camera corner2 (pos, fovy)        success
============== ===== ================================ ====================================
drawer          50   (1.5, -0.2, 1.1), 8               |handle_y - goal_y| < 0.04
window          50   (1.5, -0.1, 1.1), 10              |slide - goal_slide| < 0.05
push           150   (0.7, 0.65, 0.1), 45, rotated     ||puck - goal|| < 0.05 (3-D)
bin            150   (1.3, -0.05, 0.9), 14             ||block_xy - goal_xy|| < 0.05
============== ===== ================================ ====================================

Images are OpenGL's rows as mujoco-py's offscreen render returned them to the original (its
``corner2`` images were not flipped): for these cameras that picture is upright.
"""

from __future__ import annotations

from collections.abc import Callable

import mujoco
import numpy as np

from contrastive_rl.envs.host_image import ImageHostEnv, image_spec
from contrastive_rl.envs.render import FixedCamera, SceneRenderer
from contrastive_rl.envs.sawyer import SawyerBin, SawyerDrawer, SawyerEnv, SawyerPush, SawyerWindow

GRIPPER_OPEN = np.array([-1.0, 1.0])  # finger controls of Meta-World's open gripper
GRIPPER_CLOSED = -GRIPPER_OPEN
# The original built the push camera's orientation from Euler angles (-pi/2, pi/2, 0) with
# gym's ``euler2quat``; this is that quaternion (w, x, y, z).
PUSH_CAMERA_QUAT = (0.5, -0.5, 0.5, -0.5)
# push-v3's own goal box (x, y): the image version kept Meta-World's reset ranges, which reject
# a goal within 0.15 of the puck and so shape where the puck starts.
PUSH_METAWORLD_GOAL = ((-0.1, 0.8), (0.1, 0.9))


class SawyerImage(ImageHostEnv):
    """A Sawyer state task seen by ``corner2``."""

    task_class: type[SawyerEnv]
    camera: FixedCamera
    episode_length: int
    success_threshold: float
    hidden_sites: tuple[str, ...] = ("goal",)  # Meta-World's goal marker

    def __init__(self, name: str):
        self.task = self.task_class(name.removesuffix("_image"))
        self.mw = self.task.mw
        self.spec = image_spec(name, self.episode_length, self.success_threshold)
        self.renderer = SceneRenderer(
            self.mw.model,
            self.camera,
            hide_sites=self.hidden_sites,
            rows_top_down=False,
            reflections=False,  # only the floor and the table's rims reflect; never in view
        )
        self.goal = np.zeros(3)

    @property
    def model(self):
        return self.mw.model

    @property
    def data(self):
        return self.mw.data

    def _drive_hand(
        self,
        steps: int,
        target: Callable[[], np.ndarray],
        gripper: Callable[[int], np.ndarray] = lambda t: GRIPPER_OPEN,
        hold: Callable[[], None] = lambda: None,
    ) -> None:
        """Pull the mocap onto ``target()`` for ``steps`` env steps (``hold()`` before each)."""
        mw = self.mw
        for t in range(steps):
            mw.data.mocap_pos[0] = target()
            mw.data.mocap_quat[0] = (1.0, 0.0, 1.0, 0.0)  # Meta-World's hand orientation
            hold()
            mw.do_simulation(gripper(t), mw.frame_skip)
        mujoco.mj_forward(mw.model, mw.data)


class SawyerDrawerImage(SawyerImage):
    """Goal: the hand on the handle of a randomly open drawer. Start: drawer shut or open."""

    task_class = SawyerDrawer
    camera = FixedCamera("corner2", pos=(1.5, -0.2, 1.1), fovy=8.0)
    episode_length = 50
    success_threshold = 0.04

    def _to_handle(self) -> None:
        self._drive_hand(20, lambda: self.task.handle() + np.array([0.0, 0.0, 0.03]))

    def _place_goal(self, rng: np.random.Generator) -> None:
        self._to_handle()  # the state task's reset left the drawer at a uniform slide
        self.goal = self.task.handle().copy()

    def _place_start(self, rng: np.random.Generator) -> None:
        self.mw.set_slide(float(rng.choice([-0.15, 0.0])))
        self._to_handle()

    def goal_distance(self) -> float:
        return float(abs(self.task.handle()[1] - self.goal[1]))


class SawyerWindowImage(SawyerImage):
    """Goal: the hand on the handle, window at a uniform slide. Start: shut or open."""

    task_class = SawyerWindow
    camera = FixedCamera("corner2", pos=(1.5, -0.1, 1.1), fovy=10.0)
    episode_length = 50
    success_threshold = 0.05
    goal_slide = 0.0

    def _hand_on_handle(self, slide: float, steps: int) -> None:
        self._drive_hand(steps, self.task.handle, hold=lambda: self.mw.set_slide(slide))

    def _place_goal(self, rng: np.random.Generator) -> None:
        slide = float(rng.uniform(0.0, 0.2))
        self._hand_on_handle(slide, 20)
        self.goal_slide = slide

    def _place_start(self, rng: np.random.Generator) -> None:
        self._hand_on_handle(float(rng.choice([0.0, 0.2])), 50)

    def slide(self) -> float:
        return float(self.mw.data.joint("window_slide").qpos[0])

    def goal_distance(self) -> float:
        return float(abs(self.slide() - self.goal_slide))


class SawyerPushImage(SawyerImage):
    """Goal: the puck moved away from its start, the hand on it. Start: puck 0.2 m nearer."""

    task_class = SawyerPush
    camera = FixedCamera("corner2", pos=(0.7, 0.65, 0.1), fovy=45.0, quat=PUSH_CAMERA_QUAT)
    episode_length = 150
    success_threshold = 0.05

    def __init__(self, name: str):
        super().__init__(name)
        space = self.mw._random_reset_space  # [puck xyz, goal xyz]
        (space.low[3:5], space.high[3:5]) = PUSH_METAWORLD_GOAL

    def _place_goal(self, rng: np.random.Generator) -> None:
        goal = self.task.puck().copy()
        goal[1] += rng.uniform(0.0, 0.25)
        goal[0] += rng.uniform(-0.1, 0.1)
        self.goal = goal
        self.mw._set_obj_xyz(goal)
        self._drive_hand(200, self.task.puck, hold=lambda: self.mw._set_obj_xyz(goal))

    def _place_start(self, rng: np.random.Generator) -> None:
        self.mw._set_obj_xyz(self.task.puck() + np.array([0.0, -0.2, 0.0]))
        self.mw.do_simulation(GRIPPER_OPEN, self.mw.frame_skip)
        self._drive_hand(20, self.task.puck)

    def goal_distance(self) -> float:
        return float(np.linalg.norm(self.task.puck() - self.goal))


class SawyerBinImage(SawyerImage):
    """Goal: the block dropped in the target bin and grasped. Start: the hand above the block."""

    task_class = SawyerBin
    camera = FixedCamera("corner2", pos=(1.3, -0.05, 0.9), fovy=14.0)
    episode_length = 150
    success_threshold = 0.05
    hidden_sites = ()  # bin-picking has no goal marker

    def _place_goal(self, rng: np.random.Generator) -> None:
        place = self.mw.data.body("bin_goal").xpos.copy()
        place[:2] += rng.uniform(-0.05, 0.05, 2)
        place[2] = 0.05
        self.mw._set_obj_xyz(place)
        above = place + np.array([0.0, 0.0, rng.uniform(0.0, 0.05)])
        closing = lambda t: GRIPPER_CLOSED if t > 20 else np.zeros(2)  # noqa: E731
        self._drive_hand(40, lambda: above, gripper=closing)
        self.goal = self.task.block().copy()

    def _place_start(self, rng: np.random.Generator) -> None:
        above = self.task.block() + np.array([0.0, 0.0, 0.05])
        self._drive_hand(40, lambda: above, gripper=lambda t: np.zeros(2))

    def goal_distance(self) -> float:
        return float(np.linalg.norm(self.task.block()[:2] - self.goal[:2]))


SAWYER_IMAGE_TASKS: dict[str, type[SawyerImage]] = {
    "sawyer_push_image": SawyerPushImage,
    "sawyer_drawer_image": SawyerDrawerImage,
    "sawyer_bin_image": SawyerBinImage,
    "sawyer_window_image": SawyerWindowImage,
}


def make(name: str) -> SawyerImage:
    """The Sawyer image task called ``name`` (one of ``SAWYER_IMAGE_TASKS``)."""
    if name not in SAWYER_IMAGE_TASKS:
        raise ValueError(
            f"unknown Sawyer image task {name!r}; valid choices: {', '.join(SAWYER_IMAGE_TASKS)}"
        )
    return SAWYER_IMAGE_TASKS[name](name)
