/* Conv / ConvTranspose / ConvInteger: the oneDNN kernels against the reference loops on random
 * shapes, plus hand-checked cases for geometry (auto_pad, output_shape) and error paths. */
#include <math.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "ops/reference.h"
#include "testutil.h"

/* ---- a tiny node builder ---- */
typedef struct {
    celer_onnx_attr attrs[12];
    int n;
    int64_t store[12][16];
} attrs_t;

static void a_ints(attrs_t *a, const char *name, int n, const int64_t *v) {
    memcpy(a->store[a->n], v, (size_t)n * sizeof *v);
    a->attrs[a->n] = (celer_onnx_attr){.name = name, .type = CELER_ATTR_INTS, .n = n,
                                       .ints = a->store[a->n]};
    a->n++;
}
static void a_int(attrs_t *a, const char *name, int64_t v) {
    a->attrs[a->n++] = (celer_onnx_attr){.name = name, .type = CELER_ATTR_INT, .i = v};
}
static void a_str(attrs_t *a, const char *name, const char *s) {
    a->attrs[a->n++] = (celer_onnx_attr){.name = name, .type = CELER_ATTR_STRING, .s = s,
                                         .s_len = strlen(s)};
}
static celer_onnx_node make_node(const char *op, attrs_t *a, int n_in, int n_out) {
    static const char *const names[] = {"x", "w", "b", "d"};
    static const char *const outs[] = {"y"};
    return (celer_onnx_node){.name = "n", .op_type = op, .domain = "", .n_inputs = n_in,
                             .n_outputs = n_out, .n_attrs = a->n, .inputs = names,
                             .outputs = outs, .attrs = a->attrs};
}

static celer_tensor make_f32(int rank, const int64_t *dims, uint64_t *seed) {
    celer_tensor t = {.dtype = CELER_FLOAT, .shape = {.rank = rank}};
    memcpy(t.shape.dims, dims, (size_t)rank * sizeof *dims);
    size_t n = (size_t)celer_shape_numel(&t.shape);
    t.data = malloc(n ? n * 4 : 4);
    tu_fill_random(t.data, n, -1, 1, seed);
    return t;
}

static celer_tensor to_f64(const celer_tensor *t) {
    celer_tensor d = *t;
    d.dtype = CELER_DOUBLE;
    size_t n = (size_t)celer_shape_numel(&t->shape);
    d.data = malloc(n ? n * 8 : 8);
    for (size_t i = 0; i < n; i++) ((double *)d.data)[i] = ((float *)t->data)[i];
    return d;
}

typedef struct {
    int nsp;
    int64_t n, c, m, group;
    int64_t in[3], k[3], stride[3], dil[3], pads[6];
    const char *auto_pad; /* NULL: explicit pads */
    bool bias;
} conv_case;

/* Runs the case through the kernel table (float: oneDNN; double: reference) and compares with
 * the reference kernel on the geometry computed for it. */
