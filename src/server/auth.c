/* API keys with scopes: the key file's parser, the constant-time lookup, the scope decision, and
 * the process's current set, swapped on SIGHUP (auth.h). */
#include "auth.h"

#include <errno.h>
#include <fcntl.h>
#include <gnutls/crypto.h>
#include <gnutls/gnutls.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "log.h"

const char *const celer_auth_scope_names[CELER_SCOPE_COUNT] = {"none", "open", "infer", "admin", "metrics"};

#define DIGEST 32 /* SHA-256 */

typedef struct auth_key {
    uint8_t digest[DIGEST];
    unsigned scopes;
    char name[CELER_AUTH_NAME_MAX + 1];
} auth_key;

struct celer_auth_keys {
    int n;
    int with[CELER_SCOPE_COUNT]; /* keys per scope */
    celer_auth_keys *retired_next; /* the process's list of sets replaced by a reload */
    auth_key keys[];
};

static void sha256(const void *p, size_t n, uint8_t out[DIGEST]) {
    /* gnutls_hash_fast fails only for an unknown algorithm; SHA-256 is always there */
    if (gnutls_hash_fast(GNUTLS_DIG_SHA256, p, n, out) < 0) memset(out, 0, DIGEST);
}

static bool is_space(char c) { return c == ' ' || c == '\t'; }

static bool name_char(char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || strchr("._:@/+-", c);
}

/* The scopes of a comma list; 0 when one is unknown or empty. */
static unsigned parse_scopes(const char *s, size_t n) {
    unsigned scopes = 0;
    size_t i = 0;
    for (;;) {
        size_t j = i;
        while (j < n && s[j] != ',') j++;
        unsigned one = 0;
        for (int k = CELER_SCOPE_INFER; k < CELER_SCOPE_COUNT; k++)
            if (strlen(celer_auth_scope_names[k]) == j - i && !memcmp(s + i, celer_auth_scope_names[k], j - i))
                one = 1u << k;
        if (!one) return 0;
        scopes |= one;
        if (j == n) return scopes;
        i = j + 1;
    }
}

/* The messages below name the line, never its words: a line with its columns swapped would put
 * the key where a scope or a name is expected. */
celer_status celer_auth_keys_parse(const char *text, size_t len, celer_auth_keys **out) {
    *out = NULL;
    size_t lines = 1;
    for (size_t i = 0; i < len; i++) lines += text[i] == '\n';
    size_t cap = CELER_MIN(lines, (size_t)CELER_AUTH_MAX_KEYS + 1);
    celer_auth_keys *k = calloc(1, sizeof *k + cap * sizeof(auth_key));
    if (!k) return celer_errorf(CELER_ERR_NOMEM, "out of memory for the API keys");
    size_t pos = 0;
    for (int line = 1; pos < len; line++) {
        const char *l = text + pos;
        const char *nl = memchr(l, '\n', len - pos);
        size_t n = nl ? (size_t)(nl - l) : len - pos;
        pos += n + 1;
        if (n && l[n - 1] == '\r') n--;
        while (n && is_space(*l)) l++, n--;
        while (n && is_space(l[n - 1])) n--;
        if (!n || l[0] == '#') continue;
        /* the fields: SCOPES KEY [NAME] */
        const char *f[4];
        size_t fl[4];
        int nf = 0;
        for (size_t i = 0; i < n; i++) {
            unsigned char c = (unsigned char)l[i];
            if (!is_space(l[i]) && (c < 0x20 || c > 0x7e)) {
                celer_auth_keys_free(k);
                return celer_errorf(CELER_ERR_INVALID, "line %d: a byte outside visible ASCII (keys, scopes and names "
                                    "are ASCII)", line);
            }
        }
        for (size_t i = 0; i < n;) {
            if (is_space(l[i])) {
                i++;
                continue;
            }
            size_t j = i;
            while (j < n && !is_space(l[j])) j++;
            if (nf == 4) break;
            f[nf] = l + i, fl[nf] = j - i, nf++;
            i = j;
        }
        if (nf < 2 || nf > 3) {
            celer_auth_keys_free(k);
            return celer_errorf(CELER_ERR_INVALID, "line %d: expected SCOPES KEY [NAME] (e.g. 'infer,metrics <key> "
                                "frontend'), got %s%d field%s", line, nf > 3 ? "more than " : "", nf > 3 ? 3 : nf,
                                nf == 1 ? "" : "s");
        }
        unsigned scopes = parse_scopes(f[0], fl[0]);
        if (!scopes) {
            celer_auth_keys_free(k);
            return celer_errorf(CELER_ERR_INVALID, "line %d: the first field must be a comma list of the scopes infer, "
                                "admin and metrics (an unknown or empty scope)", line);
        }
        if (fl[1] < CELER_AUTH_KEY_MIN || fl[1] > CELER_AUTH_KEY_MAX) {
            celer_auth_keys_free(k);
            return celer_errorf(CELER_ERR_INVALID, "line %d: the key is %s than %d characters", line,
                                fl[1] < CELER_AUTH_KEY_MIN ? "shorter" : "longer",
                                fl[1] < CELER_AUTH_KEY_MIN ? CELER_AUTH_KEY_MIN : CELER_AUTH_KEY_MAX);
        }
        if (nf == 3) {
            bool ok = fl[2] <= CELER_AUTH_NAME_MAX;
            for (size_t i = 0; ok && i < fl[2]; i++) ok = name_char(f[2][i]);
            if (!ok) {
                celer_auth_keys_free(k);
                return celer_errorf(CELER_ERR_INVALID, "line %d: the name must be at most %d letters, digits or "
                                    "._:@/+-", line, CELER_AUTH_NAME_MAX);
            }
        }
        if (k->n == CELER_AUTH_MAX_KEYS) {
            celer_auth_keys_free(k);
            return celer_errorf(CELER_ERR_LIMIT, "line %d: more than %d keys", line, CELER_AUTH_MAX_KEYS);
        }
        auth_key *key = &k->keys[k->n];
        sha256(f[1], fl[1], key->digest);
        for (int i = 0; i < k->n; i++)
            if (!memcmp(k->keys[i].digest, key->digest, DIGEST)) { /* at load: no request's key here */
                celer_auth_keys_free(k);
                return celer_errorf(CELER_ERR_INVALID, "line %d: the same key as an earlier line (key %d of the "
                                    "file); each key must be on one line only", line, i + 1);
            }
        key->scopes = scopes;
        if (nf == 3)
            memcpy(key->name, f[2], fl[2]);
        else /* no NAME: a prefix of the digest, the same whatever line the key is on */
            snprintf(key->name, sizeof key->name, "sha256:%02x%02x%02x%02x", key->digest[0], key->digest[1],
                     key->digest[2], key->digest[3]);
        for (int s = 0; s < CELER_SCOPE_COUNT; s++) k->with[s] += (scopes >> s) & 1;
        k->n++;
    }
    *out = k;
    return CELER_OK;
}

