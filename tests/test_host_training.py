"""The one training loop on host environments: worker processes feed the same replay and
learner; short unrolls refresh the policy on schedule, beside learning or strictly alternating;
exact resume, mid-episode too; a crashing or killed worker stops the run with a valid checkpoint."""

import json
import multiprocessing

import host_toy
import jax
import numpy as np
import pytest

from contrastive_rl import envs
from contrastive_rl.actors.policy import ActorPolicy
from contrastive_rl.actors.workers import WorkerError
from contrastive_rl.config import ConfigError, make_config
from contrastive_rl.runs import rundir
from contrastive_rl.runs.metrics import read_metrics
from contrastive_rl.training.collect import episode_seeds, unroll_key_data
from contrastive_rl.training.runner import Run
from contrastive_rl.training.trainer import Trainer

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


def register_toy_envs(monkeypatch):
    names = ["toy", "toy_raise", "toy_kill_once"]
    monkeypatch.setattr(envs, "ENV_NAMES", envs.ENV_NAMES + names)
    for name in names:
        monkeypatch.setitem(envs.BACKENDS, name, ("mujoco",))
        monkeypatch.setitem(envs.HOST_ENVS, name, "host_toy:make")


@pytest.fixture
def toy_envs(monkeypatch):
    """Register the toy host environments of ``host_toy`` for one test."""
    register_toy_envs(monkeypatch)


def run(path, config, **kw):
    rundir.prepare(str(path), config, resume=kw.get("resume", False))
    return Run(config, str(path), progress_bar=False, **kw)


def test_host_runs_do_their_budget_and_resume_exactly(toy_envs, tmp_path):
    config = make_config(env="toy", steps=400, eval_every=160, unroll_length=0, **SMALL)
    run(tmp_path / "straight", config).run()
    straight = read_metrics(str(tmp_path / "straight"))
    # 2 warm-up rounds of 4 envs x 20 steps, then 3 iterations of 80 steps and 80 updates
    assert [r["env_steps"] for r in straight] == [160, 320, 400]
    assert straight[-1]["grad_steps"] == 240
    assert 0 <= straight[-1]["eval/success"] <= 1 and np.isfinite(straight[-1]["train/critic_loss"])

    # stops at 240 steps, with one training iteration since the evaluation at 160 pending
    run(tmp_path / "halves", config).run(stop_after_iterations=3)
    run(tmp_path / "halves", config, resume=True).run()
    halves = read_metrics(str(tmp_path / "halves"))
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
    with pytest.raises(ConfigError, match="unroll_length \\(7\\) must divide the episode length"):
        Trainer(make_config(env="toy", unroll_length=7, **SMALL))  # known only once built
    assert multiprocessing.active_children() == []


WALL_CLOCK = ("wall_time", "time/env_steps_per_s", "time/grad_steps_per_s")


def records(path):
    """A run's records without the wall-clock fields."""
    out = read_metrics(str(path))
    return [{k: v for k, v in r.items() if k not in WALL_CLOCK} for r in out]


