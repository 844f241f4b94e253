/* Runs until killed (at most 60 s): every 100 ms two threads, one after the other, set the thread-locals of
 * libtlsfix.so (tlslib.c) to their own values; for tracing with -p PID. */
#include <pthread.h>
#include <unistd.h>

void tlslib_set(long k);
__thread int exe_tls = 9;  /* the executable has TLS too: module 1, the library is module 2 */

static void *run(void *arg) { exe_tls = (int)(long)arg; tlslib_set((long)arg); return 0; }

int main(void) {
    alarm(60);  /* never outlives a test that forgot it */
    for (int fd = 3; fd < 1024; fd++) close(fd);  /* no inherited pipe of the test runner */
    for (;;) {
        for (long k = 1; k <= 2; k++) {
            pthread_t t;
            if (pthread_create(&t, 0, run, (void *)k) != 0) return 1;
            pthread_join(t, 0);
        }
        usleep(100000);
    }
}
