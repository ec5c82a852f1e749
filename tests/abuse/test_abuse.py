#!/usr/bin/env python3
"""The abuse suite: each attack of issue 8, replayed on loopback against the
real `filmpicker serve` at its default limits, with the attacker on
127.0.0.2 (sockets bound to that source address; slowhttptest through
build/libbindsrc.so) and the honest client on 127.0.0.1. Every loop and
wait is bounded; the whole suite takes about two minutes.

Run: FP_BUILD_DIR=build python3 tests/abuse/test_abuse.py  (or
scripts/test-abuse.sh, which CI runs). Needs slowhttptest (Debian package,
scripts/install-deps.sh installs it).
"""
import csv
import http.client
import io
import json
import os
import re
import resource
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "integration"))

from harness import FakeBoxd, FilmPicker, build_dir, wait_until  # noqa: E402
from spec_check import check_session_event  # noqa: E402

ATTACKER = "127.0.0.2"
HONEST = "127.0.0.1"
HONEST_DEADLINE = 1.0  # seconds: /healthz must answer the honest client within this


def raise_fd_limit():
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    return resource.getrlimit(resource.RLIMIT_NOFILE)[0]


def connect_from(src, port, timeout=2.0):
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.settimeout(timeout)
    s.bind((src, 0))
    s.connect(("127.0.0.1", port))
    return s


def http_from(src, port, method, path, body=None, headers=None, timeout=5.0):
    """(status, headers, body, seconds) of one request on a new connection from src."""
    t0 = time.monotonic()
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout,
                                      source_address=(src, 0))
    try:
        if isinstance(body, (dict, list)):
            body = json.dumps(body).encode()
            headers = dict({"Content-Type": "application/json"}, **(headers or {}))
        conn.request(method, path, body=body, headers=dict(headers or {}))
        resp = conn.getresponse()
        data = resp.read()
        return resp.status, resp.headers, data, time.monotonic() - t0
    finally:
        conn.close()


def probe_from(src, port, path):
    """Like a health checker: GET path, trying again at once when the
    connection is reset, until HONEST_DEADLINE from the first try.
    Returns (status, seconds in all). A connection that arrives in the very
    instant the pool is at libmicrohttpd's hard limit, before the valve has
    cut the flood, is reset by libmicrohttpd: seen once in about ten CI runs."""
    t0 = time.monotonic()
    while True:
        try:
            st, _, _, _ = http_from(src, port, "GET", path)
            return st, time.monotonic() - t0
        except ConnectionResetError:
            if time.monotonic() - t0 >= HONEST_DEADLINE:
                raise
            time.sleep(0.02)


def raw_from(src, port, data, timeout=3.0):
    """Sends raw bytes from src; returns (first answer bytes or b"", seconds until then)."""
    s = connect_from(src, port, timeout=timeout)
    t0 = time.monotonic()
    try:
        s.sendall(data)
        out = b""
        while True:
            try:
                chunk = s.recv(65536)
            except socket.timeout:
                break
            except ConnectionResetError:
                break
            if not chunk:
                break
            out += chunk
            if b"\r\n\r\n" in out:
                head, _, rest = out.partition(b"\r\n\r\n")
                m = re.search(rb"content-length:\s*(\d+)", head, re.I)
                if m and len(rest) >= int(m.group(1)):
                    break
        return out, time.monotonic() - t0
    finally:
        s.close()


def status_of(raw):
    m = re.match(rb"HTTP/1\.[01] (\d{3})", raw)
    return int(m.group(1)) if m else None


def body_of(raw):
    return json.loads(raw.partition(b"\r\n\r\n")[2] or b"null")


def rss_kb(pid):
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


def metric(fp, name, labels=""):
    status, _, body, _ = http_from(HONEST, fp.port, "GET", "/metrics")
    assert status == 200, status
    pat = re.compile(r"^%s%s (\S+)$" % (re.escape(name), re.escape(labels)), re.M)
    m = pat.search(body.decode())
    return float(m.group(1)) if m else None


class HonestProbe(threading.Thread):
    """GET /healthz from 127.0.0.1 every `every` seconds, on a new connection
    each time, recording (status, seconds) or the exception."""

    def __init__(self, port, every=0.2):
        super().__init__(daemon=True)
        self.port, self.every = port, every
        self.results = []
        self.stop = threading.Event()

    def run(self):
        while not self.stop.is_set():
            try:
                st, _, _, secs = http_from(HONEST, self.port, "GET", "/healthz",
                                           timeout=HONEST_DEADLINE + 1)
                self.results.append((st, secs))
            except OSError as e:
                self.results.append((repr(e), None))
            self.stop.wait(self.every)

    def check(self, tc, what):
        tc.assertGreater(len(self.results), 5, what)
        bad = [r for r in self.results if r[0] != 200 or r[1] is None or r[1] >= HONEST_DEADLINE]
        tc.assertEqual(bad, [], "%s: /healthz for the honest client, %d probes" %
                       (what, len(self.results)))


