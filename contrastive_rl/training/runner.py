"""The host loop of a run: warm-up, iterations, evaluation, logging, checkpoints, resume.

Everything heavy happens inside the jitted functions of ``train.Trainer``; this loop only decides
when to evaluate, log and checkpoint, and keeps the exact counters. The budget, the evaluation
schedule and the metrics' step count env steps, or gradient steps for offline tasks
(``Budget.counter``).
"""

from __future__ import annotations

import dataclasses
import math
import signal
import sys
import time
from dataclasses import dataclass, field
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from tqdm import tqdm

from contrastive_rl.actors.workers import WorkerError
from contrastive_rl.config import Config
from contrastive_rl.errors import ConfigError, RunDirError
from contrastive_rl.runs import checkpoint
from contrastive_rl.runs.config_files import CONFIG_FILE, load_config, stored_config_differences
from contrastive_rl.runs.metrics import (
    STEP_KEY,
    MetricsLogger,
    ScalarMirror,
    read_metrics,
    record_evaluation,
)
from contrastive_rl.runs.rundir import checkpoint_env_steps
from contrastive_rl.runs.signals import StopSignals
from contrastive_rl.training.trainer import Trainer, Unfinished


@dataclass
class Progress:
    """Host-side exact counters (Python ints), saved with every checkpoint."""

    warmup_iterations: int = 0
    train_iterations: int = 0
    env_steps: int = 0
    grad_steps: int = 0
    wall_time: float = 0.0  # seconds of this run, summed over resumes
    next_eval: int = 0  # the step (of the budget's counter) at which the next evaluation is due
    # An evaluation was due at env_steps and has not been logged (its worker died): run it first.
    eval_pending: bool = False
    # Each training iteration's metrics since the last evaluation, averaged into the next record.
    pending_metrics: list[dict[str, float]] = field(default_factory=list)
    # A training iteration a stop interrupted between two update calls: its collection's stats;
    # the state holds its collection, not its updates (the counters are those before it).
    unfinished: dict[str, float] | None = None

    @staticmethod
    def from_checkpoint(saved: dict[str, Any]) -> Progress:
        values = dict(saved)
        values["pending_metrics"] = [  # "NaN"/"Infinity" come back from JSON as strings
            {k: float(v) for k, v in r.items()} for r in values.get("pending_metrics", [])
        ]
        return Progress(**values)


class DivergedError(RuntimeError):
    """Training produced non-finite losses or parameters; the diverged state is not saved."""


def mean_metrics(records: list[dict[str, float]]) -> dict[str, float]:
    """Average the iterations' metrics (host floats); episode counts become a success rate."""
    if not records:
        return {}
    out = {k: float(np.mean([r[k] for r in records])) for k in records[0]}
    out = {k: v for k, v in out.items() if not k.startswith("collect/")}
    episodes = sum(r.get("collect/episodes", 0.0) for r in records)  # offline: none collected
    if episodes:
        out["train/episode_success"] = sum(r["collect/successes"] for r in records) / episodes
    return out


def _all_finite(tree: Any) -> bool:
    leaves = [
        x
        for x in jax.tree.leaves(tree)
        if hasattr(x, "dtype") and jnp.issubdtype(x.dtype, jnp.floating)
    ]
    return all(bool(jnp.isfinite(x).all()) for x in leaves)


