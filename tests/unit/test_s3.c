/* The S3 client (src/server/s3.c): Triton's path forms and the AWS environment, the canonical
 * ListObjectsV2 query libcurl 7.88 needs (sorted, encoded), listings and error bodies as AWS and
 * Swift write them. With CELER_S3_ENDPOINT set (tests/s3/test_s3_client.py starts a Swift with
 * s3api, which checks every signature, and seeds it), the same client against it: signed LIST over
 * several pages, GET into a file, 304 on an unchanged ETag, a multipart ETag, and a wrong secret
 * or an unknown key refused with S3's message and no secret in it; and the local copy (s3_mirror.c)
 * of a repository without READY markers: a unit taken at the second sync that lists it unchanged,
 * not while it changes, its objects fetched several at once, the copy pruned when the bucket loses
 * them. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "server/s3.h"
#include "server/s3_mirror.h"
#include "testutil.h"

static celer_s3_loc parse_ok(const char *url, const celer_s3_env *env) {
    celer_s3_loc loc;
    celer_status st = celer_s3_parse(url, env, &loc);
    if (st) print_error("%s: %s\n", url, celer_error_message());
    assert_int_equal(st, CELER_OK);
    return loc;
}

static void test_parse_forms(void **unused) {
    (void)unused;
    celer_s3_env env = {0};
    celer_s3_loc l = parse_ok("s3://my-bucket/models/prod", &env);
    assert_string_equal(l.endpoint, "https://s3.us-east-1.amazonaws.com");
    assert_string_equal(l.bucket, "my-bucket");
    assert_string_equal(l.prefix, "models/prod/");
    assert_string_equal(l.region, "us-east-1");
    env.default_region = "eu-west-1";
    l = parse_ok("s3://my-bucket", &env);
    assert_string_equal(l.endpoint, "https://s3.eu-west-1.amazonaws.com");
    assert_string_equal(l.prefix, "");
    env.region = "ap-south-1"; /* AWS_REGION wins over AWS_DEFAULT_REGION */
    l = parse_ok("s3://my-bucket//a//b/", &env);
    assert_string_equal(l.region, "ap-south-1");
    assert_string_equal(l.prefix, "a/b/");
    l = parse_ok("s3://127.0.0.1:9000/bucket1/repo", &env);
    assert_string_equal(l.endpoint, "http://127.0.0.1:9000");
    assert_string_equal(l.bucket, "bucket1");
    assert_string_equal(l.prefix, "repo/");
    l = parse_ok("s3://https://s3.example.com:8443/bucket1", &env);
    assert_string_equal(l.endpoint, "https://s3.example.com:8443");
    l = parse_ok("s3://http://minio:9000/bucket1/x", &env);
    assert_string_equal(l.endpoint, "http://minio:9000");
    env.endpoint_url = "http://localhost:8080/";
    l = parse_ok("s3://bucket1/x", &env);
    assert_string_equal(l.endpoint, "http://localhost:8080");
    l = parse_ok("s3://10.0.0.1:80/bucket1", &env); /* an explicit host wins over AWS_ENDPOINT_URL */
    assert_string_equal(l.endpoint, "http://10.0.0.1:80");
}

static void test_parse_refused(void **unused) {
    (void)unused;
    celer_s3_env env = {0};
    static const struct {
        const char *url, *says;
    } bad[] = {
        {"/models", "starts with s3://"},
        {"s3://b", "not a bucket name"},
        {"s3://My-Bucket/x", "not a bucket name"},
        {"s3://127.0.0.1:9000", "names no bucket"},
        {"s3://https://host/bucket1", "host:port"},
        {"s3://host:port/bucket1", "host:port"},
        {"s3://bucket1/a/../b", "'..'"},
        {"s3://bucket1/a/./b", "'..'"},
    };
    for (size_t i = 0; i < CELER_ARRAY_LEN(bad); i++) {
        celer_s3_loc l;
        assert_int_equal(celer_s3_parse(bad[i].url, &env, &l), CELER_ERR_INVALID);
        if (!strstr(celer_error_message(), bad[i].says))
            print_error("%s: '%s' lacks '%s'\n", bad[i].url, celer_error_message(), bad[i].says);
        assert_non_null(strstr(celer_error_message(), bad[i].says));
    }
    env.endpoint_url = "localhost:8080";
    celer_s3_loc l;
    assert_int_equal(celer_s3_parse("s3://bucket1", &env, &l), CELER_ERR_INVALID);
    assert_non_null(strstr(celer_error_message(), "AWS_ENDPOINT_URL"));
}

