/* The semaphore-gated probe: its own translation unit, since _SDT_HAS_SEMAPHORES makes every
 * probe of a unit refer to a semaphore. */
#define _SDT_HAS_SEMAPHORES 1
#include <sys/sdt.h>

__extension__ unsigned short plumb_gated_semaphore __attribute__((unused)) __attribute__((section(".probes")));
#define PLUMB_GATED_ENABLED() __builtin_expect(plumb_gated_semaphore, 0)

__attribute__((noinline)) int gated_round(int i) {
    if (PLUMB_GATED_ENABLED()) {
        STAP_PROBE1(plumb, gated, i);
        return 1;
    }
    return 0;
}
