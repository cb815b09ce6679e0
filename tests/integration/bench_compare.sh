#!/bin/bash
# bench_compare.sh -- bench/run compare on the fixtures in bench/fixtures:
#  - a current run within the threshold (some figures better, some a little
#    worse) passes: exit 0, "ok": true, no regression;
#  - a regressed run fails: exit 1, and exactly the figures that got worse
#    past the threshold are named, each with the right direction (a
#    throughput and a fraction that fell, a p99 latency that rose, attacker
#    successes that appeared), while figures that improved are not;
#  - --threshold moves the line; settings (clients, seconds) and load
#    averages are never compared;
#  - bad arguments or unreadable files: exit 2 with a message.
[ -n "${BASH_VERSION:-}" ] || exec bash "$0" "$@"
. "$(dirname "$0")/lib.sh"

require python3
RUN=$top_srcdir/bench/run
FIX=$top_srcdir/bench/fixtures
[ -f "$RUN" ] || die "$RUN is missing"

# compare EXPECTED-EXIT OUT ARGS...
compare() {
	local want=$1 out=$2 rc=0
	shift 2
	bash "$RUN" compare "$@" > "$out" 2> "$out.err" || rc=$?
	if [ "$rc" = "$want" ]; then
		pass "bench/run compare $(echo "$@" | sed "s|$FIX/||g") exits $want"
	else
		fail "bench/run compare $* exits $want" "got $rc" "$(head -n 20 "$out.err")"
	fi
}

# field FILE PYTHON-EXPRESSION: print the expression over the parsed d.
field() {
	python3 -c 'import json, sys; d = json.load(open(sys.argv[1])); print(eval(sys.argv[2]))' "$1" "$2"
}

compare 0 "$T/fine.json" "$FIX/baseline.json" "$FIX/current-fine.json"
assert_eq "$(field "$T/fine.json" 'd["ok"]')" True "within the threshold: ok is true"
assert_eq "$(field "$T/fine.json" 'len(d["regressions"])')" 0 "within the threshold: no regression listed"
assert_eq "$(field "$T/fine.json" '"endpoints.client_credentials.fastauth_ok_per_s" in [x["figure"] for x in d["improvements"]]')" \
    True "a throughput up by 19% is listed as an improvement"
assert_eq "$(field "$T/fine.json" 'any("settings" in x or "loadavg" in x for x in [r["figure"] for r in d["regressions"] + d["improvements"]])')" \
    False "settings and load averages are not compared"

compare 1 "$T/bad.json" "$FIX/baseline.json" "$FIX/current-regressed.json"
assert_eq "$(field "$T/bad.json" 'd["ok"]')" False "regressed: ok is false"
assert_eq "$(field "$T/bad.json" '" ".join(sorted(x["figure"] for x in d["regressions"]))')" \
    "attack.successes endpoints.introspection.fastauth_latency_ms.p99 endpoints.introspection.fastauth_ok_per_s endpoints.introspection.fraction_of_ceiling" \
    "regressed: exactly the four figures that got worse are named"
assert_eq "$(field "$T/bad.json" '{x["figure"].split(".")[-1]: x["better"] for x in d["regressions"]}["fastauth_ok_per_s"]')" \
    higher "throughput: higher is better"
assert_eq "$(field "$T/bad.json" '{x["figure"].split(".")[-1]: x["better"] for x in d["regressions"]}["p99"]')" \
    lower "p99 latency: lower is better"
assert_eq "$(field "$T/bad.json" '[x["change_pct"] for x in d["regressions"] if x["figure"].endswith("fastauth_ok_per_s")][0]')" \
    -30.0 "the change is reported in percent (-30.0)"

# A generous threshold lets the 30% and 71% changes through, not a new
# attacker success (from 0, any rise is a regression).
compare 1 "$T/wide.json" "$FIX/baseline.json" "$FIX/current-regressed.json" --threshold 80
assert_eq "$(field "$T/wide.json" '[x["figure"] for x in d["regressions"]]')" "['attack.successes']" \
    "--threshold 80: only the attacker successes remain a regression"
compare 0 "$T/same.json" "$FIX/baseline.json" "$FIX/baseline.json" --threshold 0
assert_eq "$(field "$T/same.json" 'd["compared"] > 10')" True "a file against itself: every figure compared, none worse"

compare 2 "$T/e1.json" "$FIX/baseline.json"
compare 2 "$T/e2.json" "$FIX/baseline.json" "$T/no-such-file.json"
assert_match "$(cat "$T/e2.json.err")" "no-such-file.json" "a missing file is named"
compare 2 "$T/e3.json" "$FIX/baseline.json" "$FIX/current-fine.json" --threshold lots
assert_match "$(cat "$T/e3.json.err")" "threshold" "a bad threshold is named"
printf '{not json' > "$T/broken.json"
compare 2 "$T/e4.json" "$FIX/baseline.json" "$T/broken.json"
