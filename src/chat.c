/* chat.c - chat templates: a conversation (system, user, assistant, tool
 * messages) written the way each model family was trained to read it, and
 * the family detected from the Jinja text in tokenizer.chat_template (we
 * match marker strings, as llama.cpp's llm_chat_detect_template does; we do
 * not run Jinja). Each family is one row of `families`; one formatter reads
 * them. The formatter never writes the leading BOS (<s>, <|begin_of_text|>,
 * <bos>): the caller adds it through the tokenizer (pl_add_bos), which is
 * llama.cpp's rule too.
 *
 * Choices where the real templates do more than strings: Qwen3 generates
 * without thinking (llama.cpp's enable_thinking=false) unless "qwen3-think";
 * SmolLM3's metadata header is written with today's UTC date; default system
 * prompts (Qwen2.5's, SmolLM2's) and Llama 3.1's dated preamble are not
 * written (llama.cpp's built-in templates do not either); tool calls and tool
 * lists are the caller's text; role alternation is not enforced. */
#include <limits.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "model_impl.h"

typedef struct {
    const char *open, *close; /* around the content; open NULL: the family has no such turn */
} turn_fmt;

enum {
    F_FOLD_SYS = 1,    /* no system turn: user.open sys.open S sys.close U user.close */
    F_SYS_FIRST = 2,   /* the template reads a system message only as the first message */
    F_TRIM = 4,        /* contents are trimmed of surrounding whitespace (Jinja `| trim`) */
    F_STRIP_THINK = 8, /* assistant turns before the last user message keep only what follows </think> */
    F_SMOL_META = 16,  /* SmolLM3: the system turn is a metadata header carrying the reasoning mode */
    F_THINK_HIST = 32, /* the empty reasoning block also opens assistant turns of the history */
    F_LSTRIP_NL = 64   /* assistant contents lose their leading newlines */
};

typedef struct {
    const char *name;
    turn_fmt sys, user, asst, tool;
    const char *user_next;                        /* opening of later user turns, if not user.open */
    const char *tool_group_open, *tool_group_close; /* around a run of consecutive tool messages */
    const char *gen;                              /* opening of the assistant turn to generate */
    const char *no_think;                         /* empty reasoning block: after gen (non-thinking) */
    const char *stop;                             /* end-of-turn token text besides EOS, or NULL */
    unsigned flags;
} chat_family;

#define CHATML_TURNS                                                                                              \
    {"<|im_start|>system\n", "<|im_end|>\n"}, {"<|im_start|>user\n", "<|im_end|>\n"},                            \
        {"<|im_start|>assistant\n", "<|im_end|>\n"}
/* Qwen2.5 and Qwen3: tool results go back as a user turn, one <tool_response> block per result */
#define QWEN_TOOL {"\n<tool_response>\n", "\n</tool_response>"}, NULL, "<|im_start|>user", "<|im_end|>\n"

