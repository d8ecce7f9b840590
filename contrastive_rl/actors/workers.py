"""Host environments spread over workers: local processes here, Ray actors in ``ray_actors``.

A worker holds some of the run's environments (an ``EnvGroup``) and, once asked to act, its own
copy of the policy network. The learner sends it the actor parameters once per unroll; the worker
steps its environments ``num_steps`` times with that policy and keeps them mid-episode until the
next unroll, so no per-step round trip crosses a process boundary. Every env's actions are drawn
from keys of the run, the unroll and the env's index, so a run's episodes do not depend on how
the environments are spread over workers or machines.

A worker that raises, dies or stops answering becomes a ``WorkerError`` naming the environment,
the worker and the cause, and every worker is stopped, so a run never hangs on a broken simulator.

``num_workers=0`` steps the environments in this process (tests, debugging, one-env runs).
"""

from __future__ import annotations

import multiprocessing as mp
import os
import signal
import traceback
from dataclasses import dataclass, replace
from typing import Any

import numpy as np

from contrastive_rl.envs.spec import EnvSpec
from contrastive_rl.errors import WorkerError

HOWS = ("sample", "mode", "random")  # how an unroll acts: training, evaluation, warm-up


@dataclass(frozen=True)
class StepResult:
    states: np.ndarray  # [N, state_dim]
    success: np.ndarray  # [N] bool
    distance: np.ndarray  # [N] float32, the task's distance to the goal


@dataclass(frozen=True)
class UnrollRequest:
    """What a worker needs for one unroll; the parameters travel once per unroll."""

    params: Any  # actor parameters (NumPy arrays), None for 'random'
    key_data: np.ndarray  # uint32 data of the unroll's PRNG key (jax.random.key_data)
    seeds: np.ndarray | None  # reset seeds of every env first, or None to continue the episodes
    num_steps: int
    how: str  # one of HOWS

    def part(self, envs: slice) -> UnrollRequest:
        """The request of the worker that holds ``envs``."""
        return self if self.seeds is None else replace(self, seeds=self.seeds[envs])


@dataclass(frozen=True)
class Unroll:
    """``num_steps`` steps of some environments, env first."""

    states: np.ndarray  # [n, U + 1, S]: the state before each step, then after the last
    actions: np.ndarray  # [n, U, A]
    success: np.ndarray  # [n, U] bool, after each step
    distance: np.ndarray  # [n, U] float32, after each step
    initial: np.ndarray  # [n] distance at the reset; NaN where the unroll continued an episode

    @staticmethod
    def concatenate(parts: list[Unroll]) -> Unroll:
        if len(parts) == 1:
            return parts[0]
        fields = ("states", "actions", "success", "distance", "initial")
        return Unroll(*(np.concatenate([getattr(p, f) for p in parts]) for f in fields))


def _load_factory(factory: str):
    import importlib

    module_name, name = factory.split(":")
    return getattr(importlib.import_module(module_name), name)


