"""Host environments spread over worker processes, stepped in lockstep.

The policy runs once per step in the learner's process, batched over every environment; the
workers only step their simulators. A worker that raises, dies or stops answering becomes a
``WorkerError`` naming the environment, the worker and the cause, and every worker is stopped,
so a run never hangs on a broken simulator.

``num_workers=0`` steps the environments in this process (tests, debugging, one-env runs).
"""

from __future__ import annotations

import multiprocessing as mp
import signal
import traceback
from dataclasses import dataclass
from typing import Any

import numpy as np

from contrastive_rl.envs.spec import EnvSpec
from contrastive_rl.errors import WorkerError


@dataclass(frozen=True)
class StepResult:
    states: np.ndarray  # [N, state_dim]
    success: np.ndarray  # [N] bool
    distance: np.ndarray  # [N] float32, the task's distance to the goal


def _load_factory(factory: str):
    import importlib

    module_name, name = factory.split(":")
    return getattr(importlib.import_module(module_name), name)


class _LocalEnvs:
    """The environments of one worker; also used in-process."""

    def __init__(self, factory: str, env_name: str, count: int):
        make = _load_factory(factory)
        self.envs = [make(env_name) for _ in range(count)]

    def spec(self) -> EnvSpec:
        return self.envs[0].spec

    def reset(self, seeds: list[int]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        pairs = [env.reset(int(s)) for env, s in zip(self.envs, seeds, strict=True)]
        states, goals = zip(*pairs, strict=True)
        distance = [env.goal_distance() for env in self.envs]
        return np.stack(states), np.stack(goals), np.asarray(distance, np.float32)

    def step(self, actions: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        states = [env.step(a) for env, a in zip(self.envs, actions, strict=True)]
        success = [env.success() for env in self.envs]
        distance = [env.goal_distance() for env in self.envs]
        return np.stack(states), np.asarray(success, bool), np.asarray(distance, np.float32)

    def close(self) -> None:
        for env in self.envs:
            env.close()


def _worker_main(conn: Any, factory: str, env_name: str, count: int) -> None:
    """Serve ('reset', seeds), ('step', actions) and ('close', None) until told to stop.

    Ctrl-C in a terminal reaches the whole process group: the worker ignores it, so that the
    learner stops the run cleanly (with a checkpoint) and then closes its workers.
    """
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        envs = _LocalEnvs(factory, env_name, count)
        conn.send(("ok", envs.spec()))
    except BaseException:  # noqa: BLE001 - reported to the parent, which raises
        conn.send(("error", traceback.format_exc()))
        return
    while True:
        try:
            command, payload = conn.recv()
        except EOFError:  # the parent is gone
            break
        if command == "close":
            envs.close()
            conn.send(("ok", None))
            break
        try:
            result = envs.reset(payload) if command == "reset" else envs.step(payload)
            conn.send(("ok", result))
        except BaseException:  # noqa: BLE001
            conn.send(("error", traceback.format_exc()))
            break


# Starting a worker spawns Python, imports the simulator and builds its models: on a loaded
# machine that can take far longer than one step, so start gets at least this long.
START_TIMEOUT_S = 300.0


class EnvWorkers:
    """``num_envs`` copies of one host environment over ``num_workers`` processes."""

    def __init__(
        self,
        env_name: str,
        factory: str,
        num_envs: int,
        num_workers: int,
        timeout_s: float = 120.0,
    ):
        if num_envs < 1:
            raise ValueError(f"num_envs must be positive, got {num_envs}")
        self.env_name = env_name
        self.num_envs = num_envs
        self.timeout_s = timeout_s
        self.num_workers = min(num_workers, num_envs)
        self._local: _LocalEnvs | None = None
        self._procs: list[Any] = []
        self._conns: list[Any] = []
        if self.num_workers == 0:
            self._local = _LocalEnvs(factory, env_name, num_envs)
            self.spec = self._local.spec()
            self._slices = [slice(0, num_envs)]
            return
        bounds = np.linspace(0, num_envs, self.num_workers + 1).round().astype(int)
        self._slices = [slice(a, b) for a, b in zip(bounds[:-1], bounds[1:], strict=True)]
        ctx = mp.get_context("spawn")  # never fork a process that runs JAX
        for s in self._slices:
            parent, child = ctx.Pipe()
            proc = ctx.Process(
                target=_worker_main,
                args=(child, factory, env_name, s.stop - s.start),
                daemon=True,
            )
            proc.start()
            child.close()
            self._procs.append(proc)
            self._conns.append(parent)
        specs = self._gather("start", max(timeout_s, START_TIMEOUT_S))
        self.spec = specs[0]

    # -- plumbing -----------------------------------------------------------------------------
    def _fail(self, index: int, cause: str) -> WorkerError:
        self.close(graceful=False)
        return WorkerError(
            f"worker {index} of {self.num_workers} (environment {self.env_name!r}) {cause}"
        )

    def _gather(self, what: str, timeout_s: float | None = None) -> list[Any]:
        timeout_s = self.timeout_s if timeout_s is None else timeout_s
        results = []
        for i, (conn, proc) in enumerate(zip(self._conns, self._procs, strict=True)):
            try:
                if not conn.poll(timeout_s):
                    if proc.is_alive():
                        raise self._fail(i, f"did not answer {what} within {timeout_s:g} s (hung)")
                    raise self._fail(i, f"died during {what} (exit code {proc.exitcode})")
                status, payload = conn.recv()
            except (EOFError, ConnectionError, OSError):
                proc.join(timeout=1.0)
                raise self._fail(i, f"died during {what} (exit code {proc.exitcode})") from None
            if status == "error":
                summary = payload.strip().splitlines()[-1]
                raise self._fail(i, f"raised during {what}: {summary}\n{payload}")
            results.append(payload)
        return results

    def _scatter(self, command: str, payload: Any) -> None:
        for i, (conn, s) in enumerate(zip(self._conns, self._slices, strict=True)):
            try:
                conn.send((command, payload[s]))
            except (BrokenPipeError, ConnectionError, OSError):
                exitcode = self._procs[i].exitcode
                raise self._fail(i, f"died before {command} (exit code {exitcode})") from None

    # -- the vector environment ---------------------------------------------------------------
    def reset(self, seeds: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """A new episode in every env, env i drawn from ``seeds[i]``: (states, goals, dists)."""
        seeds = np.asarray(seeds)
        if self._local is not None:
            return self._local.reset(list(seeds))
        self._scatter("reset", seeds)
        parts = self._gather("reset")
        return tuple(np.concatenate(p) for p in zip(*parts, strict=True))

    def step(self, actions: np.ndarray) -> StepResult:
        actions = np.asarray(actions, np.float32)
        if self._local is not None:
            return StepResult(*self._local.step(actions))
        self._scatter("step", actions)
        parts = self._gather("step")
        return StepResult(*(np.concatenate(p) for p in zip(*parts, strict=True)))

    def close(self, graceful: bool = True) -> None:
        if self._local is not None:
            self._local.close()
            self._local = None
        for conn, proc in zip(self._conns, self._procs, strict=True):
            if graceful and proc.is_alive():
                try:
                    conn.send(("close", None))
                    if conn.poll(5.0):
                        conn.recv()
                except (EOFError, ConnectionError, OSError):
                    pass
            proc.join(timeout=5.0 if graceful else 0.1)
            if proc.is_alive():
                proc.kill()
                proc.join(timeout=5.0)
            conn.close()
        self._procs, self._conns = [], []

    def __enter__(self) -> EnvWorkers:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()
