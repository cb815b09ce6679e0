#!/bin/bash
# limits.sh -- the bounds an attacker can push against, end to end behind
# lighttpd (spawned responders): the request body (413), the number of form parameters (400), the standalone listen backlog setting, and
# that every refusal is an RFC 6749 JSON error and the service keeps serving.
[ -n "${BASH_VERSION:-}" ] || exec bash "$0" "$@"
. "$(dirname "$0")/lib.sh"

require "$REDIS_SERVER" "$REDIS_CLI" "$LIGHTTPD" curl python3
require_fastauth

start_redis
HTTP_PORT=$(free_port)
BASE=http://127.0.0.1:$HTTP_PORT/auth
write_fastauth_conf "$FA_CONF" "$BASE" "max_body_size 4096" "max_form_params 8"
ctl key init >/dev/null 2>"$T/ctl.err" || die "fastauthctl key init failed" "$(cat "$T/ctl.err")"
setup_clients
mkdir -p "$T/run"
install_conf "$top_srcdir/lighttpd/fastauth-spawn.conf" "$T/fastauth-spawn.conf" \
    "/usr/sbin/fastauth -c /etc/fastauth/fastauth.conf" "$FASTAUTH -c $FA_CONF" \
    "/run/lighttpd/fastauth.sock" "$T/run/fastauth.sock"
make_lighttpd_conf "$T/lighttpd.conf" "$HTTP_PORT" "$T/fastauth-spawn.conf"
start_lighttpd "$T/lighttpd.conf" "$HTTP_PORT"
wait_ready "$BASE"

# Body: one byte over max_body_size.
pad=$(head -c 4097 /dev/zero | tr '\0' a)
post_form "$BASE/oauth2/token" "$pad" -u "app-a:$SECRET_A"
assert_error 413 invalid_request "a 4097-byte body (max_body_size 4096) -> 413 invalid_request"
pad=$(head -c 3000 /dev/zero | tr '\0' a)
post_form "$BASE/oauth2/token" "grant_type=client_credentials&pad=$pad" -u "app-a:$SECRET_A"
assert_status 200 "a 3000-byte body -> 200"

# Parameters: max_form_params 8.
body="grant_type=client_credentials"
for i in 1 2 3 4 5 6 7; do body="$body&p$i=x"; done
post_form "$BASE/oauth2/token" "$body" -u "app-a:$SECRET_A"
assert_status 200 "8 form parameters (max_form_params 8) -> 200"
post_form "$BASE/oauth2/token" "$body&p8=x" -u "app-a:$SECRET_A"
assert_error 400 invalid_request "9 form parameters (max_form_params 8) -> 400 invalid_request"
assert_json_field error_description "too many parameters"
body=$(python3 -c 'print("&".join("a%d=" % i for i in range(5000)))')
post_form "$BASE/oauth2/introspect" "$body" -u "introspector:$SECRET_I"
case $HTTP_STATUS in
400|413) pass "5000 empty parameters -> $HTTP_STATUS, refused" ;;
*) fa_fail_http "5000 empty parameters: 400 or 413" ;;
esac
# Still serving after all that.
post_form "$BASE/oauth2/token" "grant_type=client_credentials" -u "app-a:$SECRET_A"
assert_status 200 "service unaffected by refused requests"

# listen_backlog: range-checked by the configuration; a bad one is refused.
printf 'listen_backlog 8\n' >> "$FA_CONF"
out=$("$FASTAUTH" -c "$FA_CONF" --check-config 2>&1 || true)
assert_match "$out" 'listen_backlog.*out of range' "listen_backlog 8 (below 16) is refused by --check-config"
