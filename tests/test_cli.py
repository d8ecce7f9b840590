"""The crl command: train, resume, eval, list, and errors that name the valid choices."""

import dataclasses
import errno
import json
import os
import signal

import pytest

from contrastive_rl.cli import main
from contrastive_rl.runs.config_files import load_config
from contrastive_rl.runs.metrics import read_evaluations, read_metrics

TINY = [
    "--env",
    "point_Small",
    "--preset",
    "debug",
    "--steps",
    "1000",
    "--num_envs",
    "4",
    "--batch_size",
    "16",
    "--min_replay_size",
    "200",
    "--hidden_layer_sizes",
    "16,16",
    "--repr_dim",
    "8",
    "--eval_every",
    "400",
    "--eval_episodes",
    "20",
    "--no-progress",
]


def test_train_then_eval_then_refuse_then_resume(tmp_path, capsys):
    path = str(tmp_path / "run")
    assert main(["train", *TINY, "--run-dir", path]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["run_dir"] == path and 0 <= out["eval/success"] <= 1
    config = load_config(path)
    assert config.hidden_layer_sizes == (16, 16) and config.batch_size == 16

    assert main(["eval", path, "--episodes", "30"]) == 0
    evaluated = json.loads(capsys.readouterr().out)
    assert evaluated["env_steps"] == 1000 and "eval/final_dist" in evaluated
    # kept in the run's evaluations.jsonl with its number of episodes (crl report reads it)
    assert read_evaluations(path) == [{**evaluated, "episodes": 30}]
    assert main(["eval", path, "--episodes", "0"]) == 2
    assert "--episodes must be positive, got 0" in capsys.readouterr().err
    assert main(["eval", path, "--episodes", "20", "--no-record"]) == 0
    assert len(read_evaluations(path)) == 1

    # the same directory with another config is refused, and nothing is lost
    before = open(f"{path}/metrics.jsonl").read()
    assert main(["train", *TINY, "--batch_size", "8", "--run_dir", path]) == 2
    assert "--resume" in capsys.readouterr().err
    assert open(f"{path}/metrics.jsonl").read() == before

    # resuming a finished run does nothing more and keeps its records
    assert main(["train", "--resume", path, "--no-progress"]) == 0
    assert open(f"{path}/metrics.jsonl").read() == before
    assert json.loads(capsys.readouterr().out)["eval/success"] == out["eval/success"]


@pytest.mark.parametrize(
    "argv, message",
    [
        (["train", "--env", "point_FourRoom"], "did you mean 'point_FourRooms'"),
        (["train", "--alg", "cpc"], "valid choices: contrastive_nce"),
        (["train", "--steps", "0"], "steps must be positive"),
        (["train", "--random_goals", "0.2"], "random_goals must be one of"),
        (
            ["train", "--env", "point_image_Small", "--image_pool", "5"],
            "image_pool (5) must divide",
        ),
    ],
)
def test_bad_input_exits_2_with_the_reason(argv, message, capsys, tmp_path):
    assert main([*argv, "--run_dir", str(tmp_path / "r")]) == 2
    assert message in capsys.readouterr().err
    assert not (tmp_path / "r").exists()  # refused before anything was written


def test_unknown_flag_suggests_the_closest(capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["train", "--bach_size", "3"])
    assert exit_info.value.code == 2
    assert "--batch_size" in capsys.readouterr().err


def test_resume_refuses_other_flags(tmp_path, capsys):
    assert main(["train", "--resume", str(tmp_path), "--batch_size", "8", "--steps", "9"]) == 2
    assert "only --steps may be given" in capsys.readouterr().err


def test_resume_with_steps_extends_a_finished_run(tmp_path, capsys):
    path = str(tmp_path / "run")
    assert main(["train", *TINY, "--run-dir", path]) == 0
    capsys.readouterr()
    assert main(["train", "--resume", path, "--steps", "1400", "--no-progress"]) == 0
    assert json.loads(capsys.readouterr().out)["status"] == "completed"
    assert [r["env_steps"] for r in read_metrics(path)] == [400, 800, 1000, 1200, 1400]
    assert load_config(path).steps == 1400
    assert main(["train", "--resume", path, "--steps", "1000", "--no-progress"]) == 2
    assert "give more than its 1400 steps" in capsys.readouterr().err


def test_list_shows_every_environment_and_algorithm(capsys):
    assert main(["list"]) == 0
    out = capsys.readouterr().out
    for name in [
        "point_FourRooms",
        "sawyer_push",
        "fetch_reach",
        "ant_umaze",
        "offline_ant_large_diverse",
        "point_image_Spiral11x11",
        "contrastive_nce",
        "contrastive_cpc",
        "c_learning",
        "nce+c_learning",
        "gcbc",
        "quick",
        "paper",
    ]:
        assert name in out, name
    # a preset's per-algorithm settings are listed under it
    assert "contrastive_nce also: energy=l2, contrastive_loss=symmetric_infonce" in out


def test_a_budget_that_cannot_run_is_refused_before_the_run_directory_is_written(tmp_path, capsys):
    path = tmp_path / "run"
    args = ["train", *TINY, "--run-dir", str(path), "--steps", "100"]
    assert main(args) == 2
    assert "leaves no training" in capsys.readouterr().err
    assert not path.exists()  # a corrected command is not blocked by a half-made run


def test_a_mistyped_preset_gets_did_you_mean(capsys, tmp_path):
    assert main(["train", "--preset", "quik", "--run_dir", str(tmp_path / "r")]) == 2
    assert "did you mean 'quick'" in capsys.readouterr().err


def test_flag_prefixes_are_not_taken_for_flags(capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["train", "--step", "1"])
    assert exit_info.value.code == 2
    assert "unknown flag '--step'" in capsys.readouterr().err


TRAINERS = {}  # config (run_dir aside) -> Trainer, shared by the tests of this module


@pytest.fixture
def one_compilation(monkeypatch):
    """`crl train` builds its Trainer through a cache: runs of one config compile once."""
    from contrastive_rl.training import trainer as trainer_module

    real_trainer = trainer_module.Trainer

    def trainer(config):
        key = dataclasses.replace(config, run_dir="")
        if key not in TRAINERS:
            TRAINERS[key] = real_trainer(config)
        return TRAINERS[key]

    monkeypatch.setattr(trainer_module, "Trainer", trainer)


def signal_at_iteration(monkeypatch, trainer, signum, at):
    """Send ``signum`` to this process during iteration ``at`` (as Ctrl-C or `kill` would)."""
    real, calls = trainer.iteration, []

    def iteration(state):
        calls.append(1)
        if len(calls) == at:
            os.kill(os.getpid(), signum)
        return real(state)

    monkeypatch.setattr(trainer, "iteration", iteration)


@pytest.mark.parametrize("signum, status", [(signal.SIGINT, 130), (signal.SIGTERM, 143)])
def test_a_stopped_run_says_so_and_exits_with_128_plus_the_signal(
    signum, status, one_compilation, monkeypatch, tmp_path, capsys
):
    from contrastive_rl.training.trainer import Trainer

    path = str(tmp_path / "run")
    signal_at_iteration(monkeypatch, Trainer(make_config_of(TINY)), signum, at=2)
    assert main(["train", *TINY, "--run_dir", path]) == status
    captured = capsys.readouterr()
    assert json.loads(captured.out)["status"] == "stopped"
    assert f"stopped by {signal.Signals(signum).name} at 600 of 1000 env steps (not finished)" in (
        captured.err
    )
    assert json.load(open(f"{path}/checkpoint.json"))["progress"]["env_steps"] == 600


def test_a_second_ctrl_c_aborts_at_once_and_keeps_the_last_checkpoint(
    one_compilation, monkeypatch, tmp_path, capsys
):
    from contrastive_rl.training.trainer import Trainer

    path = str(tmp_path / "run")
    trainer = Trainer(make_config_of(TINY))
    real, calls = trainer.iteration, []

    def iteration(state):
        calls.append(1)
        if len(calls) == 1:
            os.kill(os.getpid(), signal.SIGTERM)  # stop after this iteration, with a checkpoint
            os.kill(os.getpid(), signal.SIGINT)  # and now
        return real(state)

    monkeypatch.setattr(trainer, "iteration", iteration)
    assert main(["train", *TINY, "--run_dir", path]) == 130
    assert "crl train: aborted" in capsys.readouterr().err
    assert not os.path.exists(f"{path}/checkpoint.msgpack")  # none was due yet


def test_a_full_disk_is_one_line_and_the_last_checkpoint_stays_intact(
    one_compilation, monkeypatch, tmp_path, capsys
):
    from contrastive_rl.runs import checkpoint
    from contrastive_rl.training.trainer import Trainer

    path = str(tmp_path / "run")
    trainer = Trainer(make_config_of(TINY))
    signal_at_iteration(monkeypatch, trainer, signal.SIGTERM, at=1)
    assert main(["train", *TINY, "--run_dir", path]) == 143  # a checkpoint at 400 env steps
    monkeypatch.delattr(trainer, "iteration")

    def disk_full(directory, *args, **kw):
        raise OSError(errno.ENOSPC, "No space left on device", f"{directory}/checkpoint.msgpack")

    real_save = checkpoint.save_checkpoint
    monkeypatch.setattr(checkpoint, "save_checkpoint", disk_full)
    capsys.readouterr()
    assert main(["train", "--resume", path, "--no-progress"]) == 74
    assert capsys.readouterr().err.strip().splitlines()[-1] == (
        f"crl train: error: file-system error at {path}/checkpoint.msgpack: No space left on "
        f"device; the last checkpoint (400 env steps) is intact; fix this, then continue with "
        f"`crl train --resume {path}`"
    )
    monkeypatch.setattr(checkpoint, "save_checkpoint", real_save)
    assert main(["train", "--resume", path, "--no-progress"]) == 0  # space freed: it continues
    assert json.load(open(f"{path}/checkpoint.json"))["progress"]["env_steps"] == 1000


def test_a_run_dir_under_a_file_is_one_line_naming_path_and_cause(tmp_path, capsys):
    (tmp_path / "file").write_text("not a directory")
    path = str(tmp_path / "file" / "run")
    assert main(["train", *TINY, "--run_dir", path]) == 74
    lines = capsys.readouterr().err.strip().splitlines()
    err = [line for line in lines if not line.startswith("replay: ")]  # the start-up size line
    assert err == [
        f"crl train: error: file-system error at {path}: Not a directory; no checkpoint was "
        "written; fix this and start the run again"
    ]


def make_config_of(argv):
    """The config `crl train ARGV` resolves (run_dir aside)."""
    from contrastive_rl.cli import build_parser
    from contrastive_rl.config import FIELDS, make_config

    args, _ = build_parser().parse_known_args(["train", *argv])
    return make_config(**{k: v for k, v in vars(args).items() if k in FIELDS})


# -- exit statuses through `crl`'s own main (docs/resume.md) ---------------------------------------


def test_a_bug_while_training_keeps_its_traceback_and_is_not_bad_input(
    one_compilation, monkeypatch, tmp_path, capsys
):
    """Exit 2 means refused before anything was written; a ValueError from a bug in the middle
    of training propagates (the interpreter prints its traceback and exits 1)."""
    from contrastive_rl.training.trainer import Trainer

    trainer = Trainer(make_config_of(TINY))
    real, calls = trainer.iteration, []

    def iteration(state):
        calls.append(1)
        if len(calls) == 2:
            raise ValueError("operands could not be broadcast together")  # a bug, not input
        return real(state)

    monkeypatch.setattr(trainer, "iteration", iteration)
    path = str(tmp_path / "run")
    with pytest.raises(ValueError, match="could not be broadcast"):
        main(["train", *TINY, "--run_dir", path])
    assert "crl train: error" not in capsys.readouterr().err
    assert os.path.exists(f"{path}/metrics.jsonl")  # it was written to: not a refusal


def test_a_diverged_run_exits_3_in_one_line_and_keeps_its_last_good_checkpoint(
    one_compilation, monkeypatch, tmp_path, capsys
):
    import numpy as np

    from contrastive_rl.training.trainer import Trainer

    trainer = Trainer(make_config_of([*TINY, "--checkpoint_every_s", "1e-6"]))
    real, calls = trainer.iteration, []

    def iteration(state):  # the 2nd iteration's critic loss is NaN
        state, metrics = real(state)
        calls.append(1)
        if len(calls) == 2:
            metrics = {**metrics, "train/critic_loss": np.float32(np.nan)}
        return state, metrics

    monkeypatch.setattr(trainer, "iteration", iteration)
    path = str(tmp_path / "run")
    assert main(["train", *TINY, "--checkpoint_every_s", "1e-6", "--run_dir", path]) == 3
    last = capsys.readouterr().err.strip().splitlines()[-1]
    assert last.startswith("crl train: error: ") and "train/critic_loss" in last
    assert json.load(open(f"{path}/checkpoint.json"))["progress"]["env_steps"] == 400


@pytest.mark.parametrize(
    "env, cause",
    [
        ("toy_raise", "raised during unroll: RuntimeError: simulator exploded"),  # + its traceback
        ("toy_exit", "died during unroll \\(exit code 3\\)"),
    ],
)
def test_a_crashed_worker_exits_1_with_a_checkpoint_to_resume(
    env, cause, monkeypatch, tmp_path, capsys
):
    import re

    from contrastive_rl import envs

    monkeypatch.setattr(envs, "ENV_NAMES", [*envs.ENV_NAMES, env])
    monkeypatch.setitem(envs.BACKENDS, env, ("mujoco",))
    monkeypatch.setitem(envs.HOST_ENVS, env, "host_toy:make")  # tests/host_toy.py
    path = str(tmp_path / "run")
    argv = ["train", "--env", env, "--preset", "debug", "--steps", "400", "--num_envs", "4"]
    argv += ["--num_actors", "2", "--batch_size", "16", "--min_replay_size", "100"]
    argv += ["--hidden_layer_sizes", "16,16", "--repr_dim", "8", "--eval_episodes", "6"]
    assert main([*argv, "--no-progress", "--run_dir", path]) == 1
    err = capsys.readouterr().err
    assert re.search(
        f"\ncrl train: error: worker [01] of 2 \\(environment '{env}'\\) {cause}\n", err
    )
    assert f"the checkpoint is saved, continue with `crl train --resume {path}`" in err
    assert json.load(open(f"{path}/checkpoint.json"))["progress"]["env_steps"] == 0


def test_collect_writes_a_dataset_and_refuses_bad_input_with_2(tmp_path, capsys):
    from contrastive_rl.datasets import load_training_data
    from contrastive_rl.envs import make_env

    out = str(tmp_path / "small.hdf5")
    argv = ["collect", "--env", "offline_point_Small", "--out", out, "--num-envs", "8"]
    assert main([*argv, "--steps", str(8 * 51), "--seed", "1"]) == 0
    printed = json.loads(capsys.readouterr().out)
    assert printed["out"] == out
    data = load_training_data(out, "offline_point_Small", make_env("point_Small").spec)
    assert data.states.shape[:2] == (8, 51)
    before = open(out, "rb").read()
    assert main([*argv, "--steps", "100"]) == 2  # the file exists
    assert capsys.readouterr().err.strip() == (
        f"crl collect: error: {out} exists; pass --overwrite to replace it"
    )
    assert main(["collect", "--env", "point_Small", "--out", str(tmp_path / "x.hdf5")]) == 2
    assert "offline_point_Small" in capsys.readouterr().err  # names the valid choices
    assert open(out, "rb").read() == before
