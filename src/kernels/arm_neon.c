/* arm_neon.c - the Arm NEON levels (AArch64, where Advanced SIMD is part of
 * the base architecture, so "neon" needs no check). Compiled twice:
 *  - on its own: the "neon" level; 8-bit dot products by vmull_s8 + vpadal;
 *  - through arm_dotprod.c (PL_NEON_DOTPROD, -march=armv8.2-a+dotprod): the
 *    integer kernels again with SDOT (vdotq_s32), the "neon-dotprod" level,
 *    which cpu.c picks only when the CPU reports the dot-product extension.
 * The float kernels (quantize, F32/F16/BF16 matmul, attention, fp16
 * conversion) use no optional extension and exist once, in the "neon" build.
 *
 * quantize: Q8_0 / Q8_1 / Q8_K byte-identical to quant.c's from_float_act
 * (FCVTNS rounds to nearest even, as the reference does). matmul: every
 * weight type; the quantized ones as ggml's NEON kernels do it (exact
 * integer sums per sub-block, scales applied in int32, one float FMA per
 * block), each decoded weight block reused against up to 4 activation
 * columns, so prefill decodes a row a quarter as often. Only the float
 * accumulation order differs from the scalar reference (tests/test_kernels.c
 * bounds it); attention and f32_to_f16 are bit-exact with the generic level. */
#if defined(__aarch64__) || defined(_M_ARM64)
#include <arm_neon.h>
#include <float.h>
#include <math.h>
#include <string.h>

#include "kernels.h"

#if defined(PL_NEON_DOTPROD) && !defined(__ARM_FEATURE_DOTPROD) && !defined(_MSC_VER)
#error "arm_dotprod.c is compiled with -march=armv8.2-a+dotprod"
#endif

#if defined(__GNUC__) || defined(__clang__)
#define AI static inline __attribute__((always_inline))
/* Loops over a tile's rows and columns, constant once inlined, written
 * out in full: clang takes "GCC unroll 16" as a count to unroll by and
 * leaves a 2- or 4-trip loop rolled, its vectors spilled to the stack. */
#ifdef __clang__
#define UNROLL _Pragma("clang loop unroll(full)")
#else
#define UNROLL _Pragma("GCC unroll 16")
#endif
#else
#define AI static inline
#define UNROLL
#endif

/* Shared by both builds; defined in the "neon" one. */
void pl_neon_quantize(uint32_t act_type, const float *x, void *xq, int n);
void pl_neon_matmul_float(uint32_t type, const void *w, size_t row_bytes, int rows, int cols, const void *xq,
                          size_t xq_stride, int nb, float *y, size_t y_stride);
void pl_neon_attn(const float *q, int nq, int np, size_t ps, const pl_half *k, const pl_half *v, int n, int hd,
                  float scale, float *out, float *scores);
void pl_neon_f32_to_f16(const float *src, pl_half *dst, int n);

/* ---------------------------------------------------------------- helpers */

/* fp16 at a possibly unaligned address; the conversion is exact. */
static inline float ldh(const void *p) {
    uint16_t h;
    memcpy(&h, p, sizeof h);
    return vgetq_lane_f32(vcvt_f32_f16(vreinterpret_f16_u16(vdup_n_u16(h))), 0);
}

/* FCVT rounds to nearest even, as pl_float_to_half does. */
static inline pl_half f2h(float f) {
    return vget_lane_u16(vreinterpret_u16_f16(vcvt_f16_f32(vdupq_n_f32(f))), 0);
}

static inline void sth(void *p, float f) {
    const pl_half h = f2h(f);
    memcpy(p, &h, sizeof h);
}

/* Four fp16 -> four floats. */
static inline float32x4_t ldh4(const pl_half *p) { return vcvt_f32_f16(vreinterpret_f16_u16(vld1_u16(p))); }

#ifndef PL_NEON_DOTPROD
/* ---------------------------------------------------------------- quantize */

/* ggml's quantize_row_q8_0/q8_1 as quant.c's from_float_act: d = amax/127,
 * q = round-to-even(x * 127/amax); Q8_1 adds s = fp16(d * sum q). */
static void quantize_q8_01(const float *x, uint8_t *out, int nblk, int with_s) {
    const size_t bs = with_s ? sizeof(block_q8_1) : sizeof(block_q8_0);
    for (int i = 0; i < nblk; i++, x += 32, out += bs) {
        if (pl_act_nonfinite(x, 32)) { /* NaN/Inf: quant.c's rule (d NaN, zero quants) */
            memset(out + (with_s ? 4 : 2), 0, 32);
            sth(out, NAN);
            if (with_s) sth(out + 2, NAN);
            continue;
        }
        float32x4_t v[8], m = vdupq_n_f32(0.0f);
        for (int k = 0; k < 8; k++) {
            v[k] = vld1q_f32(x + 4 * k);
            m = vmaxq_f32(m, vabsq_f32(v[k]));
        }
        const float amax = vmaxvq_f32(m);
        const float d = amax / 127;
        const float id = pl_act_inv_scale(127, amax);
        int16x8_t h[4];
        for (int k = 0; k < 4; k++)
            h[k] = vcombine_s16(vqmovn_s32(vcvtnq_s32_f32(vmulq_n_f32(v[2 * k], id))),
                                vqmovn_s32(vcvtnq_s32_f32(vmulq_n_f32(v[2 * k + 1], id))));
        const int8x16_t q0 = vcombine_s8(vqmovn_s16(h[0]), vqmovn_s16(h[1]));
        const int8x16_t q1 = vcombine_s8(vqmovn_s16(h[2]), vqmovn_s16(h[3]));
        int8_t *qs = (int8_t *)(out + (with_s ? 4 : 2));
        vst1q_s8(qs, q0);
        vst1q_s8(qs + 16, q1);
        sth(out, d);
        if (with_s) sth(out + 2, d * (float)(vaddlvq_s8(q0) + vaddlvq_s8(q1)));
    }
}

/* ggml's quantize_row_q8_K_ref: the signed extreme (first of equal
 * magnitudes) maps to -127, q = nearest-even(iscale * x), 16-weight sums. */
static void quantize_q8_K(const float *x, block_q8_K *y, int nblk) {
    const int16x8_t lo = vdupq_n_s16(-127);
    for (int i = 0; i < nblk; i++, x += QK_K) {
        if (pl_act_nonfinite(x, QK_K)) { /* NaN/Inf: quant.c's rule (d NaN, zero quants) */
            memset(&y[i], 0, sizeof y[i]);
            y[i].d = NAN;
            continue;
        }
        float32x4_t m = vdupq_n_f32(0.0f);
        for (int k = 0; k < QK_K / 4; k++) m = vmaxq_f32(m, vabsq_f32(vld1q_f32(x + 4 * k)));
        /* all finite, so amax is one of the |x| (the search stops inside
         * the block; bounded anyway) */
        const float amax = vmaxvq_f32(m);
        const float32x4_t av = vdupq_n_f32(amax);
        int j = 0;
        for (int k = 0; k < QK_K / 4; k++) /* the first |x| == amax: 4 at a time, then the lane */
            if (vmaxvq_u32(vceqq_f32(vabsq_f32(vld1q_f32(x + 4 * k)), av))) {
                j = 4 * k;
                while (j < 4 * k + 3 && fabsf(x[j]) != amax) j++;
                break;
            }
        const float iscale = amax != 0 ? -127 / x[j] : 0.0f;
        if (!(iscale != 0 && fabsf(iscale) <= FLT_MAX)) { /* zero, or 127/amax overflows: quant.c's rule */
            memset(&y[i], 0, sizeof y[i]);
            continue;
        }
        for (int k = 0; k < QK_K / 16; k++) {
            int16x8_t h[2];
            for (int l = 0; l < 2; l++) {
                const float *p = x + 16 * k + 8 * l;
                h[l] = vcombine_s16(vqmovn_s32(vcvtnq_s32_f32(vmulq_n_f32(vld1q_f32(p), iscale))),
                                    vqmovn_s32(vcvtnq_s32_f32(vmulq_n_f32(vld1q_f32(p + 4), iscale))));
                h[l] = vmaxq_s16(h[l], lo); /* 127 is vqmovn's own upper limit */
            }
            const int8x16_t q = vcombine_s8(vqmovn_s16(h[0]), vqmovn_s16(h[1]));
            vst1q_s8(y[i].qs + 16 * k, q);
            y[i].bsums[k] = vaddlvq_s8(q);
        }
        y[i].d = 1 / iscale;
    }
}

