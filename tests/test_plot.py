"""`crl plot`: curves, bands and the summary table from run directories the test writes."""

import json
import os
import sys
import xml.etree.ElementTree as ET

import numpy as np
import pytest
from run_dirs import write_run  # tests/run_dirs.py

from contrastive_rl.cli import main
from contrastive_rl.config import ConfigError
from contrastive_rl.experiments import plot


@pytest.fixture
def sweep_dir(tmp_path):
    root = str(tmp_path / "sweep")
    write_run(root, "point_U", "contrastive_nce", 0, [(1000, 0.2), (2000, 0.6), (3000, 0.8)])
    write_run(root, "point_U", "contrastive_nce", 1, [(1000, 0.4), (2000, 0.6), (3000, 1.0)])
    write_run(root, "point_U", "contrastive_nce", 2, [(1000, 0.0), (2000, 0.9), (3000, 0.9)])
    write_run(root, "point_U", "gcbc", 0, [(1000, 0.1), (3000, 0.3)])  # 2000 interpolated: 0.2
    write_run(root, "point_U", "gcbc", 1, [(1000, 0.3), (2000, 0.4)])  # ends early
    write_run(root, "point_Small", "gcbc", 0, [(500, 0.5)])
    return root


def test_curves_are_the_seed_means_with_std_bands(sweep_dir):
    groups = plot.group_runs(plot.find_runs([sweep_dir]))
    assert list(groups) == ["point_Small", "point_U"]
    assert list(groups["point_U"]) == ["contrastive_nce", "gcbc"]
    data = plot.curves(groups, "eval/success")
    nce = data["point_U"]["contrastive_nce"]
    np.testing.assert_array_equal(nce.x, [1000, 2000, 3000])
    np.testing.assert_allclose(nce.mean, [0.2, 0.7, 0.9])
    std = [0.2, np.std([0.6, 0.6, 0.9], ddof=1), 0.1]  # sample std over the three seeds
    np.testing.assert_allclose(nce.high - nce.mean, std)
    np.testing.assert_allclose(nce.mean - nce.low, std)
    np.testing.assert_array_equal(nce.n, [3, 3, 3])
    gcbc = data["point_U"]["gcbc"]
    np.testing.assert_allclose(gcbc.mean, [0.2, 0.3, 0.3])  # (0.2 + 0.4) / 2 at 2000; one at 3000
    np.testing.assert_array_equal(gcbc.n, [2, 2, 1])
    by_time = plot.curves(groups, "eval/success", x="wall_time")["point_U"]["contrastive_nce"]
    np.testing.assert_allclose(by_time.x, [2.0, 4.0, 6.0])
    np.testing.assert_allclose(by_time.mean, nce.mean)


def test_bootstrap_band_brackets_the_mean(sweep_dir):
    groups = plot.group_runs(plot.find_runs([sweep_dir]))
    ci = plot.curves(groups, "eval/success", band="ci")["point_U"]["contrastive_nce"]
    assert np.all(ci.low <= ci.mean + 1e-12) and np.all(ci.mean <= ci.high + 1e-12)
    np.testing.assert_allclose(ci.low[0], 0.0)  # resampling can draw seed 2 (0.0) three times
    np.testing.assert_allclose(ci.high[0], 0.4)  # ... or seed 1 (0.4) three times
    assert ci.low[2] >= 0.8 and ci.high[2] <= 1.0


def test_summary_table_final_and_best(sweep_dir):
    groups = plot.group_runs(plot.find_runs([sweep_dir]))
    rows = {(r["env"], r["label"]): r for r in plot.summary_rows(groups, "eval/success")}
    nce = rows[("point_U", "contrastive_nce")]
    assert nce["seeds"] == 3 and nce["steps"] == (3000, 3000) and nce["unit"] == "env"
    np.testing.assert_allclose(nce["final"], (0.9, 0.1))
    np.testing.assert_allclose(nce["best"], (0.9, 0.1))
    gcbc = rows[("point_U", "gcbc")]
    np.testing.assert_allclose(gcbc["final"], (0.35, np.std([0.3, 0.4], ddof=1)))
    assert gcbc["steps"] == (2000, 3000)
    table = plot.markdown_table(list(rows.values()))
    assert "| point_U | contrastive_nce | 3 | 3,000 | 0.900 ± 0.100 | 0.900 ± 0.100 |" in table
    assert "| point_U | gcbc | 2 | 2,000-3,000 | 0.350 ± 0.071 |" in table
    assert "| point_Small | gcbc | 1 | 500 | 0.500 | 0.500 |" in table  # one seed: no spread


