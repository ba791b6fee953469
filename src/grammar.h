/* grammar.h - grammar-constrained sampling: GBNF grammars (llama.cpp's
 * subset), a built-in JSON mode and a JSON Schema compiler, all behind one
 * opaque handle that masks logits so only tokens that keep the output a
 * valid prefix of the language can be sampled.
 *
 * Usage: build a pl_grammar_vocab once per model (token bytes plus EOS; a
 * preorder trie of the token bytes), create a grammar, bind it, then in the
 * token loop: if pl_grammar_is_done, stop; pl_grammar_steer(g, logits,
 * tokens_left); sample; pl_grammar_accept(g, token). With a budget, steering
 * guarantees the document is complete when the budget runs out, as long as
 * the vocabulary has single-byte tokens for the bytes of the shortest
 * closing (llama/SentencePiece vocabularies have all 256 byte tokens).
 *
 * Functions return 0 (PL_OK) or a negative status (picolm.h's codes or the
 * ones below); constructors write the reason to the caller's buffer, the
 * token-loop calls to pl_grammar_last_error. Nothing here prints. The
 * mask/accept calls do not allocate: scratch is sized at creation/bind.
 * A handle is used by one thread at a time; a vocab may be shared. */
#ifndef PICOLM_GRAMMAR_H
#define PICOLM_GRAMMAR_H

#include <stddef.h>
#include <stdint.h>

#include "picolm.h"

#ifdef __cplusplus
extern "C" {
#endif

enum pl_grammar_status {
    PL_GRAMMAR_ERR_SYNTAX = -20,   /* bad grammar text / schema: "grammar:L:C: ..." */
    PL_GRAMMAR_ERR_DEAD_END = -21, /* no token of the vocabulary can continue */
    PL_GRAMMAR_ERR_LIMIT = -22,    /* a budget was exceeded: parse states at a step, parse work per
                                      mask or token, stack nodes, start state ("grammar too ...") */
    PL_GRAMMAR_ERR_REJECT = -23    /* accept: the token/bytes do not fit the grammar */
};

typedef struct pl_grammar pl_grammar;
typedef struct pl_grammar_vocab pl_grammar_vocab;

/* ---- vocabulary (once per model) ---- */

/* tokens[i] points at len[i] bytes (copied). Zero-length tokens (control
 * pieces) are never allowed; eos (-1: none) is allowed only when the
 * document is complete. */
int pl_grammar_vocab_new(pl_grammar_vocab **out, const char *const *tokens, const int32_t *len,
                         int n_vocab, int32_t eos, char *err, size_t errlen);
/* Same from a model: bytes of pl_token_to_text(m, -1, id) (so a
 * SentencePiece "\xe2\x96\x81x" piece is " x"), eos = pl_token_eos(m). */
int pl_grammar_vocab_from_model(pl_grammar_vocab **out, const pl_model *m, char *err, size_t errlen);
void pl_grammar_vocab_free(pl_grammar_vocab *v); /* accepts NULL */
int pl_grammar_vocab_n_nodes(const pl_grammar_vocab *v); /* trie size, for stats */

/* ---- grammars ---- */

/* GBNF: rules `name ::= alternatives`, `|`, sequences, groups, `? * +
 * {m} {m,} {m,n}`, classes `[a-z]` `[^"\\]`, `.`, string literals,
 * escapes \n \r \t \\ \" \' \[ \] \- \/ \xNN \uNNNN \UNNNNNNNN, `#`
 * comments. The start rule is `root`. Left recursion and rules that can
 * never finish are refused. Errors: "grammar:LINE:COL: message"; one past
 * the compile budget says which ("grammar too large: more than N elements
 * after expanding repetitions", "... rules"). */
int pl_grammar_new_gbnf(pl_grammar **out, const char *text, size_t len, char *err, size_t errlen);
/* Built-in JSON (RFC 8259): one value, leading whitespace allowed, none
 * after the top-level value, at most 20 consecutive whitespace bytes,
 * nesting up to max_depth (1..64; 0 = 32) objects/arrays. A hand-written
 * state machine; pl_grammar_json_gbnf() is the same language as GBNF
 * (without the depth limit) for pl_grammar_new_gbnf. */
int pl_grammar_new_json(pl_grammar **out, int max_depth, char *err, size_t errlen);
const char *pl_grammar_json_gbnf(void);
/* JSON Schema text -> GBNF -> grammar. Supports type (string, number,
 * integer, boolean, object, array, null, or a list of them), properties
 * (emitted in the schema's order), required, enum, const, items, nested;
 * an object without properties or a schema without type is any JSON
 * value of that kind. Other keywords are ignored. */
int pl_grammar_new_json_schema(pl_grammar **out, const char *schema, size_t len, char *err, size_t errlen);
/* The GBNF text for a schema into buf (NUL-terminated if cap > 0);
 * returns the full length (may exceed cap) or a negative status. */
int pl_json_schema_to_gbnf(const char *schema, size_t len, char *buf, size_t cap, char *err, size_t errlen);

/* Bind to a vocabulary (must outlive the grammar); sizes the scratch.
 * Needed by steer/apply/accept(token); accept_bytes works unbound. */
int pl_grammar_bind(pl_grammar *g, const pl_grammar_vocab *v);

/* Set logits of tokens that cannot continue the document to -INFINITY.
 * tokens_left (<= 0 or > 65534: no budget) counts this token: every allowed token
 * leaves a state whose shortest completion (in bytes) is <= tokens_left-1,
 * and once tokens_left-1 < need + 3 only tokens that strictly shorten the
 * completion are allowed. If no token meets the budget (it was smaller
 * than the shortest document), the tokens with the shortest completion
 * are allowed. EOS is allowed iff the document is complete.
 * Returns the number of allowed tokens (> 0) or a negative status
 * (PL_GRAMMAR_ERR_DEAD_END when none can continue). */
int pl_grammar_steer(pl_grammar *g, float *logits, int tokens_left);
int pl_grammar_apply(pl_grammar *g, float *logits); /* steer(g, logits, 0) */
/* Advance by a token (EOS: allowed only when complete, state unchanged).
 * PL_GRAMMAR_ERR_REJECT leaves the state unchanged (for accept_bytes: when
 * n <= 64 or the vocabulary's longest token; longer input is consumed in
 * chunks of that size, and a reject keeps the chunks before it). */
int pl_grammar_accept(pl_grammar *g, int32_t token);
int pl_grammar_accept_bytes(pl_grammar *g, const char *s, size_t n);

int pl_grammar_is_complete(const pl_grammar *g); /* the document may end here */
int pl_grammar_is_done(const pl_grammar *g);     /* complete and nothing may follow */
int pl_grammar_need(const pl_grammar *g);        /* bytes of the shortest completion */
int pl_grammar_clone(pl_grammar **out, const pl_grammar *g); /* same state, same binding */
void pl_grammar_reset(pl_grammar *g);            /* back to the empty document */
const char *pl_grammar_last_error(const pl_grammar *g);
/* Masks come from a small cache keyed by the exact state (the need after
 * every token is a function of the state); its hit/miss counts. */
void pl_grammar_stats(const pl_grammar *g, uint64_t *cache_hits, uint64_t *cache_misses);
void pl_grammar_free(pl_grammar *g); /* accepts NULL */

#ifdef __cplusplus
}
#endif
#endif
