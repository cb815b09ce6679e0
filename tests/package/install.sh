#!/bin/bash
# install.sh -- the Debian package, end to end, on this machine.
#
#   tests/package/install.sh [TARBALL]
#
# TARBALL defaults to the newest fastauth-*.tar.gz in the build directory
# (make dist or make distcheck leaves it there).  scripts/test (CI) runs this
# after make distcheck, as root.  Steps:
#   1. unpack the tarball, build fastauth_*.deb with dpkg-buildpackage -b,
#      run lintian on it (no errors allowed);
#   2. install it with apt-get; check what postinst made: the fastauth
#      system user, the KEK (fastauth, 0600), /run/fastauth (fastauth:www-data
#      0750, from tmpfiles.d), /var/lib/fastauth, /var/log/fastauth, the
#      conffiles; systemd-analyze verify on the installed unit; the snippets
#      enabled with lighty-enable-mod and a2enconf (and disabled again);
#   3. run the INSTALLED fastauth the way the INSTALLED unit does (its
#      ExecStartPre and ExecStart lines, as its User and Group) but directly,
#      not through systemd, which CI containers do not run as PID 1.  The
#      configuration is the INSTALLED /etc/fastauth/fastauth.conf, untouched;
#      what must differ on a test machine comes from FASTAUTH_<KEY>
#      environment variables, exactly as an operator would override it:
#      redis_url (a private redis-server on a free port), issuer (the test's
#      port), instance (a unique shared memory name);
#   4. a private lighttpd on a free port, running as www-data, that includes
#      the INSTALLED /etc/lighttpd/conf-available/50-fastauth.conf as it is
#      (so it reaches fastauth on /run/fastauth/fastauth.sock through the
#      socket's group), and a private Apache that includes the INSTALLED
#      /etc/apache2/conf-available/fastauth.conf; a client made with the
#      INSTALLED fastauthctl gets a token, introspects and revokes it
#      through both;
#   5. remove, modify a conffile, reinstall: the conffile and the KEK are
#      kept; then purge and check that everything postinst made is gone
#      (the system user stays, as in Debian generally; this test deletes it
#      afterwards if it did not exist before, to leave the machine as found).
#
# The machine may be shared: every server is private, on a free port, and
# stopped by PID; no system service is started, stopped or reloaded; the
# package is purged at exit whatever happens.  It refuses to run when
# fastauth is already installed (it would remove someone's installation).
# Not root: prints SKIP and exits 0 (installing a package needs root).
[ -n "${BASH_VERSION:-}" ] || exec bash "$0" "$@"

if [ "$(id -u)" != 0 ]; then
	echo "SKIP: tests/package/install.sh installs a package: run it as root"
	exit 0
fi

# The installed programs, not the built ones.
FASTAUTH=/usr/sbin/fastauth
FASTAUTHCTL=/usr/bin/fastauthctl
here=$(cd "$(dirname "$0")" && pwd)
: "${top_srcdir:=$(cd "$here/../.." && pwd)}"
. "$top_srcdir/tests/integration/lib.sh"

UNIT=/lib/systemd/system/fastauth.service
LIGHTTPD_SNIPPET=/etc/lighttpd/conf-available/50-fastauth.conf
APACHE_SNIPPET=/etc/apache2/conf-available/fastauth.conf
SOCK=/run/fastauth/fastauth.sock
FA_TTL=3600		# the installed configuration's access_token_ttl
APT=(apt-get -y -q -o DPkg::Lock::Timeout=600 -o Dpkg::Use-Pty=0)
export DEBIAN_FRONTEND=noninteractive

require dpkg-buildpackage lintian apt-get "$REDIS_SERVER" "$LIGHTTPD" "$APACHE2" curl python3 setpriv

tarball=${1:-}
if [ -z "$tarball" ]; then
	tarball=$(ls -t "$top_builddir"/fastauth-*.tar.gz 2>/dev/null | head -n 1 || true)
fi
[ -n "$tarball" ] && [ -f "$tarball" ] ||
    die "no fastauth-*.tar.gz in $top_builddir: run make dist (or make distcheck) first"

