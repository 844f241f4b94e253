import PlumbELF

/// A cursor over one section's bytes. Every read is bounds-checked and throws a typed error
/// naming the section and offset, so hostile input cannot crash the reader.
struct Cursor {
    let data: ByteView
    let section: String
    var offset: Int

    init(_ data: ByteView, section: String, offset: Int = 0) {
        self.data = data; self.section = section; self.offset = offset
    }

    var atEnd: Bool { offset >= data.count }
    var remaining: Int { max(0, data.count - offset) }

    @inline(__always) func fail(_ what: String) -> DWARFError {
        .truncated(section: section, offset: offset, what: what)
    }

    @inline(__always) mutating func u8() throws(DWARFError) -> UInt8 {
        guard let v = data.u8(offset) else { throw fail("byte") }
        offset += 1
        return v
    }
    @inline(__always) mutating func u16() throws(DWARFError) -> UInt16 {
        guard let v = data.u16(offset) else { throw fail("2-byte value") }
        offset += 2
        return v
    }
    mutating func u24() throws(DWARFError) -> UInt32 {
        guard data.contains(offset, 3), let a = data.u8(offset), let b = data.u8(offset + 1), let c = data.u8(offset + 2) else {
            throw fail("3-byte value")
        }
        offset += 3
        return data.order == .little
            ? UInt32(a) | UInt32(b) << 8 | UInt32(c) << 16
            : UInt32(a) << 16 | UInt32(b) << 8 | UInt32(c)
    }
    @inline(__always) mutating func u32() throws(DWARFError) -> UInt32 {
        guard let v = data.u32(offset) else { throw fail("4-byte value") }
        offset += 4
        return v
    }
    @inline(__always) mutating func u64() throws(DWARFError) -> UInt64 {
        guard let v = data.u64(offset) else { throw fail("8-byte value") }
        offset += 8
        return v
    }
    /// An unsigned value of 1, 2, 4 or 8 bytes (addresses, offsets).
    mutating func unsigned(size: Int) throws(DWARFError) -> UInt64 {
        switch size {
        case 1: return UInt64(try u8())
        case 2: return UInt64(try u16())
        case 3: return UInt64(try u24())
        case 4: return UInt64(try u32())
        case 8: return try u64()
        default: throw DWARFError.malformed(section: section, offset: offset, reason: "unsupported value size \(size)")
        }
    }
    @inline(__always) mutating func uleb() throws(DWARFError) -> UInt64 {
        var result: UInt64 = 0
        var shift: UInt64 = 0
        while true {
            guard let b = data.u8(offset) else { throw fail("LEB128 value") }
            offset += 1
            // Bits past 64 are dropped, as readelf does; very long encodings still terminate.
            if shift < 64 { result |= UInt64(b & 0x7f) << shift }
            shift += 7
            if b & 0x80 == 0 { return result }
        }
    }
    mutating func sleb() throws(DWARFError) -> Int64 {
        var result: Int64 = 0
        var shift: Int64 = 0
        var b: UInt8 = 0
        repeat {
            guard let v = data.u8(offset) else { throw fail("LEB128 value") }
            b = v
            offset += 1
            if shift < 64 { result |= Int64(b & 0x7f) << shift }
            shift += 7
        } while b & 0x80 != 0
        if shift < 64 && b & 0x40 != 0 { result |= -(Int64(1) << shift) }
        return result
    }
    mutating func skip(_ n: Int) throws(DWARFError) {
        guard n >= 0, data.contains(offset, n) else { throw fail("\(n) bytes") }
        offset += n
    }
    mutating func skip(_ n: UInt64) throws(DWARFError) {
        guard let m = Int(exactly: n) else { throw fail("\(n) bytes") }
        try skip(m)
    }
    /// A sub-view of `n` bytes at the cursor, which moves past them.
    mutating func bytes(_ n: UInt64) throws(DWARFError) -> ByteView {
        guard let m = Int(exactly: n), let v = data.slice(offset, m) else { throw fail("block of \(n) bytes") }
        offset += m
        return v
    }
    mutating func cString() throws(DWARFError) -> String {
        guard let s = data.cString(at: offset) else { throw fail("NUL-terminated string") }
        offset += s.utf8.count + 1
        return s
    }
    /// Skips a NUL-terminated string without building it.
    mutating func skipCString() throws(DWARFError) {
        guard offset >= 0, offset < data.count else { throw fail("NUL-terminated string") }
        var o = offset
        while true {
            guard let b = data.u8(o) else { throw fail("NUL-terminated string") }
            o += 1
            if b == 0 { break }
        }
        offset = o
    }
    /// A unit length: 32-bit, or 0xffffffff then 64-bit. Returns (length, offset size).
    mutating func initialLength() throws(DWARFError) -> (UInt64, Int) {
        let l = try u32()
        if l == 0xffff_ffff { return (try u64(), 8) }
        if l >= 0xffff_fff0 {
            throw DWARFError.malformed(section: section, offset: offset - 4, reason: "reserved unit length 0x\(String(l, radix: 16))")
        }
        return (UInt64(l), 4)
    }
}

extension ByteView {
    /// A C string at a 64-bit offset (nil when outside).
    func string(at offset: UInt64) -> String? {
        guard let o = Int(exactly: offset) else { return nil }
        return cString(at: o)
    }
}
