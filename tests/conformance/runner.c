/* ONNX conformance runner over Debian's libonnx-testdata.
 *
 * Each case (<data>/<folder>/<case>/model.onnx with test_data_set_N/{input,output}_K.pb) runs in a
 * child process, so a crash is one FAIL line, not the end of the run. Prints one line per case and
 * a summary per folder; exits 1 when any case of the must-pass manifest does not pass. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "runtime/runtime.h"

static const char *const folders[] = {"node", "pytorch-converted", "pytorch-operator", "simple"};

enum outcome { PASS, FAIL, UNSUPPORTED, CRASH, TIMEOUT, N_OUTCOMES };
static const char *const outcome_names[N_OUTCOMES] = {"PASS", "FAIL", "UNSUPPORTED", "CRASH", "TIMEOUT"};

#define MAX_CASES 4096
#define MAX_IO 64
#define MSG_CAP 600

typedef struct {
    char name[256]; /* folder/case */
    enum outcome outcome;
    char msg[MSG_CAP];
} case_result;

static int cmp_str(const void *a, const void *b) { return strcmp(*(char *const *)a, *(char *const *)b); }

/* ---- child side ---- */

static celer_status read_pb(const char *path, celer_arena *arena, celer_tensor *t) {
    int fd = open(path, O_RDONLY);
    if (fd < 0) return celer_errorf(CELER_ERR_IO, "%s: %s", path, strerror(errno));
    struct stat st;
    fstat(fd, &st);
    void *p = st.st_size ? mmap(NULL, (size_t)st.st_size, PROT_READ, MAP_PRIVATE, fd, 0) : NULL;
    close(fd);
    if (st.st_size && p == MAP_FAILED) return celer_errorf(CELER_ERR_IO, "%s: cannot map", path);
    celer_status s = celer_onnx_parse_tensor(p ? p : "", (size_t)st.st_size, arena, t, NULL);
    if (p) munmap(p, (size_t)st.st_size);
    if (s) return celer_error_wrap(s, "%s", path);
    return CELER_OK;
}

static double tolerance_rtol(celer_dtype t) {
    switch (t) {
    case CELER_FLOAT16: return 4e-3;
    case CELER_BFLOAT16: return 2e-2;
    default: return 1e-3;
    }
}

/* Compares got with want: exact for integers, bools and strings; |a-b| <= atol + rtol*|b| for
 * floats, NaN equal to NaN, infinities equal only to themselves. */
static int compare(const char *name, const celer_tensor *got, const celer_tensor *want, char *msg) {
    char a[160], b[160];
    if (got->dtype != want->dtype) {
        snprintf(msg, MSG_CAP, "output %s: type %s, expected %s", name, celer_dtype_name(got->dtype),
                 celer_dtype_name(want->dtype));
        return 1;
    }
    if (!celer_shape_equal(&got->shape, &want->shape)) {
        snprintf(msg, MSG_CAP, "output %s: shape %s, expected %s", name, celer_shape_str(&got->shape, a, sizeof a),
                 celer_shape_str(&want->shape, b, sizeof b));
        return 1;
    }
    int64_t n = celer_shape_numel(&want->shape);
    const celer_dtype t = want->dtype;
    for (int64_t i = 0; i < n; i++) {
        int bad = 0;
        double x = 0, y = 0;
        if (t == CELER_STRING) {
            celer_str s1 = ((const celer_str *)got->data)[i], s2 = ((const celer_str *)want->data)[i];
            if (!celer_str_eq(s1, s2)) {
                snprintf(msg, MSG_CAP, "output %s[%lld]: \"%.*s\" (%zu bytes), expected \"%.*s\" (%zu bytes)", name,
                         (long long)i, (int)CELER_MIN(s1.len, 60), s1.data ? s1.data : "", s1.len,
                         (int)CELER_MIN(s2.len, 60), s2.data ? s2.data : "", s2.len);
                return 1;
            }
            continue;
        }
        if (t == CELER_FLOAT || t == CELER_DOUBLE || t == CELER_FLOAT16 || t == CELER_BFLOAT16) {
            if (t == CELER_FLOAT) {
                x = ((const float *)got->data)[i];
                y = ((const float *)want->data)[i];
            } else if (t == CELER_DOUBLE) {
                x = ((const double *)got->data)[i];
                y = ((const double *)want->data)[i];
            } else if (t == CELER_FLOAT16) {
                x = celer_half_to_float(((const uint16_t *)got->data)[i]);
                y = celer_half_to_float(((const uint16_t *)want->data)[i]);
            } else {
                x = celer_bf16_to_float(((const uint16_t *)got->data)[i]);
                y = celer_bf16_to_float(((const uint16_t *)want->data)[i]);
            }
            if (isnan(y))
                bad = !isnan(x);
            else if (isinf(y))
                bad = x != y;
            else
                bad = !(fabs(x - y) <= 1e-6 + tolerance_rtol(t) * fabs(y));
        } else {
            size_t es = celer_dtype_size(t);
            bad = memcmp((const char *)got->data + (size_t)i * es, (const char *)want->data + (size_t)i * es, es) != 0;
        }
        if (bad) {
            if (t == CELER_FLOAT || t == CELER_DOUBLE || t == CELER_FLOAT16 || t == CELER_BFLOAT16)
                snprintf(msg, MSG_CAP, "output %s[%lld] = %.9g, expected %.9g", name, (long long)i, x, y);
            else
                snprintf(msg, MSG_CAP, "output %s: element %lld differs", name, (long long)i);
            return 1;
        }
    }
    return 0;
}

