/* attention family: what ONNX Runtime 1.31 cannot check (it refuses an attn_mask broadcast over
 * query rows and a past cache without present outputs), against a naive reference in double;
 * empty sequences; the refusals at load by name; random inputs under the sanitizers. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "opcase.h"

typedef struct ref_cfg {
    int64_t B, qH, kvH, Sq, Skv, P, D, Dv;
    const float *mask;      /* NULL or float, broadcast by mstride over (B, qH, Sq, T) */
    int64_t mstride[4];
    bool causal;
    double scale, softcap;
} ref_cfg;

/* Y [B, qH, Sq, Dv] from 4-D q, k, v and optional past caches, straight from the spec. */
static void ref_attention(const ref_cfg *c, const float *q, const float *k, const float *v,
                          const float *pk, const float *pv, double *y) {
    int64_t T = c->P + c->Skv;
    double *s = calloc((size_t)(T ? T : 1), sizeof *s);
    for (int64_t b = 0; b < c->B; b++)
        for (int64_t h = 0; h < c->qH; h++) {
            int64_t kh = h / (c->qH / c->kvH);
            for (int64_t i = 0; i < c->Sq; i++) {
                double max = -INFINITY, sum = 0;
                for (int64_t j = 0; j < T; j++) {
                    const float *kr = j < c->P ? pk + ((b * c->kvH + kh) * c->P + j) * c->D
                                               : k + ((b * c->kvH + kh) * c->Skv + j - c->P) * c->D;
                    double x = 0;
                    for (int64_t d = 0; d < c->D; d++) x += (double)q[((b * c->qH + h) * c->Sq + i) * c->D + d] * kr[d];
                    x *= c->scale;
                    if (c->softcap > 0) x = c->softcap * tanh(x / c->softcap);
                    if (c->mask)
                        x += c->mask[b * c->mstride[0] + h * c->mstride[1] + i * c->mstride[2] + j * c->mstride[3]];
                    if (c->causal && j > i + c->P) x = -INFINITY;
                    s[j] = x;
                    if (x > max) max = x;
                }
                for (int64_t j = 0; j < T; j++) sum += s[j] = max == -INFINITY ? 0 : exp(s[j] - max);
                for (int64_t e = 0; e < c->Dv; e++) {
                    double acc = 0;
                    for (int64_t j = 0; j < T; j++) {
                        const float *vr = j < c->P ? pv + ((b * c->kvH + kh) * c->P + j) * c->Dv
                                                   : v + ((b * c->kvH + kh) * c->Skv + j - c->P) * c->Dv;
                        acc += s[j] / (sum > 0 ? sum : 1) * vr[e];
                    }
                    y[((b * c->qH + h) * c->Sq + i) * c->Dv + e] = acc;
                }
            }
        }
    free(s);
}

static float *randf(int64_t n, uint64_t *seed) {
    float *p = malloc((size_t)(n ? n : 1) * sizeof *p);
    for (int64_t i = 0; i < n; i++) {
        *seed = *seed * 6364136223846793005ULL + 1442695040888963407ULL;
        p[i] = (float)((double)(*seed >> 11) / 9007199254740992.0 * 4 - 2);
    }
    return p;
}

static void expect_near(const celer_tensor *t, const double *want, int64_t n, const char *what) {
    const float *got = t->data;
    for (int64_t i = 0; i < n; i++)
        if (!(fabs(got[i] - want[i]) <= 1e-5 + 1e-4 * fabs(want[i]))) {
            printf("%s: y[%lld] = %.9g, expected %.9g\n", what, (long long)i, got[i], want[i]);
            fail();
        }
}

/* attn_mask [Sq or 1, T] float and [B, 1, 1, T] bool: broadcast over query rows, batches and
 * heads; with GQA, causal and a past cache not asked back (no present outputs). */
