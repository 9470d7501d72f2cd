/* rnn: the recurrent layers RNN, GRU and LSTM (ai.onnx, opsets 7 and 14).
 *
 * One routine serves the three: a layer is G gate blocks of H hidden units (RNN 1, GRU 3 "zrh",
 * LSTM 4 "iofc"). The input projection of every time step and both directions is computed before
 * the recurrence (X[S*B, I] · W^T -> [S*B, D*G*H], in X's own row order, so layout 1 needs no
 * transpose), then each step does the recurrent product H_prev[B, H] · R^T and the gate
 * arithmetic per batch row. GRU with linear_before_reset = 0 needs a second, smaller product per
 * step ((r ⊙ H_prev) · R_h^T).
 *
 * Speed (batch 1-2 is the serving case):
 * - the products run on weights packed once (at init when W, R are constants) into column panels
 *   that a kernel streams front to back (panel_gemv, compiled for AVX-512, AVX2 and baseline and
 *   picked at load): R for up to PANEL_ROWS (16) batch rows, W when I <= WPANEL_MAX_I; else OpenBLAS
 *   SGEMM (W for both directions in one call, R per step);
 * - the default activations (Sigmoid/Tanh) run as whole-vector loops over vmath's functions;
 *   other activations take the per-element act_one();
 * - at 2 threads, a bidirectional layer's directions run side by side, and a unidirectional
 *   layer's step is split in two halves of the hidden units, claimed by whichever thread runs
 *   (work_queue), or from 8 batch rows its rows in two halves, each run through the sequence by
 *   one thread.
 *
 * Double and float16 inputs are converted to float in scratch, computed in float and converted
 * back: their results have float precision.
 *
 * Sequence lengths: batch row b is active at time index s when s < sequence_lens[b] (both
 * directions; the reverse direction starts at sequence_lens[b] - 1). Inactive steps write zeros
 * to Y and leave the state alone; a row of length 0 reports zero Y_h/Y_c. */
/* Nothing here reads the floating-point exception flags: let GCC if-convert the selects in the
 * gate loops (clip, vmath) so that they vectorize (see elementwise.c). And let it fuse a*b + c
 * into FMA where the target has it: -std=c17 turns contraction off, which made the panel kernel a
 * multiply and an add per product (as fused.c does). */
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC optimize("no-trapping-math", "fp-contract=fast")
#endif

#include <cblas.h>
#include <math.h>
#include <omp.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "ops.h"
#include "vmath.h"

/* OpenBLAS's cblas.h pulls in <complex.h>, whose `I` macro would clash with the input size I. */
#undef I

/* Scratch bigger than this is refused (it is sized from input shapes). */
#define MAX_SCRATCH CELER_OPS_MAX_BYTES
/* BLAS takes int sizes. */
#define BLAS_MAX INT64_C(0x7fffffff)

/* ------------------------------------------------------------------------------------------ */
/* activation functions                                                                        */

typedef enum act_kind {
    ACT_RELU,
    ACT_TANH,
    ACT_SIGMOID,
    ACT_AFFINE,
    ACT_LEAKY_RELU,
    ACT_THRESHOLDED_RELU,
    ACT_SCALED_TANH,
    ACT_HARD_SIGMOID,
    ACT_ELU,
    ACT_SOFTSIGN,
    ACT_SOFTPLUS,
} act_kind;

/* Name, how many of activation_alpha / activation_beta it consumes, and their defaults (the
 * defaults of the ONNX operators of the same name). */
static const struct act_def {
    const char *name;
    act_kind kind;
    int n_alpha, n_beta;
    float alpha, beta;
} act_defs[] = {
    {"Relu", ACT_RELU, 0, 0, 0, 0},
    {"Tanh", ACT_TANH, 0, 0, 0, 0},
    {"Sigmoid", ACT_SIGMOID, 0, 0, 0, 0},
    {"Affine", ACT_AFFINE, 1, 1, 1.0f, 0.0f},
    {"LeakyRelu", ACT_LEAKY_RELU, 1, 0, 0.01f, 0},
    {"ThresholdedRelu", ACT_THRESHOLDED_RELU, 1, 0, 1.0f, 0},
    {"ScaledTanh", ACT_SCALED_TANH, 1, 1, 1.0f, 1.0f},
    {"HardSigmoid", ACT_HARD_SIGMOID, 1, 1, 0.2f, 0.5f},
    {"Elu", ACT_ELU, 1, 0, 1.0f, 0},
    {"Softsign", ACT_SOFTSIGN, 0, 0, 0, 0},
    {"Softplus", ACT_SOFTPLUS, 0, 0, 0, 0},
};

typedef struct act {
    act_kind kind;
    float alpha, beta;
} act;

static inline float act_one(const act *a, float x) {
    switch (a->kind) {
    case ACT_RELU: return x > 0 ? x : 0;
    case ACT_TANH: return tanhf(x);
    case ACT_SIGMOID: return 1.0f / (1.0f + expf(-x));
    case ACT_AFFINE: return a->alpha * x + a->beta;
    case ACT_LEAKY_RELU: return x < 0 ? a->alpha * x : x;
    case ACT_THRESHOLDED_RELU: return x > a->alpha ? x : 0;
    case ACT_SCALED_TANH: return a->alpha * tanhf(a->beta * x);
    case ACT_HARD_SIGMOID: {
        float v = a->alpha * x + a->beta;
        return v < 0 ? 0 : v > 1 ? 1 : v;
    }
    case ACT_ELU: return x < 0 ? a->alpha * (expf(x) - 1.0f) : x;
    case ACT_SOFTSIGN: return x / (1.0f + fabsf(x));
    case ACT_SOFTPLUS: return x > 20.0f ? x : log1pf(expf(x));
    }
    return x;
}

/* ------------------------------------------------------------------------------------------ */
/* recurrent product on packed panels                                                          */

/* Each step multiplies 1-2 state rows by R^T [H, G*H]: a matrix-vector product that streams all
 * of R, where OpenBLAS SGEMM would repack R on every call. R is packed once into panels of TILE
 * output columns: panel t holds, for k = 0..H-1, the TILE values R[t*TILE + jj][k] side by side,
 * so a step reads memory front to back and keeps TILE sums per row in vector registers. */
enum { TILE = 64 };       /* 4 AVX-512 vectors: 8 accumulators for 2 rows */
enum { PANEL_ROWS = 16 }; /* batch rows up to which a step runs on the panels: the kernel re-reads a panel per
                             row pair, from L2 after the first pair (a panel of a 256-unit layer is 64 KB),
                             where SGEMM repacks all of R per step: at 4 rows batch 8 ran on SGEMM, 1.8x ONNX
                             Runtime's time on a 2-layer LSTM and 1.4x on a bidirectional GRU */
enum { ROWS_SPLIT_MIN = 8 }; /* batch rows from which two threads split a unidirectional layer by rows: a
                                quad pass of the kernel each (rnn_run) */

#if defined(__GNUC__) && !defined(__clang__) && defined(__x86_64__) && !defined(__SANITIZE_ADDRESS__)
#define RNN_CLONES __attribute__((target_clones("arch=x86-64-v4", "arch=x86-64-v3", "default")))
#else
#define RNN_CLONES
#endif

typedef float vtile __attribute__((vector_size(TILE / 4 * sizeof(float)))); /* a quarter panel row */

static int64_t n_panels(int64_t n) { return (n + TILE - 1) / TILE; }

/* A direction's hidden units [u0, u0 + n) with their own panels, so that two threads can each run
 * one part of every step (a unidirectional layer at 2 threads; one thread runs both in turn).
 * pk_a: offset in floats of the panels of the part's gate columns g*H + u0 + jj (g < G; GRU
 * without linear_before_reset: z and r only), ordered g-major, so a step's output row holds the
 * part's gates n apart; pk_b: the GRU's h-gate columns for its second product. */
typedef struct part {
    int64_t u0, n, pk_a, pk_b;
} part;

/* Splits H units into parts (2 for a unidirectional layer of 64+ units, where two threads pay for
 * their barrier per step; else 1), in halves rounded to 16 for the vector loops. Returns the count
 * and sets *floats to the direction's panel floats. */
static int split_parts(int64_t G, int64_t H, int64_t D, bool gru_split, part pt[2], int64_t *floats) {
    int np = D == 1 && H >= 64 ? 2 : 1;
    int64_t ga = gru_split ? 2 : G, half = (H / 2 + 15) / 16 * 16, off = 0;
    for (int i = 0; i < np; i++) {
        pt[i].u0 = i == 0 ? 0 : half;
        pt[i].n = np == 1 ? H : i == 0 ? half : H - half;
        pt[i].pk_a = off;
        off += n_panels(ga * pt[i].n) * H * TILE;
        pt[i].pk_b = off;
        off += gru_split ? n_panels(pt[i].n) * H * TILE : 0;
    }
    *floats = off;
    return np;
}

