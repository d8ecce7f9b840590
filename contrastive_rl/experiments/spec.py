"""What a sweep runs: a grid over environments, algorithms, seeds and any config field.

A spec comes from flags (``crl sweep --env point_U --alg contrastive_nce gcbc --seeds 0 1 2``)
or from a TOML or JSON file (one per figure, in ``sweeps/``)::

    description = "point_FourRooms: the five algorithms"
    envs = ["point_FourRooms"]
    algs = ["contrastive_nce", "gcbc"]
    seeds = [0, 1, 2]
    preset = "quick"
    [set]            # every run
    steps = 40000
    [grid]           # every combination of these values
    batch_size = [128, 256]

Each run is named ``<env>-<alg>-seed<N>`` followed by ``-<field>=<value>`` for each grid field,
so a run's directory says what it is, and the same spec always gives the same names. Plain
Python (no JAX): every run's config is resolved and validated before anything starts.
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from contrastive_rl.config import FIELDS, Config, ConfigError, closest, make_config
from contrastive_rl.flags import PARSERS
from contrastive_rl.runs.config_files import coerce_values

SPEC_KEYS = ("description", "envs", "algs", "seeds", "preset", "set", "grid")
# Fields a spec sets through its own keys, never through `set` or `grid`.
AXES = {"env": "envs", "alg": "algs", "seed": "seeds", "preset": "preset", "run_dir": None}


@dataclass(frozen=True)
class SweepSpec:
    """The grid: ``envs x algs x seeds x grid``, each run with ``preset`` and ``set``."""

    envs: tuple[str, ...]
    algs: tuple[str, ...] = ("contrastive_nce",)
    seeds: tuple[int, ...] = (0,)
    preset: str = "paper"
    set: Mapping[str, Any] = field(default_factory=dict)
    grid: Mapping[str, tuple[Any, ...]] = field(default_factory=dict)
    description: str = ""

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready (tuples as lists); ``spec_from_dict`` reads it back."""
        out = {
            "description": self.description,
            "envs": list(self.envs),
            "algs": list(self.algs),
            "seeds": list(self.seeds),
            "preset": self.preset,
            "set": dict(self.set),
            "grid": {k: list(v) for k, v in self.grid.items()},
        }
        return json.loads(json.dumps(out))


@dataclass(frozen=True)
class PlannedRun:
    """One run of a sweep: its directory name and the ``make_config`` arguments."""

    name: str
    values: Mapping[str, Any]

    @property
    def config(self) -> Config:
        return make_config(**self.values)


def format_value(value: Any) -> str:
    """A config value as ``crl train`` reads it from a flag (and as run names show it)."""
    if value is None:
        return "auto"  # entropy_coefficient: a learned alpha
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, tuple | list):
        return ",".join(format_value(v) for v in value)
    if isinstance(value, float):
        return repr(value)
    return str(value)


def _name_part(value: Any) -> str:
    text = format_value(value).replace(",", "x")
    return "".join(c if c.isalnum() or c in "._+-" else "_" for c in text)


def run_name(values: Mapping[str, Any], grid_fields: Sequence[str]) -> str:
    """``<env>-<alg>-seed<N>[-<field>=<value>...]`` for the grid's fields, in the grid's order."""
    parts = [values["env"], values["alg"], f"seed{values['seed']}"]
    parts += [f"{name}={_name_part(values[name])}" for name in grid_fields]
    return "-".join(parts)


def expand(spec: SweepSpec) -> list[PlannedRun]:
    """Every run of the grid, in order: env, alg, grid values, seed (the innermost).

    Raises:
        ConfigError: a run whose config cannot run (the message names the run).
    """
    grid_fields = list(spec.grid)
    runs = []
    for env, alg, combo, seed in itertools.product(
        spec.envs, spec.algs, itertools.product(*spec.grid.values()), spec.seeds
    ):
        values = {"env": env, "alg": alg, "preset": spec.preset, "seed": seed, **spec.set}
        values.update(zip(grid_fields, combo, strict=True))
        name = run_name(values, grid_fields)
        try:
            make_config(**values)
        except ConfigError as error:
            raise ConfigError(f"sweep run {name}: {error}") from None
        runs.append(PlannedRun(name, values))
    names = [r.name for r in runs]
    if len(set(names)) != len(names):
        dup = next(n for n in names if names.count(n) > 1)
        raise ConfigError(f"the sweep lists run {dup} twice; remove the repeated value")
    return runs


def train_flags(values: Mapping[str, Any]) -> list[str]:
    """The ``crl train`` flags that resolve to ``make_config(**values)``."""
    flags = []
    for name, value in values.items():
        flags += [f"--{name}", format_value(value)]
    return flags


# -- reading specs ---------------------------------------------------------------------------


