#!/bin/bash
# load.sh -- fastauth-load against a real stack (redis-server, fastauth
# spawned by lighttpd through the shipped fastauth-spawn.conf, keep-alive
# on), for a few seconds each:
#  - mixed-workload with --setup (clients and users made by fastauthctl):
#    its JSON parses, every legitimate request succeeded, the figures are
#    consistent (ok + failed = requests, p50 <= p95 <= p99 <= max, every
#    operation of the mix ran); the text report too;
#  - attack-simulation credential-stuffing, token-guessing and
#    refresh-replay beside a legitimate workload: the attackers got nothing
#    (successes 0, no 200 for a wrong password, no active forged token, no
#    replayed refresh token honoured) and the legitimate users were served;
#  - bad arguments: exit 2 and a message that names the problem;
#  - a server that is not there: exit 1 and a message.
# Tests assert behaviour, never speed.  FA_LOAD_BIN overrides the program
# (a sanitizer build, say).
[ -n "${BASH_VERSION:-}" ] || exec bash "$0" "$@"
. "$(dirname "$0")/lib.sh"

FASTAUTH_LOAD=${FA_LOAD_BIN:-$top_builddir/src/load/fastauth-load}
require "$REDIS_SERVER" "$REDIS_CLI" "$LIGHTTPD" curl python3
require_fastauth
[ -x "$FASTAUTH_LOAD" ] || die "$FASTAUTH_LOAD is not built (run make)"

start_redis
HTTP_PORT=$(free_port)
BASE=http://127.0.0.1:$HTTP_PORT/auth
URL=$BASE/oauth2
# Limits that check every request but refuse none: the runs measure nothing,
# but a 429 would be a legitimate failure.  The login limit stays at its
# default: the stuffing attack must meet it.
write_fastauth_conf "$FA_CONF" "$BASE" "audit_log $T/audit.log" \
    'ratelimit_token "1000000/1s burst 1000000 by client"' \
    'ratelimit_introspect "1000000/1s burst 1000000 by client"' \
    'ratelimit_userinfo "1000000/1s burst 1000000 by address"'
sed -i 's/^log_level debug$/log_level warn/' "$FA_CONF"
ctl key init >/dev/null 2>"$T/ctl.err" || die "fastauthctl key init failed" "$(cat "$T/ctl.err")"

mkdir -p "$T/run" "$T/www"
install_conf "$top_srcdir/lighttpd/fastauth-spawn.conf" "$T/fastauth-spawn.conf" \
    "/usr/sbin/fastauth -c /etc/fastauth/fastauth.conf" "$FASTAUTH -c $FA_CONF" \
    "/run/lighttpd/fastauth.sock" "$T/run/fastauth.sock"
# lib.sh's lighttpd.conf turns keep-alive off; fastauth-load is about it.
# A small max-keep-alive-requests makes lighttpd close connections often,
# so the reconnect path runs too.
{
	echo "server.document-root = \"$T/www\""
	echo "server.bind          = \"127.0.0.1\""
	echo "server.port          = $HTTP_PORT"
	echo "server.errorlog      = \"$T/lighttpd.error.log\""
	echo "server.max-keep-alive-requests = 50"
	echo "include \"$T/fastauth-spawn.conf\""
} > "$T/lighttpd.conf"
start_lighttpd "$T/lighttpd.conf" "$HTTP_PORT"
wait_ready "$BASE"

