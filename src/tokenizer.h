/* tokenizer.h - the tokenizer: SentencePiece (tokenizer.ggml.model =
 * "llama") and byte-level BPE ("gpt2") behind one interface.
 *
 * Loads pieces, scores, token types (and BPE merges) from a parsed GGUF
 * file and encodes text the way llama.cpp does: SPM with its space prefix,
 * U+2581 for spaces, score-ordered bigram merges and <0xNN> byte fallback;
 * BPE with the pre-tokenizer tokenizer.ggml.pre names, GPT-2's byte-level
 * code points and rank-ordered merges. Special tokens written in the text
 * are parsed as single tokens when asked. It does not print; encode
 * allocates its scratch per call and frees it. */
#ifndef PICOLM_TOKENIZER_H
#define PICOLM_TOKENIZER_H

#include <stddef.h>
#include <stdint.h>
#include "gguf.h"

typedef struct pl_tokenizer pl_tokenizer;

/* 0 ok; negative with a reason in err (e.g. "unsupported tokenizer 't5'",
 * "unsupported pre-tokenizer 'xyz'"). */
int pl_tokenizer_load(pl_tokenizer **out, const gguf_file *g, char *err, size_t errlen);
void pl_tokenizer_free(pl_tokenizer *t); /* accepts NULL */

int pl_tokenizer_n_vocab(const pl_tokenizer *t);
int32_t pl_tokenizer_bos(const pl_tokenizer *t);
int32_t pl_tokenizer_eos(const pl_tokenizer *t);
/* tokenizer.ggml.add_bos_token; without it llama.cpp's default: 1 for SPM,
 * for BPE 1 only with the llama3 (llama-bpe...) and tekken pre-tokenizers. */
int pl_tokenizer_add_bos(const pl_tokenizer *t);

/* Encode len bytes of text. add_bos: prepend BOS. parse_special: control
 * tokens written in the text (e.g. "</s>") become single tokens
 * (user-defined ones always do, as in llama.cpp). BPE reads invalid UTF-8
 * as U+FFFD, as llama.cpp does.
 * Returns the number of tokens (which may exceed max_out: then only max_out
 * were written and the caller retries with a bigger buffer), or negative on
 * error (out of memory). */
int pl_tokenizer_encode(const pl_tokenizer *t, const char *text, size_t len, int add_bos,
                        int parse_special, int32_t *out, int max_out);

/* The bytes a token stands for when it follows prev (prev < 0 at the start):
 * SPM: U+2581 -> ' ', <0xNN> -> that byte; BPE: each of GPT-2's byte-level
 * code points -> its byte (a token may end inside a UTF-8 character);
 * user-defined pieces -> their text; control tokens (BOS/EOS...) -> "".
 * Writes at most cap bytes to buf, returns the full length. A leading space
 * is kept (llama.cpp keeps it too, except that it strips it after BOS when
 * the SPM space prefix was added: we do the same). */
int pl_tokenizer_decode(const pl_tokenizer *t, int32_t prev, int32_t token, char *buf, size_t cap);

/* The raw piece text (for debugging). NULL if out of range. */
const char *pl_tokenizer_piece(const pl_tokenizer *t, int32_t token);

/* As encode with parse_special, except that special-token text inside the
 * n_plain byte ranges [plain[2i], plain[2i+1]) is plain text (no special
 * piece of any type is cut out there; a piece straddling a range edge is
 * not cut out either). The ranges must be sorted and not overlap
 * (PL_ERR_ARG otherwise). With no special text in them the ids equal
 * encode(parse_special = 1)'s. */
int pl_tokenizer_encode_spans(const pl_tokenizer *t, const char *text, size_t len, int add_bos, const size_t *plain,
                              int n_plain, int32_t *out, int max_out);

/* 1 when id ends generation: EOS, tokenizer.ggml.eot_token_id /
 * eom_token_id, and the end-of-turn pieces llama.cpp recognizes by text
 * (<|eot_id|>, <|im_end|>, <|end|>, <end_of_turn>, <|endoftext|>,
 * <|end_of_text|>, <|return|>, a special </s>, ...). */
int pl_tokenizer_is_eog(const pl_tokenizer *t, int32_t id);
/* The id of the piece whose text is exactly text[0..len), or -1 (the last
 * id when several share it, as llama.cpp's token_to_id). */
int32_t pl_tokenizer_find(const pl_tokenizer *t, const char *text, size_t len);
const char *pl_tokenizer_kind(const pl_tokenizer *t); /* "spm" or "bpe" */
const char *pl_tokenizer_pre(const pl_tokenizer *t);  /* tokenizer.ggml.pre, or "default" (always for spm) */

#endif
