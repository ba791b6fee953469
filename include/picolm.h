/* picolm.h - the public API of libpicolm.
 *
 * A model is a read-only mapping of a GGUF file plus its tokenizer; a
 * context owns the KV cache and scratch buffers of its sequences and runs
 * on the process's thread pool of its size (shared by the contexts that
 * ask for that size). Functions return 0 (PL_OK) or a negative status and write the
 * reason to the caller's err buffer; the library never prints or exits.
 *
 * Threads: a model is read-only once open and may be shared by contexts
 * (and grammar vocabularies) used on different threads; close it after
 * them. A context, sampler, gen or grammar belongs to one thread at a time
 * (calls on one handle never overlap; handing it to another thread
 * between calls is fine). A grammar vocabulary is read-only: share it. The
 * thread pools behind the contexts are shared internally and safe.
 *
 * Structs the caller fills take their defaults from pl_*_default_params();
 * the others it fills (pl_batch, pl_chat_msg, pl_logit_bias) only ever gain
 * fields at the end, zero meaning the old behaviour: initialize them with
 * = {0} or designated initializers. */
#ifndef PICOLM_H
#define PICOLM_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* What this header declares is the library's whole interface: the only
 * symbols libpicolm.so and libpicolm.a export (the build hides the rest). */
#if defined(__GNUC__) && !defined(_WIN32)
#pragma GCC visibility push(default)
#endif

#define PICOLM_VERSION "0.1.0"

enum pl_status {
    PL_OK = 0,
    PL_ERR_IO = -1,          /* cannot open / map the file */
    PL_ERR_FORMAT = -2,      /* malformed or inconsistent file */
    PL_ERR_UNSUPPORTED = -3, /* valid file, feature we do not run */
    PL_ERR_NOMEM = -4,
    PL_ERR_ARG = -5,         /* bad argument from the caller */
    PL_ERR_CTX_FULL = -6,    /* positions past the context length */
    PL_ERR_ABORTED = -7      /* the abort callback stopped an evaluation */
};

/* A static English phrase for a status (these, PL_GRAMMAR_ERR_* and
 * "unknown status" for any other value); never NULL. */
const char *pl_status_str(int status);
/* The library's version, PICOLM_VERSION when it was built (compare it with
 * the header's to catch a mismatched libpicolm.so). */
const char *pl_version(void);

typedef struct pl_model pl_model;
typedef struct pl_context pl_context;
typedef struct pl_sampler pl_sampler;

typedef struct pl_model_info {
    int n_vocab, n_embd, n_layer, n_head, n_head_kv, n_ff, n_rot, n_ctx_train;
    float rms_eps, rope_base;
    int has_weights;       /* 0 for a vocab-only file */
    int tied_output;       /* output projection is token_embd */
    uint64_t weight_bytes; /* bytes of tensor data in the file */
    const char *ftype;     /* type of blk.0.attn_q.weight, e.g. "Q4_K" */
    const char *arch;      /* general.architecture, e.g. "qwen3" (NULL for a vocab-only file) */
    int head_dim;          /* attention.key_length, or n_embd / n_head */
} pl_model_info;

/* Open a GGUF file (mapped read-only, never copied). */
int pl_model_open(pl_model **out, const char *path, char *err, size_t errlen);
/* The same over a caller-owned buffer that must outlive the model. */
int pl_model_open_memory(pl_model **out, const void *buf, size_t len, char *err, size_t errlen);
void pl_model_close(pl_model *m); /* accepts NULL */
const pl_model_info *pl_model_get_info(const pl_model *m);

/* Tokenizer. pl_tokenize returns the token count (may exceed max_out: only
 * max_out were written) or a negative status. */
int pl_tokenize(const pl_model *m, const char *text, size_t len, int add_bos, int parse_special,
                int32_t *out, int max_out);
/* As pl_tokenize with parse_special, but special-token text inside the n_plain byte ranges
 * [plain[2i], plain[2i+1]) of text is tokenized as ordinary text (message contents in a chat prompt). */