@pytest.mark.parametrize("overlap", [False, True], ids=["strict", "overlap"])
def test_the_policy_is_refreshed_every_unroll_with_the_configured_lag(toy_envs, overlap):
    """Unroll k of training acts with the parameters after k updates (strict) or k - 1
    (collection beside learning); the parameters change at every iteration."""
    config = make_config(
        env="toy", unroll_length=5, overlap_collection=overlap, actor_learning_rate=0.01, **SMALL
    )
    trainer = Trainer(config)
    try:
        budget = trainer.budget
        # 4 envs x 5 steps per iteration: 100 random steps, and the first whole episodes of 20
        # steps end at the 4th iteration: 5 warm-up iterations
        assert (budget.steps_per_iteration, budget.warmup_iterations) == (20, 5)
        assert budget.random_iterations == 5
        state = trainer.init()
        for i in range(budget.warmup_iterations):
            state = trainer.warmup(state, i)
        params = [jax.tree.map(np.array, state.learner.actor_params)]  # after 0, 1, 2... its
        unrolls = []
        for _ in range(6):
            index = int(state.collector.unrolls)
            state, _ = trainer.iteration(state)
            t = (index % 4) * 5
            collected = jax.tree.map(np.array, state.collector)
            unrolls.append((index, collected.states[:, t : t + 6], collected.actions[:, t : t + 5]))
            params.append(jax.tree.map(np.array, state.learner.actor_params))
    finally:
        trainer.close()

    policy = ActorPolicy(trainer.spec, config)

    def acted(p, index, states):
        seeds = episode_seeds(4, config.seed, index // 4)
        goals = np.stack([host_toy.ToyReach().reset(int(s))[1] for s in seeds])
        key = unroll_key_data(config.seed, index)
        return np.stack(
            [policy(p, states[:, s], goals, key, np.arange(4), s, "sample") for s in range(5)], 1
        )

    for k, (index, states, actions) in enumerate(unrolls):
        used = max(k - 1, 0) if overlap else k
        np.testing.assert_allclose(actions, acted(params[used], index, states), atol=1e-5)
        for other in {used - 1, used + 1} - {-1}:  # the neighbours' parameters act otherwise
            assert np.abs(actions - acted(params[other], index, states)).max() > 1e-3


# Unrolls of 5 steps with collection beside learning (the default), evaluated at 120, 240, 300.
BESIDE = dict(steps=300, eval_every=120, unroll_length=5, **SMALL)


@pytest.fixture(scope="module")
def uninterrupted(tmp_path_factory):
    """The records of one uninterrupted ``BESIDE`` run: what the runs below must log."""
    path = tmp_path_factory.mktemp("uninterrupted")
    with pytest.MonkeyPatch.context() as monkeypatch:
        register_toy_envs(monkeypatch)
        config = make_config(env="toy", **BESIDE)
        assert config.overlap_collection  # the default
        run(path, config).run()
    return records(path)


def test_collection_beside_learning_gives_the_same_numbers_on_every_run(
    toy_envs, tmp_path, uninterrupted
):
    run(tmp_path / "again", make_config(env="toy", **BESIDE)).run()
    assert [r["env_steps"] for r in uninterrupted] == [120, 240, 300]
    assert records(tmp_path / "again") == uninterrupted


def test_a_run_stopped_mid_episode_resumes_exactly(toy_envs, tmp_path, uninterrupted):
    """Stopped with every episode 10 steps into its 20 and the next unroll under way (collected
    beside learning), the resumed run replays the episodes from their seeds and recorded actions,
    collects that unroll again with the same parameters, and logs what the uninterrupted run
    logs."""
    config = make_config(env="toy", **BESIDE)
    run(tmp_path / "halves", config).run(stop_after_iterations=10)  # 10 unrolls: t = 10
    meta = json.load(open(tmp_path / "halves" / "checkpoint.json"))
    assert meta["progress"]["env_steps"] == 200
    run(tmp_path / "halves", config, resume=True).run()
    assert records(tmp_path / "halves") == uninterrupted


def test_a_killed_worker_mid_unroll_stops_with_a_checkpoint_and_the_resume_is_exact(
    toy_envs, tmp_path, monkeypatch
):
    """Strict alternation here (the test above resumes with collection beside learning)."""
    # in unroll 11 (steps 55..59 of each env), before the evaluators' envs get that far
    monkeypatch.setenv("CRL_TOY_KILL_STEP", "57")
    monkeypatch.setenv("CRL_TOY_KILL_MARK", str(tmp_path / "killed"))
    settings = dict(steps=300, eval_every=120, unroll_length=5, overlap_collection=False, **SMALL)
    run(tmp_path / "straight", make_config(env="toy", **settings)).run()
    config = make_config(env="toy_kill_once", **settings)
    path = tmp_path / "killed_run"
    with pytest.raises(WorkerError, match="worker [01] of 2 .*died during unroll \\(exit code -9"):
        run(path, config).run()
    meta = json.load(open(path / "checkpoint.json"))
    assert meta["progress"]["env_steps"] == 220  # 11 whole unrolls of 5 steps x 4 envs
    run(path, config, resume=True).run()
    assert records(tmp_path / "straight") == records(path)


def test_a_resume_whose_replay_differs_continues_from_the_replayed_states(toy_envs, capsys):
    """A simulator that does not reproduce the recorded states (another machine) leaves the
    episodes consistent: the replayed states replace the recorded ones, and a note says so."""
    config = make_config(env="toy", unroll_length=5, **SMALL)
    trainer = Trainer(config)
    try:
        state = trainer.init()
        for i in range(2):  # 10 steps of the first episodes
            state = trainer.warmup(state, i)
        recorded = np.asarray(state.collector.states[:, :11])
        altered = state.replace(
            collector=state.collector.replace(states=state.collector.states + 0.25)
        )
        restored = trainer.restore(altered)
        np.testing.assert_array_equal(np.asarray(restored.collector.states[:, :11]), recorded)
        assert "did not reproduce their recorded states (largest difference 0.25)" in (
            capsys.readouterr().err
        )
        assert trainer.restore(state) is not None and capsys.readouterr().err == ""
    finally:
        trainer.close()


@pytest.mark.parametrize(
    "env, steps, num_envs",
    [("sawyer_push", 1_200, 4), ("fetch_reach", 400, 4), ("ant_umaze", 2_800, 2)],
)
def test_each_simulator_family_runs_the_loop_to_its_budget(env, steps, num_envs, tmp_path):
    """Collection in workers, every update of the budget with finite losses, an evaluation, for
    each simulator: that the loop runs, not that it learns (a few hundred steps cannot show it)."""
    # ant_umaze: two envs, so the first whole episodes (700 steps) come at 1,400 env steps
    settings = {
        **SMALL,
        "num_envs": num_envs,
        "eval_episodes": min(SMALL["eval_episodes"], 2 * num_envs),
    }
    config = make_config(env=env, steps=steps, eval_every=10_000, **settings)
    loop = run(tmp_path / env, config)
    result = loop.run()
    records = read_metrics(str(tmp_path / env))
    budget = loop.trainer.budget
    assert records[-1]["env_steps"] == budget.total_env_steps
    assert records[-1]["grad_steps"] == budget.total_grad_steps > 0
    assert np.isfinite(records[-1]["train/critic_loss"])
    assert 0.0 <= result["eval/success"] <= 1.0 and np.isfinite(result["eval/final_dist"])
