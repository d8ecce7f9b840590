"""Sawyer and Fetch image tasks: layout, determinism, goal images, orientation, success rules,
uint8 hand-over from workers, and the error when no OpenGL backend can start."""

import os
import subprocess
import sys

import jax
import jax.numpy as jnp
import mujoco
import numpy as np
import pytest

pytest.importorskip("metaworld")

from contrastive_rl.actors.workers import EnvWorkers, UnrollRequest, WorkerError  # noqa: E402
from contrastive_rl.envs import BACKENDS, HOST_ENVS, MUJOCO_IMAGE_ENVS  # noqa: E402
from contrastive_rl.envs.host_image import make_image_env  # noqa: E402
from contrastive_rl.envs.render import FreeCamera, SceneRenderer  # noqa: E402
from contrastive_rl.training.replay import EpisodeReplay  # noqa: E402

FACTORY = "contrastive_rl.envs.host_image:make_image_env"
# name -> (episode length, success threshold), from the original's image versions
FACTS = {
    "sawyer_push_image": (150, 0.05),
    "sawyer_drawer_image": (50, 0.04),
    "sawyer_bin_image": (150, 0.05),
    "sawyer_window_image": (50, 0.05),
    "fetch_reach_image": (50, 0.05),
    "fetch_push_image": (50, 0.05),
}


def measured_distance(env) -> float:
    """Each task's distance read straight from the simulator, by the original's rule."""
    data, name = env.data, env.spec.name
    if name == "sawyer_drawer_image":  # handle = drawer_link + (0, -0.16, 0), along y
        return abs(data.body("drawer_link").xpos[1] - 0.16 - env.goal[1])
    if name == "sawyer_window_image":
        return abs(data.joint("window_slide").qpos[0] - env.goal_slide)
    if name == "sawyer_push_image":  # 3-D
        return np.linalg.norm(data.body("obj").xpos - env.goal)
    if name == "sawyer_bin_image":  # in the table plane
        return np.linalg.norm(data.body("obj").xpos[:2] - env.goal[:2])
    if name == "fetch_reach_image":  # 3-D
        return np.linalg.norm(data.site("robot0:grip").xpos - env.goal)
    return np.linalg.norm(data.site("object0").xpos[:2] - env.goal[:2])


@pytest.fixture(scope="module", params=MUJOCO_IMAGE_ENVS)
def env(request):
    env = make_image_env(request.param)
    yield env
    env.close()


def test_registered_as_host_environments():
    assert set(MUJOCO_IMAGE_ENVS) == set(FACTS)
    for name in FACTS:
        assert BACKENDS[name] == ("mujoco",) and HOST_ENVS[name] == FACTORY
    with pytest.raises(ValueError, match="valid choices: sawyer_push_image"):
        make_image_env("sawyer_reach_image")


def test_the_environments_doc_gives_each_image_task_its_episode_length():
    """docs/environments.md's row of the image tasks, e.g. ``50 (drawer, window), 150 (...)``."""
    import re

    doc = os.path.join(os.path.dirname(__file__), "..", "docs", "environments.md")
    row = next(
        line for line in open(doc, encoding="utf-8") if line.startswith("| `sawyer_*_image`")
    )
    documented = {}
    for length, names in re.findall(r"(\d+) \(([a-zA-Z, ]+)\)", row):
        for short in names.split(", "):
            family = "fetch" if short == "Fetch" else "sawyer"
            for name in FACTS:
                if name.startswith(family) and (family == "fetch" or f"_{short}_" in name):
                    documented[name] = int(length)
    assert documented == {name: length for name, (length, _) in FACTS.items()}


def test_reset_and_step_give_whole_uint8_images(env):
    spec = env.spec
    assert (spec.state_dim, spec.goal_start, spec.goal_end) == (12288, 0, 12288)
    assert (spec.image_shape, spec.obs_dtype, spec.action_dim) == ((64, 64, 3), "uint8", 4)
    assert (spec.episode_length, spec.success_threshold) == FACTS[spec.name]
    state, goal = env.reset(1)
    assert state.shape == goal.shape == (12288,)
    assert state.dtype == goal.dtype == np.uint8
    assert state.std() > 10 and goal.std() > 10  # a picture, not a blank frame
    for action in np.random.default_rng(0).uniform(-1, 1, (3, 4)):
        after = env.step(action)
        assert after.shape == (12288,) and after.dtype == np.uint8
    assert np.isfinite(env.goal_distance())


def test_same_seed_same_images_other_seed_differs(env):
    first = env.reset(7)
    again = env.reset(7)
    for a, b in zip(first, again, strict=True):
        np.testing.assert_array_equal(a, b)
    other = env.reset(8)
    assert not np.array_equal(first[1], other[1])


