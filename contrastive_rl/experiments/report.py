"""``crl report``: a reproduction report (Markdown) from sweep directories and a claims file.

The claims file (TOML, e.g. ``sweeps/claims.toml``) lists the paper's claims a state task can
test, each with a rule that compares the *final* value of a metric (each seed's value, then
the mean over seeds; a seed's value is its last ``window`` evaluations averaged, or its
re-evaluation by ``crl eval`` as below)::

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

Claims name algorithms, so runs are matched to a claim by (env, algorithm), not by the plot's
line labels (which add fields such as ``twin_q`` that the algorithms' presets set). Runs of one
algorithm on one env that differ in a field other than bookkeeping (``BOOKKEEPING``: the budget,
evaluation and actor settings) are different configurations, and a claim on them is not
tested until one is chosen.

A claim **holds** or **does not hold** when every run it needs is there, is **not tested**
otherwise (the missing runs are named), or when its rule is ``untestable`` (its ``reason`` is
given, e.g. a baseline this project does not have). A verdict that holds only because nothing
learned the task at this budget (an ``at_most`` claim where no algorithm exceeds the threshold,
an ``among_best`` claim where the best is within the margin of zero) **holds vacuously**. The
report states the budget the runs had and which runs are still short of their planned steps,
links the figure ``crl plot`` draws of them, and gives the table of final and best values.

A seed's final value is its re-evaluation by ``crl eval`` of its newest checkpoint, when it has
one (``evaluations.jsonl``; see :func:`final_evaluation`): a final policy evaluated on
1,000 episodes says more than the training's last 200. The budget table names where each final
value comes from. A sweep directory's ``sweep.json`` names the runs it plans: those without a
directory yet are listed as not started.
"""

from __future__ import annotations

import os
import shlex
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
    "wins_and_loses": (
        "final(a) > final(b) + margin on at least `count` envs and "
        "final(a) < final(b) - margin on every other env"
    ),
    "at_least": "final(a) >= threshold on every env",
    "at_most": "final(a) <= threshold on every env",
    "best": "final(a) > final(x) + margin for every other algorithm x run on each env",
    "among_best": "final(a) >= max over algorithms - margin on every env",
    "untestable": "not testable with this project (see the reason)",
}
CLAIM_KEYS = ("id", "text", "source", "rule", "envs", "a", "b", "margin", "threshold", "count")
CLAIM_KEYS += ("reason",)
VERDICTS = ("holds", "holds vacuously", "does not hold", "not tested")
# Config fields that set a run's budget, evaluation or actors, not what it learns: runs of one
# algorithm that differ only in these are seeds of one configuration.
BOOKKEEPING = ("steps", "eval_every", "eval_episodes", "checkpoint_every_s", "devices")
BOOKKEEPING += ("num_actors", "actors", "ray_address", "worker_timeout_s")


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
    verdict: str  # one of VERDICTS
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


Table = dict[tuple[str, str], list[float]]  # (env, algorithm) -> each seed's final value


def final_evaluation(run: plot.RunData, metric: str) -> dict[str, Any] | None:
    """The run's re-evaluation (``crl eval``) of its newest policy that has ``metric``: at the
    steps of its last record or after them (a run stopped between evaluations checkpoints past
    its last record; one that trained on after an evaluation has a later record). Of those, the
    latest checkpoint, then the most episodes, then the latest record; None if there is none."""
    reached = reached_steps(run)
    newest = [
        (step_of(e), e["episodes"], i, e)
        for i, e in enumerate(run.evaluations)
        if all(_is_number(e.get(k)) for k in (metric, "episodes")) and step_of(e) >= reached
    ]
    return max(newest, key=lambda t: t[:3])[3] if newest else None


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def final_of(run: plot.RunData, metric: str, window: int) -> float | None:
    """A seed's final value: its re-evaluation at the steps reached, else the mean of its last
    ``window`` training evaluations."""
    evaluation = final_evaluation(run, metric)
    if evaluation is not None:
        return float(evaluation[metric])
    return plot.final_value(run, metric, window)