static int count_files(const char *dir, const char *prefix) {
    int n = 0;
    char path[4608];
    for (;; n++) {
        snprintf(path, sizeof path, "%s/%s_%d.pb", dir, prefix, n);
        if (access(path, R_OK)) return n;
    }
}

/* Runs one case; writes a one-line message to `out_fd`; returns the exit code (an outcome). */
/* --constant-inputs: every graph input but the first becomes an initializer holding
 * test_data_set_0's value, so that the graph passes which need constant weights (fusions, BN
 * folding, weight packing) run on every case. The model keeps its other inputs' data in arena. */
static celer_status load_constant_inputs(const char *dir, celer_arena *arena, celer_model **out) {
    char path[4608];
    snprintf(path, sizeof path, "%s/model.onnx", dir);
    celer_onnx_model *onnx;
    celer_status st = celer_onnx_load(path, &onnx);
    if (st) return st;
    const celer_onnx_graph *g = onnx->graph;
    celer_onnx_graph *ng = celer_arena_alloc(arena, sizeof *ng);
    celer_onnx_named_tensor *inits =
        celer_arena_alloc(arena, sizeof *inits * (size_t)(g->n_initializers + g->n_inputs + 1));
    if (!ng || !inits) {
        celer_onnx_free(onnx);
        return CELER_ERR_NOMEM;
    }
    *ng = *g;
    memcpy(inits, g->initializers, sizeof *inits * (size_t)g->n_initializers);
    int n = g->n_initializers, data_input = 0;
    for (int i = 0; i < g->n_inputs; i++) {
        bool has_init = false;
        for (int j = 0; j < g->n_initializers && !has_init; j++)
            has_init = !strcmp(g->initializers[j].name, g->inputs[i].name);
        if (has_init) continue;
        if (data_input++ == 0) continue; /* the first stays an input */
        snprintf(path, sizeof path, "%s/test_data_set_0/input_%d.pb", dir, data_input - 1);
        inits[n].name = g->inputs[i].name;
        if ((st = read_pb(path, arena, &inits[n].tensor))) {
            celer_onnx_free(onnx);
            return st;
        }
        n++;
    }
    ng->initializers = inits;
    ng->n_initializers = n;
    onnx->graph = ng;
    return celer_model_compile(onnx, NULL, out);
}

