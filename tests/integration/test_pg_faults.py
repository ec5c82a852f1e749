#!/usr/bin/python3
"""Fault tests of the PostgreSQL storage backend against real servers.

- PostgreSQL restarted under a running `filmpicker serve` while imports
  (writes) and searches (reads) go on: during the outage every answer that
  is not a success is a 503 JSON error (never a 500, the server never dies);
  once PostgreSQL is back, requests work again without restarting FilmPicker,
  and every list whose import was answered 201 reads back whole.
- Several `filmpicker migrate up` started at once on a new schema: all exit 0
  and the schema is at the latest version, each step applied exactly once;
  several `serve` started at once on another new schema all come up.

The restart test runs its own PostgreSQL (scripts/services.sh start DIR
postgres, in a temporary directory), so that stopping it never disturbs the
other tests that share the fixture's server; the migration tests use the
fixture's server (FP_SERVICES_ENV), one schema each (harness.PgSchema).
"""
import io
import json
import os
import subprocess
import sys
import tempfile
import threading
import time
import unittest
import uuid

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402

EXE = os.path.join(harness.build_dir(), "filmpicker")
SERVICES = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "scripts",
                        "services.sh")


def run(args, env, timeout=120):
    full = {k: v for k, v in os.environ.items() if not k.startswith("FILMPICKER_")}
    full.update(env)
    return subprocess.run([EXE] + args, env=full, capture_output=True, text=True,
                          timeout=timeout)


def services(*args):
    r = subprocess.run([SERVICES] + list(args), capture_output=True, text=True, timeout=300)
    if r.returncode != 0:
        raise AssertionError("services.sh %s failed:\n%s" % (" ".join(args), r.stderr))
    return r.stdout


def multipart(fields, filename, data):
    boundary = "fp" + uuid.uuid4().hex
    out = io.BytesIO()
    for name, value in fields.items():
        out.write(("--%s\r\nContent-Disposition: form-data; name=\"%s\"\r\n\r\n%s\r\n"
                   % (boundary, name, value)).encode("utf-8"))
    out.write(("--%s\r\nContent-Disposition: form-data; name=\"file\"; filename=\"%s\"\r\n"
               "Content-Type: text/csv\r\n\r\n" % (boundary, filename)).encode("utf-8"))
    out.write(data)
    out.write(("\r\n--%s--\r\n" % boundary).encode("ascii"))
    return out.getvalue(), "multipart/form-data; boundary=" + boundary


def csv_of(user, n):
    """n films only this user has, plus five everyone has."""
    rows = ["Shared film %d,1990" % i for i in range(5)]
    rows += ["Film %d of %s,%d" % (i, user, 1950 + i % 60) for i in range(n)]
    return ("Name,Year\n" + "\n".join(rows) + "\n").encode("utf-8")


class Traffic:
    """Imports (writes) and searches of stored lists (reads) in a loop, each
    answer recorded, until stop()."""

    def __init__(self, fp, prefix):
        self.fp = fp
        self.prefix = prefix
        self.stored = {}    # user -> films in the list, for imports answered 201
        self.answers = []   # (time, kind, status, error code)
        self.bad = []       # answers that must not happen
        self._stop = threading.Event()
        self._threads = [threading.Thread(target=self._writer, daemon=True),
                         threading.Thread(target=self._reader, daemon=True)]

    def start(self):
        for t in self._threads:
            t.start()
        return self

    def stop(self):
        self._stop.set()
        for t in self._threads:
            t.join(timeout=60)

    def _check(self, kind, status, raw, headers):
        code = None
        if status >= 300:
            try:
                body = json.loads(raw.decode("utf-8"))
                code = body["error"]["code"]
            except (ValueError, KeyError, TypeError, UnicodeDecodeError):
                self.bad.append((kind, status, raw[:200]))
            if status != 503:
                self.bad.append((kind, status, raw[:200]))
            elif headers.get("Retry-After") is None:
                self.bad.append((kind, status, "no Retry-After"))
        self.answers.append((time.monotonic(), kind, status, code))

    def _writer(self):
        i = 0
        while not self._stop.is_set():
            user = "%s_w%d" % (self.prefix, i)
            n = 5 + i % 20
            body, ctype = multipart({"username": user}, "watchlist.csv", csv_of(user, n))
            try:
                status, headers, raw = self.fp.request("POST", "/api/v1/imports", body=body,
                                                       headers={"Content-Type": ctype},
                                                       timeout=30)
            except OSError as e:
                self.bad.append(("import", "connection", str(e)))
                time.sleep(0.1)
                continue
            self._check("import", status, raw, headers)
            if status == 201:
                self.stored[user] = n + 5
            i += 1
            time.sleep(0.02)

    def _reader(self):
        while not self._stop.is_set():
            users = list(self.stored)[-2:]
            if len(users) < 2:
                time.sleep(0.05)
                continue
            try:
                status, headers, raw = self.fp.request(
                    "POST", "/api/v1/jobs",
                    body=json.dumps({"participants": [{"profile": u} for u in users]}),
                    headers={"Content-Type": "application/json"}, timeout=30)
                self._check("job", status, raw, headers)
                status, headers, raw = self.fp.request("GET", "/healthz", timeout=30)
                self._check("healthz", status, raw, headers)
            except OSError as e:
                self.bad.append(("read", "connection", str(e)))
            time.sleep(0.02)


