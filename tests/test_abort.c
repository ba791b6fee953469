/* test_abort.c - pl_context_set_abort: the callback is asked before each
 * layer; an abort returns PL_ERR_ABORTED from pl_eval and pl_decode with
 * the sequences as they were, and running the same tokens again gives the
 * logits of a run never aborted, bit for bit. */
#include <picolm.h>
#include <string.h>

#include "harness.h"

typedef struct {
    int calls, stop_at; /* abort on call stop_at (0: never) */
} counter;

static int on_layer(void *user) {
    counter *k = user;
    k->calls++;
    return k->stop_at && k->calls >= k->stop_at;
}

int main(void) {
    if (t_skip_without_data("test_abort")) return 0;
    char err[256];
    pl_model *m = NULL;
    if (pl_model_open(&m, t_path("models/tiny512-Q8_0.gguf"), err, sizeof err)) {
        CHECK(0, "open: %s", err);
        return t_summary("test_abort");
    }
    const int V = pl_model_get_info(m)->n_vocab, NL = pl_model_get_info(m)->n_layer;
    pl_context_params cp = pl_context_default_params();
    cp.n_ctx = 64;
    cp.n_threads = 2;
    cp.n_seq = 2;
    pl_context *c = NULL, *ref = NULL;
    if (pl_context_new(&c, m, &cp, err, sizeof err) || pl_context_new(&ref, m, &cp, err, sizeof err)) {
        CHECK(0, "context: %s", err);
        return t_summary("test_abort");
    }
    const int32_t ids[8] = {1, 17, 42, 99, 7, 300, 5, 64};
    float *want = malloc(sizeof(float) * V), *got = malloc(sizeof(float) * V);
    CHECK(pl_eval(ref, ids, 8, 0, want, 0) == 0, "reference eval");

    /* no abort: asked once per layer of every chunk */
    counter k = {0, 0};
    pl_context_set_abort(c, on_layer, &k);
    CHECK(pl_eval(c, ids, 4, 0, got, 0) == 0, "eval with a callback that never aborts");
    CHECK(k.calls == NL, "asked %d times for %d layers", k.calls, NL);

    /* abort in the middle of a layer stack and before the first layer */
    for (int stop = NL / 2 + 1; stop >= 1; stop -= NL / 2) {
        k = (counter){0, stop};
        int rc = pl_eval(c, ids + 4, 4, 4, got, 0);
        CHECK(rc == PL_ERR_ABORTED, "stop at %d: rc %d", stop, rc);
        CHECK(pl_seq_len(c, 0) == 4, "stop at %d: sequence 0 holds %d, want 4", stop, pl_seq_len(c, 0));
        if (stop == 1) break;
    }
    pl_context_set_abort(c, NULL, NULL);
    CHECK(pl_eval(c, ids + 4, 4, 4, got, 0) == 0, "eval after the abort");
    CHECK(memcmp(got, want, sizeof(float) * V) == 0, "the logits after an abort differ from an unaborted run");
    CHECK(strcmp(pl_status_str(PL_ERR_ABORTED), "aborted") == 0, "pl_status_str(PL_ERR_ABORTED)");

    /* pl_decode: two sequences, every length back where it was */
    pl_seq_truncate(c, 0, 4);
    pl_seq_copy(c, 1, 0, 2);
    int32_t tok[6] = {7, 300, 5, 64, 7, 300}, pos[6] = {4, 5, 6, 7, 2, 3}, seq[6] = {0, 0, 0, 0, 1, 1};
    pl_batch b = {6, tok, pos, seq, NULL};
    float *two = malloc(sizeof(float) * V * 2);
    k = (counter){0, 2};
    pl_context_set_abort(c, on_layer, &k);
    int rc = pl_decode(c, &b, two);
    CHECK(rc == PL_ERR_ABORTED, "decode: rc %d", rc);
    CHECK(pl_seq_len(c, 0) == 4 && pl_seq_len(c, 1) == 2, "decode: lengths %d %d, want 4 2", pl_seq_len(c, 0),
          pl_seq_len(c, 1));
    pl_context_set_abort(c, NULL, NULL);
    CHECK(pl_decode(c, &b, two) == 0, "decode after the abort");
    CHECK(memcmp(two, want, sizeof(float) * V) == 0, "decode: sequence 0's logits differ from an unaborted run");
    CHECK(pl_seq_len(c, 0) == 8 && pl_seq_len(c, 1) == 4, "decode: lengths %d %d, want 8 4", pl_seq_len(c, 0),
          pl_seq_len(c, 1));

    free(two);
    free(want);
    free(got);
    pl_context_free(c);
    pl_context_free(ref);
    pl_model_close(m);
    return t_summary("test_abort");
}
