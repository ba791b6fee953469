/* fuzz_gbnf.c - libFuzzer target: GBNF text through the parser and
 * compiler, then a few steps of steering on a small vocabulary
 * (fuzz_steer.h). The input is the grammar, optionally followed by a NUL
 * and the bytes that drive the steering. Seeds: tests/corpus/fuzz_gbnf/. */
#include "fuzz_steer.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    const uint8_t *nul = memchr(data, 0, size);
    size_t glen = nul ? (size_t)(nul - data) : size;
    char *text = malloc(glen ? glen : 1); /* exactly glen bytes: ASan sees any overread */
    if (!text) return 0;
    memcpy(text, data, glen);
    char err[256];
    pl_grammar *g = NULL;
    int rc = pl_grammar_new_gbnf(&g, text, glen, err, sizeof err);
    if (rc == PL_OK) {
        fz_steer(g, nul ? nul + 1 : data, nul ? size - glen - 1 : size);
        pl_grammar_free(g);
    } else {
        FZ_CHECK(g == NULL && err[0] != 0);
    }
    free(text);
    return 0;
}