static void test_mask_broadcast_and_past_without_present(void **st) {
    (void)st;
    uint64_t seed = 7;
    ref_cfg c = {.B = 2, .qH = 4, .kvH = 2, .Sq = 3, .Skv = 2, .P = 3, .D = 5, .Dv = 6};
    int64_t T = c.P + c.Skv;
    float *q = randf(c.B * c.qH * c.Sq * c.D, &seed), *k = randf(c.B * c.kvH * c.Skv * c.D, &seed);
    float *v = randf(c.B * c.kvH * c.Skv * c.Dv, &seed), *pk = randf(c.B * c.kvH * c.P * c.D, &seed);
    float *pv = randf(c.B * c.kvH * c.P * c.Dv, &seed), *m = randf(T, &seed);
    celer_tensor tq = TEN(CELER_FLOAT, q, c.B, c.qH, c.Sq, c.D), tk = TEN(CELER_FLOAT, k, c.B, c.kvH, c.Skv, c.D);
    celer_tensor tv = TEN(CELER_FLOAT, v, c.B, c.kvH, c.Skv, c.Dv);
    celer_tensor tpk = TEN(CELER_FLOAT, pk, c.B, c.kvH, c.P, c.D), tpv = TEN(CELER_FLOAT, pv, c.B, c.kvH, c.P, c.Dv);
    int64_t ny = c.B * c.qH * c.Sq * c.Dv;
    double *want = malloc((size_t)ny * sizeof *want);
    celer_tensor out[1];

    /* float mask [1, T], one row for every query */
    celer_tensor tm = TEN(CELER_FLOAT, m, 1, T);
    c.mask = m, c.mstride[3] = 1, c.scale = 1 / sqrt((double)c.D), c.causal = true;
    ref_attention(&c, q, k, v, pk, pv, want);
    assert_int_equal(tu_run("Attention", 23, AT(AINT("is_causal", 1)), IN(&tq, &tk, &tv, &tm, &tpk, &tpv), out, 1), 0);
    EXPECT_SHAPE(&out[0], c.B, c.qH, c.Sq, c.Dv);
    expect_near(&out[0], want, ny, "float mask [1, T], causal, past");
    tu_free_outputs(out, 1);

    /* bool mask [B, 1, 1, T] with softcap and scale, no causal */
    uint8_t bm[2 * 5] = {1, 0, 1, 1, 0, 0, 1, 1, 0, 1};
    float bmf[2 * 5];
    for (int i = 0; i < 10; i++) bmf[i] = bm[i] ? 0.f : -INFINITY;
    celer_tensor tb = TEN(CELER_BOOL, bm, 2, 1, 1, 5);
    c.mask = bmf, c.mstride[0] = T, c.causal = false, c.scale = 0.3, c.softcap = 1.5;
    ref_attention(&c, q, k, v, pk, pv, want);
    assert_int_equal(tu_run("Attention", 23, AT(AFLOAT("scale", 0.3f), AFLOAT("softcap", 1.5f)),
                            IN(&tq, &tk, &tv, &tb, &tpk, &tpv), out, 1), 0);
    expect_near(&out[0], want, ny, "bool mask [B, 1, 1, T], softcap");
    tu_free_outputs(out, 1);

    free(want);
    free(q), free(k), free(v), free(pk), free(pv), free(m);
}

/* Causal rows run in blocks of 32, each with the keys up to its last row: 70 queries after 5
 * past keys (blocks of 32, 32, 6) with two query heads on one key/value head, and the present caches. */
static void test_causal_blocks_with_past(void **st) {
    (void)st;
    uint64_t seed = 11;
    ref_cfg c = {.B = 1, .qH = 2, .kvH = 1, .Sq = 70, .Skv = 70, .P = 5, .D = 8, .Dv = 4,
                 .causal = true, .scale = 1 / sqrt(8.0)};
    float *q = randf(c.qH * c.Sq * c.D, &seed), *k = randf(c.Skv * c.D, &seed), *v = randf(c.Skv * c.Dv, &seed);
    float *pk = randf(c.P * c.D, &seed), *pv = randf(c.P * c.Dv, &seed);
    celer_tensor tq = TEN(CELER_FLOAT, q, 1, 2, 70, 8), tk = TEN(CELER_FLOAT, k, 1, 1, 70, 8);
    celer_tensor tv = TEN(CELER_FLOAT, v, 1, 1, 70, 4), tpk = TEN(CELER_FLOAT, pk, 1, 1, 5, 8);
    celer_tensor tpv = TEN(CELER_FLOAT, pv, 1, 1, 5, 4), out[3];
    double want[2 * 70 * 4];
    ref_attention(&c, q, k, v, pk, pv, want);
    assert_int_equal(tu_run("Attention", 23, AT(AINT("is_causal", 1)), IN(&tq, &tk, &tv, NULL, &tpk, &tpv), out, 3), 0);
    expect_near(&out[0], want, 2 * 70 * 4, "causal blocks after a past");
    EXPECT_SHAPE(&out[1], 1, 1, 75, 8);
    assert_memory_equal(out[1].data, pk, 5 * 8 * sizeof(float));
    assert_memory_equal((float *)out[1].data + 5 * 8, k, 70 * 8 * sizeof(float));
    assert_memory_equal((float *)out[2].data + 5 * 4, v, 70 * 4 * sizeof(float));
    tu_free_outputs(out, 3);
    free(q), free(k), free(v), free(pk), free(pv);
}