class EnvGroup:
    """The environments of one worker and its copy of the policy: the code that runs in a worker
    process, in a Ray actor, or in this process.

    ``first_index`` is the index of the first env in the run; ``config`` (the run's ``Config``)
    builds the policy network on the first unroll that needs it (None: random actions only).
    """

    def __init__(
        self,
        factory: str,
        env_name: str,
        count: int,
        first_index: int = 0,
        config: Any = None,
    ):
        make = _load_factory(factory)
        self.envs = [make(env_name) for _ in range(count)]
        self.indices = np.arange(first_index, first_index + count, dtype=np.int32)
        self.config = config
        self._policy: Any = None
        self._states: np.ndarray | None = None  # where each env is now
        self._goals: np.ndarray | None = None  # the goal of each env's current episode

    def spec(self) -> EnvSpec:
        return self.envs[0].spec

    def reset(self, seeds: Any) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        pairs = [env.reset(int(s)) for env, s in zip(self.envs, seeds, strict=True)]
        states, goals = (np.stack(x) for x in zip(*pairs, strict=True))
        distance = [env.goal_distance() for env in self.envs]
        self._states, self._goals = states, goals
        return states, goals, np.asarray(distance, np.float32)

    def step(self, actions: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        states = np.stack([env.step(a) for env, a in zip(self.envs, actions, strict=True)])
        success = [env.success() for env in self.envs]
        distance = [env.goal_distance() for env in self.envs]
        self._states = states
        return states, np.asarray(success, bool), np.asarray(distance, np.float32)

    def unroll(self, request: UnrollRequest) -> Unroll:
        """``request.num_steps`` steps of every env with the policy, from a reset with
        ``request.seeds`` or from where the envs are."""
        if request.how not in HOWS:
            raise ValueError(f"unknown action mode {request.how!r}; valid: {', '.join(HOWS)}")
        n, u, spec = len(self.envs), request.num_steps, self.spec()
        initial = np.full((n,), np.nan, np.float32)
        if request.seeds is not None:
            _, _, initial = self.reset(request.seeds)
        elif self._states is None:
            raise RuntimeError("an unroll that continues episodes came before any reset")
        act = self._actor()
        states = np.empty((n, u + 1, self._states.shape[-1]), self._states.dtype)
        actions = np.empty((n, u, spec.action_dim), np.float32)
        success = np.empty((n, u), bool)
        distance = np.empty((n, u), np.float32)
        for s in range(u):
            states[:, s] = self._states
            actions[:, s] = act(
                request.params,
                self._states,
                self._goals,
                request.key_data,
                self.indices,
                s,
                request.how,
            )
            _, success[:, s], distance[:, s] = self.step(actions[:, s])
        states[:, u] = self._states
        return Unroll(states, actions, success, distance, initial)

    def resimulate(self, seeds: Any, actions: np.ndarray) -> np.ndarray:
        """Reset with ``seeds`` and replay ``actions [n, t, A]``: the states ``[n, t + 1, S]``.

        How a resumed run puts its simulators back mid-episode: a deterministic simulator lands
        exactly where the interrupted one was.
        """
        states, _, _ = self.reset(seeds)
        visited = [states]
        for t in range(actions.shape[1]):
            visited.append(self.step(actions[:, t])[0])
        return np.stack(visited, axis=1)

    def _actor(self):
        if self._policy is None:
            from contrastive_rl.actors.policy import ActorPolicy  # JAX: only once asked to act

            self._policy = ActorPolicy(self.spec(), self.config)
        return self._policy

    def close(self) -> None:
        for env in self.envs:
            env.close()


def _worker_main(
    conn: Any, factory: str, env_name: str, count: int, first_index: int, config: Any
) -> None:
    """Serve ``(method, args)`` of an ``EnvGroup`` and ``('close', None)`` until told to stop.

    Ctrl-C in a terminal reaches the whole process group: the worker ignores it, so that the
    learner stops the run cleanly (with a checkpoint) and then closes its workers.
    """
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    # Before anything imports JAX: a worker's policy runs on the CPU and never takes an
    # accelerator the learner needs.
    os.environ["JAX_PLATFORMS"] = "cpu"
    try:
        group = EnvGroup(factory, env_name, count, first_index, config)
        conn.send(("ok", group.spec()))
    except BaseException:  # noqa: BLE001 - reported to the parent, which raises
        conn.send(("error", traceback.format_exc()))
        return
    while True:
        try:
            command, args = conn.recv()
        except EOFError:  # the parent is gone
            break
        if command == "close":
            group.close()
            conn.send(("ok", None))
            break
        try:
            conn.send(("ok", getattr(group, command)(*args)))
        except BaseException:  # noqa: BLE001
            conn.send(("error", traceback.format_exc()))
            break


# Starting a worker spawns Python, imports the simulator and builds its models: on a loaded
# machine that can take far longer than one step, so start gets at least this long.
START_TIMEOUT_S = 300.0


def env_slices(num_envs: int, num_workers: int) -> list[slice]:
    """The envs of each worker: contiguous, sizes differing by at most one."""
    bounds = np.linspace(0, num_envs, num_workers + 1).round().astype(int)
    return [slice(int(a), int(b)) for a, b in zip(bounds[:-1], bounds[1:], strict=True)]


class LockstepEnvs:
    """What local workers and Ray actors share: the envs split into contiguous slices, one per
    worker, moved in lockstep by ``_call`` (one command to every worker, answers in order)."""

    _slices: list[slice]
    timeout_s: float

    def _call(self, command: str, args: list[tuple], timeout_s: float | None = None) -> list[Any]:
        raise NotImplementedError

    def close(self, graceful: bool = True) -> None:
        raise NotImplementedError

    def reset(self, seeds: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """A new episode in every env, env i drawn from ``seeds[i]``: (states, goals, dists)."""
        seeds = np.asarray(seeds)
        parts = self._call("reset", [(seeds[s],) for s in self._slices])
        return tuple(np.concatenate(p) for p in zip(*parts, strict=True))

    def step(self, actions: np.ndarray) -> StepResult:
        actions = np.asarray(actions, np.float32)
        parts = self._call("step", [(actions[s],) for s in self._slices])
        return StepResult(*(np.concatenate(p) for p in zip(*parts, strict=True)))

    def resimulate(self, seeds: np.ndarray, actions: np.ndarray) -> np.ndarray:
        """Reset with ``seeds`` and replay ``actions [N, t, A]``: states ``[N, t + 1, S]``."""
        seeds, actions = np.asarray(seeds), np.asarray(actions, np.float32)
        timeout_s = self.timeout_s * max(actions.shape[1], 1)
        parts = self._call("resimulate", [(seeds[s], actions[s]) for s in self._slices], timeout_s)
        return np.concatenate(parts)

    @property
    def unroll_pending(self) -> bool:
        return self._pending is not None

    def __enter__(self):
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()


class EnvWorkers(LockstepEnvs):
    """``num_envs`` copies of one host environment over ``num_workers`` local processes.

    ``step`` and ``reset`` move every env in lockstep from here; ``submit_unroll`` starts an
    unroll with the policy in every worker and returns at once, ``receive_unroll`` waits for it,
    so the learner can work in between.
    """

    def __init__(
        self,
        env_name: str,
        factory: str,
        num_envs: int,
        num_workers: int,
        timeout_s: float = 120.0,
        config: Any = None,
    ):
        if num_envs < 1:
            raise ValueError(f"num_envs must be positive, got {num_envs}")
        self.env_name = env_name
        self.num_envs = num_envs
        self.timeout_s = timeout_s
        self.num_workers = min(num_workers, num_envs)
        self._local: EnvGroup | None = None
        self._local_result: Unroll | None = None
        self._pending: tuple[str, float] | None = None  # (what, timeout) of a submitted command
        self._procs: list[Any] = []
        self._conns: list[Any] = []
        if self.num_workers == 0:
            self._local = EnvGroup(factory, env_name, num_envs, 0, config)
            self.spec = self._local.spec()
            self._slices = [slice(0, num_envs)]
            return
        self._slices = env_slices(num_envs, self.num_workers)
        ctx = mp.get_context("spawn")  # never fork a process that runs JAX
        for s in self._slices:
            parent, child = ctx.Pipe()
            proc = ctx.Process(
                target=_worker_main,
                args=(child, factory, env_name, s.stop - s.start, s.start, config),
                daemon=True,
            )
            proc.start()
            child.close()
            self._procs.append(proc)
            self._conns.append(parent)
        specs = self._gather("start", max(timeout_s, START_TIMEOUT_S))
        self.spec = specs[0]

    @property
    def pids(self) -> list[int]:
        """Process ids of the workers (e.g. to pin them to cores); empty in-process."""
        return [proc.pid for proc in self._procs]

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

    def _scatter(self, command: str, args: list[tuple]) -> None:
        for i, conn in enumerate(self._conns):
            try:
                conn.send((command, args[i]))
            except (BrokenPipeError, ConnectionError, OSError):
                exitcode = self._procs[i].exitcode
                raise self._fail(i, f"died before {command} (exit code {exitcode})") from None

    def _call(self, command: str, args: list[tuple], timeout_s: float | None = None) -> list[Any]:
        if self._local is not None:
            return [getattr(self._local, command)(*args[0])]
        self._scatter(command, args)
        return self._gather(command, timeout_s)

    # -- unrolls with the policy in the workers -------------------------------------------------
    def submit_unroll(self, request: UnrollRequest) -> None:
        """Start ``request`` in every worker and return at once; ``receive_unroll`` collects it."""
        if self._pending is not None:
            raise RuntimeError("an unroll is already under way; receive it first")
        timeout_s = self.timeout_s * max(request.num_steps, 1)
        if self._local is not None:
            self._local_result = self._local.unroll(request)
        else:
            self._scatter("unroll", [(request.part(s),) for s in self._slices])
        self._pending = ("unroll", timeout_s)

    def receive_unroll(self) -> Unroll:
        """Wait for the submitted unroll (at most ``timeout_s`` per step)."""
        if self._pending is None:
            raise RuntimeError("no unroll was submitted")
        what, timeout_s = self._pending
        self._pending = None
        if self._local is not None:
            result, self._local_result = self._local_result, None
            return result
        return Unroll.concatenate(self._gather(what, timeout_s))

    def close(self, graceful: bool = True) -> None:
        if self._local is not None:
            self._local.close()
            self._local = None
        for conn, proc in zip(self._conns, self._procs, strict=True):
            if graceful and proc.is_alive():
                try:
                    conn.send(("close", None))
                    # an unroll still under way answers first; then the close
                    for _ in range(2 if self._pending else 1):
                        if conn.poll(5.0):
                            conn.recv()
                except (EOFError, ConnectionError, OSError):
                    pass
            proc.join(timeout=5.0 if graceful else 0.1)
            if proc.is_alive():
                proc.kill()
                proc.join(timeout=5.0)
            conn.close()
        self._procs, self._conns, self._pending = [], [], None
