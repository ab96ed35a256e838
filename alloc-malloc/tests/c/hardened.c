/* The hardened preset's misuse classes (issue 19), one per run, chosen by argv[1]. A case that
 * must abort prints the address the report must name first ("MISUSE-ADDRESS"); a case that must
 * fault does the bad access and prints "NOT-FAULTED" if it survives; a case that checks a
 * property prints "OK" when it holds. */
#include <malloc.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>

/* C23's, which this glibc lacks: weak, so the program links, and bound to the preloaded
 * library's at run time. */
void free_sized(void *, size_t) __attribute__((weak));
void free_aligned_sized(void *, size_t, size_t) __attribute__((weak));

static void announce(void *p) {
    printf("MISUSE-ADDRESS %p\n", p);
    fflush(stdout);
}

/* Frees a block of n bytes written all over; 1 (with a line saying which) if any byte of it
 * then reads as other than zero. */
static int freed_reads_zero(size_t n) {
    unsigned char *p = malloc(n);
    memset(p, 0xab, n);
    free(p);
    volatile unsigned char *v = p;
    for (size_t i = 0; i < n; i++)
        if (v[i] != 0) {
            printf("size %zu: byte %zu is %d\n", n, i, v[i]);
            return 1;
        }
    return 0;
}

/* Writes all n bytes of block p, then frees it; 1 (with a line saying so) if its usable size is
 * not exactly n. */
static int use_whole_and_free(unsigned char *p, size_t n) {
    memset(p, 0x5a, n);
    if (malloc_usable_size(p) != n) {
        printf("usable size of %zu: %zu\n", n, malloc_usable_size(p));
        return 1;
    }
    free(p);
    return 0;
}

/* Writes into a block of n bytes at `at` after freeing it, then allocates and frees blocks of
 * its size `rounds` times, enough for it to be reused (where the write must be reported). */
static void write_after_free(size_t n, size_t at, int rounds) {
    char *p = malloc(n);
    announce(p);
    free(p);
    ((volatile char *)p)[at] = 'x';
    for (int i = 0; i < rounds; i++) {
        char *q = malloc(n);
        free(q);
    }
}

static char *shared;
static pthread_barrier_t gate;

static int run_case(const char *c);

/* Allocates and frees blocks of a few sizes, some kept until the end. */
static void *churn(void *arg) {
    (void)arg;
    void *keep[64];
    for (int i = 0; i < 64; i++) keep[i] = malloc(16 + i * 40);
    for (int i = 0; i < 10000; i++) free(malloc(16 + (i % 50) * 24));
    for (int i = 0; i < 64; i++) free(keep[i]);
    return NULL;
}

/* Runs a case on a second thread (the quarantine and the checks are per thread). */
static void *on_thread(void *arg) {
    return (void *)(long)run_case(arg);
}

/* Where a block's address escapes to, so that the compiler keeps a malloc whose block is only
 * written before it is freed (gcc drops such a pair at -O1). */
char *volatile sink;

/* The process's address space in MiB (the first field of /proc/self/statm, in pages); -1 when
 * it cannot be read. */
static long address_space_mib(void) {
    unsigned long pages = 0;
    FILE *f = fopen("/proc/self/statm", "r");
    int ok = f && fscanf(f, "%lu", &pages) == 1;
    if (f) fclose(f);
    return ok ? (long)(pages * 4096 >> 20) : -1;
}

/* The process's peak resident memory so far in MiB (getrusage's maximum resident set). */
static long peak_resident_mib(void) {
    struct rusage u;
    return getrusage(RUSAGE_SELF, &u) == 0 ? u.ru_maxrss >> 10 : -1;
}

/* The process's resident memory in KiB (the second field of /proc/self/statm); -1 when it
 * cannot be read. */
static long resident_kib(void) {
    unsigned long size = 0, resident = 0;
    FILE *f = fopen("/proc/self/statm", "r");
    int ok = f && fscanf(f, "%lu %lu", &size, &resident) == 2;
    if (f) fclose(f);
    return ok ? (long)(resident * 4) : -1;
}

