#!/bin/bash
# admission.sh -- a login storm against the host-wide Argon2 admission limit,
# behind a private lighttpd spawning fastauth (lighttpd/fastauth-spawn.conf,
# max-procs 2, 8 threads each): argon2_max_concurrent 1, argon2_wait_ms 200
# and an Argon2 cost well above 200 ms.  Twelve concurrent password logins:
# the ones that get no slot in time are answered 503 + Retry-After with a
# JSON error instead of piling up, none hangs, the slot is shared by both
# processes, /health and /oauth2/introspect keep answering quickly during
# the storm, the storm leaves no memory behind beyond what the limit allows,
# and a login afterwards succeeds.
#
# ADMISSION_T (default 8) sets argon2_iterations at 64 MiB.
[ -n "${BASH_VERSION:-}" ] || exec bash "$0" "$@"
. "$(dirname "$0")/lib.sh"

require "$REDIS_SERVER" "$REDIS_CLI" "$LIGHTTPD" curl python3
require_fastauth

STORM=12		# concurrent logins
WAIT_MS=200		# argon2_wait_ms
MEM_KIB=65536		# argon2_memory_kib
ITER=${ADMISSION_T:-8}	# argon2_iterations

start_redis
HTTP_PORT=$(free_port)
BASE=http://127.0.0.1:$HTTP_PORT/auth
TOKEN_URL=$BASE/oauth2/token
write_fastauth_conf "$FA_CONF" "$BASE" \
    "threads 8" \
    "argon2_memory_kib $MEM_KIB" "argon2_iterations $ITER" "argon2_parallelism 1" \
    "argon2_max_concurrent 1" "argon2_wait_ms $WAIT_MS" \
    "login_max_failures 1000" "login_delay_base_ms 0" "login_delay_max_ms 0" \
    "login_max_failures_per_address 100000" \
    "audit_log $T/audit.log"

ctl key init >/dev/null 2>"$T/ctl.err" || die "fastauthctl key init failed" "$(cat "$T/ctl.err")"
SW=$(ctl_secret client add --id web --grant password --scope "openid")
SECRET_I=$(ctl_secret client add --id introspector --grant client_credentials \
    --scope "read" --introspect)
PW='st0rm-passw0rd'
printf '%s\n' "$PW" | ctl user add storm >/dev/null 2>"$T/ctl.err" ||
    die "fastauthctl user add storm failed" "$(cat "$T/ctl.err")"
pass "client and user created (Argon2id m=$MEM_KIB KiB t=$ITER p=1)"

mkdir -p "$T/run"
install_conf "$top_srcdir/lighttpd/fastauth-spawn.conf" "$T/fastauth-spawn.conf" \
    "/usr/sbin/fastauth -c /etc/fastauth/fastauth.conf" "$FASTAUTH -c $FA_CONF" \
    "/run/lighttpd/fastauth.sock" "$T/run/fastauth.sock"
make_lighttpd_conf "$T/lighttpd.conf" "$HTTP_PORT" "$T/fastauth-spawn.conf"
start_lighttpd "$T/lighttpd.conf" "$HTTP_PORT"
wait_ready "$BASE"

RESPONDERS=$(ps -o pid= --ppid "$LIGHTTPD_PID" | tr -d ' ' | tr '\n' ' ')
assert_match "$RESPONDERS" '^[0-9]+ [0-9]+ $' "lighttpd spawned 2 fastauth processes ($RESPONDERS)"

# rss_kib: the resident memory of the responders together (KiB).
rss_kib() {
	local p sum=0 v
	for p in $RESPONDERS; do
		v=$(awk '/^VmRSS:/ { print $2 }' "/proc/$p/status" 2>/dev/null || echo 0)
		sum=$((sum + ${v:-0}))
	done
	echo "$sum"
}

