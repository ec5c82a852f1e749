"""Integration tests of group sessions (docs/sessions.md) and the web app's files.

The real `filmpicker serve` runs against the fake Letterboxd (harness.py). Every
JSON answer goes through check_against_spec (spec_check.py, shared with
test_api.py), every event of a stream through check_session_event, and the head
of every event stream through check_head. Expected data comes from the fake's
own account of each user's films (GET /_fake/films/USER), never from
FilmPicker's answers.

Event streams are read with http.client on a socket whose timeout is the time
left before a deadline: every wait is bounded. A stream that timed out is not
read again (its buffer state is undefined).

Not tested here: session expiry (session-ttl is at least 60 s and the tests do
not sleep a minute); expires_at is checked to be created_at + session-ttl.
"""

import gzip
import http.client
import json
import os
import re
import secrets
import signal
import sys
import tempfile
import time
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

from harness import FakeBoxd, FilmPicker  # noqa: E402
from spec_check import (check_against_spec, check_head, check_session_event,  # noqa: E402
                        parse_sse)

PER_PAGE = 28                 # fakeboxd's default films per page
SESSION_TTL = 21600           # FilmPicker's default session-ttl
MAX_PER_CLIENT = 5            # sessions one client may have open (ClientAndLimitsTest)
STREAM_WAIT = 20.0            # seconds a test waits for an event at most
HEX32 = re.compile(r"^[0-9a-f]{32}$")
COOKIE = re.compile(r"^[0-9a-f]{64}$")  # browser id and the server's tag
XSS_TITLE = "<img src=x onerror=alert(1)>"
NOT_FOUND_MSG = "No Letterboxd user called \u201c%s\u201d"
NO_BODY = object()


def read_db_files(db_path):
    """Bytes of the database and its -wal/-shm/-journal files, by name."""
    out = {}
    for suffix in ("", "-wal", "-shm", "-journal"):
        p = db_path + suffix
        if os.path.exists(p):
            with open(p, "rb") as f:
                out[os.path.basename(p)] = f.read()
    return out


def iso_seconds(text):
    return time.mktime(time.strptime(text, "%Y-%m-%dT%H:%M:%SZ"))


# ---- clients and event streams ----------------------------------------------------

class Client:
    """One browser: the fp_client cookie and its CSRF token."""

    def __init__(self, tc, headers=None):
        _, rheaders, data = tc.call("GET", "/api/v1/client", headers=headers, expect=200)
        self.set_cookie = rheaders["Set-Cookie"]
        self.cookie = self.set_cookie.split(";", 1)[0]
        self.id = self.cookie.split("=", 1)[1]
        self.token = data["csrf_token"]
        self.public_url = data["public_url"]
        tc.assertRegex(self.id, COOKIE)

    def headers(self):
        return {"Cookie": self.cookie, "X-CSRF-Token": self.token}


class EventStream:
    """GET /api/v1/sessions/{id}/events, read block by block with deadlines."""

    def __init__(self, tc, sid, last_event_id=None, timeout=STREAM_WAIT):
        self.tc = tc
        self.path = "/api/v1/sessions/%s/events" % sid
        self.conn = http.client.HTTPConnection("127.0.0.1", tc.fp.port, timeout=timeout)
        self.conn.connect()
        self.sock = self.conn.sock
        headers = {"Accept": "text/event-stream"}
        if last_event_id is not None:
            headers["Last-Event-ID"] = str(last_event_id)
        self.conn.request("GET", self.path, headers=headers)
        self.resp = self.conn.getresponse()
        self.status = self.resp.status
        self.headers = self.resp.headers
        self.blocks = []   # every block read, in order
        self.events = []   # the events among them
        self.ended = False
        self.broken = False
        if self.status != 200:
            self.body = self.resp.read()
            self.close()
            return
        check_head("GET", self.path, self.status, self.headers)
        tc.assertEqual(self.headers["Content-Type"], "text/event-stream; charset=utf-8")
        first = self.next_block()
        tc.assertEqual(first, {"retry": 2000}, "a stream starts with its retry: line")

    def close(self):
        self.conn.close()

    def next_block(self, timeout=STREAM_WAIT):
        """The next block, or None at the end of the stream. TimeoutError
        after timeout seconds (the stream is then unusable)."""
        if self.broken:
            raise AssertionError("reading a stream that timed out before")
        if self.ended:
            return None
        deadline = time.monotonic() + timeout
        lines = []
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                self.broken = True
                raise TimeoutError("no complete SSE block within %.1f s" % timeout)
            self.sock.settimeout(left)
            try:
                line = self.resp.readline()
            except (TimeoutError, OSError) as e:
                self.broken = True
                raise TimeoutError("no complete SSE block within %.1f s (%s)" % (timeout, e))
            if not line:
                self.ended = True
                self.tc.assertEqual(lines, [], "the stream ended inside a block")
                return None
            text = line.decode("utf-8")
            self.tc.assertTrue(text.endswith("\n"), text)
            if text == "\n":
                if not lines:
                    continue
                blocks = parse_sse("".join(lines) + "\n")
                self.tc.assertEqual(len(blocks), 1, lines)
                block = blocks[0]
                self.blocks.append(block)
                if "event" in block:
                    check_session_event(block)
                    if self.events:
                        self.tc.assertGreater(block["id"], self.events[-1]["id"],
                                              "event ids increase on a stream")
                    self.events.append(block)
                return block
            lines.append(text)

    def next_event(self, timeout=STREAM_WAIT):
        """The next event (comments skipped); None at the end of the stream."""
        deadline = time.monotonic() + timeout
        while True:
            block = self.next_block(max(0.01, deadline - time.monotonic()))
            if block is None or "event" in block:
                return block

    def until(self, pred, timeout=STREAM_WAIT, what="an event"):
        """Events up to and including the first for which pred(event) holds."""
        out = []
        deadline = time.monotonic() + timeout
        while True:
            ev = self.next_event(max(0.01, deadline - time.monotonic()))
            if ev is None:
                raise AssertionError("the stream ended before %s; got %r" % (what, out))
            out.append(ev)
            if pred(ev):
                return out

    def until_id(self, last_id, timeout=STREAM_WAIT):
        return self.until(lambda e: e["id"] >= last_id, timeout, "event id %d" % last_id)

    def quiet(self, seconds):
        """Asserts that no event comes within seconds; the stream is then
        closed (a timed-out reader is not reused)."""
        try:
            ev = self.next_event(seconds)
        except TimeoutError:
            self.close()
            return
        raise AssertionError("expected no event, got %r" % (ev,))


