/* gen.c - the one generation loop: prompt with prefix reuse, sampling
 * (an optional grammar masking first), end-of-generation tokens, stop
 * strings, the UTF-8 hold-back and the context shift, for one sequence of
 * a context. The CLI drives it token by token; a server runs many on one
 * context and batches their next tokens itself (pl_gen_sample each, one
 * pl_decode of their tokens, each next sample on its row of logits).
 * Nothing here prints; nothing allocates in the token loop. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "grammar.h"
#include "model_impl.h"

#define HOLD_MAX 1024 /* bytes held back: longest stop string + a token's bytes */
#define MAX_TOP 20     /* top_logprobs at most (OpenAI's limit) */
#define MAX_DRAFT 16   /* lookup at most */

struct pl_gen {
    pl_context *c;
    const pl_model *m;
    pl_sampler *smp;
    pl_grammar *gram;      /* or NULL: not owned */
    int seq, n_predict, n_keep, no_shift;
    char **stop;           /* [n_stop] NUL-terminated copies */
    size_t *stop_len;
    int n_stop;
    size_t max_stop;
    int n_gen, status, n_shifts;
    int32_t prev, token;   /* the last prompt or sampled token; the token to decode next */
    char hold[HOLD_MAX];   /* text not yet safe to emit: may be cut UTF-8 or a stop string's start */
    size_t n_hold;
    int logprobs, n_top;   /* asked for; how many the last sample has (-1: none) */
    /* prompt lookup: the last decode ran the sampled token and n_draft
     * drafts at positions base.. base + n_draft, rows[i] the logits after
     * position base + i; row: the one the current sample came from */
    int lookup, n_draft, row, base, drafted, accepted;
    int32_t guess;         /* the first draft for the next sample, decoded or not (-1: none) */
    float hit;             /* how often a first draft came true lately (drafts run above 1/2) */
    int32_t draft[MAX_DRAFT + 1];
    float *rows;           /* [(lookup + 1) * n_vocab], from the first step with drafts */
    pl_context *dctx;      /* a draft model's context (pl_gen_set_draft), or NULL: prompt lookup */
    int dseq;
    float *dlogits;        /* [n_vocab] the draft model's */
    pl_token_logprob lp_tok, lp_top[MAX_TOP];
    char err[160];
};

pl_gen_params pl_gen_default_params(void) {
    pl_gen_params p;
    memset(&p, 0, sizeof p);
    p.n_predict = -1;
    p.n_keep = -1;
    return p;
}

void pl_gen_free(pl_gen *g) {
    if (!g) return;
    for (int i = 0; i < g->n_stop; i++) free(g->stop[i]);
    free(g->stop);
    free(g->stop_len);
    free(g->rows);
    free(g->dlogits);
    free(g);
}

int pl_gen_new(pl_gen **out, pl_context *c, int seq, pl_sampler *smp, const pl_gen_params *p, char *err,
               size_t errlen) {
    *out = NULL;
    if (!c || !smp || !p || seq < 0 || seq >= c->n_seq || p->n_stop < 0 || (p->n_stop && !p->stop) ||
        p->top_logprobs < 0 || p->top_logprobs > MAX_TOP || p->lookup < 0 || p->lookup > MAX_DRAFT)
        return pl_set_err(err, errlen, PL_ERR_ARG, "pl_gen_new: bad arguments");
    pl_gen *g = calloc(1, sizeof *g);
    if (!g) return pl_set_err(err, errlen, PL_ERR_NOMEM, "out of memory");
    g->c = c;
    g->m = c->m;
    g->smp = smp;
    g->seq = seq;
    g->n_predict = p->n_predict;
    g->n_keep = p->n_keep;
    g->no_shift = p->no_context_shift;
    g->prev = -1;
    g->token = -1;
    g->logprobs = p->logprobs ? 1 + p->top_logprobs : 0;
    g->n_top = -1;
    g->lookup = p->lookup;
    g->guess = -1;
    g->hit = 0.6f; /* short drafts at first */
    if (p->n_stop) {
        g->stop = calloc((size_t)p->n_stop, sizeof *g->stop);
        g->stop_len = calloc((size_t)p->n_stop, sizeof *g->stop_len);
        if (!g->stop || !g->stop_len) goto nomem;
    }
    for (int i = 0; i < p->n_stop; i++) {
        size_t n = p->stop[i] ? strlen(p->stop[i]) : 0;
        if (n == 0 || n > HOLD_MAX / 2) {
            pl_gen_free(g);
            return pl_set_err(err, errlen, PL_ERR_ARG, "stop string %d is empty or longer than %d bytes", i,
                              HOLD_MAX / 2);
        }
        if (!(g->stop[i] = malloc(n + 1))) goto nomem;
        memcpy(g->stop[i], p->stop[i], n + 1);
        g->stop_len[i] = n;
        g->n_stop++;
        if (n > g->max_stop) g->max_stop = n;
    }
    *out = g;
    return 0;
nomem:
    pl_gen_free(g);
    return pl_set_err(err, errlen, PL_ERR_NOMEM, "out of memory");
}

