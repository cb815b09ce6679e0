#!/bin/bash
# redis_freeze.sh -- under steady load, redis-server is frozen (SIGSTOP) for
# 3 s, ten times its command timeout, then thawed (SIGCONT). A frozen server
# still accepts connections, so only timeouts show it: the breaker must open
# after a few of them, after which requests fail at once (503, Retry-After)
# instead of each waiting out a timeout; then service comes back.
[ -n "${BASH_VERSION:-}" ] || exec bash "$0" "$@"
. "$(dirname "$0")/../integration/lib.sh"
. "$(dirname "$0")/faultlib.sh"

fault_setup
fault_prepare
load_start
mark_fault
kill -STOP "$REDIS_PID"
race_start
sleep 1
check_fail_closed
check_revoked_during
http GET "$BASE/ready"
assert_status 503 "/ready while Redis is frozen -> 503"
assert_json_field_match redis_breaker '^(open|half-open)$' "/ready: the breaker is open"
sleep 2
kill -CONT "$REDIS_PID"
mark_back
wait_ready "$BASE" 15
sleep 2
STORE_AWAY=1 fault_report redis_freeze
check_refresh_after
