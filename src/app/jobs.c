/*
 * jobs.c - jobs: one search over a group's lists, each participant ready from
 * storage or waiting for a fetch task; the job table, waiters with deadlines,
 * the timer, the job memory cap.
 */
#include "app/app_internal.h"


static size_t svc__job_bucket(const char *id)
{
    return (size_t)strtoul(id + 28, NULL, 16) % SVC_JOB_BUCKETS;
}

svc_job *svc__job_find(service *s, const char *id)
{
    if (!id || strlen(id) != 32 || strspn(id, "0123456789abcdef") != 32)
        return NULL;
    for (svc_job *j = s->jobs[svc__job_bucket(id)]; j; j = j->next)
        if (strcmp(j->id, id) == 0)
            return j;
    return NULL;
}

/* A job of n parts, not yet in the table. */
static svc_job *svc__job_new(size_t n)
{
    svc_job *j = fp_calloc(1, sizeof *j);
    j->parts = fp_calloc(n, sizeof *j->parts);
    j->nparts = j->pending = n;
    return j;
}

/* A job that never reached the table. */
static void svc__job_discard(svc_job *j)
{
    fp_free(j->parts);
    fp_free(j);
}

/* Puts j in the job table. s->mu held. */
static void svc__job_insert(service *s, svc_job *j)
{
    size_t b = svc__job_bucket(j->id);
    j->next = s->jobs[b];
    s->jobs[b] = j;
    s->jobs_active++;
}

/* Finished jobs hold their people's lists (as ids) for job-ttl. Past
 * jobs-max-mb the oldest finished ones go first (never one younger than
 * SVC_JOB_GRACE_MS; the job rate limit bounds how many of those one client
 * makes; a poll then answers 404 "no such job (or it expired)"; the lists
 * stay stored, so a new job is answered from storage). s->mu held. */
static void svc__jobs_bound(service *s, const svc_job *keep)
{
    size_t cap = (size_t)s->cfg->jobs_max_mb * 1024u * 1024u;
    long long young = svc__mono_ms() - SVC_JOB_GRACE_MS;
    while (s->jobs_bytes > cap) {
        svc_job **oldest = NULL;
        for (size_t b = 0; b < SVC_JOB_BUCKETS; b++)
            for (svc_job **pp = &s->jobs[b]; *pp; pp = &(*pp)->next)
                if ((*pp)->finished_ms && (*pp)->finished_ms < young && *pp != keep &&
                    (!oldest || (*pp)->finished_ms < (*oldest)->finished_ms))
                    oldest = pp;
        if (!oldest)
            return;
        svc_job *j = *oldest;
        *oldest = j->next;
        s->jobs_bytes -= j->bytes;
        s->jobs_evicted++;
        svc__job_free(j);
    }
}

/* Called with s->mu held when a part reaches READY or FAILED. Moves the
 * job's waiters to *fired when it finishes. */
void svc__part_settled(service *s, svc_job *j, svc_waiter **fired)
{
    if (--j->pending > 0)
        return;
    j->finished_ms = svc__mono_ms();
    s->jobs_active--;
    j->bytes = sizeof *j + j->nparts * sizeof *j->parts;
    for (size_t i = 0; i < j->nparts; i++)
        j->bytes += j->parts[i].nids * sizeof *j->parts[i].ids;
    s->jobs_bytes += j->bytes;
    svc__jobs_bound(s, j);
    for (svc_waiter **pp = &s->waiters; *pp;) {
        svc_waiter *w = *pp;
        if (w->job == j) {
            *pp = w->next;
            w->done = 1;
            w->next = *fired;
            *fired = w;
        } else {
            pp = &w->next;
        }
    }
}

void svc__fire(svc_waiter *w)
{
    while (w) {
        svc_waiter *next = w->next;
        w->fn(w->ud, w->done);
        fp_free(w);
        w = next;
    }
}

/* ---- jobs any instance can answer for ------------------------------------
 * With shared state, the instance that starts a job writes its document
 * "job:<id>" (sealed: it names the participants): who they are and what
 * each part was at the start. Another instance asked about the job adopts
 * it: it builds its own copy from the document, the stored lists and the
 * task documents, and follows the fetches it waits for through the bus like
 * the first one does. */

#define SVC_JOB_DOC_PREFIX "job:"

