/* alloc-test's shape: each thread keeps 10,000 blocks of Pareto-distributed sizes (8 B to
 * 1 KiB, mostly small) and replaces a random one per step. Usage: alloc_test [threads] [steps] */
#include "common.h"

#define SLOTS 10000

static long steps;

static size_t pareto(uint64_t *s) {
    /* about 1/x: many small, a tail to 1 KiB */
    size_t r = (size_t)(rng_next(s) % 1000) + 1;
    size_t n = 8 * 1000 / r;
    return n > 1024 ? 1024 : n;
}

static void *run(void *arg) {
    uint64_t seed = 7 + (uint64_t)(uintptr_t)arg, sum = 0;
    unsigned char **slot = calloc(SLOTS, sizeof *slot);
    for (long i = 0; i < steps; i++) {
        size_t k = (size_t)(rng_next(&seed) % SLOTS);
        if (slot[k]) {
            sum += slot[k][0];
            free(slot[k]);
        }
        size_t n = pareto(&seed);
        slot[k] = xmalloc(n);
        slot[k][0] = (unsigned char)n;
    }
    for (size_t k = 0; k < SLOTS; k++) free(slot[k]);
    free(slot);
    return (void *)(uintptr_t)sum;
}

int main(int argc, char **argv) {
    int threads = (int)arg_long(argc, argv, 1, 2);
    steps = arg_long(argc, argv, 2, 8000000);
    uint64_t sum = run_threads(threads, run, NULL);
    printf("alloc_test %lu\n", (unsigned long)sum);
    return 0;
}
