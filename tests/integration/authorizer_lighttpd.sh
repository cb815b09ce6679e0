#!/bin/bash
# authorizer_lighttpd.sh -- fastauth as lighttpd's FastCGI Authorizer, with
# the shipped lighttpd/fastauth-authorizer.conf, twice:
#  1. socket form: one standalone fastauth answers both roles on one socket
#     (the endpoints through fastauth-socket.conf, the checks through the
#     authorizer snippet). The whole check_authorizer list (no token,
#     forged, valid, variables seen by a CGI script, spoofing headers, scopes,
#     a user's token, expired, revoked); then: no Redis round trip for a
#     valid token while the mirror is in sync (Redis MONITOR sees no
#     revocation lookup over 200 checks, after one for the first check);
#  2. spawned form: lighttpd spawns the Authorizer processes itself (the
#     snippet's bin-path alternative); the core subset;
#  3. last, with Redis stopped, the check fails closed (503), even for a
#     token the mirror had vouched for.
[ -n "${BASH_VERSION:-}" ] || exec bash "$0" "$@"
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/authorizer_lib.sh"

require "$REDIS_SERVER" "$REDIS_CLI" "$LIGHTTPD" curl python3
require_fastauth

start_redis
HTTP_PORT=$(free_port)
BASE=http://127.0.0.1:$HTTP_PORT/auth
PROT=http://127.0.0.1:$HTTP_PORT/protected
SHORT=http://127.0.0.1:$HTTP_PORT/shortauth
FA_SHORT_TTL=2
write_fastauth_conf "$FA_CONF" "$BASE"
ctl key init >/dev/null 2>"$T/ctl.err" || die "fastauthctl key init failed" "$(cat "$T/ctl.err")"
setup_clients
setup_authorizer_clients

mkdir -p "$T/run" "$T/www"
make_protected_tree "$T/www/protected"

# The standalone fastauth (both roles), and one whose tokens live 2 s.
start_fastauth "$FA_CONF" "unix:$T/run/fastauth.sock" --processes 2
FASTAUTH_ACCESS_TOKEN_TTL=$FA_SHORT_TTL start_fastauth "$FA_CONF" "unix:$T/run/short.sock" --processes 1

# site.conf: the shipped snippets, a mount for the short-lived tokens, CGI
# for the protected application, and a proxied one (mod_proxy loaded after
# mod_fastcgi, as the snippet asks): this lighttpd's own /auth/health.
site_conf() {	# FILE AUTHORIZER_SNIPPET PORT
	cat > "$1" <<EOF
include "$T/fastauth-socket.conf"
include "$2"
\$HTTP["url"] =~ "^/shortauth(/|$)" {
  fastcgi.server = ( "/shortauth" => (( "socket" => "$T/run/short.sock", "check-local" => "disable" )) )
}
server.modules += ( "mod_cgi", "mod_proxy" )
\$HTTP["url"] =~ "^/protected/app/" {
  cgi.assign = ( ".cgi" => "" )
}
# A location whose required scope is not a scope list (a double space).
\$HTTP["url"] =~ "^/protected/broken/" {
  setenv.add-environment = ( "FASTAUTH_REQUIRED_SCOPE" => "read  write" )
}
\$HTTP["url"] =~ "^/protected/proxy/" {
  proxy.server = ( "" => (( "host" => "127.0.0.1", "port" => $3 )) )
  proxy.header = ( "map-urlpath" => ( "/protected/proxy/" => "/auth/" ) )
}
EOF
}
install_conf "$top_srcdir/lighttpd/fastauth-socket.conf" "$T/fastauth-socket.conf" \
    "/run/fastauth/fastauth.sock" "$T/run/fastauth.sock"

# --- 1. socket form ----------------------------------------------------------
note "lighttpd, Authorizer on the standalone fastauth's socket"
install_conf "$top_srcdir/lighttpd/fastauth-authorizer.conf" "$T/authorizer-socket.conf" \
    "/run/fastauth/fastauth.sock" "$T/run/fastauth.sock"
site_conf "$T/site-socket.conf" "$T/authorizer-socket.conf" "$HTTP_PORT"
make_lighttpd_conf "$T/lighttpd.conf" "$HTTP_PORT" "$T/site-socket.conf"
start_lighttpd "$T/lighttpd.conf" "$HTTP_PORT"
wait_ready "$BASE"

check_authorizer "$PROT" "$BASE" "$SHORT" "lighttpd socket"

# A proxied application is protected too (mod_proxy after mod_fastcgi).
auth_get "$PROT/proxy/health" ""
assert_challenge 401 '^Bearer realm="fastauth"$' "proxied application without a token"
TOKP=$(get_token "$BASE" app-a "$SECRET_A" "scope=read") || die "no token"
auth_get "$PROT/proxy/health" "$TOKP"
assert_status 200 "proxied application with a valid token -> 200"

# A misconfigured required scope denies everything (500), loudly.
auth_get "$PROT/broken/file.txt" "$TOKP"
assert_status 500 "a location whose FASTAUTH_REQUIRED_SCOPE is not a scope list -> 500"
if grep -q "FASTAUTH_REQUIRED_SCOPE of /protected/broken/file.txt is not a scope list" "$T"/fastauth.1.log; then
	pass "the misconfigured scope is logged"
else
	fail "the misconfigured scope is logged" "$(tail -n 5 "$T/fastauth.1.log")"