/* Fills the calling thread's quarantine and the reserves of three size classes, then exits. */
static void *fill_and_exit(void *arg) {
    (void)arg;
    for (int i = 0; i < 300; i++) {
        sink = malloc(32 + (i % 3) * 100);
        free(sink);
    }
    return NULL;
}

/* One era of a slab's life for "class-cycle": a thread allocates `n` blocks of `size` bytes,
 * writes them, frees them and exits, so that its quarantine and reserve go back to the pool and
 * the slabs they emptied serve any class again. */
struct era {
    size_t size;
    int n;
};

static void *one_era(void *arg) {
    struct era *e = arg;
    char **b = malloc(e->n * sizeof(char *));
    for (int i = 0; i < e->n; i++) {
        b[i] = malloc(e->size);
        memset(b[i], 0x5a, e->size);
    }
    for (int i = 0; i < e->n; i++) free(b[i]);
    free(b);
    return NULL;
}

static void *free_shared(void *arg) {
    (void)arg;
    pthread_barrier_wait(&gate);
    free(shared);
    return NULL;
}

int main(int argc, char **argv) {
    if (argc < 2) return 2;
    const char *c = argv[1];
    char *keep = malloc(40);
    int rc;
    if (!strncmp(c, "thread:", 7)) {
        /* "thread:CASE": the case on another thread, while this one waits. */
        pthread_t t;
        void *r;
        pthread_create(&t, NULL, on_thread, (void *)(c + 7));
        pthread_join(t, &r);
        rc = (int)(long)r;
    } else {
        rc = run_case(c);
    }
    if (rc != 0) return rc;
    printf("MISUSE-NOT-DETECTED %p\n", (void *)keep);
    return 0;
}

