"""Integration tests of tools/fakeboxd, the fake Letterboxd.

Pages are parsed with the standard library's html.parser (this is test code,
independent of FilmPicker's libxml2 parser) and checked against the films the
fake says a user has (/_fake/films/USER), so a bug in either shows up.
"""

import gzip
import html.parser
import json
import math
import os
import re
import signal
import subprocess
import sys
import threading
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from harness import FakeBoxd, build_dir, request  # noqa: E402

SLUG_RE = re.compile(r"^[a-z0-9]+(-[a-z0-9]+)*$")


class WatchlistPage(html.parser.HTMLParser):
    """What a scraper reads from a watchlist page, in any markup generation."""

    def __init__(self, text):
        super().__init__(convert_charrefs=True)
        self.posters = []          # one dict of attributes (+ "alt", "li_class") per poster
        self.num_entries = None    # div.js-watchlist-content[data-num-entries]
        self.count_text = None     # text of span.js-watchlist-count
        self.has_grid = False      # ul.poster-list (classic) or div.poster-grid (react)
        self.next_href = None      # a.next
        self.prev_href = None      # a.previous
        self.page_items = []       # texts of li.paginate-page, in order
        self.title = ""
        self._li_class = None
        self._poster = None
        self._in_count = False
        self._in_page_item = False
        self._in_title = False
        self._page_item_text = ""
        self.feed(text)
        self.close()

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        classes = (a.get("class") or "").split()
        if tag == "li":
            self._li_class = classes
            if "paginate-page" in classes:
                self._in_page_item = True
                self._page_item_text = ""
        elif tag == "div" and "js-watchlist-content" in classes:
            self.num_entries = a.get("data-num-entries")
        elif tag == "span" and "js-watchlist-count" in classes:
            self._in_count = True
            self.count_text = ""
        elif tag == "ul" and "poster-list" in classes:
            self.has_grid = True
        elif tag == "div" and "poster-grid" in classes:
            self.has_grid = True
        elif tag == "div" and "film-poster" in classes and "data-film-slug" in a:
            self._start_poster(a)
        elif (tag == "div" and "react-component" in classes
              and (a.get("data-component-class") or "").endswith("LazyPoster")):
            self._start_poster(a)
        elif tag == "img" and self._poster is not None and "alt" not in self._poster:
            self._poster["alt"] = a.get("alt")
        elif tag == "a" and "next" in classes:
            self.next_href = a.get("href")
        elif tag == "a" and "previous" in classes:
            self.prev_href = a.get("href")
        elif tag == "title":
            self._in_title = True

    def _start_poster(self, attrs):
        self._poster = dict(attrs)
        self._poster["li_class"] = self._li_class
        self.posters.append(self._poster)

    def handle_endtag(self, tag):
        if tag == "span":
            self._in_count = False
        elif tag == "li":
            if self._in_page_item:
                self.page_items.append(self._page_item_text.strip())
            self._in_page_item = False
            self._poster = None
        elif tag == "title":
            self._in_title = False

    def handle_data(self, data):
        if self._in_count:
            self.count_text += data
        if self._in_page_item:
            self._page_item_text += data
        if self._in_title:
            self.title += data

    def page_numbers(self):
        return [int(t) for t in self.page_items if t.isdigit()]


def parse(body):
    return WatchlistPage(body.decode("utf-8"))


def poster_uid(poster):
    """The numeric id from data-postered-identifier ({"uid": "film:N", ...})."""
    ident = json.loads(poster["data-postered-identifier"])
    kind, _, num = ident["uid"].partition(":")
    assert kind == "film", ident
    return int(num)


def crawl(fake, user, limit=200):
    """Follows a.next from page 1; returns the parsed pages (bounded)."""
    pages = []
    path = "/%s/watchlist/" % user
    while path is not None:
        if len(pages) >= limit:
            raise AssertionError("more than %d pages for %s" % (limit, user))
        status, _, body = fake.request("GET", path)
        if status != 200:
            raise AssertionError("GET %s answered %d" % (path, status))
        page = parse(body)
        pages.append(page)
        path = page.next_href
    return pages


