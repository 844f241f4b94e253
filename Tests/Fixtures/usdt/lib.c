/* libplumbusdt.so: a probe in a shared library, with a RIP-relative global of the library. */
#include <sys/sdt.h>

/* hidden and volatile: read in place, RIP-relative: 8@lib_counter(%rip) */
__attribute__((visibility("hidden"))) volatile long lib_counter;

__attribute__((noinline)) long lib_work(long x) {
    lib_counter += 3;
    STAP_PROBE2(plumblib, work, x, lib_counter);
    return x * 2;
}
