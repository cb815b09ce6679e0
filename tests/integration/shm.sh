#!/bin/bash
# shm.sh -- the shared-memory segment in the request path, end to end, with
# real processes: lighttpd spawning fastauth (lighttpd/fastauth-spawn.conf,
# max-procs raised to 4, threads 2) as instance A, and a second
# lighttpd+fastauth stack, instance B (another segment, max-procs 2), on the
# same Redis:
#  a. ratelimit_token "20/60s burst 20 by client": 40 token requests allow 20
#     in total across the 4 processes, not 20 per process (sent round robin
#     to the 4 responders' FastCGI sockets, and 8 at a time through
#     lighttpd); 429 with Retry-After, RateLimit-Policy, RateLimit and a JSON
#     error; Retry-After is truthful; other clients are unaffected;
#     fastauthctl shm stats counts the decisions and the cache hits;
#  b. ratelimit_revoke "... cluster": one budget across A and B; a token
#     revoked through A is inactive on B, whose cache vouched for it, within
#     100 ms (measured, best of 3); B does not believe its cache after its
#     subscriber was cut off (a revocation it could have missed); how long B
#     vouches for a revoked token while its mirror leader is frozen;
#  d. fastauthctl client rotate-secret: the old secret is refused at once by
#     every process of both instances; client add and remove take effect at
#     once; fastauthctl cache flush empties every instance's cache;
#  e. responders SIGKILLed 5 times under load (A's mirror leader first):
#     requests keep succeeding, shm stats works, the counters add up, the
#     limiter still counts across processes, a new leader takes the mirror
#     over;
#  f. restarted with another shm_cache_entries: the segment is replaced (new
#     size), the new processes work and share it; then one responder dies
#     after fastauth.conf was edited again and lighttpd respawns it with the
#     new sizes: the four must still share one limiter;
#  c. (last: it restarts Redis) the mirror fails closed: Redis frozen
#     (SIGSTOP) or stopped, B stops answering active:true from its cache and
#     says 503; Redis back (same data, from its append-only file), answers
#     come back on every responder.
#
# Measured figures are printed as "# ..." notes.  lighttpd hands a request to
# the least loaded responder and, among idle ones, always the same: requests
# sent one after the other through it reach one process only, hence the
# direct FastCGI requests (a small client in $TOOL).  fastcgi.debug = 1 is
# added to the test's lighttpd.conf (not to the shipped snippet) to see which
# responders served what; redis_backoff_max_ms 1000 keeps the test short.
[ -n "${BASH_VERSION:-}" ] || exec bash "$0" "$@"
. "$(dirname "$0")/lib.sh"

require "$REDIS_SERVER" "$REDIS_CLI" "$LIGHTTPD" curl python3
require_fastauth

INST_A=$FA_INSTANCE
INST_B=$FA_INSTANCE-b
PFX="fat:$$:"		# write_fastauth_conf's redis_prefix
TOOL=$T/shmtool.py

# lib.sh removes the segment of $FA_INSTANCE; B's is ours to remove too, after
# every process that could recreate it has stopped.
shm_on_exit() {
	local rc=$?
	set +e
	trap - ERR
	fa_stop_all
	rm -f "/dev/shm/fastauth.$INST_B"
	(exit "$rc")
	fa_on_exit
}
trap shm_on_exit EXIT

rcli() {
	"$REDIS_CLI" -h 127.0.0.1 -p "$REDIS_PORT" "$@"
}

# conf_for INSTANCE FILE ISSUER [lines...]: write_fastauth_conf for an instance.
conf_for() {
	local FA_INSTANCE=$1
	shift
	write_fastauth_conf "$@"
}

# spawn_stack NAME CONF PORT PROCS: lighttpd spawning PROCS fastauth
# responders with the shipped snippet; sets STACK_PID (lighttpd's pid).
spawn_stack() {
	local name=$1 conf=$2 port=$3 procs=$4
	mkdir -p "$T/run-$name"
	install_conf "$top_srcdir/lighttpd/fastauth-spawn.conf" "$T/$name-spawn.conf" \
	    "/usr/sbin/fastauth -c /etc/fastauth/fastauth.conf" "$FASTAUTH -c $conf" \
	    "/run/lighttpd/fastauth.sock" "$T/run-$name/fastauth.sock" \
	    '"max-procs"   => 2,' "\"max-procs\"   => $procs,"
	make_lighttpd_conf "$T/$name-lighttpd.conf" "$port" "$T/$name-spawn.conf"
	echo 'fastcgi.debug = 1' >> "$T/$name-lighttpd.conf"
	start_lighttpd "$T/$name-lighttpd.conf" "$port"
	STACK_PID=$LIGHTTPD_PID
}

# responders LIGHTTPD_PID: the fastauth processes it spawned, one a line.
responders() {
	ps -o pid= --ppid "$1" 2>/dev/null | tr -d ' ' || true
}

# sock_pid SOCKET: the responder listening on a FastCGI socket (its fd 0).
sock_pid() {
	python3 - "$1" <<'PY'
import os, sys
inodes = {}
for l in open("/proc/net/unix"):
    f = l.split()
    if len(f) >= 8 and f[7] == sys.argv[1]:
        inodes[f[6]] = True
for p in os.listdir("/proc"):
    try:
        if os.readlink("/proc/%s/fd/0" % p).strip("socket:[]") in inodes:
            print(p)
    except OSError:
        pass
PY
}

nresponders_is() {	# LIGHTTPD_PID N
	[ "$(responders "$1" | wc -l)" = "$2" ]
}

# The pids lighttpd handed requests to since line $2 of error log $1.
served_by() {
	tail -n +"$(($2 + 1))" "$1" | sed -n 's/.*got proc: pid: \([0-9]*\) .*/\1/p' | sort -u
}

log_lines() {
	wc -l < "$1"
}

# stats CONF: fastauthctl shm stats for the instance of CONF into $STATS
# (fails the test if it does not work).
STATS=""
stats() {
	local rc=0
	STATS=$("$FASTAUTHCTL" -c "$1" shm stats 2>"$T/stats.err") || rc=$?
	if [ "$rc" != 0 ]; then
		fail "fastauthctl -c $1 shm stats exits 0" "exit $rc" "$(cat "$T/stats.err")"
		STATS=""
		return 1
	fi
}
# rl_allowed CLASS / rl_limited CLASS / cache_hits KIND / cache_misses KIND /
# cache_gen / cache_used / cache_slots / mirror_messages / seg_size / seg_creator:
# figures from $STATS (empty if absent).
rl_allowed() { printf '%s\n' "$STATS" | sed -n "s/^  $1 *allowed \([0-9]*\), limited [0-9]*$/\1/p"; }
rl_limited() { printf '%s\n' "$STATS" | sed -n "s/^  $1 *allowed [0-9]*, limited \([0-9]*\)$/\1/p"; }
cache_hits() { printf '%s\n' "$STATS" | sed -n "s/^  $1 *hits \([0-9]*\), misses.*/\1/p"; }
cache_misses() { printf '%s\n' "$STATS" | sed -n "s/^  $1 *hits [0-9]*, misses \([0-9]*\),.*/\1/p"; }
cache_gen() { printf '%s\n' "$STATS" | sed -n 's/.*, generation \([0-9]*\)$/\1/p'; }
cache_used() { printf '%s\n' "$STATS" | sed -n 's/^cache: \([0-9]*\) of [0-9]* slots.*/\1/p'; }
cache_slots() { printf '%s\n' "$STATS" | sed -n 's/^cache: [0-9]* of \([0-9]*\) slots.*/\1/p'; }
mirror_messages() { printf '%s\n' "$STATS" | sed -n 's/^revocation mirror: .*, \([0-9]*\) messages applied$/\1/p'; }
mirror_in_sync() { printf '%s\n' "$STATS" | grep -q '^revocation mirror: in sync'; }
seg_size() { printf '%s\n' "$STATS" | sed -n 's/^segment .*: \([0-9]*\) bytes,.*/\1/p'; }
seg_creator() { printf '%s\n' "$STATS" | sed -n 's/^segment .*, created by pid \([0-9]*\)$/\1/p'; }
metrics_live() { printf '%s\n' "$STATS" | sed -n 's/^metrics: \([0-9]*\) of [0-9]* slots live.*/\1/p'; }
# all_attached CONF N: N processes hold a metrics slot in the instance's
# current segment, i.e. every responder follows it.
all_attached() {
	stats "$1" && [ "$(metrics_live)" = "$2" ]
}