void pl_gen_set_grammar(pl_gen *g, pl_grammar *gram) { g->gram = gram; }

void pl_gen_begin(pl_gen *g, const int32_t *ids, int n) {
    g->prev = n > 0 ? ids[n - 1] : -1;
    /* the penalties' window starts with the prompt (llama.cpp's) */
    pl_sampler_reset(g->smp);
    for (int i = 0; i < n; i++) pl_sampler_accept(g->smp, ids[i]);
    if (g->n_keep < 0) g->n_keep = n > 0 && ids[0] == pl_token_bos(g->m);
    if (g->n_keep > g->c->n_ctx / 2) g->n_keep = g->c->n_ctx / 2;
}

int pl_gen_prompt(pl_gen *g, const int32_t *ids, int n, float *logits, int *n_reused) {
    pl_context *c = g->c;
    if (n <= 0 || !ids) return PL_ERR_ARG;
    if (n > c->n_ctx) return PL_ERR_CTX_FULL;
    /* reuse what the sequence holds, but run at least the last token (its
     * logits pick the first new one) */
    int lcp = pl_seq_common_prefix(c, g->seq, ids, n);
    if (lcp > n - 1) lcp = n - 1;
    pl_seq_truncate(c, g->seq, lcp);
    if (n_reused) *n_reused = lcp;
    int32_t *pos = malloc((size_t)(n - lcp) * 2 * sizeof *pos);
    if (!pos) return PL_ERR_NOMEM;
    int32_t *sq = pos + (n - lcp);
    for (int i = lcp; i < n; i++) pos[i - lcp] = i, sq[i - lcp] = g->seq;
    pl_batch b = {n - lcp, ids + lcp, pos, sq, NULL};
    int rc = pl_decode(c, &b, logits);
    free(pos);
    if (rc) return rc;
    pl_gen_begin(g, ids, n);
    return 0;
}

/* log-softmax at temperature 1 of what the sampler drew from: the
 * sampled token's value and the top g->logprobs - 1 (kept sorted while
 * scanning: an insertion only for a value above the current last). */
static void logprobs(pl_gen *g, const float *l, int32_t tok) {
    const int V = g->m->info.n_vocab, k = g->logprobs - 1;
    float mx = -INFINITY;
    for (int i = 0; i < V; i++)
        if (l[i] > mx) mx = l[i];
    double sum = 0;
    for (int i = 0; i < V; i++) sum += expf(l[i] - mx);
    const float lse = mx + (float)log(sum);
    int n = 0;
    for (int i = 0; i < V && k > 0; i++) {
        if (n == k && !(l[i] > g->lp_top[k - 1].logprob)) continue;
        int at = n < k ? n++ : k - 1;
        while (at > 0 && l[i] > g->lp_top[at - 1].logprob) g->lp_top[at] = g->lp_top[at - 1], at--;
        g->lp_top[at].token = i, g->lp_top[at].logprob = l[i];
    }
    for (int i = 0; i < n; i++) g->lp_top[i].logprob -= lse;
    g->lp_tok.token = tok;
    g->lp_tok.logprob = l[tok] - lse;
    g->n_top = n;
}

