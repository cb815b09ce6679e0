# faultlib.sh -- sourced by tests/fault/*.sh (bash), after tests/integration/lib.sh.
#
# fault_setup [fastauth.conf lines...]: redis-server (append-only, so a
#   restart keeps the data) unless FAULT_NO_REDIS=1, fastauth spawned by
#   lighttpd with max-procs 2 (the shipped fastauth-spawn.conf), clients
#   app-a, introspector and web (password + refresh_token) and user alice.
# fault_prepare: what must survive the fault: a revoked access token
#   ($AT_REVOKED), refresh tokens $RT_RACE (used twice at once across the
#   fault) and $RT_KEEP (used once after it), a live access token for the
#   load ($AT_LOAD).
# load_start / load_stop: the steady load (loadgen.py) in the background.
# mark_fault / mark_back: wall-clock marks of the fault and of the store back.
# race_start / fault_report NAME BOUND_S: the checks every scenario makes,
#   and the figures: requests sent, errors by status, time to recover.

# shellcheck shell=bash disable=SC2034
REDIS_SENTINEL=${REDIS_SENTINEL:-$(fa_which redis-sentinel)}
LOADGEN=$top_srcdir/tests/fault/loadgen.py
# Timeouts of the configuration below, and what follows for a request.
FAULT_CONNECT_MS=200
FAULT_COMMAND_MS=300
# A request makes a few Redis calls, each bounded by those timeouts, and the
# breaker cuts the rest short: nothing may take longer than this.
FAULT_REQUEST_BOUND_MS=${FAULT_REQUEST_BOUND_MS:-3000}

fault_conf_lines() {
	printf '%s\n' \
	    "redis_connect_timeout_ms $FAULT_CONNECT_MS" \
	    "redis_command_timeout_ms $FAULT_COMMAND_MS" \
	    "redis_backoff_min_ms 50" \
	    "redis_backoff_max_ms 500" \
	    "redis_breaker_failures 3" \
	    "redis_breaker_window 5" \
	    "redis_breaker_cooldown 1" \
	    "argon2_memory_kib 1024" \
	    "argon2_iterations 1" \
	    "threads 4" \
	    "ratelimit_token off" \
	    "ratelimit_introspect off" \
	    "ratelimit_revoke off" \
	    "ratelimit_userinfo off" \
	    "ratelimit_login off"
}

fault_setup() {
	local lines=() l
	require "$REDIS_SERVER" "$REDIS_CLI" "$LIGHTTPD" curl python3
	require_fastauth
	if [ "${FAULT_NO_REDIS:-0}" != 1 ]; then
		start_redis "" --appendonly yes --appendfsync everysec
	fi
	HTTP_PORT=$(free_port)
	BASE=http://127.0.0.1:$HTTP_PORT/auth
	while IFS= read -r l; do
		lines+=("$l")
	done < <(fault_conf_lines)
	write_fastauth_conf "$FA_CONF" "$BASE" "${lines[@]}" "$@"
	ctl key init >/dev/null 2>"$T/ctl.err" || die "fastauthctl key init failed" "$(cat "$T/ctl.err")"
	setup_clients
	SECRET_W=$(ctl_secret client add --id web --scope "openid profile read" \
	    --grant password --grant refresh_token)
	printf '%s\n' 'correct horse battery' | ctl user add alice >/dev/null 2>"$T/ctl.err" ||
	    die "fastauthctl user add failed" "$(cat "$T/ctl.err")"
	mkdir -p "$T/run"
	install_conf "$top_srcdir/lighttpd/fastauth-spawn.conf" "$T/fastauth-spawn.conf" \
	    "/usr/sbin/fastauth -c /etc/fastauth/fastauth.conf" "$FASTAUTH -c $FA_CONF" \
	    "/run/lighttpd/fastauth.sock" "$T/run/fastauth.sock"
	make_lighttpd_conf "$T/lighttpd.conf" "$HTTP_PORT" "$T/fastauth-spawn.conf"
	start_lighttpd "$T/lighttpd.conf" "$HTTP_PORT"
	wait_ready "$BASE" 20 || die "fastauth not ready"
}

# login: a password grant for alice; prints the refresh token.
login_rt() {
	post_form "$BASE/oauth2/token" "grant_type=password&username=alice&password=correct%20horse%20battery&scope=openid%20read" \
	    -u "web:$SECRET_W"
	if [ "$HTTP_STATUS" != 200 ]; then
		fa_fail_http "password grant for alice"
		return 1
	fi
	json_field refresh_token
}

