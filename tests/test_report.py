"""`crl report`: claims judged on run directories with known final values."""

import os
import re
import shlex

import pytest
from run_dirs import write_run  # tests/run_dirs.py

from contrastive_rl.cli import main
from contrastive_rl.config import ConfigError
from contrastive_rl.experiments import plot, report

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

CLAIMS = """
title = "Test report"
window = 1

[[claim]]
id = "bin"
text = "NCE beats GCBC on sawyer_bin by 0.1"
source = "Fig. 2"
rule = "greater"
envs = ["sawyer_bin"]
a = "contrastive_nce"
b = "gcbc"
margin = 0.1

[[claim]]
id = "push"
text = "NCE beats GCBC on fetch_push by 0.3"
rule = "greater"
envs = ["fetch_push"]
a = "contrastive_nce"
b = "gcbc"
margin = 0.3

[[claim]]
id = "gcbc_fails"
text = "GCBC stays below 0.1 on sawyer_bin"
rule = "at_most"
envs = ["sawyer_bin"]
a = "gcbc"
threshold = 0.1

[[claim]]
id = "best"
text = "NCE is best on both"
rule = "best"
envs = ["sawyer_bin", "fetch_push"]
a = "contrastive_nce"

[[claim]]
id = "among"
text = "GCBC among the best on fetch_push within 0.3"
rule = "among_best"
envs = ["fetch_push"]
a = "gcbc"
margin = 0.3

[[claim]]
id = "average"
text = "NCE above GCBC on average"
rule = "greater_on_average"
envs = ["sawyer_bin", "fetch_push"]
a = "contrastive_nce"
b = "gcbc"

[[claim]]
id = "wins"
text = "GCBC wins somewhere"
rule = "wins_on"
envs = ["sawyer_bin", "fetch_push"]
a = "gcbc"
b = "contrastive_nce"

[[claim]]
id = "family"
text = "CPC on sawyer_bin"
rule = "greater"
envs = ["sawyer_bin"]
a = "contrastive_cpc"
b = "gcbc"

[[claim]]
id = "td3"
text = "Beats TD3+HER"
rule = "untestable"
reason = "no TD3+HER here"
"""


@pytest.fixture
def runs(tmp_path):
    root = str(tmp_path / "sweep")
    # final values: sawyer_bin NCE 0.5, 0.7 (mean 0.6), GCBC 0.0, 0.1 (0.05);
    #               fetch_push NCE 0.5, 0.6 (0.55), GCBC 0.3, 0.3 (0.3)
    for seed, (bin_nce, bin_gcbc, push_nce) in enumerate([(0.5, 0.0, 0.5), (0.7, 0.1, 0.6)]):
        write_run(root, "sawyer_bin", "contrastive_nce", seed, [(5000, 0.2), (10000, bin_nce)])
        write_run(root, "sawyer_bin", "gcbc", seed, [(5000, 0.3), (10000, bin_gcbc)])
        write_run(root, "fetch_push", "contrastive_nce", seed, [(5000, 0.1), (10000, push_nce)])
        write_run(root, "fetch_push", "gcbc", seed, [(5000, 0.1), (10000, 0.3)])
    claims = tmp_path / "claims.toml"
    claims.write_text(CLAIMS)
    return root, str(claims)


