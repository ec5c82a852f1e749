"""Integration-test harness: runs the real binaries on free loopback ports.

Every integration test imports this module (Python standard library only):

    from harness import FakeBoxd, FilmPicker

    with FakeBoxd(markup="react2025", latency_ms=50) as fake:
        with FilmPicker(fake=fake) as fp:
            status, body = fp.json("GET", "/healthz")

FakeBoxd(**flags) starts build/fakeboxd (the fake Letterboxd) on port 0 and
learns the port from --port-file. Flags map to command-line options:
latency_ms=200 -> --latency-ms 200, gzip=True -> --gzip, False/None -> left out.

FilmPicker(env=..., args=..., fake=...) starts `build/filmpicker serve` with
a fresh database (a file in a temporary directory; with
FP_TEST_BACKEND=postgresql a schema of its own on the PostgreSQL named in
$FP_SERVICES_ENV, dropped when the server stops: see PgSchema), a random
64-hex-digit secret key,
FILMPICKER_LETTERBOXD_URL pointing at the fake site, and waits until
GET /healthz answers 200. Its stderr goes to a file that is printed when
something fails.

Both stop with SIGTERM, then SIGKILL after a bounded wait; a process that
does not exit 0 on SIGTERM makes stop() raise (unless an exception is already
on its way out of the `with` block, which is then reported as it is).
Every wait in this module is bounded.

The build directory is $FP_BUILD_DIR (set by ctest), else /work/main/build.
"""

import http.client
import json
import os
import secrets
import signal
import random
import socket
import subprocess
import sys
import tempfile
import time
import urllib.parse
import shutil

START_TIMEOUT = 10.0     # seconds until a server must be listening
STOP_TIMEOUT = 10.0      # seconds between SIGTERM and SIGKILL
REQUEST_TIMEOUT = 30.0   # seconds for one HTTP exchange
LOG_TAIL = 4000          # characters of a log shown in a failure message

# Where nothing listens (the discard port): the default Letterboxd URL of a
# FilmPicker started without a fake, so no test can reach the real site.
UNREACHABLE_URL = "http://127.0.0.1:9"


PG_BIN = "/usr/lib/postgresql/15/bin"   # scripts/services.sh installs it there


def test_backend():
    """The storage backend the tests run on: "sqlite" (the default) or
    "postgresql" (FP_TEST_BACKEND=postgresql, set by the scaled CTest runs)."""
    backend = os.environ.get("FP_TEST_BACKEND", "sqlite")
    if backend not in ("sqlite", "postgresql"):
        raise ValueError("FP_TEST_BACKEND must be sqlite or postgresql: %r" % backend)
    return backend


def services_database():
    """FILMPICKER_DATABASE of the services started by scripts/services.sh (the
    CTest fixture "services" writes their exports to $FP_SERVICES_ENV).
    Raises when there is none: a PostgreSQL test never passes without one."""
    path = os.environ.get("FP_SERVICES_ENV", "")
    try:
        with open(path, "r", encoding="utf-8") as f:
            for line in f:
                if line.startswith("export FILMPICKER_DATABASE="):
                    return line.strip().split("=", 1)[1]
    except OSError as e:
        raise RuntimeError("no services env file (FP_SERVICES_ENV=%r): %s" % (path, e))
    raise RuntimeError("no FILMPICKER_DATABASE in %s" % path)


def redact_url(url):
    """The database URL as FilmPicker prints it: the password as ***."""
    parts = urllib.parse.urlsplit(url)
    if parts.password is None:
        return url
    netloc = parts.netloc.replace(":" + parts.password + "@", ":***@", 1)
    return urllib.parse.urlunsplit(parts._replace(netloc=netloc))


def _pg_tool(name):
    path = os.path.join(PG_BIN, name)
    return path if os.access(path, os.X_OK) else (shutil.which(name) or name)


