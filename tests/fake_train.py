"""A stand-in for `crl train` in sweep tests: the same run directory contract, no training.

It resolves the config from the same flags (and refuses a directory as `crl train` does,
through `rundir.prepare`), then logs one record per 100 env steps with an `eval/success` that
depends only on (seed, env_steps), and checkpoints (checkpoint.json/.msgpack with `progress`)
after every record, so a resumed run logs what an uninterrupted one would have.
Environment switches: FAKE_FAIL_SEED=N fails the run of seed N (exit 2, `crl train: error:`);
FAKE_STOP_AFTER=K stops every run after K records (exit 143, as SIGTERM); FAKE_SLEEP=S sleeps S
seconds per record; SIGTERM stops after the current record (exit 143).
"""

import json
import os
import signal
import sys
import time

from contrastive_rl.cli import build_parser
from contrastive_rl.config import FIELDS, make_config
from contrastive_rl.runs import rundir
from contrastive_rl.runs.config_files import load_config
from contrastive_rl.runs.files import DATA_FILE, META_FILE, atomic_write
from contrastive_rl.runs.metrics import MetricsLogger

STEP = 100


def value(seed: int, steps: int) -> float:
    return round(min(1.0, steps / 1000 * (0.5 + 0.1 * seed)), 6)


def main() -> int:
    args, _ = build_parser().parse_known_args(["train", *sys.argv[1:]])
    if args.resume:
        config = load_config(args.resume)
        path = args.resume
    else:
        config = make_config(**{k: v for k, v in vars(args).items() if k in FIELDS})
        path = config.run_dir
    if os.environ.get("FAKE_FAIL_SEED") == str(config.seed):
        print(f"crl train: error: fake failure of seed {config.seed}", file=sys.stderr)
        return 2
    stop = []
    signal.signal(signal.SIGTERM, lambda *a: stop.append(1))
    with rundir.prepare(path, config, resume=bool(args.resume)) as prepared:
        done = 0
        if prepared.resume:
            with open(os.path.join(path, META_FILE)) as f:
                done = json.load(f)["progress"]["env_steps"]
        logger = MetricsLogger(path, resume=prepared.resume)
        if prepared.resume:
            logger.truncate_after(done)
        limit = int(os.environ.get("FAKE_STOP_AFTER", "0"))
        logged = 0
        while done < config.steps:
            done += STEP
            logger.log({"env_steps": done, "eval/success": value(config.seed, done)})
            meta = {"progress": {"env_steps": done, "eval_pending": False}, "step": done}
            atomic_write(os.path.join(path, DATA_FILE), b"fake")
            atomic_write(os.path.join(path, META_FILE), json.dumps(meta))
            logged += 1
            time.sleep(float(os.environ.get("FAKE_SLEEP", "0")))
            if (stop or logged == limit) and done < config.steps:
                logger.close()
                return 143
        logger.close()
    print(json.dumps({"run_dir": path, "status": "completed"}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
