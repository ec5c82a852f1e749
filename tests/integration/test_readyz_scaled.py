#!/usr/bin/env python3
"""GET /readyz and /metrics in the scaled set-up, on servers of this test's
own (scripts/services.sh under $FP_BUILD_DIR/services-readyz: PostgreSQL,
Redis, RabbitMQ), which it stops and starts:

- with everything up, an API instance and a worker (its --metrics-listen)
  answer 200 ready, every check up on postgresql, redis and amqp;
- Redis stopped: both answer 503 not_ready with Retry-After within a bound,
  the Redis-backed checks down (cache, state, and the API's rate-limit
  buckets), the database and the queue still up; Redis started again: 200
  by itself, no restart;
- Redis hung (SIGSTOP): /readyz still answers within the bound, 503;
- RabbitMQ stopped: the queue check is down (the API's publisher, the
  worker's consumers), then up again by itself;
- after a cold job, the API instance shows the publish side of the queue
  (published, confirm time) and a cache read, the worker the consume side
  (runs, acks, job time); every answer is valid against the spec;
- after all that, both stop cleanly (exit 0).
"""
import os
import re
import signal
import sys
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import harness  # noqa: E402
import scaled  # noqa: E402
from spec_check import check_against_spec  # noqa: E402

DOWN_WITHIN = 10.0  # seconds for /readyz to say a stopped server is down
BACK_WITHIN = 60.0  # ... and up again once it is started (reconnect backoff up to 5 s)
REDIS_CHECKS = ("cache", "state", "ratelimit")


def services_dir():
    return os.path.join(harness.build_dir(), "services-readyz")


def metric(text, name):
    m = re.search(r"(?m)^%s (\S+)$" % re.escape(name), text)
    if not m:
        raise AssertionError("no sample %s in\n%s" % (name, text[:3000]))
    return float(m.group(1))


class ReadyzScaledTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.services = scaled.Services(services_dir()).start()
        try:
            # a schema of this run's own: the servers' data stays between runs
            cls.pg = harness.PgSchema(cls.services.env["FILMPICKER_DATABASE"])
            cls.fake = harness.FakeBoxd(latency_ms=20).start()
            cls.stack = scaled.Stack(cls.services, cls.fake,
                                     extra={"FILMPICKER_DATABASE": cls.pg.url})
            cls.api = cls.stack.api()
            cls.metrics_port = harness.free_port()
            cls.worker = cls.stack.worker(
                FILMPICKER_WORKERS="2",
                FILMPICKER_METRICS_LISTEN="127.0.0.1:%d" % cls.metrics_port)
            cls.worker_url = "http://127.0.0.1:%d" % cls.metrics_port
        except Exception:
            cls.tearDownClass()
            raise

    @classmethod
    def tearDownClass(cls):
        failed = None
        # after the outages, both still stop cleanly (exit 0: under ASan, no
        # leak or error, readiness threads left by a hung server included)
        for proc in (getattr(cls, "worker", None), getattr(cls, "api", None)):
            try:
                if proc:
                    proc.stop()
            except Exception as e:  # noqa: BLE001 - report it after cleaning up
                failed = failed or e
        try:
            if getattr(cls, "stack", None):
                cls.stack.stop()
            if getattr(cls, "fake", None):
                cls.fake.stop(raise_on_error=False)
            if getattr(cls, "pg", None):
                cls.pg.drop()
        finally:
            cls.services.stop()
        if failed:
            raise failed

    def setUp(self):
        # every test starts from a system that is all up
        self.wait_ready(self.api.url, True, BACK_WITHIN)
        self.wait_ready(self.worker_url, True, BACK_WITHIN)

    # ---- helpers ---------------------------------------------------------

    def readyz(self, base):
        t0 = time.monotonic()
        st, headers, raw = harness.request(base, "GET", "/readyz", timeout=10)
        took = time.monotonic() - t0
        data = check_against_spec("GET", "/readyz", st, headers, raw)
        # bounded: every check at most a second, all at once
        self.assertLess(took, 2.5, data)
        self.assertEqual(st, 200 if data["status"] == "ready" else 503, data)
        if st == 503:
            self.assertRegex(headers.get("Retry-After") or "", r"^[0-9]+$")
        for secret in re.findall(r"://[^@/]*:([^@/]+)@", " ".join(self.services.env.values())):
            self.assertNotIn(secret.encode(), raw)
        return st, data

    def wait_ready(self, base, ready, timeout):
        want = "ready" if ready else "not_ready"
        return scaled.wait_for(lambda: (lambda d: d if d["status"] == want else None)(
            self.readyz(base)[1]), timeout, "%s/readyz %s" % (base, want), step=0.2)

    def scrape(self, base):
        st, headers, raw = harness.request(base, "GET", "/metrics", timeout=10)
        self.assertEqual(st, 200, raw[:500])
        self.assertTrue(headers["Content-Type"].startswith("text/plain"))
        return raw.decode("utf-8")

    def wait_job(self, job_id):
        def done():
            st, v = self.api.json("GET", "/api/v1/jobs/%s" % job_id)
            self.assertEqual(st, 200, v)
            return v if v["status"] == "done" else None
        return scaled.wait_for(done, 60, "job %s done" % job_id, step=0.1)

    # ---- tests -----------------------------------------------------------

    def test_all_up(self):
        _, data = self.readyz(self.api.url)
        checks = data["checks"]
        self.assertEqual(set(checks), {"database", "cache", "state", "queue", "ratelimit"})
        self.assertEqual({k: (v["status"], v["backend"]) for k, v in checks.items()},
                         {"database": ("up", "postgresql"), "cache": ("up", "redis"),
                          "state": ("up", "redis"), "queue": ("up", "amqp"),
                          "ratelimit": ("up", "redis")})
        self.assertEqual([k for k, v in checks.items() if v["required"]],
                         ["database", "state", "queue"])
        q = checks["queue"]
        self.assertEqual((q["publisher"], q["consumers"]), ("up", 0))  # serve fetches nothing
        _, data = self.readyz(self.worker_url)
        self.assertEqual(set(data["checks"]), {"database", "cache", "state", "queue"})
        self.assertTrue(all(v["status"] == "up" for v in data["checks"].values()), data)
        q = data["checks"]["queue"]
        self.assertEqual((q["publisher"], q["consumers"], q["consumers_up"]), ("up", 2, 2))
        # the worker's listener answers /healthz and nothing else
        st, _, raw = harness.request(self.worker_url, "GET", "/healthz")
        self.assertEqual(st, 200, raw)
        st, _, raw = harness.request(self.worker_url, "GET", "/api/v1/jobs")
        self.assertEqual(st, 404, raw)
        st, _, raw = harness.request(self.worker_url, "POST", "/metrics")
        self.assertEqual(st, 405, raw)

    def test_cold_job_metrics_on_each_side(self):
        api0, w0 = self.scrape(self.api.url), self.scrape(self.worker_url)
        st, job = self.api.json("POST", "/api/v1/jobs", {"participants": [{"profile": "rz_n200"}]})
        self.assertEqual(st, 202, job)
        self.wait_job(job["id"])
        # a second search of the same person: the API instance reads the
        # list the worker stored, from the shared cache
        st, job2 = self.api.json("POST", "/api/v1/jobs", {"participants": [{"profile": "rz_n200"}]})
        self.assertEqual(st, 202, job2)
        self.wait_job(job2["id"])
        w1 = scaled.wait_for(lambda: (lambda t: t if metric(t, "filmpicker_queue_acked_total") >
                                      metric(w0, "filmpicker_queue_acked_total") else None)(
            self.scrape(self.worker_url)), 10, "the worker's ack counted")
        api1 = self.scrape(self.api.url)

        def delta(a, b, name):
            return metric(b, name) - metric(a, name)
        # the API instance publishes and never runs a job
        self.assertEqual(delta(api0, api1, "filmpicker_queue_published_total"), 1)
        self.assertGreater(delta(api0, api1, "filmpicker_queue_confirm_seconds_total"), 0)
        self.assertGreater(metric(api1, "filmpicker_queue_confirm_seconds_max"), 0)
        self.assertEqual(metric(api1, "filmpicker_queue_job_runs_total"), 0)
        self.assertEqual(metric(api1, "filmpicker_queue_acked_total"), 0)
        self.assertEqual(metric(api1, "filmpicker_queue_publish_failed_total"), 0)
        self.assertGreaterEqual(delta(api0, api1, "filmpicker_cache_hits_total"), 1)
        # the worker runs and acknowledges it, and publishes nothing itself
        self.assertEqual(delta(w0, w1, "filmpicker_queue_job_runs_total"), 1)
        self.assertEqual(delta(w0, w1, "filmpicker_queue_acked_total"), 1)
        self.assertGreater(delta(w0, w1, "filmpicker_queue_job_seconds_total"), 0)
        self.assertEqual(metric(w1, "filmpicker_queue_published_total"), 0)
        for name in ("filmpicker_queue_dead_lettered_total", "filmpicker_queue_retried_total"):
            self.assertEqual(metric(w1, name), 0, name)
        self.assertGreaterEqual(metric(w1, "filmpicker_db_pool_connections_max"), 1)
        self.assertGreater(delta(w0, w1, "filmpicker_pages_fetched_total"), 0)
        # the worker has no HTTP API: no connection or session metrics
        self.assertNotIn("filmpicker_connections ", w1)
        # every metric the worker shows is documented too
        documented = set(re.findall(r"`(filmpicker_[a-z_]+)", check_spec_description()))
        types = set(re.findall(r"^# TYPE (\S+) (?:counter|gauge|histogram)$", w1, re.M))
        self.assertEqual(types - documented, set())

    def test_redis_down_then_back(self):
        self.services.stop("redis")
        try:
            t0 = time.monotonic()
            data = self.wait_ready(self.api.url, False, DOWN_WITHIN)
            self.assertLess(time.monotonic() - t0, DOWN_WITHIN)
            checks = data["checks"]
            for name in REDIS_CHECKS:
                self.assertEqual(checks[name]["status"], "down", checks)
                self.assertEqual(checks[name]["error"], "service_unavailable")
                self.assertTrue(checks[name]["message"])
            self.assertEqual(checks["database"]["status"], "up", checks)
            self.assertEqual(checks["queue"]["status"], "up", checks)
            data = self.wait_ready(self.worker_url, False, DOWN_WITHIN)
            self.assertEqual(data["checks"]["state"]["status"], "down", data)
            self.assertEqual(data["checks"]["database"]["status"], "up", data)
            # the worker's metrics still answer without Redis
            self.scrape(self.worker_url)
        finally:
            self.services.start("redis")
        data = self.wait_ready(self.api.url, True, BACK_WITHIN)
        self.assertTrue(all(v["status"] == "up" for v in data["checks"].values()), data)
        self.wait_ready(self.worker_url, True, BACK_WITHIN)

    def test_redis_hung_answers_within_the_bound(self):
        # SIGSTOP: connections stay open and nothing answers (a hung host),
        # the case where only the readiness bound keeps /readyz short
        with open(os.path.join(services_dir(), "redis", "redis.pid")) as f:
            pid = int(f.read().strip())
        os.kill(pid, signal.SIGSTOP)
        try:
            for base in (self.api.url, self.worker_url, self.api.url):
                st, data = self.readyz(base)  # asserts it took < 2.5 s
                self.assertEqual(st, 503, data)
                c = data["checks"]["state"]
                self.assertEqual((c["status"], c["error"]), ("down", "service_unavailable"), c)
                self.assertIn(c["message"], ("no answer within the readiness bound",
                                             "the previous check has not answered yet",
                                             "not answering"))
                self.assertEqual(data["checks"]["database"]["status"], "up", data)
        finally:
            os.kill(pid, signal.SIGCONT)
        self.wait_ready(self.api.url, True, BACK_WITHIN)
        self.wait_ready(self.worker_url, True, BACK_WITHIN)

    def test_rabbitmq_down_then_back(self):
        self.services.stop("rabbitmq")
        try:
            data = self.wait_ready(self.api.url, False, DOWN_WITHIN)
            q = data["checks"]["queue"]
            self.assertEqual((q["status"], q["publisher"], q["error"]),
                             ("down", "down", "service_unavailable"), q)
            for name in ("database", "state", "cache"):
                self.assertEqual(data["checks"][name]["status"], "up", data)
            data = self.wait_ready(self.worker_url, False, DOWN_WITHIN)
            q = data["checks"]["queue"]
            self.assertEqual((q["status"], q["consumers"]), ("down", 2), q)
            scaled.wait_for(lambda: self.readyz(self.worker_url)[1]["checks"]["queue"][
                "consumers_up"] == 0, DOWN_WITHIN, "the worker's consumers down")
        finally:
            self.services.start("rabbitmq")
        self.wait_ready(self.api.url, True, BACK_WITHIN)
        data = self.wait_ready(self.worker_url, True, BACK_WITHIN)
        self.assertGreaterEqual(data["checks"]["queue"]["consumers_up"], 1)
        # and the queue works again: a cold job goes through
        st, job = self.api.json("POST", "/api/v1/jobs", {"participants": [{"profile": "rzb_n50"}]})
        self.assertEqual(st, 202, job)
        self.wait_job(job["id"])


def check_spec_description():
    from spec_check import SPEC
    return SPEC["paths"]["/metrics"]["get"]["description"]


if __name__ == "__main__":
    unittest.main()
