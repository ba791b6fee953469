/* arch.c - the architecture table: a row per general.architecture.
 *
 * What a row cannot say (a tensor that is there or not, a hyper-parameter)
 * comes from the file through model.c's tensor table and "{arch}." keys.
 * Mistral files say "llama"; SmolLM2 and Llama 3 are llama with a
 * byte-level BPE vocabulary, which the tokenizer handles. */
#include "arch.h"

#include <string.h>

static const pl_arch ARCHES[] = {
    /* name      norm          ffn            neox par post qkn emb cap swa even swrb nope q27 */
    {"llama",   PL_NORM_RMS,   PL_FFN_SWIGLU, 0,   0,  0,   0,  0,  0,  0,  0,   0,   0,   0},
    {"qwen2",   PL_NORM_RMS,   PL_FFN_SWIGLU, 1,   0,  0,   0,  0,  0,  0,  0,   0,   0,   0},
    {"qwen3",   PL_NORM_RMS,   PL_FFN_SWIGLU, 1,   0,  0,   1,  0,  0,  0,  0,   0,   0,   0},
    {"gemma",   PL_NORM_RMS,   PL_FFN_GEGLU,  1,   0,  0,   0,  1,  0,  0,  0,   0,   0,   0},
    {"gemma2",  PL_NORM_RMS,   PL_FFN_GEGLU,  1,   0,  1,   0,  1,  1,  0,  1,   0,   0,   1},
    {"gemma3",  PL_NORM_RMS,   PL_FFN_GEGLU,  1,   0,  1,   1,  1,  0,  6,  0,   1,   0,   1},
    {"phi2",    PL_NORM_LAYER, PL_FFN_GELU,   1,   1,  0,   0,  0,  0,  0,  0,   0,   0,   0},
    {"phi3",    PL_NORM_RMS,   PL_FFN_SWIGLU, 1,   0,  0,   0,  0,  0,  1,  0,   0,   0,   0},
    {"smollm3", PL_NORM_RMS,   PL_FFN_SWIGLU, 0,   0,  0,   0,  0,  0,  0,  0,   0,   4,   0},
};

const pl_arch *pl_arch_find(const char *name, size_t len) {
    for (size_t i = 0; i < sizeof ARCHES / sizeof *ARCHES; i++)
        if (strlen(ARCHES[i].name) == len && !memcmp(ARCHES[i].name, name, len)) return &ARCHES[i];
    return NULL;
}

const char *pl_arch_list(void) { return "llama, qwen2, qwen3, gemma, gemma2, gemma3, phi2, phi3, smollm3"; }
