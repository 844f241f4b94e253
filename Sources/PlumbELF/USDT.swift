// USDT (SystemTap SDT) probes: the `.note.stapsdt` notes that <sys/sdt.h> leaves in executables
// and shared libraries, and their x86-64 argument specs. Pure: nothing here touches the kernel.
//
// Each note (owner "stapsdt", type 3) describes one probe site:
//   pc, base, semaphore   three addresses, each the size of the ELF class's address
//   provider\0 name\0 args\0
// `base` is the address `.stapsdt.base` had at link time; prelink moves sections without
// rewriting notes, so every recorded address is off by (.stapsdt.base now - base).

/// One USDT probe site of a binary.
public struct USDTProbe: Sendable, Equatable, CustomStringConvertible {
    public var provider: String
    public var name: String
    /// Virtual address of the site in the file, prelink-adjusted.
    public var address: UInt64
    /// The pc and base exactly as the note records them.
    public var noteAddress: UInt64
    public var noteBase: UInt64
    /// Virtual address of the semaphore (prelink-adjusted), nil when the probe has none.
    public var semaphoreAddress: UInt64?
    /// File offset of the site: where a uprobe goes.
    public var fileOffset: UInt64
    /// File offset of the semaphore: the kernel's uprobe ref_ctr_offset.
    public var semaphoreFileOffset: UInt64?
    /// The argument string as written in the note, e.g. "-4@%edi 8@8(%rbx)".
    public var argumentText: String
    /// The parsed arguments; nil when this architecture's spec syntax is not supported (only
    /// x86-64's is), in which case the probe can be attached but not its arguments read.
    public var arguments: [USDTArgument]?

    public var description: String {
        "\(provider):\(name) at 0x\(String(address, radix: 16)) (offset 0x\(String(fileOffset, radix: 16)))"
            + (semaphoreAddress.map { ", semaphore 0x\(String($0, radix: 16))" } ?? "")
            + (argumentText.isEmpty ? "" : ", args \(argumentText)")
    }
}

/// A USDT argument: how big it is and where its value lives when the probe fires.
public struct USDTArgument: Sendable, Equatable, CustomStringConvertible {
    /// Size in bytes: 1, 2, 4 or 8.
    public var size: Int
    /// A negative size in the spec ("-4@...") marks a signed value.
    public var isSigned: Bool
    public var location: USDTLocation
    /// The spec as written, e.g. "-4@-136(%rbp)".
    public var text: String

    public var description: String { text }
}

/// Where a USDT argument's value is at the probe site (x86-64 AT&T operand forms).
public enum USDTLocation: Sendable, Equatable {
    /// `$N`: the value is the constant itself.
    case constant(Int64)
    /// `%reg`: the value is in the register (of that width; `%ah` etc. carry a byte shift).
    case register(USDTRegister)
    /// `off(%reg)` / `(%reg)`: the value is in user memory at reg + offset.
    case memory(base: USDTRegister, offset: Int64)
    /// `SYM(%rip)`, `N+SYM(%rip)`, `SYM+N(%rip)` (and a bare `SYM+N`): the value is in memory at
    /// the symbol's address + offset, relocated by the load bias of the mapping.
    case global(symbol: USDTSymbol, offset: Int64)
    /// `$SYM` / `$SYM+N`: the value is the symbol's address + offset itself (non-PIC code),
    /// relocated by the load bias.
    case symbolAddress(symbol: USDTSymbol, offset: Int64)
    /// Any other memory operand: `off(%base,%index,scale)`, `off(,%index,scale)`, and non-PIC
    /// `SYM(,%index,scale)` / `SYM(%base)`: memory at [symbol address + bias] + [base] +
    /// [index * scale] + offset.
    case effectiveAddress(base: USDTRegister?, index: USDTRegister?, scale: UInt8, offset: Int64, symbol: USDTSymbol?)

    /// The symbol the operand refers to, if any (its address needs the load bias at run time).
    public var symbol: USDTSymbol? {
        switch self {
        case .global(let s, _), .symbolAddress(let s, _): s
        case .effectiveAddress(_, _, _, _, let s): s
        default: nil
        }
    }
}

