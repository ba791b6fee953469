/* test_quant.c - the scalar reference formats against ggml and themselves.
 *
 * 1. Dequantize blk.0.attn_q.weight of every tiny512 model and compare with
 *    ggml's own dequantization (refs/, made by llama.cpp): bit-exact expected.
 * 2. The fused dot equals to_float + a float dot on ragged lengths, for
 *    random blocks (random bytes with sane fp16 scales) and quantized data.
 * 3. from_float -> to_float round-trip error per type, edge inputs, and the
 *    F16/BF16 conversions (special values, exhaustive round-trip, nearest).
 * 4. from_float of the F32 model's weights reproduces, byte for byte, what
 *    llama-quantize wrote into every other model (no importance matrix).
 * 5. The integer path: activation quantizers (ggml's x86 ones, with their
 *    rounding pinned by hand-made cases) and dot_q, which must equal the
 *    double dot of the dequantized operands up to float rounding, and the
 *    exact float dot up to the activation-quantization noise; hostile
 *    floats (NaN/Inf activations, NaN/Inf scales) give non-finite dots. */
#include <float.h>
#include <math.h>
#include <stdint.h>

#include "gguf.h"
#include "harness.h"
#include "quant.h"

static uint64_t rng_state = 0x9e3779b97f4a7c15ull;

static uint64_t rng_u64(void) { /* xorshift64* */
    rng_state ^= rng_state >> 12;
    rng_state ^= rng_state << 25;
    rng_state ^= rng_state >> 27;
    return rng_state * 0x2545f4914f6cdd1dull;
}

static float rng_unit(void) { return (float)((rng_u64() >> 40) + 0.5) / 16777216.0f; } /* (0,1) */

static float rng_gauss(void) {
    const double u = rng_unit(), v = rng_unit();
    return (float)(sqrt(-2.0 * log(u)) * cos(6.283185307179586 * v));
}

static float f_nan(void) { return nanf(""); }

static const uint32_t weight_types[] = {
    PL_TYPE_F32,  PL_TYPE_F16,  PL_TYPE_BF16, PL_TYPE_Q4_0, PL_TYPE_Q4_1,
    PL_TYPE_Q5_0, PL_TYPE_Q5_1, PL_TYPE_Q8_0, PL_TYPE_Q2_K, PL_TYPE_Q3_K,
    PL_TYPE_Q4_K, PL_TYPE_Q5_K, PL_TYPE_Q6_K, PL_TYPE_IQ4_NL, PL_TYPE_IQ4_XS,
};
#define N_WEIGHT_TYPES (sizeof weight_types / sizeof weight_types[0])

/* ------------------------------------------------------------------ 1. vs ggml */

static void test_refs(void) {
    static const char *const models[] = {"F32",  "F16",  "BF16", "Q8_0", "Q4_0",
                                         "Q4_1", "Q5_0", "Q5_1", "Q2_K", "Q3_K",
                                         "Q4_K", "Q5_K", "Q6_K", "Q4_K_M", "IQ4_NL", "IQ4_XS"};
    for (size_t m = 0; m < sizeof models / sizeof models[0]; m++) {
        char rel[256];
        size_t len = 0, rlen = 0;
        snprintf(rel, sizeof rel, "models/tiny512-%s.gguf", models[m]);
        void *buf = t_read_file(t_path(rel), &len);
        CHECK(buf != NULL, "missing %s", rel);
        snprintf(rel, sizeof rel, "refs/tiny512-%s.blk0.attn_q.f32", models[m]);
        float *ref = t_read_file(t_path(rel), &rlen);
        CHECK(ref != NULL && rlen == 256 * 256 * sizeof(float), "missing or bad %s", rel);
        if (!buf || !ref || rlen != 256 * 256 * sizeof(float)) {
            free(buf);
            free(ref);
            continue;
        }
        gguf_file g;
        char err[256];
        int rc = gguf_parse(&g, buf, len, err, sizeof err);
        CHECK(rc == 0, "%s: gguf_parse: %s", models[m], err);
        const gguf_tensor *t = rc == 0 ? gguf_find_tensor(&g, "blk.0.attn_q.weight") : NULL;
        CHECK(t != NULL, "%s: no blk.0.attn_q.weight", models[m]);
        const pl_type_traits *tt = t ? pl_type_traits_get(t->type) : NULL;
        CHECK(tt != NULL, "%s: unsupported tensor type %u", models[m], t ? t->type : 0);
        if (t && tt) {
            const int64_t n = 256 * 256;
            CHECK(t->ne[0] == 256 && t->ne[1] == 256, "%s: shape", models[m]);
            CHECK(strstr(models[m], tt->name) == models[m], "%s: type is %s", models[m], tt->name);
            CHECK(pl_row_size(t->type, 256) * 256 == t->nbytes, "%s: nbytes %llu", models[m],
                  (unsigned long long)t->nbytes);
            float *out = malloc((size_t)n * sizeof(float));
            for (int64_t i = 0; i < n; i++) out[i] = f_nan();
            /* row by row, as the engine will use it */
            const size_t rs = pl_row_size(t->type, 256);
            for (int r = 0; r < 256; r++)
                tt->to_float((const uint8_t *)t->data + (size_t)r * rs, out + r * 256, 256);
            int64_t bad = 0, exact = 0, first = -1;
            for (int64_t i = 0; i < n; i++) {
                if (memcmp(&out[i], &ref[i], 4) == 0) {
                    exact++;
                    continue;
                }
                if (!(fabsf(out[i] - ref[i]) <= 1e-6f * fabsf(ref[i]))) {
                    if (first < 0) first = i;
                    bad++;
                }
            }
            CHECK(bad == 0, "%s: %lld of %lld values off (first at %lld: %g vs %g)", models[m],
                  (long long)bad, (long long)n, (long long)first,
                  first >= 0 ? out[first] : 0.0, first >= 0 ? ref[first] : 0.0);
            CHECK(exact == n, "%s: only %lld of %lld values bit-exact", models[m], (long long)exact,
                  (long long)n);
            free(out);
        }
        if (rc == 0) gguf_free(&g);
        free(buf);
        free(ref);
    }
}

/* ------------------------------------------------------------------ 4. bytes */

