"""The scaled set-up for the integration tests: several `filmpicker serve`
instances and `filmpicker worker` processes sharing one database, one Redis
and one RabbitMQ (started by scripts/services.sh: the CTest fixture
"services" writes their exports to $FP_SERVICES_ENV, or a test starts
services of its own with Services(dir) when it stops and starts them).

Stack(services, fake) gives each test class a system of its own on shared
servers: its own Redis database number, its own RabbitMQ queue names (the
URL's ?queue=), its own database (a SQLite file in a temporary directory, or
with FP_SCALED_DATABASE=services the services' PostgreSQL) and one server
key for all its processes. api() starts an API instance (harness.FilmPicker
with that environment), worker() a worker, both stopped by stop().
"""
import itertools
import os
import re
import secrets
import signal
import subprocess
import sys
import tempfile
import time

import harness

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
SERVICES_SH = os.path.join(ROOT, "scripts", "services.sh")
WORKER_START_TIMEOUT = 20.0
_redis_dbs = itertools.count(1)


def read_exports(path):
    """{"FILMPICKER_DATABASE": ..., ...} from services.sh's output."""
    out = {}
    with open(path, "r", encoding="utf-8") as f:
        for line in f:
            m = re.match(r"export (FILMPICKER_[A-Z_]+)=(.*)$", line.strip())
            if m:
                out[m.group(1)] = m.group(2)
    for k in ("FILMPICKER_DATABASE", "FILMPICKER_CACHE", "FILMPICKER_QUEUE"):
        if k not in out:
            raise RuntimeError("no %s in %s: the services did not start" % (k, path))
    return out


class Services:
    """The servers of scripts/services.sh under a directory: the fixture's
    (fixture=True: read only, never stopped here) or a test's own."""

    def __init__(self, directory=None):
        self.dir = directory
        self.env = None

    @classmethod
    def fixture(cls):
        path = os.environ.get("FP_SERVICES_ENV", "")
        s = cls(os.path.dirname(path))
        s.env = read_exports(path)
        return s

    def start(self, *names):
        out = subprocess.run([SERVICES_SH, "start", self.dir] + list(names), check=True,
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=300)
        path = os.path.join(tempfile.gettempdir(), "fp-services-%d.env" % os.getpid())
        with open(path, "wb") as f:
            f.write(out.stdout)
        self.env = read_exports(path)
        os.unlink(path)
        return self

    def stop(self, *names):
        subprocess.run([SERVICES_SH, "stop", self.dir] + list(names), check=True,
                       stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, timeout=300)

    def rabbitmqctl(self, *args):
        """rabbitmqctl on this directory's node; its stdout."""
        out = subprocess.run([SERVICES_SH, "rabbitmqctl", self.dir] + list(args), check=True,
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=120)
        return out.stdout.decode("utf-8", "replace")


class Worker:
    """`filmpicker worker` with the stack's environment."""

    def __init__(self, env):
        self.env = env
        self.proc = None
        self._tmp = tempfile.TemporaryDirectory(prefix="fp-worker-")
        self.stderr_path = os.path.join(self._tmp.name, "stderr.log")

    def start(self):
        exe = os.path.join(harness.build_dir(), "filmpicker")
        full = {k: v for k, v in os.environ.items() if not k.startswith("FILMPICKER_")}
        full.update(self.env)
        full["FILMPICKER_LOG_LEVEL"] = "info"  # its "worker_started" line says it is ready
        self._err = open(self.stderr_path, "ab")
        self.proc = subprocess.Popen([exe, "worker"], stdin=subprocess.DEVNULL,
                                     stdout=subprocess.DEVNULL, stderr=self._err, env=full,
                                     cwd=self._tmp.name)
        deadline = time.monotonic() + WORKER_START_TIMEOUT
        while '"worker_started"' not in self.log():
            if self.proc.poll() is not None:
                raise RuntimeError("filmpicker worker exited with %s at start\n%s"
                                   % (self.proc.returncode, self.log()[-4000:]))
            if time.monotonic() > deadline:
                raise TimeoutError("filmpicker worker did not start\n%s" % self.log()[-4000:])
            time.sleep(0.05)
        return self

    def log(self):
        try:
            with open(self.stderr_path, "r", encoding="utf-8", errors="replace") as f:
                return f.read()
        except OSError:
            return ""

    def kill(self):
        """SIGKILL, as a crash: no acknowledgement, no lease released."""
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait(timeout=10)
        self.stop(raise_on_error=False)

    def stop(self, raise_on_error=True):
        if self.proc is None:
            return 0
        rc = self.proc.poll()
        if rc is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                rc = self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                rc = self.proc.wait(timeout=10)
                if raise_on_error:
                    raise RuntimeError("filmpicker worker did not stop on SIGTERM\n%s"
                                       % self.log()[-4000:])
        self._err.close()
        self.proc = None
        self._tmp.cleanup()
        if raise_on_error and rc not in (0, -signal.SIGKILL):
            raise RuntimeError("filmpicker worker exited with %s\n%s" % (rc, self.log()[-4000:]))
        return rc