void pl_neon_quantize(uint32_t act_type, const float *x, void *xq, int n) {
    switch (act_type) {
    case PL_TYPE_Q8_0: quantize_q8_01(x, xq, n / QK8_0, 0); return;
    case PL_TYPE_Q8_1: quantize_q8_01(x, xq, n / QK8_1, 1); return;
    case PL_TYPE_Q8_K: quantize_q8_K(x, xq, n / QK_K); return;
    default: pl_quantize_generic(act_type, x, xq, n); return;
    }
}

/* ---------------------------------------------------------------- F32 F16 BF16
 * Float activations. R rows x C columns of 4-wide FMA accumulators. */

AI float32x4_t load_w4(const int T, const uint8_t *row, int k) {
    if (T == PL_TYPE_F32) return vld1q_f32((const float *)row + k);
    const uint16x4_t h = vld1_u16((const uint16_t *)row + k);
    if (T == PL_TYPE_F16) return vcvt_f32_f16(vreinterpret_f16_u16(h));
    return vreinterpretq_f32_u32(vshll_n_u16(h, 16)); /* bf16: the top half of a float */
}

AI float load_w1(const int T, const uint8_t *row, int k) {
    if (T == PL_TYPE_F32) {
        float f;
        memcpy(&f, row + 4 * (size_t)k, 4);
        return f;
    }
    uint16_t h;
    memcpy(&h, row + 2 * (size_t)k, 2);
    return T == PL_TYPE_F16 ? ldh(&h) : pl_bf16_to_float(h);
}

AI void f_tile(const int T, const int R, const int C, const uint8_t *w, size_t rb, const float *x, size_t xs, int n,
               float *y, size_t ys) {
    float32x4_t acc[4][2];
    UNROLL for (int r = 0; r < R; r++) UNROLL for (int c = 0; c < C; c++) acc[r][c] = vdupq_n_f32(0.0f);
    int k = 0;
    for (; k + 4 <= n; k += 4) {
        float32x4_t wv[4];
        UNROLL for (int r = 0; r < R; r++) wv[r] = load_w4(T, w + (size_t)r * rb, k);
        UNROLL for (int c = 0; c < C; c++) {
            const float32x4_t xv = vld1q_f32(x + (size_t)c * xs + k);
            UNROLL for (int r = 0; r < R; r++) acc[r][c] = vfmaq_f32(acc[r][c], wv[r], xv);
        }
    }
    UNROLL for (int r = 0; r < R; r++) UNROLL for (int c = 0; c < C; c++) {
        float s = vaddvq_f32(acc[r][c]);
        for (int kk = k; kk < n; kk++) s += load_w1(T, w + (size_t)r * rb, kk) * x[(size_t)c * xs + kk];
        y[(size_t)c * ys + r] = s;
    }
}

AI void f_cols(const int T, const int R, const uint8_t *w, size_t rb, const float *x, size_t xs, int n, int nb,
               float *y, size_t ys) {
    int c = 0;
    for (; c + 2 <= nb; c += 2) f_tile(T, R, 2, w, rb, x + (size_t)c * xs, xs, n, y + (size_t)c * ys, ys);
    if (c < nb) f_tile(T, R, 1, w, rb, x + (size_t)c * xs, xs, n, y + (size_t)c * ys, ys);
}

AI void mm_float(const int T, const uint8_t *w, size_t rb, int rows, int n, const uint8_t *xq, size_t xq_stride,
                 int nb, float *y, size_t ys) {
    const float *x = (const float *)xq;
    const size_t xs = xq_stride / sizeof(float);
    int r = 0;
    for (; r + 4 <= rows; r += 4) f_cols(T, 4, w + (size_t)r * rb, rb, x, xs, n, nb, y + r, ys);
    switch (rows - r) {
    case 3: f_cols(T, 3, w + (size_t)r * rb, rb, x, xs, n, nb, y + r, ys); break;
    case 2: f_cols(T, 2, w + (size_t)r * rb, rb, x, xs, n, nb, y + r, ys); break;
    case 1: f_cols(T, 1, w + (size_t)r * rb, rb, x, xs, n, nb, y + r, ys); break;
    default: break;
    }
}

void pl_neon_matmul_float(uint32_t type, const void *w, size_t row_bytes, int rows, int cols, const void *xq,
                          size_t xq_stride, int nb, float *y, size_t y_stride) {
    const uint8_t *W = (const uint8_t *)w, *X = (const uint8_t *)xq;
    switch (type) {
    case PL_TYPE_F32: mm_float(PL_TYPE_F32, W, row_bytes, rows, cols, X, xq_stride, nb, y, y_stride); return;
    case PL_TYPE_F16: mm_float(PL_TYPE_F16, W, row_bytes, rows, cols, X, xq_stride, nb, y, y_stride); return;
    case PL_TYPE_BF16: mm_float(PL_TYPE_BF16, W, row_bytes, rows, cols, X, xq_stride, nb, y, y_stride); return;
    default: pl_matmul_generic(type, w, row_bytes, rows, cols, xq, xq_stride, nb, y, y_stride); return;
    }
}

/* ---------------------------------------------------------------- attention, fp16 */

void pl_neon_f32_to_f16(const float *src, pl_half *dst, int n) {
    int i = 0;
    for (; i + 4 <= n; i += 4) vst1_u16(dst + i, vreinterpret_u16_f16(vcvt_f16_f32(vld1q_f32(src + i))));
    for (; i < n; i++) dst[i] = pl_float_to_half(src[i]);
}

/* a[j] lane l -> a[l] lane j. */
static inline void tr4(float32x4_t a[4]) {
    const float32x4_t t0 = vtrn1q_f32(a[0], a[1]), t1 = vtrn2q_f32(a[0], a[1]);
    const float32x4_t t2 = vtrn1q_f32(a[2], a[3]), t3 = vtrn2q_f32(a[2], a[3]);
    a[0] = vreinterpretq_f32_f64(vzip1q_f64(vreinterpretq_f64_f32(t0), vreinterpretq_f64_f32(t2)));
    a[1] = vreinterpretq_f32_f64(vzip1q_f64(vreinterpretq_f64_f32(t1), vreinterpretq_f64_f32(t3)));
    a[2] = vreinterpretq_f32_f64(vzip2q_f64(vreinterpretq_f64_f32(t0), vreinterpretq_f64_f32(t2)));
    a[3] = vreinterpretq_f32_f64(vzip2q_f64(vreinterpretq_f64_f32(t1), vreinterpretq_f64_f32(t3)));
}

/* Attention as llama.cpp computes it (see kernels.h), and bit for bit the
 * generic level's: every product (fp16 q times fp16 k, fp16 p times fp16 v)
 * is exact in float, so an FMA rounds like the generic's multiply-then-add,
 * and each sum runs in the generic's order: scores take 8 positions at once
 * (K transposed 4x4), each summed over i ascending; out takes 32 dims at
 * once, summed over t ascending. The softmax is the generic level's. */
