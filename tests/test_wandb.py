"""`--wandb`: Weights & Biases mirrors the scalars TensorBoard gets, offline without a network."""

import glob
import math
import os
import struct
from types import SimpleNamespace

import pytest

import contrastive_rl
from contrastive_rl.config import ConfigError, make_config
from contrastive_rl.envs import registry
from contrastive_rl.runs.metrics import MetricsLogger, read_metrics

pytest.importorskip("wandb")

from contrastive_rl.runs import wandb_mirror  # noqa: E402

TINY = dict(
    steps=1000,
    num_envs=4,
    batch_size=16,
    min_replay_size=200,
    hidden_layer_sizes=(16, 16),
    repr_dim=8,
    eval_every=500,
    eval_episodes=20,
)


def tensorboard_scalars(run_dir) -> dict[str, dict[int, float]]:
    """tag -> {step: value} from the run's TensorBoard event files (TFRecord framing)."""
    from tensorboardX.proto import event_pb2

    out: dict[str, dict[int, float]] = {}
    for file in sorted(glob.glob(os.path.join(run_dir, "tb", "events.out.tfevents.*"))):
        data = open(file, "rb").read()
        at = 0
        while at < len(data):
            (length,) = struct.unpack("<Q", data[at : at + 8])
            event = event_pb2.Event.FromString(data[at + 12 : at + 12 + length])
            at += 12 + length + 4
            for value in event.summary.value:
                out.setdefault(value.tag, {})[event.step] = value.simple_value
    return out


def wandb_history(run_dir) -> list[dict[str, float]]:
    """The ``history`` records of the offline W&B run under ``run_dir`` (LevelDB log framing)."""
    from wandb.proto import wandb_internal_pb2

    (file,) = glob.glob(os.path.join(run_dir, "wandb", "offline-run-*", "run-*.wandb"))
    data = open(file, "rb").read()
    block, at, pending, payloads = 32768, 7, b"", []  # a 7-byte W&B header opens the file
    while at + 7 <= len(data):
        left = block - at % block
        if left < 7:  # a block's trailer too short for a header is padding
            at += left
            continue
        length, kind = struct.unpack("<HB", data[at + 4 : at + 7])
        chunk = data[at + 7 : at + 7 + length]
        at += 7 + length
        if kind == 1:  # FULL
            payloads.append(chunk)
        elif kind in (2, 3):  # FIRST, MIDDLE
            pending += chunk
        elif kind == 4:  # LAST
            payloads.append(pending + chunk)
            pending = b""
    history = []
    for payload in payloads:
        record = wandb_internal_pb2.Record.FromString(payload)
        if record.WhichOneof("record_type") == "history":
            import json

            history.append(
                {
                    item.key or "/".join(item.nested_key): json.loads(item.value_json)
                    for item in record.history.item
                }
            )
    return history


def by_step(history: list[dict[str, float]]) -> dict[str, dict[int, float]]:
    out: dict[str, dict[int, float]] = {}
    for row in history:
        for key, value in row.items():
            if not key.startswith("_") and key != "env_steps":
                out.setdefault(key, {})[int(row["env_steps"])] = value
    return out


