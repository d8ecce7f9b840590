#!/usr/bin/env bash
# Shared set-up of run.sh and test.sh: a .venv with the package and the given extras installed
# (once per pyproject/constraints/extras), at the versions CI tested (constraints.txt).
# Usage: scripts/setup_env.sh [EXTRAS]   e.g. "" (the core), "test", "sawyer,fetch"
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON="${PYTHON:-python3}"
if ! "$PYTHON" -c 'import sys; sys.exit(sys.version_info < (3, 11))'; then
  echo "contrastive_rl needs Python >= 3.11 (found: $("$PYTHON" --version 2>&1)); set PYTHON=..." >&2
  exit 1
fi
[ -x .venv/bin/python ] || "$PYTHON" -m venv .venv
extras="${1:-}"
target="."
[ -n "$extras" ] && target=".[$extras]"
stamp=".venv/.installed-$(cat pyproject.toml constraints.txt | sha1sum | cut -c1-12)-${extras:-core}"
if [ ! -f "$stamp" ]; then
  echo "installing contrastive_rl${extras:+[$extras]} into .venv (first run only)..." >&2
  .venv/bin/python -m pip install --quiet --upgrade pip
  .venv/bin/python -m pip install --quiet -c constraints.txt -e "$target"
  touch "$stamp"
fi
