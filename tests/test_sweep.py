"""`crl sweep`: grid expansion, names, spec files, skip/resume/failure logic, Ray, signals."""

import glob
import json
import os
import re
import signal
import subprocess
import sys
import time

import pytest

from contrastive_rl.cli import build_parser, main
from contrastive_rl.config import FIELDS, ConfigError, make_config
from contrastive_rl.experiments import spec as specs
from contrastive_rl.experiments import sweep
from contrastive_rl.experiments.commands import build_spec
from contrastive_rl.runs.metrics import read_metrics

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
FAKE = [sys.executable, os.path.join(ROOT, "tests", "fake_train.py")]
FAKE_ENV = {"PYTHONPATH": os.pathsep.join([ROOT, os.environ.get("PYTHONPATH", "")])}


def spec_of(**values):
    return specs.spec_from_dict({"envs": ["point_Small"], "preset": "debug", **values})


def test_grid_expands_in_order_with_readable_names():
    spec = spec_of(
        envs=["point_Small", "point_U"],
        algs=["contrastive_nce", "gcbc"],
        seeds=[0, 1],
        set={"steps": 5000},
        grid={"batch_size": [64, 128], "hidden_layer_sizes": [[32, 32]]},
    )
    runs = specs.expand(spec)
    assert len(runs) == 2 * 2 * 2 * 2
    assert [r.name for r in runs[:4]] == [
        "point_Small-contrastive_nce-seed0-batch_size=64-hidden_layer_sizes=32x32",
        "point_Small-contrastive_nce-seed1-batch_size=64-hidden_layer_sizes=32x32",
        "point_Small-contrastive_nce-seed0-batch_size=128-hidden_layer_sizes=32x32",
        "point_Small-contrastive_nce-seed1-batch_size=128-hidden_layer_sizes=32x32",
    ]
    assert runs[-1].name == "point_U-gcbc-seed1-batch_size=128-hidden_layer_sizes=32x32"
    config = runs[2].config
    assert (config.env, config.alg, config.seed, config.preset) == (
        "point_Small",
        "contrastive_nce",
        0,
        "debug",
    )
    assert (config.steps, config.batch_size, config.hidden_layer_sizes) == (5000, 128, (32, 32))
    assert config.eval_episodes == 100  # the debug preset under the overrides
    names = [r.name for r in specs.expand(spec_of(seeds=[3]))]
    assert names == ["point_Small-contrastive_nce-seed3"]


def test_train_flags_resolve_to_the_same_config():
    spec = spec_of(
        algs=["c_learning"],
        set={"entropy_coefficient": None, "target_entropy": -2.0, "learning_rate": 1e-3},
        grid={"hidden_layer_sizes": [[64, 32]], "layer_norm": [True], "backend": ["jax"]},
    )
    for run in specs.expand(spec):
        args, unknown = build_parser().parse_known_args(["train", *specs.train_flags(run.values)])
        assert not unknown
        assert make_config(**{k: v for k, v in vars(args).items() if k in FIELDS}) == run.config


def test_every_spec_file_in_the_repository_expands():
    files = sorted(glob.glob(os.path.join(ROOT, "sweeps", "*.toml")))
    specs_found = [f for f in files if not f.endswith("claims.toml")]
    assert {os.path.basename(f) for f in specs_found} >= {
        "fourrooms_algorithms.toml",
        "paper_state_tasks.toml",
        "report_cpu.toml",
        "contrastive_family.toml",
        "td_infonce_fourrooms.toml",
        "stitch_fourrooms.toml",
        "stitch_maze11x11.toml",
    }
    sizes = {os.path.basename(f): len(specs.expand(specs.load_spec(f))) for f in specs_found}
    assert sizes["fourrooms_algorithms.toml"] == 15
    assert sizes["paper_state_tasks.toml"] == 125
    assert sizes["stitch_fourrooms.toml"] == sizes["stitch_maze11x11.toml"] == 9
    assert (sizes["contrastive_family.toml"], sizes["td_infonce_fourrooms.toml"]) == (12, 3)
    figure = specs.load_spec(os.path.join(ROOT, "sweeps", "fourrooms_algorithms.toml"))
    configs = [r.config for r in specs.expand(figure)]
    assert {(c.steps, c.preset) for c in configs} == {(40_000, "quick")}