/* Packs into dst the columns c < ng*n, taken from row (g0 + c / n) * H + u0 + c % n of r (rows of
 * K floats: R with K = H, or W with K = I), as panels (zero-padded past ng*n). */
static void pack_cols(const float *r, int64_t K, int64_t H, int64_t g0, int64_t ng, int64_t u0, int64_t n,
                      float *dst) {
    int64_t cols = ng * n, np = n_panels(cols);
    if (np > 0) memset(dst + (np - 1) * K * TILE, 0, (size_t)(K * TILE) * sizeof(float)); /* last panel's padding */
    for (int64_t c = 0; c < cols; c++) {
        const float *row = r + ((g0 + c / n) * H + u0 + c % n) * K;
        float *o = dst + (c / TILE) * K * TILE + c % TILE;
        for (int64_t k = 0; k < K; k++) o[k * TILE] = row[k];
    }
}

/* Packs part q of direction's R [G*H, H] (float) into the direction's panels dst. */
static void pack_part(const float *r, int64_t G, int64_t H, bool gru_split, const part *q, float *dst) {
    pack_cols(r, H, H, 0, gru_split ? 2 : G, q->u0, q->n, dst + q->pk_a);
    if (gru_split) pack_cols(r, H, H, 2, 1, q->u0, q->n, dst + q->pk_b);
}

/* out[b, 0 .. np*TILE) = init + h[b, 0..K) · panels pk, for b < B. h rows are ldh apart; out rows
 * are ldo apart, 64-byte aligned, with room for np*TILE columns; pk is 64-byte aligned; init is
 * a 64-byte aligned row of np*TILE floats, or NULL for zeros. Row pairs share each panel load; a
 * single row splits k in two halves of accumulators for more independent FMAs. */
RNN_CLONES static void panel_gemv(int64_t B, int64_t K, int64_t np, const float *pk, const float *init,
                                  const float *h, int64_t ldh, float *out, int64_t ldo) {
    /* four rows per panel pass halve the panel reads, but their 16 accumulators fit only
     * AVX-512's 32 registers (AVX2's 16 would spill) */
    const bool quads = __builtin_cpu_supports("avx512f");
    for (int64_t t = 0; t < np; t++) {
        const vtile *p = (const vtile *)(pk + t * K * TILE);
        const vtile *in = init ? (const vtile *)(init + t * TILE) : NULL;
        const vtile z = {0}, i0 = in ? in[0] : z, i1 = in ? in[1] : z, i2 = in ? in[2] : z, i3 = in ? in[3] : z;
        int64_t b = 0;
        for (; quads && b + 3 < B; b += 4) {
            const float *h0 = h + b * ldh, *h1 = h0 + ldh, *h2 = h1 + ldh, *h3 = h2 + ldh;
            vtile a0 = i0, a1 = i1, a2 = i2, a3 = i3, c0 = i0, c1 = i1, c2 = i2, c3 = i3;
            vtile d0 = i0, d1 = i1, d2 = i2, d3 = i3, e0 = i0, e1 = i1, e2 = i2, e3 = i3;
            for (int64_t k = 0; k < K; k++) {
                const vtile *q = p + 4 * k;
                float u = h0[k], v = h1[k], w = h2[k], z = h3[k];
                a0 += u * q[0], a1 += u * q[1], a2 += u * q[2], a3 += u * q[3];
                c0 += v * q[0], c1 += v * q[1], c2 += v * q[2], c3 += v * q[3];
                d0 += w * q[0], d1 += w * q[1], d2 += w * q[2], d3 += w * q[3];
                e0 += z * q[0], e1 += z * q[1], e2 += z * q[2], e3 += z * q[3];
            }
            vtile *o = (vtile *)(out + b * ldo + t * TILE), *o1 = (vtile *)(out + (b + 1) * ldo + t * TILE);
            vtile *o2 = (vtile *)(out + (b + 2) * ldo + t * TILE), *o3 = (vtile *)(out + (b + 3) * ldo + t * TILE);
            o[0] = a0, o[1] = a1, o[2] = a2, o[3] = a3;
            o1[0] = c0, o1[1] = c1, o1[2] = c2, o1[3] = c3;
            o2[0] = d0, o2[1] = d1, o2[2] = d2, o2[3] = d3;
            o3[0] = e0, o3[1] = e1, o3[2] = e2, o3[3] = e3;
        }
        for (; b + 1 < B; b += 2) {
            const float *h0 = h + b * ldh, *h1 = h0 + ldh;
            vtile a0 = i0, a1 = i1, a2 = i2, a3 = i3, c0 = i0, c1 = i1, c2 = i2, c3 = i3;
            for (int64_t k = 0; k < K; k++) {
                const vtile *q = p + 4 * k;
                float u = h0[k], v = h1[k];
                a0 += u * q[0], a1 += u * q[1], a2 += u * q[2], a3 += u * q[3];
                c0 += v * q[0], c1 += v * q[1], c2 += v * q[2], c3 += v * q[3];
            }
            vtile *o = (vtile *)(out + b * ldo + t * TILE), *o1 = (vtile *)(out + (b + 1) * ldo + t * TILE);
            o[0] = a0, o[1] = a1, o[2] = a2, o[3] = a3;
            o1[0] = c0, o1[1] = c1, o1[2] = c2, o1[3] = c3;
        }
        if (b < B) {
            const float *h0 = h + b * ldh;
            vtile a0 = i0, a1 = i1, a2 = i2, a3 = i3, c0 = {0}, c1 = {0}, c2 = {0}, c3 = {0};
            int64_t k = 0;
            for (; k + 1 < K; k += 2) {
                const vtile *q = p + 4 * k;
                float u = h0[k], v = h0[k + 1];
                a0 += u * q[0], a1 += u * q[1], a2 += u * q[2], a3 += u * q[3];
                c0 += v * q[4], c1 += v * q[5], c2 += v * q[6], c3 += v * q[7];
            }
            if (k < K) {
                const vtile *q = p + 4 * k;
                float u = h0[k];
                a0 += u * q[0], a1 += u * q[1], a2 += u * q[2], a3 += u * q[3];
            }
            vtile *o = (vtile *)(out + b * ldo + t * TILE);
            o[0] = a0 + c0, o[1] = a1 + c1, o[2] = a2 + c2, o[3] = a3 + c3;
        }
    }
}

/* ------------------------------------------------------------------------------------------ */
/* attributes                                                                                  */

typedef enum rnn_kind { KIND_RNN, KIND_GRU, KIND_LSTM } rnn_kind;

/* Per kind: gate blocks, activations per direction and their defaults, input/output counts. */
static const struct kind_def {
    const char *name;
    int gates, n_act;
    act_kind dflt[3];
} kind_defs[] = {
    [KIND_RNN] = {"RNN", 1, 1, {ACT_TANH}},
    [KIND_GRU] = {"GRU", 3, 2, {ACT_SIGMOID, ACT_TANH}},
    [KIND_LSTM] = {"LSTM", 4, 3, {ACT_SIGMOID, ACT_TANH, ACT_TANH}},
};

enum { IN_X, IN_W, IN_R, IN_B, IN_SEQ, IN_H0, IN_C0, IN_P };
enum { OUT_Y, OUT_YH, OUT_YC };

typedef enum rnn_dir { DIR_FORWARD, DIR_REVERSE, DIR_BIDIRECTIONAL } rnn_dir;

/* Immutable after init. */
typedef struct rnn_state {
    rnn_kind kind;
    rnn_dir dir;
    int dirs;           /* 1 or 2 */
    int64_t hidden;     /* hidden_size attribute; -1 when absent (taken from R) */
    int layout;         /* 0: [S, B, ...]; 1: [B, S, ...] (opset >= 14) */
    float clip;         /* > 0: gate pre-activations are clipped to [-clip, clip] */
    bool lbr;           /* GRU linear_before_reset */
    bool input_forget;  /* LSTM: forget gate = 1 - input gate */
    act acts[2][3];     /* [direction][f, g, h] */
    bool fast[2];       /* [direction]: the default activations, run as vector loops */
    float *panels;      /* R packed per direction (split_parts() floats each) when R is a constant; owned */
    int64_t panels_h;   /* the hidden size they were packed for */
    float *wpanels;     /* W packed per direction (n_panels(G*H) panels of I rows) when W is a constant
                           with I <= WPANEL_MAX_I; owned */
    int64_t wpanels_i, wpanels_gh; /* the input size and gate columns they were packed for */
} rnn_state;

static void rnn_free(void *p) {
    rnn_state *s = p;
    if (s) free(s->panels), free(s->wpanels);
    free(s);
}

/* When R is a constant of a consistent shape, packs it for the panel kernel into s->panels
 * (owned by s): runs then skip the packing. Anything unusual is left to run, which packs into
 * scratch or reports the shape error. */
