/*
 * service.c - the application core's front door: opens the backends the
 * configuration names (storage, cache, queue, fetch client, vault, posters),
 * starts and stops the timer and sweeper threads, stats and health
 * (readiness is ready.c).
 */
#include "app/app_internal.h"

/* Whether svc_close has begun: long work (a sweep) checks it between steps. */
int svc__stopping(service *s)
{
    pthread_mutex_lock(&s->mu);
    int stop = s->stopping;
    pthread_mutex_unlock(&s->mu);
    return stop;
}

/* ---- posters ---------------------------------------------------------- */

/* The poster path of a catalogue film, fresh from storage (a page may have
 * given a newer image since the film was cached). */
static fp_err svc__poster_path(void *ud, int64_t film_id, char **path)
{
    service *s = ud;
    film_list l;
    film_list_init(&l);
    fp_err rc = s->sb->films_load(s->st, &film_id, 1, &l);
    if (rc == FP_OK) {
        if (l.len == 1 && l.items[0].poster && film_poster_path_ok(l.items[0].poster)) {
            *path = l.items[0].poster;
            l.items[0].poster = NULL;
        } else {
            rc = FP_NOT_FOUND;
        }
    }
    film_list_free(&l);
    return rc;
}

void svc_poster(service *s, int64_t film_id, poster_done_fn done, void *ud)
{
    poster_get(s->posters, film_id, done, ud);
}

void svc_posters_abort(service *s)
{
    poster_proxy_abort(s->posters);
}

/* ---- lifecycle --------------------------------------------------------- */

