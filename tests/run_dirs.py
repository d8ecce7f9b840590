"""Run directories with known metrics, written as `crl train` writes them (plot/report tests)."""

import json
import os

from contrastive_rl.config import make_config


def write_run(root, env, alg, seed, points, **fields):
    """A run directory: config.json as `crl train` writes it, metrics.jsonl with ``points``
    [(env_steps, success)] (plus a wall time of 2 s per 1000 steps)."""
    path = os.path.join(root, f"{env}-{alg}-seed{seed}")
    os.makedirs(path)
    config = make_config(env, alg, seed=seed, run_dir=path, **fields)
    with open(os.path.join(path, "config.json"), "w") as f:
        json.dump(config.to_dict(), f)
    with open(os.path.join(path, "metrics.jsonl"), "w") as f:
        for steps, success in points:
            record = {"env_steps": steps, "wall_time": steps / 500, "eval/success": success}
            f.write(json.dumps({**record, "train/critic_loss": 1.0}) + "\n")
    return path
