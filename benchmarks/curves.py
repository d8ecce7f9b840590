"""Success against wall time and gradient steps from run directories, as a Markdown table.

    python benchmarks/curves.py runs/quick-s0 runs/quick-s1 runs/quick-s2 --minutes 2.5 5 7.5 10

Each row is one run; the value at a mark is the last evaluation logged at or before it. The last
row is the median over the runs.
"""

from __future__ import annotations

import argparse
import statistics

from contrastive_rl.runs.metrics import read_metrics


def at_mark(records: list[dict], seconds: float) -> dict | None:
    before = [r for r in records if r["wall_time"] <= seconds]
    return before[-1] if before else None


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("run_dirs", nargs="+")
    parser.add_argument("--minutes", type=float, nargs="+", default=[2.5, 5.0, 7.5, 10.0])
    parser.add_argument("--key", default="eval/success")
    args = parser.parse_args()
    marks = [m * 60 for m in args.minutes]
    header = [f"{m:g} min" for m in args.minutes] + ["final", "env steps", "grad steps", "wall s"]
    print("| run | " + " | ".join(header) + " |")
    print("|---" * (len(header) + 1) + "|")
    columns: list[list[float]] = [[] for _ in header]
    for path in args.run_dirs:
        records = read_metrics(path)
        last = records[-1]
        cells = []
        for i, s in enumerate(marks):
            r = at_mark(records, s)
            value = r[args.key] if r else float("nan")
            columns[i].append(value)
            cells.append(f"{value:.3f}")
        tail = [last[args.key], last["env_steps"], last["grad_steps"], last["wall_time"]]
        for j, value in enumerate(tail):
            columns[len(marks) + j].append(value)
        cells += [f"{tail[0]:.3f}", f"{tail[1]}", f"{tail[2]}", f"{tail[3]:.0f}"]
        print(f"| {path} | " + " | ".join(cells) + " |")
    if len(args.run_dirs) > 1:
        medians = [statistics.median(c) for c in columns]
        cells = [f"{m:.3f}" for m in medians[: len(marks) + 1]]
        cells += [f"{medians[-3]:.0f}", f"{medians[-2]:.0f}", f"{medians[-1]:.0f}"]
        print("| median | " + " | ".join(cells) + " |")


if __name__ == "__main__":
    main()
