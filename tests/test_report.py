"""`crl report`: claims judged on run directories with known final values."""

import os
import re

import pytest
from run_dirs import write_run  # tests/run_dirs.py

from contrastive_rl.cli import main
from contrastive_rl.config import ConfigError
from contrastive_rl.experiments import report

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
    assert result["counts"] == {"holds": 5, "does not hold": 2, "not tested": 2}
    text = out.read_text()
    assert "# Test report" in text
    assert "![curves](figures/reproduction.png)" in text
    assert os.path.isfile(out.parent / "figures" / "reproduction.png")
    assert "| sawyer_bin | contrastive_nce | 0, 1 | paper | 10,000 | 0.3 |" in text  # 20 s
    row = next(line for line in text.splitlines() if line.startswith("| NCE beats GCBC on sawyer"))
    assert "contrastive_nce on sawyer_bin: 0.600 ± 0.141 (n=2)" in row
    assert "gcbc on sawyer_bin: 0.050 ± 0.071 (n=2)" in row
    assert row.endswith("| **holds** |")
    assert "no finished runs of contrastive_cpc on sawyer_bin" in text
    assert re.search(r"Beats TD3\+HER .*no TD3\+HER here \| \*\*not tested\*\*", text)


def test_crl_report_command(runs, tmp_path, capsys):
    root, claims = runs
    out = tmp_path / "R.md"
    note = "Budget: 10k env steps on a 2-core CPU."
    assert main(["report", root, "--claims", claims, "--out", str(out), "--note", note]) == 0
    assert "5 holds, 2 does not hold, 2 not tested" in capsys.readouterr().out
    text = out.read_text()
    assert text.index(note) > text.index("## Budget") and text.index(note) < text.index("## Curves")


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
