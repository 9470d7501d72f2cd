#include "testutil.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include <png.h>

celer_status tu_run_op(const celer_onnx_node *node, int opset, const celer_tensor *const *in,
                       int n_in, celer_tensor *out, int n_out) {
    celer_dtype types[16] = {0}, out_types[16] = {0};
    const celer_tensor *consts[16] = {0};
    for (int i = 0; i < n_in && i < 16; i++) types[i] = in[i] ? in[i]->dtype : CELER_UNDEFINED;
    celer_op_info info = {.node = node, .opset = opset, .n_inputs = n_in, .n_outputs = n_out,
                          .input_types = types, .input_constants = consts};
    const celer_kernel *k = celer_ops_find(node->domain, node->op_type, opset, types, n_in);
    if (!k) return CELER_ERR_UNSUPPORTED;
    info.since_version = k->since;
    celer_status st;
    if (k->infer_types) {
        if ((st = k->infer_types(&info, out_types))) return st;
    } else {
        for (int i = 0; i < n_out; i++) out_types[i] = types[k->type_input];
    }
    void *state = NULL, *local = NULL;
    if (k->init && (st = k->init(&info, &state))) goto done;
    for (int i = 0; i < n_out; i++) {
        memset(&out[i], 0, sizeof out[i]);
        out[i].dtype = out_types[i];
    }
    celer_kernel_call call = {.info = &info, .state = state, .local = &local, .in = in,
                              .n_in = n_in, .out = out, .n_out = n_out};
    if ((st = k->reshape(&call))) goto done;
    for (int i = 0; i < n_out; i++) {
        size_t bytes = 0;
        if ((st = celer_tensor_bytes(&out[i], &bytes))) goto done;
        out[i].data = calloc(1, bytes ? bytes : 1);
    }
    if (k->flags & CELER_KERNEL_ALIAS) {
        size_t bytes = 0;
        celer_tensor_bytes(&out[0], &bytes);
        if (bytes) memcpy(out[0].data, in[0]->data, bytes);
    } else {
        call.scratch = call.scratch_size ? aligned_alloc(64, (call.scratch_size + 63) & ~(size_t)63) : NULL;
        st = k->run(&call);
        free(call.scratch);
    }
done:
    if (k->free_local && local) k->free_local(local);
    if (k->free_state && state) k->free_state(state);
    return st;
}

void tu_free_outputs(celer_tensor *out, int n_out) {
    for (int i = 0; i < n_out; i++) {
        free(out[i].data);
        out[i].data = NULL;
    }
}

void tu_fill_random(float *p, size_t n, float lo, float hi, uint64_t *seed) {
    for (size_t i = 0; i < n; i++) {
        uint64_t x = *seed;
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        *seed = x;
        p[i] = lo + (hi - lo) * (float)((x >> 11) * (1.0 / 9007199254740992.0));
    }
}

double tu_max_rel_diff(const float *a, const float *b, size_t n) {
    double maxdiff = 0, maxref = 1e-30;
    for (size_t i = 0; i < n; i++) {
        double d = fabs((double)a[i] - (double)b[i]);
        if (d > maxdiff || isnan(d)) maxdiff = isnan(d) ? INFINITY : d;
        if (fabs((double)b[i]) > maxref) maxref = fabs((double)b[i]);
    }
    return maxdiff / maxref;
}

/* Arrays made by tu_strs, freed at exit so leak checkers stay quiet. */
static celer_str **made_strs;
static size_t n_made_strs;

static void free_made_strs(void) {
    for (size_t i = 0; i < n_made_strs; i++) free(made_strs[i]);
    free(made_strs);
}

celer_str *tu_strs(const char *const *v, size_t n) {
    celer_str **grown = realloc(made_strs, sizeof *grown * (n_made_strs + 1));
    celer_str *s = malloc(sizeof *s * (n ? n : 1));
    assert_non_null(grown);
    assert_non_null(s);
    if (!made_strs) atexit(free_made_strs);
    made_strs = grown;
    made_strs[n_made_strs++] = s;
    for (size_t i = 0; i < n; i++) s[i] = celer_str_c(v[i]);
    return s;
}

uint8_t *tu_png(int w, int h, uint32_t format, const uint8_t *pixels, size_t *len) {
    png_image im;
    memset(&im, 0, sizeof im);
    im.version = PNG_IMAGE_VERSION;
    im.width = (png_uint_32)w;
    im.height = (png_uint_32)h;
    im.format = format;
    png_alloc_size_t size = 0;
    assert_true(png_image_write_to_memory(&im, NULL, &size, 0, pixels, 0, NULL));
    uint8_t *buf = malloc(size);
    assert_true(png_image_write_to_memory(&im, buf, &size, 0, pixels, 0, NULL));
    *len = size;
    return buf;
}
