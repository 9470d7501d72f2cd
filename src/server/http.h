/* The HTTP front end (http.c), private to src/server. */
#ifndef CELER_SERVER_HTTP_H
#define CELER_SERVER_HTTP_H

#include "service.h"
#include "tls.h"

typedef struct celer_http celer_http;

/* Starts listening on opts->http_address:http_port (listen.h: IPv4, IPv6 or both) with its own connection threads, answering
 * through `service` (borrowed: it must outlive the front end); HTTPS when `tls` is not NULL
 * (borrowed too: certificates from its current generation at each handshake). CELER_ERR_IO when
 * the port cannot be bound. */
celer_status celer_http_start(const celer_server_options *opts, celer_service *service, celer_metrics *metrics,
                              celer_tls *tls, celer_http **out);
/* Shutdown begins (the drain delay): every answer from now on says `Connection: close`, so
 * keep-alive clients reconnect (elsewhere, once the endpoints are updated); new requests and
 * connections are still served. NULL: nothing. */
void celer_http_notice(celer_http *h);
/* The delay is over: closes the listening socket (new connections are refused, not left in the
 * backlog) and idle keep-alive connections; requests in flight go on and their answers close
 * their connections; a request arriving on a connection still open gets 503. */
void celer_http_drain(celer_http *h);
/* Requests received and not yet completed (answered and sent, or dropped). */
int celer_http_active(const celer_http *h);
/* Of those, the ones waiting on a worker or a repository action; celer_http_stop must not be
 * called while any is. */
int celer_http_suspended(const celer_http *h);
/* Closes every connection and frees the front end. */
void celer_http_stop(celer_http *h);

/* The metrics port (--metrics-port, Triton's 8002): a daemon of its own on
 * opts->metrics_address:metrics_port answering GET /metrics with what /metrics on the HTTP port
 * says, and 404 / 405 to anything else. *out stays NULL when the port is 0 (off). CELER_ERR_IO when
 * the port cannot be bound. */
typedef struct celer_http_metrics celer_http_metrics;
celer_status celer_http_metrics_start(const celer_server_options *opts, celer_metrics *metrics,
                                      celer_http_metrics **out);
/* Shutdown, the delay over: the metrics port refuses new connections. NULL: nothing. */
void celer_http_metrics_drain(celer_http_metrics *h);
void celer_http_metrics_stop(celer_http_metrics *h); /* NULL: nothing */

#endif
