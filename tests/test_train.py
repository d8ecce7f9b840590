"""The training loop: exact budgets, one compilation, exact resume, every algorithm runs."""

import json
import math

import jax
import numpy as np
import pytest

from contrastive_rl.actors.workers import WorkerError
from contrastive_rl.api import train
from contrastive_rl.config import ConfigError, make_config
from contrastive_rl.errors import RunDirError
from contrastive_rl.runs import checkpoint, rundir
from contrastive_rl.runs.config_files import load_config
from contrastive_rl.runs.metrics import read_metrics
from contrastive_rl.training.budget import Budget
from contrastive_rl.training.runner import DivergedError, Run, evaluate_run
from contrastive_rl.training.trainer import Trainer

TINY = dict(
    env="point_Small",
    preset="debug",
    steps=2_000,
    num_envs=4,
    batch_size=16,
    min_replay_size=200,
    hidden_layer_sizes=(16, 16),
    repr_dim=8,
    eval_every=400,
    eval_episodes=20,
)


def tiny(**kw):
    return make_config(**{**TINY, **kw})


def test_budget_is_exact_and_rounding_is_reported():
    b = Budget.make(tiny(), episode_length=50)  # iterations of 4 envs x 50 steps
    assert b.steps_per_iteration == 200 and b.grad_steps_per_iteration == 200
    assert b.warmup_iterations == 1 and b.warmup_steps == 200
    assert b.total_env_steps == 2_000 and b.notes == ()
    b = Budget.make(tiny(steps=2_050), episode_length=50)
    assert b.total_env_steps == 2_200 >= 2_050
    assert any("rounded up to 2200" in n for n in b.notes)
    b = Budget.make(tiny(utd=0.25, unroll_length=10), episode_length=50)
    assert (b.steps_per_iteration, b.grad_steps_per_iteration) == (40, 10)
    assert b.total_grad_steps == 10 * b.train_iterations
    b = Budget.make(tiny(utd=0.3), episode_length=50)
    assert b.grad_steps_per_iteration == 60 and b.notes == ()
    b = Budget.make(tiny(utd=0.333), episode_length=50)
    assert any("utd" in n for n in b.notes)


def test_warmup_counts_steps_and_learning_waits_for_the_first_whole_episodes():
    # ant_umaze's shape: 32 envs x 10 steps per iteration, episodes of 700 steps
    config = tiny(num_envs=32, unroll_length=10, min_replay_size=10_000, steps=100_000)
    b = Budget.make(config, episode_length=700)
    assert b.random_iterations == 32  # 10,240 random steps, not whole rounds of 22,400
    # the replay takes whole episodes: the iteration that ends them (at 22,400) learns first
    assert b.warmup_iterations == 69 and b.warmup_steps == 22_080
    assert any("first updates come at 22400 env steps" in n for n in b.notes)
    assert b.total_env_steps == 100_160 and b.total_grad_steps == 244 * 320
    b = Budget.make(config, episode_length=50)
    assert (b.random_iterations, b.warmup_iterations) == (32, 32)  # whole episodes by then
    assert not any("first updates" in n for n in b.notes)
    b = Budget.make(tiny(min_replay_size=0), episode_length=50)  # whole-episode iterations
    assert (b.random_iterations, b.warmup_iterations) == (0, 0)


def test_budget_refusals():
    with pytest.raises(ConfigError, match="must divide the episode length"):
        Budget.make(tiny(unroll_length=7), episode_length=50)
    with pytest.raises(ConfigError, match="leaves no training"):
        Budget.make(tiny(steps=200), episode_length=50)


def test_a_run_does_exactly_its_budget_and_logs_what_the_original_logs(tmp_path):
    config = tiny(steps=1_900)  # rounds up to 2_000
    path = str(tmp_path / "run")
    rundir.prepare(path, config)
    result = Run(config, path, progress_bar=False).run()
    records = read_metrics(path)
    assert records[-1]["env_steps"] == 2_000
    assert records[-1]["grad_steps"] == 1_800  # 9 training iterations of 200 updates
    for key in [
        "env_steps",
        "grad_steps",
        "wall_time",
        "eval/success",
        "eval/success_final",
        "eval/final_dist",
        "eval/init_dist",
        "eval/min_dist",
        "train/critic_loss",
        "train/actor_loss",
        "train/binary_accuracy",
        "train/categorical_accuracy",
        "train/logits_pos",
        "train/logits_neg",
        "train/logsumexp",
        "time/env_steps_per_s",
        "time/grad_steps_per_s",
    ]:
        assert key in records[-1], key
    assert 0.0 <= result["eval/success"] <= 1.0
    assert [r["env_steps"] for r in records] == [400, 800, 1200, 1600, 2000]
    meta = json.load(open(f"{path}/checkpoint.json"))
    assert meta["progress"]["env_steps"] == 2_000
    assert (tmp_path / "run" / "metrics.csv").exists()