def test_goal_image_is_the_scene_placed_at_the_goal(env):
    state, goal = env.reset(2)
    np.testing.assert_array_equal(env.render_physics(env.goal_physics), goal)
    np.testing.assert_array_equal(env.image(), state)  # the start scene is restored
    assert not np.array_equal(state, goal)
    env.set_physics(env.goal_physics)  # in the goal scene the task counts as solved
    assert env.goal_distance() < 0.5 * env.spec.success_threshold and env.success()


def test_success_rule_of_the_original(env):
    env.reset(4)
    rng = np.random.default_rng(0)
    for _ in range(3):
        distance = measured_distance(env)
        assert env.goal_distance() == pytest.approx(distance, abs=1e-6)
        assert env.success() == (distance < FACTS[env.spec.name][1])
        env.step(rng.uniform(-1, 1, 4))
    env.set_physics(env.goal_physics)
    assert env.success() and measured_distance(env) < FACTS[env.spec.name][1]


def test_images_are_upright(env):
    env.image()  # the camera alone decides; any scene will do
    assert env.renderer.image_up()[2] > 0.5  # world up points up in the picture


def test_goal_markers_and_lasers_are_hidden(env):
    model = env.model
    if env.spec.name.startswith("fetch"):
        lasers = [
            i for i in range(model.ngeom) if model.geom_bodyid[i] == model.body("robot0:mocap").id
        ]
        assert len(lasers) == 4 and (model.geom_rgba[lasers, 3] == 0).all()
        assert model.site("target0").rgba[3] == 0
    elif env.spec.name != "sawyer_bin_image":  # bin-picking has no goal marker
        assert model.site("goal").rgba[3] == 0


def test_pictures_are_what_the_renderer_with_reflections_draws(env):
    """Sawyer's tasks skip MuJoCo's mirror passes to save time: no camera sees a reflecting
    surface, so the start and goal pictures must be the ones drawn with reflections on.
    Fetch's scene has nothing that reflects, so its renderer keeps MuJoCo's default."""
    if env.renderer.reflections:
        assert not env.model.mat_reflectance.any()
        return
    reference = SceneRenderer(
        env.model, env.camera, rows_top_down=env.renderer.rows_top_down, reflections=True
    )
    try:
        state, goal = env.reset(3)
        np.testing.assert_array_equal(state, reference.render(env.data).reshape(-1))
        env.set_physics(env.goal_physics)
        np.testing.assert_array_equal(goal, reference.render(env.data).reshape(-1))
    finally:
        reference.close()


def test_offscreen_buffer_holds_one_picture_and_the_model_keeps_its_size(env):
    model_size = (env.model.vis.global_.offwidth, env.model.vis.global_.offheight)
    assert model_size[0] > 64 and model_size[1] > 64  # Meta-World 640x480, Fetch 480x480
    renderer = SceneRenderer(env.model, env.camera, size=32)
    try:
        assert (renderer._mjr.offWidth, renderer._mjr.offHeight) == (32, 32)
        assert (env.renderer._mjr.offWidth, env.renderer._mjr.offHeight) == (64, 64)
        assert (env.model.vis.global_.offwidth, env.model.vis.global_.offheight) == model_size
    finally:
        renderer.close()


def test_rows_top_down_or_as_opengl_reads_them():
    """A green floor below a grey sky: the floor fills the bottom rows of an upright image."""
    model = mujoco.MjModel.from_xml_string(
        '<mujoco><worldbody><light pos="0 0 3"/><geom type="plane" size="5 5 .1" rgba="0 1 0 1"/>'
        "</worldbody></mujoco>"
    )
    data = mujoco.MjData(model)
    mujoco.mj_forward(model, data)
    camera = FreeCamera((0.0, 0.0, 0.3), distance=2.0, azimuth=90, elevation=-5)
    for top_down in (True, False):
        renderer = SceneRenderer(model, camera, size=32, rows_top_down=top_down)
        image = renderer.render(data).astype(int)
        greenness = image[..., 1] - image[..., 0]  # per pixel
        bottom, top = greenness[-8:].mean(), greenness[:8].mean()
        assert (bottom > top + 20) == top_down and (top > bottom + 20) == (not top_down)
        assert renderer.image_up()[2] > 0.9 if top_down else renderer.image_up()[2] < -0.9
        renderer.close()


def test_workers_hand_over_uint8_images_as_rendered_in_process():
    seeds = np.array([5, 6])
    local = make_image_env("fetch_reach_image")
    expected = [local.reset(int(s)) for s in seeds]
    action = np.array([0.5, -0.5, 0.2, 0.0], np.float32)
    expected_step = [local.step(action) for _ in range(1)]
    local.close()
    with EnvWorkers("fetch_reach_image", FACTORY, 2, num_workers=1) as workers:
        assert workers.spec.obs_dtype == "uint8"
        states, goals, _ = workers.reset(seeds)
        stepped = workers.step(np.tile(action, (2, 1))).states
    assert states.dtype == goals.dtype == stepped.dtype == np.uint8
    np.testing.assert_array_equal(goals[1], expected[1][1])
    np.testing.assert_array_equal(states[1], expected[1][0])
    np.testing.assert_array_equal(stepped[1], expected_step[0])


