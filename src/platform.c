/* platform.c - POSIX (Linux, macOS, BSD) and Win32 implementations of the
 * OS layer. The other OS-specific code in src/ is threads (pool.c) and CPU
 * feature queries (kernels/cpu.c). */
#if !defined(_WIN32) && !defined(_DEFAULT_SOURCE)
#define _DEFAULT_SOURCE /* madvise */
#endif
#include "platform.h"

#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#ifdef _WIN32
#define WIN32_LEAN_AND_MEAN
#include <windows.h>
#include <psapi.h>

int pl_map_file(pl_mapping *m, const char *path, char *err, size_t errlen) {
    memset(m, 0, sizeof *m);
    wchar_t wpath[4096];
    if (!MultiByteToWideChar(CP_UTF8, 0, path, -1, wpath, 4096)) {
        snprintf(err, errlen, "%s: bad file name", path);
        return -1;
    }
    HANDLE f = CreateFileW(wpath, GENERIC_READ, FILE_SHARE_READ, NULL, OPEN_EXISTING, FILE_ATTRIBUTE_NORMAL, NULL);
    if (f == INVALID_HANDLE_VALUE) {
        snprintf(err, errlen, "%s: cannot open (error %lu)", path, (unsigned long)GetLastError());
        return -1;
    }
    LARGE_INTEGER sz;
    if (!GetFileSizeEx(f, &sz)) {
        CloseHandle(f);
        snprintf(err, errlen, "%s: cannot get size", path);
        return -1;
    }
    if ((unsigned long long)sz.QuadPart > (size_t)-1) {
        CloseHandle(f);
        snprintf(err, errlen, "%s: file too large for this platform", path);
        return -1;
    }
    m->size = (size_t)sz.QuadPart;
    if (m->size == 0) {
        CloseHandle(f);
        return 0;
    }
    HANDLE h = CreateFileMappingW(f, NULL, PAGE_READONLY, 0, 0, NULL);
    CloseHandle(f);
    if (!h) {
        snprintf(err, errlen, "%s: cannot map (error %lu)", path, (unsigned long)GetLastError());
        return -1;
    }
    m->addr = MapViewOfFile(h, FILE_MAP_READ, 0, 0, 0);
    if (!m->addr) {
        CloseHandle(h);
        snprintf(err, errlen, "%s: cannot map view (error %lu)", path, (unsigned long)GetLastError());
        return -1;
    }
    m->handle = h;
    return 0;
}

void pl_unmap_file(pl_mapping *m) {
    if (m->addr) UnmapViewOfFile(m->addr);
    if (m->handle) CloseHandle((HANDLE)m->handle);
    memset(m, 0, sizeof *m);
}

double pl_time_sec(void) {
    LARGE_INTEGER f, c;
    QueryPerformanceFrequency(&f);
    QueryPerformanceCounter(&c);
    return (double)c.QuadPart / (double)f.QuadPart;
}

int pl_num_cores(void) {
    SYSTEM_INFO si;
    GetSystemInfo(&si);
    return si.dwNumberOfProcessors > 0 ? (int)si.dwNumberOfProcessors : 1;
}

size_t pl_peak_rss(void) {
    PROCESS_MEMORY_COUNTERS pmc;
    if (GetProcessMemoryInfo(GetCurrentProcess(), &pmc, sizeof pmc)) return pmc.PeakWorkingSetSize;
    return 0;
}

void pl_rss_split(size_t *anon, size_t *file) {
    PROCESS_MEMORY_COUNTERS_EX pmc;
    *anon = *file = 0;
    if (GetProcessMemoryInfo(GetCurrentProcess(), (PROCESS_MEMORY_COUNTERS *)&pmc, sizeof pmc))
        *anon = pmc.PrivateUsage;
}

unsigned long long pl_io_read_bytes(void) { return 0; }

size_t pl_mem_available(void) {
    MEMORYSTATUSEX st;
    st.dwLength = sizeof st;
    return GlobalMemoryStatusEx(&st) ? (size_t)st.ullAvailPhys : 0;
}

void pl_advise(const pl_mapping *m, size_t off, size_t len, enum pl_advice adv) {
    (void)m; (void)off; (void)len; (void)adv; /* PrefetchVirtualMemory needs Windows 8; not worth it here */
}

