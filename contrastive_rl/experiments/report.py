"""``crl report``: a reproduction report (Markdown) from sweep directories and a claims file.

The claims file (TOML, e.g. ``sweeps/claims.toml``) lists the paper's claims a state task can
test, each with a rule that compares the *final* value of a metric (each seed's last
``window`` evaluations averaged, then the mean over seeds)::

    title = "Reproduction"
    metric = "eval/success"
    window = 1
    [[claim]]
    id = "sawyer_bin"
    text = "Only contrastive RL (NCE) solves sawyer_bin; GCBC makes no progress"
    source = "paper Fig. 2"
    rule = "greater"          # see RULES
    envs = ["sawyer_bin"]
    a = "contrastive_nce"
    b = "gcbc"
    margin = 0.1

A claim is **holds** or **does not hold** when every run it needs is there, **not tested**
otherwise (the missing runs are named), or when its rule is ``untestable`` (its ``reason`` is
given, e.g. a baseline this project does not have). The report states the budget the runs had,
links the figure ``crl plot`` draws of them, and gives the table of final and best values.
"""

from __future__ import annotations

import os
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from contrastive_rl.config import ConfigError, closest
from contrastive_rl.experiments import plot

RULES = {
    "greater": "final(a) > final(b) + margin on every env",
    "greater_on_average": "mean over envs of final(a) - final(b) > margin",
    "wins_on": "final(a) > final(b) + margin on at least `count` envs",
    "at_least": "final(a) >= threshold on every env",
    "at_most": "final(a) <= threshold on every env",
    "best": "final(a) > final(x) + margin for every other algorithm x run on each env",
    "among_best": "final(a) >= max over algorithms - margin on every env",
    "untestable": "not testable with this project (see the reason)",
}
CLAIM_KEYS = ("id", "text", "source", "rule", "envs", "a", "b", "margin", "threshold", "count")
CLAIM_KEYS += ("reason",)


@dataclass
class Claim:
    id: str
    text: str
    rule: str
    envs: tuple[str, ...] = ()
    a: str = ""
    b: str = ""
    margin: float = 0.0
    threshold: float = 0.0
    count: int = 1
    source: str = ""
    reason: str = ""


@dataclass
class Verdict:
    claim: Claim
    verdict: str  # holds | does not hold | not tested
    measured: list[str] = field(default_factory=list)


def read_claims(path: str) -> tuple[dict[str, Any], list[Claim]]:
    """``(settings, claims)`` of a claims TOML file (settings: title, metric, window)."""
    import tomllib

    try:
        with open(path, "rb") as f:
            data = tomllib.load(f)
    except (OSError, ValueError) as e:
        raise ConfigError(f"cannot read the claims file {path}: {e}") from None
    claims = []
    for i, raw in enumerate(data.pop("claim", [])):
        where = f"{path}: claim {raw.get('id', i + 1)}"
        unknown = [k for k in raw if k not in CLAIM_KEYS]
        if unknown:
            raise ConfigError(
                f"{where}: unknown key {unknown[0]!r}{closest(unknown[0], CLAIM_KEYS)}"
            )
        if raw.get("rule") not in RULES:
            raise ConfigError(
                f"{where}: unknown rule {raw.get('rule')!r}; valid choices: {', '.join(RULES)}"
            )
        missing = [k for k in ("id", "text") if k not in raw]
        if raw["rule"] != "untestable":
            missing += [k for k in ("envs", "a") if k not in raw]
        if missing:
            raise ConfigError(f"{where}: {', '.join(missing)} missing")
        claims.append(Claim(**{**raw, "envs": tuple(raw.get("envs", ()))}))
    settings = {"title": "Reproduction report", "metric": "eval/success", "window": 1, **data}
    return settings, claims


def finals(groups: plot.Groups, metric: str, window: int) -> dict[tuple[str, str], list[float]]:
    """(env, line label) -> each seed's final value."""
    out: dict[tuple[str, str], list[float]] = {}
    for env, lines in groups.items():
        for label, runs in lines.items():
            values = [plot.final_value(r, metric, window) for r in runs]
            out[(env, label)] = [v for v in values if v is not None]
    return out


