#!/bin/bash
# authorizer.sh -- what fastauth's FastCGI Authorizer costs a protected
# location, end to end: HTTP throughput of the same content served by one
# lighttpd under /open/ (unprotected), under /protected/ (every request
# checked by fastauth, lighttpd/fastauth-authorizer.conf as shipped) and under
# /trivial/ (every request checked by bench/ceiling in the Authorizer role:
# the same snippet, only the socket differs; it grants every request with
# constant Variable-FASTAUTH_* headers and checks nothing), with a valid
# Bearer token on every request, measured with ab -k in the same run.
#
# /trivial/ is the ceiling of any FastCGI Authorizer behind this lighttpd:
# what the extra FastCGI round trip costs the web server on its own.  So
# fastauth/trivial is the share of the Authorizer's cost that is fastauth's
# own work, trivial/open what the web server's authorizer round trip allows.
#
# Three kinds of content, the same files or application under both prefixes:
#   static  a 15-byte static file (the worst case: lighttpd serves it in a
#           few microseconds, so the Authorizer's FastCGI round trip is
#           most of a protected request);
#   fcgi    a FastCGI application (a fastauth process answering GET
#           /health, a constant JSON document): one FastCGI round trip
#           unprotected, two protected;
#   cgi     a CGI script (sh printing the FASTAUTH_* variables): the
#           protected application of the integration tests.
# The issue's target: protected >= 85% of unprotected throughput.
#
# fastauth runs standalone (--processes 2, threads 4) and answers the
# Authorizer role; the trivial authorizer is one bench/ceiling process with
# as many threads (8) as fastauth has in all; the FastCGI application is
# another standalone fastauth (--processes 1). Each round runs the three
# prefixes, in an order rotated from round to round (RUNS rounds per kind);
# the figure is the median. Every run must have no failed and no non-2xx
# answer. Redis MONITOR counts the revocation lookups the checks made during
# the runs (none while the mirror vouches). Around every run, the CPU time
# (utime + stime, /proc) of lighttpd and of the authorizer's processes gives
# the CPU microseconds per request each of them spent (medians per prefix).
#
# usage: bench/authorizer.sh [--seconds N] [--runs N]   (defaults 3 and 3)
# Prints one JSON object on stdout; progress on stderr.
[ -n "${BASH_VERSION:-}" ] || exec bash "$0" "$@"

SECONDS_PER_RUN=3
RUNS=3
usage() { echo "usage: $0 [--seconds N] [--runs N]" >&2; exit 2; }
while [ $# -gt 0 ]; do
	case $1 in
	--seconds) SECONDS_PER_RUN=${2:-}; shift 2 || usage ;;
	--runs) RUNS=${2:-}; shift 2 || usage ;;
	*) usage ;;
	esac
done
case $SECONDS_PER_RUN$RUNS in
''|*[!0-9]*) usage ;;
esac

# The JSON goes to the real stdout (fd 4); lib.sh's output to stderr.
exec 4>&1 1>&2
: "${top_srcdir:=$(cd "$(dirname "$0")/.." && pwd)}"
export top_srcdir
. "$top_srcdir/tests/integration/lib.sh"
. "$top_srcdir/tests/integration/authorizer_lib.sh"

AB=${AB:-$(command -v ab || echo /usr/bin/ab)}
CEILING=${CEILING:-$top_builddir/bench/ceiling}
require "$REDIS_SERVER" "$REDIS_CLI" "$LIGHTTPD" "$AB" curl python3
require_fastauth
[ -x "$CEILING" ] || die "$CEILING is not built (make bench/ceiling)"
CONC=${CONC:-8}

start_redis
PORT=$(free_port)
BASE=http://127.0.0.1:$PORT/auth
write_fastauth_conf "$FA_CONF" "$BASE" "access_token_ttl 3600"
sed -i -e 's/^log_level debug$/log_level warn/' -e '/^access_token_ttl 300$/d' "$FA_CONF"
ctl key init >/dev/null 2>"$T/ctl.err" || die "fastauthctl key init failed" "$(cat "$T/ctl.err")"
setup_clients

mkdir -p "$T/run" "$T/www"
make_protected_tree "$T/www/protected"
start_fastauth "$FA_CONF" "unix:$T/run/fastauth.sock" --processes 2
AUTH_PID=$FA_PID
start_fastauth "$FA_CONF" "unix:$T/run/app.sock" --processes 1
"$CEILING" --socket "$T/run/trivial.sock" --threads 8 </dev/null >"$T/trivial.log" 2>&1 3>&- &
TRIVIAL_PID=$!
fa_register "$TRIVIAL_PID" "bench/ceiling --socket (trivial authorizer)" "$T/trivial.log"
wait_until 10 test -S "$T/run/trivial.sock" ||
    die "bench/ceiling: not listening on $T/run/trivial.sock" "$(cat "$T/trivial.log")"