fault_prepare() {
	AT_REVOKED=$(get_token "$BASE" app-a "$SECRET_A") || die "no token"
	post_form "$BASE/oauth2/revoke" "token=$AT_REVOKED" -u "app-a:$SECRET_A"
	assert_status 200 "revoke an access token before the fault"
	introspect "$BASE" "$AT_REVOKED"
	assert_json_field active false "the revoked token is inactive before the fault"
	AT_LOAD=$(get_token "$BASE" app-a "$SECRET_A") || die "no token"
	# Never introspected: no cached state vouches for it.
	AT_UNSEEN=$(get_token "$BASE" app-b "$SECRET_B") || die "no token"
	RT_RACE=$(login_rt) || die "no refresh token"
	RT_KEEP=$(login_rt) || die "no refresh token"
	post_form "$BASE/oauth2/token" "grant_type=password&username=alice&password=correct%20horse%20battery&scope=openid" \
	    -u "web:$SECRET_W"
	AT_USER=$(json_field access_token) || die "no user access token"
}

load_start() {
	rm -f "$T/load.stop"
	python3 "$LOADGEN" run --base "$BASE" --out "$T/load.jsonl" --stop "$T/load.stop" \
	    --threads "${LOAD_THREADS:-4}" --rate "${LOAD_RATE:-25}" \
	    --timeout "$(( (FAULT_REQUEST_BOUND_MS + 999) / 1000 + 2 ))" \
	    --client "app-a:$SECRET_A" --introspector "introspector:$SECRET_I" \
	    --token "$AT_LOAD" </dev/null >"$T/loadgen.log" 2>&1 3>&- &
	LOAD_PID=$!
	fa_register "$LOAD_PID" loadgen "$T/loadgen.log"
	sleep 2		# a steady state before the fault
}

load_stop() {
	: > "$T/load.stop"
	wait "$LOAD_PID" 2>/dev/null || true
	fa_unregister "$LOAD_PID"
}

now_s() { date +%s.%N | cut -c1-14; }
mark_fault() { FAULT_T0=$(now_s); }
mark_back() { FAULT_T1=$(now_s); }

# The refresh token used twice at once, by two clients racing, in the
# background; statuses in $T/race.1 and $T/race.2.
race_one() {
	curl -sS -o "$T/race.$1.body" -w '%{http_code}' --max-time 10 \
	    -u "web:$SECRET_W" -H 'Content-Type: application/x-www-form-urlencoded' \
	    --data-binary "grant_type=refresh_token&refresh_token=$RT_RACE" \
	    "$BASE/oauth2/token" > "$T/race.$1" 2>/dev/null || echo 000 > "$T/race.$1"
}
race_start() {
	race_one 1 &
	RACE1=$!
	race_one 2 &
	RACE2=$!
}
race_wait() {
	wait "$RACE1" 2>/dev/null || true
	wait "$RACE2" 2>/dev/null || true
}

# After the fault: a refresh token must work or be invalid_grant; a second
# success of one token is a duplicate rotation.
check_refresh_after() {
	local s1 s2 ok=0 s e
	race_wait
	s1=$(cat "$T/race.1") s2=$(cat "$T/race.2")
	[ "$s1" = 200 ] && ok=$((ok + 1))
	[ "$s2" = 200 ] && ok=$((ok + 1))
	for s in 1 2; do
		e=$(json_field error "$T/race.$s.body" 2>/dev/null || true)
		case $(cat "$T/race.$s") in
		200|503) ;;
		400) [ "$e" = invalid_grant ] || fail "race $s: 400 but not invalid_grant ($e)" ;;
		500|502)
			# lighttpd's own answer when the responder serving the
			# request was SIGKILLed (not a JSON error of ours).
			if [ "${RACE_BACKEND_DEATH:-0}" = 1 ] && [ -z "$e" ]; then
				note "race $s: $(cat "$T/race.$s") from lighttpd (its responder was killed)"
			else
				fail "race $s: refresh answered $(cat "$T/race.$s")"
			fi ;;
		*) fail "race $s: refresh answered $(cat "$T/race.$s")" ;;
		esac
	done
	if [ "$ok" -le 1 ]; then
		pass "one refresh token used twice at once across the fault: $ok success(es) ($s1, $s2)"
	else
		fail "one refresh token used twice at once across the fault: two successes" "$s1 $s2"
	fi
	# Once more now: if one use succeeded, this is a reuse.
	post_form "$BASE/oauth2/token" "grant_type=refresh_token&refresh_token=$RT_RACE" -u "web:$SECRET_W"
	if [ "$ok" = 1 ]; then
		assert_error 400 invalid_grant "the raced refresh token, used again after the fault -> invalid_grant"
	else
		case $HTTP_STATUS in
		200) pass "the raced refresh token (never rotated) still works" ;;
		400) assert_error 400 invalid_grant "the raced refresh token -> invalid_grant" ;;
		*) fa_fail_http "the raced refresh token after the fault: 200 or invalid_grant" ;;
		esac
	fi
	post_form "$BASE/oauth2/token" "grant_type=refresh_token&refresh_token=$RT_KEEP" -u "web:$SECRET_W"
	case $HTTP_STATUS in
	200) pass "a refresh token from before the fault works after it" ;;
	400) assert_error 400 invalid_grant "a refresh token from before the fault -> invalid_grant" ;;
	*) fa_fail_http "a refresh token from before the fault: 200 or invalid_grant" ;;
	esac
	introspect "$BASE" "$AT_REVOKED"
	assert_json_equals '{"active":false}' "the token revoked before the fault is still inactive after it"
}

