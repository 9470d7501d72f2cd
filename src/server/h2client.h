/* A small HTTP/2 client on libnghttp2, over cleartext TCP (h2c with prior knowledge) or TLS
 * (GnuTLS, ALPN h2), private to src/server: the gRPC side of remote models (remote.c). A pool holds a few connections to one
 * host:port and spreads calls over them as multiplexed streams; it owns no thread: its owner's
 * event loop polls the pool's sockets (celer_h2c_poll_fds) and hands it the time to work
 * (celer_h2c_process). Every function is called from that one thread.
 *
 * Why not libcurl, which remote.c uses for HTTP/1.1: Debian 12's libcurl 7.88.1 fails every
 * request on a reused HTTP/2 connection with prior knowledge ("Error in the HTTP2 framing layer",
 * curl issue 10634, fixed after that release), so it would open a connection per call; and over
 * TLS its GnuTLS flavour failed multiplexed streams under load ("The specified session has been
 * invalidated"). */
#ifndef CELER_SERVER_H2CLIENT_H
#define CELER_SERVER_H2CLIENT_H

#include <poll.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "base/base.h"

typedef struct celer_h2c celer_h2c;

/* How a call ended (on_close's `how`). */
typedef enum celer_h2c_end {
    CELER_H2C_DONE,        /* the stream closed normally: headers, data and trailers were handed out */
    CELER_H2C_REFUSED,     /* never reached the server: connection refused or failed before the
                              call was sent, or refused by the server (GOAWAY, REFUSED_STREAM) */
    CELER_H2C_TIMEOUT,     /* its deadline passed (the stream was reset) */
    CELER_H2C_BROKEN,      /* the connection or the stream broke after the call was sent */
} celer_h2c_end;

typedef struct celer_h2c_header {
    const char *name, *value; /* lower-case names */
} celer_h2c_header;

/* One call: a POST of `body` to `path` with `headers`; the caller's until on_close. */
typedef struct celer_h2c_call {
    const char *path;
    const celer_h2c_header *headers;
    int n_headers;
    const void *body; /* valid until on_close */
    size_t len;
    int64_t deadline_ns; /* CLOCK_MONOTONIC; 0 = none */
    /* response headers and trailers, each as it comes (":status" included) */
    void (*on_header)(void *user, const char *name, size_t name_len, const char *value, size_t value_len);
    /* response data; false aborts the call (it ends BROKEN) */
    bool (*on_data)(void *user, const uint8_t *p, size_t n);
    /* exactly once, after which the pool forgets the call; `why` explains a failure ("" on DONE) */
    void (*on_close)(void *user, celer_h2c_end how, const char *why);
    void *user;
    /* the pool's */
    int32_t stream_id;
    size_t sent;
    struct h2c_conn *conn;
    struct celer_h2c_call *next;
} celer_h2c_call;

/* A pool of at most `max_conns` connections to host:port (an address, or a name resolved now),
 * connects (and TLS handshakes) bounded by connect_timeout_ms. With `tls` the server's certificate
 * must chain to ca_file (PEM; NULL: the system's CAs) and name `host`, and ALPN must agree on h2.
 * Nothing connects until the first call. */
celer_status celer_h2c_open(const char *host, const char *port, bool tls, const char *ca_file, int max_conns,
                            int64_t connect_timeout_ms, celer_h2c **out);
/* Closes every connection; calls still open end with CELER_H2C_BROKEN ("the pool was closed"). */
void celer_h2c_free(celer_h2c *p);

/* Starts a call (on_close may come from within, on a failure to start). */
void celer_h2c_submit(celer_h2c *p, celer_h2c_call *call);

/* Appends the pool's sockets and the events it waits for to fds (at most `cap`); returns how many. */
int celer_h2c_poll_fds(celer_h2c *p, struct pollfd *fds, int cap);
/* Reads and writes the sockets `fds` (what poll returned, revents set; NULL/0 before a poll: none
 * is read), connects and expires what is due; returns the earliest deadline of its calls and
 * connects (0: none). */
int64_t celer_h2c_process(celer_h2c *p, int64_t now_ns, const struct pollfd *fds, int n_fds);

#endif
