/* Shared by the allocation benchmark programs: a small fast PRNG and argument parsing. Each
 * program does a fixed amount of work (so `compare --programs` compares times), prints one line
 * with a checksum of what it read back (so no allocator can skip work unnoticed), and exits 0. */
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