class Client:
    """One browser (cookie + CSRF token) from a source address."""

    def __init__(self, tc, fp, src, cookie=None):
        self.fp, self.src = fp, src
        headers = {"Cookie": "fp_client=" + cookie} if cookie else {}
        st, h, body, _ = http_from(src, fp.port, "GET", "/api/v1/client", headers=headers)
        self.status = st
        self.retry_after = h.get("Retry-After")
        if st != 200:
            self.body = json.loads(body)
            return
        self.cookie = h["Set-Cookie"].split(";", 1)[0]
        self.token = json.loads(body)["csrf_token"]

    def call(self, method, path, obj=None):
        headers = {"Cookie": self.cookie, "X-CSRF-Token": self.token}
        st, h, body, _ = http_from(self.src, self.fp.port, method, path,
                                   body=obj if obj is not None else None, headers=headers)
        return st, h, (json.loads(body) if body else None)


class AbuseTestCase(unittest.TestCase):
    ENV = {}

    @classmethod
    def setUpClass(cls):
        raise_fd_limit()
        cls.fake = FakeBoxd()
        cls.fake.start()
        cls.addClassCleanup(cls.fake.stop)
        cls.fp = FilmPicker(fake=cls.fake, env=cls.ENV, default_limits=True)
        cls.fp.start()
        cls.addClassCleanup(cls.fp.stop)


# ---- connections ----------------------------------------------------------------------------

