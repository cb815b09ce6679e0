#!/bin/bash
# metrics.sh -- GET /metrics behind a private lighttpd spawning four fastauth
# processes (lighttpd/fastauth-spawn.conf with max-procs 4):
#  - access control: 403 (JSON error) without the bearer token or with a
#    wrong one; 200 with it;
#  - `promtool check metrics` accepts the exposition;
#  - after a scripted mix of requests, spread over the processes, the summed
#    counters grew by exactly what was sent;
#  - after SIGKILL of a responder, no counter went backwards, the dead
#    process's slot was folded (fastauth_processes_retired_total), and the
#    sums still match the requests sent afterwards;
#  - the token-guessing detector stays quiet on normal traffic (a few bad
#    tokens), fires once on a burst of random tokens from one address (audit
#    event, gauge, event counter), and anomaly_throttle then limits that
#    address with the "suspect" policy;
#  - the alert rules pass `promtool check rules` and `promtool test rules`,
#    and every metric name used by the rules and the Grafana dashboard is
#    one the service exports (checked against the real scrape).
[ -n "${BASH_VERSION:-}" ] || exec bash "$0" "$@"
. "$(dirname "$0")/lib.sh"

require "$REDIS_SERVER" "$REDIS_CLI" "$LIGHTTPD" curl python3 promtool
require_fastauth

PROCS=4
GUESS_THRESHOLD=30

start_redis
HTTP_PORT=$(free_port)
BASE=http://127.0.0.1:$HTTP_PORT/auth
head -c 24 /dev/urandom | base64 | tr -d '\n=+/' > "$T/metrics.token"
echo >> "$T/metrics.token"
MTOKEN=$(head -n 1 "$T/metrics.token")
write_fastauth_conf "$FA_CONF" "$BASE" \
    "threads 2" \
    "metrics_allow \"127.0.0.1/32, ::1\"" \
    "metrics_token_file $T/metrics.token" \
    "anomaly_invalid_tokens $GUESS_THRESHOLD" "anomaly_window 600" \
    "anomaly_throttle \"3/60s burst 3\"" \
    "ratelimit_introspect \"100000/1s burst 100000 by address\"" \
    "audit_log $T/audit.log"

ctl key init >/dev/null 2>"$T/ctl.err" || die "fastauthctl key init failed" "$(cat "$T/ctl.err")"
setup_clients

mkdir -p "$T/run"
install_conf "$top_srcdir/lighttpd/fastauth-spawn.conf" "$T/fastauth-spawn.conf" \
    "/usr/sbin/fastauth -c /etc/fastauth/fastauth.conf" "$FASTAUTH -c $FA_CONF" \
    "/run/lighttpd/fastauth.sock" "$T/run/fastauth.sock" \
    '"max-procs"   => 2' "\"max-procs\"   => $PROCS"
make_lighttpd_conf "$T/lighttpd.conf" "$HTTP_PORT" "$T/fastauth-spawn.conf"
start_lighttpd "$T/lighttpd.conf" "$HTTP_PORT"
wait_ready "$BASE"

responders() { ps -o pid= --ppid "$LIGHTTPD_PID" | tr -d ' ' | sort -n | tr '\n' ' '; }
RESPONDERS=$(responders)
assert_eq "$(echo "$RESPONDERS" | wc -w)" "$PROCS" "lighttpd spawned $PROCS fastauth processes"

# --- access control ------------------------------------------------------------

http GET "$BASE/metrics"
assert_status 403 "GET /metrics without a token"
assert_json_field error access_denied "403 carries a JSON error"
http GET "$BASE/metrics" -H "Authorization: Bearer wrong-token-of-some-length"
assert_status 403 "GET /metrics with a wrong token"
http GET "$BASE/metrics" -H "Authorization: Basic $(printf 'x:%s' "$MTOKEN" | base64)"
assert_status 403 "GET /metrics with the token as Basic credentials"

