"""Integration tests of FilmPicker's HTTP API against api/openapi.json.

The real `filmpicker serve` runs against the fake Letterboxd (tools/fakeboxd),
one fake site and one server per test class (harness.py). Every answer a
test receives goes through ApiTestCase.call(), which checks it against the
OpenAPI document: the path, method and status must be documented, required
headers present, and a JSON body must validate (Draft 2020-12) against the
documented schema. Expected data is computed independently from the fake's
own account of each user's films (GET /_fake/films/USER), never from
FilmPicker's answers.

Every username a test uses goes through ApiTestCase.user(); the last test of
each class (test_zz_privacy) checks that none of them is in the database
files. The spec checks live in spec_check.py (shared with test_sessions.py,
which covers group sessions, their event streams and the web app's files).
"""

import csv
import http.client
import io
import concurrent.futures
import json
import math
import os
import re
import secrets
import select
import signal
import socket
import sqlite3
import sys
import tempfile
import threading
import time
import unittest
import uuid

import jsonschema

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

from harness import UNREACHABLE_URL, FakeBoxd, FilmPicker, wait_until  # noqa: E402
from spec_check import (SPEC, SPEC_BYTES, check_against_spec, deref,  # noqa: E402
                        error_table, inline, resolve, spec_methods, spec_operations)

REPO = os.path.dirname(os.path.dirname(HERE))
TEST_DATA = os.environ.get("FP_TEST_DATA") or os.path.join(REPO, "tests", "data")
SWAGGER_DIST = os.path.join(REPO, "web", "node_modules", "swagger-ui-dist")
WATCHLIST_CSV = os.path.join(TEST_DATA, "api_watchlist.csv")

PER_PAGE = 28            # fakeboxd's default films per page
MAX_PARTICIPANTS = 16    # FilmPicker's default max-participants
MAX_BODY = 65536         # FilmPicker's default max-body-bytes
JOB_WAIT = 30.0          # seconds a test waits for a job at most
HEX32 = re.compile(r"^[0-9a-f]{32}$")
JSON_HEADERS = {"Content-Type": "application/json"}
NO_BODY = object()
# A web-dir that does not exist: the web app's routes answer 503 (index.html)
# or 404 here whatever the state of web/dist; test_sessions.py serves a real one.
NO_WEB_DIR = os.path.join(tempfile.gettempdir(), "fp-api-no-web-" + secrets.token_hex(8))


# ---- helpers ------------------------------------------------------------------

def multipart(fields=None, files=None):
    """(body, content_type) of a multipart/form-data upload.
    files: {field: (filename, bytes, content_type)}."""
    boundary = "fp" + uuid.uuid4().hex
    out = io.BytesIO()
    for name, value in (fields or {}).items():
        out.write(("--%s\r\nContent-Disposition: form-data; name=\"%s\"\r\n\r\n"
                   % (boundary, name)).encode("utf-8"))
        out.write(value.encode("utf-8") if isinstance(value, str) else value)
        out.write(b"\r\n")
    for name, (filename, data, ctype) in (files or {}).items():
        out.write(("--%s\r\nContent-Disposition: form-data; name=\"%s\"; filename=\"%s\"\r\n"
                   "Content-Type: %s\r\n\r\n" % (boundary, name, filename, ctype))
                  .encode("utf-8"))
        out.write(data)
        out.write(b"\r\n")
    out.write(("--%s--\r\n" % boundary).encode("ascii"))
    return out.getvalue(), "multipart/form-data; boundary=" + boundary


def send_chunked(port, path, chunks, content_type="application/json", timeout=10.0):
    """POSTs chunks with Transfer-Encoding: chunked on a raw socket. Stops
    sending as soon as the server answers (an early 413). Returns (status,
    headers, body); raises AssertionError when the server closes the
    connection without any answer."""
    sock = socket.create_connection(("127.0.0.1", port), timeout=timeout)
    try:
        sock.sendall(("POST %s HTTP/1.1\r\nHost: 127.0.0.1:%d\r\nContent-Type: %s\r\n"
                      "Transfer-Encoding: chunked\r\nConnection: close\r\n\r\n"
                      % (path, port, content_type)).encode("ascii"))
        answered = False
        try:
            for chunk in chunks:
                sock.sendall(b"%x\r\n" % len(chunk) + chunk + b"\r\n")
                if select.select([sock], [], [], 0.01)[0]:
                    answered = True
                    break
            if not answered:
                sock.sendall(b"0\r\n\r\n")
        except OSError:
            pass  # the server stopped reading: its answer may still be there
        resp = http.client.HTTPResponse(sock, method="POST")
        try:
            resp.begin()
            data = resp.read()
        except (http.client.HTTPException, OSError) as e:
            raise AssertionError("POST %s (chunked): the server closed the connection without "
                                 "an answer (%s: %s)" % (path, type(e).__name__, e))
        return resp.status, resp.headers, data
    finally:
        sock.close()


def nested(levels, innermost):
    """A JSON object nested `levels` containers deep (the object itself is
    level 1, each array one more) whose innermost array holds innermost."""
    value = innermost
    for _ in range(levels - 1):
        value = [value] if value is not None else []
    return {"veto": None, "deep": value}


def read_db_files(db_path):
    """Bytes of the database and its -wal/-shm/-journal files, by name."""
    out = {}
    for suffix in ("", "-wal", "-shm", "-journal"):
        p = db_path + suffix
        if os.path.exists(p):
            with open(p, "rb") as f:
                out[os.path.basename(p)] = f.read()
    return out


# ---- the base class ---------------------------------------------------------------

class ApiTestCase(unittest.TestCase):
    """One fake site and one FilmPicker per class; set FAKE (flags or None for
    no fake) and ENV in subclasses."""

    FAKE = {}
    ENV = {}
    fake = None
    fp = None
    names = None

    @classmethod
    def setUpClass(cls):
        if cls is ApiTestCase:
            raise unittest.SkipTest("base class")
        cls.names = set()
        cls._films = {}
        if cls.FAKE is not None:
            cls.fake = FakeBoxd(**cls.FAKE)
            cls.fake.start()
            cls.addClassCleanup(cls.fake.stop)
        cls.fp = FilmPicker(fake=cls.fake, env=cls.ENV)
        cls.fp.start()
        cls.addClassCleanup(cls._stop_server)

    @classmethod
    def _stop_server(cls):
        try:
            cls.fp.stop()  # raises unless the server exits 0 on SIGTERM
        except AssertionError:
            sys.stderr.write("\n--- filmpicker stderr ---\n%s\n" % cls.fp.stderr_text())
            raise

    # -- bookkeeping

    def user(self, name):
        """Registers a username for the privacy check and returns it."""
        self.names.add(name.lower())
        return name

    def films(self, user):
        """The fake's films of a user (cached): [{"lb_id","slug","title","year"}]."""
        if user not in self._films:
            self._films[user] = self.fake.films(user)
        return self._films[user]

    def slugs(self, user):
        return {f["slug"] for f in self.films(user)}

    def user_pages(self, user):
        """{path: times requested} of the fake's pages of one user."""
        prefix = "/%s/" % user.lower()
        return {p: n for p, n in self.fake.stats()["pages"].items()
                if p.lower().startswith(prefix)}

    def pages_of(self, user):
        return max(1, math.ceil(len(self.films(user)) / PER_PAGE))

    # -- requests

    def call(self, method, path, obj=NO_BODY, body=None, headers=None, expect=None, code=None,
             timeout=30.0, server=None):
        """One request, checked against the spec. obj is sent as JSON.
        Returns (status, headers, parsed JSON or bytes)."""
        hdrs = dict(headers or {})
        if obj is not NO_BODY:
            body = json.dumps(obj).encode("utf-8")
            hdrs.setdefault("Content-Type", "application/json")
        srv = server or self.fp
        status, rheaders, data = srv.request(method, path, body=body, headers=hdrs,
                                             timeout=timeout)
        parsed = check_against_spec(method, path, status, rheaders, data)
        if isinstance(parsed, dict) and not path.startswith(("/openapi.json", "/docs")):
            self.check_security_headers(rheaders, "%s %s" % (method, path))
        if expect is not None:
            self.assertEqual(status, expect, "%s %s: %r" % (method, path, data[:600]))
        if code is not None:
            self.assertIsInstance(parsed, dict, "%s %s: %r" % (method, path, data[:300]))
            self.assertEqual(parsed["error"]["code"], code, "%s %s: %r" % (method, path, parsed))
        return status, rheaders, parsed

    def check_security_headers(self, headers, what):
        self.assertEqual(headers.get("X-Content-Type-Options"), "nosniff", what)
        self.assertEqual(headers.get("Referrer-Policy"), "no-referrer", what)
        self.assertEqual(headers.get("Content-Security-Policy"),
                         "default-src 'none'; frame-ancestors 'none'", what)
        self.assertEqual(headers.get("Cache-Control"), "no-store", what)
        self.assertRegex(headers.get("X-Request-Id") or "", r"^[0-9a-f]{16}$", what)

    def scrape(self, names, path="/api/scrape/", expect=200, code=None, refresh=None, **kw):
        people = []
        for n in names:
            p = {"name": n, "type": "lb"}
            if refresh is not None:
                p["refresh"] = n in refresh
            people.append(p)
        return self.call("POST", path, {"usernames": people}, expect=expect, code=code, **kw)[2]

    def start_job(self, participants, expect=202, code=None, server=None):
        status, headers, body = self.call("POST", "/api/v1/jobs", {"participants": participants},
                                          expect=expect, code=code, server=server)
        if status == 202:
            self.assertEqual(headers["Location"], "/api/v1/jobs/" + body["id"])
            self.assertEqual(body["links"], {"self": "/api/v1/jobs/" + body["id"],
                                             "results": "/api/v1/jobs/%s/results" % body["id"]})
        return body

    def wait_job(self, job_id, timeout=JOB_WAIT, server=None):
        """Polls the job until done (bounded); returns (job, statuses seen)."""
        deadline = time.monotonic() + timeout
        seen = []
        while True:
            job = self.call("GET", "/api/v1/jobs/" + job_id, expect=200, server=server)[2]
            seen.append([p["status"] for p in job["participants"]])
            for p in job["participants"]:
                self.assertLessEqual(p["pages_fetched"], p["pages_total"], job)
            if job["status"] == "done":
                for p in job["participants"]:
                    self.assertIn(p["status"], ("ready", "failed"), job)
                return job, seen
            if time.monotonic() > deadline:
                self.fail("job %s not done within %.0f s: %r" % (job_id, timeout, job))
            time.sleep(0.05)

    def results(self, job_id, query="", expect=200, code=None):
        return self.call("GET", "/api/v1/jobs/%s/results%s" % (job_id, query), expect=expect,
                         code=code)[2]

    def roll(self, job_id, veto=None, seed=None, expect=200, code=None):
        body = {}
        if veto is not None:
            body["veto"] = veto
        if seed is not None:
            body["seed"] = seed
        return self.call("POST", "/api/v1/jobs/%s/roll" % job_id, body, expect=expect,
                         code=code)[2]

    # -- the privacy check, last test of every class

    def test_zz_privacy(self):
        # no username used by this class's tests is in the database files
        # (on PostgreSQL: in a dump of everything the server stores)
        if self.fp.pg:
            files = {"pg_dump of " + self.fp.pg.name: self.fp.pg.dump()}
        else:
            files = read_db_files(self.fp.db_path)
            self.assertIn(os.path.basename(self.fp.db_path), files)
        assert_no_usernames(self, files, self.names)