int pl_tokenize_spans(const pl_model *m, const char *text, size_t len, int add_bos, const size_t *plain, int n_plain,
                      int32_t *out, int max_out);
int pl_add_bos(const pl_model *m);
int32_t pl_token_bos(const pl_model *m);
int32_t pl_token_eos(const pl_model *m);
/* 1 if token ends a generation: EOS, tokenizer.ggml.eot/eom_token_id, and
 * the vocabulary's end-of-turn tokens (<|eot_id|>, <|im_end|>,
 * <end_of_turn>, <|end|>, ...); 0 otherwise (also for ids out of range). */
int pl_token_is_eog(const pl_model *m, int32_t token);
/* The id of the token whose text is exactly text[0..len) (a special token
 * such as "<|im_end|>"), or -1. */
int32_t pl_token_find(const pl_model *m, const char *text, size_t len);
/* "spm" (SentencePiece) or "bpe" (byte-level BPE), and the BPE
 * pre-tokenizer's name (tokenizer.ggml.pre; "default" for SentencePiece). */
const char *pl_vocab_kind(const pl_model *m);
const char *pl_vocab_pre(const pl_model *m);
/* Bytes of token (after prev, -1 at the start) into buf; returns the full
 * length (may exceed cap). Byte tokens give raw bytes: stream with
 * pl_utf8_complete to avoid printing half a character. */
int pl_token_to_text(const pl_model *m, int32_t prev, int32_t token, char *buf, size_t cap);
/* Length of the longest prefix of s[0..n) that does not end inside a UTF-8
 * sequence (invalid bytes count as complete). */
size_t pl_utf8_complete(const char *s, size_t n);

typedef struct pl_context_params {
    int n_ctx;     /* 0: the model's context_length capped at 2048 */
    int n_threads; /* 0: the number of online cores */
    /* Weights kept resident, in MB: 0 = auto (all of them if they fit in
     * the memory available to this process, cgroup limits included, else
     * what fits beside a streaming window); > 0 = that budget; < 0 = never
     * drop pages (plain mmap). Layers past the budget are streamed: read
     * ahead one layer and dropped from the page cache right after use. */
    int mem_budget_mb;
    int kv_q8;     /* 1: 8-bit (Q8_0) KV cache, about half the memory of FP16 */
    int n_seq;     /* sequences the context holds, each with its own n_ctx positions of KV cache; 0 = 1 */
    /* Prompt tokens per pass through the layers (1-512; the state grows
     * with it, ~90 KB a token for a 1B model): 0 = 128, or 32 where the
     * weights do not all fit in the memory available. Results are the
     * same bit for bit whatever it is. */
    int n_batch;
} pl_context_params;

/* The defaults (every field 0): start from these and set what you need, so
 * a field added later keeps its default in your code. */
pl_context_params pl_context_default_params(void);
int pl_context_new(pl_context **out, pl_model *m, const pl_context_params *p, char *err, size_t errlen);
void pl_context_free(pl_context *c); /* accepts NULL */
int pl_context_n_ctx(const pl_context *c);

/* Feed n tokens at positions pos..pos+n-1 (the cache must hold 0..pos-1).
 * logits: NULL, or n_vocab floats receiving the last position's logits, or
 * n*n_vocab floats for every position when all_logits is set.
 * A position's results are bit for bit the same however a prompt is split
 * into calls, one token at a time included: every kernel computes a token
 * as it would alone (the batch-invariance contract, at every ISA level). */
int pl_eval(pl_context *c, const int32_t *tokens, int n, int pos, float *logits, int all_logits);
/* Stopping a long evaluation: cb(user) is called on the evaluating thread
 * before each layer of every pl_eval and pl_decode (so of pl_gen_prompt and
 * pl_gen_next too); nonzero stops it. The call then returns PL_ERR_ABORTED
 * with no logits and every sequence as it was before it (the positions
 * it added dropped; for pl_eval, whatever sequence 0 held from pos on is
 * gone too). cb NULL removes it. The context's thread only: set it between calls. */