class DefaultSite(unittest.TestCase):
    """The default flags: classic markup, 28 a page, 100 films, 20 shared."""

    @classmethod
    def setUpClass(cls):
        cls.fake = FakeBoxd()
        cls.fake.start()

    @classmethod
    def tearDownClass(cls):
        cls.fake.stop()

    def setUp(self):
        self.fake.reset()

    def get(self, path, headers=None):
        return self.fake.request("GET", path, headers=headers)

    def test_crawl_gives_every_film_once_in_list_order(self):
        expected = self.fake.films("alice")
        self.assertEqual(len(expected), 100)
        pages = crawl(self.fake, "alice")
        self.assertEqual([len(p.posters) for p in pages], [28, 28, 28, 16])
        posters = [p for page in pages for p in page.posters]
        self.assertEqual([p["data-film-slug"] for p in posters], [f["slug"] for f in expected])
        self.assertEqual([int(p["data-film-id"]) for p in posters], [f["lb_id"] for f in expected])
        self.assertEqual([poster_uid(p) for p in posters], [f["lb_id"] for f in expected])
        self.assertEqual([p["alt"] for p in posters], [f["title"] for f in expected])
        self.assertEqual(len({f["slug"] for f in expected}), 100)
        self.assertEqual(len({f["lb_id"] for f in expected}), 100)
        for page in pages:
            self.assertEqual(page.num_entries, "100")
            self.assertEqual(page.count_text, "100\u00a0films")
            self.assertEqual(page.page_numbers(), [1, 2, 3, 4])
            self.assertEqual(page.title, "\u200ealice\u2019s Watchlist \u2022 Letterboxd")
        self.assertEqual(pages[0].next_href, "/alice/watchlist/page/2/")
        self.assertIsNone(pages[0].prev_href)
        self.assertEqual(pages[1].prev_href, "/alice/watchlist/")
        self.assertIsNone(pages[3].next_href)

    def test_film_json_is_well_formed(self):
        for f in self.fake.films("alice"):
            self.assertEqual(sorted(f), ["lb_id", "slug", "title", "year"])
            self.assertTrue(SLUG_RE.match(f["slug"]), f)
            self.assertTrue(1920 <= f["year"] <= 2025, f)
            self.assertTrue(f["title"], f)
            self.assertTrue(100000 < f["lb_id"] <= 120000, f)

    def test_size_suffix_overrides_size(self):
        expected = self.fake.films("bob_n1000")
        self.assertEqual(len(expected), 1000)
        self.assertEqual(len({f["lb_id"] for f in expected}), 1000)
        pages = crawl(self.fake, "bob_n1000")
        self.assertEqual(len(pages), math.ceil(1000 / 28))
        self.assertEqual(len(pages[-1].posters), 1000 - 35 * 28)
        self.assertEqual(pages[0].num_entries, "1000")
        self.assertEqual(pages[0].count_text, "1,000\u00a0films")
        self.assertEqual(pages[0].page_items, ["1", "2", "3", "\u2026", "36"])
        self.assertEqual(pages[9].page_items,
                         ["1", "\u2026", "8", "9", "10", "11", "12", "\u2026", "36"])
        slugs = [p["data-film-slug"] for page in pages for p in page.posters]
        self.assertEqual(slugs, [f["slug"] for f in expected])
        self.assertEqual(len(self.fake.films("bob_n1")), 1)
        self.assertEqual(len(self.fake.films("bob_n0")), 0)

    def test_single_film_and_single_page(self):
        status, _, body = self.get("/solo_n1/watchlist/")
        self.assertEqual(status, 200)
        page = parse(body)
        self.assertEqual(len(page.posters), 1)
        self.assertEqual(page.count_text, "1\u00a0film")
        self.assertEqual(page.page_items, [])
        self.assertIsNone(page.next_href)
        self.assertNotIn(b'class="pagination"', body)

    def test_past_the_end_page_is_empty_scaffolding(self):
        status, _, body = self.get("/alice/watchlist/page/5/")
        self.assertEqual(status, 200)
        page = parse(body)
        self.assertEqual(page.posters, [])
        self.assertTrue(page.has_grid)
        self.assertEqual(page.num_entries, "100")
        self.assertEqual(page.count_text, "100\u00a0films")
        self.assertIsNone(page.next_href)
        self.assertEqual(page.prev_href, "/alice/watchlist/page/4/")
        self.assertEqual(page.page_numbers(), [1, 2, 3, 4])
        self.assertIn(b'<span class="next">Older</span>', body)
        status, _, far = self.get("/alice/watchlist/page/100/")
        self.assertEqual(status, 200)
        self.assertEqual(parse(far).posters, [])
        self.assertEqual(parse(far).prev_href, "/alice/watchlist/page/99/")

    def test_url_spellings_give_the_same_page(self):
        _, _, canonical = self.get("/alice/watchlist/")
        for path in ["/alice/watchlist", "/alice/watchlist/page/1/", "/alice/watchlist/page/1"]:
            status, _, body = self.get(path)
            self.assertEqual(status, 200, path)
            self.assertEqual(body, canonical, path)
        _, _, p2 = self.get("/alice/watchlist/page/2/")
        _, _, p2b = self.get("/alice/watchlist/page/2")
        self.assertEqual(p2, p2b)
        self.assertNotEqual(p2, canonical)

    def test_usernames_are_case_insensitive(self):
        self.assertEqual(self.fake.films("Alice"), self.fake.films("alice"))
        _, _, body = self.get("/Alice/watchlist/")
        self.assertEqual([p["data-film-slug"] for p in parse(body).posters],
                         [f["slug"] for f in self.fake.films("alice")[:28]])

    def test_lists_share_the_common_films_and_overlap_partially(self):
        common = set(range(100001, 100021))
        lists = {u: {f["lb_id"] for f in self.fake.films(u)} for u in ["alice", "bob", "carol"]}
        for user, ids in lists.items():
            self.assertTrue(common <= ids, user)
        self.assertNotEqual(lists["alice"], lists["bob"])
        a, b = lists["alice"], lists["bob"]
        self.assertLess(len(a & b), 100)
        # The shared films are spread over the list, not all on page 1.
        order = [f["lb_id"] for f in self.fake.films("alice")]
        positions = [order.index(i) for i in common]
        self.assertGreater(max(positions), 28)

    def test_tricky_titles_are_escaped_and_round_trip(self):
        films = self.fake.films("tricky_n3000")
        titles = [f["title"] for f in films]
        self.assertTrue(any("&" in t for t in titles))
        self.assertTrue(any("'" in t for t in titles))
        self.assertTrue(any('"' in t for t in titles))
        self.assertTrue(any("Sir\u0101t" in t for t in titles))
        self.assertTrue(any("L\u00e9on" in t for t in titles))
        self.assertTrue(any(re.search("[\u0400-\u04ff]", t) for t in titles))
        slugs = [f["slug"] for f in films]
        self.assertEqual(len(set(slugs)), len(slugs))
        self.assertTrue(all(SLUG_RE.match(s) for s in slugs))
        # Slugs made unique with the year, the way Letterboxd does it.
        by_slug = {f["slug"]: f for f in films}
        self.assertTrue(any(s.endswith("-%d" % f["year"]) for s, f in by_slug.items()))
        # Every page's titles equal the JSON titles after unescaping.
        pages = crawl(self.fake, "tricky_n3000")
        self.assertEqual([p["alt"] for pg in pages for p in pg.posters], titles)
        _, _, raw = self.get("/tricky_n3000/watchlist/")
        text = raw.decode("utf-8")
        for alt in re.findall(r'alt="([^"]*)"', text):
            self.assertNotIn("'", alt)
            self.assertNotRegex(alt, r"&(?!amp;|lt;|gt;|quot;|#039;)")

    def test_common_films_include_the_tricky_cases(self):
        titles = [f["title"] for f in self.fake.films("anyone_n20")]
        self.assertEqual(len(titles), 20)
        self.assertTrue(any("&" in t for t in titles))
        self.assertTrue(any("'" in t for t in titles))
        self.assertTrue(any('"' in t for t in titles))
        self.assertTrue(any(any(ord(c) > 127 for c in t) for t in titles))

    def test_not_found_user(self):
        status, headers, body = self.get("/notfound_zed/watchlist/")
        self.assertEqual(status, 404)
        self.assertEqual(headers["Content-Type"], "text/html; charset=utf-8")
        self.assertIn("Sorry, we can\u2019t find the page".encode("utf-8"), body)
        self.assertEqual(self.fake.films("notfound_zed"), [])

    def test_unknown_paths_are_404(self):
        for path in ["/", "/alice/", "/alice/films/", "/alice/watchlist/page/0/",
                     "/alice/watchlist/page/01/", "/alice/watchlist/page/-1/",
                     "/alice/watchlist/page/abc/", "/alice/watchlist/page/2/x",
                     "/ali-ce/watchlist/", "/alice/watchlist/page/9999999999/",
                     "/%s/watchlist/" % ("a" * 41)]:
            status, _, body = self.get(path)
            self.assertEqual(status, 404, path)
            self.assertIn(b"Sorry, we can", body, path)

    def test_methods(self):
        status, headers, _ = self.fake.request("POST", "/alice/watchlist/", body=b"x=1")
        self.assertEqual(status, 405)
        self.assertEqual(headers["Allow"], "GET, HEAD")
        status, headers, body = self.fake.request("HEAD", "/alice/watchlist/")
        self.assertEqual(status, 200)
        self.assertEqual(body, b"")
        status, headers, _ = self.fake.request("GET", "/_fake/reset")
        self.assertEqual(status, 405)
        self.assertEqual(headers["Allow"], "POST")
        status, _, _ = self.fake.request("GET", "/_fake/nothing")
        self.assertEqual(status, 404)
        status, _, _ = self.fake.request("GET", "/_fake/films/bad-name")
        self.assertEqual(status, 404)

    def test_plays_the_telegram_bot_api(self):
        """The stack's alert test points Alertmanager's Telegram receiver here."""
        msg = {"chat_id": -1001234, "text": "FIRING <b>FilmPickerInstanceDown</b>",
               "parse_mode": "HTML"}
        status, _, body = self.fake.request("POST", "/bot42:secret/sendMessage",
                                            body=json.dumps(msg).encode(),
                                            headers={"Content-Type": "application/json"})
        self.assertEqual(status, 200)
        answer = json.loads(body)
        self.assertTrue(answer["ok"])
        self.assertEqual(answer["result"]["chat"]["id"], -1001234)
        self.assertEqual(answer["result"]["text"], msg["text"])
        for bad in (b"", b"not json", b'{"chat_id": 1}', b'{"text": "x"}', b"[1]"):
            status, _, body = self.fake.request("POST", "/bot42:secret/sendMessage", body=bad)
            self.assertEqual(status, 400, bad)
            self.assertFalse(json.loads(body)["ok"])
        status, _, _ = self.fake.request("POST", "/bot42:secret/getUpdates", body=b"{}")
        self.assertEqual(status, 404)
        status, _, body = self.get("/_fake/telegram")
        self.assertEqual(status, 200)
        self.assertEqual(json.loads(body)["messages"],
                         [{"token": "42:secret", "chat_id": -1001234, "text": msg["text"],
                           "parse_mode": "HTML"}])
        # a chat id sent as a string (as Alertmanager does) is answered as a number
        status, _, body = self.fake.request("POST", "/bot42:secret/sendMessage",
                                            body=b'{"chat_id": "-100777", "text": "hi"}')
        self.assertEqual(status, 200)
        self.assertEqual(json.loads(body)["result"]["chat"]["id"], -100777)
        # the messages are not site requests and a reset forgets them
        self.assertEqual(self.fake.stats()["requests_total"], 0)
        self.fake.reset()
        self.assertEqual(json.loads(self.get("/_fake/telegram")[2])["messages"], [])

    def test_empty_and_private_look_the_same(self):
        shapes = []
        for user in ["empty_ann", "private_ann"]:
            status, _, body = self.get("/%s/watchlist/" % user)
            self.assertEqual(status, 200, user)
            page = parse(body)
            self.assertEqual(page.posters, [], user)
            self.assertTrue(page.has_grid, user)
            self.assertEqual(page.num_entries, "0", user)
            self.assertEqual(page.count_text, "0\u00a0films", user)
            self.assertIsNone(page.next_href, user)
            self.assertEqual(self.fake.films(user), [])
            shapes.append(body.decode("utf-8").replace(user, "USER"))
        # Same markup apart from the username and the hash-derived ESI path.
        strip = [re.sub(r'data-path="[^"]*"', "", s) for s in shapes]
        self.assertEqual(strip[0], strip[1])

    def test_blocked_user_gets_the_cloudflare_challenge(self):
        status, headers, body = self.get("/blocked_bo/watchlist/")
        self.assertEqual(status, 403)
        self.assertEqual(headers["cf-mitigated"], "challenge")
        self.assertIn(b"<title>Just a moment...</title>", body)
        self.assertIn(b"window._cf_chl_opt", body)
        self.assertIn(b"/cdn-cgi/challenge-platform/", body)
        self.assertNotIn(b"js-watchlist-content", body)

    def test_down_user_always_503(self):
        for _ in range(3):
            status, _, _ = self.get("/down_dan/watchlist/")
            self.assertEqual(status, 503)

    def test_flaky_user_fails_each_page_once(self):
        self.assertEqual(self.get("/flaky_fi/watchlist/")[0], 503)
        self.assertEqual(self.get("/flaky_fi/watchlist/")[0], 200)
        self.assertEqual(self.get("/flaky_fi/watchlist/page/1/")[0], 200)
        self.assertEqual(self.get("/flaky_fi/watchlist/page/2/")[0], 503)
        status, _, body = self.get("/flaky_fi/watchlist/page/2/")
        self.assertEqual(status, 200)
        self.assertEqual(len(parse(body).posters), 28)
        self.fake.reset()
        self.assertEqual(self.get("/flaky_fi/watchlist/page/2/")[0], 503)
        self.assertEqual(len(self.fake.films("flaky_fi")), 100)

    def test_ratelimited_user_gets_429_once_per_page(self):
        status, headers, _ = self.get("/ratelimited_r/watchlist/")
        self.assertEqual(status, 429)
        self.assertEqual(headers["Retry-After"], "1")
        status, headers, body = self.get("/ratelimited_r/watchlist/")
        self.assertEqual(status, 200)
        self.assertIsNone(headers["Retry-After"])
        self.assertEqual(len(parse(body).posters), 28)
        self.assertEqual(self.get("/ratelimited_r/watchlist/page/3/")[0], 429)
        self.fake.reset()
        self.assertEqual(self.get("/ratelimited_r/watchlist/")[0], 429)

    def test_garbage_user_gets_an_unknown_markup(self):
        status, headers, body = self.get("/garbage_g/watchlist/")
        self.assertEqual(status, 200)
        self.assertEqual(headers["Content-Type"], "text/html; charset=utf-8")
        page = parse(body)
        self.assertEqual(page.posters, [])
        self.assertFalse(page.has_grid)
        self.assertIsNone(page.num_entries)
        self.assertIsNone(page.count_text)
        for marker in [b"js-watchlist-content", b"poster-container", b"griditem", b"LazyPoster",
                       b"pagination", b"data-film-slug", b"Just a moment"]:
            self.assertNotIn(marker, body)
        self.assertIn(b"<article", body)

    def test_xss_title_is_escaped(self):
        films = self.fake.films("xss_x")
        evil = [f for f in films if f["title"] == "<img src=x onerror=alert(1)>"]
        self.assertEqual(len(evil), 1)
        self.assertEqual(len(films), 100)
        self.assertTrue(set(range(100001, 100021)) <= {f["lb_id"] for f in films})
        status, _, body = self.get("/xss_x/watchlist/")
        self.assertEqual(status, 200)
        self.assertNotIn(b"<img src=x", body)
        self.assertIn(b'alt="&lt;img src=x onerror=alert(1)&gt;"', body)
        alts = [p["alt"] for p in parse(body).posters]
        self.assertIn("<img src=x onerror=alert(1)>", alts)

    def test_no_gzip_without_the_flag(self):
        status, headers, body = self.get("/alice/watchlist/", headers={"Accept-Encoding": "gzip"})
        self.assertEqual(status, 200)
        self.assertIsNone(headers["Content-Encoding"])
        self.assertTrue(body.startswith(b"\n\n<!DOCTYPE html>"))

    def test_counters(self):
        host = "127.0.0.1:%d" % self.fake.port
        self.get("/alice/watchlist/")
        self.get("/alice/watchlist/page/2/")
        self.get("/alice/watchlist/page/2/")
        self.get("/notfound_q/watchlist/")
        self.fake.films("alice")   # /_fake/ requests are not counted
        stats = self.fake.stats()
        self.assertEqual(stats["requests_total"], 4)
        self.assertEqual(stats["pages"], {"/alice/watchlist/": 1,
                                          "/alice/watchlist/page/2/": 2,
                                          "/notfound_q/watchlist/": 1})
        self.assertEqual(stats["peak_concurrency"], {host: 1})
        self.assertEqual(stats["in_flight"], 0)
        self.fake.reset()
        stats = self.fake.stats()
        self.assertEqual(stats, {"requests_total": 0, "pages": {}, "peak_concurrency": {},
                                 "in_flight": 0})

    def test_host_header_keys_the_concurrency(self):
        self.get("/alice/watchlist/", headers={"Host": "letterboxd.com"})
        self.get("/alice/watchlist/", headers={"Host": "other.example"})
        stats = self.fake.stats()
        self.assertEqual(stats["peak_concurrency"], {"letterboxd.com": 1, "other.example": 1})