static void attn_one(const float *q, const pl_half *k, const pl_half *v, int n, int hd, float scale, float *out,
                     float *scores) {
    if (hd % 4 || hd > PL_MAX_HEAD_DIM) {
        pl_kernels_generic.attn(q, 1, 1, 0, k, v, n, hd, scale, out, scores);
        return;
    }
    float qh[PL_MAX_HEAD_DIM];
    for (int i = 0; i < hd; i += 4) vst1q_f32(qh + i, vcvt_f32_f16(vcvt_f16_f32(vld1q_f32(q + i))));
    float32x4_t vmx = vdupq_n_f32(-INFINITY);
    int t = 0;
    for (; t + 8 <= n; t += 8) {
        const pl_half *kt = k + (size_t)t * hd;
        float32x4_t s0 = vdupq_n_f32(0.0f), s1 = vdupq_n_f32(0.0f);
        for (int i = 0; i < hd; i += 4) {
            const float32x4_t qv = vld1q_f32(qh + i);
            float32x4_t a[4], b[4];
            for (int j = 0; j < 4; j++) {
                a[j] = ldh4(kt + (size_t)j * hd + i);
                b[j] = ldh4(kt + (size_t)(j + 4) * hd + i);
            }
            tr4(a);
            tr4(b);
            s0 = vfmaq_laneq_f32(s0, a[0], qv, 0);
            s1 = vfmaq_laneq_f32(s1, b[0], qv, 0);
            s0 = vfmaq_laneq_f32(s0, a[1], qv, 1);
            s1 = vfmaq_laneq_f32(s1, b[1], qv, 1);
            s0 = vfmaq_laneq_f32(s0, a[2], qv, 2);
            s1 = vfmaq_laneq_f32(s1, b[2], qv, 2);
            s0 = vfmaq_laneq_f32(s0, a[3], qv, 3);
            s1 = vfmaq_laneq_f32(s1, b[3], qv, 3);
        }
        s0 = vmulq_n_f32(s0, scale);
        s1 = vmulq_n_f32(s1, scale);
        vst1q_f32(scores + t, s0);
        vst1q_f32(scores + t + 4, s1);
        vmx = vmaxq_f32(vmx, vmaxq_f32(s0, s1));
    }
    float mx = vmaxvq_f32(vmx);
    for (; t < n; t++) {
        const pl_half *kt = k + (size_t)t * hd;
        float s = 0.0f;
        for (int i = 0; i < hd; i++) s += qh[i] * ldh(kt + i);
        scores[t] = s * scale;
        if (scores[t] > mx) mx = scores[t];
    }
    const float inv = pl_softmax_exp(scores, n, mx);
    for (t = 0; t + 4 <= n; t += 4)
        vst1q_f32(scores + t, vcvt_f32_f16(vcvt_f16_f32(vmulq_n_f32(vld1q_f32(scores + t), inv))));
    for (; t < n; t++) scores[t] = pl_half_to_float(f2h(scores[t] * inv));
    for (int i0 = 0; i0 < hd; i0 += 32) {
        const int nv = (hd - i0) / 4 < 8 ? (hd - i0) / 4 : 8;
        float32x4_t acc[8];
        UNROLL for (int u = 0; u < 8; u++) acc[u] = vdupq_n_f32(0.0f);
        for (t = 0; t < n; t++) { /* p = 0 included, as the generic level (a NaN in V propagates) */
            const float p = scores[t];
            const pl_half *vt = v + (size_t)t * hd + i0;
            UNROLL for (int u = 0; u < 8; u++) if (u < nv) acc[u] = vfmaq_n_f32(acc[u], ldh4(vt + 4 * u), p);
        }
        UNROLL for (int u = 0; u < 8; u++) if (u < nv) vst1q_f32(out + i0 + 4 * u, acc[u]);
    }
}

/* The queries one by one (the transposes are cheap next to NEON's loads). */
void pl_neon_attn(const float *q, int nq, int np, size_t ps, const pl_half *k, const pl_half *v, int n, int hd,
                  float scale, float *out, float *scores) {
    pl_attn_each(attn_one, q, nq, np, ps, k, v, n, hd, scale, out, scores);
}
#endif /* !PL_NEON_DOTPROD */

/* ---------------------------------------------------------------- integer dot products
 * acc + the products of a and b, four at a time into the int32 lanes. The
 * two builds spread the products over the lanes differently; the kernels
 * only ever use the total of the four lanes. */
static inline int32x4_t dot16(int32x4_t acc, int8x16_t a, int8x16_t b) {
#ifdef PL_NEON_DOTPROD
    return vdotq_s32(acc, a, b);
#else
    /* |a*b| <= 128*127 fits int16: activations are never -128 */
    acc = vpadalq_s16(acc, vmull_s8(vget_low_s8(a), vget_low_s8(b)));
    return vpadalq_s16(acc, vmull_high_s8(a, b));
#endif
}

/* Lane j of the result: the total of p[j] (four vectors -> four sums). */
static inline int32x4_t sum4(int32x4_t p0, int32x4_t p1, int32x4_t p2, int32x4_t p3) {
    return vpaddq_s32(vpaddq_s32(p0, p1), vpaddq_s32(p2, p3));
}

/* ---------------------------------------------------------------- Q4_0 Q4_1 Q5_0 Q5_1 Q8_0 IQ4_NL
 * 32-weight blocks against Q8_0 (Q8_1 for the _1 types) activation blocks:
 * two 16-byte vectors of quants (weights 0-15, 16-31) dotted with the
 * activations', times dw*dx; the unsigned _1 types add m * s per block. */

AI int q0_size(const int T) {
    switch (T) {
    case PL_TYPE_Q4_0: return sizeof(block_q4_0);
    case PL_TYPE_Q4_1: return sizeof(block_q4_1);
    case PL_TYPE_Q5_0: return sizeof(block_q5_0);
    case PL_TYPE_Q5_1: return sizeof(block_q5_1);
    case PL_TYPE_IQ4_NL: return sizeof(block_iq4_nl);
    default: return sizeof(block_q8_0);
    }
}

/* The IQ4_NL/IQ4_XS codebook: one TBL looks 16 nibbles up. */
static inline int8x16_t iq4_book(void) { return vld1q_s8(pl_iq4nl_values); }

AI int q0_unsigned(const int T) { return T == PL_TYPE_Q4_1 || T == PL_TYPE_Q5_1; }

/* The 32 bits at p (little-endian) -> 32 bytes, 0x10 where the bit is set. */
static inline void bits32(const uint8_t *p, uint8x16_t *b0, uint8x16_t *b1) {
    static const uint8_t idx[32] = {0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 1, 1, 1, 1,
                                    2, 2, 2, 2, 2, 2, 2, 2, 3, 3, 3, 3, 3, 3, 3, 3};
    static const uint8_t bit[16] = {1, 2, 4, 8, 16, 32, 64, 128, 1, 2, 4, 8, 16, 32, 64, 128};
    uint32_t u;
    memcpy(&u, p, 4);
    const uint8x16_t v = vreinterpretq_u8_u32(vdupq_n_u32(u)), m = vld1q_u8(bit), b4 = vdupq_n_u8(0x10);
    *b0 = vandq_u8(vtstq_u8(vqtbl1q_u8(v, vld1q_u8(idx)), m), b4);
    *b1 = vandq_u8(vtstq_u8(vqtbl1q_u8(v, vld1q_u8(idx + 16)), m), b4);
}

/* Weights 0-15 and 16-31 of a block: signed w/d for Q4_0/Q5_0/Q8_0 and
 * IQ4_NL (its codebook values), unsigned (w - m)/d for Q4_1/Q5_1. */
