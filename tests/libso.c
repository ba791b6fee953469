/* libso.c - a program that uses libpicolm only through the installed
 * picolm.h (tests/libso.sh links it against libpicolm.so, libpicolm.a and
 * through pkg-config): greedy text from a model, then a JSON document
 * through pl_gen with the JSON grammar, a line each on stdout.
 * Usage: libso MODEL PROMPT N */
#include <picolm.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int main(int argc, char **argv) {
    if (argc != 4) {
        fprintf(stderr, "usage: libso MODEL PROMPT N\n");
        return 2;
    }
    if (strcmp(pl_version(), PICOLM_VERSION) || strcmp(pl_status_str(PL_ERR_NOMEM), "out of memory") ||
        strcmp(pl_status_str(12345), "unknown status")) {
        fprintf(stderr, "libso: pl_version %s, header %s; or a wrong pl_status_str\n", pl_version(), PICOLM_VERSION);
        return 3;
    }
    char err[256];
    pl_model *m = NULL;
    pl_context *c = NULL;
    if (pl_model_open(&m, argv[1], err, sizeof err)) {
        fprintf(stderr, "libso: %s\n", err);
        return 1;
    }
    pl_context_params cp = pl_context_default_params();
    cp.n_ctx = 256;
    cp.n_threads = 1;
    if (pl_context_new(&c, m, &cp, err, sizeof err)) {
        fprintf(stderr, "libso: %s\n", err);
        pl_model_close(m);
        return 1;
    }
    int32_t ids[256];
    int n = pl_tokenize(m, argv[2], strlen(argv[2]), pl_add_bos(m), 0, ids, 128);
    int n_vocab = pl_model_get_info(m)->n_vocab, n_predict = atoi(argv[3]), rc = 1;
    float *logits = malloc(sizeof(float) * n_vocab);
    if (n <= 0 || n > 128 || !logits || pl_eval(c, ids, n, 0, logits, 0)) goto done;
    for (int i = 0, prev = ids[n - 1]; i < n_predict; i++) {
        int32_t best = 0;
        for (int v = 1; v < n_vocab; v++)
            if (logits[v] > logits[best]) best = v;
        if (pl_token_is_eog(m, best)) break;
        char piece[64];
        int len = pl_token_to_text(m, prev, best, piece, sizeof piece);
        fwrite(piece, 1, len < (int)sizeof piece ? (size_t)len : sizeof piece, stdout);
        prev = best;
        if (pl_eval(c, &best, 1, n + i, logits, 0)) goto done;
    }
    printf("\n");

    /* the JSON grammar through pl_gen (seeded sampling) */
    pl_sampler *smp = NULL;
    pl_grammar *gram = NULL;
    pl_grammar_vocab *gv = NULL;
    pl_gen *g = NULL;
    pl_sampler_params sp = pl_sampler_default_params();
    sp.seed = 42;
    pl_gen_params gp = pl_gen_default_params();
    gp.n_predict = 48;
    if (!pl_sampler_new(&smp, &sp, n_vocab) && !pl_grammar_new_json(&gram, 0, err, sizeof err) &&
        !pl_grammar_vocab_from_model(&gv, m, err, sizeof err) && !pl_grammar_bind(gram, gv) &&
        !pl_gen_new(&g, c, 0, smp, &gp, err, sizeof err)) {
        pl_gen_set_grammar(g, gram);
        char buf[1024];
        size_t len = 0;
        int st = pl_gen_prompt(g, ids, n, logits, NULL) ? PL_GEN_ERROR : PL_GEN_RUNNING;
        while (st == PL_GEN_RUNNING && (st = pl_gen_sample(g, logits, buf, sizeof buf, &len)) == PL_GEN_RUNNING) {
            fwrite(buf, 1, len, stdout);
            len = 0;
            if (pl_gen_next(g, logits)) st = pl_gen_status(g);
        }
        fwrite(buf, 1, len, stdout);
        len = pl_gen_flush(g, buf, sizeof buf);
        fwrite(buf, 1, len, stdout);
        printf("\n");
        /* n_predict ends the document with the grammar's budget: EOG or LENGTH, complete either way */
        if ((st == PL_GEN_EOG || st == PL_GEN_LENGTH) && pl_grammar_is_complete(gram)) rc = 0;
        else fprintf(stderr, "libso: JSON generation ended with %d (%s)\n", st, pl_gen_error(g));
    } else {
        fprintf(stderr, "libso: %s\n", err);
    }
    pl_gen_free(g);
    pl_grammar_free(gram);
    pl_grammar_vocab_free(gv);
    pl_sampler_free(smp);
done:
    if (rc) fprintf(stderr, "libso: evaluation failed\n");
    free(logits);
    pl_context_free(c);
    pl_model_close(m);
    return rc;
}