class StopRequest(StopSignals):
    """Turns Ctrl-C / SIGTERM into a clean stop (with a checkpoint) after the current iteration,
    or between two update calls of a long one (``Trainer.split``)."""

    def __init__(self) -> None:
        super().__init__()
        self.requested = False

    def handle(self, signum: int, frame: Any) -> None:
        if self.requested and self.signal is not None:  # a second one stops at once
            raise KeyboardInterrupt
        self.requested = True
        super().handle(signum, frame)
        name = signal.Signals(signum).name
        print(
            f"\n{name}: stopping after the current update call or iteration (Ctrl-C again to "
            f"abort)...",
            file=sys.stderr,
        )


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
        self.stop_signal: int | None = None  # set when SIGINT/SIGTERM stopped the run early
        self.saved_env_steps: int | None = None  # budget steps of the last checkpoint, if any
        try:
            self._restore(resume)
        except BaseException:  # a refused resume must not leave worker processes behind
            self.trainer.close()
            raise

    @property
    def step(self) -> int:
        """Progress in the budget's unit: env steps, or gradient steps for offline tasks."""
        return getattr(self.progress, self.trainer.budget.counter)

    def _restore(self, resume: bool) -> None:
        self.state = self.trainer.init()
        self.progress = Progress(next_eval=self.config.eval_every)
        if resume and checkpoint.has_checkpoint(self.checkpoint_dir):
            self.state, meta = checkpoint.load_checkpoint(self.checkpoint_dir, self.state)
            saved_config = meta.get("config")
            differences = (
                stored_config_differences(saved_config, self.config) if saved_config else []
            )
            if differences:
                raise RunDirError(
                    f"{self.path}/{CONFIG_FILE} differs from the config saved in the "
                    f"checkpoint ({'; '.join(differences)}); restore it, or start over with "
                    f"--overwrite"
                )
            self._check_dataset(meta.get("dataset"))
            self.state = self.trainer.restore(self.trainer.place(self.state))
            self.progress = Progress.from_checkpoint(meta["progress"])
            self.saved_env_steps = self.step
        counter = self.trainer.budget.counter
        self.metrics = MetricsLogger(
            self.path, resume=resume, step_key=counter, mirrors=self._mirrors(resume, counter)
        )
        self.last_eval: dict[str, float] = {}
        if resume:
            self.metrics.truncate_after(self.step)
            logged = read_metrics(self.path)
            if logged and logged[-1].get(counter) == self.step:
                # a finished run resumed reports its last evaluation, never an older one
                self.last_eval = {k: v for k, v in logged[-1].items() if k.startswith("eval/")}

    def _check_dataset(self, saved: dict[str, Any] | None) -> None:
        """An offline run resumes only on the dataset it started with (same arrays)."""
        current = self.trainer.dataset_identity
        if saved is None or current is None or saved.get("sha256") == current.get("sha256"):
            return
        raise RunDirError(
            f"the dataset {current['path']} is not the one the run in {self.path} trained on "
            f"({saved.get('episodes')} episodes of {saved.get('episode_length')} transitions, "
            f"SHA-256 {str(saved.get('sha256'))[:12]}..., now {current['episodes']} of "
            f"{current['episode_length']}, {current['sha256'][:12]}...); restore that file, or "
            f"start a new run (--overwrite, or another run_dir)"
        )

    def _mirrors(self, resume: bool, step_key: str = STEP_KEY) -> list[ScalarMirror]:
        """Where the logged scalars go besides TensorBoard (``--wandb``), at ``step_key``."""
        if not self.config.wandb:
            return []
        from contrastive_rl.runs.wandb_mirror import WandbMirror

        return [WandbMirror(self.config, self.path, resume, step_metric=step_key)]

    # -- one step at a time ------------------------------------------------------------------
    def save(self) -> None:
        """Checkpoint the state and counters; a state with non-finite parameters is refused."""
        self.check_parameters()
        meta = {"progress": dataclasses.asdict(self.progress), "config": self.config.to_dict()}
        if self.trainer.dataset_identity is not None:
            meta["dataset"] = self.trainer.dataset_identity
        checkpoint.save_checkpoint(self.checkpoint_dir, self.step, self.state, meta)
        self.saved_env_steps = self.step

    def _kept(self) -> str:
        if self.saved_env_steps is None:
            return "No checkpoint was saved; lower the learning rates and start over."
        return (
            f"The last good checkpoint ({self.saved_env_steps} {self.trainer.budget.unit}) is "
            f"kept and the "
            f"diverged state is not saved; lower the learning rates and start over with "
            f"--overwrite, or resume to retry from it"
        )

    def check_parameters(self) -> None:
        """Stop the run (without saving or evaluating) when a parameter is not finite."""
        if not _all_finite(self.state.learner):
            raise DivergedError(
                f"training diverged by {self.step} {self.trainer.budget.unit}: the parameters "
                f"became non-finite (nan/inf). {self._kept()}"
            )

    def check_finite(self, metrics: dict[str, float], step: int) -> None:
        """Stop the run (without saving) when an iteration's losses are not finite."""
        bad = sorted(k for k, v in metrics.items() if not math.isfinite(v))
        if bad:
            raise DivergedError(
                f"training diverged at {step} {self.trainer.budget.unit}: {', '.join(bad)} became "
                f"non-finite (nan/inf). {self._kept()}"
            )

    def evaluate(self) -> dict[str, float]:
        key = self.trainer.eval_key(self.step)
        result = self.trainer.evaluate(self.state.learner.actor_params, key)
        return {k: float(v) for k, v in jax.device_get(result).items()}

    def evaluate_and_log(self, env_sps: float, grad_sps: float) -> None:
        """Evaluate, log one record with the pending training metrics, and schedule the next."""
        p = self.progress
        self.check_parameters()
        p.eval_pending = True  # until the record is written: a resume evaluates again
        self.last_eval = self.evaluate()
        record = {
            "env_steps": p.env_steps,
            "grad_steps": p.grad_steps,
            "wall_time": round(p.wall_time, 3),
            **self.last_eval,
            **mean_metrics(p.pending_metrics),
            "time/grad_steps_per_s": grad_sps,
        }
        if self.trainer.budget.counter == "env_steps":  # offline runs collect nothing
            record["time/env_steps_per_s"] = env_sps
        self.metrics.log(record)
        p.pending_metrics = []
        p.eval_pending = False
        while p.next_eval <= self.step:
            p.next_eval += self.config.eval_every

    # -- the loop -------------------------------------------------------------------------------
    def run(self, stop_after_iterations: int | None = None) -> dict[str, float]:
        """Train to the budget (or stop, with a checkpoint, after this many iterations).

        A crashed or hung environment worker ends the run with a checkpoint of the last whole
        iteration (``WorkerError``); ``--resume`` continues from there.
        """
        budget = self.trainer.budget
        bar = tqdm(
            total=budget.total,
            initial=self.step,
            unit="step" if budget.counter == "env_steps" else "grad step",
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
                f"\nenvironment worker failed at {self.step} {budget.unit}; the "
                f"checkpoint is saved, continue with `crl train --resume {self.path}`",
                file=sys.stderr,
            )
            raise
        finally:
            self.trainer.stop_requested = lambda: False  # the run's stop flag ends with it
            bar.close()
            self.metrics.close()
            self.trainer.close()
        return self.last_eval

    def _loop(self, bar: tqdm, stop_after_iterations: int | None) -> None:
        budget, p, config = self.trainer.budget, self.progress, self.config
        for note in budget.notes:
            print(f"note: {note}", file=sys.stderr)
        last_checkpoint = time.monotonic()
        interval_start, interval_env, interval_grad = time.perf_counter(), p.env_steps, p.grad_steps
        done = self.step >= budget.total
        with StopRequest() as stop:
            if p.eval_pending or (done and not self.last_eval):
                self.evaluate_and_log(0.0, 0.0)  # the evaluation an interrupted run owes
                self.save()
            tick = time.perf_counter()
            while self.step < budget.total and not stop.requested:
                steps = budget.steps_per_iteration
                if p.warmup_iterations < budget.warmup_iterations:
                    self.state = self.trainer.warmup(self.state, p.warmup_iterations)
                    p.warmup_iterations += 1
                    grads = 0
                else:
                    self.trainer.stop_requested = lambda: stop.requested
                    if p.unfinished is not None:  # stopped between its updates: finish it
                        self.state, metrics = self.trainer.finish_iteration(
                            self.state, p.unfinished
                        )
                    else:
                        self.state, metrics = self.trainer.iteration(self.state)
                    if isinstance(metrics, Unfinished):
                        p.unfinished = metrics.stats
                        p.wall_time += time.perf_counter() - tick
                        break  # checkpointed below, without this iteration's updates
                    p.unfinished = None
                    grads = budget.grad_steps_per_iteration
                    host = {k: float(v) for k, v in jax.device_get(metrics).items()}
                    self.check_finite(host, self.step + (steps if steps else grads))
                    p.pending_metrics.append(host)
                    p.train_iterations += 1
                jax.block_until_ready(self.state.key)
                before = self.step
                p.env_steps += steps
                p.grad_steps += grads
                bar.update(self.step - before)
                done = self.step >= budget.total
                p.wall_time += time.perf_counter() - tick
                tick = time.perf_counter()
                if self.step >= p.next_eval or done:
                    elapsed = max(time.perf_counter() - interval_start, 1e-9)
                    self.evaluate_and_log(
                        (p.env_steps - interval_env) / elapsed,
                        (p.grad_steps - interval_grad) / elapsed,
                    )
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
            if stop.requested and not done:
                self.save()
                self.stop_signal = stop.signal
                cause = f"by {signal.Signals(stop.signal).name} " if stop.signal else ""
                print(
                    f"stopped {cause}at {self.step} of {budget.total} {budget.unit} (not "
                    f"finished); the checkpoint is saved, continue with "
                    f"`crl train --resume {self.path}`",
                    file=sys.stderr,
                )


