/* test_kernels.c - every kernel level against the generic one (the scalar
 * reference in quant.c), for every level this CPU supports.
 *
 * 1. quantize: Q8_0 / Q8_1 / Q8_K activations byte-exact with the generic
 *    level and with from_float_act, on random data, hand-made ties and
 *    hostile values (NaN, Inf, near-overflow, subnormal blocks).
 * 2. matmul, every weight type: ragged shapes (cols 1..5 blocks and larger,
 *    rows 1..9 and 64..200, nb 1..7 and 32 and 37), weights from the quantizer and from
 *    random bytes (every scale/min/quant value, so 16-bit lane sums hit
 *    their extremes), activations random or all +-1 (every q8 = +-127).
 *    Outputs are pre-filled with NaN, y_stride > rows, and the padding must
 *    stay NaN. Tolerance: |y - y_generic| <= 1e-5 * sum |w_i * x_i| of the
 *    dequantized operands (integer sums are exact on both sides; only the
 *    float accumulation order differs). Hostile floats (NaN/Inf in the
 *    activations, NaN/Inf fp16 scales or float weights) through every type
 *    with the level's own quantizer: no crash (ASan: make SAN=1), and
 *    non-finite outputs exactly where the inputs were.
 * 3. attn bit-exact with the generic level (hd 20..128, n 1..300, up to 40
 *    queries a position and 33 positions of a causal batch, positions with
 *    gaps between them that must stay untouched), NaN in K or V reaching
 *    exactly the queries that see it; f32_to_f16 and swiglu
 *    bit-exact, special values included. */
#include <math.h>
#include <stdint.h>

#include "harness.h"
#include "kernels/kernels.h"

static uint64_t rng_state = 0x9e3779b97f4a7c15ull;

static uint32_t rnd(void) {
    rng_state ^= rng_state << 13;
    rng_state ^= rng_state >> 7;
    rng_state ^= rng_state << 17;
    return (uint32_t)(rng_state >> 16);
}

static float frand(void) { return (float)(rnd() & 0xffffff) / (float)0x800000 - 1.0f; } /* [-1, 1) */

/* What a hostile model file or cache can put into the activations. */
static const float hostile[] = {NAN, -NAN, INFINITY, -INFINITY, 3.4e38f, -3.4e38f, 1e-40f, -1e-45f, 0.0f, -0.0f};
#define NHOSTILE (sizeof hostile / sizeof hostile[0])

/* ---------------------------------------------------------------- quantize */

static void test_quantize(const pl_kernels_t *K) {
    static const uint32_t acts[] = {PL_TYPE_Q8_0, PL_TYPE_Q8_1, PL_TYPE_Q8_K};
    float x[2048];
    /* aligned as the engine's (malloc'd) activation buffers: block_q8_K holds a
     * float, and 32-bit Arm faults on a misaligned VFP store */
    static _Alignas(16) uint8_t a[2048 * 2], b[2048 * 2], c[2048 * 2];
    for (size_t t = 0; t < sizeof acts / sizeof acts[0]; t++) {
        const pl_type_traits *tr = pl_type_traits_get(acts[t]);
        for (int trial = 0; trial < 90; trial++) {
            const int nblk = 1 + (int)(rnd() % (trial < 40 ? 8 : 2048 / tr->blck));
            const int n = nblk * tr->blck;
            const int kind = trial % 9;
            for (int i = 0; i < n; i++) {
                float v = frand();
                if (kind == 1) v *= 1e-3f;
                if (kind == 2) v = (float)((int)(rnd() % 255) - 127) * 0.5f; /* ties at amax = 127 */
                if (kind == 3) v = (rnd() & 1) ? 1.0f : -1.0f;               /* equal magnitudes */
                if (kind == 4 && (i / tr->blck) % 2) v = 0.0f;               /* all-zero blocks */
                if (kind == 5) v *= (float)(1 << (rnd() % 20));
                if (kind == 6 && rnd() % 16 == 0) v = hostile[rnd() % NHOSTILE]; /* hostile values */
                if (kind == 7) v *= 3e38f;                                    /* near overflow */
                if (kind == 8) v *= (i / tr->blck) % 2 ? 1e-39f : 1e-44f;      /* subnormal blocks */
                x[i] = v;
            }
            if (kind == 2) /* pin amax to 127 in every block so id = 1 */
                for (int i = 0; i < n; i += tr->blck) x[i + (int)(rnd() % (uint32_t)tr->blck)] = (rnd() & 1) ? 127 : -127;
            const size_t bytes = pl_row_size(acts[t], n);
            memset(a, 0xa5, bytes + 16);
            memset(b, 0x5a, bytes + 16);
            K->quantize(acts[t], x, a, n);
            pl_kernels_generic.quantize(acts[t], x, b, n);
            tr->from_float_act(x, c, n);
            CHECK(!memcmp(a, b, bytes), "%s quantize %s n=%d kind=%d differs from generic", K->name, tr->name, n,
                  kind);
            CHECK(!memcmp(a, c, bytes), "%s quantize %s n=%d kind=%d differs from from_float_act", K->name,
                  tr->name, n, kind);
            CHECK(a[bytes] == 0xa5, "%s quantize %s wrote past the end", K->name, tr->name);
        }
    }
}

