#!/usr/bin/env bash
# Runs the whole suite with tap, then test/tap-summary.mjs: the skip reasons and failed tests,
# and `tests: N passed, N failed, N skipped` (tests are subtests, not files).
# Every test runs one build: library tests import src/ through tap's ts loader, mount and CLI
# tests spawn dist/, which must be built from the same src/ (make test builds first; a dist/
# older than src/ is refused here and by test/lib/mount.ts).
set -uo pipefail
cd "$(dirname "$0")/.."
if [ ! -f dist/.build-start ]; then
  echo "run-tests: dist/ is not built (make build)" >&2; exit 2
fi
stale=$(find src -name '*.ts' -newer dist/.build-start | head -5)
if [ -n "$stale" ]; then
  echo "run-tests: dist/ is older than src/ (make build): $stale" >&2; exit 2
fi
# Kernel-harness boots (qemu TCG) can panic in the IO-APIC timer check when the host is busy
# ("setup_IO_APIC ... panic"): skip that check in every guest the tests boot.
export KH_APPEND="${KH_APPEND:-no_timer_check}"
out=$(mktemp)
npx tap --reporter=tap "$@" 2>&1 | tee "$out"
rc=${PIPESTATUS[0]}
node test/tap-summary.mjs "$out"
src=$?
rm -f "$out"
[ "$rc" -eq 0 ] && rc=$src
exit "$rc"