AI void q0_decode(const int T, const uint8_t *b, int8x16_t *lo, int8x16_t *hi) {
    if (T == PL_TYPE_Q8_0) {
        *lo = vld1q_s8((const int8_t *)b + 2);
        *hi = vld1q_s8((const int8_t *)b + 18);
        return;
    }
    if (T == PL_TYPE_IQ4_NL) { /* signed codebook values, -127..113 */
        const uint8x16_t q = vld1q_u8(b + 2);
        *lo = vqtbl1q_s8(iq4_book(), vandq_u8(q, vdupq_n_u8(0x0f)));
        *hi = vqtbl1q_s8(iq4_book(), vshrq_n_u8(q, 4));
        return;
    }
    const int off = T == PL_TYPE_Q4_0 ? 2 : T == PL_TYPE_Q4_1 ? 4 : T == PL_TYPE_Q5_0 ? 6 : 8;
    const uint8x16_t q = vld1q_u8(b + off);
    uint8x16_t l = vandq_u8(q, vdupq_n_u8(0x0f)), h = vshrq_n_u8(q, 4);
    if (T == PL_TYPE_Q5_0 || T == PL_TYPE_Q5_1) {
        uint8x16_t b0, b1;
        bits32(b + off - 4, &b0, &b1);
        l = vorrq_u8(l, b0);
        h = vorrq_u8(h, b1);
    }
    *lo = vreinterpretq_s8_u8(l);
    *hi = vreinterpretq_s8_u8(h);
    if (T == PL_TYPE_Q4_0 || T == PL_TYPE_Q5_0) {
        const int8x16_t z = vdupq_n_s8(T == PL_TYPE_Q4_0 ? 8 : 16);
        *lo = vsubq_s8(*lo, z);
        *hi = vsubq_s8(*hi, z);
    }
}

/* The exact integer dot product of a row's block (lo, hi) with a column's
 * (x0, x1), spread over the four int32 lanes. Without SDOT the products
 * add in 16-bit lanes first: Q8_0's and IQ4_NL's weights reach 128 in
 * magnitude, so two products fit a lane (2 * 128 * 127); the other types'
 * reach 31, so all four of a lane do (activations are never -128). */
AI int32x4_t q0_dot(const int T, int8x16_t lo, int8x16_t hi, int8x16_t x0, int8x16_t x1) {
#ifdef PL_NEON_DOTPROD
    (void)T;
    return dot16(dot16(vdupq_n_s32(0), lo, x0), hi, x1);
#else
    int16x8_t a = vmlal_high_s8(vmull_s8(vget_low_s8(lo), vget_low_s8(x0)), lo, x0);
    if (T == PL_TYPE_Q8_0 || T == PL_TYPE_IQ4_NL) {
        const int16x8_t b = vmlal_high_s8(vmull_s8(vget_low_s8(hi), vget_low_s8(x1)), hi, x1);
        return vpadalq_s16(vpaddlq_s16(a), b);
    }
    a = vmlal_high_s8(vmlal_s8(a, vget_low_s8(hi), vget_low_s8(x1)), hi, x1);
    return vpaddlq_s16(a);
#endif
}

/* Lane r of the fp16 at offset off of row r's block (4 rows). */
AI float32x4_t q0_half4(const uint8_t *const *b, int off) {
    uint16x4_t h = vdup_n_u16(0);
    h = vld1_lane_u16((const uint16_t *)(const void *)(b[0] + off), h, 0);
    h = vld1_lane_u16((const uint16_t *)(const void *)(b[1] + off), h, 1);
    h = vld1_lane_u16((const uint16_t *)(const void *)(b[2] + off), h, 2);
    h = vld1_lane_u16((const uint16_t *)(const void *)(b[3] + off), h, 3);
    return vcvt_f32_f16(vreinterpret_f16_u16(h));
}

/* Four rows (lane r: row r; n < 4 rows: the last one read again, its lanes
 * not stored) x C columns: y[c][r] = row r . column c. Per block, each
 * lane's exact integer dot product, converted, times dw * dx, added in
 * block order (fused); the _1 types add mw * sx the same way apart. A
 * lane's arithmetic is its row's and column's alone, whatever the tile. */
AI void q0_tile(const int T, const int C, const uint8_t *w, size_t rb, int n, const uint8_t *xq, size_t xs,
                int nblk, float *y, size_t ys) {
    const int U = q0_unsigned(T);
    const size_t wbs = (size_t)q0_size(T), xbs = U ? sizeof(block_q8_1) : sizeof(block_q8_0);
    const uint8_t *row[4];
    UNROLL for (int r = 0; r < 4; r++) row[r] = w + (size_t)(r < n ? r : n - 1) * rb;
    float32x4_t acc[4], accm[4];
    UNROLL for (int c = 0; c < C; c++) acc[c] = accm[c] = vdupq_n_f32(0.0f);
    for (int i = 0; i < nblk; i++) {
        const uint8_t *b[4];
        int8x16_t lo[4], hi[4];
        UNROLL for (int r = 0; r < 4; r++) {
            b[r] = row[r] + (size_t)i * wbs;
            q0_decode(T, b[r], &lo[r], &hi[r]);
        }
        const float32x4_t dw = q0_half4(b, 0), mw = U ? q0_half4(b, 2) : vdupq_n_f32(0.0f);
        UNROLL for (int c = 0; c < C; c++) {
            const uint8_t *xb = xq + (size_t)c * xs + (size_t)i * xbs;
            const int8_t *x8 = (const int8_t *)xb + xbs - 32;
            const int8x16_t x0 = vld1q_s8(x8), x1 = vld1q_s8(x8 + 16);
            int32x4_t p[4];
            UNROLL for (int r = 0; r < 4; r++) p[r] = q0_dot(T, lo[r], hi[r], x0, x1);
            acc[c] = vfmaq_f32(acc[c], vcvtq_f32_s32(sum4(p[0], p[1], p[2], p[3])), vmulq_n_f32(dw, ldh(xb)));
            if (U) accm[c] = vfmaq_n_f32(accm[c], mw, ldh(xb + 2));
        }
    }
    UNROLL for (int c = 0; c < C; c++) {
        const float32x4_t v = U ? vaddq_f32(acc[c], accm[c]) : acc[c];
        float *o = y + (size_t)c * ys;
        if (n == 4) {
            vst1q_f32(o, v);
        } else {
            float t[4];
            vst1q_f32(t, v);
            for (int r = 0; r < n; r++) o[r] = t[r];
        }
    }
}

AI void q0_cols(const int T, const uint8_t *w, size_t rb, int n, const uint8_t *xq, size_t xs, int nblk, int nb,
                float *y, size_t ys) {
    int c = 0;
    for (; c + 4 <= nb; c += 4) q0_tile(T, 4, w, rb, n, xq + (size_t)c * xs, xs, nblk, y + (size_t)c * ys, ys);
    if (c + 2 <= nb) q0_tile(T, 2, w, rb, n, xq + (size_t)c * xs, xs, nblk, y + (size_t)c * ys, ys), c += 2;
    if (c < nb) q0_tile(T, 1, w, rb, n, xq + (size_t)c * xs, xs, nblk, y + (size_t)c * ys, ys);
}

AI void mm_q0(const int T, const uint8_t *w, size_t rb, int rows, int cols, const uint8_t *xq, size_t xs, int nb,
              float *y, size_t ys) {
    for (int r = 0; r < rows; r += 4)
        q0_cols(T, w + (size_t)r * rb, rb, rows - r < 4 ? rows - r : 4, xq, xs, cols / 32, nb, y + r, ys);
}

