"""The OpenAPI document (api/openapi.json) as a test oracle, shared by the
integration tests (Python standard library + jsonschema).

check_against_spec(method, path, status, headers, data) asserts that one
answer is what the spec documents: the path, method and status must be
documented, required headers present and matching their schemas, and a JSON
body must validate (Draft 2020-12) against the documented schema; it returns
the parsed JSON (or the raw bytes of another media type).

Server-Sent Events: parse_sse(text) splits a text/event-stream into its
blocks; check_session_event(event) validates one parsed event against the
spec's SessionEvent schema and the event names the events operation lists.
"""

import json
import os
import re

import jsonschema

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))
SPEC_PATH = os.path.join(REPO, "api", "openapi.json")
ERROR_H = os.path.join(REPO, "src", "core", "error.h")


def load_spec():
    with open(SPEC_PATH, "rb") as f:
        raw = f.read()
    return raw, json.loads(raw.decode("utf-8"))


SPEC_BYTES, SPEC = load_spec()


def error_table():
    """[(code, status)] of FP_ERR_TABLE in src/core/error.h."""
    with open(ERROR_H, encoding="utf-8") as f:
        text = f.read()
    rows = re.findall(r'X\((\w+),\s*"(\w+)",\s*(\d+),', text)
    if len(rows) < 10:
        raise AssertionError("could not read FP_ERR_TABLE from %s" % ERROR_H)
    return [(code, int(status)) for _, code, status in rows]


# ---- the OpenAPI document ---------------------------------------------------

def resolve(ref):
    """The object a local "#/a/b" reference points at."""
    if not ref.startswith("#/"):
        raise AssertionError("only local references are used: %r" % ref)
    node = SPEC
    for part in ref[2:].split("/"):
        part = part.replace("~1", "/").replace("~0", "~")
        if not isinstance(node, dict) or part not in node:
            raise AssertionError("unresolvable $ref %r" % ref)
        node = node[part]
    return node


def deref(obj):
    """Follows $ref chains of a non-schema object (response, header, parameter)."""
    seen = set()
    while isinstance(obj, dict) and "$ref" in obj:
        if obj["$ref"] in seen:
            raise AssertionError("reference loop at %r" % obj["$ref"])
        seen.add(obj["$ref"])
        obj = resolve(obj["$ref"])
    return obj


def inline(schema, stack=()):
    """A copy of schema with every local $ref replaced by its target (a $ref
    with sibling keywords becomes an allOf), so that a plain Draft 2020-12
    validator can check it without a reference resolver."""
    if isinstance(schema, list):
        return [inline(s, stack) for s in schema]
    if not isinstance(schema, dict):
        return schema
    if "$ref" in schema:
        ref = schema["$ref"]
        if ref in stack:
            raise AssertionError("recursive schema at %r" % ref)
        target = inline(resolve(ref), stack + (ref,))
        rest = {k: inline(v, stack) for k, v in schema.items() if k != "$ref"}
        if not rest:
            return target
        rest["allOf"] = [target] + rest.get("allOf", [])
        return rest
    return {k: inline(v, stack) for k, v in schema.items()}


def validate_schema(schema, instance, what):
    full = inline(schema)
    validator = jsonschema.Draft202012Validator(full)
    errors = sorted(validator.iter_errors(instance), key=lambda e: list(e.path))
    if errors:
        lines = ["%s does not match the spec:" % what]
        for e in errors[:5]:
            lines.append("  at %s: %s" % ("/".join(str(p) for p in e.absolute_path) or "(root)",
                                          e.message[:300]))
        lines.append("  instance: %s" % json.dumps(instance)[:800])
        raise AssertionError("\n".join(lines))


def template_of(path):
    """The spec path matching a concrete path (query stripped), or None.
    Literal paths win over templated ones."""
    path = path.split("?", 1)[0]
    if path in SPEC["paths"]:
        return path
    parts = path.split("/")
    for tpl in SPEC["paths"]:
        tparts = tpl.split("/")
        if len(tparts) != len(parts):
            continue
        if all((t.startswith("{") and t.endswith("}") and p) or t == p
               for t, p in zip(tparts, parts)):
            return tpl
    return None


HTTP_METHODS = ("get", "put", "post", "delete", "patch", "head", "options", "trace")


def spec_methods(tpl):
    return sorted(m.upper() for m in SPEC["paths"][tpl] if m in HTTP_METHODS)


def spec_operations():
    """[(template, METHOD)] of every operation in the spec."""
    return [(tpl, m) for tpl in SPEC["paths"] for m in spec_methods(tpl)]


