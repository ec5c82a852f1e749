#!/usr/bin/env python3
"""The scaled set-up as one system: two API instances (`filmpicker serve`)
and two workers (`filmpicker worker`) on the real Redis and RabbitMQ of the
CTest fixture "services" (scripts/services.sh), the fake Letterboxd for the
site. Each test class has its own Redis database, queue names and database.

What a user of either instance sees: a job started on one is followed on
the other; the first version's cold search answers through any instance
with the fetch done by a worker; a web session created through one instance
is followed live (SSE) through the other, with Last-Event-ID replay across
instances; two instances asked for the same person at once have it fetched
once; the per-host limit holds across both workers.
"""
import json
import os
import subprocess
import sys
import threading
import time
import unittest
import urllib.parse

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import harness  # noqa: E402
import scaled  # noqa: E402
import test_sessions as ts  # noqa: E402
from spec_check import check_against_spec  # noqa: E402

WAIT = 60.0


class ScaledTestCase(unittest.TestCase):
    """Two API instances (cls.a, cls.b) and two workers on the fixture's
    services; cls.fake the site (20 ms a page)."""

    fake_flags = {"latency_ms": 20}
    extra_env = {}

    @classmethod
    def setUpClass(cls):
        cls.services = scaled.Services.fixture()
        cls.fake = harness.FakeBoxd(**cls.fake_flags).start()
        cls.stack = scaled.Stack(cls.services, cls.fake, extra=cls.extra_env)
        try:
            cls.a = cls.stack.api()
            cls.b = cls.stack.api()
            cls.w1 = cls.stack.worker()
            cls.w2 = cls.stack.worker()
        except Exception:
            cls.stack.stop()
            cls.fake.stop(raise_on_error=False)
            raise
        cls.fp = cls.a

    @classmethod
    def tearDownClass(cls):
        cls.stack.stop()
        cls.fake.stop(raise_on_error=False)

    # Session helpers from test_sessions, on whichever instance self.fp is.
    call = ts.SessionTestCase.call
    new_session = ts.SessionTestCase.new_session
    sp = ts.SessionTestCase.sp
    add = ts.SessionTestCase.add
    search = ts.SessionTestCase.search
    veto = ts.SessionTestCase.veto
    get = ts.SessionTestCase.get
    wait_results = ts.SessionTestCase.wait_results
    stream = ts.SessionTestCase.stream

    def on(self, fp):
        """Makes the next calls go to instance fp."""
        self.fp = fp
        return self

    def wait_job(self, fp, job_id, timeout=WAIT):
        def done():
            status, data = fp.json("GET", "/api/v1/jobs/%s" % job_id)
            self.assertEqual(status, 200, data)
            return data if data["status"] == "done" else None
        return scaled.wait_for(done, timeout, "job %s done on %s" % (job_id, fp.url))

    def pages_of(self, user):
        stats = self.fake.stats()
        return {p: n for p, n in stats["pages"].items() if p.startswith("/%s/" % user)}


