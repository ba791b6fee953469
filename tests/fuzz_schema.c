/* fuzz_schema.c - libFuzzer target: JSON Schema text through the schema
 * compiler (both entry points: to GBNF text into a small buffer, and to a
 * grammar), then a few steps of steering on a small vocabulary
 * (fuzz_steer.h). The input is the schema, optionally followed by a NUL and
 * the bytes that drive the steering. Seeds: tests/corpus/fuzz_schema/. */
#include "fuzz_steer.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    const uint8_t *nul = memchr(data, 0, size);
    size_t slen = nul ? (size_t)(nul - data) : size;
    char *text = malloc(slen ? slen : 1);
    if (!text) return 0;
    memcpy(text, data, slen);
    char err[256], small[64];
    int n = pl_json_schema_to_gbnf(text, slen, small, sizeof small, err, sizeof err);
    if (n >= 0) FZ_CHECK(strlen(small) == ((size_t)n < sizeof small ? (size_t)n : sizeof small - 1));
    pl_grammar *g = NULL;
    int rc = pl_grammar_new_json_schema(&g, text, slen, err, sizeof err);
    if (rc == PL_OK) {
        FZ_CHECK(n > 0);
        fz_steer(g, nul ? nul + 1 : data, nul ? size - slen - 1 : size);
        pl_grammar_free(g);
    } else {
        FZ_CHECK(g == NULL && err[0] != 0);
    }
    free(text);
    return 0;
}
