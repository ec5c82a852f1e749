#!/usr/bin/env python3
"""The evening keeps its promises (issue 7), against the real server and the
fake Letterboxd:

- a film marked watched stays off the person's list on every later fetch
  (refresh, a new session, a v1 job) and import, until it is put back, through
  the session route, the v1 job route and the first version's
  /api/watchlist/remove; "Put it back" returns it everywhere;
- every common film is in the roll pool and reachable page by page or by
  search, with counts that agree (800 common films, pages of 100);
- uploads carry a display name; bad names and bad film ids are refused.
"""
import json
import os
import sys
import time
import unittest
import uuid

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from test_sessions import Client, SessionTestCase  # noqa: E402

JSON = {"Content-Type": "application/json"}


def multipart_file(filename, data, fields=None):
    boundary = "fp" + uuid.uuid4().hex
    out = b""
    for name, value in (fields or {}).items():
        out += ("--%s\r\nContent-Disposition: form-data; name=\"%s\"\r\n\r\n%s\r\n"
                % (boundary, name, value)).encode("utf-8")
    out += ("--%s\r\nContent-Disposition: form-data; name=\"file\"; filename=\"%s\"\r\n"
            "Content-Type: text/csv\r\n\r\n" % (boundary, filename)).encode("utf-8")
    out += data + ("\r\n--%s--\r\n" % boundary).encode("ascii")
    return out, "multipart/form-data; boundary=" + boundary


def export_csv(films):
    """A Letterboxd watchlist.csv of these fake films."""
    lines = ["Date,Name,Year,Letterboxd URI"]
    for f in films:
        title = '"%s"' % f["title"].replace('"', '""')
        lines.append("2026-01-01,%s,%s,https://letterboxd.com/film/%s/"
                     % (title, f["year"] or "", f["slug"]))
    return ("\r\n".join(lines) + "\r\n").encode("utf-8")