static int run_case(const char *dir, bool constant_inputs, int out_fd) {
    char path[4608], msg[MSG_CAP] = "";
    int rc = PASS;
    celer_model *model = NULL;
    celer_context *ctx = NULL;
    celer_arena arena;
    celer_arena_init(&arena, 1 << 20, 0);
    snprintf(path, sizeof path, "%s/model.onnx", dir);
    celer_status st = constant_inputs ? load_constant_inputs(dir, &arena, &model) : celer_model_load(path, NULL, &model);
    if (st) {
        snprintf(msg, sizeof msg, "%s", celer_error_message());
        rc = st == CELER_ERR_UNSUPPORTED ? UNSUPPORTED : FAIL;
        goto out;
    }
    if ((st = celer_context_init(model, &ctx))) {
        snprintf(msg, sizeof msg, "%s", celer_error_message());
        rc = FAIL;
        goto out;
    }
    /* test_data_set_0, 1, ... */
    char *sets[64];
    int n_sets = 0;
    DIR *d = opendir(dir);
    struct dirent *e;
    while (d && (e = readdir(d)) && n_sets < 64)
        if (!strncmp(e->d_name, "test_data_set_", 14)) sets[n_sets++] = strdup(e->d_name);
    if (d) closedir(d);
    qsort(sets, (size_t)n_sets, sizeof *sets, cmp_str);
    if (constant_inputs && n_sets > 1) n_sets = 1; /* the constants came from set 0 */
    for (int s = 0; s < n_sets && rc == PASS; s++) {
        char set_dir[4400];
        snprintf(set_dir, sizeof set_dir, "%s/%s", dir, sets[s]);
        int n_in = count_files(set_dir, "input"), n_out = count_files(set_dir, "output");
        int want_in = celer_model_input_count(model);
        if (constant_inputs && n_in > 1) n_in = 1;
        if (n_in != want_in || n_in > MAX_IO || n_out > MAX_IO) {
            snprintf(msg, sizeof msg, "%s: %d input files for %d model inputs", sets[s], n_in, want_in);
            rc = FAIL;
            break;
        }
        celer_tensor inputs[MAX_IO], expected[MAX_IO];
        for (int i = 0; i < n_in && rc == PASS; i++) {
            snprintf(path, sizeof path, "%s/input_%d.pb", set_dir, i);
            if (read_pb(path, &arena, &inputs[i])) {
                snprintf(msg, sizeof msg, "%s", celer_error_message());
                rc = UNSUPPORTED;
            }
        }
        for (int i = 0; i < n_out && rc == PASS; i++) {
            snprintf(path, sizeof path, "%s/output_%d.pb", set_dir, i);
            if (read_pb(path, &arena, &expected[i])) {
                snprintf(msg, sizeof msg, "%s", celer_error_message());
                rc = UNSUPPORTED;
            }
        }
        if (rc != PASS) break;
        /* ONNX 1.12's test data stores bfloat16 tensors as uint16 arrays: take them as declared */
        for (int i = 0; i < n_in; i++)
            if (inputs[i].dtype == CELER_UINT16 && celer_model_input(model, i)->dtype == CELER_BFLOAT16)
                inputs[i].dtype = CELER_BFLOAT16;
        for (int i = 0; i < n_out && i < celer_model_output_count(model); i++)
            if (expected[i].dtype == CELER_UINT16 && celer_model_output(model, i)->dtype == CELER_BFLOAT16)
                expected[i].dtype = CELER_BFLOAT16;
        const celer_tensor *outputs;
        if ((st = celer_context_run(ctx, inputs, &outputs))) {
            snprintf(msg, sizeof msg, "%s", celer_error_message());
            rc = st == CELER_ERR_UNSUPPORTED ? UNSUPPORTED : FAIL;
            break;
        }
        if (n_out != celer_model_output_count(model)) {
            snprintf(msg, sizeof msg, "%d expected outputs for %d model outputs", n_out, celer_model_output_count(model));
            rc = FAIL;
            break;
        }
        for (int i = 0; i < n_out && rc == PASS; i++)
            if (compare(celer_model_output(model, i)->name, &outputs[i], &expected[i], msg)) rc = FAIL;
    }
    for (int s = 0; s < n_sets; s++) free(sets[s]);
out:
    celer_context_free(ctx);
    celer_model_free(model);
    celer_arena_free(&arena);
    for (char *p = msg; *p; p++)
        if (*p == '\n') *p = ' ';
    if (write(out_fd, msg, strlen(msg)) < 0) rc = FAIL;
    return rc;
}

/* ---- parent side ---- */

/* The distinct operator types of a case's model, comma-separated (for the report). */
static void case_ops(const char *data, const char *name, char *out, size_t cap) {
    char path[4096];
    snprintf(path, sizeof path, "%s/%s/model.onnx", data, name);
    out[0] = 0;
    celer_onnx_model *m;
    if (celer_onnx_load(path, &m)) return;
    size_t len = 0;
    for (int i = 0; i < m->graph->n_nodes; i++) {
        const celer_onnx_node *node = &m->graph->nodes[i];
        int dup = 0;
        for (int j = 0; j < i && !dup; j++) dup = !strcmp(m->graph->nodes[j].op_type, node->op_type);
        if (!dup && len + strlen(node->op_type) + 2 < cap)
            len += (size_t)snprintf(out + len, cap - len, "%s%s", len ? "," : "", node->op_type);
    }
    celer_onnx_free(m);
}