static void check_conv(const conv_case *cc, bool transpose, uint64_t *seed) {
    attrs_t a = {0};
    int nsp = cc->nsp;
    a_ints(&a, "strides", nsp, cc->stride);
    a_ints(&a, "dilations", nsp, cc->dil);
    if (cc->auto_pad) a_str(&a, "auto_pad", cc->auto_pad);
    else a_ints(&a, "pads", 2 * nsp, cc->pads);
    a_int(&a, "group", cc->group);
    a_ints(&a, "kernel_shape", nsp, cc->k);
    celer_onnx_node node = make_node(transpose ? "ConvTranspose" : "Conv", &a, cc->bias ? 3 : 2, 1);

    int64_t xd[5] = {cc->n, cc->c}, wd[5], bd[1] = {cc->m};
    if (transpose) {
        wd[0] = cc->c;
        wd[1] = cc->m / cc->group;
    } else {
        wd[0] = cc->m;
        wd[1] = cc->c / cc->group;
    }
    for (int i = 0; i < nsp; i++) {
        xd[2 + i] = cc->in[i];
        wd[2 + i] = cc->k[i];
    }
    celer_tensor x = make_f32(nsp + 2, xd, seed), w = make_f32(nsp + 2, wd, seed),
                 b = make_f32(1, bd, seed);
    const celer_tensor *in[3] = {&x, &w, &b};
    celer_tensor out[1];
    celer_status st = tu_run_op(&node, 13, in, cc->bias ? 3 : 2, out, 1);
    assert_int_equal(st, CELER_OK);

    /* reference on the same geometry */
    celer_op_info info = {.node = &node, .opset = 13};
    celer_win_attrs wa;
    assert_int_equal(celer_win_attrs_parse(&info, &wa), CELER_OK);
    celer_conv_geom g;
    celer_shape ys;
    assert_int_equal(celer_conv_geom_make("t", &wa, &x.shape, &w.shape, transpose, &g, &ys), CELER_OK);
    assert_true(celer_shape_equal(&ys, &out[0].shape));
    size_t ny = (size_t)celer_shape_numel(&ys);
    float *ref = malloc(ny ? ny * 4 : 4);
    if (transpose)
        celer_ref_conv_transpose_f32(&g, x.data, w.data, cc->bias ? b.data : NULL, ref);
    else
        celer_ref_conv_f32(&g, x.data, w.data, cc->bias ? b.data : NULL, ref);
    double err = tu_max_rel_diff(out[0].data, ref, ny);
    if (err > 1e-4) {
        char buf[64];
        print_error("%s nsp=%d out=%s err=%g\n", node.op_type, nsp,
                    celer_shape_str(&ys, buf, sizeof buf), err);
    }
    assert_true(err <= 1e-4);

    /* the double path (reference loops) must agree as well */
    celer_tensor xd64 = to_f64(&x), wd64 = to_f64(&w), bd64 = to_f64(&b);
    const celer_tensor *in64[3] = {&xd64, &wd64, &bd64};
    celer_tensor out64[1];
    assert_int_equal(tu_run_op(&node, 13, in64, cc->bias ? 3 : 2, out64, 1), CELER_OK);
    for (size_t i = 0; i < ny; i++)
        assert_true(fabs(((double *)out64[0].data)[i] - ref[i]) <= 1e-4 * (1 + fabs(ref[i])));

    tu_free_outputs(out, 1);
    tu_free_outputs(out64, 1);
    free(ref);
    free(x.data), free(w.data), free(b.data), free(xd64.data), free(wd64.data), free(bd64.data);
}

static int64_t rnd(uint64_t *seed, int64_t lo, int64_t hi) {
    float f;
    tu_fill_random(&f, 1, 0, 1, seed);
    int64_t v = lo + (int64_t)(f * (float)(hi - lo + 1));
    return v > hi ? hi : v;
}

static const char *const pad_modes[] = {NULL, "SAME_UPPER", "SAME_LOWER", "VALID", NULL};

/* Random shapes: 1-D/2-D/3-D, strides, dilations, asymmetric pads, auto_pad, groups
 * (including depthwise), bias on and off. */
static void random_cases(bool transpose) {
    uint64_t seed = transpose ? 0x1234567u : 0x9876543u;
    for (int it = 0; it < 60; it++) {
        conv_case cc = {0};
        cc.nsp = 1 + it % 3;
        cc.n = rnd(&seed, 1, 2);
        int kind = (int)rnd(&seed, 0, 2); /* 0 plain, 1 grouped, 2 depthwise */
        cc.group = kind == 0 ? 1 : kind == 1 ? rnd(&seed, 2, 3) : rnd(&seed, 2, 5);
        cc.c = cc.group * (kind == 2 ? 1 : rnd(&seed, 1, 3));
        cc.m = cc.group * rnd(&seed, 1, 3);
        for (int i = 0; i < cc.nsp; i++) {
            cc.k[i] = rnd(&seed, 1, 3);
            cc.stride[i] = rnd(&seed, 1, 3);
            cc.dil[i] = rnd(&seed, 1, 2);
            cc.in[i] = rnd(&seed, cc.nsp == 3 ? 3 : 4, cc.nsp == 3 ? 6 : 11);
            cc.pads[i] = rnd(&seed, 0, cc.k[i] - 1);
            cc.pads[cc.nsp + i] = rnd(&seed, 0, cc.k[i] - 1);
        }
        cc.auto_pad = transpose ? NULL : pad_modes[it % 5];
        cc.bias = rnd(&seed, 0, 1);
        check_conv(&cc, transpose, &seed);
    }
}

