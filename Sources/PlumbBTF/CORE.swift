import PlumbELF

/// The CO-RE relocation kinds (enum bpf_core_relo_kind in the kernel's UAPI).
public enum CORERelocationKind: UInt32, Sendable, CaseIterable, CustomStringConvertible {
    case fieldByteOffset = 0
    case fieldByteSize = 1
    case fieldExists = 2
    case fieldSigned = 3
    case fieldLShiftU64 = 4
    case fieldRShiftU64 = 5
    case typeIDLocal = 6
    case typeIDTarget = 7
    case typeExists = 8
    case typeSize = 9
    case enumValueExists = 10
    case enumValue = 11
    case typeMatches = 12

    /// libbpf's name for the kind, as its logs and bpftool print it.
    public var name: String {
        switch self {
        case .fieldByteOffset: return "byte_off"
        case .fieldByteSize: return "byte_sz"
        case .fieldExists: return "field_exists"
        case .fieldSigned: return "signed"
        case .fieldLShiftU64: return "lshift_u64"
        case .fieldRShiftU64: return "rshift_u64"
        case .typeIDLocal: return "local_type_id"
        case .typeIDTarget: return "target_type_id"
        case .typeExists: return "type_exists"
        case .typeMatches: return "type_matches"
        case .typeSize: return "type_size"
        case .enumValueExists: return "enumval_exists"
        case .enumValue: return "enumval_value"
        }
    }
    public var description: String { name }

    public var isFieldBased: Bool { rawValue <= 5 }
    public var isTypeBased: Bool { (6...9).contains(rawValue) || self == .typeMatches }
    public var isEnumValueBased: Bool { self == .enumValueExists || self == .enumValue }
}

/// One CO-RE relocation record (struct bpf_core_relo), with its access string resolved.
public struct CORERelocation: Sendable, Equatable {
    /// Byte offset of the instruction from the start of its ELF section.
    public var insnOffset: UInt32
    /// The local (object's) BTF type the access starts from.
    public var typeID: TypeID
    /// Colon-separated indices, e.g. `0:1:2` (member 1 of *p, then member/element 2 of that).
    public var accessString: String
    public var kind: CORERelocationKind
    /// String offset of `accessString` in the object's BTF (kept for messages and re-encoding).
    public var accessStringOffset: UInt32

    public init(insnOffset: UInt32, typeID: TypeID, accessString: String, kind: CORERelocationKind, accessStringOffset: UInt32 = 0) {
        self.insnOffset = insnOffset; self.typeID = typeID; self.accessString = accessString
        self.kind = kind; self.accessStringOffset = accessStringOffset
    }

    /// Instruction index within the section.
    public var instructionIndex: Int { Int(insnOffset / 8) }
}

/// The outcome of resolving one relocation against the target BTF: what the instruction
/// holds now (`localValue`) and what it must hold (`targetValue`), libbpf's bpf_core_relo_res.
public struct CORESolution: Sendable, Equatable {
    public var kind: CORERelocationKind
    public var localValue: UInt64
    public var targetValue: UInt64
    /// No target matched: the instruction is replaced by an invalid call (dead code if guarded).
    public var poison: Bool
    /// Whether the instruction's current value must equal `localValue` before patching.
    public var validate: Bool
    /// Load/store size would change in a way that changes the value read: poison LDX/ST/STX.
    public var failMemorySizeAdjust: Bool
    /// Field sizes for load/store size adjustment (0 when not a plain field offset).
    public var localSize: UInt32
    public var targetSize: UInt32
    /// libbpf-style spec of the local access, e.g. `struct foo.a[2].b (0:1:2:0 @ offset 12)`.
    public var localSpec: String
    /// The spec of the (first) matching target candidate; nil when none matched.
    public var targetSpec: String?
    /// The matching target type: index into the resolver's targets and its id.
    public var targetBTF: Int?
    public var targetTypeID: TypeID?
    /// Matching candidates (all agreed on the value).
    public var candidates: Int