# check_json FILE PYTHON-EXPRESSION DESCRIPTION: d is the parsed document.
check_json() {
	local out
	if out=$(python3 -c '
import json, sys
d = json.load(open(sys.argv[1]))
if not eval(sys.argv[2]):
    print(json.dumps(d)[:1500])
    sys.exit(1)
' "$1" "$2" 2>&1); then
		pass "$3"
	else
		fail "$3" "$2" "$out"
	fi
}

# run_load NAME EXPECTED-EXIT ARGS...: fastauth-load, stdout in $T/NAME.out.
run_load() {
	local name=$1 want=$2 rc=0
	shift 2
	"$FASTAUTH_LOAD" "$@" > "$T/$name.out" 2> "$T/$name.err" || rc=$?
	if [ "$rc" = "$want" ]; then
		pass "fastauth-load $name exits $want"
	else
		fail "fastauth-load $name exits $want" "got $rc" "$(tail -n 15 "$T/$name.err")"
	fi
}

# --- mixed-workload, clients and users made through fastauthctl -------------
run_load mixed 0 mixed-workload --url "$URL" --clients 8 --threads 2 --duration 3 \
    --timeout 30000 --distribution "token:30,introspect:60,userinfo:10" \
    --setup --fastauthctl "$FASTAUTHCTL" -c "$FA_CONF" --setup-users 3 --json
M=$T/mixed.out
check_json "$M" 'd["tool"] == "fastauth-load" and d["mode"] == "mixed-workload" and d["clients"] == 8' \
    "mixed: JSON names the tool, mode and clients"
check_json "$M" 'd["distribution"] == {"token": 30, "introspect": 60, "userinfo": 10}' \
    "mixed: the distribution is reported as given"
check_json "$M" 'd["legitimate"]["requests"] > 0 and d["legitimate"]["ok"] == d["legitimate"]["requests"] and d["legitimate"]["failed"] == 0 and d["legitimate"]["error_rate"] == 0' \
    "mixed: every legitimate request succeeded"
check_json "$M" 'list(d["legitimate"]["status"].keys()) == ["200"]' "mixed: only 200 answers"
check_json "$M" 'all(d["legitimate"]["operations"][o]["ok"] > 0 for o in ("token", "introspect", "userinfo"))' \
    "mixed: token, introspect and userinfo all ran and succeeded"
check_json "$M" 'sum(d["legitimate"]["operations"][o]["requests"] for o in d["legitimate"]["operations"]) == d["legitimate"]["requests"]' \
    "mixed: the operations add up to the total"
check_json "$M" '(lambda l: 0 < l["p50"] <= l["p95"] <= l["p99"] <= l["max"])(d["legitimate"]["latency_ms"])' \
    "mixed: 0 < p50 <= p95 <= p99 <= max"
check_json "$M" 'd["elapsed_s"] >= 2.5 and d["legitimate"]["requests_per_s"] > 0 and "attack" not in d' \
    "mixed: elapsed time and rate are reported, no attack section"

# The text report, and credentials from flags and a users file.
SECRET=$(ctl_secret client add --id load-app --scope "openid profile email" \
    --grant client_credentials --grant password --grant refresh_token --introspect)
ATK=$(ctl_secret client add --id load-attacker --scope "openid profile email" \
    --grant client_credentials --grant password --grant refresh_token --introspect)
: > "$T/users"
for i in 1 2 3; do
	pw="load-pw-$i-$RANDOM$RANDOM"
	printf '%s\n' "$pw" | ctl user add "loaduser$i" >/dev/null 2>"$T/ctl.err" ||
	    die "fastauthctl user add failed" "$(cat "$T/ctl.err")"
	printf 'loaduser%s:%s\n' "$i" "$pw" >> "$T/users"
done
export FA_LOAD_CLIENT_SECRET=$SECRET FA_LOAD_ATTACKER_SECRET=$ATK
creds=(--client-id load-app --attacker-client-id load-attacker --users "$T/users")

run_load text 0 mixed-workload --url "$URL" --clients 4 --duration 1 --timeout 30000 \
    --distribution "token:1,introspect:1,password:1,refresh:1" "${creds[@]}"
if grep -Eq '^legitimate: [0-9]+ requests, .*, 0 failed' "$T/text.out" &&
    grep -Eq 'latency ms: p50 [0-9.]+ +p95 [0-9.]+ +p99' "$T/text.out" &&
    grep -Eq '^  password:' "$T/text.out"; then
	pass "text report: totals, latency line, the password operation"
else
	fail "text report" "$(cat "$T/text.out")"
fi

# --- attacks beside a legitimate workload -----------------------------------
# unlock_users: the stuffing attack locks the accounts it hammers (that is
# login_max_failures doing its job); the next runs log in as them.
unlock_users() {
	local i
	for i in 1 2 3; do
		ctl user unlock "loaduser$i" >/dev/null 2>"$T/ctl.err" ||
		    fail "fastauthctl user unlock loaduser$i" "$(cat "$T/ctl.err")"
	done
}
run_load guessing 0 attack-simulation --attack-type token-guessing --url "$URL" \
    --clients 4 --attackers 4 --duration 2 --timeout 30000 "${creds[@]}" --json
check_json "$T/guessing.out" 'd["attack"]["successes"] == 0 and d["attack"]["operations"]["guess_introspect"]["requests"] > 0 and d["legitimate"]["failed"] == 0' \
    "token-guessing: no forged or altered token was active; users served"

run_load replay 0 attack-simulation --attack-type refresh-replay --url "$URL" \
    --clients 2 --attackers 2 --duration 2 --timeout 30000 "${creds[@]}" --json
check_json "$T/replay.out" 'd["attack"]["successes"] == 0 and d["attack"]["operations"]["replay_replay"]["requests"] > 0 and d["attack"]["operations"]["replay_after"]["answered_as_expected"] == d["attack"]["operations"]["replay_after"]["requests"]' \
    "refresh-replay: a replayed token was refused and revoked its family every time"

# Credential stuffing last: it spends the login budget of 127.0.0.1 (every
# attempt is charged before its Argon2 run), which the other runs' set-up
# logins from the same address would then meet.
run_load stuffing 0 attack-simulation --attack-type credential-stuffing --url "$URL" \
    --clients 4 --attackers 8 --duration 3 --timeout 30000 "${creds[@]}" --json
S=$T/stuffing.out
check_json "$S" 'd["attack"]["type"] == "credential-stuffing" and d["attackers"] == 8' \
    "stuffing: the attack section names the attack"
check_json "$S" 'd["attack"]["requests"] > 0 and d["attack"]["successes"] == 0' \
    "stuffing: attackers made requests and got no successful login"
check_json "$S" '"200" not in d["attack"]["status"] and set(d["attack"]["status"]) <= {"400", "429", "503"}' \
    "stuffing: attackers got only 400 invalid_grant, 429 or 503"
check_json "$S" 'd["legitimate"]["ok"] > 0 and d["legitimate"]["failed"] == 0' \
    "stuffing: legitimate users were served throughout"
check_json "$S" '"latency_ms" in d["legitimate"] and "latency_ms" in d["attack"] and "error_rate" in d["legitimate"]' \
    "stuffing: latency reported for both sides, error rate for the users"
unlock_users

# --- arguments ----------------------------------------------------------------
# bad NAME MESSAGE-ERE ARGS...: exit 2, the message on stderr, nothing on stdout.
bad() {
	local name=$1 ere=$2 rc=0
	shift 2
	"$FASTAUTH_LOAD" "$@" > "$T/bad.out" 2> "$T/bad.err" || rc=$?
	if [ "$rc" = 2 ] && grep -Eq -- "$ere" "$T/bad.err" && [ ! -s "$T/bad.out" ]; then
		pass "bad arguments ($name): exit 2, \"$(head -n 1 "$T/bad.err" | cut -c1-90)\""
	else
		fail "bad arguments ($name): exit 2 and a message matching $ere" \
		    "exit $rc" "stderr: $(head -n 3 "$T/bad.err")" "stdout: $(head -c 200 "$T/bad.out")"
	fi
}
ok=(--url "$URL" "${creds[@]}")
bad "no mode" 'usage'
bad "unknown mode" 'unknown mode "flood"' flood "${ok[@]}"
bad "letter in a weight" 'introspect:6O.*whole number' mixed-workload "${ok[@]}" --distribution "token:30,introspect:6O"
bad "trailing comma" 'empty item' mixed-workload "${ok[@]}" --distribution "token:30,"
bad "unknown operation" 'unknown operation' mixed-workload "${ok[@]}" --distribution "tokens:1"
bad "blank in the spec" 'blanks' mixed-workload "${ok[@]}" --distribution "token:1, introspect:1"
bad "twice" 'given twice' mixed-workload "${ok[@]}" --distribution "token:1,token:2"
bad "all zero" 'every weight is 0' mixed-workload "${ok[@]}" --distribution "token:0"
bad "clients 0" '--clients: "0"' mixed-workload "${ok[@]}" --clients 0
bad "duration not a number" '--duration: "1m"' mixed-workload "${ok[@]}" --duration 1m
bad "timeout negative" '--timeout: "-5"' mixed-workload "${ok[@]}" --timeout -5
bad "rate zero" '--rate' mixed-workload "${ok[@]}" --rate 0
bad "no attack type" 'needs --attack-type' attack-simulation "${ok[@]}"
bad "unknown attack" 'unknown "nuke"' attack-simulation "${ok[@]}" --attack-type nuke
bad "attack type in mixed" 'belong to attack-simulation' mixed-workload "${ok[@]}" --attack-type ddos
bad "https url" 'only http://' mixed-workload --url https://127.0.0.1/x "${creds[@]}"
bad "bad port" 'url port' mixed-workload --url http://127.0.0.1:99999/x "${creds[@]}"
bad "setup without -c" '--setup needs -c' mixed-workload --url "$URL" --setup
bad "no credentials" 'give --setup' mixed-workload --url "$URL" --distribution token:1
bad "missing users file" "--users: $T/nope" mixed-workload --url "$URL" --client-id x --users "$T/nope"
printf 'nocolon\n' > "$T/badusers"
bad "bad users file" 'want username:password' mixed-workload --url "$URL" --client-id x --users "$T/badusers"
bad "userinfo without users" 'need users' mixed-workload --url "$URL" --client-id x
bad "extra argument" 'unexpected argument "extra"' mixed-workload "${ok[@]}" extra

# --- nothing listening ----------------------------------------------------------
DEAD=$(free_port)
run_load dead 1 mixed-workload --url "http://127.0.0.1:$DEAD/auth/oauth2" --client-id x \
    --distribution token:1 --duration 1
assert_match "$(cat "$T/dead.err")" "connect to 127.0.0.1:$DEAD" \
    "no server: the message names the address it could not connect to"
