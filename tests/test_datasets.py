"""The offline dataset readers: each format from fixture files written in its exact layout,
episode splitting, Minari's frame conversion, and every bad file refused with a clear message."""

import json
import os
import sys
import types

import numpy as np
import pytest

h5py = pytest.importorskip("h5py")

from contrastive_rl.datasets import (  # noqa: E402
    DatasetError,
    Episodes,
    detect_format,
    fixed_length,
    load_training_data,
    read_episodes,
)
from contrastive_rl.datasets.minari import gymnasium_robotics_to_d4rl, to_d4rl_frame  # noqa: E402
from contrastive_rl.envs.spec import EnvSpec  # noqa: E402

POINT = "offline_point_Small"  # a 4x4 open maze: positions in [0, 4]^2
POINT_SPEC = EnvSpec("point_Small", 2, 2, 50, 0, 2, 2.0, input_shift=(2.0, 2.0))


def rows(lengths, state_dim=2, action_dim=2, seed=0):
    """Flat rows of episodes with ``lengths`` rows each; positions inside the 4x4 maze."""
    rng = np.random.default_rng(seed)
    n = sum(lengths)
    obs = rng.uniform(0.1, 3.9, (n, state_dim)).astype(np.float32)
    obs[:, 0] = np.arange(n) % 4 + 0.5  # row index visible in the data, inside the maze
    actions = rng.uniform(-1, 1, (n, action_dim)).astype(np.float32)
    ends = np.zeros(n, bool)
    ends[np.cumsum(lengths) - 1] = True
    return obs, actions, ends


def write_d4rl(path, obs, actions, timeouts, extra=None):
    with h5py.File(path, "w") as f:
        f["observations"] = obs
        f["actions"] = actions
        f["timeouts"] = timeouts
        f["terminals"] = np.zeros_like(timeouts)
        f["rewards"] = np.zeros(len(obs), np.float32)
        f["infos/goal"] = np.zeros((len(obs), 2), np.float32)
        for k, v in (extra or {}).items():
            f[k] = v
    return str(path)


def write_ogbench(path, obs, actions, terminals, **extra):
    np.savez(path, observations=obs, actions=actions, terminals=terminals, **extra)
    return str(path)


def test_d4rl_splits_at_timeouts_and_drops_each_episodes_last_action(tmp_path):
    obs, actions, ends = rows([5, 7, 3])
    ends_with_tail = np.concatenate([ends, [False, False]])  # 2 rows that end no episode
    obs2 = np.concatenate([obs, obs[:2]])
    act2 = np.concatenate([actions, actions[:2]])
    episodes = read_episodes(write_d4rl(tmp_path / "d.hdf5", obs2, act2, ends_with_tail), POINT)
    assert episodes.format == "d4rl"
    assert episodes.lengths.tolist() == [4, 6, 2]  # transitions: rows - 1
    starts = [0, 5, 12]
    for ep, (start, n) in enumerate(zip(starts, [5, 7, 3], strict=True)):
        np.testing.assert_array_equal(episodes.states[ep], obs[start : start + n])
        np.testing.assert_array_equal(episodes.actions[ep], actions[start : start + n - 1])
    assert any("last 2 row(s) end no episode" in n for n in episodes.notes)


def test_ogbench_splits_at_terminals(tmp_path):
    obs, actions, ends = rows([4, 6])
    path = write_ogbench(tmp_path / "o.npz", obs, actions, ends, qpos=obs, qvel=obs)
    episodes = read_episodes(path, POINT)
    assert episodes.format == "ogbench"
    assert episodes.lengths.tolist() == [3, 5]
    np.testing.assert_array_equal(episodes.states[1], obs[4:])
    np.testing.assert_array_equal(episodes.actions[1], actions[4:9])


def test_fixed_length_takes_the_common_length_cuts_longer_and_drops_shorter():
    rng = np.random.default_rng(1)
    lengths = [4, 4, 2, 9]
    states = [rng.normal(size=(n + 1, 2)) for n in lengths]
    actions = [rng.normal(size=(n, 2)) for n in lengths]
    s, a, notes = fixed_length(Episodes(states, actions, "x", "d4rl"))
    assert s.shape == (4, 5, 2) and a.shape == (4, 4, 2)  # 4, 4, and 9 -> two pieces of 4
    np.testing.assert_allclose(s[2], states[3][0:5])
    np.testing.assert_allclose(s[3], states[3][4:9])  # the pieces share their boundary state
    np.testing.assert_allclose(a[3], actions[3][4:8])
    assert any("shorter than 4" in n for n in notes)
    assert any("cut into pieces of 4" in n for n in notes)


