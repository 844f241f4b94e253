/* libbpf side of `plumb btf show task_struct`: parse vmlinux BTF, find the type and print
 * it (and what it needs) as C with btf_dump. */
#include <bpf/btf.h>
#include <stdarg.h>
#include <stdio.h>

static void print_fn(void *ctx, const char *fmt, va_list args)
{
	vprintf(fmt, args);
}

int main(int argc, char **argv)
{
	const char *name = argc > 1 ? argv[1] : "task_struct";
	struct btf *btf = btf__parse("/sys/kernel/btf/vmlinux", NULL);
	if (!btf) { perror("btf__parse"); return 1; }
	int id = btf__find_by_name_kind(btf, name, BTF_KIND_STRUCT);
	if (id <= 0) { fprintf(stderr, "%s not found\n", name); return 1; }
	struct btf_dump *d = btf_dump__new(btf, print_fn, NULL, NULL);
	if (!d) { perror("btf_dump__new"); return 1; }
	btf_dump__dump_type(d, id);
	btf_dump__free(d);
	btf__free(btf);
	return 0;
}
