/* The HTTP/2 client of remote models' gRPC calls (see h2client.h). One nghttp2 client session per
 * connection, non-blocking sockets, and no thread of its own: the owner's loop polls and calls in. */
#include <arpa/inet.h>
#include <errno.h>
#include <gnutls/gnutls.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <nghttp2/nghttp2.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "h2client.h"

#define MAX_CONNS 8
#define STREAMS_PER_CONN 64        /* past this many open calls on each, another connection is opened */
#define WINDOW (16 << 20)          /* answers of a few MiB flow without waiting for window updates */

typedef enum conn_state { C_FREE, C_CONNECTING, C_HANDSHAKE, C_READY } conn_state;

typedef struct h2c_conn {
    celer_h2c *pool;
    conn_state state;
    int fd;
    nghttp2_session *s;
    gnutls_session_t tls;        /* NULL for h2c */
    bool goaway;                 /* the server said it takes no new streams: retired once idle */
    int64_t connect_deadline_ns;
    int n_calls;
    celer_h2c_call *calls;       /* open on this connection */
    uint8_t *out;                /* what the socket did not take yet */
    size_t out_len, out_off;
} h2c_conn;

struct celer_h2c {
    struct sockaddr_storage addr;
    socklen_t addr_len;
    char where[200];             /* host:port, for messages */
    char why[300];               /* why the last connection could not be started */
    char host[256];              /* for TLS: the name checked in the certificate (and sent as SNI unless an address) */
    gnutls_certificate_credentials_t cred; /* NULL: cleartext (h2c) */
    int max_conns;
    int64_t connect_timeout_ns;
    nghttp2_session_callbacks *cbs;
    h2c_conn conns[MAX_CONNS];
};

static void unlink_call(h2c_conn *c, celer_h2c_call *call) {
    for (celer_h2c_call **pp = &c->calls; *pp; pp = &(*pp)->next)
        if (*pp == call) {
            *pp = call->next;
            c->n_calls--;
            return;
        }
}

/* Marks a call timed out (read when its stream closes); on the call's own struct, via stream_id's
 * sign: a reset stream keeps its id positive, so a flag lives in `sent`'s top bit. */
#define TIMED_OUT ((size_t)1 << (sizeof(size_t) * 8 - 1))
#define HEADERS_SENT ((size_t)1 << (sizeof(size_t) * 8 - 2))
#define SENT_MASK (~(TIMED_OUT | HEADERS_SENT))

/* Ends every call of a connection that is gone: those not sent yet never reached the server. */
static void conn_close(h2c_conn *c, const char *why) {
    celer_h2c_call *calls = c->calls;
    c->calls = NULL;
    c->n_calls = 0;
    if (c->s) nghttp2_session_del(c->s);
    if (c->tls) gnutls_deinit(c->tls);
    if (c->fd >= 0) close(c->fd);
    free(c->out);
    celer_h2c *p = c->pool;
    *c = (h2c_conn){.pool = p, .fd = -1};
    while (calls) {
        celer_h2c_call *call = calls;
        calls = call->next;
        call->conn = NULL;
        celer_h2c_end how = call->sent & TIMED_OUT ? CELER_H2C_TIMEOUT
                            : call->sent & HEADERS_SENT ? CELER_H2C_BROKEN : CELER_H2C_REFUSED;
        call->on_close(call->user, how, why);
    }
}

/* ---- nghttp2 callbacks (user_data: the connection) ---- */

static int on_header(nghttp2_session *s, const nghttp2_frame *f, const uint8_t *name, size_t nl, const uint8_t *value,
                     size_t vl, uint8_t flags, void *user) {
    (void)flags, (void)user;
    celer_h2c_call *call = nghttp2_session_get_stream_user_data(s, f->hd.stream_id);
    if (call && call->on_header) call->on_header(call->user, (const char *)name, nl, (const char *)value, vl);
    return 0;
}

static int on_data(nghttp2_session *s, uint8_t flags, int32_t id, const uint8_t *data, size_t len, void *user) {
    (void)flags, (void)user;
    celer_h2c_call *call = nghttp2_session_get_stream_user_data(s, id);
    if (call && call->on_data && !call->on_data(call->user, data, len))
        nghttp2_submit_rst_stream(s, NGHTTP2_FLAG_NONE, id, NGHTTP2_CANCEL);
    return 0;
}

static int on_frame_recv(nghttp2_session *s, const nghttp2_frame *f, void *user) {
    (void)s;
    if (f->hd.type == NGHTTP2_GOAWAY) ((h2c_conn *)user)->goaway = true;
    return 0;
}

