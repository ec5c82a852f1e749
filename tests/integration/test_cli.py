#!/usr/bin/python3
"""Integration tests of the command line (build/filmpicker pick, scrape,
import, migrate) against the fake Letterboxd site, in every markup
generation, and of fetch de-duplication through the server."""
import json
import os
import sqlite3
import subprocess
import sys
import tempfile
import threading
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402

EXE = os.path.join(harness.build_dir(), "filmpicker")
DATA = os.environ.get("FP_TEST_DATA", os.path.join(os.path.dirname(__file__), "..", "data"))


def run(args, env, timeout=120):
    full = {k: v for k, v in os.environ.items() if not k.startswith("FILMPICKER_")}
    full.update(env)
    return subprocess.run([EXE] + args, env=full, capture_output=True, text=True,
                          timeout=timeout)


class CliEnv:
    def __init__(self, fake):
        self.tmp = tempfile.TemporaryDirectory(prefix="fp-cli-")
        self.env = {
            "FILMPICKER_DATABASE": os.path.join(self.tmp.name, "fp.db"),
            "FILMPICKER_SECRET_KEY_FILE": os.path.join(self.tmp.name, "fp.key"),
            "FILMPICKER_LETTERBOXD_URL": fake.url,
        }

    def close(self):
        self.tmp.cleanup()


def common_of(fake, users):
    sets = [{f["lb_id"] for f in fake.films(u)} for u in users]
    out = sets[0]
    for s in sets[1:]:
        out &= s
    return out


class TestPickEveryMarkup(unittest.TestCase):
    def test_pick_matches_independent_intersection(self):
        users = ["ann_n300", "ben_n250", "cat_n320"]
        for markup in ("classic", "react2025", "react2026"):
            with self.subTest(markup=markup), \
                    harness.FakeBoxd(markup=markup, common=40, universe=3000) as fake:
                env = CliEnv(fake)
                try:
                    profiles = [users[0], "https://letterboxd.com/%s/" % users[1],
                                "@" + users[2]]
                    r = run(["pick", "--json", "--limit", "100000"] + profiles, env.env)
                    self.assertEqual(r.returncode, 0, r.stderr)
                    out = json.loads(r.stdout)
                    want = common_of(fake, users)
                    self.assertGreaterEqual(len(want), 40)
                    got = {f["letterboxd_id"] for f in out["common"]}
                    self.assertEqual(got, want)
                    self.assertEqual(out["common_count"], len(want))
                    self.assertEqual(out["participants"], 3)
                    self.assertIn(out["rolled"]["letterboxd_id"], want)
                    # titles and years as the site gives them
                    by_id = {f["lb_id"]: f for f in fake.films(users[0])}
                    for f in out["common"]:
                        self.assertEqual(f["title"], by_id[f["letterboxd_id"]]["title"])
                        if markup != "classic":  # classic pages carry no year
                            self.assertEqual(f["year"], by_id[f["letterboxd_id"]]["year"])
                    # every page fetched once: stored lists are reused next time
                    pages = fake.stats()["pages"]
                    self.assertTrue(all(c == 1 for c in pages.values()), pages)
                    before = fake.stats()["requests_total"]
                    r = run(["pick", "--json"] + profiles, env.env)
                    self.assertEqual(r.returncode, 0, r.stderr)
                    self.assertEqual(fake.stats()["requests_total"], before)
                finally:
                    env.close()

    def test_seed_is_reproducible_and_table_output(self):
        with harness.FakeBoxd(common=30) as fake:
            env = CliEnv(fake)
            try:
                a = json.loads(run(["pick", "--json", "--seed", "7", "x1", "x2"],
                                   env.env).stdout)["rolled"]
                b = json.loads(run(["pick", "--json", "--seed", "7", "x1", "x2"],
                                   env.env).stdout)["rolled"]
                self.assertEqual(a, b)
                r = run(["pick", "x1", "x2"], env.env)
                self.assertEqual(r.returncode, 0, r.stderr)
                self.assertIn("on all 2 lists", r.stdout)
                self.assertIn("Rolled:", r.stdout)
            finally:
                env.close()

    def test_most_lists_ranking_when_nothing_is_common(self):
        with harness.FakeBoxd(common=0, size=300, universe=1500) as fake:
            env = CliEnv(fake)
            try:
                users = ["p1", "p2", "p3", "p4"]
                out = json.loads(run(["pick", "--json"] + users, env.env).stdout)
                lists = [{f["lb_id"] for f in fake.films(u)} for u in users]
                counts = {}
                for s in lists:
                    for i in s:
                        counts[i] = counts.get(i, 0) + 1
                want_common = {i for i, c in counts.items() if c == 4}
                self.assertEqual({f["letterboxd_id"] for f in out["common"]}, want_common)
                self.assertLess(len(want_common), 10)
                self.assertTrue(out["most"])
                prev = 4
                for f in out["most"]:
                    self.assertEqual(f["lists"], counts[f["letterboxd_id"]])
                    self.assertLessEqual(f["lists"], prev)
                    self.assertLess(f["lists"], 4)
                    prev = f["lists"]
                top = max(c for c in counts.values() if c < 4)
                self.assertEqual(out["most"][0]["lists"], top)
            finally:
                env.close()

    def test_limit_zero_means_all_and_json_carries_every_film(self):
        """--limit 0 lists every common film; --json lists all of them unless
        --limit is given; the table's default stays 50 with "... and N more"."""
        with harness.FakeBoxd(common=130, size=160, universe=4000) as fake:
            env = CliEnv(fake)
            try:
                users = ["lim_a_n160", "lim_b_n160"]
                want = common_of(fake, users)
                self.assertGreater(len(want), 120)
                slugs = {f["lb_id"]: f["slug"] for f in fake.films(users[0])}
                for extra in ([], ["--limit", "0"]):
                    with self.subTest(args=extra):
                        r = run(["pick", "--json"] + extra + users, env.env)
                        self.assertEqual(r.returncode, 0, r.stderr)
                        out = json.loads(r.stdout)
                        self.assertEqual(out["common_count"], len(want))
                        self.assertEqual({f["letterboxd_id"] for f in out["common"]}, want)
                        self.assertEqual(len(out["common"]), len(want))
                r = run(["pick", "--json", "--limit", "7"] + users, env.env)
                out = json.loads(r.stdout)
                self.assertEqual((len(out["common"]), out["common_count"]), (7, len(want)))
                self.assertLessEqual({f["letterboxd_id"] for f in out["common"]}, want)
                # the table: every film with --limit 0, no "... and N more"
                r = run(["pick", "--limit", "0"] + users, env.env)
                self.assertEqual(r.returncode, 0, r.stderr)
                self.assertNotIn("more (--limit)", r.stdout)
                rows = [ln for ln in r.stdout.splitlines() if ln.rstrip().endswith(
                    tuple(" " + slugs[i] for i in want))]
                self.assertEqual(len(rows), len(want), r.stdout[-2000:])
                # the default table shows 50 and says how many are left
                r = run(["pick"] + users, env.env)
                self.assertIn("... and %d more (--limit)" % (len(want) - 50), r.stdout)
                r = run(["pick", "--help"], {})
                self.assertIn("0: all", r.stdout)
            finally:
                env.close()


