/* Prometheus metrics registry: kinds, labels and escaping, kind clashes, the exposition text
 * checked line by line by a small parser, exact counts under 8 updating threads, rendering while
 * series are updated, created and removed, and the process metrics. */
#include <math.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "server/metrics.h"
#include "testutil.h"

/* ---- a small exposition-format (0.0.4) parser ---- */

#define MAX_SAMPLES 4096

typedef struct sample {
    char name[128];
    char labels[512]; /* label text as written, without `le` */
    char le[48];      /* the le label's value, or "" */
    double value;
} sample;

typedef struct parsed {
    int n;
    sample s[MAX_SAMPLES];
    int n_fam;
    char fam[256][128];
    char type[256][16];
    char err[1400];
} parsed;

static bool is_name_char(char c, bool first) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_' || c == ':' || (!first && c >= '0' && c <= '9');
}

/* Reads a metric/label name at *p into out; false when none. */
static bool read_name(const char **p, char *out, size_t cap, bool metric) {
    size_t n = 0;
    while (is_name_char(**p, n == 0) && (metric || **p != ':')) {
        if (n + 1 >= cap) return false;
        out[n++] = *(*p)++;
    }
    out[n] = '\0';
    return n > 0;
}

static bool parse_value(const char *p, const char *end, double *v) {
    size_t n = (size_t)(end - p);
    if (n == 4 && !memcmp(p, "+Inf", 4)) return *v = INFINITY, true;
    if (n == 4 && !memcmp(p, "-Inf", 4)) return *v = -INFINITY, true;
    if (n == 3 && !memcmp(p, "NaN", 3)) return *v = NAN, true;
    if (n == 0 || n > 40) return false;
    char tmp[48];
    memcpy(tmp, p, n);
    tmp[n] = '\0';
    for (size_t i = 0; i < n; i++)
        if (!strchr("0123456789+-.eE", tmp[i])) return false;
    char *e;
    *v = strtod(tmp, &e);
    return *e == '\0';
}

static int family_index(parsed *r, const char *name) {
    for (int i = 0; i < r->n_fam; i++)
        if (!strcmp(r->fam[i], name)) return i;
    return -1;
}

/* The family a sample belongs to: itself, or its histogram base for _bucket/_sum/_count. */
static int sample_family(parsed *r, const char *name) {
    int f = family_index(r, name);
    if (f >= 0) return f;
    static const char *const suf[] = {"_bucket", "_sum", "_count"};
    for (size_t k = 0; k < 3; k++) {
        size_t n = strlen(name), m = strlen(suf[k]);
        if (n > m && !strcmp(name + n - m, suf[k])) {
            char base[128];
            memcpy(base, name, n - m);
            base[n - m] = '\0';
            f = family_index(r, base);
            if (f >= 0 && (!strcmp(r->type[f], "histogram") || (k > 0 && !strcmp(r->type[f], "summary")))) return f;
        }
    }
    return -1;
}

/* Records why the text is malformed and returns false (no cmocka calls: the parser also runs on
 * worker threads). */
#define BAD(...)                                                                                   \
    do {                                                                                           \
        snprintf(r->err, sizeof r->err, __VA_ARGS__);                                              \
        return false;                                                                              \
    } while (0)

