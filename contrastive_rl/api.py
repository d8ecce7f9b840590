"""The library's front door: train a run, load its policy.

``crl train`` is a thin shell over :func:`train`; :func:`load_policy` gives a trained policy
as a plain callable, for evaluation scripts, videos or another library's environment loop.
"""

from __future__ import annotations

import os
import signal
import sys
from collections.abc import Mapping
from typing import Any

import numpy as np

from contrastive_rl.config import Config, ConfigError


def train(
    config: Config,
    run_dir: str | os.PathLike[str] | None = None,
    *,
    resume: bool = False,
    overwrite: bool = False,
    progress_bar: bool = False,
    steps: int | None = None,
) -> dict[str, Any]:
    """Train ``config`` in ``run_dir`` (default ``config.run_dir``, else runs/<env>-<alg>-s<seed>).

    Evaluates, logs, checkpoints as ``crl train`` does. ``resume=True`` continues the run in
    ``run_dir`` with its saved config (``config`` is then only used to find the directory);
    ``steps`` with it extends that run's budget (a constant ``lr_schedule`` only: nothing else
    depends on the budget, so the longer run is the one a longer budget would have given).

    Returns:
        ``{"run_dir": path, "status": "completed", "eval/success": ..., ...}``: the last
        evaluation. A run stopped by SIGINT or SIGTERM checkpoints and returns
        ``"status": "stopped"`` with ``"stopped_by": "SIGINT"`` (or ``"SIGTERM"``).

    Raises:
        ConfigError: a config that cannot run. RunDirError: a refused run directory (e.g. in use
        by another process). StorageError: the file system refused a write (the last checkpoint
        is intact). DivergedError: non-finite losses (the last good checkpoint is kept).
        WorkerError: a simulator worker crashed or hung (a checkpoint was saved first).
    """
    from contrastive_rl.runs import rundir
    from contrastive_rl.runs.config_files import extend_budget, load_config
    from contrastive_rl.training.runner import Run
    from contrastive_rl.training.trainer import Trainer

    path = os.fspath(run_dir) if run_dir else rundir.default_run_dir(config)
    if resume:
        config = load_config(path)
        if steps is not None:
            config = extend_budget(config, steps)
    elif steps is not None:
        raise ConfigError("steps= is for resume=True (extending a run); set config.steps instead")
    trainer = Trainer(config)  # refuses what cannot run (budget, sizes) before anything is written
    with rundir.storage_errors(path):
        try:
            prepared = rundir.prepare(path, config, resume=resume, overwrite=overwrite)
        except BaseException:
            trainer.close()
            raise
        with prepared:  # holds the run directory's lock until the run ends
            print(f"run directory: {path}", file=sys.stderr)
            run = Run(prepared.config, path, prepared.resume, progress_bar, trainer=trainer)
            result = run.run()
    if run.stop_signal:
        stopped = {"status": "stopped", "stopped_by": signal.Signals(run.stop_signal).name}
        return {"run_dir": path, **stopped, **result}
    return {"run_dir": path, "status": "completed", **result}


class Policy:
    """A trained actor as a callable: ``policy(observation) -> action`` (NumPy in, NumPy out).

    ``observation`` is the original's flat ``[state ; goal]`` (``obs_dim``), or the Gymnasium
    view's dict (``observation``, ``desired_goal``); one observation or a batch. Actions are in
    [-1, 1]. ``deterministic`` uses ``tanh(mean)`` (what evaluation uses), else a sample drawn
    from ``seed``'s stream.
    """

    def __init__(self, config: Config, spec: Any, actor_params: Any, env_steps: int, seed: int):
        import jax

        from contrastive_rl.agent.networks import make_networks, mode, sample_action

        self.config, self.spec, self.env_steps = config, spec, env_steps
        nets = make_networks(spec, config)
        self._key = jax.random.key(seed)

        def act(params, state, goal, key, deterministic):
            loc, scale = nets.policy(params, state, goal)
            return mode(loc) if deterministic else sample_action(loc, scale, key)

        self._act = jax.jit(act, static_argnums=4)
        self._params = actor_params

    def __call__(self, observation: Any, deterministic: bool = True) -> np.ndarray:
        import jax

        state, goal = self._split(observation)
        single = state.ndim == 1
        if single:
            state, goal = state[None], goal[None]
        self._key, key = jax.random.split(self._key)
        action = np.asarray(self._act(self._params, state, goal, key, deterministic))
        return action[0] if single else action

    def _split(self, observation: Any) -> tuple[np.ndarray, np.ndarray]:
        spec = self.spec
        if isinstance(observation, Mapping):
            state = np.asarray(observation["observation"])
            goal = np.asarray(observation["desired_goal"])
        else:
            obs = np.asarray(observation)
            if obs.shape[-1] != spec.obs_dim:
                raise ValueError(
                    f"expected observations [state ; goal] of size {spec.obs_dim} for "
                    f"{spec.name!r}, got shape {obs.shape}"
                )
            state, goal = obs[..., : spec.state_dim], obs[..., spec.state_dim :]
        dtype = np.float32 if spec.obs_dtype == "float32" else spec.obs_dtype
        return state.astype(dtype), goal.astype(dtype)


def load_policy(run_dir: str | os.PathLike[str], seed: int = 0) -> Policy:
    """The policy of the latest checkpoint in ``run_dir``, without the training stack.

    No replay, optimiser or worker process is built; only the actor's parameters are read.

    Raises:
        FileNotFoundError: no config or checkpoint there. CheckpointError: a damaged one.
    """
    import jax

    from contrastive_rl.agent.networks import init_params, make_networks
    from contrastive_rl.envs import env_spec
    from contrastive_rl.runs import checkpoint
    from contrastive_rl.runs.config_files import load_config

    config = load_config(run_dir)
    spec = env_spec(config.env, config.backend)
    template, _ = init_params(make_networks(spec, config), jax.random.key(0))
    params, meta = checkpoint.load_subtree(run_dir, ("learner", "actor_params"), template)
    env_steps = int(meta.get("progress", {}).get("env_steps", meta.get("step", 0)))
    return Policy(config, spec, params, env_steps, seed)
