import PlumbAsm
import PlumbSys
import PlumbBTF
import PlumbELF

extension ObjectSpec {
    /// Reads a clang-compiled BPF object file.
    public init(path: String) throws(BPFError) {
        let elf: ELFFile
        do { elf = try ELFFile(path: path) } catch {
            throw .elf(path: path, error)
        }
        try self.init(elf: elf, path: path)
    }

    public init(elf: ELFFile, path: String) throws(BPFError) {
        guard elf.machine == ELFFile.EM_BPF else { throw .notBPF(path: path, machine: elf.machine) }
        self.path = path
        var base = path.split(separator: "/").last.map(String.init) ?? path
        for suffix in [".o"] where base.hasSuffix(suffix) { base.removeLast(suffix.count) }
        if base.hasSuffix(".bpf") { base.removeLast(4) }
        name = base
        order = elf.order
        var reader = ObjectReader(elf: elf, path: path, objectName: base)
        try reader.read()
        license = reader.license
        kernelVersion = reader.kernelVersion
        btf = reader.btf
        btfExt = reader.btfExt
        maps = reader.maps
        programs = reader.programs
        externs = reader.externs
    }
}

/// The one pass that turns an ELF file into an ObjectSpec.
struct ObjectReader {
    let elf: ELFFile
    let path: String
    let objectName: String
    var license = ""
    var kernelVersion: UInt32 = 0
    var btf: BTF?
    /// The BTF as clang wrote it, before the fix-ups (externs are read from it).
    var originalBTF: BTF?
    var btfExt: BTFExt?
    var maps: [MapSpec] = []
    var programs: [ProgramSpec] = []
    var externs: [ObjectSpec.Extern] = []
    var symbols: [ELFSymbol] = []
    /// Section index -> map name, for data sections (globals) that became maps.
    var dataMaps: [Int: String] = [:]
    /// BTF-defined map symbols: symbol index -> map name.
    var mapsSection: Int?
    var textSection: Int?

    init(elf: ELFFile, path: String, objectName: String) {
        self.elf = elf
        self.path = path
        self.objectName = objectName
    }

    mutating func read() throws(BPFError) {
        do { symbols = try elf.symbols() } catch { throw .elf(path: path, error) }
        if elf.section(named: ".BTF") != nil {
            let original: BTF
            do { original = try BTF(elf: elf, path: path) } catch { throw .btf(path: path, error) }
            do { btfExt = try BTFExt(elf: elf, btf: original) } catch { throw .btf(path: path, error) }
            originalBTF = original
            do { btf = try fixedUpBTF(original) } catch { throw .btf(path: path, error) }
        }
        for s in elf.sections {
            switch s.name {
            case "license":
                license = elf.contents(of: s).cString(at: 0) ?? ""
            case "version":
                kernelVersion = elf.contents(of: s).u32(0) ?? 0
            case "maps":
                if s.size > 0 {
                    throw .badSection("maps", "legacy map definitions (SEC(\"maps\")) are not supported; declare maps in SEC(\".maps\") with __uint/__type (BTF-defined maps)")
                }
            case ".maps":
                mapsSection = s.index
            case ".text":
                textSection = s.index
            default:
                break
            }
        }
        try readBTFMaps()
        try readDataSections()
        try readExterns()
        try readPrograms()
    }

