"""The ``crl`` command: ``crl train``, ``crl eval RUN_DIR``, ``crl list``.

Every field of ``Config`` is a flag of ``crl train`` (``--batch_size`` or ``--batch-size``); a
flag given on the command line overrides the algorithm's and the named preset's values.
"""

from __future__ import annotations

import argparse
import json
import signal
import sys
from typing import Any

from contrastive_rl.config import FIELDS, PRESETS, ConfigError, closest, make_config
from contrastive_rl.workers import WorkerError

# Exit statuses of `crl` (docs/resume.md); a run stopped by a signal exits 128 + its number
# (130 for SIGINT, 143 for SIGTERM), as a shell reports a process the signal killed.
EXIT_OK = 0
EXIT_WORKER_CRASH = 1
EXIT_BAD_INPUT = 2
EXIT_DIVERGED = 3
EXIT_FILE_SYSTEM = 74  # EX_IOERR of sysexits.h

BOOL_WORDS = {"true": True, "1": True, "yes": True, "false": False, "0": False, "no": False}


def parse_bool(text: str) -> bool:
    if text.lower() not in BOOL_WORDS:
        raise argparse.ArgumentTypeError(f"expected true or false, got {text!r}")
    return BOOL_WORDS[text.lower()]


def parse_optional_float(text: str) -> float | None:
    if text.lower() in ("auto", "none"):
        return None
    try:
        return float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number or 'auto', got {text!r}") from None


def parse_sizes(text: str) -> tuple[int, ...]:
    try:
        return tuple(int(t) for t in text.replace(" ", ",").split(",") if t)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected sizes like 256,256, got {text!r}") from None


PARSERS = {
    "int": int,
    "float": float,
    "str": str,
    "bool": parse_bool,
    "float | None": parse_optional_float,
    "tuple[int, ...]": parse_sizes,
}


def add_config_flags(parser: argparse.ArgumentParser) -> None:
    """One flag per config field; unset flags stay absent so presets apply."""
    for name, f in FIELDS.items():
        names = [f"--{name}"] + ([f"--{name.replace('_', '-')}"] if "_" in name else [])
        kwargs: dict[str, Any] = {
            "dest": name,
            "default": argparse.SUPPRESS,
            "type": PARSERS[str(f.type)],
            "help": f"{f.metadata['help']} (default: {f.default})",
        }
        if f.type == "bool":
            kwargs.update(nargs="?", const=True)
        if name == "preset":  # no argparse choices: validation names the near miss
            kwargs["help"] += f"; one of: {', '.join(PRESETS)}"
        parser.add_argument(*names, **kwargs)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="crl",
        description="Contrastive RL: goal-conditioned RL by contrastive learning.",
        allow_abbrev=False,  # --step must not silently mean --steps
    )
    commands = parser.add_subparsers(dest="command", required=True)

    train = commands.add_parser("train", help="train (and evaluate) an agent", allow_abbrev=False)
    add_config_flags(train)
    train.add_argument("--resume", metavar="RUN_DIR", help="continue the run in RUN_DIR")
    train.add_argument("--overwrite", action="store_true", help="replace a run already in run_dir")
    train.add_argument("--no-progress", action="store_true", help="no progress bar")

    evaluate = commands.add_parser(
        "eval", help="re-evaluate the last checkpoint of a run", allow_abbrev=False
    )
    evaluate.add_argument("run_dir", metavar="RUN_DIR")
    evaluate.add_argument("--episodes", type=int, default=None, help="episodes (default: config)")

    commands.add_parser(
        "list", help="environments, algorithms and presets with their status", allow_abbrev=False
    )
    return parser


def command_train(args: argparse.Namespace) -> int:
    from contrastive_rl import rundir
    from contrastive_rl.runner import DivergedError
    from contrastive_rl.train import Trainer

    overrides = {k: v for k, v in vars(args).items() if k in FIELDS}
    if args.resume:
        if overrides or args.overwrite:
            given = ", ".join(f"--{k}" for k in overrides) or "--overwrite"
            raise ConfigError(f"--resume continues a run with its saved config; remove {given}")
        path = args.resume
        config = rundir.load_config(path)
    else:
        config = make_config(**overrides)
        path = config.run_dir or rundir.default_run_dir(config)
    trainer = Trainer(config)  # refuses what cannot run (budget, sizes) before anything is written
    try:
        run, result = _train_in(path, config, trainer, args)
    except DivergedError as error:  # non-finite losses; the last good checkpoint is kept
        return _fail("train", error, EXIT_DIVERGED)
    except rundir.StorageError as error:  # full, read-only or missing directory
        return _fail("train", error, EXIT_FILE_SYSTEM)
    status = "stopped" if run.stop_signal else "completed"
    print(json.dumps({"run_dir": path, "status": status, **result}, indent=1))
    return 128 + run.stop_signal if run.stop_signal else EXIT_OK


def _train_in(path: str, config: Any, trainer: Any, args: argparse.Namespace) -> tuple[Any, dict]:
    """Prepare and lock the run directory, then train; file-system errors become StorageError."""
    from contrastive_rl import rundir
    from contrastive_rl.runner import Run

    with rundir.storage_errors(path):
        try:
            prepared = rundir.prepare(
                path, config, resume=bool(args.resume), overwrite=args.overwrite
            )
        except BaseException:
            trainer.close()
            raise
        with prepared:  # holds the run directory's lock until the run ends
            print(f"run directory: {path}", file=sys.stderr)
            run = Run(
                config, path, prepared.resume, progress_bar=not args.no_progress, trainer=trainer
            )
            return run, run.run()


def command_eval(args: argparse.Namespace) -> int:
    from contrastive_rl.runner import evaluate_run

    result = evaluate_run(args.run_dir, args.episodes)
    print(json.dumps(result, indent=1))
    return 0


def command_list(args: argparse.Namespace) -> int:
    from contrastive_rl.envs import ENV_STATUS
    from contrastive_rl.losses import ALGORITHMS

    print("environments:")
    for name, status in ENV_STATUS.items():
        print(f"  {name:28s} {status}")
    print("algorithms:")
    for name, alg in ALGORITHMS.items():
        print(f"  {name:28s} ready: {alg.summary}")
    print("presets:")
    for name, values in PRESETS.items():
        shown = ", ".join(f"{k}={v}" for k, v in values.items()) or "the original's defaults"
        print(f"  {name:28s} {shown}")
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args, unknown = parser.parse_known_args(argv)
    if unknown:
        flags = [f"--{name}" for name in FIELDS] + ["--resume", "--overwrite", "--no-progress"]
        flag = unknown[0].split("=")[0]
        parser.error(f"unknown flag {flag!r}{closest(flag, flags)}; see `crl {args.command} -h`")
    handlers = {"train": command_train, "eval": command_eval, "list": command_list}
    try:
        return handlers[args.command](args)
    except (ValueError, FileNotFoundError) as error:  # ConfigError, RunDirError, CheckpointError
        return _fail(args.command, error, EXIT_BAD_INPUT)
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
