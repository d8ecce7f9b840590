"""AntMaze on both backends: the original's layout, reset law and success rule; MuJoCo vs MJX.

Host (MuJoCo) tests are fast. XLA compiles MJX's RK4 step in tens of seconds on a 2-core CPU, so
the default tests compile MJX for a vmapped reset without goal settling (fresh goals and
starts) and for one step of one env (its agreement with MuJoCo); the rest is slow (``-m
slow``): a short vmapped rollout (time, finite states, agreement with MuJoCo), the settling
reset, and a tiny training run with MJX physics inside the jitted loop.
"""

import jax
import jax.numpy as jnp
import mujoco
import numpy as np
import pytest

from contrastive_rl.envs.ant import (
    AntMazeHost,
    AntMazeMJX,
    MazeLayout,
    make_ant_host,
    make_ant_mjx,
)
from contrastive_rl.envs.ant_model import MAZES, build_mjcf, cell_xy, maze_cells
from contrastive_rl.envs.base import EnvState

NAMES = ["ant_umaze", "ant_medium", "ant_large"]


@pytest.mark.parametrize("name", NAMES)
def test_layout_of_state_goal_and_actions(name):
    env = make_ant_host(name)
    spec = env.spec
    assert (spec.state_dim, spec.goal_dim, spec.obs_dim, spec.action_dim) == (29, 2, 31, 8)
    assert (spec.goal_start, spec.goal_end, spec.success_threshold) == (0, 2, 0.5)
    assert spec.episode_length == {"ant_umaze": 700, "ant_medium": 1000, "ant_large": 1000}[name]
    state, goal = env.reset(3)
    assert state.shape == (29,) and state.dtype == np.float32
    assert goal.shape == (2,) and goal.dtype == np.float32
    # x, y first: qpos[:15] ++ qvel[:14]
    np.testing.assert_allclose(state[:15], env.data.qpos[:15], rtol=1e-6)
    np.testing.assert_allclose(state[15:], env.data.qvel[:14], rtol=1e-6)
    assert env.step(np.zeros(8)).shape == (29,)
    assert make_ant_mjx(name).spec == spec


def test_unknown_names_are_refused():
    for bad in ["ant_small", "umaze", "point_umaze"]:
        with pytest.raises(ValueError, match="ant_umaze"):
            make_ant_host(bad)


def test_maze_layouts_are_d4rl_with_every_free_cell_but_the_start_a_goal():
    # D4RL's U_MAZE, BIG_MAZE, HARDEST_MAZE: 7, 26 and 46 free cells, the start at (1, 1).
    for maze, (shape, free) in {
        "umaze": ((5, 5), 7),
        "medium": ((8, 8), 26),
        "large": ((9, 12), 46),
    }.items():
        walls, goals, start = maze_cells(maze)
        assert (len(MAZES[maze]), len(MAZES[maze][0])) == shape
        assert start == (1, 1) and len(goals) == free - 1 and len(walls) + free == np.prod(shape)
    # Cell (i, j) -> world (4 (j - 1), 4 (i - 1)): the U's far arm is 8 m up the y axis.
    np.testing.assert_allclose(cell_xy([[1, 1], [3, 1], [1, 3]], (1, 1)), [[0, 0], [0, 8], [8, 0]])


def test_walls_are_d4rl_blocks_that_only_the_ant_touches():
    model = mujoco.MjModel.from_xml_string(build_mjcf("umaze"))
    walls, _, start = maze_cells("umaze")
    blocks = [g for g in range(model.ngeom) if model.geom(g).name.startswith("block_")]
    assert len(blocks) == len(walls) == 18
    centres = {tuple(np.round(model.geom_pos[g], 6)) for g in blocks}
    assert centres == {(x, y, 1.0) for x, y in cell_xy(walls, start)}
    assert (0.0, 4.0, 1.0) in centres and (0.0, 8.0, 1.0) not in centres  # the U's inner wall
    for g in blocks:
        np.testing.assert_allclose(model.geom_size[g], [2.0, 2.0, 1.0])
    # Only ant geoms have contype 1, only world geoms conaffinity 1: no wall-wall/wall-floor pair.
    torso = model.body("torso").id
    ant = model.geom_bodyid >= torso
    assert np.all(model.geom_contype[ant] == 1) and np.all(model.geom_conaffinity[ant] == 0)
    assert np.all(model.geom_contype[~ant] == 0) and np.all(model.geom_conaffinity[~ant] == 1)


