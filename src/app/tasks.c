/*
 * tasks.c - fetch tasks: at most one fetch of a person's list at a time in
 * the whole system, queued to the job queue, run by a worker of some process
 * (svc__handle_job), with its progress and its end told to every process.
 *
 * The truth about a person's fetch is the task document "task:<key hex>" in
 * the shared state (state.h): queued, fetching (pages done of total, why a
 * page is being tried again) or done (result, time). Only the process whose
 * compare-and-set turns it to "queued" publishes the fetch, so two requests
 * (or instances) asking for the same person at once queue one. The worker
 * holds the lease "lease:fetch:<key hex>" while it fetches; another worker
 * handed the same person (a redelivery after a crash, a duplicate) waits for
 * the lease and then finds the work done. Every change of the document is
 * also an event on the bus stream, which every process reads (svc__bus_main):
 * that is how the jobs waiting in this process hear of progress and of the
 * end, wherever the fetch ran. The timer also reads the documents of the
 * tasks this process waits on now and then, so a lost event only delays.
 *
 * Locally, s->tasks holds one entry per person this process waits for, with
 * the (job, part) listeners to settle; it is guarded by s->mu.
 *
 * Queued jobs carry the person's source and username sealed with the vault
 * (vault_seal_bytes, label "fetch"): the broker holds no plain username.
 */
#include "app/app_internal.h"

#include "state/state.h"

#define SVC_TASK_PREFIX "task:"
#define SVC_LEASE_PREFIX "lease:fetch:"
#define SVC_TASK_TTL_MS (6L * 3600 * 1000) /* a task document outlives any job */
#define SVC_TASK_STALE_MS (10L * 60 * 1000) /* queued or fetching this long without news: lost */
#define SVC_LEASE_POLL_MS 100L             /* a worker waiting for another's lease */
#define SVC_LEASE_WAIT_MARGIN_MS 10000L    /* ...gives up (retry later) after two leases and this */
#define SVC_BUS "bus"
#define SVC_BUS_MAXLEN 100000
#define SVC_BUS_BLOCK_MS 500L
#define SVC_TASK_POLL_MS 2000L             /* the timer reads the documents of old waits */

/* ---- task documents ---------------------------------------------------- */

typedef struct svc_taskdoc {
    char state;           /* 'q' queued, 'f' fetching, 'd' done */
    long long queued_ms;  /* wall clock: when the fetch now queued or running was asked */
    long long updated_ms; /* the last change */
    int pages_done, pages_total;
    fp_err retrying;      /* a page is being tried again for this reason */
    fp_err result;        /* done: the fetch's result */
    long long ended_ms;   /* done: when */
} svc_taskdoc;

static void svc__key_hex(const uint8_t key[VAULT_KEY_BYTES], char hex[2 * VAULT_KEY_BYTES + 1])
{
    sodium_bin2hex(hex, 2 * VAULT_KEY_BYTES + 1, key, VAULT_KEY_BYTES);
}

static void svc__task_name(const uint8_t key[VAULT_KEY_BYTES], const char *prefix,
                           char out[STATE_NAME_MAX + 1])
{
    char hex[2 * VAULT_KEY_BYTES + 1];
    svc__key_hex(key, hex);
    snprintf(out, STATE_NAME_MAX + 1, "%s%s", prefix, hex);
}

static json_t *svc__taskdoc_json(const svc_taskdoc *d)
{
    char st[2] = {d->state, 0};
    json_t *o = json_pack("{s:s,s:I,s:I,s:i,s:i}", "s", st, "q", (json_int_t)d->queued_ms, "u",
                          (json_int_t)d->updated_ms, "d", d->pages_done, "t", d->pages_total);
    if (o && d->retrying != FP_OK)
        json_object_set_new(o, "w", json_string(fp_err_code(d->retrying)));
    if (o && d->state == 'd') {
        json_object_set_new(o, "r", json_string(fp_err_code(d->result)));
        json_object_set_new(o, "e", json_integer((json_int_t)d->ended_ms));
    }
    return o;
}

/* Reads the fields of a task document (or of a bus event, which carries
 * the same ones). FP_CORRUPT when it is not one. */
