// The libbpf side of Plumb's CO-RE differential test. Opens a BPF object with a custom
// target BTF, lets libbpf perform CO-RE relocation, and prints:
//   LOG <libbpf debug line>            every libbpf message (relo decisions, patches, poisons)
//   INSNS <prog> <hex of 8-byte insns> each program's instructions after relocation
//   RESULT <errno>                     bpf_object__load's result
// Relocation happens inside bpf_object__load before any program goes to the kernel; a
// custom SEC("raw_tp/") handler's prepare-load callback dumps the relocated programs and
// cancels loading, so nothing is loaded (root is still needed for libbpf's load probes).
//
// usage: core_oracle OBJECT TARGET_BTF [PROGRAM]   (PROGRAM: relocate only that program)
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <bpf/libbpf.h>
#include <bpf/bpf.h>

static int print_fn(enum libbpf_print_level level, const char *fmt, va_list args)
{
    char buf[4096];
    (void)level;
    vsnprintf(buf, sizeof(buf), fmt, args);
    size_t n = strlen(buf);
    while (n > 0 && buf[n - 1] == '\n')
        buf[--n] = 0;
    printf("LOG %s\n", buf);
    return 0;
}

static struct bpf_object *the_obj;

static int prepare(struct bpf_program *prog, struct bpf_prog_load_opts *opts, long cookie)
{
    struct bpf_program *p;
    (void)prog; (void)opts; (void)cookie;
    bpf_object__for_each_program(p, the_obj) {
        if (!bpf_program__autoload(p))
            continue;
        const struct bpf_insn *insns = bpf_program__insns(p);
        size_t cnt = bpf_program__insn_cnt(p);
        printf("INSNS %s ", bpf_program__name(p));
        const unsigned char *b = (const unsigned char *)insns;
        for (size_t i = 0; i < cnt * sizeof(struct bpf_insn); i++)
            printf("%02x", b[i]);
        printf("\n");
    }
    fflush(stdout);
    return -ECANCELED;
}

int main(int argc, char **argv)
{
    if (argc < 3) {
        fprintf(stderr, "usage: %s OBJECT TARGET_BTF [PROGRAM]\n", argv[0]);
        return 2;
    }
    setvbuf(stdout, NULL, _IOLBF, 0);
    libbpf_set_print(print_fn);
    LIBBPF_OPTS(libbpf_prog_handler_opts, hopts, .prog_prepare_load_fn = prepare);
    if (libbpf_register_prog_handler("raw_tp/", BPF_PROG_TYPE_RAW_TRACEPOINT, 0, &hopts) < 0) {
        fprintf(stderr, "cannot register handler\n");
        return 2;
    }
    LIBBPF_OPTS(bpf_object_open_opts, oopts, .btf_custom_path = argv[2]);
    struct bpf_object *obj = bpf_object__open_file(argv[1], &oopts);
    if (!obj) {
        printf("RESULT open %d\n", -errno);
        return 1;
    }
    the_obj = obj;
    if (argc > 3) {
        struct bpf_program *p;
        bpf_object__for_each_program(p, obj)
            bpf_program__set_autoload(p, strcmp(bpf_program__name(p), argv[3]) == 0);
    }
    int err = bpf_object__load(obj);
    printf("RESULT %d\n", err);
    bpf_object__close(obj);
    return 0;
}
