#!/usr/bin/env bash
# Copy what a run directory logs (config.json, metrics.jsonl, metrics.csv, and crl eval's
# evaluations.jsonl), not its checkpoint, from every run under SRC into the same relative place
# under DEST, and every sweep's sweep.json (the runs it plans): long runs live outside the
# repository, their metrics in it (crl plot and crl report read DEST as they read SRC).
# Usage: scripts/keep_metrics.sh SRC DEST
set -euo pipefail
[ $# -eq 2 ] || { echo "usage: $0 SRC DEST" >&2; exit 2; }
src=$1
dest=$(mkdir -p "$2" && cd "$2" && pwd)
[ -d "$src" ] || { echo "$src is not a directory" >&2; exit 2; }
cd "$src"
find . -name config.json -not -path './code/*' | while read -r config; do
  run=$(dirname "$config")
  mkdir -p "$dest/$run"
  for name in config.json metrics.jsonl metrics.csv evaluations.jsonl; do
    if [ -f "$run/$name" ]; then
      cp "$run/$name" "$dest/$run/$name.tmp" && mv "$dest/$run/$name.tmp" "$dest/$run/$name"
    else
      rm -f "$dest/$run/$name"  # gone from the run (--overwrite): not kept for another run
    fi
  done
  echo "$run"
done
find . -name sweep.json -not -path './code/*' | while read -r sweep; do
  mkdir -p "$dest/$(dirname "$sweep")"
  cp "$sweep" "$dest/$sweep.tmp" && mv "$dest/$sweep.tmp" "$dest/$sweep"
done