static fp_err svc__taskdoc_from(json_t *o, svc_taskdoc *d)
{
    memset(d, 0, sizeof *d);
    const char *st = json_string_value(json_object_get(o, "s"));
    if (!st || (st[0] != 'q' && st[0] != 'f' && st[0] != 'd') || st[1])
        return FP_CORRUPT;
    d->state = st[0];
    d->queued_ms = (long long)json_integer_value(json_object_get(o, "q"));
    d->updated_ms = (long long)json_integer_value(json_object_get(o, "u"));
    d->pages_done = (int)json_integer_value(json_object_get(o, "d"));
    d->pages_total = (int)json_integer_value(json_object_get(o, "t"));
    const char *w = json_string_value(json_object_get(o, "w"));
    d->retrying = w ? fp_err_from_code(w) : FP_OK;
    const char *r = json_string_value(json_object_get(o, "r"));
    d->result = r ? fp_err_from_code(r) : FP_OK;
    d->ended_ms = (long long)json_integer_value(json_object_get(o, "e"));
    return FP_OK;
}

/* FP_NOT_FOUND (with *version 0) when there is none. */
static fp_err svc__taskdoc_get(service *s, const uint8_t key[VAULT_KEY_BYTES], svc_taskdoc *d,
                               uint64_t *version)
{
    char name[STATE_NAME_MAX + 1];
    svc__task_name(key, SVC_TASK_PREFIX, name);
    uint8_t *val = NULL;
    size_t len = 0;
    *version = 0;
    memset(d, 0, sizeof *d);
    fp_err rc = s->stb->doc_get(s->sts, name, &val, &len, version);
    if (rc != FP_OK)
        return rc;
    json_error_t jerr;
    json_t *o = json_loadb((const char *)val, len, 0, &jerr);
    fp_free(val);
    rc = o ? svc__taskdoc_from(o, d) : FP_CORRUPT;
    json_decref(o);
    return rc;
}

/* Tells every process (the bus) what the document now says. */
static void svc__bus_task(service *s, const uint8_t key[VAULT_KEY_BYTES], const svc_taskdoc *d)
{
    if (!s->shared_state)
        return; /* one process: the worker tells the waits itself, nobody reads a bus */
    json_t *o = svc__taskdoc_json(d);
    char hex[2 * VAULT_KEY_BYTES + 1];
    svc__key_hex(key, hex);
    if (o) {
        json_object_set_new(o, "k", json_string("task"));
        json_object_set_new(o, "p", json_string(hex));
        json_object_set_new(o, "o", json_string(s->instance));
    }
    char *text = o ? json_dumps(o, JSON_COMPACT) : NULL;
    json_decref(o);
    if (!text)
        return;
    fp_err rc = s->stb->stream_add(s->sts, SVC_BUS, NULL, text, strlen(text), SVC_BUS_MAXLEN, 0,
                                   NULL);
    free(text);
    if (rc != FP_OK)
        atomic_fetch_add(&s->bus_send_failures, 1); /* the timer's poll catches up */
}

/* Compare-and-set of the document, and the bus event when it was written. */
static fp_err svc__taskdoc_put(service *s, const uint8_t key[VAULT_KEY_BYTES], const svc_taskdoc *d,
                               uint64_t expect, uint64_t *version)
{
    char name[STATE_NAME_MAX + 1];
    svc__task_name(key, SVC_TASK_PREFIX, name);
    json_t *o = svc__taskdoc_json(d);
    char *text = o ? json_dumps(o, JSON_COMPACT) : NULL;
    json_decref(o);
    if (!text)
        return FP_NOMEM;
    fp_err rc = s->stb->doc_cas(s->sts, name, expect, text, strlen(text), SVC_TASK_TTL_MS, version);
    free(text);
    if (rc == FP_OK)
        svc__bus_task(s, key, d);
    return rc;
}

/* Moves the document to `next` whatever it holds now (a worker's writes:
 * only the lease holder writes while it fetches, so a conflict is a reader
 * that raced and the next try wins). */
static fp_err svc__taskdoc_set(service *s, const uint8_t key[VAULT_KEY_BYTES],
                               const svc_taskdoc *next)
{
    fp_err rc = FP_CONFLICT;
    for (int i = 0; i < SVC_CAS_TRIES && rc == FP_CONFLICT; i++) {
        svc_taskdoc cur;
        uint64_t ver = 0;
        rc = svc__taskdoc_get(s, key, &cur, &ver);
        if (rc != FP_OK && rc != FP_NOT_FOUND && rc != FP_CORRUPT)
            return rc;
        rc = svc__taskdoc_put(s, key, next, ver, NULL);
    }
    return rc;
}

/* ---- this process's waits ---------------------------------------------- */

static svc_task *svc__task_find(service *s, const uint8_t key[VAULT_KEY_BYTES])
{
    for (svc_task *t = s->tasks; t; t = t->next)
        if (memcmp(t->person.key, key, VAULT_KEY_BYTES) == 0)
            return t;
    return NULL;
}

