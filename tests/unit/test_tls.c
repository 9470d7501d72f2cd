/* TLS certificate generations (server/tls.c): the files loaded and checked at start (a key of
 * another certificate, a missing file, a file without certificates), SIGHUP's reload publishing a
 * new generation and keeping the serving one when a file is broken, the expiry gauge and the
 * failure counter, and the client CA reloaded with the rest. Certificates are made here with
 * GnuTLS (self-signed P-256). And the HTTPS sender (celer_tls_out) over a socket pair: a held
 * header goes out with its body, or alone when flushed, in order when the socket fills. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <sys/socket.h>
#include <unistd.h>

#include <gnutls/x509.h>

#include "server/tls.h"
#include "testutil.h"

static char dir[64];

static char *path(const char *name) {
    static char buf[4][128];
    static int i;
    char *p = buf[i++ % 4];
    snprintf(p, 128, "%s/%s", dir, name);
    return p;
}

static void write_file(const char *name, const void *data, size_t len) {
    FILE *f = fopen(path(name), "wb");
    assert_non_null(f);
    assert_int_equal(fwrite(data, 1, len, f), len);
    fclose(f);
}

/* A self-signed certificate (serial, valid `days` from now) and its key as NAME.pem, NAME.key. */
static time_t make_cert(const char *name, unsigned char serial, int days) {
    gnutls_x509_privkey_t key;
    gnutls_x509_crt_t crt;
    time_t now = time(NULL), expires = now + (time_t)days * 86400;
    assert_int_equal(gnutls_x509_privkey_init(&key), 0);
    assert_int_equal(gnutls_x509_privkey_generate(key, GNUTLS_PK_ECDSA, GNUTLS_CURVE_TO_BITS(GNUTLS_ECC_CURVE_SECP256R1), 0),
                     0);
    assert_int_equal(gnutls_x509_crt_init(&crt), 0);
    assert_int_equal(gnutls_x509_crt_set_version(crt, 3), 0);
    assert_int_equal(gnutls_x509_crt_set_serial(crt, &serial, 1), 0);
    assert_int_equal(gnutls_x509_crt_set_activation_time(crt, now - 60), 0);
    assert_int_equal(gnutls_x509_crt_set_expiration_time(crt, expires), 0);
    assert_int_equal(gnutls_x509_crt_set_dn(crt, "CN=localhost", NULL), 0);
    assert_int_equal(gnutls_x509_crt_set_key(crt, key), 0);
    assert_int_equal(gnutls_x509_crt_set_basic_constraints(crt, 1, -1), 0);
    assert_int_equal(gnutls_x509_crt_sign2(crt, crt, key, GNUTLS_DIG_SHA256, 0), 0);
    gnutls_datum_t c, k;
    assert_int_equal(gnutls_x509_crt_export2(crt, GNUTLS_X509_FMT_PEM, &c), 0);
    assert_int_equal(gnutls_x509_privkey_export2(key, GNUTLS_X509_FMT_PEM, &k), 0);
    char file[64];
    snprintf(file, sizeof file, "%s.pem", name);
    write_file(file, c.data, c.size);
    snprintf(file, sizeof file, "%s.key", name);
    write_file(file, k.data, k.size);
    gnutls_free(c.data);
    gnutls_free(k.data);
    gnutls_x509_crt_deinit(crt);
    gnutls_x509_privkey_deinit(key);
    return expires;
}

static void copy(const char *from, const char *to) {
    FILE *f = fopen(path(from), "rb");
    assert_non_null(f);
    char buf[8192];
    size_t n = fread(buf, 1, sizeof buf, f);
    fclose(f);
    write_file(to, buf, n);
}

static celer_server_options options(const char *ca) {
    celer_server_options o = {0};
    o.tls_cert = strdup(path("served.pem"));
    o.tls_key = strdup(path("served.key"));
    o.tls_client_ca = ca ? strdup(path(ca)) : "";
    return o;
}

static void free_options(celer_server_options *o) {
    free((char *)o->tls_cert);
    free((char *)o->tls_key);
    if (o->tls_client_ca[0]) free((char *)o->tls_client_ca);
}

/* The value of a metric without labels in the exposition text; -1 when absent. */
static double metric(celer_metrics *m, const char *name) {
    celer_jbuf out;
    celer_jbuf_init(&out, 0);
    celer_metrics_render(m, &out);
    double v = -1;
    char pat[128];
    snprintf(pat, sizeof pat, "\n%s ", name);
    const char *p = out.data ? strstr(out.data, pat) : NULL;
    if (p) v = strtod(p + strlen(pat), NULL);
    celer_jbuf_free(&out);
    return v;
}