if dpkg-query -W -f='${db:Status-Status}' fastauth 2>/dev/null | grep -qv '^not-installed$'; then
	die "the fastauth package is already on this machine (dpkg status: $(dpkg-query -W -f='${db:Status-Status}' fastauth)):" \
	    "this test would remove it; purge it first if it is a leftover"
fi
user_existed=0
id fastauth >/dev/null 2>&1 && user_existed=1
lighty_was_enabled=0
[ -e /etc/lighttpd/conf-enabled/50-fastauth.conf ] && lighty_was_enabled=1
a2_was_enabled=0
[ -e /etc/apache2/conf-enabled/fastauth.conf ] && a2_was_enabled=1

# --- cleanup: whatever happens, leave the machine as we found it -----------
PKG_INSTALLED=0
pkg_purge() {
	"${APT[@]}" purge fastauth </dev/null >"$T/purge.log" 2>&1
}
pkg_on_exit() {
	local rc=$?
	set +e
	fa_stop_all
	if [ "$PKG_INSTALLED" = 1 ]; then
		echo "# cleaning up: purging the fastauth package"
		pkg_purge || cat "$T/purge.log"
	fi
	if [ "$user_existed" = 0 ] && id fastauth >/dev/null 2>&1; then
		deluser --system --quiet fastauth >/dev/null 2>&1
		getent group fastauth >/dev/null && delgroup --system --quiet fastauth >/dev/null 2>&1
	fi
	(exit "$rc")
	fa_on_exit
}
trap pkg_on_exit EXIT

# --- 1. build and lintian ----------------------------------------------------
note "building the package from $(basename "$tarball")"
mkdir "$T/build"
tar -C "$T/build" -xzf "$tarball"
src=$(find "$T/build" -mindepth 1 -maxdepth 1 -type d | head -n 1)
[ -f "$src/debian/control" ] || die "$(basename "$tarball") holds no debian/ directory"
# nocheck: scripts/test runs this after make check and make distcheck have
# passed on the same sources; a plain dpkg-buildpackage runs the suite.
if (cd "$src" && DEB_BUILD_OPTIONS="nocheck parallel=2" \
    dpkg-buildpackage -us -uc -b) >"$T/build/dpkg-buildpackage.log" 2>&1; then
	pass "dpkg-buildpackage -us -uc -b"
else
	die "dpkg-buildpackage -us -uc -b failed" "$(tail -n 40 "$T/build/dpkg-buildpackage.log")"
fi
deb=$(ls "$T"/build/fastauth_*.deb 2>/dev/null | head -n 1 || true)
[ -n "$deb" ] || die "dpkg-buildpackage made no fastauth_*.deb"
pass "built $(basename "$deb")"

rc=0
lintian --fail-on error \
    "$T"/build/fastauth_*.changes >"$T/build/lintian.log" 2>&1 || rc=$?
if [ "$rc" = 0 ]; then
	pass "lintian: no errors ($(grep -c '^W:' "$T/build/lintian.log" || true) warnings)"
else
	fail "lintian: no errors (exit $rc)" "$(head -n 40 "$T/build/lintian.log")"
fi
{ grep -E '^[EW]:' "$T/build/lintian.log" || true; } | while IFS= read -r l; do note "lintian: $l"; done

# --- 2. install --------------------------------------------------------------
PKG_INSTALLED=1
if "${APT[@]}" install --no-install-recommends "$deb" </dev/null >"$T/install.log" 2>&1; then
	pass "apt-get install $(basename "$deb")"
else
	die "apt-get install $(basename "$deb") failed" "$(tail -n 30 "$T/install.log")"
fi

for f in "$FASTAUTH" "$FASTAUTHCTL"; do
	[ -x "$f" ] && pass "$f installed" || fail "$f installed"
done
for f in /usr/share/man/man8/fastauth.8.gz /usr/share/man/man8/fastauthctl.8.gz \
    /usr/share/man/man5/fastauth.conf.5.gz "$UNIT" /usr/lib/tmpfiles.d/fastauth.conf \
    /usr/share/fastauth/fastauth.conf "$LIGHTTPD_SNIPPET" "$APACHE_SNIPPET"; do
	[ -f "$f" ] && pass "$f installed" || fail "$f installed"