static void svc__changed_add(svc_changed *c, const svc_job *j)
{
    for (size_t i = 0; i < c->n; i++)
        if (strcmp(c->ids[i], j->id) == 0)
            return;
    if (c->n < sizeof c->ids / sizeof c->ids[0])
        snprintf(c->ids[c->n++], sizeof c->ids[0], "%s", j->id);
}

static void svc__announce(service *s, const svc_changed *c)
{
    pthread_rwlock_rdlock(&s->listen_lock);
    for (size_t i = 0; s->job_listener && i < c->n; i++)
        s->job_listener(s->job_listener_ud, c->ids[i]);
    pthread_rwlock_unlock(&s->listen_lock);
}

void svc_set_job_listener(service *s, svc_job_fn fn, void *ud)
{
    pthread_rwlock_wrlock(&s->listen_lock);
    s->job_listener = fn;
    s->job_listener_ud = ud;
    pthread_rwlock_unlock(&s->listen_lock);
}

/* Progress of a fetch this process waits for: pages read (retrying FP_OK),
 * or a page failed and is tried again, which the participants see as a
 * warning until the next page is read. */
static void svc__task_progress(service *s, const uint8_t key[VAULT_KEY_BYTES], const svc_taskdoc *d)
{
    svc_changed changed = {.n = 0};
    pthread_mutex_lock(&s->mu);
    svc_task *t = svc__task_find(s, key);
    if (t && (d->pages_done > t->pages_done || d->pages_total != t->pages_total ||
              d->retrying != t->retrying)) {
        if (d->pages_done >= t->pages_done) {
            t->pages_done = d->pages_done;
            t->pages_total = d->pages_total;
        }
        t->retrying = d->retrying;
        for (svc_listener *l = t->listeners; l; l = l->next) {
            svc_part *p = &l->job->parts[l->part];
            p->state = SVC_PART_FETCHING;
            p->pages_done = t->pages_done;
            p->pages_total = t->pages_total;
            p->warning = t->retrying;
            svc__changed_add(&changed, l->job);
        }
    }
    pthread_mutex_unlock(&s->mu);
    svc__announce(s, &changed);
}

/* The fetch this process waited for ended with rc (anywhere): every
 * listener gets the list now stored, or the stored copy with rc as a
 * warning, or fails with rc when there is none. */
static void svc__task_settle(service *s, const uint8_t key[VAULT_KEY_BYTES], fp_err rc,
                             int pages_total)
{
    pthread_mutex_lock(&s->mu);
    int waiting = svc__task_find(s, key) != NULL;
    pthread_mutex_unlock(&s->mu);
    if (!waiting)
        return;
    svc_stored st = {0};
    fp_err load_rc = svc__load(s, key, &st);

    svc_waiter *fired = NULL;
    svc_changed changed = {.n = 0};
    pthread_mutex_lock(&s->mu);
    svc_task *t = NULL;
    for (svc_task **pp = &s->tasks; *pp; pp = &(*pp)->next)
        if (memcmp((*pp)->person.key, key, VAULT_KEY_BYTES) == 0) {
            t = *pp;
            *pp = t->next;
            break;
        }
    while (t && t->listeners) {
        svc_listener *l = t->listeners;
        t->listeners = l->next;
        svc_part *part = &l->job->parts[l->part];
        if (load_rc == FP_OK) {
            part->state = SVC_PART_READY;
            part->warning = rc;
            part->error = FP_OK;
            part->ids = fp_malloc((st.n ? st.n : 1) * sizeof *st.ids);
            if (st.n)
                memcpy(part->ids, st.ids, st.n * sizeof *st.ids);
            part->nids = st.n;
            part->fetched_at = st.fetched_at;
            part->from_store = rc != FP_OK;
            if (part->pages_total == 0)
                part->pages_done = part->pages_total = pages_total;
        } else {
            part->state = SVC_PART_FAILED;
            part->error = rc != FP_OK ? rc : load_rc;
            part->warning = FP_OK;
        }
        svc__changed_add(&changed, l->job);
        svc__part_settled(s, l->job, &fired);
        fp_free(l);
    }
    pthread_mutex_unlock(&s->mu);
    fp_free(t);
    svc__stored_free(&st);
    svc__fire(fired);
    svc__announce(s, &changed);
}

/* What the document says to the waits of this process: progress, or the
 * end of a fetch asked for at or after the wait began. */