# in_sync CONF: the instance's revocation mirror says it is subscribed.
in_sync() {
	stats "$1" && mirror_in_sync
}

now_s() {
	date +%s.%N
}

# is_int VALUE: a non-negative decimal integer.
is_int() {
	case $1 in
	''|*[!0-9]*) return 1 ;;
	esac
}

# json_get FIELD JSON: a field of a JSON object given as text.
json_get() {
	python3 -c 'import json, sys
v = json.loads(sys.argv[2]).get(sys.argv[1])
print(json.dumps(v) if not isinstance(v, str) else v)' "$1" "$2"
}

# intro_b TOKEN / intro_a TOKEN: introspect as the introspector.
intro_a() { introspect "$BASE_A" "$1"; }
intro_b() { introspect "$BASE_B" "$1"; }

# add_client ID: a client_credentials client; prints its secret.
add_client() {
	ctl_secret client add --id "$1" --scope read --grant client_credentials
}

# count STATUS FILE: lines of FILE whose last field is STATUS.
count() {
	awk -v s="$1" '$NF == s { n++ } END { print n + 0 }' "$2"
}
cat > "$TOOL" <<'EOF'
# shmtool.py -- the client side of tests/integration/shm.sh: a FastCGI client
# to reach one responder directly, pollers that time-stamp every answer, a
# load generator, and the analysis of what the pollers saw.
import base64, http.client, json, socket, struct, sys, threading, time
from urllib.parse import urlsplit

def basic(cred):
    return 'Basic ' + base64.b64encode(cred.encode()).decode()

# --- a FastCGI client: one request per connection, as lighttpd does ------

def fcgi_record(rtype, content, rid=1):
    out = b''
    while True:
        chunk, content = content[:65535], content[65535:]
        pad = -len(chunk) % 8
        out += struct.pack('>BBHHBx', 1, rtype, rid, len(chunk), pad) + chunk + b'\0' * pad
        if not content:
            return out

def fcgi_nv(k, v):
    k, v = k.encode(), v.encode()
    enc = lambda n: bytes([n]) if n < 128 else struct.pack('>I', n | 0x80000000)
    return enc(len(k)) + enc(len(v)) + k + v

def fcgi_post(sock, path, body, cred, timeout=10):
    body = body.encode()
    params = {
        'GATEWAY_INTERFACE': 'CGI/1.1', 'SERVER_PROTOCOL': 'HTTP/1.1',
        'REQUEST_METHOD': 'POST', 'SCRIPT_NAME': '/auth', 'PATH_INFO': path,
        'REQUEST_URI': '/auth' + path, 'CONTENT_TYPE': 'application/x-www-form-urlencoded',
        'CONTENT_LENGTH': str(len(body)), 'HTTP_AUTHORIZATION': basic(cred),
        'REMOTE_ADDR': '127.0.0.1', 'SERVER_NAME': '127.0.0.1', 'SERVER_PORT': '80',
    }
    s = socket.socket(socket.AF_UNIX)
    s.settimeout(timeout)
    s.connect(sock)
    msg = fcgi_record(1, struct.pack('>HB5x', 1, 0))
    msg += fcgi_record(4, b''.join(fcgi_nv(k, v) for k, v in params.items())) + fcgi_record(4, b'')
    if body:
        msg += fcgi_record(5, body)
    msg += fcgi_record(5, b'')
    s.sendall(msg)
    buf, out = b'', b''
    while True:
        while len(buf) < 8:
            d = s.recv(65536)
            if not d:
                raise IOError('connection closed')
            buf += d
        _, rtype, _, clen, pad = struct.unpack('>BBHHBx', buf[:8])
        while len(buf) < 8 + clen + pad:
            d = s.recv(65536)
            if not d:
                raise IOError('connection closed')
            buf += d
        content, buf = buf[8:8 + clen], buf[8 + clen + pad:]
        if rtype == 6:
            out += content
        elif rtype == 3:
            break
    s.close()
    head, _, rbody = out.partition(b'\r\n\r\n')
    status, headers = 200, []
    for line in head.decode('latin-1').split('\r\n'):
        k, _, v = line.partition(':')
        if k.lower() == 'status':
            status = int(v.split()[0])
        headers.append(line)
    return status, headers, rbody

def cmd_fcgi_rr(a):
    """fcgi-rr OUTDIR PATH BODY CRED N SOCK...: N sequential requests, round
    robin over the sockets; each response in OUTDIR/i.headers, i.body."""
    outdir, path, body, cred, n, socks = a[0], a[1], a[2], a[3], int(a[4]), a[5:]
    t0 = time.monotonic()
    for i in range(n):
        k = i % len(socks)
        try:
            st, hd, bd = fcgi_post(socks[k], path, body, cred)
        except Exception as e:
            st, hd, bd = 0, [], str(e).encode()
        with open('%s/%d.headers' % (outdir, i), 'w') as f:
            f.write('HTTP/1.1 %d\r\n' % st + ''.join(h + '\r\n' for h in hd) + '\r\n')
        with open('%s/%d.body' % (outdir, i), 'wb') as f:
            f.write(bd)
        print(i, k, st)
    print('elapsed_ms', int((time.monotonic() - t0) * 1000))

# --- HTTP --------------------------------------------------------------

def post(url, body, cred, timeout=5):
    u = urlsplit(url)
    c = http.client.HTTPConnection(u.hostname, u.port, timeout=timeout)
    try:
        c.request('POST', u.path, body, {'Authorization': basic(cred),
            'Content-Type': 'application/x-www-form-urlencoded'})
        r = c.getresponse()
        data = r.read()
        return r.status, data
    except Exception:
        return 0, b''
    finally:
        c.close()

def req(target, path, body, cred, timeout=5):
    """POST to BASE_URL + path, or to a responder's FastCGI socket ("unix:PATH")."""
    if target.startswith('unix:'):
        try:
            st, _, data = fcgi_post(target[5:], path, body, cred, timeout)
            return st, data
        except Exception:
            return 0, b''
    return post(target + path, body, cred, timeout)

def active(st, data):
    if st != 200:
        return None
    try:
        return json.loads(data).get('active')
    except Exception:
        return None

def cmd_revoke_race(a):
    """revoke-race BASE_A BASE_B TOKEN OWNER_CRED INTROSPECT_CRED: poll B's
    introspection in a tight loop while the token is revoked through A."""
    base_a, base_b, tok, owner, intro = a
    polls, stop = [], threading.Event()
    def poller():
        while not stop.is_set():
            ts = time.time()
            st, data = req(base_b, '/oauth2/introspect', 'token=' + tok, intro, 2)
            polls.append((ts, time.time(), st, active(st, data)))
    th = threading.Thread(target=poller)
    th.start()
    time.sleep(0.15)
    t_send = time.time()
    st, _ = post(base_a + '/oauth2/revoke', 'token=' + tok, owner)
    t_done = time.time()
    deadline = time.time() + 3
    while time.time() < deadline:
        if any(p[0] > t_done and p[3] is False for p in polls):
            break
        time.sleep(0.005)
    time.sleep(0.05)
    stop.set()
    th.join()
    before = [p for p in polls if p[1] < t_send]
    first_inactive = next((p for p in polls if p[3] is False), None)
    stale = [p for p in polls if p[0] > t_done and p[3] is not False]
    res = {
        'revoke_status': st, 'revoke_ms': round((t_done - t_send) * 1000, 1),
        'polls': len(polls), 'active_before': sum(1 for p in before if p[3] is True),
        'polls_before': len(before),
        'inactive': first_inactive is not None,
        # from the revoke's 200 to the first inactive answer B gave
        'latency_ms': None if first_inactive is None else
            round(max(0.0, first_inactive[1] - t_done) * 1000, 1),
        # answers other than inactive to polls sent after the revoke's 200
        'stale_after_revoke': len(stale),
        'stale_statuses': sorted(set('%s/%s' % (p[2], p[3]) for p in stale)),
        'poll_ms': round(sum(p[1] - p[0] for p in polls) / max(1, len(polls)) * 1000, 1),
    }
    print(json.dumps(res))

