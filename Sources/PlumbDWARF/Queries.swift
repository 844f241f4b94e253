import PlumbELF
import PlumbBTF

/// A function parameter or local variable, with where its value lives.
public struct DWARFVariableLocation: Sendable {
    public var name: String
    /// The type's id in `DWARF.btf()`.
    public var type: TypeID
    public var isParameter: Bool
    /// Where the value lives over the scope (an expression or a location list).
    public var location: DWARFLocation
    /// DIE offset (stable key for this variable).
    public var die: Int
}

/// A function with code: where it starts and its signature in the BTF model.
public struct DWARFFunction: Sendable {
    public var name: String
    /// The compile unit (source file) that defines it.
    public var file: String
    public var lowPC: UInt64
    public var ranges: [Range<UInt64>]
    public var isExternal: Bool
    public var returnType: TypeID
    public var parameters: [DWARFVariableLocation]
    /// FUNC_PROTO with parameter names, and the FUNC that names it, in `DWARF.btf()`.
    public var prototype: TypeID
    public var function: TypeID
    /// DW_AT_frame_base (what DW_OP_fbreg offsets are relative to).
    public var frameBase: DWARFLocation
    public var die: Int
}

/// A global or static variable.
public struct DWARFGlobal: Sendable {
    public var name: String
    public var file: String
    /// Link-time address (DW_OP_addr); nil for thread-locals.
    public var address: UInt64?
    /// For thread-locals: the offset in the module's TLS block (DW_OP_form_tls_address).
    public var tlsOffset: UInt64?
    public var type: TypeID
    public var expression: [DWARFOp]
    public var die: Int
}

/// Parameters and locals visible at one address.
public struct DWARFScopeVariables: Sendable {
    public var function: String
    public var frameBase: DWARFLocation
    public struct Entry: Sendable {
        public var variable: DWARFVariableLocation
        /// The expression valid at the address; nil when optimized out there.
        public var expression: [DWARFOp]?
        /// Set when the variable belongs to an inlined copy of this function.
        public var inlinedFrom: String?
        public var isOptimizedOut: Bool { expression == nil }
    }
    public var variables: [Entry]
}

extension DWARF {
    // MARK: Functions

    /// A function by name ("malloc", or "helper@prog.c" to pick one file's static function).
    /// With several copies, an external definition wins.
    public func function(named qualified: String) throws(DWARFError) -> DWARFFunction {
        let all = try functions(named: qualified)
        if let f = all.first(where: { $0.isExternal }) ?? all.first { return f }
        // An alias the symbol table knows (strong_alias, versioned names): the function at its address.
        let (name, file) = Self.splitQualified(qualified)
        if file == nil, let addr = symbolAddress(name) {
            if let off = functionEntries[addr], let d = try die(at: off) {
                return try describeFunction(d, name: try nameThroughOrigins(off) ?? name)
            }
            // Functions split into hot and cold parts carry DW_AT_ranges, not low_pc.
            if let f = try function(containing: addr), f.lowPC == addr { return f }
        }
        throw .noSuchFunction(qualified)
    }

    /// A function symbol's address: the binary's .dynsym first (exported names are what users
    /// type, and it is small), then the other symbol tables, each read only when needed.
    func symbolAddress(_ name: String) -> UInt64? {
        var t = aliasTable ?? [:]
        defer { aliasTable = t }
        if let a = t[name] { return a }
        let sources = symbolFiles.reversed().flatMap { elf in [(elf, true), (elf, false)] }
        while aliasSourcesRead < sources.count {
            let (elf, dynamic) = sources[aliasSourcesRead]
            aliasSourcesRead += 1
            for s in (try? elf.symbols(dynamic: dynamic)) ?? []
            where (s.type == ELFSymbol.STT_FUNC || s.type == ELFSymbol.STT_GNU_IFUNC) && s.value != 0
                && s.sectionIndex != ELFSymbol.SHN_UNDEF {
                // Versioned names ("malloc@@GLIBC_2.2.5") are reachable by their base name.
                let base = s.name.split(separator: "@", maxSplits: 1).first.map(String.init) ?? s.name
                if t[base] == nil { t[base] = s.value }
            }
            if let a = t[name] { return a }
        }
        return nil
    }

