import PlumbAsm
import PlumbSys
import PlumbBTF
import PlumbELF
import Glibc

/// Options for loading an ObjectSpec.
public struct LoadOptions: Sendable {
    /// CO-RE targets; nil: the running kernel's BTF plus its modules' (`BTF.kernelTargets()`).
    public var targetBTF: [BTF]?
    /// Load only these programs (all when nil).
    public var programs: Set<String>?
    /// New initial values for global variables (`const volatile` ones included), by name.
    public var globals: [String: [UInt8]]
    /// Where maps with `pinning: by name` live (default: <bpffs>/).
    public var pinDirectory: String?
    /// Verifier log level for every program (0: only on failure).
    public var logLevel: UInt32
    /// Maps created elsewhere to use instead of creating the spec's map of that name (libbpf's
    /// bpf_map__reuse_fd): the tracer's programs share `ProcessTracker`'s pid set this way. Each
    /// must match its spec's type, key and value size.
    public var reuseMaps: [String: Map] = [:]

    public init(targetBTF: [BTF]? = nil, programs: Set<String>? = nil, globals: [String: [UInt8]] = [:],
                pinDirectory: String? = nil, logLevel: UInt32 = 0) {
        self.targetBTF = targetBTF
        self.programs = programs
        self.globals = globals
        self.pinDirectory = pinDirectory
        self.logLevel = logLevel
    }
}

extension ObjectSpec {
    /// Loads the object into the kernel: CO-RE, maps, globals, programs.
    public func load(_ options: LoadOptions = LoadOptions()) throws(BPFError) -> Object {
        try Object(spec: self, options: options)
    }
}

extension BTF {
    /// The CO-RE targets of the running kernel: vmlinux's BTF, then every module's that parses.
    public static func kernelTargets() throws(BTFError) -> [BTF] {
        var all = [try BTF.kernel()]
        for m in BTF.kernelModuleNames() {
            if let b = try? BTF.kernelModule(m) { all.append(b) }
        }
        return all
    }
}

/// Turns an ObjectSpec into kernel objects: CO-RE applied to the instructions, the object's
/// BTF loaded, maps created and filled, references resolved, programs loaded.
enum ObjectLoader {
    /// What a load produced; `Object` holds it.
    struct Loaded {
        var spec: ObjectSpec
        var maps: [String: Map]
        var programs: [String: Program]
        var relocations: [String: [AppliedRelocation]]
        var btf: LoadedBTF?
    }

    static func load(_ original: ObjectSpec, options: LoadOptions) throws(BPFError) -> Loaded {
        var spec = original
        guard spec.order == .host else {
            throw .wrongByteOrder(path: spec.path, spec.order)
        }
        let wanted = spec.programs.filter { options.programs?.contains($0.name) ?? true }
        if let names = options.programs {
            let missing = names.subtracting(spec.programs.map(\.name))
            if !missing.isEmpty {
                throw .invalidArgument("no program named \(missing.sorted().joined(separator: ", ")) in \(spec.path); it has: \(spec.programs.map(\.name).joined(separator: ", "))")
            }
        }
        spec.programs = wanted

        // CO-RE first: it only needs BTF, and its errors are the clearest.
        // The kernel's BTF (and its modules') is opened only when something needs it: CO-RE
        // relocations, ksyms or a tracing program's attach target. Most tracer programs need none.
        let needsCORE = spec.programs.contains { !$0.coreRelocations.isEmpty }
        let needsKernel = spec.programs.contains { p in
            p.kind.type == .tracing || p.kind.type == .lsm || p.references.values.contains { if case .ksym = $0 { return true }; return false }
        }
        var targets: [BTF] = []
        if let given = options.targetBTF {
            targets = given
        } else if needsCORE {
            do { targets = try BTF.kernelTargets() } catch { throw .btf(path: "/sys/kernel/btf/vmlinux", error) }
        }
        let kernelBTF: BTF?
        if !needsKernel { kernelBTF = nil }
        else if options.targetBTF == nil, let first = targets.first { kernelBTF = first }
        else { kernelBTF = try? BTF.kernel() }
        let relocations = try spec.applyCORE(targets: targets)

        // The object's BTF: maps and programs use it when the kernel takes it.
        var loadedBTF: LoadedBTF?
        if let btf = spec.btf, let fd = try? Sys.btfLoad(btf.data.toArray()) {
            loadedBTF = LoadedBTF(fd: fd)
        }
        let btfRaw = loadedBTF?.fd.rawValue

        // Global variables set before load.
        for (name, value) in options.globals {
            guard let mi = spec.maps.firstIndex(where: { $0.dataSection != nil && $0.variable(name) != nil }),
                  let v = spec.maps[mi].variable(name) else {
                let known = spec.maps.flatMap { $0.variables.map(\.name) }
                throw .invalidArgument("no global variable '\(name)' in \(spec.path); it has: \(known.joined(separator: ", "))")
            }
            guard value.count == Int(v.size) else {
                throw .invalidArgument("global '\(name)' is \(v.size) bytes; the value given has \(value.count)")
            }
            spec.maps[mi].contents.replaceSubrange(Int(v.offset)..<Int(v.offset + v.size), with: value)
        }
        try fillKconfig(&spec)

        // Maps: plain ones first, then maps of maps (they need inner maps to exist).
        var maps: [String: Map] = [:]
        let ordered = spec.maps.filter { $0.innerMap == nil } + spec.maps.filter { $0.innerMap != nil }
        for m in ordered {
            if let given = options.reuseMaps[m.name] {
                guard given.type == m.type, given.keySize == Int(m.keySize), given.valueSize == Int(m.valueSize) else {
                    throw .mapMismatch(map: m.name, reason: "the map given to reuse is a \(given.type) of \(given.keySize)-byte keys and \(given.valueSize)-byte values; the object wants \(m.type), \(m.keySize), \(m.valueSize)")
                }
                maps[m.name] = given
                continue
            }
            maps[m.name] = try createMap(m, btfFD: btfRaw, maps: maps, pinDirectory: options.pinDirectory)
        }

        var programs: [String: Program] = [:]
        for p in spec.programs {
            programs[p.name] = try loadProgram(p, spec: spec, maps: maps, btfFD: btfRaw, kernelBTF: kernelBTF,
                                               logLevel: options.logLevel)
        }
        return Loaded(spec: spec, maps: maps, programs: programs, relocations: relocations, btf: loadedBTF)
    }

