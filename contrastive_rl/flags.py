"""The flags of ``crl train``: one per ``Config`` field, and how each field's text is read.

``crl train`` adds them to its parser; sweep specs (``--set FIELD=VALUE``) read values with the
same parsers, so a value means the same on both. Plain Python.
"""

from __future__ import annotations

import argparse
from typing import Any

from contrastive_rl.config import FIELDS
from contrastive_rl.presets import PRESETS

BOOL_WORDS = {"true": True, "1": True, "yes": True, "false": False, "0": False, "no": False}


def parse_bool(text: str) -> bool:
    if text.lower() not in BOOL_WORDS:
        raise argparse.ArgumentTypeError(f"expected true or false, got {text!r}")
    return BOOL_WORDS[text.lower()]


def parse_optional_float(text: str) -> float | None:
    if text.lower() in ("auto", "none"):
        return None
    try:
        return float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number or 'auto', got {text!r}") from None


def parse_sizes(text: str) -> tuple[int, ...]:
    try:
        return tuple(int(t) for t in text.replace(" ", ",").split(",") if t)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected sizes like 256,256, got {text!r}") from None


PARSERS = {
    "int": int,
    "float": float,
    "str": str,
    "bool": parse_bool,
    "float | None": parse_optional_float,
    "tuple[int, ...]": parse_sizes,
}


def add_config_flags(parser: argparse.ArgumentParser) -> None:
    """One flag per config field; unset flags stay absent so presets apply."""
    for name, f in FIELDS.items():
        names = [f"--{name}"] + ([f"--{name.replace('_', '-')}"] if "_" in name else [])
        kwargs: dict[str, Any] = {
            "dest": name,
            "default": argparse.SUPPRESS,
            "type": PARSERS[str(f.type)],
            "help": f"{f.metadata['help']} (default: {f.default})",
        }
        if f.type == "bool":
            kwargs.update(nargs="?", const=True)
        if name == "preset":  # no argparse choices: validation names the near miss
            kwargs["help"] += f"; one of: {', '.join(PRESETS)}"
        parser.add_argument(*names, **kwargs)