class PgSchema:
    """A schema of its own on a PostgreSQL server (default: the services'),
    so that tests running at once never see each other's rows. url is the
    FILMPICKER_DATABASE for it (the base URL plus schema=NAME, which
    FilmPicker's migrations create); drop() removes it with its tables."""

    def __init__(self, base=None):
        self.base = base or services_database()
        self.name = "fpt_" + secrets.token_hex(6)
        sep = "&" if "?" in self.base else "?"
        self.url = self.base + sep + "schema=" + self.name
        self.shown = redact_url(self.url)

    def _run(self, args, sql=None, in_schema=True, timeout=60):
        env = dict(os.environ)
        env["PGCONNECT_TIMEOUT"] = "10"
        if in_schema:
            env["PGOPTIONS"] = "-c search_path=%s -c client_min_messages=warning" % self.name
        cmd = [_pg_tool(args[0])] + args[1:] + ["--dbname=" + self.base]
        if sql is not None:
            cmd += ["-X", "-q", "-t", "-A", "-F", "\x1f", "-v", "ON_ERROR_STOP=1", "-c", sql]
        r = subprocess.run(cmd, env=env, capture_output=True, timeout=timeout)
        if r.returncode != 0:
            raise AssertionError("%s failed: %s" % (" ".join(args), r.stderr.decode("utf-8", "replace")))
        return r.stdout

    def rows(self, sql):
        """The rows of a query in the schema, each a tuple of strings."""
        out = self._run(["psql"], sql).decode("utf-8")
        return [tuple(line.split("\x1f")) for line in out.splitlines() if line]

    def value(self, sql):
        rows = self.rows(sql)
        return rows[0][0] if rows else None

    def size(self):
        """Bytes of the schema's tables, with their indexes and TOAST."""
        return int(self._run(["psql"], "SELECT coalesce(sum(pg_total_relation_size(c.oid)), 0) "
                             "FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
                             "WHERE n.nspname = '%s' AND c.relkind = 'r'" % self.name,
                             in_schema=False).strip() or 0)

    def dump(self):
        """Everything stored in the schema, as pg_dump writes it (bytes)."""
        return self._run(["pg_dump", "--data-only", "--schema=" + self.name], in_schema=False)

    def drop(self):
        self._run(["psql"], "DROP SCHEMA IF EXISTS %s CASCADE" % self.name, in_schema=False)


def build_dir():
    """The CMake build directory holding filmpicker and fakeboxd."""
    return os.environ.get("FP_BUILD_DIR") or "/work/main/build"


def _ephemeral_low():
    try:
        with open("/proc/sys/net/ipv4/ip_local_port_range") as f:
            return int(f.read().split()[0])
    except (OSError, ValueError, IndexError):
        return 32768


def free_port():
    """A TCP port on 127.0.0.1 that was free a moment ago, from below the
    kernel's ephemeral range: one from inside it may be taken by any
    outgoing connection before the server binds it."""
    low = _ephemeral_low()
    for _ in range(10000):
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
            try:
                s.bind(("127.0.0.1", random.randrange(10000, max(low, 10001))))
            except OSError:
                continue
            return s.getsockname()[1]
    raise RuntimeError("no free port below %d" % low)


def request(base_url, method, path, body=None, headers=None, timeout=REQUEST_TIMEOUT):
    """One HTTP exchange on a new connection; never follows redirects.

    body: bytes, str (sent as UTF-8) or None. Returns (status, headers,
    body_bytes); headers is an http.client.HTTPMessage (case-insensitive
    headers["Content-Type"], headers.get_all("Set-Cookie")). Error statuses
    are returned, not raised; connection failures raise OSError.
    """
    parsed = urllib.parse.urlsplit(base_url)
    if parsed.scheme != "http" or not parsed.hostname:
        raise ValueError("only http://host:port base URLs are supported: %r" % base_url)
    if isinstance(body, str):
        body = body.encode("utf-8")
    conn = http.client.HTTPConnection(parsed.hostname, parsed.port or 80, timeout=timeout)
    try:
        conn.request(method, path, body=body, headers=dict(headers or {}))
        resp = conn.getresponse()
        data = resp.read()
        return resp.status, resp.headers, data
    finally:
        conn.close()