/* Checks every line of `text` and fills `r`; false with r->err on the first malformed line. */
static bool parse_exposition(const char *text, parsed *r) {
    memset(r, 0, sizeof *r);
    size_t len = strlen(text);
    if (len && text[len - 1] != '\n') BAD("text does not end with a newline");
    int cur_fam = -1;
    for (const char *line = text; *line;) {
        const char *eol = strchr(line, '\n');
        char buf[1024];
        size_t n = (size_t)(eol - line);
        if (n >= sizeof buf) BAD("line too long");
        memcpy(buf, line, n);
        buf[n] = '\0';
        line = eol + 1;
        const char *p = buf;
        if (*p == '#') {
            char name[128];
            if (!strncmp(p, "# HELP ", 7)) {
                p += 7;
                if (!read_name(&p, name, sizeof name, true) || *p != ' ') BAD("bad HELP line: %s", buf);
                for (p++; *p; p++) /* only \\ and \n escapes */
                    if (*p == '\\') {
                        p++;
                        if (*p != '\\' && *p != 'n') BAD("bad escape in HELP: %s", buf);
                    }
                if (family_index(r, name) >= 0) BAD("second HELP/TYPE for %s", name);
                if (r->n_fam >= 256) BAD("too many families");
                cur_fam = r->n_fam++;
                strcpy(r->fam[cur_fam], name);
            } else if (!strncmp(p, "# TYPE ", 7)) {
                p += 7;
                if (!read_name(&p, name, sizeof name, true) || *p++ != ' ') BAD("bad TYPE line: %s", buf);
                if (cur_fam < 0 || strcmp(r->fam[cur_fam], name) || r->type[cur_fam][0])
                    BAD("TYPE not right after its HELP: %s", buf);
                if (strcmp(p, "counter") && strcmp(p, "gauge") && strcmp(p, "histogram") && strcmp(p, "summary"))
                    BAD("bad type: %s", buf);
                strcpy(r->type[cur_fam], p);
            } else {
                BAD("unexpected comment: %s", buf);
            }
            continue;
        }
        if (r->n >= MAX_SAMPLES) BAD("too many samples");
        sample *s = &r->s[r->n++];
        if (!read_name(&p, s->name, sizeof s->name, true)) BAD("bad sample line: %s", buf);
        int f = sample_family(r, s->name);
        if (f < 0 || f != cur_fam || !r->type[f][0]) BAD("sample outside its family's block: %s", buf);
        if (*p == '{') {
            p++;
            size_t lo = 0;
            while (*p != '}') {
                const char *start = p;
                char lname[64];
                if (!read_name(&p, lname, sizeof lname, false)) BAD("bad label name: %s", buf);
                if (*p++ != '=' || *p++ != '"') BAD("bad label: %s", buf);
                const char *vstart = p;
                while (*p != '"') {
                    if (!*p) BAD("unterminated label value: %s", buf);
                    if (*p == '\\') {
                        p++;
                        if (*p != '\\' && *p != '"' && *p != 'n') BAD("bad escape: %s", buf);
                    }
                    p++;
                }
                if (!strcmp(lname, "le") || !strcmp(lname, "quantile")) { /* kept apart, as `le` */
                    size_t vl = (size_t)(p - vstart);
                    if (vl >= sizeof s->le) BAD("le too long: %s", buf);
                    memcpy(s->le, vstart, vl);
                    s->le[vl] = '\0';
                } else {
                    size_t tl = (size_t)(p + 1 - start);
                    if (lo + tl + 2 >= sizeof s->labels) BAD("labels too long: %s", buf);
                    if (lo) s->labels[lo++] = ',';
                    memcpy(s->labels + lo, start, tl);
                    lo += tl;
                    s->labels[lo] = '\0';
                }
                p++;
                if (*p == ',') p++;
                else if (*p != '}') BAD("expected , or }: %s", buf);
            }
            p++;
        }
        if (*p++ != ' ') BAD("expected one space before the value: %s", buf);
        if (!parse_value(p, p + strlen(p), &s->value)) BAD("bad value: %s", buf);
    }
    return true;
}

static const sample *find_sample_or_null(const parsed *r, const char *name, const char *labels, const char *le) {
    for (int i = 0; i < r->n; i++)
        if (!strcmp(r->s[i].name, name) && !strcmp(r->s[i].labels, labels) && !strcmp(r->s[i].le, le))
            return &r->s[i];
    return NULL;
}

/* Every histogram series: le ascending, counts cumulative and integral, last le +Inf == _count,
 * _sum present. */
static bool check_histograms(parsed *r) {
    for (int i = 0; i < r->n;) {
        const sample *s = &r->s[i];
        size_t nl = strlen(s->name);
        if (nl <= 7 || strcmp(s->name + nl - 7, "_bucket")) {
            i++;
            continue;
        }
        char base[128];
        memcpy(base, s->name, nl - 7);
        base[nl - 7] = '\0';
        double prev_le = -INFINITY, prev_count = 0;
        int j = i;
        for (; j < r->n && !strcmp(r->s[j].name, s->name) && !strcmp(r->s[j].labels, s->labels); j++) {
            double le;
            if (!parse_value(r->s[j].le, r->s[j].le + strlen(r->s[j].le), &le)) BAD("%s: bad le", base);
            if (!(le > prev_le)) BAD("%s{%s}: le not ascending", base, s->labels);
            if (!(r->s[j].value >= prev_count) || r->s[j].value != floor(r->s[j].value))
                BAD("%s{%s}: buckets not cumulative counts", base, s->labels);
            prev_le = le;
            prev_count = r->s[j].value;
        }
        if (!(isinf(prev_le) && prev_le > 0)) BAD("%s{%s}: last bucket is not +Inf", base, s->labels);
        char nm[160];
        snprintf(nm, sizeof nm, "%s_count", base);
        const sample *c = find_sample_or_null(r, nm, s->labels, "");
        if (!c || c->value != prev_count) BAD("%s{%s}: _count missing or != +Inf bucket", base, s->labels);
        snprintf(nm, sizeof nm, "%s_sum", base);
        if (!find_sample_or_null(r, nm, s->labels, "")) BAD("%s{%s}: no _sum", base, s->labels);
        i = j;
    }
    return true;
}

static const sample *find_sample(const parsed *r, const char *name, const char *labels, const char *le) {
    const sample *s = find_sample_or_null(r, name, labels, le);
    if (!s) fail_msg("no sample %s{%s} le=%s", name, labels, le);
    return s;
}

static double value_of(const parsed *r, const char *name, const char *labels) {
    return find_sample(r, name, labels, "")->value;
}

static char *render(celer_metrics *m) {
    celer_jbuf b;
    celer_jbuf_init(&b, 0);
    celer_metrics_render(m, &b);
    assert_int_equal(b.status, CELER_OK);
    char *text = strndup(b.data ? b.data : "", b.len);
    celer_jbuf_free(&b);
    assert_non_null(text);
    return text;
}

static parsed *render_parsed(celer_metrics *m, char **text_out) {
    char *text = render(m);
    parsed *r = malloc(sizeof *r);
    assert_non_null(r);
    if (!parse_exposition(text, r) || !check_histograms(r)) fail_msg("%s\n--- text:\n%s", r->err, text);
    if (text_out) *text_out = text;
    else free(text);
    return r;
}

