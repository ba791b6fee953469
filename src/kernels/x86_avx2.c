/* x86_avx2.c - the AVX2 + FMA + F16C level (x86-64). Built with
 * -mavx2 -mfma -mf16c; only called after cpu.c has checked the CPU.
 *
 * quantize: Q8_0 / Q8_1 / Q8_K activations, byte-identical to quant.c's
 * from_float_act (ggml's x86 build). matmul, every weight type:
 *  - generation (nb = 1) streams each weight row once: integer block dots
 *    (maddubs/madd) in ggml's style, several rows per pass sharing the
 *    activation loads (Q4_K/Q5_K three, Q6_K two, IQ4_XS and the 32-weight
 *    formats two, F32/F16/BF16 four); the K-quants also prefetch in
 *    software (see prefetch_to; Q4_K runs at ~17 GB/s from memory on one
 *    Zen 3 core); IQ4_NL/IQ4_XS look their codebook up with pshufb, and
 *    IQ4_NL scales four blocks with one FMA (see q0s_rows); the K-quants'
 *    and IQ4_XS's one-column kernels give mm_kq's results bit for bit;
 *  - a few columns (a server's streams, speculative drafts: up to
 *    kx_max) decode each K-quant super-block once, in mm_kq's layout, for
 *    all of them (few_kx);
 *  - prefill (nb > 1) decodes each weight block once per call and reuses it
 *    against every column while it sits in registers/L1. The K-quants
 *    decode 3-4 rows at a time against up to 32 columns whose activations,
 *    prepared once per call, stay in L2 for whole rows, so each output is
 *    written once and the weights stream row by row (IQ4_XS too). The
 *    decoded super-block is rearranged, and the activations the same way,
 *    so that the products of 2 (Q6_K), 4 (Q5_K) or all 8 (Q4_K) vectors
 *    add up in 16-bit lanes before one madd applies their scales: ~155
 *    GFLOP/s per Zen 3 core for Q4_K, ~145 for Q6_K. The 32-weight formats
 *    (IQ4_NL too) take 2x2 tiles of rows and columns.
 * x86_avx512.c builds this file again with PL_VNNI: the Q4_K, Q6_K and
 * IQ4_XS prefill tiles then take vpdpbusd (the same integers, bit for bit),
 * and the avx512-wide level adds Q4_K's and Q6_K's prefill in 512-bit
 * tiles, two columns a vector (mm_kq_w). Both AVX-512 levels run one
 * column of Q4_K and Q6_K two rows a 512-bit vector (mv1_kx) and the
 * softmax's exp on 8 doubles a vector (exp8), bit for bit as ever.
 * Activation blocks with a NaN or Inf quantize as quant.c says (d NaN).
 * The integer sums are exact; only the float accumulation order differs
 * from the scalar reference (tests/test_kernels.c bounds the difference). */
#if defined(__x86_64__) || defined(_M_X64)
#include <float.h>
#include <immintrin.h>
#include <math.h>
#include <stdint.h>
#include <string.h>
#ifdef _MSC_VER
#include <intrin.h>
#else
#include <x86intrin.h>
#endif

#include "expf.h"
#include "kernels.h"

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
#define NOINLINE __attribute__((noinline))
#else
#define AI static inline
#define UNROLL
#define NOINLINE
#endif
/* An asm operand in any vector register: AVX-512VL has 32, "x" names only
 * the first 16 */
#ifdef __AVX512VL__
#define VR(v) "v"(v)
#else
#define VR(v) "x"(v)
#endif

/* ---------------------------------------------------------------- helpers */

static inline float hsum(__m256 v) {
    __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    s = _mm_add_ps(s, _mm_movehl_ps(s, s));
    s = _mm_add_ss(s, _mm_movehdup_ps(s));
    return _mm_cvtss_f32(s);
}

static inline int hsum_i32(__m256i v) {
    __m128i s = _mm_add_epi32(_mm256_castsi256_si128(v), _mm256_extracti128_si256(v, 1));
    s = _mm_add_epi32(s, _mm_shuffle_epi32(s, 0x4e));
    s = _mm_add_epi32(s, _mm_shuffle_epi32(s, 0xb1));
    return _mm_cvtsi128_si32(s);
}

static inline float hmax(__m256 v) {
    __m128 m = _mm_max_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    m = _mm_max_ps(m, _mm_movehl_ps(m, m));
    m = _mm_max_ss(m, _mm_movehdup_ps(m));
    return _mm_cvtss_f32(m);
}

/* fp16 at a possibly unaligned address; F16C conversion is exact. */
static inline float ldh(const void *p) {
    pl_half h;
    memcpy(&h, p, sizeof h);
    return _cvtsh_ss(h);
}

static inline void sth(void *p, float f) {
    const pl_half h = (pl_half)_cvtss_sh(f, _MM_FROUND_TO_NEAREST_INT);
    memcpy(p, &h, sizeof h);
}

static inline __m256i ld256(const void *p) { return _mm256_loadu_si256((const __m256i *)p); }
static inline __m128i ld128(const void *p) { return _mm_loadu_si128((const __m128i *)p); }

/* 16 bytes of nibbles -> 32 bytes: the low nibbles, then the high ones. */
static inline __m256i nib32(const uint8_t *p) {
    const __m128i t = ld128(p);
    return _mm256_and_si256(_mm256_set_m128i(_mm_srli_epi16(t, 4), t), _mm256_set1_epi8(0x0f));
}

/* 32 bits (little-endian) -> 32 bytes, 0xff where the bit is set. */
static inline __m256i bits32(const uint8_t *p) {
    uint32_t x;
    memcpy(&x, p, 4);
    const __m256i shuf = _mm256_setr_epi64x(0, 0x0101010101010101, 0x0202020202020202, 0x0303030303030303);
    __m256i v = _mm256_shuffle_epi8(_mm256_set1_epi32((int)x), shuf);
    v = _mm256_or_si256(v, _mm256_set1_epi64x(0x7fbfdfeff7fbfdfe));
    return _mm256_cmpeq_epi8(v, _mm256_set1_epi64x(-1));
}

/* Four vectors of 8 int32 -> 32 int8 in order (saturating). */
static inline __m256i pack_i8(__m256i a, __m256i b, __m256i c, __m256i d) {
    a = _mm256_packs_epi32(a, b);
    c = _mm256_packs_epi32(c, d);
    a = _mm256_packs_epi16(a, c);
    return _mm256_permutevar8x32_epi32(a, _mm256_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7));
}

/* A shuffle mask that broadcasts 16-bit word 2k to the low 128-bit lane and
 * word 2k+1 to the high one. */
static inline __m256i word_pair_mask(int k) {
    const short lo = (short)(((4 * k + 1) << 8) | (4 * k)), hi = (short)(((4 * k + 3) << 8) | (4 * k + 2));
    return _mm256_set_m128i(_mm_set1_epi16(hi), _mm_set1_epi16(lo));
}

#ifdef PL_VNNI
#ifdef PL_VNNI_EMULATE
/* _mm256_dpbusd_epi32 in AVX2, exact (tests of the avx512 level's code on
 * CPUs without VNNI): acc + per 32-bit lane the four products of unsigned
 * bytes of a with signed bytes of b. */
static inline __m256i dpbusd(__m256i acc, __m256i a, __m256i b) {
    const __m256i z = _mm256_setzero_si256();
    const __m256i lo = _mm256_madd_epi16(_mm256_unpacklo_epi8(a, z), _mm256_srai_epi16(_mm256_unpacklo_epi8(b, b), 8));
    const __m256i hi = _mm256_madd_epi16(_mm256_unpackhi_epi8(a, z), _mm256_srai_epi16(_mm256_unpackhi_epi8(b, b), 8));
    return _mm256_add_epi32(acc, _mm256_hadd_epi32(lo, hi));
}
/* _mm256_dpwssd_epi32 likewise: acc + the two products of each 32-bit lane's signed words. */
static inline __m256i dpwssd(__m256i acc, __m256i a, __m256i b) {
    return _mm256_add_epi32(acc, _mm256_madd_epi16(a, b));
}
#else
#define dpbusd(acc, a, b) _mm256_dpbusd_epi32(acc, a, b)
#define dpwssd(acc, a, b) _mm256_dpwssd_epi32(acc, a, b)
#endif
#endif

/* ---------------------------------------------------------------- quantize */

/* ggml's x86 quantize_row_q8_0/q8_1: d = amax/127, q = round-to-even(x *
 * 127/amax); Q8_1 adds s = fp16(d * sum q). */
/* A mask of the lanes of |v| that are not finite (Inf, or NaN: unordered). */
static inline __m256 nonfinite(__m256 av) { return _mm256_cmp_ps(av, _mm256_set1_ps(FLT_MAX), _CMP_NLE_UQ); }

static void quantize_q8_01(const float *x, uint8_t *out, int nblk, int with_s) {
    const size_t bs = with_s ? sizeof(block_q8_1) : sizeof(block_q8_0);
    const __m256 sign = _mm256_set1_ps(-0.0f);
    for (int i = 0; i < nblk; i++, x += 32, out += bs) {
        __m256 v[4], m = _mm256_setzero_ps(), bad = _mm256_setzero_ps();
        for (int k = 0; k < 4; k++) {
            v[k] = _mm256_loadu_ps(x + 8 * k);
            const __m256 a = _mm256_andnot_ps(sign, v[k]);
            m = _mm256_max_ps(m, a);
            bad = _mm256_or_ps(bad, nonfinite(a));
        }
        if (_mm256_movemask_ps(bad)) { /* NaN/Inf: quant.c's rule (d NaN, zero quants) */
            memset(out + (with_s ? 4 : 2), 0, 32);
            sth(out, NAN);
            if (with_s) sth(out + 2, NAN);
            continue;
        }
        const float amax = hmax(m);
        const float d = amax / 127;
        const __m256 id = _mm256_set1_ps(pl_act_inv_scale(127, amax));
        __m256i q[4];
        for (int k = 0; k < 4; k++)
            q[k] = _mm256_cvtps_epi32(
                _mm256_round_ps(_mm256_mul_ps(v[k], id), _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC));
        _mm256_storeu_si256((__m256i *)(out + (with_s ? 4 : 2)), pack_i8(q[0], q[1], q[2], q[3]));
        sth(out, d);
        if (with_s) {
            const int sum = hsum_i32(_mm256_add_epi32(_mm256_add_epi32(q[0], q[1]), _mm256_add_epi32(q[2], q[3])));
            sth(out + 2, d * (float)sum);
        }
    }
}

/* ggml's quantize_row_q8_K_ref: the signed extreme (first of equal
 * magnitudes) maps to -127, q = nearest-even(iscale * x), 16-weight sums. */
static void quantize_q8_K(const float *x, block_q8_K *y, int nblk) {
    const __m256 sign = _mm256_set1_ps(-0.0f);
    const __m256i lim = _mm256_set1_epi32(127), nlim = _mm256_set1_epi32(-127);
    const __m256i one8 = _mm256_set1_epi8(1), one16 = _mm256_set1_epi16(1);
    for (int i = 0; i < nblk; i++, x += QK_K) {
        __m256 m = _mm256_setzero_ps(), bad = _mm256_setzero_ps();
        for (int k = 0; k < QK_K / 8; k++) {
            const __m256 a = _mm256_andnot_ps(sign, _mm256_loadu_ps(x + 8 * k));
            m = _mm256_max_ps(m, a);
            bad = _mm256_or_ps(bad, nonfinite(a));
        }
        if (_mm256_movemask_ps(bad)) { /* NaN/Inf: quant.c's rule (d NaN, zero quants) */
            memset(&y[i], 0, sizeof y[i]);
            y[i].d = NAN;
            continue;
        }
        /* all finite, so amax is one of the |x| (the search stops inside
         * the block; bounded anyway) */
        const float amax = hmax(m);
        const __m256 av = _mm256_set1_ps(amax);
        int j = 0;
        for (int k = 0; k < QK_K / 8; k++) { /* the first |x| == amax, 8 at a time */
            const int hit = _mm256_movemask_ps(
                _mm256_cmp_ps(_mm256_andnot_ps(sign, _mm256_loadu_ps(x + 8 * k)), av, _CMP_EQ_OQ));
            if (hit) {
                j = 8 * k + __builtin_ctz((unsigned)hit);
                break;
            }
        }
        const float iscale = amax != 0 ? -127 / x[j] : 0.0f;
        if (!(iscale != 0 && fabsf(iscale) <= FLT_MAX)) { /* zero, or 127/amax overflows: quant.c's rule */
            memset(&y[i], 0, sizeof y[i]);
            continue;
        }
        const __m256 mul = _mm256_set1_ps(iscale);
        __m256i s[8];
        for (int k = 0; k < 8; k++) {
            __m256i q[4];
            for (int l = 0; l < 4; l++) {
                __m256i t = _mm256_cvtps_epi32(_mm256_mul_ps(_mm256_loadu_ps(x + 32 * k + 8 * l), mul));
                q[l] = _mm256_max_epi32(_mm256_min_epi32(t, lim), nlim);
            }
            const __m256i b = pack_i8(q[0], q[1], q[2], q[3]);
            _mm256_storeu_si256((__m256i *)(y[i].qs + 32 * k), b);
            s[k] = _mm256_madd_epi16(_mm256_maddubs_epi16(one8, b), one16); /* 4-byte sums */
        }
        /* s[k] lanes 0-3 are group 2k, lanes 4-7 group 2k+1 */
        const __m256i perm = _mm256_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7);
        __m256i g0 = _mm256_hadd_epi32(_mm256_hadd_epi32(s[0], s[1]), _mm256_hadd_epi32(s[2], s[3]));
        __m256i g1 = _mm256_hadd_epi32(_mm256_hadd_epi32(s[4], s[5]), _mm256_hadd_epi32(s[6], s[7]));
        g0 = _mm256_permutevar8x32_epi32(g0, perm);
        g1 = _mm256_permutevar8x32_epi32(g1, perm);
        _mm256_storeu_si256((__m256i *)y[i].bsums, _mm256_permute4x64_epi64(_mm256_packs_epi32(g0, g1), 0xd8));
        y[i].d = 1 / iscale;
    }
}

static void quantize_avx2(uint32_t act_type, const float *x, void *xq, int n) {
    switch (act_type) {
    case PL_TYPE_Q8_0: quantize_q8_01(x, xq, n / QK8_0, 0); return;
    case PL_TYPE_Q8_1: quantize_q8_01(x, xq, n / QK8_1, 1); return;
    case PL_TYPE_Q8_K: quantize_q8_K(x, xq, n / QK_K); return;
    default: pl_quantize_generic(act_type, x, xq, n); return;
    }
}

/* ---------------------------------------------------------------- F32 F16 BF16
 * Float activations. R rows x C columns of 8-wide FMA accumulators. */

AI __m256 load_w8(const int T, const uint8_t *row, int k) {
    if (T == PL_TYPE_F32) return _mm256_loadu_ps((const float *)row + k);
    if (T == PL_TYPE_F16) return _mm256_cvtph_ps(ld128((const pl_half *)row + k));
    return _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_cvtepu16_epi32(ld128((const uint16_t *)row + k)), 16));
}

AI float load_w1(const int T, const uint8_t *row, int k) {
    if (T == PL_TYPE_F32) {
        float f;
        memcpy(&f, row + 4 * (size_t)k, 4);
        return f;
    }
    uint16_t h;
    memcpy(&h, row + 2 * (size_t)k, 2);
    return T == PL_TYPE_F16 ? _cvtsh_ss(h) : pl_bf16_to_float(h);
}