static celer_status pack_constant_r(const celer_op_info *info, rnn_state *s) {
    const celer_tensor *r = info->input_constants && info->n_inputs > IN_R ? info->input_constants[IN_R] : NULL;
    if (!r || r->shape.rank != 3) return CELER_OK;
    int64_t G = kind_defs[s->kind].gates, D = r->shape.dims[0], GH = r->shape.dims[1], H = r->shape.dims[2];
    /* H bound: keeps the products below from overflowing; larger layers pack in run */
    if (D != s->dirs || H <= 0 || H > 65536 || GH != G * H || (s->hidden > 0 && s->hidden != H)) return CELER_OK;
    bool split = s->kind == KIND_GRU && !s->lbr;
    part pt[2];
    int64_t pf;
    int np = split_parts(G, H, D, split, pt, &pf);
    size_t n = (size_t)D * (size_t)pf, nr = (size_t)(D * GH * H);
    if (n > MAX_SCRATCH / sizeof(float)) return CELER_OK; /* run refuses or packs into scratch */
    float *rf = malloc(nr * sizeof *rf);
    s->panels = aligned_alloc(64, (n * sizeof(float) + 63) & ~(size_t)63);
    if (!rf || !s->panels) {
        free(rf);
        return celer_ops_error(info, CELER_ERR_NOMEM, "out of memory packing R (%zu bytes)", n * sizeof(float));
    }
    for (size_t i = 0; i < nr; i++) rf[i] = (float)celer_ops_double_at(r, (int64_t)i);
    for (int64_t d = 0; d < D; d++)
        for (int i = 0; i < np; i++) pack_part(rf + d * GH * H, G, H, split, &pt[i], s->panels + d * pf);
    free(rf);
    s->panels_h = H;
    return CELER_OK;
}

/* Input sizes up to which the input projection runs on W packed in panels: a panel (I * 256
 * bytes) stays in L2 while every row of X passes it. Larger goes to OpenBLAS SGEMM. */
#define WPANEL_MAX_I 1024

/* When W is a constant [dirs, G*H, I] with I <= WPANEL_MAX_I, packs it into s->wpanels (owned by
 * s) for the input projection: OpenBLAS would copy W on every call. Else leaves it to run. */
static celer_status pack_constant_w(const celer_op_info *info, rnn_state *s) {
    const celer_tensor *w = info->input_constants && info->n_inputs > IN_W ? info->input_constants[IN_W] : NULL;
    if (!w || w->shape.rank != 3) return CELER_OK;
    int64_t G = kind_defs[s->kind].gates, D = w->shape.dims[0], GH = w->shape.dims[1], I = w->shape.dims[2];
    if (D != s->dirs || I < 1 || I > WPANEL_MAX_I || GH < G || GH % G || GH > (INT64_C(1) << 20) ||
        (s->hidden > 0 && s->hidden * G != GH))
        return CELER_OK;
    size_t n = (size_t)(D * n_panels(GH) * I * TILE), nw = (size_t)(D * GH * I);
    float *wf = malloc(nw * sizeof *wf);
    s->wpanels = aligned_alloc(64, (n * sizeof(float) + 63) & ~(size_t)63);
    if (!wf || !s->wpanels) {
        free(wf);
        return celer_ops_error(info, CELER_ERR_NOMEM, "out of memory packing W (%zu bytes)", n * sizeof(float));
    }
    for (size_t i = 0; i < nw; i++) wf[i] = (float)celer_ops_double_at(w, (int64_t)i);
    for (int64_t d = 0; d < D; d++)
        pack_cols(wf + d * GH * I, I, GH, 0, 1, 0, GH, s->wpanels + d * n_panels(GH) * I * TILE);
    free(wf);
    s->wpanels_i = I;
    s->wpanels_gh = GH;
    return CELER_OK;
}

static celer_status rnn_init_kind(const celer_op_info *info, void **out, rnn_kind kind) {
    const celer_onnx_node *node = info->node;
    const struct kind_def *kd = &kind_defs[kind];
    rnn_state s = {.kind = kind, .hidden = -1};

    const char *dir = celer_onnx_attr_string(node, "direction", "forward");
    if (!strcmp(dir, "forward"))
        s.dir = DIR_FORWARD;
    else if (!strcmp(dir, "reverse"))
        s.dir = DIR_REVERSE;
    else if (!strcmp(dir, "bidirectional"))
        s.dir = DIR_BIDIRECTIONAL;
    else
        return celer_ops_error(info, CELER_ERR_INVALID,
                      "direction '%s' is not 'forward', 'reverse' or 'bidirectional'", dir);
    s.dirs = s.dir == DIR_BIDIRECTIONAL ? 2 : 1;

    const celer_onnx_attr *hs = celer_onnx_attr_find(node, "hidden_size");
    if (hs) {
        if (hs->type != CELER_ATTR_INT || hs->i <= 0 || hs->i > BLAS_MAX)
            return celer_ops_error(info, CELER_ERR_INVALID, "hidden_size must be a positive integer below 2^31");
        s.hidden = hs->i;
    }
    if (info->since_version >= 14) {
        int64_t layout = celer_onnx_attr_int(node, "layout", 0);
        if (layout != 0 && layout != 1)
            return celer_ops_error(info, CELER_ERR_INVALID, "layout must be 0 or 1, got %lld", (long long)layout);
        s.layout = (int)layout;
    }
    const celer_onnx_attr *clip = celer_onnx_attr_find(node, "clip");
    if (clip) {
        if (!(clip->f > 0))
            return celer_ops_error(info, CELER_ERR_INVALID, "clip must be positive, got %g", (double)clip->f);
        s.clip = clip->f;
    }
    if (kind == KIND_GRU) s.lbr = celer_onnx_attr_int(node, "linear_before_reset", 0) != 0;
    if (kind == KIND_LSTM) s.input_forget = celer_onnx_attr_int(node, "input_forget", 0) != 0;

    /* activations: n_act per direction; a bidirectional layer given only one direction's list
     * uses it for both. alpha/beta values are consumed in order by the functions that take them. */
    for (int d = 0; d < 2; d++)
        for (int k = 0; k < kd->n_act; k++) {
            const struct act_def *def = NULL;
            for (size_t j = 0; j < CELER_ARRAY_LEN(act_defs); j++)
                if (act_defs[j].kind == kd->dflt[k]) def = &act_defs[j];
            s.acts[d][k] = (act){def->kind, def->alpha, def->beta};
        }
    const celer_onnx_attr *names = celer_onnx_attr_find(node, "activations");
    if (names) {
        int n = names->type == CELER_ATTR_STRINGS ? names->n : -1;
        if (n != kd->n_act && n != kd->n_act * s.dirs)
            return celer_ops_error(info, CELER_ERR_INVALID,
                          "activations must list %d function(s) per direction (%d in all), got %d",
                          kd->n_act, kd->n_act * s.dirs, n);
        const float *alpha = NULL, *beta = NULL;
        int n_alpha = celer_onnx_attr_floats(node, "activation_alpha", &alpha);
        int n_beta = celer_onnx_attr_floats(node, "activation_beta", &beta);
        int ia = 0, ib = 0;
        for (int i = 0; i < n; i++) {
            const struct act_def *def = NULL;
            for (size_t j = 0; j < CELER_ARRAY_LEN(act_defs); j++)
                if (!strcasecmp(names->strings[i].data, act_defs[j].name)) def = &act_defs[j];
            if (!def)
                return celer_ops_error(info, CELER_ERR_UNSUPPORTED, "activation function '%s' is not supported",
                              names->strings[i].data);
            act a = {def->kind, def->alpha, def->beta};
            if (def->n_alpha && ia < n_alpha) a.alpha = alpha[ia++];
            if (def->n_beta && ib < n_beta) a.beta = beta[ib++];
            s.acts[i / kd->n_act][i % kd->n_act] = a;
            if (n == kd->n_act) s.acts[1][i] = a;
        }
    }
    /* the default activation sets (whatever alpha/beta: these functions take none) */
    static const act_kind fast_sets[][3] = {
        [KIND_RNN] = {ACT_TANH}, [KIND_GRU] = {ACT_SIGMOID, ACT_TANH}, [KIND_LSTM] = {ACT_SIGMOID, ACT_TANH, ACT_TANH}};
    for (int d = 0; d < 2; d++) {
        s.fast[d] = true;
        for (int k = 0; k < kd->n_act; k++) s.fast[d] &= s.acts[d][k].kind == fast_sets[kind][k];
    }
    rnn_state *p = malloc(sizeof *p);
    if (!p) return celer_ops_error(info, CELER_ERR_NOMEM, "out of memory");
    *p = s;
    celer_status st = pack_constant_r(info, p);
    if (!st) st = pack_constant_w(info, p);
    if (st) {
        rnn_free(p);
        return st;
    }
    *out = p;
    return CELER_OK;
}

static celer_status rnn_init(const celer_op_info *info, void **out) {
    return rnn_init_kind(info, out, KIND_RNN);
}
static celer_status gru_init(const celer_op_info *info, void **out) {
    return rnn_init_kind(info, out, KIND_GRU);
}
static celer_status lstm_init(const celer_op_info *info, void **out) {
    return rnn_init_kind(info, out, KIND_LSTM);
}