class JobsAcrossInstancesTest(ScaledTestCase):
    def test_job_started_on_one_is_followed_on_the_other(self):
        users = ["ann_n300", "ben_n300"]
        body = json.dumps({"participants": [{"profile": u} for u in users]}).encode()
        st, headers, raw = self.a.request("POST", "/api/v1/jobs", body=body,
                                          headers={"Content-Type": "application/json"})
        job = check_against_spec("POST", "/api/v1/jobs", st, headers, raw)
        self.assertEqual(st, 202, job)
        done = self.wait_job(self.b, job["id"])
        st, headers, raw = self.b.request("GET", "/api/v1/jobs/%s" % job["id"])
        check_against_spec("GET", "/api/v1/jobs/%s" % job["id"], st, headers, raw)
        self.assertEqual([p["status"] for p in done["participants"]], ["ready", "ready"])
        self.assertEqual([p["films"] for p in done["participants"]], [300, 300])
        st, res_b = self.b.json("GET", "/api/v1/jobs/%s/results" % job["id"])
        self.assertEqual(st, 200, res_b)
        st, res_a = self.a.json("GET", "/api/v1/jobs/%s/results" % job["id"])
        self.assertEqual(st, 200, res_a)
        self.assertEqual(res_a["common_count"], res_b["common_count"])
        self.assertEqual([f["id"] for f in res_a["common"]], [f["id"] for f in res_b["common"]])
        self.assertGreater(res_b["common_count"], 0)
        # Every page was fetched once, by a worker (the API instances fetch nothing).
        for u in users:
            pages = self.pages_of(u)
            self.assertEqual(len(pages), 11, pages)  # 300 films, 28 a page
            self.assertEqual(set(pages.values()), {1}, pages)
        for api in (self.a, self.b):
            self.assertNotIn('"watchlist_fetch"', api.stderr_text())
        fetched = self.w1.log().count('"watchlist_fetch"') + self.w2.log().count('"watchlist_fetch"')
        self.assertGreaterEqual(fetched, 2)

    def test_first_version_cold_search_through_either_instance(self):
        body = {"usernames": [{"name": "cat_n200", "type": "LB"}, {"name": "dan_n200", "type": "LB"}]}
        st, data = self.b.json("POST", "/api/scrape/", body, timeout=WAIT)
        self.assertEqual(st, 200, data)
        self.assertGreater(data["intersection_len"], 0)
        self.assertEqual(len(data["intersection"]), 3)
        # Warm now, through the other instance: the same answer size.
        st, again = self.a.json("POST", "/api/scrape/", body)
        self.assertEqual(st, 200, again)
        self.assertEqual(again["intersection_len"], data["intersection_len"])

    def test_two_instances_asked_for_the_same_person_fetch_it_once(self):
        user = "eve_n600"
        results = {}

        def ask(name, fp):
            results[name] = fp.json("POST", "/api/v1/jobs", {"participants": [{"profile": user}]})

        threads = [threading.Thread(target=ask, args=(n, fp))
                   for n, fp in (("a1", self.a), ("b1", self.b), ("a2", self.a), ("b2", self.b))]
        for t in threads:
            t.start()
        for t in threads:
            t.join(timeout=WAIT)
        for name, (st, job) in results.items():
            self.assertEqual(st, 202, (name, job))
        for name, (st, job) in results.items():
            fp = self.a if name.startswith("a") else self.b
            done = self.wait_job(fp, job["id"])
            self.assertEqual(done["participants"][0]["status"], "ready", done)
            self.assertEqual(done["participants"][0]["films"], 600)
        pages = self.pages_of(user)
        self.assertEqual(len(pages), 22, pages)
        self.assertEqual(set(pages.values()), {1}, "each page fetched once: %r" % pages)


class TwoWorkersOnePersonTest(ScaledTestCase):
    """Two fetch jobs for one person reach both workers at once (the task
    document that stops a second queueing is deleted in between, as if
    Redis had lost it): the lease makes one of them fetch and the other
    find the work done."""

    fake_flags = {"latency_ms": 150}

    def redis(self, *args):
        u = urllib.parse.urlsplit(self.stack.env["FILMPICKER_CACHE"])
        env = dict(os.environ, REDISCLI_AUTH=urllib.parse.unquote(u.password or ""))
        out = subprocess.run(["redis-cli", "-h", u.hostname, "-p", str(u.port), "-n",
                              u.path.strip("/") or "0"] + list(args),
                             check=True, capture_output=True, text=True, timeout=30, env=env)
        return out.stdout.split()

    def test_two_workers_asked_for_the_same_person_at_once_fetch_it_once(self):
        user = "twin_n500"
        before = set(self.redis("--scan", "--pattern", "fp:s:d:task:*"))
        st, first = self.a.json("POST", "/api/v1/jobs", {"participants": [{"profile": user}]})
        self.assertEqual(st, 202, first)
        tasks = sorted(set(self.redis("--scan", "--pattern", "fp:s:d:task:*")) - before)
        self.assertEqual(len(tasks), 1, tasks)
        self.redis("DEL", tasks[0])
        st, second = self.b.json("POST", "/api/v1/jobs", {"participants": [{"profile": user}]})
        self.assertEqual(st, 202, second)
        for fp, job in ((self.a, first), (self.b, second)):
            done = self.wait_job(fp, job["id"])
            self.assertEqual((done["participants"][0]["status"], done["participants"][0]["films"]),
                             ("ready", 500), done)
        pages = self.pages_of(user)
        self.assertEqual(len(pages), 18, pages)
        self.assertEqual(set(pages.values()), {1}, "each page fetched once: %r" % pages)
        fetches = self.w1.log().count('"watchlist_fetch"') + self.w2.log().count('"watchlist_fetch"')
        self.assertEqual(fetches, 1, "one worker fetched, the other found it done")


