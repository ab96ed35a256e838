/* glibc's bench-malloc-thread shape: each thread frees and refills random slots of an array of
 * 4,096 blocks of 1 B to 1 KiB (mostly small), a fixed number of times.
 * Usage: thread_bench [threads] [iterations] */
#include "common.h"

#define SLOTS 4096

static long iterations;

static void *run(void *arg) {
    uint64_t seed = 1234 + (uint64_t)(uintptr_t)arg, sum = 0;
    unsigned char **slot = calloc(SLOTS, sizeof *slot);
    for (long i = 0; i < iterations; i++) {
        size_t k = (size_t)(rng_next(&seed) % SLOTS);
        free(slot[k]);
        uint64_t r = rng_next(&seed);
        size_t n = (r & 3) ? 1 + (size_t)(r >> 8) % 64 : 1 + (size_t)(r >> 8) % 1024;
        slot[k] = xmalloc(n);
        slot[k][0] = (unsigned char)n;
        sum += slot[k][0];
    }
    for (size_t k = 0; k < SLOTS; k++) free(slot[k]);
    free(slot);
    return (void *)(uintptr_t)sum;
}

int main(int argc, char **argv) {
    int threads = (int)arg_long(argc, argv, 1, 2);
    iterations = arg_long(argc, argv, 2, 8000000);
    uint64_t sum = run_threads(threads, run, NULL);
    printf("thread_bench %lu\n", (unsigned long)sum);
    return 0;
}
