#!/usr/bin/python3
"""Integration tests of storage safety against the real binary: the database
files and their modes, an empty (truncated) database file, the server key
that must match the stored data (mismatch, re-key, start afresh, and the
upgrade of a database written before wrapped data keys), the cap on new
catalogue films per import, and the sweep of catalogue films no stored list
references any more.

With FP_TEST_BACKEND=postgresql (the scaled CTest run) the same tests run
on PostgreSQL, each database a schema of its own (harness.PgSchema); the
ones about SQLite files (modes, an empty file, the legacy SQLite database)
are not part of that run."""
import io
import json
import os
import secrets
import sqlite3
import stat
import subprocess
import sys
import tempfile
import unittest
import uuid

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402
import spec_check  # noqa: E402

EXE = os.path.join(harness.build_dir(), "filmpicker")
DATA = os.environ.get("FP_TEST_DATA", os.path.join(os.path.dirname(__file__), "..", "data"))
JSON = {"Content-Type": "application/json"}


def run(args, env, timeout=120):
    """filmpicker ARGS with only these FILMPICKER_* settings."""
    full = {k: v for k, v in os.environ.items() if not k.startswith("FILMPICKER_")}
    full.update(env)
    return subprocess.run([EXE] + args, env=full, capture_output=True, text=True,
                          timeout=timeout)


def multipart(fields=None, files=None):
    """(body, content_type) of a multipart/form-data upload; files maps a
    field to (filename, bytes)."""
    boundary = "fp" + uuid.uuid4().hex
    out = io.BytesIO()
    for name, value in (fields or {}).items():
        out.write(("--%s\r\nContent-Disposition: form-data; name=\"%s\"\r\n\r\n%s\r\n"
                   % (boundary, name, value)).encode("utf-8"))
    for name, (filename, data) in (files or {}).items():
        out.write(("--%s\r\nContent-Disposition: form-data; name=\"%s\"; filename=\"%s\"\r\n"
                   "Content-Type: text/csv\r\n\r\n" % (boundary, name, filename)).encode("utf-8"))
        out.write(data)
        out.write(b"\r\n")
    out.write(("--%s--\r\n" % boundary).encode("ascii"))
    return out.getvalue(), "multipart/form-data; boundary=" + boundary


def read_data(name):
    with open(os.path.join(DATA, name), "rb") as f:
        return f.read()


def mode(path):
    return stat.S_IMODE(os.stat(path).st_mode)


PG = harness.test_backend() == "postgresql"
SCHEMAS = {}  # FILMPICKER_DATABASE -> its harness.PgSchema
HEX_WRAPPED = "encode(wrapped, 'hex')" if PG else "hex(wrapped)"


def logged(text, action, **fields):
    """The log lines (JSON, ECS names) of event.action `action` whose fields
    have the given values (keys with "__" for "."): a list of dicts."""
    want = {k.replace("__", "."): v for k, v in fields.items()}
    found = []
    for line in text.splitlines():
        try:
            obj = json.loads(line)
        except ValueError:
            continue  # a line cut by the tail window
        if obj.get("event.action") == action and all(obj.get(k) == v for k, v in want.items()):
            found.append(obj)
    return found


def db_rows(db, sql):
    """The rows of a query, read behind FilmPicker's back (read-only)."""
    if db in SCHEMAS:
        return SCHEMAS[db].rows(sql)
    con = sqlite3.connect("file:%s?mode=ro" % db, uri=True)
    try:
        return con.execute(sql).fetchall()
    finally:
        con.close()


def db_count(db, sql):
    """One value from the database (a number when it is one)."""
    value = db_rows(db, sql)[0][0]
    if isinstance(value, str) and value.lstrip("-").isdigit():
        return int(value)
    return value


