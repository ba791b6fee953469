/* test_gen.c - the library's generation loop (pl_gen): the same tokens as a
 * hand-written greedy loop, stop strings across token boundaries (never
 * emitted), n_predict, end-of-generation tokens, the UTF-8 hold-back,
 * the context shift, NaN logits, prefix reuse bit for bit. */
#include <math.h>
#include <stdint.h>

#include "harness.h"
#include "picolm.h"

static pl_model *open_model(const char *rel) {
    char err[256];
    pl_model *m = NULL;
    if (pl_model_open(&m, t_path(rel), err, sizeof err)) {
        CHECK(0, "open %s: %s", rel, err);
        return NULL;
    }
    return m;
}

static pl_context *new_ctx(pl_model *m, int n_ctx) {
    char err[256];
    pl_context_params cp = pl_context_default_params();
    cp.n_ctx = n_ctx;
    cp.n_threads = 2;
    pl_context *c = NULL;
    CHECK(pl_context_new(&c, m, &cp, err, sizeof err) == 0, "context: %s", err);
    return c;
}

/* Sampling for run_gen (NULL: greedy) and what it checks of logprobs. */
static const pl_sampler_params *sampling;
static int lp_steps, lp_bad;
static int32_t toks[128]; /* the tokens run_gen sampled */
static int n_toks, last_accepted;
static pl_context *draft_ctx; /* run_gen drafts with it when set */

/* With logprobs on: the sampled token is the most likely under greedy,
 * the top ones are sorted, log-probabilities, and sum to at most 1. */
static void check_logprobs(const pl_gen *g, const pl_gen_params *gp) {
    pl_token_logprob tok, top[20];
    int n = pl_gen_logprobs(g, &tok, top);
    lp_steps++;
    double sum = 0;
    int bad = n != gp->top_logprobs || !(tok.logprob <= 0) || (n && top[0].token != tok.token) ||
              (n && top[0].logprob != tok.logprob);
    for (int i = 0; i < n; i++) {
        sum += exp(top[i].logprob);
        if (i && top[i].logprob > top[i - 1].logprob) bad = 1;
    }
    if (sum > 1 + 1e-4) bad = 1;
    lp_bad += bad;
}

/* Runs pl_gen to the end; the text into out (NUL-terminated); returns the
 * status. Every chunk it hands out must be whole UTF-8. */
static int run_gen(pl_model *m, pl_context *c, const int32_t *ids, int n, pl_gen_params *gp, char *out, size_t cap,
                   int *n_gen) {
    char err[256], buf[1024];
    pl_sampler_params sp = sampling ? *sampling : (pl_sampler_params){.temperature = 0.0f, .top_p = 1.0f, .seed = 1};
    pl_sampler *smp;
    pl_gen *g;
    pl_sampler_new(&smp, &sp, pl_model_get_info(m)->n_vocab);
    CHECK(pl_gen_new(&g, c, 0, smp, gp, err, sizeof err) == 0, "pl_gen_new: %s", err);
    if (draft_ctx) CHECK(pl_gen_set_draft(g, draft_ctx, 0, 6) == 0, "pl_gen_set_draft");
    float *lg = malloc((size_t)pl_model_get_info(m)->n_vocab * sizeof *lg);
    size_t used = 0, k;
    int st = pl_gen_prompt(g, ids, n, lg, NULL) ? PL_GEN_ERROR : PL_GEN_RUNNING;
    n_toks = 0;
    int cut = 0;
    while (st == PL_GEN_RUNNING) {
        st = pl_gen_sample(g, lg, buf, sizeof buf, &k);
        if (gp->logprobs && (st == PL_GEN_RUNNING || st == PL_GEN_LENGTH)) check_logprobs(g, gp);
        if ((st == PL_GEN_RUNNING || st == PL_GEN_LENGTH) && n_toks < 128) toks[n_toks++] = pl_gen_token(g);
        if (k && pl_utf8_complete(buf, k) != k && st == PL_GEN_RUNNING) cut++;
        if (used + k < cap) memcpy(out + used, buf, k), used += k;
        if (st == PL_GEN_RUNNING && pl_gen_next(g, lg)) st = pl_gen_status(g);
    }
    k = pl_gen_flush(g, buf, sizeof buf);
    if (used + k < cap) memcpy(out + used, buf, k), used += k;
    out[used] = 0;
    CHECK(cut == 0, "%d chunks ended inside a UTF-8 character", cut);
    if (n_gen) *n_gen = pl_gen_n_generated(g);
    pl_gen_draft_stats(g, NULL, &last_accepted);
    if (st == PL_GEN_ERROR) printf("  pl_gen error: %s\n", pl_gen_error(g));
    free(lg);
    pl_gen_free(g);
    pl_sampler_free(smp);
    return st;
}