static void test_conv_random(void **unused) {
    (void)unused;
    random_cases(false);
}

static void test_convtranspose_random(void **unused) {
    (void)unused;
    random_cases(true);
}

/* ONNX's documented example: 5x5 input 0..24, 3x3 ones kernel, pads 1 -> the 5x5 of sums. */
static void test_conv_known_values(void **unused) {
    (void)unused;
    float x[25], w[9], expect[25] = {12, 21, 27, 33, 24, 33, 54, 63, 72, 51, 63, 99, 108, 117, 81,
                                     93, 144, 153, 162, 111, 72, 111, 117, 123, 84};
    for (int i = 0; i < 25; i++) x[i] = (float)i;
    for (int i = 0; i < 9; i++) w[i] = 1;
    celer_tensor tx = {CELER_FLOAT, {4, {1, 1, 5, 5}}, x}, tw = {CELER_FLOAT, {4, {1, 1, 3, 3}}, w};
    attrs_t a = {0};
    a_ints(&a, "pads", 4, (int64_t[]){1, 1, 1, 1});
    celer_onnx_node node = make_node("Conv", &a, 2, 1);
    const celer_tensor *in[] = {&tx, &tw};
    celer_tensor out[1];
    assert_int_equal(tu_run_op(&node, 11, in, 2, out, 1), CELER_OK);
    assert_int_equal(out[0].shape.dims[2], 5);
    assert_true(tu_max_rel_diff(out[0].data, expect, 25) < 1e-6);
    tu_free_outputs(out, 1);

    /* SAME_UPPER with stride 2 on 5 -> 3, pads (0 begin? no: total 2 -> 1,1) */
    attrs_t a2 = {0};
    a_str(&a2, "auto_pad", "SAME_LOWER");
    a_ints(&a2, "strides", 2, (int64_t[]){2, 2});
    celer_onnx_node n2 = make_node("Conv", &a2, 2, 1);
    assert_int_equal(tu_run_op(&n2, 11, in, 2, out, 1), CELER_OK);
    float expect2[9] = {12, 27, 24, 63, 108, 81, 72, 117, 84};
    assert_int_equal(out[0].shape.dims[2], 3);
    assert_true(tu_max_rel_diff(out[0].data, expect2, 9) < 1e-6);
    tu_free_outputs(out, 1);
}

/* ConvTranspose with output_shape / output_padding: shapes as in the ONNX examples. */
static void test_convtranspose_output_shape(void **unused) {
    (void)unused;
    uint64_t seed = 7;
    celer_tensor x = make_f32(4, (int64_t[]){1, 1, 3, 3}, &seed);
    celer_tensor w = make_f32(4, (int64_t[]){1, 2, 3, 3}, &seed);
    const celer_tensor *in[] = {&x, &w};
    celer_tensor out[1];
    struct {
        const char *attr;
        int64_t v[2];
        int64_t want_h, want_w;
    } cases[] = {
        {"output_shape", {10, 8}, 10, 8},
        {"output_padding", {1, 1}, 10, 8},
    };
    for (size_t i = 0; i < CELER_ARRAY_LEN(cases); i++) {
        attrs_t a = {0};
        a_ints(&a, "strides", 2, (int64_t[]){3, 2});
        a_ints(&a, cases[i].attr, 2, cases[i].v);
        celer_onnx_node node = make_node("ConvTranspose", &a, 2, 1);
        celer_status st = tu_run_op(&node, 11, in, 2, out, 1);
        if (st) print_error("%s\n", celer_error_message());
        assert_int_equal(st, CELER_OK);
        assert_int_equal(out[0].shape.dims[1], 2);
        assert_int_equal(out[0].shape.dims[2], cases[i].want_h);
        assert_int_equal(out[0].shape.dims[3], cases[i].want_w);
        /* compare with the reference on the same geometry */
        celer_op_info info = {.node = &node};
        celer_win_attrs wa;
        celer_conv_geom g;
        celer_shape ys;
        assert_int_equal(celer_win_attrs_parse(&info, &wa), CELER_OK);
        assert_int_equal(celer_conv_geom_make("t", &wa, &x.shape, &w.shape, true, &g, &ys), 0);
        float ref[160];
        celer_ref_conv_transpose_f32(&g, x.data, w.data, NULL, ref);
        assert_true(tu_max_rel_diff(out[0].data, ref, 160) <= 1e-4);
        tu_free_outputs(out, 1);
    }
    free(x.data);
    free(w.data);
}

