/*
 * api_v1.c - the versioned API for new clients (documented in
 * api/openapi.json):
 *   POST /api/v1/jobs                 start a group search -> 202 job
 *   GET  /api/v1/jobs/{id}            progress per participant
 *   GET  /api/v1/jobs/{id}/results    common films, then those on most lists
 *   POST /api/v1/jobs/{id}/roll       one film at random, minus vetoes
 *   POST /api/v1/jobs/{id}/watched    remove a film from everyone's lists
 *   POST /api/v1/imports              upload a Letterboxd export
 *   GET  /api/v1/profiles/check       validate what a person typed
 * A job is a group session's search: the web app's sessions build on it.
 */
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "core/mem.h"
#include "http/http_internal.h"
#include "views.h"

#define V1_ALL_FAILED                                                                              \
    "no participant's watchlist could be read; GET /api/v1/jobs/{id} gives each one's error"

static json_t *v1__job_json(const svc_job_view *v)
{
    json_t *parts = json_array();
    for (size_t i = 0; i < v->nparts; i++)
        json_array_append_new(parts, view_part(&v->parts[i]));
    char *self = fp_printf("/api/v1/jobs/%s", v->id);
    char *results = fp_printf("/api/v1/jobs/%s/results", v->id);
    json_t *o = json_pack("{s:s,s:s,s:o,s:o,s:{s:s,s:s}}", "id", v->id, "status",
                          v->done ? "done" : "running", "created_at", view_time(v->created_at),
                          "participants", parts, "links", "self", self, "results", results);
    fp_free(self);
    fp_free(results);
    return o;
}

enum MHD_Result api_v1_jobs_create(http_req *r)
{
    json_t *body = NULL;
    enum MHD_Result res = http__body_or_error(r, &body);
    if (!body)
        return res;
    service *svc = r->srv->svc;
    json_t *arr = json_object_get(body, "participants");
    size_t n = json_array_size(arr);
    svc_person *people = NULL;
    if (!json_is_array(arr) || n == 0) {
        res = http__error(r, FP_INVALID,
                          "'participants' must be a non-empty array of "
                          "{\"profile\": \"https://letterboxd.com/alice/\"} or {\"import\": id}",
                          NULL);
        goto out;
    }
    if (n > (size_t)r->srv->cfg->max_participants) {
        char *msg = fp_printf("%zu participants; at most %ld are allowed", n,
                              r->srv->cfg->max_participants);
        res = http__error(r, FP_TOO_MANY, msg, NULL);
        fp_free(msg);
        goto out;
    }
    people = fp_calloc(n, sizeof *people);
    for (size_t i = 0; i < n; i++) {
        json_t *p = json_array_get(arr, i);
        json_t *profile = json_object_get(p, "profile"), *imp = json_object_get(p, "import");
        json_t *source = json_object_get(p, "source"), *refresh = json_object_get(p, "refresh");
        char *msg = NULL;
        fp_err rc;
        if (!json_is_object(p) || (!json_is_string(profile) && !json_is_string(imp)) ||
            (source && !json_is_string(source)) || (refresh && !json_is_boolean(refresh))) {
            rc = FP_INVALID;
            msg = fp_printf("participants[%zu] must be {\"profile\": string, \"source\"?: string, "
                            "\"refresh\"?: boolean} or {\"import\": string}",
                            i);
        } else if (json_is_string(imp)) {
            rc = svc_person_import(svc, json_string_value(imp), &people[i]);
            if (rc != FP_OK)
                msg = fp_printf("participants[%zu]: no import with that id", i);
        } else {
            rc = http__person(svc, source ? json_string_value(source) : "lb",
                              json_string_value(profile), json_is_true(refresh), i, &people[i],
                              &msg);
        }
        if (rc != FP_OK) {
            res = http__error(r, rc, msg, json_pack("{s:i}", "participant", (int)i));
            fp_free(msg);
            goto out;
        }
    }
    char id[33];
    size_t cost = svc_fetch_cost(svc, people, n);
    long long retry_ms = 0;
    http_rl_class out_of = HTTP_RL_JOB;
    if (http__rate_take_job(r, NULL, (double)cost, &retry_ms, &out_of) != FP_OK) {
        res = http__rate_limited(r, out_of, retry_ms);
        goto out;
    }
    fp_err rc = svc_job_start(svc, people, n, id);
    if (rc != FP_OK) {
        res = http__error(r, rc, NULL, NULL);
        goto out;
    }
    svc_job_view v;
    rc = svc_job_view_get(svc, id, &v);
    if (rc != FP_OK) {
        res = http__error(r, rc, NULL, NULL);
        goto out;
    }
    struct MHD_Response *resp = http__json_response(r, v1__job_json(&v));
    char *loc = fp_printf("/api/v1/jobs/%s", id);
    MHD_add_response_header(resp, "Location", loc);
    fp_free(loc);
    svc_job_view_free(&v);
    res = http__queue(r, 202, resp);
out:
    fp_free(people);
    json_decref(body);
    return res;
}

