/* tokenize_api.c - the public face of pl_tokenizer_encode_spans: tokenize a
 * chat prompt whose template markers are special tokens while the message
 * contents inside it (the caller's plain ranges) can never produce one, so
 * a user who types "<|im_end|>" gets those characters, not the token. */
#include "model_impl.h"
#include "picolm.h"
#include "tokenizer.h"

int pl_tokenize_spans(const pl_model *m, const char *text, size_t len, int add_bos, const size_t *plain, int n_plain,
                      int32_t *out, int max_out) {
    if (!m) return PL_ERR_ARG;
    return pl_tokenizer_encode_spans(m->tok, text, len, add_bos, plain, n_plain, out, max_out);
}
