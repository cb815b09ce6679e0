#!/usr/bin/env python3
"""fcgi_client.py -- a FastCGI client speaking raw records to a fastauth
socket, for tests/integration/fcgi_wire.sh. Each subcommand sends one
scenario and prints what came back, one line per fact, for the shell test
to assert on:

  request [--keep] [--big-params N] [--role R] PATH [BODY]
  keep-two PATH           two requests on one kept connection
  get-values              FCGI_GET_VALUES
  garbage KIND            bad-version | cut-record | bad-pair | stdin-first
  abort PATH              abort in the middle of the body
"""
import socket, struct, sys

SOCK = sys.argv[1]
ARGS = sys.argv[2:]


def rec(t, i, c=b"", pad=0):
    return struct.pack(">BBHHBB", 1, t, i, len(c), pad, 0) + c + b"\0" * pad


def begin(i, role=1, keep=False):
    return rec(1, i, struct.pack(">HB5x", role, 1 if keep else 0))


def ln(n):
    return bytes([n]) if n < 128 else struct.pack(">I", n | 0x80000000)


def pair(n, v):
    return ln(len(n)) + ln(len(v)) + n + v


def stream(t, i, data):
    out = b""
    for k in range(0, len(data), 65535):
        out += rec(t, i, data[k:k + 65535])
    return out + rec(t, i)


def params(path, body, extra=()):
    p = [(b"REQUEST_METHOD", b"POST" if body else b"GET"),
         (b"REQUEST_URI", path.encode()), (b"SCRIPT_NAME", b""),
         (b"REMOTE_ADDR", b"127.0.0.1"), (b"SERVER_PROTOCOL", b"HTTP/1.1")]
    if body:
        p += [(b"CONTENT_TYPE", b"application/x-www-form-urlencoded"),
              (b"CONTENT_LENGTH", str(len(body)).encode())]
    return b"".join(pair(a, b) for a, b in list(p) + list(extra))


def request(i, path, body=b"", keep=False, role=1, extra=()):
    return (begin(i, role, keep) + stream(4, i, params(path, body, extra)) +
            stream(5, i, body))


def connect():
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.settimeout(10)
    s.connect(SOCK)
    return s


def read_exact(s, n):
    b = b""
    while len(b) < n:
        c = s.recv(n - len(b))
        if not c:
            return None
        b += c
    return b


def records(s, until_end=True):
    """Yield (type, id, content) until FCGI_END_REQUEST (or EOF)."""
    while True:
        h = read_exact(s, 8)
        if h is None:
            print("eof")
            return
        v, t, i, n, pad, _ = struct.unpack(">BBHHBB", h)
        c = read_exact(s, n + pad)[:n]
        yield t, i, c
        if t == 3 and until_end:
            return


def show(s):
    out = b""
    for t, i, c in records(s):
        if t == 6:
            out += c
        elif t == 3:
            app, proto = struct.unpack(">IB3x", c)
            head, _, body = out.partition(b"\r\n\r\n")
            print("status " + head.split(b"\r\n")[0].decode())
            for h in head.split(b"\r\n")[1:]:
                print("header " + h.decode())
            print("body " + body.decode(errors="replace"))
            print("end id=%d app=%d proto=%d" % (i, app, proto))
        else:
            print("record type=%d id=%d" % (t, i))


def peer_closed(s):
    try:
        return s.recv(1) == b""
    except OSError:
        return True


cmd = ARGS[0]
if cmd == "request":
    keep, big, role, a = False, 0, 1, ARGS[1:]
    while a and a[0].startswith("--"):
        if a[0] == "--keep":
            keep, a = True, a[1:]
        elif a[0] == "--big-params":
            big, a = int(a[1]), a[2:]
        elif a[0] == "--role":
            role, a = int(a[1]), a[2:]
    body = a[1].encode() if len(a) > 1 else b""
    extra = [(b"HTTP_X_FILL_%d" % k, b"x" * 60000) for k in range(big)]
    s = connect()
    s.sendall(request(1, a[0], body, keep, role, extra))
    show(s)
    print("closed" if peer_closed(s) else "open")
elif cmd == "keep-two":
    s = connect()
    for n in (1, 2):
        s.sendall(request(1, ARGS[1], keep=True))
        show(s)
    s.settimeout(1)
    try:
        print("closed" if s.recv(1) == b"" else "data")
    except socket.timeout:
        print("open")
elif cmd == "get-values":
    s = connect()
    q = b"".join(pair(n, b"") for n in (b"FCGI_MAX_CONNS", b"FCGI_MAX_REQS",
                                        b"FCGI_MPXS_CONNS"))
    s.sendall(rec(9, 0, q))
    for t, i, c in records(s, until_end=False):
        k = 0
        while k < len(c):
            nl, vl = c[k], c[k + 1]
            print("value %s=%s" % (c[k + 2:k + 2 + nl].decode(),
                                   c[k + 2 + nl:k + 2 + nl + vl].decode()))
            k += 2 + nl + vl
        break
elif cmd == "garbage":
    kind = ARGS[1]
    s = connect()
    if kind == "bad-version":
        s.sendall(b"\x02" + begin(1)[1:])
    elif kind == "cut-record":
        s.sendall(begin(1) + b"\x01\x04\x00\x01\x00\x64\x00\x00short")
        s.shutdown(socket.SHUT_WR)
    elif kind == "bad-pair":
        s.sendall(begin(1) + rec(4, 1, b"\x05\x7fNAMEVvalue") + rec(4, 1))
    elif kind == "stdin-first":
        s.sendall(begin(1) + rec(5, 1, b"x"))
    got = b""
    try:
        while True:
            c = s.recv(4096)
            if not c:
                break
            got += c
    except OSError:
        pass
    print("answer-bytes %d" % len(got))
    print("closed")
elif cmd == "abort":
    s = connect()
    body = b"grant_type=client_credentials"
    s.sendall(begin(1, 1, True) + stream(4, 1, params(ARGS[1], body)) +
              rec(5, 1, body[:5]) + rec(2, 1))
    show(s)
else:
    sys.exit("unknown command " + cmd)
