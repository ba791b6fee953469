/* picolm.c - the command-line program.
 *
 * picolm MODEL.gguf [options]: reads the prompt from -p or stdin, streams
 * the generated text alone to stdout (flushed per token, never half a UTF-8
 * character) and prints progress and statistics to stderr. With -i it is a
 * multi-turn chat, one user message per line of stdin. Exit codes: 0 ok
 * (also when the context fills up), 1 runtime or model error, 2 usage. */
#include <errno.h>
#include <limits.h>
#include <math.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#ifdef _WIN32
#include <fcntl.h>
#include <io.h>
#define WIN32_LEAN_AND_MEAN
#define NOMINMAX
#include <windows.h>
/* a console: _isatty alone is also true for NUL (a character device) */
static int is_terminal(int fd) {
    DWORD mode;
    return _isatty(fd) && GetConsoleMode((HANDLE)_get_osfhandle(fd), &mode);
}
#define READ0(buf, n) _read(0, buf, (unsigned)(n))
#define WRITE2(buf, n) _write(2, buf, (unsigned)(n))
#else
#include <unistd.h>
#define is_terminal isatty
#define READ0(buf, n) read(0, buf, n)
#define WRITE2(buf, n) write(2, buf, n)
#endif

#include "picolm.h"
#include "../src/grammar.h"
#include "../src/platform.h"

static const char *usage_text =
    "usage: picolm MODEL.gguf [options]   (or picolm -m MODEL.gguf [options])\n"
    "\n"
    "Generates text from a prompt with a GGUF model (llama, qwen2/3, gemma 1-3,\nphi-2/3/4, smollm3 architectures).\n"
    "The prompt comes from -p or standard input; the text goes to standard\n"
    "output, statistics to standard error. Without a prompt at a terminal, or\n"
    "with -i, it is a chat.\n"
    "\n"
    "  -p, --prompt TEXT  prompt (default: read standard input)\n"
    "  -f, --file FILE    prompt from a file\n"
    "  -m, --model FILE   the model (or give it as the first argument)\n"
    "  -i, --interactive  chat: each line of standard input is a user message\n"
    "                     (end a line with \\ to go on), answered with the whole\n"
    "                     conversation in the context; the default when no prompt\n"
    "                     is given and standard input is a terminal. Ctrl-D ends,\n"
    "                     Ctrl-C stops the answer (at the prompt: quits); -n, -t,\n"
    "                     --system, --json ... apply to every answer\n"
    "  -n, --n-predict N  maximum new tokens (default 256; -1: until an end-of-\n"
    "                     generation token or the end of the context)\n"
    "  -t, --temp TEMP    temperature, 0 = greedy (default 0.8)\n"
    "  -k, --top-p P      top-p / nucleus sampling (default 0.9; 0 or 1 = off)\n"
    "  --top-k N          keep the N most likely tokens (default 0 = off)\n"
    "  --min-p P          keep tokens at least P x as likely as the best (0 = off)\n"
    "  --repeat-penalty X divide a recent token's logit by X (default 1 = off)\n"
    "  --repeat-last-n N  tokens the penalties look back on (default 64; -1: 32768)\n"
    "  --presence-penalty X   subtract X from a recent token's logit (default 0)\n"
    "  --frequency-penalty X  subtract X per occurrence (default 0)\n"
    "  --logit-bias ID=X  add X (or -inf) to token ID's logit (repeatable)\n"
    "  --stop TEXT        stop when TEXT appears; it is not printed (repeatable)\n"
    "  --draft FILE       speculative decoding with a small draft model of the same\n"
  "                     vocabulary (also -md): the same output, faster when the\n"
  "                     draft guesses well; --draft-max N drafts a step (1-16, 8)\n"
  "  --lookup N         prompt-lookup drafting of up to N tokens (0-16, default\n"
    "                     0): faster on repetitive text, the same output\n"
    "  -s, --seed SEED    random seed (default 42)\n"
    "  -c, --ctx-size N   context length (default or 0: the model's, capped at 2048)\n"
    "  -j, --threads N    threads (default or 0: online cores)\n"
    "  -b, --batch N      prompt tokens per pass through the layers, 1-512 (default\n"
    "                     128, or 32 where the weights do not fit in memory)\n"
    "  --no-bos           do not add the BOS token\n"
    "  --no-special       special-token text in the prompt (\"</s>\") is plain text\n"
    "                     (with --chat it always is inside the messages)\n"
    "  --keep N           tokens kept at the start when the context slides\n"
    "                     (default: BOS)\n"
    "  --no-context-shift stop when the context is full instead of sliding\n"
    "  --kv f16|q8        KV cache type (default f16; q8 halves its memory)\n"
    "  --mem-budget MB    weights kept cached; the rest stream layer by layer\n"
    "                     (default: what fits in available memory; -1 = plain mmap)\n"
    "  --prompt-ids IDS   the prompt as token ids (\"1 2 3\") instead of text\n"
    "  --tokenize         print the prompt's token ids and exit\n"
    "  --dump-logits FILE with -n 0: write float32 logits of every prompt\n"
    "                     position (positions x vocab, little-endian)\n"
    "  --chat             the prompt is a user message: format it with the model's\n"
    "                     chat template (detected from the file)\n"
    "  --system TEXT      system message (implies --chat)\n"
    "  --chat-template T  chatml, qwen2, qwen3, qwen3-think, smollm3, llama3, gemma, phi3, phi4mini,\n"
    "                     phi4, phi2, zephyr, llama2, mistral (default: the model's own)\n"
    "  --json             the output is one complete, valid JSON value\n"
    "  --grammar FILE     constrain the output to a GBNF grammar (root rule: root)\n"
    "  --json-schema FILE the output is JSON valid against this schema\n"
    "  --cache FILE       reuse the KV state of the longest common prompt prefix\n"
    "                     saved by an earlier run, and save this prompt's state\n"
    "  --info             what the model file holds (shapes, parameters, tensor types,\n"
    "                     vocabulary, template) and the memory a run at -c and --kv\n"
    "                     would use, without running it; with --json as JSON\n"
    "  -q, --quiet        no statistics on standard error (nor the progress line\n"
    "                     of a long prompt, shown when it is a terminal)\n"
    "  --version          version and CPU kernel level\n"
    "  -h, --help         this text\n";

#define MAX_STOP 64 /* --stop and --logit-bias given at most this many times */

typedef struct {
    const char *model, *prompt, *prompt_ids, *dump_logits, *system, *chat_template, *cache, *grammar, *schema;
    const char *file; /* -f: the prompt's file */
    int n_predict, top_k, n_ctx, n_threads, no_bos, no_special, tokenize, quiet, keep, no_shift, mem_budget, chat, kv_q8, json;
    int interactive, lookup, temp_hint, info;
    int n_batch; /* -b: prompt tokens per pass through the layers (0: the library's default) */
    const char *draft; /* --draft: a draft model for speculative decoding */
    int draft_max;
    float temp, top_p, min_p, repeat_penalty, presence_penalty, frequency_penalty;
    int repeat_last_n;
    uint64_t seed;
    const char *stop[MAX_STOP];
    int n_stop;
    pl_logit_bias bias[MAX_STOP];
    int n_bias;
} options;

/* PicoLM's defaults (tests/fuzz_args.c starts from them too) */
static void options_default(options *o) {
    memset(o, 0, sizeof *o);
    pl_sampler_params sp = pl_sampler_default_params();
    o->n_predict = 256;
    o->temp = 0.8f;
    o->top_p = 0.9f;
    o->seed = 42;
    o->keep = -1;
    o->repeat_penalty = sp.repeat_penalty;
    o->repeat_last_n = sp.repeat_last_n;
}

/* tests/fuzz_args.c builds this file with PICOLM_FUZZ_ARGS: a usage error
 * (or --help) returns to the fuzzer instead of ending the process. */
