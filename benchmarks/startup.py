"""Start-up time of the commands that do not train: `crl -h`, `crl list`, `import contrastive_rl`.

Each is run as a fresh process (the way a user meets it), best and median over --repeats, next
to a bare `python -c pass` (the interpreter's own start-up). Run with nothing else on the machine:

    python benchmarks/startup.py --repeats 20
"""

from __future__ import annotations

import argparse
import os
import platform
import shutil
import statistics
import subprocess
import sys
import time

COMMANDS = {
    "python -c pass": [sys.executable, "-c", "pass"],
    "import contrastive_rl": [sys.executable, "-c", "import contrastive_rl"],
    "crl -h": [sys.executable, "-m", "contrastive_rl.cli", "-h"],
    "crl list": [sys.executable, "-m", "contrastive_rl.cli", "list"],
    "crl train -h": [sys.executable, "-m", "contrastive_rl.cli", "train", "-h"],
    "import jax, flax (reference)": [sys.executable, "-c", "import jax, flax.linen"],
}


def time_command(argv: list[str], repeats: int) -> list[float]:
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        subprocess.run(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=True)
        times.append(time.perf_counter() - start)
    return times


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=10)
    args = parser.parse_args()
    crl = shutil.which("crl")
    if crl:  # the installed console script, as a user runs it
        COMMANDS["crl -h (console script)"] = [crl, "-h"]
    print(
        f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores, Python "
        f"{platform.python_version()}; best / median of {args.repeats} fresh processes"
    )
    print("| command | best, s | median, s |")
    print("|---|---|---|")
    for name, argv in COMMANDS.items():
        times = time_command(argv, args.repeats)
        print(f"| `{name}` | {min(times):.3f} | {statistics.median(times):.3f} |")


if __name__ == "__main__":
    main()
