"""Stitch datasets (``crl collect --stitch``): short segments, each from a random free cell to a
goal cell 4 BFS steps away, that together cover the maze but none of which joins far cells."""

import json

import numpy as np
import pytest

h5py = pytest.importorskip("h5py")

from contrastive_rl.cli import main  # noqa: E402
from contrastive_rl.datasets import DatasetError  # noqa: E402
from contrastive_rl.envs.mazes import MazeGrid, point_grid  # noqa: E402
from contrastive_rl.experiments.collect import (  # noqa: E402
    STITCH_CELLS,
    STITCH_EPISODE_LENGTH,
    CollectOptions,
    collect,
    stitch_goal_cells,
)


def _episodes(path):
    """``(states [E, T+1, 2], goals [E, 2])`` of a point-maze dataset in D4RL's layout."""
    with h5py.File(path) as f:
        rows = int(np.argmax(f["timeouts"][:])) + 1
        states = f["observations"][:].reshape(-1, rows, 2)
        goals = f["infos/goal"][:].reshape(-1, rows, 2)[:, 0]
    return states, goals


def _spans(grid, states):
    """Per episode, the largest BFS distance (in cells) from its start cell to a cell it visits."""
    cells = grid.cell_of(states)
    return np.array(
        [grid.distances_from(tuple(c[0]))[c[:, 0], c[:, 1]].max() for c in cells], np.int64
    )


def test_stitch_segments_are_short_walks_to_a_goal_four_cells_away(tmp_path, capsys):
    """Measured on these datasets: every goal 4 cells away, 0.971 of the segments reach the goal
    cell, their spans (the farthest cell from the start) 2-7 cells, 90% at most 6; the regular
    dataset's episodes span 2-19 cells, median 9, 90% at most 15. (On 2009 stitch segments of
    each point maze: reached 0.967-0.999, spans at most 7.)"""
    path = str(tmp_path / "stitch.hdf5")
    argv = ["collect", "--env", "offline_point_FourRooms", "--out", path, "--stitch"]
    assert main([*argv, "--steps", str(512 * 13), "--num-envs", "256", "--seed", "1"]) == 0
    metadata = json.loads(capsys.readouterr().out)
    assert metadata["episode_length"] == STITCH_EPISODE_LENGTH == 12
    assert metadata["stitch_cells"] == STITCH_CELLS == 4 and metadata["episodes"] == 512

    grid = point_grid("FourRooms")
    states, goals = _episodes(path)
    assert states.shape == (512, 13, 2)
    start_cells, goal_cells = grid.cell_of(states[:, 0]), grid.cell_of(goals)
    pairs = zip(start_cells, goal_cells, strict=True)
    distance = [grid.distances_from(tuple(s))[tuple(g)] for s, g in pairs]
    assert set(distance) == {4}
    assert not np.any(grid.in_wall(states)) and not np.any(grid.in_wall(goals))
    reached = np.all(grid.cell_of(states) == goal_cells[:, None], axis=-1).any(axis=1)
    assert reached.mean() >= 0.9
    spans = _spans(grid, states)
    assert spans.max() <= 7 and np.percentile(spans, 90) <= 6
    # together the segments cover the maze: every free cell is visited
    visited = {tuple(c) for c in grid.cell_of(states).reshape(-1, 2)}
    assert visited == {tuple(c) for c in grid.free_cells}

    regular = str(tmp_path / "regular.hdf5")
    collect(CollectOptions("offline_point_FourRooms", regular, steps=256 * 51, num_envs=256))
    assert np.percentile(_spans(grid, _episodes(regular)[0]), 90) >= 12


def test_where_no_cell_is_four_steps_away_the_farthest_cells_are_the_goals():
    # a corridor of three free cells and a wall: from every cell at most 2 steps
    corridor = MazeGrid(
        "corridor", np.array([[False, False, False, True]]), 1.0, (0.0, 0.0), (0, 1)
    )
    mask = stitch_goal_cells(corridor)
    assert mask.tolist() == [[False, False, True], [True, False, True], [True, False, False]]
    open_grid = point_grid("Small")  # 4 x 4, no walls: from (0, 0) the cells with r + c = 4
    first = stitch_goal_cells(open_grid)[0]
    assert {tuple(c) for c in open_grid.free_cells[first]} == {(1, 3), (2, 2), (3, 1)}


