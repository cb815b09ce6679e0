#!/bin/bash
# lighttpd.sh -- fastauth behind a private lighttpd, both as the shipped
# configurations set it up:
#  1. lighttpd/fastauth-spawn.conf: lighttpd spawns fastauth (max-procs 2);
#     the whole protocol surface: discovery, health, tokens, introspection,
#     revocation, client authentication, errors, malformed bodies, key
#     rotation;
#  2. lighttpd/fastauth-socket.conf: a standalone "fastauth --listen unix:..."
#     behind lighttpd; a smoke subset.
[ -n "${BASH_VERSION:-}" ] || exec bash "$0" "$@"
. "$(dirname "$0")/lib.sh"

require "$REDIS_SERVER" "$REDIS_CLI" "$LIGHTTPD" curl python3
require_fastauth

start_redis
HTTP_PORT=$(free_port)
BASE=http://127.0.0.1:$HTTP_PORT/auth
write_fastauth_conf "$FA_CONF" "$BASE"

ctl key init >/dev/null 2>"$T/ctl.err" || die "fastauthctl key init failed" "$(cat "$T/ctl.err")"
setup_clients

mkdir -p "$T/run"
install_conf "$top_srcdir/lighttpd/fastauth-spawn.conf" "$T/fastauth-spawn.conf" \
    "/usr/sbin/fastauth -c /etc/fastauth/fastauth.conf" "$FASTAUTH -c $FA_CONF" \
    "/run/lighttpd/fastauth.sock" "$T/run/fastauth.sock"
make_lighttpd_conf "$T/lighttpd.conf" "$HTTP_PORT" "$T/fastauth-spawn.conf"
start_lighttpd "$T/lighttpd.conf" "$HTTP_PORT"

# --- the core flow (shared with apache.sh) ---------------------------------
check_core_flow "$BASE"

# lighttpd runs max-procs 2 fastauth responders.
nproc=$(ps -o pid= --ppid "$LIGHTTPD_PID" | wc -l)
assert_eq "$nproc" 2 "lighttpd spawned max-procs = 2 fastauth processes"

# --- client authentication ------------------------------------------------
TOKEN_URL=$BASE/oauth2/token

post_form "$TOKEN_URL" "grant_type=client_credentials&client_id=app-a&client_secret=$SECRET_A"
assert_status 200 "token via client_secret_post -> 200"
assert_json_field token_type Bearer "client_secret_post: token_type Bearer"

post_form "$TOKEN_URL" "grant_type=client_credentials&client_id=app-a&client_secret=$SECRET_A" \
    -u "app-a:$SECRET_A"
assert_error 400 invalid_request "Basic and client_secret_post at once -> 400 invalid_request"

post_form "$TOKEN_URL" "grant_type=client_credentials&client_id=app-a&client_secret=wrong"
assert_error 401 invalid_client "client_secret_post with a wrong secret -> 401 invalid_client"

post_form "$TOKEN_URL" "grant_type=client_credentials" -u "no-such-client:$SECRET_A"
assert_error 401 invalid_client "unknown client -> 401 invalid_client"
assert_header WWW-Authenticate '^Basic'

post_form "$TOKEN_URL" "grant_type=client_credentials"
assert_error 401 invalid_client "no client authentication at all -> 401 invalid_client"

post_form "$TOKEN_URL" "scope=read" -u "app-a:$SECRET_A"
assert_error 400 invalid_request "missing grant_type -> 400 invalid_request"

# --- scope ------------------------------------------------------------------
post_form "$TOKEN_URL" "grant_type=client_credentials&scope=read" -u "app-a:$SECRET_A"
assert_status 200 "scope=read (a subset) -> 200"
assert_json_field scope read "scope=read: granted scope is read"
TOK_READ=$(json_field access_token)
introspect "$BASE" "$TOK_READ"
assert_json_field scope read "introspection of a scope=read token: scope read"

post_form "$TOKEN_URL" "grant_type=client_credentials&scope=write%20read" -u "app-a:$SECRET_A"
assert_status 200 "scope=write read (all of it) -> 200"

