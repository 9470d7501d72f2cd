/* Log settings (src/server/log.c): the table the endpoints read, the checks of a change (unknown
 * names, wrong kinds, Triton's wording), all-or-none application, and the line shapes of each
 * format, read back from stderr redirected to a file. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "testutil.h"
#include "server/log.h"

static const celer_server_options defaults = {.log_format = "default", .log_info = 1, .log_warning = 1, .log_error = 1};

typedef struct seen {
    char text[512];
} seen;

static void collect(void *user, const char *name, const celer_log_value *v) {
    seen *s = user;
    size_t n = strlen(s->text);
    if (v->kind == CELER_LOG_BOOL) snprintf(s->text + n, sizeof s->text - n, "%s=%d ", name, v->b);
    else if (v->kind == CELER_LOG_UINT) snprintf(s->text + n, sizeof s->text - n, "%s=%llu ", name, (unsigned long long)v->u);
    else snprintf(s->text + n, sizeof s->text - n, "%s='%.*s' ", name, (int)v->len, v->s);
}

static const char *settings_text(seen *s) {
    s->text[0] = 0;
    celer_log_settings(collect, s);
    return s->text;
}

static celer_status set(celer_log_change *c, const char *name, celer_log_value v) {
    return celer_log_change_set(c, name, strlen(name), &v);
}

static void test_settings(void **state) {
    (void)state;
    seen s;
    assert_int_equal(celer_log_configure(&defaults), CELER_OK);
    assert_string_equal(settings_text(&s), "log_file='' log_info=1 log_warning=1 log_error=1 log_verbose_level=0 "
                                           "log_format='default' ");
    celer_log_change c = {0};
    assert_int_equal(set(&c, "log_info", (celer_log_value){.kind = CELER_LOG_BOOL, .b = false}), CELER_OK);
    assert_int_equal(set(&c, "log_verbose_level", (celer_log_value){.kind = CELER_LOG_UINT, .u = 2}), CELER_OK);
    assert_int_equal(set(&c, "log_format", (celer_log_value){.kind = CELER_LOG_STRING, .s = "ISO8601", .len = 7}), CELER_OK);
    assert_int_equal(set(&c, "log_error", (celer_log_value){.kind = CELER_LOG_NULL}), CELER_OK); /* null: unchanged */
    assert_int_equal(set(&c, "log_file", (celer_log_value){.kind = CELER_LOG_STRING, .s = "", .len = 0}), CELER_OK);
    /* nothing applies before apply */
    assert_non_null(strstr(settings_text(&s), "log_info=1"));
    celer_log_change_apply(&c);
    assert_string_equal(settings_text(&s), "log_file='' log_info=0 log_warning=1 log_error=1 log_verbose_level=2 "
                                           "log_format='ISO8601' ");
    assert_false(celer_log_enabled(CELER_LOG_INFO));
    assert_true(celer_log_verbose_enabled(2));
    assert_false(celer_log_verbose_enabled(3));
    assert_false(celer_log_verbose_enabled(0)); /* level 0 is never a verbose line */
    assert_int_equal(celer_log_current_style(), CELER_LOG_STYLE_ISO8601);
}

static void test_refusals(void **state) {
    (void)state;
    celer_log_change c = {0};
    assert_int_equal(set(&c, "log_bogus", (celer_log_value){.kind = CELER_LOG_BOOL}), CELER_ERR_INVALID);
    assert_non_null(strstr(celer_error_message(), "unknown log setting 'log_bogus'"));
    assert_int_equal(set(&c, "log_info", (celer_log_value){.kind = CELER_LOG_STRING, .s = "no", .len = 2}),
                     CELER_ERR_INVALID);
    assert_string_equal(celer_error_message(), "expect boolean for 'log_info', got a string");
    assert_int_equal(set(&c, "log_verbose_level", (celer_log_value){.kind = CELER_LOG_UINT, .bad_number = true}),
                     CELER_ERR_INVALID);
    assert_non_null(strstr(celer_error_message(), "expect int32 for 'log_verbose_level'"));
    assert_int_equal(set(&c, "log_verbose_level", (celer_log_value){.kind = CELER_LOG_UINT, .u = 1ull << 31}),
                     CELER_ERR_INVALID);
    assert_int_equal(set(&c, "log_verbose_level", (celer_log_value){.kind = CELER_LOG_BOOL, .b = true}),
                     CELER_ERR_INVALID);
    assert_int_equal(set(&c, "log_format", (celer_log_value){.kind = CELER_LOG_STRING, .s = "xml", .len = 3}),
                     CELER_ERR_INVALID);
    assert_non_null(strstr(celer_error_message(), "invalid argument for log_format, got: xml"));
    assert_int_equal(set(&c, "log_format", (celer_log_value){.kind = CELER_LOG_OTHER}), CELER_ERR_INVALID);
    assert_string_equal(celer_error_message(), "expect string for 'log_format', got an array or object");
    assert_int_equal(set(&c, "log_file", (celer_log_value){.kind = CELER_LOG_STRING, .s = "f.log", .len = 5}),
                     CELER_ERR_UNSUPPORTED);
    assert_non_null(strstr(celer_error_message(), "log file location can not be updated through network protocol"));
    /* a name is compared whole: a prefix or a longer name is unknown */
    assert_int_equal(celer_log_change_set(&c, "log_info_x", 8, &(celer_log_value){.kind = CELER_LOG_BOOL}), CELER_OK);
    assert_int_equal(celer_log_change_set(&c, "log_inf", 7, &(celer_log_value){.kind = CELER_LOG_BOOL}),
                     CELER_ERR_INVALID);
    celer_server_options bad = defaults;
    bad.log_format = "yaml";
    assert_int_equal(celer_log_configure(&bad), CELER_ERR_INVALID);
    bad.log_format = "text"; /* celer's earlier name of the default */
    assert_int_equal(celer_log_configure(&bad), CELER_OK);
    assert_int_equal(celer_log_current_style(), CELER_LOG_STYLE_DEFAULT);
}