/* No keys at all (kv sequence 0, no past): every row is fully masked and Y is zeros; no queries:
 * Y is empty. */
static void test_empty_sequences(void **st) {
    (void)st;
    float q[8] = {1, 2, 3, 4, 5, 6, 7, 8}, none[1] = {0};
    celer_tensor tq = TEN(CELER_FLOAT, q, 1, 1, 2, 4), tk = TEN(CELER_FLOAT, none, 1, 1, 0, 4);
    celer_tensor tv = TEN(CELER_FLOAT, none, 1, 1, 0, 3);
    celer_tensor out[3];
    assert_int_equal(tu_run("Attention", 23, NOAT, IN(&tq, &tk, &tv), out, 3), 0);
    EXPECT_SHAPE(&out[0], 1, 1, 2, 3);
    EXPECT_F32(&out[0], 0, 0, 0, 0, 0, 0);
    EXPECT_SHAPE(&out[1], 1, 1, 0, 4);
    tu_free_outputs(out, 3);
    celer_tensor tq0 = TEN(CELER_FLOAT, none, 1, 1, 0, 4), tk1 = TEN(CELER_FLOAT, q, 1, 1, 2, 4);
    celer_tensor tv1 = TEN(CELER_FLOAT, q, 1, 1, 2, 4);
    assert_int_equal(tu_run("Attention", 23, AT(AINT("is_causal", 1)), IN(&tq0, &tk1, &tv1), out, 1), 0);
    EXPECT_EMPTY(&out[0]);
    tu_free_outputs(out, 1);
}

/* One head of 6 rotated over its first 4 elements by hand: pairs (0, 2) and (1, 3), or (0, 1)
 * and (2, 3) interleaved; elements 4 and 5 copied. Position 1 picks the second cache row. */
static void test_rope_by_hand(void **st) {
    (void)st;
    float x[6] = {1, 2, 3, 4, 5, 6}, c[4] = {9, 9, 0.5f, -1}, s[4] = {9, 9, 2, 0.25f};
    int64_t pos[1] = {1};
    celer_tensor tx = TEN(CELER_FLOAT, x, 1, 1, 1, 6), tc = TEN(CELER_FLOAT, c, 2, 2);
    celer_tensor ts = TEN(CELER_FLOAT, s, 2, 2), tp = TEN(CELER_INT64, pos, 1, 1), out[1];
    assert_int_equal(tu_run("RotaryEmbedding", 23, AT(AINT("rotary_embedding_dim", 4)),
                            IN(&tx, &tc, &ts, &tp), out, 1), 0);
    /* (1, 3) by cos 0.5 sin 2; (2, 4) by cos -1 sin 0.25 */
    EXPECT_F32(&out[0], 0.5f * 1 - 2 * 3, -1.f * 2 - 0.25f * 4, 2 * 1 + 0.5f * 3, 0.25f * 2 - 1.f * 4, 5, 6);
    tu_free_outputs(out, 1);
    celer_tensor x3 = TEN(CELER_FLOAT, x, 1, 1, 6);
    assert_int_equal(tu_run("RotaryEmbedding", 23, AT(AINT("rotary_embedding_dim", 4), AINT("interleaved", 1),
                                                      AINT("num_heads", 1)), IN(&x3, &tc, &ts, &tp), out, 1), 0);
    /* (1, 2) by cos 0.5 sin 2; (3, 4) by cos -1 sin 0.25 */
    EXPECT_F32(&out[0], 0.5f * 1 - 2 * 2, 2 * 1 + 0.5f * 2, -1.f * 3 - 0.25f * 4, 0.25f * 3 - 1.f * 4, 5, 6);
    tu_free_outputs(out, 1);
}