static const chat_family families[] = {
    /* SmolLM2, Qwen2 and any plain ChatML model */
    {"chatml", CHATML_TURNS, {"<|im_start|>tool\n", "<|im_end|>\n"}, NULL, "", "", "<|im_start|>assistant\n", NULL,
     "<|im_end|>", 0},
    /* Qwen2.5 */
    {"qwen2", CHATML_TURNS, QWEN_TOOL, "<|im_start|>assistant\n", NULL, "<|im_end|>", 0},
    /* Qwen3, non-thinking generation: what llama.cpp renders with enable_thinking=false (the empty
     * block tells the model to answer at once); the history keeps answers, not reasoning */
    {"qwen3", CHATML_TURNS, QWEN_TOOL, "<|im_start|>assistant\n", "<think>\n\n</think>\n\n", "<|im_end|>",
     F_STRIP_THINK},
    /* Qwen3 left to think first (the template's default) */
    {"qwen3-think", CHATML_TURNS, QWEN_TOOL, "<|im_start|>assistant\n", NULL, "<|im_end|>", F_STRIP_THINK},
    /* SmolLM3's own template (see smol_header); non-thinking unless the system message says /think */
    {"smollm3",
     {"<|im_start|>system\n", ""},
     {"<|im_start|>user\n", "<|im_end|>\n"},
     {"<|im_start|>assistant\n", "<|im_end|>\n"},
     {"<|im_start|>user\n", "<|im_end|>\n"},
     NULL,
     "",
     "",
     "<|im_start|>assistant\n",
     "<think>\n\n</think>\n",
     "<|im_end|>",
     F_SYS_FIRST | F_SMOL_META | F_THINK_HIST | F_LSTRIP_NL},
    /* Llama 3.x (3.1+ names the tool role ipython); the dated system preamble of 3.1+ is not written */
    {"llama3",
     {"<|start_header_id|>system<|end_header_id|>\n\n", "<|eot_id|>"},
     {"<|start_header_id|>user<|end_header_id|>\n\n", "<|eot_id|>"},
     {"<|start_header_id|>assistant<|end_header_id|>\n\n", "<|eot_id|>"},
     {"<|start_header_id|>ipython<|end_header_id|>\n\n", "<|eot_id|>"},
     NULL,
     "",
     "",
     "<|start_header_id|>assistant<|end_header_id|>\n\n",
     NULL,
     "<|eot_id|>",
     F_TRIM},
    /* Gemma 1, 2 and 3: no system turn (Gemma 3 folds it into the first user turn; we do for all) */
    {"gemma",
     {"", "\n\n"},
     {"<start_of_turn>user\n", "<end_of_turn>\n"},
     {"<start_of_turn>model\n", "<end_of_turn>\n"},
     {NULL, NULL},
     NULL,
     "",
     "",
     "<start_of_turn>model\n",
     NULL,
     "<end_of_turn>",
     F_FOLD_SYS | F_TRIM},
    /* Phi-3 and Phi-3.5 */
    {"phi3",
     {"<|system|>\n", "<|end|>\n"},
     {"<|user|>\n", "<|end|>\n"},
     {"<|assistant|>\n", "<|end|>\n"},
     {NULL, NULL},
     NULL,
     "",
     "",
     "<|assistant|>\n",
     NULL,
     "<|end|>",
     0},
    /* Phi-4-mini: Phi-3's tags without the newlines */
    {"phi4mini",
     {"<|system|>", "<|end|>"},
     {"<|user|>", "<|end|>"},
     {"<|assistant|>", "<|end|>"},
     {"<|tool_response|>", "<|end|>"},
     NULL,
     "",
     "",
     "<|assistant|>",
     NULL,
     "<|end|>",
     0},
    /* Phi-4 (14B): ChatML with <|im_sep|> after the role and no newlines */
    {"phi4",
     {"<|im_start|>system<|im_sep|>", "<|im_end|>"},
     {"<|im_start|>user<|im_sep|>", "<|im_end|>"},
     {"<|im_start|>assistant<|im_sep|>", "<|im_end|>"},
     {"<|im_start|>tool<|im_sep|>", "<|im_end|>"},
     NULL,
     "",
     "",
     "<|im_start|>assistant<|im_sep|>",
     NULL,
     "<|im_end|>",
     0},
    /* Phi-2 has no chat template; this is the model card's QA format */
    {"phi2",
     {"", "\n"},
     {"Instruct: ", "\n"},
     {"Output: ", "\n"},
     {NULL, NULL},
     NULL,
     "",
     "",
     "Output:",
     NULL,
     NULL,
     0},
    /* Zephyr, TinyLlama-Chat: the turns end with EOS text */
    {"zephyr",
     {"<|system|>\n", "</s>\n"},
     {"<|user|>\n", "</s>\n"},
     {"<|assistant|>\n", "</s>\n"},
     {NULL, NULL},
     NULL,
     "",
     "",
     "<|assistant|>\n",
     NULL,
     NULL,
     0},
    /* Llama 2 chat, as Meta's template: every user turn but the first repeats BOS */
    {"llama2",
     {"<<SYS>>\n", "\n<</SYS>>\n\n"},
     {"[INST] ", " [/INST]"},
     {" ", " </s>"},
     {NULL, NULL},
     "<s>[INST] ",
     "",
     "",
     "",
     NULL,
     NULL,
     F_FOLD_SYS | F_TRIM},
    /* Mistral 7B Instruct v0.1/v0.2 */
    {"mistral",
     {"", "\n\n"},
     {"[INST] ", " [/INST]"},
     {"", "</s>"},
     {NULL, NULL},
     NULL,
     "",
     "",
     "",
     NULL,
     NULL,
     F_FOLD_SYS},
};
#define N_FAMILIES (int)(sizeof families / sizeof *families)

/* Detection: the first rule whose strings all occur in the template wins, so
 * the more specific ChatML dialects come before ChatML, Phi-4-mini before
 * Phi-3, and Llama 2 (<<SYS>>) before Mistral. */
