/* xmalloc-test's shape: producer threads allocate blocks of 16-256 B in batches of 64 and hand
 * each batch to a consumer thread, which frees them: every free is a cross-thread free.
 * Usage: xmalloc_test [producer/consumer pairs] [batches per producer] */
#include "common.h"
#include <pthread.h>

#define BATCH 64
#define RING 256

struct queue {
    pthread_mutex_t m;
    pthread_cond_t more, room;
    unsigned char **ring[RING];
    size_t head, tail;
    int done;
};

static long batches;

static void *produce(void *arg) {
    struct queue *q = arg;
    uint64_t seed = (uint64_t)(uintptr_t)q;
    for (long b = 0; b < batches; b++) {
        unsigned char **batch = xmalloc(BATCH * sizeof *batch);
        for (int i = 0; i < BATCH; i++) {
            size_t n = rng_range(&seed, 16, 256);
            batch[i] = xmalloc(n);
            batch[i][0] = (unsigned char)n;
        }
        pthread_mutex_lock(&q->m);
        while (q->tail - q->head == RING) pthread_cond_wait(&q->room, &q->m);
        q->ring[q->tail++ % RING] = batch;
        pthread_cond_signal(&q->more);
        pthread_mutex_unlock(&q->m);
    }
    pthread_mutex_lock(&q->m);
    q->done = 1;
    pthread_cond_signal(&q->more);
    pthread_mutex_unlock(&q->m);
    return NULL;
}

static void *consume(void *arg) {
    struct queue *q = arg;
    uint64_t sum = 0;
    for (;;) {
        pthread_mutex_lock(&q->m);
        while (q->head == q->tail && !q->done) pthread_cond_wait(&q->more, &q->m);
        if (q->head == q->tail) {
            pthread_mutex_unlock(&q->m);
            break;
        }
        unsigned char **batch = q->ring[q->head++ % RING];
        pthread_cond_signal(&q->room);
        pthread_mutex_unlock(&q->m);
        for (int i = 0; i < BATCH; i++) {
            sum += batch[i][0];
            free(batch[i]);
        }
        free(batch);
    }
    return (void *)(uintptr_t)sum;
}

int main(int argc, char **argv) {
    int pairs = (int)arg_long(argc, argv, 1, 1);
    batches = arg_long(argc, argv, 2, 80000);
    if (pairs < 1 || pairs > MAX_THREADS / 2) {
        fprintf(stderr, "pairs: 1 to %d\n", MAX_THREADS / 2);
        return 2;
    }
    struct queue q[MAX_THREADS / 2];
    pthread_t p[MAX_THREADS / 2], c[MAX_THREADS / 2];
    for (int i = 0; i < pairs; i++) {
        memset(&q[i], 0, sizeof q[i]);
        pthread_mutex_init(&q[i].m, NULL);
        pthread_cond_init(&q[i].more, NULL);
        pthread_cond_init(&q[i].room, NULL);
        pthread_create(&p[i], NULL, produce, &q[i]);
        pthread_create(&c[i], NULL, consume, &q[i]);
    }
    uint64_t sum = 0;
    for (int i = 0; i < pairs; i++) {
        void *r;
        pthread_join(p[i], NULL);
        pthread_join(c[i], &r);
        sum += (uint64_t)(uintptr_t)r;
    }
    printf("xmalloc_test %lu\n", (unsigned long)sum);
    return 0;
}