def apply_event(state, ev):
    """The session state after one event (the client's view of the contract)."""
    name, data = ev["event"], ev["data"]
    if name == "session":
        state = json.loads(json.dumps(data))
    elif name == "participant":
        parts = state["participants"]
        for i, p in enumerate(parts):
            if p["id"] == data["id"]:
                parts[i] = data
                break
        else:
            parts.append(data)
    elif name == "participant_removed":
        state["participants"] = [p for p in state["participants"] if p["id"] != data["id"]]
    elif name == "results":
        state["results"] = data
        state["status"] = "results"
    elif name == "veto":
        if data["vetoed"] and data["film_id"] not in state["vetoed"]:
            state["vetoed"].append(data["film_id"])
        if not data["vetoed"]:
            state["vetoed"].remove(data["film_id"])
        state["results"]["pool"] = data["pool"]
    elif name == "rolled":
        state["rolled"] = data["film"]
    elif name == "watched":
        fid = data["film_id"]
        res = state["results"]
        film = next(f for f in res["common"] + res["most"] + [{"id": fid}] if f["id"] == fid)
        if any(f["id"] == fid for f in res["common"]):
            res["common_count"] -= 1
        res["common"] = [f for f in res["common"] if f["id"] != fid]
        res["most"] = [f for f in res["most"] if f["id"] != fid]
        state["vetoed"] = [v for v in state["vetoed"] if v != fid]
        if state["rolled"] and state["rolled"]["id"] == fid:
            state["rolled"] = None
        state["watched"].append(fid)
        state["watched_films"].append({k: v for k, v in film.items() if k != "lists"})
        res["pool"] = data["pool"]
    elif name == "unwatched":
        fid = data["film_id"]
        state["watched"] = [w for w in state["watched"] if w != fid]
        state["watched_films"] = [f for f in state["watched_films"] if f["id"] != fid]
        if state["results"]:
            state["results"]["pool"] = data["pool"]
    state["version"] = max(state["version"], ev["id"])
    return state


# ---- the base class -----------------------------------------------------------------------

class SessionTestCase(unittest.TestCase):
    """One fake site (FAKE flags, None for none) and one FilmPicker (ENV) per class."""

    FAKE = None
    ENV = {}
    fake = None
    fp = None

    @classmethod
    def setUpClass(cls):
        if cls is SessionTestCase:
            raise unittest.SkipTest("base class")
        cls.names = set()
        cls._films = {}
        if cls.FAKE is not None:
            cls.fake = FakeBoxd(**cls.FAKE)
            cls.fake.start()
            cls.addClassCleanup(cls.fake.stop)
        cls.fp = FilmPicker(fake=cls.fake, env=cls.env())
        cls.fp.start()
        cls.addClassCleanup(cls._stop_server)

    @classmethod
    def env(cls):
        return cls.ENV

    @classmethod
    def _stop_server(cls):
        try:
            cls.fp.stop()  # raises unless the server exits 0 on SIGTERM
        except AssertionError:
            sys.stderr.write("\n--- filmpicker stderr ---\n%s\n" % cls.fp.stderr_text())
            raise

    def user(self, name):
        self.names.add(name.lower())
        return name

    def films(self, user):
        if user not in self._films:
            self._films[user] = self.fake.films(user)
        return self._films[user]

    def slugs(self, user):
        return {f["slug"] for f in self.films(user)}

    def call(self, method, path, obj=NO_BODY, body=None, headers=None, client=None,
             expect=None, code=None, timeout=30.0):
        """One request checked against the spec; client adds its cookie and
        token. Returns (status, headers, parsed JSON or bytes)."""
        hdrs = dict(client.headers()) if client else {}
        hdrs.update(headers or {})
        if obj is not NO_BODY:
            body = json.dumps(obj).encode("utf-8")
            hdrs.setdefault("Content-Type", "application/json")
        status, rheaders, data = self.fp.request(method, path, body=body, headers=hdrs,
                                                 timeout=timeout)
        parsed = check_against_spec(method, path, status, rheaders, data)
        if isinstance(parsed, dict):
            what = "%s %s" % (method, path)
            self.assertEqual(rheaders.get("Content-Security-Policy"),
                             "default-src 'none'; frame-ancestors 'none'", what)
            self.assertEqual(rheaders.get("Cache-Control"), "no-store", what)
            self.assertEqual(rheaders.get("X-Content-Type-Options"), "nosniff", what)
        if expect is not None:
            self.assertEqual(status, expect, "%s %s: %r" % (method, path, data[:600]))
        if code is not None:
            self.assertEqual(parsed["error"]["code"], code, "%s %s: %r" % (method, path, parsed))
        return status, rheaders, parsed

    # -- session calls

    def new_session(self, client, expect=201, code=None):
        status, headers, data = self.call("POST", "/api/v1/sessions", {}, client=client,
                                          expect=expect, code=code)
        if status == 201:
            self.assertEqual(headers["Location"], "/api/v1/sessions/" + data["id"])
            self.assertEqual(data["join_url"], "/s/" + data["id"])
            self.assertEqual((data["status"], data["version"], data["participants"],
                              data["results"], data["vetoed"], data["rolled"], data["watched"]),
                             ("gathering", 1, [], None, [], None, []))
        return data

    def sp(self, sid, rest=""):
        return "/api/v1/sessions/%s%s" % (sid, rest)

    def add(self, client, sid, profile, expect=201, code=None):
        return self.call("POST", self.sp(sid, "/participants"), {"profile": profile},
                         client=client, expect=expect, code=code)[2]

    def search(self, client, sid, expect=202, code=None, refresh=None):
        body = {} if refresh is None else {"refresh": refresh}
        return self.call("POST", self.sp(sid, "/search"), body, client=client, expect=expect,
                         code=code)[2]

    def veto(self, client, sid, film_id, vetoed=True, expect=200, code=None):
        return self.call("POST", self.sp(sid, "/veto"), {"film_id": film_id, "vetoed": vetoed},
                         client=client, expect=expect, code=code)[2]

    def get(self, sid, expect=200, code=None):
        return self.call("GET", self.sp(sid), expect=expect, code=code)[2]

    def wait_results(self, sid, timeout=30.0):
        deadline = time.monotonic() + timeout
        while True:
            s = self.get(sid)
            if s["status"] == "results":
                return s
            if time.monotonic() > deadline:
                self.fail("session %s has no results within %.0f s: %r" % (sid, timeout, s))
            time.sleep(0.05)

    def stream(self, sid, last_event_id=None):
        st = EventStream(self, sid, last_event_id)
        self.addCleanup(st.close)
        self.assertEqual(st.status, 200, getattr(st, "body", b"")[:300])
        return st

    def session_with_results(self, client, names, timeout=30.0):
        s = self.new_session(client)
        for n in names:
            self.add(client, s["id"], n)
        self.search(client, s["id"])
        return self.wait_results(s["id"], timeout=timeout)