class Place:
    """A directory that outlives server restarts: a database path and a key."""

    def __init__(self):
        self.tmp = tempfile.TemporaryDirectory(prefix="fp-storage-")
        self.dir = self.tmp.name
        self.pg = harness.PgSchema() if PG else None
        self.db = self.pg.url if PG else os.path.join(self.dir, "fp.db")
        self.shown = self.pg.shown if PG else self.db  # as FilmPicker prints it
        if PG:
            SCHEMAS[self.db] = self.pg
        self.key = secrets.token_hex(32)

    def env(self, key=None, **extra):
        e = {"FILMPICKER_DATABASE": self.db, "FILMPICKER_SECRET_KEY": key or self.key}
        e.update({k: str(v) for k, v in extra.items()})
        return e

    def close(self):
        self.tmp.cleanup()
        if self.pg:
            SCHEMAS.pop(self.db, None)
            self.pg.drop()


class StorageCase(unittest.TestCase):
    def setUp(self):
        self.place = Place()
        self.addCleanup(self.place.close)

    def upload(self, fp, data, username=None, filename="watchlist.csv", timeout=30.0):
        fields = {"username": username} if username else {}
        body, ctype = multipart(fields, {"file": (filename, data)})
        status, headers, raw = fp.request("POST", "/api/v1/imports", body=body,
                                          headers={"Content-Type": ctype}, timeout=timeout)
        out = spec_check.check_against_spec("POST", "/api/v1/imports", status, headers, raw)
        return status, out


def job(fp, profiles):
    """Runs a v1 job for these profiles to the end; returns its final view."""
    status, view = fp.json("POST", "/api/v1/jobs",
                           {"participants": [{"profile": p} for p in profiles]})
    assert status == 202, (status, view)
    path = "/api/v1/jobs/" + view["id"]
    return harness.wait_until(lambda: (lambda v: v if v["status"] == "done" else None)(
        fp.json("GET", path)[1]), timeout=60, what="job done")


ALICE, BOB = "st_alice", "st_bob_n30"  # an imported list, a fetched one


class KeyCase(StorageCase):
    """A database holding an imported list (ALICE), a fetched one (BOB) and
    BOB's watched set, made with the place's key."""

    def populate(self, fake):
        with harness.FilmPicker(fake=fake, env=self.place.env()) as fp:
            status, out = self.upload(fp, read_data("api_watchlist.csv"), username=ALICE)
            self.assertEqual((status, out["import"]["films"]), (201, 10))
            view = job(fp, [BOB])
            self.assertEqual(view["participants"][0]["status"], "ready")
            _, res = fp.json("GET", "/api/v1/jobs/%s/results?limit=1000" % view["id"])
            self.watched = res["common"][0]
            status, _ = fp.json("POST", "/api/v1/jobs/%s/watched" % view["id"],
                                {"film_id": self.watched["id"]})
            self.assertEqual(status, 200)
        self.counts = self.rows()
        self.assertEqual(self.counts[:2], (2, 1))

    def rows(self):
        """(watchlists, watched sets, films) in the database."""
        return tuple(db_count(self.place.db, "SELECT count(*) FROM " + t)
                     for t in ("watchlists", "watched", "films"))

    def assert_lists_from_storage(self, fake, fp):
        """Both lists answer from storage, without a request to the site."""
        before = fake.stats()["requests_total"]
        view = job(fp, [ALICE, BOB])
        got = [(p["status"], p["from_store"], p["films"]) for p in view["participants"]]
        self.assertEqual(got, [("ready", True, 10), ("ready", True, 29)])
        self.assertEqual(fake.stats()["requests_total"], before)
        r = run(["watched", BOB, "--json"], self.env_now)
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertEqual([f["id"] for f in json.loads(r.stdout)], [self.watched["id"]])

    def assert_refused(self, env, fake):
        """serve stops at once with the mismatch message; nothing changes."""
        r = run(["serve"], dict(env, FILMPICKER_LISTEN="127.0.0.1:0",
                                FILMPICKER_LETTERBOXD_URL=fake.url), timeout=30)
        self.assertEqual(r.returncode, 1, r.stdout + r.stderr)
        self.assertIn("filmpicker: cannot start: the server key does not open the data stored "
                      "in the database %s" % self.place.shown, r.stderr)
        self.assertIn("filmpicker key reset --yes", r.stderr)
        self.assertIn("filmpicker key rotate --new-key-file PATH", r.stderr)
        self.assertIn("(key_mismatch)", r.stderr)
        self.assertIn('"event.action":"datakey_mismatch"', r.stderr)
        self.assertNotIn('"event.action":"listening"', r.stderr)
        self.assertEqual(self.rows(), self.counts)