class Determinism(unittest.TestCase):
    def test_same_flags_same_bytes_across_processes(self):
        bodies = []
        films = []
        for _ in range(2):
            with FakeBoxd(markup="react2025", size=150) as fake:
                pages = []
                for path in ["/carol/watchlist/", "/carol/watchlist/page/3/", "/xss_z/watchlist/",
                             "/carol/watchlist/page/9/", "/garbage_q/watchlist/"]:
                    status, _, body = fake.request("GET", path)
                    self.assertEqual(status, 200, path)
                    pages.append(body)
                bodies.append(pages)
                films.append(fake.films("carol"))
        self.assertEqual(bodies[0], bodies[1])
        self.assertEqual(films[0], films[1])
        self.assertEqual(len(films[0]), 150)

    def test_universe_and_common_flags(self):
        with FakeBoxd(universe=50, common=10, size=30) as fake:
            for user in ["u1", "u2", "u3"]:
                ids = [f["lb_id"] for f in fake.films(user)]
                self.assertEqual(len(ids), 30)
                self.assertEqual(len(set(ids)), 30)
                self.assertTrue(set(range(100001, 100011)) <= set(ids))
                self.assertTrue(all(100001 <= i <= 100050 for i in ids))
            # More than the universe holds: every film, once.
            ids = sorted(f["lb_id"] for f in fake.films("big_n500"))
            self.assertEqual(ids, list(range(100001, 100051)))

    def test_film_data_does_not_depend_on_the_universe(self):
        with FakeBoxd(universe=100, common=100, size=100) as small:
            a = {f["lb_id"]: f for f in small.films("x")}
        with FakeBoxd(universe=20000, common=100, size=100) as big:
            b = {f["lb_id"]: f for f in big.films("x")}
        self.assertEqual(a, b)


