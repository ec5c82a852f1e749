#!/usr/bin/env python3
"""Writes the seed corpora of the HTTP fuzz targets: fuzz/corpus/http (raw
requests, one per route and a few framing oddities) and
fuzz/corpus/http_multipart (bodies of POST /api/v1/imports with the boundary
"fuzzboundary"). The JSON body seeds (fuzz/corpus/json_body) are plain files.
Markers {sid} {job} {imp} {csrf} {cookie} are replaced by the harness (http_harness.h).
usage: fuzz/make_seeds.py   (writes its files into the two directories, others
there, such as regression seeds, stay; the output is
deterministic, so an unchanged script leaves git clean)"""
import io
import os
import zipfile

here = os.path.dirname(os.path.abspath(__file__))
out = os.path.join(here, "corpus", "http")
mp_out = os.path.join(here, "corpus", "http_multipart")
os.makedirs(out, exist_ok=True)
H = "Host: 127.0.0.1:8080\r\n"
CK = "Cookie: fp_client={cookie}\r\n"
CS = "X-CSRF-Token: {csrf}\r\n"
# The harness replaces the markers before sending: a Content-Length counts
# the body as sent, with each marker as long as its value.
MARK_LEN = {b"{sid}": 32, b"{job}": 32, b"{imp}": 32, b"{csrf}": 64, b"{cookie}": 64}
def sent_len(b):
    return len(b) + sum(b.count(m) * (n - len(m)) for m, n in MARK_LEN.items())
def req(method, path, body=None, extra="", ctype="application/json"):
    s = f"{method} {path} HTTP/1.1\r\n{H}{extra}"
    if body is not None:
        b = body.encode() if isinstance(body, str) else body
        s = s.encode() + f"Content-Type: {ctype}\r\nContent-Length: {sent_len(b)}\r\n\r\n".encode() + b
        return s
    return (s + "\r\n").encode()
