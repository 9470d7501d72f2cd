/* libFuzzer target for what a remote model (src/server/remote.c) reads from outside: its
 * remote.yaml, and what the upstream answers: model metadata, model config and infer answers, over
 * HTTP (JSON, binary parts) and gRPC (framed messages).
 * Byte 0 picks (% 6): 0 remote.yaml (parsed for a model folder made once, holding a token file, a
 * CA file and a symlink to a file outside it), 1 metadata HTTP, 2 metadata gRPC, 3 max_batch_size
 * (HTTP and gRPC on the same bytes), 4 an HTTP infer answer (bytes 1-2: its
 * Inference-Header-Content-Length, little-endian, 0xffff absent), 5 a gRPC infer answer; infer
 * answers are checked against a fixed set of outputs, batched ((byte 0 / 6) odd, 2 rows sent) or
 * not. The rest is the input, given at its exact size so that a read past it is caught.
 * A clean error is fine; a crash, leak or sanitizer report is a bug, and so is a success that
 * breaks the decoders' promises: a header that is not "Name: value" without control characters,
 * a desc with a datatype celer does not serve, an output whose dtype or dims differ from its
 * metadata, or whose data does not hold every element (every byte is read). */
#include <limits.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "server/config.h"
#include "server/remote.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static char root[900], mdir[1024];
static volatile uint8_t sink;

/* Removes the folder at exit (libFuzzer's end, not a crash's). */
static void remove_folder(void) {
    static const char *const names[] = {"m/token.txt", "m/ca.pem", "m/link", "outside.txt"};
    char path[1100];
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
        snprintf(path, sizeof path, "%s/%s", root, names[i]);
        unlink(path);
    }
    rmdir(mdir);
    rmdir(root);
}