def cmd_watch(a):
    """watch URL BODY CRED SECONDS INTERVAL_MS: one line per request:
    send_time recv_time status active (until SECONDS pass)."""
    url, body, cred, secs, iv = a[0], a[1], a[2], float(a[3]), float(a[4]) / 1000
    end = time.time() + secs
    while time.time() < end:
        ts = time.time()
        st, data = post(url, body, cred, timeout=3)
        print('%.4f %.4f %d %s' % (ts, time.time(), st, active(st, data)), flush=True)
        time.sleep(iv)

def cmd_load(a):
    """load SECONDS THREADS BASE TOKEN INTROSPECT_CRED TOKEN_CRED: requests
    alternating introspection and token, one line each: time kind status."""
    secs, nth, base, tok, intro, tcred = float(a[0]), int(a[1]), a[2], a[3], a[4], a[5]
    end = time.time() + secs
    lock = threading.Lock()
    def worker(w):
        i = w
        while time.time() < end:
            ts = time.time()
            if i % 2 == 0:
                st, data = post(base + '/oauth2/introspect', 'token=' + tok, intro)
                # a 200 that does not say active:true is a wrong answer
                kind = 'introspect-bad' if st == 200 and active(st, data) is not True else 'introspect'
            else:
                st, data = post(base + '/oauth2/token', 'grant_type=client_credentials', tcred)
                kind = 'token'
            with lock:
                print('%.4f %s %d' % (ts, kind, st), flush=True)
            i += 1
    ths = [threading.Thread(target=worker, args=(w,)) for w in range(nth)]
    for t in ths:
        t.start()
    for t in ths:
        t.join()

def cmd_analyze_watch(a):
    """analyze-watch FILE T_EVENT T_DONE: what the watch saw after an event
    that started at T_EVENT and was complete at T_DONE (epoch seconds)."""
    rows = []
    for line in open(a[0]):
        ts, tr, st, act = line.split()
        rows.append((float(ts), float(tr), int(st), act))
    t_ev, t_done = float(a[1]), float(a[2])
    after = [r for r in rows if r[0] >= t_ev]
    first_off = next((r for r in after if r[3] != 'True'), None)
    res = {
        'polls': len(after),
        # from the event to the first answer that was not active:true
        'first_not_active_ms': None if first_off is None else round((first_off[1] - t_ev) * 1000),
        'first_not_active_status': None if first_off is None else first_off[2],
        # how long after the event was complete B still said active:true
        'vouched_after_done_ms': max([round((r[0] - t_done) * 1000) for r in after
                                      if r[0] > t_done and r[3] == 'True'] or [0]),
        'active_after_first_off': 0 if first_off is None else
            sum(1 for r in after if r[0] > first_off[1] and r[3] == 'True'),
        'statuses': sorted(set('%d/%s' % (r[2], r[3]) for r in after)),
    }
    print(json.dumps(res))

cmds = {'fcgi-rr': cmd_fcgi_rr, 'revoke-race': cmd_revoke_race, 'watch': cmd_watch,
        'load': cmd_load, 'analyze-watch': cmd_analyze_watch}
cmds[sys.argv[1]](sys.argv[2:])
EOF

# --- setup: Redis, clients, stack A (4 responders) and stack B (2) -----------
REDIS_OPTS=(--appendonly yes --appendfsync always)
start_redis "$(free_port)" "${REDIS_OPTS[@]}"
PORT_A=$(free_port)
PORT_B=$(free_port)
BASE_A=http://127.0.0.1:$PORT_A/auth
BASE_B=http://127.0.0.1:$PORT_B/auth
COMMON=("threads 2" 'ratelimit_token "20/60s burst 20 by client"'
    'ratelimit_revoke "10/60s burst 10 by client cluster"' "redis_backoff_max_ms 1000")
conf_for "$INST_A" "$FA_CONF" "$BASE_A" "${COMMON[@]}"
CONF_B=$T/fastauth-b.conf
conf_for "$INST_B" "$CONF_B" "$BASE_B" "${COMMON[@]}"

ctl key init >/dev/null 2>"$T/ctl.err" || die "fastauthctl key init failed" "$(cat "$T/ctl.err")"
setup_clients
SECRET_C=$(add_client app-c)
SECRET_R=$(add_client app-r)
SECRET_D=$(add_client app-d)
SECRET_K=$(add_client app-k)
SECRET_K2=$(add_client app-k2)
SECRET_X=$(add_client app-x)
INTRO="introspector:$SECRET_I"

spawn_stack a "$FA_CONF" "$PORT_A" 4
LA_PID=$STACK_PID
LOG_A=$T/a-lighttpd.conf.error.log
wait_ready "$BASE_A"
if wait_until 10 nresponders_is "$LA_PID" 4; then
	pass "lighttpd A spawned max-procs = 4 fastauth responders"
else
	fail "lighttpd A spawned max-procs = 4 fastauth responders" "got: $(responders "$LA_PID" | tr '\n' ' ')"
fi
mapfile -t SOCKS_A < <(ls "$T"/run-a/fastauth.sock-*)
assert_eq "${#SOCKS_A[@]}" 4 "4 responder sockets in $T/run-a"

# All four were started by lighttpd at the same instant: one segment.
stats "$FA_CONF" || die "no shm stats for instance A: cannot go on"
creator=$(seg_creator)
if responders "$LA_PID" | grep -qx "$creator"; then
	pass "segment /fastauth.$INST_A created by responder $creator, attached by the others"
else
	fail "segment created by one of A's responders" "creator: $creator" "responders: $(responders "$LA_PID" | tr '\n' ' ')"
fi

# --- a. the token limit across processes -----------------------------------
note "a. ratelimit_token 20/60s burst 20 by client, 4 responders"
mkdir -p "$T/rr1"
python3 "$TOOL" fcgi-rr "$T/rr1" /oauth2/token grant_type=client_credentials \
    "app-a:$SECRET_A" 40 "${SOCKS_A[@]}" > "$T/rr1.out"
ok=$(awk 'NF == 3 && $3 == 200' "$T/rr1.out" | wc -l)
lim=$(awk 'NF == 3 && $3 == 429' "$T/rr1.out" | wc -l)
note "40 requests round robin over the 4 sockets in $(sed -n 's/^elapsed_ms //p' "$T/rr1.out") ms"
assert_eq "$ok/$lim" "20/20" "40 token requests for app-a, 10 to each responder: 200/429 = 20/20 (not 20 per process)"
assert_eq "$(awk 'NF == 3 && $1 < 20 { print $3 }' "$T/rr1.out" | sort -u | tr '\n' ' ')" "200 " \
    "the first 20 (5 per responder) are allowed"
for k in 0 1 2 3; do
	assert_eq "$(awk -v k="$k" 'NF == 3 && $2 == k { print $3 }' "$T/rr1.out" | sort | uniq -c | awk '{ printf "%s:%s ", $2, $1 }')" \
	    "200:5 429:5 " "responder $k (${SOCKS_A[$k]##*/}): 5 allowed, 5 refused"
