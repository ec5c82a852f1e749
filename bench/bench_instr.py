#!/usr/bin/env python3
"""Instructions per warm request, counted by callgrind: the repeatable
twin of the W1 wall-clock benchmark on this noisy machine.

The server runs under `valgrind --tool=callgrind` (one HTTP thread), the 4
lists of W1 are stored, then the same 4-person POST /api/scrape/ is sent N1
and N2 times on one keep-alive connection in two runs; the difference of the
totals over N2 - N1 is the cost of one request in steady state (start-up,
the first fetch and shutdown cancel out). System calls are not counted.

usage: bench/bench_instr.py [BUILD_DIR ...]   (default: build/)
"""
import glob
import http.client
import json
import os
import re
import signal
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "tests", "integration"))

import harness  # noqa: E402

USERS = ["alice_n1000", "bob_n1000", "carol_n1000", "dave_n1000"]
N1, N2 = 200, 1200


def total_ir(build, n, fake):
    body = json.dumps({"usernames": [{"name": u, "type": "LB"} for u in USERS]})
    with tempfile.TemporaryDirectory() as d:
        out = os.path.join(d, "cg.out")
        port = harness.free_port()
        env = {k: v for k, v in os.environ.items() if not k.startswith("FILMPICKER_")}
        env.update({"FILMPICKER_LISTEN": "127.0.0.1:%d" % port,
                    "FILMPICKER_DATABASE": os.path.join(d, "fp.db"),
                    "FILMPICKER_SECRET_KEY": "11" * 32,
                    "FILMPICKER_LETTERBOXD_URL": fake.url,
                    "FILMPICKER_HTTP_THREADS": "1",
                    "FILMPICKER_LOG_LEVEL": "warn"})
        proc = subprocess.Popen(["valgrind", "--tool=callgrind", "--callgrind-out-file=" + out,
                                 os.path.join(build, "filmpicker"), "serve"], env=env,
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            deadline = time.monotonic() + 120
            while True:
                try:
                    st, _, _ = harness.request("http://127.0.0.1:%d" % port, "GET", "/healthz",
                                               timeout=5)
                    if st == 200:
                        break
                except OSError:
                    pass
                if time.monotonic() > deadline:
                    raise RuntimeError("server under valgrind did not start")
                time.sleep(0.5)
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=120)
            headers = {"Content-Type": "application/json"}
            conn.request("POST", "/api/scrape/", body, headers)
            r = conn.getresponse()
            r.read()
            assert r.status == 200, r.status
            for _ in range(n):
                conn.request("POST", "/api/scrape/", body, headers)
                r = conn.getresponse()
                r.read()
                assert r.status == 200, r.status
            conn.close()
        finally:
            proc.send_signal(signal.SIGTERM)
            proc.wait(timeout=120)
        total = 0
        for f in glob.glob(out + "*"):
            with open(f) as fh:
                for line in fh:
                    m = re.match(r"^(?:summary|totals): (\d+)", line)
                    if m:
                        total += int(m.group(1))
                        break
        return total


def main():
    builds = sys.argv[1:] or [os.path.join(HERE, "..", "build")]
    with harness.FakeBoxd(size=1000, common=100, per_page=28) as fake:
        for b in builds:
            a, c = total_ir(b, N1, fake), total_ir(b, N2, fake)
            print("instructions per warm request (%s): %.1fk  (%d requests: %d, %d: %d)"
                  % (b, (c - a) / (N2 - N1) / 1000, N1, a, N2, c))


if __name__ == "__main__":
    main()
