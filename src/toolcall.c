/* toolcall.c - tool calls for picolm-server (see toolcall.h): tool lists
 * into the system text, earlier calls written back, the call grammar built
 * from each tool's parameter schema (pl_json_schema_to_gbnf, rules renamed
 * per tool), the lazy trigger and the content/call splitter.
 *
 * Prompt conventions: Qwen2.5/Qwen3 (and, as a generic instruction, every
 * family but Llama 3) list the tools as JSON lines inside <tools></tools>
 * and answer with <tool_call>\n{"name": ..., "arguments": ...}\n</tool_call>,
 * the wording of Qwen's own chat template. Llama 3.x gets Meta's JSON tool
 * calling instruction and answers {"name": ..., "parameters": ...}. The
 * grammar fixes one spelling of the framing (the one the templates write
 * back), so the splitter can match it byte for byte. */
#include "toolcall.h"
#include "picolm.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "grammar.h"

/* ---- a growable string ---- */
typedef struct {
    char *p;
    size_t n, cap;
    int oom;
} sb;

static void sb_put(sb *b, const char *s, size_t n) {
    if (b->oom) return;
    if (b->n + n + 1 > b->cap) {
        size_t cap = (b->n + n + 1) * 2 + 64;
        char *q = realloc(b->p, cap);
        if (!q) {
            b->oom = 1;
            return;
        }
        b->p = q;
        b->cap = cap;
    }
    memcpy(b->p + b->n, s, n);
    b->n += n;
    b->p[b->n] = 0;
}
static void sb_str(sb *b, const char *s) { sb_put(b, s, strlen(s)); }
static char *sb_take(sb *b) {
    if (b->oom) {
        free(b->p);
        return NULL;
    }
    if (!b->p) sb_put(b, "", 0);
    return b->oom ? NULL : b->p;
}

/* JSON as Python's json.dumps writes it in the templates (", " and ": "
 * separators, numbers as written), with '<' and '>' in strings escaped:
 * the text is then read with special tokens parsed, and an escaped string
 * cannot spell one. Non-ASCII stays UTF-8 (ensure_ascii=False, as
 * transformers' tojson). */
static void tojson_str(sb *b, const char *s, size_t n) {
    sb_put(b, "\"", 1);
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        char e[8];
        if (c == '"') sb_put(b, "\\\"", 2);
        else if (c == '\\') sb_put(b, "\\\\", 2);
        else if (c == '\n') sb_put(b, "\\n", 2);
        else if (c == '\r') sb_put(b, "\\r", 2);
        else if (c == '\t') sb_put(b, "\\t", 2);
        else if (c < 0x20 || c == '<' || c == '>') {
            snprintf(e, sizeof e, "\\u%04x", c);
            sb_put(b, e, 6);
        } else sb_put(b, s + i, 1);
    }
    sb_put(b, "\"", 1);
}

static void tojson(sb *b, const json_value *v) {
    switch (v->type) {
    case JSON_NULL: sb_str(b, "null"); break;
    case JSON_BOOL: sb_str(b, v->num ? "true" : "false"); break;
    case JSON_NUMBER: sb_put(b, v->str, v->len); break;
    case JSON_STRING: tojson_str(b, v->str, v->len); break;
    case JSON_ARRAY:
    case JSON_OBJECT:
        sb_put(b, v->type == JSON_ARRAY ? "[" : "{", 1);
        for (size_t i = 0; i < v->len; i++) {
            const json_value *k = &v->kids[i];
            if (i) sb_put(b, ", ", 2);
            if (v->type == JSON_OBJECT) {
                tojson_str(b, k->key, k->keylen);
                sb_put(b, ": ", 2);
            }
            tojson(b, k);
        }
        sb_put(b, v->type == JSON_ARRAY ? "]" : "}", 1);
        break;
    }
}

