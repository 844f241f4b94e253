import PlumbLang
import Testing

@Suite("Checker: functions")
struct SemaFunctionTests {
    @Test("string functions: str, buf, strncmp, strcontains")
    func strings() {
        #expect(check(#"BEGIN { @a = strcontains(comm, "sh"); @b = strncmp(comm, "bash", 4); @c = str(0, 8); printf("%r\n", buf("ab", 2)); }"#).diagnostics == "")
        #expect(failures(#"BEGIN { @a = strcontains(comm, comm); }"#).contains("error: strcontains() expects a string literal to search for"))
        #expect(failures(#"BEGIN { @a = strncmp(comm, "x", pid); }"#).contains("error: strncmp() needs a constant length"))
    }

    @Test("address helpers: ksym, usym, kaddr, uaddr, uptr, kptr, ntop, bswap")
    func addresses() {
        #expect(check(#"BEGIN { @a = ksym(0); @k = kaddr("vfs_read"); @n = ntop(2, 0x0100007f); @b = bswap((uint16)1); @p = uptr(0); }"#).diagnostics == "")
        #expect(failures(#"BEGIN { @k = kaddr("no_such_symbol"); }"#).contains("error: kernel symbol 'no_such_symbol' not found in /proc/kallsyms"))
        #expect(failures(#"BEGIN { @u = uaddr("x"); }"#).contains("error: uaddr() is only available in uprobe probes"))
        #expect(check(#"uprobe:/bin/true:main { @u = uaddr("malloc"); }"#).diagnostics == "")
        #expect(failures(#"BEGIN { @b = bswap(comm); }"#).contains("error: bswap() expects an integer argument"))
    }

    @Test("async actions are recorded in call order with their arguments' layout")
    func actions() {
        let r = check(#"BEGIN { printf("%d %s\n", 1, comm); time("%H\n"); print(@m); clear(@m); zero(@m); exit(); @m = 1; }"#)
        #expect(r.diagnostics == "")
        #expect(r.plan?.actions == [
            .printf(format: "%d %s\n", args: [Field(offset: 8, type: .integer(size: 8, signed: true)), Field(offset: 16, type: .string(size: 16))]),
            .time(format: "%H\n"), .printMap(map: "@m", top: 0, divisor: 0), .clear(map: "@m"), .zero(map: "@m"), .exit])
        #expect(r.plan?.eventsMap == "plumb_events")
    }

    @Test("watchpoints produce their target")
    func watchpoints() {
        #expect(check("watchpoint:0x1000:8:rw { } asyncwatchpoint:0x2000:4:w { }").plan?.probes.map(\.target) == [
            .watchpoint(address: 0x1000, length: 8, mode: "rw", isAsync: false),
            .watchpoint(address: 0x2000, length: 4, mode: "w", isAsync: true)])
        #expect(failures("watchpoint:0x1000:3:rw { }").contains("LENGTH 1, 2, 4 or 8"))
    }

    @Test("reg() names pt_regs registers, with a note for typos")
    func registers() {
        #expect(check(#"uprobe:/bin/true:main { @ip = reg("ip"); @sp = reg("sp"); }"#).diagnostics == "")
        #expect(failures(#"uprobe:/bin/true:main { @x = reg("ipp"); }"#).contains("note: did you mean 'ip'?"))
    }
}