static void test_quantize_bytes(void) {
    static const char *const models[] = {"F16",  "BF16", "Q8_0", "Q4_0", "Q4_1",
                                         "Q5_0", "Q5_1", "Q2_K", "Q3_K", "Q4_K",
                                         "Q5_K", "Q6_K", "Q4_K_M", "IQ4_NL", "IQ4_XS"};
    size_t flen = 0;
    void *fbuf = t_read_file(t_path("models/tiny512-F32.gguf"), &flen);
    gguf_file fg;
    char err[256];
    CHECK(fbuf && gguf_parse(&fg, fbuf, flen, err, sizeof err) == 0, "tiny512-F32.gguf");
    if (!fbuf || fg.n_tensors == 0) {
        free(fbuf);
        return;
    }
    for (size_t m = 0; m < sizeof models / sizeof models[0]; m++) {
        char rel[256];
        size_t len = 0;
        gguf_file g;
        snprintf(rel, sizeof rel, "models/tiny512-%s.gguf", models[m]);
        void *buf = t_read_file(t_path(rel), &len);
        if (!buf || gguf_parse(&g, buf, len, err, sizeof err) != 0) {
            CHECK(0, "cannot read %s", rel);
            free(buf);
            continue;
        }
        int tested = 0;
        for (uint64_t i = 0; i < g.n_tensors; i++) {
            const gguf_tensor *t = &g.tensors[i];
            char name[128];
            snprintf(name, sizeof name, "%.*s", (int)t->name.len, t->name.ptr);
            const gguf_tensor *src = gguf_find_tensor(&fg, name);
            const pl_type_traits *tt = pl_type_traits_get(t->type);
            if (t->type == PL_TYPE_F32 || !src || src->type != PL_TYPE_F32 || !tt) continue;
            const int64_t n = t->ne[0] * t->ne[1] * t->ne[2] * t->ne[3];
            CHECK((uint64_t)n * 4 == src->nbytes && pl_row_size(t->type, n) == t->nbytes,
                  "%s %s: sizes", models[m], name);
            if ((uint64_t)n * 4 != src->nbytes || pl_row_size(t->type, n) != t->nbytes) continue;
            uint8_t *q = malloc(t->nbytes);
            tt->from_float((const float *)src->data, q, n);
            size_t diff = 0;
            for (size_t k = 0; k < t->nbytes; k++) diff += q[k] != ((const uint8_t *)t->data)[k];
            CHECK(diff == 0, "%s %s (%s): %zu of %llu bytes differ from llama-quantize", models[m],
                  name, tt->name, diff, (unsigned long long)t->nbytes);
            free(q);
            tested++;
        }
        CHECK(tested >= 14, "%s: only %d tensors compared", models[m], tested);
        gguf_free(&g);
        free(buf);
    }
    gguf_free(&fg);
    free(fbuf);
}

/* ------------------------------------------------------------------ 2. dot */

static pl_half rand_scale_half(void) { /* magnitude in ~[2^-12, 2^-4], random sign */
    const float v = ldexpf(0.5f + 0.5f * rng_unit(), -(int)(rng_u64() % 9) - 4);
    return pl_float_to_half(rng_u64() & 1 ? -v : v);
}

static void put_half(uint8_t *p, pl_half h) { memcpy(p, &h, 2); }

/* Fill nb blocks of random bytes, then make every fp16/bf16/f32 field finite
 * and modest so the sums stay meaningful. */
static void random_blocks(uint32_t type, uint8_t *p, int64_t n) {
    const pl_type_traits *t = pl_type_traits_get(type);
    const int64_t nb = n / t->blck;
    for (size_t i = 0; i < (size_t)nb * t->type_size; i++) p[i] = (uint8_t)rng_u64();
    for (int64_t b = 0; b < nb; b++) {
        uint8_t *q = p + (size_t)b * t->type_size;
        switch (type) {
        case PL_TYPE_F32: {
            const float v = rng_gauss();
            memcpy(q, &v, 4);
        } break;
        case PL_TYPE_F16: put_half(q, pl_float_to_half(rng_gauss())); break;
        case PL_TYPE_BF16: {
            const uint16_t h = pl_float_to_bf16(rng_gauss());
            memcpy(q, &h, 2);
        } break;
        case PL_TYPE_Q4_0: case PL_TYPE_Q5_0: case PL_TYPE_Q8_0: case PL_TYPE_IQ4_NL: case PL_TYPE_IQ4_XS:
            put_half(q, rand_scale_half());
            break;
        case PL_TYPE_Q4_1: case PL_TYPE_Q5_1: case PL_TYPE_Q4_K: case PL_TYPE_Q5_K:
            put_half(q, rand_scale_half());
            put_half(q + 2, rand_scale_half());
            break;
        case PL_TYPE_Q2_K:
            put_half(q + offsetof(block_q2_K, d), rand_scale_half());
            put_half(q + offsetof(block_q2_K, dmin), rand_scale_half());
            break;
        case PL_TYPE_Q3_K: put_half(q + offsetof(block_q3_K, d), rand_scale_half()); break;
        case PL_TYPE_Q6_K: put_half(q + offsetof(block_q6_K, d), rand_scale_half()); break;
        default: break;
        }
    }
}

/* Checks tt->dot(w, x) against to_float + float dot and a double reference:
 * both float results must lie within the classic (n+k)*eps*sum|w x| bound. */
static void check_dot(const pl_type_traits *tt, const void *w, const float *x, int64_t n,
                      const char *what) {
    float *wf = malloc((size_t)n * sizeof(float));
    for (int64_t i = 0; i < n; i++) wf[i] = f_nan();
    tt->to_float(w, wf, n);
    float fdot = 0;
    double ref = 0, mag = 0;
    int finite = 1;
    for (int64_t i = 0; i < n; i++) {
        finite &= isfinite(wf[i]) != 0;
        fdot += wf[i] * x[i];
        ref += (double)wf[i] * x[i];
        mag += fabs((double)wf[i] * x[i]);
    }
    CHECK(finite, "%s %s n=%lld: to_float left a non-finite value", tt->name, what, (long long)n);
    const float d = tt->dot(w, x, n);
    const double tol = (double)(n + 16) * FLT_EPSILON * mag + 1e-30;
    CHECK(fabs(d - ref) <= tol, "%s %s n=%lld: dot %.9g vs exact %.9g (tol %.3g)", tt->name, what,
          (long long)n, d, ref, tol);
    CHECK(fabs(fdot - ref) <= tol, "%s %s n=%lld: float dot %.9g vs exact %.9g", tt->name, what,
          (long long)n, fdot, ref);
    CHECK(fabs((double)d - fdot) <= 2 * tol, "%s %s n=%lld: dot %.9g vs to_float+dot %.9g",
          tt->name, what, (long long)n, d, fdot);
    free(wf);
}