static int load_manifest(const char *path, char ***out) {
    FILE *f = fopen(path, "r");
    if (!f) return -1;
    char line[512];
    int n = 0, cap = 256;
    char **v = malloc(sizeof(char *) * (size_t)cap);
    while (v && fgets(line, sizeof line, f)) {
        char *s = line;
        while (*s == ' ' || *s == '\t') s++;
        s[strcspn(s, " \t\r\n#")] = 0;
        if (!*s) continue;
        if (n == cap) {
            cap *= 2;
            char **nv = realloc(v, sizeof(char *) * (size_t)cap);
            if (!nv) break;
            v = nv;
        }
        v[n++] = strdup(s);
    }
    fclose(f);
    *out = v;
    return n;
}

static int usage(void) {
    fprintf(stderr,
            "usage: celer_conformance --data DIR [--manifest FILE] [--report FILE] [--write-manifest FILE]\n"
            "                         [--case FOLDER/CASE]... [--filter SUBSTRING] [--jobs N] [--timeout S] [--quiet]\n"
            "                         [--constant-inputs]\n"
            "  runs every case of DIR/{node,pytorch-converted,pytorch-operator,simple} (or the given ones),\n"
            "  each in a child process; fails when a case of the manifest does not pass.\n"
            "  --constant-inputs: inputs after the first become initializers (data set 0), so the graph\n"
            "  optimizations that need constant weights run on every case\n");
    return 2;
}

