// DWARF-typed uprobes: `args.NAME` / `args->NAME` at `uprobe:PATH:FUNC` entry and a typed
// `retval` at uretprobe, with user pointers followed through DWARF struct types
// (`args.req->conn->user`) and the kernel types' diagnostics ("has no member named", did you
// mean). Debug info is loaded only when a probe asks for args or retval, so plain uprobes on
// stripped binaries keep working.
//
// DWARF types live in their own BTF (PlumbDWARF's conversion); the checker's `.record` ids are
// the kernel's, so records of binary k are tagged `userTypeBase + k * userTypeStride + id`
// and member lookups go to that binary's BTF.
import PlumbBTF
import PlumbDWARF

/// The DWARF state of one compile: binaries loaded, and which probe is which function.
final class UserTypes {
    struct Binary { var dwarf: DWARF; var btf: BTF }
    var binaries: [String: Result<Int, DWARFError>] = [:]
    var loaded: [Binary] = []
    /// Expanded probe name -> (binary path, function symbol).
    var functions: [String: (path: String, symbol: String)] = [:]
    /// Expanded probe name -> the probed address in its binary (uprobes, single-site usdt), for
    /// relocating var() by pt_regs->ip.
    var probeSites: [String: (path: String, address: UInt64)] = [:]
    /// Expanded usdt probe name -> its binary (sites in Compiler.usdtSites).
    var usdtPaths: [String: String] = [:]
}

let userTypeBase: TypeID = 0x4000_0000
let userTypeStride: TypeID = 0x0100_0000

/// pt_regs offsets of x86-64 DWARF registers 0-15 (rax rdx rcx rbx rsi rdi rbp rsp r8-r15).
let dwarfRegisterOffsets: [Int16] = [80, 96, 88, 40, 104, 112, 32, 152, 72, 64, 56, 48, 24, 16, 8, 0]

extension SType {
    /// The same type with every record id moved by `delta` (DWARF ids into the tagged range).
    func shiftingRecords(by delta: TypeID) -> SType {
        switch self {
        case .record(let id, let name, let size): return .record(id: id &+ delta, name: name, size: size)
        case .pointer(let t, let space): return .pointer(t.shiftingRecords(by: delta), space: space)
        case .array(let t, let n): return .array(t.shiftingRecords(by: delta), count: n)
        default: return self
        }
    }
}

extension Compiler {
    /// The binary's DWARF (loaded once per compile), or the reason there is none.
    func userDWARF(_ path: String) -> Result<Int, DWARFError> {
        if let r = userTypes.binaries[path] { return r }
        let r: Result<Int, DWARFError>
        do {
            let d = try DWARF.load(binary: path)
            userTypes.loaded.append(.init(dwarf: d, btf: try d.btf()))
            r = .success(userTypes.loaded.count - 1)
        } catch { r = .failure(error) }
        userTypes.binaries[path] = r
        return r
    }

    /// Converts a DWARF type id of binary `k` into the checker's type (records tagged).
    func userSType(_ id: TypeID, binary k: Int) -> SType {
        let u = userTypes.loaded[k]
        // Types first asked for now must be in the snapshot the member lookups use.
        if (try? u.btf.type(id)) == nil, let fresh = try? u.dwarf.btf() { userTypes.loaded[k].btf = fresh }
        return stype(fromBTF: id, btf: userTypes.loaded[k].btf, space: .user)
            .shiftingRecords(by: userTypeBase &+ TypeID(k) &* userTypeStride)
    }

    /// The binary's BTF and local id for a tagged record id, nil for kernel ids.
    func userRecord(_ id: TypeID) -> (k: Int, btf: BTF, local: TypeID)? {
        guard id >= userTypeBase else { return nil }
        let k = Int((id - userTypeBase) / userTypeStride)
        guard k < userTypes.loaded.count else { return nil }
        return (k, userTypes.loaded[k].btf, (id - userTypeBase) % userTypeStride)
    }

    /// The DWARF function of the uprobe being compiled, or an error explaining why there is none.
    func userFunction(_ e: Expr) -> (k: Int, function: DWARFFunction)? {
        guard let f = userTypes.functions[probeName] else { return nil }
        switch userDWARF(f.path) {
        case .failure(let err):
            error("cannot type the arguments of \(probeName): \(err)", e.range)
            return nil
        case .success(let k):
            do { return (k, try userTypes.loaded[k].dwarf.function(named: f.symbol)) } catch {
                self.error("cannot type the arguments of \(probeName): \(error)", e.range)
                return nil
            }
        }
    }

