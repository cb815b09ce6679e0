# authorizer_lib.sh -- what authorizer_lighttpd.sh and authorizer_apache.sh
# share (sourced after lib.sh): the protected content and the checks a web
# server with fastauth as its FastCGI Authorizer must pass.
#
# The protected tree, below the server's /protected/ (shipped snippets):
#   file.txt           a static file            (scope "read" required)
#   admin/file.txt     a static file            (scope "read admin")
#   app/echo.cgi       a CGI script printing the FASTAUTH_* variables it
#                      sees, REMOTE_USER, and any non-HTTP_ variable whose
#                      value a client tried to plant ("SPOOF: ...")
# shellcheck shell=bash disable=SC2034

# make_protected_tree DIR: the files above in DIR (DIR/app/echo.cgi).
make_protected_tree() {
	mkdir -p "$1/admin" "$1/app"
	echo "protected file" > "$1/file.txt"
	echo "admin file" > "$1/admin/file.txt"
	cat > "$1/app/echo.cgi" <<'EOF'
#!/bin/sh
printf 'Content-Type: text/plain\r\n\r\n'
env | grep -E '^(FASTAUTH_[A-Z_]*|REMOTE_USER)=' | sort
env | grep -v '^HTTP_' | grep mallory | sed 's/^/SPOOF: /'
exit 0
EOF
	chmod 0755 "$1" "$1/admin" "$1/app" "$1/app/echo.cgi"
}

# setup_authorizer_clients: besides setup_clients, a client that may hold
# "admin" (SECRET_ADM), and a user alice (password grant through client web,
# SECRET_WEB; password $ALICE_PW).
setup_authorizer_clients() {
	SECRET_ADM=$(ctl_secret client add --id app-adm --scope "read admin" \
	    --grant client_credentials)
	SECRET_WEB=$(ctl_secret client add --id web --scope "read openid" \
	    --grant password)
	ALICE_PW=alice-secret-pw-1
	printf '%s\n' "$ALICE_PW" | ctl user add alice >/dev/null 2>"$T/ctl.err" ||
	    die "fastauthctl user add alice failed" "$(cat "$T/ctl.err")"
}

# auth_get URL TOKEN [curl options]: GET with the token as Bearer ("" = none).
auth_get() {
	local url=$1 tok=$2
	shift 2
	if [ -n "$tok" ]; then
		http GET "$url" -H "Authorization: Bearer $tok" "$@"
	else
		http GET "$url" "$@"
	fi
}

# assert_body_has LINE DESCRIPTION: the last body has this exact line.
assert_body_has() {
	if printf '%s\n' "$HTTP_BODY" | grep -qxF -- "$1"; then
		pass "$2"
	else
		fa_fail_http "$2" "expected a body line: $1"
	fi
}

# assert_challenge STATUS ERE DESCRIPTION: status and WWW-Authenticate ~ ERE,
# and nothing of the protected content in the body.
assert_challenge() {
	assert_status "$1" "$3: status $1"
	assert_header WWW-Authenticate "$2" "$3: WWW-Authenticate ~ $2"
	if printf '%s' "$HTTP_BODY" | grep -q 'protected file\|admin file\|FASTAUTH_'; then
		fa_fail_http "$3: the body must not carry protected content"
	fi
}

# introspected_exp BASE TOKEN: the token's exp, by introspection.
introspected_exp() {
	introspect "$1" "$2"
	json_field exp
}

