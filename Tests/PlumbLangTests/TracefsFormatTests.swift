import PlumbLang
import Testing

@Suite("Tracefs format files")
struct TracefsFormatTests {
    @Test("fields after the common ones, with offsets, sizes, signedness, arrays and __data_loc")
    func parse() {
        let fields = TracefsFormat.parse(execFormat)
        #expect(fields.map(\.name) == ["filename", "pid", "old_pid", "comm"])
        #expect(fields[0].isDataLoc && fields[0].offset == 8 && fields[0].size == 4)
        #expect(fields[1] == TracefsField(type: "pid_t", name: "pid", offset: 12, size: 4, signed: true, arrayLength: nil))
        #expect(fields[3].type == "char[16]" && fields[3].arrayLength == 16)
        let openat = TracefsFormat.parse(openatFormat)
        #expect(openat.first { $0.name == "filename" }?.isPointer == true)
        #expect(openat.first { $0.name == "filename" }?.type == "const char *")
        #expect(openat.first { $0.name == "flags" }?.size == 8)
    }

    @Test("malformed lines are skipped, not trusted")
    func malformed() {
        #expect(TracefsFormat.parse("field:int x;\toffset:abc;\tsize:4;\n\tfield:;offset:1;size:1;\n").isEmpty)
    }
}