static int on_frame_send(nghttp2_session *s, const nghttp2_frame *f, void *user) {
    (void)user;
    celer_h2c_call *call = f->hd.type == NGHTTP2_HEADERS ? nghttp2_session_get_stream_user_data(s, f->hd.stream_id) : NULL;
    if (call) call->sent |= HEADERS_SENT;
    return 0;
}

static int on_stream_close(nghttp2_session *s, int32_t id, uint32_t error, void *user) {
    h2c_conn *c = user;
    celer_h2c_call *call = nghttp2_session_get_stream_user_data(s, id);
    if (!call) return 0;
    nghttp2_session_set_stream_user_data(s, id, NULL);
    unlink_call(c, call);
    call->conn = NULL;
    char why[300] = "";
    celer_h2c_end how = CELER_H2C_DONE;
    if (call->sent & TIMED_OUT) {
        how = CELER_H2C_TIMEOUT;
        snprintf(why, sizeof why, "no answer before the deadline");
    } else if (error == NGHTTP2_REFUSED_STREAM || !(call->sent & HEADERS_SENT)) {
        how = CELER_H2C_REFUSED;
        snprintf(why, sizeof why, "%s refused the stream (%s)", c->pool->where, nghttp2_http2_strerror(error));
    } else if (error) {
        how = CELER_H2C_BROKEN;
        snprintf(why, sizeof why, "%s reset the stream (%s)", c->pool->where, nghttp2_http2_strerror(error));
    }
    call->on_close(call->user, how, why);
    return 0;
}

/* The request body, copied into DATA frames as the flow-control window allows. */
static ssize_t read_body(nghttp2_session *s, int32_t id, uint8_t *buf, size_t len, uint32_t *flags,
                         nghttp2_data_source *src, void *user) {
    (void)s, (void)id, (void)user;
    celer_h2c_call *call = src->ptr;
    size_t off = call->sent & SENT_MASK, n = call->len - off < len ? call->len - off : len;
    if (n) memcpy(buf, (const uint8_t *)call->body + off, n);
    call->sent += n;
    if (off + n == call->len) *flags |= NGHTTP2_DATA_FLAG_EOF;
    return (ssize_t)n;
}

/* ---- the socket (through TLS when the pool has it) ---- */

/* send/recv, or their TLS records: >= 0 bytes, -1 with EAGAIN, or -2 with the reason in why. */
static ssize_t io_send(h2c_conn *c, const void *p, size_t n, char *why, size_t cap) {
    if (!c->tls) {
        ssize_t w = send(c->fd, p, n, MSG_NOSIGNAL);
        if (w >= 0) return w;
        if (errno == EAGAIN || errno == EWOULDBLOCK) return -1;
        snprintf(why, cap, "sending to %s: %s", c->pool->where, strerror(errno));
        return -2;
    }
    ssize_t w = gnutls_record_send(c->tls, p, n);
    if (w >= 0) return w;
    if (w == GNUTLS_E_AGAIN || w == GNUTLS_E_INTERRUPTED) return -1;
    snprintf(why, cap, "sending to %s: %s", c->pool->where, gnutls_strerror((int)w));
    return -2;
}

static ssize_t io_recv(h2c_conn *c, void *p, size_t n, char *why, size_t cap) {
    ssize_t r = c->tls ? gnutls_record_recv(c->tls, p, n) : recv(c->fd, p, n, 0);
    if (r > 0) return r;
    if (!c->tls && r < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) return -1;
    if (c->tls && (r == GNUTLS_E_AGAIN || r == GNUTLS_E_INTERRUPTED)) return -1;
    snprintf(why, cap, "%s closed the connection%s%s", c->pool->where, r ? ": " : "",
             !r ? "" : c->tls ? gnutls_strerror((int)r) : strerror(errno));
    return -2;
}

/* Writes what nghttp2 has to send, keeping what the socket does not take. */
static bool conn_flush(h2c_conn *c) {
    for (;;) {
        if (c->out_off == c->out_len) {
            const uint8_t *data;
            ssize_t n = nghttp2_session_mem_send(c->s, &data);
            if (n < 0) {
                conn_close(c, nghttp2_strerror((int)n));
                return false;
            }
            if (n == 0) return true;
            uint8_t *buf = realloc(c->out, (size_t)n);
            if (!buf) {
                conn_close(c, "out of memory");
                return false;
            }
            memcpy(buf, data, (size_t)n);
            c->out = buf, c->out_len = (size_t)n, c->out_off = 0;
        }
        if (c->state != C_READY) return true; /* sent once connected */
        char why[300];
        ssize_t w = io_send(c, c->out + c->out_off, c->out_len - c->out_off, why, sizeof why);
        if (w == -1) return true;
        if (w < 0) {
            conn_close(c, why);
            return false;
        }
        c->out_off += (size_t)w;
    }
}

