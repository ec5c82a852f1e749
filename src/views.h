/*
 * views.h - the JSON shapes clients see, shared by the HTTP API and group
 * sessions so a film or a participant looks the same everywhere (see
 * api/openapi.json). Every function returns a new reference.
 */
#ifndef FP_VIEWS_H
#define FP_VIEWS_H

#include <jansson.h>
#include <stdint.h>

#include "core/error.h"
#include "film.h"
#include "app/service.h"

/* Film links ("url") are built on this Letterboxd base URL (the configured
 * letterboxd-url; a trailing '/' is dropped). Call once at start, before
 * other threads run; the default is https://letterboxd.com. */
void views_set_letterboxd_url(const char *url);
const char *views_letterboxd_url(void);
/* {"id","title","year","slug","letterboxd_id","url","poster"}: url is the
 * film's page on the configured Letterboxd (or its boxd.it link). */
json_t *view_film(const film *f);
/* "queued" | "fetching" | "ready" | "failed" */
const char *view_part_state(svc_part_state s);
/* null for FP_OK, else {"code","message"} with the message in plain words
 * ("No Letterboxd user called “bob”", ...). */
json_t *view_error(fp_err e, const char *user);
/* RFC 3339 UTC, or null for t <= 0. */
json_t *view_time(int64_t t);
/* A job participant: name, source, status, pages_fetched, pages_total,
 * films, from_store, fetched_at, error, warning. */
json_t *view_part(const svc_part_view *p);

#endif
