"""Prompt stops: the K updates of a long iteration run in bounded calls with the stop flag checked
between them, the same updates bit for bit as one scan; a stop between two calls checkpoints the
iteration's collection without its updates, and the resume runs them exactly."""

import json
import os
import signal
import subprocess
import sys
import time

import jax
import numpy as np
import pytest
from test_train import TINY as TRAIN_TINY  # tests/test_train.py

from contrastive_rl.config import make_config
from contrastive_rl.runs import rundir
from contrastive_rl.runs.config_files import load_config
from contrastive_rl.runs.metrics import read_metrics
from contrastive_rl.training.budget import update_calls
from contrastive_rl.training.runner import Run
from contrastive_rl.training.trainer import Trainer, Unfinished

TINY = {**TRAIN_TINY, "steps": 1_000}  # iterations of 4 envs x 50 steps, K = 200 updates


def tiny(**kw):
    return make_config(**{**TINY, **kw})


def test_update_calls_are_bounded_and_cover_k():
    assert update_calls(200, 256) == (200,)
    assert update_calls(1600, 256) == (200,) * 8  # a divisor: one compiled size
    assert update_calls(200, 64) == (50,) * 4
    assert update_calls(1601, 256) == (256,) * 6 + (65,)  # prime: the remainder apart
    assert update_calls(7, 4) == (4, 3)
    for k, most in [(1600, 4), (97, 8), (320, 256), (2800, 256)]:
        calls = update_calls(k, most)
        assert sum(calls) == k and max(calls) <= most and len(set(calls)) <= 2
    # what a trainer takes: up to 256 updates in its one jitted iteration, more in calls of 64
    assert Trainer(tiny()).update_calls == (200,)
    assert Trainer(tiny(num_envs=8)).update_calls == (50,) * 8
    quick = Trainer(make_config("point_FourRooms", preset="quick"))
    assert quick.update_calls == (64,) * 25 and quick.split


@pytest.fixture(scope="module")
def trainer():
    """One trainer of ``tiny()`` (one compilation) for the module; ``split`` sets its calls."""
    return Trainer(tiny())


SPLIT = (64, 64, 64, 8)  # 200 updates in calls of at most 64, the last one the remainder


@pytest.fixture
def split_trainer(trainer):
    """The trainer with its 200 updates per iteration in the 4 calls of ``SPLIT``."""
    trainer.split, trainer.update_calls = True, SPLIT
    yield trainer
    trainer.split, trainer.update_calls = False, (200,)


def leaves(tree):
    def raw(x):
        if jax.dtypes.issubdtype(x.dtype, jax.dtypes.prng_key):
            x = jax.random.key_data(x)
        return np.asarray(jax.device_get(x))

    return [raw(x) for x in jax.tree.leaves(tree)]


def same_bits(a, b):
    la, lb = leaves(a), leaves(b)
    return len(la) == len(lb) and all(
        x.dtype == y.dtype and x.tobytes() == y.tobytes() for x, y in zip(la, lb, strict=True)
    )


def test_split_iterations_are_the_one_scan_iterations_bit_for_bit(trainer):
    assert not trainer.split and trainer.update_calls == (200,)  # K <= ONE_CALL_UPDATES
    runs = []
    for calls in [(200,), SPLIT]:
        trainer.split, trainer.update_calls = len(calls) > 1, calls
        state = trainer.warmup(trainer.init(), 0)
        history = []
        for _ in range(2):
            state, metrics = trainer.iteration(state)
            history.append(jax.device_get(metrics))
        runs.append((state, history))
    trainer.split, trainer.update_calls = False, (200,)
    (one_scan, one_scan_history), (split, split_history) = runs
    assert same_bits(split, one_scan)  # parameters, optimisers, replay, envs, key
    assert same_bits(split_history, one_scan_history)  # every loss and counter