void pl_context_set_abort(pl_context *c, int (*cb)(void *user), void *user);

/* Several sequences in one context (n_seq in the params). A batch holds
 * tokens of any sequences; each token continues its sequence: its pos must
 * be what the sequence holds (pl_seq_len) plus its tokens earlier in the
 * batch. One call runs them together, each weight read once per chunk of
 * up to 32 tokens. logits[i] != 0 asks for token i's logits (NULL: the last
 * token of each sequence in the batch); they are written in batch order,
 * n_vocab floats each. A token's results are bit for bit the same whatever
 * else is in the batch and however a sequence's tokens are split into
 * calls, one token at a time included (as pl_eval). Sequence 0 is
 * the one pl_eval, pl_context_shift and the prompt cache use. */
typedef struct pl_batch {
    int n_tokens;
    const int32_t *token;  /* [n_tokens] */
    const int32_t *pos;    /* [n_tokens] position of each token in its sequence */
    const int32_t *seq_id; /* [n_tokens] its sequence, 0 .. n_seq - 1 */
    const int8_t *logits;  /* [n_tokens] or NULL */
} pl_batch;
int pl_decode(pl_context *c, const pl_batch *b, float *logits);
int pl_context_n_seq(const pl_context *c);
int pl_seq_len(const pl_context *c, int seq);               /* positions held, -1 for a bad seq */
const int32_t *pl_seq_tokens(const pl_context *c, int seq); /* the ids it holds (-1 where unknown) */
int pl_seq_truncate(pl_context *c, int seq, int n);         /* keep positions [0, n) */
int pl_seq_copy(pl_context *c, int dst, int src, int n);    /* dst = src's first n positions (a shared prefix) */
int pl_seq_shift(pl_context *c, int seq, int n_keep, int n_discard); /* the context shift of one sequence */
/* Length of the common prefix of what seq holds and tokens[0..n). */
int pl_seq_common_prefix(const pl_context *c, int seq, const int32_t *tokens, int n);

/* Shift the cache when it is full: positions [n_keep + n_discard, n_past)
 * move down by n_discard (keys re-rotated by RoPE for the new positions, as
 * llama.cpp's context shift does); the caller continues at n_past - n_discard. */
int pl_context_shift(pl_context *c, int n_keep, int n_discard, int n_past);

/* Prompt cache. Save the KV state of positions [0, n_tokens) with their
 * token ids to path (atomically: a temporary file renamed into place).
 * Load restores the longest common prefix of the cached ids and tokens
 * (at most n_tokens - 1: the caller evaluates at least the last token,
 * and gets an uncached run's logits bit for bit)
 * and sets *n_reused; a missing, corrupt or foreign file is an error the
 * caller can treat as a warning (the context is left as it was). */
int pl_cache_save(pl_context *c, const char *path, const int32_t *tokens, int n_tokens, char *err, size_t errlen);
int pl_cache_load(pl_context *c, const char *path, const int32_t *tokens, int n_tokens, int *n_reused, char *err,
                  size_t errlen);

typedef struct pl_mem_stats {
    size_t state_bytes;   /* scratch buffers, tables, pool (allocated by us) */
    size_t kv_bytes;      /* KV cache (allocated by us) */
    size_t rss_anon;      /* process private anonymous memory now (Linux; 0 if unknown) */
    size_t rss_file;      /* file-backed resident pages now: mostly the mapped model */
    size_t peak_rss;      /* process peak resident set (0 if unknown) */
    size_t peak_anon;     /* peak private anonymous memory seen by pl_context_mem calls */
} pl_mem_stats;
void pl_context_mem(pl_context *c, pl_mem_stats *out);
/* Layers kept in the page cache; the rest are streamed (see mem_budget_mb). */
int pl_context_resident_layers(const pl_context *c);