# ---- client identity, CSRF, limits ---------------------------------------------------------

class ClientAndLimitsTest(SessionTestCase):
    """Cookies, CSRF tokens and Origin checks, and the limits. No fake site:
    nothing here searches."""

    ENV = {"FILMPICKER_MAX_PARTICIPANTS": "3",
           "FILMPICKER_PUBLIC_URL": "https://films.example.org/fp/",
           "FILMPICKER_TRUSTED_PROXIES": "127.0.0.1",  # X-Forwarded-Proto is believed
           "FILMPICKER_MAX_SESSIONS_PER_CLIENT": str(MAX_PER_CLIENT)}

    def test_client_cookie_flags(self):
        c = Client(self)
        self.assertEqual(c.set_cookie, "fp_client=%s; Path=/; HttpOnly; SameSite=Strict; "
                                       "Max-Age=31536000" % c.id)
        self.assertRegex(c.token, r"^[0-9a-f]{64}$")
        # the address phones reach us at, as configured, without its trailing slash
        self.assertEqual(c.public_url, "https://films.example.org/fp")
        https = Client(self, headers={"X-Forwarded-Proto": "https"})
        self.assertEqual(https.set_cookie, "fp_client=%s; Path=/; HttpOnly; SameSite=Strict; "
                                           "Max-Age=31536000; Secure" % https.id)
        self.assertNotEqual(c.id, https.id)
        self.assertNotEqual(c.token, https.token)
        # a browser that already has the cookie keeps it, and gets the same token
        again = Client(self, headers={"Cookie": c.cookie})
        self.assertEqual((again.id, again.token), (c.id, c.token))
        # a malformed cookie is replaced
        fresh = Client(self, headers={"Cookie": "fp_client=../../etc"})
        self.assertNotEqual(fresh.id, c.id)
        # so is one the server did not sign: a self-chosen id, or a real id with a forged tag
        for forged in ("ab" * 32, c.id[:32] + "0" * 32, c.id[:32]):
            with self.subTest(forged=forged):
                other = Client(self, headers={"Cookie": "fp_client=" + forged})
                self.assertNotEqual(other.id, forged)
                self.assertNotEqual(other.id[:32], c.id[:32])
                # and that cookie cannot change anything, whatever token goes with it
                self.call("POST", "/api/v1/sessions", {}, expect=403, code="csrf_failed",
                          headers={"Cookie": "fp_client=" + forged, "X-CSRF-Token": c.token})

    def test_csrf_is_required_on_every_state_change(self):
        a, b = Client(self), Client(self)
        sid = self.new_session(a)["id"]
        port = self.fp.port
        refused = [
            ("no token", {"Cookie": a.cookie}),
            ("no cookie", {"X-CSRF-Token": a.token}),
            ("wrong token", {"Cookie": a.cookie, "X-CSRF-Token": secrets.token_hex(32)}),
            ("short token", {"Cookie": a.cookie, "X-CSRF-Token": a.token[:32]}),
            ("another client's token", {"Cookie": a.cookie, "X-CSRF-Token": b.token}),
            ("token of another cookie", {"Cookie": b.cookie, "X-CSRF-Token": a.token}),
            ("foreign Origin", dict(a.headers(), Origin="http://evil.example")),
            ("Origin of another port",
             dict(a.headers(), Origin="http://127.0.0.1:%d" % (port + 1))),
            ("Origin null", dict(a.headers(), Origin="null")),
            ("Origin with a path trick", dict(a.headers(),
                                              Origin="http://127.0.0.1:%d.evil.example" % port)),
        ]
        ops = [("POST", "/api/v1/sessions", {}),
               ("POST", self.sp(sid, "/participants"), {"profile": "csrfx_zq"}),
               ("DELETE", self.sp(sid, "/participants/p1"), NO_BODY),
               ("POST", self.sp(sid, "/search"), {}),
               ("POST", self.sp(sid, "/veto"), {"film_id": 1}),
               ("POST", self.sp(sid, "/roll"), {}),
               ("POST", self.sp(sid, "/watched"), {"film_id": 1})]
        for what, headers in refused:
            for method, path, obj in ops:
                with self.subTest(what=what, op="%s %s" % (method, path)):
                    _, _, data = self.call(method, path, obj, headers=headers, expect=403,
                                           code="csrf_failed")
                    self.assertIn("X-CSRF-Token", data["error"]["message"])
        self.assertEqual(self.get(sid)["version"], 1, "nothing changed")
        # the right token with its cookie, with or without this server's Origin
        self.add(a, sid, self.user("csrfok_zq"))
        self.call("POST", self.sp(sid, "/participants"), {"profile": self.user("csrfok2_zq")},
                  client=a, headers={"Origin": "http://127.0.0.1:%d" % port}, expect=201)
        # any client may join someone else's session (the id is the invitation)
        s = self.add(b, sid, self.user("csrfok3_zq"))
        self.assertEqual([p["id"] for p in s["participants"]], ["p1", "p2", "p3"])
        # reading needs no token (each person added is 1 event, then their
        # list's progress: more)
        self.assertGreaterEqual(self.get(sid)["version"], 4)

    def test_participants_and_their_errors(self):
        c = Client(self)
        sid = self.new_session(c)["id"]
        s = self.add(c, sid, "https://letterboxd.com/%s/watchlist/" % self.user("PartA_zq"))
        self.assertEqual(s["participants"], [{
            "id": "p1", "name": "parta_zq", "source": "letterboxd", "status": "queued",
            "pages_fetched": 0, "pages_total": 0, "films": 0, "error": None, "warning": None,
            "recently_watched": []}])
        self.assertEqual(s["version"], 2)
        _, _, data = self.call("POST", self.sp(sid, "/participants"), {"profile": "@parta_zq"},
                               client=c, expect=409, code="already_added")  # the same person
        self.assertEqual(data["error"]["message"], "parta_zq is already in the group")
        self.add(c, sid, "not a name", expect=422, code="invalid_username")
        self.call("POST", self.sp(sid, "/participants"), {"profile": "x", "source": "kp"},
                  client=c, expect=422, code="unknown_source")
        for body in ({}, {"profile": 5}, {"import": 5}, {"profile": None}, []):
            with self.subTest(body=body):
                self.call("POST", self.sp(sid, "/participants"), body, client=c, expect=400,
                          code="invalid_request")
        self.call("POST", self.sp(sid, "/participants"), body=b"{bad", client=c,
                  headers={"Content-Type": "application/json"}, expect=400,
                  code="malformed_json")
        for bad in ("xyz", "E" * 32, "e" * 31, "../" + "e" * 29):
            with self.subTest(import_id=bad):
                self.call("POST", self.sp(sid, "/participants"), {"import": bad}, client=c,
                          expect=404, code="not_found")
        self.call("POST", self.sp(sid, "/search"), {"refresh": "yes"}, client=c, expect=400,
                  code="invalid_request")
        for body in ({}, {"film_id": "1"}, {"film_id": 0}, {"film_id": 1, "vetoed": 1}):
            with self.subTest(veto=body):
                self.call("POST", self.sp(sid, "/veto"), body, client=c, expect=400,
                          code="invalid_request")
        # no results yet: veto, roll and watched are conflicts
        self.veto(c, sid, 1, expect=409, code="conflict")
        self.call("POST", self.sp(sid, "/roll"), {}, client=c, expect=409, code="conflict")
        self.call("POST", self.sp(sid, "/watched"), {"film_id": 1}, client=c, expect=409,
                  code="conflict")
        # removing
        self.call("DELETE", self.sp(sid, "/participants/p9"), client=c, expect=404,
                  code="not_found")
        s = self.call("DELETE", self.sp(sid, "/participants/p1"), client=c, expect=200)[2]
        self.assertEqual(s["participants"], [])
        self.call("DELETE", self.sp(sid, "/participants/p1"), client=c, expect=404)
        # nobody left to search for
        self.search(c, sid, expect=409, code="conflict")
        # ids are not reused
        s = self.add(c, sid, self.user("partb_zq"))
        self.assertEqual([p["id"] for p in s["participants"]], ["p2"])

    def test_unknown_import_fails_at_search_time(self):
        c = Client(self)
        sid = self.new_session(c)["id"]
        s = self.call("POST", self.sp(sid, "/participants"), {"import": "e" * 32}, client=c,
                      expect=201)[2]
        self.assertEqual((s["participants"][0]["name"], s["participants"][0]["source"]),
                         ("Upload 1", "import"))
        self.call("POST", self.sp(sid, "/participants"), {"import": "e" * 32}, client=c,
                  expect=409, code="already_added")  # already in the group
        # read at once: the group learns before searching that it is gone
        deadline = time.monotonic() + 10
        while self.get(sid)["participants"][0]["status"] != "failed":
            self.assertLess(time.monotonic(), deadline)
            time.sleep(0.05)
        self.search(c, sid)
        done = self.wait_results(sid)
        self.assertEqual(done["results"], {"participants": 0, "failed": 1, "common_count": 0,
                                           "common": [], "most": [], "pool": 0})
        p = done["participants"][0]
        self.assertEqual((p["status"], p["error"]),
                         ("failed", {"code": "not_found",
                                     "message": "No stored list for this import; upload it "
                                                "again"}))
        self.call("POST", self.sp(sid, "/roll"), {}, client=c, expect=409, code="conflict")

    def test_too_many_participants(self):
        c = Client(self)
        sid = self.new_session(c)["id"]
        for n in ("tma_zq", "tmb_zq", "tmc_zq"):
            self.add(c, sid, self.user(n))
        _, _, data = self.call("POST", self.sp(sid, "/participants"),
                               {"profile": self.user("tmd_zq")}, client=c, expect=422,
                               code="too_many_participants")
        self.assertIn("3", data["error"]["message"])
        self.assertEqual(len(self.get(sid)["participants"]), 3)

    def test_sessions_per_client(self):
        a, b = Client(self), Client(self)
        for _ in range(MAX_PER_CLIENT):
            self.new_session(a)
        _, headers, data = self.call("POST", "/api/v1/sessions", {}, client=a, expect=429,
                                     code="rate_limited")
        self.assertRegex(headers["Retry-After"], r"^[0-9]+$")
        self.new_session(b)  # another browser is not limited by it

    def test_unknown_sessions_are_404(self):
        c = Client(self)
        for sid in ("0" * 32, "f" * 32, "F" * 32, "abc", "0" * 33, "%2e%2e"):
            with self.subTest(sid=sid):
                self.get(sid, expect=404, code="not_found")
                st = EventStream(self, sid)
                self.assertEqual(st.status, 404)
                check_against_spec("GET", st.path, 404, st.headers, st.body)
                for rest, obj in (("/participants", {"profile": "unk_zq"}),
                                  ("/search", {}), ("/veto", {"film_id": 1}), ("/roll", {}),
                                  ("/watched", {"film_id": 1})):
                    self.call("POST", self.sp(sid, rest), obj, client=c, expect=404,
                              code="not_found")
                self.call("DELETE", self.sp(sid, "/participants/p1"), client=c, expect=404)

    def test_expiry_times(self):
        # session-ttl is at least 60 s: expiry itself is not waited for here
        # a session nobody was added to lives 10 minutes (at most session-ttl);
        # from its first participant on, session-ttl after each change
        c = Client(self)
        s = self.new_session(c)
        self.assertEqual(iso_seconds(s["expires_at"]) - iso_seconds(s["created_at"]),
                         min(SESSION_TTL, 600))
        time.sleep(1.1)
        later = self.add(c, s["id"], self.user("expa_zq"))
        self.assertEqual(later["created_at"], s["created_at"])
        self.assertGreater(iso_seconds(later["expires_at"]), iso_seconds(s["expires_at"]))
        self.assertGreaterEqual(iso_seconds(later["expires_at"]) - iso_seconds(s["created_at"]),
                                SESSION_TTL)

    def test_zz_privacy(self):
        files = read_db_files(self.fp.db_path)
        self.assertTrue(files)
        for fname, data in files.items():
            for name in sorted(self.names):
                self.assertNotIn(name.encode(), data.lower(), (name, fname))


