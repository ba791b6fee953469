/* picolm-gen.c - writes random-weight LLaMA-architecture GGUF v3 files, and
 * re-quantizes existing ones (a minimal llama-quantize without imatrix).
 *
 * Weights are deterministic noise from --seed (each row seeded from the seed,
 * the tensor's name and the row index, so the same seed gives the same float
 * weights whatever the type, thread count or chunking). Rows are generated
 * and quantized a chunk at a time, split across threads, and streamed to
 * OUT.tmp, renamed to OUT when complete: memory stays at a few MB whatever
 * the model size. The tokenizer is either copied from a GGUF (--vocab) or a
 * synthesized SentencePiece-style vocabulary that tokenizes English into
 * word-sized pieces. This is a tool, not the library: it prints and exits
 * (2 on usage errors, 1 on runtime errors). Assumes a little-endian host. */
#ifndef _POSIX_C_SOURCE
#define _POSIX_C_SOURCE 200809L
#endif
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "gguf.h"
#include "quant.h"

#define ALIGNMENT 32
#define CHUNK_WEIGHTS (1 << 20) /* weights per chunk: ~4 MB of floats in flight */
#define MAX_THREADS 64
#define MAX_NAME 96

static const char *usage_text =
    "usage: picolm-gen OUT.gguf [options]\n"
    "       picolm-gen OUT.gguf --from IN.gguf --type T\n"
    "\n"
    "Writes a LLaMA-architecture GGUF v3 file with random weights, or (with\n"
    "--from) re-quantizes every 2-D weight of IN.gguf to T, keeping 1-D\n"
    "tensors in F32 and copying all metadata.\n"
    "\n"
    "  --preset P       tinyllama-1.1b | tiny | small (default tiny)\n"
    "  --type T         F32 F16 BF16 Q8_0 Q4_0 Q4_1 Q5_0 Q5_1 Q2_K Q3_K Q4_K Q5_K\n"
    "                   Q6_K Q4_K_M Q5_K_M (default Q8_0)\n"
    "  --seed N         random seed (default 1)\n"
    "  --n-embd N  --n-layer N  --n-ff N  --n-head N  --n-head-kv N\n"
    "  --n-vocab N  --ctx N  --rope-base F  --rms-eps F   override the preset\n"
    "  --vocab FILE     copy the tokenizer.* keys of FILE (sets n_vocab)\n"
    "  --tied           no output.weight: the output reuses token_embd\n"
    "  --from FILE      convert FILE instead of generating\n"
    "  -j N             threads (default: online cores)\n"
    "  -h, --help       this text\n";

/* ------------------------------------------------------------ utilities */

static char g_tmp_path[4096]; /* removed on a runtime error */

static void die_usage(const char *fmt, ...) {
    va_list ap;
    fprintf(stderr, "picolm-gen: ");
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fprintf(stderr, " (see picolm-gen --help)\n");
    exit(2);
}

static void die(const char *fmt, ...) {
    va_list ap;
    fprintf(stderr, "picolm-gen: ");
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fprintf(stderr, "\n");
    if (g_tmp_path[0]) remove(g_tmp_path);
    exit(1);
}

/* Ctrl-C / kill: drop the partial OUT.tmp (unlink and _exit are
 * async-signal-safe). */
static void on_signal(int sig) {
    if (g_tmp_path[0]) unlink(g_tmp_path);
    _exit(128 + sig);
}

