/* TLS: certificate generations, reload, mTLS, and the GnuTLS settings both ports share.
 *
 * A generation is what one successful load of --tls-cert, --tls-key and --tls-client-ca made. The
 * current one is published through an atomic pointer: every handshake asks for it (the certificate
 * callback, on both ports), so a reload takes effect at the next handshake and open connections go
 * on. GnuTLS uses the pointers the callback returned during the handshake that is running (the
 * session keeps them after, but reads them again only when asked for its own certificate, which
 * neither port does), so a replaced generation is freed RETIRE_SECS later, at a later reload, or
 * at exit.
 *
 * mTLS: the callback makes the handshake require a client certificate
 * (gnutls_certificate_server_set_request) and verify it on receipt (gnutls_session_set_verify_function)
 * against the generation's own trust list, so a client without a certificate the CA signed fails
 * the handshake on both ports; the trust list that libmicrohttpd would take is fixed for the
 * daemon's life and only requests a certificate. */
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <time.h>

#include <gnutls/abstract.h>
#include <gnutls/x509.h>

#include "log.h"
#include "tls.h"

#define MAX_CHAIN 16          /* certificates in --tls-cert (leaf and intermediates) */
#define RETIRE_SECS 600       /* a replaced generation lives this long: far beyond any handshake */

/* HTTP: TLS 1.2 and 1.3 only (GnuTLS's NORMAL alone negotiates TLS 1.0 and 1.1). */
const char celer_tls_priorities_http[] = "NORMAL:-VERS-ALL:+VERS-TLS1.3:+VERS-TLS1.2";
/* gRPC: the same versions, and in TLS 1.2 only ECDHE with AEAD ciphers (RFC 9113 9.2.2 forbids the
 * CBC suites for HTTP/2; TLS 1.3's suites are all AEAD). */
static const char priorities_h2[] = "NORMAL:-VERS-ALL:+VERS-TLS1.3:+VERS-TLS1.2:-CIPHER-ALL:+AES-256-GCM:"
                                    "+AES-128-GCM:+CHACHA20-POLY1305:-MAC-ALL:+AEAD:-KX-ALL:+ECDHE-ECDSA:+ECDHE-RSA";

typedef struct tls_gen {
    gnutls_pcert_st pcert[MAX_CHAIN];
    unsigned n_pcert;
    gnutls_privkey_t key;
    gnutls_x509_trust_list_t client_ca; /* NULL without --tls-client-ca */
    char serial[2 * 40 + 1];            /* hex */
    time_t not_after;
    struct tls_gen *next_retired;
    time_t retired_at;
} tls_gen;

struct celer_tls {
    const char *cert_file, *key_file, *ca_file; /* the options' strings (borrowed); ca_file "" = no mTLS */
    _Atomic(tls_gen *) current;
    tls_gen *retired; /* replaced generations, newest first (the signal thread only) */
    gnutls_certificate_credentials_t cred; /* gRPC sessions: the callback only */
    gnutls_priority_t prio_h2;
    celer_series *m_expiry, *m_failures;
};

/* The GnuTLS callbacks take no user pointer: they find the process's one celer_tls here. */
static _Atomic(celer_tls *) the_tls;

static void gen_free(tls_gen *g) {
    if (!g) return;
    for (unsigned i = 0; i < g->n_pcert; i++) gnutls_pcert_deinit(&g->pcert[i]);
    if (g->key) gnutls_privkey_deinit(g->key);
    if (g->client_ca) gnutls_x509_trust_list_deinit(g->client_ca, 1);
    free(g);
}

static celer_status read_file(const char *flag, const char *path, gnutls_datum_t *out) {
    int r = gnutls_load_file(path, out);
    if (r < 0) return celer_errorf(CELER_ERR_IO, "%s %s: cannot read it (%s)", flag, path, gnutls_strerror(r));
    return CELER_OK;
}

