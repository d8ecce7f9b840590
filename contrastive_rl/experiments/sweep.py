"""``crl sweep``: every run of a grid as a ``crl train`` process, N at a time or on Ray.

Layout of a sweep directory::

    sweep.json            the spec and each run's last outcome (rewritten at start and end)
    logs/<run>.log        each run's output, appended at every attempt
    <run>/                the run directory of ``crl train`` (config.json, metrics, checkpoint)

Running a sweep again skips the runs that finished, resumes (``crl train --resume``) the ones
that stopped or failed after they started, and starts the others; runs are seeded and resume is
exact, so an interrupted sweep rerun ends with the runs and numbers of one left alone. A run
directory that holds a run with another config is reported and never touched. A failed run does
not stop the others: the summary names its error and log, and the exit status is 1.
Ctrl-C or SIGTERM is passed on to the running trainings, which checkpoint and stop; no new run
starts, and the sweep exits with 128 + the signal's number.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any, TextIO

from contrastive_rl.config import ConfigError
from contrastive_rl.experiments.spec import PlannedRun, SweepSpec, expand, train_flags
from contrastive_rl.runs import files
from contrastive_rl.runs.signals import StopSignals

SWEEP_FILE = "sweep.json"
LOG_DIR = "logs"
TRAIN_COMMAND = (sys.executable, "-m", "contrastive_rl.cli", "train")
POLL_S = 0.2


@dataclass
class Job:
    """One run as the sweep found it on disk: ``new``, ``resume``, ``finished`` or ``conflict``."""

    run: PlannedRun
    path: str
    log: str
    state: str
    detail: str = ""

    def command(self, train_command: Sequence[str]) -> list[str]:
        if self.state == "resume":
            return [*train_command, "--resume", self.path, "--no-progress"]
        flags = train_flags(self.run.values)
        return [*train_command, *flags, "--run_dir", self.path, "--no-progress"]


@dataclass
class Outcome:
    """What became of one run: finished, skipped, failed, stopped or not run."""

    name: str
    status: str
    path: str
    log: str
    error: str = ""
    final_success: float | None = None


def finished(path: str, steps: int) -> bool:
    """Whether the checkpoint in ``path`` holds the whole budget with its final evaluation.

    The checkpoint's ``step`` is in the budget's unit: env steps, or gradient steps for
    offline tasks (whose ``env_steps`` stay 0)."""
    try:
        with open(os.path.join(path, files.META_FILE), encoding="utf-8") as f:
            meta = json.load(f)
        progress = meta["progress"]
        done = int(meta.get("step", progress.get("env_steps", 0)))
    except (OSError, ValueError, KeyError, TypeError):
        return False
    return files.has_checkpoint(path) and done >= steps and not progress.get("eval_pending", False)


def inspect(run: PlannedRun, sweep_dir: str) -> Job:
    """The run's state on disk; a run with another config there is a ``conflict``."""
    from contrastive_rl.runs.config_files import CONFIG_FILE, config_differences, load_config

    path = os.path.abspath(os.path.join(sweep_dir, run.name))
    log = os.path.abspath(os.path.join(sweep_dir, LOG_DIR, f"{run.name}.log"))
    if not os.path.isfile(os.path.join(path, CONFIG_FILE)):
        return Job(run, path, log, "new")
    try:
        stored = load_config(path)
    except (ValueError, OSError) as error:
        return Job(run, path, log, "conflict", str(error))
    diffs = config_differences(stored, run.config)
    if diffs:
        return Job(
            run, path, log, "conflict",
            f"{path} holds a run with another config ({'; '.join(diffs)}); it was left as it "
            "is: move it away, or choose another --sweep_dir",
        )  # fmt: skip
    return Job(run, path, log, "finished" if finished(path, stored.steps) else "resume")


def error_of(log: str, returncode: int) -> str:
    """The line of a run's log that says why it failed (``crl train: error: ...``, else the
    last line of a traceback or of the log), with the exit status."""
    try:
        with open(log, encoding="utf-8", errors="replace") as f:
            lines = [line.rstrip() for line in f.read().splitlines()[-200:] if line.strip()]
    except OSError:
        lines = []
    said = [line for line in lines if line.startswith("crl train: error:")]
    why = said[-1] if said else (lines[-1] if lines else "no output")
    return f"exit status {returncode}: {why}"


def final_success(path: str) -> float | None:
    from contrastive_rl.runs.metrics import read_metrics

    records = [r for r in read_metrics(path) if r.get("eval/success") is not None]
    return float(records[-1]["eval/success"]) if records else None


class SweepSignals(StopSignals):
    """Counts SIGINT/SIGTERM; the sweep passes each one on to its running trainings."""

    def __init__(self) -> None:
        super().__init__()
        self.count = 0

    def handle(self, signum: int, frame: Any) -> None:
        self.count += 1
        super().handle(signum, frame)
        name = signal.Signals(signum).name
        print(f"\ncrl sweep: {name}: stopping the running trainings (they checkpoint); "
              "rerun the same command to resume", file=sys.stderr)  # fmt: skip


def log_header(job: Job, command: Sequence[str]) -> str:
    """What a run's log says at each attempt: when, whether it starts or resumes, the command."""
    when = time.strftime("%Y-%m-%d %H:%M:%S")
    return f"\n=== crl sweep {when}: {job.state} {job.run.name}\n$ {' '.join(command)}\n"