def evaluate_run(path: str, episodes: int | None = None, record: bool = False) -> dict[str, float]:
    """Re-evaluate the last checkpoint of the run in ``path`` (``crl eval``); with ``record``,
    add the result (and its number of episodes) to the run's ``evaluations.jsonl``, where
    ``crl report`` takes a finished run's final value from."""
    config = load_config(path)
    if episodes is not None:
        if episodes <= 0:
            raise ConfigError(f"--episodes must be positive, got {episodes}")
        config = dataclasses.replace(config, eval_episodes=episodes)
    trainer = Trainer(config, load_data=False)  # an offline run's dataset is not needed
    try:
        state, meta = checkpoint.load_checkpoint(path, trainer.init())
        progress = meta["progress"]
        step = progress[trainer.budget.counter]
        result = trainer.evaluate(state.learner.actor_params, trainer.eval_key(step))
    finally:
        trainer.close()
    steps = {"env_steps": progress["env_steps"], "grad_steps": progress.get("grad_steps", 0)}
    evaluation = {**steps, **{k: float(v) for k, v in jax.device_get(result).items()}}
    if record:
        now = checkpoint_env_steps(path)  # a run may go on training while it is evaluated
        if now is None or now < progress["env_steps"]:  # but not start again (--overwrite)
            print(f"not recorded: {path} was replaced during the evaluation", file=sys.stderr)
        else:
            file = record_evaluation(path, {**evaluation, "episodes": config.eval_episodes})
            print(f"recorded in {file}", file=sys.stderr)
    return evaluation