static void test_dot(void) {
    for (size_t k = 0; k < N_WEIGHT_TYPES; k++) {
        const pl_type_traits *tt = pl_type_traits_get(weight_types[k]);
        CHECK(tt && tt->to_float && tt->dot && tt->from_float, "traits of type %u",
              weight_types[k]);
        if (!tt) continue;
        /* 1..5 blocks for block types; 1..67 and a few long rows for scalars */
        const int64_t maxn = tt->blck == 1 ? 1100 : 5 * (int64_t)tt->blck;
        uint8_t *w = malloc(pl_row_size(weight_types[k], maxn) + 1);
        float *x = malloc((size_t)maxn * sizeof(float));
        float *src = malloc((size_t)maxn * sizeof(float));
        for (int64_t n = tt->blck; n <= maxn; n += tt->blck) {
            if (tt->blck == 1 && n > 67 && n != 300 && n != 1100) continue;
            for (int64_t i = 0; i < n; i++) x[i] = rng_gauss();
            random_blocks(weight_types[k], w, n);
            check_dot(tt, w, x, n, "random bytes");
            for (int64_t i = 0; i < n; i++) src[i] = rng_gauss() * 0.02f + (i % 7 == 0 ? 0.01f : 0);
            tt->from_float(src, w, n);
            check_dot(tt, w, x, n, "quantized");
        }
        free(w);
        free(x);
        free(src);
    }
}

/* ------------------------------------------------------------------ 5. integer path */

static uint32_t want_vec_dot_type(uint32_t type) {
    switch (type) {
    case PL_TYPE_Q4_0: case PL_TYPE_Q5_0: case PL_TYPE_Q8_0: case PL_TYPE_IQ4_NL: return PL_TYPE_Q8_0;
    case PL_TYPE_Q4_1: case PL_TYPE_Q5_1: return PL_TYPE_Q8_1;
    case PL_TYPE_Q2_K: case PL_TYPE_Q3_K: case PL_TYPE_Q4_K: case PL_TYPE_Q5_K: case PL_TYPE_Q6_K:
    case PL_TYPE_IQ4_XS:
        return PL_TYPE_Q8_K;
    default: return PL_TYPE_F32;
    }
}

/* Bounds on |dot_q(w, quantize(x)) - sum w x| / sum |w x| for Gaussian x
 * (no outliers) on 1..5 blocks: the activation-quantization noise. Over
 * 1000 trials per length (random-byte and quantized weights) the largest
 * measured were 0.0069 (Q4_1; Q4_0 Q5_0 Q5_1 Q8_0 0.0053-0.0060) with
 * Q8_0/Q8_1 activations and 0.0036 (Q3_K; the others 0.0025-0.0027) with
 * Q8_K, whose more numerous blocks average the noise down. Float
 * activations (F32/F16/BF16 weights) differ by float rounding only. */
static double act_noise_bound(uint32_t act) {
    return act == PL_TYPE_F32 ? 1e-5 : act == PL_TYPE_Q8_K ? 0.006 : 0.01;
}

/* The weight block's m (Q4_1/Q5_1), the only weight field dot_q combines
 * with the activation's fp16 s instead of with the quants. */
static float q_1_min(uint32_t type, const void *w, int64_t b) {
    return type == PL_TYPE_Q4_1 ? pl_half_to_float(((const block_q4_1 *)w)[b].m)
                                : pl_half_to_float(((const block_q5_1 *)w)[b].m);
}