def test_verdicts_follow_the_rules(runs, tmp_path):
    root, claims = runs
    out = tmp_path / "report" / "REPRODUCTION.md"
    os.makedirs(out.parent)
    result = report.make_report([root], claims, str(out))
    verdicts = {v.claim.id: v.verdict for v in result["verdicts"]}
    assert verdicts == {
        "bin": "holds",  # 0.6 > 0.05 + 0.1
        "push": "does not hold",  # 0.55 is not > 0.3 + 0.3
        "gcbc_fails": "holds",  # 0.05 <= 0.1
        "best": "holds",
        "among": "holds",  # 0.3 >= 0.55 - 0.3
        "average": "holds",
        "wins": "does not hold",
        "family": "not tested",  # no contrastive_cpc runs
        "td3": "not tested",
    }
    assert result["counts"] == {
        "holds": 5,
        "holds vacuously": 0,
        "does not hold": 2,
        "not tested": 2,
    }
    text = out.read_text()
    assert "# Test report" in text
    assert "![curves](figures/reproduction.png)" in text
    assert os.path.isfile(out.parent / "figures" / "reproduction.png")
    # 20 s of wall time; planned: the config's default 1M steps, so every run is still to come
    assert (
        "| sawyer_bin | contrastive_nce | 0, 1 | paper | 10,000 | 1,000,000 | 0.3 | 0.600 ± 0.141 "
        "| training's last evaluation, 200 episodes |" in text
    )
    assert "**Still to come**" in text and "sawyer_bin-gcbc-seed1: 10,000 of 1,000,000" in text
    row = next(line for line in text.splitlines() if line.startswith("| NCE beats GCBC on sawyer"))
    assert "contrastive_nce on sawyer_bin: 0.600 ± 0.141 (n=2)" in row
    assert "gcbc on sawyer_bin: 0.050 ± 0.071 (n=2)" in row
    assert row.endswith("| **holds** |")
    assert "no evaluated runs of contrastive_cpc on sawyer_bin" in text
    assert re.search(r"Beats TD3\+HER .*no TD3\+HER here \| \*\*not tested\*\*", text)


def test_crl_report_command(runs, tmp_path, capsys):
    root, claims = runs
    out = tmp_path / "R.md"
    note = "Budget: 10k env steps on a 2-core CPU."
    assert main(["report", root, "--claims", claims, "--out", str(out), "--note", note]) == 0
    assert "5 holds, 0 holds vacuously, 2 does not hold, 2 not tested" in capsys.readouterr().out
    text = out.read_text()
    budget = text.index("## Budget")
    assert budget < text.index(note, budget) < text.index("## Curves")
    assert f"--note '{note}'`" in text  # the command that wrote it


def test_claims_file_errors(tmp_path):
    bad = tmp_path / "bad.toml"
    bad.write_text('[[claim]]\nid = "x"\ntext = "t"\nrule = "bigger"\n')
    with pytest.raises(ConfigError, match="unknown rule 'bigger'; valid choices: greater"):
        report.read_claims(str(bad))
    bad.write_text('[[claim]]\nid = "x"\ntext = "t"\nrule = "greater"\nenv = ["a"]\n')
    with pytest.raises(ConfigError, match="unknown key 'env' \\(did you mean 'envs'\\?\\)"):
        report.read_claims(str(bad))
    bad.write_text('[[claim]]\nid = "x"\ntext = "t"\nrule = "greater"\n')
    with pytest.raises(ConfigError, match="envs, a missing"):
        report.read_claims(str(bad))


def test_the_repository_claims_file_reads():
    settings, claims = report.read_claims(os.path.join(ROOT, "sweeps", "claims.toml"))
    assert settings["metric"] == "eval/success"
    assert {"sawyer_bin_only_nce", "fetch_push_nce_best"} <= {c.id for c in claims}
    assert all(c.rule in report.RULES for c in claims)


FAMILY_CLAIMS = """
[[claim]]
id = "nce_over_c"
text = "NCE above C-learning on average"
rule = "greater_on_average"
envs = ["fetch_reach", "fetch_push"]
a = "contrastive_nce"
b = "c_learning"

[[claim]]
id = "both_among_best"
text = "NCE + C-learning among the best"
rule = "among_best"
envs = ["fetch_reach", "fetch_push"]
a = "nce+c_learning"
margin = 0.1

[[claim]]
id = "cpc_wins"
text = "CPC beats NCE somewhere"
rule = "wins_on"
envs = ["fetch_reach", "fetch_push"]
a = "contrastive_cpc"
b = "contrastive_nce"

[[claim]]
id = "c_wins_and_loses"
text = "C-learning beats NCE on some tasks and is worse on the others"
rule = "wins_and_loses"
envs = ["fetch_reach", "fetch_push"]
a = "c_learning"
b = "contrastive_nce"

[[claim]]
id = "gcbc_no_progress"
text = "GCBC makes almost no progress on fetch_push"
rule = "at_most"
envs = ["fetch_push"]
a = "gcbc"
threshold = 0.1
"""


