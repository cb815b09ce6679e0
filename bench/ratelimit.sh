#!/bin/bash
# ratelimit.sh -- what the shared-memory rate limiter costs an endpoint, end
# to end: HTTP throughput of POST /oauth2/introspect and /oauth2/token behind
# lighttpd (lighttpd/fastauth-spawn.conf, max-procs 2, threads 4) with the
# endpoint's limiter off against on, measured with ab in the same run.
#
# Two stacks run side by side on one private Redis, each its own lighttpd,
# fastauth instance and segment: OFF (ratelimit_introspect and
# ratelimit_token "off") and ON (the limiter checks every request).  ON uses
# the default introspection policy (2000/1s burst 4000 by client) when it is
# generous enough for the load, else a generous policy that checks as much
# and refuses nothing; the policy used is in the output.  Runs alternate
# OFF-ON, ON-OFF, OFF-ON (3 of each per endpoint and connection mode, the
# order alternating so that neither always runs first); the figure is the
# median.  Each run must have no failed and no non-2xx answer.  Every pair
# is run with ab -k (this lighttpd.conf allows keep-alive, and lighttpd keeps
# ab's HTTP/1.0 connections open when asked) and without.
# Beside throughput, each run records the CPU time the stack's fastauth
# processes spent per request (/proc/PID/stat): on a small host where ab,
# lighttpd and fastauth share the cores, throughput swings by 10-30% from
# run to run, CPU per request a little less: a 3% difference is within the
# noise of such a host.  So the output also derives the limiter's share of a
# request from bench_shm's cost of one check (ns) and the CPU per request.
# The issue's target: limiter overhead <= 3% of endpoint throughput.
#
# Also runs bench/bench_shm --seconds 1 (build it: make bench/bench_shm) and
# includes its JSON.
#
# usage: bench/ratelimit.sh [--seconds N]   (per ab run, default 3)
# Prints one JSON object on stdout; progress and the servers' logs (on
# failure) on stderr.
[ -n "${BASH_VERSION:-}" ] || exec bash "$0" "$@"

SECONDS_PER_RUN=3
while [ $# -gt 0 ]; do
	case $1 in
	--seconds)
		SECONDS_PER_RUN=${2:-}
		shift 2 || { echo "usage: $0 [--seconds N]" >&2; exit 2; } ;;
	*)	echo "usage: $0 [--seconds N]" >&2
		exit 2 ;;
	esac
done
case $SECONDS_PER_RUN in
''|*[!0-9]*|0) echo "$0: --seconds wants a positive integer" >&2; exit 2 ;;
esac

# The JSON goes to the real stdout (fd 4); everything lib.sh prints (its
# notes, checks and summary) to stderr.
exec 4>&1 1>&2
: "${top_srcdir:=$(cd "$(dirname "$0")/.." && pwd)}"
export top_srcdir
. "$top_srcdir/tests/integration/lib.sh"

AB=${AB:-$(command -v ab || echo /usr/bin/ab)}
BENCH_SHM=${BENCH_SHM:-$top_builddir/bench/bench_shm}
require "$REDIS_SERVER" "$REDIS_CLI" "$LIGHTTPD" "$AB" curl python3
require_fastauth
[ -x "$BENCH_SHM" ] || die "$BENCH_SHM is not built (make bench/bench_shm)"

CONC=${CONC:-8}		# ab -c: max-procs 2 x threads 4 requests in flight
RUNS=3
GENEROUS="1000000/1s burst 1000000 by client"

# lib.sh removes the segment of $FA_INSTANCE; the ON stack's is ours too.
bench_on_exit() {
	local rc=$?
	set +e
	trap - ERR
	fa_stop_all
	rm -f "/dev/shm/fastauth.$FA_INSTANCE-on"
	(exit "$rc")
	fa_on_exit
}
trap bench_on_exit EXIT

# conf_for INSTANCE FILE ISSUER [lines...]: write_fastauth_conf for an
# instance, logging at warn (a bench measures requests, not logging).
conf_for() {
	local FA_INSTANCE=$1
	shift
	write_fastauth_conf "$@"
	sed -i 's/^log_level debug$/log_level warn/' "$1"
}