/* The serial (hex) and not-after date of the leaf. */
static celer_status leaf_facts(const char *path, tls_gen *g) {
    gnutls_x509_crt_t crt;
    int r = gnutls_x509_crt_init(&crt);
    if (r >= 0) r = gnutls_x509_crt_import(crt, &g->pcert[0].cert, GNUTLS_X509_FMT_DER);
    if (r < 0) {
        gnutls_x509_crt_deinit(crt);
        return celer_errorf(CELER_ERR_INVALID, "--tls-cert %s: its first certificate: %s", path, gnutls_strerror(r));
    }
    unsigned char serial[40];
    size_t n = sizeof serial;
    if (gnutls_x509_crt_get_serial(crt, serial, &n) < 0) n = 0;
    for (size_t i = 0; i < n; i++) snprintf(g->serial + 2 * i, 3, "%02X", serial[i]);
    g->not_after = gnutls_x509_crt_get_expiration_time(crt);
    gnutls_x509_crt_deinit(crt);
    return CELER_OK;
}

/* The key's public half is the leaf's (compared by their SHA-256 key ids). */
static celer_status key_matches(const celer_tls *t, tls_gen *g) {
    unsigned char a[64], b[64];
    size_t na = sizeof a, nb = sizeof b;
    gnutls_pubkey_t pub;
    int r = gnutls_pubkey_init(&pub);
    if (r >= 0) r = gnutls_pubkey_import_privkey(pub, g->key, 0, 0);
    if (r >= 0) r = gnutls_pubkey_get_key_id(pub, GNUTLS_KEYID_USE_SHA256, a, &na);
    gnutls_pubkey_deinit(pub);
    if (r < 0) return celer_errorf(CELER_ERR_INVALID, "--tls-key %s: %s", t->key_file, gnutls_strerror(r));
    r = gnutls_pubkey_get_key_id(g->pcert[0].pubkey, GNUTLS_KEYID_USE_SHA256, b, &nb);
    if (r < 0) return celer_errorf(CELER_ERR_INVALID, "--tls-cert %s: %s", t->cert_file, gnutls_strerror(r));
    if (na != nb || memcmp(a, b, na))
        return celer_errorf(CELER_ERR_INVALID, "--tls-key %s does not belong to the certificate of --tls-cert %s "
                            "(expected the private key of its first certificate)", t->key_file, t->cert_file);
    return CELER_OK;
}

/* Loads a whole generation from the files; nothing of it is kept on failure. */
static celer_status gen_load(const celer_tls *t, tls_gen **out) {
    *out = NULL;
    tls_gen *g = calloc(1, sizeof *g);
    if (!g) return celer_errorf(CELER_ERR_NOMEM, "no memory for the TLS certificate");
    gnutls_datum_t cert = {NULL, 0}, key = {NULL, 0};
    celer_status st = read_file("--tls-cert", t->cert_file, &cert);
    if (st) goto fail;
    g->n_pcert = MAX_CHAIN;
    int r = gnutls_pcert_list_import_x509_raw(g->pcert, &g->n_pcert, &cert, GNUTLS_X509_FMT_PEM,
                                              GNUTLS_X509_CRT_LIST_FAIL_IF_UNSORTED);
    if (r < 0 || g->n_pcert == 0) {
        g->n_pcert = 0;
        st = celer_errorf(CELER_ERR_INVALID, "--tls-cert %s: expected PEM certificates, leaf first then its issuers "
                          "(at most %d): %s", t->cert_file, MAX_CHAIN, r < 0 ? gnutls_strerror(r) : "none found");
        goto fail;
    }
    if ((st = leaf_facts(t->cert_file, g)) || (st = read_file("--tls-key", t->key_file, &key))) goto fail;
    r = gnutls_privkey_init(&g->key);
    if (r >= 0) r = gnutls_privkey_import_x509_raw(g->key, &key, GNUTLS_X509_FMT_PEM, NULL, 0);
    if (r < 0) {
        st = celer_errorf(CELER_ERR_INVALID, "--tls-key %s: expected an unencrypted PEM private key: %s", t->key_file,
                          gnutls_strerror(r));
        goto fail;
    }
    if ((st = key_matches(t, g))) goto fail;
    if (t->ca_file[0]) {
        r = gnutls_x509_trust_list_init(&g->client_ca, 0);
        if (r >= 0) r = gnutls_x509_trust_list_add_trust_file(g->client_ca, t->ca_file, NULL, GNUTLS_X509_FMT_PEM, 0, 0);
        if (r <= 0) {
            st = celer_errorf(CELER_ERR_INVALID, "--tls-client-ca %s: expected PEM CA certificates: %s", t->ca_file,
                              r < 0 ? gnutls_strerror(r) : "none found");
            goto fail;
        }
    }
    *out = g;
fail:
    gnutls_free(cert.data);
    if (key.data) {
        memset(key.data, 0, key.size); /* no copy of the key stays in the heap */
        gnutls_free(key.data);
    }
    if (st) gen_free(g);
    return st;
}

