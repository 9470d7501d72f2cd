/* The gRPC front end (grpc.c), private to src/server: Triton's GRPCInferenceService and
 * grpc.health.v1.Health over HTTP/2 cleartext (h2c, prior knowledge) on libnghttp2. One IO thread
 * owns the listening socket, every connection and its nghttp2 session; cheap RPCs are answered on
 * it, the others go to the request service's workers, which hand their encoded answers back
 * through a done list and an eventfd. */
#ifndef CELER_SERVER_GRPC_H
#define CELER_SERVER_GRPC_H

#include "service.h"
#include "tls.h"

typedef struct celer_grpc celer_grpc;

/* Starts listening on opts->grpc_address:grpc_port (listen.h: IPv4, IPv6 or both) with its IO thread, answering through
 * `service` and counting calls in `metrics` (both borrowed: they must outlive the front end; NULL
 * metrics: not counted). *out is NULL (and CELER_OK) when
 * opts->grpc_port is 0. With `tls` (borrowed), every connection is TLS with ALPN h2 (tls.c) instead
 * of h2c. CELER_ERR_IO when the port cannot be bound. */
celer_status celer_grpc_start(const celer_server_options *opts, celer_service *service, celer_metrics *metrics,
                              celer_tls *tls, celer_grpc **out);
/* Shutdown begins (the drain delay): every connection, and each one accepted from now on, gets a
 * shutdown notice (GOAWAY with the last stream id 2^31-1), so clients open new connections for
 * their next calls; calls go on being served and the listener stays open. NULL: nothing. */
void celer_grpc_notice(celer_grpc *g);
/* The delay is over: closes the listening socket (new connections are refused) and sends the
 * notice where it was not sent; calls in flight go on, and each connection gets the final GOAWAY
 * and is closed once its calls are answered. NULL: nothing. */
void celer_grpc_drain(celer_grpc *g);
/* Calls received and not yet finished (answered and sent, or reset). 0 for NULL. */
int celer_grpc_active(const celer_grpc *g);
/* Of those, the ones a worker holds; celer_grpc_stop must not be called while any is. */
int celer_grpc_suspended(const celer_grpc *g);
/* Stops the IO thread, closes every connection and frees the front end. NULL: nothing. */
void celer_grpc_stop(celer_grpc *g);

#endif
