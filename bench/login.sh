#!/bin/bash
# login.sh -- what a password login costs over HTTP, against raw libargon2,
# in the same run.  One JSON object on stdout; progress on stderr.
#
#  - throughput: password grants per second measured with ab(1) through a
#    private lighttpd spawning fastauth (lighttpd/fastauth-spawn.conf,
#    max-procs 2) at the default Argon2id parameters (m=19456 t=2 p=1), at
#    concurrency 2 and 4; right after each, bench/bench_password's raw
#    argon2id_hash_raw hashes per second at the same parameters with as many
#    threads; and the ratio (target >= 0.90).  The two alternate for
#    --rounds rounds, so that load from elsewhere on the machine falls on
#    both; the ratio is of the sums over the rounds;
#  - timing: the wall time of a login for an unknown user against one with a
#    wrong password for an existing user, over HTTP, alternating, the median
#    and mean of each and their ratio (target within 5%).  The brute-force
#    delay and lock and the failed-login rate limit (ratelimit_login) are set
#    out of the way for this (a throttled, locked or limited attempt is
#    refused without hashing: that would be measured instead).
#
# usage: bench/login.sh [--seconds N] [--rounds N] [--samples N]
#   --seconds N   each ab run and each bench_password measurement (default 3)
#   --rounds N    ab / bench_password alternations per concurrency (default 3)
#   --samples N   logins of each kind for the timing (default 60)
#
# Needs: redis-server, lighttpd, ab (apache2-utils), curl, python3, and the
# built src/server/fastauth, src/ctl/fastauthctl and bench/bench_password
# (make src/server/fastauth src/ctl/fastauthctl bench/bench_password).
[ -n "${BASH_VERSION:-}" ] || exec bash "$0" "$@"

SECONDS_EACH=3
ROUNDS=3
SAMPLES=60
usage() {
	echo "usage: $0 [--seconds N] [--rounds N] [--samples N]" >&2
	exit 2
}
while [ $# -gt 0 ]; do
	case $1 in
	--seconds) [ $# -ge 2 ] || usage; SECONDS_EACH=$2; shift 2 ;;
	--rounds) [ $# -ge 2 ] || usage; ROUNDS=$2; shift 2 ;;
	--samples) [ $# -ge 2 ] || usage; SAMPLES=$2; shift 2 ;;
	-h|--help) sed -n '2,/^$/s/^# \{0,1\}//p' "$0"; exit 0 ;;
	*)	usage ;;
	esac
done
case "$SECONDS_EACH:$ROUNDS:$SAMPLES" in
*[!0-9:]*|:*|*::*|*:) echo "$0: --seconds, --rounds and --samples take whole numbers" >&2; exit 2 ;;
esac
if [ "$SECONDS_EACH" -lt 1 ] || [ "$ROUNDS" -lt 1 ] || [ "$SAMPLES" -lt 3 ]; then
	echo "$0: --seconds >= 1, --rounds >= 1, --samples >= 3" >&2
	exit 2
fi

# The JSON goes to the real stdout (fd 4); lib.sh's progress and summary to
# stderr.
exec 4>&1 1>&2
# shellcheck source=../tests/integration/lib.sh
. "$(cd "$(dirname "$0")" && pwd)/../tests/integration/lib.sh"

AB=${AB:-$(command -v ab || echo /usr/bin/ab)}
BENCH_PASSWORD=${BENCH_PASSWORD:-$top_builddir/bench/bench_password}
require "$REDIS_SERVER" "$LIGHTTPD" "$AB" curl python3
require_fastauth
[ -x "$BENCH_PASSWORD" ] || die "$BENCH_PASSWORD is not built (make bench/bench_password)"

M_KIB=19456
T_COST=2
P_LANES=1

start_redis
HTTP_PORT=$(free_port)
BASE=http://127.0.0.1:$HTTP_PORT/auth
TOKEN_URL=$BASE/oauth2/token
write_fastauth_conf "$FA_CONF" "$BASE" \
    "argon2_memory_kib $M_KIB" "argon2_iterations $T_COST" "argon2_parallelism $P_LANES" \
    "login_max_failures 1000" "login_delay_base_ms 0" "login_delay_max_ms 0" \
    "login_max_failures_per_address 100000" "ratelimit_login off" \
    "audit_log $T/audit.log"