    /// clang leaves DATASEC sizes and variable offsets at 0 and extern VARs/FUNCs as extern;
    /// the kernel wants them filled in and allocated (libbpf does the same before loading):
    /// section sizes from ELF, offsets from symbols, .ksyms variables as 4-byte ints, extern
    /// functions as global. Type ids do not change.
    func fixedUpBTF(_ btf: BTF) throws(BTFError) -> BTF {
        var replacements: [TypeID: BTFType] = [:]
        var appended: [BTFType] = []
        let hiddenFunctions = Set(symbols.filter { $0.type == ELFSymbol.STT_FUNC && $0.visibility == 2 /* STV_HIDDEN */ }.map(\.name))
        func current(_ id: TypeID) throws(BTFError) -> BTFType {
            if let r = replacements[id] { return r }
            return try btf.type(id)
        }
        for id in btf.ownIDs {
            let t = try btf.type(id)
            if t.kind == .function, t.linkage == .external {
                var f = t
                f.payload = .functionLinkage(BTFLinkage.global.rawValue)
                replacements[id] = f
            } else if t.kind == .function, t.linkage == .global, hiddenFunctions.contains(t.name) {
                // A __hidden global subprogram (libbpf's usdt.bpf.h helpers) is verified as static,
                // with its caller's argument types, as libbpf marks it; as global the verifier
                // checks it alone and refuses its pointer arguments.
                var f = t
                f.payload = .functionLinkage(BTFLinkage.static.rawValue)
                replacements[id] = f
            }
            guard t.kind == .dataSection else { continue }
            var sec = t
            var vars = t.sectionVariables
            if t.name == ".ksyms" {
                var intID = btf.firstID(named: "int", kind: .int)
                if intID == nil {
                    intID = TypeID(btf.count + appended.count)
                    appended.append(BTFType(kind: .int, name: "int", sizeOrType: 4, payload: .int(BTFInt(encoding: .signed, offset: 0, bits: 32))))
                }
                // A DATASEC may only list VARs: kfunc entries point at one dummy int VAR.
                var dummyVar: TypeID?
                for j in vars.indices {
                    var v = try current(vars[j].type)
                    if v.kind == .variable {
                        v.sizeOrType = intID!
                        v.payload = .variableLinkage(BTFLinkage.global.rawValue)
                        replacements[vars[j].type] = v
                    } else if v.kind == .function {
                        if dummyVar == nil {
                            dummyVar = TypeID(btf.count + appended.count)
                            appended.append(BTFType(kind: .variable, name: "dummy_ksym", sizeOrType: intID!,
                                                    payload: .variableLinkage(BTFLinkage.global.rawValue)))
                        }
                        // The kernel wants named parameters on every FUNC's prototype.
                        var proto = try current(v.type)
                        if proto.kind == .functionProto, proto.params.contains(where: { $0.name.isEmpty && $0.type != 0 }) {
                            proto.payload = .params(proto.params.map { BTFParam(name: $0.name.isEmpty && $0.type != 0 ? "dummy_ksym" : $0.name, type: $0.type) })
                            replacements[v.type] = proto
                        }
                        vars[j].type = dummyVar!
                    }
                    vars[j].offset = UInt32(j * 4)
                    vars[j].size = 4
                }
                sec.sizeOrType = UInt32(vars.count * 4)
            } else if t.name == ".kconfig" {
                // Offsets as the .kconfig map lays them out (readExterns uses the same rule).
                var end: UInt32 = 0
                for j in vars.indices {
                    var v = try current(vars[j].type)
                    v.payload = .variableLinkage(BTFLinkage.global.rawValue)
                    replacements[vars[j].type] = v
                    let size = UInt32((try? btf.size(of: v.type)) ?? Int(vars[j].size))
                    let align = UInt32(max(1, min(8, Int(size))))
                    vars[j].offset = (end + align - 1) / align * align
                    vars[j].size = size
                    end = vars[j].offset + size
                }
                sec.sizeOrType = end
            } else if let elfSection = elf.section(named: t.name) {
                for j in vars.indices {
                    let varName = btf.name(of: vars[j].type)
                    if let sym = symbols.first(where: { Int($0.sectionIndex) == elfSection.index && $0.name == varName }) {
                        vars[j].offset = UInt32(truncatingIfNeeded: sym.value)
                    }
                }
                sec.sizeOrType = UInt32(truncatingIfNeeded: elfSection.size)
            }
            sec.payload = .sectionVariables(vars)
            replacements[id] = sec
        }
        guard !replacements.isEmpty || !appended.isEmpty else { return btf }
        return try btf.replacing(replacements, appending: appended)
    }

    // MARK: Maps

