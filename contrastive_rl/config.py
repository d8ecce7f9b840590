"""The one configuration of a run: the original's defaults, named presets, validation.

Every field is a command-line flag (``crl train --batch_size 128``); its ``help`` metadata is the
flag's help text. Defaults are those of the original ``ContrastiveConfig`` and launcher
(Eysenbach et al., 2022), so ``Config()`` with an algorithm preset is the paper's setting.
"""

from __future__ import annotations

import dataclasses
import math
import os
import struct
import types
import typing
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from contrastive_rl.envs.registry import closest
from contrastive_rl.errors import InputError


class ConfigError(InputError):
    """A configuration value that cannot run; the message names the field and the valid choices."""


# Env steps per env per iteration on CPU simulators unless set (divides every one of their
# episode lengths: 50, 150, 700, 1000). Neither throughput nor the one-seed ant_umaze learning
# comparison chose it (the two settings were within that seed's noise); it keeps the original's
# warm-up and a frequent policy refresh (docs/actors.md, Measurements).
HOST_UNROLL_LENGTH = 10


def _f(default: Any, help: str, **kw: Any) -> Any:
    return field(default=default, metadata={"help": help, **kw})


@dataclass(frozen=True)
class Config:
    # -- what to run ----------------------------------------------------------------------------
    env: str = _f("point_FourRooms", "environment name (see `crl list`)")
    alg: str = _f("contrastive_nce", "algorithm (see `crl list`)")
    seed: int = _f(0, "seed of every random draw of the run")
    steps: int = _f(
        1_000_000,
        "budget in environment steps (rounded up to whole iterations); for offline_* "
        "environments, in gradient steps; with --resume, a larger budget for that run",
    )
    dataset: str = _f(
        "",
        "offline_* environments: the dataset to train on, a D4RL .hdf5 file, a Minari dataset "
        "directory or an OGBench .npz (docs/offline.md); make one with `crl collect`",
    )

    backend: str = _f(
        "auto", "physics backend: auto, jax, mujoco (CPU worker processes) or mjx (see BACKENDS)"
    )

    # -- collection and the update-to-data ratio -----------------------------------------------
    num_envs: int = _f(32, "parallel environments collecting data")
    num_actors: int = _f(
        0,
        "workers stepping CPU simulators (mujoco backend): processes, 0 = one per core; with "
        "actors=ray, Ray actors, 0 = one per CPU of the cluster",
    )
    actors: str = _f(
        "local",
        "where CPU simulators step: local (worker processes here) or ray (Ray actors anywhere "
        "in a Ray cluster; docs/actors.md)",
    )
    ray_address: str = _f(
        "",
        "actors=ray: the cluster to join (HOST:PORT or auto); empty = RAY_ADDRESS if set, else "
        "a Ray instance started here",
    )
    overlap_collection: bool = _f(
        True,
        "CPU simulators: collect the next unroll while the learner runs its updates (the "
        "policy one iteration older); false = strict alternation",
    )
    worker_timeout_s: float = _f(
        120.0, "seconds a worker may take for one step before it is hung (start: at least 300)"
    )
    unroll_length: int = _f(
        0,
        "env steps per env per iteration, the policy refreshed after each (must divide the "
        f"episode length); 0 = one whole episode; CPU simulators: {HOST_UNROLL_LENGTH} unless set",
    )
    utd: float = _f(1.0, "gradient steps per environment step (update-to-data ratio)")
    min_replay_size: int = _f(10_000, "transitions collected with random actions before learning")
    max_replay_size: int = _f(1_000_000, "replay capacity in transitions (whole episodes, FIFO)")
    use_random_actor: bool = _f(
        True, "uniform random actions until min_replay_size (else the initial policy)"
    )

    # -- learner ------------------------------------------------------------------------------
    batch_size: int = _f(256, "transitions per gradient step (also the contrastive batch)")
    learning_rate: float = _f(3e-4, "critic Adam learning rate")
    actor_learning_rate: float = _f(3e-4, "actor Adam learning rate")
    adam_eps: float = _f(1e-7, "Adam epsilon of actor and critic (the original's 1e-7)")
    lr_schedule: str = _f(
        "constant", "learning rates over the run: constant (the original), linear or cosine to 0"
    )
    discount: float = _f(0.99, "discount: the future-goal distribution and the TD losses")
    tau: float = _f(0.005, "Polyak rate of the target critic (TD losses only)")
    entropy_coefficient: float | None = _f(
        0.0, "fixed entropy coefficient alpha; 'auto' learns it (target_entropy)"
    )
    target_entropy: float = _f(0.0, "target entropy of the adaptive alpha (the original's 0)")
    hidden_layer_sizes: tuple[int, ...] = _f((256, 256), "hidden sizes of actor and critic MLPs")
    repr_dim: int = _f(64, "size of the representations phi(s,a) and psi(g)")
    precision: str = _f(
        "fp32", "compute dtype of the networks: fp32, or bf16 (float32 parameters and losses)"
    )
    repr_norm: bool = _f(False, "L2-normalise representations, learned temperature")
    layer_norm: bool = _f(False, "layer norm before every hidden ReLU of the critic encoders")
    image_pool: int = _f(
        1, "image tasks: average-pool p x p pixel blocks before the conv torso (1 = the original)"
    )
    input_norm: bool = _f(
        False,
        "standardise positions by the maze's extent (point and ant mazes), point images by their "
        "mean image over the maze (else no effect)",
    )
    twin_q: bool = _f(False, "two independent critics (min for the actor)")
    random_goals: float = _f(0.5, "actor goals: 0 relabelled, 0.5 both halves, 1 shuffled")
    bc_coef: float = _f(0.0, "weight of the behaviour-cloning term in the actor loss, in [0,1]")

    devices: int = _f(
        0, "devices to split each batch over (data parallel, global negatives); 0 = all local"
    )

    # -- evaluation, logging, checkpoints ------------------------------------------------------
    eval_every: int = _f(50_000, "environment steps between evaluations")
    eval_episodes: int = _f(200, "episodes per evaluation (deterministic policy, fresh goals)")
    checkpoint_every_s: float = _f(300.0, "seconds between checkpoints (and one at the end)")
    run_dir: str = _f("", "run directory; default runs/<env>-<alg>-s<seed>")
    preset: str = _f("paper", "named preset applied before flags (see PRESETS)")

    # -- Weights & Biases (a mirror of the TensorBoard scalars; optional extra 'wandb') ----------
    wandb: bool = _f(False, "mirror every logged scalar to Weights & Biases (extra 'wandb')")
    wandb_project: str = _f("contrastive_rl", "W&B project of the mirrored run")
    wandb_name: str = _f("", "W&B run name; default the run directory's name")
    wandb_mode: str = _f(
        "auto", "W&B mode: online, offline, disabled; auto = online with an API key, else offline"
    )

    def __post_init__(self) -> None:
        validate(self)

    @property
    def adaptive_entropy(self) -> bool:
        return self.entropy_coefficient is None

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