@pytest.mark.parametrize(
    "values, message",
    [
        ({"envs": ["point_Small"], "sets": {}}, "unknown key 'sets' (did you mean 'set'?)"),
        ({"envs": ["point_Small"], "set": {"step": 10}}, "unknown config field 'step'"),
        ({"envs": ["point_Small"], "set": {"seed": 3}}, "set cannot set 'seed'; use the spec's"),
        ({"envs": ["point_Small"], "grid": {"run_dir": ["x"]}}, "cannot set 'run_dir'"),
        ({"envs": ["point_Small"], "set": {"utd": 1}, "grid": {"utd": [2]}}, "both set and grid"),
        ({"envs": []}, "envs must be a non-empty list"),
        ({"algs": ["gcbc"]}, "'envs' is missing"),
        ({"envs": ["point_Smal"]}, "did you mean 'point_Small'"),
        ({"envs": ["point_Small"], "set": {"steps": -1}}, "point_Small-contrastive_nce-seed0: s"),
    ],
)
def test_bad_specs_are_refused_with_the_reason(values, message):
    with pytest.raises(ConfigError, match=re.escape(message)):
        specs.expand(specs.spec_from_dict(values))


def test_flags_override_a_spec_file(tmp_path):
    file = tmp_path / "figure.toml"
    file.write_text('envs = ["point_U"]\nalgs = ["gcbc"]\nseeds = [0, 1, 2]\n[set]\nsteps = 9000\n')
    argv = ["sweep", str(file), "--seeds", "5", "--set", "steps=4000", "eval_every=2000"]
    argv += ["--grid", "batch_size", "32", "64", "--grid", "entropy_coefficient", "auto"]
    args, _ = build_parser().parse_known_args(argv)
    spec = build_spec(args)
    assert (spec.envs, spec.algs, spec.seeds) == (("point_U",), ("gcbc",), (5,))
    assert spec.set == {"steps": 4000, "eval_every": 2000}
    assert spec.grid == {"batch_size": (32, 64), "entropy_coefficient": (None,)}
    with pytest.raises(ConfigError, match="--set takes FIELD=VALUE"):
        build_spec(build_parser().parse_known_args(["sweep", str(file), "--set", "steps"])[0])


# -- running sweeps (with tests/fake_train.py standing in for `crl train`) --------------------


def run_fake(spec, sweep_dir, monkeypatch, parallel=2, **env):
    for key, value in {**FAKE_ENV, **env}.items():
        monkeypatch.setenv(key, value)
    return sweep.run_sweep(spec, str(sweep_dir), parallel=parallel, train_command=FAKE)


def metrics(path):
    return [(r["env_steps"], r["eval/success"]) for r in read_metrics(path)]


def test_rerun_skips_finished_resumes_stopped_and_reports_failures(tmp_path, monkeypatch):
    spec = spec_of(seeds=[0, 1, 2], set={"steps": 500})
    alone, _ = run_fake(spec, tmp_path / "alone", monkeypatch)
    assert [o.status for o in alone] == ["finished"] * 3
    assert alone[2].final_success == pytest.approx(0.35)  # seed 2 at 500 steps

    # Interrupted: every run stops after 2 records; then seed 1 fails on the rerun.
    first, _ = run_fake(spec, tmp_path / "cut", monkeypatch, FAKE_STOP_AFTER="2")
    assert [o.status for o in first] == ["stopped"] * 3
    assert len(read_metrics(first[0].path)) == 2
    env = {"FAKE_STOP_AFTER": "0", "FAKE_FAIL_SEED": "1"}
    second, _ = run_fake(spec, tmp_path / "cut", monkeypatch, **env)
    assert [o.status for o in second] == ["finished", "failed", "finished"]
    assert second[1].error.startswith("exit status 2: crl train: error: fake failure of seed 1")
    assert second[1].log.endswith("logs/point_Small-contrastive_nce-seed1.log")
    assert "--resume" in open(second[0].log).read()  # the stopped run was resumed, not restarted
    third, _ = run_fake(spec, tmp_path / "cut", monkeypatch, FAKE_FAIL_SEED="")
    assert [o.status for o in third] == ["skipped", "finished", "skipped"]
    for a, b in zip(alone, third, strict=True):
        assert metrics(a.path) == metrics(b.path)  # the same runs, the same numbers
    record = json.load(open(tmp_path / "cut" / "sweep.json"))
    assert record["spec"]["seeds"] == [0, 1, 2]
    assert [r["status"] for r in record["runs"]] == ["skipped", "finished", "skipped"]
    text = sweep.summary(second)
    assert "FAILED point_Small-contrastive_nce-seed1: exit status 2" in text


