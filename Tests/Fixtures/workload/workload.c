// The script corpus's deterministic workload: does exactly what its arguments say, so a
// script filtering on `pid == cpid` can expect exact counts.
//   workload getpid N | open PATH N | read N BYTES | work K | sleep MS | fork | write TEXT | poke N
//            | children N K | spawn CMD... | wait
// Commands run left to right, e.g. `workload getpid 3 work 5 fork`.
// `children N K`: N child processes, one after another, each calling work() K times (then exits).
// `spawn CMD...`: a child process that execs this program with the remaining commands; the
// parent waits for it and ends there. `wait`: reads stdin until a byte or EOF (a test's gate). Built with
// `cc -g -O1 -fno-inline -no-pie` (ScriptCorpusTests), so symbol addresses are fixed.
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

// The uprobe target: not inlined, and its result depends on its argument (uretprobe checks).
__attribute__((noinline)) int work(int n) {
    __asm__ volatile("" ::: "memory");
    return n * 2;
}

__attribute__((noinline)) long add3(long a, long b, long c) {
    __asm__ volatile("" ::: "memory");
    return a + b + c;
}

// uaddr() target (the binary is built -no-pie, so its address is the ELF's).
volatile int workload_magic = 4242;

static long num(const char *s) { return strtol(s, NULL, 10); }

// The process commands, kept out of main (and after it) so that main's code and the symbol
// addresses the corpus expects do not move.
static int more(int argc, char **argv, int i);

int main(int argc, char **argv) {
    for (int i = 1; i < argc; i++) {
        const char *cmd = argv[i];
        const char *a = i + 1 < argc ? argv[i + 1] : "0";
        if (strcmp(cmd, "getpid") == 0) {
            for (long n = num(a); n > 0; n--) syscall(SYS_getpid);
            i++;
        } else if (strcmp(cmd, "open") == 0) {
            long n = i + 2 < argc ? num(argv[i + 2]) : 1;
            for (; n > 0; n--) {
                int fd = open(a, O_RDONLY);
                if (fd >= 0) close(fd);
            }
            i += 2;
        } else if (strcmp(cmd, "read") == 0) {
            long n = num(a), bytes = i + 2 < argc ? num(argv[i + 2]) : 1;
            char buf[4096];
            if (bytes > (long)sizeof buf) bytes = sizeof buf;
            int fd = open("/dev/zero", O_RDONLY);
            for (; n > 0 && fd >= 0; n--) (void)!read(fd, buf, (size_t)bytes);
            if (fd >= 0) close(fd);
            i += 2;
        } else if (strcmp(cmd, "work") == 0) {
            long total = 0;
            for (long k = 1; k <= num(a); k++) total += work((int)k);
            add3(1, 2, 3);
            i++;
            if (total < 0) return 3;
        } else if (strcmp(cmd, "sleep") == 0) {
            struct timespec ts = {num(a) / 1000, (num(a) % 1000) * 1000000};
            nanosleep(&ts, NULL);
            i++;
        } else if (strcmp(cmd, "fork") == 0) {
            pid_t c = fork();
            if (c == 0) { syscall(SYS_getpid); _exit(0); }
            if (c > 0) waitpid(c, NULL, 0);
        } else if (strcmp(cmd, "poke") == 0) {
            // N writes of workload_magic (watchpoint target).
            for (long n = num(a); n > 0; n--) workload_magic = workload_magic + 1;
            i++;
        } else if (strcmp(cmd, "write") == 0) {
            int fd = open("/dev/null", O_WRONLY);
            if (fd >= 0) { (void)!write(fd, a, strlen(a)); close(fd); }
            i++;
        } else {
            int used = more(argc, argv, i);
            if (used >= 0) { i += used; continue; }
            fprintf(stderr, "workload: unknown command %s\n", cmd);
            return 2;
        }
    }
    return 0;
}

// children N K | spawn CMD... | wait (see the header): how many arguments after argv[i] it
// took, -1 when argv[i] is none of them.
__attribute__((noinline)) static int more(int argc, char **argv, int i) {
    const char *cmd = argv[i];
    const char *a = i + 1 < argc ? argv[i + 1] : "0";
    if (strcmp(cmd, "children") == 0) {
        long n = strtol(a, NULL, 10), k = i + 2 < argc ? strtol(argv[i + 2], NULL, 10) : 1;
        for (; n > 0; n--) {
            pid_t c = fork();
            if (c == 0) { for (long j = 1; j <= k; j++) work((int)j); _exit(0); }
            if (c > 0) waitpid(c, NULL, 0);
        }
        return 2;
    }
    if (strcmp(cmd, "spawn") == 0) {
        pid_t c = fork();
        if (c == 0) {
            argv[i] = argv[0];
            // execve through syscall() and _exit below: no new imports, so the PLT and the
            // addresses after it (work's, which the corpus expects) stay where they were.
            syscall(SYS_execve, "/proc/self/exe", argv + i, argv + argc + 1);  // envp follows argv (SysV ABI)
            _exit(127);
        }
        int status = 0;
        if (c > 0) waitpid(c, &status, 0);
        _exit(WIFEXITED(status) ? WEXITSTATUS(status) : 1);
    }
    if (strcmp(cmd, "wait") == 0) {
        char c;
        (void)!read(0, &c, 1);
        return 0;
    }
    return -1;
}
