/* Tracer USDT test target: runs N rounds (argv[1]); each fires plumbu:add(i, i*10, -i, "plumb"),
 * plumbu:global(g_counter) (RIP-relative in PIE), plumbu:two at two inlined sites with different
 * operands (v and v*100), and plumbu:gate(i) only while a tracer holds its semaphore. */
#include <stdio.h>
#include <stdlib.h>
#define _SDT_HAS_SEMAPHORES 1
#include <sys/sdt.h>
#define SEM(n) unsigned short plumbu_##n##_semaphore __attribute__((unused, section(".probes")))
SEM(two); SEM(add); SEM(global); SEM(gate);
volatile long g_counter = 40;
static inline __attribute__((always_inline)) void two(long v) { STAP_PROBE1(plumbu, two, v); }
__attribute__((noinline)) void a(long v) { two(v); __asm__ volatile("" ::: "memory"); }
__attribute__((noinline)) void b(long v) { two(v * 100); __asm__ volatile("" ::: "memory"); }
int main(int argc, char **argv) {
    int n = argc > 1 ? atoi(argv[1]) : 5;
    char name[8] = "plumb";
    __asm__ volatile("" :: "r"(name) : "memory");
    for (int i = 1; i <= n; i++) {
        g_counter += 1;
        STAP_PROBE4(plumbu, add, i, (long)i * 10, (short)-i, name);
        STAP_PROBE1(plumbu, global, g_counter);
        a(i); b(i);
        if (plumbu_gate_semaphore) STAP_PROBE1(plumbu, gate, i);
    }
    return 0;
}