static void svc__task_news(service *s, const uint8_t key[VAULT_KEY_BYTES], const svc_taskdoc *d)
{
    if (d->state == 'f') {
        svc__task_progress(s, key, d);
        return;
    }
    if (d->state != 'd')
        return;
    pthread_mutex_lock(&s->mu);
    svc_task *t = svc__task_find(s, key);
    int ours = t && d->ended_ms >= t->since_ms;
    pthread_mutex_unlock(&s->mu);
    if (ours)
        svc__task_settle(s, key, d->result, d->pages_total);
}

/* ---- queueing a fetch ---------------------------------------------------- */

static fp_err svc__task_payload(service *s, const svc_person *p, long long queued_ms,
                                uint8_t **out, size_t *out_len)
{
    json_t *o = json_pack("{s:s,s:s,s:I}", "src", p->src->type, "user", p->user, "q",
                          (json_int_t)queued_ms);
    char *text = o ? json_dumps(o, JSON_COMPACT) : NULL;
    json_decref(o);
    if (!text)
        return FP_NOMEM;
    fp_err rc = vault_seal_bytes(s->v, "fetch", text, strlen(text), out, out_len);
    sodium_memzero(text, strlen(text));
    free(text);
    return rc;
}

/* Makes sure a fetch of p is queued or running somewhere: joins the one the
 * task document shows, or turns the document to "queued" and publishes the
 * job. The progress it shows is handed to the local waits. */
static fp_err svc__task_queue(service *s, const svc_person *p)
{
    fp_err rc = FP_CONFLICT;
    for (int i = 0; i < SVC_CAS_TRIES && rc == FP_CONFLICT; i++) {
        svc_taskdoc cur;
        uint64_t ver = 0;
        rc = svc__taskdoc_get(s, p->key, &cur, &ver);
        if (rc != FP_OK && rc != FP_NOT_FOUND && rc != FP_CORRUPT)
            return rc;
        long long now = svc__wall_ms();
        if (rc == FP_OK && (cur.state == 'q' || cur.state == 'f') &&
            now - cur.updated_ms < SVC_TASK_STALE_MS) {
            if (cur.state == 'f')
                svc__task_progress(s, p->key, &cur);
            return FP_OK; /* joins it */
        }
        svc_taskdoc next = {.state = 'q', .queued_ms = now, .updated_ms = now};
        rc = svc__taskdoc_put(s, p->key, &next, ver, NULL);
        if (rc != FP_OK)
            continue;
        uint8_t *payload = NULL;
        size_t len = 0;
        rc = svc__task_payload(s, p, now, &payload, &len);
        if (rc == FP_OK)
            rc = s->qb->submit(s->q, (const char *)payload, len);
        fp_free(payload);
        if (rc != FP_OK) {
            /* Not queued: the document says so, so nobody waits for it. */
            svc_taskdoc failed = next;
            failed.state = 'd';
            failed.result = rc;
            failed.ended_ms = failed.updated_ms = svc__wall_ms();
            if (svc__taskdoc_set(s, p->key, &failed) != FP_OK)
                fp_log(FP_LOG_WARN, "task_state_unwritten", NULL);
        }
        return rc;
    }
    return rc == FP_CONFLICT ? FP_UNAVAILABLE : rc;
}

/* Attaches (job, part) (j may be NULL) to this process's wait for the
 * person's fetch, which began at since_ms (wall clock) or now; 1 when the
 * wait is new. Called without s->mu. */
int svc__task_attach(service *s, const svc_person *p, svc_job *j, size_t part, long long since_ms)
{
    int created = 0;
    pthread_mutex_lock(&s->mu);
    svc_task *t = svc__task_find(s, p->key);
    if (!t) {
        t = fp_calloc(1, sizeof *t);
        t->person = *p;
        t->since_ms = since_ms ? since_ms : svc__wall_ms();
        t->polled_ms = svc__mono_ms();
        t->next = s->tasks;
        s->tasks = t;
        created = 1;
    } else if (since_ms && since_ms < t->since_ms) {
        t->since_ms = since_ms;
    }
    if (j) {
        svc_listener *l = fp_calloc(1, sizeof *l);
        l->job = j;
        l->part = part;
        l->next = t->listeners;
        t->listeners = l;
        int started = t->pages_total || t->retrying != FP_OK;
        j->parts[part].state = started ? SVC_PART_FETCHING : SVC_PART_QUEUED;
        j->parts[part].pages_done = t->pages_done;
        j->parts[part].pages_total = t->pages_total;
        j->parts[part].warning = t->retrying;
    }
    pthread_mutex_unlock(&s->mu);
    return created;
}

/* Attaches (job, part) to this process's wait for the person's fetch,
 * making sure the fetch is queued when this is the first wait. Called
 * without s->mu. */
