"""Frames per second of the MuJoCo image tasks in one process (what one worker can deliver).

For each task: the camera alone (the same scene rendered again and again; frames/s and CPU
milliseconds per frame, every thread of the process counted), the physics alone
(the state task's step, no picture), a whole image step (physics + picture) and a reset (goal
scene, its picture, start scene, its picture). Best of ``--repeats``.

    python benchmarks/render_mujoco.py
    MUJOCO_GL=osmesa python benchmarks/render_mujoco.py --envs fetch_reach_image
"""

from __future__ import annotations

import argparse
import os
import platform
import time
from collections.abc import Callable

import numpy as np

from contrastive_rl.envs import MUJOCO_IMAGE_ENVS
from contrastive_rl.envs.host_image import make_image_env


def best_seconds(fn: Callable[[], object], repeats: int) -> float:
    return best_wall_and_cpu(fn, repeats)[0]


def best_wall_and_cpu(fn: Callable[[], object], repeats: int) -> tuple[float, float]:
    """Least wall and least CPU seconds of ``fn`` over ``repeats`` runs. CPU counts every thread
    of this process (Mesa's llvmpipe renders on its own threads): on a shared machine it is
    the steadier figure of what a frame costs, where wall time also counts waiting for a core."""
    fn()  # warm-up: first frames build GL state
    wall = cpu = float("inf")
    for _ in range(repeats):
        start, start_cpu = time.perf_counter(), time.process_time()
        fn()
        wall = min(wall, time.perf_counter() - start)
        cpu = min(cpu, time.process_time() - start_cpu)
    return wall, cpu


def render_rate(name: str, repeats: int = 3, frames: int = 30) -> float:
    """Frames/s of the camera alone for the image task ``name``."""
    env = make_image_env(name)
    try:
        env.reset(0)
        return frames / best_seconds(lambda: [env.image() for _ in range(frames)], repeats)
    finally:
        env.close()


def rates(name: str, repeats: int, frames: int) -> dict[str, float]:
    env = make_image_env(name)
    actions = np.random.default_rng(0).uniform(-1, 1, (frames, 4))
    try:
        env.reset(0)
        render, render_cpu = best_wall_and_cpu(
            lambda: [env.image() for _ in range(frames)], repeats
        )
        physics = best_seconds(lambda: [env.task.step(a) for a in actions], repeats)
        step = best_seconds(lambda: [env.step(a) for a in actions], repeats)
        reset = best_seconds(lambda: env.reset(1), repeats)
        backend = env.renderer.backend
    finally:
        env.close()
    return {
        "render": frames / render,
        "render_cpu_ms": 1e3 * render_cpu / frames,
        "physics": frames / physics,
        "step": frames / step,
        "reset_s": reset,
        "backend": backend,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--envs", nargs="+", default=MUJOCO_IMAGE_ENVS, choices=MUJOCO_IMAGE_ENVS)
    parser.add_argument("--repeats", type=int, default=3, help="timed runs (best of)")
    parser.add_argument("--frames", type=int, default=30, help="frames (steps) per timed run")
    args = parser.parse_args()
    load = os.getloadavg()[0]
    print(f"# {platform.machine()} {os.cpu_count()} cores, load average {load:.1f} at start")
    print(
        f"{'env':22s} {'render frames/s':>16s} {'render CPU ms':>14s} {'physics steps/s':>16s} "
        f"{'image steps/s':>14s} {'reset s':>8s} backend"
    )
    for name in args.envs:
        r = rates(name, args.repeats, args.frames)
        print(
            f"{name:22s} {r['render']:16.1f} {r['render_cpu_ms']:14.1f} {r['physics']:16.0f} "
            f"{r['step']:14.1f} {r['reset_s']:8.2f} {r['backend']}"
        )
    print(f"# load average {os.getloadavg()[0]:.1f} at the end")


if __name__ == "__main__":
    main()