static double now_s(void) {
    struct timespec ts;
    timespec_get(&ts, TIME_UTC);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static long parse_long(const char *opt, const char *s, long lo, long hi) {
    char *end;
    errno = 0;
    long v = strtol(s, &end, 10);
    if (!*s || *end || errno) die_usage("%s expects an integer, got '%s'", opt, s);
    if (v < lo || v > hi) die_usage("%s %ld is out of range [%ld, %ld]", opt, v, lo, hi);
    return v;
}

static float parse_float(const char *opt, const char *s, double lo, double hi) {
    char *end;
    errno = 0;
    double v = strtod(s, &end);
    if (!*s || *end || errno || v != v) die_usage("%s expects a number, got '%s'", opt, s);
    if (v < lo || v > hi) die_usage("%s %s is out of range [%g, %g]", opt, s, lo, hi);
    return (float)v;
}

/* A growable byte buffer: the header, metadata and tensor table are built
 * here before anything is written. */
typedef struct {
    uint8_t *p;
    size_t n, cap;
} bbuf;

static void bb_put(bbuf *b, const void *src, size_t n) {
    if (b->n + n > b->cap) {
        size_t cap = b->cap ? b->cap : 4096;
        while (cap < b->n + n) cap *= 2;
        uint8_t *np = realloc(b->p, cap);
        if (!np) die("out of memory");
        b->p = np;
        b->cap = cap;
    }
    memcpy(b->p + b->n, src, n);
    b->n += n;
}
static void bb_u32(bbuf *b, uint32_t v) { bb_put(b, &v, 4); }
static void bb_u64(bbuf *b, uint64_t v) { bb_put(b, &v, 8); }
static void bb_strn(bbuf *b, const char *s, size_t n) {
    bb_u64(b, n);
    bb_put(b, s, n);
}
static void bb_str(bbuf *b, const char *s) { bb_strn(b, s, strlen(s)); }

/* ------------------------------------------------------------ metadata */

typedef struct {
    bbuf b;
    uint64_t n_kv;
} kvw;

static void kv_key(kvw *w, const char *key, uint32_t type) {
    bb_str(&w->b, key);
    bb_u32(&w->b, type);
    w->n_kv++;
}
static void kv_u32(kvw *w, const char *key, uint32_t v) {
    kv_key(w, key, GGUF_UINT32);
    bb_u32(&w->b, v);
}
static void kv_f32(kvw *w, const char *key, float v) {
    kv_key(w, key, GGUF_FLOAT32);
    bb_put(&w->b, &v, 4);
}
static void kv_bool(kvw *w, const char *key, int v) {
    uint8_t u = v ? 1 : 0;
    kv_key(w, key, GGUF_BOOL);
    bb_put(&w->b, &u, 1);
}
static void kv_str(kvw *w, const char *key, const char *v) {
    kv_key(w, key, GGUF_STRING);
    bb_str(&w->b, v);
}
static void kv_arr(kvw *w, const char *key, uint32_t elem_type, uint64_t n) {
    kv_key(w, key, GGUF_ARRAY);
    bb_u32(&w->b, elem_type);
    bb_u64(&w->b, n);
}

static size_t scalar_size(uint32_t t) {
    switch (t) {
    case GGUF_UINT8: case GGUF_INT8: case GGUF_BOOL: return 1;
    case GGUF_UINT16: case GGUF_INT16: return 2;
    case GGUF_UINT32: case GGUF_INT32: case GGUF_FLOAT32: return 4;
    case GGUF_UINT64: case GGUF_INT64: case GGUF_FLOAT64: return 8;
    default: return 0;
    }
}

/* Bytes of a validated value starting at p (strings walked). 0: unsupported
 * (nested arrays). */
static size_t value_bytes(uint32_t type, const uint8_t *p, uint64_t n) {
    if (type != GGUF_STRING) return scalar_size(type) * (size_t)n;
    size_t off = 0;
    for (uint64_t i = 0; i < n; i++) {
        uint64_t len;
        memcpy(&len, p + off, 8);
        off += 8 + (size_t)len;
    }
    return off;
}

/* Copy one key/value pair of a parsed file verbatim. 0 if it was skipped. */
static int kv_copy(kvw *w, const gguf_kv *kv) {
    size_t n;
    if (kv->type == GGUF_ARRAY) {
        if (kv->arr_type == GGUF_ARRAY) return 0;
        n = value_bytes(kv->arr_type, kv->data, kv->arr_n);
        if (!n && kv->arr_n) return 0;
    } else {
        n = value_bytes(kv->type, kv->data, 1);
        if (!n) return 0;
    }
    bb_strn(&w->b, kv->key.ptr, (size_t)kv->key.len);
    bb_u32(&w->b, kv->type);
    if (kv->type == GGUF_ARRAY) {
        bb_u32(&w->b, kv->arr_type);
        bb_u64(&w->b, kv->arr_n);
    }
    bb_put(&w->b, kv->data, n);
    w->n_kv++;
    return 1;
}

static int key_is(const gguf_kv *kv, const char *s) { return gguf_str_eq(kv->key, s); }

/* ------------------------------------------------------------ types */

typedef struct {
    const char *name;
    uint32_t type;  /* the type of most 2-D tensors */
    int mixed;      /* Q4_K_M / Q5_K_M: some tensors Q6_K, as llama-quantize does */
    uint32_t ftype; /* general.file_type (llama_ftype) */
} ftype_info;

static const ftype_info ftypes[] = {
    {"F32", PL_TYPE_F32, 0, 0},     {"F16", PL_TYPE_F16, 0, 1},     {"BF16", PL_TYPE_BF16, 0, 32},
    {"Q8_0", PL_TYPE_Q8_0, 0, 7},   {"Q4_0", PL_TYPE_Q4_0, 0, 2},   {"Q4_1", PL_TYPE_Q4_1, 0, 3},
    {"Q5_0", PL_TYPE_Q5_0, 0, 8},   {"Q5_1", PL_TYPE_Q5_1, 0, 9},   {"Q2_K", PL_TYPE_Q2_K, 0, 10},
    {"Q3_K", PL_TYPE_Q3_K, 0, 12},  {"Q4_K", PL_TYPE_Q4_K, 0, 15},  {"Q5_K", PL_TYPE_Q5_K, 0, 17},
    {"Q6_K", PL_TYPE_Q6_K, 0, 18},  {"Q4_K_M", PL_TYPE_Q4_K, 1, 15}, {"Q5_K_M", PL_TYPE_Q5_K, 1, 17},
};

static const char *type_name(uint32_t t) {
    const pl_type_traits *tr = pl_type_traits_get(t);
    return tr ? tr->name : "?";
}

/* llama-quantize's use_more_bits: the first and last eighth of the layers
 * and every third one in between. */
static int use_more_bits(int i, int n) { return i < n / 8 || i >= 7 * n / 8 || (i - n / 8) % 3 == 2; }

static int is_k_type(uint32_t t) { return t >= PL_TYPE_Q2_K && t <= PL_TYPE_Q6_K; }

/* The type of 2-D tensor `name` with rows of ne0 weights. Falls back as
 * llama-quantize does when a K-quant does not fit the row (it uses IQ4_NL
 * for Q2_K/Q3_K, which we do not have: Q4_0 instead), then to F16. */
/* Fallbacks seen so far: each (tensor kind, wanted, used) is reported once,
 * not once per layer. */
typedef struct {
    char kind[32][MAX_NAME];
    uint32_t want[32], got[32];
    int n_kinds, n_tensors;
} fallback_log;

static uint32_t pick_type(const ftype_info *ft, const char *name, int64_t ne0, int n_layer,
                          int has_output, fallback_log *fb) {
    uint32_t t = ft->type;
    int il = -1;
    if (ft->mixed) {
        if (!strcmp(name, "output.weight") || (!has_output && !strcmp(name, "token_embd.weight")))
            t = PL_TYPE_Q6_K;
        else if (sscanf(name, "blk.%d.", &il) == 1 && (strstr(name, ".attn_v.") || strstr(name, ".ffn_down.")) &&
                 use_more_bits(il, n_layer))
            t = PL_TYPE_Q6_K;
    }
    const uint32_t want = t;
    if (is_k_type(t) && ne0 % QK_K) {
        t = t == PL_TYPE_Q4_K ? PL_TYPE_Q5_0 : t == PL_TYPE_Q5_K ? PL_TYPE_Q5_1
          : t == PL_TYPE_Q6_K ? PL_TYPE_Q8_0 : PL_TYPE_Q4_0;
    }
    if (pl_row_size(t, ne0) == 0) t = PL_TYPE_F16;
    if (t != want) {
        const char *kind = name;
        int pos = 0;
        if (sscanf(name, "blk.%*d.%n", &pos) == 0 && pos > 0) kind = name + pos;
        int k = 0;
        while (k < fb->n_kinds && !(fb->want[k] == want && fb->got[k] == t && !strcmp(fb->kind[k], kind))) k++;
        if (k == fb->n_kinds) {
            fprintf(stderr, "picolm-gen: %s%s: row length %lld does not fit %s, using %s (as llama-quantize does)\n",
                    kind == name ? "" : "blk.*.", kind, (long long)ne0, type_name(want), type_name(t));
            if (fb->n_kinds < 32) {
                snprintf(fb->kind[k], MAX_NAME, "%s", kind);
                fb->want[k] = want;
                fb->got[k] = t;
                fb->n_kinds++;
            }
        }
        fb->n_tensors++;
    }
    return t;
}

/* ------------------------------------------------------------ random weights */

static uint64_t splitmix64(uint64_t *s) {
    uint64_t z = (*s += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

static uint64_t fnv1a(const char *s) {
    uint64_t h = 0xcbf29ce484222325ull;
    for (; *s; s++) h = (h ^ (uint8_t)*s) * 0x100000001b3ull;
    return h;
}

/* n roughly Gaussian values with the given mean and standard deviation.
 * Each is the sum of the four 16-bit lanes of one xorshift64* draw (an
 * Irwin-Hall(4) variable: bell-shaped, tails cut at 3.46 sigma), which is
 * ~10x cheaper than Box-Muller and plenty for noise weights. */
static void gauss_row(uint64_t seed, int64_t n, float mean, float std, float *dst) {
    uint64_t x = splitmix64(&seed) | 1;
    const float scale = std * (1.7320508f / 65536.0f); /* 1/sigma of the sum = sqrt(3)/65536 */
    for (int64_t i = 0; i < n; i++) {
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        const uint64_t r = x * 0x2545f4914f6cdd1dull;
        const uint64_t a = (r & 0x0000ffff0000ffffull) + ((r >> 16) & 0x0000ffff0000ffffull);
        const uint32_t sum = (uint32_t)(a & 0xffffffffu) + (uint32_t)(a >> 32);
        dst[i] = mean + ((float)sum - 131070.0f) * scale;
    }
}

/* ------------------------------------------------------------ vocabulary */

#define SPM_SPACE "\xe2\x96\x81" /* U+2581, SentencePiece's word-start marker */

/* Common English words, most frequent first. */
static const char *common_words =
    "the of and to a in is it you that he was for on are with as I his they be at one have this "
    "from or had by not word but what some we can out other were all there when up use your how "
    "said an each she which do their time if will way about many then them write would like so "
    "these her long make thing see him two has look more day could go come did number sound no "
    "most people my over know water than call first who may down side been now find any new work "
    "part take get place made live where after back little only round man year came show every "
    "good me give our under name very through just form sentence great think say help low line "
    "differ turn cause much mean before move right boy old too same tell does set three want air "
    "well also play small end put home read hand port large spell add even land here must big high "
    "such follow act why ask men change went light kind off need house picture try us again animal "
    "point mother world near build self earth father head stand own page should country found "
    "answer school grow study still learn plant cover food sun four between state keep eye never "
    "last let thought city tree cross farm hard start might story saw far sea draw left late run "
    "while press close night real life few north open seem together next white children begin got "
    "walk example ease paper group always music those both mark often letter until mile river car "
    "feet care second book carry took science eat room friend began idea fish mountain stop once "
    "base hear horse cut sure watch color face wood main enough plain girl usual young ready above "
    "ever red list though feel talk bird soon body dog family direct pose leave song measure door "
    "product black short numeral class wind question happen complete ship area half rock order fire "
    "south problem piece told knew pass since top whole king space heard best hour better true "
    "during hundred five remember step early hold west ground interest reach fast verb sing listen "
    "six table travel less morning ten simple several vowel toward war lay against pattern slow "
    "center love person money serve appear road map rain rule govern pull cold notice voice unit "
    "power town fine certain fly fall lead cry dark machine note wait plan figure star box noun "
    "field rest correct able pound done beauty drive stood contain front teach week final gave "
    "green oh quick develop ocean warm free minute strong special mind behind clear tail produce "
    "fact street inch multiply nothing course stay wheel full force blue object decide surface "
    "deep moon island foot system busy test record boat common gold possible plane stead dry "
    "wonder laugh thousand ago ran check game shape equate hot miss brought heat snow tire bring "
    "yes distant fill east paint language among Hello hello once upon princess dragon castle";

static const char *suffixes = "ing ed er es ly tion ment ness able ous est al ity ive ful less s y en";

typedef struct {
    char **piece;
    int n, cap;
    uint32_t *set; /* open addressing: index+1, 0 = empty */
    uint32_t mask;
} vocab;

static uint32_t str_hash(const char *s) { return (uint32_t)(fnv1a(s) >> 17); }

static void vocab_add(vocab *v, const char *s) {
    if (v->n >= v->cap) return;
    uint32_t i = str_hash(s) & v->mask;
    for (; v->set[i]; i = (i + 1) & v->mask)
        if (!strcmp(v->piece[v->set[i] - 1], s)) return;
    char *c = malloc(strlen(s) + 1);
    if (!c) die("out of memory");
    strcpy(c, s);
    v->piece[v->n] = c;
    v->set[i] = (uint32_t)++v->n;
}

/* "▁" + word and all its prefixes (so the SPM merges can always build it:
 * the first two symbols of a word always form a piece). */
static void vocab_add_word(vocab *v, const char *prefix, const char *w, int capitalize) {
    char buf[64];
    size_t p = strlen(prefix), n = strlen(w);
    if (p + n >= sizeof buf) return;
    memcpy(buf, prefix, p);
    memcpy(buf + p, w, n + 1);
    if (capitalize && buf[p] >= 'a' && buf[p] <= 'z') buf[p] = (char)(buf[p] - 'a' + 'A');
    for (size_t k = p ? p + 1 : 1; k <= p + n; k++) {
        const char save = buf[k];
        buf[k] = 0;
        vocab_add(v, buf);
        buf[k] = save;
    }
}

static void vocab_add_list(vocab *v, const char *prefix, const char *list, int capitalize, int max_words) {
    char w[64];
    int count = 0;
    for (const char *s = list; *s && count < max_words;) {
        while (*s == ' ') s++;
        size_t n = strcspn(s, " ");
        if (n && n < sizeof w) {
            memcpy(w, s, n);
            w[n] = 0;
            vocab_add_word(v, prefix, w, capitalize);
            count++;
        }
        s += n;
    }
}

/* Llama-style SPM vocabulary: <unk> <s> </s>, the 256 byte tokens, then
 * pieces in decreasing score: characters, "▁x", common words with their
 * prefixes, capitalized words, suffixes, then letter pairs and triples
 * (with and without "▁") until n_vocab. */
static void synth_vocab(vocab *v, int n_vocab) {
    v->cap = n_vocab;
    v->piece = calloc((size_t)n_vocab, sizeof *v->piece);
    uint32_t size = 1024;
    while (size < 2u * (uint32_t)n_vocab) size *= 2;
    v->set = calloc(size, sizeof *v->set);
    v->mask = size - 1;
    if (!v->piece || !v->set) die("out of memory");
    vocab_add(v, "<unk>");
    vocab_add(v, "<s>");
    vocab_add(v, "</s>");
    char buf[32];
    for (int b = 0; b < 256; b++) {
        snprintf(buf, sizeof buf, "<0x%02X>", b);
        vocab_add(v, buf);
    }
    vocab_add(v, SPM_SPACE);
    const char *singles = "etaoinshrdlcumwfgypbvkjxqzETAOINSHRDLCUMWFGYPBVKJXQZ0123456789.,'\"-?!:;()/&%$#@*+=[]_<>";
    for (const char *s = singles; *s; s++) {
        buf[0] = *s;
        buf[1] = 0;
        vocab_add(v, buf);
    }
    for (const char *s = singles; *s && *s != '0'; s++) {
        snprintf(buf, sizeof buf, SPM_SPACE "%c", *s);
        vocab_add(v, buf);
    }
    vocab_add_list(v, SPM_SPACE, common_words, 0, 1 << 30);
    vocab_add_list(v, SPM_SPACE, common_words, 1, 150);
    vocab_add_list(v, "", suffixes, 0, 1 << 30);
    vocab_add_list(v, "", common_words, 0, 100); /* words inside compounds */
    /* letter n-grams in lexicographic order: "▁ab" "ab" ..., then length 3 ... */
    char s[16];
    for (int len = 2; len <= 6 && v->n < v->cap; len++) {
        int idx[8] = {0};
        for (;;) {
            for (int k = 0; k < len; k++) s[k] = (char)('a' + idx[k]);
            s[len] = 0;
            snprintf(buf, sizeof buf, SPM_SPACE "%s", s);
            vocab_add(v, buf);
            vocab_add(v, s);
            if (v->n >= v->cap) break;
            int k = len - 1;
            while (k >= 0 && ++idx[k] == 26) idx[k--] = 0;
            if (k < 0) break;
        }
    }
    if (v->n < v->cap) die("cannot synthesize %d distinct pieces", n_vocab);
}

static void write_vocab(kvw *w, const vocab *v) {
    kv_str(w, "tokenizer.ggml.model", "llama");
    kv_arr(w, "tokenizer.ggml.tokens", GGUF_STRING, (uint64_t)v->n);
    for (int i = 0; i < v->n; i++) bb_str(&w->b, v->piece[i]);
    kv_arr(w, "tokenizer.ggml.scores", GGUF_FLOAT32, (uint64_t)v->n);
    for (int i = 0; i < v->n; i++) {
        const float sc = i < 259 ? 0.0f : -(float)(i - 259);
        bb_put(&w->b, &sc, 4);
    }
    kv_arr(w, "tokenizer.ggml.token_type", GGUF_INT32, (uint64_t)v->n);
    for (int i = 0; i < v->n; i++) {
        const int32_t t = i == 0 ? 2 : i < 3 ? 3 : i < 259 ? 6 : 1; /* unknown, control, byte, normal */
        bb_put(&w->b, &t, 4);
    }
}

static void vocab_free(vocab *v) {
    for (int i = 0; i < v->n; i++) free(v->piece[i]);
    free(v->piece);
    free(v->set);
}

/* ------------------------------------------------------------ input files */

typedef struct {
    void *map;
    size_t size;
    int fd;
    gguf_file g;
} infile;

static void infile_open(infile *f, const char *path) {
    char err[256];
    struct stat st;
    f->fd = open(path, O_RDONLY);
    if (f->fd < 0) die("cannot open %s: %s", path, strerror(errno));
    if (fstat(f->fd, &st) != 0 || st.st_size <= 0) die("cannot read %s", path);
    f->size = (size_t)st.st_size;
    /* Only the header pages are touched; tensor data is read with pread so
     * a large input does not grow our resident set. */
    f->map = mmap(NULL, f->size, PROT_READ, MAP_PRIVATE, f->fd, 0);
    if (f->map == MAP_FAILED) die("cannot map %s: %s", path, strerror(errno));
    if (gguf_parse(&f->g, f->map, f->size, err, sizeof err) != 0) die("%s: %s", path, err);
}

static void infile_close(infile *f) {
    gguf_free(&f->g);
    munmap(f->map, f->size);
    close(f->fd);
}

/* ------------------------------------------------------------ tensor plan */

typedef struct {
    char name[MAX_NAME];
    uint32_t n_dims;
    int64_t ne[GGUF_MAX_DIMS];
    uint32_t type;
    uint64_t offset, nbytes;
    float mean, std;          /* generated: N(mean, std) */
    const gguf_tensor *src;   /* converted: the input tensor */
} tplan;

typedef struct {
    tplan *t;
    int n, cap;
} plan;

static tplan *plan_add(plan *p, const char *name, uint32_t n_dims, int64_t ne0, int64_t ne1) {
    if (p->n == p->cap) {
        p->cap = p->cap ? 2 * p->cap : 64;
        tplan *nt = realloc(p->t, (size_t)p->cap * sizeof *nt);
        if (!nt) die("out of memory");
        p->t = nt;
    }
    tplan *t = &p->t[p->n++];
    memset(t, 0, sizeof *t);
    if (strlen(name) >= MAX_NAME) die("tensor name too long: %s", name);
    strcpy(t->name, name);
    t->n_dims = n_dims;
    t->ne[0] = ne0;
    t->ne[1] = ne1;
    t->ne[2] = t->ne[3] = 1;
    return t;
}

static int64_t t_rows(const tplan *t) { return t->ne[1] * t->ne[2] * t->ne[3]; }

/* ------------------------------------------------------------ workers */

typedef struct {
    const tplan *t;
    uint64_t seed, name_hash;
    int64_t r0, nr;    /* rows of this chunk */
    uint8_t *out;      /* nr quantized rows */
    size_t out_row;
    const uint8_t *src; /* nr input rows (convert) */
    size_t src_row;
    float *scratch[MAX_THREADS]; /* ne0 floats per thread */
    int nth;
} chunk_job;

typedef struct {
    chunk_job *job;
    int ith;
} worker_arg;

static void run_rows(const chunk_job *j, int ith) {
    const tplan *t = j->t;
    const int64_t ne0 = t->ne[0];
    const int64_t a = j->nr * ith / j->nth, b = j->nr * (ith + 1) / j->nth;
    const pl_type_traits *to = pl_type_traits_get(t->type);
    const pl_type_traits *from = t->src ? pl_type_traits_get(t->src->type) : NULL;
    float *row = j->scratch[ith];
    for (int64_t r = a; r < b; r++) {
        if (t->src) {
            from->to_float(j->src + (size_t)r * j->src_row, row, ne0);
        } else {
            uint64_t s = j->seed ^ j->name_hash;
            uint64_t rs = splitmix64(&s) ^ (uint64_t)(j->r0 + r) * 0xd1b54a32d192ed03ull;
            gauss_row(rs, ne0, t->mean, t->std, row);
        }
        to->from_float(row, j->out + (size_t)r * j->out_row, ne0);
    }
}

static void *worker_main(void *p) {
    worker_arg *w = p;
    run_rows(w->job, w->ith);
    return NULL;
}

static void run_chunk(chunk_job *j) {
    pthread_t th[MAX_THREADS];
    worker_arg args[MAX_THREADS];
    int started[MAX_THREADS] = {0};
    for (int i = 1; i < j->nth; i++) {
        args[i].job = j;
        args[i].ith = i;
        started[i] = pthread_create(&th[i], NULL, worker_main, &args[i]) == 0;
        if (!started[i]) run_rows(j, i);
    }
    run_rows(j, 0);
    for (int i = 1; i < j->nth; i++)
        if (started[i]) pthread_join(th[i], NULL);
}

/* ------------------------------------------------------------ options */

typedef struct {
    int n_embd, n_ff, n_layer, n_head, n_head_kv, n_vocab, n_ctx;
    float rope_base, rms_eps;
} hparams;

typedef struct {
    const char *out, *from, *vocab, *preset;
    const ftype_info *ft;
    uint64_t seed;
    int tied, n_threads;
    hparams hp;
    int set_vocab_n; /* --n-vocab given */
    int gen_only;    /* some option that makes no sense with --from */
} options;

static const struct {
    const char *name;
    hparams hp;
} presets[] = {
    {"tinyllama-1.1b", {2048, 5632, 22, 32, 4, 32000, 2048, 10000.0f, 1e-5f}},
    {"tiny", {256, 768, 2, 8, 2, 512, 2048, 10000.0f, 1e-5f}},
    /* n_ff 1536 (not LLaMA's 8/3 ratio, 1408) keeps every row a multiple of
     * 256, so K-quant benchmarks measure that one type. */
    {"small", {512, 1536, 4, 8, 4, 4096, 2048, 10000.0f, 1e-5f}},
};

static void parse_args(options *o, int argc, char **argv) {
    hparams over;
    int set[9] = {0};
    memset(&over, 0, sizeof over);
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
#define VALUE() (i + 1 < argc ? argv[++i] : (die_usage("%s needs a value", a), ""))
        if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
            fputs(usage_text, stdout);
            exit(0);
        } else if (!strcmp(a, "--preset")) {
            o->preset = VALUE();
            o->gen_only = 1;
        } else if (!strcmp(a, "--type")) {
            const char *v = VALUE();
            o->ft = NULL;
            for (size_t k = 0; k < sizeof ftypes / sizeof ftypes[0]; k++)
                if (!strcmp(v, ftypes[k].name)) o->ft = &ftypes[k];
            if (!o->ft) die_usage("unknown --type '%s'", v);
        } else if (!strcmp(a, "--seed")) {
            const char *v = VALUE();
            char *end;
            errno = 0;
            unsigned long long s = strtoull(v, &end, 10);
            if (!*v || *end || errno || *v == '-') die_usage("--seed expects a non-negative integer, got '%s'", v);
            o->seed = s;
            o->gen_only = 1;
        } else if (!strcmp(a, "--n-embd")) over.n_embd = (int)parse_long(a, VALUE(), 1, 1 << 16), set[0] = 1;
        else if (!strcmp(a, "--n-layer")) over.n_layer = (int)parse_long(a, VALUE(), 1, 4096), set[1] = 1;
        else if (!strcmp(a, "--n-ff")) over.n_ff = (int)parse_long(a, VALUE(), 1, 1 << 18), set[2] = 1;
        else if (!strcmp(a, "--n-head")) over.n_head = (int)parse_long(a, VALUE(), 1, 1 << 12), set[3] = 1;
        else if (!strcmp(a, "--n-head-kv")) over.n_head_kv = (int)parse_long(a, VALUE(), 1, 1 << 12), set[4] = 1;
        else if (!strcmp(a, "--n-vocab")) over.n_vocab = (int)parse_long(a, VALUE(), 260, 1 << 20), set[5] = 1;
        else if (!strcmp(a, "--ctx")) over.n_ctx = (int)parse_long(a, VALUE(), 1, 1 << 24), set[6] = 1;
        else if (!strcmp(a, "--rope-base")) over.rope_base = parse_float(a, VALUE(), 1e-3, 1e12), set[7] = 1;
        else if (!strcmp(a, "--rms-eps")) over.rms_eps = parse_float(a, VALUE(), 1e-12, 1.0), set[8] = 1;
        else if (!strcmp(a, "--vocab")) o->vocab = VALUE(), o->gen_only = 1;
        else if (!strcmp(a, "--tied")) o->tied = 1, o->gen_only = 1;
        else if (!strcmp(a, "--from")) o->from = VALUE();
        else if (!strcmp(a, "-j")) o->n_threads = (int)parse_long(a, VALUE(), 1, MAX_THREADS);
        else if (a[0] == '-' && a[1]) die_usage("unknown option %s", a);
        else if (!o->out) o->out = a;
        else die_usage("unexpected argument '%s'", a);
#undef VALUE
    }
    if (!o->out) die_usage("no output file given");
    for (int k = 0; k < 9; k++) o->gen_only |= set[k];
    if (o->from) {
        if (o->gen_only) die_usage("--from takes only --type and -j");
        if (!o->ft) die_usage("--from needs --type");
        return;
    }
    if (!o->ft) o->ft = &ftypes[3]; /* Q8_0 */
    if (!o->preset) o->preset = "tiny";
    size_t k = 0;
    while (k < sizeof presets / sizeof presets[0] && strcmp(presets[k].name, o->preset)) k++;
    if (k == sizeof presets / sizeof presets[0])
        die_usage("unknown --preset '%s' (tinyllama-1.1b, tiny, small)", o->preset);
    hparams *h = &o->hp;
    *h = presets[k].hp;
    if (set[0]) h->n_embd = over.n_embd;
    if (set[1]) h->n_layer = over.n_layer;
    if (set[2]) h->n_ff = over.n_ff;
    if (set[3]) h->n_head = over.n_head;
    if (set[4]) h->n_head_kv = over.n_head_kv;
    if (set[5]) h->n_vocab = over.n_vocab;
    if (set[6]) h->n_ctx = over.n_ctx;
    if (set[7]) h->rope_base = over.rope_base;
    if (set[8]) h->rms_eps = over.rms_eps;
    o->set_vocab_n = set[5];
    if (set[3] && !set[4] && h->n_head % h->n_head_kv) h->n_head_kv = h->n_head; /* --n-head alone: MHA */
    if (h->n_embd % h->n_head) die_usage("--n-embd %d is not a multiple of --n-head %d", h->n_embd, h->n_head);
    if ((h->n_embd / h->n_head) % 2) die_usage("head size %d must be even (RoPE)", h->n_embd / h->n_head);
    if (h->n_head_kv > h->n_head || h->n_head % h->n_head_kv)
        die_usage("--n-head %d is not a multiple of --n-head-kv %d", h->n_head, h->n_head_kv);
    if (o->vocab && set[5]) die_usage("--vocab sets n_vocab: drop --n-vocab");
}

/* ------------------------------------------------------------ main */

static uint64_t pad_to(uint64_t x, uint64_t a) { return (x + a - 1) / a * a; }

int main(int argc, char **argv) {
    options o;
    memset(&o, 0, sizeof o);
    o.seed = 1;
    parse_args(&o, argc, argv);
    if (!o.n_threads) {
        long nc = 1;
#ifdef _SC_NPROCESSORS_ONLN
        nc = sysconf(_SC_NPROCESSORS_ONLN);
#endif
        o.n_threads = nc < 1 ? 1 : nc > MAX_THREADS ? MAX_THREADS : (int)nc;
    }
    const double t0 = now_s();

    kvw w;
    memset(&w, 0, sizeof w);
    plan p;
    memset(&p, 0, sizeof p);
    infile in, voc;
    int have_in = 0;
    fallback_log fb;
    memset(&fb, 0, sizeof fb);
    hparams *h = &o.hp;
    char label[128];

    if (o.from) {
        /* ---- convert: copy metadata, re-type every tensor */
        infile_open(&in, o.from);
        have_in = 1;
        const gguf_file *g = &in.g;
        uint32_t n_layer = 0;
        if (gguf_get_u32(g, "llama.block_count", &n_layer) != 0) {
            for (uint64_t i = 0; i < g->n_tensors; i++) {
                int il;
                char nm[MAX_NAME];
                snprintf(nm, sizeof nm, "%.*s", (int)g->tensors[i].name.len, g->tensors[i].name.ptr);
                if (sscanf(nm, "blk.%d.", &il) == 1 && il >= 0 && (uint32_t)il + 1 > n_layer) n_layer = (uint32_t)il + 1;
            }
        }
        const int has_output = gguf_find_tensor(g, "output.weight") != NULL;
        int saw_ft = 0, saw_qv = 0;
        for (uint64_t i = 0; i < g->n_kv; i++) {
            const gguf_kv *kv = &g->kv[i];
            if (key_is(kv, "general.alignment")) continue; /* written below */
            if (key_is(kv, "general.file_type")) {
                kv_u32(&w, "general.file_type", o.ft->ftype);
                saw_ft = 1;
            } else if (key_is(kv, "general.quantization_version")) {
                kv_u32(&w, "general.quantization_version", 2);
                saw_qv = 1;
            } else if (!kv_copy(&w, kv)) {
                fprintf(stderr, "picolm-gen: dropping key %.*s (nested array)\n", (int)kv->key.len, kv->key.ptr);
            }
        }
        if (!saw_ft) kv_u32(&w, "general.file_type", o.ft->ftype);
        if (!saw_qv) kv_u32(&w, "general.quantization_version", 2); /* llama-quantize always writes it */
        kv_u32(&w, "general.alignment", ALIGNMENT);
        for (uint64_t i = 0; i < g->n_tensors; i++) {
            const gguf_tensor *st = &g->tensors[i];
            char nm[MAX_NAME];
            if (st->name.len >= MAX_NAME) die("%s: tensor name too long", o.from);
            snprintf(nm, sizeof nm, "%.*s", (int)st->name.len, st->name.ptr);
            const pl_type_traits *tr = pl_type_traits_get(st->type);
            if (!tr || !tr->to_float) die("%s: %s has type %u, which we cannot read", o.from, nm, st->type);
            tplan *t = plan_add(&p, nm, st->n_dims, st->ne[0], st->ne[1]);
            t->ne[2] = st->ne[2];
            t->ne[3] = st->ne[3];
            t->src = st;
            t->type = st->n_dims < 2 ? PL_TYPE_F32
                                     : pick_type(o.ft, nm, st->ne[0], (int)n_layer, has_output, &fb);
        }
        snprintf(label, sizeof label, "%s -> %s", o.from, o.ft->name);
    } else {
        /* ---- generate */
        vocab v;
        memset(&v, 0, sizeof v);
        if (o.vocab) {
            infile_open(&voc, o.vocab);
            const gguf_kv *kt = gguf_find(&voc.g, "tokenizer.ggml.tokens");
            if (!kt || kt->type != GGUF_ARRAY || kt->arr_type != GGUF_STRING || kt->arr_n == 0 || kt->arr_n > (1u << 24))
                die("%s: no usable tokenizer.ggml.tokens", o.vocab);
            h->n_vocab = (int)kt->arr_n;
        } else {
            synth_vocab(&v, h->n_vocab);
        }
        const int head_dim = h->n_embd / h->n_head;
        kv_str(&w, "general.architecture", "llama");
        snprintf(label, sizeof label, "picolm-gen %s random %s", o.preset, o.ft->name);
        kv_str(&w, "general.name", label);
        kv_u32(&w, "general.alignment", ALIGNMENT);
        kv_u32(&w, "llama.context_length", (uint32_t)h->n_ctx);
        kv_u32(&w, "llama.embedding_length", (uint32_t)h->n_embd);
        kv_u32(&w, "llama.block_count", (uint32_t)h->n_layer);
        kv_u32(&w, "llama.feed_forward_length", (uint32_t)h->n_ff);
        kv_u32(&w, "llama.rope.dimension_count", (uint32_t)head_dim);
        kv_u32(&w, "llama.attention.head_count", (uint32_t)h->n_head);
        kv_u32(&w, "llama.attention.head_count_kv", (uint32_t)h->n_head_kv);
        kv_f32(&w, "llama.attention.layer_norm_rms_epsilon", h->rms_eps);
        kv_f32(&w, "llama.rope.freq_base", h->rope_base);
        kv_u32(&w, "llama.vocab_size", (uint32_t)h->n_vocab);
        kv_u32(&w, "general.file_type", o.ft->ftype);
        kv_u32(&w, "general.quantization_version", 2);
        if (o.vocab) {
            int is_llama = 0, seen[5] = {0};
            static const char *defaults[5] = {"tokenizer.ggml.bos_token_id", "tokenizer.ggml.eos_token_id",
                                              "tokenizer.ggml.unknown_token_id", "tokenizer.ggml.add_bos_token",
                                              "tokenizer.ggml.add_eos_token"};
            for (uint64_t i = 0; i < voc.g.n_kv; i++) {
                const gguf_kv *kv = &voc.g.kv[i];
                if (kv->key.len < 10 || memcmp(kv->key.ptr, "tokenizer.", 10)) continue;
                for (int k = 0; k < 5; k++) seen[k] |= key_is(kv, defaults[k]);
                if (key_is(kv, "tokenizer.ggml.model") && kv->type == GGUF_STRING)
                    is_llama = value_bytes(GGUF_STRING, kv->data, 1) == 8 + 5 && !memcmp(kv->data + 8, "llama", 5);
                if (!kv_copy(&w, kv))
                    fprintf(stderr, "picolm-gen: dropping key %.*s (nested array)\n", (int)kv->key.len, kv->key.ptr);
            }
            if (is_llama) { /* the SPM defaults, where the file leaves them out */
                if (!seen[0]) kv_u32(&w, defaults[0], 1);
                if (!seen[1]) kv_u32(&w, defaults[1], 2);
                if (!seen[2]) kv_u32(&w, defaults[2], 0);
                if (!seen[3]) kv_bool(&w, defaults[3], 1);
                if (!seen[4]) kv_bool(&w, defaults[4], 0);
            }
        } else {
            write_vocab(&w, &v);
            kv_u32(&w, "tokenizer.ggml.bos_token_id", 1);
            kv_u32(&w, "tokenizer.ggml.eos_token_id", 2);
            kv_u32(&w, "tokenizer.ggml.unknown_token_id", 0);
            kv_bool(&w, "tokenizer.ggml.add_bos_token", 1);
            kv_bool(&w, "tokenizer.ggml.add_eos_token", 0);
            vocab_free(&v);
        }
        if (o.vocab) infile_close(&voc);

        /* Tensors in the order the forward pass reads them. Matrices get
         * std 0.02 (GPT-2's init: a unit-RMS input gives outputs of RMS
         * 0.02*sqrt(n_in) ~ 0.9 at n_embd 2048, so 22 layers stay tame);
         * norms 1 + small noise. */
        const int64_t E = h->n_embd, KV = (int64_t)head_dim * h->n_head_kv, F = h->n_ff, V = h->n_vocab;
        const int has_output = !o.tied;
        tplan *t;
#define MAT(nm, a, b) (t = plan_add(&p, nm, 2, a, b), t->std = 0.02f, \
                       t->type = pick_type(o.ft, nm, a, h->n_layer, has_output, &fb))
#define NORM(nm) (t = plan_add(&p, nm, 1, E, 1), t->mean = 1.0f, t->std = 0.02f, t->type = PL_TYPE_F32)
        char nm[MAX_NAME];
        MAT("token_embd.weight", E, V);
        for (int il = 0; il < h->n_layer; il++) {
            snprintf(nm, sizeof nm, "blk.%d.attn_norm.weight", il), NORM(nm);
            snprintf(nm, sizeof nm, "blk.%d.attn_q.weight", il), MAT(nm, E, E);
            snprintf(nm, sizeof nm, "blk.%d.attn_k.weight", il), MAT(nm, E, KV);
            snprintf(nm, sizeof nm, "blk.%d.attn_v.weight", il), MAT(nm, E, KV);
            snprintf(nm, sizeof nm, "blk.%d.attn_output.weight", il), MAT(nm, E, E);
            snprintf(nm, sizeof nm, "blk.%d.ffn_norm.weight", il), NORM(nm);
            snprintf(nm, sizeof nm, "blk.%d.ffn_gate.weight", il), MAT(nm, E, F);
            snprintf(nm, sizeof nm, "blk.%d.ffn_up.weight", il), MAT(nm, E, F);
            snprintf(nm, sizeof nm, "blk.%d.ffn_down.weight", il), MAT(nm, F, E);
        }
        NORM("output_norm.weight");
        if (has_output) MAT("output.weight", E, V);
#undef MAT
#undef NORM
        snprintf(label, sizeof label, "%s %s", o.preset, o.ft->name);
    }
    if (fb.n_tensors) fprintf(stderr, "picolm-gen: %d tensors use a fallback type\n", fb.n_tensors);

    /* ---- layout: header, metadata, tensor table, then aligned data */
    uint64_t data_size = 0, n_params = 0;
    int64_t max_ne0 = 1;
    for (int i = 0; i < p.n; i++) {
        tplan *t = &p.t[i];
        const size_t rs = pl_row_size(t->type, t->ne[0]);
        const pl_type_traits *tr = pl_type_traits_get(t->type);
        if (!rs || !tr || !tr->from_float) die("%s: cannot write type %s", t->name, type_name(t->type));
        if (t->ne[0] > (1 << 24)) die("%s: rows of %lld weights are too long", t->name, (long long)t->ne[0]);
        t->offset = data_size;
        t->nbytes = (uint64_t)rs * (uint64_t)t_rows(t);
        data_size = pad_to(data_size + t->nbytes, ALIGNMENT);
        n_params += (uint64_t)t->ne[0] * (uint64_t)t_rows(t);
        if (t->ne[0] > max_ne0) max_ne0 = t->ne[0];
    }
    bbuf hdr;
    memset(&hdr, 0, sizeof hdr);
    bb_put(&hdr, "GGUF", 4);
    bb_u32(&hdr, 3);
    bb_u64(&hdr, (uint64_t)p.n);
    bb_u64(&hdr, w.n_kv);
    bb_put(&hdr, w.b.p, w.b.n);
    free(w.b.p);
    for (int i = 0; i < p.n; i++) {
        const tplan *t = &p.t[i];
        bb_str(&hdr, t->name);
        bb_u32(&hdr, t->n_dims);
        for (uint32_t d = 0; d < t->n_dims; d++) bb_u64(&hdr, (uint64_t)t->ne[d]);
        bb_u32(&hdr, t->type);
        bb_u64(&hdr, t->offset);
    }
    static const uint8_t zeros[ALIGNMENT];
    bb_put(&hdr, zeros, (size_t)(pad_to(hdr.n, ALIGNMENT) - hdr.n));
    const uint64_t total = hdr.n + data_size;
    fprintf(stderr, "picolm-gen: %s: %d tensors, %.3f B weights, %.1f MiB -> %s (%d threads)\n", label, p.n,
            (double)n_params / 1e9, (double)total / 1048576.0, o.out, o.n_threads);

    /* ---- stream the data */
    if (strlen(o.out) + 5 > sizeof g_tmp_path) die("output path too long");
    snprintf(g_tmp_path, sizeof g_tmp_path, "%s.tmp", o.out);
    signal(SIGINT, on_signal);
    signal(SIGTERM, on_signal);
    FILE *f = fopen(g_tmp_path, "wb");
    if (!f) {
        g_tmp_path[0] = 0;
        die("cannot create %s: %s", o.out, strerror(errno));
    }
    setvbuf(f, NULL, _IOFBF, 1 << 20);
    if (fwrite(hdr.p, 1, hdr.n, f) != hdr.n) die("write error on %s: %s", g_tmp_path, strerror(errno));
    free(hdr.p);

    chunk_job job;
    memset(&job, 0, sizeof job);
    job.nth = o.n_threads;
    for (int i = 0; i < job.nth; i++)
        if (!(job.scratch[i] = malloc((size_t)max_ne0 * sizeof(float)))) die("out of memory");
    uint8_t *outbuf = NULL, *srcbuf = NULL;
    size_t outcap = 0, srccap = 0;
    const int tty = isatty(fileno(stderr));
    uint64_t written = 0;
    double last = 0;
    for (int i = 0; i < p.n; i++) {
        const tplan *t = &p.t[i];
        const int64_t rows = t_rows(t), ne0 = t->ne[0];
        const int64_t per = ne0 >= CHUNK_WEIGHTS ? 1 : CHUNK_WEIGHTS / ne0;
        job.t = t;
        job.seed = o.seed;
        job.name_hash = fnv1a(t->name);
        job.out_row = pl_row_size(t->type, ne0);
        job.src_row = t->src ? pl_row_size(t->src->type, ne0) : 0;
        if (t->src && (!job.src_row || job.src_row * (uint64_t)rows != t->src->nbytes))
            die("%s: unexpected size of %s", o.from, t->name);
        const size_t need_out = job.out_row * (size_t)(per < rows ? per : rows);
        const size_t need_src = job.src_row * (size_t)(per < rows ? per : rows);
        if (need_out > outcap && !(outbuf = realloc(outbuf, outcap = need_out))) die("out of memory");
        if (need_src > srccap && !(srcbuf = realloc(srcbuf, srccap = need_src))) die("out of memory");
        for (int64_t r0 = 0; r0 < rows; r0 += per) {
            const int64_t nr = rows - r0 < per ? rows - r0 : per;
            job.r0 = r0;
            job.nr = nr;
            job.out = outbuf;
            job.src = srcbuf;
            if (t->src) {
                const size_t len = job.src_row * (size_t)nr;
                const off_t at = (off_t)(in.g.data_offset + t->src->offset + job.src_row * (uint64_t)r0);
                for (size_t got = 0; got < len;) {
                    const ssize_t k = pread(in.fd, srcbuf + got, len - got, at + (off_t)got);
                    if (k <= 0) die("read error on %s", o.from);
                    got += (size_t)k;
                }
            }
            run_chunk(&job);
            const size_t n = job.out_row * (size_t)nr;
            if (fwrite(outbuf, 1, n, f) != n) die("write error on %s: %s", g_tmp_path, strerror(errno));
            written += n;
            const double tn = now_s();
            if (tty && tn - last > 0.25) {
                last = tn;
                fprintf(stderr, "\r%5.1f%%  %7.1f / %.1f MiB  %5.1f s  %-32s", 100.0 * (double)written / (double)data_size,
                        (double)written / 1048576.0, (double)data_size / 1048576.0, tn - t0, t->name);
            }
        }
        const uint64_t padn = pad_to(t->nbytes, ALIGNMENT) - t->nbytes;
        if (padn && fwrite(zeros, 1, (size_t)padn, f) != padn) die("write error on %s", g_tmp_path);
    }
    if (tty) fprintf(stderr, "\r%-90s\r", "");
    if (fflush(f) != 0 || ferror(f)) die("write error on %s: %s", g_tmp_path, strerror(errno));
    if (fclose(f) != 0) die("write error on %s: %s", g_tmp_path, strerror(errno));
    if (rename(g_tmp_path, o.out) != 0) die("cannot rename %s to %s: %s", g_tmp_path, o.out, strerror(errno));
    g_tmp_path[0] = 0;

    for (int i = 0; i < job.nth; i++) free(job.scratch[i]);
    free(outbuf);
    free(srcbuf);
    free(p.t);
    if (have_in) infile_close(&in);
    fprintf(stderr, "picolm-gen: wrote %s: %.1f MiB in %.1f s\n", o.out, (double)total / 1048576.0, now_s() - t0);
    return 0;
}