static void test_dot_q(void) {
    const int64_t lens_f[] = {1, 2, 3, 7, 31, 32, 33, 67, 300, 1100};
    for (size_t k = 0; k < N_WEIGHT_TYPES; k++) {
        const uint32_t type = weight_types[k];
        const pl_type_traits *tt = pl_type_traits_get(type);
        const uint32_t act = tt ? tt->vec_dot_type : 0;
        const pl_type_traits *at = pl_type_traits_get(act);
        CHECK(tt && tt->dot_q && act == want_vec_dot_type(type), "%s: vec_dot_type %u / dot_q",
              tt ? tt->name : "?", act);
        CHECK(at && at->to_float && at->from_float_act, "%s: activation traits", tt ? tt->name : "?");
        if (!tt || !tt->dot_q || !at || !at->from_float_act || act != want_vec_dot_type(type)) continue;
        const int nlen = tt->blck == 1 ? (int)(sizeof lens_f / sizeof lens_f[0]) : 5;
        const int64_t maxn = tt->blck == 1 ? 1100 : 5 * (int64_t)tt->blck;
        uint8_t *w = malloc(pl_row_size(type, maxn));
        uint8_t *xq = malloc(act == PL_TYPE_F32 ? (size_t)maxn * 4 : pl_row_size(act, maxn));
        float *x = malloc((size_t)maxn * sizeof(float));
        float *src = malloc((size_t)maxn * sizeof(float));
        float *wf = malloc((size_t)maxn * sizeof(float));
        float *xf = malloc((size_t)maxn * sizeof(float));
        double worst_noise = 0, worst_exact = 0;
        for (int li = 0; li < nlen; li++) {
            const int64_t n = tt->blck == 1 ? lens_f[li] : (li + 1) * (int64_t)tt->blck;
            for (int trial = 0; trial < 40; trial++) {
                /* Gaussian at several scales; every 5th trial gets an
                 * outlier, whose block then quantizes coarsely: those are
                 * held to the per-element bound only */
                const int outlier = trial % 5 == 4;
                const float scale = ldexpf(1, (int)(rng_u64() % 16) - 8);
                for (int64_t i = 0; i < n; i++) x[i] = rng_gauss() * scale;
                if (outlier) x[rng_u64() % (uint64_t)n] *= 20;
                if (trial % 2 == 0) {
                    random_blocks(type, w, n);
                } else {
                    for (int64_t i = 0; i < n; i++) src[i] = rng_gauss() * 0.02f + (i % 7 == 0 ? 0.01f : 0);
                    tt->from_float(src, w, n);
                }
                memset(xq, 0xa5, act == PL_TYPE_F32 ? (size_t)n * 4 : pl_row_size(act, n));
                if (act == PL_TYPE_F32) memcpy(xq, x, (size_t)n * 4);
                else at->from_float_act(x, xq, n);
                for (int64_t i = 0; i < n; i++) wf[i] = xf[i] = f_nan();
                tt->to_float(w, wf, n);
                at->to_float(xq, xf, n);
                double slow = 0, magq = 0, exact = 0, mag = 0;
                for (int64_t i = 0; i < n; i++) {
                    slow += (double)wf[i] * xf[i];
                    magq += fabs((double)wf[i] * xf[i]);
                    exact += (double)wf[i] * x[i];
                    mag += fabs((double)wf[i] * x[i]);
                }
                if (act == PL_TYPE_Q8_1) /* dot_q takes sum(xq) from s, rounded to fp16 */
                    for (int64_t b = 0; b < n / QK8_1; b++) {
                        const block_q8_1 *y = (const block_q8_1 *)xq + b;
                        int sum = 0;
                        for (int j = 0; j < QK8_1; j++) sum += y->qs[j];
                        slow += (double)q_1_min(type, w, b) *
                                ((double)pl_half_to_float(y->s) - (double)pl_half_to_float(y->d) * sum);
                    }
                const float dq = tt->dot_q(w, xq, n);
                /* float rounding only: a few roundings per block, 8 lanes,
                 * and the row sum */
                const double tight = (double)(n / tt->blck + 16) * 4 * FLT_EPSILON * magq + 1e-30;
                CHECK(isfinite(dq) && fabs(dq - slow) <= tight,
                      "%s n=%lld trial %d: dot_q %.9g vs dequantized %.9g (tol %.3g)", tt->name,
                      (long long)n, trial, dq, slow, tight);
                const double e = fabs(dq - slow) / (magq > 0 ? magq : 1);
                if (e > worst_exact) worst_exact = e;
                /* each dequantized activation lies within half a step of
                 * x, plus what rounding d to fp16 moves the step by */
                double elem = 0;
                for (int64_t b = 0; act != PL_TYPE_F32 && b < n / at->blck; b++) {
                    const int64_t nb = at->blck;
                    float amax = 0;
                    for (int64_t i = b * nb; i < (b + 1) * nb; i++) amax = fmaxf(amax, fabsf(x[i]));
                    const double step = amax / 127.0;
                    const double dstored = act == PL_TYPE_Q8_K ? fabs((double)((const block_q8_K *)xq)[b].d)
                                         : act == PL_TYPE_Q8_0 ? pl_half_to_float(((const block_q8_0 *)xq)[b].d)
                                                               : pl_half_to_float(((const block_q8_1 *)xq)[b].d);
                    const double lim = (0.5 + 1e-4) * step + 127 * fabs(dstored - step);
                    for (int64_t i = b * nb; i < (b + 1) * nb; i++)
                        if (fabs((double)xf[i] - x[i]) > lim) elem += 1;
                }
                CHECK(elem == 0, "%s n=%lld trial %d: %g activations off by more than half a step",
                      tt->name, (long long)n, trial, elem);
                const double noise = fabs(dq - exact) / (mag > 0 ? mag : 1);
                if (outlier) continue;
                if (noise > worst_noise) worst_noise = noise;
                CHECK(noise <= act_noise_bound(act),
                      "%s n=%lld trial %d: dot_q %.9g vs float %.9g: relative %.4g > %.4g", tt->name,
                      (long long)n, trial, dq, exact, noise, act_noise_bound(act));
                if (act == PL_TYPE_F32) {
                    const float d = tt->dot(w, x, n);
                    CHECK(memcmp(&d, &dq, 4) == 0, "%s n=%lld: dot_q differs from dot", tt->name,
                          (long long)n);
                }
            }
        }
        if (getenv("PICOLM_VERBOSE"))
            printf("  %-5s dot_q vs float: max rel %.5f (bound %.3f); vs dequantized: max rel %.2g\n",
                   tt->name, worst_noise, act_noise_bound(act), worst_exact);
        free(w);
        free(xq);
        free(x);
        free(src);
        free(wf);
        free(xf);
    }
}

/* The activation quantizers' arithmetic, pinned on values whose rounding
 * depends on it. */