/* What the certificate callback hands GnuTLS now. */
static gnutls_pcert_st *served(gnutls_session_t s, unsigned *n) {
    gnutls_pcert_st *pcert = NULL;
    gnutls_privkey_t key = NULL;
    *n = 0;
    assert_int_equal(celer_tls_cert_callback(s, NULL, 0, NULL, 0, &pcert, n, &key), 0);
    assert_non_null(key);
    return pcert;
}

static unsigned char serial_of(const gnutls_pcert_st *p) {
    gnutls_x509_crt_t crt;
    unsigned char serial[20];
    size_t n = sizeof serial;
    assert_int_equal(gnutls_x509_crt_init(&crt), 0);
    assert_int_equal(gnutls_x509_crt_import(crt, &p->cert, GNUTLS_X509_FMT_DER), 0);
    assert_int_equal(gnutls_x509_crt_get_serial(crt, serial, &n), 0);
    gnutls_x509_crt_deinit(crt);
    return serial[n - 1];
}

static void test_reload(void **state) {
    (void)state;
    time_t exp1 = make_cert("one", 1, 10), exp2 = make_cert("two", 2, 20);
    copy("one.pem", "served.pem");
    copy("one.key", "served.key");
    celer_metrics *m;
    assert_int_equal(celer_metrics_init(&m), CELER_OK);
    celer_server_options o = options(NULL);
    celer_tls *t;
    assert_int_equal(celer_tls_init(&o, m, &t), CELER_OK);
    assert_non_null(t);
    assert_false(celer_tls_mutual(t));
    unsigned n;
    gnutls_pcert_st *p1 = served(NULL, &n);
    assert_int_equal(n, 1);
    assert_int_equal(serial_of(p1), 1);
    assert_true(metric(m, "celer_tls_cert_expiry_timestamp_seconds") == (double)exp1);
    assert_true(metric(m, "celer_tls_reload_failures_total") == 0);

    /* a broken key: the serving generation stays, the failure is counted */
    write_file("served.key", "garbage\n", 8);
    celer_tls_reload(t);
    assert_ptr_equal(served(NULL, &n), p1);
    assert_true(metric(m, "celer_tls_reload_failures_total") == 1);

    /* the second certificate: a new generation (the first stays allocated for its grace period) */
    copy("two.pem", "served.pem");
    copy("two.key", "served.key");
    celer_tls_reload(t);
    gnutls_pcert_st *p2 = served(NULL, &n);
    assert_ptr_not_equal(p2, p1);
    assert_int_equal(serial_of(p2), 2);
    assert_int_equal(serial_of(p1), 1); /* still readable: a handshake may hold it */
    assert_true(metric(m, "celer_tls_cert_expiry_timestamp_seconds") == (double)exp2);

    /* a key of another certificate, then an empty certificate file: both kept out */
    copy("one.key", "served.key");
    celer_tls_reload(t);
    assert_ptr_equal(served(NULL, &n), p2);
    copy("two.key", "served.key");
    write_file("served.pem", "", 0);
    celer_tls_reload(t);
    assert_ptr_equal(served(NULL, &n), p2);
    assert_true(metric(m, "celer_tls_reload_failures_total") == 3);
    assert_true(metric(m, "celer_tls_cert_expiry_timestamp_seconds") == (double)exp2);
    celer_tls_free(t);
    free_options(&o);
    celer_metrics_free(m);
}

static void test_start_errors(void **state) {
    (void)state;
    make_cert("one", 1, 10);
    make_cert("two", 2, 10);
    celer_metrics *m;
    assert_int_equal(celer_metrics_init(&m), CELER_OK);
    celer_tls *t = (celer_tls *)1;
    celer_server_options off = {.tls_cert = "", .tls_key = "", .tls_client_ca = ""};
    assert_int_equal(celer_tls_init(&off, m, &t), CELER_OK);
    assert_null(t); /* TLS off */

    copy("one.pem", "served.pem");
    copy("two.key", "served.key");
    celer_server_options o = options(NULL);
    assert_int_equal(celer_tls_init(&o, m, &t), CELER_ERR_INVALID);
    assert_non_null(strstr(celer_error_message(), "does not belong"));

    unlink(path("served.pem"));
    assert_int_equal(celer_tls_init(&o, m, &t), CELER_ERR_IO);
    assert_non_null(strstr(celer_error_message(), "served.pem"));

    copy("one.key", "served.pem"); /* a key where the certificate should be */
    assert_int_equal(celer_tls_init(&o, m, &t), CELER_ERR_INVALID);
    assert_non_null(strstr(celer_error_message(), "expected PEM certificates"));

    copy("one.pem", "served.pem");
    copy("one.key", "served.key");
    write_file("ca.pem", "not a certificate\n", 18);
    celer_server_options with_ca = options("ca.pem");
    assert_int_equal(celer_tls_init(&with_ca, m, &t), CELER_ERR_INVALID);
    assert_non_null(strstr(celer_error_message(), "--tls-client-ca"));
    free_options(&with_ca);
    free_options(&o);
    celer_metrics_free(m);
}

