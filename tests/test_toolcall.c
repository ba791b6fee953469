/* test_toolcall - the tool-call module of picolm-server: tool validation,
 * rule renaming on GBNF text, the call grammar (compiled and fed calls),
 * the lazy trigger over text split at every byte, the content/call
 * splitter (fed whole and byte by byte), earlier calls written back.
 * Self-contained: needs no model. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "grammar.h"
#include "harness.h"
#include "json.h"
#include "toolcall.h"

static json_value *parse(const char *s) {
    json_value *v = NULL;
    char e[128];
    if (json_parse(&v, s, strlen(s), NULL, e, sizeof e)) fprintf(stderr, "bad test JSON: %s\n", e);
    return v;
}

static const char *TOOLS =
    "[{\"type\":\"function\",\"function\":{\"name\":\"get_weather\",\"description\":\"Weather <now>\","
    "\"parameters\":{\"type\":\"object\",\"properties\":{\"city\":{\"type\":\"string\"},"
    "\"unit\":{\"enum\":[\"c\",\"f\"]},\"days\":{\"type\":\"integer\"}},\"required\":[\"city\",\"unit\"]}}},"
    "{\"type\":\"function\",\"function\":{\"name\":\"ping\"}}]";

typedef struct {
    char content[512], name[80], args[512];
    size_t nc, nn, na;
    int n_name;
} events;

static void on_ev(void *u, int ev, const char *s, size_t n) {
    events *e = u;
    char *dst = ev == TC_EV_CONTENT ? e->content : ev == TC_EV_NAME ? e->name : e->args;
    size_t *len = ev == TC_EV_CONTENT ? &e->nc : ev == TC_EV_NAME ? &e->nn : &e->na;
    if (ev == TC_EV_NAME) e->n_name++;
    if (*len + n < 511) memcpy(dst + *len, s, n), *len += n, dst[*len] = 0;
}

/* split text into content/call, fed in pieces of `step` bytes */
static void split(int style, const char *text, size_t step, events *e, int *called, int *complete) {
    memset(e, 0, sizeof *e);
    tc_stream s;
    tc_stream_init(&s, style, on_ev, e);
    size_t n = strlen(text);
    for (size_t i = 0; i < n; i += step) tc_stream_feed(&s, text + i, i + step <= n ? step : n - i);
    tc_stream_end(&s);
    *called = s.called, *complete = s.complete;
    tc_stream_free(&s);
}

static int grammar_accepts(const char *gbnf, const char *text) {
    pl_grammar *g = NULL;
    char e[256];
    if (pl_grammar_new_gbnf(&g, gbnf, strlen(gbnf), e, sizeof e)) {
        fprintf(stderr, "grammar: %s\n", e);
        return -1;
    }
    int ok = pl_grammar_accept_bytes(g, text, strlen(text)) == 0 && pl_grammar_is_complete(g);
    pl_grammar_free(g);
    return ok;
}

