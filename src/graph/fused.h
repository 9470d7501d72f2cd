/* The internal operators the graph passes create (graph/optimize.c) and the ops kernels run
 * (ops/fused.c): their names, input slots and attributes, in domain CELER_GRAPH_INTERNAL_DOMAIN.
 * One copy of the contract for both sides; what each operator computes is described in
 * ops/fused.c. Internal to src/graph and src/ops (ops may include graph's headers, never the
 * reverse): a model file cannot name these operators. */
#ifndef CELER_GRAPH_FUSED_H
#define CELER_GRAPH_FUSED_H

/* Operator types. */
#define FUSED_OP_CONV "FusedConv"
#define FUSED_OP_MATMUL "FusedMatMul"
#define FUSED_OP_GELU "Gelu"
#define FUSED_OP_BLOCKED_POOL "BlockedPool"
#define FUSED_OP_LAYOUT_TO_PLAIN "LayoutToPlain"
#define FUSED_OP_BLOCKED_GLOBAL_AVG "BlockedGlobalAveragePool"
#define FUSED_OP_BLOCKED_SCALE "BlockedScale"
#define FUSED_OP_BLOCKED_CONCAT "BlockedConcat"

/* FusedConv's input slots: X, W, B?, Sum?, then the BatchNormalization it folded, if any. */
enum { FC_X, FC_W, FC_B, FC_SUM, FC_BN_SCALE, FC_BN_BIAS, FC_BN_MEAN, FC_BN_VAR, FC_INPUTS };

/* Attributes beyond those of the ONNX node a fused node was made from.
 *
 * The activation of FusedConv and FusedMatMul (after a residual Sum: sum_activation, FusedConv
 * only) is named by its ONNX operator: Relu, LeakyRelu (alpha), Clip (alpha = min, beta = max),
 * Sigmoid, Tanh, Gelu (erf form), HardSwish, HardSigmoid (alpha, beta), Swish (x sigmoid(alpha x),
 * alpha 1: SiLU written as Mul(x, Sigmoid(x))); FusedConv also GeluTanh (ONNX Gelu with
 * approximate "tanh"). Its parameters are floats, 0 when unused. */
#define FUSED_ATTR_ACTIVATION "activation"
#define FUSED_ATTR_ACTIVATION_ALPHA "activation_alpha"
#define FUSED_ATTR_ACTIVATION_BETA "activation_beta"
#define FUSED_ATTR_SUM_ACTIVATION "sum_activation"
#define FUSED_ATTR_SUM_ACTIVATION_ALPHA "sum_activation_alpha"
#define FUSED_ATTR_SUM_ACTIVATION_BETA "sum_activation_beta"
/* FusedConv: 1 when made from a ConvTranspose (int; W is then [C, M/group, k...]). */
#define FUSED_ATTR_TRANSPOSED "transposed"
/* FusedConv: epsilon of the folded BatchNormalization (float). */
#define FUSED_ATTR_BN_EPSILON "bn_epsilon"
/* FusedConv and BlockedPool: the channel block of X's (and Sum's) and of Y's layout (int; 0 or
 * absent: plain). */
#define FUSED_ATTR_X_BLOCKED "x_blocked"
#define FUSED_ATTR_Y_BLOCKED "y_blocked"
/* BlockedPool: "max" (from MaxPool) or "avg" (from AveragePool, with its count_include_pad). */
#define FUSED_ATTR_POOL_MODE "mode"
#define FUSED_POOL_MAX "max"
#define FUSED_POOL_AVG "avg"
/* LayoutToPlain, BlockedGlobalAveragePool, BlockedScale, BlockedConcat: the channel block of
 * the blocked input(s) (int). */
#define FUSED_ATTR_BLOCK "block"
/* LayoutToPlain: the channels of its output when fewer than its input's, whose channel count was
 * padded up to a multiple of the block (int; absent: the same). */
#define FUSED_ATTR_CHANNELS "channels"

#endif
