/* onnx reader: conformance models, .pb tensors, hand-built edge cases, hostile input. */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "runtime/runtime.h"
#include "testutil.h"

#define DATA "/usr/share/libonnx-testdata/data"

/* ---- a tiny protobuf writer to build models in the test ---- */
typedef struct wbuf {
    unsigned char *p;
    size_t n, cap;
} wbuf;

static void w_bytes(wbuf *b, const void *p, size_t n) {
    if (b->n + n > b->cap) {
        b->cap = (b->n + n) * 2 + 64;
        b->p = realloc(b->p, b->cap);
        assert_non_null(b->p);
    }
    if (n) memcpy(b->p + b->n, p, n);
    b->n += n;
}
static void w_varint(wbuf *b, uint64_t v) {
    do {
        unsigned char c = (unsigned char)(v & 0x7f);
        v >>= 7;
        if (v) c |= 0x80;
        w_bytes(b, &c, 1);
    } while (v);
}
static void w_tag(wbuf *b, uint32_t num, int wire) { w_varint(b, (uint64_t)num << 3 | (uint64_t)wire); }
static void w_int(wbuf *b, uint32_t num, int64_t v) {
    w_tag(b, num, 0);
    w_varint(b, (uint64_t)v);
}
static void w_len(wbuf *b, uint32_t num, const void *p, size_t n) {
    w_tag(b, num, 2);
    w_varint(b, n);
    w_bytes(b, p, n);
}
static void w_str(wbuf *b, uint32_t num, const char *s) { w_len(b, num, s, strlen(s)); }
static void w_f32(wbuf *b, uint32_t num, float f) {
    w_tag(b, num, 5);
    w_bytes(b, &f, 4);
}
/* Appends `sub` as a length-delimited field and frees it. */
static void w_msg(wbuf *b, uint32_t num, wbuf *sub) {
    w_len(b, num, sub->p, sub->n);
    free(sub->p);
    *sub = (wbuf){0};
}
static void w_packed_ints(wbuf *b, uint32_t num, const int64_t *v, int n) {
    wbuf s = {0};
    for (int i = 0; i < n; i++) w_varint(&s, (uint64_t)v[i]);
    w_msg(b, num, &s);
}

/* TensorProto with raw data (field numbers from onnx.proto). */
static wbuf mk_tensor(const char *name, int dtype, const int64_t *dims, int rank, const void *raw, size_t nbytes) {
    wbuf t = {0};
    for (int i = 0; i < rank; i++) w_int(&t, 1, dims[i]);
    w_int(&t, 2, dtype);
    if (name) w_str(&t, 8, name);
    if (raw) w_len(&t, 9, raw, nbytes);
    return t;
}

/* ModelProto {ir_version, opset "" 13, graph}. Frees `graph`. */
static wbuf mk_model(int64_t ir, wbuf *graph) {
    wbuf m = {0}, op = {0};
    if (ir >= 0) w_int(&m, 1, ir);
    w_str(&m, 2, "celer-test");
    w_msg(&m, 7, graph);
    w_str(&op, 1, "");
    w_int(&op, 2, 13);
    w_msg(&m, 8, &op);
    return m;
}

/* A graph with one node (op, attributes already serialized into `attrs`) and name "g". */
static wbuf mk_graph_node(const char *op, const char *node_name, wbuf *attrs, int n_attrs) {
    wbuf g = {0}, node = {0};
    w_str(&node, 1, "x");
    w_str(&node, 2, "y");
    if (node_name) w_str(&node, 3, node_name);
    w_str(&node, 4, op);
    for (int i = 0; i < n_attrs; i++) w_msg(&node, 5, &attrs[i]);
    w_msg(&g, 1, &node);
    w_str(&g, 2, "g");
    return g;
}

static celer_status parse_buf(const wbuf *b, const char *base_dir, celer_onnx_model **m) {
    return celer_onnx_parse(b->p, b->n, base_dir, m);
}

static void *read_file(const char *path, size_t *len) {
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    void *p = malloc(n > 0 ? (size_t)n : 1);
    if (fread(p, 1, (size_t)n, f) != (size_t)n) {
        free(p);
        p = NULL;
    }
    fclose(f);
    *len = (size_t)n;
    return p;
}

static bool have_data(void) { return access(DATA "/node/test_abs/model.onnx", R_OK) == 0; }

#define SKIP_WITHOUT_DATA()                                 \
    do {                                                    \
        if (!have_data()) {                                 \
            print_message("no ONNX test data, skipped\n"); \
            skip();                                         \
        }                                                   \
    } while (0)

#define ASSERT_MSG_HAS(text)                                                               \
    do {                                                                                   \
        if (!strstr(celer_error_message(), text))                                          \
            fail_msg("message '%s' lacks '%s'", celer_error_message(), text);              \
    } while (0)

/* ---- conformance models ---- */

static void test_conv_strides_padding(void **state) {
    (void)state;
    SKIP_WITHOUT_DATA();
    celer_onnx_model *m;
    assert_int_equal(celer_onnx_load(DATA "/node/test_conv_with_strides_padding/model.onnx", &m), CELER_OK);
    assert_int_equal(m->ir_version, 6);
    assert_string_equal(m->producer_name, "backend-test");
    assert_int_equal(celer_onnx_opset_version(m, ""), 11);
    assert_int_equal(celer_onnx_opset_version(m, "ai.onnx"), 11);
    assert_int_equal(celer_onnx_opset_version(m, NULL), 11);
    assert_int_equal(celer_onnx_opset_version(m, "com.microsoft"), 0);
    const celer_onnx_graph *g = m->graph;
    assert_string_equal(g->name, "test_conv_with_strides_padding");
    assert_int_equal(g->n_nodes, 1);
    const celer_onnx_node *n = &g->nodes[0];
    assert_string_equal(n->op_type, "Conv");
    assert_string_equal(n->domain, "");
    assert_int_equal(n->n_inputs, 2);
    assert_string_equal(n->inputs[0], "x");
    assert_string_equal(n->inputs[1], "W");
    assert_int_equal(n->n_outputs, 1);
    assert_string_equal(n->outputs[0], "y");
    const int64_t *v;
    assert_int_equal(celer_onnx_attr_ints(n, "kernel_shape", &v), 2);
    assert_int_equal(v[0], 3);
    assert_int_equal(celer_onnx_attr_ints(n, "pads", &v), 4);
    for (int i = 0; i < 4; i++) assert_int_equal(v[i], 1);
    assert_int_equal(celer_onnx_attr_ints(n, "strides", &v), 2);
    assert_int_equal(v[1], 2);
    assert_int_equal(celer_onnx_attr_ints(n, "dilations", &v), -1);
    assert_int_equal(celer_onnx_attr_int(n, "strides", 7), 7); /* wrong type: default */
    assert_null(celer_onnx_attr_find(n, "group"));
    assert_int_equal(g->n_inputs, 2);
    assert_string_equal(g->inputs[0].name, "x");
    assert_int_equal(g->inputs[0].kind, CELER_VALUE_TENSOR);
    assert_int_equal(g->inputs[0].dtype, CELER_FLOAT);
    assert_true(g->inputs[0].has_shape);
    assert_int_equal(g->inputs[0].shape.rank, 4);
    assert_int_equal(g->inputs[0].shape.dims[2], 7);
    assert_int_equal(g->inputs[0].shape.dims[3], 5);
    assert_null(g->inputs[0].dim_params[0]);
    assert_int_equal(g->n_outputs, 1);
    assert_int_equal(g->outputs[0].shape.dims[2], 4);
    assert_int_equal(g->n_initializers, 0);
    celer_onnx_free(m);
}

