"""The checks every Config passes before anything is built or written: names, ranges, pairs.

Plain Python: the registry of environments and the presets, no JAX, so ``crl train`` refuses a
bad value in milliseconds.
"""

from __future__ import annotations

import dataclasses
import math
import struct
from collections.abc import Callable
from typing import TYPE_CHECKING

from contrastive_rl.envs.registry import closest
from contrastive_rl.errors import ConfigError
from contrastive_rl.presets import ALGORITHM_PRESETS, CONTRASTIVE_LOSS_DEFAULTS, PRESETS

if TYPE_CHECKING:
    from contrastive_rl.config import Config

LR_SCHEDULES = ("constant", "linear", "cosine")
ACTORS = ("local", "ray")
WANDB_MODES = ("auto", "online", "offline", "disabled")
ENERGIES = ("dot", "l2", "norm", "cosine")  # agent/energies.py
CONTRASTIVE_LOSSES = ("binary_nce", "forward_infonce", "backward_infonce", "symmetric_infonce")
NETWORKS = ("mlp", "residual")

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
    "logsumexp_penalty": (lambda x: x >= 0, ">= 0 or 'auto'"),
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
    "logsumexp_penalty",
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
    _validate_critic_choices(c)
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


def _validate_critic_choices(c: Config) -> None:
    """Energies, contrastive losses and the residual network (docs/algorithms.md)."""
    if c.energy not in ENERGIES:
        raise ConfigError(
            f"unknown energy {c.energy!r}{closest(c.energy, list(ENERGIES))}; valid choices: "
            f"{', '.join(ENERGIES)}"
        )
    if c.contrastive_loss and c.contrastive_loss not in CONTRASTIVE_LOSSES:
        raise ConfigError(
            f"unknown contrastive_loss {c.contrastive_loss!r}"
            f"{closest(c.contrastive_loss, list(CONTRASTIVE_LOSSES))}; valid choices: "
            f"{', '.join(CONTRASTIVE_LOSSES)} (or empty for the algorithm's own)"
        )
    chosen = [
        name
        for name, unset in (
            ("energy", c.energy == "dot"),
            ("contrastive_loss", not c.contrastive_loss),
            ("logsumexp_penalty", c.logsumexp_penalty is None),
        )
        if not unset
    ]
    if chosen and c.alg not in CONTRASTIVE_LOSS_DEFAULTS:
        why = {
            "gcbc": "it trains no critic",
            "td_infonce": "its TD loss is a softmax over candidate futures of its own",
        }.get(
            c.alg,
            "its TD loss reads sigmoid(logit) as a probability, so it keeps the dot energy "
            "and its own loss",
        )
        applies, it = ("applies", "it") if len(chosen) == 1 else ("apply", "them")
        raise ConfigError(
            f"{', '.join(chosen)} only {applies} to the contrastive algorithms "
            f"({', '.join(CONTRASTIVE_LOSS_DEFAULTS)}); {c.alg} cannot use {it}: {why}"
        )
    if c.energy == "cosine" and c.repr_norm:
        raise ConfigError(
            "energy cosine already normalises phi and psi per sample and learns a temperature; "
            "repr_norm would do it twice: leave one of them out"
        )
    if c.network not in NETWORKS:
        raise ConfigError(
            f"unknown network {c.network!r}{closest(c.network, list(NETWORKS))}; valid choices: "
            f"{', '.join(NETWORKS)}"
        )
    if c.network == "residual":
        if c.residual_depth <= 0 or c.residual_depth % 4:
            raise ConfigError(
                f"residual_depth must be a positive multiple of 4 (4 Dense layers per residual "
                f"block), got {c.residual_depth}"
            )
        if c.residual_width <= 0:
            raise ConfigError(f"residual_width must be positive, got {c.residual_width}")
        if c.layer_norm:
            raise ConfigError(
                "layer_norm is an option of the mlp network; the residual network always has a "
                "LayerNorm after every Dense layer: leave layer_norm out"
            )
    else:
        defaults = {f.name: f.default for f in dataclasses.fields(c)}
        for name in ("residual_depth", "residual_width"):
            if getattr(c, name) != defaults[name]:
                raise ConfigError(
                    f"{name} only applies with network 'residual' (got network {c.network!r})"
                )