# While Redis is away: a token whose revocation state is not cached -> 503.
check_fail_closed() {
	introspect "$BASE" "$AT_UNSEEN"
	assert_error 503 temporarily_unavailable "introspection of a token the cache cannot vouch for, store away -> 503 (fail closed)"
	assert_header Retry-After '^[1-9][0-9]*$'
	http GET "$BASE/oauth2/userinfo" -H "Authorization: Bearer $AT_USER"
	assert_error 503 temporarily_unavailable "userinfo, store away -> 503 (fail closed)"
	assert_header Retry-After '^[1-9][0-9]*$'
}

# During the fault: the revoked token is never reported active.
check_revoked_during() {
	introspect "$BASE" "$AT_REVOKED"
	case $HTTP_STATUS in
	200) assert_json_field active false "revoked token during the fault: inactive" ;;
	503) assert_header Retry-After '^[1-9][0-9]*$' "revoked token during the fault: 503 with Retry-After" ;;
	*) fa_fail_http "revoked token during the fault: 200 inactive or 503" ;;
	esac
}

# fault_report NAME: stop the load, print the figures, assert on them.
# STORE_AWAY=1: the scenario took the store away (errors must be 503s).
fault_report() {
	local name=$1 res v
	load_stop
	res=$(python3 "$LOADGEN" report --in "$T/load.jsonl" --fault "$FAULT_T0" \
	    --back "$FAULT_T1" --name "$name")
	printf 'FAULT %s\n' "$res" >&3
	printf 'FAULT %s\n' "$res" >> "${FAULT_FIGURES:-/dev/null}" 2>/dev/null || true
	jget() { python3 -c 'import json,sys; print(json.loads(sys.argv[1])[sys.argv[2]])' "$res" "$1"; }
	assert_eq "$(jget hangs)" 0 "$name: no request hung (client timeout)"
	v=$(jget max_ms)
	if [ "$v" -le "$FAULT_REQUEST_BOUND_MS" ]; then
		pass "$name: slowest request ${v} ms <= ${FAULT_REQUEST_BOUND_MS} ms"
	else
		fail "$name: slowest request ${v} ms > ${FAULT_REQUEST_BOUND_MS} ms"
	fi
	assert_eq "$(jget errors_before)" 0 "$name: no error before the fault"
	if [ "${STORE_AWAY:-0}" = 1 ]; then
		assert_eq "$(jget bad_503)" 0 "$name: every 503 has Retry-After >= 1 and temporarily_unavailable"
		v=$(python3 -c 'import json,sys; d=json.loads(sys.argv[1])["by_status"]; print(sum(n for k,n in d.items() if k not in ("200","503")))' "$res")
		assert_eq "$v" 0 "$name: while the store was away every error was a 503"
	fi
	v=$(jget recover_s)
	if python3 -c 'import sys; sys.exit(0 if float(sys.argv[1]) <= float(sys.argv[2]) else 1)' "$v" "${RECOVER_BOUND_S:-10}"; then
		pass "$name: service back ${v} s after the fault ended (bound ${RECOVER_BOUND_S:-10} s)"
	else
		fail "$name: service back ${v} s after the fault ended (bound ${RECOVER_BOUND_S:-10} s)"
	fi
	if [ "$(jget ok_after)" -ge 1 ]; then
		pass "$name: requests succeed after recovery"
	else
		fail "$name: no success after recovery"
	fi
}