def test_collected_image_episodes_reach_the_replay_as_uint8():
    with EnvWorkers("fetch_reach_image", FACTORY, 1, num_workers=0) as workers:
        spec = workers.spec
        key = np.asarray(jax.random.key_data(jax.random.key(0)))
        workers.submit_unroll(UnrollRequest(None, key, np.array([3]), 50, "random"))
        unroll = workers.receive_unroll()
        states, actions = unroll.states, unroll.actions
    assert states.dtype == np.uint8 and states.shape == (1, 51, 12288)
    replay = EpisodeReplay(spec, capacity=2, discount=0.99)
    stored = replay.insert(replay.init(), states, actions)
    assert stored.states.dtype == jnp.uint8  # 1 byte per pixel in the replay, never float
    np.testing.assert_array_equal(np.asarray(stored.states[0]), states[0])


def test_an_unusable_gl_backend_is_a_clear_worker_error(monkeypatch):
    monkeypatch.setenv("MUJOCO_GL", "vulkan")
    with pytest.raises(WorkerError, match="raised during start") as error:
        EnvWorkers("sawyer_drawer_image", FACTORY, 1, num_workers=1)
    message = str(error.value)
    assert "MUJOCO_GL='vulkan' is not a rendering backend" in message
    assert "valid choices: egl, osmesa, glfw" in message
    assert "apt-get install libegl1 libegl-mesa0 libgl1-mesa-dri" in message


def test_when_no_backend_starts_the_error_names_what_was_tried_and_what_to_install():
    env = {k: v for k, v in os.environ.items() if k not in ("MUJOCO_GL", "PYOPENGL_PLATFORM")}
    # EGL through libglvnd without any vendor library, as on a machine lacking libegl-mesa0.
    env["__EGL_VENDOR_LIBRARY_FILENAMES"] = "/nonexistent.json"
    env["PYTHONPATH"] = os.pathsep.join(p for p in sys.path if p)
    code = (
        "import mujoco\n"
        "from contrastive_rl.envs.render import FreeCamera, SceneRenderer\n"
        "m = mujoco.MjModel.from_xml_string('<mujoco/>')\n"
        "SceneRenderer(m, FreeCamera((0, 0, 0), 1.0, 0.0, 0.0))\n"
    )
    done = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True)
    assert done.returncode != 0
    last = done.stderr.strip().splitlines()[-1]
    assert last.startswith("contrastive_rl.envs.render.RenderBackendError: no OpenGL backend")
    assert "MUJOCO_GL=egl: " in last and "MUJOCO_GL=osmesa: " in last
    # Where OSMesa works the error says to use it; else which packages to install.
    assert "set MUJOCO_GL=osmesa" in last or "egl: apt-get install libegl1 libegl-mesa0" in last


@pytest.mark.parametrize("name", ["sawyer_drawer_image", "fetch_reach_image"])
def test_a_tiny_image_run_goes_through_the_trainer(name, tmp_path):
    """Rendering workers, uint8 images in the replay, the conv networks' updates in calls of 4
    written out, evaluation: the whole loop on one Sawyer and one Fetch image task."""
    from contrastive_rl.config import make_config
    from contrastive_rl.runs import rundir
    from contrastive_rl.runs.metrics import read_metrics
    from contrastive_rl.training.runner import Run

    config = make_config(
        env=name,
        preset="debug",  # images pooled by 4
        steps=200,  # 2 envs x 10 steps per iteration: 4 warm-up, 6 training of 20 updates
        num_envs=2,
        num_actors=1,
        min_replay_size=40,
        batch_size=8,
        hidden_layer_sizes=(16, 16),
        repr_dim=8,
        eval_every=200,
        eval_episodes=2,
        max_replay_size=2_000,  # 40 episodes of 64x64x3 images, not the default's 2.9 GiB
    )
    path = str(tmp_path / "run")
    rundir.prepare(path, config)
    run = Run(config, path, progress_bar=False)
    trainer = run.trainer
    assert trainer.unrolled_updates and trainer.update_calls == (4,) * 5  # K = 2 x 10 x 1
    assert run.state.replay.states.dtype == np.uint8
    result = run.run()
    record = read_metrics(path)[-1]
    assert (record["env_steps"], record["grad_steps"]) == (200, 120)
    assert np.isfinite(record["train/critic_loss"]) and np.isfinite(record["train/actor_loss"])
    assert record["train/episode_success"] >= 0.0  # whole episodes of 50 steps were collected
    assert 0.0 <= result["eval/success"] <= 1.0 and np.isfinite(result["eval/final_dist"])
