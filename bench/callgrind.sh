#!/bin/bash
# callgrind.sh -- instructions per operation of fastauth's hot paths, counted
# by valgrind --tool=callgrind on bench/bench_callgrind (a fixed workload;
# see its header), and compared with a committed baseline.
#
#   bench/callgrind.sh measure              print the counts as JSON
#   bench/callgrind.sh check BASELINE       compare; exit 1 when an operation
#                                           costs more than the baseline plus
#                                           the threshold, 77 when the baseline
#                                           comes from another kind of build
#   bench/callgrind.sh update BASELINE      measure and write BASELINE
#
# Environment: BENCH_CALLGRIND (the program, default
# $top_builddir/bench/bench_callgrind), VALGRIND (default valgrind),
# CALLGRIND_THRESHOLD (percent, default: the baseline's threshold_pct, 10).
#
# Counts repeat exactly for the same binary on the same machine; they change
# with the compiler, its flags, libgcrypt or glibc (so the baseline records
# them, and a baseline from another build is not compared), and can change
# with the CPU (libgcrypt and glibc pick code by CPU features): after a
# deliberate change, or on a new machine, refresh it with
# "make callgrind-baseline" and commit bench/callgrind-baseline.json.
set -eu
set -o pipefail

here=$(cd "$(dirname "$0")" && pwd)
: "${top_builddir:=$(cd "$here/.." && pwd)}"
PROG=${BENCH_CALLGRIND:-$top_builddir/bench/bench_callgrind}
VALGRIND=${VALGRIND:-valgrind}

usage() {
	echo "usage: $0 measure | check BASELINE | update BASELINE" >&2
	exit 2
}

measure() {	# OUT.json
	local dir rc=0
	dir=$(mktemp -d "${TMPDIR:-/tmp}/fastauth-callgrind.XXXXXX")
	command -v "$VALGRIND" >/dev/null 2>&1 || {
		echo "callgrind.sh: $VALGRIND not found (apt-get install valgrind)" >&2
		rm -rf "$dir"
		return 1
	}
	[ -x "$PROG" ] || {
		echo "callgrind.sh: $PROG not built (make bench/bench_callgrind)" >&2
		rm -rf "$dir"
		return 1
	}
	"$VALGRIND" --tool=callgrind --callgrind-out-file="$dir/cg.out" \
	    --dump-instr=no --dump-line=no "$PROG" >"$dir/stdout" 2>"$dir/stderr" || rc=$?
	if [ "$rc" != 0 ]; then
		echo "callgrind.sh: $PROG under callgrind exited $rc" >&2
		tail -n 20 "$dir/stderr" >&2
		rm -rf "$dir"
		return 1
	fi
	python3 - "$dir" "$1" <<'PY' || rc=$?
import glob, json, re, sys
d, out = sys.argv[1], sys.argv[2]
ops = {}
for f in sorted(glob.glob(d + "/cg.out*")):
    trig = tot = None
    for line in open(f, errors="replace"):
        m = re.match(r"desc: Trigger: Client Request: op (\S+) (\d+)", line)
        if m:
            trig = (m.group(1), int(m.group(2)))
        m = re.match(r"(summary|totals): (\d+)", line)
        if m:
            tot = int(m.group(2))
    if trig and tot is not None:
        ops[trig[0]] = round(tot / trig[1], 1)
info = json.loads(open(d + "/stdout").read())
if not info.get("client_requests"):
    sys.exit("callgrind.sh: bench_callgrind was built without valgrind/callgrind.h "
             "(apt-get install valgrind, then configure and make again)")
build = info["build"]
# Warning switches do not change the code: drop them (-Werror or not, same counts).
build = " ".join(t for t in build.split() if not (t.startswith("-W") and not t.startswith("-Wl,")))
if not ops:
    sys.exit("callgrind.sh: no counts found in the dumps")
json.dump({"build": build, "ir_per_op": ops}, open(out, "w"), indent=1, sort_keys=True)
PY
	rm -rf "$dir"
	return "$rc"
}

