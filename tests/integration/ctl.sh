#!/bin/bash
# ctl.sh -- fastauthctl: key init (mode 0600, never overwrites), key
# rotate/list, client add/list/show/remove/rotate-secret, and its errors;
# secret rotation and client removal checked over HTTP through a lighttpd
# spawning fastauth (lighttpd/fastauth-spawn.conf).
[ -n "${BASH_VERSION:-}" ] || exec bash "$0" "$@"
. "$(dirname "$0")/lib.sh"

require "$REDIS_SERVER" "$REDIS_CLI" "$LIGHTTPD" curl python3
require_fastauth

start_redis
HTTP_PORT=$(free_port)
BASE=http://127.0.0.1:$HTTP_PORT/auth
write_fastauth_conf "$FA_CONF" "$BASE"

# run_ctl ARGS...: fastauthctl; sets CTL_RC, CTL_OUT, CTL_ERR.
run_ctl() {
	CTL_RC=0
	ctl "$@" >"$T/ctl.out" 2>"$T/ctl.err" || CTL_RC=$?
	CTL_OUT=$(cat "$T/ctl.out")
	CTL_ERR=$(cat "$T/ctl.err")
}

# expect_error DESCRIPTION ARGS...: exit 1, a message on stderr.
expect_error() {
	local desc=$1
	shift
	run_ctl "$@"
	if [ "$CTL_RC" = 1 ] && [ -n "$CTL_ERR" ]; then
		pass "$desc: exit 1 ($(printf '%s\n' "$CTL_ERR" | head -n 1))"
	else
		fail "$desc: fastauthctl $* exits 1 with a message on stderr" \
		    "exit $CTL_RC" "stdout: $CTL_OUT" "stderr: $CTL_ERR"
	fi
}

# expect_ok DESCRIPTION ARGS...: exit 0.
expect_ok() {
	local desc=$1
	shift
	run_ctl "$@"
	if [ "$CTL_RC" = 0 ]; then
		pass "$desc"
	else
		fail "$desc: fastauthctl $* exits 0" "exit $CTL_RC" "stdout: $CTL_OUT" "stderr: $CTL_ERR"
	fi
}

# one_line_secret DESCRIPTION: the last command printed one line, one word.
one_line_secret() {
	if [ "$CTL_RC" = 0 ] && [ "$(printf '%s\n' "$CTL_OUT" | wc -l)" = 1 ] &&
	    [ -n "$CTL_OUT" ] && ! grep -q '[[:space:]]' <<< "$CTL_OUT" &&
	    [ "${#CTL_OUT}" -ge 20 ]; then
		pass "$1: prints the secret alone on one line (${#CTL_OUT} characters)"
	else
		fail "$1: prints one secret on one line (>= 20 characters)" \
		    "exit $CTL_RC" "stdout: $CTL_OUT" "stderr: $CTL_ERR"
	fi
}

# --- keys --------------------------------------------------------------------
umask 022	# key init must not depend on the caller's umask
expect_ok "key init" key init
if [ -f "$T/kek" ]; then
	assert_eq "$(stat -c %a "$T/kek")" 600 "key init creates the KEK with mode 0600 (umask 022)"
else
	fail "key init creates $T/kek"
fi
sum=$(sha256sum "$T/kek" 2>/dev/null || true)
expect_error "key init again refuses to overwrite" key init
assert_eq "$(sha256sum "$T/kek" 2>/dev/null || true)" "$sum" "the KEK is unchanged after the refused key init"

chmod 0644 "$T/kek"
expect_error "a KEK readable by others is refused" key list
chmod 0600 "$T/kek"

expect_ok "key rotate (first key)" key rotate
kid1=$(printf '%s\n' "$CTL_OUT" | grep -Eo '[0-9]+' | tail -n 1 || true)
assert_match "$kid1" '^[0-9]+$' "key rotate prints the key id ($CTL_OUT)"
expect_ok "key rotate (second key)" key rotate
kid2=$(printf '%s\n' "$CTL_OUT" | grep -Eo '[0-9]+' | tail -n 1 || true)
if [ -n "$kid1" ] && [ -n "$kid2" ] && [ "$kid2" -gt "$kid1" ]; then
	pass "a second rotation gives a newer key id ($kid1 -> $kid2)"