static void test_constant_and_pb(void **state) {
    (void)state;
    SKIP_WITHOUT_DATA();
    celer_onnx_model *m;
    assert_int_equal(celer_onnx_load(DATA "/node/test_constant/model.onnx", &m), CELER_OK);
    const celer_onnx_node *n = &m->graph->nodes[0];
    assert_string_equal(n->op_type, "Constant");
    assert_int_equal(n->n_inputs, 0);
    const celer_onnx_attr *a = celer_onnx_attr_find(n, "value");
    assert_non_null(a);
    assert_int_equal(a->type, CELER_ATTR_TENSOR);
    assert_int_equal(a->t->dtype, CELER_FLOAT);
    assert_int_equal(a->t->shape.rank, 2);
    assert_int_equal(a->t->shape.dims[0], 5);
    const float *f = a->t->data;
    assert_float_equal(f[0], 1.764052391052246f, 1e-7);
    assert_float_equal(f[24], 2.269754648208618f, 1e-7);

    /* the expected output .pb holds the same values */
    size_t len;
    void *bytes = read_file(DATA "/node/test_constant/test_data_set_0/output_0.pb", &len);
    assert_non_null(bytes);
    celer_arena arena;
    celer_arena_init(&arena, 0, 0);
    celer_tensor t;
    const char *name;
    assert_int_equal(celer_onnx_parse_tensor(bytes, len, &arena, &t, &name), CELER_OK);
    assert_int_equal(t.dtype, CELER_FLOAT);
    assert_int_equal(t.shape.rank, 2);
    assert_memory_equal(t.data, a->t->data, 25 * sizeof(float));
    free(bytes);
    celer_arena_free(&arena);
    celer_onnx_free(m);
}

static void test_single_relu(void **state) {
    (void)state;
    SKIP_WITHOUT_DATA();
    celer_onnx_model *m;
    assert_int_equal(celer_onnx_load(DATA "/simple/test_single_relu_model/model.onnx", &m), CELER_OK);
    assert_int_equal(m->ir_version, 4);
    assert_int_equal(celer_onnx_opset_version(m, ""), 9);
    assert_int_equal(m->n_opsets, 1);
    assert_string_equal(m->graph->name, "SingleRelu");
    assert_int_equal(m->graph->n_nodes, 1);
    assert_string_equal(m->graph->nodes[0].name, "test");
    assert_string_equal(m->graph->nodes[0].op_type, "Relu");
    assert_int_equal(m->graph->nodes[0].n_attrs, 0);
    assert_int_equal(m->graph->inputs[0].shape.rank, 2);
    celer_onnx_free(m);
}

static void check_branch(const celer_onnx_graph *g, const char *name, const char *out, float first) {
    assert_non_null(g);
    assert_string_equal(g->name, name);
    assert_int_equal(g->n_nodes, 1);
    assert_string_equal(g->nodes[0].op_type, "Constant");
    assert_string_equal(g->nodes[0].outputs[0], out);
    const celer_onnx_attr *v = celer_onnx_attr_find(&g->nodes[0], "value");
    assert_non_null(v);
    assert_int_equal(v->t->shape.rank, 1);
    assert_int_equal(v->t->shape.dims[0], 5);
    float f0;
    memcpy(&f0, v->t->data, 4);
    assert_float_equal(f0, first, 0);
    assert_int_equal(g->n_outputs, 1);
    assert_string_equal(g->outputs[0].name, out);
}

static void test_if_subgraphs(void **state) {
    (void)state;
    SKIP_WITHOUT_DATA();
    celer_onnx_model *m;
    assert_int_equal(celer_onnx_load(DATA "/node/test_if/model.onnx", &m), CELER_OK);
    const celer_onnx_node *n = &m->graph->nodes[0];
    assert_string_equal(n->op_type, "If");
    assert_int_equal(n->n_attrs, 2);
    const celer_onnx_attr *e = celer_onnx_attr_find(n, "else_branch"), *t = celer_onnx_attr_find(n, "then_branch");
    assert_non_null(e);
    assert_non_null(t);
    assert_int_equal(e->type, CELER_ATTR_GRAPH);
    check_branch(e->g, "else_body", "else_out", 5.0f);
    check_branch(t->g, "then_body", "then_out", 1.0f);
    /* the bool condition is a scalar: shape given with no dims */
    const celer_onnx_value_info *cond = &m->graph->inputs[0];
    assert_int_equal(cond->dtype, CELER_BOOL);
    assert_true(cond->has_shape);
    assert_int_equal(cond->shape.rank, 0);
    celer_onnx_free(m);
}

static void test_conv_transpose_initializers(void **state) {
    (void)state;
    SKIP_WITHOUT_DATA();
    celer_onnx_model *m;
    assert_int_equal(celer_onnx_load(DATA "/pytorch-converted/test_ConvTranspose2d/model.onnx", &m), CELER_OK);
    assert_int_equal(m->ir_version, 3);
    assert_string_equal(m->producer_name, "pytorch");
    assert_string_equal(m->producer_version, "0.3");
    const celer_onnx_graph *g = m->graph;
    assert_string_equal(g->name, "torch-jit-export");
    assert_int_equal(g->n_initializers, 2);
    const celer_onnx_named_tensor *w = &g->initializers[0], *b = &g->initializers[1];
    assert_string_equal(w->name, "1");
    assert_int_equal(w->tensor.dtype, CELER_FLOAT);
    assert_int_equal(w->tensor.shape.rank, 4);
    int64_t want[4] = {3, 4, 3, 3};
    assert_memory_equal(w->tensor.shape.dims, want, sizeof want);
    /* first raw bytes are 80 d9 6a bd */
    const unsigned char *raw = w->tensor.data;
    assert_int_equal(raw[0], 0x80);
    assert_int_equal(raw[3], 0xbd);
    assert_int_equal((uintptr_t)w->tensor.data % 4, 0);
    assert_string_equal(b->name, "2");
    assert_int_equal(b->tensor.shape.dims[0], 4);
    const celer_onnx_node *n = &g->nodes[0];
    assert_string_equal(n->op_type, "ConvTranspose");
    assert_int_equal(n->n_inputs, 3);
    assert_int_equal(celer_onnx_attr_int(n, "group", 0), 1);
    const int64_t *v;
    assert_int_equal(celer_onnx_attr_ints(n, "strides", &v), 2);
    assert_int_equal(v[0], 3);
    assert_int_equal(v[1], 2);
    assert_int_equal(celer_onnx_attr_ints(n, "output_padding", &v), 2);
    celer_onnx_free(m);
}

