#!/bin/bash
# redis_restart.sh -- under steady load, redis-server is stopped for a few
# seconds and started again on the same port (append-only file: same data).
# While it is away: 503 + Retry-After (fail closed: introspection of a token
# the cache cannot vouch for and userinfo both 503), the breaker opens
# (/ready says so), nothing hangs; then service comes back.
[ -n "${BASH_VERSION:-}" ] || exec bash "$0" "$@"
. "$(dirname "$0")/../integration/lib.sh"
. "$(dirname "$0")/faultlib.sh"

fault_setup
fault_prepare
load_start
mark_fault
race_start
stop_redis
sleep 1
http GET "$BASE/ready"
assert_status 503 "/ready while Redis is down -> 503"
assert_header Retry-After '^[1-9][0-9]*$'
assert_json_field_match redis_breaker '^(open|half-open)$' "/ready names the breaker's state"
check_fail_closed
check_revoked_during
sleep 3
start_redis "$REDIS_PORT" --appendonly yes --appendfsync everysec
mark_back
wait_ready "$BASE" 15
sleep 2
STORE_AWAY=1 fault_report redis_restart
check_refresh_after
http GET "$BASE/oauth2/userinfo" -H "Authorization: Bearer $AT_USER"
assert_status 200 "userinfo after Redis is back -> 200"