post_form "$TOKEN_URL" "grant_type=client_credentials&scope=read%20admin" -u "app-a:$SECRET_A"
assert_error 400 invalid_scope "scope=read admin (admin not allowed) -> 400 invalid_scope"

post_form "$TOKEN_URL" "grant_type=client_credentials&scope=write" -u "app-b:$SECRET_B"
assert_error 400 invalid_scope "app-b asks for write (only read allowed) -> 400 invalid_scope"

# --- introspection and revocation permissions ----------------------------
TOK_A=$(get_token "$BASE" app-a "$SECRET_A")
TOK_B=$(get_token "$BASE" app-b "$SECRET_B")

post_form "$BASE/oauth2/introspect" "token=$TOK_A" -u "app-b:$SECRET_B"
assert_error 403 unauthorized_client "introspection by a client without --introspect -> 403 unauthorized_client"
assert_json_absent active "403 introspection reveals nothing about the token"

post_form "$BASE/oauth2/introspect" "token=$TOK_A" -u "introspector:wrong"
assert_error 401 invalid_client "introspection with a wrong secret -> 401 invalid_client"

post_form "$BASE/oauth2/revoke" "token=$TOK_A" -u "app-b:$SECRET_B"
assert_status 200 "app-b revokes app-a's token -> 200 (RFC 7009: no information)"
introspect "$BASE" "$TOK_A"
assert_json_field active true "app-a's token stays active after app-b tried to revoke it"
assert_json_field client_id app-a

post_form "$BASE/oauth2/revoke" "token=fa1.AAAAAQAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA" -u "app-a:$SECRET_A"
assert_status 200 "revoking an unknown token -> 200"

post_form "$BASE/oauth2/revoke" "token=$TOK_B" -u "app-b:wrong"
assert_error 401 invalid_client "revoke with a wrong secret -> 401 invalid_client"
introspect "$BASE" "$TOK_B"
assert_json_field active true "a failed revoke leaves the token active"

# --- tampered and garbage tokens ---------------------------------------------
tampered=$(python3 - "$TOK_A" <<'EOF'
import sys
t = sys.argv[1]
i = len(t) // 2
c = 'B' if t[i] == 'A' else 'A'
print(t[:i] + c + t[i + 1:])
EOF
)
introspect "$BASE" "$tampered"
assert_json_equals '{"active":false}' "token with one character flipped -> {\"active\":false}"
introspect "$BASE" "${TOK_A%?????}"
assert_json_equals '{"active":false}' "truncated token -> {\"active\":false}"
introspect "$BASE" "not-a-token"
assert_json_equals '{"active":false}' "garbage token -> {\"active\":false}"
# The same token with a key id that does not exist.
otherkid=$(python3 - "$TOK_A" <<'EOF'
import base64, sys
t = sys.argv[1][4:]
raw = bytearray(base64.urlsafe_b64decode(t + '=' * (-len(t) % 4)))
raw[0:4] = (0x7fff0000).to_bytes(4, 'big')
print('fa1.' + base64.urlsafe_b64encode(bytes(raw)).decode().rstrip('='))
EOF
)
introspect "$BASE" "$otherkid"
assert_json_equals '{"active":false}' "token naming an unknown key id -> {\"active\":false}"
introspect "$BASE" "$TOK_A"
assert_json_field active true "the untampered token is still active"

# --- malformed requests --------------------------------------------------------
post_form "$TOKEN_URL" "grant_type=client_credentials&scope=%zz" -u "app-a:$SECRET_A"
assert_error 400 invalid_request "bad %-escape in the body -> 400 invalid_request"

post_form "$TOKEN_URL" "grant_type=client_credentials&scope=rea%" -u "app-a:$SECRET_A"
assert_error 400 invalid_request "truncated %-escape at the end -> 400 invalid_request"

post_form "$TOKEN_URL" "grant_type=client_credentials&grant_type=client_credentials" -u "app-a:$SECRET_A"
assert_error 400 invalid_request "duplicate parameter (RFC 6749 3.2) -> 400 invalid_request"

