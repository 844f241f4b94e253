#ifndef CBPFSYS_H
#define CBPFSYS_H
/*
 * Syscall wrappers and UAPI layouts only; no logic lives here.
 *
 * Swift cannot call variadic ioctl()/syscall() and imports the anonymous-struct
 * union `bpf_attr` awkwardly (clashing member names), so each bpf() command gets
 * a plain struct with the kernel's layout. The system headers (linux-libc-dev)
 * can be older than the running kernel, so these structs include newer fields
 * (log_true_size, ...) and cbpfsys.c checks the shared offsets against
 * <linux/bpf.h> at compile time. The kernel accepts attrs shorter than its own
 * and checks that bytes it does not know are zero, so a struct that ends early
 * is always safe.
 */
#include <stdint.h>
#include <sys/types.h>
#include <linux/perf_event.h>
#include <sys/epoll.h>   /* not in Swift's Glibc module; BPFSys.Epoll wraps it */

typedef uint64_t cbpf_aligned_u64 __attribute__((aligned(8)));

/* BPF_MAP_CREATE */
struct cbpf_map_create_attr {
    uint32_t map_type;
    uint32_t key_size;
    uint32_t value_size;
    uint32_t max_entries;
    uint32_t map_flags;
    uint32_t inner_map_fd;
    uint32_t numa_node;
    char map_name[16];
    uint32_t map_ifindex;
    uint32_t btf_fd;
    uint32_t btf_key_type_id;
    uint32_t btf_value_type_id;
    uint32_t btf_vmlinux_value_type_id;
    cbpf_aligned_u64 map_extra;
};

/* BPF_MAP_*_ELEM, GET_NEXT_KEY, FREEZE (value doubles as next_key). */
struct cbpf_map_elem_attr {
    uint32_t map_fd;
    uint32_t _pad0;
    cbpf_aligned_u64 key;
    cbpf_aligned_u64 value;
    cbpf_aligned_u64 flags;
};

/* BPF_MAP_*_BATCH */
struct cbpf_map_batch_attr {
    cbpf_aligned_u64 in_batch;
    cbpf_aligned_u64 out_batch;
    cbpf_aligned_u64 keys;
    cbpf_aligned_u64 values;
    uint32_t count;
    uint32_t map_fd;
    cbpf_aligned_u64 elem_flags;
    cbpf_aligned_u64 flags;
};

/* BPF_PROG_LOAD; attach_prog_fd shares its slot with attach_btf_obj_fd. */
struct cbpf_prog_load_attr {
    uint32_t prog_type;
    uint32_t insn_cnt;
    cbpf_aligned_u64 insns;
    cbpf_aligned_u64 license;
    uint32_t log_level;
    uint32_t log_size;
    cbpf_aligned_u64 log_buf;
    uint32_t kern_version;
    uint32_t prog_flags;
    char prog_name[16];
    uint32_t prog_ifindex;
    uint32_t expected_attach_type;
    uint32_t prog_btf_fd;
    uint32_t func_info_rec_size;
    cbpf_aligned_u64 func_info;
    uint32_t func_info_cnt;
    uint32_t line_info_rec_size;
    cbpf_aligned_u64 line_info;
    uint32_t line_info_cnt;
    uint32_t attach_btf_id;
    uint32_t attach_prog_fd;
    uint32_t core_relo_cnt;
    cbpf_aligned_u64 fd_array;
    cbpf_aligned_u64 core_relos;
    uint32_t core_relo_rec_size;
    uint32_t log_true_size;   /* 6.4+: written back by the kernel */
};

/* BPF_OBJ_PIN / BPF_OBJ_GET */
struct cbpf_obj_attr {
    cbpf_aligned_u64 pathname;
    uint32_t bpf_fd;
    uint32_t file_flags;
};

/* BPF_*_GET_NEXT_ID / BPF_*_GET_FD_BY_ID (start_id doubles as prog/map/btf/link_id). */
struct cbpf_get_id_attr {
    uint32_t start_id;
    uint32_t next_id;
    uint32_t open_flags;
};

/* BPF_OBJ_GET_INFO_BY_FD */
struct cbpf_info_attr {
    uint32_t bpf_fd;
    uint32_t info_len;
    cbpf_aligned_u64 info;
};

/* BPF_RAW_TRACEPOINT_OPEN */
struct cbpf_raw_tp_attr {
    cbpf_aligned_u64 name;
    uint32_t prog_fd;
    uint32_t _pad0;
    cbpf_aligned_u64 cookie;  /* 6.10+ */
};

/* BPF_BTF_LOAD */
struct cbpf_btf_load_attr {
    cbpf_aligned_u64 btf;
    cbpf_aligned_u64 btf_log_buf;
    uint32_t btf_size;
    uint32_t btf_log_size;
    uint32_t btf_log_level;
    uint32_t btf_log_true_size; /* 6.4+ */
};

/*
 * BPF_LINK_CREATE. The per-attach-type union starts at offset 16:
 * target_btf_id (u32) | perf_event.bpf_cookie (u64) | tracing { target_btf_id, cookie@24 }.
 */
struct cbpf_link_create_attr {
    uint32_t prog_fd;
    uint32_t target_fd;
    uint32_t attach_type;
    uint32_t flags;
    union {
        uint32_t target_btf_id;
        cbpf_aligned_u64 perf_event_bpf_cookie;
    };
    cbpf_aligned_u64 tracing_cookie;
};

/* BPF_LINK_CREATE for BPF_TRACE_UPROBE_MULTI (6.6+): many uprobes of one file in one link.
 * offsets, ref_ctr_offsets (may be 0) and cookies (may be 0) point at cnt u64s each. */
