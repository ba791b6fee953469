/* picolm-server - an OpenAI-compatible HTTP server with continuous batching.
 *
 *   picolm-server MODEL.gguf [--host 127.0.0.1] [--port 8080] [--parallel N]
 *                 [-c N] [--api-key KEY] [-j N] [--kv f16|q8] [--mem-budget MB]
 *                 [--ctx-overflow error|drop] [--lookup N | --draft FILE [--draft-max N]]
 *
 * One engine thread owns a context of N sequence slots and runs
 * continuous batching: each step decodes the next token of every generating
 * request together with prompt chunks of newly admitted ones (pl_decode),
 * then samples each (pl_gen). A slot keeps its sequence after a request, so
 * the next request goes to the slot with the longest common prefix and
 * reuses it. Every kernel computes a token as it would alone (picolm.h), so
 * a request's answer is the same bit for bit whatever else runs beside it.
 * Each connection has a thread
 * (bounded count) with read timeouts; requests wait in a bounded queue (503
 * when full); a client that disconnects cancels its request at once.
 * Routes: POST /v1/chat/completions, POST /v1/completions, GET /v1/models,
 * GET /health, GET /metrics. Errors are OpenAI-style JSON.
 * Tool calls (toolcall.h): `tools` are listed in the system text as the
 * model family expects; "required" or a named tool_choice constrains the
 * whole answer to a call, "auto" lets the model write freely and switches
 * the call grammar on when its text reaches the family's call opening (the
 * engine watches each token's text); one call per answer.
 * Speculative decoding: --lookup N drafts by prompt lookup, --draft FILE
 * with a small model of the same vocabulary (one draft context, a sequence
 * per slot); either way the drafts ride in the step's batch and the answers
 * are the same as without them. */
#define _DEFAULT_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <math.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "grammar.h"
#include "http.h"
#include "json.h"
#include "picolm.h"
#include "platform.h"
#include "toolcall.h"

#define MAX_STOP 8
#define PROMPT_STEP 128  /* prompt tokens per engine step, over all admitted requests */
#define IDLE_TIMEOUT_MS 30000
#define READ_TIMEOUT_MS 15000

/* ---- options ---------------------------------------------------------- */
typedef struct {
    const char *model, *host, *api_key;
    int port, parallel, n_ctx, threads, kv_q8, mem_budget, max_conn, max_queue;
    size_t max_body;
    int drop_turns; /* --ctx-overflow drop: a conversation too long loses its oldest turns */
    int lookup;     /* --lookup N: prompt-lookup drafts per generating slot and step */
    const char *draft; /* --draft FILE: a draft model for speculative decoding */
    int draft_max;     /* --draft-max N: its drafts per slot and step */
    int n_batch;       /* -b N: tokens per pass through the layers (0: the library's default) */
} options;

static void usage(FILE *f) {
    fprintf(f, "usage: picolm-server MODEL.gguf [--host 127.0.0.1] [--port 8080] [--parallel N] [-c N]\n"
               "       [--api-key KEY] [-j N] [--kv f16|q8] [--mem-budget MB] [--max-conn N] [--max-queue N]\n"
               "       [--max-body BYTES] [--ctx-overflow error|drop] [--lookup N]\n"
               "       [--draft FILE (-md, --model-draft)] [--draft-max N (1-16, 8)] [-b N (1-512)]\n");
}

static void die_usage(const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    fprintf(stderr, "picolm-server: ");
    vfprintf(stderr, fmt, ap);
    fprintf(stderr, " (see --help)\n");
    va_end(ap);
    exit(2);
}

static int int_arg(const char *flag, const char *v, long lo, long hi) {
    char *end;
    errno = 0;
    long x = v ? strtol(v, &end, 10) : 0;
    if (!v || !*v || *end || errno || x < lo || x > hi) die_usage("%s takes an integer in [%ld, %ld]", flag, lo, hi);
    return (int)x;
}

static options parse_args(int argc, char **argv) {
    options o = {NULL, "127.0.0.1", NULL, 8080, 4, 0, 0, 0, 0, 64, 64, 4u << 20, 0, 0, NULL, 8, 0};
    int draft_max_given = 0;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
            usage(stdout);
            exit(0);
        } else if (!strcmp(a, "--version")) {
            printf("picolm-server %s (kernels: %s)\n", PICOLM_VERSION, pl_cpu_level());
            exit(0);
        } else if (!strcmp(a, "--host") && v) o.host = v, i++;
        else if (!strcmp(a, "--port")) o.port = int_arg(a, v, 0, 65535), i++;
        else if (!strcmp(a, "--parallel") || !strcmp(a, "-np")) o.parallel = int_arg(a, v, 1, 64), i++;
        else if (!strcmp(a, "-c") || !strcmp(a, "--ctx-size")) o.n_ctx = int_arg(a, v, 0, 1 << 20), i++;
        else if (!strcmp(a, "-j") || !strcmp(a, "--threads")) o.threads = int_arg(a, v, 0, 1024), i++;
        else if (!strcmp(a, "-b") || !strcmp(a, "--batch")) o.n_batch = int_arg(a, v, 1, 512), i++;
        else if (!strcmp(a, "--mem-budget")) o.mem_budget = int_arg(a, v, -1, 1 << 30), i++;
        else if (!strcmp(a, "--max-conn")) o.max_conn = int_arg(a, v, 1, 4096), i++;
        else if (!strcmp(a, "--lookup")) o.lookup = int_arg(a, v, 0, 16), i++;
        else if ((!strcmp(a, "--draft") || !strcmp(a, "-md") || !strcmp(a, "--model-draft")) && v) o.draft = v, i++;
        else if (!strcmp(a, "--draft-max")) o.draft_max = int_arg(a, v, 1, 16), draft_max_given = 1, i++;
        else if (!strcmp(a, "--max-queue")) o.max_queue = int_arg(a, v, 0, 1 << 16), i++;
        else if (!strcmp(a, "--max-body")) o.max_body = (size_t)int_arg(a, v, 1024, 1 << 30), i++;
        else if (!strcmp(a, "--api-key") && v) o.api_key = v, i++;
        else if (!strcmp(a, "--kv") && v) {
            if (strcmp(v, "f16") && strcmp(v, "q8")) die_usage("--kv takes f16 or q8");
            o.kv_q8 = !strcmp(v, "q8");
            i++;
        } else if (!strcmp(a, "--ctx-overflow") && v) {
            if (strcmp(v, "error") && strcmp(v, "drop")) die_usage("--ctx-overflow takes error or drop");
            o.drop_turns = !strcmp(v, "drop");
            i++;
        } else if (a[0] == '-' && a[1]) {
            die_usage(v || !strchr("-", a[0]) ? "unknown option %s" : "%s needs a value", a);
        } else if (!o.model) o.model = a;
        else die_usage("unexpected argument %s", a);
    }
    if (!o.model) die_usage("no model given");
    if (o.draft && o.lookup) die_usage("--draft cannot take --lookup");
    if (draft_max_given && !o.draft) die_usage("--draft-max needs --draft");
    return o;
}

/* ---- a request's job, shared by its connection and the engine ---------- */
typedef struct { /* one sampled token's log-probabilities */
    int32_t prev;   /* the token before it (for the text of a piece) */
    int n_top;
    pl_token_logprob tok, top[20];
} lp_rec;

typedef struct job {
    /* input, set by the connection before it is queued */
    int32_t *ids;
    int n_ids, max_tokens, chat, stream;
    pl_sampler_params sp;
    char *stop[MAX_STOP];
    int n_stop;
    pl_grammar *gram; /* owned */
    int tools;             /* 0 no tools, 1 "auto" (lazy grammar), 2 forced from the first token */
    int tc_style;          /* TC_QWEN, TC_LLAMA3 */
    pl_grammar *tool_gram; /* "auto": the call grammar, switched on at the trigger (owned) */
    pl_logit_bias *bias;   /* [sp.n_logit_bias] (owned) */
    int logprobs, top_logprobs;
    int dropped;           /* messages left out to fit the context (--ctx-overflow drop) */
    /* output, under srv.mu */
    lp_rec *lp;            /* [n_lp] with logprobs */
    size_t n_lp, cap_lp, lp_sent; /* lp_sent: records the stream has written (its writer's) */
    char *out;
    size_t out_len, out_cap;
    int done, finish, n_cached, n_gen, cancelled, oom;
    char err[256];
    double t_queued, t_first, t_done;
    pthread_cond_t cv;
    struct job *next;
} job;

static struct {
    options o;
    pl_model *m;
    pl_context *ctx;
    pl_context *dctx; /* --draft: the draft model's, a sequence per slot, or NULL */
    const char *model_id;
    pl_grammar_vocab *gvocab;
    const char *tmpl;
    pthread_mutex_t mu;
    pthread_cond_t work;
    job *q_head, *q_tail;
    int q_len, busy;
    atomic_int running, n_conn;
    int listen_fd, wake[2];
    /* metrics */
    atomic_long m_requests, m_errors, m_prompt_tok, m_gen_tok, m_cached_tok, m_drafted, m_accepted;
    double gen_seconds;
} srv;

static double now_s(void) { return pl_time_sec(); }

static void job_free(job *j) {
    if (!j) return;
    free(j->ids);
    for (int i = 0; i < j->n_stop; i++) free(j->stop[i]);
    pl_grammar_free(j->gram);
    pl_grammar_free(j->tool_gram);
    free(j->bias);
    free(j->lp);
    free(j->out);
    pthread_cond_destroy(&j->cv);
    free(j);
}

/* Text for the connection (srv.mu held). */
static void job_emit(job *j, const char *s, size_t n) {
    if (!n || j->oom) return;
    if (j->out_len + n > j->out_cap) {
        size_t cap = (j->out_len + n) * 2 + 256;
        char *p = realloc(j->out, cap);
        if (!p) {
            j->oom = 1;
            return;
        }
        j->out = p;
        j->out_cap = cap;
    }
    memcpy(j->out + j->out_len, s, n);
    j->out_len += n;
}

/* ---- the engine ---------------------------------------------------------- */
typedef struct {
    job *j;
    pl_gen *g;
    pl_sampler *smp;
    int cur;     /* prompt tokens in the sequence so far */
    int phase;   /* 0 idle, 1 prompt, 2 generating */
    tc_lazy lazy; /* "auto" tools: watches the raw token text for the call opening */
    int32_t prev; /* the last token (for the next one's text) */
    /* this step's rows: row0, 1 + n_draft of them; the drafts decoded after
     * the token at position base */
    int row0, n_draft, base, spec;
    int32_t draft[16];
} slot;

