/* info.c - what a model file holds, tensor by tensor (picolm --info). */
#include "model_impl.h"

int pl_model_n_tensors(const pl_model *m) {
    return m->gguf.n_tensors > INT32_MAX ? INT32_MAX : (int)m->gguf.n_tensors;
}

int pl_model_tensor(const pl_model *m, int i, pl_tensor_info *out) {
    if (i < 0 || (uint64_t)i >= m->gguf.n_tensors) return PL_ERR_ARG;
    const gguf_tensor *t = &m->gguf.tensors[i];
    const char *type = pl_type_name(t->type);
    out->name = t->name.ptr;
    out->name_len = (size_t)t->name.len;
    out->type = type ? type : "unknown";
    out->n_dims = (int)t->n_dims;
    out->n_elements = 1;
    for (int d = 0; d < GGUF_MAX_DIMS; d++) {
        out->ne[d] = t->ne[d];
        out->n_elements *= (uint64_t)t->ne[d]; /* gguf_parse keeps the product below 2^50 */
    }
    out->n_bytes = t->nbytes;
    return PL_OK;
}

const char *pl_token_piece(const pl_model *m, int32_t token) { return pl_tokenizer_piece(m->tok, token); }
