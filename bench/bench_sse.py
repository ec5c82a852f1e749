#!/usr/bin/python3
"""Live-update latency: one session, N devices (default 20) following its
Server-Sent Events, one device striking films out and back in. For every
change, the time from just before the POST is sent (its cause) to the moment
each device has read the matching event. Prints the distribution; the goal
(issue 4) is every event within 200 ms.

usage: bench/bench_sse.py [DEVICES] [CHANGES]   (FP_BUILD_DIR: the build)
"""
import http.client
import json
import os
import socket
import sys
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "tests", "integration"))
os.environ.setdefault("FP_BUILD_DIR", os.path.join(HERE, "..", "build"))
import harness  # noqa: E402


class Device(threading.Thread):
    """Reads one event stream and notes when each veto event arrived."""

    def __init__(self, port, sid):
        super().__init__(daemon=True)
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=30)
        self.sock.sendall(("GET /api/v1/sessions/%s/events HTTP/1.1\r\nHost: 127.0.0.1:%d\r\n"
                           "Accept: text/event-stream\r\n\r\n" % (sid, port)).encode())
        self.seen = {}  # event id -> arrival time
        self.ready = threading.Event()

    def run(self):
        buf = b""
        try:
            while True:
                chunk = self.sock.recv(65536)
                if not chunk:
                    return
                now = time.monotonic()
                buf += chunk
                while b"\n\n" in buf:
                    block, buf = buf.split(b"\n\n", 1)
                    lines = block.decode("utf-8", "replace").split("\n")
                    name = next((l[7:] for l in lines if l.startswith("event: ")), None)
                    ident = next((l[4:] for l in lines if l.startswith("id: ")), None)
                    if name == "session":
                        self.ready.set()
                    if name == "veto" and ident:
                        self.seen[int(ident)] = now
        except OSError:
            return


def main():
    devices = int(sys.argv[1]) if len(sys.argv) > 1 else 20
    changes = int(sys.argv[2]) if len(sys.argv) > 2 else 50
    with harness.FakeBoxd(size=200, common=60) as fake, \
            harness.FilmPicker(fake=fake, env={"FILMPICKER_LOG_LEVEL": "warn"}) as fp:
        conn = http.client.HTTPConnection("127.0.0.1", fp.port, timeout=30)

        def call(method, path, body=None, headers=None):
            conn.request(method, path, body=json.dumps(body) if body is not None else None,
                         headers=headers or {})
            r = conn.getresponse()
            return r.status, r.getheaders(), json.loads(r.read() or b"null")

        status, hdrs, tok = call("GET", "/api/v1/client")
        cookie = dict(hdrs)["Set-Cookie"].split(";")[0]
        h = {"X-CSRF-Token": tok["csrf_token"], "Cookie": cookie,
             "Content-Type": "application/json"}
        status, _, sess = call("POST", "/api/v1/sessions", {}, h)
        sid = sess["id"]
        for u in ("ann", "ben", "cat"):
            call("POST", "/api/v1/sessions/%s/participants" % sid, {"profile": u}, h)
        call("POST", "/api/v1/sessions/%s/search" % sid, {}, h)
        for _ in range(200):
            status, _, sess = call("GET", "/api/v1/sessions/%s" % sid)
            if sess["status"] == "results":
                break
            time.sleep(0.05)
        film = sess["results"]["common"][0]["id"]
        devs = [Device(fp.port, sid) for _ in range(devices)]
        for d in devs:
            d.start()
        for d in devs:
            d.ready.wait(10)
        causes = {}
        for i in range(changes):
            t0 = time.monotonic()
            status, _, after = call("POST", "/api/v1/sessions/%s/veto" % sid,
                                    {"film_id": film, "vetoed": i % 2 == 0}, h)
            causes[after["version"]] = t0
            time.sleep(0.02)
        time.sleep(1.0)
        lat = []
        missing = 0
        for d in devs:
            for ident, t0 in causes.items():
                if ident in d.seen:
                    lat.append((d.seen[ident] - t0) * 1000)
                else:
                    missing += 1
        lat.sort()
        if not lat:
            print("sse: no events received")
            return 1
        p = lambda q: lat[min(len(lat) - 1, int(q * len(lat)))]  # noqa: E731
        print("sse: %d devices, %d changes, %d deliveries, %d missing; latency ms: "
              "median %.1f, p99 %.1f, max %.1f (goal: every event within 200 ms)"
              % (devices, changes, len(lat), missing, p(0.5), p(0.99), lat[-1]))
        return 0 if missing == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