#else
#include <fcntl.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

int pl_map_file(pl_mapping *m, const char *path, char *err, size_t errlen) {
    memset(m, 0, sizeof *m);
    m->fd = -1;
    int fd = open(path, O_RDONLY);
    if (fd < 0) {
        snprintf(err, errlen, "%s: %s", path, strerror(errno));
        return -1;
    }
    struct stat st;
    if (fstat(fd, &st) != 0) {
        snprintf(err, errlen, "%s: %s", path, strerror(errno));
        close(fd);
        return -1;
    }
    if (!S_ISREG(st.st_mode)) {
        snprintf(err, errlen, "%s: not a regular file", path);
        close(fd);
        return -1;
    }
    if ((unsigned long long)st.st_size > (size_t)-1) {
        snprintf(err, errlen, "%s: file too large for this platform", path);
        close(fd);
        return -1;
    }
    m->size = (size_t)st.st_size;
    if (m->size == 0) {
        close(fd);
        return 0;
    }
    void *p = mmap(NULL, m->size, PROT_READ, MAP_SHARED, fd, 0);
    if (p == MAP_FAILED) {
        snprintf(err, errlen, "%s: mmap failed: %s", path, strerror(errno));
        close(fd);
        m->size = 0;
        return -1;
    }
    m->addr = p;
    m->fd = fd;
    return 0;
}

void pl_unmap_file(pl_mapping *m) {
    if (m->addr) munmap(m->addr, m->size);
    if (m->fd >= 0) close(m->fd);
    memset(m, 0, sizeof *m);
    m->fd = -1;
}