/* The sampled token's log-probabilities, kept for the connection (srv.mu held). */
static void job_logprobs(job *j, const pl_gen *g, int32_t prev) {
    if (j->oom) return;
    if (j->n_lp == j->cap_lp) {
        size_t cap = j->cap_lp * 2 + 16;
        lp_rec *p = realloc(j->lp, cap * sizeof *p);
        if (!p) {
            j->oom = 1;
            return;
        }
        j->lp = p;
        j->cap_lp = cap;
    }
    lp_rec *r = &j->lp[j->n_lp];
    r->prev = prev;
    r->n_top = pl_gen_logprobs(g, &r->tok, r->top);
    if (r->n_top >= 0) j->n_lp++;
}

static void finish(slot *s, int status, const char *err) {
    char buf[1024];
    pthread_mutex_lock(&srv.mu);
    job *j = s->j;
    if (s->g) {
        size_t n;
        while ((n = pl_gen_flush(s->g, buf, sizeof buf)) > 0) job_emit(j, buf, n);
        j->n_gen = pl_gen_n_generated(s->g);
        int dr, ac;
        pl_gen_draft_stats(s->g, &dr, &ac);
        srv.m_drafted += dr;
        srv.m_accepted += ac;
    }
    j->finish = status;
    if (err) snprintf(j->err, sizeof j->err, "%s", err);
    j->done = 1;
    j->t_done = now_s();
    srv.busy--;
    srv.m_gen_tok += j->n_gen;
    pthread_cond_broadcast(&j->cv);
    pthread_mutex_unlock(&srv.mu);
    pl_gen_free(s->g);
    pl_sampler_free(s->smp);
    s->g = NULL;
    s->smp = NULL;
    s->j = NULL;
    s->phase = 0;
}

static int start(slot *s, int idx, job *j) {
    char err[256];
    pl_gen_params gp = pl_gen_default_params();
    gp.n_predict = j->max_tokens;
    gp.no_context_shift = 1;
    gp.stop = (const char *const *)j->stop;
    gp.n_stop = j->n_stop;
    gp.logprobs = j->logprobs;
    gp.top_logprobs = j->top_logprobs;
    s->j = j;
    if (pl_sampler_new(&s->smp, &j->sp, pl_model_get_info(srv.m)->n_vocab) ||
        pl_gen_new(&s->g, srv.ctx, idx, s->smp, &gp, err, sizeof err)) {
        finish(s, PL_GEN_ERROR, "cannot start generation");
        return -1;
    }
    if (j->gram) pl_gen_set_grammar(s->g, j->gram);
    if (srv.dctx && pl_gen_set_draft(s->g, srv.dctx, idx, srv.o.draft_max)) { /* the vocabulary: checked at start-up */
        finish(s, PL_GEN_ERROR, "cannot start generation");
        return -1;
    }
    if (j->tool_gram) tc_lazy_init(&s->lazy, tc_trigger(j->tc_style));
    s->prev = j->ids[j->n_ids - 1];
    /* reuse what the slot holds, but run at least the last token */
    int lcp = pl_seq_common_prefix(srv.ctx, idx, j->ids, j->n_ids);
    if (lcp > j->n_ids - 1) lcp = j->n_ids - 1;
    pl_seq_truncate(srv.ctx, idx, lcp);
    pl_gen_begin(s->g, j->ids, j->n_ids);
    s->cur = lcp;
    s->phase = 1;
    j->n_cached = lcp;
    srv.m_cached_tok += lcp;
    srv.m_prompt_tok += j->n_ids;
    return 0;
}

static void *engine_main(void *arg) {
    (void)arg;
    const int P = srv.o.parallel, V = pl_model_get_info(srv.m)->n_vocab;
    slot *sl = calloc((size_t)P, sizeof *sl);
    const int L = srv.dctx ? srv.o.draft_max : srv.o.lookup, rows_max = P * (1 + L);
    int cap = rows_max + PROMPT_STEP + 2;
    int32_t *tok = malloc((size_t)cap * sizeof *tok), *pos = malloc((size_t)cap * sizeof *pos),
            *seq = malloc((size_t)cap * sizeof *seq);
    int8_t *want = malloc((size_t)cap);
    int *row_slot = malloc((size_t)rows_max * sizeof *row_slot);
    float *logits = malloc((size_t)rows_max * (size_t)V * sizeof *logits);
    char text[1024];
    if (!sl || !tok || !pos || !seq || !want || !row_slot || !logits) {
        fprintf(stderr, "picolm-server: out of memory in the engine\n");
        exit(1);
    }
    while (atomic_load(&srv.running)) {
        pthread_mutex_lock(&srv.mu);
        int active = 0;
        for (int i = 0; i < P; i++) active += sl[i].phase != 0;
        while (atomic_load(&srv.running) && !active && !srv.q_head) pthread_cond_wait(&srv.work, &srv.mu);
        /* admit: the free slot whose sequence shares the longest prefix */
        job *adm[64];
        int adm_slot[64], n_adm = 0;
        while (srv.q_head && n_adm < 64) {
            int best = -1, best_l = -1;
            for (int i = 0; i < P; i++) {
                int taken = sl[i].phase != 0;
                for (int k = 0; k < n_adm; k++) taken |= adm_slot[k] == i;
                if (taken) continue;
                int l = pl_seq_common_prefix(srv.ctx, i, srv.q_head->ids, srv.q_head->n_ids);
                if (l > best_l) best_l = l, best = i;
            }
            if (best < 0) break;
            job *j = srv.q_head;
            srv.q_head = j->next;
            if (!srv.q_head) srv.q_tail = NULL;
            srv.q_len--;
            srv.busy++;
            adm[n_adm] = j;
            adm_slot[n_adm++] = best;
        }
        /* cancelled requests end now */
        int cancel[64], n_cancel = 0;
        for (int i = 0; i < P && n_cancel < 64; i++)
            if (sl[i].phase && sl[i].j->cancelled) cancel[n_cancel++] = i;
        pthread_mutex_unlock(&srv.mu);
        if (!atomic_load(&srv.running)) break;
        for (int k = 0; k < n_cancel; k++) finish(&sl[cancel[k]], PL_GEN_ERROR, "cancelled");
        for (int k = 0; k < n_adm; k++) start(&sl[adm_slot[k]], adm_slot[k], adm[k]);

        /* the batch: each generating slot's token, then prompt chunks (the
         * clock starts here: a draft model decodes while drafting) */
        double t0 = now_s();
        int n = 0, n_rows = 0, budget = PROMPT_STEP;
        for (int i = 0; i < P; i++) {
            if (sl[i].phase != 2) continue;
            int p = pl_gen_room(sl[i].g);
            if (p < 0) {
                finish(&sl[i], pl_gen_status(sl[i].g), pl_gen_error(sl[i].g)[0] ? pl_gen_error(sl[i].g) : NULL);
                continue;
            }
            tok[n] = pl_gen_token(sl[i].g), pos[n] = p, seq[n] = i, want[n++] = 1;
            row_slot[n_rows++] = i;
            /* the drafts (prompt lookup or the draft model) ride along, a row of logits each */
            sl[i].base = p;
            sl[i].n_draft = L ? pl_gen_lookup_draft(sl[i].g, sl[i].draft, L) : 0;
            for (int k = 0; k < sl[i].n_draft; k++) {
                tok[n] = sl[i].draft[k], pos[n] = p + 1 + k, seq[n] = i, want[n++] = 1;
                row_slot[n_rows++] = i;
            }
        }
        for (int i = 0; i < P && budget > 0; i++) {
            if (sl[i].phase != 1) continue;
            job *j = sl[i].j;
            int take = j->n_ids - sl[i].cur;
            if (take > budget) take = budget;
            for (int k = 0; k < take; k++) {
                tok[n] = j->ids[sl[i].cur + k], pos[n] = sl[i].cur + k, seq[n] = i;
                want[n++] = sl[i].cur + k == j->n_ids - 1;
            }
            sl[i].cur += take;
            budget -= take;
            if (sl[i].cur == j->n_ids) row_slot[n_rows++] = i;
        }
        if (n == 0) continue;
        /* rows come back in batch order: order row_slot the same way */
        n_rows = 0;
        for (int k = 0; k < n; k++)
            if (want[k]) row_slot[n_rows++] = seq[k];
        pl_batch b = {n, tok, pos, seq, want};
        int rc = pl_decode(srv.ctx, &b, logits);
        pthread_mutex_lock(&srv.mu);
        srv.gen_seconds += now_s() - t0;
        pthread_mutex_unlock(&srv.mu);
        if (rc) {
            for (int i = 0; i < P; i++)
                if (sl[i].phase) finish(&sl[i], PL_GEN_ERROR, "evaluation failed");
            continue;
        }
        for (int r = 0; r < n_rows; r++) {
            slot *s = &sl[row_slot[r]];
            size_t k = 0;
            /* a slot's first row; a draft's row only while the samples
             * confirm the drafts before it */
            const int first = r == 0 || row_slot[r - 1] != row_slot[r];
            if (first) s->row0 = r, s->spec = 1;
            if (!s->phase || !s->spec) continue;
            const int d = r - s->row0; /* rows of this slot before this one */
            int n_before = pl_gen_n_generated(s->g);
            int st = pl_gen_sample(s->g, logits + (size_t)r * V, text, sizeof text, &k);
            const int sampled = pl_gen_n_generated(s->g) > n_before;
            const int32_t prev = s->prev, tk = pl_gen_token(s->g);
            if (sampled) s->prev = tk;
            if (s->j->tool_gram && sampled) {
                /* the lazy tool grammar: the raw text of the token (not the
                 * held-back output) goes to the trigger; once it fires, the
                 * grammar takes the call's bytes so far and constrains the rest */
                char piece[256];
                int len = pl_token_to_text(srv.m, prev, tk, piece, sizeof piece);
                const char *from;
                size_t fn;
                if (len > (int)sizeof piece) len = (int)sizeof piece;
                if (len > 0 && tc_lazy_feed(&s->lazy, piece, (size_t)len, &from, &fn) &&
                    pl_grammar_accept_bytes(s->j->tool_gram, from, fn) == 0)
                    pl_gen_set_grammar(s->g, s->j->tool_gram);
            }
            pthread_mutex_lock(&srv.mu);
            if (s->j->t_first == 0) s->j->t_first = now_s();
            if (s->j->logprobs && sampled) job_logprobs(s->j, s->g, prev);
            job_emit(s->j, text, k);
            pthread_cond_broadcast(&s->j->cv);
            pthread_mutex_unlock(&srv.mu);
            if (s->phase == 2 && s->n_draft) {
                /* the drafts past the one this sample confirms (or all
                 * after this row) leave the sequence */
                int ok = st == PL_GEN_RUNNING && d < s->n_draft && pl_gen_token(s->g) == s->draft[d];
                if (ok) pl_gen_note_accepted(s->g, 1);
                else pl_seq_truncate(srv.ctx, (int)(s - sl), s->base + d + 1), s->spec = 0;
            }
            if (st == PL_GEN_RUNNING) s->phase = 2;
            else finish(s, st, st == PL_GEN_ERROR ? pl_gen_error(s->g) : NULL);
        }
    }
    for (int i = 0; i < P; i++)
        if (sl[i].phase) finish(&sl[i], PL_GEN_ERROR, "the server is shutting down");
    free(sl), free(tok), free(pos), free(seq), free(want), free(row_slot), free(logits);
    return NULL;
}

