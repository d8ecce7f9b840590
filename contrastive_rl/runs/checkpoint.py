"""Checkpoints of a training state: one pytree, saved atomically, restored into a template.

Files in the checkpoint directory (the run directory):

``checkpoint.msgpack``
    The data, and the only commit point. A msgpack map (readable with any msgpack tool)::

        {"format": 1, "step": int, "metadata": "<JSON text>",
         "tree_sha256": "<hex>", "tree": <bytes: flax msgpack of the state dict>}

    ``tree`` is ``flax.serialization.msgpack_serialize`` of the pytree's state dict
    (``flax.serialization.to_state_dict``), kept as one binary blob so that its SHA-256 detects a
    truncated or damaged file. Typed PRNG key arrays (``jax.random.key``) cannot be serialized
    as such: each is stored as ``{"__prng_key_data__": uint32 array, "__prng_key_impl__": name}``
    (``jax.random.key_data``) and rebuilt with ``jax.random.wrap_key_data``, so that a restored
    key draws exactly the numbers the saved one would have.

``checkpoint.json``
    The metadata in readable form (``step``, the caller's ``env_steps``, ``grad_steps``,
    ``config``..., plus ``saved_at``, ``wall_time``, ``package_version``, ``jax_version``,
    ``flax_version``), written after the data file. The same metadata is inside the data file,
    and :func:`load_checkpoint` returns that copy: a crash between the two replacements leaves a
    stale ``checkpoint.json`` but never data paired with the wrong counters.

Both files are written to a temporary file in the same directory, flushed, fsynced and moved into
place with ``os.replace``; only the latest checkpoint is kept and the previous one stays valid
until the new one has fully replaced it. A temporary file left by a killed process is ignored by
:func:`load_checkpoint` and removed by the next :func:`save_checkpoint`.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import math
import os
import time
from collections.abc import Mapping
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from flax import serialization

from contrastive_rl.errors import InputError, MissingInputError
from contrastive_rl.runs.files import (
    DATA_FILE,
    META_FILE,
    _remove_stray_temps,
    atomic_write,
    checkpoint_path,
    has_checkpoint,
)

FORMAT_VERSION = 1

_KEY_DATA = "__prng_key_data__"
_KEY_IMPL = "__prng_key_impl__"
# Older JAX (0.4.x) prints a key implementation by its short tag; newer by its name.
_IMPL_TAGS = {"fry": "threefry2x32", "urbg": "unsafe_rbg"}


def _impl_name(key: Any) -> str:
    """The name of a typed key's PRNG implementation, the same on every supported JAX."""
    name = str(jax.random.key_impl(key))
    return _IMPL_TAGS.get(name, name)


class CheckpointError(InputError):
    """A checkpoint that cannot be restored: damaged, or not the structure of the template."""


# -- encoding of the state dict ---------------------------------------------------------------


def _is_key_array(x: Any) -> bool:
    return isinstance(x, jax.Array) and jax.dtypes.issubdtype(x.dtype, jax.dtypes.prng_key)


def _encode(node: Any) -> Any:
    """State dict -> msgpack-serializable tree (numpy leaves, PRNG keys as raw data)."""
    if isinstance(node, Mapping):
        return {str(k): _encode(v) for k, v in node.items()}
    if _is_key_array(node):
        return {
            _KEY_DATA: np.asarray(jax.random.key_data(node)),
            _KEY_IMPL: _impl_name(node),
        }
    if node is None or isinstance(node, bool | int | float | str | bytes):
        return node
    if isinstance(node, jax.Array | np.ndarray | np.generic):
        return np.asarray(node)
    raise TypeError(
        f"cannot checkpoint a leaf of type {type(node).__name__}; "
        "leaves must be arrays, numbers, strings or None"
    )


def _describe(x: Any) -> str:
    if _is_key_array(x):
        return f"PRNG key array {x.dtype} shape {tuple(x.shape)}"
    if isinstance(x, Mapping):
        if _KEY_DATA in x:
            return f"PRNG key data ({x.get(_KEY_IMPL)})"
        return f"a mapping with keys {sorted(x)}"
    if isinstance(x, np.ndarray | np.generic | jax.Array):
        return f"{x.dtype} shape {tuple(np.shape(x))}"
    return type(x).__name__


def _mismatch(path: str, saved: Any, template: Any) -> CheckpointError:
    return CheckpointError(
        f"checkpoint does not match the template at leaf {path or '<root>'!r}: "
        f"the checkpoint has {_describe(saved)}, the template expects {_describe(template)}"
    )