/* Each row a way libcurl 7.88's signature went wrong against Swift (see s3.c). */
static void test_list_query(void **unused) {
    (void)unused;
    char q[512];
    assert_true(celer_s3_list_query("repo/", NULL, 1000, q, sizeof q));
    assert_string_equal(q, "list-type=2&max-keys=1000&prefix=repo%2F");
    assert_true(celer_s3_list_query("", "cmVwby9t+bA/=", 5, q, sizeof q));
    assert_string_equal(q, "continuation-token=cmVwby9t%2BbA%2F%3D&list-type=2&max-keys=5&prefix=");
    assert_true(celer_s3_list_query("a b&c~_.-", NULL, 7, q, sizeof q));
    assert_string_equal(q, "list-type=2&max-keys=7&prefix=a%20b%26c~_.-");
    assert_false(celer_s3_list_query("repo/", NULL, 1000, q, 20)); /* does not fit */
    char u[64] = "/b/";
    assert_true(celer_s3_uri_encode("m/1/model x.onnx", true, u, sizeof u));
    assert_string_equal(u, "/b/m/1/model%20x.onnx");
}

static void test_parse_list(void **unused) {
    (void)unused;
    /* AWS writes the ETag's quotes as &quot;, Swift as quotes; keys are XML-escaped */
    static const char page1[] =
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<ListBucketResult xmlns=\"http://s3.amazonaws.com/doc/2006-03-01/\">"
        "<Name>bucket1</Name><Prefix>repo/</Prefix><KeyCount>2</KeyCount><MaxKeys>2</MaxKeys>"
        "<IsTruncated>true</IsTruncated><Contents><Key>repo/m/a&amp;b.txt</Key><LastModified>2026-12-04T10:00:00.000Z"
        "</LastModified><ETag>&quot;9e107d9d372bb6826bd81d3542a419d6&quot;</ETag><Size>43</Size>"
        "<StorageClass>STANDARD</StorageClass></Contents><Contents><Key>repo/m/1/model.onnx</Key>"
        "<ETag>\"04c5ba90aa-3\"</ETag><Size>20971520</Size></Contents>"
        "<NextContinuationToken>cmVw+/=</NextContinuationToken></ListBucketResult>";
    static const char page2[] = "<ListBucketResult><Name>bucket1</Name><IsTruncated>false</IsTruncated>"
                                "<Contents><Key>repo/m/1/READY&#x41;&#66;</Key><ETag>\"x\"</ETag><Size>1</Size>"
                                "</Contents></ListBucketResult>";
    celer_s3_listing l = {0};
    bool trunc;
    char token[64];
    assert_int_equal(celer_s3_parse_list(page1, strlen(page1), &l, &trunc, token, sizeof token), CELER_OK);
    assert_true(trunc);
    assert_string_equal(token, "cmVw+/=");
    assert_int_equal(l.n, 2);
    assert_string_equal(l.objs[0].key, "repo/m/a&b.txt");
    assert_string_equal(l.objs[0].etag, "\"9e107d9d372bb6826bd81d3542a419d6\"");
    assert_int_equal(l.objs[0].size, 43);
    assert_string_equal(l.objs[1].etag, "\"04c5ba90aa-3\"");
    assert_int_equal(l.objs[1].size, 20971520);
    assert_int_equal(celer_s3_parse_list(page2, strlen(page2), &l, &trunc, token, sizeof token), CELER_OK);
    assert_false(trunc);
    assert_string_equal(token, "");
    assert_int_equal(l.n, 3);
    assert_string_equal(l.objs[2].key, "repo/m/1/READYAB");
    celer_s3_listing_free(&l);

    static const char *const broken[] = {
        "<Error><Code>AccessDenied</Code></Error>",
        "<ListBucketResult><Contents><ETag>\"x\"</ETag><Size>1</Size></Contents></ListBucketResult>", /* no Key */
        "<ListBucketResult><Contents><Key>k</Key><Size>-1</Size></Contents></ListBucketResult>",
        "<ListBucketResult><Contents><Key>k</Key><Size>12x</Size></Contents></ListBucketResult>",
        "<ListBucketResult><Contents><Key>a&bogus;</Key><Size>1</Size></Contents></ListBucketResult>",
        "<ListBucketResult><IsTruncated>true</IsTruncated></ListBucketResult>", /* truncated, no token */
    };
    for (size_t i = 0; i < CELER_ARRAY_LEN(broken); i++) {
        celer_s3_listing b = {0};
        assert_int_equal(celer_s3_parse_list(broken[i], strlen(broken[i]), &b, &trunc, token, sizeof token),
                         CELER_ERR_PARSE);
        celer_s3_listing_free(&b);
    }
}

