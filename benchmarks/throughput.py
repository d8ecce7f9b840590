"""Throughput of the training loop against its parts, for any environment and config.

Measures, after compilation, in steady state:
  loop      the jitted training iteration (collection + insertion + K updates with sampling)
  physics   the environments alone (same envs, same unroll, uniform random actions)
  collect   the collection rollout alone (same envs, same unroll, policy sampling)
  sample+update  K updates that each sample a batch from the replay (no collection)
  bare update    K updates on one fixed batch (no sampling, no collection)
  render    (environments that render stored states, e.g. point images) the images of K
            batches, state, next state and goal of each row, as sampling draws them; given as
            the gradient steps/s it could feed
and prints env steps/s, gradient steps/s and the loop / bare-update ratio.

For host environments (CPU simulators in worker processes) it measures, for 1..N workers:
  physics   the workers stepping every env with random actions (no policy)
  collect   whole episodes with the policy in the loop (one jitted call per step)
  loop      collection + insertion + K updates (the learner's gradient steps/s while collecting)
beside the bare update, and for MuJoCo image tasks first the camera alone in one process
(``render alone``, frames/s; ``benchmarks/render_mujoco.py`` has more).

For offline tasks (``offline_*``, with ``--dataset``) nothing is collected: it measures the
loop (K updates, each sampling its batch from the dataset's replay) against the bare update,
in gradient steps/s.

    python benchmarks/throughput.py --env point_FourRooms --preset quick
    python benchmarks/throughput.py --env point_image_FourRooms --preset image_quick
    python benchmarks/throughput.py --env fetch_reach --num_envs 32 --max_workers 2
    python benchmarks/throughput.py --env offline_point_FourRooms --dataset fr.hdf5 \
        --preset offline_quick
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import platform
import time

import jax
import numpy as np

from contrastive_rl.cli import add_config_flags
from contrastive_rl.config import FIELDS, make_config
from contrastive_rl.envs import MUJOCO_IMAGE_ENVS, is_offline, resolve_backend
from contrastive_rl.trainer import Trainer


def timed(fn, repeats: int) -> float:
    """Seconds per call, best of ``repeats`` after one warm-up call (compilation)."""
    jax.block_until_ready(fn())
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        jax.block_until_ready(fn())
        best = min(best, time.perf_counter() - start)
    return best


def measure(config, repeats: int) -> list[tuple[str, float, float]]:
    trainer = Trainer(config)
    budget = trainer.budget
    unroll = config.unroll_length or trainer.env.spec.episode_length
    state = trainer.init()
    for _ in range(budget.warmup_iterations):
        state = trainer.warmup(state)
    k = budget.grad_steps_per_iteration
    learner, replay = trainer.learner, trainer.replay

    holder = {"state": state}

    def loop():
        holder["state"], metrics = trainer.iteration(holder["state"])
        return metrics

    env = trainer.env

    @jax.jit
    def physics(s):
        def one(envs, key):
            act_key, step_key = jax.random.split(key)
            actions = jax.random.uniform(
                act_key, (config.num_envs, env.spec.action_dim), minval=-1.0, maxval=1.0
            )
            keys = jax.random.split(step_key, config.num_envs)
            return jax.vmap(env.step)(envs, actions, keys), None

        return jax.lax.scan(one, s.collector.envs, jax.random.split(s.key, unroll))[0]

    @jax.jit
    def collect(s):
        return trainer.collector.rollout(
            s.collector, s.replay, s.learner.actor_params, s.key, unroll, "sample"
        )

    @jax.jit
    def sample_update(s):
        def one(ts, key):
            a, b = jax.random.split(key)
            return learner.update(ts, replay.sample(s.replay, a, config.batch_size), b)

        return jax.lax.scan(one, s.learner, jax.random.split(s.key, k))

    @jax.jit
    def bare_update(s, batch):
        def one(ts, key):
            return learner.update(ts, batch, key)

        return jax.lax.scan(one, s.learner, jax.random.split(s.key, k))

    @jax.jit
    def render(s):
        rows = jax.random.randint(s.key, (k, 3 * config.batch_size), 0, replay.capacity)
        stored = s.replay.states[rows, rows % replay.episode_length]
        return trainer.spec.observe(stored)

    fixed = replay.sample(state.replay, jax.random.key(0), config.batch_size)
    t_loop = timed(loop, repeats)
    snapshot = holder["state"]
    t_physics = timed(lambda: physics(snapshot), repeats)
    t_collect = timed(lambda: collect(snapshot), repeats)
    t_sample = timed(lambda: sample_update(snapshot), repeats)
    t_bare = timed(lambda: bare_update(snapshot, fixed), repeats)
    steps = budget.steps_per_iteration
    assert steps == config.num_envs * unroll
    rendered = []
    if trainer.spec.render is not None:
        rendered = [("render", 0.0, k / timed(lambda: render(snapshot), repeats))]
    return rendered + [
        ("loop", steps / t_loop, k / t_loop),
        ("physics", steps / t_physics, 0.0),
        ("collect", steps / t_collect, 0.0),
        ("sample+update", 0.0, k / t_sample),
        ("bare update", 0.0, k / t_bare),
    ]


def bare_update_rate(trainer: Trainer, state, repeats: int) -> float:
    """Gradient steps/s of K updates on one fixed batch (no sampling, no collection)."""
    config, learner, k = trainer.config, trainer.learner, trainer.budget.grad_steps_per_iteration

    @jax.jit
    def bare_update(s, batch):
        def one(ts, key):
            return learner.update(ts, batch, key)

        return jax.lax.scan(one, s.learner, jax.random.split(s.key, k))

    fixed = trainer.replay.sample(state.replay, jax.random.key(0), config.batch_size)
    return k / timed(lambda: bare_update(state, fixed), repeats)


def measure_offline(config, repeats: int) -> list[tuple[str, float, float]]:
    """The offline loop (K updates sampling from the dataset) against the bare update."""
    trainer = Trainer(config)
    state = trainer.init()
    k = trainer.budget.grad_steps_per_iteration
    holder = {"state": state}

    def loop():
        holder["state"], metrics = trainer.iteration(holder["state"])
        return metrics

    t_loop = timed(loop, repeats)
    learner = trainer.learner

    @jax.jit
    def bare_update(s, batch):
        def one(ts, key):
            return learner.update(ts, batch, key)

        return jax.lax.scan(one, s.learner, jax.random.split(s.key, k))

    fixed = trainer.replay.sample(trainer.dataset_replay, jax.random.key(0), config.batch_size)
    t_bare = timed(lambda: bare_update(holder["state"], fixed), repeats)
    return [("loop (offline)", 0.0, k / t_loop), ("bare update", 0.0, k / t_bare)]


def host_rows(trainer: Trainer, repeats: int, label: str) -> list[tuple[str, float, float]]:
    """Physics alone, collection with the policy, and the whole loop, for one worker count."""
    config, spec = trainer.config, trainer.spec
    state = trainer.init()
    for _ in range(trainer.budget.warmup_iterations):
        state = trainer.warmup(state)
    envs, n = trainer._train_envs, config.num_envs
    rng = np.random.default_rng(0)

    def physics():
        envs.workers.reset(np.arange(n))
        for _ in range(spec.episode_length):
            envs.workers.step(rng.uniform(-1, 1, (n, spec.action_dim)))

    def collect():
        return envs.rollout(state.learner.actor_params, state.key, np.arange(n), "sample")

    holder = {"state": state}

    def loop():
        holder["state"], metrics = trainer.iteration(holder["state"])
        return metrics

    steps, k = n * spec.episode_length, trainer.budget.grad_steps_per_iteration
    t_physics, t_collect = timed(physics, repeats), timed(collect, repeats)
    t_loop = timed(loop, repeats)  # last: the iteration donates (consumes) the state it gets
    return [
        (f"physics, {label}", steps / t_physics, 0.0),
        (f"collect, {label}", steps / t_collect, 0.0),
        (f"loop, {label}", steps / t_loop, k / t_loop),
        ("bare update", 0.0, bare_update_rate(trainer, holder["state"], repeats)),
    ]


def measure_host(config, repeats: int, max_workers: int) -> list[tuple[str, float, float]]:
    """Rows per worker count for a host environment, then the bare update."""
    rows = []
    for workers in range(1, max_workers + 1):
        trainer = Trainer(dataclasses.replace(config, num_actors=workers))
        try:
            *parts, bare = host_rows(trainer, repeats, f"{workers} workers")
        finally:
            trainer.close()
        rows += parts
    return rows + [bare]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    add_config_flags(parser)
    parser.add_argument("--repeats", type=int, default=3, help="timed iterations (best of)")
    parser.add_argument(
        "--max_workers", type=int, default=os.cpu_count(), help="host envs: 1..N workers"
    )
    args = parser.parse_args()
    overrides = {k: v for k, v in vars(args).items() if k in FIELDS}
    config = make_config(**overrides)
    if is_offline(config.env):
        rows = measure_offline(config, args.repeats)
    elif resolve_backend(config.env, config.backend) == "mujoco":
        rows = measure_host(config, args.repeats, args.max_workers)
        if config.env in MUJOCO_IMAGE_ENVS:
            from render_mujoco import render_rate  # benchmarks/, beside this script

            rows = [("render alone", render_rate(config.env, args.repeats), 0.0)] + rows
    else:
        rows = measure(config, args.repeats)
    bare = rows[-1][2]
    print(
        f"# {config.env} {config.alg} preset={config.preset} num_envs={config.num_envs} "
        f"batch={config.batch_size} hidden={config.hidden_layer_sizes} utd={config.utd} "
        f"repr={config.repr_dim} twin_q={config.twin_q}"
    )
    print(
        f"# {platform.machine()} {os.cpu_count()} cores, {jax.devices()[0].device_kind} "
        f"x{jax.device_count()}, jax {jax.__version__}"
    )
    physics = max((sps for name, sps, _ in rows if name.startswith("physics")), default=0.0)
    print(
        f"{'part':18s} {'env steps/s':>12s} {'grad steps/s':>13s} {'grad/bare':>10s} "
        f"{'env/physics':>12s}"
    )
    for name, sps, gps in rows:
        ratio = f"{gps / bare:10.2f}" if gps else f"{'':10s}"
        vs_physics = f"{sps / physics:12.2f}" if sps and physics else ""
        sps_text = f"{sps:12.0f}" if sps else f"{'-':>12s}"
        gps_text = f"{gps:13.1f}" if gps else f"{'-':>13s}"
        print(f"{name:18s} {sps_text} {gps_text} {ratio} {vs_physics}")


if __name__ == "__main__":
    main()
