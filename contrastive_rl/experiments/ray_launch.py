"""The runs of a sweep as Ray tasks (``crl sweep --ray ADDRESS``); Ray is imported only here.

Each task runs one ``crl train`` process on whichever node Ray picks, with ``cpus``/``gpus``
reserved for it. Every node must run the same Python and package versions, and the sweep
directory must be on a file system all nodes share (run directories and logs are written
there by the node that trains). Cancelling a task (Ctrl-C or SIGTERM to the sweep) sends
SIGTERM to its training, which checkpoints and stops, as on one machine.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections.abc import Callable, Sequence
from typing import Any

from contrastive_rl.config import ConfigError
from contrastive_rl.envs.registry import install_hint

POLL_S = 0.5
CANCELLED = -int(signal.SIGTERM)  # the exit status of a run whose task was cancelled


def import_ray() -> Any:
    try:
        import ray
    except ImportError:
        raise ConfigError(
            f"--ray needs the optional dependency ray; install it with: {install_hint('ray')}"
        ) from None
    return ray


def train_task(command: list[str], log_path: str, header: str, own_python: bool) -> int:
    """One training on a Ray worker; its exit status. Cancelled: SIGTERM to it, then wait.

    ``own_python``: the command runs this node's interpreter (its path may differ from the
    driver's).
    """
    if own_python:
        command = [sys.executable, *command[1:]]
    env = dict(os.environ)
    env.setdefault("XLA_PYTHON_CLIENT_PREALLOCATE", "false")  # tasks may share a GPU
    os.makedirs(os.path.dirname(log_path), exist_ok=True)
    with open(log_path, "a", encoding="utf-8") as log:
        log.write(header)
        log.flush()
        proc = subprocess.Popen(
            command, stdout=log, stderr=subprocess.STDOUT, env=env, start_new_session=True
        )
        try:
            return proc.wait()
        except KeyboardInterrupt:  # ray.cancel
            proc.send_signal(signal.SIGTERM)
            proc.wait()
            raise


def run_ray(
    jobs: Sequence[Any],
    train_command: Sequence[str],
    address: str,
    resources: dict[str, float],
    stop: Any,
    header: Callable[[Any, Sequence[str]], str],
) -> dict[str, int | None]:
    """Run the jobs as Ray tasks on the cluster at ``address`` (``local``: start one here);
    ``header(job, command)`` is what each run's log gets at each attempt (the sweep's).

    Returns the exit status of each run by name (``CANCELLED`` for a cancelled task).
    """
    ray = import_ray()
    started_here = not ray.is_initialized()
    if started_here:
        local = {"include_dashboard": False, "log_to_driver": False}
        try:
            ray.init(address=address, **(local if address == "local" else {}))
        except (ConnectionError, RuntimeError, ValueError) as error:
            raise ConfigError(
                f"cannot reach a Ray cluster at {address!r}: {str(error).splitlines()[0]}; start "
                "one (`ray start --head`), give its --ray HOST:PORT, or --ray local"
            ) from None
    task = ray.remote(train_task).options(
        num_cpus=resources.get("cpus", 1), num_gpus=resources.get("gpus", 0)
    )
    refs = {}
    for job in jobs:
        command = job.command(train_command)
        own_python = command[0] == sys.executable
        refs[task.remote(command, job.log, header(job, command), own_python)] = job
    codes: dict[str, int | None] = {job.run.name: None for job in jobs}
    cancelled = False
    try:
        while refs:
            ready, _ = ray.wait(list(refs), num_returns=1, timeout=POLL_S)
            for ref in ready:
                job = refs.pop(ref)
                try:
                    codes[job.run.name] = ray.get(ref)
                except ray.exceptions.TaskCancelledError:
                    codes[job.run.name] = CANCELLED
                except ray.exceptions.RayError as error:
                    codes[job.run.name] = 1
                    with open(job.log, "a", encoding="utf-8") as log:
                        log.write(f"\nray: the task failed: {str(error).splitlines()[0]}\n")
            if stop.count and not cancelled:
                for ref in refs:
                    ray.cancel(ref)
                cancelled = True
    finally:
        if started_here:
            ray.shutdown()
    return codes