class TestServerKey(KeyCase):
    def test_another_key_is_refused_and_nothing_is_deleted(self):
        with harness.FakeBoxd() as fake:
            self.populate(fake)
            other = self.place.env(key=secrets.token_hex(32))
            self.assert_refused(other, fake)
            # the other commands refuse it too
            r = run(["scrape", ALICE], dict(other, FILMPICKER_LETTERBOXD_URL=fake.url))
            self.assertEqual(r.returncode, 1)
            self.assertIn("(key_mismatch)", r.stderr)
            r = run(["key", "status"], other)
            self.assertEqual(r.returncode, 1)
            self.assertIn("does NOT open with the server key", r.stdout)
            self.assertIn("stored: 2 watchlists, 1 watched set", r.stdout)
            # a lost key file: a new one is made at start, and refused
            keyfile = os.path.join(self.place.dir, "fp.key")
            r = run(["serve"], {"FILMPICKER_DATABASE": self.place.db,
                                "FILMPICKER_SECRET_KEY_FILE": keyfile,
                                "FILMPICKER_LISTEN": "127.0.0.1:0"}, timeout=30)
            self.assertEqual(r.returncode, 1)
            self.assertIn('"event.action":"vault_key_file_created"', r.stderr)
            self.assertIn("(key_mismatch)", r.stderr)
            self.assertEqual(self.rows(), self.counts)
            # the right key still opens everything, from storage
            self.env_now = self.place.env()
            with harness.FilmPicker(fake=fake, env=self.env_now) as fp:
                self.assert_lists_from_storage(fake, fp)
            r = run(["key", "status", "--json"], self.env_now)
            self.assertEqual(r.returncode, 0, r.stderr)
            st = json.loads(r.stdout)
            self.assertEqual((st["stored"], st["opens"], st["watchlists"], st["watched"]),
                             (True, True, 2, 1))

    def test_rotate_keeps_every_list(self):
        with harness.FakeBoxd() as fake:
            self.populate(fake)
            new_file = os.path.join(self.place.dir, "new.key")
            # rotating needs the current key
            r = run(["key", "rotate", "--new-key-file", new_file],
                    self.place.env(key=secrets.token_hex(32)))
            self.assertEqual(r.returncode, 1)
            self.assertIn("(key_mismatch)", r.stderr)
            self.assertFalse(os.path.exists(new_file))
            before = db_count(self.place.db, "SELECT %s FROM data_key" % HEX_WRAPPED)
            r = run(["key", "rotate", "--new-key-file", new_file], self.place.env())
            self.assertEqual(r.returncode, 0, r.stderr)
            self.assertIn("a new server key was written to %s (mode 0600)" % new_file, r.stdout)
            self.assertIn("every stored list stays readable", r.stdout)
            self.assertEqual(oct(mode(new_file)), oct(0o600))
            self.assertNotEqual(db_count(self.place.db, "SELECT %s FROM data_key" % HEX_WRAPPED),
                                before)
            self.assertEqual(self.rows(), self.counts)  # only the wrapped key changed
            # the old key no longer opens it
            self.assert_refused(self.place.env(), fake)
            # the new one (from its file) opens every list, from storage
            self.env_now = {"FILMPICKER_DATABASE": self.place.db,
                            "FILMPICKER_SECRET_KEY_FILE": new_file}
            with harness.FilmPicker(fake=fake, env=dict(self.env_now,
                                                        FILMPICKER_SECRET_KEY="")) as fp:
                self.assert_lists_from_storage(fake, fp)
            # the key file's text works as FILMPICKER_SECRET_KEY too
            with open(new_file, encoding="ascii") as f:
                hexkey = f.read().strip()
            self.env_now = self.place.env(key=hexkey)
            with harness.FilmPicker(fake=fake, env=self.env_now) as fp:
                self.assert_lists_from_storage(fake, fp)

    def test_reset_forgets_the_lists_and_keeps_the_catalogue(self):
        with harness.FakeBoxd() as fake:
            self.populate(fake)
            lost = self.place.env(key=secrets.token_hex(32))
            self.assert_refused(lost, fake)
            # without --yes nothing happens
            r = run(["key", "reset"], lost)
            self.assertEqual(r.returncode, 2)
            self.assertIn("this deletes every stored watchlist and watched set", r.stderr)
            self.assertIn("(2 watchlists, 1 watched sets; the server key does not open them)",
                          r.stderr)
            self.assertIn("--yes", r.stderr)
            self.assertEqual(self.rows(), self.counts)
            r = run(["key", "reset", "--yes"], lost)
            self.assertEqual(r.returncode, 0, r.stderr)
            self.assertIn("deleted 2 watchlists and 1 watched set", r.stdout)
            self.assertEqual(self.rows(), (0, 0, self.counts[2]))  # the catalogue stays
            with harness.FilmPicker(fake=fake, env=lost) as fp:
                before = fake.stats()["requests_total"]
                view = job(fp, [ALICE, BOB])
                parts = {p["name"]: p for p in view["participants"]}
                # the import is gone (the site's own list of that name is
                # fetched instead); the fetched list is fetched again
                for name in (ALICE, BOB):
                    self.assertEqual((parts[name]["status"], parts[name]["from_store"],
                                      parts[name]["films"]),
                                     ("ready", False, len(fake.films(name))))
                self.assertGreater(fake.stats()["requests_total"], before)
            # the old key is the one refused now
            self.counts = self.rows()
            self.assert_refused(self.place.env(), fake)

    def test_reset_without_a_key_file_makes_one(self):
        with harness.FakeBoxd() as fake:
            self.populate(fake)
            keyfile = os.path.join(self.place.dir, "lost.key")
            env = {"FILMPICKER_DATABASE": self.place.db, "FILMPICKER_SECRET_KEY_FILE": keyfile}
            r = run(["key", "status"], env)  # never creates the key file
            self.assertEqual(r.returncode, 1)
            self.assertIn("the server key file %s does not exist" % keyfile, r.stderr)
            r = run(["key", "reset"], env)
            self.assertEqual(r.returncode, 2)
            self.assertIn("writes a new server key to %s (there is none)" % keyfile, r.stderr)
            self.assertFalse(os.path.exists(keyfile))
            self.assertEqual(self.rows(), self.counts)
            r = run(["key", "reset", "--yes"], env)
            self.assertEqual(r.returncode, 0, r.stderr)
            self.assertEqual(oct(mode(keyfile)), oct(0o600))
            self.assertEqual(self.rows()[:2], (0, 0))
            with harness.FilmPicker(fake=fake, env=dict(env, FILMPICKER_SECRET_KEY="")) as fp:
                self.assertEqual(job(fp, [BOB])["participants"][0]["status"], "ready")


