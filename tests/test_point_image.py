"""Point mazes as images: the original's drawing, the dynamics kept, the border defect fixed."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from scipy import ndimage

from contrastive_rl.config import make_config
from contrastive_rl.envs import make_env
from contrastive_rl.envs.point import WALLS
from contrastive_rl.training.replay import EpisodeReplay
from contrastive_rl.training.trainer import Trainer

NAMES = [f"point_image_{w}" for w in WALLS]


def reference_image(walls: np.ndarray, position: np.ndarray) -> np.ndarray:
    """The original's drawing in NumPy/SciPy, from the spec's words (section 2.7)."""
    canvas = np.kron(walls, np.ones((30, 30))).astype(np.float64)
    canvas = np.where(canvas == 1, 0.0, 0.5)
    r, c = np.floor(position * 30).astype(int)
    canvas[max(r - 10, 0) : r + 10, max(c - 10, 0) : c + 10] = 1.0
    image = (canvas * 255).astype(np.uint8)
    zoomed = ndimage.zoom(image, (64 / canvas.shape[0], 64 / canvas.shape[1]), order=0)
    return np.repeat(zoomed[:, :, None], 3, axis=2)


@pytest.mark.parametrize("walls", ["FourRooms", "U"])
def test_render_matches_the_originals_drawing(walls):
    env = make_env(f"point_image_{walls}")
    keys = jax.random.split(jax.random.key(0), 20)
    positions = np.array(jax.vmap(env.sample_free_position)(keys))
    positions[0] = [0.0, 0.0]  # corners and borders: the square is cut at the edge
    positions[1] = [env.height, env.width]
    images = np.asarray(jax.jit(env.render)(jnp.asarray(positions)))
    assert images.shape == (20, 64 * 64 * 3) and images.dtype == np.uint8
    for position, image in zip(positions, images, strict=True):
        expected = reference_image(np.asarray(WALLS[walls]), position)
        np.testing.assert_array_equal(image.reshape(64, 64, 3), expected)


def test_spec_layout_and_determinism():
    env = make_env("point_image_Spiral11x11")
    spec = env.spec
    assert spec.image_shape == (64, 64, 3) and spec.state_dim == 12288
    assert (spec.goal_start, spec.goal_end, spec.obs_dtype) == (0, 12288, "uint8")
    assert (
        spec.episode_length == 100 and make_env("point_image_FourRooms").spec.episode_length == 50
    )
    a, b = env.reset(jax.random.key(3)), env.reset(jax.random.key(3))
    np.testing.assert_array_equal(env.render(a.state), env.render(b.state))
    assert not np.array_equal(env.render(a.state), env.render(env.reset(jax.random.key(4)).state))


def test_goal_image_is_the_image_at_the_goal_state():
    env = make_env("point_image_Cross")
    s = env.reset(jax.random.key(1))
    goal_image = env.spec.observe_goal(s.goal)
    np.testing.assert_array_equal(goal_image, env.render(s.goal))
    moved = s.replace(state=s.goal)  # standing on the goal: same image, and success
    np.testing.assert_array_equal(env.spec.observe(moved.state), goal_image)
    assert bool(env.success(moved))


@pytest.mark.parametrize("name", NAMES)
def test_every_point_image_env_resets_and_steps(name):
    env = make_env(name)
    s = env.reset(jax.random.key(0))
    s2 = env.step(s, jnp.array([0.5, -0.5]), jax.random.key(1))
    assert int(s2.t) == 1 and s2.state.shape == (2,)
    image = env.spec.observe(s2.state)
    assert image.shape == (12288,) and image.dtype == jnp.uint8
    assert int((image == 255).sum()) > 0  # the point is in the picture


def test_point_never_leaves_the_maze_in_image_mode():
    """The original's image mode let the point walk out at the bottom and right borders."""
    env = make_env("point_image_Small")  # no walls: only the border stops the point
    n, steps = 64, 60
    keys = jax.random.split(jax.random.key(0), n)
    envs = jax.vmap(env.reset)(keys)
    # Half push to the bottom-right (the original's escape), half anywhere.
    pushes = jnp.concatenate([jnp.ones((n // 2, 2)), -jnp.ones((n // 4, 2))])
    pushes = jnp.concatenate([pushes, jax.random.uniform(keys[0], (n - pushes.shape[0], 2))])

    def one(envs, k):
        envs = jax.vmap(env.step)(envs, pushes, jax.random.split(k, n))
        return envs, envs.state

    _, positions = jax.lax.scan(one, envs, jax.random.split(jax.random.key(1), steps))
    positions = np.asarray(positions)
    assert positions.min() >= 0.0 and positions.max() <= 4.0
    assert (positions[-1, : n // 2] > 3.85).all()  # pressed into the corner, still inside
    visible = (np.asarray(env.render(jnp.asarray(positions))) == 255).any(axis=-1)
    assert visible.all()


def test_point_never_enters_walls_in_image_mode():
    env = make_env("point_image_FourRooms")
    n = 32
    envs = jax.vmap(env.reset)(jax.random.split(jax.random.key(2), n))

    def one(envs, k):
        a, b = jax.random.split(k)
        actions = jax.random.uniform(a, (n, 2), minval=-1, maxval=1)
        envs = jax.vmap(env.step)(envs, actions, jax.random.split(b, n))
        return envs, envs.state

    _, positions = jax.lax.scan(one, envs, jax.random.split(jax.random.key(3), 200))
    cells = np.clip(np.floor(np.asarray(positions)).astype(int), 0, 10).reshape(-1, 2)
    assert not np.asarray(env.walls)[cells[:, 0], cells[:, 1]].any()


def test_replay_stores_positions_and_samples_images():
    env = make_env("point_image_FourRooms")
    replay = EpisodeReplay(env.spec, capacity=4, discount=0.99)
    # 51 positions of 2 float32 + 50 actions of 2 float32, per 50 transitions.
    assert replay.bytes_per_transition == pytest.approx((51 * 2 * 4 + 50 * 2 * 4) / 50)
    state = replay.init()
    assert state.states.shape == (4, 51, 2) and state.states.dtype == jnp.float32
    positions = jax.vmap(env.sample_free_position)(jax.random.split(jax.random.key(0), 4 * 51))
    state = replay.insert(state, positions.reshape(4, 51, 2), jnp.zeros((4, 50, 2)))
    batch = replay.sample(state, jax.random.key(1), 8)
    assert batch.state.shape == (8, 12288) and batch.state.dtype == jnp.uint8
    assert batch.goal.shape == (8, 12288) and batch.goal.dtype == jnp.uint8
    stored = {image.tobytes() for image in np.asarray(jax.jit(env.render)(positions))}
    assert all(np.asarray(g).tobytes() in stored for g in batch.goal)


@pytest.mark.slow  # about a minute of CPU: the conv torsos compile and train on 2 cores
def test_training_runs_end_to_end_on_point_image_small(tmp_path, capsys):
    from contrastive_rl.training.runner import Run

    config = make_config(
        "point_image_Small",
        steps=400,
        num_envs=4,
        min_replay_size=200,
        batch_size=8,
        hidden_layer_sizes=(16,),
        image_pool=4,
        eval_every=200,
        eval_episodes=4,
        utd=0.05,
        entropy_coefficient=0.0,  # no alpha loss: one conv graph fewer to compile
    )
    result = Run(config, str(tmp_path / "run"), progress_bar=False).run()
    assert 0.0 <= result["eval/success"] <= 1.0
    assert "bytes per transition" in capsys.readouterr().err


@pytest.mark.slow  # about 1.6k conv updates: 5 to 10 minutes on a 2-core CPU
def test_image_quick_learns_point_image_four_rooms_from_pixels(tmp_path):
    """image_quick beats the random policy (0.18 here) from pixels alone within 1.6k updates."""
    from contrastive_rl.training.runner import Run

    config = make_config(
        "point_image_FourRooms", preset="image_quick", steps=12_000, eval_every=12_000, seed=0
    )
    result = Run(config, str(tmp_path / "run"), progress_bar=False).run()
    assert result["eval/success"] >= 0.4  # measured 0.56 (50 episodes) at this budget


def test_a_replay_that_cannot_fit_is_refused_before_anything_runs():
    config = make_config("point_image_Small", max_replay_size=10**12, steps=100_000)
    with pytest.raises(ValueError, match="lower max_replay_size"):
        Trainer(config)


def test_image_names_get_the_launchers_image_settings_and_flags_override():
    config = make_config("point_image_FourRooms")
    assert config.adaptive_entropy and config.target_entropy == 0.0
    assert config.max_replay_size == 1_000_000  # positions are stored: the default fits
    fixed = make_config("point_image_FourRooms", entropy_coefficient=0.0)
    assert fixed.entropy_coefficient == 0.0
    stored = make_config("sawyer_push_image")  # stored images: a replay that leaves room
    assert stored.adaptive_entropy and stored.max_replay_size == 250_000
    assert make_config("sawyer_push_image", max_replay_size=20_000).max_replay_size == 20_000
    assert make_config("point_FourRooms").entropy_coefficient == 0.0  # state tasks: the original's


def test_input_norm_standardises_images_by_the_mean_image_over_the_maze():
    """--input_norm on point images: the maze drawing becomes zeros, the point stands out."""
    from contrastive_rl.envs.point_image import pixel_standardiser

    env = make_env("point_image_U")
    shift, scale = np.asarray(env.spec.input_shift), np.asarray(env.spec.input_scale)
    assert shift.shape == scale.shape == (64 * 64 * 3,)
    # The same positions, drawn by the NumPy reference: 4 x 4 evenly spread on each free cell.
    walls = np.asarray(WALLS["U"])
    offsets = (np.arange(4) + 0.5) / 4
    images = np.array(
        [
            reference_image(walls, np.array([r + dr, c + dc])).reshape(-1)
            for r, c in np.argwhere(walls == 0)
            for dr in offsets
            for dc in offsets
        ],
        dtype=np.float64,
    )
    np.testing.assert_allclose(shift, images.mean(0), rtol=1e-5, atol=1e-3)
    np.testing.assert_allclose(scale, np.sqrt(images.var(0).mean()), rtol=1e-4)
    standardised = (images - shift) / scale
    assert abs(standardised.var(0).mean() - 1.0) < 1e-4  # unit variance on average
    never_covered = images.max(0) < 255
    assert never_covered.sum() > 100  # the drawing the point never reaches ...
    assert np.all(np.abs(standardised[:, never_covered]) < 1e-4)  # ... becomes zeros
    assert pixel_standardiser("U") is pixel_standardiser("U")  # computed once per maze
