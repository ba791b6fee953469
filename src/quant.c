/* quant.c - the scalar reference for every weight format (the specification).
 *
 * For each type: to_float (bit-exact with ggml's dequantize_row_*), a fused
 * dequantize+dot against a float vector (no intermediate row; it equals
 * to_float followed by a float dot up to float rounding), and from_float
 * (quantizers that follow ggml's quantize_row_*_ref, i.e. llama-quantize
 * without an importance matrix: on the test models they reproduce its bytes
 * exactly for every type). Then the integer path llama.cpp's CPU backend
 * runs: activations quantized to 8 bits (from_float_act) and dot_q, which
 * mirrors ggml's generic ggml_vec_dot_<w>_q8_<a> (same integer sums, same
 * float operations in the same order). No SIMD, no globals, no allocation:
 * src/kernels/ holds the fast paths and is tested against this file. */
#include "quant.h"

#include <float.h>
#include <math.h>
#include <string.h>

/* The quantizers' searches reproduce llama-quantize's bytes only if every
 * float operation rounds as written: no fused multiply-add contraction.
 * GCC in -std=c11 mode and MSVC do not contract by default; clang does
 * (within an expression) unless told otherwise. Dequantization is exact
 * either way (its products are exact in float). */
#if defined(__clang__)
#pragma STDC FP_CONTRACT OFF
#endif

_Static_assert(sizeof(pl_half) == 2, "pl_half is 16 bits");
_Static_assert(sizeof(block_q4_0) == 18, "block_q4_0 size");
_Static_assert(sizeof(block_q4_1) == 20, "block_q4_1 size");
_Static_assert(sizeof(block_q5_0) == 22, "block_q5_0 size");
_Static_assert(sizeof(block_q5_1) == 24, "block_q5_1 size");
_Static_assert(sizeof(block_q8_0) == 34, "block_q8_0 size");
_Static_assert(sizeof(block_q2_K) == 84, "block_q2_K size");
_Static_assert(sizeof(block_q3_K) == 110, "block_q3_K size");
_Static_assert(sizeof(block_q4_K) == 144, "block_q4_K size");
_Static_assert(sizeof(block_q5_K) == 176, "block_q5_K size");
_Static_assert(sizeof(block_q6_K) == 210, "block_q6_K size");
_Static_assert(sizeof(block_q8_1) == 36, "block_q8_1 size");
_Static_assert(sizeof(block_q8_K) == 292, "block_q8_K size");
_Static_assert(sizeof(block_iq4_nl) == 18, "block_iq4_nl size");
_Static_assert(sizeof(block_iq4_xs) == 136, "block_iq4_xs size");

/* ---------------------------------------------------------------- scalars */

static uint32_t f32_bits(float f) {
    uint32_t u;
    memcpy(&u, &f, 4);
    return u;
}

static float bits_f32(uint32_t u) {
    float f;
    memcpy(&f, &u, 4);
    return f;
}

float pl_half_to_float(pl_half h) {
    uint32_t sign = (uint32_t)(h & 0x8000) << 16;
    uint32_t exp = (h >> 10) & 0x1f;
    uint32_t mant = h & 0x3ff;
    if (exp == 0x1f) /* inf, nan (payload kept) */
        return bits_f32(sign | 0x7f800000u | (mant << 13));
    if (exp == 0) { /* zero or subnormal: mant * 2^-24, exact in float */
        float v = (float)mant * 5.9604644775390625e-8f;
        return sign ? -v : v;
    }
    return bits_f32(sign | ((exp + 112) << 23) | (mant << 13));
}

pl_half pl_float_to_half(float f) {
    uint32_t x = f32_bits(f);
    uint16_t sign = (uint16_t)((x >> 16) & 0x8000);
    x &= 0x7fffffffu;
    if (x > 0x7f800000u) /* nan: keep the top payload bits, force quiet */
        return (pl_half)(sign | 0x7e00 | ((x >> 13) & 0x3ff));
    if (x >= 0x477ff000u) /* >= 65520 rounds (ties-to-even) to inf; inf too */
        return (pl_half)(sign | 0x7c00);
    if (x < 0x38800000u) { /* below 2^-14: a half subnormal (or zero) */
        if (x <= 0x33000000u) /* <= 2^-25: rounds to zero (2^-25 is a tie) */
            return sign;
        uint32_t e = x >> 23;
        uint32_t mant = (x & 0x7fffffu) | 0x800000u;
        uint32_t shift = 126 - e; /* value = mant * 2^(e-150) = m * 2^-24 */
        uint32_t m = mant >> shift;
        uint32_t rem = mant & ((1u << shift) - 1);
        uint32_t halfway = 1u << (shift - 1);
        if (rem > halfway || (rem == halfway && (m & 1))) m++; /* may carry into the
                                                         smallest normal: correct */
        return (pl_half)(sign | m);
    }
    /* normal: rebias exponent, round the 13 dropped bits to nearest even;
     * a carry out of the mantissa correctly bumps the exponent */
    x -= 112u << 23;
    x += 0xfffu + ((x >> 13) & 1);
    return (pl_half)(sign | (x >> 13));
}

float pl_bf16_to_float(uint16_t h) { return bits_f32((uint32_t)h << 16); }

uint16_t pl_float_to_bf16(float f) {
    uint32_t x = f32_bits(f);
    if ((x & 0x7fffffffu) > 0x7f800000u) /* nan: truncate, force quiet */
        return (uint16_t)((x >> 16) | 0x40);
    x += 0x7fffu + ((x >> 16) & 1); /* ties to even; overflow goes to inf */
    return (uint16_t)(x >> 16);
}

#define H2F(h) pl_half_to_float(h)

/* lrintf's ties-to-even, inline: adding 1.5 * 2^23 leaves the integer in
 * the low mantissa bits (C lets lrintf set errno, so compilers call it out
 * of line: the K-quantizers spent most of their time there). NaN and values
 * too large for the trick still go to lrintf. */
static int nearest_int(float f) {
    if (!(fabsf(f) < 4194303.0f)) return (int)lrintf(f);
    const float v = f + 12582912.0f;
    int32_t i;
    memcpy(&i, &v, sizeof i);
    return (i & 0x007fffff) - 0x00400000;
}

static int clampi(int v, int lo, int hi) { return v < lo ? lo : v > hi ? hi : v; }

/* ggml's Q8_0 reference rounds ties away from zero (roundf). */
static int round_clamp(float v, int lim) {
    if (!(v > (float)-lim)) return v != v ? 0 : -lim; /* NaN -> 0 */
    if (v >= (float)lim) return lim;
    return (int)roundf(v);
}

/* The same with ties to even, as ggml's AVX2 activation quantizers round
 * (_mm256_round_ps(v, _MM_ROUND_NEAREST)). */
static int round_even_clamp(float v, int lim) {
    if (!(v > (float)-lim)) return v != v ? 0 : -lim;
    if (v >= (float)lim) return lim;
    return nearest_int(v);
}

/* Activation blocks holding a NaN or an infinity (a hostile model or cache
 * file) quantize to d = NaN with zero quants, so that every product they
 * enter is NaN (ggml's quantizers would give finite garbage or, in their
 * SIMD searches for the extreme, run past the block); every level does the
 * same, byte for byte. */
int pl_act_nonfinite(const float *x, int n) {
    int bad = 0;
    for (int j = 0; j < n; j++) bad |= !(fabsf(x[j]) <= FLT_MAX);
    return bad;
}

/* lim / amax, or 0 when amax is 0 or so small (subnormal) that the quotient
 * overflows: then d rounds to 0 anyway, and q = x * inf would be NaN, which
 * the levels' conversions would turn into different integers. */
float pl_act_inv_scale(float lim, float amax) {
    const float id = amax != 0 ? lim / amax : 0.0f;
    return id <= FLT_MAX ? id : 0.0f;
}

/* ggml's Q4/Q5 reference quantizers round by truncating q + 0.5 (ties up);
 * doing the same keeps our bytes identical to theirs. Clamping before the
 * conversion keeps a NaN or huge input from being undefined behaviour. */
static int trunc_clamp(float v, int hi) {
    if (!(v >= 0)) return 0;
    if (v >= (float)hi) return hi;
    return (int)v;
}

/* ---------------------------------------------------------------- F32 F16 BF16 */

static void f32_to_float(const void *src, float *dst, int64_t n) {
    memcpy(dst, src, (size_t)n * sizeof(float));
}

static float f32_dot(const void *w, const float *x, int64_t n) {
    const float *a = (const float *)w;
    float s = 0;
    for (int64_t i = 0; i < n; i++) s += a[i] * x[i];
    return s;
}

static void f32_from_float(const float *src, void *dst, int64_t n) {
    memcpy(dst, src, (size_t)n * sizeof(float));
}

static void f16_to_float(const void *src, float *dst, int64_t n) {
    const pl_half *h = (const pl_half *)src;
    for (int64_t i = 0; i < n; i++) dst[i] = H2F(h[i]);
}

static float f16_dot(const void *w, const float *x, int64_t n) {
    const pl_half *h = (const pl_half *)w;
    float s = 0;
    for (int64_t i = 0; i < n; i++) s += H2F(h[i]) * x[i];
    return s;
}

static void f16_from_float(const float *src, void *dst, int64_t n) {
    pl_half *h = (pl_half *)dst;
    for (int64_t i = 0; i < n; i++) h[i] = pl_float_to_half(src[i]);
}

static void bf16_to_float(const void *src, float *dst, int64_t n) {
    const uint16_t *h = (const uint16_t *)src;
    for (int64_t i = 0; i < n; i++) dst[i] = pl_bf16_to_float(h[i]);
}

static float bf16_dot(const void *w, const float *x, int64_t n) {
    const uint16_t *h = (const uint16_t *)w;
    float s = 0;
    for (int64_t i = 0; i < n; i++) s += pl_bf16_to_float(h[i]) * x[i];
    return s;
}

static void bf16_from_float(const float *src, void *dst, int64_t n) {
    uint16_t *h = (uint16_t *)dst;
    for (int64_t i = 0; i < n; i++) h[i] = pl_float_to_bf16(src[i]);
}

/* These keep float activations (vec_dot_type F32): dot_q is the float dot.
 * (ggml itself rounds activations to F16/BF16 for F16/BF16 weights.) */
static float f32_dot_q(const void *w, const void *x, int64_t n) {
    return f32_dot(w, (const float *)x, n);
}
static float f16_dot_q(const void *w, const void *x, int64_t n) {
    return f16_dot(w, (const float *)x, n);
}
static float bf16_dot_q(const void *w, const void *x, int64_t n) {
    return bf16_dot(w, (const float *)x, n);
}

