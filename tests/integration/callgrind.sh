#!/bin/bash
# callgrind.sh -- the instruction-count regression check: bench/callgrind.sh
# runs bench/bench_callgrind under valgrind --tool=callgrind and compares the
# instructions per seal, open, limiter check, cache get, form parse and batch
# parse (and raw GCM open) with bench/callgrind-baseline.json; more than the
# threshold (10%) over the baseline fails. Then the checker is checked: a
# copy of the baseline with every figure cut by a fifth must fail.
#
# A baseline taken with another compiler, other flags, libgcrypt or glibc
# cannot be compared: the test is then skipped (exit 77), printing the counts
# and how to refresh the baseline (make callgrind-baseline).
[ -n "${BASH_VERSION:-}" ] || exec bash "$0" "$@"
set -u
: "${top_srcdir:=$(cd "$(dirname "$0")/../.." && pwd)}"
: "${top_builddir:=$top_srcdir}"
export top_builddir
CHECK=$top_srcdir/bench/callgrind.sh
BASE=$top_srcdir/bench/callgrind-baseline.json

if ! command -v "${VALGRIND:-valgrind}" >/dev/null 2>&1; then
	echo "FAIL: valgrind is not installed (scripts/install-deps installs it)"
	exit 1
fi
rc=0
bash "$CHECK" check "$BASE" || rc=$?
case $rc in
0)	echo "ok - instruction counts within the threshold of $BASE" ;;
77)	echo "SKIP: baseline from another build"; exit 77 ;;
*)	echo "FAIL: instruction counts regressed (or could not be measured)"; exit 1 ;;
esac

tmp=$(mktemp)
trap 'rm -f "$tmp"' EXIT
python3 - "$BASE" "$tmp" <<'PY'
import json, sys
b = json.load(open(sys.argv[1]))
b["ir_per_op"] = {k: v * 0.8 for k, v in b["ir_per_op"].items()}
json.dump(b, open(sys.argv[2], "w"))
PY
rc=0
bash "$CHECK" check "$tmp" >/dev/null || rc=$?
if [ "$rc" = 1 ]; then
	echo "ok - a baseline 20% cheaper than the code makes the check fail"
else
	echo "FAIL: the check passed (exit $rc) against a baseline 20% cheaper"
	exit 1
fi