ctl key init >/dev/null 2>"$T/ctl.err" || die "fastauthctl key init failed" "$(cat "$T/ctl.err")"
SW=$(ctl_secret client add --id bench --grant password --scope openid)
PW='bench-passw0rd-1234'
printf '%s\n' "$PW" | ctl user add bench >/dev/null 2>"$T/ctl.err" ||
    die "fastauthctl user add bench failed" "$(cat "$T/ctl.err")"

mkdir -p "$T/run"
install_conf "$top_srcdir/lighttpd/fastauth-spawn.conf" "$T/fastauth-spawn.conf" \
    "/usr/sbin/fastauth -c /etc/fastauth/fastauth.conf" "$FASTAUTH -c $FA_CONF" \
    "/run/lighttpd/fastauth.sock" "$T/run/fastauth.sock"
make_lighttpd_conf "$T/lighttpd.conf" "$HTTP_PORT" "$T/fastauth-spawn.conf"
start_lighttpd "$T/lighttpd.conf" "$HTTP_PORT"
wait_ready "$BASE"

printf 'grant_type=password&username=bench&password=%s&scope=openid' "$PW" > "$T/login.body"
post_form "$TOKEN_URL" "$(cat "$T/login.body")" -u "bench:$SW"
assert_status 200 "a login works before measuring"

LOAD_START=$(cut -d' ' -f1-3 /proc/loadavg)

# ab_run CONCURRENCY: password grants for SECONDS_EACH seconds; prints
# "rps complete failed non2xx".
ab_run() {
	local out
	# Warm every request thread (its Argon2 pool) first.
	"$AB" -q -n $((4 * $1 + 8)) -c "$1" -p "$T/login.body" \
	    -T application/x-www-form-urlencoded -A "bench:$SW" "$TOKEN_URL" >/dev/null 2>&1 || true
	out=$("$AB" -q -t "$SECONDS_EACH" -n 1000000 -c "$1" -p "$T/login.body" \
	    -T application/x-www-form-urlencoded -A "bench:$SW" "$TOKEN_URL" 2>&1) ||
	    die "ab -c $1 failed" "$out"
	printf '%s\n' "$out" > "$T/ab.c$1.log"
	printf '%s\n' "$out" | awk '
		/^Requests per second:/ { rps = $4 }
		/^Complete requests:/ { done = $3 }
		/^Failed requests:/ { failed = $3 }
		/^Non-2xx responses:/ { non2xx = $3 }
		END { printf "%s %s %s %s\n", rps, done + 0, failed + 0, non2xx + 0 }'
}

# raw_run THREADS: bench_password's figures at the default parameters.
raw_run() {
	"$BENCH_PASSWORD" --seconds "$SECONDS_EACH" --threads "$1" > "$T/raw.t$1.json" 2>"$T/raw.t$1.err" ||
	    die "bench_password --threads $1 failed" "$(cat "$T/raw.t$1.err")"
	python3 - "$T/raw.t$1.json" "$M_KIB" "$T_COST" "$P_LANES" <<'EOF'
import json, sys
doc = json.load(open(sys.argv[1]))
m, t, p = (int(x) for x in sys.argv[2:5])
for h in doc["hash"]:
    if (h["m_kib"], h["t"], h["p"]) == (m, t, p):
        print(h["raw_argon2id_hash_raw"]["hashes_per_s"],
              h["pooled_password_hash"]["hashes_per_s"])
        break
else:
    sys.exit("bench_password: no figures for m=%d t=%d p=%d" % (m, t, p))
EOF
}

THROUGHPUT=""
for c in 2 4; do
	for r in $(seq 1 "$ROUNDS"); do
		note "round $r/$ROUNDS: ab, password grants at concurrency $c for $SECONDS_EACH s"
		read -r rps ndone failed non2xx <<< "$(ab_run "$c")"
		note "round $r/$ROUNDS: bench_password --threads $c --seconds $SECONDS_EACH"
		read -r raw pooled <<< "$(raw_run "$c")"
		if [ "$failed" = 0 ] && [ "$non2xx" = 0 ] && [ "$ndone" -gt 0 ]; then
			pass "ab -c $c: $ndone logins, $rps/s, none failed; raw argon2 $raw/s"
		else
			fail "ab -c $c: every login answered 200" "$ndone complete, $failed failed, $non2xx non-2xx"
		fi
		THROUGHPUT="$THROUGHPUT $c:$r:$rps:$ndone:$failed:$non2xx:$raw:$pooled"
	done
done