#ifdef PICOLM_FUZZ_ARGS
#include <setjmp.h>
extern jmp_buf pl_fuzz_args_jmp;
#define EXIT_PARSE(code) longjmp(pl_fuzz_args_jmp, 1 + (code))
#else
#define EXIT_PARSE(code) exit(code)
#endif

static void die_usage(const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
#ifdef PICOLM_FUZZ_ARGS /* formatted (the arguments are checked), not printed */
    char msg[512];
    vsnprintf(msg, sizeof msg, fmt, ap);
#else
    fprintf(stderr, "picolm: ");
    vfprintf(stderr, fmt, ap);
    fprintf(stderr, " (see picolm --help)\n");
#endif
    va_end(ap);
    EXIT_PARSE(2);
}

static int parse_int(const char *opt, const char *s, long lo, long hi) {
    char *end;
    errno = 0;
    long v = strtol(s, &end, 10);
    if (!*s || *end || errno) die_usage("%s expects an integer, got '%s'", opt, s);
    if (v < lo || v > hi) die_usage("%s %ld is out of range [%ld, %ld]", opt, v, lo, hi);
    return (int)v;
}

static float parse_float(const char *opt, const char *s, float lo, float hi) {
    char *end;
    errno = 0;
    double v = strtod(s, &end);
    /* an underflow (1e-400) is a number too small to matter, not a typo */
    if (errno == ERANGE && fabs(v) < 1.0) errno = 0;
    if (!*s || *end || errno || v != v) die_usage("%s expects a number, got '%s'", opt, s);
    if (v < lo || v > hi) die_usage("%s %s is out of range [%g, %g]", opt, s, lo, hi);
    return (float)v;
}

static uint64_t parse_seed(const char *opt, const char *v) {
    char *end;
    errno = 0;
    unsigned long long s = strtoull(v, &end, 10);
    if (!*v || *end || errno || *v == '-') die_usage("%s expects a non-negative integer, got '%s'", opt, v);
    return s;
}

/* --logit-bias ID=X, or llama.cpp's ID+X / ID-X; X may be -inf (bans the token) */
static pl_logit_bias parse_bias(const char *opt, const char *s) {
    char *end;
    errno = 0;
    long id = strtol(s, &end, 10);
    if (end == s || errno || id < 0 || id > INT32_MAX || (*end != '=' && *end != '+' && *end != '-'))
        die_usage("%s expects ID=VALUE, got '%s'", opt, s);
    const char *v = end + (*end == '=');
    float b;
    if (!strcmp(v, "-inf") || !strcmp(v, "-INF")) b = -INFINITY;
    else {
        double d = strtod(v, &end);
        if (!*v || *end || d != d) die_usage("%s expects ID=VALUE, got '%s'", opt, s);
        if (!(fabs(d) <= 1e4)) die_usage("%s %s: the value is out of range [-10000, 10000] (or -inf)", opt, s);
        b = (float)d;
    }
    return (pl_logit_bias){(int32_t)id, b};
}

static void parse_args(options *o, int argc, char **argv) {
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
#define VALUE() (i + 1 < argc ? argv[++i] : (die_usage("%s needs a value", a), ""))
        if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
            fputs(usage_text, stdout);
            EXIT_PARSE(0);
        } else if (!strcmp(a, "--version")) {
            printf("picolm %s (kernels: %s)\n", PICOLM_VERSION, pl_cpu_level());
            EXIT_PARSE(0);
        } else if (!strcmp(a, "-p") || !strcmp(a, "--prompt")) o->prompt = VALUE();
        else if (!strcmp(a, "-f") || !strcmp(a, "--file")) o->file = VALUE();
        else if (!strcmp(a, "-m") || !strcmp(a, "--model")) {
            const char *v = VALUE();
            if (o->model) die_usage("two models given ('%s' and '%s')", o->model, v);
            o->model = v;
        } else if (!strcmp(a, "-i") || !strcmp(a, "--interactive")) o->interactive = 1;
        else if (!strcmp(a, "-n") || !strcmp(a, "--n-predict") || !strcmp(a, "--predict"))
            o->n_predict = parse_int(a, VALUE(), -1, INT_MAX);
        else if (!strcmp(a, "-t") || !strcmp(a, "--temp")) {
            o->temp = parse_float(a, VALUE(), 0.0f, 100.0f);
            o->temp_hint = a[1] == 't' && o->temp > 2; /* llama.cpp's -t is the threads */
        } else if (!strcmp(a, "-k") || !strcmp(a, "--top-p")) {
            o->top_p = parse_float(a, VALUE(), 0.0f, 1.0f);
            if (o->top_p == 0) o->top_p = 1; /* 0 is off, as PicoLM took it */
        } else if (!strcmp(a, "--top-k")) o->top_k = parse_int(a, VALUE(), 0, INT_MAX);
        else if (!strcmp(a, "--min-p")) o->min_p = parse_float(a, VALUE(), 0.0f, 1.0f);
        else if (!strcmp(a, "--repeat-penalty")) o->repeat_penalty = parse_float(a, VALUE(), 0.0f, 100.0f);
        else if (!strcmp(a, "--repeat-last-n")) o->repeat_last_n = parse_int(a, VALUE(), -1, 32768);
        else if (!strcmp(a, "--presence-penalty")) o->presence_penalty = parse_float(a, VALUE(), -100.0f, 100.0f);
        else if (!strcmp(a, "--frequency-penalty")) o->frequency_penalty = parse_float(a, VALUE(), -100.0f, 100.0f);
        else if (!strcmp(a, "--logit-bias")) {
            pl_logit_bias b = parse_bias(a, VALUE());
            if (o->n_bias == MAX_STOP) die_usage("--logit-bias given more than %d times", MAX_STOP);
            o->bias[o->n_bias++] = b;
        } else if (!strcmp(a, "--stop")) {
            const char *v = VALUE();
            size_t n = strlen(v);
            if (n == 0 || n > 512) die_usage("--stop expects a text of 1 to 512 bytes, got %zu", n);
            if (o->n_stop == MAX_STOP) die_usage("--stop given more than %d times", MAX_STOP);
            o->stop[o->n_stop++] = v;
        } else if (!strcmp(a, "--lookup")) o->lookup = parse_int(a, VALUE(), 0, 16);
        else if (!strcmp(a, "--draft") || !strcmp(a, "-md") || !strcmp(a, "--model-draft")) o->draft = VALUE();
        else if (!strcmp(a, "--draft-max")) o->draft_max = parse_int(a, VALUE(), 1, 16);
        else if (!strcmp(a, "-s") || !strcmp(a, "--seed")) o->seed = parse_seed(a, VALUE());
        else if (!strcmp(a, "-c") || !strcmp(a, "--ctx-size")) o->n_ctx = parse_int(a, VALUE(), 0, 1 << 20);
        else if (!strcmp(a, "-j") || !strcmp(a, "--threads")) o->n_threads = parse_int(a, VALUE(), 0, 1024);
        else if (!strcmp(a, "-b") || !strcmp(a, "--batch")) o->n_batch = parse_int(a, VALUE(), 1, 512);
        else if (!strcmp(a, "--no-bos")) o->no_bos = 1;
        else if (!strcmp(a, "--no-special")) o->no_special = 1;
        else if (!strcmp(a, "--keep")) o->keep = parse_int(a, VALUE(), 0, 1 << 20);
        else if (!strcmp(a, "--no-context-shift")) o->no_shift = 1;
        else if (!strcmp(a, "--mem-budget")) o->mem_budget = parse_int(a, VALUE(), -1, 1 << 24);
        else if (!strcmp(a, "--prompt-ids")) o->prompt_ids = VALUE();
        else if (!strcmp(a, "--tokenize")) o->tokenize = 1;
        else if (!strcmp(a, "--dump-logits")) o->dump_logits = VALUE();
        else if (!strcmp(a, "-q") || !strcmp(a, "--quiet")) o->quiet = 1;
        else if (!strcmp(a, "--chat")) o->chat = 1;
        else if (!strcmp(a, "--system")) o->system = VALUE(), o->chat = 1;
        else if (!strcmp(a, "--chat-template")) o->chat_template = VALUE(), o->chat = 1;
        else if (!strcmp(a, "--cache")) o->cache = VALUE();
        else if (!strcmp(a, "--kv")) {
            const char *v = VALUE();
            if (!strcmp(v, "q8")) o->kv_q8 = 1;
            else if (!strcmp(v, "f16")) o->kv_q8 = 0;
            else die_usage("--kv expects f16 or q8, got '%s'", v);
        }
        else if (!strcmp(a, "--json")) o->json = 1;
        else if (!strcmp(a, "--info")) o->info = 1;
        else if (!strcmp(a, "--grammar")) o->grammar = VALUE();
        else if (!strcmp(a, "--json-schema")) o->schema = VALUE();
        else if (a[0] == '-' && a[1]) die_usage("unknown option %s", a);
        else if (!o->model) o->model = a;
        else die_usage("unexpected argument '%s'", a);
