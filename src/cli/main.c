/* celer: the command-line program. Each subcommand is one entry of the table at the bottom. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "ops/ops.h"
#include "runtime/runtime.h"
#include "server/server.h"

#define MAX_CLI_INPUTS 256

static int fail(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static int fail(const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    fputs("celer: error: ", stderr);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
    return 1;
}

static int fail_status(celer_status st) {
    const char *msg = celer_error_message();
    return fail("%s", msg[0] ? msg : celer_status_name(st));
}

/* Formats a declared shape with symbolic names: [batch,3,224,224]. */
static const char *shape_text(const celer_io_desc *d, char *buf, size_t cap) {
    if (!d->has_shape) return "(unknown rank)";
    size_t n = (size_t)snprintf(buf, cap, "[");
    for (int i = 0; i < d->shape.rank && n < cap; i++) {
        const char *sep = i ? "," : "";
        if (d->shape.dims[i] >= 0)
            n += (size_t)snprintf(buf + n, cap - n, "%s%lld", sep, (long long)d->shape.dims[i]);
        else
            n += (size_t)snprintf(buf + n, cap - n, "%s%s", sep,
                                  d->dim_params && d->dim_params[i] ? d->dim_params[i] : "?");
    }
    if (n < cap) snprintf(buf + n, cap - n, "]");
    return buf;
}

/* ---- celer run ---- */

static int cmd_run(int argc, char **argv) {
    const char *model_path = NULL, *out_dir = NULL;
    const char *names[MAX_CLI_INPUTS], *files[MAX_CLI_INPUTS];
    int n_given = 0, threads = 1;
    for (int i = 0; i < argc; i++) {
        const char *a = argv[i];
        if (!strcmp(a, "--input") || !strcmp(a, "-i")) {
            if (++i >= argc) return fail("--input needs NAME=FILE.npy");
            char *eq = strchr(argv[i], '=');
            if (!eq || eq == argv[i] || !eq[1]) return fail("--input '%s': expected NAME=FILE.npy", argv[i]);
            if (n_given == MAX_CLI_INPUTS) return fail("at most %d --input options", MAX_CLI_INPUTS);
            *eq = 0;
            names[n_given] = argv[i];
            files[n_given++] = eq + 1;
        } else if (!strcmp(a, "--output-dir") || !strcmp(a, "-o")) {
            if (++i >= argc) return fail("--output-dir needs a folder");
            out_dir = argv[i];
        } else if (!strcmp(a, "--threads")) {
            if (++i >= argc || (threads = atoi(argv[i])) < 1 || threads > 1024)
                return fail("--threads needs a number from 1 to 1024");
        } else if (a[0] == '-') {
            return fail("unknown option '%s' (see celer run --help)", a);
        } else if (!model_path) {
            model_path = a;
        } else {
            return fail("unexpected argument '%s'", a);
        }
    }
    if (!model_path) return fail("celer run: no model given (celer run MODEL.onnx --input NAME=FILE.npy --output-dir DIR)");
    if (!out_dir) return fail("celer run: --output-dir DIR is required");

    celer_model_options opts = {.threads = threads};
    celer_model *model;
    celer_status st = celer_model_load(model_path, &opts, &model);
    if (st) return fail_status(st);
    int rc = 1, n_in = celer_model_input_count(model);
    celer_arena arena;
    celer_arena_init(&arena, 1 << 20, 0);
    celer_context *ctx = NULL;
    celer_tensor *inputs = celer_arena_alloc(&arena, sizeof(celer_tensor) * (size_t)(n_in + 1));
    bool *seen = celer_arena_alloc(&arena, sizeof(bool) * (size_t)(n_in + 1));
    if (!inputs || !seen) {
        fail_status(CELER_ERR_NOMEM);
        goto done;
    }
    for (int i = 0; i < n_given; i++) {
        int idx = celer_model_input_index(model, names[i]);
        if (idx < 0) {
            char list[1024] = "";
            size_t n = 0;
            for (int j = 0; j < n_in && n < sizeof list; j++)
                n += (size_t)snprintf(list + n, sizeof list - n, "%s%s", j ? ", " : "",
                                      celer_model_input(model, j)->name);
            fail("unknown input '%s'; the model's inputs are: %s", names[i], n_in ? list : "(none)");
            goto done;
        }
        if (seen[idx]) {
            fail("input '%s' is given twice", names[i]);
            goto done;
        }
        if ((st = celer_npy_read(files[i], &arena, &inputs[idx]))) {
            fail_status(st);
            goto done;
        }
        seen[idx] = true;
    }
    for (int j = 0; j < n_in; j++)
        if (!seen[j]) {
            const celer_io_desc *d = celer_model_input(model, j);
            char shape[256];
            fail("missing input '%s' (%s %s); pass --input %s=FILE.npy", d->name,
                 celer_dtype_name(d->dtype), shape_text(d, shape, sizeof shape), d->name);
            goto done;
        }
    if ((st = celer_context_init(model, &ctx))) {
        fail_status(st);
        goto done;
    }
    const celer_tensor *outputs;
    if ((st = celer_context_run(ctx, inputs, &outputs))) {
        fail_status(st);
        goto done;
    }
    if (mkdir(out_dir, 0777) != 0 && errno != EEXIST) {
        fail("cannot create output folder '%s': %s", out_dir, strerror(errno));
        goto done;
    }
    for (int i = 0; i < celer_model_output_count(model); i++) {
        const char *name = celer_model_output(model, i)->name;
        char path[4096];
        /* output names come from the model: keep them inside out_dir */
        char safe[256];
        size_t k = 0;
        for (const char *p = name; *p && k + 1 < sizeof safe; p++)
            safe[k++] = (*p == '/' || *p == '\\' || (p == name && *p == '.')) ? '_' : *p;
        safe[k] = 0;
        snprintf(path, sizeof path, "%s/%s.npy", out_dir, safe);
        if ((st = celer_npy_write(path, &outputs[i]))) {
            fail_status(st);
            goto done;
        }
    }
    rc = 0;
done:
    celer_context_free(ctx);
    celer_arena_free(&arena);
    celer_model_free(model);
    return rc;
}

