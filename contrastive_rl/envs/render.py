"""Small uint8 images of MuJoCo scenes, rendered headless in the process that owns the simulator.

An OpenGL context belongs to one thread, so every worker process opens its own. The backend is
``MUJOCO_GL`` when the user set it, else ``egl`` (headless; on a machine without a GPU Mesa's
llvmpipe renders in software). If it cannot start, ``RenderBackendError`` says which backends
were tried, why each failed, and which Debian packages provide them. Only that one backend is
opened in this process (PyOpenGL binds one platform per process); when the default fails,
``osmesa`` is probed in a subprocess to say whether it works here, never switched to silently.

Rendering is MuJoCo's own (``mjv_updateScene`` / ``mjr_render``) on a context opened for the
chosen backend explicitly, so it works whatever ``MUJOCO_GL`` was when ``mujoco`` was imported.
"""

from __future__ import annotations

import os
import subprocess
import sys
from dataclasses import dataclass
from typing import Any

import numpy as np

GL_BACKENDS = ("egl", "osmesa", "glfw")
DEFAULT_GL = "egl"
# What each backend needs on Debian/Ubuntu (apt-get install ...).
GL_PACKAGES = {
    "egl": "libegl1 libegl-mesa0 libgl1-mesa-dri",
    "osmesa": "libosmesa6",
    "glfw": "libglfw3 and a display (X11)",
}
# Meta-World's models ask for 4096x4096 shadow maps, which llvmpipe draws at ~7 frames/s; at
# 64x64 a 1024 map gives the same image (mean absolute difference 0.08 of 255) twice as fast
# (docs/images_mujoco.md).
SHADOW_MAP_SIZE = 1024


class RenderBackendError(RuntimeError):
    """No OpenGL backend for MuJoCo could start on this machine."""


def _install_hint(backends: list[str]) -> str:
    return "; ".join(f"{b}: apt-get install {GL_PACKAGES[b]}" for b in backends)


def requested_backend() -> tuple[str, bool]:
    """``(backend, chosen_by_user)``: ``MUJOCO_GL`` if set (validated), else ``egl``."""
    value = os.environ.get("MUJOCO_GL", "").strip().lower()
    if not value:
        return DEFAULT_GL, False
    if value not in GL_BACKENDS:
        raise RenderBackendError(
            f"MUJOCO_GL={value!r} is not a rendering backend MuJoCo images can use; valid "
            f"choices: {', '.join(GL_BACKENDS)} (tried: none). Unset MUJOCO_GL for the default "
            f"'egl', or install a backend ({_install_hint(list(GL_BACKENDS))})"
        )
    return value, True


def _open_context(backend: str, width: int, height: int) -> Any:
    """An OpenGL context of ``backend``, current on this thread."""
    if backend == "egl":
        from mujoco.egl import GLContext
    elif backend == "osmesa":
        from mujoco.osmesa import GLContext
    else:
        from mujoco.glfw import GLContext
    context = GLContext(width, height)
    context.make_current()
    return context


_PROBE = (
    "import mujoco, sys; from contrastive_rl.envs.render import _open_context; "
    "m = mujoco.MjModel.from_xml_string('<mujoco/>'); context = _open_context(sys.argv[1], 8, 8); "
    "mujoco.MjrContext(m, mujoco.mjtFontScale.mjFONTSCALE_100)"
)


def probe_backend(backend: str, timeout_s: float = 60.0) -> str | None:
    """Why ``backend`` cannot render here (its last error line), or None when it can.

    Runs in a subprocess: PyOpenGL cannot switch platforms inside one process.
    """
    env = {k: v for k, v in os.environ.items() if k != "PYOPENGL_PLATFORM"}
    env["MUJOCO_GL"] = backend
    env["PYTHONPATH"] = os.pathsep.join(p for p in sys.path if p)
    try:
        done = subprocess.run(
            [sys.executable, "-c", _PROBE, backend],
            env=env,
            capture_output=True,
            text=True,
            timeout=timeout_s,
        )
    except subprocess.TimeoutExpired:
        return f"did not start within {timeout_s:g} s"
    if done.returncode == 0:
        return None
    lines = done.stderr.strip().splitlines()
    return lines[-1] if lines else f"exit code {done.returncode}"


def open_gl_context(width: int, height: int) -> tuple[Any, str]:
    """``(context, backend)`` for rendering here; ``RenderBackendError`` if none starts."""
    backend, by_user = requested_backend()
    try:
        return _open_context(backend, width, height), backend
    except Exception as error:  # noqa: BLE001 - every cause of a failed start is reported
        reason = f"{type(error).__name__}: {error}".strip().splitlines()[-1]
    failures = {backend: reason}
    works = []
    if not by_user:
        for other in GL_BACKENDS[1:2]:  # osmesa; glfw needs a display, never there headless
            failures[other] = probe_backend(other) or "works"
            works += [other] if failures[other] == "works" else []
    tried = "; ".join(f"MUJOCO_GL={b}: {why}" for b, why in failures.items())
    advice = (
        f"set MUJOCO_GL={works[0]} to use it"
        if works
        else f"install the system libraries ({_install_hint(list(failures))})"
    )
    raise RenderBackendError(
        f"no OpenGL backend could render MuJoCo images (tried {tried}); {advice}"
    )


@dataclass(frozen=True)
class FixedCamera:
    """A camera of the model, by name, with the fields the original overrode (None: keep)."""

    name: str
    pos: tuple[float, float, float] | None = None
    fovy: float | None = None
    quat: tuple[float, float, float, float] | None = None


@dataclass(frozen=True)
class FreeCamera:
    """A viewer camera looking at ``lookat`` (metres, degrees), like mujoco-py's viewer."""

    lookat: tuple[float, float, float]
    distance: float
    azimuth: float
    elevation: float