/* The model folder: <tmp>/m with token.txt, ca.pem and link -> ../outside.txt. Made once. */
static void make_folder(void) {
    char path[1100];
    snprintf(root, sizeof root, "%s/celer-fuzz-remote-XXXXXX", getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp");
    if (!mkdtemp(root)) abort();
    snprintf(mdir, sizeof mdir, "%s/m", root);
    if (mkdir(mdir, 0700)) abort();
    static const char *const files[][2] = {{"m/token.txt", "secret\n"}, {"m/ca.pem", "pem\n"}, {"outside.txt", "x\n"}};
    for (size_t i = 0; i < sizeof files / sizeof files[0]; i++) {
        snprintf(path, sizeof path, "%s/%s", root, files[i][0]);
        FILE *f = fopen(path, "wb");
        if (!f) abort();
        fputs(files[i][1], f);
        fclose(f);
    }
    snprintf(path, sizeof path, "%s/link", mdir);
    if (symlink("../outside.txt", path)) abort();
    atexit(remove_folder);
    setenv("FUZZ_TOKEN", "tok", 1);
    setenv("FUZZ_KEY", "k1", 1);
}

static void check_config(const celer_remote_config *c) {
    if (!c->url || !c->base || !c->model || !c->version || !*c->model || strchr(c->model, '/')) abort();
    if (strncmp(c->base, "http://", 7) && strncmp(c->base, "https://", 8)) abort();
    if (c->grpc != (!strncmp(c->url, "grpc://", 7) || !strncmp(c->url, "grpcs://", 8))) abort();
    if (c->n_headers < 0 || c->n_headers > CELER_REMOTE_MAX_HEADERS) abort();
    for (int i = 0; i < c->n_headers; i++) {
        const char *h = c->headers[i], *colon = strstr(h, ": ");
        if (!colon || colon == h) abort();
        for (const char *q = h; *q; q++)
            if ((unsigned char)*q < 0x20 && *q != '\t') abort();
    }
    if (c->timeout_ms < 1 || c->connect_timeout_ms < 1 || c->health_interval_ms < 0 || c->max_inflight < 1 || c->max_queue_size < 1 || c->retries < 0 ||
        !(c->retry_budget >= 0 && c->retry_budget <= 1) || c->breaker_failures < 1 || c->breaker_open_ms < 1 ||
        c->max_batch_size < 0 || c->max_batch_size > CELER_MAX_BATCH_JOBS || !(c->cache_ttl_s >= 0))
        abort();
    if (c->ca_file) sink ^= (uint8_t)strlen(c->ca_file);
}

static void check_desc(const celer_remote_desc *d) {
    if (!d->platform || d->n_inputs < 0 || d->n_inputs > CELER_CONFIG_MAX_IO || d->n_outputs < 0 ||
        d->n_outputs > CELER_CONFIG_MAX_IO)
        abort();
    for (int i = 0; i < d->n_inputs; i++) {
        const celer_kserve_tensor_spec *s = &d->inputs[i];
        if (!s->name || !celer_dtype_kserve_name(s->dtype) || s->rank < 0 || s->rank > CELER_MAX_RANK) abort();
        sink ^= (uint8_t)strlen(s->name);
    }
    for (int i = 0; i < d->n_outputs; i++) {
        const celer_io_desc *o = &d->outputs[i];
        if (!o->name || !celer_dtype_kserve_name(o->dtype) || o->shape.rank < 0 || o->shape.rank > CELER_MAX_RANK) abort();
        sink ^= (uint8_t)strlen(o->name);
    }
}

/* The upstream's outputs the answers are checked against. */
static const celer_io_desc outs_b[] = {
    {.name = "prob", .dtype = CELER_FLOAT, .has_shape = true, .shape = {2, {-1, 3}}},
    {.name = "idx", .dtype = CELER_INT64, .has_shape = true, .shape = {1, {-1}}},
    {.name = "label", .dtype = CELER_STRING, .has_shape = true, .shape = {1, {-1}}},
    {.name = "h", .dtype = CELER_FLOAT16, .has_shape = true, .shape = {2, {-1, 2}}},
};
static const celer_io_desc outs_u[] = {
    {.name = "y", .dtype = CELER_FLOAT, .has_shape = true, .shape = {2, {2, 2}}},
    {.name = "s", .dtype = CELER_STRING, .has_shape = true, .shape = {1, {-1}}},
    {.name = "v", .dtype = CELER_FLOAT, .has_shape = true, .shape = {1, {-1}}},
    {.name = "b", .dtype = CELER_BOOL, .has_shape = true, .shape = {0, {0}}},
    {.name = "d", .dtype = CELER_DOUBLE, .has_shape = true, .shape = {2, {-1, -1}}},
};
#define ROWS 2

static void check_outputs(const celer_remote_desc *d, const celer_tensor *outs) {
    for (int i = 0; i < d->n_outputs; i++) {
        const celer_io_desc *o = &d->outputs[i];
        const celer_tensor *t = &outs[i];
        if (t->dtype != o->dtype || t->shape.rank != o->shape.rank) abort();
        for (int k = 0; k < t->shape.rank; k++)
            if (t->shape.dims[k] < 0 || (o->shape.dims[k] >= 0 && t->shape.dims[k] != o->shape.dims[k])) abort();
        if (d->max_batch_size > 0 && t->shape.dims[0] != ROWS) abort();
        size_t bytes;
        if (celer_tensor_bytes(t, &bytes)) abort(); /* a size that does not fit: the data cannot hold it */
        int64_t numel = celer_shape_numel(&t->shape);
        if (numel > 0 && !t->data) abort();
        uint8_t acc = 0;
        if (t->dtype == CELER_STRING) {
            const celer_str *els = t->data;
            for (int64_t e = 0; e < numel; e++)
                for (size_t k = 0; k < els[e].len; k++) acc ^= (uint8_t)els[e].data[k];
        } else {
            for (size_t k = 0; k < bytes; k++) acc ^= ((const uint8_t *)t->data)[k];
        }
        sink ^= acc;
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (size < 1) return 0;
    if (!mdir[0]) make_folder();
    const char *in = (const char *)data + 1;
    size_t n = size - 1;
    int mode = data[0] % 6;
    bool batched = (data[0] / 6) & 1;
    celer_arena arena;
    celer_arena_init(&arena, 4096, 2 * size + (1u << 20)); /* as a call's: bounded by the answer */
    switch (mode) {
    case 0: {
        celer_remote_config c;
        if (celer_remote_parse(in, n, "m/remote.yaml", mdir, "m", &arena, &c) == CELER_OK) check_config(&c);
        break;
    }
    case 1:
    case 2: {
        celer_remote_desc d;
        if (celer_remote_decode_metadata(mode == 2, in, n, &arena, &d) == CELER_OK) check_desc(&d);
        break;
    }
    case 3: {
        int mbs = -1;
        if (celer_remote_decode_max_batch(false, in, n, &arena, &mbs) == CELER_OK && mbs < 0) abort();
        mbs = -1;
        if (celer_remote_decode_max_batch(true, in, n, &arena, &mbs) == CELER_OK) sink ^= (uint8_t)mbs;
        break;
    }
    default: {
        celer_remote_desc d = {.platform = ""};
        if (batched) {
            d.max_batch_size = 4;
            d.outputs = (celer_io_desc *)outs_b;
            d.n_outputs = (int)(sizeof outs_b / sizeof outs_b[0]);
        } else {
            d.outputs = (celer_io_desc *)outs_u;
            d.n_outputs = (int)(sizeof outs_u / sizeof outs_u[0]);
        }
        celer_tensor outs[8];
        memset(outs, 0, sizeof outs);
        size_t json_len = SIZE_MAX;
        bool grpc = mode == 5;
        if (!grpc) {
            if (n < 2) break;
            unsigned hl = (unsigned)(uint8_t)in[0] | (unsigned)(uint8_t)in[1] << 8;
            if (hl != 0xffff) json_len = hl;
            in += 2;
            n -= 2;
        }
        if (celer_remote_decode(&d, grpc, ROWS, in, n, json_len, &arena, outs) == CELER_OK) check_outputs(&d, outs);
        break;
    }
    }
    celer_arena_free(&arena);
    return 0;
}
