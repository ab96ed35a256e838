/* cfrac's shape: big-number arithmetic, where every operation allocates short-lived digit
 * arrays of 16-64 bytes, most freed in reverse order within a few steps, a few kept longer.
 * Single-threaded. Usage: cfrac [steps] */
#include "common.h"

#define KEEP 64

int main(int argc, char **argv) {
    long steps = arg_long(argc, argv, 1, 6000000);
    uint64_t seed = 42, sum = 0;
    unsigned char *kept[KEEP] = {0};
    unsigned char *stack[8];
    for (long i = 0; i < steps; i++) {
        int depth = 1 + (int)(rng_next(&seed) % 8);
        for (int d = 0; d < depth; d++) {
            size_t n = rng_range(&seed, 16, 64);
            stack[d] = xmalloc(n);
            stack[d][0] = (unsigned char)n;
            stack[d][n - 1] = (unsigned char)d;
        }
        for (int d = depth - 1; d >= 0; d--) {
            sum += stack[d][0];
            if (d == 0 && (i & 7) == 0) {
                int k = (int)(rng_next(&seed) % KEEP);
                free(kept[k]);
                kept[k] = stack[d];
            } else {
                free(stack[d]);
            }
        }
    }
    for (int k = 0; k < KEEP; k++) free(kept[k]);
    printf("cfrac %lu\n", (unsigned long)sum);
    return 0;
}
