"""The original's state-based Sawyer tasks (``sawyer_{push,drawer,window,bin}``) on Meta-World v3.

The original subclassed Meta-World v2 tasks (mujoco-py), made every reset draw fresh random
positions (``_freeze_rand_vec=False``, ``_set_task_called=True``), replaced the observation by a
small task state and discarded Meta-World's reward and done. Here each task subclasses its v3
class (MuJoCo's own bindings) only to draw every random number from one generator seeded at
``reset(seed)`` and to change the reset as the original did. Stepping applies Meta-World's own
action (mocap xyz delta x0.01, clipped to the mocap box, plus the gripper) but not Meta-World's
``step``: no reward, no observation clipping and no ``max_path_length`` (500) check, so episodes
of any length run and never terminate.

``tcp`` is the midpoint of the finger sites ``rightEndEffector`` / ``leftEndEffector`` and
``gripper_open = clip(|finger_r - finger_l| / 0.1, 0, 1)`` from the same sites, as in the original.

Deviations: ``sawyer_drawer`` and ``sawyer_window`` had reward 0 always in the original; they get
the success rules of their image versions (drawer ``|handle_y - goal_y| < 0.04``, window
``|slide - goal_slide| < 0.05``, which is ``|handle_x - goal_handle_x| < 0.05`` because the slide
moves the handle 1:1 along x). The original window read the handle site before any forward pass
(mujoco-py's ``set_joint_qpos`` does not update positions); here positions are recomputed after
every change, so goal and start really are the drawn slides.
"""

from __future__ import annotations

import mujoco
import numpy as np
from gymnasium.spaces import Box
from metaworld.envs.sawyer_bin_picking_v3 import SawyerBinPickingEnvV3
from metaworld.envs.sawyer_drawer_close_v3 import SawyerDrawerCloseEnvV3
from metaworld.envs.sawyer_push_v3 import SawyerPushEnvV3
from metaworld.envs.sawyer_window_open_v3 import SawyerWindowOpenEnvV3

from contrastive_rl.envs.host import HostEnv
from contrastive_rl.envs.spec import EnvSpec

EPISODE_LENGTH = 150
DRAWER_SLIDE = (-0.15, 0.0)  # drawer slide range drawn for goal and start (joint range -0.16..0)
WINDOW_SLIDE = (0.0, 0.2)  # window_slide range drawn for goal and start (= the joint range)
DRAWER_HANDLE_OFFSET = np.array([0.0, -0.16, 0.0])  # handle = drawer_link frame + this


# ---------------------------------------------------------------------------------------------
# Meta-World v3 tasks with the original's resets. Every draw comes from ``self.rng``.


class _SeededReset:
    """Mixin: Meta-World's reset draws (``_get_state_rand_vec``) come from ``self.rng``."""

    rng: np.random.Generator  # replaced at every reset

    def _get_state_rand_vec(self) -> np.ndarray:
        space = self._random_reset_space
        return self.rng.uniform(space.low, space.high)

    def _use_reset_space(self, low: np.ndarray, high: np.ndarray) -> None:
        """The original's reset space and flags: fresh random positions at every reset."""
        self._random_reset_space = Box(low, high, dtype=np.float64)
        self.rng = np.random.default_rng(0)
        self._partially_observable = False
        self._freeze_rand_vec = False
        self._set_task_called = True


class _PushV3(_SeededReset, SawyerPushEnvV3):
    """push-v3 with goals x in [-0.1, 0.1], y in [0.5, 0.9] (object start unchanged)."""

    def __init__(self) -> None:
        super().__init__()
        low, high = self._random_reset_space.low.copy(), self._random_reset_space.high.copy()
        low[3:5], high[3:5] = (-0.1, 0.5), (0.1, 0.9)  # [obj xyz, goal xyz]
        self._use_reset_space(low, high)


class _RandomSlides(_SeededReset):
    """Mixin: the goal is the handle at a uniform slide, then the start another uniform slide."""

    slide_range: tuple[float, float]
    goal_slide: float = 0.0
    start_slide: float = 0.0

    def set_slide(self, slide: float) -> None:
        raise NotImplementedError

    def reset_model(self) -> np.ndarray:
        super().reset_model()  # hand and body from Meta-World's reset
        self.goal_slide = float(self.rng.uniform(*self.slide_range))
        self.set_slide(self.goal_slide)
        self._target_pos = self._get_pos_objects().copy()
        self.start_slide = float(self.rng.uniform(*self.slide_range))
        self.set_slide(self.start_slide)
        return self._get_obs()