/* ---------------------------------------------------------------- K-quants, IQ4_XS
 * A super-block of 256 weights decodes to 16 vectors of 16 quants, vector v
 * holding weights 16v..16v+15 (so it lines up with qs + 16v of the Q8_K
 * activations): Q4_K/Q5_K unsigned 0..15/0..31 with sub-block v/2 (IQ4_XS
 * the same with signed codebook values, -127..113, and no mins); Q2_K
 * 0..3, Q3_K -4..3, Q6_K unsigned 0..63, each with sub-block v. Per column,
 * the 16 dot products reduce (pairwise adds) to one int32 per sub-block,
 * which multiplies its scale in int32; Q6_K's -32 offset and the mins of
 * Q2_K/Q4_K/Q5_K come from the activations' 16-weight sums (bsums). Integer
 * bounds: Q6_K's sum of scale * q * x is at most 256 * 128 * 63 * 127 < 2^31. */

typedef struct {
    int8x16_t q[16];
    int32x4_t sc[4];  /* scale of sub-block 4j + lane in sc[j] (Q4_K/Q5_K: sc[0], sc[1]) */
    int16x8_t s16[2]; /* Q6_K: the 16 scales as int16; Q4_K/Q5_K: s16[0] = the 8 mins */
    float d, dmin;
} kw_t;

/* Q4_K/Q5_K's 12 packed bytes -> 8 scales then 8 mins (6 bits each). */
static inline uint8x16_t k4_scales(const uint8_t *s) {
    uint32_t u[4];
    memcpy(u, s, 12);
    const uint32_t m1 = 0x3f3f3f3f, m2 = 0x0f0f0f0f, m3 = 0x03030303;
    u[3] = ((u[2] >> 4) & m2) | (((u[1] >> 6) & m3) << 4);
    const uint32_t t = u[1] & m1;
    u[1] = (u[2] & m2) | (((u[0] >> 6) & m3) << 4);
    u[2] = t;
    u[0] &= m1;
    return vreinterpretq_u8_u32(vld1q_u32(u));
}

/* Q3_K's 16 6-bit scales, minus 32. */
static inline int8x16_t q3_scales(const uint8_t *s) {
    int8_t sc[16];
    for (int j = 0; j < 16; j++) {
        const int lo = j < 8 ? (s[j] & 0xf) : (s[j - 8] >> 4);
        const int hi = (s[8 + j % 4] >> (2 * (j / 4))) & 3;
        sc[j] = (int8_t)((lo | (hi << 4)) - 32);
    }
    return vld1q_s8(sc);
}

/* 16 int8 scales -> o->sc[0..3] as int32. */
static inline void scales16(int8x16_t s8, kw_t *o) {
    const int16x8_t a = vmovl_s8(vget_low_s8(s8)), b = vmovl_high_s8(s8);
    o->sc[0] = vmovl_s16(vget_low_s16(a));
    o->sc[1] = vmovl_high_s16(a);
    o->sc[2] = vmovl_s16(vget_low_s16(b));
    o->sc[3] = vmovl_high_s16(b);
}

AI void kq_decode(const int T, const uint8_t *b, kw_t *o) {
    const uint8x16_t m4 = vdupq_n_u8(0x0f);
    if (T == PL_TYPE_Q2_K || T == PL_TYPE_Q3_K) {
        /* 2-bit planes: weight 128h + 32s + l at bits 2s of qs[32h + l] */
        const uint8_t *qs = b + (T == PL_TYPE_Q2_K ? 16 : 32);
        const uint8x16_t m3 = vdupq_n_u8(3);
        uint8x16_t hm[2] = {vdupq_n_u8(0), vdupq_n_u8(0)};
        if (T == PL_TYPE_Q3_K) {
            hm[0] = vld1q_u8(b);
            hm[1] = vld1q_u8(b + 16);
        }
        UNROLL for (int h = 0; h < 2; h++) UNROLL for (int k = 0; k < 2; k++) {
            uint8x16_t q2 = vld1q_u8(qs + 32 * h + 16 * k);
            UNROLL for (int s = 0; s < 4; s++) {
                int8x16_t v = vreinterpretq_s8_u8(vandq_u8(q2, m3));
                if (T == PL_TYPE_Q3_K) { /* - 4 unless bit 4h+s of hmask is set */
                    const uint8x16_t set = vtstq_u8(hm[k], vdupq_n_u8((uint8_t)(1u << (4 * h + s))));
                    v = vsubq_s8(v, vreinterpretq_s8_u8(vbicq_u8(vdupq_n_u8(4), set)));
                }
                o->q[8 * h + 2 * s + k] = v;
                q2 = vshrq_n_u8(q2, 2);
            }
        }
        if (T == PL_TYPE_Q2_K) {
            const block_q2_K *x = (const block_q2_K *)b;
            const uint8x16_t sc = vld1q_u8(x->scales); /* scale | min << 4 per sub-block */
            scales16(vreinterpretq_s8_u8(vandq_u8(sc, m4)), o);
            const uint8x16_t mn = vshrq_n_u8(sc, 4);
            o->s16[0] = vreinterpretq_s16_u16(vmovl_u8(vget_low_u8(mn)));
            o->s16[1] = vreinterpretq_s16_u16(vmovl_high_u8(mn));
            o->d = ldh(&x->d);
            o->dmin = ldh(&x->dmin);
        } else {
            const block_q3_K *x = (const block_q3_K *)b;
            scales16(q3_scales(x->scales), o);
            o->s16[0] = o->s16[1] = vdupq_n_s16(0);
            o->d = ldh(&x->d);
            o->dmin = 0.0f;
        }
        return;
    }
    if (T == PL_TYPE_Q6_K) {
        const block_q6_K *x = (const block_q6_K *)b;
        UNROLL for (int h = 0; h < 2; h++) UNROLL for (int l = 0; l < 2; l++) {
            const uint8x16_t l1 = vld1q_u8(x->ql + 64 * h + 16 * l), l2 = vld1q_u8(x->ql + 64 * h + 32 + 16 * l);
            const uint8x16_t hb = vld1q_u8(x->qh + 32 * h + 16 * l);
            int8x16_t *q = o->q + 8 * h + l; /* q[2k]: weights 32k + 16l .. of this half */
            q[0] = vreinterpretq_s8_u8(vorrq_u8(vandq_u8(l1, m4), vshlq_n_u8(vandq_u8(hb, vdupq_n_u8(0x03)), 4)));
            q[2] = vreinterpretq_s8_u8(vorrq_u8(vandq_u8(l2, m4), vshlq_n_u8(vandq_u8(hb, vdupq_n_u8(0x0c)), 2)));
            q[4] = vreinterpretq_s8_u8(vorrq_u8(vshrq_n_u8(l1, 4), vandq_u8(hb, vdupq_n_u8(0x30))));
            q[6] = vreinterpretq_s8_u8(vorrq_u8(vshrq_n_u8(l2, 4), vshrq_n_u8(vandq_u8(hb, vdupq_n_u8(0xc0)), 2)));
        }
        const int8x16_t s8 = vld1q_s8(x->scales);
        o->s16[0] = vmovl_s8(vget_low_s8(s8));
        o->s16[1] = vmovl_high_s8(s8);
        scales16(s8, o);
        o->d = ldh(&x->d);
        o->dmin = 0.0f;
        return;
    }
    if (T == PL_TYPE_IQ4_XS) { /* as Q4_K without mins: vectors 2s, 2s+1 are sub-block s */
        const block_iq4_xs *x = (const block_iq4_xs *)b;
        const int8x16_t book = iq4_book();
        UNROLL for (int s = 0; s < 8; s++) {
            const uint8x16_t v = vld1q_u8(x->qs + 16 * s); /* weights 32s + l (low), 32s + 16 + l (high) */
            o->q[2 * s] = vqtbl1q_s8(book, vandq_u8(v, m4));
            o->q[2 * s + 1] = vqtbl1q_s8(book, vshrq_n_u8(v, 4));
        }
        int32_t sc[8];
        for (int s = 0; s < 8; s++) sc[s] = pl_iq4xs_scale(x, s);
        o->sc[0] = vld1q_s32(sc);
        o->sc[1] = vld1q_s32(sc + 4);
        o->sc[2] = o->sc[3] = vdupq_n_s32(0);
        o->s16[0] = o->s16[1] = vdupq_n_s16(0);
        o->d = ldh(&x->d);
        o->dmin = 0.0f;
        return;
    }
    /* d, dmin, scales[12], [qh[32]], qs[128] */
    const uint8_t *qs = b + (T == PL_TYPE_Q5_K ? 48 : 16);
    uint8x16_t h0 = vdupq_n_u8(0), h1 = vdupq_n_u8(0);
    if (T == PL_TYPE_Q5_K) {
        h0 = vld1q_u8(b + 16);
        h1 = vld1q_u8(b + 32);
    }
    const uint8x16_t b4 = vdupq_n_u8(0x10);
    UNROLL for (int j = 0; j < 4; j++) {
        const uint8x16_t v0 = vld1q_u8(qs + 32 * j), v1 = vld1q_u8(qs + 32 * j + 16);
        uint8x16_t a0 = vandq_u8(v0, m4), a1 = vandq_u8(v1, m4), a2 = vshrq_n_u8(v0, 4), a3 = vshrq_n_u8(v1, 4);
        if (T == PL_TYPE_Q5_K) { /* bit 2j of qh for the low nibbles, 2j+1 for the high */
            a0 = vorrq_u8(a0, vandq_u8(vshlq_n_u8(h0, 4), b4));
            a1 = vorrq_u8(a1, vandq_u8(vshlq_n_u8(h1, 4), b4));
            a2 = vorrq_u8(a2, vandq_u8(vshlq_n_u8(h0, 3), b4));
            a3 = vorrq_u8(a3, vandq_u8(vshlq_n_u8(h1, 3), b4));
            h0 = vshrq_n_u8(h0, 2);
            h1 = vshrq_n_u8(h1, 2);
        }
        o->q[4 * j] = vreinterpretq_s8_u8(a0);
        o->q[4 * j + 1] = vreinterpretq_s8_u8(a1);
        o->q[4 * j + 2] = vreinterpretq_s8_u8(a2);
        o->q[4 * j + 3] = vreinterpretq_s8_u8(a3);
    }
    const uint8x16_t sm = k4_scales(b + 4);
    const uint16x8_t s16 = vmovl_u8(vget_low_u8(sm));
    o->sc[0] = vreinterpretq_s32_u32(vmovl_u16(vget_low_u16(s16)));
    o->sc[1] = vreinterpretq_s32_u32(vmovl_high_u16(s16));
    o->sc[2] = o->sc[3] = vdupq_n_s32(0);
    o->s16[0] = vreinterpretq_s16_u16(vmovl_high_u8(sm));
    o->s16[1] = vdupq_n_s16(0);
    o->d = ldh(b);
    o->dmin = ldh(b + 2);
}

