"""A core-only install (a fresh virtual environment, no extra) trains the point mazes and
refuses a simulator task with the command that installs its extra.

Builds the package from this checkout and installs it with the tested constraints, so it also
checks that the wheel carries every module. Needs the package index (or pip's cache); set
CRL_SKIP_INSTALL_TEST=1 to skip it offline. It takes minutes (an install of JAX), so it is
marked ``install``: CI runs it as its own step (``./test.sh -m install``).
"""

import json
import os
import shutil
import subprocess
import sys

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SIMULATORS = ("mujoco", "metaworld", "gymnasium", "gymnasium-robotics", "mujoco-mjx")


@pytest.mark.install
@pytest.mark.skipif(os.environ.get("CRL_SKIP_INSTALL_TEST") == "1", reason="asked to skip")
def test_core_install(tmp_path):
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, timeout=300)
    python = str(venv / "bin" / "python")
    source = tmp_path / "source"  # a copy, so the build leaves nothing in the checkout
    skip_anywhere = shutil.ignore_patterns(".*", "build", "*.egg-info")

    def skip(directory: str, names: list[str]) -> set[str]:
        # runs/ at the top holds training runs; contrastive_rl/runs/ is a package of the wheel
        top = os.path.samefile(directory, ROOT)
        return skip_anywhere(directory, names) | ({"runs"} & set(names) if top else set())

    shutil.copytree(ROOT, source, ignore=skip)
    install = subprocess.run(
        [python, "-m", "pip", "install", "--quiet", "-c", "constraints.txt", "."],
        cwd=source,
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert install.returncode == 0, install.stderr[-3000:]
    listed = subprocess.run(
        [python, "-m", "pip", "list", "--format=json"], capture_output=True, text=True, check=True
    )
    names = {p["name"].lower() for p in json.loads(listed.stdout)}
    assert not names & set(SIMULATORS), names & set(SIMULATORS)

    crl = str(venv / "bin" / "crl")
    run = str(tmp_path / "run")
    trained = subprocess.run(
        [crl, "train", "--env", "point_Small", "--preset", "debug", "--steps", "4800"]
        + ["--eval_episodes", "20", "--run_dir", run, "--no-progress"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert trained.returncode == 0, trained.stderr[-3000:]
    assert 0.0 <= json.loads(trained.stdout)["eval/success"] <= 1.0
    assert os.path.isfile(os.path.join(run, "checkpoint.msgpack"))

    refused = subprocess.run(
        [crl, "train", "--env", "sawyer_push"], cwd=tmp_path, capture_output=True, text=True
    )
    assert refused.returncode == 2
    assert "pip install 'contrastive_rl[sawyer]'" in refused.stderr
    assert "metaworld" in refused.stderr
    assert not os.path.exists(tmp_path / "runs")  # nothing written for a refused run
