"""Ray actors on a local Ray cluster started here on 127.0.0.1 only: the same episodes as local
workers for the same requests; a killed actor stops the run with an error naming the actor and
its node, after a valid checkpoint of the last whole iteration, and the resumed run logs what an
uninterrupted run on local workers logs."""

import json
import os
import warnings

import host_toy
import jax
import numpy as np
import pytest

from contrastive_rl import envs
from contrastive_rl.actors.workers import EnvWorkers, UnrollRequest
from contrastive_rl.agent.networks import init_params, make_networks
from contrastive_rl.config import make_config
from contrastive_rl.errors import WorkerError
from contrastive_rl.runs import rundir
from contrastive_rl.runs.metrics import read_metrics
from contrastive_rl.training.collect import episode_seeds, unroll_key_data
from contrastive_rl.training.runner import Run

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
    # toy_kill_once: in the 8th unroll of the training actors (steps 35..39 of each env); the
    # actors take these variables from the Ray instance started here
    os.environ["CRL_TOY_KILL_STEP"] = "37"
    os.environ["CRL_TOY_KILL_MARK"] = str(tmp_path_factory.mktemp("kill") / "killed")
    envs.ENV_NAMES.extend(names)
    for name in names:
        envs.BACKENDS[name] = ("mujoco",)
        envs.HOST_ENVS[name] = "host_toy:make"
    with warnings.catch_warnings():  # Ray starts its servers by fork + exec, which is safe
        warnings.filterwarnings("ignore", "os.fork\\(\\) was called", RuntimeWarning)
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


FIELDS = ("states", "actions", "success", "distance", "initial")


def test_ray_actors_collect_the_same_episodes_as_local_workers(cluster):
    """The same requests (reset seeds, parameters, keys) give the same unrolls from two Ray
    actors as from local workers: sampled from a reset, continued, random, greedy from a new
    reset; resimulating the first episodes' actions lands on the same states."""
    from contrastive_rl.actors.ray_actors import RayWorkers

    config = make_config(env="toy", **SMALL)
    actor, _ = init_params(make_networks(host_toy.SPEC, config), jax.random.key(1))
    params = jax.tree.map(np.asarray, actor)
    seeds = [episode_seeds(4, config.seed, r) for r in range(2)]
    requests = [
        UnrollRequest(params, unroll_key_data(config.seed, 0), seeds[0], 5, "sample"),
        UnrollRequest(params, unroll_key_data(config.seed, 1), None, 5, "sample"),
        UnrollRequest(None, unroll_key_data(config.seed, 2), None, 5, "random"),
        UnrollRequest(params, unroll_key_data(config.seed, 3), seeds[1], 20, "mode"),
    ]

    def unrolls(actors):
        out = []
        for request in requests:
            actors.submit_unroll(request)
            out.append(actors.receive_unroll())
        actions = np.concatenate([u.actions for u in out[:3]], axis=1)
        return out, actors.resimulate(seeds[0], actions)

    with EnvWorkers("toy", "host_toy:make", 4, num_workers=0, config=config) as local:
        expected, expected_replay = unrolls(local)
    with RayWorkers("toy", "host_toy:make", 4, num_workers=2, config=config) as remote:
        assert [node.split()[0] for node in remote.nodes] == ["127.0.0.1"] * 2
        got, replayed = unrolls(remote)
    for a, b in zip(expected, got, strict=True):
        for name in FIELDS:
            np.testing.assert_array_equal(getattr(a, name), getattr(b, name), err_msg=name)
    np.testing.assert_array_equal(expected_replay, replayed)
    assert expected[3].states.shape == (4, 21, 2)
    assert np.abs(expected[0].actions - expected[1].actions).max() > 1e-3  # keys differ


WALL_CLOCK = ("wall_time", "time/env_steps_per_s", "time/grad_steps_per_s")


def records(path):
    """A run's records without the wall-clock fields."""
    return [{k: v for k, v in r.items() if k not in WALL_CLOCK} for r in read_metrics(path)]


def test_a_killed_ray_actor_stops_the_run_with_a_clear_error_and_a_checkpoint(cluster, tmp_path):
    """Killed in its 8th unroll (steps 35..39 of each env, with collection beside learning), the
    actor ends the run with an error naming it and its node, after a checkpoint of the 7 whole
    unrolls; new actors replay the episodes in flight, and the resumed run logs exactly what an
    uninterrupted run on local workers logs."""
    settings = dict(actors="ray", steps=200, eval_every=1_000, **SMALL)  # evaluated at the end
    config = make_config(env="toy_kill_once", **settings)
    path = str(tmp_path / "run")
    rundir.prepare(path, config)
    message = "Ray actor [01] of 2 \\(environment 'toy_kill_once'\\) on node 127.0.0.1 .*died"
    with pytest.raises(WorkerError, match=message):
        Run(config, path, progress_bar=False).run()
    meta = json.load(open(os.path.join(path, "checkpoint.json")))
    assert meta["progress"]["env_steps"] == 140  # 7 whole unrolls of 5 steps x 4 envs
    assert read_metrics(path) == []  # nothing logged yet: the first evaluation is at 200
    Run(config, path, resume=True, progress_bar=False).run()

    local = make_config(env="toy", **{**settings, "actors": "local"})
    straight = str(tmp_path / "straight")
    rundir.prepare(straight, local)
    Run(local, straight, progress_bar=False).run()
    assert [r["env_steps"] for r in records(path)] == [200]
    assert records(path) == records(straight)
