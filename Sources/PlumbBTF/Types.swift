import PlumbELF

/// A BTF type id. 0 is `void`; in split BTF, ids continue after the base's last id.
public typealias TypeID = UInt32

/// The kinds the kernel defines (include/uapi/linux/btf.h).
public enum BTFKind: UInt8, Sendable, CaseIterable {
    case unknown = 0, int, pointer, array, `struct`, union, `enum`, forward, typedef,
         volatile, const, restrict, function, functionProto, variable, dataSection,
         float, declTag, typeTag, enum64

    /// The name bpftool prints.
    public var name: String {
        switch self {
        case .unknown: return "UNKNOWN"
        case .int: return "INT"
        case .pointer: return "PTR"
        case .array: return "ARRAY"
        case .struct: return "STRUCT"
        case .union: return "UNION"
        case .enum: return "ENUM"
        case .forward: return "FWD"
        case .typedef: return "TYPEDEF"
        case .volatile: return "VOLATILE"
        case .const: return "CONST"
        case .restrict: return "RESTRICT"
        case .function: return "FUNC"
        case .functionProto: return "FUNC_PROTO"
        case .variable: return "VAR"
        case .dataSection: return "DATASEC"
        case .float: return "FLOAT"
        case .declTag: return "DECL_TAG"
        case .typeTag: return "TYPE_TAG"
        case .enum64: return "ENUM64"
        }
    }

    /// Kinds whose third word is a size (the others reference a type there).
    public var hasSize: Bool {
        switch self {
        case .int, .struct, .union, .enum, .dataSection, .float, .enum64: return true
        default: return false
        }
    }

    public var isComposite: Bool { self == .struct || self == .union }
    public var isEnum: Bool { self == .enum || self == .enum64 }
    /// Modifiers and typedefs: kinds that only qualify or rename another type.
    public var isModifier: Bool {
        self == .volatile || self == .const || self == .restrict || self == .typeTag
    }
}

/// INT encoding bits.
public struct IntEncoding: OptionSet, Sendable, Hashable {
    public let rawValue: UInt8
    public init(rawValue: UInt8) { self.rawValue = rawValue }
    public static let signed = IntEncoding(rawValue: 1)
    public static let char = IntEncoding(rawValue: 2)
    public static let bool = IntEncoding(rawValue: 4)
}

public struct BTFInt: Equatable, Sendable {
    public var encoding: IntEncoding
    public var offset: UInt8
    public var bits: UInt8
    public init(encoding: IntEncoding, offset: UInt8, bits: UInt8) {
        self.encoding = encoding; self.offset = offset; self.bits = bits
    }
}

public struct BTFArray: Equatable, Sendable {
    public var elementType: TypeID
    public var indexType: TypeID
    public var count: UInt32
    public init(elementType: TypeID, indexType: TypeID, count: UInt32) {
        self.elementType = elementType; self.indexType = indexType; self.count = count
    }
}

/// A struct or union member. With the parent's kind_flag set, the raw offset word holds the
/// bitfield size in its top 8 bits; decoded here into two fields.
public struct BTFMember: Equatable, Sendable {
    public var name: String
    public var type: TypeID
    public var bitOffset: UInt32
    /// 0 when the member is not a bitfield.
    public var bitfieldSize: UInt8
    public init(name: String, type: TypeID, bitOffset: UInt32, bitfieldSize: UInt8 = 0) {
        self.name = name; self.type = type; self.bitOffset = bitOffset; self.bitfieldSize = bitfieldSize
    }
}

/// An enumerator. `value` holds the raw bits (32 bits for ENUM, 64 for ENUM64); signedness
/// comes from the enum's kind_flag.
public struct BTFEnumerator: Equatable, Sendable {
    public var name: String
    public var value: UInt64
    public init(name: String, value: UInt64) { self.name = name; self.value = value }
}

public struct BTFParam: Equatable, Sendable {
    public var name: String
    public var type: TypeID
    public init(name: String, type: TypeID) { self.name = name; self.type = type }
}

public struct BTFVarSecInfo: Equatable, Sendable {
    public var type: TypeID
    public var offset: UInt32
    public var size: UInt32
    public init(type: TypeID, offset: UInt32, size: UInt32) { self.type = type; self.offset = offset; self.size = size }
}

/// Linkage of FUNC (in vlen) and VAR (in the trailer).
public enum BTFLinkage: UInt32, Sendable {
    case `static` = 0, global = 1, external = 2
    public var name: String {
        switch self { case .static: return "static"; case .global: return "global"; case .external: return "extern" }
    }
}

/// One decoded BTF type: what the record says, with names resolved to strings.
public struct BTFType: Equatable, Sendable {
    public var kind: BTFKind
    /// Empty for anonymous types.
    public var name: String
    public var kindFlag: Bool
    /// `size` for sized kinds; the referenced type for PTR, TYPEDEF, modifiers, FUNC, VAR, tags.
    public var sizeOrType: UInt32
    public var payload: Payload

