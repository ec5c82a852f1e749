#!/usr/bin/python3
"""FilmPicker benchmarks (see bench/README.md). Needs a build (scripts/build.sh)
and wrk. Prints the figures the README reports; nothing here asserts a time.

  bench/bench.py warm     POST /api/scrape/ for 4 stored lists of 1000 films,
                          wrk -t2 -c16, beside a bare libmicrohttpd server
  bench/bench.py cold     4 x 1000 films (36 pages each), 100 ms per page,
                          host limit 8 and 16, each page fetched once
  bench/bench.py scrapy   the same pages crawled by Scrapy at 16 (Debian's
                          python3-scrapy), for comparison
  bench/bench.py memory   resident memory at idle and during the warm run
  bench/bench.py cold-scaled
                          16 x 1000 films, 100 ms per page, host limit 8 shared
                          by 2 workers (RabbitMQ, Redis, PostgreSQL of its own)
  bench/bench.py warm-scaled
                          W1 on PostgreSQL + Redis with 1 and 2 API instances,
                          beside the bare libmicrohttpd ceiling
  bench/bench.py all      (the scaled ones are not part of all)
"""
import json
import os
import re
import subprocess
import sys
import tempfile
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "tests", "integration"))
os.environ.setdefault("FP_BUILD_DIR", os.path.join(HERE, "..", "build"))
import harness  # noqa: E402

USERS = ["alice_n1000", "bob_n1000", "carol_n1000", "dave_n1000"]
WRK_SECONDS = int(os.environ.get("BENCH_SECONDS", "10"))


def rss_kb(pid, field="VmRSS"):
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    return 0


def wrk(url, script=None):
    cmd = ["wrk", "-t2", "-c16", "-d%ds" % WRK_SECONDS, "--latency"]
    if script:
        cmd += ["-s", script]
    out = subprocess.run(cmd + [url], capture_output=True, text=True, check=True).stdout
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))
    p99 = re.search(r"99%\s+([\d.]+)(us|ms|s)", out)
    scale = {"us": 0.001, "ms": 1.0, "s": 1000.0}[p99.group(2)]
    non2xx = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", out)
    return {"rps": rps, "p99_ms": float(p99.group(1)) * scale,
            "non2xx": int(non2xx.group(1)) if non2xx else 0, "raw": out}


def scrape_body(users):
    return json.dumps({"usernames": [{"name": u, "type": "lb"} for u in users]})


def _lua(users):
    lua = tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False)
    lua.write('wrk.method = "POST"\nwrk.body = %s\n'
              'wrk.headers["Content-Type"] = "application/json"\n' % json.dumps(scrape_body(users)))
    lua.close()
    return lua.name


