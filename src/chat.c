/* chat.c - chat templates: one system + one user message formatted the way
 * each model family expects, and detection of the family from the Jinja
 * text in tokenizer.chat_template (we match marker strings; we do not run
 * Jinja). Raw prompts never pass through here. */
#include <stdio.h>
#include <string.h>

#include "model_impl.h"

typedef struct {
    const char *name;
    const char *marker;   /* text in tokenizer.chat_template that identifies it */
    const char *sys_open; /* system block: sys_open SYSTEM sys_close (skipped when no system text) */
    const char *sys_close;
    const char *user_open;
    const char *user_close; /* then the assistant header */
    const char *stop;       /* end-of-turn token text besides EOS, or NULL */
} chat_template;

static const chat_template templates[] = {
    {"chatml", "<|im_start|>", "<|im_start|>system\n", "<|im_end|>\n", "<|im_start|>user\n",
     "<|im_end|>\n<|im_start|>assistant\n", "<|im_end|>"},
    {"llama3", "<|start_header_id|>", "<|start_header_id|>system<|end_header_id|>\n\n", "<|eot_id|>",
     "<|start_header_id|>user<|end_header_id|>\n\n",
     "<|eot_id|><|start_header_id|>assistant<|end_header_id|>\n\n", "<|eot_id|>"},
    {"phi3", "<|end|>", "<|system|>\n", "<|end|>\n", "<|user|>\n", "<|end|>\n<|assistant|>\n", "<|end|>"},
    {"zephyr", "<|user|>", "<|system|>\n", "</s>\n", "<|user|>\n", "</s>\n<|assistant|>\n", NULL},
    {"gemma", "<start_of_turn>", "<start_of_turn>user\n", "\n\n", "", "<end_of_turn>\n<start_of_turn>model\n",
     "<end_of_turn>"},
    {"llama2", "<<SYS>>", "[INST] <<SYS>>\n", "\n<</SYS>>\n\n", "", " [/INST]", NULL},
    {"mistral", "[INST]", "[INST] ", "\n\n", "", " [/INST]", NULL},
};
#define N_TEMPLATES (int)(sizeof templates / sizeof *templates)

static const chat_template *find(const char *name) {
    for (int i = 0; i < N_TEMPLATES; i++)
        if (!strcmp(templates[i].name, name)) return &templates[i];
    return NULL;
}

const char *pl_chat_template_list(void) { return "chatml, llama3, phi3, zephyr, gemma, llama2, mistral"; }

const char *pl_chat_template_detect(const pl_model *m) {
    gguf_str t;
    if (gguf_get_str(&m->gguf, "tokenizer.chat_template", &t) != 0) return NULL;
    /* order matters: phi3 also has <|user|>, llama2 also has [INST] */
    for (int i = 0; i < N_TEMPLATES; i++) {
        size_t ml = strlen(templates[i].marker);
        for (uint64_t j = 0; j + ml <= t.len; j++)
            if (!memcmp(t.ptr + j, templates[i].marker, ml)) return templates[i].name;
    }
    return NULL;
}

/* Returns the length of the formatted prompt (excluding NUL; may exceed
 * cap: then out holds a truncated prefix), or -1 for an unknown template.
 * *n_sys_bytes receives the length of the system part (for --keep). */
int pl_chat_format(const char *name, const char *system, const char *user, char *out, size_t cap,
                   size_t *n_sys_bytes) {
    const chat_template *t = find(name);
    if (!t) return -1;
    int sys = system && *system;
    int n;
    if (!strcmp(t->name, "gemma") || !strcmp(t->name, "llama2") || !strcmp(t->name, "mistral")) {
        /* the system text shares the first user turn */
        n = sys ? snprintf(out, cap, "%s%s%s%s%s", t->sys_open, system, t->sys_close, user, t->user_close)
                : snprintf(out, cap, "%s%s%s", !strcmp(t->name, "gemma") ? "<start_of_turn>user\n" : "[INST] ", user,
                           t->user_close);
        if (n_sys_bytes) *n_sys_bytes = sys ? strlen(t->sys_open) + strlen(system) + strlen(t->sys_close) : 0;
    } else {
        n = snprintf(out, cap, "%s%s%s%s%s%s", sys ? t->sys_open : "", sys ? system : "", sys ? t->sys_close : "",
                     t->user_open, user, t->user_close);
        if (n_sys_bytes) *n_sys_bytes = sys ? strlen(t->sys_open) + strlen(system) + strlen(t->sys_close) : 0;
    }
    return n;
}

const char *pl_chat_template_stop(const char *name) {
    const chat_template *t = find(name);
    return t ? t->stop : NULL;
}