    /// BTF-defined maps: each variable of DATASEC `.maps` is a struct whose members encode the
    /// attributes (`__uint(x, N)` is a pointer to an array of N ints; `__type(x, T)` a pointer to T).
    mutating func readBTFMaps() throws(BPFError) {
        guard let mapsIndex = mapsSection else { return }
        guard let btf else { throw .badSection(".maps", "BTF-defined maps need the object's BTF; compile with -g") }
        guard let sec = btf.firstID(named: ".maps", kind: .dataSection) else {
            throw .badSection(".maps", "no DATASEC '.maps' in the object's BTF")
        }
        let datasec: BTFType
        do { datasec = try btf.type(sec) } catch { throw .btf(path: path, error) }
        let relocs = relocations(for: mapsIndex)
        for v in datasec.sectionVariables {
            do {
                let variable = try btf.type(v.type)
                guard variable.kind == .variable else { throw BPFError.badSection(".maps", "entry [\(v.type)] is not a variable") }
                let name = variable.name
                let def = try btf.resolve(variable.type)
                var spec = try mapDefinition(name: name, def: def, btf: btf)
                // Map-in-map initial values: relocations at .values[i] pointing at other maps.
                if spec.innerMap != nil, let sym = symbols.first(where: { Int($0.sectionIndex) == mapsIndex && $0.name == name }) {
                    let valuesOffset = UInt64(try btf.findMember("values", in: def).map { $0.bitOffset / 8 } ?? 0)
                    for r in relocs {
                        let off = r.offset
                        let (start, o1) = sym.value.addingReportingOverflow(valuesOffset)
                        let (end, o2) = sym.value.addingReportingOverflow(sym.size)
                        guard !o1, !o2, off >= start, off < end else { continue }
                        let slot = UInt32(clamping: (off - start) / 8)
                        guard Int(r.symbolIndex) < symbols.count else {
                            throw BPFError.badMap(name, "initial value relocation names symbol #\(r.symbolIndex), which does not exist")
                        }
                        spec.initialInnerMaps.append((slot, symbols[Int(r.symbolIndex)].name))
                    }
                }
                maps.append(spec)
            } catch let e as BPFError {
                throw e
            } catch let e as BTFError {
                throw .btf(path: path, e)
            } catch {
                // Only BPFError and BTFError are thrown above; the untyped do needs a last arm.
                throw .badSection(".maps", "entry [\(v.type)] could not be decoded")
            }
        }
    }

    /// Decodes one map definition struct.
    func mapDefinition(name: String, def: TypeID, btf: BTF) throws -> MapSpec {
        let t = try btf.type(def)
        guard t.kind == .struct else {
            throw BPFError.badMap(name, "definition is \(t.kind.name), expected a struct of __uint/__type/__array members")
        }
        var spec = MapSpec(name: name, type: .unspec, keySize: 0, valueSize: 0, maxEntries: 0)
        var sawType = false
        for m in t.members {
            switch m.name {
            case "type", "max_entries", "map_flags", "numa_node", "pinning", "key_size", "value_size", "map_extra":
                let n = try uintAttribute(m, btf: btf, map: name)
                switch m.name {
                case "type":
                    guard let type = MapType(rawValue: UInt32(truncatingIfNeeded: n)) else {
                        throw BPFError.badMap(name, "unknown map type \(n)")
                    }
                    spec.type = type
                    sawType = true
                case "max_entries": spec.maxEntries = UInt32(truncatingIfNeeded: n)
                case "map_flags": spec.flags = UInt32(truncatingIfNeeded: n)
                case "numa_node": spec.numaNode = UInt32(truncatingIfNeeded: n)
                case "pinning":
                    guard let p = MapPinning(rawValue: UInt32(truncatingIfNeeded: n)) else {
                        throw BPFError.badMap(name, "unknown pinning \(n) (0 = none, 1 = by name)")
                    }
                    spec.pinning = p
                case "key_size": spec.keySize = UInt32(truncatingIfNeeded: n)
                case "value_size": spec.valueSize = UInt32(truncatingIfNeeded: n)
                default: spec.mapExtra = n
                }
            case "key", "value":
                let ptr = try btf.type(try btf.resolve(m.type))
                guard ptr.kind == .pointer else {
                    throw BPFError.badMap(name, "'\(m.name)' must be declared with __type(\(m.name), T) (a pointer to T)")
                }
                guard let size = UInt32(exactly: try btf.size(of: ptr.type)) else {
                    throw BPFError.badMap(name, "'\(m.name)' type is larger than 4 GiB")
                }
                if m.name == "key" { spec.keyType = ptr.type; spec.keySize = size } else { spec.valueType = ptr.type; spec.valueSize = size }
            case "values":
                // __array(values, struct inner): an array of pointers to the inner definition.
                let arr = try btf.type(try btf.resolve(m.type))
                guard arr.kind == .array, let info = arr.arrayInfo else {
                    throw BPFError.badMap(name, "'values' must be declared with __array(values, ...)")
                }
                let ptr = try btf.type(try btf.resolve(info.elementType))
                guard ptr.kind == .pointer else { throw BPFError.badMap(name, "'values' elements must be pointers") }
                let innerDef = try btf.resolve(ptr.type)
                if btf.kind(of: innerDef) == .struct {
                    spec.innerMap = InnerMapSpec(try mapDefinition(name: name + ".inner", def: innerDef, btf: btf))
                }
            default:
                throw BPFError.badMap(name, "unknown attribute '\(m.name)'")
            }
        }
        guard sawType else { throw BPFError.badMap(name, "no map type: add __uint(type, BPF_MAP_TYPE_...)") }
        if spec.innerMap != nil {
            spec.keySize = spec.keySize == 0 ? 4 : spec.keySize
            spec.valueSize = 4
        }
        return spec
    }

