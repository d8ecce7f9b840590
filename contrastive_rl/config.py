"""The one configuration of a run: the ``Config`` dataclass with the original's defaults.

Every field is a command-line flag (``crl train --batch_size 128``); its ``help`` metadata is the
flag's help text. Defaults are those of the original ``ContrastiveConfig`` and launcher
(Eysenbach et al., 2022), so ``Config()`` with an algorithm preset is the paper's setting.
"""

from __future__ import annotations

import dataclasses
import os
from dataclasses import dataclass, field
from typing import Any

from contrastive_rl.envs.registry import closest
from contrastive_rl.errors import ConfigError
from contrastive_rl.presets import (
    ALGORITHM_PRESETS,
    CONTRASTIVE_LOSS_DEFAULTS,
    HOST_UNROLL_LENGTH,
    PRESETS,
    env_settings,
    preset_settings,
)

# The critic choices, re-exported for the networks and `crl list` (layers that do not import
# validation).
from contrastive_rl.validation import CONTRASTIVE_LOSSES, ENERGIES, NETWORKS, validate  # noqa: F401


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
    energy: str = _f(
        "dot",
        "critic energy f(phi, psi) of the contrastive algorithms: dot (the original), l2 "
        "(-||phi-psi||^2), norm (-||phi-psi||), cosine (per-sample cosine / learned temperature)",
    )
    contrastive_loss: str = _f(
        "",
        "critic loss of the contrastive algorithms: binary_nce, forward_infonce, "
        "backward_infonce, symmetric_infonce; empty = the algorithm's own (contrastive_nce: "
        "binary_nce, contrastive_cpc: forward_infonce)",
    )
    logsumexp_penalty: float | None = _f(
        None,
        "coefficient c of the c * logsumexp^2 penalty of the contrastive loss; 'auto' = the "
        "algorithm's own (contrastive_nce 0, contrastive_cpc 0.01)",
    )
    network: str = _f(
        "mlp",
        "actor and critic networks: mlp (the original's, hidden_layer_sizes) or residual "
        "(Wang et al. 2025: stem + residual_depth/4 blocks of 4 x [Dense, LayerNorm, Swish])",
    )
    residual_depth: int = _f(
        4, "network residual: Dense layers in the residual blocks, a multiple of 4 (4 per block)"
    )
    residual_width: int = _f(256, "network residual: width of the stem and of every block")
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


def contrastive_loss_choice(c: Config, alg: str | None = None) -> tuple[str, float]:
    """``(loss, logsumexp penalty)`` of the contrastive algorithm ``alg`` (default ``c.alg``):
    the fields, or the algorithm's own where they are unset (``CONTRASTIVE_LOSS_DEFAULTS``)."""
    own_loss, own_penalty = CONTRASTIVE_LOSS_DEFAULTS[alg or c.alg]
    penalty = own_penalty if c.logsumexp_penalty is None else c.logsumexp_penalty
    return c.contrastive_loss or own_loss, penalty


def make_config(
    env: str = "point_FourRooms",
    alg: str = "contrastive_nce",
    preset: str = "paper",
    **overrides: Any,
) -> Config:
    """Resolve a config: defaults, then the algorithm's preset, the environment's settings for
    ``alg`` (``env_settings``), the named preset with its settings for ``alg``
    (``preset_settings``), the overrides.

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
    values.update(env_settings(env, alg))
    values.update(preset_settings(preset, alg))
    values.update(overrides)
    if values.get("dataset"):  # a run resumed from another directory finds the same file
        values["dataset"] = os.path.abspath(os.path.expanduser(values["dataset"]))
    return Config(**values)