void celer_auth_keys_free(celer_auth_keys *k) {
    if (!k) return;
    explicit_bzero(k->keys, (size_t)k->n * sizeof(auth_key));
    free(k);
}

int celer_auth_keys_count(const celer_auth_keys *k) { return k ? k->n : 0; }
int celer_auth_keys_with(const celer_auth_keys *k, celer_auth_scope scope) {
    return k && scope < CELER_SCOPE_COUNT ? k->with[scope] : 0;
}

void celer_auth_keys_identify(const celer_auth_keys *k, const char *authorization, size_t len, celer_auth_id *id) {
    memset(id, 0, sizeof *id);
    id->kind = CELER_AUTH_MISSING;
    if (!k || !authorization) return;
    const char *p = authorization, *end = authorization + len;
    while (p < end && is_space(*p)) p++;
    if (end - p < 7 || strncasecmp(p, "bearer", 6) || !is_space(p[6])) return; /* RFC 7235: any case */
    p += 6;
    while (p < end && is_space(*p)) p++;
    while (end > p && is_space(end[-1])) end--;
    if (p == end) return; /* a scheme without a key: none presented */
    id->kind = CELER_AUTH_UNKNOWN;
    if (end - p > CELER_AUTH_KEY_MAX) return; /* no stored key has that length */
    uint8_t d[DIGEST];
    sha256(p, (size_t)(end - p), d);
    /* Every stored digest is compared in full; a match sets masks instead of taking a branch, so
     * the time is the same whichever key matched, or none. Keys are distinct (refused at load),
     * so at most one matches. */
    uint32_t found = 0, index = 0, scopes = 0;
    for (int i = 0; i < k->n; i++) {
        uint32_t diff = 0;
        for (int j = 0; j < DIGEST; j++) diff |= (uint32_t)(k->keys[i].digest[j] ^ d[j]);
        uint32_t mask = 0u - ((diff - 1) >> 31); /* all ones when diff is 0 (diff <= 255) */
        index |= mask & (uint32_t)i;
        scopes |= mask & k->keys[i].scopes;
        found |= mask & 1;
    }
    explicit_bzero(d, sizeof d);
    if (!found) return; /* the outcome is no secret: the answer tells it */
    id->kind = CELER_AUTH_KNOWN;
    id->scopes = scopes;
    memcpy(id->name, k->keys[index].name, sizeof id->name);
}