FIELDS = {f.name: f for f in dataclasses.fields(Config)}
LR_SCHEDULES = ("constant", "linear", "cosine")
ACTORS = ("local", "ray")
WANDB_MODES = ("auto", "online", "offline", "disabled")

# The original launcher's per-algorithm settings (lp_contrastive.py).
ALGORITHM_PRESETS: dict[str, dict[str, Any]] = {
    "contrastive_nce": {},
    "contrastive_cpc": {},
    "c_learning": {"twin_q": True},
    "nce+c_learning": {"twin_q": True},
    "gcbc": {},
}

# The original launcher's settings for every name containing 'image' (lp_contrastive.py), applied
# after the algorithm preset and before the named preset and flags: a learned alpha with its
# target entropy of 0 (not -|A|). Its 10 distributed actors are not copied into num_actors (here
# worker processes on this machine's cores: the default of one per core). Its 16 SGD steps and
# 16 prefetched batches per learner call are how often the learner was dispatched; the
# update-to-data ratio stays the original's ~1 gradient step per env step (utd).
IMAGE_SETTINGS: dict[str, Any] = {
    "entropy_coefficient": None,
    "target_entropy": 0.0,
}
# Tasks that store 64x64x3 images in the replay (Sawyer, Fetch): 250k transitions are 2.9 GiB,
# where the default 1M (11.5 GiB) leaves no room on a 24 GiB machine for a checkpoint's copy.
STORED_IMAGE_SETTINGS: dict[str, Any] = {"max_replay_size": 250_000}