static void test_act_quant(void) {
    const pl_type_traits *q80 = pl_type_traits_get(PL_TYPE_Q8_0);
    const pl_type_traits *q81 = pl_type_traits_get(PL_TYPE_Q8_1);
    const pl_type_traits *q8k = pl_type_traits_get(PL_TYPE_Q8_K);
    CHECK(q81 && q81->blck == 32 && q81->type_size == 36 && q81->dot == NULL && q81->dot_q == NULL &&
              q81->to_float && q81->from_float && q81->from_float_act,
          "Q8_1 traits");
    CHECK(q8k && q8k->from_float_act == q8k->from_float, "Q8_K: x86 uses the reference quantizer");
    if (!q80 || !q81 || !q8k) return;

    /* amax 127 makes the scale exactly 1: x86 (AVX2) rounds ties to even,
     * the references (what llama-quantize writes) away from zero. */
    float x[QK_K];
    static const float v[] = {127, 2.5f, -0.5f, 1.5f, -3.5f, 126.5f, 0.49f, -127};
    static const int want_act[] = {127, 2, 0, 2, -4, 126, 0, -127};
    static const int want_ref[] = {127, 3, -1, 2, -4, 127, 0, -127};
    for (int j = 0; j < 32; j++) x[j] = j < 8 ? v[j] : 0.0f;
    block_q8_0 b0, r0;
    block_q8_1 b1, r1;
    q80->from_float_act(x, &b0, 32);
    q80->from_float(x, &r0, 32);
    q81->from_float_act(x, &b1, 32);
    q81->from_float(x, &r1, 32);
    int ok_act = b0.d == 0x3c00 && b1.d == 0x3c00, ok_ref = r0.d == 0x3c00 && r1.d == 0x3c00;
    int sum_act = 0, sum_ref = 0;
    for (int j = 0; j < 8; j++) {
        ok_act &= b0.qs[j] == want_act[j] && b1.qs[j] == want_act[j];
        ok_ref &= r0.qs[j] == want_ref[j] && r1.qs[j] == want_ref[j];
        sum_act += want_act[j];
        sum_ref += want_ref[j];
    }
    CHECK(ok_act, "Q8_0/Q8_1 activations: not ggml's x86 rounding (ties to even)");
    CHECK(ok_ref, "Q8_0/Q8_1 reference: not roundf (ties away from zero)");
    CHECK(b1.s == pl_float_to_half((float)sum_act) && r1.s == pl_float_to_half((float)sum_ref),
          "Q8_1 s = d * sum(q)");

    /* Q8_K: iscale = -127/max with max the signed extreme, which always maps
     * to -127; d = 1/iscale carries the sign. max -127 gives d = 1. */
    for (int j = 0; j < QK_K; j++) x[j] = 0;
    x[0] = -127;
    x[1] = 2.5f;
    x[2] = -0.5f;
    x[3] = 3.5f;
    x[200] = 126.5f;
    block_q8_K bk;
    q8k->from_float(x, &bk, QK_K);
    CHECK(bk.d == 1.0f && bk.qs[0] == -127 && bk.qs[1] == 2 && bk.qs[2] == 0 && bk.qs[3] == 4 &&
              bk.qs[200] == 126 && bk.bsums[0] == -127 + 2 + 4 && bk.bsums[12] == 126,
          "Q8_K: d %g q %d %d %d %d %d", bk.d, bk.qs[0], bk.qs[1], bk.qs[2], bk.qs[3], bk.qs[200]);
    x[0] = 127; /* a positive extreme: d = -1 */
    q8k->from_float(x, &bk, QK_K);
    CHECK(bk.d == -1.0f && bk.qs[0] == -127 && bk.qs[1] == -2 && bk.qs[3] == -4 && bk.qs[200] == -126,
          "Q8_K positive extreme: d %g q %d", bk.d, bk.qs[0]);

    /* On random data: the x86 Q8_0 quantizer is exactly
     * rint(x * (127/amax)) with d = fp16(amax/127), the reference
     * roundf(x * (1/d)); count where they differ. */
    int bad = 0, differ = 0;
    for (int t = 0; t < 20000; t++) {
        float amax = 0;
        for (int j = 0; j < 32; j++) {
            x[j] = rng_gauss() * ldexpf(1, (int)(rng_u64() % 20) - 10);
            amax = fmaxf(amax, fabsf(x[j]));
        }
        q80->from_float_act(x, &b0, 32);
        q80->from_float(x, &r0, 32);
        const float id = 127 / amax, d = amax / 127, idr = 1.0f / d;
        bad += b0.d != pl_float_to_half(d) || r0.d != b0.d;
        for (int j = 0; j < 32; j++) {
            bad += b0.qs[j] != (int)rintf(x[j] * id) || r0.qs[j] != (int)roundf(x[j] * idr);
            differ += b0.qs[j] != r0.qs[j];
        }
    }
    CHECK(bad == 0, "%d Q8_0 quants off their definition", bad);
    if (getenv("PICOLM_VERBOSE"))
        printf("  Q8_0 x86 vs reference activation quantizer: %d of 640000 quants differ\n", differ);
}

/* Hostile floats through the scalar integer path: an activation block with
 * a NaN or an Inf quantizes to d = NaN with zero quants (all three
 * activation formats), so dot_q of any weights is NaN; a weight block
 * whose fp16 scale is NaN or Inf makes dot_q and dot non-finite; a NaN
 * activation makes dot NaN. */
static void test_nonfinite(void) {
    static const uint32_t acts[] = {PL_TYPE_Q8_0, PL_TYPE_Q8_1, PL_TYPE_Q8_K};
    float x[2 * QK_K];
    static _Alignas(16) uint8_t xq[2 * 292], w[2 * 210];
    for (size_t a = 0; a < sizeof acts / sizeof acts[0]; a++) {
        const pl_type_traits *at = pl_type_traits_get(acts[a]);
        for (int kind = 0; kind < 3; kind++) {
            for (int i = 0; i < 2 * QK_K; i++) x[i] = rng_gauss();
            x[rng_u64() % (2 * QK_K)] = kind == 0 ? NAN : kind == 1 ? INFINITY : -INFINITY;
            at->from_float_act(x, xq, 2 * QK_K);
            int nan_blocks = 0, zero_q = 1;
            for (int b = 0; b < 2 * QK_K / at->blck; b++) {
                const uint8_t *blk = xq + (size_t)b * at->type_size;
                float d;
                const int8_t *q;
                if (acts[a] == PL_TYPE_Q8_K) {
                    d = ((const block_q8_K *)blk)->d;
                    q = ((const block_q8_K *)blk)->qs;
                } else {
                    d = pl_half_to_float(((const block_q8_0 *)blk)->d);
                    q = (const int8_t *)blk + (acts[a] == PL_TYPE_Q8_1 ? 4 : 2);
                }
                if (isnan(d)) {
                    nan_blocks++;
                    for (int j = 0; j < at->blck; j++) zero_q &= q[j] == 0;
                }
            }
            CHECK(nan_blocks == 1 && zero_q, "%s: a block with %s: %d NaN blocks, quants zero %d", at->name,
                  kind ? "Inf" : "NaN", nan_blocks, zero_q);
        }
    }
    for (size_t k = 0; k < N_WEIGHT_TYPES; k++) {
        const uint32_t type = weight_types[k];
        const pl_type_traits *tt = pl_type_traits_get(type);
        const uint32_t act = tt->vec_dot_type;
        const int64_t n = tt->blck == 1 ? 64 : 2 * (int64_t)tt->blck;
        for (int kind = 0; kind < 2; kind++) {
            for (int64_t i = 0; i < n; i++) x[i] = rng_gauss();
            random_blocks(type, w, n);
            x[rng_u64() % (uint64_t)n] = kind ? INFINITY : NAN;
            if (act == PL_TYPE_F32) memcpy(xq, x, (size_t)n * 4);
            else pl_type_traits_get(act)->from_float_act(x, xq, n);
            const float dq = tt->dot_q(w, xq, n), d = tt->dot(w, x, n);
            CHECK(!isfinite(dq), "%s: dot_q with a%s activation is %g", tt->name, kind ? "n Inf" : " NaN", dq);
            CHECK(kind || isnan(d), "%s: dot with a NaN activation is %g", tt->name, d);
        }
        /* the first block's scale (or first weight) NaN, then Inf */
        for (int kind = 0; kind < 2; kind++) {
            for (int64_t i = 0; i < n; i++) x[i] = rng_gauss();
            random_blocks(type, w, n);
            const size_t off = type == PL_TYPE_Q2_K ? offsetof(block_q2_K, d)
                             : type == PL_TYPE_Q3_K ? offsetof(block_q3_K, d)
                             : type == PL_TYPE_Q6_K ? offsetof(block_q6_K, d) : 0;
            if (type == PL_TYPE_F32) {
                const float f = kind ? INFINITY : NAN;
                memcpy(w, &f, 4);
            } else if (type == PL_TYPE_BF16) {
                const uint16_t h = kind ? 0x7f80 : 0x7fc0;
                memcpy(w, &h, 2);
            } else {
                put_half(w + off, kind ? 0x7c00 : 0x7e00);
            }
            if (act == PL_TYPE_F32) memcpy(xq, x, (size_t)n * 4);
            else pl_type_traits_get(act)->from_float_act(x, xq, n);
            const float dq = tt->dot_q(w, xq, n), d = tt->dot(w, x, n);
            CHECK(!isfinite(dq) && !isfinite(d), "%s: a %s scale gives dot_q %g, dot %g", tt->name,
                  kind ? "Inf" : "NaN", dq, d);
        }
    }
}

