/* A program the verifier must refuse: the map value is used without the NULL check.
 * Loading it shows the verifier's log and the source line it stopped at. */
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 16);
	__type(key, __u32);
	__type(value, __u64);
} seen SEC(".maps");

SEC("tracepoint/syscalls/sys_enter_getpid")
int unchecked(void *ctx)
{
	__u32 key = 1;
	__u64 *v = bpf_map_lookup_elem(&seen, &key);
	*v += 1; /* no NULL check */
	return 0;
}

char LICENSE[] SEC("license") = "GPL";
