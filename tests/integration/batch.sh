#!/bin/bash
# batch.sh -- batch introspection (POST /auth/oauth2/introspect/batch, an
# extension) behind a private lighttpd spawning fastauth with the shipped
# snippet:
#  1. a mix of tokens -- valid (two clients, one with a narrower scope),
#     revoked, expired, garbage, not a string of ours at all, a token of
#     another fastauth deployment (its own keys), a refresh-token-looking
#     string -- answers a JSON array in the same order, each element the
#     very object /oauth2/introspect gives for that token alone;
#  2. the answer is streamed (fastauth sends no Content-Length: seen on its
#     FastCGI socket, since whether lighttpd then chunks it depends on
#     timing), keeps
#     the security headers, and stays correct JSON past libfcgi's buffer
#     (150 tokens);
#  3. errors: more than introspect_batch_max tokens -> 413 invalid_request;
#     no or wrong client authentication -> 401 invalid_client; a client not
#     allowed to introspect -> 403; malformed JSON, not an array of strings,
#     wrong Content-Type -> 400 invalid_request; GET -> 405; [] -> [];
#  4. N tokens the cache knows nothing about cost ONE Redis command: a single
#     MGET naming all N (INFO commandstats and MONITOR), not N EXISTS;
#  5. fail closed: with Redis gone, a batch of uncached tokens is a clean 503
#     temporarily_unavailable (a JSON object, not a half-sent array).
# Tokens for "expired" come from a second stack on the same Redis and keys
# with access_token_ttl 1; the "foreign" token from a third with its own
# redis_prefix and KEK.
[ -n "${BASH_VERSION:-}" ] || exec bash "$0" "$@"
. "$(dirname "$0")/lib.sh"

require "$REDIS_SERVER" "$REDIS_CLI" "$LIGHTTPD" curl python3
require_fastauth

INST_B=$FA_INSTANCE-b
INST_C=$FA_INSTANCE-c

batch_on_exit() {
	local rc=$?
	set +e
	trap - ERR
	fa_stop_all
	rm -f "/dev/shm/fastauth.$INST_B" "/dev/shm/fastauth.$INST_C"
	(exit "$rc")
	fa_on_exit
}
trap batch_on_exit EXIT

rcli() {
	"$REDIS_CLI" -h 127.0.0.1 -p "$REDIS_PORT" "$@"
}

# spawn_stack NAME CONF PORT: lighttpd spawning fastauth (the shipped snippet,
# max-procs 1 except for the main stack).
spawn_stack() {
	local name=$1 conf=$2 port=$3 procs=${4:-1}
	mkdir -p "$T/run-$name"
	install_conf "$top_srcdir/lighttpd/fastauth-spawn.conf" "$T/$name-spawn.conf" \
	    "/usr/sbin/fastauth -c /etc/fastauth/fastauth.conf" "$FASTAUTH -c $conf" \
	    "/run/lighttpd/fastauth.sock" "$T/run-$name/fastauth.sock" \
	    '"max-procs"   => 2' "\"max-procs\"   => $procs"
	make_lighttpd_conf "$T/lighttpd-$name.conf" "$port" "$T/$name-spawn.conf"
	# Pass the answer on as fastauth writes it (lighttpd buffers a whole
	# response by default, and then sends it with a Content-Length).
	echo 'server.stream-response-body = 1' >> "$T/lighttpd-$name.conf"
	start_lighttpd "$T/lighttpd-$name.conf" "$port"
}

# batch BASE JSON [curl options]: POST a batch as the introspector.
batch() {
	local base=$1 body=$2
	shift 2
	http POST "$base/oauth2/introspect/batch" -H 'Content-Type: application/json' \
	    --data-binary "$body" -u "introspector:$SECRET_I" "$@"
}

# json_array TOKEN...: a JSON array of the arguments.
json_array() {
	python3 -c 'import json, sys; print(json.dumps(sys.argv[1:]))' "$@"
}

start_redis
PORT_A=$(free_port)
PORT_B=$(free_port)
PORT_C=$(free_port)
BASE=http://127.0.0.1:$PORT_A/auth
BASE_B=http://127.0.0.1:$PORT_B/auth
BASE_C=http://127.0.0.1:$PORT_C/auth

write_fastauth_conf "$FA_CONF" "$BASE" "introspect_batch_max 150"
ctl key init >/dev/null 2>"$T/ctl.err" || die "fastauthctl key init failed" "$(cat "$T/ctl.err")"
setup_clients
spawn_stack a "$FA_CONF" "$PORT_A" 2

