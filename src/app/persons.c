/*
 * persons.c - who a participant is: what a person typed to a canonical user
 * and person key (with a memo so repeated requests skip parsing and hashing),
 * upload tokens, and browser ids with their signed cookies.
 */
#include "app/app_internal.h"


void svc__who_clear(service *s)
{
    for (size_t b = 0; b < SVC_WHO_BUCKETS; b++)
        while (s->who[b]) {
            svc_who *w = s->who[b];
            s->who[b] = w->next;
            fp_free(w);
        }
    s->nwho = 0;
}

fp_err svc_person_parse(service *s, const char *type, const char *input, int refresh,
                        svc_person *out)
{
    memset(out, 0, sizeof *out);
    const source_backend *src = source_by_type(type ? type : "lb");
    if (!src)
        return FP_BAD_SOURCE;
    if (!input)
        return FP_BAD_USERNAME;
    size_t len = strlen(input);
    uint64_t h = 0;
    if (len <= SVC_WHO_INPUT_MAX) {
        uint8_t hb[crypto_shorthash_BYTES];
        crypto_shorthash(hb, (const unsigned char *)input, len, s->who_hkey);
        memcpy(&h, hb, sizeof h);
        int hit = 0;
        pthread_rwlock_rdlock(&s->who_lock);
        for (svc_who *w = s->who[h % SVC_WHO_BUCKETS]; w; w = w->next)
            if (w->hash == h && w->src == src && strcmp(w->input, input) == 0) {
                memcpy(out->user, w->user, sizeof out->user);
                memcpy(out->key, w->key, VAULT_KEY_BYTES);
                hit = 1;
                break;
            }
        pthread_rwlock_unlock(&s->who_lock);
        if (hit) {
            out->src = src;
            out->refresh = refresh;
            return FP_OK;
        }
    }
    fp_err rc = src->canonical_user(input, out->user);
    if (rc != FP_OK)
        return rc;
    out->src = src;
    out->refresh = refresh;
    vault_person_key(s->v, src->type, out->user, out->key);
    if (len <= SVC_WHO_INPUT_MAX) {
        svc_who *w = fp_malloc(sizeof *w + len + 1);
        w->hash = h;
        w->src = src;
        memcpy(w->user, out->user, sizeof w->user);
        memcpy(w->key, out->key, VAULT_KEY_BYTES);
        memcpy(w->input, input, len + 1);
        pthread_rwlock_wrlock(&s->who_lock);
        if (s->nwho >= SVC_WHO_MAX)
            svc__who_clear(s);
        w->next = s->who[h % SVC_WHO_BUCKETS];
        s->who[h % SVC_WHO_BUCKETS] = w;
        s->nwho++;
        pthread_rwlock_unlock(&s->who_lock);
    }
    return FP_OK;
}

fp_err svc_person_import(service *s, const char *token, svc_person *out)
{
    memset(out, 0, sizeof *out);
    size_t len = token ? strlen(token) : 0;
    if (len != 32 || strspn(token, "0123456789abcdef") != len)
        return FP_NOT_FOUND;
    snprintf(out->user, sizeof out->user, "%s", token);
    vault_person_key(s->v, "import", token, out->key);
    return FP_OK;
}

fp_err svc_client_token(service *s, const char *client_id, char out[VAULT_MAC_HEX + 1])
{
    if (!client_id || strlen(client_id) != 32 || strspn(client_id, "0123456789abcdef") != 32)
        return FP_INVALID;
    vault_mac_hex(s->v, client_id, out);
    return FP_OK;
}

/* The cookie's tag: the first 32 hex digits of the MAC of "cookie:" + id
 * (a message the CSRF token, MAC(id), never covers). */
static void svc__cookie_tag(service *s, const char *client_id, char tag[33])
{
    char msg[48], mac[VAULT_MAC_HEX + 1];
    snprintf(msg, sizeof msg, "cookie:%s", client_id);
    vault_mac_hex(s->v, msg, mac);
    memcpy(tag, mac, 32);
    tag[32] = '\0';
}

fp_err svc_client_cookie(service *s, const char *client_id, char out[SVC_COOKIE_LEN + 1])
{
    if (!client_id || strlen(client_id) != 32 || strspn(client_id, "0123456789abcdef") != 32)
        return FP_INVALID;
    char tag[33];
    svc__cookie_tag(s, client_id, tag);
    snprintf(out, SVC_COOKIE_LEN + 1, "%s%s", client_id, tag);
    return FP_OK;
}

int svc_client_from_cookie(service *s, const char *cookie, char client_id[33])
{
    client_id[0] = '\0';
    if (!cookie || strlen(cookie) != SVC_COOKIE_LEN ||
        strspn(cookie, "0123456789abcdef") != SVC_COOKIE_LEN)
        return 0;
    char id[33], tag[33];
    memcpy(id, cookie, 32);
    id[32] = '\0';
    svc__cookie_tag(s, id, tag);
    if (sodium_memcmp(tag, cookie + 32, 32) != 0)
        return 0;
    memcpy(client_id, id, 33);
    return 1;
}

int svc_client_check(service *s, const char *client_id, const char *token)
{
    if (!client_id || strlen(client_id) != 32 || strspn(client_id, "0123456789abcdef") != 32)
        return 0;
    return vault_mac_check(s->v, client_id, token);
}
