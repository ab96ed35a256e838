/* Calls every entry point of the malloc socket and checks results and errno. Prints "ok" and
 * exits 0 when everything holds; otherwise names the first failed check and exits 1. */
#define _GNU_SOURCE
#include <errno.h>
#include <malloc.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define CHECK(c) do { if (!(c)) { printf("FAILED line %d: %s\n", __LINE__, #c); return 1; } } while (0)

/* Resident set size in KiB, from /proc/self/statm (pages). */
static long resident_kib(void) {
    long size = 0, resident = 0;
    FILE *f = fopen("/proc/self/statm", "r");
    if (f) {
        if (fscanf(f, "%ld %ld", &size, &resident) != 2) resident = 0;
        fclose(f);
    }
    return resident * (sysconf(_SC_PAGESIZE) / 1024);
}

int main(void) {
    /* malloc, usable size, contents kept by realloc */
    char *p = malloc(100);
    CHECK(p != NULL && ((uintptr_t)p % 16) == 0);
    CHECK(malloc_usable_size(p) >= 100);
    for (int i = 0; i < 100; i++) p[i] = (char)i;
    p = realloc(p, 100000);
    CHECK(p != NULL);
    for (int i = 0; i < 100; i++) CHECK(p[i] == (char)i);
    p = realloc(p, 10);
    CHECK(p != NULL && p[9] == 9);
    free(p);
    free(NULL);
    CHECK(malloc_usable_size(NULL) == 0);

    /* malloc(0): a unique pointer that can be freed */
    void *z1 = malloc(0), *z2 = malloc(0);
    CHECK(z1 != NULL && z2 != NULL && z1 != z2);
    free(z1);
    free(z2);

    /* calloc zeroes; overflow is ENOMEM */
    unsigned char *c = calloc(1000, 33);
    CHECK(c != NULL);
    for (int i = 0; i < 33000; i++) CHECK(c[i] == 0);
    free(c);
    errno = 0;
    CHECK(calloc(SIZE_MAX / 2, 3) == NULL && errno == ENOMEM);

    /* huge sizes fail cleanly with ENOMEM */
    errno = 0;
    CHECK(malloc(SIZE_MAX - 4096) == NULL && errno == ENOMEM);
    errno = 0;
    CHECK(malloc((size_t)1 << 62) == NULL && errno == ENOMEM);

    /* realloc(NULL, n) is malloc; realloc(p, 0) frees and returns NULL; failure keeps p */
    char *r = realloc(NULL, 50);
    CHECK(r != NULL);
    strcpy(r, "kept");
    errno = 0;
    CHECK(realloc(r, SIZE_MAX - 4096) == NULL && errno == ENOMEM);
    CHECK(strcmp(r, "kept") == 0);
    /* a realloc that the allocator itself cannot serve: a valid size (under PTRDIFF_MAX) larger
     * than the 47-bit address space, so no overcommit setting lets the mapping succeed */
    errno = 0;
    CHECK(realloc(r, (size_t)1 << 50) == NULL && errno == ENOMEM);
    CHECK(strcmp(r, "kept") == 0);
    CHECK(realloc(r, 0) == NULL);
    /* realloc(p, 0) really frees: a hundred thousand of them stay within a few MiB of RSS */
    long rss_before = resident_kib();
    for (int i = 0; i < 100000; i++) {
        char *z = malloc(1000);
        CHECK(z != NULL);
        z[999] = 1;
        CHECK(realloc(z, 0) == NULL);
    }
    CHECK(resident_kib() - rss_before < 16 * 1024);

    /* reallocarray overflow */
    errno = 0;
    CHECK(reallocarray(NULL, SIZE_MAX / 2, 3) == NULL && errno == ENOMEM);
    int *a = reallocarray(NULL, 10, sizeof(int));
    CHECK(a != NULL);
    a[9] = 9;
    a = reallocarray(a, 1000, sizeof(int));
    CHECK(a != NULL && a[9] == 9);
    free(a);

    /* posix_memalign: EINVAL for bad alignments (errno untouched), alignment honoured */
    void *m = (void *)1;
    errno = 0;
    CHECK(posix_memalign(&m, 24, 100) == EINVAL && m == (void *)1 && errno == 0);
    CHECK(posix_memalign(&m, 4, 100) == EINVAL);
    for (size_t al = 8; al <= (1 << 21); al <<= 1) {
        CHECK(posix_memalign(&m, al, 1000) == 0 && ((uintptr_t)m % al) == 0);
        memset(m, 1, 1000);
        free(m);
    }
    /* ENOMEM is returned, not set: errno keeps what it held (called through a volatile
     * pointer: gcc knows the builtin leaves errno alone and would fold the check away) */
    int (*volatile pm)(void **, size_t, size_t) = posix_memalign;
    errno = EINTR;
    CHECK(pm(&m, 64, SIZE_MAX - 4096) == ENOMEM && errno == EINTR);

    /* aligned_alloc, memalign, valloc, pvalloc */
    errno = 0;
    CHECK(aligned_alloc(3, 64) == NULL && errno == EINVAL);
    void *aa = aligned_alloc(256, 512);
    CHECK(aa != NULL && ((uintptr_t)aa % 256) == 0);
    free(aa);
    void *ma = memalign(4096, 10);
    CHECK(ma != NULL && ((uintptr_t)ma % 4096) == 0);
    free(ma);
    /* memalign with an alignment that is no power of two rounds it up, as glibc does */
    ma = memalign(24, 100);
    CHECK(ma != NULL && ((uintptr_t)ma % 32) == 0);
    free(ma);
    ma = memalign(1000, 10);
    CHECK(ma != NULL && ((uintptr_t)ma % 1024) == 0);
    free(ma);
    long page = sysconf(_SC_PAGESIZE);
    void *va = valloc(10);
    CHECK(va != NULL && ((uintptr_t)va % page) == 0);
    free(va);
    void *pv = pvalloc(1);
    CHECK(pv != NULL && ((uintptr_t)pv % page) == 0 && malloc_usable_size(pv) >= (size_t)page);
    free(pv);

    /* many live blocks of many sizes, contents checked */
    enum { N = 20000 };
    static unsigned char *blocks[N];
    for (int i = 0; i < N; i++) {
        size_t n = (size_t)(i * 37 % 3000) + 1;
        blocks[i] = malloc(n);
        CHECK(blocks[i] != NULL);
        memset(blocks[i], i & 0xff, n);
    }
    for (int i = 0; i < N; i += 2) { free(blocks[i]); blocks[i] = NULL; }
    for (int i = 1; i < N; i += 2) {
        size_t n = (size_t)(i * 37 % 3000) + 1;
        for (size_t k = 0; k < n; k++) CHECK(blocks[i][k] == (unsigned char)(i & 0xff));
        free(blocks[i]);
    }
    printf("ok\n");
    return 0;
}