/* Sampling, in llama.cpp's order: logit bias, the penalties, temperature
 * (0 = greedy argmax), top_k (0 = off), top_p (1 = off), min_p (0 = off:
 * keep tokens at least min_p x as likely as the most likely). The
 * penalties (llama.cpp's) count the last repeat_last_n tokens passed to
 * pl_sampler_accept (0 = off, -1 = up to 32768): a token in the window has
 * its logit divided by repeat_penalty when positive, multiplied when not
 * (1 or 0 = off), then lowered by count x frequency_penalty +
 * presence_penalty. Fields after seed were added later: zeros leave them
 * off; pl_sampler_default_params fills every field. */
typedef struct pl_logit_bias {
    int32_t token;
    float bias; /* added to the token's logit (-Inf bans it) */
} pl_logit_bias;
typedef struct pl_sampler_params {
    float temperature, top_p;
    int top_k;
    uint64_t seed;
    float min_p;
    float repeat_penalty; /* 0 to 100 */
    int repeat_last_n;
    float presence_penalty, frequency_penalty; /* -100 to 100 */
    const pl_logit_bias *logit_bias;           /* [n_logit_bias], copied by pl_sampler_new */
    int n_logit_bias;
} pl_sampler_params;
/* temperature 0.8, top_p 0.9, repeat_penalty 1, repeat_last_n 64, the rest off */
pl_sampler_params pl_sampler_default_params(void);

int pl_sampler_new(pl_sampler **out, const pl_sampler_params *p, int n_vocab);
void pl_sampler_free(pl_sampler *s);
/* Picks a token from logits, which it modifies in place (the bias and the
 * penalties are applied to them): NaN never wins, an infinite logit wins
 * outright, a temperature too small to divide by is greedy; returns
 * PL_ERR_ARG when no logit is a number above -Inf. */
int32_t pl_sample(pl_sampler *s, float *logits);
/* Adds a token to the penalties' window (pl_gen does it for the prompt
 * and every sampled token); reset empties the window. */
void pl_sampler_accept(pl_sampler *s, int32_t token);
void pl_sampler_reset(pl_sampler *s);

/* The generation loop of one sequence (the CLI's and a server's): prompt
 * with prefix reuse, sampling (after an optional grammar's mask),
 * end-of-generation tokens, stop strings (never emitted, even across
 * tokens), the UTF-8 hold-back (never half a character out) and the context
 * shift. Alone:
 *     pl_gen_prompt(g, ids, n, logits, NULL);
 *     while (pl_gen_sample(g, logits, buf, cap, &n) == PL_GEN_RUNNING) {
 *         emit(buf, n);
 *         if (pl_gen_next(g, logits)) break;
 *     }
 *     emit(buf, n); n = pl_gen_flush(g, buf, cap); emit(buf, n);
 * Many on one context: sample each, then decode every running one's
 * pl_gen_token at position pl_gen_room in one pl_decode batch, and give each
 * its row of logits. */
typedef struct pl_gen pl_gen;
typedef struct pl_grammar pl_grammar;
enum pl_gen_status {
    PL_GEN_RUNNING = 0,
    PL_GEN_EOG = 1,      /* an end-of-generation token (not emitted) or a grammar's complete document */
    PL_GEN_LENGTH = 2,   /* n_predict tokens */
    PL_GEN_STOP = 3,     /* a stop string (not emitted) */
    PL_GEN_CTX_FULL = 4, /* the context is full and may not shift */
    PL_GEN_ERROR = 5     /* pl_gen_error says why (NaN logits, a grammar dead end, ...) */
};
typedef struct pl_gen_params {
    int n_predict;           /* new tokens at most; < 0: until an end-of-generation token */
    int n_keep;              /* tokens kept at the front when the context shifts; < 0: BOS if the prompt has it */
    int no_context_shift;    /* stop (PL_GEN_CTX_FULL) instead of shifting */
    const char *const *stop; /* n_stop stop strings, each 1 to 512 bytes */
    int n_stop;
    int logprobs;            /* set: each sample's log-probabilities (pl_gen_logprobs) */
    int top_logprobs;        /* with them, this many of the most likely tokens, 0 to 20 */
    int lookup;              /* prompt-lookup drafting: up to this many tokens (0 off, at most 16) */
} pl_gen_params;
pl_gen_params pl_gen_default_params(void); /* n_predict -1, n_keep -1, no stop strings */
/* The sampler (and grammar) stay the caller's; they must outlive g. */
int pl_gen_new(pl_gen **out, pl_context *c, int seq, pl_sampler *smp, const pl_gen_params *p, char *err,
               size_t errlen);