done
conffiles=$(dpkg-query -W -f='${Conffiles}\n' fastauth | awk 'NF { print $1 }' | sort | tr '\n' ' ')
assert_eq "$conffiles" "/etc/apache2/conf-available/fastauth.conf /etc/fastauth/fastauth.conf /etc/lighttpd/conf-available/50-fastauth.conf " \
    "conffiles: fastauth.conf and the two web server snippets"

# stat_is PATH OWNER:GROUP MODE
stat_is() {
	local got
	got=$(stat -c '%U:%G %a' "$1" 2>/dev/null || echo "missing")
	assert_eq "$got" "$2 $3" "$1 is $2, mode $3"
}
if id fastauth >/dev/null 2>&1; then
	pass "postinst created the fastauth user"
	shell=$(getent passwd fastauth | cut -d: -f7)
	assert_match "$shell" '(nologin|false)$' "the fastauth user has no login shell"
	assert_match "$(id -u fastauth)" '^[0-9]+$' "fastauth has a uid"
	if [ "$(id -u fastauth)" -lt 1000 ]; then
		pass "fastauth is a system user (uid $(id -u fastauth))"
	else
		fail "fastauth is a system user" "uid $(id -u fastauth)"
	fi
else
	die "postinst did not create the fastauth user"
fi
stat_is /etc/fastauth/kek fastauth:fastauth 600
kek_len=$(wc -c < /etc/fastauth/kek || echo 0)
assert_eq "$kek_len" 65 "the KEK holds 64 hex characters and a newline"
kek_sum=$(sha256sum /etc/fastauth/kek | cut -d' ' -f1 || true)
stat_is /etc/fastauth/fastauth.conf root:root 644
stat_is /run/fastauth fastauth:www-data 750
stat_is /var/lib/fastauth fastauth:fastauth 750
stat_is /var/log/fastauth fastauth:adm 2750

if command -v systemd-analyze >/dev/null 2>&1; then
	rc=0
	out=$(systemd-analyze verify "$UNIT" 2>&1) || rc=$?
	if [ "$rc" = 0 ] && [ -z "$out" ]; then
		pass "systemd-analyze verify $UNIT: clean"
	else
		fail "systemd-analyze verify $UNIT: clean (exit $rc)" "$out"
	fi
else
	note "systemd-analyze not installed: unit not verified"
fi
assert_eq "$(sed -n 's/^User=//p' "$UNIT")" fastauth "the unit runs as User=fastauth"
assert_eq "$(sed -n 's/^Group=//p' "$UNIT")" www-data "the unit runs as Group=www-data (the web server's)"
for h in NoNewPrivileges=yes ProtectSystem=strict PrivateTmp=yes ProtectHome=yes \
    RuntimeDirectory=fastauth 'ExecReload=/bin/kill -HUP $MAINPID'; do
	if grep -qxF "$h" "$UNIT"; then
		pass "the unit has $h"
	else
		fail "the unit has $h"
	fi
done

# Enabling the snippets as Debian users do (only links in /etc; no server
# is reloaded), then back to how it was.
if [ "$lighty_was_enabled" = 0 ] && command -v lighty-enable-mod >/dev/null; then
	lighty-enable-mod fastauth >"$T/lighty-enable-mod.log" 2>&1 || true
	if [ "$(readlink -f /etc/lighttpd/conf-enabled/50-fastauth.conf)" = "$LIGHTTPD_SNIPPET" ]; then
		pass "lighty-enable-mod fastauth links conf-enabled/50-fastauth.conf"
		# Debian's own lighttpd.conf with the snippet enabled is valid.
		if "$LIGHTTPD" -tt -f /etc/lighttpd/lighttpd.conf >"$T/lighty-tt.log" 2>&1; then
			pass "lighttpd -tt accepts /etc/lighttpd/lighttpd.conf with fastauth enabled"
		else
			fail "lighttpd -tt accepts /etc/lighttpd/lighttpd.conf with fastauth enabled" "$(cat "$T/lighty-tt.log")"
		fi
	else
		fail "lighty-enable-mod fastauth links conf-enabled/50-fastauth.conf" "$(cat "$T/lighty-enable-mod.log")"
	fi
	lighty-disable-mod fastauth >/dev/null 2>&1 || true
	rm -f /etc/lighttpd/conf-enabled/50-fastauth.conf
