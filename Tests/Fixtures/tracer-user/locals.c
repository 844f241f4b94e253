/* Statement-probe test target: locals in registers, on the stack, a struct local, a pointer
 * local, a loop variable and an inlined helper's local, at lines marked MARK:name (the tests
 * find the line numbers by these markers). Runs argv[1] rounds and prints what it computed,
 * one "P name k=v ..." line per marked point, for the tests to compare with the probes'. */
#include <stdio.h>
#include <stdlib.h>

struct user { char name[16]; int uid; };
struct point { int x; int y; long tag; };
struct span { int lo; int hi; };

long g_seed = 11;

/* Keeps values alive across calls without the compiler seeing through them. */
__attribute__((noinline)) void sink(long v) { __asm__ volatile("" : : "r"(v) : "memory"); }
__attribute__((noinline)) void touch(struct point *p) { __asm__ volatile("" : : "r"(p) : "memory"); }

static inline __attribute__((always_inline)) int scaled(int v) {
    int tripled = v * 3 + 1;
    sink(tripled);                                                        /* MARK:inline */
    printf("P inline v=%d tripled=%d\n", v, tripled);
    return tripled;
}

__attribute__((noinline)) long work(int n, struct user *who) {
    long total = g_seed;
    struct point pt = { n, n * 2, 70 + n };
    touch(&pt);
    struct user *owner = who;
    for (int i = 0; i < n; i++) {
        long square = (long)i * i + n;
        struct span range = { i, i + n };   /* in registers at -O2: DW_OP_piece */
        total += square;
        sink(total);                                                      /* MARK:loop */
        printf("P loop i=%d square=%ld total=%ld lo=%d hi=%d\n", i, square, total, range.lo, range.hi);
    }
    sink(pt.x + pt.y);                                                    /* MARK:struct */
    printf("P struct x=%d y=%d tag=%ld uid=%d name=%s\n", pt.x, pt.y, pt.tag, owner->uid, owner->name);
    int a = scaled(n);
    sink(a);
    /* g_seed may have changed in sink: the second copy cannot be computed with the first. */
    int b = scaled((int)g_seed + a);
    return total + a + b;
}

int main(int argc, char **argv) {
    int n = argc > 1 ? atoi(argv[1]) : 3;
    struct user u = { "alice", 1000 + n };
    long r = work(n, &u);
    printf("P done %ld\n", r);

    return 0;
}