fp_err svc_open(const fp_config *cfg, svc_role role, service **out)
{
    vault_kek *kek = NULL;
    *out = NULL;
    service *s = fp_calloc(1, sizeof *s);
    s->cfg = cfg;
    pthread_mutex_init(&s->mu, NULL);
    pthread_cond_init(&s->timer_cv, NULL);
    pthread_cond_init(&s->upkeep_cv, NULL);
    pthread_cond_init(&s->sweep_cv, NULL);
    pthread_cond_init(&s->ready_cv, NULL);
    pthread_mutex_init(&s->film_mu, NULL);
    pthread_mutex_init(&s->sweep_mu, NULL);
    pthread_rwlock_init(&s->hot_lock, NULL);
    pthread_rwlock_init(&s->who_lock, NULL);
    pthread_rwlock_init(&s->listen_lock, NULL);
    fp_err rc = FP_CRYPTO;
    if (sodium_init() < 0)
        goto fail;
    crypto_shorthash_keygen(s->who_hkey);
    /* The server key first (a bad key fails before the database is touched),
     * then the database, then the data key stored in it, which the vault's
     * sub-keys derive from (datakey.h): a server key that does not open it
     * stops the start here. */
    rc = vault_kek_open(cfg->secret_key, cfg->secret_key_file, VAULT_KEK_CREATE, &kek);
    if (rc != FP_OK) {
        fp_log(FP_LOG_ERROR, "vault_open_failed", "{s:s}", "error", fp_err_code(rc));
        goto fail;
    }
    rc = store_open(cfg->database, &s->sb, &s->st);
    if (rc != FP_OK) {
        fp_log(FP_LOG_ERROR, "store_open_failed", "{s:s,s:s}", "error", fp_err_code(rc),
               "message", fp_err_message(rc));
        goto fail;
    }
    rc = s->sb->migrate(s->st, -1);
    if (rc != FP_OK) {
        fp_log(FP_LOG_ERROR, "migrate_failed", "{s:s}", "error", fp_err_code(rc));
        goto fail;
    }
    char *shown = store_url_redacted(cfg->database); /* logged: never the password */
    rc = datakey_open(kek, s->sb, s->st, shown, &s->v, NULL);
    fp_free(shown);
    vault_kek_free(&kek);
    if (rc != FP_OK) {
        fp_log(FP_LOG_ERROR, "vault_open_failed", "{s:s}", "error", fp_err_code(rc));
        goto fail;
    }
    /* The shared state follows the cache unless set: a Redis cache means
     * several processes, so their state is shared through it too. */
    const char *state_url = cfg_shared_url(cfg, cfg->state);
    s->stb = state_backend_for(state_url);
    if (!s->stb) {
        fp_log(FP_LOG_ERROR, "unknown_state_backend", "{s:s}", "state", state_url);
        rc = FP_INVALID;
        goto fail;
    }
    rc = s->stb->open(state_url, &s->sts);
    if (rc != FP_OK) {
        fp_log(FP_LOG_ERROR, "state_open_failed", "{s:s}", "error", fp_err_code(rc));
        goto fail;
    }
    s->shared_state = s->stb != &state_backend_inproc;
    vault_random_token(s->instance, 16);
    s->cb = cache_backend_for(cfg->cache);
    if (!s->cb) {
        fp_log(FP_LOG_ERROR, "unknown_cache_backend", "{s:s}", "cache", cfg->cache);
        rc = FP_INVALID;
        goto fail;
    }
    rc = s->cb->open(cfg->cache, &s->ca);
    if (rc != FP_OK)
        goto fail;
    size_t blen = strlen(cfg->letterboxd_url);
    while (blen > 0 && cfg->letterboxd_url[blen - 1] == '/')
        blen--;
    s->base_url = fp_strndup(cfg->letterboxd_url, blen);
    views_set_letterboxd_url(s->base_url);
    fetch_options fo = {
        .max_per_host = cfg->host_concurrency,
        .timeout_ms = cfg->fetch_timeout_ms,
        .retries = cfg->fetch_retries,
        .backoff_ms = cfg->fetch_backoff_ms,
        .retry_after_max_ms = cfg->retry_after_max_ms,
        .max_body = 8u * 1024u * 1024u,
        .user_agent = cfg->user_agent,
        /* Several workers keep the per-host limit together. */
        .sem = s->shared_state ? s->stb : NULL,
        .sem_state = s->shared_state ? s->sts : NULL,
        .sem_prefix = "sem:host:",
    };
    rc = fetch_client_new(&fo, &s->fetch);
    if (rc != FP_OK)
        goto fail;
    s->env = (source_env){s->fetch, s->base_url, cfg->max_pages};
    poster_config pc = {
        .image_base = cfg->letterboxd_image_url,
        .fetch = s->fetch,
        .cb = s->cb,
        .ca = s->ca,
        .lookup = svc__poster_path,
        .lookup_ud = s,
        .ttl_s = SVC_POSTER_TTL_S,
        .missing_ttl_s = SVC_POSTER_MISSING_TTL_S,
        .max_bytes = SVC_POSTER_MAX_BYTES,
    };
    rc = poster_proxy_new(&pc, &s->posters);
    if (rc != FP_OK)
        goto fail;
    s->qb = queue_backend_for(cfg->queue);
    if (!s->qb) {
        fp_log(FP_LOG_ERROR, "unknown_queue_backend", "{s:s}", "queue", cfg->queue);
        rc = FP_INVALID;
        goto fail;
    }
    s->remote_queue = s->qb != &queue_backend_inproc;
    if (s->remote_queue && !s->shared_state) {
        /* Workers elsewhere could never tell this process that a fetch ended. */
        fp_log(FP_LOG_ERROR, "queue_needs_shared_state", "{s:s}", "message",
               "a broker queue needs shared state: set FILMPICKER_CACHE=redis://...");
        rc = FP_INVALID;
        goto fail;
    }
    if (role == SVC_ROLE_WORKER && !s->remote_queue) {
        fp_log(FP_LOG_ERROR, "worker_needs_broker", "{s:s}", "message",
               "filmpicker worker consumes a broker queue: set FILMPICKER_QUEUE=amqp://...");
        rc = FP_INVALID;
        goto fail;
    }
    /* With a broker, only workers fetch; in process, serve runs the
     * workers itself and a one-off command one. */
    queue_opts qo = {.consumers = s->remote_queue ? (role == SVC_ROLE_WORKER ? cfg->workers : 0)
                                                  : (role == SVC_ROLE_TOOL ? 1 : cfg->workers)};
    rc = s->qb->open(cfg->queue, &qo, svc__handle_job, s, &s->q);
    if (rc != FP_OK) {
        fp_log(FP_LOG_ERROR, "queue_open_failed", "{s:s}", "error", fp_err_code(rc));
        goto fail;
    }
    if (s->shared_state) {
        if (pthread_create(&s->bus, NULL, svc__bus_main, s) != 0) {
            rc = FP_INTERNAL;
            goto fail;
        }
        s->bus_started = 1;
        if (pthread_create(&s->upkeep, NULL, svc__upkeep_main, s) != 0) {
            rc = FP_INTERNAL;
            goto fail;
        }
        s->upkeep_started = 1;
    }
    if (pthread_create(&s->timer, NULL, svc__timer, s) != 0) {
        rc = FP_INTERNAL;
        goto fail;
    }
    s->timer_started = 1;
    *out = s;
    return FP_OK;
fail:
    vault_kek_free(&kek);
    svc_close(&s);
    return rc;
}

