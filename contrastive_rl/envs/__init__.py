"""Environment registry: every name of the original, its backends, and what is available today.

A backend says how an environment steps: ``jax`` (pure JAX, inside the jit-compiled loop),
``mjx`` (MuJoCo physics in JAX, inside the loop) or ``mujoco`` (MuJoCo's own bindings on the
CPU, in worker processes). ``auto`` picks the first backend an environment lists, except that
environments with an MJX version use it only when JAX runs on an accelerator.
"""

from __future__ import annotations

from contrastive_rl.envs.base import EnvSpec, EnvState, JaxEnv
from contrastive_rl.envs.host import HOST_ENVS, HostEnv, make_host_env
from contrastive_rl.envs.point import WALLS, PointMaze

POINT_ENVS = [f"point_{w}" for w in WALLS]
POINT_IMAGE_ENVS = [f"point_image_{w}" for w in WALLS]
SAWYER_ENVS = [f"sawyer_{t}" for t in ("push", "drawer", "bin", "window")]
FETCH_ENVS = ["fetch_reach", "fetch_push"]
ANT_ENVS = [f"ant_{m}" for m in ("umaze", "medium", "large")]

HOST_ENVS.update({name: "contrastive_rl.envs.sawyer:make_sawyer" for name in SAWYER_ENVS})
HOST_ENVS.update({name: "contrastive_rl.envs.fetch:make_fetch" for name in FETCH_ENVS})
HOST_ENVS.update({name: "contrastive_rl.envs.ant:make_ant_host" for name in ANT_ENVS})

# Backends of every available environment, the preferred one first.
BACKENDS: dict[str, tuple[str, ...]] = {
    **{name: ("jax",) for name in POINT_ENVS + POINT_IMAGE_ENVS},
    **{name: ("mujoco",) for name in SAWYER_ENVS + FETCH_ENVS},
    **{name: ("mujoco", "mjx") for name in ANT_ENVS},
}
BACKEND_CHOICES = ("auto", "jax", "mujoco", "mjx")

# Names of the original that later work adds, with where that work is tracked.
PLANNED: dict[str, str] = {
    **{
        f"sawyer_{t}_image": "planned: image observations"
        for t in ("push", "drawer", "bin", "window")
    },
    "fetch_reach_image": "planned: image observations",
    "fetch_push_image": "planned: image observations",
    **{
        f"offline_ant_{d}": "planned: offline datasets"
        for d in (
            "umaze",
            "umaze_diverse",
            "medium_play",
            "medium_diverse",
            "large_play",
            "large_diverse",
        )
    },
}

ENV_NAMES: list[str] = list(BACKENDS)
ENV_STATUS: dict[str, str] = {
    name: "ready (" + ", ".join(backends) + ")" for name, backends in BACKENDS.items()
} | PLANNED


def backend_error(name: str, backend: str) -> str | None:
    """Why ``backend`` cannot step ``name`` (None when it can, or when the name is unknown)."""
    if backend not in BACKEND_CHOICES:
        from contrastive_rl.config import closest

        return (
            f"unknown backend {backend!r}{closest(backend, list(BACKEND_CHOICES))}; "
            f"valid choices: {', '.join(BACKEND_CHOICES)}"
        )
    if name in BACKENDS and backend != "auto" and backend not in BACKENDS[name]:
        return (
            f"environment {name!r} has no {backend!r} backend; valid choices: auto, "
            + ", ".join(BACKENDS[name])
        )
    return None


def resolve_backend(name: str, backend: str = "auto") -> str:
    """The backend that will step ``name``: ``jax``, ``mjx`` or ``mujoco``."""
    problem = backend_error(name, backend)
    if problem:
        raise ValueError(problem)
    if backend != "auto":
        return backend
    choices = BACKENDS[name]
    if "mjx" in choices:
        import jax

        return "mjx" if jax.default_backend() != "cpu" else choices[0]
    return choices[0]


def make_env(name: str, backend: str = "auto") -> JaxEnv:
    """The JAX environment called ``name`` (point mazes; MJX versions with backend 'mjx')."""
    if name in PLANNED:
        raise ValueError(f"environment {name!r} is not available yet ({PLANNED[name]})")
    if name not in BACKENDS:
        from contrastive_rl.config import closest

        raise ValueError(
            f"unknown environment {name!r}{closest(name, list(ENV_STATUS))}; "
            f"valid choices: {', '.join(ENV_NAMES)}"
        )
    kind = resolve_backend(name, backend)
    if kind == "jax" and name in POINT_IMAGE_ENVS:
        from contrastive_rl.envs.point_image import PointImage

        return PointImage(name.removeprefix("point_image_"))
    if kind == "jax":
        return PointMaze(name.removeprefix("point_"))
    if kind == "mjx":
        from contrastive_rl.envs.ant import make_ant_mjx

        return make_ant_mjx(name)
    raise ValueError(f"environment {name!r} with backend {kind!r} steps on the host: use HostEnv")


__all__ = [
    "BACKENDS",
    "ENV_NAMES",
    "ENV_STATUS",
    "EnvSpec",
    "EnvState",
    "HOST_ENVS",
    "HostEnv",
    "JaxEnv",
    "PointMaze",
    "make_env",
    "make_host_env",
    "resolve_backend",
]