class _DrawerV3(_RandomSlides, SawyerDrawerCloseEnvV3):
    """drawer-close-v3 at x = 0; goal and start are independent uniform drawer slides."""

    slide_range = DRAWER_SLIDE

    def __init__(self) -> None:
        super().__init__()
        low, high = self._random_reset_space.low.copy(), self._random_reset_space.high.copy()
        low[0] = high[0] = 0.0  # drawer body x
        self._use_reset_space(low, high)

    def _get_pos_objects(self) -> np.ndarray:
        return self.data.body("drawer_link").xpos + DRAWER_HANDLE_OFFSET

    def set_slide(self, slide: float) -> None:
        self._set_obj_xyz(np.array(slide))  # sets the slide, then a forward pass


class _WindowV3(_RandomSlides, SawyerWindowOpenEnvV3):
    """window-open-v3 at (x, y) = (0, 0.8); goal and start are independent uniform slides."""

    slide_range = WINDOW_SLIDE

    def __init__(self) -> None:
        super().__init__()
        low, high = self._random_reset_space.low.copy(), self._random_reset_space.high.copy()
        low[:2] = high[:2] = (0.0, 0.8)  # window body xy
        self._use_reset_space(low, high)

    def set_slide(self, slide: float) -> None:
        """Put the window at ``slide`` (at rest) and recompute positions."""
        joint = self.data.joint("window_slide")
        joint.qpos = slide
        joint.qvel = 0.0
        mujoco.mj_forward(self.model, self.data)


class _BinV3(_SeededReset, SawyerBinPickingEnvV3):
    """bin-picking-v3 with the original's goal between the object and the target bin."""

    def __init__(self) -> None:
        super().__init__()
        self.task_goal = np.zeros(3)  # the original's goal for the block
        self._use_reset_space(self._random_reset_space.low, self._random_reset_space.high)

    def reset_model(self) -> np.ndarray:
        super().reset_model()  # hand, object start x in [-0.21, -0.03], y in [0.65, 0.75]
        bin_pos = self.data.body("bin_goal").xpos + self.rng.uniform(-0.05, 0.05, 3)
        obj_pos = self._get_pos_objects().copy()
        t = self.rng.random()
        goal = t * bin_pos + (1.0 - t) * obj_pos
        goal[2] = self.rng.uniform(0.03, 0.12)
        self.task_goal = goal
        return self._get_obs()


# ---------------------------------------------------------------------------------------------
# Host environments.


class SawyerEnv(HostEnv):
    """One Sawyer task; ``mw`` is its Meta-World v3 environment (positions in metres, float64)."""

    mw_class: type[_SeededReset]
    state_dim: int
    success_threshold: float
    success_dims: tuple[int, ...]  # the goal dimensions goal_distance measures

    def __init__(self, name: str) -> None:
        self.spec = EnvSpec(
            name=name,
            state_dim=self.state_dim,
            action_dim=4,
            episode_length=EPISODE_LENGTH,
            goal_start=0,
            goal_end=self.state_dim,
            success_threshold=self.success_threshold,
            obs_dtype="float32",
            success_dims=self.success_dims,
        )
        self.mw = self.mw_class()
        self._goal = np.zeros(self.state_dim, np.float32)

    # Positions read from the simulator.
    def _fingers(self) -> tuple[np.ndarray, np.ndarray]:
        data = self.mw.data
        return data.site("rightEndEffector").xpos, data.site("leftEndEffector").xpos

    def tcp(self) -> np.ndarray:
        """Midpoint of the two finger sites."""
        right, left = self._fingers()
        return (right + left) / 2.0

    def gripper_open(self) -> float:
        """Finger distance / 0.1, clipped to [0, 1] (1 = fully open)."""
        right, left = self._fingers()
        return float(np.clip(np.linalg.norm(right - left) / 0.1, 0.0, 1.0))

    def state(self) -> np.ndarray:
        """The agent's state now (float32)."""
        raise NotImplementedError

    def _make_goal(self) -> np.ndarray:
        raise NotImplementedError

    def reset(self, seed: int) -> tuple[np.ndarray, np.ndarray]:
        """Meta-World's reset with the original's changes, every draw from ``seed``."""
        mw = self.mw
        mw.seed(int(seed))  # Meta-World's own generators (unused by these resets)
        mw.rng = np.random.default_rng(int(seed))
        mujoco.mj_resetData(mw.model, mw.data)
        mw.curr_path_length = 0
        mw.reset_model()
        self._goal = self._make_goal().astype(np.float32)
        return self.state(), self._goal.copy()

    def step(self, action: np.ndarray) -> np.ndarray:
        """Move the mocap by 0.01 * action[:3] and drive the gripper with action[3]."""
        mw = self.mw
        action = np.clip(np.asarray(action, np.float64).reshape(4), -1.0, 1.0)
        mw.set_xyz_action(action[:3])
        mw.do_simulation(np.array([action[3], -action[3]]), mw.frame_skip)
        mujoco.mj_forward(mw.model, mw.data)  # positions of the new state, as Meta-World does
        return self.state()

    def close(self) -> None:
        self.mw.close()


