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

    python benchmarks/throughput.py --env point_FourRooms --preset quick
    python benchmarks/throughput.py --env point_image_FourRooms --preset image_quick
    python benchmarks/throughput.py --env fetch_reach --num_envs 32 --max_workers 2
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
from contrastive_rl.envs import MUJOCO_IMAGE_ENVS, resolve_backend
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
    unroll = trainer.collector.unroll
    state = trainer.init()
    for i in range(budget.warmup_iterations):
        state = trainer.warmup(state, i)
    k = budget.grad_steps_per_iteration
    learner, replay = trainer.learner, trainer.replay

    holder = {"state": state}

    def loop():
        holder["state"], metrics = trainer.iteration(holder["state"])
        return metrics

    env = trainer.collector.env

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
        collector, finished, _ = trainer.collector.absorb(
            s.collector, s.learner.actor_params, s.key, None, "sample"
        )
        return collector, trainer._insert(s.replay, finished)

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


def warmed_up(trainer: Trainer):
    state = trainer.init()
    for i in range(trainer.budget.warmup_iterations):
        state = trainer.warmup(state, i)
    return state


def per_iteration(fn, count: int) -> float:
    """Mean seconds per call over ``count`` calls in a row, after two calls (compilation and,
    for collection beside learning, the pipeline's first fill)."""
    for _ in range(2):
        jax.block_until_ready(fn())
    start = time.perf_counter()
    for _ in range(count):
        jax.block_until_ready(fn())
    return (time.perf_counter() - start) / count


def host_rows(trainer: Trainer, repeats: int, label: str) -> list[tuple[str, float, float]]:
    """Physics alone, collection with the policy, and the whole loop, for one worker count."""
    config, spec = trainer.config, trainer.spec
    state = warmed_up(trainer)
    collector, n = trainer.collector, config.num_envs
    actors = collector.actors
    rng = np.random.default_rng(0)
    unroll = collector.unroll

    def physics():
        actors.reset(np.arange(n))
        for _ in range(unroll):
            actors.step(rng.uniform(-1, 1, (n, spec.action_dim)))

    def collect():  # the unroll after the state's, again and again (the envs go on)
        return collector.gather(state.collector, "sample")

    holder = {"state": state}

    def loop():
        holder["state"], metrics = trainer.iteration(holder["state"])
        return metrics

    steps, k = n * unroll, trainer.budget.grad_steps_per_iteration
    t_physics, t_collect = timed(physics, repeats), per_iteration(collect, repeats)
    t_loop = per_iteration(loop, repeats)  # last: the iteration donates the state it gets
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


def measure_unrolls(config, repeats: int, unrolls: list[int]) -> list[tuple[str, float, float]]:
    """The loop at each unroll length, strict and with collection beside learning."""
    rows = []
    for unroll in unrolls:
        for overlap in (False, True):
            trainer = Trainer(
                dataclasses.replace(config, unroll_length=unroll, overlap_collection=overlap)
            )
            try:
                holder = {"state": warmed_up(trainer)}

                def loop(trainer=trainer, holder=holder):
                    holder["state"], metrics = trainer.iteration(holder["state"])
                    return metrics

                t = per_iteration(loop, repeats)
                b = trainer.budget
                name = f"loop U={trainer.collector.unroll} {'overlap' if overlap else 'strict'}"
                rows.append((name, b.steps_per_iteration / t, b.grad_steps_per_iteration / t))
            finally:
                trainer.close()
    return rows


def pin_process(pid: int, cores: set[int]) -> None:
    """Hold every thread of process ``pid`` to ``cores`` (Linux ``sched_setaffinity`` acts on
    one thread; threads started later inherit their creator's cores)."""
    for task in os.listdir(f"/proc/{pid}/task"):
        os.sched_setaffinity(int(task), cores)


def pin_workers(trainer: Trainer, cores: set[int]) -> None:
    """Hold the trainer's worker processes to ``cores``."""
    for pid in trainer.collector.actors.pids:
        pin_process(pid, cores)


