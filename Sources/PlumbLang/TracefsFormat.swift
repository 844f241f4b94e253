// A tracepoint's tracefs `format` file: the record's fields with their C type text,
// offset, size and signedness (`field:const char * filename;	offset:24;	size:8;	signed:0;`).

public struct TracefsField: Sendable, Hashable {
    /// The C type without the field name: `const char *`, `__data_loc char[]`, `char[16]`, `pid_t`.
    public var type: String
    public var name: String
    public var offset: Int
    public var size: Int
    public var signed: Bool
    /// `char comm[16]`: 16; nil when not an array.
    public var arrayLength: Int?
    public init(type: String, name: String, offset: Int, size: Int, signed: Bool, arrayLength: Int?) {
        self.type = type; self.name = name; self.offset = offset; self.size = size; self.signed = signed; self.arrayLength = arrayLength
    }
    public var isDataLoc: Bool { type.hasPrefix("__data_loc") }
    /// `char *`, also `const struct x *const` (a const pointer is a pointer).
    public var isPointer: Bool { type.replacingConst.hasSuffix("*") }
}

public enum TracefsFormat {
    /// The fields after the common ones (`common_*` are dropped, as bpftrace's `args` has none).
    public static func parse(_ text: String) -> [TracefsField] {
        var out: [TracefsField] = []
        for raw in text.split(separator: "\n") {
            let line = raw.drop { $0 == " " || $0 == "\t" }
            guard line.hasPrefix("field:") else { continue }
            var decl = "", offset: Int?, size: Int?, signed = false
            for part in line.split(separator: ";") {
                let p = part.drop { $0 == " " || $0 == "\t" }
                if p.hasPrefix("field:") { decl = String(p.dropFirst(6)) }
                else if p.hasPrefix("offset:") { offset = Int(p.dropFirst(7)) }
                else if p.hasPrefix("size:") { size = Int(p.dropFirst(5)) }
                else if p.hasPrefix("signed:") { signed = p.dropFirst(7) == "1" }
            }
            guard let offset, let size, offset >= 0, size >= 0 else { continue }
            // Split "TYPE NAME" or "TYPE NAME[N]": the name is the last identifier.
            var d = decl.trimmingSpaces
            var arrayLength: Int?
            if d.hasSuffix("]"), let open = d.lastIndex(of: "[") {
                let inside = d[d.index(after: open)..<d.index(before: d.endIndex)]
                arrayLength = Int(inside) ?? 0
                d = String(d[..<open])
            }
            guard let nameStart = d.lastIndex(where: { !($0.isLetter || $0.isNumber || $0 == "_") }) else { continue }
            let name = String(d[d.index(after: nameStart)...])
            // Address-space words (`void __seg_gs *`, sparse's `__user`) are not part of the C type
            // the checker reads; BTF drops them too.
            var type = String(d[...nameStart]).split(separator: " ")
                .filter { !["__seg_gs", "__seg_fs", "__percpu", "__user", "__rcu", "__iomem", "__force"].contains($0) }.joined(separator: " ")
            if let n = arrayLength, !type.hasPrefix("__data_loc") { type += "[\(n)]" }
            if name.hasPrefix("common_") || name.isEmpty { continue }
            out.append(TracefsField(type: type, name: name, offset: offset, size: size, signed: signed,
                                    arrayLength: type.hasPrefix("__data_loc") ? nil : arrayLength))
        }
        return out
    }

    static func isPlainName(_ s: String) -> Bool {
        !s.isEmpty && s != "." && s != ".." && !s.contains("/")
    }
}

extension StringProtocol {
    var trimmingSpaces: String {
        var s = Substring(self)
        while let f = s.first, f == " " || f == "\t" { s = s.dropFirst() }
        while let l = s.last, l == " " || l == "\t" { s = s.dropLast() }
        return String(s)
    }
}