/* ---- celer inspect ---- */

static void report_problem(void *user, int k, const celer_onnx_node *node, celer_status st, const char *msg) {
    (void)st;
    (void)node;
    (void)k;
    int *count = user;
    if (++*count == 1) printf("cannot run:\n");
    printf("  %s\n", msg);
}

static void print_value_infos(const char *title, const celer_onnx_value_info *vis, int n,
                              const celer_onnx_graph *g) {
    printf("%s:\n", title);
    for (int i = 0; i < n; i++) {
        const celer_onnx_value_info *vi = &vis[i];
        bool is_init = false;
        for (int j = 0; j < g->n_initializers && !is_init; j++)
            is_init = !strcmp(g->initializers[j].name, vi->name);
        if (is_init) continue; /* old exporters list weights as inputs too */
        celer_io_desc d = {.name = vi->name, .dtype = vi->dtype, .has_shape = vi->has_shape,
                           .shape = vi->shape, .dim_params = vi->dim_params};
        char shape[256];
        printf("  %-24s %-8s %s\n", vi->name, celer_dtype_name(vi->dtype), shape_text(&d, shape, sizeof shape));
    }
}

static int cmd_inspect(int argc, char **argv) {
    if (argc != 1 || argv[0][0] == '-') return fail("usage: celer inspect MODEL.onnx");
    celer_onnx_model *m;
    celer_status st = celer_onnx_load(argv[0], &m);
    if (st) return fail_status(st);
    const celer_onnx_graph *g = m->graph;
    printf("model: %s\n", argv[0]);
    printf("ir_version: %lld  producer: %s %s\n", (long long)m->ir_version,
           m->producer_name ? m->producer_name : "", m->producer_version ? m->producer_version : "");
    printf("opsets:");
    for (int i = 0; i < m->n_opsets; i++)
        printf(" %s=%lld", m->opsets[i].domain && m->opsets[i].domain[0] ? m->opsets[i].domain : "ai.onnx",
               (long long)m->opsets[i].version);
    printf("\n");
    print_value_infos("inputs", g->inputs, g->n_inputs, g);
    print_value_infos("outputs", g->outputs, g->n_outputs, g);

    /* operator histogram, most used first */
    int n_ops = 0;
    const char **ops = calloc((size_t)g->n_nodes + 1, sizeof *ops);
    int *counts = calloc((size_t)g->n_nodes + 1, sizeof *counts);
    if (!ops || !counts) {
        free(ops);
        free(counts);
        celer_onnx_free(m);
        return fail_status(CELER_ERR_NOMEM);
    }
    for (int i = 0; i < g->n_nodes; i++) {
        int j = 0;
        while (j < n_ops && strcmp(ops[j], g->nodes[i].op_type)) j++;
        if (j == n_ops) ops[n_ops++] = g->nodes[i].op_type;
        counts[j]++;
    }
    for (int a = 1; a < n_ops; a++)
        for (int b = a; b > 0 && counts[b] > counts[b - 1]; b--) {
            int tc = counts[b];
            counts[b] = counts[b - 1];
            counts[b - 1] = tc;
            const char *to = ops[b];
            ops[b] = ops[b - 1];
            ops[b - 1] = to;
        }
    printf("operators (%d nodes):\n", g->n_nodes);
    for (int j = 0; j < n_ops; j++) printf("  %-24s %d\n", ops[j], counts[j]);
    free(ops);
    free(counts);

    int64_t params = 0;
    size_t bytes = 0;
    for (int i = 0; i < g->n_initializers; i++) {
        const celer_tensor *t = &g->initializers[i].tensor;
        size_t b = 0;
        params += celer_shape_numel(&t->shape);
        if (!celer_tensor_bytes(t, &b)) bytes += b;
    }
    printf("parameters: %lld in %d initializers (%.1f MB)\n", (long long)params, g->n_initializers,
           (double)bytes / 1e6);
    int problems = 0;
    celer_model_check(m, report_problem, &problems);
    if (!problems) printf("cannot run: none\n");
    celer_onnx_free(m);
    return 0;
}