class HostLimitAcrossWorkersTest(ScaledTestCase):
    """host-concurrency 3 for each worker: together they never go past 3."""

    fake_flags = {"latency_ms": 60}
    extra_env = {"FILMPICKER_HOST_CONCURRENCY": "3"}

    def test_per_host_limit_holds_across_two_workers(self):
        self.fake.reset()
        users = ["host%d_n400" % i for i in range(8)]
        st, job = self.a.json("POST", "/api/v1/jobs",
                              {"participants": [{"profile": u} for u in users]})
        self.assertEqual(st, 202, job)
        done = self.wait_job(self.b, job["id"], timeout=120)
        self.assertEqual({p["status"] for p in done["participants"]}, {"ready"}, done)
        stats = self.fake.stats()
        peak = max(stats["peak_concurrency"].values())
        self.assertLessEqual(peak, 3, stats["peak_concurrency"])
        self.assertEqual(peak, 3, "both workers were busy: the limit was reached, not undershot")
        # Both workers took part.
        self.assertIn('"watchlist_fetch"', self.w1.log())
        self.assertIn('"watchlist_fetch"', self.w2.log())


class SessionsAcrossInstancesTest(ScaledTestCase):
    def test_session_followed_live_through_the_other_instance_with_replay(self):
        self.on(self.a)
        client = ts.Client(self)
        s = self.new_session(client)
        sid = s["id"]
        # Device 2 follows through instance B.
        self.on(self.b)
        st_b = self.stream(sid)
        first = st_b.next_event()
        self.assertEqual(first["event"], "session")
        # Device 1 works through instance A.
        self.on(self.a)
        self.add(client, sid, "fay_n250")
        self.add(client, sid, "gus_n250")
        evs = st_b.until(lambda e: e["event"] == "participant" and
                         e["data"].get("status") == "ready" and e["data"]["name"] == "gus_n250",
                         timeout=WAIT, what="gus ready on instance B")
        names = {e["data"]["name"] for e in evs if e["event"] == "participant"}
        self.assertEqual(names, {"fay_n250", "gus_n250"})
        self.search(client, sid)
        evs = st_b.until(lambda e: e["event"] == "results", timeout=WAIT, what="results on B")
        results = evs[-1]
        self.assertGreater(results["data"]["common_count"], 0)
        film = results["data"]["common"][0]["id"]
        last_seen = results["id"]
        st_b.close()
        # Device 1 vetoes through A while device 2 is away; device 2
        # reconnects to B with Last-Event-ID and gets exactly what it missed.
        self.veto(client, sid, film)
        self.on(self.b)
        again = self.stream(sid, last_event_id=last_seen)
        ev = again.next_event()
        self.assertEqual(ev["event"], "veto", ev)
        self.assertEqual(ev["id"], last_seen + 1)
        self.assertEqual(ev["data"]["film_id"], film)
        # And the other way round: a change through B reaches a stream on A.
        self.on(self.a)
        st_a = self.stream(sid)
        self.assertEqual(st_a.next_event()["event"], "session")
        self.on(self.b)
        self.veto(client, sid, film, vetoed=False)
        ev = st_a.until(lambda e: e["event"] == "veto", timeout=WAIT, what="veto on A")[-1]
        self.assertEqual((ev["data"]["film_id"], ev["data"]["vetoed"]), (film, False))
        # Both instances answer the same state.
        self.assertEqual(self.on(self.a).get(sid)["version"], self.on(self.b).get(sid)["version"])


if __name__ == "__main__":
    unittest.main(verbosity=2)
