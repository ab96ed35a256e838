/* Shared by the allocation benchmark programs: a small fast PRNG and argument parsing. Each
 * program does a fixed amount of work (so `compare --programs` compares times), prints one line
 * with a checksum of what it read back (so no allocator can skip work unnoticed), and exits 0. */
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static inline uint64_t rng_next(uint64_t *s) {
    /* xorshift64* */
    uint64_t x = *s;
    x ^= x >> 12;
    x ^= x << 25;
    x ^= x >> 27;
    *s = x;
    return x * 0x2545F4914F6CDD1DULL;
}

static inline size_t rng_range(uint64_t *s, size_t lo, size_t hi) { /* [lo, hi] */
    return lo + (size_t)(rng_next(s) % (uint64_t)(hi - lo + 1));
}

static long arg_long(int argc, char **argv, int i, long dflt) {
    return argc > i ? strtol(argv[i], NULL, 10) : dflt;
}

static void *xmalloc(size_t n) {
    void *p = malloc(n);
    if (!p) {
        fprintf(stderr, "out of memory\n");
        exit(1);
    }
    return p;
}

#define MAX_THREADS 64

/* Runs fn on n threads (at most MAX_THREADS), thread i getting args[i] (or i itself when args
 * is NULL), and returns the sum of what they return (each thread's checksum). */
static inline uint64_t run_threads(int n, void *(*fn)(void *), void **args) {
    pthread_t t[MAX_THREADS];
    if (n < 1 || n > MAX_THREADS) {
        fprintf(stderr, "threads: 1 to %d\n", MAX_THREADS);
        exit(2);
    }
    for (int i = 0; i < n; i++) pthread_create(&t[i], NULL, fn, args ? args[i] : (void *)(uintptr_t)i);
    uint64_t sum = 0;
    for (int i = 0; i < n; i++) {
        void *r;
        pthread_join(t[i], &r);
        sum += (uint64_t)(uintptr_t)r;
    }
    return sum;
}
