"""The container stack, end to end, through nginx over HTTPS.

Run by scripts/test-stack.sh against a stack started with `scripts/stack.sh
up` (2 API instances, 2 workers, PostgreSQL, Redis, RabbitMQ, nginx,
Prometheus, Alertmanager, the fake Letterboxd and the fake Telegram of the
test profile). The tests run in name order: later ones stop containers and
destroy the database.
"""

import http.client
import json
import os
import ssl
import subprocess
import time
import unittest

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
STACK = os.environ.get("FP_STACK_DIR", os.path.join(ROOT, "build", "stack"))
CA = os.path.join(STACK, "ca.crt")
HOST, PORT = "127.0.0.1", 8443
ORIGIN = "https://127.0.0.1:8443"
FAKE = ("127.0.0.1", 8491)
TELEGRAM = ("127.0.0.1", 8492)
PROMETHEUS = ("127.0.0.1", 9490)
PROJECT = "filmpicker"
WAIT = 90.0


def ctr(service):
    return "%s_%s_1" % (PROJECT, service)


def podman(*args, check=True, timeout=120, **kw):
    env = dict(os.environ, CONTAINERS_CONF=os.path.join(ROOT, "deploy", "podman",
                                                        "containers.conf"))
    r = subprocess.run(["podman"] + list(args), capture_output=True, text=True, env=env,
                       timeout=timeout, **kw)
    if check and r.returncode != 0:
        raise AssertionError("podman %s: %d\n%s%s" % (" ".join(args), r.returncode, r.stdout,
                                                      r.stderr))
    return r


def tls():
    ctx = ssl.create_default_context(cafile=CA)
    ctx.check_hostname = True
    return ctx


def https(method, path, body=None, headers=None, timeout=30.0):
    """One request through nginx; (status, headers, body bytes)."""
    conn = http.client.HTTPSConnection(HOST, PORT, context=tls(), timeout=timeout)
    try:
        hdrs = dict(headers or {})
        if isinstance(body, (dict, list)):
            body = json.dumps(body).encode()
            hdrs.setdefault("Content-Type", "application/json")
        conn.request(method, path, body=body, headers=hdrs)
        resp = conn.getresponse()
        return resp.status, resp.headers, resp.read()
    finally:
        conn.close()


def plain(addr, method, path, body=None, headers=None, timeout=10.0):
    conn = http.client.HTTPConnection(addr[0], addr[1], timeout=timeout)
    try:
        conn.request(method, path, body=body, headers=dict(headers or {}))
        resp = conn.getresponse()
        return resp.status, resp.headers, resp.read()
    finally:
        conn.close()


def fake_pages(user):
    st, _, body = plain(FAKE, "GET", "/_fake/stats")
    assert st == 200, body
    return {p: n for p, n in json.loads(body)["pages"].items() if p.startswith("/%s/" % user)}


def wait_for(fn, timeout, what):
    deadline = time.monotonic() + timeout
    while True:
        v = fn()
        if v:
            return v
        if time.monotonic() > deadline:
            raise AssertionError("timed out after %.0f s waiting for %s" % (timeout, what))
        time.sleep(0.5)


class Browser:
    """One browser's cookie and CSRF token (GET /api/v1/client)."""

    def __init__(self, tc):
        st, headers, body = https("GET", "/api/v1/client")
        tc.assertEqual(st, 200, body)
        self.cookie = headers["Set-Cookie"].split(";", 1)[0]
        self.token = json.loads(body)["csrf_token"]

    def headers(self):
        return {"Cookie": self.cookie, "X-CSRF-Token": self.token, "Origin": ORIGIN}