    /// `__uint(name, N)` is `int (*name)[N]`: the number is the array's element count.
    func uintAttribute(_ m: BTFMember, btf: BTF, map: String) throws -> UInt64 {
        let ptr = try btf.type(try btf.resolve(m.type))
        guard ptr.kind == .pointer else { throw BPFError.badMap(map, "'\(m.name)' must be declared with __uint(\(m.name), N)") }
        let arr = try btf.type(try btf.resolve(ptr.type))
        guard arr.kind == .array, let info = arr.arrayInfo else {
            throw BPFError.badMap(map, "'\(m.name)' must be declared with __uint(\(m.name), N)")
        }
        return UInt64(info.count)
    }

    /// The map name for a global-data section, as libbpf names it: the object's name cut so
    /// that it and the section name (counted as at least 7 characters) fit in 15 characters,
    /// then anything the kernel does not allow in names replaced by '_'.
    func dataMapName(_ section: String) -> String {
        let nameLimit = 16 // BPF_OBJ_NAME_LEN, including the NUL
        let suffixLength = max(7, section.utf8.count)
        let prefixLength = max(0, min(nameLimit - suffixLength - 1, objectName.utf8.count))
        let raw = String(objectName.utf8.prefix(prefixLength))! + String(section.utf8.prefix(suffixLength))!
        let allowed = { (c: Character) in c.isASCII && (c.isLetter || c.isNumber || c == "_" || c == ".") }
        return String(String(raw.map { allowed($0) ? $0 : "_" }).prefix(nameLimit - 1))
    }

    /// .data, .rodata, .bss and their .data.*/.rodata.* variants become single-entry array maps.
    mutating func readDataSections() throws(BPFError) {
        for s in elf.sections {
            let n = s.name
            let isData = n == ".data" || n == ".rodata" || n == ".bss" || n.hasPrefix(".data.") || n.hasPrefix(".rodata.")
            // clang puts string literals for bpf_printk etc. in .rodata.str1.1: they are data too.
            guard isData, s.type == ELFSection.SHT_PROGBITS || s.type == ELFSection.SHT_NOBITS,
                  s.flags & ELFSection.SHF_ALLOC != 0 else { continue }
            guard s.size > 0 else { continue }
            // A map value this large is beyond what kernels accept; refuse it before allocating
            // (a .bss header can claim any size without the file holding the bytes).
            guard s.size <= 64 << 20 else { throw .badSection(n, "\(s.size) bytes is too large for global data (the limit here is 64 MiB)") }
            var spec = MapSpec(name: dataMapName(n), type: .array, keySize: 4, valueSize: UInt32(s.size), maxEntries: 1)
            spec.dataSection = n
            spec.contents = s.type == ELFSection.SHT_NOBITS ? [UInt8](repeating: 0, count: Int(s.size)) : elf.contents(of: s).toArray()
            // Read-only data is frozen after load; the program cannot write it.
            if spec.isReadOnlyData { spec.flags |= 1 << 7 /* BPF_F_RDONLY_PROG */ }
            spec.flags |= 1 << 10 // BPF_F_MMAPABLE: globals are read and set through the mapping
            spec.variables = globals(in: s)
            if let btf, let sec = btf.firstID(named: n, kind: .dataSection) {
                spec.valueType = sec
            }
            dataMaps[s.index] = spec.name
            maps.append(spec)
        }
    }