void pl_gen_free(pl_gen *g); /* accepts NULL */
void pl_gen_set_grammar(pl_gen *g, pl_grammar *gram);
/* Runs the prompt on g's sequence, reusing the prefix it already holds (at
 * most n - 1 tokens; the logits are bit for bit those of a run without
 * reuse); logits receives the last token's. *n_reused (if set): tokens
 * reused. */
int pl_gen_prompt(pl_gen *g, const int32_t *ids, int n, float *logits, int *n_reused);
/* For a caller that decodes the prompt itself (a server's batches): what
 * the prompt ended with, for detokenizing and the context shift's n_keep. */
void pl_gen_begin(pl_gen *g, const int32_t *ids, int n);
/* Picks the next token from logits (n_vocab floats, modified) and writes
 * the text now safe to emit to out (at most cap bytes: give it 1 KB).
 * Returns PL_GEN_RUNNING while the caller should decode the token, else the
 * reason it ended (out may still hold the last text). */
int pl_gen_sample(pl_gen *g, float *logits, char *out, size_t cap, size_t *n_out);
/* Makes room for the next token (the context shift) and returns its
 * position, or -1 when generation must end (pl_gen_status says why). */
int pl_gen_room(pl_gen *g);
/* pl_gen_room, then decodes the sampled token alone: logits for the next sample. */
int pl_gen_next(pl_gen *g, float *logits);
size_t pl_gen_flush(pl_gen *g, char *out, size_t cap); /* what is still held back, at the end */
int32_t pl_gen_token(const pl_gen *g);                 /* the token just sampled */
int pl_gen_seq(const pl_gen *g);
int pl_gen_n_generated(const pl_gen *g);
int pl_gen_n_shifts(const pl_gen *g);
int pl_gen_status(const pl_gen *g);
const char *pl_gen_error(const pl_gen *g);
/* With logprobs set: the log-probabilities (natural log) of the token just
 * sampled and of the top_logprobs most likely (most likely first, ties by
 * id), under the distribution the sampler drew from before temperature and
 * truncation: the model's logits with the bias, the penalties and the
 * grammar's mask applied (a token the grammar forbids has -Inf). Returns
 * how many went to top, or -1 when no token was sampled. */
typedef struct pl_token_logprob {
    int32_t token;
    float logprob;
} pl_token_logprob;
int pl_gen_logprobs(const pl_gen *g, pl_token_logprob *chosen, pl_token_logprob *top);
/* Speculative decoding by prompt lookup (lookup > 0): pl_gen_next drafts
 * the tokens that followed the latest earlier occurrence of the text's last
 * 1-3 tokens and decodes them with the sampled one in one batch; a draft
 * token the next sample equals costs no decode. Every sample is drawn as
 * without drafting, from logits that are bit for bit the same (the batch
 * invariance above), so the output is identical for greedy and for seeded
 * sampling alike; only the speed changes. Drafted: tokens proposed;
 * accepted: those the samples confirmed. */
void pl_gen_draft_stats(const pl_gen *g, int *drafted, int *accepted);
/* For a caller that batches itself (a server): up to max prompt-lookup
 * drafts for the token just sampled, as pl_gen_next would take them
 * (bounded by n_predict and the context). Decode the token at position
 * pl_gen_room and the drafts after it in one batch, logits for each; then
 * pl_gen_sample row by row while each sample equals the next draft, and
 * truncate the sequence past the last token confirmed (pl_seq_truncate). */
