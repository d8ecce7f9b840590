"""The crl command: train, resume, eval, list, and errors that name the valid choices."""

import json

import pytest

from contrastive_rl import rundir
from contrastive_rl.cli import main

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
    config = rundir.load_config(path)
    assert config.hidden_layer_sizes == (16, 16) and config.batch_size == 16

    assert main(["eval", path, "--episodes", "30"]) == 0
    evaluated = json.loads(capsys.readouterr().out)
    assert evaluated["env_steps"] == 1000 and "eval/final_dist" in evaluated

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
    assert main(["train", "--resume", str(tmp_path), "--batch_size", "8"]) == 2
    assert "remove --batch_size" in capsys.readouterr().err


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
