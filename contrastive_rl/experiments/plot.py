"""``crl plot``: success curves and a summary table from run or sweep directories.

One panel per environment, one line per algorithm (and per value of any other config field
that differs between the runs of that environment): the mean over seeds with a band, the
sample standard deviation as in the paper's figures (``--band std``) or a 95% bootstrap
confidence interval of the mean (``--band ci``), against env steps, gradient steps or wall time
(by default env steps, and gradient steps in a panel whose runs collect none: offline runs).
A seed's curve
is interpolated linearly between its evaluations; each point of the mean averages the seeds
that reached it. The table gives, per line, the final value (each seed's last evaluation) and
the best (each seed's highest), as mean +- standard deviation over seeds.

Reading runs needs only NumPy; drawing needs matplotlib (the optional extra ``plot``).
"""

from __future__ import annotations

import json
import os
import textwrap
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from contrastive_rl.config import ConfigError
from contrastive_rl.envs.registry import install_hint

X_AXES = {"env_steps": "env steps", "grad_steps": "gradient steps", "wall_time": "wall time (s)"}
AUTO_X = "auto"  # per panel: env steps, or gradient steps where the runs collect none (offline)
BANDS = ("std", "ci")
# Config fields that never make two runs different lines: the seed (averaged over), where the
# run is written or mirrored.
NOT_LABELS = ("seed", "run_dir", "env", "alg", "wandb", "wandb_project", "wandb_name", "wandb_mode")
BOOTSTRAP_SAMPLES = 1000


@dataclass
class RunData:
    """A run directory as plotting sees it: its config (as stored), metric records, and the
    re-evaluations of its checkpoints by ``crl eval``."""

    path: str
    config: dict[str, Any]
    records: list[dict[str, Any]]
    evaluations: list[dict[str, Any]] = field(default_factory=list)

    def series(self, metric: str, x: str) -> tuple[np.ndarray, np.ndarray]:
        """``(x, value)`` of every record that has ``metric``, in logged order."""
        rows = [(r[x], r[metric]) for r in self.records if r.get(metric) is not None and x in r]
        if not rows:
            return np.zeros(0), np.zeros(0)
        xs, ys = np.asarray(rows, np.float64).T
        return xs, ys


@dataclass
class Curve:
    """Mean over seeds at each x, the band, and how many seeds each point averages."""

    x: np.ndarray
    mean: np.ndarray
    low: np.ndarray
    high: np.ndarray
    n: np.ndarray


def read_run(path: str) -> RunData:
    from contrastive_rl.runs.config_files import CONFIG_FILE, with_defaults
    from contrastive_rl.runs.metrics import read_evaluations, read_metrics

    with open(os.path.join(path, CONFIG_FILE), encoding="utf-8") as f:
        config = with_defaults(json.load(f))  # fields added since: not a difference between runs
    return RunData(path, config, read_metrics(path), read_evaluations(path))


def find_runs(paths: Iterable[str]) -> list[RunData]:
    """Every run directory at or under ``paths`` (a directory with a config.json), sorted.

    Raises:
        ConfigError: a path that does not exist, or no run anywhere under the paths.
    """
    found: list[str] = []
    for path in paths:
        if not os.path.isdir(path):
            raise ConfigError(f"{path} is not a directory (give run or sweep directories)")
        for root, dirs, names in os.walk(path):
            if "config.json" in names:
                found.append(root)
                dirs.clear()  # a run directory holds no runs
            dirs.sort()
    if not found:
        raise ConfigError(f"no run directory (with a config.json) under {', '.join(paths)}")
    return [read_run(p) for p in sorted(dict.fromkeys(found))]


def label_fields(runs: Sequence[RunData]) -> list[str]:
    """The config fields besides the algorithm that differ between ``runs``."""
    keys = sorted({k for r in runs for k in r.config} - set(NOT_LABELS))
    return [k for k in keys if len({json.dumps(r.config.get(k)) for r in runs}) > 1]