#undef VALUE
    }
    if (!o->model) die_usage("no model given");
    if ((o->prompt != NULL) + (o->prompt_ids != NULL) + (o->file != NULL) > 1)
        die_usage("-p, -f and --prompt-ids are exclusive");
    if (o->dump_logits && o->n_predict != 0) die_usage("--dump-logits needs -n 0");
    if (o->chat && o->prompt_ids) die_usage("--chat formats text; it cannot take --prompt-ids");
    if (o->info && (o->interactive || o->grammar || o->schema))
        die_usage("--info runs nothing; it cannot take %s", o->interactive ? "-i" : o->grammar ? "--grammar" : "--json-schema");
    if ((o->json != 0) + (o->grammar != NULL) + (o->schema != NULL) > 1)
        die_usage("--json, --grammar and --json-schema are exclusive");
    if (o->draft_max && !o->draft) die_usage("--draft-max needs --draft");
    if (o->draft && (o->lookup || o->interactive || o->info))
        die_usage("--draft cannot take %s", o->lookup ? "--lookup" : o->interactive ? "-i" : "--info");
    if (o->interactive) {
        const char *no = o->prompt ? "-p" : o->file ? "-f" : o->prompt_ids ? "--prompt-ids" : o->tokenize ? "--tokenize"
                       : o->dump_logits ? "--dump-logits" : o->cache ? "--cache" : NULL;
        if (no) die_usage("-i is a chat on standard input; it cannot take %s", no);
    }
}

static char *read_stdin(size_t *len) {
#ifdef _WIN32
    _setmode(_fileno(stdin), _O_BINARY);
#endif
    size_t cap = 4096, n = 0;
    char *buf = malloc(cap);
    if (!buf) return NULL;
    for (;;) {
        if (n + 1 >= cap) {
            char *nb = realloc(buf, cap *= 2);
            if (!nb) {
                free(buf);
                return NULL;
            }
            buf = nb;
        }
        size_t r = fread(buf + n, 1, cap - n, stdin);
        n += r;
        /* not another fread after the end: at a terminal it waited for a second Ctrl-D */
        if (r == 0 || feof(stdin) || ferror(stdin)) break;
    }
    *len = n;
    return buf;
}

static char *read_file(const char *path, size_t *len) {
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    size_t cap = 4096, n = 0;
    char *buf = malloc(cap);
    while (buf) {
        if (n + 1 >= cap) {
            char *nb = realloc(buf, cap *= 2);
            if (!nb) {
                free(buf);
                buf = NULL;
                break;
            }
            buf = nb;
        }
        size_t r = fread(buf + n, 1, cap - n - 1, f);
        n += r;
        if (r == 0) break;
    }
    fclose(f);
    if (buf) buf[n] = 0;
    *len = n;
    return buf;
}

/* "1 2 3" -> ids; returns the count or -1 on a malformed list. */
static int parse_ids(const char *s, int32_t *out, int max, int n_vocab) {
    int n = 0;
    while (*s) {
        while (*s == ' ' || *s == ',' || *s == '\t' || *s == '\n') s++;
        if (!*s) break;
        char *end;
        errno = 0;
        long v = strtol(s, &end, 10);
        if (end == s || errno || v < 0 || v >= n_vocab) return -1;
        if (n < max) out[n] = (int32_t)v;
        n++;
        s = end;
    }
    return n;
}

/* Special-token text is parsed in a raw prompt (unless --no-special) and in
 * a chat prompt only outside the message contents spans[0 .. 2 n_spans). */
static int tokenize_prompt(const pl_model *m, const char *text, size_t len, int add_bos, int special,
                           const size_t *spans, int n_spans, int32_t *out, int max) {
    if (n_spans) return pl_tokenize_spans(m, text, len, add_bos, spans, n_spans, out, max);
    return pl_tokenize(m, text, len, add_bos, special, out, max);
}

/* The index of the first NaN or Inf, or -1. */
static int first_nonfinite(const float *x, int n) {
    for (int i = 0; i < n; i++)
        if (!isfinite(x[i])) return i;
    return -1;
}

static void fail(const char *fmt, ...) {
    va_list ap;
    fprintf(stderr, "picolm: ");
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
    exit(1);
}

/* --chat-template, else the model's, else (Phi-2 files carry none) its
 * model card's format, else TinyLlama's. */
static const char *chat_template(const options *o, const pl_model *model) {
    const char *tmpl = o->chat_template ? o->chat_template : pl_chat_template_detect(model);
    if (!tmpl) {
        const char *arch = pl_model_get_info(model)->arch;
        tmpl = arch && !strcmp(arch, "phi2") ? "phi2" : "zephyr";
        if (!o->quiet) fprintf(stderr, "picolm: the model has no chat template; using %s\n", tmpl);
    }
    return tmpl;
}

/* A JSON string: s[0..n) with quotes, backslashes and control bytes escaped. */
static void json_str(FILE *f, const char *s, size_t n) {
    fputc('"', f);
    for (size_t i = 0; i < n; i++) {
        unsigned char ch = (unsigned char)s[i];
        if (ch == '"' || ch == '\\') fprintf(f, "\\%c", ch);
        else if (ch < 0x20 || ch == 0x7f) fprintf(f, "\\u%04x", ch);
        else fputc(ch, f);
    }
    fputc('"', f);
}

/* A token's piece (for the special tokens): control tokens have no text. */
static const char *token_text(const pl_model *m, int32_t t, char *buf, size_t cap) {
    const char *p = pl_token_piece(m, t);
    snprintf(buf, cap, "%s", p ? p : "");
    return buf;
}

/* The prompt through pl_eval; at a terminal, a long one in chunks with a
 * progress line on stderr, erased at the end (the results are bit for bit
 * the same however the prompt is split: the batch-invariance contract). */
#define PREFILL_CHUNK 128
static int prefill(pl_context *ctx, const int32_t *ids, int n, int pos, float *logits, int all, int n_vocab,
                   int progress) {
    if (!progress || n <= 2 * PREFILL_CHUNK) return pl_eval(ctx, ids, n, pos, logits, all);
    double t0 = pl_time_sec();
    int width = 0;
    for (int i = 0; i < n; i += PREFILL_CHUNK) {
        int k = n - i < PREFILL_CHUNK ? n - i : PREFILL_CHUNK;
        float *out = all ? logits + (size_t)i * n_vocab : i + k == n ? logits : NULL;
        int rc = pl_eval(ctx, ids + i, k, pos + i, out, all);
        if (rc) {
            fprintf(stderr, "\r%*s\r", width, "");
            return rc;
        }
        double dt = pl_time_sec() - t0;
        char line[96];
        int w = snprintf(line, sizeof line, "prefill %d/%d tokens, %.0f tok/s", i + k, n, dt > 0 ? (i + k) / dt : 0.0);
        if (w > width) width = w;
        fprintf(stderr, "\r%-*s", width, line); /* padded over a longer line before */
    }
    fprintf(stderr, "\r%*s\r", width, ""); /* the answer starts on a clean line */
    return 0;
}