/* ---------------------------------------------------------------- matmul */

static const uint32_t types[] = {PL_TYPE_F32,  PL_TYPE_F16,  PL_TYPE_BF16, PL_TYPE_Q4_0,   PL_TYPE_Q4_1,
                                 PL_TYPE_Q5_0, PL_TYPE_Q5_1, PL_TYPE_Q8_0, PL_TYPE_Q2_K,   PL_TYPE_Q3_K,
                                 PL_TYPE_Q4_K, PL_TYPE_Q5_K, PL_TYPE_Q6_K, PL_TYPE_IQ4_NL, PL_TYPE_IQ4_XS};
#define NTYPES (sizeof types / sizeof types[0])

/* fp16 fields of each block that random bytes must not fill with inf/nan:
 * offsets within the block, -1 terminated. */
static const int *half_fields(uint32_t type) {
    static const int d0[] = {0, -1}, d01[] = {0, 2, -1}, q2k[] = {80, 82, -1}, q3k[] = {108, -1},
                     q6k[] = {208, -1};
    switch (type) {
    case PL_TYPE_Q4_0: case PL_TYPE_Q5_0: case PL_TYPE_Q8_0: case PL_TYPE_IQ4_NL: case PL_TYPE_IQ4_XS: return d0;
    case PL_TYPE_Q4_1: case PL_TYPE_Q5_1: case PL_TYPE_Q4_K: case PL_TYPE_Q5_K: return d01;
    case PL_TYPE_Q2_K: return q2k;
    case PL_TYPE_Q3_K: return q3k;
    case PL_TYPE_Q6_K: return q6k;
    default: return NULL;
    }
}

static double worst_ratio;