    public init(kind: CORERelocationKind, localValue: UInt64, targetValue: UInt64, poison: Bool = false, validate: Bool = true,
                failMemorySizeAdjust: Bool = false, localSize: UInt32 = 0, targetSize: UInt32 = 0, localSpec: String = "",
                targetSpec: String? = nil, targetBTF: Int? = nil, targetTypeID: TypeID? = nil, candidates: Int = 0) {
        self.kind = kind; self.localValue = localValue; self.targetValue = targetValue; self.poison = poison
        self.validate = validate; self.failMemorySizeAdjust = failMemorySizeAdjust; self.localSize = localSize
        self.targetSize = targetSize; self.localSpec = localSpec; self.targetSpec = targetSpec; self.targetBTF = targetBTF
        self.targetTypeID = targetTypeID; self.candidates = candidates
    }
}

/// Why a CO-RE relocation cannot be resolved or applied (the reason of
/// `BTFError.relocation`, whose message names the relocation, the instruction, the kind and
/// the access spec, as libbpf's log does).
public enum COREReason: Sendable, Equatable {
    /// The access string does not parse or does not fit the local type.
    case badAccessString(String)
    /// The relocation names a type id the object's BTF does not have.
    case noSuchType(TypeID)
    /// libbpf does not search candidates for anonymous types.
    case anonymousType
    /// Two matching candidates put the field at different bit offsets.
    case fieldOffsetAmbiguity(UInt64, UInt64)
    /// Two matching candidates give different values or decisions.
    case decisionAmbiguity(poison: Bool, value: UInt64, otherPoison: Bool, otherValue: UInt64)
    /// A bitfield that a 64-bit load cannot hold.
    case bitfieldTooWide
    /// The kind cannot apply to an array element access (only byte_off and byte_sz can).
    case arrayAccess
    /// The BTF is malformed where the relocation looks.
    case badBTF(String)
    /// The instruction does not hold the value the local types predict.
    case unexpectedValue(instructionClass: String, got: Int64, expected: UInt64, new: UInt64)
    /// The new offset does not fit the instruction's signed 16-bit offset.
    case offsetTooBig(UInt64)
    case unexpectedMemorySize(got: Int, expected: UInt32)
    case invalidMemorySize(UInt32)
    /// The instruction is of a form CO-RE cannot patch.
    case unsupportedInstruction(code: UInt8)
    case malformedLDImm64
    /// The relocation points outside the section's instructions.
    case instructionOutOfRange(offset: UInt32, count: Int)

    func description(kind: CORERelocationKind) -> String {
        switch self {
        case .badAccessString(let r): return "bad access string: \(r)"
        case .noSuchType(let id): return "type [\(id)] does not exist in the object's BTF"
        case .anonymousType: return "relocations against anonymous types are not supported; name the type"
        case .fieldOffsetAmbiguity(let a, let b):
            return "field offset ambiguity: target candidates put the field at bit \(a) and bit \(b); use a ___flavor of the type to pick one"
        case .decisionAmbiguity(let p, let v, let op, let ov):
            return "relocation decision ambiguity: \(p ? "failure" : "success") \(v) != \(op ? "failure" : "success") \(ov); target types with this name disagree"
        case .bitfieldTooWide: return "the bitfield cannot be read with a 64-bit load"
        case .arrayAccess: return "\(kind.name) cannot be applied to an array element access"
        case .badBTF(let r): return "malformed BTF: \(r)"
        case .unexpectedValue(let c, let got, let exp, let new):
            return "unexpected \(c) value: instruction has \(got), local types say \(exp) (-> \(new)); the object's BTF and code disagree"
        case .offsetTooBig(let v): return "new offset \(v) does not fit the instruction's 16-bit offset"
        case .unexpectedMemorySize(let got, let exp): return "unexpected memory access size: instruction reads \(got) bytes, the field has \(exp)"
        case .invalidMemorySize(let n): return "the target field's size \(n) is not a load/store size (1, 2, 4, 8)"
        case .unsupportedInstruction(let code): return "cannot relocate instruction with opcode 0x\(String(code, radix: 16))"
        case .malformedLDImm64: return "ld_imm64 instruction has an unexpected form"
        case .instructionOutOfRange(let off, let n): return "instruction offset \(off) is outside the section (\(n) instructions) or not 8-byte aligned"
        }
    }
}