else
	fail "a second rotation gives a newer key id" "first: $kid1, second: $kid2"
fi
expect_ok "key list" key list
if grep -qw "$kid1" <<< "$CTL_OUT" && grep -qw "$kid2" <<< "$CTL_OUT"; then
	pass "key list shows keys $kid1 and $kid2"
else
	fail "key list shows keys $kid1 and $kid2" "$CTL_OUT"
fi

# --- clients -------------------------------------------------------------------
run_ctl client add --id c1 --scope "read write" --grant client_credentials --name "Client One"
one_line_secret "client add c1"
S1=$CTL_OUT
run_ctl client add --id c2 --scope read
one_line_secret "client add c2 (default grant)"
S2=$CTL_OUT
run_ctl client add --id c3 --scope read --introspect
one_line_secret "client add c3 --introspect"
S3=$CTL_OUT
if [ "$S1" != "$S2" ] && [ "$S2" != "$S3" ]; then
	pass "every client gets its own secret"
else
	fail "every client gets its own secret" "$S1 $S2 $S3"
fi

expect_error "client add with an id that exists" client add --id c1 --scope read
expect_error "client add without --id" client add --scope read
expect_error "client add --grant no_such_grant" client add --id c9 --grant no_such_grant
expect_error "client add with an unknown option" client add --id c9 --no-such-option
run_ctl client show c9
if [ "$CTL_RC" = 1 ]; then
	pass "no client c9 was created by the failed commands"
else
	fail "the failed client add commands created no client c9" "$CTL_OUT"
fi

expect_ok "client list" client list
for c in c1 c2 c3; do
	if grep -qw "$c" <<< "$CTL_OUT"; then
		pass "client list shows $c"
	else
		fail "client list shows $c" "$CTL_OUT"
	fi
done
if grep -qF -e "$S1" -e "$S2" -e "$S3" <<< "$CTL_OUT"; then
	fail "client list must not print secrets" "$CTL_OUT"
else
	pass "client list prints no secret"
fi

expect_ok "client show c1" client show c1
for w in c1 read write client_credentials "Client One"; do
	if grep -qF "$w" <<< "$CTL_OUT"; then
		pass "client show c1 shows $w"
	else
		fail "client show c1 shows $w" "$CTL_OUT"
	fi
done
if grep -qF "$S1" <<< "$CTL_OUT"; then
	fail "client show must not print the secret" "$CTL_OUT"
else
	pass "client show prints no secret"
fi
expect_error "client show of an unknown client" client show no-such-client
expect_error "client remove of an unknown client" client remove no-such-client
expect_error "client rotate-secret of an unknown client" client rotate-secret no-such-client
expect_error "client show without an id" client show
expect_error "an unknown command" frobnicate
expect_error "an unknown client subcommand" client frobnicate

# --- over HTTP: secrets and removal take effect --------------------------------
mkdir -p "$T/run"
install_conf "$top_srcdir/lighttpd/fastauth-spawn.conf" "$T/fastauth-spawn.conf" \
    "/usr/sbin/fastauth -c /etc/fastauth/fastauth.conf" "$FASTAUTH -c $FA_CONF" \
    "/run/lighttpd/fastauth.sock" "$T/run/fastauth.sock"
make_lighttpd_conf "$T/lighttpd.conf" "$HTTP_PORT" "$T/fastauth-spawn.conf"
start_lighttpd "$T/lighttpd.conf" "$HTTP_PORT"
wait_ready "$BASE"

