/* CO-RE target layout A: the same type names as core_fields/core_bits with another
 * layout (fields moved, resized, retyped, reversed). Not a program: its .BTF is the target
 * BTF of the differential test (libbpf's btf_custom_path accepts an ELF with .BTF). */
#include "core_helpers.h"

struct core_inner {
    long pad0;
    int x;
    char name[24];
    long y;
};

enum core_color { COLOR_BLUE = 7, COLOR_RED = 8, COLOR_GREEN = 9 };

struct core_sample {
    long pad[3];
    struct core_inner in;
    int a;
    struct {
        union {
            unsigned int anon_c;
            short anon_b;
        };
        long gap;
        int anon_a;
    };
    struct core_inner *pin;
    int arr[5][4];
    unsigned short u32f;
    long s32f;
    u64 u64f;
    void *ptr;
    unsigned char gone;
    enum core_color color;
    int flex_len;
    int tail[];
};

typedef struct core_inner core_inner_t;

enum core_e { CE_B = 20, CE_A = 10 };
enum core_neg { NEG_B = 9, NEG_A = -6 };
enum core_big { BIG_A = 0x300000000ULL, BIG_B = 0x8000000000000000ULL };

struct core_match { int m1; unsigned long m2; struct core_inner *m3; long extra; };
struct core_nomatch { int m1; unsigned long m2; };
union core_u { long l; int i; float f; };

enum core_bits_e { CBE_NEG = -2, CBE_ONE = 1 };

struct core_bits {
    char lead;
    u64 u64 : 64;
    u64 u63 : 63;
    u64 u62 : 62;
    u64 u61 : 61;
    u64 u60 : 60;
    u64 u59 : 59;
    u64 u58 : 58;
    u64 u57 : 57;
    u64 u56 : 56;
    u64 u55 : 55;
    u64 u54 : 54;
    u64 u53 : 53;
    u64 u52 : 52;
    u64 u51 : 51;
    u64 u50 : 50;
    u64 u49 : 49;
    u64 u48 : 48;
    u64 u47 : 47;
    u64 u46 : 46;
    u64 u45 : 45;
    u64 u44 : 44;
    u64 u43 : 43;
    u64 u42 : 42;
    u64 u41 : 41;
    u64 u40 : 40;
    u64 u39 : 39;
    u64 u38 : 38;
    u64 u37 : 37;
    u64 u36 : 36;
    u64 u35 : 35;
    u64 u34 : 34;
    u64 u33 : 33;
    unsigned int u32 : 32;
    unsigned int u31 : 31;
    unsigned int u30 : 30;
    unsigned int u29 : 29;
    unsigned int u28 : 28;
    unsigned int u27 : 27;
    unsigned int u26 : 26;
    unsigned int u25 : 25;
    unsigned int u24 : 24;
    unsigned int u23 : 23;
    unsigned int u22 : 22;
    unsigned int u21 : 21;
    unsigned int u20 : 20;
    unsigned int u19 : 19;
    unsigned int u18 : 18;
    unsigned int u17 : 17;
    u16 u16 : 16;
    u16 u15 : 15;
    u16 u14 : 14;
    u16 u13 : 13;
    u16 u12 : 12;
    u16 u11 : 11;
    u16 u10 : 10;
    u16 u9 : 9;
    u8 u8 : 8;
    u8 u7 : 7;
    u8 u6 : 6;
    u8 u5 : 5;
    u8 u4 : 4;
    u8 u3 : 3;
    u8 u2 : 2;
    u8 u1 : 1;
    s64 s64 : 64;
    s64 s63 : 63;
    s64 s62 : 62;
    s64 s61 : 61;
    s64 s60 : 60;
    s64 s59 : 59;
    s64 s58 : 58;
    s64 s57 : 57;
    s64 s56 : 56;
    s64 s55 : 55;
    s64 s54 : 54;
    s64 s53 : 53;
    s64 s52 : 52;
    s64 s51 : 51;
    s64 s50 : 50;
    s64 s49 : 49;
    s64 s48 : 48;
    s64 s47 : 47;
    s64 s46 : 46;
    s64 s45 : 45;
    s64 s44 : 44;
    s64 s43 : 43;
    s64 s42 : 42;
    s64 s41 : 41;
    s64 s40 : 40;
    s64 s39 : 39;
    s64 s38 : 38;
    s64 s37 : 37;
    s64 s36 : 36;
    s64 s35 : 35;
    s64 s34 : 34;
    s64 s33 : 33;
    int s32 : 32;
    int s31 : 31;
    int s30 : 30;
    int s29 : 29;
    int s28 : 28;
    int s27 : 27;
    int s26 : 26;
    int s25 : 25;
    int s24 : 24;
    int s23 : 23;
    int s22 : 22;
    int s21 : 21;
    int s20 : 20;
    int s19 : 19;
    int s18 : 18;
    int s17 : 17;
    s16 s16 : 16;
    s16 s15 : 15;
    s16 s14 : 14;
    s16 s13 : 13;
    s16 s12 : 12;
    s16 s11 : 11;
    s16 s10 : 10;
    s16 s9 : 9;
    s8 s8 : 8;
    s8 s7 : 7;
    s8 s6 : 6;
    s8 s5 : 5;
    s8 s4 : 4;
    s8 s3 : 3;
    s8 s2 : 2;
    s8 s1 : 1;
    u64 c1 : 1, c3 : 3, c4 : 4;
    u8 h7 : 7;
    u16 h9 : 9;
    long i5 : 5;
    int i27 : 27;
    enum core_bits_e eb : 4;
    u8 ue : 2;
    unsigned int plain;
    s16 splain;
};

/* Holds every type above by value so clang emits their definitions into .BTF. */
struct core_target_all {
    struct core_inner b;
    core_inner_t c;
    enum core_e d;
    enum core_neg e;
    enum core_big f;
    struct core_match g;
    struct core_nomatch h;
    union core_u i;
    struct core_bits j;
    enum core_color k;
    struct core_sample a; /* last: it ends in a flexible array */
};

int core_target_types(struct core_target_all *all)
{
    return 0;
}