install_conf "$top_srcdir/lighttpd/fastauth-socket.conf" "$T/fastauth-socket.conf" \
    "/run/fastauth/fastauth.sock" "$T/run/fastauth.sock"
install_conf "$top_srcdir/lighttpd/fastauth-authorizer.conf" "$T/fastauth-authorizer.conf" \
    "/run/fastauth/fastauth.sock" "$T/run/fastauth.sock"
# The trivial authorizer's: the shipped snippet for /trivial/, its own socket,
# without the server.modules line (the first copy loads the modules).
install_conf "$top_srcdir/lighttpd/fastauth-authorizer.conf" "$T/trivial-authorizer.conf" \
    "/run/fastauth/fastauth.sock" "$T/run/trivial.sock" \
    'server.modules += ( "mod_fastcgi", "mod_setenv" )' "" \
    '"^/protected/' '"^/trivial/' '"/protected/" =>' '"/trivial/" =>'
grep -v '^[[:space:]]*#' "$T/trivial-authorizer.conf" | grep -q 'protected\|mod_' &&
    die "trivial-authorizer.conf: substitution incomplete" "$(grep -v '^[[:space:]]*#' "$T/trivial-authorizer.conf")"
# Keep-alive allowed (unlike lib.sh's make_lighttpd_conf), for ab -k.
cat > "$T/lighttpd.conf" <<EOF
# written by bench/authorizer.sh
server.document-root = "$T/www"
server.bind          = "127.0.0.1"
server.port          = $PORT
server.errorlog      = "$T/lighttpd.conf.error.log"
include "$T/fastauth-socket.conf"
include "$T/fastauth-authorizer.conf"
include "$T/trivial-authorizer.conf"
server.modules += ( "mod_alias", "mod_cgi" )
# /open/ is /protected/ without the check, /trivial/ with the trivial one.
\$HTTP["url"] =~ "^/open/" {
  alias.url = ( "/open/" => "$T/www/protected/" )
}
\$HTTP["url"] =~ "^/trivial/" {
  alias.url = ( "/trivial/" => "$T/www/protected/" )
}
\$HTTP["url"] =~ "^/(open|protected|trivial)/app/" {
  cgi.assign = ( ".cgi" => "" )
}
\$HTTP["url"] =~ "^/open/fcgi/" {
  fastcgi.server = ( "/open/fcgi" => (( "socket" => "$T/run/app.sock", "check-local" => "disable" )) )
}
# A FastCGI application under a protected location: its entry goes in the
# same list as the Authorizer's (a list set here replaces the snippet's).
\$HTTP["url"] =~ "^/protected/fcgi/" {
  fastcgi.server = (
    "/protected/" => (( "mode" => "authorizer", "socket" => "$T/run/fastauth.sock", "check-local" => "disable" )),
    "/protected/fcgi" => (( "socket" => "$T/run/app.sock", "check-local" => "disable" )),
  )
}
\$HTTP["url"] =~ "^/trivial/fcgi/" {
  fastcgi.server = (
    "/trivial/" => (( "mode" => "authorizer", "socket" => "$T/run/trivial.sock", "check-local" => "disable" )),
    "/trivial/fcgi" => (( "socket" => "$T/run/app.sock", "check-local" => "disable" )),
  )
}
EOF
start_lighttpd "$T/lighttpd.conf" "$PORT"
wait_ready "$BASE" || die "fastauth is not ready"

TOKEN=$(get_token "$BASE" app-a "$SECRET_A" "scope=read") || die "no token"
OPEN=http://127.0.0.1:$PORT/open
PROT=http://127.0.0.1:$PORT/protected
TRIV=http://127.0.0.1:$PORT/trivial
# Sanity: what the runs will fetch is there, and protected.
for path in file.txt fcgi/health app/echo.cgi; do
	auth_get "$PROT/$path" ""
	assert_status 401 "protected/$path without a token -> 401"
	auth_get "$PROT/$path" "$TOKEN"
	assert_status 200 "protected/$path with the token -> 200"
	auth_get "$OPEN/$path" ""
	assert_status 200 "open/$path -> 200"
	auth_get "$TRIV/$path" "$TOKEN"
	assert_status 200 "trivial/$path with the token -> 200"