# ---- a whole evening -------------------------------------------------------------------------

class SessionFlowTest(SessionTestCase):
    """Three people (one who does not exist), live events, veto, roll and
    watched; streams side by side and reconnecting."""

    FAKE = {"markup": "react2025", "latency_ms": 60, "size": 100, "common": 20,
            "slow_ms": 1500}

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.opened = time.monotonic()
        # a stream left open from the start, read by the last test (keep-alive)
        tc = cls("test_zz_keep_alive")
        cls.ka_client = Client(tc)
        cls.ka_session = tc.new_session(cls.ka_client)["id"]
        cls.ka_stream = EventStream(tc, cls.ka_session)
        cls.addClassCleanup(cls.ka_stream.close)

    def test_full_flow_with_events(self):
        a, b = self.user("sxfa_zq"), self.user("sxfb_zq")
        ghost = self.user("notfoundsx_zq")
        alice, bob = Client(self), Client(self)
        s = self.new_session(alice)
        sid = s["id"]
        one, two = self.stream(sid), self.stream(sid)
        first = one.next_event()
        self.assertEqual((first["event"], first["id"]), ("session", 1))
        self.assertEqual(first["data"], s)
        self.assertEqual(two.next_event(), first)

        # people join from their own devices; each list is read at once, while
        # the group is still gathering
        self.add(alice, sid, a)
        self.add(bob, sid, "https://letterboxd.com/%s/" % b.upper())
        self.add(bob, sid, ghost)
        settled = {}

        def all_settled(e):
            if e["event"] == "participant" and e["data"]["status"] in ("ready", "failed"):
                settled[e["data"]["id"]] = e["data"]
            return len(settled) == 3

        evs = one.until(all_settled, what="every list read before the search")
        added = [e for e in evs if e["id"] in (2, 3, 4)]
        self.assertEqual([(e["id"], e["event"], e["data"]["id"], e["data"]["name"],
                           e["data"]["status"]) for e in added[:1]],
                         [(2, "participant", "p1", a, "queued")])
        self.assertEqual(self.get(sid)["status"], "gathering")
        progress = {}
        for e in evs:
            self.assertEqual(e["event"], "participant", e)
            progress.setdefault(e["data"]["id"], []).append(e["data"])
        for pid, name in (("p1", a), ("p2", b)):
            seen = progress[pid]
            self.assertEqual((seen[0]["name"], seen[0]["status"]), (name, "queued"), seen)
            total = -(-len(self.films(name)) // PER_PAGE)
            fetched = [p["pages_fetched"] for p in seen]
            self.assertEqual(fetched, sorted(fetched), seen)
            self.assertEqual(seen[-1]["status"], "ready", seen)
            self.assertEqual((seen[-1]["pages_fetched"], seen[-1]["pages_total"],
                              seen[-1]["films"]), (total, total, len(self.films(name))))
            self.assertTrue(any(p["status"] == "fetching" and 0 < p["pages_fetched"] < total
                                for p in seen), "progress before the end: %r" % seen)
            for p in seen:
                self.assertLessEqual(p["pages_fetched"], p["pages_total"])
                self.assertIn(p["status"], ("queued", "fetching", "ready"))
        ghost_last = progress["p3"][-1]
        self.assertEqual(ghost_last["status"], "failed")
        self.assertEqual(ghost_last["error"], {"code": "user_not_found",
                                               "message": NOT_FOUND_MSG % ghost})

        # the search reuses what was read: no page of a and b fetched again
        requests = self.fake.stats()["requests_total"]
        started = self.search(alice, sid)
        self.assertEqual(started["status"], "searching")
        for p in started["participants"]:
            self.assertIn(p["status"], ("queued", "fetching", "ready", "failed"))
        evs = one.until(lambda e: e["event"] == "results", what="results")
        self.assertEqual(evs[0]["event"], "session")
        self.assertEqual(evs[0]["data"]["status"], "searching")
        last = {}
        for e in evs[1:-1]:
            self.assertEqual(e["event"], "participant", e)
            last[e["data"]["id"]] = e["data"]
        final_parts = {p["id"]: p for p in self.get(sid)["participants"]}
        for pid, name in (("p1", a), ("p2", b)):
            self.assertEqual((final_parts[pid]["status"], final_parts[pid]["films"]),
                             ("ready", len(self.films(name))))
        self.assertEqual(final_parts["p3"]["error"]["code"], "user_not_found")
        # only the ghost was asked for again
        self.assertLessEqual(self.fake.stats()["requests_total"] - requests, 2)
        results = evs[-1]["data"]
        true = self.slugs(a) & self.slugs(b)
        self.assertGreaterEqual(len(true), 20)
        self.assertEqual((results["participants"], results["failed"]), (2, 1))
        self.assertEqual(results["common_count"], len(true))
        self.assertEqual({f["slug"] for f in results["common"]}, true)
        self.assertEqual(len(results["common"]), len(true))
        self.assertEqual(results["most"], [])  # 20 or more common films
        by_slug = {f["slug"]: f for f in self.films(a)}
        for f in results["common"]:
            want = by_slug[f["slug"]]
            self.assertEqual((f["title"], f["year"], f["letterboxd_id"]),
                             (want["title"], want["year"], want["lb_id"]))
        self.assertEqual(two.until_id(evs[-1]["id"])[-1], evs[-1])

        # strike out and back
        films = [f["id"] for f in results["common"]]
        mark = self.get(sid)["version"]
        self.veto(alice, sid, films[0])
        self.veto(bob, sid, films[0])  # already struck out: no event
        self.veto(bob, sid, films[0], vetoed=False)
        self.veto(alice, sid, films[1])
        evs = one.until_id(mark + 3)
        n = len(films)
        self.assertEqual([(e["id"], e["event"], e["data"]) for e in evs],
                         [(mark + 1, "veto", {"film_id": films[0], "vetoed": True,
                                              "pool": n - 1}),
                          (mark + 2, "veto", {"film_id": films[0], "vetoed": False, "pool": n}),
                          (mark + 3, "veto", {"film_id": films[1], "vetoed": True,
                                              "pool": n - 1})])
        self.veto(alice, sid, 999999999, expect=404, code="not_found")  # not in the results

        # roll: never a struck-out film
        struck = set(films[1:len(films) // 2])
        for fid in sorted(struck - {films[1]}):
            self.veto(alice, sid, fid)
        self.assertEqual(set(self.get(sid)["vetoed"]), struck)
        for _ in range(12):
            rolled = self.call("POST", self.sp(sid, "/roll"), {}, client=bob, expect=200)[2]
            self.assertIn(rolled["rolled"]["id"], set(films) - struck)
            ev = one.until(lambda e: e["event"] == "rolled", what="rolled")[-1]
            self.assertEqual(ev["data"], {"film": rolled["rolled"]})
            self.assertEqual(ev["id"], rolled["version"])
        # everything struck out: nothing to roll
        for fid in films:
            self.veto(alice, sid, fid)
        self.call("POST", self.sp(sid, "/roll"), {}, client=alice, expect=409, code="conflict")

        # "We will watch it!"
        watched = results["common"][3]
        after = self.call("POST", self.sp(sid, "/watched"), {"film_id": watched["id"]},
                          client=bob, expect=200)[2]
        ev = one.until(lambda e: e["event"] == "watched", what="watched")[-1]
        self.assertEqual(ev["data"], {"film_id": watched["id"], "pool": 0})
        self.assertEqual(after["watched"], [watched["id"]])
        self.assertEqual(after["watched_films"], [watched])
        # each participant who had it sees it as recently watched
        for p in after["participants"][:2]:
            self.assertEqual([r["film"] for r in p["recently_watched"]], [watched])
        self.assertNotIn(watched["id"], after["vetoed"])
        self.assertNotIn(watched["id"], {f["id"] for f in after["results"]["common"]})
        self.assertEqual(after["results"]["common_count"], len(true) - 1)
        self.call("POST", self.sp(sid, "/watched"), {"film_id": watched["id"]}, client=bob,
                  expect=404, code="not_found")  # no longer in the results

        # both streams saw every event, the same; the events rebuild the state
        final = self.get(sid)
        evs_two = two.until_id(final["version"])
        if one.events[-1]["id"] < final["version"]:
            one.until_id(final["version"])
        self.assertEqual(one.events, two.events)
        state = None
        for e in one.events:
            state = apply_event(state, e)
        for key in final:
            if key != "expires_at":
                self.assertEqual(state[key], final[key], key)
        self.assertTrue(evs_two)

        # reconnecting: exactly the missed events, then live ones
        k = one.events[len(one.events) // 2]["id"]
        missed = [e for e in one.events if e["id"] > k]
        again = self.stream(sid, last_event_id=k)
        self.assertEqual(again.until_id(final["version"]), missed)
        self.assertEqual([e["id"] for e in again.events],
                         sorted({e["id"] for e in again.events}))
        # up to date: nothing until the next change
        current = self.stream(sid, last_event_id=final["version"])
        # too new, not a number: a fresh session event
        for bad in (final["version"] + 1, 10 ** 12, "abc", "-1", "", "3x"):
            with self.subTest(last_event_id=bad):
                fresh = self.stream(sid, last_event_id=bad)
                ev = fresh.next_event()
                self.assertEqual((ev["event"], ev["id"]), ("session", final["version"]))
                self.assertEqual(ev["data"], final)
                fresh.close()
        self.veto(alice, sid, films[0], vetoed=False)
        ev = current.next_event()
        self.assertEqual((ev["event"], ev["id"]), ("veto", final["version"] + 1))
        self.assertEqual(again.next_event(), ev)

        # the watched film is gone from both stored lists: a new session of the
        # same people (stored lists, nothing fetched) no longer has it
        requests = self.fake.stats()["requests_total"]
        s2 = self.session_with_results(alice, [a, b])
        self.assertEqual({f["slug"] for f in s2["results"]["common"]}, true - {watched["slug"]})
        self.assertEqual(s2["results"]["common_count"], len(true) - 1)
        for p in s2["participants"]:
            self.assertEqual((p["status"], p["pages_total"]), ("ready", 0))
        self.assertEqual(self.fake.stats()["requests_total"], requests)

    def test_retrying_is_told_while_fetching(self):
        """A page that fails and is tried again shows as a warning on the
        fetching participant (the app's "not answering, retrying..."), gone
        once a page is read; a site that never answers ends as an error."""
        c = Client(self)
        flaky, down = self.user("flakysx_zq"), self.user("downsx_zq")
        sid = self.new_session(c)["id"]
        st = self.stream(sid)
        st.next_event()
        self.add(c, sid, flaky)
        self.add(c, sid, down)
        self.search(c, sid)
        evs = st.until(lambda e: e["event"] == "results", what="results", timeout=60)
        seen = {}
        for e in evs:
            if e["event"] == "participant":
                seen.setdefault(e["data"]["name"], []).append(e["data"])
        for name in (flaky, down):
            warned = [p for p in seen[name] if p["warning"] is not None]
            self.assertTrue(warned, "no retry warning for %s: %r" % (name, seen[name]))
            for p in warned:
                self.assertEqual(p["status"], "fetching", p)
                self.assertEqual(p["warning"]["code"], "source_unavailable", p)
                self.assertEqual(p["error"], None, p)
        self.assertEqual(seen[flaky][-1]["status"], "ready", seen[flaky])
        self.assertEqual(seen[flaky][-1]["warning"], None, seen[flaky])
        self.assertEqual(seen[flaky][-1]["films"], len(self.films(flaky)))
        self.assertEqual(seen[down][-1]["status"], "failed", seen[down])
        self.assertEqual(seen[down][-1]["warning"], None, seen[down])
        self.assertEqual(seen[down][-1]["error"]["code"], "source_unavailable", seen[down])

    def test_replay_window_is_bounded(self):
        c = Client(self)
        name = self.user("sxring_zq")
        s = self.session_with_results(c, [name])
        sid = s["id"]
        fid = s["results"]["common"][0]["id"]
        start = s["version"]
        for i in range(140):  # 280 events: more than the 256 kept
            self.veto(c, sid, fid, True)
            self.veto(c, sid, fid, False)
        now = self.get(sid)["version"]
        self.assertEqual(now, start + 280)
        # too old: a fresh session event
        st = self.stream(sid, last_event_id=start)
        ev = st.next_event()
        self.assertEqual((ev["event"], ev["id"], ev["data"]["version"]), ("session", now, now))
        st.close()
        # still kept: exactly the missed ones
        st = self.stream(sid, last_event_id=now - 256)
        evs = st.until_id(now)
        self.assertEqual([e["id"] for e in evs], list(range(now - 255, now + 1)))
        self.assertEqual([e["event"] for e in evs], ["veto"] * 256)
        self.assertEqual(evs[-1]["data"], {"film_id": fid, "vetoed": False,
                                           "pool": s["results"]["common_count"]})

    def test_group_is_locked_while_searching(self):
        c = Client(self)
        slow, quick = self.user("slowsx_zq_n20"), self.user("sxquick_zq")
        s = self.new_session(c)
        sid = s["id"]
        self.add(c, sid, slow)
        self.add(c, sid, quick)
        st = self.stream(sid)
        self.assertEqual(self.search(c, sid)["status"], "searching")
        self.add(c, sid, self.user("sxlate_zq"), expect=409, code="conflict")
        self.call("DELETE", self.sp(sid, "/participants/p1"), client=c, expect=409,
                  code="conflict")
        self.search(c, sid, expect=409, code="conflict")
        self.veto(c, sid, 1, expect=409, code="conflict")
        st.until(lambda e: e["event"] == "results", what="results")
        done = self.get(sid)
        self.assertEqual(done["status"], "results")
        # a change to the group drops the results: one session event
        v = done["version"]
        after = self.add(c, sid, self.user("sxlate_zq"))
        self.assertEqual((after["status"], after["results"], after["version"]),
                         ("gathering", None, v + 1))
        ev = st.until_id(v + 1)[-1]
        self.assertEqual((ev["event"], ev["data"]), ("session", after))
        after = self.call("DELETE", self.sp(sid, "/participants/p3"), client=c, expect=200)[2]
        ev = st.until_id(v + 2)[-1]
        self.assertEqual((ev["event"], ev["data"]), ("participant_removed", {"id": "p3"}))
        self.assertEqual(len(after["participants"]), 2)

    def test_xss_title_comes_back_as_plain_text(self):
        c = Client(self)
        name = self.user("xsssx_zq")
        titles = [f["title"] for f in self.films(name)]
        self.assertIn(XSS_TITLE, titles)
        s = self.new_session(c)
        st = self.stream(s["id"])
        self.add(c, s["id"], name)
        self.search(c, s["id"])
        ev = st.until(lambda e: e["event"] == "results", what="results")[-1]
        got = self.get(s["id"])
        for res in (ev["data"], got["results"]):
            self.assertEqual(sorted(f["title"] for f in res["common"]), sorted(titles))
        _, _, raw = self.fp.request("GET", self.sp(s["id"]))
        self.assertIn(json.dumps(XSS_TITLE).encode(), raw)

    def test_zz_keep_alive(self):
        st = type(self).ka_stream
        first = st.next_event()
        self.assertEqual(first["event"], "session")
        left = self.opened + 17 - time.monotonic()  # comments come every 15 s
        block = st.next_block(max(0.5, left))
        self.assertEqual(block, {"comment": "keep-alive"})

    def test_zz_privacy(self):
        files = read_db_files(self.fp.db_path)
        self.assertTrue(files)
        for fname, data in files.items():
            for name in sorted(self.names):
                self.assertNotIn(name.encode(), data.lower(), (name, fname))


# ---- shutting down -----------------------------------------------------------------------------

class ShutdownTest(SessionTestCase):
    """SIGTERM ends the event streams and the server exits 0 promptly (the
    class cleanup then checks the exit status again)."""

    def test_sigterm_ends_streams(self):
        c = Client(self)
        sid = self.new_session(c)["id"]
        streams = [self.stream(sid) for _ in range(3)]
        for st in streams:
            self.assertEqual(st.next_event()["event"], "session")
        t0 = time.monotonic()
        self.fp.proc.send_signal(signal.SIGTERM)
        for st in streams:
            self.assertIsNone(st.next_block(timeout=5.0), "the stream ends")
        self.assertEqual(self.fp.proc.wait(timeout=10), 0, self.fp.stderr_text())
        self.assertLess(time.monotonic() - t0, 5.0)


# ---- the web app's files -----------------------------------------------------------------------

WEB_CSP = ("default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
           "connect-src 'self'; font-src 'self'; object-src 'none'; frame-ancestors 'none'; "
           "base-uri 'none'; form-action 'self'")
INDEX = b"<!doctype html><html><head><script type=module src=/assets/app-abc123.js></script>" \
        b"</head><body><div id=root></div></body></html>\n"
APP_JS = b"console.log('FilmPicker');\n" * 50
APP_BR = b"\x1b\x00not-really-brotli\x03"  # no brotli module: only the headers are checked


class WebAppTest(SessionTestCase):
    """FILMPICKER_WEB_DIR pointing at a folder made here."""

    @classmethod
    def env(cls):
        cls._tmp = tempfile.TemporaryDirectory(prefix="fp-web-")
        cls.addClassCleanup(cls._tmp.cleanup)
        root = cls.web = os.path.join(cls._tmp.name, "dist")
        os.makedirs(os.path.join(root, "assets"))
        files = {"index.html": INDEX, "assets/app-abc123.js": APP_JS,
                 "assets/app-abc123.js.gz": gzip.compress(APP_JS),
                 "assets/app-abc123.js.br": APP_BR,
                 "assets/style-def456.css": b"body{margin:0}\n",
                 "assets/.hidden.js": b"hidden\n", "assets/data.bin": b"\x00\x01",
                 "favicon.svg": b"<svg xmlns='http://www.w3.org/2000/svg'/>\n",
                 "robots.txt": b"User-agent: *\nAllow: /\n", "secret.js": b"secret\n"}
        for rel, data in files.items():
            with open(os.path.join(root, rel), "wb") as f:
                f.write(data)
        with open(os.path.join(cls._tmp.name, "secret.txt"), "wb") as f:
            f.write(b"outside\n")
        return {"FILMPICKER_WEB_DIR": root}

    def fetch(self, path, accept_encoding=None, method="GET", expect=200):
        headers = {"Accept-Encoding": accept_encoding} if accept_encoding is not None else {}
        status, rheaders, data = self.call(method, path, headers=headers, expect=expect)
        return rheaders, data

    def check_web_headers(self, headers, cache):
        self.assertEqual(headers["Content-Security-Policy"], WEB_CSP)
        csp = dict((d.strip().split(" ", 1) + [""])[:2] for d in WEB_CSP.split(";"))
        self.assertEqual(csp["default-src"], "'self'")
        self.assertNotIn("unsafe", csp["script-src"])
        self.assertEqual(csp["frame-ancestors"], "'none'")
        self.assertEqual(headers["X-Content-Type-Options"], "nosniff")
        self.assertEqual(headers["Referrer-Policy"], "no-referrer")
        self.assertEqual(headers["Vary"], "Accept-Encoding")
        self.assertEqual(headers["Cache-Control"], cache)

    def test_pages(self):
        sid = secrets.token_hex(16)
        for path in ("/", "/s/" + sid):
            with self.subTest(path=path):
                headers, data = self.fetch(path, accept_encoding="gzip, br")
                self.assertEqual(data, INDEX)
                self.assertEqual(headers["Content-Type"], "text/html; charset=utf-8")
                self.assertIsNone(headers.get("Content-Encoding"))  # no twin of index.html
                self.check_web_headers(headers, "no-cache")
        status, headers, raw = self.fp.request("HEAD", "/")
        check_against_spec("HEAD", "/", status, headers, raw)
        self.assertEqual((status, raw, headers["Content-Length"]), (200, b"", str(len(INDEX))))
        for path, ctype, body in (("/favicon.svg", "image/svg+xml", None),
                                  ("/robots.txt", "text/plain; charset=utf-8", None),
                                  ("/assets/style-def456.css", "text/css; charset=utf-8",
                                   b"body{margin:0}\n")):
            with self.subTest(path=path):
                headers, data = self.fetch(path)
                self.assertEqual(headers["Content-Type"], ctype)
                if body is not None:
                    self.assertEqual(data, body)

    def test_unknown_pages_get_the_apps_own_404(self):
        """A page the app does not have is 404 with index.html (the app shows
        its "page not found"); the API, operations routes and file names keep
        the JSON 404."""
        pages = ("/nope", "/about/deeper/still", "/s/anything", "/s/", "/s/" + "A" * 32,
                 "/s/" + "0" * 31, "/s/%s/x" % ("0" * 32), "/API/scrape/", "/apis", "/docsy")
        for path in pages:
            with self.subTest(path=path):
                headers, data = self.fetch(path, accept_encoding="gzip, br", expect=404)
                self.assertEqual(data, INDEX)
                self.assertEqual(headers["Content-Type"], "text/html; charset=utf-8")
                self.check_web_headers(headers, "no-cache")
        status, headers, raw = self.fp.request("HEAD", "/nope")
        check_against_spec("HEAD", "/nope", status, headers, raw)
        self.assertEqual((status, raw, headers["Content-Type"]),
                         (404, b"", "text/html; charset=utf-8"))
        not_pages = ("/api", "/api/", "/api/nope", "/api/v1/nope", "/api/v1/sessions/x/y/z",
                     "/healthz/x", "/metrics/x", "/assets/", "/assets/a/b.js", "/favicon.ico",
                     "/index.html", "/wp-login.php", "/deep/file.txt")
        for path in not_pages:
            with self.subTest(path=path):
                _, _, data = self.call("GET", path, expect=404, code="not_found")
                self.assertIn(data["error"]["message"], ("no such route", "no such file"))
        for method in ("POST", "DELETE"):
            with self.subTest(method=method):
                _, _, data = self.call(method, "/nope", expect=404, code="not_found")
                self.assertEqual(data["error"]["message"], "no such route")

    def test_content_encoding(self):
        cases = [
            (None, None), ("", None), ("identity", None), ("gzip", "gzip"),
            ("br", "br"), ("gzip, deflate, br", "br"), ("br, gzip", "br"),
            ("br;q=0, gzip", "gzip"), ("br; q=0.0, gzip", "gzip"), ("gzip;q=0", None),
            ("gzip;q=0, br;q=0", None), ("br;q=0.5, gzip;q=1", "br"), ("GZIP", "gzip"),
            ("x-gzip", None), ("deflate", None), ("gzip;q=0.001", "gzip"),
        ]
        for ae, enc in cases:
            with self.subTest(accept_encoding=ae):
                headers, data = self.fetch("/assets/app-abc123.js", accept_encoding=ae)
                self.assertEqual(headers["Content-Type"], "text/javascript; charset=utf-8")
                self.assertEqual(headers.get("Content-Encoding"), enc)
                self.check_web_headers(headers, "public, max-age=31536000, immutable")
                if enc == "gzip":
                    self.assertEqual(gzip.decompress(data), APP_JS)
                elif enc == "br":
                    self.assertEqual(data, APP_BR)
                else:
                    self.assertEqual(data, APP_JS)

    def test_no_traversal_or_hidden_files(self):
        for path in ("/assets/..%2Fsecret.js", "/assets/..%2F..%2Fsecret.txt",
                     "/assets/%2e%2e%2fsecret.js", "/assets/.hidden.js", "/assets/..",
                     "/assets/app-abc123.js.gz", "/assets/app-abc123.js.br", "/assets/data.bin",
                     "/assets/nothere.js", "/assets/nothere.js%00.css",
                     "/assets/app%20abc.js", "/secret.js", "/assets/../secret.js"):
            with self.subTest(path=path):
                _, _, data = self.call("GET", path, expect=404, code="not_found")
                self.assertNotIn(b"secret", json.dumps(data).encode())

    def test_zz_not_built_is_503(self):
        index = os.path.join(self.web, "index.html")
        os.rename(index, index + ".away")
        try:
            for path in ("/", "/s/" + "0" * 32):
                with self.subTest(path=path):
                    _, headers, data = self.call("GET", path, expect=503,
                                                 code="service_unavailable")
                    self.assertIn("not built", data["error"]["message"])
            for path in ("/nope", "/s/anything"):  # no app to say "page not found"
                with self.subTest(path=path):
                    _, _, data = self.call("GET", path, expect=404, code="not_found")
                    self.assertEqual(data["error"]["message"], "no such route")
            self.fetch("/assets/app-abc123.js")  # the rest is still served
        finally:
            os.rename(index + ".away", index)
        self.fetch("/")


if __name__ == "__main__":
    unittest.main(verbosity=2)