def wait_until(predicate, timeout=10.0, interval=0.05, what="condition"):
    """Polls predicate() until it returns a true value (returned) or timeout
    seconds pass (TimeoutError)."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() >= deadline:
            raise TimeoutError("%s not reached within %.1f s" % (what, timeout))
        time.sleep(interval)


def _tail(path, limit=LOG_TAIL):
    try:
        with open(path, "rb") as f:
            data = f.read()
    except OSError:
        return ""
    text = data.decode("utf-8", "replace")
    return text if len(text) <= limit else "...\n" + text[-limit:]


def _stop_process(proc, name, log_path, raise_on_error):
    """SIGTERM, bounded wait, then SIGKILL. Returns the exit status."""
    if proc is None:
        return None
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=STOP_TIMEOUT)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=STOP_TIMEOUT)
            if raise_on_error:
                raise AssertionError("%s did not exit within %.0f s of SIGTERM; killed.\n%s"
                                     % (name, STOP_TIMEOUT, _tail(log_path)))
            return proc.returncode
    if proc.returncode != 0 and raise_on_error:
        raise AssertionError("%s exited with status %s on SIGTERM (expected 0).\n%s"
                             % (name, proc.returncode, _tail(log_path)))
    return proc.returncode


def _flag_args(flags):
    args = []
    for key, value in flags.items():
        if value is None or value is False:
            continue
        opt = "--" + key.replace("_", "-")
        if value is True:
            args.append(opt)
        else:
            args.extend([opt, str(value)])
    return args


class FakeBoxd:
    """The fake Letterboxd (tools/fakeboxd) as a context manager.

    start_timeout (not a flag) bounds the wait for the port; raise it for a
    huge --universe under the sanitizers. Attributes once started: url
    ("http://127.0.0.1:PORT"), port, proc, log_path (its stdout and stderr).
    """

    def __init__(self, start_timeout=START_TIMEOUT, **flags):
        self.flags = dict(flags)
        self.start_timeout = start_timeout
        self.proc = None
        self.port = None
        self.url = None
        self.log_path = None
        self.returncode = None
        self._tmp = None
        self._log = None
        self._log_final = ""

    def __enter__(self):
        self.start()
        return self

    def __exit__(self, exc_type, exc, tb):
        self.stop(raise_on_error=exc_type is None)
        return False

    def start(self):
        exe = os.path.join(build_dir(), "fakeboxd")
        if not os.access(exe, os.X_OK):
            raise FileNotFoundError("fakeboxd not built: %s" % exe)
        self._tmp = tempfile.TemporaryDirectory(prefix="fakeboxd-")
        port_file = os.path.join(self._tmp.name, "port")
        self.log_path = os.path.join(self._tmp.name, "fakeboxd.log")
        flags = dict(self.flags)
        listen = flags.pop("listen", "127.0.0.1:0")
        args = [exe, "--listen", listen, "--port-file", port_file] + _flag_args(flags)
        self._log = open(self.log_path, "wb")
        self.proc = subprocess.Popen(args, stdin=subprocess.DEVNULL, stdout=self._log,
                                     stderr=subprocess.STDOUT)
        deadline = time.monotonic() + self.start_timeout
        while True:
            if self.proc.poll() is not None:
                rc = self.proc.returncode
                self._cleanup()
                raise RuntimeError("fakeboxd exited with status %s at start: %s\n%s"
                                   % (rc, " ".join(args), self.log_text()))
            port = self._read_port(port_file)
            if port and self._listening(port):
                self.port = port
                self.url = "http://127.0.0.1:%d" % port
                return self
            if time.monotonic() >= deadline:
                self.stop(raise_on_error=False)
                raise TimeoutError("fakeboxd did not listen within %.0f s\n%s"
                                   % (self.start_timeout, self.log_text()))
            time.sleep(0.02)

    @staticmethod
    def _read_port(port_file):
        try:
            with open(port_file, "r", encoding="ascii") as f:
                text = f.read().strip()
        except OSError:
            return None
        return int(text) if text.isdigit() and 0 < int(text) < 65536 else None

    @staticmethod
    def _listening(port):
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1.0):
                return True
        except OSError:
            return False

    def stop(self, raise_on_error=True):
        """Stops the server; raises when it did not exit 0 on SIGTERM."""
        try:
            self.returncode = _stop_process(self.proc, "fakeboxd", self.log_path, raise_on_error)
        finally:
            self._cleanup()
        return self.returncode

    def _cleanup(self):
        if self._log:
            self._log.close()
            self._log = None
        if self._tmp:
            self._log_final = _tail(self.log_path)
            self._tmp.cleanup()
            self._tmp = None

    def log_text(self):
        """The last LOG_TAIL characters of fakeboxd's output."""
        if self._tmp is None:
            return self._log_final
        return _tail(self.log_path)

    def request(self, method, path, body=None, headers=None, timeout=REQUEST_TIMEOUT):
        """(status, headers, body_bytes) of one request to the fake site."""
        return request(self.url, method, path, body=body, headers=headers, timeout=timeout)

    def _json(self, method, path):
        status, _, body = self.request(method, path)
        if status != 200:
            raise AssertionError("fakeboxd %s %s answered %d: %r" % (method, path, status, body[:200]))
        return json.loads(body.decode("utf-8"))

    def films(self, user):
        """The user's films in list order: [{"lb_id", "slug", "title", "year"}, ...]."""
        return self._json("GET", "/_fake/films/" + user)

    def stats(self):
        """{"requests_total", "pages": {path: n}, "peak_concurrency": {host: n}, "in_flight"}."""
        return self._json("GET", "/_fake/stats")

    def reset(self):
        """Zeroes the counters and the flaky/ratelimited first-time state."""
        return self._json("POST", "/_fake/reset")


