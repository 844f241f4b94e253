/* The object model's corpus: every common map kind (incl. map-in-map with initial values),
 * every global-data section kind, .kconfig/.ksyms externs, subprograms (static and global,
 * shared between programs, called through bpf_loop callbacks), several programs per section. */
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

struct task_struct;

struct key4 { __u32 a; };
struct val16 { __u64 x; __u64 y; };
struct lpm_key { __u32 prefixlen; __u8 addr[4]; };

struct { __uint(type, BPF_MAP_TYPE_HASH); __uint(max_entries, 64); __type(key, struct key4); __type(value, struct val16); __uint(map_flags, BPF_F_NO_PREALLOC); } m_hash SEC(".maps");
struct { __uint(type, BPF_MAP_TYPE_ARRAY); __uint(max_entries, 8); __type(key, __u32); __type(value, __u64); } m_array SEC(".maps");
struct { __uint(type, BPF_MAP_TYPE_PERCPU_HASH); __uint(max_entries, 16); __type(key, __u32); __type(value, __u64); } m_percpu_hash SEC(".maps");
struct { __uint(type, BPF_MAP_TYPE_PERCPU_ARRAY); __uint(max_entries, 4); __type(key, __u32); __type(value, __u32); } m_percpu_array SEC(".maps");
struct { __uint(type, BPF_MAP_TYPE_LRU_HASH); __uint(max_entries, 32); __type(key, __u64); __type(value, __u64); __uint(pinning, LIBBPF_PIN_BY_NAME); } m_lru SEC(".maps");
struct { __uint(type, BPF_MAP_TYPE_RINGBUF); __uint(max_entries, 4096); } m_ringbuf SEC(".maps");
struct { __uint(type, BPF_MAP_TYPE_PERF_EVENT_ARRAY); __uint(key_size, sizeof(__u32)); __uint(value_size, sizeof(__u32)); } m_perf SEC(".maps");
struct { __uint(type, BPF_MAP_TYPE_STACK_TRACE); __uint(max_entries, 128); __uint(key_size, sizeof(__u32)); __uint(value_size, 127 * sizeof(__u64)); } m_stacks SEC(".maps");
struct { __uint(type, BPF_MAP_TYPE_QUEUE); __uint(max_entries, 16); __type(value, __u32); } m_queue SEC(".maps");
struct { __uint(type, BPF_MAP_TYPE_STACK); __uint(max_entries, 16); __type(value, __u64); } m_stack SEC(".maps");
struct { __uint(type, BPF_MAP_TYPE_LPM_TRIE); __uint(max_entries, 16); __type(key, struct lpm_key); __type(value, __u32); __uint(map_flags, BPF_F_NO_PREALLOC); } m_lpm SEC(".maps");

struct inner { __uint(type, BPF_MAP_TYPE_ARRAY); __uint(max_entries, 1); __type(key, __u32); __type(value, __u32); };
struct inner inner_a SEC(".maps"), inner_b SEC(".maps");
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY_OF_MAPS);
	__uint(max_entries, 4);
	__type(key, __u32);
	__array(values, struct inner);
} m_outer SEC(".maps") = { .values = { [0] = &inner_a, [2] = &inner_b } };
struct {
	__uint(type, BPF_MAP_TYPE_HASH_OF_MAPS);
	__uint(max_entries, 4);
	__type(key, __u32);
	__array(values, struct inner);
} m_outer_hash SEC(".maps");

/* Global data of every kind. */
const volatile __u64 cfg_threshold = 1000;
const volatile char cfg_name[12] = "threshold";
__u64 counter_data = 42;
__u32 counter_bss;
static __u32 static_counter;
__u64 custom_data SEC(".data.custom") = 0x1122334455667788ULL;
const __u32 custom_ro SEC(".rodata.custom") = 7;

/* Externs. */
extern unsigned int LINUX_KERNEL_VERSION __kconfig;
extern int CONFIG_HZ __kconfig __weak;
extern void bpf_rcu_read_lock(void) __ksym;
extern void bpf_rcu_read_unlock(void) __ksym;

static __attribute__((noinline)) __u64 add_twice(__u64 a, __u64 b)
{
	return a + b + b;
}

__attribute__((noinline)) int global_helper(__u32 x)
{
	return x * 3 + 1;
}

static long loop_cb(__u64 index, void *ctx)
{
	__u64 *sum = ctx;
	*sum += index;
	return 0;
}

SEC("tracepoint/syscalls/sys_enter_getpid")
int first_prog(void *ctx)
{
	__u32 key = 0;
	__u64 *v = bpf_map_lookup_elem(&m_array, &key);
	__u64 sum = 0;

	bpf_loop(4, loop_cb, &sum, 0);
	if (v)
		*v = add_twice(*v, cfg_threshold) + sum + LINUX_KERNEL_VERSION + CONFIG_HZ;
	counter_bss += global_helper(counter_data);
	static_counter++;
	return 0;
}

SEC("tracepoint/syscalls/sys_enter_getpid")
int second_prog(void *ctx)
{
	bpf_rcu_read_lock();
	custom_data += add_twice(custom_ro, static_counter);
	bpf_rcu_read_unlock();
	bpf_printk("%s", cfg_name);
	return 0;
}

SEC("raw_tp/sys_enter")
int third_prog(void *ctx)
{
	__u32 key = 0, *inner;
	void *m = bpf_map_lookup_elem(&m_outer, &key);
	if (m) {
		inner = bpf_map_lookup_elem(m, &key);
		if (inner)
			*inner += 1;
	}
	return 0;
}

char LICENSE[] SEC("license") = "Dual BSD/GPL";
