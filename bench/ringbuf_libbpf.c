// Ring buffer delivery rate with libbpf: what bench/BenchRingbuf measures for Plumb.
// Loads bench/out/ringbuf.bpf.o, consumes `events` with ring_buffer__new/__poll on this
// thread while a producer thread test-runs `produce` (BPF_PROG_TEST_RUN) until N records
// have been emitted; the handler checks every sequence number. Prints one line:
//   <records/s> <records> <failed reservations> <elapsed ms>
// Usage: ringbuf_libbpf OBJECT [stream|drain] [N [BURST]]
//   stream: a producer thread test-runs `produce` (BURST records a run) while this thread
//           polls; the time is from the start until the N-th record is delivered.
//   drain:  fill the ring (test runs until it is full), then time ring_buffer__consume()
//           emptying it; repeated until N records; the time is the consumer's alone.
#define _GNU_SOURCE
#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <errno.h>
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

struct args { uint32_t count; };

static uint64_t expected, errors, received;
static int prog_fd;
static uint64_t total, burst;
static atomic_int go;

static double now(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

static int handle(void *ctx, void *data, size_t size)
{
	uint64_t seq;
	memcpy(&seq, data, sizeof(seq));
	if (seq != expected || size != 64)
		errors++;
	expected = seq + 1;
	received++;
	return 0;
}

/* Asks `produce` for `count` records; returns how many it emitted (fewer: the ring is full). */
static uint32_t run_produce(uint32_t count)
{
	struct args a = { .count = count };
	LIBBPF_OPTS(bpf_test_run_opts, opts, .ctx_in = &a, .ctx_size_in = sizeof(a));
	if (bpf_prog_test_run_opts(prog_fd, &opts)) {
		fprintf(stderr, "test run: %s\n", strerror(errno));
		exit(1);
	}
	return opts.retval;
}

static void *produce(void *unused)
{
	uint64_t emitted = 0;
	while (!atomic_load(&go))
		;
	while (emitted < total) {
		uint32_t n = run_produce((uint32_t)(total - emitted < burst ? total - emitted : burst));
		emitted += n;
		if (n == 0)
			sched_yield(); /* ring full: let the consumer run */
	}
	return NULL;
}

int main(int argc, char **argv)
{
	if (argc < 2) {
		fprintf(stderr, "usage: %s OBJECT [stream|drain] [N [BURST]]\n", argv[0]);
		return 2;
	}
	const char *mode = argc > 2 ? argv[2] : "stream";
	total = argc > 3 ? strtoull(argv[3], NULL, 10) : 10000000;
	burst = argc > 4 ? strtoull(argv[4], NULL, 10) : 4096;
	if (strcmp(mode, "stream") && strcmp(mode, "drain")) {
		fprintf(stderr, "mode must be stream or drain\n");
		return 2;
	}
	libbpf_set_print(NULL);

	struct bpf_object *obj = bpf_object__open_file(argv[1], NULL);
	if (!obj || bpf_object__load(obj)) {
		fprintf(stderr, "loading %s: %s\n", argv[1], strerror(errno));
		return 1;
	}
	prog_fd = bpf_program__fd(bpf_object__find_program_by_name(obj, "produce"));
	int events_fd = bpf_map__fd(bpf_object__find_map_by_name(obj, "events"));
	int stats_fd = bpf_map__fd(bpf_object__find_map_by_name(obj, "stats"));
	struct ring_buffer *rb = ring_buffer__new(events_fd, handle, NULL, NULL);
	if (!rb) {
		fprintf(stderr, "ring_buffer__new: %s\n", strerror(errno));
		return 1;
	}

	double elapsed = 0;
	if (!strcmp(mode, "stream")) {
		pthread_t producer;
		pthread_create(&producer, NULL, produce, NULL);
		double t0 = now();
		atomic_store(&go, 1);
		while (received < total) {
			int n = ring_buffer__poll(rb, 100);
			if (n < 0 && n != -EINTR) {
				fprintf(stderr, "ring_buffer__poll: %d\n", n);
				return 1;
			}
		}
		elapsed = now() - t0;
		pthread_join(producer, NULL);
	} else {
		while (received < total) {
			uint64_t remaining = total - received;
			while (remaining > 0) {
				uint32_t want = remaining < (1 << 20) ? remaining : (1 << 20);
				uint32_t n = run_produce(want);
				remaining -= n;
				if (n < want)
					break; /* full */
			}
			double t0 = now();
			int n = ring_buffer__consume(rb);
			elapsed += now() - t0;
			if (n < 0) {
				fprintf(stderr, "ring_buffer__consume: %d\n", n);
				return 1;
			}
		}
	}

	uint32_t key = 0;
	uint64_t drops = 0;
	bpf_map_lookup_elem(stats_fd, &key, &drops);
	ring_buffer__free(rb);
	bpf_object__close(obj);
	if (errors) {
		fprintf(stderr, "%llu records out of order or malformed\n", (unsigned long long)errors);
		return 1;
	}
	printf("%.0f %llu %llu %.1f\n", received / elapsed, (unsigned long long)received,
	       (unsigned long long)drops, elapsed * 1e3);
	return 0;
}