/* ---- styles ---- */
static const struct {
    const char *open, *mid, *close, *trigger;
} styles[] = {
    {"<tool_call>\n{\"name\": \"", "\", \"arguments\": ", "}\n</tool_call>", "<tool_call>"},
    {"{\"name\": \"", "\", \"parameters\": ", "}", "{\"name\": \""},
};

int tc_style(const char *family) { return family && !strcmp(family, "llama3") ? TC_LLAMA3 : TC_QWEN; }
const char *tc_open(int style) { return styles[style].open; }
const char *tc_mid(int style) { return styles[style].mid; }
const char *tc_close(int style) { return styles[style].close; }
const char *tc_trigger(int style) { return styles[style].trigger; }

/* ---- the tool list ---- */
static int name_ok(const char *s, size_t n) {
    if (n < 1 || n > 64) return 0;
    for (size_t i = 0; i < n; i++) {
        char c = s[i];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' || c == '-'))
            return 0;
    }
    return 1;
}

void tc_tools_free(tc_tools *t) {
    for (int i = 0; i < t->n; i++) free(t->t[i].name), free(t->t[i].gbnf);
    free(t->t);
    free(t->defs);
    memset(t, 0, sizeof *t);
}

int tc_tools_find(const tc_tools *t, const char *name) {
    for (int i = 0; i < t->n; i++)
        if (!strcmp(t->t[i].name, name)) return i;
    return -1;
}

int tc_tools_parse(tc_tools *t, const json_value *tools, char *err, size_t errlen) {
    memset(t, 0, sizeof *t);
    if (!tools || tools->type != JSON_ARRAY || tools->len == 0 || tools->len > 128) {
        snprintf(err, errlen, "tools must be an array of 1 to 128 tools");
        return -1;
    }
    t->t = calloc(tools->len, sizeof *t->t);
    sb defs = {0};
    if (!t->t) goto nomem;
    for (size_t i = 0; i < tools->len; i++) {
        const json_value *tv = json_at(tools, i), *fn, *nm, *pa;
        const char *type;
        if (tv->type != JSON_OBJECT || json_get_str(tv, "type", NULL, &type, NULL) != JSON_OK ||
            strcmp(type, "function")) {
            snprintf(err, errlen, "tools[%zu]: only tools of type \"function\" are supported", i);
            goto fail;
        }
        fn = json_get(tv, "function");
        nm = fn && fn->type == JSON_OBJECT ? json_get(fn, "name") : NULL;
        if (!nm || nm->type != JSON_STRING || !name_ok(nm->str, nm->len)) {
            snprintf(err, errlen, "tools[%zu]: function.name must match [a-zA-Z0-9_-]{1,64}", i);
            goto fail;
        }
        if (tc_tools_find(t, nm->str) >= 0) {
            snprintf(err, errlen, "tools[%zu] (%s): a second tool of that name", i, nm->str);
            goto fail;
        }
        const json_value *ds = json_get(fn, "description");
        if (ds && ds->type != JSON_STRING && ds->type != JSON_NULL) {
            snprintf(err, errlen, "tools[%zu] (%s): description must be a string", i, nm->str);
            goto fail;
        }
        pa = json_get(fn, "parameters");
        sb sch = {0};
        if (!pa || pa->type == JSON_NULL) {
            sb_str(&sch, "{\"type\": \"object\", \"properties\": {}}");
        } else {
            const char *pt;
            if (pa->type != JSON_OBJECT || json_get_str(pa, "type", "object", &pt, NULL) != JSON_OK ||
                strcmp(pt, "object")) {
                snprintf(err, errlen, "tools[%zu] (%s): parameters must be a JSON schema of type object", i, nm->str);
                goto fail;
            }
            tojson(&sch, pa);
            if (!json_get(pa, "type")) { /* the schema's object kind made explicit for the compiler */
                sb s2 = {0};
                sb_str(&s2, "{\"type\": \"object\", ");
                if (sch.p && sch.n > 2) sb_put(&s2, sch.p + 1, sch.n - 1);
                else sb_str(&s2, "\"properties\": {}}");
                free(sch.p);
                sch = s2;
            }
        }
        if (sch.oom) goto nomem;
        char e2[256];
        int len = pl_json_schema_to_gbnf(sch.p, sch.n, NULL, 0, e2, sizeof e2);
        char *g = len >= 0 ? malloc((size_t)len + 1) : NULL;
        if (len >= 0 && g) pl_json_schema_to_gbnf(sch.p, sch.n, g, (size_t)len + 1, e2, sizeof e2);
        free(sch.p);
        if (len < 0) {
            snprintf(err, errlen, "tools[%zu] (%s): parameters: %s", i, nm->str, e2);
            goto fail;
        }
        if (!g) goto nomem;
        t->t[t->n].gbnf = g;
        if (!(t->t[t->n].name = strdup(nm->str))) goto nomem;
        t->n++;
        if (i) sb_put(&defs, "\n", 1);
        tojson(&defs, tv);
    }
    if (!(t->defs = sb_take(&defs))) goto nomem;
    return 0;
nomem:
    snprintf(err, errlen, "out of memory");
fail:
    free(defs.p);
    tc_tools_free(t);
    return -1;
}