done

# check_429 DESCRIPTION: the last response is a well-formed 429 for the token
# class of policy 20/60s burst 20; failures in $BAD.
check_429() {
	local ra rp rl ct err
	ra=$(header_value Retry-After || echo none)
	rp=$(header_value RateLimit-Policy || echo none)
	rl=$(header_value RateLimit || echo none)
	ct=$(header_value Content-Type || echo none)
	err=$(json_field error 2>/dev/null || echo none)
	if ! is_int "$ra" || [ "$ra" -lt 1 ] || [ "$ra" -gt 3 ]; then
		BAD+=("$1: Retry-After: $ra (expected an integer 1..3: one request per 3 s)")
	fi
	[ "$rp" = '"token";q=20;w=60' ] || BAD+=("$1: RateLimit-Policy: $rp (expected \"token\";q=20;w=60)")
	printf '%s' "$rl" | grep -Eq '^"token";r=0;t=[1-9][0-9]*$' ||
	    BAD+=("$1: RateLimit: $rl (expected \"token\";r=0;t=N)")
	printf '%s' "$ct" | grep -q '^application/json' || BAD+=("$1: Content-Type: $ct")
	[ "$err" = too_many_requests ] || BAD+=("$1: error: $err, body: $(head -c 200 "$HTTP_BODY_FILE")")
}
BAD=()
n429=0
while read -r i k st; do
	[ "$st" = 429 ] || continue
	n429=$((n429 + 1))
	HTTP_HEADERS=$T/rr1/$i.headers HTTP_BODY_FILE=$T/rr1/$i.body check_429 "request $i (responder $k)"
done < <(awk 'NF == 3' "$T/rr1.out")
if [ "${#BAD[@]}" = 0 ] && [ "$n429" -gt 0 ]; then
	pass "each of the $n429 refusals: Retry-After 1..3, RateLimit-Policy, RateLimit, JSON too_many_requests"
else
	fail "each refusal has Retry-After, RateLimit-Policy, RateLimit and a JSON error" "${BAD[@]:0:8}"
fi

# The same through lighttpd, 8 at a time for another client.
mark=$(log_lines "$LOG_A")
seq 40 | xargs -P 8 -I{} curl -sS -o /dev/null -w '%{http_code}\n' --max-time 15 \
    -u "app-c:$SECRET_C" -H 'Content-Type: application/x-www-form-urlencoded' \
    --data-binary grant_type=client_credentials "$BASE_A/oauth2/token" > "$T/par1.out" || true
assert_eq "$(count 200 "$T/par1.out")/$(count 429 "$T/par1.out")" "20/20" \
    "40 token requests for app-c through lighttpd, 8 at a time: 20 allowed, 20 refused"
pids=$(served_by "$LOG_A" "$mark" | wc -l)
note "lighttpd spread them over $pids responders"
if [ "$pids" -ge 2 ]; then
	pass "the concurrent requests were served by $pids responders"
else
	fail "the concurrent requests were served by more than one responder" "got $pids"
fi

post_form "$BASE_A/oauth2/token" grant_type=client_credentials -u "app-c:$SECRET_C"
assert_error 429 too_many_requests "app-c's 41st request through lighttpd -> 429 too_many_requests"
BAD=()
check_429 "through lighttpd"
if [ "${#BAD[@]}" = 0 ]; then
	pass "429 through lighttpd: Retry-After, RateLimit-Policy, RateLimit, JSON body"
else
	fa_fail_http "429 through lighttpd: Retry-After, RateLimit-Policy, RateLimit, JSON body" "${BAD[@]}"
fi
ra=$(header_value Retry-After || echo 1)
is_int "$ra" || ra=1

post_form "$BASE_A/oauth2/token" grant_type=client_credentials -u "introspector:$SECRET_I"
assert_status 200 "another client (introspector) is not limited by app-a's and app-c's floods"
post_form "$BASE_A/oauth2/token" grant_type=client_credentials -u "app-b:$SECRET_B"
assert_status 200 "another client (app-b) is not limited"

# Retry-After is truthful: after that many seconds one request goes through.
sleep "$ra"
post_form "$BASE_A/oauth2/token" grant_type=client_credentials -u "app-c:$SECRET_C"
assert_status 200 "app-c after waiting Retry-After ($ra s) -> 200"
post_form "$BASE_A/oauth2/token" grant_type=client_credentials -u "app-c:$SECRET_C"
assert_status 429 "and the next one -> 429 again (one request per 3 s)"

# 200s: 20 + 20 + introspector + app-b + app-c's late one; 429s: 20 + 20 + 2.
stats "$FA_CONF"
assert_eq "$(rl_allowed token)/$(rl_limited token)" "43/42" \
    "shm stats: token allowed 43, limited 42 (every decision of the 4 processes)"
h=$(cache_hits client)
if is_int "$h" && [ "$h" -gt 0 ]; then
	pass "shm stats: client record cache hits $h, misses $(cache_misses client)"
else
	fail "shm stats shows client cache hits" "$STATS"
fi
note "$(printf '%s\n' "$STATS" | grep -E '^  (token|client) ' | tr -s ' ' | paste -sd';')"

# --- b. revocation across instances ------------------------------------------
note "b. instance B (another lighttpd, another segment, the same Redis)"
spawn_stack b "$CONF_B" "$PORT_B" 2
LB_PID=$STACK_PID
LOG_B=$T/b-lighttpd.conf.error.log
wait_ready "$BASE_B"
wait_until 10 in_sync "$CONF_B" || fail "instance B's revocation mirror subscribes within 10 s" "$STATS"
stats "$CONF_B"
if [ -n "$(seg_size)" ] && [ -e "/dev/shm/fastauth.$INST_B" ] && [ "$INST_B" != "$INST_A" ]; then
	pass "instance B has its own segment /fastauth.$INST_B"
else
	fail "instance B has its own segment /fastauth.$INST_B" "$(ls /dev/shm)"
fi

# ratelimit_revoke "10/60s burst 10 by client cluster": one budget for both
# instances (hosts), counted in Redis behind each host's local check.
stats "$FA_CONF"
ra0=$(rl_allowed revoke); rl0=$(rl_limited revoke)
: > "$T/cluster.out"
for i in $(seq 10); do
	for base in "$BASE_A" "$BASE_B"; do
		post_form "$base/oauth2/revoke" "token=no-such-token-$i" -u "app-x:$SECRET_X"
		echo "$base $HTTP_STATUS" >> "$T/cluster.out"
	done
done
assert_eq "$(count 200 "$T/cluster.out")/$(count 429 "$T/cluster.out")" "10/10" \
    "cluster policy: 20 revocations for app-x alternating A and B (10 each, each under its local limit): 10 allowed in total"
post_form "$BASE_B/oauth2/revoke" "token=no-such-token" -u "app-x:$SECRET_X"
assert_error 429 too_many_requests "cluster policy: app-x's next revocation through B -> 429"
assert_header Retry-After '^[1-9][0-9]*$'
assert_header RateLimit-Policy '^"revoke";q=10;w=60$'
post_form "$BASE_A/oauth2/revoke" "token=no-such-token" -u "app-b:$SECRET_B"
assert_status 200 "cluster policy: another client's revocation through A -> 200"
stats "$FA_CONF"
note "A's revoke counters during the cluster test: allowed $ra0 -> $(rl_allowed revoke), limited $rl0 -> $(rl_limited revoke) (A refused $(grep -c "^$BASE_A 429" "$T/cluster.out") of its 10)"