AI void f_tile(const int T, const int R, const int C, const uint8_t *w, size_t rb, const float *x, size_t xs, int n,
               float *y, size_t ys) {
    __m256 acc[4][2];
    UNROLL for (int r = 0; r < R; r++) UNROLL for (int c = 0; c < C; c++) acc[r][c] = _mm256_setzero_ps();
    int k = 0;
    for (; k + 8 <= n; k += 8) {
        __m256 wv[4];
        UNROLL for (int r = 0; r < R; r++) wv[r] = load_w8(T, w + (size_t)r * rb, k);
        UNROLL for (int c = 0; c < C; c++) {
            const __m256 xv = _mm256_loadu_ps(x + (size_t)c * xs + k);
            UNROLL for (int r = 0; r < R; r++) acc[r][c] = _mm256_fmadd_ps(wv[r], xv, acc[r][c]);
        }
    }
    UNROLL for (int r = 0; r < R; r++) UNROLL for (int c = 0; c < C; c++) {
        float s = hsum(acc[r][c]);
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

/* ---------------------------------------------------------------- prefetching */

#ifndef PF_AHEAD
#define PF_AHEAD 4096 /* bytes */
#endif
/* Into L2, not L1: on an Intel Xeon core (family 6 model 167) a T0
 * prefetch holds one of L1's few fill buffers until its line arrives, and
 * one-thread generation (TinyLlama Q4_K_M) went from 12.6-12.9 to 14.1
 * tok/s with T1 (2 threads: 23.3 to 26.2; no prefetch at all: 9.9, NTA:
 * 9.4); on Zen 4 T1 and T0 measured the same. */
#ifndef PF_HINT
#define PF_HINT _MM_HINT_T1
#endif

/* The hardware prefetcher alone leaves a one-row dot at ~11 GB/s, and R
 * rows read in step (R streams a row apart) at ~5-9: a software prefetch
 * running PF_AHEAD bytes ahead over the same bytes, in address order, makes
 * them one sequential stream again (+30-40%). *pf is that stream's cursor,
 * carried across row groups; prefetching past the matrix is harmless. */
AI void prefetch_to(const uint8_t **pf, const uint8_t *end) {
    const uint8_t *p = *pf;
    for (; p < end; p += 64) _mm_prefetch((const char *)p, PF_HINT);
    *pf = p;
}

/* ---------------------------------------------------------------- Q4_0 Q4_1 Q5_0 Q5_1 Q8_0 IQ4_NL
 * 32-weight blocks against Q8_0 (Q8_1 for the _1 types) activation blocks.
 * Signed weights use ggml's sign trick (|w| times x with w's sign); the
 * unsigned _1 types add m * s per block. */

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

/* The IQ4_NL/IQ4_XS codebook in both 128-bit lanes: pshufb looks the
 * nibbles up (ggml's and ik_llama.cpp's way, here too). */
static inline __m256i iq4_book(void) {
    return _mm256_broadcastsi128_si256(_mm_loadu_si128((const __m128i *)pl_iq4nl_values));
}

AI int q0_unsigned(const int T) { return T == PL_TYPE_Q4_1 || T == PL_TYPE_Q5_1; }

/* The 32 quants of a block, in weight order: signed w/d for Q4_0/Q5_0/Q8_0
 * and IQ4_NL (its codebook values), unsigned (w - m)/d for Q4_1/Q5_1. */
AI __m256i q0_decode(const int T, const uint8_t *b) {
    switch (T) {
    case PL_TYPE_Q4_0: return _mm256_sub_epi8(nib32(b + 2), _mm256_set1_epi8(8));
    case PL_TYPE_Q4_1: return nib32(b + 4);
    case PL_TYPE_Q5_0: /* q - 16: a clear fifth bit makes the nibble negative */
        return _mm256_or_si256(nib32(b + 6), _mm256_andnot_si256(bits32(b + 2), _mm256_set1_epi8((char)0xf0)));
    case PL_TYPE_Q5_1: return _mm256_or_si256(nib32(b + 8), _mm256_and_si256(bits32(b + 4), _mm256_set1_epi8(0x10)));
    case PL_TYPE_IQ4_NL: return _mm256_shuffle_epi8(iq4_book(), nib32(b + 2)); /* -127..113, never 0 */
    default: return ld256(b + 2);
    }
}

AI void q0_tile(const int T, const int R, const int C, const uint8_t *w, size_t rb, const uint8_t *xq, size_t xs,
                int nblk, float *y, size_t ys, const uint8_t **pf) {
    const int U = q0_unsigned(T);
    const size_t wbs = (size_t)q0_size(T), xbs = U ? sizeof(block_q8_1) : sizeof(block_q8_0);
#ifndef PL_VNNI
    const __m256i ones = _mm256_set1_epi16(1);
#endif
    __m256 acc[2][2];
    UNROLL for (int r = 0; r < R; r++) UNROLL for (int c = 0; c < C; c++) acc[r][c] = _mm256_setzero_ps();
    for (int i = 0; i < nblk; i++) {
        __m256i q[2], a[2];
        __m256 dw[2], mw[2];
        if (pf && !(i & 1)) prefetch_to(pf, w + PF_AHEAD + (size_t)(i + 2) * R * wbs);
        UNROLL for (int r = 0; r < R; r++) {
            const uint8_t *b = w + (size_t)r * rb + (size_t)i * wbs;
#ifdef PL_VNNI
            if (T == PL_TYPE_Q4_0) q[r] = nib32(b + 2); /* unsigned: see below */
            else
#endif
                q[r] = q0_decode(T, b);
            a[r] = U ? q[r] : _mm256_sign_epi8(q[r], q[r]);
            dw[r] = _mm256_set1_ps(ldh(b));
            mw[r] = U ? _mm256_set1_ps(ldh(b + 2) * 0.125f) : _mm256_setzero_ps(); /* 8 lanes add up to m */
        }
        UNROLL for (int c = 0; c < C; c++) {
            const uint8_t *xb = xq + (size_t)c * xs + (size_t)i * xbs;
            const __m256i xv = ld256(xb + xbs - 32);
            const __m256 dx = _mm256_set1_ps(ldh(xb));
            const __m256 sx = U ? _mm256_set1_ps(ldh(xb + 2)) : _mm256_setzero_ps();
#ifdef PL_VNNI
            /* Q4_0: the nibbles times x, less 8 x per dword (the same
             * integers as (q - 8) x, two steps fewer per row) */
            const __m256i z = _mm256_setzero_si256();
            const __m256i x8 = T == PL_TYPE_Q4_0 ? _mm256_slli_epi32(dpbusd(z, _mm256_set1_epi8(1), xv), 3) : z;
#endif
            UNROLL for (int r = 0; r < R; r++) {
#ifdef PL_VNNI
                __m256i p;
                if (T == PL_TYPE_Q4_0) p = _mm256_sub_epi32(dpbusd(_mm256_setzero_si256(), q[r], xv), x8);
                else p = dpbusd(_mm256_setzero_si256(), a[r], U ? xv : _mm256_sign_epi8(xv, q[r]));
#else
                __m256i p = _mm256_maddubs_epi16(a[r], U ? xv : _mm256_sign_epi8(xv, q[r]));
                p = _mm256_madd_epi16(p, ones);
#endif
                acc[r][c] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(p), _mm256_mul_ps(dw[r], dx), acc[r][c]);
                if (U) acc[r][c] = _mm256_fmadd_ps(mw[r], sx, acc[r][c]);
            }
        }
    }
    UNROLL for (int r = 0; r < R; r++) UNROLL for (int c = 0; c < C; c++) y[(size_t)c * ys + r] = hsum(acc[r][c]);
}

/* The first column pair prefetches the rows' bytes ahead (see
 * prefetch_to: Zen 4, Q8_0 generation from memory ~6 -> ~20 GB/s); the
 * others find them in L1. */
AI void q0_cols(const int T, const int R, const uint8_t *w, size_t rb, const uint8_t *xq, size_t xs, int nblk, int nb,
                float *y, size_t ys, const uint8_t **pf) {
    int c = 0;
    for (; c + 2 <= nb; c += 2, pf = NULL)
        q0_tile(T, R, 2, w, rb, xq + (size_t)c * xs, xs, nblk, y + (size_t)c * ys, ys, pf);
    if (c < nb) q0_tile(T, R, 1, w, rb, xq + (size_t)c * xs, xs, nblk, y + (size_t)c * ys, ys, pf);
}

AI void mm_q0(const int T, const uint8_t *w, size_t rb, int rows, int cols, const uint8_t *xq, size_t xs, int nb,
              float *y, size_t ys) {
    const uint8_t *pf = w + PF_AHEAD;
    int r = 0;
    for (; r + 2 <= rows; r += 2) q0_cols(T, 2, w + (size_t)r * rb, rb, xq, xs, cols / 32, nb, y + r, ys, &pf);
    if (r < rows) q0_cols(T, 1, w + (size_t)r * rb, rb, xq, xs, cols / 32, nb, y + r, ys, &pf);
}


/* ---------------------------------------------------------------- K-quants, one column
 * ggml-style block dots against Q8_K: one 32-byte maddubs per 32 weights,
 * madd with the sub-block scale, one float FMA per super-block. */

typedef float (*dot_fn)(const uint8_t *w, const uint8_t *xq, int n);

/* Q4_K/Q5_K's 12 packed bytes -> 8 scales then 8 mins (6-bit each), in
 * vector registers (a scalar unpack would cost a store-to-load round trip).
 * Reads 16 bytes at s: the 4 past the scales are still inside the block. */
static inline __m128i k4_scales(const uint8_t *s) {
    const __m128i v = ld128(s); /* u0 u1 u2 - */
    const __m128i a = _mm_srlv_epi32(_mm_shuffle_epi32(v, _MM_SHUFFLE(2, 1, 2, 0)), _mm_setr_epi32(0, 0, 0, 4));
    const __m128i b = _mm_srli_epi32(_mm_shuffle_epi32(v, _MM_SHUFFLE(1, 1, 0, 0)), 2);
    return _mm_or_si128(_mm_and_si128(a, _mm_setr_epi32(0x3f3f3f3f, 0x0f0f0f0f, 0x3f3f3f3f, 0x0f0f0f0f)),
                        _mm_and_si128(b, _mm_setr_epi32(0, 0x30303030, 0, 0x30303030)));
}

/* Q3_K's 16 6-bit scales (minus 32) as int16. */
static inline __m256i q3_scales(const uint8_t *s) {
    int16_t sc[16];
    for (int j = 0; j < 16; j++) {
        const int lo = j < 8 ? (s[j] & 0xf) : (s[j - 8] >> 4);
        const int hi = (s[8 + j % 4] >> (2 * (j / 4))) & 3;
        sc[j] = (int16_t)((lo | (hi << 4)) - 32);
    }
    return ld256(sc);
}

static float dot_q2_K(const uint8_t *w, const uint8_t *xq, int n) {
    const block_q2_K *b = (const block_q2_K *)w;
    const block_q8_K *y = (const block_q8_K *)xq;
    const __m256i m3 = _mm256_set1_epi8(3);
    const __m128i m4 = _mm_set1_epi8(0xf);
    __m256 acc = _mm256_setzero_ps(), accm = _mm256_setzero_ps();
    for (int i = 0; i < n / QK_K; i++) {
        const float d = y[i].d * ldh(&b[i].d), dmin = y[i].d * ldh(&b[i].dmin);
        const __m128i ms = ld128(b[i].scales);
        const __m256i mins = _mm256_cvtepu8_epi16(_mm_and_si128(_mm_srli_epi16(ms, 4), m4));
        accm = _mm256_fmadd_ps(_mm256_set1_ps(dmin), _mm256_cvtepi32_ps(_mm256_madd_epi16(mins, ld256(y[i].bsums))),
                               accm);
        const __m256i all = _mm256_cvtepu8_epi16(_mm_and_si128(ms, m4));
        const __m256i sc2[2] = {_mm256_permute2x128_si256(all, all, 0x00), _mm256_permute2x128_si256(all, all, 0x11)};
        __m256i sumi = _mm256_setzero_si256();
        UNROLL for (int h = 0; h < 2; h++) {
            const __m256i q2 = ld256(b[i].qs + 32 * h);
            UNROLL for (int s = 0; s < 4; s++) {
                const __m256i q = _mm256_and_si256(_mm256_srli_epi16(q2, 2 * s), m3);
                const __m256i p = _mm256_maddubs_epi16(q, ld256(y[i].qs + 128 * h + 32 * s));
                sumi = _mm256_add_epi32(sumi, _mm256_madd_epi16(p, _mm256_shuffle_epi8(sc2[h], word_pair_mask(s))));
            }
        }
        acc = _mm256_fmadd_ps(_mm256_set1_ps(d), _mm256_cvtepi32_ps(sumi), acc);
    }
    return hsum(acc) - hsum(accm);
}

static float dot_q3_K(const uint8_t *w, const uint8_t *xq, int n) {
    const block_q3_K *b = (const block_q3_K *)w;
    const block_q8_K *y = (const block_q8_K *)xq;
    const __m256i m3 = _mm256_set1_epi8(3), four = _mm256_set1_epi8(4);
    __m256 acc = _mm256_setzero_ps();
    for (int i = 0; i < n / QK_K; i++) {
        const float d = y[i].d * ldh(&b[i].d);
        const __m256i all = q3_scales(b[i].scales);
        const __m256i sc2[2] = {_mm256_permute2x128_si256(all, all, 0x00), _mm256_permute2x128_si256(all, all, 0x11)};
        const __m256i hm = ld256(b[i].hmask);
        __m256i sumi = _mm256_setzero_si256();
        UNROLL for (int h = 0; h < 2; h++) {
            const __m256i q2 = ld256(b[i].qs + 32 * h);
            UNROLL for (int s = 0; s < 4; s++) {
                const __m256i q = _mm256_and_si256(_mm256_srli_epi16(q2, 2 * s), m3);
                const __m256i bit = _mm256_and_si256(hm, _mm256_set1_epi8((char)(1 << (4 * h + s))));
                const __m256i sub4 = _mm256_and_si256(_mm256_cmpeq_epi8(bit, _mm256_setzero_si256()), four);
                const __m256i x8 = ld256(y[i].qs + 128 * h + 32 * s);
                const __m256i p = _mm256_sub_epi16(_mm256_maddubs_epi16(q, x8), _mm256_maddubs_epi16(sub4, x8));
                sumi = _mm256_add_epi32(sumi, _mm256_madd_epi16(p, _mm256_shuffle_epi8(sc2[h], word_pair_mask(s))));
            }
        }
        acc = _mm256_fmadd_ps(_mm256_set1_ps(d), _mm256_cvtepi32_ps(sumi), acc);
    }
    return hsum(acc);
}

/* Q6_K's four 32-weight vectors of one 128-half, unsigned 0..63, from its
 * low bits l1 (ql), l2 (ql + 32) and high bits h (qh), at either width
 * (P: _mm256 or _mm512, S: si256 or si512). */
#define Q6_HALF(P, S, l1, l2, h, q)                                                                                 \
    do {                                                                                                         \
        const __typeof__(l1) m4_ = P##_set1_epi8(0xf);                                                           \
        (q)[0] = P##_or_##S(P##_and_##S(l1, m4_), P##_slli_epi16(P##_and_##S(h, P##_set1_epi8(3)), 4));            \
        (q)[1] = P##_or_##S(P##_and_##S(l2, m4_), P##_slli_epi16(P##_and_##S(h, P##_set1_epi8(12)), 2));           \
        (q)[2] = P##_or_##S(P##_and_##S(P##_srli_epi16(l1, 4), m4_), P##_and_##S(h, P##_set1_epi8(48)));           \
        (q)[3] = P##_or_##S(P##_and_##S(P##_srli_epi16(l2, 4), m4_),                                              \
                            P##_srli_epi16(P##_and_##S(h, P##_set1_epi8((char)192)), 2));                         \
    } while (0)
static inline void q6_half(const uint8_t *ql, const uint8_t *qh, __m256i q[4]) {
    const __m256i l1 = ld256(ql), l2 = ld256(ql + 32), h = ld256(qh);
    Q6_HALF(_mm256, si256, l1, l2, h, q);
}

static void mm_rows(dot_fn dot, const uint8_t *w, size_t rb, int rows, int cols, const uint8_t *xq, size_t xs, int nb,
                    float *y, size_t ys) {
    for (int r = 0; r < rows; r++)
        for (int c = 0; c < nb; c++) y[(size_t)c * ys + r] = dot(w + (size_t)r * rb, xq + (size_t)c * xs, cols);
}

/* IQ4_NL: four blocks a step. The four blocks' integer sums share one
 * conversion and one FMA (after two hadds lanes k and k+4 hold halves of
 * block k's sum, both scaled by its dw * dx), where the 2x2 tile above
 * spends a conversion, a multiply and an FMA on every block; generation
 * prefetches the bytes ahead as the K-quants do. ~13.5 GB/s on one Zen 4
 * core against ~4.6 for the tile; prefill the same tile arithmetic on 2x2
 * (a column's result never depends on nb). It would serve
 * Q4_0/Q5_0/Q8_0 as well (Q8_0 6 -> 20 GB/s), but their float rounding
 * would change from what they have agreed with llama.cpp at so far (one
 * set-2 Q8_0 model's greedy run then parts at a near-tie): they keep the
 * tile, which scales every block with its own FMA as ggml does. */
static inline __m128 halves4(const uint8_t *p, size_t stride) {
    uint16_t h[4];
    for (int k = 0; k < 4; k++) memcpy(&h[k], p + (size_t)k * stride, 2);
    return _mm_cvtph_ps(_mm_loadl_epi64((const __m128i *)h));
}

AI __m256i q0_sdot(const int T, const uint8_t *b, __m256i x, __m256i ones) {
    const __m256i q = q0_decode(T, b);
#ifdef PL_VNNI
    (void)ones;
    return dpbusd(_mm256_setzero_si256(), _mm256_sign_epi8(q, q), _mm256_sign_epi8(x, q));
#else
    return _mm256_madd_epi16(_mm256_maddubs_epi16(_mm256_sign_epi8(q, q), _mm256_sign_epi8(x, q)), ones);
#endif
}

/* R rows x C columns (C <= 2); a column's arithmetic does not depend on C. */
AI void q0s_tile(const int T, const int R, const int C, const uint8_t *w, size_t rb, int nblk, const uint8_t *xq,
                 size_t xs, float *y, size_t ys, const uint8_t **pf) {
    const size_t bs = (size_t)q0_size(T);
    const __m256i ones = _mm256_set1_epi16(1);
    __m256 acc[4][2];
    UNROLL for (int r = 0; r < R; r++) UNROLL for (int c = 0; c < C; c++) acc[r][c] = _mm256_setzero_ps();
    int i = 0;
    for (; i + 4 <= nblk; i += 4) {
        if (pf) prefetch_to(pf, w + PF_AHEAD + (size_t)(i + 4) * R * bs);
        UNROLL for (int c = 0; c < C; c++) {
            const block_q8_0 *yc = (const block_q8_0 *)(xq + (size_t)c * xs) + i;
            __m256i x[4];
            UNROLL for (int k = 0; k < 4; k++) x[k] = ld256(yc[k].qs);
            const __m128 dx = halves4((const uint8_t *)&yc->d, sizeof(block_q8_0));
            UNROLL for (int r = 0; r < R; r++) {
                const uint8_t *b = w + (size_t)r * rb + (size_t)i * bs;
                __m256i p[4];
                UNROLL for (int k = 0; k < 4; k++) p[k] = q0_sdot(T, b + (size_t)k * bs, x[k], ones);
                const __m256i s = _mm256_hadd_epi32(_mm256_hadd_epi32(p[0], p[1]), _mm256_hadd_epi32(p[2], p[3]));
                const __m128 d = _mm_mul_ps(halves4(b, bs), dx);
                acc[r][c] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(s), _mm256_set_m128(d, d), acc[r][c]);
            }
        }
    }
    for (; i < nblk; i++)
        UNROLL for (int c = 0; c < C; c++) {
            const block_q8_0 *yc = (const block_q8_0 *)(xq + (size_t)c * xs) + i;
            const __m256i x = ld256(yc->qs);
            const float dx = ldh(&yc->d);
            UNROLL for (int r = 0; r < R; r++) {
                const uint8_t *b = w + (size_t)r * rb + (size_t)i * bs;
                acc[r][c] =
                    _mm256_fmadd_ps(_mm256_cvtepi32_ps(q0_sdot(T, b, x, ones)), _mm256_set1_ps(ldh(b) * dx), acc[r][c]);
            }
        }
    UNROLL for (int r = 0; r < R; r++) UNROLL for (int c = 0; c < C; c++) y[(size_t)c * ys + r] = hsum(acc[r][c]);
}