static void check_matmul(const pl_kernels_t *K, uint32_t type, int rows, int cols, int nb, int wkind, int xkind) {
    const pl_type_traits *tr = pl_type_traits_get(type);
    const uint32_t act = tr->vec_dot_type;
    const size_t rb = pl_row_size(type, cols);
    /* padded column strides, kept aligned for the blocks' float / fp16 fields
     * (32-bit Arm faults on a misaligned VFP access) */
    const size_t xs = act == PL_TYPE_F32 ? (size_t)cols * 4 + 12 : pl_row_size(act, cols) + 8;
    const size_t ys = (size_t)rows + 3;
    uint8_t *w = malloc(rb * (size_t)rows + 1), *xq = malloc(xs * (size_t)nb + 1);
    float *xf = malloc(sizeof(float) * (size_t)cols), *wf = malloc(sizeof(float) * (size_t)cols * rows);
    float *xd = malloc(sizeof(float) * (size_t)cols * nb);
    float *y = malloc(sizeof(float) * ys * (size_t)nb), *yg = malloc(sizeof(float) * ys * (size_t)nb);
    /* weights */
    const int *hf = half_fields(type);
    for (int r = 0; r < rows; r++) {
        uint8_t *row = w + (size_t)r * rb;
        if (wkind == 0 || !hf) {
            for (int i = 0; i < cols; i++) wf[i] = frand() * (1 + (float)(i % 7));
            tr->from_float(wf, row, cols);
        } else {
            for (size_t i = 0; i < rb; i++) row[i] = (uint8_t)rnd();
            for (size_t blk = 0; blk < rb; blk += tr->type_size)
                for (const int *f = hf; *f >= 0; f++) {
                    const pl_half h = pl_float_to_half(frand() * 0.01f);
                    memcpy(row + blk + *f, &h, 2);
                }
        }
        tr->to_float(row, wf + (size_t)r * cols, cols);
    }
    /* activations */
    for (int b = 0; b < nb; b++) {
        for (int i = 0; i < cols; i++) xf[i] = xkind ? ((rnd() & 1) ? 1.0f : -1.0f) : frand() * (1 + (float)(i % 5));
        uint8_t *col = xq + (size_t)b * xs;
        pl_kernels_generic.quantize(act, xf, col, cols);
        if (act == PL_TYPE_F32)
            memcpy(xd + (size_t)b * cols, xf, sizeof(float) * (size_t)cols);
        else
            pl_type_traits_get(act)->to_float(col, xd + (size_t)b * cols, cols);
    }
    for (size_t i = 0; i < ys * (size_t)nb; i++) y[i] = yg[i] = NAN;
    K->matmul(type, w, rb, rows, cols, xq, xs, nb, y, ys);
    pl_matmul_generic(type, w, rb, rows, cols, xq, xs, nb, yg, ys);
    int bad = 0;
    for (int b = 0; b < nb && !bad; b++)
        for (size_t r = 0; r < ys && !bad; r++) {
            const size_t o = (size_t)b * ys + r;
            if (r >= (size_t)rows) {
                if (!isnan(y[o])) bad = 1;
                CHECK(isnan(y[o]), "%s %s wrote padding y[%d][%d] (rows=%d cols=%d nb=%d)", K->name, tr->name, b,
                      (int)r, rows, cols, nb);
                continue;
            }
            double mag = 0;
            for (int i = 0; i < cols; i++) mag += fabs((double)wf[r * (size_t)cols + i] * xd[(size_t)b * cols + i]);
            const double err = fabs((double)y[o] - yg[o]), tol = 1e-5 * mag + 1e-30;
            if (!(err <= tol)) bad = 1;
            if (mag > 0 && err / mag > worst_ratio) worst_ratio = err / mag;
            CHECK(err <= tol, "%s %s rows=%d cols=%d nb=%d w%d x%d: y[%d][%d] = %.9g, generic %.9g (|wx| %.3g)",
                  K->name, tr->name, rows, cols, nb, wkind, xkind, b, (int)r, y[o], yg[o], mag);
        }
    /* batch invariance (picolm.h): each column alone gives its batched
     * result bit for bit, at every level */
    for (int b = 0; b < nb && nb > 1; b++) {
        float *y1 = yg; /* the generic result is no longer needed */
        for (int r = 0; r <= rows; r++) y1[r] = NAN;
        K->matmul(type, w, rb, rows, cols, xq + (size_t)b * xs, xs, 1, y1, ys);
        int same = isnan(y1[rows]);
        for (int r = 0; r < rows; r++) same &= memcmp(&y1[r], &y[(size_t)b * ys + r], sizeof(float)) == 0;
        CHECK(same, "%s %s rows=%d cols=%d: column %d of %d alone differs from its batched result", K->name,
              tr->name, rows, cols, b, nb);
        if (!same) break;
    }
    free(w), free(xq), free(xf), free(wf), free(xd), free(y), free(yg);
}