# scrape FILE: GET /metrics with the token into FILE.
N_SCRAPES=0
scrape() {
	http GET "$BASE/metrics" -H "Authorization: Bearer $MTOKEN"
	N_SCRAPES=$((N_SCRAPES + 1))
	if [ "$HTTP_STATUS" != 200 ]; then
		fa_fail_http "GET /metrics with the bearer token"
		return 1
	fi
	cp "$HTTP_BODY_FILE" "$1"
}
scrape "$T/m0" && pass "GET /metrics with the bearer token -> 200"
assert_header Content-Type 'text/plain; version=0.0.4; charset=utf-8' "exposition content type"
if promtool check metrics < "$T/m0" > "$T/promtool.out" 2>&1; then
	pass "promtool check metrics accepts the exposition"
else
	fail "promtool check metrics" "$(head -n 20 "$T/promtool.out")"
fi

# mval FILE SERIES: a sample's value (0 if absent), SERIES written exactly as
# the exposition writes it: name{label="v",...}.
mval() {
	awk -v k="$2" '$1 == k { v = $2 } END { print v == "" ? 0 : v }' "$1"
}
# mdelta A B SERIES: B - A for an integer counter.
mdelta() {
	echo $(( $(mval "$2" "$3") - $(mval "$1" "$3") ))
}
assert_delta() {	# A B SERIES WANT DESC
	assert_eq "$(mdelta "$1" "$2" "$3")" "$4" "$5 ($3)"
}

assert_eq "$(mval "$T/m0" fastauth_processes)" "$PROCS" "fastauth_processes counts the $PROCS responders"
assert_match "$(grep -c '^fastauth_redis_circuit_state{pid=' "$T/m0")" "^$PROCS\$" \
    "one fastauth_redis_circuit_state series per process"
assert_match "$(grep '^fastauth_build_info{' "$T/m0")" \
    '^fastauth_build_info\{version="[0-9.]+",libgcrypt="[0-9.]+",hw_features="[^"]*"\} 1$' \
    "fastauth_build_info carries the version and libgcrypt's features"

# --- a scripted mix -----------------------------------------------------------

N_TOKEN=24 N_BADAUTH=5 N_INTROSPECT=18 N_BAD_TOKEN=4 N_REVOKE=6 N_HEALTH=9 N_404=3
mix() {
	local i tok
	TOKENS=()
	for i in $(seq "$N_TOKEN"); do
		tok=$(get_token "$BASE" app-a "$SECRET_A") || true
		TOKENS+=("$tok")
	done
	for i in $(seq "$N_BADAUTH"); do
		post_form "$BASE/oauth2/token" "grant_type=client_credentials" -u "app-a:wrong$i"
		[ "$HTTP_STATUS" = 401 ] || fa_fail_http "wrong secret -> 401"
	done
	for i in $(seq "$N_INTROSPECT"); do
		introspect "$BASE" "${TOKENS[$((i % N_TOKEN))]}"
		[ "$HTTP_STATUS" = 200 ] || fa_fail_http "introspect -> 200"
	done
	# A few bad tokens: ordinary noise, below the detector's threshold.
	for i in $(seq "$N_BAD_TOKEN"); do
		introspect "$BASE" "fa1.garbage$i"
	done
	for i in $(seq "$N_REVOKE"); do
		post_form "$BASE/oauth2/revoke" "token=${TOKENS[$i]}" -u "app-a:$SECRET_A"
		[ "$HTTP_STATUS" = 200 ] || fa_fail_http "revoke -> 200"
	done
	for i in $(seq "$N_HEALTH"); do
		http GET "$BASE/health"
	done
	for i in $(seq "$N_404"); do
		http GET "$BASE/no/such/thing"
	done
}