celer_status celer_auth_keys_allow(const celer_auth_keys *k, const celer_auth_id *id, celer_auth_scope scope) {
    if (!k || scope == CELER_SCOPE_OPEN) return CELER_OK;
    if (scope == CELER_SCOPE_METRICS && !k->with[CELER_SCOPE_METRICS]) return CELER_OK;
    if (scope <= CELER_SCOPE_NONE || scope >= CELER_SCOPE_COUNT) /* a table row without a scope: never open */
        return celer_errorf(CELER_ERR_PERMISSION_DENIED, "this endpoint has no scope: no key may use it");
    if (id->kind == CELER_AUTH_MISSING)
        return celer_errorf(CELER_ERR_UNAUTHENTICATED, "this endpoint needs an API key with the '%s' scope: send "
                            "'Authorization: Bearer <key>' (gRPC: the authorization metadata)",
                            celer_auth_scope_names[scope]);
    if (id->kind == CELER_AUTH_UNKNOWN)
        return celer_errorf(CELER_ERR_UNAUTHENTICATED, "unknown API key: this endpoint needs a key with the '%s' "
                            "scope", celer_auth_scope_names[scope]);
    if (!(id->scopes & (1u << scope)))
        return celer_errorf(CELER_ERR_PERMISSION_DENIED, "the API key '%s' does not have the '%s' scope this "
                            "endpoint needs", id->name, celer_auth_scope_names[scope]);
    return CELER_OK;
}

void celer_auth_challenge(const celer_auth_id *id, celer_status st, celer_auth_scope scope, char *out, size_t cap) {
    if (st == CELER_ERR_PERMISSION_DENIED && scope > CELER_SCOPE_NONE && scope < CELER_SCOPE_COUNT)
        snprintf(out, cap, "Bearer realm=\"celer\", error=\"insufficient_scope\", scope=\"%s\"",
                 celer_auth_scope_names[scope]);
    else if (id && id->kind == CELER_AUTH_UNKNOWN)
        snprintf(out, cap, "Bearer realm=\"celer\", error=\"invalid_token\"");
    else
        snprintf(out, cap, "Bearer realm=\"celer\"");
}

/* ---- the process's set ---- */

enum { FAIL_MISSING, FAIL_UNKNOWN, FAIL_SCOPE, FAIL_COUNT };
static const char *const fail_labels[FAIL_COUNT] = {"reason=\"missing\"", "reason=\"unknown\"", "reason=\"scope\""};

static struct {
    char path[4096];
    _Atomic(celer_auth_keys *) current; /* NULL: keys are off */
    atomic_int readers;                 /* checks running: a replaced set is freed only at 0 */
    celer_auth_keys *retired;           /* replaced sets not freed yet (signal thread) */
    celer_series *m_fail[FAIL_COUNT], *m_loaded, *m_reloads, *m_reload_failures;
} auth;

/* Reads and parses the file; the message names it (and the line). */
static celer_status load_file(const char *path, celer_auth_keys **out) {
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) return celer_errorf(CELER_ERR_IO, "--api-keys %s: cannot open it: %s", path, strerror(errno));
    struct stat sb;
    if (fstat(fd, &sb) || !S_ISREG(sb.st_mode) || sb.st_size > CELER_AUTH_FILE_MAX) {
        close(fd);
        return celer_errorf(CELER_ERR_INVALID, "--api-keys %s: expected a regular file of at most %d bytes", path,
                            CELER_AUTH_FILE_MAX);
    }
    if (sb.st_mode & 077)
        celer_log(CELER_LOG_WARNING, "--api-keys %s: the file is readable by others than its owner (mode %03o): "
                  "chmod 600 it", path, (unsigned)(sb.st_mode & 0777));
    size_t len = (size_t)sb.st_size;
    char *text = malloc(len + 1);
    if (!text) {
        close(fd);
        return celer_errorf(CELER_ERR_NOMEM, "--api-keys %s: out of memory", path);
    }
    celer_status st = celer_read_exact(fd, 0, text, len, path);
    close(fd);
    if (!st && (st = celer_auth_keys_parse(text, len, out))) celer_error_wrap(st, "--api-keys %s", path);
    explicit_bzero(text, len);
    free(text);
    return st;
}

static void log_loaded(const celer_auth_keys *k, const char *what) {
    celer_log(CELER_LOG_INFO, "API keys %s from %s: %d (infer %d, admin %d, metrics %d)%s", what, auth.path, k->n,
              k->with[CELER_SCOPE_INFER], k->with[CELER_SCOPE_ADMIN], k->with[CELER_SCOPE_METRICS],
              k->with[CELER_SCOPE_METRICS] ? "" : "; /metrics is open (no key has the metrics scope)");
    celer_metrics_set(auth.m_loaded, k->n);
}