void svc_close(service **sp)
{
    service *s = *sp;
    if (!s)
        return;
    pthread_mutex_lock(&s->mu);
    s->stopping = 1;
    pthread_mutex_unlock(&s->mu);
    svc_ready_drain(s); /* readiness checks still running use the backends */
    fetch_client_drain(s->fetch); /* no retries from now on */
    if (s->q)
        s->qb->close(s->q); /* drains: running fetches finish and store, queued jobs end */
    pthread_mutex_lock(&s->mu);
    pthread_cond_broadcast(&s->timer_cv);
    pthread_cond_broadcast(&s->upkeep_cv);
    pthread_cond_broadcast(&s->sweep_cv);
    pthread_mutex_unlock(&s->mu);
    if (s->timer_started)
        pthread_join(s->timer, NULL);
    if (s->upkeep_started)
        pthread_join(s->upkeep, NULL);
    if (s->bus_started) /* its read blocks at most half a second */
        pthread_join(s->bus, NULL);
    if (s->sweeper_started) /* a running sweep stops at its next page */
        pthread_join(s->sweeper, NULL);
    fetch_client_free(&s->fetch);
    poster_proxy_free(&s->posters); /* no fetch is left to land */
    if (s->sts)
        s->stb->close(s->sts);
    for (size_t b = 0; b < SVC_JOB_BUCKETS; b++)
        while (s->jobs[b]) {
            svc_job *j = s->jobs[b];
            s->jobs[b] = j->next;
            svc__job_free(j);
        }
    while (s->tasks) { /* only tasks whose job never ran */
        svc_task *t = s->tasks;
        s->tasks = t->next;
        while (t->listeners) {
            svc_listener *l = t->listeners;
            t->listeners = l->next;
            fp_free(l);
        }
        fp_free(t);
    }
    for (size_t b = 0; b < SVC_FILM_BUCKETS; b++)
        while (s->films[b]) {
            svc_film_entry *e = s->films[b];
            s->films[b] = e->next;
            film_clear(&e->f);
            fp_free(e);
        }
    if (s->ca)
        s->cb->close(s->ca);
    if (s->st)
        s->sb->close(s->st);
    vault_free(&s->v);
    fp_free(s->base_url);
    svc__hot_clear(s);
    svc__combo_clear(s);
    svc__who_clear(s);
    pthread_rwlock_destroy(&s->who_lock);
    pthread_rwlock_destroy(&s->listen_lock);
    pthread_rwlock_destroy(&s->hot_lock);
    pthread_mutex_destroy(&s->film_mu);
    pthread_mutex_destroy(&s->sweep_mu);
    pthread_cond_destroy(&s->timer_cv);
    pthread_cond_destroy(&s->upkeep_cv);
    pthread_cond_destroy(&s->sweep_cv);
    pthread_cond_destroy(&s->ready_cv);
    pthread_mutex_destroy(&s->mu);
    fp_free(s);
    *sp = NULL;
}

void svc_get_stats(service *s, svc_stats *out)
{
    memset(out, 0, sizeof *out);
    if (s->q)
        s->qb->stats(s->q, &out->queue);
    out->jobs_queued = (size_t)out->queue.queued;
    out->jobs_running = (size_t)out->queue.running;
    out->lease_waits = atomic_load(&s->lease_waits);
    out->fetches_skipped = atomic_load(&s->fetches_skipped);
    out->bus_failures = atomic_load(&s->bus_send_failures) + atomic_load(&s->bus_read_failures);
    out->cache_hits = atomic_load(&s->cache_hits);
    out->cache_misses = atomic_load(&s->cache_misses);
    pthread_mutex_lock(&s->mu);
    out->groups_active = s->jobs_active;
    out->jobs_bytes = s->jobs_bytes;
    out->jobs_evicted = s->jobs_evicted;
    pthread_mutex_unlock(&s->mu);
    fetch_stats fs;
    fetch_get_stats(s->fetch, &fs);
    out->fetch_requests = fs.requests;
    out->fetch_retries = fs.retries;
    out->host_limit_waits = fs.sem_waits;
    if (s->sb && s->st && s->sb->pool_stats) {
        store_pool_stats ps;
        s->sb->pool_stats(s->st, &ps);
        out->db_pool_in_use = ps.in_use;
        out->db_pool_open = ps.open;
        out->db_pool_max = ps.max;
    }
}

fp_err svc_health(service *s)
{
    return s->sb->ping(s->st);
}

int svc_shared(service *s, const struct state_backend **b, struct state **st, const char **instance)
{
    if (b)
        *b = s->stb;
    if (st)
        *st = s->sts;
    if (instance)
        *instance = s->instance;
    return s->shared_state;
}

fp_err svc_seal(service *s, const char *label, const void *pt, size_t len, uint8_t **blob,
                size_t *blob_len)
{
    return vault_seal_bytes(s->v, label, pt, len, blob, blob_len);
}

fp_err svc_unseal(service *s, const char *label, const uint8_t *blob, size_t len, uint8_t **pt,
                  size_t *pt_len)
{
    return vault_unseal_bytes(s->v, label, blob, len, pt, pt_len);
}

void svc_set_session_bus(service *s, svc_bus_fn fn, void *ud)
{
    pthread_rwlock_wrlock(&s->listen_lock);
    s->session_bus = fn;
    s->session_bus_ud = ud;
    pthread_rwlock_unlock(&s->listen_lock);
}
