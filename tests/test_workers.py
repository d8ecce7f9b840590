"""Host environments in worker processes: lockstep stepping, seeding, and failures."""

import time

import numpy as np
import pytest

from contrastive_rl.actors.workers import EnvWorkers, UnrollRequest, WorkerError

FACTORY = "host_toy:make"


def rollout(workers, seeds, steps=5):
    states, goals, dist = workers.reset(seeds)
    trajectory = [states]
    for t in range(steps):
        actions = np.full((workers.num_envs, 2), np.sin(t), np.float32)
        trajectory.append(workers.step(actions).states)
    return goals, dist, np.stack(trajectory)


def test_episodes_depend_on_seeds_not_on_how_envs_are_spread_over_workers():
    seeds = np.arange(5) + 100
    with EnvWorkers("toy", FACTORY, 5, num_workers=0) as local:
        expected = rollout(local, seeds)
    with EnvWorkers("toy", FACTORY, 5, num_workers=2) as spread:
        assert spread.num_workers == 2 and spread.spec.episode_length == 20
        got = rollout(spread, seeds)
    for a, b in zip(expected, got, strict=True):
        np.testing.assert_array_equal(a, b)
    goals = expected[0]
    assert len({tuple(g) for g in goals}) == 5  # every env drew its own goal


def test_step_reports_success_and_distance_by_the_task_rule():
    with EnvWorkers("toy", FACTORY, 2, num_workers=1) as workers:
        states, goals, dist = workers.reset(np.array([1, 2]))
        np.testing.assert_allclose(dist, np.linalg.norm(states - goals, axis=1), rtol=1e-6)
        result = workers.step(np.zeros((2, 2), np.float32))
        np.testing.assert_array_equal(result.success, result.distance < 0.5)


@pytest.mark.parametrize(
    "name, cause",
    [
        ("toy_raise", "raised during step.*simulator exploded"),
        ("toy_exit", "died during step \\(exit code 3\\)"),
        ("toy_hang", "did not answer step within 2 s \\(hung\\)"),
    ],
)
def test_a_failing_worker_gives_a_clear_error_and_no_hang(name, cause):
    # Only the hang needs a short timeout; the others fail by themselves, and a short timeout
    # would turn a slow step on a loaded machine into a "hung" report instead.
    timeout_s = 2.0 if name == "toy_hang" else 60.0
    workers = EnvWorkers(name, FACTORY, 4, num_workers=2, timeout_s=timeout_s)
    workers.reset(np.arange(4))
    start = time.monotonic()
    with pytest.raises(WorkerError, match=f"worker 0 of 2 \\(environment '{name}'\\) {cause}"):
        for _ in range(5):
            workers.step(np.zeros((4, 2), np.float32))
    assert time.monotonic() - start < 20
    assert workers._procs == []  # every worker was stopped


def test_an_environment_that_cannot_be_built_is_reported_at_start():
    with pytest.raises(WorkerError, match="raised during start.*ModuleNotFoundError"):
        EnvWorkers("toy", "no_such_module:make", 2, num_workers=1)


def test_workers_ignore_ctrl_c_so_the_learner_stops_them_cleanly():
    import os
    import signal

    seeds = np.arange(2)
    with EnvWorkers("toy", FACTORY, 2, num_workers=1) as workers:
        workers.reset(seeds)
        os.kill(workers._procs[0].pid, signal.SIGINT)  # what a terminal's Ctrl-C sends the group
        time.sleep(0.5)
        assert workers._procs[0].is_alive()
        assert workers.step(np.zeros((2, 2), np.float32)).states.shape == (2, 2)


def test_unrolls_continue_the_episodes_and_do_not_depend_on_the_spread():
    """Two unrolls of random actions (the second continues the first's episodes) are the same
    over one process or two, and resimulating the actions from the seeds lands on the same
    states (how a resumed run puts its simulators back mid-episode)."""
    seeds = np.arange(5) + 100
    first = UnrollRequest(None, np.array([0, 7], np.uint32), seeds, 3, "random")
    second = UnrollRequest(None, np.array([0, 8], np.uint32), None, 4, "random")

    def two_unrolls(workers):
        parts = []
        for request in (first, second):
            workers.submit_unroll(request)
            parts.append(workers.receive_unroll())
        return parts

    with EnvWorkers("toy", FACTORY, 5, num_workers=0) as local:
        a, b = two_unrolls(local)
        actions = np.concatenate([a.actions, b.actions], axis=1)
        replayed = local.resimulate(seeds, actions)
    with EnvWorkers("toy", FACTORY, 5, num_workers=2) as spread:
        got = two_unrolls(spread)
        assert not spread.unroll_pending
    for expected, unroll in zip((a, b), got, strict=True):
        for name in ("states", "actions", "success", "distance", "initial"):
            np.testing.assert_array_equal(getattr(expected, name), getattr(unroll, name))
    assert a.states.shape == (5, 4, 2) and b.actions.shape == (5, 4, 2)
    np.testing.assert_array_equal(b.states[:, 0], a.states[:, -1])  # continued, not reset
    assert np.isfinite(a.initial).all() and np.isnan(b.initial).all()
    assert (np.abs(actions) <= 1).all() and len({tuple(x) for x in actions[:, 0]}) == 5
    np.testing.assert_array_equal(replayed, np.concatenate([a.states, b.states[:, 1:]], axis=1))