def group_runs(runs: Sequence[RunData]) -> dict[str, dict[str, list[RunData]]]:
    """env -> line label -> its runs (the seeds); labels are the algorithm plus any other
    config field that differs within the environment, e.g. ``gcbc, batch_size=64``."""
    by_env: dict[str, list[RunData]] = {}
    for run in runs:
        by_env.setdefault(run.config["env"], []).append(run)
    groups: dict[str, dict[str, list[RunData]]] = {}
    for env, env_runs in by_env.items():
        fields = label_fields(env_runs)
        lines: dict[str, list[RunData]] = {}
        for run in env_runs:
            extra = [f"{k}={short_value(run.config.get(k))}" for k in fields]
            lines.setdefault(", ".join([run.config["alg"], *extra]), []).append(run)
        groups[env] = dict(sorted(lines.items()))
    return dict(sorted(groups.items()))


def short_value(value: Any) -> str:
    """A config value as a label shows it: ``256x256`` for a list, ``auto`` for None, ``unset``
    for an empty string (``contrastive_loss=""``: the algorithm's own)."""
    if isinstance(value, list):
        return "x".join(str(v) for v in value)
    if value == "":
        return "unset"
    return "auto" if value is None else str(value)


def _std(values: np.ndarray) -> np.ndarray:
    """Sample standard deviation over axis 0 of the finite entries (0 for a single seed)."""
    n = np.sum(np.isfinite(values), axis=0)
    with np.errstate(invalid="ignore", divide="ignore"):
        var = np.nansum((values - np.nanmean(values, axis=0)) ** 2, axis=0) / np.maximum(n - 1, 1)
    return np.sqrt(var)