def test_a_stop_between_update_calls_checkpoints_and_the_resume_is_exact(split_trainer, tmp_path):
    trainer = split_trainer
    straight = str(tmp_path / "straight")
    rundir.prepare(straight, tiny())
    Run(tiny(), straight, progress_bar=False, trainer=trainer).run()

    real_call, calls = trainer._update_call_jit, []

    def call(*args):  # SIGTERM during the 2nd call of the 2nd training iteration
        calls.append(1)
        if len(calls) == 6:
            os.kill(os.getpid(), signal.SIGTERM)
        return real_call(*args)

    trainer._update_call_jit = call
    path = str(tmp_path / "stopped")
    rundir.prepare(path, tiny())
    run = Run(tiny(), path, progress_bar=False, trainer=trainer)
    try:
        run.run()
    finally:
        trainer._update_call_jit = real_call
    assert run.stop_signal == signal.SIGTERM and len(calls) == 6  # not a 7th call
    progress = json.load(open(f"{path}/checkpoint.json"))["progress"]
    # warm-up and one training iteration counted; the 2nd's collection is in, its updates not
    assert (progress["env_steps"], progress["grad_steps"]) == (400, 200)
    assert progress["unfinished"] == {
        "episodes": 4.0,
        "successes": progress["unfinished"]["successes"],
    }

    config = load_config(path)
    prepared = rundir.prepare(path, config, resume=True)
    Run(config, path, prepared.resume, progress_bar=False, trainer=trainer).run()
    no_clock = [
        [{k: v for k, v in r.items() if k != "wall_time" and not k.startswith("time/")} for r in rs]
        for rs in (read_metrics(straight), read_metrics(path))
    ]
    assert no_clock[0] == no_clock[1]  # every record, train/* included
    assert json.load(open(f"{path}/checkpoint.json"))["progress"]["unfinished"] is None


def test_an_unfinished_iteration_hands_back_the_absorbed_state(split_trainer):
    trainer = split_trainer
    state = trainer.warmup(trainer.init(), 0)
    before = leaves(state.learner)
    trainer.stop_requested = lambda: True
    try:
        absorbed, unfinished = trainer.iteration(state)
    finally:
        trainer.stop_requested = lambda: False
    assert isinstance(unfinished, Unfinished) and unfinished.stats["episodes"] == 4.0
    assert same_bits(leaves(absorbed.learner), before)  # no update ran
    finished, metrics = trainer.finish_iteration(absorbed, unfinished.stats)
    assert not isinstance(metrics, Unfinished) and np.isfinite(float(metrics["train/critic_loss"]))


def test_a_host_run_stopped_between_update_calls_resumes_exactly(monkeypatch, tmp_path):
    """CPU simulators in workers, the next unroll collected beside the updates: the stopped
    iteration's unroll ahead is started again on resume with the same parameters."""
    from contrastive_rl import envs

    monkeypatch.setattr(envs, "ENV_NAMES", [*envs.ENV_NAMES, "toy"])
    monkeypatch.setitem(envs.BACKENDS, "toy", ("mujoco",))
    monkeypatch.setitem(envs.HOST_ENVS, "toy", "host_toy:make")  # tests/host_toy.py
    config = make_config(
        env="toy",
        preset="debug",
        steps=300,
        eval_every=120,
        unroll_length=5,  # K = 4 envs x 5 steps = 20 updates per iteration, in calls of 8, 8, 4
        overlap_collection=True,
        num_envs=4,
        num_actors=2,
        batch_size=16,
        min_replay_size=100,
        hidden_layer_sizes=(16, 16),
        repr_dim=8,
        eval_episodes=6,
    )

    def run(path, resume=False, stop_at_call=None):
        trainer = Trainer(config)
        trainer.split, trainer.update_calls = True, (8, 8, 4)
        real_call, calls = trainer._update_call_jit, []

        def call(*args):
            calls.append(1)
            if len(calls) == stop_at_call:
                os.kill(os.getpid(), signal.SIGTERM)
            return real_call(*args)

        trainer._update_call_jit = call
        rundir.prepare(str(path), config, resume=resume)
        Run(config, str(path), resume, progress_bar=False, trainer=trainer).run()
        return calls

    run(tmp_path / "straight")
    assert len(run(tmp_path / "stopped", stop_at_call=5)) == 5  # in the 2nd training iteration
    progress = json.load(open(tmp_path / "stopped" / "checkpoint.json"))["progress"]
    assert progress["unfinished"] is not None and progress["grad_steps"] == 20
    run(tmp_path / "stopped", resume=True)
    no_clock = [
        [{k: v for k, v in r.items() if k != "wall_time" and not k.startswith("time/")} for r in rs]
        for rs in (
            read_metrics(tmp_path / "straight"),
            read_metrics(tmp_path / "stopped"),
        )
    ]
    assert no_clock[0] == no_clock[1] and len(no_clock[0]) == 3