void svc__need_fetch(service *s, const svc_person *p, svc_job *j, size_t part)
{
    if (!svc__task_attach(s, p, j, part, 0))
        return;
    fp_err rc = svc__task_queue(s, p);
    if (rc != FP_OK)
        svc__task_settle(s, p->key, rc, 0); /* not queued: the stored copy or the error, now */
}

/* The end of the person's fetch begun at or after since_ms, when the task
 * document already says so: FP_OK with its result in *result. */
fp_err svc__task_ended(service *s, const uint8_t key[VAULT_KEY_BYTES], long long since_ms,
                       fp_err *result, int *pages_total)
{
    svc_taskdoc d;
    uint64_t ver = 0;
    fp_err rc = svc__taskdoc_get(s, key, &d, &ver);
    if (rc != FP_OK)
        return rc;
    if (d.state != 'd' || d.ended_ms < since_ms)
        return FP_PENDING;
    *result = d.result;
    *pages_total = d.pages_total;
    return FP_OK;
}

/* ---- running a fetch (a worker) ------------------------------------------ */

struct svc_run {
    struct svc_run *next; /* s->runs, under s->mu */
    service *s;
    const uint8_t *key;
    svc_taskdoc doc;
    char lease[STATE_NAME_MAX + 1];
    char token[33];
    long long renewed_ms; /* under s->mu once registered */
};

static void svc__run_register(service *s, svc_run *r)
{
    pthread_mutex_lock(&s->mu);
    r->renewed_ms = svc__mono_ms();
    r->next = s->runs;
    s->runs = r;
    pthread_mutex_unlock(&s->mu);
}

static void svc__run_unregister(service *s, svc_run *r)
{
    pthread_mutex_lock(&s->mu);
    for (svc_run **pp = &s->runs; *pp; pp = &(*pp)->next)
        if (*pp == r) {
            *pp = r->next;
            break;
        }
    pthread_mutex_unlock(&s->mu);
}

/* The timer's: renews the leases of the fetches running here every third
 * of a lease, however long a page takes. */
void svc__leases_renew(service *s)
{
    enum { MAX = 64 };
    char names[MAX][STATE_NAME_MAX + 1], tokens[MAX][33];
    size_t n = 0;
    long long now = svc__mono_ms();
    pthread_mutex_lock(&s->mu);
    for (svc_run *r = s->runs; r && n < MAX; r = r->next)
        if (now - r->renewed_ms >= s->cfg->fetch_lease_ms / 3) {
            r->renewed_ms = now;
            memcpy(names[n], r->lease, sizeof names[n]);
            memcpy(tokens[n], r->token, sizeof tokens[n]);
            n++;
        }
    pthread_mutex_unlock(&s->mu);
    for (size_t i = 0; i < n; i++)
        if (s->stb->lease_renew(s->sts, names[i], tokens[i], s->cfg->fetch_lease_ms) != FP_OK)
            fp_log(FP_LOG_WARN, "fetch_lease_lost", NULL); /* the commit is idempotent */
}

/* A page was read, or one failed and is tried again. */
static void svc__run_progress(void *ud, int done, int total, fp_err retrying)
{
    svc_run *r = ud;
    if (retrying == FP_OK) {
        r->doc.pages_done = done;
        r->doc.pages_total = total;
    } else if (r->doc.retrying == retrying) {
        return; /* said already */
    }
    r->doc.retrying = retrying;
    r->doc.updated_ms = svc__wall_ms();
    if (svc__taskdoc_set(r->s, r->key, &r->doc) != FP_OK)
        atomic_fetch_add(&r->s->bus_send_failures, 1);
    svc__task_progress(r->s, r->key, &r->doc); /* this process's waits at once */
}

/* Fetches one person's list and stores it. Runs on a worker (or the CLI). */
fp_err svc__fetch_and_store(service *s, const svc_person *p, source_progress_fn progress,
                            void *ud)
{
    film_list films;
    int64_t *ids = NULL;
    size_t n = 0;
    long long t0 = svc__mono_ms();
    fp_err rc = p->src->fetch(&s->env, p->user, progress, ud, &films);
    if (rc == FP_OK) {
        rc = svc__resolve(s, &films, SIZE_MAX, &ids, &n, NULL);
        if (rc == FP_OK)
            rc = svc__store_fresh(s, p->key, ids, n, svc__now(), &n, NULL);
        film_list_free(&films);
    }
    fp_free(ids);
    if (rc != FP_OK)
        metrics_fetch_error(rc);
    fp_log(rc == FP_OK ? FP_LOG_INFO : FP_LOG_WARN, "watchlist_fetch", "{s:s,s:s,s:i,s:I}",
           "source", p->src->name, "result", fp_err_code(rc), "films", (int)n, "ms",
           (json_int_t)(svc__mono_ms() - t0));
    return rc;
}

