/* Remote models (src/server/remote.c), without an upstream: remote.yaml (defaults, every key, every
 * refusal naming the file and the key, bearer tokens from the environment and from files inside
 * the model folder only, headers), and what an upstream answers: model metadata and config (HTTP
 * JSON, gRPC messages built here with grpc_codec.h's writer) and infer answers (HTTP JSON with
 * binary parts or JSON data, gRPC ModelInferResponse with raw contents), checked against the
 * upstream's outputs: exact values on success, a clean status otherwise. */
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "server/config.h"
#include "server/grpc_codec.h"
#include "server/remote.h"
#include "testutil.h"

#define SHOWN "m/remote.yaml"

static celer_arena arena;
static char root[1024], mdir[1100], outside[1100]; /* root/m is the model folder */

/* ---- the model folder ---- */

static void write_file(const char *dir, const char *name, const char *text, size_t len) {
    char path[PATH_MAX];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    FILE *f = fopen(path, "wb");
    assert_non_null(f);
    assert_int_equal(fwrite(text, 1, len, f), len);
    fclose(f);
}

static const char *const model_files[] = {"token.txt", "token_crlf.txt", "ca.pem", "empty.txt", "ctl.txt", "big.txt",
                                          "link", "sub/inner.txt"};

static int group_setup(void **state) {
    (void)state;
    celer_arena_init(&arena, 0, 0);
    snprintf(root, sizeof root, "%s/celer-remote-XXXXXX", getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp");
    if (!mkdtemp(root)) return -1;
    snprintf(mdir, sizeof mdir, "%s/m", root);
    snprintf(outside, sizeof outside, "%s/outside.txt", root);
    char sub[PATH_MAX + 8];
    snprintf(sub, sizeof sub, "%s/sub", mdir);
    if (mkdir(mdir, 0700) || mkdir(sub, 0700)) return -1;
    write_file(root, "outside.txt", "outside\n", 8);
    write_file(mdir, "token.txt", "secret\n", 7);
    write_file(mdir, "token_crlf.txt", "tok-2\r\n", 7);
    write_file(mdir, "ca.pem", "-----BEGIN CERTIFICATE-----\n", 28);
    write_file(mdir, "empty.txt", "\n", 1);
    write_file(mdir, "ctl.txt", "a\001b\n", 4);
    write_file(mdir, "sub/inner.txt", "inner", 5);
    static char big[16385];
    memset(big, 'x', sizeof big);
    write_file(mdir, "big.txt", big, sizeof big);
    char link[PATH_MAX + 8];
    snprintf(link, sizeof link, "%s/link", mdir);
    if (symlink("../outside.txt", link)) return -1;
    setenv("CELER_TEST_REMOTE_TOKEN", "x", 1);
    setenv("CELER_TEST_REMOTE_KEY", "k1", 1);
    setenv("CELER_TEST_REMOTE_EMPTY", "", 1);
    setenv("CELER_TEST_REMOTE_CRLF", "a\r\nX-Evil: 1", 1);
    unsetenv("CELER_TEST_REMOTE_UNSET");
    return 0;
}

static int group_teardown(void **state) {
    (void)state;
    char path[PATH_MAX + 32];
    for (size_t i = 0; i < CELER_ARRAY_LEN(model_files); i++) {
        snprintf(path, sizeof path, "%s/%s", mdir, model_files[i]);
        unlink(path);
    }
    snprintf(path, sizeof path, "%s/sub", mdir);
    rmdir(path);
    rmdir(mdir);
    unlink(outside);
    rmdir(root);
    celer_arena_free(&arena);
    return 0;
}

/* ---- remote.yaml ---- */

static celer_status parse(const char *yaml, celer_remote_config *c) {
    return celer_remote_parse(yaml, strlen(yaml), SHOWN, mdir, "m", &arena, c);
}

static celer_remote_config parse_ok(const char *yaml) {
    celer_remote_config c;
    celer_status st = parse(yaml, &c);
    if (st) print_error("%s---\n%s\n", yaml, celer_error_message());
    assert_int_equal(st, CELER_OK);
    return c;
}

static void expect_refused(const char *yaml, celer_status want, const char *says, const char *says2) {
    celer_remote_config c;
    celer_status st = parse(yaml, &c);
    const char *msg = celer_error_message();
    bool ok = st == want && strstr(msg, SHOWN) && strstr(msg, says) && (!says2 || strstr(msg, says2));
    if (!ok)
        print_error("%s---\nstatus %d (want %d): '%s' should name '%s' and '%s'%s\n", yaml, st, want, msg, says,
                    says2 ? says2 : "", says2 ? "" : " (none)");
    assert_true(ok);
}

static void test_parse_defaults(void **unused) {
    (void)unused;
    celer_remote_config c = parse_ok("url: http://127.0.0.1:8000\n");
    assert_string_equal(c.url, "http://127.0.0.1:8000");
    assert_string_equal(c.base, "http://127.0.0.1:8000");
    assert_false(c.grpc);
    assert_string_equal(c.model, "m"); /* the folder's name */
    assert_string_equal(c.version, "");
    assert_int_equal(c.timeout_ms, 10000);
    assert_int_equal(c.connect_timeout_ms, 1000);
    assert_int_equal(c.health_interval_ms, 5000);
    assert_int_equal(c.max_inflight, 64);
    assert_int_equal(c.max_queue_size, 1024);
    assert_int_equal(c.retries, 2);
    assert_true(c.retry_budget == 0.1);
    assert_int_equal(c.breaker_failures, 5);
    assert_int_equal(c.breaker_open_ms, 1000);
    assert_int_equal(c.max_batch_size, 0);
    assert_true(c.cache_ttl_s == 0);
    assert_null(c.ca_file);
    assert_int_equal(c.n_headers, 0);
}

static void test_parse_every_key(void **unused) {
    (void)unused;
    celer_remote_config c = parse_ok("url: grpcs://triton.example:8001/\n"
                                     "model: densenet_onnx\n"
                                     "version: \"3\"\n"
                                     "timeout_ms: 2500\n"
                                     "connect_timeout_ms: 300\n"
                                     "health_interval_ms: 250\n"
                                     "max_inflight: 8\n"
                                     "max_queue_size: 100\n"
                                     "retries: 0\n"
                                     "retry_budget: 0.25\n"
                                     "circuit_breaker: {failures: 3, open_ms: 2000}\n"
                                     "max_batch_size: 16\n"
                                     "cache: {ttl: 5}\n"
                                     "bearer_token_file: token.txt\n"
                                     "headers: {X-Tenant: shop, X-Tab: \"a\\tb\", X_under: \"\"}\n"
                                     "headers_env: {X-Api-Key: CELER_TEST_REMOTE_KEY}\n"
                                     "ca_file: ca.pem\n");
    assert_string_equal(c.url, "grpcs://triton.example:8001"); /* as written, without the slash */
    assert_string_equal(c.base, "https://triton.example:8001");
    assert_true(c.grpc);
    assert_string_equal(c.model, "densenet_onnx");
    assert_string_equal(c.version, "3");
    assert_int_equal(c.timeout_ms, 2500);
    assert_int_equal(c.connect_timeout_ms, 300);
    assert_int_equal(c.health_interval_ms, 250);
    assert_int_equal(c.max_inflight, 8);
    assert_int_equal(c.max_queue_size, 100);
    assert_int_equal(c.retries, 0);
    assert_true(c.retry_budget == 0.25);
    assert_int_equal(c.breaker_failures, 3);
    assert_int_equal(c.breaker_open_ms, 2000);
    assert_int_equal(c.max_batch_size, 16);
    assert_true(c.cache_ttl_s == 5);
    char ca[PATH_MAX + 8], real[PATH_MAX];
    snprintf(ca, sizeof ca, "%s/ca.pem", mdir);
    assert_non_null(realpath(ca, real));
    assert_string_equal(c.ca_file, real);
    assert_int_equal(c.n_headers, 5);
    assert_string_equal(c.headers[0], "Authorization: Bearer secret"); /* the newline dropped */
    assert_string_equal(c.headers[1], "X-Tenant: shop");
    assert_string_equal(c.headers[2], "X-Tab: a\tb"); /* a tab is no control character here */
    assert_string_equal(c.headers[3], "X_under: ");
    assert_string_equal(c.headers[4], "X-Api-Key: k1");

    /* the schemes and the bounds of each number */
    c = parse_ok("url: grpc://h:8001\n");
    assert_true(c.grpc);
    assert_string_equal(c.url, "grpc://h:8001");
    assert_string_equal(c.base, "http://h:8001");
    c = parse_ok("url: https://h///\n");
    assert_false(c.grpc);
    assert_string_equal(c.url, "https://h");
    assert_string_equal(c.base, "https://h");
    c = parse_ok("url: http://[::1]:8000\ntimeout_ms: 1\nconnect_timeout_ms: 600000\nhealth_interval_ms: 3600000\n"
                 "max_inflight: 65536\n"
                 "max_queue_size: 1048576\nretries: 10\nretry_budget: 1\nmax_batch_size: 256\ncache: true\n"
                 "circuit_breaker: {failures: 1000000, open_ms: 3600000}\n");
    assert_string_equal(c.base, "http://[::1]:8000");
    assert_int_equal(c.timeout_ms, 1);
    assert_int_equal(c.connect_timeout_ms, 600000);
    assert_int_equal(c.health_interval_ms, 3600000);
    assert_int_equal(c.max_inflight, 65536);
    assert_int_equal(c.max_queue_size, 1 << 20);
    assert_int_equal(c.retries, 10);
    assert_true(c.retry_budget == 1);
    assert_int_equal(c.max_batch_size, CELER_MAX_BATCH_JOBS);
    assert_true(c.cache_ttl_s == 60);
    assert_int_equal(c.breaker_failures, 1000000);
    assert_int_equal(c.breaker_open_ms, 3600000);
    c = parse_ok("url: http://h\ntimeout_ms: 3600000\nconnect_timeout_ms: 1\nretry_budget: 0\ncache: false\n"
                 "health_interval_ms: 0\n");
    assert_int_equal(c.health_interval_ms, 0); /* never probed while idle */
    assert_int_equal(c.timeout_ms, 3600000);
    assert_int_equal(c.connect_timeout_ms, 1);
    assert_true(c.retry_budget == 0);
    assert_true(c.cache_ttl_s == 0);
    c = parse_ok("url: http://h\ncache: {ttl: 2592000}\n");
    assert_true(c.cache_ttl_s == 2592000);
    c = parse_ok("url: http://h\ncache: {ttl: 0.5}\n");
    assert_true(c.cache_ttl_s == 0.5);
}

static void test_parse_tokens(void **unused) {
    (void)unused;
    celer_remote_config c = parse_ok("url: http://h:1\nbearer_token_env: CELER_TEST_REMOTE_TOKEN\n");
    assert_int_equal(c.n_headers, 1);
    assert_string_equal(c.headers[0], "Authorization: Bearer x");
    c = parse_ok("url: http://h:1\nbearer_token_file: token_crlf.txt\nheaders: {X-A: b}\n");
    assert_int_equal(c.n_headers, 2);
    assert_string_equal(c.headers[0], "Authorization: Bearer tok-2"); /* "\r\n" dropped */
    assert_string_equal(c.headers[1], "X-A: b");
    c = parse_ok("url: http://h:1\nbearer_token_file: sub/../sub/inner.txt\n"); /* '..' that stays inside */
    assert_string_equal(c.headers[0], "Authorization: Bearer inner");

    /* outside the model folder: '..', an absolute path (even to a file inside), a symlink out */
    expect_refused("url: http://h:1\nbearer_token_file: ../outside.txt\n", CELER_ERR_INVALID,
                   "bearer_token_file '../outside.txt' must be a file inside the model folder", ":2:");
    expect_refused("url: http://h:1\nbearer_token_file: link\n", CELER_ERR_INVALID,
                   "bearer_token_file 'link' must be a file inside the model folder", NULL);
    char yaml[PATH_MAX + 128];
    snprintf(yaml, sizeof yaml, "url: http://h:1\nbearer_token_file: %s/token.txt\n", mdir);
    expect_refused(yaml, CELER_ERR_INVALID, "must be a file inside the model folder", "bearer_token_file");
    snprintf(yaml, sizeof yaml, "url: http://h:1\nbearer_token_file: %s\n", outside);
    expect_refused(yaml, CELER_ERR_INVALID, "must be a file inside the model folder", "bearer_token_file");
    snprintf(yaml, sizeof yaml, "url: http://h:1\nca_file: %s\n", outside);
    expect_refused(yaml, CELER_ERR_INVALID, "must be a file inside the model folder", "ca_file");
}

/* Every refusal: the status, and words the message must hold besides the file's name. */
static const struct {
    const char *yaml;
    celer_status st;
    const char *says, *says2;
} refused[] = {
    /* the document */
    {"", CELER_ERR_INVALID, "must be a mapping with at least 'url'", NULL},
    {"- a\n- b\n", CELER_ERR_INVALID, "must be a mapping with at least 'url'", NULL},
    {"url: [\n", CELER_ERR_PARSE, SHOWN ":", NULL},
    {"url: a\n  b: c\n", CELER_ERR_PARSE, SHOWN ":", NULL},
    {"model: x\n", CELER_ERR_INVALID, "'url' is required", NULL},
    {"url: http://h:1\nurl_: x\n", CELER_ERR_INVALID, "unknown key 'url_'", ":2:"},
    {"url: http://h:1\nTimeout_ms: 5\n", CELER_ERR_INVALID, "unknown key 'Timeout_ms'", NULL},
    {"url: http://h:1\n[a]: b\n", CELER_ERR_INVALID, "unknown key '?'", NULL},
    /* strings of the wrong type */
    {"url: [a]\n", CELER_ERR_INVALID, "'url' must be a string", ":1:"},
    {"url: {a: b}\n", CELER_ERR_INVALID, "'url' must be a string", NULL},
    {"url: http://h:1\nmodel: [x]\n", CELER_ERR_INVALID, "'model' must be a string", ":2:"},
    {"url: http://h:1\nversion: {}\n", CELER_ERR_INVALID, "'version' must be a string", NULL},
    {"url: http://h:1\nca_file: [x]\n", CELER_ERR_INVALID, "'ca_file' must be a string", NULL},
    {"url: http://h:1\nbearer_token_env: [a]\n", CELER_ERR_INVALID, "'bearer_token_env' must be a string", NULL},
    {"url: http://h:1\nbearer_token_file: {a: b}\n", CELER_ERR_INVALID, "'bearer_token_file' must be a string", NULL},
    /* url */
    {"url: h:8000\n", CELER_ERR_INVALID, "url 'h:8000' must start with http://, https://, grpc:// or grpcs://", NULL},
    {"url: 127.0.0.1:8000\n", CELER_ERR_INVALID, "must start with http://", NULL},
    {"url: ftp://h\n", CELER_ERR_INVALID, "url 'ftp://h' must start with", NULL},
    {"url: HTTP://h\n", CELER_ERR_INVALID, "must start with", NULL},
    {"url: http://h:8000/v2\n", CELER_ERR_INVALID, "url 'http://h:8000/v2' must be scheme://host[:port]", ":1:"},
    {"url: grpc://h:8001/inference.GRPCInferenceService\n", CELER_ERR_INVALID, "no path, query or user", NULL},
    {"url: http://h:8000/v2/models/x/\n", CELER_ERR_INVALID, "no path, query or user", NULL},
    {"url: http://h:8000?x=1\n", CELER_ERR_INVALID, "no path, query or user", NULL},
    {"url: http://user:pw@h:8000\n", CELER_ERR_INVALID, "no path, query or user", NULL},
    {"url: http://\n", CELER_ERR_INVALID, "must be scheme://host[:port]", NULL},
    {"url: grpcs:///\n", CELER_ERR_INVALID, "must be scheme://host[:port]", NULL},
    {"url: http://h:1\nmodel: a/b\n", CELER_ERR_INVALID, "'model' must be a model name", NULL},
    {"url: http://h:1\nmodel: ''\n", CELER_ERR_INVALID, "'model' must be a model name", NULL},
    /* integers: wrong type, not an integer, out of range */
    {"url: http://h:1\ntimeout_ms: abc\n", CELER_ERR_INVALID, "'timeout_ms' must be an integer from 1 to 3600000", ":2:"},
    {"url: http://h:1\ntimeout_ms: 0\n", CELER_ERR_INVALID, "'timeout_ms' must be an integer from 1 to 3600000", NULL},
    {"url: http://h:1\ntimeout_ms: 3600001\n", CELER_ERR_INVALID, "'timeout_ms' must be an integer", NULL},
    {"url: http://h:1\ntimeout_ms: 1.5\n", CELER_ERR_INVALID, "'timeout_ms' must be an integer", NULL},
    {"url: http://h:1\ntimeout_ms: 1e3\n", CELER_ERR_INVALID, "'timeout_ms' must be an integer", NULL},
    {"url: http://h:1\ntimeout_ms: 0x10\n", CELER_ERR_INVALID, "'timeout_ms' must be an integer", NULL},
    {"url: http://h:1\ntimeout_ms: ''\n", CELER_ERR_INVALID, "'timeout_ms' must be an integer", NULL},
    {"url: http://h:1\ntimeout_ms: 99999999999999999999\n", CELER_ERR_INVALID, "'timeout_ms' must be an integer", NULL},
    {"url: http://h:1\ntimeout_ms: [1]\n", CELER_ERR_INVALID, "'timeout_ms' must be an integer", NULL},
    {"url: http://h:1\nconnect_timeout_ms: 0\n", CELER_ERR_INVALID, "'connect_timeout_ms' must be an integer from 1 to 600000", NULL},
    {"url: http://h:1\nconnect_timeout_ms: 600001\n", CELER_ERR_INVALID, "'connect_timeout_ms' must be an integer", NULL},
    {"url: http://h:1\nhealth_interval_ms: -1\n", CELER_ERR_INVALID, "'health_interval_ms' must be an integer from 0 to 3600000", NULL},
    {"url: http://h:1\nhealth_interval_ms: 3600001\n", CELER_ERR_INVALID, "'health_interval_ms' must be an integer", NULL},
    {"url: http://h:1\nmax_inflight: 0\n", CELER_ERR_INVALID, "'max_inflight' must be an integer from 1 to 65536", NULL},
    {"url: http://h:1\nmax_inflight: 65537\n", CELER_ERR_INVALID, "'max_inflight' must be an integer", NULL},
    {"url: http://h:1\nmax_queue_size: 0\n", CELER_ERR_INVALID, "'max_queue_size' must be an integer from 1 to 1048576", NULL},
    {"url: http://h:1\nmax_queue_size: 1048577\n", CELER_ERR_INVALID, "'max_queue_size' must be an integer", NULL},
    {"url: http://h:1\nretries: -1\n", CELER_ERR_INVALID, "'retries' must be an integer from 0 to 10", NULL},
    {"url: http://h:1\nretries: 11\n", CELER_ERR_INVALID, "'retries' must be an integer from 0 to 10", NULL},
    {"url: http://h:1\nretries: {}\n", CELER_ERR_INVALID, "'retries' must be an integer", NULL},
    {"url: http://h:1\nmax_batch_size: -1\n", CELER_ERR_INVALID, "'max_batch_size' must be an integer from 0 to 256", NULL},
    {"url: http://h:1\nmax_batch_size: 257\n", CELER_ERR_INVALID, "'max_batch_size' must be an integer from 0 to 256", NULL},
    /* retry_budget */
    {"url: http://h:1\nretry_budget: -0.1\n", CELER_ERR_INVALID, "'retry_budget' must be a number from 0 to 1", NULL},
    {"url: http://h:1\nretry_budget: 1.01\n", CELER_ERR_INVALID, "'retry_budget' must be a number from 0 to 1", NULL},
    {"url: http://h:1\nretry_budget: x\n", CELER_ERR_INVALID, "'retry_budget' must be a number", NULL},
    {"url: http://h:1\nretry_budget: nan\n", CELER_ERR_INVALID, "'retry_budget' must be a number", NULL},
    {"url: http://h:1\nretry_budget: ''\n", CELER_ERR_INVALID, "'retry_budget' must be a number", NULL},
    {"url: http://h:1\nretry_budget: [0.1]\n", CELER_ERR_INVALID, "'retry_budget' must be a number", NULL},
    /* circuit_breaker */
    {"url: http://h:1\ncircuit_breaker: 5\n", CELER_ERR_INVALID, "'circuit_breaker' must be a mapping", NULL},
    {"url: http://h:1\ncircuit_breaker: [5]\n", CELER_ERR_INVALID, "'circuit_breaker' must be a mapping", NULL},
    {"url: http://h:1\ncircuit_breaker: {failures: 0}\n", CELER_ERR_INVALID,
     "'circuit_breaker.failures' must be an integer from 1 to 1000000", NULL},
    {"url: http://h:1\ncircuit_breaker: {failures: 1000001}\n", CELER_ERR_INVALID, "'circuit_breaker.failures'", NULL},
    {"url: http://h:1\ncircuit_breaker: {failures: x}\n", CELER_ERR_INVALID, "'circuit_breaker.failures'", NULL},
    {"url: http://h:1\ncircuit_breaker: {open_ms: 0}\n", CELER_ERR_INVALID,
     "'circuit_breaker.open_ms' must be an integer from 1 to 3600000", NULL},
    {"url: http://h:1\ncircuit_breaker: {open_ms: 3600001}\n", CELER_ERR_INVALID, "'circuit_breaker.open_ms'", NULL},
    {"url: http://h:1\ncircuit_breaker: {fails: 3}\n", CELER_ERR_INVALID,
     "'circuit_breaker' takes failures and open_ms, not 'fails'", NULL},
    {"url: http://h:1\ncircuit_breaker: {failures: [1]}\n", CELER_ERR_INVALID,
     "'circuit_breaker' takes names and scalar values", NULL},
    /* cache */
    {"url: http://h:1\ncache: maybe\n", CELER_ERR_INVALID, "'cache' is true, false or {ttl: seconds}", NULL},
    {"url: http://h:1\ncache: yes\n", CELER_ERR_INVALID, "'cache' is true, false or {ttl: seconds}", NULL},
    {"url: http://h:1\ncache: [1]\n", CELER_ERR_INVALID, "'cache' is true, false or {ttl: seconds}", NULL},
    {"url: http://h:1\ncache: {ttl: 0}\n", CELER_ERR_INVALID, "'cache' ttl must be", "not 0"},
    {"url: http://h:1\ncache: {ttl: -1}\n", CELER_ERR_INVALID, "'cache' ttl must be", NULL},
    {"url: http://h:1\ncache: {ttl: 2592001}\n", CELER_ERR_INVALID, "'cache' ttl must be", NULL},
    {"url: http://h:1\ncache: {ttl: x}\n", CELER_ERR_INVALID, "'cache' ttl must be", "not x"},
    {"url: http://h:1\ncache: {ttl: ''}\n", CELER_ERR_INVALID, "'cache' ttl must be", NULL},
    {"url: http://h:1\ncache: {tll: 5}\n", CELER_ERR_INVALID, "'cache' takes only 'ttl', not 'tll'", NULL},
    {"url: http://h:1\ncache: {ttl: [5]}\n", CELER_ERR_INVALID, "'cache' takes names and scalar values", NULL},
    /* headers */
    {"url: http://h:1\nheaders: [a]\n", CELER_ERR_INVALID, "'headers' must be a mapping", NULL},
    {"url: http://h:1\nheaders: x\n", CELER_ERR_INVALID, "'headers' must be a mapping", NULL},
    {"url: http://h:1\nheaders: {X-A: [1]}\n", CELER_ERR_INVALID, "'headers' takes names and scalar values", NULL},
    {"url: http://h:1\nheaders: {'bad name': x}\n", CELER_ERR_INVALID, "header name 'bad name' is not a token", NULL},
    {"url: http://h:1\nheaders: {'X-A:': x}\n", CELER_ERR_INVALID, "header name 'X-A:' is not a token", NULL},
    {"url: http://h:1\nheaders: {\"X\\nB\": x}\n", CELER_ERR_INVALID, "is not a token", NULL},
    {"url: http://h:1\nheaders: {'': x}\n", CELER_ERR_INVALID, "an empty header name", NULL},
    {"url: http://h:1\nheaders: {Authorization: a, authorization: b}\n", CELER_ERR_INVALID,
     "header 'authorization' is given twice", NULL},
    {"url: http://h:1\nheaders: {X-A: \"a\\x01b\"}\n", CELER_ERR_INVALID, "the value of header 'X-A' has a control character", NULL},
    {"url: http://h:1\nheaders: {X-A: \"a\\r\\nX-Evil: 1\"}\n", CELER_ERR_INVALID, "header 'X-A' has a control character", NULL},
    {"url: http://h:1\nheaders: {X-A: \"a\\nb\"}\n", CELER_ERR_INVALID, "header 'X-A' has a control character", NULL},
    {"url: http://h:1\nheaders: {H1: a, H2: a, H3: a, H4: a, H5: a, H6: a, H7: a, H8: a, H9: a, H10: a, H11: a, H12: a, "
     "H13: a, H14: a, H15: a, H16: a, H17: a}\n",
     CELER_ERR_INVALID, "more than 16 headers", NULL},
    {"url: http://h:1\nheaders_env: [a]\n", CELER_ERR_INVALID, "'headers_env' must be a mapping", NULL},
    {"url: http://h:1\nheaders_env: {X-Key: ''}\n", CELER_ERR_INVALID, "an environment variable name is expected", NULL},
    {"url: http://h:1\nheaders_env: {X-Key: CELER_TEST_REMOTE_UNSET}\n", CELER_ERR_NOT_FOUND,
     "environment variable 'CELER_TEST_REMOTE_UNSET' is not set", ":2:"},
    {"url: http://h:1\nheaders_env: {X-Key: CELER_TEST_REMOTE_CRLF}\n", CELER_ERR_INVALID,
     "header 'X-Key' has a control character", NULL},
    {"url: http://h:1\nheaders_env: {'X Key': CELER_TEST_REMOTE_KEY}\n", CELER_ERR_INVALID, "'X Key' is not a token", NULL},
    /* bearer tokens */
    {"url: http://h:1\nbearer_token_env: CELER_TEST_REMOTE_UNSET\n", CELER_ERR_NOT_FOUND,
     "environment variable 'CELER_TEST_REMOTE_UNSET' is not set", ":2:"},
    {"url: http://h:1\nbearer_token_env: ''\n", CELER_ERR_INVALID, "an environment variable name is expected", NULL},
    {"url: http://h:1\nbearer_token_env: CELER_TEST_REMOTE_EMPTY\n", CELER_ERR_INVALID,
     "the bearer token from bearer_token_env 'CELER_TEST_REMOTE_EMPTY' is empty", NULL},
    {"url: http://h:1\nbearer_token_env: CELER_TEST_REMOTE_CRLF\n", CELER_ERR_INVALID,
     "the bearer token from 'CELER_TEST_REMOTE_CRLF' has a control character", NULL},
    {"url: http://h:1\nbearer_token_file: ../outside.txt\n", CELER_ERR_INVALID,
     "bearer_token_file '../outside.txt' must be a file inside the model folder", NULL},
    {"url: http://h:1\nbearer_token_file: sub/../../outside.txt\n", CELER_ERR_INVALID, "must be a file inside", NULL},
    {"url: http://h:1\nbearer_token_file: link\n", CELER_ERR_INVALID, "bearer_token_file 'link' must be a file inside", NULL},
    {"url: http://h:1\nbearer_token_file: missing.txt\n", CELER_ERR_NOT_FOUND,
     "bearer_token_file 'missing.txt' must be a file inside", NULL},
    {"url: http://h:1\nbearer_token_file: ''\n", CELER_ERR_INVALID, "bearer_token_file", NULL},
    {"url: http://h:1\nbearer_token_file: empty.txt\n", CELER_ERR_INVALID,
     "the bearer token from bearer_token_file 'empty.txt' is empty", NULL},
    {"url: http://h:1\nbearer_token_file: ctl.txt\n", CELER_ERR_INVALID, "the bearer token from 'ctl.txt' has a control character", NULL},
    {"url: http://h:1\nbearer_token_file: big.txt\n", CELER_ERR_INVALID, "bearer_token_file 'big.txt' is over 16 KiB", NULL},
    /* ca_file */
    {"url: http://h:1\nca_file: ../outside.txt\n", CELER_ERR_INVALID, "ca_file '../outside.txt' must be a file inside the model folder", NULL},
    {"url: http://h:1\nca_file: link\n", CELER_ERR_INVALID, "ca_file 'link' must be a file inside", NULL},
    {"url: http://h:1\nca_file: missing.pem\n", CELER_ERR_NOT_FOUND, "ca_file 'missing.pem'", NULL},
};

static void test_parse_refused(void **unused) {
    (void)unused;
    for (size_t i = 0; i < CELER_ARRAY_LEN(refused); i++) expect_refused(refused[i].yaml, refused[i].st, refused[i].says, refused[i].says2);
}

/* ---- upstream metadata and config ---- */

static void put_shape(celer_jbuf *b, int field, const int64_t *dims, int rank, bool packed) {
    if (!packed) {
        for (int d = 0; d < rank; d++) celer_pb_put_varint(b, field, (uint64_t)dims[d]);
        return;
    }
    size_t m = celer_pb_begin(b, field);
    for (int d = 0; d < rank; d++) celer_pb_put_raw_varint(b, (uint64_t)dims[d]);
    celer_pb_end(b, m);
}

/* The transport's 5-byte prefix, then the message (celer_jbuf_raw after it), then frame_end. */
static void frame_begin(celer_jbuf *b) {
    celer_jbuf_init(b, 0);
    celer_jbuf_raw(b, "\0\0\0\0\0", 5);
}
static void frame_end(celer_jbuf *b) {
    assert_int_equal(b->status, CELER_OK);
    uint32_t n = (uint32_t)(b->len - 5);
    unsigned char *p = (unsigned char *)b->data;
    p[1] = (unsigned char)(n >> 24), p[2] = (unsigned char)(n >> 16), p[3] = (unsigned char)(n >> 8), p[4] = (unsigned char)n;
}

/* TensorMetadata{name=1, datatype=2, shape=3} as field `field` (4 inputs, 5 outputs). */
static void put_tensor_meta(celer_jbuf *b, int field, const char *name, const char *dt, const int64_t *dims, int rank,
                            bool packed) {
    size_t m = celer_pb_begin(b, field);
    celer_pb_put_str(b, 1, name);
    celer_pb_put_str(b, 2, dt);
    put_shape(b, 3, dims, rank, packed);
    celer_pb_end(b, m);
}

static void assert_meta(const celer_remote_desc *d) {
    assert_int_equal(d->max_batch_size, 0);
    assert_int_equal(d->n_inputs, 2);
    assert_string_equal(d->inputs[0].name, "x");
    assert_int_equal(d->inputs[0].dtype, CELER_FLOAT);
    assert_int_equal(d->inputs[0].rank, 2);
    assert_int_equal(d->inputs[0].dims[0], -1);
    assert_int_equal(d->inputs[0].dims[1], 3);
    assert_string_equal(d->inputs[1].name, "s");
    assert_int_equal(d->inputs[1].dtype, CELER_STRING);
    assert_int_equal(d->inputs[1].rank, 0);
    assert_int_equal(d->n_outputs, 2);
    assert_string_equal(d->outputs[0].name, "y");
    assert_int_equal(d->outputs[0].dtype, CELER_INT64);
    assert_true(d->outputs[0].has_shape);
    assert_int_equal(d->outputs[0].shape.rank, 1);
    assert_int_equal(d->outputs[0].shape.dims[0], -1);
    assert_string_equal(d->outputs[1].name, "h");
    assert_int_equal(d->outputs[1].dtype, CELER_FLOAT16);
    assert_int_equal(d->outputs[1].shape.rank, 3);
    assert_int_equal(d->outputs[1].shape.dims[2], 224);
}

static void test_metadata_http(void **unused) {
    (void)unused;
    celer_remote_desc d;
    const char *ok = "{\"name\":\"m\",\"versions\":[\"1\"],\"platform\":\"onnxruntime_onnx\","
                     "\"inputs\":[{\"name\":\"x\",\"datatype\":\"FP32\",\"shape\":[-1,3]},"
                     "{\"name\":\"s\",\"datatype\":\"BYTES\",\"shape\":[]}],"
                     "\"outputs\":[{\"name\":\"y\",\"datatype\":\"INT64\",\"shape\":[-1]},"
                     "{\"name\":\"h\",\"datatype\":\"FP16\",\"shape\":[3,224,224]}]}";
    assert_int_equal(celer_remote_decode_metadata(false, ok, strlen(ok), &arena, &d), CELER_OK);
    assert_string_equal(d.platform, "onnxruntime_onnx");
    assert_meta(&d);
    const char *bare = "{\"inputs\":[],\"outputs\":[]}";
    assert_int_equal(celer_remote_decode_metadata(false, bare, strlen(bare), &arena, &d), CELER_OK);
    assert_string_equal(d.platform, "");
    assert_int_equal(d.n_inputs + d.n_outputs, 0);

    static const struct {
        const char *body;
        celer_status st;
        const char *says;
    } bad[] = {
        {"", CELER_ERR_PARSE, ""},
        {"{\"inputs\":[", CELER_ERR_PARSE, ""},
        {"[]", CELER_ERR_PARSE, "the metadata has no inputs"},
        {"{\"inputs\":[]}", CELER_ERR_PARSE, "the metadata has no outputs"},
        {"{\"inputs\":{},\"outputs\":[]}", CELER_ERR_PARSE, "the metadata has no inputs"},
        {"{\"inputs\":[{\"datatype\":\"FP32\",\"shape\":[1]}],\"outputs\":[]}", CELER_ERR_PARSE, "lacks name or datatype"},
        {"{\"inputs\":[{\"name\":\"x\",\"datatype\":7,\"shape\":[1]}],\"outputs\":[]}", CELER_ERR_PARSE, "lacks name or datatype"},
        {"{\"inputs\":[{\"name\":\"x\",\"datatype\":\"FP32\"}],\"outputs\":[]}", CELER_ERR_PARSE, "not an array of integers"},
        {"{\"inputs\":[{\"name\":\"x\",\"datatype\":\"FP32\",\"shape\":[\"a\"]}],\"outputs\":[]}", CELER_ERR_PARSE,
         "not an array of integers"},
        {"{\"inputs\":[{\"name\":\"x\",\"datatype\":\"FP32\",\"shape\":[1.5]}],\"outputs\":[]}", CELER_ERR_INVALID, "shape"},
        {"{\"inputs\":[{\"name\":\"x\",\"datatype\":\"FP32\",\"shape\":[1,2,3,4,5,6,7,8,9]}],\"outputs\":[]}", CELER_ERR_LIMIT,
         "more than 8 dims"},
        {"{\"inputs\":[],\"outputs\":[{\"name\":\"c\",\"datatype\":\"COMPLEX64\",\"shape\":[1]}]}", CELER_ERR_INVALID,
         "output 'c' has datatype 'COMPLEX64', which celer does not serve"},
        {"{\"inputs\":[{\"name\":\"x\",\"datatype\":\"fp32\",\"shape\":[1]}],\"outputs\":[]}", CELER_ERR_INVALID,
         "input 'x' has datatype 'fp32'"},
    };
    for (size_t i = 0; i < CELER_ARRAY_LEN(bad); i++) {
        celer_status st = celer_remote_decode_metadata(false, bad[i].body, strlen(bad[i].body), &arena, &d);
        if (st != bad[i].st || !strstr(celer_error_message(), bad[i].says))
            print_error("%s: status %d (want %d) '%s' lacks '%s'\n", bad[i].body, st, bad[i].st, celer_error_message(),
                        bad[i].says);
        assert_int_equal(st, bad[i].st);
        assert_non_null(strstr(celer_error_message(), bad[i].says));
    }

    /* more tensors than a model may have */
    celer_jbuf b;
    celer_jbuf_init(&b, 0);
    celer_jbuf_raw(&b, "{\"inputs\":[", 11);
    for (int i = 0; i <= CELER_CONFIG_MAX_IO; i++) {
        char t[80];
        snprintf(t, sizeof t, "%s{\"name\":\"i%d\",\"datatype\":\"UINT8\",\"shape\":[1]}", i ? "," : "", i);
        celer_jbuf_raw(&b, t, strlen(t));
    }
    celer_jbuf_raw(&b, "],\"outputs\":[]}", 15);
    assert_int_equal(celer_remote_decode_metadata(false, b.data, b.len, &arena, &d), CELER_ERR_LIMIT);
    assert_non_null(strstr(celer_error_message(), "more than 256 tensors"));
    celer_jbuf_free(&b);
}

static void test_metadata_grpc(void **unused) {
    (void)unused;
    celer_remote_desc d;
    celer_jbuf b;
    for (int packed = 0; packed < 2; packed++) {
        frame_begin(&b);
        celer_pb_put_str(&b, 1, "m");
        celer_pb_put_str(&b, 2, "1");
        celer_pb_put_str(&b, 3, "onnxruntime_onnx");
        put_tensor_meta(&b, 4, "x", "FP32", (const int64_t[]){-1, 3}, 2, packed);
        put_tensor_meta(&b, 4, "s", "BYTES", NULL, 0, packed);
        put_tensor_meta(&b, 5, "y", "INT64", (const int64_t[]){-1}, 1, packed);
        put_tensor_meta(&b, 5, "h", "FP16", (const int64_t[]){3, 224, 224}, 3, !packed);
        celer_pb_put_varint(&b, 9, 5); /* unknown fields are skipped */
        frame_end(&b);
        assert_int_equal(celer_remote_decode_metadata(true, b.data, b.len, &arena, &d), CELER_OK);
        assert_string_equal(d.platform, "onnxruntime_onnx");
        assert_meta(&d);

        /* every truncation is a clean error (or, cut between fields, fewer tensors) */
        for (size_t cut = 0; cut < b.len; cut++) {
            celer_status st = celer_remote_decode_metadata(true, b.data, cut, &arena, &d);
            assert_true(st == CELER_OK || st == CELER_ERR_PARSE);
            if (cut < 5) assert_int_equal(st, CELER_ERR_PARSE);
        }
        celer_jbuf_free(&b);
    }

    frame_begin(&b);
    put_tensor_meta(&b, 5, "c", "COMPLEX64", (const int64_t[]){1}, 1, true);
    frame_end(&b);
    assert_int_equal(celer_remote_decode_metadata(true, b.data, b.len, &arena, &d), CELER_ERR_INVALID);
    assert_non_null(strstr(celer_error_message(), "output 'c' has datatype 'COMPLEX64'"));
    celer_jbuf_free(&b);

    frame_begin(&b);
    put_tensor_meta(&b, 4, "x", "FP32", (const int64_t[]){1, 1, 1, 1, 1, 1, 1, 1, 1}, 9, true);
    frame_end(&b);
    assert_int_equal(celer_remote_decode_metadata(true, b.data, b.len, &arena, &d), CELER_ERR_LIMIT);
    celer_jbuf_free(&b);

    frame_begin(&b); /* a tensor whose name runs past its message */
    celer_jbuf_raw(&b, "\x22\x04\x0a\x09xy", 6);
    frame_end(&b);
    assert_int_equal(celer_remote_decode_metadata(true, b.data, b.len, &arena, &d), CELER_ERR_PARSE);
    celer_jbuf_free(&b);

    frame_begin(&b); /* a length past the message */
    celer_jbuf_raw(&b, "\x22\x7f\x0a\x01x", 5);
    frame_end(&b);
    assert_int_equal(celer_remote_decode_metadata(true, b.data, b.len, &arena, &d), CELER_ERR_PARSE);
    celer_jbuf_free(&b);
    assert_int_equal(celer_remote_decode_metadata(true, NULL, 0, &arena, &d), CELER_ERR_PARSE);
}

static void test_max_batch(void **unused) {
    (void)unused;
    int mbs = -7;
    static const struct {
        const char *body;
        int mbs;
    } json[] = {
        {"{\"name\":\"m\",\"max_batch_size\":8,\"input\":[]}", 8},
        {"{\"name\":\"m\"}", 0},
        {"{\"max_batch_size\":0}", 0},
        {"{\"max_batch_size\":-1}", 0},
        {"{\"max_batch_size\":\"8\"}", 0},
        {"{\"max_batch_size\":1e12}", 0},
        {"[8]", 0},
    };
    for (size_t i = 0; i < CELER_ARRAY_LEN(json); i++) {
        assert_int_equal(celer_remote_decode_max_batch(false, json[i].body, strlen(json[i].body), &arena, &mbs), CELER_OK);
        assert_int_equal(mbs, json[i].mbs);
    }
    assert_int_equal(celer_remote_decode_max_batch(false, "{\"max_batch_size\":", 18, &arena, &mbs), CELER_ERR_PARSE);
    assert_int_equal(celer_remote_decode_max_batch(false, NULL, 0, &arena, &mbs), CELER_ERR_PARSE);

    /* ModelConfigResponse{config=1: ModelConfig{name=1, platform=2, max_batch_size=4}} */
    celer_jbuf b;
    frame_begin(&b);
    size_t m = celer_pb_begin(&b, 1);
    celer_pb_put_str(&b, 1, "m");
    celer_pb_put_str(&b, 2, "onnxruntime_onnx");
    celer_pb_put_varint(&b, 4, 4);
    celer_pb_end(&b, m);
    frame_end(&b);
    mbs = -7;
    assert_int_equal(celer_remote_decode_max_batch(true, b.data, b.len, &arena, &mbs), CELER_OK);
    assert_int_equal(mbs, 4);
    for (size_t cut = 5; cut < b.len; cut++) { /* truncated: no crash, no value from outside the message */
        mbs = -7;
        celer_status st = celer_remote_decode_max_batch(true, b.data, cut, &arena, &mbs);
        assert_true(st == CELER_OK || st == CELER_ERR_PARSE);
        assert_true(mbs == 0 || mbs == 4);
    }
    celer_jbuf_free(&b);
    frame_begin(&b); /* no config */
    frame_end(&b);
    assert_int_equal(celer_remote_decode_max_batch(true, b.data, b.len, &arena, &mbs), CELER_OK);
    assert_int_equal(mbs, 0);
    celer_jbuf_free(&b);
    assert_int_equal(celer_remote_decode_max_batch(true, "\0\0\0", 3, &arena, &mbs), CELER_ERR_PARSE);
}

/* ---- infer answers ---- */

/* The upstream's outputs: batched (max_batch_size 8) and not. */
static celer_io_desc outs_b[] = {
    {.name = "prob", .dtype = CELER_FLOAT, .has_shape = true, .shape = {2, {-1, 3}}},
    {.name = "idx", .dtype = CELER_INT64, .has_shape = true, .shape = {1, {-1}}},
    {.name = "label", .dtype = CELER_STRING, .has_shape = true, .shape = {1, {-1}}},
};
static const celer_remote_desc desc_b = {.platform = "", .max_batch_size = 8, .n_outputs = 3, .outputs = outs_b};
static celer_io_desc outs_u[] = {
    {.name = "y", .dtype = CELER_FLOAT, .has_shape = true, .shape = {2, {2, 2}}},
    {.name = "s", .dtype = CELER_STRING, .has_shape = true, .shape = {1, {-1}}},
    {.name = "v", .dtype = CELER_FLOAT, .has_shape = true, .shape = {1, {-1}}},
    {.name = "b", .dtype = CELER_BOOL, .has_shape = true, .shape = {0, {0}}},
};
static const celer_remote_desc desc_u = {.platform = "", .n_outputs = 4, .outputs = outs_u};

static const float prob[6] = {1, 2, 3, 4.5f, -5, 0.25f};
static const int64_t idx[2] = {7, -9000000000};
/* "a", "b\0c" in binary form */
static const char label_bin[] = "\001\000\000\000a\003\000\000\000b\000c";
#define LABEL_BIN_LEN 12

static void assert_batched_values(const celer_tensor *o) {
    assert_int_equal(o[0].dtype, CELER_FLOAT);
    assert_int_equal(o[0].shape.rank, 2);
    assert_int_equal(o[0].shape.dims[0], 2);
    assert_int_equal(o[0].shape.dims[1], 3);
    assert_memory_equal(o[0].data, prob, sizeof prob);
    assert_int_equal(o[1].dtype, CELER_INT64);
    assert_int_equal(o[1].shape.rank, 1);
    assert_int_equal(o[1].shape.dims[0], 2);
    assert_memory_equal(o[1].data, idx, sizeof idx);
    assert_int_equal(o[2].dtype, CELER_STRING);
    assert_int_equal(o[2].shape.dims[0], 2);
    TU_ASSERT_STR(&o[2], 0, TU_LIT("a"));
    TU_ASSERT_STR(&o[2], 1, TU_LIT("b\0c"));
}

/* An HTTP answer: the JSON header, `pad` spaces after it, then the binary parts. malloc'd. */
static char *http_body(const char *json, size_t pad, const void *bin, size_t bin_len, size_t *len, size_t *json_len) {
    *json_len = strlen(json) + pad;
    *len = *json_len + bin_len;
    char *b = malloc(*len + 1);
    assert_non_null(b);
    memcpy(b, json, strlen(json));
    memset(b + strlen(json), ' ', pad);
    if (bin_len) memcpy(b + *json_len, bin, bin_len);
    return b;
}

static celer_status decode_http(const celer_remote_desc *d, int64_t rows, const char *json, const void *bin, size_t bin_len,
                                celer_tensor *outs) {
    size_t len, jl;
    char *body = http_body(json, 0, bin, bin_len, &len, &jl);
    celer_status st = celer_remote_decode(d, false, rows, body, len, bin_len ? jl : SIZE_MAX, &arena, outs);
    free(body);
    return st;
}

static void test_decode_http_binary(void **unused) {
    (void)unused;
    /* the answer's order (label, prob, idx) is not the metadata's; outputs not asked for are skipped,
     * their binary part too ("other2", 4 bytes between label and prob) */
    const char *json = "{\"model_name\":\"m\",\"outputs\":["
                       "{\"name\":\"label\",\"datatype\":\"BYTES\",\"shape\":[2],\"parameters\":{\"binary_data_size\":12}},"
                       "{\"name\":\"other\",\"datatype\":\"FP32\",\"shape\":[1],\"data\":[1]},"
                       "{\"name\":\"other2\",\"datatype\":\"FP32\",\"shape\":[1],\"parameters\":{\"binary_data_size\":4}},"
                       "{\"name\":\"prob\",\"datatype\":\"FP32\",\"shape\":[2,3],\"parameters\":{\"binary_data_size\":24}},"
                       "{\"name\":\"idx\",\"datatype\":\"INT64\",\"shape\":[2],\"parameters\":{\"binary_data_size\":16}}]}";
    char bin[LABEL_BIN_LEN + 4 + 24 + 16];
    memcpy(bin, label_bin, LABEL_BIN_LEN);
    memcpy(bin + LABEL_BIN_LEN, "\x7f\x7f\x7f\x7f", 4); /* other2's */
    memcpy(bin + LABEL_BIN_LEN + 4, prob, 24);
    memcpy(bin + LABEL_BIN_LEN + 4 + 24, idx, 16);
    /* pad 0..7: prob and idx aligned in the body (used in place) or not (copied) */
    for (size_t pad = 0; pad < 8; pad++) {
        size_t len, jl;
        char *body = http_body(json, pad, bin, sizeof bin, &len, &jl);
        celer_tensor o[3];
        memset(o, 0, sizeof o);
        celer_status st = celer_remote_decode(&desc_b, false, 2, body, len, jl, &arena, o);
        if (st) print_error("pad %zu: %s\n", pad, celer_error_message());
        assert_int_equal(st, CELER_OK);
        assert_batched_values(o);
        const char *p = o[0].data, *q = o[1].data;
        bool in_body = p >= body && p < body + len;
        assert_int_equal(in_body, (jl + LABEL_BIN_LEN + 4) % 4 == 0);
        assert_int_equal(q >= body && q < body + len, (jl + LABEL_BIN_LEN + 4 + 24) % 8 == 0);
        assert_int_equal((uintptr_t)p % 4, 0);
        assert_int_equal((uintptr_t)q % 8, 0);
        if (in_body) assert_ptr_equal(p, body + jl + LABEL_BIN_LEN + 4);
        /* BYTES elements are copied: they outlive the body */
        const celer_str *s = o[2].data;
        assert_false(s[0].data >= body && s[0].data < body + len);
        free(body);
    }
}

static void test_decode_http_json(void **unused) {
    (void)unused;
    celer_tensor o[4];
    const char *json = "{\"outputs\":["
                       "{\"name\":\"idx\",\"datatype\":\"INT64\",\"shape\":[2],\"data\":[7,-9000000000]},"
                       "{\"name\":\"label\",\"datatype\":\"BYTES\",\"shape\":[2],\"data\":[\"a\",\"b\\u0000c\"]},"
                       "{\"name\":\"prob\",\"datatype\":\"FP32\",\"shape\":[2,3],\"data\":[[1,2,3],[4.5,-5,0.25]]}]}";
    assert_int_equal(decode_http(&desc_b, 2, json, NULL, 0, o), CELER_OK);
    assert_batched_values(o);

    /* unbatched: fixed dims, a scalar, an empty tensor, BYTES binary and JSON data mixed */
    json = "{\"outputs\":[{\"name\":\"b\",\"datatype\":\"BOOL\",\"shape\":[],\"data\":[true]},"
           "{\"name\":\"v\",\"datatype\":\"FP32\",\"shape\":[0],\"data\":[]},"
           "{\"name\":\"s\",\"datatype\":\"BYTES\",\"shape\":[2],\"parameters\":{\"binary_data_size\":12}},"
           "{\"name\":\"y\",\"datatype\":\"FP32\",\"shape\":[2,2],\"data\":[1,2,3,4]}]}";
    memset(o, 0, sizeof o);
    assert_int_equal(decode_http(&desc_u, 0, json, label_bin, LABEL_BIN_LEN, o), CELER_OK);
    assert_memory_equal(o[0].data, ((const float[]){1, 2, 3, 4}), 16);
    TU_ASSERT_STR(&o[1], 1, TU_LIT("b\0c"));
    assert_int_equal(o[2].shape.rank, 1);
    assert_int_equal(o[2].shape.dims[0], 0);
    assert_int_equal(o[3].dtype, CELER_BOOL);
    assert_int_equal(o[3].shape.rank, 0);
    assert_int_equal(*(const uint8_t *)o[3].data, 1);
}

/* Answers refused against desc_b with 2 rows: the status and words of the message. */
static const struct {
    const char *json;
    size_t bin_len; /* bytes of binary parts: label_bin, prob, idx in that order (no header when 0) */
    celer_status st;
    const char *says;
} http_bad[] = {
    {"", 0, CELER_ERR_PARSE, ""},
    {"{\"outputs\":[", 0, CELER_ERR_PARSE, ""},
    {"{}", 0, CELER_ERR_PARSE, "the answer has no outputs array"},
    {"{\"outputs\":{}}", 0, CELER_ERR_PARSE, "the answer has no outputs array"},
    {"{\"outputs\":[]}", 0, CELER_ERR_INVALID, "the answer lacks output 'prob'"},
    {"{\"outputs\":[{\"name\":\"prob\",\"datatype\":\"FP32\",\"shape\":[2,3],\"data\":[1,2,3,4,5,6]},"
     "{\"name\":\"label\",\"datatype\":\"BYTES\",\"shape\":[2],\"data\":[\"a\",\"b\"]}]}",
     0, CELER_ERR_INVALID, "the answer lacks output 'idx'"},
    {"{\"outputs\":[{\"datatype\":\"FP32\",\"shape\":[2,3],\"data\":[1,2,3,4,5,6]}]}", 0, CELER_ERR_PARSE,
     "output 0 lacks name, datatype or shape"},
    {"{\"outputs\":[{\"name\":\"prob\",\"shape\":[2,3],\"data\":[1,2,3,4,5,6]}]}", 0, CELER_ERR_PARSE, "lacks name, datatype"},
    {"{\"outputs\":[{\"name\":\"prob\",\"datatype\":\"FP32\",\"data\":[1,2,3,4,5,6]}]}", 0, CELER_ERR_PARSE, "lacks name, datatype"},
    {"{\"outputs\":[{\"name\":\"prob\",\"datatype\":\"FP32\",\"shape\":\"2,3\",\"data\":[1,2,3,4,5,6]}]}", 0, CELER_ERR_PARSE,
     "lacks name, datatype"},
    {"{\"outputs\":[{\"name\":\"prob\",\"datatype\":\"FP32\",\"shape\":[\"2\"],\"data\":[1,2,3,4,5,6]}]}", 0, CELER_ERR_PARSE,
     "not an array of integers"},
    {"{\"outputs\":[{\"name\":\"prob\",\"datatype\":\"FP32\",\"shape\":[2,3]}]}", 0, CELER_ERR_PARSE,
     "output 'prob' has neither data nor binary_data_size"},
    /* wrong datatype, dims, rows */
    {"{\"outputs\":[{\"name\":\"prob\",\"datatype\":\"FP64\",\"shape\":[2,3],\"data\":[1,2,3,4,5,6]}]}", 0, CELER_ERR_DTYPE,
     "output 'prob' has datatype FP64, its metadata says FP32"},
    {"{\"outputs\":[{\"name\":\"prob\",\"datatype\":\"float32\",\"shape\":[2,3],\"data\":[1,2,3,4,5,6]}]}", 0, CELER_ERR_DTYPE,
     "output 'prob' has datatype float32"},
    {"{\"outputs\":[{\"name\":\"prob\",\"datatype\":\"FP32\",\"shape\":[2,4],\"data\":[1,2,3,4,5,6,7,8]}]}", 0, CELER_ERR_SHAPE,
     "output 'prob' dim 1 is 4, its metadata says 3"},
    {"{\"outputs\":[{\"name\":\"prob\",\"datatype\":\"FP32\",\"shape\":[6],\"data\":[1,2,3,4,5,6]}]}", 0, CELER_ERR_SHAPE,
     "output 'prob' has 1 dims, its metadata says 2"},
    {"{\"outputs\":[{\"name\":\"prob\",\"datatype\":\"FP32\",\"shape\":[3,3],\"data\":[1,2,3,4,5,6,7,8,9]}]}", 0, CELER_ERR_SHAPE,
     "output 'prob' has 3 rows for a request of 2"},
    {"{\"outputs\":[{\"name\":\"prob\",\"datatype\":\"FP32\",\"shape\":[-2,3],\"data\":[]}]}", 0, CELER_ERR_SHAPE,
     "output 'prob' dim 0 is -2"},
    {"{\"outputs\":[{\"name\":\"label\",\"datatype\":\"BYTES\",\"shape\":[],\"data\":\"a\"}]}", 0, CELER_ERR_SHAPE,
     "output 'label' has 0 dims"},
    {"{\"outputs\":[{\"name\":\"prob\",\"datatype\":\"FP32\",\"shape\":[1,2,3,4,5,6,7,8,9],\"data\":[]}]}", 0, CELER_ERR_LIMIT,
     "more than 8 dims"},
    /* JSON data that does not fill the shape */
    {"{\"outputs\":[{\"name\":\"prob\",\"datatype\":\"FP32\",\"shape\":[2,3],\"data\":[1,2,3,4,5]}]}", 0, CELER_ERR_SHAPE,
     "prob"},
    {"{\"outputs\":[{\"name\":\"idx\",\"datatype\":\"INT64\",\"shape\":[2],\"data\":[1.5,2]}]}", 0, CELER_ERR_INVALID, "idx"},
    /* binary parts */
    {"{\"outputs\":[{\"name\":\"label\",\"datatype\":\"BYTES\",\"shape\":[2],\"parameters\":{\"binary_data_size\":53}}]}",
     LABEL_BIN_LEN + 40, CELER_ERR_PARSE, "output 'label': binary_data_size past the body"},
    {"{\"outputs\":[{\"name\":\"label\",\"datatype\":\"BYTES\",\"shape\":[2],\"parameters\":{\"binary_data_size\":-1}}]}",
     LABEL_BIN_LEN + 40, CELER_ERR_PARSE, "binary_data_size past the body"},
    {"{\"outputs\":[{\"name\":\"label\",\"datatype\":\"BYTES\",\"shape\":[2],\"parameters\":{\"binary_data_size\":\"12\"}}]}",
     LABEL_BIN_LEN + 40, CELER_ERR_PARSE, "binary_data_size past the body"},
    {"{\"outputs\":[{\"name\":\"label\",\"datatype\":\"BYTES\",\"shape\":[2],\"parameters\":{\"binary_data_size\":12}},"
     "{\"name\":\"prob\",\"datatype\":\"FP32\",\"shape\":[2,3],\"parameters\":{\"binary_data_size\":24}},"
     "{\"name\":\"idx\",\"datatype\":\"INT64\",\"shape\":[2],\"parameters\":{\"binary_data_size\":24}}]}",
     LABEL_BIN_LEN + 40, CELER_ERR_PARSE, "output 'idx': binary_data_size past the body"},
    {"{\"outputs\":[{\"name\":\"label\",\"datatype\":\"BYTES\",\"shape\":[2],\"parameters\":{\"binary_data_size\":12}},"
     "{\"name\":\"prob\",\"datatype\":\"FP32\",\"shape\":[2,3],\"parameters\":{\"binary_data_size\":20}},"
     "{\"name\":\"idx\",\"datatype\":\"INT64\",\"shape\":[2],\"parameters\":{\"binary_data_size\":20}}]}",
     LABEL_BIN_LEN + 40, CELER_ERR_SHAPE, "output 'prob' has 20 bytes for 6 elements of 4"},
    {"{\"outputs\":[{\"name\":\"label\",\"datatype\":\"BYTES\",\"shape\":[2],\"parameters\":{\"binary_data_size\":16}}]}",
     LABEL_BIN_LEN + 40, CELER_ERR_INVALID, "output 'label'"},
    {"{\"outputs\":[{\"name\":\"label\",\"datatype\":\"BYTES\",\"shape\":[2],\"parameters\":{\"binary_data_size\":11}}]}",
     LABEL_BIN_LEN + 40, CELER_ERR_INVALID, "output 'label'"},
};

static void test_decode_http_refused(void **unused) {
    (void)unused;
    char bin[LABEL_BIN_LEN + 40];
    memcpy(bin, label_bin, LABEL_BIN_LEN);
    memcpy(bin + LABEL_BIN_LEN, prob, 24);
    memcpy(bin + LABEL_BIN_LEN + 24, idx, 16);
    for (size_t i = 0; i < CELER_ARRAY_LEN(http_bad); i++) {
        celer_tensor o[3];
        celer_status st = decode_http(&desc_b, 2, http_bad[i].json, bin, http_bad[i].bin_len, o);
        if (st != http_bad[i].st || !strstr(celer_error_message(), http_bad[i].says))
            print_error("%s: status %d (want %d) '%s' lacks '%s'\n", http_bad[i].json, st, http_bad[i].st,
                        celer_error_message(), http_bad[i].says);
        assert_int_equal(st, http_bad[i].st);
        assert_non_null(strstr(celer_error_message(), http_bad[i].says));
    }

    /* Inference-Header-Content-Length past the body */
    celer_tensor o[4];
    const char *json = "{\"outputs\":[]}";
    assert_int_equal(celer_remote_decode(&desc_b, false, 2, json, strlen(json), strlen(json) + 1, &arena, o), CELER_ERR_PARSE);
    assert_non_null(strstr(celer_error_message(), "Inference-Header-Content-Length 15 is past the body's 14 bytes"));
    assert_int_equal(celer_remote_decode(&desc_b, false, 2, NULL, 0, SIZE_MAX, &arena, o), CELER_ERR_PARSE);

    /* unbatched, fully dynamic: shapes whose byte size wraps around size_t: 2^62 FP32 elements in 0
     * binary bytes, or with JSON data (2^64 + 1 bytes would be 1), 2^60 BYTES elements (2^64 bytes
     * of celer_str) with JSON data: refused before anything is written */
    static const char *const wrap[] = {
        "{\"name\":\"v\",\"datatype\":\"FP32\",\"shape\":[4611686018427387904],\"parameters\":{\"binary_data_size\":0}},"
        "{\"name\":\"s\",\"datatype\":\"BYTES\",\"shape\":[1],\"data\":[\"a\"]}",
        "{\"name\":\"v\",\"datatype\":\"FP32\",\"shape\":[4611686018427387904],\"data\":[1,2,3,4,5,6,7,8,9,10,11,12,13,14,"
        "15,16,17,18,19,20,21,22,23,24,25,26,27,28,29,30,31,32,33,34,35,36,37,38,39,40]},"
        "{\"name\":\"s\",\"datatype\":\"BYTES\",\"shape\":[1],\"data\":[\"a\"]}",
        "{\"name\":\"s\",\"datatype\":\"BYTES\",\"shape\":[1152921504606846976],\"data\":[\"a\",\"b\",\"c\",\"d\",\"e\",\"f\","
        "\"g\",\"h\",\"i\",\"j\",\"k\",\"l\"]},{\"name\":\"v\",\"datatype\":\"FP32\",\"shape\":[1],\"data\":[1]}",
        /* 2^60 - 600 BYTES elements: 2^64 - 9600 bytes of celer_str, which fits in size_t but not in memory
         * (the arena's cap check wrapped around: a malloc of that size) */
        "{\"name\":\"s\",\"datatype\":\"BYTES\",\"shape\":[1152921504606846376],\"data\":[\"x\",\"x\"]},"
        "{\"name\":\"v\",\"datatype\":\"FP32\",\"shape\":[1],\"data\":[1]}",
        /* more elements than the data has bytes: refused before allocating */
        "{\"name\":\"v\",\"datatype\":\"FP32\",\"shape\":[5],\"data\":[1]},"
        "{\"name\":\"s\",\"datatype\":\"BYTES\",\"shape\":[1],\"data\":[\"a\"]}",
    };
    for (size_t i = 0; i < CELER_ARRAY_LEN(wrap); i++) {
        char answer[1024];
        snprintf(answer, sizeof answer,
                 "{\"outputs\":[{\"name\":\"y\",\"datatype\":\"FP32\",\"shape\":[2,2],\"data\":[1,2,3,4]},"
                 "{\"name\":\"b\",\"datatype\":\"BOOL\",\"shape\":[],\"data\":[true]},%s]}",
                 wrap[i]);
        celer_status st = decode_http(&desc_u, 0, answer, NULL, 0, o);
        if (st != CELER_ERR_SHAPE) print_error("%s: status %d '%s'\n", wrap[i], st, celer_error_message());
        assert_int_equal(st, CELER_ERR_SHAPE);
        assert_non_null(strstr(celer_error_message(), i == 2 || i == 3 ? "output 's'" : "output 'v'"));
    }
}

/* ---- gRPC ModelInferResponse ---- */

/* InferOutputTensor{name=1, datatype=2, shape=3} as field 5; typed: contents=5 with fp32 values. */
static void put_output(celer_jbuf *b, const char *name, const char *dt, const int64_t *dims, int rank, bool packed,
                       bool typed) {
    size_t m = celer_pb_begin(b, 5);
    celer_pb_put_str(b, 1, name);
    celer_pb_put_str(b, 2, dt);
    put_shape(b, 3, dims, rank, packed);
    if (typed) {
        size_t c = celer_pb_begin(b, 5);
        celer_pb_put_bytes(b, 4, prob, sizeof prob); /* fp32_contents, packed */
        celer_pb_end(b, c);
    }
    celer_pb_end(b, m);
}

/* The batched answer: outputs idx, label, prob (not the metadata's order), then their raw contents. */
static void grpc_answer(celer_jbuf *b, bool packed, int64_t prob_rows, int64_t prob_cols, const char *prob_dt,
                        size_t prob_bytes) {
    frame_begin(b);
    celer_pb_put_str(b, 1, "m");
    celer_pb_put_str(b, 2, "1");
    celer_pb_put_str(b, 3, "req-1");
    put_output(b, "idx", "INT64", (const int64_t[]){2}, 1, packed, false);
    put_output(b, "label", "BYTES", (const int64_t[]){2}, 1, !packed, false);
    put_output(b, "prob", prob_dt, (const int64_t[]){prob_rows, prob_cols}, 2, packed, false);
    celer_pb_put_bytes(b, 6, idx, sizeof idx);
    celer_pb_put_bytes(b, 6, label_bin, LABEL_BIN_LEN);
    float more[16] = {0}; /* prob, then zeros: up to 64 bytes */
    memcpy(more, prob, sizeof prob);
    assert_true(prob_bytes <= sizeof more);
    celer_pb_put_bytes(b, 6, more, prob_bytes);
    frame_end(b);
}

static celer_status decode_grpc(const celer_jbuf *b, celer_tensor *o) {
    /* a copy of exactly the message's size, so a read past it is caught */
    char *copy = malloc(b->len);
    assert_non_null(copy);
    memcpy(copy, b->data, b->len);
    celer_status st = celer_remote_decode(&desc_b, true, 2, copy, b->len, SIZE_MAX, &arena, o);
    if (!st) { /* fixed-size outputs may point into the message: compare before freeing it */
        assert_batched_values(o);
    }
    free(copy);
    return st;
}

static void test_decode_grpc(void **unused) {
    (void)unused;
    celer_jbuf b;
    celer_tensor o[3];
    for (int packed = 0; packed < 2; packed++) {
        grpc_answer(&b, packed, 2, 3, "FP32", sizeof prob);
        memset(o, 0, sizeof o);
        celer_status st = decode_grpc(&b, o);
        if (st) print_error("%s\n", celer_error_message());
        assert_int_equal(st, CELER_OK);
        /* every truncation, the prefix telling the truth: a clean error */
        for (size_t cut = 5; cut < b.len; cut++) {
            celer_jbuf t;
            frame_begin(&t);
            celer_jbuf_raw(&t, b.data + 5, cut - 5);
            frame_end(&t);
            assert_int_not_equal(decode_grpc(&t, o), CELER_OK);
            celer_jbuf_free(&t);
        }
        /* and the prefix not telling it */
        for (size_t cut = 0; cut < b.len; cut++) {
            celer_jbuf t = b;
            t.len = cut;
            assert_int_equal(decode_grpc(&t, o), CELER_ERR_PARSE);
        }
        celer_jbuf_free(&b);
    }

    static const struct {
        int64_t rows, cols;
        const char *dt;
        size_t bytes;
        celer_status st;
        const char *says;
    } bad[] = {
        {3, 3, "FP32", 36, CELER_ERR_SHAPE, "output 'prob' has 3 rows for a request of 2"},
        {2, 4, "FP32", 32, CELER_ERR_SHAPE, "output 'prob' dim 1 is 4, its metadata says 3"},
        {2, 3, "FP16", 24, CELER_ERR_DTYPE, "output 'prob' has datatype FP16, its metadata says FP32"},
        {2, 3, "", 24, CELER_ERR_DTYPE, "output 'prob' has datatype"},
        {2, 3, "FP32", 20, CELER_ERR_SHAPE, "output 'prob' has 20 bytes for 6 elements of 4"},
        {2, 3, "FP32", 28, CELER_ERR_SHAPE, "output 'prob' has 28 bytes for 6 elements of 4"},
        {-1, 3, "FP32", 0, CELER_ERR_SHAPE, "output 'prob' dim 0 is -1"},
    };
    for (size_t i = 0; i < CELER_ARRAY_LEN(bad); i++) {
        grpc_answer(&b, true, bad[i].rows, bad[i].cols, bad[i].dt, bad[i].bytes);
        celer_status st = decode_grpc(&b, o);
        if (st != bad[i].st || !strstr(celer_error_message(), bad[i].says))
            print_error("case %zu: status %d (want %d) '%s' lacks '%s'\n", i, st, bad[i].st, celer_error_message(),
                        bad[i].says);
        assert_int_equal(st, bad[i].st);
        assert_non_null(strstr(celer_error_message(), bad[i].says));
        celer_jbuf_free(&b);
    }

    /* typed contents are refused, naming the output */
    frame_begin(&b);
    put_output(&b, "prob", "FP32", (const int64_t[]){2, 3}, 2, true, true);
    frame_end(&b);
    assert_int_equal(decode_grpc(&b, o), CELER_ERR_UNSUPPORTED);
    assert_non_null(strstr(celer_error_message(), "output 'prob' came in typed contents, not raw"));
    celer_jbuf_free(&b);

    /* a missing raw_output_contents, more of them than outputs, an output missing */
    frame_begin(&b);
    put_output(&b, "prob", "FP32", (const int64_t[]){2, 3}, 2, true, false);
    put_output(&b, "idx", "INT64", (const int64_t[]){2}, 1, true, false);
    put_output(&b, "label", "BYTES", (const int64_t[]){2}, 1, true, false);
    celer_pb_put_bytes(&b, 6, prob, sizeof prob);
    celer_pb_put_bytes(&b, 6, idx, sizeof idx);
    frame_end(&b);
    assert_int_equal(decode_grpc(&b, o), CELER_ERR_INVALID);
    assert_non_null(strstr(celer_error_message(), "the answer lacks output 'label' (in raw_output_contents)"));
    celer_jbuf_free(&b);
    frame_begin(&b);
    put_output(&b, "prob", "FP32", (const int64_t[]){2, 3}, 2, true, false);
    celer_pb_put_bytes(&b, 6, prob, sizeof prob);
    celer_pb_put_bytes(&b, 6, idx, sizeof idx);
    frame_end(&b);
    assert_int_equal(decode_grpc(&b, o), CELER_ERR_PARSE);
    assert_non_null(strstr(celer_error_message(), "more raw_output_contents than outputs"));
    celer_jbuf_free(&b);
    frame_begin(&b);
    put_output(&b, "prob", "FP32", (const int64_t[]){2, 3}, 2, true, false);
    put_output(&b, "label", "BYTES", (const int64_t[]){2}, 1, true, false);
    celer_pb_put_bytes(&b, 6, prob, sizeof prob);
    celer_pb_put_bytes(&b, 6, label_bin, LABEL_BIN_LEN);
    frame_end(&b);
    assert_int_equal(decode_grpc(&b, o), CELER_ERR_INVALID);
    assert_non_null(strstr(celer_error_message(), "the answer lacks output 'idx'"));
    celer_jbuf_free(&b);

    /* a shape of 9 dims, packed */
    frame_begin(&b);
    put_output(&b, "prob", "FP32", (const int64_t[]){2, 3, 1, 1, 1, 1, 1, 1, 1}, 9, true, false);
    frame_end(&b);
    assert_int_equal(decode_grpc(&b, o), CELER_ERR_LIMIT);
    celer_jbuf_free(&b);

    /* a compressed message, and no message */
    grpc_answer(&b, true, 2, 3, "FP32", sizeof prob);
    b.data[0] = 1;
    assert_int_equal(decode_grpc(&b, o), CELER_ERR_PARSE);
    assert_non_null(strstr(celer_error_message(), "not one uncompressed gRPC message"));
    celer_jbuf_free(&b);
    assert_int_equal(celer_remote_decode(&desc_b, true, 2, NULL, 0, SIZE_MAX, &arena, o), CELER_ERR_PARSE);

    /* 2^62 FP32 elements in 0 bytes (the byte size wraps around) */
    frame_begin(&b);
    put_output(&b, "y", "FP32", (const int64_t[]){2, 2}, 2, true, false);
    put_output(&b, "s", "BYTES", (const int64_t[]){1}, 1, true, false);
    put_output(&b, "v", "FP32", (const int64_t[]){(int64_t)1 << 62}, 1, true, false);
    put_output(&b, "b", "BOOL", NULL, 0, true, false);
    celer_pb_put_bytes(&b, 6, prob, 16);
    celer_pb_put_bytes(&b, 6, label_bin, 5);
    celer_pb_put_bytes(&b, 6, "", 0);
    celer_pb_put_bytes(&b, 6, "\1", 1);
    frame_end(&b);
    char *copy = malloc(b.len);
    memcpy(copy, b.data, b.len);
    assert_int_equal(celer_remote_decode(&desc_u, true, 0, copy, b.len, SIZE_MAX, &arena, o), CELER_ERR_SHAPE);
    assert_non_null(strstr(celer_error_message(), "'v'"));
    free(copy);
    celer_jbuf_free(&b);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_parse_defaults),     cmocka_unit_test(test_parse_every_key),
        cmocka_unit_test(test_parse_tokens),       cmocka_unit_test(test_parse_refused),
        cmocka_unit_test(test_metadata_http),      cmocka_unit_test(test_metadata_grpc),
        cmocka_unit_test(test_max_batch),          cmocka_unit_test(test_decode_http_binary),
        cmocka_unit_test(test_decode_http_json),   cmocka_unit_test(test_decode_http_refused),
        cmocka_unit_test(test_decode_grpc),
    };
    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
