# lib.sh -- sourced by every integration test (bash).
#
# What it gives a test:
#  - a private temporary directory $T (mktemp -d), removed at exit (kept with
#    KEEP_TMP=1); when something failed, the logs in it are printed first;
#  - private servers on free 127.0.0.1 ports: redis-server, lighttpd, apache2,
#    a standalone fastauth; each is recorded by PID (and start time, so a
#    recycled PID is never signalled) and stopped at exit: SIGTERM, then
#    SIGKILL after a timeout, then the same for any process it left behind;
#  - fastauth configuration from the shipped lighttpd/ and apache/ files with
#    only paths substituted (install_conf), so what we ship is what we test;
#  - http METHOD URL [curl args]: status in $HTTP_STATUS, body in $HTTP_BODY
#    and $HTTP_BODY_FILE, headers in $HTTP_HEADERS (a file);
#  - assertions that print "FAIL: what, expected, got" and keep going, and a
#    summary "NAME: N passed, M failed" at exit (exit 1 if any failed).
#
# Binaries: $top_builddir/src/server/fastauth and src/ctl/fastauthctl;
# make check exports top_srcdir and top_builddir, and by hand both default
# to the repository root (bash tests/integration/lighttpd.sh).  A missing
# server program or binary is a failure, never a skip.

# shellcheck shell=bash disable=SC2034
# (SC2034: variables set here are used by the tests that source this file.)

if [ -z "${BASH_VERSION:-}" ]; then
	echo "FAIL: tests/integration/lib.sh needs bash" >&2
	exit 1
fi
set -eu
set -o pipefail
set -E

fa_lib_dir=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
: "${top_srcdir:=$(cd "$fa_lib_dir/../.." && pwd)}"
: "${top_builddir:=$top_srcdir}"
top_srcdir=$(cd "$top_srcdir" && pwd)
top_builddir=$(cd "$top_builddir" && pwd)
export top_srcdir top_builddir

# Programs (configure exports REDIS_SERVER, LIGHTTPD and APACHE2 to make check).
fa_which() { command -v "$1" 2>/dev/null || echo "/usr/sbin/$1"; }
REDIS_SERVER=${REDIS_SERVER:-$(fa_which redis-server)}
REDIS_CLI=${REDIS_CLI:-$(fa_which redis-cli)}
LIGHTTPD=${LIGHTTPD:-$(fa_which lighttpd)}
APACHE2=${APACHE2:-$(fa_which apache2)}
APACHE_MODULES=${APACHE_MODULES:-/usr/lib/apache2/modules}
FASTAUTH=${FASTAUTH:-$top_builddir/src/server/fastauth}
FASTAUTHCTL=${FASTAUTHCTL:-$top_builddir/src/ctl/fastauthctl}
# Apache refuses to run its children as root: they (and whatever they spawn
# or connect to) run as this user.
FA_APACHE_USER=${FA_APACHE_USER:-www-data}

TEST_NAME=$(basename "$0" .sh)
# Files we create are readable by Apache's user unless made private.
umask 022
T=$(mktemp -d "${TMPDIR:-/tmp}/fastauth-$TEST_NAME.XXXXXX")
# Apache's and mod_fcgid's children run as $FA_APACHE_USER and must reach
# files below $T; nothing secret lives here but test keys.
chmod 0755 "$T"
if [ "$(id -u)" = 0 ] && id "$FA_APACHE_USER" >/dev/null 2>&1 &&
    ! setpriv --reuid="$FA_APACHE_USER" --regid="$(id -g "$FA_APACHE_USER")" \
    --clear-groups test -x "$T" 2>/dev/null; then
	# $TMPDIR is not reachable by that user (under /root, say): use /tmp.
	rmdir "$T"
	T=$(mktemp -d "/tmp/fastauth-$TEST_NAME.XXXXXX")
	chmod 0755 "$T"
fi
FA_CONF=$T/fastauth.conf
# A unique instance name: the shared-memory segment /fastauth.<instance> is
# per host, and tests must share it neither with each other nor with a real
# fastauth on this machine.
FA_INSTANCE=$(printf 'fat-%s-%s' "$TEST_NAME" "$$" | cut -c1-32)

PASS=0
FAIL=0
# Results go to the test's own stdout through fd 3, so that an assertion
# inside $(...) is still seen.  Servers are started with 3>&- .
exec 3>&1
FA_SERVERS=()		# "pid:starttime:name:logfile", in start order

# --- output and assertions -------------------------------------------------

note() { printf '# %s\n' "$*" >&3; }