/* ---- celer bench ---- */

static int cmp_double(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

/* Peak resident set of this process in MB (VmHWM). */
static double peak_rss_mb(void) {
    FILE *f = fopen("/proc/self/status", "r");
    char line[256];
    double kb = 0;
    while (f && fgets(line, sizeof line, f))
        if (!strncmp(line, "VmHWM:", 6)) kb = atof(line + 6);
    if (f) fclose(f);
    return kb / 1024.0;
}

/* Deterministic pseudo-random values for an input of any numeric dtype. */
static void fill_random(celer_tensor *t, uint64_t *seed) {
    int64_t n = celer_shape_numel(&t->shape);
    for (int64_t i = 0; i < n; i++) {
        *seed = *seed * 6364136223846793005ull + 1442695040888963407ull;
        double u = (double)(*seed >> 11) * (1.0 / 9007199254740992.0);
        bool integral = t->dtype != CELER_FLOAT && t->dtype != CELER_DOUBLE && t->dtype != CELER_FLOAT16 &&
                        t->dtype != CELER_BFLOAT16;
        celer_ops_double_store(t, i, integral ? (double)(int)(u * 10) : u * 2 - 1);
    }
}

static double now_ms(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

#define MAX_BENCH_DIMS 64
#define MAX_PROFILE_OPS 64
#define PROFILE_TOP_NODES 10

typedef struct op_time {
    const char *op;
    double ms, flop;
    int nodes;
} op_time;

/* --profile: `iterations` more runs with per-node timing (apart from the timed runs, so the clock
 * reads never enter the latency figures); prints time per operator type and appends
 * `, "op_ms": {...}, "op_gflop": {...}` (per run) to json. Returns non-zero on failure. */
static int bench_profile(celer_context *ctx, const celer_tensor *inputs, int iterations, char *json, size_t cap) {
    celer_status st = celer_context_set_profiling(ctx, true);
    const celer_tensor *outputs;
    for (int i = 0; !st && i < iterations; i++) st = celer_context_run(ctx, inputs, &outputs);
    if (st) return fail_status(st);
    const celer_node_profile *p;
    int n = celer_context_profile(ctx, &p), n_ops = 0;
    op_time ops[MAX_PROFILE_OPS];
    double total = 0;
    for (int k = 0; k < n; k++) {
        int j = 0;
        while (j < n_ops && strcmp(ops[j].op, p[k].op_type)) j++;
        if (j == n_ops) {
            if (n_ops == MAX_PROFILE_OPS) continue;
            ops[n_ops++] = (op_time){p[k].op_type, 0, 0, 0};
        }
        ops[j].ms += p[k].ms / iterations;
        ops[j].flop += p[k].flop / iterations;
        ops[j].nodes++;
        total += p[k].ms / iterations;
    }
    for (int a = 1; a < n_ops; a++) /* most time first */
        for (int b = a; b > 0 && ops[b].ms > ops[b - 1].ms; b--) {
            op_time t = ops[b];
            ops[b] = ops[b - 1];
            ops[b - 1] = t;
        }
    printf("profile      mean per run over %d more runs, by operator (fused nodes under their own names)\n", iterations);
    size_t len = (size_t)snprintf(json, cap, ", \"op_ms\": {");
    for (int j = 0; j < n_ops; j++) {
        printf("  %-22s %4d nodes %10.3f ms %5.1f%%", ops[j].op, ops[j].nodes, ops[j].ms, total > 0 ? 100 * ops[j].ms / total : 0);
        if (ops[j].flop > 0) printf("  %7.2f GFLOP  %6.1f GFLOP/s", ops[j].flop / 1e9, ops[j].flop / 1e6 / ops[j].ms);
        printf("\n");
        if (len < cap) len += (size_t)snprintf(json + len, cap - len, "%s\"%s\": %.4f", j ? ", " : "", ops[j].op, ops[j].ms);
    }
    if (len < cap) len += (size_t)snprintf(json + len, cap - len, "}, \"op_gflop\": {");
    for (int j = 0, first = 1; j < n_ops; j++)
        if (ops[j].flop > 0 && len < cap) {
            len += (size_t)snprintf(json + len, cap - len, "%s\"%s\": %.4f", first ? "" : ", ", ops[j].op, ops[j].flop / 1e9);
            first = 0;
        }
    if (len < cap) snprintf(json + len, cap - len, "}");
    /* the slowest nodes by name: where a model's time goes inside one operator type */
    int top[PROFILE_TOP_NODES], n_top = 0;
    for (int k = 0; k < n; k++) {
        if (!p[k].runs) continue;
        int at = n_top < PROFILE_TOP_NODES ? n_top++ : PROFILE_TOP_NODES;
        while (at > 0 && p[top[at - 1]].ms < p[k].ms) {
            if (at < PROFILE_TOP_NODES) top[at] = top[at - 1];
            at--;
        }
        if (at < PROFILE_TOP_NODES) top[at] = k;
    }
    printf("slowest nodes\n");
    for (int i = 0; i < n_top; i++)
        printf("  %10.3f ms  %-22s %s\n", p[top[i]].ms / iterations, p[top[i]].op_type, p[top[i]].name);
    return 0;
}

static int cmd_bench(int argc, char **argv) {
    const char *model_path = NULL, *names[MAX_CLI_INPUTS], *files[MAX_CLI_INPUTS];
    const char *dim_names[MAX_BENCH_DIMS];
    long long dim_values[MAX_BENCH_DIMS];
    int n_given = 0, n_dims = 0, threads = 1, iterations = 50, warmup = 5;
    bool profile = false, no_optimize = false;
    long long batch = 1;
    for (int i = 0; i < argc; i++) {
        const char *a = argv[i];
        const char *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (!strcmp(a, "--input") && v) {
            char *eq = strchr(argv[++i], '=');
            if (!eq || eq == argv[i] || !eq[1] || n_given == MAX_CLI_INPUTS)
                return fail("--input '%s': expected NAME=FILE.npy", argv[i]);
            *eq = 0;
            names[n_given] = argv[i];
            files[n_given++] = eq + 1;
        } else if (!strcmp(a, "--dim") && v) {
            char *eq = strchr(argv[++i], '=');
            if (!eq || eq == argv[i] || n_dims == MAX_BENCH_DIMS || (dim_values[n_dims] = atoll(eq + 1)) < 1)
                return fail("--dim '%s': expected NAME=VALUE with VALUE >= 1", argv[i]);
            *eq = 0;
            dim_names[n_dims++] = argv[i];
        } else if (!strcmp(a, "--batch") && v) {
            if ((batch = atoll(argv[++i])) < 1) return fail("--batch needs a number >= 1");
        } else if (!strcmp(a, "--threads") && v) {
            if ((threads = atoi(argv[++i])) < 1 || threads > 1024) return fail("--threads needs a number from 1 to 1024");
        } else if (!strcmp(a, "--iterations") && v) {
            if ((iterations = atoi(argv[++i])) < 1 || iterations > 10000000) return fail("--iterations needs a number >= 1");
        } else if (!strcmp(a, "--warmup") && v) {
            if ((warmup = atoi(argv[++i])) < 0) return fail("--warmup needs a number >= 0");
        } else if (!strcmp(a, "--profile")) {
            profile = true;
        } else if (!strcmp(a, "--no-optimize")) {
            no_optimize = true;
        } else if (a[0] == '-') {
            return fail("unknown or incomplete option '%s' (see celer bench --help)", a);
        } else if (!model_path) {
            model_path = a;
        } else {
            return fail("unexpected argument '%s'", a);
        }
    }
    if (!model_path) return fail("celer bench: no model given");
    celer_model_options opts = {.threads = threads, .no_optimize = no_optimize};
    celer_model *model;
    double t0 = now_ms();
    celer_status st = celer_model_load(model_path, &opts, &model);
    if (st) return fail_status(st);
    double load_ms = now_ms() - t0;
    int rc = 1, n_in = celer_model_input_count(model);
    celer_arena arena;
    celer_arena_init(&arena, 1 << 20, 0);
    celer_context *ctx = NULL;
    double *times = NULL;
    celer_tensor *inputs = celer_arena_alloc(&arena, sizeof(celer_tensor) * (size_t)(n_in + 1));
    if (!inputs) goto done;
    uint64_t seed = 42;
    for (int j = 0; j < n_in; j++) {
        const celer_io_desc *d = celer_model_input(model, j);
        int given = -1;
        for (int i = 0; i < n_given; i++)
            if (!strcmp(names[i], d->name)) given = i;
        if (given >= 0) {
            if ((st = celer_npy_read(files[given], &arena, &inputs[j]))) {
                fail_status(st);
                goto done;
            }
            continue;
        }
        /* random input: symbolic dims from --dim NAME=VALUE, else the first from --batch, else 1 */
        if (!d->has_shape || d->dtype == CELER_STRING) {
            fail("input '%s' has no known shape or is a string: pass --input %s=FILE.npy", d->name, d->name);
            goto done;
        }
        inputs[j].dtype = d->dtype;
        inputs[j].shape = d->shape;
        for (int r = 0; r < d->shape.rank; r++) {
            if (d->shape.dims[r] >= 0) continue;
            long long value = r == 0 ? batch : 1;
            for (int k = 0; k < n_dims; k++)
                if (d->dim_params && d->dim_params[r] && !strcmp(dim_names[k], d->dim_params[r])) value = dim_values[k];
            inputs[j].shape.dims[r] = value;
        }
        size_t bytes;
        if ((st = celer_tensor_bytes(&inputs[j], &bytes)) || !(inputs[j].data = celer_arena_alloc(&arena, bytes + 1))) {
            fail("input '%s': shape too large", d->name);
            goto done;
        }
        fill_random(&inputs[j], &seed);
    }
    if ((st = celer_context_init(model, &ctx))) {
        fail_status(st);
        goto done;
    }
    const celer_tensor *outputs;
    for (int i = 0; i < warmup; i++)
        if ((st = celer_context_run(ctx, inputs, &outputs))) {
            fail_status(st);
            goto done;
        }
    times = malloc(sizeof(double) * (size_t)iterations);
    if (!times) goto done;
    for (int i = 0; i < iterations; i++) {
        double s = now_ms();
        if ((st = celer_context_run(ctx, inputs, &outputs))) {
            fail_status(st);
            goto done;
        }
        times[i] = now_ms() - s;
    }
    qsort(times, (size_t)iterations, sizeof *times, cmp_double);
    double median = times[iterations / 2], p90 = times[(int)((iterations - 1) * 0.9)], min = times[0];
    double rss = peak_rss_mb();
    printf("model        %s\n", model_path);
    printf("load         %.1f ms\n", load_ms);
    printf("batch        %lld\nthreads      %d\niterations   %d (after %d warm-up runs)\n", batch, threads, iterations,
           warmup);
    printf("latency      median %.3f ms, p90 %.3f ms, min %.3f ms\n", median, p90, min);
    printf("throughput   %.1f runs/s (%.1f rows/s)\n", 1e3 / median, 1e3 / median * (double)batch);
    printf("peak RSS     %.1f MB\n", rss);
    char quoted[1024];
    size_t q = 0;
    for (const char *c = model_path; *c && q + 3 < sizeof quoted; c++) {
        if (*c == '"' || *c == '\\') quoted[q++] = '\\';
        quoted[q++] = (unsigned char)*c < 0x20 ? '?' : *c;
    }
    quoted[q] = 0;
    char ops_json[4096] = "";
    if (profile && bench_profile(ctx, inputs, iterations, ops_json, sizeof ops_json)) goto done;
    printf("{\"model\": \"%s\", \"batch\": %lld, \"threads\": %d, \"iterations\": %d, \"load_ms\": %.3f, "
           "\"median_ms\": %.4f, \"p90_ms\": %.4f, \"min_ms\": %.4f, \"throughput_per_s\": %.2f, \"peak_rss_mb\": %.1f, "
           "\"reference_convs\": %ld%s}\n",
           quoted, batch, threads, iterations, load_ms, median, p90, min, 1e3 / median * (double)batch, rss,
           celer_ops_reference_convs(), ops_json);
    rc = 0;
done:
    free(times);
    celer_context_free(ctx);
    celer_arena_free(&arena);
    celer_model_free(model);
    return rc;
}

/* ---- celer ops ---- */

static int cmd_ops(int argc, char **argv) {
    (void)argv;
    if (argc) return fail("usage: celer ops");
    int nf;
    const celer_kernel_family *const *fams = celer_ops_families(&nf);
    for (int f = 0; f < nf; f++)
        for (int i = 0; i < fams[f]->count; i++) {
            const celer_kernel *k = &fams[f]->kernels[i];
            printf("%s\t%s\t%d\t%d\t", fams[f]->name, k->domain[0] ? k->domain : "ai.onnx", k->since, k->until);
            printf("%s\t", k->op);
            int first = 1;
            for (int t = 1; t < CELER_DTYPE_COUNT; t++)
                if (k->type_input < 0 || (k->dtypes & CELER_DT(t))) {
                    if (k->type_input < 0) {
                        printf("any");
                        break;
                    }
                    printf("%s%s", first ? "" : ",", celer_dtype_name((celer_dtype)t));
                    first = 0;
                }
            printf("\n");
        }
    return 0;
}

/* ---- celer serve ---- */

static int cmd_serve(int argc, char **argv) {
    celer_server_options opts;
    celer_status st = celer_server_parse_args(argc, argv, &opts);
    if (st) return fail_status(st);
    return celer_server_run(&opts) ? 1 : 0;
}

static void serve_help(void) {
    int n;
    const celer_server_flag *f = celer_server_flags(&n);
    printf("\nflags (each also settable from its environment variable; flags win):\n");
    for (int i = 0; i < n; i++)
        printf("  --%-24s %s\n  %-26s env %s, default %s\n", f[i].name, f[i].help, "", f[i].env,
               f[i].dflt ? f[i].dflt : "(none)");
}

static const struct {
    const char *name;
    int (*fn)(int argc, char **argv);
    const char *usage;
    void (*help)(void); /* more than the usage line for --help; may be NULL */
} commands[] = {
    {"serve", cmd_serve, "serve --model-repository DIR [--http-port 8000] [flags]\n"
                         "      serves the models of DIR over HTTP (KServe v2 / Triton protocol)",
     serve_help},
    {"run", cmd_run, "run MODEL.onnx --input NAME=FILE.npy [--input ...] --output-dir DIR [--threads N]\n"
                     "      runs the model once and writes DIR/<output name>.npy for every output", NULL},
    {"inspect", cmd_inspect, "inspect MODEL.onnx\n"
                             "      inputs, outputs, opsets, operators, parameters, and what celer cannot run", NULL},
    {"bench", cmd_bench, "bench MODEL.onnx [--input NAME=FILE.npy ...] [--batch N] [--dim NAME=VALUE ...] [--threads N]\n"
                         "            [--iterations N] [--warmup N] [--profile] [--no-optimize]\n"
                         "      runs the model repeatedly (random inputs where none are given; symbolic dims from --dim,\n"
                         "      else the first from --batch) and prints latency, throughput and peak memory; the last\n"
                         "      line is JSON. --profile adds time per operator type (from separate runs);\n"
                         "      --no-optimize runs the graph without fusions (as CELER_OPTIMIZE=0 does)", NULL},
    {"ops", cmd_ops, "ops\n      the kernel table: family, domain, versions, operator, types (tab-separated)", NULL},
};

static int usage(FILE *f) {
    fprintf(f, "celer %s: machine-learning inference\n\nusage:\n", "0.1.0");
    for (size_t i = 0; i < CELER_ARRAY_LEN(commands); i++) fprintf(f, "  celer %s\n", commands[i].usage);
    return f == stderr ? 2 : 0;
}

/* Compute threads spin briefly between the parallel regions of one inference, then sleep
 * (docs/engine.md, Threads). libgomp (oneDNN's and celer's own threads) and OpenBLAS read their
 * wait policies once, when they are loaded, before main runs: so when the environment does not
 * choose, celer chooses and starts itself again, once. GOMP_SPINCOUNT bounds libgomp's spin (about
 * 3 ms, then the workers sleep: an idle server burns no CPU), and when more OpenMP threads exist
 * than CPUs libgomp spins far less on its own; OPENBLAS_THREAD_TIMEOUT=4 is OpenBLAS's shortest
 * wait. An explicit setting is kept (OMP_WAIT_POLICY=PASSIVE sleeps at once). */
static void own_thread_policy(char **argv) {
    static const struct { const char *name, *value, *unless; } policy[] = {
        {"GOMP_SPINCOUNT", "300000", "OMP_WAIT_POLICY"},
        {"OPENBLAS_THREAD_TIMEOUT", "4", NULL}, /* 2^4 cycles */
    };
    if (getenv("CELER_THREAD_POLICY_SET")) return;
    bool changed = false;
    for (size_t i = 0; i < CELER_ARRAY_LEN(policy); i++)
        if (!getenv(policy[i].name) && !(policy[i].unless && getenv(policy[i].unless))) {
            setenv(policy[i].name, policy[i].value, 0);
            changed = true;
        }
    setenv("CELER_THREAD_POLICY_SET", "1", 1);
    if (changed) execv("/proc/self/exe", argv); /* on failure: go on as we are */
}

int main(int argc, char **argv) {
    own_thread_policy(argv);
    if (argc < 2) return usage(stderr);
    if (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h") || !strcmp(argv[1], "help")) return usage(stdout);
    if (!strcmp(argv[1], "--version")) {
        printf("celer 0.1.0\n");
        return 0;
    }
    for (size_t i = 0; i < CELER_ARRAY_LEN(commands); i++)
        if (!strcmp(argv[1], commands[i].name)) {
            for (int a = 2; a < argc; a++)
                if (!strcmp(argv[a], "--help") || !strcmp(argv[a], "-h")) {
                    printf("usage: celer %s\n", commands[i].usage);
                    if (commands[i].help) commands[i].help();
                    return 0;
                }
            return commands[i].fn(argc - 2, argv + 2);
        }
    fprintf(stderr, "celer: error: unknown command '%s'\n", argv[1]);
    return usage(stderr);
}