# warm_b TOKEN: introspect through B until B's cache vouches for the token
# (a revocation cache hit); fails if it never does.
warm_b() {
	local h0 h1 i
	stats "$CONF_B"
	h0=$(cache_hits revocation)
	for i in 1 2 3; do
		intro_b "$1"
		if [ "$(json_field active || true)" != true ]; then
			fa_fail_http "introspection of a fresh token through B -> active"
			return 1
		fi
	done
	stats "$CONF_B"
	h1=$(cache_hits revocation)
	if ! is_int "$h0" || ! is_int "$h1" || [ "$h1" -lt $((h0 + 2)) ]; then
		fail "B's cache vouches for the token (revocation hits grow)" "hits before $h0, after $h1"
		return 1
	fi
}

LAT=()
for try in 1 2 3; do
	tok=$(get_token "$BASE_A" app-r "$SECRET_R") || continue
	warm_b "$tok" || continue
	stats "$CONF_B"
	m0=$(mirror_messages)
	res=$(python3 "$TOOL" revoke-race "$BASE_A" "$BASE_B" "$tok" "app-r:$SECRET_R" "$INTRO")
	note "try $try: $res"
	assert_eq "$(json_get revoke_status "$res")" 200 "try $try: revoke through A -> 200"
	if [ "$(json_get inactive "$res")" = true ] && [ "$(json_get active_before "$res")" -gt 0 ]; then
		pass "try $try: B said active before the revocation and inactive after it"
	else
		fail "try $try: B says active, then inactive after the revocation through A" "$res"
	fi
	LAT+=("$(json_get latency_ms "$res")")
	stats "$CONF_B"
	m1=$(mirror_messages)
	if is_int "$m0" && is_int "$m1" && [ "$m1" -gt "$m0" ]; then
		pass "try $try: B's mirror applied the revocation message ($m0 -> $m1)"
	else
		fail "try $try: B's mirror applied the revocation message" "messages $m0 -> $m1"
	fi
	intro_b "$tok"
	assert_json_equals '{"active":false}' "try $try: B afterwards -> {\"active\":false}"
done
best=$(printf '%s\n' "${LAT[@]}" | grep -E '^[0-9.]+$' | sort -g | sed -n 1p || true)
note "revoked through A -> inactive on B: ${LAT[*]} ms (best $best; bound 100 ms)"
if [ -n "$best" ] && python3 -c 'import sys; sys.exit(0 if float(sys.argv[1]) < 100 else 1)' "$best"; then
	pass "a token revoked through A is inactive on B within 100 ms (best of 3: $best ms)"
else
	fail "a token revoked through A is inactive on B within 100 ms (best of 3)" "got: ${LAT[*]}"
fi

# A revocation B could not have heard of: its subscriber is disconnected and
# the revocation is written with no message.  B must not believe what it
# cached before the disconnection.
tok=$(get_token "$BASE_A" app-r "$SECRET_R") || die "no token for app-r"
if warm_b "$tok"; then
	intro_b "$tok"
	jti=$(json_field jti)
	killed=$(rcli CLIENT KILL TYPE pubsub)
	rcli SET "${PFX}revoked:$jti" 1 EX 300 >/dev/null
	note "CLIENT KILL TYPE pubsub: $killed subscribers disconnected; revoked:$jti set without a message"
	intro_b "$tok"
	assert_json_equals '{"active":false}' \
	    "B after its subscriber was cut off: does not vouch from its cache -> {\"active\":false}"
	if wait_until 5 in_sync "$CONF_B"; then
		pass "B's mirror resubscribes after the disconnection"
	else
		fail "B's mirror resubscribes within 5 s" "$STATS"
	fi
	intro_b "$tok"
	assert_json_equals '{"active":false}' "B once resubscribed -> still {\"active\":false}"
fi

# B's mirror leader frozen (SIGSTOP): a revocation through A is then heard
# by nobody in B; B's other responder trusts the cache only while the
# leader's heartbeat is fresh (MIRROR_STALE_US, 1 s).  Measured through the
# other responder's FastCGI socket (lighttpd would queue requests on the
# stopped one).
leader=$(cat "$LOG_B" "$T/b-lighttpd.conf.out.log" 2>/dev/null |
    sed -n 's/^\([^ ]*\) fastauth\[\([0-9]*\)\]: info: revocation mirror subscribed.*/\1 \2/p' |
    sort | tail -n 1 | cut -d' ' -f2)