def test_mirror_gets_what_tensorboard_gets(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    config = make_config("point_Small", wandb=True, wandb_mode="offline", wandb_project="t")
    mirror = wandb_mirror.WandbMirror(config, str(tmp_path), resume=False)
    with MetricsLogger(tmp_path, mirrors=[mirror]) as log:
        log.log({"env_steps": 100, "eval/success": 0.25, "train/loss": 1.5, "skip": None})
        log.log({"env_steps": 200, "eval/success": 0.5, "train/loss": float("nan")})
    assert mirror.run is None  # closed with the logger
    tb = tensorboard_scalars(tmp_path)
    mirrored = by_step(wandb_history(tmp_path))
    assert set(mirrored) == set(tb) == {"eval/success", "train/loss"}
    assert mirrored["eval/success"] == tb["eval/success"] == {100: 0.25, 200: 0.5}
    assert mirrored["train/loss"][100] == 1.5 and math.isnan(tb["train/loss"][200])
    assert os.path.isfile(tmp_path / "wandb" / "run_id")


def test_the_run_mirrors_only_when_asked(tmp_path):
    from contrastive_rl.training.runner import Run

    def mirrors(**fields):
        run = SimpleNamespace(config=make_config("point_Small", **fields), path=str(tmp_path))
        return Run._mirrors(run, resume=False)

    assert mirrors() == []
    (mirror,) = mirrors(wandb=True, wandb_mode="disabled")
    assert isinstance(mirror, wandb_mirror.WandbMirror) and mirror.step_metric == "env_steps"
    mirror.close()
    # offline runs count gradient steps: their charts' x-axis is grad_steps
    run = SimpleNamespace(
        config=make_config("point_Small", wandb=True, wandb_mode="disabled"), path=str(tmp_path)
    )
    (mirror,) = Run._mirrors(run, resume=False, step_key="grad_steps")
    assert mirror.step_metric == "grad_steps"
    mirror.close()


@pytest.mark.slow  # a whole (tiny) training run: ~40 s of CPU, 80 s on a shared 2-core machine
def test_train_with_wandb_offline_mirrors_every_logged_key(tmp_path, monkeypatch):
    monkeypatch.delenv("WANDB_API_KEY", raising=False)
    monkeypatch.delenv("WANDB_MODE", raising=False)
    monkeypatch.setenv("HOME", str(tmp_path))  # no ~/.netrc: auto means offline
    monkeypatch.setenv("NETRC", str(tmp_path / "none"))
    config = make_config("point_Small", preset="debug", wandb=True, **TINY)
    run = tmp_path / "run"
    contrastive_rl.train(config, str(run))
    tb = tensorboard_scalars(run)
    mirrored = by_step(wandb_history(run))
    assert set(mirrored) == set(tb)
    assert {"eval/success", "train/critic_loss", "time/env_steps_per_s"} <= set(tb)
    records = read_metrics(run)
    assert sorted(mirrored["eval/success"]) == [r["env_steps"] for r in records] == [600, 1000]
    for r in records:
        assert mirrored["eval/success"][r["env_steps"]] == pytest.approx(r["eval/success"])


def test_modes(monkeypatch, tmp_path):
    monkeypatch.delenv("WANDB_API_KEY", raising=False)
    monkeypatch.delenv("WANDB_MODE", raising=False)
    monkeypatch.setenv("NETRC", str(tmp_path / "none"))
    monkeypatch.setenv("HOME", str(tmp_path))
    assert wandb_mirror.resolve_mode("auto") == "offline"
    assert wandb_mirror.resolve_mode("online") == "online"
    monkeypatch.setenv("WANDB_API_KEY", "x" * 40)
    assert wandb_mirror.resolve_mode("auto") == "online"
    monkeypatch.setenv("WANDB_MODE", "disabled")
    assert wandb_mirror.resolve_mode("auto") == "disabled"
    with pytest.raises(ConfigError, match="valid choices: auto, online, offline, disabled"):
        make_config("point_Small", wandb_mode="ofline")


def test_disabled_mode_writes_no_run(tmp_path):
    config = make_config("point_Small", wandb=True, wandb_mode="disabled")
    mirror = wandb_mirror.WandbMirror(config, str(tmp_path))
    mirror.log({"eval/success": 1.0}, 10)
    mirror.close()
    assert not glob.glob(str(tmp_path / "wandb" / "*run-*"))


def test_missing_wandb_is_refused_with_the_install_command(monkeypatch):
    monkeypatch.setattr(registry, "_installed", lambda name: name != "wandb")
    with pytest.raises(ConfigError, match=r"pip install 'contrastive_rl\[wandb\]'"):
        make_config("point_Small", wandb=True)
    make_config("point_Small")  # off by default: nothing needed
