#!/bin/bash
# standalone.sh -- the standalone master: "fastauth --listen 127.0.0.1:P
# --processes 2" behind lighttpd (lighttpd/fastauth-socket.conf with host and
# port).  --check-config; a SIGKILLed worker is replaced while requests keep
# succeeding; SIGHUP reloads the configuration (and survives a broken one);
# /ready and the token endpoint while Redis is down and after it is back;
# SIGTERM during a stream of requests drains: exit 0, no request cut off, no
# worker left behind.
[ -n "${BASH_VERSION:-}" ] || exec bash "$0" "$@"
. "$(dirname "$0")/lib.sh"

require "$REDIS_SERVER" "$REDIS_CLI" "$LIGHTTPD" curl python3
require_fastauth

# --- --check-config -----------------------------------------------------------
# shellcheck disable=SC2034
REDIS_URL=redis://127.0.0.1:1/0		# not contacted by --check-config
write_fastauth_conf "$T/good.conf" http://127.0.0.1:1/auth
rc=0
"$FASTAUTH" -c "$T/good.conf" --check-config >"$T/cc.out" 2>"$T/cc.err" || rc=$?
assert_eq "$rc" 0 "--check-config on a valid file exits 0${rc:+ }$(head -n 1 "$T/cc.err")"

printf '# a comment\nissuer http://127.0.0.1:1/auth\naccess_token_ttl banana\n' > "$T/bad.conf"
rc=0
"$FASTAUTH" -c "$T/bad.conf" --check-config >"$T/cc.out" 2>"$T/cc.err" || rc=$?
assert_eq "$rc" 1 "--check-config on a bad value exits 1"
assert_match "$(cat "$T/cc.err")" "^(fastauth: )?$T/bad.conf:3: access_token_ttl: ." \
    "--check-config names FILE:LINE: KEY: reason for a bad value"

printf 'issuer http://127.0.0.1:1/auth\n\nno_such_key 1\n' > "$T/bad2.conf"
rc=0
"$FASTAUTH" -c "$T/bad2.conf" --check-config >"$T/cc.out" 2>"$T/cc.err" || rc=$?
assert_eq "$rc" 1 "--check-config on an unknown key exits 1"
assert_match "$(cat "$T/cc.err")" "^(fastauth: )?$T/bad2.conf:3: no_such_key: ." \
    "--check-config names FILE:LINE: KEY: reason for an unknown key"

rc=0
FASTAUTH_CONF=$T/bad.conf "$FASTAUTH" --check-config >"$T/cc.out" 2>"$T/cc.err" || rc=$?
assert_eq "$rc" 1 "--check-config reads \$FASTAUTH_CONF without -c"
assert_match "$(cat "$T/cc.err")" "^(fastauth: )?$T/bad.conf:3: access_token_ttl:" \
    "\$FASTAUTH_CONF: the error names that file"

rc=0
"$FASTAUTH" -c "$T/no-such-file.conf" --check-config >"$T/cc.out" 2>"$T/cc.err" || rc=$?
assert_eq "$rc" 1 "--check-config on a missing file exits 1"
assert_match "$(cat "$T/cc.err")" "no-such-file.conf" "the error names the missing file"

# --- start: redis (with an append-only file, so that it can be restarted),
# the master on TCP, lighttpd in front --------------------------------------
start_redis "$(free_port)" --appendonly yes --appendfsync always
FA_PORT=$(free_port)
HTTP_PORT=$(free_port)
BASE=http://127.0.0.1:$HTTP_PORT/auth
write_fastauth_conf "$FA_CONF" "$BASE"
ctl key init >/dev/null 2>"$T/ctl.err" || die "fastauthctl key init failed" "$(cat "$T/ctl.err")"
setup_clients

start_fastauth "$FA_CONF" "127.0.0.1:$FA_PORT" --processes 2
MASTER=$FA_PID
install_conf "$top_srcdir/lighttpd/fastauth-socket.conf" "$T/socket.snippet" \
    '"socket"      => "/run/fastauth/fastauth.sock",' \
    "\"host\" => \"127.0.0.1\", \"port\" => $FA_PORT,"
make_lighttpd_conf "$T/lighttpd.conf" "$HTTP_PORT" "$T/socket.snippet"
start_lighttpd "$T/lighttpd.conf" "$HTTP_PORT"

http GET "$BASE/health"
assert_status 200 "GET /health -> 200"
wait_ready "$BASE"