sx = CK + CS
seeds = {
 "healthz": req("GET", "/healthz"),
 "head_healthz": req("HEAD", "/healthz"),
 "metrics": req("GET", "/metrics"),
 "openapi": req("GET", "/openapi.json", extra="Accept-Encoding: gzip, br\r\n"),
 "docs": req("GET", "/docs/"),
 "docs_file": req("GET", "/docs/swagger-ui.css"),
 "web_index": req("GET", "/"),
 "web_session_page": req("GET", "/s/0123456789abcdef"),
 "web_asset": req("GET", "/assets/index-0000.js", extra="Accept-Encoding: br\r\nIf-None-Match: \"x\"\r\n"),
 "web_missing_page": req("GET", "/no/such/page"),
 "robots": req("GET", "/robots.txt"),
 "profile_check": req("GET", "/api/v1/profiles/check?input=https%3A%2F%2Fletterboxd.com%2Falice%2F&source=lb"),
 "profile_check_bad": req("GET", "/api/v1/profiles/check?input=%40al%20ice&source=kp"),
 "jobs_create": req("POST", "/api/v1/jobs", '{"participants":[{"profile":"https://letterboxd.com/alice/"},{"profile":"@carol","refresh":true},{"import":"{imp}"}]}'),
 "job_get": req("GET", "/api/v1/jobs/{job}"),
 "job_results": req("GET", "/api/v1/jobs/{job}/results?limit=2&small=10&most=5"),
 "job_roll": req("POST", "/api/v1/jobs/{job}/roll", '{"veto":[1,3],"seed":7}'),
 "job_watched": req("POST", "/api/v1/jobs/{job}/watched", '{"film_id":2}'),
 "job_unwatched": req("DELETE", "/api/v1/jobs/{job}/watched/2"),
 "compat_scrape": req("POST", "/api/scrape/", '{"usernames":[{"name":"fz0a","type":"LB"},{"name":"https://letterboxd.com/fz0b/","type":"lb","refresh":false}]}'),
 "compat_remove": req("POST", "/api/watchlist/remove", '{"film":"boxd.it/fz05","usernames":[{"name":"fz0a"}]}'),
 "client": req("GET", "/api/v1/client", extra=CK + "X-Forwarded-Proto: https\r\n"),
 "session_create": req("POST", "/api/v1/sessions", "{}", extra=sx + "Origin: http://127.0.0.1:8080\r\n"),
 "session_get": req("GET", "/api/v1/sessions/{sid}"),
 "session_add": req("POST", "/api/v1/sessions/{sid}/participants", '{"profile":"letterboxd.com/carol/watchlist/"}', extra=sx),
 "session_add_import": req("POST", "/api/v1/sessions/{sid}/participants", '{"import":"{imp}","name":"Zo\\u00eb"}', extra=sx),
 "session_remove": req("DELETE", "/api/v1/sessions/{sid}/participants/p2", extra=sx),
 "session_search": req("POST", "/api/v1/sessions/{sid}/search", '{"refresh":false}', extra=sx),
 "session_veto": req("POST", "/api/v1/sessions/{sid}/veto", '{"film_id":1,"vetoed":true}', extra=sx),
 "session_roll": req("POST", "/api/v1/sessions/{sid}/roll", "", extra=sx),
 "session_watched": req("POST", "/api/v1/sessions/{sid}/watched", '{"film_id":3}', extra=sx),
 "session_unwatched": req("DELETE", "/api/v1/sessions/{sid}/watched/3", extra=sx),
 "session_films": req("GET", "/api/v1/sessions/{sid}/films?offset=1&limit=2&q=quiet"),
 "session_events": req("GET", "/api/v1/sessions/{sid}/events", extra="Accept: text/event-stream\r\nLast-Event-ID: 1\r\n"),
 "session_csrf_missing": req("POST", "/api/v1/sessions/{sid}/roll", "{}", extra=CK),
 "poster": req("GET", "/api/v1/films/1/poster"),
 "imports": req("POST", "/api/v1/imports",
     "--xx\r\nContent-Disposition: form-data; name=\"username\"\r\n\r\nfz0c\r\n"
     "--xx\r\nContent-Disposition: form-data; name=\"file\"; filename=\"watchlist.csv\"\r\nContent-Type: text/csv\r\n\r\n"
     "Date,Name,Year,Letterboxd URI\n2024-01-01,Fuzz Harbour,1961,https://boxd.it/fz01\n\r\n--xx--\r\n",
     ctype="multipart/form-data; boundary=xx"),
 "wrong_content_type": req("POST", "/api/v1/jobs", "participants=alice", ctype="application/x-www-form-urlencoded"),
 "method_not_allowed": req("PUT", "/api/v1/jobs/{job}", "{}"),
 "not_found": req("GET", "/api/v1/nope?x=%00%ff"),
 "too_large": (b"POST /api/v1/jobs HTTP/1.1\r\n" + H.encode() + b"Content-Type: application/json\r\nContent-Length: 99999999\r\n\r\n{"),
 "pipelined": req("GET", "/api/v1/jobs/{job}") + req("GET", "/healthz") + req("POST", "/api/v1/jobs/{job}/roll", "{}"),
 "chunked": (b"POST /api/v1/jobs/{job}/roll HTTP/1.1\r\n" + H.encode() + b"Content-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n"
             b"5\r\n{\"see\r\n9\r\nd\":12345}\r\n0\r\n\r\n"),
 "expect_continue": req("POST", "/api/v1/jobs/{job}/watched", '{"film_id":4}', extra="Expect: 100-continue\r\n"),
 "two_lengths": (b"POST /api/v1/jobs/{job}/roll HTTP/1.1\r\n" + H.encode() + b"Content-Type: application/json\r\nContent-Length: 2\r\nContent-Length: 9\r\n\r\n{}"),
 "http10_no_host": b"GET /api/v1/jobs/{job}/results HTTP/1.0\r\n\r\n",
 "absolute_form": req("GET", "http://127.0.0.1:8080/api/v1/jobs/{job}"),
 "keep_alive_close": req("GET", "/healthz", extra="Connection: close\r\n"),
 # 127.0.0.1 is a trusted proxy in the harness: the forwarded client counts
 "forwarded_client": req("GET", "/api/v1/client", extra="X-Forwarded-For: 203.0.113.7, [2001:db8::1]:443\r\nX-Forwarded-For: 198.51.100.2:8080\r\nX-Forwarded-Proto: https\r\n"),
 "forwarded_session_create": req("POST", "/api/v1/sessions", "{}", extra=sx + "X-Forwarded-For: 2001:db8:1:2::7\r\nX-Forwarded-Proto: https\r\nOrigin: https://127.0.0.1:8080\r\n"),
 "host_not_allowed": req("GET", "/api/v1/jobs/{job}", extra="Host: rebind.evil.example\r\n").replace(b"Host: 127.0.0.1:8080\r\n", b"", 1),
}
for k, v in seeds.items():
    with open(os.path.join(out, k), "wb") as f:
        f.write(v if isinstance(v, bytes) else v.encode())