def final_source(group: Sequence[plot.RunData], metric: str, window: int) -> str:
    """Where the final values of a group of seeds come from, for the budget table."""
    sources = []
    for run in group:
        evaluation = final_evaluation(run, metric)
        if evaluation is not None:
            sources.append(
                f"crl eval at {step_of(evaluation):,}, {int(evaluation['episodes']):,} episodes"
            )
        else:
            episodes = int(run.config.get("eval_episodes", 0))
            last = "last evaluation" if window == 1 else f"last {window} evaluations"
            sources.append(f"training's {last}, {episodes:,} episodes")
    return "; ".join(dict.fromkeys(sources))


def finals(
    runs: Sequence[plot.RunData], metric: str, window: int
) -> tuple[Table, dict[tuple[str, str], list[str]]]:
    """``(table, variants)``: each seed's final value by (env, algorithm), and the (env,
    algorithm) pairs whose runs differ in a learning field (their labels), which a claim
    cannot choose between."""
    by: dict[tuple[str, str], list[plot.RunData]] = {}
    for run in runs:
        by.setdefault((run.config["env"], run.config["alg"]), []).append(run)
    table: Table = {}
    variants: dict[tuple[str, str], list[str]] = {}
    for key, group in sorted(by.items()):
        fields = [k for k in plot.label_fields(group) if k not in BOOKKEEPING]
        if fields:
            labels = {
                ", ".join(f"{k}={plot.short_value(r.config.get(k))}" for k in fields) for r in group
            }
            variants[key] = sorted(labels)
            continue
        values = [final_of(r, metric, window) for r in group]
        table[key] = [v for v in values if v is not None]
    return table, variants


def judge(
    claim: Claim, table: Table, variants: dict[tuple[str, str], list[str]] | None = None
) -> Verdict:
    """Apply the claim's rule to the seeds' final values (see :func:`finals`)."""
    variants = variants or {}
    if claim.rule == "untestable":
        return Verdict(claim, "not tested", [claim.reason or "no rule"])
    needed = [(env, alg) for env in claim.envs for alg in (claim.a, claim.b) if alg]
    if claim.rule in ("best", "among_best"):
        needed += [k for k in table if k[0] in claim.envs and k not in needed]
    ambiguous = [
        f"{alg} on {env} ({'; '.join(variants[(env, alg)])})"
        for env, alg in needed
        if (env, alg) in variants
    ]
    if ambiguous:
        return Verdict(
            claim,
            "not tested",
            [f"several configurations of {', '.join(ambiguous)}: give the report one of each"],
        )
    missing = [f"{alg} on {env}" for env, alg in needed if not table.get((env, alg))]
    if missing:
        return Verdict(claim, "not tested", [f"no evaluated runs of {', '.join(missing)}"])

    def mean(env: str, alg: str) -> float:
        return float(np.mean(table[(env, alg)]))

    def shown(env: str, alg: str) -> str:
        v = table[(env, alg)]
        return f"{alg} on {env}: {plot.mean_std_text(*plot.mean_std(v))} (n={len(v)})"

    measured = sorted({shown(env, alg) for env, alg in needed})
    m, envs, a, b = claim.margin, claim.envs, claim.a, claim.b
    others = {env: [alg for (e, alg) in table if e == env and alg != a] for env in envs}
    best = {env: max(mean(env, x) for x in [a, *others[env]]) for env in envs}
    vacuous: list[str] = []  # envs where the verdict says nothing: no algorithm learned
    if claim.rule == "greater":
        ok = all(mean(e, a) > mean(e, b) + m for e in envs)
    elif claim.rule == "greater_on_average":
        ok = float(np.mean([mean(e, a) - mean(e, b) for e in envs])) > m
    elif claim.rule in ("wins_on", "wins_and_loses"):
        wins = [e for e in envs if mean(e, a) > mean(e, b) + m]
        losses = [e for e in envs if mean(e, a) < mean(e, b) - m]
        ok = len(wins) >= claim.count
        if claim.rule == "wins_and_loses":
            ties = [e for e in envs if e not in wins and e not in losses]
            ok = ok and not ties
            measured.append(
                f"{a} wins on: {', '.join(wins) or 'none'} (needs {claim.count}); "
                f"loses on: {', '.join(losses) or 'none'}; "
                f"neither: {', '.join(ties) or 'none'}"
            )
    elif claim.rule == "at_least":
        ok = all(mean(e, a) >= claim.threshold for e in envs)
    elif claim.rule == "at_most":
        ok = all(mean(e, a) <= claim.threshold for e in envs)
        vacuous = [e for e in envs if best[e] <= claim.threshold]
    elif claim.rule == "best":
        ok = all(mean(e, a) > mean(e, x) + m for e in envs for x in others[e])
    else:  # among_best
        ok = all(mean(e, a) >= best[e] - m for e in envs)
        vacuous = [e for e in envs if best[e] <= m]
    verdict = "holds" if ok else "does not hold"
    if ok and vacuous:
        measured.append(
            f"vacuous on {', '.join(vacuous)}: no algorithm run there exceeds "
            f"{claim.threshold if claim.rule == 'at_most' else m}, so the task is not learned "
            "at this budget"
        )
        if len(vacuous) == len(envs):
            verdict = "holds vacuously"
    return Verdict(claim, verdict, measured)


