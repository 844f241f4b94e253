// SPDX-License-Identifier: GPL-2.0
/* Ring buffer producer for bench/ringbuf.sh: each BPF_PROG_TEST_RUN of `produce` emits up
 * to ctx->count fixed-size records (a sequence number, then filler) into `events`, stopping
 * at the first reservation that fails because the ring is full. It returns how many it
 * emitted; the user-space producer asks again for the rest, so no record is ever lost and
 * the consumer can check that sequence numbers arrive in order with no gap. Failed
 * reservations are counted in `stats[0]` (the kernel does not count them). */
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

#define RECORD_SIZE 64

struct record {
	__u64 seq;
	__u8 fill[RECORD_SIZE - sizeof(__u64)];
};

struct args {
	__u32 count;
};

struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 16 << 20);
} events SEC(".maps");

/* stats[0]: failed reservations (ring full) */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, __u64);
} stats SEC(".maps");

/* Next sequence number; only one producer thread runs the program at a time. */
__u64 next_seq = 0;

static long emit_one(__u64 index, void *ctx)
{
	__u32 *emitted = ctx;
	struct record *r = bpf_ringbuf_reserve(&events, sizeof(*r), 0);
	if (!r) {
		__u32 key = 0;
		__u64 *drops = bpf_map_lookup_elem(&stats, &key);
		if (drops)
			__sync_fetch_and_add(drops, 1);
		return 1; /* ring full: stop, the caller retries the rest */
	}
	r->seq = next_seq++;
	__builtin_memset(r->fill, 0xab, sizeof(r->fill));
	bpf_ringbuf_submit(r, 0);
	(*emitted)++;
	return 0;
}

SEC("syscall")
int produce(struct args *ctx)
{
	__u32 emitted = 0;
	bpf_loop(ctx->count, emit_one, &emitted, 0);
	return emitted;
}

char LICENSE[] SEC("license") = "GPL";
