/* rnn operators. */
#include "ops.h"

static const celer_kernel kernels[] = {
    {0},
};

const celer_kernel_family celer_family_rnn = {"rnn", kernels, 0};