/* Generation streams R = 2 rows against the column; prefill takes 2x2
 * tiles. The same arithmetic either way (batch invariance). */
AI void mm_q0s(const int T, const uint8_t *w, size_t rb, int rows, int cols, const uint8_t *xq, size_t xs, int nb,
               float *y, size_t ys) {
    const int nblk = cols / 32;
    if (nb == 1) {
        const uint8_t *pf = w + PF_AHEAD;
        int r = 0;
        for (; r + 2 <= rows; r += 2) q0s_tile(T, 2, 1, w + (size_t)r * rb, rb, nblk, xq, xs, y + r, ys, &pf);
        for (; r < rows; r++) q0s_tile(T, 1, 1, w + (size_t)r * rb, rb, nblk, xq, xs, y + r, ys, &pf);
        return;
    }
    /* rows outer: each row pair streams once (prefetched by the first
     * column pair) and stays in L1 for the other columns */
    const uint8_t *pf = w + PF_AHEAD;
    for (int r = 0; r < rows; r += 2) {
        const int R = rows - r < 2 ? 1 : 2;
        const uint8_t *wr = w + (size_t)r * rb, **p = &pf;
        for (int c = 0; c < nb; c += 2, p = NULL) {
            const uint8_t *xc = xq + (size_t)c * xs;
            float *yc = y + (size_t)c * ys + r;
            if (R == 2 && c + 2 <= nb) q0s_tile(T, 2, 2, wr, rb, nblk, xc, xs, yc, ys, p);
            else if (R == 2) q0s_tile(T, 2, 1, wr, rb, nblk, xc, xs, yc, ys, p);
            else if (c + 2 <= nb) q0s_tile(T, 1, 2, wr, rb, nblk, xc, xs, yc, ys, p);
            else q0s_tile(T, 1, 1, wr, rb, nblk, xc, xs, yc, ys, p);
        }
    }
}

/* IQ4_XS: each 32-weight sub-block is one vector (16 bytes of nibbles
 * expanded, looked up in the codebook), multiplied with ggml's sign trick
 * (|w| times x with w's sign; |w| <= 127, so a pair sums to <= 32258 in
 * maddubs), and its pair sums times the sub-block's 6-bit scale by one
 * madd. The scales go through one in-lane shuffle each: iq4xs_scales puts
 * the eight as int16 in both lanes. */
static inline __m256i iq4xs_scales(const block_iq4_xs *b) {
    uint32_t l;
    memcpy(&l, b->scales_l, 4);
    const uint32_t h = b->scales_h;
    /* nibble ib of l (sub-block order), then the 2-bit highs */
    const __m128i lo = _mm_and_si128(_mm_srlv_epi32(_mm_set1_epi32((int)l), _mm_setr_epi32(0, 8, 16, 24)),
                                     _mm_set1_epi32(0xff));
    const __m128i lb = _mm_and_si128(_mm_or_si128(lo, _mm_slli_epi32(_mm_srli_epi32(lo, 4), 16)),
                                     _mm_set1_epi32(0x000f000f)); /* int16: l[2k] low, l[2k] high nibble */
    const __m128i hb = _mm_and_si128(_mm_srlv_epi32(_mm_set1_epi32((int)h), _mm_setr_epi32(0, 4, 8, 12)),
                                     _mm_set1_epi32(0xf));
    const __m128i hh = _mm_and_si128(_mm_or_si128(hb, _mm_slli_epi32(_mm_srli_epi32(hb, 2), 16)),
                                     _mm_set1_epi32(0x00030003));
    const __m128i s = _mm_sub_epi16(_mm_or_si128(lb, _mm_slli_epi16(hh, 4)), _mm_set1_epi16(32));
    return _mm256_broadcastsi128_si256(s);
}

/* 16 bytes of nibbles -> the 32 codebook values of a sub-block, in order. */
static inline __m256i iq4_sub(__m256i book, const uint8_t *q) { return _mm256_shuffle_epi8(book, nib32(q)); }


/* ---------------------------------------------------------------- K-quants, many columns
 * Each weight super-block is decoded once into 8 vectors of quants whose
 * 16-bit lanes each belong to one sub-block across a group of vectors: Q4_K
 * and Q5_K take a 4x(8 dword) transpose per half (groups of 4 vectors, each
 * lane pair one 32-weight sub-block; 4 * 2*31*127 fits in int16), Q6_K
 * interleaves qwords of vector pairs (groups of 2; 2 * 2*63*127 fits). The
 * activations get the same rearrangement once per call, so a column costs
 * 8 maddubs plus 2 (Q6_K: 4) madds per super-block instead of 8 + 8.
 * Q4_K applies its scales in float (d * scale, per lane, times d_x): one
 * multiply per row and column where the integer product took a vpmulld,
 * and the float product's operands are shared by the row and the column. */


#ifndef KC
#define KC 24 /* super-blocks of activations prepared at a time (6144 weights) */
#endif
#ifndef NC
#define NC 32 /* columns at a time */
#endif

/* The bytes of a super-block of the types these kernels take. */
AI size_t kq_bsize(const int T) {
    return T == PL_TYPE_Q4_K   ? sizeof(block_q4_K)
           : T == PL_TYPE_Q5_K ? sizeof(block_q5_K)
           : T == PL_TYPE_Q6_K ? sizeof(block_q6_K)
                               : sizeof(block_iq4_xs);
}

typedef struct {
    __m256i q[8];
    union {
        __m256i aux; /* Q6_K: bsums */
        __m256 mf;   /* Q4_K/Q5_K: d * (sum of each 32-weight sub-block) */
    } u;
    __m256 dv; /* Q4_K: d in every lane */
    float d;
} kx_t;

typedef struct {
    __m256i q[8];
    __m256i aq[8]; /* IQ4_XS: |q| (the sign trick's unsigned operand) */
    __m256i sc[4]; /* per group: the scale of each 16-bit lane (Q5_K, Q6_K, IQ4_XS) */
    __m256i aux;   /* Q6_K: 32 * scale per 16-weight sub-block (the -32 offset) */
    __m256 mf;     /* Q4_K/Q5_K: -dmin * min per sub-block */
    __m256 dsc;    /* Q4_K: d * scale per sub-block */
#ifdef PL_VNNI
    __m256i sc32[1]; /* IQ4_XS: the scales per 32-bit lane */
#endif
    float d;
} kw_t;

/* o[4h+v] dword p = a[4h + p%4] dword (v + 4*(p/4)), h = 0, 1. */
AI void tr4x2(const __m256i *a, __m256i *o) {
    UNROLL for (int h = 0; h < 8; h += 4) {
        const __m256i t0 = _mm256_unpacklo_epi32(a[h], a[h + 1]), t1 = _mm256_unpackhi_epi32(a[h], a[h + 1]);
        const __m256i t2 = _mm256_unpacklo_epi32(a[h + 2], a[h + 3]), t3 = _mm256_unpackhi_epi32(a[h + 2], a[h + 3]);
        o[h] = _mm256_unpacklo_epi64(t0, t2);
        o[h + 1] = _mm256_unpackhi_epi64(t0, t2);
        o[h + 2] = _mm256_unpacklo_epi64(t1, t3);
        o[h + 3] = _mm256_unpackhi_epi64(t1, t3);
    }
}

/* o[2g] / o[2g+1]: the low / high qwords of a[2g] and a[2g+1] interleaved. */
AI void pair64(const __m256i *a, __m256i *o) {
    UNROLL for (int g = 0; g < 4; g++) {
        o[2 * g] = _mm256_unpacklo_epi64(a[2 * g], a[2 * g + 1]);
        o[2 * g + 1] = _mm256_unpackhi_epi64(a[2 * g], a[2 * g + 1]);
    }
}

/* o[v] dword s = a[s] dword v: each 16-bit lane pair of o[v] then belongs
 * to sub-block s, in all eight vectors. */
AI void tr8x8_32(const __m256i *a, __m256i *o) {
    __m256i t[8], u[8];
    UNROLL for (int i = 0; i < 8; i += 2) {
        t[i] = _mm256_unpacklo_epi32(a[i], a[i + 1]);
        t[i + 1] = _mm256_unpackhi_epi32(a[i], a[i + 1]);
    }
    UNROLL for (int i = 0; i < 8; i += 4) {
        u[i] = _mm256_unpacklo_epi64(t[i], t[i + 2]);
        u[i + 1] = _mm256_unpackhi_epi64(t[i], t[i + 2]);
        u[i + 2] = _mm256_unpacklo_epi64(t[i + 1], t[i + 3]);
        u[i + 3] = _mm256_unpackhi_epi64(t[i + 1], t[i + 3]);
    }
    UNROLL for (int i = 0; i < 4; i++) {
        o[i] = _mm256_permute2x128_si256(u[i], u[i + 4], 0x20);
        o[i + 4] = _mm256_permute2x128_si256(u[i], u[i + 4], 0x31);
    }
}

AI void prep_x(const int T, const block_q8_K *b, kx_t *o) {
    __m256i a[8];
    UNROLL for (int j = 0; j < 8; j++) a[j] = ld256(b->qs + 32 * j);
    o->d = b->d;
    o->dv = _mm256_set1_ps(b->d);
    if (T == PL_TYPE_Q6_K) {
        pair64(a, o->q);
        o->u.aux = ld256(b->bsums);
    } else if (T == PL_TYPE_IQ4_XS) {
        tr8x8_32(a, o->q);
        o->u.mf = _mm256_setzero_ps();
    } else {
        if (T == PL_TYPE_Q4_K) tr8x8_32(a, o->q);
        else tr4x2(a, o->q);
        const __m256i s = _mm256_madd_epi16(ld256(b->bsums), _mm256_set1_epi16(1));
        o->u.mf = _mm256_mul_ps(_mm256_set1_ps(b->d), _mm256_cvtepi32_ps(s));
    }
}

/* a[2j], a[2j+1]: the low and high nibbles of 32-byte chunk j of qs (128
 * bytes): Q4_K's and Q5_K's sub-blocks 2j and 2j+1, as stored. */
AI void nibbles8(const uint8_t *qs, __m256i *a) {
    const __m256i m4 = _mm256_set1_epi8(0xf);
    UNROLL for (int j = 0; j < 4; j++) {
        const __m256i q = ld256(qs + 32 * j);
        a[2 * j] = _mm256_and_si256(q, m4);
        a[2 * j + 1] = _mm256_and_si256(_mm256_srli_epi16(q, 4), m4);
    }
}

/* A Q5_K super-block's eight sub-blocks of 5-bit quants, as stored. */
AI void q5k_quants(const uint8_t *b, __m256i *a) {
    const __m256i b4 = _mm256_set1_epi8(0x10);
    __m256i hb = ld256(b + 16);
    nibbles8(b + 48, a);
    UNROLL for (int j = 0; j < 4; j++) {
        a[2 * j] = _mm256_or_si256(a[2 * j], _mm256_and_si256(_mm256_slli_epi16(hb, 4), b4));
        a[2 * j + 1] = _mm256_or_si256(a[2 * j + 1], _mm256_and_si256(_mm256_slli_epi16(hb, 3), b4));
        hb = _mm256_srli_epi16(hb, 2);
    }
}

#if defined(__AVX512F__) && defined(__AVX512VL__)
/* 256-bit halves into and out of 512-bit vectors. */
AI __m512i cat_i(__m256i a, __m256i b) { return _mm512_inserti64x4(_mm512_castsi256_si512(a), b, 1); }
AI __m512 cat_f(__m256 a, __m256 b) {
    return _mm512_castsi512_ps(cat_i(_mm256_castps_si256(a), _mm256_castps_si256(b)));
}
AI __m512i bc_i(__m256i a) { return _mm512_broadcast_i64x4(a); }
AI __m512 bc_f(__m256 a) { return _mm512_castsi512_ps(_mm512_broadcast_i64x4(_mm256_castps_si256(a))); }
AI __m256 hi_f(__m512 a) { return _mm256_castpd_ps(_mm512_extractf64x4_pd(_mm512_castps_pd(a), 1)); }

/* q4k_vectors' o[v] and o[v + 4] in one vector, from the quants' two 64-byte halves. */
AI __m512i q4k_vec512(__m512i lo, __m512i hi, const int v) {
    const __m512i sh = _mm512_set_epi32(4, 0, 4, 0, 4, 0, 4, 0, 4, 0, 4, 0, 4, 0, 4, 0);
    const __m512i idx = _mm512_set_epi32(28 + v, 28 + v, 20 + v, 20 + v, 12 + v, 12 + v, 4 + v, 4 + v, 24 + v, 24 + v,
                                         16 + v, 16 + v, 8 + v, 8 + v, v, v);
    return _mm512_and_si512(_mm512_srlv_epi32(_mm512_permutex2var_epi32(lo, idx, hi), sh), _mm512_set1_epi8(0xf));
}
#endif

/* Q4_K's 128 bytes of quants qs as the tiles take them: o[v] dword s is
 * sub-block s's dword v (the nibble split, then tr8x8_32). AVX-512 gets
 * there in half the shuffles: o[v] lanes 2j, 2j+1 are 32-byte chunk j's
 * dword v, its low and high nibbles, and each 64-byte half of the quants
 * holds two chunks, so one two-source permute gathers o[v] and o[v+4]. */
AI void q4k_vectors(const uint8_t *qs, __m256i *o) {
#if defined(__AVX512F__) && defined(__AVX512VL__)
    const __m512i lo = _mm512_loadu_si512(qs), hi = _mm512_loadu_si512(qs + 64);
    UNROLL for (int v = 0; v < 4; v++) {
        const __m512i p = q4k_vec512(lo, hi, v);
        o[v] = _mm512_castsi512_si256(p);
        o[v + 4] = _mm512_extracti64x4_epi64(p, 1);
    }
#else
    __m256i a[8];
    nibbles8(qs, a);
    tr8x8_32(a, o);
#endif
}

#if defined(__AVX512F__) && defined(__AVX512VL__)
/* A Q4_K super-block's d * scale (lanes 0-7) and (-dmin) * min (8-15): the
 * products decode_w forms, in one vector (~8 instructions fewer a row). */
AI __m512 q4k_scales512(const uint8_t *b) {
    const __m512 f = _mm512_cvtepi32_ps(_mm512_cvtepu8_epi32(k4_scales(b + 4))); /* sc 0-7, min 0-7 */
    uint32_t dd;
    memcpy(&dd, b, 4);
    const __m512 h = _mm512_castps128_ps512(_mm_cvtph_ps(_mm_cvtsi32_si128((int)dd))); /* d, dmin */
    const __m512 dm = _mm512_permutexvar_ps(_mm512_set_epi32(1, 1, 1, 1, 1, 1, 1, 1, 0, 0, 0, 0, 0, 0, 0, 0), h);
    const __m512i neg = _mm512_set_epi32(INT32_MIN, INT32_MIN, INT32_MIN, INT32_MIN, INT32_MIN, INT32_MIN, INT32_MIN,
                                         INT32_MIN, 0, 0, 0, 0, 0, 0, 0, 0);
    return _mm512_mul_ps(f, _mm512_castsi512_ps(_mm512_xor_si512(_mm512_castps_si512(dm), neg))); /* d sc | -dmin min */
}
#endif

/* Q6_K's scales of group g in the tiles' 16-bit lanes: lanes 0-3 sub-block
 * 4g, 4-7 4g+2, 8-11 4g+1, 12-15 4g+3 (a pshufb of the 16 scales). */
AI __m128i q6_sc_mask(int g) {
    const char a = (char)(4 * g), b = (char)(4 * g + 2), c = (char)(4 * g + 1), d = (char)(4 * g + 3);
    return _mm_setr_epi8(a, a, a, a, b, b, b, b, c, c, c, c, d, d, d, d);
}