    public enum Payload: Equatable, Sendable {
        case none
        case int(BTFInt)
        case array(BTFArray)
        case members([BTFMember])
        case enumerators([BTFEnumerator])
        case params([BTFParam])
        /// FUNC linkage (kept in vlen by the format).
        case functionLinkage(UInt32)
        /// VAR linkage.
        case variableLinkage(UInt32)
        case sectionVariables([BTFVarSecInfo])
        /// DECL_TAG component index (-1 for the declaration itself).
        case componentIndex(Int32)
    }

    public init(kind: BTFKind, name: String = "", kindFlag: Bool = false, sizeOrType: UInt32 = 0, payload: Payload = .none) {
        self.kind = kind; self.name = name; self.kindFlag = kindFlag; self.sizeOrType = sizeOrType; self.payload = payload
    }

    public static let void = BTFType(kind: .unknown)

    public var size: UInt32 { kind.hasSize ? sizeOrType : 0 }
    /// The referenced type, for kinds that reference one.
    public var type: TypeID { kind.hasSize ? 0 : sizeOrType }
    public var isAnonymous: Bool { name.isEmpty }

    public var members: [BTFMember] { if case .members(let m) = payload { return m }; return [] }
    public var enumerators: [BTFEnumerator] { if case .enumerators(let e) = payload { return e }; return [] }
    public var params: [BTFParam] { if case .params(let p) = payload { return p }; return [] }
    public var sectionVariables: [BTFVarSecInfo] { if case .sectionVariables(let v) = payload { return v }; return [] }
    public var intInfo: BTFInt? { if case .int(let i) = payload { return i }; return nil }
    public var arrayInfo: BTFArray? { if case .array(let a) = payload { return a }; return nil }
    /// FUNC or VAR linkage.
    public var linkage: BTFLinkage? {
        switch payload {
        case .functionLinkage(let l), .variableLinkage(let l): return BTFLinkage(rawValue: l)
        default: return nil
        }
    }
    public var componentIndex: Int32? { if case .componentIndex(let c) = payload { return c }; return nil }

    /// For ENUM/ENUM64: whether enumerator values are signed (kind_flag).
    public var isSignedEnum: Bool { kind.isEnum && kindFlag }
    /// For FWD: whether the forward declaration is of a union (kind_flag).
    public var isUnionForward: Bool { kind == .forward && kindFlag }
    /// For DECL_TAG and TYPE_TAG: the tag is an attribute, not a btf_decl_tag (kind_flag).
    public var isAttributeTag: Bool { (kind == .declTag || kind == .typeTag) && kindFlag }

    /// The vlen the encoder writes for this type.
    public var vlen: Int {
        switch payload {
        case .members(let m): return m.count
        case .enumerators(let e): return e.count
        case .params(let p): return p.count
        case .sectionVariables(let v): return v.count
        case .functionLinkage(let l): return Int(l & 0xffff)
        default: return 0
        }
    }

    /// The type ids this type refers to, in record order.
    public var referencedTypes: [TypeID] {
        switch kind {
        case .pointer, .typedef, .volatile, .const, .restrict, .function, .variable, .declTag, .typeTag:
            return [sizeOrType]
        case .array:
            guard let a = arrayInfo else { return [] }
            return [a.elementType, a.indexType]
        case .struct, .union: return members.map(\.type)
        case .functionProto: return [sizeOrType] + params.map(\.type)
        case .dataSection: return sectionVariables.map(\.type)
        default: return []
        }
    }
}

/// Every error of PlumbBTF: decoding BTF and .BTF.ext, queries, and CO-RE relocation.
/// Each names the byte offset, type id or relocation at fault.
public enum BTFError: Error, CustomStringConvertible, Sendable, Equatable {
    case tooShort(Int)
    case badMagic(UInt16)
    case badVersion(UInt8)
    case badHeader(String)
    case truncatedType(id: TypeID, offset: Int)
    case unknownKind(id: TypeID, kind: UInt8, offset: Int)
    case badStringOffset(id: TypeID, offset: UInt32)
    case typeOutOfRange(id: TypeID, reference: TypeID)
    case noSuchType(TypeID)
    case notFound(String)
    /// A lookup by name was given the empty name (which only anonymous types have).
    case emptyName
    case ambiguous(String, [TypeID])
    case wrongKind(id: TypeID, expected: String, actual: BTFKind)
    case cycle(TypeID)
    /// Nesting (struct in struct, pointer to pointer) deeper than `limit` levels, refused
    /// before it exhausts the stack; no real type is anywhere near as deep.
    case tooDeep(id: TypeID, limit: Int)
    case badFieldPath(String)
    case noBTFSection(String)
    case invalid(id: TypeID, reason: String)
    /// The file at `path` could not be read, or is not a well-formed ELF file.
    case file(path: String, ELFError)