def job_view(fp, users):
    status, view = fp.json("POST", "/api/v1/jobs",
                           {"participants": [{"profile": u} for u in users]})
    assert status == 202, (status, view)
    path = "/api/v1/jobs/" + view["id"]
    return harness.wait_until(lambda: (lambda v: v if v["status"] == "done" else None)(
        fp.json("GET", path)[1]), timeout=60, what="job done")


class TestPostgresRestart(unittest.TestCase):
    def setUp(self):
        self.dir = tempfile.mkdtemp(prefix="fp-pgfault-")
        self.addCleanup(lambda: subprocess.run(["rm", "-rf", self.dir]))
        self.addCleanup(lambda: services("stop", self.dir))
        out = services("start", self.dir, "postgres")
        self.db = [line.split("=", 1)[1] for line in out.splitlines()
                   if line.startswith("export FILMPICKER_DATABASE=")][0]

    def test_restart_under_load_loses_nothing(self):
        env = {"FILMPICKER_DATABASE": self.db}
        r = run(["migrate", "up"], env)
        self.assertEqual(r.returncode, 0, r.stderr)
        with harness.FakeBoxd() as fake, \
                harness.FilmPicker(fake=fake, database=self.db,
                                   env={"FILMPICKER_LOG_LEVEL": "warn"}) as fp:
            # a fetched list too, stored before the outage
            view = job_view(fp, ["pgf_fetched"])
            self.assertEqual(view["participants"][0]["status"], "ready")
            fetched = view["participants"][0]["films"]
            traffic = Traffic(fp, "pgf").start()
            try:
                harness.wait_until(lambda: len(traffic.stored) >= 10, timeout=60,
                                   what="ten imports stored")
                t_stop = time.monotonic()
                services("stop", self.dir, "postgres")
                # the outage: answers are 503s, the server stays up
                harness.wait_until(lambda: any(a[0] > t_stop and a[2] == 503
                                               for a in traffic.answers),
                                   timeout=30, what="a 503 during the outage")
                time.sleep(2)
                self.assertIsNone(fp.proc.poll(), "filmpicker died while PostgreSQL was down")
                status, body = fp.json("GET", "/healthz")
                self.assertEqual(status, 503, body)
                self.assertEqual(body["error"]["code"], "service_unavailable")
                before_restart = len(traffic.stored)
                t_start = time.monotonic()
                services("start", self.dir, "postgres")
                # back without restarting FilmPicker: writes succeed again
                harness.wait_until(lambda: len(traffic.stored) >= before_restart + 5,
                                   timeout=60, what="imports stored after the restart")
                harness.wait_until(lambda: fp.json("GET", "/healthz")[0] == 200, timeout=30,
                                   what="healthz 200 after the restart")
            finally:
                traffic.stop()
            self.assertEqual(traffic.bad, [], "answers other than success or 503 JSON")
            outage = [a for a in traffic.answers if t_stop < a[0] < t_start]
            self.assertTrue(any(a[2] == 503 for a in outage))
            codes = {a[3] for a in outage if a[2] == 503}
            self.assertTrue(codes <= {"service_unavailable"}, codes)
            self.assertIsNone(fp.proc.poll())
            # nothing stored is lost: every list answered 201 reads back whole
            users = sorted(traffic.stored)
            for i in range(0, len(users), 8):
                group = users[i:i + 8]
                view = job_view(fp, group)
                got = view["participants"]
                for p in view["participants"]:
                    self.assertEqual(p["status"], "ready", p)
                    self.assertTrue(p["from_store"], p)
                self.assertEqual(sorted(p["films"] for p in view["participants"]),
                                 sorted(traffic.stored[u] for u in group), got)
            view = job_view(fp, ["pgf_fetched"])
            self.assertEqual((view["participants"][0]["from_store"],
                              view["participants"][0]["films"]), (True, fetched))
            print("\nrestart: %d lists stored, %d answers during the outage (%d x 503)"
                  % (len(users), len(outage), sum(1 for a in outage if a[2] == 503)),
                  file=sys.stderr)