typedef struct {
    const char *type;
    int n;                /* tensors */
    uint64_t elems, bytes;
} type_share;

/* --info: what the file holds, and the memory a run with these options
 * would take (a context made and freed: the library's own sizes, its
 * buffers never touched). Text, or with --json one JSON object. */
static int print_info(const options *o, pl_model *model) {
    const pl_model_info *in = pl_model_get_info(model);
    const int json = o->json, nt = pl_model_n_tensors(model);
    /* tensor types by bytes, in order of appearance */
    enum { MAXT = 32 };
    type_share ty[MAXT];
    int n_ty = 0;
    uint64_t n_params = 0, n_bytes = 0;
    for (int i = 0; i < nt; i++) {
        pl_tensor_info t;
        if (pl_model_tensor(model, i, &t)) continue;
        n_params += t.n_elements, n_bytes += t.n_bytes;
        int k = 0;
        while (k < n_ty && strcmp(ty[k].type, t.type)) k++;
        if (k == n_ty) {
            if (n_ty == MAXT) continue;
            memset(&ty[n_ty], 0, sizeof ty[0]);
            ty[n_ty++].type = t.type;
        }
        ty[k].n++, ty[k].elems += t.n_elements, ty[k].bytes += t.n_bytes;
    }
    for (int a = 1; a < n_ty; a++) /* the biggest share first */
        for (int b = a; b > 0 && ty[b].bytes > ty[b - 1].bytes; b--) {
            type_share tmp = ty[b];
            ty[b] = ty[b - 1], ty[b - 1] = tmp;
        }
    /* the memory of a run: what pl_context_new allocates at -c, --kv, -j */
    char err[512] = "";
    pl_mem_stats ms = {0};
    int n_ctx = 0, n_resident = 0, have_mem = 0;
    if (in->has_weights) {
        pl_context_params cp = {o->n_ctx, o->n_threads, o->mem_budget, o->kv_q8, 1, o->n_batch};
        pl_context *ctx;
        if (pl_context_new(&ctx, model, &cp, err, sizeof err) == 0) {
            pl_context_mem(ctx, &ms);
            n_ctx = pl_context_n_ctx(ctx), n_resident = pl_context_resident_layers(ctx), have_mem = 1;
            pl_context_free(ctx);
        }
    }
    const char *tmpl = pl_chat_template_detect(model), *arch = in->arch ? in->arch : "none (vocab only)";
    int32_t bos = pl_token_bos(model), eos = pl_token_eos(model);
    char tb[256];
    FILE *f = stdout;
    if (json) {
        fputs("{\"file\": ", f);
        json_str(f, o->model, strlen(o->model));
        fputs(", \"architecture\": ", f);
        if (in->arch) json_str(f, in->arch, strlen(in->arch));
        else fputs("null", f);
        fprintf(f, ", \"n_layer\": %d, \"n_embd\": %d, \"n_ff\": %d, \"n_head\": %d, \"n_head_kv\": %d, \"head_dim\": %d, "
                   "\"n_rot\": %d, \"rope_base\": %g, \"norm_eps\": %g, \"tied_output\": %s, \"n_ctx_train\": %d",
                in->n_layer, in->n_embd, in->n_ff, in->n_head, in->n_head_kv, in->head_dim, in->n_rot, in->rope_base,
                in->rms_eps, in->tied_output ? "true" : "false", in->n_ctx_train);
        fprintf(f, ", \"parameters\": %llu, \"tensor_bytes\": %llu, \"n_tensors\": %d, \"tensor_types\": [",
                (unsigned long long)n_params, (unsigned long long)n_bytes, nt);
        for (int k = 0; k < n_ty; k++)
            fprintf(f, "%s{\"type\": \"%s\", \"tensors\": %d, \"elements\": %llu, \"bytes\": %llu, \"share\": %.4f}",
                    k ? ", " : "", ty[k].type, ty[k].n, (unsigned long long)ty[k].elems,
                    (unsigned long long)ty[k].bytes, n_bytes ? (double)ty[k].bytes / n_bytes : 0.0);
        fprintf(f, "], \"vocab\": {\"kind\": \"%s\", \"pre\": ", pl_vocab_kind(model));
        json_str(f, pl_vocab_pre(model), strlen(pl_vocab_pre(model)));
        fprintf(f, ", \"size\": %d, \"add_bos\": %s}, \"special_tokens\": {", in->n_vocab, pl_add_bos(model) ? "true" : "false");
        int first = 1;
        const char *names[2] = {"bos", "eos"};
        int32_t ids[2] = {bos, eos};
        for (int k = 0; k < 2; k++) {
            if (ids[k] < 0 || ids[k] >= in->n_vocab) continue;
            fprintf(f, "%s\"%s\": {\"id\": %d, \"text\": ", first ? "" : ", ", names[k], (int)ids[k]);
            token_text(model, ids[k], tb, sizeof tb);
            json_str(f, tb, strlen(tb));
            fputc('}', f);
            first = 0;
        }
        fprintf(f, "%s\"eog\": [", first ? "" : ", ");
        for (int t = 0, n = 0; t < in->n_vocab; t++)
            if (pl_token_is_eog(model, t)) {
                fprintf(f, "%s{\"id\": %d, \"text\": ", n++ ? ", " : "", t);
                token_text(model, t, tb, sizeof tb);
                json_str(f, tb, strlen(tb));
                fputc('}', f);
            }
        fputs("]}, \"chat_template\": ", f);
        if (tmpl) fprintf(f, "\"%s\"", tmpl);
        else fputs("null", f);
        if (have_mem)
            fprintf(f, ", \"memory\": {\"n_ctx\": %d, \"kv\": \"%s\", \"weights_bytes\": %llu, \"kv_bytes\": %llu, "
                       "\"state_bytes\": %llu, \"total_bytes\": %llu, \"resident_layers\": %d}",
                    n_ctx, o->kv_q8 ? "q8" : "f16", (unsigned long long)in->weight_bytes,
                    (unsigned long long)ms.kv_bytes, (unsigned long long)ms.state_bytes,
                    (unsigned long long)(in->weight_bytes + ms.kv_bytes + ms.state_bytes), n_resident);
        else if (in->has_weights) {
            fputs(", \"memory\": null, \"memory_error\": ", f);
            json_str(f, err, strlen(err));
        } else
            fputs(", \"memory\": null", f);
        fputs("}\n", f);
        return 0;
    }
    fprintf(f, "file:           %s\n", o->model);
    fprintf(f, "architecture:   %s\n", arch);
    if (in->has_weights) {
        fprintf(f, "shape:          %d layers, n_embd %d, n_ff %d, %d heads (%d KV, head_dim %d), n_rot %d, "
                   "rope base %g, norm eps %g%s\n",
                in->n_layer, in->n_embd, in->n_ff, in->n_head, in->n_head_kv, in->head_dim, in->n_rot, in->rope_base,
                in->rms_eps, in->tied_output ? ", output tied to token_embd" : "");
        fprintf(f, "parameters:     %.2f M in %d tensors, %.2f MB\n", n_params / 1e6, nt, n_bytes / 1e6);
        fprintf(f, "tensor types:  ");
        for (int k = 0; k < n_ty; k++)
            fprintf(f, "%s %s %.*f%% (%d %s)", k ? "," : "", ty[k].type, ty[k].bytes * 1000 < n_bytes ? 2 : 1,
                    n_bytes ? 100.0 * ty[k].bytes / n_bytes : 0.0, ty[k].n, ty[k].n > 1 ? "tensors" : "tensor");
        fputc('\n', f);
    }
    fprintf(f, "vocabulary:     %s (pre-tokenizer %s), %d tokens%s\n", pl_vocab_kind(model), pl_vocab_pre(model),
            in->n_vocab, pl_add_bos(model) ? ", BOS added" : "");
    fprintf(f, "special tokens:");
    if (bos >= 0 && bos < in->n_vocab) fprintf(f, " BOS %d %s,", (int)bos, token_text(model, bos, tb, sizeof tb));
    if (eos >= 0 && eos < in->n_vocab) fprintf(f, " EOS %d %s,", (int)eos, token_text(model, eos, tb, sizeof tb));
    fprintf(f, " end of generation:");
    for (int t = 0, n = 0; t < in->n_vocab; t++)
        if (pl_token_is_eog(model, t)) fprintf(f, "%s %d %s", n++ ? "," : "", t, token_text(model, t, tb, sizeof tb));
    fputc('\n', f);
    if (tmpl) fprintf(f, "chat template:  %s\n", tmpl);
    else fprintf(f, "chat template:  none in the file (--chat uses %s)\n", in->arch && !strcmp(in->arch, "phi2") ? "phi2" : "zephyr");
    if (in->has_weights) fprintf(f, "context:        %d trained\n", in->n_ctx_train);
    if (have_mem)
        fprintf(f, "memory:         at -c %d --kv %s: weights %.1f MB (mapped), KV cache %.1f MB, buffers %.1f MB; "
                   "total %.1f MB; %d/%d layers resident\n",
                n_ctx, o->kv_q8 ? "q8" : "f16", in->weight_bytes / 1e6, ms.kv_bytes / 1e6, ms.state_bytes / 1e6,
                (in->weight_bytes + ms.kv_bytes + ms.state_bytes) / 1e6, n_resident, in->n_layer);
    else if (in->has_weights)
        fprintf(f, "memory:         %s\n", err);
    return 0;
}

