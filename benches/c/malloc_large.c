/* malloc-large's shape: each thread allocates blocks of 5-25 MiB, keeps up to 20, writes the
 * first and last page of each, and frees them at random. Usage: malloc_large [threads] [steps] */
#include "common.h"

#define KEEP 20

static long steps;

static void *run(void *arg) {
    uint64_t seed = 555 + (uint64_t)(uintptr_t)arg, sum = 0;
    unsigned char *kept[KEEP] = {0};
    size_t size[KEEP] = {0};
    for (long i = 0; i < steps; i++) {
        int k = (int)(rng_next(&seed) % KEEP);
        if (kept[k]) {
            sum += kept[k][0] + kept[k][size[k] - 1];
            free(kept[k]);
        }
        size[k] = rng_range(&seed, 5u << 20, 25u << 20);
        kept[k] = xmalloc(size[k]);
        kept[k][0] = (unsigned char)i;
        kept[k][size[k] - 1] = (unsigned char)k;
    }
    for (int k = 0; k < KEEP; k++) free(kept[k]);
    return (void *)(uintptr_t)sum;
}

int main(int argc, char **argv) {
    int threads = (int)arg_long(argc, argv, 1, 2);
    steps = arg_long(argc, argv, 2, 40000);
    uint64_t sum = run_threads(threads, run, NULL);
    printf("malloc_large %lu\n", (unsigned long)sum);
    return 0;
}
