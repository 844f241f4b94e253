// DWARF-typed uprobes and user globals through the plumb CLI against
// Tests/Fixtures/tracer-user/dwarf.c: args.NAME / args->NAME, member chains through user
// pointers, typed retval, diagnostics, -lv, and var("name"[, PATH]).
import Foundation
import Testing
import TestSupport

@Suite struct TracerUserDWARFTests {
    @Test(arguments: ["dwarf", "dwarf-nopie"]) func typedArguments(_ name: String) throws {
        let bin = try TracerUserFixtures.directory() + "/" + name
        let script = """
        uprobe:\(bin):handle { printf("h %d %d %d %d %s %d %d\\n", args.weight, args->flag, args.scale, args.req->id,
                                      args.req->conn->user->name, args.req->conn->user->uid, args.req->kind); }
        uretprobe:\(bin):negate { printf("r %d\\n", retval); }
        uretprobe:\(bin):handle { printf("hr %d\\n", retval); }
        """
        let r = TestEnv.run(TestEnv.plumb, ["-e", script, "-c", bin + " 2"])
        #expect(r.status == 0, "\(r.stderr)")
        let lines = r.stdout.split(separator: "\n").map(String.init)
        #expect(lines.filter { $0.hasPrefix("h ") } == ["h 1 2 10 101 alice 1000 3", "h 2 3 10 102 alice 1000 6"], "\(r.stdout)")
        // short return value sign-extended from its DWARF type; int return of handle: id*2 - flag.
        #expect(lines.filter { $0.hasPrefix("r ") } == ["r -1", "r -2"], "\(r.stdout)")
        #expect(lines.filter { $0.hasPrefix("hr ") } == ["hr 200", "hr 201"], "\(r.stdout)")
    }

    /// Parameters after a double (xmm) and a small struct (one register) find their register.
    @Test func sysvSlots() throws {
        let bin = try TracerUserFixtures.directory() + "/dwarf"
        let r = TestEnv.run(TestEnv.plumb, ["-e", "uprobe:\(bin):mixed { printf(\"m %d %s\\n\", args.after, str(args.tag)); }", "-c", bin + " 2"])
        #expect(r.status == 0 && r.stdout.contains("m 78 alice\nm 79 alice\n"), "\(r.stdout) \(r.stderr)")
        let float = TestEnv.run(TestEnv.plumb, ["-e", "uprobe:\(bin):mixed { print(args.d); }"])
        #expect(float.status == 1 && float.stderr.contains("'d' is passed in an SSE register, which uprobes cannot read"), "\(float.stderr)")
    }

    /// Casts in a uprobe name the binary's own DWARF types.
    @Test func castsToProgramTypes() throws {
        let bin = try TracerUserFixtures.directory() + "/dwarf"
        let script = "uprobe:\(bin):handle { $r = (struct request *)arg0; printf(\"c %d %s %d\\n\", $r->id, $r->conn->user->name, ((struct conn *)$r->conn)->fd); }"
        let r = TestEnv.run(TestEnv.plumb, ["-e", script, "-c", bin + " 1"])
        #expect(r.status == 0 && r.stdout.contains("c 101 alice 9\n"), "\(r.stdout) \(r.stderr)")
    }

