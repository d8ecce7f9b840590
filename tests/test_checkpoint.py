"""Checkpoints: exact round trips (typed PRNG keys included), atomicity, clear errors."""

from __future__ import annotations

import json
import os
import stat

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import struct

from contrastive_rl.config import make_config
from contrastive_rl.runs import checkpoint as ckpt
from contrastive_rl.runs.checkpoint import (
    CheckpointError,
    has_checkpoint,
    load_checkpoint,
    save_checkpoint,
)


@struct.dataclass
class Inner:
    w: jax.Array
    counts: jax.Array
    name: str = struct.field(pytree_node=False, default="inner")


@struct.dataclass
class State:
    params: dict
    inner: Inner
    key: jax.Array
    keys: jax.Array
    pixels: np.ndarray
    step: jax.Array


def make_state(seed: int = 0) -> State:
    rng = np.random.default_rng(seed)
    return State(
        params={
            "dense": {"kernel": jnp.asarray(rng.normal(size=(3, 4)), jnp.float32)},
            "layers": [jnp.arange(5, dtype=jnp.float32) * seed, jnp.zeros((2,), jnp.int32)],
        },
        inner=Inner(
            w=jnp.asarray(rng.normal(size=(2, 2)), jnp.float32),
            counts=jnp.asarray(rng.integers(0, 100, size=(6,)), jnp.int32),
        ),
        key=jax.random.key(seed),
        keys=jax.random.split(jax.random.key(seed + 1), 3),
        pixels=rng.integers(0, 256, size=(4, 4, 3)).astype(np.uint8),
        step=jnp.asarray(seed * 10, jnp.int32),
    )


def assert_trees_equal(a, b) -> None:
    la, ta = jax.tree_util.tree_flatten(a)
    lb, tb = jax.tree_util.tree_flatten(b)
    assert ta == tb
    for x, y in zip(la, lb, strict=True):
        assert type(x) is type(y) or (isinstance(x, jax.Array) and isinstance(y, jax.Array))
        assert x.dtype == y.dtype
        if jax.dtypes.issubdtype(x.dtype, jax.dtypes.prng_key):
            x, y = jax.random.key_data(x), jax.random.key_data(y)
        np.testing.assert_array_equal(np.asarray(x), np.asarray(y))


def test_round_trip_exact(tmp_path):
    state = make_state(1)
    config = make_config(preset="debug")
    meta = save_checkpoint(
        tmp_path, 7, state, {"env_steps": 1234, "grad_steps": 7, "config": config}
    )
    assert has_checkpoint(tmp_path)
    restored, metadata = load_checkpoint(tmp_path, make_state(0))

    assert_trees_equal(state, restored)
    assert isinstance(restored, State) and isinstance(restored.inner, Inner)
    assert isinstance(restored.pixels, np.ndarray) and restored.pixels.dtype == np.uint8
    assert restored.inner.counts.dtype == jnp.int32
    # The restored keys are typed keys drawing the very same numbers.
    assert jax.dtypes.issubdtype(restored.key.dtype, jax.dtypes.prng_key)
    np.testing.assert_array_equal(
        jax.random.uniform(restored.key, (5,)), jax.random.uniform(state.key, (5,))
    )
    k1, _ = jax.random.split(restored.keys[2])
    k2, _ = jax.random.split(state.keys[2])
    np.testing.assert_array_equal(jax.random.normal(k1, (3,)), jax.random.normal(k2, (3,)))

    assert metadata["step"] == 7 and metadata["env_steps"] == 1234
    assert metadata["config"] == json.loads(json.dumps(config.to_dict()))
    assert metadata["package_version"] and "wall_time" in metadata
    assert metadata == meta
    with open(tmp_path / "checkpoint.json") as f:
        assert json.load(f) == metadata


def test_plain_dict_and_python_leaves(tmp_path):
    tree = {"a": np.float32(2.5), "b": 3, "c": 1.5, "d": None, "e": (jnp.ones(2),)}
    save_checkpoint(tmp_path, 0, tree, {"loss": float("nan")})
    restored, meta = load_checkpoint(tmp_path, tree)
    assert restored["b"] == 3 and restored["c"] == 1.5 and restored["d"] is None
    assert isinstance(restored["a"], np.float32) and restored["a"] == np.float32(2.5)
    assert isinstance(restored["e"], tuple)
    assert meta["loss"] == "NaN"  # checkpoint.json stays strict JSON


def test_absent(tmp_path):
    assert not has_checkpoint(tmp_path)
    with pytest.raises(FileNotFoundError, match=str(tmp_path)):
        load_checkpoint(tmp_path, make_state())