/* run_gen on a fresh context of n_ctx tokens; the positions its sequence
 * holds at the end */
static int gen_fresh(pl_model *m, int n_ctx, const int32_t *ids, int n, pl_gen_params *gp, char *out, size_t cap,
                     int *n_gen) {
    pl_context *c = new_ctx(m, n_ctx);
    run_gen(m, c, ids, n, gp, out, cap, n_gen);
    int len = pl_seq_len(c, 0);
    pl_context_free(c);
    return len;
}

static void test_greedy_and_stops(void) {
    pl_model *m = open_model("models/tiny32k-Q4_K_M.gguf");
    if (!m) return;
    int V = pl_model_get_info(m)->n_vocab;
    int32_t ids[64];
    int n = pl_tokenize(m, "Once upon a time", 16, 1, 1, ids, 64);
    /* the reference: a hand-written greedy loop over pl_eval */
    pl_context *c = new_ctx(m, 256);
    float *lg = malloc((size_t)V * sizeof *lg);
    char want[4096];
    size_t wl = 0;
    pl_eval(c, ids, n, 0, lg, 0);
    int32_t prev = ids[n - 1];
    for (int i = 0; i < 40; i++) {
        int best = 0;
        for (int v = 1; v < V; v++)
            if (lg[v] > lg[best]) best = v;
        if (pl_token_is_eog(m, best)) break;
        wl += (size_t)pl_token_to_text(m, prev, best, want + wl, sizeof want - wl);
        prev = best;
        pl_eval(c, &best, 1, n + i, lg, 0);
    }
    want[wl] = 0;
    pl_context_free(c);

    char got[4096];
    int ng;
    pl_gen_params gp = pl_gen_default_params();
    gp.n_predict = 40;
    c = new_ctx(m, 256);
    int st = run_gen(m, c, ids, n, &gp, got, sizeof got, &ng);
    CHECK(st == PL_GEN_LENGTH && ng == 40, "n_predict 40: status %d, %d tokens", st, ng);
    CHECK(!strcmp(got, want), "pl_gen's greedy text differs from the hand-written loop:\n  %s\n  %s", got, want);
    pl_context_free(c);

    /* stop strings: every 5-byte piece of the text that starts past byte
     * 3 (many span tokens); the output is the text before its first
     * occurrence, never the stop string */
    int cases = 0, ok = 0;
    for (size_t at = 3; at + 5 <= wl && cases < 12; at += 7, cases++) {
        char stop[8];
        memcpy(stop, want + at, 5);
        stop[5] = 0;
        const char *first = strstr(want, stop);
        const char *stops[2] = {"\x01never", stop};
        gp = pl_gen_default_params();
        gp.n_predict = 40;
        gp.stop = stops;
        gp.n_stop = 2;
        c = new_ctx(m, 256);
        st = run_gen(m, c, ids, n, &gp, got, sizeof got, &ng);
        pl_context_free(c);
        size_t exp = (size_t)(first - want);
        int good = st == PL_GEN_STOP && strlen(got) == exp && !memcmp(got, want, exp);
        CHECK(good, "stop '%s': status %d, got %zu bytes, want %zu", stop, st, strlen(got), exp);
        ok += good;
    }
    printf("  pl_gen: greedy text equals the hand-written loop; %d/%d stop strings cut exactly\n", ok, cases);

    /* logprobs: the greedy text is unchanged, every step's values sane */
    gp = pl_gen_default_params();
    gp.n_predict = 40;
    gp.logprobs = 1, gp.top_logprobs = 5;
    c = new_ctx(m, 256);
    st = run_gen(m, c, ids, n, &gp, got, sizeof got, &ng);
    pl_context_free(c);
    CHECK(!strcmp(got, want) && lp_steps == 40 && lp_bad == 0, "logprobs: %d of %d steps wrong, text %s", lp_bad,
          lp_steps, strcmp(got, want) ? "changed" : "the same");
    gp.top_logprobs = 21;
    pl_gen *gbad;
    pl_sampler *sbad;
    pl_sampler_params sb = pl_sampler_default_params();
    pl_sampler_new(&sbad, &sb, V);
    c = new_ctx(m, 64);
    char e2[128];
    CHECK(pl_gen_new(&gbad, c, 0, sbad, &gp, e2, sizeof e2) != 0, "top_logprobs 21 accepted");
    pl_context_free(c);
    pl_sampler_free(sbad);
    /* the sampler's adjustments in the loop: a logit bias of +30 on one
     * token makes greedy repeat it; a frequency penalty then lets it go
     * after a few; a presence penalty of 100 over the whole history makes
     * every token new (prompt included); none of them: the plain text */
    int32_t fav = 1000;
    pl_logit_bias lb = {fav, 30.0f};
    pl_sampler_params pen = {.temperature = 0.0f, .top_p = 1.0f, .seed = 1, .logit_bias = &lb, .n_logit_bias = 1};
    gp = pl_gen_default_params();
    gp.n_predict = 40;
    sampling = &pen;
    int reps[3];
    for (int k = 0; k < 3; k++) {
        pen.frequency_penalty = k == 1 ? 6.0f : 0.0f;
        pen.n_logit_bias = k < 2, pen.presence_penalty = k == 2 ? 100.0f : 0.0f, pen.repeat_last_n = k == 2 ? -1 : 64;
        c = new_ctx(m, 256);
        run_gen(m, c, ids, n, &gp, got, sizeof got, &ng);
        pl_context_free(c);
        reps[k] = 0;
        for (int i = 0; i < n_toks; i++) reps[k] += toks[i] == fav;
        if (k == 2) {
            int dup = 0;
            for (int i = 0; i < n_toks; i++) {
                for (int j = 0; j < n; j++) dup += toks[i] == ids[j];
                for (int j = 0; j < i; j++) dup += toks[i] == toks[j];
            }
            CHECK(dup == 0 && n_toks == 40, "presence penalty 100: %d repeated tokens in %d", dup, n_toks);
        }
    }
    CHECK(reps[0] == 40, "a +30 bias: token %d %d times in 40", fav, reps[0]);
    CHECK(reps[1] > 0 && reps[1] < 20, "frequency penalty 6: token %d still %d times in 40", fav, reps[1]);
    sampling = NULL;
    c = new_ctx(m, 256);
    run_gen(m, c, ids, n, &gp, got, sizeof got, &ng);
    pl_context_free(c);
    CHECK(!strcmp(got, want), "the default sampler changed the greedy text");

    /* prompt lookup: the same text, greedy and seeded sampling, with and
     * without drafting; a biased run repeats a token, so drafts are taken */
    {
        const char *rep = "the cat sat on the mat and the cat sat on the mat and the cat";
        int32_t rids[64];
        int rn = pl_tokenize(m, rep, strlen(rep), 1, 1, rids, 64);
        pl_sampler_params modes[3] = {{.temperature = 0.0f, .top_p = 1.0f, .seed = 1},
                                      {.temperature = 0.8f, .top_p = 0.95f, .seed = 5},
                                      {.temperature = 0.0f, .top_p = 1.0f, .seed = 1, .logit_bias = &lb,
                                       .n_logit_bias = 1}};
        for (int k = 0; k < 3; k++) {
            char plain[4096];
            int np_;
            sampling = &modes[k];
            gp = pl_gen_default_params();
            gp.n_predict = 48;
            int len_plain = gen_fresh(m, 256, rids, rn, &gp, plain, sizeof plain, &np_);
            gp.lookup = 5;
            int len_look = gen_fresh(m, 256, rids, rn, &gp, got, sizeof got, &ng);
            const int nd_ = last_accepted;
            CHECK(!strcmp(got, plain) && ng == np_ && len_look == len_plain,
                  "lookup (mode %d) changed the output or the sequence (%d vs %d positions)", k, len_look, len_plain);
            if (k == 2) CHECK(nd_ > 20, "lookup on a repeated token: only %d drafts accepted", nd_);
        }
        sampling = NULL;
    }

    /* a draft model (tiny512-Q8_0 for tiny512-Q4_K_M: the same weights, so
     * most drafts come true): the same text, greedy and seeded, as without */
    pl_model *tm = open_model("models/tiny512-Q4_K_M.gguf"), *dm = open_model("models/tiny512-Q8_0.gguf");
    if (tm && dm) {
        int32_t tids[16];
        int tn = pl_tokenize(tm, "Once upon a time", 16, 1, 1, tids, 16);
        pl_sampler_params modes[2] = {{.temperature = 0.0f, .top_p = 1.0f, .seed = 1},
                                      {.temperature = 0.7f, .top_p = 0.95f, .seed = 9}};
        for (int k = 0; k < 2; k++) {
            char plain[4096], drafted[4096];
            int np_, nd_;
            sampling = &modes[k];
            gp = pl_gen_default_params();
            gp.n_predict = 48;
            int len_plain = gen_fresh(tm, 128, tids, tn, &gp, plain, sizeof plain, &np_);
            pl_context *dc = new_ctx(dm, 128);
            draft_ctx = dc;
            int len_drafted = gen_fresh(tm, 128, tids, tn, &gp, drafted, sizeof drafted, &nd_);
            draft_ctx = NULL;
            CHECK(!strcmp(plain, drafted) && np_ == nd_ && len_drafted == len_plain,
                  "a draft model (mode %d) changed the output", k);
            if (k == 0) CHECK(last_accepted > 10, "draft model: only %d drafts accepted", last_accepted);
            printf("  draft model (mode %d): %d of 48 tokens from drafts\n", k, last_accepted);
            pl_context_free(dc);
        }
        sampling = NULL;
        /* another vocabulary is refused */
        pl_sampler *sx;
        pl_sampler_params sp0 = pl_sampler_default_params();
        pl_sampler_new(&sx, &sp0, V);
        pl_gen *gx;
        c = new_ctx(m, 64);
        pl_context *dc = new_ctx(dm, 64);
        char ex[64];
        gp = pl_gen_default_params();
        CHECK(pl_gen_new(&gx, c, 0, sx, &gp, ex, sizeof ex) == 0 && pl_gen_set_draft(gx, dc, 0, 4) == PL_ERR_FORMAT,
              "a draft model of another vocabulary accepted");
        pl_gen_free(gx);
        pl_sampler_free(sx);
        pl_context_free(dc);
        pl_context_free(c);
    }
    if (tm) pl_model_close(tm);
    if (dm) pl_model_close(dm);

    /* the context shift: 60 tokens in a context of 24, or stop there */
    gp = pl_gen_default_params();
    gp.n_predict = 60;
    c = new_ctx(m, 24);
    st = run_gen(m, c, ids, n, &gp, got, sizeof got, &ng);
    CHECK(st == PL_GEN_LENGTH && ng == 60, "shifting: status %d after %d tokens", st, ng);
    pl_context_free(c);
    gp.no_context_shift = 1;
    c = new_ctx(m, 24);
    st = run_gen(m, c, ids, n, &gp, got, sizeof got, &ng);
    CHECK(st == PL_GEN_CTX_FULL && ng == 24 - n + 1, "no shift: status %d after %d tokens", st, ng);
    pl_context_free(c);

    /* prefix reuse on the same sequence: bit for bit a fresh run */
    c = new_ctx(m, 256);
    pl_context *f = new_ctx(m, 256);
    char err[256];
    pl_sampler_params sp = {.temperature = 0.0f, .top_p = 1.0f, .seed = 1};
    pl_sampler *smp;
    pl_sampler_new(&smp, &sp, V);
    pl_gen *g;
    gp = pl_gen_default_params();
    pl_gen_new(&g, c, 0, smp, &gp, err, sizeof err);
    int32_t longer[80];
    const char *story = "Once upon a time there was a little robot who lived alone";
    int nl = pl_tokenize(m, story, strlen(story), 1, 1, longer, 80);
    float *lf = malloc((size_t)V * sizeof *lf);
    int reused = -1;
    pl_gen_prompt(g, ids, n, lg, NULL);
    CHECK(pl_gen_prompt(g, longer, nl, lg, &reused) == 0 && reused == n, "reused %d of %d", reused, n);
    pl_eval(f, longer, nl, 0, lf, 0);
    CHECK(!memcmp(lg, lf, (size_t)V * sizeof *lg), "a reused prefix changes the logits");
    /* NaN logits end generation with an error, never a sampled token */
    lg[7] = NAN;
    size_t k;
    char buf[64];
    CHECK(pl_gen_sample(g, lg, buf, sizeof buf, &k) == PL_GEN_ERROR && strstr(pl_gen_error(g), "NaN"), "NaN logits");
    pl_gen_free(g);
    /* an end-of-generation token ends it, unprinted */
    pl_gen_new(&g, c, 0, smp, &gp, err, sizeof err);
    for (int v = 0; v < V; v++) lg[v] = v == pl_token_eos(m) ? 10.0f : 0.0f;
    CHECK(pl_gen_sample(g, lg, buf, sizeof buf, &k) == PL_GEN_EOG && k == 0, "EOS ends generation");
    pl_gen_free(g);
    const char *bad[1] = {""};
    gp.stop = bad;
    gp.n_stop = 1;
    CHECK(pl_gen_new(&g, c, 0, smp, &gp, err, sizeof err) != 0 && g == NULL, "an empty stop string is refused");
    pl_sampler_free(smp);
    free(lf);
    free(lg);
    pl_context_free(c);
    pl_context_free(f);
    pl_model_close(m);
}