    /// `args` at a uprobe with a known function: the record whose fields are the parameters.
    func userArgs(_ e: Expr) -> Val? {
        guard userTypes.functions[probeName] != nil, case .registers(false, true) = context else { return nil }
        return Val(type: .args, loc: .imm(0))
    }

    /// `args.NAME` at a uprobe: the parameter where the SysV ABI puts it at entry (integer
    /// registers, the stack; SysVParameters.swift), typed from DWARF; read in UserParameters.swift.
    func userArgsField(_ name: String, _ e: Expr) -> Val? {
        guard userTypes.functions[probeName] != nil else { return nil }
        guard case .registers(false, true) = context else {
            error("args is only available at uprobe entry; use retval in uretprobes", e.range)
            return .poison
        }
        guard let (k, fn) = userFunction(e) else { return .poison }
        guard let i = fn.parameters.firstIndex(where: { $0.name == name }) else {
            error("function '\(fn.name)' has no parameter named '\(name)'", e.range,
                  notes: nearest(name, in: fn.parameters.map(\.name)).map { [.init("did you mean '\($0)'?")] } ?? [])
            return .poison
        }
        let p = fn.parameters[i]
        let t = userSType(p.type, binary: k)
        // Every parameter's type (and the return type) must be in the BTF snapshot classified.
        for q in fn.parameters { _ = userSType(q.type, binary: k) }
        if fn.returnType != 0 { _ = userSType(fn.returnType, binary: k) }
        let places = SysVClassifier(btf: userTypes.loaded[k].btf)
            .places(parameters: fn.parameters.map(\.type), returnType: fn.returnType)
        return userParameter(name, of: fn.name, type: t, place: places[i], location: p.location.expression(at: fn.lowPC), e)
    }

    /// `retval` at a uretprobe: rax typed by the DWARF return type (nil: no DWARF, keep it untyped).
    func userRetval() -> Val? {
        guard let f = userTypes.functions[probeName], case .registers(true, true) = context,
              case .success(let k) = userDWARF(f.path), let fn = try? userTypes.loaded[k].dwarf.function(named: f.symbol) else { return nil }
        let t = userSType(fn.returnType, binary: k)
        guard t.isScalar else { return nil }
        b.emit(.load(.r0, .r6, offset: PtRegs.ax, size: .doubleWord))
        convert(.r0, to: t)
        return result(t, from: .r0)
    }

    /// A type named in a cast inside a uprobe/usdt probe, from the probed binary's DWARF when it
    /// defines it (`(struct request *)arg0`): the program's own types win over the kernel's there.
    /// nil elsewhere, or when the binary has no debug info or no such type.
    func userCastType(_ name: String) -> SType? {
        guard case .registers(_, true) = context,
              let path = userTypes.functions[probeName]?.path ?? userTypes.probeSites[probeName]?.path ?? userTypes.usdtPaths[probeName],
              case .success(let k) = userDWARF(path), let id = try? userTypes.loaded[k].dwarf.typeID(named: name) else { return nil }
        return userSType(id, binary: k)
    }

    /// A member of a DWARF record (nil for kernel records).
    func userMember(_ name: String, of id: TypeID, base: Loc, offset: Int, space: AddressSpace, _ e: Expr) -> Val? {
        guard let (k, ubtf, local) = userRecord(id) else { return nil }
        guard let m = try? ubtf.findMember(name, in: local) else {
            let names = (try? ubtf.memberNames(local)) ?? []
            error("'\(ubtf.cTypeName(local))' has no member named '\(name)'", e.range,
                  notes: nearest(name, in: names).map { [.init("did you mean '\($0)'?")] } ?? [])
            release(Val(type: .u64, loc: base))
            return .poison
        }
        let t = userSType(m.type, binary: k)
        if m.bitfieldSize > 0 {
            let startByte = Int(m.bitOffset / 8) & ~7
            return access(.u64, base: base, offset: offset + startByte, space: space, e,
                          bitfield: (Int(m.bitOffset) - startByte * 8, Int(m.bitfieldSize)))
        }
        return access(t, base: base, offset: offset + Int(m.bitOffset / 8), space: space, e)
    }

}

public enum UserDebugInfo {
    /// `-lv uprobe:PATH:FUNC`: the function's typed parameters (`struct request * req`), empty
    /// without DWARF.
    public static func parameterLines(binary path: String, function: String) -> [String] {
        guard let d = try? DWARF.load(binary: path), let f = try? d.function(named: function), let btf = try? d.btf() else { return [] }
        return f.parameters.map { btf.cTypeName($0.type) + " " + $0.name }
    }
}