# check_mix A B: B's counters grew by exactly one mix over A's.
check_mix() {
	local a=$1 b=$2
	assert_delta "$a" "$b" 'fastauth_requests_total{endpoint="token",status="200"}' "$N_TOKEN" "token 200s"
	assert_delta "$a" "$b" 'fastauth_requests_total{endpoint="token",status="401"}' "$N_BADAUTH" "token 401s"
	assert_delta "$a" "$b" 'fastauth_requests_total{endpoint="introspect",status="200"}' \
	    "$((N_INTROSPECT + N_BAD_TOKEN))" "introspect 200s"
	assert_delta "$a" "$b" 'fastauth_requests_total{endpoint="revoke",status="200"}' "$N_REVOKE" "revoke 200s"
	assert_delta "$a" "$b" 'fastauth_requests_total{endpoint="health",status="200"}' "$N_HEALTH" "health 200s"
	assert_delta "$a" "$b" 'fastauth_requests_total{endpoint="other",status="404"}' "$N_404" "404s"
	assert_delta "$a" "$b" 'fastauth_request_duration_seconds_count{endpoint="token"}' \
	    "$((N_TOKEN + N_BADAUTH))" "token duration histogram count"
	assert_delta "$a" "$b" 'fastauth_request_duration_seconds_bucket{endpoint="token",le="+Inf"}' \
	    "$((N_TOKEN + N_BADAUTH))" "token histogram +Inf bucket"
	assert_delta "$a" "$b" 'fastauth_tokens_issued_total{grant="client_credentials"}' "$N_TOKEN" "tokens issued"
	assert_delta "$a" "$b" 'fastauth_tokens_introspected_total{result="active"}' \
	    "$N_INTROSPECT" "active introspections"
	assert_delta "$a" "$b" 'fastauth_tokens_introspected_total{result="inactive"}' "$N_BAD_TOKEN" "inactive introspections"
	assert_delta "$a" "$b" 'fastauth_tokens_revoked_total{kind="access"}' "$N_REVOKE" "access tokens revoked"
	assert_delta "$a" "$b" 'fastauth_invalid_tokens_total' "$N_BAD_TOKEN" "invalid tokens"
	assert_delta "$a" "$b" 'fastauth_security_events_total{type="client_auth_failure"}' "$N_BADAUTH" "client auth failure events"
	assert_delta "$a" "$b" 'fastauth_ratelimit_decisions_total{policy="token",decision="allowed"}' \
	    "$((N_TOKEN + N_BADAUTH))" "token limiter decisions"
	assert_delta "$a" "$b" 'fastauth_requests_total{endpoint="metrics",status="200"}' \
	    "$((N_SCRAPES_B - N_SCRAPES_A))" "scrapes in between"
}

# The processes that answered: each one's request threads count in its slot.
# A scrape counts itself in the next one: between A and B, A's own request.
scrape "$T/m1"; N_SCRAPES_A=$N_SCRAPES
mix
scrape "$T/m2"; N_SCRAPES_B=$N_SCRAPES
check_mix "$T/m1" "$T/m2"
if awk '/^fastauth_redis_circuit_state/ { n++ } END { exit !(n == 4) }' "$T/m2"; then
	pass "4 live slots after the mix"
else
	fail "4 live slots after the mix" "$(grep circuit_state "$T/m2")"
fi

# --- SIGKILL a responder: nothing goes backwards ------------------------------

# counters FILE: every counter-like sample (name{labels} value) of FILE.
counters() {
	grep -E '^fastauth_[a-z0-9_]+(_total|_bucket|_count|_sum)(\{| )' "$1" | sort
}
never_backwards() {	# A B DESC
	if python3 - "$1" "$2" > "$T/backwards.out" <<'EOF'

import re, sys
def load(p):
    d = {}
    for line in open(p):
        m = re.match(r'^(fastauth_\S+?(?:_total|_bucket|_count|_sum)(?:\{[^}]*\})?) (\S+)$', line)
        if m:
            d[m.group(1)] = float(m.group(2))
    return d
a, b = load(sys.argv[1]), load(sys.argv[2])
bad = [k for k in a if b.get(k, 0.0) < a[k]]
for k in bad:
    print("%s: %s -> %s" % (k, a[k], b.get(k)))
print("checked %d series" % len(a))
sys.exit(1 if bad else 0)
EOF
	then
		pass "$3: no counter went backwards ($(tail -n 1 "$T/backwards.out"))"
	else
		fail "$3: counters went backwards" "$(head -n 10 "$T/backwards.out")"
	fi
}