class TestCliErrors(unittest.TestCase):
    def test_errors_are_clear(self):
        with harness.FakeBoxd() as fake:
            env = CliEnv(fake)
            try:
                cases = [
                    (["pick", "https://evil.com/alice/"], 2, "not a Letterboxd username"),
                    (["pick", "../etc/passwd"], 2, "not a Letterboxd username"),
                    (["scrape", "notfound_zed"], 1, "no Letterboxd user"),
                    (["scrape", "empty_zed"], 1, "private or empty"),
                    (["scrape", "blocked_zed"], 1, "import your Letterboxd export"),
                    (["scrape", "garbage_zed"], 1, "page format not recognized"),
                    (["pick"], 2, "usage"),
                    (["frobnicate"], 2, "unknown command"),
                    (["pick", "--bogus", "a"], 2, "unknown option"),
                    (["pick", "--workers", "zero", "a"], 2, "whole number"),
                ]
                for args, code, text in cases:
                    with self.subTest(args=args):
                        r = run(args, env.env)
                        self.assertEqual(r.returncode, code, r.stdout + r.stderr)
                        self.assertIn(text, r.stderr)
                # the evil host was never contacted
                self.assertFalse([p for p in fake.stats()["pages"] if "evil" in p])
                r = run(["pick", "nobody_a", "notfound_b"], env.env)
                self.assertEqual(r.returncode, 0)  # one list left: results for it
                self.assertIn("no Letterboxd user called 'notfound_b'", r.stderr)
            finally:
                env.close()

    def test_help_for_every_command(self):
        for cmd in ("serve", "migrate", "pick", "scrape", "import"):
            r = run([cmd, "--help"], {})
            self.assertEqual(r.returncode, 0)
            self.assertIn("usage: filmpicker " + cmd, r.stdout)
            self.assertIn("FILMPICKER_LETTERBOXD_URL", r.stdout)

    def test_urls_in_settings_are_checked(self):
        for flag in ("--letterboxd-url", "--letterboxd-image-url", "--public-url"):
            for bad in ("ftp://x", "letterboxd.com", "https://", "http://a b", "https://x/?q=1",
                        "https://user@x", "javascript:alert(1)"):
                with self.subTest(flag=flag, value=bad):
                    r = run(["scrape", flag, bad, "alice"], {})
                    self.assertEqual(r.returncode, 2, r.stderr)
                    self.assertIn("is not an http:// or https:// URL", r.stderr)


    def test_settings_from_files(self):
        """FILMPICKER_X_FILE reads X from a file (container secrets): the value
        is used, a missing file is a clear error, a bad value is not echoed."""
        with harness.FakeBoxd() as fake, tempfile.TemporaryDirectory(prefix="fp-cfgfile-") as d:
            url_file = os.path.join(d, "lb_url")
            with open(url_file, "w") as f:
                f.write(fake.url + "\n")
            env = {"FILMPICKER_DATABASE": os.path.join(d, "fp.db"),
                   "FILMPICKER_SECRET_KEY_FILE": os.path.join(d, "fp.key"),
                   "FILMPICKER_LETTERBOXD_URL_FILE": url_file}
            r = run(["scrape", "alice"], env)
            self.assertEqual(r.returncode, 0, r.stderr)
            self.assertTrue(any("/alice/" in p for p in fake.stats()["pages"]))
            # the variable itself wins over its _FILE
            r = run(["scrape", "alice"], dict(env, FILMPICKER_LETTERBOXD_URL="ftp://x"))
            self.assertEqual(r.returncode, 2)
            self.assertIn("FILMPICKER_LETTERBOXD_URL:", r.stderr)
            r = run(["scrape", "alice"], dict(env, FILMPICKER_LETTERBOXD_URL_FILE=d + "/none"))
            self.assertEqual(r.returncode, 2)
            self.assertIn("FILMPICKER_LETTERBOXD_URL_FILE: cannot read", r.stderr)
            with open(url_file, "w") as f:
                f.write("ftp://hunter2-secret\n")
            r = run(["scrape", "alice"], env)
            self.assertEqual(r.returncode, 2)
            self.assertIn("FILMPICKER_LETTERBOXD_URL_FILE: '(the file's content)' is not", r.stderr)
            self.assertNotIn("hunter2", r.stderr)


