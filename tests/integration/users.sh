#!/bin/bash
# users.sh -- users end to end, behind a private lighttpd spawning fastauth
# (lighttpd/fastauth-spawn.conf, max-procs 2): fastauthctl user commands;
# the password grant and its refusals (unknown user, wrong password, locked,
# throttled, too long, grant not enabled), all alike; the brute-force lock
# and unlock, the administrative lock, the progressive delay, the per-address
# lock; userinfo filtered by scope and its RFC 6750 errors; refresh-token
# rotation, reuse detection (the family dies), the grace period, scope
# narrowing; revocation of refresh tokens, user revoke-tokens, user passwd,
# user remove; the re-hash on login; claims encrypted at rest and bound to
# their user; the audit log (valid JSON, no secrets); discovery.
#
# A second lighttpd with its own fastauth instance (its own shared memory
# and L1 cache: another host, sharing only Redis) runs a configuration with
# refresh_token_grace 5, a 2 s access-token lifetime, a 1.5 s progressive
# delay and a per-address limit, for the parts that need them; revocations
# made through the first host are checked on it too.
[ -n "${BASH_VERSION:-}" ] || exec bash "$0" "$@"
. "$(dirname "$0")/lib.sh"

require "$REDIS_SERVER" "$REDIS_CLI" "$LIGHTTPD" curl python3
require_fastauth

# The second host's shared-memory segment is ours to remove too (lib.sh
# removes $FA_INSTANCE's), after the servers have stopped.
FA_INSTANCE2=$(printf '%s' "$FA_INSTANCE" | cut -c1-29)-h2
fa_rc=0
trap 'fa_rc=$?; trap - ERR; fa_stop_all; rm -f "/dev/shm/fastauth.$FA_INSTANCE2"; (exit $fa_rc); fa_on_exit' EXIT

start_redis
HTTP_PORT=$(free_port)
BASE=http://127.0.0.1:$HTTP_PORT/auth
TOKEN_URL=$BASE/oauth2/token
UI_URL=$BASE/oauth2/userinfo
AUDIT=$T/audit.log
PFX="fat:$$:"		# write_fastauth_conf's redis_prefix
MAXPW=64
write_fastauth_conf "$FA_CONF" "$BASE" \
    "argon2_memory_kib 1024" "argon2_iterations 1" "argon2_parallelism 1" \
    "password_max_length $MAXPW" \
    "login_max_failures 3" "login_failure_window 300" "login_lock_seconds 60" \
    "login_delay_base_ms 0" "login_delay_max_ms 0" \
    "login_max_failures_per_address 1000" "ratelimit_login off" \
    "refresh_token_grace 0" \
    "audit_log $AUDIT"

rcli() {
	"$REDIS_CLI" -h 127.0.0.1 -p "$REDIS_PORT" "$@"
}