int pl_gen_logprobs(const pl_gen *g, pl_token_logprob *chosen, pl_token_logprob *top) {
    if (!g->logprobs || g->n_top < 0) return -1;
    if (chosen) *chosen = g->lp_tok;
    if (top) memcpy(top, g->lp_top, (size_t)g->n_top * sizeof *top);
    return g->n_top;
}

/* Where text s[0..n) could still turn into a stop string: the longest
 * suffix that is a prefix of one. */
static size_t stop_tail(const pl_gen *g, const char *s, size_t n) {
    size_t best = 0;
    for (int i = 0; i < g->n_stop; i++) {
        size_t k = g->stop_len[i] - 1 < n ? g->stop_len[i] - 1 : n;
        for (; k > best; k--)
            if (!memcmp(s + n - k, g->stop[i], k)) {
                best = k;
                break;
            }
    }
    return best;
}

/* Moves what is safe to emit from the hold-back buffer to out. */
static size_t release(pl_gen *g, char *out, size_t cap, int all) {
    size_t n = g->n_hold;
    if (!all) n -= stop_tail(g, g->hold, n);
    if (n > cap) n = cap; /* the caller's buffer: the rest waits for the next call */
    if (!all) n = pl_utf8_complete(g->hold, n);
    memcpy(out, g->hold, n);
    memmove(g->hold, g->hold + n, g->n_hold - n);
    g->n_hold -= n;
    return n;
}

static void drop_drafts(pl_gen *g);

static int sample(pl_gen *g, float *logits, char *out, size_t cap, size_t *n_out) {
    *n_out = 0;
    if (g->status) return g->status;
    const int V = g->m->info.n_vocab;
    for (int i = 0; i < V; i++)
        if (!isfinite(logits[i])) {
            pl_set_err(g->err, sizeof g->err, PL_ERR_FORMAT, "the model produced NaN/Inf logits at position %d",
                       pl_seq_len(g->c, g->seq) - 1);
            return g->status = PL_GEN_ERROR;
        }
    if (g->n_predict >= 0 && g->n_gen >= g->n_predict) return g->status = PL_GEN_LENGTH;
    if (g->gram) {
        if (pl_grammar_is_done(g->gram)) return g->status = PL_GEN_EOG;
        int left = g->n_predict >= 0 ? g->n_predict - g->n_gen : g->c->n_ctx;
        int allowed = pl_grammar_steer(g->gram, logits, left);
        if (allowed <= 0) { /* a budget the grammar ran into names itself */
            if (allowed == PL_GRAMMAR_ERR_LIMIT)
                pl_set_err(g->err, sizeof g->err, PL_ERR_ARG, "%s", pl_grammar_last_error(g->gram));
            else
                pl_set_err(g->err, sizeof g->err, PL_ERR_ARG, "no token can continue the grammar (%s)",
                           pl_grammar_last_error(g->gram));
            return g->status = PL_GEN_ERROR;
        }
    }
    int32_t tok = pl_sample(g->smp, logits);
    if (tok < 0) {
        pl_set_err(g->err, sizeof g->err, PL_ERR_ARG, "no token can be sampled (every logit is -Inf)");
        return g->status = PL_GEN_ERROR;
    }
    pl_sampler_accept(g->smp, tok);
    if (g->guess >= 0) { /* whether drafting would have paid, measured even when it was not run */
        g->hit = 0.75f * g->hit + 0.25f * (tok == g->guess);
        g->guess = -1;
    }
    if (g->logprobs) logprobs(g, logits, tok);
    if (pl_token_is_eog(g->m, tok) || tok == pl_token_eos(g->m)) {
        *n_out = release(g, out, cap, 1);
        return g->status = PL_GEN_EOG;
    }
    int arc = g->gram ? pl_grammar_accept(g->gram, tok) : 0;
    if (arc == PL_GRAMMAR_ERR_LIMIT) {
        pl_set_err(g->err, sizeof g->err, PL_ERR_ARG, "%s", pl_grammar_last_error(g->gram));
        return g->status = PL_GEN_ERROR;
    }
    if (arc) {
        pl_set_err(g->err, sizeof g->err, PL_ERR_ARG, "the grammar rejected token %d (%s)", tok,
                   pl_grammar_last_error(g->gram));
        return g->status = PL_GEN_ERROR;
    }
    g->n_gen++;
    g->token = tok;
    char piece[256];
    int len = pl_token_to_text(g->m, g->prev, tok, piece, sizeof piece);
    if (len > (int)sizeof piece) len = (int)sizeof piece;
    g->prev = tok;
    if (len > 0) {
        if (g->n_hold + (size_t)len > HOLD_MAX) { /* cannot happen with stop strings <= HOLD_MAX / 2 */
            size_t k = release(g, out, cap, 1);
            *n_out += k;
            out += k;
            cap -= k;
        }
        memcpy(g->hold + g->n_hold, piece, (size_t)len);
        g->n_hold += (size_t)len;
        /* a stop string that is now complete ends the output before it */
        for (int i = 0; i < g->n_stop; i++) {
            size_t from = g->n_hold > (size_t)len + g->stop_len[i] ? g->n_hold - (size_t)len - g->stop_len[i] : 0;
            for (size_t at = from; at + g->stop_len[i] <= g->n_hold; at++)
                if (!memcmp(g->hold + at, g->stop[i], g->stop_len[i])) {
                    g->n_hold = at;
                    *n_out += release(g, out, cap, 1);
                    return g->status = PL_GEN_STOP;
                }
        }
    }
    *n_out += release(g, out, cap, 0);
    if (g->n_predict >= 0 && g->n_gen >= g->n_predict) {
        *n_out += release(g, out + *n_out, cap - *n_out, 1);
        return g->status = PL_GEN_LENGTH;
    }
    return PL_GEN_RUNNING;
}