pass() {
	PASS=$((PASS + 1))
	printf 'ok %d - %s\n' "$((PASS + FAIL))" "$*" >&3
}

# fail DESCRIPTION [DETAIL...]: record a failure and go on.
fail() {
	FAIL=$((FAIL + 1))
	printf 'FAIL: %s\n' "$1" >&3
	shift
	local l
	for l in "$@"; do
		printf '      %s\n' "$l" >&3
	done
}

# die MESSAGE: a failure that makes the rest of the test meaningless.
die() {
	fail "$@"
	exit 1
}

# The last request, for failure messages.
fa_last_request() {
	local body
	body=$(head -c 600 "$HTTP_BODY_FILE" 2>/dev/null | tr -c '[:print:]\n' '?' || true)
	printf 'request: %s %s\n' "$HTTP_REQ" "$HTTP_ARGS"
	printf 'status:  %s (curl exit %s)\n' "$HTTP_STATUS" "$HTTP_CURL_RC"
	printf 'headers: %s\n' "$(tr -d '\r' < "$HTTP_HEADERS" | tr '\n' '|' )"
	printf 'body:    %s\n' "$body"
}

fa_fail_http() {
	local desc=$1
	shift
	local lines=("$@")
	local l
	while IFS= read -r l; do
		lines+=("$l")
	done < <(fa_last_request)
	fail "$desc" "${lines[@]}"
}

# assert_eq GOT EXPECTED DESCRIPTION
assert_eq() {
	if [ "$1" = "$2" ]; then
		pass "$3"
	else
		fail "$3" "expected: $2" "got:      $1"
	fi
}

# assert_match GOT ERE DESCRIPTION
assert_match() {
	if printf '%s' "$1" | grep -Eq -- "$2"; then
		pass "$3"
	else
		fail "$3" "expected to match: $2" "got: $1"
	fi
}

# assert_status CODE [DESCRIPTION]
assert_status() {
	local desc=${2:-"$HTTP_REQ -> $1"}
	if [ "$HTTP_STATUS" = "$1" ]; then
		pass "$desc"
	else
		fa_fail_http "$desc" "expected status $1, got $HTTP_STATUS"
	fi
}

# json_field FIELD [FILE]: print a field of the JSON object in FILE (default
# the last body): strings as they are, everything else as JSON (true, 3600,
# null, {...}).  Exit 1 when the body is not a JSON object, 2 when the field
# is absent.
json_field() {
	python3 - "$1" "${2:-$HTTP_BODY_FILE}" <<'EOF'
import json, sys
try:
    with open(sys.argv[2], 'rb') as f:
        doc = json.loads(f.read().decode('utf-8'))
except Exception:
    sys.exit(1)
if not isinstance(doc, dict):
    sys.exit(1)
if sys.argv[1] not in doc:
    sys.exit(2)
v = doc[sys.argv[1]]
print(v if isinstance(v, str) else json.dumps(v))
EOF
}

# assert_json_field FIELD EXPECTED [DESCRIPTION]
assert_json_field() {
	local desc=${3:-"$HTTP_REQ: $1 = $2"}
	local got rc=0
	got=$(json_field "$1") || rc=$?
	case $rc in
	0)	if [ "$got" = "$2" ]; then
			pass "$desc"
			return 0
		fi
		fa_fail_http "$desc" "expected $1 = $2, got $1 = $got" ;;
	1)	fa_fail_http "$desc" "expected $1 = $2, but the body is not a JSON object" ;;
	*)	fa_fail_http "$desc" "expected $1 = $2, but $1 is absent" ;;
	esac
}

# assert_json_field_match FIELD ERE [DESCRIPTION]
assert_json_field_match() {
	local desc=${3:-"$HTTP_REQ: $1 ~ $2"}
	local got rc=0
	got=$(json_field "$1") || rc=$?
	if [ "$rc" = 0 ] && printf '%s' "$got" | grep -Eq -- "$2"; then
		pass "$desc"
	elif [ "$rc" = 0 ]; then
		fa_fail_http "$desc" "expected $1 to match $2, got $got"
	else
		fa_fail_http "$desc" "expected $1 to match $2, but it is absent or the body is not JSON"
	fi
}

# assert_json_absent FIELD [DESCRIPTION]
assert_json_absent() {
	local desc=${2:-"$HTTP_REQ: no $1"}
	local rc=0
	json_field "$1" >/dev/null || rc=$?
	if [ "$rc" = 2 ]; then
		pass "$desc"
	else
		fa_fail_http "$desc" "expected no field $1"
	fi
}