static void test_conv_errors(void **unused) {
    (void)unused;
    uint64_t seed = 3;
    celer_tensor x = make_f32(4, (int64_t[]){1, 3, 5, 5}, &seed);
    celer_tensor w = make_f32(4, (int64_t[]){4, 2, 3, 3}, &seed); /* C/group mismatch */
    celer_tensor big = make_f32(4, (int64_t[]){4, 3, 7, 7}, &seed);
    const celer_tensor *in[] = {&x, &w};
    celer_tensor out[1];
    attrs_t a = {0};
    celer_onnx_node node = make_node("Conv", &a, 2, 1);
    assert_int_equal(tu_run_op(&node, 11, in, 2, out, 1), CELER_ERR_SHAPE);
    assert_non_null(strstr(celer_error_message(), "do not agree"));
    in[1] = &big; /* kernel larger than input */
    assert_int_equal(tu_run_op(&node, 11, in, 2, out, 1), CELER_ERR_SHAPE);
    attrs_t bad = {0};
    a_ints(&bad, "strides", 2, (int64_t[]){0, 1});
    celer_onnx_node n2 = make_node("Conv", &bad, 2, 1);
    assert_int_equal(tu_run_op(&n2, 11, in, 2, out, 1), CELER_ERR_INVALID);
    attrs_t ap = {0};
    a_str(&ap, "auto_pad", "SAME");
    celer_onnx_node n3 = make_node("Conv", &ap, 2, 1);
    assert_int_equal(tu_run_op(&n3, 11, in, 2, out, 1), CELER_ERR_INVALID);
    free(x.data), free(w.data), free(big.data);
}

/* ConvInteger: uint8 input, int8 weights, zero points, compared with float conv on the same
 * zero-point-adjusted values. */
static void test_convinteger(void **unused) {
    (void)unused;
    uint8_t x[2 * 4 * 4];
    int8_t w[3 * 2 * 2 * 2];
    for (size_t i = 0; i < sizeof x; i++) x[i] = (uint8_t)(i * 37 % 251);
    for (size_t i = 0; i < sizeof w; i++) w[i] = (int8_t)((int)(i * 11 % 17) - 8);
    uint8_t xz = 7;
    int8_t wz[3] = {1, -2, 3};
    celer_tensor tx = {CELER_UINT8, {4, {1, 2, 4, 4}}, x}, tw = {CELER_INT8, {4, {3, 2, 2, 2}}, w};
    celer_tensor txz = {CELER_UINT8, {0, {0}}, &xz}, twz = {CELER_INT8, {1, {3}}, wz};
    const celer_tensor *in[] = {&tx, &tw, &txz, &twz};
    attrs_t a = {0};
    a_ints(&a, "pads", 4, (int64_t[]){1, 0, 0, 1});
    celer_onnx_node node = make_node("ConvInteger", &a, 4, 1);
    celer_tensor out[1];
    assert_int_equal(tu_run_op(&node, 10, in, 4, out, 1), CELER_OK);
    assert_int_equal(out[0].dtype, CELER_INT32);
    assert_int_equal(out[0].shape.dims[2], 4);
    assert_int_equal(out[0].shape.dims[3], 4);
    /* float check */
    float xf[32], wf[24], ref[48];
    for (int i = 0; i < 32; i++) xf[i] = (float)x[i] - xz;
    for (int i = 0; i < 24; i++) wf[i] = (float)w[i] - wz[i / 8];
    celer_op_info info = {.node = &node};
    celer_win_attrs wa;
    celer_conv_geom g;
    celer_shape ys;
    assert_int_equal(celer_win_attrs_parse(&info, &wa), 0);
    assert_int_equal(celer_conv_geom_make("t", &wa, &tx.shape, &tw.shape, false, &g, &ys), 0);
    celer_ref_conv_f32(&g, xf, wf, NULL, ref);
    for (int i = 0; i < 48; i++) assert_int_equal(((int32_t *)out[0].data)[i], (int32_t)ref[i]);
    tu_free_outputs(out, 1);
}

