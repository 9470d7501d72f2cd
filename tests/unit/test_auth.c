/* API keys (src/server/auth.c): the key file's parser (comments, names, every refusal named by its
 * line and never by the key), the lookup of the right key among several, the Bearer scheme in any
 * case, the scope decisions (401 / 403, /metrics open without a metrics key), the challenge, and
 * the process's set reloaded from a file (a broken file keeps the set before). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "testutil.h"
#include "server/auth.h"
#include "server/log.h"

#define K1 "k1-aaaaaaaaaaaaaaaaaaaa"
#define K2 "k2-bbbbbbbbbbbbbbbbbbbb"
#define K3 "k3-cccccccccccccccccccc"
#define K4 "k4-dddddddddddddddddddd"

static celer_auth_keys *parse(const char *text) {
    celer_auth_keys *k = NULL;
    celer_status st = celer_auth_keys_parse(text, strlen(text), &k);
    if (st) fail_msg("parse failed: %s", celer_error_message());
    return k;
}

static celer_auth_id identify(const celer_auth_keys *k, const char *authorization) {
    celer_auth_id id;
    celer_auth_keys_identify(k, authorization, authorization ? strlen(authorization) : 0, &id);
    return id;
}

static void test_parse(void **state) {
    (void)state;
    celer_auth_keys *k = parse("# the keys of the staging cluster\n"
                               "\n"
                               "   # an indented comment\n"
                               "infer " K1 " frontend\r\n"                 /* CRLF */
                               "admin\t" K2 "\tops@example.com\n"           /* tabs */
                               "  infer,metrics   " K3 "  \n"               /* no name, spaces around */
                               "metrics,admin,infer " K4 " all:v2/x+y_z.-"); /* no final newline */
    assert_non_null(k);
    assert_int_equal(celer_auth_keys_count(k), 4);
    assert_int_equal(celer_auth_keys_with(k, CELER_SCOPE_INFER), 3);
    assert_int_equal(celer_auth_keys_with(k, CELER_SCOPE_ADMIN), 2);
    assert_int_equal(celer_auth_keys_with(k, CELER_SCOPE_METRICS), 2);
    celer_auth_id id = identify(k, "Bearer " K2);
    assert_int_equal(id.kind, CELER_AUTH_KNOWN);
    assert_string_equal(id.name, "ops@example.com");
    id = identify(k, "Bearer " K3);
    assert_int_equal(id.kind, CELER_AUTH_KNOWN);
    assert_true(!strncmp(id.name, "sha256:", 7) && strlen(id.name) == 15); /* no NAME: a digest prefix */
    assert_null(strstr(id.name, "ccc"));
    id = identify(k, "Bearer " K4);
    assert_string_equal(id.name, "all:v2/x+y_z.-");
    celer_auth_keys_free(k);

    /* an empty file, or comments only: no key (every scoped endpoint refused) */
    k = parse("# nothing yet\n\n");
    assert_int_equal(celer_auth_keys_count(k), 0);
    celer_auth_keys_free(k);
    k = parse("");
    assert_int_equal(celer_auth_keys_count(k), 0);
    celer_auth_keys_free(k);
    /* a key of exactly 16 characters is taken */
    k = parse("infer 0123456789abcdef\n");
    assert_int_equal(identify(k, "Bearer 0123456789abcdef").kind, CELER_AUTH_KNOWN);
    celer_auth_keys_free(k);
}

/* text is refused with a message holding `want` and none of the secrets. */
static void refused(const char *text, const char *want) {
    celer_auth_keys *k = (celer_auth_keys *)1;
    celer_status st = celer_auth_keys_parse(text, strlen(text), &k);
    if (st != CELER_ERR_INVALID || k) fail_msg("'%s' was not refused (status %d)", text, st);
    const char *msg = celer_error_message();
    if (!strstr(msg, want)) fail_msg("'%s': message '%s' lacks '%s'", text, msg, want);
    static const char *const secrets[] = {"short-key", "aaaaaaaa", "bbbbbbbb", "cccccccc", "zzzzzzzz"};
    for (size_t i = 0; i < sizeof secrets / sizeof *secrets; i++)
        if (strstr(msg, secrets[i])) fail_msg("'%s': the message '%s' shows the key", text, msg);
}

