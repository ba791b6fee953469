/* fuzz_args.c - libFuzzer over the CLI's command-line parser: the input,
 * split at NUL bytes, is argv after "picolm". A usage error must be a
 * clean refusal (tools/picolm.c's die_usage returns here through
 * PICOLM_FUZZ_ARGS), never a crash or a read past an argument; what parses
 * must leave the options within their stated ranges. */
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define PICOLM_FUZZ_ARGS
#define main picolm_cli_main
#include "../tools/picolm.c"
#undef main

jmp_buf pl_fuzz_args_jmp;

int LLVMFuzzerInitialize(int *argc, char ***argv) {
    (void)argc, (void)argv;
    if (!freopen("/dev/null", "w", stdout)) return 0; /* --help and --version print there */
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t n) {
    if (n > 4096) return 0;
    char *buf = malloc(n + 1);
    if (!buf) return 0;
    memcpy(buf, data, n);
    buf[n] = 0;
    char *argv[66];
    int argc = 0;
    argv[argc++] = "picolm";
    for (size_t i = 0; i <= n && argc < 65;) { /* each argument its own allocation: ASan sees a read past it */
        size_t len = strlen(buf + i);
        char *a = malloc(len + 1);
        memcpy(a, buf + i, len + 1);
        argv[argc++] = a;
        i += len + 1;
    }
    argv[argc] = NULL;
    options o;
    options_default(&o);
    if (setjmp(pl_fuzz_args_jmp) == 0) {
        parse_args(&o, argc, argv);
        /* parsed: the ranges the parser promises */
        if (!o.model || o.n_predict < -1 || o.n_ctx < 0 || o.n_ctx > (1 << 20) || o.n_threads < 0 ||
            o.n_threads > 1024 || !(o.temp >= 0 && o.temp <= 100) || !(o.top_p > 0 && o.top_p <= 1) ||
            (o.prompt && o.prompt_ids) || o.n_stop > MAX_STOP || o.n_bias > MAX_STOP)
            abort();
        for (int i = 0; i < o.n_stop; i++)
            if (!o.stop[i][0] || strlen(o.stop[i]) > 512) abort();
        for (int i = 0; i < o.n_bias; i++)
            if (o.bias[i].token < 0 || !(fabsf(o.bias[i].bias) <= 1e4f || o.bias[i].bias == -INFINITY)) abort();
        /* the sampler accepts what parsed (bias ids need a vocabulary: checked above) */
        pl_sampler_params sp;
        pl_gen_params gp;
        gen_setup(&o, &sp, &gp);
        sp.n_logit_bias = 0;
        pl_sampler *smp;
        if (pl_sampler_new(&smp, &sp, 16)) abort();
        pl_sampler_free(smp);
        if (gp.lookup < 0 || gp.lookup > 16) abort();
    }
    for (int i = 1; i < argc; i++) free(argv[i]);
    free(buf);
    return 0;
}