int pl_gen_lookup_draft(pl_gen *g, int32_t *out, int max);
void pl_gen_note_accepted(pl_gen *g, int n); /* for pl_gen_draft_stats */
/* Speculative decoding with a draft model instead (--draft): a context of
 * a small model with the same vocabulary (PL_ERR_FORMAT otherwise), whose
 * sequence seq g keeps in step with its own; up to n_draft (1-16) greedy
 * draft tokens a step, verified as prompt-lookup drafts are (the output is
 * the same as without them). The draft context must outlive g and hold at
 * least g's context length. */
int pl_gen_set_draft(pl_gen *g, pl_context *draft, int seq, int n_draft);

/* ---- Grammars (src/grammar.c, gbnf.c, json_schema.c) ----
 * Grammar-constrained sampling: GBNF grammars (llama.cpp's subset), a
 * built-in JSON mode and a JSON Schema compiler, all behind one opaque
 * handle that masks logits so only tokens that keep the output a valid
 * prefix of the language can be sampled. With pl_gen: make a vocabulary
 * from the model once, compile a grammar, pl_grammar_bind it to the
 * vocabulary and pl_gen_set_grammar it; pl_gen_sample then masks,
 * accepts, and ends with PL_GEN_EOG on a complete document. A loop of your
 * own: if pl_grammar_is_done, stop; pl_grammar_steer(g, logits,
 * tokens_left); sample; pl_grammar_accept(g, token). With a budget,
 * steering guarantees the document is complete when the budget runs out,
 * as long as the vocabulary has single-byte tokens for the bytes of the
 * shortest closing (llama/SentencePiece vocabularies have all 256 byte
 * tokens). Constructors write the reason of a failure to the caller's
 * buffer, the token-loop calls to pl_grammar_last_error (valid until the
 * next call on that grammar). The mask/accept calls do not allocate. */
typedef struct pl_grammar_vocab pl_grammar_vocab;
enum pl_grammar_status {
    PL_GRAMMAR_ERR_SYNTAX = -20,   /* bad grammar text / schema: "grammar:L:C: ..." */
    PL_GRAMMAR_ERR_DEAD_END = -21, /* no token of the vocabulary can continue */
    PL_GRAMMAR_ERR_LIMIT = -22,    /* a budget was exceeded: parse states at a step, parse work per
                                      mask or token, stack nodes, start state ("grammar too ...") */
    PL_GRAMMAR_ERR_REJECT = -23    /* accept: the token/bytes do not fit the grammar */
};

/* ---- vocabulary (once per model): read-only once made, it may be shared
 * by grammars on any threads, and must outlive every grammar bound to it ---- */

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

/* ---- grammars: each is the caller's (pl_grammar_free), one thread at a
 * time; pl_gen_set_grammar borrows it, so it must outlive the gen ---- */

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

/* Chat templates. A family is one way of writing a conversation, named as
 * in pl_chat_template_list(): chatml (SmolLM2, Qwen2), qwen2 (Qwen2.5: tool
 * results as <tool_response> user turns), qwen3 (non-thinking: the
 * generation prompt ends with an empty <think></think> block, as llama.cpp
 * with enable_thinking=false; earlier assistant turns keep only what follows
 * </think>), qwen3-think (the same, left to think), smollm3 (its metadata
 * system header, dated today in UTC; non-thinking unless the system message
 * contains /think), llama3, gemma (the system text opens the first user
 * turn), phi3 (Phi-3/3.5), phi4mini, phi4, phi2 (the model card's
 * "Instruct:/Output:"), zephyr (TinyLlama), llama2, mistral.
 *
 * The text never starts with BOS (<s>, <|begin_of_text|>, <bos>): tokenize it
 * with add_bos = pl_add_bos(model), as llama.cpp does. Special tokens inside
 * the text (<|im_start|>, and llama2's <s> before later turns) must be parsed
 * as special; message contents (see spans) should not be.
 *
 * detect returns the family of the model's tokenizer.chat_template (NULL if
 * none or unknown); detect_text does the same on a template's text (rules
 * tried in order: <|im_sep|> phi4; <|im_start|> with "Reasoning Mode"
 * smollm3, with <think> qwen3, with <tool_response> qwen2, else chatml;
 * <|start_header_id|> llama3; <start_of_turn> gemma; <|end|> with <|/tool|>
 * or "'|>' + message['content']" phi4mini, with <|user|> or <|assistant|> phi3;
 * <|user|> with </s> or eos_token zephyr; <<SYS>> llama2; [INST] mistral).
 * stop is the family's end-of-turn token text besides EOS (or NULL). */