/* ------------------------------------------------------------------------------------------ */
/* geometry                                                                                    */


typedef struct geom {
    int64_t S, B, I, H, D, G; /* steps, batch, input size, hidden, directions, gate blocks */
    const celer_tensor *x, *w, *r, *b, *seq, *h0, *c0, *p;
    bool want[3]; /* Y, Y_h, Y_c requested */
} geom;

static bool out_wanted(const celer_kernel_call *c, int i) {
    const celer_onnx_node *n = c->info->node;
    return i < c->n_out && i < n->n_outputs && n->outputs[i] && n->outputs[i][0];
}

/* Checks that t has shape dims[0..rank) (naming the input for the message). */
static celer_status expect_shape(const celer_op_info *info, const celer_tensor *t, const char *name,
                                 int rank, const int64_t *dims) {
    bool ok = t->shape.rank == rank;
    for (int i = 0; ok && i < rank; i++) ok = t->shape.dims[i] == dims[i];
    if (ok) return CELER_OK;
    celer_shape want = {.rank = rank};
    memcpy(want.dims, dims, (size_t)rank * sizeof *dims);
    char a[200], b[200];
    return celer_ops_error(info, CELER_ERR_SHAPE, "input '%s' must have shape %s, got %s", name,
                  celer_shape_str(&want, a, sizeof a), celer_shape_str(&t->shape, b, sizeof b));
}

static celer_status rnn_geom(const celer_kernel_call *c, geom *g) {
    const celer_op_info *info = c->info;
    const rnn_state *s = c->state;
    memset(g, 0, sizeof *g);
    g->x = c->in[IN_X];
    g->w = celer_ops_input(c, IN_W);
    g->r = celer_ops_input(c, IN_R);
    if (!g->x || !g->w || !g->r)
        return celer_ops_error(info, CELER_ERR_INVALID, "inputs X, W and R are required");
    g->b = celer_ops_input(c, IN_B);
    g->seq = celer_ops_input(c, IN_SEQ);
    g->h0 = celer_ops_input(c, IN_H0);
    if (s->kind == KIND_LSTM) {
        g->c0 = celer_ops_input(c, IN_C0);
        g->p = celer_ops_input(c, IN_P);
    }
    const celer_tensor *fl[] = {g->w, g->r, g->b, g->h0, g->c0, g->p};
    for (size_t i = 0; i < CELER_ARRAY_LEN(fl); i++)
        if (fl[i] && fl[i]->dtype != g->x->dtype)
            return celer_ops_error(info, CELER_ERR_DTYPE, "W, R, B, initial_h, initial_c and P must have X's type %s, got %s",
                          celer_dtype_name(g->x->dtype), celer_dtype_name(fl[i]->dtype));
    if (g->x->shape.rank != 3) {
        char a[200];
        return celer_ops_error(info, CELER_ERR_SHAPE, "X must have rank 3 (%s), got %s",
                      s->layout ? "[batch, seq, input]" : "[seq, batch, input]",
                      celer_shape_str(&g->x->shape, a, sizeof a));
    }
    const int64_t *xd = g->x->shape.dims;
    g->S = s->layout ? xd[1] : xd[0];
    g->B = s->layout ? xd[0] : xd[1];
    g->I = xd[2];
    g->D = s->dirs;
    g->G = kind_defs[s->kind].gates;
    if (g->r->shape.rank != 3) {
        char a[200];
        return celer_ops_error(info, CELER_ERR_SHAPE, "R must have rank 3 [directions, %lld*hidden, hidden], got %s",
                      (long long)g->G, celer_shape_str(&g->r->shape, a, sizeof a));
    }
    g->H = s->hidden > 0 ? s->hidden : g->r->shape.dims[2];
    if (g->H <= 0 || g->H > BLAS_MAX || g->I > BLAS_MAX || g->S > BLAS_MAX || g->B > BLAS_MAX)
        return celer_ops_error(info, CELER_ERR_LIMIT, "sizes out of range (hidden %lld, input %lld, seq %lld, batch %lld)",
                      (long long)g->H, (long long)g->I, (long long)g->S, (long long)g->B);
    int64_t GH = g->G * g->H; /* G <= 4, H < 2^31: no overflow */
    if (g->S * g->B > BLAS_MAX) /* rows of the input projection GEMM */
        return celer_ops_error(info, CELER_ERR_LIMIT, "seq %lld * batch %lld is above 2^31-1", (long long)g->S, (long long)g->B);
    /* both directions' projections side by side, rows padded to whole panels: BLAS's int strides */
    if (g->D * (GH + TILE) > BLAS_MAX)
        return celer_ops_error(info, CELER_ERR_LIMIT, "%lld directions * %lld gates * hidden %lld is too large",
                               (long long)g->D, (long long)g->G, (long long)g->H);
    CELER_TRY(expect_shape(info, g->w, "W", 3, (int64_t[]){g->D, GH, g->I}));
    CELER_TRY(expect_shape(info, g->r, "R", 3, (int64_t[]){g->D, GH, g->H}));
    if (g->b) CELER_TRY(expect_shape(info, g->b, "B", 2, (int64_t[]){g->D, 2 * GH}));
    int64_t state_dims[3] = {g->D, g->B, g->H};
    if (s->layout) state_dims[0] = g->B, state_dims[1] = g->D;
    if (g->h0) CELER_TRY(expect_shape(info, g->h0, "initial_h", 3, state_dims));
    if (g->c0) CELER_TRY(expect_shape(info, g->c0, "initial_c", 3, state_dims));
    if (g->p) CELER_TRY(expect_shape(info, g->p, "P", 2, (int64_t[]){g->D, 3 * g->H}));
    if (g->seq) {
        if (g->seq->dtype != CELER_INT32 && g->seq->dtype != CELER_INT64)
            return celer_ops_error(info, CELER_ERR_DTYPE, "sequence_lens must be int32, got %s",
                          celer_dtype_name(g->seq->dtype));
        CELER_TRY(expect_shape(info, g->seq, "sequence_lens", 1, (int64_t[]){g->B}));
        for (int64_t b = 0; b < g->B; b++) {
            int64_t len = celer_ops_int_at(g->seq, b);
            if (len < 0 || len > g->S)
                return celer_ops_error(info, CELER_ERR_INVALID,
                              "sequence_lens[%lld] = %lld is outside [0, %lld] (the sequence length)",
                              (long long)b, (long long)len, (long long)g->S);
        }
    }
    for (int i = 0; i < 3; i++) g->want[i] = out_wanted(c, i);
    return CELER_OK;
}

/* ------------------------------------------------------------------------------------------ */
/* scratch layout: computed identically by reshape (base NULL: sizes only) and run              */

static float *carve_floats(celer_ops_carve *cv, int64_t n) { return celer_ops_carve_elems(cv, n, sizeof(float)); }

/* Product of up to 4 non-negative factors; -1 on overflow (carve_floats then refuses it). */
static int64_t mul4(int64_t a, int64_t b, int64_t c, int64_t d) {
    int64_t r;
    if (__builtin_mul_overflow(a, b, &r) || __builtin_mul_overflow(r, c, &r) ||
        __builtin_mul_overflow(r, d, &r))
        return -1;
    return r;
}

/* Columns rounded up to whole panels: the panel kernel writes full panels. */
static int64_t padded(int64_t n) { return n_panels(n) * TILE; }

typedef struct bufs {
    /* float views of the inputs and outputs (converted copies when X is not float) */
    const float *x, *w, *r, *b, *h0, *c0, *p;
    float *y, *yh, *yc;
    float *xw;     /* [S*B, ldx] input projection (+ biases) in X's row order, direction d's from column
                      d * xcols: xcols = G*H (one SGEMM for both), or padded(G*H) (W in panels) */
    int64_t ldx, xcols;
    bool wpanels;  /* the projection runs on the state's W panels */
    float *bias;   /* [D, xcols] Wb + Rb (GRU lbr: h block has Wb only), zero-padded past G*H */
    float *zeros;  /* [3H] stands in for absent peepholes and GRU h-gate bias */
    float *panels; /* [D, split_parts floats] R packed here when init did not (else NULL; NULL above PANEL_ROWS) */
    /* per direction, so that the two can run at once */
    float *gates;  /* [D, 2 parts, B, padded(G*H)] recurrent projection, a part's gates n apart */
    float *h;      /* [D, 2, B, H] state: step k reads [k % 2], writes [(k + 1) % 2] (threads read all of it) */
    float *c;      /* [D, B, H] LSTM cell state */
    float *rh;     /* [D, B, H] GRU: r ⊙ H_prev */
    float *tmp2;   /* [D, 2 parts, B, padded(H)] its projection */
    int64_t *lens; /* [B] active steps per batch row */
} bufs;

