"""Point-maze dynamics against hand-worked cases of the original's rules."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from contrastive_rl.envs import ENV_NAMES, POINT_ENVS, EnvState, make_env
from contrastive_rl.envs.point import WALLS


def at(position, goal=(0.5, 0.5)):
    return EnvState(
        state=jnp.asarray(position, jnp.float32),
        goal=jnp.asarray(goal, jnp.float32),
        t=jnp.zeros((), jnp.int32),
    )


def run(env, env_state, action, steps=1, seed=0):
    step = jax.jit(env.step)
    for k in jax.random.split(jax.random.key(seed), steps):
        env_state = step(env_state, jnp.asarray(action, jnp.float32), k)
    return env_state


def test_every_point_maze_constructs_with_the_original_layout():
    assert POINT_ENVS == [f"point_{w}" for w in WALLS]
    assert set(POINT_ENVS) <= set(ENV_NAMES)
    for name in POINT_ENVS:
        env = make_env(name)
        spec = env.spec
        assert (spec.state_dim, spec.goal_dim, spec.action_dim, spec.obs_dim) == (2, 2, 2, 4)
        assert spec.success_threshold == 2.0
        obs = env.observation(env.reset(jax.random.key(0)))
        assert obs.shape == (4,) and obs.dtype == jnp.float32


@pytest.mark.parametrize(
    "name, length",
    [
        ("point_Small", 50),
        ("point_FourRooms", 50),
        ("point_Spiral11x11", 100),
        ("point_Maze11x11", 100),
        ("point_U", 50),
        ("point_Cross", 50),
    ],
)
def test_episode_lengths(name, length):
    assert make_env(name).spec.episode_length == length


def test_free_motion_moves_by_the_action():
    env = make_env("point_Small")
    s = run(env, at((1.5, 1.5)), (1.0, 0.5))
    # 10 sub-steps of 0.1 x action, noise std 0.01
    np.testing.assert_allclose(np.asarray(s.state), [2.5, 2.0], atol=0.05)
    assert int(s.t) == 1


def test_actions_are_clipped_to_the_unit_box():
    env = make_env("point_Small")
    a = run(env, at((1.5, 1.5)), (5.0, -7.0), seed=3)
    b = run(env, at((1.5, 1.5)), (1.5, -1.5), seed=3)  # noise is added before the clip
    np.testing.assert_allclose(np.asarray(a.state), np.asarray(b.state), atol=1e-6)


def test_walls_block():
    env = make_env("point_FourRooms")
    # FourRooms row 5 is a wall at columns 2..5: moving down from (4.5, 3.5) stops before row 5.
    s = run(env, at((4.5, 3.5)), (1.0, 0.0), steps=3)
    assert 4.85 < float(s.state[0]) < 5.0
    assert abs(float(s.state[1]) - 3.5) < 0.05
    # The gap at (5, 1) lets it through.
    s = run(env, at((4.5, 1.5)), (1.0, 0.0), steps=2)
    assert float(s.state[0]) > 6.0


def test_a_blocked_axis_does_not_stop_the_other():
    env = make_env("point_FourRooms")
    s = run(env, at((4.5, 3.5)), (1.0, 1.0), steps=1)
    assert float(s.state[0]) < 5.0  # row blocked by the wall
    assert float(s.state[1]) > 4.4  # column moved freely


def test_borders_hold():
    env = make_env("point_Small")
    s = run(env, at((0.3, 3.8)), (-1.0, 1.0), steps=3)
    assert 0.0 <= float(s.state[0]) < 0.1
    assert 3.9 < float(s.state[1]) <= 4.0


def test_success_rule_is_distance_below_two():
    env = make_env("point_Small")
    assert bool(env.success(at((1.0, 1.0), goal=(2.9, 1.0))))
    assert not bool(env.success(at((1.0, 1.0), goal=(3.0, 1.0))))
    assert not bool(env.success(at((0.5, 0.5), goal=(2.0, 2.0))))  # 2.12 away


def test_resets_draw_free_positions_and_fresh_goals():
    env = make_env("point_FourRooms")
    states = jax.jit(jax.vmap(env.reset))(jax.random.split(jax.random.key(1), 2000))
    walls = WALLS["FourRooms"]
    for positions in (np.asarray(states.state), np.asarray(states.goal)):
        cells = np.floor(positions).astype(int)
        assert (walls[cells[:, 0], cells[:, 1]] == 0).all()
        assert (positions >= 0).all() and (positions <= 11).all()
    # goals are different across resets and cover every free cell
    goal_cells = {tuple(c) for c in np.floor(np.asarray(states.goal)).astype(int)}
    assert len(goal_cells) == int((walls == 0).sum())
    assert (np.asarray(states.t) == 0).all()


def test_seeded_resets_reproduce():
    env = make_env("point_U")
    a, b = env.reset(jax.random.key(7)), env.reset(jax.random.key(7))
    np.testing.assert_array_equal(np.asarray(a.state), np.asarray(b.state))
    np.testing.assert_array_equal(np.asarray(a.goal), np.asarray(b.goal))


def test_unknown_and_planned_environments_give_clear_errors():
    with pytest.raises(ValueError, match="did you mean 'point_FourRooms'"):
        make_env("point_Fourrooms")
    with pytest.raises(ValueError, match="steps on the host"):
        make_env("offline_ant_umaze")  # evaluated in CPU workers
    with pytest.raises(ValueError, match="steps on the host"):
        make_env("fetch_reach")
    with pytest.raises(ValueError, match="no 'mjx' backend; valid choices: auto, mujoco"):
        make_env("sawyer_push", backend="mjx")


def test_input_standardiser_maps_the_maze_box_to_unit_variance():
    spec = make_env("point_FourRooms").spec
    shift, scale = np.array(spec.input_shift), np.array(spec.input_scale)
    np.testing.assert_allclose(shift, [5.5, 5.5])
    # a uniform draw over [0, 11] has standard deviation 11 / sqrt(12)
    corners = (np.array([[0.0, 0.0], [11.0, 11.0]]) - shift) / scale
    np.testing.assert_allclose(corners, [[-(3**0.5)] * 2, [3**0.5] * 2])
    box = np.random.default_rng(0).uniform(0, 11, (100_000, 2))
    np.testing.assert_allclose(((box - shift) / scale).std(axis=0), [1, 1], atol=0.01)
