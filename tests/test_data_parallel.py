"""Data-parallel updates over several devices give the single-device result (global negatives).

Runs in a subprocess with two virtual CPU devices (XLA must see the flag before JAX starts).
"""

import os
import subprocess
import sys
import textwrap

SCRIPT = textwrap.dedent(
    """
    import jax, numpy as np
    from contrastive_rl.config import make_config
    from contrastive_rl.training.trainer import Trainer

    assert jax.local_device_count() == 2
    params, texts = [], []
    for devices in (1, 2):
        config = make_config(
            env="point_Small", preset="debug", num_envs=4, batch_size=16, min_replay_size=200,
            hidden_layer_sizes=(16, 16), repr_dim=8, devices=devices,
        )
        trainer = Trainer(config)
        state = trainer.warmup(trainer.init(), 0)
        texts.append(trainer._iteration_jit.lower(state, None).compile().as_text())
        for _ in range(2):
            state, _ = trainer.iteration(state)
        params.append(jax.tree.leaves(jax.device_get(state.learner)))
    gap = max(float(np.abs(np.asarray(a, float) - np.asarray(b, float)).max())
              for a, b in zip(*params) if np.issubdtype(np.asarray(a).dtype, np.floating))
    print("GAP", gap)
    print("COLLECTIVES", "all-reduce" in texts[1], "all-reduce" in texts[0])
    """
)


def test_two_devices_split_the_batch_and_match_one_device():
    env = {**os.environ, "XLA_FLAGS": "--xla_force_host_platform_device_count=2"}
    result = subprocess.run(
        [sys.executable, "-c", SCRIPT], env=env, capture_output=True, text=True, timeout=600
    )
    assert result.returncode == 0, result.stderr[-3000:]
    lines = dict(line.split(" ", 1) for line in result.stdout.splitlines() if " " in line)
    assert float(lines["GAP"]) < 1e-4  # 400 updates: only the order of sums differs
    assert lines["COLLECTIVES"] == "True False"  # the 2-device program reduces across devices