# -- a whole `crl train` stopped by SIGTERM -----------------------------------------------------


def stop_within(args, tmp_path, seconds=10.0, start_timeout=600.0):
    """Start `crl train ARGS`; once its first evaluation is logged (training under way), send
    SIGTERM; return the seconds until the process ended, its exit status and stderr."""
    path = tmp_path / "run"
    command = [sys.executable, "-m", "contrastive_rl.cli", "train", *args, "--no-progress"]
    with open(tmp_path / "err", "w") as err:
        proc = subprocess.Popen(
            [*command, "--run_dir", str(path)], stdout=subprocess.DEVNULL, stderr=err
        )
        try:
            deadline = time.monotonic() + start_timeout
            metrics = path / "metrics.jsonl"
            while not (metrics.exists() and metrics.read_text().strip()):
                assert proc.poll() is None, (tmp_path / "err").read_text()
                assert time.monotonic() < deadline, "no evaluation logged: training did not run"
                time.sleep(0.2)
            sent = time.monotonic()
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout=seconds + 60)  # how much longer it took, if it took longer
            except subprocess.TimeoutExpired:
                pass
            took = time.monotonic() - sent
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
    return took, proc.returncode, (tmp_path / "err").read_text(), path


@pytest.mark.slow
def test_an_image_run_stops_within_seconds_of_sigterm(tmp_path):
    """100 updates of the unpooled 64x64 conv torsos per iteration: as one scan on a CPU they
    took minutes (XLA runs convolutions in loops slowly); in calls of 4 a stop waits for one."""
    took, status, err, path = stop_within(
        ["--env", "point_image_Small", "--preset", "debug", "--image_pool", "1"]
        + ["--num_envs", "2", "--batch_size", "8", "--min_replay_size", "100"]
        + ["--steps", "100000", "--eval_every", "200", "--eval_episodes", "4"],
        tmp_path,
    )
    print(f"stopped {took:.1f} s after SIGTERM")
    assert status == 143 and took < 10, (took, status, err)
    assert "stopped by SIGTERM" in err
    progress = json.load(open(path / "checkpoint.json"))["progress"]
    assert progress["env_steps"] >= 200


@pytest.mark.slow
def test_an_ant_run_stops_within_seconds_of_sigterm(tmp_path):
    """Whole-episode unrolls: 2,800 updates of the paper's networks per iteration, tens of
    seconds as one scan on a CPU, in calls of 56."""
    pytest.importorskip("mujoco")
    took, status, err, path = stop_within(
        ["--env", "ant_umaze", "--unroll_length", "0", "--num_envs", "4", "--num_actors", "1"]
        + ["--min_replay_size", "0", "--steps", "1000000", "--eval_every", "2800"]
        + ["--eval_episodes", "2"],
        tmp_path,
    )
    print(f"stopped {took:.1f} s after SIGTERM")
    assert status == 143 and took < 10, (took, status, err)
    assert "stopped by SIGTERM" in err
    assert json.load(open(path / "checkpoint.json"))["progress"]["env_steps"] >= 2800