static void test_pb_tensors(void **state) {
    (void)state;
    SKIP_WITHOUT_DATA();
    celer_arena arena;
    celer_arena_init(&arena, 0, 0);
    celer_tensor t;
    size_t len;
    void *bytes;

    /* strings (string_data) */
    bytes = read_file(DATA "/node/test_cast_FLOAT_to_STRING/test_data_set_0/output_0.pb", &len);
    assert_non_null(bytes);
    assert_int_equal(celer_onnx_parse_tensor(bytes, len, &arena, &t, NULL), CELER_OK);
    assert_int_equal(t.dtype, CELER_STRING);
    int64_t numel = celer_shape_numel(&t.shape);
    assert_true(numel > 0);
    for (int64_t i = 0; i < numel; i++) assert_non_null(((const celer_str *)t.data)[i].data);
    free(bytes);

    /* bool raw data */
    bytes = read_file(DATA "/node/test_and2d/test_data_set_0/input_0.pb", &len);
    assert_non_null(bytes);
    assert_int_equal(celer_onnx_parse_tensor(bytes, len, &arena, &t, NULL), CELER_OK);
    assert_int_equal(t.dtype, CELER_BOOL);
    for (int64_t i = 0; i < celer_shape_numel(&t.shape); i++) assert_true(((unsigned char *)t.data)[i] <= 1);
    free(bytes);

    /* int64 with zero elements */
    bytes = read_file(DATA "/node/test_reduce_sum_default_axes_keepdims_example/test_data_set_0/input_1.pb", &len);
    assert_non_null(bytes);
    assert_int_equal(celer_onnx_parse_tensor(bytes, len, &arena, &t, NULL), CELER_OK);
    assert_int_equal(t.dtype, CELER_INT64);
    assert_int_equal(celer_shape_numel(&t.shape), 0);
    assert_non_null(t.data);
    free(bytes);

    /* a SequenceProto is not a TensorProto: a clean error, not garbage */
    bytes = read_file(DATA "/node/test_identity_sequence/test_data_set_0/input_0.pb", &len);
    assert_non_null(bytes);
    assert_int_not_equal(celer_onnx_parse_tensor(bytes, len, &arena, &t, NULL), CELER_OK);
    free(bytes);
    celer_arena_free(&arena);
}

/* Every prefix of a model must fail cleanly (each copied to an exact-size buffer so ASan sees
 * over-reads), except a cut exactly after the graph field (then only opset_import is lost). */
static void truncate_all(const char *path) {
    size_t len;
    unsigned char *bytes = read_file(path, &len);
    assert_non_null(bytes);
    int ok = 0;
    for (size_t cut = 0; cut < len; cut++) {
        unsigned char *p = malloc(cut ? cut : 1);
        memcpy(p, bytes, cut);
        celer_onnx_model *m = NULL;
        celer_status st = celer_onnx_parse(p, cut, NULL, &m);
        if (st == CELER_OK) {
            ok++;
            assert_int_equal(m->n_opsets, 0);
            celer_onnx_free(m);
        } else {
            assert_null(m);
            assert_true(strlen(celer_error_message()) > 0);
        }
        free(p);
    }
    assert_true(ok <= 1);
    /* and flipping any byte to a few values never crashes */
    static const unsigned char vals[] = {0x00, 0xff, 0x80, 0x7f, 0x0a};
    for (size_t i = 0; i < len; i++) {
        for (size_t k = 0; k < sizeof vals; k++) {
            unsigned char *p = malloc(len);
            memcpy(p, bytes, len);
            p[i] = vals[k];
            celer_onnx_model *m = NULL;
            if (celer_onnx_parse(p, len, NULL, &m) == CELER_OK) celer_onnx_free(m);
            free(p);
        }
    }
    free(bytes);
}

static void test_truncation(void **state) {
    (void)state;
    SKIP_WITHOUT_DATA();
    truncate_all(DATA "/node/test_if/model.onnx");
    truncate_all(DATA "/pytorch-converted/test_ConvTranspose2d/model.onnx");
    truncate_all(DATA "/node/test_constant/model.onnx");
}

/* ---- hand-built models ---- */

static void test_attribute_kinds(void **state) {
    (void)state;
    wbuf attrs[9] = {{0}};
    int64_t ints[3] = {5, -1, 300};
    /* 0: INTS packed, type set */
    w_str(&attrs[0], 1, "packed");
    w_packed_ints(&attrs[0], 8, ints, 3);
    w_int(&attrs[0], 20, CELER_ATTR_INTS);
    /* 1: INTS unpacked, no type (inferred) */
    w_str(&attrs[1], 1, "unpacked");
    for (int i = 0; i < 3; i++) w_int(&attrs[1], 8, ints[i]);
    /* 2: FLOAT without type */
    w_str(&attrs[2], 1, "alpha");
    w_f32(&attrs[2], 2, 0.25f);
    /* 3: FLOATS unpacked + STRING-typed neighbour */
    w_str(&attrs[3], 1, "scales");
    w_f32(&attrs[3], 7, 1.5f);
    w_f32(&attrs[3], 7, -2.0f);
    w_int(&attrs[3], 20, CELER_ATTR_FLOATS);
    /* 4: STRING with an embedded NUL */
    w_str(&attrs[4], 1, "mode");
    w_len(&attrs[4], 4, "ab\0c", 4);
    w_int(&attrs[4], 20, CELER_ATTR_STRING);
    /* 5: STRINGS */
    w_str(&attrs[5], 1, "names");
    w_str(&attrs[5], 9, "one");
    w_str(&attrs[5], 9, "");
    w_int(&attrs[5], 20, CELER_ATTR_STRINGS);
    /* 6: TENSORS (int32_data for float16, int64_data) */
    {
        wbuf t1 = {0}, t2 = {0};
        w_int(&t1, 1, 2);
        w_int(&t1, 2, CELER_FLOAT16);
        w_int(&t1, 5, 0x3c00); /* 1.0 */
        w_int(&t1, 5, 0xc000); /* -2.0 */
        w_int(&t2, 2, CELER_INT64);
        w_int(&t2, 7, -7); /* rank-0 scalar */
        w_str(&attrs[6], 1, "ts");
        w_msg(&attrs[6], 10, &t1);
        w_msg(&attrs[6], 10, &t2);
        w_int(&attrs[6], 20, CELER_ATTR_TENSORS);
    }
    /* 7: TYPE_PROTO recorded by type only */
    {
        wbuf tp = {0}, tt = {0};
        w_int(&tt, 1, CELER_FLOAT);
        w_msg(&tp, 1, &tt);
        w_str(&attrs[7], 1, "tp");
        w_msg(&attrs[7], 14, &tp);
        w_int(&attrs[7], 20, CELER_ATTR_TYPE_PROTO);
    }
    /* 8: INT with an unknown field given as a group, which must be skipped */
    w_str(&attrs[8], 1, "axis");
    w_tag(&attrs[8], 30, 3);
    w_int(&attrs[8], 1, 99);
    w_tag(&attrs[8], 31, 3);
    w_tag(&attrs[8], 31, 4);
    w_tag(&attrs[8], 30, 4);
    w_int(&attrs[8], 3, -3);
    w_int(&attrs[8], 20, CELER_ATTR_INT);

    wbuf g = mk_graph_node("Custom", "n0", attrs, 9);
    wbuf m = mk_model(8, &g);
    celer_onnx_model *model;
    assert_int_equal(parse_buf(&m, NULL, &model), CELER_OK);
    const celer_onnx_node *n = &model->graph->nodes[0];
    assert_int_equal(n->n_attrs, 9);
    const int64_t *v;
    assert_int_equal(celer_onnx_attr_ints(n, "packed", &v), 3);
    assert_int_equal(v[1], -1);
    assert_int_equal(v[2], 300);
    assert_int_equal(celer_onnx_attr_ints(n, "unpacked", &v), 3);
    assert_int_equal(v[1], -1);
    assert_float_equal(celer_onnx_attr_float(n, "alpha", 0), 0.25f, 0);
    const float *fl;
    assert_int_equal(celer_onnx_attr_floats(n, "scales", &fl), 2);
    assert_float_equal(fl[1], -2.0f, 0);
    const celer_onnx_attr *s = celer_onnx_attr_find(n, "mode");
    assert_int_equal(s->s_len, 4);
    assert_memory_equal(s->s, "ab\0c", 5);
    assert_string_equal(celer_onnx_attr_string(n, "missing", "dflt"), "dflt");
    const celer_onnx_attr *ss = celer_onnx_attr_find(n, "names");
    assert_int_equal(ss->n, 2);
    assert_string_equal(ss->strings[0].data, "one");
    assert_int_equal(ss->strings[0].len, 3);
    assert_int_equal(ss->strings[1].len, 0);
    const celer_onnx_attr *ts = celer_onnx_attr_find(n, "ts");
    assert_int_equal(ts->n, 2);
    assert_int_equal(ts->tensors[0].dtype, CELER_FLOAT16);
    assert_float_equal(celer_half_to_float(((uint16_t *)ts->tensors[0].data)[1]), -2.0f, 0);
    assert_int_equal(ts->tensors[1].shape.rank, 0);
    assert_int_equal(*(int64_t *)ts->tensors[1].data, -7);
    assert_int_equal(celer_onnx_attr_find(n, "tp")->type, CELER_ATTR_TYPE_PROTO);
    assert_int_equal(celer_onnx_attr_int(n, "axis", 0), -3);
    assert_int_equal(celer_onnx_attr_float(n, "axis", 4.0f), 4.0f);
    celer_onnx_free(model);
    free(m.p);
}