static void plan(const rnn_state *s, const geom *g, bool convert, celer_ops_carve *cv, bufs *p) {
    int64_t GH = g->G * g->H;
    if (convert) {
        p->x = carve_floats(cv, mul4(g->S, g->B, g->I, 1));
        p->w = carve_floats(cv, mul4(g->D, GH, g->I, 1));
        p->r = carve_floats(cv, mul4(g->D, GH, g->H, 1));
        p->b = g->b ? carve_floats(cv, mul4(g->D, 2, GH, 1)) : NULL;
        p->h0 = g->h0 ? carve_floats(cv, mul4(g->D, g->B, g->H, 1)) : NULL;
        p->c0 = g->c0 ? carve_floats(cv, mul4(g->D, g->B, g->H, 1)) : NULL;
        p->p = g->p ? carve_floats(cv, mul4(g->D, 3, g->H, 1)) : NULL;
        p->y = g->want[OUT_Y] ? carve_floats(cv, mul4(g->S, g->D, g->B, g->H)) : NULL;
        p->yh = g->want[OUT_YH] ? carve_floats(cv, mul4(g->D, g->B, g->H, 1)) : NULL;
        p->yc = g->want[OUT_YC] ? carve_floats(cv, mul4(g->D, g->B, g->H, 1)) : NULL;
    }
    p->wpanels = s->wpanels && s->wpanels_i == g->I && s->wpanels_gh == GH;
    p->xcols = p->wpanels ? padded(GH) : GH;
    p->ldx = g->D * p->xcols;
    p->xw = carve_floats(cv, mul4(g->S, g->B, g->D, p->xcols));
    p->bias = carve_floats(cv, mul4(g->D, p->xcols, 1, 1));
    p->zeros = carve_floats(cv, mul4(3, g->H, 1, 1));
    p->panels = NULL;
    if (g->B <= PANEL_ROWS && !(s->panels && s->panels_h == g->H)) {
        part pt[2];
        int64_t pf = -1;
        if (g->H <= 65536) split_parts(g->G, g->H, g->D, s->kind == KIND_GRU && !s->lbr, pt, &pf);
        p->panels = carve_floats(cv, mul4(g->D, pf, 1, 1));
    }
    p->gates = carve_floats(cv, mul4(g->D, 2, g->B, padded(GH)));
    p->h = carve_floats(cv, mul4(g->D, 2, g->B, g->H));
    p->c = carve_floats(cv, mul4(g->D, g->B, g->H, 1));
    p->rh = carve_floats(cv, mul4(g->D, g->B, g->H, 1));
    p->tmp2 = carve_floats(cv, mul4(g->D, 2, g->B, padded(g->H)));
    p->lens = celer_ops_carve_elems(cv, g->B, sizeof(int64_t));
}

static celer_status rnn_reshape(celer_kernel_call *c) {
    const rnn_state *s = c->state;
    geom g;
    CELER_TRY(rnn_geom(c, &g));
    celer_shape y = {.rank = 4, .dims = {g.S, g.D, g.B, g.H}};
    celer_shape st = {.rank = 3, .dims = {g.D, g.B, g.H}};
    if (s->layout) {
        y = (celer_shape){.rank = 4, .dims = {g.B, g.S, g.D, g.H}};
        st = (celer_shape){.rank = 3, .dims = {g.B, g.D, g.H}};
    }
    int64_t ny = celer_shape_numel(&y);
    if (ny < 0 || (uint64_t)ny > MAX_SCRATCH / sizeof(double))
        return celer_ops_error(c->info, CELER_ERR_LIMIT, "output Y of seq %lld, batch %lld, hidden %lld is too large",
                      (long long)g.S, (long long)g.B, (long long)g.H);
    for (int i = 0; i < c->n_out && i < 3; i++) c->out[i].shape = i == OUT_Y ? y : st;
    celer_ops_carve cv = {0};
    bufs p = {0};
    plan(s, &g, g.x->dtype != CELER_FLOAT, &cv, &p);
    if (cv.overflow)
        return celer_ops_error(c->info, CELER_ERR_LIMIT, "working memory for seq %lld, batch %lld, hidden %lld is too large",
                      (long long)g.S, (long long)g.B, (long long)g.H);
    c->scratch_size = cv.off;
    return CELER_OK;
}

/* ------------------------------------------------------------------------------------------ */
/* gate arithmetic                                                                             */

/* The gate functions below work on n hidden units of one batch row: xr is the row's input
 * projection at the first unit, its gates xs apart (H); gt the recurrent projection, gates gs
 * apart; P the peepholes (i, o, f; zeros when none), xs apart. The *_fast versions are the default
 * activations as loops over vmath that vectorize; the others call act_one() per element. */

/* C[m, n] = A[m, k] · B^T where B is stored [n, k] with row stride ldb; handles empty sizes. */
static void gemm_abt(int64_t m, int64_t n, int64_t k, const float *a, int64_t lda, const float *b,
                     int64_t ldb, float *cmat, int64_t ldc) {
    if (m == 0 || n == 0) return;
    if (k == 0) {
        for (int64_t i = 0; i < m; i++) memset(cmat + i * ldc, 0, (size_t)n * sizeof(float));
        return;
    }
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, (int)m, (int)n, (int)k, 1.0f, a, (int)lda,
                b, (int)ldb, 0.0f, cmat, (int)ldc);
}

static inline float clipf(float x, float clip) {
    if (clip > 0) return x < -clip ? -clip : x > clip ? clip : x;
    return x;
}

/* The vector loops' clip: c is INFINITY when the layer has none (a select, no branch; NaN passes
 * as in clipf). */
static inline float clampf(float x, float c) { return x < -c ? -c : x > c ? c : x; }

/* The LSTM step's functions as sigmoid(a) = 1 / (1 + e^-a) and tanh(a) = sign(a) (1 - e) / (1 + e)
 * with e = e^-2|a| (1 - e from celer_bounded_expf's e^x - 1, precise near 0), so that i, f and
 * i·g come out of one division and o·tanh(c) out of another, where a function each took five per
 * unit: the divisions were a quarter of the gate loop's samples. Sigmoid arguments are clamped to
 * [-28, 80], which keeps a product of three denominators finite and moves a gate by at most
 * sigmoid(-28) = 7e-13; tanh arguments to |a| <= 40 (tanh 40 is 1 in float). A NaN passes the
 * clamps and comes out NaN. */
static inline float sig_arg(float a) { return a < -28.0f ? -28.0f : a > 80.0f ? 80.0f : a; }
static inline float tanh_abs(float a) {
    float m = a < 0 ? -a : a;
    return m > 40.0f ? 40.0f : m;
}
/* sigmoid's denominator 1 + e^-a */
static inline float sig_den(float a) {
    float m1;
    return 1.0f + celer_bounded_expf(-a, &m1);
}
/* LSTM ("iofc"): c [n] updated in place, h [n] written. With the two loops below, 2-layer LSTM H
 * 256 batch 8 at 1 thread: 6.64 -> 6.41 ms (a function each and one loop: 6.64). */
RNN_CLONES static void lstm_fast(int64_t n, const float *xr, int64_t xs, const float *gt, int64_t gs, const float *P,
                                 float clip, bool input_forget, float *restrict c, float *restrict h) {
    const float *xi = xr, *xo = xr + xs, *xf = xr + 2 * xs, *xc = xr + 3 * xs;
    const float *gi = gt, *go = gt + gs, *gf = gt + 2 * gs, *gc = gt + 3 * gs;
    const float *pi = P, *po = P + xs, *pf = P + 2 * xs;
    const float fmask = input_forget ? 0.0f : 1.0f; /* f = 1 - i with input_forget, as a blend: a
                                                       select on the bool stops the vectorizer */
    /* two loops: each one's chain per vector is half as long, so more of its iterations overlap */
    for (int64_t j = 0; j < n; j++) {
        float cp = c[j];
        float ai = sig_arg(clampf(xi[j] + gi[j] + pi[j] * cp, clip));
        float af = sig_arg(clampf(xf[j] + gf[j] + pf[j] * cp, clip));
        float ag = clampf(xc[j] + gc[j], clip), ng, eg = celer_bounded_expf(-2.0f * tanh_abs(ag), &ng);
        float di = sig_den(ai), df = sig_den(af), dg = 1.0f + eg;
        float inv = 1.0f / (di * df * dg);
        float i = df * dg * inv, f = di * dg * inv;
        float ig = -ng * df * inv; /* i·|g| */
        f = fmask * f + (1.0f - fmask) * (1.0f - i);
        c[j] = f * cp + (ag < 0 ? -ig : ig);
    }
    for (int64_t j = 0; j < n; j++) {
        float cn = c[j];
        float ao = sig_arg(clampf(xo[j] + go[j] + po[j] * cn, clip));
        float nc, ec = celer_bounded_expf(-2.0f * tanh_abs(cn), &nc);
        float hv = -nc / (sig_den(ao) * (1.0f + ec));
        h[j] = cn < 0 ? -hv : hv;
    }
}