/* -i: Ctrl-C sets the flag the token loop checks; at the prompt, or a
 * second time before the answer stopped, it ends the program (from the
 * handler: whichever thread the signal lands on, nothing waits for it). */
static volatile sig_atomic_t g_stop, g_at_prompt;

static void on_sigint(int sig) {
#ifdef _WIN32
    signal(sig, on_sigint); /* Windows resets the handler on delivery */
#endif
    if (g_at_prompt || g_stop) {
        if (WRITE2("\n", 1) < 0) {}
        _Exit(130);
    }
    g_stop = 1;
}

static void set_sigint(void (*handler)(int)) {
#ifdef _WIN32
    signal(SIGINT, handler);
#else
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = handler;
    sa.sa_flags = SA_RESTART; /* the handler never needs a call interrupted */
    sigemptyset(&sa.sa_mask);
    sigaction(SIGINT, &sa, NULL);
#endif
}

typedef struct {
    char *buf;
    size_t n, cap, start; /* bytes held, buffer size, where the next line starts */
    int eof;
} line_reader;

/* The next line of fd 0 without its "\n" or "\r\n" (NUL-terminated, valid
 * until the next call), or NULL at the end. read(2), not stdio: an empty read
 * is the end at once, so one Ctrl-D at the start of a line ends (a stdio
 * loop reads again after a short read, and a terminal wants a second). A
 * last line without "\n" still counts. */
static char *read_line(line_reader *r, size_t *len) {
    for (size_t scan = r->start;;) {
        char *nl = r->n > scan ? memchr(r->buf + scan, '\n', r->n - scan) : NULL;
        if (nl || (r->eof && r->n > r->start)) {
            char *line = r->buf + r->start;
            size_t l = nl ? (size_t)(nl - line) : r->n - r->start;
            r->start += l + (nl != NULL);
            if (l && line[l - 1] == '\r') l--;
            line[l] = 0;
            *len = l;
            return line;
        }
        if (r->eof) return NULL;
        if (r->start) { /* the partial line to the front */
            memmove(r->buf, r->buf + r->start, r->n - r->start);
            r->n -= r->start;
            r->start = 0;
        }
        scan = r->n;
        if (r->cap - r->n < 1024) {
            char *nb = realloc(r->buf, r->cap = r->cap ? 2 * r->cap : 4096);
            if (!nb) fail("out of memory reading standard input");
            r->buf = nb;
        }
        long k = (long)READ0(r->buf + r->n, r->cap - r->n - 1); /* room for the NUL */
        if (k < 0 && errno == EINTR) continue;
        if (k < 0) fprintf(stderr, "picolm: standard input: %s\n", strerror(errno));
        if (k <= 0) r->eof = 1;
        else r->n += (size_t)k;
    }
}

/* Grows *p (of *cap elements of size sz) to hold n. */
static void *grow(void *p, size_t *cap, size_t n, size_t sz) {
    if (n <= *cap) return p;
    size_t c = *cap ? *cap : 16;
    while (c < n) c *= 2;
    void *q = realloc(p, c * sz);
    if (!q) fail("out of memory");
    *cap = c;
    return q;
}

/* Streams an answer's text to stdout and appends it to *ans (n bytes so far). */
static size_t emit(char **ans, size_t *cap, size_t n, const char *s, size_t len) {
    if (!len) return n;
    fwrite(s, 1, len, stdout);
    fflush(stdout);
    *ans = grow(*ans, cap, n + len + 1, 1);
    memcpy(*ans + n, s, len);
    return n + len;
}

static char *dup_n(const char *s, size_t n) {
    char *d = malloc(n + 1);
    if (!d) fail("out of memory");
    memcpy(d, s, n);
    d[n] = 0;
    return d;
}

/* The sampler and generation loop parameters from the options (one-shot
 * and -i alike). -n -1 runs until an end-of-generation token or the end of
 * the context: it never shifts. */
static void gen_setup(const options *o, pl_sampler_params *sp, pl_gen_params *gp) {
    *sp = pl_sampler_default_params();
    sp->temperature = o->temp, sp->top_p = o->top_p, sp->top_k = o->top_k, sp->seed = o->seed;
    sp->min_p = o->min_p;
    sp->repeat_penalty = o->repeat_penalty, sp->repeat_last_n = o->repeat_last_n;
    sp->presence_penalty = o->presence_penalty, sp->frequency_penalty = o->frequency_penalty;
    sp->logit_bias = o->bias, sp->n_logit_bias = o->n_bias;
    *gp = pl_gen_default_params();
    gp->n_predict = o->n_predict;
    gp->n_keep = o->keep;
    gp->no_context_shift = o->no_shift || o->n_predict < 0;
    gp->stop = o->stop, gp->n_stop = o->n_stop;
    gp->lookup = o->lookup;
}

/* ", lookup: D drafted, A accepted (P%)" for the statistics, "" without --lookup */
static const char *lookup_stats(const pl_gen *g, char *buf, size_t cap) {
    int d = 0, a = 0;
    pl_gen_draft_stats(g, &d, &a);
    snprintf(buf, cap, "; lookup: %d drafted, %d accepted (%.0f%%)", d, a, d ? 100.0 * a / d : 0.0);
    return buf;
}

/* -i: a chat on sequence 0. Each turn formats the whole conversation with
 * the template; pl_gen_prompt computes only what the KV cache does not hold
 * (the earlier turns format to the same text every time, so their tokens are
 * reused). When the conversation no longer fits the context (with room for
 * an answer of -n tokens, at most half of it) the oldest exchanges go; the
 * system message stays. */