# check_authorizer PROT AUTH SHORT LABEL: the checks every layout must pass.
# PROT is the /protected/ base URL, AUTH the endpoints' base, SHORT a token
# endpoint base whose tokens live FA_SHORT_TTL seconds.
check_authorizer() {
	local prot=$1 auth=$2 short=$3 l=$4 tok tok_w tok_adm tok_u tok_x tok_v exp sub

	# --- no token, another scheme, garbage --------------------------------
	auth_get "$prot/file.txt" ""
	assert_challenge 401 '^Bearer realm="fastauth"$' "$l: no token"
	auth_get "$prot/app/echo.cgi" ""
	assert_challenge 401 '^Bearer realm="fastauth"$' "$l: no token, CGI"
	http GET "$prot/file.txt" -u "app-a:$SECRET_A"
	assert_challenge 401 '^Bearer realm="fastauth"$' "$l: Basic credentials instead of a token"
	auth_get "$prot/file.txt" "fa1.AAAAAQAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"
	assert_challenge 401 'error="invalid_token"' "$l: forged token"
	http GET "$prot/file.txt" -H "Authorization: Bearer two words"
	assert_challenge 401 'error="invalid_token"' "$l: malformed Bearer header"

	# --- a valid client token ----------------------------------------------
	tok=$(get_token "$auth" app-a "$SECRET_A" "scope=read") || die "$l: no token"
	auth_get "$prot/file.txt" "$tok"
	assert_status 200 "$l: static file with a valid token -> 200"
	assert_eq "$HTTP_BODY" "protected file" "$l: the static file is served"
	if grep -qi '^Variable-' "$HTTP_HEADERS"; then
		fa_fail_http "$l: the grant's Variable-* headers do not reach the client"
	else
		pass "$l: the grant's Variable-* headers do not reach the client"
	fi
	exp=$(introspected_exp "$auth" "$tok")
	auth_get "$prot/app/echo.cgi" "$tok"
	assert_status 200 "$l: CGI with a valid token -> 200"
	assert_body_has "FASTAUTH_SUB=app-a" "$l: CGI sees FASTAUTH_SUB = the client (client_credentials)"
	assert_body_has "FASTAUTH_CLIENT_ID=app-a" "$l: CGI sees FASTAUTH_CLIENT_ID"
	assert_body_has "FASTAUTH_SCOPE=read" "$l: CGI sees FASTAUTH_SCOPE"
	assert_body_has "FASTAUTH_EXP=$exp" "$l: CGI sees FASTAUTH_EXP = the token's exp"

	# --- spoofing: headers cannot set the variables or the required scope ----
	auth_get "$prot/app/echo.cgi" "$tok" -H "FASTAUTH-SUB: mallory" \
	    -H "FASTAUTH_SUB: mallory" -H "Variable-FASTAUTH_SUB: mallory" \
	    -H "FASTAUTH-CLIENT-ID: mallory" -H "FASTAUTH-SCOPE: mallory admin" \
	    -H "FASTAUTH-REQUIRED-SCOPE: mallory"
	assert_status 200 "$l: CGI with a valid token and spoofing headers -> 200"
	assert_body_has "FASTAUTH_SUB=app-a" "$l: spoofing headers leave FASTAUTH_SUB alone"
	assert_body_has "FASTAUTH_SCOPE=read" "$l: spoofing headers leave FASTAUTH_SCOPE alone"
	if printf '%s\n' "$HTTP_BODY" | grep -q '^SPOOF:'; then
		fa_fail_http "$l: no non-HTTP_ variable carries a client's header value"
	else
		pass "$l: no non-HTTP_ variable carries a client's header value"
	fi
	auth_get "$prot/admin/file.txt" "$tok" -H "FASTAUTH-REQUIRED-SCOPE: read" \
	    -H "FASTAUTH_REQUIRED_SCOPE: read"
	assert_challenge 403 'error="insufficient_scope"' \
	    "$l: a header cannot lower the required scope"

	# --- scopes ------------------------------------------------------------
	auth_get "$prot/admin/file.txt" "$tok"
	assert_challenge 403 'error="insufficient_scope".*scope="read admin"' \
	    "$l: read token on the admin location"
	tok_adm=$(get_token "$auth" app-adm "$SECRET_ADM") || die "$l: no admin token"
	auth_get "$prot/admin/file.txt" "$tok_adm"
	assert_status 200 "$l: read admin token on the admin location -> 200"
	assert_eq "$HTTP_BODY" "admin file" "$l: the admin file is served"
	tok_w=$(get_token "$auth" app-a "$SECRET_A" "scope=write") || die "$l: no write token"
	auth_get "$prot/file.txt" "$tok_w"
	assert_challenge 403 'error="insufficient_scope".*scope="read"' \
	    "$l: a token without read on /protected/"

	# --- a user's token: FASTAUTH_SUB is the user --------------------------
	post_form "$auth/oauth2/token" \
	    "grant_type=password&username=alice&password=$ALICE_PW&scope=read" -u "web:$SECRET_WEB"
	assert_status 200 "$l: password grant for alice"
	tok_u=$(json_field access_token)
	introspect "$auth" "$tok_u"
	sub=$(json_field sub || echo none)
	auth_get "$prot/app/echo.cgi" "$tok_u"
	assert_status 200 "$l: CGI with alice's token -> 200"
	assert_body_has "FASTAUTH_SUB=$sub" "$l: FASTAUTH_SUB is alice's subject"
	assert_body_has "FASTAUTH_CLIENT_ID=web" "$l: FASTAUTH_CLIENT_ID is web"
	ctl user revoke-tokens alice >/dev/null 2>"$T/ctl.err" ||
	    fail "$l: fastauthctl user revoke-tokens alice" "$(cat "$T/ctl.err")"
	if wait_until 5 denied_401 "$prot/app/echo.cgi" "$tok_u"; then
		pass "$l: alice's token is refused once her tokens are revoked"
	else
		fa_fail_http "$l: alice's token is refused once her tokens are revoked"
	fi

	# --- expired ------------------------------------------------------------
	tok_x=$(get_token "$short" app-a "$SECRET_A" "scope=read") || die "$l: no short token"
	sleep $((FA_SHORT_TTL + 1))
	auth_get "$prot/file.txt" "$tok_x"
	assert_challenge 401 'error="invalid_token"' "$l: expired token"

	# --- revoked -------------------------------------------------------------
	tok_v=$(get_token "$auth" app-a "$SECRET_A" "scope=read") || die "$l: no token"
	auth_get "$prot/file.txt" "$tok_v"
	assert_status 200 "$l: token to revoke, before -> 200"
	post_form "$auth/oauth2/revoke" "token=$tok_v" -u "app-a:$SECRET_A"
	assert_status 200 "$l: revoke it"
	auth_get "$prot/file.txt" "$tok_v"
	assert_challenge 401 'error="invalid_token"' "$l: revoked token, at once"
	auth_get "$prot/app/echo.cgi" "$tok_v"
	assert_challenge 401 'error="invalid_token"' "$l: revoked token, CGI"
}