int pl_gen_sample(pl_gen *g, float *logits, char *out, size_t cap, size_t *n_out) {
    int st = sample(g, logits, out, cap, n_out);
    if (st != PL_GEN_RUNNING) drop_drafts(g);
    return st;
}

int pl_gen_room(pl_gen *g) {
    pl_context *c = g->c;
    int pos = pl_seq_len(c, g->seq);
    if (pos < c->n_ctx) return pos;
    /* full: keep n_keep tokens, drop the older half of the rest (llama.cpp's
     * context shift), or stop */
    int n_discard = (pos - g->n_keep) / 2;
    if (g->no_shift || n_discard <= 0) {
        g->status = PL_GEN_CTX_FULL;
        return -1;
    }
    if (pl_seq_shift(c, g->seq, g->n_keep, n_discard)) {
        pl_set_err(g->err, sizeof g->err, PL_ERR_ARG, "context shift failed");
        g->status = PL_GEN_ERROR;
        return -1;
    }
    g->n_shifts++;
    return pl_seq_len(c, g->seq);
}

/* Drafts for the token just sampled: what followed the latest earlier
 * occurrence of the last 3, 2 or 1 tokens (the sequence's and tok). */
static int find_draft(const pl_gen *g, int32_t tok, int32_t *out, int max) {
    const int32_t *h = pl_seq_tokens(g->c, g->seq);
    const int n = pl_seq_len(g->c, g->seq);
    if (!h || max <= 0) return 0;
    for (int k = 3; k >= 1; k--) {
        if (n < k) continue;
        /* the suffix: h[n-k+1 .. n-1], tok */
        for (int at = n - k; at >= 0; at--) { /* candidate start of an earlier copy */
            int i = 0;
            while (i < k - 1 && h[at + i] == h[n - k + 1 + i]) i++;
            if (i < k - 1 || h[at + k - 1] != tok) continue;
            /* the copy may run into what it copies (LZ77's overlap): past
             * the sequence comes tok, then the drafts themselves */
            int m = 0, from = at + k;
            for (; m < max; m++) {
                const int v = from + m;
                const int32_t t = v < n ? h[v] : v == n ? tok : out[v - n - 1];
                if (t < 0) break;
                out[m] = t;
            }
            if (m) return m;
        }
    }
    return 0;
}

