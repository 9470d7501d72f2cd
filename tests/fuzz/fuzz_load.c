/* libFuzzer target for what a load with Triton's overrides takes from outside: the JSON model
 * config of its `config` parameter, the base64 text HTTP carries its files in, and the paths of its
 * `file:` parameters. Byte 0 picks (% 3: 0 config, 1 base64, 2 path); the rest is the input, at its
 * exact size. A clean error is fine; a crash, leak or sanitizer report is a bug, and so is a config
 * that parses (with every tensor's dims, as served) but whose own JSON does not parse back, or not
 * to the same JSON once written twice, a decode larger than its bound, or a path accepted that could leave the model's
 * folder. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "server/config.h"
#include "server/overrides.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check_config(const char *in, size_t n) {
    celer_arena a;
    celer_arena_init(&a, 4096, 0);
    celer_model_config cfg, back;
    /* the round trip holds for what a served config looks like: every tensor's dims given (the
     * writer cannot tell absent dims from none, and completion always fills them) */
    bool complete = false;
    if (celer_config_parse_json(in, n, "config", &a, &cfg) == CELER_OK) {
        complete = true;
        for (int i = 0; i < cfg.n_inputs + cfg.n_outputs; i++)
            complete &= (i < cfg.n_inputs ? cfg.inputs[i] : cfg.outputs[i - cfg.n_inputs]).rank >= 0;
    }
    if (complete) { /* written, read back, written again: the same text from then on (the first
                       writing may still normalize, e.g. bytes that are not UTF-8 to U+FFFD) */
        celer_jbuf j[3];
        for (int i = 0; i < 3; i++) celer_jbuf_init(&j[i], 0);
        celer_config_to_json(&cfg, &j[0]);
        for (int i = 1; i < 3 && !j[i - 1].status; i++) {
            if (celer_config_parse_json(j[i - 1].data, j[i - 1].len, "again", &a, &back)) abort();
            celer_config_to_json(&back, &j[i]);
        }
        if (!j[1].status && !j[2].status && (j[1].len != j[2].len || memcmp(j[1].data, j[2].data, j[1].len))) abort();
        for (int i = 0; i < 3; i++) celer_jbuf_free(&j[i]);
    }
    celer_arena_free(&a);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (size < 1) return 0;
    const char *in = (const char *)data + 1;
    size_t n = size - 1;
    switch (data[0] % 3) {
    case 0: check_config(in, n); break;
    case 1: {
        size_t cap = celer_base64_max_decoded(n), len, bad;
        unsigned char *out = malloc(cap + 1);
        if (!out) return 0;
        if (celer_base64_decode(in, n, out, &len, &bad) ? len > cap : bad > n) abort();
        free(out);
        break;
    }
    default: {
        char *path = malloc(n + 1);
        if (!path) return 0;
        memcpy(path, in, n);
        path[n] = 0;
        if (celer_override_check_path(path) == CELER_OK) {
            if (path[0] == '/' || !strcmp(path, "..") || !strncmp(path, "../", 3) || strstr(path, "/../") ||
                (strlen(path) >= 3 && !strcmp(path + strlen(path) - 3, "/..")) || strstr(path, "//"))
                abort();
        }
        free(path);
        break;
    }
    }
    return 0;
}