static void test_refusals(void **st) {
    (void)st;
    float x[48] = {0};
    int32_t mi[9] = {0};
    int64_t pos[3] = {0, 1, 9};
    celer_tensor q = TEN(CELER_FLOAT, x, 1, 1, 3, 4), q3 = TEN(CELER_FLOAT, x, 1, 3, 8);
    celer_tensor mint = TEN(CELER_INT32, mi, 3, 3), out[4];
    tu_expect_err(tu_run("Attention", 23, AT(AINT("qk_matmul_output_mode", 2)), IN(&q, &q, &q), out, 1),
                  CELER_ERR_UNSUPPORTED, "qk_matmul_output_mode = 2");
    tu_expect_err(tu_run("Attention", 23, NOAT, IN(&q, &q, &q), out, 4), CELER_ERR_UNSUPPORTED,
                  "output 3 (qk_matmul_output)");
    tu_expect_err(tu_run("Attention", 23, AT(AINT("softmax_precision", 11)), IN(&q, &q, &q), out, 1),
                  CELER_ERR_UNSUPPORTED, "softmax_precision = 11 (double)");
    tu_expect_err(tu_run("Attention", 23, NOAT, IN(&q, &q, &q, &mint), out, 1), CELER_ERR_UNSUPPORTED,
                  "attn_mask is int32");
    tu_expect_err(tu_run("Attention", 23, AT(AINT("is_causal", 2)), IN(&q, &q, &q), out, 1),
                  CELER_ERR_INVALID, "is_causal = 2");
    tu_expect_err(tu_run("Attention", 23, NOAT, IN(&q3, &q3, &q3), out, 1), CELER_ERR_INVALID,
                  "q_num_heads and kv_num_heads");
    tu_expect_err(tu_run("Attention", 23, AT(AINT("q_num_heads", 2), AINT("kv_num_heads", 3)),
                         IN(&q3, &q3, &q3), out, 1), CELER_ERR_SHAPE, "not a multiple of its 3 heads");
    tu_expect_err(tu_run("Attention", 23, NOAT, IN(&q, &q, &q, NULL, &q), out, 1), CELER_ERR_INVALID,
                  "past_key and past_value go together");
    celer_tensor mbad = TEN(CELER_FLOAT, x, 2, 3);
    tu_expect_err(tu_run("Attention", 23, NOAT, IN(&q, &q, &q, &mbad), out, 1), CELER_ERR_SHAPE,
                  "does not broadcast");
    /* Attention 24 changed the causal alignment: not served yet */
    tu_expect_err(tu_run("Attention", 24, NOAT, IN(&q, &q, &q), out, 1), CELER_ERR_UNSUPPORTED,
                  "not supported at opset 24");

    /* RotaryEmbedding: position out of the caches, 3-D without num_heads, odd or too wide dims */
    celer_tensor x4 = TEN(CELER_FLOAT, x, 1, 1, 3, 4), cs = TEN(CELER_FLOAT, x, 4, 2);
    celer_tensor tp = TEN(CELER_INT64, pos, 1, 3);
    tu_expect_err(tu_run("RotaryEmbedding", 23, NOAT, IN(&x4, &cs, &cs, &tp), out, 1), CELER_ERR_INVALID,
                  "position_ids[0][2] = 9 is outside the caches' 4 positions");
    tu_free_outputs(out, 1);
    celer_tensor x3 = TEN(CELER_FLOAT, x, 1, 3, 4);
    tu_expect_err(tu_run("RotaryEmbedding", 23, NOAT, IN(&x3, &cs, &cs, &tp), out, 1), CELER_ERR_INVALID,
                  "needs attribute num_heads");
    tu_expect_err(tu_run("RotaryEmbedding", 23, AT(AINT("rotary_embedding_dim", 3)), IN(&x4, &cs, &cs, &tp),
                         out, 1), CELER_ERR_SHAPE, "rotary dimension 3 must be even");
    tu_expect_err(tu_run("RotaryEmbedding", 23, AT(AINT("rotary_embedding_dim", 6)), IN(&x4, &cs, &cs, &tp),
                         out, 1), CELER_ERR_SHAPE, "at most the head size 4");
    tu_expect_err(tu_run("RotaryEmbedding", 23, NOAT, IN(&x4, &cs, &cs), out, 1), CELER_ERR_SHAPE,
                  "without position_ids the caches must be [1, 3, 2]");
}

/* (the helper feeds at most 5 inputs: past_value is never given) */
static void test_random_inputs(void **st) {
    (void)st;
    static const tu_fuzz_case cases[] = {
        {"Attention", 23, 3, 1}, {"Attention", 23, 4, 1}, {"Attention", 23, 5, 3},
        {"RotaryEmbedding", 23, 3, 1}, {"RotaryEmbedding", 23, 4, 1},
    };
    tu_fuzz_ops(cases, CELER_ARRAY_LEN(cases), 2000);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_mask_broadcast_and_past_without_present),
        cmocka_unit_test(test_causal_blocks_with_past),
        cmocka_unit_test(test_empty_sequences),
        cmocka_unit_test(test_rope_by_hand),
        cmocka_unit_test(test_refusals),
        cmocka_unit_test(test_random_inputs),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
