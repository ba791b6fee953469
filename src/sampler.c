/* sampler.c - logit bias, repetition / presence / frequency penalties,
 * then temperature, top-k, top-p (nucleus) and min-p sampling with a
 * seeded xoshiro256** generator, so the same seed gives the same tokens on
 * every machine that computes the same logits. Temperature 0 is argmax (the
 * lowest id wins a tie), and so is any temperature too small to divide by.
 * NaN logits never win and +Inf ones win outright; when no logit is a
 * number above -Inf there is nothing to sample and pl_sample returns
 * PL_ERR_ARG. The penalties count the last repeat_last_n accepted tokens
 * (llama.cpp's: the prompt's and the generated ones). Scratch is allocated
 * once per sampler. */
#include <float.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "picolm.h"

#define HIST_MAX 32768 /* repeat_last_n -1: this many tokens */

typedef struct { float p; int32_t id; } cand;

struct pl_sampler {
    pl_sampler_params p;
    int n_vocab;
    uint64_t s[4];
    cand *c;             /* [n_vocab] */
    pl_logit_bias *bias; /* [p.n_logit_bias] a copy */
    int penalize;        /* any penalty on (and a window) */
    int32_t *hist;       /* [cap] ring of accepted tokens */
    int cap, n_hist, head;
    int32_t *count;      /* [n_vocab] occurrences in the ring */
};

pl_sampler_params pl_sampler_default_params(void) {
    pl_sampler_params p;
    memset(&p, 0, sizeof p);
    p.temperature = 0.8f;
    p.top_p = 0.9f;
    p.repeat_penalty = 1.0f;
    p.repeat_last_n = 64;
    return p;
}