# assert_json_equals JSON [DESCRIPTION]: the body is exactly this document
# (compared parsed: key order and white space do not matter).
assert_json_equals() {
	local desc=${2:-"$HTTP_REQ: body = $1"}
	if python3 - "$1" "$HTTP_BODY_FILE" <<'EOF'
import json, sys
try:
    want = json.loads(sys.argv[1])
    with open(sys.argv[2], 'rb') as f:
        got = json.loads(f.read().decode('utf-8'))
except Exception:
    sys.exit(1)
sys.exit(0 if want == got and type(want) == type(got) else 1)
EOF
	then
		pass "$desc"
	else
		fa_fail_http "$desc" "expected exactly $1"
	fi
}

# header_value NAME: the value of a response header of the last request
# (the last one if repeated; the final response if there were several).
header_value() {
	tr -d '\r' < "$HTTP_HEADERS" | awk -v name="$1" '
		/^HTTP\// { delete seen; have = 0; next }
		{
			i = index($0, ":")
			if (i == 0) next
			n = tolower(substr($0, 1, i - 1))
			if (n == tolower(name)) {
				v = substr($0, i + 1)
				sub(/^[ \t]+/, "", v); sub(/[ \t]+$/, "", v)
				val = v; have = 1
			}
		}
		END { if (have) { print val; exit 0 } exit 1 }'
}

# assert_header NAME [ERE] [DESCRIPTION]
assert_header() {
	local desc=${3:-"$HTTP_REQ: header $1${2:+ ~ $2}"}
	local v
	if ! v=$(header_value "$1"); then
		fa_fail_http "$desc" "expected a $1 header, got none"
	elif [ -n "${2:-}" ] && ! printf '%s' "$v" | grep -Eqi -- "$2"; then
		fa_fail_http "$desc" "expected $1 to match $2, got: $v"
	else
		pass "$desc"
	fi
}

# assert_error STATUS ERROR [DESCRIPTION]: an RFC 6749 5.2 error response.
assert_error() {
	local desc=${3:-"$HTTP_REQ -> $1 $2"}
	local got rc=0
	got=$(json_field error) || rc=$?
	if [ "$HTTP_STATUS" = "$1" ] && [ "$rc" = 0 ] && [ "$got" = "$2" ]; then
		pass "$desc"
	else
		fa_fail_http "$desc" "expected $1 {\"error\":\"$2\"}"
	fi
}

# --- processes -------------------------------------------------------------

