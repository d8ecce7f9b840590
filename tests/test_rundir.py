"""Run directories: refusal, resume, overwrite; metrics JSONL/CSV/TensorBoard."""

from __future__ import annotations

import csv
import json
import math
import os

import jax.numpy as jnp
import numpy as np
import pytest

from contrastive_rl.config import make_config
from contrastive_rl.errors import RunDirError
from contrastive_rl.runs.checkpoint import save_checkpoint
from contrastive_rl.runs.config_files import config_differences, load_config
from contrastive_rl.runs.lock import LOCK_FILE
from contrastive_rl.runs.metrics import (
    MetricsLogger,
    read_evaluations,
    read_metrics,
    record_evaluation,
)
from contrastive_rl.runs.rundir import RunDir, default_run_dir, prepare


def cfg(**overrides):
    return make_config(preset="debug", **overrides)


def strict_json(line: str):
    def refuse(token):
        raise ValueError(f"non-standard JSON token {token}")

    return json.loads(line, parse_constant=refuse)


def read_csv(path):
    with open(path, newline="") as f:
        return list(csv.reader(f))


# -- config and directory ----------------------------------------------------------------------


def test_default_run_dir():
    assert default_run_dir(cfg(seed=3)) == os.path.join(
        "runs", "point_FourRooms-contrastive_nce-s3"
    )
    assert default_run_dir(cfg(run_dir="elsewhere")) == "elsewhere"


def test_prepare_fresh_and_load_config(tmp_path):
    path = str(tmp_path / "run")
    config = cfg(entropy_coefficient=None, hidden_layer_sizes=(16, 8, 4))
    rd = prepare(path, config)
    assert isinstance(rd, RunDir) and rd.path == path and not rd.resume
    assert rd.config.run_dir == path
    with open(os.path.join(path, "config.json")) as f:
        stored = json.load(f)
    assert stored["hidden_layer_sizes"] == [16, 8, 4] and stored["entropy_coefficient"] is None
    loaded = load_config(path)
    assert loaded.hidden_layer_sizes == (16, 8, 4) and isinstance(loaded.hidden_layer_sizes, tuple)
    assert loaded.entropy_coefficient is None and loaded.adaptive_entropy
    assert loaded == rd.config
    assert not [n for n in os.listdir(path) if n.endswith(".tmp")]


def test_load_config_converts_ints_and_rejects_unknown(tmp_path):
    d = cfg().to_dict()
    d["utd"] = 2  # hand-edited: an int in a float field
    (tmp_path / "config.json").write_text(json.dumps(d))
    c = load_config(tmp_path / "config.json")
    assert c.utd == 2.0 and isinstance(c.utd, float)
    d["not_a_field"] = 1
    (tmp_path / "config.json").write_text(json.dumps(d))
    with pytest.raises(RunDirError, match="not_a_field"):
        load_config(tmp_path)
    with pytest.raises(FileNotFoundError, match="nowhere"):
        load_config(tmp_path / "nowhere")


def test_different_config_refused(tmp_path):
    path = str(tmp_path)
    prepare(path, cfg(batch_size=32))
    with pytest.raises(RunDirError) as e:
        prepare(path, cfg(batch_size=64))
    msg = str(e.value)
    assert "--resume" in msg and "--overwrite" in msg and "batch_size: 32 -> 64" in msg
    assert load_config(path).batch_size == 32  # untouched


def test_run_dir_field_is_not_a_difference(tmp_path):
    path = str(tmp_path)
    prepare(path, cfg())
    prepare(path, cfg(run_dir=path))  # same experiment, same place
    assert config_differences(cfg(run_dir="a"), cfg(run_dir="b")) == []


def test_same_config_with_checkpoint_refused(tmp_path):
    path = str(tmp_path)
    prepare(path, cfg())
    MetricsLogger(path).close()
    prepare(path, cfg())  # no checkpoint yet: starting again loses nothing
    save_checkpoint(path, 1, {"x": jnp.ones(2)}, {"env_steps": 10})
    with pytest.raises(RunDirError, match="--resume"):
        prepare(path, cfg())


def test_resume_uses_directory_config(tmp_path):
    path = str(tmp_path)
    prepare(path, cfg(batch_size=32))
    save_checkpoint(path, 1, {"x": jnp.ones(2)}, {"env_steps": 10})
    rd = prepare(path, cfg(batch_size=64), resume=True)
    assert rd.resume and rd.config.batch_size == 32 and rd.config.run_dir == path
    assert load_config(path).batch_size == 32


