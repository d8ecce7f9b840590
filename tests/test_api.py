"""The Python API (train, load_policy), config files, and refusals of missing optional extras."""

import importlib
import json
import os
import re
import subprocess
import sys

import numpy as np
import pytest

import contrastive_rl
from contrastive_rl.cli import main
from contrastive_rl.config import ConfigError, make_config
from contrastive_rl.envs import registry
from contrastive_rl.runs.config_files import read_config_file

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TINY = dict(
    steps=1000,
    num_envs=4,
    batch_size=16,
    min_replay_size=200,
    hidden_layer_sizes=(16, 16),
    repr_dim=8,
    eval_every=1000,
    eval_episodes=20,
)


def readme_python_example() -> str:
    text = open(os.path.join(ROOT, "README.md"), encoding="utf-8").read()
    blocks = re.findall(r"```python\n(.*?)```", text, flags=re.S)
    assert blocks, "the README has no Python example"
    return blocks[0]


def test_readme_python_example_runs_as_written(tmp_path):
    """The README's example, exactly as written, in a fresh directory."""
    result = subprocess.run(
        [sys.executable, "-c", readme_python_example()],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert "success" in result.stdout


def test_train_and_load_policy(tmp_path):
    importlib.import_module("contrastive_rl.training.trainer")
    assert callable(contrastive_rl.train)  # no submodule shadows the function
    config = make_config("point_Small", preset="debug", **TINY)
    result = contrastive_rl.train(config, str(tmp_path / "run"))
    assert 0.0 <= result["eval/success"] <= 1.0
    policy = contrastive_rl.load_policy(str(tmp_path / "run"))
    assert policy.env_steps == 1000
    obs = np.array([1.5, 1.5, 2.5, 2.5], np.float32)  # [state ; goal] of point_Small
    action = policy(obs)
    assert action.shape == (2,) and np.all(np.abs(action) <= 1.0)
    np.testing.assert_array_equal(policy(obs), action)  # deterministic: tanh(mean)
    batch = policy(np.stack([obs, obs, obs]))
    assert batch.shape == (3, 2)
    sampled = [policy(obs, deterministic=False) for _ in range(3)]
    assert not np.allclose(sampled[0], sampled[1])
    as_dict = {"observation": obs[:2], "desired_goal": obs[2:], "achieved_goal": obs[:2]}
    np.testing.assert_array_equal(policy(as_dict), action)
    with pytest.raises(ValueError, match="size 4"):
        policy(np.zeros(3))


def test_config_file_round_trip(tmp_path, capsys):
    """A run started from another run's config.json resolves to the same config."""
    config = make_config("point_U", alg="contrastive_cpc", preset="quick", seed=4, batch_size=64)
    file = tmp_path / "config.json"
    file.write_text(json.dumps({**config.to_dict(), "run_dir": "elsewhere"}))
    assert main(["train", "--config", str(file), "--print-config"]) == 0
    printed = json.loads(capsys.readouterr().out)
    assert printed == json.loads(json.dumps(config.to_dict()))  # the file's run_dir is not taken
    # flags override the file
    assert main(["train", "--config", str(file), "--seed", "9", "--print-config"]) == 0
    assert json.loads(capsys.readouterr().out)["seed"] == 9


def test_toml_config_file(tmp_path):
    file = tmp_path / "exp.toml"
    file.write_text(
        'env = "point_Cross"\npreset = "quick"\nentropy_coefficient = "auto"\n'
        "hidden_layer_sizes = [64, 64]\nlearning_rate = 1\n"
    )
    values = read_config_file(file)
    config = make_config(**values)
    assert config.env == "point_Cross" and config.hidden_layer_sizes == (64, 64)
    assert config.entropy_coefficient is None and config.learning_rate == 1.0


@pytest.mark.parametrize(
    "text, message",
    [
        ('{"batch_sise": 3}', "batch_sise.*did you mean 'batch_size'"),
        ("[1, 2]", "table of config fields"),
        ("{not json", "not valid JSON"),
    ],
)
def test_bad_config_files(tmp_path, text, message):
    file = tmp_path / "c.json"
    file.write_text(text)
    with pytest.raises(ConfigError, match=message):
        read_config_file(file)
    with pytest.raises(ConfigError, match="cannot read"):
        read_config_file(tmp_path / "missing.json")


def test_missing_extra_names_the_install_command(monkeypatch):
    installed = registry._installed
    monkeypatch.setattr(registry, "_installed", lambda d: d != "metaworld" and installed(d))
    with pytest.raises(ConfigError) as error:
        make_config("sawyer_push")
    assert "metaworld" in str(error.value)
    assert "pip install 'contrastive_rl[sawyer]'" in str(error.value)
    make_config("point_FourRooms")  # the point mazes need no extra
