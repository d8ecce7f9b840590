"""``crl video RUN_DIR``: the run's deterministic policy on fresh goals, as an MP4 or a GIF.

The policy is the latest checkpoint's actor (``contrastive_rl.load_policy``), acting with
``tanh(mean)`` as evaluation does, on episodes drawn from ``--seed`` (not the run's own). Point
mazes are drawn directly: walls, the success region around the goal, the path so far and the
point. MuJoCo tasks (Fetch, Sawyer, AntMaze; their image versions too) are rendered headless
by MuJoCo (``envs/render.py``: EGL unless ``MUJOCO_GL`` says otherwise), the goal shown as a
translucent green sphere of the success radius (a disc on the floor for AntMaze). Under each
frame a caption gives the episode, the step, the distance to the goal and whether it has been
reached. Each episode gives ``episode_length + 1`` frames (the start, then every step).

Needs the optional extra ``plot`` (imageio, its ffmpeg and Pillow); MuJoCo tasks their own.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import Any

import numpy as np

from contrastive_rl.config import ConfigError
from contrastive_rl.envs.registry import install_hint

FORMATS = ("mp4", "gif")
CAPTION_HEIGHT = 40
BLOCK = 16  # frame sizes are padded to multiples of this (what H.264 encoders want)
GOAL_RGBA = (0.1, 0.8, 0.2, 0.35)


def import_imageio() -> Any:
    try:
        import imageio.v2 as imageio
        from PIL import Image  # noqa: F401 - imageio's dependency, used for drawing
    except ImportError:
        raise ConfigError(
            f"videos need the optional dependencies imageio and Pillow; install them with: "
            f"{install_hint('plot')}"
        ) from None
    return imageio


# -- point mazes: drawn with Pillow -------------------------------------------------------------


class PointScene:
    """A point maze (state or image version) stepped in JAX and drawn from above."""

    def __init__(self, name: str, seed: int, cell_px: int = 32):
        import jax

        from contrastive_rl.envs import make_env

        self.env = make_env(name)
        self.spec = self.env.spec
        self.cell = cell_px
        self.walls = np.asarray(self.env.walls)
        self._key = jax.random.key(seed)
        self._reset = jax.jit(self.env.reset)
        self._step = jax.jit(self.env.step)
        self._distance = jax.jit(self.env.goal_distance)

    def reset(self) -> None:
        import jax

        self._key, key = jax.random.split(self._key)
        self.env_state = self._reset(key)
        self.path = [np.asarray(self.env_state.state)]

    def observation(self) -> np.ndarray:
        s = self.env_state
        obs = [self.spec.observe(s.state), self.spec.observe_goal(s.goal)]
        return np.concatenate([np.asarray(o) for o in obs])

    def step(self, action: np.ndarray) -> None:
        import jax

        self._key, key = jax.random.split(self._key)
        self.env_state = self._step(self.env_state, action, key)
        self.path.append(np.asarray(self.env_state.state))

    def distance(self) -> float:
        return float(self._distance(self.env_state))

    def frame(self) -> np.ndarray:
        goal = np.asarray(self.env_state.goal)
        return draw_maze(self.walls, goal, self.path, self.spec.success_threshold, self.cell)


def draw_maze(
    walls: np.ndarray,
    goal: np.ndarray,
    path: list[np.ndarray],
    radius: float,
    cell: int,
) -> np.ndarray:
    """A maze from above, ``[(H + 1) * cell, (W + 1) * cell, 3]`` uint8: walls and a half-cell
    border (the box's edge), the goal and its success circle (``radius`` in maze units, green),
    the path so far (blue) and the point at its end (red). Positions are (row, col)."""
    from PIL import Image, ImageDraw

    c, (h, w), m = cell, walls.shape, cell // 2
    wall = (60, 60, 70)
    image = Image.new("RGB", (w * c + 2 * m, h * c + 2 * m), wall)
    draw = ImageDraw.Draw(image)
    draw.rectangle([m, m, m + w * c - 1, m + h * c - 1], (245, 245, 240))
    for row, col in np.argwhere(walls == 1):
        x, y = m + col * c, m + row * c
        draw.rectangle([x, y, x + c - 1, y + c - 1], wall)

    def xy(p: np.ndarray) -> tuple[float, float]:  # (row, col) -> pixel (x, y)
        return float(m + p[1] * c), float(m + p[0] * c)

    gx, gy = xy(goal)
    r = radius * c
    draw.ellipse([gx - r, gy - r, gx + r, gy + r], outline=(40, 160, 60), width=2)
    draw.rectangle([0, 0, image.width - 1, image.height - 1], outline=wall, width=m)
    draw.ellipse([gx - 5, gy - 5, gx + 5, gy + 5], fill=(40, 160, 60))
    if len(path) > 1:
        draw.line([xy(p) for p in path], fill=(70, 110, 220), width=2)
    px, py = xy(path[-1])
    draw.ellipse([px - 6, py - 6, px + 6, py + 6], fill=(220, 50, 50))
    return np.asarray(image)


# -- MuJoCo tasks: rendered by MuJoCo -----------------------------------------------------------


def _simulator(env: Any) -> tuple[Any, Any]:
    """``(model, data)`` of a host environment (Fetch, Sawyer, their image versions, AntMaze)."""
    for owner in (getattr(env, "gym_env", None), getattr(env, "mw", None), env):
        if owner is not None and hasattr(owner, "model") and hasattr(owner, "data"):
            return owner.model, owner.data
    raise ConfigError(f"{env.spec.name}: no MuJoCo simulator to render")


def _goal(env: Any) -> np.ndarray | None:
    """Where the goal is in the world (3-D), by task; None where no point marks it."""
    name = env.spec.name
    if name.endswith("_image"):
        return None if name == "sawyer_window_image" else np.asarray(env.goal, np.float64)
    if name.startswith("fetch_"):
        return np.asarray(env.gym_env.goal, np.float64)
    if name == "sawyer_bin":
        return np.asarray(env.mw.task_goal, np.float64)
    if name.startswith("sawyer_"):
        return np.asarray(env.mw._target_pos, np.float64)
    if name.startswith("ant_"):
        return np.array([env.goal[0], env.goal[1], 0.0])
    return None


def _camera(env: Any) -> Any:
    from contrastive_rl.envs.render import FreeCamera

    name = env.spec.name
    if name.startswith("fetch_"):
        return FreeCamera((1.3, 0.75, 0.55), distance=1.6, azimuth=150.0, elevation=-25.0)
    if name.startswith("sawyer_"):
        return FreeCamera((0.0, 0.7, 0.1), distance=1.2, azimuth=140.0, elevation=-30.0)
    low, high = (np.asarray(v, np.float64) for v in env.layout.free_box())
    centre, extent = (low + high) / 2, float(np.max(high - low))
    return FreeCamera((centre[0], centre[1], 0.0), 1.25 * extent, azimuth=90.0, elevation=-89.0)


class MujocoScene:
    """A host environment stepped on the CPU and rendered by MuJoCo at ``size`` pixels."""

    HIDDEN_SITES = ("target0", "goal")  # Fetch's and Meta-World's own goal markers

    def __init__(self, name: str, seed: int, size: int = 320):
        from contrastive_rl.envs.host import make_host_env
        from contrastive_rl.envs.render import SceneRenderer

        self.env = make_host_env(name)
        self.spec = self.env.spec
        model, self.data = _simulator(self.env)
        sites = tuple(s for s in self.HIDDEN_SITES if _has_site(model, s))
        mocap = tuple(  # Fetch's mocap "lasers": long thin boxes across the scene
            g for g in range(model.ngeom) if "mocap" in model.body(model.geom_bodyid[g]).name
        )
        self.renderer = SceneRenderer(
            model, _camera(self.env), size, hide_geoms=mocap, hide_sites=sites
        )
        self._seeds = np.random.default_rng(seed)

    def reset(self) -> None:
        self.state, self.goal = self.env.reset(int(self._seeds.integers(2**31)))

    def observation(self) -> np.ndarray:
        return np.concatenate([self.state, self.goal])

    def step(self, action: np.ndarray) -> None:
        self.state = self.env.step(action)

    def distance(self) -> float:
        return float(self.env.goal_distance())

    def frame(self) -> np.ndarray:
        from contrastive_rl.envs.render import Marker

        goal, r = _goal(self.env), self.spec.success_threshold
        markers = ()
        if goal is not None and self.spec.name.startswith("ant_"):
            markers = (Marker(tuple(goal), (r, 0.01, 0.0), GOAL_RGBA, kind=5),)
        elif goal is not None:
            markers = (Marker(tuple(goal), (r, r, r), GOAL_RGBA),)
        return self.renderer.render(self.data, markers)

    def close(self) -> None:
        self.renderer.close()
        self.env.close()


def _has_site(model: Any, name: str) -> bool:
    import mujoco

    return mujoco.mj_name2id(model, mujoco.mjtObj.mjOBJ_SITE, name) >= 0


# -- frames, captions, files --------------------------------------------------------------------


def caption(frame: np.ndarray, lines: list[str], reached: bool) -> np.ndarray:
    """``frame`` above a caption bar, padded to multiples of ``BLOCK`` pixels."""
    from PIL import Image, ImageDraw, ImageFont

    h, w = frame.shape[:2]
    height = -(-(h + CAPTION_HEIGHT) // BLOCK) * BLOCK
    width = -(-w // BLOCK) * BLOCK
    canvas = Image.new("RGB", (width, height), (255, 255, 255))
    canvas.paste(Image.fromarray(np.ascontiguousarray(frame[..., :3])), (0, 0))
    draw = ImageDraw.Draw(canvas)
    font = ImageFont.load_default()
    for i, text in enumerate(lines):
        color = (20, 140, 40) if reached and i == len(lines) - 1 else (20, 20, 20)
        draw.text((4, h + 4 + 16 * i), text, fill=color, font=font)
    return np.asarray(canvas)


def rollouts(
    scene: Any, policy: Callable[[np.ndarray], np.ndarray], episodes: int, title: str
) -> tuple[list[np.ndarray], list[dict[str, float]]]:
    """Frames of ``episodes`` episodes and, per episode, success and final distance."""
    frames, stats = [], []
    steps = scene.spec.episode_length
    for e in range(episodes):
        scene.reset()
        reached, distance = False, scene.distance()
        for t in range(steps + 1):
            if t:
                scene.step(policy(scene.observation()))
                distance = scene.distance()
            reached |= distance < scene.spec.success_threshold
            status = "goal reached" if reached else "goal not reached"
            line = f"episode {e + 1}/{episodes}  step {t}/{steps}  distance {distance:.3f}  "
            frames.append(caption(scene.frame(), [title, line + status], reached))
        stats.append({"success": float(reached), "final_distance": distance})
    return frames, stats


def write_video(frames: list[np.ndarray], path: str, fps: int, fmt: str) -> None:
    imageio = import_imageio()
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    if fmt == "gif":
        imageio.mimsave(path, frames, format="GIF", duration=1000.0 / fps, loop=0)
        return
    with imageio.get_writer(
        path, format="FFMPEG", fps=fps, codec="libx264", quality=7, macro_block_size=BLOCK
    ) as writer:
        for frame in frames:
            writer.append_data(frame)


def frame_strip(frames: list[np.ndarray], count: int, path: str, gap: int = 4) -> str:
    """``count`` frames spread evenly over ``frames``, side by side, as a PNG (for a README)."""
    imageio = import_imageio()
    picks = np.linspace(0, len(frames) - 1, count).round().astype(int)
    h, _, _ = frames[0].shape
    spacer = np.full((h, gap, 3), 255, np.uint8)
    parts = []
    for i in picks:
        parts += [frames[i][..., :3], spacer]
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    imageio.imwrite(path, np.concatenate(parts[:-1], axis=1), format="PNG")
    return path


def make_video(
    run_dir: str,
    out: str | None = None,
    episodes: int = 3,
    fps: int = 20,
    fmt: str | None = None,
    seed: int = 1000,
    size: int = 320,
    strip: str | None = None,
    strip_frames: int = 6,
) -> dict[str, Any]:
    """Everything ``crl video`` does; returns the file, frame count and per-episode results."""
    from contrastive_rl.api import load_policy
    from contrastive_rl.envs.registry import POINT_ENVS, POINT_IMAGE_ENVS

    fmt = fmt or (os.path.splitext(out)[1].lstrip(".").lower() if out else "mp4")
    if fmt not in FORMATS:
        raise ConfigError(f"unknown video format {fmt!r}; valid choices: {', '.join(FORMATS)}")
    if episodes < 1 or fps < 1:
        raise ConfigError(f"--episodes and --fps must be positive, got {episodes} and {fps}")
    import_imageio()
    out = out or os.path.join(run_dir, f"video.{fmt}")
    policy = load_policy(run_dir, seed=seed)
    name = policy.config.env
    if name in POINT_ENVS or name in POINT_IMAGE_ENVS:
        scene: Any = PointScene(name, seed, cell_px=max(8, size // max(policy_walls(name))))
    else:
        scene = MujocoScene(name, seed, size)
    try:
        title = f"{name}  {policy.config.alg}  {policy.env_steps:,} env steps"
        frames, stats = rollouts(scene, policy, episodes, title)
    finally:
        if hasattr(scene, "close"):
            scene.close()
    write_video(frames, out, fps, fmt)
    result = {"video": out, "frames": len(frames), "episodes": stats}
    if strip:
        length = scene.spec.episode_length + 1
        result["strip"] = frame_strip(frames[:length], strip_frames, strip)
    return result


def policy_walls(name: str) -> tuple[int, int]:
    from contrastive_rl.envs.point import WALLS

    return WALLS[name.removeprefix("point_image_").removeprefix("point_")].shape
