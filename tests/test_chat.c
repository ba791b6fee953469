/* test_chat.c - chat templates: every family's exact text for one
 * conversation (the expected strings come from the models' own Jinja
 * templates and llama.cpp's tests/test-chat-template.cpp, not from our
 * output), content spans, detection from excerpts of real templates,
 * refusals, truncation and hostile input. Self-contained; the detection from
 * the vocab files of the reference data runs only when the data is there.
 * (Contents are C strings, so an embedded NUL cannot reach the formatter: the
 * text ends at the first NUL by construction.) */
#include <stdint.h>
#include <time.h>

#include "harness.h"
#include "picolm.h"

#define N(a) (int)(sizeof(a) / sizeof *(a))

/* llama.cpp's test conversation (its tests/test-chat-template.cpp) */
static const pl_chat_msg conv[] = {
    {"system", "You are a helpful assistant"}, {"user", "Hello"},
    {"assistant", "Hi there"},                 {"user", "Who are you"},
    {"assistant", "   I am an assistant   "},  {"user", "Another question"},
};

static char smol_date[64];

static const char *chatml_want =
    "<|im_start|>system\nYou are a helpful assistant<|im_end|>\n<|im_start|>user\nHello<|im_end|>\n"
    "<|im_start|>assistant\nHi there<|im_end|>\n<|im_start|>user\nWho are you<|im_end|>\n"
    "<|im_start|>assistant\n   I am an assistant   <|im_end|>\n<|im_start|>user\nAnother question<|im_end|>\n"
    "<|im_start|>assistant\n";

static const struct {
    const char *name, *want;
    int trims;
} cases[] = {
    {"chatml", NULL, 0}, /* chatml_want: llama.cpp's OpenHermes case */
    {"qwen2", NULL, 0},
    {"qwen3-think", NULL, 0},
    {"qwen3",
     "<|im_start|>system\nYou are a helpful assistant<|im_end|>\n<|im_start|>user\nHello<|im_end|>\n"
     "<|im_start|>assistant\nHi there<|im_end|>\n<|im_start|>user\nWho are you<|im_end|>\n"
     "<|im_start|>assistant\n   I am an assistant   <|im_end|>\n<|im_start|>user\nAnother question<|im_end|>\n"
     "<|im_start|>assistant\n<think>\n\n</think>\n\n",
     0},
    {"llama3", /* llama.cpp's Llama-3 case */
     "<|start_header_id|>system<|end_header_id|>\n\nYou are a helpful assistant<|eot_id|><|start_header_id|>user<|"
     "end_header_id|>\n\nHello<|eot_id|><|start_header_id|>assistant<|end_header_id|>\n\nHi there<|eot_id|><|start_"
     "header_id|>user<|end_header_id|>\n\nWho are you<|eot_id|><|start_header_id|>assistant<|end_header_id|>\n\nI am "
     "an assistant<|eot_id|><|start_header_id|>user<|end_header_id|>\n\nAnother question<|eot_id|><|start_header_id|"
     ">assistant<|end_header_id|>\n\n",
     1},
    {"gemma", /* llama.cpp's gemma-7b-it case */
     "<start_of_turn>user\nYou are a helpful assistant\n\nHello<end_of_turn>\n<start_of_turn>model\nHi "
     "there<end_of_turn>\n<start_of_turn>user\nWho are you<end_of_turn>\n<start_of_turn>model\nI am an "
     "assistant<end_of_turn>\n<start_of_turn>user\nAnother question<end_of_turn>\n<start_of_turn>model\n",
     1},
    {"phi3", /* llama.cpp's Phi-3 cases */
     "<|system|>\nYou are a helpful assistant<|end|>\n<|user|>\nHello<|end|>\n<|assistant|>\nHi "
     "there<|end|>\n<|user|>\nWho are you<|end|>\n<|assistant|>\n   I am an assistant   <|end|>\n<|user|>\nAnother "
     "question<|end|>\n<|assistant|>\n",
     0},
    {"phi4mini", /* Phi-4-mini-instruct's template */
     "<|system|>You are a helpful assistant<|end|><|user|>Hello<|end|><|assistant|>Hi there<|end|><|user|>Who are "
     "you<|end|><|assistant|>   I am an assistant   <|end|><|user|>Another question<|end|><|assistant|>",
     0},
    {"phi4", /* Phi-4's template */
     "<|im_start|>system<|im_sep|>You are a helpful assistant<|im_end|><|im_start|>user<|im_sep|>Hello<|im_end|><|im_"
     "start|>assistant<|im_sep|>Hi there<|im_end|><|im_start|>user<|im_sep|>Who are "
     "you<|im_end|><|im_start|>assistant<|im_sep|>   I am an assistant   "
     "<|im_end|><|im_start|>user<|im_sep|>Another question<|im_end|><|im_start|>assistant<|im_sep|>",
     0},
    {"phi2",
     "You are a helpful assistant\nInstruct: Hello\nOutput: Hi there\nInstruct: Who are you\nOutput:    I am an "
     "assistant   \nInstruct: Another question\nOutput:",
     0},
    {"zephyr", /* TinyLlama-1.1B-Chat's template */
     "<|system|>\nYou are a helpful assistant</s>\n<|user|>\nHello</s>\n<|assistant|>\nHi there</s>\n<|user|>\nWho "
     "are you</s>\n<|assistant|>\n   I am an assistant   </s>\n<|user|>\nAnother question</s>\n<|assistant|>\n",
     0},
    {"llama2", /* Meta's Llama-2-chat template, the leading BOS left to the tokenizer */
     "[INST] <<SYS>>\nYou are a helpful assistant\n<</SYS>>\n\nHello [/INST] Hi there </s><s>[INST] Who are you "
     "[/INST] I am an assistant </s><s>[INST] Another question [/INST]",
     1},
    {"mistral", /* Mistral-7B-Instruct-v0.2, system text prepended to the first user turn */
     "[INST] You are a helpful assistant\n\nHello [/INST]Hi there</s>[INST] Who are you [/INST]   I am an "
     "assistant   </s>[INST] Another question [/INST]",
     0},
    {"smollm3", NULL, 0}, /* built below: it carries today's date */
};