class Stream:
    """A session's event stream read through nginx, block by block."""

    def __init__(self, sid, last_event_id=None, timeout=WAIT):
        self.conn = http.client.HTTPSConnection(HOST, PORT, context=tls(), timeout=timeout)
        headers = {"Accept": "text/event-stream"}
        if last_event_id is not None:
            headers["Last-Event-ID"] = str(last_event_id)
        self.conn.request("GET", "/api/v1/sessions/%s/events" % sid, headers=headers)
        self.resp = self.conn.getresponse()
        self.status = self.resp.status
        self.headers = self.resp.headers

    def next_event(self):
        """The next block with an event: {"event", "id", "data"}."""
        while True:
            fields = {}
            while True:
                line = self.resp.readline()
                if not line:
                    raise AssertionError("the stream ended")
                line = line.decode("utf-8").rstrip("\n")
                if not line:
                    break
                if line.startswith(":"):
                    continue
                k, _, v = line.partition(":")
                fields[k] = v[1:] if v.startswith(" ") else v
            if "event" in fields:
                return {"event": fields["event"], "id": int(fields.get("id", "0")),
                        "data": json.loads(fields.get("data", "null"))}

    def until(self, pred, what):
        seen = []
        while True:
            ev = self.next_event()
            seen.append(ev)
            if pred(ev):
                return seen
            if len(seen) > 500:
                raise AssertionError("no %s in 500 events" % what)

    def close(self):
        self.conn.close()