VICTIM=$(echo "$RESPONDERS" | awk '{ print $2 }')
kill -KILL "$VICTIM"
note "SIGKILL responder $VICTIM"
wait_until 10 bash -c "! kill -0 $VICTIM 2>/dev/null" || fail "responder $VICTIM still there"
# lighttpd starts a replacement; scrape until the dead slot is folded.
folded() {
	scrape "$T/m3" >/dev/null 2>&1 || return 1
	[ "$(mval "$T/m3" fastauth_processes_retired_total)" -gt \
	    "$(mval "$T/m2" fastauth_processes_retired_total)" ]
}
if wait_until 15 folded; then
	pass "the killed process's slot was folded into the retired slot"
else
	fail "dead slot folded" "$(grep -E 'processes' "$T/m3")"
fi
never_backwards "$T/m2" "$T/m3" "after SIGKILL"
wait_until 15 bash -c "[ \$(ps -o pid= --ppid $LIGHTTPD_PID | wc -l) = $PROCS ]" ||
    fail "lighttpd restarted the responder"
wait_ready "$BASE"
scrape "$T/m4"; N_SCRAPES_A=$N_SCRAPES
mix
scrape "$T/m5"; N_SCRAPES_B=$N_SCRAPES
check_mix "$T/m4" "$T/m5"
never_backwards "$T/m3" "$T/m5" "after the replacement served"

STATS=$(ctl shm stats 2>"$T/ctl.err") || fail "fastauthctl shm stats" "$(cat "$T/ctl.err")"
assert_match "$(printf '%s\n' "$STATS" | grep '^metrics:')" \
    "^metrics: $PROCS of 64 slots live, [1-9][0-9]* dead processes folded, 0 without a slot" \
    "fastauthctl shm stats shows the metrics slots"

# --- the token-guessing detector -----------------------------------------------

assert_eq "$(grep -c token_guessing_suspected "$T/audit.log" || true)" 0 \
    "no token_guessing_suspected event on normal traffic"
assert_eq "$(mval "$T/m5" 'fastauth_security_suspected_addresses{kind="invalid_token"}')" 0 \
    "no suspected address on normal traffic"
python3 - "$BASE" "$SECRET_I" "$((GUESS_THRESHOLD + 10))" > "$T/guess.out" <<'EOF'
import base64, os, sys, urllib.request, urllib.parse, urllib.error
base, secret, n = sys.argv[1], sys.argv[2], int(sys.argv[3])
auth = base64.b64encode(("introspector:" + secret).encode()).decode()
codes = {}
for i in range(n):
    tok = "fa1." + base64.urlsafe_b64encode(os.urandom(60)).decode().rstrip("=")
    req = urllib.request.Request(base + "/oauth2/introspect",
        data=urllib.parse.urlencode({"token": tok}).encode(),
        headers={"Authorization": "Basic " + auth,
                 "Content-Type": "application/x-www-form-urlencoded"})
    try:
        code = urllib.request.urlopen(req, timeout=10).status
    except urllib.error.HTTPError as e:
        code = e.code
    codes[code] = codes.get(code, 0) + 1
print(" ".join("%d:%d" % kv for kv in sorted(codes.items())))
EOF
note "random-token burst answered: $(cat "$T/guess.out")"
assert_eq "$(grep -c '"type":"token_guessing_suspected"' "$T/audit.log" || true)" 1 \
    "one token_guessing_suspected event for the burst"