static void test_refusals(void **state) {
    (void)state;
    refused("infer " K1 "\n# fine\ninfer short-key-15ch\n", "line 3: the key is shorter than 16 characters");
    refused("infer " K1 " a\ninfr " K2 " b\n", "line 2: the first field must be a comma list of the scopes");
    refused("infer,ADMIN " K2 "\n", "line 1: the first field"); /* scopes are lower case */
    refused("infer, " K2 "\n", "line 1: the first field");      /* "infer," ends in an empty scope */
    refused("infer,," K2 " x\n", "line 1: the first field");     /* an empty scope */
    refused(K2 " infer name\n", "line 1: the first field");      /* columns swapped: the key is not printed */
    refused("\n\ninfer\n", "line 3: expected SCOPES KEY [NAME]");
    refused("infer " K1 " two words\n", "line 1: expected SCOPES KEY [NAME]");
    refused("infer " K1 " name\nadmin " K2 " b\nmetrics " K1 " again\n", "line 3: the same key as an earlier line");
    refused("infer " K1 " bad\"name\n", "line 1: the name must be");
    refused("infer " K1 " n" "\x01" "x\n", "line 1: a byte outside visible ASCII");
    refused("infer zzzzzzzzzzzzzzzzzzzz\xc3\xa9 name\n", "line 1: a byte outside visible ASCII");
    char big[CELER_AUTH_KEY_MAX + 64];
    snprintf(big, sizeof big, "infer %0*d\n", CELER_AUTH_KEY_MAX + 1, 7);
    refused(big, "line 1: the key is longer than 1024 characters");
}

/* The right key among several: each one's name and scopes, and none for near misses. */
static void test_lookup(void **state) {
    (void)state;
    celer_auth_keys *k = parse("infer " K1 " one\nadmin " K2 " two\nmetrics " K3 " three\ninfer,admin " K4 " four\n");
    static const struct {
        const char *authorization;
        celer_auth_kind kind;
        const char *name;
        unsigned scopes;
    } cases[] = {
        {"Bearer " K1, CELER_AUTH_KNOWN, "one", 1u << CELER_SCOPE_INFER},
        {"Bearer " K2, CELER_AUTH_KNOWN, "two", 1u << CELER_SCOPE_ADMIN},
        {"Bearer " K3, CELER_AUTH_KNOWN, "three", 1u << CELER_SCOPE_METRICS},
        {"Bearer " K4, CELER_AUTH_KNOWN, "four", 1u << CELER_SCOPE_INFER | 1u << CELER_SCOPE_ADMIN},
        {"bearer " K2, CELER_AUTH_KNOWN, "two", 1u << CELER_SCOPE_ADMIN}, /* RFC 7235: any case */
        {"BEARER   " K3 "  ", CELER_AUTH_KNOWN, "three", 1u << CELER_SCOPE_METRICS},
        {"Bearer\t" K1, CELER_AUTH_KNOWN, "one", 1u << CELER_SCOPE_INFER},
        {"Bearer " K1 "x", CELER_AUTH_UNKNOWN, "", 0},                     /* a longer key */
        {"Bearer k1-aaaaaaaaaaaaaaaaaaa", CELER_AUTH_UNKNOWN, "", 0},       /* a shorter one */
        {"Bearer " "K1-aaaaaaaaaaaaaaaaaaaa", CELER_AUTH_UNKNOWN, "", 0},  /* keys are case-sensitive */
        {"Bearer ", CELER_AUTH_MISSING, "", 0},                             /* no key after the scheme (7 bytes) */
        {"Bearer  ", CELER_AUTH_MISSING, "", 0},
        {"Basic " K1, CELER_AUTH_MISSING, "", 0},                           /* not a Bearer credential */
        {"Bearer" K1, CELER_AUTH_MISSING, "", 0},                           /* no space after the scheme */
        {K1, CELER_AUTH_MISSING, "", 0},
        {"", CELER_AUTH_MISSING, "", 0},
        {NULL, CELER_AUTH_MISSING, "", 0},
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        celer_auth_id id = identify(k, cases[i].authorization);
        if (id.kind != cases[i].kind || strcmp(id.name, cases[i].name) || id.scopes != cases[i].scopes)
            fail_msg("'%s': kind %d name '%s' scopes %u", cases[i].authorization ? cases[i].authorization : "(none)",
                     id.kind, id.name, id.scopes);
    }
    /* a header value is not NUL-terminated on gRPC: the length counts */
    celer_auth_id id;
    const char *hdr = "Bearer " K2 "trailing bytes the transport did not give";
    celer_auth_keys_identify(k, hdr, strlen("Bearer " K2), &id);
    assert_int_equal(id.kind, CELER_AUTH_KNOWN);
    assert_string_equal(id.name, "two");
    /* no set (keys off): nobody is identified */
    assert_int_equal(identify(NULL, "Bearer " K1).kind, CELER_AUTH_MISSING);
    celer_auth_keys_free(k);
}

