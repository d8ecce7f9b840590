"""What a Sawyer pick or push policy does, stage by stage: reach the object, close the gripper
on it, lift it, move it, reach the goal. `eval/success` alone cannot tell a policy that never
touches the block from one that grasps it and has not yet learned to carry it.

Usage: python scripts/sawyer_episodes.py RUN_DIR [EPISODES] [FIRST_SEED]

RUN_DIR is a `sawyer_bin` or `sawyer_push` run; its latest checkpoint's deterministic policy
acts in fresh episodes (reset seeds FIRST_SEED, FIRST_SEED + 1, ...; default 20000, away from
the seeds training and evaluation use).
"""

from __future__ import annotations

import sys

import numpy as np

from contrastive_rl.api import load_policy
from contrastive_rl.envs.sawyer import SawyerEnv, make_sawyer

NEAR = 0.05  # m: the gripper counts as at the object, the object as moved or at the goal
CLOSED = 0.5  # gripper_open below this: closed (1 = fully open)
LIFTED = 0.02  # m above its start


def episode(env: SawyerEnv, policy, seed: int) -> dict[str, float]:
    state, goal = env.reset(seed)
    obj = env.mw.data.body("obj").xpos
    start = obj.copy()
    gap, grasped, lift, moved, success = np.inf, 0, 0.0, 0.0, False
    for _ in range(env.spec.episode_length):
        state = env.step(policy(np.concatenate([state, goal])))
        d = float(np.linalg.norm(env.tcp() - obj))
        gap = min(gap, d)
        grasped += int(d < NEAR and env.gripper_open() < CLOSED)
        lift = max(lift, float(obj[2] - start[2]))
        moved = max(moved, float(np.linalg.norm(obj - start)))
        success |= env.goal_distance() < env.spec.success_threshold
    return {"gap": gap, "grasped": grasped, "lift": lift, "moved": moved, "success": success}


def main() -> None:
    run = sys.argv[1]
    episodes = int(sys.argv[2]) if len(sys.argv) > 2 else 100
    first = int(sys.argv[3]) if len(sys.argv) > 3 else 20_000
    policy = load_policy(run)
    env = make_sawyer(policy.config.env)
    rows = [episode(env, policy, first + i) for i in range(episodes)]
    col = {k: np.array([r[k] for r in rows], np.float64) for k in rows[0]}
    print(f"{run}: checkpoint at {policy.env_steps:,} env steps, {episodes} episodes")
    lines = {
        "success (goal reached at any step)": col["success"].mean(),
        f"gripper within {NEAR} m of the object": (col["gap"] < NEAR).mean(),
        "gripper closed on it at some step": (col["grasped"] > 0).mean(),
        f"object lifted more than {LIFTED} m": (col["lift"] > LIFTED).mean(),
        f"object moved more than {NEAR} m": (col["moved"] > NEAR).mean(),
    }
    for label, value in lines.items():
        print(f"  {label:40s} {value:.3f}")
    env.close()


if __name__ == "__main__":
    main()