static void test_matmul(const pl_kernels_t *K) {
    static const int nbs[] = {1, 2, 3, 4, 5, 6, 7, 9, 16, 32, 37};
    for (size_t t = 0; t < NTYPES; t++) {
        const pl_type_traits *tr = pl_type_traits_get(types[t]);
        const int blk = tr->blck == 1 ? 8 : tr->blck; /* float types: ragged multiples of 1 too */
        worst_ratio = 0;
        const int ncols = 9;
        /* ... 11008 (Llama 7B's FFN): more super-blocks than a prefill kernel prepares at once */
        int colss[9] = {blk, 2 * blk, 3 * blk, 4 * blk, 5 * blk, 9 * blk, 2048, 5632, 11008};
        if (tr->blck == 1) colss[0] = 1, colss[1] = 3, colss[2] = 13, colss[3] = 37;
        for (int ci = 0; ci < ncols; ci++) {
            const int cols = colss[ci], big = cols >= 2048;
            for (int rows = 1; rows <= 9; rows++) {
                if (big && rows != 5) continue;
                for (size_t bi = 0; bi < sizeof nbs / sizeof nbs[0]; bi++) {
                    /* one column, a few (the few-column kernels, past KC
                     * super-blocks too), a prefill tile */
                    if (big && nbs[bi] != 1 && nbs[bi] != 4 && nbs[bi] != 16 && nbs[bi] != 32) continue;
                    if (!big && nbs[bi] > 7 && rows % 4 != 1) continue;
                    for (int wkind = 0; wkind < 2; wkind++)
                        check_matmul(K, types[t], rows, cols, nbs[bi], wkind, (rows + nbs[bi] + ci) % 3 == 0);
                }
            }
        }
        /* more rows than a prefill kernel buffers outputs for at once */
        static const int many[] = {64, 131, 200};
        for (size_t i = 0; i < sizeof many / sizeof many[0]; i++) {
            check_matmul(K, types[t], many[i], 2 * blk, 37, (int)i % 2, 0);
            check_matmul(K, types[t], many[i], 2 * blk, 5, 1 - (int)i % 2, 1);
        }
        printf("  %-7s %-4s worst |y - generic| / sum|wx| = %.2e\n", K->name, tr->name, worst_ratio);
    }
}


/* Hostile floats through every type at this level, with the level's own
 * activation quantizer (a NaN once made the K-quant ones read past their
 * block): no crash (run it under ASan), quantized bytes equal to the
 * generic level's, and a column whose activations hold a NaN or an Inf
 * gives non-finite outputs in every row, as does a row whose weights (an
 * fp16 scale, a float weight) hold one; the other outputs stay finite. */