/* Whether a failed fetch is worth running again later: only when the list
 * could not be committed for a reason of ours (storage or shared state
 * away). The site's own failures were already retried with backoff by the
 * fetch client, and a person's (no such user, private list, refused) will
 * not change: those end the job. */
static int svc__retry_later(fp_err rc)
{
    return rc == FP_STORAGE || rc == FP_UNAVAILABLE || rc == FP_NOMEM;
}

/* Takes the person's lease, waiting while another worker holds it. */
static fp_err svc__lease_wait(service *s, svc_run *r)
{
    long long start = svc__mono_ms();
    long long give_up = 2LL * s->cfg->fetch_lease_ms + SVC_LEASE_WAIT_MARGIN_MS;
    int waited = 0;
    for (;;) {
        fp_err rc = s->stb->lease_take(s->sts, r->lease, r->token, s->cfg->fetch_lease_ms);
        if (rc != FP_CONFLICT) {
            if (waited)
                atomic_fetch_add(&s->lease_waits, 1);
            if (rc == FP_OK)
                svc__run_register(s, r);
            return rc;
        }
        waited = 1;
        if (svc__stopping(s) || svc__mono_ms() - start > give_up)
            return FP_UNAVAILABLE;
        struct timespec ts = {0, SVC_LEASE_POLL_MS * 1000000L};
        nanosleep(&ts, NULL);
    }
}

queue_verdict svc__handle_job(void *ctx, queue_delivery *d)
{
    service *s = ctx;
    queue_verdict verdict = QUEUE_DONE;
    svc_person p;
    memset(&p, 0, sizeof p);
    uint8_t *pt = NULL;
    size_t pt_len = 0;
    json_t *o = NULL;
    const char *src = NULL, *user = NULL;
    json_int_t queued_ms = 0;
    if (vault_unseal_bytes(s->v, "fetch", (const uint8_t *)d->payload, d->len, &pt, &pt_len) !=
        FP_OK) {
        fp_log(FP_LOG_ERROR, "job_payload_invalid", "{s:s}", "why", "does not open");
        snprintf(d->reason, sizeof d->reason, "payload does not open with this server key");
        return QUEUE_GIVE_UP;
    }
    json_error_t jerr;
    o = json_loadb((const char *)pt, pt_len, 0, &jerr);
    sodium_memzero(pt, pt_len);
    fp_free(pt);
    if (!o || json_unpack(o, "{s:s,s:s,s:I}", "src", &src, "user", &user, "q", &queued_ms) != 0 ||
        svc_person_parse(s, src, user, 1, &p) != FP_OK) {
        fp_log(FP_LOG_ERROR, "job_payload_invalid", "{s:s}", "why", "not a fetch job");
        snprintf(d->reason, sizeof d->reason, "payload is not a fetch job");
        json_decref(o);
        return QUEUE_GIVE_UP;
    }
    json_decref(o);

    svc_run run = {.s = s, .key = p.key};
    svc__task_name(p.key, SVC_LEASE_PREFIX, run.lease);
    vault_random_token(run.token, 16);

    /* A job still queued at shutdown is not started: the waits get the
     * stored copy, or FP_UNAVAILABLE, at once (in process); on a broker it
     * stays queued for another worker. */
    if (svc__stopping(s)) {
        if (s->remote_queue) {
            snprintf(d->reason, sizeof d->reason, "worker stopping");
            return QUEUE_RETRY;
        }
        svc_taskdoc end = {.state = 'd', .queued_ms = queued_ms, .result = FP_UNAVAILABLE};
        end.ended_ms = end.updated_ms = svc__wall_ms();
        if (svc__taskdoc_set(s, p.key, &end) != FP_OK)
            fp_log(FP_LOG_WARN, "task_state_unwritten", NULL);
        svc__task_news(s, p.key, &end);
        return QUEUE_DONE;
    }

    fp_err rc = svc__lease_wait(s, &run);
    if (rc != FP_OK) {
        snprintf(d->reason, sizeof d->reason, "fetch lease: %s", fp_err_code(rc));
        return QUEUE_RETRY;
    }
    /* Done since this job was queued (by the worker that held the lease,
     * or by this job's earlier delivery that died before its ack). */
    svc_taskdoc cur;
    uint64_t ver = 0;
    rc = svc__taskdoc_get(s, p.key, &cur, &ver);
    if (rc == FP_OK && cur.state == 'd' && cur.ended_ms >= queued_ms &&
        !svc__retry_later(cur.result)) {
        atomic_fetch_add(&s->fetches_skipped, 1);
        goto out;
    }

    run.doc = (svc_taskdoc){.state = 'f', .queued_ms = queued_ms, .updated_ms = svc__wall_ms()};
    if (rc == FP_OK && cur.state == 'f' && cur.queued_ms == queued_ms) {
        run.doc.pages_done = cur.pages_done; /* a redelivery: the pages counted so far */
        run.doc.pages_total = cur.pages_total;
    }
    if (svc__taskdoc_set(s, p.key, &run.doc) != FP_OK)
        atomic_fetch_add(&s->bus_send_failures, 1);
    rc = svc__fetch_and_store(s, &p, svc__run_progress, &run);

    svc_taskdoc end = run.doc;
    end.state = 'd';
    end.retrying = FP_OK;
    end.result = rc;
    end.ended_ms = end.updated_ms = svc__wall_ms();
    if (end.pages_total == 0)
        end.pages_done = end.pages_total = 1; /* a list that fitted on its first page */
    fp_err set_rc = svc__taskdoc_set(s, p.key, &end);
    svc__task_news(s, p.key, &end); /* this process's waits at once; others by the bus */
    /* A worker stopping no longer retries pages (fetch_client_drain): a
     * fetch that failed then goes back to the broker for another worker. */
    if (rc != FP_OK && s->remote_queue && svc__stopping(s)) {
        verdict = QUEUE_RETRY;
        snprintf(d->reason, sizeof d->reason, "worker stopping");
    } else if (svc__retry_later(rc) || (set_rc != FP_OK && s->remote_queue)) {
        verdict = QUEUE_RETRY;
        snprintf(d->reason, sizeof d->reason, "%s",
                 fp_err_code(svc__retry_later(rc) ? rc : set_rc));
    }
out:
    svc__run_unregister(s, &run);
    if (s->stb->lease_drop(s->sts, run.lease, run.token) != FP_OK)
        fp_log(FP_LOG_WARN, "fetch_lease_unreleased", NULL); /* it expires by itself */
    return verdict;
}