    /// Variables of a data section, from BTF when present, else from ELF symbols.
    func globals(in s: ELFSection) -> [GlobalVariable] {
        var vars: [GlobalVariable] = []
        for sym in symbols where Int(sym.sectionIndex) == s.index && sym.type == ELFSymbol.STT_OBJECT && !sym.name.isEmpty {
            var type: TypeID = 0
            if let btf, let sec = btf.firstID(named: s.name, kind: .dataSection), let ds = try? btf.type(sec) {
                for v in ds.sectionVariables where btf.name(of: v.type) == sym.name { type = (try? btf.type(v.type).type) ?? 0 }
            }
            vars.append(GlobalVariable(name: sym.name, offset: UInt32(truncatingIfNeeded: sym.value),
                                       size: UInt32(truncatingIfNeeded: sym.size), type: type,
                                       isStatic: sym.binding == ELFSymbol.STB_LOCAL))
        }
        return vars.sorted { $0.offset < $1.offset }
    }

    /// `.kconfig` and `.ksyms` externs, from the BTF DATASECs clang emits for them.
    mutating func readExterns() throws(BPFError) {
        guard let btf = originalBTF else { return }
        var kconfigSize: UInt32 = 0
        for sym in symbols where sym.sectionIndex == ELFSymbol.SHN_UNDEF && !sym.name.isEmpty
            && (sym.binding == ELFSymbol.STB_GLOBAL || sym.binding == ELFSymbol.STB_WEAK) {
            var kind: ObjectSpec.Extern.Kind?
            var type: TypeID = 0
            var size: UInt32 = 0
            for secName in [".kconfig", ".ksyms"] {
                guard let sec = btf.firstID(named: secName, kind: .dataSection), let ds = try? btf.type(sec) else { continue }
                for v in ds.sectionVariables where btf.name(of: v.type) == sym.name {
                    let k = btf.kind(of: v.type)
                    type = (try? btf.type(v.type).type) ?? 0
                    if secName == ".kconfig" {
                        kind = .kconfig
                        size = UInt32((try? btf.size(of: type)) ?? Int(v.size))
                    } else {
                        kind = k == .function ? .ksymFunction : .ksymVariable
                    }
                }
            }
            if kind == nil, let f = btf.firstID(named: sym.name, kind: .function), (try? btf.type(f).linkage) == .external {
                kind = .ksymFunction
                type = f
            }
            guard let kind else {
                throw .missingExtern(sym.name, reason: "it is neither in SEC(\".kconfig\") nor SEC(\".ksyms\"); declare it with __kconfig or __ksym")
            }
            var offset: UInt32 = 0
            if kind == .kconfig {
                let align = UInt32(max(1, min(8, Int(size))))
                offset = (kconfigSize + align - 1) / align * align
                kconfigSize = offset + size
            }
            externs.append(.init(name: sym.name, kind: kind, type: type, isWeak: sym.binding == ELFSymbol.STB_WEAK, offset: offset, size: size))
        }
        if kconfigSize > 0 {
            var spec = MapSpec(name: dataMapName(".kconfig"), type: .array, keySize: 4, valueSize: kconfigSize, maxEntries: 1)
            spec.dataSection = ".kconfig"
            spec.contents = [UInt8](repeating: 0, count: Int(kconfigSize))
            spec.flags = 1 << 7 | 1 << 10
            spec.variables = externs.filter { $0.kind == .kconfig }.map {
                GlobalVariable(name: $0.name, offset: $0.offset, size: $0.size, type: $0.type, isStatic: false)
            }
            maps.append(spec)
        }
    }