def judge(claim: Claim, table: dict[tuple[str, str], list[float]]) -> Verdict:
    """Apply the claim's rule to the seeds' final values (``table``: see :func:`finals`)."""
    if claim.rule == "untestable":
        return Verdict(claim, "not tested", [claim.reason or "no rule"])
    needed = [(env, alg) for env in claim.envs for alg in (claim.a, claim.b) if alg]
    if claim.rule in ("best", "among_best"):
        needed += [k for k in table if k[0] in claim.envs]
    missing = [f"{alg} on {env}" for env, alg in needed if not table.get((env, alg))]
    if missing:
        return Verdict(claim, "not tested", [f"no finished runs of {', '.join(missing)}"])

    def mean(env: str, alg: str) -> float:
        return float(np.mean(table[(env, alg)]))

    def shown(env: str, alg: str) -> str:
        v = table[(env, alg)]
        std = np.std(v, ddof=1) if len(v) > 1 else float("nan")
        return f"{alg} on {env}: {plot.mean_std_text(float(np.mean(v)), std)} (n={len(v)})"

    measured = sorted({shown(env, alg) for env, alg in needed})
    m, envs = claim.margin, claim.envs
    others = {env: [alg for (e, alg) in table if e == env and alg != claim.a] for env in envs}
    if claim.rule == "greater":
        ok = all(mean(e, claim.a) > mean(e, claim.b) + m for e in envs)
    elif claim.rule == "greater_on_average":
        ok = float(np.mean([mean(e, claim.a) - mean(e, claim.b) for e in envs])) > m
    elif claim.rule == "wins_on":
        ok = sum(mean(e, claim.a) > mean(e, claim.b) + m for e in envs) >= claim.count
    elif claim.rule == "at_least":
        ok = all(mean(e, claim.a) >= claim.threshold for e in envs)
    elif claim.rule == "at_most":
        ok = all(mean(e, claim.a) <= claim.threshold for e in envs)
    elif claim.rule == "best":
        ok = all(mean(e, claim.a) > mean(e, x) + m for e in envs for x in others[e])
    else:  # among_best
        ok = all(
            mean(e, claim.a) >= max(mean(e, x) for x in [claim.a, *others[e]]) - m for e in envs
        )
    return Verdict(claim, "holds" if ok else "does not hold", measured)


def budget_rows(runs: Sequence[plot.RunData]) -> list[str]:
    """One Markdown row per (env, alg): seeds, preset, env steps and the mean wall time of a
    run (its last record's ``wall_time``: training and evaluation, as the run measured it)."""
    by: dict[tuple[str, str], list[plot.RunData]] = {}
    for run in runs:
        by.setdefault((run.config["env"], run.config["alg"]), []).append(run)
    rows = []
    for (env, alg), group in sorted(by.items()):
        steps = sorted({int(r.records[-1]["env_steps"]) for r in group if r.records})
        minutes = [r.records[-1].get("wall_time", 0) / 60 for r in group if r.records]
        seeds = ", ".join(str(r.config["seed"]) for r in group)
        presets = ", ".join(sorted({r.config.get("preset", "") for r in group}))
        budget = ", ".join(f"{s:,}" for s in steps) or "none logged"
        wall = f"{np.mean(minutes):.1f}" if minutes else "-"
        rows.append(f"| {env} | {alg} | {seeds} | {presets} | {budget} | {wall} |")
    return rows


def make_report(
    paths: Sequence[str],
    claims_file: str,
    out: str = "REPRODUCTION.md",
    figures: str | None = None,
    note: str = "",
) -> dict[str, Any]:
    """Write the report to ``out``, its figure to ``figures`` (default: beside it); ``note``
    (Markdown) goes under the budget: the machine, its load, why this budget."""
    settings, claims = read_claims(claims_file)
    metric, window = settings["metric"], int(settings["window"])
    figures = figures or os.path.join(os.path.dirname(os.path.abspath(out)), "figures")
    drawn = plot.plot_runs(paths, figures, metric, name="reproduction", title=settings["title"])
    runs = plot.find_runs(paths)
    table = finals(plot.group_runs(runs), metric, window)
    verdicts = [judge(c, table) for c in claims]
    png = os.path.relpath(drawn["figures"][0], os.path.dirname(os.path.abspath(out)))
    lines = [
        f"# {settings['title']}",
        "",
        f"Generated by `crl report {' '.join(paths)} --claims {claims_file}` on "
        f"{time.strftime('%Y-%m-%d')} from {len(runs)} run directories. `final` is each "
        f"seed's mean {metric} over its last {window} evaluation(s), then the mean ± sample "
        "std over seeds; every verdict applies its rule to those means.",
        "",
        "## Budget",
        "",
        "| env | algorithm | seeds | preset | env steps | wall time per run (min) |",
        "|---|---|---|---|---|---|",
        *budget_rows(runs),
        "",
        *([note, ""] if note else []),
        "## Curves",
        "",
        f"![curves]({png})",
        "",
        drawn["markdown"],
        "## Claims",
        "",
        "| claim | source | rule | measured | verdict |",
        "|---|---|---|---|---|",
    ]
    for v in verdicts:
        c = v.claim
        rule = f"{c.rule}: {RULES[c.rule]}" + (f" (margin {c.margin})" if c.margin else "")
        lines.append(
            f"| {c.text} | {c.source} | {rule} | {'<br>'.join(v.measured)} | **{v.verdict}** |"
        )
    text = "\n".join(lines) + "\n"
    with open(out, "w", encoding="utf-8") as f:
        f.write(text)
    counts = {s: sum(v.verdict == s for v in verdicts) for s in ("holds", "does not hold")}
    counts["not tested"] = len(verdicts) - sum(counts.values())
    return {"report": out, "figures": drawn["figures"], "verdicts": verdicts, "counts": counts}