@pytest.mark.parametrize("damage", ["truncate", "garbage", "flip"])
def test_corrupt_file(tmp_path, damage):
    save_checkpoint(tmp_path, 1, make_state(), {})
    path = tmp_path / "checkpoint.msgpack"
    data = path.read_bytes()
    if damage == "truncate":
        path.write_bytes(data[: len(data) // 2])
    elif damage == "garbage":
        path.write_bytes(b"not a checkpoint at all")
    else:  # a bit flip inside the array bytes: only the checksum sees it
        i = len(data) - 40
        path.write_bytes(data[:i] + bytes([data[i] ^ 0xFF]) + data[i + 1 :])
    with pytest.raises(CheckpointError, match="corrupt"):
        load_checkpoint(tmp_path, make_state())


def test_shape_mismatch_names_leaf(tmp_path):
    save_checkpoint(tmp_path, 1, make_state(), {})
    template = make_state()
    template = template.replace(
        params={**template.params, "dense": {"kernel": jnp.zeros((3, 5), jnp.float32)}}
    )
    with pytest.raises(CheckpointError, match=r"params/dense/kernel.*\(3, 4\).*\(3, 5\)"):
        load_checkpoint(tmp_path, template)


def test_dtype_and_structure_mismatch(tmp_path):
    save_checkpoint(tmp_path, 1, make_state(), {})
    t = make_state()
    with pytest.raises(CheckpointError, match="inner/counts"):
        load_checkpoint(tmp_path, t.replace(inner=t.inner.replace(counts=t.inner.counts * 1.0)))
    with pytest.raises(CheckpointError, match="params/extra.*missing"):
        load_checkpoint(tmp_path, t.replace(params={**t.params, "extra": jnp.zeros(1)}))
    with pytest.raises(CheckpointError, match="'key'"):
        load_checkpoint(tmp_path, t.replace(key=jnp.zeros((2,), jnp.uint32)))


def test_interrupted_save_keeps_previous(tmp_path, monkeypatch):
    first = make_state(1)
    save_checkpoint(tmp_path, 1, first, {"env_steps": 100})

    def boom(fd):
        raise OSError("disk full")

    monkeypatch.setattr(ckpt.os, "fsync", boom)
    with pytest.raises(OSError, match="disk full"):
        save_checkpoint(tmp_path, 2, make_state(2), {"env_steps": 200})
    monkeypatch.undo()

    restored, meta = load_checkpoint(tmp_path, make_state())
    assert_trees_equal(first, restored)
    assert meta["env_steps"] == 100
    assert sorted(os.listdir(tmp_path)) == ["checkpoint.json", "checkpoint.msgpack"]


def test_stray_temp_file_is_ignored_then_cleaned(tmp_path):
    first = make_state(1)
    save_checkpoint(tmp_path, 1, first, {})
    stray = tmp_path / ".checkpoint.msgpack.abc123.tmp"
    stray.write_bytes(b"half a checkpoint")  # what a killed process leaves
    restored, _ = load_checkpoint(tmp_path, make_state())
    assert_trees_equal(first, restored)
    save_checkpoint(tmp_path, 2, make_state(2), {})
    assert not stray.exists()
    assert_trees_equal(make_state(2), load_checkpoint(tmp_path, make_state())[0])


def test_stale_json_after_crash_between_files(tmp_path):
    """The data file is the commit point: its embedded metadata wins over checkpoint.json."""
    save_checkpoint(tmp_path, 1, make_state(1), {"env_steps": 100})
    old_json = (tmp_path / "checkpoint.json").read_bytes()
    save_checkpoint(tmp_path, 2, make_state(2), {"env_steps": 200})
    (tmp_path / "checkpoint.json").write_bytes(old_json)  # as if killed before the json replace
    restored, meta = load_checkpoint(tmp_path, make_state())
    assert meta["step"] == 2 and meta["env_steps"] == 200
    assert_trees_equal(make_state(2), restored)


def test_only_latest_kept(tmp_path):
    for step in range(3):
        save_checkpoint(tmp_path, step, make_state(step), {})
    assert sorted(os.listdir(tmp_path)) == ["checkpoint.json", "checkpoint.msgpack"]
    assert load_checkpoint(tmp_path, make_state())[1]["step"] == 2


def test_checkpoint_and_run_files_follow_the_umask(tmp_path):
    from contrastive_rl.runs.checkpoint import atomic_write

    previous = os.umask(0o022)
    try:
        save_checkpoint(tmp_path, 1, {"w": np.zeros(2, np.float32)})
        atomic_write(tmp_path / "other.txt", "x")
    finally:
        os.umask(previous)
    for name in ("checkpoint.msgpack", "checkpoint.json", "other.txt"):
        assert stat.S_IMODE(os.stat(tmp_path / name).st_mode) == 0o644, name