def warm(report_memory=False):
    """Alternates wrk runs against filmpicker and the bare server (BENCH_ROUNDS
    rounds, default 3) so both see the same machine noise; medians reported."""
    rounds = int(os.environ.get("BENCH_ROUNDS", "3"))
    port = harness.free_port()
    bare = subprocess.Popen([os.path.join(os.environ["FP_BUILD_DIR"], "bench", "bare_mhd"),
                             str(port)], stdout=subprocess.PIPE)
    lua = _lua(USERS)
    apps, bares = [], []
    try:
        harness.wait_until(lambda: _listening(port), what="bare_mhd listening")
        with harness.FakeBoxd(size=1000, common=100, per_page=28) as fake, \
                harness.FilmPicker(fake=fake, env={"FILMPICKER_LOG_LEVEL": "warn"}) as fp:
            status, body = fp.json("POST", "/api/scrape/", json.loads(scrape_body(USERS)),
                                   timeout=60)
            assert status == 200, (status, body)
            time.sleep(0.5)
            idle_rss = rss_kb(fp.proc.pid)
            peak = [0]
            stop = threading.Event()

            def sample():
                while not stop.is_set():
                    peak[0] = max(peak[0], rss_kb(fp.proc.pid))
                    time.sleep(0.1)
            t = threading.Thread(target=sample)
            t.start()
            try:
                for i in range(rounds):
                    apps.append(wrk(fp.url + "/api/scrape/", lua))
                    bares.append(wrk("http://127.0.0.1:%d/api/scrape/" % port, lua))
                    print("warm round %d: filmpicker %.0f req/s (p99 %.2f ms, non-2xx %d), "
                          "bare %.0f req/s (p99 %.2f ms), ratio %.2f"
                          % (i + 1, apps[-1]["rps"], apps[-1]["p99_ms"], apps[-1]["non2xx"],
                             bares[-1]["rps"], bares[-1]["p99_ms"],
                             apps[-1]["rps"] / bares[-1]["rps"]))
            finally:
                stop.set()
                t.join()
            hwm = rss_kb(fp.proc.pid, "VmHWM")
    finally:
        os.unlink(lua)
        bare.terminate()
        bare.wait(timeout=10)

    def med(xs):
        return sorted(xs)[len(xs) // 2]
    app_rps, bare_rps = med([a["rps"] for a in apps]), med([b["rps"] for b in bares])
    print("warm: median filmpicker %.0f req/s, p99 %.2f ms (worst %.2f ms)"
          % (app_rps, med([a["p99_ms"] for a in apps]), max(a["p99_ms"] for a in apps)))
    print("warm: median bare libmicrohttpd %.0f req/s, p99 %.2f ms"
          % (bare_rps, med([b["p99_ms"] for b in bares])))
    print("warm: ratio of medians %.2f, median of round ratios %.2f (goal >= 0.50), "
          "p99 goal < 5 ms" % (app_rps / bare_rps,
                               med([a["rps"] / b["rps"] for a, b in zip(apps, bares)])))
    if report_memory:
        print("memory: idle (4 lists stored) %.1f MB resident; during warm runs peak %.1f MB "
              "(VmHWM %.1f MB); goals < 30 MB idle, < 100 MB under load"
              % (idle_rss / 1024, peak[0] / 1024, hwm / 1024))


def warm_ab(before_dir):
    """W1 before and after a change in the same run: the filmpicker of
    before_dir (another build, e.g. of the previous commit), this build's,
    and the bare server, side by side under the same load, rounds
    alternating. `bench/bench.py warm-ab /path/to/old/build`."""
    rounds = int(os.environ.get("BENCH_ROUNDS", "3"))
    port = harness.free_port()
    bare = subprocess.Popen([os.path.join(os.environ["FP_BUILD_DIR"], "bench", "bare_mhd"),
                             str(port)], stdout=subprocess.PIPE)
    lua = _lua(USERS)
    after_dir = os.environ["FP_BUILD_DIR"]
    res = {"before": [], "after": [], "bare": []}
    try:
        harness.wait_until(lambda: _listening(port), what="bare_mhd listening")
        with harness.FakeBoxd(size=1000, common=100, per_page=28) as fake:
            os.environ["FP_BUILD_DIR"] = before_dir
            old = harness.FilmPicker(fake=fake, env={"FILMPICKER_LOG_LEVEL": "warn"})
            old.start()
            os.environ["FP_BUILD_DIR"] = after_dir
            new = harness.FilmPicker(fake=fake, env={"FILMPICKER_LOG_LEVEL": "warn"},
                                     default_limits=True)
            new.start()
            try:
                for fp in (old, new):
                    status, body = fp.json("POST", "/api/scrape/",
                                           json.loads(scrape_body(USERS)), timeout=60)
                    assert status == 200, (status, body)
                time.sleep(0.5)
                for i in range(rounds):
                    res["before"].append(wrk(old.url + "/api/scrape/", lua))
                    res["after"].append(wrk(new.url + "/api/scrape/", lua))
                    res["bare"].append(wrk("http://127.0.0.1:%d/api/scrape/" % port, lua))
                    print("warm-ab round %d: before %.0f req/s (non-2xx %d), after %.0f req/s "
                          "(non-2xx %d), bare %.0f req/s"
                          % (i + 1, res["before"][-1]["rps"], res["before"][-1]["non2xx"],
                             res["after"][-1]["rps"], res["after"][-1]["non2xx"],
                             res["bare"][-1]["rps"]))
            finally:
                new.stop()
                old.stop()
    finally:
        os.environ["FP_BUILD_DIR"] = after_dir
        os.unlink(lua)
        bare.terminate()
        bare.wait(timeout=10)

    def med(xs):
        return sorted(xs)[len(xs) // 2]
    b, a, m = (med([r["rps"] for r in res[k]]) for k in ("before", "after", "bare"))
    print("warm-ab: median before %.0f req/s (p99 %.2f ms), after %.0f req/s (p99 %.2f ms), "
          "bare %.0f req/s; after/before %.2f; ratio to bare: before %.2f, after %.2f "
          "(goal >= 0.50)"
          % (b, med([r["p99_ms"] for r in res["before"]]), a,
             med([r["p99_ms"] for r in res["after"]]), m, a / b, b / m, a / m))


def _listening(port):
    import socket
    with socket.socket() as s:
        s.settimeout(0.2)
        return s.connect_ex(("127.0.0.1", port)) == 0


def cold_run(limit):
    with harness.FakeBoxd(size=1000, common=100, per_page=28, latency_ms=100) as fake, \
            harness.FilmPicker(fake=fake, env={"FILMPICKER_LOG_LEVEL": "warn",
                                               "FILMPICKER_HOST_CONCURRENCY": str(limit),
                                               "FILMPICKER_COMPAT_WAIT_MS": "60000"}) as fp:
        fake.reset()
        t0 = time.monotonic()
        status, body = fp.json("POST", "/api/scrape/", json.loads(scrape_body(USERS)),
                               timeout=120)
        took = time.monotonic() - t0
        assert status == 200, (status, body)
        stats = fake.stats()
    pages = stats["pages"]
    once = all(c == 1 for c in pages.values())
    peak = max(stats["peak_concurrency"].values())
    return took, len(pages), once, peak, stats["requests_total"]


def cold():
    for limit in (8, 16):
        took, npages, once, peak, total = cold_run(limit)
        print("cold: host limit %d: %.3f s end to end, %d distinct pages, %d requests, "
              "each page once: %s, peak concurrency %d"
              % (limit, took, npages, total, "yes" if once else "NO", peak))


def scrapy():
    try:
        import scrapy  # noqa: F401
    except ImportError:
        print("scrapy: python3-scrapy is not installed (apt-get install python3-scrapy)")
        return
    spider = os.path.join(HERE, "scrapy_watchlists.py")
    with harness.FakeBoxd(size=1000, common=100, per_page=28, latency_ms=100) as fake:
        fake.reset()
        t0 = time.monotonic()
        out = subprocess.run(["/usr/bin/python3", spider, fake.url, "16"] + USERS, check=True,
                             capture_output=True, text=True).stdout
        took = time.monotonic() - t0
        stats = fake.stats()
    crawl = re.search(r"crawl ([\d.]+) s, films (\d+)", out)
    print("scrapy: concurrency 16: crawl %s s (first request to last page), %.3f s with "
          "process start; %s films, %d pages, %d requests, peak %d"
          % (crawl.group(1), took, crawl.group(2), len(stats["pages"]), stats["requests_total"],
             max(stats["peak_concurrency"].values())))


SCALED_USERS = ["u%02d_n1000" % i for i in range(16)]


def _scaled_services():
    """Servers of its own for the scaled benchmarks (scripts/services.sh)."""
    import scaled
    return scaled, scaled.Services(os.path.join(os.environ["FP_BUILD_DIR"],
                                                "services-bench")).start()


def cold_scaled():
    """16 people x 1000 films (36 pages each, 576 pages), 100 ms a page, two
    workers sharing host limit 8: the bound is 16 x 36 / 8 x 0.1 s = 7.2 s."""
    scaled, services = _scaled_services()
    try:
        with harness.FakeBoxd(size=1000, common=100, per_page=28, latency_ms=100) as fake:
            stack = scaled.Stack(services, fake, extra={
                "FILMPICKER_LOG_LEVEL": "warn", "FILMPICKER_HOST_CONCURRENCY": "8",
                "FILMPICKER_WORKERS": os.environ.get("BENCH_WORKERS", "8"),
                "FILMPICKER_COMPAT_WAIT_MS": "120000",
                "FILMPICKER_DATABASE": services.env["FILMPICKER_DATABASE"] + "?schema=bench_%d"
                % os.getpid()})
            try:
                api = stack.api()
                stack.worker()
                stack.worker()
                fake.reset()
                t0 = time.monotonic()
                status, body = api.json("POST", "/api/scrape/",
                                        json.loads(scrape_body(SCALED_USERS)), timeout=180)
                took = time.monotonic() - t0
                assert status == 200, (status, body)
                stats = fake.stats()
            finally:
                stack.stop()
    finally:
        services.stop()
    pages = stats["pages"]
    print("cold-scaled: 16 x 1000 films, 2 workers, shared host limit 8: %.3f s end to end "
          "(bound 7.2 s, goal <= 7.6 s), %d distinct pages, %d requests, each page once: %s, "
          "peak per host %d" % (took, len(pages), stats["requests_total"],
                                "yes" if all(c == 1 for c in pages.values()) else "NO",
                                max(stats["peak_concurrency"].values())))


def _wrk_many(urls, script):
    """wrk against several instances at once (the 16 connections split
    between them); the sum of their requests/s."""
    threads_out = [None] * len(urls)

    def run(i, url):
        # Two client threads and 16 connections in all, however many instances.
        conns = max(1, 16 // len(urls))
        threads = max(1, 2 // len(urls))
        cmd = ["wrk", "-t%d" % threads, "-c%d" % conns, "-d%ds" % WRK_SECONDS, "--latency", "-s",
               script, url]
        threads_out[i] = subprocess.run(cmd, capture_output=True, text=True, check=True).stdout
    ts = [threading.Thread(target=run, args=(i, u)) for i, u in enumerate(urls)]
    for t in ts:
        t.start()
    for t in ts:
        t.join()
    total = 0.0
    non2xx = 0
    for out in threads_out:
        total += float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))
        m = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", out)
        non2xx += int(m.group(1)) if m else 0
    return total, non2xx


def warm_scaled():
    """W1 (the warm 4-person POST /api/scrape/) on PostgreSQL + Redis, one
    and two API instances, beside the bare server, rounds alternating."""
    rounds = int(os.environ.get("BENCH_ROUNDS", "3"))
    scaled, services = _scaled_services()
    port = harness.free_port()
    bare = subprocess.Popen([os.path.join(os.environ["FP_BUILD_DIR"], "bench", "bare_mhd"),
                             str(port)], stdout=subprocess.PIPE)
    lua = _lua(USERS)
    res = {"one": [], "two": [], "bare": []}
    try:
        harness.wait_until(lambda: _listening(port), what="bare_mhd listening")
        with harness.FakeBoxd(size=1000, common=100, per_page=28) as fake:
            stack = scaled.Stack(services, fake, extra={
                "FILMPICKER_LOG_LEVEL": "warn",
                "FILMPICKER_DATABASE": services.env["FILMPICKER_DATABASE"] + "?schema=benchw_%d"
                % os.getpid()})
            try:
                a = stack.api()
                b = stack.api()
                stack.worker()
                status, body = a.json("POST", "/api/scrape/", json.loads(scrape_body(USERS)),
                                      timeout=60)
                assert status == 200, (status, body)
                time.sleep(0.5)
                for i in range(rounds):
                    res["one"].append(_wrk_many([a.url + "/api/scrape/"], lua))
                    res["two"].append(_wrk_many([a.url + "/api/scrape/", b.url + "/api/scrape/"],
                                                lua))
                    res["bare"].append(_wrk_many(["http://127.0.0.1:%d/api/scrape/" % port], lua))
                    print("warm-scaled round %d: 1 instance %.0f req/s (non-2xx %d), 2 instances "
                          "%.0f req/s (non-2xx %d), bare %.0f req/s"
                          % (i + 1, res["one"][-1][0], res["one"][-1][1], res["two"][-1][0],
                             res["two"][-1][1], res["bare"][-1][0]))
            finally:
                stack.stop()
    finally:
        os.unlink(lua)
        bare.terminate()
        bare.wait(timeout=10)
        services.stop()

    def med(xs):
        return sorted(xs)[len(xs) // 2]
    one, two, m = (med([r[0] for r in res[k]]) for k in ("one", "two", "bare"))
    print("warm-scaled: median 1 instance %.0f req/s (ratio to bare %.2f), 2 instances %.0f "
          "req/s (ratio %.2f), bare %.0f req/s" % (one, one / m, two, two / m, m))


def main():
    what = sys.argv[1] if len(sys.argv) > 1 else "all"
    if what == "cold-scaled":
        cold_scaled()
        return
    if what == "warm-scaled":
        warm_scaled()
        return
    if what == "warm-ab":
        warm_ab(os.path.abspath(sys.argv[2]))
        return
    if what in ("warm", "all", "memory"):
        warm(report_memory=True)
    if what in ("cold", "all"):
        cold()
    if what in ("scrapy", "all"):
        scrapy()
    if what in ("intersect", "all"):
        print(subprocess.run([os.path.join(os.environ["FP_BUILD_DIR"], "bench",
                                           "bench_intersect")],
                             capture_output=True, text=True, check=True).stdout.strip())


if __name__ == "__main__":
    main()
