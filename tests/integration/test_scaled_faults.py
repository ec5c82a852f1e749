#!/usr/bin/env python3
"""Faults in the scaled set-up, each ending with nothing lost. The servers
are this test's own (scripts/services.sh under $FP_BUILD_DIR/services-faults),
so stopping them never pulls them from under another test.

- a worker killed with SIGKILL in the middle of a job, 20 times in a row:
  the job is redelivered, another worker finishes it, each page is fetched
  at most twice;
- RabbitMQ stopped and started while jobs are queued: every job finishes;
  a search while it is away says so (503 service_unavailable), never 500;
- Redis stopped and started: stored lists still answer the first version,
  sessions answer 503 with Retry-After, and everything works again by itself;
- a poison job (one no worker can open) lands in the dead-letter queue with
  its reason.
"""
import os
import shutil
import sys
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import harness  # noqa: E402
import scaled  # noqa: E402
from spec_check import check_against_spec  # noqa: E402

WAIT = 90.0


def services_dir():
    return os.path.join(harness.build_dir(), "services-faults")


class FaultsTestCase(unittest.TestCase):
    fake_flags = {"latency_ms": 30}

    @classmethod
    def setUpClass(cls):
        cls.services = scaled.Services(services_dir()).start("redis", "rabbitmq")

    @classmethod
    def tearDownClass(cls):
        cls.services.stop()

    def setUp(self):
        self.fake = harness.FakeBoxd(**self.fake_flags).start()
        self.addCleanup(self.fake.stop, raise_on_error=False)
        self.stack = scaled.Stack(self.services, self.fake)
        self.addCleanup(self.stack.stop)

    def job(self, fp, users, expect=202):
        st, data = fp.json("POST", "/api/v1/jobs", {"participants": [{"profile": u} for u in users]})
        self.assertEqual(st, expect, data)
        return data

    def job_view(self, fp, job_id):
        st, headers, raw = fp.request("GET", "/api/v1/jobs/%s" % job_id)
        data = check_against_spec("GET", "/api/v1/jobs/%s" % job_id, st, headers, raw)
        self.assertEqual(st, 200, data)
        return data

    def wait_job(self, fp, job_id, timeout=WAIT):
        return scaled.wait_for(lambda: (lambda v: v if v["status"] == "done" else None)(
            self.job_view(fp, job_id)), timeout, "job %s done" % job_id)

    def pages_of(self, user):
        return {p: n for p, n in self.fake.stats()["pages"].items() if p.startswith("/%s/" % user)}


class WorkerKilledTest(FaultsTestCase):
    fake_flags = {"latency_ms": 250}

    def test_worker_killed_mid_job_twenty_times(self):
        api = self.stack.api()
        worker = self.stack.worker()
        for i in range(20):
            user = "kill%d_n400" % i  # 15 pages
            job = self.job(api, [user])

            def fetching():
                p = self.job_view(api, job["id"])["participants"][0]
                return p["status"] == "fetching" and p["pages_fetched"] >= 1

            scaled.wait_for(fetching, WAIT, "%s being fetched" % user, step=0.02)
            worker.kill()
            self.assertEqual(self.job_view(api, job["id"])["status"], "running")
            worker = self.stack.worker()
            done = self.wait_job(api, job["id"])
            part = done["participants"][0]
            self.assertEqual((part["status"], part["films"], part["error"]), ("ready", 400, None),
                             "round %d: %r" % (i, part))
            pages = self.pages_of(user)
            self.assertEqual(len(pages), 15, pages)
            self.assertLessEqual(max(pages.values()), 2, "round %d: a page fetched more than "
                                 "twice: %r" % (i, pages))
        # Every list is stored and answers warm, with no fetch.
        before = self.fake.stats()["requests_total"]
        st, data = api.json("POST", "/api/scrape/",
                            {"usernames": [{"name": "kill%d_n400" % i, "type": "LB"}
                                           for i in (0, 19)]})
        self.assertEqual(st, 200, data)
        self.assertEqual(self.fake.stats()["requests_total"], before)


