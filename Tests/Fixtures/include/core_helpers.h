/* Minimal CO-RE helpers for Plumb's fixtures (no kernel headers, no vmlinux.h): the clang
 * builtins libbpf's bpf_core_read.h wraps, with the same relocation kind numbers. */
#ifndef PLUMB_CORE_HELPERS_H
#define PLUMB_CORE_HELPERS_H

typedef unsigned char u8;
typedef unsigned short u16;
typedef unsigned int u32;
typedef unsigned long long u64;
typedef signed char s8;
typedef short s16;
typedef int s32;
typedef long long s64;

#define SEC(name) __attribute__((section(name), used))
#define __always_inline inline __attribute__((always_inline))
#define __pai __attribute__((preserve_access_index))

/* enum bpf_field_info_kind */
#define CORE_BYTE_OFFSET 0
#define CORE_BYTE_SIZE 1
#define CORE_EXISTS 2
#define CORE_SIGNED 3
#define CORE_LSHIFT_U64 4
#define CORE_RSHIFT_U64 5
/* enum bpf_type_id_kind */
#define CORE_TYPE_ID_LOCAL 0
#define CORE_TYPE_ID_TARGET 1
/* enum bpf_type_info_kind */
#define CORE_TYPE_EXISTS 0
#define CORE_TYPE_SIZE 1
#define CORE_TYPE_MATCHES 2
/* enum bpf_enum_value_kind */
#define CORE_ENUMVAL_EXISTS 0
#define CORE_ENUMVAL_VALUE 1

#define field_info(field, kind) __builtin_preserve_field_info(field, kind)
#define field_exists(field) __builtin_preserve_field_info(field, CORE_EXISTS)
#define field_offset(field) __builtin_preserve_field_info(field, CORE_BYTE_OFFSET)
#define field_size(field) __builtin_preserve_field_info(field, CORE_BYTE_SIZE)
#define type_exists(type) __builtin_preserve_type_info(*(typeof(type) *)0, CORE_TYPE_EXISTS)
#define type_size(type) __builtin_preserve_type_info(*(typeof(type) *)0, CORE_TYPE_SIZE)
#define type_matches(type) __builtin_preserve_type_info(*(typeof(type) *)0, CORE_TYPE_MATCHES)
#define type_id_local(type) __builtin_btf_type_id(*(typeof(type) *)0, CORE_TYPE_ID_LOCAL)
#define type_id_target(type) __builtin_btf_type_id(*(typeof(type) *)0, CORE_TYPE_ID_TARGET)
#define enum_exists(enum_type, value) __builtin_preserve_enum_value(*(typeof(enum_type) *)value, CORE_ENUMVAL_EXISTS)
#define enum_value(enum_type, value) __builtin_preserve_enum_value(*(typeof(enum_type) *)value, CORE_ENUMVAL_VALUE)

/* libbpf's BPF_CORE_READ_BITFIELD: load with the relocated offset and size, then shift. */
#define read_bitfield(s, field) ({                                              \
    const void *p__ = (const void *)(s) + field_info((s)->field, CORE_BYTE_OFFSET); \
    u64 v__ = 0;                                                                \
    switch (field_info((s)->field, CORE_BYTE_SIZE)) {                           \
    case 1: v__ = *(const volatile u8 *)p__; break;                             \
    case 2: v__ = *(const volatile u16 *)p__; break;                            \
    case 4: v__ = *(const volatile u32 *)p__; break;                            \
    case 8: v__ = *(const volatile u64 *)p__; break;                            \
    }                                                                           \
    v__ <<= field_info((s)->field, CORE_LSHIFT_U64);                            \
    if (field_info((s)->field, CORE_SIGNED))                                    \
        v__ = (u64)((s64)v__ >> field_info((s)->field, CORE_RSHIFT_U64));       \
    else                                                                        \
        v__ = v__ >> field_info((s)->field, CORE_RSHIFT_U64);                   \
    v__;                                                                        \
})

#endif