class TestKeyCommandsHelp(unittest.TestCase):
    def test_help(self):
        r = run(["key", "--help"], {})
        self.assertEqual(r.returncode, 0)
        self.assertIn("usage: filmpicker key status [--json] | rotate --new-key-file PATH | "
                      "reset --yes", r.stdout)
        r = run(["sweep", "--help"], {})
        self.assertEqual(r.returncode, 0)
        self.assertIn("usage: filmpicker sweep", r.stdout)
        self.assertIn("FILMPICKER_CATALOGUE_GRACE", r.stdout)
        r = run(["key", "frobnicate"], {})
        self.assertEqual(r.returncode, 2)
        self.assertIn("usage: filmpicker key", r.stderr)
        r = run(["key", "rotate"], {})  # no --new-key-file
        self.assertEqual(r.returncode, 2)
        r = run(["--help"], {})
        self.assertIn("key status|rotate|reset", r.stdout)
        self.assertIn("sweep", r.stdout)


class TestLegacyDatabase(KeyCase):
    """A database written before wrapped data keys (schema version 3, made by
    the release before them with LEGACY_KEY: tests/data/legacy_v3.sql holds
    an import for legacy_alice (10 films), fetched lists of legacy_bob_n40 and
    legacy_carol_n30 and film 7 marked watched for both)."""

    LEGACY_KEY = "6c6567616379206b6579206f662046696c6d5069636b65722076332021212121"

    def setUp(self):
        super().setUp()
        con = sqlite3.connect(self.place.db)
        with open(os.path.join(DATA, "legacy_v3.sql"), encoding="utf-8") as f:
            con.executescript(f.read())
        con.close()
        self.counts = self.rows()
        self.assertEqual(self.counts[:2], (3, 2))
        self.assertEqual(db_count(self.place.db, "SELECT max(version) FROM schema_migrations"), 3)

    def test_opens_with_its_old_key_and_keeps_its_lists(self):
        env = self.place.env(key=self.LEGACY_KEY, FILMPICKER_MAX_AGE=10 ** 9)
        r = run(["key", "status"], env)
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertIn("not stored yet (lists sealed before wrapped keys): they open with the "
                      "server key", r.stdout)
        with harness.FakeBoxd() as fake:
            with harness.FilmPicker(fake=fake, env=env) as fp:
                self.assertIn('"event.action":"datakey_adopted"', fp.stderr_text())
                view = job(fp, ["legacy_alice", "legacy_bob_n40", "legacy_carol_n30"])
                got = [(p["status"], p["from_store"], p["films"]) for p in view["participants"]]
                # film 7 stays off both fetched lists: watched here
                self.assertEqual(got, [("ready", True, 10), ("ready", True, 39),
                                       ("ready", True, 29)])
                self.assertEqual(fake.stats()["requests_total"], 0)
            r = run(["watched", "legacy_bob_n40", "--json"], env)
            self.assertEqual([f["id"] for f in json.loads(r.stdout)], [7])
        self.assertEqual(self.rows(), self.counts)  # nothing stored changed...
        self.assertEqual(db_count(self.place.db, "SELECT max(version) FROM schema_migrations"), 5)
        # ... but the key is now stored, and a wrong key is refused
        r = run(["key", "status", "--json"], env)
        self.assertEqual(json.loads(r.stdout)["stored"], True)
        with harness.FakeBoxd() as fake:
            self.assert_refused(self.place.env(), fake)

    def test_another_key_is_refused(self):
        with harness.FakeBoxd() as fake:
            self.assert_refused(self.place.env(), fake)
        # no key was stored for it: the right key still adopts its own
        self.assertEqual(db_count(self.place.db, "SELECT count(*) FROM data_key"), 0)
        r = run(["key", "status"], self.place.env(key=self.LEGACY_KEY))
        self.assertEqual(r.returncode, 0, r.stderr)