static const struct {
    const char *family, *a, *b; /* b NULL: a alone */
} rules[] = {
    {"phi4", "<|im_sep|>", NULL},
    {"smollm3", "<|im_start|>", "Reasoning Mode"},
    {"qwen3", "<|im_start|>", "<think>"},
    {"qwen2", "<|im_start|>", "<tool_response>"},
    {"chatml", "<|im_start|>", NULL},
    {"llama3", "<|start_header_id|>", NULL},
    {"gemma", "<start_of_turn>", NULL},
    {"phi4mini", "<|end|>", "<|/tool|>"},
    {"phi4mini", "<|end|>", "'|>' + message['content']"},
    {"phi3", "<|end|>", "<|user|>"},
    {"phi3", "<|end|>", "<|assistant|>"},
    {"zephyr", "<|user|>", "</s>"},
    {"zephyr", "<|user|>", "eos_token"},
    {"llama2", "<<SYS>>", NULL},
    {"mistral", "[INST]", NULL},
};

static const chat_family *find(const char *name) {
    if (!name) return NULL;
    for (int i = 0; i < N_FAMILIES; i++)
        if (!strcmp(families[i].name, name)) return &families[i];
    return NULL;
}

const char *pl_chat_template_list(void) {
    return "chatml, qwen2, qwen3, qwen3-think, smollm3, llama3, gemma, phi3, phi4mini, phi4, phi2, zephyr, "
           "llama2, mistral";
}

static int contains(const char *t, size_t len, const char *s) {
    size_t n = strlen(s);
    for (size_t j = 0; j + n <= len; j++)
        if (t[j] == s[0] && !memcmp(t + j, s, n)) return 1;
    return 0;
}

const char *pl_chat_template_detect_text(const char *tmpl, size_t len) {
    if (!tmpl) return NULL;
    for (size_t i = 0; i < sizeof rules / sizeof *rules; i++)
        if (contains(tmpl, len, rules[i].a) && (!rules[i].b || contains(tmpl, len, rules[i].b)))
            return rules[i].family;
    return NULL;
}

const char *pl_chat_template_detect(const pl_model *m) {
    gguf_str t;
    if (gguf_get_str(&m->gguf, "tokenizer.chat_template", &t) != 0) return NULL;
    return pl_chat_template_detect_text(t.ptr, t.len);
}

const char *pl_chat_template_stop(const char *name) {
    const chat_family *f = find(name);
    return f ? f->stop : NULL;
}

/* Output that counts every byte but stores only what fits before the NUL. */
typedef struct {
    char *out;
    size_t cap, len;
    int overflow;
} wbuf;

static void put_n(wbuf *w, const char *s, size_t n) {
    if (n > SIZE_MAX - w->len) {
        w->overflow = 1;
        return;
    }
    if (w->cap && w->len < w->cap - 1) {
        size_t room = w->cap - 1 - w->len;
        memcpy(w->out + w->len, s, n < room ? n : room);
    }
    w->len += n;
}
static void put(wbuf *w, const char *s) {
    if (s) put_n(w, s, strlen(s));
}