/* ---- tests ---- */

/* A summary: Triton's quantiles by nearest rank over the kept samples, _sum and _count over all;
 * NaN before any; the newest CELER_SUMMARY_SAMPLES kept; `quantile` refused as a label; one
 * series removed alone. */
static void test_summary(void **state) {
    (void)state;
    celer_metrics *m;
    assert_int_equal(celer_metrics_init(&m), CELER_OK);
    celer_series *s = celer_metrics_summary(m, "lat_us", "Latency.", "model=\"a\"");
    assert_non_null(s);
    parsed *r = render_parsed(m, NULL);
    assert_true(isnan(find_sample(r, "lat_us", "model=\"a\"", "0.5")->value));
    assert_true(value_of(r, "lat_us_count", "model=\"a\"") == 0);
    free(r);
    for (int i = 100; i >= 1; i--) celer_metrics_observe(s, i);
    char *text;
    r = render_parsed(m, &text);
    assert_non_null(strstr(text, "# TYPE lat_us summary\n"));
    static const struct {
        const char *q;
        double v;
    } want[] = {{"0.5", 50}, {"0.9", 90}, {"0.95", 95}, {"0.99", 99}, {"0.999", 100}};
    for (size_t i = 0; i < CELER_ARRAY_LEN(want); i++)
        assert_true(find_sample(r, "lat_us", "model=\"a\"", want[i].q)->value == want[i].v);
    assert_true(value_of(r, "lat_us_sum", "model=\"a\"") == 5050);
    assert_true(value_of(r, "lat_us_count", "model=\"a\"") == 100);
    free(text);
    free(r);
    /* past the window of samples: the quantiles see the newest ones only */
    for (int i = 0; i < CELER_SUMMARY_SAMPLES; i++) celer_metrics_observe(s, 1000);
    r = render_parsed(m, NULL);
    assert_true(find_sample(r, "lat_us", "model=\"a\"", "0.5")->value == 1000);
    assert_true(value_of(r, "lat_us_count", "model=\"a\"") == 100 + CELER_SUMMARY_SAMPLES);
    free(r);
    assert_null(celer_metrics_summary(m, "lat_us", "Latency.", "quantile=\"x\""));
    assert_null(celer_metrics_counter(m, "lat_us", "Latency.", "model=\"b\"")); /* kind clash */
    celer_metrics_remove(m, "model=\"a\"");
    s = celer_metrics_summary(m, "lat_us", "Latency.", "model=\"a\""); /* revived: zeroed */
    r = render_parsed(m, NULL);
    assert_true(value_of(r, "lat_us_count", "model=\"a\"") == 0);
    assert_true(isnan(find_sample(r, "lat_us", "model=\"a\"", "0.99")->value));
    free(r);
    /* one series alone goes; another of the family and other families stay */
    celer_metrics_summary(m, "lat_us", "Latency.", "model=\"b\"");
    celer_metrics_remove_series(m, "lat_us", "model=\"a\"");
    celer_metrics_remove_series(m, "no_such_family", "model=\"a\"");
    r = render_parsed(m, NULL);
    assert_null(find_sample_or_null(r, "lat_us_count", "model=\"a\"", ""));
    assert_non_null(find_sample_or_null(r, "lat_us_count", "model=\"b\"", ""));
    free(r);
    celer_metrics_free(m);
}

static double fn_value(void *user) {
    return *(double *)user;
}

