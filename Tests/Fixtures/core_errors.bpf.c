/* CO-RE fixture: relocations libbpf refuses, one per program (the differential test runs
 * each program alone, since libbpf stops at the first failed relocation). Target:
 * core_target_err.bpf.c. */
#include "core_helpers.h"

struct amb { int x; } __pai;            /* target: amb___v1 and amb___v2 disagree on x */
struct dup { int x; int y; } __pai;     /* target: dup and dup___2, compatible */
struct wide { u64 w : 60; } __pai;      /* target: packed, w straddles 8 bytes */
struct far { int x; } __pai;            /* target: x at offset 40000 */
struct msz { unsigned int v; } __pai;    /* target: unsigned short v */
enum core_hi { HI_A = 0x80000000u, HI_B = 0xfffffff0u, HI_C = 5 };

SEC("raw_tp/err_offset_ambiguity")
int err_offset_ambiguity(u64 *out)
{
    struct amb *p = (void *)out[10];
    out[0] = p->x;
    return 0;
}

SEC("raw_tp/ok_compatible_duplicates")
int ok_compatible_duplicates(u64 *out)
{
    struct dup *p = (void *)out[10];
    out[0] = p->x;
    out[1] = p->y;
    out[2] = type_size(struct dup);
    return 0;
}

SEC("raw_tp/err_type_id_ambiguity")
int err_type_id_ambiguity(u64 *out)
{
    out[0] = type_id_target(struct dup);
    return 0;
}

SEC("raw_tp/err_bitfield_too_wide")
int err_bitfield_too_wide(u64 *out)
{
    struct wide *p = (void *)out[10];
    out[0] = read_bitfield(p, w);
    return 0;
}

SEC("raw_tp/err_offset_too_big")
int err_offset_too_big(u64 *out)
{
    struct far *p = (void *)out[10];
    out[0] = p->x;
    return 0;
}

/* A plain (non-bitfield) field read through BPF_CORE_READ_BITFIELD's size switch: the u8
 * load is relocated as a field offset whose local size (4) is not the load's size (1). */
SEC("raw_tp/err_mem_size")
int err_mem_size(u64 *out)
{
    struct msz *p = (void *)out[10];
    out[0] = read_bitfield(p, v);
    return 0;
}

/* libbpf 1.1 reads 32-bit enumerator values through an __s32 and sign-extends unsigned
 * ones: HI_A's local value becomes 0xffffffff80000000 and does not match the instruction. */
SEC("raw_tp/enum_unsigned_high")
int enum_unsigned_high(u64 *out)
{
    out[0] = enum_value(enum core_hi, HI_C);
    out[1] = enum_value(enum core_hi, HI_A);
    out[2] = enum_value(enum core_hi, HI_B);
    return 0;
}

char LICENSE[] SEC("license") = "GPL";
