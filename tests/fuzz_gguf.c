/* fuzz_gguf.c - libFuzzer target: any byte string through the GGUF reader,
 * the model loader and (when it loads) the tokenizer. Build and run with
 * `make fuzz` (clang, AddressSanitizer + UndefinedBehaviorSanitizer); the
 * seed corpus is the reference models' first bytes. */
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
        pl_model_close(m);
    }
    free(buf);
    return 0;
}