/* A byte-level BPE model: <|im_end|> is an end-of-generation token. */
static void test_eog_bpe(void) {
    pl_model *m = open_model("arch/models/qwen3-F32.gguf");
    if (!m) return;
    int32_t im_end = pl_token_find(m, "<|im_end|>", 10);
    CHECK(im_end >= 0 && pl_token_is_eog(m, im_end), "<|im_end|> is an end-of-generation token (%d)", im_end);
    CHECK(!pl_token_is_eog(m, 100) && !pl_token_is_eog(m, -1) && !pl_token_is_eog(m, 1 << 30), "ordinary ids");
    pl_context *c = new_ctx(m, 64);
    int V = pl_model_get_info(m)->n_vocab;
    char err[256], buf[64];
    pl_sampler_params sp = {.temperature = 0.0f, .top_p = 1.0f, .seed = 1};
    pl_sampler *smp;
    pl_sampler_new(&smp, &sp, V);
    pl_gen *g;
    pl_gen_params gp = pl_gen_default_params();
    pl_gen_new(&g, c, 0, smp, &gp, err, sizeof err);
    float *lg = calloc((size_t)V, sizeof *lg);
    int32_t ids[3] = {100, 200, 300};
    pl_gen_prompt(g, ids, 3, lg, NULL);
    for (int v = 0; v < V; v++) lg[v] = v == im_end ? 5.0f : 0.0f;
    size_t k;
    CHECK(pl_gen_sample(g, lg, buf, sizeof buf, &k) == PL_GEN_EOG && k == 0, "<|im_end|> ends generation");
    free(lg);
    pl_gen_free(g);
    pl_sampler_free(smp);
    pl_context_free(c);
    pl_model_close(m);
}

int main(void) {
    if (t_skip_without_data("test_gen")) return 0;
    test_greedy_and_stops();
    test_eog_bpe();
    return t_summary("test_gen");
}
