/* CO-RE against the running kernel, checked against /proc: on getppid() from the target
 * thread, a tp_btf program reads the calling task through BTF-typed pointers (fields
 * relocated to this kernel's layout) and stores what it saw. */
#include "core_helpers.h"

struct mm_struct {
	unsigned long arg_start;
	unsigned long arg_end;
	unsigned long env_start;
} __pai;

struct kuid { u32 val; };
struct cred { struct kuid uid; struct kuid euid; } __pai;

struct task_struct {
	int pid;
	int tgid;
	struct task_struct *real_parent;
	struct mm_struct *mm;
	const struct cred *cred;
	char comm[16];
} __pai;

struct pt_regs;

struct seen {
	u32 pid, tgid, parent_tgid, uid;
	u64 arg_start, arg_end;
	char comm[16];
	u64 hits;
};

struct {
	int (*type)[2];        /* BPF_MAP_TYPE_ARRAY */
	int (*max_entries)[1];
	u32 *key;
	struct seen *value;
} seen_map SEC(".maps");

/* The calling thread (tests in one process run concurrently). */
const volatile u32 target_tid = 0;
const volatile long target_syscall = 110; /* __NR_getppid on x86-64 */

static void *(*map_lookup)(void *map, const void *key) = (void *)1;
static struct task_struct *(*current_task_btf)(void) = (void *)158;

SEC("tp_btf/sys_enter")
int on_sys_enter(u64 *ctx)
{
	long id = (long)ctx[1];
	struct task_struct *t = current_task_btf();
	u32 key = 0;
	struct seen *s;

	if (id != target_syscall || t->pid != target_tid)
		return 0;
	s = map_lookup(&seen_map, &key);
	if (!s)
		return 0;
	s->pid = t->pid;
	s->tgid = t->tgid;
	s->parent_tgid = t->real_parent->tgid;
	s->uid = t->cred->uid.val;
	s->arg_start = t->mm->arg_start;
	s->arg_end = t->mm->arg_end;
	__builtin_memcpy(s->comm, t->comm, sizeof(s->comm));
	s->hits++;
	return 0;
}

char LICENSE[] SEC("license") = "GPL";
