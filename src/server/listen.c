/* Listen addresses: parsing, the dual-stack default and its IPv4 fallback (listen.h). */
#include "listen.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

/* Whether this kernel binds IPv6 sockets: probed once (a bind of [::]:0, dual stack). */
static bool ipv6_ok;
static pthread_once_t probe_once = PTHREAD_ONCE_INIT;

static void probe_ipv6(void) {
    int fd = socket(AF_INET6, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0) return;
    int off = 0;
    struct sockaddr_in6 a = {.sin6_family = AF_INET6, .sin6_addr = IN6ADDR_ANY_INIT};
    ipv6_ok = !setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &off, sizeof off) && !bind(fd, (struct sockaddr *)&a, sizeof a);
    close(fd);
}

celer_status celer_listen_resolve(const char *address, int port, const char *flag, celer_listen_addr *out) {
    memset(out, 0, sizeof *out);
    char host[INET6_ADDRSTRLEN + 2];
    size_t n = strlen(address);
    if (n >= 2 && address[0] == '[' && address[n - 1] == ']') { /* [::1] as in URLs */
        address++;
        n -= 2;
    }
    if (n >= sizeof host)
        return celer_errorf(CELER_ERR_INVALID, "%s '%.80s' is not an IPv4 or IPv6 address (empty: both families)",
                            flag, address);
    memcpy(host, address, n);
    host[n] = 0;
    if (!n) {
        pthread_once(&probe_once, probe_ipv6);
        snprintf(host, sizeof host, "%s", ipv6_ok ? "::" : "0.0.0.0");
    }
    struct sockaddr_in *v4 = (struct sockaddr_in *)&out->sa;
    struct sockaddr_in6 *v6 = (struct sockaddr_in6 *)&out->sa;
    if (inet_pton(AF_INET, host, &v4->sin_addr) == 1) {
        v4->sin_family = AF_INET;
        v4->sin_port = htons((uint16_t)port);
        out->len = sizeof *v4;
        snprintf(out->text, sizeof out->text, "%s:%d", host, port);
    } else if (inet_pton(AF_INET6, host, &v6->sin6_addr) == 1) {
        v6->sin6_family = AF_INET6;
        v6->sin6_port = htons((uint16_t)port);
        out->len = sizeof *v6;
        out->dual = IN6_IS_ADDR_UNSPECIFIED(&v6->sin6_addr);
        char canon[INET6_ADDRSTRLEN];
        inet_ntop(AF_INET6, &v6->sin6_addr, canon, sizeof canon);
        snprintf(out->text, sizeof out->text, "[%s]:%d", canon, port);
    } else {
        return celer_errorf(CELER_ERR_INVALID, "%s '%s' is not an IPv4 or IPv6 address (empty: both families)", flag,
                            host);
    }
    return CELER_OK;
}

celer_status celer_listen_open(const celer_listen_addr *a, const char *what, int *fd) {
    int one = 1, v6only = !a->dual;
    int s = socket(a->sa.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (s < 0 || setsockopt(s, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one) ||
        (a->sa.ss_family == AF_INET6 && setsockopt(s, IPPROTO_IPV6, IPV6_V6ONLY, &v6only, sizeof v6only)) ||
        bind(s, (const struct sockaddr *)&a->sa, a->len) || listen(s, 1024)) {
        int e = errno;
        if (s >= 0) close(s);
        return celer_errorf(CELER_ERR_IO, "cannot listen for %s on %s: %s", what, a->text, strerror(e));
    }
    *fd = s;
    return CELER_OK;
}

void celer_listen_peer(const struct sockaddr *sa, char *buf, size_t cap) {
    snprintf(buf, cap, "-");
    if (!sa) return;
    if (sa->sa_family == AF_INET) {
        inet_ntop(AF_INET, &((const struct sockaddr_in *)sa)->sin_addr, buf, (socklen_t)cap);
    } else if (sa->sa_family == AF_INET6) {
        const struct in6_addr *a = &((const struct sockaddr_in6 *)sa)->sin6_addr;
        if (IN6_IS_ADDR_V4MAPPED(a)) /* an IPv4 client of a dual-stack socket: shown as IPv4 */
            inet_ntop(AF_INET, &a->s6_addr[12], buf, (socklen_t)cap);
        else
            inet_ntop(AF_INET6, a, buf, (socklen_t)cap);
    }
}
