/* libFuzzer target: arbitrary bytes through celer_onnx_parse and celer_onnx_parse_tensor. Every
 * byte the decoded model points at is read back, so ASan catches a tensor or string that points
 * outside its buffer. External data is forbidden (base_dir NULL): the fuzzer must not open files. */
#include <stdint.h>
#include <string.h>

#include "onnx/onnx.h"

static volatile uint64_t sink;

static uint64_t touch_bytes(const void *p, size_t n) {
    const unsigned char *c = p;
    uint64_t h = 0;
    for (size_t i = 0; i < n; i++) h = h * 31 + c[i];
    return h;
}

static uint64_t touch_tensor(const celer_tensor *t) {
    int64_t numel = celer_shape_numel(&t->shape);
    if (numel < 0) __builtin_trap(); /* the reader promised a known shape */
    if (t->dtype == CELER_STRING) {
        uint64_t h = 0;
        for (int64_t i = 0; i < numel; i++) h += ((const celer_str *)t->data)[i].len;
        return h;
    }
    return touch_bytes(t->data, (size_t)numel * celer_dtype_size(t->dtype));
}

static uint64_t touch_graph(const celer_onnx_graph *g) {
    uint64_t h = strlen(g->name);
    for (int i = 0; i < g->n_initializers; i++)
        h += strlen(g->initializers[i].name) + touch_tensor(&g->initializers[i].tensor);
    for (int i = 0; i < g->n_inputs; i++) h += strlen(g->inputs[i].name) + (uint64_t)g->inputs[i].shape.rank;
    for (int i = 0; i < g->n_outputs; i++) h += strlen(g->outputs[i].name);
    for (int i = 0; i < g->n_value_infos; i++) h += strlen(g->value_infos[i].name);
    for (int i = 0; i < g->n_nodes; i++) {
        const celer_onnx_node *n = &g->nodes[i];
        h += strlen(n->op_type) + strlen(n->name) + strlen(n->domain);
        for (int k = 0; k < n->n_inputs; k++) h += strlen(n->inputs[k]);
        for (int k = 0; k < n->n_outputs; k++) h += strlen(n->outputs[k]);
        for (int k = 0; k < n->n_attrs; k++) {
            const celer_onnx_attr *a = &n->attrs[k];
            h += strlen(a->name);
            switch (a->type) {
            case CELER_ATTR_STRING: h += touch_bytes(a->s, a->s_len); break;
            case CELER_ATTR_TENSOR: h += touch_tensor(a->t); break;
            case CELER_ATTR_GRAPH: h += touch_graph(a->g); break;
            case CELER_ATTR_FLOATS: h += touch_bytes(a->floats, (size_t)a->n * sizeof(float)); break;
            case CELER_ATTR_INTS: h += touch_bytes(a->ints, (size_t)a->n * sizeof(int64_t)); break;
            case CELER_ATTR_STRINGS:
                for (int j = 0; j < a->n; j++) h += a->strings[j].len;
                break;
            case CELER_ATTR_TENSORS:
                for (int j = 0; j < a->n; j++) h += touch_tensor(&a->tensors[j]);
                break;
            case CELER_ATTR_GRAPHS:
                for (int j = 0; j < a->n; j++) h += touch_graph(a->graphs[j]);
                break;
            default: break;
            }
        }
    }
    return h;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    celer_onnx_model *m = NULL;
    if (celer_onnx_parse(data, size, NULL, &m) == CELER_OK) {
        uint64_t h = touch_graph(m->graph) + strlen(m->producer_name) + strlen(m->doc_string);
        for (int i = 0; i < m->n_opsets; i++) h += strlen(m->opsets[i].domain);
        for (int i = 0; i < m->n_props; i++) h += strlen(m->props[i].key) + strlen(m->props[i].value);
        h += (uint64_t)celer_onnx_opset_version(m, "");
        sink = h;
        celer_onnx_free(m);
    }
    celer_arena arena;
    celer_arena_init(&arena, 0, 0);
    celer_tensor t;
    const char *name;
    if (celer_onnx_parse_tensor(data, size, &arena, &t, &name) == CELER_OK) sink = touch_tensor(&t) + strlen(name);
    celer_arena_free(&arena);
    return 0;
}