class TestScrapeImportMigrate(unittest.TestCase):
    def test_scrape_lists_the_whole_watchlist(self):
        with harness.FakeBoxd(size=95, per_page=28) as fake:
            env = CliEnv(fake)
            try:
                r = run(["scrape", "--json", "letterboxd.com/zoe/watchlist/"], env.env)
                self.assertEqual(r.returncode, 0, r.stderr)
                got = json.loads(r.stdout)
                want = fake.films("zoe")
                self.assertEqual(sorted(f["letterboxd_id"] for f in got),
                                 sorted(f["lb_id"] for f in want))
                self.assertEqual(len(fake.stats()["pages"]), 4)  # 95 films / 28 a page
            finally:
                env.close()

    def test_empty_settings_mean_the_default(self):
        """FILMPICKER_X= (set but empty) or --x "" is as if not given: the
        default, never a crash on a missing value."""
        with harness.FakeBoxd(size=30) as fake:
            env = CliEnv(fake)
            try:
                empty = {k: "" for k in (
                    "FILMPICKER_LETTERBOXD_IMAGE_URL", "FILMPICKER_PUBLIC_URL",
                    "FILMPICKER_WEB_DIR", "FILMPICKER_STATIC_DIR", "FILMPICKER_USER_AGENT",
                    "FILMPICKER_LOG_LEVEL", "FILMPICKER_QUEUE", "FILMPICKER_CACHE",
                    "FILMPICKER_LISTEN", "FILMPICKER_SECRET_KEY")}
                r = run(["scrape", "--json", "--user-agent", "", "quiet_ok"], dict(env.env, **empty))
                self.assertEqual(r.returncode, 0, r.stderr)
                self.assertEqual(len(json.loads(r.stdout)), len(fake.films("quiet_ok")))
                # an empty site URL is the real site's default, not a crash
                r = run(["scrape", "--letterboxd-url", "", "--fetch-retries", "0",
                         "--fetch-timeout-ms", "2000", "alice"], env.env)
                self.assertNotIn(r.returncode, (-11, -6), r.stderr)
                self.assertIn(r.returncode, (0, 1), r.stderr)
            finally:
                env.close()

    def test_gzip_pages_are_decoded(self):
        with harness.FakeBoxd(size=60, gzip=True) as fake:
            env = CliEnv(fake)
            try:
                r = run(["scrape", "--json", "gz_user"], env.env)
                self.assertEqual(r.returncode, 0, r.stderr)
                self.assertEqual(sorted(f["letterboxd_id"] for f in json.loads(r.stdout)),
                                 sorted(f["lb_id"] for f in fake.films("gz_user")))
            finally:
                env.close()

    def test_import_then_pick_with_a_scraped_friend(self):
        with harness.FakeBoxd(size=60, common=10) as fake:
            env = CliEnv(fake)
            try:
                friend = fake.films("friend")
                # an export of 15 films the friend also has, plus 3 others
                path = os.path.join(env.tmp.name, "watchlist.csv")
                with open(path, "w", encoding="utf-8", newline="") as f:
                    f.write("Date,Name,Year,Letterboxd URI\n")
                    for i, film in enumerate(friend[:15]):
                        name = film["title"].replace('"', '""')
                        f.write('2024-01-%02d,"%s",%d,https://boxd.it/t%d\n'
                                % (i + 1, name, film["year"], i))
                    f.write('2024-02-01,"Not On Letterboxd, Really",1999,https://boxd.it/zz1\n')
                    f.write("2024-02-02,Another Unknown,2001,https://boxd.it/zz2\n")
                    f.write("2024-02-03,Broken Year,abc,https://boxd.it/zz3\n")
                r = run(["import", path, "--user", "importer", "--json"], env.env)
                self.assertEqual(r.returncode, 0, r.stderr)
                rep = json.loads(r.stdout)
                self.assertEqual(rep["films"], 17)
                self.assertEqual(rep["row_errors"], 1)
                # the bad row's line and film
                self.assertIn("watchlist.csv:19: Broken Year: Year 'abc' is not a year", r.stderr)
                out = json.loads(run(["pick", "--json", "importer", "friend"],
                                     env.env).stdout)
                self.assertEqual(sorted(f["letterboxd_id"] for f in out["common"]),
                                 sorted(f["lb_id"] for f in friend[:15]))
                # the importer's list was not fetched from the site
                self.assertFalse([p for p in fake.stats()["pages"] if "importer" in p])
                bad = os.path.join(env.tmp.name, "notes.txt")
                with open(bad, "wb") as f:
                    f.write(b"\x00\x01binary junk")
                r = run(["import", bad], env.env)
                self.assertEqual(r.returncode, 1)
                self.assertIn("notes.txt", r.stderr)
                r = run(["import", os.path.join(env.tmp.name, "missing.csv")], env.env)
                self.assertEqual(r.returncode, 1)
                self.assertIn("no such file", r.stderr)
            finally:
                env.close()

    def test_migrate_up_down_status(self):
        with harness.FakeBoxd() as fake:
            env = CliEnv(fake)
            try:
                r = run(["migrate", "status"], env.env)
                self.assertEqual(r.returncode, 0, r.stderr)
                latest = int(r.stdout.split()[4])
                self.assertIn("schema version 0 of", r.stdout)
                r = run(["migrate", "up"], env.env)
                self.assertIn("schema version %d of %d (up to date)" % (latest, latest), r.stdout)
                db = sqlite3.connect(env.env["FILMPICKER_DATABASE"])
                tables = {t for (t,) in db.execute("SELECT name FROM sqlite_master")}
                db.close()
                self.assertIn("schema_migrations", tables)
                r = run(["migrate", "down", "0"], env.env)
                self.assertIn("schema version 0 of", r.stdout)
                db = sqlite3.connect(env.env["FILMPICKER_DATABASE"])
                left = {t for (t,) in db.execute(
                    "SELECT name FROM sqlite_master WHERE type='table'")}
                db.close()
                self.assertLessEqual(left, {"schema_migrations"})
                r = run(["migrate", "sideways"], env.env)
                self.assertEqual(r.returncode, 2)
                # a corrupt database file is reported, not a crash
                with open(env.env["FILMPICKER_DATABASE"], "wb") as f:
                    f.write(b"this is not a database" * 100)
                for suffix in ("-wal", "-shm"):
                    p = env.env["FILMPICKER_DATABASE"] + suffix
                    if os.path.exists(p):
                        os.unlink(p)
                r = run(["pick", "someone"], env.env)
                self.assertEqual(r.returncode, 1)
                self.assertIn("storage_corrupt", r.stderr)
            finally:
                env.close()