/// A symbol a USDT operand names, and its virtual address in the file (nil when it is in neither
/// .symtab nor .dynsym, e.g. a stripped binary's local).
public struct USDTSymbol: Sendable, Equatable, CustomStringConvertible {
    public var name: String
    public var address: UInt64?

    public init(name: String, address: UInt64?) {
        self.name = name
        self.address = address
    }

    public var description: String { name + (address.map { "@0x" + String($0, radix: 16) } ?? " (unresolved)") }
}

/// The full x86-64 registers, in `struct pt_regs` order (arch/x86/include/asm/ptrace.h).
public enum X86Register: Int, CaseIterable, Sendable {
    case r15, r14, r13, r12, rbp, rbx, r11, r10, r9, r8, rax, rcx, rdx, rsi, rdi, origRax, rip, cs, eflags, rsp, ss

    /// Byte offset of the register in `struct pt_regs` (what a kprobe-type program's ctx points at).
    public var ptRegsOffset: Int { rawValue * 8 }
}

/// A register operand as written: the full register, how many bytes of it, and where they start.
public struct USDTRegister: Sendable, Equatable, CustomStringConvertible {
    public var register: X86Register
    /// Bytes the operand names: 8 (%rax), 4 (%eax), 2 (%ax) or 1 (%al, %ah).
    public var width: Int
    /// Byte position of the operand inside the full register: 1 for %ah %bh %ch %dh, else 0.
    public var byteShift: Int
    /// The name without the %, e.g. "r14d".
    public var name: String

    /// Offset in `struct pt_regs` to load `width` bytes from (x86-64 is little-endian, so the
    /// low bytes come first and %ah sits one byte in).
    public var ptRegsLoadOffset: Int { register.ptRegsOffset + byteShift }

    public var description: String { "%" + name }

    /// Looks a register name up (without the %). nil for names x86-64 does not have.
    public static func named(_ name: String) -> USDTRegister? {
        guard let (reg, width, shift) = x86Names[name] else { return nil }
        return USDTRegister(register: reg, width: width, byteShift: shift, name: name)
    }

    private static let x86Names: [String: (X86Register, Int, Int)] = {
        var t: [String: (X86Register, Int, Int)] = [:]
        // The eight legacy registers: rXX, eXX, XX, and the low (and for a-d, high) byte.
        let legacy: [(String, X86Register, String, String?)] = [
            ("ax", .rax, "al", "ah"), ("bx", .rbx, "bl", "bh"), ("cx", .rcx, "cl", "ch"), ("dx", .rdx, "dl", "dh"),
            ("si", .rsi, "sil", nil), ("di", .rdi, "dil", nil), ("bp", .rbp, "bpl", nil), ("sp", .rsp, "spl", nil),
        ]
        for (base, reg, low, high) in legacy {
            t["r" + base] = (reg, 8, 0)
            t["e" + base] = (reg, 4, 0)
            t[base] = (reg, 2, 0)
            t[low] = (reg, 1, 0)
            if let high { t[high] = (reg, 1, 1) }
        }
        let numbered: [X86Register] = [.r8, .r9, .r10, .r11, .r12, .r13, .r14, .r15]
        for (i, reg) in numbered.enumerated() {
            let n = "r\(i + 8)"
            t[n] = (reg, 8, 0)
            t[n + "d"] = (reg, 4, 0)
            t[n + "w"] = (reg, 2, 0)
            t[n + "b"] = (reg, 1, 0)
            t[n + "l"] = (reg, 1, 0)   // Intel's spelling of the low byte, which GAS accepts too
        }
        t["rip"] = (.rip, 8, 0)
        t["eip"] = (.rip, 4, 0)
        return t
    }()
}

/// Reading USDT notes and argument specs.
public enum USDT {
    /// The note type <sys/sdt.h> emits (version 3 of the format, addresses in the descriptor).
    public static let noteType: UInt32 = 3
    public static let noteOwner = "stapsdt"
    /// sys/sdt.h passes at most 12 arguments.
    public static let maxArguments = 12