# ---- multipart bodies of POST /api/v1/imports (boundary "fuzzboundary") ----
os.makedirs(mp_out, exist_ok=True)
B = "--fuzzboundary"
CSV = "Date,Name,Year,Letterboxd URI\n2024-01-01,Fuzz Harbour,1961,https://boxd.it/fz01\n2024-01-02,\"Noon, Again\",2003,https://boxd.it/fz04\n"
def part(name, value, filename=None, ctype=None):
    v = value.encode() if isinstance(value, str) else value
    h = f'{B}\r\nContent-Disposition: form-data; name="{name}"' + (f'; filename="{filename}"' if filename else "") + "\r\n"
    if ctype:
        h += f"Content-Type: {ctype}\r\n"
    return h.encode() + b"\r\n" + v + b"\r\n"
END = (B + "--\r\n").encode()
zbuf = io.BytesIO()
with zipfile.ZipFile(zbuf, "w", zipfile.ZIP_DEFLATED) as z:
    for name, text in (("watchlist.csv", CSV), ("profile.csv", "Date Joined,Username\n2020-01-01,fz0z\n")):
        z.writestr(zipfile.ZipInfo(name, date_time=(2024, 1, 1, 0, 0, 0)), text,
                   compress_type=zipfile.ZIP_DEFLATED)
mp = {
 "csv": part("file", CSV, "watchlist.csv", "text/csv") + END,
 "csv_user": part("username", "fz0m") + part("file", CSV, "watchlist.csv", "text/csv") + END,
 "csv_user_source": part("source", "letterboxd") + part("username", "https://letterboxd.com/fz0n/") + part("file", CSV, "watchlist.csv") + END,
 "zip": part("file", zbuf.getvalue(), "letterboxd-export.zip", "application/zip") + END,
 "bad_user": part("username", "not a user!") + part("file", CSV, "watchlist.csv") + END,
 "kinopoisk": part("source", "kp") + part("username", "fz0k") + part("file", CSV, "watchlist.csv") + END,
 "no_file": part("username", "fz0q") + END,
 "empty_file": part("file", "", "watchlist.csv") + END,
 "long_user": part("username", "u" * 600) + part("file", CSV, "watchlist.csv") + END,
 "unterminated": part("file", CSV, "watchlist.csv")[:-2],
 "not_an_export": part("file", b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR", "poster.png", "image/png") + END,
 "header_rows_only": part("file", "Date,Name,Year,Letterboxd URI\n", "watchlist.csv") + END,
 "row_errors": part("file", "Date,Name,Year,Letterboxd URI\n2024-01-01,,1961,https://boxd.it/fz01\n2024-01-01,Caf\u00e9,19x1,nope\n2024-01-02,Fuzz Harbour,1961,https://boxd.it/fz01\n", "watchlist.csv") + END,
 "preamble_and_epilogue": b"preamble\r\n" + part("file", CSV, "w.csv") + END + b"epilogue",
 "mixed": (f'{B}\r\nContent-Disposition: form-data; name="file"\r\nContent-Type: multipart/mixed; boundary=inner\r\n\r\n'
           f'--inner\r\nContent-Disposition: file; filename="watchlist.csv"\r\n\r\n{CSV}\r\n--inner--\r\n').encode() + END,
}
for k, v in mp.items():
    with open(os.path.join(mp_out, k), "wb") as f:
        f.write(v)
print(f"{len(seeds)} requests in {out}, {len(mp)} multipart bodies in {mp_out}")
