/* fuzz_chat.c - libFuzzer target for the chat formatter: the input, split
 * at NUL bytes, is a conversation (each piece's first byte picks the role,
 * including an unknown one; the rest is the content), formatted with every
 * family with and without the generation prompt. Checks: the length is the
 * same with and without a buffer, the text has exactly that length, a
 * truncated buffer holds its prefix, and every content span lies inside the
 * text, in message order, no longer than the content. The input is also
 * run through template detection. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "picolm.h"

#define MAX_MSGS 64

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    static const char *const roles[] = {"system", "user", "assistant", "tool", "developer"};
    (void)pl_chat_template_detect_text((const char *)data, size);

    /* the pieces, NUL-terminated, in one copy of the input */
    char *copy = malloc(size + 1);
    if (!copy) return 0;
    memcpy(copy, data, size);
    copy[size] = 0;
    pl_chat_msg msgs[MAX_MSGS];
    size_t clen[MAX_MSGS];
    int n = 0;
    int add = size && (data[0] & 1);
    for (size_t i = size ? 1 : 0; i < size && n < MAX_MSGS;) {
        size_t j = i;
        while (j < size && copy[j]) j++;
        msgs[n].role = roles[(uint8_t)copy[i] % 5];
        msgs[n].content = (copy[i] & 0x80) && j == i + 1 ? NULL : copy + i + 1; /* NULL content too */
        if (j == i) msgs[n].content = "";
        clen[n] = msgs[n].content ? strlen(msgs[n].content) : 0;
        n++;
        i = j + 1;
    }

    size_t spans[2 * MAX_MSGS];
    for (const char *l = pl_chat_template_list(); *l;) { /* "a, b, c" */
        char name[32];
        size_t k = strcspn(l, ",");
        if (k >= sizeof name) abort();
        memcpy(name, l, k);
        name[k] = 0;
        l += k;
        while (*l == ',' || *l == ' ') l++;
        int len = pl_chat_format_msgs(name, msgs, n, add, NULL, 0, spans);
        if (len < 0) {
            if (len != PL_ERR_ARG && len != PL_ERR_NOMEM) abort();
            continue;
        }
        char *out = malloc((size_t)len + 1);
        if (!out) break;
        if (pl_chat_format_msgs(name, msgs, n, add, out, (size_t)len + 1, spans) != len) abort();
        if (strlen(out) != (size_t)len) abort();
        size_t prev = 0;
        for (int i = 0; i < n; i++) {
            if (spans[2 * i] < prev || spans[2 * i] > spans[2 * i + 1] || spans[2 * i + 1] > (size_t)len) abort();
            if (spans[2 * i + 1] - spans[2 * i] > clen[i]) abort();
            prev = spans[2 * i + 1];
        }
        size_t cap = (size_t)len / 2 + 1;
        char *part = malloc(cap + 1);
        if (part) {
            part[cap] = 0x5a;
            if (pl_chat_format_msgs(name, msgs, n, add, part, cap, NULL) != len) abort();
            if (part[cap - 1] != 0 || memcmp(part, out, cap - 1) || part[cap] != 0x5a) abort();
            free(part);
        }
        free(out);
    }
    free(copy);
    return 0;
}