static void lstm_acts(const act *a, int64_t n, const float *xr, int64_t xs, const float *gt, int64_t gs,
                      const float *P, float clip, bool input_forget, float *c, float *h) {
    for (int64_t j = 0; j < n; j++) {
        float c_prev = c[j];
        float gi = xr[j] + gt[j] + P[j] * c_prev, go = xr[xs + j] + gt[gs + j];
        float gf = xr[2 * xs + j] + gt[2 * gs + j] + P[2 * xs + j] * c_prev, gc = xr[3 * xs + j] + gt[3 * gs + j];
        float i = act_one(&a[0], clipf(gi, clip));
        float f = input_forget ? 1 - i : act_one(&a[0], clipf(gf, clip));
        float cn = f * c_prev + i * act_one(&a[1], clipf(gc, clip));
        float o = act_one(&a[0], clipf(go + P[xs + j] * cn, clip));
        c[j] = cn;
        h[j] = o * act_one(&a[2], cn);
    }
}

/* GRU z and r gates in place in gt; with rh, rh <- r ⊙ h_prev (linear_before_reset 0's second
 * product's input). */
RNN_CLONES static void gru_zr_fast(int64_t n, const float *xr, int64_t xs, float *gt, int64_t gs, float clip,
                                   const float *h_prev, float *rh) {
    for (int64_t j = 0; j < n; j++) gt[j] = celer_fast_sigmoidf(clampf(xr[j] + gt[j], clip));
    for (int64_t j = 0; j < n; j++) gt[gs + j] = celer_fast_sigmoidf(clampf(xr[xs + j] + gt[gs + j], clip));
    if (rh)
        for (int64_t j = 0; j < n; j++) rh[j] = gt[gs + j] * h_prev[j];
}

static void gru_zr_acts(const act *a, int64_t n, const float *xr, int64_t xs, float *gt, int64_t gs, float clip,
                        const float *h_prev, float *rh) {
    for (int64_t j = 0; j < n; j++) gt[j] = act_one(&a[0], clipf(xr[j] + gt[j], clip));
    for (int64_t j = 0; j < n; j++) gt[gs + j] = act_one(&a[0], clipf(xr[xs + j] + gt[gs + j], clip));
    if (rh)
        for (int64_t j = 0; j < n; j++) rh[j] = gt[gs + j] * h_prev[j];
}

/* GRU candidate and new state: xh the h gate's input projection, z and r from gru_zr; lin is
 * R_h·h_prev (linear_before_reset: rs = r, rbh its bias) or R_h·(r ⊙ h_prev) with the bias
 * already in xh (rs NULL). */
RNN_CLONES static void gru_h_fast(int64_t n, const float *xh, const float *z, const float *rs, const float *lin,
                                  const float *rbh, float clip, const float *h_prev, float *restrict h) {
    if (rs) {
        for (int64_t j = 0; j < n; j++) {
            float hh = celer_fast_tanhf(clampf(xh[j] + rs[j] * (lin[j] + rbh[j]), clip));
            h[j] = (1 - z[j]) * hh + z[j] * h_prev[j];
        }
    } else {
        for (int64_t j = 0; j < n; j++) {
            float hh = celer_fast_tanhf(clampf(xh[j] + lin[j], clip));
            h[j] = (1 - z[j]) * hh + z[j] * h_prev[j];
        }
    }
}

static void gru_h_acts(const act *a, int64_t n, const float *xh, const float *z, const float *rs, const float *lin,
                       const float *rbh, float clip, const float *h_prev, float *h) {
    for (int64_t j = 0; j < n; j++) {
        float pre = rs ? xh[j] + rs[j] * (lin[j] + rbh[j]) : xh[j] + lin[j];
        float hh = act_one(&a[1], clipf(pre, clip));
        h[j] = (1 - z[j]) * hh + z[j] * h_prev[j];
    }
}

RNN_CLONES static void rnn_fast(int64_t n, const float *xr, const float *gt, float clip, float *restrict h) {
    for (int64_t j = 0; j < n; j++) h[j] = celer_fast_tanhf(clampf(xr[j] + gt[j], clip));
}

static void rnn_acts(const act *a, int64_t n, const float *xr, const float *gt, float clip, float *h) {
    for (int64_t j = 0; j < n; j++) h[j] = act_one(&a[0], clipf(xr[j] + gt[j], clip));
}

/* ------------------------------------------------------------------------------------------ */
/* run                                                                                         */

static void to_float(const celer_tensor *t, float *dst) {
    int64_t n = celer_shape_numel(&t->shape);
    for (int64_t i = 0; i < n; i++) dst[i] = (float)celer_ops_double_at(t, i);
}

static void from_float(const float *src, celer_tensor *t) {
    int64_t n = celer_shape_numel(&t->shape);
    for (int64_t i = 0; i < n; i++) celer_ops_double_store(t, i, src[i]);
}

/* Work shared between the threads of rnn_run's parallel region, in phases: every thread walks the
 * same sequence of phases; within one, it claims items one at a time until none is left, then
 * waits until all are done. Not OpenMP's barrier: celer runs OpenMP with the passive wait policy
 * (idle workers sleep, docs/engine.md), so an `omp barrier` is a futex sleep and wake, more than
 * a 5-10 us step (2-layer LSTM H 256 at 2 threads: 2.05 ms with it against 1.63 on one). And not
 * a fixed split of items either: on a loaded machine the other thread may not be running, and
 * then whoever runs takes its items instead of waiting a time slice for it. Each thread starts
 * claiming at its own place (tid * n / nthr), so that when both run, a part stays with one core
 * and its panels in that core's L2 (a shared counter moved them: 0.99 -> 1.07 ms). Phases are
 * told apart by the running total of items `end`, so nothing is ever reset. */
enum { MAX_ITEMS = 64 }; /* items per phase; callers group more work into this many */
typedef struct work_queue {
    atomic_llong claimed[MAX_ITEMS]; /* `end` of the phase that last claimed the item */
    atomic_llong done;               /* items finished, over all phases */
} work_queue;

/* One thread's view: the queue (NULL when the thread works alone), its place in the team, and
 * the item total before its current phase. */
typedef struct worker {
    work_queue *q;
    int tid, nthr;
    int64_t base;
} worker;

typedef struct dir_ctx dir_ctx;
typedef void (*item_fn)(const dir_ctx *x, int64_t k, int64_t item);

/* Runs items 0..n-1 (n <= MAX_ITEMS) of the phase (k: the step, passed through) and returns when
 * all are done. */
static void run_phase(worker *w, int64_t n, item_fn fn, const dir_ctx *x, int64_t k) {
    if (!w->q) {
        for (int64_t i = 0; i < n; i++) fn(x, k, i);
        return;
    }
    const long long end = w->base + n;
    const int64_t first = w->tid * n / w->nthr;
    for (int64_t j = 0; j < n; j++) {
        int64_t i = (first + j) % n;
        long long c = atomic_load_explicit(&w->q->claimed[i], memory_order_relaxed);
        if (c < end && atomic_compare_exchange_strong_explicit(&w->q->claimed[i], &c, end, memory_order_acq_rel,
                                                               memory_order_relaxed)) {
            fn(x, k, i);
            atomic_fetch_add_explicit(&w->q->done, 1, memory_order_release);
        }
    }
    /* only items other threads are running now are left: spin, then yield in case their thread
     * was preempted */
    for (unsigned spins = 0; atomic_load_explicit(&w->q->done, memory_order_acquire) < end; spins++) {
        if (spins >= 4000) {
            sched_yield();
        } else {
#if defined(__x86_64__)
            __builtin_ia32_pause();
#endif
        }
    }
    w->base = end;
}

/* What every item of one direction needs; each thread builds its own identical copy. */
struct dir_ctx {
    const rnn_state *s;
    const geom *g;
    const bufs *p;
    int d;
    bool rev, use_panels, fast, gru_lbr, gru_split;
    int np;                         /* parts */
    part pt[2];
    int64_t b0, b1;                 /* the batch rows this context runs */
    int64_t ga, ldg, ldt, ldx, xoff; /* gate blocks of the per-step product; row strides */
    const float *R, *Rb, *Pz, *rbh, *pk;
    float *pk_own;                  /* panels to fill in the init phase (R not packed at init) */
    float *hb[2], *cs, *rh;
    float clip, vclip;
    const act *acts;
};

