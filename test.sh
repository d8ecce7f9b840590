#!/usr/bin/env bash
# Set up .venv on first use, then run the test suite. Extra arguments go to pytest
# (e.g. ./test.sh -m slow for the learning tests that take minutes).
set -euo pipefail
cd "$(dirname "$0")"
scripts/setup_env.sh test
exec .venv/bin/python -m pytest -q "$@"
