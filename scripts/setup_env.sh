#!/usr/bin/env bash
# Shared set-up of run.sh and test.sh: a .venv with the package installed (once per pyproject).
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON="${PYTHON:-python3}"
if ! "$PYTHON" -c 'import sys; sys.exit(sys.version_info < (3, 11))'; then
  echo "contrastive_rl needs Python >= 3.11 (found: $("$PYTHON" --version 2>&1)); set PYTHON=..." >&2
  exit 1
fi
[ -x .venv/bin/python ] || "$PYTHON" -m venv .venv
extras="${1:-dev}"
stamp=".venv/.installed-$(sha1sum < pyproject.toml | cut -c1-12)-$extras"
if [ ! -f "$stamp" ]; then
  echo "installing contrastive_rl into .venv (first run only)..." >&2
  .venv/bin/python -m pip install --quiet --upgrade pip
  .venv/bin/python -m pip install --quiet -e ".[$extras]"
  touch "$stamp"
fi