def check_against_spec(method, path, status, headers, data):
    """Asserts that one answer is what the spec documents. Returns the parsed
    JSON body (or the raw bytes when it is not JSON)."""
    response, where = check_head(method, path, status, headers, data)
    content = response.get("content") or {}
    ctype = (headers.get("Content-Type") or "").split(";")[0].strip().lower()
    if method == "HEAD":
        if data:
            raise AssertionError("%s: HEAD answered with a body" % where)
        return None
    if not content:
        if data:
            raise AssertionError("%s: the spec documents no body but one came: %r"
                                 % (where, data[:200]))
        return None
    if ctype not in content:
        raise AssertionError("%s: Content-Type %r is not documented (%s)"
                             % (where, ctype, sorted(content)))
    schema = content[ctype].get("schema")
    if ctype == "application/json":
        try:
            parsed = json.loads(data.decode("utf-8"))
        except (UnicodeDecodeError, ValueError):
            raise AssertionError("%s: body is not JSON: %r" % (where, data[:300]))
        if schema is not None:
            validate_schema(schema, parsed, where)
        return parsed
    return data


def check_head(method, path, status, headers, data=b""):
    """The status line and headers of an answer against the spec (for a
    stream, before its body is read): the documented response object and a
    label for messages. Also checks that the Content-Type is documented."""
    tpl = template_of(path)
    where = "%s %s -> %d" % (method, path, status)
    if tpl is None:
        if status != 404:
            raise AssertionError("%s: the path is not in the spec, so 404 was expected" % where)
        ctype = (headers.get("Content-Type") or "").split(";")[0].strip().lower()
        page = method in ("GET", "HEAD") and not (path + "/").startswith("/api/")
        if page and ctype == "text/html":  # the web app's own "page not found"
            response = deref({"$ref": "#/components/responses/WebPageNotFound"})
        else:
            response = deref({"$ref": "#/components/responses/NotFound"})
    else:
        item = SPEC["paths"][tpl]
        op_method = "get" if method == "HEAD" else method.lower()
        if op_method not in item:
            if status != 405:
                raise AssertionError("%s: %s is not documented for %s, so 405 was expected"
                                     % (where, method, tpl))
            op = item[next(m for m in item if m.lower() in HTTP_METHODS)]
            allow = headers.get("Allow") or ""
            if sorted(a.strip() for a in allow.split(",") if a.strip()) != spec_methods(tpl):
                raise AssertionError("%s: Allow is %r; the spec has %s"
                                     % (where, allow, spec_methods(tpl)))
        else:
            op = item[op_method]
        responses = op["responses"]
        if str(status) not in responses:
            raise AssertionError("%s: status %d is not documented (documented: %s); body %r"
                                 % (where, status, sorted(responses), data[:300]))
        response = deref(responses[str(status)])

    for name, hdr in (response.get("headers") or {}).items():
        hdr = deref(hdr)
        value = headers.get(name)
        if value is None:
            if hdr.get("required"):
                raise AssertionError("%s: required header %s is missing" % (where, name))
            continue
        if "schema" in hdr:
            validate_schema(hdr["schema"], value, "%s header %s" % (where, name))
    content = response.get("content") or {}
    ctype = (headers.get("Content-Type") or "").split(";")[0].strip().lower()
    if content and method != "HEAD" and ctype not in content:
        raise AssertionError("%s: Content-Type %r is not documented (%s)"
                             % (where, ctype, sorted(content)))
    return response, where


# ---- Server-Sent Events -------------------------------------------------------

def parse_sse(text):
    """Blocks of a text/event-stream (text: str, complete blocks only) as
    dicts: {"comment": "keep-alive"}, {"retry": 2000}, or an event
    {"id": int, "event": name, "data": parsed JSON}. Any other line fails."""
    out = []
    for block in text.split("\n\n"):
        if not block:
            continue
        fields = {}
        for line in block.split("\n"):
            if line.startswith(":"):
                fields.setdefault("comment", line[1:].strip())
                continue
            name, sep, value = line.partition(": ")
            if not sep or name not in ("id", "event", "data", "retry") or name in fields:
                raise AssertionError("not an SSE line we send: %r in %r" % (line, block))
            fields[name] = value
        if "retry" in fields:
            if set(fields) != {"retry"} or not fields["retry"].isdigit():
                raise AssertionError("bad retry block %r" % block)
            fields["retry"] = int(fields["retry"])
        elif "comment" in fields:
            if set(fields) != {"comment"}:
                raise AssertionError("a comment mixed with fields: %r" % block)
        else:
            if set(fields) != {"id", "event", "data"} or not fields["id"].isdigit():
                raise AssertionError("an event needs id, event and data: %r" % block)
            fields["id"] = int(fields["id"])
            fields["data"] = json.loads(fields["data"])
        out.append(fields)
    return out


def event_names():
    """{event name: schema ref} the events operation documents."""
    op = SPEC["paths"]["/api/v1/sessions/{id}/events"]["get"]
    return op["responses"]["200"]["content"]["text/event-stream"]["x-events"]


def check_session_event(event):
    """Validates one parsed SSE event against SessionEvent and x-events."""
    what = "event %s (id %s)" % (event.get("event"), event.get("id"))
    names = event_names()
    if event.get("event") not in names:
        raise AssertionError("%s: not a documented event name (%s)" % (what, sorted(names)))
    validate_schema({"$ref": "#/components/schemas/SessionEvent"}, event, what)
    validate_schema(names[event["event"]], event["data"], what + " data")
    return event