class WatchedStaysWatchedTest(SessionTestCase):
    FAKE = {"markup": "react2025", "size": 60, "common": 30}

    def common_slugs(self, s):
        """Every common film of a session with results, through the pages."""
        out = []
        offset = 0
        while True:
            page = self.call("GET", self.sp(s["id"], "/films?offset=%d&limit=500" % offset),
                             expect=200)[2]
            out += [f["slug"] for f in page["films"]]
            offset += len(page["films"])
            if not page["films"] or offset >= page["total"]:
                return out

    def job_common(self, names, refresh):
        body = {"participants": [{"profile": n, "refresh": refresh} for n in names]}
        job = self.call("POST", "/api/v1/jobs", body, headers=JSON, expect=202)[2]
        deadline = time.monotonic() + 30
        while True:
            status, _, data = self.call("GET", "/api/v1/jobs/%s/results?limit=1000" % job["id"])
            if status == 200:
                return job["id"], {f["slug"]: f for f in data["common"]}
            self.assertLess(time.monotonic(), deadline, data)
            time.sleep(0.05)

    def test_session_watched_survives_refresh_and_import_until_put_back(self):
        a, b = self.user("wsa_zq"), self.user("wsb_zq")
        c = Client(self)
        s = self.session_with_results(c, [a, b])
        film = s["results"]["common"][0]
        before = set(self.common_slugs(s))
        self.assertIn(film["slug"], before)
        after = self.call("POST", self.sp(s["id"], "/watched"), {"film_id": film["id"]},
                          client=c, expect=200)[2]
        self.assertEqual(after["watched"], [film["id"]])

        # refresh: both lists fetched again from the site, which still has it
        pages = self.fake.stats()["requests_total"]
        s2 = self.new_session(c)
        for n in (a, b):
            self.add(c, s2["id"], n)
        self.search(c, s2["id"], refresh=True)
        s2 = self.wait_results(s2["id"])
        self.assertGreater(self.fake.stats()["requests_total"], pages, "nothing was refetched")
        self.assertIn(film["slug"], {f["slug"] for f in self.fake.films(a)})
        self.assertEqual(set(self.common_slugs(s2)), before - {film["slug"]})
        self.assertEqual(s2["results"]["common_count"], len(before) - 1)
        for p in s2["participants"]:
            self.assertEqual([r["film"]["id"] for r in p["recently_watched"]], [film["id"]])
        # the v1 API (refresh) agrees
        _, common = self.job_common([a, b], True)
        self.assertNotIn(film["slug"], common)

        # a's export (which has it) imported as a's list: still off
        body, ctype = multipart_file("watchlist.csv", export_csv(self.fake.films(a)),
                                     {"username": a})
        up = self.call("POST", "/api/v1/imports", body=body, headers={"Content-Type": ctype},
                       expect=201)[2]["import"]
        self.assertEqual((up["films"], up["watched"]), (len(self.fake.films(a)) - 1, 1))
        _, common = self.job_common([a, b], False)
        self.assertNotIn(film["slug"], common)

        # put it back (from the next session's screen): on both lists again
        back = self.call("DELETE", self.sp(s2["id"], "/watched/%d" % film["id"]), client=c,
                         expect=200)[2]
        for p in back["participants"]:
            self.assertEqual(p["recently_watched"], [])
        _, common = self.job_common([a, b], False)
        self.assertIn(film["slug"], common)
        _, common = self.job_common([a, b], True)  # and it stays when refetched
        self.assertIn(film["slug"], common)
        # nothing left to put back
        self.call("DELETE", self.sp(s2["id"], "/watched/%d" % film["id"]), client=c,
                  expect=404, code="not_found")

    def test_put_back_returns_the_film_to_these_results(self):
        a, b = self.user("wpa_zq"), self.user("wpb_zq")
        c = Client(self)
        s = self.session_with_results(c, [a, b])
        count, pool = s["results"]["common_count"], s["results"]["pool"]
        film = s["results"]["common"][2]
        st = self.stream(s["id"])
        st.next_event()
        gone = self.call("POST", self.sp(s["id"], "/watched"), {"film_id": film["id"]},
                         client=c, expect=200)[2]
        self.assertEqual((gone["results"]["common_count"], gone["results"]["pool"]),
                         (count - 1, pool - 1))
        self.assertEqual(gone["watched_films"], [film])
        # another one watched first, then put back in the other order: each
        # film returns to its own place
        other = s["results"]["common"][1]
        self.call("POST", self.sp(s["id"], "/watched"), {"film_id": other["id"]}, client=c,
                  expect=200)
        mid = self.call("DELETE", self.sp(s["id"], "/watched/%d" % film["id"]), client=c,
                        expect=200)[2]
        self.assertEqual(mid["results"]["common"][1], film)
        self.assertNotIn(other["id"], [f["id"] for f in mid["results"]["common"]])
        back = self.call("DELETE", self.sp(s["id"], "/watched/%d" % other["id"]), client=c,
                         expect=200)[2]
        self.assertEqual(back["results"]["common"], s["results"]["common"])
        self.assertEqual((back["watched"], back["watched_films"]), ([], []))
        self.assertEqual((back["results"]["common_count"], back["results"]["pool"]),
                         (count, pool))
        self.assertEqual(back["results"]["common"][2], film)  # where it was
        evs = st.until(lambda e: e["event"] == "unwatched" and e["data"]["film_id"] == other["id"],
                       what="unwatched")
        self.assertEqual(evs[-1]["data"], {"film_id": other["id"], "pool": pool})
        # it can be rolled and watched again
        self.call("POST", self.sp(s["id"], "/watched"), {"film_id": film["id"]}, client=c,
                  expect=200)

    def test_v1_job_watched_and_put_back(self):
        a, b = self.user("wja_zq"), self.user("wjb_zq")
        job, common = self.job_common([a, b], False)
        film = sorted(common.values(), key=lambda f: f["id"])[0]
        marked = self.call("POST", "/api/v1/jobs/%s/watched" % job, {"film_id": film["id"]},
                           headers=JSON, expect=200)[2]
        self.assertEqual([p["removed"] for p in marked["participants"]], [True, True])
        _, common = self.job_common([a, b], True)
        self.assertNotIn(film["slug"], common)
        back = self.call("DELETE", "/api/v1/jobs/%s/watched/%d" % (job, film["id"]),
                         expect=200)[2]
        self.assertEqual(back, {"film_id": film["id"],
                                "participants": [{"name": a, "restored": True},
                                                 {"name": b, "restored": True}]})
        # the job's own copies follow: its results have the film again
        data = self.call("GET", "/api/v1/jobs/%s/results?limit=1000" % job, expect=200)[2]
        self.assertIn(film["slug"], {f["slug"] for f in data["common"]})
        _, common = self.job_common([a, b], True)
        self.assertIn(film["slug"], common)
        again = self.call("DELETE", "/api/v1/jobs/%s/watched/%d" % (job, film["id"]),
                          expect=200)[2]
        self.assertEqual([p["restored"] for p in again["participants"]], [False, False])
        for bad in ("0", "abc", "-1", "1" * 19):
            with self.subTest(film=bad):
                self.call("DELETE", "/api/v1/jobs/%s/watched/%s" % (job, bad), expect=400,
                          code="invalid_request")
        self.call("DELETE", "/api/v1/jobs/%s/watched/1" % ("0" * 32), expect=404,
                  code="not_found")

    def test_first_version_remove_stays_removed(self):
        a, b = self.user("wca_zq"), self.user("wcb_zq")
        users = [{"name": a, "type": "lb"}, {"name": b, "type": "lb"}]
        first = self.call("POST", "/api/scrape/", {"usernames": users}, headers=JSON,
                          expect=200)[2]
        slug = first["intersection"][0]
        removed = self.call("POST", "/api/watchlist/remove",
                            {"film": slug, "usernames": [{"name": a, "type": "lb"}]},
                            headers=JSON, expect=200)[2]
        self.assertEqual(removed, {"results": {a: True}})
        refreshed = [dict(u, refresh=True) for u in users]
        again = self.call("POST", "/api/scrape/", {"usernames": refreshed}, headers=JSON,
                          expect=200)[2]
        self.assertEqual(again["intersection_len"], first["intersection_len"] - 1)
        self.assertNotIn(slug, again["intersection"])
        _, common = self.job_common([a, b], True)
        self.assertNotIn(slug, common)

    def test_put_back_errors(self):
        c = Client(self)
        s = self.new_session(c)
        for bad in ("0", "x", "12a", "-3"):
            with self.subTest(film=bad):
                self.call("DELETE", self.sp(s["id"], "/watched/%s" % bad), client=c,
                          expect=400, code="invalid_request")
        self.call("DELETE", self.sp(s["id"], "/watched/5"), client=c, expect=404,
                  code="not_found")
        self.call("DELETE", self.sp("0" * 32, "/watched/5"), client=c, expect=404,
                  code="not_found")
        self.call("DELETE", self.sp(s["id"], "/watched/5"), expect=403, code="csrf_failed")

    def test_upload_names(self):
        c = Client(self)
        s = self.new_session(c)
        films = self.fake.films(self.user("wua_zq"))
        ids = []
        for _ in range(3):
            body, ctype = multipart_file("watchlist.csv", export_csv(films))
            ids.append(self.call("POST", "/api/v1/imports", body=body,
                                 headers={"Content-Type": ctype}, expect=201)[2]["import"]["id"])
        p = self.sp(s["id"], "/participants")
        named = self.call("POST", p, {"import": ids[0], "name": "  Dana  "}, client=c,
                          expect=201)[2]
        self.assertEqual(named["participants"][0]["name"], "Dana")
        plain = self.call("POST", p, {"import": ids[1]}, client=c, expect=201)[2]
        self.assertEqual(plain["participants"][1]["name"], "Upload 2")
        for bad in ("", "   ", "x" * 41, "é" * 41, "tab\there", "line\nbreak"):
            with self.subTest(name=bad):
                self.call("POST", p, {"import": ids[2], "name": bad}, client=c, expect=422,
                          code="invalid_name")
        for i, wide in enumerate(("é" * 40, "日" * 30, "😀" * 40)):  # 2, 3 and 4 bytes each
            with self.subTest(name=wide[:1]):
                body, ctype = multipart_file("watchlist.csv", export_csv(films))
                imp = self.call("POST", "/api/v1/imports", body=body,
                                headers={"Content-Type": ctype}, expect=201)[2]["import"]["id"]
                got = self.call("POST", p, {"import": imp, "name": wide}, client=c,
                                expect=201)[2]
                self.assertEqual(got["participants"][-1]["name"], wide)
                self.assertEqual(len(got["participants"]), 3 + i)
        for bad in ("a\u0085b", "\u009f"):  # C1 control characters
            with self.subTest(name=bad):
                self.call("POST", p, {"import": ids[2], "name": bad}, client=c, expect=422,
                          code="invalid_name")
        # "Upload N" counts every upload added, so a removed one leaves no twin
        pid = plain["participants"][1]["id"]
        self.call("DELETE", self.sp(s["id"], "/participants/" + pid), client=c, expect=200)
        again = self.call("POST", p, {"import": ids[1]}, client=c, expect=201)[2]
        names = [x["name"] for x in again["participants"]]
        self.assertEqual(len(names), len(set(names)), names)
        self.assertEqual(names[-1], "Upload 6")
        self.call("POST", p, {"import": ids[2], "name": 5}, client=c, expect=400,
                  code="invalid_request")
        self.call("POST", p, {"profile": self.user("wub_zq"), "name": "Bob"}, client=c,
                  expect=400, code="invalid_request")
        # an upload is ready at once, with its film count, before any search
        deadline = time.monotonic() + 10
        while True:
            first = self.get(s["id"])["participants"][0]
            if first["status"] == "ready":
                break
            self.assertLess(time.monotonic(), deadline, first)
            time.sleep(0.05)
        self.assertEqual(first["films"], len(films))
        self.assertEqual(self.get(s["id"])["status"], "gathering")


