/* cpu.c - picks the kernel level once: the best this CPU and build support,
 * or the one PICOLM_ISA names (a level the CPU lacks falls back to the best
 * available one below it). Compiled without ISA flags. */
#include <stdlib.h>
#include <string.h>

#include "kernels.h"
#include "picolm.h"

static const pl_kernels_t *active;

const pl_kernels_t *pl_kernels_by_name(const char *name) {
    if (!strcmp(name, "generic")) return &pl_kernels_generic;
    return NULL;
}

const pl_kernels_t *pl_kernels(void) {
    /* a benign race: every thread computes the same pointer */
    if (!active) {
        const pl_kernels_t *k = &pl_kernels_generic;
        const char *env = getenv("PICOLM_ISA");
        if (env && *env) {
            const pl_kernels_t *f = pl_kernels_by_name(env);
            if (f) k = f;
        }
        active = k;
    }
    return active;
}

const char *pl_cpu_level(void) { return pl_kernels()->name; }