# stack NAME CONF PORT: lighttpd spawning fastauth with the shipped snippet;
# keep-alive allowed (unlike lib.sh's make_lighttpd_conf), for ab -k.
stack() {
	local name=$1 conf=$2 port=$3
	mkdir -p "$T/run-$name" "$T/www"
	install_conf "$top_srcdir/lighttpd/fastauth-spawn.conf" "$T/$name-spawn.conf" \
	    "/usr/sbin/fastauth -c /etc/fastauth/fastauth.conf" "$FASTAUTH -c $conf" \
	    "/run/lighttpd/fastauth.sock" "$T/run-$name/fastauth.sock"
	cat > "$T/$name-lighttpd.conf" <<EOF
# written by bench/ratelimit.sh
server.document-root = "$T/www"
server.bind          = "127.0.0.1"
server.port          = $port
server.errorlog      = "$T/$name-lighttpd.conf.error.log"
include "$T/$name-spawn.conf"
EOF
	start_lighttpd "$T/$name-lighttpd.conf" "$port"
	wait_ready "http://127.0.0.1:$port/auth" || die "stack $name is not ready"
}

start_redis
PORT_OFF=$(free_port)
PORT_ON=$(free_port)
BASE_OFF=http://127.0.0.1:$PORT_OFF/auth
BASE_ON=http://127.0.0.1:$PORT_ON/auth
CONF_OFF=$T/fastauth-off.conf
CONF_ON=$T/fastauth-on.conf
conf_for "$FA_INSTANCE" "$CONF_OFF" "$BASE_OFF" \
    "ratelimit_introspect off" "ratelimit_token off"
FA_CONF=$CONF_OFF
ctl key init >/dev/null 2>"$T/ctl.err" || die "fastauthctl key init failed" "$(cat "$T/ctl.err")"
setup_clients

# Introspection load: is the default policy generous enough?  Measure OFF
# first (a short ab run) and compare with the default rate.
stack off "$CONF_OFF" "$PORT_OFF"
PID_OFF=$LIGHTTPD_PID
TOKEN=$(get_token "$BASE_OFF" app-a "$SECRET_A") || die "no token to introspect"
printf 'token=%s' "$TOKEN" > "$T/introspect.body"
printf 'grant_type=client_credentials' > "$T/token.body"