static int is_space(char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\v' || c == '\f' || c == '\r'; }

/* The last occurrence of s in t[0..n), or NULL. */
static const char *find_last(const char *t, size_t n, const char *s) {
    size_t k = strlen(s);
    for (size_t j = n >= k ? n - k + 1 : 0; j-- > 0;)
        if (!memcmp(t + j, s, k)) return t + j;
    return NULL;
}

/* "01 December 2026": SmolLM3's strftime_now("%d %B %Y"), in UTC (days
 * since 1970 to a civil date, the proleptic Gregorian calendar). */
static void today(char buf[32]) {
    static const char *months[] = {"January", "February", "March",     "April",   "May",      "June",
                                   "July",    "August",   "September", "October", "November", "December"};
    time_t t = time(NULL);
    long long z = (t == (time_t)-1 ? 0 : (long long)t / 86400) + 719468; /* days since 0000-03-01 */
    long long era = (z >= 0 ? z : z - 146096) / 146097;
    long long doe = z - era * 146097;                                      /* day of the 400-year era */
    long long yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365; /* year of the era */
    long long doy = doe - (365 * yoe + yoe / 4 - yoe / 100);               /* day of the March-based year */
    long long mp = (5 * doy + 2) / 153;
    int d = (int)(doy - (153 * mp + 2) / 5 + 1), mon = (int)(mp < 10 ? mp + 3 : mp - 9);
    long long y = yoe + era * 400 + (mon <= 2);
    snprintf(buf, 32, "%02d %s %lld", d, months[mon - 1], y);
}

static const char smol_default_think[] =
    "You are a helpful AI assistant named SmolLM, trained by Hugging Face. Your role as an assistant involves "
    "thoroughly exploring questions through a systematic thinking process before providing the final precise and "
    "accurate solutions. This requires engaging in a comprehensive cycle of analysis, summarizing, exploration, "
    "reassessment, reflection, backtracking, and iteration to develop well-considered thinking process. Please "
    "structure your response into two main sections: Thought and Solution using the specified format: <think> "
    "Thought section </think> Solution section. In the Thought section, detail your reasoning process in steps. "
    "Each step should include detailed considerations such as analysing questions, summarizing relevant findings, "
    "brainstorming new ideas, verifying the accuracy of the current steps, refining any errors, and revisiting "
    "previous steps. In the Solution section, based on various attempts, explorations, and reflections from the "
    "Thought section, systematically present the final solution that you deem correct. The Solution section "
    "should be logical, accurate, and concise and detail necessary steps needed to reach the conclusion.\n\n";
static const char smol_default_no_think[] = "You are a helpful AI assistant named SmolLM, trained by Hugging Face.\n\n";

/* SmolLM3's system turn, as its template writes it without tools: a
 * metadata header whose "Reasoning Mode" the system text switches with
 * /think or /no_think (removed from the text, which is then right-trimmed),
 * then the system text or a default, and no <|im_end|> (the template closes
 * the turn only when it lists tools; the model was trained that way). */
static int smol_header(wbuf *w, const chat_family *f, const char *sys, int think, size_t *span) {
    char date[32];
    today(date);
    put(w, f->sys.open);
    put(w, "## Metadata\n\nKnowledge Cutoff Date: June 2025\nToday Date: ");
    put(w, date);
    put(w, think ? "\nReasoning Mode: /think\n\n## Custom Instructions\n\n"
                 : "\nReasoning Mode: /no_think\n\n## Custom Instructions\n\n");
    size_t n = 0;
    char *s = NULL;
    if (sys) { /* system.replace("/no_think", "").replace("/think", "").rstrip(), in that order */
        n = strlen(sys);
        if (!(s = malloc(n + 1))) return PL_ERR_NOMEM;
        memcpy(s, sys, n + 1);
        static const char *const sw[2] = {"/no_think", "/think"};
        for (int k = 0; k < 2; k++) {
            size_t kl = strlen(sw[k]), o = 0;
            for (size_t i = 0; i < n;)
                if (i + kl <= n && !memcmp(s + i, sw[k], kl)) i += kl;
                else s[o++] = s[i++];
            n = o;
        }
        while (n && is_space(s[n - 1])) n--;
    }
    if (span) span[0] = w->len;
    put_n(w, s ? s : "", n);
    if (span) span[1] = w->len;
    free(s);
    put(w, n ? "\n\n" : think ? smol_default_think : smol_default_no_think);
    return 0;
}

enum { R_SYSTEM, R_USER, R_ASSISTANT, R_TOOL };

static int role_of(const char *r) {
    if (!r) return -1;
    if (!strcmp(r, "system")) return R_SYSTEM;
    if (!strcmp(r, "user")) return R_USER;
    if (!strcmp(r, "assistant")) return R_ASSISTANT;
    if (!strcmp(r, "tool")) return R_TOOL;
    return -1;
}

/* The formatter. *user_at receives where the system part ends: the first
 * user turn's opening, or its content when the system text shares it. */
static int format_msgs(const chat_family *f, const pl_chat_msg *msgs, int n, int add_ass, wbuf *w, size_t *spans,
                       size_t *user_at) {
    if (n < 0 || (n > 0 && !msgs)) return PL_ERR_ARG;
    int last_user = -1, think = 0;
    for (int i = 0; i < n; i++) {
        int r = role_of(msgs[i].role);
        if (r < 0) return PL_ERR_ARG;
        if (r == R_TOOL && !f->tool.open) return PL_ERR_ARG;
        if (r == R_SYSTEM) {
            if ((f->flags & (F_SYS_FIRST | F_FOLD_SYS)) && i != 0) return PL_ERR_ARG;
            if ((f->flags & F_FOLD_SYS) && (n < 2 || role_of(msgs[1].role) != R_USER)) return PL_ERR_ARG;
        }
        if (r == R_USER) last_user = i;
    }
    const char *sys0 = n > 0 && role_of(msgs[0].role) == R_SYSTEM ? (msgs[0].content ? msgs[0].content : "") : NULL;
    if ((f->flags & F_SMOL_META) && sys0) { /* the template's rule: /no_think wins over /think */
        if (strstr(sys0, "/no_think")) think = 0;
        else if (strstr(sys0, "/think")) think = 1;
    }
    if (f->flags & F_SMOL_META) {
        int e = smol_header(w, f, sys0, think, sys0 && spans ? spans : NULL);
        if (e) return e;
    }
    if (user_at) *user_at = 0;
    int users = 0, folded = 0;
    for (int i = 0; i < n; i++) {
        int r = role_of(msgs[i].role);
        const char *c = msgs[i].content ? msgs[i].content : "";
        size_t len = strlen(c);
        if (r == R_SYSTEM && (f->flags & F_SMOL_META)) continue; /* written in the header */
        if (f->flags & F_TRIM) {
            while (len && is_space(*c)) c++, len--;
            while (len && is_space(c[len - 1])) len--;
        }
        if (r == R_ASSISTANT && (f->flags & F_STRIP_THINK) && i < last_user) {
            const char *e = find_last(c, len, "</think>");
            if (e) {
                len -= (size_t)(e + 8 - c);
                c = e + 8;
                while (len && *c == '\n') c++, len--;
            }
        }
        if (r == R_ASSISTANT && (f->flags & F_LSTRIP_NL))
            while (len && *c == '\n') c++, len--;

        const turn_fmt *t = r == R_SYSTEM ? &f->sys : r == R_USER ? &f->user : r == R_ASSISTANT ? &f->asst : &f->tool;
        const char *open = t->open;
        if (r == R_SYSTEM && (f->flags & F_FOLD_SYS)) {
            put(w, f->user.open);
            folded = 1;
        }
        if (r == R_USER) {
            /* the system part (for --keep) ends where the first user turn opens, or where its
             * content starts when the system text shares the turn */
            if (users == 0 && user_at) *user_at = w->len;
            if (users > 0 && f->user_next) open = f->user_next;
            if (folded) open = "", folded = 0;
            users++;
        }
        if (r == R_TOOL && (i == 0 || role_of(msgs[i - 1].role) != R_TOOL)) put(w, f->tool_group_open);
        put(w, open);
        if (r == R_ASSISTANT && (f->flags & F_THINK_HIST) && !think) put(w, f->no_think);
        if (spans) spans[2 * i] = w->len;
        put_n(w, c, len);
        if (spans) spans[2 * i + 1] = w->len;
        put(w, t->close);
        if (r == R_TOOL && (i == n - 1 || role_of(msgs[i + 1].role) != R_TOOL)) put(w, f->tool_group_close);
    }
    if (add_ass) {
        put(w, f->gen);
        if (!think) put(w, f->no_think);
    }
    if (w->cap) w->out[w->len < w->cap - 1 ? w->len : w->cap - 1] = 0;
    if (w->overflow || w->len > INT_MAX) return PL_ERR_ARG;
    return (int)w->len;
}

int pl_chat_format_msgs(const char *name, const pl_chat_msg *msgs, int n_msgs, int add_assistant, char *out,
                        size_t cap, size_t *spans) {
    const chat_family *f = find(name);
    if (!f || (cap && !out)) return PL_ERR_ARG;
    wbuf w = {out, cap, 0, 0};
    int r = format_msgs(f, msgs, n_msgs, add_assistant, &w, spans, NULL);
    if (r < 0 && cap) out[0] = 0;
    return r;
}

int pl_chat_format(const char *name, const char *system, const char *user, char *out, size_t cap,
                   size_t *n_sys_bytes) {
    const chat_family *f = find(name);
    if (!f) return -1; /* this function's contract since it existed */
    if (cap && !out) return PL_ERR_ARG;
    pl_chat_msg m[2] = {{"system", system}, {"user", user}};
    int sys = system && *system;
    wbuf w = {out, cap, 0, 0};
    size_t at = 0;
    int r = format_msgs(f, sys ? m : m + 1, sys ? 2 : 1, 1, &w, NULL, &at);
    if (r < 0 && cap) out[0] = 0;
    if (r >= 0 && n_sys_bytes) *n_sys_bytes = at;
    return r;
}