static void test_error_text(void **unused) {
    (void)unused;
    static const char body[] = "<?xml version='1.0' encoding='UTF-8'?>\n<Error><Code>SignatureDoesNotMatch</Code>"
                               "<Message>The request signature we calculated does not match the signature you "
                               "provided. Check your key and signing method.</Message><RequestId>tx1</RequestId></Error>";
    char t[256];
    assert_true(celer_s3_error_text(body, strlen(body), t, sizeof t));
    assert_string_equal(t, "SignatureDoesNotMatch: The request signature we calculated does not match the signature "
                           "you provided. Check your key and signing method.");
    assert_false(celer_s3_error_text("<html>400</html>", 16, t, sizeof t));
}

/* ---- against a real S3 (tests/s3/test_s3_client.py sets these) ---- */

typedef struct live {
    const char *endpoint, *bucket, *dir;
} live;

static bool live_env(live *lv) {
    lv->endpoint = getenv("CELER_S3_ENDPOINT");
    lv->bucket = getenv("CELER_S3_BUCKET");
    lv->dir = getenv("CELER_S3_TMPDIR");
    return lv->endpoint && lv->bucket && lv->dir;
}

static celer_s3 *live_client(const live *lv, const char *key, const char *secret, int page_keys) {
    char url[512];
    /* the endpoint's host:port in Triton's form */
    snprintf(url, sizeof url, "s3://%s/%s/repo", lv->endpoint + strlen("http://"), lv->bucket);
    celer_s3_env env = {.access_key = key, .secret_key = secret};
    celer_s3_loc loc = parse_ok(url, &env);
    celer_s3_opts opts = {.connect_ms = 2000, .read_ms = 10000, .page_keys = page_keys};
    celer_s3 *s;
    assert_int_equal(celer_s3_open(&loc, &env, &opts, &s), CELER_OK);
    return s;
}

static const celer_s3_object *find(const celer_s3_listing *l, const char *key) {
    for (size_t i = 0; i < l->n; i++)
        if (!strcmp(l->objs[i].key, key)) return &l->objs[i];
    return NULL;
}

/* The bucket holds repo/small.txt ("hello s3\n"), repo/a&b c.txt, repo/big.bin (20 MB, uploaded
 * in 3 parts) and repo/many/k000..k011. */