/* ---- prompt text ---- */
char *tc_system_text(const tc_tools *t, int style, const char *system) {
    sb b = {0};
    if (system && *system) {
        sb_str(&b, system);
        sb_str(&b, "\n\n");
    }
    if (style == TC_LLAMA3) {
        /* Meta's Llama 3.1/3.2 JSON tool-calling instruction */
        sb_str(&b, "Given the following functions, please respond with a JSON for a function call with its proper "
                   "arguments that best answers the given prompt.\n\nRespond in the format {\"name\": function name, "
                   "\"parameters\": dictionary of argument name and its value}. Do not use variables.\n\n");
        sb_str(&b, t->defs);
    } else {
        /* Qwen2.5's template, word for word */
        sb_str(&b, "# Tools\n\nYou may call one or more functions to assist with the user query.\n\nYou are provided "
                   "with function signatures within <tools></tools> XML tags:\n<tools>\n");
        sb_str(&b, t->defs);
        sb_str(&b, "\n</tools>\n\nFor each function call, return a json object with function name and arguments "
                   "within <tool_call></tool_call> XML tags:\n<tool_call>\n{\"name\": <function-name>, "
                   "\"arguments\": <args-json-object>}\n</tool_call>");
    }
    return sb_take(&b);
}

int tc_render_calls(int style, const char *content, const tc_call *calls, int n, char **out, size_t *content_len) {
    sb b = {0};
    *out = NULL;
    if (content) sb_str(&b, content);
    *content_len = b.n;
    for (int i = 0; i < n; i++) {
        json_value *v = NULL;
        char e[64];
        if (!name_ok(calls[i].name, strlen(calls[i].name)) ||
            json_parse(&v, calls[i].args, calls[i].args_len, NULL, e, sizeof e) || v->type != JSON_OBJECT) {
            json_free(v);
            free(b.p);
            return -1;
        }
        /* Qwen's template: "\n" before a call unless it opens the turn */
        if (style == TC_QWEN && b.n) sb_put(&b, "\n", 1);
        sb_str(&b, styles[style].open);
        sb_str(&b, calls[i].name);
        sb_str(&b, styles[style].mid);
        tojson(&b, v);
        sb_str(&b, styles[style].close);
        json_free(v);
    }
    *out = sb_take(&b);
    return *out ? 0 : -2;
}