enum MHD_Result api_v1_job_get(http_req *r)
{
    svc_job_view v;
    fp_err rc = svc_job_view_get(r->srv->svc, r->params[0], &v);
    if (rc != FP_OK)
        return http__error(r, rc, rc == FP_NOT_FOUND ? "no such job (or it expired)" : NULL,
                           NULL);
    enum MHD_Result res = http__json(r, 200, v1__job_json(&v));
    svc_job_view_free(&v);
    return res;
}

static json_t *v1__films_json(const svc_result_film *fs, size_t n, int with_count)
{
    json_t *arr = json_array();
    for (size_t i = 0; i < n; i++) {
        json_t *o = view_film(&fs[i].film);
        if (with_count)
            json_object_set_new(o, "lists", json_integer(fs[i].count));
        json_array_append_new(arr, o);
    }
    return arr;
}

enum MHD_Result api_v1_job_results(http_req *r)
{
    long limit = http__query_long(r, "limit", 500, 100000);
    long small = http__query_long(r, "small", 10, 100000);
    long most = http__query_long(r, "most", 50, 10000);
    if (limit < 0 || small < 0 || most < 0)
        return http__error(r, FP_INVALID,
                           "'limit', 'small' and 'most' must be non-negative integers", NULL);
    svc_results res;
    fp_err rc = svc_job_results(r->srv->svc, r->params[0], (size_t)small, (size_t)most, &res);
    if (rc == FP_PENDING)
        return http__error(r, FP_CONFLICT,
                           "the job is still fetching; follow GET /api/v1/jobs/{id} until done",
                           NULL);
    if (rc == FP_CONFLICT)
        return http__error(r, rc, V1_ALL_FAILED, NULL);
    if (rc != FP_OK)
        return http__error(r, rc, rc == FP_NOT_FOUND ? "no such job (or it expired)" : NULL,
                           NULL);
    size_t shown = res.ncommon < (size_t)limit ? res.ncommon : (size_t)limit;
    json_t *o = json_pack("{s:I,s:I,s:I,s:o,s:o}", "participants", (json_int_t)res.participants,
                          "failed", (json_int_t)res.failed, "common_count",
                          (json_int_t)res.ncommon, "common", v1__films_json(res.common, shown, 0),
                          "most", v1__films_json(res.most, res.nmost, 1));
    svc_results_free(&res);
    return http__json(r, 200, o);
}

/* Reads an optional array of film ids. 0 on a type error. */
static int v1__ids(json_t *arr, int64_t **out, size_t *n)
{
    *out = NULL;
    *n = 0;
    if (!arr || json_is_null(arr))
        return 1;
    if (!json_is_array(arr) || json_array_size(arr) > 100000)
        return 0;
    size_t len = json_array_size(arr);
    int64_t *ids = fp_malloc((len ? len : 1) * sizeof *ids);
    for (size_t i = 0; i < len; i++) {
        json_t *v = json_array_get(arr, i);
        if (!json_is_integer(v)) {
            fp_free(ids);
            return 0;
        }
        ids[i] = json_integer_value(v);
    }
    *out = ids;
    *n = len;
    return 1;
}

enum MHD_Result api_v1_job_roll(http_req *r)
{
    json_t *body = NULL;
    enum MHD_Result res = http__body_or_error(r, &body);
    if (!body)
        return res;
    int64_t *veto = NULL;
    size_t nveto = 0;
    json_t *seed_j = json_object_get(body, "seed");
    if (!v1__ids(json_object_get(body, "veto"), &veto, &nveto) ||
        (seed_j && !json_is_integer(seed_j) && !json_is_null(seed_j))) {
        json_decref(body);
        return http__error(r, FP_INVALID,
                           "'veto' must be an array of film ids and 'seed' an integer", NULL);
    }
    uint64_t seed = json_is_integer(seed_j) ? (uint64_t)json_integer_value(seed_j) : 0;
    film f;
    fp_err rc = svc_job_roll(r->srv->svc, r->params[0], veto, nveto,
                             json_is_integer(seed_j) ? &seed : NULL, &f);
    fp_free(veto);
    json_decref(body);
    if (rc == FP_OK) {
        res = http__json(r, 200, json_pack("{s:o}", "film", view_film(&f)));
        film_clear(&f);
        return res;
    }
    if (rc == FP_PENDING)
        return http__error(r, FP_CONFLICT, "the job is still fetching", NULL);
    if (rc == FP_CONFLICT)
        return http__error(r, rc, V1_ALL_FAILED, NULL);
    if (rc == FP_NOT_FOUND) {
        svc_job_view v;
        if (svc_job_view_get(r->srv->svc, r->params[0], &v) != FP_OK)
            return http__error(r, FP_NOT_FOUND, "no such job (or it expired)", NULL);
        svc_job_view_free(&v);
        return http__error(r, FP_CONFLICT, "nothing left to roll: every film was struck out",
                           NULL);
    }
    return http__error(r, rc, NULL, NULL);
}