static void test_scopes(void **state) {
    (void)state;
    celer_auth_keys *k = parse("infer " K1 " reader\nadmin " K2 " ops\n");
    celer_auth_id none = identify(k, NULL), unknown = identify(k, "Bearer " K4), reader = identify(k, "Bearer " K1),
                  ops = identify(k, "Bearer " K2);
    /* health is open to anyone; /metrics too while no key has the metrics scope */
    assert_int_equal(celer_auth_keys_allow(k, &none, CELER_SCOPE_OPEN), CELER_OK);
    assert_int_equal(celer_auth_keys_allow(k, &unknown, CELER_SCOPE_OPEN), CELER_OK);
    assert_int_equal(celer_auth_keys_allow(k, &none, CELER_SCOPE_METRICS), CELER_OK);
    assert_int_equal(celer_auth_keys_allow(k, &none, CELER_SCOPE_INFER), CELER_ERR_UNAUTHENTICATED);
    assert_non_null(strstr(celer_error_message(), "needs an API key with the 'infer' scope"));
    assert_int_equal(celer_auth_keys_allow(k, &unknown, CELER_SCOPE_INFER), CELER_ERR_UNAUTHENTICATED);
    assert_non_null(strstr(celer_error_message(), "unknown API key"));
    assert_null(strstr(celer_error_message(), "dddd"));
    assert_int_equal(celer_auth_keys_allow(k, &reader, CELER_SCOPE_INFER), CELER_OK);
    assert_int_equal(celer_auth_keys_allow(k, &reader, CELER_SCOPE_ADMIN), CELER_ERR_PERMISSION_DENIED);
    assert_string_equal(celer_error_message(), "the API key 'reader' does not have the 'admin' scope this endpoint needs");
    assert_int_equal(celer_auth_keys_allow(k, &ops, CELER_SCOPE_ADMIN), CELER_OK);
    assert_int_equal(celer_auth_keys_allow(k, &ops, CELER_SCOPE_INFER), CELER_ERR_PERMISSION_DENIED);
    /* a table row without a scope is never open */
    assert_int_equal(celer_auth_keys_allow(k, &ops, CELER_SCOPE_NONE), CELER_ERR_PERMISSION_DENIED);
    celer_auth_keys_free(k);

    /* once a key has the metrics scope, /metrics needs it */
    k = parse("infer " K1 " reader\nmetrics " K3 " scraper\n");
    none = identify(k, NULL), reader = identify(k, "Bearer " K1);
    celer_auth_id scraper = identify(k, "Bearer " K3);
    assert_int_equal(celer_auth_keys_allow(k, &none, CELER_SCOPE_METRICS), CELER_ERR_UNAUTHENTICATED);
    assert_int_equal(celer_auth_keys_allow(k, &reader, CELER_SCOPE_METRICS), CELER_ERR_PERMISSION_DENIED);
    assert_int_equal(celer_auth_keys_allow(k, &scraper, CELER_SCOPE_METRICS), CELER_OK);
    assert_int_equal(celer_auth_keys_allow(k, &scraper, CELER_SCOPE_INFER), CELER_ERR_PERMISSION_DENIED);
    celer_auth_keys_free(k);

    /* no keys at all: everything open */
    assert_int_equal(celer_auth_keys_allow(NULL, &none, CELER_SCOPE_ADMIN), CELER_OK);
    /* the status table: 401 / UNAUTHENTICATED, 403 / PERMISSION_DENIED, never retried */
    assert_int_equal(celer_status_http(CELER_ERR_UNAUTHENTICATED), 401);
    assert_int_equal(celer_status_grpc(CELER_ERR_UNAUTHENTICATED), 16);
    assert_int_equal(celer_status_http(CELER_ERR_PERMISSION_DENIED), 403);
    assert_int_equal(celer_status_grpc(CELER_ERR_PERMISSION_DENIED), 7);
    assert_false(celer_status_retryable(CELER_ERR_UNAUTHENTICATED));
    assert_false(celer_status_retryable(CELER_ERR_PERMISSION_DENIED));

    char c[128];
    celer_auth_challenge(&none, CELER_ERR_UNAUTHENTICATED, CELER_SCOPE_INFER, c, sizeof c);
    assert_string_equal(c, "Bearer realm=\"celer\"");
    celer_auth_id unk = {.kind = CELER_AUTH_UNKNOWN};
    celer_auth_challenge(&unk, CELER_ERR_UNAUTHENTICATED, CELER_SCOPE_INFER, c, sizeof c);
    assert_string_equal(c, "Bearer realm=\"celer\", error=\"invalid_token\"");
    celer_auth_challenge(&reader, CELER_ERR_PERMISSION_DENIED, CELER_SCOPE_ADMIN, c, sizeof c);
    assert_string_equal(c, "Bearer realm=\"celer\", error=\"insufficient_scope\", scope=\"admin\"");
}

