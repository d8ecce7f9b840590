"""The Meta-World Sawyer host tasks: layout, seeding, reset ranges, success rules, stepping."""

from __future__ import annotations

import mujoco
import numpy as np
import pytest

pytest.importorskip("metaworld")

from contrastive_rl.envs.sawyer import SAWYER_TASKS, make_sawyer  # noqa: E402

NAMES = list(SAWYER_TASKS)
STATE_DIMS = {"sawyer_push": 7, "sawyer_drawer": 4, "sawyer_window": 4, "sawyer_bin": 7}
THRESHOLDS = {"sawyer_push": 0.05, "sawyer_drawer": 0.04, "sawyer_window": 0.05, "sawyer_bin": 0.05}
N_RESETS = 20


@pytest.fixture(scope="module", params=NAMES)
def env(request):
    env = make_sawyer(request.param)
    yield env
    env.close()


@pytest.fixture(scope="module")
def envs():
    built = {name: make_sawyer(name) for name in NAMES}
    yield built
    for env in built.values():
        env.close()


def _place_block(env, pos) -> None:
    """Put the free body ``obj`` (puck or block) at ``pos``, at rest, and recompute positions."""
    model, data = env.mw.model, env.mw.data
    adr = model.jnt_qposadr[model.body("obj").jntadr[0]]
    data.qpos[adr : adr + 3] = pos
    data.qvel[:] = 0.0
    mujoco.mj_forward(model, data)


def _set_drawer(env, slide: float) -> None:
    env.mw.data.joint("goal_slidey").qpos = slide
    mujoco.mj_forward(env.mw.model, env.mw.data)


def test_spec(env):
    spec, dim = env.spec, STATE_DIMS[env.spec.name]
    assert (spec.state_dim, spec.action_dim, spec.episode_length) == (dim, 4, 150)
    assert (spec.goal_start, spec.goal_end, spec.goal_dim, spec.obs_dim) == (0, dim, dim, 2 * dim)
    assert spec.success_threshold == THRESHOLDS[spec.name]
    assert spec.obs_dtype == "float32"


def test_reset_layout(env):
    state, goal = env.reset(3)
    dim = env.spec.state_dim
    assert state.shape == (dim,) and goal.shape == (env.spec.goal_dim,)
    assert state.dtype == np.float32 and goal.dtype == np.float32
    mw = env.mw
    right, left = mw.data.site("rightEndEffector").xpos, mw.data.site("leftEndEffector").xpos
    tcp = (right + left) / 2
    opened = np.clip(np.linalg.norm(right - left) / 0.1, 0, 1)
    name = env.spec.name
    if name == "sawyer_push":
        np.testing.assert_allclose(state[:3], tcp, atol=1e-6)
        np.testing.assert_allclose(state[3:6], mw.data.body("obj").xpos, atol=1e-6)
        np.testing.assert_allclose(state[6], opened, atol=1e-6)
        np.testing.assert_allclose(goal[:3], mw._target_pos, atol=1e-6)
        np.testing.assert_array_equal(goal[3:6], goal[:3])
        assert goal[6] == 0.5
    elif name == "sawyer_bin":
        np.testing.assert_allclose(state[:3], mw.data.body("hand").xpos, atol=1e-6)
        np.testing.assert_allclose(state[3], opened, atol=1e-6)
        np.testing.assert_allclose(state[4:7], mw.data.body("obj").xpos, atol=1e-6)
        np.testing.assert_allclose(goal[4:7], mw.task_goal, atol=1e-6)
        np.testing.assert_allclose(goal[:3], goal[4:7] + [0, 0, 0.03], atol=1e-6)
        np.testing.assert_allclose(goal[3], 0.4)
    elif name == "sawyer_drawer":
        np.testing.assert_allclose(state[:3], tcp, atol=1e-6)
        handle = mw.data.body("drawer_link").xpos + [0, -0.16, 0]
        np.testing.assert_allclose(state[3], handle[1], atol=1e-6)
        np.testing.assert_allclose(goal[:3], mw._target_pos, atol=1e-6)
        assert goal[3] == goal[1]
    else:
        np.testing.assert_allclose(state[:3], tcp, atol=1e-6)
        np.testing.assert_allclose(state[3], mw.data.site("handleOpenStart").xpos[0], atol=1e-6)
        np.testing.assert_allclose(goal[:3], mw._target_pos, atol=1e-6)
        assert goal[3] == goal[0]
    assert not env.success()  # at this seed the start is not at the goal