    /// A section's name for messages; relocations may name sections that do not exist.
    func sectionName(_ index: Int) -> String {
        elf.sections.indices.contains(index) ? elf.sections[index].name : "section #\(index)"
    }

    func relocations(for sectionIndex: Int) -> [ELFRelocation] {
        for s in elf.sections where (s.type == ELFSection.SHT_REL || s.type == ELFSection.SHT_RELA) && Int(s.info) == sectionIndex {
            return (try? elf.relocations(in: s)) ?? []
        }
        return []
    }

    // MARK: Programs

    /// One function's code before linking.
    struct Function {
        var name: String
        var section: ELFSection
        /// Byte offset in the section.
        var offset: Int
        var instructions: [Instruction]
        /// Instruction index -> reference or call target.
        var references: [Int: ProgramReference] = [:]
        /// Instruction index -> callee function key (section index, byte offset).
        var calls: [Int: FunctionKey] = [:]
        var functionInfo: [FunctionInfo] = []
        var lineInfo: [LineInfo] = []
        var coreRelocations: [(index: Int, relocation: CORERelocation)] = []
    }

    struct FunctionKey: Hashable { var section: Int; var offset: Int }

    mutating func readPrograms() throws(BPFError) {
        var functions: [FunctionKey: Function] = [:]
        var entryPoints: [(FunctionKey, ProgramKind)] = []
        for s in elf.sections where s.isExecutable && s.type == ELFSection.SHT_PROGBITS && s.size > 0 {
            let isText = s.index == textSection
            let kind = ProgramKind(section: s.name)
            if !isText && kind == nil {
                throw .badSection(s.name, "unknown program section name; use a libbpf convention such as tracepoint/<category>/<name>, raw_tp/<name>, tp_btf/<name>, uprobe/<binary>:<function>, kprobe/<function>, perf_event")
            }
            let code = elf.contents(of: s)
            let all: [Instruction]
            do {
                all = try Instruction.decode(code.toArray(), byteOrder: elf.order)
            } catch {
                throw .instructions(section: s.name, error)
            }
            // Map byte offsets to instruction indices (ld_imm64 takes two slots).
            var indexOfSlot: [Int: Int] = [:]
            for (i, slot) in all.slotIndices.enumerated() { indexOfSlot[slot] = i }
            let funcs = symbols.filter { Int($0.sectionIndex) == s.index && $0.type == ELFSymbol.STT_FUNC }
                .sorted { $0.value < $1.value }
            guard !funcs.isEmpty else { throw .badSection(s.name, "code without a function symbol") }
            for (n, sym) in funcs.enumerated() {
                let start = Int(clamping: sym.value)
                let end = n + 1 < funcs.count ? Int(clamping: funcs[n + 1].value) : Int(clamping: s.size)
                guard start % 8 == 0, end % 8 == 0, start < end, let first = indexOfSlot[start / 8] else {
                    throw .badProgram(sym.name, "function bounds \(start)..<\(end) in \(s.name) are not on instruction boundaries")
                }
                let last = indexOfSlot[end / 8] ?? all.count
                var f = Function(name: sym.name, section: s, offset: start, instructions: Array(all[first..<last]))
                try resolveRelocations(&f, sectionCode: all, indexOfSlot: indexOfSlot, firstIndex: first)
                try attachBTFExt(&f, indexOfSlot: indexOfSlot, firstIndex: first, end: end)
                let key = FunctionKey(section: s.index, offset: start)
                functions[key] = f
                if !isText, let kind, sym.binding != ELFSymbol.STB_LOCAL || funcs.count == 1 {
                    entryPoints.append((key, kind))
                }
            }
        }
        for (key, kind) in entryPoints {
            programs.append(try link(entry: key, kind: kind, functions: functions))
        }
    }