def test_resume_without_checkpoint_restarts_with_stored_config(tmp_path):
    path = str(tmp_path)
    prepare(path, cfg(batch_size=32))
    with MetricsLogger(path) as m:
        m.log({"env_steps": 5, "x": 1.0})
    rd = prepare(path, cfg(batch_size=64), resume=True)
    assert not rd.resume and rd.config.batch_size == 32
    assert not os.path.exists(os.path.join(path, "metrics.jsonl"))


def test_resume_without_run_names_path(tmp_path):
    path = str(tmp_path / "empty")
    with pytest.raises(RunDirError, match=f"--resume.*{path}"):
        prepare(path, cfg(), resume=True)
    with pytest.raises(RunDirError, match="exclude"):
        prepare(path, cfg(), resume=True, overwrite=True)


def test_overwrite_deletes_old_run(tmp_path):
    path = str(tmp_path)
    prepare(path, cfg(batch_size=32))
    with MetricsLogger(path) as m:
        m.log({"env_steps": 5, "x": 1.0})
    save_checkpoint(path, 1, {"x": jnp.ones(2)}, {})
    record_evaluation(path, {"env_steps": 5, "eval/success": 0.5, "episodes": 1000})
    (tmp_path / "notes.txt").write_text("mine")
    rd = prepare(path, cfg(batch_size=64), overwrite=True)
    assert rd.config.batch_size == 64 and not rd.resume
    assert sorted(set(os.listdir(path)) - {LOCK_FILE}) == ["config.json", "notes.txt"]
    assert load_config(path).batch_size == 64


def test_leftovers_without_config_refused(tmp_path):
    save_checkpoint(tmp_path, 1, {"x": jnp.ones(2)}, {})
    with pytest.raises(RunDirError, match="--overwrite"):
        prepare(str(tmp_path), cfg())
    prepare(str(tmp_path), cfg(), overwrite=True)


def test_a_second_writer_is_refused_naming_the_process_that_holds_the_directory(tmp_path):
    path = str(tmp_path / "run")
    first = prepare(path, cfg())  # holds the directory until released (or the process ends)
    with MetricsLogger(path) as m:
        m.log({"env_steps": 5, "x": 1.0})
    before = sorted(os.listdir(path))
    for resume in (False, True):
        with pytest.raises(RunDirError, match=rf"in use by another run \(process {os.getpid()}\)"):
            prepare(path, cfg(), resume=resume)
    assert sorted(os.listdir(path)) == before and read_metrics(path)[0]["x"] == 1.0
    first.release()
    assert not prepare(path, cfg(), resume=True).resume  # free again


def test_a_missing_checkpoint_data_file_is_refused_and_nothing_is_deleted(tmp_path):
    path = str(tmp_path)
    prepare(path, cfg())
    with MetricsLogger(path) as m:
        m.log({"env_steps": 5, "x": 1.0})
    save_checkpoint(path, 5, {"x": jnp.ones(2)}, {"env_steps": 5})
    os.remove(os.path.join(path, "checkpoint.msgpack"))
    with pytest.raises(RunDirError, match="checkpoint.msgpack is missing.*--overwrite"):
        prepare(path, cfg(), resume=True)
    with pytest.raises(RunDirError, match="checkpoint.msgpack is missing.*--overwrite"):
        prepare(path, cfg())
    assert read_metrics(path) == [{"env_steps": 5, "x": 1.0}]
    assert os.path.exists(os.path.join(path, "checkpoint.json"))


# -- metrics -----------------------------------------------------------------------------------


def test_metrics_jsonl_csv_tb(tmp_path):
    path = str(tmp_path)
    with MetricsLogger(path) as m:
        m.log({"env_steps": 0, "loss": 1.5})
        m.log({"env_steps": 10, "loss": np.float32(0.5), "success": jnp.asarray(0.25)})
        m.log({"env_steps": 20, "loss": float("nan"), "q": float("inf"), "success": 1.0})
        m.log({"env_steps": 30, "loss": -math.inf, "done": True})

    lines = (tmp_path / "metrics.jsonl").read_text().splitlines()
    recs = [strict_json(line) for line in lines]  # strict JSON throughout
    assert recs[0] == {"env_steps": 0, "loss": 1.5}
    assert recs[2] == {"env_steps": 20, "loss": "NaN", "q": "Infinity", "success": 1.0}
    assert recs[3] == {"env_steps": 30, "loss": "-Infinity", "done": 1}

    back = read_metrics(path)
    assert math.isnan(back[2]["loss"]) and back[2]["q"] == math.inf
    assert back[3]["loss"] == -math.inf and back[1]["success"] == 0.25

    rows = read_csv(tmp_path / "metrics.csv")
    assert rows[0] == ["env_steps", "loss", "success", "q", "done"]
    assert rows[1] == ["0", "1.5", "", "", ""]
    assert rows[2] == ["10", "0.5", "0.25", "", ""]
    assert rows[3] == ["20", "nan", "1.0", "inf", ""]
    assert rows[4] == ["30", "-inf", "", "", "1"]
    assert all(len(r) == 5 for r in rows)

    events = os.listdir(tmp_path / "tb")
    assert any(e.startswith("events.out.tfevents") for e in events)
    assert os.path.getsize(tmp_path / "tb" / events[0]) > 0


