/* tokenizer.h - SentencePiece-style BPE (tokenizer.ggml.model = "llama").
 *
 * Loads pieces, scores and token types from a parsed GGUF file and encodes
 * text the way llama.cpp's SPM tokenizer does (space prefix, U+2581 for
 * spaces, score-ordered bigram merges, <0xNN> byte fallback, special tokens
 * in the text parsed as single tokens). It does not print; encode
 * allocates its scratch per call and frees it. */
#ifndef PICOLM_TOKENIZER_H
#define PICOLM_TOKENIZER_H

#include <stddef.h>
#include <stdint.h>
#include "gguf.h"

typedef struct pl_tokenizer pl_tokenizer;

/* 0 ok; negative with a reason in err (e.g. "unsupported tokenizer 'gpt2'"). */
int pl_tokenizer_load(pl_tokenizer **out, const gguf_file *g, char *err, size_t errlen);
void pl_tokenizer_free(pl_tokenizer *t); /* accepts NULL */

int pl_tokenizer_n_vocab(const pl_tokenizer *t);
int32_t pl_tokenizer_bos(const pl_tokenizer *t);
int32_t pl_tokenizer_eos(const pl_tokenizer *t);
int pl_tokenizer_add_bos(const pl_tokenizer *t); /* tokenizer.ggml.add_bos_token, default 1 */

/* Encode len bytes of text. add_bos: prepend BOS. parse_special: control
 * tokens written in the text (e.g. "</s>") become single tokens.
 * Returns the number of tokens (which may exceed max_out: then only max_out
 * were written and the caller retries with a bigger buffer), or negative on
 * error (out of memory). */
int pl_tokenizer_encode(const pl_tokenizer *t, const char *text, size_t len, int add_bos,
                        int parse_special, int32_t *out, int max_out);

/* The bytes a token stands for when it follows prev (prev < 0 at the start):
 * U+2581 -> ' ', <0xNN> -> that byte, control tokens (BOS/EOS...) -> "".
 * Writes at most cap bytes to buf, returns the full length. A leading space
 * is kept (llama.cpp keeps it too, except that it strips it after BOS when
 * the space prefix was added: we do the same). */
int pl_tokenizer_decode(const pl_tokenizer *t, int32_t prev, int32_t token, char *buf, size_t cap);

/* The raw piece text (for debugging). NULL if out of range. */
const char *pl_tokenizer_piece(const pl_tokenizer *t, int32_t token);

#endif
