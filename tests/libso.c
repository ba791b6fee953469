/* libso.c - a program that uses libpicolm only through the installed
 * picolm.h (tests/libso.sh links it against libpicolm.so, libpicolm.a and
 * through pkg-config): greedy text from a model, printed to stdout.
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
    rc = 0;
done:
    if (rc) fprintf(stderr, "libso: evaluation failed\n");
    free(logits);
    pl_context_free(c);
    pl_model_close(m);
    return rc;
}
