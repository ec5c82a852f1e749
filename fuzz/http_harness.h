/*
 * http_harness.h - the real FilmPicker HTTP server, started once inside a
 * fuzz target, and a client that sends it raw bytes over loopback TCP.
 *
 * We do not parse HTTP or multipart ourselves: libmicrohttpd does (its post
 * processor calls our http__post_iter), so our handling of both is fuzzed
 * through the real server: the request line, headers and body reach
 * libmicrohttpd exactly as a client would send them, then our routing, body
 * limits, JSON and multipart handling and every route.
 *
 * The service runs on an in-memory SQLite database with a fixed key, the
 * Letterboxd URLs point at 127.0.0.1:9 (nothing listens there: a fetch fails
 * at once), and fixtures are prepared so that requests can reach deep
 * states: two people with stored lists that share films, a finished job and
 * a searched session of theirs, an import id and a client cookie with its
 * CSRF token. A request names them with markers that are replaced before it
 * is sent: {sid} the session id, {job} the job id, {imp} the import id (32
 * hex digits each), {cookie} the server-issued fp_client cookie of the
 * browser id FZ_HTTP_CLIENT and {csrf} its CSRF token (64 each); a seed's
 * Content-Length counts the body as sent, with the values in place
 * (fuzz/make_seeds.py). The fixtures are made again every FZ_HTTP_EPOCH
 * inputs (or 30 s, within the session TTL of 60 s), so that what earlier
 * inputs changed (a participant removed, a film marked watched) does not
 * close the deep states for good. Rate limits are off and the session caps
 * raised (every input comes from 127.0.0.1); the connection and body limits
 * are the defaults, except a 1 MiB upload limit and a 5 s request timeout.
 * 127.0.0.1 is a trusted proxy, so X-Forwarded-For and X-Forwarded-Proto in
 * an input are read as from a reverse proxy.
 *
 * The answer is checked: a 500 anywhere, or an answer of our handlers on an
 * /api/ path that is not JSON (or JSON with the internal_error code), is a
 * bug, since a client's mistake must never be a server error; the target
 * then prints the request and the answer and aborts. Answers that
 * libmicrohttpd makes itself (no X-Request-Id: a malformed request line, a
 * header too large) are its own and only held to the no-500 rule.
 */
#ifndef FP_FUZZ_HTTP_HARNESS_H
#define FP_FUZZ_HTTP_HARNESS_H

#include <stddef.h>
#include <stdint.h>

#define FZ_HTTP_CLIENT "0123456789abcdef0123456789abcdef"
#define FZ_HTTP_EPOCH 1000

/* Starts the service, the sessions and the server on 127.0.0.1 (a free
 * port) and makes the fixtures; aborts when it cannot (a fuzz target with no
 * server would fuzz nothing). Stops everything at exit. */
void fz_http_init(void);

/* Sends one request, markers expanded, on a new connection and checks the
 * first answer. Returns the answer's status, 0 when none came in time (an
 * incomplete request: the server waits for more). */
int fz_http_request(const uint8_t *data, size_t size);
/* The same without expanding markers (the bytes are sent as they are). */
int fz_http_send(const uint8_t *req, size_t len);

#endif