static int interactive(const options *o, pl_model *model, pl_grammar *gram, double t_load) {
    const pl_model_info *info = pl_model_get_info(model);
    const char *tmpl = chat_template(o, model);
    const int tty = is_terminal(0), add_bos = !o->no_bos && pl_add_bos(model);
    char err[512];
    pl_context_params cp = {o->n_ctx, o->n_threads, o->mem_budget, o->kv_q8, 1, o->n_batch};
    pl_context *ctx;
    if (pl_context_new(&ctx, model, &cp, err, sizeof err)) fail("%s", err);
    const int n_ctx = pl_context_n_ctx(ctx);
    const int room = o->n_predict >= 0 && o->n_predict < n_ctx / 2 ? o->n_predict : n_ctx / 2;
    pl_sampler_params sp;
    pl_gen_params gp;
    gen_setup(o, &sp, &gp);
    pl_sampler *smp;
    if (pl_sampler_new(&smp, &sp, info->n_vocab)) fail("bad sampling parameters");
    float *logits = malloc((size_t)info->n_vocab * sizeof(float));
    if (!logits) fail("out of memory");

    pl_chat_msg *msgs = NULL, *view = NULL; /* msgs' contents are ours (malloc); view: what is formatted */
    size_t cap_msgs = 0, cap_view = 0, cap_text = 0, cap_spans = 0, cap_ids = 0, cap_ans = 0, cap_in = 0;
    int n_msgs = 0;
    if (o->system && o->system[0]) {
        msgs = grow(msgs, &cap_msgs, 1, sizeof *msgs);
        msgs[n_msgs++] = (pl_chat_msg){"system", dup_n(o->system, strlen(o->system))};
    }
    const int n_fixed = n_msgs;
    char *text = NULL, *ans = NULL, *in = NULL, out[1024];
    size_t *spans = NULL;
    int32_t *ids = NULL;
    line_reader lr = {0};
    int turn = 0, n_gen_all = 0;
    double t_gen_all = 0;
    set_sigint(on_sigint);
    for (;;) {
        /* the message: a line, and the next ones while a line ends with a backslash */
        size_t n_in = 0, len;
        char *line;
        int more = 1;
        g_at_prompt = 1;
        if (tty) fputs("> ", stderr);
        while (more && (line = read_line(&lr, &len))) {
            if ((more = len && line[len - 1] == '\\')) line[len - 1] = '\n';
            in = grow(in, &cap_in, n_in + len + 1, 1);
            memcpy(in + n_in, line, len);
            n_in += len;
            if (more && tty) fputs(". ", stderr);
        }
        g_at_prompt = 0;
        if (!n_in && lr.eof) break;
        if (!n_in) continue;
        in[n_in] = 0;
        if (memchr(in, 0, n_in)) {
            fprintf(stderr, "picolm: the message holds a NUL byte; skipped\n");
            continue;
        }
        msgs = grow(msgs, &cap_msgs, (size_t)n_msgs + 2, sizeof *msgs);
        msgs[n_msgs++] = (pl_chat_msg){"user", dup_n(in, n_in)};

        /* the conversation without its oldest `drop` exchanges (user message
         * and answer), fewer while it fits: as few as leave room for an answer */
        int n_ids, drop = 0, n_view;
        for (;;) {
            n_view = n_msgs - 2 * drop;
            view = grow(view, &cap_view, (size_t)n_view, sizeof *view);
            memcpy(view, msgs, (size_t)n_fixed * sizeof *view);
            memcpy(view + n_fixed, msgs + n_fixed + 2 * drop, (size_t)(n_view - n_fixed) * sizeof *view);
            int need = pl_chat_format_msgs(tmpl, view, n_view, 1, NULL, 0, NULL);
            if (need < 0) fail("the %s template cannot format this conversation", tmpl);
            text = grow(text, &cap_text, (size_t)need + 1, 1);
            spans = grow(spans, &cap_spans, 2 * (size_t)n_view, sizeof *spans);
            pl_chat_format_msgs(tmpl, view, n_view, 1, text, (size_t)need + 1, spans);
            ids = grow(ids, &cap_ids, (size_t)need + 2, sizeof *ids);
            n_ids = pl_tokenize_spans(model, text, (size_t)need, add_bos, spans, n_view, ids, (int)cap_ids);
            if (n_ids > (int)cap_ids) { /* cannot happen for SentencePiece, but the API allows it */
                ids = grow(ids, &cap_ids, (size_t)n_ids, sizeof *ids);
                n_ids = pl_tokenize_spans(model, text, (size_t)need, add_bos, spans, n_view, ids, (int)cap_ids);
            }
            if (n_ids < 0 || n_ids > (int)cap_ids) fail("tokenization failed");
            if (n_ids + room <= n_ctx || n_view - n_fixed < 3) break;
            drop++;
        }
        if (n_ids > n_ctx) { /* the message alone is too long: the conversation stays as it was */
            fprintf(stderr, "picolm: this message makes a prompt of %d tokens, longer than the context of %d "
                            "(raise -c); skipped\n", n_ids, n_ctx);
            free((char *)msgs[--n_msgs].content);
            continue;
        }
        if (drop) {
            fprintf(stderr, "picolm: the conversation outgrew the context of %d tokens: dropped the oldest %d %s\n",
                    n_ctx, drop, drop > 1 ? "exchanges" : "exchange");
            for (int i = n_fixed; i < n_fixed + 2 * drop; i++) free((char *)msgs[i].content);
            memcpy(msgs, view, (size_t)n_view * sizeof *msgs);
            n_msgs = n_view;
        }

        /* the answer: the one-shot loop, stopped by Ctrl-C too; what came
         * stays in the conversation */
        g_stop = 0;
        turn++;
        pl_gen *gen;
        if (pl_gen_new(&gen, ctx, 0, smp, &gp, err, sizeof err)) fail("%s", err);
        if (gram) {
            pl_grammar_reset(gram);
            pl_gen_set_grammar(gen, gram);
        }
        int n_reused = 0, st = PL_GEN_RUNNING, rc;
        double t1 = pl_time_sec();
        if ((rc = pl_gen_prompt(gen, ids, n_ids, logits, &n_reused))) fail("evaluation failed (%d)", rc);
        double t2 = pl_time_sec();
        size_t n_ans = 0, nout;
        while (!g_stop) {
            st = pl_gen_sample(gen, logits, out, sizeof out, &nout);
            n_ans = emit(&ans, &cap_ans, n_ans, out, nout);
            if (st != PL_GEN_RUNNING) break;
            if (pl_gen_next(gen, logits)) {
                st = pl_gen_status(gen);
                break;
            }
        }
        while ((nout = pl_gen_flush(gen, out, sizeof out)) > 0) n_ans = emit(&ans, &cap_ans, n_ans, out, nout);
        fputc('\n', stdout);
        fflush(stdout);
        if (st == PL_GEN_ERROR) {
            const char *e = pl_gen_error(gen);
            fail(strstr(e, "grammar") ? "%s; output stopped" : "%s", e);
        }
        int n_gen = pl_gen_n_generated(gen);
        double t_gen = pl_time_sec() - t2;
        n_gen_all += n_gen, t_gen_all += t_gen;
        if (gram && !g_stop && !pl_grammar_is_complete(gram))
            fprintf(stderr, "picolm: warning: the answer does not complete the grammar (context full or -n too small)\n");
        if (st == PL_GEN_CTX_FULL) fprintf(stderr, "picolm: context full (%d tokens); answer stopped\n", n_ctx);
        char lk[96];
        if (!o->quiet)
            fprintf(stderr, "[picolm] turn %d: prompt %d tokens, reused %d, %.2f tok/s; generated %d tokens, %.2f tok/s%s%s\n",
                    turn, n_ids, n_reused, t2 > t1 ? (n_ids - n_reused) / (t2 - t1) : 0.0, n_gen,
                    t_gen > 0 && n_gen > 1 ? (n_gen - 1) / t_gen : 0.0, o->lookup ? lookup_stats(gen, lk, sizeof lk) : "",
                    g_stop ? " (interrupted)" : "");
        pl_gen_free(gen);
        msgs[n_msgs++] = (pl_chat_msg){"assistant", dup_n(ans ? ans : "", n_ans)};
    }
    set_sigint(SIG_DFL);
    if (tty) fputc('\n', stderr);
    if (!o->quiet) {
        pl_mem_stats ms;
        pl_context_mem(ctx, &ms);
        fprintf(stderr,
                "[picolm] model %s %s, %d layers, kernels %s, %d threads, load %.0f ms; %d turns, %d tokens "
                "generated, %.2f tok/s\n[picolm] memory: KV cache %.2f MB (ctx %d), peak RSS %.1f MB\n",
                info->ftype, o->model, info->n_layer, pl_cpu_level(), cp.n_threads ? cp.n_threads : pl_num_cores(),
                t_load * 1e3, turn, n_gen_all, t_gen_all > 0 ? n_gen_all / t_gen_all : 0.0, ms.kv_bytes / 1e6, n_ctx,
                ms.peak_rss / 1e6);
    }
    for (int i = 0; i < n_msgs; i++) free((char *)msgs[i].content);
    free(msgs), free(view), free(text), free(spans), free(ids), free(ans), free(in), free(lr.buf), free(logits);
    pl_sampler_free(smp);
    pl_context_free(ctx);
    return 0;
}

