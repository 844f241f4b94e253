// Ordinary C for the disassembler differential test: maps, globals, helpers,
// bpf-to-bpf calls, a kfunc, atomics, sign extension, signed division, byte swaps,
// 32-bit compares. Self-contained (no kernel headers). Built with -mcpu=v1...v4; the
// parts older CPUs cannot compile are behind __BPF_CPU_VERSION__.
typedef unsigned long long u64;
typedef long long s64;
typedef unsigned int u32;
typedef int s32;
typedef unsigned short u16;
typedef signed char s8;
typedef short s16;

#define SEC(n) __attribute__((section(n), used))
#define __uint(name, val) int (*name)[val]
#define __type(name, val) __typeof__(val) *name

struct {
    __uint(type, 2); /* BPF_MAP_TYPE_ARRAY */
    __uint(max_entries, 16);
    __type(key, u32);
    __type(value, u64);
} counts SEC(".maps");

static void *(*bpf_map_lookup_elem)(void *map, const void *key) = (void *)1;
static u64 (*bpf_ktime_get_ns)(void) = (void *)5;
static long (*bpf_trace_printk)(const char *fmt, u32 size, ...) = (void *)6;
extern void *bpf_cast_to_kern_ctx(void *) __attribute__((section(".ksyms")));

u64 total;
s32 last_delta = -7;
const volatile u32 config = 3;
char name[16] = "plumb";

struct event { s8 a; s16 b; s32 c; u16 d; u32 e; u64 f; };

static __attribute__((noinline)) s64 scale(s64 v, s64 by) {
    if (by == 0) return 0;
#if __BPF_CPU_VERSION__ >= 4
    return v / by + v % by;
#else
    return (s64)((u64)v / (u64)by + (u64)v % (u64)by);
#endif
}

static __attribute__((noinline)) u32 swap_all(u32 x, u16 y, u64 z) {
    return __builtin_bswap32(x) ^ __builtin_bswap16(y) ^ (u32)(__builtin_bswap64(z) >> 7);
}

SEC("tracepoint/syscalls/sys_enter_openat")
int on_open(struct event *ev) {
    u32 key = ev->e & 15;
    u64 *slot = bpf_map_lookup_elem(&counts, &key);
    if (!slot) return 0;
    __sync_fetch_and_add(slot, 1);
#if __BPF_CPU_VERSION__ >= 3
    u64 old = __sync_fetch_and_add(&total, ev->f);
    __sync_fetch_and_or(&total, 4);
    __sync_fetch_and_and(&total, ~1ull);
    __sync_fetch_and_xor(&total, 2);
    u64 prev = __sync_lock_test_and_set(&total, old);
    __sync_val_compare_and_swap(&total, prev, 9);
#else
    __sync_fetch_and_add(&total, ev->f);
#endif
#if __BPF_CPU_VERSION__ >= 4
    s32 d = (s32)ev->c / (s32)(ev->a | 1);
    d += (s32)ev->b % 5;
#else
    s32 d = ev->c + ev->b;
#endif
    __sync_fetch_and_add(&last_delta, d);
    s64 wide = (s64)ev->a * ev->b + ev->c;
    wide = scale(wide, (s64)config - ev->f);
    u32 sw = swap_all(ev->e, ev->d, ev->f);
    for (int i = 0; i < 8; i++) {
        if ((s32)(sw >> i) < 0) wide -= i; else wide += name[i];
    }
    if ((u32)wide > 100 && (s32)wide < 1000) bpf_trace_printk(name, sizeof(name), wide);
    return (int)(wide + (s64)bpf_ktime_get_ns());
}

SEC("tc")
int classify(void *skb) {
    void *k = bpf_cast_to_kern_ctx(skb);
    u64 t = bpf_ktime_get_ns();
    switch (t & 7) {
    case 0: return 1;
    case 1: return (int)(long)k;
    case 2: return 7;
    case 3: return (int)(t >> 3);
    default: return -1;
    }
}

char LICENSE[] SEC("license") = "GPL";