    /// Every USDT probe site of `elf`, in note order (empty when it has no `.note.stapsdt`).
    /// Argument specs are parsed for x86-64 binaries; malformed notes or specs throw.
    public static func probes(in elf: ELFFile) throws(ELFError) -> [USDTProbe] {
        guard let section = elf.sections.first(where: { $0.name == ".note.stapsdt" && $0.type == ELFSection.SHT_NOTE }) else {
            return []
        }
        let notes = try elf.notes(in: section)
        let baseSection = elf.section(named: ".stapsdt.base")
        let x86 = elf.machine == ELFFile.EM_X86_64
        var symbols: SymbolLookup? = nil
        var out: [USDTProbe] = []
        for (i, note) in notes.enumerated() where note.name == noteOwner && note.type == noteType {
            let raw = try parseNote(note.descriptor, addressSize: 8, index: i)
            // Prelink adjustment: pc and semaphore both moved with the image by the same amount.
            var delta: UInt64 = 0
            if let baseSection, raw.base != 0 { delta = baseSection.address &- raw.base }
            let pc = raw.pc &+ delta
            let semaphore = raw.semaphore == 0 ? nil : raw.semaphore &+ delta
            let label = "\(raw.provider):\(raw.name)"
            guard let offset = fileOffset(ofVirtualAddress: pc, in: elf, executable: true) else {
                throw .badUSDTNote(index: i, reason: "\(label): pc 0x\(String(pc, radix: 16)) is in no executable PT_LOAD segment")
            }
            var semaphoreOffset: UInt64? = nil
            if let semaphore {
                guard let o = fileOffset(ofVirtualAddress: semaphore, in: elf, executable: false) else {
                    throw .badUSDTNote(index: i, reason: "\(label): semaphore 0x\(String(semaphore, radix: 16)) is in no file-backed PT_LOAD segment")
                }
                semaphoreOffset = o
            }
            var arguments: [USDTArgument]? = nil
            if x86 {
                arguments = try parseArguments(raw.arguments, probe: label) { (name) throws(ELFError) -> UInt64? in
                    if symbols == nil { symbols = try SymbolLookup(elf) }
                    return symbols?.address(of: name)
                }
            }
            out.append(USDTProbe(provider: raw.provider, name: raw.name, address: pc, noteAddress: raw.pc, noteBase: raw.base,
                                 semaphoreAddress: semaphore, fileOffset: offset, semaphoreFileOffset: semaphoreOffset,
                                 argumentText: raw.arguments, arguments: arguments))
        }
        return out
    }

    /// A note descriptor's fields, before any adjustment.
    public struct RawNote: Sendable, Equatable {
        public var pc: UInt64
        public var base: UInt64
        public var semaphore: UInt64
        public var provider: String
        public var name: String
        public var arguments: String
    }

    /// Decodes one stapsdt note descriptor; `addressSize` is 8 for ELF64, 4 for ELF32.
    public static func parseNote(_ desc: ByteView, addressSize: Int, index: Int = 0) throws(ELFError) -> RawNote {
        guard addressSize == 4 || addressSize == 8 else {
            throw .badUSDTNote(index: index, reason: "address size \(addressSize) is neither 4 nor 8")
        }
        func address(_ o: Int) -> UInt64? { addressSize == 8 ? desc.u64(o) : desc.u32(o).map(UInt64.init) }
        guard let pc = address(0), let base = address(addressSize), let semaphore = address(2 * addressSize) else {
            throw .badUSDTNote(index: index, reason: "descriptor of \(desc.count) bytes is too short for three \(addressSize)-byte addresses")
        }
        var o = 3 * addressSize
        var strings: [String] = []
        for field in ["provider", "name", "argument string"] {
            guard let s = desc.cString(at: o) else {
                // A note with no argument string at all (nothing after the name) is still readable.
                if field == "argument string" && o == desc.count { strings.append(""); break }
                throw .badUSDTNote(index: index, reason: "\(field) is missing or not NUL-terminated")
            }
            strings.append(s)
            o += s.utf8.count + 1
        }
        guard !strings[0].isEmpty, !strings[1].isEmpty else {
            throw .badUSDTNote(index: index, reason: "empty provider or probe name")
        }
        return RawNote(pc: pc, base: base, semaphore: semaphore, provider: strings[0], name: strings[1], arguments: strings[2])
    }