def test_ant_model_has_d4rl_physics():
    model = mujoco.MjModel.from_xml_string(build_mjcf("umaze"))
    assert model.opt.timestep == 0.02 and model.opt.integrator == mujoco.mjtIntegrator.mjINT_RK4
    assert (model.nq, model.nv, model.nu) == (15, 14, 8)
    np.testing.assert_allclose(model.actuator_ctrlrange, [[-30.0, 30.0]] * 8)
    np.testing.assert_allclose(model.actuator_gear[:, 0], 1.0)
    # D4RL's actuator order: leg 4 first.
    joints = [model.joint(model.actuator_trnid[i, 0]).name for i in range(8)]
    assert joints[:4] == ["hip_4", "ankle_4", "hip_1", "ankle_1"]
    np.testing.assert_allclose(np.degrees(model.jnt_range[model.joint("ankle_2").id]), [-70, -30])
    np.testing.assert_allclose(model.dof_armature[6:], 1.0)
    np.testing.assert_allclose(model.dof_damping[6:], 1.0)
    assert np.isclose(model.body_subtreemass[model.body("torso").id], 0.91088, atol=1e-4)


def test_host_reset_is_a_function_of_the_seed_and_goals_are_redrawn():
    env = AntMazeHost("ant_medium")
    s1, g1 = env.reset(11)
    goals = [env.reset(seed)[1] for seed in range(12)]
    s2, g2 = env.reset(11)
    np.testing.assert_array_equal(s1, s2)
    np.testing.assert_array_equal(g1, g2)
    assert len({tuple(g) for g in goals}) == len(goals)  # no cached first episode


def test_host_goals_lie_in_free_cells_and_cover_every_goal_cell():
    env = AntMazeHost("ant_umaze")
    layout = env.layout
    goals = np.array([env.reset(seed)[1] for seed in range(60)])
    assert layout.is_free(goals).all()
    cells = {tuple(c) for c in layout.xy_to_cell(goals)}
    assert cells == {tuple(c) for c in layout.goal_cells}  # the start cell is never a goal


def test_goal_sampler_offsets_follow_the_original_law():
    # U(0, 1) + U(0, 0.5) on each axis from the cell centre: within [0, 1.5], mean 0.75.
    layout = MazeLayout("large")
    rng = np.random.default_rng(0)
    xy = np.array([layout.sample_goal_xy(rng) for _ in range(4000)])
    offsets = xy - cell_xy(layout.xy_to_cell(xy), layout.start_cell)
    assert offsets.min() >= 0.0 and offsets.max() <= 1.5
    np.testing.assert_allclose(offsets.mean(0), [0.75, 0.75], atol=0.02)
    # std of U(0,1) + U(0,0.5): sqrt(1/12 + 1/48)
    np.testing.assert_allclose(offsets.std(0), np.sqrt(1 / 12 + 1 / 48), atol=0.02)


