/* Tracer parameter-passing test target (SysV x86-64): a function of many parameters of mixed
 * kinds, so some go in integer registers, some in xmm registers, some on the stack; small
 * structs of integers in one or two registers, a large one and a late small one on the stack;
 * and a function returning a large struct (its hidden buffer pointer takes rdi). */
struct two { long x; long y; };      /* INTEGER, INTEGER: two registers */
struct small { int a; int b; };      /* INTEGER: one register */
struct big { long v[3]; };           /* 24 bytes: memory */
struct fp { double d; long l; };     /* SSE, INTEGER */

__attribute__((noinline)) long many(int a1, struct two t, double d, long a3, struct small s, char *p,
                                    long a6, short a7, struct big bg, int a9, float f, struct small s2,
                                    struct fp m, unsigned char a12) {
    __asm__ volatile("" ::: "memory");
    return a1 + t.x + t.y + (long)d + a3 + s.a + s.b + p[0] + a6 + a7 + bg.v[0] + bg.v[2] + a9 + (long)f
           + s2.a + s2.b + (long)m.d + m.l + a12;
}

__attribute__((noinline)) struct big make(long a, long b, long c) {
    __asm__ volatile("" ::: "memory");
    struct big r = { { a, b, c } };
    return r;
}

/* Five registers taken: the two-register struct goes on the stack, and `f` still takes r9. */
__attribute__((noinline)) long spill(long a, long b, long c, long d, long e, struct two t, long f) {
    __asm__ volatile("" ::: "memory");
    return a + b + c + d + e + t.x + t.y + f;
}

/* A struct of a double and a long: xmm0 and rdi; `after` takes rsi. */
__attribute__((noinline)) long fpfirst(struct fp m, long after) {
    __asm__ volatile("" ::: "memory");
    return (long)m.d + m.l + after;
}

int main(int argc, char **argv) {
    int n = argc > 1 ? argc : 2;
    long sink = 0;
    for (int i = 1; i <= n; i++) {
        struct two t = { 100 + i, 200 + i };
        struct small s = { 3 * i, -4 * i }, s2 = { 50 + i, -60 - i };
        struct big bg = { { 1000 + i, 2000 + i, 3000 + i } };
        struct fp m = { 0.5, 700 + i };
        char name[] = "params";
        sink += many(i, t, 2.5, -30 - i, s, name, 6000000000L + i, (short)(-7 - i), bg, 90 + i, 1.5f, s2, m, (unsigned char)(200 + i));
        sink += make(i, 2 * i, 3 * i).v[1];
        sink += spill(i, 2, 3, 4, 5, t, 400 + i);
        sink += fpfirst(m, 800 + i);
    }
    return sink == 42;
}