    /// Maps a virtual address to its file offset through the PT_LOAD segments. Only bytes backed
    /// by the file count (not a segment's zero-filled tail); `executable` asks for a PF_X one.
    /// Files without program headers fall back to their sections.
    public static func fileOffset(ofVirtualAddress addr: UInt64, in elf: ELFFile, executable: Bool) -> UInt64? {
        let loads = elf.programHeaders.filter { $0.type == ELFProgramHeader.PT_LOAD }
        for p in loads where !executable || p.flags & ELFProgramHeader.PF_X != 0 {
            let (end, overflow) = p.virtualAddress.addingReportingOverflow(p.fileSize)
            if !overflow && addr >= p.virtualAddress && addr < end {
                let (o, over) = (addr - p.virtualAddress).addingReportingOverflow(p.offset)
                return over ? nil : o
            }
        }
        guard loads.isEmpty else { return nil }
        for s in elf.sections where s.flags & ELFSection.SHF_ALLOC != 0 && s.type != ELFSection.SHT_NOBITS {
            guard !executable || s.isExecutable else { continue }
            let (end, overflow) = s.address.addingReportingOverflow(s.size)
            if !overflow && addr >= s.address && addr < end {
                let (o, over) = (addr - s.address).addingReportingOverflow(s.offset)
                return over ? nil : o
            }
        }
        return nil
    }

    // MARK: argument specs (x86-64)

    /// Parses a whole argument string ("-4@%edi 8@8(%rbx) ..."): space-separated specs, at most 12.
    /// `symbol` resolves names of `SYM(%rip)` operands to file virtual addresses (nil: unknown).
    public static func parseArguments(_ text: String, probe: String = "",
                                      symbol: (String) throws(ELFError) -> UInt64? = { _ in nil }) throws(ELFError) -> [USDTArgument] {
        let specs = text.split(whereSeparator: { $0 == " " || $0 == "\t" })
        guard specs.count <= maxArguments else {
            throw .badUSDTArgument(probe: probe, argument: text, reason: "\(specs.count) arguments; USDT probes carry at most \(maxArguments)")
        }
        var out: [USDTArgument] = []
        out.reserveCapacity(specs.count)
        for spec in specs { out.append(try parseArgument(String(spec), probe: probe, symbol: symbol)) }
        return out
    }

