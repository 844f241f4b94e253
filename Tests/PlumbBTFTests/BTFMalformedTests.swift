import Foundation
import Testing
@testable import PlumbBTF
import PlumbELF
import TestSupport


/// Everything a consumer may do with parsed BTF; must throw or succeed, never crash or hang.
func exerciseBTF(_ bytes: [UInt8]) {
    guard let btf = try? BTF(bytes: Bytes(bytes)) else { return }
    var out = ""
    try? btf.rawDump(into: &out)
    for id in btf.ids {
        _ = try? btf.type(id)
        _ = try? btf.size(of: id)
        _ = try? btf.alignment(of: id)
        _ = try? btf.resolve(id)
        _ = btf.cTypeName(id)
        if btf.kind(of: id).isComposite { _ = try? btf.memberNames(id) }
    }
    _ = try? btf.encode()
    _ = try? btf.cDump()
    _ = btf.firstID(named: "task_struct")
    _ = btf.ids(named: "int")
}

@Suite struct BTFMalformedTests {
    func header(typeLen: UInt32, strLen: UInt32, hdrLen: UInt32 = 24) -> [UInt8] {
        var h: [UInt8] = [0x9f, 0xeb, 1, 0]
        for v in [hdrLen, 0, typeLen, typeLen, strLen] { withUnsafeBytes(of: v.littleEndian) { h += $0 } }
        h += [UInt8](repeating: 0, count: Int(hdrLen) - 24)
        return h
    }
    func words(_ ws: [UInt32]) -> [UInt8] { ws.flatMap { w in withUnsafeBytes(of: w.littleEndian) { Array($0) } } }

    @Test func typedErrorsForBrokenHeaders() {
        #expect(throws: BTFError.tooShort(3)) { try BTF(bytes: Bytes([0x9f, 0xeb, 1])) }
        #expect(throws: BTFError.badMagic(0x1234)) { try BTF(bytes: Bytes([0x34, 0x12] + [UInt8](repeating: 0, count: 30))) }
        var v2 = header(typeLen: 0, strLen: 1) + [0]
        v2[2] = 2
        #expect(throws: BTFError.badVersion(2)) { try BTF(bytes: Bytes(v2)) }
        #expect(throws: BTFError.self) { try BTF(bytes: Bytes(header(typeLen: 100, strLen: 1) + [0])) }
        var longHeader = header(typeLen: 0, strLen: 1) + [0]
        longHeader[5] = 0x10 // hdr_len 4096, past the end of the data
        #expect(throws: BTFError.self) { try BTF(bytes: Bytes(longHeader)) }
        // A string section that does not start with the empty name.
        #expect(throws: BTFError.self) { try BTF(bytes: Bytes(header(typeLen: 0, strLen: 2) + [65, 0])) }
    }

    @Test func longerHeadersAreHonoured() throws {
        // A future kernel's 32-byte header: the extra words are skipped via hdr_len.
        let int = words([1, 0x0100_0000, 4, 0x0100_0020])
        let strs: [UInt8] = [0] + Array("int".utf8) + [0]
        let bytes = header(typeLen: UInt32(int.count), strLen: UInt32(strs.count), hdrLen: 32) + int + strs
        let btf = try BTF(bytes: Bytes(bytes))
        #expect(btf.headerLength == 32)
        #expect(try btf.type(1).name == "int")
    }

    @Test func typedErrorsForBrokenTypes() throws {
        let strs: [UInt8] = [0, 65, 0]
        func blob(_ types: [UInt32]) -> Bytes {
            let t = words(types)
            return Bytes(header(typeLen: UInt32(t.count), strLen: UInt32(strs.count)) + t + strs)
        }
        // Unknown kind 31.
        #expect(throws: BTFError.unknownKind(id: 1, kind: 31, offset: 0)) { try BTF(bytes: blob([0, 31 << 24, 0])) }
        // A struct claiming 65535 members in 12 bytes.
        #expect(throws: BTFError.truncatedType(id: 1, offset: 0)) { try BTF(bytes: blob([0, 4 << 24 | 0xffff, 8])) }
        // Truncated record.
        #expect(throws: BTFError.truncatedType(id: 2, offset: 12)) { try BTF(bytes: blob([0, 2 << 24, 0, 0, 2 << 24])) }
        // Name offset past the strings.
        let badName = try BTF(bytes: blob([999, 2 << 24, 0]))
        #expect(throws: BTFError.badStringOffset(id: 1, offset: 999)) { try badName.type(1) }
        // Pointer to a type that does not exist.
        let dangling = try BTF(bytes: blob([0, 2 << 24, 77]))
        #expect(throws: BTFError.typeOutOfRange(id: 1, reference: 77)) { try dangling.type(1) }
        // typedef A -> typedef B -> A: resolving is an error, not a hang.
        let cyclic = try BTF(bytes: blob([1, 8 << 24, 2, 1, 8 << 24, 1]))
        #expect(throws: BTFError.cycle(1)) { try cyclic.resolve(1) }
        #expect(throws: BTFError.self) { try cyclic.size(of: 1) }
        #expect(throws: BTFError.self) { try cyclic.alignment(of: 1) }
        // A struct that contains itself by value.
        let selfish = try BTF(bytes: blob([1, 4 << 24 | 1, 4, 1, 1, 0]))
        #expect(throws: BTFError.self) { try selfish.alignment(of: 1) }
    }

    /// Deterministic corpus: the seed fixtures' .BTF, truncated at every 4th byte and mutated
    /// 1000 times each with a fixed seed. Parsing and every query must throw or succeed.
    @Test func mutatedCorpusNeverCrashes() throws {
        let dir = try TestEnv.fixtures()
        var rng = SplitMix(seed: 0x5eed)
        for o in TestEnv.corpusSeeds {
            let elf = try ELFFile(path: dir.appendingPathComponent(o).path)
            guard let s = elf.section(named: ".BTF") else { continue }
            let original = elf.contents(of: s).toArray()
            for cut in stride(from: 0, to: original.count, by: 4) { exerciseBTF(Array(original[..<cut])) }
            for _ in 0..<1000 {
                var m = original
                for _ in 0..<Int.random(in: 1...4, using: &rng) {
                    let i = Int.random(in: 0..<m.count, using: &rng)
                    switch Int.random(in: 0..<3, using: &rng) {
                    case 0: m[i] ^= UInt8(1 << Int.random(in: 0..<8, using: &rng))
                    case 1: m[i] = UInt8.random(in: 0...255, using: &rng)
                    default: if i + 4 <= m.count { for k in 0..<4 { m[i + k] = 0xff } }
                    }
                }
                exerciseBTF(m)
            }
        }
    }
}
