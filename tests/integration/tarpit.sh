#!/bin/bash
# tarpit.sh -- ratelimit_tarpit_ms behind lighttpd (a standalone fastauth on
# a unix socket, one process, two request threads): a request over its rate
# limit gets its 429 (with Retry-After, RateLimit headers and the JSON error)
# no sooner than the delay; while more refusals than threads are held, the
# threads still serve other requests at once; beyond ratelimit_tarpit_max
# refusals are answered at once; /metrics counts the held ones
# (fastauth_tarpit_held); SIGTERM sends what is held at once and the process
# exits 0.
[ -n "${BASH_VERSION:-}" ] || exec bash "$0" "$@"
. "$(dirname "$0")/lib.sh"

require "$REDIS_SERVER" "$REDIS_CLI" "$LIGHTTPD" curl python3
require_fastauth

DELAY_MS=4000
start_redis "$(free_port)"
HTTP_PORT=$(free_port)
BASE=http://127.0.0.1:$HTTP_PORT/auth
write_fastauth_conf "$FA_CONF" "$BASE" "threads 2" \
    'ratelimit_token "1/60s burst 1 by client"' \
    "ratelimit_tarpit_ms $DELAY_MS" "ratelimit_tarpit_max 3"
ctl key init >/dev/null 2>"$T/ctl.err" || die "fastauthctl key init failed" "$(cat "$T/ctl.err")"
setup_clients
start_fastauth "$FA_CONF" "unix:$T/fa.sock" --processes 1
install_conf "$top_srcdir/lighttpd/fastauth-socket.conf" "$T/socket.snippet" \
    '"socket"      => "/run/fastauth/fastauth.sock",' "\"socket\" => \"$T/fa.sock\","
make_lighttpd_conf "$T/lighttpd.conf" "$HTTP_PORT" "$T/socket.snippet"
start_lighttpd "$T/lighttpd.conf" "$HTTP_PORT"
wait_ready "$BASE"

now_ms() { date +%s%3N; }

# The client's one request of the minute, then a refusal, timed.
post_form "$BASE/oauth2/token" grant_type=client_credentials -u "app-a:$SECRET_A"
assert_status 200 "the first token request of app-a is allowed"
t0=$(now_ms)
post_form "$BASE/oauth2/token" grant_type=client_credentials -u "app-a:$SECRET_A"
t1=$(now_ms)
assert_status 429 "the second is refused"
assert_error 429 too_many_requests "the held answer is the RFC 6749 JSON error"
assert_header Retry-After '^[0-9]+$' "the held 429 has Retry-After"
assert_header RateLimit '^"token";r=0;t=[0-9]+$' "the held 429 has RateLimit"
if [ $((t1 - t0)) -ge $((DELAY_MS - 100)) ]; then
	pass "the 429 came after $((t1 - t0)) ms, not before the $DELAY_MS ms delay"
else
	fail "the 429 is held for ratelimit_tarpit_ms" "it came after $((t1 - t0)) ms"
fi

# Five refusals at once (more than the 2 threads, more than the 3 held at
# most), and meanwhile another client's request and the health check.
# refuse_in_background NAME N: N token requests of app-a at once, each
# writing "STATUS MS" to $T/NAME.I when it is answered; pids in $pids.
refuse_in_background() {
	local i
	pids=()
	for ((i = 1; i <= $2; i++)); do
		( s=$(now_ms)
		  c=$(curl -sS -o /dev/null -w '%{http_code}' -u "app-a:$SECRET_A" \
		      -d grant_type=client_credentials "$BASE/oauth2/token" 2>/dev/null || echo 000)
		  echo "$c $(( $(now_ms) - s ))" > "$T/$1.$i" ) &
		pids+=($!)
	done
}
refuse_in_background held 5
sleep 0.5
t0=$(now_ms)
post_form "$BASE/oauth2/token" grant_type=client_credentials -u "app-b:$SECRET_B"
t1=$(now_ms)
assert_status 200 "another client gets its token while refusals are held"
held_left=0
for i in 1 2 3 4 5; do [ -s "$T/held.$i" ] || held_left=$((held_left + 1)); done
if [ "$held_left" -ge 1 ]; then
	pass "it was answered in $((t1 - t0)) ms, with $held_left refusals still held"
else
	fail "another client is served while refusals are held" \
	    "every held refusal had come back already ($((t1 - t0)) ms)"
fi
http GET "$BASE/metrics"
held=$(sed -n 's/^fastauth_tarpit_held \([0-9-]*\)$/\1/p' <<<"$HTTP_BODY")
if [ -n "$held" ] && [ "$held" -ge 1 ] && [ "$held" -le 3 ]; then
	pass "/metrics: fastauth_tarpit_held $held while refusals are held (at most 3)"
else
	fa_fail_http "/metrics shows the refusals held" "fastauth_tarpit_held: '${held}'"
fi
wait "${pids[@]}"
http GET "$BASE/metrics"
held=$(sed -n 's/^fastauth_tarpit_held \([0-9-]*\)$/\1/p' <<<"$HTTP_BODY")
assert_eq "$held" 0 "/metrics: fastauth_tarpit_held back to 0 once they are sent"
fast=0 slow=0
for i in 1 2 3 4 5; do
	read -r code ms < "$T/held.$i"
	assert_eq "$code" 429 "concurrent refusal $i: 429"
	if [ "$ms" -ge $((DELAY_MS - 100)) ]; then slow=$((slow + 1)); else fast=$((fast + 1)); fi
done
if [ "$slow" -le 3 ] && [ "$fast" -ge 2 ]; then
	pass "ratelimit_tarpit_max 3: $slow held, $fast answered at once"
else
	fail "at most 3 refusals are held, the rest answered at once" "held $slow, at once $fast"
fi

# SIGTERM while answers are held: they go out at once, exit 0.
refuse_in_background term 2
sleep 1
kill -TERM "$FA_PID"
rc=0
wait "$FA_PID" || rc=$?
fa_unregister "$FA_PID"
wait "${pids[@]}"
assert_eq "$rc" 0 "fastauth exits 0 on SIGTERM with answers held"
for i in 1 2; do
	read -r code ms < "$T/term.$i"
	assert_eq "$code" 429 "held refusal $i is delivered at SIGTERM"
	if [ "$ms" -lt $((DELAY_MS - 100)) ]; then
		pass "held refusal $i came back after $ms ms, before its delay: sent at SIGTERM"
	else
		fail "held refusals are sent at SIGTERM, not after their delay" "after $ms ms"
	fi
done