AI void decode_w(const int T, const uint8_t *b, kw_t *o) {
    __m256i a[8];
    if (T == PL_TYPE_Q6_K) {
        const block_q6_K *x = (const block_q6_K *)b;
        q6_half(x->ql, x->qh, a);
        q6_half(x->ql + 64, x->qh + 32, a + 4);
        pair64(a, o->q);
        const __m128i s8 = ld128(x->scales);
        UNROLL for (int g = 0; g < 4; g++) o->sc[g] = _mm256_cvtepi8_epi16(_mm_shuffle_epi8(s8, q6_sc_mask(g)));
        o->aux = _mm256_slli_epi16(_mm256_cvtepi8_epi16(s8), 5);
        o->mf = _mm256_setzero_ps();
        o->d = ldh(&x->d);
        return;
    }
    if (T == PL_TYPE_IQ4_XS) {
        /* sub-block s in dword s of every vector (as Q4_K), signed
         * codebook values; the products run with the sign trick */
        const block_iq4_xs *x = (const block_iq4_xs *)b;
        const __m256i book = iq4_book();
        UNROLL for (int ib = 0; ib < 8; ib++) a[ib] = iq4_sub(book, x->qs + 16 * ib);
        tr8x8_32(a, o->q);
        UNROLL for (int v = 0; v < 8; v++) o->aq[v] = _mm256_sign_epi8(o->q[v], o->q[v]);
        const __m128i s = _mm256_castsi256_si128(iq4xs_scales(x));
        o->sc[0] = _mm256_set_m128i(_mm_unpackhi_epi16(s, s), _mm_unpacklo_epi16(s, s)); /* s0 s0 s1 s1 .. */
#ifdef PL_VNNI
        o->sc32[0] = _mm256_cvtepi16_epi32(s);
#endif
        o->sc[1] = o->sc[2] = o->sc[3] = _mm256_setzero_si256();
        o->aux = _mm256_setzero_si256();
        o->mf = _mm256_setzero_ps();
        o->d = ldh(&x->d);
        return;
    }
#if defined(__AVX512F__) && defined(__AVX512VL__)
    if (T == PL_TYPE_Q4_K) {
        q4k_vectors(b + 16, o->q);
        const __m512 c = q4k_scales512(b);
        o->dsc = _mm512_castps512_ps256(c);
        o->mf = hi_f(c);
        o->d = ldh(b); /* sc, aux: not Q4_K's */
        return;
    }
#endif
    const __m128i sm = k4_scales(b + 4);
    if (T == PL_TYPE_Q4_K) {
        q4k_vectors(b + 16, o->q);
        o->dsc = _mm256_mul_ps(_mm256_set1_ps(ldh(b)), _mm256_cvtepi32_ps(_mm256_cvtepu8_epi32(sm)));
    } else {
        q5k_quants(b, a);
        tr4x2(a, o->q);
        const __m256i s16 = _mm256_cvtepu8_epi16(_mm_unpacklo_epi8(sm, sm)); /* s0 s0 s1 s1 .. s7 s7 */
        o->sc[0] = _mm256_permute4x64_epi64(s16, 0x44);
        o->sc[1] = _mm256_permute4x64_epi64(s16, 0xee);
    }
    o->sc[2] = o->sc[3] = _mm256_setzero_si256();
    o->aux = _mm256_setzero_si256();
    o->mf = _mm256_mul_ps(_mm256_set1_ps(-ldh(b + 2)), _mm256_cvtepi32_ps(_mm256_cvtepu8_epi32(_mm_srli_si128(sm, 8))));
    o->d = ldh(b);
}

/* The tiles' integer steps: s plus the byte products of w and x, summed in
 * 16-bit lanes by maddubs or in 32-bit lanes by vpdpbusd; and (AVX2, Q5_K)
 * those sums times the scales of group g. The same integers either way. */
#ifdef PL_VNNI
AI __m256i kq_dot(__m256i s, __m256i w, __m256i x) { return dpbusd(s, w, x); }
AI __m256i kq_add(__m256i a, __m256i b) { return _mm256_add_epi32(a, b); }
#define KQ_SPLIT 1
#else
AI __m256i kq_dot(__m256i s, __m256i w, __m256i x) { return _mm256_add_epi16(s, _mm256_maddubs_epi16(w, x)); }
AI __m256i kq_add(__m256i a, __m256i b) { return _mm256_add_epi16(a, b); }
#define KQ_SPLIT 0
AI __m256i kq_scale(__m256i s, const kw_t *w, int g) { return _mm256_madd_epi16(s, w->sc[g]); }
#endif

/* F[r*NC + c] += row r's super-block . column c's, for r < R, c < C. */
AI void kq_tile(const int T, const int R, const int C, const kw_t *w, const kx_t *x, __m256 *F) {
    __m256i S[4][2];
    if (T == PL_TYPE_Q4_K) {
        /* all eight vectors sum in 16 bits (8 * 2*15*128 fits; 32 with
         * vpdpbusd): lane pair s is sub-block s throughout */
        if (KQ_SPLIT && R * C <= 2) {
            /* few chains (few_kx): each sums the even and the odd vectors
             * apart, which halves the dependency chain (the same integers),
             * and a column's vector is loaded once for the rows (vpdpbusd
             * only: AVX2's 16 registers make it slower, Zen 4 -5%) */
            __m256i S2[4][2];
            UNROLL for (int v = 0; v < 8; v += 2) {
                UNROLL for (int c = 0; c < C; c++) {
                    __m256i x0 = x[c].q[v], x1 = x[c].q[v + 1];
                    if (R > 1) __asm__("" : "+" VR(x0), "+" VR(x1));
                    UNROLL for (int r = 0; r < R; r++) {
                        S[r][c] = kq_dot(v ? S[r][c] : _mm256_setzero_si256(), w[r].q[v], x0);
                        S2[r][c] = kq_dot(v ? S2[r][c] : _mm256_setzero_si256(), w[r].q[v + 1], x1);
                    }
                }
                UNROLL for (int r = 0; r < R; r++) UNROLL for (int c = 0; c < C; c++)
                    __asm__("" : "+" VR(S[r][c]), "+" VR(S2[r][c]));
            }
            UNROLL for (int r = 0; r < R; r++) UNROLL for (int c = 0; c < C; c++) S[r][c] =
                kq_add(S[r][c], S2[r][c]);
        } else {
            UNROLL for (int v = 0; v < 8; v++) {
                UNROLL for (int r = 0; r < R; r++) UNROLL for (int c = 0; c < C; c++) S[r][c] =
                    kq_dot(v ? S[r][c] : _mm256_setzero_si256(), w[r].q[v], x[c].q[v]);
                /* keeps gcc from hoisting all the products ahead of the sums
                 * (and spilling them) */
                UNROLL for (int r = 0; r < R; r++) UNROLL for (int c = 0; c < C; c++) __asm__("" : "+" VR(S[r][c]));
            }
        }
        /* the scales in float: (d * scale) * d_x times the sub-block's
         * integer sum, an exact float (|sum| <= 32*15*127) */
        UNROLL for (int r = 0; r < R; r++) UNROLL for (int c = 0; c < C; c++) {
#ifndef PL_VNNI
            S[r][c] = _mm256_madd_epi16(S[r][c], _mm256_set1_epi16(1));
#endif
            F[r * NC + c] = _mm256_fmadd_ps(w[r].mf, x[c].u.mf, F[r * NC + c]);
            const __m256 dd = _mm256_mul_ps(w[r].dsc, x[c].dv);
            F[r * NC + c] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(S[r][c]), dd, F[r * NC + c]);
        }
        return;
    } else if (T == PL_TYPE_Q6_K) {
        UNROLL for (int g = 0; g < 4; g++) {
            UNROLL for (int r = 0; r < R; r++) UNROLL for (int c = 0; c < C; c++) {
#ifdef PL_VNNI
                /* both vectors' byte pairs in 16 bits (2 * 2*63*128 fits),
                 * then scaled and added in one vpdpwssd: the integers of
                 * vpdpbusd and a vpmulld (two uops on Intel cores) */
                const __m256i a = _mm256_add_epi16(_mm256_maddubs_epi16(w[r].q[2 * g], x[c].q[2 * g]),
                                                   _mm256_maddubs_epi16(w[r].q[2 * g + 1], x[c].q[2 * g + 1]));
                S[r][c] = dpwssd(g ? S[r][c] : _mm256_setzero_si256(), a, w[r].sc[g]);
#else
                __m256i a = kq_dot(_mm256_setzero_si256(), w[r].q[2 * g], x[c].q[2 * g]);
                a = kq_scale(kq_dot(a, w[r].q[2 * g + 1], x[c].q[2 * g + 1]), &w[r], g);
                S[r][c] = g ? _mm256_add_epi32(S[r][c], a) : a;
#endif
            }
            UNROLL for (int r = 0; r < R; r++) UNROLL for (int c = 0; c < C; c++) __asm__("" : "+" VR(S[r][c]));
        }
        UNROLL for (int r = 0; r < R; r++) UNROLL for (int c = 0; c < C; c++) S[r][c] =
            _mm256_sub_epi32(S[r][c], _mm256_madd_epi16(w[r].aux, x[c].u.aux));
    } else if (T == PL_TYPE_IQ4_XS) {
        /* signed weights: |w| times x with w's sign. maddubs's pair sums
         * (<= 2*127*127) leave no room to add vectors in 16 bits, so each
         * takes its madd with the scales (lane pair s: sub-block s);
         * vpdpbusd sums all eight in 32 bits and applies them once: the
         * same integers */
        UNROLL for (int v = 0; v < 8; v++) {
            UNROLL for (int r = 0; r < R; r++) UNROLL for (int c = 0; c < C; c++) {
                const __m256i xs = _mm256_sign_epi8(x[c].q[v], w[r].q[v]);
#ifdef PL_VNNI
                S[r][c] = dpbusd(v ? S[r][c] : _mm256_setzero_si256(), w[r].aq[v], xs);
#else
                const __m256i p = _mm256_madd_epi16(_mm256_maddubs_epi16(w[r].aq[v], xs), w[r].sc[0]);
                S[r][c] = v ? _mm256_add_epi32(S[r][c], p) : p;
#endif
            }
            UNROLL for (int r = 0; r < R; r++) UNROLL for (int c = 0; c < C; c++) __asm__("" : "+" VR(S[r][c]));
        }
#ifdef PL_VNNI
        UNROLL for (int r = 0; r < R; r++) UNROLL for (int c = 0; c < C; c++) S[r][c] =
            _mm256_mullo_epi32(S[r][c], w[r].sc32[0]);
#endif
    } else {
        UNROLL for (int g = 0; g < 2; g++) {
            __m256i A[4][2];
            UNROLL for (int v = 0; v < 4; v++) UNROLL for (int r = 0; r < R; r++) UNROLL for (int c = 0; c < C; c++) {
                const __m256i p = _mm256_maddubs_epi16(w[r].q[4 * g + v], x[c].q[4 * g + v]);
                A[r][c] = v ? _mm256_add_epi16(A[r][c], p) : p;
            }
            UNROLL for (int r = 0; r < R; r++) UNROLL for (int c = 0; c < C; c++) {
                const __m256i a = _mm256_madd_epi16(A[r][c], w[r].sc[g]);
                S[r][c] = g ? _mm256_add_epi32(S[r][c], a) : a;
            }
        }
        UNROLL for (int r = 0; r < R; r++) UNROLL for (int c = 0; c < C; c++) F[r * NC + c] =
            _mm256_fmadd_ps(w[r].mf, x[c].u.mf, F[r * NC + c]);
    }
    UNROLL for (int r = 0; r < R; r++) UNROLL for (int c = 0; c < C; c++) F[r * NC + c] =
        _mm256_fmadd_ps(_mm256_cvtepi32_ps(S[r][c]), _mm256_set1_ps(w[r].d * x[c].d), F[r * NC + c]);
}

#ifndef RT
#define RT 3 /* weight rows decoded at a time */
#endif
#ifndef CT
#define CT 1 /* columns a register tile takes */
#endif
#ifndef RT4 /* the same for Q4_K, whose tile needs fewer registers */
#define RT4 4
#endif
#ifndef CT4
#define CT4 2
#endif
#ifndef RT6 /* and for Q6_K */
#define RT6 3
#endif
#ifndef CT6
#define CT6 2
#endif
#ifndef RTX /* and for IQ4_XS */
#define RTX 3
#endif
#ifndef CTX
#define CTX 2
#endif
AI void kq_cols(const int T, const int R, const kw_t *w, const kx_t *x, int nc, __m256 *F) {
    const int ct = T == PL_TYPE_Q4_K ? CT4 : T == PL_TYPE_Q6_K ? CT6 : T == PL_TYPE_IQ4_XS ? CTX : CT;
    int c = 0;
    for (; c + ct <= nc; c += ct) kq_tile(T, R, ct, w, x + c, F + c);
    for (; c < nc; c++) kq_tile(T, R, 1, w, x + c, F + c);
}

/* R rows' super-block k (rows r0.., rt a group) decoded into wt, each block
 * of the next row group prefetched: the rows of a group stream in step,
 * which the hardware prefetcher follows poorly. */
AI void decode_rows(const int T, const uint8_t *w, size_t rb, int r0, int R, int rt, int k, kw_t *wt) {
    const size_t bs = kq_bsize(T);
    for (int r = 0; r < R; r++) {
        const uint8_t *b = w + (size_t)(r0 + r) * rb + (size_t)k * bs;
        for (size_t o = 0; o < bs; o += 64) _mm_prefetch((const char *)b + rt * rb + o, _MM_HINT_T0);
        decode_w(T, b, &wt[r]);
    }
}

/* After row group r0 (R rows, yr = its row in yb): the outputs of 16 row
 * groups leave together (k0 > 0: added to what earlier super-blocks left).
 * Written one row group at a time, the columns' lines (ys apart, 8 KB for
 * 2048 rows) all fall in one L1 set and evict the tile's data (-12% at
 * 2048 rows). */
AI void flush_rows(const float *yb, int rows, int r0, int R, int yr, int rt, int c0, int nc, int k0, float *y,
                   size_t ys) {
    if (r0 + R == rows || yr + R == 16 * rt)
        for (int c = 0; c < nc; c++) {
            float *o = &y[(size_t)(c0 + c) * ys + r0 + R - (yr + R)];
            const float *s = yb + c * 64;
            int r = 0;
            /* in vectors: gcc kept this loop scalar, 6-7% of a 2048-column
             * Q4_K product's time at the avx512-wide level */
            for (; r + 8 <= yr + R; r += 8)
                _mm256_storeu_ps(o + r, _mm256_add_ps(k0 ? _mm256_loadu_ps(o + r) : _mm256_setzero_ps(),
                                                      _mm256_loadu_ps(s + r)));
            for (; r < yr + R; r++) o[r] = (k0 ? o[r] : 0.0f) + s[r];
        }
}

AI void mm_kq(const int T, const uint8_t *w, size_t rb, int rows, int cols, const uint8_t *xq, size_t xs, int nb,
              float *y, size_t ys) {
    const int rt = T == PL_TYPE_Q4_K ? RT4 : T == PL_TYPE_Q6_K ? RT6 : T == PL_TYPE_IQ4_XS ? RTX : RT;
    const int nsb = cols / QK_K;
    kx_t xt[KC * NC];
    kw_t wt[4];
    __m256 F[4 * NC];
    float yb[NC * 64]; /* outputs of up to 16 row groups */
    for (int c0 = 0; c0 < nb; c0 += NC) {
        const int nc = nb - c0 < NC ? nb - c0 : NC;
        for (int k0 = 0; k0 < nsb; k0 += KC) {
            const int kc = nsb - k0 < KC ? nsb - k0 : KC;
            for (int c = 0; c < nc; c++) {
                const block_q8_K *xb = (const block_q8_K *)(xq + (size_t)(c0 + c) * xs) + k0;
                for (int k = 0; k < kc; k++) prep_x(T, xb + k, &xt[k * NC + c]);
            }
            for (int r0 = 0; r0 < rows; r0 += rt) {
                const int R = rows - r0 < rt ? rows - r0 : rt, yr = r0 % (16 * rt);
                for (int i = 0; i < R * NC; i++) F[i] = _mm256_setzero_ps();
                for (int k = 0; k < kc; k++) {
                    decode_rows(T, w, rb, r0, R, rt, k0 + k, wt);
                    if (R == rt)
                        kq_cols(T, rt, wt, &xt[k * NC], nc, F);
                    else
                        for (int r = 0; r < R; r++) kq_cols(T, 1, wt + r, &xt[k * NC], nc, F + r * NC);
                }
                for (int r = 0; r < R; r++)
                    for (int c = 0; c < nc; c++) yb[c * 64 + yr + r] = hsum(F[r * NC + c]);
                flush_rows(yb, rows, r0, R, yr, rt, c0, nc, k0, y, ys);
            }
        }
    }
}

/* ---------------------------------------------------------------- K-quants, generation
 * One column (nb = 1) with mm_kq's arithmetic, bit for bit, so that a
 * column's result never depends on what else is in its batch (picolm.h).
 * The integers are exact in any layout: each 32-bit lane of mm_kq's tile
 * holds a fixed sum of products, and these kernels form the same sums from
 * the blocks as stored (no transposes: a tree of hadds puts a sub-block's
 * total in its lane); the float steps are the tile's, in its order (the
 * min term, then the scaled integers; a hsum per KC super-blocks, added in
 * turn). R rows stream in step against one column, prefetched ahead. */