# The original launcher's settings for every name starting with 'offline_ant' (lp_contrastive.py),
# here for every offline_* name: the actor sees only relabelled goals and clones the data's
# actions a little; twin critics (the minimum for the actor); wider networks, a larger batch.
# Its samples_per_insert/tolerance only let its learner run without actors: nothing to copy.
OFFLINE_SETTINGS: dict[str, Any] = {
    "random_goals": 0.0,
    "bc_coef": 0.05,
    "twin_q": True,
    "batch_size": 1024,
    "repr_dim": 16,
    "hidden_layer_sizes": (1024, 1024),
}


def env_settings(env: str) -> dict[str, Any]:
    """Per-environment settings: ``OFFLINE_SETTINGS`` for offline tasks, the launcher's
    ``IMAGE_SETTINGS`` for image tasks, the unroll of CPU simulators (``HOST_UNROLL_LENGTH``)."""
    from contrastive_rl.envs.registry import HOST_ENVS

    if env.startswith("offline_"):
        return dict(OFFLINE_SETTINGS)
    settings: dict[str, Any] = {}
    if env in HOST_ENVS:
        settings["unroll_length"] = HOST_UNROLL_LENGTH
    if "image" in env:
        stored = env.endswith("_image")  # sawyer_*_image, fetch_*_image; point_image_* renders
        settings.update(IMAGE_SETTINGS, **(STORED_IMAGE_SETTINGS if stored else {}))
    return settings


# Named presets, applied after the algorithm preset and before explicit flags.
PRESETS: dict[str, dict[str, Any]] = {
    # The original's defaults: nothing to change.
    "paper": {},
    # The CPU quick check: `./run.sh`, contrastive_nce on point_FourRooms in under five minutes
    # on a 2-core machine. Chosen by measurement (docs/results.md, "Quick check"): at 70.4k env
    # steps seeds 0-2 reach 0.945, 0.865, 0.935 (median 0.935; 288 s of training for seed 0).
    # Measured: batch 64 runs about twice the updates per second of batch 128 on a CPU and
    # learned as well per update here; lr 1e-3 learns faster per
    # update; a learned alpha with the usual SAC target entropy (-|A| = -2) keeps the tanh policy
    # from saturating, so its actions keep following the critic near walls; standardised maze
    # coordinates let the critic's first layer place its ReLU boundaries across the whole maze.
    "quick": {
        "steps": 70_400,
        "batch_size": 64,
        "learning_rate": 1e-3,
        "actor_learning_rate": 1e-3,
        "entropy_coefficient": None,
        "target_entropy": -2.0,
        "input_norm": True,
        "eval_every": 10_000,
    },
    # The original's image settings, also applied by themselves to every *_image environment.
    "image": IMAGE_SETTINGS,
    # The original's offline settings, also applied by themselves to every offline_* name.
    "offline": OFFLINE_SETTINGS,
    # Offline tasks on a 2-core CPU (docs/offline.md), for offline_* names only: the offline
    # settings (twin critics, repr 16, bc_coef 0.05, random_goals 0) with (256, 256) networks
    # and batch 256. Chosen by measurement (benchmarks/throughput.py, offline_point_FourRooms,
    # gradient steps/s under a shared load of 5-7): batch/hidden 1024/(1024, 1024) 0.8,
    # 256/(512, 512) 11.6, 256/(256, 256) 24.2, 128/(128, 128) 40.1. On offline_point_FourRooms
    # from `crl collect`'s 200k rows (seed 0, 100 evaluation episodes), 256/(256, 256) reached
    # 0.84 success at 7.5k gradient steps and 0.96 at 20k (0.96-0.97 to 30k); 128/(128, 128)
    # 0.63 at 7.5k, 0.83 at 15k, 0.88 at 20k, no sooner in wall time under that load; the
    # untrained policy 0.10-0.16. lr 1e-3 and standardised maze coordinates are the quick
    # preset's.
    "offline_quick": {
        "steps": 20_000,
        "batch_size": 256,
        "hidden_layer_sizes": (256, 256),
        "learning_rate": 1e-3,
        "actor_learning_rate": 1e-3,
        "input_norm": True,
        "eval_every": 2_500,
        "eval_episodes": 100,
    },
    # Learning from pixels on a 2-core CPU (docs/images.md). The conv torsos dominate the update;
    # 16x16 after pooling by 4 and batch 64 keep it at about 4-7 updates/s here. Pixels
    # standardised by the mean image over the maze (--input_norm): without it the critic settled
    # on constant logits; with it point_image_FourRooms reached 0.56 success after 1.6k updates
    # and 0.84 after 7.7k (30 minutes on a shared CPU). lr 1e-3 and the learned alpha with target
    # -|A| are the quick preset's; 16 envs x 10 steps keep iterations short.
    "image_quick": {
        "steps": 20_000,
        "num_envs": 16,
        "unroll_length": 10,
        "batch_size": 64,
        "image_pool": 4,
        "learning_rate": 1e-3,
        "actor_learning_rate": 1e-3,
        "entropy_coefficient": None,
        "target_entropy": -2.0,
        "input_norm": True,
        "eval_every": 5_000,
        "eval_episodes": 100,
    },
    # The original's --debug: a smoke test of the installation. Image tasks: their 64x64 images
    # pooled by 4 first (no effect on the others), so a smoke test on a CPU takes minutes.
    "debug": {
        "steps": 10_000,
        "min_replay_size": 2_000,
        "batch_size": 32,
        "hidden_layer_sizes": (32, 32),
        "image_pool": 4,
        "eval_every": 5_000,
        "eval_episodes": 100,
    },
}


