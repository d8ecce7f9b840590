"""`crl video`: readable MP4/GIF files with one frame per step, captions, frame strips.

The runs here hold a checkpoint of an untrained actor (what `load_policy` reads), which is all
a video needs; a video of a trained run is made in the slow end-to-end sweep test.
"""

import json
import os

import imageio.v2 as imageio
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from contrastive_rl.agent.networks import make_networks
from contrastive_rl.cli import main
from contrastive_rl.config import ConfigError, make_config
from contrastive_rl.envs import env_spec, requirements_error
from contrastive_rl.experiments import video
from contrastive_rl.runs import checkpoint


def policy_run(path, env: str, steps: int = 1234, **fields) -> str:
    """A run directory with config.json and a checkpoint holding only an initial actor."""
    config = make_config(env, run_dir=str(path), hidden_layer_sizes=(16, 16), **fields)
    spec = env_spec(config.env, config.backend)
    state = jnp.zeros((1, spec.state_dim), spec.obs_dtype)
    goal = jnp.zeros((1, spec.goal_dim), spec.obs_dtype)
    actor = make_networks(spec, config).actor.init(jax.random.key(0), state, goal)
    os.makedirs(path, exist_ok=True)
    with open(os.path.join(path, "config.json"), "w") as f:
        json.dump(config.to_dict(), f)
    meta = {"progress": {"env_steps": steps}}
    checkpoint.save_checkpoint(path, steps, {"learner": {"actor_params": actor}}, meta)
    return str(path)


def mp4_frames(path) -> list[np.ndarray]:
    with imageio.get_reader(path, format="FFMPEG") as reader:
        return list(reader.iter_data())  # len(reader) is unknown (maxsize) for ffmpeg


def test_point_maze_video_and_strip(tmp_path, capsys):
    run = policy_run(tmp_path / "run", "point_FourRooms")
    out = tmp_path / "v.mp4"
    strip = tmp_path / "strip.png"
    argv = ["video", run, "--out", str(out), "--episodes", "2", "--fps", "10", "--size", "176"]
    assert main([*argv, "--strip", str(strip), "--strip_frames", "4"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["frames"] == 2 * (50 + 1)  # FourRooms: 50 steps, the start included
    frames = mp4_frames(out)
    assert len(frames) == 102
    h, w, _ = frames[0].shape
    assert h % 16 == 0 and w % 16 == 0 and w >= 176  # 11 cells x 16 px + the border
    assert len(result["episodes"]) == 2
    for episode in result["episodes"]:
        assert episode["success"] in (0.0, 1.0) and episode["final_distance"] >= 0
    assert imageio.imread(strip).shape == (h, 4 * w + 3 * 4, 3)


def test_gif_has_every_frame(tmp_path):
    frames = [np.full((32, 48, 3), 8 * i, np.uint8) for i in range(7)]
    video.write_video(frames, str(tmp_path / "v.gif"), fps=5, fmt="gif")
    back = imageio.mimread(tmp_path / "v.gif")
    assert len(back) == 7 and back[3].shape[:2] == (32, 48)
    np.testing.assert_array_equal(back[3][..., :3], frames[3])


def test_caption_pads_to_whole_blocks():
    framed = video.caption(np.zeros((100, 90, 3), np.uint8), ["a", "b"], reached=True)
    assert framed.shape == (144, 96, 3)  # 100 + 40 rows and 90 columns, up to multiples of 16
    np.testing.assert_array_equal(framed[:100, :90], 0)
    assert (framed[100:] != 255).any()  # the caption's text


def test_the_drawing_shows_walls_goal_and_path():
    walls = np.zeros((4, 5), int)
    walls[1, 3] = 1
    path = [np.array([0.5, 0.5]), np.array([2.5, 1.5]), np.array([3.5, 0.5])]
    frame = video.draw_maze(walls, np.array([2.0, 4.0]), path, radius=1.0, cell=20)
    assert frame.shape == (4 * 20 + 20, 5 * 20 + 20, 3)  # a half-cell border on each side
    np.testing.assert_array_equal(frame[10 + 30, 10 + 70], (60, 60, 70))  # the wall's centre
    np.testing.assert_array_equal(frame[10 + 10, 10 + 10 + 25], (245, 245, 240))  # free
    np.testing.assert_array_equal(frame[10 + 70, 10 + 10], (220, 50, 50))  # the point
    np.testing.assert_array_equal(frame[10 + 40, 10 + 80], (40, 160, 60))  # the goal
    np.testing.assert_array_equal(frame[10 + 20, 10 + 80], (40, 160, 60))  # its circle, r = 20 px
    mid = (10 + 30, 10 + 20)  # halfway along the first segment of the path
    np.testing.assert_array_equal(frame[mid], (70, 110, 220))
    np.testing.assert_array_equal(frame[2, 2], (60, 60, 70))  # the border


def test_bad_options_are_refused(tmp_path):
    run = tmp_path / "run"
    os.makedirs(run)
    (run / "config.json").write_text(json.dumps(make_config("point_Small").to_dict()))
    with pytest.raises(ConfigError, match="valid choices: mp4, gif"):
        video.make_video(str(run), str(tmp_path / "v.avi"))
    with pytest.raises(ConfigError, match="must be positive"):
        video.make_video(str(run), episodes=0)
    assert main(["video", str(tmp_path / "none")]) == 2  # no run there: bad input


@pytest.mark.skipif(bool(requirements_error("fetch_reach")), reason="needs the fetch extra")
def test_fetch_reach_rendered_headless(tmp_path):
    run = policy_run(tmp_path / "run", "fetch_reach")
    result = video.make_video(run, str(tmp_path / "reach.mp4"), episodes=1, size=96)
    frames = mp4_frames(tmp_path / "reach.mp4")
    assert result["frames"] == len(frames) == 51
    assert frames[0].shape == (96 + 48, 96, 3)  # the scene, then the caption padded to 16
    scene = frames[0][:96].astype(int)
    assert scene.std() > 10  # a rendered scene, not a blank image
    green = (scene[..., 1] - scene[..., [0, 2]].max(axis=-1)) > 40
    assert green.any()  # the goal sphere