def test_the_iteration_compiles_once():
    trainer = Trainer(tiny())
    state = trainer.warmup(trainer.init(), 0)
    for _ in range(3):
        state, _ = trainer.iteration(state)
    assert trainer._iteration_jit._cache_size() == 1


@pytest.fixture(scope="module")
def trainer():
    """One Trainer (one compilation) for the runs of ``tiny()`` below; a Run may share it."""
    return Trainer(tiny())


@pytest.fixture(scope="module")
def straight(trainer, tmp_path_factory):
    """The metrics of an uninterrupted run of ``tiny()``, and its final result."""
    path = str(tmp_path_factory.mktemp("straight"))
    rundir.prepare(path, tiny())
    result = Run(tiny(), path, progress_bar=False, trainer=trainer).run()
    return path, result


def without_wall_clock(records):
    return [
        {k: v for k, v in r.items() if k != "wall_time" and not k.startswith("time/")}
        for r in records
    ]


def resume(path, trainer, **kw):
    config = load_config(path)
    prepared = rundir.prepare(path, config, resume=True)
    return Run(config, path, prepared.resume, progress_bar=False, trainer=trainer, **kw)


def test_resume_continues_exactly_where_it_stopped(trainer, straight, tmp_path):
    path = str(tmp_path / "halves")
    rundir.prepare(path, tiny())
    # 3 iterations: 600 env steps, one training iteration after the evaluation at 400 pending
    Run(tiny(), path, progress_bar=False, trainer=trainer).run(stop_after_iterations=3)
    assert [r["env_steps"] for r in read_metrics(path)] == [400]
    resume(path, trainer).run()
    # every record, train/* included, is the uninterrupted run's (bar wall-clock fields)
    assert without_wall_clock(read_metrics(path)) == without_wall_clock(read_metrics(straight[0]))
    assert evaluate_run(straight[0]) == pytest.approx(evaluate_run(path), rel=1e-5)


def test_a_finished_run_extended_by_resume_continues_as_the_longer_run(straight, tmp_path):
    path = str(tmp_path / "extended")
    train(tiny(steps=1_000), path)
    result = train(tiny(), path, resume=True, steps=2_000)
    assert load_config(path).steps == 2_000  # config.json says the new budget
    records = read_metrics(path)
    assert [r["env_steps"] for r in records] == [400, 800, 1000, 1200, 1600, 2000]

    # nothing in a run depends on its total budget: its evaluations (and the final policy) are
    # those of the run planned for 2,000 steps, bar the 1,000-step run's final evaluation
    def evaluations(rs):
        return [{k: v for k, v in r.items() if k.startswith("eval/")} for r in rs]

    longer = evaluations(read_metrics(straight[0]))
    assert evaluations(records[:2] + records[3:]) == longer
    assert result["eval/success"] == straight[1]["eval/success"]

    with pytest.raises(ConfigError, match="extends the run's budget: give more than its 2000"):
        train(tiny(), path, resume=True, steps=1_500)
    decaying = str(tmp_path / "cosine")
    rundir.prepare(decaying, tiny(lr_schedule="cosine"))
    with pytest.raises(ConfigError, match="'cosine' decays over its budget of 2000 steps"):
        train(tiny(), decaying, resume=True, steps=4_000)
    assert load_config(decaying).steps == 2_000  # the refused extension wrote nothing


def test_an_evaluation_that_did_not_complete_runs_again_on_resume(
    trainer, straight, tmp_path, monkeypatch
):
    path = str(tmp_path / "run")
    real_evaluate = trainer.evaluate

    def evaluator_dies_at(env_steps):
        def evaluate(params, key):
            if bool(
                (jax.random.key_data(key) == jax.random.key_data(trainer.eval_key(env_steps))).all()
            ):
                raise WorkerError(f"worker 0 of 1 died during step (evaluation at {env_steps})")
            return real_evaluate(params, key)

        return evaluate

    rundir.prepare(path, tiny())
    monkeypatch.setattr(trainer, "evaluate", evaluator_dies_at(800))  # mid-run
    with pytest.raises(WorkerError):
        Run(tiny(), path, progress_bar=False, trainer=trainer).run()
    monkeypatch.setattr(trainer, "evaluate", evaluator_dies_at(2_000))  # the final evaluation
    with pytest.raises(WorkerError):
        resume(path, trainer).run()
    assert read_metrics(path)[-1]["env_steps"] == 1_600
    monkeypatch.setattr(trainer, "evaluate", real_evaluate)
    result = resume(path, trainer).run()  # the budget is spent, the final evaluation is not
    assert result == straight[1]
    assert without_wall_clock(read_metrics(path)) == without_wall_clock(read_metrics(straight[0]))