def write_family(root, finals_by_alg, env_steps=10000, **fields):
    """The five algorithms on fetch_reach and fetch_push, each config as its preset makes it
    (c_learning and nce+c_learning with twin critics), one seed, the given final values."""
    for alg, (reach, push) in finals_by_alg.items():
        write_run(root, "fetch_reach", alg, 0, [(env_steps, reach)], **fields)
        write_run(root, "fetch_push", alg, 0, [(env_steps, push)], **fields)


def verdicts_of(root, tmp_path, claims_text=FAMILY_CLAIMS):
    claims = tmp_path / "family.toml"
    claims.write_text(claims_text)
    result = report.make_report([root], str(claims), str(tmp_path / "R.md"))
    return {v.claim.id: v for v in result["verdicts"]}, result


def test_claims_on_all_five_algorithms_are_judged(tmp_path):
    """The algorithms' presets differ in twin_q, so the plot labels them 'c_learning,
    twin_q=True' etc.; claims name algorithms and must still find every run."""
    root = str(tmp_path / "sweep")
    write_family(
        root,
        {
            "contrastive_nce": (1.0, 0.5),
            "contrastive_cpc": (1.0, 0.6),
            "c_learning": (1.0, 0.3),
            "nce+c_learning": (0.95, 0.55),
            "gcbc": (0.9, 0.05),
        },
    )
    verdicts, _ = verdicts_of(root, tmp_path)
    got = {k: v.verdict for k, v in verdicts.items()}
    assert got == {
        "nce_over_c": "holds",  # mean(0.0, 0.2) > 0
        "both_among_best": "holds",  # 0.95 >= 1.0 - 0.1, 0.55 >= 0.6 - 0.1
        "cpc_wins": "holds",  # 0.6 > 0.5 on fetch_push
        "c_wins_and_loses": "does not hold",  # never wins, and ties on fetch_reach
        "gcbc_no_progress": "holds",  # 0.05 <= 0.1 while NCE reaches 0.5
    }
    assert "c_learning on fetch_push: 0.300 (n=1)" in verdicts["c_wins_and_loses"].measured
    half = verdicts["c_wins_and_loses"].measured[-1]
    assert half == (
        "c_learning wins on: none (needs 1); loses on: fetch_push; neither: fetch_reach"
    )


def test_a_claim_with_two_halves_checks_both(tmp_path):
    both = {"contrastive_nce": (0.5, 0.5), "c_learning": (0.7, 0.2)}
    root = str(tmp_path / "both")
    write_family(root, both)
    verdicts, _ = verdicts_of(root, tmp_path)
    assert verdicts["c_wins_and_loses"].verdict == "holds"
    only_wins = {"contrastive_nce": (0.5, 0.5), "c_learning": (0.7, 0.5)}
    root = str(tmp_path / "wins")
    write_family(root, only_wins)
    verdicts, _ = verdicts_of(root, tmp_path)
    assert (
        verdicts["c_wins_and_loses"].verdict == "does not hold"
    )  # ties on fetch_push: the second half fails
    assert verdicts["cpc_wins"].verdict == "not tested"  # no contrastive_cpc runs


def test_a_vacuous_claim_says_so(tmp_path):
    """'GCBC makes almost no progress' says nothing when no algorithm learned the task."""
    root = str(tmp_path / "sweep")
    write_family(root, {"contrastive_nce": (1.0, 0.06), "gcbc": (1.0, 0.05)})
    verdicts, result = verdicts_of(root, tmp_path)
    verdict = verdicts["gcbc_no_progress"]
    assert verdict.verdict == "holds vacuously"
    assert "vacuous on fetch_push: no algorithm run there exceeds 0.1" in verdict.measured[-1]
    assert result["counts"]["holds vacuously"] == 1
    assert "**holds vacuously**" in (tmp_path / "R.md").read_text()