# B: same Redis, prefix and KEK (so the same keys), tokens live 1 s.
CONF_B=$T/fastauth-b.conf
(FA_INSTANCE=$INST_B FA_TTL=1 write_fastauth_conf "$CONF_B" "$BASE")
spawn_stack b "$CONF_B" "$PORT_B"

# C: another deployment: its own prefix, KEK, keys and clients.
CONF_C=$T/fastauth-c.conf
(FA_INSTANCE=$INST_C write_fastauth_conf "$CONF_C" "$BASE_C")
sed -i -e "s|^redis_prefix .*|redis_prefix fat:$$:other:|" -e "s|^kek_file .*|kek_file $T/kek-c|" "$CONF_C"
"$FASTAUTHCTL" -c "$CONF_C" key init >/dev/null 2>"$T/ctl.err" ||
    die "fastauthctl key init (C) failed" "$(cat "$T/ctl.err")"
SECRET_CA=$(FA_CONF=$CONF_C ctl_secret client add --id app-a --scope "read write" \
    --grant client_credentials)
spawn_stack c "$CONF_C" "$PORT_C"
wait_ready "$BASE" || die "fastauth A not ready"
wait_ready "$BASE_B" || die "fastauth B not ready"
wait_ready "$BASE_C" || die "fastauth C not ready"

# --- 1. a mix, in order -----------------------------------------------------
TOK_EXPIRED=$(get_token "$BASE_B" app-a "$SECRET_A") || die "no token from B"
TOK_FOREIGN=$(get_token "$BASE_C" app-a "$SECRET_CA") || die "no token from C"
TOK_A=$(get_token "$BASE" app-a "$SECRET_A") || die "no token"
TOK_B=$(get_token "$BASE" app-b "$SECRET_B" "scope=read") || die "no token"
TOK_REV=$(get_token "$BASE" app-a "$SECRET_A") || die "no token"
post_form "$BASE/oauth2/revoke" "token=$TOK_REV" -u "app-a:$SECRET_A"
assert_status 200 "revoke one of them"
sleep 2.2	# B's token (access_token_ttl 1) has expired now

introspect "$BASE" "$TOK_FOREIGN"
assert_json_equals '{"active":false}' "a token of another deployment is inactive here"

MIX=("$TOK_A" "$TOK_REV" "$TOK_EXPIRED" "garbage" "$TOK_FOREIGN" "$TOK_B" \
    "far1.not-a-refresh-token" "" "${TOK_A}x")
WANT=$T/want.json
: > "$WANT"
for tok in "${MIX[@]}"; do
	introspect "$BASE" "$tok"
	cat "$HTTP_BODY_FILE" >> "$WANT"
	echo >> "$WANT"
done
batch "$BASE" "$(json_array "${MIX[@]}")"
assert_status 200 "batch of ${#MIX[@]} mixed tokens -> 200"
assert_header Content-Type '^application/json'
assert_header Cache-Control 'no-store'
assert_header X-Content-Type-Options 'nosniff'
if python3 - "$HTTP_BODY_FILE" "$WANT" <<'EOF'
import json, sys
got = json.load(open(sys.argv[1]))
want = [json.loads(l) for l in open(sys.argv[2]) if l.strip()]
assert isinstance(got, list), "not an array"
assert len(got) == len(want), "%d elements, want %d" % (len(got), len(want))
for i, (g, w) in enumerate(zip(got, want)):
    assert g == w, "element %d: %r, want %r" % (i, g, w)
# valid, revoked, expired, garbage, foreign, valid, far1 junk, "", tampered
assert [g["active"] for g in got] == [True, False, False, False, False, True,
                                     False, False, False], [g["active"] for g in got]
assert got[0]["client_id"] == "app-a" and got[5]["client_id"] == "app-b"
assert got[5]["scope"] == "read"
EOF
then
	pass "batch: one object per token, in order, each as /introspect says alone"
else
	fa_fail_http "batch: one object per token, in order, each as /introspect says alone"
fi

# --- 2. past libfcgi's buffer: 150 tokens -----------------------------------
MANY=()
for i in $(seq 1 50); do
	MANY+=("$TOK_A" "garbage-$i" "$TOK_B")