class SawyerPush(SawyerEnv):
    """state = [tcp, puck, gripper_open]; goal = [target, target, 0.5]; 3-D puck-target distance."""

    mw_class = _PushV3
    state_dim = 7
    success_threshold = 0.05
    success_dims = (3, 4, 5)

    def puck(self) -> np.ndarray:
        return self.mw.data.body("obj").xpos

    def state(self) -> np.ndarray:
        return np.concatenate([self.tcp(), self.puck(), [self.gripper_open()]]).astype(np.float32)

    def _make_goal(self) -> np.ndarray:
        target = self.mw._target_pos
        return np.concatenate([target, target, [0.5]])

    def goal_distance(self) -> float:
        return float(np.linalg.norm(self.mw._target_pos - self.puck()))


class _HandleTask(SawyerEnv):
    """state = [tcp, handle along ``axis``]; goal = [goal handle, its ``axis``]; 1-D distance."""

    axis: int
    success_dims = (3,)

    def handle(self) -> np.ndarray:
        raise NotImplementedError

    def state(self) -> np.ndarray:
        return np.concatenate([self.tcp(), self.handle()[self.axis : self.axis + 1]]).astype(
            np.float32
        )

    def _make_goal(self) -> np.ndarray:
        target = self.mw._target_pos
        return np.concatenate([target, target[self.axis : self.axis + 1]])

    def goal_distance(self) -> float:
        return float(abs(self.handle()[self.axis] - self.mw._target_pos[self.axis]))


class SawyerDrawer(_HandleTask):
    """The drawer handle along y; success |dy| < 0.04."""

    mw_class = _DrawerV3
    state_dim = 4
    axis = 1
    success_threshold = 0.04  # of sawyer_drawer_image; the original state task never succeeded

    def handle(self) -> np.ndarray:
        return self.mw._get_pos_objects()


class SawyerWindow(_HandleTask):
    """The window handle along x; success |dx| < 0.05."""

    mw_class = _WindowV3
    state_dim = 4
    axis = 0
    success_threshold = 0.05  # of sawyer_window_image; the original state task never succeeded

    def handle(self) -> np.ndarray:
        return self.mw.data.site("handleOpenStart").xpos


class SawyerBin(SawyerEnv):
    """state = [hand, gripper_open, block]; goal = [g + (0, 0, 0.03), 0.4, g]; 3-D distance."""

    mw_class = _BinV3
    state_dim = 7
    success_threshold = 0.05
    success_dims = (4, 5, 6)

    def block(self) -> np.ndarray:
        return self.mw.data.body("obj").xpos

    def state(self) -> np.ndarray:
        hand = self.mw.data.body("hand").xpos
        return np.concatenate([hand, [self.gripper_open()], self.block()]).astype(np.float32)

    def _make_goal(self) -> np.ndarray:
        goal = self.mw.task_goal
        return np.concatenate([goal + np.array([0.0, 0.0, 0.03]), [0.4], goal])

    def goal_distance(self) -> float:
        return float(np.linalg.norm(self.mw.task_goal - self.block()))


SAWYER_TASKS: dict[str, type[SawyerEnv]] = {
    "sawyer_push": SawyerPush,
    "sawyer_drawer": SawyerDrawer,
    "sawyer_bin": SawyerBin,
    "sawyer_window": SawyerWindow,
}


def make_sawyer(name: str) -> SawyerEnv:
    """The Sawyer task called ``name`` (one of ``SAWYER_TASKS``)."""
    if name not in SAWYER_TASKS:
        raise ValueError(f"unknown Sawyer task {name!r}; valid choices: {', '.join(SAWYER_TASKS)}")
    return SAWYER_TASKS[name](name)
