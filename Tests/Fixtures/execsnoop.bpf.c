/* execsnoop, Plumb's demo: every exec on the machine as a typed ring-buffer event. A BTF-typed
 * tracepoint (tp_btf) hands the program the kernel's own task_struct and linux_binprm; the
 * fields it reads are declared here with preserve_access_index, so CO-RE relocates them to
 * this kernel's layout at load time. No vmlinux.h, no kernel headers beyond the UAPI. */
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

#define __pai __attribute__((preserve_access_index))

struct kuid { __u32 val; };
struct cred { struct kuid uid; } __pai;
struct task_struct {
	int pid;
	int tgid;
	struct task_struct *real_parent;
	const struct cred *cred;
	char comm[16];
} __pai;
struct linux_binprm { const char *filename; } __pai;

struct exec_event {
	__u32 pid;
	__u32 ppid;
	__u32 uid;
	char comm[16];
	char filename[64];
};

/* Puts struct exec_event into BTF, so `plumb object run` prints records typed. */
struct exec_event *unused_exec_event __attribute__((unused));

struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 1 << 18);
} events SEC(".maps");

/* Execs seen, and events dropped because the ring was full: drops are counted, never silent. */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 2);
	__type(key, __u32);
	__type(value, __u64);
} stats SEC(".maps");

static __always_inline void bump(__u32 key)
{
	__u64 *v = bpf_map_lookup_elem(&stats, &key);
	if (v)
		__sync_fetch_and_add(v, 1);
}

SEC("tp_btf/sched_process_exec")
int handle_exec(__u64 *ctx)
{
	struct task_struct *task = (struct task_struct *)ctx[0];
	struct linux_binprm *bprm = (struct linux_binprm *)ctx[2];
	struct exec_event *e;

	bump(0);
	e = bpf_ringbuf_reserve(&events, sizeof(*e), 0);
	if (!e) {
		bump(1);
		return 0;
	}
	e->pid = task->tgid;
	e->ppid = task->real_parent->tgid;
	e->uid = task->cred->uid.val;
	__builtin_memcpy(e->comm, task->comm, sizeof(e->comm));
	bpf_probe_read_kernel_str(e->filename, sizeof(e->filename), bprm->filename);
	bpf_ringbuf_submit(e, 0);
	return 0;
}

char LICENSE[] SEC("license") = "GPL";
