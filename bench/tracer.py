#!/usr/bin/env python3
"""Plumb's tracer beside bpftrace 0.17 on the same scripts.

For each script and each tool: time from exec to "every probe attached" (both tools print
__BPFTRACE_NOTIFY_PROBES_ATTACHED on stderr when that variable is set), peak RSS of the whole
run, and the kernel's translated instruction count of the programs the tool loaded (from
`bpftool prog show -j`, programs that appeared while it ran). Prints one line per script and
the ratios; the goals are in bench/tracer.sh.
"""
import json, math, os, resource, signal, subprocess, sys, time

SCRIPTS = {
    "syscalls": "tracepoint:syscalls:sys_enter_openat { @[comm] = count(); }",
    "sched_switch": "tracepoint:sched:sched_switch { @[args->prev_comm] = count(); }",
    "interval": "interval:ms:100 { @ticks = count(); }",
    "libc_uprobe": "uprobe:libc:malloc { @bytes = sum(arg0); }",
    "latency_hist": "tracepoint:syscalls:sys_enter_read { @start[tid] = nsecs; } "
                    "tracepoint:syscalls:sys_exit_read /@start[tid]/ { @ns = hist(nsecs - @start[tid]); delete(@start[tid]); }",
}

def programs():
    out = subprocess.run(["bpftool", "prog", "show", "-j"], capture_output=True, text=True).stdout
    return {p["id"]: p for p in json.loads(out or "[]")}

def programs_since(before):
    # bpftool 7.1 here has no pid column, so a tool's programs are the ones that appeared
    # while it ran (run the bench on an otherwise idle machine).
    return sum(p.get("bytes_xlated", 0) // 8 for i, p in programs().items() if i not in before)

def run(argv, script):
    env = dict(os.environ, __BPFTRACE_NOTIFY_PROBES_ATTACHED="1")
    loaded = programs()
    before = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    start = time.monotonic()
    # A session of its own: the SIGINT below goes to the whole group, so a tool run under strace
    # stops too (strace alone would detach and leave it running).
    p = subprocess.Popen(argv + ["-e", script], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=env, text=True,
                         start_new_session=True)
    attached = None
    for line in p.stderr:
        if "__BPFTRACE_NOTIFY_PROBES_ATTACHED" in line:
            attached = time.monotonic() - start
            break
    insns = programs_since(loaded) if attached is not None else 0
    os.killpg(p.pid, signal.SIGINT)
    try:
        p.communicate(timeout=20)
    except subprocess.TimeoutExpired:
        os.killpg(p.pid, signal.SIGKILL); p.wait()
    # ru_maxrss of children is the largest child so far; run each tool in its own process tree
    # order so the figure is this run's (bench/tracer.sh runs one measurement per python process).
    rss = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    return attached, rss, insns

def kernel_open_ms(argv, script):
    """The longest perf_event_open(2) of a run, in ms, timed by strace -T. For a uprobe script
    that is the kernel registering the uprobe (writing the breakpoint into every process that
    maps the library, after an RCU grace period): the same kernel work for both tools."""
    import re, tempfile
    with tempfile.NamedTemporaryFile("r", suffix=".strace") as log:
        attached, _, _ = run(["strace", "-f", "-T", "-e", "trace=perf_event_open", "-o", log.name] + argv, script)
        times = [float(t) for t in re.findall(r"perf_event_open\(.*<([0-9.]+)>", log.read())]
    return (max(times) * 1000 if times and attached is not None else None)

def main():
    tool = sys.argv[1:]          # e.g. [".build/release/plumb"] or ["bpftrace"]
    name = os.environ.get("SCRIPT")
    if os.environ.get("KERNEL_OPEN"):
        print(json.dumps({"script": name, "kernel_open_ms": kernel_open_ms(tool, SCRIPTS[name])}))
        return
    attached, rss, insns = run(tool, SCRIPTS[name])
    print(json.dumps({"script": name, "attach_s": attached, "rss_kb": rss, "insns": insns}))

if __name__ == "__main__":
    main()