def test_load_training_data_records_an_identity_that_changes_with_the_data(tmp_path):
    obs, actions, ends = rows([6, 6, 6])
    path = write_d4rl(tmp_path / "d.hdf5", obs, actions, ends)
    data = load_training_data(path, POINT, POINT_SPEC)
    assert data.states.shape == (3, 6, 2) and data.actions.shape == (3, 5, 2)
    assert data.identity["episodes"] == 3 and data.identity["episode_length"] == 5
    again = load_training_data(path, POINT, POINT_SPEC)
    assert again.identity == data.identity
    actions[3, 0] = 0.123
    write_d4rl(path, obs, actions, ends)
    assert load_training_data(path, POINT, POINT_SPEC).identity["sha256"] != data.identity["sha256"]


# -- Minari and its frame -----------------------------------------------------------------------

UMAZE_GYM_MAP = [
    [1, 1, 1, 1, 1],
    [1, 0, 0, 0, 1],
    [1, 1, 1, 0, 1],
    [1, 0, 0, 0, 1],
    [1, 1, 1, 1, 1],
]


def test_frame_conversion_hand_computed():
    # U-maze, 5x5 cells of 4: Gymnasium-Robotics puts cell (i, j) at ((j + .5) 4 - 10,
    # 10 - (i + .5) 4); D4RL puts the start cell (1, 1) at the origin, y growing with the row.
    gym_xy = np.array([[-4.0, 4.0], [4.0, -4.0], [-4.0, -4.0], [-3.0, 3.5]])
    d4rl_xy = gymnasium_robotics_to_d4rl(gym_xy, (5, 5), (1, 1), 4.0)
    np.testing.assert_allclose(d4rl_xy, [[0, 0], [8, 8], [0, 8], [1, 0.5]])


@pytest.mark.parametrize("maze", ["umaze", "medium", "large"])
def test_frame_conversion_matches_gymnasium_robotics_cells(maze):
    """Every cell centre as Gymnasium-Robotics places it lands on this project's (D4RL's)."""
    maze_module = pytest.importorskip("gymnasium_robotics.envs.maze.maze_v4")
    from contrastive_rl.envs.ant_model import MAZE_SIZE_SCALING, MAZES, cell_xy, maze_cells

    _, _, start = maze_cells(maze)
    rows_, cols = len(MAZES[maze]), len(MAZES[maze][0])
    fake = types.SimpleNamespace(
        maze_size_scaling=MAZE_SIZE_SCALING,
        x_map_center=cols / 2 * MAZE_SIZE_SCALING,
        y_map_center=rows_ / 2 * MAZE_SIZE_SCALING,
    )
    cells = np.array([(i, j) for i in range(rows_) for j in range(cols)])
    gym_xy = np.stack([maze_module.Maze.cell_rowcol_to_xy(fake, c) for c in cells])
    converted = gymnasium_robotics_to_d4rl(gym_xy, (rows_, cols), start, MAZE_SIZE_SCALING)
    np.testing.assert_allclose(converted, cell_xy(cells, start), atol=1e-9)


def write_minari(root, episodes, total_episodes=None, total_steps=None, maze_map=UMAZE_GYM_MAP):
    """A Minari dataset directory (``root/data``) of AntMaze-like dict observations."""
    data = root / "data"
    data.mkdir(parents=True)
    env_spec = {"id": "AntMaze_UMaze-v4", "kwargs": {"maze_map": maze_map}}
    meta = {
        "dataset_id": "D4RL/antmaze/umaze-v1",
        "data_format": "hdf5",
        "total_episodes": len(episodes) if total_episodes is None else total_episodes,
        "total_steps": sum(len(a) for _, a in episodes) if total_steps is None else total_steps,
        "env_spec": json.dumps(env_spec),
        "minari_version": "0.5.1",
    }
    (data / "metadata.json").write_text(json.dumps(meta))
    with h5py.File(data / "main_data.hdf5", "w") as f:
        for i, (state, actions) in enumerate(episodes):
            g = f.create_group(f"episode_{i}")
            g.attrs["id"] = i
            g.attrs["total_steps"] = len(actions)
            g["observations/achieved_goal"] = state[:, :2]
            g["observations/observation"] = state[:, 2:]
            g["observations/desired_goal"] = np.zeros((len(state), 2))
            g["actions"] = actions
            g["rewards"] = np.zeros(len(actions))
            g["terminations"] = np.zeros(len(actions), bool)
            g["truncations"] = np.zeros(len(actions), bool)
    return str(root)