static void conn_read(h2c_conn *c) {
    uint8_t buf[65536];
    for (;;) {
        char why[300];
        ssize_t n = io_recv(c, buf, sizeof buf, why, sizeof why);
        if (n == -1) break;
        if (n < 0) {
            conn_close(c, why);
            return;
        }
        ssize_t used = nghttp2_session_mem_recv(c->s, buf, (size_t)n);
        if (used < 0) {
            char why[300];
            snprintf(why, sizeof why, "from %s: %s", c->pool->where, nghttp2_strerror((int)used));
            conn_close(c, why);
            return;
        }
    }
    conn_flush(c);
}

/* Drives a TLS handshake without blocking: true once the connection is ready (ALPN h2 agreed). */
static bool handshake(h2c_conn *c, int64_t now_ns, int64_t *next) {
    celer_h2c *p = c->pool;
    char why[400];
    int rc = gnutls_handshake(c->tls);
    if (rc == GNUTLS_E_AGAIN || rc == GNUTLS_E_INTERRUPTED) {
        if (now_ns < c->connect_deadline_ns) {
            if (!*next || c->connect_deadline_ns < *next) *next = c->connect_deadline_ns;
            return false;
        }
        snprintf(why, sizeof why, "cannot connect to %s: the TLS handshake took too long", p->where);
        conn_close(c, why);
        return false;
    }
    gnutls_datum_t alpn = {0};
    if (rc == GNUTLS_E_SUCCESS && (gnutls_alpn_get_selected_protocol(c->tls, &alpn) || alpn.size != 2 ||
                                   memcmp(alpn.data, "h2", 2)))
        snprintf(why, sizeof why, "cannot connect to %s: the server did not agree to HTTP/2 (ALPN h2)", p->where);
    else if (rc)
        snprintf(why, sizeof why, "cannot connect to %s: TLS: %s", p->where, gnutls_strerror(rc));
    if (rc || alpn.size != 2 || memcmp(alpn.data, "h2", 2)) {
        conn_close(c, why);
        return false;
    }
    c->state = C_READY;
    return conn_flush(c);
}

static bool tls_start(h2c_conn *c) {
    celer_h2c *p = c->pool;
    gnutls_datum_t h2 = {(unsigned char *)"h2", 2};
    struct in6_addr a6;
    bool address = inet_pton(AF_INET, p->host, &a6) == 1 || inet_pton(AF_INET6, p->host, &a6) == 1;
    if (gnutls_init(&c->tls, GNUTLS_CLIENT | GNUTLS_NONBLOCK) || gnutls_set_default_priority(c->tls) ||
        gnutls_credentials_set(c->tls, GNUTLS_CRD_CERTIFICATE, p->cred) ||
        gnutls_alpn_set_protocols(c->tls, &h2, 1, GNUTLS_ALPN_MANDATORY) ||
        (!address && gnutls_server_name_set(c->tls, GNUTLS_NAME_DNS, p->host, strlen(p->host))))
        return false;
    gnutls_session_set_verify_cert(c->tls, p->host, 0); /* the chain and the name (or address) */
    gnutls_transport_set_int(c->tls, c->fd);
    return true;
}