    /// Applies ELF relocations to one function: map and global references, calls, externs.
    func resolveRelocations(_ f: inout Function, sectionCode: [Instruction], indexOfSlot: [Int: Int], firstIndex: Int) throws(BPFError) {
        let start = f.offset
        let end = start + f.instructions.slotCount * 8
        for r in relocations(for: f.section.index) where Int(clamping: r.offset) >= start && Int(clamping: r.offset) < end {
            guard r.offset % 8 == 0, let absolute = indexOfSlot[Int(clamping: r.offset) / 8] else {
                throw .badRelocation(program: f.name, slot: Int(clamping: r.offset) / 8, "relocation offset \(r.offset) is not an instruction start")
            }
            let i = absolute - firstIndex
            guard Int(r.symbolIndex) < symbols.count else {
                throw .badRelocation(program: f.name, slot: i, "relocation names symbol #\(r.symbolIndex), which does not exist")
            }
            let sym = symbols[Int(r.symbolIndex)]
            let insn = f.instructions[i]
            let secIndex = Int(sym.sectionIndex)
            if let call = insn.callKind {
                guard call == .pseudo else {
                    if sym.sectionIndex == ELFSymbol.SHN_UNDEF {
                        f.references[i] = .ksym(sym.name, isFunction: true)
                        continue
                    }
                    throw .badRelocation(program: f.name, slot: i, "relocation on a helper call")
                }
                if sym.sectionIndex == ELFSymbol.SHN_UNDEF {
                    f.references[i] = .ksym(sym.name, isFunction: true)
                    continue
                }
                // Pseudo call: target = symbol + (imm + 1) instructions for section symbols.
                let target = sym.type == ELFSymbol.STT_SECTION ? Int(clamping: sym.value) &+ (Int(insn.imm) + 1) * 8 : Int(clamping: sym.value)
                f.calls[i] = FunctionKey(section: secIndex, offset: target)
                continue
            }
            guard insn.isWide else {
                throw .badRelocation(program: f.name, slot: i, "relocation against '\(sym.name)' on an instruction that is not ld_imm64 or call (opcode 0x\(String(insn.opcode, radix: 16)))")
            }
            if sym.sectionIndex == ELFSymbol.SHN_UNDEF {
                if let e = externs.first(where: { $0.name == sym.name }), e.kind == .kconfig {
                    f.references[i] = .kconfig(sym.name)
                } else {
                    f.references[i] = .ksym(sym.name, isFunction: false)
                }
            } else if secIndex == mapsSection {
                guard let m = maps.first(where: { $0.name == sym.name }) else {
                    throw .badRelocation(program: f.name, slot: i, "reference to '\(sym.name)' in .maps, which is not a map")
                }
                f.references[i] = .map(m.name)
            } else if let mapName = dataMaps[secIndex] {
                let base = sym.type == ELFSymbol.STT_SECTION ? 0 : UInt32(truncatingIfNeeded: sym.value)
                f.references[i] = .mapValue(mapName, offset: base &+ UInt32(bitPattern: insn.imm))
            } else if f.section.index == secIndex || secIndex == textSection, elf.sections.indices.contains(secIndex), elf.sections[secIndex].isExecutable {
                // ld_imm64 of a function's address (callbacks such as bpf_loop's).
                let target = sym.type == ELFSymbol.STT_SECTION ? Int(clamping: sym.value) &+ Int(insn.imm) : Int(clamping: sym.value)
                f.calls[i] = FunctionKey(section: secIndex, offset: target)
            } else {
                let secName = sectionName(secIndex)
                throw .badRelocation(program: f.name, slot: i, "reference to '\(sym.name)' in section \(secName), which is neither a map nor global data")
            }
        }
        // Calls within the same section need no relocation: the offset is already there.
        for (i, slot) in f.instructions.slotIndices.enumerated() {
            let insn = f.instructions[i]
            if insn.callKind == .pseudo && f.calls[i] == nil && f.references[i] == nil {
                f.calls[i] = FunctionKey(section: f.section.index, offset: (start / 8 + slot + Int(insn.imm) + 1) * 8)
            }
        }
    }