def test_stitch_is_refused_for_antmaze(tmp_path):
    with pytest.raises(DatasetError, match="point-maze"):
        collect(CollectOptions("offline_ant_umaze", str(tmp_path / "x.hdf5"), stitch=True))


# -- the stitch tasks: evaluation on far pairs ----------------------------------------------------


def test_stitch_tasks_evaluate_on_pairs_no_segment_joins():
    import jax

    from contrastive_rl.envs import make_env
    from contrastive_rl.envs.point_stitch import STITCH_EVAL_CELLS, FarGoalPointMaze

    env = make_env("offline_point_FourRooms_stitch")
    assert isinstance(env, FarGoalPointMaze) and env.spec.episode_length == 50
    grid = point_grid("FourRooms")
    first = jax.vmap(env.reset)(jax.random.split(jax.random.key(0), 500))
    starts, goals = np.asarray(first.state), np.asarray(first.goal)
    assert not np.any(grid.in_wall(starts)) and not np.any(grid.in_wall(goals))
    # written out: from the start cell, the fewest BFS steps to any free cell holding a point
    # within the success distance (2.0) of the goal's cell, by a fine grid of points in each cell
    ticks = (np.arange(8) + 0.5) / 8
    points = np.stack(np.meshgrid(ticks, ticks, indexing="ij"), -1).reshape(-1, 2)
    for start, goal in zip(grid.cell_of(starts[:40]), grid.cell_of(goals[:40]), strict=True):
        steps = grid.distances_from(tuple(start))
        goal_points = goal + points
        reach = min(
            steps[tuple(c)]
            for c in grid.free_cells
            if np.min(np.linalg.norm((c + points)[:, None] - goal_points[None], axis=-1)) < 2.0
        )
        assert reach >= STITCH_EVAL_CELLS
    assert np.all(np.linalg.norm(starts - goals, axis=-1) > 2.0)  # no success at the start
    with pytest.raises(ValueError, match="no start-goal pair.*valid: Cross, FourRooms"):
        FarGoalPointMaze("Small")


def test_collecting_for_a_stitch_task_makes_stitch_segments(tmp_path):
    by_name, by_flag = str(tmp_path / "a.hdf5"), str(tmp_path / "b.hdf5")
    meta = collect(CollectOptions("offline_point_U_stitch", by_name, steps=64 * 13, num_envs=64))
    collect(CollectOptions("offline_point_U", by_flag, steps=64 * 13, num_envs=64, stitch=True))
    assert meta["env"] == "offline_point_U_stitch" and meta["stitch_cells"] == 4
    for a, b in zip(_episodes(by_name), _episodes(by_flag), strict=True):
        np.testing.assert_array_equal(a, b)


def test_an_offline_stitch_task_trains_and_evaluates(tmp_path):
    from contrastive_rl.api import train
    from contrastive_rl.config import make_config
    from contrastive_rl.runs import metrics

    data = str(tmp_path / "stitch.hdf5")
    collect(CollectOptions("offline_point_FourRooms_stitch", data, steps=256 * 13, num_envs=256))
    config = make_config(
        "offline_point_FourRooms_stitch",
        alg="td_infonce",
        dataset=data,
        steps=64,
        batch_size=32,
        hidden_layer_sizes=(16, 16),
        repr_dim=8,
        eval_every=64,
        eval_episodes=100,
    )
    result = train(config, str(tmp_path / "run"), progress_bar=False)
    record = metrics.read_metrics(str(tmp_path / "run"))[-1]
    assert record["grad_steps"] == 64 and np.isfinite(record["train/critic_loss"])
    # evaluated on the task's far pairs: over 100 episodes their start-goal distance averages
    # 8.8-9.9 (20,000 resets), the uniform pairs of offline_point_FourRooms 5.2-6.6
    assert "eval/success" in result and record["eval/init_dist"] > 7.5