def assert_no_usernames(test, files, names):
    test.assertTrue(sum(len(d) for d in files.values()) > 0, "no database files")
    for fname, data in files.items():
        low = data.lower()
        for name in sorted(names):
            test.assertNotIn(name.lower().encode("utf-8"), low,
                             "username %r is stored in plain text in %s" % (name, fname))


# ---- the spec itself, routes, docs, metrics, headers -----------------------------

class SpecAndOperationsTest(ApiTestCase):
    """The document, the route table and the operational routes. No fake
    site: nothing here fetches."""

    FAKE = None
    ENV = {"FILMPICKER_WEB_DIR": NO_WEB_DIR}

    def sample_path(self, tpl):
        """A concrete path of a template: unknown ids, a file name."""
        return (tpl.replace("{id}", "0" * 32).replace("{pid}", "p1")
                .replace("{file}", "init.js").replace("{film}", "12"))

    def client_headers(self):
        """Cookie and CSRF token of a fresh client (GET /api/v1/client)."""
        _, headers, data = self.call("GET", "/api/v1/client", expect=200)
        cookie = headers["Set-Cookie"].split(";", 1)[0]
        return {"Cookie": cookie, "X-CSRF-Token": data["csrf_token"]}

    def test_spec_is_openapi_31_and_self_consistent(self):
        self.assertEqual(SPEC["openapi"], "3.1.0")
        # every $ref resolves, every schema is a valid 2020-12 schema
        def walk(node, where):
            if isinstance(node, dict):
                if "$ref" in node:
                    resolve(node["$ref"])
                for k, v in node.items():
                    walk(v, where + "/" + k)
            elif isinstance(node, list):
                for i, v in enumerate(node):
                    walk(v, "%s/%d" % (where, i))
        walk(SPEC, "#")
        for name, schema in SPEC["components"]["schemas"].items():
            jsonschema.Draft202012Validator.check_schema(inline(schema))
        ids = []
        for tpl, method in spec_operations():
            op = SPEC["paths"][tpl][method.lower()]
            ids.append(op["operationId"])
            self.assertTrue(op["responses"], tpl)
            # path parameters are declared
            declared = {deref(p)["name"] for p in
                        SPEC["paths"][tpl].get("parameters", []) + op.get("parameters", [])
                        if deref(p)["in"] == "path"}
            self.assertEqual(declared, set(re.findall(r"{(\w+)}", tpl)), tpl)
            for status, resp in op["responses"].items():
                resp = deref(resp)
                self.assertTrue(resp.get("description"), (tpl, method, status))
                if status in ("429", "503"):
                    self.assertIn("Retry-After", resp["headers"], (tpl, method, status))
                if status == "405":
                    self.assertIn("Allow", resp["headers"], (tpl, method, status))
                if status == "202":
                    self.assertIn("Location", resp["headers"], (tpl, method, status))
            self.assertIn("405", op["responses"], (tpl, method))
        self.assertEqual(len(ids), len(set(ids)), "operationIds are unique")

    def test_error_codes_match_the_error_table(self):
        table = error_table()
        codes = [c for c, _ in table if c != "ok"]
        self.assertEqual(SPEC["components"]["schemas"]["ErrorCode"]["enum"], codes)
        # each per-status error response allows exactly that status's codes
        by_status = {}
        for c, s in table:
            if c != "ok":
                by_status.setdefault(s, set()).add(c)
        seen = set()
        for tpl, method in spec_operations():
            for status, resp in SPEC["paths"][tpl][method.lower()]["responses"].items():
                if not status.startswith(("4", "5")):
                    continue
                schema = deref(resp)["content"]["application/json"]["schema"]
                if (tpl, method, status) == ("/readyz", "GET", "503"):
                    continue  # not an error: the readiness report, each check's state
                allowed = set(schema["allOf"][1]["properties"]["error"]["properties"]["code"]
                              ["enum"])
                self.assertEqual(allowed, by_status[int(status)], (tpl, method, status))
                seen.add(int(status))
        self.assertTrue({400, 404, 405, 409, 413, 415, 422, 429, 502, 503, 504} <= seen, seen)
        # and every such status is one the error table can produce
        self.assertTrue(seen <= set(by_status), seen - set(by_status))

    def test_the_spec_check_catches_wrong_answers(self):
        ok = {"Content-Type": "application/json", "X-Request-Id": "0123456789abcdef"}
        film = {"id": 1, "title": "Heat", "year": 1995, "slug": "heat", "letterboxd_id": 7,
                "url": "https://letterboxd.com/film/heat/", "poster": None}
        job_path = "/api/v1/jobs/%s/roll" % ("0" * 32)
        check_against_spec("POST", job_path, 200, ok, json.dumps({"film": film}).encode())
        wrong = [
            ("POST", job_path, 200, ok, {"film": dict(film, extra=1)}),     # unknown field
            ("POST", job_path, 200, ok, {"film": dict(film, year="1995")}),  # wrong type
            ("POST", job_path, 200, {"Content-Type": "application/json"},
             {"film": film}),                                                # no X-Request-Id
            ("POST", job_path, 201, ok, {"film": film}),                     # undocumented
            ("POST", job_path, 409, ok, {"error": {"code": "user_not_found", "message": "x"}}),
            ("POST", job_path, 409, ok, {"error": {"code": "conflict"}}),    # no message
            ("POST", "/api/v1/jobs", 202, ok, {"id": "0" * 32}),             # no Location
            ("POST", "/api/scrape/", 503, ok,
             {"error": {"code": "still_fetching", "message": "x"}}),         # no Retry-After
            ("GET", "/api/scrape/", 405, dict(ok, Allow="GET"),
             {"error": {"code": "method_not_allowed", "message": "x"}}),     # wrong Allow
            ("GET", "/nowhere", 200, ok, {}),                                # not a route
            ("POST", "/api/scrape/", 200, {"Content-Type": "text/html",
                                           "X-Request-Id": "0123456789abcdef"},
             {"intersection_len": 0, "intersection": []}),                   # media type
        ]
        sid = "0" * 32
        session = {"id": sid, "join_url": "/s/" + sid, "status": "gathering", "version": 1,
                   "created_at": "2026-01-01T00:00:00Z", "expires_at": "2026-01-01T06:00:00Z",
                   "participants": [], "results": None, "vetoed": [], "rolled": None,
                   "watched": [], "watched_films": []}
        part = {"id": "p1", "name": "alice", "source": "letterboxd", "status": "waiting",
                "pages_fetched": 0, "pages_total": 0, "films": 0, "error": None,
                "warning": None, "recently_watched": []}
        spath = "/api/v1/sessions/" + sid
        check_against_spec("GET", spath, 200, ok, json.dumps(
            dict(session, participants=[part])).encode())
        csrf = {"error": {"code": "csrf_failed", "message": "x"}}
        wrong += [
            ("GET", spath, 200, ok, dict(session, _client="c")),              # internal field
            ("GET", spath, 200, ok, dict(session, status="done")),            # bad status
            ("GET", spath, 200, ok, dict(session, participants=[dict(part, status="x")])),
            ("GET", spath, 200, ok, dict(session, participants=[dict(part, _user="a")])),
            ("GET", spath, 200, ok, {k: v for k, v in session.items() if k != "version"}),
            ("POST", spath + "/roll", 403, ok, {"error": {"code": "conflict",
                                                          "message": "x"}}),  # 403 is csrf
            ("GET", spath, 403, ok, csrf),                                    # GET needs none
            ("POST", "/api/v1/sessions", 201, ok, session),                   # no Location
            ("GET", "/api/v1/client", 200, ok, {"csrf_token": "ab" * 32}),    # no Set-Cookie
            ("GET", "/api/v1/client", 200,
             dict(ok, **{"Set-Cookie": "fp_client=%s; Path=/" % sid}),
             {"csrf_token": "ab" * 32}),                                      # not HttpOnly
        ]
        for method, path, status, headers, body in wrong:
            with self.subTest(method=method, path=path, status=status, body=body):
                with self.assertRaises(AssertionError):
                    check_against_spec(method, path, status, headers, json.dumps(body).encode())

    def test_served_spec_is_the_file_in_the_repo(self):
        status, headers, _ = self.call("GET", "/openapi.json", expect=200)
        _, _, raw = self.fp.request("GET", "/openapi.json")
        self.assertEqual(raw, SPEC_BYTES)
        self.assertEqual(headers["Content-Type"], "application/json")
        self.assertEqual(headers["X-Content-Type-Options"], "nosniff")

    def server_routes(self):
        """The server's route table, from the route labels /metrics registers
        for every route at start-up."""
        _, _, text = self.call("GET", "/metrics", expect=200)
        labels = set(re.findall(
            r'^filmpicker_http_request_duration_seconds_count\{route="([^"]+)"\}',
            text.decode("utf-8"), re.M))
        self.assertIn("unmatched", labels)
        labels.discard("unmatched")
        return {tuple(label.split(" ", 1)) for label in labels}

    def test_every_server_route_is_in_the_spec_and_back(self):
        server = self.server_routes()
        spec = {(m, tpl) for tpl, m in spec_operations()}
        self.assertEqual(len(server), 37, server)
        self.assertEqual(server - spec, set(), "routes the spec does not document")
        self.assertEqual(spec - server, set(), "documented operations the server lacks")

    def test_every_documented_operation_is_answered(self):
        client = self.client_headers()
        for tpl, method in spec_operations():
            path = self.sample_path(tpl)
            op = SPEC["paths"][tpl][method.lower()]
            body, headers = None, {}
            # session routes that change state need the client's cookie and token
            if any(deref(p)["name"] == "X-CSRF-Token" for p in op.get("parameters", [])):
                headers = dict(client)
            content = (op.get("requestBody") and deref(op["requestBody"])["content"]) or {}
            if "application/json" in content:
                body = b"{}"
                schema = deref(content["application/json"]["schema"])
                if tpl.startswith("/api/v1/sessions/") and schema.get("examples"):
                    body = json.dumps(schema["examples"][0]).encode()  # valid: reaches the 404
                headers.update(JSON_HEADERS)
            elif "multipart/form-data" in content:
                body, ctype = multipart({"note": "no file here"})
                headers["Content-Type"] = ctype
            with self.subTest(op="%s %s" % (method, tpl)):
                status, _, data = self.call(method, path, body=body, headers=headers)
                self.assertNotEqual(status, 405)
                self.assertNotEqual(status, 403, "the client's token was refused: %r" % data)
                if status == 404:
                    self.assertNotEqual(data["error"]["message"], "no such route")
                if tpl.startswith("/api/v1/sessions/"):  # an unknown session
                    self.assertEqual(status, 404, data)
                if tpl in ("/", "/s/{id}"):  # no web app in NO_WEB_DIR
                    self.assertEqual((status, data["error"]["code"]),
                                     (503, "service_unavailable"))

    def test_other_methods_are_405_with_allow(self):
        for tpl in SPEC["paths"]:
            path = self.sample_path(tpl)
            allowed = spec_methods(tpl)
            for method in ("GET", "POST", "PUT", "DELETE", "PATCH"):
                if method in allowed:
                    continue
                with self.subTest(path=path, method=method):
                    _, headers, data = self.call(method, path, expect=405,
                                                 code="method_not_allowed")
                    self.check_security_headers(headers, path)

    def test_head_answers_like_get_without_body(self):
        status, headers, _ = self.call("HEAD", "/healthz", expect=200)
        self.assertEqual(headers["Content-Type"], "application/json")

    def test_unknown_routes_are_404(self):
        for path in ("/nope", "/api", "/api/v1", "/api/v1/jobs/", "/API/scrape/",
                     "/api/v1/jobs/%s/extra" % ("0" * 32), "/api/scrape//", "/healthz/",
                     "/api/v2/jobs", "/s/", "/s/%s/x" % ("0" * 32), "/assets/",
                     "/assets/a/b.js", "/api/v1/sessions/", "/index.html",
                     "/api/v1/sessions/%s/participants/" % ("0" * 32)):
            for method in ("GET", "POST"):
                with self.subTest(method=method, path=path):
                    _, _, data = self.call(method, path, expect=404, code="not_found")
                    self.assertEqual(data["error"]["message"], "no such route")

    def test_healthz(self):
        _, _, data = self.call("GET", "/healthz", expect=200)
        self.assertEqual(data["status"], "ok")

    def test_profile_check(self):
        cases = [
            ("alice", {"valid": True, "source": "letterboxd", "username": "alice"}),
            ("https%3A%2F%2Fletterboxd.com%2FAlice%2Fwatchlist%2F",
             {"valid": True, "source": "letterboxd", "username": "alice"}),
            ("%40bob_2", {"valid": True, "source": "letterboxd", "username": "bob_2"}),
        ]
        for q, want in cases:
            with self.subTest(q=q):
                _, _, data = self.call("GET", "/api/v1/profiles/check?input=" + q, expect=200)
                self.assertEqual(data, want)
        for q, code in (("a%2Fb", "invalid_username"), ("..%2Fetc", "invalid_username"),
                        ("https%3A%2F%2Fevil.example%2Falice%2F", "invalid_username"),
                        ("alice&source=kp", "unknown_source")):
            with self.subTest(q=q):
                _, _, data = self.call("GET", "/api/v1/profiles/check?input=" + q, expect=200)
                self.assertIs(data["valid"], False)
                self.assertEqual(data["error"]["code"], code)
        self.call("GET", "/api/v1/profiles/check", expect=400, code="invalid_request")

    def test_docs_page_and_swagger_files(self):
        docs_csp = None
        for path in ("/docs", "/docs/"):
            _, headers, page = self.call("GET", path, expect=200)
            self.assertTrue(headers["Content-Type"].startswith("text/html"))
            self.assertIn(b"swagger-ui-bundle.js", page)
            self.assertNotIn(b"http://", page.replace(b"http://www.w3.org", b""))
            self.assertNotIn(b"https://", page)
            docs_csp = headers["Content-Security-Policy"]
            self.assertIn("default-src 'self'", docs_csp)
            self.assertIn("frame-ancestors 'none'", docs_csp)
            self.assertNotIn("unsafe-eval", docs_csp)
            self.assertNotIn("script-src", docs_csp)  # scripts fall back to 'self'
        bundle = os.path.join(SWAGGER_DIST, "swagger-ui-bundle.js")
        self.assertTrue(os.path.exists(bundle),
                        "swagger-ui-dist is not installed: run `cd web && npm ci`")
        for name, ctype in (("swagger-ui-bundle.js", "text/javascript"),
                            ("swagger-ui-standalone-preset.js", "text/javascript"),
                            ("swagger-ui.css", "text/css")):
            with self.subTest(name=name):
                _, headers, data = self.call("GET", "/docs/" + name, expect=200)
                with open(os.path.join(SWAGGER_DIST, name), "rb") as f:
                    self.assertEqual(data, f.read())
                self.assertTrue(headers["Content-Type"].startswith(ctype))
                self.assertEqual(headers["Content-Security-Policy"], docs_csp)
                self.assertEqual(headers["X-Content-Type-Options"], "nosniff")
        _, _, init = self.call("GET", "/docs/init.js", expect=200)
        with open(os.path.join(REPO, "api", "docs", "init.js"), "rb") as f:
            self.assertEqual(init, f.read())
        for name in ("nothere.js", ".hidden.js", "package.json", "README.md", "nothere.js%00.css",
                     "..%2F..%2Fsrc%2Fmain.c", "%2e%2e", "Swagger-UI.css"):
            with self.subTest(name=name):
                self.call("GET", "/docs/" + name, expect=404, code="not_found")

    def test_metrics_names_and_request_counts(self):
        documented = set(re.findall(r"`(filmpicker_[a-z_]+)",
                                    SPEC["paths"]["/metrics"]["get"]["description"]))
        self.assertGreaterEqual(len(documented), 9)

        def scrape_metrics():
            _, headers, text = self.call("GET", "/metrics", expect=200)
            self.assertTrue(headers["Content-Type"].startswith("text/plain"))
            return text.decode("utf-8")

        def healthz_count(text):
            m = re.search(r'^filmpicker_http_requests_total\{route="GET /healthz",status="200"\} '
                          r'(\d+)$', text, re.M)
            return int(m.group(1)) if m else 0

        # requests are counted when their connection completes, a moment after the
        # client has the answer: let earlier tests' requests settle first
        time.sleep(0.3)
        before = scrape_metrics()
        types = set(re.findall(r"^# TYPE (\S+) (?:counter|gauge|histogram)$", before, re.M))
        self.assertEqual(types, documented)
        for name in ("filmpicker_http_request_duration_seconds_bucket",
                     "filmpicker_http_request_duration_seconds_sum",
                     "filmpicker_http_request_duration_seconds_count",
                     "filmpicker_pages_fetched_total", "filmpicker_fetch_requests_total"):
            self.assertRegex(before, r"(?m)^%s[{ ]" % name)
        for _ in range(3):
            self.call("GET", "/healthz", expect=200)
        self.call("GET", "/no-such-route", expect=404)
        unmatched = re.compile(r'(?m)^filmpicker_http_requests_total\{route="unmatched",'
                               r'status="404"\} [1-9]')
        after = wait_until(lambda: (lambda t: t if healthz_count(t) - healthz_count(before) >= 3
                                    and unmatched.search(t) else None)(scrape_metrics()),
                           timeout=5, what="the requests counted")
        time.sleep(0.2)
        self.assertEqual(healthz_count(scrape_metrics()) - healthz_count(before), 3)

    def test_request_ids_differ(self):
        ids = {self.call("GET", "/healthz", expect=200)[1]["X-Request-Id"] for _ in range(5)}
        self.assertEqual(len(ids), 5)


