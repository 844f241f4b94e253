/* CO-RE fixture against the running kernel's BTF (no vmlinux.h: the few fields read are
 * declared here with preserve_access_index; the kernel's layout is what CO-RE finds). */
#include "core_helpers.h"

struct list_head {
    struct list_head *next, *prev;
};

struct mm_struct {
    unsigned long arg_start;
    unsigned long arg_end;
    unsigned long no_such_mm_field;
} __pai;

struct task_struct {
    unsigned int __state;
    unsigned int flags;
    int pid;
    int tgid;
    char comm[16];
    struct mm_struct *mm;
    struct task_struct *real_parent;
    struct list_head children;
    u64 start_time;
} __pai;

/* The pre-5.14 name of __state, as a flavor. */
struct task_struct___old {
    long state;
} __pai;

enum bpf_cmd { BPF_MAP_CREATE, BPF_PROG_LOAD = 5, BPF_NO_SUCH_CMD = 1000 };
enum bpf_map_type { BPF_MAP_TYPE_HASH = 1, BPF_MAP_TYPE_RINGBUF = 27 };

struct plumb_no_such_kernel_struct { int x; };

SEC("raw_tp/core_kernel")
int core_kernel(u64 *out)
{
    struct task_struct *t = (void *)out[50];
    out[0] = t->pid;
    out[1] = t->tgid;
    out[2] = t->comm[1];
    out[3] = t->mm->arg_start;
    out[4] = t->real_parent->pid;
    out[5] = t->flags;
    out[6] = t->start_time;
    out[7] = (u64)t->children.next;
    if (field_exists(t->__state)) {
        out[8] = t->__state;
    } else {
        struct task_struct___old *o = (void *)t;
        out[8] = o->state;
    }
    if (field_exists(t->mm->no_such_mm_field))
        out[9] = t->mm->no_such_mm_field;
    out[10] = field_size(t->comm);
    out[11] = type_size(struct task_struct);
    out[12] = type_id_target(struct task_struct);
    out[13] = type_exists(struct plumb_no_such_kernel_struct);
    out[14] = type_matches(struct list_head);
    out[15] = enum_value(enum bpf_cmd, BPF_PROG_LOAD);
    out[16] = enum_exists(enum bpf_cmd, BPF_NO_SUCH_CMD);
    out[17] = enum_value(enum bpf_map_type, BPF_MAP_TYPE_RINGBUF);
    out[18] = field_info(t->pid, CORE_SIGNED);
    out[19] = type_size(struct mm_struct);
    return 0;
}

char LICENSE[] SEC("license") = "GPL";