def test_a_run_with_another_config_is_refused_and_left_alone(tmp_path, monkeypatch):
    run_fake(spec_of(set={"steps": 300}), tmp_path, monkeypatch)
    before = metrics(tmp_path / "point_Small-contrastive_nce-seed0")
    (outcome,), _ = run_fake(spec_of(set={"steps": 400}), tmp_path, monkeypatch)
    assert outcome.status == "failed"
    assert "holds a run with another config (steps: 300 -> 400)" in outcome.error
    assert metrics(tmp_path / "point_Small-contrastive_nce-seed0") == before


def test_a_training_that_cannot_start_fails_its_run_only(tmp_path):
    spec = spec_of(seeds=[0, 1])
    outcomes, _ = sweep.run_sweep(spec, str(tmp_path), train_command=[str(tmp_path / "nothing")])
    assert [o.status for o in outcomes] == ["failed", "failed"]
    assert "exit status 127: crl sweep: cannot start the training" in outcomes[1].error


def test_cli_exit_status_and_rerun_from_the_sweep_directory(tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(sweep, "TRAIN_COMMAND", tuple(FAKE))
    monkeypatch.setenv("PYTHONPATH", FAKE_ENV["PYTHONPATH"])
    monkeypatch.setenv("FAKE_FAIL_SEED", "1")
    argv = ["sweep", "--sweep_dir", str(tmp_path), "--env", "point_Small", "--seeds", "0", "1"]
    assert main([*argv, "--preset", "debug", "--set", "steps=200"]) == 1
    assert "1 finished, 1 failed" in capsys.readouterr().out
    monkeypatch.setenv("FAKE_FAIL_SEED", "")
    assert main(["sweep", "--sweep_dir", str(tmp_path), "--dry_run"]) == 0
    assert capsys.readouterr().out.split() == [
        "finished",
        "point_Small-contrastive_nce-seed0",
        "new",
        "point_Small-contrastive_nce-seed1",
    ]
    assert main(["sweep", "--sweep-dir", str(tmp_path)]) == 0  # the stored spec
    assert "1 skipped, 1 finished" in capsys.readouterr().out


def test_sigterm_stops_the_trainings_and_a_rerun_completes(tmp_path):
    code = (
        "import sys; from contrastive_rl.experiments import sweep, spec\n"
        "s = spec.spec_from_dict({'envs': ['point_Small'], 'seeds': [0, 1],\n"
        "                         'set': {'steps': 2000}})\n"
        f"out, sig = sweep.run_sweep(s, {str(tmp_path)!r}, parallel=1, train_command={FAKE!r})\n"
        "print([o.status for o in out]); sys.exit(128 + sig if sig else 0)\n"
    )
    env = {**os.environ, **FAKE_ENV, "FAKE_SLEEP": "0.3"}
    command = [sys.executable, "-c", code]
    proc = subprocess.Popen(command, env=env, stdout=subprocess.PIPE, text=True)
    jsonl = tmp_path / "point_Small-contrastive_nce-seed0" / "metrics.jsonl"
    deadline = time.monotonic() + 300
    while not (jsonl.exists() and jsonl.read_text()) and time.monotonic() < deadline:
        time.sleep(0.1)
    proc.send_signal(signal.SIGTERM)
    out, _ = proc.communicate(timeout=300)
    assert proc.returncode == 143
    assert out.splitlines()[-1] == "['stopped', 'not run']"  # one at a time: seed 1 waited
    steps = [r["env_steps"] for r in read_metrics(jsonl.parent)]
    assert 0 < steps[-1] < 2000
    env["FAKE_SLEEP"] = "0"
    rerun = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True)
    assert rerun.stdout.splitlines()[-1] == "['finished', 'finished']", rerun.stderr
    assert [r["env_steps"] for r in read_metrics(jsonl.parent)] == list(range(100, 2001, 100))