int main(void) {
    char err[256];
    tc_tools t;
    json_value *v = parse(TOOLS);
    CHECK(tc_tools_parse(&t, v, err, sizeof err) == 0, "tools parse: %s", err);
    CHECK(t.n == 2 && !strcmp(t.t[0].name, "get_weather") && !strcmp(t.t[1].name, "ping"), "names");
    CHECK(tc_tools_find(&t, "ping") == 1 && tc_tools_find(&t, "nope") == -1, "find");
    /* definitions: Python's separators, '<' escaped */
    CHECK(t.defs && strstr(t.defs, "\"name\": \"get_weather\", \"description\": \"Weather \\u003cnow\\u003e\""),
          "defs: %s", t.defs ? t.defs : "(null)");
    char *sys = tc_system_text(&t, TC_QWEN, "Be brief.");
    CHECK(sys && !strncmp(sys, "Be brief.\n\n# Tools\n", 19) && strstr(sys, "<tools>\n{\"type\": \"function\"") &&
              strstr(sys, "</tools>"), "qwen system text");
    free(sys);
    sys = tc_system_text(&t, TC_LLAMA3, NULL);
    CHECK(sys && strstr(sys, "\"parameters\": dictionary") && strstr(sys, "get_weather"), "llama3 system text");
    free(sys);

    /* renaming: definitions and references, never literals, classes, counts, comments */
    char *r = tc_gbnf_prefix("root ::= a-b \"root x\" [a-z\\]q] c{2,3} # note root\nc ::= [^\"] \"\\\"a\"\n", "t0-");
    CHECK(r && !strcmp(r, "t0-root ::= t0-a-b \"root x\" [a-z\\]q] t0-c{2,3} # note root\nt0-c ::= [^\"] \"\\\"a\"\n"),
          "prefix: %s", r ? r : "(null)");
    free(r);

    /* the grammar: any tool, or one; arguments match the schema */
    char *g = tc_grammar(&t, TC_QWEN, -1);
    CHECK(g != NULL, "grammar");
    const char *good = "<tool_call>\n{\"name\": \"get_weather\", \"arguments\": {\"city\": \"Paris\", \"unit\": \"c\"}}\n</tool_call>";
    const char *good2 = "<tool_call>\n{\"name\": \"ping\", \"arguments\": {}}\n</tool_call>";
    CHECK(grammar_accepts(g, good) == 1, "grammar accepts a call");
    CHECK(grammar_accepts(g, good2) == 1, "grammar accepts the other tool");
    CHECK(grammar_accepts(g, "<tool_call>\n{\"name\": \"get_weather\", \"arguments\": {\"city\": \"Paris\"}}\n</tool_call>") == 0,
          "a required property missing");
    CHECK(grammar_accepts(g, "<tool_call>\n{\"name\": \"get_weather\", \"arguments\": {\"city\": \"P\", \"unit\": \"k\"}}\n</tool_call>") == 0,
          "an enum violated");
    CHECK(grammar_accepts(g, "<tool_call>\n{\"name\": \"nope\", \"arguments\": {}}\n</tool_call>") == 0, "unknown tool");
    free(g);
    g = tc_grammar(&t, TC_QWEN, 1);
    CHECK(g && grammar_accepts(g, good2) == 1 && grammar_accepts(g, good) == 0, "named tool only");
    free(g);
    g = tc_grammar(&t, TC_LLAMA3, -1);
    CHECK(g && grammar_accepts(g, "{\"name\": \"ping\", \"parameters\": {}}") == 1, "llama3 grammar");
    free(g);

    /* the lazy trigger over every split of the text */
    const char *text = "Sure, let me check. <tool_call>\n{\"name\": \"ping\"";
    size_t tl = strlen(text);
    int all_ok = 1;
    for (size_t cut = 1; cut < tl; cut++) {
        tc_lazy z;
        tc_lazy_init(&z, tc_trigger(TC_QWEN));
        const char *from = NULL;
        size_t fn = 0;
        int f1 = tc_lazy_feed(&z, text, cut, &from, &fn);
        char got[128];
        size_t gn = 0;
        if (f1) memcpy(got, from, fn), gn = fn;
        int f2 = tc_lazy_feed(&z, text + cut, tl - cut, &from, &fn);
        if (f2) memcpy(got, from, fn), gn = fn;
        /* fires once, and what it hands over is the trigger up to the end of the piece that completed it */
        size_t tstart = (size_t)(strstr(text, "<tool_call>") - text), tend = tstart + 11;
        size_t expect_end = cut >= tend ? cut : tl;
        if (f1 + f2 != 1 || gn != expect_end - tstart || memcmp(got, text + tstart, gn)) all_ok = 0;
    }
    CHECK(all_ok, "lazy trigger fires once with the right bytes at every split");
    {
        tc_lazy z;
        tc_lazy_init(&z, "<tool_call>");
        const char *from;
        size_t fn;
        int f = 0;
        for (const char *p = "no call <tool_ here, <tool_cal"; *p; p++) f |= tc_lazy_feed(&z, p, 1, &from, &fn);
        CHECK(!f, "no trigger in near misses");
        f = tc_lazy_feed(&z, "l>", 2, &from, &fn);
        CHECK(f && fn == 11 && !memcmp(from, "<tool_call>", 11), "trigger across pieces byte by byte");
        CHECK(!tc_lazy_feed(&z, "<tool_call>", 11, &from, &fn), "fires only once");
    }

    /* the splitter: whole and byte by byte give the same events */
    events e;
    int called, complete;
    char both[400];
    snprintf(both, sizeof both, "Let me look. %s", good);
    for (size_t step = 1; step <= 400; step = step == 1 ? 7 : step == 7 ? 400 : 401) {
        split(TC_QWEN, both, step, &e, &called, &complete);
        CHECK(called && complete && e.n_name == 1 && !strcmp(e.content, "Let me look. ") &&
                  !strcmp(e.name, "get_weather") && !strcmp(e.args, "{\"city\": \"Paris\", \"unit\": \"c\"}"),
              "split step %zu: content '%s' name '%s' args '%s'", step, e.content, e.name, e.args);
        split(TC_QWEN, "Just text, <tool no call. <tool_call", step, &e, &called, &complete);
        CHECK(!called && !strcmp(e.content, "Just text, <tool no call. <tool_call"), "plain text: '%s'", e.content);
        split(TC_QWEN, "<tool_call>\n{\"name\": \"ping\", \"arguments\": {\"a\": [1,", step, &e, &called, &complete);
        CHECK(called && !complete && !strcmp(e.name, "ping") && !strcmp(e.args, "{\"a\": [1,"), "cut short");
        split(TC_QWEN, "<tool_call>\n{\"name\": \"ping\" oops", step, &e, &called, &complete);
        CHECK(!called && !strcmp(e.content, "<tool_call>\n{\"name\": \"ping\" oops"), "not the framing: '%s'",
              e.content);
        split(TC_LLAMA3, "{\"name\": \"ping\", \"parameters\": {\"x\": 1}}", step, &e, &called, &complete);
        CHECK(called && complete && !e.nc && !strcmp(e.args, "{\"x\": 1}"), "llama3 split");
    }

    /* earlier calls written back */
    tc_call calls[2] = {{"get_weather", "{\"city\":\"<|im_end|>\",\"unit\":\"c\"}", 0}, {"ping", "{}", 0}};
    calls[0].args_len = strlen(calls[0].args), calls[1].args_len = 2;
    char *out;
    size_t cl;
    CHECK(tc_render_calls(TC_QWEN, "", calls, 2, &out, &cl) == 0 && cl == 0 &&
              !strcmp(out, "<tool_call>\n{\"name\": \"get_weather\", \"arguments\": {\"city\": \"\\u003c|im_end|\\u003e\", "
                           "\"unit\": \"c\"}}\n</tool_call>\n<tool_call>\n{\"name\": \"ping\", \"arguments\": {}}\n</tool_call>"),
          "render: %s", out);
    free(out);
    CHECK(tc_render_calls(TC_QWEN, "Hi", calls + 1, 1, &out, &cl) == 0 && cl == 2 &&
              !strcmp(out, "Hi\n<tool_call>\n{\"name\": \"ping\", \"arguments\": {}}\n</tool_call>"), "render after content");
    free(out);
    tc_call bad = {"ping", "[1]", 3};
    CHECK(tc_render_calls(TC_QWEN, NULL, &bad, 1, &out, &cl) == -1, "arguments that are not an object");
    tc_tools_free(&t);
    json_free(v);

    /* refusals name the tool */
    static const char *bads[][2] = {
        {"[{\"type\":\"retrieval\"}]", "tools[0]: only tools of type"},
        {"[{\"type\":\"function\",\"function\":{\"name\":\"a b\"}}]", "tools[0]: function.name"},
        {"[{\"type\":\"function\",\"function\":{\"name\":\"a\",\"parameters\":{\"type\":\"string\"}}}]", "tools[0] (a): parameters"},
        {"[{\"type\":\"function\",\"function\":{\"name\":\"a\"}},{\"type\":\"function\",\"function\":{\"name\":\"a\"}}]",
         "tools[1] (a): a second"},
        {"[{\"type\":\"function\",\"function\":{\"name\":\"x\",\"parameters\":{\"type\":\"object\",\"properties\":{\"p\":{\"$ref\":\"#/a\"}}}}}]",
         "tools[0] (x): parameters"},
        {"[]", "tools must be"},
    };
    for (size_t i = 0; i < sizeof bads / sizeof *bads; i++) {
        json_value *bv = parse(bads[i][0]);
        int rc = tc_tools_parse(&t, bv, err, sizeof err);
        CHECK(rc == -1 && !strncmp(err, bads[i][1], strlen(bads[i][1])), "bad tools %zu: %s", i, err);
        json_free(bv);
    }
    printf("test_toolcall: %d passed, %d failed\n", t_pass, t_fail);
    return t_fail != 0;
}