def step_of(record: dict[str, Any]) -> int:
    """A record's env steps (gradient steps for offline runs, which collect none); -1 when it
    has neither as a number (a damaged record, which matches no step)."""
    step = record.get("env_steps") or record.get("grad_steps") or 0
    return int(step) if _is_number(step) else -1


def reached_steps(run: plot.RunData) -> int:
    """The env steps (gradient steps for offline runs) of the run's last record."""
    return step_of(run.records[-1]) if run.records else 0


def budget_rows(runs: Sequence[plot.RunData], metric: str, window: int) -> list[str]:
    """One Markdown row per (env, alg): seeds, preset, steps reached of those planned, the
    mean wall time of a run (its last record's ``wall_time``: training and evaluation, as the
    run measured it), the final value the claims use, and where it comes from."""
    by: dict[tuple[str, str], list[plot.RunData]] = {}
    for run in runs:
        by.setdefault((run.config["env"], run.config["alg"]), []).append(run)
    rows = []
    for (env, alg), group in sorted(by.items()):
        steps = sorted({reached_steps(r) for r in group if r.records})
        planned = sorted({int(r.config["steps"]) for r in group})
        minutes = [r.records[-1].get("wall_time", 0) / 60 for r in group if r.records]
        seeds = ", ".join(str(r.config["seed"]) for r in group)
        presets = ", ".join(sorted({r.config.get("preset", "") for r in group}))
        budget = ", ".join(f"{s:,}" for s in steps) or "none logged"
        wall = f"{np.mean(minutes):.1f}" if minutes else "-"
        of = ", ".join(f"{p:,}" for p in planned)
        values = [v for v in (final_of(r, metric, window) for r in group) if v is not None]
        final = plot.mean_std_text(*plot.mean_std(values)) if values else "-"
        source = final_source(group, metric, window)
        rows.append(
            f"| {env} | {alg} | {seeds} | {presets} | {budget} | {of} | {wall} | {final} "
            f"| {source} |"
        )
    return rows


def unfinished(runs: Sequence[plot.RunData]) -> list[str]:
    """The runs short of their planned steps (still running, or stopped to resume later), by
    their directory names (unique, where env, algorithm and seed are not in a grid)."""
    return [
        f"{os.path.basename(os.path.normpath(r.path))}: "
        f"{reached_steps(r):,} of {int(r.config['steps']):,}"
        for r in runs
        if reached_steps(r) < int(r.config["steps"])
    ]