def csv_of(titles):
    """A Letterboxd-style CSV (Name, Year) of (title, year) pairs."""
    return ("Name,Year\n" + "".join("%s,%d\n" % t for t in titles)).encode("utf-8")


class TestImportCap(StorageCase):
    def films(self):
        return db_count(self.place.db, "SELECT count(*) FROM films")

    def disk(self):
        if PG:
            return self.place.pg.size()
        return sum(os.path.getsize(self.place.db + x) for x in ("", "-wal", "-shm")
                   if os.path.exists(self.place.db + x))

    def test_a_million_unique_rows_are_refused(self):
        # 7.9 MB: one unique name a line, as in the report of issue 8
        data = b"Name\n" + b"".join(b"f%06d\n" % i for i in range(1000000))
        self.assertGreater(len(data), 7800000)
        with harness.FilmPicker(env=self.place.env()) as fp:
            before, disk = self.films(), self.disk()
            status, out = self.upload(fp, data)
            self.assertEqual(status, 413)
            self.assertEqual(out["error"]["code"], "payload_too_large")
            self.assertEqual(out["error"]["message"], "the file lists more than 100000 films; "
                                                      "an import takes at most 100000")
            self.assertEqual(self.films(), before)
            self.assertEqual(db_count(self.place.db, "SELECT count(*) FROM watchlists"), 0)
            self.assertLess(self.disk(), disk + 1024 * 1024)
            # just under the row cap, all new: the new-film cap refuses it
            data = b"Name\n" + b"".join(b"g%06d\n" % i for i in range(99999))
            # On PostgreSQL each title-only row is one catalogue query (about
            # 18 s here, longer under the sanitizers): docs/operations.md, PostgreSQL.
            status, out = self.upload(fp, data, username="cap_alice", timeout=300.0)
            self.assertEqual(status, 422)
            self.assertEqual(out["error"]["code"], "too_many_new_films")
            self.assertEqual(out["error"]["message"],
                             "the file has 99999 films that are not in the film catalogue yet; "
                             "one import may add at most 5000 new films, so nothing was stored")
            self.assertEqual(self.films(), before)
            self.assertEqual(db_count(self.place.db, "SELECT count(*) FROM watchlists"), 0)
            self.assertLess(self.disk(), disk + 2 * 1024 * 1024)

    def test_the_cap_counts_only_new_films(self):
        env = self.place.env(FILMPICKER_IMPORT_MAX_NEW_FILMS=40)
        first = [("Film %d" % i, 1990) for i in range(40)]
        with harness.FilmPicker(env=env) as fp:
            # exactly the cap: stored
            status, out = self.upload(fp, csv_of(first), username="cap_bob")
            self.assertEqual((status, out["import"]["films"]), (201, 40))
            self.assertEqual(self.films(), 40)
            # the same 40 and 40 new (one listed twice): 40 new, stored
            again = first + [("Other %d" % i, 2001) for i in range(40)] + [("Other 3", 2001)]
            status, out = self.upload(fp, csv_of(again), username="cap_bob")
            self.assertEqual((status, out["import"]["films"]), (201, 80))
            self.assertEqual(self.films(), 80)
            # 41 new, many known: refused whole, the stored list stays
            more = again + [("New %d" % i, 2010) for i in range(41)]
            status, out = self.upload(fp, csv_of(more), username="cap_bob")
            self.assertEqual(status, 422, out)
            self.assertEqual(out["error"]["message"],
                             "the file has 41 films that are not in the film catalogue yet; "
                             "one import may add at most 40 new films, so nothing was stored")
            self.assertEqual(self.films(), 80)
            view = job(fp, ["cap_bob"])
            self.assertEqual((view["participants"][0]["from_store"],
                              view["participants"][0]["films"]), (True, 80))
            # the command line says the same
            path = os.path.join(self.place.dir, "more.csv")
            with open(path, "wb") as f:
                f.write(csv_of(more))
        r = run(["import", path], env)
        self.assertEqual(r.returncode, 1)
        self.assertIn("more.csv: the file has 41 films that are not in the film catalogue yet; "
                      "one import may add at most 40 new films", r.stderr)
        self.assertEqual(self.films(), 80)


