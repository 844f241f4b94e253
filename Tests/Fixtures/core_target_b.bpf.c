/* CO-RE target layout B: an "older" layout of the core_fields/core_bits types, with fields,
 * enumerators and types missing, incompatible field types (poisoned), and a ___v2 flavor
 * that duplicates core_sample compatibly for 'a' (the candidate list is pruned). */
#include "core_helpers.h"

struct core_inner {
    int x;
    int y;
    char name[8];
};

struct core_sample {
    int a;
    struct core_inner in;
    struct core_inner *pin;
    int arr[2][3];
    int anon_a;
    short anon_b;
    unsigned int anon_c;
    unsigned int u64f;
    u64 u32f;
    int s32f;
    unsigned long ptr;
    int color;
    int flex_len;
    int tail[];
};

struct core_sample___v2 {
    int a;
    long renamed_in_v2;
};

enum core_e { CE_A = 1, CE_B = 2 };
enum core_big { BIG_A = 5, BIG_B = 6 };

struct core_match { int m1; long m2; struct core_inner *m3; };
union core_u { int i; };

enum core_bits_e { CBE_NEG = -2, CBE_ONE = 1 };

struct core_bits {
    int lead;
    u8 lead2 : 3;
    s64 u1 : 1;
    s64 u2 : 2;
    s64 u3 : 3;
    s64 u4 : 4;
    s64 u5 : 5;
    s64 u6 : 6;
    s64 u7 : 7;
    s64 u8 : 8;
    s64 u9 : 9;
    s64 u10 : 10;
    s64 u11 : 11;
    s64 u12 : 12;
    s64 u13 : 13;
    s64 u14 : 14;
    s64 u15 : 15;
    s64 u16 : 16;
    s64 u17 : 17;
    s64 u18 : 18;
    s64 u19 : 19;
    s64 u20 : 20;
    s64 u21 : 21;
    s64 u22 : 22;
    s64 u23 : 23;
    s64 u24 : 24;
    s64 u25 : 25;
    s64 u26 : 26;
    s64 u27 : 27;
    s64 u28 : 28;
    s64 u29 : 29;
    s64 u30 : 30;
    s64 u31 : 31;
    s64 u32 : 32;
    s64 u33 : 33;
    s64 u34 : 34;
    s64 u35 : 35;
    s64 u36 : 36;
    s64 u37 : 37;
    s64 u38 : 38;
    s64 u39 : 39;
    s64 u40 : 40;
    s64 u41 : 41;
    s64 u42 : 42;
    s64 u43 : 43;
    s64 u44 : 44;
    s64 u45 : 45;
    s64 u46 : 46;
    s64 u47 : 47;
    s64 u48 : 48;
    s64 u49 : 49;
    s64 u50 : 50;
    s64 u51 : 51;
    s64 u52 : 52;
    s64 u53 : 53;
    s64 u54 : 54;
    s64 u55 : 55;
    s64 u56 : 56;
    s64 u57 : 57;
    s64 u58 : 58;
    s64 u59 : 59;
    s64 u60 : 60;
    s64 u61 : 61;
    s64 u62 : 62;
    s64 u63 : 63;
    s64 u64 : 64;
    u64 s1 : 1;
    u64 s2 : 2;
    u64 s3 : 3;
    u64 s4 : 4;
    u64 s5 : 5;
    u64 s6 : 6;
    u64 s7 : 7;
    u64 s8 : 8;
    u64 s9 : 9;
    u64 s10 : 10;
    u64 s11 : 11;
    u64 s12 : 12;
    u64 s13 : 13;
    u64 s14 : 14;
    u64 s15 : 15;
    u64 s16 : 16;
    u64 s17 : 17;
    u64 s18 : 18;
    u64 s19 : 19;
    u64 s20 : 20;
    u64 s21 : 21;
    u64 s22 : 22;
    u64 s23 : 23;
    u64 s24 : 24;
    u64 s25 : 25;
    u64 s26 : 26;
    u64 s27 : 27;
    u64 s28 : 28;
    u64 s29 : 29;
    u64 s30 : 30;
    u64 s31 : 31;
    u64 s32 : 32;
    u64 s33 : 33;
    u64 s34 : 34;
    u64 s35 : 35;
    u64 s36 : 36;
    u64 s37 : 37;
    u64 s38 : 38;
    u64 s39 : 39;
    u64 s40 : 40;
    u64 s41 : 41;
    u64 s42 : 42;
    u64 s43 : 43;
    u64 s44 : 44;
    u64 s45 : 45;
    u64 s46 : 46;
    u64 s47 : 47;
    u64 s48 : 48;
    u64 s49 : 49;
    u64 s50 : 50;
    u64 s51 : 51;
    u64 s52 : 52;
    u64 s53 : 53;
    u64 s54 : 54;
    u64 s55 : 55;
    u64 s56 : 56;
    u64 s57 : 57;
    u64 s58 : 58;
    u64 s59 : 59;
    u64 s60 : 60;
    u64 s61 : 61;
    u64 s62 : 62;
    u64 s63 : 63;
    u64 s64 : 64;
    u8 c1 : 1, c3 : 3, c4 : 4;
    u16 h7 : 7, h9 : 9;
    unsigned int i5 : 5, i27 : 27;
    enum core_bits_e eb : 3;
    unsigned int plain;
    s16 splain;
};

/* Holds every type above by value so clang emits their definitions into .BTF. */
struct core_target_all {
    struct core_sample___v2 b;
    enum core_e d;
    enum core_big f;
    struct core_match g;
    union core_u i;
    struct core_bits j;
    struct core_sample a; /* last: it ends in a flexible array */
};

int core_target_types(struct core_target_all *all)
{
    return 0;
}
