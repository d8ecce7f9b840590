"""The schedule of a run: env steps and gradient steps per iteration, and the calls that run them.

``Budget`` turns a config into whole iterations (exact, rounded up, never fewer steps than
asked); ``update_calls`` splits an iteration's K updates into calls short enough that a stop
request waits seconds, not a whole iteration. Plain Python: no JAX.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from contrastive_rl.config import Config, ConfigError


def unroll_steps(unroll_length: int, episode_length: int) -> int:
    """Env steps per env per iteration; 0 means one whole episode. Must divide the episode."""
    unroll = unroll_length or episode_length
    if episode_length % unroll:
        divisors = [d for d in range(1, episode_length + 1) if episode_length % d == 0]
        raise ConfigError(
            f"unroll_length ({unroll}) must divide the episode length ({episode_length}) "
            f"so that episodes end between iterations; valid: 0 (whole episodes) or one "
            f"of {divisors}"
        )
    return unroll


@dataclass(frozen=True)
class Budget:
    """The run's exact schedule, in whole iterations of ``steps_per_iteration`` env steps;
    ``notes`` say where a number was rounded or where learning starts later than asked."""

    steps_per_iteration: int
    grad_steps_per_iteration: int
    random_iterations: int  # the first iterations act uniformly at random (use_random_actor)
    warmup_iterations: int  # iterations without updates: the random ones, then until whole episodes
    train_iterations: int
    notes: tuple[str, ...] = field(default=())
    # What the budget counts, a field of ``runner.Progress``: env_steps, or grad_steps (offline).
    counter: str = "env_steps"

    @property
    def unit(self) -> str:
        return "env steps" if self.counter == "env_steps" else "gradient steps"

    @property
    def total(self) -> int:
        """The budget in its own unit (``counter``)."""
        return self.total_env_steps if self.counter == "env_steps" else self.total_grad_steps

    @property
    def warmup_steps(self) -> int:
        return self.warmup_iterations * self.steps_per_iteration

    @property
    def total_env_steps(self) -> int:
        return (self.warmup_iterations + self.train_iterations) * self.steps_per_iteration

    @property
    def total_grad_steps(self) -> int:
        return self.train_iterations * self.grad_steps_per_iteration

    @staticmethod
    def make(config: Config, episode_length: int) -> Budget:
        unroll = unroll_steps(config.unroll_length, episode_length)
        notes = []
        per_iteration = config.num_envs * unroll
        exact_k = per_iteration * config.utd
        k = max(1, round(exact_k))
        if not math.isclose(k, exact_k):
            notes.append(
                f"utd {config.utd} gives {exact_k:g} gradient steps per iteration of "
                f"{per_iteration} env steps; using {k} (utd {k / per_iteration:g})"
            )
        random_iterations = math.ceil(config.min_replay_size / per_iteration)
        # The replay takes whole episodes: the first ones end after episode_length // unroll
        # iterations, and the iteration that ends them can already learn from them.
        first_whole = episode_length // unroll - 1
        warmup_iterations = max(random_iterations, first_whole)
        if warmup_iterations > random_iterations:
            notes.append(
                f"the first updates come at {(warmup_iterations + 1) * per_iteration} env "
                f"steps, when the first {config.num_envs} episodes of {episode_length} steps "
                f"are whole (the replay takes whole episodes; random actions for the first "
                f"{random_iterations * per_iteration}, min_replay_size "
                f"{config.min_replay_size}); fewer num_envs start learning sooner"
            )
        remaining = config.steps - warmup_iterations * per_iteration
        if remaining <= 0:
            raise ConfigError(
                f"steps ({config.steps}) leaves no training after the "
                f"{warmup_iterations * per_iteration} env steps before the first update "
                f"(min_replay_size {config.min_replay_size}, and the first whole episodes of "
                f"{config.num_envs} envs x {episode_length} steps); raise steps, or lower "
                f"min_replay_size or num_envs"
            )
        train_iterations = math.ceil(remaining / per_iteration)
        total = (warmup_iterations + train_iterations) * per_iteration
        if total != config.steps:
            notes.append(
                f"steps {config.steps} rounded up to {total} "
                f"(whole iterations of {per_iteration} env steps)"
            )
        return Budget(
            per_iteration, k, random_iterations, warmup_iterations, train_iterations, tuple(notes)
        )

    @staticmethod
    def offline(config: Config) -> Budget:
        """``config.steps`` gradient steps, in iterations of K = ``offline_steps_per_iteration``."""
        k = offline_steps_per_iteration(config.eval_every)
        iterations = math.ceil(config.steps / k)
        notes = []
        if iterations * k != config.steps:
            notes.append(
                f"steps {config.steps} rounded up to {iterations * k} gradient steps "
                f"(whole iterations of {k})"
            )
        return Budget(0, k, 0, 0, iterations, tuple(notes), counter="grad_steps")


# The most gradient steps an offline iteration scans: the original's 64 per learner step; the
# host loop checks for evaluations, checkpoints and Ctrl-C between iterations.
MAX_OFFLINE_STEPS_PER_ITERATION = 64


def offline_steps_per_iteration(eval_every: int) -> int:
    """K for offline runs: the largest divisor of ``eval_every`` up to 64 (so evaluations fall
    on their exact steps), or 64 when that divisor is below 8."""
    best = max(d for d in range(1, MAX_OFFLINE_STEPS_PER_ITERATION + 1) if eval_every % d == 0)
    return best if best >= 8 else MAX_OFFLINE_STEPS_PER_ITERATION


# How the K updates of an online iteration are run: the host loop checks for a stop request
# (SIGINT, SIGTERM) between calls to the device, so a stop waits for one call, not a whole
# iteration. State networks: K up to ONE_CALL_UPDATES in the one jitted iteration, as always;
# a longer K in scans of at most MAX_SCAN_UPDATES (seconds on a CPU), the same updates as one
# scan of K, bit for bit. Image networks: IMAGE_UPDATES_PER_CALL updates per call, written out
# one after another, never in a loop: XLA's CPU backend runs a convolution inside a loop (a
# scan) about 25x slower than outside one (docs/benchmarks.md, "Image updates on a CPU").
ONE_CALL_UPDATES = 256
MAX_SCAN_UPDATES = 64
IMAGE_UPDATES_PER_CALL = 4


def update_calls(k: int, most: int) -> tuple[int, ...]:
    """K updates as calls of at most ``most`` updates: equal calls where a divisor of K of at
    least ``most / 2`` allows it, else calls of ``most`` and one of the remainder (each distinct
    size compiles once)."""
    if k <= most:
        return (k,)
    divisor = max(d for d in range(1, most + 1) if k % d == 0)
    if 2 * divisor >= most:
        return (divisor,) * (k // divisor)
    return (most,) * (k // most) + ((k % most,) if k % most else ())
