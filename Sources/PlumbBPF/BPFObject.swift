import PlumbAsm
import PlumbSys
import PlumbBTF
import PlumbELF
import Glibc

/// What loading an object can fail with. Each case names the map or program and says what
/// to do; a verifier rejection carries the log with the failing instruction's source line.
public enum LoadError: Error, CustomStringConvertible, Sendable {
    case object(ObjectError)
    case map(String, BPFError)
    case program(String, BPFError, sourceLine: String?)
    case missingExtern(String, String)
    case notLoadable(String)

    public var description: String {
        switch self {
        case .object(let e): return e.description
        case .map(let m, let e): return "creating map '\(m)': \(e)"
        case .program(let p, let e, let line):
            var s = "loading program '\(p)': \(e)"
            if let line { s += "\n\(line)" }
            return s
        case .missingExtern(let n, let why): return "extern '\(n)': \(why)"
        case .notLoadable(let r): return r
        }
    }
}

/// Options for loading an ObjectSpec.
public struct LoadOptions: Sendable {
    /// CO-RE targets; nil: the running kernel's BTF plus its modules'.
    public var targetBTF: [BTF]?
    /// Load only these programs (all when nil).
    public var programs: Set<String>?
    /// New initial values for global variables (`const volatile` ones included), by name.
    public var globals: [String: [UInt8]]
    /// Where maps with `pinning: by name` live (default: <bpffs>/).
    public var pinDirectory: String?
    /// Verifier log level for every program (0: only on failure).
    public var logLevel: UInt32

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
    public func load(_ options: LoadOptions = LoadOptions()) throws(LoadError) -> BPFObject {
        try BPFObject(spec: self, options: options)
    }
}

/// What the kernel holds for one object: its maps and programs, created from an
/// ObjectSpec (CO-RE applied, references resolved). Released objects are closed; nothing
/// stays in the kernel unless pinned.
public final class BPFObject: @unchecked Sendable {
    public let spec: ObjectSpec
    public let maps: [String: Map]
    public let programs: [String: Program]
    /// CO-RE patches applied, per program (for logs and dumps).
    public let relocations: [String: [AppliedRelocation]]
    /// The object's BTF as the kernel holds it (nil when the kernel refused it or there was none).
    public let btf: LoadedBTF?

    public func map(_ name: String) throws(BPFError) -> Map {
        guard let m = maps[name] else {
            throw .invalidArgument("no map '\(name)' in \(spec.name); it has: \(maps.keys.sorted().joined(separator: ", "))")
        }
        return m
    }

    public func program(_ name: String) throws(BPFError) -> Program {
        guard let p = programs[name] else {
            throw .invalidArgument("no program '\(name)' in \(spec.name); it has: \(programs.keys.sorted().joined(separator: ", "))")
        }
        return p
    }

    /// The global-data map holding variable `name` and the variable.
    public func global(_ name: String) -> (map: Map, variable: GlobalVariable)? {
        for m in spec.maps where m.dataSection != nil {
            if let v = m.variable(name), let map = maps[m.name] { return (map, v) }
        }
        return nil
    }

    public convenience init(path: String, options: LoadOptions = LoadOptions()) throws(LoadError) {
        let spec: ObjectSpec
        do { spec = try ObjectSpec(path: path) } catch { throw .object(error) }
        try self.init(spec: spec, options: options)
    }

