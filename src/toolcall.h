/* toolcall.h - OpenAI-style tool calls (internal, for picolm-server): the
 * tool list validated and written into the system text the way a model
 * family expects, earlier calls written back as the family writes them, the
 * GBNF grammar that constrains a call (its arguments match the function's
 * parameter schema), the lazy trigger that switches that grammar on when
 * free text reaches the call opening ("auto"), and the parser that splits
 * generated text into content and one call, incrementally for streaming.
 *
 * One call per answer: the grammar ends at the call's closing, so
 * parallel_tool_calls is accepted but never yields more than one. */
#ifndef PICOLM_TOOLCALL_H
#define PICOLM_TOOLCALL_H

#include <stddef.h>

#include "json.h"

/* How a family writes a call. QWEN: Qwen2.5/Qwen3's own convention
 * (<tools> in the system text, <tool_call>{json}</tool_call>), also used for
 * ChatML-like and other families (a generic instruction in the system
 * text); LLAMA3: Llama 3.x's JSON tool calling ({"name", "parameters"}). */
enum { TC_QWEN = 0, TC_LLAMA3 = 1 };

typedef struct {
    char *name;  /* [a-zA-Z0-9_-]{1,64} */
    char *gbnf;  /* the parameter schema's GBNF (rule `root`) */
} tc_tool;

typedef struct {
    int n;
    tc_tool *t;
    char *defs; /* the definitions as the family's system text lists them: one JSON per line */
} tc_tools;

/* The family's style from a chat family name (pl_chat_template_list). */
int tc_style(const char *family);
/* Call framing of a style: text before the name, between the name and the
 * arguments, after the arguments; and the lazy trigger (a prefix of open). */
const char *tc_open(int style);
const char *tc_mid(int style);
const char *tc_close(int style);
const char *tc_trigger(int style);

/* Validates a request's `tools` array (type function, a name, parameters an
 * object schema the compiler accepts) and fills t. 0, or -1 with a message
 * naming the tool in err. tc_tools_free accepts a zeroed struct. */
int tc_tools_parse(tc_tools *t, const json_value *tools, char *err, size_t errlen);
void tc_tools_free(tc_tools *t);
int tc_tools_find(const tc_tools *t, const char *name); /* index or -1 */

/* The system text: the caller's system message (may be NULL) followed by
 * the tool instructions and definitions. malloc'd; NULL when out of memory. */
char *tc_system_text(const tc_tools *t, int style, const char *system);
/* An earlier assistant call as the family writes it: content (may be NULL
 * or ""), then the calls, each `open name mid args close`. args is the
 * arguments JSON text (parsed and rewritten canonically; -1 if it is not
 * JSON, an object). malloc'd into *out; *content_len = bytes of content
 * kept at the front (the rest is framing the caller may parse as special
 * tokens: '<' and '>' in its strings are written \u003c, \u003e so it
 * can never hold a special token's text). */
typedef struct {
    const char *name;
    const char *args;
    size_t args_len;
} tc_call;
int tc_render_calls(int style, const char *content, const tc_call *calls, int n, char **out, size_t *content_len);

/* The grammar: root = one call of any tool (only >= 0: that tool alone).
 * Each tool's schema rules are renamed t<i>-<rule>. malloc'd; NULL when
 * out of memory. */
char *tc_grammar(const tc_tools *t, int style, int only);
/* Prefixes every rule name of GBNF text (definitions and references; not
 * inside literals, classes, {m,n} or comments). malloc'd or NULL. */
char *tc_gbnf_prefix(const char *gbnf, const char *prefix);

/* The lazy trigger: feed the raw text of each generated token; returns 1
 * once, when the trigger is complete, with *from, *from_n the bytes from the
 * trigger's start to the end of the text fed so far (what the grammar must
 * accept before it constrains the next token). */
typedef struct {
    const char *trigger;
    size_t tn;
    char buf[128]; /* the last bytes fed: a trigger split over tokens */
    size_t n;
    int fired;
} tc_lazy;
void tc_lazy_init(tc_lazy *z, const char *trigger);
int tc_lazy_feed(tc_lazy *z, const char *s, size_t n, const char **from, size_t *from_n);

/* Generated text -> content and one call, incrementally. Feed text as it
 * comes; events go to the callback: TC_EV_CONTENT (text for the content),
 * TC_EV_NAME (the call starts: its name), TC_EV_ARGS (a piece of the
 * arguments). Text that may still become the call's opening, or its
 * closing, is held until it is decided. tc_stream_end flushes; afterwards
 * `called` is 1 when a call was opened and `complete` when it closed. */
enum { TC_EV_CONTENT, TC_EV_NAME, TC_EV_ARGS };
typedef void (*tc_event_fn)(void *user, int ev, const char *s, size_t n);
typedef struct {
    int style, phase; /* 0 text, 1 call header, 2 arguments, 3 after the call */
    char *buf;        /* undecided text */
    size_t len, cap;
    int called, complete, oom;
    tc_event_fn fn;
    void *user;
} tc_stream;
void tc_stream_init(tc_stream *s, int style, tc_event_fn fn, void *user);
void tc_stream_feed(tc_stream *s, const char *text, size_t n);
void tc_stream_end(tc_stream *s);
void tc_stream_free(tc_stream *s);

#endif