static void dir_ctx_init(dir_ctx *x, const rnn_state *s, const geom *g, const bufs *p, int d, bool rev, int64_t b0,
                         int64_t b1) {
    const int64_t H = g->H, B = g->B, GH = g->G * H;
    memset(x, 0, sizeof *x);
    x->s = s, x->g = g, x->p = p, x->d = d, x->rev = rev, x->b0 = b0, x->b1 = b1;
    x->gru_lbr = s->kind == KIND_GRU && s->lbr;
    x->gru_split = s->kind == KIND_GRU && !s->lbr;
    x->fast = s->fast[d];
    x->ga = x->gru_split ? 2 : g->G;
    x->ldg = padded(GH), x->ldt = padded(H), x->ldx = p->ldx, x->xoff = d * p->xcols;
    x->R = p->r + d * GH * H;
    x->Rb = p->b ? p->b + d * 2 * GH + GH : NULL;
    x->Pz = p->p ? p->p + d * 3 * H : p->zeros;
    x->rbh = x->Rb ? x->Rb + 2 * H : p->zeros;
    x->acts = s->acts[d];
    x->clip = s->clip, x->vclip = s->clip > 0 ? s->clip : INFINITY;
    x->hb[0] = p->h + d * 2 * B * H, x->hb[1] = p->h + (d * 2 + 1) * B * H;
    x->cs = p->c + d * B * H, x->rh = p->rh + d * B * H;
    /* R in panels when the batch is small enough for the panel kernel; SGEMM's single part is
     * all units with the gates H apart, as R's own rows are */
    x->use_panels = B <= PANEL_ROWS;
    x->pt[0] = (part){0, H, 0, 0};
    x->np = 1;
    if (x->use_panels) {
        int64_t pf = 0;
        x->np = split_parts(g->G, H, g->D, x->gru_split, x->pt, &pf);
        x->pk_own = p->panels ? p->panels + d * pf : NULL;
        x->pk = p->panels ? x->pk_own : s->panels + d * pf;
    }
}

/* init phase, part i: its panels (when run packs R) and initial state */
static void item_init(const dir_ctx *x, int64_t k, int64_t i) {
    (void)k;
    const geom *g = x->g;
    const bufs *p = x->p;
    const int64_t B = g->B, H = g->H, D = g->D, u0 = x->pt[i].u0, n = x->pt[i].n;
    if (x->pk_own) pack_part(x->R, g->G, H, x->gru_split, &x->pt[i], x->pk_own);
    for (int64_t b = x->b0; b < x->b1; b++) {
        int64_t off = (x->s->layout ? b * D + x->d : x->d * B + b) * H + u0;
        float *h = x->hb[0] + b * H + u0, *c = x->cs + b * H + u0;
        if (p->h0)
            memcpy(h, p->h0 + off, (size_t)n * sizeof(float));
        else
            memset(h, 0, (size_t)n * sizeof(float));
        if (p->c0)
            memcpy(c, p->c0 + off, (size_t)n * sizeof(float));
        else
            memset(c, 0, (size_t)n * sizeof(float));
    }
}

static int64_t time_of(const dir_ctx *x, int64_t k) { return x->rev ? x->g->S - 1 - k : k; }

static const float *xrow(const dir_ctx *x, int64_t b, int64_t t) {
    const geom *g = x->g;
    return x->p->xw + (x->s->layout ? b * g->S + t : t * g->B + b) * x->ldx + x->xoff;
}

/* step k, part i: the gate math of its units for every active batch row, into h_next and Y */
static void part_gates(const dir_ctx *x, int64_t k, int64_t i) {
    const rnn_state *s = x->s;
    const geom *g = x->g;
    const bufs *p = x->p;
    const int64_t B = g->B, H = g->H, S = g->S, D = g->D, t = time_of(x, k);
    const int64_t u0 = x->pt[i].u0, n = x->pt[i].n;
    const float *h_prev = x->hb[k & 1], *gq = p->gates + ((x->d * 2 + i) * B) * x->ldg;
    const float *tq = p->tmp2 + ((x->d * 2 + i) * B) * x->ldt;
    float *h_next = x->hb[(k + 1) & 1];
    for (int64_t b = x->b0; b < x->b1; b++) {
        const float *hp = h_prev + b * H + u0;
        float *h = h_next + b * H + u0;
        if (t >= p->lens[b]) {
            memcpy(h, hp, (size_t)n * sizeof(float)); /* the state carries over */
            continue;
        }
        const float *xr = xrow(x, b, t) + u0, *gt = gq + b * x->ldg;
        float *c = x->cs + b * H + u0;
        switch (s->kind) {
        case KIND_RNN:
            if (x->fast)
                rnn_fast(n, xr, gt, x->vclip, h);
            else
                rnn_acts(x->acts, n, xr, gt, x->clip, h);
            break;
        case KIND_GRU: {
            const float *rs = x->gru_lbr ? gt + n : NULL, *lin = x->gru_lbr ? gt + 2 * n : tq + b * x->ldt;
            if (x->fast)
                gru_h_fast(n, xr + 2 * H, gt, rs, lin, x->rbh + u0, x->vclip, hp, h);
            else
                gru_h_acts(x->acts, n, xr + 2 * H, gt, rs, lin, x->rbh + u0, x->clip, hp, h);
            break;
        }
        case KIND_LSTM:
            if (x->fast)
                lstm_fast(n, xr, H, gt, n, x->Pz + u0, x->vclip, s->input_forget, c, h);
            else
                lstm_acts(x->acts, n, xr, H, gt, n, x->Pz + u0, x->clip, s->input_forget, c, h);
            break;
        }
        if (p->y) {
            int64_t off = (s->layout ? (b * S + t) * D + x->d : (t * D + x->d) * B + b) * H + u0;
            memcpy(p->y + off, h, (size_t)n * sizeof(float));
        }
    }
}

/* step k, part i, first phase: the recurrent product of its gate columns; GRU: z and r (and
 * r ⊙ h_prev without linear_before_reset, whose candidate waits for the next phase); the others
 * finish the part's step here */
static void item_step(const dir_ctx *x, int64_t k, int64_t i) {
    const geom *g = x->g;
    const bufs *p = x->p;
    const int64_t B = g->B, H = g->H, t = time_of(x, k), rows = x->b1 - x->b0;
    const part *q = &x->pt[i];
    const float *h_prev = x->hb[k & 1];
    float *gq = p->gates + ((x->d * 2 + i) * B) * x->ldg;
    if (x->use_panels)
        panel_gemv(rows, H, n_panels(x->ga * q->n), x->pk + q->pk_a, NULL, h_prev + x->b0 * H, H, gq + x->b0 * x->ldg, x->ldg);
    else
        gemm_abt(rows, x->ga * H, H, h_prev + x->b0 * H, H, x->R, H, gq + x->b0 * x->ldg, x->ldg);
    if (x->s->kind == KIND_GRU) {
        for (int64_t b = x->b0; b < x->b1; b++) {
            float *rq = x->gru_split ? x->rh + b * H + q->u0 : NULL;
            if (t >= p->lens[b]) {
                /* the row still goes through the product of the next phase: keep it finite */
                if (rq) memset(rq, 0, (size_t)q->n * sizeof(float));
                continue;
            }
            const float *xr = xrow(x, b, t) + q->u0;
            if (x->fast)
                gru_zr_fast(q->n, xr, H, gq + b * x->ldg, q->n, x->vclip, h_prev + b * H + q->u0, rq);
            else
                gru_zr_acts(x->acts, q->n, xr, H, gq + b * x->ldg, q->n, x->clip, h_prev + b * H + q->u0, rq);
        }
    }
    if (!x->gru_split) part_gates(x, k, i);
}

/* step k, part i, second phase (GRU without linear_before_reset): R_h · (r ⊙ h_prev), then the
 * gate math */
static void item_step2(const dir_ctx *x, int64_t k, int64_t i) {
    const geom *g = x->g;
    const int64_t B = g->B, H = g->H, rows = x->b1 - x->b0;
    float *tq = x->p->tmp2 + ((x->d * 2 + i) * B) * x->ldt;
    if (x->use_panels)
        panel_gemv(rows, H, n_panels(x->pt[i].n), x->pk + x->pt[i].pk_b, NULL, x->rh + x->b0 * H, H, tq + x->b0 * x->ldt, x->ldt);
    else
        gemm_abt(rows, H, H, x->rh + x->b0 * H, H, x->R + 2 * H * H, H, tq + x->b0 * x->ldt, x->ldt);
    part_gates(x, k, i);
}

/* final phase, part i: Y_h and Y_c */
static void item_final(const dir_ctx *x, int64_t k, int64_t i) {
    (void)k;
    const geom *g = x->g;
    const bufs *p = x->p;
    const int64_t B = g->B, H = g->H, D = g->D, u0 = x->pt[i].u0, n = x->pt[i].n;
    for (int64_t b = x->b0; b < x->b1; b++) {
        int64_t off = (x->s->layout ? b * D + x->d : x->d * B + b) * H + u0;
        bool empty = p->lens[b] == 0;
        if (p->yh) {
            if (empty)
                memset(p->yh + off, 0, (size_t)n * sizeof(float));
            else
                memcpy(p->yh + off, x->hb[g->S & 1] + b * H + u0, (size_t)n * sizeof(float));
        }
        if (p->yc) {
            if (empty)
                memset(p->yc + off, 0, (size_t)n * sizeof(float));
            else
                memcpy(p->yc + off, x->cs + b * H + u0, (size_t)n * sizeof(float));
        }
    }
}