/* ------------------------------------------------------------------ 3. round trip */

/* Relative RMSE of from_float -> to_float on n values. */
static double roundtrip_rmse(const pl_type_traits *tt, uint32_t type, const float *src, int64_t n,
                             float *out, int *finite) {
    uint8_t *q = malloc(pl_row_size(type, n));
    tt->from_float(src, q, n);
    for (int64_t i = 0; i < n; i++) out[i] = f_nan();
    tt->to_float(q, out, n);
    double se = 0, s2 = 0;
    *finite = 1;
    for (int64_t i = 0; i < n; i++) {
        *finite &= isfinite(out[i]) != 0;
        se += ((double)out[i] - src[i]) * ((double)out[i] - src[i]);
        s2 += (double)src[i] * src[i];
    }
    free(q);
    return s2 > 0 ? sqrt(se / s2) : sqrt(se);
}

static void test_roundtrip(void) {
    /* Bounds for Gaussian data, about 1.2-1.4x what these quantizers (which
     * equal llama-quantize without an imatrix) measure: Q8_0 0.0053, Q6_K
     * 0.017, Q5_0 0.042, Q5_1 0.037, Q5_K 0.037, Q4_0 0.086, Q4_1 0.075,
     * Q4_K 0.072, Q3_K 0.152, Q2_K 0.291, IQ4_NL 0.076, IQ4_XS 0.077. */
    static const struct { uint32_t type; double max_rel_rmse; } bound[] = {
        {PL_TYPE_F32, 0.0},     {PL_TYPE_F16, 0.0005}, {PL_TYPE_BF16, 0.003},
        {PL_TYPE_Q8_0, 0.01},   {PL_TYPE_Q6_K, 0.025}, {PL_TYPE_Q5_0, 0.06},
        {PL_TYPE_Q5_1, 0.05},   {PL_TYPE_Q5_K, 0.045}, {PL_TYPE_Q4_0, 0.12},
        {PL_TYPE_Q4_1, 0.10},   {PL_TYPE_Q4_K, 0.09},  {PL_TYPE_Q3_K, 0.20},
        {PL_TYPE_Q2_K, 0.40},   {PL_TYPE_IQ4_NL, 0.10}, {PL_TYPE_IQ4_XS, 0.10},
    };
    const int64_t n = 256 * 16;
    float *src = malloc((size_t)n * sizeof(float));
    float *out = malloc((size_t)n * sizeof(float));
    for (size_t k = 0; k < sizeof bound / sizeof bound[0]; k++) {
        const pl_type_traits *tt = pl_type_traits_get(bound[k].type);
        int finite;
        /* Gaussian with a per-256 scale that varies, plus a mean offset */
        for (int64_t i = 0; i < n; i++)
            src[i] = (rng_gauss() + 0.1f) * (0.01f + 0.01f * (float)(i / 256));
        const double e = roundtrip_rmse(tt, bound[k].type, src, n, out, &finite);
        CHECK(finite && e <= bound[k].max_rel_rmse, "%s: round-trip relative RMSE %.5f > %.5f",
              tt->name, e, bound[k].max_rel_rmse);
        if (getenv("PICOLM_VERBOSE")) printf("  %-5s rel RMSE %.5f (bound %.4f)\n", tt->name, e, bound[k].max_rel_rmse);

        /* Edge inputs: all zero decodes to exact zeros; a constant block and
         * an outlier stay finite and keep the outlier close. */
        for (int64_t i = 0; i < n; i++) src[i] = 0;
        roundtrip_rmse(tt, bound[k].type, src, n, out, &finite);
        int zeros = 1;
        for (int64_t i = 0; i < n; i++) zeros &= out[i] == 0;
        CHECK(finite && zeros, "%s: zeros do not round-trip to zeros", tt->name);

        for (int64_t i = 0; i < n; i++) src[i] = -0.75f;
        const double ec = roundtrip_rmse(tt, bound[k].type, src, n, out, &finite);
        CHECK(finite && ec <= 0.02, "%s: constant -0.75 round-trips with rel RMSE %.4f", tt->name, ec);

        for (int64_t i = 0; i < n; i++) src[i] = rng_gauss() * 0.01f;
        src[37] = 3.0f;
        src[300] = -5.0f;
        roundtrip_rmse(tt, bound[k].type, src, n, out, &finite);
        CHECK(finite && fabsf(out[37] - 3.0f) < 0.2f && fabsf(out[300] + 5.0f) < 0.2f,
              "%s: outliers 3, -5 came back as %g, %g", tt->name, out[37], out[300]);
    }

    /* Q8_K (activations): round trip and bsums */
    {
        const pl_type_traits *tt = pl_type_traits_get(PL_TYPE_Q8_K);
        CHECK(tt && tt->dot == NULL && tt->type_size == 292, "Q8_K traits");
        for (int64_t i = 0; i < n; i++) src[i] = rng_gauss();
        block_q8_K *q = malloc(pl_row_size(PL_TYPE_Q8_K, n));
        tt->from_float(src, q, n);
        tt->to_float(q, out, n);
        double se = 0, s2 = 0;
        int sums_ok = 1;
        for (int64_t i = 0; i < n; i++) {
            se += ((double)out[i] - src[i]) * ((double)out[i] - src[i]);
            s2 += (double)src[i] * src[i];
        }
        for (int64_t b = 0; b < n / QK_K; b++)
            for (int j = 0; j < QK_K / 16; j++) {
                int s = 0;
                for (int l = 0; l < 16; l++) s += q[b].qs[16 * j + l];
                sums_ok &= s == q[b].bsums[j];
            }
        CHECK(sqrt(se / s2) < 0.01, "Q8_K round-trip relative RMSE %.5f", sqrt(se / s2));
        CHECK(sums_ok, "Q8_K bsums");
        free(q);
    }
    free(src);
    free(out);
}

