/* platform.h - the OS layer: read-only file mapping, time, core count and
 * memory figures. POSIX and Win32 implementations live in platform.c. */
#ifndef PICOLM_PLATFORM_H
#define PICOLM_PLATFORM_H

#include <stddef.h>

typedef struct pl_mapping {
    void *addr;
    size_t size;
    void *handle; /* Win32 mapping handle */
    int fd;       /* POSIX: kept open for posix_fadvise; -1 if none */
} pl_mapping;

/* 0 ok; -1 with a reason in err. An empty file maps to addr NULL, size 0. */
int pl_map_file(pl_mapping *m, const char *path, char *err, size_t errlen);
void pl_unmap_file(pl_mapping *m);

double pl_time_sec(void);      /* monotonic seconds */
int pl_num_cores(void);        /* online cores, >= 1 */
size_t pl_peak_rss(void);      /* bytes, 0 if unknown */
/* Resident anonymous and file-backed bytes of this process now (Linux
 * /proc/self/status RssAnon/RssFile); 0 and 0 where unknown. */
void pl_rss_split(size_t *anon, size_t *file);

/* Bytes this process could still use: MemAvailable, lowered by a cgroup
 * (v2 memory.max or v1 memory.limit_in_bytes) limit minus its usage; 0 if
 * unknown. */
size_t pl_mem_available(void);

/* Bytes this process has caused to be read from storage (Linux
 * /proc/self/io read_bytes); 0 where unknown. */
unsigned long long pl_io_read_bytes(void);

enum pl_advice { PL_ADV_WILLNEED, PL_ADV_DONTNEED, PL_ADV_SEQUENTIAL };
/* Best-effort paging hint for bytes [off, off + len) of a file mapping.
 * DONTNEED unmaps the pages and asks the kernel to drop them from the page
 * cache (whole pages inside the range only). */
void pl_advise(const pl_mapping *m, size_t off, size_t len, enum pl_advice adv);

#endif