class TestCatalogueSweep(StorageCase):
    """Films no stored list uses go, once a sweep has found them unused for
    longer than catalogue-grace; films a list or a watched set uses stay."""

    def titles(self):
        return {t for (t,) in db_rows(self.place.db, "SELECT title FROM films")}

    def sweep(self, grace):
        r = run(["sweep", "--json"], self.place.env(FILMPICKER_CATALOGUE_GRACE=grace,
                                                    FILMPICKER_LOG_LEVEL="info"))
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertTrue(logged(r.stderr, "catalogue_sweep", filmpicker__result="ok"), r.stderr)
        return json.loads(r.stdout)

    def test_sweep_removes_only_unused_films(self):
        alice = [("Alice %d" % i, 2000) for i in range(10)]
        shared = ("Shared", 1999)
        old_bob = [("Bob %d" % i, 2001) for i in range(5)] + [shared]
        new_bob = [("Bob new", 2002)]
        token = [("Anonymous %d" % i, 2003) for i in range(3)]
        env = self.place.env(FILMPICKER_CATALOGUE_SWEEP_INTERVAL=0)
        with harness.FilmPicker(env=env) as fp:
            for user, films in (("sw_alice", alice + [shared]), ("sw_bob", old_bob)):
                status, _ = self.upload(fp, csv_of(films), username=user)
                self.assertEqual(status, 201)
            status, out = self.upload(fp, csv_of(token))  # kept under an import id
            self.assertEqual(status, 201)
            token_id = out["import"]["id"]
            # a film marked watched leaves alice's list but stays in her watched set
            view = job(fp, ["sw_alice"])
            _, res = fp.json("GET", "/api/v1/jobs/%s/results?limit=1000" % view["id"])
            gone = next(f for f in res["common"] if f["title"] == "Alice 0")
            status, _ = fp.json("POST", "/api/v1/jobs/%s/watched" % view["id"],
                                {"film_id": gone["id"]})
            self.assertEqual(status, 200)
            # bob's list is replaced: his old films are used by nothing now
            status, _ = self.upload(fp, csv_of(new_bob), username="sw_bob")
            self.assertEqual(status, 201)
            everything = {t for t, _ in alice + old_bob + new_bob + token}
            self.assertEqual(self.titles(), everything)

            # within the grace: marked, not deleted
            out = self.sweep(3600)
            self.assertEqual((out["watchlists"], out["watched_sets"], out["unreadable"]),
                             (3, 1, 0))
            self.assertEqual((out["marked"], out["deleted"]), (5, 0))
            self.assertEqual(self.titles(), everything)
            self.assertEqual(db_count(self.place.db, "SELECT count(*) FROM films "
                                                     "WHERE orphaned_at IS NOT NULL"), 5)
            # a list that takes one of them again clears its mark
            status, _ = self.upload(fp, csv_of([("Bob 4", 2001)]), username="sw_carol")
            self.assertEqual(status, 201)
            self.assertEqual(db_count(self.place.db, "SELECT count(*) FROM films "
                                                     "WHERE orphaned_at IS NOT NULL"), 4)
            # past the grace (0 here): deleted
            out = self.sweep(0)
            self.assertEqual(out["deleted"], 4)
            kept = everything - {"Bob 0", "Bob 1", "Bob 2", "Bob 3"}
            self.assertEqual(self.titles(), kept)

            # every stored list still answers, from storage, with its films
            view = job(fp, ["sw_alice", "sw_bob", "sw_carol"])
            got = [(p["status"], p["from_store"], p["films"]) for p in view["participants"]]
            self.assertEqual(got, [("ready", True, 10), ("ready", True, 1), ("ready", True, 1)])
            status, one = fp.json("POST", "/api/v1/jobs",
                                  {"participants": [{"import": token_id}]})
            self.assertEqual(status, 202)
            done = harness.wait_until(lambda: (lambda v: v if v["status"] == "done" else None)(
                fp.json("GET", "/api/v1/jobs/" + one["id"])[1]), what="import job")
            _, res = fp.json("GET", "/api/v1/jobs/%s/results?limit=1000" % done["id"])
            self.assertEqual(sorted(f["title"] for f in res["common"]),
                             sorted(t for t, _ in token))
            r = run(["watched", "sw_alice", "--json"], self.place.env())
            self.assertEqual([f["title"] for f in json.loads(r.stdout)], ["Alice 0"])
            # nothing left to do
            out = self.sweep(0)
            self.assertEqual((out["marked"], out["deleted"]), (0, 0))

    def test_the_server_sweeps_on_its_own(self):
        env = self.place.env(FILMPICKER_CATALOGUE_SWEEP_INTERVAL=1, FILMPICKER_CATALOGUE_GRACE=0)
        with harness.FilmPicker(env=env) as fp:
            status, _ = self.upload(fp, csv_of([("Old %d" % i, 1980) for i in range(20)]),
                                    username="sw_dave")
            self.assertEqual(status, 201)
            status, _ = self.upload(fp, csv_of([("Fresh", 2020)]), username="sw_dave")
            self.assertEqual(status, 201)
            harness.wait_until(lambda: self.titles() == {"Fresh"}, timeout=20,
                               what="the periodic sweep")
            self.assertTrue(logged(fp.stderr_text(), "catalogue_sweep", filmpicker__result="ok"))
            _, _, text = fp.request("GET", "/metrics")
            text = text.decode("utf-8")
            self.assertRegex(text, r'(?m)^filmpicker_catalogue_sweeps_total\{result="ok"\} [1-9]')
            self.assertRegex(text, r"(?m)^filmpicker_catalogue_films_deleted_total 20$")
            view = job(fp, ["sw_dave"])
            self.assertEqual(view["participants"][0]["films"], 1)