done
# The trivial authorizer's grant reaches the application as fastauth's does.
auth_get "$TRIV/app/echo.cgi" ""
assert_status 200 "trivial/app/echo.cgi without a token -> 200 (it checks nothing)"
assert_body_has "FASTAUTH_SUB=ceiling" "trivial: the CGI sees the trivial authorizer's FASTAUTH_SUB"
auth_get "$PROT/app/echo.cgi" "$TOKEN"
assert_body_has "FASTAUTH_SUB=app-a" "protected: the CGI sees fastauth's FASTAUTH_SUB"

# ab_run URL SECONDS: "rps complete failed non2xx".
ab_run() {
	"$AB" -k -q -c "$CONC" -t "$2" -n 100000000 -s 10 \
	    -H "Authorization: Bearer $TOKEN" "$1" > "$T/ab.out" 2>&1 || true
	awk '
		/^Requests per second:/ { rps = $4 }
		/^Complete requests:/ { done = $3 }
		/^Failed requests:/ { failed = $3 }
		/^Non-2xx responses:/ { non2xx = $3 }
		END { printf "%s %s %s %s\n", rps + 0, done + 0, failed + 0, non2xx + 0 }' "$T/ab.out"
}

# cpu_ticks PID...: user + system clock ticks of these processes and of their
# children (fastauth's master forks its workers), threads included.
cpu_ticks() {
	local p c t=0 all=() f line
	for p in "$@"; do
		all+=("$p")
		for c in $(cat /proc/"$p"/task/*/children 2>/dev/null); do
			all+=("$c")
		done
	done
	for p in "${all[@]}"; do
		# A child (lighttpd's CGI) may be gone by now.
		{ read -r line < "/proc/$p/stat"; } 2>/dev/null || continue
		# After "(comm) ": state is [0], utime [11], stime [12].
		read -r -a f <<< "${line##*) }"
		t=$((t + f[11] + f[12]))
	done
	echo "$t"
}
TICK_US=$((1000000 / $(getconf CLK_TCK)))

RESULTS=$T/results.jsonl
: > "$RESULTS"
# mirror_epoch: the revocation mirror's epoch (a new one on every
# (re)subscription or loss of it) and its state, from fastauthctl shm stats.
mirror_state() {
	ctl shm stats 2>/dev/null | sed -n 's/^revocation mirror: \(.*\), epoch \([0-9]*\),.*/\2 \1/p'
}
mirror_before=$(mirror_state)
monitor_start
mark_before=$(monitor_mark)
total=0
# bench_kind NAME PATH
bench_kind() {
	local name=$1 path=$2 i mode order r n nfail nnon open=() prot=() triv=() bad=""
	local l0 a0 l1 a1 apid cpu=()
	ab_run "$OPEN/$path" 1 >/dev/null
	ab_run "$PROT/$path" 1 >/dev/null
	ab_run "$TRIV/$path" 1 >/dev/null
	for ((i = 1; i <= RUNS; i++)); do
		case $((i % 3)) in
		1) order="open protected trivial" ;;
		2) order="protected trivial open" ;;
		0) order="trivial open protected" ;;
		esac
		for mode in $order; do
			apid=$AUTH_PID
			[ "$mode" = trivial ] && apid=$TRIVIAL_PID
			l0=$(cpu_ticks "$LIGHTTPD_PID")
			a0=$(cpu_ticks "$apid")
			case $mode in
			open)
				r=$(ab_run "$OPEN/$path" "$SECONDS_PER_RUN")
				open+=("${r%% *}") ;;
			trivial)
				r=$(ab_run "$TRIV/$path" "$SECONDS_PER_RUN")
				triv+=("${r%% *}") ;;
			protected)
				r=$(ab_run "$PROT/$path" "$SECONDS_PER_RUN")
				prot+=("${r%% *}")
				read -r _ n _ _ <<< "$r"
				total=$((total + n)) ;;
			esac
			l1=$(cpu_ticks "$LIGHTTPD_PID")
			a1=$(cpu_ticks "$apid")
			read -r _ n _ _ <<< "$r"
			# "mode lighttpd-us authorizer-us complete"
			cpu+=("$mode,$(((l1 - l0) * TICK_US)),$(((a1 - a0) * TICK_US)),$n")
			note "$name run $i $mode: rps complete failed non-2xx = $r"
			read -r _ n nfail nnon <<< "$r"
			if [ "$n" = 0 ] || [ "$nfail" != 0 ] || [ "$nnon" != 0 ]; then
				bad="$bad $mode#$i:$n/$nfail/$nnon"
			fi
		done
	done
	if [ -z "$bad" ]; then
		pass "$name: every request of every run answered 2xx"
	else
		fail "$name: every request answered 2xx" "runs (complete/failed/non-2xx):$bad" \
		    "last ab output: $(tail -n 30 "$T/ab.out" | tr '\n' '|')"
	fi
	python3 - "$name" "$path" "${open[*]}" "${prot[*]}" "$bad" "${triv[*]}" "${cpu[*]}" <<'EOF' >> "$RESULTS"