assert_match "$(grep '"type":"token_guessing_suspected"' "$T/audit.log" | head -n 1)" \
    '"severity":"critical".*"remote_addr":"127.0.0.1"' "the event names the address"
if grep '"type":"token_guessing_suspected"' "$T/audit.log" | grep -q 'fa1\.'; then
	fail "the event must not carry a token"
else
	pass "the event carries no token"
fi
scrape "$T/m6"
assert_eq "$(mval "$T/m6" 'fastauth_security_suspected_addresses{kind="invalid_token"}')" 1 \
    "fastauth_security_suspected_addresses{kind=invalid_token} is 1"
assert_eq "$(mval "$T/m6" 'fastauth_security_events_total{type="token_guessing_suspected"}')" 1 \
    "fastauth_security_events_total counts the alarm once"
assert_match "$(cat "$T/guess.out")" '429:' "anomaly_throttle limited the suspect address (429)"
assert_match "$(mval "$T/m6" 'fastauth_ratelimit_decisions_total{policy="suspect",decision="limited"}')" \
    '^[1-9][0-9]*$' "limited decisions of the suspect policy counted"
never_backwards "$T/m5" "$T/m6" "after the burst"
if promtool check metrics < "$T/m6" > "$T/promtool.out" 2>&1; then
	pass "promtool check metrics accepts the final exposition"
else
	fail "promtool check metrics (final)" "$(head -n 20 "$T/promtool.out")"
fi

# --- operator files: alert rules and dashboard ---------------------------------

RULES=$top_srcdir/etc/prometheus/fastauth-alerts.yml
if promtool check rules "$RULES" > "$T/rules.out" 2>&1; then
	pass "promtool check rules etc/prometheus/fastauth-alerts.yml"
else
	fail "promtool check rules" "$(cat "$T/rules.out")"
fi
if (cd "$top_srcdir/etc/prometheus" && promtool test rules fastauth-alerts.test.yml) \
    > "$T/rules-test.out" 2>&1; then
	pass "promtool test rules etc/prometheus/fastauth-alerts.test.yml"
else
	fail "promtool test rules" "$(tail -n 30 "$T/rules-test.out")"
fi
if python3 - "$T/m6" "$RULES" "$top_srcdir/etc/grafana/fastauth-dashboard.json" \
    > "$T/names.out" 2>&1 <<'EOF'
import json, re, sys
scrape, rules, dash = sys.argv[1:4]
exported = set()
for line in open(scrape):
    m = re.match(r'^# TYPE (\S+) (\S+)', line)
    if m:
        exported.add(m.group(1))
        if m.group(2) == "histogram":
            exported.update(m.group(1) + s for s in ("_bucket", "_sum", "_count"))
def names(expr):
    return set(re.findall(r'\b(fastauth_[a-z0-9_]+)', expr))
bad = []
d = json.load(open(dash))
exprs = []
def walk(o):
    if isinstance(o, dict):
        for k, v in o.items():
            if k == "expr" and isinstance(v, str):
                exprs.append(v)
            walk(v)
    elif isinstance(o, list):
        for v in o:
            walk(v)
walk(d)
if not exprs:
    bad.append("dashboard has no queries")
panels = [p for p in d.get("panels", []) if p.get("type") != "row"]
for e in exprs:
    for n in names(e) - exported:
        bad.append("dashboard: %s" % n)
# Only expressions name metrics in the rules file (comments aside).
text = "".join(l for l in open(rules) if not l.lstrip().startswith("#"))
for n in names(text) - exported:
    bad.append("rules: %s" % n)
for b in bad:
    print(b)
print("%d dashboard queries in %d panels, %d exported names" % (len(exprs), len(panels), len(exported)))
sys.exit(1 if bad else 0)
EOF
then
	pass "dashboard JSON valid; every metric its queries and the rules use is exported ($(tail -n 1 "$T/names.out"))"
else
	fail "metric names in dashboard/rules not exported" "$(head -n 20 "$T/names.out")"
fi