/* Runs fn with stderr going to a temporary file; returns what was written (static buffer). */
static const char *captured(void (*fn)(void)) {
    static char buf[8192];
    fflush(stderr);
    int saved = dup(2);
    FILE *tmp = tmpfile();
    assert_non_null(tmp);
    dup2(fileno(tmp), 2);
    fn();
    fflush(stderr);
    dup2(saved, 2);
    close(saved);
    rewind(tmp);
    size_t n = fread(buf, 1, sizeof buf - 1, tmp);
    buf[n] = 0;
    fclose(tmp);
    return buf;
}

static void lines(void) {
    celer_log(CELER_LOG_WARNING, "a warning %d", 7);
    celer_log(CELER_LOG_INFO, "model 'a\nforged'");
    celer_log_verbose(1, "verbose one");
    celer_log_verbose(2, "verbose two");
    celer_log_access a = {.remote = "127.0.0.1", .method = "GET", .path = "/v2/x\ny", .request_id = "id1",
                          .status = 200, .ms = 1.5};
    celer_log_request(&a);
    celer_log_access k = {.remote = "127.0.0.1", .method = "POST", .path = "/v2/k", .request_id = "id2",
                          .status = 403, .ms = 0.25, .key = "frontend"};
    celer_log_request(&k);
}

static void test_lines(void **state) {
    (void)state;
    celer_server_options o = defaults;
    o.log_verbose = 1;
    assert_int_equal(celer_log_configure(&o), CELER_OK);
    const char *out = captured(lines);
    assert_non_null(strstr(out, "celer: a warning 7\n"));
    assert_non_null(strstr(out, "celer: model 'a%0Aforged'\n")); /* a newline cannot start a line */
    assert_non_null(strstr(out, "celer: verbose one\n"));
    assert_null(strstr(out, "verbose two"));
    assert_non_null(strstr(out, "Z 127.0.0.1 \"GET /v2/x%0Ay\" 200 1.500ms id=id1\n"));
    assert_non_null(strstr(out, "Z 127.0.0.1 \"POST /v2/k\" 403 0.250ms id=id2 key=frontend\n")); /* the key's NAME */

    o.log_format = "ISO8601";
    o.log_warning = 0;
    assert_int_equal(celer_log_configure(&o), CELER_OK);
    out = captured(lines);
    assert_null(strstr(out, "a warning"));
    assert_non_null(strstr(out, "Z I celer: model"));
    assert_non_null(strstr(out, "Z V celer: verbose one"));
    assert_non_null(strstr(out, "Z I 127.0.0.1 \"GET"));

    o.log_format = "json";
    o.log_info = 0;
    o.log_warning = 1;
    assert_int_equal(celer_log_configure(&o), CELER_OK);
    out = captured(lines);
    assert_non_null(strstr(out, "\"level\":\"warning\",\"message\":\"a warning 7\"}\n"));
    assert_null(strstr(out, "model")); /* info off: the access line too */
    assert_null(strstr(out, "/v2/x"));
    o.log_info = 1;
    assert_int_equal(celer_log_configure(&o), CELER_OK);
    out = captured(lines);
    assert_non_null(strstr(out, "\"request_id\":\"id1\"}\n")); /* no key: no field */
    assert_non_null(strstr(out, "\"request_id\":\"id2\",\"key\":\"frontend\"}\n"));
    assert_non_null(strstr(out, "\"level\":\"verbose\",\"message\":\"verbose one\"}"));
    assert_int_equal(celer_log_configure(&defaults), CELER_OK);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_settings),
        cmocka_unit_test(test_refusals),
        cmocka_unit_test(test_lines),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
