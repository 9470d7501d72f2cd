/* libFuzzer target for API keys (src/server/auth.c): what comes from outside is a request's
 * Authorization value (HTTP header, gRPC metadata), and the key file an operator writes. The input:
 *   byte 0:   % 2: 0 the rest is a key file, parsed (and every line's would-be key identified
 *             against it when it loads); 1 the rest is an Authorization value, identified against
 *             a fixed set of three keys and checked against every scope;
 *   the rest: libFuzzer's exact-size copy (not NUL-terminated: the length counts).
 * A clean refusal is fine; a crash, leak, sanitizer report, or a value taken as a key that is not
 * exactly one of the set's (or a key of the set not taken) is a bug. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "server/auth.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const char *const set_keys[3] = {"k1-aaaaaaaaaaaaaaaaaaaa", "k2-bbbbbbbbbbbbbbbbbbbb", "k3-cccccccccccccccccccc"};
static celer_auth_keys *set;

static void setup(void) {
    static const char text[] = "infer k1-aaaaaaaaaaaaaaaaaaaa one\nadmin,metrics k2-bbbbbbbbbbbbbbbbbbbb two\n"
                               "# comment\nmetrics k3-cccccccccccccccccccc\n";
    if (celer_auth_keys_parse(text, sizeof text - 1, &set) || celer_auth_keys_count(set) != 3) abort();
}

/* The key a value presents as the parser should read it: after "Bearer" (any case) and blanks,
 * up to trailing blanks; NULL when it is not a Bearer credential. */
static const char *presented(const char *v, size_t n, size_t *len) {
    size_t i = 0;
    while (i < n && (v[i] == ' ' || v[i] == '\t')) i++;
    if (n - i < 7 || strncasecmp(v + i, "bearer", 6) || (v[i + 6] != ' ' && v[i + 6] != '\t')) return NULL;
    i += 6;
    while (i < n && (v[i] == ' ' || v[i] == '\t')) i++;
    while (n > i && (v[n - 1] == ' ' || v[n - 1] == '\t')) n--;
    *len = n - i;
    return v + i;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (!set) setup();
    if (!size) return 0;
    const char *text = (const char *)data + 1;
    size_t n = size - 1;
    if (data[0] % 2 == 0) {
        celer_auth_keys *k = NULL;
        if (!celer_auth_keys_parse(text, n, &k)) {
            if (!k || celer_auth_keys_count(k) > CELER_AUTH_MAX_KEYS) abort();
            celer_auth_id id;
            celer_auth_keys_identify(k, text, n, &id);
            for (int s = CELER_SCOPE_NONE; s < CELER_SCOPE_COUNT; s++) (void)celer_auth_keys_allow(k, &id, s);
            celer_auth_keys_free(k);
        } else if (k) {
            abort(); /* a refusal hands nothing back */
        }
        return 0;
    }
    celer_auth_id id;
    celer_auth_keys_identify(set, text, n, &id);
    size_t len = 0;
    const char *key = presented(text, n, &len);
    int match = -1;
    for (int i = 0; key && i < 3; i++)
        if (len == strlen(set_keys[i]) && !memcmp(key, set_keys[i], len)) match = i;
    if ((id.kind == CELER_AUTH_KNOWN) != (match >= 0)) abort();
    if (match >= 0 && strcmp(id.name, match == 0 ? "one" : match == 1 ? "two" : id.name)) abort();
    if (!key && id.kind != CELER_AUTH_MISSING) abort();
    for (int s = CELER_SCOPE_NONE; s < CELER_SCOPE_COUNT; s++) {
        celer_status st = celer_auth_keys_allow(set, &id, s);
        if (s == CELER_SCOPE_OPEN && st) abort();
        if (st && st != CELER_ERR_UNAUTHENTICATED && st != CELER_ERR_PERMISSION_DENIED) abort();
    }
    return 0;
}