def test_runs_of_one_algorithm_in_two_configurations_are_not_mixed(tmp_path):
    root = str(tmp_path / "sweep")
    write_run(root, "fetch_push", "gcbc", 0, [(10000, 0.05)])
    write_run(root, "fetch_push", "gcbc", 1, [(10000, 0.3)], batch_size=64)
    write_run(root, "fetch_push", "contrastive_nce", 0, [(10000, 0.5)], steps=10000)
    write_run(root, "fetch_push", "contrastive_nce", 1, [(20000, 0.7)], steps=20000)
    claims = FAMILY_CLAIMS.split("[[claim]]")
    verdicts, result = verdicts_of(root, tmp_path, "[[claim]]".join(claims[:1] + claims[-1:]))
    verdict = verdicts["gcbc_no_progress"]
    assert verdict.verdict == "not tested"
    assert (
        "several configurations of gcbc on fetch_push (batch_size=256; batch_size=64)"
        in (verdict.measured[0])
    )
    # The NCE runs differ only in their budget: seeds of one configuration, both finished.
    assert "fetch_push-contrastive_nce" not in " ".join(result["unfinished"])
    assert "fetch_push-gcbc-seed0: 10,000 of 1,000,000" in result["unfinished"]


def test_the_generated_by_line_regenerates_the_report(runs, tmp_path, monkeypatch):
    """The command in the report, run again, writes the same report (the note from a file)."""
    root, claims = runs
    monkeypatch.chdir(tmp_path)
    (tmp_path / "note.md").write_text("Measured on **2 cores**.\n")
    args = ["report", root, "--claims", claims, "--out", "out dir/R.md"]
    args += ["--figures", "figs", "--note", "@note.md"]
    os.makedirs("out dir")
    assert main(args) == 0
    text = (tmp_path / "out dir" / "R.md").read_text()
    assert "Measured on **2 cores**." in text
    command = re.search(r"Generated by `([^`]*)`", text).group(1)
    assert shlex.split(command) == ["crl", *args]
    os.remove("out dir/R.md")
    assert main(shlex.split(command)[1:]) == 0
    assert (tmp_path / "out dir" / "R.md").read_text() == text
    assert os.path.isfile(tmp_path / "figs" / "reproduction.png")


def test_a_missing_note_file_is_refused(runs, tmp_path):
    root, claims = runs
    with pytest.raises(ConfigError, match="cannot read the note file nowhere.md"):
        report.make_report([root], claims, str(tmp_path / "R.md"), note="@nowhere.md")


def test_a_final_policy_evaluation_gives_the_final_value(tmp_path):
    """`crl eval --episodes 1000` of the final checkpoint decides, not the training's last 200
    episodes; a re-evaluation of an earlier checkpoint, or of fewer episodes, does not."""
    from contrastive_rl.runs.metrics import record_evaluation

    root = str(tmp_path / "sweep")
    steps = 10000
    nce = write_run(root, "fetch_push", "contrastive_nce", 0, [(5000, 0.1), (steps, 0.5)])
    gcbc = write_run(root, "fetch_push", "gcbc", 0, [(5000, 0.1), (steps, 0.45)], steps=steps)
    record_evaluation(gcbc, {"env_steps": 5000, "eval/success": 0.9, "episodes": 1000})
    record_evaluation(gcbc, {"env_steps": steps, "eval/success": 0.08, "episodes": 1000})
    record_evaluation(gcbc, {"env_steps": steps, "eval/success": 0.9, "episodes": 100})
    record_evaluation(nce, {"env_steps": 5000, "eval/success": 0.0, "episodes": 1000})
    claims = FAMILY_CLAIMS.split("[[claim]]")
    verdicts, _ = verdicts_of(root, tmp_path, "[[claim]]".join(claims[:1] + claims[-1:]))
    verdict = verdicts["gcbc_no_progress"]  # gcbc's 0.08 (1,000 episodes), not its 0.45
    assert verdict.verdict == "holds" and "gcbc on fetch_push: 0.080 (n=1)" in verdict.measured
    text = (tmp_path / "R.md").read_text()
    row = "| fetch_push | gcbc | 0 | paper | 10,000 | 10,000 | 0.3 | 0.080 | crl eval at 10,000, "
    assert row in text
    # damaged records are passed over; of two with as many episodes, the later one counts
    with open(os.path.join(gcbc, "evaluations.jsonl"), "a") as f:
        f.write('{"env_steps": 10000, "eval/success": 0.7, "episodes": "many"}\n')
        f.write('{"env_steps": 10000, "eval/success": "high", "episodes": 5000}\n')
        f.write('{"env_steps": "end", "eval/success": 0.7, "episodes": 5000}\n')
    record_evaluation(gcbc, {"env_steps": steps, "eval/success": 0.09, "episodes": 1000})
    table, _ = report.finals(plot.find_runs([root]), "eval/success", 1)
    assert table[("fetch_push", "gcbc")] == [0.09]
    # NCE's only re-evaluation is of an earlier checkpoint: its final value stays 0.5
    assert table[("fetch_push", "contrastive_nce")] == [0.5]
    # stopped between evaluations (SIGTERM), a run checkpoints past its last record: the
    # evaluation of that checkpoint is of its newest policy
    record_evaluation(nce, {"env_steps": 10960, "eval/success": 0.4, "episodes": 1000})
    table, _ = report.finals(plot.find_runs([root]), "eval/success", 1)
    assert table[("fetch_push", "contrastive_nce")] == [0.4]
    verdicts_of(root, tmp_path, "[[claim]]".join(claims[:1] + claims[-1:]))
    assert "| 0.400 | crl eval at 10,960, 1,000 episodes |" in (tmp_path / "R.md").read_text()


