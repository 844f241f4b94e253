/* Programs whose sections name no target (libbpf's bare SEC("uprobe"), SEC("uretprobe"),
 * SEC("usdt")): `plumb object run --attach PROG=uprobe:BINARY:FUNC` names one. With
 * `-c CMD --pid-global target_pid` the command's pid is written into target_pid before load:
 * slot HIT_MATCHED counts only calls from that process, so it stays 0 when the global was not
 * set. Each call also sends a record whose kind is a C enum (`gen swift` makes it a Swift type). */
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

enum hit_kind { HIT_ENTRY, HIT_RETURN, HIT_USDT, HIT_NAMED, HIT_MATCHED, HIT_KINDS };

struct hit {
	__u32 pid;
	enum hit_kind kind;
	char comm[16];
};

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, HIT_KINDS);
	__type(key, __u32);
	__type(value, __u64);
} hits SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 4096 * 4);
} events SEC(".maps");

const volatile __u32 target_pid = 0;
/* Names the record type for `gen swift` and `--record-type events=hit`. */
struct hit *unused_hit __attribute__((unused));

static __always_inline void bump(enum hit_kind kind)
{
	__u32 key = kind;
	__u64 *v = bpf_map_lookup_elem(&hits, &key);

	if (v)
		__sync_fetch_and_add(v, 1);
}

static __always_inline int hit(enum hit_kind kind)
{
	__u32 pid = bpf_get_current_pid_tgid() >> 32;
	struct hit *e;

	bump(kind);
	if (target_pid && pid == target_pid)
		bump(HIT_MATCHED);
	e = bpf_ringbuf_reserve(&events, sizeof(*e), 0);
	if (!e)
		return 0;
	e->pid = pid;
	e->kind = kind;
	bpf_get_current_comm(e->comm, sizeof(e->comm));
	bpf_ringbuf_submit(e, 0);
	return 0;
}

SEC("uprobe")
int on_entry(void *ctx) { return hit(HIT_ENTRY); }

SEC("uretprobe")
int on_return(void *ctx) { return hit(HIT_RETURN); }

SEC("usdt")
int on_usdt(void *ctx) { return hit(HIT_USDT); }

/* Names its target: --attach may move it elsewhere (the section's target is then not used). */
SEC("uprobe/libc.so.6:getppid")
int on_named(void *ctx) { return hit(HIT_NAMED); }

char LICENSE[] SEC("license") = "GPL";