/* ---- the grammar ---- */
static int id_start(char c) { return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_'; }
static int id_char(char c) { return id_start(c) || (c >= '0' && c <= '9') || c == '-'; }

char *tc_gbnf_prefix(const char *g, const char *prefix) {
    sb b = {0};
    size_t n = strlen(g), pl = strlen(prefix);
    for (size_t i = 0; i < n;) {
        char c = g[i];
        if (c == '"' || c == '[') { /* a literal or a class: copied, escapes included */
            char end = c == '"' ? '"' : ']';
            size_t k = i + 1;
            while (k < n && g[k] != end) k += g[k] == '\\' && k + 1 < n ? 2 : 1;
            if (k < n) k++;
            sb_put(&b, g + i, k - i);
            i = k;
        } else if (c == '{' || c == '#') { /* a repetition count, a comment */
            size_t k = i;
            while (k < n && g[k] != (c == '{' ? '}' : '\n')) k++;
            if (k < n && c == '{') k++;
            sb_put(&b, g + i, k - i);
            i = k;
        } else if (id_start(c)) {
            size_t k = i;
            while (k < n && id_char(g[k])) k++;
            sb_put(&b, prefix, pl);
            sb_put(&b, g + i, k - i);
            i = k;
        } else {
            sb_put(&b, g + i, 1);
            i++;
        }
    }
    return sb_take(&b);
}

/* A GBNF literal of s (the framing: quotes and newlines to escape). */
static void gbnf_lit(sb *b, const char *s) {
    sb_put(b, "\"", 1);
    for (; *s; s++) {
        if (*s == '"' || *s == '\\') sb_put(b, "\\", 1), sb_put(b, s, 1);
        else if (*s == '\n') sb_put(b, "\\n", 2);
        else sb_put(b, s, 1);
    }
    sb_put(b, "\"", 1);
}

char *tc_grammar(const tc_tools *t, int style, int only) {
    sb b = {0};
    sb_str(&b, "root ::= ");
    gbnf_lit(&b, styles[style].open);
    sb_str(&b, " (");
    int first = 1;
    for (int i = 0; i < t->n; i++) {
        if (only >= 0 && i != only) continue;
        char lit[160], ref[32];
        snprintf(lit, sizeof lit, "%s%s", t->t[i].name, styles[style].mid);
        snprintf(ref, sizeof ref, " t%d-root", i);
        sb_str(&b, first ? " " : " | ");
        gbnf_lit(&b, lit);
        sb_str(&b, ref);
        first = 0;
    }
    sb_str(&b, " ) ");
    gbnf_lit(&b, styles[style].close);
    sb_str(&b, "\n");
    for (int i = 0; i < t->n; i++) {
        if (only >= 0 && i != only) continue;
        char pre[32];
        snprintf(pre, sizeof pre, "t%d-", i);
        char *r = tc_gbnf_prefix(t->t[i].gbnf, pre);
        if (!r) b.oom = 1;
        else sb_str(&b, r);
        free(r);
        sb_str(&b, "\n");
    }
    return sb_take(&b);
}

/* ---- the lazy trigger ---- */
void tc_lazy_init(tc_lazy *z, const char *trigger) {
    memset(z, 0, sizeof *z);
    z->trigger = trigger;
    z->tn = strlen(trigger);
}

int tc_lazy_feed(tc_lazy *z, const char *s, size_t n, const char **from, size_t *from_n) {
    if (z->fired || !n) return 0;
    /* keep the last tn-1 bytes of what came before, then this token whole:
     * tokens are short (<= 256 bytes), the buffer holds them */
    size_t keep = z->tn - 1 < z->n ? z->tn - 1 : z->n;
    memmove(z->buf, z->buf + z->n - keep, keep);
    z->n = keep;
    if (n > sizeof z->buf - z->n) { /* a very long piece: only its tail can hold the trigger's start */
        size_t drop = n - (sizeof z->buf - z->n);
        s += drop, n -= drop;
    }
    memcpy(z->buf + z->n, s, n);
    z->n += n;
    for (size_t at = 0; at + z->tn <= z->n; at++)
        if (!memcmp(z->buf + at, z->trigger, z->tn)) {
            z->fired = 1;
            *from = z->buf + at;
            *from_n = z->n - at;
            return 1;
        }
    return 0;
}

/* ---- content / call splitter ---- */
void tc_stream_init(tc_stream *s, int style, tc_event_fn fn, void *user) {
    memset(s, 0, sizeof *s);
    s->style = style;
    s->fn = fn;
    s->user = user;
}

void tc_stream_free(tc_stream *s) {
    free(s->buf);
    s->buf = NULL;
}

static void drop(tc_stream *s, size_t k) {
    memmove(s->buf, s->buf + k, s->len - k);
    s->len -= k;
}

/* Longest suffix of buf that is a proper prefix of pat. */
static size_t partial(const char *buf, size_t n, const char *pat) {
    size_t pn = strlen(pat);
    for (size_t k = pn - 1 < n ? pn - 1 : n; k > 0; k--)
        if (!memcmp(buf + n - k, pat, k)) return k;
    return 0;
}

static void step(tc_stream *s, int end) {
    const char *open = styles[s->style].open, *mid = styles[s->style].mid, *close = styles[s->style].close;
    size_t on = strlen(open), mn = strlen(mid), cn = strlen(close);
    for (;;) {
        if (s->phase == 0) {
            char *at = NULL;
            for (size_t i = 0; i + on <= s->len; i++)
                if (!memcmp(s->buf + i, open, on)) {
                    at = s->buf + i;
                    break;
                }
            size_t emit = at ? (size_t)(at - s->buf) : end ? s->len : s->len - partial(s->buf, s->len, open);
            if (!at && !end) emit = pl_utf8_complete(s->buf, emit); /* never half a character in a delta */
            if (emit) s->fn(s->user, TC_EV_CONTENT, s->buf, emit);
            drop(s, emit);
            if (!at) return;
            drop(s, on);
            s->phase = 1;
            s->called = 1;
        } else if (s->phase == 1) { /* name, then mid */
            size_t i = 0;
            while (i < s->len && s->buf[i] != '"') i++;
            if (i + mn > s->len || memcmp(s->buf + i, mid, mn)) {
                if (end || (i < s->len && i + mn <= s->len) || i > 64) { /* not the framing: give it back as text */
                    s->fn(s->user, TC_EV_CONTENT, open, on);
                    s->fn(s->user, TC_EV_CONTENT, s->buf, s->len);
                    s->len = 0;
                    s->called = 0;
                    s->phase = 3;
                }
                return;
            }
            s->fn(s->user, TC_EV_NAME, s->buf, i);
            drop(s, i + mn);
            s->phase = 2;
        } else if (s->phase == 2) { /* the arguments, all but what may be the closing */
            if (end && s->len >= cn && !memcmp(s->buf + s->len - cn, close, cn)) {
                s->len -= cn;
                s->complete = 1;
            }
            size_t emit = end ? s->len : s->len > cn ? s->len - cn : 0;
            if (!end) emit = pl_utf8_complete(s->buf, emit); /* never half a character in a delta */
            if (emit) s->fn(s->user, TC_EV_ARGS, s->buf, emit);
            drop(s, emit);
            if (end) s->phase = 3;
            return;
        } else {
            if (s->len) s->fn(s->user, s->called ? TC_EV_ARGS : TC_EV_CONTENT, s->buf, s->len);
            s->len = 0;
            return;
        }
    }
}

void tc_stream_feed(tc_stream *s, const char *text, size_t n) {
    if (s->oom || !n) return;
    if (s->len + n > s->cap) {
        size_t cap = (s->len + n) * 2 + 64;
        char *q = realloc(s->buf, cap);
        if (!q) {
            s->oom = 1;
            return;
        }
        s->buf = q;
        s->cap = cap;
    }
    memcpy(s->buf + s->len, text, n);
    s->len += n;
    step(s, 0);
}

void tc_stream_end(tc_stream *s) {
    if (!s->oom) step(s, 1);
}
