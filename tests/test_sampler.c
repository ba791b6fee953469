/* test_sampler.c - the sampler on hostile logits and parameters: a
 * temperature too small to divide by is greedy, NaN never wins, +Inf wins
 * outright, nothing above -Inf is a refusal (never an index out of range),
 * and ordinary sampling stays seeded and follows the softmax. Self-contained:
 * needs no reference data. */
#include <math.h>

#include "harness.h"
#include "picolm.h"

#define NV 300

static uint64_t rng = 0x2545F4914F6CDD1Dull;
static float frand(void) { /* in [-4, 4) */
    rng ^= rng << 13; rng ^= rng >> 7; rng ^= rng << 17;
    return (float)(rng >> 40) / 16777216.0f * 8.0f - 4.0f;
}

static int argmax(const float *l, int n) {
    int b = 0;
    for (int i = 1; i < n; i++)
        if (l[i] > l[b]) b = i;
    return b;
}

static int32_t sample_with(pl_sampler_params p, const int32_t *seen, int n_seen, const float *logits, int n);

static int32_t sample_once(float t, float top_p, int top_k, uint64_t seed, const float *logits, int n) {
    pl_sampler_params p = {.temperature = t, .top_p = top_p, .top_k = top_k, .seed = seed};
    return sample_with(p, NULL, 0, logits, n);
}

/* every temperature too small for 1/T (or so small that only the max
 * survives the softmax) gives the argmax, whatever top-p and top-k say */
static void test_tiny_temperature(void) {
    const float temps[] = {1e-45f, 1.401298464e-45f, 1e-40f, 1e-38f, 1e-30f, 1e-20f};
    const float tops[] = {1.0f, 0.9f, 0.5f};
    const int ks[] = {0, 1, 5, 40};
    int bad = 0, runs = 0;
    for (int trial = 0; trial < 40; trial++) {
        float l[NV];
        for (int i = 0; i < NV; i++) l[i] = frand();
        int want = argmax(l, NV);
        for (size_t a = 0; a < sizeof temps / sizeof *temps; a++)
            for (size_t b = 0; b < sizeof tops / sizeof *tops; b++)
                for (size_t c = 0; c < sizeof ks / sizeof *ks; c++, runs++)
                    if (sample_once(temps[a], tops[b], ks[c], (uint64_t)trial, l, NV) != want) bad++;
    }
    CHECK(bad == 0, "%d of %d tiny-temperature samples are not the argmax", bad, runs);
}

