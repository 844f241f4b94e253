/* One program per attach kind, each counting its hits from the target thread into a slot of
 * `hits`: loaded from ELF and attached by section name (libbpf's conventions) in the kernel
 * tests. The uprobe on a test binary has no target in its section: the test names one. */
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

enum slot { TRACEPOINT, RAW_TP, TP_BTF, UPROBE_LIBC, URETPROBE_LIBC, UPROBE_BINARY, PERF_EVENT, SLOTS };

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, SLOTS);
	__type(key, __u32);
	__type(value, __u64);
} hits SEC(".maps");

/* A thread id: tests in one process run concurrently, so they filter on their own thread. */
const volatile __u32 target_tid = 0;

static __always_inline int count(enum slot s)
{
	__u32 key = s;
	__u64 *v;

	if ((__u32)bpf_get_current_pid_tgid() != target_tid)
		return 0;
	v = bpf_map_lookup_elem(&hits, &key);
	if (v)
		__sync_fetch_and_add(v, 1);
	return 0;
}

SEC("tracepoint/syscalls/sys_enter_getppid")
int on_tracepoint(void *ctx) { return count(TRACEPOINT); }

/* raw_tp/sys_enter sees every syscall: count only getppid (110 on x86-64). */
SEC("raw_tp/sys_enter")
int on_raw_tp(__u64 *ctx) { return ctx[1] == 110 ? count(RAW_TP) : 0; }

SEC("tp_btf/sys_enter")
int on_tp_btf(__u64 *ctx) { return ctx[1] == 110 ? count(TP_BTF) : 0; }

SEC("uprobe/libc.so.6:getppid")
int on_uprobe_libc(void *ctx) { return count(UPROBE_LIBC); }

SEC("uretprobe/libc.so.6:getppid")
int on_uretprobe_libc(void *ctx) { return count(URETPROBE_LIBC); }

SEC("uprobe")
int on_uprobe_binary(void *ctx) { return count(UPROBE_BINARY); }

SEC("perf_event")
int on_perf_event(void *ctx) { return count(PERF_EVENT); }

char LICENSE[] SEC("license") = "GPL";
