/* One misuse per run, chosen by argv[1]; prints the block's address first so the harness can
 * check the report names it. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int main(int argc, char **argv) {
    if (argc < 2) return 2;
    /* A neighbour that stays live: with it the pool keeps the slab (freeing a slab's last block
     * can give the whole segment back, after which the address is simply not the pool's). */
    char *keep = malloc(40);
    char *p = malloc(40);
    printf("MISUSE-ADDRESS %p\n", (void *)p);
    fflush(stdout);
    if (!strcmp(argv[1], "double-free")) {
        free(p);
        free(p);
    } else if (!strcmp(argv[1], "overflow")) {
        memset(p, 'x', 41); /* one byte past the block */
        free(p);
    } else if (!strcmp(argv[1], "foreign")) {
        char local[64];
        printf("MISUSE-ADDRESS %p\n", (void *)(local + 16));
        fflush(stdout);
        free(local + 16);
    } else if (!strcmp(argv[1], "interior")) {
        printf("MISUSE-ADDRESS %p\n", (void *)(p + 8));
        fflush(stdout);
        free(p + 8);
    }
    printf("MISUSE-NOT-DETECTED %p\n", (void *)keep);
    return 0;
}