static void test_value_infos(void **state) {
    (void)state;
    wbuf g = mk_graph_node("Relu", NULL, NULL, 0);
    /* input x: float [N, 3, ?] with a symbolic batch */
    wbuf vi = {0}, tp = {0}, tt = {0}, shape = {0}, dim = {0};
    w_str(&dim, 2, "N");
    w_msg(&shape, 1, &dim);
    w_int(&dim, 1, 3);
    w_msg(&shape, 1, &dim);
    w_msg(&shape, 1, &dim); /* empty Dimension: unknown */
    w_int(&tt, 1, CELER_FLOAT);
    w_msg(&tt, 2, &shape);
    w_msg(&tp, 1, &tt);
    w_str(&vi, 1, "x");
    w_msg(&vi, 2, &tp);
    w_msg(&g, 11, &vi);
    /* output y: a sequence */
    wbuf seq = {0};
    w_msg(&seq, 1, &tt); /* empty element type */
    w_msg(&tp, 4, &seq);
    w_str(&vi, 1, "y");
    w_msg(&vi, 2, &tp);
    w_msg(&g, 12, &vi);
    /* value_info z without type */
    w_str(&vi, 1, "z");
    w_msg(&g, 13, &vi);
    wbuf m = mk_model(7, &g);
    celer_onnx_model *model;
    assert_int_equal(parse_buf(&m, NULL, &model), CELER_OK);
    const celer_onnx_value_info *x = &model->graph->inputs[0];
    assert_string_equal(x->name, "x");
    assert_int_equal(x->kind, CELER_VALUE_TENSOR);
    assert_int_equal(x->dtype, CELER_FLOAT);
    assert_int_equal(x->shape.rank, 3);
    assert_int_equal(x->shape.dims[0], -1);
    assert_string_equal(x->dim_params[0], "N");
    assert_int_equal(x->shape.dims[1], 3);
    assert_null(x->dim_params[1]);
    assert_int_equal(x->shape.dims[2], -1);
    assert_int_equal(model->graph->outputs[0].kind, CELER_VALUE_SEQUENCE);
    assert_int_equal(model->graph->n_value_infos, 1);
    assert_int_equal(model->graph->value_infos[0].kind, CELER_VALUE_UNKNOWN);
    assert_false(model->graph->value_infos[0].has_shape);
    celer_onnx_free(model);
    free(m.p);
}

/* Builds a model around one initializer and expects `want` with `text` in the message. */
static void expect_initializer_error(wbuf *tensor, celer_status want, const char *text) {
    wbuf g = mk_graph_node("Relu", NULL, NULL, 0);
    w_msg(&g, 5, tensor);
    wbuf m = mk_model(8, &g);
    celer_onnx_model *model = NULL;
    celer_status st = parse_buf(&m, NULL, &model);
    if (st != want) fail_msg("status %d, want %d (%s)", st, want, celer_error_message());
    ASSERT_MSG_HAS(text);
    assert_null(model);
    free(m.p);
}

static void test_bad_tensors(void **state) {
    (void)state;
    int64_t dims9[9] = {1, 1, 1, 1, 1, 1, 1, 1, 1}, dims2[2] = {2, 3};
    float data[6] = {0};
    wbuf t = mk_tensor("deep", CELER_FLOAT, dims9, 9, data, 4);
    expect_initializer_error(&t, CELER_ERR_UNSUPPORTED, "tensor 'deep': rank 9");
    t = mk_tensor("short", CELER_FLOAT, dims2, 2, data, 20);
    expect_initializer_error(&t, CELER_ERR_INVALID, "tensor 'short': raw_data has 20 bytes, shape [2,3] of float needs 24");
    t = mk_tensor("nodata", CELER_FLOAT, dims2, 2, NULL, 0);
    expect_initializer_error(&t, CELER_ERR_INVALID, "float_data has 0 values");
    t = mk_tensor("mixed", CELER_INT64, dims2, 2, NULL, 0);
    w_f32(&t, 4, 1.0f);
    expect_initializer_error(&t, CELER_ERR_INVALID, "tensor of type int64 has float_data");
    t = mk_tensor("neg", CELER_FLOAT, (int64_t[]){-1}, 1, data, 4);
    expect_initializer_error(&t, CELER_ERR_INVALID, "negative dimension");
    t = mk_tensor("huge", CELER_FLOAT, (int64_t[]){INT64_MAX, 4}, 2, data, 4);
    expect_initializer_error(&t, CELER_ERR_LIMIT, "too large");
    t = mk_tensor("f8", 19, dims2, 2, data, 6);
    expect_initializer_error(&t, CELER_ERR_UNSUPPORTED, "data_type FLOAT8E5M2 (19) is not supported");
    t = mk_tensor(NULL, CELER_FLOAT, dims2, 2, data, 24);
    expect_initializer_error(&t, CELER_ERR_INVALID, "initializer 0 has no name");
    t = mk_tensor("ext_in_memory", CELER_FLOAT, dims2, 2, NULL, 0);
    w_int(&t, 14, 1);
    expect_initializer_error(&t, CELER_ERR_INVALID, "external data is not allowed");
    /* truncated packed int64_data: last byte has its continuation bit set */
    t = mk_tensor("trunc", CELER_INT64, (int64_t[]){2}, 1, NULL, 0);
    w_len(&t, 7, "\x01\x80", 2);
    expect_initializer_error(&t, CELER_ERR_PARSE, "tensor 'trunc': field 7: truncated packed field");
    /* a misaligned raw_data is copied to aligned memory */
    wbuf g = mk_graph_node("Relu", NULL, NULL, 0);
    float vals[3] = {1.5f, 2.5f, 3.5f};
    t = mk_tensor("odd", CELER_FLOAT, (int64_t[]){3}, 1, vals, sizeof vals);
    for (int pad = 0; pad < 4; pad++) {
        wbuf tt = {0};
        w_len(&tt, 15, "xxx", (size_t)pad); /* an unknown field shifts the payload by 2 + pad */
        w_bytes(&tt, t.p, t.n);
        w_msg(&g, 5, &tt);
    }
    free(t.p);
    wbuf m = mk_model(8, &g);
    celer_onnx_model *model;
    assert_int_equal(parse_buf(&m, NULL, &model), CELER_OK);
    assert_int_equal(model->graph->n_initializers, 4);
    for (int i = 0; i < 4; i++) {
        const celer_tensor *x = &model->graph->initializers[i].tensor;
        assert_int_equal((uintptr_t)x->data % 4, 0);
        assert_memory_equal(x->data, vals, sizeof vals);
    }
    celer_onnx_free(model);
    free(m.p);
}

