#include "cbpfsys.h"
#include <stddef.h>
#include <sys/ioctl.h>
#include <sys/syscall.h>
#include <unistd.h>
#include <linux/bpf.h>

/* Our attr structs must agree with the system's UAPI wherever both define a field. */
#define SAME(ours, field, theirs) \
    _Static_assert(offsetof(struct ours, field) == offsetof(theirs, field), #ours "." #field)
SAME(cbpf_map_create_attr, map_extra, union bpf_attr);
SAME(cbpf_map_create_attr, btf_vmlinux_value_type_id, union bpf_attr);
SAME(cbpf_map_elem_attr, flags, union bpf_attr);
_Static_assert(offsetof(struct cbpf_map_batch_attr, elem_flags) == offsetof(union bpf_attr, batch.elem_flags), "batch.elem_flags");
_Static_assert(offsetof(struct cbpf_map_batch_attr, flags) == offsetof(union bpf_attr, batch.flags), "batch.flags");
SAME(cbpf_prog_load_attr, core_relo_rec_size, union bpf_attr);
SAME(cbpf_prog_load_attr, attach_btf_id, union bpf_attr);
SAME(cbpf_prog_load_attr, fd_array, union bpf_attr);
SAME(cbpf_obj_attr, file_flags, union bpf_attr);
SAME(cbpf_get_id_attr, open_flags, union bpf_attr);
_Static_assert(offsetof(struct cbpf_info_attr, info) == offsetof(union bpf_attr, info.info), "info.info");
_Static_assert(offsetof(struct cbpf_raw_tp_attr, prog_fd) == offsetof(union bpf_attr, raw_tracepoint.prog_fd), "raw_tp.prog_fd");
SAME(cbpf_btf_load_attr, btf_log_level, union bpf_attr);
_Static_assert(offsetof(struct cbpf_link_create_attr, perf_event_bpf_cookie) == offsetof(union bpf_attr, link_create.perf_event.bpf_cookie), "bpf_cookie");
_Static_assert(offsetof(struct cbpf_link_create_attr, tracing_cookie) == offsetof(union bpf_attr, link_create.tracing.cookie), "tracing.cookie");
_Static_assert(offsetof(struct cbpf_test_run_attr, batch_size) == offsetof(union bpf_attr, test.batch_size), "test.batch_size");
SAME(cbpf_prog_info, attach_btf_id, struct bpf_prog_info);
SAME(cbpf_prog_info, run_cnt, struct bpf_prog_info);
_Static_assert(sizeof(struct cbpf_prog_info) == sizeof(struct bpf_prog_info), "prog_info size");
SAME(cbpf_map_info, map_extra, struct bpf_map_info);
SAME(cbpf_btf_info, kernel_btf, struct bpf_btf_info);
_Static_assert(offsetof(struct cbpf_link_info, tracing.target_btf_id) == offsetof(struct bpf_link_info, tracing.target_btf_id), "link tracing");

long cbpf_bpf(int cmd, void *attr, unsigned int size) {
    return syscall(__NR_bpf, cmd, attr, size);
}

int cbpf_perf_event_open(struct perf_event_attr *attr, pid_t pid, int cpu, int group_fd, unsigned long flags) {
    return (int)syscall(__NR_perf_event_open, attr, pid, cpu, group_fd, flags);
}

int cbpf_perf_event_enable(int fd) { return ioctl(fd, PERF_EVENT_IOC_ENABLE, 0); }
int cbpf_perf_event_disable(int fd) { return ioctl(fd, PERF_EVENT_IOC_DISABLE, 0); }
int cbpf_perf_event_set_bpf(int fd, int prog_fd) { return ioctl(fd, PERF_EVENT_IOC_SET_BPF, prog_fd); }
int cbpf_perf_event_id(int fd, uint64_t *id) { return ioctl(fd, PERF_EVENT_IOC_ID, id); }
unsigned int cbpf_perf_event_attr_size(void) { return (unsigned int)sizeof(struct perf_event_attr); }