/* ---- connections --------------------------------------------------------- */
typedef struct {
    int fd;
    http_parser hp;
    http_buf out;
} conn;

static int send_all(int fd, const char *p, size_t n) {
    while (n) {
        ssize_t k = send(fd, p, n, MSG_NOSIGNAL);
        if (k < 0 && errno == EINTR) continue;
        if (k <= 0) return -1;
        p += k;
        n -= (size_t)k;
    }
    return 0;
}

static int flush_out(conn *c) {
    int rc = c->out.oom ? -1 : send_all(c->fd, c->out.p, c->out.len);
    http_buf_reset(&c->out);
    return rc;
}

/* 1 if the peer closed (or the socket broke). */
static int peer_gone(int fd) {
    struct pollfd p = {fd, POLLIN, 0};
    if (poll(&p, 1, 0) <= 0) return 0;
    if (p.revents & (POLLERR | POLLHUP | POLLNVAL)) return 1;
    char ch;
    ssize_t k = recv(fd, &ch, 1, MSG_PEEK | MSG_DONTWAIT);
    return k == 0 || (k < 0 && errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR);
}

static void send_json(conn *c, int status, jw *w, int keep_alive) {
    http_response(&c->out, status, "application/json", w->buf ? w->buf : "", w->len, keep_alive, NULL);
}