static void log_gen(const char *what, const celer_tls *t, const tls_gen *g) {
    char date[32] = "?";
    struct tm tm;
    if (gmtime_r(&g->not_after, &tm)) strftime(date, sizeof date, "%Y-%m-%dT%H:%M:%SZ", &tm);
    celer_log(CELER_LOG_INFO, "TLS %s: %s, serial %s, valid until %s (%u certificates in the chain)%s%s", what,
              t->cert_file, g->serial, date, g->n_pcert, t->ca_file[0] ? ", client certificates required, CA " : "",
              t->ca_file);
    if (g->not_after < time(NULL))
        celer_log(CELER_LOG_WARNING, "TLS certificate %s expired at %s: clients will refuse it", t->cert_file, date);
}

/* mTLS, on receipt of the client's certificates during the handshake: non-zero fails it. */
static int verify_client(gnutls_session_t session) {
    celer_tls *t = atomic_load(&the_tls);
    tls_gen *g = t ? atomic_load(&t->current) : NULL;
    if (!g || !g->client_ca) return -1;
    unsigned n = 0;
    const gnutls_datum_t *raw = gnutls_certificate_get_peers(session, &n);
    if (!raw || n == 0) return -1;
    if (n > MAX_CHAIN) n = MAX_CHAIN;
    gnutls_x509_crt_t crts[MAX_CHAIN];
    unsigned ok = 0;
    for (; ok < n; ok++)
        if (gnutls_x509_crt_init(&crts[ok]) < 0) break;
        else if (gnutls_x509_crt_import(crts[ok], &raw[ok], GNUTLS_X509_FMT_DER) < 0) {
            gnutls_x509_crt_deinit(crts[ok]);
            break;
        }
    unsigned status = GNUTLS_CERT_INVALID;
    gnutls_typed_vdata_st purpose = {.type = GNUTLS_DT_KEY_PURPOSE_OID, .data = (void *)GNUTLS_KP_TLS_WWW_CLIENT};
    int r = ok == n ? gnutls_x509_trust_list_verify_crt2(g->client_ca, crts, n, &purpose, 1, 0, &status, NULL) : -1;
    for (unsigned i = 0; i < ok; i++) gnutls_x509_crt_deinit(crts[i]);
    if (r < 0 || status) {
        /* verbose only: anyone can make these lines */
        if (celer_log_verbose_enabled(1)) {
            gnutls_datum_t why = {NULL, 0};
            if (r >= 0) gnutls_certificate_verification_status_print(status, GNUTLS_CRT_X509, &why, 0);
            celer_log_verbose(1, "TLS client certificate refused: %s", why.data ? (char *)why.data : "unreadable");
            gnutls_free(why.data);
        }
        return -1;
    }
    return 0;
}

int celer_tls_cert_callback(gnutls_session_t session, const gnutls_datum_t *req_ca_dn, int nreqs,
                            const gnutls_pk_algorithm_t *pk_algos, int pk_algos_length, gnutls_pcert_st **pcert,
                            unsigned int *pcert_length, gnutls_privkey_t *pkey) {
    (void)req_ca_dn, (void)nreqs, (void)pk_algos, (void)pk_algos_length;
    celer_tls *t = atomic_load(&the_tls);
    tls_gen *g = t ? atomic_load(&t->current) : NULL;
    if (!g) return -1;
    if (t->ca_file[0]) {
        /* the server's CertificateRequest is sent after this callback (TLS 1.2 and 1.3) */
        gnutls_certificate_server_set_request(session, GNUTLS_CERT_REQUIRE);
        gnutls_session_set_verify_function(session, verify_client);
    }
    *pcert = g->pcert;
    *pcert_length = g->n_pcert;
    *pkey = g->key;
    return 0;
}

bool celer_tls_mutual(const celer_tls *t) { return t && t->ca_file[0]; }