def ant_episode(gym_xy, steps=6, seed=0):
    rng = np.random.default_rng(seed)
    state = rng.normal(0, 0.1, (steps + 1, 29))
    state[:, :2] = gym_xy + rng.uniform(-0.5, 0.5, (steps + 1, 2))
    return state, rng.uniform(-1, 1, (steps, 8))


def test_minari_reads_episodes_and_converts_the_frame(tmp_path):
    pytest.importorskip("mujoco")  # the ant's mirror map is read from its model
    episodes_in = [ant_episode([-4.0, 4.0]), ant_episode([-4.0, -4.0], steps=4, seed=1)]
    path = write_minari(tmp_path / "umaze-v1", episodes_in)
    episodes = read_episodes(path, "offline_ant_umaze")
    assert episodes.format == "minari" and detect_format(path) == "minari"
    assert episodes.lengths.tolist() == [6, 4]
    state, actions = episodes_in[1]
    expected = state.copy()
    expected[:, 0] = state[:, 0] + 4.0  # x + 10 - 6
    expected[:, 1] = 4.0 - state[:, 1]  # y flipped: 10 - 6 - y
    # the mirror image of the ant (y -> -y): quaternion (w, -x, y, -z), velocity (vx, -vy, vz),
    # angular velocity (-wx, wy, -wz); legs 1 <-> 4 and 2 <-> 3 (at (.2, .2) <-> (.2, -.2) and
    # (-.2, .2) <-> (-.2, -.2)), hip angles (about z) negated, ankle angles kept
    expected[:, 3:7] = state[:, 3:7] * [1, -1, 1, -1]
    expected[:, 15:21] = state[:, 15:21] * [1, -1, 1, -1, 1, -1]
    for start in (7, 21):  # the joint angles (qpos[7:15]), then their velocities (qvel[6:14])
        for first, second in ((0, 6), (2, 4), (4, 2), (6, 0)):  # hip_1 <-> hip_4, hip_2 <-> hip_3
            expected[:, start + first] = -state[:, start + second]
            expected[:, start + first + 1] = state[:, start + second + 1]
    np.testing.assert_allclose(episodes.states[1], expected, rtol=1e-6)
    # actions in D4RL's order hip_4, ankle_4, hip_1, ankle_1, hip_2, ankle_2, hip_3, ankle_3
    expected_actions = actions[:, [2, 3, 0, 1, 6, 7, 4, 5]] * [-1, 1, -1, 1, -1, 1, -1, 1]
    np.testing.assert_allclose(episodes.actions[1], expected_actions, rtol=1e-6)
    # the start cell (gym (-4, 4)) is D4RL's origin; the goal cell (gym (-4, -4)) is (0, 8)
    np.testing.assert_allclose(to_d4rl_frame(np.array([[-4.0, 4.0] + [0] * 27]), "umaze")[0, :2], 0)
    assert read_episodes(str(tmp_path / "umaze-v1" / "data"), "offline_ant_umaze").lengths.size == 2