/* ---------------------------------------------------------------- Q4_0
 * 32 weights: w = d * (q - 8), q in 0..15; byte j holds q[j] (low nibble)
 * and q[j+16] (high nibble). */

static void q4_0_to_float(const void *src, float *dst, int64_t n) {
    const block_q4_0 *b = (const block_q4_0 *)src;
    for (int64_t i = 0; i < n / QK4_0; i++, dst += QK4_0) {
        const float d = H2F(b[i].d);
        for (int j = 0; j < QK4_0 / 2; j++) {
            dst[j] = (float)((b[i].qs[j] & 0xf) - 8) * d;
            dst[j + QK4_0 / 2] = (float)((b[i].qs[j] >> 4) - 8) * d;
        }
    }
}

static float q4_0_dot(const void *w, const float *x, int64_t n) {
    const block_q4_0 *b = (const block_q4_0 *)w;
    float s = 0;
    for (int64_t i = 0; i < n / QK4_0; i++, x += QK4_0) {
        float sq = 0;
        for (int j = 0; j < QK4_0 / 2; j++)
            sq += (float)((b[i].qs[j] & 0xf) - 8) * x[j] +
                  (float)((b[i].qs[j] >> 4) - 8) * x[j + QK4_0 / 2];
        s += H2F(b[i].d) * sq;
    }
    return s;
}

/* Returns the value with the largest magnitude (keeping its sign). */
static float signed_absmax(const float *x, int n, float *amax_out) {
    float amax = 0, max = 0;
    for (int j = 0; j < n; j++) {
        if (fabsf(x[j]) > amax) {
            amax = fabsf(x[j]);
            max = x[j];
        }
    }
    if (amax_out) *amax_out = amax;
    return max;
}

static void q4_0_from_float(const float *src, void *dst, int64_t n) {
    block_q4_0 *b = (block_q4_0 *)dst;
    for (int64_t i = 0; i < n / QK4_0; i++, src += QK4_0) {
        /* the extreme value maps to -8, so the full range -8..7 is used */
        const float d = signed_absmax(src, QK4_0, NULL) / -8;
        const float id = d != 0 ? 1.0f / d : 0.0f;
        b[i].d = pl_float_to_half(d);
        for (int j = 0; j < QK4_0 / 2; j++) {
            const int q0 = trunc_clamp(src[j] * id + 8.5f, 15);
            const int q1 = trunc_clamp(src[j + QK4_0 / 2] * id + 8.5f, 15);
            b[i].qs[j] = (uint8_t)(q0 | (q1 << 4));
        }
    }
}

/* The dot_q functions follow ggml's generic ggml_vec_dot_*: an exact
 * integer sum per block, then float scaling written in ggml's operand order
 * (here ((sumi * dw) * dx)), accumulated block by block. */
static float q4_0_dot_q(const void *w, const void *xq, int64_t n) {
    const block_q4_0 *b = (const block_q4_0 *)w;
    const block_q8_0 *y = (const block_q8_0 *)xq;
    float s = 0;
    for (int64_t i = 0; i < n / QK4_0; i++) {
        int sumi = 0;
        for (int j = 0; j < QK4_0 / 2; j++)
            sumi += ((b[i].qs[j] & 0xf) - 8) * y[i].qs[j] + ((b[i].qs[j] >> 4) - 8) * y[i].qs[j + QK4_0 / 2];
        s += (float)sumi * H2F(b[i].d) * H2F(y[i].d);
    }
    return s;
}

/* ---------------------------------------------------------------- Q4_1
 * w = d * q + m, q in 0..15, nibbles as Q4_0. */

static void q4_1_to_float(const void *src, float *dst, int64_t n) {
    const block_q4_1 *b = (const block_q4_1 *)src;
    for (int64_t i = 0; i < n / QK4_1; i++, dst += QK4_1) {
        const float d = H2F(b[i].d), m = H2F(b[i].m);
        for (int j = 0; j < QK4_1 / 2; j++) {
            dst[j] = (float)(b[i].qs[j] & 0xf) * d + m;
            dst[j + QK4_1 / 2] = (float)(b[i].qs[j] >> 4) * d + m;
        }
    }
}

static float q4_1_dot(const void *w, const float *x, int64_t n) {
    const block_q4_1 *b = (const block_q4_1 *)w;
    float s = 0;
    for (int64_t i = 0; i < n / QK4_1; i++, x += QK4_1) {
        float sq = 0, sx = 0;
        for (int j = 0; j < QK4_1 / 2; j++) {
            sq += (float)(b[i].qs[j] & 0xf) * x[j] + (float)(b[i].qs[j] >> 4) * x[j + QK4_1 / 2];
            sx += x[j] + x[j + QK4_1 / 2];
        }
        s += H2F(b[i].d) * sq + H2F(b[i].m) * sx;
    }
    return s;
}

static void minmax(const float *x, int n, float *mn, float *mx) {
    float lo = FLT_MAX, hi = -FLT_MAX;
    for (int j = 0; j < n; j++) {
        if (x[j] < lo) lo = x[j];
        if (x[j] > hi) hi = x[j];
    }
    *mn = lo;
    *mx = hi;
}

static void q4_1_from_float(const float *src, void *dst, int64_t n) {
    block_q4_1 *b = (block_q4_1 *)dst;
    for (int64_t i = 0; i < n / QK4_1; i++, src += QK4_1) {
        float mn, mx;
        minmax(src, QK4_1, &mn, &mx);
        const float d = (mx - mn) / 15;
        const float id = d != 0 ? 1.0f / d : 0.0f;
        b[i].d = pl_float_to_half(d);
        b[i].m = pl_float_to_half(mn);
        for (int j = 0; j < QK4_1 / 2; j++) {
            const int q0 = trunc_clamp((src[j] - mn) * id + 0.5f, 15);
            const int q1 = trunc_clamp((src[j + QK4_1 / 2] - mn) * id + 0.5f, 15);
            b[i].qs[j] = (uint8_t)(q0 | (q1 << 4));
        }
    }
}

/* The min term uses the activation block's stored s = fp16(d * sum(q)). */
static float q4_1_dot_q(const void *w, const void *xq, int64_t n) {
    const block_q4_1 *b = (const block_q4_1 *)w;
    const block_q8_1 *y = (const block_q8_1 *)xq;
    float s = 0;
    for (int64_t i = 0; i < n / QK4_1; i++) {
        int sumi = 0;
        for (int j = 0; j < QK4_1 / 2; j++)
            sumi += (b[i].qs[j] & 0xf) * y[i].qs[j] + (b[i].qs[j] >> 4) * y[i].qs[j + QK4_1 / 2];
        s += H2F(b[i].d) * H2F(y[i].d) * (float)sumi + H2F(b[i].m) * H2F(y[i].s);
    }
    return s;
}

/* ---------------------------------------------------------------- Q5_0 Q5_1
 * Q4 nibbles plus a fifth bit: bit j of the little-endian 32-bit qh is the
 * high bit of q[j] (j < 16), bit j+16 that of q[j+16].
 * Q5_0: w = d * (q - 16); Q5_1: w = d * q + m. */