static void test_kinds(void **state) {
    (void)state;
    celer_metrics *m;
    assert_int_equal(celer_metrics_init(&m), CELER_OK);
    celer_series *c = celer_metrics_counter(m, "req_total", "Requests.", "model=\"a\"");
    celer_series *g = celer_metrics_gauge(m, "pending", "Pending requests.", "");
    double fv = 42.5;
    celer_series *gf = celer_metrics_gauge_fn(m, "loaded", "Loaded models.", "", fn_value, &fv);
    const double bounds[] = {0.5, 1, 2};
    celer_series *h = celer_metrics_histogram(m, "lat_seconds", "Latency.", "model=\"a\"", bounds, 3);
    assert_non_null(c);
    assert_non_null(g);
    assert_non_null(gf);
    assert_non_null(h);
    /* the same name+labels gives the same series */
    assert_ptr_equal(celer_metrics_counter(m, "req_total", "other help", "model=\"a\""), c);
    assert_ptr_not_equal(celer_metrics_counter(m, "req_total", NULL, "model=\"b\""), c);

    celer_metrics_add(c, 2);
    celer_metrics_add(c, 0.5);
    celer_metrics_add(c, -1);  /* ignored: counters only go up */
    celer_metrics_add(c, NAN); /* ignored */
    celer_metrics_set(c, 100); /* ignored: not a gauge */
    celer_metrics_set(g, 7);
    celer_metrics_add(g, -3);
    celer_metrics_observe(g, 1); /* ignored: not a histogram */
    celer_metrics_set(gf, 1);    /* ignored: read at render time */
    double obs[] = {0.25, 0.5, 0.75, 1, 2, 3, 100}; /* exact sum */
    for (size_t i = 0; i < CELER_ARRAY_LEN(obs); i++) celer_metrics_observe(h, obs[i]);
    celer_metrics_add(h, 5); /* ignored */
    celer_metrics_add(NULL, 1);
    celer_metrics_set(NULL, 1);
    celer_metrics_observe(NULL, 1);

    char *text;
    parsed *r = render_parsed(m, &text);
    assert_true(value_of(r, "req_total", "model=\"a\"") == 2.5);
    assert_true(value_of(r, "req_total", "model=\"b\"") == 0);
    assert_true(value_of(r, "pending", "") == 4);
    assert_true(value_of(r, "loaded", "") == 42.5);
    assert_true(find_sample(r, "lat_seconds_bucket", "model=\"a\"", "0.5")->value == 2);
    assert_true(find_sample(r, "lat_seconds_bucket", "model=\"a\"", "1")->value == 4);
    assert_true(find_sample(r, "lat_seconds_bucket", "model=\"a\"", "2")->value == 5);
    assert_true(find_sample(r, "lat_seconds_bucket", "model=\"a\"", "+Inf")->value == 7);
    assert_true(value_of(r, "lat_seconds_count", "model=\"a\"") == 7);
    assert_true(value_of(r, "lat_seconds_sum", "model=\"a\"") == 107.5);
    /* exact text of a few lines */
    assert_non_null(strstr(text, "# HELP req_total Requests.\n# TYPE req_total counter\n"
                                 "req_total{model=\"a\"} 2.5\nreq_total{model=\"b\"} 0\n"));
    assert_non_null(strstr(text, "# TYPE lat_seconds histogram\nlat_seconds_bucket{model=\"a\",le=\"0.5\"} 2\n"));
    assert_non_null(strstr(text, "lat_seconds_bucket{model=\"a\",le=\"+Inf\"} 7\n"
                                 "lat_seconds_sum{model=\"a\"} 107.5\nlat_seconds_count{model=\"a\"} 7\n"));
    assert_non_null(strstr(text, "# TYPE pending gauge\npending 4\n"));
    free(text);
    free(r);
    celer_metrics_free(m);
}

static void test_histogram_edges(void **state) {
    (void)state;
    celer_metrics *m;
    assert_int_equal(celer_metrics_init(&m), CELER_OK);
    /* no bounds: just +Inf */
    celer_series *h0 = celer_metrics_histogram(m, "h0", "", "", NULL, 0);
    assert_non_null(h0);
    celer_metrics_observe(h0, 3);
    celer_metrics_observe(h0, -INFINITY);
    /* values exactly on bounds go to that bucket (le is inclusive); NaN and +Inf to +Inf */
    const double b[] = {-1, 0, 1};
    celer_series *h = celer_metrics_histogram(m, "h1", "", "", b, 3);
    assert_non_null(h);
    double obs[] = {-5, -1, -0.5, 0, 1, 1.0000001, INFINITY, NAN};
    for (size_t i = 0; i < CELER_ARRAY_LEN(obs); i++) celer_metrics_observe(h, obs[i]);
    parsed *r = render_parsed(m, NULL);
    assert_true(find_sample(r, "h0_bucket", "", "+Inf")->value == 2);
    assert_true(value_of(r, "h0_sum", "") == -INFINITY);
    assert_true(find_sample(r, "h1_bucket", "", "-1")->value == 2);
    assert_true(find_sample(r, "h1_bucket", "", "0")->value == 4);
    assert_true(find_sample(r, "h1_bucket", "", "1")->value == 5);
    assert_true(find_sample(r, "h1_bucket", "", "+Inf")->value == 8);
    assert_true(isnan(value_of(r, "h1_sum", "")));
    free(r);

    /* bad bounds */
    const double desc[] = {1, 0.5};
    const double nan_b[] = {0, NAN};
    const double inf_b[] = {0, INFINITY};
    double many[33];
    for (int i = 0; i < 33; i++) many[i] = i;
    assert_null(celer_metrics_histogram(m, "hb", "", "", desc, 2));
    assert_non_null(strstr(celer_error_message(), "hb"));
    assert_null(celer_metrics_histogram(m, "hb", "", "", nan_b, 2));
    assert_null(celer_metrics_histogram(m, "hb", "", "", inf_b, 2));
    assert_null(celer_metrics_histogram(m, "hb", "", "", many, 33));
    assert_null(celer_metrics_histogram(m, "hb", "", "", NULL, 3));
    assert_null(celer_metrics_histogram(m, "hb", "", "", many, -1));
    assert_non_null(celer_metrics_histogram(m, "hb", "", "", many, 32));
    /* `le` is reserved on histograms */
    assert_null(celer_metrics_histogram(m, "hc", "", "le=\"1\"", b, 3));
    assert_non_null(celer_metrics_counter(m, "cc", "", "le=\"1\""));
    celer_metrics_free(m);
}