fi

# --- no Redis round trip while the mirror is in sync ---------------------------
mirror_ok() { ctl shm stats 2>/dev/null | grep -q '^revocation mirror: in sync'; }
wait_until 10 mirror_ok || fail "the revocation mirror is in sync within 10 s" "$(ctl shm stats 2>&1)"
TOK=$(get_token "$BASE" app-a "$SECRET_A" "scope=read") || die "no token"
monitor_start
m0=$(monitor_mark)
auth_get "$PROT/file.txt" "$TOK"
assert_status 200 "first check of a new token -> 200"
m1=$(monitor_mark)
n=$(revocation_lookups "$m0" "$m1")
if [ "$n" -ge 1 ]; then
	pass "the first check of a token the mirror never saw asks Redis ($n revocation lookup)"
else
	fail "the first check of a new token asks Redis (MONITOR sees it)" "lookups: $n"
fi
# N checks of the same token, in rounds: a round passes when Redis saw no
# revocation lookup at all. The mirror stops vouching whenever its leader's
# heartbeat is 300 ms old (a starved thread on a loaded host): checks at
# such a moment rightly ask Redis, so a round may see a few; a mirror that
# does not vouch would make every round see about N.
N=200
urls=()
for ((i = 0; i < N; i++)); do
	urls+=(-o /dev/null "$PROT/file.txt")
done
lookups=""
for round in 1 2 3; do
	mb=$(monitor_mark)
	codes=$(curl -s -H "Authorization: Bearer $TOK" -w '%{http_code}\n' "${urls[@]}" |
	    sort | uniq -c | tr -s ' ' | tr '\n' ';')
	ma=$(monitor_mark)
	assert_eq "$codes" " $N 200;" "round $round: $N more checks of the same token -> $N x 200"
	n=$(revocation_lookups "$mb" "$ma")
	lookups="$lookups $n"
	[ "$n" = 0 ] && break
done
if [ "$n" = 0 ]; then
	pass "$N checks while the mirror is in sync: no Redis round trip (revocation lookups per round:$lookups)"
else
	fail "$N checks while the mirror is in sync ask Redis nothing (in one of 3 rounds)" \
	    "revocation lookups per round:$lookups"
fi
monitor_stop
auth_get "$PROT/app/echo.cgi" "$TOK"
assert_body_has "FASTAUTH_CLIENT_ID=app-a" "after the run, the CGI still sees the variables"

# --- 2. spawned form ------------------------------------------------------------
note "lighttpd spawning the Authorizer processes"
PORT2=$(free_port)
PROT2=http://127.0.0.1:$PORT2/protected
BASE2=http://127.0.0.1:$PORT2/auth
install_conf "$top_srcdir/lighttpd/fastauth-authorizer.conf" "$T/authorizer-spawn.conf" \
    '      "socket"      => "/run/fastauth/fastauth.sock",' \
    "      \"bin-path\" => \"$FASTAUTH -c $FA_CONF\", \"socket\" => \"$T/run/authz.sock\", \"max-procs\" => 1,"
site_conf "$T/site-spawn.conf" "$T/authorizer-spawn.conf" "$PORT2"
make_lighttpd_conf "$T/lighttpd2.conf" "$PORT2" "$T/site-spawn.conf"
start_lighttpd "$T/lighttpd2.conf" "$PORT2"
wait_ready "$BASE2"
nspawn=$(ps -o args= --ppid "$LIGHTTPD_PID" | grep -c -- "$FASTAUTH" || true)
assert_eq "$nspawn" 1 "lighttpd spawned one Authorizer process (max-procs 1)"
auth_get "$PROT2/file.txt" ""
assert_challenge 401 '^Bearer realm="fastauth"$' "spawned: no token"
TOK2=$(get_token "$BASE2" app-a "$SECRET_A" "scope=read") || die "no token"
auth_get "$PROT2/app/echo.cgi" "$TOK2"
assert_status 200 "spawned: CGI with a valid token -> 200"
assert_body_has "FASTAUTH_SUB=app-a" "spawned: the CGI sees FASTAUTH_SUB"
auth_get "$PROT2/admin/file.txt" "$TOK2"
assert_challenge 403 'error="insufficient_scope"' "spawned: missing scope"
post_form "$BASE2/oauth2/revoke" "token=$TOK2" -u "app-a:$SECRET_A"
assert_status 200 "spawned: revoke through the standalone fastauth"
if wait_until 5 denied_401 "$PROT2/file.txt" "$TOK2"; then
	pass "spawned: a token revoked by another process is refused"
else
	fa_fail_http "spawned: a token revoked by another process is refused"
fi

# --- 3. fail closed: Redis gone ---------------------------------------------------
stop_redis
unavailable() { auth_get "$PROT/file.txt" "$1"; [ "$HTTP_STATUS" = 503 ]; }
if wait_until 10 unavailable "$TOK"; then
	pass "Redis stopped: a token the mirror had vouched for -> 503 (fail closed)"
	assert_header Retry-After '^[0-9]+$' "503 carries Retry-After"
else
	fa_fail_http "Redis stopped: the check fails closed with 503 within 10 s"
fi
auth_get "$PROT/file.txt" ""
assert_status 401 "Redis stopped: no token is still 401"
auth_get "$PROT/file.txt" "fa1.AAAAAQAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"
assert_status 401 "Redis stopped: a forged token is still 401 (refused before any lookup)"