# big_maps: mappings of the responders at least m large and mostly resident
# (Argon2 memory: libargon2's own or a pool).
big_maps() {
	local p n=0 c
	for p in $RESPONDERS; do
		c=$(awk -v m="$MEM_KIB" '
			/^Size:/ { size = $2 }
			/^Rss:/ { if (size >= m && $2 >= m / 2) n++ }
			END { print n + 0 }' "/proc/$p/smaps" 2>/dev/null || echo 0)
		n=$((n + c))
	done
	echo "$n"
}

LOGIN_BODY="grant_type=password&username=storm&password=$PW&scope=openid"

# ms_of SECONDS: curl's time_total (seconds, decimal) in whole milliseconds.
ms_of() {
	awk -v s="$1" 'BEGIN { printf "%d\n", s * 1000 + 0.5 }'
}

# timed METHOD URL [curl args]: one request; prints "STATUS MS".
timed() {
	local m=$1 u=$2 out
	shift 2
	out=$(curl -sS --max-time 15 -o /dev/null -w '%{http_code} %{time_total}' \
	    -X "$m" "$@" "$u" 2>/dev/null) || out="000 15"
	echo "${out% *} $(ms_of "${out#* }")"
}

RSS_START=$(rss_kib)

# --- one login alone: how long a hash takes here ------------------------------------
for i in 1 2 3; do
	r=$(timed POST "$TOKEN_URL" -u "web:$SW" -H 'Content-Type: application/x-www-form-urlencoded' \
	    --data-binary "$LOGIN_BODY")
	assert_eq "${r% *}" 200 "a login alone -> 200 (${r#* } ms)"
	LOGIN_MS=${r#* }
done
note "one login alone takes $LOGIN_MS ms (argon2_wait_ms $WAIT_MS)"
if [ "$LOGIN_MS" -gt $((WAIT_MS * 3 / 2)) ]; then
	pass "one login ($LOGIN_MS ms) takes well over argon2_wait_ms ($WAIT_MS ms)"
else
	fail "one login takes well over argon2_wait_ms: raise ADMISSION_T" "$LOGIN_MS ms"
fi

TOK=$(get_token "$BASE" introspector "$SECRET_I") || die "no client_credentials token"
introspect "$BASE" "$TOK"
assert_json_field active true "the introspector's own token is active"
RSS_BEFORE=$(rss_kib)

# --- the storm ------------------------------------------------------------------------
mkdir -p "$T/storm"
STORM_PIDS=()
t0=$(date +%s%N)
for i in $(seq 1 "$STORM"); do
	curl -sS --max-time 30 -o "$T/storm/$i.body" -D "$T/storm/$i.headers" \
	    -w '%{http_code} %{time_total}\n' -u "web:$SW" \
	    -H 'Content-Type: application/x-www-form-urlencoded' \
	    --data-binary "$LOGIN_BODY" "$TOKEN_URL" > "$T/storm/$i.out" 2>"$T/storm/$i.err" 3>&- &
	STORM_PIDS+=($!)
done
t1=$(date +%s%N)
SPREAD_MS=$(((t1 - t0) / 1000000))

storm_running() {
	local p
	for p in "${STORM_PIDS[@]}"; do
		kill -0 "$p" 2>/dev/null && return 0
	done
	return 1
}

# While it lasts: /health and /oauth2/introspect, one after the other.
: > "$T/side.health"
: > "$T/side.introspect"
while storm_running; do
	timed GET "$BASE/health" >> "$T/side.health"
	timed POST "$BASE/oauth2/introspect" -u "introspector:$SECRET_I" \
	    -H 'Content-Type: application/x-www-form-urlencoded' --data-binary "token=$TOK" \
	    >> "$T/side.introspect"
	if [ $(($(date +%s%N) - t0)) -gt 60000000000 ]; then
		break
	fi
done
for p in "${STORM_PIDS[@]}"; do
	wait "$p" 2>/dev/null || true
done
t2=$(date +%s%N)
STORM_MS=$(((t2 - t0) / 1000000))

# --- what the logins got ------------------------------------------------------------
n200=0 n503=0 nother=0 maxms=0 bad503=0
times=""
for i in $(seq 1 "$STORM"); do
	out=$(cat "$T/storm/$i.out" 2>/dev/null || true)
	code=${out% *}
	ms=$(ms_of "${out#* }")
	[ -n "$out" ] || { code=000; ms=30000; }
	times="$times $code:${ms}ms"
	[ "$ms" -gt "$maxms" ] && maxms=$ms
	case $code in
	200)	n200=$((n200 + 1)) ;;
	503)	n503=$((n503 + 1))
		HTTP_HEADERS=$T/storm/$i.headers
		HTTP_BODY_FILE=$T/storm/$i.body
		HTTP_REQ="POST auth/oauth2/token (storm $i)"
		HTTP_ARGS="$LOGIN_BODY"
		HTTP_STATUS=503
		if ! header_value Retry-After | grep -Eq '^[0-9]+$' ||
		    [ "$(json_field error || true)" != temporarily_unavailable ]; then
			bad503=$((bad503 + 1))
			fa_fail_http "storm login $i: 503 with Retry-After and {\"error\":\"temporarily_unavailable\"}"
		fi ;;
	*)	nother=$((nother + 1)) ;;
	esac
done
HTTP_HEADERS=$T/http.headers
HTTP_BODY_FILE=$T/http.body
note "storm: $STORM logins launched within $SPREAD_MS ms, all done after $STORM_MS ms: $n200 x 200, $n503 x 503, $nother other;$times"

assert_eq "$nother" 0 "every storm login answered 200 or 503 (none hung, none failed otherwise)"
if [ "$n503" -ge 1 ]; then
	pass "logins beyond the admission limit get 503 ($n503 of $STORM)"
else
	fail "logins beyond the admission limit get 503" "$times"
fi
[ "$n503" -ge 1 ] && [ "$bad503" = 0 ] &&
    pass "every 503 carries Retry-After and a JSON temporarily_unavailable error"
if [ "$n200" -ge 1 ]; then
	pass "logins that got the slot succeed ($n200 of $STORM)"
else
	fail "at least one storm login gets the slot and succeeds" "$times"
