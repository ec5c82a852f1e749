#!/usr/bin/python3
"""A session with many common films (issue 7): two people whose lists share
COMMON films (default 5000). Measures what a phone pays: the size of the
session the app loads (the results carry only the first page), the time of
GET /api/v1/sessions/{id}/films for a page (start, middle, end) and for a
title search over every common film, and of a veto (the document is rewritten
on every change) and a roll over the whole pool.

usage: bench/bench_session_films.py [COMMON] [REPEAT]   (FP_BUILD_DIR: the build)
"""
import http.client
import json
import os
import statistics
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "tests", "integration"))
os.environ.setdefault("FP_BUILD_DIR", os.path.join(HERE, "..", "build"))
import harness  # noqa: E402


def main():
    common = int(sys.argv[1]) if len(sys.argv) > 1 else 5000
    repeat = int(sys.argv[2]) if len(sys.argv) > 2 else 50
    with harness.FakeBoxd(markup="react2025", size=common + 100, common=common,
                          universe=common * 3) as fake, \
            harness.FilmPicker(fake=fake, env={"FILMPICKER_LOG_LEVEL": "warn",
                                               "FILMPICKER_MAX_PAGES": "100000"}) as fp:
        conn = http.client.HTTPConnection("127.0.0.1", fp.port, timeout=60)

        def call(method, path, body=None, headers=None):
            conn.request(method, path, body=json.dumps(body) if body is not None else None,
                         headers=headers or {})
            r = conn.getresponse()
            raw = r.read()
            return r.status, r.getheaders(), raw

        _, hdrs, raw = call("GET", "/api/v1/client")
        cookie = dict(hdrs)["Set-Cookie"].split(";")[0]
        h = {"X-CSRF-Token": json.loads(raw)["csrf_token"], "Cookie": cookie,
             "Content-Type": "application/json"}
        sid = json.loads(call("POST", "/api/v1/sessions", {}, h)[2])["id"]
        base = "/api/v1/sessions/" + sid
        t0 = time.monotonic()
        for u in ("bigfa", "bigfb"):
            call("POST", base + "/participants", {"profile": u}, h)
        call("POST", base + "/search", {}, h)
        while True:
            status, _, raw = call("GET", base)
            sess = json.loads(raw)
            if sess["status"] == "results":
                break
            time.sleep(0.05)
        ready = time.monotonic() - t0
        res = sess["results"]
        print("common films: %d (pool %d, first page %d); lists read and intersected in %.2f s"
              % (res["common_count"], res["pool"], len(res["common"]), ready))
        print("session JSON the app loads: %d bytes" % len(raw))

        def timed(label, method, path, body=None):
            ms = []
            for _ in range(repeat):
                t = time.perf_counter()
                status, _, out = call(method, path, body, h)
                ms.append((time.perf_counter() - t) * 1000)
                assert status == 200, (status, out[:300])
            ms.sort()
            print("%-44s median %7.2f ms  p95 %7.2f ms  max %7.2f ms  (%d bytes)"
                  % (label, statistics.median(ms), ms[int(len(ms) * 0.95) - 1], ms[-1],
                     len(out)))
            return out

        timed("GET films offset 0, limit 100", "GET", base + "/films?offset=0&limit=100")
        timed("GET films offset %d, limit 100" % (common // 2), "GET",
              base + "/films?offset=%d&limit=100" % (common // 2))
        timed("GET films offset %d, limit 100" % (common - 100), "GET",
              base + "/films?offset=%d&limit=100" % (common - 100))
        page = json.loads(call("GET", base + "/films?offset=%d&limit=1" % (common - 1))[2])
        word = max(page["films"][0]["title"].split(), key=len)
        timed("search q=%s over every common film" % word, "GET", base + "/films?q=" + word)
        fid = page["films"][0]["id"]
        timed("veto / unveto (document rewritten)", "POST", base + "/veto",
              {"film_id": fid, "vetoed": True})
        timed("roll over the whole pool", "POST", base + "/roll", {})


if __name__ == "__main__":
    main()
