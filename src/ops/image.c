/* image operators. */
#include "ops.h"

static const celer_kernel kernels[] = {
    {0},
};

const celer_kernel_family celer_family_image = {"image", kernels, 0};