    // MARK: Maps

    static func createMap(_ m: MapSpec, btfFD: Int32?, maps: [String: Map], pinDirectory: String?) throws(BPFError) -> Map {
        let pinPath: String?
        if m.pinning == .byName {
            let dir: String
            if let pinDirectory { dir = pinDirectory } else {
                do { dir = try BPFFS.path() } catch { throw .mapCreation(map: m.name, error) }
            }
            pinPath = dir + "/" + m.name
            if access(pinPath!, F_OK) == 0 {
                // Reuse what is pinned there, if it has the same shape.
                let existing: Map
                do { existing = try Map(pinned: pinPath!) } catch { throw error.inMap(m.name) }
                guard existing.type == m.type, existing.keySize == Int(m.keySize), existing.valueSize == Int(m.valueSize),
                      existing.maxEntries == Int(m.maxEntries) else {
                    throw .mapMismatch(map: m.name, reason: "the map pinned at \(pinPath!) has a different type or size; remove it (rm \(pinPath!)) or rename the map")
                }
                return existing
            }
        } else {
            pinPath = nil
        }
        var inner: Map?
        if let innerSpec = m.innerMap?.spec {
            inner = try createMap(innerSpec, btfFD: nil, maps: [:], pinDirectory: nil)
        }
        // Ring buffers and perf arrays take no BTF types; neither do maps without them.
        let typed = m.keyType != 0 || m.valueType != 0
        let useBTF = typed && m.type != .ringbuf && m.type != .perfEventArray && m.innerMap == nil
        var attributes = MapAttributes(
            type: m.type, keySize: m.keySize, valueSize: m.valueSize,
            maxEntries: m.type == .perfEventArray && m.maxEntries == 0 ? UInt32((try? CPUs.possible().count) ?? 1) : m.maxEntries,
            flags: MapFlags(rawValue: m.flags), name: m.name, innerMapFD: inner?.fd.rawValue, numaNode: m.numaNode,
            mapExtra: m.mapExtra)
        if useBTF, let fd = btfFD {
            attributes.btfFD = fd
            attributes.btfKeyTypeID = m.dataSection != nil ? 0 : m.keyType
            attributes.btfValueTypeID = m.valueType
        }
        let map: Map
        do throws(BPFError) {
            if let typedMap = try? Map(attributes) {
                map = typedMap
            } else {
                // Kernels refuse some BTF-typed maps (old kernels, odd types): retry untyped, as
                // libbpf does; an untyped failure is the error to report.
                attributes.btfFD = nil
                attributes.btfKeyTypeID = 0
                attributes.btfValueTypeID = 0
                map = try Map(attributes)
            }
            if m.dataSection != nil {
                try map.update([0, 0, 0, 0], m.contents)
                if m.isReadOnlyData { try map.freeze() }
            }
            for slot in m.initialInnerMaps {
                guard let target = maps[slot.map] else {
                    throw BPFError.invalidArgument("initial value [\(slot.slot)] names map '\(slot.map)', which was not created")
                }
                var key = slot.slot
                var value = UInt32(bitPattern: target.fd.rawValue)
                try map.update(withUnsafeBytes(of: &key) { Array($0) }, withUnsafeBytes(of: &value) { Array($0) })
            }
            if let pinPath { try map.pin(pinPath) }
        } catch {
            throw error.inMap(m.name)
        }
        return map
    }