def test_runs_a_sweep_plans_without_a_directory_are_not_started(tmp_path):
    from contrastive_rl.experiments.spec import SweepSpec
    from contrastive_rl.experiments.sweep import write_record

    root = str(tmp_path / "sweep")
    os.makedirs(root)
    spec = SweepSpec(("fetch_push", "sawyer_bin"), ("contrastive_nce", "gcbc"), (0,))
    write_record(root, spec, [])
    write_run(root, "fetch_push", "contrastive_nce", 0, [(10000, 0.5)], steps=10000)
    write_run(root, "fetch_push", "gcbc", 0, [(10000, 0.1)])
    (tmp_path / "claims.toml").write_text(CLAIMS)
    result = report.make_report([root], str(tmp_path / "claims.toml"), str(tmp_path / "R.md"))
    assert result["not_started"] == ["sawyer_bin-contrastive_nce-seed0", "sawyer_bin-gcbc-seed0"]
    assert result["unfinished"] == ["fetch_push-gcbc-seed0: 10,000 of 1,000,000"]
    text = (tmp_path / "R.md").read_text()
    assert "**Not started** (planned by the sweep): sawyer_bin-contrastive_nce-seed0; " in text


def test_keep_metrics_copies_what_the_report_reads_and_not_the_checkpoint(tmp_path):
    """scripts/keep_metrics.sh: a sweep's runs outside the repository, their metrics in it."""
    import subprocess

    from contrastive_rl.experiments.spec import SweepSpec
    from contrastive_rl.experiments.sweep import write_record
    from contrastive_rl.runs.metrics import record_evaluation

    src, dest = tmp_path / "state", tmp_path / "kept"
    os.makedirs(src)
    write_record(str(src), SweepSpec(("fetch_push", "sawyer_bin"), ("gcbc",)), [])
    run = write_run(str(src), "fetch_push", "gcbc", 0, [(10000, 0.1)], steps=10000)
    record_evaluation(run, {"env_steps": 10000, "eval/success": 0.08, "episodes": 1000})
    (src / "fetch_push-gcbc-seed0" / "checkpoint.msgpack").write_bytes(b"\0" * 64)
    script = os.path.join(ROOT, "scripts", "keep_metrics.sh")
    subprocess.run(["bash", script, str(src), str(dest)], check=True, capture_output=True)
    kept = sorted(os.listdir(dest / "fetch_push-gcbc-seed0"))
    assert kept == ["config.json", "evaluations.jsonl", "metrics.jsonl"]
    assert (dest / "sweep.json").read_text() == (src / "sweep.json").read_text()
    (tmp_path / "claims.toml").write_text(CLAIMS)
    result = report.make_report([str(dest)], str(tmp_path / "claims.toml"), str(tmp_path / "R.md"))
    assert result["not_started"] == ["sawyer_bin-gcbc-seed0"]
    assert "crl eval at 10,000, 1,000 episodes" in (tmp_path / "R.md").read_text()
    # an evaluation gone from the run (e.g. --overwrite) goes from the copy too
    os.remove(os.path.join(run, "evaluations.jsonl"))
    subprocess.run(["bash", script, str(src), str(dest)], check=True, capture_output=True)
    assert sorted(os.listdir(dest / "fetch_push-gcbc-seed0")) == ["config.json", "metrics.jsonl"]