static void send_error(conn *c, int status, const char *type, const char *code, const char *param, int keep_alive,
                       const char *fmt, ...) {
    char msg[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    jw w;
    jw_init(&w);
    jw_obj(&w);
    jw_key(&w, "error");
    jw_obj(&w);
    jw_key(&w, "message");
    jw_str(&w, msg);
    jw_key(&w, "type");
    jw_str(&w, type);
    jw_key(&w, "param");
    jw_str(&w, param);
    jw_key(&w, "code");
    jw_str(&w, code);
    jw_obj_end(&w);
    jw_obj_end(&w);
    send_json(c, status, &w, keep_alive);
    jw_free(&w);
    srv.m_errors++;
}

#define BAD(param, ...) (send_error(c, 400, "invalid_request_error", "invalid_value", param, ka, __VA_ARGS__), -1)

static const char *finish_reason(int st) {
    return st == PL_GEN_LENGTH || st == PL_GEN_CTX_FULL ? "length" : "stop";
}

static void usage_obj(jw *w, const job *j) {
    jw_key(w, "usage");
    jw_obj(w);
    jw_key(w, "prompt_tokens");
    jw_int(w, j->n_ids);
    jw_key(w, "completion_tokens");
    jw_int(w, j->n_gen);
    jw_key(w, "total_tokens");
    jw_int(w, j->n_ids + j->n_gen);
    jw_key(w, "prompt_tokens_details");
    jw_obj(w);
    jw_key(w, "cached_tokens");
    jw_int(w, j->n_cached);
    jw_obj_end(w);
    jw_obj_end(w);
}

static void head_fields(jw *w, const char *id, const char *object, long long created) {
    jw_key(w, "id");
    jw_str(w, id);
    jw_key(w, "object");
    jw_str(w, object);
    jw_key(w, "created");
    jw_int(w, created);
    jw_key(w, "model");
    jw_str(w, srv.model_id);
}

/* With --ctx-overflow drop: how many of the oldest messages were left out. */
static void dropped_field(jw *w, const job *j) {
    if (!j->dropped) return;
    jw_key(w, "dropped_messages");
    jw_int(w, j->dropped);
}

/* Log-probabilities of records [j->lp_sent, j->n_lp) (srv.mu held), in
 * the chat form ({"content": [{token, logprob, bytes, top_logprobs}]}) or
 * the completions one ({tokens, token_logprobs, top_logprobs, text_offset}).
 * A token the grammar forbade has -Inf, written -9999 as OpenAI does. */
static double lp_num(float x) { return x > -9999.0f ? x : -9999.0; }

/* a token's text after prev into t[256]; its length */
static int lp_text(int32_t prev, int32_t tok, char *t) {
    int n = pl_token_to_text(srv.m, prev, tok, t, 256);
    return n < 0 ? 0 : n > 256 ? 256 : n;
}

static int lp_len(int32_t prev, int32_t tok) {
    char t[256];
    return lp_text(prev, tok, t);
}

static void lp_token(jw *w, int32_t prev, int32_t tok, int with_bytes) {
    char t[256];
    int n = lp_text(prev, tok, t);
    if (with_bytes) jw_key(w, "token");
    jw_strn(w, t, (size_t)n);
    if (!with_bytes) return;
    jw_key(w, "bytes");
    jw_arr(w);
    for (int i = 0; i < n; i++) jw_int(w, (unsigned char)t[i]);
    jw_arr_end(w);
}

static void write_logprobs(jw *w, job *j) {
    jw_key(w, "logprobs");
    if (!j->logprobs || (j->stream && j->lp_sent == j->n_lp)) {
        jw_null(w);
        return;
    }
    const size_t from = j->lp_sent, to = j->n_lp;
    j->lp_sent = to;
    jw_obj(w);
    if (j->chat) {
        jw_key(w, "content");
        jw_arr(w);
        for (size_t i = from; i < to; i++) {
            const lp_rec *r = &j->lp[i];
            jw_obj(w);
            lp_token(w, r->prev, r->tok.token, 1);
            jw_key(w, "logprob");
            jw_num(w, lp_num(r->tok.logprob));
            jw_key(w, "top_logprobs");
            jw_arr(w);
            for (int k = 0; k < r->n_top; k++) {
                jw_obj(w);
                lp_token(w, r->prev, r->top[k].token, 1);
                jw_key(w, "logprob");
                jw_num(w, lp_num(r->top[k].logprob));
                jw_obj_end(w);
            }
            jw_arr_end(w);
            jw_obj_end(w);
        }
        jw_arr_end(w);
        jw_key(w, "refusal");
        jw_null(w);
    } else {
        size_t off = 0;
        for (size_t i = 0; i < from; i++) off += (size_t)lp_len(j->lp[i].prev, j->lp[i].tok.token);
        jw_key(w, "tokens");
        jw_arr(w);
        for (size_t i = from; i < to; i++) lp_token(w, j->lp[i].prev, j->lp[i].tok.token, 0);
        jw_arr_end(w);
        jw_key(w, "token_logprobs");
        jw_arr(w);
        for (size_t i = from; i < to; i++) jw_num(w, lp_num(j->lp[i].tok.logprob));
        jw_arr_end(w);
        jw_key(w, "top_logprobs");
        jw_arr(w);
        for (size_t i = from; i < to; i++) {
            jw_obj(w);
            for (int k = 0; k < j->lp[i].n_top; k++) {
                char t[256];
                jw_keyn(w, t, (size_t)lp_text(j->lp[i].prev, j->lp[i].top[k].token, t));
                jw_num(w, lp_num(j->lp[i].top[k].logprob));
            }
            jw_obj_end(w);
        }
        jw_arr_end(w);
        jw_key(w, "text_offset");
        jw_arr(w);
        for (size_t i = from; i < to; i++) {
            jw_int(w, (int64_t)off);
            off += (size_t)lp_len(j->lp[i].prev, j->lp[i].tok.token);
        }
        jw_arr_end(w);
    }
    jw_obj_end(w);
}

/* One streamed chunk: text (or the role opening, or the end). */
static void stream_chunk(conn *c, job *j, const char *id, long long created, const char *text, size_t n,
                         int first, int last) {
    jw w;
    jw_init(&w);
    jw_obj(&w);
    head_fields(&w, id, j->chat ? "chat.completion.chunk" : "text_completion", created);
    if (first) dropped_field(&w, j);
    jw_key(&w, "choices");
    jw_arr(&w);
    jw_obj(&w);
    jw_key(&w, "index");
    jw_int(&w, 0);
    if (j->chat) {
        jw_key(&w, "delta");
        jw_obj(&w);
        if (first) {
            jw_key(&w, "role");
            jw_str(&w, "assistant");
        }
        if (!last) {
            jw_key(&w, "content");
            jw_strn(&w, text, n);
        }
        jw_obj_end(&w);
    } else {
        jw_key(&w, "text");
        jw_strn(&w, text, n);
    }
    pthread_mutex_lock(&srv.mu);
    write_logprobs(&w, j);
    pthread_mutex_unlock(&srv.mu);
    jw_key(&w, "finish_reason");
    if (last) jw_str(&w, last == 2 ? "tool_calls" : finish_reason(j->finish));
    else jw_str(&w, NULL);
    jw_obj_end(&w);
    jw_arr_end(&w);
    jw_obj_end(&w);
    http_sse(&c->out, w.buf, w.len);
    jw_free(&w);
}

/* A streamed request with tools: the splitter's events become chunks,
 * content as content deltas, the call as delta.tool_calls (id, type and
 * name first, then the arguments in pieces), as OpenAI streams them. */
typedef struct {
    conn *c;
    job *j;
    const char *id, *call_id;
    long long created;
} tc_sink;

static void call_delta(const tc_sink *k, const char *name, size_t nn, const char *args, size_t an) {
    jw w;
    jw_init(&w);
    jw_obj(&w);
    head_fields(&w, k->id, "chat.completion.chunk", k->created);
    jw_key(&w, "choices");
    jw_arr(&w);
    jw_obj(&w);
    jw_key(&w, "index");
    jw_int(&w, 0);
    jw_key(&w, "delta");
    jw_obj(&w);
    jw_key(&w, "tool_calls");
    jw_arr(&w);
    jw_obj(&w);
    jw_key(&w, "index");
    jw_int(&w, 0);
    if (name) {
        jw_key(&w, "id");
        jw_str(&w, k->call_id);
        jw_key(&w, "type");
        jw_str(&w, "function");
    }
    jw_key(&w, "function");
    jw_obj(&w);
    if (name) {
        jw_key(&w, "name");
        jw_strn(&w, name, nn);
    }
    jw_key(&w, "arguments");
    jw_strn(&w, args, an);
    jw_obj_end(&w);
    jw_obj_end(&w);
    jw_arr_end(&w);
    jw_obj_end(&w);
    jw_key(&w, "logprobs");
    jw_str(&w, NULL);
    jw_key(&w, "finish_reason");
    jw_str(&w, NULL);
    jw_obj_end(&w);
    jw_arr_end(&w);
    jw_obj_end(&w);
    http_sse(&k->c->out, w.buf, w.len);
    jw_free(&w);
}

static void on_tool_event(void *user, int ev, const char *s, size_t n) {
    tc_sink *k = user;
    if (ev == TC_EV_CONTENT) stream_chunk(k->c, k->j, k->id, k->created, s, n, 0, 0);
    else if (ev == TC_EV_NAME) call_delta(k, s, n, "", 0);
    else call_delta(k, NULL, 0, s, n);
}

/* Non-streamed: the events collected. */
typedef struct {
    char *content, *name, *args;
    size_t nc, nn, na;
    int oom;
} tc_parts;

static void on_tool_part(void *user, int ev, const char *s, size_t n) {
    tc_parts *p = user;
    char **d = ev == TC_EV_CONTENT ? &p->content : ev == TC_EV_NAME ? &p->name : &p->args;
    size_t *l = ev == TC_EV_CONTENT ? &p->nc : ev == TC_EV_NAME ? &p->nn : &p->na;
    char *q = realloc(*d, *l + n + 1);
    if (!q) {
        p->oom = 1;
        return;
    }
    memcpy(q + *l, s, n);
    *l += n;
    q[*l] = 0;
    *d = q;
}

/* Queue the job; 0, or -1 when the queue is full (then it is not queued). */
static int enqueue(job *j) {
    pthread_mutex_lock(&srv.mu);
    int busy_slots = srv.busy;
    if (srv.q_len >= srv.o.max_queue && busy_slots + srv.q_len >= srv.o.parallel) {
        pthread_mutex_unlock(&srv.mu);
        return -1;
    }
    j->t_queued = now_s();
    if (srv.q_tail) srv.q_tail->next = j;
    else srv.q_head = j;
    srv.q_tail = j;
    srv.q_len++;
    pthread_cond_signal(&srv.work);
    pthread_mutex_unlock(&srv.mu);
    return 0;
}

/* The connection is gone: a queued job leaves the queue, a running one is
 * cancelled; either way wait until the engine lets go of it. */
static void cancel_job(job *j) {
    pthread_mutex_lock(&srv.mu);
    job **pp = &srv.q_head, *prev = NULL;
    while (*pp && *pp != j) prev = *pp, pp = &(*pp)->next;
    if (*pp) {
        *pp = j->next;
        if (srv.q_tail == j) srv.q_tail = prev;
        srv.q_len--;
        j->done = 1;
        j->finish = PL_GEN_ERROR;
    }
    j->cancelled = 1;
    pthread_cond_signal(&srv.work);
    while (!j->done) pthread_cond_wait(&j->cv, &srv.mu);
    pthread_mutex_unlock(&srv.mu);
}

/* Waits for text or the end; what is new is copied to *buf (*n bytes).
 * 1 when done. Checks the peer every 200 ms: gone -> *gone = 1. */
static int wait_text(conn *c, job *j, size_t *read, char **buf, size_t *n, int *gone) {
    *n = 0;
    if (buf) *buf = NULL; /* also when the peer is gone: the caller frees it */
    pthread_mutex_lock(&srv.mu);
    while (!j->done && j->out_len == *read) {
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        ts.tv_nsec += 200 * 1000000L;
        if (ts.tv_nsec >= 1000000000L) ts.tv_sec++, ts.tv_nsec -= 1000000000L;
        pthread_cond_timedwait(&j->cv, &srv.mu, &ts);
        if (!j->done && j->out_len == *read) {
            pthread_mutex_unlock(&srv.mu);
            if (peer_gone(c->fd)) {
                *gone = 1;
                return 1;
            }
            pthread_mutex_lock(&srv.mu);
        }
    }
    *n = j->out_len - *read;
    if (buf) { /* NULL: the caller only waits (the whole text is read at the end) */
        *buf = *n ? malloc(*n) : NULL;
        if (*buf) memcpy(*buf, j->out + *read, *n);
        else *n = 0;
    }
    *read += *n;
    int done = j->done && *read == j->out_len;
    pthread_mutex_unlock(&srv.mu);
    return done;
}

static int read_sampling(conn *c, int ka, const json_value *body, job *j) {
    double temp, top_p;
    int64_t seed, mt, mct, nn;
    int rc;
    if ((rc = json_get_num(body, "temperature", 1.0, &temp)) < 0 || !(temp >= 0 && temp <= 2))
        return BAD("temperature", "temperature must be a number from 0 to 2");
    if ((rc = json_get_num(body, "top_p", 1.0, &top_p)) < 0 || !(top_p > 0 && top_p <= 1))
        return BAD("top_p", "top_p must be a number in (0, 1]");
    if ((rc = json_get_int(body, "seed", (int64_t)time(NULL), &seed)) < 0) return BAD("seed", "seed must be an integer");
    if ((rc = json_get_int(body, "max_tokens", -1, &mt)) < 0 || mt < -1 || mt == 0 || mt > (1 << 24))
        return BAD("max_tokens", "max_tokens must be a positive integer");
    if ((rc = json_get_int(body, "max_completion_tokens", mt, &mct)) < 0 || mct < -1 || mct == 0 || mct > (1 << 24))
        return BAD("max_completion_tokens", "max_completion_tokens must be a positive integer");
    if ((rc = json_get_int(body, "n", 1, &nn)) < 0 || nn != 1) return BAD("n", "only n = 1 is supported");
    const json_value *fn = json_get(body, "functions");
    if (fn && fn->type != JSON_NULL && !(fn->type == JSON_ARRAY && fn->len == 0))
        return BAD("functions", "functions is not supported: use tools");
    /* OpenAI's penalties and bias, and llama.cpp's extensions (top_k,
     * min_p, repeat_penalty, repeat_last_n) on the library's sampler */
    double pres, freq, min_p, rpen;
    int64_t top_k, rlast;
    if ((rc = json_get_num(body, "presence_penalty", 0, &pres)) < 0 || !(pres >= -2 && pres <= 2))
        return BAD("presence_penalty", "presence_penalty must be a number from -2 to 2");
    if ((rc = json_get_num(body, "frequency_penalty", 0, &freq)) < 0 || !(freq >= -2 && freq <= 2))
        return BAD("frequency_penalty", "frequency_penalty must be a number from -2 to 2");
    if ((rc = json_get_num(body, "min_p", 0, &min_p)) < 0 || !(min_p >= 0 && min_p <= 1))
        return BAD("min_p", "min_p must be a number from 0 to 1");
    if ((rc = json_get_num(body, "repeat_penalty", 1, &rpen)) < 0 || !(rpen >= 0 && rpen <= 10))
        return BAD("repeat_penalty", "repeat_penalty must be a number from 0 to 10 (1: off)");
    if ((rc = json_get_int(body, "top_k", 0, &top_k)) < 0 || top_k < 0 || top_k > (1 << 24))
        return BAD("top_k", "top_k must be a non-negative integer (0: off)");
    if ((rc = json_get_int(body, "repeat_last_n", 64, &rlast)) < 0 || rlast < -1 || rlast > (1 << 24))
        return BAD("repeat_last_n", "repeat_last_n must be an integer from -1 (all) up");
    const json_value *lb = json_get(body, "logit_bias");
    if (lb && lb->type != JSON_NULL) {
        if (lb->type != JSON_OBJECT || lb->len > 1024)
            return BAD("logit_bias", "logit_bias must be an object of at most 1024 token ids to numbers");
        if (lb->len && !(j->bias = malloc(lb->len * sizeof *j->bias)))
            return BAD("logit_bias", "out of memory for logit_bias");
        const int V = pl_model_get_info(srv.m)->n_vocab;
        for (size_t i = 0; i < lb->len; i++) {
            const char *key = lb->kids[i].key;
            const json_value *v = &lb->kids[i];
            char *end;
            long id = strtol(key, &end, 10);
            if (!*key || *end || strlen(key) != lb->kids[i].keylen || id < 0 || id >= V)
                return BAD("logit_bias", "logit_bias key '%.40s' is not a token id below %d", key, V);
            if (v->type != JSON_NUMBER || !(v->num >= -100 && v->num <= 100))
                return BAD("logit_bias", "logit_bias values must be numbers from -100 to 100");
            /* -100 bans the token outright, as OpenAI's does in effect */
            j->bias[i].token = (int32_t)id;
            j->bias[i].bias = v->num <= -100 ? -INFINITY : (float)v->num;
        }
        j->sp.logit_bias = j->bias;
        j->sp.n_logit_bias = (int)lb->len;
    }
    /* logprobs: chat takes true/false and top_logprobs 0-20, completions
     * an integer 0-5 (the top alternatives) */
    const json_value *lp = json_get(body, "logprobs");
    if (lp && lp->type != JSON_NULL) {
        if (j->chat && lp->type == JSON_BOOL) j->logprobs = lp->num != 0;
        else if (!j->chat && lp->type == JSON_NUMBER && lp->num >= 0 && lp->num <= 5 && lp->num == (int)lp->num)
            j->logprobs = 1, j->top_logprobs = (int)lp->num;
        else return BAD("logprobs", j->chat ? "logprobs must be true or false" : "logprobs must be an integer from 0 to 5");
    }
    const json_value *tl = json_get(body, "top_logprobs");
    if (tl && tl->type != JSON_NULL) {
        if (!j->chat || tl->type != JSON_NUMBER || !(tl->num >= 0 && tl->num <= 20) || tl->num != (int)tl->num)
            return BAD("top_logprobs", "top_logprobs must be an integer from 0 to 20 (chat)");
        if (!j->logprobs && tl->num > 0) return BAD("top_logprobs", "top_logprobs needs logprobs: true");
        j->top_logprobs = (int)tl->num;
    }
    j->sp.temperature = (float)temp;
    j->sp.top_p = (float)top_p;
    j->sp.top_k = (int)top_k;
    j->sp.seed = (uint64_t)seed;
    j->sp.min_p = (float)min_p;
    j->sp.repeat_penalty = (float)rpen;
    j->sp.repeat_last_n = (int)rlast;
    j->sp.presence_penalty = (float)pres;
    j->sp.frequency_penalty = (float)freq;
    j->max_tokens = (int)mct;
    const json_value *st = json_get(body, "stop");
    if (st && st->type == JSON_STRING) {
        if (st->len == 0 || st->len > 512) return BAD("stop", "a stop string is 1 to 512 bytes");
        j->stop[j->n_stop++] = strdup(st->str);
    } else if (st && st->type == JSON_ARRAY) {
        if (st->len > 4) return BAD("stop", "at most 4 stop strings");
        for (size_t i = 0; i < st->len; i++) {
            const json_value *e = json_at(st, i);
            if (e->type != JSON_STRING || e->len == 0 || e->len > 512 || strlen(e->str) != e->len)
                return BAD("stop", "stop must be a string or a list of non-empty strings");
            j->stop[j->n_stop++] = strdup(e->str);
        }
    } else if (st && st->type != JSON_NULL) {
        return BAD("stop", "stop must be a string or a list of strings");
    }
    const json_value *rf = json_get(body, "response_format");
    if (rf && rf->type != JSON_NULL) {
        const char *type;
        char err[256];
        if (rf->type != JSON_OBJECT || json_get_str(rf, "type", "text", &type, NULL) < 0)
            return BAD("response_format", "response_format must be an object with a type");
        int grc = 0;
        if (!strcmp(type, "json_object")) {
            grc = pl_grammar_new_json(&j->gram, 0, err, sizeof err);
        } else if (!strcmp(type, "json_schema")) {
            const json_value *js = json_get(rf, "json_schema"), *sc = js ? json_get(js, "schema") : NULL;
            if (!sc || sc->type != JSON_OBJECT)
                return BAD("response_format", "json_schema needs a schema object");
            jw w;
            jw_init(&w);
            jw_value(&w, sc);
            grc = jw_status(&w) ? -1 : pl_grammar_new_json_schema(&j->gram, w.buf, w.len, err, sizeof err);
            jw_free(&w);
        } else if (strcmp(type, "text")) {
            return BAD("response_format", "response_format type '%s' is not supported", type);
        }
        if (grc) return BAD("response_format", "the schema cannot be used: %s", err);
        if (j->gram && pl_grammar_bind(j->gram, srv.gvocab)) return BAD("response_format", "cannot bind the grammar");
    }
    return 0;
}

/* tools, tool_choice, parallel_tool_calls -> *t (listed in the prompt when
 * j->tools) and the call grammar (j->gram forced, j->tool_gram lazy). */
static int read_tools(conn *c, int ka, const json_value *body, int chat, job *j, tc_tools *t) {
    const json_value *tv = json_get(body, "tools"), *tc = json_get(body, "tool_choice"),
                     *ptc = json_get(body, "parallel_tool_calls");
    char err[256];
    int have = tv && tv->type != JSON_NULL && !(tv->type == JSON_ARRAY && tv->len == 0);
    if (ptc && ptc->type != JSON_NULL && ptc->type != JSON_BOOL)
        return BAD("parallel_tool_calls", "parallel_tool_calls must be a boolean");
    const char *choice = "auto", *named = NULL;
    if (tc && tc->type == JSON_STRING) {
        choice = tc->str;
        if (strcmp(choice, "auto") && strcmp(choice, "none") && strcmp(choice, "required"))
            return BAD("tool_choice", "tool_choice must be \"auto\", \"none\", \"required\" or a function");
    } else if (tc && tc->type == JSON_OBJECT) {
        const json_value *fn = json_get(tc, "function");
        const char *ty;
        if (json_get_str(tc, "type", NULL, &ty, NULL) != JSON_OK || strcmp(ty, "function") || !fn ||
            fn->type != JSON_OBJECT || json_get_str(fn, "name", NULL, &named, NULL) != JSON_OK)
            return BAD("tool_choice", "tool_choice must be {\"type\": \"function\", \"function\": {\"name\": ...}}");
        choice = "required";
    } else if (tc && tc->type != JSON_NULL) {
        return BAD("tool_choice", "tool_choice must be a string or an object");
    }
    if (!have) {
        if (tc && tc->type != JSON_NULL && strcmp(choice, "none") && strcmp(choice, "auto"))
            return BAD("tool_choice", "tool_choice needs tools");
        return 0;
    }
    if (!chat) return BAD("tools", "tools are for /v1/chat/completions");
    if (tc_tools_parse(t, tv, err, sizeof err)) return BAD("tools", "%s", err);
    if (!strcmp(choice, "none")) return 0; /* the conversation still renders its earlier calls */
    int only = -1;
    if (named && (only = tc_tools_find(t, named)) < 0)
        return BAD("tool_choice", "tool_choice names '%s', which is not among the tools", named);
    if (j->gram) return BAD("response_format", "response_format cannot be combined with tools");
    j->tc_style = tc_style(srv.tmpl);
    char *gbnf = tc_grammar(t, j->tc_style, only);
    pl_grammar *g = NULL;
    int grc = gbnf ? pl_grammar_new_gbnf(&g, gbnf, strlen(gbnf), err, sizeof err) : -1;
    free(gbnf);
    if (grc || pl_grammar_bind(g, srv.gvocab)) {
        pl_grammar_free(g);
        return BAD("tools", "the tool call grammar cannot be built: %s", gbnf ? err : "out of memory");
    }
    j->tools = strcmp(choice, "auto") ? 2 : 1;
    if (j->tools == 2) j->gram = g;
    else j->tool_gram = g;
    return 0;
}

/* Chat messages -> prompt ids (message contents never parsed for special
 * tokens; the framing of earlier tool calls is the template's text). With
 * tools, their definitions join the system message (one is added first if
 * there is none); tool results go to the family's tool turn, or to a user
 * turn inside <tool_response> tags for a family without one. */
static int chat_prompt(conn *c, int ka, const json_value *msgs, job *j, const tc_tools *tools) {
    if (!msgs || msgs->type != JSON_ARRAY || msgs->len == 0)
        return BAD("messages", "messages must be a non-empty array");
    int style = tc_style(srv.tmpl), add_sys = j->tools && tools->n;
    size_t nm = msgs->len + 1; /* room for a system message of the tools */
    pl_chat_msg *cm = calloc(nm, sizeof *cm);
    char **owned = calloc(nm, sizeof *owned);
    size_t *frame = calloc(nm, sizeof *frame); /* bytes of call framing that end message i */
    int rc = -1;
    char *text = NULL;
    size_t *spans = malloc(nm * 2 * sizeof *spans);
    pl_chat_msg probe = {"tool", ""};
    int tool_turn = pl_chat_format_msgs(srv.tmpl, &probe, 1, 0, NULL, 0, NULL) >= 0;
    if (!cm || !owned || !spans || !frame) goto done;
    for (size_t i = 0; i < msgs->len; i++) {
        const json_value *mv = json_at(msgs, i), *ct;
        const char *role;
        if (mv->type != JSON_OBJECT || json_get_str(mv, "role", NULL, &role, NULL) != JSON_OK) {
            rc = BAD("messages", "message %zu needs a role", i);
            goto done;
        }
        if (strcmp(role, "system") && strcmp(role, "user") && strcmp(role, "assistant") && strcmp(role, "tool") &&
            strcmp(role, "developer")) {
            rc = BAD("messages", "message %zu has an unknown role '%s'", i, role);
            goto done;
        }
        cm[i].role = !strcmp(role, "developer") ? "system" : role;
        ct = json_get(mv, "content");
        if (!ct || ct->type == JSON_NULL) cm[i].content = "";
        else if (ct->type == JSON_STRING) {
            if (strlen(ct->str) != ct->len) {
                rc = BAD("messages", "message %zu holds a NUL character", i);
                goto done;
            }
            cm[i].content = ct->str;
        } else if (ct->type == JSON_ARRAY) { /* content parts: the text ones, joined */
            size_t total = 0;
            for (size_t k = 0; k < ct->len; k++) {
                const json_value *part = json_at(ct, k);
                const char *ty, *tx;
                size_t tl;
                if (part->type != JSON_OBJECT || json_get_str(part, "type", "", &ty, NULL) < 0 || strcmp(ty, "text") ||
                    json_get_str(part, "text", NULL, &tx, &tl) != JSON_OK) {
                    rc = BAD("messages", "message %zu: only text content parts are supported", i);
                    goto done;
                }
                total += tl;
            }
            owned[i] = malloc(total + 1);
            if (!owned[i]) goto done;
            size_t at = 0;
            for (size_t k = 0; k < ct->len; k++) {
                const char *tx;
                size_t tl;
                json_get_str(json_at(ct, k), "text", NULL, &tx, &tl);
                memcpy(owned[i] + at, tx, tl);
                at += tl;
            }
            owned[i][at] = 0;
            if (strlen(owned[i]) != at) {
                rc = BAD("messages", "message %zu holds a NUL character", i);
                goto done;
            }
            cm[i].content = owned[i];
        } else {
            rc = BAD("messages", "message %zu: content must be a string or a list of parts", i);
            goto done;
        }
        const json_value *tcs = json_get(mv, "tool_calls");
        if (tcs && tcs->type != JSON_NULL && !(tcs->type == JSON_ARRAY && tcs->len == 0)) {
            if (strcmp(role, "assistant") || tcs->type != JSON_ARRAY || tcs->len > 64) {
                rc = BAD("messages", "message %zu: tool_calls must be a list in an assistant message", i);
                goto done;
            }
            tc_call calls[64];
            for (size_t k = 0; k < tcs->len; k++) {
                const json_value *cv = json_at(tcs, k), *fn = json_get(cv, "function"), *ar;
                ar = fn ? json_get(fn, "arguments") : NULL;
                if (!fn || fn->type != JSON_OBJECT || json_get_str(fn, "name", NULL, &calls[k].name, NULL) != JSON_OK ||
                    !ar || ar->type != JSON_STRING) {
                    rc = BAD("messages", "message %zu: tool_calls[%zu] needs function.name and function.arguments", i, k);
                    goto done;
                }
                calls[k].args = ar->str, calls[k].args_len = ar->len;
            }
            char *r;
            size_t keep;
            int trc = tc_render_calls(style, cm[i].content, calls, (int)tcs->len, &r, &keep);
            if (trc == -1) {
                rc = BAD("messages", "message %zu: a tool call's name or arguments (a JSON object) are not valid", i);
                goto done;
            }
            if (trc) goto done;
            free(owned[i]);
            owned[i] = r;
            cm[i].content = r;
            frame[i] = strlen(r) - keep;
        }
        if (!strcmp(role, "tool") && !tool_turn) { /* no tool turn: a user turn, as Qwen's template writes one */
            size_t l = strlen(cm[i].content);
            char *r = malloc(l + 40);
            if (!r) goto done;
            snprintf(r, l + 40, "<tool_response>\n%s\n</tool_response>", cm[i].content);
            free(owned[i]);
            owned[i] = r;
            cm[i].role = "user";
            cm[i].content = r;
        }
    }
    size_t n_msgs = msgs->len;
    if (add_sys) { /* the tools go into the system message */
        int has = !strcmp(cm[0].role, "system");
        if (!has) {
            memmove(cm + 1, cm, n_msgs * sizeof *cm);
            memmove(owned + 1, owned, n_msgs * sizeof *owned);
            memmove(frame + 1, frame, n_msgs * sizeof *frame);
            owned[0] = NULL, frame[0] = 0, cm[0].role = "system", cm[0].content = "";
            n_msgs++;
        }
        char *st = tc_system_text(tools, style, cm[0].content);
        if (!st) goto done;
        free(owned[0]);
        owned[0] = st;
        cm[0].content = st;
    }
    /* the conversation as the template writes it; with --ctx-overflow
     * drop, while it leaves less than the answer's room (max_tokens up to
     * half the context, else a quarter), its oldest turns after the system
     * messages go, a user turn at a time, down to the last one */
    const int n_ctx = pl_context_n_ctx(srv.ctx);
    const int room = j->max_tokens > 0 && j->max_tokens < n_ctx / 2 ? j->max_tokens : n_ctx / 4;
    size_t n_sys = 0, from;
    while (n_sys < n_msgs && !strcmp(cm[n_sys].role, "system")) n_sys++;
    pl_chat_msg *sub = malloc((n_msgs + 1) * sizeof *sub);
    size_t *sframe = malloc((n_msgs + 1) * sizeof *sframe);
    if (!sub || !sframe) {
        free(sub), free(sframe);
        goto done;
    }
    for (from = n_sys;;) {
        size_t ns = n_sys + (n_msgs - from);
        memcpy(sub, cm, n_sys * sizeof *sub);
        memcpy(sub + n_sys, cm + from, (n_msgs - from) * sizeof *sub);
        memcpy(sframe, frame, n_sys * sizeof *sframe);
        memcpy(sframe + n_sys, frame + from, (n_msgs - from) * sizeof *sframe);
        int len = pl_chat_format_msgs(srv.tmpl, sub, (int)ns, 1, NULL, 0, NULL);
        if (len < 0) {
            rc = BAD("messages", "the conversation cannot be written in the model's chat template (%s)", srv.tmpl);
            break;
        }
        free(text);
        free(j->ids);
        j->ids = NULL;
        text = malloc((size_t)len + 1);
        if (!text) break;
        pl_chat_format_msgs(srv.tmpl, sub, (int)ns, 1, text, (size_t)len + 1, spans);
        for (size_t i = 0; i < ns; i++) /* a call's framing is template text: special tokens parse */
            if (sframe[i])
                spans[2 * i + 1] =
                    spans[2 * i + 1] - sframe[i] > spans[2 * i] ? spans[2 * i + 1] - sframe[i] : spans[2 * i];
        int cap = len + 16;
        j->ids = malloc((size_t)cap * sizeof *j->ids);
        if (!j->ids) break;
        j->n_ids = pl_tokenize_spans(srv.m, text, (size_t)len, pl_add_bos(srv.m), spans, (int)ns, j->ids, cap);
        if (j->n_ids < 0 || j->n_ids > cap) {
            rc = BAD("messages", "tokenization failed");
            break;
        }
        size_t next = from + 1;
        while (next < n_msgs && strcmp(cm[next].role, "user")) next++;
        if (!srv.o.drop_turns || j->n_ids + room <= n_ctx || next >= n_msgs) {
            rc = 0;
            break;
        }
        j->dropped += (int)(next - from);
        from = next;
    }
    free(sub);
    free(sframe);
    if (rc) goto done;
    rc = 0;
done:
    if (rc && !cm) send_error(c, 500, "server_error", "out_of_memory", NULL, 0, "out of memory");
    for (size_t i = 0; owned && i < nm; i++) free(owned[i]);
    free(owned);
    free(frame);
    free(cm);
    free(spans);
    free(text);
    return rc;
}

static int plain_prompt(conn *c, int ka, const json_value *pr, job *j) {
    if (pr && pr->type == JSON_ARRAY && pr->len == 1) pr = json_at(pr, 0);
    if (!pr || pr->type != JSON_STRING || pr->len == 0) return BAD("prompt", "prompt must be a non-empty string");
    int cap = (int)pr->len + 16;
    j->ids = malloc((size_t)cap * sizeof *j->ids);
    if (!j->ids) return BAD("prompt", "out of memory");
    j->n_ids = pl_tokenize(srv.m, pr->str, pr->len, pl_add_bos(srv.m), 1, j->ids, cap);
    if (j->n_ids <= 0 || j->n_ids > cap) return BAD("prompt", "tokenization failed");
    return 0;
}

/* POST /v1/chat/completions and /v1/completions. 0: keep the connection. */
static int completions(conn *c, const http_request *rq, int chat, int ka) {
    char err[256];
    json_value *body = NULL;
    json_limits lim = {srv.o.max_body, 64, 1 << 20};
    if (json_parse(&body, rq->body, rq->body_len, &lim, err, sizeof err) || body->type != JSON_OBJECT) {
        send_error(c, 400, "invalid_request_error", "invalid_json", NULL, ka, "%s",
                   body ? "the body must be a JSON object" : err);
        json_free(body);
        return 0;
    }
    job *j = calloc(1, sizeof *j);
    if (!j) {
        json_free(body);
        send_error(c, 500, "server_error", "out_of_memory", NULL, 0, "out of memory");
        return -1;
    }
    pthread_cond_init(&j->cv, NULL);
    j->chat = chat;
    const char *model;
    int stream = 0, inc_usage = 0, rc = 0;
    const json_value *so = json_get(body, "stream_options");
    if (json_get_str(body, "model", srv.model_id, &model, NULL) < 0) rc = BAD("model", "model must be a string");
    else if (strcmp(model, srv.model_id) && strcmp(model, srv.o.model)) {
        send_error(c, 404, "invalid_request_error", "model_not_found", "model", ka,
                   "the model '%s' does not exist (this server has '%s')", model, srv.model_id);
        rc = -1;
    } else if (json_get_bool(body, "stream", 0, &stream) < 0) rc = BAD("stream", "stream must be a boolean");
    else if (so && so->type != JSON_NULL && (so->type != JSON_OBJECT || json_get_bool(so, "include_usage", 0, &inc_usage) < 0))
        rc = BAD("stream_options", "stream_options must be an object");
    tc_tools tools = {0};
    if (!rc) rc = read_sampling(c, ka, body, j);
    if (!rc) rc = read_tools(c, ka, body, chat, j, &tools);
    if (!rc)
        rc = chat ? chat_prompt(c, ka, json_get(body, "messages"), j, &tools)
                  : plain_prompt(c, ka, json_get(body, "prompt"), j);
    tc_tools_free(&tools);
    json_free(body);
    int n_ctx = pl_context_n_ctx(srv.ctx);
    if (!rc && j->n_ids >= n_ctx) {
        send_error(c, 400, "invalid_request_error", "context_length_exceeded", "messages", ka,
                   "the prompt is %d tokens; the context holds %d", j->n_ids, n_ctx);
        rc = -1;
    }
    if (rc) {
        job_free(j);
        return 0;
    }
    if (j->max_tokens < 0 || j->max_tokens > n_ctx - j->n_ids) j->max_tokens = n_ctx - j->n_ids;
    j->stream = stream;
    srv.m_requests++;
    if (enqueue(j)) {
        job_free(j);
        send_error(c, 503, "server_error", "server_overloaded", NULL, ka, "every slot is busy and the queue is full");
        return 0;
    }
    static atomic_long counter;
    char id[64];
    long long created = (long long)time(NULL);
    long long serial = counter++;
    snprintf(id, sizeof id, "%s-%lld%04lld", chat ? "chatcmpl" : "cmpl", created, serial % 10000);
    char call_id[64]; /* unique within this server's life, and across restarts by the time */
    snprintf(call_id, sizeof call_id, "call_%llx%llx", created, serial);
    size_t read = 0;
    int gone = 0, done = 0;
    if (stream) {
        http_head(&c->out, 200, "text/event-stream", -1, ka, "Cache-Control: no-cache\r\n");
        if (chat) stream_chunk(c, j, id, created, "", 0, 1, 0);
        if (flush_out(c)) gone = 1;
        tc_sink sink = {c, j, id, call_id, created};
        tc_stream ts;
        tc_stream_init(&ts, j->tc_style, on_tool_event, &sink);
        while (!gone && !done) {
            char *t;
            size_t n;
            done = wait_text(c, j, &read, &t, &n, &gone);
            if (n && j->tools) tc_stream_feed(&ts, t, n);
            else if (n) stream_chunk(c, j, id, created, t, n, 0, 0);
            free(t);
            if (done && j->tools) tc_stream_end(&ts);
            if (!gone && c->out.len && flush_out(c)) gone = 1;
        }
        int called = ts.called && ts.complete;
        tc_stream_free(&ts);
        if (!gone) {
            if (j->finish == PL_GEN_ERROR && j->err[0]) {
                jw w;
                jw_init(&w);
                jw_obj(&w);
                jw_key(&w, "error");
                jw_obj(&w);
                jw_key(&w, "message");
                jw_str(&w, j->err);
                jw_key(&w, "type");
                jw_str(&w, "server_error");
                jw_obj_end(&w);
                jw_obj_end(&w);
                http_sse(&c->out, w.buf, w.len);
                jw_free(&w);
            } else {
                stream_chunk(c, j, id, created, "", 0, 0, called ? 2 : 1);
            }
            if (inc_usage) {
                jw w;
                jw_init(&w);
                jw_obj(&w);
                head_fields(&w, id, chat ? "chat.completion.chunk" : "text_completion", created);
                jw_key(&w, "choices");
                jw_arr(&w);
                jw_arr_end(&w);
                usage_obj(&w, j);
                jw_obj_end(&w);
                http_sse(&c->out, w.buf, w.len);
                jw_free(&w);
            }
            http_sse(&c->out, "[DONE]", 6);
            http_chunk_end(&c->out);
            if (flush_out(c)) gone = 1;
        }
    } else {
        while (!gone && !done) {
            size_t n;
            done = wait_text(c, j, &read, NULL, &n, &gone);
        }
        if (!gone) {
            if (j->finish == PL_GEN_ERROR) {
                send_error(c, 500, "server_error", "generation_failed", NULL, ka, "%s", j->err[0] ? j->err : "failed");
            } else {
                jw w;
                jw_init(&w);
                jw_obj(&w);
                head_fields(&w, id, chat ? "chat.completion" : "text_completion", created);
                dropped_field(&w, j);
                jw_key(&w, "choices");
                jw_arr(&w);
                jw_obj(&w);
                jw_key(&w, "index");
                jw_int(&w, 0);
                pthread_mutex_lock(&srv.mu);
                tc_parts tp = {0};
                int called = 0;
                if (chat && j->tools) { /* the text and the call apart; a call that did not close is text */
                    tc_stream ts;
                    tc_stream_init(&ts, j->tc_style, on_tool_part, &tp);
                    tc_stream_feed(&ts, j->out ? j->out : "", j->out_len);
                    tc_stream_end(&ts);
                    json_value *av = NULL;
                    char e[64];
                    called = ts.called && ts.complete && !ts.oom && !tp.oom && tp.args &&
                             !json_parse(&av, tp.args, tp.na, NULL, e, sizeof e);
                    json_free(av);
                    tc_stream_free(&ts);
                    while (called && tp.nc && strchr(" \t\r\n", tp.content[tp.nc - 1])) tp.nc--;
                }
                if (chat) {
                    jw_key(&w, "message");
                    jw_obj(&w);
                    jw_key(&w, "role");
                    jw_str(&w, "assistant");
                    jw_key(&w, "content");
                    if (called && !tp.nc) jw_str(&w, NULL);
                    else if (called) jw_strn(&w, tp.content, tp.nc);
                    else jw_strn(&w, j->out ? j->out : "", j->out_len);
                    if (called) {
                        jw_key(&w, "tool_calls");
                        jw_arr(&w);
                        jw_obj(&w);
                        jw_key(&w, "id");
                        jw_str(&w, call_id);
                        jw_key(&w, "type");
                        jw_str(&w, "function");
                        jw_key(&w, "function");
                        jw_obj(&w);
                        jw_key(&w, "name");
                        jw_strn(&w, tp.name ? tp.name : "", tp.nn);
                        jw_key(&w, "arguments");
                        jw_strn(&w, tp.args, tp.na);
                        jw_obj_end(&w);
                        jw_obj_end(&w);
                        jw_arr_end(&w);
                    }
                    jw_obj_end(&w);
                } else {
                    jw_key(&w, "text");
                    jw_strn(&w, j->out ? j->out : "", j->out_len);
                }
                write_logprobs(&w, j);
                pthread_mutex_unlock(&srv.mu);
                jw_key(&w, "finish_reason");
                jw_str(&w, called ? "tool_calls" : finish_reason(j->finish));
                free(tp.content), free(tp.name), free(tp.args);
                jw_obj_end(&w);
                jw_arr_end(&w);
                usage_obj(&w, j);
                jw_obj_end(&w);
                send_json(c, 200, &w, ka);
                jw_free(&w);
            }
            if (flush_out(c)) gone = 1;
        }
    }
    if (gone || !done) cancel_job(j);
    job_free(j);
    return gone ? -1 : 0;
}

static void metrics(conn *c, int ka) {
    char buf[2048];
    pthread_mutex_lock(&srv.mu);
    int busy = srv.busy, ql = srv.q_len;
    double gs = srv.gen_seconds;
    pthread_mutex_unlock(&srv.mu);
    long long gen = srv.m_gen_tok;
    int n = snprintf(buf, sizeof buf,
                     "# TYPE picolm_requests_total counter\npicolm_requests_total %lld\n"
                     "# TYPE picolm_errors_total counter\npicolm_errors_total %lld\n"
                     "# TYPE picolm_prompt_tokens_total counter\npicolm_prompt_tokens_total %lld\n"
                     "# TYPE picolm_cached_prompt_tokens_total counter\npicolm_cached_prompt_tokens_total %lld\n"
                     "# TYPE picolm_generated_tokens_total counter\npicolm_generated_tokens_total %lld\n"
                     "# TYPE picolm_decode_seconds_total counter\npicolm_decode_seconds_total %.3f\n"
                     "# TYPE picolm_tokens_per_second gauge\npicolm_tokens_per_second %.2f\n"
                     "# TYPE picolm_busy_slots gauge\npicolm_busy_slots %d\n"
                     "# TYPE picolm_slots gauge\npicolm_slots %d\n"
                     "# TYPE picolm_queue_length gauge\npicolm_queue_length %d\n"
                     "# TYPE picolm_connections gauge\npicolm_connections %d\n"
                     "# TYPE picolm_draft_tokens_total counter\npicolm_draft_tokens_total %lld\n"
                     "# TYPE picolm_draft_accepted_total counter\npicolm_draft_accepted_total %lld\n",
                     (long long)srv.m_requests, (long long)srv.m_errors, (long long)srv.m_prompt_tok,
                     (long long)srv.m_cached_tok, gen, gs, gs > 0 ? gen / gs : 0.0, busy, srv.o.parallel, ql,
                     atomic_load(&srv.n_conn), (long long)srv.m_drafted, (long long)srv.m_accepted);
    http_response(&c->out, 200, "text/plain; version=0.0.4", buf, (size_t)n, ka, NULL);
}

/* One request; returns -1 to close the connection. */
static int handle(conn *c, const http_request *rq) {
    int ka = rq->keep_alive;
    const char *path = rq->path;
    int is_get = !strcmp(rq->method, "GET"), is_post = !strcmp(rq->method, "POST");
    if (!strcmp(rq->method, "OPTIONS")) {
        http_response(&c->out, 204, NULL, "", 0, ka,
                      "Access-Control-Allow-Origin: *\r\nAccess-Control-Allow-Headers: *\r\n"
                      "Access-Control-Allow-Methods: GET, POST, OPTIONS\r\n");
        return flush_out(c) ? -1 : 0;
    }
    if (!strcmp(path, "/health") && is_get) {
        static const char ok[] = "{\"status\":\"ok\"}";
        http_response(&c->out, 200, "application/json", ok, sizeof ok - 1, ka, NULL);
        return flush_out(c) ? -1 : 0;
    }
    if (srv.o.api_key && !http_auth_bearer(&c->hp, srv.o.api_key)) {
        send_error(c, 401, "invalid_request_error", "invalid_api_key", NULL, ka, "a valid API key is required");
        return flush_out(c) ? -1 : 0;
    }
    int rc = 0;
    if (!strcmp(path, "/metrics") && is_get) metrics(c, ka);
    else if ((!strcmp(path, "/v1/models") || !strcmp(path, "/models")) && is_get) {
        jw w;
        jw_init(&w);
        jw_obj(&w);
        jw_key(&w, "object");
        jw_str(&w, "list");
        jw_key(&w, "data");
        jw_arr(&w);
        jw_obj(&w);
        jw_key(&w, "id");
        jw_str(&w, srv.model_id);
        jw_key(&w, "object");
        jw_str(&w, "model");
        jw_key(&w, "created");
        jw_int(&w, 0);
        jw_key(&w, "owned_by");
        jw_str(&w, "picolm");
        jw_obj_end(&w);
        jw_arr_end(&w);
        jw_obj_end(&w);
        send_json(c, 200, &w, ka);
        jw_free(&w);
    } else if ((!strcmp(path, "/v1/chat/completions") || !strcmp(path, "/chat/completions")) && is_post) {
        rc = completions(c, rq, 1, ka);
        if (rc) return -1;
        return c->out.len && flush_out(c) ? -1 : 0;
    } else if ((!strcmp(path, "/v1/completions") || !strcmp(path, "/completions")) && is_post) {
        rc = completions(c, rq, 0, ka);
        if (rc) return -1;
        return c->out.len && flush_out(c) ? -1 : 0;
    } else if (is_get || is_post) {
        send_error(c, 404, "invalid_request_error", "not_found", NULL, ka, "no route %s %s", rq->method, path);
    } else {
        send_error(c, 405, "invalid_request_error", "method_not_allowed", NULL, ka, "method %s is not allowed",
                   rq->method);
    }
    return flush_out(c) ? -1 : 0;
}

static void *conn_main(void *arg) {
    conn *c = arg;
    char buf[16384];
    size_t have = 0;
    http_limits lim = {16384, 4096, 64, srv.o.max_body};
    if (http_parser_init(&c->hp, &lim)) goto out;
    for (;;) {
        /* bytes left over from a pipelined request come first */
        int rc = HTTP_NEED_MORE, continued = 0;
        size_t used = 0;
        if (have) {
            rc = http_feed(&c->hp, buf, have, &used);
            memmove(buf, buf + used, have - used);
            have -= used;
        }
        while (rc == HTTP_NEED_MORE) {
            struct pollfd p = {c->fd, POLLIN, 0};
            int idle = !c->hp.pos && !have;
            int pr = poll(&p, 1, idle ? IDLE_TIMEOUT_MS : READ_TIMEOUT_MS);
            if (pr <= 0 || !atomic_load(&srv.running)) goto out; /* a slow or silent client holds nothing */
            ssize_t k = recv(c->fd, buf, sizeof buf, 0);
            if (k <= 0) goto out;
            have = (size_t)k;
            rc = http_feed(&c->hp, buf, have, &used);
            memmove(buf, buf + used, have - used);
            have -= used;
            if (c->hp.head_done && c->hp.req.expect_continue && rc == HTTP_NEED_MORE && !continued) {
                continued = 1; /* the client waits for this before it sends the body */
                http_continue(&c->out);
                if (flush_out(c)) goto out;
            }
        }
        if (rc == HTTP_ERROR) {
            send_error(c, c->hp.status ? c->hp.status : 400, "invalid_request_error", "bad_request", NULL, 0, "%s",
                       c->hp.err);
            if (flush_out(c) == 0) {
                /* a lingering close: a client still sending its body (413)
                 * would otherwise get a reset instead of the answer */
                shutdown(c->fd, SHUT_WR);
                double t_end = now_s() + 2.0;
                size_t drained = 0;
                while (now_s() < t_end && drained < (64u << 20)) {
                    struct pollfd p = {c->fd, POLLIN, 0};
                    if (poll(&p, 1, 200) <= 0) continue;
                    ssize_t k = recv(c->fd, buf, sizeof buf, 0);
                    if (k <= 0) break;
                    drained += (size_t)k;
                }
            }
            goto out;
        }
        if (handle(c, &c->hp.req) || !c->hp.req.keep_alive) goto out;
        http_next(&c->hp);
    }
out:
    http_parser_free(&c->hp);
    http_buf_free(&c->out);
    close(c->fd);
    free(c);
    atomic_fetch_sub(&srv.n_conn, 1);
    return NULL;
}

static void on_signal(int sig) {
    (void)sig;
    atomic_store(&srv.running, 0);
    char ch = 1;
    if (write(srv.wake[1], &ch, 1) < 0) { /* nothing to do */
    }
}

int main(int argc, char **argv) {
    options o = parse_args(argc, argv);
    srv.o = o;
    char err[512];
    if (pl_model_open(&srv.m, o.model, err, sizeof err)) {
        fprintf(stderr, "picolm-server: %s\n", err);
        return 1;
    }
    const char *base = strrchr(o.model, '/');
    base = base ? base + 1 : o.model;
    char *id = strdup(base);
    char *dot = id ? strstr(id, ".gguf") : NULL;
    if (dot && !dot[5]) *dot = 0;
    srv.model_id = id;
    srv.tmpl = pl_chat_template_detect(srv.m);
    if (!srv.tmpl) srv.tmpl = "zephyr"; /* as the CLI: TinyLlama's, for a file without a template */
    pl_context_params cp = pl_context_default_params();
    cp.n_ctx = o.n_ctx;
    cp.n_threads = o.threads;
    cp.mem_budget_mb = o.mem_budget;
    cp.kv_q8 = o.kv_q8;
    cp.n_seq = o.parallel;
    cp.n_batch = o.n_batch;
    if (pl_context_new(&srv.ctx, srv.m, &cp, err, sizeof err)) {
        fprintf(stderr, "picolm-server: %s\n", err);
        return 1;
    }
    if (o.draft) { /* the same context length and threads (the process's one pool), a sequence per slot */
        pl_model *dm;
        pl_context_params dp = cp;
        dp.n_ctx = pl_context_n_ctx(srv.ctx);
        dp.mem_budget_mb = -1;
        if (pl_model_open(&dm, o.draft, err, sizeof err) || pl_context_new(&srv.dctx, dm, &dp, err, sizeof err)) {
            fprintf(stderr, "picolm-server: --draft: %s\n", err);
            return 1;
        }
        /* the vocabulary check is pl_gen_set_draft's: try it on a gen of slot 0 */
        pl_sampler_params sp = pl_sampler_default_params();
        pl_sampler *smp = NULL;
        pl_gen_params gp = pl_gen_default_params();
        pl_gen *g = NULL;
        int rc = pl_sampler_new(&smp, &sp, pl_model_get_info(srv.m)->n_vocab);
        if (!rc) rc = pl_gen_new(&g, srv.ctx, 0, smp, &gp, err, sizeof err);
        if (!rc) rc = pl_gen_set_draft(g, srv.dctx, 0, o.draft_max);
        pl_gen_free(g);
        pl_sampler_free(smp);
        if (rc) {
            if (rc == PL_ERR_FORMAT)
                fprintf(stderr, "picolm-server: --draft: %s has another vocabulary than %s\n", o.draft, o.model);
            else fprintf(stderr, "picolm-server: --draft: %s\n", pl_status_str(rc));
            return 1;
        }
    }
    if (pl_grammar_vocab_from_model(&srv.gvocab, srv.m, err, sizeof err)) {
        fprintf(stderr, "picolm-server: %s\n", err);
        return 1;
    }
    pthread_mutex_init(&srv.mu, NULL);
    pthread_cond_init(&srv.work, NULL);
    atomic_store(&srv.running, 1);
    if (pipe(srv.wake)) return 1;

    struct sockaddr_in6 a6;
    struct sockaddr_in a4;
    memset(&a6, 0, sizeof a6);
    memset(&a4, 0, sizeof a4);
    int v6 = strchr(o.host, ':') != NULL;
    if (v6 ? inet_pton(AF_INET6, o.host, &a6.sin6_addr) != 1 : inet_pton(AF_INET, o.host, &a4.sin_addr) != 1) {
        fprintf(stderr, "picolm-server: --host %s is not an IP address\n", o.host);
        return 2;
    }
    srv.listen_fd = socket(v6 ? AF_INET6 : AF_INET, SOCK_STREAM, 0);
    int one = 1;
    setsockopt(srv.listen_fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    a6.sin6_family = AF_INET6, a6.sin6_port = htons((uint16_t)o.port);
    a4.sin_family = AF_INET, a4.sin_port = htons((uint16_t)o.port);
    if (srv.listen_fd < 0 ||
        bind(srv.listen_fd, v6 ? (struct sockaddr *)&a6 : (struct sockaddr *)&a4, v6 ? sizeof a6 : sizeof a4) ||
        listen(srv.listen_fd, 64)) {
        fprintf(stderr, "picolm-server: cannot listen on %s:%d: %s\n", o.host, o.port, strerror(errno));
        return 1;
    }
    struct sockaddr_storage bound;
    socklen_t bl = sizeof bound;
    getsockname(srv.listen_fd, (struct sockaddr *)&bound, &bl);
    int port = ntohs(bound.ss_family == AF_INET6 ? ((struct sockaddr_in6 *)&bound)->sin6_port
                                                 : ((struct sockaddr_in *)&bound)->sin_port);
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_signal;
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
    signal(SIGPIPE, SIG_IGN);

    pthread_t engine;
    pthread_attr_t at;
    pthread_attr_init(&at);
    pthread_attr_setstacksize(&at, 8 << 20); /* it runs the model: the kernels keep their tiles' data on the stack */
    pthread_create(&engine, &at, engine_main, NULL);
    const pl_model_info *in = pl_model_get_info(srv.m);
    fprintf(stderr, "picolm-server: %s (%s %s, %d layers) on http://%s:%d/v1, %d slots of %d tokens, chat template %s, "
                    "kernels %s%s%s\n",
            srv.model_id, in->arch ? in->arch : "?", in->ftype ? in->ftype : "?", in->n_layer, o.host, port,
            o.parallel, pl_context_n_ctx(srv.ctx), srv.tmpl, pl_cpu_level(), o.draft ? ", draft model " : "",
            o.draft ? o.draft : "");
    if (!o.api_key && strcmp(o.host, "127.0.0.1") && strcmp(o.host, "::1"))
        fprintf(stderr, "picolm-server: warning: listening beyond this machine without --api-key\n");
    pthread_attr_t ca;
    pthread_attr_init(&ca);
    pthread_attr_setstacksize(&ca, 256 << 10);
    pthread_attr_setdetachstate(&ca, PTHREAD_CREATE_DETACHED);
    while (atomic_load(&srv.running)) {
        struct pollfd p[2] = {{srv.listen_fd, POLLIN, 0}, {srv.wake[0], POLLIN, 0}};
        if (poll(p, 2, 1000) <= 0 || !(p[0].revents & POLLIN)) continue;
        int fd = accept(srv.listen_fd, NULL, NULL);
        if (fd < 0) continue;
        setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
        struct timeval tv = {30, 0};
        setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
        if (atomic_fetch_add(&srv.n_conn, 1) >= o.max_conn) {
            atomic_fetch_sub(&srv.n_conn, 1);
            static const char busy[] = "{\"error\":{\"message\":\"too many connections\",\"type\":\"server_error\","
                                       "\"param\":null,\"code\":\"busy\"}}";
            http_buf hb = {0};
            http_response(&hb, 503, "application/json", busy, sizeof busy - 1, 0, NULL);
            if (!hb.oom) send_all(fd, hb.p, hb.len);
            http_buf_free(&hb);
            close(fd);
            continue;
        }
        conn *c = calloc(1, sizeof *c);
        pthread_t t;
        if (!c) {
            close(fd);
            atomic_fetch_sub(&srv.n_conn, 1);
            continue;
        }
        c->fd = fd;
        if (pthread_create(&t, &ca, conn_main, c)) {
            close(fd);
            free(c);
            atomic_fetch_sub(&srv.n_conn, 1);
        }
    }
    fprintf(stderr, "picolm-server: shutting down\n");
    close(srv.listen_fd);
    pthread_mutex_lock(&srv.mu);
    pthread_cond_broadcast(&srv.work);
    pthread_mutex_unlock(&srv.mu);
    pthread_join(engine, NULL);
    /* connection threads see running == 0 at their next poll; give them a moment */
    for (int i = 0; i < 50 && atomic_load(&srv.n_conn) > 0; i++) usleep(100000);
    return 0;
}