typedef fp_err (*v1_watch_fn)(service *s, const char *job_id, int64_t film_id, int *flags,
                              size_t n);

/* "watched" and its undo on a job: per participant, in the job's order,
 * {"name", key: whether it changed for them}. */
static enum MHD_Result v1__job_watch(http_req *r, int64_t film_id, v1_watch_fn fn,
                                     const char *key)
{
    svc_job_view v;
    fp_err rc = svc_job_view_get(r->srv->svc, r->params[0], &v);
    if (rc != FP_OK)
        return http__error(r, rc, "no such job (or it expired)", NULL);
    int *flags = fp_calloc(v.nparts ? v.nparts : 1, sizeof *flags);
    rc = fn(r->srv->svc, r->params[0], film_id, flags, v.nparts);
    enum MHD_Result res;
    if (rc == FP_OK) {
        json_t *arr = json_array();
        for (size_t i = 0; i < v.nparts; i++)
            json_array_append_new(arr, json_pack("{s:s,s:b}", "name", v.parts[i].user, key,
                                                 flags[i]));
        res = http__json(r, 200, json_pack("{s:I,s:o}", "film_id", (json_int_t)film_id,
                                           "participants", arr));
    } else {
        res = http__error(r, rc == FP_PENDING ? FP_CONFLICT : rc,
                          rc == FP_PENDING ? "the job is still fetching" : NULL, NULL);
    }
    fp_free(flags);
    svc_job_view_free(&v);
    return res;
}

enum MHD_Result api_v1_job_watched(http_req *r)
{
    json_t *body = NULL;
    enum MHD_Result res = http__body_or_error(r, &body);
    if (!body)
        return res;
    json_t *fid = json_object_get(body, "film_id");
    if (!json_is_integer(fid) || json_integer_value(fid) <= 0) {
        json_decref(body);
        return http__error(r, FP_INVALID, "'film_id' must be a positive integer", NULL);
    }
    int64_t film_id = json_integer_value(fid);
    json_decref(body);
    return v1__job_watch(r, film_id, svc_job_watched, "removed");
}

enum MHD_Result api_v1_job_unwatched(http_req *r)
{
    int64_t film_id = http__path_id(r->params[1]);
    if (!film_id)
        return http__error(r, FP_INVALID, "the film id must be a positive integer", NULL);
    return v1__job_watch(r, film_id, svc_job_unwatched, "restored");
}

enum MHD_Result api_v1_imports(http_req *r)
{
    /* Destroying the post processor flushes its last buffered bytes; MHD_NO
     * means the multipart body ended early. */
    if (MHD_destroy_post_processor(r->pp) != MHD_YES && !r->body_error)
        r->body_error = FP_INVALID;
    r->pp = NULL;
    if (r->body_error)
        return http__error(r, r->body_error,
                           r->body_message ? r->body_message : "the upload could not be read",
                           NULL);
    if (!r->upload_name && r->upload.len == 0)
        return http__error(r, FP_INVALID, "no 'file' field in the upload", NULL);
    svc_person person, *who = NULL;
    if (r->form_user && *r->form_user) {
        char *msg = NULL;
        fp_err rc = http__person(r->srv->svc, r->form_source ? r->form_source : "lb",
                                 r->form_user, 0, HTTP_NO_INDEX, &person, &msg);
        if (rc != FP_OK) {
            enum MHD_Result res = http__error(r, rc, msg, NULL);
            fp_free(msg);
            return res;
        }
        who = &person;
    }
    svc_import_report rep; /* (its rate limit was taken before the body: server.c) */
    fp_err rc = svc_import(r->srv->svc, who, (const unsigned char *)r->upload.data, r->upload.len,
                           r->upload_name, &rep);
    enum MHD_Result res;
    if (rc == FP_OK) {
        json_t *errs = json_array();
        for (size_t i = 0; i < rep.detail.nerrors; i++) {
            const import_row_error *e = &rep.detail.errors[i];
            json_t *o = json_pack("{s:I,s:s}", "line", (json_int_t)e->line, "reason", e->reason);
            json_object_set_new(o, "title", e->title ? json_string(e->title) : json_null());
            json_object_set_new(o, "year", e->year ? json_integer(e->year) : json_null());
            json_array_append_new(errs, o);
        }
        json_t *participant =
            who ? json_pack("{s:s,s:s}", "source", "letterboxd", "profile", person.user)
                : json_pack("{s:s}", "import", rep.token);
        json_t *o = json_pack("{s:{s:o,s:o,s:s,s:I,s:I,s:o,s:I}}", "import", "id",
                              who ? json_null() : json_string(rep.token), "participant",
                              participant, "format", rep.format ? rep.format : "unknown", "films",
                              (json_int_t)rep.films, "watched", (json_int_t)rep.watched,
                              "row_errors", errs, "row_errors_total",
                              (json_int_t)rep.detail.nerrors_total);
        res = http__json(r, 201, o);
    } else if (rc == FP_EMPTY_WATCHLIST) {
        res = http__error(r, rc, "the file holds no films", NULL);
    } else {
        /* invalid_import_file, payload_too_large, too_many_new_films say why */
        res = http__error(r, rc, rep.detail.message, NULL);
    }
    svc_import_report_free(&rep);
    return res;
}