static int is_sp(char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\v' || c == '\f' || c == '\r'; }

/* The content message i should have inside its span. */
static void want_content(const char *c, int trims, const char **p, size_t *n) {
    size_t len = strlen(c);
    if (trims) {
        while (len && is_sp(*c)) c++, len--;
        while (len && is_sp(c[len - 1])) len--;
    }
    *p = c, *n = len;
}

static char *fmt(const char *name, const pl_chat_msg *m, int n, int add, size_t *spans, int *len) {
    *len = pl_chat_format_msgs(name, m, n, add, NULL, 0, spans);
    if (*len < 0) return NULL;
    char *out = malloc((size_t)*len + 1);
    int again = pl_chat_format_msgs(name, m, n, add, out, (size_t)*len + 1, spans);
    CHECK(again == *len, "%s: second call %d != %d", name, again, *len);
    return out;
}

static void test_families(void) {
    char smol[2048];
    snprintf(smol, sizeof smol,
             "<|im_start|>system\n## Metadata\n\nKnowledge Cutoff Date: June 2025\nToday Date: %s\nReasoning Mode: "
             "/no_think\n\n## Custom Instructions\n\nYou are a helpful assistant\n\n<|im_start|>user\nHello<|im_end|>\n"
             "<|im_start|>assistant\n<think>\n\n</think>\nHi there<|im_end|>\n<|im_start|>user\nWho are "
             "you<|im_end|>\n<|im_start|>assistant\n<think>\n\n</think>\n   I am an assistant   <|im_end|>\n"
             "<|im_start|>user\nAnother question<|im_end|>\n<|im_start|>assistant\n<think>\n\n</think>\n",
             smol_date);
    for (int k = 0; k < N(cases); k++) {
        const char *want = cases[k].want ? cases[k].want : !strcmp(cases[k].name, "smollm3") ? smol : chatml_want;
        size_t spans[2 * N(conv)];
        memset(spans, 0xff, sizeof spans);
        int len;
        char *out = fmt(cases[k].name, conv, N(conv), 1, spans, &len);
        CHECK(out && !strcmp(out, want), "%s:\n got [%s]\nwant [%s]", cases[k].name, out ? out : "(error)", want);
        CHECK(len == (int)strlen(want), "%s: length %d, want %zu", cases[k].name, len, strlen(want));
        for (int i = 0; out && i < N(conv); i++) {
            const char *p;
            size_t n;
            want_content(conv[i].content, cases[k].trims, &p, &n);
            int ok = spans[2 * i] <= spans[2 * i + 1] && spans[2 * i + 1] <= (size_t)len &&
                     spans[2 * i + 1] - spans[2 * i] == n && !memcmp(out + spans[2 * i], p, n);
            CHECK(ok, "%s: span of message %d [%zu,%zu)", cases[k].name, i, spans[2 * i], spans[2 * i + 1]);
        }
        /* without the generation prompt the text is the same minus its opening */
        int len2;
        char *out2 = fmt(cases[k].name, conv, N(conv), 0, NULL, &len2);
        CHECK(out2 && len2 <= len && !memcmp(out, out2, (size_t)len2), "%s: add_assistant=0 is not a prefix",
              cases[k].name);
        CHECK(pl_chat_format_msgs(cases[k].name, conv, 0, 0, NULL, 0, NULL) >= 0, "%s: empty conversation",
              cases[k].name);
        free(out);
        free(out2);
    }
    /* every listed family is known, and every family in the table is listed */
    char list[512];
    snprintf(list, sizeof list, "%s", pl_chat_template_list());
    int listed = 0;
    for (char *t = strtok(list, ", "); t; t = strtok(NULL, ", ")) {
        listed++;
        CHECK(pl_chat_format_msgs(t, conv, 2, 1, NULL, 0, NULL) > 0, "listed family %s refused", t);
    }
    CHECK(listed == N(cases), "%d families listed, %d tested", listed, N(cases));
}

static void test_stop(void) {
    static const char *const want[][2] = {
        {"chatml", "<|im_end|>"}, {"qwen3", "<|im_end|>"}, {"smollm3", "<|im_end|>"}, {"llama3", "<|eot_id|>"},
        {"gemma", "<end_of_turn>"}, {"phi3", "<|end|>"},   {"phi4mini", "<|end|>"},  {"phi4", "<|im_end|>"},
    };
    for (int i = 0; i < N(want); i++) {
        const char *s = pl_chat_template_stop(want[i][0]);
        CHECK(s && !strcmp(s, want[i][1]), "stop of %s: %s", want[i][0], s ? s : "NULL");
    }
    CHECK(!pl_chat_template_stop("zephyr") && !pl_chat_template_stop("nope"), "zephyr stops at EOS");
}

/* pl_chat_format (system + user) as the CLI uses it */
static void test_format_two(void) {
    char buf[512];
    size_t ns = 99;
    int n = pl_chat_format("zephyr", "You are a helpful assistant.", "Hi", buf, sizeof buf, &ns);
    const char *want = "<|system|>\nYou are a helpful assistant.</s>\n<|user|>\nHi</s>\n<|assistant|>\n";
    CHECK(n == (int)strlen(want) && !strcmp(buf, want), "zephyr two: [%s]", buf);
    CHECK(ns == strlen("<|system|>\nYou are a helpful assistant.</s>\n"), "zephyr n_sys %zu", ns);
    n = pl_chat_format("gemma", "Be brief.", "Hi", buf, sizeof buf, &ns);
    CHECK(!strcmp(buf, "<start_of_turn>user\nBe brief.\n\nHi<end_of_turn>\n<start_of_turn>model\n"), "gemma: [%s]",
          buf);
    CHECK(ns == strlen("<start_of_turn>user\nBe brief.\n\n"), "gemma n_sys %zu", ns);
    n = pl_chat_format("chatml", "", "Hi", buf, sizeof buf, &ns);
    CHECK(!strcmp(buf, "<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\n") && ns == 0,
          "empty system is skipped: [%s] %zu", buf, ns);
    n = pl_chat_format("llama2", NULL, "Hi", buf, sizeof buf, &ns);
    CHECK(!strcmp(buf, "[INST] Hi [/INST]") && ns == 0, "llama2 no system: [%s]", buf);
    CHECK(pl_chat_format("nope", NULL, "Hi", buf, sizeof buf, &ns) == -1, "unknown name");
}

static void test_special_behaviour(void) {
    char buf[4096];
    size_t sp[16];
    /* Qwen3: reasoning of earlier turns is dropped; the turn after the last user message keeps it */
    const pl_chat_msg q[] = {{"user", "2+2?"}, {"assistant", "<think>\nadd\n</think>\n\n4"}, {"user", "and 3+3?"},
                             {"assistant", "<think>\nagain\n</think>\n\n6"}};
    int n = pl_chat_format_msgs("qwen3", q, 4, 0, buf, sizeof buf, sp);
    CHECK(n > 0 && !strcmp(buf, "<|im_start|>user\n2+2?<|im_end|>\n<|im_start|>assistant\n4<|im_end|>\n<|im_start|>"
                                "user\nand 3+3?<|im_end|>\n<|im_start|>assistant\n<think>\nagain\n</think>\n\n6<|im_"
                                "end|>\n"),
          "qwen3 think history: [%s]", buf);
    CHECK(sp[3] - sp[2] == 1 && buf[sp[2]] == '4', "qwen3 span of the stripped answer");
    /* Qwen tool results: a run of tool messages shares one user turn */
    const pl_chat_msg t[] = {{"user", "Weather?"},
                             {"assistant", "<tool_call>\n{\"name\": \"w\", \"arguments\": {}}\n</tool_call>"},
                             {"tool", "18C"},
                             {"tool", "sunny"}};
    n = pl_chat_format_msgs("qwen2", t, 4, 1, buf, sizeof buf, sp);
    CHECK(n > 0 && !strcmp(buf, "<|im_start|>user\nWeather?<|im_end|>\n<|im_start|>assistant\n<tool_call>\n{\"name\": "
                                "\"w\", \"arguments\": {}}\n</tool_call><|im_end|>\n<|im_start|>user\n<tool_response>"
                                "\n18C\n</tool_response>\n<tool_response>\nsunny\n</tool_response><|im_end|>\n<|im_"
                                "start|>assistant\n"),
          "qwen2 tools: [%s]", buf);
    CHECK(!memcmp(buf + sp[4], "18C", 3) && sp[5] - sp[4] == 3 && !memcmp(buf + sp[6], "sunny", 5), "tool spans");
    n = pl_chat_format_msgs("chatml", t + 2, 1, 0, buf, sizeof buf, NULL);
    CHECK(n > 0 && !strcmp(buf, "<|im_start|>tool\n18C<|im_end|>\n"), "chatml tool: [%s]", buf);
    n = pl_chat_format_msgs("llama3", t + 2, 1, 0, buf, sizeof buf, NULL);
    CHECK(n > 0 && !strcmp(buf, "<|start_header_id|>ipython<|end_header_id|>\n\n18C<|eot_id|>"), "llama3 tool: [%s]",
          buf);
    /* SmolLM3: /think in the system message switches thinking on and leaves the text */
    const pl_chat_msg s[] = {{"system", "Be brief. /think  "}, {"user", "Hi"}, {"assistant", "\n\nHello"}};
    n = pl_chat_format_msgs("smollm3", s, 3, 1, buf, sizeof buf, sp);
    char want[4096];
    snprintf(want, sizeof want,
             "<|im_start|>system\n## Metadata\n\nKnowledge Cutoff Date: June 2025\nToday Date: %s\nReasoning Mode: "
             "/think\n\n## Custom Instructions\n\nBe brief.\n\n<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\n"
             "Hello<|im_end|>\n<|im_start|>assistant\n",
             smol_date);
    CHECK(n > 0 && !strcmp(buf, want), "smollm3 /think:\n got [%s]\nwant [%s]", buf, want);
    CHECK(sp[1] - sp[0] == 9 && !memcmp(buf + sp[0], "Be brief.", 9), "smollm3 system span");
    /* no system message: the header with the default instructions, non-thinking */
    n = pl_chat_format_msgs("smollm3", s + 1, 1, 1, buf, sizeof buf, NULL);
    snprintf(want, sizeof want,
             "<|im_start|>system\n## Metadata\n\nKnowledge Cutoff Date: June 2025\nToday Date: %s\nReasoning Mode: "
             "/no_think\n\n## Custom Instructions\n\nYou are a helpful AI assistant named SmolLM, trained by Hugging "
             "Face.\n\n<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\n<think>\n\n</think>\n",
             smol_date);
    CHECK(n > 0 && !strcmp(buf, want), "smollm3 default:\n got [%s]\nwant [%s]", buf, want);
    /* /no_think wins; the switches are removed wherever they are */
    const pl_chat_msg s2[] = {{"system", "/think A /no_think B"}, {"user", "Hi"}};
    n = pl_chat_format_msgs("smollm3", s2, 2, 1, buf, sizeof buf, sp);
    CHECK(n > 0 && strstr(buf, "Reasoning Mode: /no_think\n") && sp[1] - sp[0] == 5 && !memcmp(buf + sp[0], " A  B", 5),
          "smollm3 /no_think: [%s]", buf);
}

static void test_refusals(void) {
    char buf[64];
    const pl_chat_msg bad_role[] = {{"user", "x"}, {"developer", "y"}};
    const pl_chat_msg null_role[] = {{NULL, "x"}};
    const pl_chat_msg sys_late[] = {{"user", "x"}, {"system", "y"}};
    const pl_chat_msg sys_alone[] = {{"system", "y"}};
    const pl_chat_msg sys_asst[] = {{"system", "y"}, {"assistant", "z"}};
    const pl_chat_msg tool[] = {{"user", "x"}, {"tool", "y"}};
    const char *names[] = {"chatml", "qwen3", "smollm3", "llama3", "gemma", "phi3", "zephyr", "llama2", "mistral"};
    for (int i = 0; i < N(names); i++) {
        memset(buf, 'x', sizeof buf);
        CHECK(pl_chat_format_msgs(names[i], bad_role, 2, 1, buf, sizeof buf, NULL) == PL_ERR_ARG && !buf[0],
              "%s: unknown role", names[i]);
        CHECK(pl_chat_format_msgs(names[i], null_role, 1, 1, buf, sizeof buf, NULL) == PL_ERR_ARG, "%s: NULL role",
              names[i]);
        CHECK(pl_chat_format_msgs(names[i], NULL, 1, 1, buf, sizeof buf, NULL) == PL_ERR_ARG, "%s: NULL msgs",
              names[i]);
        CHECK(pl_chat_format_msgs(names[i], conv, -1, 1, buf, sizeof buf, NULL) == PL_ERR_ARG, "%s: n < 0", names[i]);
        CHECK(pl_chat_format_msgs(names[i], conv, 2, 1, NULL, 5, NULL) == PL_ERR_ARG, "%s: NULL out", names[i]);
    }
    static const char *const late_bad[] = {"gemma", "llama2", "mistral", "smollm3"};
    for (int i = 0; i < N(late_bad); i++)
        CHECK(pl_chat_format_msgs(late_bad[i], sys_late, 2, 1, buf, sizeof buf, NULL) == PL_ERR_ARG,
              "%s: system after user", late_bad[i]);
    CHECK(pl_chat_format_msgs("chatml", sys_late, 2, 1, NULL, 0, NULL) > 0, "chatml: a later system turn is fine");
    static const char *const fold[] = {"gemma", "llama2", "mistral"};
    for (int i = 0; i < N(fold); i++) {
        CHECK(pl_chat_format_msgs(fold[i], sys_alone, 1, 1, NULL, 0, NULL) == PL_ERR_ARG, "%s: system alone", fold[i]);
        CHECK(pl_chat_format_msgs(fold[i], sys_asst, 2, 1, NULL, 0, NULL) == PL_ERR_ARG, "%s: system + assistant",
              fold[i]);
    }
    static const char *const no_tool[] = {"gemma", "phi3", "phi2", "zephyr", "llama2", "mistral"};
    for (int i = 0; i < N(no_tool); i++)
        CHECK(pl_chat_format_msgs(no_tool[i], tool, 2, 1, NULL, 0, NULL) == PL_ERR_ARG, "%s: tool role", no_tool[i]);
    CHECK(pl_chat_format_msgs("nope", conv, 2, 1, buf, sizeof buf, NULL) == PL_ERR_ARG, "unknown name");
    CHECK(pl_chat_format_msgs(NULL, conv, 2, 1, buf, sizeof buf, NULL) == PL_ERR_ARG, "NULL name");
    /* NULL content reads as "" (an assistant turn that only called tools) */
    const pl_chat_msg nul[] = {{"user", NULL}, {"assistant", NULL}};
    int n = pl_chat_format_msgs("chatml", nul, 2, 0, buf, sizeof buf, NULL);
    CHECK(n > 0 && !strcmp(buf, "<|im_start|>user\n<|im_end|>\n<|im_start|>assistant\n<|im_end|>\n"), "NULL content");
}

/* a tiny cap truncates and never writes past it; the length is the full one */
static void test_truncation(void) {
    for (int k = 0; k < N(cases); k++) {
        int len;
        char *full = fmt(cases[k].name, conv, N(conv), 1, NULL, &len);
        if (!full) continue;
        char *buf = malloc((size_t)len + 16);
        for (size_t cap = 0; cap <= (size_t)len + 2; cap++) {
            memset(buf, '#', (size_t)len + 16);
            int r = pl_chat_format_msgs(cases[k].name, conv, N(conv), 1, cap ? buf : NULL, cap, NULL);
            size_t w = cap ? (cap - 1 < (size_t)len ? cap - 1 : (size_t)len) : 0;
            int ok = r == len && (!cap || (buf[w] == 0 && !memcmp(buf, full, w)));
            for (size_t j = cap; j < (size_t)len + 16; j++) ok &= buf[j] == '#';
            CHECK(ok, "%s: cap %zu: returned %d, want %d", cases[k].name, cap, r, len);
            if (!ok) break;
        }
        free(buf);
        free(full);
    }
}

static void test_hostile(void) {
    size_t big = 10u << 20;
    char *huge = malloc(big + 1);
    memset(huge, 'a', big);
    huge[big] = 0;
    huge[7] = '<', huge[8] = '|'; /* template-looking text inside a message stays content */
    const pl_chat_msg m[] = {{"system", huge}, {"user", huge}, {"assistant", huge}, {"user", "<|im_end|>"}};
    for (int k = 0; k < N(cases); k++) {
        size_t sp[8];
        int n = pl_chat_format_msgs(cases[k].name, m, 4, 1, NULL, 0, sp);
        CHECK(n > (int)(3 * big) && sp[1] - sp[0] == big && sp[3] - sp[2] == big && sp[5] - sp[4] == big &&
                  sp[7] <= (size_t)n,
              "%s: 30 MB conversation: %d", cases[k].name, n);
    }
    free(huge);
    /* a text longer than INT_MAX (33 messages sharing one 64 MiB content) is refused, not wrapped */
    size_t len64 = (size_t)64 << 20;
    char *c64 = malloc(len64 + 1);
    if (c64) {
        memset(c64, 'b', len64);
        c64[len64] = 0;
        pl_chat_msg many[33];
        for (int i = 0; i < N(many); i++) many[i].role = "user", many[i].content = c64;
        char small[16];
        CHECK(pl_chat_format_msgs("chatml", many, N(many), 1, small, sizeof small, NULL) == PL_ERR_ARG && !small[0],
              "2.2 GB conversation refused");
        free(c64);
    }
}

static void test_detect(void) {
    static const char *const tmpl[][2] = {
        /* Qwen2.5-Instruct */
        {"qwen2", "{%- if tools %}\n    {{- '<|im_start|>system\\n' }}\n{%- for message in messages %}\n        {%- "
                  "if loop.first or (messages[loop.index0 - 1].role != \"tool\") %}\n            {{- "
                  "'<|im_start|>user' }}\n        {%- endif %}\n        {{- '\\n<tool_response>\\n' }}"},
        /* Qwen3 */
        {"qwen3", "{%- if '</think>' in message.content %}\n{%- set content = "
                  "message.content.split('</think>')[-1].lstrip('\\n') %}{{- '<|im_start|>' + message.role + "
                  "'\\n<think>\\n' + reasoning_content.strip('\\n') + '\\n</think>\\n\\n' }}<tool_response>"},
        /* SmolLM2-Instruct */
        {"chatml", "{% for message in messages %}{% if loop.first and messages[0]['role'] != 'system' %}{{ "
                   "'<|im_start|>system\nYou are a helpful AI assistant named SmolLM, trained by Hugging "
                   "Face<|im_end|>\n' }}{% endif %}{{'<|im_start|>' + message['role'] + '\n' + message['content'] + "
                   "'<|im_end|>' + '\n'}}{% endfor %}"},
        /* SmolLM3 */
        {"smollm3", "{{- \"<|im_start|>system\\n\" -}}{%- if \"/no_think\" in system_message -%}{{- \"Reasoning "
                    "Mode: \" + reasoning_mode + \"\\n\\n\" -}}{{ \"<|im_start|>assistant\\n\" + "
                    "\"<think>\\n\\n</think>\\n\" }}"},
        /* Llama 3.2 Instruct */
        {"llama3", "{{- bos_token }}\n{{- \"<|start_header_id|>system<|end_header_id|>\\n\\n\" }}\n{%- if tools is "
                   "not none %}\n    {{- \"Environment: ipython\\n\" }}\n{%- endif %}\n{{- \"Cutting Knowledge Date: "
                   "December 2023\\n\" }}"},
        /* Gemma 3 */
        {"gemma", "{{ bos_token }}\n{%- if messages[0]['role'] == 'system' -%}\n    {%- set first_user_prefix = "
                  "messages[0]['content'] + '\n\n' -%}{{ '<start_of_turn>' + role + '\n' + (first_user_prefix if "
                  "loop.first else \"\") }}"},
        /* Gemma 2 */
        {"gemma", "{{ bos_token }}{% if messages[0]['role'] == 'system' %}{{ raise_exception('System role not "
                  "supported') }}{% endif %}{{ '<start_of_turn>' + role + '\n' + message['content'] | trim + "
                  "'<end_of_turn>\n' }}"},
        /* Phi-3.5-mini-instruct */
        {"phi3", "{% for message in messages %}{% if message['role'] == 'system' and message['content'] "
                 "%}{{'<|system|>\n' + message['content'] + '<|end|>\n'}}{% elif message['role'] == 'user' "
                 "%}{{'<|user|>\n' + message['content'] + '<|end|>\n'}}{% endif %}{% endfor %}{% if "
                 "add_generation_prompt %}{{ '<|assistant|>\n' }}{% else %}{{ eos_token }}{% endif %}"},
        /* Phi-3-small (llama.cpp's test) */
        {"phi3", "{{ bos_token }}{% for message in messages %}{{'<|' + message['role'] + '|>' + '\n' + "
                 "message['content'] + '<|end|>\n' }}{% endfor %}{% if add_generation_prompt %}{{ '<|assistant|>\n' "
                 "}}{% else %}{{ eos_token }}{% endif %}"},
        /* Phi-4-mini-instruct */
        {"phi4mini", "{% for message in messages %}{% if message['role'] == 'system' and 'tools' in message and "
                     "message['tools'] is not none %}{{ '<|' + message['role'] + '|>' + message['content'] + "
                     "'<|tool|>' + message['tools'] + '<|/tool|>' + '<|end|>' }}{% else %}{{ '<|' + "
                     "message['role'] + '|>' + message['content'] + '<|end|>' }}{% endif %}{% endfor %}{% if "
                     "add_generation_prompt %}{{ '<|assistant|>' }}{% else %}{{ eos_token }}{% endif %}"},
        /* Phi-3 written without the generation prompt */
        {"phi3", "{{'<|user|>\n' + message['content'] + '<|end|>\n'}}"},
        /* Phi-4 */
        {"phi4", "{% for message in messages %}{% if (message['role'] == 'system') "
                 "%}{{'<|im_start|>system<|im_sep|>' + message['content'] + '<|im_end|>'}}{% endif %}{% endfor %}"},
        /* TinyLlama-1.1B-Chat */
        {"zephyr", "{% for message in messages %}\n{% if message['role'] == 'user' %}\n{{ '<|user|>\n' + "
                   "message['content'] + eos_token }}\n{% elif message['role'] == 'system' %}\n{{ '<|system|>\n' + "
                   "message['content'] + eos_token }}\n{% endif %}\n{% if loop.last and add_generation_prompt %}\n{{ "
                   "'<|assistant|>' }}\n{% endif %}\n{% endfor %}"},
        /* Llama-2-chat */
        {"llama2", "{% if loop.index0 == 0 and system_message != false %}{% set content = '<<SYS>>\\n' + "
                   "system_message + '\\n<</SYS>>\\n\\n' + message['content'] %}{% endif %}{{ bos_token + '[INST] ' "
                   "+ content.strip() + ' [/INST]' }}"},
        /* Mistral-7B-Instruct-v0.2 */
        {"mistral", "{{ bos_token }}{% for message in messages %}{% if message['role'] == 'user' %}{{ '[INST] ' + "
                    "message['content'] + ' [/INST]' }}{% elif message['role'] == 'assistant' %}{{ "
                    "message['content'] + eos_token}}{% endif %}{% endfor %}"},
        {NULL, "{{ messages }}"},
        {NULL, ""},
    };
    for (int i = 0; i < N(tmpl); i++) {
        const char *got = pl_chat_template_detect_text(tmpl[i][1], strlen(tmpl[i][1]));
        CHECK(tmpl[i][0] ? got && !strcmp(got, tmpl[i][0]) : !got, "template %d: detected %s, want %s", i,
              got ? got : "NULL", tmpl[i][0] ? tmpl[i][0] : "NULL");
    }
    /* the length bounds the search: a marker past it is not seen */
    CHECK(!pl_chat_template_detect_text("abc<|im_start|>", 5), "detect reads only len bytes");
    CHECK(!pl_chat_template_detect_text(NULL, 10), "NULL template");

    /* the real templates in the reference vocab files (when the data and their tokenizer are there) */
    if (!t_have_data()) return;
    static const char *const files[][2] = {{"vocab/ggml-vocab-phi-3.gguf", "phi3"},
                                           {"vocab/vocab-llama3.gguf", "llama3"},
                                           {"vocab/vocab-qwen3.gguf", "qwen3"}};
    for (int i = 0; i < N(files); i++) {
        pl_model *m = NULL;
        char err[256];
        if (pl_model_open(&m, t_path(files[i][0]), err, sizeof err) != 0) continue; /* tokenizer not supported */
        const char *got = pl_chat_template_detect(m);
        CHECK(got && !strcmp(got, files[i][1]), "%s: detected %s", files[i][0], got ? got : "NULL");
        pl_model_close(m);
    }
}

int main(void) {
    time_t now = time(NULL);
    strftime(smol_date, sizeof smol_date, "%d %B %Y", gmtime(&now));
    test_families();
    test_stop();
    test_format_two();
    test_special_behaviour();
    test_refusals();
    test_truncation();
    test_hostile();
    test_detect();
    return t_summary("test_chat");
}
