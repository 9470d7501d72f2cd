/* Logging: the settings table, the line shapes of each format, and the checks of a change made
 * through the logging endpoints (see log.h). */
#include "server/log.h"

#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "server/json.h"

#define LINE_MAX_BYTES 4096 /* a message longer than this is cut */

/* The settings every line consults. */
static atomic_bool enabled[3] = {true, true, true}; /* by celer_log_level */
static atomic_uint verbose_level;
static atomic_int style = CELER_LOG_STYLE_DEFAULT;
static pthread_mutex_t change_lock = PTHREAD_MUTEX_INITIALIZER; /* a change applies whole */

static const char *const style_names[] = {"default", "ISO8601", "json"};
static const char level_letters[] = {'E', 'W', 'I'};
static const char *const level_names[] = {"error", "warning", "info"};

/* Triton's settings, in its order, with the kind each takes (Triton's word for it in messages). */
typedef enum setting_id { S_FILE, S_INFO, S_WARNING, S_ERROR, S_VERBOSE, S_FORMAT, S_COUNT } setting_id;
static const struct setting {
    const char *name;
    celer_log_kind kind;
    const char *kind_word;
} settings[S_COUNT] = {
    {"log_file", CELER_LOG_STRING, "string"},      {"log_info", CELER_LOG_BOOL, "boolean"},
    {"log_warning", CELER_LOG_BOOL, "boolean"},    {"log_error", CELER_LOG_BOOL, "boolean"},
    {"log_verbose_level", CELER_LOG_UINT, "int32"}, {"log_format", CELER_LOG_STRING, "string"},
};

static bool parse_style(const char *s, size_t n, celer_log_style *out) {
    for (size_t i = 0; i < CELER_ARRAY_LEN(style_names); i++)
        if (strlen(style_names[i]) == n && !memcmp(style_names[i], s, n)) {
            *out = (celer_log_style)i;
            return true;
        }
    if (n == 4 && !memcmp(s, "text", 4)) { /* celer's earlier name of "default" */
        *out = CELER_LOG_STYLE_DEFAULT;
        return true;
    }
    return false;
}

celer_status celer_log_configure(const celer_server_options *opts) {
    celer_log_style s = CELER_LOG_STYLE_DEFAULT;
    const char *f = opts->log_format ? opts->log_format : "default";
    if (!parse_style(f, strlen(f), &s))
        return celer_errorf(CELER_ERR_INVALID, "--log-format must be default, ISO8601 or json, not '%s'", f);
    atomic_store(&style, s);
    atomic_store(&enabled[CELER_LOG_INFO], opts->log_info != 0);
    atomic_store(&enabled[CELER_LOG_WARNING], opts->log_warning != 0);
    atomic_store(&enabled[CELER_LOG_ERROR], opts->log_error != 0);
    atomic_store(&verbose_level, (unsigned)(opts->log_verbose > 0 ? opts->log_verbose : 0));
    return CELER_OK;
}

bool celer_log_enabled(celer_log_level level) { return atomic_load_explicit(&enabled[level], memory_order_relaxed); }
bool celer_log_verbose_enabled(unsigned level) {
    return level && atomic_load_explicit(&verbose_level, memory_order_relaxed) >= level;
}
celer_log_style celer_log_current_style(void) { return atomic_load_explicit(&style, memory_order_relaxed); }

/* "2026-12-05T10:00:00Z" */
static void now_iso(char out[32]) {
    time_t t = time(NULL);
    struct tm tm;
    gmtime_r(&t, &tm);
    strftime(out, 32, "%Y-%m-%dT%H:%M:%SZ", &tm);
}

/* One write per line: stderr is unbuffered, so lines of different threads do not interleave. */
static void emit(const char *line, size_t n) { fwrite(line, 1, n, stderr); }