static void test_latency_buckets(void **state) {
    (void)state;
    assert_true(celer_metrics_latency_bucket_count >= 10 && celer_metrics_latency_bucket_count <= 32);
    assert_true(celer_metrics_latency_buckets[0] == 50e-6);
    assert_true(celer_metrics_latency_buckets[celer_metrics_latency_bucket_count - 1] == 60);
    for (int i = 1; i < celer_metrics_latency_bucket_count; i++)
        assert_true(celer_metrics_latency_buckets[i] > celer_metrics_latency_buckets[i - 1]);
    celer_metrics *m;
    assert_int_equal(celer_metrics_init(&m), CELER_OK);
    celer_series *h = celer_metrics_histogram(m, "d_seconds", "", "", celer_metrics_latency_buckets,
                                              celer_metrics_latency_bucket_count);
    assert_non_null(h);
    celer_metrics_observe(h, 0.003);
    char *text;
    parsed *r = render_parsed(m, &text);
    /* bounds print as the shortest text, like Prometheus's own clients */
    assert_non_null(strstr(text, "d_seconds_bucket{le=\"5e-05\"} 0\n"));
    assert_non_null(strstr(text, "d_seconds_bucket{le=\"0.0025\"} 0\n"));
    assert_non_null(strstr(text, "d_seconds_bucket{le=\"0.005\"} 1\n"));
    assert_non_null(strstr(text, "d_seconds_bucket{le=\"60\"} 1\n"));
    assert_non_null(strstr(text, "d_seconds_sum 0.003\n"));
    free(text);
    free(r);
    celer_metrics_free(m);
}

static void test_values_format(void **state) {
    (void)state;
    celer_metrics *m;
    assert_int_equal(celer_metrics_init(&m), CELER_OK);
    static const struct {
        double v;
        const char *text;
    } cases[] = {
        {0, "0"}, {-0.0, "0"}, {3, "3"}, {-2.5, "-2.5"}, {0.1, "0.1"}, {1.0 / 3, "0.3333333333333333"},
        {123456789012345, "123456789012345"}, {1e20, "1e+20"}, {1e-7, "1e-07"}, {INFINITY, "+Inf"},
        {-INFINITY, "-Inf"}, {NAN, "NaN"}, {9007199254740993.0, "9007199254740992"},
    };
    for (size_t i = 0; i < CELER_ARRAY_LEN(cases); i++) {
        char labels[32];
        snprintf(labels, sizeof labels, "i=\"%02zu\"", i);
        celer_series *g = celer_metrics_gauge(m, "v", "", labels);
        assert_non_null(g);
        celer_metrics_set(g, cases[i].v);
    }
    char *text;
    parsed *r = render_parsed(m, &text);
    for (size_t i = 0; i < CELER_ARRAY_LEN(cases); i++) {
        char line[96];
        snprintf(line, sizeof line, "v{i=\"%02zu\"} %s\n", i, cases[i].text);
        if (!strstr(text, line)) fail_msg("missing line %s", line);
        char labels[32];
        snprintf(labels, sizeof labels, "i=\"%02zu\"", i);
        double got = value_of(r, "v", labels);
        assert_true(isnan(cases[i].v) ? isnan(got) : got == cases[i].v); /* round trips */
    }
    free(text);
    free(r);
    celer_metrics_free(m);
}

static void test_escape_and_labels(void **state) {
    (void)state;
    char buf[64];
    assert_string_equal(celer_metrics_escape("plain", buf, sizeof buf), "plain");
    assert_string_equal(celer_metrics_escape("a\"b\\c\nd", buf, sizeof buf), "a\\\"b\\\\c\\nd");
    assert_string_equal(celer_metrics_escape("", buf, sizeof buf), "");
    assert_string_equal(celer_metrics_escape(NULL, buf, sizeof buf), "");
    /* truncation never splits an escape and always terminates */
    assert_string_equal(celer_metrics_escape("abc\"", buf, 5), "abc");
    assert_string_equal(celer_metrics_escape("abcdef", buf, 4), "abc");
    assert_string_equal(celer_metrics_escape("x", buf, 1), "");
    assert_ptr_equal(celer_metrics_escape("x", buf, 0), buf);
    /* UTF-8 passes through; invalid bytes become U+FFFD; characters are never cut */
    assert_string_equal(celer_metrics_escape("r\xC3\xA9sum\xC3\xA9 \xE2\x82\xAC", buf, sizeof buf),
                        "r\xC3\xA9sum\xC3\xA9 \xE2\x82\xAC");
    assert_string_equal(celer_metrics_escape("a\xFF\xC3(\xED\xA0\x80\xC0\xAFz", buf, sizeof buf),
                        "a\xEF\xBF\xBD\xEF\xBF\xBD(\xEF\xBF\xBD\xEF\xBF\xBD\xEF\xBF\xBD"
                        "\xEF\xBF\xBD\xEF\xBF\xBDz");
    assert_string_equal(celer_metrics_escape("ab\xE2\x82\xAC", buf, 5), "ab");
    assert_string_equal(celer_metrics_escape("ab\xE2\x82\xAC", buf, 6), "ab\xE2\x82\xAC");

    celer_metrics *m;
    assert_int_equal(celer_metrics_init(&m), CELER_OK);
    char esc[64], labels[128];
    snprintf(labels, sizeof labels, "model=\"%s\",version=\"1\"", celer_metrics_escape("we\"ird\\\nname", esc, sizeof esc));
    celer_series *c = celer_metrics_counter(m, "odd_total", "Help with \\ backslash\nand newline.", labels);
    assert_non_null(c);
    celer_metrics_add(c, 1);
    char *text;
    parsed *r = render_parsed(m, &text);
    assert_non_null(strstr(text, "# HELP odd_total Help with \\\\ backslash\\nand newline.\n"));
    assert_non_null(strstr(text, "odd_total{model=\"we\\\"ird\\\\\\nname\",version=\"1\"} 1\n"));
    assert_true(value_of(r, "odd_total", labels) == 1);
    free(text);
    free(r);

    /* bad names and label texts are clean errors */
    static const char *const bad_names[] = {"", "1abc", "a-b", "a b", "a{b}", "é"};
    for (size_t i = 0; i < CELER_ARRAY_LEN(bad_names); i++) {
        assert_null(celer_metrics_counter(m, bad_names[i], "", ""));
        assert_non_null(strstr(celer_error_message(), "metric name"));
    }
    assert_null(celer_metrics_counter(m, NULL, "", ""));
    char longname[300];
    memset(longname, 'a', sizeof longname - 1);
    longname[sizeof longname - 1] = '\0';
    assert_null(celer_metrics_counter(m, longname, "", ""));
    static const char *const bad_labels[] = {
        "model",           "model=",         "model=\"a",      "model=a",         "model=\"a\",",
        ",model=\"a\"",    "model=\"a\" ",   "model=\"a\"b",   "model=\"a\\x\"",  "model=\"a\nb\"",
        "1x=\"a\"",        "a:b=\"c\"",      "model=\"a\"\"",  "model=\"a\\\"",   "{model=\"a\"}",
        "a=\"1\",a=\"2\"", "model=\"\xFF\"",  "model=\"\xC3\"",  "model=\"\xED\xA0\x80\"",
    };
    for (size_t i = 0; i < CELER_ARRAY_LEN(bad_labels); i++) {
        if (celer_metrics_counter(m, "ok_total", "", bad_labels[i]))
            fail_msg("accepted label text '%s'", bad_labels[i]);
        assert_non_null(strstr(celer_error_message(), "ok_total"));
    }
    char *huge = malloc(5000);
    assert_non_null(huge);
    memset(huge, 'x', 4999);
    memcpy(huge, "a=\"", 3);
    huge[4998] = '"';
    huge[4999] = '\0';
    assert_null(celer_metrics_counter(m, "ok_total", "", huge));
    free(huge);
    /* NULL labels mean none */
    assert_ptr_equal(celer_metrics_counter(m, "ok_total", "", NULL), celer_metrics_counter(m, "ok_total", "", ""));
    celer_metrics_free(m);
}

