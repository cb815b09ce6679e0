#!/bin/bash
# responders_kill.sh -- under steady load, SIGKILL a fastauth responder
# process (lighttpd spawns max-procs 2 and restarts them) every second, six
# times. Requests in flight on a killed responder may fail (lighttpd answers
# them), but none may hang, the shared memory segment must stay usable by
# the survivors and the restarted ones, and service must return.
[ -n "${BASH_VERSION:-}" ] || exec bash "$0" "$@"
. "$(dirname "$0")/../integration/lib.sh"
. "$(dirname "$0")/faultlib.sh"

fault_setup
fault_prepare
load_start
mark_fault
race_start
kills=0
for i in 1 2 3 4 5 6; do
	pids=$(ps -o pid= --ppid "$LIGHTTPD_PID" | tr -d ' ' || true)
	victim=$(printf '%s\n' $pids | sed -n "$(( (i % 2) + 1 ))p")
	[ -z "$victim" ] && victim=$(printf '%s\n' $pids | head -n 1)
	if [ -n "$victim" ]; then
		kill -KILL "$victim" 2>/dev/null && kills=$((kills + 1))
	fi
	check_revoked_during
	sleep 1
done
note "SIGKILLed $kills responder processes"
mark_back
wait_ready "$BASE" 15
sleep 2
fault_report responders_kill
RACE_BACKEND_DEATH=1 check_refresh_after
nproc=$(ps -o pid= --ppid "$LIGHTTPD_PID" | wc -l)
assert_eq "$nproc" 2 "lighttpd runs max-procs = 2 responders again"