# cpu_ticks LIGHTTPD_PID: CPU time (utime + stime, clock ticks, all threads)
# of the fastauth responders it spawned.
cpu_ticks() {
	local p t=0 stat
	for p in $(ps -o pid= --ppid "$1"); do
		stat=$(cat "/proc/$p/stat" 2>/dev/null) || continue
		stat=${stat##*) }
		# shellcheck disable=SC2086
		set -- $stat
		t=$((t + ${12} + ${13}))
	done
	echo "$t"
}
CLK_TCK=$(getconf CLK_TCK)

# ab_run URL BODY CRED SECONDS KEEPALIVE(0|1) [LIGHTTPD_PID]: one ab run;
# prints "rps complete failed non2xx cpu_us_per_request" (the last: CPU of
# that lighttpd's fastauth responders per completed request, 0 without a pid).
ab_run() {
	local kaopt=() c0=0 c1=0
	[ "$5" = 1 ] && kaopt=(-k)
	[ -n "${6:-}" ] && c0=$(cpu_ticks "$6")
	"$AB" "${kaopt[@]}" -q -c "$CONC" -t "$4" -n 100000000 -s 10 -A "$3" \
	    -T application/x-www-form-urlencoded -p "$2" "$1" > "$T/ab.out" 2>&1 || true
	[ -n "${6:-}" ] && c1=$(cpu_ticks "$6")
	awk -v ticks=$((c1 - c0)) -v hz="$CLK_TCK" '
		/^Requests per second:/ { rps = $4 }
		/^Complete requests:/ { done = $3 }
		/^Failed requests:/ { failed = $3 }
		/^Non-2xx responses:/ { non2xx = $3 }
		END {
			cpu = done > 0 ? ticks * 1000000 / hz / done : 0
			printf "%s %s %s %s %.2f\n", rps + 0, done + 0, failed + 0, non2xx + 0, cpu
		}' "$T/ab.out"
}

probe=$(ab_run "$BASE_OFF/oauth2/introspect" "$T/introspect.body" "introspector:$SECRET_I" 1 1)
probe_rps=${probe%% *}
note "introspection probe (limiter off, keep-alive): $probe_rps requests/s"
if python3 -c 'import sys; sys.exit(0 if float(sys.argv[1]) < 2000 * 0.8 else 1)' "$probe_rps"; then
	INTROSPECT_POLICY_ON="2000/1s burst 4000 by client"
	INTROSPECT_POLICY_NOTE="the default"
else
	INTROSPECT_POLICY_ON=$GENEROUS
	INTROSPECT_POLICY_NOTE="the default (2000/1s burst 4000 by client) would refuse at ${probe_rps}/s from one client; a generous policy instead"
fi
# The default token policy (100/1s burst 200) refuses one client's flood of
# token requests; the ON stack checks a generous one.
TOKEN_POLICY_ON=$GENEROUS
conf_for "$FA_INSTANCE-on" "$CONF_ON" "$BASE_ON" \
    "ratelimit_introspect \"$INTROSPECT_POLICY_ON\"" "ratelimit_token \"$TOKEN_POLICY_ON\""
stack on "$CONF_ON" "$PORT_ON"
PID_ON=$LIGHTTPD_PID

# bench_endpoint NAME PATH BODY CRED KEEPALIVE: warm both stacks, then
# alternate OFF and ON runs; appends a JSON object to $RESULTS.
bench_endpoint() {
	local name=$1 path=$2 body=$3 cred=$4 ka=$5 i mode order r n nfail nnon cpu
	local off=() on=() offcpu=() oncpu=() bad=""
	ab_run "$BASE_OFF$path" "$body" "$cred" 1 "$ka" >/dev/null
	ab_run "$BASE_ON$path" "$body" "$cred" 1 "$ka" >/dev/null
	for ((i = 1; i <= RUNS; i++)); do
		# ABBA: off-on, on-off, off-on, ...: no mode always runs first.
		order="off on"
		[ $((i % 2)) = 0 ] && order="on off"
		for mode in $order; do
			if [ "$mode" = off ]; then
				r=$(ab_run "$BASE_OFF$path" "$body" "$cred" "$SECONDS_PER_RUN" "$ka" "$PID_OFF")
				off+=("${r%% *}")
				offcpu+=("${r##* }")
			else
				r=$(ab_run "$BASE_ON$path" "$body" "$cred" "$SECONDS_PER_RUN" "$ka" "$PID_ON")
				on+=("${r%% *}")
				oncpu+=("${r##* }")
			fi
			note "$name keep-alive=$ka run $i $mode: rps complete failed non-2xx cpu-us/req = $r"
			read -r _ n nfail nnon cpu <<< "$r"
			if [ "$n" = 0 ] || [ "$nfail" != 0 ] || [ "$nnon" != 0 ]; then
				bad="$bad $mode#$i:$n/$nfail/$nnon"
			fi
		done
	done
	if [ -z "$bad" ]; then
		pass "$name (keep-alive $ka): every request of every run answered 2xx"
	else
		fail "$name (keep-alive $ka): every request answered 2xx" "runs (complete/failed/non-2xx):$bad" \
		    "last ab output: $(tail -n 30 "$T/ab.out" | tr '\n' '|')"
	fi
	python3 - "$name" "$ka" "${off[*]}" "${on[*]}" "$bad" "${offcpu[*]}" "${oncpu[*]}" <<'EOF' >> "$RESULTS"
import json, statistics, sys
off = [float(x) for x in sys.argv[3].split()]
on = [float(x) for x in sys.argv[4].split()]
offcpu = [float(x) for x in sys.argv[6].split()]
oncpu = [float(x) for x in sys.argv[7].split()]
mo, mn = statistics.median(off), statistics.median(on)
co, cn = statistics.median(offcpu), statistics.median(oncpu)
print(json.dumps({
    "endpoint": sys.argv[1], "keepalive": sys.argv[2] == "1",
    "off_rps": off, "on_rps": on,
    "off_median_rps": mo, "on_median_rps": mn,
    # run-to-run noise: (max - min) / median of each mode's runs
    "off_spread_pct": round((max(off) - min(off)) / mo * 100, 1) if mo else None,
    "on_spread_pct": round((max(on) - min(on)) / mn * 100, 1) if mn else None,
    "ratio_on_off": round(mn / mo, 4) if mo else None,
    "overhead_pct": round((1 - mn / mo) * 100, 2) if mo else None,
    "meets_3pct_target": bool(mo) and (1 - mn / mo) <= 0.03,
    # fastauth's own CPU per request (all responders, user + system): less
    # disturbed by ab and lighttpd sharing the cores than throughput
    "off_cpu_us_per_req": offcpu, "on_cpu_us_per_req": oncpu,
    "off_median_cpu_us": co, "on_median_cpu_us": cn,
    "cpu_overhead_pct": round((cn / co - 1) * 100, 2) if co else None,
    "all_2xx": sys.argv[5] == "",
}))
EOF
}

RESULTS=$T/results.jsonl
: > "$RESULTS"
for ka in 1 0; do
	bench_endpoint introspect /oauth2/introspect "$T/introspect.body" "introspector:$SECRET_I" "$ka"
	bench_endpoint token /oauth2/token "$T/token.body" "app-a:$SECRET_A" "$ka"
done

# The ON stack really checked: its limiter counted the requests.
"$FASTAUTHCTL" -c "$CONF_ON" shm stats > "$T/stats-on" 2>&1 || fail "shm stats of the ON stack" "$(cat "$T/stats-on")"
"$FASTAUTHCTL" -c "$CONF_OFF" shm stats > "$T/stats-off" 2>&1 || fail "shm stats of the OFF stack" "$(cat "$T/stats-off")"
on_checked=$(sed -n 's/^  introspect *allowed \([0-9]*\), limited \([0-9]*\)$/\1 \2/p' "$T/stats-on")
off_checked=$(sed -n 's/^  introspect *allowed \([0-9]*\), limited \([0-9]*\)$/\1 \2/p' "$T/stats-off")
if [ "${on_checked%% *}" -gt 0 ] 2>/dev/null && [ "${off_checked%% *}" = 0 ] && [ "${on_checked##* }" = 0 ]; then
	pass "ON stack's limiter allowed ${on_checked%% *} introspections and refused none; OFF stack checked none"
else
	fail "ON stack's limiter counted the introspections, refused none; OFF stack's counted none" \
	    "ON: allowed/limited $on_checked" "OFF: allowed/limited $off_checked"
fi

"$BENCH_SHM" --seconds 1 > "$T/bench_shm.json" 2>"$T/bench_shm.err" ||
    fail "bench_shm --seconds 1" "$(cat "$T/bench_shm.err")"

python3 - "$SECONDS_PER_RUN" "$CONC" "$RUNS" "$INTROSPECT_POLICY_ON" "$INTROSPECT_POLICY_NOTE" \
    "$TOKEN_POLICY_ON" "$probe_rps" "$T/bench_shm.json" "$(nproc)" "$RESULTS" <<'EOF' >&4
import json, sys
a = sys.argv
try:
    shm = json.load(open(a[8]))
except Exception as e:
    shm = {"error": str(e)}
http = [json.loads(r) for r in open(a[10])]
# One check costs 1e9 / limiter_1t_per_s ns; a request costs *_cpu_us of
# fastauth CPU (all of it, both threads' share): the limiter's share.
per_check_ns = 1e9 / shm["limiter_1t_per_s"] if shm.get("limiter_1t_per_s") else None
for h in http:
    h["limiter_check_ns"] = round(per_check_ns, 1) if per_check_ns else None
    h["limiter_share_of_request_cpu_pct"] = (round(per_check_ns / (h["off_median_cpu_us"] * 1000) * 100, 4)
        if per_check_ns and h["off_median_cpu_us"] else None)
print(json.dumps({
    "bench": "ratelimit",
    "seconds_per_run": int(a[1]), "concurrency": int(a[2]), "runs_each": int(a[3]),
    "cpus": int(a[9]),
    "setup": "lighttpd 1 x (max-procs 2, threads 4) per stack, ab on the same host",
    "policy_on": {"introspect": a[4], "introspect_note": a[5], "token": a[6]},
    "introspect_probe_rps_off": float(a[7]),
    "target_overhead_pct": 3,
    "http": http,
    "bench_shm": shm,
}, indent=1))
EOF