fi
if [ "$a2_was_enabled" = 0 ] && command -v a2enconf >/dev/null; then
	a2enconf -q fastauth >"$T/a2enconf.log" 2>&1 || true
	if [ "$(readlink -f /etc/apache2/conf-enabled/fastauth.conf)" = "$APACHE_SNIPPET" ]; then
		pass "a2enconf fastauth links conf-enabled/fastauth.conf"
	else
		fail "a2enconf fastauth links conf-enabled/fastauth.conf" "$(cat "$T/a2enconf.log")"
	fi
	# -p: forget the "disabled by admin" state too.
	a2disconf -q -p fastauth >/dev/null 2>&1 || true
	rm -f /etc/apache2/conf-enabled/fastauth.conf
fi

# --- 3. the installed fastauth, as the installed unit runs it ---------------
start_redis
export FASTAUTH_REDIS_URL=$REDIS_URL
export FASTAUTH_INSTANCE=$FA_INSTANCE
HTTP_PORT=$(free_port)
export FASTAUTH_ISSUER=http://127.0.0.1:$HTTP_PORT/auth
FA_CONF=/etc/fastauth/fastauth.conf

unit_user=$(sed -n 's/^User=//p' "$UNIT")
unit_group=$(sed -n 's/^Group=//p' "$UNIT")
read -r -a pre_cmd <<< "$(sed -n 's/^ExecStartPre=//p' "$UNIT")"
read -r -a start_cmd <<< "$(sed -n 's/^ExecStart=//p' "$UNIT")"
as_unit=(setpriv --reuid="$unit_user" --regid="$unit_group" --init-groups --)
if "${as_unit[@]}" "${pre_cmd[@]}" >"$T/check-config.log" 2>&1; then
	pass "the unit's ExecStartPre (${pre_cmd[*]}) passes"
else
	fail "the unit's ExecStartPre passes" "$(cat "$T/check-config.log")"
fi
[ ! -e "$SOCK" ] || die "$SOCK exists already: is a fastauth service running on this machine?"
FA_LOG=$T/fastauth.log
"${as_unit[@]}" "${start_cmd[@]}" </dev/null >"$FA_LOG" 2>&1 3>&- &
FA_PID=$!
fa_register "$FA_PID" "installed fastauth" "$FA_LOG"
wait_until 10 test -S "$SOCK" || {
	fa_check_alive fastauth "$FA_PID" "$FA_LOG"
	die "the installed fastauth: no socket $SOCK after 10 s"
}
pass "the installed fastauth (${start_cmd[*]}) listens on $SOCK"
stat_is "$SOCK" fastauth:www-data 660

# --- 4. lighttpd and Apache with the installed snippets ------------------------
# lighttpd opens its error log after becoming www-data.
mkdir -p "$T/www" "$T/lighttpd"
chown www-data: "$T/lighttpd"
cat > "$T/lighttpd.conf" <<EOF
# written by tests/package/install.sh: the installed snippet, as it is
server.document-root = "$T/www"
server.bind          = "127.0.0.1"
server.port          = $HTTP_PORT
server.errorlog      = "$T/lighttpd/error.log"
server.username      = "www-data"
server.groupname     = "www-data"
include "$LIGHTTPD_SNIPPET"
EOF
start_lighttpd "$T/lighttpd.conf" "$HTTP_PORT"
BASE=http://127.0.0.1:$HTTP_PORT/auth

setup_clients
check_core_flow "$BASE"
TOK=$(get_token "$BASE" app-a "$SECRET_A") || die "no token through lighttpd"
introspect "$BASE" "$TOK"
assert_json_field active true "installed lighttpd snippet: a fresh token is active"
assert_json_field client_id app-a
stop_pid "$LIGHTTPD_PID"