static void test_kind_clash(void **state) {
    (void)state;
    celer_metrics *m;
    assert_int_equal(celer_metrics_init(&m), CELER_OK);
    const double b1[] = {1, 2}, b2[] = {1, 3};
    assert_non_null(celer_metrics_counter(m, "x", "", "a=\"1\""));
    assert_null(celer_metrics_gauge(m, "x", "", "a=\"2\""));
    assert_non_null(strstr(celer_error_message(), "x: registered as a counter, requested as a gauge"));
    assert_null(celer_metrics_histogram(m, "x", "", "", b1, 2));
    assert_null(celer_metrics_gauge_fn(m, "x", "", "", fn_value, NULL));
    assert_non_null(celer_metrics_histogram(m, "h", "", "a=\"1\"", b1, 2));
    assert_null(celer_metrics_histogram(m, "h", "", "a=\"2\"", b2, 2));
    assert_non_null(strstr(celer_error_message(), "bounds"));
    assert_null(celer_metrics_histogram(m, "h", "", "a=\"2\"", b1, 1));
    assert_null(celer_metrics_counter(m, "h", "", "a=\"1\""));
    /* the built-in process metrics clash too */
    assert_null(celer_metrics_counter(m, "process_open_fds", "", ""));
    /* a clash leaves the registry rendering fine */
    parsed *r = render_parsed(m, NULL);
    assert_true(value_of(r, "x", "a=\"1\"") == 0);
    free(r);
    celer_metrics_free(m);
}