def test_summary_table_counts_gradient_steps_of_offline_runs(tmp_path):
    path = write_run(tmp_path, "point_U", "contrastive_nce", 0, [(0, 0.1)])
    with open(os.path.join(path, "metrics.jsonl"), "w") as f:  # as an offline run logs them
        for grad_steps, success in [(2500, 0.4), (5000, 0.7)]:
            f.write(json.dumps({"env_steps": 0, "grad_steps": grad_steps, "eval/success": success}))
            f.write("\n")
    rows = plot.summary_rows(plot.group_runs(plot.find_runs([str(tmp_path)])), "eval/success")
    assert rows[0]["steps"] == (5000, 5000) and rows[0]["unit"] == "grad"
    row = "| point_U | contrastive_nce | 1 | 5,000 grad | 0.700 | 0.700 |"
    assert row in plot.markdown_table(rows)


def test_offline_runs_are_drawn_against_gradient_steps_by_default(tmp_path, capsys):
    """An offline run logs every evaluation at 0 env steps: against env steps it would be one
    vertical line at 0. Its panel takes gradient steps; an online panel beside it keeps env
    steps; an explicit --x applies to every panel."""
    write_run(tmp_path, "point_U", "contrastive_nce", 0, [(1000, 0.2), (2000, 0.6)])
    for seed, successes in [(0, (0.4, 0.7)), (1, (0.2, 0.5))]:
        path = write_run(tmp_path, "offline_point_U", "contrastive_nce", seed, [], dataset="u.hdf5")
        with open(os.path.join(path, "metrics.jsonl"), "w") as f:  # as an offline run logs them
            for grad_steps, success in zip((2500, 5000), successes, strict=True):
                record = {"env_steps": 0, "grad_steps": grad_steps, "eval/success": success}
                f.write(json.dumps(record) + "\n")
    result = plot.plot_runs([str(tmp_path)], str(tmp_path / "out"))
    assert result["x"] == {"offline_point_U": "grad_steps", "point_U": "env_steps"}
    offline = result["curves"]["offline_point_U"]["contrastive_nce"]
    np.testing.assert_allclose(offline.x, [2500, 5000])
    np.testing.assert_allclose(offline.mean, [0.3, 0.6])
    np.testing.assert_allclose(result["curves"]["point_U"]["contrastive_nce"].x, [1000, 2000])
    forced = plot.plot_runs([str(tmp_path)], str(tmp_path / "out"), x="env_steps")
    assert forced["x"] == {"offline_point_U": "env_steps", "point_U": "env_steps"}
    np.testing.assert_allclose(forced["curves"]["offline_point_U"]["contrastive_nce"].x, [0])
    assert main(["plot", str(tmp_path), "--out", str(tmp_path / "cli")]) == 0
    assert os.path.isfile(tmp_path / "cli" / "curves.png")


def test_other_differing_fields_become_separate_lines(tmp_path):
    write_run(tmp_path, "point_U", "gcbc", 0, [(1000, 0.1)], batch_size=64)
    os.rename(tmp_path / "point_U-gcbc-seed0", tmp_path / "a")
    write_run(tmp_path, "point_U", "gcbc", 0, [(1000, 0.5)], batch_size=128)
    groups = plot.group_runs(plot.find_runs([str(tmp_path)]))
    assert list(groups["point_U"]) == ["gcbc, batch_size=128", "gcbc, batch_size=64"]


def test_an_empty_field_is_labelled_unset(tmp_path):
    write_run(tmp_path, "point_U", "contrastive_nce", 0, [(1000, 0.1)])
    os.rename(tmp_path / "point_U-contrastive_nce-seed0", tmp_path / "a")
    write_run(
        tmp_path, "point_U", "contrastive_nce", 0, [(1000, 0.5)], contrastive_loss="forward_infonce"
    )
    groups = plot.group_runs(plot.find_runs([str(tmp_path)]))
    assert list(groups["point_U"]) == [
        "contrastive_nce, contrastive_loss=forward_infonce",
        "contrastive_nce, contrastive_loss=unset",
    ]


