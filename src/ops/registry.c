/* The kernel table: one family table per operator family file, searched in this order. */
#include <stdio.h>
#include <string.h>

#include "ops.h"

extern const celer_kernel_family celer_family_elementwise;
extern const celer_kernel_family celer_family_reduce;
extern const celer_kernel_family celer_family_norm;
extern const celer_kernel_family celer_family_shape;
extern const celer_kernel_family celer_family_indexing;
extern const celer_kernel_family celer_family_conv;
extern const celer_kernel_family celer_family_pool;
extern const celer_kernel_family celer_family_gemm;
extern const celer_kernel_family celer_family_quant;
extern const celer_kernel_family celer_family_rnn;
extern const celer_kernel_family celer_family_image;
extern const celer_kernel_family celer_family_misc;
extern const celer_kernel_family celer_family_strings;
extern const celer_kernel_family celer_family_control;
extern const celer_kernel_family celer_family_fused;
extern const celer_kernel_family celer_family_attention;
extern const celer_kernel_family celer_family_deform;

static const celer_kernel_family *const families[] = {
    &celer_family_elementwise, &celer_family_reduce,  &celer_family_norm,
    &celer_family_shape,       &celer_family_indexing, &celer_family_conv,
    &celer_family_pool,        &celer_family_gemm,    &celer_family_quant,
    &celer_family_rnn,         &celer_family_image,   &celer_family_misc,
    &celer_family_strings,     &celer_family_control, &celer_family_fused,
    &celer_family_attention,   &celer_family_deform,
};

const celer_kernel_family *const *celer_ops_families(int *count) {
    *count = (int)CELER_ARRAY_LEN(families);
    return families;
}

static bool same_domain(const char *a, const char *b) {
    if (!a || !strcmp(a, "ai.onnx")) a = "";
    if (!b || !strcmp(b, "ai.onnx")) b = "";
    return strcmp(a, b) == 0;
}

bool celer_ops_known(const char *domain, const char *op) {
    for (size_t f = 0; f < CELER_ARRAY_LEN(families); f++)
        for (int i = 0; i < families[f]->count; i++) {
            const celer_kernel *k = &families[f]->kernels[i];
            if (!strcmp(k->op, op) && same_domain(k->domain, domain)) return true;
        }
    return false;
}

const celer_kernel *celer_ops_find(const char *domain, const char *op, int opset,
                                   const celer_dtype *input_types, int n_inputs) {
    celer_dtype dtype = CELER_UNDEFINED;
    bool op_seen = false, version_seen = false;
    uint32_t types_seen = 0;
    for (size_t f = 0; f < CELER_ARRAY_LEN(families); f++)
        for (int i = 0; i < families[f]->count; i++) {
            const celer_kernel *k = &families[f]->kernels[i];
            if (strcmp(k->op, op) || !same_domain(k->domain, domain)) continue;
            op_seen = true;
            if (opset < k->since || opset > k->until) continue;
            version_seen = true;
            if (k->type_input < 0) return k;
            types_seen |= k->dtypes;
            dtype = k->type_input < n_inputs ? input_types[k->type_input] : CELER_UNDEFINED;
            if ((unsigned)dtype < 32 && (k->dtypes & CELER_DT(dtype))) return k;
        }
    const char *dom = domain && *domain ? domain : "ai.onnx";
    if (!op_seen)
        celer_errorf(CELER_ERR_UNSUPPORTED, "operator %s (domain %s) is not supported at any version (model opset %d)",
                     op, dom, opset);
    else if (!version_seen)
        celer_errorf(CELER_ERR_UNSUPPORTED, "operator %s is not supported at opset %d of %s", op,
                     opset, dom);
    else {
        char list[256] = "";
        size_t n = 0;
        for (int t = 1; t < CELER_DTYPE_COUNT && n < sizeof list; t++)
            if (types_seen & CELER_DT(t))
                n += (size_t)snprintf(list + n, sizeof list - n, "%s%s", n ? ", " : "",
                                      celer_dtype_name((celer_dtype)t));
        celer_errorf(CELER_ERR_UNSUPPORTED,
                     "operator %s (opset %d of %s) has no kernel for type %s (supported: %s)", op,
                     opset, dom, celer_dtype_name(dtype), list);
    }
    return NULL;
}