/* The four products of each dword, as int32 (exact). */
AI __m256i dot4(__m256i w, __m256i x) {
#ifdef PL_VNNI
    return dpbusd(_mm256_setzero_si256(), w, x);
#else
    return _mm256_madd_epi16(_mm256_maddubs_epi16(w, x), _mm256_set1_epi16(1));
#endif
}

/* h = [sum p0 lo .. sum p3 lo | sum p0 hi .. sum p3 hi] (lo/hi: 128-bit halves) */
AI __m256i hsum4x(const __m256i *p) {
    return _mm256_hadd_epi32(_mm256_hadd_epi32(p[0], p[1]), _mm256_hadd_epi32(p[2], p[3]));
}

/* A weight super-block decoded for mvx_col: its quants as stored (a), its
 * scales (sc: per 32-bit lane as mm_kq's lanes need them; Q6_K: s8 and the
 * four groups' lanes; Q4_K: d * scale in dsc), -dmin * mins (Q4_K/Q5_K), d. */
typedef struct {
    __m256i a[8], sc[4], aux;
    __m256 mf, dsc; /* dsc: Q4_K's d * scale per sub-block, as mm_kq's */
    float d;
} mvw_t;

AI void mvx_decode(const int T, const uint8_t *b, mvw_t *o) {
    if (T == PL_TYPE_Q6_K) {
        const block_q6_K *q = (const block_q6_K *)b;
        q6_half(q->ql, q->qh, o->a);
        q6_half(q->ql + 64, q->qh + 32, o->a + 4);
        const __m128i s8 = ld128(q->scales);
        UNROLL for (int g = 0; g < 4; g++) {
            /* mm_kq's lane p: 8 products of sub-block 4g + (0 0 2 2 1 1 3 3)[p] */
            const __m128i m = _mm_setr_epi8((char)(4 * g), (char)(4 * g), (char)(4 * g + 2), (char)(4 * g + 2),
                                            (char)(4 * g + 1), (char)(4 * g + 1), (char)(4 * g + 3),
                                            (char)(4 * g + 3), 0, 0, 0, 0, 0, 0, 0, 0);
            o->sc[g] = _mm256_cvtepi8_epi32(_mm_shuffle_epi8(s8, m));
        }
        o->aux = _mm256_slli_epi16(_mm256_cvtepi8_epi16(s8), 5);
        o->d = ldh(&q->d);
        return;
    }
    if (T == PL_TYPE_IQ4_XS) {
        const block_iq4_xs *q = (const block_iq4_xs *)b;
        const __m256i book = iq4_book();
        UNROLL for (int s = 0; s < 8; s++) o->a[s] = iq4_sub(book, q->qs + 16 * s); /* signed */
        o->sc[0] = _mm256_cvtepi16_epi32(_mm256_castsi256_si128(iq4xs_scales(q)));
        o->d = ldh(&q->d);
        return;
    }
    if (T == PL_TYPE_Q5_K) q5k_quants(b, o->a);
    else nibbles8(b + 16, o->a);
    const __m128i sm = k4_scales(b + 4);
    o->mf = _mm256_mul_ps(_mm256_set1_ps(-ldh(b + 2)), _mm256_cvtepi32_ps(_mm256_cvtepu8_epi32(_mm_srli_si128(sm, 8))));
    const __m256i sc = _mm256_cvtepu8_epi32(sm);
    if (T == PL_TYPE_Q4_K) o->dsc = _mm256_mul_ps(_mm256_set1_ps(ldh(b)), _mm256_cvtepi32_ps(sc));
    else o->sc[0] = _mm256_permute4x64_epi64(sc, 0x44), o->sc[1] = _mm256_permute4x64_epi64(sc, 0xee);
    o->d = ldh(b);
}

/* F + one column's products with a decoded super-block, as mm_kq's tile
 * forms them (lane integers, then its float steps in its order). */
AI __m256 mvx_col(const int T, const mvw_t *w, const block_q8_K *y, __m256 F) {
    __m256i P[8], S;
    if (T == PL_TYPE_Q6_K) {
        UNROLL for (int k = 0; k < 8; k++) P[k] = dot4(w->a[k], ld256(y->qs + 32 * k));
        UNROLL for (int g = 0; g < 4; g++) {
            const __m256i v = _mm256_add_epi32(_mm256_unpacklo_epi64(P[2 * g], P[2 * g + 1]),
                                               _mm256_unpackhi_epi64(P[2 * g], P[2 * g + 1]));
            const __m256i t = _mm256_mullo_epi32(v, w->sc[g]);
            S = g ? _mm256_add_epi32(S, t) : t;
        }
        S = _mm256_sub_epi32(S, _mm256_madd_epi16(w->aux, ld256(y->bsums)));
        return _mm256_fmadd_ps(_mm256_cvtepi32_ps(S), _mm256_set1_ps(w->d * y->d), F);
    }
    if (T == PL_TYPE_IQ4_XS) {
        UNROLL for (int s = 0; s < 8; s++) {
            const __m256i xs = _mm256_sign_epi8(ld256(y->qs + 32 * s), w->a[s]), aw = _mm256_sign_epi8(w->a[s], w->a[s]);
#ifdef PL_VNNI
            P[s] = dpbusd(_mm256_setzero_si256(), aw, xs);
#else
            P[s] = _mm256_madd_epi16(_mm256_maddubs_epi16(aw, xs), _mm256_set1_epi16(1));
#endif
        }
        const __m256i H = hsum4x(P), G = hsum4x(P + 4);
        S = _mm256_add_epi32(_mm256_permute2x128_si256(H, G, 0x20), _mm256_permute2x128_si256(H, G, 0x31));
        S = _mm256_mullo_epi32(S, w->sc[0]);
        return _mm256_fmadd_ps(_mm256_cvtepi32_ps(S), _mm256_set1_ps(w->d * y->d), F);
    }
    const __m256 xmf =
        _mm256_mul_ps(_mm256_set1_ps(y->d), _mm256_cvtepi32_ps(_mm256_madd_epi16(ld256(y->bsums), _mm256_set1_epi16(1))));
    F = _mm256_fmadd_ps(w->mf, xmf, F);
    UNROLL for (int s = 0; s < 8; s++) P[s] = dot4(w->a[s], ld256(y->qs + 32 * s));
    const __m256i H = hsum4x(P), G = hsum4x(P + 4);
    if (T == PL_TYPE_Q4_K) {
        /* mm_kq's lane s: sub-block s, scaled in float */
        S = _mm256_add_epi32(_mm256_permute2x128_si256(H, G, 0x20), _mm256_permute2x128_si256(H, G, 0x31));
        return _mm256_fmadd_ps(_mm256_cvtepi32_ps(S), _mm256_mul_ps(w->dsc, _mm256_set1_ps(y->d)), F);
    } else {
        /* lane p: half p/4 of sub-blocks p%4 and 4 + p%4, scaled */
        S = _mm256_add_epi32(_mm256_mullo_epi32(H, w->sc[0]), _mm256_mullo_epi32(G, w->sc[1]));
    }
    return _mm256_fmadd_ps(_mm256_cvtepi32_ps(S), _mm256_set1_ps(w->d * y->d), F);
}

/* R rows against one column, each row mvx_col's arithmetic. */
AI void mvx_tile(const int T, const int R, const uint8_t *w, size_t rb, int nsb, const uint8_t *xq, float *out,
                 const uint8_t **pf) {
    const size_t bs = kq_bsize(T);
    float o[4] = {0};
    for (int k0 = 0; k0 < nsb; k0 += KC) {
        const int k1 = nsb - k0 < KC ? nsb : k0 + KC;
        __m256 F[4];
        UNROLL for (int r = 0; r < R; r++) F[r] = _mm256_setzero_ps();
        for (int i = k0; i < k1; i++) {
            prefetch_to(pf, w + PF_AHEAD + (size_t)(i + 1) * R * bs);
            UNROLL for (int r = 0; r < R; r++) {
                mvw_t d;
                mvx_decode(T, w + (size_t)r * rb + (size_t)i * bs, &d);
                F[r] = mvx_col(T, &d, (const block_q8_K *)xq + i, F[r]);
            }
        }
        UNROLL for (int r = 0; r < R; r++) o[r] = (k0 ? o[r] : 0.0f) + hsum(F[r]);
    }
    UNROLL for (int r = 0; r < R; r++) out[r] = o[r];
}

#ifndef MVR
#define MVR 3 /* rows per pass (generation; Zen 4: Q4_K 15.9/17.4/19.5 GB/s at 1/2/3) */
#endif
#ifndef MVR6
#define MVR6 2 /* Q6_K, which runs out of registers at 3 (20.7 GB/s at 2, 12 at 3) */
#endif
AI void mv_kx(const int T, const uint8_t *w, size_t rb, int rows, int cols, const uint8_t *xq, float *y) {
    const int nsb = cols / QK_K, R = T == PL_TYPE_Q6_K ? MVR6 : MVR;
    const uint8_t *pf = w + PF_AHEAD;
    int r = 0;
    for (; r + R <= rows; r += R) mvx_tile(T, R, w + (size_t)r * rb, rb, nsb, xq, y + r, &pf);
    for (; r < rows; r++) mvx_tile(T, 1, w + (size_t)r * rb, rb, nsb, xq, y + r, &pf);
}

/* A few columns (2 <= nb <= FEW_MAX) in mm_kq's layout and arithmetic: the
 * columns' activations prepared once per call (prep_x), each weight
 * super-block decoded and rearranged once (decode_w) and held while
 * kq_tile runs it against every column, a row at a time, prefetched ahead
 * as one stream. Next to mm_kq it skips the row groups and the output
 * staging that pay off at many columns; next to one-column kernels run per
 * column, a column costs 8 byte-product steps and the scale steps, with no
 * horizontal sums (Zen 4, Q4_K at the avx512 level: ~5 ns per super-block
 * for the decode, ~1.7 per column). FR rows at a time share the columns'
 * loads. */
#define FEW_MAX 16 /* columns few_kx takes at most (kx_max) */
#ifndef FR
#define FR 2 /* rows per pass (Zen 4, 4 columns: Q6_K and IQ4_XS -14% time against 1, Q4_K -3%) */
#endif
AI void few_kx(const int T, const uint8_t *w, size_t rb, int rows, int cols, const uint8_t *xq, size_t xs, int nb,
               float *y, size_t ys) {
    const size_t bs = kq_bsize(T);
    const int nsb = cols / QK_K;
    kx_t xt[KC * FEW_MAX];
    const uint8_t *pf = w + PF_AHEAD;
    for (int k0 = 0; k0 < nsb; k0 += KC) {
        const int kc = nsb - k0 < KC ? nsb - k0 : KC;
        for (int c = 0; c < nb; c++) {
            const block_q8_K *xb = (const block_q8_K *)(xq + (size_t)c * xs) + k0;
            for (int k = 0; k < kc; k++) prep_x(T, xb + k, &xt[k * FEW_MAX + c]);
        }
        for (int r0 = 0; r0 < rows; r0 += FR) {
            const int R = rows - r0 < FR ? rows - r0 : FR;
            __m256 F[FR * NC];
            for (int r = 0; r < R; r++)
                for (int c = 0; c < nb; c++) F[r * NC + c] = _mm256_setzero_ps();
            for (int k = 0; k < kc; k++) {
                const uint8_t *b = w + (size_t)r0 * rb + (size_t)(k0 + k) * bs;
                prefetch_to(&pf, w + PF_AHEAD + (size_t)r0 * rb + (size_t)(k0 + k + 1) * R * bs);
                kw_t wt[FR];
                if (R == FR) {
                    /* FR rows share each column's loads */
                    UNROLL for (int r = 0; r < FR; r++) decode_w(T, b + (size_t)r * rb, &wt[r]);
                    for (int c = 0; c < nb; c++) kq_tile(T, FR, 1, wt, &xt[k * FEW_MAX + c], F + c);
                } else {
                    decode_w(T, b, &wt[0]);
                    for (int c = 0; c < nb; c++) kq_tile(T, 1, 1, wt, &xt[k * FEW_MAX + c], F + c);
                }
            }
            for (int r = 0; r < R; r++)
                for (int c = 0; c < nb; c++) {
                    float *o = &y[(size_t)c * ys + r0 + r];
                    *o = (k0 ? *o : 0.0f) + hsum(F[r * NC + c]);
                }
        }
    }
}

/* Up to how many columns the one- and few-column kernels take a type (a
 * K-quant or IQ4_XS), not mm_kq: where few_kx was faster, Zen 4, rows in
 * L2 (best of many runs; ns per 2 rows' super-block at 4 and 16 columns,
 * few_kx / mm_kq): with vpdpbusd Q4_K 14.5/23.3 and 41.7/47.8, Q6_K
 * 14.6/29.9 and 45.4/62.2; in AVX2 Q4_K 20.8/21.2 at 4 and slower from 6,
 * Q6_K 36.1/37.4 at 8, slower at 12. */
static inline int kx_max(uint32_t type) {
#ifdef PL_VNNI
    (void)type;
    return 16;
#else
    return type == PL_TYPE_Q4_K ? 4 : 8;
#endif
}
static inline int kx_small(uint32_t type, int nb) { return nb <= kx_max(type); }

/* One instance per type of few_kx and mm_kq, never inlined: each holds
 * its prepared activations on the stack (~135 and ~280 KB), and a caller
 * that inlined several would stack them (a 1 MB thread stack overflowed
 * under ASan). */
#define FEW_FN(name, T)                                                                                           \
    static NOINLINE void name(const uint8_t *w, size_t rb, int rows, int cols, const uint8_t *xq, size_t xs, int nb, \
                              float *y, size_t ys) {                                                             \
        few_kx(T, w, rb, rows, cols, xq, xs, nb, y, ys);                                                         \
    }
FEW_FN(few_q4_K, PL_TYPE_Q4_K)
FEW_FN(few_q5_K, PL_TYPE_Q5_K)
FEW_FN(few_q6_K, PL_TYPE_Q6_K)
FEW_FN(few_iq4_xs, PL_TYPE_IQ4_XS)

#if defined(PL_VNNI) && !defined(PL_VNNI_EMULATE)
/* ---------------------------------------------------------------- Q4_K, one column, 512-bit
 * few_kx's arithmetic for one column with fewer vector instructions: on an
 * Intel core, whose 512-bit code leaves two vector ports, few_kx's decode
 * (the transposed quants split into 256-bit halves, the scales a row at a
 * time) held one column to ~14 GB/s with the rows in L2. Here a row's
 * quants stay in the 512-bit vectors q4k_vectors forms ([v | v+4]), which
 * the column's activations match, and each row's sub-block sums are the
 * two halves added; two rows share a vector from there on (scales, float
 * steps), each half computing its row lane for lane as kq_tile does. The
 * same integers and float steps in the same order: bit for bit few_kx's. */
typedef struct {
    __m512i q[4]; /* prep_x's vectors v and v + 4 */
    __m512 mf;    /* its mf in both halves */
    __m512 dv;
} mx1_t;

/* Row b's super-block . x: each sub-block's sum in both halves (add them). */
AI __m512i q4k1_sums(const uint8_t *b, const mx1_t *x) {
    const __m512i lo = _mm512_loadu_si512(b + 16), hi = _mm512_loadu_si512(b + 80);
    __m512i a[2];
    UNROLL for (int v = 0; v < 4; v++)
        a[v & 1] = _mm512_dpbusd_epi32(v < 2 ? _mm512_setzero_si512() : a[v & 1], q4k_vec512(lo, hi, v), x->q[v]);
    return _mm512_add_epi32(a[0], a[1]);
}

/* F (rows b0 and b0 + d in its halves) + their super-blocks . x */
AI __m512 q4k1_pair(const uint8_t *b0, size_t d, const mx1_t *x, __m512 F) {
    const __m512i s0 = q4k1_sums(b0, x), s1 = q4k1_sums(b0 + d, x);
    const __m512 c0 = q4k_scales512(b0), c1 = q4k_scales512(b0 + d);
    const __m512i S = _mm512_add_epi32(_mm512_shuffle_i64x2(s0, s1, 0x44), _mm512_shuffle_i64x2(s0, s1, 0xee));
    F = _mm512_fmadd_ps(_mm512_shuffle_f32x4(c0, c1, 0xee), x->mf, F);
    return _mm512_fmadd_ps(_mm512_cvtepi32_ps(S), _mm512_mul_ps(_mm512_shuffle_f32x4(c0, c1, 0x44), x->dv), F);
}

/* ---------------------------------------------------------------- Q6_K, one column, 512-bit
 * few_kx's Q6_K steps (kq_tile's, at the VNNI levels) for one column with
 * two rows in each vector, row r in the low half and r + 1 in the high:
 * each half computes its row lane for lane as few_kx does, the same
 * integers and float steps in the same order, so bit for bit few_kx's.
 * The quants and scales of both rows decode in one 512-bit pass, where
 * few_kx decodes each row in 256 bits. */
typedef struct {
    __m512i q[8]; /* prep_x's vectors, in both halves */
    __m512i aux;  /* its bsums, in both halves */
    float d;
} mx6_t;

/* The two rows' 32 bytes at ql/qh offset o, one a half. */
AI __m512i ld2x(const uint8_t *a, const uint8_t *b, size_t o) { return cat_i(ld256(a + o), ld256(b + o)); }