def test_about_half_of_the_starts_are_in_the_start_cell():
    layout = MazeLayout("umaze")
    rng = np.random.default_rng(1)
    xy = np.array([layout.sample_start_xy(rng) for _ in range(4000)])
    at_start = np.all(layout.xy_to_cell(xy) == layout.start_cell, axis=1)
    assert abs(at_start.mean() - 0.5) < 0.03
    assert xy[at_start].min() >= 0.0 and xy[at_start].max() <= 1.0  # start cell + U(0, 1)
    assert layout.is_free(xy).all()
    # Through the env: joints get D4RL's noise around qpos0.
    env = AntMazeHost("ant_umaze", goal_settle_steps=0)
    states = np.array([env.reset(seed)[0] for seed in range(200)])
    qpos0 = env.model.qpos0
    assert np.abs(states[:, 2:15] - qpos0[2:]).max() <= 0.1 + 1e-6
    assert np.abs(states[:, 2:15] - qpos0[2:]).max() > 0.09
    np.testing.assert_allclose(states[:, 15:].std(), 0.1, atol=0.01)
    in_start = np.all(layout.xy_to_cell(states[:, :2]) == layout.start_cell, axis=1)
    assert 0.4 < in_start.mean() < 0.6


def test_settling_moves_the_goal_off_the_sampled_point():
    # The original records the goal where the ant settles after 50 zero-action steps.
    settled, sampled = AntMazeHost("ant_umaze"), AntMazeHost("ant_umaze", goal_settle_steps=0)
    drift = [np.linalg.norm(settled.reset(s)[1] - sampled.reset(s)[1]) for s in range(10)]
    assert 0.02 < np.median(drift) < 0.6


def test_host_success_when_the_ant_is_on_the_goal():
    env = AntMazeHost("ant_large")
    state, goal = env.reset(5)
    qpos, qvel = env.data.qpos.copy(), env.data.qvel.copy()
    qpos[:2] = goal
    env.set_state(qpos, qvel)
    assert env.success() and env.goal_distance() < 1e-6
    qpos[:2] = goal + np.array([0.0, 0.51])
    env.set_state(qpos, qvel)
    assert not env.success()
    env.goal = np.zeros(2, np.float32)
    qpos[:2] = (0.5, 0.0)
    env.set_state(qpos, qvel)
    assert env.goal_distance() == 0.5 and env.success()  # the original's <=


def test_actions_are_scaled_to_the_motor_range_and_clipped():
    env = AntMazeHost("ant_umaze")
    env.reset(0)
    env.step(np.array([0.5, -1.0, 2.0, -3.0, 0.0, 0.1, 1.0, -0.2]))
    np.testing.assert_allclose(env.data.ctrl, [15.0, -30.0, 30.0, -30.0, 0.0, 3.0, 30.0, -6.0])


def test_jax_draws_follow_the_same_law():
    env = AntMazeMJX("ant_umaze", goal_settle_steps=0)
    layout = env.layout
    keys = jax.random.split(jax.random.key(0), 4000)
    goals = np.asarray(jax.jit(jax.vmap(env.sample_goal_xy))(keys))
    starts = np.asarray(jax.jit(jax.vmap(env.sample_start_xy))(keys))
    offsets = goals - cell_xy(layout.xy_to_cell(goals), layout.start_cell)
    assert offsets.min() >= 0.0 and offsets.max() <= 1.5
    np.testing.assert_allclose(offsets.mean(0), [0.75, 0.75], atol=0.02)
    assert {tuple(c) for c in layout.xy_to_cell(goals)} == {tuple(c) for c in layout.goal_cells}
    at_start = np.all(layout.xy_to_cell(starts) == layout.start_cell, axis=1)
    assert abs(at_start.mean() - 0.5) < 0.03 and layout.is_free(starts).all()


def test_jax_success_is_within_half_a_metre_inclusive():
    env = AntMazeMJX("ant_umaze", goal_settle_steps=0)

    def at(xy):
        state = jnp.zeros(29).at[:2].set(jnp.asarray(xy, jnp.float32))
        return EnvState(state=state, goal=jnp.zeros(2), t=jnp.zeros((), jnp.int32))

    assert bool(env.success(at((0.5, 0.0))))
    assert bool(env.success(at((0.3, 0.3))))
    assert not bool(env.success(at((0.4, 0.31))))


# --- MJX physics: one compiled reset (the default run) and one rollout (slow: compiling MJX's
# step takes about a minute on a 2-core CPU) shared by the tests below. ---

