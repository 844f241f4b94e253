/* uprobe test target: prints its pid, waits for one byte on stdin (the tracer attaches
 * meanwhile), then calls plumb_target() argv[1] times and prints the sum. */
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

__attribute__((noinline)) int plumb_target(int x) {
    __asm__ volatile("" ::: "memory");   /* keep the calls: no inlining, no folding */
    return x * 2 + 1;
}

int main(int argc, char **argv) {
    int n = argc > 1 ? atoi(argv[1]) : 10;
    printf("%d\n", (int)getpid());
    fflush(stdout);
    char c;
    if (read(0, &c, 1) != 1) return 2;
    long sum = 0;
    for (int i = 0; i < n; i++) sum += plumb_target(i);
    printf("%ld\n", sum);
    return 0;
}