def test_same_seed_same_episode_other_seed_differs(env):
    rng = np.random.default_rng(0)
    actions = rng.uniform(-1, 1, (5, 4))
    s1, g1 = env.reset(11)
    run1 = [env.step(a) for a in actions]
    s2, g2 = env.reset(11)  # after 5 steps of history: a full reseed
    run2 = [env.step(a) for a in actions]
    np.testing.assert_array_equal(s1, s2)
    np.testing.assert_array_equal(g1, g2)
    np.testing.assert_array_equal(np.stack(run1), np.stack(run2))
    s3, g3 = env.reset(12)
    assert not np.array_equal(g1, g3)
    if env.spec.name != "sawyer_drawer" and env.spec.name != "sawyer_window":
        assert not np.array_equal(s1, s3)  # the object start differs
    else:
        assert s1[3] != s3[3]  # the handle start differs


def test_push_reset_ranges(envs):
    env = envs["sawyer_push"]
    goal_ys = []
    for seed in range(N_RESETS):
        state, goal = env.reset(seed)
        goal_ys.append(goal[1])
        puck = state[3:6]
        assert -0.1 <= goal[0] <= 0.1 and 0.5 <= goal[1] <= 0.9
        assert -0.1 <= puck[0] <= 0.1 and 0.6 <= puck[1] <= 0.7
        assert np.linalg.norm(goal[:2] - puck[:2]) >= 0.15
        assert goal[2] == pytest.approx(puck[2], abs=1e-6)  # goal z = puck height
    assert min(goal_ys) < 0.75  # Meta-World's own goals have y >= 0.8


def test_drawer_reset_ranges(envs):
    env = envs["sawyer_drawer"]
    slides = []
    for seed in range(N_RESETS):
        state, goal = env.reset(seed)
        mw = env.mw
        slides += [mw.goal_slide, mw.start_slide]
        assert -0.15 <= mw.goal_slide <= 0.0 and -0.15 <= mw.start_slide <= 0.0
        assert mw.goal_slide != mw.start_slide
        np.testing.assert_array_equal(mw.model.body("drawer").pos, [0.0, 0.9, 0.0])
        assert goal[0] == pytest.approx(0.0, abs=1e-6)  # drawer x fixed to 0
        # The slide moves the handle 1:1 along y: goal and start differ by the slides' difference.
        assert goal[1] - state[3] == pytest.approx(mw.goal_slide - mw.start_slide, abs=1e-5)
        assert env.goal_distance() == pytest.approx(abs(mw.goal_slide - mw.start_slide), abs=1e-6)
    assert min(slides) < -0.12 and max(slides) > -0.03  # spread over the whole range


def test_window_reset_ranges_and_slide_moves_handle_one_to_one(envs):
    env = envs["sawyer_window"]
    slides = []
    for seed in range(N_RESETS):
        state, goal = env.reset(seed)
        mw = env.mw
        slides += [mw.goal_slide, mw.start_slide]
        assert 0.0 <= mw.goal_slide <= 0.2 and 0.0 <= mw.start_slide <= 0.2
        np.testing.assert_allclose(mw.model.body("window").pos[:2], [0.0, 0.8])
        assert goal[0] - state[3] == pytest.approx(mw.goal_slide - mw.start_slide, abs=1e-5)
        assert env.goal_distance() == pytest.approx(abs(mw.goal_slide - mw.start_slide), abs=1e-6)
    assert min(slides) < 0.03 and max(slides) > 0.17  # spread over the whole range
    handle = env.mw.data.site("handleOpenStart").xpos
    positions = []
    for slide in (0.0, 0.07, 0.2):
        env.mw.set_slide(slide)
        positions.append(handle.copy())
    positions = np.array(positions)
    np.testing.assert_allclose(positions[:, 0] - positions[0, 0], [0.0, 0.07, 0.2], atol=1e-9)
    np.testing.assert_allclose(positions[:, 1:], positions[:1, 1:].repeat(3, 0), atol=1e-9)