/* NaN, +Inf and -Inf in the logits, at every temperature and cut */
static void test_nonfinite(void) {
    const float temps[] = {0.0f, 1e-45f, 0.3f, 0.8f, 1.5f, 100.0f};
    const float tops[] = {1.0f, 0.9f};
    const int ks[] = {0, 3};
    int out_of_range = 0, picked_nan = 0, wrong_inf = 0, refused = 0, runs = 0;
    for (int trial = 0; trial < 60; trial++) {
        float l[NV];
        for (int i = 0; i < NV; i++) l[i] = frand();
        int mode = trial % 4, inf_at = -1;
        for (int i = 0; i < NV; i++) {
            uint32_t r = (uint32_t)(rng >> 33) % 100;
            rng ^= rng << 13; rng ^= rng >> 7; rng ^= rng << 17;
            if (mode >= 1 && r < 30) l[i] = NAN;           /* 30% NaN */
            else if (mode >= 2 && r < 45) l[i] = -INFINITY; /* 15% -Inf */
        }
        l[0] = NAN; /* the argmax loop must not start from a NaN */
        if (mode == 3) { inf_at = 77; l[inf_at] = INFINITY; l[200] = INFINITY; }
        for (size_t a = 0; a < sizeof temps / sizeof *temps; a++)
            for (size_t b = 0; b < sizeof tops / sizeof *tops; b++)
                for (size_t c = 0; c < sizeof ks / sizeof *ks; c++, runs++) {
                    int32_t t = sample_once(temps[a], tops[b], ks[c], (uint64_t)trial * 31 + a, l, NV);
                    if (t < 0) { refused++; continue; }
                    if (t >= NV) { out_of_range++; continue; }
                    if (l[t] != l[t]) picked_nan++;
                    if (inf_at >= 0 && t != inf_at) wrong_inf++;
                }
    }
    CHECK(out_of_range == 0, "%d samples out of range", out_of_range);
    CHECK(picked_nan == 0, "%d samples picked a NaN logit", picked_nan);
    CHECK(wrong_inf == 0, "%d samples missed the first +Inf logit", wrong_inf);
    CHECK(refused == 0, "%d samples refused logits that have numbers", refused);

    /* nothing to sample: all NaN, all -Inf, a mix: a refusal, not an index */
    float l[NV];
    for (int i = 0; i < NV; i++) l[i] = NAN;
    for (size_t a = 0; a < sizeof temps / sizeof *temps; a++) {
        CHECK(sample_once(temps[a], 0.9f, 0, 1, l, NV) < 0, "all NaN at T %g: not refused", temps[a]);
    }
    for (int i = 0; i < NV; i++) l[i] = i % 2 ? NAN : -INFINITY;
    for (size_t a = 0; a < sizeof temps / sizeof *temps; a++) {
        CHECK(sample_once(temps[a], 1.0f, 3, 1, l, NV) < 0, "NaN/-Inf at T %g: not refused", temps[a]);
    }
    /* one number among NaN: that number, at any temperature */
    l[123] = -3.0f;
    for (size_t a = 0; a < sizeof temps / sizeof *temps; a++) {
        CHECK(sample_once(temps[a], 0.9f, 0, 5, l, NV) == 123, "lone finite logit at T %g", temps[a]);
    }
}

/* ordinary sampling is untouched: seeded, and it follows the softmax */
static void test_ordinary(void) {
    float l[2] = {0.0f, logf(3.0f)};
    pl_sampler_params p = {.temperature = 1.0f, .top_p = 1.0f, .seed = 7};
    pl_sampler *s, *s2;
    CHECK(pl_sampler_new(&s, &p, 2) == 0 && pl_sampler_new(&s2, &p, 2) == 0, "sampler_new");
    int ones = 0, same = 1;
    for (int i = 0; i < 20000; i++) {
        float a[2] = {l[0], l[1]}, b[2] = {l[0], l[1]};
        int32_t x = pl_sample(s, a), y = pl_sample(s2, b);
        ones += x == 1;
        same &= x == y;
    }
    CHECK(same, "the same seed gave different tokens");
    CHECK(fabs(ones / 20000.0 - 0.75) < 0.02, "p(1) = %.3f, expected 0.75", ones / 20000.0);
    pl_sampler_free(s);
    pl_sampler_free(s2);
    float g[5] = {1, 5, 5, 2, -1};
    CHECK(sample_once(0.0f, 0.9f, 0, 1, g, 5) == 1, "greedy tie: the lowest id");
    pl_sampler_params bad = {.temperature = NAN, .top_p = 0.9f, .seed = 1};
    CHECK(pl_sampler_new(&s, &bad, 5) != 0, "NaN temperature accepted");
}

/* one sample from a fresh sampler that has seen the tokens seen[] */
static int32_t sample_with(pl_sampler_params p, const int32_t *seen, int n_seen, const float *logits, int n) {
    pl_sampler *s;
    if (pl_sampler_new(&s, &p, n)) return -100;
    for (int i = 0; i < n_seen; i++) pl_sampler_accept(s, seen[i]);
    float copy[NV];
    memcpy(copy, logits, (size_t)n * sizeof *copy);
    int32_t tok = pl_sample(s, copy);
    pl_sampler_free(s);
    return tok;
}