/* Starts connecting c; false (the reason in p->why, c free again) when it cannot. */
static bool conn_start(celer_h2c *p, h2c_conn *c, int64_t now_ns) {
    c->fd = socket(p->addr.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (c->fd < 0) {
        snprintf(p->why, sizeof p->why, "cannot connect to %s: %s", p->where, strerror(errno));
        return false;
    }
    int one = 1;
    setsockopt(c->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    c->state = C_CONNECTING;
    c->connect_deadline_ns = now_ns + p->connect_timeout_ns;
    nghttp2_settings_entry settings[] = {{NGHTTP2_SETTINGS_ENABLE_PUSH, 0},
                                         {NGHTTP2_SETTINGS_INITIAL_WINDOW_SIZE, WINDOW}};
    if (nghttp2_session_client_new(&c->s, p->cbs, c) ||
        nghttp2_submit_settings(c->s, NGHTTP2_FLAG_NONE, settings, 2) ||
        nghttp2_session_set_local_window_size(c->s, NGHTTP2_FLAG_NONE, 0, WINDOW))
        snprintf(p->why, sizeof p->why, "cannot set up an HTTP/2 session to %s (out of memory)", p->where);
    else if (p->cred && !tls_start(c))
        snprintf(p->why, sizeof p->why, "cannot set up TLS to %s (out of memory)", p->where);
    else if (connect(c->fd, (const struct sockaddr *)&p->addr, p->addr_len) == 0)
        c->state = p->cred ? C_HANDSHAKE : C_READY;
    else if (errno != EINPROGRESS)
        snprintf(p->why, sizeof p->why, "cannot connect to %s: %s", p->where, strerror(errno));
    else
        return true;
    if (c->state != C_CONNECTING) return true;
    conn_close(c, p->why); /* no call is on it yet */
    return false;
}

/* ---- the pool ---- */

celer_status celer_h2c_open(const char *host, const char *port, bool tls, const char *ca_file, int max_conns,
                            int64_t connect_timeout_ms, celer_h2c **out) {
    struct addrinfo hints = {.ai_socktype = SOCK_STREAM}, *ai = NULL;
    int rc = getaddrinfo(host, port, &hints, &ai);
    if (rc) return celer_errorf(CELER_ERR_UNAVAILABLE, "cannot resolve %s: %s", host, gai_strerror(rc));
    celer_h2c *p = calloc(1, sizeof *p);
    if (!p || nghttp2_session_callbacks_new(&p->cbs)) {
        freeaddrinfo(ai);
        free(p);
        return celer_errorf(CELER_ERR_NOMEM, "out of memory");
    }
    memcpy(&p->addr, ai->ai_addr, ai->ai_addrlen);
    p->addr_len = ai->ai_addrlen;
    freeaddrinfo(ai);
    snprintf(p->where, sizeof p->where, "%s:%s", host, port);
    snprintf(p->host, sizeof p->host, "%s", host);
    if (tls) {
        int rc = gnutls_certificate_allocate_credentials(&p->cred);
        int n = rc ? rc
                : ca_file ? gnutls_certificate_set_x509_trust_file(p->cred, ca_file, GNUTLS_X509_FMT_PEM)
                          : gnutls_certificate_set_x509_system_trust(p->cred);
        if (rc || n <= 0) {
            celer_status st = celer_errorf(CELER_ERR_INVALID, "TLS trust for %s from %s: %s", p->where,
                                           ca_file ? ca_file : "the system's CAs",
                                           n < 0 ? gnutls_strerror(n) : "no certificate found");
            if (p->cred) gnutls_certificate_free_credentials(p->cred);
            nghttp2_session_callbacks_del(p->cbs);
            free(p);
            return st;
        }
    }
    p->max_conns = max_conns < 1 ? 1 : max_conns > MAX_CONNS ? MAX_CONNS : max_conns;
    p->connect_timeout_ns = connect_timeout_ms * 1000000;
    for (int i = 0; i < MAX_CONNS; i++) p->conns[i] = (h2c_conn){.pool = p, .fd = -1};
    nghttp2_session_callbacks_set_on_header_callback(p->cbs, on_header);
    nghttp2_session_callbacks_set_on_data_chunk_recv_callback(p->cbs, on_data);
    nghttp2_session_callbacks_set_on_frame_recv_callback(p->cbs, on_frame_recv);
    nghttp2_session_callbacks_set_on_frame_send_callback(p->cbs, on_frame_send);
    nghttp2_session_callbacks_set_on_stream_close_callback(p->cbs, on_stream_close);
    *out = p;
    return CELER_OK;
}

void celer_h2c_free(celer_h2c *p) {
    if (!p) return;
    for (int i = 0; i < MAX_CONNS; i++)
        if (p->conns[i].state != C_FREE) conn_close(&p->conns[i], "the pool was closed");
    nghttp2_session_callbacks_del(p->cbs);
    if (p->cred) gnutls_certificate_free_credentials(p->cred);
    free(p);
}

/* The connection for a new call: the least busy that takes streams, or a new one when every one
 * is past STREAMS_PER_CONN and there is room. */
static h2c_conn *pick(celer_h2c *p, int64_t now_ns) {
    h2c_conn *best = NULL, *free_slot = NULL;
    for (int i = 0; i < p->max_conns; i++) {
        h2c_conn *c = &p->conns[i];
        if (c->state == C_FREE) {
            if (!free_slot) free_slot = c;
        } else if (!c->goaway && (!best || c->n_calls < best->n_calls)) {
            best = c;
        }
    }
    if (best && (best->n_calls < STREAMS_PER_CONN || !free_slot)) return best;
    if (free_slot && conn_start(p, free_slot, now_ns)) return free_slot;
    return best;
}

void celer_h2c_submit(celer_h2c *p, celer_h2c_call *call) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    int64_t now = (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
    call->sent = 0;
    call->stream_id = 0;
    h2c_conn *c = pick(p, now);
    char why[300];
    if (!c) {
        call->on_close(call->user, CELER_H2C_REFUSED, p->why);
        return;
    }
    nghttp2_nv nv[4 + 32];
    int n = 0;
#define NV(k, v) (nghttp2_nv){(uint8_t *)(k), (uint8_t *)(v), strlen(k), strlen(v), NGHTTP2_NV_FLAG_NONE}
    nv[n++] = NV(":method", "POST");
    nv[n++] = NV(":scheme", p->cred ? "https" : "http");
    nv[n++] = NV(":path", call->path);
    nv[n++] = NV(":authority", p->where);
    for (int i = 0; i < call->n_headers && n < (int)(sizeof nv / sizeof nv[0]); i++)
        nv[n++] = NV(call->headers[i].name, call->headers[i].value);
#undef NV
    nghttp2_data_provider body = {.source.ptr = call, .read_callback = read_body};
    int32_t id = nghttp2_submit_request(c->s, NULL, nv, (size_t)n, &body, call);
    if (id < 0) {
        snprintf(why, sizeof why, "HTTP/2 request to %s: %s", p->where, nghttp2_strerror(id));
        call->on_close(call->user, CELER_H2C_REFUSED, why);
        return;
    }
    call->stream_id = id;
    call->conn = c;
    call->next = c->calls;
    c->calls = call;
    c->n_calls++;
    conn_flush(c);
}

int celer_h2c_poll_fds(celer_h2c *p, struct pollfd *fds, int cap) {
    int n = 0;
    for (int i = 0; i < p->max_conns && n < cap; i++) {
        h2c_conn *c = &p->conns[i];
        if (c->state == C_FREE) continue;
        bool out = c->state == C_CONNECTING || c->out_off < c->out_len || nghttp2_session_want_write(c->s) ||
                   (c->state == C_HANDSHAKE && gnutls_record_get_direction(c->tls) == 1);
        fds[n++] = (struct pollfd){.fd = c->fd, .events = (short)(POLLIN | (out ? POLLOUT : 0))};
    }
    return n;
}

/* What poll said of fd (0 when it is not among fds). */
static short revents_of(const struct pollfd *fds, int n, int fd) {
    for (int i = 0; i < n; i++)
        if (fds[i].fd == fd) return fds[i].revents;
    return 0;
}

int64_t celer_h2c_process(celer_h2c *p, int64_t now_ns, const struct pollfd *fds, int n_fds) {
    int64_t next = 0;
    for (int i = 0; i < p->max_conns; i++) {
        h2c_conn *c = &p->conns[i];
        short ev = c->state == C_FREE ? 0 : revents_of(fds, n_fds, c->fd);
        if (c->state == C_CONNECTING) {
            int err = 0;
            socklen_t len = sizeof err;
            struct pollfd pf = {.fd = c->fd, .events = POLLOUT};
            if (poll(&pf, 1, 0) == 1) {
                getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &err, &len);
                if (err) {
                    char why[300];
                    snprintf(why, sizeof why, "cannot connect to %s: %s", p->where, strerror(err));
                    conn_close(c, why);
                    continue;
                }
                c->state = p->cred ? C_HANDSHAKE : C_READY;
            } else if (now_ns >= c->connect_deadline_ns) {
                char why[300];
                snprintf(why, sizeof why, "cannot connect to %s: no answer in time", p->where);
                conn_close(c, why);
                continue;
            } else {
                next = next && next < c->connect_deadline_ns ? next : c->connect_deadline_ns;
            }
        }
        if (c->state == C_HANDSHAKE && !handshake(c, now_ns, &next)) continue;
        if (c->state != C_READY) continue;
        if (ev & (POLLIN | POLLERR | POLLHUP)) conn_read(c); /* a socket poll found nothing in is not read */
        else if ((ev & POLLOUT) && !conn_flush(c)) continue;
        if (c->state != C_READY) continue;
        /* calls past their deadline are reset (their on_close says TIMEOUT) */
        bool reset = false;
        for (celer_h2c_call *call = c->calls; call; call = call->next) {
            if (!call->deadline_ns || (call->sent & TIMED_OUT)) continue;
            if (call->deadline_ns <= now_ns) {
                call->sent |= TIMED_OUT;
                nghttp2_submit_rst_stream(c->s, NGHTTP2_FLAG_NONE, call->stream_id, NGHTTP2_CANCEL);
                reset = true;
            } else if (!next || call->deadline_ns < next) {
                next = call->deadline_ns;
            }
        }
        if (reset && !conn_flush(c)) continue;
        if (c->goaway && !c->n_calls) conn_close(c, "");
    }
    return next;
}