static int model_draft(pl_gen *g, int32_t tok, int32_t *out, int max);

/* Drafts for the token just sampled, to be decoded at position pos + 1
 * on: at most max, as the context and n_predict leave room for. A batch
 * of k + 1 tokens costs more than one (1.3-1.8x for a few on 2 cores), so
 * drafts run only while first drafts have come true more than half the
 * time lately; the guess is kept either way to measure that. */
static int gated_draft(pl_gen *g, int pos, int32_t *out, int max) {
    if (max > g->c->n_ctx - pos - 1) max = g->c->n_ctx - pos - 1;
    if (g->n_predict >= 0 && max > g->n_predict - g->n_gen) max = g->n_predict - g->n_gen;
    if (max <= 0) return 0;
    if (g->hit <= 0.5f) max = 1; /* only the guess, to measure */
    else if (g->hit < 1.0f) max = 1 + (int)((float)(max - 1) * (g->hit - 0.5f) * 2.0f); /* longer as they come true */
    int n = g->dctx ? model_draft(g, g->token, out, max) : find_draft(g, g->token, out, max);
    g->guess = n ? out[0] : -1;
    return g->hit > 0.5f ? n : 0;
}

int pl_gen_next(pl_gen *g, float *logits) {
    if (g->status) return g->status;
    const int V = g->m->info.n_vocab;
    if (g->lookup && g->n_draft) {
        /* the sample confirmed the next draft: its logits are ready */
        if (g->row < g->n_draft && g->token == g->draft[g->row + 1]) {
            g->row++;
            g->accepted++;
            memcpy(logits, g->rows + (size_t)g->row * V, (size_t)V * sizeof *logits);
            return 0;
        }
        /* it did not: the drafts past the confirmed ones leave the cache */
        pl_seq_truncate(g->c, g->seq, g->base + g->row + 1);
        g->n_draft = 0;
    }
    int pos = pl_gen_room(g);
    if (pos < 0) return g->status;
    int nd = g->lookup ? gated_draft(g, pos, g->draft + 1, g->lookup) : 0;
    /* the drafts' logits, allocated at the first step that runs drafts (a
     * server drafts through pl_gen_lookup_draft and never needs them);
     * without room for them the step runs without its drafts */
    if (nd && !g->rows && !(g->rows = malloc((size_t)(g->lookup + 1) * (size_t)V * sizeof *g->rows))) nd = 0;
    /* the sampled token, and its drafts in the same batch with logits for each */
    int32_t ps[MAX_DRAFT + 1], sq[MAX_DRAFT + 1];
    int8_t want[MAX_DRAFT + 1];
    g->draft[0] = g->token;
    for (int i = 0; i <= nd; i++) ps[i] = pos + i, sq[i] = g->seq, want[i] = 1;
    pl_batch b = {nd + 1, g->draft, ps, sq, nd ? want : NULL};
    int rc = pl_decode(g->c, &b, nd ? g->rows : logits);
    if (rc) {
        pl_set_err(g->err, sizeof g->err, rc, "evaluation failed: %s", pl_status_str(rc));
        return g->status = PL_GEN_ERROR;
    }
    if (nd == 0) return 0;
    g->n_draft = nd, g->row = 0, g->base = pos;
    g->drafted += nd;
    memcpy(logits, g->rows, (size_t)V * sizeof *logits);
    return 0;
}

/* Drafts from a small model with the same vocabulary: its sequence is
 * brought to the main one's tokens (the common prefix kept, the rest and
 * tok decoded), then it runs greedily for max tokens, stopping at an
 * end-of-generation token. */