class Markups(unittest.TestCase):
    def crawl_markup(self, markup):
        with FakeBoxd(markup=markup, size=300) as fake:
            expected = fake.films("dave")
            pages = crawl(fake, "dave")
            _, _, raw = fake.request("GET", "/dave/watchlist/")
            _, _, past = fake.request("GET", "/dave/watchlist/page/12/")
        self.assertEqual(len(pages), 11)
        posters = [p for page in pages for p in page.posters]
        self.assertEqual(len(posters), 300)
        self.assertEqual(pages[0].page_items, ["1", "2", "3", "\u2026", "11"])
        self.assertEqual(parse(past).posters, [])
        self.assertIsNone(parse(past).next_href)
        return expected, posters, raw.decode("utf-8")

    def test_classic(self):
        expected, posters, raw = self.crawl_markup("classic")
        for p, f in zip(posters, expected):
            self.assertIn("poster-container", p["li_class"])
            self.assertIn("film-poster", p["class"].split())
            self.assertEqual(p["data-film-id"], str(f["lb_id"]))
            self.assertEqual(p["data-film-slug"], f["slug"])
            self.assertEqual(poster_uid(p), f["lb_id"])
            self.assertEqual(p["alt"], f["title"])
            self.assertEqual(p["data-target-link"], "/film/%s/" % f["slug"])
            self.assertNotIn("data-item-name", p)
        self.assertIn("data-postered-identifier='{\"lid\":", raw)
        self.assertIn('<li class="paginate-page unseen-pages">&hellip;</li>', raw)
        self.assertNotIn("react-component\" data-component-class=\"LazyPoster", raw)

    def check_react(self, expected, posters):
        for p, f in zip(posters, expected):
            self.assertEqual(p["li_class"], ["griditem"])
            self.assertEqual(p["class"], "react-component")
            self.assertEqual(p["data-component-class"], "LazyPoster")
            name = "%s (%d)" % (f["title"], f["year"])
            self.assertEqual(p["data-item-name"], name)
            self.assertEqual(p["data-item-full-display-name"], name)
            self.assertEqual(p["data-item-slug"], f["slug"])
            self.assertEqual(p["data-item-link"], "/film/%s/" % f["slug"])
            self.assertEqual(poster_uid(p), f["lb_id"])
            self.assertEqual(p["alt"], f["title"])
            self.assertNotIn("data-film-slug", p)

    def test_react2025(self):
        expected, posters, raw = self.crawl_markup("react2025")
        self.check_react(expected, posters)
        for p, f in zip(posters, expected):
            self.assertEqual(p["data-film-id"], str(f["lb_id"]))
        self.assertIn('data-postered-identifier="{&quot;lid&quot;:', raw)
        self.assertIn('<div class="poster-grid">', raw)
        self.assertIn('<li class="paginate-page unseen-pages">&hellip;</li>', raw)

    def test_react2026(self):
        expected, posters, raw = self.crawl_markup("react2026")
        self.check_react(expected, posters)
        for p in posters:
            self.assertNotIn("data-film-id", p)
        self.assertNotIn("data-film-id", raw)
        self.assertIn("data-postered-identifier='{&quot;lid&quot;:", raw)
        self.assertIn('<li class="paginate-page unseen-pages">\u2026</li>', raw)

    def test_per_page(self):
        with FakeBoxd(per_page=100, size=250) as fake:
            pages = crawl(fake, "erin")
        self.assertEqual([len(p.posters) for p in pages], [100, 100, 50])