static void write_file(const char *path, const char *text) {
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fputs(text, f);
    fclose(f);
}

/* The process's set: start, check, reload (a broken file keeps the set before), stop. */
static void test_reload(void **state) {
    (void)state;
    celer_server_options quiet = {.log_format = "default", .log_info = 0, .log_warning = 0, .log_error = 0};
    celer_log_configure(&quiet);
    char path[] = "/tmp/celer-test-auth-XXXXXX";
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    close(fd);
    celer_auth_id id;
    /* off: everything open */
    assert_int_equal(celer_auth_start("", NULL), CELER_OK);
    assert_false(celer_auth_on());
    assert_int_equal(celer_auth_check(CELER_SCOPE_ADMIN, NULL, &id), CELER_OK);
    celer_auth_stop();

    write_file(path, "infer " K1 " old\n");
    assert_int_equal(celer_auth_start(path, NULL), CELER_OK);
    assert_true(celer_auth_on());
    assert_int_equal(celer_auth_check(CELER_SCOPE_INFER, "Bearer " K1, &id), CELER_OK);
    assert_string_equal(id.name, "old");
    assert_int_equal(celer_auth_check(CELER_SCOPE_INFER, "Bearer " K2, &id), CELER_ERR_UNAUTHENTICATED);

    write_file(path, "infer " K2 " new\n");
    celer_auth_reload();
    assert_int_equal(celer_auth_check(CELER_SCOPE_INFER, "Bearer " K1, &id), CELER_ERR_UNAUTHENTICATED);
    assert_int_equal(celer_auth_check(CELER_SCOPE_INFER, "Bearer " K2, &id), CELER_OK);
    assert_string_equal(id.name, "new");

    write_file(path, "infer " K3 " newer\ninfer tooshort\n"); /* broken: the set before stays */
    celer_auth_reload();
    assert_int_equal(celer_auth_check(CELER_SCOPE_INFER, "Bearer " K2, &id), CELER_OK);
    assert_int_equal(celer_auth_check(CELER_SCOPE_INFER, "Bearer " K3, &id), CELER_ERR_UNAUTHENTICATED);
    unlink(path); /* gone: the set before stays */
    celer_auth_reload();
    assert_int_equal(celer_auth_check(CELER_SCOPE_INFER, "Bearer " K2, &id), CELER_OK);
    celer_auth_stop();
    assert_false(celer_auth_on());

    /* a broken file at start: refused, naming the file and the line */
    write_file(path, "infer " K1 "\nadmin " K1 "\n");
    assert_int_equal(celer_auth_start(path, NULL), CELER_ERR_INVALID);
    assert_non_null(strstr(celer_error_message(), path));
    assert_non_null(strstr(celer_error_message(), "line 2: the same key"));
    assert_null(strstr(celer_error_message(), "aaaa"));
    assert_false(celer_auth_on());
    assert_int_equal(celer_auth_start("/nonexistent/celer-keys", NULL), CELER_ERR_IO);
    unlink(path);
    celer_server_options defaults = {.log_format = "default", .log_info = 1, .log_warning = 1, .log_error = 1};
    celer_log_configure(&defaults);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_parse),
        cmocka_unit_test(test_refusals),
        cmocka_unit_test(test_lookup),
        cmocka_unit_test(test_scopes),
        cmocka_unit_test(test_reload),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