static void test_bad_models(void **state) {
    (void)state;
    celer_onnx_model *model = NULL;
    wbuf g, m;

    g = mk_graph_node("Relu", NULL, NULL, 0);
    m = mk_model(11, &g);
    assert_int_equal(parse_buf(&m, NULL, &model), CELER_ERR_UNSUPPORTED);
    ASSERT_MSG_HAS("ir_version 11");
    free(m.p);

    g = mk_graph_node("Relu", NULL, NULL, 0);
    m = mk_model(-1, &g);
    assert_int_equal(parse_buf(&m, NULL, &model), CELER_ERR_INVALID);
    ASSERT_MSG_HAS("ir_version is not set");
    free(m.p);

    m = (wbuf){0};
    w_int(&m, 1, 7);
    assert_int_equal(parse_buf(&m, NULL, &model), CELER_ERR_INVALID);
    ASSERT_MSG_HAS("no graph");
    free(m.p);

    assert_int_not_equal(celer_onnx_parse("\xff\xff", 2, NULL, &model), CELER_OK);
    assert_int_not_equal(celer_onnx_parse("", 0, NULL, &model), CELER_OK);

    /* truncated packed attribute: the message names node, op, attribute */
    wbuf a = {0};
    w_str(&a, 1, "pads");
    w_len(&a, 8, "\x01\x01\x81", 3);
    w_int(&a, 20, CELER_ATTR_INTS);
    g = mk_graph_node("Conv", "conv1", &a, 1);
    m = mk_model(8, &g);
    assert_int_equal(parse_buf(&m, NULL, &model), CELER_ERR_PARSE);
    ASSERT_MSG_HAS("graph 'g': node 0 (Conv 'conv1'): attribute 'pads': field 8: truncated packed field");
    free(m.p);

    /* ref_attr_name outside a function */
    a = (wbuf){0};
    w_str(&a, 1, "alpha");
    w_str(&a, 21, "outer_alpha");
    w_int(&a, 20, CELER_ATTR_FLOAT);
    g = mk_graph_node("Elu", NULL, &a, 1);
    m = mk_model(8, &g);
    assert_int_equal(parse_buf(&m, NULL, &model), CELER_ERR_INVALID);
    ASSERT_MSG_HAS("ref_attr_name");
    free(m.p);

    /* sparse initializer */
    g = mk_graph_node("Relu", NULL, NULL, 0);
    wbuf sp = {0};
    w_int(&sp, 3, 4);
    w_msg(&g, 15, &sp);
    m = mk_model(8, &g);
    assert_int_equal(parse_buf(&m, NULL, &model), CELER_ERR_UNSUPPORTED);
    ASSERT_MSG_HAS("sparse");
    free(m.p);

    /* node without op_type */
    g = (wbuf){0};
    wbuf node = {0};
    w_str(&node, 1, "x");
    w_msg(&g, 1, &node);
    m = mk_model(8, &g);
    assert_int_equal(parse_buf(&m, NULL, &model), CELER_ERR_INVALID);
    ASSERT_MSG_HAS("no op_type");
    free(m.p);

    /* graph attributes nested deeper than the cap */
    g = mk_graph_node("Relu", NULL, NULL, 0);
    for (int depth = 0; depth < CELER_ONNX_MAX_GRAPH_DEPTH + 1; depth++) {
        a = (wbuf){0};
        w_str(&a, 1, "body");
        w_msg(&a, 6, &g);
        w_int(&a, 20, CELER_ATTR_GRAPH);
        g = mk_graph_node("Loop", NULL, &a, 1);
    }
    m = mk_model(8, &g);
    assert_int_equal(parse_buf(&m, NULL, &model), CELER_ERR_LIMIT);
    ASSERT_MSG_HAS("nested deeper");
    free(m.p);

    /* an unterminated group and a mismatched end-group */
    m = (wbuf){0};
    w_int(&m, 1, 7);
    w_tag(&m, 40, 3);
    w_int(&m, 1, 1);
    assert_int_equal(parse_buf(&m, NULL, &model), CELER_ERR_PARSE);
    ASSERT_MSG_HAS("not terminated");
    w_tag(&m, 41, 4);
    assert_int_equal(parse_buf(&m, NULL, &model), CELER_ERR_PARSE);
    free(m.p);

    /* metadata and functions */
    g = mk_graph_node("Relu", NULL, NULL, 0);
    m = mk_model(8, &g);
    wbuf kv = {0};
    w_str(&kv, 1, "author");
    w_str(&kv, 2, "me");
    w_msg(&m, 14, &kv);
    wbuf fn = {0};
    w_str(&fn, 1, "f");
    w_msg(&m, 25, &fn);
    w_str(&m, 6, "doc");
    assert_int_equal(parse_buf(&m, NULL, &model), CELER_OK);
    assert_int_equal(model->n_props, 1);
    assert_string_equal(model->props[0].key, "author");
    assert_string_equal(model->props[0].value, "me");
    assert_int_equal(model->n_functions, 1);
    assert_string_equal(model->doc_string, "doc");
    celer_onnx_free(model);
    free(m.p);

    /* functions are inlined: one that calls itself is refused at a depth cap, one whose body
     * imports another version of ai.onnx than the model is refused naming both */
    g = mk_graph_node("Selfie", "call", NULL, 0);
    m = mk_model(8, &g);
    wbuf self = {0}, body = {0};
    w_str(&self, 1, "Selfie");
    w_str(&self, 4, "x");
    w_str(&self, 5, "y");
    w_str(&body, 1, "x");
    w_str(&body, 2, "y");
    w_str(&body, 4, "Selfie");
    w_msg(&self, 7, &body);
    w_msg(&m, 25, &self);
    assert_int_equal(parse_buf(&m, NULL, &model), CELER_ERR_LIMIT);
    ASSERT_MSG_HAS("function 'Selfie' calls functions more than 16 deep");
    free(m.p);
    g = mk_graph_node("Older", NULL, NULL, 0);
    m = mk_model(8, &g);
    wbuf older = {0}, relu = {0}, op = {0};
    w_str(&older, 1, "Older");
    w_str(&older, 4, "x");
    w_str(&older, 5, "y");
    w_str(&relu, 1, "x");
    w_str(&relu, 2, "y");
    w_str(&relu, 4, "Relu");
    w_msg(&older, 7, &relu);
    w_str(&op, 1, "");
    w_int(&op, 2, 11);
    w_msg(&older, 9, &op);
    w_msg(&m, 25, &older);
    assert_int_equal(parse_buf(&m, NULL, &model), CELER_ERR_UNSUPPORTED);
    ASSERT_MSG_HAS("function 'Older' imports opset 11 of ai.onnx and the model 13");
    free(m.p);

    celer_onnx_free(NULL);
}

/* ---- external data and files ---- */

static char tmpdir[64];

