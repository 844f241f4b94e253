/* Tracer DWARF test target: typed parameters, a pointer chain through structs, typed return
 * values and globals (int, long, a struct, a static in this file). Runs argv[1] rounds. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct user { char name[16]; int uid; };
struct conn { int fd; struct user *user; };
struct request { long id; short kind; struct conn *conn; };

int g_rounds = 7;
long g_total = -5;
struct conn g_conn = { 42, 0 };
static unsigned short s_port = 5432;

__attribute__((noinline)) int handle(struct request *req, int weight, unsigned char flag, long scale) {
    __asm__ volatile("" ::: "memory");
    g_total += weight * scale;
    return (int)(req->id * 2) - flag;
}

__attribute__((noinline)) short negate(short v) { __asm__ volatile("" ::: "memory"); return (short)-v; }

struct pair { int a; int b; };
long mixed(double d, struct pair p, long after, float f, char *tag);

int main(int argc, char **argv) {
    int n = argc > 1 ? atoi(argv[1]) : 3;
    struct user u = { "alice", 1000 };
    struct conn c = { 9, &u };
    g_conn.user = &u;
    volatile int sink = 0;
    for (int i = 1; i <= n; i++) {
        struct request r = { 100 + i, (short)(i * 3), &c };
        sink += handle(&r, i, (unsigned char)(i + 1), 10);
        sink += negate((short)i);
        struct pair pr = { i, -i };
        sink += (int)mixed(1.5, pr, 77 + i, 2.5f, u.name);
    }
    g_rounds = n;
    s_port++;
    return sink == 12345;
}

/* SysV slots: the double goes in xmm0, the small struct takes one integer register. */
__attribute__((noinline)) long mixed(double d, struct pair p, long after, float f, char *tag) {
    __asm__ volatile("" ::: "memory");
    return (long)d + p.a + after + (long)f + tag[0];
}