def test_a_field_added_since_a_run_was_saved_is_not_a_difference(tmp_path):
    write_run(tmp_path, "point_U", "gcbc", 0, [(1000, 0.1)])
    os.rename(tmp_path / "point_U-gcbc-seed0", tmp_path / "old")
    config_file = tmp_path / "old" / "config.json"
    saved = json.loads(config_file.read_text())
    del saved["dataset"]  # written by a version before the field: it ran with the default
    config_file.write_text(json.dumps(saved))
    write_run(tmp_path, "point_U", "gcbc", 0, [(1000, 0.5)])
    groups = plot.group_runs(plot.find_runs([str(tmp_path)]))
    assert list(groups["point_U"]) == ["gcbc"] and len(groups["point_U"]["gcbc"]) == 2


def test_crl_plot_writes_png_svg_and_table(sweep_dir, tmp_path, capsys):
    import imageio.v3 as iio

    out = tmp_path / "figs"
    assert main(["plot", sweep_dir, "--out", str(out), "--band", "ci", "--title", "test"]) == 0
    printed = capsys.readouterr().out
    assert "| point_U | contrastive_nce | 3 | 3,000 | 0.900 ± 0.100 |" in printed
    image = iio.imread(out / "curves.png")
    assert image.ndim == 3 and image.shape[0] > 200 and image.shape[1] > 500  # two panels
    assert ET.parse(out / "curves.svg").getroot().tag.endswith("svg")
    assert (out / "curves.md").read_text() == printed.rstrip("\n") + "\n"
    assert main(["plot", os.path.join(sweep_dir, "point_Small-gcbc-seed0")]) == 0
    assert os.path.isfile(os.path.join(sweep_dir, "point_Small-gcbc-seed0", "plots", "curves.png"))


def test_errors_name_the_problem(tmp_path, monkeypatch):
    with pytest.raises(ConfigError, match="no run directory"):
        plot.plot_runs([str(tmp_path)], str(tmp_path / "out"))
    with pytest.raises(ConfigError, match="is not a directory"):
        plot.find_runs([str(tmp_path / "missing")])
    write_run(tmp_path, "point_U", "gcbc", 0, [(1000, 0.1)])
    with pytest.raises(ConfigError, match="has logged 'eval/nothing' yet"):
        plot.plot_runs([str(tmp_path)], str(tmp_path / "out"), metric="eval/nothing")
    monkeypatch.setitem(sys.modules, "matplotlib", None)
    with pytest.raises(ConfigError, match=r"pip install 'contrastive_rl\[plot\]'"):
        plot.plot_runs([str(tmp_path)], str(tmp_path / "out"))


def test_a_long_legend_goes_below_its_panel_and_the_image_grows_to_hold_it(tmp_path):
    """Five labels of several differing fields would cover the curves inside the panel."""
    import imageio.v3 as iio

    x = np.array([1000.0, 2000.0])
    line = plot.Curve(x, np.array([0.2, 0.8]), np.array([0.1, 0.7]), np.array([0.3, 0.9]), x * 0)
    long = {
        f"contrastive_nce, energy=l2, repr_dim={d}, twin_q=False, x={d}": line for d in range(5)
    }
    short = {"contrastive_nce": line, "gcbc": line}
    heights = {}
    for name, lines in (("long", long), ("short", short)):
        plot.draw({"point_U": lines}, str(tmp_path / name), x="env_steps")
        heights[name] = iio.imread(tmp_path / f"{name}.png").shape[0]
    assert heights["short"] == round(3.4 * 120)  # the panel alone, legend inside
    assert heights["long"] > heights["short"] + 100  # ten legend lines below the panel
    # with a panel below it (four envs: two rows of three), the legend stays inside
    panels = {"point_U": long, **{env: short for env in ("point_Small", "point_Cross", "point_4")}}
    plot.draw(panels, str(tmp_path / "rows"), x="env_steps")
    assert iio.imread(tmp_path / "rows.png").shape[0] == 2 * round(3.4 * 120)