celer_status celer_tls_init(const celer_server_options *opts, celer_metrics *metrics, celer_tls **out) {
    *out = NULL;
    if (!opts->tls_cert || !opts->tls_cert[0]) return CELER_OK; /* the flags' pairing is checked by celer_server_parse_args */
    if (atomic_load(&the_tls)) return celer_errorf(CELER_ERR_INTERNAL, "TLS is set up once per process");
    celer_tls *t = calloc(1, sizeof *t);
    if (!t) return celer_errorf(CELER_ERR_NOMEM, "no memory for TLS");
    t->cert_file = opts->tls_cert, t->key_file = opts->tls_key ? opts->tls_key : "";
    t->ca_file = opts->tls_client_ca ? opts->tls_client_ca : "";
    tls_gen *g;
    celer_status st = gen_load(t, &g);
    if (st) {
        free(t);
        return st;
    }
    const char *where = NULL;
    if (gnutls_certificate_allocate_credentials(&t->cred) < 0 ||
        gnutls_priority_init(&t->prio_h2, priorities_h2, &where) < 0) {
        if (t->cred) gnutls_certificate_free_credentials(t->cred);
        gen_free(g);
        free(t);
        return celer_errorf(CELER_ERR_INTERNAL, "GnuTLS refused the gRPC priorities at '%s'", where ? where : "?");
    }
    gnutls_certificate_set_retrieve_function2(t->cred, celer_tls_cert_callback);
    atomic_store(&t->current, g);
    t->m_expiry = celer_metrics_gauge(metrics, "celer_tls_cert_expiry_timestamp_seconds",
                                      "Not-after time of the served TLS certificate (Unix seconds).", "");
    t->m_failures = celer_metrics_counter(metrics, "celer_tls_reload_failures_total",
                                          "TLS reloads (SIGHUP) that kept the old certificate because a file was "
                                          "broken.", "");
    celer_metrics_set(t->m_expiry, (double)g->not_after);
    log_gen("certificate", t, g);
    atomic_store(&the_tls, t);
    *out = t;
    return CELER_OK;
}

void celer_tls_reload(celer_tls *t) {
    if (!t) return;
    tls_gen *g;
    if (gen_load(t, &g)) {
        celer_metrics_add(t->m_failures, 1);
        celer_log(CELER_LOG_ERROR, "TLS reload failed, still serving serial %s: %s", atomic_load(&t->current)->serial,
                  celer_error_message());
        return;
    }
    time_t now = time(NULL);
    tls_gen *old = atomic_exchange(&t->current, g);
    old->retired_at = now;
    old->next_retired = t->retired;
    t->retired = old;
    /* the list is newest first: cut it after the last one still young */
    for (tls_gen **p = &t->retired; *p; p = &(*p)->next_retired)
        if (now - (*p)->retired_at >= RETIRE_SECS) {
            for (tls_gen *q = *p, *next; q; q = next) {
                next = q->next_retired;
                gen_free(q);
            }
            *p = NULL;
            break;
        }
    celer_metrics_set(t->m_expiry, (double)g->not_after);
    log_gen("certificate reloaded", t, g);
}

void celer_tls_free(celer_tls *t) {
    if (!t) return;
    atomic_store(&the_tls, NULL);
    for (tls_gen *q = t->retired, *next; q; q = next) {
        next = q->next_retired;
        gen_free(q);
    }
    gen_free(atomic_load(&t->current));
    gnutls_certificate_free_credentials(t->cred);
    gnutls_priority_deinit(t->prio_h2);
    free(t);
}

celer_status celer_tls_session_new(celer_tls *t, int fd, gnutls_session_t *out) {
    gnutls_session_t s;
    int r = gnutls_init(&s, GNUTLS_SERVER | GNUTLS_NONBLOCK | GNUTLS_NO_SIGNAL);
    if (r < 0) return celer_errorf(CELER_ERR_NOMEM, "TLS session: %s", gnutls_strerror(r));
    gnutls_datum_t h2 = {(unsigned char *)"h2", 2};
    if ((r = gnutls_priority_set(s, t->prio_h2)) < 0 || (r = gnutls_credentials_set(s, GNUTLS_CRD_CERTIFICATE, t->cred)) < 0 ||
        (r = gnutls_alpn_set_protocols(s, &h2, 1, GNUTLS_ALPN_MANDATORY)) < 0) {
        gnutls_deinit(s);
        return celer_errorf(CELER_ERR_INTERNAL, "TLS session: %s", gnutls_strerror(r));
    }
    gnutls_transport_set_int(s, fd);
    gnutls_handshake_set_timeout(s, 0); /* the IO thread's own deadline applies (grpc.c) */
    *out = s;
    return CELER_OK;
}