MAX_SEED = 2**32 - 1

# The range of every float field: (test, what it means). Fields in FLOAT32_FIELDS reach the
# device as float32, so their float32 value must pass the same test.
FLOAT_RANGES: dict[str, tuple[Callable[[float], bool], str]] = {
    "learning_rate": (lambda x: x > 0, "positive"),
    "actor_learning_rate": (lambda x: x > 0, "positive"),
    "adam_eps": (lambda x: x > 0, "positive"),
    "discount": (lambda x: 0.0 <= x < 1.0, "in [0, 1)"),
    "tau": (lambda x: 0.0 < x <= 1.0, "in (0, 1]"),
    "entropy_coefficient": (lambda x: x >= 0, ">= 0 or 'auto'"),
    "target_entropy": (lambda x: True, "a number"),
    "random_goals": (lambda x: x in (0.0, 0.5, 1.0), "one of 0, 0.5, 1"),
    "bc_coef": (lambda x: 0.0 <= x <= 1.0, "in [0, 1]"),
    "utd": (lambda x: x > 0, "positive (gradient steps per env step)"),
    "checkpoint_every_s": (lambda x: x > 0, "positive"),
    "worker_timeout_s": (lambda x: x > 0, "positive"),
}
FLOAT32_FIELDS = (
    "learning_rate",
    "actor_learning_rate",
    "adam_eps",
    "discount",
    "tau",
    "entropy_coefficient",
    "target_entropy",
    "bc_coef",
)


def _as_float32(x: float) -> float:
    """``x`` rounded to float32 (inf beyond its range), without importing numpy."""
    try:
        return struct.unpack("f", struct.pack("f", x))[0]
    except OverflowError:
        return math.copysign(math.inf, x)


def _validate_floats(c: Config) -> None:
    """Finite, in range, and still in range once rounded to the float32 the device computes in."""
    for name, (ok, meaning) in FLOAT_RANGES.items():
        value = getattr(c, name)
        if value is None:  # entropy_coefficient 'auto'
            continue
        if not math.isfinite(value):
            raise ConfigError(f"{name} must be a finite number ({meaning}), got {value}")
        if not ok(value):
            raise ConfigError(f"{name} must be {meaning}, got {value}")
        if name in FLOAT32_FIELDS:
            single = _as_float32(value)
            if not (math.isfinite(single) and ok(single)):
                raise ConfigError(
                    f"{name} {value!r} becomes {single!r} in float32 (the precision training "
                    f"computes in), which is not {meaning}; choose a value float32 can hold"
                )