static void test_nonfinite(const pl_kernels_t *K) {
    enum { ROWS = 6, NB = 7 };
    for (size_t t = 0; t < NTYPES; t++) {
        const pl_type_traits *tr = pl_type_traits_get(types[t]);
        const uint32_t act = tr->vec_dot_type;
        const int blk = tr->blck == 1 ? 8 : tr->blck;
        for (int ci = 0; ci < 2; ci++) {
            const int cols = ci ? 9 * blk : 2 * blk;
            const size_t rb = pl_row_size(types[t], cols);
            const size_t xs = act == PL_TYPE_F32 ? (size_t)cols * 4 : pl_row_size(act, cols);
            uint8_t *w = malloc(rb * ROWS), *xq = malloc(xs * NB), *xg = malloc(xs * NB);
            float *x = malloc(sizeof(float) * (size_t)cols), *y = malloc(sizeof(float) * ROWS * NB);
            for (int r = 0; r < ROWS; r++) {
                for (int i = 0; i < cols; i++) x[i] = frand();
                tr->from_float(x, w + (size_t)r * rb, cols);
            }
            /* columns: 0 and 6 plain, 1 one NaN, 2 one +Inf, 3 one -Inf,
             * 4 all NaN, 5 near-overflow values (finite: no requirement) */
            for (int b = 0; b < NB; b++) {
                for (int i = 0; i < cols; i++) x[i] = frand() * (b == 5 ? 3.4e38f : 1.0f);
                const int at = (int)(rnd() % (uint32_t)cols);
                if (b == 1) x[at] = NAN;
                if (b == 2) x[at] = INFINITY;
                if (b == 3) x[at] = -INFINITY;
                if (b == 4)
                    for (int i = 0; i < cols; i++) x[i] = NAN;
                K->quantize(act, x, xq + (size_t)b * xs, cols);
                pl_kernels_generic.quantize(act, x, xg + (size_t)b * xs, cols);
                if (act != PL_TYPE_F32)
                    CHECK(!memcmp(xq + (size_t)b * xs, xg + (size_t)b * xs, xs),
                          "%s %s: quantized column %d (hostile values) differs from generic", K->name, tr->name, b);
            }
            for (int nb = 1; nb <= NB; nb += NB - 1) {
                /* nb 1: column 1 only (generation); nb 7: all (prefill) */
                const uint8_t *xc = nb == 1 ? xq + xs : xq;
                for (int i = 0; i < ROWS * NB; i++) y[i] = 0.0f;
                K->matmul(types[t], w, rb, ROWS, cols, xc, xs, nb, y, ROWS);
                int bad = 0;
                for (int b = 0; b < nb; b++) {
                    const int col = nb == 1 ? 1 : b;
                    for (int r = 0; r < ROWS; r++) {
                        const float v = y[b * ROWS + r];
                        if (col >= 1 && col <= 4 ? isfinite(v) : col != 5 && !isfinite(v)) bad++;
                    }
                }
                CHECK(bad == 0, "%s %s cols=%d nb=%d: %d outputs finite where the activations were not (or not "
                      "finite where they were)", K->name, tr->name, cols, nb, bad);
            }
            /* weights: row 1 gets a NaN, row 4 an Inf (a scale or a weight) */
            const int *hf = half_fields(types[t]);
            for (int r = 1; r < ROWS; r += 3) {
                const size_t blkb = (size_t)(rnd() % (uint32_t)(cols / tr->blck)) * tr->type_size;
                uint8_t *p = w + (size_t)r * rb + blkb;
                if (hf) {
                    int nf = 0;
                    while (hf[nf] >= 0) nf++;
                    const pl_half h = r == 1 ? 0x7e00 : (rnd() & 1) ? 0x7c00 : 0xfc00;
                    memcpy(p + hf[rnd() % (uint32_t)nf], &h, 2);
                } else if (types[t] == PL_TYPE_F32) {
                    const float f = r == 1 ? NAN : INFINITY;
                    memcpy(p, &f, 4);
                } else {
                    const uint16_t h = types[t] == PL_TYPE_F16 ? (r == 1 ? 0x7e00 : 0x7c00) : (r == 1 ? 0x7fc0 : 0x7f80);
                    memcpy(p, &h, 2);
                }
            }
            for (int nb = 1; nb <= 2; nb++) {
                /* columns 0 and 6, both plain */
                const size_t stride = 6 * xs;
                for (int i = 0; i < ROWS * NB; i++) y[i] = 0.0f;
                K->matmul(types[t], w, rb, ROWS, cols, xq, stride, nb, y, ROWS);
                int bad = 0;
                for (int b = 0; b < nb; b++)
                    for (int r = 0; r < ROWS; r++) {
                        const float v = y[b * ROWS + r];
                        if ((r == 1 || r == 4) ? isfinite(v) : !isfinite(v)) bad++;
                    }
                CHECK(bad == 0, "%s %s cols=%d nb=%d: %d outputs finite in rows with NaN/Inf weights (or not "
                      "finite in the others)", K->name, tr->name, cols, nb, bad);
            }
            free(w), free(xq), free(xg), free(x), free(y);
        }
    }
}

/* ---------------------------------------------------------------- attention, fp16 */