/* For columns c < C of one super-block: acc[c] += (float)(sum of scale *
 * q * x) * (d * dx), accm[c] += (float)(sum of min * bsum) * (dmin * dx),
 * each step one fused multiply-add, the result acc - accm. The sums run in
 * int32 lanes (lane j: sub-blocks j, j + 4, ..). At the neon level each
 * lane takes its own float steps and the lanes are added at the end
 * (vaddvq_f32); with SDOT the float steps take each sum's exact int32
 * total, which mm_k8's interleaved rows form in their lanes too (llvm-mca,
 * A76, cycles per 256 weights per column: one column of Q4_K 51 -> 58 and
 * Q6_K 67 -> 70, prefill 41 -> 22 and 60 -> 29 with mm_k8). */
#ifdef PL_NEON_DOTPROD
typedef float kacc_t;
#define KACC_ZERO 0.0f
AI kacc_t kacc_step(kacc_t a, int32x4_t s, float m) { return fmaf((float)vaddvq_s32(s), m, a); }
AI float kacc_total(kacc_t a) { return a; }
#else
typedef float32x4_t kacc_t;
#define KACC_ZERO vdupq_n_f32(0.0f)
AI kacc_t kacc_step(kacc_t a, int32x4_t s, float m) { return vfmaq_n_f32(a, vcvtq_f32_s32(s), m); }
AI float kacc_total(kacc_t a) { return vaddvq_f32(a); }
#endif

AI void kq_cols(const int T, const int C, const kw_t *w, const block_q8_K *const *x, kacc_t *acc, kacc_t *accm) {
    const int32x4_t zero = vdupq_n_s32(0);
    UNROLL for (int c = 0; c < C; c++) {
        const int8_t *x8 = x[c]->qs;
        const int16x8_t bs0 = vld1q_s16(x[c]->bsums), bs1 = vld1q_s16(x[c]->bsums + 8);
        int32x4_t p[16], isum;
        if (T != PL_TYPE_Q4_K && T != PL_TYPE_Q5_K && T != PL_TYPE_IQ4_XS) { /* 16 sub-blocks of 16 */
            UNROLL for (int v = 0; v < 16; v++) p[v] = dot16(zero, w->q[v], vld1q_s8(x8 + 16 * v));
            isum = vmulq_s32(sum4(p[0], p[1], p[2], p[3]), w->sc[0]);
            isum = vmlaq_s32(isum, sum4(p[4], p[5], p[6], p[7]), w->sc[1]);
            isum = vmlaq_s32(isum, sum4(p[8], p[9], p[10], p[11]), w->sc[2]);
            isum = vmlaq_s32(isum, sum4(p[12], p[13], p[14], p[15]), w->sc[3]);
            if (T != PL_TYPE_Q3_K) { /* sum(s16 * bsum): Q6_K's scales, Q2_K's mins */
                int32x4_t m = vmull_s16(vget_low_s16(bs0), vget_low_s16(w->s16[0]));
                m = vmlal_high_s16(m, bs0, w->s16[0]);
                m = vmlal_s16(m, vget_low_s16(bs1), vget_low_s16(w->s16[1]));
                m = vmlal_high_s16(m, bs1, w->s16[1]);
                if (T == PL_TYPE_Q6_K)
                    isum = vsubq_s32(isum, vshlq_n_s32(m, 5)); /* q - 32 */
                else
                    accm[c] = kacc_step(accm[c], m, w->dmin * x[c]->d);
            }
        } else {
            UNROLL for (int s = 0; s < 8; s++) p[s] =
                dot16(dot16(zero, w->q[2 * s], vld1q_s8(x8 + 32 * s)), w->q[2 * s + 1], vld1q_s8(x8 + 32 * s + 16));
            isum = vmulq_s32(sum4(p[0], p[1], p[2], p[3]), w->sc[0]);
            isum = vmlaq_s32(isum, sum4(p[4], p[5], p[6], p[7]), w->sc[1]);
            if (T != PL_TYPE_IQ4_XS) { /* the mins */
                const int16x8_t bs = vpaddq_s16(bs0, bs1); /* sums of the 8 sub-blocks of 32 */
                int32x4_t m = vmull_s16(vget_low_s16(bs), vget_low_s16(w->s16[0]));
                m = vmlal_high_s16(m, bs, w->s16[0]);
                accm[c] = kacc_step(accm[c], m, w->dmin * x[c]->d);
            }
        }
        acc[c] = kacc_step(acc[c], isum, w->d * x[c]->d);
    }
}