class TestDatabaseFiles(StorageCase):
    def test_files_are_0600_and_wider_modes_are_tightened(self):
        old = os.umask(0o022)  # the usual umask: files would be 0644
        self.addCleanup(os.umask, old)
        env = self.place.env()
        csv = read_data("api_watchlist.csv")
        with harness.FilmPicker(env=env) as fp:
            status, _ = self.upload(fp, csv)
            self.assertEqual(status, 201)
            for suffix in ("", "-wal", "-shm"):
                with self.subTest(file="fp.db" + suffix):
                    self.assertEqual(oct(mode(self.place.db + suffix)), oct(0o600))
        # a database copied in with 0644 (and its -wal, -shm) is tightened,
        # with a log line naming the file
        os.chmod(self.place.db, 0o644)
        for suffix in ("-wal", "-shm"):
            open(self.place.db + suffix, "ab").close()
            os.chmod(self.place.db + suffix, 0o666)
        with harness.FilmPicker(env=env) as fp:
            for suffix in ("", "-wal", "-shm"):
                self.assertEqual(oct(mode(self.place.db + suffix)), oct(0o600))
            log = fp.stderr_text()
            self.assertTrue(logged(log, "store_file_mode_tightened", file__path=self.place.db,
                                   filmpicker__from="0644", filmpicker__to="0600"), log)
            self.assertTrue(logged(log, "store_file_mode_tightened",
                                   file__path=self.place.db + "-wal", filmpicker__from="0666",
                                   filmpicker__to="0600"), log)
            # still the same database
            self.assertEqual(db_count(self.place.db, "SELECT count(*) FROM watchlists"), 1)

    def test_empty_database_file_is_refused(self):
        open(self.place.db, "wb").close()  # 0 bytes: a truncated copy, say
        for args in (["serve"], ["migrate", "status"], ["pick", "alice"]):
            with self.subTest(args=args):
                r = run(args, self.place.env(FILMPICKER_LISTEN="127.0.0.1:0",
                                             FILMPICKER_LETTERBOXD_URL=harness.UNREACHABLE_URL))
                self.assertEqual(r.returncode, 1, r.stdout + r.stderr)
                self.assertIn("the database %s is an empty file (0 bytes), probably truncated: "
                              "restore it from a backup, or delete it to start afresh "
                              "(database_empty)" % self.place.db, r.stderr)
                self.assertEqual(os.path.getsize(self.place.db), 0)  # left for the operator
        # deleting it starts afresh
        os.unlink(self.place.db)
        with harness.FilmPicker(env=self.place.env()) as fp:
            status, _ = fp.json("GET", "/healthz")
            self.assertEqual(status, 200)
        self.assertGreater(os.path.getsize(self.place.db), 0)


if PG:  # about SQLite files: not part of the PostgreSQL run
    del TestDatabaseFiles, TestLegacyDatabase

if __name__ == "__main__":
    unittest.main()