static void write_path(const char *name, const void *p, size_t n) {
    char path[256];
    snprintf(path, sizeof path, "%s/%s", tmpdir, name);
    FILE *f = fopen(path, "wb");
    assert_non_null(f);
    assert_int_equal(fwrite(p, 1, n, f), n);
    fclose(f);
}

static wbuf mk_external(const char *name, const char *loc, const char *offset, const char *length, int n) {
    wbuf t = {0}, kv = {0};
    w_int(&t, 1, n);
    w_int(&t, 2, CELER_FLOAT);
    w_str(&t, 8, name);
    w_str(&kv, 1, "location");
    w_str(&kv, 2, loc);
    w_msg(&t, 13, &kv);
    if (offset) {
        w_str(&kv, 1, "offset");
        w_str(&kv, 2, offset);
        w_msg(&t, 13, &kv);
    }
    if (length) {
        w_str(&kv, 1, "length");
        w_str(&kv, 2, length);
        w_msg(&t, 13, &kv);
    }
    w_int(&t, 14, 1);
    return t;
}

/* Writes model.onnx with the given initializers and loads it. */
static celer_status load_with(wbuf *tensors, int n, celer_onnx_model **model) {
    wbuf g = mk_graph_node("Relu", NULL, NULL, 0);
    for (int i = 0; i < n; i++) w_msg(&g, 5, &tensors[i]);
    wbuf m = mk_model(8, &g);
    write_path("model.onnx", m.p, m.n);
    free(m.p);
    char path[256];
    snprintf(path, sizeof path, "%s/model.onnx", tmpdir);
    return celer_onnx_load(path, model);
}

static void test_external_data(void **state) {
    (void)state;
    strcpy(tmpdir, "/tmp/celer_onnx_XXXXXX");
    assert_non_null(mkdtemp(tmpdir));
    float w[8];
    for (int i = 0; i < 8; i++) w[i] = (float)i + 0.5f;
    unsigned char blob[2 + sizeof w];
    memset(blob, 0, 2);
    memcpy(blob + 2, w, sizeof w);
    write_path("weights.bin", w, sizeof w);
    write_path("odd.bin", blob, sizeof blob);

    celer_onnx_model *model = NULL;
    wbuf ts[3];
    ts[0] = mk_external("a", "weights.bin", NULL, NULL, 8);
    ts[1] = mk_external("b", "weights.bin", "16", "16", 4);
    ts[2] = mk_external("c", "./odd.bin", "2", NULL, 8); /* misaligned: copied */
    assert_int_equal(load_with(ts, 3, &model), CELER_OK);
    const celer_onnx_graph *g = model->graph;
    assert_memory_equal(g->initializers[0].tensor.data, w, sizeof w);
    assert_memory_equal(g->initializers[1].tensor.data, w + 4, 16);
    assert_int_equal((uintptr_t)g->initializers[2].tensor.data % 4, 0);
    assert_memory_equal(g->initializers[2].tensor.data, w, sizeof w);
    celer_onnx_free(model);

    static const struct {
        const char *loc, *offset, *length, *text;
        int n;
    } bad[] = {
        {"../x", NULL, NULL, "refused", 8},
        {"sub/../../weights.bin", NULL, NULL, "refused", 8},
        {"..\\weights.bin", NULL, NULL, "refused", 8},
        {"/etc/passwd", NULL, NULL, "refused", 8},
        {"weights.bin", "32", NULL, "tensor 'bad': external data has 0 bytes", 8},
        {"weights.bin", "33", NULL, "past the end", 8},
        {"weights.bin", "16", "32", "runs past the end", 8},
        {"weights.bin", NULL, NULL, "external data has 32 bytes, shape [9] of float needs 36", 9},
        {"weights.bin", "-4", NULL, "is not a number", 8},
        {"missing.bin", NULL, NULL, "cannot open", 8},
        {".", NULL, NULL, "not a regular file", 8},
    };
    for (size_t i = 0; i < CELER_ARRAY_LEN(bad); i++) {
        ts[0] = mk_external("bad", bad[i].loc, bad[i].offset, bad[i].length, bad[i].n);
        model = NULL;
        assert_int_not_equal(load_with(ts, 1, &model), CELER_OK);
        assert_null(model);
        ASSERT_MSG_HAS(bad[i].text);
        ASSERT_MSG_HAS("model.onnx: graph 'g': initializer 0");
    }

    /* file-level errors */
    char path[256];
    assert_int_equal(celer_onnx_load(tmpdir, &model), CELER_ERR_IO);
    snprintf(path, sizeof path, "%s/nothing.onnx", tmpdir);
    assert_int_equal(celer_onnx_load(path, &model), CELER_ERR_IO);
    write_path("empty.onnx", "", 0);
    snprintf(path, sizeof path, "%s/empty.onnx", tmpdir);
    assert_int_equal(celer_onnx_load(path, &model), CELER_ERR_PARSE);

    static const char *files[] = {"weights.bin", "odd.bin", "model.onnx", "empty.onnx"};
    for (size_t i = 0; i < CELER_ARRAY_LEN(files); i++) {
        snprintf(path, sizeof path, "%s/%s", tmpdir, files[i]);
        unlink(path);
    }
    rmdir(tmpdir);
}

/* A model written by onnx.save_model(save_as_external_data=True) (tests/data/onnx_external). */
static void test_external_fixture(void **state) {
    (void)state;
    const char *dir = getenv("CELER_TEST_DATA");
    if (!dir) {
        print_message("CELER_TEST_DATA not set, skipped\n");
        skip();
    }
    char path[512];
    snprintf(path, sizeof path, "%s/onnx_external/model.onnx", dir);
    celer_onnx_model *model;
    assert_int_equal(celer_onnx_load(path, &model), CELER_OK);
    const celer_onnx_graph *g = model->graph;
    assert_int_equal(g->n_initializers, 2);
    assert_string_equal(g->initializers[0].name, "W");
    const float *w = g->initializers[0].tensor.data;
    for (int i = 0; i < 48; i++) assert_float_equal(w[i], 0.5f * (float)i, 0);
    const int64_t *b = g->initializers[1].tensor.data;
    for (int i = 0; i < 5; i++) assert_int_equal(b[i], i - 2);
    assert_string_equal(g->inputs[0].dim_params[0], "N");
    celer_onnx_free(model);
    /* the same bytes parsed without a folder may not reach external files */
    size_t len;
    void *bytes = read_file(path, &len);
    assert_non_null(bytes);
    assert_int_equal(celer_onnx_parse(bytes, len, NULL, &model), CELER_ERR_INVALID);
    ASSERT_MSG_HAS("tensor 'W': external data is not allowed");
    free(bytes);
}

/* ---- a loaded model no longer depends on its files ---- */

#define BIG_N (64 * 1024) /* floats: 256 KiB, several whole pages */

static float big_value(size_t i) { return (float)(i % 1000) * 0.25f + 1.0f; }

/* Writes <dir>/model.onnx with initializers "big" (BIG_N floats) and "small" (4 floats), placed
 * so that big's raw data starts 4-aligned in the file (the loader then uses it in place), and
 * "ext" (8 floats in <dir>/ext.bin). */