# Apache (its children run as www-data) with the installed mod_proxy_fcgi
# snippet.  The issuer names lighttpd's port: only discovery would differ.
APACHE_PORT=$(free_port)
start_apache "$APACHE_PORT" "$APACHE_SNIPPET"
ABASE=http://127.0.0.1:$APACHE_PORT/auth
wait_ready "$ABASE"
TOK=$(get_token "$ABASE" app-b "$SECRET_B") || die "no token through Apache"
introspect "$ABASE" "$TOK"
assert_json_field active true "installed Apache snippet: a fresh token is active"
assert_json_field client_id app-b
post_form "$ABASE/oauth2/revoke" "token=$TOK" -u "app-b:$SECRET_B"
assert_status 200 "installed Apache snippet: revoke -> 200"
introspect "$ABASE" "$TOK"
assert_json_equals '{"active":false}' "installed Apache snippet: revoked token inactive"
stop_pid "$APACHE_PID"

# SIGHUP reloads (the unit's ExecReload), SIGTERM stops and removes the socket.
kill -HUP "$FA_PID"
sleep 1
if fa_alive "$FA_PID"; then
	pass "SIGHUP: the installed fastauth reloads and keeps running"
else
	fail "SIGHUP: the installed fastauth keeps running" "$(tail -n 20 "$FA_LOG")"
fi
stop_pid "$FA_PID" 20
if [ ! -e "$SOCK" ]; then
	pass "SIGTERM: fastauth stopped and removed $SOCK"
else
	fail "SIGTERM: fastauth removed $SOCK"
fi
stop_redis
unset FASTAUTH_REDIS_URL FASTAUTH_INSTANCE FASTAUTH_ISSUER

# --- 5. remove, reinstall, purge ------------------------------------------------
"${APT[@]}" remove fastauth </dev/null >"$T/remove.log" 2>&1 ||
    die "apt-get remove fastauth failed" "$(tail -n 20 "$T/remove.log")"
if [ ! -e "$FASTAUTH" ] && [ -f /etc/fastauth/fastauth.conf ] && [ -f /etc/fastauth/kek ]; then
	pass "remove: programs gone, configuration and KEK kept"
else
	fail "remove: programs gone, configuration and KEK kept" "$(ls -l "$FASTAUTH" /etc/fastauth 2>&1)"
fi
echo "# changed by tests/package/install.sh" >> /etc/fastauth/fastauth.conf
"${APT[@]}" install --no-install-recommends "$deb" </dev/null >"$T/reinstall.log" 2>&1 ||
    die "reinstalling failed" "$(tail -n 30 "$T/reinstall.log")"
if tail -n 1 /etc/fastauth/fastauth.conf | grep -q 'changed by tests/package/install.sh'; then
	pass "reinstall: the changed /etc/fastauth/fastauth.conf is kept"
else
	fail "reinstall: the changed /etc/fastauth/fastauth.conf is kept"
fi
assert_eq "$(sha256sum /etc/fastauth/kek | cut -d' ' -f1)" "$kek_sum" "reinstall: the KEK is the same file"
stat_is /etc/fastauth/kek fastauth:fastauth 600

PKG_INSTALLED=0
pkg_purge || die "apt-get purge fastauth failed" "$(tail -n 20 "$T/purge.log")"
st=$(dpkg-query -W -f='${db:Status-Status}' fastauth 2>/dev/null || echo not-installed)
assert_eq "$st" not-installed "purge: dpkg forgets fastauth"
for p in /etc/fastauth /var/lib/fastauth /var/log/fastauth /run/fastauth "$UNIT" \
    "$FASTAUTH" "$FASTAUTHCTL" "$LIGHTTPD_SNIPPET" "$APACHE_SNIPPET" \
    /usr/share/fastauth /usr/lib/tmpfiles.d/fastauth.conf; do
	if [ -e "$p" ]; then
		fail "purge: $p is gone" "$(ls -ld "$p")"
	else
		pass "purge: $p is gone"
	fi
done
if id fastauth >/dev/null 2>&1; then
	pass "purge: the fastauth system user is kept (Debian practice)"
else
	fail "purge: the fastauth system user is kept"
fi