class TestWatchedFromTheCommandLine(unittest.TestCase):
    def test_watched_lists_and_unwatch_puts_back(self):
        with harness.FakeBoxd(markup="react2025", size=40, common=20) as fake, \
                harness.FilmPicker(fake=fake) as fp:
            env = {"FILMPICKER_DATABASE": fp.db_path, "FILMPICKER_SECRET_KEY": fp.secret_key,
                   "FILMPICKER_LETTERBOXD_URL": fake.url}
            users = [{"name": "cliwa_zq", "type": "lb"}, {"name": "cliwb_zq", "type": "lb"}]
            status, first = fp.json("POST", "/api/scrape/", {"usernames": users}, timeout=60)
            self.assertEqual(status, 200, first)
            slug = first["intersection"][0]
            status, _ = fp.json("POST", "/api/watchlist/remove",
                                {"film": slug, "usernames": users[:1]})
            self.assertEqual(status, 200)
            r = run(["watched", "cliwa_zq", "--json"], env)
            self.assertEqual(r.returncode, 0, r.stderr)
            listed = json.loads(r.stdout)
            self.assertEqual([f["slug"] for f in listed], [slug])
            self.assertGreater(listed[0]["watched_at"], 0)
            r = run(["watched", "cliwb_zq"], env)
            self.assertEqual(r.returncode, 0, r.stderr)
            self.assertIn("0 films marked watched", r.stdout)
            # a refresh keeps it off
            r = run(["scrape", "cliwa_zq", "--refresh", "--json"], env)
            self.assertEqual(r.returncode, 0, r.stderr)
            self.assertNotIn(slug, {f["slug"] for f in json.loads(r.stdout)})
            # unknown film, bad profile, usage
            r = run(["unwatch", "cliwa_zq", "no-such-film"], env)
            self.assertEqual(r.returncode, 1)
            self.assertIn("has no film 'no-such-film' marked watched", r.stderr)
            self.assertEqual(run(["unwatch", "not a name", slug], env).returncode, 2)
            self.assertEqual(run(["unwatch", "cliwa_zq"], env).returncode, 2)
            # put back by its film page URL: on the list again, also after a refresh
            r = run(["unwatch", "cliwa_zq", "https://letterboxd.com/film/%s/" % slug], env)
            self.assertEqual(r.returncode, 0, r.stderr)
            self.assertIn("is back on cliwa_zq's list", r.stdout)
            r = run(["scrape", "cliwa_zq", "--json"], env)
            self.assertIn(slug, {f["slug"] for f in json.loads(r.stdout)})
            r = run(["scrape", "cliwa_zq", "--refresh", "--json"], env)
            self.assertIn(slug, {f["slug"] for f in json.loads(r.stdout)})
            r = run(["watched", "cliwa_zq", "--json"], env)
            self.assertEqual(json.loads(r.stdout), [])


class TestOneFetchPerPerson(unittest.TestCase):
    def test_concurrent_requests_share_one_fetch(self):
        with harness.FakeBoxd(size=200, latency_ms=100) as fake, \
                harness.FilmPicker(fake=fake) as fp:
            body = {"usernames": [{"name": "shared_user"}, {"name": "other_user"}]}
            results = []

            def call():
                results.append(fp.json("POST", "/api/scrape/", body, timeout=60))
            threads = [threading.Thread(target=call) for _ in range(6)]
            for t in threads:
                t.start()
            for t in threads:
                t.join()
            self.assertEqual([s for s, _ in results], [200] * 6)
            self.assertEqual(len({b["intersection_len"] for _, b in results}), 1)
            pages = fake.stats()["pages"]
            self.assertEqual(len(pages), 16)  # 200 films / 28 = 8 pages each
            self.assertTrue(all(c == 1 for c in pages.values()), pages)


if __name__ == "__main__":
    unittest.main(verbosity=2)