# ---- the first version's API ---------------------------------------------------------

class CompatApiTest(ApiTestCase):
    """POST /api/scrape/ and /api/watchlist/remove against the classic markup."""

    FAKE = {"markup": "classic"}

    def true_intersection(self, names):
        return set.intersection(*[self.slugs(n) for n in names])

    def test_intersection_of_three_users(self):
        names = [self.user(n) for n in ("cpann_zq", "cpben_zq", "cpcat_zq")]
        true = self.true_intersection(names)
        self.assertGreater(len(true), 3)  # the fake's 20 common films and more
        data = self.scrape(names)
        self.assertEqual(data["intersection_len"], len(true))
        self.assertEqual(len(data["intersection"]), min(len(names) + 1, len(true)))
        self.assertEqual(len(set(data["intersection"])), len(data["intersection"]))
        self.assertLessEqual(set(data["intersection"]), true)
        # every page of every user was fetched exactly once, none past the end
        for n in names:
            pages = self.user_pages(n)
            self.assertEqual(len(pages), self.pages_of(n), (n, pages))
            self.assertEqual(set(pages.values()), {1}, (n, pages))

    def test_no_trailing_slash_is_the_same_route(self):
        names = [self.user(n) for n in ("cpns1_zq", "cpns2_zq")]
        data = self.scrape(names, path="/api/scrape")
        self.assertEqual(data["intersection_len"], len(self.true_intersection(names)))

    def test_second_call_is_served_from_storage(self):
        names = [self.user(n) for n in ("cpst1_zq", "cpst2_zq", "cpst3_zq")]
        first = self.scrape(names)
        requests = self.fake.stats()["requests_total"]
        # the same people, spelled differently
        spelled = ["https://letterboxd.com/%s/" % names[0].upper(), "@" + names[1],
                   "https://letterboxd.com/%s/watchlist/" % names[2]]
        for people in (names, spelled):
            data = self.scrape(people)
            self.assertEqual(data["intersection_len"], first["intersection_len"])
            self.assertLessEqual(set(data["intersection"]), self.true_intersection(names))
        self.assertEqual(self.fake.stats()["requests_total"], requests)

    def test_refresh_fetches_again(self):
        names = [self.user(n) for n in ("cprf1_zq", "cprf2_zq")]
        self.scrape(names)
        before = {n: self.user_pages(n) for n in names}
        data = self.scrape(names, refresh={names[0]})
        self.assertEqual(data["intersection_len"], len(self.true_intersection(names)))
        again = self.user_pages(names[0])
        self.assertEqual(set(again), set(before[names[0]]))
        for path, n in again.items():
            self.assertEqual(n, before[names[0]][path] + 1, path)
        self.assertEqual(self.user_pages(names[1]), before[names[1]])  # not refreshed

    def test_remove_film_from_stored_lists(self):
        a, b = self.user("cprma_zq"), self.user("cprmb_zq")
        never = self.user("cprmnever_zq")  # no stored list: read first, then changed
        true = self.true_intersection([a, b])
        first = self.scrape([a, b])
        self.assertEqual(first["intersection_len"], len(true))
        film = sorted(first["intersection"])[0]
        self.assertIn(film, self.slugs(never))  # the fake's common films are on every list
        body = {"film": film, "usernames": [{"name": a}, {"name": b.upper(), "type": "LB"},
                                            {"name": never, "type": "Letterboxd"}]}
        _, _, data = self.call("POST", "/api/watchlist/remove", body, expect=200)
        self.assertEqual(data, {"results": {a: True, b.upper(): True, never: True}})
        self.assertEqual(len(self.user_pages(never)), self.pages_of(never))  # read once
        requests = self.fake.stats()["requests_total"]
        _, _, data = self.call("POST", "/api/watchlist/remove/", body, expect=200)
        self.assertEqual(data, {"results": {a: False, b.upper(): False, never: False}})
        self.assertEqual(self.scrape([never])["intersection_len"], len(self.films(never)) - 1)
        # a slug nobody has
        _, _, data = self.call("POST", "/api/watchlist/remove",
                               {"film": "no-such-film-zq", "usernames": [{"name": a}]},
                               expect=200)
        self.assertEqual(data, {"results": {a: False}})
        again = self.scrape([a, b])
        self.assertEqual(again["intersection_len"], len(true) - 1)
        self.assertNotIn(film, again["intersection"])
        # the whole intersection, from the stored lists, through the v1 API
        job = self.start_job([{"profile": a}, {"profile": b}])
        self.assertEqual(job["status"], "done")
        res = self.results(job["id"])
        self.assertEqual({f["slug"] for f in res["common"]}, true - {film})
        self.assertEqual(self.fake.stats()["requests_total"], requests)  # nothing fetched

    def test_single_user_gives_their_whole_list(self):
        name = self.user("cpone_zq")
        data = self.scrape([name])
        self.assertEqual(data["intersection_len"], len(self.films(name)))
        self.assertEqual(len(data["intersection"]), 2)
        self.assertLessEqual(set(data["intersection"]), self.slugs(name))