double pl_time_sec(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

int pl_num_cores(void) {
    long n = sysconf(_SC_NPROCESSORS_ONLN);
    return n > 0 ? (int)n : 1;
}

void pl_rss_split(size_t *anon, size_t *file) {
    *anon = *file = 0;
#ifdef __linux__
    FILE *f = fopen("/proc/self/status", "r");
    if (!f) return;
    char line[256];
    while (fgets(line, sizeof line, f)) {
        unsigned long long kb;
        if (sscanf(line, "RssAnon: %llu kB", &kb) == 1) *anon = (size_t)kb * 1024;
        else if (sscanf(line, "RssFile: %llu kB", &kb) == 1) *file = (size_t)kb * 1024;
    }
    fclose(f);
#endif
}

#ifdef __linux__
/* First number in a file ("max" reads as none). */
static int read_num(const char *path, unsigned long long *v) {
    FILE *f = fopen(path, "r");
    if (!f) return 0;
    int ok = fscanf(f, "%llu", v) == 1;
    fclose(f);
    return ok;
}

/* The sum of the named keys' values in a "key value" file (memory.stat). */
static unsigned long long read_stat(const char *path, const char *const *keys) {
    FILE *f = fopen(path, "r");
    if (!f) return 0;
    char line[256], key[64];
    unsigned long long v, sum = 0;
    while (fgets(line, sizeof line, f))
        if (sscanf(line, "%63s %llu", key, &v) == 2)
            for (int i = 0; keys[i]; i++)
                if (!strcmp(key, keys[i])) sum += v;
    fclose(f);
    return sum;
}

/* The memory cgroup of this process: its limit less what it uses, v2 or
 * v1. File pages (the page cache charged to it: our own model's pages from
 * an earlier run, above all) count as free: the kernel reclaims them under
 * the limit, as MemAvailable counts them. */
static int cgroup_room(unsigned long long *room) {
    FILE *f = fopen("/proc/self/cgroup", "r");
    if (!f) return 0;
    char line[1024], path[1200];
    int found = 0;
    while (!found && fgets(line, sizeof line, f)) {
        line[strcspn(line, "\n")] = 0;
        char *p1 = strchr(line, ':'), *p2 = p1 ? strchr(p1 + 1, ':') : NULL;
        if (!p2) continue;
        unsigned long long lim, use;
        if (p1[1] == ':') { /* v2: "0::/path" */
            snprintf(path, sizeof path, "/sys/fs/cgroup%s/memory.max", p2 + 1);
            if (read_num(path, &lim)) {
                snprintf(path, sizeof path, "/sys/fs/cgroup%s/memory.current", p2 + 1);
                if (read_num(path, &use)) {
                    static const char *const file[] = {"file", NULL};
                    snprintf(path, sizeof path, "/sys/fs/cgroup%s/memory.stat", p2 + 1);
                    unsigned long long cache = read_stat(path, file);
                    use = use > cache ? use - cache : 0;
                    *room = lim > use ? lim - use : 0, found = 1;
                }
            }
        } else if (strstr(p1, "memory")) { /* v1: "N:memory:/path" */
            snprintf(path, sizeof path, "/sys/fs/cgroup/memory%s/memory.limit_in_bytes", p2 + 1);
            if (read_num(path, &lim) && lim < (1ull << 60)) {
                snprintf(path, sizeof path, "/sys/fs/cgroup/memory%s/memory.usage_in_bytes", p2 + 1);
                if (read_num(path, &use)) {
                    static const char *const file[] = {"total_inactive_file", "total_active_file", NULL};
                    snprintf(path, sizeof path, "/sys/fs/cgroup/memory%s/memory.stat", p2 + 1);
                    unsigned long long cache = read_stat(path, file);
                    use = use > cache ? use - cache : 0;
                    *room = lim > use ? lim - use : 0, found = 1;
                }
            }
        }
    }
    fclose(f);
    return found;
}
#endif

unsigned long long pl_io_read_bytes(void) {
    unsigned long long v = 0;
#ifdef __linux__
    FILE *f = fopen("/proc/self/io", "r");
    if (!f) return 0;
    char line[128];
    while (fgets(line, sizeof line, f))
        if (sscanf(line, "read_bytes: %llu", &v) == 1) break;
    fclose(f);
#endif
    return v;
}

size_t pl_mem_available(void) {
    unsigned long long avail = 0;
#ifdef __linux__
    FILE *f = fopen("/proc/meminfo", "r");
    if (f) {
        char line[256];
        unsigned long long kb;
        while (fgets(line, sizeof line, f))
            if (sscanf(line, "MemAvailable: %llu kB", &kb) == 1) avail = kb * 1024;
        fclose(f);
    }
    unsigned long long room;
    if (cgroup_room(&room) && (avail == 0 || room < avail)) avail = room;
#else
    long pages = sysconf(_SC_PHYS_PAGES), page = sysconf(_SC_PAGESIZE);
    if (pages > 0 && page > 0) avail = (unsigned long long)pages * (unsigned long long)page;
#endif
    return avail > (size_t)-1 ? (size_t)-1 : (size_t)avail;
}

void pl_advise(const pl_mapping *m, size_t off, size_t len, enum pl_advice adv) {
    long page = sysconf(_SC_PAGESIZE);
    if (page <= 0 || !m->addr || off >= m->size || !len) return;
    if (len > m->size - off) len = m->size - off;
    size_t pg = (size_t)page, start = off & ~(pg - 1), end = off + len;
    if (adv == PL_ADV_DONTNEED) { /* never a neighbour's page */
        start = (off + pg - 1) & ~(pg - 1);
        end &= ~(pg - 1);
        if (end <= start) return;
    }
    char *base = (char *)m->addr;
    switch (adv) {
    case PL_ADV_WILLNEED:
        madvise(base + start, end - start, MADV_WILLNEED);
        break;
    case PL_ADV_SEQUENTIAL:
        madvise(base + start, end - start, MADV_SEQUENTIAL);
        break;
    case PL_ADV_DONTNEED:
        madvise(base + start, end - start, MADV_DONTNEED);
#if defined(__linux__)
        if (m->fd >= 0) posix_fadvise(m->fd, (off_t)start, (off_t)(end - start), POSIX_FADV_DONTNEED);
#endif
        break;
    }
}

size_t pl_peak_rss(void) {
    struct rusage ru;
    if (getrusage(RUSAGE_SELF, &ru) != 0) return 0;
#ifdef __APPLE__
    return (size_t)ru.ru_maxrss;
#else
    return (size_t)ru.ru_maxrss * 1024;
#endif
}
#endif