def fixtures_dir():
    """shared/fixtures/letterboxd: real pages, read in place."""
    base = os.environ.get("FP_SHARED_FIXTURES") or os.path.join(
        os.path.dirname(os.path.abspath(__file__)), "..", "..", "..", "shared", "fixtures")
    path = os.path.join(base, "letterboxd")
    if not os.path.isdir(path):
        raise AssertionError("real fixtures not found at %s (set FP_SHARED_FIXTURES)" % path)
    return path


def read_fixture(name):
    with open(os.path.join(fixtures_dir(), name), encoding="utf-8") as f:
        return f.read()


class Structure(html.parser.HTMLParser):
    """Where things sit: the chain of tag#id.class ancestors of the first
    poster, of the count and of the pagination, and the first poster's
    attribute names in order."""

    VOID = {"area", "base", "br", "col", "embed", "hr", "img", "input", "link", "meta",
            "source", "track", "wbr"}

    def __init__(self, text):
        super().__init__(convert_charrefs=True)
        self.stack = []
        self.chains = {}
        self.poster_attrs = None
        self.feed(text)
        self.close()

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        classes = (a.get("class") or "").split()
        if tag in self.VOID:
            return
        desc = tag + ("#" + a["id"] if "id" in a else "")
        desc += "".join("." + c for c in classes if c not in ("watchlist-seen",))
        self.stack.append((tag, desc))
        is_poster = (("film-poster" in classes and "data-film-slug" in a)
                     or (a.get("data-component-class") or "").endswith("LazyPoster"))
        if is_poster and self.poster_attrs is None:
            self.poster_attrs = [k for k, _ in attrs]
            self.chains["poster"] = self.chain(skip_root=True)
        if "js-watchlist-count" in classes:
            self.chains["count"] = self.chain(skip_root=True)
        if tag == "div" and "pagination" in classes:
            self.chains["pagination"] = self.chain(skip_root=True)

    def chain(self, skip_root):
        # The root <html> carries client-side classes in browser-saved pages.
        items = [d for _, d in self.stack]
        return " > ".join(items[1:] if skip_root else items)

    def handle_endtag(self, tag):
        for i in range(len(self.stack) - 1, -1, -1):
            if self.stack[i][0] == tag:
                del self.stack[i:]
                break


