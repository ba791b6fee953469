/* platform.c - POSIX (Linux, macOS, BSD) and Win32 implementations of the
 * OS layer. Nothing else in src/ includes OS headers. */
#if !defined(_WIN32) && !defined(_POSIX_C_SOURCE)
#define _POSIX_C_SOURCE 200809L
#endif
#include "platform.h"

#include <errno.h>
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

#else
#include <fcntl.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

int pl_map_file(pl_mapping *m, const char *path, char *err, size_t errlen) {
    memset(m, 0, sizeof *m);
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
    close(fd);
    if (p == MAP_FAILED) {
        snprintf(err, errlen, "%s: mmap failed: %s", path, strerror(errno));
        m->size = 0;
        return -1;
    }
    m->addr = p;
    return 0;
}

void pl_unmap_file(pl_mapping *m) {
    if (m->addr) munmap(m->addr, m->size);
    memset(m, 0, sizeof *m);
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
