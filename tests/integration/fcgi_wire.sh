#!/bin/bash
# fcgi_wire.sh -- fastauth's own FastCGI record layer against a raw client
# (tests/integration/fcgi_client.py) on a standalone fastauth's unix socket,
# no web server in between: a request and its FCGI_END_REQUEST; two requests
# on one kept connection; FCGI_GET_VALUES; parameters over the 1 MiB limit
# get a 431 JSON error; an unknown role gets FCGI_UNKNOWN_ROLE; an abort in
# the middle of a body still ends the request; and a wrong version, a record
# cut short, a malformed pair or a body before the parameters close the
# connection without an answer, after which the responder still serves.
[ -n "${BASH_VERSION:-}" ] || exec bash "$0" "$@"
. "$(dirname "$0")/lib.sh"

require "$REDIS_SERVER" "$REDIS_CLI" python3
require_fastauth

CLIENT="python3 $top_srcdir/tests/integration/fcgi_client.py $T/fa.sock"
start_redis "$(free_port)"
write_fastauth_conf "$FA_CONF" http://127.0.0.1:1/auth "threads 3"
ctl key init >/dev/null 2>"$T/ctl.err" || die "fastauthctl key init failed" "$(cat "$T/ctl.err")"
start_fastauth "$FA_CONF" "unix:$T/fa.sock" --processes 1

has() {	# OUTPUT LINE: OUTPUT has LINE
	grep -qxF -- "$2" <<<"$1"
}
check() {	# DESC OUTPUT LINE...
	local desc=$1 out=$2 l
	shift 2
	for l in "$@"; do
		if ! has "$out" "$l"; then
			fail "$desc" "missing line: $l"$'\n'"got:"$'\n'"$out"
			return
		fi
	done
	pass "$desc"
}

out=$($CLIENT request /auth/health)
check "a request over the raw protocol: 200, END_REQUEST complete, connection closed" "$out" \
    "status Status: 200 OK" "end id=1 app=0 proto=0" "closed"

out=$($CLIENT keep-two /auth/health)
n=$(grep -c '^end id=1 app=0 proto=0$' <<<"$out" || true)
assert_eq "$n" 2 "two requests on one kept connection both end complete"
check "the kept connection stays open after them" "$out" "open"

out=$($CLIENT get-values)
check "FCGI_GET_VALUES: one request per connection, as many as threads" "$out" \
    "value FCGI_MAX_CONNS=3" "value FCGI_MAX_REQS=3" "value FCGI_MPXS_CONNS=0"

out=$($CLIENT request --big-params 20 /auth/health)
check "parameters over 1 MiB: 431 with an RFC 6749 error body" "$out" \
    "status Status: 431 Request Header Fields Too Large" \
    "header Content-Type: application/json;charset=UTF-8" \
    'body {"error":"invalid_request","error_description":"request header fields too large"}' \
    "end id=1 app=0 proto=0"

out=$($CLIENT request --keep --role 9 /auth/health)
check "an unknown role: FCGI_UNKNOWN_ROLE" "$out" "end id=1 app=0 proto=3"

out=$($CLIENT abort /auth/oauth2/token)
check "abort in the middle of the body: the request still ends" "$out" "end id=1 app=0 proto=0"

for kind in bad-version cut-record bad-pair stdin-first; do
	out=$($CLIENT garbage $kind)
	check "$kind: the connection is closed without an answer" "$out" \
	    "answer-bytes 0" "closed"
done
log_lines=$(grep -c "FastCGI: " "$FA_LOG" || true)
if [ "$log_lines" -ge 3 ]; then
	pass "protocol errors are logged ($log_lines warnings)"
else
	fail "protocol errors are logged" "$(tail -n 20 "$FA_LOG")"
fi

out=$($CLIENT request /auth/health)
check "after all that, the responder still serves" "$out" "status Status: 200 OK"
fa_check_alive fastauth "$FA_PID" "$FA_LOG"
pass "fastauth $FA_PID still running"
