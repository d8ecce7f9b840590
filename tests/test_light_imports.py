"""Paths that do not train import no JAX and no simulator: the CLI's help and listing, config
validation, reading a run's metrics (issue: fast start-up)."""

import subprocess
import sys

import pytest

HEAVY = ("jax", "flax", "optax", "mujoco", "metaworld", "gymnasium", "gymnasium_robotics")

CHECK = """
import sys
{code}
heavy = sorted(m for m in {heavy!r} if m in sys.modules)
assert not heavy, f"imported {{heavy}}"
"""


@pytest.mark.parametrize(
    "code",
    [
        "from contrastive_rl.cli import main\ntry:\n    main(['-h'])\nexcept SystemExit:\n    pass",
        "from contrastive_rl.cli import main\nmain(['list'])",
        "from contrastive_rl.cli import main\ntry:\n    main(['train', '-h'])\nexcept SystemExit:\n"
        "    pass",
        "from contrastive_rl.cli import main\ntry:\n    main(['sweep', '-h'])\nexcept SystemExit:\n"
        "    pass",
        "import tempfile\nfrom contrastive_rl.cli import main\n"
        "main(['sweep', '--sweep_dir', tempfile.mkdtemp(), '--env', 'point_U', '--dry_run'])",
        "import contrastive_rl\ncontrastive_rl.make_config('point_FourRooms', preset='quick')",
        "import contrastive_rl.runs.rundir, contrastive_rl.envs\ncontrastive_rl.envs.ENV_STATUS",
        "import contrastive_rl.runs.config_files, contrastive_rl.runs.lock\n"
        "import contrastive_rl.runs.metrics, contrastive_rl.presets, contrastive_rl.validation",
    ],
    ids=[
        "help",
        "list",
        "train-help",
        "sweep-help",
        "sweep-dry-run",
        "config",
        "rundir",
        "run-files",
    ],
)
def test_no_heavy_import(code):
    result = subprocess.run(
        [sys.executable, "-c", CHECK.format(code=code, heavy=HEAVY)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr[-2000:]


def test_registry_names_match_the_mazes():
    from contrastive_rl.envs.point import WALLS
    from contrastive_rl.envs.registry import POINT_MAZES

    assert list(POINT_MAZES) == list(WALLS)