static void test_live_list_get(void **unused) {
    (void)unused;
    live lv;
    if (!live_env(&lv)) skip();
    celer_s3 *s = live_client(&lv, "test:tester", "testing", 5);
    celer_s3_listing l;
    celer_status st = celer_s3_list(s, NULL, 100000, &l);
    if (st) print_error("%s\n", celer_error_message());
    assert_int_equal(st, CELER_OK);
    assert_int_equal(l.n, 15);
    assert_int_equal(l.pages, 3); /* 15 keys, 5 a page: the continuation token signed and sent back */
    const celer_s3_object *small = find(&l, "repo/small.txt"), *big = find(&l, "repo/big.bin");
    assert_non_null(small);
    assert_non_null(find(&l, "repo/a&b c.txt"));
    assert_non_null(big);
    assert_int_equal(small->size, 9);
    assert_int_equal(big->size, 20 << 20);
    assert_non_null(strstr(big->etag, "-3\"")); /* multipart */

    char path[512], etag[96];
    snprintf(path, sizeof path, "%s/small.txt", lv.dir);
    bool nm;
    int64_t bytes;
    assert_int_equal(celer_s3_get(s, "repo/small.txt", NULL, path, 1 << 20, &nm, etag, &bytes), CELER_OK);
    assert_false(nm);
    assert_int_equal(bytes, 9);
    assert_string_equal(etag, small->etag);
    FILE *f = fopen(path, "rb");
    char buf[32] = {0};
    assert_non_null(f);
    assert_int_equal(fread(buf, 1, sizeof buf, f), 9);
    fclose(f);
    assert_string_equal(buf, "hello s3\n");
    /* unchanged: 304, nothing written */
    assert_int_equal(celer_s3_get(s, "repo/small.txt", small->etag, path, 1 << 20, &nm, etag, &bytes), CELER_OK);
    assert_true(nm);
    assert_int_equal(bytes, 0);
    /* a key that needs encoding in the path */
    snprintf(path, sizeof path, "%s/ab.txt", lv.dir);
    st = celer_s3_get(s, "repo/a&b c.txt", NULL, path, 1 << 20, &nm, etag, &bytes);
    if (st) print_error("%s\n", celer_error_message());
    assert_int_equal(st, CELER_OK);
    /* the multipart object: 304 on its -3 ETag; past a cap refused and no file left */
    snprintf(path, sizeof path, "%s/big.bin", lv.dir);
    assert_int_equal(celer_s3_get(s, "repo/big.bin", big->etag, path, 64 << 20, &nm, etag, &bytes), CELER_OK);
    assert_true(nm);
    assert_int_equal(celer_s3_get(s, "repo/big.bin", NULL, path, 1 << 20, &nm, etag, &bytes), CELER_ERR_LIMIT);
    struct stat sb;
    char part[600];
    snprintf(part, sizeof part, "%s.part", path);
    assert_true(stat(path, &sb) != 0 && stat(part, &sb) != 0);
    assert_int_equal(celer_s3_get(s, "repo/big.bin", NULL, path, 64 << 20, &nm, etag, &bytes), CELER_OK);
    assert_int_equal(bytes, 20 << 20);
    assert_int_equal(celer_s3_get(s, "repo/none", NULL, path, 1 << 20, &nm, etag, &bytes), CELER_ERR_NOT_FOUND);
    assert_non_null(strstr(celer_error_message(), "404"));
    celer_s3_listing_free(&l);
    celer_s3_close(s);
}

static void test_live_refused(void **unused) {
    (void)unused;
    live lv;
    if (!live_env(&lv)) skip();
    static const struct {
        const char *key, *secret;
    } creds[] = {{"test:tester", "not-the-secret-9f3a"}, {"nobody:none", "not-the-secret-9f3a"}};
    for (size_t i = 0; i < CELER_ARRAY_LEN(creds); i++) {
        celer_s3 *s = live_client(&lv, creds[i].key, creds[i].secret, 0);
        celer_s3_listing l;
        assert_int_equal(celer_s3_list(s, NULL, 1000, &l), CELER_ERR_IO);
        const char *m = celer_error_message();
        if (!strstr(m, "403") || !strstr(m, "SignatureDoesNotMatch")) print_error("%s\n", m);
        assert_non_null(strstr(m, "HTTP 403, SignatureDoesNotMatch: "));
        assert_null(strstr(m, creds[i].secret));
        celer_s3_listing_free(&l);
        char path[512], etag[96];
        bool nm;
        int64_t bytes;
        snprintf(path, sizeof path, "%s/refused.txt", lv.dir);
        assert_int_equal(celer_s3_get(s, "repo/small.txt", NULL, path, 1 << 20, &nm, etag, &bytes), CELER_ERR_IO);
        assert_null(strstr(celer_error_message(), creds[i].secret));
        celer_s3_close(s);
    }
    /* nobody listening: unavailable, naming the endpoint */
    celer_s3_env env = {0};
    celer_s3_loc loc = parse_ok("s3://127.0.0.1:1/bucket1", &env);
    celer_s3_opts opts = {.connect_ms = 1000, .read_ms = 1000};
    celer_s3 *s;
    assert_int_equal(celer_s3_open(&loc, &env, &opts, &s), CELER_OK);
    celer_s3_listing l;
    assert_int_equal(celer_s3_list(s, NULL, 10, &l), CELER_ERR_UNAVAILABLE);
    assert_non_null(strstr(celer_error_message(), "http://127.0.0.1:1"));
    assert_non_null(strstr(celer_error_message(), "(after 3 attempts)")); /* tried again, 100 and 400 ms on */
    celer_s3_listing_free(&l);
    celer_s3_close(s);
}

static bool file_is(const char *path, const char *want) {
    char buf[64] = {0};
    FILE *f = fopen(path, "rb");
    if (!f) return false;
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    fclose(f);
    return n == strlen(want) && !memcmp(buf, want, n);
}

/* Runs `CELER_S3_UTIL VERB ENDPOINT BUCKET ARGS` (tests/s3/s3util.py): changes the bucket between
 * two syncs. */