static void test_attn(const pl_kernels_t *K) {
    static const int hds[] = {32, 48, 64, 128, 20};
    /* (queries a position, positions): one head, a GQA group, odd groups,
     * a batch shorter, as long as and longer than a block (32 queries),
     * more queries than a block at one position */
    static const int shapes[][2] = {{1, 1}, {4, 1}, {3, 2}, {9, 1}, {4, 8}, {4, 9}, {1, 33},
                                    {2, 17}, {40, 2}, {4, 33}, {8, 5}, {5, 7}};
    enum { NMAX = 300, QMAX = 40, PMAX = 33, NS = sizeof shapes / sizeof shapes[0] };
    const size_t nk = NMAX + PMAX, qn = (size_t)PMAX * (QMAX * 128 + 8);
    pl_half *k = malloc(sizeof(pl_half) * nk * 128), *v = malloc(sizeof(pl_half) * nk * 128);
    float *sc1 = malloc(sizeof(float) * nk * QMAX * PMAX), *sc2 = malloc(sizeof(float) * nk);
    float *q = malloc(sizeof(float) * qn), *out = malloc(sizeof(float) * qn), ref[128];
    for (size_t h = 0; h < sizeof hds / sizeof hds[0]; h++) {
        const int hd = hds[h];
        int mism = 0, cases = 0, pad = 0;
        for (int n = 1; n <= NMAX; n += (n < 20 ? 1 : 7), cases++) {
            const int nq = shapes[cases % NS][0], np = shapes[cases % NS][1];
            if ((size_t)np * nq > 64 && hd > 64) continue;
            const size_t ps = (size_t)nq * hd + 8 * (cases % 2); /* positions apart, with a gap sometimes */
            /* peaky softmax sometimes, and scores far enough apart that exp underflows */
            const float amp = (n % 3) ? 1.0f : (n % 2) ? 8.0f : 64.0f;
            for (int i = 0; i < (n + np - 1) * hd; i++) {
                k[i] = pl_float_to_half(frand() * amp);
                v[i] = pl_float_to_half(frand());
            }
            for (size_t i = 0; i < (size_t)np * ps; i++) q[i] = frand(), out[i] = NAN;
            const float scale = 1.0f / sqrtf((float)hd);
            K->attn(q, nq, np, ps, k, v, n, hd, scale, out, sc1);
            for (int p = 0; p < np; p++) {
                for (int j = 0; j < nq; j++) {
                    const size_t o = (size_t)p * ps + (size_t)j * hd;
                    for (int i = 0; i < hd; i++) ref[i] = NAN;
                    pl_kernels_generic.attn(q + o, 1, 1, 0, k, v, n + p, hd, scale, ref, sc2);
                    for (int i = 0; i < hd; i++)
                        if (memcmp(&out[o + i], &ref[i], sizeof(float))) mism++;
                }
                for (size_t i = (size_t)p * ps + (size_t)nq * hd; i < (size_t)(p + 1) * ps; i++)
                    if (!isnan(out[i])) pad++;
            }
        }
        CHECK(mism == 0, "%s attn hd=%d: %d outputs differ from generic", K->name, hd, mism);
        CHECK(pad == 0, "%s attn hd=%d: %d floats written between positions", K->name, hd, pad);
    }
    free(k), free(v), free(sc1), free(sc2), free(q), free(out);
}

/* A NaN or Inf in the cache (a hostile --cache file, a NaN activation a
 * layer before): every query that sees the position gives NaN in every
 * dimension (a V row of NaN included, even where its probability is 0),
 * every query that does not see it (a later position of the batch) stays
 * finite. */
