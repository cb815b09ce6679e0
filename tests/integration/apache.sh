#!/bin/bash
# apache.sh -- fastauth behind a private Apache 2.4, as the shipped
# configurations set it up, twice:
#  1. apache/fastauth-proxy-fcgi.conf: mod_proxy_fcgi to a standalone
#     "fastauth --listen unix:..." running as Apache's user;
#  2. apache/fastauth-fcgid.conf: mod_fcgid spawning fastauth.
# Each runs the core flow: discovery, health, token -> introspect -> revoke
# -> inactive, wrong secret, unsupported grant, oversized body; and a batch
# introspection, whose answer fastauth streams.
[ -n "${BASH_VERSION:-}" ] || exec bash "$0" "$@"
. "$(dirname "$0")/lib.sh"

require "$REDIS_SERVER" "$REDIS_CLI" "$APACHE2" curl python3 setpriv
require_fastauth
for m in mpm_event proxy proxy_fcgi fcgid alias; do
	[ -f "$APACHE_MODULES/mod_$m.so" ] ||
	    die "Apache module $APACHE_MODULES/mod_$m.so missing (run scripts/install-deps)"
done
id "$FA_APACHE_USER" >/dev/null 2>&1 || die "user $FA_APACHE_USER (Apache's User) does not exist"
AGROUP=$(id -gn "$FA_APACHE_USER")

start_redis

# fastauth runs as Apache's user in both layouts; the binary, configuration
# and KEK must be reachable by it (the build tree may not be: copy the binary).
mkdir -p "$T/bin"
cp "$FASTAUTH" "$T/bin/fastauth"
chmod 0755 "$T/bin" "$T/bin/fastauth"

# One KEK and one Redis prefix for both layouts: the clients are shared.
PORT_P=$(free_port)
BASE_P=http://127.0.0.1:$PORT_P/auth
write_fastauth_conf "$FA_CONF" "$BASE_P"
ctl key init >/dev/null 2>"$T/ctl.err" || die "fastauthctl key init failed" "$(cat "$T/ctl.err")"
chown "$FA_APACHE_USER:$AGROUP" "$T/kek"
setup_clients

# --- 1. mod_proxy_fcgi -> standalone fastauth ------------------------------
note "Apache mod_proxy_fcgi -> fastauth --listen unix:... (as $FA_APACHE_USER)"
mkdir -p "$T/fa-run"
chown "$FA_APACHE_USER:$AGROUP" "$T/fa-run"
FASTAUTH_SAVED=$FASTAUTH
FASTAUTH=$T/bin/fastauth
FA_RUN_AS=$FA_APACHE_USER start_fastauth "$FA_CONF" "unix:$T/fa-run/fastauth.sock" --processes 2
FASTAUTH=$FASTAUTH_SAVED
install_conf "$top_srcdir/apache/fastauth-proxy-fcgi.conf" "$T/proxy-fcgi.conf" \
    "/run/fastauth/fastauth.sock" "$T/fa-run/fastauth.sock"
start_apache "$PORT_P" "$T/proxy-fcgi.conf"
check_core_flow "$BASE_P"
post_form "$BASE_P/oauth2/token" "grant_type=client_credentials&client_id=app-b&client_secret=$SECRET_B"
assert_status 200 "proxy_fcgi: client_secret_post -> 200"
http GET "$BASE_P/oauth2/token"
assert_status 405 "proxy_fcgi: GET on token -> 405"
assert_header Allow '^POST$'
http GET "$BASE_P/no/such/path"
assert_status 404 "proxy_fcgi: unknown path -> 404"
pad=$(head -c 70000 /dev/zero | tr '\0' a)
post_form "$BASE_P/oauth2/token" "grant_type=client_credentials&x=$pad" -u "app-a:$SECRET_A"
assert_status 413 "proxy_fcgi: 70000-byte body (over LimitRequestBody) -> 413"
TOK_P=$(get_token "$BASE_P" app-a "$SECRET_A")
# Batch introspection's answer is streamed (no Content-Length from fastauth).
http POST "$BASE_P/oauth2/introspect/batch" -H 'Content-Type: application/json' \
    --data-binary "[\"$TOK_P\", \"garbage\"]" -u "introspector:$SECRET_I"
assert_status 200 "proxy_fcgi: batch introspection (streamed answer) -> 200"
assert_match "$HTTP_BODY" '^\[\{"active":true,.*\},\{"active":false\}\]$' \
    "proxy_fcgi: batch answer complete and in order"
stop_pid "$APACHE_PID"
stop_pid "$FA_PID" || fail "standalone fastauth did not stop on SIGTERM within 10 s"

# --- 2. mod_fcgid spawning fastauth ------------------------------------------
note "Apache mod_fcgid spawning fastauth (as $FA_APACHE_USER)"
PORT_F=$(free_port)
BASE_F=http://127.0.0.1:$PORT_F/auth
FA_CONF_F=$T/fastauth-fcgid.conf
write_fastauth_conf "$FA_CONF_F" "$BASE_F"
install_conf "$top_srcdir/apache/fastauth-fcgid.conf" "$T/fcgid.conf" \
    '"/usr/sbin/fastauth -c /etc/fastauth/fastauth.conf"' "\"$T/bin/fastauth -c $FA_CONF_F\"" \
    '"/usr/sbin/fastauth"' "\"$T/bin/fastauth\""
start_apache "$PORT_F" "$T/fcgid.conf"
check_core_flow "$BASE_F"
post_form "$BASE_F/oauth2/token" "grant_type=client_credentials&client_id=app-b&client_secret=$SECRET_B"
assert_status 200 "fcgid: client_secret_post -> 200"
http GET "$BASE_F/oauth2/token"
assert_status 405 "fcgid: GET on token -> 405"
http GET "$BASE_F/no/such/path"
assert_status 404 "fcgid: unknown path -> 404"
TOK_F=$(get_token "$BASE_F" app-a "$SECRET_A")
http POST "$BASE_F/oauth2/introspect/batch" -H 'Content-Type: application/json' \
    --data-binary "[\"garbage\", \"$TOK_F\"]" -u "introspector:$SECRET_I"
assert_status 200 "fcgid: batch introspection (streamed answer) -> 200"
assert_match "$HTTP_BODY" '^\[\{"active":false\},\{"active":true,.*\}\]$' \
    "fcgid: batch answer complete and in order"

# A token from the other layout is valid here (same Redis, same keys).
introspect "$BASE_F" "$TOK_P"
assert_json_field active true "fcgid: a token issued behind mod_proxy_fcgi is active here"

# mod_fcgid's processes run as Apache's user, at most FcgidMaxProcessesPerClass.
fa_procs=$(ps -o user=,args= -e | awk -v b="$T/bin/fastauth" '$2 == b' || true)
n=$(printf '%s\n' "$fa_procs" | grep -c . || true)
if [ "$n" -ge 1 ] && [ "$n" -le 2 ] && ! printf '%s\n' "$fa_procs" | awk '{print $1}' | grep -vqx "$FA_APACHE_USER"; then
	pass "mod_fcgid runs $n fastauth process(es) (max 2), as $FA_APACHE_USER"
else
	fail "mod_fcgid runs 1-2 fastauth processes as $FA_APACHE_USER" "$fa_procs"
fi