fi
# The slot is host-wide: both processes take turns on one.  A slot lasts a
# hash ($LOGIN_MS ms); a login waits $WAIT_MS ms at most; so the storm can
# get no more successes than hashes fit, one after the other, into the time
# the launches were spread over plus one wait.
maxok=$(((SPREAD_MS + WAIT_MS) / LOGIN_MS + 1))
if [ "$n200" -le "$maxok" ]; then
	pass "at most $maxok login(s) succeeded: one slot for both processes ($n200)"
else
	fail "one Argon2 slot host-wide: at most $maxok successes" "got $n200: $times"
fi
# None waits past its slot wait plus two hashes (the one ahead and its own).
bound=$((WAIT_MS + 2 * LOGIN_MS + 1500))
if [ "$maxms" -le "$bound" ]; then
	pass "every storm login finished within $bound ms (slowest $maxms ms)"
else
	fail "every storm login finishes within $bound ms" "slowest $maxms ms: $times"
fi

# --- the other endpoints during the storm -------------------------------------------
side() {	# FILE NAME
	local n bad max med
	n=$(wc -l < "$1")
	bad=$(awk '$1 != 200' "$1" | wc -l)
	max=$(awk 'BEGIN { m = 0 } $2 > m { m = $2 } END { print m }' "$1")
	med=$(awk '{ print $2 }' "$1" | sort -n | awk '{ a[NR] = $1 } END { print (NR ? a[int((NR + 1) / 2)] : 0) }')
	note "$2 during the storm: $n requests, median $med ms, max $max ms, $bad not 200"
	if [ "$n" -ge 1 ] && [ "$bad" = 0 ]; then
		pass "$2 answered 200 throughout the storm ($n requests)"
	else
		fail "$2 answers 200 throughout the storm" "$n requests, $bad not 200: $(tr '\n' ' ' < "$1")"
	fi
	if [ "$n" -ge 1 ] && [ "$max" -lt 2000 ]; then
		pass "$2 during the storm: every answer under 2 s (max $max ms, median $med ms)"
	else
		fail "$2 during the storm: every answer under 2 s" "max $max ms: $(tr '\n' ' ' < "$1")"
	fi
}
side "$T/side.health" /health
side "$T/side.introspect" /oauth2/introspect

# --- after the storm ----------------------------------------------------------------------
post_form "$TOKEN_URL" "$LOGIN_BODY" -u "web:$SW"
assert_status 200 "a login after the storm -> 200"
assert_json_field_match access_token '^fa1\.' "a login after the storm: an access token"
http GET "$BASE/health"
assert_status 200 "GET /health after the storm -> 200"
nproc=$(ps -o pid= --ppid "$LIGHTTPD_PID" | tr -d ' ' | tr '\n' ' ')
assert_eq "$nproc" "$RESPONDERS" "the same two fastauth processes after the storm (none crashed)"

# Memory: with one slot host-wide, Argon2 needs one hash's memory at a time
# (m), not one per request thread (2 x 8 x m = 1 GiB here).  More small
# storms, so that the slot goes to many request threads in turn, and see what
# stays resident.
RSS_STORM=$(rss_kib)
for i in $(seq 1 15); do
	pids=()
	for _ in 1 2 3 4 5 6 7 8; do
		curl -sS --max-time 30 -o /dev/null -u "web:$SW" \
		    -H 'Content-Type: application/x-www-form-urlencoded' \
		    --data-binary "$LOGIN_BODY" "$TOKEN_URL" 2>/dev/null 3>&- &
		pids+=($!)
	done
	wait "${pids[@]}" || true
done
RSS_AFTER=$(rss_kib)
MAPS_AFTER=$(big_maps)
grow=$((RSS_AFTER - RSS_START))
allow=$((2 * MEM_KIB + 32768))
note "responders' RSS: $RSS_START KiB at start, $RSS_BEFORE KiB after 3 logins, $RSS_STORM KiB after the storm, $RSS_AFTER KiB after 15 storms of 8 more (+$grow KiB = $((grow / MEM_KIB)) x m; m = $MEM_KIB KiB, 2 x 8 threads); $MAPS_AFTER resident mappings of >= m"
if [ "$grow" -le "$allow" ]; then
	pass "logins under argon2_max_concurrent 1 keep at most 2 x m + 32 MiB resident (+$grow KiB)"
else
	fail "logins under argon2_max_concurrent 1 keep at most 2 x m + 32 MiB resident in the responders" \
	    "RSS at start $RSS_START KiB, after the logins $RSS_AFTER KiB: +$grow KiB = $((grow / MEM_KIB)) x m, $MAPS_AFTER resident mappings of >= m KiB (a pre-faulted Argon2 pool kept by every request thread that ever hashed)"
fi

# No password in the audit log (the storm's failures, if any, are logged).
if [ -f "$T/audit.log" ] && grep -qF "$PW" "$T/audit.log"; then
	fail "the audit log holds no password"
else
	pass "the audit log holds no password"
fi
