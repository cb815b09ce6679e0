#!/bin/bash
# authorizer_apache.sh -- fastauth as Apache's FastCGI Authorizer
# (mod_authnz_fcgi), with the shipped apache/fastauth-authorizer.conf:
#  - mod_authnz_fcgi reaches a standalone fastauth on a loopback TCP port
#    that answers the Authorizer role only (fastcgi_roles authorizer);
#  - the endpoints come from another standalone fastauth behind
#    mod_proxy_fcgi (apache/fastauth-proxy-fcgi.conf), sharing Redis, keys
#    and the host's shared-memory mirror;
#  - the check_authorizer list: a static file and a CGI script (mod_cgid)
#    protected; no token, forged, valid (REMOTE_USER and FASTAUTH_* seen by
#    the script), spoofing headers, scopes, a user's token, expired, revoked;
#  - the Authorizer-only port refuses Responder requests (404).
[ -n "${BASH_VERSION:-}" ] || exec bash "$0" "$@"
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/authorizer_lib.sh"

require "$REDIS_SERVER" "$REDIS_CLI" "$APACHE2" curl python3 setpriv
require_fastauth
for m in mpm_event proxy proxy_fcgi authn_core authnz_fcgi cgid setenvif; do
	[ -f "$APACHE_MODULES/mod_$m.so" ] ||
	    die "Apache module $APACHE_MODULES/mod_$m.so missing (run scripts/install-deps)"
done
id "$FA_APACHE_USER" >/dev/null 2>&1 || die "user $FA_APACHE_USER (Apache's User) does not exist"
AGROUP=$(id -gn "$FA_APACHE_USER")

start_redis
PORT=$(free_port)
APORT=$(free_port)
BASE=http://127.0.0.1:$PORT/auth
PROT=http://127.0.0.1:$PORT/protected
SHORT=http://127.0.0.1:$PORT/shortauth
FA_SHORT_TTL=2
write_fastauth_conf "$FA_CONF" "$BASE"
ctl key init >/dev/null 2>"$T/ctl.err" || die "fastauthctl key init failed" "$(cat "$T/ctl.err")"
chown "$FA_APACHE_USER:$AGROUP" "$T/kek"
setup_clients
setup_authorizer_clients

# fastauth runs as Apache's user (its sockets must be reachable by it); the
# build tree may not be: copy the binary.
mkdir -p "$T/bin" "$T/fa-run"
cp "$FASTAUTH" "$T/bin/fastauth"
chmod 0755 "$T/bin" "$T/bin/fastauth"
chown "$FA_APACHE_USER:$AGROUP" "$T/fa-run"
FASTAUTH_SAVED=$FASTAUTH
FASTAUTH=$T/bin/fastauth
FA_RUN_AS=$FA_APACHE_USER start_fastauth "$FA_CONF" "unix:$T/fa-run/fastauth.sock" --processes 1
FASTAUTH_ACCESS_TOKEN_TTL=$FA_SHORT_TTL FA_RUN_AS=$FA_APACHE_USER \
    start_fastauth "$FA_CONF" "unix:$T/fa-run/short.sock" --processes 1
FASTAUTH_FASTCGI_ROLES=authorizer FA_RUN_AS=$FA_APACHE_USER \
    start_fastauth "$FA_CONF" "127.0.0.1:$APORT" --processes 2
FASTAUTH=$FASTAUTH_SAVED

APACHE_DIR_WILL_BE=$T/apache-$PORT
mkdir -p "$APACHE_DIR_WILL_BE/htdocs" "$APACHE_DIR_WILL_BE/run"
make_protected_tree "$APACHE_DIR_WILL_BE/htdocs/protected"

install_conf "$top_srcdir/apache/fastauth-proxy-fcgi.conf" "$T/proxy-fcgi.conf" \
    "/run/fastauth/fastauth.sock" "$T/fa-run/fastauth.sock"
install_conf "$top_srcdir/apache/fastauth-authorizer.conf" "$T/authorizer.conf" \
    "fcgi://127.0.0.1:9001/" "fcgi://127.0.0.1:$APORT/"
cat > "$T/site.conf" <<EOF
Include "$T/proxy-fcgi.conf"
Include "$T/authorizer.conf"
# The short-lived tokens' endpoint.
<Location "/shortauth/">
    ProxyPass "unix:$T/fa-run/short.sock|fcgi://shortauth/" enablereuse=off
    CGIPassAuth On
</Location>
# The protected application: CGI scripts under /protected/app/.
ScriptSock "$APACHE_DIR_WILL_BE/run/cgid.sock"
ScriptAlias "/protected/app/" "$APACHE_DIR_WILL_BE/htdocs/protected/app/"
# Responder requests sent to the Authorizer-only port.
<Location "/wrongrole/">
    ProxyPass "fcgi://127.0.0.1:$APORT/" enablereuse=off
</Location>
EOF
FA_APACHE_EXTRA_MODULES="authn_core authnz_fcgi cgid" start_apache "$PORT" "$T/site.conf"
wait_ready "$BASE"

check_authorizer "$PROT" "$BASE" "$SHORT" "apache"

# REMOTE_USER is FASTAUTH_SUB (UserExpr).
TOK=$(get_token "$BASE" app-b "$SECRET_B") || die "no token"
auth_get "$PROT/app/echo.cgi" "$TOK"
assert_body_has "REMOTE_USER=app-b" "apache: REMOTE_USER is FASTAUTH_SUB"

http GET "http://127.0.0.1:$PORT/wrongrole/health"
assert_status 404 "the Authorizer-only fastauth refuses a Responder request (404)"
