"""The experiment verbs of ``crl``: ``sweep``, ``plot``, ``video``, ``report`` (flags, handlers).

Building these parsers imports nothing heavy, so ``crl -h`` stays fast; each handler imports
what its command needs.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Callable
from typing import Any

from contrastive_rl.config import ConfigError

Handler = Callable[[argparse.Namespace], int]


def _flag(parser: argparse.ArgumentParser, name: str, **kwargs: Any) -> None:
    """``--name`` and, for names with underscores, ``--name-with-dashes`` (as ``crl train``)."""
    names = [f"--{name}"] + ([f"--{name.replace('_', '-')}"] if "_" in name else [])
    parser.add_argument(*names, dest=name, **kwargs)


def add_commands(commands: Any) -> dict[str, Handler]:
    """Add the four verbs to ``crl``'s subparsers; returns their handlers by name."""
    sweep = commands.add_parser(
        "sweep",
        help="run a grid of trainings (envs x algs x seeds x fields), here or on Ray",
        allow_abbrev=False,
        description="Run every run of a grid as `crl train`; rerun to skip finished runs and "
        "resume interrupted ones (docs/experiments.md).",
    )
    sweep.add_argument("spec", nargs="?", metavar="SPEC", help="a TOML or JSON sweep spec")
    _flag(sweep, "sweep_dir", metavar="DIR", help="where the runs go (default runs/<SPEC name>)")
    _flag(sweep, "envs", nargs="+", metavar="ENV", help="environments (also --env)")
    sweep.add_argument("--env", dest="envs", nargs="+", help=argparse.SUPPRESS)
    _flag(sweep, "algs", nargs="+", metavar="ALG", help="algorithms (also --alg)")
    sweep.add_argument("--alg", dest="algs", nargs="+", help=argparse.SUPPRESS)
    _flag(sweep, "seeds", nargs="+", type=int, metavar="N", help="seeds (also --seed)")
    sweep.add_argument("--seed", dest="seeds", nargs="+", type=int, help=argparse.SUPPRESS)
    _flag(sweep, "preset", help="named preset of every run")
    _flag(
        sweep,
        "set",
        nargs="+",
        action="extend",
        default=[],
        metavar="FIELD=VALUE",
        help="a config field of every run, as `crl train` reads it (e.g. steps=40000)",
    )
    _flag(
        sweep,
        "grid",
        nargs="+",
        action="append",
        default=[],
        metavar="FIELD VALUE",
        help="a field and its values; every combination runs (repeatable)",
    )
    _flag(sweep, "parallel", type=int, default=1, help="runs at a time on this machine")
    _flag(
        sweep,
        "ray",
        nargs="?",
        const="",
        metavar="ADDRESS",
        help="run as Ray tasks on the cluster at ADDRESS (without one: RAY_ADDRESS, else "
        "'auto'; 'local' starts a cluster here)",
    )
    _flag(sweep, "cpus_per_run", type=float, default=1.0, help="CPUs Ray reserves per run")
    _flag(sweep, "gpus_per_run", type=float, default=0.0, help="GPUs Ray reserves per run")
    _flag(sweep, "dry_run", action="store_true", help="list the runs and their state, run none")

    plot = commands.add_parser(
        "plot",
        help="success curves and a summary table from run or sweep directories",
        allow_abbrev=False,
    )
    plot.add_argument("paths", nargs="+", metavar="DIR", help="run or sweep directories")
    _flag(plot, "out", metavar="DIR", help="output directory (default DIR/plots for one DIR)")
    _flag(plot, "metric", default="eval/success", help="the metric (default eval/success)")
    _flag(
        plot,
        "x",
        default="auto",
        choices=["auto", "env_steps", "grad_steps", "wall_time"],
        help="x axis; auto (default): env steps, or gradient steps in a panel whose runs "
        "collect none (offline_* runs)",
    )
    _flag(plot, "band", default="std", choices=["std", "ci"], help="std over seeds or 95%% CI")
    _flag(plot, "name", default="curves", help="file name of the figure and table")
    _flag(plot, "title", default="", help="title of the figure")

    video = commands.add_parser(
        "video",
        help="the deterministic policy of a run on fresh goals, as MP4 or GIF",
        allow_abbrev=False,
    )
    video.add_argument("run_dir", metavar="RUN_DIR")
    _flag(video, "out", metavar="FILE", help="the video file (default RUN_DIR/video.mp4)")
    _flag(video, "episodes", type=int, default=3, help="episodes (default 3)")
    _flag(video, "fps", type=int, default=20, help="frames per second (default 20)")
    _flag(video, "format", choices=["mp4", "gif"], help="default: the --out extension, else mp4")
    _flag(video, "seed", type=int, default=1000, help="seed of the episodes (default 1000)")
    _flag(video, "size", type=int, default=320, help="frame size in pixels (default 320)")
    _flag(video, "strip", metavar="PNG", help="also write a strip of the first episode's frames")
    _flag(video, "strip_frames", type=int, default=6, help="frames in the strip (default 6)")

    report = commands.add_parser(
        "report",
        help="a reproduction report (Markdown) from sweeps and a claims file",
        allow_abbrev=False,
    )
    report.add_argument("paths", nargs="+", metavar="DIR", help="sweep or run directories")
    _flag(report, "claims", required=True, metavar="TOML", help="the claims (sweeps/claims.toml)")
    _flag(report, "out", default="REPRODUCTION.md", help="the report (default REPRODUCTION.md)")
    _flag(report, "figures", metavar="DIR", help="figure directory (default: figures/ beside it)")
    _flag(
        report,
        "note",
        default="",
        help="Markdown under the budget (machine, load, why); @FILE reads it from FILE",
    )
    handlers = {"sweep": command_sweep, "plot": command_plot, "video": command_video}
    handlers["report"] = command_report
    for name, parser in (("sweep", sweep), ("plot", plot), ("video", video), ("report", report)):
        parser.set_defaults(handler=handlers[name])
    return handlers


