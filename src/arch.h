/* arch.h - an architecture as data.
 *
 * One row per general.architecture says how its forward pass differs from
 * llama's: the norm, the FFN, the RoPE mode and a set of flags. model.c
 * reads the hyper-parameters through "{arch}." keys into pl_hparams and
 * binds tensors from one table with symbolic shapes (arch.c); the forward
 * pass has one `if` per flag, never a copy per architecture. Not public. */
#ifndef PICOLM_ARCH_H
#define PICOLM_ARCH_H

#include <stddef.h>
#include <stdint.h>

enum pl_norm_kind { PL_NORM_RMS, PL_NORM_LAYER };   /* RMSNorm; LayerNorm with a bias (phi2) */
enum pl_ffn_kind { PL_FFN_SWIGLU, PL_FFN_GEGLU, PL_FFN_GELU }; /* silu(gate)*up; gelu(gate)*up; gelu(up) */

typedef struct pl_arch {
    const char *name;     /* general.architecture */
    uint8_t norm;         /* pl_norm_kind */
    uint8_t ffn;          /* pl_ffn_kind */
    uint8_t rope_neox;    /* rotate (x[i], x[i + n_rot/2]) instead of adjacent pairs */
    uint8_t parallel;     /* attention and FFN both read the same normed input (phi2) */
    uint8_t post_norms;   /* attn_post_norm / ffn_post_norm on each branch's output (gemma2/3) */
    uint8_t qk_norm;      /* RMSNorm of each query and key head before RoPE (qwen3, gemma3) */
    uint8_t embd_scale;   /* token embeddings times sqrt(n_embd) (gemma) */
    uint8_t softcaps;     /* {arch}.attn_logit_softcapping / final_logit_softcapping (gemma2) */
    uint8_t swa;          /* sliding-window layers: 0 none, 1 all, n: layer il iff il % n < n - 1 ... */
    uint8_t swa_even;     /* ... or the even layers (gemma2) */
    uint8_t swa_rope_base;/* sliding layers rotate with base 10000 and no scaling (gemma3) */
    uint8_t nope_step;    /* layer il has no RoPE when (il + 1) % nope_step == 0 (smollm3) */
    uint8_t q_scale_rule; /* 1: Q scaled by 1/sqrt(n_embd/n_head) for the 27B gemmas (llama.cpp's rule) */
} pl_arch;

/* The row for an architecture name (len bytes), or NULL. */
const pl_arch *pl_arch_find(const char *name, size_t len);
/* "llama, qwen2, ..." for error messages. */
const char *pl_arch_list(void);

#endif