workers() {
	ps -o pid= --ppid "$MASTER" 2>/dev/null | tr -d ' ' | sort -n || true
}
two_workers() { [ "$(workers | wc -l)" = 2 ]; }
if wait_until 10 two_workers; then
	pass "the master runs --processes 2 workers"
else
	fail "the master runs 2 workers" "children of $MASTER: $(workers | tr '\n' ' ')"
fi

# token_ok N: N token requests in a row, all 200; prints the failures.
tokens_ok() {
	local i bad=0
	for ((i = 0; i < $1; i++)); do
		post_form "$BASE/oauth2/token" grant_type=client_credentials -u "app-a:$SECRET_A"
		if [ "$HTTP_STATUS" != 200 ]; then
			bad=$((bad + 1))
			echo "request $i: $HTTP_STATUS $HTTP_BODY"
		fi
	done
	[ $bad = 0 ]
}

# --- a worker killed with SIGKILL is replaced ----------------------------------
old_workers=$(workers)
victim=$(echo "$old_workers" | head -n 1)
victim_st=$(fa_starttime "$victim")
survivor=$(echo "$old_workers" | tail -n 1)
kill -KILL "$victim"
if out=$(tokens_ok 20); then
	pass "20 token requests right after SIGKILL of worker $victim: all 200"
else
	fail "token requests right after SIGKILL of worker $victim all succeed" "$out"
fi
replaced() {
	local w
	w=$(workers)
	[ "$(echo "$w" | grep -c .)" = 2 ] && ! echo "$w" | grep -qx "$victim" &&
	    ! fa_alive "$victim" "$victim_st"
}
if wait_until 10 replaced; then
	pass "the master replaced the killed worker (workers now: $(workers | tr '\n' ' '))"
else
	fail "the master replaces a SIGKILLed worker within 10 s" "workers: $(workers | tr '\n' ' ')"
fi
if workers | grep -qx "$survivor"; then
	pass "the other worker ($survivor) was left alone"
else
	fail "the other worker ($survivor) was left alone" "workers: $(workers | tr '\n' ' ')"
fi
if out=$(tokens_ok 20); then
	pass "20 token requests after the restart: all 200"
else
	fail "token requests after the worker restart all succeed" "$out"
fi
if fa_alive "$MASTER"; then pass "master $MASTER still running"; else fail "master $MASTER died"; fi

# --- SIGHUP reloads the configuration --------------------------------------------
FA_TTL=120 write_fastauth_conf "$FA_CONF" "$BASE"
kill -HUP "$MASTER"
ttl_is() {
	post_form "$BASE/oauth2/token" grant_type=client_credentials -u "app-a:$SECRET_A"
	[ "$HTTP_STATUS" = 200 ] && [ "$(json_field expires_in)" = "$1" ]
}
ttl_stays() {	# every one of 6 tokens in a row has expires_in $1
	local i
	for i in 1 2 3 4 5 6; do ttl_is "$1" || return 1; done
}
if wait_until 10 ttl_stays 120; then
	pass "after SIGHUP with access_token_ttl 120 new tokens have expires_in 120"
else
	fa_fail_http "after SIGHUP new tokens have expires_in 120 within 10 s"
fi
if fa_alive "$MASTER"; then pass "master survives SIGHUP (same pid $MASTER)"; else fail "master died on SIGHUP"; fi

# A broken file on SIGHUP: the running configuration stays.
printf 'issuer %s\naccess_token_ttl banana\n' "$BASE" > "$FA_CONF"
kill -HUP "$MASTER"
sleep 2
if fa_alive "$MASTER" && ttl_stays 120; then
	pass "SIGHUP with a broken file: master keeps running with the old configuration"
else
	fa_fail_http "SIGHUP with a broken file: master alive, tokens still expires_in 120" \
	    "master alive: $(fa_alive "$MASTER" && echo yes || echo no)"
fi
FA_TTL=120 write_fastauth_conf "$FA_CONF" "$BASE"
kill -HUP "$MASTER"
if out=$(tokens_ok 5); then
	pass "tokens still issued after the configuration is restored"
else
	fail "tokens issued after the configuration is restored" "$out"
fi

# --- Redis down, then back ---------------------------------------------------
stop_redis
ready_503() {
	http GET "$BASE/ready"
	[ "$HTTP_STATUS" = 503 ]
}
if wait_until 10 ready_503; then
	pass "/ready -> 503 within 10 s of redis-server stopping"
