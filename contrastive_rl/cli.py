"""The ``crl`` command: ``crl train``, ``crl eval RUN_DIR``, ``crl collect``, ``crl list``, and
the experiment tools ``crl sweep``, ``crl plot``, ``crl video``, ``crl report``
(``experiments/commands.py``).

Every field of ``Config`` is a flag of ``crl train`` (``--batch_size`` or ``--batch-size``); a
flag given on the command line overrides the algorithm's and the named preset's values.
"""

from __future__ import annotations

import argparse
import json
import signal
import sys

from contrastive_rl.config import (
    CONTRASTIVE_LOSSES,
    ENERGIES,
    FIELDS,
    ConfigError,
    closest,
    make_config,
)
from contrastive_rl.errors import InputError, WorkerError
from contrastive_rl.flags import add_config_flags
from contrastive_rl.presets import CONTRASTIVE_LOSS_DEFAULTS, PRESET_ALGORITHM_SETTINGS, PRESETS
from contrastive_rl.runs.config_files import read_config_file

# Exit statuses of `crl` (docs/resume.md); a run stopped by a signal exits 128 + its number
# (130 for SIGINT, 143 for SIGTERM), as a shell reports a process the signal killed.
EXIT_OK = 0
EXIT_WORKER_CRASH = 1
EXIT_BAD_INPUT = 2
EXIT_DIVERGED = 3
EXIT_FILE_SYSTEM = 74  # EX_IOERR of sysexits.h


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="crl",
        description="Contrastive RL: goal-conditioned RL by contrastive learning.",
        allow_abbrev=False,  # --step must not silently mean --steps
    )
    commands = parser.add_subparsers(dest="command", required=True)

    train = commands.add_parser("train", help="train (and evaluate) an agent", allow_abbrev=False)
    add_config_flags(train)
    train.add_argument(
        "--config",
        metavar="FILE",
        help="start from the fields of a JSON or TOML file (a run's config.json works; its "
        "run_dir is ignored); flags given here override it",
    )
    train.add_argument(
        "--print-config",
        "--print_config",
        dest="print_config",
        action="store_true",
        help="print the resolved config as JSON and exit without training",
    )
    train.add_argument(
        "--resume",
        metavar="RUN_DIR",
        help="continue the run in RUN_DIR with its saved config; with --steps, to a larger budget",
    )
    train.add_argument("--overwrite", action="store_true", help="replace a run already in run_dir")
    train.add_argument("--no-progress", action="store_true", help="no progress bar")

    evaluate = commands.add_parser(
        "eval", help="re-evaluate the last checkpoint of a run", allow_abbrev=False
    )
    evaluate.add_argument("run_dir", metavar="RUN_DIR")
    evaluate.add_argument("--episodes", type=int, default=None, help="episodes (default: config)")
    evaluate.add_argument(
        "--no-record",
        action="store_true",
        help="do not add the result to the run's evaluations.jsonl (which crl report reads)",
    )

    collect = commands.add_parser(
        "collect",
        help="make a dataset for an offline_* task (D4RL's .hdf5 layout, or OGBench's .npz)",
        description="Collect a dataset for an offline task (docs/offline.md): point mazes by a "
        "scripted BFS-waypoint navigator, AntMaze by D4RL's recipe (a trained ant policy "
        "steered by waypoints, Gaussian action noise). Every step is one row; episodes end at "
        "timeouts.",
        allow_abbrev=False,
    )
    collect.add_argument("--env", required=True, help="the offline task, e.g. offline_point_U")
    collect.add_argument("--out", required=True, help="the file to write: .hdf5 or .npz")
    collect.add_argument(
        "--steps",
        type=int,
        default=0,
        help="rows in all, rounded up to whole episodes "
        "(default: 200k for point mazes, 1M for AntMaze)",
    )
    collect.add_argument(
        "--episode-length",
        "--episode_length",
        dest="episode_length",
        type=int,
        default=0,
        help="steps per episode (default: the point maze's; 700 umaze, 1000 other AntMazes)",
    )
    collect.add_argument(
        "--noise",
        type=float,
        default=None,
        help="std of the Gaussian action noise (default: 0.5 point mazes, 0.2 AntMaze)",
    )
    collect.add_argument("--seed", type=int, default=0, help="seed of every draw")
    collect.add_argument(
        "--policy",
        default="",
        help="AntMaze: run directory of a policy trained on ant_umaze, ant_medium or "
        "ant_large (another maze's policy steers in a corridor frame)",
    )
    collect.add_argument(
        "--num-envs",
        "--num_envs",
        dest="num_envs",
        type=int,
        default=64,
        help="episodes collected side by side",
    )
    collect.add_argument(
        "--workers",
        type=int,
        default=1,
        help="AntMaze: processes collecting num_envs episodes each at once (one per core; "
        "the dataset is the same for any number)",
    )
    collect.add_argument("--overwrite", action="store_true", help="replace an existing file")
    collect.add_argument(
        "--stitch",
        action="store_true",
        help="point mazes: short segments, each from a random free cell to a goal 4 cells away "
        "(OGBench's stitch datasets; 12 steps per episode unless --episode-length)",
    )

    commands.add_parser(
        "list", help="environments, algorithms and presets with their status", allow_abbrev=False
    )
    from contrastive_rl.experiments.commands import add_commands

    add_commands(commands)
    return parser


