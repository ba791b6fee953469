/* test_quant.c - the scalar reference formats against ggml and themselves.
 *
 * 1. Dequantize blk.0.attn_q.weight of every tiny512 model and compare with
 *    ggml's own dequantization (refs/, made by llama.cpp): bit-exact expected.
 * 2. The fused dot equals to_float + a float dot on ragged lengths, for
 *    random blocks (random bytes with sane fp16 scales) and quantized data.
 * 3. from_float -> to_float round-trip error per type, edge inputs, and the
 *    F16/BF16 conversions (special values, exhaustive round-trip, nearest).
 * 4. from_float of the F32 model's weights reproduces, byte for byte, what
 *    llama-quantize wrote into every other model (no importance matrix). */
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
    PL_TYPE_Q4_K, PL_TYPE_Q5_K, PL_TYPE_Q6_K,
};
#define N_WEIGHT_TYPES (sizeof weight_types / sizeof weight_types[0])

/* ------------------------------------------------------------------ 1. vs ggml */

static void test_refs(void) {
    static const char *const models[] = {"F32",  "F16",  "BF16", "Q8_0", "Q4_0",
                                         "Q4_1", "Q5_0", "Q5_1", "Q2_K", "Q3_K",
                                         "Q4_K", "Q5_K", "Q6_K", "Q4_K_M"};
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
                                         "Q5_K", "Q6_K", "Q4_K_M"};
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
        case PL_TYPE_Q4_0: case PL_TYPE_Q5_0: case PL_TYPE_Q8_0:
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
     * Q4_K 0.072, Q3_K 0.152, Q2_K 0.291. */
    static const struct { uint32_t type; double max_rel_rmse; } bound[] = {
        {PL_TYPE_F32, 0.0},     {PL_TYPE_F16, 0.0005}, {PL_TYPE_BF16, 0.003},
        {PL_TYPE_Q8_0, 0.01},   {PL_TYPE_Q6_K, 0.025}, {PL_TYPE_Q5_0, 0.06},
        {PL_TYPE_Q5_1, 0.05},   {PL_TYPE_Q5_K, 0.045}, {PL_TYPE_Q4_0, 0.12},
        {PL_TYPE_Q4_1, 0.10},   {PL_TYPE_Q4_K, 0.09},  {PL_TYPE_Q3_K, 0.20},
        {PL_TYPE_Q2_K, 0.40},
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
    CHECK(pl_type_traits_get(PL_TYPE_Q8_1) == NULL, "Q8_1 unsupported");
    CHECK(pl_type_traits_get(4) == NULL && pl_type_traits_get(5) == NULL, "ids 4, 5 unused");
    CHECK(pl_type_traits_get(PL_TYPE_COUNT) == NULL && pl_type_traits_get(0xffffffffu) == NULL,
          "out of range ids");
    CHECK(pl_row_size(PL_TYPE_Q4_K, 4096) == 16 * 144, "row size Q4_K");
    CHECK(pl_row_size(PL_TYPE_Q8_0, 33) == 0 && pl_row_size(PL_TYPE_Q4_K, 128) == 0,
          "row size rejects partial blocks");
    CHECK(pl_row_size(PL_TYPE_F16, 3) == 6 && pl_row_size(PL_TYPE_BF16, 5) == 10, "row size f16");
    CHECK(pl_row_size(PL_TYPE_Q8_1, 32) == 0 && pl_row_size(PL_TYPE_F32, -1) == 0, "row size bad");
    CHECK(pl_row_size(PL_TYPE_F32, INT64_MAX) == 0 || sizeof(size_t) > 8, "row size overflow");
    static const struct { uint32_t type; const char *name; int blck; size_t size; } want[] = {
        {PL_TYPE_F32, "F32", 1, 4},       {PL_TYPE_F16, "F16", 1, 2},
        {PL_TYPE_BF16, "BF16", 1, 2},     {PL_TYPE_Q4_0, "Q4_0", 32, 18},
        {PL_TYPE_Q4_1, "Q4_1", 32, 20},   {PL_TYPE_Q5_0, "Q5_0", 32, 22},
        {PL_TYPE_Q5_1, "Q5_1", 32, 24},   {PL_TYPE_Q8_0, "Q8_0", 32, 34},
        {PL_TYPE_Q2_K, "Q2_K", 256, 84},  {PL_TYPE_Q3_K, "Q3_K", 256, 110},
        {PL_TYPE_Q4_K, "Q4_K", 256, 144}, {PL_TYPE_Q5_K, "Q5_K", 256, 176},
        {PL_TYPE_Q6_K, "Q6_K", 256, 210}, {PL_TYPE_Q8_K, "Q8_K", 256, 292},
    };
    for (size_t i = 0; i < sizeof want / sizeof want[0]; i++) {
        const pl_type_traits *t = pl_type_traits_get(want[i].type);
        CHECK(t && strcmp(t->name, want[i].name) == 0 && t->blck == want[i].blck &&
                  t->type_size == want[i].size,
              "traits of %s", want[i].name);
    }
}

int main(void) {
    test_traits();
    test_half();
    test_bf16();
    test_refs();
    test_dot();
    test_roundtrip();
    test_quantize_bytes();
    return t_summary("test_quant");
}