static void svc__job_doc_name(const char *id, char name[STATE_NAME_MAX + 1])
{
    snprintf(name, STATE_NAME_MAX + 1, "%s%s", SVC_JOB_DOC_PREFIX, id);
}

void svc__job_publish(service *s, const char *id, int64_t created_at, long long created_ms,
                      const svc_person *people, size_t n, const char *kinds, const fp_err *errors)
{
    json_t *parts = json_array();
    for (size_t i = 0; i < n; i++) {
        char hex[2 * VAULT_KEY_BYTES + 1];
        sodium_bin2hex(hex, sizeof hex, people[i].key, VAULT_KEY_BYTES);
        char k[2] = {kinds[i] ? kinds[i] : 'x', 0};
        json_t *o = json_pack("{s:s,s:s,s:s}", "u", people[i].user, "k", hex, "st", k);
        json_object_set_new(o, "s", people[i].src ? json_string(people[i].src->type) : json_null());
        if (kinds[i] == 'x')
            json_object_set_new(o, "e", json_string(fp_err_code(errors[i])));
        json_array_append_new(parts, o);
    }
    json_t *doc = json_pack("{s:I,s:I,s:o}", "c", (json_int_t)created_at, "m",
                            (json_int_t)created_ms, "p", parts);
    char *text = doc ? json_dumps(doc, JSON_COMPACT) : NULL;
    json_decref(doc);
    char name[STATE_NAME_MAX + 1];
    svc__job_doc_name(id, name);
    uint8_t *blob = NULL;
    size_t len = 0;
    fp_err rc = text ? vault_seal_bytes(s->v, name, text, strlen(text), &blob, &len) : FP_NOMEM;
    if (text) {
        sodium_memzero(text, strlen(text));
        free(text);
    }
    if (rc == FP_OK) {
        long ttl_ms = (s->cfg->job_ttl_s + 3600L) * 1000L; /* it may run an hour before it ends */
        rc = s->stb->doc_cas(s->sts, name, 0, blob, len, ttl_ms, NULL);
    }
    fp_free(blob);
    if (rc != FP_OK)
        fp_log(FP_LOG_WARN, "job_unshared", "{s:s}", "error", fp_err_code(rc));
}

