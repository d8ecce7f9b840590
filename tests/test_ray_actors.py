"""Ray actors on a local Ray cluster started here on 127.0.0.1 only: the same episodes as local
workers for the same seed; a killed actor stops the run with an error naming the actor and its
node, after a valid checkpoint of the last whole iteration."""

import json
import os

import jax
import numpy as np
import pytest

from contrastive_rl import envs, rundir
from contrastive_rl.config import make_config
from contrastive_rl.errors import WorkerError
from contrastive_rl.runner import Run
from contrastive_rl.trainer import Trainer

ray = pytest.importorskip("ray")

TESTS = os.path.dirname(os.path.abspath(__file__))
LOOPBACK = "RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER"
SMALL = dict(
    preset="debug",
    num_envs=4,
    num_actors=2,
    batch_size=16,
    min_replay_size=100,
    hidden_layer_sizes=(16, 16),
    repr_dim=8,
    eval_episodes=6,
    unroll_length=5,
)


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    """One local Ray instance for the module (start-up takes seconds), reachable on 127.0.0.1
    only, with the toy environments registered; the actors import ``host_toy`` from here."""
    names = ["toy", "toy_kill_once"]
    variables = (
        "PYTHONPATH",
        "RAY_USAGE_STATS_ENABLED",
        LOOPBACK,
        "CRL_TOY_KILL_STEP",
        "CRL_TOY_KILL_MARK",
    )
    saved = {k: os.environ.get(k) for k in variables}
    paths = [TESTS, os.path.dirname(TESTS)] + ([saved["PYTHONPATH"]] if saved["PYTHONPATH"] else [])
    os.environ["PYTHONPATH"] = os.pathsep.join(paths)
    os.environ["RAY_USAGE_STATS_ENABLED"] = "0"
    # Ray replaces 127.0.0.1 by the machine's address unless told the node is not part of a
    # cluster: then its servers listen on 127.0.0.1 only (in this process and in the ones it
    # starts, which read the variable).
    os.environ[LOOPBACK] = "0"
    cluster_mode = ray._private.ray_constants.ENABLE_RAY_CLUSTER
    ray._private.ray_constants.ENABLE_RAY_CLUSTER = False
    # toy_kill_once: in unroll 11 (steps 55..59 of each env), before the evaluators' envs get
    # that far (the actors take their environment from the Ray instance started here)
    os.environ["CRL_TOY_KILL_STEP"] = "57"
    os.environ["CRL_TOY_KILL_MARK"] = str(tmp_path_factory.mktemp("kill") / "killed")
    envs.ENV_NAMES.extend(names)
    for name in names:
        envs.BACKENDS[name] = ("mujoco",)
        envs.HOST_ENVS[name] = "host_toy:make"
    ray.init(
        num_cpus=4,
        include_dashboard=False,
        _node_ip_address="127.0.0.1",
        log_to_driver=False,
        object_store_memory=100 * 2**20,
        _temp_dir=str(tmp_path_factory.mktemp("ray")),
    )
    try:
        assert ray.nodes()[0]["NodeManagerAddress"] == "127.0.0.1"
        yield
    finally:
        ray.shutdown()
        ray._private.ray_constants.ENABLE_RAY_CLUSTER = cluster_mode
        for name in names:
            envs.ENV_NAMES.remove(name)
            del envs.BACKENDS[name], envs.HOST_ENVS[name]
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


def collect(config, iterations=3):
    """Replay, collector and actor parameters after the warm-up and ``iterations`` training
    iterations (NumPy copies)."""
    trainer = Trainer(config)
    try:
        state = trainer.init()
        for i in range(trainer.budget.warmup_iterations):
            state = trainer.warmup(state, i)
        for _ in range(iterations):
            state, _ = trainer.iteration(state)
        return jax.tree.map(np.array, (state.replay, state.collector, state.learner.actor_params))
    finally:
        trainer.close()


def test_ray_actors_collect_the_same_episodes_as_local_workers(cluster):
    local = collect(make_config(env="toy", **SMALL))
    remote = collect(make_config(env="toy", actors="ray", **SMALL))
    assert int(remote[0].num_episodes) == 8  # two rounds of 4 whole episodes
    for a, b in zip(jax.tree.leaves(local), jax.tree.leaves(remote), strict=True):
        np.testing.assert_array_equal(a, b)


def test_a_killed_ray_actor_stops_the_run_with_a_clear_error_and_a_checkpoint(cluster, tmp_path):
    config = make_config(env="toy_kill_once", actors="ray", steps=300, eval_every=120, **SMALL)
    path = str(tmp_path / "run")
    rundir.prepare(path, config)
    message = "Ray actor [01] of 2 \\(environment 'toy_kill_once'\\) on node 127.0.0.1 .*died"
    with pytest.raises(WorkerError, match=message):
        Run(config, path, progress_bar=False).run()
    meta = json.load(open(os.path.join(path, "checkpoint.json")))
    assert meta["progress"]["env_steps"] == 220  # 11 whole unrolls of 5 steps x 4 envs
    # the checkpoint loads; new actors replay the episodes in flight
    resumed = Run(config, path, resume=True, progress_bar=False)
    result = resumed.run()
    assert rundir.read_metrics(path)[-1]["env_steps"] == 300 and 0 <= result["eval/success"] <= 1