static void test_remove(void **state) {
    (void)state;
    celer_metrics *m;
    assert_int_equal(celer_metrics_init(&m), CELER_OK);
    double fv = 5;
    const double b[] = {1};
    celer_series *a1 = celer_metrics_counter(m, "c_total", "", "model=\"a\",version=\"1\"");
    celer_series *a2 = celer_metrics_counter(m, "c_total", "", "model=\"a\",version=\"2\"");
    celer_series *ab = celer_metrics_counter(m, "c_total", "", "model=\"ab\",version=\"1\"");
    celer_series *oa = celer_metrics_counter(m, "c_total", "", "othermodel=\"a\"");
    celer_series *ha = celer_metrics_histogram(m, "h_seconds", "", "model=\"a\",version=\"1\"", b, 1);
    celer_series *ga = celer_metrics_gauge_fn(m, "g", "", "model=\"a\"", fn_value, &fv);
    celer_series *gb = celer_metrics_gauge(m, "only_a", "", "model=\"a\"");
    assert_true(a1 && a2 && ab && oa && ha && ga && gb);
    celer_metrics_add(a1, 1);
    celer_metrics_add(a2, 2);
    celer_metrics_add(ab, 3);
    celer_metrics_add(oa, 4);
    celer_metrics_observe(ha, 0.5);

    celer_metrics_remove(m, "model=\"a\",version=\"1\"");
    parsed *r = render_parsed(m, NULL);
    assert_null(find_sample_or_null(r, "c_total", "model=\"a\",version=\"1\"", ""));
    assert_null(find_sample_or_null(r, "h_seconds_count", "model=\"a\",version=\"1\"", ""));
    assert_true(value_of(r, "c_total", "model=\"a\",version=\"2\"") == 2);
    assert_true(value_of(r, "g", "model=\"a\"") == 5);
    free(r);

    celer_metrics_remove(m, "model=\"a\"");
    celer_metrics_remove(m, "");   /* matches nothing */
    celer_metrics_remove(m, NULL); /* no-op */
    celer_metrics_remove(NULL, "x");
    char *text;
    r = render_parsed(m, &text);
    assert_null(find_sample_or_null(r, "c_total", "model=\"a\",version=\"2\"", ""));
    assert_null(find_sample_or_null(r, "g", "model=\"a\"", ""));
    assert_true(value_of(r, "c_total", "model=\"ab\",version=\"1\"") == 3);
    assert_true(value_of(r, "c_total", "othermodel=\"a\"") == 4); /* label boundaries respected */
    /* families left without series are not rendered at all */
    assert_null(strstr(text, "h_seconds"));
    assert_null(strstr(text, "only_a"));
    assert_null(strstr(text, "# HELP g "));
    free(text);
    free(r);

    /* late writers through old pointers are harmless and invisible */
    celer_metrics_add(a1, 10);
    celer_metrics_observe(ha, 1);
    /* re-creating a removed series starts it from zero */
    celer_series *a1b = celer_metrics_counter(m, "c_total", "", "model=\"a\",version=\"1\"");
    assert_non_null(a1b);
    celer_series *hb = celer_metrics_histogram(m, "h_seconds", "", "model=\"a\",version=\"1\"", b, 1);
    assert_non_null(hb);
    r = render_parsed(m, NULL);
    assert_true(value_of(r, "c_total", "model=\"a\",version=\"1\"") == 0);
    assert_true(value_of(r, "h_seconds_count", "model=\"a\",version=\"1\"") == 0);
    free(r);
    celer_metrics_free(m);
}

static void test_process_metrics(void **state) {
    (void)state;
    celer_metrics *m;
    assert_int_equal(celer_metrics_init(&m), CELER_OK);
    /* burn a little CPU so the counter is not trivially zero-only */
    volatile double x = 0;
    for (int i = 0; i < 2000000; i++) x += i * 0.5;
    char *text;
    parsed *r = render_parsed(m, &text);
    double rss = value_of(r, "process_resident_memory_bytes", "");
    double vsz = value_of(r, "process_virtual_memory_bytes", "");
    double cpu = value_of(r, "process_cpu_seconds_total", "");
    double start = value_of(r, "process_start_time_seconds", "");
    double fds = value_of(r, "process_open_fds", "");
    assert_true(rss > 1 << 20);
    assert_true(vsz >= rss);
    assert_true(cpu >= 0 && cpu < 1e6);
    double now = (double)time(NULL);
    assert_true(start > now - 86400 * 30 && start <= now + 1);
    assert_true(fds >= 3 && fds == floor(fds));
    assert_non_null(strstr(text, "# TYPE process_cpu_seconds_total counter\n"));
    assert_non_null(strstr(text, "# TYPE process_open_fds gauge\n"));
    free(text);
    free(r);
    /* a capped buffer stops cleanly */
    celer_jbuf small;
    celer_jbuf_init(&small, 64);
    celer_metrics_render(m, &small);
    assert_int_equal(small.status, CELER_ERR_LIMIT);
    assert_true(small.len <= 64);
    celer_jbuf_free(&small);
    /* opening a file shows up */
    FILE *fp = fopen("/proc/self/stat", "r");
    assert_non_null(fp);
    r = render_parsed(m, NULL);
    assert_true(value_of(r, "process_open_fds", "") == fds + 1);
    fclose(fp);
    free(r);
    celer_metrics_free(m);
}

/* ---- concurrency ---- */

#define N_THREADS 8
#define N_ITERS 50000

typedef struct shared {
    celer_metrics *m;
    celer_series *c, *g, *h;
    atomic_int stop;
    int id;
} shared;

typedef struct worker {
    shared *sh;
    int id;
} worker;

static void *update_worker(void *arg) {
    worker *w = arg;
    for (int i = 0; i < N_ITERS; i++) {
        celer_metrics_add(w->sh->c, 1);
        celer_metrics_add(w->sh->g, (i & 1) ? -1 : 2); /* nets +1 per two iterations */
        celer_metrics_observe(w->sh->h, (i % 4) * 0.5); /* 0, 0.5, 1, 1.5: exact sums */
    }
    return NULL;
}

