"""The ``crl`` command: ``crl train``, ``crl eval RUN_DIR``, ``crl list``.

Every field of ``Config`` is a flag of ``crl train`` (``--batch_size`` or ``--batch-size``); a
flag given on the command line overrides the algorithm's and the named preset's values.
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from contrastive_rl.config import FIELDS, PRESETS, ConfigError, closest, make_config
from contrastive_rl.workers import WorkerError

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
    from contrastive_rl.runner import Run
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
        prepared = rundir.prepare(path, config, resume=bool(args.resume), overwrite=args.overwrite)
    except BaseException:
        trainer.close()
        raise
    print(f"run directory: {path}", file=sys.stderr)
    progress_bar = not args.no_progress
    run = Run(config, path, prepared.resume, progress_bar=progress_bar, trainer=trainer)
    result = run.run()
    print(json.dumps({"run_dir": path, **result}, indent=1))
    return 0


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
        print(f"crl {args.command}: error: {error}", file=sys.stderr)
        return 2
    except WorkerError as error:  # a simulator crashed or hung; the run saved its checkpoint
        print(f"crl {args.command}: error: {error}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