bool celer_tls_alpn_h2(gnutls_session_t session) {
    gnutls_datum_t p;
    return gnutls_alpn_get_selected_protocol(session, &p) == 0 && p.size == 2 && !memcmp(p.data, "h2", 2);
}

/* ---- HTTPS: an answer in one write ----
 * Without this, each HTTPS answer cost libmicrohttpd one more sendmsg than plain HTTP (a second TLS
 * record for the body). The held record is at most an answer's header. */

#define HOLD_MAX 2048 /* libmicrohttpd's answer headers are a few hundred bytes; larger ones go out alone */
#define PUSH_IOV 32   /* records a write takes at most; GnuTLS sends the rest with the next one */

struct celer_tls_out {
    int fd;
    bool armed;
    size_t held;
    unsigned char buf[HOLD_MAX];
};

/* GnuTLS's vector push: the held bytes first, then the records given. Returns the bytes of `iov`
 * written; -1 with errno EAGAIN when the socket took only held bytes (GnuTLS offers the records
 * again when libmicrohttpd retries, and the rest of the held bytes still go first). */
static ssize_t out_push(gnutls_transport_ptr_t p, const giovec_t *iov, int iovcnt) {
    celer_tls_out *o = p;
    size_t total = 0;
    for (int i = 0; i < iovcnt; i++) total += iov[i].iov_len;
    if (o->armed) {
        o->armed = false;
        if (!o->held && total <= sizeof o->buf) {
            for (int i = 0; i < iovcnt; i++) {
                memcpy(o->buf + o->held, iov[i].iov_base, iov[i].iov_len);
                o->held += iov[i].iov_len;
            }
            return (ssize_t)total;
        }
    }
    struct iovec v[1 + PUSH_IOV];
    int n = 0;
    if (o->held) v[n++] = (struct iovec){o->buf, o->held};
    for (int i = 0; i < iovcnt && i < PUSH_IOV; i++) v[n++] = (struct iovec){iov[i].iov_base, iov[i].iov_len};
    struct msghdr m = {.msg_iov = v, .msg_iovlen = (size_t)n};
    ssize_t r = sendmsg(o->fd, &m, MSG_NOSIGNAL);
    if (r < 0 || !o->held) return r;
    size_t sent = (size_t)r;
    if (sent <= o->held) {
        memmove(o->buf, o->buf + sent, o->held - sent);
        o->held -= sent;
        errno = EAGAIN;
        return -1;
    }
    sent -= o->held;
    o->held = 0;
    return (ssize_t)sent;
}

celer_status celer_tls_out_attach(gnutls_session_t session, int fd, celer_tls_out **out) {
    celer_tls_out *o = malloc(sizeof *o);
    if (!o) return celer_errorf(CELER_ERR_NOMEM, "TLS connection: out of memory");
    o->fd = fd;
    o->armed = false;
    o->held = 0;
    /* receiving keeps GnuTLS's own pull on the descriptor; sending comes here */
    gnutls_transport_set_ptr2(session, (gnutls_transport_ptr_t)(intptr_t)fd, o);
    gnutls_transport_set_vec_push_function(session, out_push);
    *out = o;
    return CELER_OK;
}

void celer_tls_out_hold_next(celer_tls_out *o) { o->armed = true; }

bool celer_tls_out_flush(celer_tls_out *o) {
    o->armed = false;
    if (!o->held) return true;
    while (o->held) {
        ssize_t r = send(o->fd, o->buf, o->held, MSG_NOSIGNAL);
        if (r < 0 && errno == EINTR) continue;
        if (r <= 0) return false;
        memmove(o->buf, o->buf + r, o->held - (size_t)r);
        o->held -= (size_t)r;
    }
    /* no body followed, so libmicrohttpd may have left the socket corked for it */
    int off = 0;
    setsockopt(o->fd, IPPROTO_TCP, TCP_CORK, &off, sizeof off);
    return true;
}

void celer_tls_out_free(celer_tls_out *o) { free(o); } /* NULL: nothing */
