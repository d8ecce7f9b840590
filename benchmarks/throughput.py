"""Throughput of the training loop against its parts, for any environment and config.

Measures, after compilation, in steady state:
  loop      the jitted training iteration (collection + insertion + K updates with sampling)
  physics   the environments alone (same envs, same unroll, uniform random actions)
  collect   the collection rollout alone (same envs, same unroll, policy sampling)
  sample+update  K updates that each sample a batch from the replay (no collection)
  bare update    K updates on one fixed batch (no sampling, no collection), as one scan
  bare, in calls (image networks) the same K updates as the trainer runs them: in calls
            of IMAGE_UPDATES_PER_CALL updates written out, no loop (XLA's CPU backend runs a
            convolution inside a scan far more slowly)
  render    (environments that render stored states, e.g. point images) the images of K
            batches, state, next state and goal of each row, as sampling draws them; given as
            the gradient steps/s it could feed
and prints env steps/s, gradient steps/s and each rate over the last row's (the bare update as
the trainer runs it).

For host environments (CPU simulators in worker processes) it measures, for 1..N workers:
  physics   the workers stepping every env with random actions (no policy)
  collect   one unroll (``unroll_length`` steps of every env) with the policy in the workers
  loop      collection + insertion + K updates (the learner's gradient steps/s while collecting)
beside the bare update, and for MuJoCo image tasks first the camera alone in one process
(``render alone``, frames/s; ``benchmarks/render_mujoco.py`` has more). ``--unrolls`` measures
the loop at several unroll lengths, strict and with collection beside learning; ``--pin``
measures the overlap with the learner held to core 0 and the simulators to core 1: each part
alone, then both loops, at an update ratio that balances the two parts.

For offline tasks (``offline_*``, with ``--dataset``) nothing is collected: it measures the
loop (K updates, each sampling its batch from the dataset's replay) against the bare update,
in gradient steps/s.

    python benchmarks/throughput.py --env point_FourRooms --preset quick
    python benchmarks/throughput.py --env point_image_FourRooms --preset image_quick
    python benchmarks/throughput.py --env fetch_reach --num_envs 32 --max_workers 2
    python benchmarks/throughput.py --env fetch_reach --unrolls 2,10,50
    python benchmarks/throughput.py --env ant_umaze --pin --repeats 5
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

from contrastive_rl.config import FIELDS, make_config
from contrastive_rl.envs import MUJOCO_IMAGE_ENVS, is_offline, resolve_backend
from contrastive_rl.flags import add_config_flags
from contrastive_rl.training.budget import IMAGE_UPDATES_PER_CALL
from contrastive_rl.training.trainer import Trainer


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
    in_calls = []
    if trainer.unrolled_updates:
        in_calls = [("bare, in calls", 0.0, bare_update_in_calls(trainer, snapshot, repeats))]
    return rendered + [
        ("loop", steps / t_loop, k / t_loop),
        ("physics", steps / t_physics, 0.0),
        ("collect", steps / t_collect, 0.0),
        ("sample+update", 0.0, k / t_sample),
        ("bare update", 0.0, k / t_bare),
        *in_calls,
    ]


def bare_update_in_calls(trainer: Trainer, state, repeats: int) -> float:
    """Gradient steps/s of K updates on one fixed batch in calls of IMAGE_UPDATES_PER_CALL
    updates written out one after another (how the trainer runs image networks)."""
    config, learner, k = trainer.config, trainer.learner, trainer.budget.grad_steps_per_iteration
    per_call = min(IMAGE_UPDATES_PER_CALL, k)

    @jax.jit
    def call(ts, batch, keys):
        for i in range(per_call):
            ts, _ = learner.update(ts, batch, keys[i])
        return ts

    fixed = trainer.replay.sample(state.replay, jax.random.key(0), config.batch_size)
    keys = jax.random.split(state.key, per_call)

    def updates():
        ts = state.learner
        for _ in range(k // per_call):
            ts = call(ts, fixed, keys)
        return ts

    return (k // per_call) * per_call / timed(updates, repeats)


def bare_update_rate(trainer: Trainer, state, repeats: int, replay=None) -> float:
    """Gradient steps/s of K updates on one fixed batch (no sampling, no collection), the batch
    drawn from ``replay`` (default: the loop state's)."""
    config, learner, k = trainer.config, trainer.learner, trainer.budget.grad_steps_per_iteration

    @jax.jit
    def bare_update(s, batch):
        def one(ts, key):
            return learner.update(ts, batch, key)

        return jax.lax.scan(one, s.learner, jax.random.split(s.key, k))

    replay = state.replay if replay is None else replay
    fixed = trainer.replay.sample(replay, jax.random.key(0), config.batch_size)
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
    bare = bare_update_rate(trainer, holder["state"], repeats, replay=trainer.dataset_replay)
    return [("loop (offline)", 0.0, k / t_loop), ("bare update", 0.0, bare)]


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
    and the simulators (one worker process, its policy included) to core 1.

    This process (the learner) is pinned to core 0 before JAX starts its threads, the worker to
    core 1 once started (``sched_setaffinity`` on every thread of each). Without ``utd``, the
    update ratio is chosen so that an iteration's collection alone and its K updates alone take
    about the same time. Prints seconds per iteration of each part alone and of both loops.
    """
    config = dataclasses.replace(config, num_actors=1)
    if utd is None:  # both parts alone at a small update ratio; updates cost the same each
        t_collect, t_learn, _, budget = pinned_loop(
            dataclasses.replace(config, utd=0.1), repeats, loop=False
        )
        per_update = t_learn / budget.grad_steps_per_iteration
        utd = t_collect / (per_update * budget.steps_per_iteration)
        print(
            f"# balanced: collection {t_collect:.3f} s per iteration, {per_update * 1e3:.2f} ms "
            f"per update -> utd {utd:.4g}"
        )
    config = dataclasses.replace(config, utd=utd)
    t_collect, t_learn, strict, budget = pinned_loop(config, repeats, overlap=False)
    *_, beside, _ = pinned_loop(config, repeats, overlap=True, parts=False)
    steps, k = budget.steps_per_iteration, budget.grad_steps_per_iteration
    print(
        f"# {config.env}: {config.num_envs} envs x {steps // config.num_envs} steps = {steps} env "
        f"steps and {k} updates per iteration (utd {utd:.4g}); learner on core 0, simulators "
        f"(1 worker) on core 1; seconds per iteration, mean of {repeats}"
    )
    print(f"{'part':28s} {'s/iteration':>12s} {'env steps/s':>12s} {'grad steps/s':>13s}")
    for name, t in [
        ("collection alone", t_collect),
        ("learning alone (K updates)", t_learn),
        ("loop, strict alternation", strict),
        ("loop, collection beside", beside),
    ]:
        print(f"{name:28s} {t:12.3f} {steps / t:12.0f} {k / t:13.1f}")
    print(
        f"beside / strict: {strict / beside:.2f}x (goal >= 1.5); slower part alone / beside: "
        f"{max(t_collect, t_learn) / beside:.2f} (goal >= 0.8); parts summed / strict: "
        f"{(t_collect + t_learn) / strict:.2f}"
    )


def pinned_loop(config, repeats: int, overlap: bool = False, parts: bool = True, loop: bool = True):
    """A trainer with its worker on core 1: seconds per iteration of the collection alone and
    of the K updates alone (``parts``), of the training loop with or without overlap
    (``loop``), None for those not measured; and its budget."""
    trainer = Trainer(dataclasses.replace(config, overlap_collection=overlap))
    try:
        pin_workers(trainer, {1})
        state = warmed_up(trainer)
        t_collect, t_learn = parts_alone(trainer, state, repeats) if parts else (None, None)
        holder = {"state": state}

        def iteration():
            holder["state"], metrics = trainer.iteration(holder["state"])
            return metrics

        t_loop = per_iteration(iteration, repeats) if loop else None
        return t_collect, t_learn, t_loop, trainer.budget
    finally:
        trainer.close()


def parts_alone(trainer: Trainer, state, repeats: int) -> tuple[float, float]:
    """Seconds per iteration of the collection alone (the unrolls that follow ``state``'s, one
    after the other, nothing else running) and of the K updates alone (no collection)."""
    collector, first = trainer.collector, int(state.collector.unrolls)
    index = iter(range(first, first + repeats + 2))

    def collect():
        return collector.gather(state.collector.replace(unrolls=next(index)), "sample")

    t_collect = per_iteration(collect, repeats)
    # the workers went on: the next gather resets or continues from where they are, which is
    # all a timing needs (the loop below starts again from ``state``'s unroll)
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
        if not {0, 1} <= os.sched_getaffinity(0):
            parser.error(
                "--pin needs cores 0 and 1: the learner on one, the simulators on the other"
            )
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
    if is_offline(config.env):
        rows = measure_offline(config, args.repeats)
    elif resolve_backend(config.env, config.backend) == "mujoco":
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
        ratio = f"{gps / bare:10.2f}" if gps and bare else f"{'':10s}"
        vs_physics = f"{sps / physics:12.2f}" if sps and physics else ""
        sps_text = f"{sps:12.0f}" if sps else f"{'-':>12s}"
        gps_text = f"{gps:13.1f}" if gps else f"{'-':>13s}"
        print(f"{name:18s} {sps_text} {gps_text} {ratio} {vs_physics}")


if __name__ == "__main__":
    main()