def test_sweep_on_a_local_ray_cluster(tmp_path, monkeypatch):
    ray = pytest.importorskip("ray")
    for key, value in FAKE_ENV.items():
        monkeypatch.setenv(key, value)
    monkeypatch.setenv("FAKE_FAIL_SEED", "0")
    ray.init(
        address="local",
        num_cpus=2,
        include_dashboard=False,
        log_to_driver=False,
        _node_ip_address="127.0.0.1",
    )
    try:
        spec = spec_of(seeds=[0, 1], set={"steps": 300})
        outcomes, stopped = sweep.run_sweep(
            spec, str(tmp_path), ray_address="auto", train_command=FAKE, resources={"cpus": 1}
        )
        assert ray.is_initialized()  # a cluster the sweep did not start is left running
    finally:
        ray.shutdown()
    assert stopped is None
    assert [o.status for o in outcomes] == ["failed", "finished"]
    assert "fake failure of seed 0" in outcomes[0].error
    assert metrics(outcomes[1].path) == [(100, 0.06), (200, 0.12), (300, 0.18)]


# -- real trainings ------------------------------------------------------------------------------

TINY = [
    "steps=1000",
    "num_envs=4",
    "batch_size=16",
    "min_replay_size=200",
    "hidden_layer_sizes=16,16",
    "repr_dim=8",
    "eval_every=500",
    "eval_episodes=20",
]
CLOCKS = ("wall_time", "time/env_steps_per_s", "time/grad_steps_per_s")


def numbers(path):
    return [{k: v for k, v in r.items() if k not in CLOCKS} for r in read_metrics(path)]


@pytest.mark.slow  # four tiny trainings and a video: a few minutes of CPU
def test_interrupted_sweep_rerun_equals_one_left_alone(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("PYTHONPATH", FAKE_ENV["PYTHONPATH"])
    grid = ["--env", "point_Small", "--seeds", "0", "1", "--preset", "debug", "--set", *TINY]
    alone, cut = str(tmp_path / "alone"), str(tmp_path / "cut")
    assert main(["sweep", "--sweep_dir", alone, *grid, "--parallel", "2"]) == 0

    command = [sys.executable, "-m", "contrastive_rl.cli", "sweep", "--sweep_dir", cut, *grid]
    proc = subprocess.Popen(command, stdout=subprocess.PIPE, text=True)
    first = os.path.join(cut, "point_Small-contrastive_nce-seed0", "metrics.jsonl")
    deadline = time.monotonic() + 600
    while not (os.path.exists(first) and open(first).read()) and time.monotonic() < deadline:
        time.sleep(0.2)
    proc.send_signal(signal.SIGTERM)  # mid-way through seed 0; seed 1 has not started
    out, _ = proc.communicate(timeout=600)
    assert proc.returncode == 143, out
    assert "stopped" in out and "not run" in out
    assert main(["sweep", "--sweep_dir", cut]) == 0  # rerun from the sweep's own record
    capsys.readouterr()
    for name in ("point_Small-contrastive_nce-seed0", "point_Small-contrastive_nce-seed1"):
        a, b = os.path.join(alone, name), os.path.join(cut, name)
        assert numbers(a) == numbers(b) and [r["env_steps"] for r in numbers(b)] == [600, 1000]
        stored = [json.load(open(os.path.join(p, "config.json"))) for p in (a, b)]
        assert {**stored[0], "run_dir": ""} == {**stored[1], "run_dir": ""}
    assert (
        "--resume"
        in open(os.path.join(cut, "logs", "point_Small-contrastive_nce-seed0.log")).read()
    )

    assert main(["plot", alone, cut, "--out", str(tmp_path / "plots")]) == 0
    assert "| point_Small | contrastive_nce | 4 | 1,000 |" in capsys.readouterr().out
    run = os.path.join(cut, "point_Small-contrastive_nce-seed0")
    assert main(["video", run, "--episodes", "1", "--out", str(tmp_path / "v.gif")]) == 0
    import imageio.v2 as imageio

    assert len(imageio.mimread(tmp_path / "v.gif")) == 51  # a trained run's policy, 50 steps


def test_an_offline_run_is_finished_at_its_gradient_steps(tmp_path):
    """Offline runs count gradient steps (their env_steps stay 0): the checkpoint's step."""
    from contrastive_rl.runs.files import DATA_FILE, META_FILE

    def checkpointed(step, progress):
        (tmp_path / DATA_FILE).write_bytes(b"x")
        meta = {"step": step, "progress": {**progress, "eval_pending": False}}
        (tmp_path / META_FILE).write_text(json.dumps(meta))
        return tmp_path

    offline = checkpointed(384, {"env_steps": 0, "grad_steps": 384})
    assert sweep.finished(str(offline), 384) and not sweep.finished(str(offline), 512)
    online = checkpointed(1000, {"env_steps": 1000, "grad_steps": 700})
    assert sweep.finished(str(online), 1000) and not sweep.finished(str(online), 1001)