/* A message line in the current format; `letter`/`level` name its class. */
static void write_line(char letter, const char *level, const char *fmt, va_list ap) {
    char msg[LINE_MAX_BYTES], when[32];
    vsnprintf(msg, sizeof msg, fmt, ap);
    celer_log_style s = celer_log_current_style();
    if (s == CELER_LOG_STYLE_JSON) {
        celer_jbuf b;
        celer_jbuf_init(&b, 1 << 16);
        now_iso(when);
        celer_jbuf_raw(&b, "{\"time\":", 8);
        celer_jbuf_str(&b, when);
        celer_jbuf_raw(&b, ",\"level\":", 9);
        celer_jbuf_str(&b, level);
        celer_jbuf_raw(&b, ",\"message\":", 11);
        celer_jbuf_str(&b, msg);
        celer_jbuf_raw(&b, "}\n", 2);
        if (!b.status) emit(b.data, b.len);
        celer_jbuf_free(&b);
        return;
    }
    /* control bytes (a model name from a request may hold a newline) as %XX: one message, one line */
    char safe[3 * LINE_MAX_BYTES], line[sizeof safe + 64];
    size_t o = 0;
    for (const unsigned char *p = (const unsigned char *)msg; *p; p++) {
        if (*p >= 0x20 && *p != 0x7f) safe[o++] = (char)*p;
        else o += (size_t)snprintf(safe + o, sizeof safe - o, "%%%02X", *p);
    }
    safe[o] = 0;
    int n;
    if (s == CELER_LOG_STYLE_ISO8601) {
        now_iso(when);
        n = snprintf(line, sizeof line, "%s %c celer: %s\n", when, letter, safe);
    } else {
        n = snprintf(line, sizeof line, "celer: %s\n", safe);
    }
    emit(line, CELER_MIN((size_t)n, sizeof line - 1));
}

void celer_log(celer_log_level level, const char *fmt, ...) {
    if (!celer_log_enabled(level)) return;
    va_list ap;
    va_start(ap, fmt);
    write_line(level_letters[level], level_names[level], fmt, ap);
    va_end(ap);
}

void celer_log_verbose(unsigned level, const char *fmt, ...) {
    if (!celer_log_verbose_enabled(level)) return;
    va_list ap;
    va_start(ap, fmt);
    write_line('V', "verbose", fmt, ap);
    va_end(ap);
}

/* Bytes outside visible ASCII (a decoded %0a, say), '"' and '%' as %XX, so a path cannot forge
 * log lines. */
static void escape(const char *in, char *out, size_t cap) {
    size_t o = 0;
    for (const unsigned char *p = (const unsigned char *)in; *p && o + 4 < cap; p++) {
        if (*p > 0x20 && *p < 0x7f && *p != '"' && *p != '%') out[o++] = (char)*p;
        else o += (size_t)snprintf(out + o, cap - o, "%%%02X", *p);
    }
    out[o] = 0;
}

void celer_log_request(const celer_log_access *a) {
    if (!celer_log_enabled(CELER_LOG_INFO)) return;
    char when[32];
    now_iso(when);
    celer_log_style s = celer_log_current_style();
    if (s == CELER_LOG_STYLE_JSON) {
        celer_jbuf b;
        celer_jbuf_init(&b, 1 << 16);
        celer_jbuf_raw(&b, "{\"time\":", 8);
        celer_jbuf_str(&b, when);
        celer_jbuf_raw(&b, ",\"level\":\"info\",\"remote\":", 25);
        celer_jbuf_str(&b, a->remote);
        celer_jbuf_raw(&b, ",\"method\":", 10);
        celer_jbuf_str(&b, a->method);
        celer_jbuf_raw(&b, ",\"path\":", 8);
        celer_jbuf_str(&b, a->path);
        celer_jbuf_raw(&b, ",\"status\":", 10);
        celer_jbuf_int(&b, a->status);
        celer_jbuf_raw(&b, ",\"duration_ms\":", 15);
        celer_jbuf_double(&b, a->ms);
        celer_jbuf_raw(&b, ",\"request_id\":", 14);
        celer_jbuf_str(&b, a->request_id);
        if (a->key) {
            celer_jbuf_raw(&b, ",\"key\":", 7);
            celer_jbuf_str(&b, a->key);
        }
        if (a->trace_id) {
            celer_jbuf_raw(&b, ",\"trace_id\":", 12);
            celer_jbuf_str(&b, a->trace_id);
        }
        celer_jbuf_raw(&b, "}\n", 2);
        if (!b.status) emit(b.data, b.len);
        celer_jbuf_free(&b);
        return;
    }
    char method[64], path[3 * 2048 + 4], key[3 * 64 + 4], line[sizeof path + 512];
    escape(a->method, method, sizeof method);
    escape(a->path, path, sizeof path);
    if (a->key) escape(a->key, key, sizeof key);
    int n = snprintf(line, sizeof line, "%s%s %s \"%s %s\" %d %.3fms id=%s%s%s%s%s\n", when,
                     s == CELER_LOG_STYLE_ISO8601 ? " I" : "", a->remote, method, path, a->status, a->ms, a->request_id,
                     a->key ? " key=" : "", a->key ? key : "", a->trace_id ? " trace=" : "",
                     a->trace_id ? a->trace_id : "");
    emit(line, CELER_MIN((size_t)n, sizeof line - 1));
}