def _bootstrap(values: np.ndarray, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """95% percentile bootstrap interval of the mean over axis 0, point by point."""
    low, high = np.empty(values.shape[1]), np.empty(values.shape[1])
    for j in range(values.shape[1]):
        v = values[np.isfinite(values[:, j]), j]
        means = rng.choice(v, (BOOTSTRAP_SAMPLES, len(v))).mean(axis=1)
        low[j], high[j] = np.percentile(means, [2.5, 97.5])
    return low, high


def curve(runs: Sequence[RunData], metric: str, x: str = "env_steps", band: str = "std") -> Curve:
    """The mean of the runs' ``metric`` against ``x`` with its band (see the module doc)."""
    series = [s for s in (r.series(metric, x) for r in runs) if len(s[0])]
    if not series:
        empty = np.zeros(0)
        return Curve(empty, empty, empty, empty, np.zeros(0, int))
    grid = np.unique(np.concatenate([xs for xs, _ in series]))
    values = np.full((len(series), len(grid)), np.nan)
    for i, (xs, ys) in enumerate(series):
        inside = (grid >= xs[0]) & (grid <= xs[-1])
        values[i, inside] = np.interp(grid[inside], xs, ys)
    mean = np.nanmean(values, axis=0)
    if band == "ci":
        low, high = _bootstrap(values, np.random.default_rng(0))
    else:
        std = _std(values)
        low, high = mean - std, mean + std
    return Curve(grid, mean, low, high, np.sum(np.isfinite(values), axis=0))


Groups = dict[str, dict[str, list[RunData]]]  # env -> line label -> the runs (seeds)


def default_axis(runs: Iterable[RunData], metric: str) -> str:
    """``grad_steps`` for runs whose every evaluation is at 0 env steps (offline runs collect
    none: against env steps all their points would fall on x = 0), else ``env_steps``."""
    xs = [r.series(metric, "env_steps")[0] for r in runs]
    xs = [x for x in xs if len(x)]
    return "grad_steps" if xs and not any(x.any() for x in xs) else "env_steps"


def panel_axes(groups: Groups, metric: str, x: str) -> dict[str, str]:
    """The x axis of each environment's panel: ``x``, or :func:`default_axis` for ``auto``."""
    return {
        env: default_axis([r for runs in lines.values() for r in runs], metric)
        if x == AUTO_X
        else x
        for env, lines in groups.items()
    }


def curves(
    groups: Groups, metric: str, x: str = "env_steps", band: str = "std"
) -> dict[str, dict[str, Curve]]:
    """:func:`curve` of every line of every environment: what the figure draws."""
    return {
        env: {label: curve(runs, metric, x, band) for label, runs in lines.items()}
        for env, lines in groups.items()
    }


# -- the table ----------------------------------------------------------------------------------


def final_value(run: RunData, metric: str, window: int = 1) -> float | None:
    """The mean of the run's last ``window`` evaluations of ``metric`` (None if it has none)."""
    _, ys = run.series(metric, "env_steps")
    return float(ys[-window:].mean()) if len(ys) else None


def mean_std(values: Sequence[float]) -> tuple[float, float]:
    """Mean and sample std; the std is NaN for a single seed (it has no spread to show)."""
    a = np.asarray(values, np.float64)
    return float(a.mean()), float(a.std(ddof=1)) if len(a) > 1 else float("nan")


def mean_std_text(mean: float, std: float) -> str:
    """``0.870 ± 0.049``, or ``0.060`` alone for one seed."""
    return f"{mean:.3f}" if np.isnan(std) else f"{mean:.3f} ± {std:.3f}"


def summary_rows(groups: Groups, metric: str, window: int = 1) -> list[dict[str, Any]]:
    """Per line: seeds, final and best ``metric`` (mean, std over seeds), final steps: env steps,
    or gradient steps for offline runs (which collect no env steps)."""
    rows = []
    for env, lines in groups.items():
        for label, runs in lines.items():
            done = [r for r in runs if final_value(r, metric) is not None]
            if not done:
                continue
            finals = [final_value(r, metric, window) for r in done]
            bests = [float(r.series(metric, "env_steps")[1].max()) for r in done]
            steps = [int(r.series(metric, "env_steps")[0][-1]) for r in done]
            unit = "env"
            if not any(steps):  # offline: the budget counts gradient steps
                steps = [int(r.series(metric, "grad_steps")[0][-1]) for r in done]
                unit = "grad"
            rows.append(
                {
                    "env": env,
                    "label": label,
                    "seeds": len(done),
                    "final": mean_std(finals),
                    "best": mean_std(bests),
                    "steps": (min(steps), max(steps)),
                    "unit": unit,
                }
            )
    return rows


def markdown_table(rows: Sequence[dict[str, Any]], metric: str = "eval/success") -> str:
    """The summary as a Markdown table (mean +- std over seeds)."""
    lines = [
        f"| env | algorithm | seeds | steps | final {metric} | best {metric} |",
        "|---|---|---|---|---|---|",
    ]
    for r in rows:
        lo, hi = r["steps"]
        steps = f"{lo:,}" if lo == hi else f"{lo:,}-{hi:,}"
        steps += " grad" if r["unit"] == "grad" else ""
        final, best = r["final"], r["best"]
        lines.append(
            f"| {r['env']} | {r['label']} | {r['seeds']} | {steps} | "
            f"{mean_std_text(*final)} | {mean_std_text(*best)} |"
        )
    return "\n".join(lines) + "\n"


# -- the figure ---------------------------------------------------------------------------------


def _steps_label(value: float, _position: int) -> str:
    """Step counts as 0, 500, 12.5k, 1M."""
    if abs(value) >= 1e6:
        return f"{value / 1e6:g}M"
    return f"{value / 1e3:g}k" if abs(value) >= 1e3 else f"{value:g}"


def import_pyplot() -> Any:
    """matplotlib's pyplot on the Agg backend (no display), or a ConfigError saying how to
    install it."""
    try:
        import matplotlib
    except ImportError:
        raise ConfigError(
            f"plots need the optional dependency matplotlib; install it with: "
            f"{install_hint('plot')}"
        ) from None
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


# Text lines a legend may hold inside its panel; a longer one goes below the panel.
LEGEND_LINES_INSIDE = 6


def draw(
    data: dict[str, dict[str, Curve]],
    out_base: str,
    metric: str = "eval/success",
    x: str | Mapping[str, str] = "env_steps",
    band: str = "std",
    title: str = "",
) -> list[str]:
    """One panel per environment; writes ``out_base``.png and .svg and returns their paths.

    ``x``: the axis of every panel, or per environment (:func:`panel_axes`)."""
    plt = import_pyplot()
    from matplotlib.ticker import FuncFormatter, MaxNLocator

    envs = list(data)
    legends_below: list[Any] = []
    cols = min(3, len(envs))
    rows = -(-len(envs) // cols)
    fig, axes = plt.subplots(rows, cols, figsize=(4.6 * cols, 3.4 * rows), squeeze=False)
    labels = sorted({label for lines in data.values() for label in lines})
    colors = {label: f"C{i % 10}" for i, label in enumerate(labels)}
    band_name = "± std over seeds" if band == "std" else "95% bootstrap CI"
    for index, (ax, env) in enumerate(zip(axes.flat, envs, strict=False)):
        for label, c in data[env].items():
            if not len(c.x):
                continue
            ax.plot(
                c.x,
                c.mean,
                color=colors[label],
                marker="o" if len(c.x) <= 40 else None,  # each evaluation; a lone one shows
                markersize=3,
                # Wrapped: a long label (many differing fields) would squeeze the panel away.
                label=textwrap.fill(f"{label} (n={int(c.n.max())})", width=48),
            )
            ax.fill_between(c.x, c.low, c.high, color=colors[label], alpha=0.2, linewidth=0)
        axis = x if isinstance(x, str) else x[env]
        ax.set_title(env)
        ax.set_xlabel(X_AXES[axis])
        ax.xaxis.set_major_locator(MaxNLocator(nbins=5))  # long step counts must not overlap
        if axis in ("env_steps", "grad_steps"):
            ax.xaxis.set_major_formatter(FuncFormatter(_steps_label))
        ax.set_ylabel(metric)
        if "success" in metric:
            ax.set_ylim(-0.02, 1.02)
        ax.grid(alpha=0.3)
        names = ax.get_legend_handles_labels()[1]
        nothing_below = index + cols >= len(envs)
        if nothing_below and sum(name.count("\n") + 1 for name in names) > LEGEND_LINES_INSIDE:
            # Below the panel: a tall legend inside would cover the curves it names.
            legend = ax.legend(fontsize=7, loc="upper center", bbox_to_anchor=(0.5, -0.22))
            legend.set_in_layout(False)  # the panel keeps its size; the saved image grows
            legends_below.append(legend)
        else:
            ax.legend(fontsize=7, loc="best")
    for ax in list(axes.flat)[len(envs) :]:
        ax.set_visible(False)
    suptitle = f"{title + ': ' if title else ''}mean over seeds, band {band_name}"
    # Wrapped to the figure's width: a one-panel figure would cut a long title at both ends.
    fig.suptitle(textwrap.fill(suptitle, width=int(4.6 * cols * 14)), fontsize=9)
    fig.tight_layout()
    os.makedirs(os.path.dirname(os.path.abspath(out_base)), exist_ok=True)
    written = []
    for ext in ("png", "svg"):
        path = f"{out_base}.{ext}"
        if legends_below:  # the image grows to hold them, beside everything else it holds
            extra = fig.get_default_bbox_extra_artists() + legends_below
            fig.savefig(path, dpi=120, bbox_inches="tight", bbox_extra_artists=extra)
        else:
            fig.savefig(path, dpi=120)
        written.append(path)
    plt.close(fig)
    return written


def plot_runs(
    paths: Sequence[str],
    out_dir: str,
    metric: str = "eval/success",
    x: str = AUTO_X,
    band: str = "std",
    name: str = "curves",
    title: str = "",
) -> dict[str, Any]:
    """Everything ``crl plot`` does: figure (PNG, SVG) and ``<name>.md`` table in ``out_dir``.

    ``x`` is one of ``X_AXES`` or ``auto`` (per panel: gradient steps for offline runs).
    Returns ``{"figures": [paths], "table": path, "markdown": text, "curves": {...},
    "x": {env: axis}}``.
    """
    if x not in X_AXES and x != AUTO_X:
        raise ConfigError(f"unknown x axis {x!r}; valid choices: {', '.join([AUTO_X, *X_AXES])}")
    if band not in BANDS:
        raise ConfigError(f"unknown band {band!r}; valid choices: {', '.join(BANDS)}")
    groups = group_runs(find_runs(paths))
    axes = panel_axes(groups, metric, x)
    data = {
        env: {label: curve(runs, metric, axes[env], band) for label, runs in lines.items()}
        for env, lines in groups.items()
    }
    if not any(len(c.x) for lines in data.values() for c in lines.values()):
        raise ConfigError(f"no run under {', '.join(paths)} has logged {metric!r} yet")
    figures = draw(data, os.path.join(out_dir, name), metric, axes, band, title)
    markdown = markdown_table(summary_rows(groups, metric), metric)
    table = os.path.join(out_dir, f"{name}.md")
    with open(table, "w", encoding="utf-8") as f:
        f.write(markdown)
    return {"figures": figures, "table": table, "markdown": markdown, "curves": data, "x": axes}
