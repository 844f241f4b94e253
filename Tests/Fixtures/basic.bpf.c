/* A small tracing object: maps of several kinds, global data of every section kind, and
 * programs on a tracepoint, a raw tracepoint and a uprobe. Used across the test suite. */
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

struct event {
	__u32 pid;
	__u32 kind;
	__u64 value;
	char comm[16];
};

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 1024);
	__type(key, __u32);
	__type(value, __u64);
} counts SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 4);
	__type(key, __u32);
	__type(value, __u64);
} totals SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 1 << 16);
} events SEC(".maps");

/* Puts struct event into BTF, so readers can print records typed (as libbpf tools do). */
struct event *unused_event_type __attribute__((unused));

const volatile __u32 target_pid = 0;
const volatile __u32 target_tid = 0;
__u64 hits = 0;
__u64 seen_value = 7;
char tag[8] SEC(".data.tag") = "plumb";

SEC("tracepoint/syscalls/sys_enter_getpid")
int on_getpid(void *ctx)
{
	__u64 id = bpf_get_current_pid_tgid();
	__u32 pid = id >> 32;
	__u64 one = 1, *v;

	if ((target_pid && pid != target_pid) || (target_tid && (__u32)id != target_tid))
		return 0;
	v = bpf_map_lookup_elem(&counts, &pid);
	if (v)
		__sync_fetch_and_add(v, 1);
	else
		bpf_map_update_elem(&counts, &pid, &one, BPF_NOEXIST);
	__sync_fetch_and_add(&hits, 1);

	struct event *e = bpf_ringbuf_reserve(&events, sizeof(*e), 0);
	if (!e)
		return 0;
	e->pid = pid;
	e->kind = 1;
	e->value = seen_value;
	bpf_get_current_comm(e->comm, sizeof(e->comm));
	bpf_ringbuf_submit(e, 0);
	return 0;
}

SEC("raw_tp/sys_enter")
int on_sys_enter(void *ctx)
{
	__u32 key = 0;
	__u64 *v = bpf_map_lookup_elem(&totals, &key);
	if (v)
		__sync_fetch_and_add(v, 1);
	return 0;
}

char LICENSE[] SEC("license") = "GPL";