def validate(c: Config) -> None:
    """Refuse values that cannot run, before anything is built or written."""
    from contrastive_rl.envs.registry import (
        ENV_STATUS,
        backend_error,
        missing_extra_error,
        requirements_error,
        unknown_env_error,
    )

    problem = (
        unknown_env_error(c.env)
        or backend_error(c.env, c.backend)
        or requirements_error(c.env, c.backend)
    )
    if problem:
        raise ConfigError(problem)
    if c.alg not in ALGORITHM_PRESETS:
        algs = list(ALGORITHM_PRESETS)
        raise ConfigError(
            f"unknown algorithm {c.alg!r}{closest(c.alg, algs)}; valid choices: {', '.join(algs)}"
        )
    if c.preset not in PRESETS:
        raise ConfigError(
            f"unknown preset {c.preset!r}{closest(c.preset, list(PRESETS))}; "
            f"valid choices: {', '.join(PRESETS)}"
        )
    if isinstance(c.seed, bool) or not 0 <= c.seed <= MAX_SEED:
        raise ConfigError(
            f"seed must be an integer in [0, {MAX_SEED}] (JAX seeds its keys with 32 bits: a "
            f"larger seed would repeat a smaller one), got {c.seed}"
        )
    positive = [
        "steps",
        "num_envs",
        "batch_size",
        "repr_dim",
        "eval_every",
        "eval_episodes",
        "max_replay_size",
        "image_pool",
    ]
    for name in positive:
        if getattr(c, name) <= 0:
            raise ConfigError(f"{name} must be positive, got {getattr(c, name)}")
    if c.devices < 0:
        raise ConfigError(f"devices must be >= 0 (0 = all local devices), got {c.devices}")
    if c.num_actors < 0:
        raise ConfigError(f"num_actors must be >= 0 (0 = one per core), got {c.num_actors}")
    if c.actors not in ACTORS:
        raise ConfigError(
            f"unknown actors {c.actors!r}{closest(c.actors, list(ACTORS))}; valid choices: "
            f"{', '.join(ACTORS)}"
        )
    if c.actors == "ray":
        problem = missing_extra_error("ray", "actors 'ray'")
        if problem:
            raise ConfigError(problem)
    elif c.ray_address:
        raise ConfigError(
            f"ray_address ({c.ray_address!r}) only applies with actors 'ray' (got actors "
            f"{c.actors!r})"
        )
    _validate_floats(c)
    if c.wandb_mode not in WANDB_MODES:
        raise ConfigError(
            f"unknown wandb_mode {c.wandb_mode!r}{closest(c.wandb_mode, list(WANDB_MODES))}; "
            f"valid choices: {', '.join(WANDB_MODES)}"
        )
    if c.wandb:
        problem = missing_extra_error("wandb", "--wandb")
        if problem:
            raise ConfigError(problem)
    if c.precision not in ("fp32", "bf16"):
        raise ConfigError(f"unknown precision {c.precision!r}; valid choices: fp32, bf16")
    if c.lr_schedule not in LR_SCHEDULES:
        raise ConfigError(
            f"unknown lr_schedule {c.lr_schedule!r}{closest(c.lr_schedule, list(LR_SCHEDULES))}; "
            f"valid choices: {', '.join(LR_SCHEDULES)}"
        )
    if c.unroll_length < 0:
        raise ConfigError(f"unroll_length must be >= 0 (0 = whole episodes), got {c.unroll_length}")
    if c.min_replay_size < 0:
        raise ConfigError(f"min_replay_size must be >= 0, got {c.min_replay_size}")
    if c.entropy_coefficient is not None and c.target_entropy != 0.0:
        raise ConfigError(
            "target_entropy only applies to a learned alpha: set entropy_coefficient=auto "
            f"or leave target_entropy at 0 (got {c.target_entropy})"
        )
    if not c.hidden_layer_sizes or any(h <= 0 for h in c.hidden_layer_sizes):
        raise ConfigError(f"hidden_layer_sizes must be positive sizes, got {c.hidden_layer_sizes}")
    offline = c.env.startswith("offline_")
    if offline and not c.dataset:
        raise ConfigError(
            f"{c.env} trains from a dataset: give --dataset PATH (a D4RL .hdf5 file, a Minari "
            f"dataset directory or an OGBench .npz); `crl collect --env {c.env}` makes one"
        )
    if c.preset == "offline_quick" and not offline:
        hint = f"; did you mean --env offline_{c.env}?" if f"offline_{c.env}" in ENV_STATUS else ""
        raise ConfigError(
            f"preset offline_quick is for offline_* environments (its budget counts gradient "
            f"steps); {c.env!r} collects its own data{hint}"
        )
    if c.dataset and not offline:
        hint = f"; did you mean --env offline_{c.env}?" if f"offline_{c.env}" in ENV_STATUS else ""
        raise ConfigError(
            f"dataset only applies to offline_* environments; {c.env!r} collects its own data{hint}"
        )
    if c.alg in ("c_learning", "nce+c_learning") and not c.twin_q:
        raise ConfigError(f"{c.alg} needs twin critics (twin_q=True), as in the original")
    if c.batch_size < 2:
        raise ConfigError(f"batch_size must be at least 2 (negatives), got {c.batch_size}")
    if c.batch_size > c.max_replay_size:
        raise ConfigError(
            f"batch_size ({c.batch_size}) is larger than the replay capacity "
            f"max_replay_size ({c.max_replay_size})"
        )
    if c.min_replay_size > c.max_replay_size:
        raise ConfigError(
            f"min_replay_size ({c.min_replay_size}) exceeds max_replay_size ({c.max_replay_size})"
        )


