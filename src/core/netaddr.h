/*
 * netaddr.h - client addresses: parsing, CIDR lists, and the key a limit
 * counts by.
 *
 * Every address is held as 16 bytes (IPv4 as ::ffff:a.b.c.d), so one table
 * serves both families. The key of an address for per-address limits is the
 * address itself for IPv4 and its /64 prefix for IPv6: one IPv6 subscriber
 * gets a whole /64 and could otherwise rotate through it.
 */
#ifndef FP_NETADDR_H
#define FP_NETADDR_H

#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#include "core/error.h"

typedef struct fp_addr {
    uint8_t b[16];
} fp_addr;

/* From a socket address (AF_INET or AF_INET6). FP_INVALID otherwise. */
fp_err fp_addr_from_sockaddr(const struct sockaddr *sa, fp_addr *out);
/* From text: "192.0.2.7", "2001:db8::1", "[2001:db8::1]". FP_INVALID otherwise. */
fp_err fp_addr_parse(const char *text, size_t len, fp_addr *out);
/* The limit key: IPv4 unchanged, IPv6 cut to its /64. */
fp_addr fp_addr_limit_key(const fp_addr *a);
int fp_addr_is_v4(const fp_addr *a);
/* Text form into out (at least FP_ADDR_TEXT bytes). */
#define FP_ADDR_TEXT 48
void fp_addr_format(const fp_addr *a, char *out);

/* A list of networks ("127.0.0.1", "10.0.0.0/8", "2001:db8::/32"), parsed
 * from a comma-separated setting. Empty list: matches nothing. */
typedef struct fp_netlist fp_netlist;
/* FP_INVALID (and *bad set to the offending item, caller frees) on a bad item. */
fp_err fp_netlist_parse(const char *text, fp_netlist **out, char **bad) FP_WARN_UNUSED;
int fp_netlist_match(const fp_netlist *l, const fp_addr *a);
size_t fp_netlist_len(const fp_netlist *l);
void fp_netlist_free(fp_netlist **l);

#endif