static void write_inplace_model(const char *dir) {
    float *w = malloc(BIG_N * sizeof *w);
    assert_non_null(w);
    for (size_t i = 0; i < BIG_N; i++) w[i] = big_value(i);
    const float small[4] = {7, 8, 9, 10}, ext[8] = {1, 2, 3, 4, 5, 6, 7, 8};
    int64_t big_dims[1] = {BIG_N}, small_dims[1] = {4};
    wbuf m = {0};
    for (int pad = 0; pad < 4; pad++) { /* the name's length moves the raw data by one byte */
        char name[8] = "big";
        memset(name + 3, 'x', (size_t)pad);
        name[3 + pad] = 0;
        wbuf ts[3];
        ts[0] = mk_tensor(name, CELER_FLOAT, big_dims, 1, w, BIG_N * sizeof *w);
        ts[1] = mk_tensor("small", CELER_FLOAT, small_dims, 1, small, sizeof small);
        ts[2] = mk_external("ext", "ext.bin", NULL, NULL, 8);
        wbuf g = mk_graph_node("Relu", NULL, NULL, 0);
        for (int i = 0; i < 3; i++) w_msg(&g, 5, &ts[i]);
        free(m.p);
        m = mk_model(8, &g);
        const unsigned char *at = memmem(m.p, m.n, w, BIG_N * sizeof *w);
        assert_non_null(at);
        if ((at - m.p) % 4 == 0) break;
    }
    char path[256];
    snprintf(path, sizeof path, "%s/model.onnx", dir);
    FILE *f = fopen(path, "wb");
    assert_non_null(f);
    assert_int_equal(fwrite(m.p, 1, m.n, f), m.n);
    fclose(f);
    snprintf(path, sizeof path, "%s/ext.bin", dir);
    f = fopen(path, "wb");
    assert_non_null(f);
    assert_int_equal(fwrite(ext, 1, sizeof ext, f), sizeof ext);
    fclose(f);
    free(m.p);
    free(w);
}

/* Runs fn(arg) in a child process, which exits 0 when fn returns true: a SIGBUS (a page of a
 * truncated file mapping) or SIGSEGV (an unmapped copy) fails the test with its reason instead
 * of killing the whole run. */
static void run_in_child(bool (*fn)(const void *), const void *arg, const char *when) {
    fflush(NULL);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        signal(SIGBUS, SIG_DFL); /* cmocka's handlers would turn the signal into a plain failure */
        signal(SIGSEGV, SIG_DFL);
        _exit(fn(arg) ? 0 : 1);
    }
    int status = 0;
    assert_int_equal(waitpid(pid, &status, 0), pid);
    if (WIFSIGNALED(status)) fail_msg("%s: died of signal %d", when, WTERMSIG(status));
    if (WEXITSTATUS(status) != 0) fail_msg("%s: wrong values", when);
}

/* Whether the weights of the model written by write_inplace_model are those written. */
static bool inplace_values_ok(const void *arg) {
    const celer_onnx_graph *g = ((const celer_onnx_model *)arg)->graph;
    const float *big = g->initializers[0].tensor.data, *small = g->initializers[1].tensor.data;
    const float *ext = g->initializers[2].tensor.data;
    int bad = 0;
    for (size_t i = 0; i < BIG_N; i++) bad += big[i] != big_value(i);
    for (int i = 0; i < 4; i++) bad += small[i] != (float)(7 + i);
    for (int i = 0; i < 8; i++) bad += ext[i] != (float)(1 + i);
    return bad == 0;
}

/* `cp new.onnx model.onnx` truncates the file, then writes: a model loaded before keeps its
 * weights (in place in its image, copied, or external), and dies of nothing. */
static void test_file_overwritten(void **state) {
    (void)state;
    char dir[64] = "/tmp/celer_onnx_XXXXXX", path[256], ext_path[256];
    assert_non_null(mkdtemp(dir));
    write_inplace_model(dir);
    snprintf(path, sizeof path, "%s/model.onnx", dir);
    snprintf(ext_path, sizeof ext_path, "%s/ext.bin", dir);
    celer_onnx_model *model = NULL;
    assert_int_equal(celer_onnx_load(path, &model), CELER_OK);
    const celer_onnx_graph *g = model->graph;
    assert_int_equal(g->n_initializers, 3);
    assert_int_equal((uintptr_t)g->initializers[0].tensor.data % 4, 0); /* the in-place case */
    run_in_child(inplace_values_ok, model, "loaded");

    assert_int_equal(truncate(path, 0), 0);
    assert_int_equal(truncate(ext_path, 0), 0);
    run_in_child(inplace_values_ok, model, "files truncated");

    /* different bytes of the old length, as the copy's writes would leave them */
    size_t len = sizeof(float) * BIG_N + 4096;
    unsigned char *junk = malloc(len);
    assert_non_null(junk);
    memset(junk, 0x5a, len);
    FILE *f = fopen(path, "r+b");
    assert_non_null(f);
    assert_int_equal(fwrite(junk, 1, len, f), len);
    fclose(f);
    f = fopen(ext_path, "r+b");
    assert_non_null(f);
    assert_int_equal(fwrite(junk, 1, 32, f), 32);
    fclose(f);
    free(junk);
    run_in_child(inplace_values_ok, model, "files overwritten");

    unlink(path);
    unlink(ext_path);
    run_in_child(inplace_values_ok, model, "files deleted");

    /* released bytes give back only whole pages of their own: the neighbour keeps its values */
    celer_onnx_release_data(model, &g->initializers[0].tensor);
    const float *small = g->initializers[1].tensor.data;
    for (int i = 0; i < 4; i++) assert_float_equal(small[i], (float)(7 + i), 0);
    celer_onnx_free(model);
    rmdir(dir);
}

/* A symlink may not take external data outside the model's folder; one that stays inside may. */
static void test_external_symlinks(void **state) {
    (void)state;
    char outside[64] = "/tmp/celer_onnx_out_XXXXXX", path[256], target[256];
    strcpy(tmpdir, "/tmp/celer_onnx_XXXXXX");
    assert_non_null(mkdtemp(tmpdir));
    assert_non_null(mkdtemp(outside));
    float w[8] = {1, 2, 3, 4, 5, 6, 7, 8}, secret[8] = {42, 42, 42, 42, 42, 42, 42, 42};
    write_path("weights.bin", w, sizeof w);
    snprintf(path, sizeof path, "%s/secret.bin", outside);
    FILE *f = fopen(path, "wb");
    assert_non_null(f);
    assert_int_equal(fwrite(secret, 1, sizeof secret, f), sizeof secret);
    fclose(f);

    snprintf(path, sizeof path, "%s/out.bin", tmpdir); /* file symlink to outside */
    snprintf(target, sizeof target, "%s/secret.bin", outside);
    assert_int_equal(symlink(target, path), 0);
    snprintf(path, sizeof path, "%s/outdir", tmpdir); /* folder symlink to outside */
    assert_int_equal(symlink(outside, path), 0);
    snprintf(path, sizeof path, "%s/rel.bin", tmpdir); /* relative symlink climbing out */
    snprintf(target, sizeof target, "../%s/secret.bin", strrchr(outside, '/') + 1);
    assert_int_equal(symlink(target, path), 0);
    snprintf(path, sizeof path, "%s/alias.bin", tmpdir); /* stays inside: allowed */
    assert_int_equal(symlink("weights.bin", path), 0);

    static const char *refused[] = {"out.bin", "outdir/secret.bin", "rel.bin"};
    celer_onnx_model *model = NULL;
    for (size_t i = 0; i < CELER_ARRAY_LEN(refused); i++) {
        wbuf t = mk_external("w", refused[i], NULL, NULL, 8);
        model = NULL;
        assert_int_equal(load_with(&t, 1, &model), CELER_ERR_INVALID);
        assert_null(model);
        char text[128];
        snprintf(text, sizeof text, "external data location '%s' is refused", refused[i]);
        ASSERT_MSG_HAS(text);
        ASSERT_MSG_HAS("outside the model's folder");
    }
    wbuf t = mk_external("w", "alias.bin", NULL, NULL, 8);
    assert_int_equal(load_with(&t, 1, &model), CELER_OK);
    assert_memory_equal(model->graph->initializers[0].tensor.data, w, sizeof w);
    celer_onnx_free(model);

    static const char *files[] = {"out.bin", "outdir", "rel.bin", "alias.bin", "weights.bin", "model.onnx"};
    for (size_t i = 0; i < CELER_ARRAY_LEN(files); i++) {
        snprintf(path, sizeof path, "%s/%s", tmpdir, files[i]);
        unlink(path);
    }
    snprintf(path, sizeof path, "%s/secret.bin", outside);
    unlink(path);
    rmdir(outside);
    rmdir(tmpdir);
}

