"""The Gymnasium view: every state environment passes Gymnasium's checker, truncates at the
original's episode length, and scores goals by the task's own success rule."""

import numpy as np
import pytest
from gymnasium.utils.env_checker import check_env

from contrastive_rl.envs import STATE_ENVS, make_gym
from contrastive_rl.envs.gym import register


@pytest.mark.parametrize("name", STATE_ENVS)
def test_gymnasium_checker_and_episode(name):
    env = make_gym(name)
    try:
        check_env(env, skip_render_check=True)
        obs, info = env.reset(seed=3)
        assert set(obs) == {"observation", "achieved_goal", "desired_goal"}
        again, _ = env.reset(seed=3)
        np.testing.assert_array_equal(obs["desired_goal"], again["desired_goal"])
        steps, truncated = 0, False
        while not truncated:
            obs, reward, terminated, truncated, info = env.step(env.action_space.sample())
            steps += 1
            assert not terminated
            assert reward == float(info["is_success"])
            # the goal-space rule agrees with the simulator's own success test
            recomputed = env.compute_reward(obs["achieved_goal"], obs["desired_goal"], info)
            assert recomputed == float(info["is_success"]), (steps, info)
            assert obs in env.observation_space
        assert steps == env.env_spec.episode_length
        # batched hindsight rewards: a goal reached by itself scores 1
        achieved = np.stack([obs["achieved_goal"]] * 4)
        assert env.compute_reward(achieved, achieved, None).tolist() == [1.0] * 4
    finally:
        env.close()


def test_compute_reward_uses_the_success_dimensions():
    env = make_gym("sawyer_drawer")  # success measures only the handle (goal dimension 3)
    try:
        spec = env.env_spec
        assert spec.success_dims == (3,)
        achieved = np.array([0.0, 0.0, 0.0, 0.50], np.float32)
        far_hand = np.array([1.0, 1.0, 1.0, 0.52], np.float32)  # hand far, handle 0.02 away
        assert env.compute_reward(achieved, far_hand, None) == 1.0
        assert env.compute_reward(achieved, far_hand + [0, 0, 0, 0.03], None) == 0.0
    finally:
        env.close()


def test_registered_ids():
    import gymnasium

    ids = register()
    assert "crl/point_FourRooms-v0" in ids
    env = gymnasium.make("crl/point_FourRooms-v0")
    obs, _ = env.reset(seed=0)
    assert obs["observation"].shape == (2,)
    env.close()