def _decode(saved: Any, template: Any, path: str) -> Any:
    """Rebuild the template's state dict from ``saved``, checking structure, shapes and dtypes."""
    if _is_key_array(template):
        if not (isinstance(saved, Mapping) and _KEY_DATA in saved and _KEY_IMPL in saved):
            raise _mismatch(path, saved, template)
        impl = _impl_name(template)
        data = np.asarray(saved[_KEY_DATA])
        expected = jax.random.key_data(template)
        saved_impl = _IMPL_TAGS.get(saved[_KEY_IMPL], saved[_KEY_IMPL])
        if saved_impl != impl or data.shape != expected.shape or data.dtype != expected.dtype:
            raise CheckpointError(
                f"checkpoint does not match the template at leaf {path!r}: the checkpoint has a "
                f"{saved[_KEY_IMPL]} key with data {data.dtype} {data.shape}, the template a "
                f"{impl} key with data {expected.dtype} {tuple(expected.shape)}"
            )
        return jax.random.wrap_key_data(jnp.asarray(data), impl=jax.random.key_impl(template))
    if isinstance(template, Mapping):
        if not isinstance(saved, Mapping) or _KEY_DATA in saved:
            raise _mismatch(path, saved, template)
        for k in template:
            if k not in saved:
                raise CheckpointError(
                    f"checkpoint does not match the template: leaf {_join(path, k)!r} "
                    "is missing from the checkpoint"
                )
        for k in saved:
            if k not in template:
                raise CheckpointError(
                    f"checkpoint does not match the template: the checkpoint has leaf "
                    f"{_join(path, k)!r}, which the template lacks"
                )
        return {k: _decode(saved[k], template[k], _join(path, k)) for k in template}
    if template is None:
        if saved is not None:
            raise _mismatch(path, saved, template)
        return None
    if isinstance(template, jax.Array | np.ndarray | np.generic):
        if not isinstance(saved, np.ndarray | np.generic):
            raise _mismatch(path, saved, template)
        if saved.shape != np.shape(template) or saved.dtype != template.dtype:
            raise _mismatch(path, saved, template)
        if isinstance(template, jax.Array):
            return jnp.asarray(saved)
        if isinstance(template, np.generic):
            return saved[()] if isinstance(saved, np.ndarray) else saved
        return np.array(saved)
    if isinstance(template, bool | int | float | str | bytes):
        if type(saved) is not type(template) and not (
            isinstance(template, float) and isinstance(saved, int) and not isinstance(saved, bool)
        ):
            raise _mismatch(path, saved, template)
        return type(template)(saved)
    raise TypeError(f"cannot restore a leaf of type {type(template).__name__} at {path!r}")


def _join(path: str, key: str) -> str:
    return f"{path}/{key}" if path else str(key)


def _jsonable(x: Any) -> Any:
    """``json.dumps`` default: configs, numpy scalars and arrays."""
    if dataclasses.is_dataclass(x) and not isinstance(x, type):
        to_dict = getattr(x, "to_dict", None)
        return to_dict() if callable(to_dict) else dataclasses.asdict(x)
    if isinstance(x, np.generic):
        return x.item()
    if isinstance(x, np.ndarray | jax.Array):
        return np.asarray(x).tolist()
    raise TypeError(f"metadata value of type {type(x).__name__} is not JSON serializable")


def _finite_or_str(x: Any) -> Any:
    """Non-finite floats as the strings 'NaN', 'Infinity', '-Infinity' (valid JSON)."""
    if isinstance(x, float) and not math.isfinite(x):
        return "NaN" if math.isnan(x) else ("Infinity" if x > 0 else "-Infinity")
    if isinstance(x, dict):
        return {k: _finite_or_str(v) for k, v in x.items()}
    if isinstance(x, list | tuple):
        return [_finite_or_str(v) for v in x]
    return x


# -- public API ------------------------------------------------------------------------------


