"""The host loop of a run: warm-up, iterations, evaluation, logging, checkpoints, resume.

Everything heavy happens inside the jitted functions of ``train.Trainer``; this loop only decides
when to evaluate, log and checkpoint, and keeps the exact counters.
"""

from __future__ import annotations

import dataclasses
import signal
import sys
import time
from dataclasses import dataclass
from typing import Any

import jax
import numpy as np
from tqdm import tqdm

from contrastive_rl import checkpoint, rundir
from contrastive_rl.config import Config
from contrastive_rl.train import Trainer
from contrastive_rl.workers import WorkerError


@dataclass
class Progress:
    """Host-side exact counters (Python ints), saved with every checkpoint."""

    warmup_iterations: int = 0
    train_iterations: int = 0
    env_steps: int = 0
    grad_steps: int = 0
    wall_time: float = 0.0  # seconds of this run, summed over resumes
    next_eval: int = 0  # env steps at which the next evaluation is due


def mean_metrics(records: list[dict[str, Any]]) -> dict[str, float]:
    """Average the iterations' device metrics on the host; episode counts become a rate."""
    if not records:
        return {}
    host = jax.device_get(records)
    out = {k: float(np.mean([r[k] for r in host])) for k in host[0] if not k.startswith("collect/")}
    episodes = sum(float(r["collect/episodes"]) for r in host)
    if episodes:
        out["train/episode_success"] = sum(float(r["collect/successes"]) for r in host) / episodes
    return out


class StopRequest:
    """Turns Ctrl-C / SIGTERM into a clean stop (with a checkpoint) after the current iteration."""

    def __init__(self) -> None:
        self.requested = False
        self._previous: dict[int, Any] = {}

    def __enter__(self) -> StopRequest:
        for sig in (signal.SIGINT, signal.SIGTERM):
            try:
                self._previous[sig] = signal.signal(sig, self._handle)
            except ValueError:  # not the main thread: keep the default behaviour
                pass
        return self

    def _handle(self, signum: int, frame: Any) -> None:
        if self.requested:  # a second Ctrl-C stops at once; the last checkpoint stays valid
            raise KeyboardInterrupt
        self.requested = True
        print("\nstopping after this iteration (Ctrl-C again to abort)...", file=sys.stderr)

    def __exit__(self, *exc: Any) -> None:
        for sig, handler in self._previous.items():
            signal.signal(sig, handler)


