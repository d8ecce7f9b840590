"""Config files: a run's ``config.json``, and the JSON or TOML files ``crl train --config`` reads.

Plain Python (JSON and TOML in, ``Config`` out), so reading a run's config imports no JAX.
"""

from __future__ import annotations

import dataclasses
import json
import os
import types
import typing
from collections.abc import Mapping
from typing import Any

from contrastive_rl.config import FIELDS, Config
from contrastive_rl.envs.registry import closest
from contrastive_rl.errors import ConfigError, MissingInputError, RunDirError

CONFIG_FILE = "config.json"
# Ignored when comparing a stored config with a new one: where the run is written and where its
# scalars are mirrored, not what it computes.
IGNORED_FIELDS = ("run_dir", "wandb", "wandb_project", "wandb_name", "wandb_mode")


def config_json(config: Config) -> str:
    return json.dumps(config.to_dict(), indent=2) + "\n"


def config_from_dict(values: Mapping[str, Any], source: str = "config") -> Config:
    """Rebuild a Config from its ``to_dict()`` after a JSON round trip.

    Values are read as :func:`coerce_values` says (lists to tuples, integers
    to floats where the field is a float); fields missing from ``values`` take their defaults.

    Raises:
        RunDirError: unknown fields. ConfigError: a value that does not validate.
    """
    unknown = [k for k in values if k not in FIELDS]
    if unknown:
        raise RunDirError(
            f"{source} has fields this version does not know: {', '.join(sorted(unknown))}"
        )
    kwargs = coerce_values(values, source)
    try:
        return Config(**kwargs)
    except ConfigError as e:
        raise ConfigError(f"{source}: {e}") from e
    except TypeError as e:
        raise RunDirError(f"{source} is not a valid config: {e}") from e


def load_config(path: str | os.PathLike[str]) -> Config:
    """The Config stored in a run directory (``path`` is the directory or its config.json).

    Raises:
        FileNotFoundError: no config.json there. RunDirError: not readable as a config.
    """
    path = os.fspath(path)
    file = os.path.join(path, CONFIG_FILE) if os.path.isdir(path) else path
    if not os.path.isfile(file):
        raise MissingInputError(f"no run config at {file}")
    try:
        with open(file, encoding="utf-8") as f:
            values = json.load(f)
    except (OSError, json.JSONDecodeError) as e:
        raise RunDirError(f"cannot read the run config {file}: {e}") from e
    if not isinstance(values, dict):
        raise RunDirError(f"the run config {file} is not a JSON object")
    return config_from_dict(values, source=file)


def extend_budget(config: Config, steps: int) -> Config:
    """``config`` with a larger budget of ``steps``, for ``--resume --steps``.

    Only a constant ``lr_schedule`` can be extended: a decaying one is laid over the budget, so a
    new budget would change the rates of the steps still to come and no longer match a run
    planned for it. Nothing else in a run depends on its total budget.

    Raises:
        ConfigError: ``steps`` not larger than the run's budget, or a decaying schedule.
    """
    if isinstance(steps, bool) or not isinstance(steps, int) or steps <= config.steps:
        raise ConfigError(
            f"--steps with --resume extends the run's budget: give more than its {config.steps} "
            f"steps (got {steps!r})"
        )
    if config.lr_schedule != "constant":
        raise ConfigError(
            f"this run's lr_schedule {config.lr_schedule!r} decays over its budget of "
            f"{config.steps} steps; a longer budget would change its learning rates. Only runs "
            "with lr_schedule 'constant' can be extended"
        )
    return dataclasses.replace(config, steps=steps)


def budget_fields(config: Config) -> tuple[str, ...]:
    """Fields that may differ between a checkpoint's config and the run's: the extendable budget."""
    return ("steps",) if config.lr_schedule == "constant" else ()


def config_differences(stored: Config, given: Config) -> list[str]:
    """``'field: stored -> given'`` for each field that differs (``run_dir`` ignored)."""
    out = []
    for f in dataclasses.fields(Config):
        if f.name in IGNORED_FIELDS:
            continue
        a, b = getattr(stored, f.name), getattr(given, f.name)
        if a != b:
            out.append(f"{f.name}: {a!r} -> {b!r}")
    return out


def _as_json(values: Mapping[str, Any]) -> dict[str, Any]:  # tuples as lists, as saved
    return json.loads(json.dumps(dict(values)))


def with_defaults(saved: Mapping[str, Any]) -> dict[str, Any]:
    """A saved config's JSON values, with the default of each field added since it was saved."""
    return {**_as_json({f.name: f.default for f in dataclasses.fields(Config)}), **saved}


def stored_config_differences(saved: Mapping[str, Any], config: Config) -> list[str]:
    """``'field: saved -> config'`` for each field where a checkpoint's saved config (a dict
    from its JSON metadata) and ``config`` differ (``run_dir`` and an extended budget ignored)."""
    saved = with_defaults(saved)
    return [
        f"{name}: {saved[name]!r} -> {value!r}"
        for name, value in _as_json(config.to_dict()).items()
        if name not in IGNORED_FIELDS + budget_fields(config) and saved[name] != value
    ]


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
