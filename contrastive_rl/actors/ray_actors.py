"""Ray actors: the workers of CPU simulators anywhere in a Ray cluster (``--actors ray``).

Each actor is an ``EnvGroup``, the same code a local worker process runs, behind the same
hand-over as ``EnvWorkers`` (``submit_unroll``/``receive_unroll``, ``resimulate``, lockstep
``reset``/``step``). The actor parameters go out once per unroll through the object store
(``ray.put``, passed as a top-level argument so that every actor reads the same copy). Actors
run their JAX on the CPU (``JAX_PLATFORMS=cpu`` in their runtime environment).

An actor that dies (its process or node lost), raises, or stops answering becomes a
``WorkerError`` naming the actor, its node and the cause; every actor is then stopped. This module,
and Ray with it, is imported only when a run asks for Ray actors.
"""

from __future__ import annotations

import os
import time
from dataclasses import replace
from typing import Any

import ray

from contrastive_rl.actors.workers import (
    START_TIMEOUT_S,
    EnvGroup,
    LockstepEnvs,
    Unroll,
    UnrollRequest,
    env_slices,
)
from contrastive_rl.errors import WorkerError


class RayEnvGroup(EnvGroup):
    """An ``EnvGroup`` that also says where it runs."""

    def hello(self) -> tuple[Any, str]:
        """``(spec, id of the node it runs on)``."""
        return self.spec(), ray.get_runtime_context().get_node_id()

    def unroll_with(self, params: Any, request: UnrollRequest) -> Unroll:
        """``unroll`` with the parameters given apart (a top-level argument: an object ref)."""
        return self.unroll(replace(request, params=params))


def connect(address: str = "") -> None:
    """Join the Ray cluster at ``address`` (or ``RAY_ADDRESS``), else start Ray on this machine;
    nothing to do when this process is already connected."""
    if ray.is_initialized():
        return
    where = address or os.environ.get("RAY_ADDRESS", "")
    try:
        if where:
            ray.init(address=where)
        else:
            ray.init(include_dashboard=False)
    except (ConnectionError, RuntimeError, ValueError) as error:
        place = f"the Ray cluster at {where!r}" if where else "a Ray instance on this machine"
        raise WorkerError(
            f"cannot start Ray actors: joining {place} failed ({error}); start a cluster with "
            f"`ray start --head` and pass its address (--ray_address HOST:PORT or RAY_ADDRESS), "
            f"or leave both empty to start Ray here"
        ) from error


class RayWorkers(LockstepEnvs):
    """``num_envs`` copies of one host environment over ``num_workers`` Ray actors.

    ``num_workers=0`` starts one actor per CPU of the cluster. Each actor reserves
    ``cpus_per_actor`` CPUs (1 for the training actors; 0 for the evaluator's, which step only
    between iterations), so the scheduler spreads them over the cluster's machines.
    """

    def __init__(
        self,
        env_name: str,
        factory: str,
        num_envs: int,
        num_workers: int,
        timeout_s: float = 120.0,
        config: Any = None,
        address: str = "",
        cpus_per_actor: float = 1.0,
    ):
        if num_envs < 1:
            raise ValueError(f"num_envs must be positive, got {num_envs}")
        connect(address)
        if num_workers == 0:
            num_workers = max(1, int(ray.cluster_resources().get("CPU", 1)))
        self.env_name = env_name
        self.num_envs = num_envs
        self.timeout_s = timeout_s
        self.num_workers = min(num_workers, num_envs)
        self._slices = env_slices(num_envs, self.num_workers)
        self._nodes = ["unknown"] * self.num_workers
        self._pending: tuple[str, list[Any], float] | None = None
        remote = ray.remote(RayEnvGroup).options(
            num_cpus=cpus_per_actor,
            max_restarts=0,
            runtime_env={"env_vars": {"JAX_PLATFORMS": "cpu"}},
        )
        self._actors = [
            remote.remote(factory, env_name, s.stop - s.start, s.start, config)
            for s in self._slices
        ]
        hellos = self._get([a.hello.remote() for a in self._actors], "start", START_TIMEOUT_S)
        self.spec = hellos[0][0]
        addresses = {n["NodeID"]: n.get("NodeManagerAddress", "?") for n in ray.nodes()}
        self._nodes = [f"{addresses.get(i, '?')} (id {i[:12]})" for _, i in hellos]

    @property
    def nodes(self) -> list[str]:
        """Where each actor runs: its node's IP address and id."""
        return list(self._nodes)

    # -- plumbing -----------------------------------------------------------------------------
    def _fail(self, index: int, cause: str) -> WorkerError:
        node = self._nodes[index]
        self.close(graceful=False)
        return WorkerError(
            f"Ray actor {index} of {self.num_workers} (environment {self.env_name!r}) on node "
            f"{node} {cause}"
        )

    def _get(self, refs: list[Any], what: str, timeout_s: float | None = None) -> list[Any]:
        """The actors' answers, in order; a failure of any becomes a ``WorkerError``."""
        timeout_s = self.timeout_s if timeout_s is None else timeout_s
        deadline = time.monotonic() + timeout_s
        results = []
        for i, ref in enumerate(refs):
            try:
                results.append(ray.get(ref, timeout=max(deadline - time.monotonic(), 0.0)))
            except ray.exceptions.GetTimeoutError:
                cause = f"did not answer {what} within {timeout_s:g} s (hung)"
                raise self._fail(i, cause) from None
            except ray.exceptions.RayTaskError as error:  # the environment raised
                cause = getattr(error, "cause", None)
                summary = f"{type(cause).__name__}: {cause}" if cause else str(error)[:200]
                raise self._fail(i, f"raised during {what}: {summary}\n{error}") from None
            except ray.exceptions.RayActorError as error:  # its process or its node is gone
                first = str(error).strip().splitlines()[0] if str(error).strip() else ""
                raise self._fail(i, f"died during {what} ({first})\n{error}") from None
        return results

    def _call(self, method: str, args: list[tuple], timeout_s: float | None = None) -> list[Any]:
        refs = [getattr(a, method).remote(*args[i]) for i, a in enumerate(self._actors)]
        return self._get(refs, method, timeout_s)

    # -- unrolls -------------------------------------------------------------------------------
    def submit_unroll(self, request: UnrollRequest) -> None:
        """Start ``request`` on every actor; the parameters go once into the object store."""
        if self._pending is not None:
            raise RuntimeError("an unroll is already under way; receive it first")
        params = ray.put(request.params)
        bare = replace(request, params=None)
        refs = [
            actor.unroll_with.remote(params, bare.part(s))
            for actor, s in zip(self._actors, self._slices, strict=True)
        ]
        self._pending = ("unroll", refs, self.timeout_s * max(request.num_steps, 1))

    def receive_unroll(self) -> Unroll:
        if self._pending is None:
            raise RuntimeError("no unroll was submitted")
        what, refs, timeout_s = self._pending
        self._pending = None
        return Unroll.concatenate(self._get(refs, what, timeout_s))

    def close(self, graceful: bool = True) -> None:
        """Stop every actor (Ray itself stays up: the driver may hold other actors)."""
        actors, self._actors, self._pending = self._actors, [], None
        if graceful and actors:
            try:
                ray.get([a.close.remote() for a in actors], timeout=10.0)
            except Exception:  # noqa: BLE001 - a dead actor needs no closing
                pass
        for actor in actors:
            try:
                ray.kill(actor, no_restart=True)
            except Exception:  # noqa: BLE001
                pass