/* F (rows b0 and b1 in its halves) + their super-blocks . x */
AI __m512 q6k1_pair(const uint8_t *b0, const uint8_t *b1, const mx6_t *x, __m512 F) {
    const block_q6_K *w0 = (const block_q6_K *)b0, *w1 = (const block_q6_K *)b1;
    __m512i a[8], q[8];
    UNROLL for (int h = 0; h < 2; h++) {
        const __m512i l1 = ld2x(w0->ql, w1->ql, 64 * h), l2 = ld2x(w0->ql, w1->ql, 64 * h + 32);
        const __m512i hb = ld2x(w0->qh, w1->qh, 32 * h);
        Q6_HALF(_mm512, si512, l1, l2, hb, a + 4 * h);
    }
    UNROLL for (int g = 0; g < 4; g++) { /* pair64, lane for lane */
        q[2 * g] = _mm512_unpacklo_epi64(a[2 * g], a[2 * g + 1]);
        q[2 * g + 1] = _mm512_unpackhi_epi64(a[2 * g], a[2 * g + 1]);
    }
    const __m256i s8 = _mm256_set_m128i(ld128(w1->scales), ld128(w0->scales));
    __m512i S = _mm512_setzero_si512();
    UNROLL for (int g = 0; g < 4; g++) {
        const __m512i sc = _mm512_cvtepi8_epi16(_mm256_shuffle_epi8(s8, _mm256_broadcastsi128_si256(q6_sc_mask(g))));
        const __m512i p = _mm512_add_epi16(_mm512_maddubs_epi16(q[2 * g], x->q[2 * g]),
                                           _mm512_maddubs_epi16(q[2 * g + 1], x->q[2 * g + 1]));
        S = _mm512_dpwssd_epi32(S, p, sc);
    }
    S = _mm512_sub_epi32(S, _mm512_madd_epi16(_mm512_slli_epi16(_mm512_cvtepi8_epi16(s8), 5), x->aux));
    const __m512 dd = cat_f(_mm256_set1_ps(ldh(&w0->d) * x->d), _mm256_set1_ps(ldh(&w1->d) * x->d));
    return _mm512_fmadd_ps(_mm512_cvtepi32_ps(S), dd, F);
}

/* One column of Q4_K or Q6_K: row pairs MV1P at a time, as above. */
#ifndef MV1P
#define MV1P 2 /* row pairs a pass */
#endif
AI void mv1_kx(const int T, const uint8_t *w, size_t rb, int rows, int cols, const uint8_t *xq, float *y) {
    const size_t bs = kq_bsize(T);
    const int nsb = cols / QK_K;
    union {
        mx1_t q4[KC];
        mx6_t q6[KC];
    } xt;
    /* the prefetch runs PF_AHEAD past the last row of a pass, not its first */
    const uint8_t *const pfw = w + PF_AHEAD + (size_t)(2 * MV1P - 1) * rb;
    const uint8_t *pf = pfw;
    for (int k0 = 0; k0 < nsb; k0 += KC) {
        const int kc = nsb - k0 < KC ? nsb - k0 : KC;
        for (int k = 0; k < kc; k++) {
            kx_t t;
            prep_x(T, (const block_q8_K *)xq + k0 + k, &t);
            if (T == PL_TYPE_Q4_K) {
                UNROLL for (int v = 0; v < 4; v++) xt.q4[k].q[v] = cat_i(t.q[v], t.q[v + 4]);
                xt.q4[k].mf = bc_f(t.u.mf);
                xt.q4[k].dv = _mm512_set1_ps(t.d);
            } else {
                UNROLL for (int v = 0; v < 8; v++) xt.q6[k].q[v] = bc_i(t.q[v]);
                xt.q6[k].aux = bc_i(t.u.aux);
                xt.q6[k].d = t.d;
            }
        }
        for (int r0 = 0; r0 < rows; r0 += 2 * MV1P) {
            const int R = rows - r0 < 2 * MV1P ? rows - r0 : 2 * MV1P;
            __m512 F[MV1P];
            UNROLL for (int p = 0; p < MV1P; p++) F[p] = _mm512_setzero_ps();
            for (int k = 0; k < kc; k++) {
                const uint8_t *b = w + (size_t)r0 * rb + (size_t)(k0 + k) * bs;
                prefetch_to(&pf, pfw + (size_t)r0 * rb + (size_t)(k0 + k + 1) * R * bs);
                /* the last rows: an odd one pairs with itself */
                UNROLL for (int p = 0; p < MV1P; p++) {
                    if (2 * p >= R) break;
                    const uint8_t *b0 = b + (size_t)(2 * p) * rb;
                    const size_t d = 2 * p + 1 < R ? rb : 0;
                    F[p] = T == PL_TYPE_Q4_K ? q4k1_pair(b0, d, &xt.q4[k], F[p])
                                             : q6k1_pair(b0, b0 + d, &xt.q6[k], F[p]);
                }
            }
            for (int r = 0; r < R; r++) {
                const __m256 h = r & 1 ? hi_f(F[r / 2]) : _mm512_castps512_ps256(F[r / 2]);
                y[r0 + r] = (k0 ? y[r0 + r] : 0.0f) + hsum(h);
            }
        }
    }
}
static NOINLINE void mv1_q4_K(const uint8_t *w, size_t rb, int rows, int cols, const uint8_t *xq, float *y) {
    mv1_kx(PL_TYPE_Q4_K, w, rb, rows, cols, xq, y);
}
static NOINLINE void mv1_q6_K(const uint8_t *w, size_t rb, int rows, int cols, const uint8_t *xq, float *y) {
    mv1_kx(PL_TYPE_Q6_K, w, rb, rows, cols, xq, y);
}
#endif

/* nb = 1 .. as kx_small allows */
AI void kx_cols(const int T, const uint8_t *w, size_t rb, int rows, int cols, const uint8_t *xq, size_t xs, int nb,
                float *y, size_t ys) {
#if defined(PL_VNNI) && !defined(PL_VNNI_EMULATE)
    if (nb == 1 && T == PL_TYPE_Q4_K) mv1_q4_K(w, rb, rows, cols, xq, y);
    else if (nb == 1 && T == PL_TYPE_Q6_K) mv1_q6_K(w, rb, rows, cols, xq, y);
    else
#endif
    if (nb == 1) mv_kx(T, w, rb, rows, cols, xq, y);
    else if (T == PL_TYPE_Q4_K) few_q4_K(w, rb, rows, cols, xq, xs, nb, y, ys);
    else if (T == PL_TYPE_Q5_K) few_q5_K(w, rb, rows, cols, xq, xs, nb, y, ys);
    else if (T == PL_TYPE_Q6_K) few_q6_K(w, rb, rows, cols, xq, xs, nb, y, ys);
    else few_iq4_xs(w, rb, rows, cols, xq, xs, nb, y, ys);
}

static NOINLINE void mm_q4_K(const uint8_t *w, size_t rb, int rows, int cols, const uint8_t *xq, size_t xs, int nb,
                             float *y, size_t ys) {
    mm_kq(PL_TYPE_Q4_K, w, rb, rows, cols, xq, xs, nb, y, ys);
}
static NOINLINE void mm_q5_K(const uint8_t *w, size_t rb, int rows, int cols, const uint8_t *xq, size_t xs, int nb,
                             float *y, size_t ys) {
    mm_kq(PL_TYPE_Q5_K, w, rb, rows, cols, xq, xs, nb, y, ys);
}
static NOINLINE void mm_q6_K(const uint8_t *w, size_t rb, int rows, int cols, const uint8_t *xq, size_t xs, int nb,
                             float *y, size_t ys) {
    mm_kq(PL_TYPE_Q6_K, w, rb, rows, cols, xq, xs, nb, y, ys);
}
static NOINLINE void mm_iq4_xs(const uint8_t *w, size_t rb, int rows, int cols, const uint8_t *xq, size_t xs, int nb,
                               float *y, size_t ys) {
    mm_kq(PL_TYPE_IQ4_XS, w, rb, rows, cols, xq, xs, nb, y, ys);
}

#if defined(PL_VNNI) && !defined(PL_VNNI_EMULATE)
/* ---------------------------------------------------------------- K-quants, many columns, 512-bit
 * The avx512-wide level, for cores that execute 512-bit vpdpbusd at full
 * width (Intel's server cores, Zen 5; Zen 4 splits it in two 256-bit
 * halves and gains nothing): mm_kq's tiles with two columns in each 512-bit
 * vector. Each half computes what mm_kq computes for its column, lane for
 * lane and in the same order, so the results are the avx512 level's bit
 * for bit. The weights are decoded as there (256-bit) and their loads
 * broadcast them to both halves. */
typedef struct {
    __m512i q[8];
    __m512i aux; /* Q6_K: bsums */
    __m512 mf;   /* Q4_K: d * (sum of each 32-weight sub-block) */
    __m512 dv;   /* each column's d in its half */
} kx2_t;

#define NCP (NC / 2) /* column pairs at a time (64 columns measured +3% at 128-token passes, for 270 KB more stack) */


/* Two columns' super-blocks (b1 NULL: a zero column, whose half is never
 * read) as prep_x lays out each. */
AI void prep_x2(const int T, const block_q8_K *b0, const block_q8_K *b1, kx2_t *o) {
    kx_t a, b;
    prep_x(T, b0, &a);
    if (b1) prep_x(T, b1, &b);
    else memset(&b, 0, sizeof b);
    UNROLL for (int v = 0; v < 8; v++) o->q[v] = cat_i(a.q[v], b.q[v]);
    if (T == PL_TYPE_Q6_K) o->aux = cat_i(a.u.aux, b.u.aux);
    else o->mf = cat_f(a.u.mf, b.u.mf);
    o->dv = cat_f(a.dv, b.dv);
}

/* F[r*NCP + c] += row r's super-block . column pair c's, r < R, c < C:
 * kq_tile's steps on both halves at once. */
AI void kq_tile_w(const int T, const int R, const int C, const kw_t *w, const kx2_t *x, __m512 *F) {
    __m512i S[4][4];
    if (T == PL_TYPE_Q4_K) {
        UNROLL for (int v = 0; v < 8; v++) {
            UNROLL for (int r = 0; r < R; r++) {
                const __m512i wv = bc_i(w[r].q[v]);
                UNROLL for (int c = 0; c < C; c++) S[r][c] =
                    _mm512_dpbusd_epi32(v ? S[r][c] : _mm512_setzero_si512(), wv, x[c].q[v]);
            }
            UNROLL for (int r = 0; r < R; r++) UNROLL for (int c = 0; c < C; c++) __asm__("" : "+v"(S[r][c]));
        }
        UNROLL for (int r = 0; r < R; r++) UNROLL for (int c = 0; c < C; c++) {
            F[r * NCP + c] = _mm512_fmadd_ps(bc_f(w[r].mf), x[c].mf, F[r * NCP + c]);
            const __m512 dd = _mm512_mul_ps(bc_f(w[r].dsc), x[c].dv);
            F[r * NCP + c] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(S[r][c]), dd, F[r * NCP + c]);
        }
        return;
    }
    { /* Q6_K */
        UNROLL for (int g = 0; g < 4; g++) {
            UNROLL for (int r = 0; r < R; r++) {
                const __m512i w0 = bc_i(w[r].q[2 * g]), w1 = bc_i(w[r].q[2 * g + 1]), sc = bc_i(w[r].sc[g]);
                UNROLL for (int c = 0; c < C; c++) {
                    const __m512i a = _mm512_add_epi16(_mm512_maddubs_epi16(w0, x[c].q[2 * g]),
                                                       _mm512_maddubs_epi16(w1, x[c].q[2 * g + 1]));
                    S[r][c] = _mm512_dpwssd_epi32(g ? S[r][c] : _mm512_setzero_si512(), a, sc);
                }
            }
            UNROLL for (int r = 0; r < R; r++) UNROLL for (int c = 0; c < C; c++) __asm__("" : "+v"(S[r][c]));
        }
        UNROLL for (int r = 0; r < R; r++) UNROLL for (int c = 0; c < C; c++) S[r][c] =
            _mm512_sub_epi32(S[r][c], _mm512_madd_epi16(bc_i(w[r].aux), x[c].aux));
    }
    UNROLL for (int r = 0; r < R; r++) UNROLL for (int c = 0; c < C; c++) F[r * NCP + c] = _mm512_fmadd_ps(
        _mm512_cvtepi32_ps(S[r][c]), _mm512_mul_ps(_mm512_set1_ps(w[r].d), x[c].dv), F[r * NCP + c]);
}

#ifndef CTW4
#define CTW4 4 /* Q4_K: column pairs a register tile takes */
#endif
#ifndef CTW6
#define CTW6 3 /* Q6_K */
#endif
#ifndef RTW6
#define RTW6 4 /* Q6_K: rows decoded at a time (Q4_K: RT4) */
#endif
AI void kq_cols_w(const int T, const int R, const kw_t *w, const kx2_t *x, int np, __m512 *F) {
    const int ct = T == PL_TYPE_Q4_K ? CTW4 : CTW6;
    int c = 0;
    for (; c + ct <= np; c += ct) {
        /* hidden from gcc, which otherwise hoists the tiles' broadcasts of
         * the rows out of this loop and keeps them as 512-bit copies on the
         * stack (two shuffles and a store per vector); each tile now
         * broadcasts them in its loads */
        const kw_t *wl = w;
        __asm__("" : "+r"(wl));
        kq_tile_w(T, R, ct, wl, x + c, F + c);
    }
    for (; c < np; c++) kq_tile_w(T, R, 1, w, x + c, F + c);
}

/* hsum of both halves of F[0], F[NCP], F[2 NCP], F[3 NCP] (4 rows, a
 * column pair), in hsum's own pairs, ((v0+v4) + (v2+v6)) + ((v1+v5) +
 * (v3+v7)), so bit for bit the same, but four rows and two columns per
 * step: rows 0-3 of the pair's first column to o[0..3], of its second to
 * o[64..67]. */
AI void hsum4x2(const __m512 *F, float *o) {
    /* lanes i, i+4 of each half of a and b side by side */
    const __m512i lo = _mm512_setr_epi32(0, 1, 2, 3, 16, 17, 18, 19, 8, 9, 10, 11, 24, 25, 26, 27);
    const __m512i hi = _mm512_setr_epi32(4, 5, 6, 7, 20, 21, 22, 23, 12, 13, 14, 15, 28, 29, 30, 31);
    const __m512 s01 = _mm512_add_ps(_mm512_permutex2var_ps(F[0], lo, F[NCP]), _mm512_permutex2var_ps(F[0], hi, F[NCP]));
    const __m512 s23 =
        _mm512_add_ps(_mm512_permutex2var_ps(F[2 * NCP], lo, F[3 * NCP]), _mm512_permutex2var_ps(F[2 * NCP], hi, F[3 * NCP]));
    /* per half: s01 = rows 0, 1 (four sums each), s23 = rows 2, 3; then
     * lanes 0,1 against 2,3 of each row's four */
    const __m512i l2 = _mm512_setr_epi32(0, 1, 4, 5, 16, 17, 20, 21, 8, 9, 12, 13, 24, 25, 28, 29);
    const __m512i h2 = _mm512_setr_epi32(2, 3, 6, 7, 18, 19, 22, 23, 10, 11, 14, 15, 26, 27, 30, 31);
    const __m512 t = _mm512_add_ps(_mm512_permutex2var_ps(s01, l2, s23), _mm512_permutex2var_ps(s01, h2, s23));
    /* per half: rows 0-3 two sums each, adjacent */
    const __m512i ev = _mm512_setr_epi32(0, 2, 4, 6, 0, 2, 4, 6, 8, 10, 12, 14, 8, 10, 12, 14);
    const __m512i od = _mm512_setr_epi32(1, 3, 5, 7, 1, 3, 5, 7, 9, 11, 13, 15, 9, 11, 13, 15);
    const __m512 u = _mm512_add_ps(_mm512_permutexvar_ps(ev, t), _mm512_permutexvar_ps(od, t));
    _mm_storeu_ps(o, _mm512_castps512_ps128(u));
    _mm_storeu_ps(o + 64, _mm512_extractf32x4_ps(u, 2));
}

/* mm_kq with kx2_t activations: the same loops, column pairs for columns. */
AI void mm_kq_w(const int T, const uint8_t *w, size_t rb, int rows, int cols, const uint8_t *xq, size_t xs, int nb,
                float *y, size_t ys) {
    const int rt = T == PL_TYPE_Q4_K ? RT4 : RTW6;
    const int nsb = cols / QK_K;
    kx2_t xt[KC * NCP];
    kw_t wt[4];
    __m512 F[4 * NCP];
    float yb[NC * 64];
    for (int c0 = 0; c0 < nb; c0 += NC) {
        const int nc = nb - c0 < NC ? nb - c0 : NC, np = (nc + 1) / 2;
        for (int k0 = 0; k0 < nsb; k0 += KC) {
            const int kc = nsb - k0 < KC ? nsb - k0 : KC;
            for (int p = 0; p < np; p++) {
                const block_q8_K *x0 = (const block_q8_K *)(xq + (size_t)(c0 + 2 * p) * xs) + k0;
                const block_q8_K *x1 = 2 * p + 1 < nc ? (const block_q8_K *)(xq + (size_t)(c0 + 2 * p + 1) * xs) + k0 : NULL;
                for (int k = 0; k < kc; k++) prep_x2(T, x0 + k, x1 ? x1 + k : NULL, &xt[k * NCP + p]);
            }
            for (int r0 = 0; r0 < rows; r0 += rt) {
                const int R = rows - r0 < rt ? rows - r0 : rt, yr = r0 % (16 * rt);
                for (int i = 0; i < R * NCP; i++) F[i] = _mm512_setzero_ps();
                for (int k = 0; k < kc; k++) {
                    decode_rows(T, w, rb, r0, R, rt, k0 + k, wt);
                    if (R == rt)
                        kq_cols_w(T, rt, wt, &xt[k * NCP], np, F);
                    else
                        for (int r = 0; r < R; r++) kq_cols_w(T, 1, wt + r, &xt[k * NCP], np, F + r * NCP);
                }
                if (R == 4)
                    for (int p = 0; p < np; p++) hsum4x2(F + p, yb + 2 * p * 64 + yr);
                else
                    for (int r = 0; r < R; r++)
                        for (int p = 0; p < np; p++) {
                            yb[2 * p * 64 + yr + r] = hsum(_mm512_castps512_ps256(F[r * NCP + p]));
                            yb[(2 * p + 1) * 64 + yr + r] = hsum(hi_f(F[r * NCP + p]));
                        }
                flush_rows(yb, rows, r0, R, yr, rt, c0, nc, k0, y, ys);
            }
        }
    }
}