class Fidelity(unittest.TestCase):
    """The fake's pages against the real saved pages in shared/fixtures."""

    def fake_page(self, markup, user, page, per_page=28):
        with FakeBoxd(markup=markup, per_page=per_page) as fake:
            status, _, body = fake.request("GET", "/%s/watchlist/page/%d/" % (user, page))
        self.assertEqual(status, 200)
        return body.decode("utf-8")

    def test_the_test_parser_reads_the_real_pages(self):
        real = WatchlistPage(read_fixture("watchlist-classic-midaskiebert-p1-2025-07.html"))
        self.assertEqual(len(real.posters), 100)
        self.assertEqual(real.posters[0]["data-film-slug"], "fail-safe")
        self.assertEqual(real.posters[0]["alt"], "Fail Safe")
        self.assertEqual(poster_uid(real.posters[0]), 51608)
        self.assertEqual(real.num_entries, "384")
        self.assertEqual(real.count_text, "384\u00a0films")
        self.assertEqual(real.next_href, "/midaskiebert/watchlist/page/2/")
        react = WatchlistPage(read_fixture("watchlist-react2025-spazznolo-p1-2026-01.html"))
        self.assertEqual(len(react.posters), 28)
        self.assertEqual(react.posters[1]["data-item-name"], "Sir\u0101t (2025)")
        self.assertEqual(poster_uid(react.posters[0]), 454134)
        self.assertEqual(react.page_items, ["1", "2", "3", "\u2026", "15"])

    def compare(self, real_text, fake_text, user_real, user_fake, layout_text=None):
        """layout_text: the real page whose element nesting to compare, when
        real_text was saved from a browser (whose scripts add classes)."""
        real = Structure(real_text)
        fake = Structure(fake_text)
        layout = Structure(layout_text) if layout_text else real
        self.assertEqual(fake.poster_attrs, real.poster_attrs)
        for key in ("poster", "count", "pagination"):
            self.assertEqual(fake.chains.get(key), layout.chains.get(key), key)
        r = WatchlistPage(real_text)
        f = WatchlistPage(fake_text)
        self.assertEqual(f.num_entries, r.num_entries)
        self.assertEqual(f.count_text, r.count_text)
        self.assertEqual(f.page_items, r.page_items)
        self.assertEqual(f.next_href, r.next_href.replace(user_real, user_fake))
        self.assertEqual(len(f.posters), len(r.posters))

    def test_classic_first_page(self):
        self.compare(read_fixture("watchlist-classic-midaskiebert-p1-2025-07.html"),
                     self.fake_page("classic", "mk_n384", 1, per_page=100), "midaskiebert", "mk_n384")

    def test_classic_page_past_the_end(self):
        real_text = read_fixture("watchlist-classic-midaskiebert-p100-empty-2025-07.html")
        fake_text = self.fake_page("classic", "mk_n384", 100, per_page=100)
        real = WatchlistPage(real_text)
        fake = WatchlistPage(fake_text)
        self.assertEqual(fake.posters, [])
        self.assertEqual(real.posters, [])
        self.assertEqual((fake.num_entries, fake.count_text), (real.num_entries, real.count_text))
        self.assertEqual(fake.page_items, real.page_items)
        self.assertEqual(fake.prev_href, real.prev_href.replace("midaskiebert", "mk_n384"))
        self.assertIsNone(fake.next_href)
        self.assertIsNone(real.next_href)
        self.assertEqual(Structure(fake_text).chains.get("pagination"),
                         Structure(real_text).chains.get("pagination"))

    def test_react2025_first_page(self):
        # spazznolo's page went through a browser (body gained "logged-out
        # show-hide-toggle"); midaskiebert's React page is raw server HTML.
        self.compare(read_fixture("watchlist-react2025-spazznolo-p1-2026-01.html"),
                     self.fake_page("react2025", "sp_n415", 1), "spazznolo", "sp_n415",
                     layout_text=read_fixture("watchlist-react2025-midaskiebert-p1-2025-08.html"))

    def test_react2026_poster_attributes(self):
        real = Structure(read_fixture("watchlist-react2026-truncated-fragment-2026-05.html"))
        fake = Structure(self.fake_page("react2026", "anyone", 1))
        self.assertEqual(fake.poster_attrs, real.poster_attrs)
        self.assertNotIn("data-film-id", fake.poster_attrs)