class EveryCommonFilmTest(SessionTestCase):
    """800 common films: every one in the pool, reachable by pages and search."""

    FAKE = {"markup": "react2025", "size": 850, "common": 800}

    def test_pool_pages_search_and_rolls_cover_all(self):
        a, b = self.user("pa_zq"), self.user("pb_zq")
        c = Client(self)
        s = self.session_with_results(c, [a, b], timeout=90)
        true = {f["slug"] for f in self.fake.films(a)} & {f["slug"] for f in self.fake.films(b)}
        self.assertEqual(len(true), 800)
        res = s["results"]
        self.assertEqual((res["common_count"], res["pool"], len(res["common"])), (800, 800, 100))
        sid = s["id"]
        # every page, in order, each film once, the first page as in the results
        seen = []
        for offset in range(0, 900, 100):
            page = self.call("GET", self.sp(sid, "/films?offset=%d" % offset), expect=200)[2]
            self.assertEqual((page["total"], page["offset"]), (800, offset))
            seen += page["films"]
        self.assertEqual(len(seen), 800)
        self.assertEqual(seen[:100], res["common"])
        self.assertEqual({f["slug"] for f in seen}, true)
        self.assertEqual(len({f["id"] for f in seen}), 800)
        one = self.call("GET", self.sp(sid, "/films?offset=799&limit=5"), expect=200)[2]
        self.assertEqual(one["films"], seen[799:])
        # search: a title from far down the list
        late = seen[650]
        word = max(late["title"].split(), key=len)
        found = self.call("GET", self.sp(sid, "/films?limit=500&q=%s" % word.upper()),
                          expect=200)[2]
        self.assertIn(late["id"], {f["id"] for f in found["films"]})
        self.assertEqual(found["total"], sum(word.lower() in f["title"].lower() for f in seen))
        if late["year"]:
            by_year = self.call("GET", self.sp(sid, "/films?limit=500&q=%d" % late["year"]),
                                expect=200)[2]
            self.assertIn(late["id"], {f["id"] for f in by_year["films"]})
        none = self.call("GET", self.sp(sid, "/films?q=zzqqxxnotatitle"), expect=200)[2]
        self.assertEqual((none["total"], none["films"]), (0, []))
        for bad in ("limit=0", "limit=501", "offset=-1", "offset=x", "q=" + "a" * 201):
            with self.subTest(query=bad):
                self.call("GET", self.sp(sid, "/films?" + bad), expect=400,
                          code="invalid_request")
        # a film from a later page can be struck out, and rolls reach past page one
        veto = self.veto(c, sid, seen[700]["id"])
        self.assertEqual(veto["results"]["pool"], 799)
        first_page = {f["id"] for f in seen[:100]}
        rolled = set()
        for _ in range(30):
            r = self.call("POST", self.sp(sid, "/roll"), {}, client=c, expect=200)[2]
            self.assertNotEqual(r["rolled"]["id"], seen[700]["id"])
            rolled.add(r["rolled"]["id"])
        self.assertTrue(rolled - first_page, "30 rolls never left the first page")
        # watching the first film: the page refills from the next one and the
        # pages stay gapless; putting it back restores both
        gone = self.call("POST", self.sp(sid, "/watched"), {"film_id": seen[0]["id"]}, client=c,
                         expect=200)[2]["results"]
        self.assertEqual((gone["common_count"], len(gone["common"])), (799, 100))
        self.assertEqual(gone["common"], seen[1:101])
        page2 = self.call("GET", self.sp(sid, "/films?offset=100&limit=500"), expect=200)[2]
        self.assertEqual((page2["total"], page2["films"]), (799, seen[101:601]))
        back = self.call("DELETE", self.sp(sid, "/watched/%d" % seen[0]["id"]), client=c,
                         expect=200)[2]["results"]
        self.assertEqual((back["common_count"], back["common"]), (800, seen[:100]))
        # before results: 409
        s2 = self.new_session(c)
        self.call("GET", self.sp(s2["id"], "/films"), expect=409, code="conflict")
        self.call("GET", self.sp("0" * 32, "/films"), expect=404, code="not_found")


if __name__ == "__main__":
    unittest.main(verbosity=2)
