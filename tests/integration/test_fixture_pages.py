#!/usr/bin/python3
"""End to end over the REAL saved Letterboxd pages in ../shared/fixtures (read
in place): a tiny local site serves each fixture as page 1 of a user's
watchlist and the real past-the-end page for every later page, and
`filmpicker scrape` / `pick` and POST /api/scrape/ must give the films the
page holds. Expected films are read from the pages here with the standard
library's html.parser, independently of the C parser; counts and first/last
entries are also checked against the facts in SOURCES.md."""
import html.parser
import http.server
import json
import os
import subprocess
import sys
import tempfile
import threading
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402

FIX = os.environ.get("FP_SHARED_FIXTURES", "")
LB = os.path.join(FIX, "letterboxd")
EMPTY = "watchlist-classic-midaskiebert-p100-empty-2025-07.html"

# user -> (fixture, entries, first slug, last slug) from SOURCES.md
PAGES = {
    "classic": ("watchlist-classic-midaskiebert-p1-2025-07.html", 100, "fail-safe",
                "brief-encounter"),
    "react_aug": ("watchlist-react2025-midaskiebert-p1-2025-08.html", 28, "naked-lunch",
                  "ah-fei-jing-juen"),
    "react_jan": ("watchlist-react2025-spazznolo-p1-2026-01.html", 28,
                  "the-chronology-of-water", "barry-lyndon"),
    "films_page": ("films-react2025-spazznolo-p1-2026-01.html", 72, "the-woman-in-cabin-10",
                   "perfect-days-2023"),
    "fragment": ("watchlist-react2025-shoemonger-p1-grid-fragment-2026-03.html", 20,
                 "lilya-4-ever", "charcoal-2022"),
    "truncated": ("watchlist-react2026-truncated-fragment-2026-05.html", 5, "blue-heron",
                  "godzilla-minus-zero"),
    "saved_list": ("list-react2025-hyumiguel-pra-nao-esquecer-de-ver-p1-browser-saved-2025-10.html",
                   100, "the-age-of-innocence", "michael-clayton"),
}


class PosterSlugs(html.parser.HTMLParser):
    """Slugs of the main grid's posters, in order (not the sidebar ul.posterlist)."""

    def __init__(self):
        super().__init__()
        self.stack = []
        self.slugs = []
        self.ids = {}

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        if tag == "ul":
            self.stack.append(a.get("class") or "")
        slug = a.get("data-film-slug") or a.get("data-item-slug")
        if tag == "div" and slug:
            cls = (a.get("class") or "").split()
            is_poster = "film-poster" in cls or (a.get("data-component-class") or "").endswith(
                "LazyPoster")
            in_sidebar = self.stack and "posterlist" in self.stack[-1].split()
            if is_poster and not in_sidebar and slug not in self.slugs:
                self.slugs.append(slug)
                ident = a.get("data-postered-identifier") or ""
                self.ids[slug] = ident

    def handle_endtag(self, tag):
        if tag == "ul" and self.stack:
            self.stack.pop()


def expected_slugs(name):
    with open(os.path.join(LB, name), encoding="utf-8") as f:
        p = PosterSlugs()
        p.feed(f.read())
    return p.slugs


class FixtureSite:
    """Serves /USER/watchlist/ from the fixture mapped to USER."""

    def __init__(self):
        pages = {user: spec[0] for user, spec in PAGES.items()}
        self.hits = {}

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(h):  # noqa: N805
                parts = [p for p in h.path.split("/") if p]
                self.hits[h.path] = self.hits.get(h.path, 0) + 1
                if len(parts) >= 2 and parts[1] == "watchlist" and parts[0] in pages:
                    name = pages[parts[0]] if len(parts) == 2 else EMPTY
                    with open(os.path.join(LB, name), "rb") as f:
                        body = f.read()
                    h.send_response(200)
                else:
                    body = b"<html><body>Sorry, we can't find the page</body></html>"
                    h.send_response(404)
                h.send_header("Content-Type", "text/html; charset=utf-8")
                h.send_header("Content-Length", str(len(body)))
                h.end_headers()
                h.wfile.write(body)

            def log_message(h, *args):  # noqa: N805
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = "http://127.0.0.1:%d" % self.server.server_address[1]
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.server.shutdown()
        self.server.server_close()


class TestRealPages(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        if not os.path.isdir(LB):
            raise AssertionError("FP_SHARED_FIXTURES does not point at ../shared/fixtures: %r"
                                 % FIX)

    def cli(self, site, tmp, args):
        env = {k: v for k, v in os.environ.items() if not k.startswith("FILMPICKER_")}
        env.update({"FILMPICKER_DATABASE": os.path.join(tmp, "fp.db"),
                    "FILMPICKER_SECRET_KEY_FILE": os.path.join(tmp, "fp.key"),
                    "FILMPICKER_LETTERBOXD_URL": site.url})
        return subprocess.run([os.path.join(harness.build_dir(), "filmpicker")] + args,
                              env=env, capture_output=True, text=True, timeout=120)

    def test_scrape_every_page(self):
        with FixtureSite() as site, tempfile.TemporaryDirectory() as tmp:
            for user, (name, entries, first, last) in PAGES.items():
                with self.subTest(page=name):
                    want = expected_slugs(name)
                    if user == "truncated":
                        want = want[:5]  # the 6th poster is cut mid-attribute
                    self.assertEqual(len(want), entries)
                    self.assertEqual((want[0], want[-1]), (first, last))
                    r = self.cli(site, tmp, ["scrape", "--json", user])
                    self.assertEqual(r.returncode, 0, r.stderr)
                    got = [f["slug"] for f in json.loads(r.stdout)]
                    self.assertEqual(sorted(got), sorted(want))
            # the classic page says 4 pages: pages 2..4 were fetched once each,
            # and nothing past them
            self.assertEqual(site.hits.get("/classic/watchlist/page/4/"), 1)
            self.assertNotIn("/classic/watchlist/page/5/", site.hits)

    def test_pick_across_markup_generations(self):
        # The same person in July (classic) and August 2025 (React): the films
        # on both pages are matched by Letterboxd id across the two markups.
        want = set(expected_slugs(PAGES["classic"][0])) & set(
            expected_slugs(PAGES["react_aug"][0]))
        self.assertTrue(want)
        with FixtureSite() as site, tempfile.TemporaryDirectory() as tmp:
            r = self.cli(site, tmp, ["pick", "--json", "classic", "react_aug"])
            self.assertEqual(r.returncode, 0, r.stderr)
            out = json.loads(r.stdout)
            self.assertEqual({f["slug"] for f in out["common"]}, want)

    def test_api_over_real_pages(self):
        with FixtureSite() as site, harness.FilmPicker(letterboxd_url=site.url) as fp:
            status, body = fp.json("POST", "/api/scrape/", {"usernames": [
                {"name": "react_jan"}, {"name": "https://letterboxd.com/films_page/"}]})
            self.assertEqual(status, 200, body)
            want = set(expected_slugs(PAGES["react_jan"][0])) & set(
                expected_slugs(PAGES["films_page"][0]))
            self.assertEqual(body["intersection_len"], len(want))
            self.assertTrue(set(body["intersection"]) <= want)
            self.assertEqual(len(body["intersection"]), min(3, len(want)))


if __name__ == "__main__":
    unittest.main(verbosity=2)
