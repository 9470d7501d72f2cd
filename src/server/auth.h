/* API keys with scopes (auth.c), private to src/server: `--api-keys FILE` holds one key per line,
 * `SCOPES KEY [NAME]`, SCOPES a comma list of infer, admin and metrics (each independent). Both
 * transports ask this module, with the scope their route or RPC table gives, whether a request's
 * `Authorization: Bearer KEY` (gRPC: `authorization` metadata) may go on, so HTTP and gRPC decide
 * alike: a missing or unknown key is CELER_ERR_UNAUTHENTICATED (401 / UNAUTHENTICATED), a known key
 * without the scope CELER_ERR_PERMISSION_DENIED (403 / PERMISSION_DENIED).
 *
 * Keys are kept only as SHA-256 digests; a presented key is hashed and compared with every stored
 * digest, without an early exit or a branch on the bytes. No message, log line or metric holds a
 * key: refusals name the key's NAME, load errors the line number. SIGHUP reloads the file
 * (celer_auth_reload): the new set is published through an atomic pointer and a file that does not
 * load keeps the set before. See docs/server.md, "API keys". */
#ifndef CELER_SERVER_AUTH_H
#define CELER_SERVER_AUTH_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "server/metrics.h"

/* What a route or RPC needs. NONE is a table row whose scope was left out: the transports refuse
 * to start with one (a row added without its scope must not be open by default). */
typedef enum celer_auth_scope {
    CELER_SCOPE_NONE,
    CELER_SCOPE_OPEN,    /* health: probes carry no key */
    CELER_SCOPE_INFER,   /* inference, model metadata, readiness and config, server metadata, OpenAPI documents */
    CELER_SCOPE_ADMIN,   /* repository API, log and trace settings, shared memory, statistics */
    CELER_SCOPE_METRICS, /* /metrics: open unless some key has this scope */
    CELER_SCOPE_COUNT
} celer_auth_scope;
extern const char *const celer_auth_scope_names[CELER_SCOPE_COUNT]; /* "none", "open", "infer", "admin", "metrics" */

#define CELER_AUTH_KEY_MIN 16      /* shorter keys are refused at load */
#define CELER_AUTH_KEY_MAX 1024
#define CELER_AUTH_NAME_MAX 64     /* letters, digits and ._:@/+- */
#define CELER_AUTH_MAX_KEYS 10000  /* every request compares against all of them */
#define CELER_AUTH_FILE_MAX (4 << 20)

/* ---- one set of keys (a generation), as parsed from a file's text ---- */
typedef struct celer_auth_keys celer_auth_keys;

/* Parses a key file's text. Comments (`#` first) and blank lines are skipped. A key shorter than
 * CELER_AUTH_KEY_MIN, an unknown or empty scope, a malformed line (not 2 or 3 fields, a byte outside
 * visible ASCII, a bad name) or a key given twice is CELER_ERR_INVALID with a message naming the
 * line number and never the key. *out is the caller's (celer_auth_keys_free). */
celer_status celer_auth_keys_parse(const char *text, size_t len, celer_auth_keys **out);
void celer_auth_keys_free(celer_auth_keys *k); /* NULL: nothing */
int celer_auth_keys_count(const celer_auth_keys *k);
/* How many keys have `scope`. */
int celer_auth_keys_with(const celer_auth_keys *k, celer_auth_scope scope);

/* Who a request is, from its Authorization value. */
typedef enum celer_auth_kind {
    CELER_AUTH_MISSING, /* no Authorization, or not a Bearer credential */
    CELER_AUTH_UNKNOWN, /* a Bearer key that is not in the set */
    CELER_AUTH_KNOWN
} celer_auth_kind;
typedef struct celer_auth_id {
    celer_auth_kind kind;
    unsigned scopes;                     /* KNOWN: 1 << scope for each of its scopes */
    char name[CELER_AUTH_NAME_MAX + 1];  /* KNOWN: its NAME (or "sha256:" and 8 hex digits of its digest) */
} celer_auth_id;

/* Looks `authorization` (len bytes, not NUL-terminated; NULL: none sent) up in k: the scheme
 * `Bearer` in any case, one or more spaces, the key. The key is hashed and compared with every
 * digest of k in the same time whichever matches, or none. */
void celer_auth_keys_identify(const celer_auth_keys *k, const char *authorization, size_t len, celer_auth_id *id);
/* Whether `id` may use an endpoint of `scope` under k (NULL: keys are off, everything is open):
 * CELER_OK, CELER_ERR_UNAUTHENTICATED or CELER_ERR_PERMISSION_DENIED with a message (celer_errorf)
 * that names the key's NAME at most. */
celer_status celer_auth_keys_allow(const celer_auth_keys *k, const celer_auth_id *id, celer_auth_scope scope);

/* ---- the process's key set: --api-keys, reloaded on SIGHUP ---- */

/* Loads `path` ("" or NULL: keys are off, every endpoint open) and registers the metrics
 * (celer_api_keys_loaded, celer_api_keys_reloads_total, celer_api_keys_reload_failures_total,
 * celer_auth_failures_total{reason}) in `metrics` (borrowed: it must outlive celer_auth_stop; NULL:
 * none). CELER_ERR_INVALID / CELER_ERR_IO naming the file and the line when it does not load. */
celer_status celer_auth_start(const char *path, celer_metrics *metrics);
/* SIGHUP: reads the file again and publishes the new set; a file that does not load keeps the set
 * before, and the log says why (counted in celer_api_keys_reload_failures_total). Sets seen by
 * threads checking a request are freed only once no check runs (else at the next reload or stop).
 * One thread at a time (the signal thread). Nothing when keys are off. */
void celer_auth_reload(void);
/* Frees every set; no check may run any more (the transports are stopped). */
void celer_auth_stop(void);
bool celer_auth_on(void);

/* celer_auth_keys_identify / _allow on the current set; allow counts its refusals in
 * celer_auth_failures_total{reason="missing|unknown|scope"}. Any thread. */
void celer_auth_identify(const char *authorization, size_t len, celer_auth_id *id);
celer_status celer_auth_allow(const celer_auth_id *id, celer_auth_scope scope);
/* Both at once (authorization NUL-terminated or NULL), for a transport that has every header. */
celer_status celer_auth_check(celer_auth_scope scope, const char *authorization, celer_auth_id *id);
/* The WWW-Authenticate value of a refusal (RFC 6750): `Bearer realm="celer"`, with
 * error="invalid_token" for an unknown key, error="insufficient_scope" and the scope for a 403. */
void celer_auth_challenge(const celer_auth_id *id, celer_status st, celer_auth_scope scope, char *out, size_t cap);

#endif