    public init(spec original: ObjectSpec, options: LoadOptions = LoadOptions()) throws(LoadError) {
        var spec = original
        guard spec.order == .host else {
            throw .notLoadable("\(spec.path) is \(spec.order == .big ? "big" : "little")-endian but this kernel is not; compile with -target bpf (host order) or bpfel/bpfeb to match")
        }
        let wanted = spec.programs.filter { options.programs?.contains($0.name) ?? true }
        if let names = options.programs {
            let missing = names.subtracting(spec.programs.map(\.name))
            if !missing.isEmpty {
                throw .notLoadable("no program named \(missing.sorted().joined(separator: ", ")) in \(spec.path); it has: \(spec.programs.map(\.name).joined(separator: ", "))")
            }
        }
        spec.programs = wanted

        // CO-RE first: it only needs BTF, and its errors are the clearest.
        var kernelBTF: BTF?
        do {
            let targets = try options.targetBTF ?? BPFObject.kernelTargets()
            kernelBTF = options.targetBTF == nil ? targets.first : try? BTF.kernel()
            relocations = try spec.applyCORE(targets: targets)
        } catch let e as ObjectError {
            throw .object(e)
        } catch {
            throw .notLoadable("reading the kernel's BTF for CO-RE: \(error)")
        }

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
                throw .notLoadable("no global variable '\(name)' in \(spec.path); it has: \(known.joined(separator: ", "))")
            }
            guard value.count == Int(v.size) else {
                throw .notLoadable("global '\(name)' is \(v.size) bytes; the value given has \(value.count)")
            }
            spec.maps[mi].contents.replaceSubrange(Int(v.offset)..<Int(v.offset + v.size), with: value)
        }
        try BPFObject.fillKconfig(&spec)

        // Maps: plain ones first, then maps of maps (they need inner maps to exist).
        var maps: [String: Map] = [:]
        let ordered = spec.maps.filter { $0.innerMap == nil } + spec.maps.filter { $0.innerMap != nil }
        for m in ordered {
            maps[m.name] = try BPFObject.createMap(m, btfFD: btfRaw, maps: maps, pinDirectory: options.pinDirectory)
        }
        self.maps = maps

        // Programs.
        var programs: [String: Program] = [:]
        for p in spec.programs {
            programs[p.name] = try BPFObject.loadProgram(p, spec: spec, maps: maps, btfFD: btfRaw, kernelBTF: kernelBTF,
                                                          logLevel: options.logLevel)
        }
        self.programs = programs
        self.spec = spec
        self.btf = loadedBTF
    }

    /// The running kernel's BTF and its modules', for CO-RE.
    public static func kernelTargets() throws(BTFError) -> [BTF] {
        var all = [try BTF.kernel()]
        for m in BTF.kernelModuleNames() {
            if let b = try? BTF.kernelModule(m) { all.append(b) }
        }
        return all
    }

    // MARK: Maps

    static func createMap(_ m: MapSpec, btfFD: Int32?, maps: [String: Map], pinDirectory: String?) throws(LoadError) -> Map {
        let pinPath: String?
        if m.pinning == .byName {
            let dir: String
            if let pinDirectory { dir = pinDirectory } else {
                do { dir = try BPFFS.path() } catch { throw .map(m.name, .system(error, context: "finding bpffs for pinning")) }
            }
            pinPath = dir + "/" + m.name
            if access(pinPath!, F_OK) == 0 {
                // Reuse what is pinned there, if it has the same shape.
                do {
                    let existing = try Map(pinned: pinPath!)
                    guard existing.type == m.type, existing.keySize == Int(m.keySize), existing.valueSize == Int(m.valueSize),
                          existing.maxEntries == Int(m.maxEntries) else {
                        throw BPFError.mapMismatch(map: m.name, reason: "the map pinned at \(pinPath!) has a different type or size; remove it (rm \(pinPath!)) or rename the map")
                    }
                    return existing
                } catch let e as BPFError {
                    throw .map(m.name, e)
                } catch {
                    throw .map(m.name, .invalidArgument("\(error)"))
                }
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
        do {
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
        } catch let e as BPFError {
            throw .map(m.name, e)
        } catch {
            throw .map(m.name, .invalidArgument("\(error)"))
        }
        return map
    }

    /// Fills `.kconfig` externs: LINUX_KERNEL_VERSION from uname, CONFIG_* from the kernel's
    /// config (/proc/config.gz or /boot/config-<release>). A missing non-weak value is an error.
    static func fillKconfig(_ spec: inout ObjectSpec) throws(LoadError) {
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
                throw .missingExtern(e.name, "not in the kernel config (/proc/config.gz, /boot/config-\(KernelInfo.release)); declare it __weak to accept 0")
            }
            var v = value.littleEndian
            let bytes = withUnsafeBytes(of: &v) { Array($0.prefix(Int(min(e.size, 8)))) }
            spec.maps[mi].contents.replaceSubrange(Int(e.offset)..<Int(e.offset) + bytes.count, with: bytes)
        }
    }

    // MARK: Programs

    static func loadProgram(_ p: ProgramSpec, spec: ObjectSpec, maps: [String: Map], btfFD: Int32?,
                            kernelBTF: BTF?, logLevel: UInt32) throws(LoadError) -> Program {
        var insns = p.instructions
        func fd(_ name: String) throws(LoadError) -> Int32 {
            guard let m = maps[name] else {
                throw .program(p.name, .invalidArgument("refers to map '\(name)', which does not exist"), sourceLine: nil)
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
                    throw .missingExtern(name, "no .kconfig map holds it")
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
                    throw .missingExtern(name, "the kernel's BTF has no \(isFunction ? "function" : "variable") '\(name)'")
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
                throw .program(p.name, .invalidArgument("attach target '\(p.kind.target)' not found in the kernel's BTF (looked for \(kind == .typedef ? "typedef" : "function") \(name))"), sourceLine: nil)
            }
            attachBTFID = id
        }
        let attributes = ProgramAttributes(
            type: p.type, instructions: Instruction.encode(insns, byteOrder: .host), license: p.license,
            name: String(p.name.prefix(15)), expectedAttachType: p.kind.expectedAttachType, attachBTFID: attachBTFID,
            kernelVersion: KernelInfo.versionCode, flags: p.kind.sleepable ? ProgramFlags(rawValue: 1 << 4) : [],
            btfFD: funcInfo.isEmpty ? nil : btfFD,
            funcInfo: funcInfo, funcInfoRecordSize: funcInfo.isEmpty ? 0 : 8,
            lineInfo: lineInfo, lineInfoRecordSize: lineInfo.isEmpty ? 0 : 16,
            logLevel: logLevel)
        do {
            return try Program.load(attributes)
        } catch {
            throw .program(p.name, error, sourceLine: sourceLine(for: error, program: p, spec: spec, slotOf: slotOf))
        }
    }

    /// Maps the verifier's failing instruction (the last `N: (..)` line of its log) to the
    /// source line line_info gives for it.
    static func sourceLine(for error: BPFError, program p: ProgramSpec, spec: ObjectSpec, slotOf: [Int]) -> String? {
        guard case .system(let sysError, _) = error, case .verifierRejected(_, _, let log, _) = sysError, let btf = spec.btf else {
            return nil
        }
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
        let file = btf.string(at: best.fileNameOffset) ?? "?"
        return "the verifier stopped at instruction \(failing): \(file):\(best.line):\(best.column): \(text.trimmingLeadingSpace)"
    }
}

