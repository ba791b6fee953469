/* fuzz_gguf.c - libFuzzer target: any byte string through the GGUF reader,
 * the model loader and (when it loads) the tokenizer, then, when a context
 * can be made (n_ctx 8, one thread, plain mmap), a few tokens of the model
 * with whatever tensor contents the fuzzer wrote: a batch of two, then one.
 * Build and run with `make fuzz` (clang, AddressSanitizer +
 * UndefinedBehaviorSanitizer); the seed corpus is the reference models'
 * first bytes (made by the Makefile when the test data is there). */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "picolm.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    /* a private copy of exactly `size` bytes, so ASan sees any overread */
    uint8_t *buf = malloc(size ? size : 1);
    if (!buf) return 0;
    memcpy(buf, data, size);
    char err[256];
    pl_model *m = NULL;
    if (pl_model_open_memory(&m, buf, size, err, sizeof err) == 0) {
        int32_t ids[64];
        pl_tokenize(m, "Hello world </s> <0x0A>", 23, 1, 1, ids, 64);
        char piece[64];
        for (int i = 0; i < 8; i++) pl_token_to_text(m, -1, i, piece, sizeof piece);
        pl_context_params cp;
        memset(&cp, 0, sizeof cp);
        cp.n_ctx = 8;
        cp.n_threads = 1;
        cp.mem_budget_mb = -1;
        pl_context *c = NULL;
        const pl_model_info *in = pl_model_get_info(m);
        if (in->n_vocab > 0 && pl_context_new(&c, m, &cp, err, sizeof err) == 0) {
            float *logits = malloc((size_t)in->n_vocab * sizeof *logits);
            int32_t t[3] = {1 % in->n_vocab, 2 % in->n_vocab, 0};
            if (logits && pl_eval(c, t, 2, 0, logits, 0) == 0) pl_eval(c, t + 2, 1, 2, logits, 0);
            free(logits);
            pl_context_free(c);
        }
        pl_model_close(m);
    }
    free(buf);
    return 0;
}