    /// Picks this function's func_info, line_info and CO-RE records out of .BTF.ext.
    func attachBTFExt(_ f: inout Function, indexOfSlot: [Int: Int], firstIndex: Int, end: Int) throws(BPFError) {
        guard let ext = btfExt else { return }
        let secName = f.section.name
        func index(_ byteOffset: UInt32) -> Int? {
            let o = Int(byteOffset)
            guard o >= f.offset, o < end, o % 8 == 0, let abs = indexOfSlot[o / 8] else { return nil }
            return abs - firstIndex
        }
        for sec in ext.functionInfo where sec.name == secName {
            for r in sec.records { if let i = index(r.insnOffset) { f.functionInfo.append(FunctionInfo(slot: i, type: r.typeID)) } }
        }
        for sec in ext.lineInfo where sec.name == secName {
            for r in sec.records {
                if let i = index(r.insnOffset) {
                    f.lineInfo.append(LineInfo(slot: i, fileNameOffset: r.fileNameOffset, lineOffset: r.lineOffset, line: r.lineNumber, column: r.column))
                }
            }
        }
        for sec in ext.coreRelocations where sec.name == secName {
            for r in sec.records {
                guard let i = index(r.insnOffset) else {
                    if Int(r.insnOffset) >= f.offset && Int(r.insnOffset) < end {
                        throw .badRelocation(program: f.name, slot: Int(r.insnOffset) / 8, "CO-RE relocation at byte \(r.insnOffset) is not an instruction start")
                    }
                    continue
                }
                f.coreRelocations.append((i, r))
            }
        }
    }

    /// Builds a loadable program: the entry function, then every function it reaches
    /// (breadth first), with pseudo-call and function-address immediates set to the
    /// appended copies. func_info/line_info/CO-RE records move along (indices here are
    /// instruction indices; slots are computed at load time).
    func link(entry: FunctionKey, kind: ProgramKind, functions: [FunctionKey: Function]) throws(BPFError) -> ProgramSpec {
        guard let main = functions[entry] else {
            throw .badSection(sectionName(entry.section), "no function starts at byte \(entry.offset)")
        }
        var order: [FunctionKey] = [entry]
        var placed: [FunctionKey: Int] = [entry: 0] // key -> first instruction index in the program
        var instructions: [Instruction] = []
        var spec = ProgramSpec(name: main.name, kind: kind, instructions: [], license: license)
        spec.section = main.section.name
        spec.kernelVersion = kernelVersion
        spec.functions = []
        var pendingCalls: [(index: Int, callee: FunctionKey, caller: String)] = []
        var k = 0
        while k < order.count {
            let key = order[k]
            k += 1
            guard let f = functions[key] else { continue }
            let base = instructions.count
            placed[key] = base
            spec.functions.append((f.name, base))
            instructions += f.instructions
            for (i, r) in f.references { spec.references[base + i] = r }
            for fi in f.functionInfo { spec.functionInfo.append(FunctionInfo(slot: base + fi.slot, type: fi.type)) }
            for li in f.lineInfo { var l = li; l.slot += base; spec.lineInfo.append(l) }
            for (i, r) in f.coreRelocations { spec.coreRelocations.append((base + i, r)) }
            for (i, callee) in f.calls.sorted(by: { $0.key < $1.key }) {
                guard functions[callee] != nil else {
                    throw .badRelocation(program: main.name, slot: base + i, "call target at byte \(callee.offset) of \(sectionName(callee.section)) is not the start of a function")
                }
                if placed[callee] == nil && !order.contains(callee) { order.append(callee) }
                pendingCalls.append((base + i, callee, f.name))
            }
        }
        // Slot of each instruction, then patch call/address immediates relative to slots.
        let slotOf = instructions.slotIndices
        for call in pendingCalls {
            guard let targetIndex = placed[call.callee] else { continue }
            let target = slotOf[targetIndex]
            if instructions[call.index].callKind != nil {
                instructions[call.index].imm = Int32(target - slotOf[call.index] - 1)
            } else {
                // ld_imm64 of a function: BPF_PSEUDO_FUNC with the relative slot.
                instructions[call.index] = .loadFunction(instructions[call.index].dst, offset: Int32(target - slotOf[call.index] - 1))
            }
        }
        spec.instructions = instructions
        return spec
    }
}
