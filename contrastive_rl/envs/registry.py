"""Every environment name of the original, how it steps, and what it needs installed.

Plain Python: the command line, config validation and ``crl list`` read this without importing
JAX or any simulator. A backend says how an environment steps: ``jax`` (pure JAX, inside the
jit-compiled loop), ``mjx`` (MuJoCo physics in JAX, inside the loop) or ``mujoco`` (MuJoCo's own
bindings on the CPU, in worker processes). ``auto`` picks the first backend an environment lists,
except that environments with an MJX version use it only when JAX runs on an accelerator.
"""

from __future__ import annotations

import difflib
import functools

POINT_MAZES = ("Small", "Cross", "FourRooms", "U", "Spiral11x11", "Maze11x11")
POINT_ENVS = [f"point_{m}" for m in POINT_MAZES]
# 64x64 RGB versions of the point mazes, rendered in JAX inside the loop.
POINT_IMAGE_ENVS = [f"point_image_{m}" for m in POINT_MAZES]
SAWYER_ENVS = [f"sawyer_{t}" for t in ("push", "drawer", "bin", "window")]
FETCH_ENVS = ["fetch_reach", "fetch_push"]
ANT_ENVS = [f"ant_{m}" for m in ("umaze", "medium", "large")]
# 64x64 RGB versions of the Sawyer and Fetch tasks, rendered by MuJoCo in the workers.
MUJOCO_IMAGE_ENVS = [f"{name}_image" for name in SAWYER_ENVS + FETCH_ENVS]
# Offline tasks: trained from a dataset file (``--dataset``), evaluated in an environment. The
# six AntMaze datasets of D4RL (evaluated on D4RL's single target per maze), and the point
# mazes (datasets made by ``crl collect``; evaluated as ``point_*``).
OFFLINE_ANT_DATASETS = (
    "umaze",
    "umaze_diverse",
    "medium_play",
    "medium_diverse",
    "large_play",
    "large_diverse",
)
OFFLINE_ANT_ENVS = [f"offline_ant_{d}" for d in OFFLINE_ANT_DATASETS]
OFFLINE_POINT_ENVS = [f"offline_{name}" for name in POINT_ENVS]
# Stitch tasks: datasets of short segments (``crl collect --stitch``), evaluated on start-goal
# pairs far apart (envs/point_stitch.py); every point maze but the open 4 x 4 Small.
POINT_STITCH_MAZES = ("Cross", "FourRooms", "U", "Spiral11x11", "Maze11x11")
OFFLINE_POINT_STITCH_ENVS = [f"offline_point_{m}_stitch" for m in POINT_STITCH_MAZES]
OFFLINE_ENVS = OFFLINE_POINT_ENVS + OFFLINE_POINT_STITCH_ENVS + OFFLINE_ANT_ENVS

# Host environments (stepped on the CPU in worker processes): name -> "module:factory"; the
# factory takes the name and returns a HostEnv.
HOST_ENVS: dict[str, str] = {
    **{name: "contrastive_rl.envs.sawyer:make_sawyer" for name in SAWYER_ENVS},
    **{name: "contrastive_rl.envs.fetch:make_fetch" for name in FETCH_ENVS},
    **{name: "contrastive_rl.envs.ant:make_ant_host" for name in ANT_ENVS},
    **{name: "contrastive_rl.envs.host_image:make_image_env" for name in MUJOCO_IMAGE_ENVS},
    **{name: "contrastive_rl.envs.ant:make_offline_ant_host" for name in OFFLINE_ANT_ENVS},
}

# Backends of every available environment, the preferred one first.
BACKENDS: dict[str, tuple[str, ...]] = {
    **{name: ("jax",) for name in POINT_ENVS + POINT_IMAGE_ENVS},
    **{name: ("mujoco",) for name in SAWYER_ENVS + FETCH_ENVS},
    **{name: ("mujoco", "mjx") for name in ANT_ENVS},
    **{name: ("mujoco",) for name in MUJOCO_IMAGE_ENVS},
    **{name: ("jax",) for name in OFFLINE_POINT_ENVS},
    **{name: ("jax",) for name in OFFLINE_POINT_STITCH_ENVS},
    **{name: ("mujoco",) for name in OFFLINE_ANT_ENVS},
}
BACKEND_CHOICES = ("auto", "jax", "mujoco", "mjx")

