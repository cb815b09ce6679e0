#!/usr/bin/env python3
"""loadgen.py -- a small steady load for the fault-injection suite (stdlib only).

  loadgen.py run --base URL --out FILE --stop FILE [--threads N] [--rate R]
                 [--timeout S] --client ID:SECRET --introspector ID:SECRET
                 --token ACCESS_TOKEN
      N threads, each sending about R requests a second in turn: a
      client_credentials token request and an introspection of TOKEN. Every
      request has a hard timeout (S seconds; a request still unanswered then
      is recorded as status "timeout", i.e. a hang). One JSON line per
      request: t (start, wall clock s), ms (latency), st (status or
      "timeout"/"conn"), ra (Retry-After value or null), err (JSON error
      code or null). Runs until FILE --stop exists.

  loadgen.py report --in FILE --fault T0 --back T1 [--name NAME]
      Summarise a run for a fault between T0 and T1 (wall clock s): prints
      one JSON object: sent, by_status, max_ms, hangs, bad_503 (503 without
      Retry-After >= 1 or without {"error":"temporarily_unavailable"}),
      errors_before (non-200 before T0), recover_s (from T1 until every
      later request succeeded; 0 if none failed after T1), ok_after (200s
      after recovery).
"""
import argparse
import base64
import http.client
import json
import os
import sys
import threading
import time
import urllib.parse


def request(base, path, body, auth, timeout):
    u = urllib.parse.urlsplit(base)
    conn = http.client.HTTPConnection(u.hostname, u.port, timeout=timeout)
    hdr = {"Content-Type": "application/x-www-form-urlencoded",
           "Authorization": "Basic " + base64.b64encode(auth.encode()).decode(),
           "Connection": "close"}
    t0 = time.time()
    rec = {"t": round(t0, 3), "path": path, "ra": None, "err": None}
    try:
        conn.request("POST", u.path + path, body=body, headers=hdr)
        resp = conn.getresponse()
        data = resp.read()
        rec["st"] = resp.status
        rec["ra"] = resp.getheader("Retry-After")
        if resp.status != 200:
            try:
                rec["err"] = json.loads(data.decode()).get("error")
            except Exception:
                rec["err"] = None
    except (TimeoutError, OSError) as e:
        # socket.timeout is TimeoutError on 3.10+; refused/reset are OSError.
        rec["st"] = "timeout" if isinstance(e, TimeoutError) or "timed out" in str(e) else "conn"
    finally:
        conn.close()
    rec["ms"] = int((time.time() - t0) * 1000)
    return rec


def run(a):
    lock = threading.Lock()
    out = open(a.out, "w", buffering=1)
    stop = threading.Event()
    period = 1.0 / a.rate if a.rate > 0 else 0

    def worker(i):
        n = i
        while not stop.is_set():
            t = time.time()
            if n % 2 == 0:
                rec = request(a.base, "/oauth2/token", "grant_type=client_credentials",
                              a.client, a.timeout)
            else:
                rec = request(a.base, "/oauth2/introspect",
                              "token=" + urllib.parse.quote(a.token), a.introspector,
                              a.timeout)
            n += 1
            with lock:
                out.write(json.dumps(rec) + "\n")
            left = period - (time.time() - t)
            if left > 0:
                time.sleep(left)

    ths = [threading.Thread(target=worker, args=(i,), daemon=True) for i in range(a.threads)]
    for th in ths:
        th.start()
    while not os.path.exists(a.stop):
        time.sleep(0.05)
    stop.set()
    for th in ths:
        th.join(a.timeout + 2)
    out.close()


def report(a):
    recs = []
    with open(a.inp) as f:
        for line in f:
            try:
                recs.append(json.loads(line))
            except ValueError:
                pass
    recs.sort(key=lambda r: r["t"])
    by = {}
    bad503 = 0
    for r in recs:
        by[str(r["st"])] = by.get(str(r["st"]), 0) + 1
        if r["st"] == 503:
            try:
                ra = int(r["ra"])
            except (TypeError, ValueError):
                ra = 0
            if ra < 1 or r["err"] != "temporarily_unavailable":
                bad503 += 1
    last_bad = None
    for r in recs:
        if r["st"] != 200:
            last_bad = r
    if last_bad is None or last_bad["t"] + last_bad["ms"] / 1000.0 < a.back:
        recover = 0.0
    else:
        recover = last_bad["t"] + last_bad["ms"] / 1000.0 - a.back
    ok_after = sum(1 for r in recs if last_bad is None or r["t"] > last_bad["t"])
    res = {
        "name": a.name,
        "sent": len(recs),
        "by_status": by,
        "max_ms": max((r["ms"] for r in recs), default=0),
        "hangs": by.get("timeout", 0),
        "bad_503": bad503,
        "errors_before": sum(1 for r in recs if r["t"] < a.fault and r["st"] != 200),
        "recover_s": round(recover, 2),
        "ok_after": ok_after,
    }
    print(json.dumps(res, sort_keys=True))


def main():
    p = argparse.ArgumentParser()
    sub = p.add_subparsers(dest="cmd", required=True)
    r = sub.add_parser("run")
    r.add_argument("--base", required=True)
    r.add_argument("--out", required=True)
    r.add_argument("--stop", required=True)
    r.add_argument("--threads", type=int, default=4)
    r.add_argument("--rate", type=float, default=25.0)
    r.add_argument("--timeout", type=float, default=5.0)
    r.add_argument("--client", required=True)
    r.add_argument("--introspector", required=True)
    r.add_argument("--token", required=True)
    q = sub.add_parser("report")
    q.add_argument("--in", dest="inp", required=True)
    q.add_argument("--fault", type=float, required=True)
    q.add_argument("--back", type=float, required=True)
    q.add_argument("--name", default="")
    a = p.parse_args()
    if a.cmd == "run":
        run(a)
    else:
        report(a)


if __name__ == "__main__":
    sys.exit(main())