other=$(responders "$LB_PID" | grep -vx "${leader:-x}" | sed -n 1p)
if [ -n "$leader" ] && responders "$LB_PID" | grep -qx "$leader" && [ -n "$other" ]; then
	osock=$(python3 -c 'import os, sys
ino = os.readlink("/proc/%s/fd/0" % sys.argv[1]).strip("socket:[]")
for l in open("/proc/net/unix"):
    f = l.split()
    if len(f) >= 8 and f[6] == ino:
        print(f[7])' "$other")
	tok=$(get_token "$BASE_A" app-r "$SECRET_R") || die "no token for app-r"
	warm_b "$tok" || true
	kill -STOP "$leader"
	res=$(python3 "$TOOL" revoke-race "$BASE_A" "unix:$osock" "$tok" "app-r:$SECRET_R" "$INTRO")
	kill -CONT "$leader"
	note "B's mirror leader $leader stopped, polling responder $other: $res"
	lat=$(json_get latency_ms "$res")
	if [ "$(json_get inactive "$res")" = true ] && [ "$(json_get active_before "$res")" -gt 0 ] &&
	    python3 -c 'import sys; sys.exit(0 if float(sys.argv[1]) <= 1500 else 1)' "$lat"; then
		pass "leader frozen: B stops vouching within MIRROR_STALE_US (inactive after $lat ms)"
	else
		fail "leader frozen: B says inactive within 1.5 s of the revocation" "$res"
	fi
	wait_until 5 in_sync "$CONF_B" || fail "B's mirror in sync again after SIGCONT" "$STATS"
else
	fail "found B's mirror leader among B's responders" "leader from the log: $leader" \
	    "responders: $(responders "$LB_PID" | tr '\n' ' ')"
fi

# --- d. invalidation: rotate-secret, cache flush -----------------------------
note "d. fastauthctl client rotate-secret and cache flush"

# rr_statuses DIR CRED: one token request to each of A's responders; prints
# the statuses ("200 200 200 200").
rr_statuses() {
	mkdir -p "$1"
	python3 "$TOOL" fcgi-rr "$1" /oauth2/token grant_type=client_credentials "$2" \
	    "${#SOCKS_A[@]}" "${SOCKS_A[@]}" | awk 'NF == 3 { printf "%s ", $3 }'
}
all4() {
	printf '%s ' "$1" "$1" "$1" "$1"
}

stats "$FA_CONF"
h0=$(cache_hits client)
assert_eq "$(rr_statuses "$T/rot1" "app-d:$SECRET_D")" "$(all4 200)" \
    "app-d with its secret: 200 from each of A's 4 responders"
stats "$FA_CONF"
h1=$(cache_hits client)
if is_int "$h0" && is_int "$h1" && [ "$h1" -ge $((h0 + 3)) ]; then
	pass "app-d's record was read once and then came from the shared cache (client hits $h0 -> $h1)"
else
	fail "app-d's record comes from the shared cache on the other responders" "client hits $h0 -> $h1"
fi
post_form "$BASE_B/oauth2/token" grant_type=client_credentials -u "app-d:$SECRET_D"
assert_status 200 "app-d with its secret through B -> 200"
post_form "$BASE_B/oauth2/token" grant_type=client_credentials -u "app-d:$SECRET_D"
assert_status 200 "app-d with its secret through B again (cached in B) -> 200"

OLD_D=$SECRET_D
SECRET_D=$(ctl_secret client rotate-secret app-d)
assert_eq "$(rr_statuses "$T/rot3" "app-d:$OLD_D")" "$(all4 401)" \
    "right after rotate-secret the old secret -> 401 from each of A's 4 responders"
post_form "$BASE_B/oauth2/token" grant_type=client_credentials -u "app-d:$OLD_D"
assert_error 401 invalid_client "right after rotate-secret the old secret through B -> 401 invalid_client"
assert_eq "$(rr_statuses "$T/rot4" "app-d:$SECRET_D")" "$(all4 200)" \
    "the new secret -> 200 from each of A's 4 responders"
post_form "$BASE_B/oauth2/token" grant_type=client_credentials -u "app-d:$SECRET_D"
assert_status 200 "the new secret through B -> 200"

# A client id someone tried before it existed: "no such client" is cached
# (cache_negative_ttl 2); fastauth.conf(5) says changes made with fastauthctl
# are announced and take effect at once.
post_form "$BASE_A/oauth2/token" grant_type=client_credentials -u "app-new:not-yet"
assert_error 401 invalid_client "a client that does not exist yet -> 401 invalid_client"
SECRET_NEW=$(add_client app-new)
post_form "$BASE_A/oauth2/token" grant_type=client_credentials -u "app-new:$SECRET_NEW"
assert_status 200 "right after fastauthctl client add, the new client -> 200 (not the cached \"no such client\")"
if [ "$HTTP_STATUS" != 200 ]; then
	t0=$(now_s)
	new_ok() {
		post_form "$BASE_A/oauth2/token" grant_type=client_credentials -u "app-new:$SECRET_NEW"
		[ "$HTTP_STATUS" = 200 ]
	}
	wait_until 5 new_ok || true
	note "the new client was refused for $(python3 -c "print(round(($(now_s) - $t0) * 1000))") ms more (cache_negative_ttl 2 s)"
fi
post_form "$BASE_B/oauth2/token" grant_type=client_credentials -u "app-new:$SECRET_NEW"
assert_status 200 "the new client through B -> 200"
run_rc=0
ctl client remove app-new >"$T/remove.out" 2>&1 || run_rc=$?
assert_eq "$run_rc" 0 "fastauthctl client remove app-new exits 0"
post_form "$BASE_A/oauth2/token" grant_type=client_credentials -u "app-new:$SECRET_NEW"
assert_error 401 invalid_client "right after fastauthctl client remove, the removed client -> 401 on A"
post_form "$BASE_B/oauth2/token" grant_type=client_credentials -u "app-new:$SECRET_NEW"
assert_error 401 invalid_client "and on B"

stats "$FA_CONF"
ga0=$(cache_gen)
ua0=$(cache_used)
stats "$CONF_B"
gb0=$(cache_gen)
run_rc=0
ctl cache flush >"$T/flush.out" 2>&1 || run_rc=$?
assert_eq "$run_rc" 0 "fastauthctl cache flush exits 0 ($(tr '\n' ' ' < "$T/flush.out"))"
gen_moved() {	# CONF OLD
	stats "$1" && [ "$(cache_gen)" = $(($2 + 1)) ]
}
if is_int "$ga0" && wait_until 2 gen_moved "$FA_CONF" "$ga0"; then
	pass "cache flush: A's generation $ga0 -> $(cache_gen), entries in use $ua0 -> $(cache_used)"
	assert_eq "$(cache_used)" 0 "cache flush: no valid entry left in A's cache"
else
	fail "cache flush: A's cache generation moves by one within 2 s" "before $ga0" "$STATS"
fi
if is_int "$gb0" && wait_until 2 gen_moved "$CONF_B" "$gb0"; then
	pass "cache flush: B's generation $gb0 -> $(cache_gen) (another instance)"
else
	fail "cache flush: B's cache generation moves by one within 2 s" "before $gb0" "$STATS"
fi
stats "$FA_CONF"
m0=$(cache_misses client)
assert_eq "$(rr_statuses "$T/rot5" "app-d:$SECRET_D")" "$(all4 200)" "after the flush app-d still gets 200 everywhere"
stats "$FA_CONF"
m1=$(cache_misses client)
if is_int "$m0" && is_int "$m1" && [ "$m1" -gt "$m0" ]; then
	pass "after the flush the record was read from Redis again (client misses $m0 -> $m1)"
else
	fail "after the flush the client record misses the cache" "client misses $m0 -> $m1"
fi

# --- e. responders SIGKILLed under load --------------------------------------
note "e. SIGKILL 5 responders of A while requests run"
tok=$(get_token "$BASE_A" app-r "$SECRET_R") || die "no token for app-r"
stats "$FA_CONF"
ta0=$(rl_allowed token); tl0=$(rl_limited token); ia0=$(rl_allowed introspect)
LOAD_SECS=5
python3 "$TOOL" load "$LOAD_SECS" 4 "$BASE_A" "$tok" "$INTRO" "app-k:$SECRET_K" > "$T/load.out" &
LOAD_PID=$!
KILLED=()
# The first victim is A's mirror leader (the last to log its subscription).
leader_a=$(cat "$LOG_A" "$T/a-lighttpd.conf.out.log" 2>/dev/null |
    sed -n 's/^\([^ ]*\) fastauth\[\([0-9]*\)\]: info: revocation mirror subscribed.*/\1 \2/p' |
    sort | tail -n 1 | cut -d' ' -f2)
sleep 0.5
for i in 1 2 3 4 5; do
	victim=$(responders "$LA_PID" | shuf -n 1)
	if [ "$i" = 1 ] && responders "$LA_PID" | grep -qx "${leader_a:-x}"; then
		victim=$leader_a
		note "kill 1: A's mirror leader $leader_a"
	fi
	if [ -z "$victim" ]; then
		fail "kill $i: lighttpd A has a responder to kill"
		continue
	fi
	vst=$(fa_starttime "$victim")
	kill -KILL "$victim"
	if fa_wait_gone "$victim" "$vst" 3; then
		KILLED+=("$victim")
	else
		fail "kill $i: responder $victim is gone after SIGKILL"
	fi
	sleep 0.8
done
wait "$LOAD_PID" || fail "the load generator failed"
assert_eq "${#KILLED[@]}" 5 "5 responders SIGKILLed during the load (${KILLED[*]})"
if wait_until 10 nresponders_is "$LA_PID" 4; then
	pass "lighttpd A runs 4 responders again ($(responders "$LA_PID" | tr '\n' ' '))"
else
	fail "lighttpd A restarts the killed responders" "responders: $(responders "$LA_PID" | tr '\n' ' ')"
fi
for p in "${KILLED[@]}"; do
	if responders "$LA_PID" | grep -qx "$p"; then
		fail "killed responder $p is not among A's responders"
	fi
done

i_ok=$(awk '$2 == "introspect" && $3 == 200' "$T/load.out" | wc -l)
i_bad=$(awk '$2 == "introspect-bad"' "$T/load.out" | wc -l)
i_err=$(awk '$2 == "introspect" && $3 != 200' "$T/load.out" | wc -l)
t_ok=$(awk '$2 == "token" && $3 == 200' "$T/load.out" | wc -l)
t_lim=$(awk '$2 == "token" && $3 == 429' "$T/load.out" | wc -l)
t_err=$(awk '$2 == "token" && $3 != 200 && $3 != 429' "$T/load.out" | wc -l)
note "load: introspect $i_ok ok, $i_err failed; token $t_ok ok, $t_lim limited, $t_err failed;" \
    "failures: $(awk '$3 != 200 && $3 != 429 { print $3 }' "$T/load.out" | sort | uniq -c | tr -s ' ' | paste -sd,)"
assert_eq "$i_bad" 0 "under SIGKILLs no introspection says the valid token is inactive"
if [ "$i_ok" -gt 50 ] && [ $((i_err + t_err)) -le $((${#KILLED[@]} * 4)) ]; then
	pass "requests kept succeeding: $((i_ok + t_ok + t_lim)) answered, $((i_err + t_err)) lost (at most the 4 in flight per kill)"
else
	fail "requests keep succeeding while responders are killed" \
	    "introspect ok $i_ok, failed $i_err; token failed $t_err; kills ${#KILLED[@]}"
fi
# After the last kill, everything succeeds.
last=$(awk -v t="$(tail -n 1 "$T/load.out" | cut -d' ' -f1)" '$1 > t - 0.5 && $3 != 200 && $3 != 429' "$T/load.out" | wc -l)
assert_eq "$last" 0 "the last 0.5 s of the load: no failed request"

stats "$FA_CONF"
ta1=$(rl_allowed token); tl1=$(rl_limited token); ia1=$(rl_allowed introspect)
if [ -n "$STATS" ]; then
	pass "shm stats works after the SIGKILLs ($(printf '%s\n' "$STATS" | grep '^cache:'))"
fi
# Every decision is counted once: an allowed request either got its 200 or
# died with its responder.
da=$((ta1 - ta0)); dl=$((tl1 - tl0)); di=$((ia1 - ia0))
if [ "$da" -ge "$t_ok" ] && [ "$da" -le $((t_ok + t_err)) ] &&
    [ "$dl" -ge "$t_lim" ] && [ "$dl" -le $((t_lim + t_err)) ] &&
    [ "$di" -ge "$i_ok" ] && [ "$di" -le $((i_ok + i_err)) ]; then
	pass "the counters add up: token allowed +$da limited +$dl, introspect allowed +$di"
else
	fail "the limiter's counters add up with what the clients saw" \
	    "token allowed +$da (clients saw $t_ok 200, $t_err failed), limited +$dl (saw $t_lim 429)" \
	    "introspect allowed +$di (saw $i_ok 200, $i_err failed)"
fi
# 20 at once, then one per 3 s, whichever responders answered or died.
if [ "$t_ok" -le $((20 + LOAD_SECS / 3 + 1)) ] && [ $((t_ok + t_err)) -ge 20 ] && [ "$t_lim" -gt 0 ]; then
	pass "app-k under SIGKILLs: $t_ok allowed in ${LOAD_SECS}s (20 + one per 3 s), $t_lim refused"
else
	fail "app-k under SIGKILLs: 20 + one per 3 s allowed" "allowed $t_ok, failed $t_err, refused $t_lim"
fi

# A new leader took over the mirror: revocations through B reach A again.
if wait_until 5 in_sync "$FA_CONF"; then
	pass "A's revocation mirror is in sync again after its leader was killed"
else
	fail "A's revocation mirror is in sync within 5 s after its leader was killed" "$STATS"
fi
tok=$(get_token "$BASE_B" app-r "$SECRET_R") || die "no token for app-r from B"
intro_a "$tok"
intro_a "$tok"
res=$(python3 "$TOOL" revoke-race "$BASE_B" "$BASE_A" "$tok" "app-r:$SECRET_R" "$INTRO")
note "after the kills, revoked through B, polling A: $res"
lat=$(json_get latency_ms "$res")
if [ "$(json_get inactive "$res")" = true ] &&
    python3 -c 'import sys; sys.exit(0 if float(sys.argv[1]) < 100 else 1)' "$lat"; then
	pass "after the kills a token revoked through B is inactive on A within 100 ms ($lat ms)"
else
	fail "after the kills a token revoked through B is inactive on A within 100 ms" "$res"
fi

# The new responders still share one limiter.
mark=$(log_lines "$LOG_A")
seq 40 | xargs -P 8 -I{} curl -sS -o /dev/null -w '%{http_code}\n' --max-time 15 \
    -u "app-k2:$SECRET_K2" -H 'Content-Type: application/x-www-form-urlencoded' \
    --data-binary grant_type=client_credentials "$BASE_A/oauth2/token" > "$T/par2.out" || true
assert_eq "$(count 200 "$T/par2.out")/$(count 429 "$T/par2.out")" "20/20" \
    "after the SIGKILLs, 40 requests for app-k2 8 at a time: 20 allowed, 20 refused (over $(served_by "$LOG_A" "$mark" | wc -l) responders)"
mkdir -p "$T/rr2"
python3 "$TOOL" fcgi-rr "$T/rr2" /oauth2/token grant_type=client_credentials \
    "app-k2:$SECRET_K2" 4 "${SOCKS_A[@]}" > "$T/rr2.out"
assert_eq "$(awk 'NF == 3 { printf "%s ", $3 }' "$T/rr2.out")" "$(printf '429 %.0s' 1 2 3 4)" \
    "and every responder, old or new, refuses app-k2 now"
stats "$FA_CONF"
note "after the kills: $(printf '%s\n' "$STATS" | grep -E '^cache:|recovered' | tr -s ' ' | paste -sd';')"

# --- f. another segment size -------------------------------------------------
note "f. restart A with shm_cache_entries 4096"
stats "$FA_CONF"
size0=$(seg_size)
slots0=$(cache_slots)
stop_pid "$LA_PID"
note "the old segment ($slots0 cache slots, $size0 bytes) $([ -e "/dev/shm/fastauth.$INST_A" ] && echo outlives || echo does not outlive) its processes"
conf_for "$INST_A" "$FA_CONF" "$BASE_A" "${COMMON[@]}" "shm_cache_entries 4096"
spawn_stack a2 "$FA_CONF" "$PORT_A" 4
LA_PID=$STACK_PID
wait_ready "$BASE_A"
wait_until 10 nresponders_is "$LA_PID" 4 || fail "lighttpd A runs 4 responders after the restart"
stats "$FA_CONF"
assert_eq "$(cache_slots)" 4096 "shm stats: the cache has 4096 slots now (was $slots0)"
if [ "$(seg_size)" != "$size0" ] && [ "$(stat -c %s "/dev/shm/fastauth.$INST_A")" = "$(seg_size)" ]; then
	pass "the segment was replaced: $size0 -> $(seg_size) bytes, as /dev/shm says"
else
	fail "the segment is replaced with the new size" "before $size0, stats $(seg_size), file $(stat -c %s "/dev/shm/fastauth.$INST_A")"
fi
creator=$(seg_creator)
if responders "$LA_PID" | grep -qx "$creator"; then
	pass "the new segment was created by new responder $creator"
else
	fail "the new segment was created by one of the new responders" "creator $creator"
fi
tok=$(get_token "$BASE_A" app-b "$SECRET_B") || true
intro_a "$tok"
assert_json_field active true "new processes: a fresh token is active"
post_form "$BASE_A/oauth2/revoke" "token=$tok" -u "app-b:$SECRET_B"
assert_status 200 "new processes: revoke -> 200"
intro_a "$tok"
assert_json_equals '{"active":false}' "new processes: revoked -> {\"active\":false}"
mapfile -t SOCKS_A < <(ls "$T"/run-a2/fastauth.sock-*)
mkdir -p "$T/rr3"
python3 "$TOOL" fcgi-rr "$T/rr3" /oauth2/token grant_type=client_credentials \
    "app-k2:$SECRET_K2" 40 "${SOCKS_A[@]}" > "$T/rr3.out"
assert_eq "$(awk 'NF == 3 && $3 == 200' "$T/rr3.out" | wc -l)/$(awk 'NF == 3 && $3 == 429' "$T/rr3.out" | wc -l)" "20/20" \
    "new segment: 40 requests for app-k2 round robin over the 4 new responders: 20/20 (a fresh limiter, shared)"

# lighttpd respawns a responder that died after fastauth.conf was edited:
# the new process runs with other sizes and replaces the segment while the
# other three still run.  They must not go on counting in the old one.
conf_for "$INST_A" "$FA_CONF" "$BASE_A" "${COMMON[@]}" "shm_cache_entries 2048"
before=$(responders "$LA_PID")
victim=${before%%$'\n'*}
vst=$(fa_starttime "$victim")
kill -KILL "$victim"
fa_wait_gone "$victim" "$vst" 3 || fail "responder $victim is gone after SIGKILL"
wait_until 10 nresponders_is "$LA_PID" 4 || fail "lighttpd A respawns the killed responder"
wait_ready "$BASE_A"
respawned=$(responders "$LA_PID" | grep -vxF "$before" || true)
# The other three follow the replaced segment at their housekeeper's next
# tick (250 ms): counting before that would split the limiter.
wait_until 10 all_attached "$FA_CONF" 4 ||
    fail "the 4 responders attach to the replaced segment" "$(printf '%s\n' "$STATS" | grep '^metrics:')"
stats "$FA_CONF"
note "responder $victim killed and respawned as ${respawned:-?} with shm_cache_entries 2048: shm stats sees $(cache_slots) cache slots, segment created by $(seg_creator)"
SECRET_M=$(add_client app-m)
mkdir -p "$T/rr4"
python3 "$TOOL" fcgi-rr "$T/rr4" /oauth2/token grant_type=client_credentials \
    "app-m:$SECRET_M" 40 "${SOCKS_A[@]}" > "$T/rr4.out"
got=$(awk 'NF == 3 && $3 == 200' "$T/rr4.out" | wc -l)/$(awk 'NF == 3 && $3 == 429' "$T/rr4.out" | wc -l)
if [ "$got" = 20/20 ]; then
	pass "one responder respawned with other sizes: 40 requests for app-m round robin over the 4: still 20/20 (one limiter)"
else
	fail "one responder respawned with other sizes: the 4 responders still share one limiter (40 requests for app-m round robin: 20 allowed)" \
	    "got 200/429 = $got; per responder: $(awk 'NF == 3 && $3 == 200 { n[$2]++ } END { for (k in n) printf "%s:%d ", k, n[k] }' "$T/rr4.out")" \
	    "responders: $(for s in "${SOCKS_A[@]}"; do printf '%s=pid %s ' "${s##*/}" "$(sock_pid "$s")"; done)"
fi

# --- c. the mirror fails closed ----------------------------------------------
note "c. Redis frozen, then stopped: B's cache stops vouching"

# watch_b TOKEN SECONDS OUT: poll B's introspection every 20 ms in the
# background; sets WATCH_PID.
watch_b() {
	python3 "$TOOL" watch "$BASE_B/oauth2/introspect" "token=$1" "$INTRO" "$2" 20 > "$3" &
	WATCH_PID=$!
}
active_b() {
	intro_b "$1"
	[ "$HTTP_STATUS" = 200 ] && [ "$(json_field active || true)" = true ]
}

tok=$(get_token "$BASE_A" app-r "$SECRET_R") || die "no token for app-r"
warm_b "$tok" || true

# Frozen: nothing closes the subscriber's connection; its PINGs go unanswered.
watch_b "$tok" 3.5 "$T/watch-stop.out"
sleep 0.3
t0=$(now_s)
kill -STOP "$REDIS_PID"
wait "$WATCH_PID" || true
kill -CONT "$REDIS_PID"
res=$(python3 "$TOOL" analyze-watch "$T/watch-stop.out" "$t0" "$t0")
note "Redis SIGSTOPped: $res"
vouch=$(json_get vouched_after_done_ms "$res")
first=$(json_get first_not_active_ms "$res")
# The subscriber PINGs after 0.5 s of silence and gives Redis up after 2 s
# without a reply (EVENTS_DEAD_MS), checked every 100 ms.
if is_int "$vouch" && [ "$vouch" -le 2500 ] && is_int "$first"; then
	pass "Redis frozen: B vouched from its cache for $vouch ms, then stopped (first 503 after $first ms)"
else
	fail "Redis frozen: B stops answering active:true within 2.5 s (EVENTS_DEAD_MS 2 s)" "$res"
fi
assert_eq "$(json_get active_after_first_off "$res")" 0 "Redis frozen: once B stopped vouching it never said active:true again"
if wait_until 10 active_b "$tok"; then
	pass "Redis thawed: B answers active:true again"
else
	fa_fail_http "Redis thawed: B answers active:true within 10 s"
fi
wait_until 5 in_sync "$CONF_B" || fail "B's mirror in sync again after SIGCONT" "$STATS"

# Stopped: the connection closes.
warm_b "$tok" || true
watch_b "$tok" 2.5 "$T/watch-term.out"
sleep 0.3
t0=$(now_s)
stop_redis
t1=$(now_s)
wait "$WATCH_PID" || true
res=$(python3 "$TOOL" analyze-watch "$T/watch-term.out" "$t0" "$t1")
note "Redis stopped (SIGTERM, gone after $(python3 -c "print(round(($t1 - $t0) * 1000))") ms): $res"
first=$(json_get first_not_active_ms "$res")
if is_int "$first" && [ "$first" -le 1500 ] && [ "$(json_get first_not_active_status "$res")" = 503 ]; then
	pass "Redis stopped: B answers 503 instead of active:true after $first ms"
else
	fail "Redis stopped: B answers 503 (not active:true) within 1.5 s" "$res"
fi
assert_eq "$(json_get active_after_first_off "$res")" 0 "Redis stopped: once B said 503 it never said active:true again"
intro_b "$tok"
assert_error 503 temporarily_unavailable "Redis down: introspection through B -> 503 temporarily_unavailable"
assert_header Retry-After '^[1-9][0-9]*$'
stats "$CONF_B"
if ! mirror_in_sync; then
	pass "Redis down: shm stats says B's mirror is not trusted"
else
	fail "Redis down: shm stats says B's mirror is not trusted" "$STATS"
fi

t0=$(now_s)
start_redis "$REDIS_PORT" "${REDIS_OPTS[@]}"
if wait_until 15 active_b "$tok"; then
	pass "Redis back: B answers active:true again after $(python3 -c "print(round(($(now_s) - $t0) * 1000))") ms"
else
	fa_fail_http "Redis back: B answers active:true within 15 s"
fi
if wait_until 5 in_sync "$CONF_B"; then
	pass "Redis back: B's mirror is in sync again"
else
	fail "Redis back: B's mirror is in sync within 5 s" "$STATS"
fi
warm_b "$tok" && pass "Redis back: B's cache vouches again"

# Every responder of both instances serves again once Redis is back (a
# second past redis_backoff_max_ms, so no connection is still backing off).
sleep 1.2
mapfile -t SOCKS_B < <(ls "$T"/run-b/fastauth.sock-*)
mkdir -p "$T/back"
python3 "$TOOL" fcgi-rr "$T/back" /oauth2/introspect "token=$tok" "$INTRO" \
    $((4 * (${#SOCKS_A[@]} + ${#SOCKS_B[@]}))) "${SOCKS_A[@]}" "${SOCKS_B[@]}" > "$T/back.out"
bad=$(awk 'NF == 3 && $3 != 200 { printf "%s->%s ", $2, $3 }' "$T/back.out")
if [ -z "$bad" ]; then
	pass "Redis back for 1 s: 4 introspections on each of the 6 responders of A and B -> 200"
else
	detail=()
	for k in $(awk 'NF == 3 && $3 != 200 { print $2 }' "$T/back.out" | sort -u); do
		all=("${SOCKS_A[@]}" "${SOCKS_B[@]}")
		p=$(sock_pid "${all[$k]}")
		i=$(awk -v k="$k" 'NF == 3 && $2 == k && $3 != 200 { print $1; exit }' "$T/back.out")
		detail+=("${all[$k]##*/run-} (pid $p): $(head -c 120 "$T/back/$i.body")")
		detail+=("  pid $p logged: $(grep -h "fastauth\[$p\]" "$T"/a2-lighttpd.conf.*.log "$T"/b-lighttpd.conf.*.log |
		    grep -v 'key maintenance' | tail -n 3 | cut -c12- | paste -sd'|')")
	done
	fail "Redis back for 1 s: every responder of A and B answers 200" \
	    "responder->status (0-3: A, 4-5: B): $bad" "${detail[@]}"
fi