# The optional extra (``pip install 'contrastive_rl[EXTRA]'``) each family needs, and the
# distributions that extra brings. The point mazes need only the core install.
EXTRAS: dict[str, tuple[str, ...]] = {
    "sawyer": ("mujoco", "metaworld"),
    "fetch": ("mujoco", "gymnasium", "gymnasium-robotics"),
    "ant": ("mujoco",),
    "mjx": ("mujoco", "mujoco-mjx"),
    "gym": ("gymnasium",),
    "offline": ("h5py",),
    # Not environments: the experiment tools and the W&B mirror.
    "plot": ("matplotlib", "imageio", "imageio-ffmpeg"),
    "ray": ("ray",),
    "wandb": ("wandb",),
}
ENV_EXTRA: dict[str, str] = {
    **{name: "sawyer" for name in SAWYER_ENVS},
    **{name: "fetch" for name in FETCH_ENVS},
    **{name: "ant" for name in ANT_ENVS},
    **{f"{name}_image": "sawyer" for name in SAWYER_ENVS},
    **{f"{name}_image": "fetch" for name in FETCH_ENVS},
    **{name: "ant" for name in OFFLINE_ANT_ENVS},
}

# Names of the original that later work adds, with where that work is tracked (none now).
PLANNED: dict[str, str] = {}

ENV_NAMES: list[str] = list(BACKENDS)
IMAGE_ENVS: list[str] = [name for name in ENV_NAMES if name.endswith("_image") or "_image_" in name]
# Environments one can step (offline names are tasks on a dataset, evaluated in one of these).
STATE_ENVS: list[str] = [
    name for name in ENV_NAMES if name not in IMAGE_ENVS and name not in OFFLINE_ENVS
]
ENV_STATUS: dict[str, str] = (
    {name: "ready (" + ", ".join(backends) + ")" for name, backends in BACKENDS.items()}
    | {name: f"ready ({BACKENDS[name][0]}), trains from --dataset" for name in OFFLINE_ENVS}
    | PLANNED
)


def is_offline(name: str) -> bool:
    """Whether ``name`` trains from a dataset (``offline_*``) instead of collecting."""
    return name.startswith("offline_")


def closest(name: str, choices: list[str]) -> str:
    """' (did you mean X?)' for a near miss, else ''."""
    match = difflib.get_close_matches(name, choices, n=1, cutoff=0.5)
    return f" (did you mean {match[0]!r}?)" if match else ""


def unknown_env_error(name: str) -> str | None:
    """Why ``name`` is not an environment one can run today (None when it is)."""
    if name in PLANNED:
        return (
            f"environment {name!r} is not available yet ({PLANNED[name]}); "
            f"available now: {', '.join(ENV_NAMES)}"
        )
    if name not in BACKENDS:
        return (
            f"unknown environment {name!r}{closest(name, list(ENV_STATUS))}; "
            f"valid choices: {', '.join(ENV_NAMES)}"
        )
    return None


def backend_error(name: str, backend: str) -> str | None:
    """Why ``backend`` cannot step ``name`` (None when it can, or when the name is unknown)."""
    if backend not in BACKEND_CHOICES:
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
    problem = unknown_env_error(name) or backend_error(name, backend)
    if problem:
        raise ValueError(problem)
    if backend != "auto":
        return backend
    choices = BACKENDS[name]
    if "mjx" in choices and _installed("mujoco-mjx"):
        import jax

        return "mjx" if jax.default_backend() != "cpu" else choices[0]
    return choices[0]


@functools.cache
def _installed(distribution: str) -> bool:
    import importlib.metadata  # here, not at the top: `crl -h` never needs it

    try:
        importlib.metadata.version(distribution)
    except importlib.metadata.PackageNotFoundError:
        return False
    return True


def install_hint(extra: str) -> str:
    """The exact command that installs an optional extra."""
    return f"pip install 'contrastive_rl[{extra}]' (in a clone: pip install -e '.[{extra}]')"


def missing_extra_error(extra: str, needed_for: str) -> str | None:
    """Why ``needed_for`` cannot run without ``extra`` (None when its packages are installed)."""
    missing = [d for d in EXTRAS[extra] if not _installed(d)]
    if not missing:
        return None
    return (
        f"{needed_for} needs the optional dependencies {', '.join(missing)}, which are not "
        f"installed; install them with: {install_hint(extra)}"
    )


def requirements_error(name: str, backend: str = "auto") -> str | None:
    """Why environment ``name`` cannot start in this installation (None when it can)."""
    extra = "mjx" if backend == "mjx" else ENV_EXTRA.get(name)
    if extra is None:
        return None
    return missing_extra_error(extra, f"environment {name!r}")