/* mTLS: the callback makes the session require a client certificate; the client CA reloads. */
static void test_client_ca(void **state) {
    (void)state;
    make_cert("one", 1, 10);
    make_cert("ca1", 3, 10);
    copy("one.pem", "served.pem");
    copy("one.key", "served.key");
    copy("ca1.pem", "client_ca.pem");
    celer_metrics *m;
    assert_int_equal(celer_metrics_init(&m), CELER_OK);
    celer_server_options o = options("client_ca.pem");
    celer_tls *t;
    assert_int_equal(celer_tls_init(&o, m, &t), CELER_OK);
    assert_true(celer_tls_mutual(t));
    gnutls_session_t s;
    assert_int_equal(gnutls_init(&s, GNUTLS_SERVER), 0);
    unsigned n;
    gnutls_pcert_st *p1 = served(s, &n);
    write_file("client_ca.pem", "broken\n", 7);
    celer_tls_reload(t);
    assert_ptr_equal(served(s, &n), p1); /* a broken client CA keeps the whole generation */
    make_cert("ca2", 4, 10);
    copy("ca2.pem", "client_ca.pem");
    celer_tls_reload(t);
    assert_ptr_not_equal(served(s, &n), p1);
    assert_true(metric(m, "celer_tls_reload_failures_total") == 1);
    gnutls_deinit(s);
    celer_tls_free(t);
    free_options(&o);
    celer_metrics_free(m);
}

/* A gRPC session: h2 offered, and the priorities GnuTLS took. */
static void test_session(void **state) {
    (void)state;
    make_cert("one", 1, 10);
    copy("one.pem", "served.pem");
    copy("one.key", "served.key");
    celer_metrics *m;
    assert_int_equal(celer_metrics_init(&m), CELER_OK);
    celer_server_options o = options(NULL);
    celer_tls *t;
    assert_int_equal(celer_tls_init(&o, m, &t), CELER_OK);
    gnutls_session_t s;
    assert_int_equal(celer_tls_session_new(t, -1, &s), CELER_OK);
    assert_false(celer_tls_alpn_h2(s)); /* nothing agreed before a handshake */
    gnutls_deinit(s);
    celer_tls_free(t);
    free_options(&o);
    celer_metrics_free(m);
}

/* A server session (celer_tls_out attached) and a client session over a non-blocking socket pair,
 * after their handshake. */
typedef struct pair {
    int fd[2];
    gnutls_certificate_credentials_t scred, ccred;
    gnutls_session_t server, client;
    celer_tls_out *out;
} pair;

static void pair_open(pair *p) {
    make_cert("one", 1, 10);
    assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, p->fd), 0);
    for (int i = 0; i < 2; i++) fcntl(p->fd[i], F_SETFL, O_NONBLOCK);
    int small = 4096; /* so that a large body fills it */
    setsockopt(p->fd[0], SOL_SOCKET, SO_SNDBUF, &small, sizeof small);
    assert_int_equal(gnutls_certificate_allocate_credentials(&p->scred), 0);
    assert_int_equal(gnutls_certificate_set_x509_key_file(p->scred, path("one.pem"), path("one.key"), GNUTLS_X509_FMT_PEM), 0);
    assert_int_equal(gnutls_certificate_allocate_credentials(&p->ccred), 0);
    assert_int_equal(gnutls_init(&p->server, GNUTLS_SERVER | GNUTLS_NONBLOCK), 0);
    assert_int_equal(gnutls_init(&p->client, GNUTLS_CLIENT | GNUTLS_NONBLOCK), 0);
    assert_int_equal(gnutls_priority_set_direct(p->server, celer_tls_priorities_http, NULL), 0);
    assert_int_equal(gnutls_set_default_priority(p->client), 0);
    assert_int_equal(gnutls_credentials_set(p->server, GNUTLS_CRD_CERTIFICATE, p->scred), 0);
    assert_int_equal(gnutls_credentials_set(p->client, GNUTLS_CRD_CERTIFICATE, p->ccred), 0);
    gnutls_transport_set_int(p->client, p->fd[1]);
    assert_int_equal(celer_tls_out_attach(p->server, p->fd[0], &p->out), CELER_OK);
    int rs = -1, rc = -1;
    for (int i = 0; i < 1000 && (rs || rc); i++) {
        if (rs) rs = gnutls_handshake(p->server);
        if (rc) rc = gnutls_handshake(p->client);
        assert_true(rs == 0 || rs == GNUTLS_E_AGAIN);
        assert_true(rc == 0 || rc == GNUTLS_E_AGAIN);
    }
    assert_int_equal(rs, 0);
    assert_int_equal(rc, 0);
}