class TestConcurrentMigrations(unittest.TestCase):
    def setUp(self):
        self.pg = harness.PgSchema()
        self.addCleanup(self.pg.drop)

    def test_many_migrate_up_at_once(self):
        env = dict(os.environ)
        env = {k: v for k, v in env.items() if not k.startswith("FILMPICKER_")}
        env["FILMPICKER_DATABASE"] = self.pg.url
        procs = [subprocess.Popen([EXE, "migrate", "up"], env=env, stdout=subprocess.PIPE,
                                  stderr=subprocess.PIPE, text=True) for _ in range(6)]
        for p in procs:
            out, err = p.communicate(timeout=120)
            self.assertEqual(p.returncode, 0, err)
            self.assertEqual(out.strip(), "schema version 5 of 5 (up to date)")
        self.assertEqual(self.pg.rows("SELECT version, name FROM schema_migrations ORDER BY 1"),
                         [("1", "catalogue_and_watchlists"), ("2", "film_posters"),
                          ("3", "watched_sets"), ("4", "wrapped_data_key"),
                          ("5", "film_orphan_marks")])
        r = run(["migrate", "status"], {"FILMPICKER_DATABASE": self.pg.url})
        self.assertEqual((r.returncode, r.stdout.strip()), (0, "schema version 5 of 5 (up to date)"))
        # the URL's password never reaches the output
        password = harness.services_database().split("://", 1)[1].split("@", 1)[0].split(":")[1]
        for p in (r.stdout, r.stderr):
            self.assertNotIn(password, p)

    def test_several_servers_start_at_once(self):
        key = os.urandom(32).hex()
        servers = [harness.FilmPicker(database=self.pg.url, env={"FILMPICKER_SECRET_KEY": key})
                   for _ in range(3)]
        started = []
        errors = []

        def start(s):
            try:
                s.start()
                started.append(s)
            except Exception as e:  # noqa: BLE001 - reported below
                errors.append(e)

        threads = [threading.Thread(target=start, args=(s,)) for s in servers]
        for t in threads:
            t.start()
        for t in threads:
            t.join(timeout=60)
        try:
            self.assertEqual(errors, [])
            self.assertEqual(len(started), 3)
            self.assertEqual(self.pg.value("SELECT count(*) FROM schema_migrations"), "5")
            # one data key, shared: a list stored through one is read through another
            body, ctype = multipart({"username": "pgm_alice"}, "watchlist.csv",
                                    csv_of("pgm_alice", 7))
            status, _, raw = started[0].request("POST", "/api/v1/imports", body=body,
                                                headers={"Content-Type": ctype})
            self.assertEqual(status, 201, raw)
            view = job_view(started[2], ["pgm_alice"])
            self.assertEqual((view["participants"][0]["from_store"],
                              view["participants"][0]["films"]), (True, 12))
            self.assertEqual(self.pg.value("SELECT count(*) FROM data_key"), "1")
        finally:
            for s in started:
                s.stop()


if __name__ == "__main__":
    unittest.main(verbosity=2)