int main(int argc, char **argv) {
    const char *data = NULL, *manifest = NULL, *report = NULL, *write_manifest = NULL, *filter = NULL;
    const char *only[256];
    int n_only = 0, timeout_s = 60, quiet = 0, jobs = 2;
    bool constant_inputs = false;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        const char *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (!strcmp(a, "--data") && v) data = argv[++i];
        else if (!strcmp(a, "--manifest") && v) manifest = argv[++i];
        else if (!strcmp(a, "--report") && v) report = argv[++i];
        else if (!strcmp(a, "--write-manifest") && v) write_manifest = argv[++i];
        else if (!strcmp(a, "--filter") && v) filter = argv[++i];
        else if (!strcmp(a, "--case") && v && n_only < 256) only[n_only++] = argv[++i];
        else if (!strcmp(a, "--timeout") && v) timeout_s = atoi(argv[++i]);
        else if (!strcmp(a, "--jobs") && v) jobs = atoi(argv[++i]);
        else if (!strcmp(a, "--quiet")) quiet = 1;
        else if (!strcmp(a, "--constant-inputs")) constant_inputs = true;
        else return usage();
    }
    if (!data) return usage();
    if (jobs < 1) jobs = 1;

    case_result *cases = calloc(MAX_CASES, sizeof *cases);
    if (!cases) return 2;
    int n = 0;
    if (n_only) {
        for (int i = 0; i < n_only; i++) snprintf(cases[n++].name, sizeof cases[0].name, "%s", only[i]);
    } else {
        for (size_t f = 0; f < sizeof folders / sizeof *folders; f++) {
            char dir[4096];
            snprintf(dir, sizeof dir, "%s/%s", data, folders[f]);
            DIR *d = opendir(dir);
            if (!d) continue;
            char *names[MAX_CASES];
            int k = 0;
            struct dirent *e;
            while ((e = readdir(d)) && k < MAX_CASES)
                if (e->d_name[0] != '.') names[k++] = strdup(e->d_name);
            closedir(d);
            qsort(names, (size_t)k, sizeof *names, cmp_str);
            for (int i = 0; i < k; i++) {
                char model[8192];
                snprintf(model, sizeof model, "%s/%s/model.onnx", dir, names[i]);
                if (!access(model, R_OK) && n < MAX_CASES && (!filter || strstr(names[i], filter)))
                    snprintf(cases[n++].name, sizeof cases[0].name, "%s/%s", folders[f], names[i]);
                free(names[i]);
            }
        }
    }

    /* a small pool of children: at most `jobs` cases run at once */
    int next = 0, running = 0;
    pid_t pids[64] = {0};
    int slot_case[64], slot_fd[64];
    size_t slot_len[64];
    if (jobs > 64) jobs = 64;
    while (next < n || running) {
        while (running < jobs && next < n) {
            int s = 0;
            while (pids[s]) s++;
            int fds[2];
            if (pipe(fds)) break;
            char dir[4096];
            snprintf(dir, sizeof dir, "%s/%s", data, cases[next].name);
            fflush(stdout);
            pid_t pid = fork();
            if (pid == 0) {
                close(fds[0]);
                alarm((unsigned)timeout_s);
                _exit(run_case(dir, constant_inputs, fds[1]));
            }
            close(fds[1]);
            pids[s] = pid;
            slot_case[s] = next++;
            slot_fd[s] = fds[0];
            slot_len[s] = 0;
            running++;
        }
        int status;
        pid_t pid = wait(&status);
        if (pid < 0) break;
        int s = 0;
        while (s < 64 && pids[s] != pid) s++;
        if (s == 64) continue;
        case_result *r = &cases[slot_case[s]];
        ssize_t got;
        while (slot_len[s] < MSG_CAP - 1 &&
               (got = read(slot_fd[s], r->msg + slot_len[s], MSG_CAP - 1 - slot_len[s])) > 0)
            slot_len[s] += (size_t)got;
        r->msg[slot_len[s]] = 0;
        close(slot_fd[s]);
        if (WIFEXITED(status) && WEXITSTATUS(status) < N_OUTCOMES) {
            r->outcome = (enum outcome)WEXITSTATUS(status);
        } else if (WIFSIGNALED(status) && WTERMSIG(status) == SIGALRM) {
            r->outcome = TIMEOUT;
            snprintf(r->msg, MSG_CAP, "took longer than %d s", timeout_s);
        } else {
            r->outcome = CRASH;
            snprintf(r->msg, MSG_CAP, "child died: %s",
                     WIFSIGNALED(status) ? strsignal(WTERMSIG(status)) : "unexpected exit code");
        }
        pids[s] = 0;
        running--;
        if (!quiet || r->outcome != PASS)
            printf("%-11s %s%s%s\n", outcome_names[r->outcome], r->name, r->msg[0] ? ": " : "", r->msg);
    }

    /* summary per folder */
    int total_pass = 0;
    for (size_t f = 0; f < sizeof folders / sizeof *folders; f++) {
        int counts[N_OUTCOMES] = {0}, all = 0;
        size_t len = strlen(folders[f]);
        for (int i = 0; i < n; i++)
            if (!strncmp(cases[i].name, folders[f], len) && cases[i].name[len] == '/') {
                counts[cases[i].outcome]++;
                all++;
            }
        if (!all) continue;
        total_pass += counts[PASS];
        printf("summary %-18s %4d/%4d passed (%.1f%%), %d failed, %d unsupported, %d crashed, %d timed out\n",
               folders[f], counts[PASS], all, 100.0 * counts[PASS] / all, counts[FAIL], counts[UNSUPPORTED],
               counts[CRASH], counts[TIMEOUT]);
    }

    if (report) {
        FILE *f = fopen(report, "w");
        if (f) {
            for (int i = 0; i < n; i++) {
                char ops[1024];
                case_ops(data, cases[i].name, ops, sizeof ops);
                fprintf(f, "%s\t%s\t%s\t%s\n", outcome_names[cases[i].outcome], cases[i].name, ops, cases[i].msg);
            }
            fclose(f);
        }
    }

    int rc = 0;
    char **must = NULL;
    int n_must = manifest ? load_manifest(manifest, &must) : 0;
    if (manifest && n_must < 0) {
        fprintf(stderr, "cannot read manifest %s\n", manifest);
        rc = 1;
        n_must = 0;
    }
    int must_failed = 0, must_checked = 0;
    for (int m = 0; m < n_must; m++) {
        int found = 0;
        for (int i = 0; i < n && !found; i++)
            if (!strcmp(cases[i].name, must[m])) {
                found = 1;
                must_checked++;
                if (cases[i].outcome != PASS) {
                    printf("MANIFEST FAILURE: %s (%s)\n", must[m], outcome_names[cases[i].outcome]);
                    must_failed++;
                }
            }
        if (!found && !n_only && !filter) {
            printf("MANIFEST FAILURE: %s (case not found)\n", must[m]);
            must_failed++;
        }
    }
    if (manifest) {
        printf("manifest: %d of %d must-pass cases checked, %d failed\n", must_checked, n_must, must_failed);
        if (must_failed) rc = 1;
    }
    if (write_manifest) {
        FILE *f = fopen(write_manifest, "w");
        if (f) {
            fprintf(f, "# ONNX conformance cases that must pass (Debian libonnx-testdata). Only grows.\n");
            for (int i = 0; i < n; i++)
                if (cases[i].outcome == PASS) fprintf(f, "%s\n", cases[i].name);
            /* keep manifest entries this run did not see */
            for (int m = 0; m < n_must; m++) {
                int seen = 0;
                for (int i = 0; i < n && !seen; i++) seen = !strcmp(cases[i].name, must[m]);
                if (!seen) fprintf(f, "%s\n", must[m]);
            }
            fclose(f);
        }
    }
    printf("conformance: %d of %d cases passed\n", total_pass, n);
    for (int m = 0; m < n_must; m++) free(must[m]);
    free(must);
    free(cases);
    return rc;
}