extension COREResolver {
    /// A human-readable account of one relocation's outcome, for object dumps:
    /// `CO-RE byte_off struct task_struct.pid: 1234 -> 2456` or
    /// `CO-RE byte_off struct task_struct.nope: poisoned: field task_struct.nope not found in target`.
    public static func describe(_ r: CORERelocation, _ s: CORESolution) -> String {
        // The spec minus its "[id] " prefix and " (0:1 @ offset n)" suffix.
        var what = s.localSpec
        if let close = what.firstIndex(of: "]") { what = String(what[what.index(after: close)...]).trimmingCharacters(inSpaceSet: true) }
        if r.kind.isFieldBased, let paren = what.range(of: " (", options: .backwards) { what = String(what[..<paren.lowerBound]) }
        let head = "CO-RE \(r.kind.name) \(what)"
        if s.poison {
            let bare = what.split(separator: " ", maxSplits: 1).last.map(String.init) ?? what
            let noun = r.kind.isEnumValueBased ? "enumerator" : r.kind.isFieldBased ? "field" : "type"
            return "\(head): poisoned: \(noun) \(bare) not found in target"
        }
        if s.failMemorySizeAdjust {
            return "\(head): poisoned: the field's size changed from \(s.localSize) to \(s.targetSize) bytes and it is not an unsigned integer or a pointer, so a resized load would misread it"
        }
        if r.kind == .fieldExists || r.kind == .typeExists || r.kind == .enumValueExists || r.kind == .typeMatches {
            return "\(head): \(s.targetValue == 1 ? "yes" : "no") in target"
        }
        return "\(head): \(s.localValue) -> \(s.targetValue)"
    }
}

extension String {
    fileprivate func trimmingCharacters(inSpaceSet: Bool) -> String {
        var s = Substring(self)
        while s.first == " " { s.removeFirst() }
        while s.last == " " { s.removeLast() }
        return String(s)
    }
    fileprivate func range(of needle: String, options: BackwardsOption) -> Range<String.Index>? {
        var i = endIndex
        while i > startIndex {
            i = index(before: i)
            if self[i...].hasPrefix(needle) { return i..<index(i, offsetBy: needle.count) }
        }
        return nil
    }
    fileprivate enum BackwardsOption { case backwards }
}

// MARK: - Names

extension BTF {
    /// libbpf's "essential" name length: the name without a `___flavor` suffix (the last `X___Y`
    /// where X and Y are not underscores).
    static func coreEssentialNameLength(_ name: String) -> Int {
        let u = Array(name.utf8)
        let n = u.count
        var i = n - 5
        while i >= 0 {
            if u[i] != 0x5f && u[i + 1] == 0x5f && u[i + 2] == 0x5f && u[i + 3] == 0x5f && u[i + 4] != 0x5f {
                return i + 1
            }
            i -= 1
        }
        return n
    }

    /// The name without its `___flavor` suffix.
    public static func coreEssentialName(_ name: String) -> String {
        String(decoding: Array(name.utf8).prefix(coreEssentialNameLength(name)), as: UTF8.self)
    }

    /// libbpf's lower-case kind names used in CO-RE specs.
    static func coreKindString(_ k: BTFKind) -> String {
        switch k {
        case .unknown: return "void"
        case .int: return "int"
        case .pointer: return "ptr"
        case .array: return "array"
        case .struct: return "struct"
        case .union: return "union"
        case .enum: return "enum"
        case .forward: return "fwd"
        case .typedef: return "typedef"
        case .volatile: return "volatile"
        case .const: return "const"
        case .restrict: return "restrict"
        case .function: return "func"
        case .functionProto: return "func_proto"
        case .variable: return "var"
        case .dataSection: return "datasec"
        case .float: return "float"
        case .declTag: return "decl_tag"
        case .typeTag: return "type_tag"
        case .enum64: return "enum64"
        }
    }
}
