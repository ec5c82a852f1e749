#!/usr/bin/python3
"""Integration tests of storage safety against the real binary: the database
files and their modes, an empty (truncated) database file, the server key
that must match the stored data (mismatch, re-key, start afresh, and the
upgrade of a database written before wrapped data keys), the cap on new
catalogue films per import, and the sweep of catalogue films no stored list
references any more."""
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


def db_count(path, sql):
    """One number from the database, read through a read-only connection."""
    con = sqlite3.connect("file:%s?mode=ro" % path, uri=True)
    try:
        return con.execute(sql).fetchone()[0]
    finally:
        con.close()


class Place:
    """A directory that outlives server restarts: a database path and a key."""

    def __init__(self):
        self.tmp = tempfile.TemporaryDirectory(prefix="fp-storage-")
        self.dir = self.tmp.name
        self.db = os.path.join(self.dir, "fp.db")
        self.key = secrets.token_hex(32)

    def env(self, key=None, **extra):
        e = {"FILMPICKER_DATABASE": self.db, "FILMPICKER_SECRET_KEY": key or self.key}
        e.update({k: str(v) for k, v in extra.items()})
        return e

    def close(self):
        self.tmp.cleanup()


class StorageCase(unittest.TestCase):
    def setUp(self):
        self.place = Place()
        self.addCleanup(self.place.close)

    def upload(self, fp, data, username=None, filename="watchlist.csv"):
        fields = {"username": username} if username else {}
        body, ctype = multipart(fields, {"file": (filename, data)})
        status, headers, raw = fp.request("POST", "/api/v1/imports", body=body,
                                          headers={"Content-Type": ctype})
        out = spec_check.check_against_spec("POST", "/api/v1/imports", status, headers, raw)
        return status, out


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
            self.assertIn('"event":"store_file_mode_tightened","file":"%s","from":"0644","to":"0600"'
                          % self.place.db, log)
            self.assertIn('"file":"%s-wal","from":"0666","to":"0600"' % self.place.db, log)
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


if __name__ == "__main__":
    unittest.main()
