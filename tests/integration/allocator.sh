#!/bin/bash
# allocator.sh -- fastauth runs on the allocator configure --with-allocator
# chose: fastauth --version names it (and exits 0 only when that allocator
# owns a block malloc(3) returned), the binary links its library, and the
# start log line names it too.  make check passes ALLOCATOR from configure;
# by hand, ALLOCATOR=jemalloc bash tests/integration/allocator.sh.
[ -n "${BASH_VERSION:-}" ] || exec bash "$0" "$@"
. "$(dirname "$0")/lib.sh"

require_fastauth

rc=0
"$FASTAUTH" --version >"$T/version" 2>"$T/version.err" || rc=$?
assert_eq 0 "$rc" "fastauth --version exits 0 (the allocator serves malloc)"
reported=$(sed -n 's/^allocator: //p' "$T/version")
note "fastauth --version: allocator: $reported"
assert_match "$reported" '^(glibc|jemalloc|mimalloc) [0-9]' "--version names an allocator and its version"

# ldd into a file first: "ldd | grep -q" can fail under pipefail when grep
# exits at its first match and ldd then dies of SIGPIPE.
ldd "$FASTAUTH" > "$T/ldd" 2>&1 || true
if [ -n "${ALLOCATOR:-}" ]; then
	assert_eq "$ALLOCATOR" "${reported%% *}" "the configured allocator is the one reported"
	case $ALLOCATOR in
	jemalloc|mimalloc)
		if grep -q "lib$ALLOCATOR\.so" "$T/ldd"; then
			pass "fastauth links lib$ALLOCATOR"
		else
			fail "fastauth links lib$ALLOCATOR" "$(cat "$T/ldd")"
		fi ;;
	glibc)
		if grep -Eq 'lib(jemalloc|mimalloc)\.so' "$T/ldd"; then
			fail "a glibc build links no other allocator" "$(cat "$T/ldd")"
		else
			pass "a glibc build links no other allocator"
		fi ;;
	esac
else
	note "ALLOCATOR not set (not run by make check): configured allocator not compared"
fi

# The start line: --check-config exits before logging, so a listener on a
# port nobody connects to, stopped at once (no Redis is needed to start).
port=$(free_port)
# shellcheck disable=SC2034
REDIS_URL=redis://127.0.0.1:1/0		# the line is logged before Redis is used
write_fastauth_conf "$T/fa.conf" "http://127.0.0.1:$port/auth"
"$FASTAUTH" -c "$T/fa.conf" --listen "127.0.0.1:$port" --processes 1 \
    >"$T/fa.out" 2>"$T/fa.err" &
pid=$!
for _ in $(seq 50); do
	grep -q 'allocator' "$T/fa.err" && break
	sleep 0.1
done
stop_pid "$pid"
assert_match "$(grep -m1 allocator "$T/fa.err")" "allocator ${reported%% *} " "the start log line names the allocator"