class Gzip(unittest.TestCase):
    def test_gzip_when_accepted(self):
        with FakeBoxd(gzip=True) as fake:
            status, headers, plain = fake.request("GET", "/alice/watchlist/")
            self.assertEqual(status, 200)
            self.assertIsNone(headers["Content-Encoding"])
            self.assertEqual(headers["Vary"], "Accept-Encoding")
            status, headers, packed = fake.request("GET", "/alice/watchlist/",
                                                   headers={"Accept-Encoding": "br, gzip, deflate"})
            self.assertEqual(status, 200)
            self.assertEqual(headers["Content-Encoding"], "gzip")
            self.assertEqual(int(headers["Content-Length"]), len(packed))
            self.assertLess(len(packed), len(plain))
            self.assertEqual(gzip.decompress(packed), plain)
            _, headers, _ = fake.request("GET", "/alice/watchlist/",
                                         headers={"Accept-Encoding": "gzip;q=0, identity"})
            self.assertIsNone(headers["Content-Encoding"])
            status, headers, packed = fake.request("GET", "/notfound_a/watchlist/",
                                                   headers={"Accept-Encoding": "gzip"})
            self.assertEqual(status, 404)
            self.assertEqual(headers["Content-Encoding"], "gzip")
            self.assertIn(b"Sorry, we can", gzip.decompress(packed))
            # The test endpoints stay plain JSON.
            status, headers, body = fake.request("GET", "/_fake/stats",
                                                 headers={"Accept-Encoding": "gzip"})
            self.assertIsNone(headers["Content-Encoding"])
            self.assertEqual(json.loads(body)["requests_total"], 4)


class ChallengeFlag(unittest.TestCase):
    def test_every_page_is_challenged(self):
        with FakeBoxd(challenge=True) as fake:
            for path in ["/alice/watchlist/", "/alice/watchlist/page/2/", "/empty_e/watchlist/",
                         "/favicon.ico"]:
                status, headers, body = fake.request("GET", path)
                self.assertEqual(status, 403, path)
                self.assertEqual(headers["cf-mitigated"], "challenge")
                self.assertIn(b"Just a moment...", body)
            self.assertEqual(len(fake.films("alice")), 100)