#define MMW_FN(name, T)                                                                                           \
    static NOINLINE void name(const uint8_t *w, size_t rb, int rows, int cols, const uint8_t *xq, size_t xs, int nb, \
                              float *y, size_t ys) {                                                             \
        mm_kq_w(T, w, rb, rows, cols, xq, xs, nb, y, ys);                                                        \
    }
MMW_FN(mmw_q4_K, PL_TYPE_Q4_K)
MMW_FN(mmw_q6_K, PL_TYPE_Q6_K)
#endif

/* ---------------------------------------------------------------- dispatch */

static void matmul_avx2(uint32_t type, const void *w, size_t row_bytes, int rows, int cols, const void *xq,
                        size_t xq_stride, int nb, float *y, size_t y_stride) {
    const uint8_t *W = (const uint8_t *)w, *X = (const uint8_t *)xq;
    switch (type) {
    case PL_TYPE_F32: mm_float(PL_TYPE_F32, W, row_bytes, rows, cols, X, xq_stride, nb, y, y_stride); return;
    case PL_TYPE_F16: mm_float(PL_TYPE_F16, W, row_bytes, rows, cols, X, xq_stride, nb, y, y_stride); return;
    case PL_TYPE_BF16: mm_float(PL_TYPE_BF16, W, row_bytes, rows, cols, X, xq_stride, nb, y, y_stride); return;
    case PL_TYPE_Q4_0: mm_q0(PL_TYPE_Q4_0, W, row_bytes, rows, cols, X, xq_stride, nb, y, y_stride); return;
    case PL_TYPE_Q4_1: mm_q0(PL_TYPE_Q4_1, W, row_bytes, rows, cols, X, xq_stride, nb, y, y_stride); return;
    case PL_TYPE_Q5_0: mm_q0(PL_TYPE_Q5_0, W, row_bytes, rows, cols, X, xq_stride, nb, y, y_stride); return;
    case PL_TYPE_Q5_1: mm_q0(PL_TYPE_Q5_1, W, row_bytes, rows, cols, X, xq_stride, nb, y, y_stride); return;
    case PL_TYPE_Q8_0: mm_q0(PL_TYPE_Q8_0, W, row_bytes, rows, cols, X, xq_stride, nb, y, y_stride); return;
    case PL_TYPE_IQ4_NL: mm_q0s(PL_TYPE_IQ4_NL, W, row_bytes, rows, cols, X, xq_stride, nb, y, y_stride); return;
    case PL_TYPE_IQ4_XS:
        if (kx_small(PL_TYPE_IQ4_XS, nb))
            kx_cols(PL_TYPE_IQ4_XS, W, row_bytes, rows, cols, X, xq_stride, nb, y, y_stride);
        else
            mm_iq4_xs(W, row_bytes, rows, cols, X, xq_stride, nb, y, y_stride);
        return;
    case PL_TYPE_Q2_K: mm_rows(dot_q2_K, W, row_bytes, rows, cols, X, xq_stride, nb, y, y_stride); return;
    case PL_TYPE_Q3_K: mm_rows(dot_q3_K, W, row_bytes, rows, cols, X, xq_stride, nb, y, y_stride); return;
    case PL_TYPE_Q4_K:
        if (kx_small(PL_TYPE_Q4_K, nb))
            kx_cols(PL_TYPE_Q4_K, W, row_bytes, rows, cols, X, xq_stride, nb, y, y_stride);
        else
            mm_q4_K(W, row_bytes, rows, cols, X, xq_stride, nb, y, y_stride);
        return;
    case PL_TYPE_Q5_K:
        if (kx_small(PL_TYPE_Q5_K, nb))
            kx_cols(PL_TYPE_Q5_K, W, row_bytes, rows, cols, X, xq_stride, nb, y, y_stride);
        else
            mm_q5_K(W, row_bytes, rows, cols, X, xq_stride, nb, y, y_stride);
        return;
    case PL_TYPE_Q6_K:
        if (kx_small(PL_TYPE_Q6_K, nb))
            kx_cols(PL_TYPE_Q6_K, W, row_bytes, rows, cols, X, xq_stride, nb, y, y_stride);
        else
            mm_q6_K(W, row_bytes, rows, cols, X, xq_stride, nb, y, y_stride);
        return;
    default: pl_matmul_generic(type, w, row_bytes, rows, cols, xq, xq_stride, nb, y, y_stride); return;
    }
}

/* ---------------------------------------------------------------- attention, fp16 */

static void f32_to_f16_avx2(const float *src, pl_half *dst, int n) {
    int i = 0;
    for (; i + 8 <= n; i += 8)
        _mm_storeu_si128((__m128i *)(dst + i), _mm256_cvtps_ph(_mm256_loadu_ps(src + i), _MM_FROUND_TO_NEAREST_INT));
    for (; i < n; i++) dst[i] = pl_float_to_half(src[i]);
}

/* Eight K rows' fp16 at columns i..i+7 -> c[l] lane j = k[j][i + l]. */
AI void tr8x8_16(const pl_half *k, size_t stride, __m256 c[8]) {
    __m128i r[8], a[8], b[8];
    UNROLL for (int j = 0; j < 8; j++) r[j] = ld128(k + (size_t)j * stride);
    UNROLL for (int j = 0; j < 8; j += 2) {
        a[j] = _mm_unpacklo_epi16(r[j], r[j + 1]);
        a[j + 1] = _mm_unpackhi_epi16(r[j], r[j + 1]);
    }
    UNROLL for (int h = 0; h < 8; h += 4) {
        b[h] = _mm_unpacklo_epi32(a[h], a[h + 2]);
        b[h + 1] = _mm_unpackhi_epi32(a[h], a[h + 2]);
        b[h + 2] = _mm_unpacklo_epi32(a[h + 1], a[h + 3]);
        b[h + 3] = _mm_unpackhi_epi32(a[h + 1], a[h + 3]);
    }
    UNROLL for (int l = 0; l < 4; l++) {
        c[2 * l] = _mm256_cvtph_ps(_mm_unpacklo_epi64(b[l], b[l + 4]));
        c[2 * l + 1] = _mm256_cvtph_ps(_mm_unpackhi_epi64(b[l], b[l + 4]));
    }
}

/* expf.h's pl_expf on the double lanes of x, operation for operation, at
 * either width (P: _mm256 or _mm512, S: si256 or si512), into p (NaN not
 * yet restored): m31 is 31 in every 64-bit lane, TAB(j) pl_exp2_32[j]. */
#define EXP_STEPS(P, S, x, m31, TAB, p)                                                                           \
    do {                                                                                                         \
        const __typeof__(x) z_ =                                                                                 \
            P##_mul_pd(P##_max_pd(P##_min_pd(x, P##_set1_pd(89.0)), P##_set1_pd(-104.0)), P##_set1_pd(PL_EXP_N_LN2)); \
        __typeof__(x) kd_ = P##_add_pd(z_, P##_set1_pd(PL_EXP_SHIFT));                                          \
        const __typeof__(m31) ki_ = P##_castpd_##S(kd_);                                                         \
        kd_ = P##_sub_pd(kd_, P##_set1_pd(PL_EXP_SHIFT));                                                        \
        const __typeof__(x) r_ = P##_sub_pd(z_, kd_);                                                            \
        const __typeof__(m31) j_ = P##_and_##S(ki_, m31);                                                        \
        const __typeof__(m31) sb_ =                                                                              \
            P##_add_epi64(P##_castpd_##S(TAB(j_)), P##_slli_epi64(P##_sub_epi64(ki_, j_), 47));                  \
        (p) = P##_add_pd(P##_mul_pd(P##_set1_pd(PL_EXP_C3), r_), P##_set1_pd(PL_EXP_C2));                        \
        (p) = P##_add_pd(P##_mul_pd(p, r_), P##_set1_pd(PL_EXP_C1));                                             \
        (p) = P##_add_pd(P##_mul_pd(p, r_), P##_set1_pd(1.0));                                                   \
        (p) = P##_mul_pd(p, P##_cast##S##_pd(sb_));                                                              \
    } while (0)

AI __m256d exp_tab4(__m256i j) { return _mm256_i64gather_pd(pl_exp2_32, j, 8); }
static inline __m256d exp4(__m256d x) {
    __m256d p;
    EXP_STEPS(_mm256, si256, x, _mm256_set1_epi64x(31), exp_tab4, p);
    return _mm256_blendv_pd(p, x, _mm256_cmp_pd(x, x, _CMP_UNORD_Q)); /* NaN stays NaN */
}

#if defined(__AVX512F__)
/* The table's 32 entries in four vectors, looked up by two-source permutes
 * rather than a gather. */
AI __m512d exp_tab8(__m512i j) {
    const __m512d t0 = _mm512_permutex2var_pd(_mm512_loadu_pd(pl_exp2_32), j, _mm512_loadu_pd(pl_exp2_32 + 8));
    const __m512d t1 = _mm512_permutex2var_pd(_mm512_loadu_pd(pl_exp2_32 + 16), j, _mm512_loadu_pd(pl_exp2_32 + 24));
    return _mm512_mask_blend_pd(_mm512_test_epi64_mask(j, _mm512_set1_epi64(16)), t0, t1);
}
/* exp4 on 8 lanes: the same IEEE double steps lane for lane. */
AI __m512d exp8(__m512d x) {
    __m512d p;
    EXP_STEPS(_mm512, si512, x, _mm512_set1_epi64(31), exp_tab8, p);
    return _mm512_mask_blend_pd(_mm512_cmp_pd_mask(x, x, _CMP_UNORD_Q), p, x); /* NaN stays NaN */
}
#endif

/* pl_softmax_exp (generic.c), 8 at a time: the same lanes, the same sums. */
static float softmax_exp_avx2(float *sc, int n, float mx) {
    __m256d lo = _mm256_setzero_pd(), hi = _mm256_setzero_pd();
    const __m256 m = _mm256_set1_ps(mx);
    int t = 0;
#if defined(__AVX512F__)
    { /* lane t % 8 of one 512-bit sum is lo's or hi's lane */
        __m512d acc = _mm512_setzero_pd();
        for (; t + 8 <= n; t += 8) {
            const __m256 f = _mm512_cvtpd_ps(exp8(_mm512_cvtps_pd(_mm256_sub_ps(_mm256_loadu_ps(sc + t), m))));
            _mm256_storeu_ps(sc + t, f);
            acc = _mm512_add_pd(acc, _mm512_cvtps_pd(f));
        }
        lo = _mm512_castpd512_pd256(acc);
        hi = _mm512_extractf64x4_pd(acc, 1);
    }
#endif
    for (; t + 8 <= n; t += 8) {
        const __m256 x = _mm256_sub_ps(_mm256_loadu_ps(sc + t), m);
        const __m256d e0 = exp4(_mm256_cvtps_pd(_mm256_castps256_ps128(x)));
        const __m256d e1 = exp4(_mm256_cvtps_pd(_mm256_extractf128_ps(x, 1)));
        const __m128 f0 = _mm256_cvtpd_ps(e0), f1 = _mm256_cvtpd_ps(e1);
        _mm256_storeu_ps(sc + t, _mm256_set_m128(f1, f0));
        lo = _mm256_add_pd(lo, _mm256_cvtps_pd(f0)); /* the float values, as the generic sums them */
        hi = _mm256_add_pd(hi, _mm256_cvtps_pd(f1));
    }
    double acc[8];
    _mm256_storeu_pd(acc, lo);
    _mm256_storeu_pd(acc + 4, hi);
    for (; t < n; t++) {
        sc[t] = pl_expf(sc[t] - mx);
        acc[t & 7] += sc[t];
    }
    return (float)(1.0 / pl_sum8(acc));
}

#define AM 32 /* queries a block takes: K is transposed once for all of them */

/* Scores of positions t .. t + 8 * NB - 1 for the M queries qh (kt: those
 * positions' K transposed, 16 floats a dimension), times scale, into rows
 * n apart. */
AI void score_tile(const int NB, const int M, const float (*kt)[16], int hd, const float (*qh)[PL_MAX_HEAD_DIM],
                   float scale, float *scores, int n) {
    __m256 s[2][8];
    UNROLL for (int b = 0; b < NB; b++) UNROLL for (int j = 0; j < M; j++) s[b][j] = _mm256_setzero_ps();
    for (int i = 0; i < hd; i++) {
        __m256 c[2];
        UNROLL for (int b = 0; b < NB; b++) c[b] = _mm256_load_ps(kt[i] + 8 * b);
        UNROLL for (int j = 0; j < M; j++) {
            const __m256 ql = _mm256_broadcast_ss(&qh[j][i]);
            UNROLL for (int b = 0; b < NB; b++) s[b][j] = _mm256_fmadd_ps(ql, c[b], s[b][j]);
        }
    }
    UNROLL for (int b = 0; b < NB; b++) UNROLL for (int j = 0; j < M; j++)
        _mm256_storeu_ps(scores + (size_t)j * n + 8 * b, _mm256_mul_ps(s[b][j], _mm256_set1_ps(scale)));
}

#if defined(__AVX512F__)
/* score_tile's 16 positions for 8 queries, one 512-bit vector a query
 * (eight FMA chains again), lane for lane its arithmetic. */
AI void score_tile16x8(const float (*kt)[16], int hd, const float (*qh)[PL_MAX_HEAD_DIM], float scale, float *scores,
                       int n) {
    __m512 s[8];
    UNROLL for (int j = 0; j < 8; j++) s[j] = _mm512_setzero_ps();
    for (int i = 0; i < hd; i++) {
        const __m512 c = _mm512_loadu_ps(kt[i]);
        UNROLL for (int j = 0; j < 8; j++) s[j] = _mm512_fmadd_ps(_mm512_set1_ps(qh[j][i]), c, s[j]);
    }
    UNROLL for (int j = 0; j < 8; j++)
        _mm512_storeu_ps(scores + (size_t)j * n, _mm512_mul_ps(s[j], _mm512_set1_ps(scale)));
}
#endif

/* m <= AM queries, np positions of nq (query j = p * nq + h sees n + p
 * positions), against one head; scores n + np - 1 apart. */