AI size_t kq_size(const int T) {
    return T == PL_TYPE_Q2_K   ? sizeof(block_q2_K)
           : T == PL_TYPE_Q3_K ? sizeof(block_q3_K)
           : T == PL_TYPE_Q4_K ? sizeof(block_q4_K)
           : T == PL_TYPE_Q5_K ? sizeof(block_q5_K)
           : T == PL_TYPE_Q6_K ? sizeof(block_q6_K)
                               : sizeof(block_iq4_xs);
}

AI int kq_has_mins(const int T) { return T == PL_TYPE_Q2_K || T == PL_TYPE_Q4_K || T == PL_TYPE_Q5_K; }

/* One weight row against C columns; each super-block decoded once. */
AI void kq_tile(const int T, const int C, const uint8_t *row, const uint8_t *xq, size_t xs, int nsb, float *y,
                size_t ys) {
    const size_t bs = kq_size(T);
    kacc_t acc[4], accm[4];
    UNROLL for (int c = 0; c < C; c++) acc[c] = accm[c] = KACC_ZERO;
    for (int i = 0; i < nsb; i++) {
        kw_t w;
        kq_decode(T, row + (size_t)i * bs, &w);
        const block_q8_K *x[4];
        UNROLL for (int c = 0; c < C; c++) x[c] = (const block_q8_K *)(xq + (size_t)c * xs) + i;
        kq_cols(T, C, &w, x, acc, accm);
    }
    UNROLL for (int c = 0; c < C; c++) y[(size_t)c * ys] = kacc_total(acc[c]) - kacc_total(accm[c]);
}

#ifdef PL_NEON_DOTPROD
/* ---------------------------------------------------------------- K-quants, many columns (SDOT)
 * Eight rows at a time, a row per 32-bit lane: each super-block of the
 * eight is decoded once (kq_decode) and interleaved, so that one
 * vdotq_laneq_s32 multiplies four weights of four rows by the same four
 * activations; the lanes then hold the rows' sub-block sums with no
 * pairwise adds, their scales (interleaved the same way) apply in int32,
 * and the float steps run four rows per instruction. The integers are the
 * exact totals kq_cols forms and the float steps its steps, lane by lane,
 * so a column's result is the same whatever tile computed it. */

/* q[v][h][g]: weights 16v + 4g .. + 3 of rows 4h .. 4h+3, one per lane;
 * sc, mn: the scale and the min of sub-block s for those rows. */
typedef struct {
    int8x16_t q[16][2][4];
    int32x4_t sc[16][2], mn[16][2];
    float32x4_t d[2], dmin[2];
} k8_t;

/* o[j] lane i = a[i] lane j. */
AI void tr4_s32(int32x4_t a0, int32x4_t a1, int32x4_t a2, int32x4_t a3, int32x4_t *o) {
    const int64x2_t t0 = vreinterpretq_s64_s32(vtrn1q_s32(a0, a1)), t1 = vreinterpretq_s64_s32(vtrn2q_s32(a0, a1));
    const int64x2_t t2 = vreinterpretq_s64_s32(vtrn1q_s32(a2, a3)), t3 = vreinterpretq_s64_s32(vtrn2q_s32(a2, a3));
    o[0] = vreinterpretq_s32_s64(vtrn1q_s64(t0, t2));
    o[1] = vreinterpretq_s32_s64(vtrn1q_s64(t1, t3));
    o[2] = vreinterpretq_s32_s64(vtrn2q_s64(t0, t2));
    o[3] = vreinterpretq_s32_s64(vtrn2q_s64(t1, t3));
}

AI int k8_long(const int T) { return T == PL_TYPE_Q4_K || T == PL_TYPE_Q5_K || T == PL_TYPE_IQ4_XS; }

/* The super-blocks at b, b + rb, .. b + 7 rb, interleaved. Its loops and
 * k8_cols's stay rolled: written out for six types they took 110 KB. */
AI void k8_fill(const int T, const uint8_t *b, size_t rb, k8_t *o) {
    const int nsub = k8_long(T) ? 8 : 16;
    for (int h = 0; h < 2; h++) {
        kw_t w[4];
        float d[4], dm[4];
        for (int r = 0; r < 4; r++) {
            kq_decode(T, b + (size_t)(4 * h + r) * rb, &w[r]);
            d[r] = w[r].d, dm[r] = w[r].dmin;
        }
        o->d[h] = vld1q_f32(d);
        o->dmin[h] = vld1q_f32(dm);
        for (int v = 0; v < 16; v++) {
            int32x4_t t[4];
            tr4_s32(vreinterpretq_s32_s8(w[0].q[v]), vreinterpretq_s32_s8(w[1].q[v]), vreinterpretq_s32_s8(w[2].q[v]),
                    vreinterpretq_s32_s8(w[3].q[v]), t);
            UNROLL for (int g = 0; g < 4; g++) o->q[v][h][g] = vreinterpretq_s8_s32(t[g]);
        }
        for (int j = 0; j < nsub / 4; j++) {
            int32x4_t t[4];
            tr4_s32(w[0].sc[j], w[1].sc[j], w[2].sc[j], w[3].sc[j], t);
            UNROLL for (int l = 0; l < 4; l++) o->sc[4 * j + l][h] = t[l];
            if (kq_has_mins(T)) { /* the mins, int16 in s16[j / 2] */
                int32x4_t m[4];
                UNROLL for (int r = 0; r < 4; r++) m[r] =
                    j % 2 ? vmovl_high_s16(w[r].s16[j / 2]) : vmovl_s16(vget_low_s16(w[r].s16[j / 2]));
                tr4_s32(m[0], m[1], m[2], m[3], t);
                UNROLL for (int l = 0; l < 4; l++) o->mn[4 * j + l][h] = t[l];
            }
        }
    }
}

/* S + the products of four rows' vector v (its four groups) with x. */
AI int32x4_t k8_dot(int32x4_t S, const int8x16_t *q, int8x16_t x) {
    S = vdotq_laneq_s32(S, q[0], x, 0);
    S = vdotq_laneq_s32(S, q[1], x, 1);
    S = vdotq_laneq_s32(S, q[2], x, 2);
    return vdotq_laneq_s32(S, q[3], x, 3);
}

/* Rows 4h .. 4h+3 of w against columns x[c], c < C: kq_cols's totals and
 * float steps, a row per lane. */
AI void k8_cols(const int T, const int C, const k8_t *w, int h, const block_q8_K *const *x, float32x4_t *acc,
                float32x4_t *accm) {
    const int L = k8_long(T), nsub = L ? 8 : 16;
    int32_t bs[4][16]; /* the activations' sums per sub-block */
    UNROLL for (int c = 0; c < C; c++) {
        if (L)
            for (int s = 0; s < 8; s++) bs[c][s] = x[c]->bsums[2 * s] + x[c]->bsums[2 * s + 1];
        else
            for (int s = 0; s < 16; s++) bs[c][s] = x[c]->bsums[s];
    }
    int32x4_t Tv[4], Mv[4];
    UNROLL for (int c = 0; c < C; c++) Tv[c] = Mv[c] = vdupq_n_s32(0);
    for (int s = 0; s < nsub; s++) {
        UNROLL for (int c = 0; c < C; c++) {
            int32x4_t S;
            if (L) {
                S = k8_dot(vdupq_n_s32(0), w->q[2 * s][h], vld1q_s8(x[c]->qs + 32 * s));
                S = k8_dot(S, w->q[2 * s + 1][h], vld1q_s8(x[c]->qs + 32 * s + 16));
            } else {
                S = k8_dot(vdupq_n_s32(0), w->q[s][h], vld1q_s8(x[c]->qs + 16 * s));
            }
            Tv[c] = vmlaq_s32(Tv[c], S, w->sc[s][h]);
            if (kq_has_mins(T)) Mv[c] = vmlaq_n_s32(Mv[c], w->mn[s][h], bs[c][s]);
            if (T == PL_TYPE_Q6_K) Mv[c] = vmlaq_n_s32(Mv[c], w->sc[s][h], bs[c][s]);
        }
    }
    UNROLL for (int c = 0; c < C; c++) {
        if (T == PL_TYPE_Q6_K) Tv[c] = vsubq_s32(Tv[c], vshlq_n_s32(Mv[c], 5)); /* q - 32 */
        if (kq_has_mins(T)) accm[c] = vfmaq_f32(accm[c], vcvtq_f32_s32(Mv[c]), vmulq_n_f32(w->dmin[h], x[c]->d));
        acc[c] = vfmaq_f32(acc[c], vcvtq_f32_s32(Tv[c]), vmulq_n_f32(w->d[h], x[c]->d));
    }
}