def make_config(
    env: str = "point_FourRooms",
    alg: str = "contrastive_nce",
    preset: str = "paper",
    **overrides: Any,
) -> Config:
    """Resolve a config: defaults, then the algorithm's preset, the environment's settings
    (``env_settings``), the named preset, the overrides.

    Raises:
        ConfigError: for an unknown name or field, or a value that cannot run.
    """
    unknown = [k for k in overrides if k not in FIELDS]
    if unknown:
        k = unknown[0]
        raise ConfigError(f"unknown config field {k!r}{closest(k, list(FIELDS))}")
    if alg not in ALGORITHM_PRESETS:
        Config(env=env, alg=alg)  # raises with the list of choices
    if preset not in PRESETS:
        Config(env=env, alg=alg, preset=preset)  # raises with the list of choices
    values: dict[str, Any] = {"env": env, "alg": alg, "preset": preset}
    values.update(ALGORITHM_PRESETS[alg])
    values.update(env_settings(env))
    values.update(PRESETS[preset])
    values.update(overrides)
    if values.get("dataset"):  # a run resumed from another directory finds the same file
        values["dataset"] = os.path.abspath(os.path.expanduser(values["dataset"]))
    return Config(**values)


def _hint_allows(hint: Any, kind: type) -> bool:
    if hint is kind or typing.get_origin(hint) is kind:
        return True
    if typing.get_origin(hint) in (typing.Union, types.UnionType):
        return any(_hint_allows(h, kind) for h in typing.get_args(hint))
    return False


def coerce_values(values: Mapping[str, Any], source: str = "config") -> dict[str, Any]:
    """Config values read from JSON or TOML, as the fields' types: lists become tuples where a
    field is a tuple (``hidden_layer_sizes``), integers become floats where it is a float.

    Raises:
        ConfigError: a field ``Config`` does not have.
    """
    hints = typing.get_type_hints(Config)
    out: dict[str, Any] = {}
    for name, value in values.items():
        if name not in hints:
            raise ConfigError(
                f"{source}: unknown config field {name!r}{closest(name, list(hints))}"
            )
        hint = hints[name]
        if isinstance(value, list) and _hint_allows(hint, tuple):
            value = tuple(value)
        elif isinstance(value, int) and not isinstance(value, bool) and _hint_allows(hint, float):
            value = float(value)
        out[name] = value
    return out


def read_config_file(path: str | os.PathLike[str]) -> dict[str, Any]:
    """The config fields set in a JSON or TOML file (``crl train --config FILE``).

    A run's ``config.json`` works as it is: the file may set every field or only some. Its
    ``run_dir`` is left out, so a run started from another run's config gets a directory of its
    own. In TOML, ``entropy_coefficient = "auto"`` stands for a learned alpha (TOML has no null).

    Raises:
        ConfigError: the file is missing, unreadable, not a table of fields, or names a field
            that does not exist.
    """
    import json
    import tomllib

    path = os.fspath(path)
    try:
        with open(path, "rb") as f:
            raw = f.read()
    except OSError as e:
        raise ConfigError(f"cannot read the config file {path}: {e.strerror or e}") from e
    try:
        if path.endswith(".toml"):
            values = tomllib.loads(raw.decode("utf-8"))
        else:
            values = json.loads(raw)
    except (ValueError, UnicodeDecodeError) as e:
        kind = "TOML" if path.endswith(".toml") else "JSON (use a .toml name for TOML)"
        raise ConfigError(f"the config file {path} is not valid {kind}: {e}") from e
    if not isinstance(values, dict):
        raise ConfigError(f"the config file {path} must hold a table of config fields")
    if isinstance(values.get("entropy_coefficient"), str):
        if values["entropy_coefficient"].lower() not in ("auto", "none"):
            raise ConfigError(
                f"{path}: entropy_coefficient must be a number or 'auto', "
                f"got {values['entropy_coefficient']!r}"
            )
        values["entropy_coefficient"] = None
    values.pop("run_dir", None)
    return coerce_values(values, source=path)
