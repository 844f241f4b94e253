/* libbpf side of bench/btf.sh: btf__parse + btf__find_by_name_kind("task_struct"), N times;
 * prints the mean milliseconds per iteration. */
#include <bpf/btf.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

static double now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

int main(int argc, char **argv)
{
	int n = argc > 1 ? atoi(argv[1]) : 50;
	const char *path = argc > 2 ? argv[2] : "/sys/kernel/btf/vmlinux";
	int id = -1;
	struct btf *btf = btf__parse(path, NULL); /* warm-up */
	btf__free(btf);
	double t0 = now_ms();
	for (int i = 0; i < n; i++) {
		btf = btf__parse(path, NULL);
		if (!btf) { perror("btf__parse"); return 1; }
		id = btf__find_by_name_kind(btf, "task_struct", BTF_KIND_STRUCT);
		btf__free(btf);
	}
	double t1 = now_ms();
	if (id <= 0) { fprintf(stderr, "task_struct not found\n"); return 1; }
	printf("%.3f\n", (t1 - t0) / n);
	return 0;
}