post_form "$TOKEN_URL" "grant_type=client_credentials&scope=read&scope=write" -u "app-a:$SECRET_A"
assert_error 400 invalid_request "duplicate scope parameter -> 400 invalid_request"

head -c 4096 /dev/urandom > "$T/garbage"
http POST "$TOKEN_URL" -u "app-a:$SECRET_A" \
    -H 'Content-Type: application/x-www-form-urlencoded' --data-binary "@$T/garbage"
assert_status 400 "4 KiB of random bytes as a form -> 400"
assert_json_field_match error '^invalid_request$' "random bytes: a JSON invalid_request error"

printf 'grant_type=client_credentials\0&scope=read' > "$T/nul"
http POST "$TOKEN_URL" -u "app-a:$SECRET_A" \
    -H 'Content-Type: application/x-www-form-urlencoded' --data-binary "@$T/nul"
assert_error 400 invalid_request "raw NUL byte in the form -> 400 invalid_request"

http POST "$TOKEN_URL" -u "app-a:$SECRET_A" \
    -H 'Content-Type: application/json' --data-binary '{"grant_type":"client_credentials"}'
assert_error 400 invalid_request "Content-Type application/json -> 400 invalid_request"

http POST "$TOKEN_URL" -u "app-a:$SECRET_A" -H 'Content-Type:' \
    --data-binary 'grant_type=client_credentials'
assert_error 400 invalid_request "no Content-Type -> 400 invalid_request"

http POST "$TOKEN_URL" -u "app-a:$SECRET_A" \
    -H 'Content-Type: application/x-www-form-urlencoded; charset=UTF-8' \
    --data-binary 'grant_type=client_credentials'
assert_status 200 "Content-Type with a charset parameter -> 200"

http POST "$TOKEN_URL" -H 'Content-Type: application/x-www-form-urlencoded' \
    -H 'Authorization: Basic %%%notbase64' --data-binary 'grant_type=client_credentials'
if [ "$HTTP_STATUS" = 400 ] || [ "$HTTP_STATUS" = 401 ]; then
	assert_json_field_match error '^(invalid_request|invalid_client)$' "malformed Basic credentials -> 400/401 with a JSON error"
else
	fa_fail_http "malformed Basic credentials -> 400 or 401" "got $HTTP_STATUS"
fi

pad=$(head -c 17000 /dev/zero | tr '\0' a)
post_form "$TOKEN_URL" "grant_type=client_credentials&x=$pad" -u "app-a:$SECRET_A"
assert_status 413 "17000-byte body (max_body_size 16384) -> 413"
pad=$(head -c 16000 /dev/zero | tr '\0' a)
post_form "$BASE/oauth2/introspect" "token=$pad" -u "introspector:$SECRET_I"
if [ "$HTTP_STATUS" = 200 ]; then
	assert_json_equals '{"active":false}' "16000-byte token (under max_body_size) -> {\"active\":false}"
else
	assert_error 400 invalid_request "16000-byte token (under max_body_size) -> inactive or 400 invalid_request"
fi

# --- methods and paths ---------------------------------------------------------
http GET "$TOKEN_URL"
assert_status 405 "GET on the token endpoint -> 405"
assert_header Allow '^POST$'
http PUT "$BASE/oauth2/introspect" -d token=x
assert_status 405 "PUT on the introspection endpoint -> 405"
assert_header Allow 'POST'
http GET "$BASE/no/such/path"
assert_status 404 "unknown path -> 404"
http GET "$BASE/oauth2/tokenx"
assert_status 404 "/oauth2/tokenx (prefix of a real path) -> 404"
http GET "http://127.0.0.1:$HTTP_PORT/authors"
assert_status 404 "/authors is not sent to fastauth (lighttpd 404)"