#define K8_COLS 32 /* columns per pass over a row group's super-blocks (a batch's chunk) */

/* Rows r0 .. r0+7 (of w) against every column. */
AI void k8_rows(const int T, const uint8_t *w, size_t rb, int nsb, const uint8_t *xq, size_t xs, int nb, float *y,
                size_t ys) {
    const size_t bs = kq_size(T);
    for (int c0 = 0; c0 < nb; c0 += K8_COLS) {
        const int n = nb - c0 < K8_COLS ? nb - c0 : K8_COLS;
        float32x4_t acc[2][K8_COLS], accm[2][K8_COLS];
        for (int c = 0; c < n; c++) acc[0][c] = acc[1][c] = accm[0][c] = accm[1][c] = vdupq_n_f32(0.0f);
        for (int i = 0; i < nsb; i++) {
            k8_t wt;
            k8_fill(T, w + (size_t)i * bs, rb, &wt);
            const block_q8_K *x[K8_COLS];
            for (int c = 0; c < n; c++) x[c] = (const block_q8_K *)(xq + (size_t)(c0 + c) * xs) + i;
            UNROLL for (int h = 0; h < 2; h++) {
                int c = 0;
                for (; c + 4 <= n; c += 4) k8_cols(T, 4, &wt, h, x + c, acc[h] + c, accm[h] + c);
                for (; c < n; c++) k8_cols(T, 1, &wt, h, x + c, acc[h] + c, accm[h] + c);
            }
        }
        for (int c = 0; c < n; c++) UNROLL for (int h = 0; h < 2; h++)
            vst1q_f32(y + (size_t)(c0 + c) * ys + 4 * h, vsubq_f32(acc[h][c], accm[h][c]));
    }
}

#ifndef K8_MIN
#define K8_MIN 4 /* columns from which eight rows go interleaved */
#endif
#endif /* PL_NEON_DOTPROD */

AI void mm_kq(const int T, const uint8_t *w, size_t rb, int rows, int cols, const uint8_t *xq, size_t xs, int nb,
              float *y, size_t ys) {
    const int nsb = cols / QK_K;
    int r0 = 0;
#ifdef PL_NEON_DOTPROD
    if (nb >= K8_MIN)
        for (; r0 + 8 <= rows; r0 += 8) k8_rows(T, w + (size_t)r0 * rb, rb, nsb, xq, xs, nb, y + r0, ys);
#endif
    for (int r = r0; r < rows; r++) {
        const uint8_t *row = w + (size_t)r * rb;
        int c = 0;
        for (; c + 4 <= nb; c += 4) kq_tile(T, 4, row, xq + (size_t)c * xs, xs, nsb, y + (size_t)c * ys + r, ys);
        switch (nb - c) {
        case 3: kq_tile(T, 3, row, xq + (size_t)c * xs, xs, nsb, y + (size_t)c * ys + r, ys); break;
        case 2: kq_tile(T, 2, row, xq + (size_t)c * xs, xs, nsb, y + (size_t)c * ys + r, ys); break;
        case 1: kq_tile(T, 1, row, xq + (size_t)c * xs, xs, nsb, y + (size_t)c * ys + r, ys); break;
        default: break;
        }
    }
}

/* ---------------------------------------------------------------- dispatch */

#ifdef PL_NEON_DOTPROD
#define MATMUL matmul_neon_dotprod
#else
#define MATMUL matmul_neon
#endif

static void MATMUL(uint32_t type, const void *w, size_t row_bytes, int rows, int cols, const void *xq,
                   size_t xq_stride, int nb, float *y, size_t y_stride) {
    const uint8_t *W = (const uint8_t *)w, *X = (const uint8_t *)xq;
    switch (type) {
    case PL_TYPE_Q4_0: mm_q0(PL_TYPE_Q4_0, W, row_bytes, rows, cols, X, xq_stride, nb, y, y_stride); return;
    case PL_TYPE_Q4_1: mm_q0(PL_TYPE_Q4_1, W, row_bytes, rows, cols, X, xq_stride, nb, y, y_stride); return;
    case PL_TYPE_Q5_0: mm_q0(PL_TYPE_Q5_0, W, row_bytes, rows, cols, X, xq_stride, nb, y, y_stride); return;
    case PL_TYPE_Q5_1: mm_q0(PL_TYPE_Q5_1, W, row_bytes, rows, cols, X, xq_stride, nb, y, y_stride); return;
    case PL_TYPE_Q8_0: mm_q0(PL_TYPE_Q8_0, W, row_bytes, rows, cols, X, xq_stride, nb, y, y_stride); return;
    case PL_TYPE_Q2_K: mm_kq(PL_TYPE_Q2_K, W, row_bytes, rows, cols, X, xq_stride, nb, y, y_stride); return;
    case PL_TYPE_Q3_K: mm_kq(PL_TYPE_Q3_K, W, row_bytes, rows, cols, X, xq_stride, nb, y, y_stride); return;
    case PL_TYPE_Q4_K: mm_kq(PL_TYPE_Q4_K, W, row_bytes, rows, cols, X, xq_stride, nb, y, y_stride); return;
    case PL_TYPE_Q5_K: mm_kq(PL_TYPE_Q5_K, W, row_bytes, rows, cols, X, xq_stride, nb, y, y_stride); return;
    case PL_TYPE_Q6_K: mm_kq(PL_TYPE_Q6_K, W, row_bytes, rows, cols, X, xq_stride, nb, y, y_stride); return;
    case PL_TYPE_IQ4_NL: mm_q0(PL_TYPE_IQ4_NL, W, row_bytes, rows, cols, X, xq_stride, nb, y, y_stride); return;
    case PL_TYPE_IQ4_XS: mm_kq(PL_TYPE_IQ4_XS, W, row_bytes, rows, cols, X, xq_stride, nb, y, y_stride); return;
    default: pl_neon_matmul_float(type, w, row_bytes, rows, cols, xq, xq_stride, nb, y, y_stride); return;
    }
}

#ifdef PL_NEON_DOTPROD
const pl_kernels_t pl_kernels_dotprod = {"neon-dotprod", pl_neon_quantize,   matmul_neon_dotprod,
                                         pl_neon_attn,   pl_neon_f32_to_f16, pl_swiglu_generic};
#else
const pl_kernels_t pl_kernels_neon = {"neon",       pl_neon_quantize,   matmul_neon,
                                      pl_neon_attn, pl_neon_f32_to_f16, pl_swiglu_generic};
#endif

#else
typedef int pl_arm_neon_unused; /* empty translation unit on other CPUs */
#endif
