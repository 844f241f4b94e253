/* Test program for PlumbDWARFTests: built with several -g flavours; prints its own layout. */
#include <stddef.h>
#include <stdio.h>
#include <string.h>

struct point { int x; int y; };
union number { int i; float f; };
enum color { RED, GREEN = 5, BLUE = -1 };
enum big { HUGE_VALUE = 0x100000000LL };
struct node {
    struct node *next;
    struct point pos;
    char name[16];
    unsigned flags : 3;
    unsigned mode : 5;
    long long big;
    double ratio;
    union number u;
    void (*cb)(int, ...);
    int matrix[2][3];
    const volatile int *cv;
    enum color color;
    char tail[];
};
typedef struct node node_t;

int global_counter = 42;
static long static_total;
__thread int tls_value = 7;
const char *greeting = "hi";
enum color favorite = GREEN;
enum big big_value = HUGE_VALUE;

__attribute__((noinline)) int add_points(struct point *a, struct point b, int scale)
{
    int sum = a->x + b.x;          /* LINE_SUM */
    sum *= scale;
    return sum + a->y + b.y;
}

__attribute__((noinline)) static long accumulate(node_t *n, long extra)
{
    long t = extra;
    for (; n; n = n->next)
        t += n->pos.x + n->big;
    static_total += t;
    return t;
}

static int bit_of(const unsigned char *p, size_t n)
{
    for (size_t i = 0; i < n * 8; i++)
        if (p[i / 8] & (1u << (i % 8))) return (int)i;
    return -1;
}

int main(int argc, char **argv)
{
    static int calls;
    calls++;
    if (argc > 1 && strcmp(argv[1], "layout") == 0) {
        struct node z;
        memset(&z, 0, sizeof z); z.flags = 1;
        int flagsBit = bit_of((unsigned char *)&z, sizeof z);
        memset(&z, 0, sizeof z); z.mode = 1;
        int modeBit = bit_of((unsigned char *)&z, sizeof z);
        printf("node %zu next %zu pos %zu name %zu flags %d mode %d big %zu ratio %zu u %zu cb %zu matrix %zu cv %zu color %zu tail %zu\n",
               sizeof(struct node), offsetof(struct node, next), offsetof(struct node, pos), offsetof(struct node, name),
               flagsBit, modeBit, offsetof(struct node, big), offsetof(struct node, ratio), offsetof(struct node, u),
               offsetof(struct node, cb), offsetof(struct node, matrix), offsetof(struct node, cv),
               offsetof(struct node, color), offsetof(struct node, tail));
        return 0;
    }
    struct point p = { argc, 2 };
    node_t a = { 0 }, b = { 0 };
    a.next = &b;
    b.big = argc;
    printf("%d %ld %d %s %d\n", add_points(&p, p, argc), accumulate(&a, argc), tls_value, greeting, favorite + calls);
    return global_counter == 42 ? 0 : (int)big_value;
}

/* C puts a struct defined inside another at file scope: the index must find it by name. */
struct outer { struct inner { int deep; } in; int after; };
struct outer outer_value = { { 1 }, 2 };
