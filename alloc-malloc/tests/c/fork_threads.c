/* Threads allocate and free without pause while the main thread forks; each child allocates,
 * frees and exits 0. A lock left held by a thread that does not exist in the child would hang
 * it (the test harness times the run out). */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

static volatile int stop;

static void *churn(void *arg) {
    unsigned seed = (unsigned)(size_t)arg;
    while (!stop) {
        void *v[64];
        for (int i = 0; i < 64; i++) { v[i] = malloc((rand_r(&seed) % 5000) + 1); memset(v[i], 1, 1); }
        for (int i = 0; i < 64; i++) free(v[i]);
        void *big = malloc(300000 + rand_r(&seed) % 100000);
        free(big);
    }
    return NULL;
}

int main(void) {
    pthread_t t[4];
    for (long i = 0; i < 4; i++) pthread_create(&t[i], NULL, churn, (void *)(i + 1));
    for (int k = 0; k < 200; k++) {
        pid_t pid = fork();
        if (pid == 0) {
            for (int i = 0; i < 1000; i++) { void *p = malloc(i + 1); free(p); }
            void *big = malloc(1 << 20);
            free(big);
            _exit(0);
        }
        int status;
        waitpid(pid, &status, 0);
        if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) { printf("child %d failed\n", k); return 1; }
    }
    stop = 1;
    for (int i = 0; i < 4; i++) pthread_join(t[i], NULL);
    printf("ok\n");
    return 0;
}