    /// Parses one `SIZE@OPERAND` spec (a spec without `SIZE@`, as very old sdt.h wrote, is 8 unsigned bytes).
    public static func parseArgument(_ spec: String, probe: String = "",
                                     symbol: (String) throws(ELFError) -> UInt64? = { _ in nil }) throws(ELFError) -> USDTArgument {
        var s = SpecScanner(Array(spec.utf8))
        func fail(_ reason: String) -> ELFError { .badUSDTArgument(probe: probe, argument: spec, reason: reason) }

        var size = 8, signed = false
        if let at = s.bytes.firstIndex(of: UInt8(ascii: "@")), at > 0,
           s.bytes[0..<at].allSatisfy({ $0 == UInt8(ascii: "-") || ($0 >= 0x30 && $0 <= 0x39) }) {
            signed = s.bytes[0] == UInt8(ascii: "-")
            guard let n = Int(String(decoding: s.bytes[(signed ? 1 : 0)..<at], as: UTF8.self)), [1, 2, 4, 8].contains(n) else {
                throw fail("size must be one of -8 -4 -2 -1 1 2 4 8")
            }
            size = n
            s.position = at + 1
        }
        guard !s.atEnd else { throw fail("no operand after the size") }

        let location: USDTLocation
        if s.eat("$") {
            // $N, $-N, or the address of a symbol (non-PIC code).
            if let n = try s.integer(fail) {
                location = .constant(n)
            } else if let (name, offset) = try s.symbolTerm(fail) {
                location = .symbolAddress(symbol: USDTSymbol(name: name, address: try symbol(name)), offset: offset)
            } else {
                throw fail("expected a number or a symbol after $")
            }
        } else if s.peek == UInt8(ascii: "%") {
            location = .register(try s.register(fail))
        } else {
            // Memory: [displacement](base[,index[,scale]]) or a bare symbol reference.
            var displacement: Int64 = 0
            var name: String? = nil
            if let n = try s.integer(fail) {
                displacement = n
                if s.eat("+") {   // N+SYM(%rip)
                    guard let (sym, more) = try s.symbolTerm(fail) else { throw fail("expected a symbol after '+'") }
                    name = sym
                    guard let d = checkedAdd(displacement, more) else { throw fail("displacement overflows 64 bits") }
                    displacement = d
                }
            } else if let (sym, offset) = try s.symbolTerm(fail) {
                name = sym
                displacement = offset
            }
            if s.atEnd {
                guard let name else { throw fail("a bare number is not an operand; constants are written $N") }
                location = .global(symbol: USDTSymbol(name: name, address: try symbol(name)), offset: displacement)
            } else {
                guard s.eat("(") else { throw fail("unexpected '\(s.peekText)'") }
                var base: USDTRegister? = nil
                if s.peek == UInt8(ascii: "%") { base = try s.register(fail) }
                var index: USDTRegister? = nil
                var scale: UInt8 = 1
                if s.eat(",") {
                    index = try s.register(fail)
                    if s.eat(",") {
                        guard let n = try s.integer(fail), [1, 2, 4, 8].contains(n) else { throw fail("scale must be 1, 2, 4 or 8") }
                        scale = UInt8(n)
                    }
                }
                guard s.eat(")") else { throw fail("expected ')'") }
                guard s.atEnd else { throw fail("unexpected '\(s.peekText)' after ')'") }
                let sym: USDTSymbol?
                if let name { sym = USDTSymbol(name: name, address: try symbol(name)) } else { sym = nil }
                for r in [base, index] {
                    if let r, r.width < 4 { throw fail("%\(r.name) cannot address memory: address registers are 32 or 64 bits wide") }
                }
                if index?.register == .rip { throw fail("%rip cannot be an index register") }
                if base?.register == .rip, index != nil { throw fail("%rip-relative operands take no index register") }
                if let sym, base?.register == .rip {
                    location = .global(symbol: sym, offset: displacement)
                } else if let base, index == nil, sym == nil {
                    location = .memory(base: base, offset: displacement)
                } else if base == nil && index == nil {
                    throw fail("no register between the parentheses")
                } else {
                    location = .effectiveAddress(base: base, index: index, scale: scale, offset: displacement, symbol: sym)
                }
            }
        }
        if !s.atEnd { throw fail("unexpected '\(s.peekText)'") }
        return USDTArgument(size: size, isSigned: signed, location: location, text: spec)
    }
}

private func checkedAdd(_ a: Int64, _ b: Int64) -> Int64? {
    let (r, o) = a.addingReportingOverflow(b)
    return o ? nil : r
}

/// Defined symbols by name, from .symtab then .dynsym (first definition wins).
private struct SymbolLookup {
    var table: [String: UInt64] = [:]

    init(_ elf: ELFFile) throws(ELFError) {
        for dynamic in [false, true] {
            for s in try elf.symbols(dynamic: dynamic) where s.sectionIndex != ELFSymbol.SHN_UNDEF && !s.name.isEmpty {
                guard s.type == ELFSymbol.STT_OBJECT || s.type == ELFSymbol.STT_FUNC || s.type == ELFSymbol.STT_NOTYPE
                        || s.type == ELFSymbol.STT_GNU_IFUNC else { continue }
                if table[s.name] == nil { table[s.name] = s.value }
            }
        }
    }

    func address(of name: String) -> UInt64? { table[name] }
}

/// A cursor over one spec's bytes.
private struct SpecScanner {
    let bytes: [UInt8]
    var position = 0

    init(_ bytes: [UInt8]) { self.bytes = bytes }

