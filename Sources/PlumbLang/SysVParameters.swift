// Where the x86-64 SysV psABI puts each parameter of a C function at its entry, from the
// parameters' types (DWARF converted to BTF): which of the six integer argument registers
// (rdi rsi rdx rcx r8 r9), which stack offset above the return address, or an SSE register.
// A uprobe sees pt_regs, which holds the integer registers and rsp but not xmm0-7, so
// INTEGER-class values (scalars, and structs of up to 16 bytes made of integers and pointers)
// and stack-passed values are readable; SSE-class ones (float, double, structs holding them) are not.
//
// The classification follows the psABI §3.2.3 for what C can express: each eightbyte of an
// aggregate of at most 16 bytes is INTEGER if any integer field overlaps it, else SSE;
// larger, unaligned or long double-holding aggregates go to memory. A value that needs more
// registers of a class than are left goes wholly on the stack and later ones may still take
// registers. A function returning a memory-class struct takes its buffer's address in rdi.
import PlumbBTF

package enum SysVPlace: Equatable {
    /// In these integer argument registers (0 = rdi ... 5 = r9), one per eightbyte.
    case registers([Int])
    /// In memory at rsp + 8 + offset at the function's entry.
    case stack(offset: Int)
    /// Wholly (`partly` false) or partly in xmm registers.
    case sse(partly: Bool)
}

package struct SysVClassifier {
    package enum Class { case integer, sse }
    package let btf: BTF
    package init(btf: BTF) { self.btf = btf }
    /// Integer and SSE registers the ABI gives to arguments.
    static let integerRegisters = 6, sseRegisters = 8

    /// The eightbytes' classes of a value of type `id` passed in registers; nil when it is
    /// passed in memory; empty for a value of no size.
    package func classify(_ id: TypeID) -> [Class]? {
        guard let r = try? btf.resolve(id), let size = try? btf.size(of: r) else { return nil }
        if size == 0 { return [] }
        guard size <= 16 else { return nil }
        var classes = [Class?](repeating: nil, count: (size + 7) / 8)
        guard fill(r, at: 0, &classes, depth: 0) else { return nil }
        // An eightbyte of padding only (rare in C) is taken as INTEGER, as gcc does for
        // the register it still occupies.
        return classes.map { $0 ?? .integer }
    }

    /// Marks the eightbytes that `id` at byte `offset` overlaps; false when the value must go to memory.
    private func fill(_ id: TypeID, at offset: Int, _ classes: inout [Class?], depth: Int) -> Bool {
        guard depth < 32, let r = try? btf.resolve(id), let t = try? btf.type(r),
              let size = try? btf.size(of: r) else { return false }
        if size == 0 { return true }
        let align = (try? btf.alignment(of: r)) ?? 1
        guard align > 0, offset % align == 0 else { return false }  // packed: memory
        func mark(_ c: Class) -> Bool {
            let first = offset / 8, last = (offset + size - 1) / 8
            guard first >= 0, last < classes.count else { return false }
            for i in first...last { classes[i] = (classes[i] == .integer || c == .integer) ? .integer : .sse }
            return true
        }
        switch t.kind {
        case .int, .enum, .enum64, .pointer:
            return mark(.integer)
        case .float:
            // long double is X87 class: memory.
            return size <= 8 ? mark(.sse) : false
        case .struct, .union:
            for m in t.members {
                if m.bitfieldSize > 0 {
                    let lo = offset + Int(m.bitOffset / 8), hi = offset + Int((m.bitOffset + UInt32(m.bitfieldSize) - 1) / 8)
                    guard lo / 8 >= 0, hi / 8 < classes.count else { return false }
                    for i in (lo / 8)...(hi / 8) { classes[i] = .integer }
                    continue
                }
                guard fill(m.type, at: offset + Int(m.bitOffset / 8), &classes, depth: depth + 1) else { return false }
            }
            return true
        case .array:
            guard let a = t.arrayInfo, let es = try? btf.size(of: a.elementType), es > 0 else { return true }
            for i in 0..<Int(min(a.count, 16)) {
                guard fill(a.elementType, at: offset + i * es, &classes, depth: depth + 1) else { return false }
            }
            return true
        default:
            return false
        }
    }

    /// Each parameter's place at the entry of a function returning `returnType` (0: void).
    package func places(parameters: [TypeID], returnType: TypeID) -> [SysVPlace] {
        var nextInteger = 0, nextSSE = 0, stack = 0
        if returnType != 0, let size = try? btf.size(of: btf.resolve(returnType)), size > 0, classify(returnType) == nil {
            nextInteger = 1  // the hidden pointer to the caller's return buffer
        }
        var result: [SysVPlace] = []
        for p in parameters {
            if let classes = classify(p) {
                let ni = classes.filter { $0 == .integer }.count, ns = classes.count - ni
                if nextInteger + ni <= Self.integerRegisters && nextSSE + ns <= Self.sseRegisters {
                    if ns > 0 {
                        result.append(.sse(partly: ni > 0))
                    } else {
                        result.append(.registers(Array(nextInteger..<(nextInteger + ni))))
                    }
                    nextInteger += ni; nextSSE += ns
                    continue
                }
            }
            // Memory: each argument rounded up to eightbytes, aligned to its own alignment if larger.
            let size = (try? btf.size(of: btf.resolve(p))) ?? 8
            let align = max(8, (try? btf.alignment(of: btf.resolve(p))) ?? 8)
            stack = (stack + align - 1) / align * align
            result.append(.stack(offset: stack))
            stack += (size + 7) / 8 * 8
        }
        return result
    }
}
