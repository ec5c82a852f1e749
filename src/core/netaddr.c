/*
 * netaddr.c - address parsing with inet_pton, CIDR matching on 16 bytes.
 */
#include "core/netaddr.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>

#include "core/mem.h"

typedef struct fp_net {
    fp_addr base;
    int bits; /* prefix length on the 16-byte form */
} fp_net;

struct fp_netlist {
    size_t n;
    fp_net nets[];
};

static const uint8_t fp_addr__v4_prefix[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};

fp_err fp_addr_from_sockaddr(const struct sockaddr *sa, fp_addr *out)
{
    memset(out, 0, sizeof *out);
    if (!sa)
        return FP_INVALID;
    if (sa->sa_family == AF_INET) {
        const struct sockaddr_in *in = (const struct sockaddr_in *)sa;
        memcpy(out->b, fp_addr__v4_prefix, 12);
        memcpy(out->b + 12, &in->sin_addr, 4);
        return FP_OK;
    }
    if (sa->sa_family == AF_INET6) {
        const struct sockaddr_in6 *in6 = (const struct sockaddr_in6 *)sa;
        memcpy(out->b, &in6->sin6_addr, 16);
        return FP_OK;
    }
    return FP_INVALID;
}

fp_err fp_addr_parse(const char *text, size_t len, fp_addr *out)
{
    memset(out, 0, sizeof *out);
    while (len && (*text == ' ' || *text == '\t')) {
        text++;
        len--;
    }
    while (len && (text[len - 1] == ' ' || text[len - 1] == '\t'))
        len--;
    if (len >= 2 && text[0] == '[' && text[len - 1] == ']') {
        text++;
        len -= 2;
    }
    char buf[INET6_ADDRSTRLEN + 1];
    if (len == 0 || len >= sizeof buf)
        return FP_INVALID;
    memcpy(buf, text, len);
    buf[len] = '\0';
    struct in_addr v4;
    if (inet_pton(AF_INET, buf, &v4) == 1) {
        memcpy(out->b, fp_addr__v4_prefix, 12);
        memcpy(out->b + 12, &v4, 4);
        return FP_OK;
    }
    struct in6_addr v6;
    if (inet_pton(AF_INET6, buf, &v6) == 1) {
        memcpy(out->b, &v6, 16);
        return FP_OK;
    }
    return FP_INVALID;
}

int fp_addr_is_v4(const fp_addr *a)
{
    return memcmp(a->b, fp_addr__v4_prefix, 12) == 0;
}

fp_addr fp_addr_limit_key(const fp_addr *a)
{
    fp_addr k = *a;
    if (!fp_addr_is_v4(a))
        memset(k.b + 8, 0, 8);
    return k;
}

void fp_addr_format(const fp_addr *a, char *out)
{
    if (fp_addr_is_v4(a))
        inet_ntop(AF_INET, a->b + 12, out, FP_ADDR_TEXT);
    else
        inet_ntop(AF_INET6, a->b, out, FP_ADDR_TEXT);
}

static int fp_net__match(const fp_net *n, const fp_addr *a)
{
    int full = n->bits / 8, rest = n->bits % 8;
    if (memcmp(n->base.b, a->b, (size_t)full) != 0)
        return 0;
    if (rest == 0)
        return 1;
    uint8_t mask = (uint8_t)(0xff << (8 - rest));
    return (n->base.b[full] & mask) == (a->b[full] & mask);
}

fp_err fp_netlist_parse(const char *text, fp_netlist **out, char **bad)
{
    *out = NULL;
    *bad = NULL;
    size_t cap = 1;
    for (const char *p = text ? text : ""; *p; p++)
        cap += *p == ',';
    fp_netlist *l = fp_calloc(1, sizeof *l + cap * sizeof l->nets[0]);
    const char *p = text ? text : "";
    while (*p) {
        const char *end = strchr(p, ',');
        size_t full = end ? (size_t)(end - p) : strlen(p);
        const char *item = p;
        size_t len = full;
        while (len && (*item == ' ' || *item == '\t')) {
            item++;
            len--;
        }
        while (len && (item[len - 1] == ' ' || item[len - 1] == '\t'))
            len--;
        if (len == 0) { /* empty item: "a,,b" or trailing comma */
            p += full + (end ? 1 : 0);
            continue;
        }
        const char *slash = memchr(item, '/', len);
        size_t alen = slash ? (size_t)(slash - item) : len;
        fp_net n;
        fp_err rc = fp_addr_parse(item, alen, &n.base);
        int v4 = rc == FP_OK && fp_addr_is_v4(&n.base);
        n.bits = 128;
        if (rc == FP_OK && slash) {
            const char *b = slash + 1;
            size_t blen = len - alen - 1;
            char num[8];
            if (blen == 0 || blen >= sizeof num || strspn(b, "0123456789") < blen) {
                rc = FP_INVALID;
            } else {
                memcpy(num, b, blen);
                num[blen] = '\0';
                long bits = strtol(num, NULL, 10);
                if (bits > (v4 ? 32 : 128))
                    rc = FP_INVALID;
                else
                    n.bits = (int)(v4 ? 96 + bits : bits);
            }
        }
        if (rc != FP_OK) {
            *bad = fp_strndup(item, len);
            fp_free(l);
            return FP_INVALID;
        }
        l->nets[l->n++] = n;
        p += full + (end ? 1 : 0);
    }
    *out = l;
    return FP_OK;
}

int fp_netlist_match(const fp_netlist *l, const fp_addr *a)
{
    if (!l)
        return 0;
    for (size_t i = 0; i < l->n; i++)
        if (fp_net__match(&l->nets[i], a))
            return 1;
    return 0;
}

size_t fp_netlist_len(const fp_netlist *l)
{
    return l ? l->n : 0;
}

void fp_netlist_free(fp_netlist **l)
{
    FP_FREE(*l);
}