# enc TEXT: application/x-www-form-urlencoded form of TEXT (bytes other
# than unreserved ones as %XX).  In bash: it runs for every request.
enc() {
	local LC_ALL=C s=$1 out="" c h i
	for ((i = 0; i < ${#s}; i++)); do
		c=${s:i:1}
		case $c in
		[A-Za-z0-9._~-]) out+=$c ;;
		*)	printf -v h '%%%02X' "'$c"
			out+=$h ;;
		esac
	done
	printf '%s\n' "$out"
}

# jstr FIELD: a string field of the last JSON body, "" when absent (for the
# tokens, whose characters need no JSON escaping; no python per request).
jstr() {
	local re="\"$1\":\"([^\"\\\\]*)\""
	if [[ $HTTP_BODY =~ $re ]]; then
		printf '%s\n' "${BASH_REMATCH[1]}"
	fi
}

# Everything secret the test handles: none of it may reach the audit log.
SECRETS=()

# login CLIENT SECRET USERNAME PASSWORD [SCOPE] [URL]: the password grant.
login() {
	local body
	body="grant_type=password&username=$(enc "$3")&password=$(enc "$4")"
	if [ -n "${5:-}" ]; then
		body="$body&scope=$(enc "$5")"
	fi
	post_form "${6:-$TOKEN_URL}" "$body" -u "$1:$2"
	if [ "$HTTP_STATUS" = 200 ]; then
		SECRETS+=("$(jstr access_token)" "$(jstr refresh_token)")
	fi
}

# login_ok DESCRIPTION CLIENT SECRET USERNAME PASSWORD [SCOPE] [URL]: a
# successful login; sets AT and RT (RT empty when none was issued).
login_ok() {
	local desc=$1
	shift
	login "$@"
	AT=""
	RT=""
	if [ "$HTTP_STATUS" = 200 ]; then
		AT=$(jstr access_token)
		RT=$(jstr refresh_token)
		pass "$desc"
	else
		fa_fail_http "$desc" "expected 200 with tokens"
	fi
}

# refresh CLIENT SECRET REFRESH_TOKEN [SCOPE] [URL]
refresh() {
	local body
	body="grant_type=refresh_token&refresh_token=$(enc "$3")"
	if [ -n "${4:-}" ]; then
		body="$body&scope=$(enc "$4")"
	fi
	post_form "${5:-$TOKEN_URL}" "$body" -u "$1:$2"
	if [ "$HTTP_STATUS" = 200 ]; then
		SECRETS+=("$(jstr access_token)" "$(jstr refresh_token)")
	fi
}

# userinfo TOKEN [URL]: GET with the bearer header.
userinfo() {
	http GET "${2:-$UI_URL}" -H "Authorization: Bearer $1"
}

# The answer to a refused login, recorded once from a plain wrong password:
# status, body and the headers but Date must be identical for every refusal.
BAD_LOGIN=""
login_answer() {
	printf '%s\n%s\n' "$HTTP_STATUS" "$HTTP_BODY"
	tr -d '\r' < "$HTTP_HEADERS" | grep -viE '^(date):' | sort
}
assert_bad_login() {
	local got
	got=$(login_answer)
	if [ -z "$BAD_LOGIN" ]; then
		fail "$1: no reference wrong-password answer recorded"
	elif [ "$got" = "$BAD_LOGIN" ]; then
		pass "$1: the same answer as a wrong password (400 invalid_grant)"
	else
		fa_fail_http "$1: the same answer as a wrong password" \
		    "expected: $(printf '%s' "$BAD_LOGIN" | tr '\n' '|')" \
		    "got:      $(printf '%s' "$got" | tr '\n' '|')"
	fi
}

# run_ctl ARGS...: fastauthctl; sets CTL_RC, CTL_OUT, CTL_ERR.
run_ctl() {
	CTL_RC=0
	ctl "$@" >"$T/ctl.out" 2>"$T/ctl.err" </dev/null || CTL_RC=$?
	CTL_OUT=$(cat "$T/ctl.out")
	CTL_ERR=$(cat "$T/ctl.err")
}

# ctl_ok DESCRIPTION ARGS...
ctl_ok() {
	local desc=$1
	shift
	run_ctl "$@"
	if [ "$CTL_RC" = 0 ]; then
		pass "$desc"
	else
		fail "$desc: fastauthctl $* exits 0" "exit $CTL_RC" "stdout: $CTL_OUT" "stderr: $CTL_ERR"
	fi
}

# add_user NAME PASSWORD: prints the subject id (dies otherwise).
add_user() {
	local out rc=0
	out=$(printf '%s\n' "$2" | ctl user add "$1" 2>"$T/ctl.err") || rc=$?
	[ "$rc" = 0 ] || die "fastauthctl user add $1 exited $rc" "$(cat "$T/ctl.err")"
	printf '%s\n' "$out"
}

# at_second_start: wait until just after a wall-clock second begins, so that
# what follows (a fastauthctl call and a login) happens within one second.
at_second_start() {
	python3 -c 'import time
t = time.time()
time.sleep(1.02 - (t - int(t)))'
}

# --- setup --------------------------------------------------------------------
ctl key init >/dev/null 2>"$T/ctl.err" || die "fastauthctl key init failed" "$(cat "$T/ctl.err")"
SW=$(ctl_secret client add --id web --grant password --grant refresh_token \
    --scope "openid profile email" --name "Web app")
SW2=$(ctl_secret client add --id web2 --grant password --grant refresh_token \
    --scope "openid profile email")
SP=$(ctl_secret client add --id pwonly --grant password --scope "openid profile email")
SC=$(ctl_secret client add --id svc --grant client_credentials --scope "openid profile")
SECRET_I=$(ctl_secret client add --id introspector --grant client_credentials \
    --scope "read" --introspect)
SECRETS+=("$SW" "$SW2" "$SP" "$SC" "$SECRET_I")
pass "clients web, web2, pwonly, svc, introspector created"

PW_ALICE='c0rrect horse&battery=staple%+'
PW_BOB='b0b-s3cret-passw0rd'
PW_CAROL='carol:pa55 word'
PW_DAVE='dave-pa55word'
PW_ERIN='erin-old-passw0rd'
PW_ERIN2='erin-new-passw0rd'
PW_FRANK='frank-passw0rd'
PW_GINA='gina-passw0rd'
PW_HANK='hank-passw0rd'
PW_WRONG='definitely-not-it'
SECRETS+=("$PW_ALICE" "$PW_BOB" "$PW_CAROL" "$PW_DAVE" "$PW_ERIN" "$PW_ERIN2"
    "$PW_FRANK" "$PW_GINA" "$PW_HANK" "$PW_WRONG")

ALICE_ID=$(add_user alice "$PW_ALICE")
assert_match "$ALICE_ID" '^[0-9a-f]{32}$' "user add prints the subject id (32 hex digits)"
BOB_ID=$(add_user bob "$PW_BOB")
CAROL_ID=$(add_user carol "$PW_CAROL")
DAVE_ID=$(add_user dave "$PW_DAVE")
ERIN_ID=$(add_user erin "$PW_ERIN")
FRANK_ID=$(add_user frank "$PW_FRANK")
GINA_ID=$(add_user gina "$PW_GINA")
HANK_ID=$(add_user hank "$PW_HANK")
if [ "$ALICE_ID" != "$BOB_ID" ] && [ "$BOB_ID" != "$CAROL_ID" ]; then
	pass "every user gets its own subject id"
else
	fail "distinct subject ids" "alice $ALICE_ID bob $BOB_ID carol $CAROL_ID"
fi
: "$DAVE_ID $ERIN_ID $FRANK_ID $GINA_ID $HANK_ID"

run_ctl user add alice
if [ "$CTL_RC" != 0 ]; then
	pass "user add of an existing name fails (exit $CTL_RC)"
else
	fail "user add of an existing name fails" "stdout: $CTL_OUT"
fi
out=$( (head -c $((MAXPW + 1)) /dev/zero | tr '\0' p; echo) | ctl user add toolong 2>&1) && rc=0 || rc=$?
if [ "$rc" != 0 ]; then
	pass "user add with a password over password_max_length fails"
else
	fail "user add with a $((MAXPW + 1))-byte password fails" "$out"
fi

ctl_ok "set-claims alice (KEY=VALUE)" user set-claims alice "name=Alice Liddell" \
    given_name=Alice family_name=Liddell email=alice@example.org email_verified=true \
    department=wonderland
ctl_ok "set-claims bob (--json)" user set-claims bob --json \
    '{"name":"Bob Builder","email":"bob@example.net","email_verified":false,"team":"blue"}'
run_ctl user set-claims carol --json '{"sub":"someone-else"}'
if [ "$CTL_RC" != 0 ]; then
	pass "set-claims refuses the reserved claim sub"
else
	fail "set-claims refuses the reserved claim sub"
fi
run_ctl user set-claims carol --json '{"email_verified":"yes"}'
if [ "$CTL_RC" != 0 ]; then
	pass "set-claims refuses a non-boolean email_verified"
else
	fail "set-claims refuses a non-boolean email_verified"
fi

ctl_ok "user list" user list
assert_eq "$(printf '%s\n' "$CTL_OUT" | tr '\n' ' ')" \
    "alice bob carol dave erin frank gina hank " "user list: every user, sorted"
ctl_ok "user show alice" user show alice
assert_match "$CTL_OUT" "subject: +$ALICE_ID" "user show: the subject id"
assert_match "$CTL_OUT" 'locked: +no' "user show: not locked"
assert_match "$CTL_OUT" '"email":"alice@example.org"' "user show: the claims, decrypted"

mkdir -p "$T/run"
install_conf "$top_srcdir/lighttpd/fastauth-spawn.conf" "$T/fastauth-spawn.conf" \
    "/usr/sbin/fastauth -c /etc/fastauth/fastauth.conf" "$FASTAUTH -c $FA_CONF" \
    "/run/lighttpd/fastauth.sock" "$T/run/fastauth.sock"
make_lighttpd_conf "$T/lighttpd.conf" "$HTTP_PORT" "$T/fastauth-spawn.conf"
start_lighttpd "$T/lighttpd.conf" "$HTTP_PORT"
wait_ready "$BASE"

# The second server ("host 2", its own instance): grace, short access
# tokens, progressive delay, a per-address limit.
HTTP_PORT2=$(free_port)
BASE2=http://127.0.0.1:$HTTP_PORT2/auth
TOKEN_URL2=$BASE2/oauth2/token
FA_CONF2=$T/fastauth-grace.conf
FA_INSTANCE=$FA_INSTANCE2 FA_TTL=2 write_fastauth_conf "$FA_CONF2" "$BASE2" \
    "argon2_memory_kib 1024" "argon2_iterations 1" "argon2_parallelism 1" \
    "password_max_length $MAXPW" \
    "login_max_failures 3" "login_failure_window 300" "login_lock_seconds 60" \
    "login_delay_base_ms 1500" "login_delay_max_ms 1500" \
    "login_max_failures_per_address 20" "ratelimit_login off" \
    "refresh_token_grace 5" \
    "audit_log $AUDIT"
mkdir -p "$T/run2"
install_conf "$top_srcdir/lighttpd/fastauth-spawn.conf" "$T/fastauth-spawn2.conf" \
    "/usr/sbin/fastauth -c /etc/fastauth/fastauth.conf" "$FASTAUTH -c $FA_CONF2" \
    "/run/lighttpd/fastauth.sock" "$T/run2/fastauth.sock"
make_lighttpd_conf "$T/lighttpd2.conf" "$HTTP_PORT2" "$T/fastauth-spawn2.conf"
start_lighttpd "$T/lighttpd2.conf" "$HTTP_PORT2"
LIGHTTPD1_PID=$(printf '%s\n' "${FA_SERVERS[@]}" | grep ':lighttpd:' | head -n 1 | cut -d: -f1)
wait_ready "$BASE2"

nproc=$(ps -o pid= --ppid "$LIGHTTPD1_PID" | wc -l)
assert_eq "$nproc" 2 "lighttpd spawned max-procs = 2 fastauth processes"

# --- discovery ------------------------------------------------------------------
http GET "$BASE/.well-known/oauth-authorization-server"
assert_status 200
assert_json_field userinfo_endpoint "$BASE/oauth2/userinfo" "discovery: userinfo_endpoint"
assert_json_field_match grant_types_supported '"password"' "discovery: grant_types_supported has password"
assert_json_field_match grant_types_supported '"refresh_token"' "discovery: grant_types_supported has refresh_token"
assert_json_field_match grant_types_supported '"client_credentials"' "discovery: grant_types_supported has client_credentials"
assert_json_field_match scopes_supported '"openid"' "discovery: scopes_supported has openid"
http GET "$BASE/.well-known/openid-configuration"
assert_status 200 "GET /.well-known/openid-configuration -> 200"
assert_header Content-Type '^application/json'
assert_json_field issuer "$BASE" "openid-configuration: issuer"
assert_json_field userinfo_endpoint "$BASE/oauth2/userinfo" "openid-configuration: userinfo_endpoint"
assert_json_field_match grant_types_supported '"refresh_token"' "openid-configuration: refresh_token grant"

# --- the password grant and userinfo by scope ------------------------------------
login "web" "$SW" alice "$PW_WRONG" openid
assert_error 400 invalid_grant "alice with a wrong password -> 400 invalid_grant"
assert_json_field error_description "invalid username or password"
BAD_LOGIN=$(login_answer)

login_ok "alice logs in (scope openid)" web "$SW" alice "$PW_ALICE" openid
assert_header Cache-Control 'no-store'
assert_json_field token_type Bearer
assert_json_field scope openid "scope openid granted"
assert_json_field_match access_token '^fa1\.' "password grant: an access token"
assert_json_field_match refresh_token '^far1\.[A-Za-z0-9_-]{43}$' "password grant: a far1. refresh token (client has the grant)"
userinfo "$AT"
assert_status 200 "userinfo with an openid token -> 200"
assert_header Cache-Control 'no-store'
assert_header Content-Type '^application/json'
assert_json_equals "{\"sub\":\"$ALICE_ID\"}" "scope openid: userinfo is exactly {sub}"
introspect "$BASE" "$AT"
assert_json_field active true "introspection of alice's access token: active"
assert_json_field sub "$ALICE_ID" "introspection: sub is alice's subject id"
assert_json_field client_id web

login_ok "alice logs in (scope openid email)" web "$SW" alice "$PW_ALICE" "openid email"
userinfo "$AT"
assert_json_equals "{\"sub\":\"$ALICE_ID\",\"email\":\"alice@example.org\",\"email_verified\":true}" \
    "scope openid email: sub, email, email_verified"

login_ok "alice logs in (scope openid profile)" web "$SW" alice "$PW_ALICE" "openid profile"
userinfo "$AT"
assert_json_equals "{\"sub\":\"$ALICE_ID\",\"name\":\"Alice Liddell\",\"given_name\":\"Alice\",\"family_name\":\"Liddell\",\"department\":\"wonderland\"}" \
    "scope openid profile: sub, the name claims and the custom claim, no email"

login_ok "alice logs in (no scope: the client's whole scope)" web "$SW" alice "$PW_ALICE"
assert_json_field scope "openid profile email" "no scope asked: the client's scope"
userinfo "$AT"
assert_json_equals "{\"sub\":\"$ALICE_ID\",\"name\":\"Alice Liddell\",\"given_name\":\"Alice\",\"family_name\":\"Liddell\",\"email\":\"alice@example.org\",\"email_verified\":true,\"department\":\"wonderland\"}" \
    "scope openid profile email: every claim"
AT_ALICE_FULL=$AT

login_ok "bob logs in (scope openid profile email)" web "$SW" bob "$PW_BOB" "openid profile email"
AT_BOB=$AT
userinfo "$AT_BOB"
assert_json_equals "{\"sub\":\"$BOB_ID\",\"name\":\"Bob Builder\",\"email\":\"bob@example.net\",\"email_verified\":false,\"team\":\"blue\"}" \
    "bob's userinfo: his own claims (email_verified false)"

login_ok "alice logs in (scope profile, no openid)" web "$SW" alice "$PW_ALICE" profile
userinfo "$AT"
assert_error 403 insufficient_scope "userinfo without openid -> 403 insufficient_scope"
assert_header WWW-Authenticate '^Bearer .*error="insufficient_scope"'

login "web" "$SW" alice "$PW_ALICE" "openid admin"
assert_error 400 invalid_scope "password grant asking for a scope the client lacks -> 400 invalid_scope"

# --- userinfo errors (RFC 6750) --------------------------------------------------
http GET "$UI_URL"
assert_status 401 "userinfo without a token -> 401"
assert_header WWW-Authenticate '^Bearer realm="[^"]+"'
if v=$(header_value WWW-Authenticate) && printf '%s' "$v" | grep -q 'error='; then
	fail "userinfo without a token: no error code in the challenge (RFC 6750 3.1)" "got: $v"
else
	pass "userinfo without a token: no error code in the challenge (RFC 6750 3.1)"
fi
http GET "$UI_URL" -H 'Authorization: Bearer not-a-token'
assert_status 401 "userinfo with a garbage token -> 401"
assert_header WWW-Authenticate '^Bearer .*error="invalid_token"'
tampered=$(python3 - "$AT_ALICE_FULL" <<'EOF'
import sys
t = sys.argv[1]
i = len(t) // 2
print(t[:i] + ('B' if t[i] == 'A' else 'A') + t[i + 1:])
EOF
)
userinfo "$tampered"
assert_status 401 "userinfo with a tampered token -> 401"
assert_header WWW-Authenticate 'error="invalid_token"'
http GET "$UI_URL" -H "Authorization: bearer $AT_ALICE_FULL"
assert_status 200 "userinfo with the scheme in lower case (bearer) -> 200"
http GET "$UI_URL" -u "web:$SW"
assert_status 401 "userinfo with Basic credentials -> 401"
assert_header WWW-Authenticate '^Bearer'
http GET "$UI_URL?access_token=$AT_ALICE_FULL"
assert_status 401 "userinfo with the token in the query string (RFC 6750 2.3, not supported) -> 401"
CC_TOK=$(get_token "$BASE" svc "$SC" "scope=openid") || CC_TOK=x
userinfo "$CC_TOK"
assert_status 401 "userinfo with a client_credentials token (no user) -> 401"
assert_header WWW-Authenticate 'error="invalid_token"'
post_form "$UI_URL" "access_token=$(enc "$AT_ALICE_FULL")"
assert_status 200 "POST userinfo with the access_token form field -> 200"
assert_json_field sub "$ALICE_ID" "POST userinfo: alice's sub"
post_form "$UI_URL" "access_token=$(enc "$AT_ALICE_FULL")" -H "Authorization: Bearer $AT_ALICE_FULL"
assert_error 400 invalid_request "userinfo with the token in the header and the body -> 400 invalid_request"
http POST "$UI_URL" -H "Authorization: Bearer $AT_ALICE_FULL" -H 'Content-Length: 0'
assert_status 200 "POST userinfo with the bearer header and an empty body -> 200"
http PUT "$UI_URL" -H "Authorization: Bearer $AT_ALICE_FULL"
assert_status 405 "PUT userinfo -> 405"

login_ok "alice logs in for revocation" web "$SW" alice "$PW_ALICE" openid
# Host 2 looks at the token first (its cache now says "not revoked").
introspect "$BASE2" "$AT"
assert_json_field active true "host 2: alice's access token introspects active"
userinfo "$AT" "$BASE2/oauth2/userinfo"
assert_status 200 "host 2: userinfo with alice's access token -> 200"
post_form "$BASE/oauth2/revoke" "token=$(enc "$AT")" -u "web:$SW"
assert_status 200 "revoke alice's access token -> 200"
userinfo "$AT"
assert_status 401 "userinfo with a revoked access token -> 401"
assert_header WWW-Authenticate 'error="invalid_token"'
introspect "$BASE2" "$AT"
assert_json_equals '{"active":false}' "host 2: the token revoked through host 1 introspects inactive at once"
userinfo "$AT" "$BASE2/oauth2/userinfo"
assert_status 401 "host 2: userinfo with the token revoked through host 1 -> 401"

# --- refresh: rotation and reuse ------------------------------------------------
login_ok "alice logs in (refresh flow)" web "$SW" alice "$PW_ALICE" "openid profile email"
RT1=$RT
refresh web "$SW" "$RT1"
assert_status 200 "refresh -> 200"
assert_header Cache-Control 'no-store'
AT2=$(jstr access_token)
RT2=$(jstr refresh_token)
assert_json_field scope "openid profile email" "refresh keeps the scope"
if [ -n "$RT2" ] && [ "$RT2" != "$RT1" ]; then
	pass "refresh rotates: a new refresh token"
else
	fa_fail_http "refresh rotates: a new refresh token" "old $RT1 new $RT2"
fi
userinfo "$AT2"
assert_status 200 "userinfo with the refreshed access token -> 200"
assert_json_field sub "$ALICE_ID" "refreshed token: alice's sub"
assert_json_field email alice@example.org "refreshed token: email still released"
introspect "$BASE" "$RT2"
assert_json_field active true "introspection of the new refresh token: active"
assert_json_field token_type refresh_token "introspection: token_type refresh_token"
assert_json_field sub "$ALICE_ID" "refresh token introspection: sub"
assert_json_field client_id web "refresh token introspection: client_id"
introspect "$BASE" "$RT1"
assert_json_equals '{"active":false}' "introspection of the rotated refresh token: inactive"

refresh web2 "$SW2" "$RT2"
assert_error 400 invalid_grant "another client presents web's refresh token -> 400 invalid_grant"
refresh web "$SW" "$RT2"
assert_status 200 "web's refresh token still works after another client tried it"
RT3=$(jstr refresh_token)

audit_before=$(grep -c . "$AUDIT" 2>/dev/null || true)
refresh web "$SW" "$RT1"
assert_error 400 invalid_grant "replay of a rotated refresh token -> 400 invalid_grant"
refresh web "$SW" "$RT3"
assert_error 400 invalid_grant "after the replay, the newest refresh token of the family fails too"
introspect "$BASE" "$RT3"
assert_json_equals '{"active":false}' "after the replay, the newest refresh token introspects inactive"
sleep 0.2
if tail -n +"$((audit_before + 1))" "$AUDIT" | grep -q '"refresh_token_reuse"'; then
	pass "audit log: refresh_token_reuse"
else
	fail "audit log: refresh_token_reuse after the replay" "$(tail -n 5 "$AUDIT" 2>/dev/null)"
fi
if tail -n +"$((audit_before + 1))" "$AUDIT" | grep '"token_family_revoked"' | grep -q 'refresh_token_reuse'; then
	pass "audit log: token_family_revoked (reason refresh_token_reuse)"
else
	fail "audit log: token_family_revoked after the replay" "$(tail -n 5 "$AUDIT" 2>/dev/null)"
fi

# A successor already used: replaying the first token revokes at once.
login_ok "alice logs in (replay after two rotations)" web "$SW" alice "$PW_ALICE" openid
R1=$RT
refresh web "$SW" "$R1"
R2=$(jstr refresh_token)
refresh web "$SW" "$R2"
assert_status 200 "second rotation -> 200"
R3=$(jstr refresh_token)
refresh web "$SW" "$R2"
assert_error 400 invalid_grant "replay of the previous token -> 400 invalid_grant"
refresh web "$SW" "$R3"
assert_error 400 invalid_grant "... and the current one is dead"

# --- refresh: scope ---------------------------------------------------------------
login_ok "alice logs in (scope narrowing)" web "$SW" alice "$PW_ALICE" "openid profile email"
refresh web "$SW" "$RT" openid
assert_status 200 "refresh narrowing to openid -> 200"
assert_json_field scope openid "narrowed scope granted"
N_AT=$(jstr access_token)
N_RT=$(jstr refresh_token)
userinfo "$N_AT"
assert_json_equals "{\"sub\":\"$ALICE_ID\"}" "narrowed token: userinfo gives only sub"
refresh web "$SW" "$N_RT" "openid email"
assert_status 200 "next refresh asks for openid email (within the original grant) -> 200"
assert_json_field scope "openid email"
N_RT=$(jstr refresh_token)
refresh web "$SW" "$N_RT" "openid profile email address"
assert_error 400 invalid_scope "refresh asking for more than the grant -> 400 invalid_scope"
refresh web "$SW" "$N_RT"
assert_status 200 "the refresh token survives the refused widening"
assert_json_field scope "openid profile email" "no scope asked: the family's original scope"

login_ok "alice logs in (scope openid only)" web "$SW" alice "$PW_ALICE" openid
W_RT=$RT
refresh web "$SW" "$W_RT" "openid email"
assert_error 400 invalid_scope "refresh widening openid -> openid email -> 400 invalid_scope"
refresh web "$SW" "$W_RT" "openid%"
assert_status 400 "refresh with a malformed scope -> 400"
refresh web "$SW" "$W_RT"
assert_status 200 "the refresh token still works after the refused widening"
assert_json_field scope openid

# --- grants not enabled -------------------------------------------------------------
login svc "$SC" alice "$PW_ALICE" openid
assert_error 400 unauthorized_client "password grant for a client without it -> 400 unauthorized_client"
login_ok "pwonly (password grant, no refresh_token grant) logs alice in" pwonly "$SP" alice "$PW_ALICE" openid
assert_json_absent refresh_token "pwonly: no refresh token"
refresh pwonly "$SP" "$W_RT"
assert_error 400 unauthorized_client "refresh_token grant for a client without it -> 400 unauthorized_client"
post_form "$TOKEN_URL" "grant_type=password&username=alice" -u "web:$SW"
assert_error 400 invalid_request "password grant without a password -> 400 invalid_request"
post_form "$TOKEN_URL" "grant_type=refresh_token" -u "web:$SW"
assert_error 400 invalid_request "refresh grant without refresh_token -> 400 invalid_request"
refresh web "$SW" "far1.AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"
assert_error 400 invalid_grant "unknown refresh token -> 400 invalid_grant"
login web wrong-secret alice "$PW_ALICE" openid
assert_error 401 invalid_client "password grant with a wrong client secret -> 401 invalid_client"

# --- refusals all alike ----------------------------------------------------------------
login web "$SW" nosuchuser "$PW_WRONG" openid
assert_bad_login "unknown user"
login web "$SW" 'not a valid name!' "$PW_WRONG" openid
assert_bad_login "impossible username"
pw=$(head -c "$MAXPW" /dev/zero | tr '\0' x)
login web "$SW" bob "$pw" openid
assert_bad_login "a password of exactly password_max_length bytes (wrong)"
pw=$(head -c $((MAXPW + 1)) /dev/zero | tr '\0' x)
login web "$SW" bob "$pw" openid
assert_status 400 "a password one byte over password_max_length -> 400"
assert_json_field_match error '^invalid_request$' "too long: invalid_request"
post_form "$TOKEN_URL" "grant_type=password&username=bob&password=$(enc "$PW_BOB")%00x" -u "web:$SW"
if [ "$HTTP_STATUS" = 400 ]; then
	pass "bob's password followed by an encoded NUL and more -> 400 (not a login)"
else
	fa_fail_http "bob's password followed by an encoded NUL and more -> 400 (not a login)"
fi
post_form "$TOKEN_URL" "grant_type=password&username=bob%00x&password=$(enc "$PW_BOB")" -u "web:$SW"
if [ "$HTTP_STATUS" = 400 ]; then
	pass "username bob followed by an encoded NUL -> 400 (not a login)"
else
	fa_fail_http "username bob followed by an encoded NUL -> 400 (not a login)"
fi
login web "$SW" Bob "$PW_BOB" openid
assert_bad_login "usernames are case-sensitive: Bob is unknown"
# A username made to forge an audit line: it must stay inside its JSON string.
login web "$SW" $'evil"}\n{"type":"account_unlocked","username":"carol' "$PW_WRONG" openid
assert_bad_login "a username with a quote and a newline"
pw=$(head -c 4000 /dev/zero | tr '\0' x)
login web "$SW" bob "$pw" openid
assert_error 400 invalid_request "a 4000-byte password -> 400 invalid_request"

# --- lock after N failures, unlock ---------------------------------------------------
for i in 1 2 3; do
	login web "$SW" carol "$PW_WRONG$i" openid
	assert_bad_login "carol, wrong password $i of 3"
done
login web "$SW" carol "$PW_CAROL" openid
assert_bad_login "carol locked: the right password is refused"
login web "$SW" carol "$PW_CAROL" openid
assert_bad_login "carol locked: the right password is refused again"
sleep 0.2
if grep '"account_locked"' "$AUDIT" | grep -q '"carol"'; then
	pass "audit log: account_locked for carol"
else
	fail "audit log: account_locked for carol" "$(tail -n 5 "$AUDIT" 2>/dev/null)"
fi
ctl_ok "fastauthctl user unlock carol" user unlock carol
ctl_ok "set-claims carol (then removed with {})" user set-claims carol email=carol@example.com
ctl_ok "set-claims carol --json {}" user set-claims carol --json '{}'
run_ctl user show carol
assert_match "$CTL_OUT" 'claims: +\{\}' "user show carol: no claims"
login_ok "carol unlocked: the right password logs in" web "$SW" carol "$PW_CAROL" openid
userinfo "$AT"
assert_json_equals "{\"sub\":\"$CAROL_ID\"}" "carol's userinfo after unlock: sub only (claims removed)"
# A success clears the username's count: two failures do not lock.
login web "$SW" carol "$PW_WRONG" openid
login web "$SW" carol "$PW_WRONG" openid
login_ok "two failures after a success: carol still logs in" web "$SW" carol "$PW_CAROL" openid

# --- administrative lock ---------------------------------------------------------------
login_ok "dave logs in" web "$SW" dave "$PW_DAVE" openid
D_AT=$AT
D_RT=$RT
ctl_ok "fastauthctl user lock dave" user lock dave
run_ctl user show dave
assert_match "$CTL_OUT" 'locked: +yes' "user show dave: locked yes"
login web "$SW" dave "$PW_DAVE" openid
assert_bad_login "dave locked by an administrator: the right password is refused"
userinfo "$D_AT"
assert_status 401 "dave locked: userinfo with his token -> 401"
userinfo "$D_AT" "$BASE2/oauth2/userinfo"
assert_status 401 "dave locked: userinfo on host 2 -> 401"
assert_header WWW-Authenticate 'error="invalid_token"'
introspect "$BASE" "$D_AT"
if [ "$(json_field active || true)" = true ]; then
	note "dave locked: his access token still introspects active (only userinfo and refresh check the lock)"
fi
introspect "$BASE" "$D_RT"
if [ "$(json_field active || true)" = true ]; then
	note "dave locked: his refresh token still introspects active (the refresh grant refuses it)"
fi
refresh web "$SW" "$D_RT"
assert_error 400 invalid_grant "dave locked: refresh -> 400 invalid_grant"
ctl_ok "fastauthctl user unlock dave" user unlock dave
run_ctl user show dave
assert_match "$CTL_OUT" 'locked: +no' "user show dave: locked no"
login_ok "dave unlocked: logs in" web "$SW" dave "$PW_DAVE" openid
userinfo "$AT"
assert_status 200 "dave unlocked: userinfo -> 200"

# --- revoking refresh tokens ---------------------------------------------------------------
login_ok "alice logs in (revoke)" web "$SW" alice "$PW_ALICE" openid
V_RT=$RT
introspect "$BASE" "$V_RT"
assert_json_field active true "refresh token introspects active"
assert_json_field token_type refresh_token
post_form "$BASE/oauth2/revoke" "token=$(enc "$V_RT")" -u "web2:$SW2"
assert_status 200 "another client revokes alice's refresh token -> 200 (and nothing happens)"
introspect "$BASE" "$V_RT"
assert_json_field active true "a refresh token stays active when another client tried to revoke it"
refresh web "$SW" "$V_RT"
assert_status 200 "refresh (after another client's revoke attempt) -> 200"
V_RT2=$(jstr refresh_token)
post_form "$BASE/oauth2/revoke" "token=$(enc "$V_RT2")&token_type_hint=access_token" -u "web:$SW"
assert_status 200 "revoke the refresh token (with a wrong token_type_hint) -> 200"
introspect "$BASE" "$V_RT2"
assert_json_equals '{"active":false}' "revoked refresh token introspects inactive"
refresh web "$SW" "$V_RT2"
assert_error 400 invalid_grant "refresh with a revoked refresh token -> 400 invalid_grant"
refresh web "$SW" "$V_RT"
assert_error 400 invalid_grant "an earlier token of the revoked family -> 400 invalid_grant"

# --- user revoke-tokens ------------------------------------------------------------------
login_ok "frank logs in (1)" web "$SW" frank "$PW_FRANK" openid
F_AT1=$AT
F_RT1=$RT
login_ok "frank logs in (2, another client)" web2 "$SW2" frank "$PW_FRANK" "openid email"
F_AT2=$AT
F_RT2=$RT
introspect "$BASE" "$F_AT1"
assert_json_field active true "frank's token active before revoke-tokens"
introspect "$BASE2" "$F_AT1"
assert_json_field active true "host 2: frank's token active before revoke-tokens"
userinfo "$F_AT2" "$BASE2/oauth2/userinfo"
assert_status 200 "host 2: userinfo with frank's token before revoke-tokens -> 200"
ctl_ok "fastauthctl user revoke-tokens frank" user revoke-tokens frank
introspect "$BASE2" "$F_AT1"
assert_json_equals '{"active":false}' "host 2: after revoke-tokens frank's access token introspects inactive at once"
userinfo "$F_AT2" "$BASE2/oauth2/userinfo"
assert_status 401 "host 2: after revoke-tokens userinfo -> 401"
for t in "$F_AT1" "$F_AT2"; do
	introspect "$BASE" "$t"
	assert_json_equals '{"active":false}' "after revoke-tokens: frank's access token introspects inactive"
	userinfo "$t"
	assert_status 401 "after revoke-tokens: userinfo -> 401"
done
refresh web "$SW" "$F_RT1"
assert_error 400 invalid_grant "after revoke-tokens: refresh (web) -> 400 invalid_grant"
refresh web2 "$SW2" "$F_RT2"
assert_error 400 invalid_grant "after revoke-tokens: refresh (web2) -> 400 invalid_grant"
introspect "$BASE" "$F_RT2"
assert_json_equals '{"active":false}' "after revoke-tokens: the refresh token introspects inactive"
userinfo "$AT_ALICE_FULL"
assert_status 200 "another user's token is untouched by frank's revoke-tokens"
sleep 1.1
login_ok "frank logs in again a second later" web "$SW" frank "$PW_FRANK" openid
userinfo "$AT"
assert_status 200 "frank's new token works"

# A login in the same wall-clock second as revoke-tokens (the not-before is
# whole seconds): the user did nothing wrong, the new tokens must work --
# checked a second later, when the clock has moved on.
at_second_start
ctl_ok "fastauthctl user revoke-tokens frank (at the start of a second)" user revoke-tokens frank
login_ok "frank logs in right after revoke-tokens" web "$SW" frank "$PW_FRANK" openid
F_AT3=$AT
F_RT3=$RT
sleep 1.1
userinfo "$F_AT3"
assert_status 200 "a login in the same second as revoke-tokens: its access token works (a second later)"
introspect "$BASE" "$F_AT3"
assert_json_field active true "a login in the same second as revoke-tokens: its access token introspects active"
introspect "$BASE" "$F_RT3"
F_RT3_ACTIVE=$(json_field active || true)
refresh web "$SW" "$F_RT3"
assert_status 200 "a login in the same second as revoke-tokens: its refresh token works (a second later)"
if [ "$HTTP_STATUS" != 200 ] && [ "$F_RT3_ACTIVE" = true ]; then
	fail "refresh token introspection agrees with the refresh grant" \
	    "introspection said active:true just before the refresh grant refused it"
fi

# --- user passwd ----------------------------------------------------------------------
login_ok "erin logs in (old password)" web "$SW" erin "$PW_ERIN" openid
E_AT=$AT
E_RT=$RT
out=$(printf '%s\n' "$PW_ERIN2" | ctl user passwd erin 2>&1) && rc=0 || rc=$?
assert_eq "$rc" 0 "fastauthctl user passwd erin (${out:-no output})"
login web "$SW" erin "$PW_ERIN" openid
assert_bad_login "erin's old password"
introspect "$BASE" "$E_AT"
assert_json_equals '{"active":false}' "after passwd: the old access token introspects inactive"
userinfo "$E_AT"
assert_status 401 "after passwd: userinfo with the old token -> 401"
refresh web "$SW" "$E_RT"
assert_error 400 invalid_grant "after passwd: the old refresh token -> 400 invalid_grant"
sleep 1.1
login_ok "erin's new password logs in" web "$SW" erin "$PW_ERIN2" openid
userinfo "$AT"
assert_status 200 "the new password's token works"
# The same second as passwd (see revoke-tokens above).
at_second_start
out=$(printf '%s\n' "$PW_ERIN" | ctl user passwd erin 2>&1) && rc=0 || rc=$?
assert_eq "$rc" 0 "fastauthctl user passwd erin back (at the start of a second)"
login_ok "erin logs in right after passwd" web "$SW" erin "$PW_ERIN" openid
sleep 1.1
userinfo "$AT"
assert_status 200 "a login in the same second as passwd: its access token works (a second later)"

# --- user remove ------------------------------------------------------------------
login_ok "gina logs in" web "$SW" gina "$PW_GINA" openid
G_AT=$AT
G_RT=$RT
ctl_ok "fastauthctl user remove gina" user remove gina
userinfo "$G_AT"
assert_status 401 "removed user: userinfo -> 401"
introspect "$BASE" "$G_AT"
assert_json_equals '{"active":false}' "removed user: access token introspects inactive"
refresh web "$SW" "$G_RT"
assert_error 400 invalid_grant "removed user: refresh -> 400 invalid_grant"
login web "$SW" gina "$PW_GINA" openid
assert_bad_login "removed user's login"
run_ctl user show gina
if [ "$CTL_RC" != 0 ]; then
	pass "user show of a removed user fails"
else
	fail "user show of a removed user fails" "$CTL_OUT"
fi
sleep 1.1	# past the not-before user remove sets (now + 1)
GINA2_ID=$(add_user gina "$PW_GINA")
if [ "$GINA2_ID" != "$GINA_ID" ]; then
	pass "gina re-created gets a new subject id"
else
	fail "gina re-created gets a new subject id" "$GINA2_ID"
fi
userinfo "$G_AT"
assert_status 401 "the removed gina's old token stays dead after a new gina is created"
refresh web "$SW" "$G_RT"
assert_error 400 invalid_grant "the removed gina's old refresh token stays dead"
login_ok "the new gina logs in" web "$SW" gina "$PW_GINA" openid
userinfo "$AT"
assert_json_equals "{\"sub\":\"$GINA2_ID\"}" "the new gina's userinfo: her new subject, no claims"

# --- re-hash on login ------------------------------------------------------------------
# A hash made with other parameters (t=2) is replaced at the next good login.
OLD_CONF=$T/fastauth-t2.conf
sed 's/^argon2_iterations 1$/argon2_iterations 2/' "$FA_CONF" > "$OLD_CONF"
printf 'ivan-passw0rd\n' | "$FASTAUTHCTL" -c "$OLD_CONF" user add ivan >/dev/null 2>"$T/ctl.err" ||
    fail "user add ivan (t=2)" "$(cat "$T/ctl.err")"
SECRETS+=(ivan-passw0rd)
# shellcheck disable=SC2016
assert_match "$(rcli HGET "${PFX}user:ivan" pw)" '^\$argon2id\$v=19\$m=1024,t=2,p=1\$' "ivan's hash made with t=2"
login_ok "ivan logs in (server at t=1)" web "$SW" ivan ivan-passw0rd openid
# shellcheck disable=SC2016
assert_match "$(rcli HGET "${PFX}user:ivan" pw)" '^\$argon2id\$v=19\$m=1024,t=1,p=1\$' "ivan's hash re-made with t=1 after the login"
login_ok "ivan logs in with the re-hashed password" web "$SW" ivan ivan-passw0rd openid

# --- claims encrypted at rest, bound to their user --------------------------------------
A_CLAIMS=$(rcli HGET "${PFX}user:alice" claims)
B_CLAIMS=$(rcli HGET "${PFX}user:bob" claims)
if [ -n "$A_CLAIMS" ] && ! printf '%s' "$A_CLAIMS" | grep -qiE 'alice@example|wonderland|Liddell'; then
	pass "Redis holds alice's claims without the plaintext (${#A_CLAIMS} characters)"
else
	fail "alice's claims are encrypted in Redis" "claims field: $A_CLAIMS"
fi
if rcli --raw HGETALL "${PFX}user:alice" | grep -qiE 'alice@example|wonderland'; then
	fail "no plaintext claim anywhere in alice's record" "$(rcli --raw HGETALL "${PFX}user:alice")"
else
	pass "no plaintext claim anywhere in alice's record"
fi
if rcli --raw KEYS "${PFX}*" | while read -r k; do
	[ "$(rcli TYPE "$k")" = string ] && rcli --raw GET "$k"
	[ "$(rcli TYPE "$k")" = hash ] && rcli --raw HGETALL "$k"
done | grep -qiE 'alice@example|bob@example'; then
	fail "no plaintext email anywhere in Redis"
else
	pass "no plaintext email anywhere in Redis"
fi

rcli HSET "${PFX}user:bob" claims "$A_CLAIMS" >/dev/null
userinfo "$AT_BOB"
if [ "$HTTP_STATUS" = 200 ] && printf '%s' "$HTTP_BODY" | grep -q 'alice'; then
	fa_fail_http "alice's claims copied into bob's record must not decrypt as bob's"
elif [ "$HTTP_STATUS" = 503 ] || [ "$HTTP_STATUS" = 500 ] || [ "$HTTP_STATUS" = 401 ]; then
	pass "alice's claims copied into bob's record: userinfo fails closed ($HTTP_STATUS $(json_field error 2>/dev/null || true))"
else
	fa_fail_http "alice's claims copied into bob's record: userinfo fails closed (503)"
fi
if printf '%s' "$HTTP_BODY" | grep -qiE 'alice|wonderland|bob@'; then
	fa_fail_http "the failed userinfo reveals no claim"
fi
run_ctl user show bob
if [ "$CTL_RC" != 0 ] && ! printf '%s%s' "$CTL_OUT" "$CTL_ERR" | grep -q 'alice@example'; then
	pass "fastauthctl user show bob fails on the swapped claims (exit $CTL_RC: $CTL_ERR)"
else
	fail "fastauthctl user show bob fails on the swapped claims" "exit $CTL_RC" "stdout: $CTL_OUT" "stderr: $CTL_ERR"
fi
login web "$SW" bob "$PW_BOB" openid
if [ "$HTTP_STATUS" != 200 ]; then
	pass "bob's login with the swapped claims does not issue a token ($HTTP_STATUS $(json_field error 2>/dev/null || true))"
else
	fa_fail_http "bob's login with the swapped claims does not issue a token"
fi
rcli HSET "${PFX}user:bob" claims "$B_CLAIMS" >/dev/null
userinfo "$AT_BOB"
assert_status 200 "bob's own claims put back: userinfo -> 200 again"
assert_json_field email bob@example.net "bob's claims back"

# The whole record of alice under bob's key (bob's uid index still points there).
rcli --raw HGETALL "${PFX}user:bob" > "$T/bob.hash"
rcli COPY "${PFX}user:alice" "${PFX}user:bob" REPLACE >/dev/null
userinfo "$AT_BOB"
if [ "$HTTP_STATUS" = 200 ]; then
	fa_fail_http "alice's whole record under bob's key: bob's token must not get alice's claims"
else
	pass "alice's whole record under bob's key: userinfo for bob's token fails ($HTTP_STATUS $(json_field error 2>/dev/null || true))"
fi
userinfo "$AT_ALICE_FULL"
assert_status 200 "alice herself is unaffected"
# Put bob's record back field by field.
mapfile -t bobf < "$T/bob.hash"
rcli DEL "${PFX}user:bob" >/dev/null
rcli HSET "${PFX}user:bob" "${bobf[@]}" >/dev/null
userinfo "$AT_BOB"
assert_status 200 "bob's record restored: userinfo -> 200"

# --- the second server: grace, expiry, progressive delay, per-address lock --------------
login_ok "alice logs in on the grace server" web "$SW" alice "$PW_ALICE" openid "$TOKEN_URL2"
G1=$RT
refresh web "$SW" "$G1" "" "$TOKEN_URL2"
assert_status 200 "grace: first refresh -> 200"
G2=$(jstr refresh_token)
refresh web "$SW" "$G1" "" "$TOKEN_URL2"
assert_status 200 "grace: the rotated token once more within refresh_token_grace -> 200"
G2b=$(jstr refresh_token)
if [ -n "$G2b" ] && [ "$G2b" != "$G2" ]; then
	pass "grace: the repeat gets its own new refresh token"
else
	fail "grace: the repeat gets its own new refresh token" "G2=$G2 G2b=$G2b"
fi
introspect "$BASE2" "$G2"
assert_json_field active true "grace: the first successor is still active after the repeat"
refresh web "$SW" "$G1" "" "$TOKEN_URL2"
assert_error 400 invalid_grant "grace: a second repeat -> 400 invalid_grant"
refresh web "$SW" "$G2" "" "$TOKEN_URL2"
assert_error 400 invalid_grant "grace: after the second repeat the family is revoked (first successor)"
refresh web "$SW" "$G2b" "" "$TOKEN_URL2"
assert_error 400 invalid_grant "grace: after the second repeat the family is revoked (second successor)"

login_ok "alice logs in on the grace server (successor used)" web "$SW" alice "$PW_ALICE" openid "$TOKEN_URL2"
H1=$RT
refresh web "$SW" "$H1" "" "$TOKEN_URL2"
H2=$(jstr refresh_token)
refresh web "$SW" "$H2" "" "$TOKEN_URL2"
assert_status 200 "grace: the successor is used"
H3=$(jstr refresh_token)
refresh web "$SW" "$H1" "" "$TOKEN_URL2"
assert_error 400 invalid_grant "grace: a repeat after the successor was used -> 400 invalid_grant"
refresh web "$SW" "$H3" "" "$TOKEN_URL2"
assert_error 400 invalid_grant "... and the family is revoked"

# Two refreshes with the same token at once (a client racing itself): with
# the grace both get a new token; without it (the main server) the rotation
# is atomic, so exactly one wins and the other is a reuse that kills the
# family.
# par_refresh URL RT: two concurrent refreshes; sets PAR_CODES ("200 400"...)
# and PAR_RTS (the refresh tokens issued).
par_refresh() {
	local i body pids=()
	body="grant_type=refresh_token&refresh_token=$(enc "$2")"
	for i in 1 2; do
		curl -sS --max-time 15 -o "$T/par.$i.body" -w '%{http_code}\n' -u "web:$SW" \
		    -H 'Content-Type: application/x-www-form-urlencoded' \
		    --data-binary "$body" "$1" > "$T/par.$i.code" 2>/dev/null 3>&- &
		pids+=($!)
	done
	wait "${pids[@]}" || true
	PAR_CODES=$(cat "$T/par.1.code" "$T/par.2.code" | sort | tr '\n' ' ')
	PAR_RTS=$(cat "$T/par.1.body" "$T/par.2.body" | grep -o 'far1\.[A-Za-z0-9_-]*' || true)
	local rts
	read -r -a rts <<< "$(printf '%s ' "$PAR_RTS")"
	SECRETS+=("${rts[@]}")
}
login_ok "alice logs in (concurrent refresh, grace)" web "$SW" alice "$PW_ALICE" openid "$TOKEN_URL2"
par_refresh "$TOKEN_URL2" "$RT"
assert_eq "$PAR_CODES" "200 200 " "grace: two concurrent refreshes with one token both succeed"
for r in $PAR_RTS; do
	refresh web "$SW" "$r" "" "$TOKEN_URL2"
	assert_status 200 "grace: each concurrent refresh's new token works"
done
login_ok "alice logs in (concurrent refresh, no grace)" web "$SW" alice "$PW_ALICE" openid
par_refresh "$TOKEN_URL" "$RT"
assert_eq "$PAR_CODES" "200 400 " "no grace: of two concurrent refreshes with one token exactly one succeeds"
for r in $PAR_RTS; do
	refresh web "$SW" "$r"
	assert_error 400 invalid_grant "no grace: the winner's token dies with the family (the loser was a reuse)"
done

# Progressive delay (1.5 s on this server): a failure, then the right
# password at once is refused, then accepted after the delay.
login web "$SW" hank "$PW_WRONG" openid "$TOKEN_URL2"
assert_bad_login "hank, wrong password"
login web "$SW" hank "$PW_HANK" openid "$TOKEN_URL2"
assert_bad_login "hank within the progressive delay: the right password is refused"
sleep 1.7
login_ok "hank after the progressive delay: logs in" web "$SW" hank "$PW_HANK" openid "$TOKEN_URL2"

# Access token lifetime 2 s on this server.
login_ok "alice logs in (2 s token)" web "$SW" alice "$PW_ALICE" openid "$TOKEN_URL2"
X_AT=$AT
userinfo "$X_AT" "$BASE2/oauth2/userinfo"
assert_status 200 "a fresh 2 s token: userinfo -> 200"
sleep 3.1
userinfo "$X_AT" "$BASE2/oauth2/userinfo"
assert_status 401 "an expired access token: userinfo -> 401"
assert_header WWW-Authenticate 'error="invalid_token"'

# Per-address limit (20 on this server; counted in Redis for both servers):
# from a clean count, 20 failures with distinct unknown names lock the
# address, and then even a good login from it is refused.
rcli DEL "${PFX}fail:a:127.0.0.1" "${PFX}lock:a:127.0.0.1" >/dev/null
for i in $(seq 1 20); do
	login web "$SW" "ghost$i" "$PW_WRONG" openid "$TOKEN_URL2"
done
assert_bad_login "the 20th failure from this address"
login web "$SW" bob "$PW_BOB" openid "$TOKEN_URL2"
assert_bad_login "address locked: bob's right password is refused"
sleep 0.2
if grep '"account_locked"' "$AUDIT" | grep -q 'address_too_many_failures'; then
	pass "audit log: account_locked, reason address_too_many_failures"
else
	fail "audit log: account_locked for the address" "$(tail -n 3 "$AUDIT")"
fi
rcli DEL "${PFX}fail:a:127.0.0.1" "${PFX}lock:a:127.0.0.1" >/dev/null

# --- the audit log --------------------------------------------------------------------
sleep 0.2
if [ -s "$AUDIT" ]; then
	pass "audit log written ($(wc -l < "$AUDIT") lines)"
else
	fail "audit log $AUDIT written"
fi
bad=$(python3 - "$AUDIT" <<'EOF'
import json, sys
for n, line in enumerate(open(sys.argv[1], 'rb'), 1):
    try:
        if not isinstance(json.loads(line.decode('utf-8')), dict):
            print(n, line[:200])
    except Exception as e:
        print(n, e, line[:200])
EOF
)
if [ -z "$bad" ]; then
	pass "every audit line is one JSON object"
else
	fail "every audit line is one JSON object" "$bad"
fi
for ev in login_failure account_locked account_unlocked refresh_token_reuse \
    token_family_revoked user_tokens_revoked password_changed; do
	if grep -q "\"$ev\"" "$AUDIT"; then
		pass "audit log has $ev events"
	else
		fail "audit log has $ev events"
	fi
done
leaks=0
for s in "${SECRETS[@]}"; do
	[ -n "$s" ] || continue
	if grep -qF -- "$s" "$AUDIT"; then
		leaks=$((leaks + 1))
		fail "audit log contains a secret" "$(printf '%.12s...' "$s")"
	fi
	# The form-encoded password too.
	e=$(enc "$s")
	if [ "$e" != "$s" ] && grep -qF -- "$e" "$AUDIT"; then
		leaks=$((leaks + 1))
		fail "audit log contains an encoded secret" "$(printf '%.12s...' "$e")"
	fi
done
if grep -qE 'far1\.|fa1\.' "$AUDIT"; then
	leaks=$((leaks + 1))
	fail "audit log contains something shaped like a token" "$(grep -E 'far1\.|fa1\.' "$AUDIT" | head -n 2)"
fi
[ "$leaks" = 0 ] && pass "no password, client secret or token (${#SECRETS[@]} checked) in the audit log"

# --- the servers are still healthy -------------------------------------------------------
for b in "$BASE" "$BASE2"; do
	http GET "$b/health"
	assert_status 200 "GET $b/health at the end -> 200"
done
nproc=$(ps -o pid= --ppid "$LIGHTTPD1_PID" | wc -l)
assert_eq "$nproc" 2 "still 2 fastauth processes at the end (none crashed)"
