/* A load's files (overrides.c): the paths a load may name, base64 as HTTP carries files, and the
 * private folder: files written where their paths say and nowhere else, folders made on the way, a
 * file where a folder must go refused, the byte cap, and nothing left after the removal. */
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "server/overrides.h"
#include "opcase.h"
#include "testutil.h"

static void test_paths(void **state) {
    (void)state;
    static const char *const ok[] = {"1/model.onnx", "labels.txt", "a/b/c/d", "config.pbtxt.bak", "1/config.pbtxt",
                                     ".hidden", "..dots", "x..y/z"};
    for (size_t i = 0; i < CELER_ARRAY_LEN(ok); i++)
        if (celer_override_check_path(ok[i])) fail_msg("%s: %s", ok[i], celer_error_message());
    static const struct {
        const char *path, *words;
    } bad[] = {
        {"", "a file path is needed"},
        {"/etc/passwd", "must stay within model directory"},
        {"../x", "must stay within model directory"},
        {"1/../../x", "segment '..'"},
        {"./1/model.onnx", "segment '.'"},
        {"1/./model.onnx", "segment '.'"},
        {"1//model.onnx", "segment ''"},
        {"1/", "ends with a file name"},
        {"config.pbtxt", "'config' parameter"},
    };
    for (size_t i = 0; i < CELER_ARRAY_LEN(bad); i++) {
        celer_status st = celer_override_check_path(bad[i].path);
        if (st != CELER_ERR_INVALID || !strstr(celer_error_message(), bad[i].words) ||
            strncmp(celer_error_message(), "Invalid file parameter 'file:", 29))
            fail_msg("%s: %s '%s'", bad[i].path, celer_status_name(st), celer_error_message());
    }
    char deep[200] = "";
    for (int i = 0; i < 33; i++) strcat(deep, i ? "/a" : "a");
    tu_expect_err(celer_override_check_path(deep), CELER_ERR_INVALID, "more than 32 segments");
    char longp[CELER_LOAD_MAX_PATH + 2];
    memset(longp, 'a', sizeof longp - 1);
    longp[sizeof longp - 1] = 0;
    tu_expect_err(celer_override_check_path(longp), CELER_ERR_INVALID, "at most 1024");
    char seg[300];
    memset(seg, 'b', sizeof seg - 1);
    seg[sizeof seg - 1] = 0;
    tu_expect_err(celer_override_check_path(seg), CELER_ERR_INVALID, "a segment of 299 bytes");
}

static void test_base64(void **state) {
    (void)state;
    static const struct {
        const char *text, *bytes;
    } ok[] = {{"", ""},           {"TQ==", "M"},     {"TWE=", "Ma"},          {"TWFu", "Man"},
              {"TQ", "M"},        {"TWE", "Ma"},     {"TW Fu\nYQ==\r\n", "Mana"}, {"+/+/", "\xfb\xff\xbf"}};
    unsigned char out[64];
    for (size_t i = 0; i < CELER_ARRAY_LEN(ok); i++) {
        size_t n = 99, bad = 99, len = strlen(ok[i].text);
        assert_true(celer_base64_max_decoded(len) >= strlen(ok[i].bytes));
        if (!celer_base64_decode(ok[i].text, len, out, &n, &bad)) fail_msg("'%s' refused at %zu", ok[i].text, bad);
        assert_int_equal(n, strlen(ok[i].bytes));
        assert_memory_equal(out, ok[i].bytes, n);
    }
    static const struct {
        const char *text;
        size_t bad;
    } bad[] = {{"T", 1}, {"TQ=A", 3}, {"TQ===", 5}, {"T@==", 1}, {"TQ=", 3}, {"=", 1}, {"-_", 0}};
    for (size_t i = 0; i < CELER_ARRAY_LEN(bad); i++) {
        size_t n, at = 99;
        if (celer_base64_decode(bad[i].text, strlen(bad[i].text), out, &n, &at))
            fail_msg("'%s' accepted", bad[i].text);
        assert_int_equal(at, bad[i].bad);
    }
}

static char *read_file(const char *dir, const char *rel, size_t *len) {
    char p[8192];
    snprintf(p, sizeof p, "%s/%s", dir, rel);
    FILE *f = fopen(p, "rb");
    if (!f) return NULL;
    char *buf = malloc(1 << 20);
    *len = fread(buf, 1, 1 << 20, f);
    fclose(f);
    return buf;
}

static int count_entries(const char *dir) {
    DIR *d = opendir(dir);
    if (!d) return -1;
    int n = 0;
    for (struct dirent *e; (e = readdir(d));) n += strcmp(e->d_name, ".") && strcmp(e->d_name, "..");
    closedir(d);
    return n;
}