def run_local(
    jobs: list[Job], train_command: Sequence[str], parallel: int, stop: SweepSignals
) -> dict[str, int | None]:
    """Run the jobs as processes, ``parallel`` at a time; exit status by name (None: not run)."""
    env = dict(os.environ)
    if parallel > 1:  # JAX would give the first process 75% of a GPU's memory
        env.setdefault("XLA_PYTHON_CLIENT_PREALLOCATE", "false")
    pending, running, codes = list(jobs), {}, {job.run.name: None for job in jobs}
    forwarded = 0
    while running or (pending and not stop.count):  # once stopped, nothing new starts
        while pending and len(running) < parallel and not stop.count:
            job = pending.pop(0)
            log = open(job.log, "a", encoding="utf-8")  # noqa: SIM115 - closed when it ends
            command = job.command(train_command)
            log.write(log_header(job, command))
            log.flush()
            try:
                proc = subprocess.Popen(
                    command, stdout=log, stderr=subprocess.STDOUT, env=env, start_new_session=True
                )
            except OSError as error:  # the command cannot start: this run fails, not the sweep
                log.write(f"crl sweep: cannot start the training: {error}\n")
                log.close()
                codes[job.run.name] = 127
                continue
            running[job.run.name] = (proc, log)
        if stop.count > forwarded and stop.signal is not None:
            for proc, _ in running.values():
                os.killpg(proc.pid, stop.signal)
            forwarded = stop.count
        for name, (proc, log) in list(running.items()):
            if proc.poll() is not None:
                log.close()
                codes[name] = proc.returncode
                del running[name]
        time.sleep(POLL_S)
    return codes


def run_sweep(
    spec: SweepSpec,
    sweep_dir: str,
    parallel: int = 1,
    ray_address: str | None = None,
    train_command: Sequence[str] | None = None,
    resources: dict[str, float] | None = None,
    out: TextIO = sys.stdout,
) -> tuple[list[Outcome], int | None]:
    """Run every unfinished run of ``spec`` under ``sweep_dir``.

    ``train_command`` starts a training (default ``TRAIN_COMMAND``: this Python's ``crl train``).

    Returns:
        The outcome of each run, and the signal that stopped the sweep (None if none did).
    """
    train_command = train_command or TRAIN_COMMAND
    if parallel < 1:
        raise ConfigError(f"--parallel must be at least 1, got {parallel}")
    jobs = [inspect(run, sweep_dir) for run in expand(spec)]
    os.makedirs(os.path.join(sweep_dir, LOG_DIR), exist_ok=True)
    write_record(sweep_dir, spec, [])
    todo = [job for job in jobs if job.state in ("new", "resume")]
    counts = {s: sum(j.state == s for j in jobs) for s in ("new", "resume", "finished", "conflict")}
    print(f"crl sweep: {len(jobs)} runs in {sweep_dir}: {counts['finished']} finished, "
          f"{counts['resume']} to resume, {counts['new']} to start, {counts['conflict']} "
          f"refused", file=out)  # fmt: skip
    with SweepSignals() as stop:
        if ray_address is not None:
            from contrastive_rl.experiments.ray_launch import run_ray

            codes = run_ray(todo, train_command, ray_address, resources or {}, stop, log_header)
        else:
            codes = run_local(todo, train_command, parallel, stop)
    outcomes = [outcome_of(job, codes.get(job.run.name)) for job in jobs]
    write_record(sweep_dir, spec, outcomes)
    return outcomes, stop.signal


def outcome_of(job: Job, code: int | None) -> Outcome:
    outcome = Outcome(job.run.name, "failed", job.path, job.log)
    if job.state == "conflict":
        outcome.error = job.detail
    elif job.state == "finished":
        outcome.status = "skipped"
    elif code is None:
        outcome.status = "not run"
    elif code == 0 and finished(job.path, job.run.config.steps):
        outcome.status = "finished"
    elif code in (128 + signal.SIGINT, 128 + signal.SIGTERM, -signal.SIGINT, -signal.SIGTERM):
        outcome.status = "stopped"
    else:
        outcome.error = error_of(job.log, code)
    if os.path.isdir(job.path) and outcome.status in ("finished", "skipped", "stopped"):
        outcome.final_success = final_success(job.path)
    return outcome


def write_record(sweep_dir: str, spec: SweepSpec, outcomes: list[Outcome]) -> None:
    record = {"spec": spec.to_dict(), "runs": [asdict(o) for o in outcomes]}
    files.atomic_write(os.path.join(sweep_dir, SWEEP_FILE), json.dumps(record, indent=1) + "\n")


def read_spec(sweep_dir: str) -> SweepSpec:
    """The spec a sweep directory was last run with (its ``sweep.json``)."""
    from contrastive_rl.experiments.spec import spec_from_dict

    file = os.path.join(sweep_dir, SWEEP_FILE)
    try:
        with open(file, encoding="utf-8") as f:
            return spec_from_dict(json.load(f)["spec"], source=file)
    except (OSError, ValueError, KeyError) as e:
        raise ConfigError(
            f"no sweep to rerun in {sweep_dir} ({file}: {e}); give a spec file or --env/--alg"
        ) from None


def summary(outcomes: list[Outcome]) -> str:
    """One line per run (status, final eval/success), then each failure's error and log."""
    lines = [f"{'run':48s} {'status':9s} final eval/success"]
    for o in outcomes:
        final = "" if o.final_success is None else f"{o.final_success:.3f}"
        lines.append(f"{o.name:48s} {o.status:9s} {final}")
    failed = [o for o in outcomes if o.status == "failed"]
    for o in failed:
        lines.append(f"FAILED {o.name}: {o.error}\n  log: {o.log}")
    counts = {}
    for o in outcomes:
        counts[o.status] = counts.get(o.status, 0) + 1
    lines.append("crl sweep: " + ", ".join(f"{n} {s}" for s, n in counts.items()))
    return "\n".join(lines)