def test_metrics_records_need_env_steps(tmp_path):
    with MetricsLogger(str(tmp_path)) as m:
        with pytest.raises(ValueError, match="env_steps"):
            m.log({"loss": 1.0})
        with pytest.raises(TypeError, match="note"):
            m.log({"env_steps": 1, "note": "text"})


def test_resume_appends_and_truncate_after(tmp_path):
    path = str(tmp_path)
    with MetricsLogger(path) as m:
        for s in (0, 10, 20, 30):
            m.log({"env_steps": s, "loss": float(s)})
        m.log({"env_steps": 40, "loss": 4.0, "late": 1.0})
    # The run died after logging 30 and 40 with its checkpoint at 20; resume re-logs them.
    with MetricsLogger(path, resume=True) as m:
        assert m.truncate_after(20) == 2
        assert [r["env_steps"] for r in read_metrics(path)] == [0, 10, 20]
        assert read_csv(tmp_path / "metrics.csv")[0] == ["env_steps", "loss"]
        m.log({"env_steps": 30, "loss": 3.5})
    assert [(r["env_steps"], r["loss"]) for r in read_metrics(path)] == [
        (0, 0.0),
        (10, 10.0),
        (20, 20.0),
        (30, 3.5),
    ]
    rows = read_csv(tmp_path / "metrics.csv")
    assert [r[0] for r in rows] == ["env_steps", "0", "10", "20", "30"]
    assert not [n for n in os.listdir(path) if n.endswith(".tmp")]


def test_resume_drops_half_written_line(tmp_path):
    path = str(tmp_path)
    with MetricsLogger(path) as m:
        m.log({"env_steps": 0, "loss": 1.0})
    with open(tmp_path / "metrics.jsonl", "a") as f:
        f.write('{"env_steps": 10, "lo')  # killed mid-write
    with MetricsLogger(path, resume=True) as m:
        m.log({"env_steps": 10, "loss": 2.0})
    assert [r["env_steps"] for r in read_metrics(path)] == [0, 10]
    assert read_csv(tmp_path / "metrics.csv")[1:] == [["0", "1.0"], ["10", "2.0"]]


def test_fresh_logger_starts_new_files(tmp_path):
    path = str(tmp_path)
    with MetricsLogger(path) as m:
        m.log({"env_steps": 0, "loss": 1.0})
    with MetricsLogger(path) as m:
        m.log({"env_steps": 0, "other": 2.0})
    assert read_metrics(path) == [{"env_steps": 0, "other": 2.0}]
    assert len(os.listdir(tmp_path / "tb")) == 1


def test_evaluations_are_added_to_and_an_interrupted_line_is_dropped(tmp_path):
    record_evaluation(tmp_path, {"env_steps": 10, "eval/success": 0.25, "episodes": 1000})
    with open(tmp_path / "evaluations.jsonl", "a") as f:
        f.write('{"env_steps": 20, "eval/succ')  # a write cut short (no newline)
    record_evaluation(tmp_path, {"env_steps": 20, "eval/success": float("nan"), "episodes": 5})
    records = read_evaluations(tmp_path)
    assert [r["env_steps"] for r in records] == [10, 20] and records[0]["eval/success"] == 0.25
    assert math.isnan(records[1]["eval/success"])
    # a whole line that is not a record is skipped when read, and kept as it is when added to
    with open(tmp_path / "evaluations.jsonl", "a") as f:
        f.write("not json\n")
    record_evaluation(tmp_path, {"env_steps": 30, "eval/success": 0.5, "episodes": 5})
    assert (tmp_path / "evaluations.jsonl").read_text().splitlines()[2] == "not json"
    with pytest.warns(UserWarning, match="not a JSON record"):
        assert [r["env_steps"] for r in read_evaluations(tmp_path)] == [10, 20, 30]