/* One direction d of the layer; `rev` walks time backwards. With a shared worker, the threads
 * calling this together split each step's parts (every one must call it with the same
 * arguments). Touches only direction d's slices of the per-direction buffers, of Y, Y_h and Y_c,
 * so the two directions may also run concurrently (each on its own worker). */
static void run_direction(const rnn_state *s, const geom *g, const bufs *p, int d, bool rev, int64_t b0, int64_t b1,
                          worker *w) {
    dir_ctx x;
    dir_ctx_init(&x, s, g, p, d, rev, b0, b1);
    run_phase(w, x.np, item_init, &x, 0);
    for (int64_t k = 0; k < g->S; k++) {
        run_phase(w, x.np, item_step, &x, k);
        if (x.gru_split) run_phase(w, x.np, item_step2, &x, k);
    }
    run_phase(w, x.np, item_final, &x, 0);
}

/* The input projection's panels (over directions) in at most MAX_ITEMS items. */
static int64_t project_items(const geom *g) {
    int64_t n = g->D * n_panels(g->G * g->H);
    return n < MAX_ITEMS ? n : MAX_ITEMS;
}

/* input projection item: its share of W's panels, for all S*B rows of X, plus biases */
static void item_project(const dir_ctx *x, int64_t k, int64_t item) {
    (void)k;
    const geom *g = x->g;
    const bufs *p = x->p;
    const int64_t GH = g->G * g->H, npan = n_panels(GH), rows = g->S * g->B;
    const int64_t total = g->D * npan, n = project_items(g);
    for (int64_t q = item * total / n; q < (item + 1) * total / n; q++) {
        const int64_t d = q / npan, t = q % npan, off = d * p->xcols + t * TILE;
        panel_gemv(rows, g->I, 1, x->s->wpanels + q * g->I * TILE, p->bias + off, p->x, g->I, p->xw + off, p->ldx);
    }
}

/* a whole direction as one item (directions of a bidirectional layer, one per thread) */
static void item_direction(const dir_ctx *x, int64_t k, int64_t d) {
    (void)k;
    worker alone = {0};
    run_direction(x->s, x->g, x->p, (int)d, x->s->dir == DIR_REVERSE || d == 1, 0, x->g->B, &alone);
}

static celer_status rnn_run(celer_kernel_call *c) {
    const rnn_state *s = c->state;
    geom g;
    CELER_TRY(rnn_geom(c, &g));
    bool convert = g.x->dtype != CELER_FLOAT;
    celer_ops_carve cv = {.base = c->scratch};
    bufs p = {0};
    plan(s, &g, convert, &cv, &p);
    if (cv.overflow || cv.off > c->scratch_size)
        return celer_ops_error(c->info, CELER_ERR_INTERNAL, "scratch of %zu bytes is smaller than the %zu planned",
                      c->scratch_size, cv.off);
    if (convert) {
        to_float(g.x, (float *)p.x);
        to_float(g.w, (float *)p.w);
        to_float(g.r, (float *)p.r);
        if (g.b) to_float(g.b, (float *)p.b);
        if (g.h0) to_float(g.h0, (float *)p.h0);
        if (g.c0) to_float(g.c0, (float *)p.c0);
        if (g.p) to_float(g.p, (float *)p.p);
    } else {
        p.x = g.x->data;
        p.w = g.w->data;
        p.r = g.r->data;
        p.b = g.b ? g.b->data : NULL;
        p.h0 = g.h0 ? g.h0->data : NULL;
        p.c0 = g.c0 ? g.c0->data : NULL;
        p.p = g.p ? g.p->data : NULL;
        p.y = g.want[OUT_Y] ? c->out[OUT_Y].data : NULL;
        p.yh = g.want[OUT_YH] ? c->out[OUT_YH].data : NULL;
        p.yc = g.want[OUT_YC] ? c->out[OUT_YC].data : NULL;
    }
    for (int64_t b = 0; b < g.B; b++) p.lens[b] = g.seq ? celer_ops_int_at(g.seq, b) : g.S;
    bool short_rows = false; /* rows shorter than S leave zeros in Y past their end */
    for (int64_t b = 0; b < g.B; b++) short_rows |= p.lens[b] < g.S;
    if (p.y && short_rows) memset(p.y, 0, (size_t)(g.S * g.D * g.B * g.H) * sizeof(float));
    memset(p.zeros, 0, (size_t)(3 * g.H) * sizeof(float));

    /* input projection of every step and both directions at once (W is [D*G*H, I]), plus biases
     * (the panel kernel starts its sums from them) */
    const int64_t GH = g.G * g.H, DGH = g.D * GH;
    memset(p.bias, 0, (size_t)(g.D * p.xcols) * sizeof(float));
    for (int64_t d = 0; d < g.D; d++) {
        const float *Wb = p.b ? p.b + d * 2 * GH : NULL, *Rb = Wb ? Wb + GH : NULL;
        for (int64_t j = 0; j < GH; j++) {
            float v = Wb ? Wb[j] : 0;
            /* GRU with linear_before_reset keeps Rb_h inside r ⊙ (...) */
            if (Rb && !(s->kind == KIND_GRU && s->lbr && j >= 2 * g.H)) v += Rb[j];
            p.bias[d * p.xcols + j] = v;
        }
    }
    if (!p.wpanels) {
        gemm_abt(g.S * g.B, DGH, g.I, p.x, g.I, p.w, g.I, p.xw, DGH);
        for (int64_t r = 0; r < g.S * g.B; r++) {
            float *row = p.xw + r * DGH;
            for (int64_t j = 0; j < DGH; j++) row[j] += p.bias[j];
        }
    }

    /* two threads when the context has two, with the panel kernel (our own code: OpenBLAS would
     * start threads of its own inside): a bidirectional layer's directions, or a unidirectional
     * layer's two parts of every step, and the input projection's panels. From ROWS_SPLIT_MIN
     * batch rows (R packed at init), a unidirectional layer's threads instead take half of the
     * rows each through the whole sequence: no wait per step, each reading all of R (2-layer LSTM
     * H 256, batch 8 at 2 threads: 3.47 -> 3.41 ms on a quiet machine, 4.44 -> 3.96 when the
     * per-step handoff between the cores was slow; at batch 2-4 the halves of the units stay
     * faster, 1.04 against 1.51 ms at batch 2) */
    part pt[2];
    int64_t pf;
    int np = g.H <= 65536 ? split_parts(g.G, g.H, g.D, s->kind == KIND_GRU && !s->lbr, pt, &pf) : 1;
    work_queue wq = {0};
    bool rows_split = g.D == 1 && g.B >= ROWS_SPLIT_MIN && !p.panels;
    bool two = g.B <= PANEL_ROWS && (g.D == 2 || np == 2) && omp_get_max_threads() > 1;
#pragma omp parallel num_threads(2) if (two)
    {
        int nt = omp_get_num_threads();
        worker w = {nt > 1 ? &wq : NULL, omp_get_thread_num(), nt, 0};
        dir_ctx x = {.s = s, .g = &g, .p = &p};
        if (p.wpanels) run_phase(&w, project_items(&g), item_project, &x, 0);
        if (g.D == 2)
            run_phase(&w, 2, item_direction, &x, 0);
        else if (rows_split && nt > 1) {
            worker alone = {0};
            int64_t b0 = w.tid * g.B / nt, b1 = (w.tid + 1) * g.B / nt;
            run_direction(s, &g, &p, 0, s->dir == DIR_REVERSE, b0, b1, &alone);
        } else
            run_direction(s, &g, &p, 0, s->dir == DIR_REVERSE, 0, g.B, &w);
    }
    if (convert) {
        if (p.y) from_float(p.y, &c->out[OUT_Y]);
        if (p.yh) from_float(p.yh, &c->out[OUT_YH]);
        if (p.yc) from_float(p.yc, &c->out[OUT_YC]);
    }
    return CELER_OK;
}

/* ------------------------------------------------------------------------------------------ */

#define RNN_TYPES (CELER_DT(CELER_FLOAT) | CELER_DT(CELER_DOUBLE) | CELER_DT(CELER_FLOAT16))
#define K(op, since, until, init)                                                                  \
    {"", op, since, until, RNN_TYPES, 0, 0, NULL, init, rnn_reshape, rnn_run, rnn_free, NULL}

/* opset 14 added `layout`; nothing else differs between the two entries */
static const celer_kernel kernels[] = {
    K("RNN", 7, 13, rnn_init),  K("RNN", 14, CELER_OPS_MAX_VERSION, rnn_init),
    K("GRU", 7, 13, gru_init),  K("GRU", 14, CELER_OPS_MAX_VERSION, gru_init),
    K("LSTM", 7, 13, lstm_init), K("LSTM", 14, CELER_OPS_MAX_VERSION, lstm_init),
};

const celer_kernel_family celer_family_rnn = {"rnn", kernels, (int)CELER_ARRAY_LEN(kernels)};
