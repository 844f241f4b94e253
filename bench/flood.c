/* The trigger for bench/printer.sh: waits for one byte on stdin (the tracer is attached),
 * prints the wall-clock start time (seconds.nanoseconds), then calls getppid() CALLS times;
 * each call makes the tracer's probe emit one burst of records. */
#define _GNU_SOURCE
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>
#include <sys/syscall.h>

int main(int argc, char **argv)
{
	long calls = argc > 1 ? atol(argv[1]) : 1000;
	char go;
	if (read(0, &go, 1) != 1)
		return 1;
	struct timespec t;
	clock_gettime(CLOCK_REALTIME, &t);
	for (long i = 0; i < calls; i++)
		syscall(SYS_getppid);
	printf("%ld.%09ld\n", (long)t.tv_sec, t.tv_nsec);
	return 0;
}