class Timing(unittest.TestCase):
    def test_peak_concurrency_with_latency(self):
        n = 10
        with FakeBoxd(latency_ms=200) as fake:
            host = "127.0.0.1:%d" % fake.port
            barrier = threading.Barrier(n)
            results = [None] * n

            def worker(i, hdr):
                barrier.wait(timeout=10)
                results[i] = fake.request("GET", "/user%d/watchlist/" % i, headers=hdr)[0]

            threads = [threading.Thread(target=worker, args=(i, None)) for i in range(n)]
            started = time.monotonic()
            for t in threads:
                t.start()
            for t in threads:
                t.join(timeout=30)
            elapsed = time.monotonic() - started
            self.assertEqual(results, [200] * n)
            self.assertGreaterEqual(elapsed, 0.2)
            self.assertLess(elapsed, 0.2 * n)   # they really ran side by side
            stats = fake.stats()
            self.assertEqual(stats["peak_concurrency"], {host: n})
            self.assertEqual(stats["in_flight"], 0)
            self.assertEqual(stats["requests_total"], n)

            # A second host is counted on its own.
            barrier = threading.Barrier(3)
            results = [None] * 3
            threads = [threading.Thread(target=worker, args=(i, {"Host": "b.example"}))
                       for i in range(3)]
            for t in threads:
                t.start()
            for t in threads:
                t.join(timeout=30)
            self.assertEqual(results, [200] * 3)
            self.assertEqual(fake.stats()["peak_concurrency"], {host: n, "b.example": 3})

            fake.reset()
            self.assertEqual(fake.stats()["peak_concurrency"], {})

    def test_in_flight_is_visible_during_latency(self):
        with FakeBoxd(latency_ms=1500) as fake:
            t = threading.Thread(target=fake.request, args=("GET", "/alice/watchlist/"))
            t.start()
            try:
                seen = 0
                deadline = time.monotonic() + 1.2
                while time.monotonic() < deadline and seen == 0:
                    seen = fake.stats()["in_flight"]
                    time.sleep(0.02)
                self.assertEqual(seen, 1)
            finally:
                t.join(timeout=30)
            self.assertEqual(fake.stats()["in_flight"], 0)

    def test_slow_user(self):
        with FakeBoxd(slow_ms=400) as fake:
            started = time.monotonic()
            status, _, body = fake.request("GET", "/slow_s/watchlist/")
            elapsed = time.monotonic() - started
            self.assertEqual(status, 200)
            self.assertGreaterEqual(elapsed, 0.4)
            self.assertEqual(len(parse(body).posters), 28)
            started = time.monotonic()
            self.assertEqual(fake.request("GET", "/quick/watchlist/")[0], 200)
            self.assertLess(time.monotonic() - started, elapsed)


class Process(unittest.TestCase):
    def exe(self):
        return os.path.join(build_dir(), "fakeboxd")

    def test_port_file_matches_stdout(self):
        fake = FakeBoxd()
        fake.start()
        try:
            status, _, _ = fake.request("GET", "/alice/watchlist/")
            self.assertEqual(status, 200)
        finally:
            fake.stop()
        self.assertIn("listening on 127.0.0.1:%d\n" % fake.port, fake.log_text())
        self.assertEqual(fake.returncode, 0)

    def test_sigint_and_sigterm_during_a_slow_request(self):
        for sig in (signal.SIGTERM, signal.SIGINT):
            fake = FakeBoxd(slow_ms=60000)
            fake.start()
            outcome = []

            def slow():
                try:
                    outcome.append(fake.request("GET", "/slow_z/watchlist/", timeout=30)[0])
                except OSError as e:
                    outcome.append(e)

            t = threading.Thread(target=slow)
            t.start()
            time.sleep(0.3)
            started = time.monotonic()
            fake.proc.send_signal(sig)
            rc = fake.proc.wait(timeout=10)
            took = time.monotonic() - started
            t.join(timeout=30)
            fake.stop()
            self.assertEqual(rc, 0, sig)
            self.assertLess(took, 5.0, sig)
            self.assertEqual(len(outcome), 1)

    def test_bad_flags_are_refused(self):
        for args in (["--markup", "react2099"], ["--listen", "10.0.0.1:0"], ["--listen", "127.0.0.1"],
                     ["--per-page", "0"], ["--size", "-3"], ["--universe", "0"],
                     ["--latency-ms", "ten"], ["stray"], ["--no-such-flag"]):
            proc = subprocess.run([self.exe()] + args, stdin=subprocess.DEVNULL,
                                  capture_output=True, timeout=10)
            self.assertEqual(proc.returncode, 2, args)
            self.assertIn(b"usage: fakeboxd", proc.stderr, args)

    def test_help(self):
        proc = subprocess.run([self.exe(), "--help"], capture_output=True, timeout=10)
        self.assertEqual(proc.returncode, 0)
        self.assertIn(b"ratelimited*", proc.stdout)


class Harness(unittest.TestCase):
    def test_request_helper_and_free_port(self):
        from harness import free_port
        port = free_port()
        self.assertTrue(1024 <= port < 65536)
        with self.assertRaises(OSError):
            request("http://127.0.0.1:%d" % port, "GET", "/", timeout=2)

    def test_fakeboxd_start_failure_is_reported(self):
        with self.assertRaises(RuntimeError) as ctx:
            FakeBoxd(markup="nope").start()
        self.assertIn("usage: fakeboxd", str(ctx.exception))


if __name__ == "__main__":
    unittest.main(verbosity=2)
