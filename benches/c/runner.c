/* compare's launcher: runs PROGRAM ARGS in a grandchild of compare and prints
 * "<wall ns> <cpu ns> <max rss KiB> <wait status>" for it.
 *
 * Why not compare itself: Linux folds the RSS high-water mark of the memory a process had
 * before exec into the max RSS that wait4 reports for it, so a program started straight from
 * compare would report compare's own RSS (a few MiB) when it uses less. This launcher is small,
 * and a process it forks starts with a max RSS of zero. Usage: runner PROGRAM [ARGS...] */
#include <fcntl.h>
#include <stdio.h>
#include <sys/resource.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static long long ns(struct timeval t) { return (long long)t.tv_sec * 1000000000LL + (long long)t.tv_usec * 1000LL; }

int main(int argc, char **argv) {
    if (argc < 2) {
        fprintf(stderr, "usage: runner PROGRAM [ARGS...]\n");
        return 2;
    }
    struct timespec a, b;
    clock_gettime(CLOCK_MONOTONIC, &a);
    pid_t pid = fork();
    if (pid < 0) {
        perror("fork");
        return 2;
    }
    if (pid == 0) {
        int null = open("/dev/null", O_RDWR);
        if (null >= 0) {
            dup2(null, 0);
            dup2(null, 1);
            dup2(null, 2);
        }
        execvp(argv[1], argv + 1);
        _exit(127);
    }
    int status = 0;
    struct rusage ru;
    if (wait4(pid, &status, 0, &ru) != pid) {
        perror("wait4");
        return 2;
    }
    clock_gettime(CLOCK_MONOTONIC, &b);
    long long wall = (long long)(b.tv_sec - a.tv_sec) * 1000000000LL + (b.tv_nsec - a.tv_nsec);
    printf("%lld %lld %ld %d\n", wall, ns(ru.ru_utime) + ns(ru.ru_stime), ru.ru_maxrss, status);
    return 0;
}
