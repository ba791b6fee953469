/* platform.h - the OS layer: read-only file mapping, time, core count and
 * memory figures. POSIX and Win32 implementations live in platform.c. */
#ifndef PICOLM_PLATFORM_H
#define PICOLM_PLATFORM_H

#include <stddef.h>

typedef struct pl_mapping {
    void *addr;
    size_t size;
    void *handle; /* Win32 mapping handle */
} pl_mapping;

/* 0 ok; -1 with a reason in err. An empty file maps to addr NULL, size 0. */
int pl_map_file(pl_mapping *m, const char *path, char *err, size_t errlen);
void pl_unmap_file(pl_mapping *m);

double pl_time_sec(void);      /* monotonic seconds */
int pl_num_cores(void);        /* online cores, >= 1 */
size_t pl_peak_rss(void);      /* bytes, 0 if unknown */

#endif