else
	fa_fail_http "/ready -> 503 while Redis is down"
fi
http GET "$BASE/health"
assert_status 200 "/health -> 200 while Redis is down (the process is alive)"
# A request that must reach Redis (revocation writes the deny-list) fails
# closed with 503. A token request from a client whose record is in the L1
# cache is still served (tokens need no Redis); one from an uncached client id
# must reach Redis and fails closed.
post_form "$BASE/oauth2/revoke" token=fa1.AAAAAQ -u "app-a:$SECRET_A"
post_form "$BASE/oauth2/token" grant_type=client_credentials -u "never-seen:whatever"
assert_status 503 "token request of an uncached client while Redis is down -> 503"
assert_header Retry-After '^[0-9]+$'
assert_json_field_match error '.' "503 body is a JSON error"
TOK_DOWN_OK=0
post_form "$BASE/oauth2/token" grant_type=client_credentials -u "app-a:$SECRET_A"
case $HTTP_STATUS in
200|503) pass "cached client while Redis is down: $HTTP_STATUS (served from the L1 cache, or 503)" ;;
*) fa_fail_http "cached client while Redis is down: 200 or 503" ;;
esac
if [ "$HTTP_STATUS" = 200 ]; then
	TOK=$(json_field access_token || true)
	introspect "$BASE" "$TOK"
	case $HTTP_STATUS in
	503) pass "introspection of a token whose revocation state is unknown -> 503 (fail closed)" ;;
	*) fa_fail_http "introspection while Redis is down must not say active: 503" ;;
	esac
fi

start_redis "$REDIS_PORT" --appendonly yes --appendfsync always
wait_ready "$BASE" 20
post_form "$BASE/oauth2/token" grant_type=client_credentials -u "app-a:$SECRET_A"
assert_status 200 "token request after Redis is back -> 200"
TOK=$(json_field access_token || true)
introspect "$BASE" "$TOK"
assert_json_field active true "token issued after Redis came back is active"

# --- SIGTERM while a stream of requests runs --------------------------------------
# Two clients, each a request every ~50 ms for 4 s; SIGTERM after 1 s.
stream() {
	local end=$((SECONDS + 4)) code rc
	while [ $SECONDS -lt $end ]; do
		rc=0
		code=$(curl -sS -o /dev/null -w '%{http_code}' --max-time 15 -H 'Expect:' \
		    -u "app-a:$SECRET_A" -d grant_type=client_credentials \
		    "$BASE/oauth2/token" 2>>"$T/stream.err") || rc=$?
		echo "$rc $code"
		sleep 0.05
	done
}
stream > "$T/stream1.out" 3>&- &
S1=$!
stream > "$T/stream2.out" 3>&- &
S2=$!
sleep 1
last_workers=""
for w in $(workers); do
	last_workers="$last_workers $w:$(fa_starttime "$w")"
done
kill -TERM "$MASTER"
master_gone() { ! fa_alive "$MASTER"; }
if wait_until 15 master_gone; then
	rc=0
	wait "$MASTER" || rc=$?
	assert_eq "$rc" 0 "master exits 0 on SIGTERM"
else
	fail "master exits within 15 s of SIGTERM"
fi
fa_unregister "$MASTER"
wait "$S1" "$S2" || true
left=""
for w in $last_workers; do
	if fa_alive "${w%%:*}" "${w#*:}"; then
		left="$left ${w%%:*}"
	fi
done
assert_eq "${left:-none}" none "no worker left running after the master exited"
cat "$T/stream1.out" "$T/stream2.out" > "$T/stream.out"
total=$(wc -l < "$T/stream.out")
ok=$(grep -c '^0 200$' "$T/stream.out" || true)
# curl 52: empty reply, 56: connection reset; a backend that dies in the
# middle of a request makes lighttpd answer 502.  After the master has closed
# its socket lighttpd answers 503 (backend unavailable): that is fine.
bad=$(grep -Ev '^0 (200|503)$' "$T/stream.out" | sort | uniq -c || true)
if [ "$ok" -gt 0 ] && [ -z "$bad" ]; then
	pass "SIGTERM during $total requests: $ok served, the rest refused cleanly (503), none cut off"
else
	fail "SIGTERM during a stream of requests: every request either served or refused, none cut off" \
	    "$total requests, $ok served; other results (count, curl exit, status):" "$bad" \
	    "$(head -c 500 "$T/stream.err" 2>/dev/null)"
fi