/* logit bias, the three penalties and their window, min-p, bad values */
static void test_adjustments(void) {
    pl_sampler_params g = pl_sampler_default_params();
    g.temperature = 0;
    const float l[4] = {2.0f, 1.9f, -1.0f, -1.05f};
    pl_logit_bias up = {3, 3.5f}, ban = {0, -INFINITY};
    pl_sampler_params p = g;
    p.logit_bias = &up, p.n_logit_bias = 1;
    CHECK(sample_with(p, NULL, 0, l, 4) == 3, "a logit bias of +3.5 makes token 3 the argmax");
    p.logit_bias = &ban;
    CHECK(sample_with(p, NULL, 0, l, 4) == 1, "a -Inf bias bans token 0");
    const int32_t seen0[1] = {0};
    p = g;
    CHECK(sample_with(p, seen0, 1, l, 4) == 0, "no penalty by default");
    p.repeat_penalty = 1.1f; /* 2 / 1.1 = 1.82 < 1.9 */
    CHECK(sample_with(p, seen0, 1, l, 4) == 1, "repeat penalty divides a positive logit");
    p.repeat_penalty = 1.04f;
    CHECK(sample_with(p, seen0, 1, l, 4) == 0, "a small repeat penalty keeps the argmax");
    const float neg[2] = {-1.0f, -1.05f};
    p.repeat_penalty = 1.1f; /* -1 * 1.1 = -1.1 < -1.05 */
    CHECK(sample_with(p, seen0, 1, neg, 2) == 1, "repeat penalty multiplies a negative logit");
    p = g;
    p.presence_penalty = 0.2f;
    CHECK(sample_with(p, seen0, 1, l, 4) == 1, "presence penalty");
    p = g;
    p.frequency_penalty = 0.06f; /* once: 1.94 > 1.9; twice: 1.88 */
    const int32_t seen00[2] = {0, 0};
    CHECK(sample_with(p, seen0, 1, l, 4) == 0 && sample_with(p, seen00, 2, l, 4) == 1, "frequency penalty counts");
    p = g;
    p.presence_penalty = 0.2f, p.repeat_last_n = 2;
    const int32_t old[3] = {0, 2, 3};
    CHECK(sample_with(p, old, 3, l, 4) == 0, "a token out of the window is not penalized");
    p.repeat_last_n = 0;
    CHECK(sample_with(p, seen0, 1, l, 4) == 0, "repeat_last_n 0 turns the penalties off");
    p.repeat_last_n = -1;
    CHECK(sample_with(p, seen0, 1, l, 4) == 1, "repeat_last_n -1: the whole history");
    /* reset empties the window */
    pl_sampler *s;
    p.repeat_last_n = 64;
    CHECK(pl_sampler_new(&s, &p, 4) == 0, "sampler");
    pl_sampler_accept(s, 0);
    pl_sampler_reset(s);
    float c[4];
    memcpy(c, l, sizeof c);
    CHECK(pl_sample(s, c) == 0, "reset");
    pl_sampler_free(s);
    /* min-p: token 2 (0.04 of the max) is cut at 0.05, drawn at 0.03 */
    const float mp[3] = {0.0f, logf(0.5f), logf(0.04f)};
    for (int k = 0; k < 2; k++) {
        pl_sampler_params q = pl_sampler_default_params();
        q.temperature = 1.0f, q.top_p = 1.0f, q.seed = 3, q.min_p = k ? 0.03f : 0.05f;
        CHECK(pl_sampler_new(&s, &q, 3) == 0, "sampler");
        int twos = 0;
        for (int i = 0; i < 4000; i++) {
            float a[3] = {mp[0], mp[1], mp[2]};
            twos += pl_sample(s, a) == 2;
        }
        CHECK(k ? twos > 40 : twos == 0, "min_p %.2f: token 2 drawn %d times of 4000", q.min_p, twos);
        pl_sampler_free(s);
    }
    /* out of range: refused */
    pl_sampler_params b = g;
    b.min_p = 1.5f;
    CHECK(pl_sampler_new(&s, &b, 4) != 0, "min_p 1.5 accepted");
    b = g, b.repeat_last_n = -2;
    CHECK(pl_sampler_new(&s, &b, 4) != 0, "repeat_last_n -2 accepted");
    b = g, b.presence_penalty = NAN;
    CHECK(pl_sampler_new(&s, &b, 4) != 0, "a NaN penalty accepted");
    pl_logit_bias far = {4, 1.0f};
    b = g, b.logit_bias = &far, b.n_logit_bias = 1;
    CHECK(pl_sampler_new(&s, &b, 4) != 0, "a bias for a token past the vocabulary accepted");
}