/* ---- the bus: what the other processes did ------------------------------- */

static int svc__bus_event(void *ud, const state_event *ev)
{
    service *s = ud;
    json_error_t jerr;
    json_t *o = json_loadb((const char *)ev->val, ev->len, 0, &jerr);
    const char *kind = json_string_value(json_object_get(o, "k"));
    const char *hex = json_string_value(json_object_get(o, "p"));
    const char *origin = json_string_value(json_object_get(o, "o"));
    uint8_t key[VAULT_KEY_BYTES];
    size_t klen = 0;
    svc_taskdoc d;
    if (kind && strcmp(kind, "task") == 0 && hex &&
        sodium_hex2bin(key, sizeof key, hex, strlen(hex), NULL, &klen, NULL) == 0 &&
        klen == sizeof key && svc__taskdoc_from(o, &d) == FP_OK) {
        /* A list stored by another process: this one's decoded copy and
         * group memo are out of date. */
        if (d.state == 'd' && d.result == FP_OK && origin && strcmp(origin, s->instance) != 0)
            svc__list_changed(s, key);
        svc__task_news(s, key, &d);
    } else if (kind && strcmp(kind, "sess") == 0) {
        pthread_rwlock_rdlock(&s->listen_lock);
        if (s->session_bus)
            s->session_bus(s->session_bus_ud, (const char *)ev->val, ev->len);
        pthread_rwlock_unlock(&s->listen_lock);
    }
    json_decref(o);
    return 0;
}

fp_err svc_bus_send(service *s, const char *json, size_t len)
{
    fp_err rc = s->stb->stream_add(s->sts, SVC_BUS, NULL, json, len, SVC_BUS_MAXLEN, 0, NULL);
    if (rc != FP_OK)
        atomic_fetch_add(&s->bus_send_failures, 1);
    return rc;
}

void *svc__bus_main(void *arg)
{
    service *s = arg;
    char last[STATE_ID_MAX] = "$";
    while (!svc__stopping(s)) {
        fp_err rc = s->stb->stream_read(s->sts, SVC_BUS, last, 256, SVC_BUS_BLOCK_MS,
                                        svc__bus_event, s, last);
        if (rc != FP_OK) {
            atomic_fetch_add(&s->bus_read_failures, 1);
            struct timespec ts = {0, 250 * 1000000L};
            nanosleep(&ts, NULL);
        }
    }
    return NULL;
}