static void attn_block(const float *q, int nq, int np, size_t ps, const pl_half *k, const pl_half *v, int n, int hd,
                       float scale, float *out, float *scores) {
    _Alignas(32) float qh[AM][PL_MAX_HEAD_DIM];
    _Alignas(32) float kt[PL_MAX_HEAD_DIM][16];
    const int m = nq * np, N = n + np - 1;
    int nm[AM];
    for (int j = 0; j < m; j++) {
        const float *qj = q + (size_t)(j / nq) * ps + (size_t)(j % nq) * hd;
        nm[j] = n + j / nq;
        for (int i = 0; i < hd; i += 8)
            _mm256_storeu_ps(qh[j] + i, _mm256_cvtph_ps(_mm256_cvtps_ph(_mm256_loadu_ps(qj + i),
                                                                      _MM_FROUND_TO_NEAREST_INT)));
    }
    /* scores: a block of 16 (then 8) positions transposed once, then 4
     * queries at a time (8 FMA chains keep both FMA units busy); queries
     * that see none of the block skip it, those that see part of it
     * compute all of it (only their own positions count below) */
    int t = 0;
    for (int w = 16; w >= 8; w -= 8)
        for (; t + w <= N; t += w) {
            for (int i = 0; i < hd; i += 8)
                for (int b = 0; b < w / 8; b++) {
                    __m256 c[8];
                    tr8x8_16(k + (size_t)(t + 8 * b) * hd + i, (size_t)hd, c);
                    UNROLL for (int l = 0; l < 8; l++) _mm256_store_ps(kt[i + l] + 8 * b, c[l]);
                }
            const float(*K16)[16] = (const float(*)[16])kt;
            const float(*Q)[PL_MAX_HEAD_DIM] = (const float(*)[PL_MAX_HEAD_DIM])qh;
            for (int j = t < n ? 0 : (t - n + 1) * nq; j < m; j += 4) {
                float *sc = scores + (size_t)j * N + t;
#if defined(__AVX512F__)
                if (j + 8 <= m && w == 16) {
                    score_tile16x8(K16, hd, Q + j, scale, sc, N);
                    j += 4;
                    continue;
                }
#endif
                if (j + 4 <= m && w == 16) score_tile(2, 4, K16, hd, Q + j, scale, sc, N);
                else if (j + 4 <= m) score_tile(1, 4, K16, hd, Q + j, scale, sc, N);
                else
                    for (int jj = j; jj < m; jj++, sc += N) {
                        if (w == 16) score_tile(2, 1, K16, hd, Q + jj, scale, sc, N);
                        else score_tile(1, 1, K16, hd, Q + jj, scale, sc, N);
                    }
            }
        }
    for (; t < N; t++) {
        const pl_half *kr = k + (size_t)t * hd;
        for (int j = 0; j < m; j++) {
            if (nm[j] <= t) continue;
            float s = 0.0f;
            for (int i = 0; i < hd; i++) s += qh[j][i] * _cvtsh_ss(kr[i]);
            scores[(size_t)j * N + t] = s * scale;
        }
    }
    /* softmax; the positions a query does not see get probability 0 */
    for (int j = 0; j < m; j++) {
        float *sc = scores + (size_t)j * N;
        const int nj = nm[j];
        __m256 vmx = _mm256_set1_ps(-INFINITY);
        int u = 0;
        for (; u + 8 <= nj; u += 8) vmx = _mm256_max_ps(vmx, _mm256_loadu_ps(sc + u));
        float mx = hmax(vmx);
        for (; u < nj; u++) mx = sc[u] > mx ? sc[u] : mx;
        const float inv = softmax_exp_avx2(sc, nj, mx);
        for (u = 0; u + 8 <= nj; u += 8) {
            const __m256 p = _mm256_mul_ps(_mm256_loadu_ps(sc + u), _mm256_set1_ps(inv));
            _mm256_storeu_ps(sc + u, _mm256_cvtph_ps(_mm256_cvtps_ph(p, _MM_FROUND_TO_NEAREST_INT)));
        }
        for (; u < nj; u++) sc[u] = _cvtsh_ss((pl_half)_cvtss_sh(sc[u] * inv, _MM_FROUND_TO_NEAREST_INT));
        for (; u < N; u++) sc[u] = 0.0f;
    }
    /* out: 4 queries and 16 dims at a time, each V row converted once for
     * the four, over the positions each sees. Probabilities of 0 are added
     * as the generic adds them (0 * v leaves a finite sum as it is: a sum
     * that starts at +0 never becomes -0; a NaN or Inf in V propagates). */
    for (int j0 = 0; j0 < m; j0 += 4) {
        const int g = m - j0 < 4 ? m - j0 : 4, nv = nm[j0 + g - 1];
        const float *P[4];
        for (int j = 0; j < 4; j++) P[j] = scores + (size_t)(j0 + (j < g ? j : 0)) * N;
        int i0 = 0;
#if defined(__AVX512F__)
        /* 32 dims at a time in two 512-bit vectors a query: the same
         * FMAs, lane for lane, as the 16-dim steps below */
        for (; i0 + 32 <= hd; i0 += 32) {
            __m512 a[4][2];
            UNROLL for (int j = 0; j < 4; j++) a[j][0] = a[j][1] = _mm512_setzero_ps();
            const int nall = nm[j0];
            for (int u = 0; u < nall; u++) {
                const pl_half *vt = v + (size_t)u * hd + i0;
                const __m512 v0 = _mm512_cvtph_ps(ld256(vt)), v1 = _mm512_cvtph_ps(ld256(vt + 16));
                UNROLL for (int j = 0; j < 4; j++) {
                    const __m512 p = _mm512_set1_ps(P[j][u]);
                    a[j][0] = _mm512_fmadd_ps(p, v0, a[j][0]);
                    a[j][1] = _mm512_fmadd_ps(p, v1, a[j][1]);
                }
            }
            for (int u = nall; u < nv; u++) {
                const pl_half *vt = v + (size_t)u * hd + i0;
                const __m512 v0 = _mm512_cvtph_ps(ld256(vt)), v1 = _mm512_cvtph_ps(ld256(vt + 16));
                UNROLL for (int j = 0; j < 4; j++) if (j < g && u < nm[j0 + j]) {
                    const __m512 p = _mm512_set1_ps(P[j][u]);
                    a[j][0] = _mm512_fmadd_ps(p, v0, a[j][0]);
                    a[j][1] = _mm512_fmadd_ps(p, v1, a[j][1]);
                }
            }
            UNROLL for (int j = 0; j < 4; j++) if (j < g) {
                const size_t jj = (size_t)(j0 + j);
                float *o = out + (jj / (size_t)nq) * ps + (jj % (size_t)nq) * hd + i0;
                _mm512_storeu_ps(o, a[j][0]);
                _mm512_storeu_ps(o + 16, a[j][1]);
            }
        }
#endif
        for (; i0 < hd; i0 += 16) {
            const int two = hd - i0 >= 16;
            __m256 a[4][2];
            UNROLL for (int j = 0; j < 4; j++) a[j][0] = a[j][1] = _mm256_setzero_ps();
            const int nall = nm[j0]; /* the positions all of the group see */
            for (int u = 0; u < nall; u++) {
                const pl_half *vt = v + (size_t)u * hd + i0;
                const __m256 v0 = _mm256_cvtph_ps(ld128(vt)), v1 = two ? _mm256_cvtph_ps(ld128(vt + 8)) : v0;
                UNROLL for (int j = 0; j < 4; j++) {
                    const __m256 p = _mm256_broadcast_ss(P[j] + u);
                    a[j][0] = _mm256_fmadd_ps(p, v0, a[j][0]);
                    a[j][1] = _mm256_fmadd_ps(p, v1, a[j][1]);
                }
            }
            /* the (at most 3) positions only the later queries of the group
             * see: the others skip them, for a NaN in a V row they do not
             * see (a hostile batch) must not reach them as 0 * NaN */
            for (int u = nall; u < nv; u++) {
                const pl_half *vt = v + (size_t)u * hd + i0;
                const __m256 v0 = _mm256_cvtph_ps(ld128(vt)), v1 = two ? _mm256_cvtph_ps(ld128(vt + 8)) : v0;
                UNROLL for (int j = 0; j < 4; j++) if (j < g && u < nm[j0 + j]) {
                    const __m256 p = _mm256_broadcast_ss(P[j] + u);
                    a[j][0] = _mm256_fmadd_ps(p, v0, a[j][0]);
                    a[j][1] = _mm256_fmadd_ps(p, v1, a[j][1]);
                }
            }
            UNROLL for (int j = 0; j < 4; j++) if (j < g) { /* constant indices keep a[] in registers */
                const size_t jj = (size_t)(j0 + j);
                float *o = out + (jj / (size_t)nq) * ps + (jj % (size_t)nq) * hd + i0;
                _mm256_storeu_ps(o, a[j][0]);
                if (two) _mm256_storeu_ps(o + 8, a[j][1]);
            }
        }
    }
}

/* Attention as llama.cpp computes it (see kernels.h), and bit for bit the
 * generic level's: every product (fp16 q times fp16 k, fp16 p times fp16 v)
 * is exact in float, so an FMA rounds like the generic's multiply-then-add,
 * and each sum runs in the generic's order: scores take 8 positions at once
 * (K transposed 8x8, once for up to AM queries, which run as independent
 * FMA chains), each summed over i ascending; out takes 8 dims at once,
 * summed over t ascending. The softmax runs 8 lanes of expf.h's exp. */
static void attn_avx2(const float *q, int nq, int np, size_t ps, const pl_half *k, const pl_half *v, int n, int hd,
                      float scale, float *out, float *scores) {
    if (hd % 8 || hd > PL_MAX_HEAD_DIM) {
        pl_attn_generic(q, nq, np, ps, k, v, n, hd, scale, out, scores);
        return;
    }
    if (nq > AM) { /* one position at a time, AM queries at a time */
        for (int p = 0; p < np; p++)
            for (int j = 0; j < nq; j += AM) {
                const size_t o = (size_t)p * ps + (size_t)j * hd;
                attn_block(q + o, nq - j < AM ? nq - j : AM, 1, ps, k, v, n + p, hd, scale, out + o, scores);
            }
        return;
    }
    for (int p = 0; p < np; p += AM / nq) {
        const int P = np - p < AM / nq ? np - p : AM / nq;
        attn_block(q + (size_t)p * ps, nq, P, ps, k, v, n + p, hd, scale, out + (size_t)p * ps, scores);
    }
}

/* g * u / (1 + exp(-g)), 8 at a time: the generic's operations, with its
 * exponential (exp4) in double and the rest in float. */
static void swiglu_avx2(float *g, const float *u, int n) {
    int i = 0;
    for (; i + 8 <= n; i += 8) {
        const __m256 x = _mm256_loadu_ps(g + i), nx = _mm256_sub_ps(_mm256_setzero_ps(), x);
        const __m128 e0 = _mm256_cvtpd_ps(exp4(_mm256_cvtps_pd(_mm256_castps256_ps128(nx))));
        const __m128 e1 = _mm256_cvtpd_ps(exp4(_mm256_cvtps_pd(_mm256_extractf128_ps(nx, 1))));
        const __m256 d = _mm256_add_ps(_mm256_set1_ps(1.0f), _mm256_set_m128(e1, e0));
        _mm256_storeu_ps(g + i, _mm256_mul_ps(_mm256_div_ps(x, d), _mm256_loadu_ps(u + i)));
    }
    pl_swiglu_generic(g + i, u + i, n - i);
}

#ifdef PL_VNNI
/* The avx512 level: its own K-quant prefill, the avx2 level's code for the
 * rest (called through that table: no second copy in the binary). */
extern const pl_kernels_t pl_kernels_avx2;
static void matmul_vnni(uint32_t type, const void *w, size_t row_bytes, int rows, int cols, const void *xq,
                        size_t xq_stride, int nb, float *y, size_t y_stride) {
    const uint8_t *W = (const uint8_t *)w, *X = (const uint8_t *)xq;
    if ((type == PL_TYPE_Q4_K || type == PL_TYPE_Q5_K || type == PL_TYPE_Q6_K || type == PL_TYPE_IQ4_XS) &&
        kx_small(type, nb)) {
        /* generation and a few streams: vpdpbusd sums a dword's four products in one step */
        switch (type) {
        case PL_TYPE_Q4_K: kx_cols(PL_TYPE_Q4_K, W, row_bytes, rows, cols, X, xq_stride, nb, y, y_stride); return;
        case PL_TYPE_Q5_K: kx_cols(PL_TYPE_Q5_K, W, row_bytes, rows, cols, X, xq_stride, nb, y, y_stride); return;
        case PL_TYPE_Q6_K: kx_cols(PL_TYPE_Q6_K, W, row_bytes, rows, cols, X, xq_stride, nb, y, y_stride); return;
        default: kx_cols(PL_TYPE_IQ4_XS, W, row_bytes, rows, cols, X, xq_stride, nb, y, y_stride); return;
        }
    }
    if (nb > 1 && type == PL_TYPE_Q4_K)
        mm_q4_K((const uint8_t *)w, row_bytes, rows, cols, (const uint8_t *)xq, xq_stride, nb, y, y_stride);
    else if (nb > 1 && type == PL_TYPE_Q6_K)
        mm_q6_K((const uint8_t *)w, row_bytes, rows, cols, (const uint8_t *)xq, xq_stride, nb, y, y_stride);
    else if (nb > 1 && type == PL_TYPE_IQ4_XS)
        mm_iq4_xs((const uint8_t *)w, row_bytes, rows, cols, (const uint8_t *)xq, xq_stride, nb, y, y_stride);
    else if (type == PL_TYPE_Q4_0) /* the 32-weight formats: vpdpbusd for maddubs + madd */
        mm_q0(PL_TYPE_Q4_0, W, row_bytes, rows, cols, X, xq_stride, nb, y, y_stride);
    else if (type == PL_TYPE_Q8_0)
        mm_q0(PL_TYPE_Q8_0, W, row_bytes, rows, cols, X, xq_stride, nb, y, y_stride);
    else if (type == PL_TYPE_IQ4_NL)
        mm_q0s(PL_TYPE_IQ4_NL, W, row_bytes, rows, cols, X, xq_stride, nb, y, y_stride);
    else
        pl_kernels_avx2.matmul(type, w, row_bytes, rows, cols, xq, xq_stride, nb, y, y_stride);
}
static void quantize_vnni(uint32_t act_type, const float *x, void *xq, int n) {
    pl_kernels_avx2.quantize(act_type, x, xq, n);
}
static void attn_vnni(const float *q, int nq, int np, size_t ps, const pl_half *k, const pl_half *v, int n, int hd,
                      float scale, float *out, float *scratch) {
#if defined(__AVX512F__)
    attn_avx2(q, nq, np, ps, k, v, n, hd, scale, out, scratch); /* this file's, with its 512-bit steps */
#else
    pl_kernels_avx2.attn(q, nq, np, ps, k, v, n, hd, scale, out, scratch);
#endif
}
static void f32_to_f16_vnni(const float *src, pl_half *dst, int n) { pl_kernels_avx2.f32_to_f16(src, dst, n); }
static void swiglu_vnni(float *g, const float *u, int n) { pl_kernels_avx2.swiglu(g, u, n); }
#ifndef PL_VNNI_EMULATE
/* The avx512-wide level: Q4_K's and Q6_K's prefill in 512-bit tiles, the
 * avx512 level for the rest (Q5_K's gained 4%, for 10 KB of code). */
static void matmul_wide(uint32_t type, const void *w, size_t row_bytes, int rows, int cols, const void *xq,
                        size_t xq_stride, int nb, float *y, size_t y_stride) {
    const uint8_t *W = (const uint8_t *)w, *X = (const uint8_t *)xq;
    if (nb > 1 && !kx_small(type, nb)) switch (type) {
        case PL_TYPE_Q4_K: mmw_q4_K(W, row_bytes, rows, cols, X, xq_stride, nb, y, y_stride); return;
        case PL_TYPE_Q6_K: mmw_q6_K(W, row_bytes, rows, cols, X, xq_stride, nb, y, y_stride); return;
        default: break;
        }
    matmul_vnni(type, w, row_bytes, rows, cols, xq, xq_stride, nb, y, y_stride);
}

/* Whether this core runs 512-bit vpdpbusd at (nearly) twice the 256-bit
 * rate: a few microseconds of twelve independent chains of each (enough to
 * cover the latency at two a cycle), timed by the TSC, best of several
 * rounds after a warm-up (Intel cores start 512-bit work at a reduced
 * rate). A core that splits 512-bit operations in two (Zen 4) takes about
 * twice as long per instruction. Every chain feeds the result, or the
 * compiler keeps one and times its latency. */
#define VNNI_CHAINS 12
static uint64_t vnni_chains(int wide, int n, __m512i a) {
    __m512i z[VNNI_CHAINS];
    __m256i h[VNNI_CHAINS];
    const __m256i a8 = _mm512_castsi512_si256(a);
    for (int k = 0; k < VNNI_CHAINS; k++) z[k] = a, h[k] = a8;
    const uint64_t t0 = __rdtsc();
    if (wide)
        for (int i = 0; i < n; i++)
            UNROLL for (int k = 0; k < VNNI_CHAINS; k++) z[k] = _mm512_dpbusd_epi32(z[k], a, a);
    else
        for (int i = 0; i < n; i++)
            UNROLL for (int k = 0; k < VNNI_CHAINS; k++) h[k] = _mm256_dpbusd_epi32(h[k], a8, a8);
    const uint64_t t = __rdtsc() - t0;
    for (int k = 1; k < VNNI_CHAINS; k++) z[0] = _mm512_xor_si512(z[0], z[k]), h[0] = _mm256_xor_si256(h[0], h[k]);
    volatile int sink = _mm_cvtsi128_si32(_mm512_castsi512_si128(z[0])) + _mm256_extract_epi32(h[0], 0);
    (void)sink;
    return t;
}

int pl_avx512_full_width(void) {
    volatile int seed = 1;
    const __m512i a = _mm512_set1_epi8((char)seed);
    uint64_t tz = UINT64_MAX, ty = UINT64_MAX;
    for (int i = 0; i < 4; i++) vnni_chains(1, 2000, a); /* warm-up */
    for (int i = 0; i < 8; i++) {
        const uint64_t z = vnni_chains(1, 500, a), y = vnni_chains(0, 500, a);
        if (z < tz) tz = z;
        if (y < ty) ty = y;
    }
    return tz * 2 < ty * 3; /* 512 bits in under 1.5x the time of 256 */
}

const pl_kernels_t pl_kernels_avx512w = {"avx512-wide", quantize_vnni,   matmul_wide,
                                         attn_vnni,     f32_to_f16_vnni, swiglu_vnni};
#endif
#ifdef PL_VNNI_EMULATE
const pl_kernels_t pl_kernels_avx512_emu = {"avx512-emulated", quantize_vnni,   matmul_vnni,
                                            attn_vnni,         f32_to_f16_vnni, swiglu_vnni};
#else
const pl_kernels_t pl_kernels_avx512 = {"avx512",  quantize_vnni,   matmul_vnni,
                                        attn_vnni, f32_to_f16_vnni, swiglu_vnni};
#endif
#else
const pl_kernels_t pl_kernels_avx2 = {"avx2", quantize_avx2, matmul_avx2, attn_avx2, f32_to_f16_avx2, swiglu_avx2};
#endif
#else
typedef int pl_x86_avx2_unused; /* empty translation unit on other CPUs */
#endif