case ${1:-} in
measure)
	[ $# = 1 ] || usage
	tmp=$(mktemp)
	measure "$tmp" && cat "$tmp"
	rc=$?
	rm -f "$tmp"
	exit $rc
	;;
update)
	[ $# = 2 ] || usage
	tmp=$(mktemp)
	measure "$tmp" || { rm -f "$tmp"; exit 1; }
	python3 - "$tmp" "$2" <<'PY'
import json, platform, sys, time
m = json.load(open(sys.argv[1]))
cpu = ""
try:
    for l in open("/proc/cpuinfo"):
        if l.startswith("model name"):
            cpu = l.split(":", 1)[1].strip()
            break
except OSError:
    pass
m["threshold_pct"] = 10
m["taken"] = time.strftime("%Y-%m-%d", time.gmtime())
m["machine"] = "%s, %s" % (platform.machine(), cpu)
json.dump(m, open(sys.argv[2], "w"), indent=1, sort_keys=True)
open(sys.argv[2], "a").write("\n")
PY
	rm -f "$tmp"
	echo "callgrind.sh: wrote $2"
	cat "$2"
	;;
check)
	[ $# = 2 ] || usage
	# Another kind of build (a sanitizer build, say, which valgrind cannot
	# even run) is told apart before measuring: the program prints its build.
	if [ -x "$PROG" ] && ! python3 - "$("$PROG" 2>/dev/null)" "$2" <<'PY'
import json, sys
try:
    b = json.loads(sys.argv[1])["build"]
except Exception:
    sys.exit(0)	# measure() will say what is wrong
b = " ".join(t for t in b.split() if not (t.startswith("-W") and not t.startswith("-Wl,")))
base = json.load(open(sys.argv[2]))["build"]
if b != base:
    print("# the baseline comes from another build; counts are not comparable")
    print("#   baseline: " + base)
    print("#   this:     " + b)
    print("# refresh it with: make callgrind-baseline")
    sys.exit(1)
PY
	then
		exit 77
	fi
	tmp=$(mktemp)
	measure "$tmp" || { rm -f "$tmp"; exit 1; }
	rc=0
	python3 - "$tmp" "$2" "${CALLGRIND_THRESHOLD:-}" <<'PY' || rc=$?
import json, sys
now = json.load(open(sys.argv[1]))
base = json.load(open(sys.argv[2]))
thr = float(sys.argv[3]) if sys.argv[3] else float(base.get("threshold_pct", 10))
if now["build"] != base["build"]:
    print("# the baseline comes from another build; counts are not comparable")
    print("#   baseline: " + base["build"])
    print("#   this:     " + now["build"])
    print("# measured: " + json.dumps(now["ir_per_op"], sort_keys=True))
    print("# refresh it with: make callgrind-baseline")
    sys.exit(77)
bad = 0
for op in sorted(set(base["ir_per_op"]) | set(now["ir_per_op"])):
    b, n = base["ir_per_op"].get(op), now["ir_per_op"].get(op)
    if b is None:
        print("ok - %s: %.1f instructions per op (new: not in the baseline)" % (op, n))
        continue
    if n is None:
        print("FAIL: %s: in the baseline but not measured" % op)
        bad += 1
        continue
    ratio = n / b
    line = "%s: %.1f instructions per op, baseline %.1f (%+.1f%%, limit +%g%%)" % (
        op, n, b, (ratio - 1) * 100, thr)
    if ratio > 1 + thr / 100:
        print("FAIL: " + line)
        bad += 1
    else:
        print("ok - " + line)
        if ratio < 1 - thr / 100:
            print("# %s got cheaper by more than %g%%: refresh the baseline "
                  "(make callgrind-baseline) so that it keeps guarding" % (op, thr))
sys.exit(1 if bad else 0)
PY
	rm -f "$tmp"
	exit "$rc"
	;;
*)	usage ;;
esac