/// Program BTF loaded into the kernel (BPF_BTF_LOAD), owned through its fd.
public final class LoadedBTF: @unchecked Sendable {
    public let fd: OwnedFD
    init(fd: consuming OwnedFD) { self.fd = fd }
}

/// Facts about the running kernel that loading needs.
public enum KernelInfo {
    /// uname's release string, e.g. "6.18.44-fc".
    public static var release: String {
        var u = utsname()
        uname(&u)
        return withUnsafeBytes(of: u.release) { String(decoding: $0.prefix { $0 != 0 }, as: UTF8.self) }
    }

    /// LINUX_VERSION_CODE for the running kernel (a.b.c -> a<<16 | b<<8 | min(c, 255)).
    public static var versionCode: UInt32 {
        let parts = release.split(whereSeparator: { !$0.isNumber }).prefix(3).map { UInt32($0) ?? 0 }
        let p = parts + [0, 0, 0]
        return p[0] << 16 | p[1] << 8 | min(p[2], 255)
    }

    /// The kernel config as NAME -> value, from /boot/config-<release> or /proc/config.gz.
    public static func config() -> [String: String] {
        var text: String?
        if let b = try? Bytes.read(path: "/boot/config-\(release)") {
            text = String(decoding: b.buffer, as: UTF8.self)
        } else if access("/proc/config.gz", R_OK) == 0, let pipe = popen("gzip -dc /proc/config.gz 2>/dev/null", "r") {
            var data: [UInt8] = []
            var buf = [UInt8](repeating: 0, count: 65536)
            while true {
                let n = fread(&buf, 1, buf.count, pipe)
                if n <= 0 { break }
                data += buf[0..<n]
            }
            pclose(pipe)
            text = String(decoding: data, as: UTF8.self)
        }
        var out: [String: String] = [:]
        for line in (text ?? "").split(separator: "\n") where line.hasPrefix("CONFIG_") {
            guard let eq = line.firstIndex(of: "=") else { continue }
            var value = line[line.index(after: eq)...]
            if value.hasPrefix("\"") && value.hasSuffix("\"") && value.count >= 2 { value = value.dropFirst().dropLast() }
            out[String(line[..<eq])] = String(value)
        }
        return out
    }
}