/* Builds this instance's copy of a job another instance started. */
static fp_err svc__job_adopt(service *s, const char *id)
{
    char name[STATE_NAME_MAX + 1];
    svc__job_doc_name(id, name);
    uint8_t *blob = NULL, *pt = NULL;
    size_t len = 0, pt_len = 0;
    uint64_t ver = 0;
    fp_err rc = s->stb->doc_get(s->sts, name, &blob, &len, &ver);
    if (rc != FP_OK)
        return rc;
    rc = vault_unseal_bytes(s->v, name, blob, len, &pt, &pt_len);
    fp_free(blob);
    if (rc != FP_OK)
        return rc;
    json_error_t jerr;
    json_t *doc = json_loadb((const char *)pt, pt_len, 0, &jerr);
    sodium_memzero(pt, pt_len);
    fp_free(pt);
    json_t *parts = json_object_get(doc, "p");
    size_t n = json_array_size(parts);
    if (!doc || n == 0) {
        json_decref(doc);
        return FP_CORRUPT;
    }
    svc_job *j = svc__job_new(n);
    j->created_at = (int64_t)json_integer_value(json_object_get(doc, "c"));
    j->created_ms = (long long)json_integer_value(json_object_get(doc, "m"));
    snprintf(j->id, sizeof j->id, "%s", id);
    char *kinds = fp_calloc(n + 1, 1);
    fp_err *errors = fp_calloc(n, sizeof *errors);
    for (size_t i = 0; i < n && rc == FP_OK; i++) {
        json_t *o = json_array_get(parts, i);
        const char *src = json_string_value(json_object_get(o, "s"));
        const char *user = json_string_value(json_object_get(o, "u"));
        const char *kind = json_string_value(json_object_get(o, "st"));
        const char *err = json_string_value(json_object_get(o, "e"));
        svc_person *p = &j->parts[i].person;
        if (!user || !kind)
            rc = FP_CORRUPT;
        else if (src)
            rc = svc_person_parse(s, src, user, 0, p);
        else
            rc = svc_person_import(s, user, p);
        kinds[i] = kind ? kind[0] : 'x';
        errors[i] = err ? fp_err_from_code(err) : FP_INTERNAL;
        j->parts[i].state = SVC_PART_QUEUED;
    }
    json_decref(doc);
    if (rc != FP_OK) {
        fp_free(kinds);
        fp_free(errors);
        svc__job_discard(j);
        return FP_CORRUPT;
    }

    pthread_mutex_lock(&s->mu);
    if (svc__job_find(s, id)) { /* adopted meanwhile by another request */
        pthread_mutex_unlock(&s->mu);
        fp_free(kinds);
        fp_free(errors);
        svc__job_discard(j);
        return FP_OK;
    }
    svc__job_insert(s, j);
    pthread_mutex_unlock(&s->mu);

    for (size_t i = 0; i < n; i++) {
        svc_person p = j->parts[i].person;
        fp_err result = FP_OK;
        int pages = 0;
        int waits = kinds[i] == 'w';
        if (waits && svc__task_ended(s, p.key, j->created_ms, &result, &pages) != FP_OK) {
            svc__task_attach(s, &p, j, i, j->created_ms); /* the bus (or the poll) settles it */
            continue;
        }
        svc_stored st = {0};
        fp_err load_rc = kinds[i] == 'x' ? errors[i] : svc__load(s, p.key, &st);
        svc_waiter *fired = NULL;
        pthread_mutex_lock(&s->mu);
        svc_part *part = &j->parts[i];
        if (load_rc == FP_OK) {
            part->state = SVC_PART_READY;
            part->ids = st.ids;
            part->nids = st.n;
            part->fetched_at = st.fetched_at;
            part->from_store = !waits || result != FP_OK;
            part->warning = waits ? result : FP_OK;
            part->pages_done = part->pages_total = pages;
            st.ids = NULL;
        } else {
            part->state = SVC_PART_FAILED;
            part->error = waits && result != FP_OK ? result : load_rc;
        }
        svc__part_settled(s, j, &fired);
        pthread_mutex_unlock(&s->mu);
        svc__fire(fired);
        svc__stored_free(&st);
    }
    fp_free(kinds);
    fp_free(errors);
    return FP_OK;
}

/* Makes sure this instance knows the job: with shared state, one another
 * instance started is adopted. FP_OK also when there is no such job (the
 * caller's lookup says so); FP_UNAVAILABLE when the shared state could not
 * tell, which callers answer instead of a 404 that would be false. */
fp_err svc__job_ensure(service *s, const char *id)
{
    if (!s->shared_state || !id || strlen(id) != 32 || strspn(id, "0123456789abcdef") != 32)
        return FP_OK;
    pthread_mutex_lock(&s->mu);
    int known = svc__job_find(s, id) != NULL;
    pthread_mutex_unlock(&s->mu);
    if (known)
        return FP_OK;
    fp_err rc = svc__job_adopt(s, id);
    if (rc == FP_OK || rc == FP_NOT_FOUND)
        return FP_OK;
    fp_log(FP_LOG_WARN, "job_adopt_failed", "{s:s}", "error", fp_err_code(rc));
    return FP_UNAVAILABLE;
}