static void pair_close(pair *p) {
    gnutls_deinit(p->server);
    gnutls_deinit(p->client);
    celer_tls_out_free(p->out);
    gnutls_certificate_free_credentials(p->scred);
    gnutls_certificate_free_credentials(p->ccred);
    close(p->fd[0]);
    close(p->fd[1]);
}

static bool socket_empty(int fd) {
    char c;
    return recv(fd, &c, 1, MSG_PEEK | MSG_DONTWAIT) < 0 && errno == EAGAIN;
}

/* Appends what the client can read now to buf (at *len, up to cap). */
static void client_read(pair *p, char *buf, size_t *len, size_t cap) {
    ssize_t r;
    while (*len < cap && (r = gnutls_record_recv(p->client, buf + *len, cap - *len)) > 0) *len += (size_t)r;
}

static void test_out_hold(void **state) {
    (void)state;
    pair p;
    pair_open(&p);
    char got[64];
    size_t len = 0;
    /* a held header goes with its body */
    celer_tls_out_hold_next(p.out);
    assert_int_equal(gnutls_record_send(p.server, "HEADER ", 7), 7);
    assert_true(socket_empty(p.fd[1]));
    assert_int_equal(gnutls_record_send(p.server, "BODY", 4), 4);
    client_read(&p, got, &len, sizeof got);
    assert_int_equal(len, 11);
    assert_memory_equal(got, "HEADER BODY", 11);
    /* without a body, the flush sends it */
    celer_tls_out_hold_next(p.out);
    assert_int_equal(gnutls_record_send(p.server, "ALONE", 5), 5);
    assert_true(socket_empty(p.fd[1]));
    assert_true(celer_tls_out_flush(p.out));
    len = 0;
    client_read(&p, got, &len, sizeof got);
    assert_int_equal(len, 5);
    assert_memory_equal(got, "ALONE", 5);
    assert_true(celer_tls_out_flush(p.out)); /* nothing held: nothing to do */
    /* not armed: each record goes at once */
    assert_int_equal(gnutls_record_send(p.server, "NOW", 3), 3);
    assert_false(socket_empty(p.fd[1]));
    pair_close(&p);
}

static void test_out_full_socket(void **state) {
    (void)state;
    pair p;
    pair_open(&p);
    enum { BODY = 200000 };
    char *body = malloc(BODY), *got = malloc(BODY + 16);
    for (int i = 0; i < BODY; i++) body[i] = (char)('a' + i % 26);
    celer_tls_out_hold_next(p.out);
    assert_int_equal(gnutls_record_send(p.server, "HEADER", 6), 6);
    /* the body outgrows the socket: GnuTLS is told to wait, retries, and the header stays first */
    size_t sent = 0, len = 0;
    int again = 0;
    while (sent < BODY) {
        ssize_t r = gnutls_record_send(p.server, body + sent, BODY - sent > 16384 ? 16384 : BODY - sent);
        if (r == GNUTLS_E_AGAIN) {
            again++;
            client_read(&p, got, &len, BODY + 16);
            continue;
        }
        assert_true(r > 0);
        sent += (size_t)r;
    }
    for (int i = 0; i < 100 && len < BODY + 6; i++) client_read(&p, got, &len, BODY + 16);
    assert_true(again > 0);
    assert_int_equal(len, BODY + 6);
    assert_memory_equal(got, "HEADER", 6);
    assert_memory_equal(got + 6, body, BODY);
    free(body);
    free(got);
    pair_close(&p);
}

static int setup(void **state) {
    (void)state;
    snprintf(dir, sizeof dir, "/tmp/celer-test-tls-XXXXXX");
    return mkdtemp(dir) ? 0 : -1;
}

static int teardown(void **state) {
    (void)state;
    const char *names[] = {"one.pem", "one.key", "two.pem", "two.key", "ca1.pem", "ca1.key", "ca2.pem", "ca2.key",
                           "served.pem", "served.key", "client_ca.pem", "ca.pem"};
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) unlink(path(names[i]));
    rmdir(dir);
    return 0;
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_reload),
        cmocka_unit_test(test_start_errors),
        cmocka_unit_test(test_client_ca),
        cmocka_unit_test(test_session),
        cmocka_unit_test(test_out_hold),
        cmocka_unit_test(test_out_full_socket),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