static int run_case(const char *c) {
    if (!strcmp(c, "freed-reads-zero")) {
        /* Freed small memory reads as zero (it waits in the quarantine, still mapped), up to
         * the largest small request (16 KiB less the 16-byte header and 8-byte canary). */
        static const size_t sizes[] = {64, 1000, 16000, 16360};
        for (int k = 0; k < 4; k++)
            if (freed_reads_zero(sizes[k])) return 1;
        puts("OK");
    } else if (!strcmp(c, "small-large-boundary")) {
        /* Requests on both sides of the largest small one are whole, usable exactly, and free
         * cleanly. */
        for (size_t n = 16350; n < 16380; n++)
            if (use_whole_and_free(malloc(n), n)) return 1;
        puts("OK");
    } else if (!strcmp(c, "large-aligned")) {
        /* Large blocks aligned past a page: aligned, whole, and freed cleanly. */
        static const size_t aligns[] = {8192, 65536, 1 << 20};
        for (int k = 0; k < 3; k++) {
            void *p = NULL;
            if (posix_memalign(&p, aligns[k], 100000) || (uintptr_t)p % aligns[k]) return 1;
            memset(p, 0x11, 100000);
            free(p);
        }
        puts("OK");
    } else if (!strcmp(c, "large-calloc-zero")) {
        /* calloc of a large block is zeros even after dirty mappings of its size went through
         * the quarantine into the cache (calloc never takes from there). */
        for (int i = 0; i < 70; i++) {
            unsigned char *b = malloc(1 << 20);
            memset(b, 0xaa, 1 << 20);
            sink = (char *)b;
            free(sink);
        }
        unsigned char *z = calloc(1, 1 << 20);
        for (size_t i = 0; i < (1 << 20); i++)
            if (z[i]) {
                printf("byte %zu is %d\n", i, z[i]);
                return 1;
            }
        free(z);
        puts("OK");
    } else if (!strcmp(c, "write-after-free")) {
        /* A write into a freed block, then allocations of its size until it is reused. */
        write_after_free(40, 20, 100000);
    } else if (!strcmp(c, "mid-reads-zero")) {
        /* A freed mid-size block (a mapping of 64 KiB or less: zlib's 32 KiB window) reads as
         * zero, and is reused (by a block of its length, once past the quarantine) whole and
         * clean, for calloc too. */
        static const size_t sizes[] = {16361, 32768, 65000};
        for (int k = 0; k < 3; k++) {
            size_t n = sizes[k];
            if (freed_reads_zero(n)) return 1;
            for (int i = 0; i < 200; i++) {
                unsigned char *q = (i & 1) ? calloc(1, n) : malloc(n);
                for (size_t j = 0; (i & 1) && j < n; j++)
                    if (q[j] != 0) {
                        printf("calloc of %zu: byte %zu is %d\n", n, j, q[j]);
                        return 1;
                    }
                if (use_whole_and_free(q, n)) return 1;
            }
        }
        puts("OK");
    } else if (!strcmp(c, "mid-write-after-free")) {
        /* A write into a freed mid-size block, then allocations of its length until its
         * mapping is reused. */
        write_after_free(32768, 20000, 1000);
    } else if (!strcmp(c, "large-read-after-free")) {
        char *p = malloc(1 << 20);
        memset(p, 1, 1 << 20);
        free(p);
        printf("read %d\n", ((volatile char *)p)[4096]);
        puts("NOT-FAULTED");
    } else if (!strcmp(c, "class-cycle")) {
        /* A correct program whose slabs change size class and back: blocks of 360 bytes (the
         * 384-byte class with the header and canary), then of 296 (320), then of 360 again,
         * each on a thread of its own, with a block kept live so that the segment is adopted
         * by the next thread rather than given back. Must run clean: a block carved afresh
         * over the first era's freed blocks and the second era's free-list links is no block
         * this preset freed (until 2026-12-02 it was taken for one: `write after free`). */
        struct era eras[] = {{2000, 1}, {360, 600}, {296, 40}, {360, 600}, {296, 600}, {360, 600}};
        for (int r = 0; r < 3; r++) {
            for (unsigned k = 0; k < sizeof eras / sizeof eras[0]; k++) {
                pthread_t t;
                if (k == 0) {
                    /* The anchor is allocated on the first era's thread: that thread's segment
                     * then outlives it. */
                    pthread_create(&t, NULL, on_thread, "anchor");
                } else {
                    pthread_create(&t, NULL, one_era, &eras[k]);
                }
                pthread_join(t, NULL);
            }
        }
        puts("OK");
    } else if (!strcmp(c, "anchor")) {
        sink = malloc(2000);
        return 0;
    } else if (!strcmp(c, "slab-guard")) {
        /* Each 64 KiB slab of small blocks ends in a guard page under the hardened preset: an
         * overflow that runs off the slab's last block faults there instead of reaching the
         * next slab's blocks (of another size class). */
        char *p = malloc(40);
        uintptr_t end = ((uintptr_t)p | 0xffff) + 1;
        ((volatile char *)end)[-1] = 1;
        puts("NOT-FAULTED");
    } else if (!strcmp(c, "segment-guard-before") || !strcmp(c, "segment-guard-after")) {
        /* A small block lies in a 4 MiB segment whose header (slab descriptors, state bits)
         * starts one page in: the byte before the header (where an overflow off whatever lies
         * before the segment lands first) and the byte before the first slab of blocks (an
         * underflow off it) are guard pages under the hardened preset. */
        char *p = malloc(40);
        uintptr_t base = (uintptr_t)p & ~(((uintptr_t)1 << 22) - 1);
        uintptr_t at = !strcmp(c, "segment-guard-before") ? base + 4095 : base + 2 * 65536 - 1;
        ((volatile char *)at)[0] = 1;
        puts("NOT-FAULTED");
    } else if (!strcmp(c, "large-write-after-free")) {
        char *p = malloc(300000);
        free(p);
        ((volatile char *)p)[0] = 1;
        puts("NOT-FAULTED");
    } else if (!strcmp(c, "large-aligned-write-after-free")) {
        /* A block aligned past a page lies wholly in its own mapping: its last byte faults
         * after the free like its first. */
        void *p = NULL;
        if (posix_memalign(&p, 1 << 20, 100000)) return 1;
        memset(p, 1, 100000);
        free(p);
        ((volatile char *)p)[99999] = 1;
        puts("NOT-FAULTED");
    } else if (!strcmp(c, "large-reuse")) {
        /* Large blocks cycle through the quarantine and the cache of mappings and come back
         * writable, whole, with their canaries working. */
        for (int i = 0; i < 400; i++) {
            size_t n = 300000 + (size_t)(i % 7) * 50000; /* a mapping serves up to twice its need */
            unsigned char *p = malloc(n);
            memset(p, i & 0xff, n);
            if (p[0] != (i & 0xff) || p[n - 1] != (i & 0xff)) return 1;
            free(p);
        }
        puts("OK");
    } else if (!strcmp(c, "large-reused-tail")) {
        /* A cached mapping taken back for a block of half its size or more has only the pages
         * the block needs made accessible: the rest faults. 65 blocks of 1 MiB through calloc
         * (never served from the cache) push the first out of the quarantine (64 blocks) into
         * the cache, the only place a malloc of 600000 bytes can come from then; the page after
         * the block's (16-byte header, 600000 bytes, 8-byte canary) lies in that mapping. */
        for (int i = 0; i < 65; i++) {
            char *b = calloc(1, 1 << 20);
            sink = b;
            b[0] = 1;
            free(sink);
        }
        char *p = malloc(600000);
        size_t need = (16 + 600000 + 8 + 4095) / 4096 * 4096;
        p[599999] = 1;
        ((volatile char *)p - 16)[need] = 1;
        puts("NOT-FAULTED");
    } else if (!strcmp(c, "zero-size")) {
        /* Unique pointers that free cleanly... */
        char *a = malloc(0), *b = malloc(0);
        if (!a || !b || a == b) return 1;
        free(a);
        free(b);
        void *z = calloc(0, 8);
        free(z);
        puts("OK");
    } else if (!strcmp(c, "zero-size-read")) {
        /* ...whose every access faults. */
        char *a = malloc(0);
        printf("read %d\n", ((volatile char *)a)[0]);
        puts("NOT-FAULTED");
    } else if (!strcmp(c, "zero-size-write")) {
        char *a = malloc(0);
        ((volatile char *)a)[0] = 1;
        puts("NOT-FAULTED");
    } else if (strstr(c, "sized") && (!free_sized || !free_aligned_sized)) {
        /* Only the sized cases need them: the others run under any malloc (a table of what
         * each allocator catches, benches/peers/detections.sh, runs them under glibc too). */
        puts("free_sized is missing: run with the library preloaded");
        return 2;
    } else if (!strcmp(c, "sized-ok")) {
        char *a = malloc(100), *b = malloc(200000), *d = aligned_alloc(64, 192);
        char *e = aligned_alloc(16, 48), *f = aligned_alloc(8, 40);
        free_sized(a, 100);
        free_sized(b, 200000);
        free_aligned_sized(d, 64, 192);
        free_aligned_sized(e, 16, 48);
        free_aligned_sized(f, 8, 40);
        free_sized(NULL, 5);
        puts("OK");
    } else if (!strcmp(c, "sized-mismatch")) {
        char *a = malloc(100);
        announce(a);
        free_sized(a, 96);
    } else if (!strcmp(c, "sized-mismatch-large")) {
        char *a = malloc(200000);
        announce(a);
        free_sized(a, 100000);
    } else if (!strcmp(c, "aligned-sized-mismatch")) {
        char *a = aligned_alloc(64, 192);
        announce(a);
        free_aligned_sized(a, 128, 192);
    } else if (!strcmp(c, "delayed-reuse")) {
        /* A freed block is not handed out again by the next 31 allocations of its size. */
        char *p = malloc(40);
        free(p);
        for (int i = 0; i < 31; i++)
            if (malloc(40) == p) {
                printf("reused after %d allocations\n", i);
                return 1;
            }
        puts("OK");
    } else if (!strcmp(c, "reuse-distance")) {
        /* 20,000 steps of freeing one of 64 live 40-byte blocks at random and allocating
         * another, long after the quarantine filled: prints the fewest frees (by this thread)
         * between a block's free and its reuse. The quarantine's FIFO keeps each block for the
         * next 32 frees, so it is at least 32; "delayed-reuse" above, which frees nothing after
         * its block, cannot tell a FIFO of 32 from one of 1. */
        enum { LIVE = 64, SLOTS = 1 << 16 };
        static uintptr_t addr[SLOTS];
        static long freed_at[SLOTS];
        char *live[LIVE];
        uint64_t seed = 12345;
        long frees = 0, fewest = -1;
        for (int i = 0; i < LIVE; i++) live[i] = malloc(40);
        for (int step = 0; step < 20000; step++) {
            seed = seed * 6364136223846793005u + 1442695040888963407u;
            int i = (int)(seed >> 58);
            uintptr_t gone = (uintptr_t)live[i];
            free(live[i]);
            frees++;
            size_t h = (gone >> 4) % SLOTS;
            while (addr[h] && addr[h] != gone) h = (h + 1) % SLOTS;
            addr[h] = gone;
            freed_at[h] = frees;
            live[i] = malloc(40);
            uintptr_t got = (uintptr_t)live[i];
            h = (got >> 4) % SLOTS;
            while (addr[h] && addr[h] != got) h = (h + 1) % SLOTS;
            if (addr[h] == got && freed_at[h] && (fewest < 0 || frees - freed_at[h] < fewest))
                fewest = frees - freed_at[h];
            if (addr[h] == got) freed_at[h] = 0;
        }
        for (int i = 0; i < LIVE; i++) free(live[i]);
        printf("%ld\n", fewest);
    } else if (!strcmp(c, "reuse-order")) {
        /* Free 64 blocks, then allocate 64: print the order in which the freed ones come back
         * (the harness checks two runs differ). */
        char *b[256];
        for (int i = 0; i < 256; i++) b[i] = malloc(48);
        for (int i = 0; i < 256; i++) free(b[i]);
        for (int i = 0; i < 256; i++) {
            char *q = malloc(48);
            for (int k = 0; k < 256; k++)
                if (q == b[k]) printf("%d ", k);
        }
        puts("");
    } else if (!strcmp(c, "forged-header")) {
        /* Inside a live block, words laid out as a header (a size, and a state word of a
         * simple value) before an address freed as if it were a block: the state word is keyed
         * by the process secret and the address, so the forgery is an interior pointer. */
        uintptr_t *p = malloc(256);
        p[8] = 16;
        p[9] = 1;
        char *fake = (char *)p + 80;
        announce(fake);
        free(fake);
    } else if (!strcmp(c, "forged-zero-header")) {
        /* The same with the forgery fresh memory gives for free: a size word and a state word
         * of zero (calloc's block). */
        uintptr_t *p = calloc(1, 256);
        char *fake = (char *)p + 80;
        announce(fake);
        free(fake);
    } else if (!strcmp(c, "canaries")) {
        /* Prints the 8 bytes right after two live 24-byte blocks (white box: where the canary
         * is), so the test can check they are keyed: not zero, not equal to each other, not the
         * same in two runs; the same for large blocks' canary and state word. */
        unsigned char *a = malloc(24), *b = malloc(24);
        unsigned char *big = malloc(100000), *big2 = malloc(100000);
        uint64_t w[5];
        memcpy(&w[0], a + 24, 8);
        memcpy(&w[1], b + 24, 8);
        /* A large block's canary, and the state words (the 8 bytes before the block) of two
         * live large blocks. */
        memcpy(&w[2], big + 100000, 8);
        memcpy(&w[3], big - 8, 8);
        memcpy(&w[4], big2 - 8, 8);
        for (int i = 0; i < 5; i++) printf("%016llx ", (unsigned long long)w[i]);
        puts("");
        free(a);
        free(b);
        free(big);
        free(big2);
    } else if (!strcmp(c, "many-keys")) {
        /* Forty pthread keys taken before the allocator takes its own: arming its per-thread
         * exit hook on a thread's first use then makes the C library allocate (keys past the
         * first 32 keep their values in a second-level array). glibc 2.36 does it with its own
         * internal calloc; a C library whose calloc is interposed would come back into the
         * allocator there, which the hooks are written to allow. */
        pthread_key_t keys[40];
        for (int i = 0; i < 40; i++)
            if (pthread_key_create(&keys[i], NULL)) return 1;
        for (int round = 0; round < 4; round++) {
            pthread_t t[4];
            for (int i = 0; i < 4; i++) pthread_create(&t[i], NULL, churn, NULL);
            for (int i = 0; i < 4; i++) pthread_join(t[i], NULL);
        }
        puts("OK");
    } else if (!strcmp(c, "many-small")) {
        /* 200,000 small blocks live at once, then freed: enough for addresses to share slots
         * of a hash table keyed by them (the trace recorder's). */
        enum { N = 200000 };
        static char *small[N];
        for (int i = 0; i < N; i++) small[i] = malloc(16);
        for (int i = 0; i < N; i++) free(small[i]);
        puts("OK");
    } else if (!strcmp(c, "thread-exit-returns-blocks")) {
        /* 450 threads one after another, each leaving a full quarantine (96 blocks), reserves
         * of three classes (24 blocks) and the quarantine itself behind when it exits: its exit
         * hook gives them all back to the pool, which the next thread reuses, so the resident
         * memory stays flat after the first threads. Prints the growth in KiB over the last 400
         * threads (about 20 KiB a thread, 8 MiB in all, where the blocks stayed with the thread). */
        long before = 0;
        for (int i = 0; i < 450; i++) {
            if (i == 50) before = resident_kib();
            pthread_t t;
            pthread_create(&t, NULL, fill_and_exit, NULL);
            pthread_join(t, NULL);
        }
        printf("%ld\n", resident_kib() - before);
    } else if (!strcmp(c, "large-quarantine-bounded")) {
        /* 300 large blocks of 1 MiB, each freed before the next: the quarantine (64 blocks) and
         * the cache behind it (emptied again by each malloc) stay bounded, so the address space
         * grows by about 65 MiB, not 300. Prints the growth in MiB. */
        long before = address_space_mib();
        for (int i = 0; i < 300; i++) {
            char *b = malloc(1 << 20);
            sink = b; /* escapes: the compiler may not drop the malloc and free */
            b[0] = 1;
            free(sink);
        }
        printf("%ld\n", address_space_mib() - before);
    } else if (!strcmp(c, "large-cache-bytes-bounded")) {
        /* The quarantine of large blocks holds at most 256 MiB, and the cache of mappings out of
         * it at most 64 MiB, also after a mapping was taken back out of it: 60 blocks of 8 MiB
         * live at once, then all freed (the cache fills); one taken back by malloc; 60 more
         * live at once (taking the cache's other 6 first), all freed. Prints the growth in
         * MiB: 1 live + 31 quarantined + 7 cached mappings of 8 MiB and a page, about 312. A
         * quarantine that kept 64 blocks whatever their bytes grew to about 570; a cache that
         * lost count of its bytes when one was taken, more or fewer than 7. (Until 2026-12-03
         * calloc never took from the cache, and this case freed each block before the next.) */
        enum { MIB8 = 8 << 20, N = 60 };
        static char *live[N];
        long before = address_space_mib();
        for (int round = 0; round < 2; round++) {
            for (int i = 0; i < N; i++) {
                live[i] = malloc(MIB8);
                live[i][0] = 1;
            }
            for (int i = 0; i < N; i++) free(live[i]);
            if (round == 0) {
                char *kept = malloc(MIB8);
                sink = kept;
                kept[0] = 1;
            }
        }
        printf("%ld\n", address_space_mib() - before);
        free(sink);
    } else if (!strcmp(c, "large-calloc-is-zero")) {
        /* 40 blocks of 8 MiB filled with 0xab and freed: 31 wait in the quarantine and 7 of the
         * others in the cache of mappings, from which calloc takes one back. Every byte of it
         * must be zero. Prints the offset of the first byte that is not, or -1. */
        enum { MIB8 = 8 << 20, N = 40 };
        static char *live[N];
        for (int i = 0; i < N; i++) {
            live[i] = malloc(MIB8);
            memset(live[i], 0xab, MIB8);
        }
        for (int i = 0; i < N; i++) free(live[i]);
        unsigned char *z = calloc(1, MIB8);
        long first = -1;
        for (long i = 0; i < MIB8 && first < 0; i++)
            if (z[i]) first = i;
        printf("%ld\n", first);
        free(z);
    } else if (!strcmp(c, "large-free-gives-pages-back")) {
        /* A buffer of 8 MiB taken, filled and freed 20 times: the freed mappings wait in the
         * quarantine and the cache, inaccessible, but their pages go back to the OS. Prints the
         * growth of the peak resident memory in MiB: about 8 (one live buffer), not the 160 of
         * a quarantine that keeps the pages (until 2026-12-03). */
        enum { MIB8 = 8 << 20 };
        long before = peak_resident_mib();
        for (int i = 0; i < 20; i++) {
            char *b = malloc(MIB8);
            sink = b;
            memset(b, i + 1, MIB8);
            free(sink);
        }
        printf("%ld\n", peak_resident_mib() - before);
    } else if (!strcmp(c, "many-large")) {
        /* Two thousand large blocks live at once (each a mapping in the live table), then freed:
         * every free finds its block. Their sizes (25 to 75 pages) spread them over more than
         * the table's 65,536 slots' worth of pages, so some share a hash slot (packed closer,
         * the table's multiplicative hash gives every page its own slot, and a table that
         * overwrote a shared slot went unnoticed). */
        enum { N = 2000 };
        static char *big[N];
        for (int i = 0; i < N; i++) {
            big[i] = malloc(100000 + (i * 7919) % 200000);
            big[i][19999] = (char)i;
        }
        for (int i = 0; i < N; i++) {
            if (big[i][19999] != (char)i) return 1;
            free(big[i]);
        }
        puts("OK");
    } else if (!strcmp(c, "foreign-with-large-live")) {
        /* A stack address freed while large blocks are live is foreign, not inside one. */
        char *big = malloc(100000);
        big[0] = 1;
        char local[64];
        announce(local);
        free(local);
    } else if (!strcmp(c, "fresh-placement") || !strcmp(c, "fresh-placement-4k")) {
        /* 1000 fresh allocations of one size (200 bytes, or 4000: the largest class placed at
         * random): how many land right after the one before (a pool carving in address order
         * gives 999), the first one's offset in its page, and a hash of the distances from each
         * block to the next (two runs placing alike give the same hash; the count and the
         * offset alone matched by chance about once in 150 pairs of runs). */
        size_t size = strcmp(c, "fresh-placement") ? 4000 : 200;
        char *prev = malloc(size), *first = prev;
        int next_to = 0;
        uint64_t hash = 14695981039346656037u;
        for (int i = 1; i < 1000; i++) {
            char *q = malloc(size);
            if (q > prev && (size_t)(q - prev) <= size + 128) next_to++;
            hash = (hash ^ (uint64_t)(q - prev)) * 1099511628211u;
            prev = q;
        }
        printf("%d %lu %016llx\n", next_to, (unsigned long)((uintptr_t)first % 65536), (unsigned long long)hash);
    } else if (!strcmp(c, "two-threads-double-free")) {
        shared = malloc(40);
        announce(shared);
        pthread_barrier_init(&gate, NULL, 2);
        pthread_t t[2];
        for (int i = 0; i < 2; i++) pthread_create(&t[i], NULL, free_shared, NULL);
        for (int i = 0; i < 2; i++) pthread_join(t[i], NULL);
    } else {
        return 2;
    }
    return 0;
}