/* With shared state: every second, the leases of the fetches running here
 * renewed, then the task documents of old waits polled. Its own thread, so
 * a slow Redis or broker never holds up the timer's waiter deadlines. While
 * stopping it goes on as long as fetches still run here. */
void *svc__upkeep_main(void *arg)
{
    service *s = arg;
    pthread_mutex_lock(&s->mu);
    while (!s->stopping || s->runs) {
        int stopping = s->stopping;
        int busy = s->tasks || s->runs;
        pthread_mutex_unlock(&s->mu);
        if (busy) {
            svc__leases_renew(s); /* first: a slow poll must not let a lease lapse */
            if (!stopping)
                svc__tasks_poll(s);
        }
        pthread_mutex_lock(&s->mu);
        if (s->stopping && !s->runs)
            break;
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        ts.tv_sec += 1;
        pthread_cond_timedwait(&s->upkeep_cv, &s->mu, &ts);
    }
    pthread_mutex_unlock(&s->mu);
    return NULL;
}

/* The safety net: the documents of the waits older than a poll
 * interval, so a bus event lost (the state server restarted, a send
 * failed) delays a wait instead of leaving it forever. */
void svc__tasks_poll(service *s)
{
    enum { MAX = 64 };
    uint8_t keys[MAX][VAULT_KEY_BYTES];
    size_t n = 0;
    long long now = svc__mono_ms();
    pthread_mutex_lock(&s->mu);
    for (svc_task *t = s->tasks; t && n < MAX; t = t->next)
        if (now - t->polled_ms >= SVC_TASK_POLL_MS) {
            t->polled_ms = now;
            memcpy(keys[n++], t->person.key, VAULT_KEY_BYTES);
        }
    pthread_mutex_unlock(&s->mu);
    for (size_t i = 0; i < n; i++) {
        svc_taskdoc d;
        uint64_t ver = 0;
        fp_err rc = svc__taskdoc_get(s, keys[i], &d, &ver);
        if (rc == FP_OK && d.state == 'd') {
            /* This wait began more than a poll ago and no fetch is queued
             * or running for the person: the one it waited for has ended
             * (its end may have come just before the wait by another
             * process's clock). */
            svc__task_settle(s, keys[i], d.result, d.pages_total);
            continue;
        }
        if (rc == FP_OK && s->remote_queue &&
            svc__wall_ms() - d.updated_ms >= SVC_TASK_STALE_MS) {
            /* Queued or fetching without news for this long: it was lost
             * (dead-lettered, or every worker is stuck). The waits here end
             * with the stored copy, or the error. */
            fp_log(FP_LOG_WARN, "task_stale", NULL);
            svc__task_settle(s, keys[i], FP_UNAVAILABLE, 0);
            continue;
        }
        if (rc == FP_OK) {
            svc__task_news(s, keys[i], &d);
            continue;
        }
        if (rc == FP_CORRUPT) {
            /* A document nobody can read will not heal by itself: the
             * waits end with the stored copy, or the error. */
            fp_log(FP_LOG_WARN, "task_doc_corrupt", NULL);
            svc__task_settle(s, keys[i], FP_UNAVAILABLE, 0);
            continue;
        }
        if (rc != FP_NOT_FOUND)
            continue; /* away: next time */
        /* No document although this process waits (it expired, or the
         * state server lost it): queue the fetch again. */
        svc_person p;
        int found = 0;
        pthread_mutex_lock(&s->mu);
        svc_task *t = svc__task_find(s, keys[i]);
        if (t) {
            p = t->person;
            found = 1;
        }
        pthread_mutex_unlock(&s->mu);
        if (found && svc__task_queue(s, &p) != FP_OK)
            svc__task_settle(s, keys[i], FP_UNAVAILABLE, 0);
    }
}

size_t svc_fetch_cost(service *s, const svc_person *people, size_t n)
{
    size_t cost = 0;
    for (size_t i = 0; i < n; i++) {
        const svc_person *p = &people[i];
        if (!p->src)
            continue; /* an upload: nothing to fetch */
        pthread_mutex_lock(&s->mu);
        int in_flight = svc__task_find(s, p->key) != NULL;
        pthread_mutex_unlock(&s->mu);
        if (in_flight)
            continue; /* joins the fetch already running */
        if (p->refresh) {
            cost++;
            continue;
        }
        svc_stored st = {0};
        fp_err rc = svc__load(s, p->key, &st);
        if (rc == FP_NOT_FOUND || (rc == FP_OK && !svc__is_fresh(s, st.fetched_at)))
            cost++;
        svc__stored_free(&st);
    }
    return cost;
}