/* The cuts (top-k, then top-p over what it left, then min-p) against a
 * reference that sorts (higher p first, then the lower id): over vocabularies
 * of 1 to 3000 with ties, every sample is in the reference's set, and each
 * member's share of 4000 draws is its renormalized probability (+-0.04). The
 * sampler selects without sorting, so this is what keeps it honest. */
typedef struct { float p; int id; } ref_c;
static int ref_order(const void *a, const void *b) {
    const ref_c *x = a, *y = b;
    if (x->p != y->p) return x->p < y->p ? 1 : -1;
    return (x->id > y->id) - (x->id < y->id);
}

static void test_cuts(void) {
    enum { MAXV = 3000, DRAWS = 4000 };
    static float l[MAXV], copy[MAXV];
    static ref_c c[MAXV];
    static double want[MAXV];
    static int got[MAXV];
    const int ks[] = {0, 1, 3, 40};
    const float tops[] = {1.0f, 0.95f, 0.5f, 0.1f}, mins[] = {0.0f, 0.05f, 0.3f};
    int outside = 0, off = 0, runs = 0;
    for (int trial = 0; trial < 48; trial++) {
        const int n = trial % 4 == 3 ? MAXV : 1 + (int)((uint32_t)(rng >> 35) % 60);
        for (int i = 0; i < n; i++) l[i] = frand();
        if (trial % 3 == 0) /* ties, the boundary among them */
            for (int i = 0; i < n; i++) l[i] = floorf(l[i]);
        pl_sampler_params p = {.temperature = trial % 2 ? 1.0f : 0.7f, .top_k = ks[trial % 4],
                               .top_p = tops[(trial / 4) % 4], .min_p = mins[(trial / 16) % 3], .seed = (uint64_t)trial};
        /* the reference */
        float mx = l[0];
        for (int i = 1; i < n; i++) mx = l[i] > mx ? l[i] : mx;
        for (int i = 0; i < n; i++) c[i].p = expf((l[i] - mx) * (1.0f / p.temperature)), c[i].id = i;
        qsort(c, (size_t)n, sizeof *c, ref_order);
        int m = p.top_k > 0 && p.top_k < n ? p.top_k : n;
        double sum = 0;
        for (int i = 0; i < m; i++) sum += c[i].p;
        if (p.top_p < 1.0f) {
            double acc = 0;
            for (int i = 0; i < m; i++)
                if ((acc += c[i].p) >= p.top_p * sum) { m = i + 1; break; }
        }
        int k = 1;
        while (k < m && c[k].p >= p.min_p * c[0].p) k++;
        m = p.min_p > 0 ? k : m;
        sum = 0;
        for (int i = 0; i < m; i++) sum += c[i].p;
        for (int i = 0; i < n; i++) want[i] = 0, got[i] = 0;
        for (int i = 0; i < m; i++) want[c[i].id] = c[i].p / sum;
        /* the sampler */
        pl_sampler *s;
        CHECK(pl_sampler_new(&s, &p, n) == 0, "sampler_new");
        for (int d = 0; d < DRAWS; d++) {
            memcpy(copy, l, (size_t)n * sizeof *copy);
            const int32_t t = pl_sample(s, copy);
            if (t < 0 || t >= n || want[t] == 0) outside++;
            else got[t]++;
        }
        pl_sampler_free(s);
        for (int i = 0; i < n; i++) off += fabs((double)got[i] / DRAWS - want[i]) > 0.04;
        runs++;
    }
    CHECK(outside == 0, "%d of %d draws outside the reference's top-k/top-p/min-p set", outside, runs * DRAWS);
    CHECK(off == 0, "%d tokens drawn at a share off their probability by more than 0.04", off);
}

int main(void) {
    test_cuts();
    test_adjustments();
    test_tiny_temperature();
    test_nonfinite();
    test_ordinary();
    return t_summary("test_sampler");
}