N_ENVS, N_STEPS = 4, 10


@pytest.fixture(scope="module")
def mjx_env():
    return AntMazeMJX("ant_umaze", goal_settle_steps=0)


@pytest.fixture(scope="module")
def mjx_first(mjx_env):
    keys = jax.random.split(jax.random.key(0), N_ENVS)
    return jax.tree_util.tree_map(np.asarray, jax.jit(jax.vmap(mjx_env.reset))(keys))


@pytest.fixture(scope="module")
def mjx_rollout(mjx_env):
    env = mjx_env
    actions = jax.random.uniform(jax.random.key(1), (N_ENVS, N_STEPS, 8), minval=-1, maxval=1)

    def episode(key, acts):
        first = env.reset(key)

        def body(env_state, action):
            env_state = env.step(env_state, action, key)
            return env_state, env_state.state

        last, states = jax.lax.scan(body, first, acts)
        return first, last, states

    keys = jax.random.split(jax.random.key(0), N_ENVS)
    out = jax.jit(jax.vmap(episode))(keys, actions)
    return env, np.asarray(actions), jax.tree_util.tree_map(np.asarray, out)


def test_mjx_resets_draw_fresh_goals_and_starts(mjx_env, mjx_first):
    env, first = mjx_env, mjx_first
    assert first.state.shape == (N_ENVS, 29) and first.goal.shape == (N_ENVS, 2)
    assert first.state.dtype == np.float32 and first.goal.dtype == np.float32
    assert env.observation(first).shape == (N_ENVS, 31)
    assert len({tuple(g) for g in first.goal}) == N_ENVS  # a fresh goal per key
    assert len({tuple(s[:2]) for s in first.state}) == N_ENVS
    assert env.layout.is_free(first.goal).all() and env.layout.is_free(first.state[:, :2]).all()
    assert np.all(first.t == 0) and np.isfinite(first.state).all()
    np.testing.assert_array_equal(first.state[:, :15], first.sim.qpos)


def test_one_mjx_step_agrees_with_mujoco(mjx_env, mjx_first):
    """One jitted step of one env (a single compile of MJX's step, about 40 s on a loaded 2-core
    CPU): time counts, and from the same state with the same action MuJoCo lands on the same
    state (the feet are not on the floor yet, so the two contact models do not differ)."""
    first = jax.tree_util.tree_map(lambda x: x[0], mjx_first)
    action = np.linspace(-1, 1, 8, dtype=np.float32)
    after = jax.jit(mjx_env.step)(first, action, jax.random.key(1))
    assert int(after.t) == 1 and np.isfinite(np.asarray(after.state)).all()
    host = AntMazeHost("ant_umaze")
    host.set_state(first.sim.qpos, first.sim.qvel)
    np.testing.assert_allclose(host.step(action), np.asarray(after.state), atol=1e-4)
    assert np.abs(np.asarray(after.state) - first.state).max() > 1e-3  # it moved


@pytest.mark.slow
def test_mjx_steps_count_time_and_stay_finite(mjx_rollout):
    _, _, (first, last, states) = mjx_rollout
    assert np.all(first.t == 0) and np.all(last.t == N_STEPS)
    assert np.isfinite(states).all()


@pytest.mark.slow
def test_backends_agree_on_a_short_rollout(mjx_rollout):
    """Same start and actions: MuJoCo and MJX agree to float32 precision until the feet touch
    the floor (env step ~2), then drift apart because MJX's pyramidal friction cone for plane
    contacts has fixed tangents while MuJoCo aligns them with the capsule (measured over 8
    starts: xy differs by <= 0.06 after 5 steps, <= 0.15 after 10)."""
    env, actions, (first, _, states) = mjx_rollout
    host = AntMazeHost("ant_umaze")
    for i in range(N_ENVS):
        host.set_state(first.sim.qpos[i], first.sim.qvel[i])
        host_states = np.array([host.step(a) for a in actions[i]])
        np.testing.assert_allclose(host_states[0], states[i, 0], atol=1e-4)
        xy_error = np.linalg.norm(host_states[:, :2] - states[i, :, :2], axis=1)
        assert xy_error[-1] < 0.3, xy_error


