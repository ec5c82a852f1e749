"""The server's log lines: JSON with Elastic Common Schema names.

Every line a real `filmpicker serve` writes while it serves searches, errors
and a shutdown validates against deploy/logging/ecs-fields.json (the fields
the ELK pipeline and index template expect); no line carries a username or,
unless FILMPICKER_LOG_CLIENT_ADDRESS=1, a client address.
"""

import json
import os
import signal
import sys
import time
import unittest

import jsonschema
import yaml

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import harness  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
SCHEMA_PATH = os.path.join(ROOT, "deploy", "logging", "ecs-fields.json")
TEMPLATE_PATH = os.path.join(ROOT, "deploy", "logging", "elasticsearch", "index-template.json")


def load_schema():
    with open(SCHEMA_PATH, encoding="utf-8") as f:
        return json.load(f)


def log_lines(path):
    with open(path, encoding="utf-8") as f:
        return [json.loads(line) for line in f.read().splitlines() if line.strip()]


def wait_for_line(path, pred, timeout=10.0):
    """Lines are written when an answer has gone out: wait for the one we want."""
    return harness.wait_until(lambda: [o for o in log_lines(path) if pred(o)], timeout=timeout,
                              what="a log line")


class EcsLogLinesTest(unittest.TestCase):
    USERS = ["secretann_n40", "secretbob_n40"]

    def validate_all(self, lines):
        validator = jsonschema.Draft202012Validator(load_schema())
        for obj in lines:
            errors = sorted(validator.iter_errors(obj), key=lambda e: list(e.path))
            self.assertEqual([], ["%s: %s" % (list(e.path), e.message) for e in errors], obj)

    def test_every_line_validates_and_carries_no_personal_data(self):
        with harness.FakeBoxd() as fake, harness.FilmPicker(fake=fake) as fp:
            status, view = fp.json("POST", "/api/v1/jobs",
                                   {"participants": [{"profile": u} for u in self.USERS]})
            self.assertEqual(status, 202, view)
            harness.wait_until(lambda: fp.json("GET", "/api/v1/jobs/" + view["id"])[1]["status"]
                               == "done", timeout=60, what="job done")
            # a missing user, bad input, an unknown route, a wrong method
            fp.json("POST", "/api/v1/jobs", {"participants": [{"profile": "notfound_zed"}]})
            fp.request("POST", "/api/v1/jobs", body=b"{not json",
                       headers={"Content-Type": "application/json"})
            fp.request("GET", "/no/such/route")
            # no trusted proxy here: a client's own request id is not taken
            st, hdrs, _ = fp.request("GET", "/healthz", headers={"X-Request-Id": "0123456789abcdef"})
            self.assertNotEqual(hdrs["X-Request-Id"], "0123456789abcdef")
            fp.request("DELETE", "/healthz")
            wait_for_line(fp.stderr_path, lambda o: o.get("event.action") == "http_request" and
                          o.get("http.response.status_code") == 405)
            fp.proc.send_signal(signal.SIGTERM)
            fp.proc.wait(timeout=30)
            lines = log_lines(fp.stderr_path)
            text = open(fp.stderr_path, encoding="utf-8").read()
        self.validate_all(lines)
        actions = {o["event.action"] for o in lines}
        for a in ("listening", "http_request", "watchlist_fetch", "stopping", "stopped"):
            self.assertIn(a, actions)
        requests = [o for o in lines if o["event.action"] == "http_request"]
        codes = {o["http.response.status_code"] for o in requests}
        self.assertTrue({200, 202, 400, 404, 405} <= codes, codes)
        for o in requests:
            # the route pattern, never the path: no ids, no names
            self.assertNotIn(view["id"], o["url.path"])
            self.assertRegex(o["trace.id"], "^[0-9a-f]{16}$")
            self.assertEqual(o["message"], "%s %s %d" % (o["http.request.method"], o["url.path"],
                                                         o["http.response.status_code"]))
            self.assertGreater(o["event.duration"], 0)
            self.assertNotIn("client.address", o)
        fetches = [o for o in lines if o["event.action"] == "watchlist_fetch"]
        self.assertEqual(len(fetches), 3, fetches)
        for u in self.USERS + ["notfound_zed"]:
            self.assertNotIn(u, text)

    def test_client_address_when_configured(self):
        env = {"FILMPICKER_LOG_CLIENT_ADDRESS": "1", "FILMPICKER_TRUSTED_PROXIES": "127.0.0.1"}
        with harness.FilmPicker(env=env) as fp:
            fp.request("GET", "/healthz", headers={"X-Forwarded-For": "203.0.113.9"})
            st, hdrs, _ = fp.request("GET", "/readyz", headers={"X-Request-Id": "0123456789abcdef"})
            # a trusted proxy's request id is kept: one trace.id in both logs
            self.assertEqual(hdrs["X-Request-Id"], "0123456789abcdef")
            st, hdrs, _ = fp.request("GET", "/healthz", headers={"X-Request-Id": "NOT-HEX-AT-ALL!!"})
            self.assertRegex(hdrs["X-Request-Id"], "^[0-9a-f]{16}$")
            got = wait_for_line(fp.stderr_path, lambda o: o.get("url.path") == "/readyz")
            lines = log_lines(fp.stderr_path)
        self.validate_all(lines)
        self.assertEqual(got[0]["client.address"], "127.0.0.1")
        self.assertEqual(got[0]["trace.id"], "0123456789abcdef")
        fwd = [o for o in lines if o.get("url.path") == "/healthz" and
               o.get("client.address") == "203.0.113.9"]
        self.assertEqual(len(fwd), 1, lines)

    def test_index_template_maps_every_field(self):
        """The Elasticsearch template gives each field of the schema its ECS type."""
        schema = load_schema()
        with open(TEMPLATE_PATH, encoding="utf-8") as f:
            template = json.load(f)
        props = template["template"]["mappings"]["properties"]

        def mapping(dotted):
            node = {"properties": props}
            for part in dotted.split("."):
                node = node.get("properties", {}).get(part)
                if node is None:
                    return None
            return node
        for field, spec in schema["properties"].items():
            m = mapping(field)
            self.assertIsNotNone(m, field)
            self.assertEqual(m["type"], spec["x-ecs-type"], field)
        dyn = [d for t in template["template"]["mappings"]["dynamic_templates"]
               for d in t.values() if d.get("path_match") == "filmpicker.*"]
        self.assertEqual(len(dyn), 1)
        self.assertEqual(dyn[0]["mapping"]["type"], "keyword")
        self.assertEqual(template["index_patterns"], ["filmpicker-logs-*"])