fp_err svc_job_start(service *s, const svc_person *people, size_t n, char job_id[33])
{
    if (n == 0)
        return FP_INVALID;
    svc_job *j = svc__job_new(n);
    j->created_at = svc__now();
    j->created_ms = svc__wall_ms();
    vault_random_token(j->id, 16);

    pthread_mutex_lock(&s->mu);
    if (s->stopping || s->jobs_active >= (size_t)s->cfg->max_jobs) {
        fp_err rc = s->stopping ? FP_UNAVAILABLE : FP_RATE_LIMITED;
        pthread_mutex_unlock(&s->mu);
        svc__job_discard(j);
        return rc;
    }
    svc__job_insert(s, j);
    for (size_t i = 0; i < n; i++) {
        j->parts[i].person = people[i];
        j->parts[i].state = SVC_PART_QUEUED;
    }
    pthread_mutex_unlock(&s->mu);
    snprintf(job_id, 33, "%s", j->id);

    /* What each part was at the start, for the job document other
     * instances read: 'r' ready from storage, 'w' waits for a fetch, 'x'
     * failed (with its error). */
    char *kinds = fp_calloc(n + 1, 1);
    fp_err *errors = fp_calloc(n, sizeof *errors);
    /* The job is reachable now but cannot finish before every part settles:
     * pending counts all parts until each one below is settled. */
    for (size_t i = 0; i < n; i++) {
        const svc_person *p = &people[i];
        svc_stored st = {0};
        fp_err rc = (p->refresh && p->src) ? FP_NOT_FOUND : svc__load(s, p->key, &st);
        if (rc == FP_OK || !p->src) {
            int stale = rc == FP_OK && !svc__is_fresh(s, st.fetched_at);
            svc_waiter *fired = NULL;
            pthread_mutex_lock(&s->mu);
            svc_part *part = &j->parts[i];
            if (rc == FP_OK) {
                part->state = SVC_PART_READY;
                part->ids = st.ids;
                part->nids = st.n;
                part->fetched_at = st.fetched_at;
                part->from_store = 1;
                st.ids = NULL;
                kinds[i] = 'r';
            } else {
                part->state = SVC_PART_FAILED;
                part->error = rc;
                kinds[i] = 'x';
                errors[i] = rc;
            }
            svc__part_settled(s, j, &fired);
            pthread_mutex_unlock(&s->mu);
            svc__fire(fired);
            if (stale && p->src)
                svc__need_fetch(s, p, NULL, 0); /* background refresh */
        } else if (rc == FP_NOT_FOUND) {
            kinds[i] = 'w';
            svc__need_fetch(s, p, j, i);
        } else {
            kinds[i] = 'x';
            errors[i] = rc;
            svc_waiter *fired = NULL;
            pthread_mutex_lock(&s->mu);
            j->parts[i].state = SVC_PART_FAILED;
            j->parts[i].error = rc;
            svc__part_settled(s, j, &fired);
            pthread_mutex_unlock(&s->mu);
            svc__fire(fired);
        }
        svc__stored_free(&st);
    }
    if (s->shared_state)
        svc__job_publish(s, job_id, j->created_at, j->created_ms, people, n, kinds, errors);
    fp_free(kinds);
    fp_free(errors);
    return FP_OK;
}

fp_err svc_job_view_get(service *s, const char *job_id, svc_job_view *out)
{
    memset(out, 0, sizeof *out);
    fp_err known_rc = svc__job_ensure(s, job_id);
    pthread_mutex_lock(&s->mu);
    svc_job *j = svc__job_find(s, job_id);
    if (!j) {
        pthread_mutex_unlock(&s->mu);
        return known_rc != FP_OK ? known_rc : FP_NOT_FOUND;
    }
    snprintf(out->id, sizeof out->id, "%s", j->id);
    out->done = j->pending == 0;
    out->created_at = j->created_at;
    out->nparts = j->nparts;
    out->parts = fp_calloc(j->nparts, sizeof *out->parts);
    for (size_t i = 0; i < j->nparts; i++) {
        const svc_part *p = &j->parts[i];
        svc_part_view *v = &out->parts[i];
        if (p->person.src)
            snprintf(v->user, sizeof v->user, "%s", p->person.user);
        else /* the import id is a bearer token: show only a prefix */
            snprintf(v->user, sizeof v->user, "import:%.8s", p->person.user);
        v->source = p->person.src ? p->person.src->name : "import";
        v->state = p->state;
        v->pages_done = p->pages_done;
        v->pages_total = p->pages_total;
        v->error = p->error;
        v->warning = p->warning;
        v->films = p->nids;
        v->fetched_at = p->fetched_at;
        v->from_store = p->from_store;
    }
    pthread_mutex_unlock(&s->mu);
    return FP_OK;
}

void svc_job_view_free(svc_job_view *v)
{
    FP_FREE(v->parts);
    v->nparts = 0;
}

fp_err svc_job_wait(service *s, const char *job_id, long timeout_ms, svc_wait_fn fn, void *ud)
{
    fp_err known_rc = svc__job_ensure(s, job_id);
    pthread_mutex_lock(&s->mu);
    svc_job *j = svc__job_find(s, job_id);
    if (!j) {
        pthread_mutex_unlock(&s->mu);
        return known_rc != FP_OK ? known_rc : FP_NOT_FOUND;
    }
    if (j->pending == 0) {
        pthread_mutex_unlock(&s->mu);
        fn(ud, 1);
        return FP_OK;
    }
    svc_waiter *w = fp_calloc(1, sizeof *w);
    w->job = j;
    w->fn = fn;
    w->ud = ud;
    w->deadline_ms = svc__mono_ms() + timeout_ms;
    w->next = s->waiters;
    s->waiters = w;
    pthread_cond_signal(&s->timer_cv);
    pthread_mutex_unlock(&s->mu);
    return FP_OK;
}