@dataclass(frozen=True)
class Marker:
    """A geom drawn into a rendered scene only: ``kind`` an ``mjtGeom`` (2 sphere, 5 cylinder),
    ``size`` as MuJoCo's geom size, ``pos`` in world coordinates."""

    pos: tuple[float, float, float]
    size: tuple[float, float, float]
    rgba: tuple[float, float, float, float]
    kind: int = 2


class SceneRenderer:
    """Renders one model from one camera to ``[size, size, 3]`` uint8.

    Hidden geoms and sites get alpha 0 (MuJoCo skips them when drawing). ``rows_top_down``:
    True returns the picture as the camera sees it; False returns OpenGL's rows (bottom row
    first) as mujoco-py's offscreen render did, which Meta-World's cameras were set up for.
    ``reflections``: False skips MuJoCo's mirror passes (one more drawing of the whole scene
    for each reflective plane or box), for cameras that never see a reflecting surface: the
    image tasks' pictures are then bit for bit the same, about a fifth cheaper for Sawyer
    (docs/images_mujoco.md). The offscreen buffer is ``size`` square, not the model's
    ``offwidth`` x ``offheight`` (640x480 for Meta-World): the same pixels, less to clear.
    """

    def __init__(
        self,
        model: Any,
        camera: FixedCamera | FreeCamera,
        size: int = 64,
        hide_geoms: tuple[int, ...] = (),
        hide_sites: tuple[str, ...] = (),
        rows_top_down: bool = True,
        reflections: bool = True,
    ):
        import mujoco

        self.model, self.size, self.rows_top_down = model, size, rows_top_down
        self.reflections = reflections
        self.camera = self._camera(mujoco, model, camera)
        for geom in hide_geoms:
            model.geom_rgba[geom, 3] = 0.0
        for site in hide_sites:
            model.site(site).rgba[3] = 0.0
        model.vis.quality.shadowsize = min(model.vis.quality.shadowsize, SHADOW_MAP_SIZE)
        self._gl, self.backend = open_gl_context(size, size)
        self._mjr = self._context(mujoco, model, size)
        mujoco.mjr_setBuffer(mujoco.mjtFramebuffer.mjFB_OFFSCREEN, self._mjr)
        self._scene = mujoco.MjvScene(model, maxgeom=2000)
        self._scene.flags[mujoco.mjtRndFlag.mjRND_REFLECTION] = reflections
        self._option = mujoco.MjvOption()
        self._rect = mujoco.MjrRect(0, 0, size, size)
        self._pixels = np.zeros((size, size, 3), np.uint8)

    @staticmethod
    def _context(mujoco: Any, model: Any, size: int) -> Any:
        """MuJoCo's GL resources for ``model``, with an offscreen buffer of one picture."""
        buffer = model.vis.global_
        wanted = (buffer.offwidth, buffer.offheight)
        buffer.offwidth = buffer.offheight = size
        try:
            return mujoco.MjrContext(model, mujoco.mjtFontScale.mjFONTSCALE_100)
        finally:  # the model keeps its own size for anyone else who renders it
            buffer.offwidth, buffer.offheight = wanted

    @staticmethod
    def _camera(mujoco: Any, model: Any, camera: FixedCamera | FreeCamera) -> Any:
        cam = mujoco.MjvCamera()
        if isinstance(camera, FreeCamera):
            cam.type = mujoco.mjtCamera.mjCAMERA_FREE
            cam.lookat[:] = camera.lookat
            cam.distance, cam.azimuth, cam.elevation = (
                camera.distance,
                camera.azimuth,
                camera.elevation,
            )
            return cam
        index = mujoco.mj_name2id(model, mujoco.mjtObj.mjOBJ_CAMERA, camera.name)
        if index < 0:
            names = [model.camera(i).name for i in range(model.ncam)]
            raise ValueError(f"no camera {camera.name!r}; valid choices: {', '.join(names)}")
        if camera.pos is not None:
            model.cam_pos[index] = camera.pos
        if camera.fovy is not None:
            model.cam_fovy[index] = camera.fovy
        if camera.quat is not None:
            model.cam_quat[index] = camera.quat
        cam.type, cam.fixedcamid = mujoco.mjtCamera.mjCAMERA_FIXED, index
        return cam

    def render(self, data: Any, markers: tuple[Marker, ...] = ()) -> np.ndarray:
        """The scene of ``data`` now (positions as last computed by a forward pass), with
        ``markers`` drawn into it (e.g. the goal in a video; they never touch the model)."""
        import mujoco

        self._gl.make_current()
        mujoco.mjv_updateScene(
            self.model,
            data,
            self._option,
            None,
            self.camera,
            mujoco.mjtCatBit.mjCAT_ALL,
            self._scene,
        )
        for marker in markers:
            if self._scene.ngeom >= self._scene.maxgeom:
                break
            mujoco.mjv_initGeom(
                self._scene.geoms[self._scene.ngeom],
                int(marker.kind),
                np.asarray(marker.size, np.float64),
                np.asarray(marker.pos, np.float64),
                np.eye(3).reshape(-1),
                np.asarray(marker.rgba, np.float32),
            )
            self._scene.ngeom += 1
        mujoco.mjr_render(self._rect, self._scene, self._mjr)
        mujoco.mjr_readPixels(self._pixels, None, self._rect, self._mjr)
        return (self._pixels[::-1] if self.rows_top_down else self._pixels).copy()

    def image_up(self) -> np.ndarray:
        """The world direction pointing up in the images returned (as of the last render)."""
        up = np.array(self._scene.camera[0].up, np.float64)
        return up if self.rows_top_down else -up

    def close(self) -> None:
        if self._gl is not None:
            self._mjr.free()
            self._gl.free()
            self._gl = None
