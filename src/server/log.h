/* Logging (log.c), private to src/server: every line `celer serve` writes to stderr goes through
 * here and consults one table of settings, Triton's: log_info, log_warning, log_error (each class
 * on or off), log_verbose_level (0 = no verbose lines) and log_format ("default", "ISO8601", or
 * celer's "json"). The flags set them at start; GET/POST /v2/logging and gRPC LogSettings read and
 * change them at run time, through celer_log_update, so both protocols apply the same rules with
 * the same messages. A change is checked whole before any of it applies; lines read the settings
 * with relaxed atomics, so a line racing a change may follow part of it. See docs/server.md,
 * "Log settings". */
#ifndef CELER_SERVER_LOG_H
#define CELER_SERVER_LOG_H

#include <stdbool.h>
#include <stdint.h>

#include "server/server.h"

typedef enum celer_log_level { CELER_LOG_ERROR, CELER_LOG_WARNING, CELER_LOG_INFO } celer_log_level;
typedef enum celer_log_style { CELER_LOG_STYLE_DEFAULT, CELER_LOG_STYLE_ISO8601, CELER_LOG_STYLE_JSON } celer_log_style;

/* Sets every setting from the flags (--log-info, --log-warning, --log-error, --log-verbose,
 * --log-format; "text" is "default"). CELER_ERR_INVALID naming the flag for a format it does not
 * know. */
celer_status celer_log_configure(const celer_server_options *opts);

bool celer_log_enabled(celer_log_level level);
bool celer_log_verbose_enabled(unsigned level);
celer_log_style celer_log_current_style(void);

/* One line at `level` (the message without a newline; longer than 4 KiB is cut), shaped by the
 * format: default "celer: <message>" (as celer always wrote), ISO8601 "<time> <E|W|I> celer:
 * <message>", json {"time","level","message"}. Nothing when the level is off. */
void celer_log(celer_log_level level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* A verbose line: written when log_verbose_level >= `level` (level >= 1), as "V" / "verbose". */
void celer_log_verbose(unsigned level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* One HTTP request of the access log (an info line): default "<time> <remote> "<method> <path>"
 * <status> <ms>ms id=<id>[ key=<name>][ trace=<trace id>]" (bytes of method and path outside
 * visible ASCII as %XX, so a request cannot forge a line), ISO8601 the same after "<time> I", json
 * {"time","level","remote","method","path","status","duration_ms","request_id"[,"key"][,"trace_id"]}.
 * trace_id: the request's trace (32 hex digits) when it was traced, else NULL and left out. */
typedef struct celer_log_access {
    const char *remote, *method, *path, *request_id;
    const char *key; /* the NAME of the request's API key (auth.h), never the key; NULL: none */
    const char *trace_id;
    int status;
    double ms;
} celer_log_access;
void celer_log_request(const celer_log_access *a);

/* ---- the settings, as the logging endpoints read and change them ---- */

typedef enum celer_log_kind { CELER_LOG_NULL, CELER_LOG_BOOL, CELER_LOG_UINT, CELER_LOG_STRING, CELER_LOG_OTHER } celer_log_kind;
/* A value as a transport decoded it (OTHER: a JSON array or object). A JSON number is UINT, with
 * `bad_number` set when it is negative, fractional or 2^53 and beyond. */
typedef struct celer_log_value {
    celer_log_kind kind;
    bool b;
    bool bad_number;
    uint64_t u;
    const char *s; /* STRING: s[0..len) (not NUL-terminated) */
    size_t len;
} celer_log_value;

/* The settings in Triton's order (log_file, log_info, log_warning, log_error, log_verbose_level,
 * log_format): each(user, name, value) with each one's current value (log_file is "": lines go to
 * stderr). */
void celer_log_settings(void (*each)(void *user, const char *name, const celer_log_value *v), void *user);

/* A change of several settings, all applied or none: collect them with celer_log_change_set
 * (which checks each: an unknown name, a value of the wrong kind, a format not known, a log_file
 * other than the current "" are CELER_ERR_INVALID or, for log_file, CELER_ERR_UNSUPPORTED, with
 * Triton's wording first), then celer_log_change_apply. A NULL value changes nothing. */
typedef struct celer_log_change {
    bool set_info, set_warning, set_error, set_verbose, set_style;
    bool info, warning, error;
    uint32_t verbose;
    celer_log_style style;
} celer_log_change;
celer_status celer_log_change_set(celer_log_change *c, const char *name, size_t name_len, const celer_log_value *v);
void celer_log_change_apply(const celer_log_change *c);

#endif
