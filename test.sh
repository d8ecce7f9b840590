#!/usr/bin/env bash
# Set up .venv on first use, then run the test suite. Extra arguments go to pytest
# (e.g. ./test.sh -m slow for the learning tests that take minutes). The tests run in
# CRL_TEST_WORKERS processes (default 2, whole files per process: much of a test's time is
# compiling or waiting for worker processes, which the other process fills); 0 runs them in
# this one process.
set -euo pipefail
cd "$(dirname "$0")"
scripts/setup_env.sh test
workers="${CRL_TEST_WORKERS:-2}"
parallel=()
if [ "$workers" != 0 ]; then parallel=(-n "$workers" --dist loadfile); fi
exec .venv/bin/python -m pytest -q "${parallel[@]}" "$@"