# denied_401 URL TOKEN: the request is refused with 401.
denied_401() {
	auth_get "$1" "$2"
	[ "$HTTP_STATUS" = 401 ]
}

# Revocation lookups in Redis, seen through MONITOR: the check asks Redis
# "EXISTS <prefix>revoked:<jti>" (pipelined with the subject's not-before)
# only when the mirror cannot vouch for the token. (Redis's EXISTS count
# alone would not do: key maintenance runs EXISTS inside a Lua script.)
#
# monitor_start: record every command Redis runs in $T/monitor.log.
monitor_start() {
	: > "$T/monitor.log"
	"$REDIS_CLI" -h 127.0.0.1 -p "$REDIS_PORT" monitor >> "$T/monitor.log" 2>&1 3>&- &
	MONITOR_PID=$!
	fa_register "$MONITOR_PID" "redis-cli monitor" "$T/monitor.log"
	wait_until 5 grep -q '^OK' "$T/monitor.log" || die "redis-cli monitor did not start"
}

# monitor_mark: put a marker through Redis and wait until MONITOR wrote it,
# so that every command before it is in the log; prints the marker's line
# number. (Called in $(...): the marker is unique without a counter.)
monitor_mark() {
	local m
	m=fa-mark-$(date +%s%N)-$RANDOM
	"$REDIS_CLI" -h 127.0.0.1 -p "$REDIS_PORT" echo "$m" >/dev/null
	wait_until 10 grep -q "\"$m\"" "$T/monitor.log" || die "MONITOR did not show $m"
	grep -n "\"$m\"" "$T/monitor.log" | head -n 1 | cut -d: -f1
}

# revocation_lookups FROM TO: revocation lookups between two marker lines.
revocation_lookups() {
	sed -n "$1,$2p" "$T/monitor.log" | grep -c '"EXISTS" "[^"]*revoked:' || true
}

monitor_stop() {
	stop_pid "$MONITOR_PID" 5 || true
}
