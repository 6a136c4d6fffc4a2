#!/usr/bin/env bash
# make bench: every benchmark present, figures printed (not tests: nothing here fails on speed).
set -uo pipefail
cd "$(dirname "$0")/.."
rc=0
run() { echo "== $*"; "$@" || { echo "bench: $* failed" >&2; rc=1; }; }
run bash bench/read-bench.sh
run bash bench/rw-bench.sh
for f in bench/*-bench.ts; do
  [ -e "$f" ] || continue
  js="dist/${f%.ts}.js"
  run node "$js"
done
exit $rc