def test_converted_minari_episodes_replay_in_the_simulator(tmp_path):
    """A recorded episode's converted actions, replayed in the evaluation simulator from its
    converted states, give its converted states: the conversion is a reflection the same ant
    can make. The recording: the ant stepped in a world placed as Gymnasium-Robotics places the
    U-maze (its walls are symmetric under the maze's row flip, so that world is D4RL's shifted
    by (-4, -4): the same simulator, with xy - 4 recorded)."""
    pytest.importorskip("mujoco")
    from contrastive_rl.envs.ant import AntMazeHost

    env = AntMazeHost("ant_umaze", goal_settle_steps=0)
    env.reset(3)
    actions = np.random.default_rng(0).uniform(-1, 1, (40, 8))
    recorded = np.stack([env.state()] + [env.step(a) for a in actions]).astype(np.float64)
    recorded[:, :2] -= 4.0
    path = write_minari(tmp_path / "umaze-v1", [(recorded, actions)])
    episodes = read_episodes(path, "offline_ant_umaze")
    states, converted = episodes.states[0], episodes.actions[0]
    np.testing.assert_allclose(states[:, 1], 8.0 - (recorded[:, 1] + 4.0), atol=1e-5)  # mirrored
    for t in range(len(actions)):  # each step from its converted state
        env.set_state(states[t, :15], states[t, 15:])
        np.testing.assert_allclose(env.step(converted[t]), states[t + 1], atol=1e-4)
    env.set_state(states[0, :15], states[0, 15:])  # and the whole episode from its start
    replayed = np.stack([env.step(a) for a in converted])
    np.testing.assert_allclose(replayed, states[1:], atol=1e-3)


# -- bad files --------------------------------------------------------------------------------


