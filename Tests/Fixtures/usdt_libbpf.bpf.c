/* Programs written with libbpf's <bpf/usdt.bpf.h>: BPF_USDT() reads the arguments through
 * bpf_usdt_arg(), which looks the site's argument specs up in __bpf_usdt_specs by the BPF
 * cookie. `plumb object run --attach PROG=usdt:...` fills that map and sets the cookies.
 * Each program stores the arguments of its last hit in `seen` (slots below) and counts hits. */
/* bpf_tracing.h needs the target (PT_REGS_IP); the object is for x86-64 user space. */
#define __TARGET_ARCH_x86
#include <stdbool.h>
#include <linux/bpf.h>
#include <linux/ptrace.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>
#include <bpf/usdt.bpf.h>

enum { REGS_BASE = 0, MANY_BASE = 8, ARG_CNT_REGS = 20, ARG_CNT_MANY = 21, HITS = 22, SLOTS = 24 };

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, SLOTS);
	__type(key, __u32);
	__type(value, __s64);
} seen SEC(".maps");

static __always_inline void put(__u32 slot, long v)
{
	__s64 *p = bpf_map_lookup_elem(&seen, &slot);

	if (p)
		*p = v;
}

static __always_inline void count(void)
{
	__u32 slot = HITS;
	__s64 *p = bpf_map_lookup_elem(&seen, &slot);

	if (p)
		__sync_fetch_and_add(p, 1);
}

/* plumb:regs: 1@%ah 1@%al 2@%ax -4@%r14d -2@%r14w 1@%r14b 8@%rax */
SEC("usdt")
int BPF_USDT(on_regs, long ah, long al, long ax, long r14d, long r14w, long r14b, long rax)
{
	put(REGS_BASE + 0, ah);
	put(REGS_BASE + 1, al);
	put(REGS_BASE + 2, ax);
	put(REGS_BASE + 3, r14d);
	put(REGS_BASE + 4, r14w);
	put(REGS_BASE + 5, r14b);
	put(REGS_BASE + 6, rax);
	put(ARG_CNT_REGS, bpf_usdt_arg_cnt(ctx));
	count();
	return 0;
}

/* plumb:many: twelve 8-byte registers, a .. a + 11 */
SEC("usdt")
int BPF_USDT(on_many, long a0, long a1, long a2, long a3, long a4, long a5, long a6, long a7,
	     long a8, long a9, long a10, long a11)
{
	put(MANY_BASE + 0, a0);
	put(MANY_BASE + 1, a1);
	put(MANY_BASE + 2, a2);
	put(MANY_BASE + 3, a3);
	put(MANY_BASE + 4, a4);
	put(MANY_BASE + 5, a5);
	put(MANY_BASE + 6, a6);
	put(MANY_BASE + 7, a7);
	put(MANY_BASE + 8, a8);
	put(MANY_BASE + 9, a9);
	put(MANY_BASE + 10, a10);
	put(MANY_BASE + 11, a11);
	put(ARG_CNT_MANY, bpf_usdt_arg_cnt(ctx));
	return 0;
}

char LICENSE[] SEC("license") = "GPL";