/* ValueInfoProto: float tensor `name` of the given dims (rank 0: no shape). */
static wbuf mk_float_info(const char *name, const int64_t *dims, int rank) {
    wbuf vi = {0}, tp = {0}, tt = {0}, shape = {0}, dim = {0};
    w_int(&tt, 1, CELER_FLOAT);
    for (int i = 0; i < rank; i++) {
        w_int(&dim, 1, dims[i]);
        w_msg(&shape, 1, &dim);
    }
    if (rank) w_msg(&tt, 2, &shape);
    w_msg(&tp, 1, &tt);
    w_str(&vi, 1, name);
    w_msg(&vi, 2, &tp);
    return vi;
}

/* NodeProto with named inputs and one output; attrs serialized already (freed). */
static wbuf mk_node(const char *op, const char *const *in, int n_in, const char *out, wbuf *attrs, int n_attrs) {
    wbuf n = {0};
    for (int i = 0; i < n_in; i++) w_str(&n, 1, in[i]);
    w_str(&n, 2, out);
    w_str(&n, 4, op);
    for (int i = 0; i < n_attrs; i++) w_msg(&n, 5, &attrs[i]);
    return n;
}

#define ALIAS_N (64 * 32 * 9) /* 72 KiB of weights: a copy of its own, or whole pages in place */

typedef struct alias_case {
    const char *path;
    const float *w;
} alias_case;

/* Runs the model of test_released_alias: z = v + W with v = 0 must give W back. */
static bool alias_run_ok(const void *arg) {
    const alias_case *c = arg;
    celer_model *m = NULL;
    celer_context *ctx = NULL;
    if (celer_model_load(c->path, NULL, &m) || celer_context_init(m, &ctx)) return false;
    float *x = calloc(32 * 16, sizeof *x), *v = calloc(ALIAS_N, sizeof *v);
    celer_tensor in[2] = {{CELER_FLOAT, {4, {1, 32, 4, 4}}, x}, {CELER_FLOAT, {1, {ALIAS_N}}, v}};
    const celer_tensor *out;
    bool ok = x && v && celer_context_run(ctx, in, &out) == CELER_OK &&
              memcmp(out[1].data, c->w, ALIAS_N * sizeof(float)) == 0;
    free(x);
    free(v);
    celer_context_free(ctx);
    celer_model_free(m);
    return ok;
}

/* W feeds a Conv through a Reshape (folded at load: its output shares W's bytes) and an Add.
 * The Conv packs its weight and the runtime releases it, which must leave W's bytes to the Add,
 * whether W lies in the image (pages given back would read as zeros) or in a copy of its own
 * (unmapped). */
static void test_released_alias(void **state) {
    (void)state;
    char dir[64] = "/tmp/celer_onnx_XXXXXX", path[256];
    assert_non_null(mkdtemp(dir));
    snprintf(path, sizeof path, "%s/model.onnx", dir);
    float *w = malloc(ALIAS_N * sizeof *w);
    assert_non_null(w);
    uint64_t seed = 7;
    tu_fill_random(w, ALIAS_N, -1, 1, &seed);
    bool seen[2] = {false, false}; /* W in place, W copied */
    for (int pad = 0; pad < 4; pad++) { /* the doc string's length moves W's raw data by one byte */
        const int64_t w_dims[1] = {ALIAS_N}, shape_dims[1] = {4}, target[4] = {64, 32, 3, 3};
        const int64_t x_dims[4] = {1, 32, 4, 4}, v_dims[1] = {ALIAS_N}, pads[4] = {1, 1, 1, 1};
        wbuf g = {0}, a = {0}, t;
        static const char *const reshape_in[] = {"W", "wshape"}, *const conv_in[] = {"x", "W4"},
                                 *const add_in[] = {"v", "W"};
        w_str(&a, 1, "pads");
        w_packed_ints(&a, 8, pads, 4);
        w_int(&a, 20, CELER_ATTR_INTS);
        t = mk_node("Reshape", reshape_in, 2, "W4", NULL, 0);
        w_msg(&g, 1, &t);
        t = mk_node("Conv", conv_in, 2, "y", &a, 1);
        w_msg(&g, 1, &t);
        t = mk_node("Add", add_in, 2, "z", NULL, 0);
        w_msg(&g, 1, &t);
        w_str(&g, 2, "alias");
        w_str(&g, 10, &"...."[4 - pad]);
        t = mk_tensor("W", CELER_FLOAT, w_dims, 1, w, ALIAS_N * sizeof *w);
        w_msg(&g, 5, &t);
        t = mk_tensor("wshape", CELER_INT64, shape_dims, 1, target, sizeof target);
        w_msg(&g, 5, &t);
        t = mk_float_info("x", x_dims, 4);
        w_msg(&g, 11, &t);
        t = mk_float_info("v", v_dims, 1);
        w_msg(&g, 11, &t);
        t = mk_float_info("y", NULL, 0);
        w_msg(&g, 12, &t);
        t = mk_float_info("z", NULL, 0);
        w_msg(&g, 12, &t);
        wbuf m = mk_model(8, &g);
        const unsigned char *at = memmem(m.p, m.n, w, ALIAS_N * sizeof *w);
        assert_non_null(at);
        seen[(at - m.p) % 4 != 0] = true;
        FILE *f = fopen(path, "wb");
        assert_non_null(f);
        assert_int_equal(fwrite(m.p, 1, m.n, f), m.n);
        fclose(f);
        free(m.p);
        alias_case c = {path, w};
        char when[64];
        snprintf(when, sizeof when, "W %s", (at - m.p) % 4 ? "copied" : "in place");
        run_in_child(alias_run_ok, &c, when);
    }
    assert_true(seen[0] && seen[1]);
    unlink(path);
    rmdir(dir);
    free(w);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_conv_strides_padding),
        cmocka_unit_test(test_constant_and_pb),
        cmocka_unit_test(test_single_relu),
        cmocka_unit_test(test_if_subgraphs),
        cmocka_unit_test(test_conv_transpose_initializers),
        cmocka_unit_test(test_pb_tensors),
        cmocka_unit_test(test_truncation),
        cmocka_unit_test(test_attribute_kinds),
        cmocka_unit_test(test_value_infos),
        cmocka_unit_test(test_bad_tensors),
        cmocka_unit_test(test_bad_models),
        cmocka_unit_test(test_external_data),
        cmocka_unit_test(test_external_fixture),
        cmocka_unit_test(test_file_overwritten),
        cmocka_unit_test(test_external_symlinks),
        cmocka_unit_test(test_released_alias),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
