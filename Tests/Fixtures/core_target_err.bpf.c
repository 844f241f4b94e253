/* CO-RE target for core_errors.bpf.c. */
#include "core_helpers.h"

struct amb___v1 { int x; };
struct amb___v2 { long pad; int x; };
struct dup { int x; int y; };
struct dup___2 { int x; int y; };
struct wide { u8 c; u64 w : 60; } __attribute__((packed));
struct far { char pad[40000]; int x; };
struct msz { char pad; unsigned short v; };
enum core_hi { HI_C = 6, HI_A = 0x90000000u, HI_B = 0xfffffff1u };

struct core_target_all {
    struct amb___v1 a;
    struct amb___v2 b;
    struct dup c;
    struct dup___2 d;
    struct wide e;
    struct far f;
    enum core_hi g;
    struct msz h;
};

int core_target_types(struct core_target_all *all)
{
    return 0;
}
