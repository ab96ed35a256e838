/* cache-scratch's shape: the main thread allocates one small object per thread, back to back;
 * each thread frees the one it was given, then allocates, writes and frees its own 8-byte
 * objects. An allocator that hands a thread memory on a cache line another thread writes makes
 * the writes slow (false sharing). Usage: cache_scratch [threads] [iterations] [writes] */
#include "common.h"

static long iterations, writes;

static void *run(void *arg) {
    free(arg);
    uint64_t sum = 0;
    for (long i = 0; i < iterations; i++) {
        volatile unsigned char *p = xmalloc(8);
        for (long w = 0; w < writes; w++) p[w & 7] += (unsigned char)w;
        sum += p[0];
        free((void *)p);
    }
    return (void *)(uintptr_t)sum;
}

int main(int argc, char **argv) {
    int threads = (int)arg_long(argc, argv, 1, 2);
    iterations = arg_long(argc, argv, 2, 4000);
    writes = arg_long(argc, argv, 3, 50000);
    void *given[MAX_THREADS];
    for (int i = 0; i < threads && i < MAX_THREADS; i++) given[i] = xmalloc(8);
    uint64_t sum = run_threads(threads, run, given);
    printf("cache_scratch %lu\n", (unsigned long)sum);
    return 0;
}
