/* CO-RE fixture: field, type and enum relocations of every kind against local types.
 * Relocated against core_target_a (same names, other layout) and core_target_b (older,
 * smaller layout: fields and types missing) by the differential test. */
#include "core_helpers.h"

struct core_inner {
    int x;
    long y;
    char name[16];
} __pai;

struct core_sample {
    int a;
    struct core_inner in;
    struct core_inner *pin;
    int arr[4][3];
    struct {
        int anon_a;
        union {
            short anon_b;
            unsigned int anon_c;
        };
    };
    u64 u64f;
    unsigned int u32f;  /* unsigned short in target a: load size adjusted */
    int s32f;           /* long in target a: the load cannot be resized, poisoned */
    void *ptr;
    unsigned char gone; /* missing in target b */
    enum core_color { COLOR_RED, COLOR_GREEN, COLOR_BLUE, COLOR_GONE } color;
    int flex_len;
    int tail[];
} __pai;

/* A flavor: same type as core_sample for CO-RE, different local layout. */
struct core_sample___v2 {
    int a;
    long renamed_in_v2;
} __pai;

typedef struct core_inner core_inner_t;

enum core_e { CE_A = 1, CE_B = 2, CE_GONE = 3 };
enum core_neg { NEG_A = -5, NEG_B = 7 };
enum core_big { BIG_A = 0x100000000ULL, BIG_B = 0xfffffffffffffff0ULL, BIG_GONE = 0x200000000ULL };

struct core_nope { int z; };
struct core_match { int m1; unsigned long m2; struct core_inner *m3; };
struct core_nomatch { int m1; long m2; };
union core_u { int i; float f; };

#define OUT(i, v) (out[i] = (u64)(v))

SEC("raw_tp/core_fields")
int core_fields(u64 *out)
{
    struct core_sample *p = (void *)out[100];

    /* plain loads (LDX offset relocations) */
    OUT(0, p->a);
    OUT(1, p->in.x);
    OUT(2, p->in.y);
    OUT(3, p->in.name[3]);
    OUT(4, p->pin);
    OUT(5, p->arr[2][1]);
    OUT(6, p->arr[3][2]);
    OUT(7, p->anon_a);
    OUT(8, p->anon_b);
    OUT(9, p->anon_c);
    OUT(10, p->u64f);
    OUT(11, p->u32f);
    OUT(12, p->s32f);
    OUT(13, p->ptr);
    OUT(14, p->tail[5]);
    /* stores: ST (immediate) and STX (register) */
    p->a = 42;
    p->u64f = out[1];
    /* guarded access to a field that may be missing */
    if (field_exists(p->gone))
        OUT(15, p->gone);
    /* field info kinds */
    OUT(16, field_offset(p->in.name));
    OUT(17, field_size(p->in.name));
    OUT(18, field_size(p->arr[1]));
    OUT(19, field_offset(p->arr[1][2]));
    OUT(20, field_info(p->a, CORE_SIGNED));
    OUT(21, field_info(p->u32f, CORE_SIGNED));
    OUT(22, field_info(p->color, CORE_SIGNED));
    OUT(23, field_info(p->u64f, CORE_LSHIFT_U64));
    OUT(24, field_info(p->u32f, CORE_RSHIFT_U64));
    OUT(25, field_exists(p->pin));
    OUT(26, field_exists(p->tail));
    OUT(27, field_offset(p->tail[7]));
    OUT(28, __builtin_preserve_access_index(&p[1].in.y));
    OUT(29, __builtin_preserve_access_index(&p->anon_c));
    return 0;
}

SEC("raw_tp/core_flavor")
int core_flavor(u64 *out)
{
    struct core_sample___v2 *q = (void *)out[100];
    if (field_exists(q->renamed_in_v2))
        OUT(0, q->renamed_in_v2);
    OUT(1, q->a);
    return 0;
}

SEC("raw_tp/core_types")
int core_types(u64 *out)
{
    OUT(0, type_exists(struct core_sample));
    OUT(1, type_exists(struct core_nope));
    OUT(2, type_size(struct core_sample));
    OUT(3, type_size(struct core_nope));
    OUT(4, type_size(core_inner_t));
    OUT(5, type_size(union core_u));
    OUT(6, type_matches(struct core_match));
    OUT(7, type_matches(struct core_nomatch));
    OUT(8, type_matches(enum core_e));
    OUT(9, type_id_local(struct core_sample));
    OUT(10, type_id_target(struct core_inner));
    OUT(11, type_id_target(struct core_nope));
    OUT(12, type_exists(enum core_big));
    OUT(13, type_size(enum core_e));
    OUT(14, type_id_local(core_inner_t));
    OUT(15, type_exists(core_inner_t));
    return 0;
}

SEC("raw_tp/core_enums")
int core_enums(u64 *out)
{
    OUT(0, enum_exists(enum core_e, CE_A));
    OUT(1, enum_value(enum core_e, CE_A));
    OUT(2, enum_value(enum core_e, CE_B));
    OUT(3, enum_exists(enum core_e, CE_GONE));
    if (enum_exists(enum core_e, CE_GONE))
        OUT(4, enum_value(enum core_e, CE_GONE));
    OUT(5, enum_value(enum core_neg, NEG_A));
    OUT(6, enum_value(enum core_neg, NEG_B));
    OUT(7, enum_value(enum core_big, BIG_A));
    OUT(8, enum_value(enum core_big, BIG_B));
    if (enum_exists(enum core_big, BIG_GONE))
        OUT(9, enum_value(enum core_big, BIG_GONE));
    OUT(10, enum_value(enum core_color, COLOR_BLUE));
    if (enum_exists(enum core_color, COLOR_GONE))
        OUT(11, enum_value(enum core_color, COLOR_GONE));
    return 0;
}

char LICENSE[] SEC("license") = "GPL";
