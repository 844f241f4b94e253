import PlumbSys
import PlumbBTF

/// What the kernel holds for one object: its maps and programs, created from an ObjectSpec
/// (CO-RE applied, references resolved) — the pair ObjectSpec/Object is as MapSpec/Map.
/// Released objects are closed; nothing stays in the kernel unless pinned or attached.
public final class Object: @unchecked Sendable {
    public let spec: ObjectSpec
    public let maps: [String: Map]
    public let programs: [String: Program]
    /// CO-RE patches applied, per program (for logs and dumps).
    public let relocations: [String: [AppliedRelocation]]
    /// The object's BTF as the kernel holds it (nil when the kernel refused it or there was none).
    public let btf: LoadedBTF?

    /// Reads and loads the object at `path`.
    public convenience init(path: String, options: LoadOptions = LoadOptions()) throws(BPFError) {
        try self.init(spec: try ObjectSpec(path: path), options: options)
    }

    /// Loads `spec` (see `ObjectLoader`).
    public init(spec: ObjectSpec, options: LoadOptions = LoadOptions()) throws(BPFError) {
        let loaded = try ObjectLoader.load(spec, options: options)
        self.spec = loaded.spec
        self.maps = loaded.maps
        self.programs = loaded.programs
        self.relocations = loaded.relocations
        self.btf = loaded.btf
    }

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

    /// Attaches program `name` as its section says (libbpf's auto-attach); nil for programs whose
    /// section names no target (`SEC("uprobe")`: the caller attaches those) or that do not
    /// auto-attach. `program(name).attach()` is the same, but throws for those.
    public func attach(_ name: String, options: AttachOptions = AttachOptions()) throws(BPFError) -> Link? {
        let program = try self.program(name)
        guard program.kind?.attachPoint.isAutomatic ?? false else { return nil }
        return try program.attach(options)
    }
}

/// Program BTF loaded into the kernel (BPF_BTF_LOAD), owned through its fd; maps and programs
/// of the object refer to it by fd while they load.
public final class LoadedBTF: @unchecked Sendable {
    public let fd: OwnedFD
    init(fd: consuming OwnedFD) { self.fd = fd }
}