/* ---- the settings through the endpoints ---- */

void celer_log_settings(void (*each)(void *user, const char *name, const celer_log_value *v), void *user) {
    for (int i = 0; i < S_COUNT; i++) {
        celer_log_value v = {.kind = settings[i].kind};
        switch ((setting_id)i) {
        case S_FILE: v.s = "", v.len = 0; break; /* stderr: no file */
        case S_INFO: v.b = celer_log_enabled(CELER_LOG_INFO); break;
        case S_WARNING: v.b = celer_log_enabled(CELER_LOG_WARNING); break;
        case S_ERROR: v.b = celer_log_enabled(CELER_LOG_ERROR); break;
        case S_VERBOSE: v.u = atomic_load(&verbose_level); break;
        case S_FORMAT:
            v.s = style_names[celer_log_current_style()];
            v.len = strlen(v.s);
            break;
        case S_COUNT: break;
        }
        each(user, settings[i].name, &v);
    }
}

static const char *kind_text(const celer_log_value *v) {
    switch (v->kind) {
    case CELER_LOG_BOOL: return "a boolean";
    case CELER_LOG_UINT: return v->bad_number ? "a number that is not an unsigned integer" : "an unsigned integer";
    case CELER_LOG_STRING: return "a string";
    case CELER_LOG_OTHER: return "an array or object";
    case CELER_LOG_NULL: break;
    }
    return "null";
}

celer_status celer_log_change_set(celer_log_change *c, const char *name, size_t name_len, const celer_log_value *v) {
    int id = -1;
    for (int i = 0; i < S_COUNT && id < 0; i++)
        if (strlen(settings[i].name) == name_len && !memcmp(settings[i].name, name, name_len)) id = i;
    if (id < 0)
        return celer_errorf(CELER_ERR_INVALID, "unknown log setting '%.*s': expected log_file, log_info, log_warning, "
                            "log_error, log_verbose_level or log_format", (int)CELER_MIN(name_len, 64), name);
    if (v->kind == CELER_LOG_NULL) return CELER_OK;
    const struct setting *s = &settings[id];
    if (v->kind != s->kind || (s->kind == CELER_LOG_UINT && v->bad_number))
        return celer_errorf(CELER_ERR_INVALID, "expect %s for '%s', got %s", s->kind_word, s->name, kind_text(v));
    switch ((setting_id)id) {
    case S_FILE:
        if (v->len) /* lines go to stderr, where the process manager collects them */
            return celer_errorf(CELER_ERR_UNSUPPORTED, "log file location can not be updated through network "
                                "protocol: celer logs to stderr (log_file \"\")");
        break;
    case S_INFO: c->set_info = true, c->info = v->b; break;
    case S_WARNING: c->set_warning = true, c->warning = v->b; break;
    case S_ERROR: c->set_error = true, c->error = v->b; break;
    case S_VERBOSE:
        if (v->u > INT32_MAX)
            return celer_errorf(CELER_ERR_INVALID, "expect int32 for 'log_verbose_level', got %llu (at most %d)",
                                (unsigned long long)v->u, INT32_MAX);
        c->set_verbose = true, c->verbose = (uint32_t)v->u;
        break;
    case S_FORMAT:
        if (!parse_style(v->s, v->len, &c->style))
            return celer_errorf(CELER_ERR_INVALID, "invalid argument for log_format, got: %.*s (expected default, "
                                "ISO8601 or json)", (int)CELER_MIN(v->len, 64), v->s);
        c->set_style = true;
        break;
    case S_COUNT: break;
    }
    return CELER_OK;
}

void celer_log_change_apply(const celer_log_change *c) {
    pthread_mutex_lock(&change_lock);
    if (c->set_info) atomic_store(&enabled[CELER_LOG_INFO], c->info);
    if (c->set_warning) atomic_store(&enabled[CELER_LOG_WARNING], c->warning);
    if (c->set_error) atomic_store(&enabled[CELER_LOG_ERROR], c->error);
    if (c->set_verbose) atomic_store(&verbose_level, c->verbose);
    if (c->set_style) atomic_store(&style, c->style);
    pthread_mutex_unlock(&change_lock);
}