enum MHD_Result api_v1_profile_check(http_req *r)
{
    const char *input = MHD_lookup_connection_value(r->conn, MHD_GET_ARGUMENT_KIND, "input");
    const char *source = MHD_lookup_connection_value(r->conn, MHD_GET_ARGUMENT_KIND, "source");
    if (!input)
        return http__error(r, FP_INVALID, "the 'input' query parameter is required", NULL);
    svc_person p;
    char *msg = NULL;
    fp_err rc = http__person(r->srv->svc, source ? source : "lb", input, 0, HTTP_NO_INDEX, &p,
                             &msg);
    json_t *o;
    if (rc == FP_OK)
        o = json_pack("{s:b,s:s,s:s}", "valid", 1, "source", p.src->name, "username", p.user);
    else
        o = json_pack("{s:b,s:{s:s,s:s}}", "valid", 0, "error", "code", fp_err_code(rc),
                      "message", msg ? msg : fp_err_message(rc));
    fp_free(msg);
    return http__json(r, 200, o);
}

/* ---- posters ------------------------------------------------------------ */

static void v1__poster_done(void *ud, fp_err rc, const poster_image *img)
{
    http_req *r = ud;
    struct MHD_Response *resp;
    int status = 200;
    if (rc == FP_OK) {
        resp = MHD_create_response_from_buffer(img->len, (void *)img->data, MHD_RESPMEM_MUST_COPY);
        MHD_add_response_header(resp, "Content-Type", img->type);
        MHD_add_response_header(resp, "Cache-Control", "public, max-age=86400");
        MHD_add_response_header(resp, "X-Request-Id", r->id);
        http__security_headers(resp, NULL);
    } else {
        const char *msg = NULL;
        switch (rc) {
        case FP_NOT_FOUND:
            msg = "no poster is known for this film";
            break;
        case FP_FORMAT:
            msg = "the image host's answer is not a poster image (or is too large)";
            break;
        case FP_UPSTREAM:
            msg = "Letterboxd's image host is not answering";
            break;
        case FP_UPSTREAM_LIMITED:
            msg = "Letterboxd's image host is rate-limiting us";
            break;
        case FP_TIMEOUT:
            msg = "Letterboxd's image host timed out";
            break;
        case FP_UNAVAILABLE:
            msg = "too many posters are being fetched, or the server is shutting down; retry "
                  "shortly";
            break;
        default:
            break;
        }
        resp = http__json_response(r, http__error_body(rc, msg));
        status = fp_err_http_status(rc);
        if (status == 503)
            MHD_add_response_header(resp, "Retry-After", "5");
    }
    http__resume(r, status, resp);
}

enum MHD_Result api_v1_film_poster(http_req *r)
{
    const char *id = r->params[0];
    size_t len = strlen(id);
    if (len == 0 || len > 18 || strspn(id, "0123456789") != len || id[0] == '0')
        return http__error(r, FP_NOT_FOUND, "no such film", NULL);
    int64_t film_id = (int64_t)strtoll(id, NULL, 10);
    http__suspend(r); /* answered by v1__poster_done, now or from the fetch thread */
    svc_poster(r->srv->svc, film_id, v1__poster_done, r);
    return MHD_YES;
}
