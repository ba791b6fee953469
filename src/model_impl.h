/* model_impl.h - the model and context structures, shared by model.c (the
 * forward pass) and state.c (saving and loading the KV cache). Not public. */
#ifndef PICOLM_MODEL_IMPL_H
#define PICOLM_MODEL_IMPL_H

#include <stddef.h>
#include <stdint.h>

#include "gguf.h"
#include "picolm.h"
#include "platform.h"
#include "pool.h"
#include "quant.h"
#include "tokenizer.h"
#include "arch.h"

typedef struct pl_weight {
    const void *data;           /* rows x row_bytes, in the mapping */
    const pl_type_traits *tr;
    uint32_t type;
    int64_t rows, cols;         /* output features x input features */
    size_t row_bytes;
} pl_weight;

/* Per-layer tensors. Q = n_head * head_dim, KV = n_head_kv * head_dim,
 * E = n_embd, F = n_ff. Optional ones are NULL / data NULL when absent.
 * Fused tensors (phi3's attn_qkv, an ffn_up holding gate and up) are bound
 * as row views into the one tensor, never copied. */
typedef struct pl_layer {
    const float *attn_norm, *attn_norm_b; /* [E]; the bias for LayerNorm */
    pl_weight wq;                   /* [E] -> [Q] */
    pl_weight wk, wv;               /* [E] -> [KV] */
    const float *bq, *bk, *bv;      /* [Q], [KV], [KV] biases */
    const float *q_norm, *k_norm;   /* [head_dim] per-head RMSNorm (qwen3, gemma3) */
    pl_weight wo;                   /* [Q] -> [E] */
    const float *bo;                /* [E] */
    const float *attn_post_norm;    /* [E] (gemma2/3) */
    const float *ffn_norm, *ffn_norm_b; /* [E]; NULL for a parallel block (phi2) */
    pl_weight w_gate, w_up;         /* [E] -> [F]; no gate for a plain GELU FFN */
    const float *b_up;              /* [F] */
    pl_weight w_down;               /* [F] -> [E] */
    const float *b_down;            /* [E] */
    const float *ffn_post_norm;     /* [E] (gemma2/3) */
    uint8_t swa;                    /* sliding-window attention in this layer */
    uint8_t nope;                   /* no RoPE in this layer (smollm3) */
    uint8_t rope_class;             /* which row of the context's cos/sin tables */
} pl_layer;

/* Hyper-parameters, read through "{arch}." keys (model.c). */
typedef struct pl_hparams {
    const pl_arch *arch;
    int n_embd, n_layer, n_head, n_head_kv, n_ff, head_dim, n_rot;
    int n_q, n_kv;                  /* n_head * head_dim, n_head_kv * head_dim */
    float norm_eps;
    float attn_scale;               /* applied to q.k (1/sqrt(head_dim) unless the arch says) */
    float embd_scale;               /* 1, or sqrt(n_embd) */
    float attn_softcap, final_softcap; /* 0: none */
    int n_swa;                      /* sliding window (keys with p - k < n_swa), 0: none */
    /* RoPE: class 0 for most layers; class 1 for gemma3's sliding layers */
    int n_rope_class;
    float rope_base[2], rope_freq_scale[2];
    const float *rope_freqs;        /* [n_rot/2] Llama 3 frequency factors (class 0), or NULL */
    /* Phi-3.5/4 LongRoPE: short factors up to the original context, long
     * ones past it (chosen per context, as llama.cpp does), and the
     * attention factor that scales cos and sin */
    const float *rope_long, *rope_short; /* [n_rot/2] or NULL */
    int n_ctx_orig;
    float rope_attn_factor;
} pl_hparams;

struct pl_model {
    pl_mapping map;         /* owned mapping (empty for _memory) */
    gguf_file gguf;
    pl_tokenizer *tok;
    pl_model_info info;
    pl_hparams hp;
    pl_weight tok_embd;       /* [n_vocab] rows of [n_embd] */
    const float *output_norm, *output_norm_b; /* [n_embd] (the bias for LayerNorm) */
    pl_weight output;         /* [n_embd] -> [n_vocab]; = tok_embd when tied */
    const float *output_b;    /* [n_vocab] or NULL */
    pl_layer *layers;         /* [n_layer] */
    float *owned_norms;       /* norms and biases converted from non-F32 types */
    size_t owned_cap, owned_used; /* floats */
    size_t *layer_off, *layer_len; /* [n_layer] byte span of each layer's tensors in the file */
};