class StackTest(unittest.TestCase):
    # Every user whose list the tests have stored: the backup test checks
    # they all come back.
    stored = set()

    def api(self, method, path, body=None, expect=None, headers=None, timeout=30.0):
        st, hdrs, raw = https(method, path, body, headers=headers, timeout=timeout)
        data = json.loads(raw) if raw and hdrs.get("Content-Type", "").startswith(
            "application/json") else raw
        if expect is not None:
            self.assertEqual(st, expect, "%s %s: %r" % (method, path, raw[:400]))
        return st, data

    def job(self, users):
        st, job = self.api("POST", "/api/v1/jobs",
                           {"participants": [{"profile": u} for u in users]}, expect=202)

        def done():
            st, data = self.api("GET", "/api/v1/jobs/%s" % job["id"], expect=200)
            return data if data["status"] == "done" else None
        data = wait_for(done, WAIT, "job %s" % job["id"])
        self.stored.update(users)
        return data

    # -- the front door ---------------------------------------------------------------

    def test_1_https_front_door(self):
        # Plain HTTP moves to HTTPS, path and query kept.
        st, hdrs, _ = plain(("127.0.0.1", 8480), "GET", "/api/v1/client?x=1")
        self.assertEqual(st, 301)
        self.assertEqual(hdrs["Location"], "https://127.0.0.1:8443/api/v1/client?x=1")
        # The certificate verifies against the stack's CA; HSTS on every answer.
        st, hdrs, body = https("GET", "/healthz")
        self.assertEqual(st, 200, body)
        self.assertEqual(hdrs["Strict-Transport-Security"], "max-age=63072000; includeSubDomains")
        with self.assertRaises(ssl.SSLError):
            conn = http.client.HTTPSConnection(HOST, PORT, context=ssl.create_default_context(),
                                               timeout=10)
            try:
                conn.request("GET", "/healthz")
            finally:
                conn.close()
        # HTTP/2 (ALPN) is offered.
        out = subprocess.run(["curl", "-sS", "--http2", "--cacert", CA, "-o", "/dev/null", "-w",
                              "%{http_version}", "https://127.0.0.1:8443/healthz"],
                             capture_output=True, text=True, timeout=30)
        self.assertEqual(out.stdout, "2", out.stderr)
        # Every dependency is up, seen through nginx.
        st, ready = self.api("GET", "/readyz", expect=200)
        self.assertEqual(ready["status"], "ready", ready)
        self.assertEqual(ready["checks"]["database"]["backend"], "postgresql")
        self.assertEqual(ready["checks"]["queue"]["backend"], "amqp")
        self.assertEqual(ready["checks"]["state"]["backend"], "redis")
        # The web app, compressed.
        st, hdrs, body = https("GET", "/", headers={"Accept-Encoding": "br, gzip"})
        self.assertEqual(st, 200)
        self.assertIn(hdrs.get("Content-Encoding"), ("br", "gzip"))

    def test_1b_prometheus_scrapes_every_target(self):
        """Every API instance, worker and exporter is up in Prometheus, and the
        rules are loaded."""
        want = {"filmpicker-api": 2, "filmpicker-worker": 2, "postgres": 1, "redis": 1,
                "rabbitmq": 1, "node": 1, "prometheus": 1, "alertmanager": 1}

        def targets():
            st, _, body = plain(PROMETHEUS, "GET", "/api/v1/targets?state=active")
            self.assertEqual(st, 200, body[:200])
            up = {}
            for tgt in json.loads(body)["data"]["activeTargets"]:
                if tgt["health"] == "up":
                    up[tgt["labels"]["job"]] = up.get(tgt["labels"]["job"], 0) + 1
            return up if up == want else None
        wait_for(targets, 60, "every scrape target up")
        # What the exporters report, as Prometheus has it.
        for query in ("pg_up", "redis_up", "rabbitmq_build_info", "node_filesystem_avail_bytes",
                      "filmpicker_jobs_queued"):
            st, _, body = plain(PROMETHEUS, "GET", "/api/v1/query?query=" + query)
            result = json.loads(body)["data"]["result"]
            self.assertTrue(result, query)
        st, _, body = plain(PROMETHEUS, "GET", "/api/v1/rules")
        names = {r["name"] for g in json.loads(body)["data"]["groups"] for r in g["rules"]}
        self.assertTrue({"FilmPickerInstanceDown", "FilmPickerErrorRatio", "FilmPickerLatencyP99",
                         "FilmPickerQueueBacklog", "FilmPickerDeadLetters", "LetterboxdRefusing",
                         "DiskFilling", "BackupTooOld"} <= names, names)

    def test_2_admin_routes_only_from_the_allow_list(self):
        # From the host (the allow-list): /metrics and /docs answer.
        st, hdrs, body = https("GET", "/metrics")
        self.assertEqual(st, 200)
        self.assertIn(b"filmpicker_http_requests_total", body)
        st, _, body = https("GET", "/docs/")
        self.assertEqual(st, 200, body[:200])
        # From another address (a container on the front network): refused,
        # while the rest of the site answers it.
        for path, code in (("/metrics", "403"), ("/docs/", "403"), ("/healthz", "200")):
            r = podman("exec", ctr("api2"), "curl", "-sk", "-o", "/dev/null", "-w", "%{http_code}",
                       "https://nginx:8443" + path)
            self.assertEqual(r.stdout, code, path)

    def test_2b_log_lines_are_ecs_and_the_client_address_is_nginx_s_view(self):
        import jsonschema
        with open(os.path.join(ROOT, "deploy", "logging", "ecs-fields.json")) as f:
            validator = jsonschema.Draft202012Validator(json.load(f))
        # A client claiming another address: nginx replaces the header, and
        # FilmPicker believes nginx (10.89.10.0/25), so it logs what nginx
        # saw: the host's gateway address, not the claim.
        st, hdrs, _ = https("GET", "/readyz", headers={"X-Forwarded-For": "203.0.113.7"})
        self.assertEqual(st, 200)
        rid = hdrs["X-Request-Id"]

        def line_of(service):
            out = podman("logs", "--tail", "200", ctr(service), check=False)
            for text in (out.stdout + out.stderr).splitlines():
                if text.startswith("{") and rid in text:
                    return json.loads(text)
            return None
        app = wait_for(lambda: line_of("api1") or line_of("api2"), 10, "the app's line")
        web = wait_for(lambda: line_of("nginx"), 10, "nginx's line")
        for obj in (app, web):
            self.assertEqual(list(validator.iter_errors(obj)), [], obj)
        # one trace.id across nginx and FilmPicker
        self.assertEqual(app["trace.id"], rid)
        self.assertEqual(web["trace.id"], rid)
        self.assertEqual(app["client.address"], "10.89.10.254")
        self.assertEqual(web["client.address"], "10.89.10.254")
        self.assertEqual(app["url.path"], "/readyz")
        self.assertEqual(web["http.response.status_code"], 200)

    # -- searches -------------------------------------------------------------------------

    def test_3_compat_and_v1_searches(self):
        users = ["ann_n300", "ben_n300"]
        body = {"usernames": [{"name": u, "type": "LB"} for u in users]}
        st, data = self.api("POST", "/api/scrape/", body, expect=200, timeout=WAIT)
        self.assertGreater(data["intersection_len"], 0)
        self.stored.update(users)
        for u in users:
            pages = fake_pages(u)
            self.assertEqual(len(pages), 11, pages)  # 300 films, 28 a page
            self.assertEqual(set(pages.values()), {1}, pages)
        # The v1 API: a job, followed to its end, and its results.
        done = self.job(["cat_n200", "dan_n200", "ann_n300"])
        self.assertEqual([p["status"] for p in done["participants"]], ["ready"] * 3)
        self.assertEqual([p["films"] for p in done["participants"]], [200, 200, 300])
        st, res = self.api("GET", "/api/v1/jobs/%s/results" % done["id"], expect=200)
        self.assertGreater(res["common_count"], 0)
        self.assertEqual(len(fake_pages("ann_n300")), 11, "ann was not fetched again")

    def test_4_web_session_with_sse_through_nginx(self):
        b = Browser(self)
        st, s = self.api("POST", "/api/v1/sessions", {}, headers=b.headers(), expect=201)
        sid = s["id"]
        stream = Stream(sid)
        self.addCleanup(stream.close)
        self.assertEqual(stream.status, 200)
        self.assertEqual(stream.headers["Content-Type"], "text/event-stream; charset=utf-8")
        self.assertIsNone(stream.headers.get("Content-Encoding"))
        self.assertEqual(stream.next_event()["event"], "session")
        for u in ("eve_n150", "fay_n150"):
            self.api("POST", "/api/v1/sessions/%s/participants" % sid, {"profile": u},
                     headers=b.headers(), expect=201)
        # Events arrive as they happen (nginx does not buffer the stream).
        stream.until(lambda e: e["event"] == "participant" and e["data"]["name"] == "fay_n150"
                     and e["data"].get("status") == "ready", "fay ready")
        self.stored.update(["eve_n150", "fay_n150"])
        self.api("POST", "/api/v1/sessions/%s/search" % sid, {}, headers=b.headers(), expect=202)
        results = stream.until(lambda e: e["event"] == "results", "results")[-1]
        self.assertGreater(results["data"]["common_count"], 0)
        film = results["data"]["common"][0]["id"]
        stream.close()
        # Away for a moment: a veto; back with Last-Event-ID, exactly that.
        self.api("POST", "/api/v1/sessions/%s/veto" % sid, {"film_id": film, "vetoed": True},
                 headers=b.headers(), expect=200)
        again = Stream(sid, last_event_id=results["id"])
        self.addCleanup(again.close)
        ev = again.next_event()
        self.assertEqual((ev["event"], ev["id"], ev["data"]["film_id"]),
                         ("veto", results["id"] + 1, film))

    # -- faults ------------------------------------------------------------------------

    def test_5_search_survives_a_worker_and_an_api_instance_down_and_the_alert_fires(self):
        podman("stop", "-t", "5", ctr("worker1"))
        podman("stop", "-t", "5", ctr("api1"))
        try:
            done = self.job(["gus_n250", "hal_n250"])
            self.assertEqual([p["status"] for p in done["participants"]], ["ready"] * 2)
            body = {"usernames": [{"name": "ivy_n100", "type": "LB"},
                                  {"name": "gus_n250", "type": "LB"}]}
            st, data = self.api("POST", "/api/scrape/", body, expect=200, timeout=WAIT)
            self.assertGreater(data["intersection_len"], 0)
            self.stored.add("ivy_n100")
            for u in ("gus_n250", "hal_n250", "ivy_n100"):
                self.assertEqual(set(fake_pages(u).values()), {1}, u)

            # Prometheus sees both down; after the rule's minute Alertmanager
            # tells Telegram (the fake Bot API), with the alert's text.
            def alerted():
                st, _, body = plain(TELEGRAM, "GET", "/_fake/telegram")
                self.assertEqual(st, 200)
                msgs = json.loads(body)["messages"]
                hits = [m for m in msgs if "FilmPickerInstanceDown" in m["text"] and
                        "FIRING" in m["text"]]
                return hits or None
            hits = wait_for(alerted, 180, "the InstanceDown alert on Telegram")
            text = "\n".join(m["text"] for m in hits)
            self.assertIn("is down", text)
            self.assertTrue("worker1:9100" in text or "api1:8080" in text, text)
            self.assertEqual(str(hits[0]["chat_id"]), "-1001000000001")
            self.assertEqual(hits[0]["parse_mode"], "HTML")
        finally:
            podman("start", ctr("worker1"))
            podman("start", ctr("api1"))
        for s in ("worker1", "api1"):
            wait_for(lambda: podman("healthcheck", "run", ctr(s), check=False).returncode == 0,
                     60, "%s healthy again" % s)

    # -- backups -----------------------------------------------------------------------

    def lists_in_database(self):
        r = podman("exec", ctr("postgres"), "psql", "-U", "postgres", "-d", "filmpicker", "-Atc",
                   "SELECT count(*) FROM watchlists")
        return int(r.stdout.strip())

    def scrape_from_storage(self, user):
        """The stored list as a fresh process reads it from PostgreSQL (no
        Redis, the server key from its secret): proof it is readable."""
        sec = os.path.join(STACK, "secrets")
        r = podman("run", "--rm", "--network", PROJECT + "_back",
                   "-v", sec + "/database_url:/run/secrets/database_url:ro",
                   "-v", sec + "/secret_key:/run/secrets/secret_key:ro",
                   "-e", "FILMPICKER_DATABASE_FILE=/run/secrets/database_url",
                   "-e", "FILMPICKER_SECRET_KEY_FILE=/run/secrets/secret_key",
                   "-e", "FILMPICKER_LETTERBOXD_URL=http://fakeboxd:8000",
                   "-e", "FILMPICKER_LOG_LEVEL=error",
                   "localhost/filmpicker-app:latest", "scrape", user, "--json")
        return json.loads(r.stdout)

    def test_6_backup_destroy_restore(self):
        self.assertTrue(self.stored)
        users = sorted(self.stored)
        count = self.lists_in_database()
        self.assertGreaterEqual(count, len(users))
        before = {u: self.scrape_from_storage(u) for u in users}
        pages_before = {u: fake_pages(u) for u in users}
        r = podman("exec", ctr("backup"), "backup.sh")
        self.assertIn("backup: filmpicker-", r.stdout)
        name = r.stdout.split("backup: ", 1)[1].split(" ", 1)[0]
        # The backup is encrypted: no PostgreSQL dump header in the clear.
        r = podman("exec", ctr("backup"), "head", "-c", "64", "/backups/" + name)
        self.assertTrue(r.stdout.startswith("age-encryption.org/v1"), r.stdout[:40])
        r = podman("exec", ctr("backup"), "cat", "/backups/metrics/backup.prom")
        self.assertIn("filmpicker_backup_last_success_timestamp_seconds", r.stdout)
        # Destroy the database (connections cut), make it again, empty.
        podman("exec", ctr("postgres"), "psql", "-U", "postgres", "-qc",
               "DROP DATABASE filmpicker WITH (FORCE)")
        podman("exec", ctr("postgres"), "psql", "-U", "postgres", "-qc",
               "CREATE DATABASE filmpicker OWNER filmpicker")
        r = podman("exec", ctr("postgres"), "psql", "-U", "postgres", "-d", "filmpicker", "-Atc",
                   "SELECT count(*) FROM pg_tables WHERE schemaname = 'public'")
        self.assertEqual(r.stdout.strip(), "0")
        # Restore with the identity, which only the operators hold (here: a
        # one-off container; the backup container never has it).
        sec = os.path.join(STACK, "secrets")
        r = podman("run", "--rm", "--network", PROJECT + "_back",
                   "-v", PROJECT + "_backups:/backups:ro",
                   "-v", sec + "/pgpass:/run/secrets/pgpass:ro",
                   "-v", sec + "/backup_identity:/run/secrets/backup_identity:ro",
                   "-e", "PGHOST=postgres", "-e", "PGUSER=filmpicker",
                   "-e", "PGDATABASE=filmpicker", "-e", "PGPASSFILE=/run/secrets/pgpass",
                   "-e", "BACKUP_AGE_IDENTITY=/run/secrets/backup_identity",
                   "localhost/filmpicker-postgres:latest", "restore.sh", "/backups/" + name)
        self.assertIn("restored", r.stdout)
        self.assertEqual(self.lists_in_database(), count)
        for u in users:
            self.assertEqual(self.scrape_from_storage(u), before[u], u)
        # Read from storage, not fetched again.
        self.assertEqual({u: fake_pages(u) for u in users}, pages_before)
        # And the running stack serves them again.
        done = self.job(users[:2])
        self.assertEqual([p["status"] for p in done["participants"]], ["ready"] * 2)
        self.assertEqual({u: fake_pages(u) for u in users}, pages_before)


if __name__ == "__main__":
    unittest.main(verbosity=2)