class ConnectionFloodTest(AbuseTestCase):
    """1,300 idle and slowloris connections from one address."""

    def test_one_address_cannot_fill_the_server(self):
        probe = HonestProbe(self.fp.port)
        probe.start()
        socks, refused = [], 0
        t_end = time.monotonic() + 40
        try:
            for i in range(1300):
                try:
                    s = connect_from(ATTACKER, self.fp.port, timeout=1.0)
                except OSError:
                    refused += 1
                    continue
                if i % 2:  # slowloris: a request line and half a header, then a byte now and then
                    try:
                        s.sendall(b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: ")
                    except OSError:
                        pass
                socks.append(s)
            # keep trickling for 12 s (past the 10 s header timeout)
            trickle_until = time.monotonic() + 12
            while time.monotonic() < trickle_until and time.monotonic() < t_end:
                for s in socks:
                    try:
                        s.send(b"a")
                    except OSError:
                        pass
                time.sleep(1.0)
            time.sleep(1.0)
            open_now = 0
            for s in socks:
                s.setblocking(False)
                try:
                    data = s.recv(1)
                    if data:
                        open_now += 1  # an answer arrived: still open
                except BlockingIOError:
                    open_now += 1
                except OSError:
                    pass
        finally:
            probe.stop.set()
            probe.join(5)
            for s in socks:
                s.close()
        probe.check(self, "during a flood of 1,300 connections from %s" % ATTACKER)
        per_address = metric(self.fp, "filmpicker_connections_max") / 8
        # the address got at most its share; everything that trickled was cut by now
        self.assertGreater(metric(self.fp, "filmpicker_connections_refused_total",
                                  '{reason="per_address"}'), 1300 - per_address - 50)
        self.assertGreater(metric(self.fp, "filmpicker_connections_cut_total",
                                  '{reason="header_timeout"}'), 0)
        self.assertLess(open_now, 50, "slow and idle connections are cut after the header timeout")

class SlowBodyTest(AbuseTestCase):
    """A body that trickles in is cut at body-timeout (5 s here, 60 by
    default), however often a byte arrives."""

    ENV = {"FILMPICKER_BODY_TIMEOUT": "5"}

    def test_slow_body_is_cut(self):
        s = connect_from(ATTACKER, self.fp.port, timeout=2)
        try:
            s.sendall(b"POST /api/v1/jobs HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                      b"Content-Type: application/json\r\nContent-Length: 1000\r\n\r\n{")
            t0 = time.monotonic()
            closed = False
            s.settimeout(1.0)
            while time.monotonic() - t0 < 20:  # body-timeout is 5 s here
                try:
                    s.send(b" ")
                    if s.recv(1) == b"":
                        closed = True
                        break
                except socket.timeout:
                    continue
                except OSError:
                    closed = True
                    break
            self.assertTrue(closed, "a body trickling in is cut")
            self.assertLess(time.monotonic() - t0, 7)
            self.assertGreaterEqual(time.monotonic() - t0, 4.5)
        finally:
            s.close()
        self.assertGreater(metric(self.fp, "filmpicker_connections_cut_total",
                                  '{reason="body_timeout"}'), 0)


class PoolFullTest(unittest.TestCase):
    """A small pool (200) filled from 40 addresses: first by idle sockets,
    which are shed at once (oldest first) so /healthz and ordinary requests
    keep answering; then by requests that wait on a slow watchlist site,
    which cannot be shed: past the soft limit (pool less the reserve) other
    requests get 503 with Retry-After at once, and /healthz still answers
    from the reserve."""

    @classmethod
    def setUpClass(cls):
        raise_fd_limit()
        cls.fake = FakeBoxd(latency_ms=5000)
        cls.fake.start()
        cls.addClassCleanup(cls.fake.stop)
        cls.fp = FilmPicker(fake=cls.fake, default_limits=True,
                            env={"FILMPICKER_MAX_CONNECTIONS": "200",
                                 "FILMPICKER_COMPAT_WAIT_MS": "3000",
                                 # a stop waits for fetches in flight: keep that short
                                 "FILMPICKER_FETCH_TIMEOUT_MS": "2000"})
        cls.fp.start()
        cls.addClassCleanup(cls.fp.stop)

    def test_idle_sockets_are_shed(self):
        socks = []
        try:
            for a in range(40):
                for _ in range(25):
                    try:
                        socks.append(connect_from("127.0.0.%d" % (10 + a), self.fp.port,
                                                  timeout=0.5))
                    except OSError:
                        pass
            st, secs = probe_from(HONEST, self.fp.port, "/healthz")
            self.assertEqual(st, 200)
            self.assertLess(secs, HONEST_DEADLINE)
            # an ordinary request: at once, 503 while the valve is still at work,
            # then served
            st, h, _, secs = http_from(HONEST, self.fp.port, "GET",
                                       "/api/v1/profiles/check?input=alice")
            self.assertLess(secs, HONEST_DEADLINE)
            self.assertIn(st, (200, 503))
            if st == 503:
                self.assertEqual(h["Retry-After"], "5")
            wait_until(lambda: http_from(HONEST, self.fp.port, "GET",
                                         "/api/v1/profiles/check?input=alice")[0] == 200,
                       timeout=2, what="ordinary requests served again")
            shed = (metric(self.fp, "filmpicker_connections_cut_total", '{reason="pressure"}') +
                    metric(self.fp, "filmpicker_connections_refused_total", '{reason="full"}'))
            self.assertGreater(shed, 700)
        finally:
            for s in socks:
                s.close()

    def test_waiting_requests_fill_the_pool(self):
        socks, answers = [], []
        try:
            for a in range(40):
                for k in range(5):
                    try:
                        s = connect_from("127.0.0.%d" % (60 + a), self.fp.port, timeout=1.0)
                    except OSError:
                        continue
                    body = json.dumps({"usernames": [{"name": "slow%d_%d_zq_n20" % (a, k)}]}).encode()
                    s.sendall(b"POST /api/scrape/ HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                              b"Content-Type: application/json\r\nContent-Length: %d\r\n\r\n"
                              % len(body) + body)
                    socks.append(s)
            time.sleep(0.5)
            st, _, _, secs = http_from(HONEST, self.fp.port, "GET", "/healthz")
            self.assertEqual(st, 200)
            self.assertLess(secs, HONEST_DEADLINE)
            # an ordinary request is answered at once: served when the pool has
            # room, else 503 with Retry-After and the connection closed
            st, h, body, secs = http_from(HONEST, self.fp.port, "GET",
                                          "/api/v1/profiles/check?input=alice")
            self.assertLess(secs, HONEST_DEADLINE)
            self.assertIn(st, (200, 503), body)
            # the waiting requests past the soft limit were told so at once
            for s in socks:
                s.settimeout(0.05)
                try:
                    raw = s.recv(400)
                except OSError:
                    continue
                if status_of(raw) == 503 and b"service_unavailable" in raw:
                    answers.append(raw)
                    self.assertIn(b"Retry-After: 5", raw)
                    self.assertIn(b"Connection: close", raw)
            self.assertGreater(len(answers), 0)
            busy = metric(self.fp, "filmpicker_busy_answers_total")
            self.assertGreaterEqual(busy, len(answers))
            self.assertLessEqual(metric(self.fp, "filmpicker_connections"), 200 - 16 + 8)
        finally:
            for s in socks:
                s.close()


class SlowHttpTest(AbuseTestCase):
    """slowhttptest (Debian's) from 127.0.0.2: slow headers, then slow bodies."""

    def run_slowhttptest(self, args, seconds):
        exe = shutil.which("slowhttptest")
        self.assertIsNotNone(exe, "slowhttptest is not installed (scripts/install-deps.sh)")
        shim = os.path.join(build_dir(), "libbindsrc.so")
        self.assertTrue(os.path.exists(shim), shim)
        env = dict(os.environ, LD_PRELOAD=shim, FP_BIND_SRC=ATTACKER)
        probe = HonestProbe(self.fp.port, every=0.25)
        probe.start()
        with tempfile.TemporaryDirectory() as d:
            proc = subprocess.Popen([exe] + args + ["-l", str(seconds), "-o", os.path.join(d, "r")],
                                    env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                    cwd=d)
            try:
                out, _ = proc.communicate(timeout=seconds + 30)
            except subprocess.TimeoutExpired:
                proc.kill()
                out, _ = proc.communicate()
        probe.stop.set()
        probe.join(5)
        return probe, out.decode(errors="replace")

    def test_slow_headers(self):
        url = "http://127.0.0.1:%d/healthz" % self.fp.port
        probe, out = self.run_slowhttptest(["-c", "1000", "-H", "-i", "5", "-r", "200", "-t", "GET",
                                            "-u", url, "-x", "24", "-p", "3"], 20)
        probe.check(self, "during slowhttptest -H (slowloris)\n" + out[-2000:])
        self.assertGreater(metric(self.fp, "filmpicker_connections_refused_total",
                                  '{reason="per_address"}') +
                           metric(self.fp, "filmpicker_connections_cut_total",
                                  '{reason="header_timeout"}'), 0, out[-2000:])

    def test_slow_bodies(self):
        url = "http://127.0.0.1:%d/api/v1/jobs" % self.fp.port
        probe, out = self.run_slowhttptest(["-c", "1000", "-B", "-i", "5", "-r", "200", "-s", "8192",
                                            "-t", "POST", "-u", url, "-x", "10", "-p", "3"], 20)
        probe.check(self, "during slowhttptest -B (slow bodies)\n" + out[-2000:])


# ---- event streams ------------------------------------------------------------------------------

class StreamTest(AbuseTestCase):
    ENV = {"FILMPICKER_STREAM_MAX_LIFE": "5"}

    def open_stream(self, src, sid, last=None):
        conn = http.client.HTTPConnection("127.0.0.1", self.fp.port, timeout=10,
                                          source_address=(src, 0))
        headers = {"Accept": "text/event-stream"}
        if last is not None:
            headers["Last-Event-ID"] = str(last)
        conn.request("GET", "/api/v1/sessions/%s/events" % sid, headers=headers)
        return conn, conn.getresponse()

    def test_stream_caps_and_life(self):
        owner = Client(self, self.fp, HONEST)
        sids = []
        for _ in range(3):
            st, _, sess = owner.call("POST", "/api/v1/sessions", {})
            self.assertEqual(st, 201)
            sids.append(sess["id"])
        a, b, _ = sids
        held = []
        try:
            # one address: 32 streams (over two sessions), then 429
            codes = []
            for k in range(36):
                conn, resp = self.open_stream(ATTACKER, a if k < 20 else b)
                codes.append(resp.status)
                if resp.status == 200:
                    held.append(conn)
                else:
                    body = json.loads(resp.read())
                    self.assertEqual(body["error"]["code"], "rate_limited")
                    self.assertIn("address", body["error"]["message"])
                    self.assertTrue(int(resp.headers["Retry-After"]) >= 1)
                    conn.close()
            self.assertEqual(codes.count(200), 32, codes)
            self.assertEqual(codes.count(429), 4, codes)
            # the honest client still gets its stream
            conn, resp = self.open_stream(HONEST, a)
            self.assertEqual(resp.status, 200)
            held.append(conn)
            # one session: 32 streams in all, whatever the addresses (a has 21)
            more = []
            for _ in range(14):
                conn, resp = self.open_stream("127.0.0.3", a)
                more.append(resp.status)
                if resp.status == 200:
                    held.append(conn)
                else:
                    self.assertIn("session", json.loads(resp.read())["error"]["message"])
                    conn.close()
            self.assertEqual(more.count(200), 32 - 21, more)
            self.assertEqual(more.count(429), 14 - (32 - 21), more)
        finally:
            for c in held:
                c.close()
        # a stream ends of old age with "reconnect", and picks up where it was
        # (the third session: the closed streams above are only noticed by the
        # server at its next write, the keep-alive)
        sid = sids[2]
        conn, resp = self.open_stream(HONEST, sid)
        t0 = time.monotonic()
        text = resp.read().decode()  # ends when the server closes it
        life = time.monotonic() - t0
        conn.close()
        self.assertIn("event: reconnect", text)
        for block in text.split("\n\n"):
            fields = dict(line.split(": ", 1) for line in block.splitlines()
                          if ": " in line and not line.startswith(":"))
            if fields.get("event") == "reconnect":
                self.assertNotIn("id", fields)
                check_session_event({"event": "reconnect", "data": json.loads(fields["data"])})
        self.assertGreaterEqual(life, 4.5)
        self.assertLess(life, 8.5)
        last = max(int(x) for x in re.findall(r"^id: (\d+)$", text, re.M))
        conn, resp = self.open_stream(HONEST, sid, last=last)
        self.assertEqual(resp.status, 200)
        conn.close()


# ---- sessions and memory ---------------------------------------------------------------------

class SessionFloodTest(AbuseTestCase):
    """The loop of the probe: a fresh cookie every 20 sessions, create, add,
    search. Refused after a few dozen, the victim's session survives, RSS
    stays bounded."""

    def test_session_flood(self):
        victim = Client(self, self.fp, HONEST)
        st, _, vs = victim.call("POST", "/api/v1/sessions", {})
        self.assertEqual(st, 201)
        st, _, _ = victim.call("POST", "/api/v1/sessions/%s/participants" % vs["id"],
                               {"profile": "victim_zq"})
        self.assertEqual(st, 201)
        rss0 = rss_kb(self.fp.proc.pid)
        created, refused, retry = 0, 0, []
        client = None
        t_end = time.monotonic() + 20
        for i in range(400):
            if time.monotonic() > t_end:
                break
            if client is None or i % 20 == 0:
                client = Client(self, self.fp, ATTACKER)
                if client.status != 200:
                    self.assertEqual(client.status, 429)
                    self.assertEqual(client.body["error"]["code"], "rate_limited")
                    retry.append(int(client.retry_after))
                    refused += 1
                    client = None
                    continue
            st, h, s = client.call("POST", "/api/v1/sessions", {})
            if st == 429:
                self.assertEqual(s["error"]["code"], "rate_limited")
                retry.append(int(h["Retry-After"]))
                refused += 1
                continue
            self.assertEqual(st, 201, s)
            created += 1
            client.call("POST", "/api/v1/sessions/%s/participants" % s["id"], {"profile": "u1"})
            client.call("POST", "/api/v1/sessions/%s/search" % s["id"], {})
        self.assertLessEqual(created, 60, "one address creates a few dozen sessions at most")
        self.assertGreater(refused, 0)
        self.assertTrue(all(r >= 1 for r in retry), retry)
        st, _, again = victim.call("GET", "/api/v1/sessions/" + vs["id"])
        self.assertEqual(st, 200, "the victim's session is still there")
        self.assertEqual([p["name"] for p in again["participants"]], ["victim_zq"])
        grown_mb = (rss_kb(self.fp.proc.pid) - rss0) / 1024
        self.assertLess(grown_mb, 100, "RSS grew %.0f MB" % grown_mb)
        self.assertGreater(metric(self.fp, "filmpicker_rate_limited_total",
                                  '{class="session"}'), 0)

class SessionCapTest(AbuseTestCase):
    """max-sessions: a full server refuses new sessions with 503 and drops none."""

    ENV = {"FILMPICKER_MAX_SESSIONS": "30", "FILMPICKER_RATE_SESSION_BURST": "1000",
           "FILMPICKER_RATE_CLIENT_BURST": "1000"}

    def test_full_server_never_drops_a_live_session(self):
        victim = Client(self, self.fp, HONEST)
        st, _, vs = victim.call("POST", "/api/v1/sessions", {})
        self.assertEqual(st, 201)
        codes = []
        for i in range(4):
            c = Client(self, self.fp, ATTACKER)
            for _ in range(10):
                st, h, body = c.call("POST", "/api/v1/sessions", {})
                codes.append(st)
                if st == 503:
                    self.assertEqual(body["error"]["code"], "service_unavailable")
                    self.assertGreaterEqual(int(h["Retry-After"]), 1)
        self.assertEqual(codes.count(201), 29, codes)
        self.assertEqual(codes.count(503), 40 - 29, codes)
        self.assertEqual(metric(self.fp, "filmpicker_sessions"), 30)
        st, _, _ = victim.call("GET", "/api/v1/sessions/" + vs["id"])
        self.assertEqual(st, 200)
        st, _, _ = victim.call("POST", "/api/v1/sessions/%s/participants" % vs["id"],
                               {"profile": "still_zq"})
        self.assertEqual(st, 201, "a live session still changes")


class PerBrowserLimitTest(AbuseTestCase):
    """max-sessions-per-client says honestly when a place frees."""

    ENV = {"FILMPICKER_RATE_SESSION_BURST": "1000"}

    def test_per_browser_limit_says_when(self):
        c = Client(self, self.fp, "127.0.0.5")
        codes = []
        for _ in range(22):
            st, h, body = c.call("POST", "/api/v1/sessions", {})
            codes.append(st)
            if st == 429:
                # 20 open sessions: the oldest stops counting after session-ttl (6 h)
                self.assertIn("sessions open", body["error"]["message"])
                self.assertGreater(int(h["Retry-After"]), 6 * 3600 - 120)
                break
        self.assertEqual(codes.count(201), 20, codes)


class UploadAndJobMemoryTest(AbuseTestCase):
    """Upload bodies held at once are capped, and so is the memory of
    finished jobs (jobs-max-mb, 1 MiB here): the oldest go first."""

    ENV = {"FILMPICKER_JOBS_MAX_MB": "1"}

    def test_uploads_at_once_are_capped(self):
        held = []
        try:
            for i in range(16):
                s = connect_from("127.0.0.%d" % (120 + i), self.fp.port)
                s.sendall(b"POST /api/v1/imports HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                          b"Content-Type: multipart/form-data; boundary=xx\r\n"
                          b"Content-Length: 1000000\r\n\r\n--xx\r\n")
                held.append(s)
            time.sleep(0.3)
            raw, secs = raw_from(ATTACKER, self.fp.port,
                                 b"POST /api/v1/imports HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                                 b"Content-Type: multipart/form-data; boundary=xx\r\n"
                                 b"Content-Length: 1000000\r\n\r\n--xx\r\n")
            self.assertEqual(status_of(raw), 503, raw[:300])
            self.assertIn(b"Retry-After: 5", raw)
            self.assertLess(secs, 1.0)
        finally:
            for s in held:
                s.close()

    def test_finished_jobs_stay_within_their_memory(self):
        # a 3,000-film list, stored once; then jobs of it, which cost no fetch
        st, _, body, _ = http_from(HONEST, self.fp.port, "POST", "/api/v1/jobs",
                                   {"participants": [{"profile": "big_zq_n3000"}]})
        self.assertEqual(st, 202, body)
        first = json.loads(body)["id"]
        wait_until(lambda: json.loads(http_from(HONEST, self.fp.port, "GET",
                                                "/api/v1/jobs/" + first)[2])["status"] == "done",
                   timeout=30, what="the first job")
        rss0 = rss_kb(self.fp.proc.pid)
        # one address: the job budget (60 at once) is what it gets
        codes = []
        for _ in range(70):
            st, h, body, _ = http_from(ATTACKER, self.fp.port, "POST", "/api/v1/jobs",
                                       {"participants": [{"profile": "big_zq_n3000"}]})
            codes.append(st)
            if st == 429:
                self.assertIn("searches started", json.loads(body)["error"]["message"])
        self.assertEqual(codes.count(202), 60, codes)
        self.assertEqual(codes.count(429), 10, codes)
        # more addresses: 300 jobs x 3,000 ids x 8 bytes = 7 MB without the cap (1 MiB)
        last = None
        for a in range(5):
            for _ in range(60):
                st, _, body, _ = http_from("127.0.0.%d" % (140 + a), self.fp.port, "POST",
                                           "/api/v1/jobs",
                                           {"participants": [{"profile": "big_zq_n3000"}]})
                self.assertEqual(st, 202, body)
                last = json.loads(body)["id"]
        # jobs finished within the last minute are never dropped: the newest answers
        st, _, _, _ = http_from(HONEST, self.fp.port, "GET", "/api/v1/jobs/%s/results" % last)
        self.assertEqual(st, 200)
        held = metric(self.fp, "filmpicker_jobs_bytes")
        self.assertLessEqual(held, 360 * (3000 * 8 + 4096))
        self.assertLess((rss_kb(self.fp.proc.pid) - rss0) / 1024, 60)


class JobEvictionTest(AbuseTestCase):
    """Past jobs-max-mb the oldest finished jobs go (none younger than 60 s;
    here that grace is shortened by waiting)."""

    ENV = {"FILMPICKER_JOBS_MAX_MB": "1", "FILMPICKER_RATE_JOB_BURST": "100000"}

    def test_oldest_finished_jobs_go_first(self):
        st, _, body, _ = http_from(HONEST, self.fp.port, "POST", "/api/v1/jobs",
                                   {"participants": [{"profile": "big_zq_n3000"}]})
        first = json.loads(body)["id"]
        wait_until(lambda: json.loads(http_from(HONEST, self.fp.port, "GET",
                                                "/api/v1/jobs/" + first)[2])["status"] == "done",
                   timeout=30, what="the first job")
        for _ in range(60):
            http_from(ATTACKER, self.fp.port, "POST", "/api/v1/jobs",
                      {"participants": [{"profile": "big_zq_n3000"}]})
        self.assertEqual(metric(self.fp, "filmpicker_jobs_evicted_total"), 0,
                         "nothing younger than a minute goes")
        time.sleep(61)
        for _ in range(5):
            http_from(ATTACKER, self.fp.port, "POST", "/api/v1/jobs",
                      {"participants": [{"profile": "big_zq_n3000"}]})
        time.sleep(0.5)
        self.assertGreater(metric(self.fp, "filmpicker_jobs_evicted_total"), 20)
        self.assertLessEqual(metric(self.fp, "filmpicker_jobs_bytes"), 1024 * 1024 + 30000 * 8)
        st, _, _, _ = http_from(HONEST, self.fp.port, "GET", "/api/v1/jobs/" + first)
        self.assertEqual(st, 404, "the oldest went first")


class BigGroupTest(AbuseTestCase):
    """A group of 16 that all need fetching is added from one fresh browser
    without a refusal (the browser's bucket is at least max-participants),
    and a refresh of all 16 right after is not refused for good: it waits
    for the buckets to refill (a minute's refill here: 60 a minute)."""

    ENV = {"FILMPICKER_RATE_FETCH_PER_MINUTE": "60"}

    def test_sixteen_people_refresh(self):
        c = Client(self, self.fp, HONEST)
        st, _, sess = c.call("POST", "/api/v1/sessions", {})
        sid = sess["id"]
        for i in range(16):
            st, _, body = c.call("POST", "/api/v1/sessions/%s/participants" % sid,
                                 {"profile": "g%d_zq" % i})
            self.assertEqual(st, 201, body)
        wait_until(lambda: all(p["status"] == "ready" for p in
                               c.call("GET", "/api/v1/sessions/" + sid)[2]["participants"]),
                   timeout=60, what="16 lists read")
        # a refresh of all 16: more than the browser's bucket, so it waits for a full one
        st, h, body = c.call("POST", "/api/v1/sessions/%s/search" % sid, {"refresh": True})
        if st == 429:
            self.assertIn("watchlists fetched", body["error"]["message"])
            self.assertLessEqual(int(h["Retry-After"]), 20, "the tokens come back in time")
            time.sleep(int(h["Retry-After"]))
            st, h, body = c.call("POST", "/api/v1/sessions/%s/search" % sid, {"refresh": True})
        self.assertEqual(st, 202, body)


class SessionsPerAddressTest(AbuseTestCase):
    """max-sessions-per-address (5 here), and X-Forwarded-For from a trusted
    proxy: every header line counts, the right-most untrusted address is the
    client."""

    ENV = {"FILMPICKER_MAX_SESSIONS_PER_ADDRESS": "5", "FILMPICKER_RATE_SESSION_BURST": "1000",
           "FILMPICKER_TRUSTED_PROXIES": "127.0.0.9"}

    def create(self, src, c, xff=()):
        headers = {"Cookie": c.cookie, "X-CSRF-Token": c.token,
                   "Content-Type": "application/json"}
        conn = http.client.HTTPConnection("127.0.0.1", self.fp.port, timeout=5,
                                          source_address=(src, 0))
        try:
            conn.putrequest("POST", "/api/v1/sessions")
            for k, v in headers.items():
                conn.putheader(k, v)
            for line in xff:
                conn.putheader("X-Forwarded-For", line)
            conn.putheader("Content-Length", "2")
            conn.endheaders(b"{}")
            resp = conn.getresponse()
            return resp.status, resp.headers, json.loads(resp.read())
        finally:
            conn.close()

    def test_per_address_cap_and_forwarded_for(self):
        codes = []
        for i in range(7):
            c = Client(self, self.fp, ATTACKER)
            st, h, body = self.create(ATTACKER, c)
            codes.append(st)
            if st == 429:
                self.assertEqual(h["Retry-After"], "600")
                self.assertIn("live sessions", body["error"]["message"])
        self.assertEqual(codes, [201] * 5 + [429] * 2)
        c = Client(self, self.fp, "127.0.0.3")
        self.assertEqual(self.create("127.0.0.3", c)[0], 201, "another address is not touched")
        # through the proxy on 127.0.0.9: the client 10.1.2.3 (with a port) fills its five
        proxy = Client(self, self.fp, "127.0.0.9")
        for _ in range(5):
            self.assertEqual(self.create("127.0.0.9", proxy, ["10.1.2.3:40000"])[0], 201)
        self.assertEqual(self.create("127.0.0.9", proxy, ["10.1.2.3"])[0], 429)
        # a client that writes its own first line does not escape: the proxy's
        # line, last, names it
        self.assertEqual(self.create("127.0.0.9", proxy, ["6.6.6.6", "10.1.2.3"])[0], 429)
        self.assertEqual(self.create("127.0.0.9", proxy, ["10.1.2.3, 10.7.7.7"])[0], 201)
        # not from the proxy: the header is not believed
        self.assertEqual(self.create(ATTACKER, Client(self, self.fp, ATTACKER),
                                     ["10.8.8.8"])[0], 429)


# ---- rate limits ------------------------------------------------------------------------------

class RefreshRateLimitTest(AbuseTestCase):
    def test_refresh_burst_is_refused_with_retry_after(self):
        # 40 refreshes, each a fetch of its own (refreshes of a list already
        # being fetched join that fetch and cost nothing)
        answers = []
        for i in range(40):
            st, h, body, _ = http_from(ATTACKER, self.fp.port, "POST", "/api/v1/jobs",
                                       {"participants": [{"profile": "r%d_zq" % i,
                                                          "refresh": True}]})
            answers.append((st, h.get("Retry-After"), json.loads(body)))
        ok = [a for a in answers if a[0] == 202]
        limited = [a for a in answers if a[0] == 429]
        self.assertGreaterEqual(len(ok), 10)
        self.assertLessEqual(len(ok), 20)
        self.assertEqual(len(ok) + len(limited), 40, [a[0] for a in answers])
        for st, ra, body in limited:
            self.assertEqual(body["error"]["code"], "rate_limited")
            self.assertGreaterEqual(int(ra), 1)
            self.assertLessEqual(int(ra), 60)
        # the honest client is not touched, and a warm answer costs nothing
        st, _, _, _ = http_from(HONEST, self.fp.port, "POST", "/api/v1/jobs",
                                {"participants": [{"profile": "u2"}]})
        self.assertEqual(st, 202)
        wait_until(lambda: json.loads(http_from(HONEST, self.fp.port, "POST", "/api/scrape/",
                                                {"usernames": [{"name": "r0_zq"}]})[2])
                   .get("intersection_len") is not None, timeout=20, what="r0_zq stored")
        for _ in range(50):
            st, _, body, _ = http_from(ATTACKER, self.fp.port, "POST", "/api/scrape/",
                                       {"usernames": [{"name": "r0_zq"}]})
            self.assertEqual(st, 200, body)
        self.assertGreater(metric(self.fp, "filmpicker_rate_limited_total", '{class="fetch"}'), 0)


# ---- small defects ------------------------------------------------------------------------------

class StrictRequestTest(AbuseTestCase):
    def test_dns_rebinding_is_refused(self):
        c = Client(self, self.fp, HONEST)
        for host in ("rebind.evil.example", "rebind.evil.example:%d" % self.fp.port):
            st, h, body, _ = http_from(ATTACKER, self.fp.port, "POST", "/api/v1/sessions", {},
                                       headers={"Host": host, "Origin": "http://" + host,
                                                "Cookie": c.cookie, "X-CSRF-Token": c.token})
            self.assertEqual(st, 400, body)
            self.assertEqual(json.loads(body)["error"]["code"], "invalid_host")
        # reading is refused too, but health and metrics answer under any name
        st, _, _, _ = http_from(ATTACKER, self.fp.port, "GET", "/api/v1/client",
                                headers={"Host": "rebind.evil.example"})
        self.assertEqual(st, 400)
        st, _, _, _ = http_from(ATTACKER, self.fp.port, "GET", "/healthz",
                                headers={"Host": "rebind.evil.example"})
        self.assertEqual(st, 200)

    def test_forwarded_headers_are_not_believed_by_default(self):
        st, h, _, _ = http_from(HONEST, self.fp.port, "GET", "/api/v1/client",
                                headers={"X-Forwarded-Proto": "https"})
        self.assertEqual(st, 200)
        self.assertNotIn("Secure", h["Set-Cookie"])

    def test_json_post_without_content_type_is_415(self):
        st, _, body, _ = http_from(ATTACKER, self.fp.port, "POST", "/api/v1/jobs",
                                   json.dumps({"participants": [{"profile": "u1"}]}).encode())
        self.assertEqual(st, 415)
        self.assertEqual(json.loads(body)["error"]["code"], "unsupported_media_type")

    def test_cut_on_a_character_boundary(self):
        name = "a" * 79 + "é"
        st, _, body, _ = http_from(ATTACKER, self.fp.port, "GET",
                                   "/api/v1/profiles/check?input=" + "a" * 79 + "%C3%A9")
        self.assertEqual(st, 200)
        self.assertEqual(json.loads(body)["error"]["code"], "invalid_username")
        st, _, body, _ = http_from(ATTACKER, self.fp.port, "POST", "/api/v1/jobs",
                                   {"participants": [{"profile": name}]})
        self.assertEqual(st, 422)
        self.assertEqual(json.loads(body)["error"]["code"], "invalid_username")
        mp, ctype = multipart({"username": name}, file_body=b"Date,Name,Year,Letterboxd URI\n")
        st, _, body, _ = http_from(ATTACKER, self.fp.port, "POST", "/api/v1/imports", mp,
                                   headers={"Content-Type": ctype})
        self.assertEqual(st, 422)
        self.assertEqual(json.loads(body)["error"]["code"], "invalid_username")

    def test_long_multipart_field_says_so(self):
        mp, ctype = multipart({"username": "a" * 600}, file_body=b"Date,Name,Year\n")
        st, _, body, _ = http_from(ATTACKER, self.fp.port, "POST", "/api/v1/imports", mp,
                                   headers={"Content-Type": ctype})
        self.assertEqual(st, 400)
        err = json.loads(body)["error"]
        self.assertEqual(err["code"], "invalid_request")
        self.assertIn("'username' field is longer than 512 bytes", err["message"])

    def test_lenient_http_is_refused_at_once(self):
        port = self.fp.port
        cases = [
            ("two Content-Length", 400,
             b"POST /api/v1/jobs HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
             b"Content-Length: 2\r\nContent-Length: 40\r\n\r\n{}"),
            ("no Host", 400, b"GET /healthz HTTP/1.1\r\n\r\n"),
            ("gzip, chunked", 501,
             b"POST /api/v1/jobs HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
             b"Transfer-Encoding: gzip, chunked\r\n\r\n"),
            ("chunked and Content-Length", 400,
             b"POST /api/v1/jobs HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
             b"Transfer-Encoding: chunked\r\nContent-Length: 5\r\n\r\n"),
        ]
        for what, want, data in cases:
            with self.subTest(what=what):
                raw, secs = raw_from(ATTACKER, port, data)
                self.assertEqual(status_of(raw), want, raw[:300])
                self.assertLess(secs, 1.0)
                self.assertIn("error", body_of(raw))

    def test_absurd_chunk_size_gets_no_hang(self):
        """libmicrohttpd 0.9.75 takes a chunk size of 2^64-1 (it is valid
        hex): the body is read and dropped up to 1 MiB past the limit, then
        the connection is closed; a sender that stops is cut by
        body-timeout."""
        s = connect_from(ATTACKER, self.fp.port, timeout=5)
        try:
            s.sendall(b"POST /api/v1/jobs HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                      b"Content-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n"
                      b"ffffffffffffffff\r\n")
            t0 = time.monotonic()
            sent, closed = 0, False
            while sent < 4 * 1024 * 1024 and time.monotonic() - t0 < 5:
                try:
                    s.sendall(b"x" * 65536)
                    sent += 65536
                except OSError:
                    closed = True
                    break
            if not closed:
                s.settimeout(2)
                try:
                    closed = s.recv(100) == b""
                except OSError:
                    closed = True
            # closed well before body-timeout (60 s): by the 1 MiB discard limit
            self.assertTrue(closed, "the connection is closed")
            self.assertLess(time.monotonic() - t0, 8)
            self.assertIn("body_dropped_too_long", self.fp.stderr_text())
        finally:
            s.close()


def multipart(fields, file_body):
    boundary = "fpabuse%d" % int(time.time() * 1000)
    out = io.BytesIO()
    for k, v in fields.items():
        out.write(("--%s\r\nContent-Disposition: form-data; name=\"%s\"\r\n\r\n%s\r\n" %
                   (boundary, k, v)).encode())
    out.write(("--%s\r\nContent-Disposition: form-data; name=\"file\"; filename=\"w.csv\"\r\n"
               "Content-Type: text/csv\r\n\r\n" % boundary).encode())
    out.write(file_body)
    out.write(("\r\n--%s--\r\n" % boundary).encode())
    return out.getvalue(), "multipart/form-data; boundary=" + boundary


if __name__ == "__main__":
    unittest.main(verbosity=2)