def _as_tuple(value: Any, key: str, source: str) -> tuple[Any, ...]:
    if isinstance(value, str | int):
        return (value,)
    if isinstance(value, list | tuple) and value:
        return tuple(value)
    raise ConfigError(f"{source}: {key} must be a non-empty list, got {value!r}")


def _check_field(name: str, source: str, where: str) -> None:
    if name in AXES:
        key = AXES[name]
        use = f"use the spec's {key!r}" if key else "the sweep names each run's directory"
        raise ConfigError(f"{source}: {where} cannot set {name!r}; {use}")
    if name not in FIELDS:
        raise ConfigError(f"{source}: unknown config field {name!r}{closest(name, list(FIELDS))}")


def _coerce(name: str, value: Any, source: str) -> Any:
    if name == "entropy_coefficient" and isinstance(value, str):
        if value.lower() not in ("auto", "none"):
            raise ConfigError(f"{source}: entropy_coefficient must be a number or 'auto'")
        return None
    return coerce_values({name: value}, source)[name]


def spec_from_dict(values: Mapping[str, Any], source: str = "sweep spec") -> SweepSpec:
    """A SweepSpec from a spec file's table (or ``SweepSpec.to_dict``).

    Raises:
        ConfigError: an unknown key or field, a field the spec sets another way, an empty list.
    """
    unknown = [k for k in values if k not in SPEC_KEYS]
    if unknown:
        k = unknown[0]
        raise ConfigError(
            f"{source}: unknown key {k!r}{closest(k, list(SPEC_KEYS))}; "
            f"valid: {', '.join(SPEC_KEYS)}"
        )
    if "envs" not in values:
        raise ConfigError(f"{source}: 'envs' is missing (the environments to run)")
    for key in ("set", "grid"):
        if not isinstance(values.get(key, {}), Mapping):
            raise ConfigError(f"{source}: {key} must be a table of config fields")
    fixed = dict(values.get("set", {}))
    grid = dict(values.get("grid", {}))
    for name in [*fixed, *grid]:
        _check_field(name, source, "set" if name in fixed else "grid")
    both = sorted(set(fixed) & set(grid))
    if both:
        raise ConfigError(f"{source}: {both[0]!r} is in both set and grid; keep one")
    seeds = _as_tuple(values.get("seeds", [0]), "seeds", source)
    if not all(isinstance(s, int) and not isinstance(s, bool) for s in seeds):
        raise ConfigError(f"{source}: seeds must be integers, got {list(seeds)}")
    return SweepSpec(
        envs=_as_tuple(values["envs"], "envs", source),
        algs=_as_tuple(values.get("algs", ["contrastive_nce"]), "algs", source),
        seeds=seeds,
        preset=str(values.get("preset", "paper")),
        set={k: _coerce(k, v, source) for k, v in fixed.items()},
        grid={
            k: tuple(_coerce(k, v, source) for v in _as_tuple(vs, f"grid.{k}", source))
            for k, vs in grid.items()
        },
        description=str(values.get("description", "")),
    )


def load_spec(path: str | os.PathLike[str]) -> SweepSpec:
    """The spec in a ``.toml`` or ``.json`` file.

    Raises:
        ConfigError: a missing or unreadable file, or a spec ``spec_from_dict`` refuses.
    """
    import tomllib

    path = os.fspath(path)
    try:
        with open(path, "rb") as f:
            raw = f.read()
    except OSError as e:
        raise ConfigError(f"cannot read the sweep spec {path}: {e.strerror or e}") from e
    try:
        values = tomllib.loads(raw.decode()) if path.endswith(".toml") else json.loads(raw)
    except (ValueError, UnicodeDecodeError) as e:
        kind = "TOML" if path.endswith(".toml") else "JSON (use a .toml name for TOML)"
        raise ConfigError(f"the sweep spec {path} is not valid {kind}: {e}") from e
    if not isinstance(values, dict):
        raise ConfigError(f"the sweep spec {path} must hold a table")
    return spec_from_dict(values, source=path)


def parse_assignment(text: str) -> tuple[str, Any]:
    """``"steps=40000"`` -> ``("steps", 40000)``, the value read as ``crl train`` reads flags."""
    name, sep, value = text.partition("=")
    name = name.strip().lstrip("-").replace("-", "_")
    if not sep:
        raise ConfigError(f"--set takes FIELD=VALUE, got {text!r}")
    return name, parse_field(name, value.strip(), "--set")


def parse_field(name: str, text: str, where: str) -> Any:
    """The value of field ``name`` written as on ``crl train``'s command line."""
    _check_field(name, where, where)
    try:
        return PARSERS[str(FIELDS[name].type)](text)
    except (ValueError, argparse.ArgumentTypeError) as e:
        raise ConfigError(f"{where} {name}: {e}") from None