# Several tries, so that both spawned processes (and their caches) are seen.
all_status() {	# EXPECTED CLIENT SECRET: 6 requests in a row answer EXPECTED
	local _
	for _ in 1 2 3 4 5 6; do
		post_form "$BASE/oauth2/token" grant_type=client_credentials -u "$2:$3"
		[ "$HTTP_STATUS" = "$1" ] || return 1
	done
}
if all_status 200 c1 "$S1"; then pass "c1's secret works"; else fa_fail_http "c1's secret works"; fi
if all_status 200 c2 "$S2"; then pass "c2's secret works"; else fa_fail_http "c2's secret works"; fi
post_form "$BASE/oauth2/token" "grant_type=client_credentials&scope=read%20write" -u "c1:$S1"
assert_json_field scope "read write" "c1 gets the scopes given to client add"

run_ctl client rotate-secret c1
one_line_secret "client rotate-secret c1"
S1new=$CTL_OUT
if [ "$S1new" != "$S1" ]; then pass "rotate-secret gives a new secret"; else fail "rotate-secret gives a new secret"; fi

if all_status 200 c1 "$S1new"; then
	pass "c1's new secret works at once"
else
	fa_fail_http "c1's new secret works right after rotate-secret"
fi
start=$SECONDS
if wait_until 5 all_status 401 c1 "$S1"; then
	if [ $((SECONDS - start)) -le 1 ]; then
		pass "c1's old secret is refused (401) at once"
	else
		pass "c1's old secret is refused (401) after $((SECONDS - start)) s"
	fi
	assert_error 401 invalid_client "old secret after rotate-secret -> 401 invalid_client"
else
	fa_fail_http "c1's old secret is refused (401) within 5 s of rotate-secret"
fi

expect_ok "client remove c2" client remove c2
expect_error "client show of the removed c2" client show c2
if wait_until 5 all_status 401 c2 "$S2"; then
	pass "removed client c2 is refused (401)"
else
	fa_fail_http "removed client c2 is refused (401) within 5 s"
fi
expect_ok "client list after remove" client list
if grep -qw c2 <<< "$CTL_OUT"; then
	fail "client list no longer shows c2" "$CTL_OUT"
else
	pass "client list no longer shows c2"
fi

# The introspection permission from client add --introspect.
tok=$(get_token "$BASE" c1 "$S1new")
post_form "$BASE/oauth2/introspect" "token=$tok" -u "c3:$S3"
assert_json_field active true "c3 (--introspect) may introspect"
post_form "$BASE/oauth2/introspect" "token=$tok" -u "c1:$S1new"
assert_error 403 unauthorized_client "c1 (no --introspect) may not introspect"

# A key added by fastauthctl while fastauth runs is picked up.
expect_ok "key rotate while fastauth runs" key rotate
kid3=$(printf '%s\n' "$CTL_OUT" | grep -Eo '[0-9]+' | tail -n 1 || true)
uses_kid3() {
	local t _
	for _ in 1 2 3 4; do
		t=$(get_token "$BASE" c1 "$S1new") || return 1
		[ "$(token_kid "$t")" = "$kid3" ] || return 1
	done
}
if wait_until 10 uses_kid3; then
	pass "running fastauth seals with the key added by fastauthctl ($kid3) within 10 s"
else
	fail "running fastauth seals with key $kid3 within 10 s"
fi

# --- no configuration, no Redis ----------------------------------------------------
rc=0
"$FASTAUTHCTL" -c "$T/no-such.conf" client list >"$T/o" 2>"$T/e" || rc=$?
if [ "$rc" = 1 ] && [ -s "$T/e" ]; then
	pass "a missing configuration file: exit 1 ($(head -n 1 "$T/e"))"
else
	fail "a missing configuration file: exit 1 with a message" "exit $rc" "$(cat "$T/e")"
fi
stop_redis
rc=0
timeout 30 "$FASTAUTHCTL" -c "$FA_CONF" client list >"$T/o" 2>"$T/e" || rc=$?
if [ "$rc" = 1 ] && [ -s "$T/e" ]; then
	pass "Redis down: client list exits 1 ($(head -n 1 "$T/e"))"
else
	fail "Redis down: client list exits 1 with a message" "exit $rc" "$(cat "$T/e")"
fi
