"""Environments: the registry of names (light), the JAX and host contracts, the factories.

Importing this package reads only the registry (``registry.py``, plain Python). The contract
classes and factories below import JAX or a simulator on first use, so ``crl list`` and config
validation stay fast and a core install never touches a simulator it does not have.

May import: nothing else of contrastive_rl (every other part builds on the environments).
"""

from __future__ import annotations

import importlib
from typing import Any

from contrastive_rl.envs.registry import (
    ANT_ENVS,
    BACKEND_CHOICES,
    BACKENDS,
    ENV_EXTRA,
    ENV_NAMES,
    ENV_STATUS,
    FETCH_ENVS,
    HOST_ENVS,
    IMAGE_ENVS,
    MUJOCO_IMAGE_ENVS,
    OFFLINE_ANT_ENVS,
    OFFLINE_ENVS,
    OFFLINE_POINT_ENVS,
    OFFLINE_POINT_STITCH_ENVS,
    PLANNED,
    POINT_ENVS,
    POINT_IMAGE_ENVS,
    SAWYER_ENVS,
    STATE_ENVS,
    backend_error,
    is_offline,
    requirements_error,
    resolve_backend,
    unknown_env_error,
)
from contrastive_rl.envs.spec import EnvSpec

# Names imported on first use, with the module that holds them.
_LAZY = {
    "EnvState": "contrastive_rl.envs.base",
    "JaxEnv": "contrastive_rl.envs.base",
    "HostEnv": "contrastive_rl.envs.host",
    "make_host_env": "contrastive_rl.envs.host",
    "PointMaze": "contrastive_rl.envs.point",
    "make_gym": "contrastive_rl.envs.gym",
}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def make_env(name: str, backend: str = "auto") -> Any:
    """The JAX environment called ``name`` (point mazes; MJX versions with backend 'mjx')."""
    kind = resolve_backend(name, backend)  # refuses unknown and planned names
    problem = requirements_error(name, kind)
    if problem:
        raise ValueError(problem)
    if kind == "jax" and name in OFFLINE_POINT_STITCH_ENVS:  # far start-goal pairs only
        from contrastive_rl.envs.point_stitch import FarGoalPointMaze

        return FarGoalPointMaze(name.removeprefix("offline_point_").removesuffix("_stitch"))
    if kind == "jax" and name in OFFLINE_POINT_ENVS:  # evaluated in the point maze itself
        from contrastive_rl.envs.point import PointMaze

        return PointMaze(name.removeprefix("offline_point_"))
    if kind == "jax" and name in POINT_IMAGE_ENVS:
        from contrastive_rl.envs.point_image import PointImage

        return PointImage(name.removeprefix("point_image_"))
    if kind == "jax":
        from contrastive_rl.envs.point import PointMaze

        return PointMaze(name.removeprefix("point_"))
    if kind == "mjx":
        from contrastive_rl.envs.ant import make_ant_mjx

        return make_ant_mjx(name)
    raise ValueError(f"environment {name!r} with backend {kind!r} steps on the host: use HostEnv")


def env_spec(name: str, backend: str = "auto") -> EnvSpec:
    """The spec of ``name`` as ``backend`` steps it (builds one environment in this process)."""
    if resolve_backend(name, backend) != "mujoco":
        return make_env(name, backend).spec
    from contrastive_rl.envs.host import make_host_env

    env = make_host_env(name)
    try:
        return env.spec
    finally:
        env.close()


__all__ = [
    "ANT_ENVS",
    "BACKEND_CHOICES",
    "BACKENDS",
    "ENV_EXTRA",
    "ENV_NAMES",
    "ENV_STATUS",
    "FETCH_ENVS",
    "HOST_ENVS",
    "IMAGE_ENVS",
    "MUJOCO_IMAGE_ENVS",
    "OFFLINE_ANT_ENVS",
    "OFFLINE_ENVS",
    "OFFLINE_POINT_ENVS",
    "OFFLINE_POINT_STITCH_ENVS",
    "PLANNED",
    "POINT_ENVS",
    "POINT_IMAGE_ENVS",
    "SAWYER_ENVS",
    "STATE_ENVS",
    "EnvSpec",
    "backend_error",
    "env_spec",
    "is_offline",
    "make_env",
    "requirements_error",
    "resolve_backend",
    "unknown_env_error",
    *_LAZY,
]