static void test_attn_nonfinite(const pl_kernels_t *K) {
    enum { HD = 64, QMAX = 4, NP = 5, N = 37, NK = N + NP - 1 };
    pl_half *k = malloc(sizeof(pl_half) * NK * HD), *v = malloc(sizeof(pl_half) * NK * HD);
    float *q = malloc(sizeof(float) * NP * QMAX * HD), *out = malloc(sizeof(float) * NP * QMAX * HD);
    float *sc = malloc(sizeof(float) * QMAX * NP * NK);
    for (int c = 0; c < 24; c++) {
        /* the bad position: among the cached ones, or the batch's third;
         * 1 or 3 queries a position put several positions in one block */
        const int tpos = c % 2 ? N + 2 : (int)(rnd() % N), inv = c / 2 % 2, peaky = c / 4 % 2;
        const int NQ = c < 8 ? 4 : c < 16 ? 1 : 3;
        for (int i = 0; i < NK * HD; i++) {
            k[i] = pl_float_to_half(frand() * (peaky ? 64.0f : 1.0f));
            v[i] = pl_float_to_half(frand());
        }
        if (inv) /* one K element: that score is NaN (an Inf would give a
                  * score of +-Inf, and -Inf a probability of 0, its limit) */
            k[tpos * HD + (int)(rnd() % HD)] = 0x7e00;
        else /* a whole V row; peaky scores make its probability 0 for some queries */
            for (int i = 0; i < HD; i++) v[tpos * HD + i] = (rnd() & 1) ? 0x7e00 : 0xfc00;
        for (int i = 0; i < NP * NQ * HD; i++) q[i] = frand(), out[i] = 0.0f;
        K->attn(q, NQ, NP, (size_t)NQ * HD, k, v, N, HD, 0.125f, out, sc);
        int bad = 0;
        for (int p = 0; p < NP; p++) {
            const int sees = tpos < N + p;
            for (int i = 0; i < NQ * HD; i++) {
                const float o = out[(size_t)p * NQ * HD + i];
                if (sees ? isfinite(o) : !isfinite(o)) bad++;
            }
        }
        CHECK(bad == 0, "%s attn: %d outputs wrong with a non-finite %s at position %d (%s scores, %d queries)",
              K->name, bad, inv ? "K" : "V row", tpos, peaky ? "peaky" : "mild", NQ);
    }
    free(k), free(v), free(q), free(out), free(sc);
}

/* swiglu bit-exact with the generic level, special values included. */
static void test_swiglu(const pl_kernels_t *K) {
    static const float special[] = {0.0f, -0.0f, INFINITY, -INFINITY, NAN, 88.0f, -88.0f, 104.5f, -104.5f,
                                    1e-30f, -1e-30f, 3e38f, -3e38f, 20.0f, -20.0f};
    enum { N = 203 };
    float g[N], u[N], a[N], b[N];
    int mism = 0;
    for (int trial = 0; trial < 200; trial++) {
        const int n = 1 + (int)(rnd() % N);
        for (int i = 0; i < n; i++) {
            g[i] = (rnd() % 7 == 0) ? special[rnd() % (sizeof special / sizeof special[0])] : frand() * 12.0f;
            u[i] = (rnd() % 11 == 0) ? special[rnd() % (sizeof special / sizeof special[0])] : frand() * 4.0f;
            a[i] = b[i] = g[i];
        }
        K->swiglu(a, u, n);
        pl_kernels_generic.swiglu(b, u, n);
        for (int i = 0; i < n; i++)
            if (memcmp(&a[i], &b[i], sizeof(float)) && !(isnan(a[i]) && isnan(b[i]))) mism++;
    }
    CHECK(mism == 0, "%s swiglu: %d outputs differ from generic", K->name, mism);
}

static void test_f16(const pl_kernels_t *K) {
    float x[64];
    pl_half a[64], b[64];
    static const float special[] = {0.0f, -0.0f, INFINITY, -INFINITY, 65504.0f, 65520.0f, 65519.99f, 1e-8f,
                                    -3e-8f, 5.9604645e-8f, 2.9802322e-8f, 6.1035156e-5f, 1.0f + 1.0f / 2048};
    for (int trial = 0; trial < 200; trial++) {
        const int n = 1 + (int)(rnd() % 64);
        for (int i = 0; i < n; i++) {
            const uint32_t u = rnd() << 16 | (rnd() & 0xffff);
            float f;
            memcpy(&f, &u, 4);
            x[i] = (trial % 3 == 0) ? special[rnd() % (sizeof special / sizeof special[0])]
                   : (trial % 3 == 1) ? frand() * 70000.0f
                                      : (isnan(f) ? 1.0f : f);
        }
        K->f32_to_f16(x, a, n);
        pl_kernels_generic.f32_to_f16(x, b, n);
        CHECK(!memcmp(a, b, sizeof(pl_half) * (size_t)n), "%s f32_to_f16 n=%d differs", K->name, n);
    }
}