    /// Every definition with code of a function name (static functions may repeat per file).
    public func functions(named qualified: String) throws(DWARFError) -> [DWARFFunction] {
        let (name, file) = Self.splitQualified(qualified)
        guard let dies = functionIndex[name] else { return [] }
        var out: [DWARFFunction] = []
        for off in dies {
            guard let d = try die(at: off) else { continue }
            if let file, !unit(d.unit, matchesFile: file) { continue }
            out.append(try describeFunction(d, name: name))
        }
        return out
    }

    /// A DIE and the DIEs it inherits from (abstract origin, specification), nearest first.
    func originChain(_ d: DIE) throws(DWARFError) -> [DIE] {
        var chain = [d]
        var cur = d
        for _ in 0..<8 {
            guard let o = reference(cur.value(DW.AT.abstractOrigin)) ?? reference(cur.value(DW.AT.specification)),
                  let next = try die(at: o) else { break }
            chain.append(next)
            cur = next
        }
        return chain
    }

    func describeFunction(_ d: DIE, name: String) throws(DWARFError) -> DWARFFunction {
        let chain = try originChain(d)
        let ranges = try self.ranges(of: d)
        // The entry: DW_AT_entry_pc, else low_pc, else the first range (gcc lists a split
        // function's hot part first; its cold part may sit at a lower address).
        var entry = ranges.first?.lowerBound ?? 0
        if let e = d.value(DW.AT.entryPC) {
            if let a = address(e, unit: d.unit) { entry = a }
            else if let off = constant(e), let base = ranges.first?.lowerBound { entry = base &+ off }
        }
        var ret: TypeID = 0
        if let typed = chain.first(where: { $0.has(DW.AT.type) }) { ret = try typeOf(typed, depth: 0) }
        let external = chain.contains { flag($0.value(DW.AT.external)) }
        var params: [DWARFVariableLocation] = []
        var varargs = false
        // Parameters come from the concrete DIE (it has the locations), else from its origin.
        var source = d
        if try !children(of: d).contains(where: { $0.tag == DW.TAG.formalParameter }) {
            source = chain.first { c in (try? children(of: c).contains { $0.tag == DW.TAG.formalParameter }) ?? false } ?? d
        }
        for c in try children(of: source) {
            if c.tag == DW.TAG.formalParameter {
                params.append(try variable(c, isParameter: true))
            } else if c.tag == DW.TAG.unspecifiedParameters {
                varargs = true
            }
        }
        // Whether the abstract DIE declared varargs, when the concrete one does not repeat it.
        if !varargs, chain.count > 1, let top = chain.last, top.offset != d.offset {
            varargs = try children(of: top).contains { $0.tag == DW.TAG.unspecifiedParameters }
        }
        var btfParams = params.map { BTFParam(name: $0.name, type: $0.type) }
        if varargs { btfParams.append(BTFParam(name: "", type: 0)) }
        let proto = addType(BTFType(kind: .functionProto, sizeOrType: ret, payload: .params(btfParams)))
        let fn = addType(BTFType(kind: .function, name: name, sizeOrType: proto,
                                 payload: .functionLinkage(external ? 1 : 0)))
        return DWARFFunction(name: name, file: units[d.unit].name, lowPC: entry,
                             ranges: ranges, isExternal: external, returnType: ret, parameters: params,
                             prototype: proto, function: fn,
                             frameBase: try location(chain.first { $0.has(DW.AT.frameBase) }?.value(DW.AT.frameBase), unit: d.unit),
                             die: d.offset)
    }

    func variable(_ v: DIE, isParameter: Bool) throws(DWARFError) -> DWARFVariableLocation {
        let (name, type) = try parameter(v, depth: 0)
        var loc = try location(v.value(DW.AT.location), unit: v.unit)
        if case .none = loc {
            // A value the compiler folded to a constant: give it as an expression that yields it.
            if let c = signedConstant(v.value(DW.AT.constValue)) { loc = .expression([.const(c), .stackValue]) }
        }
        return DWARFVariableLocation(name: name, type: type, isParameter: isParameter, location: loc, die: v.offset)
    }

    func addType(_ t: BTFType) -> TypeID {
        cachedBTF = nil
        let key = String(describing: t)
        if let id = dedup[key] { return id }
        let id = builder.add(t)
        dedup[key] = id
        return id
    }

    // MARK: Globals