def command_train(args: argparse.Namespace) -> int:
    overrides = {k: v for k, v in vars(args).items() if k in FIELDS}
    extend_to = None
    if args.resume:
        extend_to = overrides.pop("steps", None)  # the one flag a resume takes: a longer budget
        if overrides or args.overwrite or args.config:
            given = ", ".join(f"--{k}" for k in overrides) or (
                "--overwrite" if args.overwrite else "--config"
            )
            raise ConfigError(
                f"--resume continues a run with its saved config (only --steps may be given, to "
                f"extend its budget); remove {given}"
            )
        from contrastive_rl.runs.config_files import extend_budget, load_config

        config = load_config(args.resume)
        if extend_to is not None:
            config = extend_budget(config, extend_to)
    else:
        values = read_config_file(args.config) if args.config else {}
        config = make_config(**{**values, **overrides})
    if args.print_config:
        print(json.dumps(config.to_dict(), indent=2))
        return EXIT_OK
    from contrastive_rl.api import train
    from contrastive_rl.errors import StorageError
    from contrastive_rl.training.runner import DivergedError

    try:
        result = train(
            config,
            args.resume or config.run_dir or None,
            resume=bool(args.resume),
            steps=extend_to,
            overwrite=args.overwrite,
            progress_bar=not args.no_progress,
        )
    except DivergedError as error:  # non-finite losses; the last good checkpoint is kept
        return _fail("train", error, EXIT_DIVERGED)
    except StorageError as error:  # full, read-only or missing directory
        return _fail("train", error, EXIT_FILE_SYSTEM)
    print(json.dumps(result, indent=1))
    if result["status"] == "stopped":
        return 128 + signal.Signals[result["stopped_by"]].value
    return EXIT_OK


def command_eval(args: argparse.Namespace) -> int:
    from contrastive_rl.training.runner import evaluate_run

    result = evaluate_run(args.run_dir, args.episodes, record=not args.no_record)
    print(json.dumps(result, indent=1))
    return 0


def command_collect(args: argparse.Namespace) -> int:
    from contrastive_rl.experiments.collect import CollectOptions, collect

    options = CollectOptions(
        env=args.env,
        out=args.out,
        steps=args.steps,
        episode_length=args.episode_length,
        noise=args.noise,
        seed=args.seed,
        policy=args.policy,
        num_envs=args.num_envs,
        workers=args.workers,
        overwrite=args.overwrite,
        stitch=args.stitch,
    )
    metadata = collect(options)
    print(json.dumps({"out": args.out, **metadata}, indent=1))
    return EXIT_OK


def command_list(args: argparse.Namespace) -> int:
    from contrastive_rl.agent.algorithms import ALGORITHMS
    from contrastive_rl.envs.registry import ENV_EXTRA, ENV_STATUS, install_hint, requirements_error

    print("environments:")
    for name, status in ENV_STATUS.items():
        if name in ENV_EXTRA and requirements_error(name):
            status += f"; not installed: {install_hint(ENV_EXTRA[name])}"
        print(f"  {name:28s} {status}")
    print("algorithms:")
    for name, alg in ALGORITHMS.items():
        print(f"  {name:28s} ready: {alg.summary}")
    print(f"critic choices of {', '.join(CONTRASTIVE_LOSS_DEFAULTS)} (docs/algorithms.md):")
    print(f"  {'--energy':28s} {', '.join(ENERGIES)} (default dot)")
    losses = ", ".join(CONTRASTIVE_LOSSES)
    print(f"  {'--contrastive_loss':28s} {losses} (default: the algorithm's own)")
    print(f"  {'--logsumexp_penalty':28s} a coefficient >= 0 (default: the algorithm's own)")
    print("networks (--network):")
    print(f"  {'mlp':28s} the original's MLPs, hidden_layer_sizes (default)")
    print(f"  {'residual':28s} residual blocks of 4 x [Dense, LayerNorm, Swish]: residual_depth")
    print(f"  {'':28s} Dense layers in the blocks (a multiple of 4), residual_width wide")
    print("presets:")
    for name, values in PRESETS.items():
        shown = ", ".join(f"{k}={v}" for k, v in values.items()) or "the original's defaults"
        print(f"  {name:28s} {shown}")
        for alg, extra in PRESET_ALGORITHM_SETTINGS.get(name, {}).items():
            print(f"  {'':28s} {alg} also: " + ", ".join(f"{k}={v}" for k, v in extra.items()))
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args, unknown = parser.parse_known_args(argv)
    if unknown and args.command != "train":
        parser.error(f"unrecognized arguments: {' '.join(unknown)}; see `crl {args.command} -h`")
    if unknown:
        flags = [f"--{name}" for name in FIELDS] + [
            "--config",
            "--print-config",
            "--resume",
            "--overwrite",
            "--no-progress",
        ]
        flag = unknown[0].split("=")[0]
        parser.error(f"unknown flag {flag!r}{closest(flag, flags)}; see `crl {args.command} -h`")
    handlers = {
        "train": command_train,
        "eval": command_eval,
        "collect": command_collect,
        "list": command_list,
    }
    handler = getattr(args, "handler", None) or handlers[args.command]
    try:
        return handler(args)
    except InputError as error:  # ConfigError, RunDirError, CheckpointError, DatasetError
        return _fail(args.command, error, EXIT_BAD_INPUT)  # any other error is a bug: traceback
    except WorkerError as error:  # a simulator crashed or hung; the run saved its checkpoint
        return _fail(args.command, error, EXIT_WORKER_CRASH)
    except KeyboardInterrupt:  # a second Ctrl-C: no new checkpoint, the last one stays valid
        print(f"crl {args.command}: aborted", file=sys.stderr)
        return 128 + signal.SIGINT


def _fail(command: str, error: BaseException, status: int) -> int:
    print(f"crl {command}: error: {error}", file=sys.stderr)
    return status


if __name__ == "__main__":
    sys.exit(main())