static void test_level(const pl_kernels_t *K) {
    printf("level %s\n", K->name);
    test_quantize(K);
    test_matmul(K);
    test_nonfinite(K);
    test_attn(K);
    test_attn_nonfinite(K);
    test_f16(K);
    test_swiglu(K);
}

#ifdef PL_TEST_AVX512_EMU
extern const pl_kernels_t pl_kernels_avx512_emu;

/* The avx512 levels compute the avx2 level's integers: every product bit
 * for bit the avx2 level's (what cpu.c checks at start-up on real VNNI). */
static void test_same_as_avx2(const pl_kernels_t *K, const pl_kernels_t *A) {
    static const uint32_t vtypes[] = {PL_TYPE_Q4_K, PL_TYPE_Q5_K,   PL_TYPE_Q6_K,  PL_TYPE_Q8_0,
                                      PL_TYPE_Q4_0, PL_TYPE_IQ4_NL, PL_TYPE_IQ4_XS};
    enum { ROWS = 13, COLS = 256 * 25, NB = 37 };
    float *x = malloc(sizeof(float) * COLS), *y1 = malloc(sizeof(float) * ROWS * NB),
          *y2 = malloc(sizeof(float) * ROWS * NB);
    for (size_t t = 0; t < sizeof vtypes / sizeof vtypes[0]; t++) {
        const pl_type_traits *tr = pl_type_traits_get(vtypes[t]);
        const size_t rb = pl_row_size(vtypes[t], COLS), xs = pl_row_size(tr->vec_dot_type, COLS);
        uint8_t *w = malloc(rb * ROWS), *xq = malloc(xs * NB);
        for (int r = 0; r < ROWS; r++) {
            for (int i = 0; i < COLS; i++) x[i] = frand() * (1 + r % 3);
            tr->from_float(x, w + (size_t)r * rb, COLS);
        }
        for (int b = 0; b < NB; b++) {
            for (int i = 0; i < COLS; i++) x[i] = frand();
            pl_kernels_generic.quantize(tr->vec_dot_type, x, xq + (size_t)b * xs, COLS);
        }
        for (int nb = 1; nb <= NB; nb += 4) {
            A->matmul(vtypes[t], w, rb, ROWS, COLS, xq, xs, nb, y1, ROWS);
            K->matmul(vtypes[t], w, rb, ROWS, COLS, xq, xs, nb, y2, ROWS);
            CHECK(!memcmp(y1, y2, sizeof(float) * ROWS * (size_t)nb), "%s %s nb=%d differs from avx2", K->name,
                  tr->name, nb);
        }
        free(w), free(xq);
    }
    free(x), free(y1), free(y2);
}
#endif

int main(void) {
    const char *const *lv = pl_kernels_available();
    for (int i = 0; lv[i]; i++) {
        const pl_kernels_t *K = pl_kernels_by_name(lv[i]);
        CHECK(K != NULL, "level %s listed but not found", lv[i]);
        if (K) test_level(K);
    }
#ifdef PL_TEST_AVX512_EMU
    const pl_kernels_t *A = pl_kernels_by_name("avx2");
    if (A) {
        test_level(&pl_kernels_avx512_emu);
        test_same_as_avx2(&pl_kernels_avx512_emu, A);
        const pl_kernels_t *R = pl_kernels_by_name("avx512"), *W = pl_kernels_by_name("avx512-wide");
        if (R) test_same_as_avx2(R, A);
        if (W) test_same_as_avx2(W, A);
    } else {
        printf("no AVX2: the avx512 level's emulation is not tested\n");
    }
#endif
    return t_summary("test_kernels");
}