# --- key rotation -----------------------------------------------------------------
TOK_OLD=$(get_token "$BASE" app-a "$SECRET_A")
kid_old=$(token_kid "$TOK_OLD")
out=$(ctl key rotate 2>"$T/ctl.err") || die "fastauthctl key rotate failed" "$(cat "$T/ctl.err")"
kid_new=$(printf '%s\n' "$out" | grep -Eo '[0-9]+' | tail -n 1 || true)
assert_match "$kid_new" '^[0-9]+$' "fastauthctl key rotate prints the new key id ($out)"
if [ "$kid_new" = "$kid_old" ]; then
	fail "key rotate: new key id $kid_new is the one in use already"
fi
ctl key list > "$T/keylist" 2>&1 || fail "fastauthctl key list failed" "$(cat "$T/keylist")"
if grep -Eqw "$kid_new" "$T/keylist" && grep -Eqw "$kid_old" "$T/keylist"; then
	pass "fastauthctl key list shows keys $kid_old and $kid_new"
else
	fail "fastauthctl key list shows keys $kid_old and $kid_new" "$(cat "$T/keylist")"
fi

new_kid_in_use() {
	TOK_NEW=$(get_token "$BASE" app-a "$SECRET_A") || return 1
	[ "$(token_kid "$TOK_NEW")" = "$kid_new" ]
}
# Both processes must switch (key_refresh_interval 1): look for a few
# tokens in a row with the new key.
switched() {
	new_kid_in_use && new_kid_in_use && new_kid_in_use && new_kid_in_use
}
if wait_until 10 switched; then
	pass "within 10 s new tokens carry the new key id $kid_new (old: $kid_old)"
else
	fail "new tokens carry key id $kid_new within 10 s" "last token's key id: $(token_kid "$TOK_NEW" || true)"
fi
introspect "$BASE" "$TOK_OLD"
assert_json_field active true "token sealed with the old key $kid_old is still active"
introspect "$BASE" "$TOK_NEW"
assert_json_field active true "token sealed with the new key $kid_new is active"

post_form "$BASE/oauth2/revoke" "token=$TOK_OLD" -u "app-a:$SECRET_A"
assert_status 200 "revoke old-key token after rotation -> 200"
post_form "$BASE/oauth2/revoke" "token=$TOK_NEW" -u "app-a:$SECRET_A"
assert_status 200 "revoke new-key token after rotation -> 200"
for t in "$TOK_OLD" "$TOK_NEW"; do
	for i in 1 2 3; do
		introspect "$BASE" "$t"
		assert_json_equals '{"active":false}' "revoked after rotation (key $(token_kid "$t"), try $i) -> inactive"
	done
done

# --- the standalone layout: fastauth-socket.conf ---------------------------------
note "standalone fastauth behind lighttpd/fastauth-socket.conf"
stop_pid "$LIGHTTPD_PID"
HTTP_PORT2=$(free_port)
BASE2=http://127.0.0.1:$HTTP_PORT2/auth
FA_CONF2=$T/fastauth-socket.conf
write_fastauth_conf "$FA_CONF2" "$BASE2"
mkdir -p "$T/sock"
start_fastauth "$FA_CONF2" "unix:$T/sock/fastauth.sock" --processes 2
install_conf "$top_srcdir/lighttpd/fastauth-socket.conf" "$T/lighttpd-socket.snippet" \
    "/run/fastauth/fastauth.sock" "$T/sock/fastauth.sock"
make_lighttpd_conf "$T/lighttpd2.conf" "$HTTP_PORT2" "$T/lighttpd-socket.snippet"
start_lighttpd "$T/lighttpd2.conf" "$HTTP_PORT2"
check_core_flow "$BASE2"
post_form "$BASE2/oauth2/token" "grant_type=client_credentials&client_id=app-b&client_secret=$SECRET_B"
assert_status 200 "socket layout: client_secret_post -> 200"
post_form "$BASE2/oauth2/introspect" "token=x" -u "app-b:$SECRET_B"
assert_error 403 unauthorized_client "socket layout: introspection without permission -> 403"
http GET "$BASE2/oauth2/token"
assert_status 405 "socket layout: GET on token -> 405"