int main(int argc, char **argv) {
    options o;
    options_default(&o);
    parse_args(&o, argc, argv);
    if (o.temp_hint) fprintf(stderr, "picolm: -t %g is the temperature here; did you mean -j for threads?\n", o.temp);
    /* no prompt at a terminal: a chat (a pipe still gives one prompt) */
    if (!o.info && !o.prompt && !o.file && !o.prompt_ids && !o.tokenize && !o.dump_logits && !o.cache && is_terminal(0)) o.interactive = 1;
#ifdef _WIN32
    _setmode(_fileno(stdout), _O_BINARY);
#endif

    char err[512];
    double t0 = pl_time_sec();
    pl_model *model;
    if (pl_model_open(&model, o.model, err, sizeof err)) fail("%s", err);
    const pl_model_info *info = pl_model_get_info(model);
    double t_load = pl_time_sec() - t0;
    for (int i = 0; i < o.n_bias; i++)
        if (o.bias[i].token >= info->n_vocab)
            die_usage("--logit-bias: token %d is past the vocabulary (%d tokens)", (int)o.bias[i].token, info->n_vocab);

    if (o.info) {
        int rc = print_info(&o, model);
        pl_model_close(model);
        return rc;
    }

    /* a grammar constrains the output: compiled and bound to the vocabulary
     * before any work, so a bad grammar fails fast */
    pl_grammar *gram = NULL;
    pl_grammar_vocab *gvocab = NULL;
    if (o.json || o.grammar || o.schema) {
        int grc;
        if (o.json) {
            grc = pl_grammar_new_json(&gram, 0, err, sizeof err);
        } else {
            const char *path = o.grammar ? o.grammar : o.schema;
            size_t glen;
            char *gtext = read_file(path, &glen);
            if (!gtext) fail("%s: %s", path, strerror(errno));
            grc = o.grammar ? pl_grammar_new_gbnf(&gram, gtext, glen, err, sizeof err)
                            : pl_grammar_new_json_schema(&gram, gtext, glen, err, sizeof err);
            free(gtext);
            if (grc) fail("%s: %s", path, err);
        }
        if (grc) fail("%s", err);
        if (pl_grammar_vocab_from_model(&gvocab, model, err, sizeof err) || pl_grammar_bind(gram, gvocab))
            fail("grammar: %s", err[0] ? err : "cannot bind to the vocabulary");
    }

    if (o.interactive) {
        int rc = interactive(&o, model, gram, t_load);
        pl_grammar_free(gram);
        pl_grammar_vocab_free(gvocab);
        pl_model_close(model);
        return rc;
    }

    /* the prompt as tokens */
    size_t chat_sys_bytes = 0, spans[4];
    int n_spans = 0; /* the chat messages' content spans (none for a raw prompt) */
    const char *stop_text = NULL;
    int32_t *ids = NULL;
    int n_ids = 0;
    if (o.prompt_ids) {
        n_ids = parse_ids(o.prompt_ids, NULL, 0, info->n_vocab);
        if (n_ids < 0) die_usage("--prompt-ids: bad id list (ids are integers in [0, %d))", info->n_vocab);
        ids = malloc(((size_t)n_ids + 1) * sizeof *ids);
        if (!ids) fail("out of memory");
        parse_ids(o.prompt_ids, ids, n_ids, info->n_vocab);
    } else {
        size_t len;
        char *text;
        if (o.prompt) {
            len = strlen(o.prompt);
            text = (char *)o.prompt;
        } else if (o.file) {
            text = read_file(o.file, &len);
            if (!text) fail("%s: %s", o.file, strerror(errno));
        } else {
            text = read_stdin(&len);
            if (!text) fail("out of memory reading standard input");
        }
        if (len == 0 && !o.tokenize) fail("empty prompt (give one with -p or on standard input)");
        /* a NUL byte is refused, raw or chat alike: the chat formatter would
         * silently drop what follows it, and -p cannot carry one anyway */
        const char *nul = memchr(text, 0, len);
        if (nul) fail("the prompt holds a NUL byte (at byte %zu); text prompts cannot contain NUL", (size_t)(nul - text));
        if (o.chat) { /* the text is a user message: wrap it in the model's template */
            const char *tmpl = chat_template(&o, model);
            text[len] = 0; /* read_stdin leaves room; -p is NUL-terminated */
            size_t n_sys = 0;
            int need = pl_chat_format(tmpl, o.system, text, NULL, 0, &n_sys);
            if (need < 0) die_usage("unknown chat template '%s' (known: %s)", tmpl, pl_chat_template_list());
            char *chat = malloc((size_t)need + 1);
            if (!chat) fail("out of memory");
            /* the same text through the conversation formatter, which says
             * where each message's content lies: special-token text there is
             * the user's, never a turn boundary (a "</s>" or "<|im_end|>" in
             * a message must not close it and forge the next turn) */
            pl_chat_msg msgs[2];
            n_spans = 0;
            if (o.system && o.system[0]) msgs[n_spans++] = (pl_chat_msg){"system", o.system};
            msgs[n_spans++] = (pl_chat_msg){"user", text};
            if (pl_chat_format_msgs(tmpl, msgs, n_spans, 1, chat, (size_t)need + 1, spans) != need)
                fail("the %s template cannot format this conversation", tmpl);
            if (text != o.prompt) free(text);
            text = chat;
            len = (size_t)need;
            chat_sys_bytes = n_sys;
            stop_text = pl_chat_template_stop(tmpl);
        }
        int add_bos = !o.no_bos && pl_add_bos(model);
        int cap = (int)(len < (size_t)INT_MAX / 2 ? len : (size_t)INT_MAX / 2) + 2;
        ids = malloc((size_t)cap * sizeof *ids);
        if (!ids) fail("out of memory");
        n_ids = tokenize_prompt(model, text, len, add_bos, !o.no_special, spans, n_spans, ids, cap);
        if (n_ids > cap) { /* cannot happen for SentencePiece, but the API allows it */
            cap = n_ids;
            int32_t *bigger = realloc(ids, (size_t)cap * sizeof *ids);
            if (!bigger) fail("out of memory");
            ids = bigger;
            n_ids = tokenize_prompt(model, text, len, add_bos, !o.no_special, spans, n_spans, ids, cap);
        }
        if (n_ids < 0 || n_ids > cap) fail("tokenization failed");
        /* --keep by default covers BOS and the system part of a chat */
        if (chat_sys_bytes && o.keep < 0) {
            int32_t tmp[4096];
            size_t sys_spans[4];
            for (int i = 0; i < 2 * n_spans; i++)
                sys_spans[i] = spans[i] < chat_sys_bytes ? spans[i] : chat_sys_bytes;
            int ns = tokenize_prompt(model, text, chat_sys_bytes, add_bos, !o.no_special, sys_spans, n_spans, tmp, 4096);
            if (ns > 0 && ns <= n_ids) o.keep = ns;
        }
        if (text != o.prompt) free(text);
    }
    if (o.tokenize) {
        for (int i = 0; i < n_ids; i++) printf(i ? " %d" : "%d", ids[i]);
        printf("\n");
        free(ids);
        pl_model_close(model);
        return 0;
    }
    if (n_ids == 0) fail("empty prompt");

    pl_context_params cp = {o.n_ctx, o.n_threads, o.mem_budget, o.kv_q8, 1, o.n_batch};
    pl_context *ctx;
    if (pl_context_new(&ctx, model, &cp, err, sizeof err)) fail("%s", err);
    int n_ctx = pl_context_n_ctx(ctx);
    if (n_ids > n_ctx)
        fail("the prompt is %d tokens, longer than the context of %d (raise -c)", n_ids, n_ctx);

    int n_vocab = info->n_vocab;
    float *logits = malloc((size_t)n_vocab * sizeof(float) * (o.dump_logits ? (size_t)n_ids : 1));
    if (!logits) fail("out of memory");

    double t1 = pl_time_sec();
    int n_cached = 0, rc;
    if (o.cache && !o.dump_logits) {
        if (pl_cache_load(ctx, o.cache, ids, n_ids, &n_cached, err, sizeof err) == 0) {
            if (!o.quiet) fprintf(stderr, "Skipping %d cached prompt tokens\n", n_cached);
        } else if (strncmp(err, "no cache file", 13)) { /* a warning: -q hides statistics, not these */
            fprintf(stderr, "picolm: warning: %s; running without it\n", err);
        }
    }
    rc = prefill(ctx, ids + n_cached, n_ids - n_cached, n_cached, logits, o.dump_logits != NULL, n_vocab,
                 !o.quiet && is_terminal(2));
    if (rc) fail("evaluation failed (%d)", rc);
    /* a state that gives NaN is not worth saving (a load would refuse it) */
    if (o.cache && !o.dump_logits && first_nonfinite(logits, n_vocab) >= 0)
        fail("the model produced NaN/Inf logits at position %d", n_ids - 1);
    if (o.cache && !o.dump_logits && pl_cache_save(ctx, o.cache, ids, n_ids, err, sizeof err))
        fprintf(stderr, "picolm: warning: %s\n", err);
    double t_prefill = pl_time_sec() - t1, t_first = pl_time_sec() - t0;

    if (o.dump_logits) {
        FILE *f = fopen(o.dump_logits, "wb");
        if (!f) fail("%s: %s", o.dump_logits, strerror(errno));
        size_t cnt = (size_t)n_ids * n_vocab;
        if (fwrite(logits, sizeof(float), cnt, f) != cnt || fclose(f)) fail("%s: write failed", o.dump_logits);
    }

    pl_sampler_params sp;
    pl_gen_params gp;
    gen_setup(&o, &sp, &gp);
    pl_sampler *smp;
    if (pl_sampler_new(&smp, &sp, n_vocab)) fail("bad sampling parameters");

    /* tokens kept at the front when the window slides: --keep, else BOS */
    int n_keep = o.keep >= 0 ? o.keep : (n_ids > 0 && ids[0] == pl_token_bos(model));
    if (n_keep > n_ctx / 2) n_keep = n_ctx / 2;

    /* generation: the library's loop (sampling, grammar, end-of-generation
     * tokens, the UTF-8 hold-back, the context shift), text to stdout as
     * it becomes safe to print */
    gp.n_keep = n_keep;
    pl_gen *gen;
    if (pl_gen_new(&gen, ctx, 0, smp, &gp, err, sizeof err)) fail("%s", err);
    if (gram) pl_gen_set_grammar(gen, gram);
    pl_model *dmodel = NULL;
    pl_context *dctx = NULL;
    if (o.draft) { /* the draft model: the same context length and threads (one shared pool) */
        if (pl_model_open(&dmodel, o.draft, err, sizeof err)) fail("--draft: %s", err);
        pl_context_params dp = {n_ctx, o.n_threads, -1, o.kv_q8, 1, o.n_batch};
        if (pl_context_new(&dctx, dmodel, &dp, err, sizeof err)) fail("--draft: %s", err);
        int drc = pl_gen_set_draft(gen, dctx, 0, o.draft_max ? o.draft_max : 8);
        if (drc == PL_ERR_FORMAT) fail("--draft: %s has another vocabulary than %s", o.draft, o.model);
        if (drc) fail("--draft: %s", pl_status_str(drc));
    }
    pl_gen_begin(gen, ids, n_ids);
    (void)stop_text; /* the family's end-of-turn token is one of the vocabulary's end-of-generation tokens */
    char out[1024];
    size_t nout;
    double t2 = pl_time_sec();
    unsigned long long io0 = pl_io_read_bytes();
    int st;
    while ((st = pl_gen_sample(gen, logits, out, sizeof out, &nout)) == PL_GEN_RUNNING) {
        if (nout) {
            fwrite(out, 1, nout, stdout);
            fflush(stdout);
        }
        if (pl_gen_next(gen, logits)) {
            st = pl_gen_status(gen);
            break;
        }
    }
    if (nout) fwrite(out, 1, nout, stdout);
    while ((nout = pl_gen_flush(gen, out, sizeof out)) > 0) fwrite(out, 1, nout, stdout);
    fflush(stdout);
    int n_gen = pl_gen_n_generated(gen), n_shifts = pl_gen_n_shifts(gen), ctx_full = st == PL_GEN_CTX_FULL;
    if (st == PL_GEN_ERROR) {
        const char *e = pl_gen_error(gen);
        if (strstr(e, "grammar")) fail("%s; output stopped", e);
        fail("%s", e);
    }
    double t_gen = pl_time_sec() - t2;
    unsigned long long io_gen = pl_io_read_bytes() - io0;

    if (gram && !pl_grammar_is_complete(gram))
        fprintf(stderr, "\npicolm: warning: the output does not complete the grammar (context full or -n too small)\n");
    if (ctx_full) fprintf(stderr, "\npicolm: context full (%d tokens); stopping (raise -c for more)\n", n_ctx);
    if (!o.quiet) {
        pl_mem_stats ms;
        pl_context_mem(ctx, &ms);
        int nt = cp.n_threads ? cp.n_threads : pl_num_cores();
        fprintf(stderr,
                "\n[picolm] model %s %s, %d layers, kernels %s, %d threads, load %.0f ms\n"
                "[picolm] prompt %d tokens, %.2f tok/s; generated %d tokens, %.2f tok/s; first token %.0f ms\n"
                "[picolm] memory: state %.2f MB, KV cache %.2f MB (ctx %d); private %.1f MB, model pages %.1f MB, "
                "peak RSS %.1f MB; %d/%d layers resident\n",
                info->ftype, o.model, info->n_layer, pl_cpu_level(), nt, t_load * 1e3, n_ids,
                t_prefill > 0 ? (n_ids - n_cached) / t_prefill : 0.0, n_gen, t_gen > 0 && n_gen > 1 ? (n_gen - 1) / t_gen : 0.0,
                t_first * 1e3, ms.state_bytes / 1e6, ms.kv_bytes / 1e6, n_ctx, ms.rss_anon / 1e6, ms.rss_file / 1e6,
                ms.peak_rss / 1e6, pl_context_resident_layers(ctx), info->n_layer);
        if (n_gen > 1)
            fprintf(stderr, "[picolm] disk reads during generation: %.1f MB per token\n",
                    io_gen / 1e6 / (n_gen - 1));
        if (n_shifts) fprintf(stderr, "[picolm] context shifted %d times (keeping %d tokens)\n", n_shifts, n_keep);
        char lk[96];
        if (o.lookup) fprintf(stderr, "[picolm] %s\n", lookup_stats(gen, lk, sizeof lk) + 2);
        if (o.draft) fprintf(stderr, "[picolm] draft model: %s\n", lookup_stats(gen, lk, sizeof lk) + 10);
    }
    pl_gen_free(gen);
    pl_context_free(dctx);
    pl_model_close(dmodel);
    pl_grammar_free(gram);
    pl_grammar_vocab_free(gvocab);
    pl_sampler_free(smp);
    free(logits);
    free(ids);
    pl_context_free(ctx);
    pl_model_close(model);
    return 0;
}
