"""Image versions of the host tasks: the agent sees 64x64x3 uint8 pictures of the scene.

Each image task wraps its state task (``envs/sawyer.py``, ``envs/fetch.py``) for the simulator,
its actions and its positions, and adds what the original's image versions changed: a camera,
hidden markers, a scripted reset and its own success rule. As in the original, the goal is a
picture of a scene: at every reset the scene is first physically placed in a goal configuration
and rendered, then reset again for the start. The goal scene's MuJoCo state is kept
(``goal_physics``), so the goal image can be re-rendered and checked.

State = the current image flattened in HWC order (12288 uint8), goal = the goal image, the
layout of ``EnvSpec.image_shape``. Rendering happens in the process that steps the simulator
(``envs/render.py``).
"""

from __future__ import annotations

import importlib
from typing import Any

import numpy as np

from contrastive_rl.envs import render
from contrastive_rl.envs.host import HostEnv
from contrastive_rl.envs.spec import EnvSpec

IMAGE_SHAPE = (64, 64, 3)

# name -> module building it (imported only when built: a simulator and a GL context).
IMAGE_FAMILIES = {
    "sawyer_push_image": "contrastive_rl.envs.sawyer_image",
    "sawyer_drawer_image": "contrastive_rl.envs.sawyer_image",
    "sawyer_bin_image": "contrastive_rl.envs.sawyer_image",
    "sawyer_window_image": "contrastive_rl.envs.sawyer_image",
    "fetch_reach_image": "contrastive_rl.envs.fetch_image",
    "fetch_push_image": "contrastive_rl.envs.fetch_image",
}


def image_spec(name: str, episode_length: int, success_threshold: float) -> EnvSpec:
    """The spec of an image task: state and goal are whole images."""
    size = int(np.prod(IMAGE_SHAPE))
    return EnvSpec(
        name=name,
        state_dim=size,
        action_dim=4,
        episode_length=episode_length,
        goal_start=0,
        goal_end=size,
        success_threshold=success_threshold,
        obs_dtype="uint8",
        image_shape=IMAGE_SHAPE,
    )


class ImageHostEnv(HostEnv):
    """A state task seen through a camera. Subclasses set the scene scripts and the distance.

    ``reset`` draws everything from one generator seeded by ``seed``: the goal scene (a fresh
    state-task reset then ``_place_goal``), its picture, then the start scene (another reset
    then ``_place_start``).
    """

    task: HostEnv
    camera: render.FixedCamera | render.FreeCamera
    renderer: render.SceneRenderer
    goal_physics: np.ndarray
    goal_image: np.ndarray

    @property
    def model(self) -> Any:
        raise NotImplementedError

    @property
    def data(self) -> Any:
        raise NotImplementedError

    def _place_goal(self, rng: np.random.Generator) -> None:
        """Script the freshly reset scene into the goal configuration; record the goal."""
        raise NotImplementedError

    def _place_start(self, rng: np.random.Generator) -> None:
        """Script the freshly reset scene into the start configuration."""
        raise NotImplementedError

    def _fresh_scene(self, rng: np.random.Generator) -> None:
        self.task.reset(int(rng.integers(2**31)))

    def image(self) -> np.ndarray:
        """What the camera sees now, flattened (12288 uint8)."""
        return self.renderer.render(self.data).reshape(-1)

    def reset(self, seed: int) -> tuple[np.ndarray, np.ndarray]:
        rng = np.random.default_rng(int(seed))
        self._fresh_scene(rng)
        self._place_goal(rng)
        self.goal_physics = self.physics()
        self.goal_image = self.image()
        self._fresh_scene(rng)
        self._place_start(rng)
        return self.image(), self.goal_image.copy()

    def step(self, action: np.ndarray) -> np.ndarray:
        self.task.step(action)
        return self.image()

    # -- the scene's MuJoCo state ----------------------------------------------------------------
    def physics(self) -> np.ndarray:
        """Everything that integrates the scene (positions, velocities, mocap, controls)."""
        import mujoco

        what = mujoco.mjtState.mjSTATE_INTEGRATION
        state = np.empty(mujoco.mj_stateSize(self.model, what))
        mujoco.mj_getState(self.model, self.data, state, what)
        return state

    def set_physics(self, state: np.ndarray) -> None:
        import mujoco

        mujoco.mj_setState(self.model, self.data, state, mujoco.mjtState.mjSTATE_INTEGRATION)
        mujoco.mj_forward(self.model, self.data)

    def render_physics(self, state: np.ndarray) -> np.ndarray:
        """The picture of the scene in ``state`` (e.g. ``goal_physics``); the scene is restored."""
        now = self.physics()
        self.set_physics(state)
        picture = self.image()
        self.set_physics(now)
        return picture

    def close(self) -> None:
        self.renderer.close()
        self.task.close()


def make_image_env(name: str) -> ImageHostEnv:
    """The image task called ``name``; checks ``MUJOCO_GL`` before MuJoCo is imported."""
    if name not in IMAGE_FAMILIES:
        raise ValueError(
            f"unknown MuJoCo image task {name!r}; valid choices: {', '.join(IMAGE_FAMILIES)}"
        )
    render.requested_backend()
    return importlib.import_module(IMAGE_FAMILIES[name]).make(name)