static void s3util(const live *lv, const char *verb, const char *args) {
    char cmd[2048];
    snprintf(cmd, sizeof cmd, "%s %s %s %s %s", getenv("CELER_S3_UTIL"), verb, lv->endpoint, lv->bucket, args);
    assert_int_equal(system(cmd), 0);
}

/* The bucket also holds mirror/m/config.pbtxt and mirror/m/1/k000..k011 ("v0-0" ...): no READY
 * marker anywhere. */
static void test_live_mirror(void **unused) {
    (void)unused;
    live lv;
    if (!live_env(&lv) || !getenv("CELER_S3_UTIL")) skip();
    setenv("AWS_ACCESS_KEY_ID", "test:tester", 1);
    setenv("AWS_SECRET_ACCESS_KEY", "testing", 1);
    char url[512], dir[512], path[700];
    snprintf(url, sizeof url, "s3://%s/%s/mirror", lv.endpoint + strlen("http://"), lv.bucket);
    snprintf(dir, sizeof dir, "%s/mirror-copy", lv.dir);
    celer_s3_mirror *m;
    celer_status st = celer_s3_mirror_open(url, dir, INT64_C(1) << 30, &m);
    if (st) print_error("%s\n", celer_error_message());
    assert_int_equal(st, CELER_OK);
    celer_s3_sync_stats s;
    /* first sight: nothing taken */
    assert_int_equal(celer_s3_mirror_sync(m, &s), CELER_OK);
    assert_int_equal(s.units_taken, 0);
    assert_int_equal(s.units_waiting, 2);
    assert_int_equal(s.objects_downloaded, 0);
    /* the same listing again: both units, their 13 objects fetched 4 at a time */
    assert_int_equal(celer_s3_mirror_sync(m, &s), CELER_OK);
    assert_int_equal(s.units_taken, 2);
    assert_int_equal(s.objects_downloaded, 13);
    for (int i = 0; i < 12; i++) {
        char want[16];
        snprintf(path, sizeof path, "%s/m/1/k%03d", dir, i);
        snprintf(want, sizeof want, "v0-%d", i);
        assert_true(file_is(path, want));
    }
    snprintf(path, sizeof path, "%s/.celer-s3-incoming", dir);
    struct stat sb;
    assert_true(stat(path, &sb) != 0); /* no staging left */
    /* one object changes: that version waits until two syncs list it the same, the copy holding the
     * old bytes meanwhile; then only it is downloaded */
    char args[700], src[600];
    snprintf(src, sizeof src, "%s/k003-new", lv.dir);
    FILE *f = fopen(src, "wb");
    assert_non_null(f);
    fputs("v1-3", f);
    fclose(f);
    snprintf(args, sizeof args, "mirror/m/1/k003 %s", src);
    s3util(&lv, "put", args);
    assert_int_equal(celer_s3_mirror_sync(m, &s), CELER_OK);
    assert_int_equal(s.units_waiting, 1);
    assert_int_equal(s.objects_downloaded, 0);
    snprintf(path, sizeof path, "%s/m/1/k003", dir);
    assert_true(file_is(path, "v0-3"));
    assert_int_equal(celer_s3_mirror_sync(m, &s), CELER_OK);
    assert_int_equal(s.units_waiting, 0);
    assert_int_equal(s.objects_downloaded, 1);
    assert_int_equal(s.objects_unchanged, 12);
    assert_true(file_is(path, "v1-3"));
    /* the version deleted from the bucket: gone from the copy at the next sync */
    s3util(&lv, "rmprefix", "mirror/m/1/");
    assert_int_equal(celer_s3_mirror_sync(m, &s), CELER_OK);
    assert_int_equal(s.objects_removed, 12);
    snprintf(path, sizeof path, "%s/m/1", dir);
    assert_true(stat(path, &sb) != 0);
    snprintf(path, sizeof path, "%s/m/config.pbtxt", dir);
    assert_true(stat(path, &sb) == 0);
    celer_s3_mirror_close(m);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_parse_forms),  cmocka_unit_test(test_parse_refused), cmocka_unit_test(test_list_query),
        cmocka_unit_test(test_parse_list),   cmocka_unit_test(test_error_text),    cmocka_unit_test(test_live_list_get),
        cmocka_unit_test(test_live_refused), cmocka_unit_test(test_live_mirror),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