# --- unknown user against wrong password --------------------------------------------
# login_ms USERNAME: one login's wall time (ms, curl's time_total); it must
# be refused with 400.
login_ms() {
	local out
	out=$(curl -sS --max-time 15 -o /dev/null -w '%{http_code} %{time_total}' -u "bench:$SW" \
	    -H 'Content-Type: application/x-www-form-urlencoded' \
	    --data-binary "grant_type=password&username=$1&password=wrong-$PW&scope=openid" \
	    "$TOKEN_URL" 2>/dev/null) || out="000 0"
	[ "${out% *}" = 400 ] || die "login as $1 with a wrong password: expected 400, got ${out% *}"
	awk -v s="${out#* }" 'BEGIN { printf "%.3f\n", s * 1000 }'
}
# Warm up: each process makes its dummy hash on its first unknown user.
for i in 1 2 3 4 5 6 7 8; do
	login_ms "nobody$i" >/dev/null
	login_ms bench >/dev/null
done
: > "$T/wrong.ms"
: > "$T/unknown.ms"
for i in $(seq 1 "$SAMPLES"); do
	if [ $((i % 2)) = 0 ]; then
		login_ms bench >> "$T/wrong.ms"
		login_ms "nobody-$i" >> "$T/unknown.ms"
	else
		login_ms "nobody-$i" >> "$T/unknown.ms"
		login_ms bench >> "$T/wrong.ms"
	fi
done
pass "$SAMPLES wrong-password and $SAMPLES unknown-user logins timed"
LOAD_END=$(cut -d' ' -f1-3 /proc/loadavg)

python3 - "$T" "$SECONDS_EACH" "$ROUNDS" "$M_KIB" "$T_COST" "$P_LANES" \
    "$LOAD_START" "$LOAD_END" "$THROUGHPUT" <<'EOF' >&4
import json, os, statistics, sys
tdir, secs, rounds, m, t, p, load0, load1, tp = sys.argv[1:10]
out = {
    "bench": "login",
    "seconds": int(secs),
    "rounds": int(rounds),
    "argon2": {"m_kib": int(m), "t": int(t), "p": int(p)},
    "setup": "lighttpd (fastauth-spawn.conf, max-procs 2) -> fastauth "
             "(threads 4, argon2_max_concurrent 0 = cores), redis-server; ab -c N",
    "cpus": os.cpu_count(),
    "loadavg": {"start": load0, "end": load1},
    "throughput": [],
}
by_c = {}
for item in tp.split():
    c, r, rps, done, failed, non2xx, raw, pooled = item.split(":")
    by_c.setdefault(int(c), []).append((float(rps), int(done), int(failed) + int(non2xx),
                                        float(raw), float(pooled)))
for c, runs in sorted(by_c.items()):
    http = sum(x[0] for x in runs) / len(runs)
    raw = sum(x[3] for x in runs) / len(runs)
    pooled = sum(x[4] for x in runs) / len(runs)
    ratio = http / raw if raw > 0 else None
    out["throughput"].append({
        "concurrency": c,
        "http_logins_per_s": round(http, 2),
        "http_requests": sum(x[1] for x in runs),
        "http_failed": sum(x[2] for x in runs),
        "raw_argon2_threads": c,
        "raw_argon2_hashes_per_s": round(raw, 2),
        "pooled_password_hash_per_s": round(pooled, 2),
        "http_vs_raw": round(ratio, 3) if ratio is not None else None,
        "http_vs_raw_per_round": [round(x[0] / x[3], 3) for x in runs if x[3] > 0],
        "target": 0.90,
        "meets_target": ratio is not None and ratio >= 0.90,
    })
def load(name):
    return [float(x) for x in open(os.path.join(tdir, name)).read().split()]
wrong, unknown = load("wrong.ms"), load("unknown.ms")
def summary(v):
    return {"calls": len(v), "median_ms": round(statistics.median(v), 3),
            "mean_ms": round(statistics.mean(v), 3),
            "min_ms": round(min(v), 3), "max_ms": round(max(v), 3)}
rmed = statistics.median(unknown) / statistics.median(wrong)
rmean = statistics.mean(unknown) / statistics.mean(wrong)
out["timing"] = {
    "order": "alternating, sequential, over HTTP; throttling and ratelimit_login off",
    "wrong_password": summary(wrong),
    "unknown_user": summary(unknown),
    "unknown_vs_wrong_median": round(rmed, 4),
    "unknown_vs_wrong_mean": round(rmean, 4),
    "target_within": 0.05,
    "meets_target": abs(rmed - 1) <= 0.05,
}
print(json.dumps(out))
EOF
