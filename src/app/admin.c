/*
 * admin.c - the operator's commands on storage: key status, rotation and
 * reset, migrations.
 */
#include "app/app_internal.h"

static void svc__keyctx_close(svc_keyctx *c)
{
    if (c->st)
        c->sb->close(c->st);
    vault_kek_free(&c->cur);
    vault_kek_free(&c->next);
    fp_free(c->shown);
    memset(c, 0, sizeof *c);
}

/* kek_flags: VAULT_KEK_CREATE only for starting afresh; elsewhere a missing
 * key file is the question, not something to paper over. */
static fp_err svc__keyctx_open(const fp_config *cfg, int kek_flags, svc_keyctx *c)
{
    memset(c, 0, sizeof *c);
    c->shown = store_url_redacted(cfg->database);
    fp_err rc = vault_kek_open(cfg->secret_key, cfg->secret_key_file, kek_flags, &c->cur);
    if (rc == FP_OK)
        rc = store_open(cfg->database, &c->sb, &c->st);
    if (rc == FP_OK)
        rc = c->sb->migrate(c->st, -1);
    if (rc != FP_OK)
        svc__keyctx_close(c);
    return rc;
}

fp_err svc_key_status(const fp_config *cfg, svc_key_info *out)
{
    svc_keyctx c;
    memset(out, 0, sizeof *out);
    fp_err rc = svc__keyctx_open(cfg, 0, &c);
    if (rc != FP_OK)
        return rc;
    datakey_status ds;
    rc = datakey_check(c.cur, c.sb, c.st, &ds);
    if (rc == FP_OK) {
        out->stored = ds.stored;
        out->opens = ds.opens;
        out->watchlists = ds.watchlists;
        out->watched = ds.watched;
        out->created_at = ds.created_at;
        out->updated_at = ds.updated_at;
    }
    svc__keyctx_close(&c);
    return rc;
}

fp_err svc_key_rotate(const fp_config *cfg, const char *new_key_file, int *created)
{
    svc_keyctx c;
    vault *v = NULL;
    *created = 0;
    fp_err rc = svc__keyctx_open(cfg, 0, &c);
    /* The current key must open the database before a new key file is
     * made: a refused re-keying leaves nothing behind. */
    if (rc == FP_OK)
        rc = datakey_open(c.cur, c.sb, c.st, c.shown, &v, NULL);
    vault_free(&v);
    if (rc == FP_OK)
        rc = vault_kek_open(NULL, new_key_file, VAULT_KEK_CREATE, &c.next);
    if (rc == FP_OK) {
        *created = vault_kek_created(c.next);
        rc = datakey_rotate(c.cur, c.next, c.sb, c.st, c.shown);
    }
    svc__keyctx_close(&c);
    return rc;
}

fp_err svc_key_reset(const fp_config *cfg, size_t *watchlists, size_t *watched)
{
    svc_keyctx c;
    *watchlists = *watched = 0;
    fp_err rc = svc__keyctx_open(cfg, VAULT_KEK_CREATE, &c);
    if (rc != FP_OK)
        return rc;
    rc = datakey_reset(c.cur, c.sb, c.st, c.shown, watchlists, watched);
    svc__keyctx_close(&c);
    return rc;
}

fp_err svc_migrate(const fp_config *cfg, int target, int *current, int *latest)
{
    const store_backend *sb = NULL;
    store *st = NULL;
    fp_err rc = store_open(cfg->database, &sb, &st);
    if (rc != FP_OK)
        return rc;
    if (target != -2)
        rc = sb->migrate(st, target);
    if (rc == FP_OK)
        rc = sb->migration_status(st, current, latest);
    sb->close(st);
    return rc;
}
