/* TLS for the HTTP and gRPC ports (tls.c), private to src/server: the certificate generations
 * (--tls-cert chain, --tls-key, --tls-client-ca trust list) behind one atomic pointer, reloaded by
 * SIGHUP, and the GnuTLS pieces both transports use: the per-handshake certificate callback, the
 * pinned priorities (TLS 1.2 and 1.3 only), mTLS verification during the handshake and, for gRPC,
 * a whole server session with ALPN h2. docs/server.md, "Security". */
#ifndef CELER_SERVER_TLS_H
#define CELER_SERVER_TLS_H

#include <gnutls/abstract.h>
#include <gnutls/gnutls.h>
#include <stdbool.h>

#include "server/metrics.h"
#include "server/server.h"

typedef struct celer_tls celer_tls;

/* Reads opts->tls_cert / tls_key / tls_client_ca (paired as celer_server_parse_args checks). *out
 * stays NULL (and CELER_OK) when TLS is off (no --tls-cert). CELER_ERR_IO / CELER_ERR_INVALID naming the file when one cannot be
 * read, holds no certificate or key, or the key does not belong to the certificate. Registers
 * celer_tls_cert_expiry_timestamp_seconds and celer_tls_reload_failures_total in `metrics`
 * (borrowed, must outlive the object). One celer_tls per process: the GnuTLS callbacks, which take
 * no user pointer, find it through a file-scope pointer. */
celer_status celer_tls_init(const celer_server_options *opts, celer_metrics *metrics, celer_tls **out);
/* SIGHUP: reads the three files again and, when all of them load and agree, publishes them as the
 * new generation (handshakes from then on use it; open connections go on). Otherwise keeps the
 * current one, logs why and counts the failure. NULL: nothing. */
void celer_tls_reload(celer_tls *t);
/* After both transports stopped: frees every generation. NULL: nothing. */
void celer_tls_free(celer_tls *t);

/* true when client certificates are required (--tls-client-ca). */
bool celer_tls_mutual(const celer_tls *t);
/* For libmicrohttpd (MHD_OPTION_HTTPS_CERT_CALLBACK and MHD_OPTION_HTTPS_PRIORITIES): the
 * certificate callback of the current generation (with --tls-client-ca it also makes the handshake
 * require a client certificate, verified against the current trust list), and the priorities. */
int celer_tls_cert_callback(gnutls_session_t session, const gnutls_datum_t *req_ca_dn, int nreqs,
                            const gnutls_pk_algorithm_t *pk_algos, int pk_algos_length, gnutls_pcert_st **pcert,
                            unsigned int *pcert_length, gnutls_privkey_t *pkey);
extern const char celer_tls_priorities_http[];

/* HTTPS answers in one write. libmicrohttpd sends an answer's header and its body with two
 * gnutls_record_send calls: two TLS records in two sendmsg calls (with TCP_CORK between them).
 * A celer_tls_out takes over a session's sending (receiving stays GnuTLS's own): when armed, it
 * keeps the next record back and writes it with the one after, in one sendmsg. */
typedef struct celer_tls_out celer_tls_out;
/* Attaches to `session` writing to connected socket fd (not owned). *out is the caller's, freed
 * with celer_tls_out_free once the session is deinit'ed or will not send again. CELER_ERR_NOMEM. */
celer_status celer_tls_out_attach(gnutls_session_t session, int fd, celer_tls_out **out);
/* The next record sent (an answer's header) waits for the one after it (its body). Only when a
 * body surely follows at once: celer_tls_out_flush is the fallback. */
void celer_tls_out_hold_next(celer_tls_out *o);
/* Writes what is held, disarms. false: the socket did not take it all (the rest stays held, sent
 * before the next record): the caller closes the connection rather than leave an answer unsent. */
bool celer_tls_out_flush(celer_tls_out *o);
void celer_tls_out_free(celer_tls_out *o);

/* gRPC: a non-blocking server session on connected socket fd (not owned), with the h2 priorities
 * (no TLS 1.2 CBC suites: RFC 9113 9.2.2), ALPN h2 (mandatory) and mTLS as above. The caller runs
 * gnutls_handshake until it returns 0, then checks celer_tls_alpn_h2, and gnutls_deinit()s it. */
celer_status celer_tls_session_new(celer_tls *t, int fd, gnutls_session_t *out);
/* true when the handshake agreed on ALPN "h2" (a client that offered no ALPN did not). */
bool celer_tls_alpn_h2(gnutls_session_t session);

#endif
