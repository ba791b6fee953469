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

typedef struct pl_weight {
    const void *data;           /* rows x row_bytes, in the mapping */
    const pl_type_traits *tr;
    uint32_t type;
    int64_t rows, cols;         /* output features x input features */
    size_t row_bytes;
} pl_weight;

typedef struct pl_layer {
    const float *attn_norm; /* [n_embd] */
    pl_weight wq;           /* [n_embd] -> [n_embd] */
    pl_weight wk, wv;       /* [n_embd] -> [n_kv_dim] */
    pl_weight wo;           /* [n_embd] -> [n_embd] */
    const float *ffn_norm;  /* [n_embd] */
    pl_weight w_gate, w_up; /* [n_embd] -> [n_ff] */
    pl_weight w_down;       /* [n_ff] -> [n_embd] */
} pl_layer;

struct pl_model {
    pl_mapping map;         /* owned mapping (empty for _memory) */
    gguf_file gguf;
    pl_tokenizer *tok;
    pl_model_info info;
    pl_weight tok_embd;       /* [n_vocab] rows of [n_embd] */
    const float *output_norm; /* [n_embd] */
    pl_weight output;         /* [n_embd] -> [n_vocab]; = tok_embd when tied */
    pl_layer *layers;         /* [n_layer] */
    float *owned_norms;       /* norms converted from non-F32 types */
    size_t *layer_off, *layer_len; /* [n_layer] byte span of each layer's tensors in the file */
};

#define PL_BATCH 32 /* prompt tokens per batch through the layers */

struct pl_context {
    pl_model *m;
    int n_ctx, n_batch;
    pl_pool *pool;
    int head_dim, kv_dim;
    /* activations for a batch of B = n_batch positions, position-major */
    float *x;      /* [B][n_embd] residual stream */
    float *xb;     /* [B][n_embd] normed input, then the attention output, then the FFN output */
    float *q;      /* [B][n_embd] queries, then the attention's output projection */
    float *k, *v;  /* [B][kv_dim] */
    float *hb;     /* [B][n_ff] gate, then SwiGLU output */
    float *hb2;    /* [B][n_ff] up */
    void *xq[3];   /* [B][row bytes of max(n_embd, n_ff) floats] quantized activations */
    size_t xq_size;
    float *scores;              /* [n_threads][scores_per_thread] attention scores */
    size_t scores_per_thread;   /* group * ATTN_POS(group) * n_ctx */
    uint8_t *kcache, *vcache;   /* [n_layer][n_head_kv][n_ctx] rows of kv_row bytes:
                                 * head_dim FP16 values, or Q8_0 blocks (--kv q8) */
    uint32_t kv_type;           /* PL_TYPE_F16 or PL_TYPE_Q8_0 */
    size_t kv_row;              /* bytes of one cached head vector */
    float *rope_cos, *rope_sin; /* [B][n_rot/2] for the batch's positions */
    float theta_scale;          /* RoPE: rope_base^(-2/n_rot) */
    size_t state_bytes, kv_bytes, peak_anon;
    int readahead;              /* WILLNEED hints for the next streamed layer */
    int n_resident;             /* layers [0, n_resident) stay cached; the rest stream */
    /* the default budget follows the KV cache as it fills: model pages may
     * use page_budget minus the KV pages touched so far (kv_high positions);
     * n_resident only ever shrinks. */
    size_t page_budget;
    int budget_tracks_kv, kv_high;
};

/* Formats the reason into err (when given) and returns code. */
int pl_set_err(char *err, size_t errlen, int code, const char *fmt, ...);

#endif