class ShippingConfigurationTest(unittest.TestCase):
    """What can be checked here of the ELK side (Filebeat, Logstash,
    Elasticsearch and Kibana are not packaged by Debian and cannot run
    here): the files parse, and they name only fields the lines have."""

    def test_filebeat_config_parses_and_reads_the_container_logs(self):
        with open(os.path.join(ROOT, "deploy", "logging", "filebeat.yml"), encoding="utf-8") as f:
            cfg = yaml.safe_load(f)
        inp = cfg["filebeat.inputs"][0]
        self.assertEqual(inp["type"], "filestream")
        self.assertIn("/var/lib/containers/storage/overlay-containers/*/userdata/ctr.log",
                      inp["paths"])
        parsers = [list(p)[0] for p in inp["parsers"]]
        self.assertEqual(parsers, ["container", "ndjson"])
        self.assertTrue(inp["parsers"][1]["ndjson"]["expand_keys"])
        self.assertIn("output.logstash", cfg)

    def test_kibana_export_is_consistent(self):
        schema = load_schema()
        fields = set(schema["properties"]) | {"filmpicker.result"}
        path = os.path.join(ROOT, "deploy", "logging", "kibana", "filmpicker-dashboard.ndjson")
        with open(path, encoding="utf-8") as f:
            objs = [json.loads(line) for line in f if line.strip()]
        ids = {(o["type"], o["id"]) for o in objs}
        self.assertIn(("dashboard", "filmpicker-overview"), ids)
        for o in objs:
            for ref in o.get("references", []):
                self.assertIn((ref["type"], ref["id"]), ids, o["id"])
            attrs = o["attributes"]
            for key in ("visState", "panelsJSON", "optionsJSON", "uiStateJSON"):
                if key in attrs:
                    json.loads(attrs[key])
            if "kibanaSavedObjectMeta" in attrs:
                json.loads(attrs["kibanaSavedObjectMeta"]["searchSourceJSON"])
            if o["type"] == "visualization":
                for agg in json.loads(attrs["visState"])["aggs"]:
                    field = agg["params"].get("field")
                    if field:
                        self.assertIn(field, fields, o["id"])
            if o["type"] == "search":
                for col in attrs["columns"]:
                    self.assertIn(col, fields, o["id"])
        panels = json.loads([o for o in objs if o["type"] == "dashboard"][0]["attributes"]
                            ["panelsJSON"])
        self.assertEqual(len(panels), 5)

    def test_elasticsearch_files_parse(self):
        for name in ("index-template.json", "ilm-policy.json"):
            with open(os.path.join(ROOT, "deploy", "logging", "elasticsearch", name),
                      encoding="utf-8") as f:
                json.load(f)


if __name__ == "__main__":
    unittest.main(verbosity=2)