    var atEnd: Bool { position >= bytes.count }
    var peek: UInt8? { atEnd ? nil : bytes[position] }
    var peekText: String { String(decoding: bytes[min(position, bytes.count)...], as: UTF8.self) }

    mutating func eat(_ c: Unicode.Scalar) -> Bool {
        guard peek == UInt8(ascii: c) else { return false }
        position += 1
        return true
    }

    private static func isDigit(_ c: UInt8) -> Bool { c >= 0x30 && c <= 0x39 }
    private static func isSymbolStart(_ c: UInt8) -> Bool {
        (c >= 0x41 && c <= 0x5a) || (c >= 0x61 && c <= 0x7a) || c == UInt8(ascii: "_") || c == UInt8(ascii: ".")
    }
    private static func isSymbolChar(_ c: UInt8) -> Bool { isSymbolStart(c) || isDigit(c) }

    /// `-?(0x[hex]+|[0-9]+)`, or nil (position unchanged) when no number starts here.
    mutating func integer(_ fail: (String) -> ELFError) throws(ELFError) -> Int64? {
        let start = position
        let negative = eat("-")
        guard let c = peek, Self.isDigit(c) else { position = start; return nil }
        var radix: UInt64 = 10
        if c == UInt8(ascii: "0"), position + 1 < bytes.count, bytes[position + 1] | 0x20 == UInt8(ascii: "x") {
            radix = 16
            position += 2
        }
        var value: UInt64 = 0
        var digits = 0
        while let c = peek {
            let d: UInt64
            if Self.isDigit(c) { d = UInt64(c - 0x30) }
            else if radix == 16, (c | 0x20) >= UInt8(ascii: "a"), (c | 0x20) <= UInt8(ascii: "f") { d = UInt64((c | 0x20) - 0x61 + 10) }
            else { break }
            let (m, o1) = value.multipliedReportingOverflow(by: radix)
            let (a, o2) = m.addingReportingOverflow(d)
            guard !o1, !o2 else { throw fail("number does not fit in 64 bits") }
            value = a
            digits += 1
            position += 1
        }
        guard digits > 0 else { throw fail("hex number without digits") }
        // Constants may be written as unsigned 64-bit patterns ($0xffffffffffffffff); keep the bits.
        let bits = Int64(bitPattern: value)
        if negative {
            guard value <= UInt64(Int64.max) + 1 else { throw fail("number does not fit in 64 bits") }
            return value == UInt64(Int64.max) + 1 ? Int64.min : -bits
        }
        return bits
    }

    /// `SYM`, `SYM+N` or `SYM-N`; nil (position unchanged) when no symbol starts here.
    mutating func symbolTerm(_ fail: (String) -> ELFError) throws(ELFError) -> (String, Int64)? {
        guard let c = peek, Self.isSymbolStart(c) else { return nil }
        let start = position
        while let c = peek, Self.isSymbolChar(c) { position += 1 }
        let name = String(decoding: bytes[start..<position], as: UTF8.self)
        var offset: Int64 = 0
        if peek == UInt8(ascii: "+") || peek == UInt8(ascii: "-") {
            let negative = bytes[position] == UInt8(ascii: "-")
            position += 1
            guard let n = try integer(fail) else { throw fail("expected a number after '\(name)\(negative ? "-" : "+")'") }
            if negative {
                guard n != Int64.min else { throw fail("displacement overflows 64 bits") }
                offset = -n
            } else {
                offset = n
            }
        }
        return (name, offset)
    }

    /// `%name` for a known x86-64 register.
    mutating func register(_ fail: (String) -> ELFError) throws(ELFError) -> USDTRegister {
        guard eat("%") else { throw fail("expected a register") }
        let start = position
        while let c = peek, Self.isSymbolChar(c) { position += 1 }
        let name = String(decoding: bytes[start..<position], as: UTF8.self)
        guard let r = USDTRegister.named(name) else { throw fail("unknown x86-64 register %\(name)") }
        return r
    }
}

extension USDTProbe {
    /// "provider:name".
    public var qualifiedName: String { "\(provider):\(name)" }
}