def truncated(path):
    size = os.path.getsize(path)
    with open(path, "r+b") as f:
        f.truncate(size // 2)
    return path


def bad_d4rl(tmp_path, case):
    obs, actions, ends = rows([5, 5])
    p = tmp_path / "bad.hdf5"
    if case == "missing key":
        with h5py.File(p, "w") as f:
            f["observations"], f["actions"] = obs, actions
    elif case == "rows differ":
        write_d4rl(p, obs, actions[:-1], ends)
    elif case == "wrong ndim":
        write_d4rl(p, obs[:, 0], actions, ends)
    elif case == "no episode end":
        write_d4rl(p, obs, actions, np.zeros_like(ends))
    elif case == "truncated":
        write_d4rl(p, np.tile(obs, (500, 1)), np.tile(actions, (500, 1)), np.tile(ends, 500))
        truncated(p)
    elif case == "not hdf5":
        p.write_text("observations,actions\n1,2\n")
    return str(p)


@pytest.mark.parametrize(
    "case, message",
    [
        ("missing key", r"no key 'timeouts' \(found: actions, observations\); expected the D4RL"),
        ("rows differ", r"key 'actions' has 9 rows, 'observations' 10"),
        ("wrong ndim", r"key 'observations' has shape \(10,\); expected 2 dimension"),
        ("no episode end", r"key 'timeouts' marks no episode end"),
        ("truncated", r"not a readable HDF5 file|cannot be read"),
        ("not hdf5", r"not a readable HDF5 file"),
    ],
)
def test_bad_d4rl_files_are_refused_naming_file_and_key(tmp_path, case, message):
    path = bad_d4rl(tmp_path, case)
    with pytest.raises(DatasetError, match=message) as error:
        read_episodes(path, POINT)
    assert path in str(error.value)


def bad_ogbench(tmp_path, case):
    obs, actions, ends = rows([5, 5])
    p = tmp_path / "bad.npz"
    if case == "missing key":
        np.savez(p, observations=obs, actions=actions)
    elif case == "truncated":
        np.savez(p, observations=np.tile(obs, (100, 1)), actions=actions, terminals=ends)
        truncated(p)
    elif case == "rows differ":
        np.savez(p, observations=obs, actions=actions, terminals=ends[:-3])
    elif case == "images":
        np.savez(p, observations=np.zeros((10, 4, 4, 3)), actions=actions, terminals=ends)
    return str(p)


@pytest.mark.parametrize(
    "case, message",
    [
        ("missing key", r"no key 'terminals' \(found: actions, observations\)"),
        ("truncated", r"not a readable .npz file|cannot be read"),
        ("rows differ", r"key 'terminals' has 7 rows, 'observations' 10"),
        ("images", r"key 'observations' has shape \(10, 4, 4, 3\).*images"),
    ],
)
def test_bad_ogbench_files_are_refused(tmp_path, case, message):
    path = bad_ogbench(tmp_path, case)
    with pytest.raises(DatasetError, match=message) as error:
        read_episodes(path, POINT)
    assert path in str(error.value)


@pytest.mark.parametrize(
    "case, message",
    [
        ("count", r"holds 2 episode groups where .*metadata.json says total_episodes 3"),
        ("steps", r"holds 10 steps where .*says total_steps 11"),
        ("no data", r"Minari dataset without main_data.hdf5"),
        ("arrow", r"data_format 'arrow'"),
        ("other maze", r"maze_map is a 3x3 maze that is not the umaze maze of offline_ant_umaze"),
        ("point task", r"read for the offline AntMaze tasks"),
        ("actions", r"episode_0/actions has shape \(5, 8\) for 7 observations"),
    ],
)
def test_bad_minari_datasets_are_refused(tmp_path, case, message):
    episodes = [ant_episode([-4.0, 4.0]), ant_episode([-4.0, -4.0], steps=4, seed=1)]
    env = "offline_ant_umaze"
    kwargs = {}
    if case == "count":
        kwargs["total_episodes"] = 3
    if case == "steps":
        kwargs["total_steps"] = 11
    if case == "other maze":
        kwargs["maze_map"] = [[1, 1, 1], [1, 0, 1], [1, 1, 1]]
    if case == "actions":
        state, actions = episodes[0]
        episodes[0] = (state, actions[:5])
    path = write_minari(tmp_path / "ds", episodes, **kwargs)
    if case == "no data":
        os.remove(os.path.join(path, "data", "main_data.hdf5"))
    if case == "arrow":
        meta_file = os.path.join(path, "data", "metadata.json")
        meta = json.loads(open(meta_file).read())
        meta["data_format"] = "arrow"
        open(meta_file, "w").write(json.dumps(meta))
    if case == "point task":
        env = POINT
    with pytest.raises(DatasetError, match=message):
        read_episodes(path, env)


def test_unknown_and_missing_paths_are_refused(tmp_path):
    with pytest.raises(DatasetError, match="does not exist"):
        detect_format(str(tmp_path / "nope.hdf5"))
    other = tmp_path / "data.csv"
    other.write_text("x")
    with pytest.raises(DatasetError, match=r"cannot tell the format.*\.hdf5.*Minari.*\.npz"):
        detect_format(str(other))
    (tmp_path / "empty").mkdir()
    with pytest.raises(DatasetError, match="not a Minari dataset directory"):
        read_episodes(str(tmp_path / "empty"), "offline_ant_umaze")


@pytest.mark.parametrize(
    "change, message",
    [
        (
            "state_dim",
            r"key 'observations' has states of shape \(3,\); offline_point_Small "
            r"expects 2 numbers per state",
        ),
        ("action_dim", r"key 'actions' has actions of shape \(4,\); .* expects 2 numbers"),
        ("nan", r"key 'observations' holds NaN or infinite values \(row 7\)"),
        ("range", r"key 'actions' reaches 1.5; offline_point_Small expects actions in \[-1, 1\]"),
        ("other maze", r"positions outside the Small maze of offline_point_Small"),
        ("walls", r"lie in wall cells of the FourRooms maze"),
    ],
)
def test_data_that_does_not_fit_the_task_is_refused(tmp_path, change, message):
    env, spec = POINT, POINT_SPEC
    obs, actions, ends = rows(
        [6, 6],
        state_dim=3 if change == "state_dim" else 2,
        action_dim=4 if change == "action_dim" else 2,
    )
    if change == "nan":
        obs[7, 1] = np.nan
    if change == "range":
        actions[3, 1] = 1.5
    if change == "other maze":
        obs[:, 1] += 8.0  # positions of a larger maze
    if change == "walls":
        env = "offline_point_FourRooms"
        spec = EnvSpec("point_FourRooms", 2, 2, 50, 0, 2, 2.0)
        obs[:, 1] = 5.5  # column 5 is FourRooms' wall between the rooms, but for its doors
    path = write_d4rl(tmp_path / "d.hdf5", obs, actions, ends)
    with pytest.raises(DatasetError, match=message) as error:
        load_training_data(path, env, spec)
    assert path in str(error.value)


def test_a_missing_h5py_names_the_install_command(tmp_path, monkeypatch):
    obs, actions, ends = rows([4])
    path = write_d4rl(tmp_path / "d.hdf5", obs, actions, ends)
    monkeypatch.setitem(sys.modules, "h5py", None)  # import h5py now raises ImportError
    with pytest.raises(DatasetError, match=r"needs h5py.*pip install 'contrastive_rl\[offline\]'"):
        read_episodes(path, POINT)