static uint64_t splitmix64(uint64_t *x) {
    uint64_t z = (*x += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

static uint64_t rotl(uint64_t x, int k) { return (x << k) | (x >> (64 - k)); }

static uint64_t next_u64(pl_sampler *s) {
    uint64_t *q = s->s, r = rotl(q[1] * 5, 7) * 9, t = q[1] << 17;
    q[2] ^= q[0]; q[3] ^= q[1]; q[1] ^= q[2]; q[0] ^= q[3];
    q[2] ^= t; q[3] = rotl(q[3], 45);
    return r;
}

/* uniform in [0, 1) with 24 bits, exactly representable as float */
static float next_f32(pl_sampler *s) { return (float)(next_u64(s) >> 40) * (1.0f / 16777216.0f); }

int pl_sampler_new(pl_sampler **out, const pl_sampler_params *p, int n_vocab) {
    *out = NULL;
    if (n_vocab <= 0 || !(p->temperature >= 0) || !(p->top_p > 0 && p->top_p <= 1) || p->top_k < 0 ||
        !(p->min_p >= 0 && p->min_p <= 1) || !(p->repeat_penalty >= 0 && p->repeat_penalty <= 100) ||
        p->repeat_last_n < -1 || !(fabsf(p->presence_penalty) <= 100) || !(fabsf(p->frequency_penalty) <= 100) ||
        p->n_logit_bias < 0 || (p->n_logit_bias && !p->logit_bias))
        return PL_ERR_ARG;
    for (int i = 0; i < p->n_logit_bias; i++)
        if (p->logit_bias[i].token < 0 || p->logit_bias[i].token >= n_vocab ||
            !(fabsf(p->logit_bias[i].bias) <= 1e4f || p->logit_bias[i].bias == -INFINITY))
            return PL_ERR_ARG;
    pl_sampler *s = calloc(1, sizeof *s);
    if (!s) return PL_ERR_NOMEM;
    s->p = *p;
    s->n_vocab = n_vocab;
    s->c = malloc((size_t)n_vocab * sizeof *s->c);
    if (p->n_logit_bias) {
        s->bias = malloc((size_t)p->n_logit_bias * sizeof *s->bias);
        if (s->bias) memcpy(s->bias, p->logit_bias, (size_t)p->n_logit_bias * sizeof *s->bias);
    }
    s->p.logit_bias = s->bias;
    const int rep = p->repeat_penalty > 0 && p->repeat_penalty != 1.0f;
    s->cap = p->repeat_last_n < 0 ? HIST_MAX : p->repeat_last_n;
    s->penalize = s->cap > 0 && (rep || p->presence_penalty != 0 || p->frequency_penalty != 0);
    if (s->penalize) {
        s->hist = malloc((size_t)s->cap * sizeof *s->hist);
        s->count = calloc((size_t)n_vocab, sizeof *s->count);
    }
    if (!s->c || (p->n_logit_bias && !s->bias) || (s->penalize && (!s->hist || !s->count))) {
        pl_sampler_free(s);
        return PL_ERR_NOMEM;
    }
    uint64_t x = p->seed;
    for (int i = 0; i < 4; i++) s->s[i] = splitmix64(&x);
    *out = s;
    return 0;
}

void pl_sampler_free(pl_sampler *s) {
    if (!s) return;
    free(s->c);
    free(s->bias);
    free(s->hist);
    free(s->count);
    free(s);
}

void pl_sampler_accept(pl_sampler *s, int32_t token) {
    if (!s->penalize || token < 0 || token >= s->n_vocab) return;
    if (s->n_hist == s->cap) { /* the oldest leaves the window */
        s->count[s->hist[s->head]]--;
        s->n_hist--;
    }
    s->hist[s->head] = token;
    s->head = (s->head + 1) % s->cap;
    s->n_hist++;
    s->count[token]++;
}

void pl_sampler_reset(pl_sampler *s) {
    if (!s->penalize) return;
    memset(s->count, 0, (size_t)s->n_vocab * sizeof *s->count);
    s->n_hist = s->head = 0;
}

/* Logit bias, then llama.cpp's penalties for every distinct token in the
 * window: a repeated token's logit divided by repeat_penalty when positive,
 * multiplied when not; minus count * frequency + presence. */
static void adjust(pl_sampler *s, float *logits) {
    for (int i = 0; i < s->p.n_logit_bias; i++) logits[s->bias[i].token] += s->bias[i].bias;
    if (!s->penalize || !s->n_hist) return;
    const float rp = s->p.repeat_penalty > 0 ? s->p.repeat_penalty : 1.0f;
    /* the window's tokens are hist[0 .. n_hist) (the ring fills from 0, then
     * overwrites in place); their order does not matter here */
    for (int k = 0; k < s->n_hist; k++) {
        const int32_t t = s->hist[k];
        const int n = s->count[t];
        if (n <= 0) continue;  /* already done: marked below */
        float l = logits[t];
        l = l > 0 ? l / rp : l * rp;
        logits[t] = l - (float)n * s->p.frequency_penalty - s->p.presence_penalty;
        s->count[t] = -n;      /* once per distinct token */
    }
    for (int k = 0; k < s->n_hist; k++)
        if (s->count[s->hist[k]] < 0) s->count[s->hist[k]] = -s->count[s->hist[k]];
}

/* The candidates' order: higher p first, then the lower id (a strict
 * order: equal probabilities cannot make the cuts depend on where a
 * candidate sits). */
static int before(const cand *x, const cand *y) { return x->p > y->p || (x->p == y->p && x->id < y->id); }

static void swap_c(cand *a, cand *b) {
    const cand t = *a;
    *a = *b;
    *b = t;
}

/* Partitions c[lo, hi) (hi - lo >= 2) around a median-of-three pivot: on
 * return c[lo, *q) come before the pivot, which is at *q, and c(*q, hi)
 * after it. */
static void partition(cand *c, int lo, int hi, int *q) {
    const int mid = lo + (hi - lo) / 2, last = hi - 1;
    if (before(&c[mid], &c[lo])) swap_c(&c[mid], &c[lo]);
    if (before(&c[last], &c[lo])) swap_c(&c[last], &c[lo]);
    if (before(&c[last], &c[mid])) swap_c(&c[last], &c[mid]);
    swap_c(&c[mid], &c[last]); /* the median, as the pivot, at the end */
    int k = lo;
    for (int i = lo; i < last; i++)
        if (before(&c[i], &c[last])) swap_c(&c[i], &c[k++]);
    swap_c(&c[k], &c[last]);
    *q = k;
}

static int by_order(const void *a, const void *b) { return before(b, a) - before(a, b); }

/* Partitions left for a range before it is sorted instead: median-of-three
 * quickselect is linear on average, but some orders of the input make it
 * quadratic; those fall back to qsort (n log n). */
static int budget(int m) {
    int b = 8;
    while (m > 1) b += 2, m >>= 1;
    return b;
}

/* Moves the k first candidates in the order above to c[0, k), in no
 * particular order (quickselect: linear time on average). */
static void select_top(cand *c, int m, int k) {
    int lo = 0, hi = m, left = budget(m);
    while (hi - lo > 1) {
        if (!left--) {
            qsort(c + lo, (size_t)(hi - lo), sizeof *c, by_order);
            return;
        }
        int q;
        partition(c, lo, hi, &q);
        if (q == k || q + 1 == k) return;
        if (q > k) hi = q;
        else lo = q + 1;
    }
}

/* The nucleus: the shortest run of the first candidates in the order above
 * whose probabilities reach lim (at least one); moved to c[0, n), n
 * returned, its sum in *got. Found by partitioning, as select_top. */
static int select_nucleus(cand *c, int m, double lim, double *got) {
    int lo = 0, hi = m, left = budget(m);
    double taken = 0; /* the sum of c[0, lo), all in the nucleus, < lim */
    if (!(lim > 0)) {
        select_top(c, m, 1);
        *got = c[0].p;
        return 1;
    }
    while (hi - lo > 1) {
        if (!left--) { /* sorted: the run ends where the sum reaches lim */
            qsort(c + lo, (size_t)(hi - lo), sizeof *c, by_order);
            for (; lo < hi - 1 && taken + c[lo].p < lim; lo++) taken += c[lo].p;
            break;
        }
        int q;
        partition(c, lo, hi, &q);
        double s = 0;
        for (int i = lo; i < q; i++) s += c[i].p;
        if (taken + s >= lim) hi = q; /* the run ends before the pivot (q > lo: taken < lim) */
        else if (taken + s + c[q].p >= lim) {
            *got = taken + s + c[q].p;
            return q + 1;
        } else
            taken += s + c[q].p, lo = q + 1;
    }
    if (lo == hi) { /* every candidate (rounding kept the total just below lim) */
        *got = taken;
        return lo;
    }
    *got = taken + c[lo].p; /* c[lo]: the candidate the run still needs */
    return lo + 1;
}

int32_t pl_sample(pl_sampler *s, float *logits) {
    int n = s->n_vocab;
    adjust(s, logits);
    int32_t best = -1;
    for (int i = 0; i < n; i++) /* NaN compares false: never the best */
        if (logits[i] > -INFINITY && (best < 0 || logits[i] > logits[best])) best = i;
    if (best < 0) return PL_ERR_ARG;
    /* greedy at T = 0, for an infinite logit (the limit of any softmax),
     * and when 1/T overflows: (x - max) / T would give 0 * Inf = NaN */
    float mx = logits[best], inv_t = s->p.temperature > 0.0f ? 1.0f / s->p.temperature : 0.0f;
    if (s->p.temperature <= 0.0f || isinf(mx) || !(inv_t <= FLT_MAX)) return best;

    /* softmax at temperature, relative to the max for stability */
    double sum = 0;
    int m = 0;
    for (int i = 0; i < n; i++) {
        if (logits[i] != logits[i]) continue; /* NaN never wins */
        float e = expf((logits[i] - mx) * inv_t);
        s->c[m].p = e;
        s->c[m].id = i;
        sum += e;
        m++;
    }
    /* llama.cpp's order of the cuts: top-k, top-p (over what top-k left),
     * min-p (relative to the most likely); no sort: the cuts select, and
     * the draw walks the survivors in the order the selection left them */
    if (s->p.top_k > 0 && s->p.top_k < m) {
        select_top(s->c, m, s->p.top_k);
        m = s->p.top_k;
        sum = 0;
        for (int i = 0; i < m; i++) sum += s->c[i].p;
    }
    if (s->p.top_p < 1.0f && m > 1) m = select_nucleus(s->c, m, s->p.top_p * sum, &sum);
    if (s->p.min_p > 0.0f && m > 1) { /* min-p: at least min_p x the most likely */
        float top = 0;
        for (int i = 0; i < m; i++) top = s->c[i].p > top ? s->c[i].p : top;
        const float lim = s->p.min_p * top;
        int k = 0;
        for (int i = 0; i < m; i++)
            if (s->c[i].p >= lim) s->c[k++] = s->c[i];
        if (k < m) {
            m = k;
            sum = 0;
            for (int i = 0; i < m; i++) sum += s->c[i].p;
        }
    }
    double r = next_f32(s) * sum, acc = 0;
    for (int i = 0; i < m; i++) {
        acc += s->c[i].p;
        if (r < acc) return s->c[i].id;
    }
    return m > 0 ? s->c[m - 1].id : best;
}