def measure_overlap(config, repeats: int, utd: float | None) -> None:
    """Collection beside learning against strict alternation, with the learner held to core 0
    and the simulators (one worker process) to core 1.

    This process is pinned to core 0 before JAX starts (XLA's threads run there), the worker
    after it starts. Without ``utd``, the update ratio is chosen so that an iteration's
    collection alone and its learning alone take about the same time.
    """
    config = dataclasses.replace(config, num_actors=1)
    if utd is None:  # measure both alone at utd 1, then balance them
        trainer = Trainer(dataclasses.replace(config, utd=1.0, overlap_collection=False))
        try:
            pin_workers(trainer, {1})
            t_collect, t_learn = parts_alone(trainer, repeats)
        finally:
            trainer.close()
        utd = t_collect / t_learn
        print(
            f"# balanced: collection {t_collect:.3f} s and K updates {t_learn:.3f} s per "
            f"iteration at utd 1 -> utd {utd:.4g}"
        )
    results = {}
    for overlap in (False, True):
        trainer = Trainer(dataclasses.replace(config, utd=utd, overlap_collection=overlap))
        try:
            pin_workers(trainer, {1})
            if not overlap:
                t_collect, t_learn = parts_alone(trainer, repeats)
            holder = {"state": warmed_up(trainer)}

            def loop(trainer=trainer, holder=holder):
                holder["state"], metrics = trainer.iteration(holder["state"])
                return metrics

            results[overlap] = per_iteration(loop, repeats)
            budget = trainer.budget
        finally:
            trainer.close()
    steps, k = budget.steps_per_iteration, budget.grad_steps_per_iteration
    slower = max(t_collect, t_learn)
    print(
        f"# {config.env}: {steps} env steps and {k} updates per iteration (utd {utd:.4g}); "
        f"learner on core 0, simulators on core 1; seconds per iteration, mean of {repeats}"
    )
    print(f"{'part':26s} {'s/iteration':>12s} {'env steps/s':>12s} {'grad steps/s':>13s}")
    for name, t in [
        ("collection alone", t_collect),
        ("learning alone (K updates)", t_learn),
        ("loop, strict alternation", results[False]),
        ("loop, overlap", results[True]),
    ]:
        print(f"{name:26s} {t:12.3f} {steps / t:12.0f} {k / t:13.1f}")
    print(
        f"overlap / strict: {results[False] / results[True]:.2f}x; overlap / slower alone: "
        f"{slower / results[True]:.2f}"
    )


def parts_alone(trainer: Trainer, repeats: int) -> tuple[float, float]:
    """Seconds per iteration of the collection alone and of the K updates alone."""
    state = warmed_up(trainer)
    collector = trainer.collector
    t_collect = per_iteration(lambda: collector.gather(state.collector, "sample"), repeats)
    learn = jax.jit(lambda s: trainer._updates(s.learner, s.replay, s.key))
    t_learn = per_iteration(lambda: learn(state), repeats)
    return t_collect, t_learn


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    add_config_flags(parser)
    parser.add_argument("--repeats", type=int, default=3, help="timed iterations (best of)")
    parser.add_argument(
        "--max_workers", type=int, default=os.cpu_count(), help="host envs: 1..N workers"
    )
    parser.add_argument(
        "--unrolls",
        help="host envs: the loop at these unroll lengths (comma-separated, 0 = whole episode), "
        "strict and with collection beside learning",
    )
    parser.add_argument(
        "--pin",
        action="store_true",
        help="host envs: learner on core 0, simulators on core 1; overlap against strict at a "
        "balanced update ratio (or the --utd given)",
    )
    args = parser.parse_args()
    if args.pin:  # before JAX starts its compute threads: the learner's process holds core 0
        pin_process(os.getpid(), {0})
    overrides = {k: v for k, v in vars(args).items() if k in FIELDS}
    config = make_config(**overrides)
    if args.pin:
        measure_overlap(config, args.repeats, overrides.get("utd"))
        return
    if args.unrolls:
        unrolls = [int(u) for u in args.unrolls.split(",")]
        rows = measure_unrolls(config, args.repeats, unrolls)
        print_rows(config, rows, bare=0.0)
        return
    if resolve_backend(config.env, config.backend) == "mujoco":
        rows = measure_host(config, args.repeats, args.max_workers)
        if config.env in MUJOCO_IMAGE_ENVS:
            from render_mujoco import render_rate  # benchmarks/, beside this script

            rows = [("render alone", render_rate(config.env, args.repeats), 0.0)] + rows
    else:
        rows = measure(config, args.repeats)
    print_rows(config, rows, bare=rows[-1][2])


def print_rows(config, rows: list[tuple[str, float, float]], bare: float) -> None:
    print(
        f"# {config.env} {config.alg} preset={config.preset} num_envs={config.num_envs} "
        f"batch={config.batch_size} hidden={config.hidden_layer_sizes} utd={config.utd}"
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
        ratio = f"{gps / bare:10.2f}" if gps and bare else f"{'':10s}"
        vs_physics = f"{sps / physics:12.2f}" if sps and physics else ""
        sps_text = f"{sps:12.0f}" if sps else f"{'-':>12s}"
        gps_text = f"{gps:13.1f}" if gps else f"{'-':>13s}"
        print(f"{name:18s} {sps_text} {gps_text} {ratio} {vs_physics}")


if __name__ == "__main__":
    main()