class CompatNoCommonTest(ApiTestCase):
    """Users who share nothing: a fake without common films."""

    FAKE = {"common": 0, "universe": 20000, "size": 40}

    def test_no_common_films_is_200_and_empty(self):
        candidates = ["ncm%d_zq" % i for i in range(1, 12)]
        group = None
        for i in range(len(candidates) - 2):
            trio = candidates[i:i + 3]
            if not set.intersection(*[self.slugs(n) for n in trio]):
                group = trio
                break
        self.assertIsNotNone(group, "no three fake users without a common film")
        for n in group:
            self.user(n)
        data = self.scrape(group)
        self.assertEqual(data, {"intersection_len": 0, "intersection": []})
        # the v1 results of the same people: nothing common, "most" is what two share
        job = self.start_job([{"profile": n} for n in group])
        self.assertEqual(job["status"], "done")
        res = self.results(job["id"])
        self.assertEqual((res["common_count"], res["common"]), (0, []))
        counts = {}
        for n in group:
            for s in self.slugs(n):
                counts[s] = counts.get(s, 0) + 1
        self.assertEqual({f["slug"]: f["lists"] for f in res["most"]},
                         {s: c for s, c in counts.items() if c >= 2})


class CompatWaitTest(ApiTestCase):
    """The first version's routes against a slow site, with the default
    compat-wait-ms. A cold fetch takes two rounds of 2 s pages (page 1, then
    the others at once), longer than the ~3 s after which the server used to
    answer 503 still_fetching; the first version blocked until the lists were
    read, and so do its routes here: 200 with the answer. The idle connection
    timeout (2 s here) does not cut a request waiting on a fetch. The client
    sends the type in upper case, as the first version's web client does."""

    FAKE = {"markup": "classic", "latency_ms": 2000}
    ENV = {"FILMPICKER_REQUEST_TIMEOUT": "2"}
    SLOW = 3.5  # seconds: two rounds of page latency, at least

    def test_scrape_waits_for_a_cold_fetch(self):
        names = [self.user("cwa_zq_n60"), self.user("cwb_zq_n60")]
        true = set.intersection(*[self.slugs(n) for n in names])
        start = time.monotonic()
        _, _, data = self.call("POST", "/api/scrape/", {"usernames": [
            {"name": names[0], "type": "LB", "refresh": False},
            {"name": names[1], "type": "Lb"}]}, expect=200, timeout=90)
        self.assertGreaterEqual(time.monotonic() - start, self.SLOW)
        self.assertEqual(data["intersection_len"], len(true))
        self.assertEqual(len(data["intersection"]), min(len(names) + 1, len(true)))
        self.assertLessEqual(set(data["intersection"]), true)
        for n in names:
            self.assertEqual(len(self.user_pages(n)), self.pages_of(n))
        # stored now: answered at once, nothing fetched
        requests = self.fake.stats()["requests_total"]
        start = time.monotonic()
        again = self.scrape(names)
        self.assertLess(time.monotonic() - start, 1.5)
        self.assertEqual(again["intersection_len"], len(true))
        self.assertEqual(self.fake.stats()["requests_total"], requests)

    def test_remove_waits_for_a_cold_fetch(self):
        name = self.user("cwrm_zq_n40")
        film = self.films(name)[-1]["slug"]
        body = {"film": film, "usernames": [{"name": name.upper(), "type": "LETTERBOXD"}]}
        start = time.monotonic()
        _, _, data = self.call("POST", "/api/watchlist/remove", body, expect=200, timeout=90)
        self.assertGreaterEqual(time.monotonic() - start, self.SLOW)
        self.assertEqual(data, {"results": {name.upper(): True}})
        # the list is stored without the film; removing it again is a quick "false"
        start = time.monotonic()
        _, _, data = self.call("POST", "/api/watchlist/remove/", body, expect=200)
        self.assertLess(time.monotonic() - start, 1.5)
        self.assertEqual(data, {"results": {name.upper(): False}})
        self.assertEqual(self.scrape([name])["intersection_len"], len(self.films(name)) - 1)

    def test_remove_for_someone_who_does_not_exist(self):
        known, missing = self.user("cwknown_zq_n20"), self.user("notfoundcw_zq")
        body = {"film": self.films(known)[0]["slug"],
                "usernames": [{"name": known, "type": "LB"}, {"name": missing, "type": "LB"}]}
        _, _, data = self.call("POST", "/api/watchlist/remove", body, expect=404,
                               code="user_not_found", timeout=90)
        self.assertEqual(data["error"]["participant"], 1)
        self.assertEqual(data["error"]["message"], "No Letterboxd user called '%s'" % missing)
        # nothing was removed for the other participant
        self.assertEqual(self.scrape([known])["intersection_len"], len(self.films(known)))


# ---- the v1 API ------------------------------------------------------------------------