    @Test func diagnostics() throws {
        let dir = try TracerUserFixtures.directory()
        let member = TestEnv.run(TestEnv.plumb, ["-e", "uprobe:\(dir)/dwarf:handle { print(args.req->conn->usr); }"])
        #expect(member.status == 1 && member.stderr.contains("'struct conn' has no member named 'usr'")
                && member.stderr.contains("did you mean 'user'?"), "\(member.stderr)")
        let param = TestEnv.run(TestEnv.plumb, ["-e", "uprobe:\(dir)/dwarf:handle { print(args.wieght); }"])
        #expect(param.status == 1 && param.stderr.contains("function 'handle' has no parameter named 'wieght'")
                && param.stderr.contains("did you mean 'weight'?"), "\(param.stderr)")
        let noDebug = TestEnv.run(TestEnv.plumb, ["-e", "uprobe:\(dir)/dwarf-nodebug:handle { print(args.weight); }"])
        #expect(noDebug.status == 1 && noDebug.stderr.contains("has no DWARF debug info")
                && noDebug.stderr.contains("/usr/lib/debug/.build-id/"), "\(noDebug.stderr)")
        // Without DWARF, plain uprobes still work.
        let plain = TestEnv.run(TestEnv.plumb, ["-e", "uprobe:\(dir)/dwarf-nodebug:handle { @[arg1] = count(); }", "-c", dir + "/dwarf-nodebug 1"])
        #expect(plain.status == 0 && plain.stdout.contains("@[1]: 1"), "\(plain.stderr)")
    }

    @Test func verboseListing() throws {
        let bin = try TracerUserFixtures.directory() + "/dwarf"
        let r = TestEnv.run(TestEnv.plumb, ["-lv", "uprobe:\(bin):handle"])
        #expect(r.stdout == "uprobe:\(bin):handle\n    struct request * req\n    int weight\n    unsigned char flag\n    long int scale\n", "\(r.stdout)")
    }

    @Test(arguments: ["dwarf", "dwarf-nopie"]) func globals(_ name: String) throws {
        let bin = try TracerUserFixtures.directory() + "/" + name
        let script = """
        uprobe:\(bin):negate { printf("g %d %d %d %d %s %d\\n", var("g_rounds"), var("g_total"), var("s_port@dwarf.c"),
                                      var("g_conn").fd, var("g_conn").user->name, var("g_total", "\(bin)")); }
        """
        let r = TestEnv.run(TestEnv.plumb, ["-e", script, "-c", bin + " 2"])
        #expect(r.status == 0, "\(r.stderr)")
        #expect(r.stdout.split(separator: "\n").filter { $0.hasPrefix("g ") } == ["g 7 5 5432 42 alice 5", "g 7 25 5432 42 alice 25"], "\(r.stdout)")
    }

    /// Whole records typed by DWARF print with their member names (they used to print an empty line).
    @Test(arguments: ["dwarf", "dwarf-nopie"]) func recordsPrintWhole(_ name: String) throws {
        let bin = try TracerUserFixtures.directory() + "/" + name
        let script = """
        uprobe:\(bin):handle { print(*args.req->conn->user); @c = var("g_conn").fd; @r[args.req->id] = *args.req; }
        """
        let r = TestEnv.run(TestEnv.plumb, ["-e", script, "-c", bin + " 2"])
        #expect(r.status == 0, "\(r.stderr)")
        let lines = r.stdout.split(separator: "\n").map(String.init)
        #expect(lines.filter { $0.hasPrefix("{ .name") } == ["{ .name = \"alice\", .uid = 1000 }", "{ .name = \"alice\", .uid = 1000 }"], "\(r.stdout)")
        #expect(lines.contains { $0.hasPrefix("@r[101]: { .id = 101, .kind = 3, .conn = 0x") }, "\(r.stdout)")
        #expect(lines.contains { $0.hasPrefix("@r[102]: { .id = 102, .kind = 6, .conn = 0x") }, "\(r.stdout)")
    }

    @Test func globalsWithoutDWARFAndErrors() throws {
        let dir = try TracerUserFixtures.directory()
        let guess = TestEnv.run(TestEnv.plumb, ["-e", "uprobe:\(dir)/dwarf-nodebug:negate { @[var(\"g_total\")] = count(); }", "-c", dir + "/dwarf-nodebug 1"])
        #expect(guess.status == 0 && guess.stdout.contains("@[5]: 1"), "\(guess.stdout) \(guess.stderr)")
        #expect(guess.stderr.contains("reading it as a 8-byte unsigned integer (the type is a guess)"), "\(guess.stderr)")
        let typo = TestEnv.run(TestEnv.plumb, ["-e", "uprobe:\(dir)/dwarf:negate { print(var(\"g_totl\")); }"])
        #expect(typo.status == 1 && typo.stderr.contains("no global variable 'g_totl'") && typo.stderr.contains("did you mean 'g_total'?"), "\(typo.stderr)")
        let pie = TestEnv.run(TestEnv.plumb, ["-e", "BEGIN { print(var(\"g_total\", \"\(dir)/dwarf\")); }"])
        #expect(pie.status == 1 && pie.stderr.contains("is position-independent"), "\(pie.stderr)")
        // A non-PIE binary's globals have fixed addresses: readable from any probe (the value in this process's memory is not mapped, so just compile).
        let fixed = TestEnv.run(TestEnv.plumb, ["-d", "-e", "BEGIN { print(var(\"g_total\", \"\(dir)/dwarf-nopie\")); }"])
        #expect(fixed.status == 0, "\(fixed.stderr)")
    }
}
