"""A run directory written before the package layout changed (issue 25) still resumes, to a
larger budget, evaluates (at the new budget's end) and gives its policy: the public surface users
rely on holds across the move."""

import json
import os
import shutil

import numpy as np

import contrastive_rl
from contrastive_rl.cli import main
from contrastive_rl.runs.config_files import load_config
from contrastive_rl.runs.metrics import read_metrics

FIXTURE = os.path.join(os.path.dirname(os.path.abspath(__file__)), "fixtures", "run_v0_1_0")


def test_a_run_written_by_version_0_1_0_resumes_and_evaluates(tmp_path):
    run = str(tmp_path / "run")
    shutil.copytree(FIXTURE, run)
    before = read_metrics(run)
    assert [r["env_steps"] for r in before] == [400, 800]

    assert main(["train", "--resume", run, "--steps", "1200", "--no-progress"]) == 0

    after = read_metrics(run)
    assert [r["env_steps"] for r in after] == [400, 800, 1200]
    assert after[:2] == before  # the old run's records stay as they were
    assert after[2]["grad_steps"] > before[1]["grad_steps"]  # it trained on from its checkpoint
    assert load_config(run).steps == 1200
    with open(os.path.join(run, "checkpoint.json"), encoding="utf-8") as f:
        assert json.load(f)["progress"]["env_steps"] == 1200

    assert 0.0 <= after[2]["eval/success"] <= 1.0  # evaluated at the new budget's end

    policy = contrastive_rl.load_policy(run)
    spec = contrastive_rl.envs.env_spec("point_Small")
    action = policy(np.zeros(spec.obs_dim, np.float32))
    assert action.shape == (spec.action_dim,) and np.all(np.abs(action) <= 1.0)