    /// Fills `.kconfig` externs: LINUX_KERNEL_VERSION from uname, CONFIG_* from the kernel's
    /// config (/proc/config.gz or /boot/config-<release>). A missing non-weak value is an error.
    static func fillKconfig(_ spec: inout ObjectSpec) throws(BPFError) {
        guard let mi = spec.maps.firstIndex(where: { $0.dataSection == ".kconfig" }) else { return }
        var config: [String: String]?
        for e in spec.externs where e.kind == .kconfig {
            var value: UInt64?
            switch e.name {
            case "LINUX_KERNEL_VERSION": value = UInt64(KernelInfo.versionCode)
            case "LINUX_HAS_BPF_COOKIE", "LINUX_HAS_SYSCALL_WRAPPER": value = 1
            default:
                if config == nil { config = KernelInfo.config() }
                if let raw = config?[e.name] {
                    switch raw {
                    case "y": value = 1
                    case "m": value = 2
                    case "n": value = 0
                    default:
                        if raw.hasPrefix("0x") { value = UInt64(raw.dropFirst(2), radix: 16) }
                        else if let v = Int64(raw) { value = UInt64(bitPattern: v) }
                    }
                }
            }
            guard let value else {
                if e.isWeak { continue }
                throw .missingExtern(e.name, reason: "not in the kernel config (/proc/config.gz, /boot/config-\(KernelInfo.release)); declare it __weak to accept 0")
            }
            var v = value.littleEndian
            let bytes = withUnsafeBytes(of: &v) { Array($0.prefix(Int(min(e.size, 8)))) }
            spec.maps[mi].contents.replaceSubrange(Int(e.offset)..<Int(e.offset) + bytes.count, with: bytes)
        }
    }

    // MARK: Programs