class Run:
    """One training run in its directory; ``run()`` trains to the budget, returns the last eval."""

    def __init__(
        self,
        config: Config,
        path: str,
        resume: bool = False,
        progress_bar: bool = True,
        trainer: Trainer | None = None,
    ):
        self.trainer = trainer or Trainer(config)
        self.config = config
        self.path = path
        self.progress_bar = progress_bar
        self.checkpoint_dir = path  # checkpoint.msgpack/.json beside config.json
        self.state = self.trainer.init()
        self.progress = Progress(next_eval=config.eval_every)
        if resume and checkpoint.has_checkpoint(self.checkpoint_dir):
            self.state, meta = checkpoint.load_checkpoint(self.checkpoint_dir, self.state)
            self.state = self.trainer.place(self.state)
            self.progress = Progress(**meta["progress"])
        self.metrics = rundir.MetricsLogger(path, resume=resume)
        self.last_eval: dict[str, float] = {}
        if resume:
            self.metrics.truncate_after(self.progress.env_steps)
            logged = rundir.read_metrics(path)
            if logged:  # a finished run resumed reports its last evaluation
                self.last_eval = {k: v for k, v in logged[-1].items() if k.startswith("eval/")}

    # -- one step at a time ------------------------------------------------------------------
    def save(self) -> None:
        checkpoint.save_checkpoint(
            self.checkpoint_dir,
            self.progress.env_steps,
            self.state,
            {"progress": self.progress.__dict__, "config": self.config.to_dict()},
        )

    def evaluate(self) -> dict[str, float]:
        key = self.trainer.eval_key(self.progress.env_steps)
        result = self.trainer.evaluate(self.state.learner.actor_params, key)
        return {k: float(v) for k, v in jax.device_get(result).items()}

    def log(self, train_metrics: dict[str, float], env_sps: float, grad_sps: float) -> None:
        self.last_eval = self.evaluate()
        p = self.progress
        record = {
            "env_steps": p.env_steps,
            "grad_steps": p.grad_steps,
            "wall_time": round(p.wall_time, 3),
            **self.last_eval,
            **train_metrics,
            "time/env_steps_per_s": env_sps,
            "time/grad_steps_per_s": grad_sps,
        }
        self.metrics.log(record)

    # -- the loop -------------------------------------------------------------------------------
    def run(self, stop_after_iterations: int | None = None) -> dict[str, float]:
        """Train to the budget (or stop, with a checkpoint, after this many iterations).

        A crashed or hung environment worker ends the run with a checkpoint of the last whole
        iteration (``WorkerError``); ``--resume`` continues from there.
        """
        bar = tqdm(
            total=self.trainer.budget.total_env_steps,
            initial=self.progress.env_steps,
            unit="step",
            unit_scale=True,
            disable=not self.progress_bar,
            dynamic_ncols=True,
            file=sys.stderr,
        )
        try:
            self._loop(bar, stop_after_iterations)
        except WorkerError:
            self.save()  # self.state is the last whole iteration: consistent with the counters
            print(
                f"\nenvironment worker failed at {self.progress.env_steps} env steps; the "
                f"checkpoint is saved, continue with `crl train --resume {self.path}`",
                file=sys.stderr,
            )
            raise
        finally:
            bar.close()
            self.metrics.close()
            self.trainer.close()
        return self.last_eval

    def _loop(self, bar: tqdm, stop_after_iterations: int | None) -> None:
        budget, p, config = self.trainer.budget, self.progress, self.config
        for note in budget.notes:
            print(f"note: {note}", file=sys.stderr)
        last_checkpoint = time.monotonic()
        pending: list[dict[str, Any]] = []
        interval_start, interval_env, interval_grad = time.perf_counter(), p.env_steps, p.grad_steps
        with StopRequest() as stop:
            tick = time.perf_counter()
            while p.env_steps < budget.total_env_steps and not stop.requested:
                if p.warmup_iterations < budget.warmup_iterations:
                    self.state = self.trainer.warmup(self.state)
                    p.warmup_iterations += 1
                    steps, grads = budget.warmup_steps_per_iteration, 0
                else:
                    self.state, metrics = self.trainer.iteration(self.state)
                    pending.append(metrics)
                    p.train_iterations += 1
                    steps, grads = budget.steps_per_iteration, budget.grad_steps_per_iteration
                jax.block_until_ready(self.state.key)
                p.env_steps += steps
                p.grad_steps += grads
                bar.update(steps)
                done = p.env_steps >= budget.total_env_steps
                p.wall_time += time.perf_counter() - tick
                tick = time.perf_counter()
                if p.env_steps >= p.next_eval or done:
                    elapsed = max(time.perf_counter() - interval_start, 1e-9)
                    self.log(
                        mean_metrics(pending),
                        (p.env_steps - interval_env) / elapsed,
                        (p.grad_steps - interval_grad) / elapsed,
                    )
                    pending = []
                    while p.next_eval <= p.env_steps:
                        p.next_eval += config.eval_every
                    bar.set_postfix(success=f"{self.last_eval['eval/success']:.3f}")
                    interval_start = time.perf_counter()
                    interval_env, interval_grad = p.env_steps, p.grad_steps
                    p.wall_time += time.perf_counter() - tick  # evaluation counts as run time
                    tick = time.perf_counter()
                if done or time.monotonic() - last_checkpoint >= config.checkpoint_every_s:
                    self.save()
                    last_checkpoint = time.monotonic()
                if stop_after_iterations is not None:
                    stop_after_iterations -= 1
                    stop.requested |= stop_after_iterations <= 0
            if stop.requested and not p.env_steps >= budget.total_env_steps:
                self.save()
                print(
                    f"stopped at {p.env_steps} env steps; continue with "
                    f"`crl train --resume {self.path}`",
                    file=sys.stderr,
                )


def evaluate_run(path: str, episodes: int | None = None) -> dict[str, float]:
    """Re-evaluate the last checkpoint of the run in ``path`` (``crl eval``)."""
    config = rundir.load_config(path)
    if episodes is not None:
        config = dataclasses.replace(config, eval_episodes=episodes)
    trainer = Trainer(config)
    try:
        state, meta = checkpoint.load_checkpoint(path, trainer.init())
        env_steps = meta["progress"]["env_steps"]
        result = trainer.evaluate(state.learner.actor_params, trainer.eval_key(env_steps))
    finally:
        trainer.close()
    return {"env_steps": env_steps, **{k: float(v) for k, v in jax.device_get(result).items()}}
