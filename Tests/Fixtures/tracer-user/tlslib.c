/* Shared library with thread-locals (built -fPIC -shared as libtlsfix.so): tlslib_set(k) sets
 * this thread's copies, then calls the probe point tlslib_tick(k). */
__thread int lib_tls = 3;
__thread long lib_tls_long;

__attribute__((noinline)) void tlslib_tick(long k) { __asm__ volatile("" ::: "memory"); (void)k; }

void tlslib_set(long k) {
    lib_tls = (int)(100 + k);
    lib_tls_long = -k;
    tlslib_tick(k);
}