    // .BTF.ext. Offsets are bytes from the start of the block or header named.
    case extTooShort(Int)
    case extBadMagic(UInt16)
    case extBadVersion(UInt8)
    /// A header field (at `offset` in .BTF.ext) is inconsistent.
    case extBadHeader(offset: Int, String)
    /// A record or section header at `offset` in the named info block is malformed.
    case extBadRecord(what: String, offset: Int, String)
    /// A string offset that is outside .BTF's strings (or names an empty section).
    case extBadString(what: String, offset: Int, stringOffset: UInt32)

    /// CO-RE relocation number `index` (in its section) cannot be resolved or applied.
    /// `instruction`: its instruction index (nil when not known yet); `spec`: the local access
    /// (`struct foo.a.b (0:1:2 @ offset 8)`, or `[id] + access` when unparsed); `context`:
    /// where the instructions came from (section or program name).
    case relocation(index: Int, instruction: Int?, kind: CORERelocationKind, spec: String, context: String?, reason: COREReason)

    /// The reason of a `.relocation` error.
    public var coreReason: COREReason? {
        if case .relocation(_, _, _, _, _, let r) = self { return r }
        return nil
    }

    /// The instruction of a `.relocation` error.
    public var coreInstruction: Int? {
        if case .relocation(_, let insn, _, _, _, _) = self { return insn }
        return nil
    }

    public var description: String {
        switch self {
        case .tooShort(let n): return "not BTF: \(n) bytes is shorter than a BTF header (24 bytes); pass a raw BTF file or an ELF object with a .BTF section"
        case .badMagic(let m): return "not BTF: magic 0x\(String(m, radix: 16)) at offset 0 (expected 0xeb9f); pass a raw BTF file or an ELF object with a .BTF section"
        case .badVersion(let v): return "unsupported BTF version \(v) at offset 2 (only version 1 exists)"
        case .badHeader(let r): return "malformed BTF header: \(r)"
        case .truncatedType(let id, let off): return "BTF type [\(id)] at offset \(off) runs past the end of the type section"
        case .unknownKind(let id, let k, let off): return "BTF type [\(id)] at offset \(off) has unknown kind \(k); this BTF is newer than Plumb or corrupt"
        case .badStringOffset(let id, let off): return "BTF type [\(id)] names string offset \(off), outside the string section"
        case .typeOutOfRange(let id, let ref): return "BTF type [\(id)] refers to type [\(ref)], which does not exist"
        case .noSuchType(let id): return "no BTF type with id \(id)"
        case .notFound(let n): return "no BTF type named '\(n)'"
        case .emptyName: return "the type name is empty: give a type name, such as task_struct"
        case .ambiguous(let n, let ids): return "'\(n)' names several BTF types: \(ids.map { "[\($0)]" }.joined(separator: ", ")); qualify it (struct/union/enum/typedef)"
        case .wrongKind(let id, let exp, let act): return "BTF type [\(id)] is \(act.name), expected \(exp)"
        case .cycle(let id): return "BTF type graph has a cycle through type [\(id)]"
        case .tooDeep(let id, let limit): return "BTF type [\(id)] is nested more than \(limit) levels deep; Plumb stops there"
        case .badFieldPath(let r): return r
        case .noBTFSection(let p): return "\(p) has no .BTF section; compile with -g (clang -g -O2 -target bpf)"
        case .invalid(let id, let r): return "BTF type [\(id)] is invalid: \(r)"
        case .file(let path, let e):
            switch e {
            case .cannotRead, .notRegularFile: return e.description
            default: return "\(path): \(e)"
            }
        case .extTooShort(let n): return ".BTF.ext too short: \(n) bytes, a header needs at least 24"
        case .extBadMagic(let m): return ".BTF.ext: bad magic 0x\(String(m, radix: 16)) at offset 0 (expected 0xeb9f)"
        case .extBadVersion(let v): return ".BTF.ext: unsupported version \(v) at offset 2 (only version 1 exists)"
        case .extBadHeader(let o, let r): return ".BTF.ext: malformed header field at offset \(o): \(r)"
        case .extBadRecord(let w, let o, let r): return ".BTF.ext: malformed \(w) at offset \(o) of the \(w) block: \(r)"
        case .extBadString(let w, let o, let so): return ".BTF.ext: \(w) at offset \(o) of its block names string offset \(so), which is not a string in .BTF"
        case .relocation(let index, let instruction, let kind, let spec, let context, let reason):
            var s = "CO-RE relocation #\(index)"
            if let context { s += " in \(context)" }
            if let instruction { s += " at insn #\(instruction)" }
            return s + " (\(kind.name) \(spec)): " + reason.description(kind: kind)
        }
    }
}