typedef struct pl_chat_msg {
    const char *role;    /* "system", "user", "assistant", "tool" */
    const char *content; /* NUL-terminated (so it cannot hold a NUL byte); NULL reads as "" */
} pl_chat_msg;
/* Formats a conversation with family `name`; add_assistant: end with the
 * opening of the assistant's turn (the generation prompt). Writes at most cap
 * bytes to out (NUL-terminated when cap > 0: a truncated prefix when the text
 * is longer) and returns the full length (excluding NUL), or PL_ERR_ARG for an
 * unknown name or role, a role the family has no turn for (tool in gemma,
 * phi3, phi2, zephyr, llama2, mistral), a system message the family cannot
 * place (not first in gemma, llama2, mistral, smollm3; in gemma,
 * llama2 and mistral it must be followed by a user message), or a text longer
 * than INT_MAX; PL_ERR_NOMEM if smollm3 cannot copy the system text. spans,
 * when not NULL, receives 2*n_msgs offsets: [spans[2i], spans[2i+1]) is
 * message i's content in the full text, as the family writes it (trimmed in
 * llama3, gemma, llama2; qwen3's earlier answers without their reasoning;
 * smollm3's system text without /think, /no_think), past cap when truncated.
 * out may be NULL when cap is 0 (to measure); on an error it holds "". Roles
 * are not checked for alternation. */
int pl_chat_format_msgs(const char *name, const pl_chat_msg *msgs, int n_msgs, int add_assistant, char *out,
                        size_t cap, size_t *spans);
/* One system (skipped when NULL or empty) + one user message with the
 * generation prompt, as pl_chat_format_msgs (but -1 for an unknown name, as
 * this function always returned). *n_sys_bytes receives the length
 * of the system part (for --keep): up to the user turn, or up to the user's
 * text where the system text shares that turn; 0 when nothing precedes it. */
int pl_chat_format(const char *name, const char *system, const char *user, char *out, size_t cap,
                   size_t *n_sys_bytes);
const char *pl_chat_template_detect(const pl_model *m);
const char *pl_chat_template_detect_text(const char *tmpl, size_t len);
const char *pl_chat_template_stop(const char *name);
const char *pl_chat_template_list(void);

/* CPU level the kernels run at ("generic", "avx2", ...). */
const char *pl_cpu_level(void);

/* ---- Model inspection (src/info.c; picolm --info) ----
 * The file's tensors in file order, 0 <= i < pl_model_n_tensors (0 for a
 * vocab-only file). pl_model_tensor returns PL_ERR_ARG for i out of range;
 * the strings live as long as the model. Memory at a context's size: make
 * the context (its buffers are allocated lazily, untouched until used) and
 * read pl_context_mem. */
typedef struct pl_tensor_info {
    const char *name;    /* NOT NUL-terminated: name_len bytes in the mapping */
    size_t name_len;
    const char *type;    /* the ggml type name, "Q4_K" ("unknown" for an id ggml never assigned) */
    int n_dims;
    int64_t ne[4];       /* ne[0] the row length; unused dimensions 1 */
    uint64_t n_elements; /* the product of ne */
    uint64_t n_bytes;    /* its data in the file */
} pl_tensor_info;
int pl_model_n_tensors(const pl_model *m);
int pl_model_tensor(const pl_model *m, int i, pl_tensor_info *out);
/* A token's piece as the vocabulary stores it (NUL-terminated; "<s>" for
 * a control token, which pl_token_to_text writes as ""), or NULL. */
const char *pl_token_piece(const pl_model *m, int32_t token);

#if defined(__GNUC__) && !defined(_WIN32)
#pragma GCC visibility pop
#endif
#ifdef __cplusplus
}
#endif
#endif