# Start time of a process (clock ticks since boot), "" if it does not exist.
fa_starttime() {
	local stat
	stat=$(cat "/proc/$1/stat" 2>/dev/null) || return 0
	# Field 22, counted after the ")" that closes the command name.
	stat=${stat##*) }
	# shellcheck disable=SC2086
	set -- $stat
	printf '%s' "${20}"
}

# fa_alive PID [STARTTIME]: the process exists, is not a zombie and (when
# given) started at STARTTIME.
fa_alive() {
	local stat st
	stat=$(cat "/proc/$1/stat" 2>/dev/null) || return 1
	stat=${stat##*) }
	# shellcheck disable=SC2086
	set -- "$1" "${2:-}" $stat
	[ "$3" != Z ] || return 1
	[ -z "$2" ] || [ "$2" = "${22}" ]
}

# Every descendant of PID, as "pid:starttime" words.
fa_descendants() {
	local pids="$1" all="" p kids
	while [ -n "$pids" ]; do
		kids=""
		for p in $pids; do
			kids="$kids $(ps -o pid= --ppid "$p" 2>/dev/null | tr '\n' ' ' || true)"
		done
		# shellcheck disable=SC2086,SC2116
		pids=$(echo $kids)
		for p in $pids; do
			all="$all $p:$(fa_starttime "$p")"
		done
	done
	# shellcheck disable=SC2086
	echo $all
}

# Record a process we started.
fa_register() {	# PID NAME LOGFILE
	FA_SERVERS+=("$1:$(fa_starttime "$1"):$2:$3")
}

fa_unregister() {	# PID
	local i e
	for i in "${!FA_SERVERS[@]}"; do
		e=${FA_SERVERS[$i]}
		[ "${e%%:*}" = "$1" ] && unset "FA_SERVERS[$i]"
	done
	FA_SERVERS=("${FA_SERVERS[@]}")
}

# fa_wait_gone PID STARTTIME SECONDS: wait until the process has exited.
fa_wait_gone() {
	local n=$(($3 * 10))
	while [ $n -gt 0 ]; do
		fa_alive "$1" "$2" || return 0
		sleep 0.1
		n=$((n - 1))
	done
	return 1
}

# stop_pid PID [SECONDS]: SIGTERM a process we started, SIGKILL it after
# SECONDS (default 10), then do the same to anything it left running (its
# descendants as they were when we asked it to stop).  Returns 0 if it
# stopped on SIGTERM alone.  Reaps it if it is our child.
stop_pid() {
	local pid=$1 secs=${2:-10} st e name="" rc=0 d dp ds
	st=$(fa_starttime "$pid")
	for e in "${FA_SERVERS[@]}"; do
		if [ "${e%%:*}" = "$pid" ]; then
			st=$(echo "$e" | cut -d: -f2)
			name=$(echo "$e" | cut -d: -f3)
		fi
	done
	local desc
	desc=$(fa_descendants "$pid")
	if fa_alive "$pid" "$st"; then
		kill -TERM "$pid" 2>/dev/null || true
		if ! fa_wait_gone "$pid" "$st" "$secs"; then
			note "$name (pid $pid) ignored SIGTERM for ${secs}s: SIGKILL"
			kill -KILL "$pid" 2>/dev/null || true
			fa_wait_gone "$pid" "$st" 5 || true
			rc=1
		fi
	fi
	wait "$pid" 2>/dev/null || true
	for d in $desc; do
		dp=${d%%:*}
		ds=${d#*:}
		if fa_alive "$dp" "$ds"; then
			fa_wait_gone "$dp" "$ds" 3 && continue
			note "$name (pid $pid) left pid $dp running: SIGTERM"
			kill -TERM "$dp" 2>/dev/null || true
			if ! fa_wait_gone "$dp" "$ds" 5; then
				kill -KILL "$dp" 2>/dev/null || true
			fi
		fi
	done
	fa_unregister "$pid"
	return $rc
}

fa_stop_all() {
	local i e
	for ((i = ${#FA_SERVERS[@]} - 1; i >= 0; i--)); do
		e=${FA_SERVERS[$i]:-}
		[ -n "$e" ] || continue
		stop_pid "${e%%:*}" 10 || true
	done
}

fa_dump_logs() {
	local f
	for f in "$T"/*.log "$T"/*/*.log; do
		[ -s "$f" ] || continue
		echo "---- ${f#"$T"/} (last 40 lines) ----"
		tail -n 40 "$f" | tr -c '[:print:]\n\t' '?'
	done
}

fa_on_exit() {
	local rc=$?
	set +e
	trap - ERR
	fa_stop_all
	rm -f "/dev/shm/fastauth.$FA_INSTANCE" 2>/dev/null
	if [ "$rc" != 0 ] && [ "$FAIL" = 0 ]; then
		FAIL=1
		echo "FAIL: $TEST_NAME stopped early (exit status $rc)" >&3
	fi
	if [ $((PASS + FAIL)) = 0 ]; then
		FAIL=1
		echo "FAIL: $TEST_NAME checked nothing" >&3
	fi
	if [ "$FAIL" != 0 ]; then
		fa_dump_logs
	fi
	if [ "${KEEP_TMP:-0}" = 1 ]; then
		echo "# files kept in $T"
	else
		rm -rf "$T"
	fi
	echo "$TEST_NAME: $PASS passed, $FAIL failed"
	[ "$FAIL" = 0 ] && exit 0
	exit 1
}
trap fa_on_exit EXIT
trap 'echo "FAIL: command failed (status $?) at ${BASH_SOURCE[0]##*/}:$LINENO: $BASH_COMMAND" >&3' ERR
trap 'exit 130' INT
trap 'exit 143' TERM

# wait_until SECONDS COMMAND...: poll COMMAND every 0.1 s.
wait_until() {
	local n=$(($1 * 10))
	shift
	while [ $n -gt 0 ]; do
		"$@" && return 0
		sleep 0.1
		n=$((n - 1))
	done
	return 1
}

# A free TCP port on 127.0.0.1 (the kernel picks one; it is free when we
# close it, and nothing else here asks for ports at random).
free_port() {
	python3 -c 'import socket
s = socket.socket()
s.bind(("127.0.0.1", 0))
print(s.getsockname()[1])
s.close()'
}

port_open() {
	(exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null
}

# require PROGRAM...: fail loudly (never skip) when a program is missing.
require() {
	local p
	for p in "$@"; do
		[ -x "$p" ] || command -v "$p" >/dev/null 2>&1 ||
		    die "required program $p not found (run scripts/install-deps)"
	done
}

require_fastauth() {
	[ -x "$FASTAUTH" ] || die "$FASTAUTH is not built (run make)"
	[ -x "$FASTAUTHCTL" ] || die "$FASTAUTHCTL is not built (run make)"
}

# fa_started NAME PID LOG: fail with the log if the process died at once.
fa_check_alive() {
	if ! fa_alive "$2"; then
		wait "$2" 2>/dev/null || true
		die "$1 (pid $2) exited at start" "$(tail -n 20 "$3" 2>/dev/null)"
	fi
}

# --- redis -----------------------------------------------------------------

# start_redis [PORT [redis-server options]]: sets REDIS_PORT, REDIS_PID,
# REDIS_URL.  No persistence unless options ask for it; data in $T/redis.
start_redis() {
	REDIS_PORT=${1:-$(free_port)}
	if [ $# -gt 0 ]; then
		shift
	fi
	mkdir -p "$T/redis"
	"$REDIS_SERVER" --port "$REDIS_PORT" --bind 127.0.0.1 --save "" \
	    --appendonly no --dir "$T/redis" --daemonize no \
	    --logfile "$T/redis/redis.log" "$@" </dev/null >"$T/redis/redis.out.log" 2>&1 3>&- &
	REDIS_PID=$!
	fa_register "$REDIS_PID" redis-server "$T/redis/redis.log"
	REDIS_URL="redis://127.0.0.1:$REDIS_PORT/0"
	if ! wait_until 10 redis_ping; then
		fa_check_alive redis-server "$REDIS_PID" "$T/redis/redis.log"
		die "redis-server on port $REDIS_PORT does not answer PING"
	fi
}

redis_ping() {
	[ "$("$REDIS_CLI" -h 127.0.0.1 -p "$REDIS_PORT" ping 2>/dev/null)" = PONG ]
}

stop_redis() {
	stop_pid "$REDIS_PID" 10
}

# --- fastauth configuration and CLI ---------------------------------------

# write_fastauth_conf FILE ISSUER [extra "key value" lines...]
write_fastauth_conf() {
	local f=$1 issuer=$2 l
	shift 2
	{
		echo "# written by tests/integration/$TEST_NAME.sh"
		echo "issuer $issuer"
		echo "redis_url $REDIS_URL"
		echo "redis_prefix fat:$$:"
		echo "kek_file $T/kek"
		echo "instance $FA_INSTANCE"
		echo "access_token_ttl ${FA_TTL:-300}"
		echo "key_refresh_interval 1"
		echo "log_level debug"
		# Tests count refusals and want them at once (the default holds
		# them back 500 ms); FA_TARPIT_MS or an extra line sets another.
		case " $* " in
		*" ratelimit_tarpit_ms "*) ;;
		*) echo "ratelimit_tarpit_ms ${FA_TARPIT_MS:-0}" ;;
		esac
		for l in "$@"; do
			echo "$l"
		done
	} > "$f"
	chmod 0644 "$f"
}

# ctl ARGS...: fastauthctl with the test's configuration ($FA_CONF).
ctl() {
	"$FASTAUTHCTL" -c "$FA_CONF" "$@"
}

# ctl_secret ARGS...: run a fastauthctl command that prints a secret alone
# on one line; prints that secret, dies otherwise.
ctl_secret() {
	local out rc=0
	out=$(ctl "$@" 2>"$T/ctl.err") || rc=$?
	if [ "$rc" != 0 ]; then
		die "fastauthctl $* exited $rc" "$(cat "$T/ctl.err")"
	fi
	if [ "$(printf '%s\n' "$out" | wc -l)" != 1 ] || [ -z "$out" ] ||
	    printf '%s' "$out" | grep -q '[[:space:]]'; then
		die "fastauthctl $* did not print one secret on one line" "stdout: $out"
	fi
	printf '%s\n' "$out"
}

# setup_clients: the clients every flow uses.  Sets SECRET_A (scope "read
# write"), SECRET_B (scope "read"), SECRET_I (introspection allowed).
setup_clients() {
	SECRET_A=$(ctl_secret client add --id app-a --scope "read write" \
	    --grant client_credentials --name "App A")
	SECRET_B=$(ctl_secret client add --id app-b --scope "read" \
	    --grant client_credentials)
	SECRET_I=$(ctl_secret client add --id introspector --scope "read" \
	    --grant client_credentials --introspect --name "Resource server")
	pass "fastauthctl client add printed one-line secrets for app-a, app-b, introspector"
}

# install_conf SRC DST [FROM TO]...: copy a shipped configuration file,
# replacing each FROM by TO; a FROM missing from SRC is an error (so a change
# to the shipped file cannot silently escape the test).
install_conf() {
	python3 - "$@" <<'EOF' || die "install_conf $1: substitution failed"
import sys
src, dst, pairs = sys.argv[1], sys.argv[2], sys.argv[3:]
text = open(src).read()
for old, new in zip(pairs[0::2], pairs[1::2]):
    if old not in text:
        sys.exit("%s: %r not found" % (src, old))
    text = text.replace(old, new)
open(dst, 'w').write(text)
EOF
	chmod 0644 "$2"
}

# start_fastauth CONF LISTEN [fastauth options]: a standalone fastauth master
# in the foreground (logging to $T/fastauth.N.log).  With FA_RUN_AS=USER it
# runs as that user.  Sets FA_PID and FA_LOG; waits for the listen socket.
FA_NSTARTED=0
start_fastauth() {
	local conf=$1 listen=$2 pre=()
	shift 2
	FA_NSTARTED=$((FA_NSTARTED + 1))
	FA_LOG=$T/fastauth.$FA_NSTARTED.log
	if [ -n "${FA_RUN_AS:-}" ]; then
		pre=(setpriv --reuid="$FA_RUN_AS" --regid="$(id -g "$FA_RUN_AS")" --init-groups --)
		touch "$FA_LOG"
		chown "$FA_RUN_AS" "$FA_LOG"
	fi
	"${pre[@]}" "$FASTAUTH" -c "$conf" --listen "$listen" "$@" </dev/null >"$FA_LOG" 2>&1 3>&- &
	FA_PID=$!
	fa_register "$FA_PID" "fastauth --listen $listen" "$FA_LOG"
	case $listen in
	unix:*)	wait_until 10 test -S "${listen#unix:}" ;;
	*)	wait_until 10 port_open "${listen##*:}" ;;
	esac || {
		fa_check_alive fastauth "$FA_PID" "$FA_LOG"
		die "fastauth --listen $listen: not listening after 10 s" "$(tail -n 20 "$FA_LOG")"
	}
	fa_check_alive fastauth "$FA_PID" "$FA_LOG"
}

# --- lighttpd --------------------------------------------------------------

# make_lighttpd_conf FILE PORT SNIPPET: a minimal lighttpd.conf including the
# (already substituted) shipped snippet.
make_lighttpd_conf() {
	mkdir -p "$T/www"
	cat > "$1" <<EOF
# written by tests/integration/$TEST_NAME.sh
server.document-root = "$T/www"
server.bind          = "127.0.0.1"
server.port          = $2
server.errorlog      = "$1.error.log"
server.max-keep-alive-requests = 0
include "$3"
EOF
}

# start_lighttpd CONF PORT: sets LIGHTTPD_PID; waits for the port.
start_lighttpd() {
	"$LIGHTTPD" -tt -f "$1" > "$1.check.log" 2>&1 ||
	    die "lighttpd -tt -f $1 rejects the configuration" "$(cat "$1.check.log")"
	"$LIGHTTPD" -D -f "$1" </dev/null >"$1.out.log" 2>&1 3>&- &
	LIGHTTPD_PID=$!
	fa_register "$LIGHTTPD_PID" lighttpd "$1.error.log"
	wait_until 10 port_open "$2" || {
		fa_check_alive lighttpd "$LIGHTTPD_PID" "$1.out.log"
		die "lighttpd: port $2 not open after 10 s"
	}
}

# --- apache ----------------------------------------------------------------

# start_apache PORT SNIPPET: a self-contained httpd.conf in $T/apache-PORT
# (event MPM, the modules our snippets need, logs and run files there)
# including the (already substituted) shipped snippet.  Sets APACHE_PID and
# APACHE_DIR; waits for the port.  FA_APACHE_EXTRA_MODULES: more module
# names to load (e.g. "authn_core authnz_fcgi cgid").
start_apache() {
	local port=$1 snippet=$2 m mods=""
	APACHE_DIR=$T/apache-$port
	mkdir -p "$APACHE_DIR/htdocs" "$APACHE_DIR/run"
	for m in mpm_event authz_core alias env setenvif headers proxy proxy_fcgi fcgid \
	    ${FA_APACHE_EXTRA_MODULES:-}; do
		mods="${mods}LoadModule ${m}_module $APACHE_MODULES/mod_$m.so
"
	done
	cat > "$APACHE_DIR/httpd.conf" <<EOF
# written by tests/integration/$TEST_NAME.sh
ServerRoot "$APACHE_DIR"
ServerName 127.0.0.1
Listen 127.0.0.1:$port
${mods}
User $FA_APACHE_USER
Group $(id -gn "$FA_APACHE_USER")
PidFile "$APACHE_DIR/run/httpd.pid"
DefaultRuntimeDir "$APACHE_DIR/run"
Mutex "file:$APACHE_DIR/run" default
ErrorLog "$APACHE_DIR/error.log"
LogLevel info proxy_fcgi:debug
LogFormat "%h \"%r\" %>s %b %D" fa
CustomLog "$APACHE_DIR/access.log" fa
DocumentRoot "$APACHE_DIR/htdocs"
StartServers 1
ServerLimit 2
ThreadsPerChild 16
MaxRequestWorkers 32
MinSpareThreads 8
MaxSpareThreads 32
Timeout 30
# mod_fcgid's process table and sockets (it creates the directory for User).
FcgidIPCDir "$APACHE_DIR/fcgid"
FcgidProcessTableFile "$APACHE_DIR/run/fcgid-shm"
<Directory />
    Require all denied
</Directory>
Include "$snippet"
EOF
	"$APACHE2" -t -d "$APACHE_DIR" -f "$APACHE_DIR/httpd.conf" > "$APACHE_DIR/check.log" 2>&1 ||
	    die "apache2 -t rejects the configuration" "$(cat "$APACHE_DIR/check.log")"
	"$APACHE2" -DFOREGROUND -d "$APACHE_DIR" -f "$APACHE_DIR/httpd.conf" \
	    </dev/null >"$APACHE_DIR/out.log" 2>&1 3>&- &
	APACHE_PID=$!
	fa_register "$APACHE_PID" apache2 "$APACHE_DIR/error.log"
	wait_until 10 port_open "$port" || {
		fa_check_alive apache2 "$APACHE_PID" "$APACHE_DIR/error.log"
		die "apache2: port $port not open after 10 s"
	}
}

# --- HTTP ------------------------------------------------------------------

HTTP_HEADERS=$T/http.headers
HTTP_BODY_FILE=$T/http.body
HTTP_STATUS=""
HTTP_BODY=""
HTTP_CURL_RC=0
HTTP_REQ=""		# METHOD path, for messages
HTTP_ARGS=""		# the curl options of the request

# http METHOD URL [curl options...]
http() {
	local method=$1 url=$2
	shift 2
	: > "$HTTP_HEADERS"
	: > "$HTTP_BODY_FILE"
	HTTP_REQ="$method ${url#http://127.0.0.1:*/}"
	HTTP_ARGS="$*"
	HTTP_CURL_RC=0
	HTTP_STATUS=$(curl -sS -g --max-time "${HTTP_TIMEOUT:-15}" -X "$method" \
	    -H 'Expect:' -o "$HTTP_BODY_FILE" -D "$HTTP_HEADERS" \
	    -w '%{http_code}' "$@" "$url" 2>"$T/http.err") || HTTP_CURL_RC=$?
	HTTP_BODY=$(tr -d '\0' < "$HTTP_BODY_FILE")
	if [ "$HTTP_CURL_RC" != 0 ]; then
		HTTP_STATUS=000
		HTTP_REQ="$HTTP_REQ [curl: $(cat "$T/http.err")]"
	fi
}

# post_form URL BODY [curl options...]: a form POST of BODY sent as is.
post_form() {
	local url=$1 body=$2
	shift 2
	http POST "$url" -H 'Content-Type: application/x-www-form-urlencoded' \
	    --data-binary "$body" "$@"
}

# get_token BASE CLIENT SECRET [extra form]: prints the access token, or
# fails (returns 1) with the response.
get_token() {
	post_form "$1/oauth2/token" "grant_type=client_credentials${4:+&$4}" -u "$2:$3"
	if [ "$HTTP_STATUS" != 200 ]; then
		fa_fail_http "token for $2"
		return 1
	fi
	json_field access_token
}

# token_kid TOKEN: the key id in a "fa1." token (the first 4 bytes of the
# base64url text after the prefix, big-endian).
token_kid() {
	python3 - "$1" <<'EOF'
import base64, sys
t = sys.argv[1]
if not t.startswith("fa1."):
    sys.exit(1)
raw = base64.urlsafe_b64decode(t[4:12])
print(int.from_bytes(raw[:4], "big"))
EOF
}

# introspect BASE TOKEN: as the introspector client.
introspect() {
	post_form "$1/oauth2/introspect" "token=$2" -u "introspector:$SECRET_I"
}

ready_200() {
	http GET "$1/ready"
	[ "$HTTP_STATUS" = 200 ]
}

# wait_ready BASE [SECONDS]: /ready answers 200.
wait_ready() {
	if wait_until "${2:-15}" ready_200 "$1"; then
		pass "GET $1/ready -> 200"
	else
		fa_fail_http "GET $1/ready -> 200 within ${2:-15} s"
		return 1
	fi
}

# --- the flow every deployment must pass ------------------------------------

# check_discovery BASE
check_discovery() {
	local base=$1 etag
	http GET "$base/.well-known/oauth-authorization-server"
	assert_status 200
	assert_header Content-Type '^application/json'
	assert_json_field issuer "$base"
	assert_json_field token_endpoint "$base/oauth2/token"
	assert_header Cache-Control 'public.*max-age=[0-9]+|max-age=[0-9]+.*public'
	assert_header ETag '.'
	etag=$(header_value ETag || true)
	if [ -n "$etag" ]; then
		http GET "$base/.well-known/oauth-authorization-server" -H "If-None-Match: $etag"
		assert_status 304 "discovery with If-None-Match: $etag -> 304"
		if [ -s "$HTTP_BODY_FILE" ]; then
			fail "304 response has a body" "$HTTP_BODY"
		fi
		http GET "$base/.well-known/oauth-authorization-server" -H 'If-None-Match: "no-such-etag"'
		assert_status 200 "discovery with another ETag -> 200"
	fi
}

# check_core_flow BASE: discovery, health, token -> introspect -> revoke ->
# inactive, wrong secret, unsupported grant, oversized body.  Needs
# setup_clients.
check_core_flow() {
	local base=$1 tok exp iat ein
	check_discovery "$base"

	http GET "$base/health"
	assert_status 200
	wait_ready "$base"

	post_form "$base/oauth2/token" "grant_type=client_credentials" -u "app-a:$SECRET_A"
	assert_status 200 "token via client_secret_basic -> 200"
	assert_header Cache-Control 'no-store'
	assert_header Content-Type '^application/json'
	assert_json_field token_type Bearer
	assert_json_field_match access_token '^fa1\.[A-Za-z0-9_-]+$'
	assert_json_field expires_in "${FA_TTL:-300}"
	assert_json_field_match scope '^(read|write)( (read|write))*$'
	tok=$(json_field access_token) || die "no access_token: cannot go on"

	introspect "$base" "$tok"
	assert_status 200 "introspect a fresh token -> 200"
	assert_json_field active true "fresh token is active"
	assert_json_field client_id app-a
	assert_json_field token_type Bearer
	assert_json_field iss "$base"
	assert_json_field_match jti '.'
	assert_json_field_match scope '^(read|write)( (read|write))*$'
	exp=$(json_field exp || echo x)
	iat=$(json_field iat || echo y)
	ein=${FA_TTL:-300}
	if [ "$exp" != x ] && [ "$iat" != y ] && [ $((exp - iat)) = "$ein" ] &&
	    [ "$exp" -gt "$(date +%s)" ]; then
		pass "introspection: exp - iat = expires_in, exp in the future"
	else
		fa_fail_http "introspection: exp - iat = $ein and exp > now" "exp=$exp iat=$iat now=$(date +%s)"
	fi

	post_form "$base/oauth2/revoke" "token=$tok" -u "app-a:$SECRET_A"
	assert_status 200 "revoke own token -> 200"
	local i
	for i in 1 2 3 4; do
		introspect "$base" "$tok"
		assert_json_equals '{"active":false}' "revoked token: exactly {\"active\":false} (try $i)"
	done

	post_form "$base/oauth2/token" "grant_type=client_credentials" -u "app-a:wrong-$SECRET_A"
	assert_error 401 invalid_client "wrong secret -> 401 invalid_client"
	assert_header WWW-Authenticate '^Basic'

	post_form "$base/oauth2/token" "grant_type=urn:example:no-such-grant" -u "app-a:$SECRET_A"
	assert_error 400 unsupported_grant_type "unknown grant_type -> 400 unsupported_grant_type"

	local pad
	pad=$(head -c 20000 /dev/zero | tr '\0' a)
	post_form "$base/oauth2/token" "grant_type=client_credentials&pad=$pad" -u "app-a:$SECRET_A"
	assert_status 413 "20000-byte body (max_body_size 16384) -> 413"
}