/* Prompt tokens per pass through the layers (pl_context_params.n_batch):
 * by default PL_BATCH, or PL_BATCH_SMALL where the weights do not all fit
 * in the memory there is (they stream, and every MB of state is a MB less
 * of resident weights). A pass reads every weight once: TinyLlama's 512-
 * token prefill on one Intel Xeon (family 6 model 167, AVX-512) core
 * went from 66 to 82 tok/s at 128 against 32 (avx512-wide level), with
 * 8.8 MB more state. */
#define PL_BATCH 128
#define PL_BATCH_SMALL 32
#define PL_BATCH_MAX 512

struct pl_context {
    pl_model *m;
    int n_ctx, n_batch;
    pl_pool *pool;
    int head_dim, kv_dim, q_dim, wide; /* wide = max(n_embd, q_dim) */
    /* activations for a batch of B = n_batch positions, position-major */
    float *x;      /* [B][n_embd] residual stream */
    float *xb;     /* [B][wide] normed input, then the attention output (q_dim), then branch outputs */
    float *q;      /* [B][wide] queries (q_dim), then the attention's output projection */
    float *k, *v;  /* [B][kv_dim] */
    float *hb;     /* [B][n_ff] gate, then the FFN's activation */
    float *hb2;    /* [B][max(n_ff, n_embd)] up; a parallel block's FFN output */
    void *xq[3];   /* [B][row bytes of max(n_embd, n_ff) floats] quantized activations */
    size_t xq_size;
    float *scores;              /* [n_threads][scores_per_thread] attention scores */
    size_t scores_per_thread;   /* group * ATTN_POS(group) * n_ctx */
    int n_seq;                  /* sequences: each its own KV slot of n_ctx positions */
    uint8_t *kcache, *vcache;   /* [n_seq][n_layer][n_head_kv][n_ctx] rows of kv_row bytes:
                                 * head_dim FP16 values, or Q8_0 blocks (--kv q8) */
    int32_t *seq_tok;           /* [n_seq][n_ctx] the token ids each sequence holds (-1: not known) */
    int *seq_len;               /* [n_seq] positions held */
    int *seq_high;              /* [n_seq] the most positions ever held (KV pages touched) */
    int32_t *b_pos, *b_seq;     /* [B] the batch being run: position and sequence of each token */
    int *b_out;                 /* [B] batch rows whose logits are wanted */
    int *seq_next;              /* [n_seq] pl_decode's scratch */
    int8_t *b_want;             /* [n_seq * n_ctx] pl_decode's scratch */
    uint32_t kv_type;           /* PL_TYPE_F16 or PL_TYPE_Q8_0 */
    size_t kv_row;              /* bytes of one cached head vector */
    float *rope_cos, *rope_sin; /* [n_rope_class][B][n_rot/2] for the batch's positions */
    const float *rope_factors;  /* class 0's frequency factors for this context's length, or NULL */
    size_t state_bytes, kv_bytes, peak_anon;
    int readahead;              /* WILLNEED hints for the next streamed layer */
    int n_resident;             /* layers [0, n_resident) stay cached; the rest stream */
    /* the default budget follows the KV cache as it fills: model pages may
     * use page_budget minus the KV pages touched so far (kv_high positions);
     * n_resident only ever shrinks. */
    size_t page_budget;
    int budget_tracks_kv;
    int (*abort_cb)(void *); /* pl_context_set_abort: asked before each layer */
    void *abort_user;
};

/* Byte offset of (sequence, layer, KV head, position) in the K or V cache:
 * the one place that knows the layout (model.c; state.c uses it too). */
size_t pl_kv_off(const pl_context *c, int seq, int l, int h, int pos);

/* Record that sequence seq holds tokens[0..n) at positions 0..n-1 (the
 * prompt cache restores KV rows behind the library's back). */
void pl_seq_set_tokens(pl_context *c, int seq, const int32_t *tokens, int n);

/* Formats the reason into err (when given) and returns code. */
int pl_set_err(char *err, size_t errlen, int code, const char *fmt, ...);

#endif