static void test_concurrent_updates(void **state) {
    (void)state;
    shared sh = {0};
    assert_int_equal(celer_metrics_init(&sh.m), CELER_OK);
    const double b[] = {0.25, 1};
    sh.c = celer_metrics_counter(sh.m, "n_total", "", "");
    sh.g = celer_metrics_gauge(sh.m, "g", "", "");
    sh.h = celer_metrics_histogram(sh.m, "h", "", "", b, 2);
    pthread_t t[N_THREADS];
    worker w[N_THREADS];
    for (int i = 0; i < N_THREADS; i++) {
        w[i] = (worker){&sh, i};
        assert_int_equal(pthread_create(&t[i], NULL, update_worker, &w[i]), 0);
    }
    for (int i = 0; i < N_THREADS; i++) pthread_join(t[i], NULL);
    parsed *r = render_parsed(sh.m, NULL);
    double total = (double)N_THREADS * N_ITERS;
    assert_true(value_of(r, "n_total", "") == total);
    assert_true(value_of(r, "g", "") == total / 2);
    assert_true(find_sample(r, "h_bucket", "", "0.25")->value == total / 4);
    assert_true(find_sample(r, "h_bucket", "", "1")->value == total * 3 / 4);
    assert_true(find_sample(r, "h_bucket", "", "+Inf")->value == total);
    assert_true(value_of(r, "h_count", "") == total);
    assert_true(value_of(r, "h_sum", "") == total / 4 * 3);
    free(r);
    celer_metrics_free(sh.m);
}

/* Creates and removes its own model's series in a loop while others update and render. */
static void *churn_worker(void *arg) {
    worker *w = arg;
    const double b[] = {0.001, 0.01, 0.1};
    for (int round = 0; round < 400; round++) {
        char labels[64], match[32];
        snprintf(match, sizeof match, "model=\"m%d_%d\"", w->id, round % 7);
        snprintf(labels, sizeof labels, "%s,version=\"%d\"", match, round % 3);
        celer_series *c = celer_metrics_counter(w->sh->m, "churn_total", "Churn.", labels);
        celer_series *h = celer_metrics_histogram(w->sh->m, "churn_seconds", "Churn latency.", labels, b, 3);
        if (!c || !h) return (void *)"churn: series creation failed";
        for (int i = 0; i < 50; i++) {
            celer_metrics_add(c, 1);
            celer_metrics_observe(h, i * 0.001);
        }
        if (round % 2) celer_metrics_remove(w->sh->m, match);
    }
    return NULL;
}

/* Renders and checks until told to stop (at least 20 times); returns the first problem
 * (malloc'ed) or NULL. No cmocka calls off the main thread. */
static void *render_worker(void *arg) {
    worker *w = arg;
    parsed *r = malloc(sizeof *r);
    char *problem = NULL;
    for (int i = 0; r && !problem && (i < 20 || !atomic_load(&w->sh->stop)); i++) {
        celer_jbuf b;
        celer_jbuf_init(&b, 0);
        celer_metrics_render(w->sh->m, &b);
        if (b.status != CELER_OK) problem = strdup("render failed");
        else if (!parse_exposition(b.data, r) || !check_histograms(r)) problem = strdup(r->err);
        celer_jbuf_free(&b);
    }
    free(r);
    return problem;
}

static void test_render_during_updates(void **state) {
    (void)state;
    shared sh = {0};
    assert_int_equal(celer_metrics_init(&sh.m), CELER_OK);
    const double b[] = {0.25, 1};
    sh.c = celer_metrics_counter(sh.m, "n_total", "", "");
    sh.g = celer_metrics_gauge(sh.m, "g", "", "");
    sh.h = celer_metrics_histogram(sh.m, "h", "", "", b, 2);
    enum { N_UPD = 3, N_CHURN = 3, N_REND = 2 };
    pthread_t t[N_UPD + N_CHURN + N_REND];
    worker w[N_UPD + N_CHURN + N_REND];
    int k = 0;
    for (int i = 0; i < N_UPD; i++, k++) {
        w[k] = (worker){&sh, k};
        assert_int_equal(pthread_create(&t[k], NULL, update_worker, &w[k]), 0);
    }
    for (int i = 0; i < N_CHURN; i++, k++) {
        w[k] = (worker){&sh, k};
        assert_int_equal(pthread_create(&t[k], NULL, churn_worker, &w[k]), 0);
    }
    for (int i = 0; i < N_REND; i++, k++) {
        w[k] = (worker){&sh, k};
        assert_int_equal(pthread_create(&t[k], NULL, render_worker, &w[k]), 0);
    }
    /* renderers run until every updater and churner is done, so they overlap all of it */
    for (int i = 0; i < k; i++) {
        if (i == N_UPD + N_CHURN) atomic_store(&sh.stop, 1);
        void *problem = NULL;
        pthread_join(t[i], &problem);
        if (problem) fail_msg("thread %d: %s", i, (char *)problem);
    }
    parsed *r = render_parsed(sh.m, NULL);
    assert_true(value_of(r, "n_total", "") == (double)N_UPD * N_ITERS);
    assert_true(value_of(r, "h_count", "") == (double)N_UPD * N_ITERS);
    free(r);
    celer_metrics_free(sh.m);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_kinds),
        cmocka_unit_test(test_summary),
        cmocka_unit_test(test_histogram_edges),
        cmocka_unit_test(test_latency_buckets),
        cmocka_unit_test(test_values_format),
        cmocka_unit_test(test_escape_and_labels),
        cmocka_unit_test(test_kind_clash),
        cmocka_unit_test(test_remove),
        cmocka_unit_test(test_process_metrics),
        cmocka_unit_test(test_concurrent_updates),
        cmocka_unit_test(test_render_during_updates),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
