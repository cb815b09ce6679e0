#!/bin/bash
# lighttpd_restart.sh -- under steady load, lighttpd (and with it the
# responders it spawned) is stopped and started again on the same port.
# Connections are refused while it is down (no hang); the new responders
# attach the existing shared memory segment and serve again.
[ -n "${BASH_VERSION:-}" ] || exec bash "$0" "$@"
. "$(dirname "$0")/../integration/lib.sh"
. "$(dirname "$0")/faultlib.sh"

fault_setup
fault_prepare
load_start
mark_fault
race_start
stop_pid "$LIGHTTPD_PID" 10 || fail "lighttpd did not stop on SIGTERM"
sleep 1
start_lighttpd "$T/lighttpd.conf" "$HTTP_PORT"
mark_back
wait_ready "$BASE" 15
sleep 2
fault_report lighttpd_restart
check_refresh_after
