/* Listen addresses (listen.c), private to src/server: what --http-address, --grpc-address and
 * --metrics-address mean, shared by the transports so all three ports read them alike.
 *
 * An address is an IPv4 literal (0.0.0.0, 127.0.0.1), an IPv6 literal with or without brackets
 * (::, ::1, [::1]) or empty. Empty means every address of both families: `::` with IPV6_V6ONLY
 * off (one socket takes IPv4 clients as ::ffff:a.b.c.d), or 0.0.0.0 when the kernel has IPv6 off
 * (the bind of `::` fails). `::` given explicitly is dual stack too, with no fallback; an IPv6
 * address other than `::` serves IPv6 only. */
#ifndef CELER_SERVER_LISTEN_H
#define CELER_SERVER_LISTEN_H

#include <stdbool.h>
#include <sys/socket.h>

#include "base/base.h"

typedef struct celer_listen_addr {
    struct sockaddr_storage sa; /* a sockaddr_in or sockaddr_in6, port set */
    socklen_t len;
    bool dual;                  /* IPv6 any with IPV6_V6ONLY off: both families */
    char text[80];              /* for logs: "0.0.0.0:8000", "[::1]:8000", "[::]:8000" */
} celer_listen_addr;

/* Parses `address` (see above) with `port`. CELER_ERR_INVALID naming `flag` (e.g.
 * "--http-address") when it is neither family's literal. */
celer_status celer_listen_resolve(const char *address, int port, const char *flag, celer_listen_addr *out);

/* A listening TCP socket (non-blocking, close-on-exec, SO_REUSEADDR, IPV6_V6ONLY as `a` says) in
 * *fd. CELER_ERR_IO naming `what` and the address when it cannot be bound. */
celer_status celer_listen_open(const celer_listen_addr *a, const char *what, int *fd);

/* A peer's address for the access log: "a.b.c.d" (IPv4-mapped IPv6 too) or the IPv6 text; "-"
 * for anything else. */
void celer_listen_peer(const struct sockaddr *sa, char *buf, size_t cap);

#endif
