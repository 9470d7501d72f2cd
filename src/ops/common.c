/* Small helpers shared by kernels. */
#include <stdio.h>
#include <string.h>

#include "ops.h"

celer_status celer_ops_reshape_same(celer_kernel_call *call) {
    call->out[0].shape = call->in[0]->shape;
    return CELER_OK;
}

const char *celer_ops_who(const celer_op_info *info, char *buf, size_t cap) {
    const char *name = info->node->name && info->node->name[0] ? info->node->name : "";
    if (name[0])
        snprintf(buf, cap, "%s '%s'", info->node->op_type, name);
    else
        snprintf(buf, cap, "%s", info->node->op_type);
    return buf;
}

celer_status celer_ops_axis(const celer_op_info *info, int64_t axis, int rank, int *out) {
    if (axis < -rank || axis >= (rank ? rank : 1)) {
        char who[160];
        return celer_errorf(CELER_ERR_INVALID, "%s: axis %lld is out of range for rank %d",
                            celer_ops_who(info, who, sizeof who), (long long)axis, rank);
    }
    *out = (int)(axis < 0 ? axis + rank : axis);
    return CELER_OK;
}

int64_t celer_ops_int_at(const celer_tensor *t, int64_t i) {
    switch (t->dtype) {
    case CELER_INT64: return ((const int64_t *)t->data)[i];
    case CELER_INT32: return ((const int32_t *)t->data)[i];
    case CELER_INT16: return ((const int16_t *)t->data)[i];
    case CELER_INT8: return ((const int8_t *)t->data)[i];
    case CELER_UINT64: return (int64_t)((const uint64_t *)t->data)[i];
    case CELER_UINT32: return ((const uint32_t *)t->data)[i];
    case CELER_UINT16: return ((const uint16_t *)t->data)[i];
    case CELER_UINT8:
    case CELER_BOOL: return ((const uint8_t *)t->data)[i];
    default: return (int64_t)celer_ops_double_at(t, i);
    }
}

double celer_ops_double_at(const celer_tensor *t, int64_t i) {
    switch (t->dtype) {
    case CELER_FLOAT: return ((const float *)t->data)[i];
    case CELER_DOUBLE: return ((const double *)t->data)[i];
    case CELER_FLOAT16: return celer_half_to_float(((const uint16_t *)t->data)[i]);
    case CELER_BFLOAT16: return celer_bf16_to_float(((const uint16_t *)t->data)[i]);
    case CELER_INT64: return (double)((const int64_t *)t->data)[i];
    case CELER_UINT64: return (double)((const uint64_t *)t->data)[i];
    case CELER_INT32:
    case CELER_INT16:
    case CELER_INT8:
    case CELER_UINT32:
    case CELER_UINT16:
    case CELER_UINT8:
    case CELER_BOOL: return (double)celer_ops_int_at(t, i);
    default: return 0;
    }
}

void celer_ops_double_store(celer_tensor *t, int64_t i, double v) {
    switch (t->dtype) {
    case CELER_FLOAT: ((float *)t->data)[i] = (float)v; break;
    case CELER_DOUBLE: ((double *)t->data)[i] = v; break;
    case CELER_FLOAT16: ((uint16_t *)t->data)[i] = celer_float_to_half((float)v); break;
    case CELER_BFLOAT16: ((uint16_t *)t->data)[i] = celer_float_to_bf16((float)v); break;
    case CELER_INT64: ((int64_t *)t->data)[i] = (int64_t)v; break;
    case CELER_INT32: ((int32_t *)t->data)[i] = (int32_t)v; break;
    case CELER_INT16: ((int16_t *)t->data)[i] = (int16_t)v; break;
    case CELER_INT8: ((int8_t *)t->data)[i] = (int8_t)v; break;
    case CELER_UINT64: ((uint64_t *)t->data)[i] = (uint64_t)v; break;
    case CELER_UINT32: ((uint32_t *)t->data)[i] = (uint32_t)v; break;
    case CELER_UINT16: ((uint16_t *)t->data)[i] = (uint16_t)v; break;
    case CELER_UINT8: ((uint8_t *)t->data)[i] = (uint8_t)v; break;
    case CELER_BOOL: ((uint8_t *)t->data)[i] = v != 0; break;
    default: break;
    }
}
