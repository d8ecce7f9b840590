#!/usr/bin/env bash
# The quick check: set up .venv on first use, then train contrastive_nce on point_FourRooms
# (quick preset, under five minutes on a 2-core CPU) and print its last evaluation.
# Extra arguments go to `crl train`, e.g. ./run.sh --seed 1
set -euo pipefail
cd "$(dirname "$0")"
scripts/setup_env.sh
exec .venv/bin/crl train --env point_FourRooms --alg contrastive_nce --preset quick \
  --run_dir "runs/quick-$(date +%Y%m%d-%H%M%S)" "$@"