    static func loadProgram(_ p: ProgramSpec, spec: ObjectSpec, maps: [String: Map], btfFD: Int32?,
                            kernelBTF: BTF?, logLevel: UInt32) throws(BPFError) -> Program {
        var insns = p.instructions
        func fd(_ name: String) throws(BPFError) -> Int32 {
            guard let m = maps[name] else {
                throw .badProgram(p.name, "refers to map '\(name)', which does not exist")
            }
            return m.fd.rawValue
        }
        for (i, ref) in p.references {
            switch ref {
            case .map(let name):
                insns[i] = .loadMapFD(insns[i].dst, fd: try fd(name))
            case .mapValue(let name, let offset):
                insns[i] = .loadMapValue(insns[i].dst, fd: try fd(name), offset: offset)
            case .kconfig(let name):
                guard let kc = spec.maps.first(where: { $0.dataSection == ".kconfig" }), let v = kc.variable(name) else {
                    throw .missingExtern(name, reason: "no .kconfig map holds it")
                }
                insns[i] = .loadMapValue(insns[i].dst, fd: try fd(kc.name), offset: v.offset + UInt32(bitPattern: insns[i].imm))
            case .ksym(let name, let isFunction):
                let weak = spec.externs.first { $0.name == name }?.isWeak ?? false
                let kind: BTFKind = isFunction ? .function : .variable
                guard let kernelBTF, let id = kernelBTF.firstID(named: name, kind: kind) else {
                    if weak && !isFunction {
                        insns[i] = .loadImm64(insns[i].dst, 0)
                        continue
                    }
                    throw .missingExtern(name, reason: "the kernel's BTF has no \(isFunction ? "function" : "variable") '\(name)'")
                }
                if isFunction {
                    insns[i] = .callKfunc(btfID: Int32(bitPattern: id), moduleIndex: 0)
                } else {
                    insns[i] = .loadBTFID(insns[i].dst, id: Int32(bitPattern: id))
                }
            }
        }
        // func_info and line_info travel in instruction slots.
        let slotOf = insns.slotIndices
        var funcInfo: [UInt8] = [], lineInfo: [UInt8] = []
        func put(_ v: UInt32, _ out: inout [UInt8]) { withUnsafeBytes(of: v.littleEndian) { out.append(contentsOf: $0) } }
        if btfFD != nil {
            for f in p.functionInfo { put(UInt32(slotOf[f.slot]), &funcInfo); put(f.type, &funcInfo) }
            for l in p.lineInfo {
                put(UInt32(slotOf[l.slot]), &lineInfo); put(l.fileNameOffset, &lineInfo); put(l.lineOffset, &lineInfo)
                put(l.line << 10 | (l.column & 0x3ff), &lineInfo)
            }
        }
        var attachBTFID: UInt32 = 0
        if p.kind.type == .tracing || p.kind.type == .lsm {
            let (name, kind): (String, BTFKind) = switch p.kind.expectedAttachType {
            case .traceRawTP: ("btf_trace_" + p.kind.target, .typedef)
            case .lsmMac: ("bpf_lsm_" + p.kind.target, .function)
            case .traceIter: ("bpf_iter_" + p.kind.target, .function)
            default: (p.kind.target, .function)
            }
            guard let kernelBTF, let id = kernelBTF.firstID(named: name, kind: kind) else {
                throw .programMismatch(program: p.name, reason: "attach target '\(p.kind.target)' not found in the kernel's BTF (looked for \(kind == .typedef ? "typedef" : "function") \(name))")
            }
            attachBTFID = id
        }
        let attributes = ProgramAttributes(
            type: p.type, instructions: Instruction.encode(insns, byteOrder: .host), license: p.license,
            name: String(p.name.prefix(15)), expectedAttachType: p.kind.expectedAttachType, attachBTFID: attachBTFID,
            kernelVersion: KernelInfo.versionCode, flags: p.kind.sleepable ? .sleepable : [],
            btfFD: funcInfo.isEmpty ? nil : btfFD,
            funcInfo: funcInfo, funcInfoRecordSize: funcInfo.isEmpty ? 0 : 8,
            lineInfo: lineInfo, lineInfoRecordSize: lineInfo.isEmpty ? 0 : 16,
            logLevel: logLevel)
        do {
            return try Program.load(attributes, kind: p.kind)
        } catch {
            guard case .system(let e) = error else { throw error }
            throw .programLoad(program: p.name, e, sourceLine: sourceLine(for: e, program: p, spec: spec, slotOf: slotOf))
        }
    }

    /// Maps the verifier's failing instruction (the last `N: (..)` line of its log) to the
    /// source line line_info gives for it.
    static func sourceLine(for error: SysError, program p: ProgramSpec, spec: ObjectSpec, slotOf: [Int]) -> String? {
        guard case .verifierRejected(_, _, let log, _) = error, let btf = spec.btf else { return nil }
        var failing: Int?
        for line in log.split(separator: "\n").reversed() {
            let digits = line.prefix { $0.isNumber }
            if !digits.isEmpty, line.dropFirst(digits.count).hasPrefix(": ("), let n = Int(digits) { failing = n; break }
        }
        guard let failing else { return nil }
        // The last line_info at or before the failing slot.
        var best: LineInfo?
        for l in p.lineInfo where slotOf[l.slot] <= failing {
            if best == nil || slotOf[l.slot] >= slotOf[best!.slot] { best = l }
        }
        guard let best, let text = btf.string(at: best.lineOffset) else { return nil }
        // clang records the path it was given; under the current folder, print it relative to it.
        var file = btf.string(at: best.fileNameOffset) ?? "?"
        if file.hasPrefix("/"), let cwd = getcwd(nil, 0) {
            let dir = String(cString: cwd) + "/"
            free(cwd)
            if file.hasPrefix(dir) { file = String(file.dropFirst(dir.count)) }
        }
        return "the verifier stopped at instruction \(failing): \(file):\(best.line):\(best.column): \(text.trimmingLeadingSpace)"
    }
}

extension BPFError {
    /// A map-level failure while loading: system errors name the map being created.
    func inMap(_ name: String) -> BPFError {
        if case .system(let e) = self { return .mapCreation(map: name, e) }
        return self
    }
}