class FilmPicker:
    """`filmpicker serve` as a context manager.

    env: extra environment, merged last (overrides the defaults below).
    args: extra arguments after `serve`.
    fake: a started FakeBoxd whose url becomes FILMPICKER_LETTERBOXD_URL;
    letterboxd_url: the same given directly. Without either, the URL points
    at a closed local port, so nothing ever reaches the real site.
    default_limits: keep the server's default rate limits (otherwise they
    are set out of reach: functional tests are not a group on a sofa).

    database: the FILMPICKER_DATABASE to use (kept as it is); by default a new
    SQLite file, or a new PgSchema under FP_TEST_BACKEND=postgresql.

    Attributes once started: url, port, proc, tmpdir, db_path (the SQLite
    file, None on PostgreSQL), pg (the PgSchema, or None), database,
    secret_key, env (what the process got on top of the inherited
    environment), stderr_path, stdout_path.
    """

    def __init__(self, env=None, args=None, fake=None, letterboxd_url=None,
                 start_timeout=START_TIMEOUT, default_limits=False, database=None):
        self.default_limits = default_limits
        self.database = database  # FILMPICKER_DATABASE; None: a fresh one
        self.extra_env = dict(env or {})
        self.args = list(args or [])
        if fake is not None and letterboxd_url is None:
            letterboxd_url = fake.url
        self.letterboxd_url = letterboxd_url or UNREACHABLE_URL
        self.start_timeout = start_timeout
        self.proc = None
        self.port = None
        self.url = None
        self.tmpdir = None
        self.db_path = None
        self.pg = None  # the PgSchema made for this server, dropped at stop
        self.secret_key = None
        self.env = None
        self.stderr_path = None
        self.stdout_path = None
        self.returncode = None
        self._tmp = None
        self._files = []
        self._stderr_final = ""

    def __enter__(self):
        self.start()
        return self

    def __exit__(self, exc_type, exc, tb):
        if exc_type is not None:
            sys.stderr.write("\n--- filmpicker stderr (test failed) ---\n%s\n" % self.stderr_text())
        self.stop(raise_on_error=exc_type is None)
        return False

    def start(self):
        exe = os.path.join(build_dir(), "filmpicker")
        if not os.access(exe, os.X_OK):
            raise FileNotFoundError("filmpicker not built: %s" % exe)
        self._tmp = tempfile.TemporaryDirectory(prefix="filmpicker-")
        self.tmpdir = self._tmp.name
        self.db_path = os.path.join(self.tmpdir, "filmpicker.db")
        if (self.database is None and "FILMPICKER_DATABASE" not in self.extra_env
                and test_backend() == "postgresql"):
            self.pg = PgSchema()
            self.database = self.pg.url
            self.db_path = None
        self.secret_key = secrets.token_hex(32)
        self.port = free_port()
        self.url = "http://127.0.0.1:%d" % self.port
        self.env = {
            "FILMPICKER_LISTEN": "127.0.0.1:%d" % self.port,
            "FILMPICKER_DATABASE": self.database or self.db_path,
            "FILMPICKER_SECRET_KEY": self.secret_key,
            "FILMPICKER_LETTERBOXD_URL": self.letterboxd_url,
            # posters come from the fake site too: a test never leaves loopback
            "FILMPICKER_LETTERBOXD_IMAGE_URL": self.letterboxd_url,
        }
        # Functional tests make more fetches, sessions and uploads from one
        # address in a minute than any group; the rate limits themselves are
        # tested at their defaults by tests/abuse (and by tests that set these).
        # default_limits=True keeps the server's own defaults.
        if not self.default_limits:
            for cls in ("FETCH", "IMPORT", "SESSION", "CLIENT", "JOB"):
                self.env["FILMPICKER_RATE_%s_BURST" % cls] = "100000"
        self.env.update({k: str(v) for k, v in self.extra_env.items()})
        # Hermetic: no FILMPICKER_* setting leaks in from the caller's shell.
        full_env = {k: v for k, v in os.environ.items() if not k.startswith("FILMPICKER_")}
        full_env.update(self.env)

        self.stdout_path = os.path.join(self.tmpdir, "stdout.log")
        self.stderr_path = os.path.join(self.tmpdir, "stderr.log")
        out = open(self.stdout_path, "wb")
        err = open(self.stderr_path, "wb")
        self._files = [out, err]
        cmd = [exe, "serve"] + self.args
        self.proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=out, stderr=err,
                                     env=full_env, cwd=self.tmpdir)
        deadline = time.monotonic() + self.start_timeout
        last_error = "no answer yet"
        while True:
            if self.proc.poll() is not None:
                rc = self.proc.returncode
                text = self.stderr_text()
                self._cleanup()
                raise RuntimeError("filmpicker serve exited with status %s at start\n%s" % (rc, text))
            try:
                status, _, body = request(self.url, "GET", "/healthz", timeout=1.0)
                if status == 200:
                    return self
                last_error = "GET /healthz answered %d: %r" % (status, body[:200])
            except OSError as e:
                last_error = "GET /healthz: %s" % e
            if time.monotonic() >= deadline:
                text = self.stderr_text()
                self.stop(raise_on_error=False)
                raise TimeoutError("filmpicker not healthy within %.0f s (%s)\n%s"
                                   % (self.start_timeout, last_error, text))
            time.sleep(0.05)

    def stop(self, raise_on_error=True):
        """SIGTERM and a bounded wait (then SIGKILL); raises unless it exited 0."""
        try:
            self.returncode = _stop_process(self.proc, "filmpicker serve", self.stderr_path,
                                            raise_on_error)
        finally:
            self._cleanup()
        return self.returncode

    def _cleanup(self):
        for f in self._files:
            f.close()
        self._files = []
        if self._tmp:
            self._stderr_final = _tail(self.stderr_path)
            self._tmp.cleanup()
            self._tmp = None
        if self.pg:
            pg, self.pg = self.pg, None
            pg.drop()

    def stderr_text(self):
        """The last LOG_TAIL characters of the server's stderr."""
        if self._tmp is None:
            return self._stderr_final
        return _tail(self.stderr_path) if self.stderr_path else ""

    def request(self, method, path, body=None, headers=None, timeout=REQUEST_TIMEOUT):
        """(status, headers, body_bytes); body may be bytes, str or None."""
        return request(self.url, method, path, body=body, headers=headers, timeout=timeout)

    def json(self, method, path, obj=None, headers=None, timeout=REQUEST_TIMEOUT):
        """Sends obj as JSON (when not None) and returns (status, parsed body).

        The parsed body is None for an empty body; a body that is not JSON
        raises AssertionError showing it.
        """
        hdrs = {"Accept": "application/json"}
        body = None
        if obj is not None:
            body = json.dumps(obj).encode("utf-8")
            hdrs["Content-Type"] = "application/json"
        hdrs.update(headers or {})
        status, _, data = self.request(method, path, body=body, headers=hdrs, timeout=timeout)
        if not data:
            return status, None
        try:
            return status, json.loads(data.decode("utf-8"))
        except (UnicodeDecodeError, ValueError):
            raise AssertionError("%s %s answered %d with a body that is not JSON: %r"
                                 % (method, path, status, data[:500]))