class BrokerRestartTest(FaultsTestCase):
    def test_rabbitmq_restarted_while_jobs_are_queued(self):
        api = self.stack.api()
        users = ["queued%d_n100" % i for i in range(6)]
        jobs = [self.job(api, [u]) for u in users]   # no worker yet: they wait in the queue
        for j in jobs:
            self.assertEqual(self.job_view(api, j["id"])["participants"][0]["status"], "queued")
        self.services.stop("rabbitmq")
        try:
            # While the broker is away a cold search says so, at once.
            t0 = time.monotonic()
            lost = self.job(api, ["away_n100"])
            view = self.wait_job(api, lost["id"], timeout=30)
            self.assertLess(time.monotonic() - t0, 15)
            self.assertEqual(view["participants"][0]["status"], "failed")
            self.assertEqual(view["participants"][0]["error"]["code"], "service_unavailable")
        finally:
            self.services.start("rabbitmq")
        self.stack.worker()
        for j, u in zip(jobs, users):
            done = self.wait_job(api, j["id"])
            self.assertEqual((done["participants"][0]["status"], done["participants"][0]["films"]),
                             ("ready", 100), done)
        # The publisher reconnects by itself (with backoff): a new cold
        # search works again within seconds.
        tries = iter(range(1000))

        def cold_search_works():
            job = self.job(api, ["after%d_n100" % next(tries)])
            return self.wait_job(api, job["id"])["participants"][0]["status"] == "ready"

        scaled.wait_for(cold_search_works, 30, "a cold search after the restart", step=0.5)


class RedisRestartTest(FaultsTestCase):
    def test_redis_stopped_and_started(self):
        api = self.stack.api()
        self.stack.worker()
        body = {"usernames": [{"name": "warm1_n200", "type": "LB"}, {"name": "warm2_n200", "type": "LB"}]}
        st, first = api.json("POST", "/api/scrape/", body, timeout=WAIT)
        self.assertEqual(st, 200, first)
        st, headers, raw = api.request("GET", "/api/v1/client")
        self.assertEqual(st, 200)
        cookie = headers["Set-Cookie"].split(";", 1)[0]
        token = check_against_spec("GET", "/api/v1/client", st, headers, raw)["csrf_token"]
        auth = {"Cookie": cookie, "X-CSRF-Token": token, "Content-Type": "application/json"}
        self.services.stop("redis")
        try:
            time.sleep(11)  # past the decoded-list memory: answers come from the database
            st, again = api.json("POST", "/api/scrape/", body, timeout=30)
            self.assertEqual(st, 200, again)
            self.assertEqual(again["intersection_len"], first["intersection_len"])
            st, headers, raw = api.request("POST", "/api/v1/sessions", body=b"{}", headers=auth)
            data = check_against_spec("POST", "/api/v1/sessions", st, headers, raw)
            self.assertEqual(st, 503, data)
            self.assertEqual(data["error"]["code"], "service_unavailable")
            self.assertGreaterEqual(int(headers["Retry-After"]), 1)
        finally:
            self.services.start("redis")

        def session_created():
            st, headers, raw = api.request("POST", "/api/v1/sessions", body=b"{}", headers=auth)
            return st == 201

        scaled.wait_for(session_created, 30, "sessions working again", step=0.2)
        st, data = api.json("POST", "/api/scrape/", body)
        self.assertEqual(st, 200, data)


class PoisonJobTest(FaultsTestCase):
    def test_poison_job_lands_in_the_dead_letter_queue_with_its_reason(self):
        self.stack.api()
        worker = self.stack.worker()
        # An instance with another server key (and its own database) queues
        # a job no worker of this system can open.
        tmp = os.path.join(harness.build_dir(), "poison-%d" % os.getpid())
        os.makedirs(tmp, exist_ok=True)
        self.addCleanup(shutil.rmtree, tmp, True)
        rogue = self.stack.api(FILMPICKER_SECRET_KEY="ab" * 32,
                               FILMPICKER_DATABASE=os.path.join(tmp, "rogue.db"))
        self.job(rogue, ["poison_n100"])
        dead = self.stack.queue_name + ".dead"

        def dead_lettered():
            for line in self.services.rabbitmqctl("list_queues", "name", "messages").splitlines():
                parts = line.split()
                if len(parts) == 2 and parts[0] == dead and parts[1] != "0":
                    return int(parts[1])
            return None

        self.assertEqual(scaled.wait_for(dead_lettered, 60, "a dead letter", step=0.5), 1)
        log = worker.log()
        self.assertIn("payload does not open with this server key", log)
        self.assertNotIn("poison_n100", log)


if __name__ == "__main__":
    unittest.main(verbosity=2)