static uint32_t load_u32le(const uint8_t *p) {
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static void store_u32le(uint8_t *p, uint32_t v) {
    p[0] = (uint8_t)v;
    p[1] = (uint8_t)(v >> 8);
    p[2] = (uint8_t)(v >> 16);
    p[3] = (uint8_t)(v >> 24);
}

/* The two 5-bit quants of byte j: q[j] and q[j+16]. */
static void q5_pair(const uint8_t *qs, uint32_t qh, int j, int *q0, int *q1) {
    *q0 = (qs[j] & 0xf) | (int)(((qh >> j) & 1) << 4);
    *q1 = (qs[j] >> 4) | (int)(((qh >> (j + 16)) & 1) << 4);
}

static void q5_0_to_float(const void *src, float *dst, int64_t n) {
    const block_q5_0 *b = (const block_q5_0 *)src;
    for (int64_t i = 0; i < n / QK5_0; i++, dst += QK5_0) {
        const float d = H2F(b[i].d);
        const uint32_t qh = load_u32le(b[i].qh);
        for (int j = 0; j < QK5_0 / 2; j++) {
            int q0, q1;
            q5_pair(b[i].qs, qh, j, &q0, &q1);
            dst[j] = (float)(q0 - 16) * d;
            dst[j + QK5_0 / 2] = (float)(q1 - 16) * d;
        }
    }
}

static float q5_0_dot(const void *w, const float *x, int64_t n) {
    const block_q5_0 *b = (const block_q5_0 *)w;
    float s = 0;
    for (int64_t i = 0; i < n / QK5_0; i++, x += QK5_0) {
        const uint32_t qh = load_u32le(b[i].qh);
        float sq = 0;
        for (int j = 0; j < QK5_0 / 2; j++) {
            int q0, q1;
            q5_pair(b[i].qs, qh, j, &q0, &q1);
            sq += (float)(q0 - 16) * x[j] + (float)(q1 - 16) * x[j + QK5_0 / 2];
        }
        s += H2F(b[i].d) * sq;
    }
    return s;
}

static void q5_pack(const int *q, uint8_t *qs, uint8_t *qh4) {
    uint32_t qh = 0;
    for (int j = 0; j < 16; j++) {
        qs[j] = (uint8_t)((q[j] & 0xf) | ((q[j + 16] & 0xf) << 4));
        qh |= (uint32_t)((q[j] >> 4) & 1) << j;
        qh |= (uint32_t)((q[j + 16] >> 4) & 1) << (j + 16);
    }
    store_u32le(qh4, qh);
}

static void q5_0_from_float(const float *src, void *dst, int64_t n) {
    block_q5_0 *b = (block_q5_0 *)dst;
    int q[QK5_0];
    for (int64_t i = 0; i < n / QK5_0; i++, src += QK5_0) {
        const float d = signed_absmax(src, QK5_0, NULL) / -16;
        const float id = d != 0 ? 1.0f / d : 0.0f;
        b[i].d = pl_float_to_half(d);
        for (int j = 0; j < QK5_0; j++) q[j] = trunc_clamp(src[j] * id + 16.5f, 31);
        q5_pack(q, b[i].qs, b[i].qh);
    }
}

static float q5_0_dot_q(const void *w, const void *xq, int64_t n) {
    const block_q5_0 *b = (const block_q5_0 *)w;
    const block_q8_0 *y = (const block_q8_0 *)xq;
    float s = 0;
    for (int64_t i = 0; i < n / QK5_0; i++) {
        const uint32_t qh = load_u32le(b[i].qh);
        int sumi = 0;
        for (int j = 0; j < QK5_0 / 2; j++) {
            int q0, q1;
            q5_pair(b[i].qs, qh, j, &q0, &q1);
            sumi += (q0 - 16) * y[i].qs[j] + (q1 - 16) * y[i].qs[j + QK5_0 / 2];
        }
        s += H2F(b[i].d) * H2F(y[i].d) * (float)sumi;
    }
    return s;
}

static void q5_1_to_float(const void *src, float *dst, int64_t n) {
    const block_q5_1 *b = (const block_q5_1 *)src;
    for (int64_t i = 0; i < n / QK5_1; i++, dst += QK5_1) {
        const float d = H2F(b[i].d), m = H2F(b[i].m);
        const uint32_t qh = load_u32le(b[i].qh);
        for (int j = 0; j < QK5_1 / 2; j++) {
            int q0, q1;
            q5_pair(b[i].qs, qh, j, &q0, &q1);
            dst[j] = (float)q0 * d + m;
            dst[j + QK5_1 / 2] = (float)q1 * d + m;
        }
    }
}

static float q5_1_dot(const void *w, const float *x, int64_t n) {
    const block_q5_1 *b = (const block_q5_1 *)w;
    float s = 0;
    for (int64_t i = 0; i < n / QK5_1; i++, x += QK5_1) {
        const uint32_t qh = load_u32le(b[i].qh);
        float sq = 0, sx = 0;
        for (int j = 0; j < QK5_1 / 2; j++) {
            int q0, q1;
            q5_pair(b[i].qs, qh, j, &q0, &q1);
            sq += (float)q0 * x[j] + (float)q1 * x[j + QK5_1 / 2];
            sx += x[j] + x[j + QK5_1 / 2];
        }
        s += H2F(b[i].d) * sq + H2F(b[i].m) * sx;
    }
    return s;
}

static void q5_1_from_float(const float *src, void *dst, int64_t n) {
    block_q5_1 *b = (block_q5_1 *)dst;
    int q[QK5_1];
    for (int64_t i = 0; i < n / QK5_1; i++, src += QK5_1) {
        float mn, mx;
        minmax(src, QK5_1, &mn, &mx);
        const float d = (mx - mn) / 31;
        const float id = d != 0 ? 1.0f / d : 0.0f;
        b[i].d = pl_float_to_half(d);
        b[i].m = pl_float_to_half(mn);
        for (int j = 0; j < QK5_1; j++) q[j] = trunc_clamp((src[j] - mn) * id + 0.5f, 31);
        q5_pack(q, b[i].qs, b[i].qh);
    }
}

static float q5_1_dot_q(const void *w, const void *xq, int64_t n) {
    const block_q5_1 *b = (const block_q5_1 *)w;
    const block_q8_1 *y = (const block_q8_1 *)xq;
    float s = 0;
    for (int64_t i = 0; i < n / QK5_1; i++) {
        const uint32_t qh = load_u32le(b[i].qh);
        int sumi = 0;
        for (int j = 0; j < QK5_1 / 2; j++) {
            int q0, q1;
            q5_pair(b[i].qs, qh, j, &q0, &q1);
            sumi += q0 * y[i].qs[j] + q1 * y[i].qs[j + QK5_1 / 2];
        }
        s += H2F(b[i].d) * H2F(y[i].d) * (float)sumi + H2F(b[i].m) * H2F(y[i].s);
    }
    return s;
}

/* ---------------------------------------------------------------- Q8_0
 * w = d * q, q in -128..127 (the quantizer uses -127..127). */

static void q8_0_to_float(const void *src, float *dst, int64_t n) {
    const block_q8_0 *b = (const block_q8_0 *)src;
    for (int64_t i = 0; i < n / QK8_0; i++, dst += QK8_0) {
        const float d = H2F(b[i].d);
        for (int j = 0; j < QK8_0; j++) dst[j] = (float)b[i].qs[j] * d;
    }
}

static float q8_0_dot(const void *w, const float *x, int64_t n) {
    const block_q8_0 *b = (const block_q8_0 *)w;
    float s = 0;
    for (int64_t i = 0; i < n / QK8_0; i++, x += QK8_0) {
        float sq = 0;
        for (int j = 0; j < QK8_0; j++) sq += (float)b[i].qs[j] * x[j];
        s += H2F(b[i].d) * sq;
    }
    return s;
}

static void q8_0_from_float(const float *src, void *dst, int64_t n) {
    block_q8_0 *b = (block_q8_0 *)dst;
    for (int64_t i = 0; i < n / QK8_0; i++, src += QK8_0) {
        float amax;
        signed_absmax(src, QK8_0, &amax);
        const float d = amax / 127;
        const float id = d != 0 ? 1.0f / d : 0.0f;
        b[i].d = pl_float_to_half(d);
        for (int j = 0; j < QK8_0; j++)
            b[i].qs[j] = (int8_t)round_clamp(src[j] * id, 127);
    }
}

/* Activations, as ggml's x86 build (llama.cpp b4748 on AVX2/AVX-512, which
 * made our references) quantizes them: quantize_row_q8_0's AVX2 branch
 * computes id = 127/amax rather than the reference's 1/(amax/127) (the two
 * differ in the last bit for some amax) and rounds with _mm256_round_ps(,
 * _MM_ROUND_NEAREST), i.e. ties to even, where the reference's roundf
 * rounds ties away from zero. d is fp16(amax/127) in both. */
static void q8_0_from_float_act(const float *src, void *dst, int64_t n) {
    block_q8_0 *b = (block_q8_0 *)dst;
    for (int64_t i = 0; i < n / QK8_0; i++, src += QK8_0) {
        if (pl_act_nonfinite(src, QK8_0)) {
            memset(b[i].qs, 0, QK8_0);
            b[i].d = PL_HALF_NAN;
            continue;
        }
        float amax = 0;
        for (int j = 0; j < QK8_0; j++) amax = fmaxf(amax, fabsf(src[j]));
        const float id = pl_act_inv_scale(127, amax);
        b[i].d = pl_float_to_half(amax / 127);
        for (int j = 0; j < QK8_0; j++) b[i].qs[j] = (int8_t)round_even_clamp(src[j] * id, 127);
    }
}

static float q8_0_dot_q(const void *w, const void *xq, int64_t n) {
    const block_q8_0 *b = (const block_q8_0 *)w;
    const block_q8_0 *y = (const block_q8_0 *)xq;
    float s = 0;
    for (int64_t i = 0; i < n / QK8_0; i++) {
        int sumi = 0;
        for (int j = 0; j < QK8_0; j++) sumi += b[i].qs[j] * y[i].qs[j];
        s += (float)sumi * (H2F(b[i].d) * H2F(y[i].d));
    }
    return s;
}

/* ---------------------------------------------------------------- Q8_1
 * Activations for Q4_1/Q5_1: Q8_0 plus s = d * sum(q) in fp16, which the
 * dot uses to apply the weight block's m. Never a weight type here. */

static void q8_1_to_float(const void *src, float *dst, int64_t n) {
    const block_q8_1 *b = (const block_q8_1 *)src;
    for (int64_t i = 0; i < n / QK8_1; i++, dst += QK8_1) {
        const float d = H2F(b[i].d);
        for (int j = 0; j < QK8_1; j++) dst[j] = (float)b[i].qs[j] * d;
    }
}

/* ggml's quantize_row_q8_1_ref: as Q8_0's (1/d, roundf). */
static void q8_1_from_float(const float *src, void *dst, int64_t n) {
    block_q8_1 *b = (block_q8_1 *)dst;
    for (int64_t i = 0; i < n / QK8_1; i++, src += QK8_1) {
        float amax = 0;
        for (int j = 0; j < QK8_1; j++) amax = fmaxf(amax, fabsf(src[j]));
        const float d = amax / 127;
        const float id = d != 0 ? 1.0f / d : 0.0f;
        int sum = 0;
        for (int j = 0; j < QK8_1; j++) {
            b[i].qs[j] = (int8_t)round_clamp(src[j] * id, 127);
            sum += b[i].qs[j];
        }
        b[i].d = pl_float_to_half(d);
        b[i].s = pl_float_to_half((float)sum * d);
    }
}

/* ggml's x86 quantize_row_q8_1 (AVX2): 127/amax and ties to even as for
 * Q8_0; s = fp16(d * sum) as in the reference. */
static void q8_1_from_float_act(const float *src, void *dst, int64_t n) {
    block_q8_1 *b = (block_q8_1 *)dst;
    for (int64_t i = 0; i < n / QK8_1; i++, src += QK8_1) {
        if (pl_act_nonfinite(src, QK8_1)) {
            memset(b[i].qs, 0, QK8_1);
            b[i].d = b[i].s = PL_HALF_NAN;
            continue;
        }
        float amax = 0;
        for (int j = 0; j < QK8_1; j++) amax = fmaxf(amax, fabsf(src[j]));
        const float d = amax / 127;
        const float id = pl_act_inv_scale(127, amax);
        int sum = 0;
        for (int j = 0; j < QK8_1; j++) {
            b[i].qs[j] = (int8_t)round_even_clamp(src[j] * id, 127);
            sum += b[i].qs[j];
        }
        b[i].d = pl_float_to_half(d);
        b[i].s = pl_float_to_half(d * (float)sum);
    }
}

/* ---------------------------------------------------------------- K-quant helpers
 * Super-blocks of 256 weights in sub-blocks of 16 or 32, each with its own
 * scale (and min), the scales themselves quantized against a fp16 d/dmin.
 * The searches below follow ggml's make_qx_quants / make_q3_quants /
 * make_qkx2_quants (same arithmetic order, so the same bytes): try a few
 * scales around the obvious one and keep the least-squares best. */

#define GROUP_MAX_EPS 1e-15f

/* Symmetric: x ~ scale * (L - nmax), L in 0..2*nmax-1. Weights x^2 favour
 * the large values. Returns scale (may be negative; its sign is part of the
 * fit since the extreme value maps to -nmax). */
static float make_qx_quants(int n, int nmax, const float *x, uint8_t *L) {
    float amax;
    const float max = signed_absmax(x, n, &amax);
    if (amax < GROUP_MAX_EPS) {
        for (int i = 0; i < n; i++) L[i] = (uint8_t)nmax;
        return 0;
    }
    float best_scale = 0, best = 0;
    int have = 0;
    for (int k = 0; k < 19; k++) {
        const int is = k == 0 ? 0 : k <= 9 ? k - 10 : k - 9; /* 0 first, then -9..9 */
        const float iscale = -((float)nmax + 0.1f * (float)is) / max;
        float sumlx = 0, suml2 = 0;
        for (int i = 0; i < n; i++) {
            const int l = clampi(nearest_int(iscale * x[i]), -nmax, nmax - 1);
            const float w = x[i] * x[i];
            sumlx += w * x[i] * (float)l;
            suml2 += w * (float)l * (float)l;
        }
        /* maximizing sumlx^2/suml2 minimizes the weighted squared error */
        if (suml2 > 0 && (!have || sumlx * sumlx > best * suml2)) {
            for (int i = 0; i < n; i++)
                L[i] = (uint8_t)(nmax + clampi(nearest_int(iscale * x[i]), -nmax, nmax - 1));
            best_scale = sumlx / suml2;
            best = best_scale * sumlx;
            have = 1;
        }
    }
    if (!have)
        for (int i = 0; i < n; i++) L[i] = (uint8_t)nmax;
    return best_scale;
}

/* Q3_K's variant: start from the obvious scale, then move single quants
 * to their least-squares optimum for the current scale while that improves
 * the weighted fit (a few passes). Same conventions as make_qx_quants. */
static float make_q3_quants(int n, int nmax, const float *x, uint8_t *L) {
    int8_t q[16];
    float amax;
    const float max = signed_absmax(x, n, &amax);
    if (amax < GROUP_MAX_EPS || n > 16) {
        for (int i = 0; i < n; i++) L[i] = (uint8_t)nmax;
        return 0;
    }
    const float iscale = -(float)nmax / max;
    float sumlx = 0, suml2 = 0;
    for (int i = 0; i < n; i++) {
        const int l = clampi(nearest_int(iscale * x[i]), -nmax, nmax - 1);
        const float w = x[i] * x[i];
        q[i] = (int8_t)l;
        sumlx += w * x[i] * (float)l;
        suml2 += w * (float)l * (float)l;
    }
    for (int pass = 0; pass < 5; pass++) {
        int changed = 0;
        for (int i = 0; i < n; i++) {
            const float w = x[i] * x[i];
            float slx = sumlx - w * x[i] * (float)q[i];
            if (!(slx > 0)) continue;
            float sl2 = suml2 - w * (float)q[i] * (float)q[i];
            const int l = clampi(nearest_int(x[i] * sl2 / slx), -nmax, nmax - 1);
            if (l == q[i]) continue;
            slx += w * x[i] * (float)l;
            sl2 += w * (float)l * (float)l;
            /* keep the move if sumlx^2/suml2 (the explained energy) grows */
            if (sl2 > 0 && slx * slx * suml2 > sumlx * sumlx * sl2) {
                q[i] = (int8_t)l;
                sumlx = slx;
                suml2 = sl2;
                changed++;
            }
        }
        if (!changed) break;
    }
    for (int i = 0; i < n; i++) L[i] = (uint8_t)(q[i] + nmax);
    return suml2 > 0 ? sumlx / suml2 : 0.0f;
}

/* Asymmetric: x ~ scale * L - *neg_min, L in 0..nmax, min <= 0 so that zero
 * stays exactly representable-ish. Weighted (w) error, squared or absolute. */
static float make_qkx_quants(int n, int nmax, const float *x, const float *w, uint8_t *L,
                             float *neg_min, float rmin, float rdelta, int nstep, int use_mad) {
    uint8_t Laux[32];
    float mn = x[0], mx = x[0], sum_w = 0, sum_x = 0;
    for (int i = 0; i < n; i++) {
        if (x[i] < mn) mn = x[i];
        if (x[i] > mx) mx = x[i];
        sum_w += w[i];
        sum_x += w[i] * x[i];
    }
    if (mn > 0) mn = 0;
    if (mx == mn) {
        for (int i = 0; i < n; i++) L[i] = 0;
        *neg_min = -mn;
        return 0;
    }
    float iscale = (float)nmax / (mx - mn);
    float scale = 1 / iscale;
    float best_err = 0;
    for (int i = 0; i < n; i++) {
        L[i] = (uint8_t)clampi(nearest_int(iscale * (x[i] - mn)), 0, nmax);
        const float diff = scale * (float)L[i] + mn - x[i];
        best_err += w[i] * (use_mad ? fabsf(diff) : diff * diff);
    }
    for (int is = 0; is <= nstep; is++) {
        iscale = (rmin + rdelta * (float)is + (float)nmax) / (mx - mn);
        float sum_l = 0, sum_l2 = 0, sum_xl = 0;
        for (int i = 0; i < n; i++) {
            const int l = clampi(nearest_int(iscale * (x[i] - mn)), 0, nmax);
            Laux[i] = (uint8_t)l;
            sum_l += w[i] * (float)l;
            sum_l2 += w[i] * (float)l * (float)l;
            sum_xl += w[i] * (float)l * x[i];
        }
        const float D = sum_w * sum_l2 - sum_l * sum_l;
        if (D <= 0) continue;
        /* weighted least squares for (scale, min) given these L */
        float this_scale = (sum_w * sum_xl - sum_x * sum_l) / D;
        float this_min = (sum_l2 * sum_x - sum_l * sum_xl) / D;
        if (this_min > 0) {
            this_min = 0;
            this_scale = sum_xl / sum_l2;
        }
        float err = 0;
        for (int i = 0; i < n; i++) {
            const float diff = this_scale * (float)Laux[i] + this_min - x[i];
            err += w[i] * (use_mad ? fabsf(diff) : diff * diff);
        }
        if (err < best_err) {
            memcpy(L, Laux, (size_t)n);
            best_err = err;
            scale = this_scale;
            mn = this_min;
        }
    }
    *neg_min = -mn;
    return scale;
}

static void set_scale_min_k4(int j, uint8_t *q, int sc, int m) {
    if (j < 4) {
        q[j] = (uint8_t)((q[j] & 0xc0) | sc);
        q[j + 4] = (uint8_t)((q[j + 4] & 0xc0) | m);
    } else {
        q[j + 4] = (uint8_t)((sc & 0xf) | ((m & 0xf) << 4));
        q[j - 4] = (uint8_t)((q[j - 4] & 63) | ((sc >> 4) << 6));
        q[j] = (uint8_t)((q[j] & 63) | ((m >> 4) << 6));
    }
}

/* Q3_K: 16 6-bit scales (stored +32) in 12 bytes: low 4 bits of scale j in
 * byte j%8 (low nibble for j < 8, high for j >= 8), top 2 bits in byte
 * 8 + j%4 at bit position 2*(j/4). */
static int q3_scale(const uint8_t *s, int j) {
    const int lo = j < 8 ? (s[j] & 0xf) : (s[j - 8] >> 4);
    const int hi = (s[8 + j % 4] >> (2 * (j / 4))) & 3;
    return (lo | (hi << 4)) - 32;
}

/* ggml's generic Q3_K..Q6_K dots keep 8 integer lanes per super-block
 * (lane = weight index % 8, each product times its sub-block scale), add
 * d * lane into 8 float sums, and add those 8 up only at the end of the row.
 * Same here, so the float rounding is the same too. a[] holds the weight
 * quants in weight order, scale[] one integer per group of weights. */
static void add_lanes(float sums[8], float d, const int8_t *a, const int8_t *q8, const int *scale,
                      int group) {
    int32_t lane[8] = {0};
    /* lane[p % 8] += scale[p / group] * q8[p] * a[p], a group at a time: the
     * same integers (the sums are exact), in loops a compiler vectorizes */
    for (int g = 0; g < QK_K / group; g++) {
        int32_t t[8] = {0};
        for (int p = g * group; p < (g + 1) * group; p += 8)
            for (int l = 0; l < 8; l++) t[l] += q8[p + l] * a[p + l];
        for (int l = 0; l < 8; l++) lane[l] += scale[g] * t[l];
    }
    for (int l = 0; l < 8; l++) sums[l] += d * (float)lane[l];
}

static float sum_lanes(float s, const float sums[8]) {
    for (int l = 0; l < 8; l++) s += sums[l];
    return s;
}

/* ---------------------------------------------------------------- Q2_K
 * 16 sub-blocks of 16: w = d*(sc&15) * q - dmin*(sc>>4), q in 0..3.
 * Weight v of each 128-half lives in qs[32*half + v%32] at bit 2*(v/32 % 4):
 * the 2-bit planes of 32 consecutive bytes hold 4 runs of 32 weights. */

static void q2_K_to_float(const void *src, float *dst, int64_t n) {
    const block_q2_K *b = (const block_q2_K *)src;
    for (int64_t i = 0; i < n / QK_K; i++) {
        const float d = H2F(b[i].d), dmin = H2F(b[i].dmin);
        const uint8_t *q = b[i].qs;
        int is = 0;
        for (int h = 0; h < QK_K; h += 128, q += 32) {
            for (int shift = 0; shift < 8; shift += 2) {
                for (int k = 0; k < 2; k++, is++) { /* two sub-blocks of 16 per plane */
                    const uint8_t sc = b[i].scales[is];
                    const float dl = d * (float)(sc & 0xf), ml = dmin * (float)(sc >> 4);
                    for (int l = 0; l < 16; l++)
                        *dst++ = dl * (float)((q[16 * k + l] >> shift) & 3) - ml;
                }
            }
        }
    }
}

static float q2_K_dot(const void *w, const float *x, int64_t n) {
    const block_q2_K *b = (const block_q2_K *)w;
    float s = 0;
    for (int64_t i = 0; i < n / QK_K; i++) {
        const float d = H2F(b[i].d), dmin = H2F(b[i].dmin);
        const uint8_t *q = b[i].qs;
        int is = 0;
        float acc = 0;
        for (int h = 0; h < QK_K; h += 128, q += 32) {
            for (int shift = 0; shift < 8; shift += 2) {
                for (int k = 0; k < 2; k++, is++, x += 16) {
                    const uint8_t sc = b[i].scales[is];
                    float sq = 0, sx = 0;
                    for (int l = 0; l < 16; l++) {
                        sq += (float)((q[16 * k + l] >> shift) & 3) * x[l];
                        sx += x[l];
                    }
                    acc += d * (float)(sc & 0xf) * sq - dmin * (float)(sc >> 4) * sx;
                }
            }
        }
        s += acc;
    }
    return s;
}

/* Pack 256 2-bit values (v in 0..3) into the Q2_K/Q3_K plane layout. */
static void pack_2bit_planes(const uint8_t *L, uint8_t *qs) {
    for (int h = 0; h < QK_K; h += 128)
        for (int l = 0; l < 32; l++)
            qs[h / 4 + l] = (uint8_t)((L[h + l] & 3) | (L[h + l + 32] & 3) << 2 |
                                      (L[h + l + 64] & 3) << 4 | (L[h + l + 96] & 3) << 6);
}

static void q2_K_from_float(const float *src, void *dst, int64_t n) {
    block_q2_K *b = (block_q2_K *)dst;
    uint8_t L[QK_K];
    float w[16], scales[16], mins[16];
    for (int64_t i = 0; i < n / QK_K; i++, src += QK_K) {
        float max_scale = 0, max_min = 0;
        for (int j = 0; j < 16; j++) {
            for (int l = 0; l < 16; l++) w[l] = fabsf(src[16 * j + l]);
            scales[j] = make_qkx_quants(16, 3, src + 16 * j, w, L + 16 * j, &mins[j], -0.5f,
                                        0.1f, 15, 1);
            if (scales[j] > max_scale) max_scale = scales[j];
            if (mins[j] > max_min) max_min = mins[j];
        }
        memset(b[i].scales, 0, sizeof b[i].scales);
        b[i].d = pl_float_to_half(max_scale > 0 ? max_scale / 15 : 0.0f);
        b[i].dmin = pl_float_to_half(max_min > 0 ? max_min / 15 : 0.0f);
        for (int j = 0; j < 16; j++) {
            const int ls = max_scale > 0 ? clampi(nearest_int(15 / max_scale * scales[j]), 0, 15) : 0;
            const int lm = max_min > 0 ? clampi(nearest_int(15 / max_min * mins[j]), 0, 15) : 0;
            b[i].scales[j] = (uint8_t)(ls | (lm << 4));
        }
        /* requantize against the scales actually stored */
        for (int j = 0; j < 16; j++) {
            const float dl = H2F(b[i].d) * (float)(b[i].scales[j] & 0xf);
            const float ml = H2F(b[i].dmin) * (float)(b[i].scales[j] >> 4);
            for (int l = 0; l < 16; l++)
                L[16 * j + l] = dl != 0 ? (uint8_t)clampi(nearest_int((src[16 * j + l] + ml) / dl), 0, 3) : 0;
        }
        pack_2bit_planes(L, b[i].qs);
    }
}

/* ggml's ggml_vec_dot_q2_K_q8_K: one integer sum per super-block for the
 * scales, and the mins through the activation's bsums. */
static float q2_K_dot_q(const void *w, const void *xq, int64_t n) {
    const block_q2_K *b = (const block_q2_K *)w;
    const block_q8_K *y = (const block_q8_K *)xq;
    float s = 0;
    for (int64_t i = 0; i < n / QK_K; i++) {
        const uint8_t *q = b[i].qs, *sc = b[i].scales;
        const int8_t *q8 = y[i].qs;
        int summs = 0, isum = 0, is = 0;
        for (int j = 0; j < 16; j++) summs += y[i].bsums[j] * (sc[j] >> 4);
        for (int h = 0; h < QK_K; h += 128, q += 32)
            for (int shift = 0; shift < 8; shift += 2, q8 += 32)
                for (int k = 0; k < 2; k++, is++) {
                    int isuml = 0;
                    for (int l = 16 * k; l < 16 * k + 16; l++) isuml += q8[l] * ((q[l] >> shift) & 3);
                    isum += (sc[is] & 0xf) * isuml;
                }
        const float dall = y[i].d * H2F(b[i].d), dmin = y[i].d * H2F(b[i].dmin);
        s += dall * (float)isum - dmin * (float)summs;
    }
    return s;
}

/* ---------------------------------------------------------------- Q3_K
 * 16 sub-blocks of 16: w = d * (scale_j) * (q - 4), q in 0..7: low 2 bits
 * in the Q2_K plane layout, the high bit of weight v in hmask[v%32] bit v/32
 * (a clear bit means subtract 4). */

static void q3_K_to_float(const void *src, float *dst, int64_t n) {
    const block_q3_K *b = (const block_q3_K *)src;
    for (int64_t i = 0; i < n / QK_K; i++) {
        const float d_all = H2F(b[i].d);
        const uint8_t *q = b[i].qs, *hm = b[i].hmask;
        uint8_t m = 1;
        int is = 0;
        for (int h = 0; h < QK_K; h += 128, q += 32) {
            for (int shift = 0; shift < 8; shift += 2, m = (uint8_t)(m << 1)) {
                for (int k = 0; k < 2; k++, is++) {
                    const float dl = d_all * (float)q3_scale(b[i].scales, is);
                    for (int l = 0; l < 16; l++) {
                        const int v = ((q[16 * k + l] >> shift) & 3) - ((hm[16 * k + l] & m) ? 0 : 4);
                        *dst++ = dl * (float)v;
                    }
                }
            }
        }
    }
}

static float q3_K_dot(const void *w, const float *x, int64_t n) {
    const block_q3_K *b = (const block_q3_K *)w;
    float s = 0;
    for (int64_t i = 0; i < n / QK_K; i++) {
        const float d_all = H2F(b[i].d);
        const uint8_t *q = b[i].qs, *hm = b[i].hmask;
        uint8_t m = 1;
        int is = 0;
        float acc = 0;
        for (int h = 0; h < QK_K; h += 128, q += 32) {
            for (int shift = 0; shift < 8; shift += 2, m = (uint8_t)(m << 1)) {
                for (int k = 0; k < 2; k++, is++, x += 16) {
                    float sq = 0;
                    for (int l = 0; l < 16; l++) {
                        const int v = ((q[16 * k + l] >> shift) & 3) - ((hm[16 * k + l] & m) ? 0 : 4);
                        sq += (float)v * x[l];
                    }
                    acc += d_all * (float)q3_scale(b[i].scales, is) * sq;
                }
            }
        }
        s += acc;
    }
    return s;
}

static void q3_K_from_float(const float *src, void *dst, int64_t n) {
    block_q3_K *b = (block_q3_K *)dst;
    uint8_t L[QK_K];
    float scales[16];
    for (int64_t i = 0; i < n / QK_K; i++, src += QK_K) {
        for (int j = 0; j < 16; j++) scales[j] = make_q3_quants(16, 4, src + 16 * j, L + 16 * j);
        const float max_scale = signed_absmax(scales, 16, NULL);
        memset(b[i].scales, 0, sizeof b[i].scales);
        if (max_scale != 0) {
            const float iscale = -32 / max_scale;
            for (int j = 0; j < 16; j++) {
                const int l = clampi(nearest_int(iscale * scales[j]), -32, 31) + 32;
                b[i].scales[j % 8] |= (uint8_t)((l & 0xf) << (j < 8 ? 0 : 4));
                b[i].scales[8 + j % 4] |= (uint8_t)((l >> 4) << (2 * (j / 4)));
            }
            b[i].d = pl_float_to_half(1 / iscale);
        } else {
            b[i].d = pl_float_to_half(0.0f);
        }
        for (int j = 0; j < 16; j++) {
            const float dl = H2F(b[i].d) * (float)q3_scale(b[i].scales, j);
            for (int l = 0; l < 16; l++)
                L[16 * j + l] = dl != 0 ? (uint8_t)(clampi(nearest_int(src[16 * j + l] / dl), -4, 3) + 4) : 4;
        }
        memset(b[i].hmask, 0, sizeof b[i].hmask);
        for (int v = 0; v < QK_K; v++)
            if (L[v] > 3) b[i].hmask[v % 32] |= (uint8_t)(1u << (v / 32));
        pack_2bit_planes(L, b[i].qs); /* keeps the low 2 bits */
    }
}

static float q3_K_dot_q(const void *w, const void *xq, int64_t n) {
    const block_q3_K *b = (const block_q3_K *)w;
    const block_q8_K *y = (const block_q8_K *)xq;
    float sums[8] = {0};
    int8_t a[QK_K];
    int sc[16];
    for (int64_t i = 0; i < n / QK_K; i++) {
        const uint8_t *q = b[i].qs, *hm = b[i].hmask;
        int8_t *v = a;
        uint8_t m = 1;
        for (int h = 0; h < QK_K; h += 128, q += 32)
            for (int shift = 0; shift < 8; shift += 2, m = (uint8_t)(m << 1))
                for (int l = 0; l < 32; l++) *v++ = (int8_t)(((q[l] >> shift) & 3) - ((hm[l] & m) ? 0 : 4));
        for (int j = 0; j < 16; j++) sc[j] = q3_scale(b[i].scales, j);
        add_lanes(sums, H2F(b[i].d) * y[i].d, a, y[i].qs, sc, 16);
    }
    return sum_lanes(0.0f, sums);
}

/* ---------------------------------------------------------------- Q4_K
 * 8 sub-blocks of 32: w = d*sc_j * q - dmin*m_j, q in 0..15. Each 64 weights
 * share 32 bytes: the first 32 in the low nibbles, the next 32 in the high. */

static void q4_K_to_float(const void *src, float *dst, int64_t n) {
    const block_q4_K *b = (const block_q4_K *)src;
    for (int64_t i = 0; i < n / QK_K; i++) {
        const float d = H2F(b[i].d), dmin = H2F(b[i].dmin);
        const uint8_t *q = b[i].qs;
        for (int is = 0; is < 8; is += 2, q += 32) {
            int sc, m;
            get_scale_min_k4(is, b[i].scales, &sc, &m);
            const float d1 = d * (float)sc, m1 = dmin * (float)m;
            get_scale_min_k4(is + 1, b[i].scales, &sc, &m);
            const float d2 = d * (float)sc, m2 = dmin * (float)m;
            for (int l = 0; l < 32; l++) *dst++ = d1 * (float)(q[l] & 0xf) - m1;
            for (int l = 0; l < 32; l++) *dst++ = d2 * (float)(q[l] >> 4) - m2;
        }
    }
}

static float q4_K_dot(const void *w, const float *x, int64_t n) {
    const block_q4_K *b = (const block_q4_K *)w;
    float s = 0;
    for (int64_t i = 0; i < n / QK_K; i++) {
        const float d = H2F(b[i].d), dmin = H2F(b[i].dmin);
        const uint8_t *q = b[i].qs;
        float acc = 0;
        for (int is = 0; is < 8; is += 2, q += 32, x += 64) {
            int sc1, m1, sc2, m2;
            get_scale_min_k4(is, b[i].scales, &sc1, &m1);
            get_scale_min_k4(is + 1, b[i].scales, &sc2, &m2);
            float sq1 = 0, sx1 = 0, sq2 = 0, sx2 = 0;
            for (int l = 0; l < 32; l++) {
                sq1 += (float)(q[l] & 0xf) * x[l];
                sx1 += x[l];
                sq2 += (float)(q[l] >> 4) * x[l + 32];
                sx2 += x[l + 32];
            }
            acc += d * (float)sc1 * sq1 - dmin * (float)m1 * sx1;
            acc += d * (float)sc2 * sq2 - dmin * (float)m2 * sx2;
        }
        s += acc;
    }
    return s;
}

/* Shared by Q4_K and Q5_K (nmax 15 or 31): choose the 8 sub-block scales and
 * mins, store them in d/dmin/scales, and leave the final quants in L. */
static void qk_scales_mins(const float *x, int nmax, float rmin, int nstep, pl_half *d_out,
                           pl_half *dmin_out, uint8_t *packed, uint8_t *L) {
    float w[32], scales[8], mins[8];
    float max_scale = 0, max_min = 0;
    for (int j = 0; j < 8; j++) {
        const float *xs = x + 32 * j;
        float sum_x2 = 0;
        for (int l = 0; l < 32; l++) sum_x2 += xs[l] * xs[l];
        const float av_x = sqrtf(sum_x2 / 32);
        for (int l = 0; l < 32; l++) w[l] = av_x + fabsf(xs[l]);
        scales[j] = make_qkx_quants(32, nmax, xs, w, L + 32 * j, &mins[j], rmin, 0.1f, nstep, 0);
        if (scales[j] > max_scale) max_scale = scales[j];
        if (mins[j] > max_min) max_min = mins[j];
    }
    const float inv_scale = max_scale > 0 ? 63 / max_scale : 0.0f;
    const float inv_min = max_min > 0 ? 63 / max_min : 0.0f;
    memset(packed, 0, K_SCALE_SIZE);
    for (int j = 0; j < 8; j++)
        set_scale_min_k4(j, packed, clampi(nearest_int(inv_scale * scales[j]), 0, 63),
                         clampi(nearest_int(inv_min * mins[j]), 0, 63));
    *d_out = pl_float_to_half(max_scale / 63);
    *dmin_out = pl_float_to_half(max_min / 63);
    for (int j = 0; j < 8; j++) {
        int sc, m;
        get_scale_min_k4(j, packed, &sc, &m);
        const float dl = H2F(*d_out) * (float)sc, ml = H2F(*dmin_out) * (float)m;
        for (int l = 0; l < 32; l++)
            L[32 * j + l] = dl != 0 ? (uint8_t)clampi(nearest_int((x[32 * j + l] + ml) / dl), 0, nmax) : 0;
    }
}

static void q4_K_from_float(const float *src, void *dst, int64_t n) {
    block_q4_K *b = (block_q4_K *)dst;
    uint8_t L[QK_K];
    for (int64_t i = 0; i < n / QK_K; i++, src += QK_K) {
        qk_scales_mins(src, 15, -1.0f, 20, &b[i].d, &b[i].dmin, b[i].scales, L);
        for (int j = 0; j < QK_K; j += 64)
            for (int l = 0; l < 32; l++)
                b[i].qs[j / 2 + l] = (uint8_t)(L[j + l] | (L[j + l + 32] << 4));
    }
}

/* The mins go through bsums: sumi = sum over 16-groups of bsum * min, and
 * ggml subtracts dmin*sumi from the running sum block by block, adding the
 * 8 lanes of the scale part at the end. */
static float q4_K_dot_q(const void *w, const void *xq, int64_t n) {
    const block_q4_K *b = (const block_q4_K *)w;
    const block_q8_K *y = (const block_q8_K *)xq;
    float s = 0, sums[8] = {0};
    int8_t a[QK_K];
    int sc[8], mn[8];
    for (int64_t i = 0; i < n / QK_K; i++) {
        const uint8_t *q = b[i].qs;
        for (int j = 0; j < QK_K / 64; j++, q += 32)
            for (int l = 0; l < 32; l++) {
                a[64 * j + l] = (int8_t)(q[l] & 0xf);
                a[64 * j + 32 + l] = (int8_t)(q[l] >> 4);
            }
        for (int j = 0; j < 8; j++) get_scale_min_k4(j, b[i].scales, &sc[j], &mn[j]);
        int sumi = 0;
        for (int j = 0; j < QK_K / 16; j++) sumi += y[i].bsums[j] * mn[j / 2];
        add_lanes(sums, H2F(b[i].d) * y[i].d, a, y[i].qs, sc, 32);
        s -= H2F(b[i].dmin) * y[i].d * (float)sumi;
    }
    return sum_lanes(s, sums);
}

/* ---------------------------------------------------------------- Q5_K
 * Q4_K plus a fifth bit: weight v's high bit is qh[v%32] bit v/32. */

static void q5_K_to_float(const void *src, float *dst, int64_t n) {
    const block_q5_K *b = (const block_q5_K *)src;
    for (int64_t i = 0; i < n / QK_K; i++) {
        const float d = H2F(b[i].d), dmin = H2F(b[i].dmin);
        const uint8_t *ql = b[i].qs, *qh = b[i].qh;
        uint8_t u1 = 1, u2 = 2;
        for (int is = 0; is < 8; is += 2, ql += 32, u1 = (uint8_t)(u1 << 2), u2 = (uint8_t)(u2 << 2)) {
            int sc, m;
            get_scale_min_k4(is, b[i].scales, &sc, &m);
            const float d1 = d * (float)sc, m1 = dmin * (float)m;
            get_scale_min_k4(is + 1, b[i].scales, &sc, &m);
            const float d2 = d * (float)sc, m2 = dmin * (float)m;
            for (int l = 0; l < 32; l++)
                *dst++ = d1 * (float)((ql[l] & 0xf) + (qh[l] & u1 ? 16 : 0)) - m1;
            for (int l = 0; l < 32; l++)
                *dst++ = d2 * (float)((ql[l] >> 4) + (qh[l] & u2 ? 16 : 0)) - m2;
        }
    }
}

static float q5_K_dot(const void *w, const float *x, int64_t n) {
    const block_q5_K *b = (const block_q5_K *)w;
    float s = 0;
    for (int64_t i = 0; i < n / QK_K; i++) {
        const float d = H2F(b[i].d), dmin = H2F(b[i].dmin);
        const uint8_t *ql = b[i].qs, *qh = b[i].qh;
        uint8_t u1 = 1, u2 = 2;
        float acc = 0;
        for (int is = 0; is < 8;
             is += 2, ql += 32, x += 64, u1 = (uint8_t)(u1 << 2), u2 = (uint8_t)(u2 << 2)) {
            int sc1, m1, sc2, m2;
            get_scale_min_k4(is, b[i].scales, &sc1, &m1);
            get_scale_min_k4(is + 1, b[i].scales, &sc2, &m2);
            float sq1 = 0, sx1 = 0, sq2 = 0, sx2 = 0;
            for (int l = 0; l < 32; l++) {
                sq1 += (float)((ql[l] & 0xf) + (qh[l] & u1 ? 16 : 0)) * x[l];
                sx1 += x[l];
                sq2 += (float)((ql[l] >> 4) + (qh[l] & u2 ? 16 : 0)) * x[l + 32];
                sx2 += x[l + 32];
            }
            acc += d * (float)sc1 * sq1 - dmin * (float)m1 * sx1;
            acc += d * (float)sc2 * sq2 - dmin * (float)m2 * sx2;
        }
        s += acc;
    }
    return s;
}

static void q5_K_from_float(const float *src, void *dst, int64_t n) {
    block_q5_K *b = (block_q5_K *)dst;
    uint8_t L[QK_K];
    for (int64_t i = 0; i < n / QK_K; i++, src += QK_K) {
        qk_scales_mins(src, 31, -0.5f, 15, &b[i].d, &b[i].dmin, b[i].scales, L);
        memset(b[i].qh, 0, sizeof b[i].qh);
        for (int j = 0; j < QK_K; j += 64)
            for (int l = 0; l < 32; l++)
                b[i].qs[j / 2 + l] = (uint8_t)((L[j + l] & 0xf) | ((L[j + l + 32] & 0xf) << 4));
        for (int v = 0; v < QK_K; v++)
            if (L[v] > 15) b[i].qh[v % 32] |= (uint8_t)(1u << (v / 32));
    }
}

static float q5_K_dot_q(const void *w, const void *xq, int64_t n) {
    const block_q5_K *b = (const block_q5_K *)w;
    const block_q8_K *y = (const block_q8_K *)xq;
    float s = 0, sums[8] = {0};
    int8_t a[QK_K];
    int sc[8], mn[8];
    for (int64_t i = 0; i < n / QK_K; i++) {
        const uint8_t *q = b[i].qs, *qh = b[i].qh;
        for (int j = 0; j < QK_K / 64; j++, q += 32)
            for (int l = 0; l < 32; l++) {
                a[64 * j + l] = (int8_t)((q[l] & 0xf) | (((qh[l] >> (2 * j)) & 1) << 4));
                a[64 * j + 32 + l] = (int8_t)((q[l] >> 4) | (((qh[l] >> (2 * j + 1)) & 1) << 4));
            }
        for (int j = 0; j < 8; j++) get_scale_min_k4(j, b[i].scales, &sc[j], &mn[j]);
        int sumi = 0;
        for (int j = 0; j < QK_K / 16; j++) sumi += y[i].bsums[j] * mn[j / 2];
        add_lanes(sums, H2F(b[i].d) * y[i].d, a, y[i].qs, sc, 32);
        s -= H2F(b[i].dmin) * y[i].d * (float)sumi;
    }
    return sum_lanes(s, sums);
}

/* ---------------------------------------------------------------- Q6_K
 * 16 sub-blocks of 16 with int8 scales: w = d * sc_j * (q - 32), q in 0..63.
 * Per 128 weights: ql[0..63] and qh[0..31]; weight 32*k + l (k 0..3, l 0..31)
 * has its low nibble in ql[l + 32*(k&1)] (low nibble for k < 2, high for
 * k >= 2) and its top 2 bits in qh[l] at bit 2*k. */

static int q6_quant(const uint8_t *ql, const uint8_t *qh, int k, int l) {
    const int lo = (k < 2 ? ql[l + 32 * k] & 0xf : ql[l + 32 * (k - 2)] >> 4);
    return (lo | (((qh[l] >> (2 * k)) & 3) << 4)) - 32;
}

static void q6_K_to_float(const void *src, float *dst, int64_t n) {
    const block_q6_K *b = (const block_q6_K *)src;
    for (int64_t i = 0; i < n / QK_K; i++) {
        const float d = H2F(b[i].d);
        const uint8_t *ql = b[i].ql, *qh = b[i].qh;
        const int8_t *sc = b[i].scales;
        for (int h = 0; h < QK_K; h += 128, ql += 64, qh += 32, sc += 8, dst += 128)
            for (int k = 0; k < 4; k++)
                for (int l = 0; l < 32; l++)
                    dst[32 * k + l] = d * (float)sc[2 * k + l / 16] * (float)q6_quant(ql, qh, k, l);
    }
}

static float q6_K_dot(const void *w, const float *x, int64_t n) {
    const block_q6_K *b = (const block_q6_K *)w;
    float s = 0;
    for (int64_t i = 0; i < n / QK_K; i++) {
        const float d = H2F(b[i].d);
        const uint8_t *ql = b[i].ql, *qh = b[i].qh;
        const int8_t *sc = b[i].scales;
        float acc = 0;
        for (int h = 0; h < QK_K; h += 128, ql += 64, qh += 32, sc += 8, x += 128)
            for (int k = 0; k < 4; k++)
                for (int half = 0; half < 2; half++) {
                    float sq = 0;
                    for (int l = 16 * half; l < 16 * half + 16; l++)
                        sq += (float)q6_quant(ql, qh, k, l) * x[32 * k + l];
                    acc += d * (float)sc[2 * k + half] * sq;
                }
        s += acc;
    }
    return s;
}

static void q6_K_from_float(const float *src, void *dst, int64_t n) {
    block_q6_K *b = (block_q6_K *)dst;
    uint8_t L[QK_K];
    float scales[16];
    for (int64_t i = 0; i < n / QK_K; i++, src += QK_K) {
        float amax;
        for (int j = 0; j < 16; j++) scales[j] = make_qx_quants(16, 32, src + 16 * j, L + 16 * j);
        const float max_scale = signed_absmax(scales, 16, &amax);
        memset(&b[i], 0, sizeof b[i]);
        if (amax < GROUP_MAX_EPS) {
            /* all zero: q = 32 everywhere so every weight decodes to 0 even
             * though d and the scales are 0 anyway */
            memset(L, 32, sizeof L);
        } else {
            const float iscale = -128 / max_scale;
            b[i].d = pl_float_to_half(1 / iscale);
            for (int j = 0; j < 16; j++)
                b[i].scales[j] = (int8_t)clampi(nearest_int(iscale * scales[j]), -128, 127);
            for (int j = 0; j < 16; j++) {
                const float dl = H2F(b[i].d) * (float)b[i].scales[j];
                for (int l = 0; l < 16; l++)
                    L[16 * j + l] = dl != 0 ? (uint8_t)(clampi(nearest_int(src[16 * j + l] / dl), -32, 31) + 32) : 32;
            }
        }
        for (int h = 0; h < QK_K; h += 128) {
            uint8_t *ql = b[i].ql + h / 2, *qh = b[i].qh + h / 4;
            for (int l = 0; l < 32; l++) {
                const uint8_t *v = L + h + l; /* v[32*k] is weight 32*k + l */
                ql[l] = (uint8_t)((v[0] & 0xf) | ((v[64] & 0xf) << 4));
                ql[l + 32] = (uint8_t)((v[32] & 0xf) | ((v[96] & 0xf) << 4));
                qh[l] = (uint8_t)((v[0] >> 4) | ((v[32] >> 4) << 2) | ((v[64] >> 4) << 4) | ((v[96] >> 4) << 6));
            }
        }
    }
}

static float q6_K_dot_q(const void *w, const void *xq, int64_t n) {
    const block_q6_K *b = (const block_q6_K *)w;
    const block_q8_K *y = (const block_q8_K *)xq;
    float sums[8] = {0};
    int8_t a[QK_K];
    int sc[16];
    for (int64_t i = 0; i < n / QK_K; i++) {
        for (int h = 0; h < QK_K; h += 128) { /* q6_quant for k = 0..3, spelled out to vectorize */
            const uint8_t *ql = b[i].ql + h / 2, *qh = b[i].qh + h / 4;
            for (int l = 0; l < 32; l++) {
                a[h + l] = (int8_t)(((ql[l] & 0xf) | ((qh[l] & 3) << 4)) - 32);
                a[h + 32 + l] = (int8_t)(((ql[l + 32] & 0xf) | (((qh[l] >> 2) & 3) << 4)) - 32);
                a[h + 64 + l] = (int8_t)(((ql[l] >> 4) | (((qh[l] >> 4) & 3) << 4)) - 32);
                a[h + 96 + l] = (int8_t)(((ql[l + 32] >> 4) | (((qh[l] >> 6) & 3) << 4)) - 32);
            }
        }
        for (int j = 0; j < 16; j++) sc[j] = b[i].scales[j];
        add_lanes(sums, H2F(b[i].d) * y[i].d, a, y[i].qs, sc, 16);
    }
    return sum_lanes(0.0f, sums);
}

/* ---------------------------------------------------------------- Q8_K
 * Activations: w = d * q with a float d, plus the sums of each 16 quants
 * (bsums) that the K-quant dot kernels use to apply the mins. */

static void q8_K_to_float(const void *src, float *dst, int64_t n) {
    const block_q8_K *b = (const block_q8_K *)src;
    for (int64_t i = 0; i < n / QK_K; i++, dst += QK_K)
        for (int j = 0; j < QK_K; j++) dst[j] = b[i].d * (float)b[i].qs[j];
}

/* ggml's quantize_row_q8_K_ref, which its x86 build uses unchanged: the
 * signed extreme max gives iscale = -127/max (not -128: ggml changed it for
 * IQ2_XXS's AVX code), q = nearest_int(iscale*x) with ties to even, d = 1/iscale.
 * Hostile blocks as pl_act_nonfinite says (d NaN, or all zero). */
static void q8_K_from_float(const float *src, void *dst, int64_t n) {
    block_q8_K *b = (block_q8_K *)dst;
    for (int64_t i = 0; i < n / QK_K; i++, src += QK_K) {
        if (pl_act_nonfinite(src, QK_K)) {
            memset(&b[i], 0, sizeof b[i]);
            b[i].d = NAN;
            continue;
        }
        float amax;
        const float max = signed_absmax(src, QK_K, &amax);
        /* the extreme maps to -127 (clamped to 127 on the positive side) */
        const float iscale = amax != 0 ? -127 / max : 0.0f;
        if (!(iscale != 0 && fabsf(iscale) <= FLT_MAX)) { /* zero, or so small that 127/max overflows */
            memset(&b[i], 0, sizeof b[i]);
            continue;
        }
        for (int j = 0; j < QK_K; j++)
            b[i].qs[j] = (int8_t)clampi(nearest_int(iscale * src[j]), -127, 127);
        for (int j = 0; j < QK_K / 16; j++) {
            int sum = 0;
            for (int l = 0; l < 16; l++) sum += b[i].qs[16 * j + l];
            b[i].bsums[j] = (int16_t)sum;
        }
        b[i].d = 1 / iscale;
    }
}

/* ---------------------------------------------------------------- IQ4_NL IQ4_XS
 * 4-bit indices into a 16-entry non-linear codebook (denser near zero, where
 * most weights are). IQ4_NL: blocks of 32, w = d * v[q]; IQ4_XS: super-blocks
 * of 256 whose eight 32-weight sub-blocks carry 6-bit scales (stored + 32),
 * w = d * (ls - 32) * v[q]. Each 32 weights keep 16 bytes of nibbles: byte
 * j holds weight j (low) and j+16 (high), as Q4_0. Both products are exact
 * in float (d has 11 significant bits, ls - 32 6, v 7), so dequantization is
 * bit for bit ggml's whatever the order. */

const int8_t pl_iq4nl_values[16] = {-127, -104, -83, -65, -49, -35, -22, -10, 1, 13, 25, 38, 53, 69, 89, 113};
#define KV pl_iq4nl_values

static void iq4_nl_to_float(const void *src, float *dst, int64_t n) {
    const block_iq4_nl *b = (const block_iq4_nl *)src;
    for (int64_t i = 0; i < n / QK4_NL; i++, dst += QK4_NL) {
        const float d = H2F(b[i].d);
        for (int j = 0; j < QK4_NL / 2; j++) {
            dst[j] = d * (float)KV[b[i].qs[j] & 0xf];
            dst[j + QK4_NL / 2] = d * (float)KV[b[i].qs[j] >> 4];
        }
    }
}

static float iq4_nl_dot(const void *w, const float *x, int64_t n) {
    const block_iq4_nl *b = (const block_iq4_nl *)w;
    float s = 0;
    for (int64_t i = 0; i < n / QK4_NL; i++, x += QK4_NL) {
        float sq = 0;
        for (int j = 0; j < QK4_NL / 2; j++)
            sq += (float)KV[b[i].qs[j] & 0xf] * x[j] + (float)KV[b[i].qs[j] >> 4] * x[j + QK4_NL / 2];
        s += H2F(b[i].d) * sq;
    }
    return s;
}

static void iq4_xs_to_float(const void *src, float *dst, int64_t n) {
    const block_iq4_xs *b = (const block_iq4_xs *)src;
    for (int64_t i = 0; i < n / QK_K; i++) {
        const float d = H2F(b[i].d);
        const uint8_t *qs = b[i].qs;
        for (int ib = 0; ib < QK_K / 32; ib++, qs += 16, dst += 32) {
            const float dl = d * (float)pl_iq4xs_scale(&b[i], ib);
            for (int j = 0; j < 16; j++) {
                dst[j] = dl * (float)KV[qs[j] & 0xf];
                dst[j + 16] = dl * (float)KV[qs[j] >> 4];
            }
        }
    }
}

static float iq4_xs_dot(const void *w, const float *x, int64_t n) {
    const block_iq4_xs *b = (const block_iq4_xs *)w;
    float s = 0;
    for (int64_t i = 0; i < n / QK_K; i++) {
        const float d = H2F(b[i].d);
        const uint8_t *qs = b[i].qs;
        float acc = 0;
        for (int ib = 0; ib < QK_K / 32; ib++, qs += 16, x += 32) {
            float sq = 0;
            for (int j = 0; j < 16; j++) sq += (float)KV[qs[j] & 0xf] * x[j] + (float)KV[qs[j] >> 4] * x[j + 16];
            acc += d * (float)pl_iq4xs_scale(&b[i], ib) * sq;
        }
        s += acc;
    }
    return s;
}

/* ggml's best_index_int8: the codebook entry nearest to x (ties to the
 * upper one; a NaN lands on the last entry, harmlessly). */
static int iq4_index(float x) {
    if (x <= KV[0]) return 0;
    if (x >= KV[15]) return 15;
    int lo = 0, hi = 15;
    while (hi - lo > 1) {
        const int mid = (lo + hi) / 2;
        if (x < KV[mid]) hi = mid;
        else lo = mid;
    }
    return x - KV[hi - 1] < KV[hi] - x ? hi - 1 : hi;
}

/* ggml's quantize_row_iq4_nl_impl without an importance matrix (weights
 * x^2, 7 tries each side), for IQ4_NL (nsub 1: the block's own fp16 scale)
 * and IQ4_XS (nsub 8: sub-block scales quantized to 6 bits against d).
 * Leaves the indices in L and the scales in *d, scales_h/scales_l. */
static void iq4_quantize(const float *x, int nsub, pl_half *d_out, uint16_t *scales_h, uint8_t *scales_l,
                         uint8_t *L) {
    enum { NTRY = 7 };
    float scales[QK_K / 32];
    float max_scale = 0, amax_scale = 0;
    *d_out = pl_float_to_half(0.0f);
    for (int ib = 0; ib < nsub; ib++) {
        const float *xb = x + 32 * ib;
        uint8_t *Lb = L + 32 * ib;
        float w[32], amax;
        for (int j = 0; j < 32; j++) w[j] = xb[j] * xb[j];
        const float max = signed_absmax(xb, 32, &amax);
        if (amax < GROUP_MAX_EPS) {
            scales[ib] = 0;
            continue;
        }
        float d = -max / (float)KV[0], id = 1 / d;
        float sumqx = 0, sumq2 = 0;
        for (int j = 0; j < 32; j++) {
            const int l = iq4_index(id * xb[j]);
            const float q = (float)KV[l];
            Lb[j] = (uint8_t)l;
            sumqx += w[j] * q * xb[j];
            sumq2 += w[j] * q * q;
        }
        d = sumqx / sumq2;
        float best = d * sumqx;
        for (int itry = -NTRY; itry <= NTRY; itry++) {
            id = (float)(itry + KV[0]) / max;
            sumqx = sumq2 = 0;
            for (int j = 0; j < 32; j++) {
                const float q = (float)KV[iq4_index(id * xb[j])];
                sumqx += w[j] * q * xb[j];
                sumq2 += w[j] * q * q;
            }
            if (sumq2 > 0 && sumqx * sumqx > best * sumq2) {
                d = sumqx / sumq2;
                best = d * sumqx;
            }
        }
        scales[ib] = d;
        if (fabsf(d) > amax_scale) {
            amax_scale = fabsf(d);
            max_scale = d;
        }
    }
    if (nsub > 1) {
        /* the sub-block scales against d, in float (not the stored fp16) as ggml does */
        const float d = -max_scale / 32, id = d != 0 ? 1 / d : 0.0f;
        *d_out = pl_float_to_half(d);
        *scales_h = 0;
        for (int ib = 0; ib < nsub; ib++) {
            const int l = clampi(nearest_int(id * scales[ib]), -32, 31);
            const float dl = d * (float)l, idl = dl != 0 ? 1 / dl : 0.0f;
            for (int j = 0; j < 32; j++) L[32 * ib + j] = (uint8_t)iq4_index(idl * x[32 * ib + j]);
            const int ls = l + 32;
            if (ib % 2 == 0) scales_l[ib / 2] = (uint8_t)(ls & 0xf);
            else scales_l[ib / 2] |= (uint8_t)((ls & 0xf) << 4);
            *scales_h |= (uint16_t)((ls >> 4) << 2 * ib);
        }
    } else {
        *d_out = pl_float_to_half(scales[0]);
        const float id = scales[0] != 0 ? 1 / scales[0] : 0.0f;
        for (int j = 0; j < 32; j++) L[j] = (uint8_t)iq4_index(id * x[j]);
    }
}

static void iq4_pack(const uint8_t *L, uint8_t *qs, int nsub) {
    for (int i = 0; i < nsub; i++)
        for (int j = 0; j < 16; j++) qs[16 * i + j] = (uint8_t)(L[32 * i + j] | (L[32 * i + 16 + j] << 4));
}

static void iq4_nl_from_float(const float *src, void *dst, int64_t n) {
    block_iq4_nl *b = (block_iq4_nl *)dst;
    uint8_t L[32], unused_l[4];
    uint16_t unused_h;
    for (int64_t i = 0; i < n / QK4_NL; i++, src += QK4_NL) {
        iq4_quantize(src, 1, &b[i].d, &unused_h, unused_l, L);
        iq4_pack(L, b[i].qs, 1);
    }
}

static void iq4_xs_from_float(const float *src, void *dst, int64_t n) {
    block_iq4_xs *b = (block_iq4_xs *)dst;
    uint8_t L[QK_K];
    for (int64_t i = 0; i < n / QK_K; i++, src += QK_K) {
        uint16_t sh;
        iq4_quantize(src, QK_K / 32, &b[i].d, &sh, b[i].scales_l, L);
        b[i].scales_h = sh;
        iq4_pack(L, b[i].qs, QK_K / 32);
    }
}

/* ggml's generic ggml_vec_dot_iq4_nl_q8_0: (dx * dw) * sumi per block. */
static float iq4_nl_dot_q(const void *w, const void *xq, int64_t n) {
    const block_iq4_nl *b = (const block_iq4_nl *)w;
    const block_q8_0 *y = (const block_q8_0 *)xq;
    float s = 0;
    for (int64_t i = 0; i < n / QK4_NL; i++) {
        int sumi = 0;
        for (int j = 0; j < QK4_NL / 2; j++)
            sumi += y[i].qs[j] * KV[b[i].qs[j] & 0xf] + y[i].qs[j + QK4_NL / 2] * KV[b[i].qs[j] >> 4];
        s += H2F(y[i].d) * H2F(b[i].d) * (float)sumi;
    }
    return s;
}

/* As ggml's x86 ggml_vec_dot_iq4_xs_q8_K (AVX2/AVX-512, which made the
 * references) computes it: the sub-block sums times their scales added in
 * integers (|sum| < 2^27), one float product (d * dx) * sumi per
 * super-block. (ggml's generic code rounds once per sub-block instead.) */
static float iq4_xs_dot_q(const void *w, const void *xq, int64_t n) {
    const block_iq4_xs *b = (const block_iq4_xs *)w;
    const block_q8_K *y = (const block_q8_K *)xq;
    float s = 0;
    for (int64_t i = 0; i < n / QK_K; i++) {
        const uint8_t *qs = b[i].qs;
        const int8_t *q8 = y[i].qs;
        int sumi = 0;
        for (int ib = 0; ib < QK_K / 32; ib++, qs += 16, q8 += 32) {
            int sub = 0;
            for (int j = 0; j < 16; j++) sub += q8[j] * KV[qs[j] & 0xf] + q8[j + 16] * KV[qs[j] >> 4];
            sumi += pl_iq4xs_scale(&b[i], ib) * sub;
        }
        s += H2F(b[i].d) * y[i].d * (float)sumi;
    }
    return s;
}
#undef KV

/* ---------------------------------------------------------------- the table */

/* name, blck, type_size, to_float, dot, from_float, vec_dot_type, dot_q,
 * from_float_act. Q8_1 and Q8_K are activation formats only: their dot is
 * NULL, which is what makes gguf.c refuse them as weights. */
#define W(T, blk, bt, f, vt, act) \
    [PL_TYPE_##T] = {#T, blk, sizeof(bt), f##_to_float, f##_dot, f##_from_float, vt, f##_dot_q, act}
static const pl_type_traits type_traits[PL_TYPE_COUNT] = {
    W(F32, 1, float, f32, PL_TYPE_F32, f32_from_float),
    W(F16, 1, pl_half, f16, PL_TYPE_F32, f16_from_float),
    W(BF16, 1, uint16_t, bf16, PL_TYPE_F32, bf16_from_float),
    W(Q4_0, QK4_0, block_q4_0, q4_0, PL_TYPE_Q8_0, q4_0_from_float),
    W(Q4_1, QK4_1, block_q4_1, q4_1, PL_TYPE_Q8_1, q4_1_from_float),
    W(Q5_0, QK5_0, block_q5_0, q5_0, PL_TYPE_Q8_0, q5_0_from_float),
    W(Q5_1, QK5_1, block_q5_1, q5_1, PL_TYPE_Q8_1, q5_1_from_float),
    W(Q8_0, QK8_0, block_q8_0, q8_0, PL_TYPE_Q8_0, q8_0_from_float_act),
    W(Q2_K, QK_K, block_q2_K, q2_K, PL_TYPE_Q8_K, q2_K_from_float),
    W(Q3_K, QK_K, block_q3_K, q3_K, PL_TYPE_Q8_K, q3_K_from_float),
    W(Q4_K, QK_K, block_q4_K, q4_K, PL_TYPE_Q8_K, q4_K_from_float),
    W(Q5_K, QK_K, block_q5_K, q5_K, PL_TYPE_Q8_K, q5_K_from_float),
    W(Q6_K, QK_K, block_q6_K, q6_K, PL_TYPE_Q8_K, q6_K_from_float),
    W(IQ4_NL, QK4_NL, block_iq4_nl, iq4_nl, PL_TYPE_Q8_0, iq4_nl_from_float),
    W(IQ4_XS, QK_K, block_iq4_xs, iq4_xs, PL_TYPE_Q8_K, iq4_xs_from_float),
    /* vec_dot_type is meaningless without a dot; F32 (0) by default */
    [PL_TYPE_Q8_1] = {"Q8_1", QK8_1, sizeof(block_q8_1), q8_1_to_float, NULL, q8_1_from_float,
                      PL_TYPE_F32, NULL, q8_1_from_float_act},
    /* ggml's x86 quantize_row_q8_K is its reference (only wasm has SIMD) */
    [PL_TYPE_Q8_K] = {"Q8_K", QK_K, sizeof(block_q8_K), q8_K_to_float, NULL, q8_K_from_float,
                      PL_TYPE_F32, NULL, q8_K_from_float},
};
#undef W

const pl_type_traits *pl_type_traits_get(uint32_t type) {
    if (type >= PL_TYPE_COUNT || !type_traits[type].name) return NULL;
    return &type_traits[type];
}

size_t pl_row_size(uint32_t type, int64_t n) {
    const pl_type_traits *t = pl_type_traits_get(type);
    if (!t || n < 0 || n % t->blck) return 0;
    const uint64_t nb = (uint64_t)(n / t->blck);
    if (nb > SIZE_MAX / t->type_size) return 0;
    return (size_t)nb * t->type_size;
}

const char *pl_type_name(uint32_t type) {
    /* ggml's ggml_type ids; the gaps are ids ggml retired (Q4_2, Q4_3, the
     * repacked Q4_0_4_4 .. IQ4_NL_8_8), named for what they once were */
    static const char *const names[] = {
        "F32",     "F16",     "Q4_0",     "Q4_1",     "Q4_2",     "Q4_3",      "Q5_0",       "Q5_1",
        "Q8_0",    "Q8_1",    "Q2_K",     "Q3_K",     "Q4_K",     "Q5_K",      "Q6_K",       "Q8_K",
        "IQ2_XXS", "IQ2_XS",  "IQ3_XXS",  "IQ1_S",    "IQ4_NL",   "IQ3_S",     "IQ2_S",      "IQ4_XS",
        "I8",      "I16",     "I32",      "I64",      "F64",      "IQ1_M",     "BF16",       "Q4_0_4_4",
        "Q4_0_4_8", "Q4_0_8_8", "TQ1_0",  "TQ2_0",    "IQ4_NL_4_4", "IQ4_NL_4_8", "IQ4_NL_8_8", "MXFP4",
    };
    return type < sizeof names / sizeof names[0] ? names[type] : NULL;
}