def not_started(paths: Sequence[str]) -> list[str]:
    """The runs that a sweep directory among ``paths`` plans (its ``sweep.json``) and that have
    no directory there yet."""
    from contrastive_rl.experiments.spec import expand
    from contrastive_rl.experiments.sweep import SWEEP_FILE, inspect, read_spec

    sweeps = [path for path in paths if os.path.isfile(os.path.join(path, SWEEP_FILE))]
    return [
        run.name
        for path in sweeps
        for run in expand(read_spec(path))
        if inspect(run, path).state == "new"  # what `crl sweep` would start
    ]


def read_note(note: str) -> str:
    """The note's Markdown: ``@PATH`` reads it from a file, anything else is the text itself."""
    if not note.startswith("@"):
        return note
    try:
        with open(note[1:], encoding="utf-8") as f:
            return f.read().strip()
    except OSError as e:
        raise ConfigError(f"cannot read the note file {note[1:]}: {e}") from None


def command_line(
    paths: Sequence[str], claims_file: str, out: str, figures: str | None, note: str
) -> str:
    """The ``crl report`` command that writes this report again."""
    args = ["crl", "report", *paths, "--claims", claims_file, "--out", out]
    args += ["--figures", figures] if figures else []
    args += ["--note", note] if note else []
    return shlex.join(args)


def make_report(
    paths: Sequence[str],
    claims_file: str,
    out: str = "REPRODUCTION.md",
    figures: str | None = None,
    note: str = "",
) -> dict[str, Any]:
    """Write the report to ``out``, its figure to ``figures`` (default: beside it); ``note``
    (Markdown, or ``@PATH`` of a Markdown file) goes under the budget: the machine, its load,
    why this budget."""
    settings, claims = read_claims(claims_file)
    note_text = read_note(note)
    metric, window = settings["metric"], int(settings["window"])
    figure_dir = figures or os.path.join(os.path.dirname(os.path.abspath(out)), "figures")
    drawn = plot.plot_runs(paths, figure_dir, metric, name="reproduction", title=settings["title"])
    runs = plot.find_runs(paths)
    table, variants = finals(runs, metric, window)
    verdicts = [judge(c, table, variants) for c in claims]
    png = os.path.relpath(drawn["figures"][0], os.path.dirname(os.path.abspath(out)))
    to_come = unfinished(runs)
    planned = not_started(paths)
    lines = [
        f"# {settings['title']}",
        "",
        f"Generated by `{command_line(paths, claims_file, out, figures, note)}` on "
        f"{time.strftime('%Y-%m-%d')} from {len(runs)} run directories. A seed's final "
        f"value is its mean {metric} over its last {window} evaluation(s), or its "
        "re-evaluation by `crl eval` of its newest checkpoint (the budget table says which); "
        "`final` is the mean ± sample std over seeds, and every verdict applies its rule to "
        "those means, at the steps each run has reached.",
        "",
        "## Budget",
        "",
        "| env | algorithm | seeds | preset | steps reached | planned | wall time per run (min) "
        f"| final {metric} | final value from |",
        "|---|---|---|---|---|---|---|---|---|",
        *budget_rows(runs, metric, window),
        "",
        *(
            ["**Still to come** (short of their planned steps): " + "; ".join(to_come) + ".", ""]
            if to_come
            else []
        ),
        *(
            ["**Not started** (planned by the sweep): " + "; ".join(planned) + ".", ""]
            if planned
            else []
        ),
        *([note_text, ""] if note_text else []),
        "## Curves",
        "",
        f"![curves]({png})",
        "",
        "The training's own evaluations (the curves' last and best points; the claims use the "
        "final values of the budget table):",
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
    counts = {s: sum(v.verdict == s for v in verdicts) for s in VERDICTS}
    return {
        "report": out,
        "figures": drawn["figures"],
        "verdicts": verdicts,
        "counts": counts,
        "unfinished": to_come,
        "not_started": planned,
    }