struct cbpf_link_create_uprobe_multi_attr {
    uint32_t prog_fd;
    uint32_t target_fd;
    uint32_t attach_type;
    uint32_t flags;
    cbpf_aligned_u64 path;
    cbpf_aligned_u64 offsets;
    cbpf_aligned_u64 ref_ctr_offsets;
    cbpf_aligned_u64 cookies;
    uint32_t cnt;
    uint32_t uprobe_multi_flags;
    uint32_t pid;
    uint32_t _pad0;
};

/* BPF_LINK_DETACH */
struct cbpf_link_detach_attr {
    uint32_t link_fd;
};

/* BPF_PROG_TEST_RUN */
struct cbpf_test_run_attr {
    uint32_t prog_fd;
    uint32_t retval;
    uint32_t data_size_in;
    uint32_t data_size_out;
    cbpf_aligned_u64 data_in;
    cbpf_aligned_u64 data_out;
    uint32_t repeat;
    uint32_t duration;
    uint32_t ctx_size_in;
    uint32_t ctx_size_out;
    cbpf_aligned_u64 ctx_in;
    cbpf_aligned_u64 ctx_out;
    uint32_t flags;
    uint32_t cpu;
    uint32_t batch_size;
    uint32_t _pad0;
};

/* Info layouts (prefixes of the kernel's; the kernel fills at most info_len bytes). */
struct cbpf_prog_info {
    uint32_t type;
    uint32_t id;
    uint8_t tag[8];
    uint32_t jited_prog_len;
    uint32_t xlated_prog_len;
    cbpf_aligned_u64 jited_prog_insns;
    cbpf_aligned_u64 xlated_prog_insns;
    uint64_t load_time;
    uint32_t created_by_uid;
    uint32_t nr_map_ids;
    cbpf_aligned_u64 map_ids;
    char name[16];
    uint32_t ifindex;
    uint32_t flags_gpl_compatible; /* bit 0: gpl_compatible */
    uint64_t netns_dev;
    uint64_t netns_ino;
    uint32_t nr_jited_ksyms;
    uint32_t nr_jited_func_lens;
    cbpf_aligned_u64 jited_ksyms;
    cbpf_aligned_u64 jited_func_lens;
    uint32_t btf_id;
    uint32_t func_info_rec_size;
    cbpf_aligned_u64 func_info;
    uint32_t nr_func_info;
    uint32_t nr_line_info;
    cbpf_aligned_u64 line_info;
    cbpf_aligned_u64 jited_line_info;
    uint32_t nr_jited_line_info;
    uint32_t line_info_rec_size;
    uint32_t jited_line_info_rec_size;
    uint32_t nr_prog_tags;
    cbpf_aligned_u64 prog_tags;
    uint64_t run_time_ns;
    uint64_t run_cnt;
    uint64_t recursion_misses;
    uint32_t verified_insns;
    uint32_t attach_btf_obj_id;
    uint32_t attach_btf_id;
    uint32_t _pad0;
};

struct cbpf_map_info {
    uint32_t type;
    uint32_t id;
    uint32_t key_size;
    uint32_t value_size;
    uint32_t max_entries;
    uint32_t map_flags;
    char name[16];
    uint32_t ifindex;
    uint32_t btf_vmlinux_value_type_id;
    uint64_t netns_dev;
    uint64_t netns_ino;
    uint32_t btf_id;
    uint32_t btf_key_type_id;
    uint32_t btf_value_type_id;
    uint32_t _pad0;
    uint64_t map_extra;
};

struct cbpf_btf_info {
    cbpf_aligned_u64 btf;
    uint32_t btf_size;
    uint32_t id;
    cbpf_aligned_u64 name;
    uint32_t name_len;
    uint32_t kernel_btf;
};

/* Common head of bpf_link_info plus the raw_tracepoint/tracing union (16 bytes), padded. */
struct cbpf_link_info {
    uint32_t type;
    uint32_t id;
    uint32_t prog_id;
    uint32_t _pad0;
    union {
        struct { cbpf_aligned_u64 tp_name; uint32_t tp_name_len; } raw_tracepoint;
        struct { uint32_t attach_type; uint32_t target_obj_id; uint32_t target_btf_id; } tracing;
        uint64_t _space[8];
    };
};

/* bpf(2): returns the syscall result; errno is left for the caller to read. */
long cbpf_bpf(int cmd, void *attr, unsigned int size);

/* perf_event_open(2) */
int cbpf_perf_event_open(struct perf_event_attr *attr, pid_t pid, int cpu, int group_fd, unsigned long flags);

/* perf event ioctls (ioctl is variadic, so Swift needs these). */
int cbpf_perf_event_enable(int fd);
int cbpf_perf_event_disable(int fd);
int cbpf_perf_event_set_bpf(int fd, int prog_fd);
int cbpf_perf_event_id(int fd, uint64_t *id);

/* Acquire loads and release stores on memory shared with the kernel (ring buffer and perf ring
 * positions, record headers): Swift's Atomic cannot wrap foreign memory. */
static inline uint64_t cbpf_load_acquire_u64(const uint64_t *p) { return __atomic_load_n(p, __ATOMIC_ACQUIRE); }
static inline uint32_t cbpf_load_acquire_u32(const uint32_t *p) { return __atomic_load_n(p, __ATOMIC_ACQUIRE); }
static inline void cbpf_store_release_u64(uint64_t *p, uint64_t v) { __atomic_store_n(p, v, __ATOMIC_RELEASE); }

/* sizeof(struct perf_event_attr) as this header knows it. */
unsigned int cbpf_perf_event_attr_size(void);

#endif