/* The people of a finished job (copied; *ready[i] = 1 for a READY part).
 * FP_NOT_FOUND, FP_PENDING while it runs. Caller frees both. */
fp_err svc__job_people(service *s, const char *job_id, svc_person **people, int **ready,
                       size_t *n)
{
    *people = NULL;
    *ready = NULL;
    *n = 0;
    fp_err known_rc = svc__job_ensure(s, job_id);
    pthread_mutex_lock(&s->mu);
    svc_job *j = svc__job_find(s, job_id);
    fp_err rc = !j ? (known_rc != FP_OK ? known_rc : FP_NOT_FOUND) : j->pending > 0 ? FP_PENDING
                                                                                  : FP_OK;
    if (rc == FP_OK) {
        *n = j->nparts;
        *people = fp_calloc(j->nparts, sizeof **people);
        *ready = fp_calloc(j->nparts, sizeof **ready);
        for (size_t i = 0; i < j->nparts; i++) {
            (*people)[i] = j->parts[i].person;
            (*ready)[i] = j->parts[i].state == SVC_PART_READY;
        }
    }
    pthread_mutex_unlock(&s->mu);
    return rc;
}

/* ---- timer: waiter deadlines and job expiry ---------------------------- */

void svc__job_free(svc_job *j)
{
    for (size_t i = 0; i < j->nparts; i++)
        fp_free(j->parts[i].ids);
    fp_free(j->parts);
    fp_free(j);
}

void *svc__timer(void *arg)
{
    service *s = arg;
    pthread_mutex_lock(&s->mu);
    /* Stopping, it goes on while fetches still run here (svc_close waits
     * for them), so that their leases stay renewed. */
    while (!s->stopping || s->runs) {
        long long now = svc__mono_ms(), next = now + 1000;
        svc_waiter *fired = NULL;
        for (svc_waiter **pp = &s->waiters; *pp;) {
            svc_waiter *w = *pp;
            if (w->deadline_ms <= now) {
                *pp = w->next;
                w->next = fired;
                fired = w;
            } else {
                if (w->deadline_ms < next)
                    next = w->deadline_ms;
                pp = &w->next;
            }
        }
        long long ttl_ms = s->cfg->job_ttl_s * 1000LL;
        for (size_t b = 0; b < SVC_JOB_BUCKETS; b++)
            for (svc_job **pp = &s->jobs[b]; *pp;) {
                svc_job *j = *pp;
                if (j->finished_ms && now - j->finished_ms > ttl_ms) {
                    *pp = j->next;
                    s->jobs_bytes -= j->bytes;
                    svc__job_free(j);
                } else {
                    pp = &j->next;
                }
            }
        if (fired) {
            pthread_mutex_unlock(&s->mu);
            svc__fire(fired);
            pthread_mutex_lock(&s->mu);
            continue;
        }
        if (!s->upkeep_started && (s->tasks || s->runs) && now - s->tasks_polled_ms >= 1000) {
            s->tasks_polled_ms = now; /* the task documents of old waits, the leases (tasks.c) */
            int stopping = s->stopping;
            pthread_mutex_unlock(&s->mu);
            svc__leases_renew(s); /* first: a slow poll must not let a lease lapse */
            if (!stopping)
                svc__tasks_poll(s);
            pthread_mutex_lock(&s->mu);
            continue;
        }
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        long long wait = next - now;
        ts.tv_sec += wait / 1000;
        ts.tv_nsec += (wait % 1000) * 1000000L;
        if (ts.tv_nsec >= 1000000000L) {
            ts.tv_sec++;
            ts.tv_nsec -= 1000000000L;
        }
        pthread_cond_timedwait(&s->timer_cv, &s->mu, &ts);
    }
    /* Shutting down: release every waiter as timed out. */
    svc_waiter *w = s->waiters;
    s->waiters = NULL;
    pthread_mutex_unlock(&s->mu);
    svc__fire(w);
    return NULL;
}
