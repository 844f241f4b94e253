/* USDT test target (built -g -O2 by the kernel tests, PIE and non-PIE, linked to libplumbusdt.so).
 * Prints its pid, then runs one round of `n` iterations (argv[1]) per byte read from stdin and
 * prints how many times the semaphore-gated probe's gate was open in that round; exits at EOF.
 * Probe arguments are chosen so that operands land in registers, in memory through a pointer,
 * at RIP-relative globals (and a struct field of one), indexed memory, and constants. */
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>
#include <sys/sdt.h>

struct item { int id; volatile long weight; };       /* volatile: read in place, 8@8(%reg) */
struct stats { long calls; long total; };

volatile long g_total;                 /* RIP-relative in PIE: 8@g_total(%rip) */
volatile struct stats g_stats;         /* a field: 8@g_stats+8(%rip) */
int g_table[64];

int gated_round(int i);                 /* gated.c: semaphore-gated probe, returns 1 when open */
long lib_work(long x);                  /* libplumbusdt.so */

__attribute__((noinline)) static void tick(struct item *p, int i) {
    g_total += i;
    g_stats.total += 2 * i;
    /* i in a register, a global, a field through a pointer, a struct field of a global,
     * an indexed element, a constant and a small signed value. */
    STAP_PROBE7(plumb, tick, i, g_total, p->weight, g_stats.total, g_table[i & 63], -7, (signed char)(i - 3));
}

/* The same probe name at two sites (an inlined copy in each caller). */
static inline __attribute__((always_inline)) void twice(int v) { STAP_PROBE1(plumb, twice, v); }
__attribute__((noinline)) void site_a(int v) { twice(v); __asm__ volatile("" ::: "memory"); }
__attribute__((noinline)) void site_b(int v) { twice(v + 1000); __asm__ volatile("" ::: "memory"); }

/* Sub-registers the compiler rarely picks, %ah above all: a probe written in assembly. */
__attribute__((noinline)) void regs(long v) {
    __asm__ volatile("movq %0, %%rax\n\t"
                     "movq %0, %%r14\n\t"
                     STAP_PROBE_ASM(plumb, regs, 1@%%ah 1@%%al 2@%%ax -4@%%r14d -2@%%r14w 1@%%r14b 8@%%rax)
                     :: "r"(v) : "rax", "r14", "memory");
}

__attribute__((noinline)) void many(long a) {
    STAP_PROBE12(plumb, many, a, a + 1, a + 2, a + 3, a + 4, a + 5, a + 6, a + 7, a + 8, a + 9, a + 10, a + 11);
}

int main(int argc, char **argv) {
    int n = argc > 1 ? atoi(argv[1]) : 10;
    struct item *items = calloc(64, sizeof *items);
    if (!items) return 3;
    for (int i = 0; i < 64; i++) { items[i].id = i; items[i].weight = 100 + i; g_table[i] = 1000 + i; }
    printf("%d\n", (int)getpid());
    fflush(stdout);
    char c;
    while (read(0, &c, 1) == 1) {
        int open = 0;
        long sum = 0;
        for (int i = 0; i < n; i++) {
            tick(&items[i & 63], i);
            site_a(i);
            site_b(i);
            many(i);
            regs(0x1000000 + 0x10203 * (long)i);
            open += gated_round(i);
            sum += lib_work(i);
        }
        printf("%d %ld\n", open, sum);
        fflush(stdout);
    }
    return 0;
}
