/* Control-flow operators. Their subgraphs are run by the runtime (src/runtime/control.c); these
 * entries make them resolvable by opset like every other operator. Types are any: the runtime
 * infers output types from the subgraphs. */
#include "ops.h"

#define CONTROL(name_, since_)                                                                 \
    {.domain = "", .op = name_, .since = since_, .until = CELER_OPS_MAX_VERSION, .dtypes = 0,    \
     .type_input = -1, .flags = CELER_KERNEL_CONTROL}

static const celer_kernel kernels[] = {
    CONTROL("If", 1),
    CONTROL("Loop", 1),
    CONTROL("Scan", 9), /* Scan-8 (batch axis, sequence_lens) is not supported */
};

const celer_kernel_family celer_family_control = {"control", kernels, (int)CELER_ARRAY_LEN(kernels)};
