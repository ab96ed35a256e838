/* larson's shape (a server): each thread replaces random blocks of 16-512 B in an array of
 * 1,000; every round the arrays pass to freshly started threads, which free blocks other
 * threads allocated. Usage: larson [threads] [rounds] [steps per round] */
#include "common.h"
#include <pthread.h>

#define SLOTS 1000

struct work {
    unsigned char **slot;
    uint64_t seed;
    long steps;
    uint64_t sum;
};

static void *run(void *arg) {
    struct work *w = arg;
    for (long i = 0; i < w->steps; i++) {
        size_t k = (size_t)(rng_next(&w->seed) % SLOTS);
        if (w->slot[k]) {
            w->sum += w->slot[k][0];
            free(w->slot[k]);
        }
        size_t n = rng_range(&w->seed, 16, 512);
        w->slot[k] = xmalloc(n);
        w->slot[k][0] = (unsigned char)n;
    }
    return NULL;
}

int main(int argc, char **argv) {
    int threads = (int)arg_long(argc, argv, 1, 2);
    long rounds = arg_long(argc, argv, 2, 80);
    long steps = arg_long(argc, argv, 3, 100000);
    if (threads < 1 || threads > MAX_THREADS) {
        fprintf(stderr, "threads: 1 to %d\n", MAX_THREADS);
        return 2;
    }
    struct work w[MAX_THREADS];
    for (int i = 0; i < threads; i++) {
        w[i].slot = calloc(SLOTS, sizeof(void *));
        w[i].seed = 99 + (uint64_t)i;
        w[i].steps = steps;
        w[i].sum = 0;
    }
    for (long r = 0; r < rounds; r++) {
        pthread_t t[MAX_THREADS];
        /* Each round's thread takes the array the previous round's neighbour filled. */
        unsigned char **first = w[0].slot;
        for (int i = 0; i + 1 < threads; i++) w[i].slot = w[i + 1].slot;
        w[threads - 1].slot = first;
        for (int i = 0; i < threads; i++) pthread_create(&t[i], NULL, run, &w[i]);
        for (int i = 0; i < threads; i++) pthread_join(t[i], NULL);
    }
    uint64_t sum = 0;
    for (int i = 0; i < threads; i++) {
        for (size_t k = 0; k < SLOTS; k++) free(w[i].slot[k]);
        free(w[i].slot);
        sum += w[i].sum;
    }
    printf("larson %lu\n", (unsigned long)sum);
    return 0;
}
