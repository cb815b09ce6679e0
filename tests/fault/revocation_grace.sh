#!/bin/bash
# revocation_grace.sh -- bounded staleness, explicitly configured
# (revocation_grace 4): with Redis stopped, a token whose "not revoked" the
# L1 cache recorded while the mirror was in sync is still introspected as
# active for at most 4 s; a token the cache knows nothing about, userinfo
# and a revoked token fail closed or stay inactive throughout; after the
# grace, the cached one is 503 too.
[ -n "${BASH_VERSION:-}" ] || exec bash "$0" "$@"
. "$(dirname "$0")/../integration/lib.sh"
. "$(dirname "$0")/faultlib.sh"

fault_setup "revocation_grace 4"
fault_prepare
introspect "$BASE" "$AT_LOAD"
assert_json_field active true "a live token, introspected once (cached while in sync)"
introspect "$BASE" "$AT_LOAD"
stop_redis
t0=$(now_s)
sleep 1.5	# well past the subscriber noticing the loss (it reads EOF at once)
introspect "$BASE" "$AT_LOAD"
if [ "$HTTP_STATUS" = 200 ]; then
	assert_json_field active true "Redis stopped, within revocation_grace: the cached token is still active"
else
	fa_fail_http "Redis stopped, within revocation_grace: 200 active from the cache"
fi
check_fail_closed
introspect "$BASE" "$AT_REVOKED"
assert_json_field active false "within revocation_grace: the revoked token stays inactive"
# Past the grace (4 s from the loss of sync, which came within a few hundred ms of t0).
while python3 -c 'import sys,time; sys.exit(0 if time.time() < float(sys.argv[1]) + 5.5 else 1)' "$t0"; do
	sleep 0.2
done
introspect "$BASE" "$AT_LOAD"
assert_error 503 temporarily_unavailable "Redis still stopped, past revocation_grace: 503, no more vouching"
start_redis "$REDIS_PORT" --appendonly yes --appendfsync everysec
wait_ready "$BASE" 15
introspect "$BASE" "$AT_LOAD"
assert_json_field active true "Redis back: active again"