done
batch "$BASE" "$(json_array "${MANY[@]}")"
assert_status 200 "batch of 150 tokens (introspect_batch_max) -> 200"
cp "$HTTP_BODY_FILE" "$T/many.lighttpd.json"
# Whether lighttpd forwards it chunked or, having got all of it first, with a
# Content-Length depends on timing: look at what fastauth itself sends, on
# one responder's FastCGI socket.
if python3 - "$T/run-a/fastauth.sock-0" "introspector:$SECRET_I" \
    "$(json_array "${MANY[@]}")" "$T/many.lighttpd.json" > "$T/fcgi.out" 2>&1 <<'EOF'
import base64, json, socket, struct, sys
sock, cred, body, want = sys.argv[1], sys.argv[2], sys.argv[3].encode(), sys.argv[4]
def rec(t, c):
    out = b''
    while True:
        ch, c = c[:65535], c[65535:]
        out += struct.pack('>BBHHBx', 1, t, 1, len(ch), -len(ch) % 8) + ch + b'\0' * (-len(ch) % 8)
        if not c:
            return out
def nv(k, v):
    k, v = k.encode(), v.encode()
    enc = lambda n: bytes([n]) if n < 128 else struct.pack('>I', n | 0x80000000)
    return enc(len(k)) + enc(len(v)) + k + v
params = {'REQUEST_METHOD': 'POST', 'REQUEST_URI': '/auth/oauth2/introspect/batch',
          'SCRIPT_NAME': '/auth', 'PATH_INFO': '/oauth2/introspect/batch',
          'CONTENT_TYPE': 'application/json', 'CONTENT_LENGTH': str(len(body)),
          'HTTP_AUTHORIZATION': 'Basic ' + base64.b64encode(cred.encode()).decode(),
          'REMOTE_ADDR': '127.0.0.1', 'SERVER_PROTOCOL': 'HTTP/1.1'}
s = socket.socket(socket.AF_UNIX)
s.settimeout(15)
s.connect(sock)
s.sendall(rec(1, struct.pack('>HB5x', 1, 0)) + rec(4, b''.join(nv(k, v) for k, v in params.items()))
          + rec(4, b'') + rec(5, body) + rec(5, b''))
buf, out, nrec = b'', b'', 0
while True:
    while len(buf) < 8 or len(buf) < 8 + struct.unpack('>BBHHBx', buf[:8])[3] + buf[6]:
        d = s.recv(65536)
        if not d:
            sys.exit('connection closed')
        buf += d
    _, t, _, n, pad = struct.unpack('>BBHHBx', buf[:8])
    c, buf = buf[8:8 + n], buf[8 + n + pad:]
    if t == 6 and n > 0:
        out += c
        nrec += 1
    elif t == 3:
        break
head, _, rbody = out.partition(b'\r\n\r\n')
hdrs = head.decode('latin-1').lower()
print('headers:', head.decode('latin-1').replace('\r\n', ' | '))
print('stdout records: %d, body %d bytes' % (nrec, len(rbody)))
assert 'status: 200' in hdrs, 'status'
assert 'content-length' not in hdrs, 'fastauth sent a Content-Length: not streamed'
assert json.loads(rbody) == json.load(open(want)), 'differs from the answer through lighttpd'
EOF
then
	pass "streamed by fastauth: no Content-Length, the same 150 answers ($(tail -n 1 "$T/fcgi.out"))"
else
	fail "streamed by fastauth: no Content-Length, the same 150 answers" "$(cat "$T/fcgi.out")"
fi
if python3 - "$HTTP_BODY_FILE" <<'EOF'
import json, sys
got = json.load(open(sys.argv[1]))
assert len(got) == 150
for i, g in enumerate(got):
    assert g["active"] == (i % 3 != 1), i
    if i % 3 == 2:
        assert g["client_id"] == "app-b"
EOF
then
	pass "150 answers, correct JSON, in order ($(wc -c < "$HTTP_BODY_FILE") bytes)"
else
	fa_fail_http "150 answers, correct JSON, in order"
fi

# --- 3. errors -----------------------------------------------------------------
batch "$BASE" "$(json_array "${MANY[@]}" "$TOK_A")"
assert_error 413 invalid_request "151 tokens (introspect_batch_max 150) -> 413 invalid_request"
assert_json_field_match error_description 'at most 150 tokens' "413 says the limit"

http POST "$BASE/oauth2/introspect/batch" -H 'Content-Type: application/json' \
    --data-binary "$(json_array "$TOK_A")"