def test_bin_reset_ranges(envs):
    env = envs["sawyer_bin"]
    bin_xy = env.mw.data.body("bin_goal").xpos[:2].copy()
    heights = []
    for seed in range(N_RESETS):
        state, goal = env.reset(seed)
        start, g = env.mw.obj_init_pos, goal[4:7]
        heights.append(g[2])
        assert -0.21 <= start[0] <= -0.03 and 0.65 <= start[1] <= 0.75
        np.testing.assert_allclose(state[4:7], start, atol=1e-6)
        assert 0.03 <= g[2] <= 0.12
        # goal xy = t * (bin + noise) + (1 - t) * start: inside the box spanned by both
        low = np.minimum(start[:2], bin_xy - 0.05) - 1e-6
        high = np.maximum(start[:2], bin_xy + 0.05) + 1e-6
        assert np.all(low <= g[:2]) and np.all(g[:2] <= high)
    assert min(heights) < 0.05 and max(heights) > 0.1  # spread over [0.03, 0.12]


@pytest.mark.parametrize("name", NAMES)
def test_success_rule_on_simulator_states(envs, name):
    env = envs[name]
    env.reset(5)
    mw, threshold = env.mw, env.spec.success_threshold
    if name in ("sawyer_push", "sawyer_bin"):
        target = mw._target_pos.copy() if name == "sawyer_push" else mw.task_goal.copy()
        cases = [(0.0, True), (0.8 * threshold, True), (1.2 * threshold, False), (0.2, False)]
        for offset, reached in cases:
            _place_block(env, target + [offset, 0.0, 0.0])
            assert env.goal_distance() == pytest.approx(offset, abs=1e-6)
            assert env.success() is reached
    else:
        goal_slide = mw.goal_slide
        middle = -0.075 if name == "sawyer_drawer" else 0.1  # of the slide range
        sign = 1.0 if goal_slide < middle else -1.0  # move away from the goal inside the range
        for offset, reached in [(0.0, True), (0.8 * threshold, True), (1.2 * threshold, False)]:
            slide = goal_slide + sign * offset
            if name == "sawyer_drawer":
                _set_drawer(env, slide)
            else:
                mw.set_slide(slide)
            assert env.goal_distance() == pytest.approx(offset, abs=1e-6)
            assert env.success() is reached


def test_random_steps_beyond_episode_and_metaworld_limit(env):
    rng = np.random.default_rng(1)
    env.reset(0)
    steps = 510 if env.spec.name == "sawyer_push" else 160  # Meta-World's own limit is 500
    for _ in range(steps):
        state = env.step(rng.uniform(-1, 1, 4).astype(np.float32))
        assert state.dtype == np.float32 and np.all(np.isfinite(state))
    assert np.isfinite(env.goal_distance())


def test_actions_clipped_and_move_the_hand(envs):
    env = envs["sawyer_push"]
    env.reset(2)
    big = [env.step([5.0, 0.0, 0.0, -3.0]) for _ in range(3)]
    env.reset(2)
    unit = [env.step([1.0, 0.0, 0.0, -1.0]) for _ in range(3)]
    np.testing.assert_array_equal(np.stack(big), np.stack(unit))
    start, _ = env.reset(2)
    for _ in range(20):
        state = env.step([1.0, 0.0, 0.0, 1.0])  # +x at full speed, close the gripper
    assert 0.1 < state[0] - start[0] < 0.21  # ~0.01 m per step, lagging the mocap a little
    assert state[6] < start[6] - 0.1  # the fingers closed


def test_bad_name():
    with pytest.raises(ValueError, match="valid choices: sawyer_push"):
        make_sawyer("sawyer_pushh")


def test_the_episode_stages_script_tells_an_idle_gripper_from_a_grasp():
    """scripts/sawyer_episodes.py: a policy that holds still never reaches, grasps or moves the
    block; one scripted to go down onto it and close reaches and grasps it."""
    import importlib.util
    import os

    path = os.path.join(os.path.dirname(__file__), "..", "scripts", "sawyer_episodes.py")
    spec = importlib.util.spec_from_file_location("sawyer_episodes", path)
    script = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(script)
    env = make_sawyer("sawyer_bin")
    idle = script.episode(env, lambda obs: np.zeros(4), seed=3)
    assert idle["grasped"] == 0 and idle["moved"] < 0.01 and idle["gap"] > script.NEAR

    def grasp(obs):  # above the block, then down, then close: hand and block from the state
        hand, block = obs[:3], obs[4:7]
        to_block = np.clip((block + np.array([0.0, 0.0, 0.06]) - hand) * 30, -1, 1)
        close = 1.0 if np.linalg.norm(env.tcp() - block) < 0.02 else -1.0
        return np.concatenate([to_block, [close]])

    grasped = script.episode(env, grasp, seed=3)
    assert grasped["gap"] < script.NEAR and grasped["grasped"] > 0
    env.close()