import json, statistics, sys
cpu = {"open": ([], []), "protected": ([], []), "trivial": ([], [])}
for rec in sys.argv[7].split():
    mode, lus, aus, n = rec.split(",")
    if int(n) > 0:
        cpu[mode][0].append(int(lus) / int(n))
        cpu[mode][1].append(int(aus) / int(n))
def med(v):
    return round(statistics.median(v), 1) if v else None
o = [float(x) for x in sys.argv[3].split()]
p = [float(x) for x in sys.argv[4].split()]
t = [float(x) for x in sys.argv[6].split()]
mo, mp, mt = statistics.median(o), statistics.median(p), statistics.median(t)
print(json.dumps({
    "kind": sys.argv[1], "path": sys.argv[2],
    "open_rps": o, "protected_rps": p,
    "open_median_rps": mo, "protected_median_rps": mp,
    "open_spread_pct": round((max(o) - min(o)) / mo * 100, 1) if mo else None,
    "protected_spread_pct": round((max(p) - min(p)) / mp * 100, 1) if mp else None,
    "ratio_protected_open": round(mp / mo, 4) if mo else None,
    "meets_85pct_target": bool(mo) and mp / mo >= 0.85,
    "all_2xx": sys.argv[5] == "",
    # the same location behind bench/ceiling as a trivial Authorizer
    "trivial_rps": t, "trivial_median_rps": mt,
    "trivial_spread_pct": round((max(t) - min(t)) / mt * 100, 1) if mt else None,
    # what any Authorizer round trip allows here, and fastauth's share of it
    "ratio_trivial_open": round(mt / mo, 4) if mo else None,
    "ratio_protected_trivial": round(mp / mt, 4) if mt else None,
    # CPU microseconds per request (medians over the runs): lighttpd's, and
    # the authorizer processes' (fastauth's under protected, bench/ceiling's
    # under trivial; under open, fastauth's, which should be about 0)
    "cpu_us_per_request": {
        "lighttpd": {m: med(cpu[m][0]) for m in cpu},
        "authorizer": {m: med(cpu[m][1]) for m in cpu},
    },
}))
EOF
}

bench_kind static file.txt
bench_kind fcgi fcgi/health
bench_kind cgi app/echo.cgi
mark_after=$(monitor_mark)
lookups=$(revocation_lookups "$mark_before" "$mark_after")
monitor_stop
mirror_after=$(mirror_state)
ctl shm stats > "$T/shm-stats.txt" 2>&1 || true
note "shm stats after the runs: $(tr '\n' '|' < "$T/shm-stats.txt")"

python3 - "$SECONDS_PER_RUN" "$CONC" "$RUNS" "$(nproc)" "$RESULTS" \
    "$lookups" "$total" "$mirror_before" "$mirror_after" <<'EOF' >&4
import json, sys
a = sys.argv
print(json.dumps({
    "bench": "authorizer",
    "seconds_per_run": int(a[1]), "concurrency": int(a[2]), "runs_each": int(a[3]),
    "cpus": int(a[4]),
    "setup": "one lighttpd (keep-alive, ab -k), fastauth standalone --processes 2 "
             "x threads 4 as Authorizer, lighttpd/fastauth-authorizer.conf as shipped; "
             "trivial: bench/ceiling --threads 8 as Authorizer, the same snippet on "
             "its own socket; ab, lighttpd and the backends share the cores",
    "target_ratio": 0.85,
    "http": [json.loads(r) for r in open(a[5])],
    "protected_requests": int(a[7]),
    # revocation lookups Redis saw (MONITOR) during all the runs: checks the
    # mirror did not vouch for (its leader's heartbeat older than 300 ms)
    "redis_revocation_lookups_during_runs": int(a[6]),
    # "epoch state" before and after: a changed epoch means the mirror lost
    # or renewed its subscription during the runs (and asked Redis again)
    "mirror_before": a[8], "mirror_after": a[9],
}, indent=1))
EOF