def save_checkpoint(
    directory: str | os.PathLike[str],
    step: int,
    tree: Any,
    metadata: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """Save ``tree`` as the directory's only checkpoint; returns the metadata written.

    Args:
        directory: where ``checkpoint.msgpack`` and ``checkpoint.json`` go (created if needed).
        step: the step counter of this checkpoint (stored as ``metadata["step"]``).
        tree: any pytree flax can turn into a state dict: dicts, lists, tuples, named tuples,
            flax struct dataclasses, with jax/numpy arrays (typed PRNG keys included), Python
            numbers, strings or None as leaves.
        metadata: JSON-serializable facts about the state (e.g. ``env_steps``, ``grad_steps``,
            ``config`` as a dict or a Config). Non-finite floats become "NaN"/"Infinity".

    The previous checkpoint stays loadable until the new data file has replaced it.
    """
    from contrastive_rl.version import __version__

    directory = os.fspath(directory)
    os.makedirs(directory, exist_ok=True)
    for name in (DATA_FILE, META_FILE):
        _remove_stray_temps(directory, name)

    now = time.time()
    meta: dict[str, Any] = dict(metadata or {})
    meta.update(
        step=int(step),
        wall_time=now,
        saved_at=time.strftime("%Y-%m-%dT%H:%M:%S%z", time.localtime(now)),
        package_version=__version__,
        jax_version=jax.__version__,
        flax_version=_flax_version(),
    )
    meta_json = json.dumps(
        _finite_or_str(json.loads(json.dumps(meta, default=_jsonable))), indent=2, sort_keys=True
    )

    tree_bytes = serialization.msgpack_serialize(_encode(serialization.to_state_dict(tree)))
    payload = serialization.msgpack_serialize(
        {
            "format": FORMAT_VERSION,
            "step": int(step),
            "metadata": meta_json,
            "tree_sha256": hashlib.sha256(tree_bytes).hexdigest(),
            "tree": tree_bytes,
        }
    )
    atomic_write(os.path.join(directory, DATA_FILE), payload)  # the commit point
    atomic_write(os.path.join(directory, META_FILE), meta_json + "\n")
    return json.loads(meta_json)


def _flax_version() -> str:
    import flax

    return flax.__version__


def _read(directory: str | os.PathLike[str]) -> tuple[Any, dict, str]:
    """``(state dict, metadata, path)`` of the directory's checkpoint, its checksum verified."""
    path = checkpoint_path(directory)
    if not os.path.isfile(path):
        raise MissingInputError(f"no checkpoint at {path}")
    with open(path, "rb") as f:
        raw = f.read()
    try:
        payload = serialization.msgpack_restore(raw)
    except Exception as e:
        raise CheckpointError(
            f"checkpoint {path} is truncated or corrupt (cannot decode: {type(e).__name__}: {e})"
        ) from e
    required = {"format", "step", "metadata", "tree_sha256", "tree"}
    if not isinstance(payload, dict) or not required <= set(payload):
        raise CheckpointError(f"checkpoint {path} is corrupt or not a contrastive_rl checkpoint")
    if payload["format"] != FORMAT_VERSION:
        raise CheckpointError(
            f"checkpoint {path} has format {payload['format']!r}; this version reads "
            f"format {FORMAT_VERSION}"
        )
    tree_bytes = payload["tree"]
    if (
        not isinstance(tree_bytes, bytes)
        or hashlib.sha256(tree_bytes).hexdigest() != payload["tree_sha256"]
    ):
        raise CheckpointError(f"checkpoint {path} is corrupt (checksum mismatch)")
    try:
        saved = serialization.msgpack_restore(tree_bytes)
        metadata = json.loads(payload["metadata"])
    except Exception as e:
        raise CheckpointError(f"checkpoint {path} is corrupt ({type(e).__name__}: {e})") from e

    return saved, metadata, path


def load_subtree(
    directory: str | os.PathLike[str], keys: tuple[str, ...], template_tree: Any
) -> tuple[Any, dict]:
    """Restore one part of the checkpoint (e.g. ``("learner", "actor_params")``) into
    ``template_tree``, without a template of the whole state; errors as :func:`load_checkpoint`.
    """
    saved, metadata, path = _read(directory)
    where = ""
    for key in keys:
        if not isinstance(saved, Mapping) or key not in saved:
            raise CheckpointError(f"{path}: the checkpoint has no leaf {_join(where, key)!r}")
        saved, where = saved[key], _join(where, key)
    try:
        state = _decode(saved, serialization.to_state_dict(template_tree), where)
        return serialization.from_state_dict(template_tree, state), metadata
    except CheckpointError as e:
        raise CheckpointError(f"{path}: {e}") from None


def load_checkpoint(directory: str | os.PathLike[str], template_tree: Any) -> tuple[Any, dict]:
    """Restore the directory's checkpoint into the structure of ``template_tree``.

    Returns:
        ``(tree, metadata)``: ``tree`` has the template's type and structure (jax arrays where the
        template has jax arrays, numpy where numpy, typed PRNG keys rebuilt); ``metadata`` is
        the dict saved with the data (it includes ``step``).

    Raises:
        FileNotFoundError: no checkpoint in ``directory`` (the message names the path).
        CheckpointError: the file is truncated or damaged, or its structure, a shape or a dtype
            differs from the template's (the message names the first mismatching leaf).
    """
    saved, metadata, path = _read(directory)
    template_state = serialization.to_state_dict(template_tree)
    try:
        state = _decode(saved, template_state, "")
    except CheckpointError as e:
        raise CheckpointError(f"{path}: {e}") from None
    try:
        tree = serialization.from_state_dict(template_tree, state)
    except Exception as e:
        raise CheckpointError(
            f"{path}: cannot rebuild the template from the checkpoint ({e})"
        ) from e
    return tree, metadata


__all__ = [
    "DATA_FILE",
    "META_FILE",
    "CheckpointError",
    "atomic_write",
    "checkpoint_path",
    "has_checkpoint",
    "load_checkpoint",
    "load_subtree",
    "save_checkpoint",
]
