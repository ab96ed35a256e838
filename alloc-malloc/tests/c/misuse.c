/* One misuse per run, chosen by argv[1]; prints the block's address first so the harness can
 * check the report names it. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <malloc.h>

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
    } else if (!strcmp(argv[1], "double-free-large")) {
        /* A mebibyte block (the large-block path of every preset), a live one beside it. */
        char *big = malloc(1 << 20), *big_keep = malloc(1 << 20);
        printf("MISUSE-ADDRESS %p\n", (void *)big);
        fflush(stdout);
        free(big);
        free(big);
        free(big_keep);
    } else if (!strcmp(argv[1], "overflow-large")) {
        char *big = malloc(100000);
        printf("MISUSE-ADDRESS %p\n", (void *)big);
        fflush(stdout);
        memset(big, 'x', 100001); /* one byte past the block */
        free(big);
    } else if (!strcmp(argv[1], "interior-large")) {
        char *big = malloc(1 << 20);
        printf("MISUSE-ADDRESS %p\n", (void *)(big + 4096));
        fflush(stdout);
        free(big + 4096);
    } else if (!strcmp(argv[1], "realloc-freed")) {
        free(p);
        p = realloc(p, 100);
    } else if (!strcmp(argv[1], "realloc-interior")) {
        printf("MISUSE-ADDRESS %p\n", (void *)(p + 16));
        fflush(stdout);
        p = realloc(p + 16, 100);
    } else if (!strcmp(argv[1], "usable-size-freed")) {
        free(p);
        printf("usable %zu\n", malloc_usable_size(p));
    }
    printf("MISUSE-NOT-DETECTED %p\n", (void *)keep);
    return 0;
}