@pytest.mark.slow
def test_mjx_reset_settles_goals_like_the_host():
    """The full reset (50 settling steps) under vmap: fresh goals in free cells, moved off the
    sampled point by about as much as on the host (median ~0.19 m)."""
    keys = jax.random.split(jax.random.key(7), 8)
    settled = jax.jit(jax.vmap(make_ant_mjx("ant_umaze").reset))(keys)
    sampled = jax.jit(jax.vmap(AntMazeMJX("ant_umaze", goal_settle_steps=0).reset))(keys)
    goals = np.asarray(settled.goal)
    layout = MazeLayout("umaze")
    assert len({tuple(g) for g in goals}) == len(goals) and layout.is_free(goals).all()
    drift = np.linalg.norm(goals - np.asarray(sampled.goal), axis=1)
    assert 0.02 < np.median(drift) < 0.6, drift
    assert np.isfinite(np.asarray(settled.state)).all()


@pytest.mark.slow  # about 4 minutes on a 2-core CPU: MJX compiles three times (warm-up, loop, eval)
def test_a_tiny_mjx_training_run_compiles_physics_into_the_loop(monkeypatch, tmp_path):
    """The whole loop (MJX physics, replay, relabelling, updates) in the jitted iteration.

    The episode is shortened to 10 steps and goal settling is off to keep compilation short on
    a CPU; everything else is the real ant_umaze and the real training loop.
    """
    import dataclasses

    from contrastive_rl import envs
    from contrastive_rl.config import make_config
    from contrastive_rl.runs import rundir
    from contrastive_rl.runs.metrics import read_metrics
    from contrastive_rl.training.collect import JaxCollector
    from contrastive_rl.training.runner import Run

    env = AntMazeMJX("ant_umaze", goal_settle_steps=0)
    env.spec = dataclasses.replace(env.spec, episode_length=10)
    monkeypatch.setattr(envs, "make_env", lambda name, backend: env)
    config = make_config(
        env="ant_umaze",
        backend="mjx",
        preset="debug",
        steps=60,
        num_envs=2,
        min_replay_size=20,
        batch_size=8,
        hidden_layer_sizes=(16, 16),
        repr_dim=8,
        eval_every=60,
        eval_episodes=2,
    )
    path = str(tmp_path / "mjx")
    rundir.prepare(path, config)
    run = Run(config, path, progress_bar=False)
    assert run.trainer.backend == "mjx" and isinstance(run.trainer.collector, JaxCollector)
    result = run.run()
    record = read_metrics(path)[-1]
    assert record["env_steps"] == 60 and record["grad_steps"] == 40
    assert np.isfinite(record["train/critic_loss"]) and 0.0 <= result["eval/success"] <= 1.0


@pytest.mark.parametrize(
    "name, low, high",
    [  # free interiors of D4RL's maps, 4 m cells, the start cell's centre at the origin
        ("ant_umaze", (-2, -2), (10, 10)),  # 3 x 3 cells
        ("ant_medium", (-2, -2), (22, 22)),  # 6 x 6
        ("ant_large", (-2, -2), (38, 26)),  # 10 columns (x) x 7 rows (y)
    ],
)
def test_input_standardiser_spans_the_free_cells_in_xy_only(name, low, high):
    spec = AntMazeHost(name).spec
    shift, scale = np.array(spec.input_shift), np.array(spec.input_scale)
    np.testing.assert_allclose(shift[:2], (np.array(low) + high) / 2)
    np.testing.assert_allclose(scale[:2], (np.array(high) - low) / 12**0.5)
    assert (shift[2:] == 0).all() and (scale[2:] == 1).all()  # joints and velocities as they are
