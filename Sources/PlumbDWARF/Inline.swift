import PlumbELF

/// One inlined call covering an address: the callee whose code is there, and where its caller called it.
public struct DWARFInlineFrame: Sendable, Equatable {
    /// The inlined function's name (DW_AT_name through its abstract origin).
    public var function: String
    /// Its mangled name when the language has one (C++), for demangled display.
    public var linkageName: String?
    /// Where this inlined copy's code begins (DW_AT_entry_pc, else its lowest address).
    public var entry: UInt64
    /// The call site in the caller (DW_AT_call_file / DW_AT_call_line), when recorded.
    public var callFile: String?
    public var callLine: Int?
}

extension DWARF {
    private static let atCallFile: UInt16 = 0x58, atCallLine: UInt16 = 0x59

    /// The inlined calls whose code covers `address`, innermost first; empty when the address is
    /// in no inlined copy (or in no function). The function containing them is `function(containing:)`.
    public func inlinedFrames(at address: UInt64) throws(DWARFError) -> [DWARFInlineFrame] {
        guard let f = try function(containing: address), let d = try die(at: f.die) else { return [] }
        var out: [DWARFInlineFrame] = []
        try walkInlined(d, address: address, depth: 0, into: &out)
        return out.reversed()
    }

    private func walkInlined(_ scope: DIE, address: UInt64, depth: Int, into out: inout [DWARFInlineFrame]) throws(DWARFError) {
        guard depth < 64 else { throw .tooDeep(what: "inlined scopes", limit: 64) }
        for c in try children(of: scope) {
            switch c.tag {
            case DW.TAG.lexicalBlock:
                let rs = try ranges(of: c)
                if rs.isEmpty || rs.contains(where: { $0.contains(address) }) {
                    try walkInlined(c, address: address, depth: depth + 1, into: &out)
                }
            case DW.TAG.inlinedSubroutine:
                let rs = try ranges(of: c)
                guard rs.contains(where: { $0.contains(address) }) else { continue }
                let chain = try originChain(c)
                let name = chain.lazy.compactMap { self.string($0.value(DW.AT.name), unit: $0.unit) }.first ?? "??"
                let linkage = chain.lazy.compactMap {
                    self.string($0.value(DW.AT.linkageName), unit: $0.unit) ?? self.string($0.value(DW.AT.mipsLinkageName), unit: $0.unit)
                }.first
                var entry = rs.map(\.lowerBound).min() ?? address
                if let e = c.value(DW.AT.entryPC) {
                    if let a = self.address(e, unit: c.unit) { entry = a }
                    else if let off = constant(e), let base = rs.first?.lowerBound { entry = base &+ off }
                }
                var file: String? = nil
                if let idx = constant(c.value(DWARF.atCallFile)), let table = try usableLineTable(unit: c.unit),
                   let i = Int(exactly: idx), i >= 0, i < table.files.count {
                    file = table.files[i]
                }
                let line = constant(c.value(DWARF.atCallLine)).flatMap { Int(exactly: $0) }
                out.append(DWARFInlineFrame(function: name, linkageName: linkage, entry: entry, callFile: file, callLine: line))
                try walkInlined(c, address: address, depth: depth + 1, into: &out)
            default:
                break
            }
        }
    }
}
