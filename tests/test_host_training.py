"""The one training loop on host environments: worker processes feed the same replay and
learner; exact resume; a crashing worker stops the run with a valid checkpoint."""

import json
import multiprocessing

import numpy as np
import pytest

from contrastive_rl import envs, rundir
from contrastive_rl.config import ConfigError, make_config
from contrastive_rl.runner import Run
from contrastive_rl.trainer import Trainer
from contrastive_rl.workers import WorkerError

SMALL = dict(
    preset="debug",
    num_envs=4,
    num_actors=2,
    batch_size=16,
    min_replay_size=100,
    hidden_layer_sizes=(16, 16),
    repr_dim=8,
    eval_episodes=6,
)


@pytest.fixture
def toy_envs(monkeypatch):
    """Register the toy host environments of ``host_toy`` for one test."""
    names = ["toy", "toy_raise"]
    monkeypatch.setattr(envs, "ENV_NAMES", envs.ENV_NAMES + names)
    for name in names:
        monkeypatch.setitem(envs.BACKENDS, name, ("mujoco",))
        monkeypatch.setitem(envs.HOST_ENVS, name, "host_toy:make")


def run(path, config, **kw):
    rundir.prepare(str(path), config, resume=kw.get("resume", False))
    return Run(config, str(path), progress_bar=False, **kw)


def test_host_runs_do_their_budget_and_resume_exactly(toy_envs, tmp_path):
    config = make_config(env="toy", steps=400, eval_every=160, **SMALL)
    run(tmp_path / "straight", config).run()
    straight = rundir.read_metrics(str(tmp_path / "straight"))
    # 2 warm-up rounds of 4 envs x 20 steps, then 3 iterations of 80 steps and 80 updates
    assert [r["env_steps"] for r in straight] == [160, 320, 400]
    assert straight[-1]["grad_steps"] == 240
    assert 0 <= straight[-1]["eval/success"] <= 1 and np.isfinite(straight[-1]["train/critic_loss"])

    # stops at 240 steps, with one training iteration since the evaluation at 160 pending
    run(tmp_path / "halves", config).run(stop_after_iterations=3)
    run(tmp_path / "halves", config, resume=True).run()
    halves = rundir.read_metrics(str(tmp_path / "halves"))
    assert [r["env_steps"] for r in halves] == [160, 320, 400]
    wall_clock = ("wall_time", "time/env_steps_per_s", "time/grad_steps_per_s")
    for a, b in zip(straight, halves, strict=True):  # every record, train/* included
        for key in wall_clock:
            del a[key], b[key]
        assert a == b


def test_a_crashing_worker_stops_the_run_with_a_valid_checkpoint(toy_envs, tmp_path):
    config = make_config(env="toy_raise", steps=400, eval_every=160, **SMALL)
    path = tmp_path / "crash"
    with pytest.raises(WorkerError, match="environment 'toy_raise'.*simulator exploded"):
        run(path, config).run()
    meta = json.load(open(path / "checkpoint.json"))
    assert meta["progress"]["env_steps"] == 0  # the crash came in the first round
    resumed = Run(config, str(path), resume=True, progress_bar=False)  # the checkpoint loads
    assert resumed.progress.env_steps == 0
    resumed.trainer.close()


def test_a_refused_config_stops_the_workers_it_started(toy_envs):
    with pytest.raises(ConfigError, match="unroll_length \\(5\\) must be 0 or the episode length"):
        Trainer(make_config(env="toy", unroll_length=5, **SMALL))  # known only once built
    assert multiprocessing.active_children() == []


@pytest.mark.parametrize(
    "env, steps", [("sawyer_push", 1_200), ("fetch_reach", 400), ("ant_umaze", 5_600)]
)
def test_each_simulator_family_trains(env, steps, tmp_path):
    config = make_config(env=env, steps=steps, eval_every=10_000, **SMALL)
    result = run(tmp_path / env, config).run()
    records = rundir.read_metrics(str(tmp_path / env))
    assert records[-1]["grad_steps"] > 0 and np.isfinite(records[-1]["train/critic_loss"])
    assert 0.0 <= result["eval/success"] <= 1.0 and np.isfinite(result["eval/final_dist"])
