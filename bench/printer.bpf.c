// SPDX-License-Identifier: GPL-2.0
/* Record flood for bench/printer.sh: every getppid() call of process `target_pid` emits
 * `burst` 48-byte records (six fields) into the `flood` ring buffer with bpf_loop, so a
 * user-space trigger calling getppid N/burst times produces N records far faster than any
 * printer drains them. The ring holds them all (no drops while the printer catches up);
 * failed reservations are counted in `drops[0]` anyway. bench/printer.bt is the same flood
 * written for bpftrace. */
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

struct flood_record {
	__u64 seq;
	__u64 ts;
	__u32 pid;
	__u32 tid;
	__u64 value;
	char comm[16];
};

struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 64 << 20);	/* 1M records of 56 bytes with headers */
} flood SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, __u64);
} drops SEC(".maps");

/* Puts the record type into BTF so `object run` prints records typed. */
struct flood_record *unused_flood_record __attribute__((unused));

const volatile __u32 target_pid = 0;
const volatile __u32 burst = 1000;
__u64 next_seq = 0;

static long emit(__u64 index, void *ctx)
{
	struct flood_record *r = bpf_ringbuf_reserve(&flood, sizeof(*r), 0);
	if (!r) {
		__u32 key = 0;
		__u64 *d = bpf_map_lookup_elem(&drops, &key);
		if (d)
			__sync_fetch_and_add(d, 1);
		return 0;
	}
	__u64 id = bpf_get_current_pid_tgid();
	r->seq = next_seq++;
	r->ts = bpf_ktime_get_ns();
	r->pid = id >> 32;
	r->tid = (__u32)id;
	r->value = index;
	bpf_get_current_comm(r->comm, sizeof(r->comm));
	bpf_ringbuf_submit(r, 0);
	return 0;
}

SEC("tracepoint/syscalls/sys_enter_getppid")
int flood_burst(void *ctx)
{
	if ((__u32)(bpf_get_current_pid_tgid() >> 32) != target_pid)
		return 0;
	bpf_loop(burst, emit, 0, 0);
	return 0;
}

char LICENSE[] SEC("license") = "GPL";