def build_spec(args: argparse.Namespace) -> Any:
    """The sweep's spec: the SPEC file (or the sweep directory's last one), then the flags."""
    from contrastive_rl.experiments import spec as specs
    from contrastive_rl.experiments.sweep import SWEEP_FILE, read_spec

    if args.spec:
        values = specs.load_spec(args.spec).to_dict()
    elif args.envs:
        values = {}
    elif args.sweep_dir and os.path.isfile(os.path.join(args.sweep_dir, SWEEP_FILE)):
        values = read_spec(args.sweep_dir).to_dict()
    else:
        raise ConfigError(
            "crl sweep needs a spec file, --env ..., or the --sweep_dir of an earlier sweep"
        )
    for key in ("envs", "algs", "seeds", "preset"):
        if getattr(args, key):
            values[key] = getattr(args, key)
    fixed = dict(values.get("set", {}))
    fixed.update(specs.parse_assignment(text) for text in args.set)
    grid = dict(values.get("grid", {}))
    for field, *texts in args.grid:
        if not texts:
            raise ConfigError(f"--grid {field} needs at least one value")
        grid[field] = [specs.parse_field(field, t, "--grid") for t in texts]
    return specs.spec_from_dict({**values, "set": fixed, "grid": grid}, source="crl sweep")


def command_sweep(args: argparse.Namespace) -> int:
    from contrastive_rl.experiments import sweep
    from contrastive_rl.experiments.spec import expand

    spec = build_spec(args)
    sweep_dir = args.sweep_dir
    if not sweep_dir and args.spec:
        sweep_dir = os.path.join("runs", os.path.splitext(os.path.basename(args.spec))[0])
    if not sweep_dir:
        raise ConfigError("--sweep_dir is required without a spec file")
    if args.dry_run:
        for job in (sweep.inspect(run, sweep_dir) for run in expand(spec)):
            print(f"{job.state:9s} {job.run.name}" + (f": {job.detail}" if job.detail else ""))
        return 0
    ray = None if args.ray is None else (args.ray or os.environ.get("RAY_ADDRESS") or "auto")
    outcomes, stopped = sweep.run_sweep(
        spec,
        sweep_dir,
        parallel=args.parallel,
        ray_address=ray,
        resources={"cpus": args.cpus_per_run, "gpus": args.gpus_per_run},
    )
    print(sweep.summary(outcomes))
    if stopped:
        return 128 + stopped
    return 1 if any(o.status == "failed" for o in outcomes) else 0


def command_plot(args: argparse.Namespace) -> int:
    from contrastive_rl.experiments.plot import plot_runs

    out = args.out or (os.path.join(args.paths[0], "plots") if len(args.paths) == 1 else "plots")
    result = plot_runs(args.paths, out, args.metric, args.x, args.band, args.name, args.title)
    print(result["markdown"])
    print("wrote:", ", ".join([*result["figures"], result["table"]]), file=sys.stderr)
    return 0


def command_video(args: argparse.Namespace) -> int:
    from contrastive_rl.experiments.video import make_video

    result = make_video(
        args.run_dir,
        args.out,
        episodes=args.episodes,
        fps=args.fps,
        fmt=args.format,
        seed=args.seed,
        size=args.size,
        strip=args.strip,
        strip_frames=args.strip_frames,
    )
    print(json.dumps(result, indent=1))
    return 0


def command_report(args: argparse.Namespace) -> int:
    from contrastive_rl.experiments.report import make_report

    result = make_report(args.paths, args.claims, args.out, args.figures, args.note)
    counts = ", ".join(f"{n} {s}" for s, n in result["counts"].items())
    print(f"wrote {result['report']} ({counts}) and {', '.join(result['figures'])}")
    return 0
