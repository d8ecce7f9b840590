"""Environment registry: every name of the original, with what is available today."""

from __future__ import annotations

from contrastive_rl.envs.base import EnvSpec, EnvState, JaxEnv
from contrastive_rl.envs.point import WALLS, PointMaze

POINT_ENVS = [f"point_{w}" for w in WALLS]

# Names of the original that later work adds, with where that work is tracked.
PLANNED: dict[str, str] = {
    **{f"point_image_{w}": "planned: image observations" for w in WALLS},
    **{f"sawyer_{t}": "planned: issue 3 (Meta-World)" for t in ("push", "drawer", "bin", "window")},
    **{
        f"sawyer_{t}_image": "planned: image observations"
        for t in ("push", "drawer", "bin", "window")
    },
    "fetch_reach": "planned: issue 3 (Gymnasium-Robotics)",
    "fetch_push": "planned: issue 3 (Gymnasium-Robotics)",
    "fetch_reach_image": "planned: image observations",
    "fetch_push_image": "planned: image observations",
    **{f"ant_{m}": "planned: issue 4 (MuJoCo / MJX)" for m in ("umaze", "medium", "large")},
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

ENV_NAMES: list[str] = list(POINT_ENVS)
ENV_STATUS: dict[str, str] = {name: "ready (JAX)" for name in POINT_ENVS} | PLANNED


def make_env(name: str) -> JaxEnv:
    """The environment called ``name``; a clear error for unknown or not-yet-available names."""
    if name in POINT_ENVS:
        return PointMaze(name.removeprefix("point_"))
    if name in PLANNED:
        raise ValueError(f"environment {name!r} is not available yet ({PLANNED[name]})")
    from contrastive_rl.config import closest

    raise ValueError(
        f"unknown environment {name!r}{closest(name, list(ENV_STATUS))}; "
        f"valid choices: {', '.join(ENV_NAMES)}"
    )


__all__ = ["ENV_NAMES", "ENV_STATUS", "EnvSpec", "EnvState", "JaxEnv", "PointMaze", "make_env"]