class V1ApiTest(ApiTestCase):
    """Jobs, results, roll, watched and imports, against the 2025 React markup
    (its pages carry the year, needed to match imported titles)."""

    FAKE = {"markup": "react2025", "common": 3, "universe": 2000, "size": 60, "slow_ms": 1500}

    def counts(self, names):
        counts = {}
        for n in names:
            for s in self.slugs(n):
                counts[s] = counts.get(s, 0) + 1
        return counts

    def fetched_job(self, names):
        job = self.start_job([{"profile": n} for n in names])
        self.assertTrue(HEX32.match(job["id"]))
        done, _ = self.wait_job(job["id"])
        return done

    def test_job_progress_and_results(self):
        names = [self.user(n) for n in ("vpa_zq", "vpb_zq", "vpc_zq")]
        job = self.start_job([{"profile": names[0]},
                              {"profile": "https://letterboxd.com/%s/" % names[1]},
                              {"profile": names[2], "source": "letterboxd", "refresh": False}])
        self.assertEqual([p["name"] for p in job["participants"]], names)
        done, seen = self.wait_job(job["id"])
        for i, (n, p) in enumerate(zip(names, done["participants"])):
            self.assertEqual(p["status"], "ready", p)
            self.assertEqual(p["source"], "letterboxd")
            self.assertEqual(p["pages_total"], self.pages_of(n))
            self.assertEqual(p["pages_fetched"], p["pages_total"])
            self.assertEqual(len(self.user_pages(n)), self.pages_of(n))
            self.assertEqual(p["films"], len(self.films(n)))
            self.assertIs(p["from_store"], False)
            self.assertIsNotNone(p["fetched_at"])
            self.assertIsNone(p["error"])
            for states in seen:
                self.assertIn(states[i], ("queued", "fetching", "ready"))

        counts = self.counts(names)
        true = {s for s, c in counts.items() if c == 3}
        res = self.results(done["id"])
        self.assertEqual((res["participants"], res["failed"]), (3, 0))
        self.assertEqual(res["common_count"], len(true))
        self.assertEqual({f["slug"] for f in res["common"]}, true)
        by_slug = {f["slug"]: f for n in names for f in self.films(n)}
        for f in res["common"] + res["most"]:
            want = by_slug[f["slug"]]
            self.assertEqual((f["title"], f["year"], f["letterboxd_id"]),
                             (want["title"], want["year"], want["lb_id"]))
            # links go to the configured Letterboxd (here the fake site)
            self.assertEqual(f["url"], "%s/film/%s/" % (self.fake.url, f["slug"]))
        # few common films (3 < small=10): the films on two of the three lists
        self.assertLess(len(true), 10)
        most = {s: c for s, c in counts.items() if 2 <= c < 3}
        self.assertGreater(len(most), 0, "the fake should give some films on two lists")
        self.assertEqual({f["slug"]: f["lists"] for f in res["most"]}, most)
        lists = [f["lists"] for f in res["most"]]
        self.assertEqual(lists, sorted(lists, reverse=True))

        # the same group again: stored lists, answered done at once, nothing fetched
        requests = self.fake.stats()["requests_total"]
        again = self.start_job([{"profile": n} for n in names])
        self.assertEqual(again["status"], "done")
        for p in again["participants"]:
            self.assertEqual((p["status"], p["from_store"]), ("ready", True))
        self.assertEqual({f["slug"] for f in self.results(again["id"])["common"]}, true)
        self.assertEqual(self.fake.stats()["requests_total"], requests)

    def test_results_query_parameters(self):
        names = [self.user(n) for n in ("vqa_zq", "vqb_zq")]
        job = self.fetched_job(names)
        full = self.results(job["id"], "?small=100000&most=10000")
        self.assertGreater(full["common_count"], 1)
        one = self.results(job["id"], "?limit=1")
        self.assertEqual((one["common_count"], len(one["common"])), (full["common_count"], 1))
        self.assertIn(one["common"][0], full["common"])
        self.assertEqual(self.results(job["id"], "?small=0")["most"], [])
        self.assertEqual(len(self.results(job["id"], "?small=100000&most=1")["most"]),
                         min(1, len(full["most"])))
        for q in ("?limit=-1", "?limit=abc", "?limit=", "?small=1.5", "?most=10001",
                  "?limit=100001", "?small=1e3"):
            with self.subTest(q=q):
                self.results(job["id"], q, expect=400, code="invalid_request")

    def test_roll_seed_veto_and_everything_vetoed(self):
        names = [self.user(n) for n in ("vra_zq", "vrb_zq", "vrc_zq")]
        job = self.fetched_job(names)
        res = self.results(job["id"], "?small=100000&most=10000")
        common = {f["id"] for f in res["common"]}
        ranked = {f["id"]: f["lists"] for f in res["most"]}
        self.assertGreaterEqual(len(common), 2)
        self.assertGreater(len(ranked), 0)

        first = self.roll(job["id"], seed=42)["film"]
        self.assertIn(first["id"], common)
        self.assertEqual(self.roll(job["id"], seed=42)["film"], first)
        other = self.roll(job["id"], veto=[first["id"]], seed=42)["film"]
        self.assertIn(other["id"], common - {first["id"]})
        self.assertEqual(self.roll(job["id"], veto=[first["id"]], seed=42)["film"], other)
        for seed in range(8):
            self.assertIn(self.roll(job["id"], veto=[first["id"]], seed=seed)["film"]["id"],
                          common - {first["id"]})
        for _ in range(4):
            self.assertIn(self.roll(job["id"])["film"]["id"], common)
        _, _, data = self.call("POST", "/api/v1/jobs/%s/roll" % job["id"],
                               {"veto": None, "seed": None}, expect=200)
        self.assertIn(data["film"]["id"], common)
        # every common film struck out: the films on the most lists
        top = max(ranked.values())
        fallback = self.roll(job["id"], veto=sorted(common), seed=1)["film"]
        self.assertEqual(ranked.get(fallback["id"]), top)
        # everything struck out
        everything = sorted(common | set(ranked))
        self.roll(job["id"], veto=everything, seed=1, expect=409, code="conflict")
        self.roll(job["id"], veto=everything, expect=409, code="conflict")

        # a single participant: the common films are the whole list
        solo = self.fetched_job([self.user("vrsolo_zq")])
        ids = {f["id"] for f in self.results(solo["id"], "?limit=100000")["common"]}
        self.assertEqual(len(ids), len(self.films("vrsolo_zq")))
        self.assertIn(self.roll(solo["id"], seed=3)["film"]["id"], ids)
        self.roll(solo["id"], veto=sorted(ids), expect=409, code="conflict")

    def test_watched_removes_from_everyone(self):
        names = [self.user(n) for n in ("vwa_zq", "vwb_zq")]
        job = self.fetched_job(names)
        res = self.results(job["id"])
        film = res["common"][0]
        path = "/api/v1/jobs/%s/watched" % job["id"]
        _, _, data = self.call("POST", path, {"film_id": film["id"]}, expect=200)
        self.assertEqual(data, {"film_id": film["id"],
                                "participants": [{"name": n, "removed": True} for n in names]})
        after = self.results(job["id"])
        self.assertEqual(after["common_count"], res["common_count"] - 1)
        self.assertNotIn(film["id"], {f["id"] for f in after["common"]})
        for seed in range(12):
            self.assertNotEqual(self.roll(job["id"], seed=seed)["film"]["id"], film["id"])
        _, _, data = self.call("POST", path, {"film_id": film["id"]}, expect=200)
        self.assertEqual(data["participants"], [{"name": n, "removed": False} for n in names])
        # the stored lists changed: a new job and the compat API see it too
        again = self.start_job([{"profile": n} for n in names])
        self.assertEqual(again["status"], "done")
        common = {f["slug"] for f in self.results(again["id"])["common"]}
        self.assertEqual(common, (self.slugs(names[0]) & self.slugs(names[1])) - {film["slug"]})
        data = self.scrape([names[0]])
        self.assertEqual(data["intersection_len"], len(self.films(names[0])) - 1)

    def test_still_running_job_is_409(self):
        slow = self.user("slowv_zq_n20")
        job = self.start_job([{"profile": slow}])
        self.assertEqual(job["status"], "running")
        jid = job["id"]
        self.results(jid, expect=409, code="conflict")
        self.roll(jid, expect=409, code="conflict")
        self.call("POST", "/api/v1/jobs/%s/watched" % jid, {"film_id": 1}, expect=409,
                  code="conflict")
        done, _ = self.wait_job(jid)
        self.assertEqual(done["participants"][0]["status"], "ready")
        self.assertEqual(self.results(jid)["common_count"], 20)

    def test_failed_participants_are_left_out(self):
        good = [self.user(n) for n in ("vfa_zq", "vfb_zq")]
        missing = self.user("notfoundv_zq")
        job = self.fetched_job([good[0], missing, good[1]])
        p = job["participants"][1]
        self.assertEqual(p["status"], "failed")
        self.assertEqual(p["error"]["code"], "user_not_found")
        self.assertIn(missing, p["error"]["message"])
        res = self.results(job["id"])
        self.assertEqual((res["participants"], res["failed"]), (2, 1))
        self.assertEqual({f["slug"] for f in res["common"]},
                         self.slugs(good[0]) & self.slugs(good[1]))

    def test_results_and_roll_when_every_participant_failed_are_409(self):
        # the job exists and is done, but no list is ready: nothing to compute
        for people in ([{"profile": self.user("notfoundw_zq")}],
                       [{"import": "f" * 32}],
                       [{"profile": self.user("emptyw_zq")},
                        {"profile": self.user("garbagew_zq")}]):
            with self.subTest(people=people):
                job = self.start_job(people)
                done, _ = self.wait_job(job["id"])
                self.assertTrue(all(p["status"] == "failed" for p in done["participants"]))
                self.results(job["id"], expect=409, code="conflict")
                self.roll(job["id"], expect=409, code="conflict")

    def test_unknown_jobs_are_404(self):
        for jid in ("0" * 32, "a" * 31, "A" * 32, "zz", "%s0" % ("0" * 32)):
            with self.subTest(jid=jid):
                self.call("GET", "/api/v1/jobs/" + jid, expect=404, code="not_found")
                self.results(jid, expect=404, code="not_found")
                self.roll(jid, expect=404, code="not_found")
                self.call("POST", "/api/v1/jobs/%s/watched" % jid, {"film_id": 1}, expect=404,
                          code="not_found")

    # -- imports

    def csv_rows(self):
        """(title, year) of the readable rows of tests/data/api_watchlist.csv,
        read with Python's csv module."""
        with open(WATCHLIST_CSV, encoding="utf-8", newline="") as f:
            rows = list(csv.reader(f))
        out = []
        for row in rows[1:]:
            if len(row) == 4 and row[1] and row[2].isdigit():
                out.append((row[1], int(row[2])))
        return out

    def upload(self, data, filename="watchlist.csv", fields=None, expect=201, code=None):
        body, ctype = multipart(fields, {"file": (filename, data, "text/csv")})
        return self.call("POST", "/api/v1/imports", body=body, headers={"Content-Type": ctype},
                         expect=expect, code=code)[2]

    def csv_bytes(self):
        with open(WATCHLIST_CSV, "rb") as f:
            return f.read()

    def test_import_and_mixed_job_finds_common_films(self):
        rows = self.csv_rows()
        data = self.upload(self.csv_bytes())["import"]
        self.assertTrue(HEX32.match(data["id"]))
        self.assertEqual(data["participant"], {"import": data["id"]})
        self.assertEqual(data["format"], "letterboxd-csv")
        self.assertEqual(data["films"], len(rows))
        self.assertEqual([e["line"] for e in data["row_errors"]], [11, 12, 13])
        self.assertEqual(data["row_errors_total"], 3)
        self.assertIn("19x5", data["row_errors"][0]["reason"])
        self.assertIn("Name", data["row_errors"][1]["reason"])
        # each names the row's film as far as the row can be read
        self.assertEqual([(e["title"], e["year"]) for e in data["row_errors"]],
                         [("The Broken Year Row", None), (None, 2001), ("Too Many Fields", 2001)])

        pal = self.user("pal_zq")
        pal_films = {(f["title"], f["year"]): f for f in self.films(pal)}
        expected = {key for key in rows if key in pal_films}
        self.assertGreaterEqual(len(expected), 6, "the CSV was written from pal_zq's films")
        self.assertLess(len(expected), len(rows), "and holds films pal_zq does not have")
        job = self.start_job([data["participant"], {"profile": pal}])
        done, _ = self.wait_job(job["id"])
        imp = done["participants"][0]
        self.assertEqual((imp["name"], imp["source"], imp["status"], imp["films"],
                          imp["from_store"]),
                         ("import:" + data["id"][:8], "import", "ready", len(rows), True))
        res = self.results(job["id"])
        self.assertEqual({(f["title"], f["year"]) for f in res["common"]}, expected)
        for f in res["common"]:
            self.assertEqual(f["slug"], pal_films[(f["title"], f["year"])]["slug"])

    def test_import_with_username_becomes_their_stored_list(self):
        name = self.user("impself_zq")
        data = self.upload(self.csv_bytes(), fields={"username": name})["import"]
        self.assertIsNone(data["id"])
        self.assertEqual(data["participant"], {"source": "letterboxd", "profile": name})
        self.assertEqual(data["films"], len(self.csv_rows()))
        out = self.scrape([name])
        self.assertEqual(out["intersection_len"], len(self.csv_rows()))
        job = self.start_job([{"profile": name}])
        self.assertEqual(job["participants"][0]["from_store"], True)
        self.assertEqual(self.user_pages(name), {})  # never fetched from the site

    def test_import_bad_files(self):
        header_only = b"Date,Name,Year,Letterboxd URI\r\n"
        cases = [
            (b"hello, this is not an export\nat all\n", "notes.txt", 422, "invalid_import_file"),
            (b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR", "poster.png", 422, "invalid_import_file"),
            (b"PK\x03\x04broken zip", "letterboxd-export.zip", 422, "invalid_import_file"),
            (b"", "watchlist.csv", 422, "invalid_import_file"),
            (header_only, "watchlist.csv", 422, "empty_watchlist"),
        ]
        for data, filename, status, code in cases:
            with self.subTest(filename=filename, data=data[:20]):
                out = self.upload(data, filename=filename, expect=status, code=code)
                self.assertTrue(out["error"]["message"])
        self.upload(self.csv_bytes(), fields={"username": "bad/../name"}, expect=422,
                    code="invalid_username")
        self.upload(self.csv_bytes(), fields={"username": "okname", "source": "kp"},
                    expect=422, code="unknown_source")
        body, ctype = multipart({"username": "someone"})
        self.call("POST", "/api/v1/imports", body=body, headers={"Content-Type": ctype},
                  expect=400, code="invalid_request")
        for ctype in ("application/json", "text/csv", "application/x-www-form-urlencoded"):
            with self.subTest(ctype=ctype):
                self.call("POST", "/api/v1/imports", body=self.csv_bytes(),
                          headers={"Content-Type": ctype}, expect=415,
                          code="unsupported_media_type")
        self.call("POST", "/api/v1/imports", body=self.csv_bytes(), expect=415,
                  code="unsupported_media_type")

    def test_import_participant_ids(self):
        self.start_job([{"import": "not-an-id"}], expect=404, code="not_found")
        _, _, data = self.call("POST", "/api/v1/jobs",
                               {"participants": [{"profile": self.user("vok_zq")},
                                                 {"import": "F" * 32}]},
                               expect=404, code="not_found")
        self.assertEqual(data["error"]["participant"], 1)
        job = self.start_job([{"import": "e" * 32}])
        done, _ = self.wait_job(job["id"])
        self.assertEqual(done["participants"][0]["error"]["code"], "not_found")


# ---- bad input and failing sites ---------------------------------------------------------

class PosterTest(ApiTestCase):
    """Posters: a page that shows poster images (as a browser-saved page does)
    gives each film a poster URL on this server; the image is fetched from the
    image host once, checked, cached and served from here."""

    FAKE = {"markup": "react2025", "posters": True, "common": 20, "universe": 2000, "size": 40}

    PNG = b"\x89PNG\r\n\x1a\n"

    def job_films(self, names):
        job = self.start_job([{"profile": n} for n in names])
        done, _ = self.wait_job(job["id"])
        res = self.results(done["id"], "?limit=500")
        return res["common"] + res["most"]

    def poster(self, film_id, expect=200, code=None):
        return self.call("GET", "/api/v1/films/%s/poster" % film_id, expect=expect, code=code)

    def test_posters_are_fetched_once_and_served_from_here(self):
        a, b = self.user("posta_zq"), self.user("postb_zq")
        films = self.job_films([a, b])
        self.assertGreaterEqual(len(films), 20)
        by_slug = {f["slug"]: f for f in self.films(a)}
        with_image = [f for f in films if by_slug[f["slug"]]["lb_id"] % 3]
        missing = [f for f in films if by_slug[f["slug"]]["lb_id"] % 3 == 0]
        self.assertTrue(with_image and missing, "the fake should give both kinds")
        for f in films:
            self.assertEqual(f["poster"], "/api/v1/films/%d/poster" % f["id"], f)

        f = with_image[0]
        lb_id = by_slug[f["slug"]]["lb_id"]
        before = self.fake.stats()["requests_total"]
        status, headers, data = self.poster(f["id"])
        self.assertEqual(headers["Content-Type"], "image/png")
        self.assertTrue(data.startswith(self.PNG), data[:20])
        self.assertTrue(data.endswith(b"film %d" % lb_id), data[-20:])
        self.assertEqual(headers["Cache-Control"], "public, max-age=86400")
        self.assertEqual(headers["X-Content-Type-Options"], "nosniff")
        self.assertEqual(self.fake.stats()["requests_total"], before + 1)
        # the second time from the cache: the image host is not asked again
        _, _, again = self.poster(f["id"])
        self.assertEqual(again, data)
        self.assertEqual(self.fake.stats()["requests_total"], before + 1)

        # concurrent requests for one poster share one fetch
        g = with_image[1]
        before = self.fake.stats()["requests_total"]
        with concurrent.futures.ThreadPoolExecutor(8) as pool:
            answers = list(pool.map(lambda _: self.fp.request(
                "GET", "/api/v1/films/%d/poster" % g["id"]), range(8)))
        self.assertEqual({st for st, _, _ in answers}, {200})
        self.assertEqual(len({body for _, _, body in answers}), 1)
        self.assertLessEqual(self.fake.stats()["requests_total"], before + 1)

        # the image host has none: 404, and remembered
        m = missing[0]
        before = self.fake.stats()["requests_total"]
        self.poster(m["id"], expect=404, code="not_found")
        self.poster(m["id"], expect=404, code="not_found")
        self.assertEqual(self.fake.stats()["requests_total"], before + 1)

    def test_unknown_films_and_bad_ids(self):
        for bad in ("0", "abc", "-1", "1e3", "99999999999999999999", "007"):
            with self.subTest(id=bad):
                self.poster(bad, expect=404, code="not_found")
        self.poster(987654321, expect=404, code="not_found")  # no such film
        self.call("POST", "/api/v1/films/1/poster", {}, expect=405, code="method_not_allowed")

    def test_films_without_a_poster(self):
        """An imported film (exports have no posters) has poster null and no image."""
        csv = b"Date,Name,Year,Letterboxd URI\n2024-01-01,No Such Film At All,1901,https://boxd.it/zzzz\n"
        body, ctype = multipart(None, {"file": ("watchlist.csv", csv, "text/csv")})
        data = self.call("POST", "/api/v1/imports", body=body, headers={"Content-Type": ctype},
                         expect=201)[2]
        job = self.start_job([data["import"]["participant"]])
        done, _ = self.wait_job(job["id"])
        res = self.results(done["id"])
        self.assertEqual([f["poster"] for f in res["common"]], [None])
        self.poster(res["common"][0]["id"], expect=404, code="not_found")


class BadInputTest(ApiTestCase):
    """Every kind of bad request, and sites that fail. Short compat wait and
    fast retries so that failures are quick."""

    FAKE = {"markup": "classic", "slow_ms": 2000}
    ENV = {"FILMPICKER_COMPAT_WAIT_MS": "800", "FILMPICKER_FETCH_BACKOFF_MS": "20",
           "FILMPICKER_MAX_UPLOAD_BYTES": "65536"}
    JSON_ROUTES = ["/api/scrape/", "/api/scrape", "/api/watchlist/remove",
                   "/api/watchlist/remove/", "/api/v1/jobs", "/api/v1/jobs/%s/roll" % ("0" * 32),
                   "/api/v1/jobs/%s/watched" % ("0" * 32)]

    def post_raw(self, path, body, ctype="application/json", **kw):
        headers = {"Content-Type": ctype} if ctype else {}
        return self.call("POST", path, body=body, headers=headers, **kw)

    def test_malformed_json(self):
        for path in self.JSON_ROUTES:
            for body in (b"{bad", b"", b"   ", b'{"usernames": [}', b'{"a": 1, "a": 2}',
                         b"\xff\xfe{}", b'{"a": "\xc3"}', b"{}{}", b"nul",
                         # jansson quotes the text up to the refused byte,
                         # here the first byte of a UTF-8 character (fuzz)
                         b'{"a": "\\ud8\xc7\x9c"}'):
                with self.subTest(path=path, body=body):
                    _, _, data = self.post_raw(path, body, expect=400, code="malformed_json")
                    self.assertTrue(data["error"]["message"])

    def test_json_that_is_not_an_object(self):
        for path in self.JSON_ROUTES:
            for body in (b"[]", b"[{}]", b'[{"usernames": []}]'):
                with self.subTest(path=path, body=body):
                    self.post_raw(path, body, expect=400, code="invalid_request")
            for body in (b"1", b'"x"', b"null", b"true"):  # not even a JSON text to jansson
                with self.subTest(path=path, body=body):
                    _, _, data = self.post_raw(path, body, expect=400)
                    self.assertIn(data["error"]["code"], ("invalid_request", "malformed_json"))

    def test_wrong_types_and_missing_fields(self):
        ok = self.user("oktype_zq")
        compat = [
            {}, {"usernames": None}, {"usernames": "alice"}, {"usernames": {"name": "a"}},
            {"usernames": []}, {"usernames": [5]}, {"usernames": ["alice"]},
            {"usernames": [{"name": 5}]}, {"usernames": [{"nom": "a"}]},
            {"usernames": [{"name": None}]},
            {"usernames": [{"name": "a", "refresh": "yes"}]},
            {"usernames": [{"name": "a", "refresh": 1}]},
            {"usernames": [{"name": "a", "type": 5}]},
            {"usernames": [{"name": ok}, {"name": ["b"]}]},
        ]
        for path in ("/api/scrape/", "/api/scrape"):
            for body in compat:
                with self.subTest(path=path, body=body):
                    _, _, data = self.call("POST", path, body, expect=400, code="invalid_request")
        _, _, data = self.call("POST", "/api/scrape/", compat[-1], expect=400)
        self.assertEqual(data["error"]["participant"], 1)
        remove = [{"usernames": [{"name": ok}]}, {"film": 5, "usernames": [{"name": ok}]},
                  {"film": "", "usernames": [{"name": ok}]},
                  {"film": "x" * 201, "usernames": [{"name": ok}]},
                  {"film": "a-film"}, {"film": "a-film", "usernames": []},
                  {"film": "a-film", "usernames": [{"name": 1}]}]
        for body in remove:
            with self.subTest(path="remove", body=body):
                self.call("POST", "/api/watchlist/remove", body, expect=400,
                          code="invalid_request")
        jobs = [{}, {"participants": None}, {"participants": {}}, {"participants": []},
                {"participants": ["alice"]}, {"participants": [{}]},
                {"participants": [{"profile": 5}]}, {"participants": [{"import": 5}]},
                {"participants": [{"profile": "a", "refresh": "yes"}]},
                {"participants": [{"profile": "a", "refresh": None}]},
                {"participants": [{"profile": "a", "source": 5}]},
                {"participants": [{"profile": ok}, {"profile": None}]}]
        for body in jobs:
            with self.subTest(path="jobs", body=body):
                self.call("POST", "/api/v1/jobs", body, expect=400, code="invalid_request")
        for body in ({"veto": "1"}, {"veto": [1.5]}, {"veto": ["1"]}, {"veto": {}},
                     {"seed": "x"}, {"seed": 1.5}, {"seed": [1]}):
            with self.subTest(path="roll", body=body):
                self.call("POST", "/api/v1/jobs/%s/roll" % ("0" * 32), body, expect=400,
                          code="invalid_request")
        for body in ({}, {"film_id": "1"}, {"film_id": 0}, {"film_id": -3}, {"film_id": 1.5},
                     {"film_id": None}):
            with self.subTest(path="watched", body=body):
                self.call("POST", "/api/v1/jobs/%s/watched" % ("0" * 32), body, expect=400,
                          code="invalid_request")
        self.assertEqual(self.user_pages(ok), {}, "nothing is fetched for a refused request")

    def test_unknown_source_type(self):
        for t in ("kp", "KP", "imdb", "", "l b", "lbx"):
            with self.subTest(type=t):
                _, _, data = self.call("POST", "/api/scrape/",
                                       {"usernames": [{"name": "alice", "type": t}]},
                                       expect=422, code="unknown_source")
                self.assertEqual(data["error"]["participant"], 0)
                if t.lower() == "kp":
                    self.assertEqual(data["error"]["message"], "participant 1: Kinopoisk lists "
                                     "are not supported yet; use \"lb\" (Letterboxd)")
        _, _, data = self.call("POST", "/api/v1/jobs",
                               {"participants": [{"profile": "alice"},
                                                 {"profile": "bob", "source": "kp"}]},
                               expect=422, code="unknown_source")
        self.assertEqual(data["error"]["participant"], 1)
        for t in ("kp", "Kp", "imdb"):
            self.call("POST", "/api/watchlist/remove",
                      {"film": "x", "usernames": [{"name": "alice", "type": t}]}, expect=422,
                      code="unknown_source")

    def test_too_many_participants(self):
        many = [self.user("many%d_zq" % i) for i in range(MAX_PARTICIPANTS + 1)]
        _, _, data = self.call("POST", "/api/scrape/",
                               {"usernames": [{"name": n} for n in many]},
                               expect=422, code="too_many_participants")
        self.assertIn(str(MAX_PARTICIPANTS), data["error"]["message"])
        self.call("POST", "/api/v1/jobs", {"participants": [{"profile": n} for n in many]},
                  expect=422, code="too_many_participants")
        self.call("POST", "/api/watchlist/remove",
                  {"film": "x", "usernames": [{"name": n} for n in many]},
                  expect=422, code="too_many_participants")
        # exactly the limit passes the count check (and then fails on the names)
        self.call("POST", "/api/scrape/",
                  {"usernames": [{"name": "bad name"}] * MAX_PARTICIPANTS},
                  expect=422, code="invalid_username")
        for n in many:
            self.assertEqual(self.user_pages(n), {})

    def test_body_over_the_limit_with_content_length(self):
        big = b'{"usernames": [], "pad": "' + b"x" * MAX_BODY + b'"}'
        for path in self.JSON_ROUTES:
            with self.subTest(path=path):
                self.post_raw(path, big, expect=413, code="payload_too_large")
        # exactly at the limit is read (and then judged on its content)
        at = b'{"usernames": [], "pad": "' + b"x" * (MAX_BODY - 30) + b'"}'
        at += b" " * (MAX_BODY - len(at))
        self.assertEqual(len(at), MAX_BODY)
        self.post_raw("/api/scrape/", at, expect=400, code="invalid_request")
        upload, ctype = multipart(files={"file": ("watchlist.csv", b"x" * 200000, "text/csv")})
        self.post_raw("/api/v1/imports", upload, ctype=ctype, expect=413,
                      code="payload_too_large")

    def test_body_over_the_limit_chunked(self):
        status, headers, data = send_chunked(self.fp.port, "/api/v1/jobs",
                                             [b" " * 4096] * 40)
        check_against_spec("POST", "/api/v1/jobs", status, headers, data)
        self.assertEqual(status, 413, data)
        self.assertEqual(json.loads(data)["error"]["code"], "payload_too_large")

    def test_upload_just_over_the_limit(self):
        # within the multipart framing allowance, so it is only found out while reading
        data = b"Date,Name,Year,Letterboxd URI\n" + b"x" * 70000 + b"\n"
        body, ctype = multipart(files={"file": ("watchlist.csv", data, "text/csv")})
        self.assertLess(len(body), 2 * 65536)
        try:
            self.post_raw("/api/v1/imports", body, ctype=ctype, expect=413,
                          code="payload_too_large")
        except (http.client.HTTPException, OSError) as e:
            self.fail("POST /api/v1/imports (%d bytes): no answer, the connection was closed "
                      "(%s: %s); expected 413" % (len(body), type(e).__name__, e))

    def test_chunked_body_under_the_limit_is_read(self):
        body = json.dumps({"usernames": [{"name": "../etc/passwd"}]}).encode()
        status, headers, data = send_chunked(self.fp.port, "/api/scrape/",
                                             [body[:10], body[10:20], body[20:]])
        parsed = check_against_spec("POST", "/api/scrape/", status, headers, data)
        self.assertEqual((status, parsed["error"]["code"]), (422, "invalid_username"))

    def test_json_nesting_limit(self):
        roll = "/api/v1/jobs/%s/roll" % ("0" * 32)
        # 16 levels (the body object and 15 arrays) are read: the job is unknown
        for innermost in (0, None):
            with self.subTest(levels=16, innermost=innermost):
                self.call("POST", roll, nested(16, innermost), expect=404, code="not_found")
        for levels in (17, 40):
            with self.subTest(levels=levels):
                _, _, data = self.call("POST", roll, nested(levels, 0), expect=400,
                                       code="invalid_request")
                self.assertIn("16", data["error"]["message"])
        deep = b'{"a":' + b"[" * 5000 + b"]" * 5000 + b"}"
        status, _, data = self.post_raw(roll, deep, expect=400)
        self.assertIn(data["error"]["code"], ("invalid_request", "malformed_json"))

    def test_unsupported_content_type(self):
        body = json.dumps({"usernames": [{"name": "alice"}]}).encode()
        for ctype in ("text/plain", "application/x-www-form-urlencoded", "text/json",
                      "application/xml"):
            for path in ("/api/scrape/", "/api/v1/jobs"):
                with self.subTest(ctype=ctype, path=path):
                    self.post_raw(path, body, ctype=ctype, expect=415,
                                  code="unsupported_media_type")
        mp, ctype = multipart({"usernames": "alice"})
        self.post_raw("/api/scrape/", mp, ctype=ctype, expect=415, code="unsupported_media_type")
        # application/json with a charset is read as JSON; no Content-Type at all is
        # refused (a cross-site form could send that without a preflight)
        self.post_raw("/api/scrape/", b"{}", ctype="application/json; charset=utf-8",
                      expect=400, code="invalid_request")
        for path in ("/api/scrape/", "/api/v1/jobs", "/api/watchlist/remove"):
            with self.subTest(path=path, ctype=None):
                self.post_raw(path, body, ctype=None, expect=415, code="unsupported_media_type")

    def test_illegal_usernames_are_refused_without_any_fetch(self):
        victim = self.user("victim_zq")
        requests = self.fake.stats()["requests_total"]
        bad = ["al ice", "alice/../bob", "../etc/passwd", "/etc/passwd", "alice;rm -rf",
               "ali%2fce", "a" * 65, "", "   ", "alice\tbob", "al.ice", "@", "@../x",
               "https://letterboxd.com/", "https://letterboxd.com/film/heat/",
               "https://letterboxd.com/%s/../../etc/passwd" % victim,
               "https://letterboxd.com/%s/%%2e%%2e/x" % victim,
               "https://evil.example/%s/" % victim,
               "http://127.0.0.1:%d/%s/" % (self.fake.port, victim),
               "%s/%s/" % (self.fake.url, victim),
               "https://letterboxd.com.evil.example/%s/" % victim,
               "https://%s@letterboxd.com/%s/" % (victim, victim),
               "https://letterboxd.com:%d/%s/" % (self.fake.port, victim),
               "ftp://letterboxd.com/%s/" % victim, "file:///etc/passwd",
               "javascript:alert(1)", "<script>alert(1)</script>", "al\u00efce",
               "alice\u202ebob"]
        for name in bad:
            with self.subTest(name=name):
                _, _, data = self.call("POST", "/api/scrape/",
                                       {"usernames": [{"name": victim}, {"name": name}]},
                                       expect=422, code="invalid_username")
                self.assertEqual(data["error"]["participant"], 1)
                self.call("POST", "/api/v1/jobs", {"participants": [{"profile": name}]},
                          expect=422, code="invalid_username")
        self.assertEqual(self.user_pages(victim), {})
        self.assertEqual(self.fake.stats()["requests_total"], requests)

    def test_nonexistent_user(self):
        missing = self.user("notfound_zq")
        _, _, data = self.call("POST", "/api/scrape/",
                               {"usernames": [{"name": missing}]}, expect=404,
                               code="user_not_found")
        self.assertEqual(data["error"]["participant"], 0)
        self.assertIn(missing, data["error"]["message"])
        ok = self.user("okmissing_zq")
        _, _, data = self.call("POST", "/api/scrape/",
                               {"usernames": [{"name": ok}, {"name": missing}]}, expect=404,
                               code="user_not_found")
        self.assertEqual(data["error"]["participant"], 1)

    def test_empty_and_private_watchlists(self):
        for name in ("empty_zq", "private_zq"):
            with self.subTest(name=name):
                _, _, data = self.call("POST", "/api/scrape/",
                                       {"usernames": [{"name": self.user(name)}]},
                                       expect=422, code="empty_watchlist")
                self.assertEqual(data["error"]["participant"], 0)

    def test_unknown_page_format(self):
        self.call("POST", "/api/scrape/", {"usernames": [{"name": self.user("garbage_zq")}]},
                  expect=502, code="page_format_not_recognized")

    def test_challenge_says_import_the_export(self):
        name = self.user("blocked_zq")
        _, _, data = self.call("POST", "/api/scrape/", {"usernames": [{"name": name}]},
                               expect=502, code="source_blocked")
        self.assertIn("import your Letterboxd export", data["error"]["message"])
        self.assertEqual(self.user_pages(name), {"/%s/watchlist/" % name: 1})  # no retries
        job = self.start_job([{"profile": name}])
        done, _ = self.wait_job(job["id"])
        self.assertEqual(done["participants"][0]["error"]["code"], "source_blocked")
        self.assertIn("export", done["participants"][0]["error"]["message"])

    def test_site_outage(self):
        name = self.user("down_zq")
        _, _, data = self.call("POST", "/api/scrape/", {"usernames": [{"name": name}]},
                               expect=502, code="source_unavailable")
        self.assertEqual(data["error"]["participant"], 0)
        # the first page, tried 1 + fetch_retries (3) times
        self.assertEqual(self.user_pages(name), {"/%s/watchlist/" % name: 4})

    def test_rate_limited_then_success_honours_retry_after(self):
        name = self.user("ratelimited_zq_n30")  # two pages, each 429 (Retry-After: 1) once
        start = time.monotonic()
        job = self.start_job([{"profile": name}])
        done, _ = self.wait_job(job["id"])
        elapsed = time.monotonic() - start
        p = done["participants"][0]
        self.assertEqual((p["status"], p["films"], p["pages_fetched"], p["pages_total"]),
                         ("ready", 30, 2, 2))
        self.assertEqual(self.user_pages(name), {"/%s/watchlist/" % name: 2,
                                                 "/%s/watchlist/page/2/" % name: 2})
        # the backoff is 20 ms; only Retry-After makes each page wait a second
        self.assertGreaterEqual(elapsed, 1.9)
        out = self.scrape([name])
        self.assertEqual(out["intersection_len"], 30)

    def test_still_fetching_after_compat_wait(self):
        name = self.user("slow_zq_n20")
        start = time.monotonic()
        status, headers, data = self.call("POST", "/api/scrape/",
                                          {"usernames": [{"name": name}]}, expect=503,
                                          code="still_fetching")
        elapsed = time.monotonic() - start
        self.assertGreaterEqual(elapsed, 0.75)
        self.assertLess(elapsed, 1.8)
        self.assertTrue(int(headers["Retry-After"]) >= 1)
        jid = data["error"]["job"]
        job = self.call("GET", "/api/v1/jobs/" + jid, expect=200)[2]
        self.assertEqual(job["status"], "running")
        self.assertEqual(job["participants"][0]["name"], name)
        done, _ = self.wait_job(jid)
        self.assertEqual(done["participants"][0]["status"], "ready")
        requests = self.fake.stats()["requests_total"]
        self.assertEqual(self.scrape([name])["intersection_len"], 20)
        self.assertEqual(self.fake.stats()["requests_total"], requests)

    def test_remove_still_fetching_after_compat_wait(self):
        name = self.user("slowrm_zq_n20")
        start = time.monotonic()
        _, headers, data = self.call("POST", "/api/watchlist/remove",
                                     {"film": "whatever", "usernames": [{"name": name}]},
                                     expect=503, code="still_fetching")
        self.assertLess(time.monotonic() - start, 1.8)
        self.assertTrue(int(headers["Retry-After"]) >= 1)
        done, _ = self.wait_job(data["error"]["job"])
        self.assertEqual(done["participants"][0]["status"], "ready")

    def test_zy_still_healthy_after_all_that(self):
        self.assertIsNone(self.fp.proc.poll())
        _, _, data = self.call("GET", "/healthz", expect=200)
        self.assertEqual(data["status"], "ok")


class SiteTimeoutTest(ApiTestCase):
    """A site slower than the fetch timeout, no retries, and one job at a time."""

    FAKE = {"markup": "classic", "slow_ms": 2500}
    ENV = {"FILMPICKER_FETCH_TIMEOUT_MS": "500", "FILMPICKER_FETCH_RETRIES": "0",
           "FILMPICKER_MAX_JOBS": "1", "FILMPICKER_COMPAT_WAIT_MS": "2000"}

    def test_site_timeout_is_504(self):
        name = self.user("slowt_zq_n20")
        start = time.monotonic()
        _, _, data = self.call("POST", "/api/scrape/", {"usernames": [{"name": name}]},
                               expect=504, code="source_timeout")
        self.assertLess(time.monotonic() - start, 1.5)
        self.assertEqual(data["error"]["participant"], 0)
        self.assertEqual(self.user_pages(name), {"/%s/watchlist/" % name: 1})

    def test_site_rate_limiting_is_503_with_retry_after(self):
        name = self.user("ratelimitedt_zq_n20")
        _, headers, data = self.call("POST", "/api/scrape/", {"usernames": [{"name": name}]},
                                     expect=503, code="source_rate_limited")
        self.assertEqual(data["error"]["participant"], 0)
        self.assertTrue(int(headers["Retry-After"]) >= 1)

    def test_too_many_unfinished_jobs_is_429(self):
        first = self.start_job([{"profile": self.user("slowj_zq_n20")}])
        self.assertEqual(first["status"], "running")
        _, headers, _ = self.call("POST", "/api/v1/jobs",
                                  {"participants": [{"profile": self.user("otherj_zq")}]},
                                  expect=429, code="rate_limited")
        self.assertTrue(int(headers["Retry-After"]) >= 1)
        self.call("POST", "/api/scrape/", {"usernames": [{"name": "otherj_zq"}]}, expect=429,
                  code="rate_limited")
        self.assertEqual(self.user_pages("otherj_zq"), {})
        done, _ = self.wait_job(first["id"])
        p = done["participants"][0]
        self.assertEqual((p["status"], p["error"]["code"]), ("failed", "source_timeout"))
        self.assertEqual(p["error"]["message"], "Letterboxd is not answering, try again in a while")
        job = self.start_job([{"profile": "otherj_zq"}])
        self.assertEqual(self.wait_job(job["id"])[0]["participants"][0]["status"], "ready")


# ---- stopping and crashing ------------------------------------------------------------------

class LifecycleTest(unittest.TestCase):
    """SIGTERM and kill -9 while fetches run, then a restart on the same
    database (same key)."""

    @classmethod
    def setUpClass(cls):
        cls.fake = FakeBoxd(markup="classic", latency_ms=400)
        cls.fake.start()
        cls.addClassCleanup(cls.fake.stop)

    def setUp(self):
        self._tmp = tempfile.TemporaryDirectory(prefix="fp-api-lifecycle-")
        self.addCleanup(self._tmp.cleanup)
        self.env = {"FILMPICKER_DATABASE": os.path.join(self._tmp.name, "lifecycle.db"),
                    "FILMPICKER_SECRET_KEY": secrets.token_hex(32)}

    def server(self):
        fp = FilmPicker(fake=self.fake, env=self.env)
        fp.start()
        return fp

    def post(self, fp, path, obj):
        status, headers, data = fp.request("POST", path, json.dumps(obj), JSON_HEADERS)
        parsed = check_against_spec("POST", path, status, headers, data)
        return status, parsed

    def wait_fetching(self):
        wait_until(lambda: self.fake.stats()["in_flight"] > 0, timeout=10,
                   what="a fetch in flight at the fake")

    def scrape_len(self, fp, name):
        status, data = self.post(fp, "/api/scrape/", {"usernames": [{"name": name}]})
        self.assertEqual(status, 200, data)
        return data["intersection_len"]

    def test_sigterm_while_a_poster_is_fetched(self):
        """A poster request waiting on a slow image host is answered 503 at
        SIGTERM, and the server exits 0 (it must not stop libmicrohttpd with
        a suspended request)."""
        pages = FakeBoxd(markup="react2025", posters=True)
        pages.start()
        self.addCleanup(pages.stop)
        images = FakeBoxd(markup="react2025", posters=True, latency_ms=20000)
        images.start()
        self.addCleanup(images.stop)
        env = dict(self.env, FILMPICKER_LETTERBOXD_IMAGE_URL=images.url)
        fp = FilmPicker(fake=pages, env=env)
        fp.start()
        try:
            status, job = self.post(fp, "/api/v1/jobs", {"participants": [{"profile": "img_zq"}]})
            self.assertEqual(status, 202, job)
            done = wait_until(lambda: (lambda s: s if s["status"] == "done" else None)(
                json.loads(fp.request("GET", "/api/v1/jobs/" + job["id"])[2])), timeout=20,
                what="the job")
            res = json.loads(fp.request("GET", "/api/v1/jobs/%s/results" % done["id"])[2])
            film = res["common"][0]
            self.assertIsNotNone(film["poster"])
            answer = {}
            t = threading.Thread(target=lambda: answer.update(
                r=fp.request("GET", film["poster"], timeout=30)))
            t.start()
            wait_until(lambda: images.stats()["in_flight"] > 0, timeout=10,
                       what="the poster fetch at the image host")
            fp.proc.send_signal(signal.SIGTERM)
            self.assertEqual(fp.proc.wait(timeout=20), 0, fp.stderr_text())
            t.join(timeout=10)
            status, headers, body = answer["r"]
            check_against_spec("GET", film["poster"], status, headers, body)
            self.assertEqual(status, 503, body)
            self.assertEqual(json.loads(body)["error"]["code"], "service_unavailable")
        finally:
            fp.stop(raise_on_error=False)

    def test_sigterm_while_the_first_versions_route_waits(self):
        """POST /api/scrape/ waiting on a cold fetch when SIGTERM comes: the
        fetch finishes, the waiting client still gets its 200, and the server
        exits 0 (it never stops libmicrohttpd under a suspended request)."""
        name = "termwait_zq_n300"
        want = len(self.fake.films(name))
        fp = self.server()
        try:
            answer = {}
            body = json.dumps({"usernames": [{"name": name, "type": "LB"}]})
            t = threading.Thread(target=lambda: answer.update(r=fp.request(
                "POST", "/api/scrape/", body, JSON_HEADERS, timeout=60)))
            t.start()
            self.wait_fetching()
            fp.proc.send_signal(signal.SIGTERM)
            self.assertEqual(fp.proc.wait(timeout=30), 0, fp.stderr_text())
            t.join(timeout=10)
            status, headers, raw = answer["r"]
            data = check_against_spec("POST", "/api/scrape/", status, headers, raw)
            self.assertEqual(status, 200, raw)
            self.assertEqual(data["intersection_len"], want)
        finally:
            fp.stop(raise_on_error=False)

    def test_sigterm_does_not_wait_out_retries_or_queued_jobs(self):
        """A site that does not answer, long retry backoffs, and more jobs
        queued than there are workers: SIGTERM ends the process within a few
        seconds (no retry is waited out, a job not yet started is not
        started), and it exits 0."""
        env = dict(self.env, FILMPICKER_FETCH_RETRIES="20", FILMPICKER_FETCH_BACKOFF_MS="30000",
                   FILMPICKER_WORKERS="2")
        fp = FilmPicker(env=env, letterboxd_url=UNREACHABLE_URL)
        fp.start()
        try:
            for i in range(12):
                status, job = self.post(fp, "/api/v1/jobs",
                                        {"participants": [{"profile": "gone%d_zq" % i}]})
                self.assertEqual(status, 202, job)
            time.sleep(0.5)  # the first attempts fail and wait out their backoff
            t0 = time.monotonic()
            fp.proc.send_signal(signal.SIGTERM)
            self.assertEqual(fp.proc.wait(timeout=15), 0, fp.stderr_text())
            self.assertLess(time.monotonic() - t0, 5.0, fp.stderr_text())
        finally:
            fp.stop(raise_on_error=False)

    def test_sigterm_while_fetching_finishes_and_stores(self):
        name = "term_zq"
        want = len(self.fake.films(name))
        fp = self.server()
        try:
            self.fake.reset()
            status, job = self.post(fp, "/api/v1/jobs", {"participants": [{"profile": name}]})
            self.assertEqual(status, 202, job)
            self.wait_fetching()
            fp.proc.send_signal(signal.SIGTERM)
            self.assertEqual(fp.proc.wait(timeout=15), 0, fp.stderr_text())
        finally:
            fp.stop(raise_on_error=False)
        pages = self.fake.stats()["pages"]
        self.assertEqual(len([p for p in pages if p.startswith("/%s/" % name)]),
                         math.ceil(want / PER_PAGE), pages)

        self.fake.reset()
        fp = self.server()
        try:
            self.assertEqual(self.scrape_len(fp, name), want)
            self.assertEqual(self.fake.stats()["requests_total"], 0, "served from storage")
        finally:
            fp.stop()
        assert_no_usernames(self, read_db_files(self.env["FILMPICKER_DATABASE"]), {name})

    def test_kill9_while_fetching_keeps_stored_lists(self):
        kept, crashing = "keep_zq", ["crasha_zq", "crashb_zq"]
        fp = self.server()
        try:
            want = self.scrape_len(fp, kept)
            self.assertEqual(want, len(self.fake.films(kept)))
            status, job = self.post(fp, "/api/v1/jobs",
                                    {"participants": [{"profile": n} for n in crashing]})
            self.assertEqual(status, 202, job)
            self.wait_fetching()
            fp.proc.kill()
            fp.proc.wait(timeout=10)
        finally:
            fp.stop(raise_on_error=False)

        self.fake.reset()
        fp = self.server()  # waits for /healthz 200
        try:
            self.assertEqual(self.scrape_len(fp, kept), want)
            self.assertEqual(self.fake.stats()["requests_total"], 0, "served from storage")
            for n in crashing:  # stored or fetched again, either way whole
                self.assertEqual(self.scrape_len(fp, n), len(self.fake.films(n)))
        finally:
            fp.stop()
        db = self.env["FILMPICKER_DATABASE"]
        with sqlite3.connect(db) as conn:
            self.assertEqual(conn.execute("PRAGMA integrity_check").fetchone()[0], "ok")
        assert_no_usernames(self, read_db_files(db), set([kept] + crashing))


if __name__ == "__main__":
    unittest.main(verbosity=2)