    /// A global or static variable by name ("counter", or "counter@prog.c").
    public func variable(named qualified: String) throws(DWARFError) -> DWARFGlobal {
        let (name, file) = Self.splitQualified(qualified)
        var found: [DWARFGlobal] = []
        for off in variableIndex[name] ?? [] {
            guard let d = try die(at: off) else { continue }
            if let file, !unit(d.unit, matchesFile: file) { continue }
            let chain = try originChain(d)
            guard case .block(let b)? = d.value(DW.AT.location) else { continue }
            let ops = try decodeExpression(b, unit: d.unit)
            var address: UInt64?, tls: UInt64?
            if ops.contains(.tlsAddress) {
                for op in ops {
                    if case .const(let c) = op { tls = UInt64(bitPattern: c) }
                    if case .addr(let a) = op { tls = a }
                }
            } else if case .addr(let a)? = ops.first {
                address = a
            }
            var type: TypeID = 0
            if let typed = chain.first(where: { $0.has(DW.AT.type) }) { type = try typeOf(typed, depth: 0) }
            let g = DWARFGlobal(name: name, file: units[d.unit].name, address: address, tlsOffset: tls, type: type,
                                expression: ops, die: d.offset)
            if chain.contains(where: { flag($0.value(DW.AT.external)) }) { return g }
            found.append(g)
        }
        guard let g = found.first else { throw .noSuchVariable(qualified) }
        return g
    }

    // MARK: Scopes

    /// The function whose code covers `address`, if any.
    public func function(containing address: UInt64) throws(DWARFError) -> DWARFFunction? {
        let table = try functionRanges()
        // Binary search the last range starting at or below the address.
        var lo = 0, hi = table.count
        while lo < hi {
            let mid = (lo + hi) / 2
            if table[mid].range.lowerBound <= address { lo = mid + 1 } else { hi = mid }
        }
        var i = lo - 1
        // Ranges may nest or overlap (rare); look back a little.
        while i >= 0 && i >= lo - 8 {
            if table[i].range.contains(address), let d = try die(at: table[i].die) {
                return try describeFunction(d, name: table[i].name)
            }
            i -= 1
        }
        return nil
    }

    func functionRanges() throws(DWARFError) -> [(range: Range<UInt64>, die: Int, name: String)] {
        if let t = functionRangeTable { return t }
        var t: [(range: Range<UInt64>, die: Int, name: String)] = []
        for (name, dies) in functionIndex {
            for off in dies {
                guard let d = try? die(at: off), let rs = try? ranges(of: d) else { continue }
                for r in rs where !r.isEmpty { t.append((r, off, name)) }
            }
        }
        t.sort { $0.range.lowerBound < $1.range.lowerBound }
        functionRangeTable = t
        return t
    }

    /// Parameters and local variables in scope at `address`, with the location expression that
    /// holds there (nil: optimized out at this address). Inlined callees' variables are included.
    public func variables(at address: UInt64) throws(DWARFError) -> DWARFScopeVariables? {
        guard let f = try function(containing: address), let d = try die(at: f.die) else { return nil }
        var out: [DWARFScopeVariables.Entry] = []
        try collect(d, address: address, inlinedFrom: nil, depth: 0, into: &out)
        return DWARFScopeVariables(function: f.name, frameBase: f.frameBase, variables: out)
    }

    private func collect(_ scope: DIE, address: UInt64, inlinedFrom: String?, depth: Int,
                         into out: inout [DWARFScopeVariables.Entry]) throws(DWARFError) {
        guard depth < 64 else { throw .tooDeep(what: "lexical scopes", limit: 64) }
        for c in try children(of: scope) {
            switch c.tag {
            case DW.TAG.formalParameter, DW.TAG.variable:
                let v = try variable(c, isParameter: c.tag == DW.TAG.formalParameter)
                if v.name.isEmpty { continue }
                out.append(.init(variable: v, expression: v.location.expression(at: address), inlinedFrom: inlinedFrom))
            case DW.TAG.lexicalBlock:
                let rs = try ranges(of: c)
                if rs.isEmpty || rs.contains(where: { $0.contains(address) }) {
                    try collect(c, address: address, inlinedFrom: inlinedFrom, depth: depth + 1, into: &out)
                }
            case DW.TAG.inlinedSubroutine:
                if try ranges(of: c).contains(where: { $0.contains(address) }) {
                    let callee = try originChain(c).lazy.compactMap { self.string($0.value(DW.AT.name), unit: $0.unit) }.first
                    try collect(c, address: address, inlinedFrom: callee ?? "?", depth: depth + 1, into: &out)
                }
            default: break
            }
        }
    }
}