/* One kernel state shared by threads, one local per thread, shapes alternating so each local is
 * rebuilt: the way the executor uses a compiled model. */
typedef struct {
    const celer_kernel *k;
    const celer_op_info *info;
    const void *state;
    const celer_tensor *x[2], *w;
    const float *ref[2];
    size_t ny[2];
    int failures;
} mt_job;

static void *mt_worker(void *arg) {
    mt_job *j = arg;
    void *local = NULL;
    for (int it = 0; it < 6; it++) {
        int s = it % 2;
        const celer_tensor *in[] = {j->x[s], j->w};
        celer_tensor out = {.dtype = CELER_FLOAT};
        celer_kernel_call call = {.info = j->info, .state = j->state, .local = &local, .in = in,
                                  .n_in = 2, .out = &out, .n_out = 1};
        if (j->k->reshape(&call)) { j->failures++; continue; }
        out.data = malloc(j->ny[s] * 4);
        call.scratch = call.scratch_size ? aligned_alloc(64, (call.scratch_size + 63) & ~(size_t)63) : NULL;
        if (j->k->run(&call) || tu_max_rel_diff(out.data, j->ref[s], j->ny[s]) > 1e-4) j->failures++;
        free(call.scratch);
        free(out.data);
    }
    if (local) j->k->free_local(local);
    return NULL;
}

static void test_conv_threads(void **unused) {
    (void)unused;
    uint64_t seed = 11;
    attrs_t a = {0};
    a_ints(&a, "pads", 4, (int64_t[]){1, 1, 1, 1});
    celer_onnx_node node = make_node("Conv", &a, 2, 1);
    celer_tensor x0 = make_f32(4, (int64_t[]){1, 4, 9, 9}, &seed);
    celer_tensor x1 = make_f32(4, (int64_t[]){2, 4, 6, 7}, &seed);
    celer_tensor w = make_f32(4, (int64_t[]){8, 4, 3, 3}, &seed);
    celer_dtype types[2] = {CELER_FLOAT, CELER_FLOAT};
    const celer_tensor *consts[2] = {0};
    celer_op_info info = {.node = &node, .opset = 13, .n_inputs = 2, .n_outputs = 1,
                          .input_types = types, .input_constants = consts};
    const celer_kernel *k = celer_ops_find("", "Conv", 13, types, 2);
    assert_non_null(k);
    void *state = NULL;
    assert_int_equal(k->init(&info, &state), CELER_OK);
    celer_win_attrs wa;
    assert_int_equal(celer_win_attrs_parse(&info, &wa), CELER_OK);
    mt_job job = {.k = k, .info = &info, .state = state, .x = {&x0, &x1}, .w = &w};
    float *refs[2];
    for (int s = 0; s < 2; s++) {
        celer_conv_geom g;
        celer_shape ys;
        assert_int_equal(celer_conv_geom_make("t", &wa, &job.x[s]->shape, &w.shape, false, &g, &ys), 0);
        job.ny[s] = (size_t)celer_shape_numel(&ys);
        refs[s] = malloc(job.ny[s] * 4);
        celer_ref_conv_f32(&g, job.x[s]->data, w.data, NULL, refs[s]);
        job.ref[s] = refs[s];
    }
    mt_job jobs[3] = {job, job, job};
    pthread_t th[3];
    for (int i = 0; i < 3; i++) pthread_create(&th[i], NULL, mt_worker, &jobs[i]);
    for (int i = 0; i < 3; i++) pthread_join(th[i], NULL);
    for (int i = 0; i < 3; i++) assert_int_equal(jobs[i].failures, 0);
    k->free_state(state);
    free(refs[0]), free(refs[1]), free(x0.data), free(x1.data), free(w.data);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_conv_known_values),
        cmocka_unit_test(test_conv_random),
        cmocka_unit_test(test_convtranspose_random),
        cmocka_unit_test(test_convtranspose_output_shape),
        cmocka_unit_test(test_conv_errors),
        cmocka_unit_test(test_convinteger),
        cmocka_unit_test(test_conv_threads),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