static int model_draft(pl_gen *g, int32_t tok, int32_t *out, int max) {
    pl_context *dc = g->dctx;
    const int32_t *h = pl_seq_tokens(g->c, g->seq);
    const int n = pl_seq_len(g->c, g->seq), V = g->m->info.n_vocab;
    if (!h || max <= 0 || n + 1 + max > pl_context_n_ctx(dc)) return 0;
    int lcp = pl_seq_common_prefix(dc, g->dseq, h, n);
    pl_seq_truncate(dc, g->dseq, lcp);
    int32_t t[64], ps[64], sq[64];
    for (int i = lcp; i <= n;) { /* h[lcp..n) and tok, 64 at a time */
        int k = 0;
        for (; k < 64 && i <= n; k++, i++) {
            t[k] = i < n ? h[i] : tok, ps[k] = i, sq[k] = g->dseq;
            if (t[k] < 0) return 0; /* a position whose token is not known (a restored cache) */
        }
        pl_batch b = {k, t, ps, sq, NULL};
        if (pl_decode(dc, &b, g->dlogits)) return 0;
    }
    int m = 0;
    while (m < max) {
        int best = 0;
        for (int v = 1; v < V; v++)
            if (g->dlogits[v] > g->dlogits[best]) best = v;
        if (pl_token_is_eog(g->m, best)) break;
        out[m++] = best;
        if (m == max) break;
        int32_t p = n + m;
        pl_batch b = {1, &out[m - 1], &p, &g->dseq, NULL};
        if (pl_decode(dc, &b, g->dlogits)) break;
    }
    return m;
}

int pl_gen_set_draft(pl_gen *g, pl_context *draft, int seq, int n_draft) {
    if (!draft || seq < 0 || seq >= pl_context_n_seq(draft) || n_draft < 1 || n_draft > MAX_DRAFT)
        return PL_ERR_ARG;
    /* the same vocabulary: size, special ids and (a sample of) the pieces */
    const pl_model *dm = draft->m;
    if (dm->info.n_vocab != g->m->info.n_vocab || pl_token_bos(dm) != pl_token_bos(g->m) ||
        pl_token_eos(dm) != pl_token_eos(g->m))
        return PL_ERR_FORMAT;
    for (int i = 0, step = g->m->info.n_vocab / 256 + 1; i < g->m->info.n_vocab; i += step) {
        const char *a = pl_token_piece(g->m, i), *b = pl_token_piece(dm, i);
        if (!a != !b || (a && strcmp(a, b))) return PL_ERR_FORMAT;
    }
    const size_t V = (size_t)g->m->info.n_vocab;
    if (g->rows) { /* allocated by a step already (see pl_gen_next): to the new size */
        float *rows = realloc(g->rows, (size_t)(n_draft + 1) * V * sizeof *rows);
        if (!rows) return PL_ERR_NOMEM;
        g->rows = rows;
    }
    if (!g->dlogits && !(g->dlogits = malloc(V * sizeof *g->dlogits))) return PL_ERR_NOMEM;
    g->dctx = draft, g->dseq = seq, g->lookup = n_draft;
    return 0;
}

/* Generation ended: drafts nobody confirmed leave the sequence, so it
 * holds exactly the text (a server's slot reuses it). */
static void drop_drafts(pl_gen *g) {
    if (g->n_draft) pl_seq_truncate(g->c, g->seq, g->base + g->row + 1);
    g->n_draft = 0;
}

int pl_gen_lookup_draft(pl_gen *g, int32_t *out, int max) {
    if (g->status || !out || max <= 0) return 0;
    int n = gated_draft(g, pl_seq_len(g->c, g->seq), out, max < MAX_DRAFT ? max : MAX_DRAFT);
    g->drafted += n;
    return n;
}

void pl_gen_note_accepted(pl_gen *g, int n) { g->accepted += n; }

void pl_gen_draft_stats(const pl_gen *g, int *drafted, int *accepted) {
    if (drafted) *drafted = g->drafted;
    if (accepted) *accepted = g->accepted;
}

size_t pl_gen_flush(pl_gen *g, char *out, size_t cap) { return release(g, out, cap, 1); }
int32_t pl_gen_token(const pl_gen *g) { return g->token; }
int pl_gen_seq(const pl_gen *g) { return g->seq; }
int pl_gen_n_generated(const pl_gen *g) { return g->n_gen; }
int pl_gen_n_shifts(const pl_gen *g) { return g->n_shifts; }
int pl_gen_status(const pl_gen *g) { return g->status; }
const char *pl_gen_error(const pl_gen *g) { return g->err; }
