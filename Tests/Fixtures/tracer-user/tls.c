/* Tracer thread-local test target: __thread variables of the executable set to different
 * values in each of three threads (two created, then main), one after another, and a probe
 * point `tls_tick(k)` in each after the values are set. The 64-byte-aligned member makes the
 * TLS block's size round up (roundup(p_memsz, p_align)). */
#include <pthread.h>
#include <stdint.h>

__thread int tls_int = 5;
__thread long tls_long;
__thread char tls_name[13] = "init";
static __thread short tls_short;
__thread uint64_t tls_aligned __attribute__((aligned(64)));

__attribute__((noinline)) void tls_tick(long k) { __asm__ volatile("" ::: "memory"); (void)k; }

static void *run(void *arg) {
    long k = (long)arg;
    tls_int = (int)(k * 10 + 1);
    tls_long = -k * 1000;
    tls_short = (short)(k + 7);
    tls_aligned = 0x1000 + (uint64_t)k;
    tls_name[0] = (char)('a' + k); tls_name[1] = 0;
    tls_tick(k);
    return 0;
}

int main(void) {
    pthread_t t;
    for (long k = 1; k <= 2; k++) {
        if (pthread_create(&t, 0, run, (void *)k) != 0) return 1;
        pthread_join(t, 0);
    }
    run((void *)3);
    return tls_int != 31 || tls_short != 10;
}