/* ------------------------------------------------------------------ F16 / BF16 */

static uint32_t fbits(float f) {
    uint32_t u;
    memcpy(&u, &f, 4);
    return u;
}

static float bitsf(uint32_t u) {
    float f;
    memcpy(&f, &u, 4);
    return f;
}

static void test_half(void) {
    static const struct { float f; pl_half h; } cases[] = {
        {0.0f, 0x0000},          {1.0f, 0x3c00},          {-2.0f, 0xc000},
        {65504.0f, 0x7bff},      {65519.99f, 0x7bff},     {65520.0f, 0x7c00},
        {1e10f, 0x7c00},         {-1e10f, 0xfc00},        {0x1p-24f, 0x0001},
        {0x1p-25f, 0x0000},      {0x1.0002p-25f, 0x0001}, {0x3p-25f, 0x0002},
        {0x5p-25f, 0x0002},      {0x1p-14f, 0x0400},      {0x1p-14f - 0x1p-25f, 0x0400},
        {0x1.002p0f, 0x3c00},    {0x1.006p0f, 0x3c02},    {0x1.0021p0f, 0x3c01},
        {-0x1p-30f, 0x8000},     {0.333333343f, 0x3555},  {0x1.ff8p-15f, 0x03ff}, {0x1.ffcp-15f, 0x0400},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        const pl_half h = pl_float_to_half(cases[i].f);
        CHECK(h == cases[i].h, "f16(%a) = 0x%04x, want 0x%04x", cases[i].f, h, cases[i].h);
    }
    CHECK(pl_float_to_half(-0.0f) == 0x8000, "f16(-0)");
    CHECK(pl_float_to_half(INFINITY) == 0x7c00 && pl_float_to_half(-INFINITY) == 0xfc00, "f16(inf)");
    CHECK((pl_float_to_half(f_nan()) & 0x7fff) > 0x7c00, "f16(nan) is nan");
    CHECK((pl_float_to_half(bitsf(0x7f800001u)) & 0x7fff) > 0x7c00, "f16(snan low payload) is nan");
    CHECK(isnan(pl_half_to_float(0x7e00)) && isnan(pl_half_to_float(0xfc01)), "nan halves");
    CHECK(pl_half_to_float(0x7c00) == INFINITY && pl_half_to_float(0xfc00) == -INFINITY, "inf halves");
    CHECK(fbits(pl_half_to_float(0x8000)) == 0x80000000u, "half -0");
    CHECK(pl_half_to_float(0x0001) == 0x1p-24f && pl_half_to_float(0x83ff) == -0x1.ff8p-15f,
          "subnormal halves");

    /* every non-NaN half survives half -> float -> half */
    int bad = 0;
    for (uint32_t h = 0; h < 0x10000; h++) {
        const float f = pl_half_to_float((pl_half)h);
        if ((h & 0x7fff) > 0x7c00) bad += !isnan(f) || (pl_float_to_half(f) & 0x7fff) <= 0x7c00;
        else bad += pl_float_to_half(f) != h;
    }
    CHECK(bad == 0, "%d halves do not round-trip", bad);

    /* random floats across the half range: the result is a nearest half,
     * ties going to the even mantissa */
    bad = 0;
    for (int i = 0; i < 1000000; i++) {
        const float f = ldexpf(rng_unit() * 2 - 1, (int)(rng_u64() % 44) - 28);
        const pl_half h = pl_float_to_half(f);
        const double e = fabs((double)pl_half_to_float(h) - f);
        const pl_half up = (pl_half)(h + 1), dn = (pl_half)(h - 1);
        double eu = (h & 0x7fff) < 0x7c00 ? fabs((double)pl_half_to_float(up) - f) : INFINITY;
        double ed = (h & 0x7fff) > 0 ? fabs((double)pl_half_to_float(dn) - f) : INFINITY;
        if (e > eu || e > ed || ((e == eu || e == ed) && (h & 1))) bad++;
    }
    CHECK(bad == 0, "%d floats not rounded to the nearest-even half", bad);
}

static void test_bf16(void) {
    static const struct { uint32_t f; uint16_t h; } cases[] = {
        {0x3f800000u, 0x3f80}, {0x3f808000u, 0x3f80}, {0x3f818000u, 0x3f82},
        {0x3f808001u, 0x3f81}, {0x7f7fffffu, 0x7f80}, {0xff7fffffu, 0xff80},
        {0x7f800000u, 0x7f80}, {0xff800000u, 0xff80}, {0x00000001u, 0x0000},
        {0x00008000u, 0x0000}, {0x00018000u, 0x0002}, {0x80000000u, 0x8000},
        {0x007fffffu, 0x0080},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        const uint16_t h = pl_float_to_bf16(bitsf(cases[i].f));
        CHECK(h == cases[i].h, "bf16(0x%08x) = 0x%04x, want 0x%04x", cases[i].f, h, cases[i].h);
    }
    /* NaNs stay NaN, including a signalling one whose payload sits in the
     * low 16 bits (plain truncation would make it infinity) */
    CHECK((pl_float_to_bf16(f_nan()) & 0x7fff) > 0x7f80, "bf16(nan)");
    CHECK((pl_float_to_bf16(bitsf(0x7f800001u)) & 0x7fff) > 0x7f80, "bf16(snan)");
    CHECK((pl_float_to_bf16(bitsf(0xffffffffu)) & 0x7fff) > 0x7f80, "bf16(-nan all ones)");
    int bad = 0;
    for (uint32_t h = 0; h < 0x10000; h++) {
        const float f = pl_bf16_to_float((uint16_t)h);
        if ((h & 0x7fff) > 0x7f80) bad += !isnan(f);
        else bad += pl_float_to_bf16(f) != h || fbits(f) != h << 16;
    }
    CHECK(bad == 0, "%d bf16 values do not round-trip", bad);
}

