#!/bin/bash
# login_limit.sh -- ratelimit_login under concurrency, behind a private
# lighttpd spawning fastauth (lighttpd/fastauth-spawn.conf, max-procs 2):
#  - successful logins are given back: more logins than the burst succeed;
#  - wrong passwords sent all at once get past the limit at most burst times
#    in total (each attempt is charged before its Argon2 run), the rest 429
#    with Retry-After and the RateLimit fields;
#  - once the budget is spent, the right password gets 429 too.
# Argon2 is made slow enough (16 MiB, 3 passes) that the concurrent attempts
# overlap their hashing, which is what a charge-after-failure limiter let
# through.
[ -n "${BASH_VERSION:-}" ] || exec bash "$0" "$@"
. "$(dirname "$0")/lib.sh"

require "$REDIS_SERVER" "$REDIS_CLI" "$LIGHTTPD" curl
require_fastauth

BURST=3
start_redis
HTTP_PORT=$(free_port)
BASE=http://127.0.0.1:$HTTP_PORT/auth
TOKEN_URL=$BASE/oauth2/token
write_fastauth_conf "$FA_CONF" "$BASE" \
    "argon2_memory_kib 16384" "argon2_iterations 3" "argon2_parallelism 1" \
    "login_max_failures 1000" "login_failure_window 300" \
    "login_delay_base_ms 0" "login_delay_max_ms 0" \
    "login_max_failures_per_address 1000" \
    "ratelimit_login \"$BURST/60s burst $BURST by username\""

ctl key init >/dev/null 2>"$T/ctl.err" || die "fastauthctl key init failed" "$(cat "$T/ctl.err")"
SW=$(ctl_secret client add --id web --grant password --scope openid)
PW_BOB='bob-passw0rd'
printf '%s\n' "$PW_BOB" | ctl user add bob >/dev/null 2>"$T/ctl.err" ||
    die "fastauthctl user add bob failed" "$(cat "$T/ctl.err")"

mkdir -p "$T/run"
install_conf "$top_srcdir/lighttpd/fastauth-spawn.conf" "$T/fastauth-spawn.conf" \
    "/usr/sbin/fastauth -c /etc/fastauth/fastauth.conf" "$FASTAUTH -c $FA_CONF" \
    "/run/lighttpd/fastauth.sock" "$T/run/fastauth.sock"
make_lighttpd_conf "$T/lighttpd.conf" "$HTTP_PORT" "$T/fastauth-spawn.conf"
start_lighttpd "$T/lighttpd.conf" "$HTTP_PORT"
wait_ready "$BASE"

# login PASSWORD: the password grant for bob.
login() {
	post_form "$TOKEN_URL" "grant_type=password&username=bob&password=$1" -u "web:$SW"
}

# --- successes are given back ------------------------------------------------
ok=0
for i in $(seq 1 $((BURST * 2))); do
	login "$PW_BOB"
	[ "$HTTP_STATUS" = 200 ] && ok=$((ok + 1))
done
assert_eq "$ok" $((BURST * 2)) "$((BURST * 2)) successful logins in a row with burst $BURST: none counted"

# --- concurrent wrong passwords -------------------------------------------------
N=$((BURST * 5))
pids=()
for i in $(seq 1 "$N"); do
	curl -s -o "$T/c$i.body" -D "$T/c$i.hdr" -w '%{http_code}' --max-time 30 \
	    -u "web:$SW" --data "grant_type=password&username=bob&password=wrong$i" \
	    "$TOKEN_URL" > "$T/c$i.code" 2>/dev/null &
	pids+=($!)
done
wait "${pids[@]}" || true
n400=0 n429=0 other=""
for i in $(seq 1 "$N"); do
	case $(cat "$T/c$i.code") in
	400)	grep -q '"error":"invalid_grant"' "$T/c$i.body" && n400=$((n400 + 1)) ;;
	429)	n429=$((n429 + 1))
		last429=$i ;;
	*)	other="$other $(cat "$T/c$i.code")" ;;
	esac
done
note "$N concurrent wrong passwords: $n400 reached the password check (400), $n429 refused (429)${other:+, other:$other}"
assert_eq "$other" "" "every concurrent attempt answered 400 or 429"
if [ "$n400" -le "$BURST" ]; then
	pass "at most burst ($BURST) concurrent wrong passwords reached the password check ($n400)"
else
	fail "at most $BURST concurrent wrong passwords reach the password check" "$n400 did"
fi
assert_eq $((n400 + n429)) "$N" "all $N attempts accounted for"
if [ -n "${last429:-}" ]; then
	grep -qi '^Retry-After: [1-9]' "$T/c$last429.hdr" &&
	    pass "the 429 has Retry-After" || fail "the 429 has Retry-After" "$(cat "$T/c$last429.hdr")"
	grep -qi '^RateLimit-Policy: "login"' "$T/c$last429.hdr" &&
	    pass "the 429 has RateLimit-Policy" || fail "the 429 has RateLimit-Policy" "$(cat "$T/c$last429.hdr")"
else
	fail "some concurrent attempts were refused with 429"
fi

# --- the budget is spent: the right password waits too ---------------------------
login "$PW_BOB"
assert_error 429 too_many_requests "bob's right password while the budget is spent -> 429"
