#!/usr/bin/env python3
"""GET /readyz and the queue, cache and shared-state metrics in the
embedded default (SQLite, in-process queue, cache, state and rate-limit
buckets): ready at once, every check up and valid against the spec, served
like /healthz (any Host, HEAD), no secret in it; the queue's counters move
after a cold job. The scaled set-up's readiness (servers stopped and
started) is test_readyz_scaled.py.
"""
import os
import re
import sys
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import harness  # noqa: E402
from spec_check import check_against_spec  # noqa: E402

CHECKS = {"database": ("sqlite", True), "cache": ("inproc", False), "state": ("inproc", False),
          "queue": ("inproc", True), "ratelimit": ("inproc", False)}


def metric(text, name):
    """The value of an unlabelled sample, or None."""
    m = re.search(r"(?m)^%s (\S+)$" % re.escape(name), text)
    return float(m.group(1)) if m else None


class ReadyzEmbeddedTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.fake = harness.FakeBoxd().start()
        cls.fp = harness.FilmPicker(fake=cls.fake, env={"FILMPICKER_WORKERS": "3"}).start()

    @classmethod
    def tearDownClass(cls):
        cls.fp.stop()
        cls.fake.stop()

    def readyz(self, headers=None):
        t0 = time.monotonic()
        st, hdrs, raw = self.fp.request("GET", "/readyz", headers=headers)
        took = time.monotonic() - t0
        data = check_against_spec("GET", "/readyz", st, hdrs, raw)
        return st, hdrs, raw, data, took

    def test_ready_with_every_check_up(self):
        st, hdrs, raw, data, took = self.readyz()
        self.assertEqual(st, 200, data)
        self.assertLess(took, 1.0)
        self.assertEqual(data["status"], "ready")
        self.assertEqual(set(data["checks"]), set(CHECKS))
        for name, (backend, required) in CHECKS.items():
            with self.subTest(check=name):
                c = data["checks"][name]
                self.assertEqual(c["status"], "up")
                self.assertEqual(c["backend"], backend)
                self.assertIs(c["required"], required)
                self.assertGreaterEqual(c["ms"], 0)
                self.assertLess(c["ms"], 1000)
                self.assertNotIn("error", c)
        q = data["checks"]["queue"]
        self.assertEqual((q["publisher"], q["consumers"], q["consumers_up"]), ("up", 3, 3))
        self.assertEqual(hdrs["Cache-Control"], "no-store")
        self.assertIsNone(hdrs.get("Retry-After"))
        # nothing about where the servers are or the key
        self.assertNotIn(self.fp.secret_key.encode(), raw)
        self.assertNotIn(self.fp.tmpdir.encode(), raw)

    def test_served_like_healthz(self):
        # any Host (probes use addresses or service names), and HEAD
        st, _, _, data, _ = self.readyz(headers={"Host": "not-allowed.example"})
        self.assertEqual(st, 200, data)
        st, hdrs, raw = self.fp.request("HEAD", "/readyz")
        self.assertEqual((st, raw), (200, b""))
        self.assertEqual(hdrs["Content-Type"], "application/json")
        st, _, raw = self.fp.request("POST", "/readyz")
        self.assertEqual(st, 405, raw)
        st, _, raw = self.fp.request("GET", "/readyz/")
        self.assertEqual(st, 404, raw)

    def test_queue_and_cache_metrics_after_a_cold_job(self):
        def scrape():
            st, _, text = self.fp.request("GET", "/metrics")
            self.assertEqual(st, 200)
            return text.decode("utf-8")

        before = scrape()
        for name in ("filmpicker_queue_published_total", "filmpicker_queue_acked_total",
                     "filmpicker_queue_job_runs_total", "filmpicker_queue_job_seconds_total",
                     "filmpicker_queue_dead_lettered_total", "filmpicker_cache_hits_total",
                     "filmpicker_cache_misses_total", "filmpicker_lease_waits_total",
                     "filmpicker_bus_failures_total"):
            self.assertIsNotNone(metric(before, name), name)
        st, job = self.fp.json("POST", "/api/v1/jobs",
                               {"participants": [{"profile": "readyz_n60"}]})
        self.assertEqual(st, 202, job)

        def done():
            s, v = self.fp.json("GET", "/api/v1/jobs/%s" % job["id"])
            return v if s == 200 and v["status"] == "done" else None
        harness.wait_until(done, timeout=30, what="the job done")
        after = harness.wait_until(
            lambda: (lambda t: t if metric(t, "filmpicker_queue_acked_total") >
                     metric(before, "filmpicker_queue_acked_total") else None)(scrape()),
            timeout=10, what="the run counted")
        for name in ("filmpicker_queue_published_total", "filmpicker_queue_job_runs_total"):
            self.assertEqual(metric(after, name) - metric(before, name), 1, name)
        self.assertGreater(metric(after, "filmpicker_queue_job_seconds_total"),
                           metric(before, "filmpicker_queue_job_seconds_total"))
        self.assertEqual(metric(after, "filmpicker_queue_dead_lettered_total"), 0)
        self.assertEqual(metric(after, "filmpicker_queue_publish_failed_total"), 0)
        self.assertEqual(metric(after, "filmpicker_jobs_queued"), 0)
        # the fetch looked for a stored copy first: a read of the cache that missed
        self.assertGreater(metric(after, "filmpicker_cache_misses_total"),
                           metric(before, "filmpicker_cache_misses_total"))
        # nothing is shared in process
        for name in ("filmpicker_lease_waits_total", "filmpicker_host_limit_waits_total",
                     "filmpicker_bus_failures_total"):
            self.assertEqual(metric(after, name), 0, name)


if __name__ == "__main__":
    unittest.main()