celer_status celer_auth_start(const char *path, celer_metrics *metrics) {
    atomic_store(&auth.current, NULL);
    if (!path || !path[0]) return CELER_OK;
    if (strlen(path) >= sizeof auth.path) return celer_errorf(CELER_ERR_INVALID, "--api-keys: the path is too long");
    snprintf(auth.path, sizeof auth.path, "%s", path);
    celer_auth_keys *k;
    CELER_TRY(load_file(path, &k));
    if (metrics) {
        for (int i = 0; i < FAIL_COUNT; i++)
            auth.m_fail[i] = celer_metrics_counter(metrics, "celer_auth_failures_total",
                                                   "Requests refused for their API key: none sent (missing), not "
                                                   "known (unknown), or without the endpoint's scope (scope).",
                                                   fail_labels[i]);
        auth.m_loaded = celer_metrics_gauge(metrics, "celer_api_keys_loaded", "API keys of the set in use.", "");
        auth.m_reloads = celer_metrics_counter(metrics, "celer_api_keys_reloads_total",
                                               "Reloads of --api-keys (SIGHUP) that took a new set.", "");
        auth.m_reload_failures = celer_metrics_counter(metrics, "celer_api_keys_reload_failures_total",
                                                       "Reloads of --api-keys (SIGHUP) refused: the set before stays.",
                                                       "");
    }
    atomic_store(&auth.current, k);
    log_loaded(k, "loaded");
    return CELER_OK;
}

/* Frees the replaced sets once no check runs: a check that began before the swap may hold one,
 * one that begins after sees the new set. Waits at most 100 ms; else they wait for the next
 * reload or the stop. */
static void free_retired(int wait_ms) {
    for (int i = 0; atomic_load(&auth.readers) && i < wait_ms; i++) {
        struct timespec ms = {0, 1000000};
        nanosleep(&ms, NULL);
    }
    if (atomic_load(&auth.readers)) return;
    while (auth.retired) {
        celer_auth_keys *next = auth.retired->retired_next;
        celer_auth_keys_free(auth.retired);
        auth.retired = next;
    }
}

void celer_auth_reload(void) {
    if (!atomic_load(&auth.current)) return;
    celer_auth_keys *k;
    if (load_file(auth.path, &k)) {
        const celer_auth_keys *old = atomic_load(&auth.current);
        celer_log(CELER_LOG_ERROR, "API keys not reloaded, the %d keys before stay: %s", old->n, celer_error_message());
        celer_metrics_add(auth.m_reload_failures, 1);
        return;
    }
    celer_auth_keys *old = atomic_exchange(&auth.current, k);
    old->retired_next = auth.retired;
    auth.retired = old;
    log_loaded(k, "reloaded");
    celer_metrics_add(auth.m_reloads, 1);
    free_retired(100);
}

void celer_auth_stop(void) {
    celer_auth_keys *k = atomic_exchange(&auth.current, NULL);
    if (k) {
        k->retired_next = auth.retired;
        auth.retired = k;
    }
    free_retired(1000);
    memset(auth.m_fail, 0, sizeof auth.m_fail);
    auth.m_loaded = auth.m_reloads = auth.m_reload_failures = NULL;
}

bool celer_auth_on(void) { return atomic_load(&auth.current) != NULL; }

void celer_auth_identify(const char *authorization, size_t len, celer_auth_id *id) {
    atomic_fetch_add(&auth.readers, 1);
    celer_auth_keys_identify(atomic_load(&auth.current), authorization, len, id);
    atomic_fetch_sub(&auth.readers, 1);
}

celer_status celer_auth_allow(const celer_auth_id *id, celer_auth_scope scope) {
    atomic_fetch_add(&auth.readers, 1);
    celer_status st = celer_auth_keys_allow(atomic_load(&auth.current), id, scope);
    atomic_fetch_sub(&auth.readers, 1);
    if (st) celer_metrics_add(auth.m_fail[st == CELER_ERR_PERMISSION_DENIED ? FAIL_SCOPE
                                          : id->kind == CELER_AUTH_UNKNOWN ? FAIL_UNKNOWN : FAIL_MISSING], 1);
    return st;
}

celer_status celer_auth_check(celer_auth_scope scope, const char *authorization, celer_auth_id *id) {
    memset(id, 0, sizeof *id);
    if (!celer_auth_on()) return CELER_OK;
    if (scope != CELER_SCOPE_OPEN) celer_auth_identify(authorization, authorization ? strlen(authorization) : 0, id);
    return celer_auth_allow(id, scope);
}