/* Writes into a private folder under $TMPDIR set to a folder of the test's own. */
static void test_write(void **state) {
    (void)state;
    char tmp[] = "/tmp/celer-overrides-test.XXXXXX";
    assert_non_null(mkdtemp(tmp));
    setenv("TMPDIR", tmp, 1);
    unsigned char big[100000];
    for (size_t i = 0; i < sizeof big; i++) big[i] = (unsigned char)(i * 7);
    /* the same bytes as base64, wrapped at 76 like MIME */
    size_t b64_cap = sizeof big / 3 * 4 + sizeof big / 57 * 2 + 8, k = 0;
    char *b64 = malloc(b64_cap);
    static const char alphabet[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    for (size_t i = 0; i < sizeof big; i += 3) {
        uint32_t v = (uint32_t)big[i] << 16 | (i + 1 < sizeof big ? (uint32_t)big[i + 1] << 8 : 0) |
                     (i + 2 < sizeof big ? big[i + 2] : 0);
        b64[k++] = alphabet[v >> 18 & 63], b64[k++] = alphabet[v >> 12 & 63];
        b64[k++] = i + 1 < sizeof big ? alphabet[v >> 6 & 63] : '=';
        b64[k++] = i + 2 < sizeof big ? alphabet[v & 63] : '=';
        if ((i / 3 + 1) % 19 == 0) b64[k++] = '\n';
    }
    celer_load_file files[] = {{"1/model.onnx", (const char *)big, sizeof big, false},
                               {"labels.txt", "a\nb\n", 4, false},
                               {"deep/er/x.bin", b64, k, true}};
    celer_load_overrides ov = {.config = "{}", .config_len = 2, .files = files, .n_files = 3, .max_bytes = 1 << 20};
    char root[4096];
    assert_int_equal(celer_override_write("m", &ov, root, sizeof root), CELER_OK);
    assert_memory_equal(root, tmp, strlen(tmp)); /* under $TMPDIR */
    struct stat sb;
    assert_int_equal(stat(root, &sb), 0);
    assert_int_equal(sb.st_mode & 0777, 0700); /* private */
    char mdir[4200];
    snprintf(mdir, sizeof mdir, "%s/m", root);
    size_t len;
    char *got = read_file(mdir, "1/model.onnx", &len);
    assert_non_null(got);
    assert_int_equal(len, sizeof big);
    assert_memory_equal(got, big, len);
    free(got);
    got = read_file(mdir, "deep/er/x.bin", &len); /* decoded across chunks, newlines skipped */
    assert_non_null(got);
    assert_int_equal(len, sizeof big);
    assert_memory_equal(got, big, len);
    free(got);
    got = read_file(mdir, "labels.txt", &len);
    assert_int_equal(len, 4);
    free(got);
    celer_override_remove(root);
    assert_int_equal(count_entries(tmp), 0);

    /* refusals, each leaving its folder for the caller to remove */
    static const struct {
        celer_load_file files[2];
        int n;
        size_t cap;
        celer_status want;
        const char *words;
    } bad[] = {
        {{{"a", "x", 1, false}, {"a/b", "y", 1, false}}, 2, 100, CELER_ERR_INVALID, "directory has been created as a file"},
        {{{"a/b", "x", 1, false}, {"a", "y", 1, false}}, 2, 100, CELER_ERR_INVALID,
         "a directory has been created with its name"},
        {{{"a", "x", 1, false}, {"a", "y", 1, false}}, 2, 100, CELER_ERR_INVALID, "given twice"},
        {{{"../a", "x", 1, false}}, 1, 100, CELER_ERR_INVALID, "must stay within model directory"},
        {{{"a", "TQ==@", 5, true}}, 1, 100, CELER_ERR_INVALID, "not base64: byte 4"},
        {{{"a", "TQ", 2, true}, {"b", "T", 1, true}}, 2, 100, CELER_ERR_INVALID, "ends inside a group of four"},
        {{{"a", "0123456789", 10, false}, {"b", "0123456789", 10, false}}, 2, 15, CELER_ERR_LIMIT, "more than 15 bytes"},
    };
    for (size_t i = 0; i < CELER_ARRAY_LEN(bad); i++) {
        celer_load_overrides o = {.files = bad[i].files, .n_files = bad[i].n, .max_bytes = bad[i].cap};
        celer_status st = celer_override_write("m", &o, root, sizeof root);
        if (st != bad[i].want || !strstr(celer_error_message(), bad[i].words))
            fail_msg("case %zu: %s '%s'", i, celer_status_name(st), celer_error_message());
        assert_true(root[0]);
        celer_override_remove(root);
        assert_int_equal(count_entries(tmp), 0);
    }
    /* a $TMPDIR that cannot be used: an error, no folder to remove */
    setenv("TMPDIR", "/nonexistent/celer", 1);
    tu_expect_err(celer_override_write("m", &ov, root, sizeof root), CELER_ERR_IO, "/nonexistent/celer");
    assert_int_equal(root[0], 0);
    celer_override_remove(root); /* nothing: an empty root */
    unsetenv("TMPDIR");
    free(b64);
    rmdir(tmp);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_paths),
        cmocka_unit_test(test_base64),
        cmocka_unit_test(test_write),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