assert_error 401 invalid_client "no client authentication -> 401 invalid_client"
assert_header WWW-Authenticate '^Basic'
batch "$BASE" "$(json_array "$TOK_A")" -u "introspector:wrong"
assert_error 401 invalid_client "wrong secret -> 401 invalid_client"
http POST "$BASE/oauth2/introspect/batch" -H 'Content-Type: application/json' \
    --data-binary "$(json_array "$TOK_A")" -u "app-a:$SECRET_A"
assert_error 403 unauthorized_client "a client without --introspect -> 403"
batch "$BASE" '["a", "b"'
assert_error 400 invalid_request "unterminated array -> 400 invalid_request"
batch "$BASE" '["a", 1]'
assert_error 400 invalid_request "a number in the array -> 400 invalid_request"
batch "$BASE" '{"token": "a"}'
assert_error 400 invalid_request "an object, not an array -> 400 invalid_request"
batch "$BASE" '["a\u0000b"]'
assert_error 400 invalid_request "an escaped NUL -> 400 invalid_request"
http POST "$BASE/oauth2/introspect/batch" -u "introspector:$SECRET_I" \
    -H 'Content-Type: application/x-www-form-urlencoded' --data-binary "token=$TOK_A"
assert_error 400 invalid_request "a form body -> 400 invalid_request"
http GET "$BASE/oauth2/introspect/batch" -u "introspector:$SECRET_I"
assert_status 405 "GET -> 405"
batch "$BASE" ' [ ] '
assert_status 200 "[] -> 200"
assert_json_equals '[]' "[] -> []"
batch "$BASE" "[\"${TOK_A//./\\u002e}\"]"
assert_status 200 "escaped characters are decoded"
assert_match "$HTTP_BODY" '"active":true' "a token with JSON escapes is the same token"

# --- 4. one Redis command for N uncached tokens ------------------------------
FRESH=()
for i in 1 2 3 4 5 6 7 8; do
	FRESH+=("$(get_token "$BASE" app-a "$SECRET_A")") || die "no token"
done
# Every responder's housekeeping talks to Redis too (keys, every second), so
# besides the counters, MONITOR shows which commands touched revocation state.
rcli MONITOR > "$T/monitor.log" 2>&1 3>&- &
MON_PID=$!
fa_register "$MON_PID" "redis-cli MONITOR" "$T/monitor.log"
wait_until 5 grep -q OK "$T/monitor.log" || die "redis-cli MONITOR did not start"
rcli CONFIG RESETSTAT >/dev/null
batch "$BASE" "$(json_array "${FRESH[@]}")"
assert_status 200 "batch of 8 fresh tokens -> 200"
STATS=$(rcli INFO commandstats | tr -d '\r')
sleep 0.5
stop_pid "$MON_PID" || true
MGETS=$(printf '%s\n' "$STATS" | sed -n 's/^cmdstat_mget:calls=\([0-9]*\),.*/\1/p')
assert_eq "${MGETS:-0}" 1 "8 uncached tokens: one MGET (INFO commandstats)"
REV_CMDS=$(grep -c 'revoked:' "$T/monitor.log" || true)
assert_eq "$REV_CMDS" 1 "8 uncached tokens: one command reads revocation state (MONITOR)"
REV_KEYS=$(grep 'revoked:' "$T/monitor.log" | grep -o '"[^"]*revoked:[0-9a-f]*"' | wc -l)
assert_eq "$REV_KEYS" 8 "... and it names all 8 tokens"
assert_match "$(grep 'revoked:' "$T/monitor.log" | head -n 1)" '"MGET"' "... and it is an MGET"
note "commandstats after the batch (all processes): $(printf '%s' "$STATS" | grep '^cmdstat' | cut -d, -f1 | tr '\n' ' ')"
if python3 -c 'import json,sys; d=json.load(open(sys.argv[1])); sys.exit(0 if len(d)==8 and all(x["active"] for x in d) else 1)' "$HTTP_BODY_FILE"; then
	pass "all 8 active"
else
	fa_fail_http "all 8 active"
fi

# --- 5. fail closed -------------------------------------------------------------
STALE=()
for i in 1 2 3; do
	STALE+=("$(get_token "$BASE" app-a "$SECRET_A")") || die "no token"
done
# Warm the client record in the cache, so only the revocation state is missing.
batch "$BASE" '[]'
stop_redis
batch "$BASE" "$(json_array "${STALE[@]}" garbage)"
assert_error 503 temporarily_unavailable "Redis gone: uncached tokens -> 503, not a guess"
assert_header Retry-After '^[0-9]+$'