@pytest.mark.parametrize(
    "nan_in, message", [("losses", "train/actor_loss"), ("parameters", "the parameters")]
)
def test_a_diverging_run_stops_and_keeps_its_last_good_checkpoint(
    nan_in, message, trainer, tmp_path, monkeypatch
):
    path = str(tmp_path / "run")
    real_iteration, calls = trainer.iteration, []

    def iteration(state):  # the 3rd iteration diverges
        state, metrics = real_iteration(state)
        calls.append(1)
        if len(calls) == 3 and nan_in == "losses":
            metrics = {**metrics, "train/actor_loss": np.float32(np.nan)}
        if len(calls) == 3 and nan_in == "parameters":  # the last update's, so losses look fine
            nan = jax.tree.map(lambda x: x * np.nan, state.learner.actor_params)
            state = state.replace(learner=state.learner.replace(actor_params=nan))
        return state, metrics

    monkeypatch.setattr(trainer, "iteration", iteration)
    config = tiny(checkpoint_every_s=1e-6)  # a checkpoint after every iteration
    rundir.prepare(path, config)
    with pytest.raises(DivergedError, match=f"{message}.*checkpoint \\(600 env steps\\) is kept"):
        Run(config, path, progress_bar=False, trainer=trainer).run()
    state, meta = checkpoint.load_checkpoint(path, trainer.init())
    assert meta["progress"]["env_steps"] == 600  # warm-up and 2 iterations; never the NaN state
    leaves = jax.tree.leaves(jax.device_get(state.learner.actor_params))
    assert all(np.isfinite(x).all() for x in leaves)
    assert [r["env_steps"] for r in read_metrics(path)] == [400]  # no NaN evaluation


def test_resume_refuses_a_config_json_that_differs_from_the_checkpoint(trainer, tmp_path):
    path = str(tmp_path / "run")
    rundir.prepare(path, tiny())
    Run(tiny(), path, progress_bar=False, trainer=trainer).save()
    edited = json.load(open(f"{path}/config.json"))
    edited["eval_episodes"] = 7
    json.dump(edited, open(f"{path}/config.json", "w"))
    with pytest.raises(RunDirError, match="eval_episodes: 20 .*7"):
        resume(path, trainer)


@pytest.mark.parametrize(
    "alg",
    ["contrastive_nce", "contrastive_cpc", "c_learning", "nce+c_learning", "gcbc", "td_infonce"],
)
def test_every_algorithm_trains_without_nan(alg):
    config = tiny(alg=alg, steps=1_000, env="point_FourRooms")
    trainer = Trainer(config)
    state = trainer.warmup(trainer.init(), 0)
    for _ in range(2):
        state, metrics = trainer.iteration(state)
    host = jax.device_get(metrics)
    assert all(math.isfinite(float(v)) for v in host.values()), host
    leaves = jax.tree.leaves(jax.device_get(state.learner))
    assert all(np.isfinite(np.asarray(x)).all() for x in leaves if np.asarray(x).dtype.kind == "f")
    if alg == "gcbc":
        assert "train/critic_loss" not in host


def test_adaptive_entropy_learns_alpha():
    config = tiny(entropy_coefficient=None, steps=1_000)
    trainer = Trainer(config)
    state = trainer.warmup(trainer.init(), 0)
    state, metrics = trainer.iteration(state)
    assert float(metrics["train/alpha"]) != 1.0
    assert math.isfinite(float(metrics["train/alpha_loss"]))


def test_every_reset_draws_new_goals_and_episodes_reach_the_replay():
    trainer = Trainer(tiny())
    state = trainer.init()
    goals = [np.asarray(state.collector.envs.goal)]
    for round_ in range(1, 3):
        state = trainer.warmup(state, round_ - 1)
        goals.append(np.asarray(state.collector.envs.goal))
        assert int(state.replay.num_episodes) == 4 * round_
        assert (np.asarray(state.collector.envs.t) == 0).all()
    # a cached first state would repeat the goals; fresh draws differ in every env
    assert (np.abs(goals[0] - goals[1]).sum(-1) > 0).all()
    assert (np.abs(goals[1] - goals[2]).sum(-1) > 0).all()
    # stored episodes start where the env was reset and move by at most one cell per step
    episodes = np.asarray(state.replay.states[:8])
    assert (np.abs(np.diff(episodes, axis=1)) <= 1.0 + 1e-5).all()
