#!/bin/bash
# systemd_unit.sh -- the systemd unit and tmpfiles.d entry that make builds
# (systemd/ in the build tree, from etc/systemd/fastauth.service.in and
# etc/tmpfiles.d/fastauth.conf.in):
#  - "systemd-analyze verify" prints nothing about the unit (its ExecStart
#    pointed at the built fastauth, which must exist for verify);
#  - the unit runs the standalone master on /run/fastauth/fastauth.sock in
#    its RuntimeDirectory, reloads with SIGHUP, and is hardened;
#  - the tmpfiles.d entry makes the same directory with the same owner;
#  - the unit's ExecStartPre/ExecStart command lines run: the built fastauth
#    accepts them (with the sample configuration and a socket under $T).
# Skipped (exit 77) only when systemd-analyze is not installed.
[ -n "${BASH_VERSION:-}" ] || exec bash "$0" "$@"
if ! command -v systemd-analyze >/dev/null 2>&1; then
	echo "SKIP: systemd-analyze not installed (scripts/install-deps installs systemd)"
	exit 77
fi
. "$(dirname "$0")/lib.sh"

require_fastauth
unit=$top_builddir/systemd/fastauth.service
tmpf=$top_builddir/systemd/fastauth-tmpfiles.conf
[ -f "$unit" ] || die "$unit is not built (run make)"
[ -f "$tmpf" ] || die "$tmpf is not built (run make)"

# Exec lines name the installed fastauth (sbindir); verify wants the program
# to exist, so point them at the built one.
mkdir "$T/unit"
sed -E "s#^(Exec[A-Za-z]*=)[^ ]*/fastauth( |\$)#\\1$FASTAUTH\\2#" "$unit" > "$T/unit/fastauth.service"
rc=0
out=$(systemd-analyze verify --man=no "$T/unit/fastauth.service" 2>&1) || rc=$?
if [ "$rc" = 0 ] && [ -z "$out" ]; then
	pass "systemd-analyze verify fastauth.service: clean"
else
	fail "systemd-analyze verify fastauth.service: clean (exit $rc)" "$out"
fi

# key KEY: the value of KEY= in the unit (the last one if repeated).
key() {
	sed -n "s/^$1=//p" "$unit" | tail -n 1
}
assert_eq "$(key Type)" simple "Type=simple: the master stays in the foreground"
assert_match "$(key ExecStart)" ' --listen unix:/run/fastauth/fastauth\.sock$' \
    "ExecStart runs the standalone master on /run/fastauth/fastauth.sock"
assert_eq "$(key RuntimeDirectory)" fastauth "RuntimeDirectory=fastauth (/run/fastauth)"
assert_eq "$(key RuntimeDirectoryMode)" 0750 "RuntimeDirectoryMode=0750"
assert_match "$(sed -n 's/^ExecReload=//p' "$unit" | tr '\n' '|')" '\|/bin/kill -HUP \$MAINPID\|$' \
    "ExecReload ends with kill -HUP \$MAINPID"
assert_eq "$(key KillMode)" mixed "KillMode=mixed: SIGTERM to the master, which drains its workers"
assert_eq "$(key User)" fastauth "User=fastauth"
assert_eq "$(key Group)" www-data "Group=www-data: the web server reaches the 0660 socket"
for h in NoNewPrivileges=yes ProtectSystem=strict PrivateTmp=yes ProtectHome=yes \
    PrivateDevices=yes CapabilityBoundingSet= RestrictAddressFamilies='AF_UNIX AF_INET AF_INET6'; do
	if grep -qxF "$h" "$unit"; then
		pass "hardening: $h"
	else
		fail "hardening: $h" "not in $unit"
	fi
done
if grep -q '@' "$unit" "$tmpf"; then
	# SystemCallFilter=@system-service is the one legitimate '@'.
	left=$(grep -n '@[A-Za-z_]*@' "$unit" "$tmpf" || true)
	if [ -n "$left" ]; then
		fail "no @placeholder@ left unsubstituted" "$left"
	else
		pass "no @placeholder@ left unsubstituted"
	fi
fi
assert_eq "$(grep -v '^#' "$tmpf" | grep -v '^$')" "d /run/fastauth 0750 fastauth www-data -" \
    "tmpfiles.d: /run/fastauth, fastauth:www-data 0750, as RuntimeDirectory makes it"

# The command lines, as the unit gives them, with the sample configuration
# (its Redis need not answer: the master starts anyway) and a socket in $T.
conf=$top_srcdir/etc/fastauth.conf
sock=$T/fastauth.sock
read -r -a pre <<< "$(key ExecStartPre)"
read -r -a start <<< "$(key ExecStart)"
pre[0]=$FASTAUTH
start[0]=$FASTAUTH
pre=("${pre[@]/#*\/fastauth.conf/$conf}")
start=("${start[@]/#*\/fastauth.conf/$conf}")
start=("${start[@]/#unix:\/run\/fastauth\/fastauth.sock/unix:$sock}")
if "${pre[@]}" >"$T/pre.log" 2>&1; then
	pass "ExecStartPre (${pre[*]#"$top_builddir"/}) accepts the sample configuration"
else
	fail "ExecStartPre accepts the sample configuration" "$(cat "$T/pre.log")"
fi
# Never the sample's Redis (a shared one may listen on 6379): a closed port.
export FASTAUTH_INSTANCE=$FA_INSTANCE FASTAUTH_KEK_FILE=$T/kek
export FASTAUTH_REDIS_URL=redis://127.0.0.1:$(free_port)/0
"$FASTAUTHCTL" -c "$conf" key init 2>/dev/null || die "fastauthctl key init failed"
FA_LOG=$T/fastauth.log
"${start[@]}" </dev/null >"$FA_LOG" 2>&1 3>&- &
FA_PID=$!
fa_register "$FA_PID" "fastauth (the unit's ExecStart)" "$FA_LOG"
if wait_until 10 test -S "$sock"; then
	pass "ExecStart: the master listens on the unit's socket path (moved to \$T)"
else
	fail "ExecStart: the master listens" "$(tail -n 20 "$FA_LOG")"
fi
assert_eq "$(stat -c %a "$sock" 2>/dev/null)" 660 "the socket is mode 0660 (the group is the unit's Group=)"
kill -HUP "$FA_PID"
sleep 0.5
if fa_alive "$FA_PID"; then
	pass "ExecReload's SIGHUP: the master reloads and keeps running"
else
	fail "ExecReload's SIGHUP: the master keeps running" "$(tail -n 20 "$FA_LOG")"
fi
stop_pid "$FA_PID" 20
