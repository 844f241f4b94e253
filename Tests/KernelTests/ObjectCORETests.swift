// CO-RE-relocated programs read real kernel structures; the values are checked against
// what the process knows about itself and what /proc says.
import PlumbBPF
import PlumbAsm
import PlumbSys
import PlumbBTF
import PlumbELF
import Foundation
import Glibc
import Testing
import TestSupport

@Suite(.serialized) struct ObjectCORETests {
    struct Seen {
        var pid: UInt32 = 0, tgid: UInt32 = 0, parentTgid: UInt32 = 0, uid: UInt32 = 0
        var argStart: UInt64 = 0, argEnd: UInt64 = 0
        var comm: (UInt64, UInt64) = (0, 0)
        var hits: UInt64 = 0
    }

    @Test func relocatedProgramReadsTheTaskLikeProcSays() throws {
        guard TestEnv.kernelAvailable(bpfUnavailableReason()) else { return }
        try withRuntimeLeakCheck { leaks in
            let tgid = UInt32(getpid())
            let tid = UInt32(currentTID())
            let object = try Object(path: try kernelFixture("core_proc.bpfel.o"),
                                       options: LoadOptions(globals: ["target_tid": bytes(tid)]))
            leaks.track(object)
            #expect(object.relocations["on_sys_enter"]?.count == 13)
            let link = try object.program("on_sys_enter").attachTracing()
            let parent = UInt32(getppid())
            withExtendedLifetime(link) {}
            let seen = try #require(try object.map("seen_map").lookup(UInt32(0), as: Seen.self))
            #expect(seen.hits == 1)
            #expect(seen.tgid == tgid)
            #expect(seen.pid == tid)
            #expect(seen.parentTgid == parent)
            #expect(seen.uid == getuid())
            // /proc/self/stat fields 48 and 49 are arg_start and arg_end.
            let stat = try String(contentsOfFile: "/proc/self/stat", encoding: .utf8)
            let afterComm = stat[stat.range(of: ")", options: .backwards)!.upperBound...].split(separator: " ")
            // Fields after "(comm)" start at field 3.
            #expect(UInt64(afterComm[48 - 3]) == seen.argStart)
            #expect(UInt64(afterComm[49 - 3]) == seen.argEnd)
            let comm = try String(contentsOfFile: "/proc/self/task/\(tid)/comm", encoding: .utf8).trimmingCharacters(in: .newlines)
            let seenComm = withUnsafeBytes(of: seen.comm) { String(decoding: $0.prefix { $0 != 0 }, as: UTF8.self) }
            #expect(seenComm == comm)
        }
    }

    /// The tracer's path: a program built in memory with the instruction builder, its BTF made
    /// with the encoder, loaded through the same API as clang's objects.
    @Test func inMemoryObjectLoadsAttachesAndFillsAMap() throws {
        guard TestEnv.kernelAvailable(bpfUnavailableReason()) else { return }
        // Program BTF: int, u64, the function prototype and FUNC for func_info.
        var btf = BTFBuilder()
        let intID = btf.add(BTFType(kind: .int, name: "int", sizeOrType: 4, payload: .int(BTFInt(encoding: .signed, offset: 0, bits: 32))))
        let u64 = btf.add(BTFType(kind: .int, name: "unsigned long long", sizeOrType: 8, payload: .int(BTFInt(encoding: [], offset: 0, bits: 64))))
        let voidPtr = btf.add(BTFType(kind: .pointer, sizeOrType: 0))
        let proto = btf.add(BTFType(kind: .functionProto, sizeOrType: intID, payload: .params([BTFParam(name: "ctx", type: voidPtr)])))
        let fn = btf.add(BTFType(kind: .function, name: "count_getpid", sizeOrType: proto, payload: .functionLinkage(1)))
        let programBTF = try BTF(bytes: Bytes(btf.encode()))

        var b = ProgramBuilder()
        let done = b.newLabel("done")
        b.emit(.store(.r10, offset: -4, imm: 0, size: .word))            // key = 0
        b.emit(.mov64(.r2, .r10))
        b.emit(.add64(.r2, -4))
        b.emit(.loadMapFD(.r1, fd: 0))                               // relocated to the map
        b.emit(.call(helper: 1))                                     // bpf_map_lookup_elem
        b.jump(.jeq, .r0, imm: 0, to: done)
        b.emit(.mov64(.r1, 1))
        b.emit(.atomic(.add, .r0, offset: 0, .r1, size: .doubleWord))
        b.bind(done)
        b.emit(.mov64(.r0, 0))
        b.emit(.exit())
        let insns = try b.finish()
        let mapLoad = try #require(insns.firstIndex { $0.isWide })
        var program = ProgramSpec(name: "count_getpid", kind: try #require(ProgramKind(section: "tracepoint/syscalls/sys_enter_getpid")),
                                  instructions: insns, references: [mapLoad: .map("hits")])
        program.functionInfo = [FunctionInfo(slot: 0, type: fn)]
        let spec = ObjectSpec(name: "inmemory", maps: [MapSpec(name: "hits", type: .array, keySize: 4, valueSize: 8, maxEntries: 1, valueType: u64)],
                              programs: [program], btf: programBTF)
        try withRuntimeLeakCheck { leaks in
            let object = try spec.load()
            leaks.track(object)
            #expect(object.btf != nil, "the kernel took the encoded BTF")
            let link = try #require(try object.attach("count_getpid"))
            let before = try object.map("hits").lookup(UInt32(0), as: UInt64.self) ?? 0
            for _ in 0..<17 { _ = Glibc.getpid() }
            withExtendedLifetime(link) {}
            let after = try object.map("hits").lookup(UInt32(0), as: UInt64.self) ?? 0
            #expect(after - before >= 17)
        }
    }
}
