import PlumbAsm
import PlumbSys
import PlumbBTF
import PlumbELF

/// Everything a clang-compiled BPF object says: maps, global data, programs (subprograms
/// linked in), BTF and .BTF.ext. Pure: nothing here touches the kernel.
public struct ObjectSpec: Sendable {
    /// The object's name (file name without directories and `.o`/`.bpf.o`), used to name
    /// the global-data maps as libbpf does (`<name>.data`, truncated to fit 15 characters).
    public var name: String
    public var path: String
    public var order: ByteOrder
    public var license: String
    public var kernelVersion: UInt32
    public var btf: BTF?
    public var btfExt: BTFExt?
    /// Maps in definition order: BTF-defined maps, then global-data maps.
    public var maps: [MapSpec]
    public var programs: [ProgramSpec]
    /// `.kconfig` and `.ksyms` externs the programs use.
    public var externs: [Extern]

    public struct Extern: Sendable, Equatable {
        public enum Kind: Sendable, Equatable { case kconfig, ksymVariable, ksymFunction }
        public var name: String
        public var kind: Kind
        /// The extern's type in the object's BTF (0 when unknown).
        public var type: TypeID
        public var isWeak: Bool
        /// Where a `.kconfig` value sits in the `.kconfig` map.
        public var offset: UInt32
        public var size: UInt32
    }

    public func map(_ name: String) -> MapSpec? { maps.first { $0.name == name } }
    public func program(_ name: String) -> ProgramSpec? { programs.first { $0.name == name } }

    /// An object built in memory (the tracer's path): no ELF involved.
    public init(name: String, maps: [MapSpec], programs: [ProgramSpec], btf: BTF? = nil, license: String = "GPL") {
        self.name = name
        self.path = name
        self.order = .host
        self.license = license
        self.kernelVersion = 0
        self.btf = btf
        self.btfExt = nil
        self.maps = maps
        self.programs = programs
        self.externs = []
    }
}

/// How a map is pinned on bpffs (the `pinning` attribute of BTF-defined maps).
public enum MapPinning: UInt32, Sendable {
    case none = 0
    /// Pinned at <bpffs>/<map name>, reused when already there.
    case byName = 1
}

/// A typed global variable of a data section.
public struct GlobalVariable: Sendable, Equatable {
    public var name: String
    public var offset: UInt32
    public var size: UInt32
    /// The variable's type in the object's BTF (0 when the object has none).
    public var type: TypeID
    public var isStatic: Bool
}

/// What the ELF says about a map; the kernel object is made from it at load time.
public struct MapSpec: Sendable {
    public var name: String
    public var type: MapType
    public var keySize: UInt32
    public var valueSize: UInt32
    public var maxEntries: UInt32
    public var flags: UInt32
    public var numaNode: UInt32?
    public var pinning: MapPinning
    public var mapExtra: UInt64
    /// Key and value types in the object's BTF (0 when unknown).
    public var keyType: TypeID
    public var valueType: TypeID
    /// Map-in-map: the inner map's definition.
    public var innerMap: InnerMapSpec?
    /// Map-in-map: inner maps to store at load time (slot -> map name).
    public var initialInnerMaps: [(slot: UInt32, map: String)]
    /// Global data: the section this map backs (.data, .rodata, .bss, .data.foo, .kconfig).
    public var dataSection: String?
    /// Global data: initial contents (zeros for .bss).
    public var contents: [UInt8]
    /// Global data: the section's variables.
    public var variables: [GlobalVariable]

    public init(name: String, type: MapType, keySize: UInt32, valueSize: UInt32, maxEntries: UInt32,
                flags: UInt32 = 0, numaNode: UInt32? = nil, pinning: MapPinning = .none, mapExtra: UInt64 = 0,
                keyType: TypeID = 0, valueType: TypeID = 0, innerMap: InnerMapSpec? = nil) {
        self.name = name; self.type = type; self.keySize = keySize; self.valueSize = valueSize
        self.maxEntries = maxEntries; self.flags = flags; self.numaNode = numaNode; self.pinning = pinning
        self.mapExtra = mapExtra; self.keyType = keyType; self.valueType = valueType; self.innerMap = innerMap
        initialInnerMaps = []
        dataSection = nil
        contents = []
        variables = []
    }

    /// Read-only global data is frozen after its contents are written.
    public var isReadOnlyData: Bool {
        guard let s = dataSection else { return false }
        return s == ".rodata" || s.hasPrefix(".rodata.") || s == ".kconfig"
    }

    /// The variable named `name`, for setting globals before load.
    public func variable(_ name: String) -> GlobalVariable? { variables.first { $0.name == name } }
}

/// A map-in-map's inner definition (a class so MapSpec can hold one recursively).
public final class InnerMapSpec: Sendable {
    public let spec: MapSpec
    public init(_ spec: MapSpec) { self.spec = spec }
}

/// What one instruction refers to outside the program, resolved at load time.
public enum ProgramReference: Sendable, Equatable {
    /// ld_imm64 of a map's fd (BPF_PSEUDO_MAP_FD).
    case map(String)
    /// ld_imm64 of the address of a map's value at `offset` (BPF_PSEUDO_MAP_VALUE): globals.
    case mapValue(String, offset: UInt32)
    /// A `.kconfig` extern: the kernel config or version value the loader fills in.
    case kconfig(String)
    /// A `.ksyms` extern variable (ld_imm64 BPF_PSEUDO_BTF_ID) or kfunc call, by kernel name.
    case ksym(String, isFunction: Bool)
}

/// A function's BTF id at an instruction (func_info), after linking.
public struct FunctionInfo: Sendable, Equatable {
    /// Instruction index in the program (converted to a slot at load time).
    public var slot: Int
    public var type: TypeID
    public init(slot: Int, type: TypeID) { self.slot = slot; self.type = type }
}

/// A source line at an instruction (line_info), after linking.
public struct LineInfo: Sendable, Equatable {
    public var slot: Int
    public var fileNameOffset: UInt32
    public var lineOffset: UInt32
    public var line: UInt32
    public var column: UInt32
    public init(slot: Int, fileNameOffset: UInt32, lineOffset: UInt32, line: UInt32, column: UInt32) {
        self.slot = slot; self.fileNameOffset = fileNameOffset; self.lineOffset = lineOffset; self.line = line; self.column = column
    }
}

/// What the ELF says about one program, with its subprograms linked in (appended after the
/// entry function, calls patched), so each ProgramSpec loads on its own.
public struct ProgramSpec: Sendable {
    public var name: String
    public var section: String
    public var kind: ProgramKind
    public var instructions: [Instruction]
    /// Instruction index (not slot) -> what it refers to.
    public var references: [Int: ProgramReference]
    public var license: String
    public var kernelVersion: UInt32
    public var functionInfo: [FunctionInfo]
    public var lineInfo: [LineInfo]
    /// CO-RE relocations as (instruction index, relocation).
    public var coreRelocations: [(index: Int, relocation: CORERelocation)]
    /// Where each linked function starts: name -> instruction index.
    public var functions: [(name: String, index: Int)]

    public init(name: String, kind: ProgramKind, instructions: [Instruction], license: String = "GPL",
                references: [Int: ProgramReference] = [:]) {
        self.name = name
        self.section = ""
        self.kind = kind
        self.instructions = instructions
        self.references = references
        self.license = license
        self.kernelVersion = 0
        self.functionInfo = []
        self.lineInfo = []
        self.coreRelocations = []
        self.functions = [(name, 0)]
    }

    public var type: ProgramType { kind.type }
}