class Stack:
    """API instances and workers forming one system on the given services."""

    def __init__(self, services, fake, extra=None):
        self.services = services
        self.fake = fake
        self._tmp = tempfile.TemporaryDirectory(prefix="fp-stack-")
        tag = secrets.token_hex(4)
        cache = re.sub(r"/\d*$", "", services.env["FILMPICKER_CACHE"])
        queue = services.env["FILMPICKER_QUEUE"]
        database = os.path.join(self._tmp.name, "filmpicker.db")
        if os.environ.get("FP_SCALED_DATABASE") == "services":
            database = services.env["FILMPICKER_DATABASE"]
        self.queue_name = "fp-test-" + tag
        self.env = {
            "FILMPICKER_DATABASE": database,
            "FILMPICKER_SECRET_KEY": secrets.token_hex(32),
            "FILMPICKER_CACHE": "%s/%d" % (cache, next(_redis_dbs) % 16),
            "FILMPICKER_QUEUE": "%s%squeue=%s" % (queue, "&" if "?" in queue else "?",
                                                  self.queue_name),
            "FILMPICKER_LETTERBOXD_URL": fake.url,
            "FILMPICKER_LETTERBOXD_IMAGE_URL": fake.url,
            "FILMPICKER_FETCH_LEASE_MS": "3000",
        }
        self.env.update(extra or {})
        self.apis = []
        self.workers = []

    def api(self, **env):
        e = dict(self.env)
        e.update(env)
        fp = harness.FilmPicker(env=e, letterboxd_url=self.fake.url)
        fp.start()
        self.apis.append(fp)
        return fp

    def worker(self, **env):
        e = dict(self.env)
        e.update(env)
        w = Worker(e).start()
        self.workers.append(w)
        return w

    def stop(self):
        errors = []
        for w in self.workers:
            try:
                w.stop(raise_on_error=False)
            except Exception as e:  # noqa: BLE001 - report every failure
                errors.append(str(e))
        for a in self.apis:
            try:
                a.stop(raise_on_error=False)
            except Exception as e:  # noqa: BLE001
                errors.append(str(e))
        self.workers, self.apis = [], []
        self._tmp.cleanup()
        # The broker keeps durable queues: remove this stack's.
        if self.services.dir:
            try:
                for line in self.services.rabbitmqctl("list_queues", "name").splitlines():
                    name = line.strip()
                    if name == self.queue_name or name.startswith(self.queue_name + "."):
                        self.services.rabbitmqctl("delete_queue", name)
            except Exception as e:  # noqa: BLE001
                errors.append("queues not removed: %s" % e)
        if errors:
            sys.stderr.write("stack stop: %s\n" % "; ".join(errors))


def wait_for(pred, timeout, what, step=0.05):
    """Polls pred() until it returns a true value (returned), bounded."""
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        last = pred()
        if last:
            return last
        time.sleep(step)
    raise AssertionError("timed out after %.0f s waiting for %s (last: %r)" % (timeout, what, last))