/* ------------------------------------------------------------------ traits */

static void test_traits(void) {
    CHECK(pl_type_traits_get(PL_TYPE_Q8_1) != NULL && pl_type_traits_get(PL_TYPE_Q8_1)->dot == NULL,
          "Q8_1: activations only (no dot, so gguf.c refuses it as a weight)");
    CHECK(pl_type_traits_get(4) == NULL && pl_type_traits_get(5) == NULL, "ids 4, 5 unused");
    CHECK(pl_type_traits_get(PL_TYPE_COUNT) == NULL && pl_type_traits_get(0xffffffffu) == NULL,
          "out of range ids");
    CHECK(pl_row_size(PL_TYPE_Q4_K, 4096) == 16 * 144, "row size Q4_K");
    CHECK(pl_row_size(PL_TYPE_Q8_0, 33) == 0 && pl_row_size(PL_TYPE_Q4_K, 128) == 0,
          "row size rejects partial blocks");
    CHECK(pl_row_size(PL_TYPE_F16, 3) == 6 && pl_row_size(PL_TYPE_BF16, 5) == 10, "row size f16");
    CHECK(pl_row_size(PL_TYPE_Q8_1, 64) == 72 && pl_row_size(PL_TYPE_Q8_1, 16) == 0, "row size Q8_1");
    CHECK(pl_row_size(PL_TYPE_F32, -1) == 0, "row size bad");
    CHECK(pl_row_size(PL_TYPE_F32, INT64_MAX) == 0 || sizeof(size_t) > 8, "row size overflow");
    static const struct { uint32_t type; const char *name; int blck; size_t size; } want[] = {
        {PL_TYPE_F32, "F32", 1, 4},       {PL_TYPE_F16, "F16", 1, 2},
        {PL_TYPE_BF16, "BF16", 1, 2},     {PL_TYPE_Q4_0, "Q4_0", 32, 18},
        {PL_TYPE_Q4_1, "Q4_1", 32, 20},   {PL_TYPE_Q5_0, "Q5_0", 32, 22},
        {PL_TYPE_Q5_1, "Q5_1", 32, 24},   {PL_TYPE_Q8_0, "Q8_0", 32, 34},
        {PL_TYPE_Q2_K, "Q2_K", 256, 84},  {PL_TYPE_Q3_K, "Q3_K", 256, 110},
        {PL_TYPE_Q4_K, "Q4_K", 256, 144}, {PL_TYPE_Q5_K, "Q5_K", 256, 176},
        {PL_TYPE_Q6_K, "Q6_K", 256, 210}, {PL_TYPE_Q8_K, "Q8_K", 256, 292},
        {PL_TYPE_IQ4_NL, "IQ4_NL", 32, 18}, {PL_TYPE_IQ4_XS, "IQ4_XS", 256, 136},
    };
    for (size_t i = 0; i < sizeof want / sizeof want[0]; i++) {
        const pl_type_traits *t = pl_type_traits_get(want[i].type);
        CHECK(t && strcmp(t->name, want[i].name) == 0 && t->blck == want[i].blck &&
                  t->type_size == want[i].size,
              "traits of %s", want[i].name);
    }
}

/* Every ggml id has its ggml name, supported or not (for error messages). */
static void test_type_names(void) {
    static const struct { uint32_t id; const char *name; } want[] = {
        {0, "F32"},      {1, "F16"},     {2, "Q4_0"},    {3, "Q4_1"},   {6, "Q5_0"},   {7, "Q5_1"},
        {8, "Q8_0"},     {9, "Q8_1"},    {10, "Q2_K"},   {11, "Q3_K"},  {12, "Q4_K"},  {13, "Q5_K"},
        {14, "Q6_K"},    {15, "Q8_K"},   {16, "IQ2_XXS"}, {17, "IQ2_XS"}, {18, "IQ3_XXS"}, {19, "IQ1_S"},
        {20, "IQ4_NL"},  {21, "IQ3_S"},  {22, "IQ2_S"},  {23, "IQ4_XS"}, {24, "I8"},    {25, "I16"},
        {26, "I32"},     {27, "I64"},    {28, "F64"},    {29, "IQ1_M"}, {30, "BF16"},  {34, "TQ1_0"},
        {35, "TQ2_0"},   {39, "MXFP4"},
    };
    for (size_t i = 0; i < sizeof want / sizeof want[0]; i++) {
        const char *n = pl_type_name(want[i].id);
        CHECK(n && !strcmp(n, want[i].name), "pl_type_name(%u) = %s, want %s", want[i].id, n ? n : "NULL",
              want[i].name);
        const pl_type_traits *t = pl_type_traits_get(want[i].id);
        CHECK(!t || !strcmp(t->name, want[i].name), "traits name of %u", want[i].id);
    }
    CHECK(pl_type_name(40) == NULL && pl_type_name(1000) == NULL && pl_type_name(0xffffffffu) == NULL,
          "ids ggml never assigned have no name");
}

int main(void) {
    test_traits();
    test_type_names();
    test_half();
    test_bf16();
    if (t_have_data()) test_refs();
    test_dot();
    test_act_quant();
    test_dot_q();
    test_nonfinite();
    test_roundtrip();
    if (t_have_data()) test_quantize_bytes();
    else printf("test_quant: the checks against ggml's files skipped: no reference data at %s\n", t_datadir());
    return t_summary("test_quant");
}
