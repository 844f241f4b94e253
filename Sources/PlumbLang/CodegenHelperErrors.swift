// -k / -kk as bpftrace 0.17 reports failing helpers: each failure, when it happens, is a
// ring-buffer record (action `.helperError`, the helper's return value at offset 8) that the
// runtime prints in the output stream:
//   stdin:1:14-15: WARNING: Failed to probe_read_kernel: Bad address (-14)
//   <the script line>
//   <tildes under the site>
// -k checks every checked helper but the reads (probe_read*); -kk the reads too.
import PlumbAsm

extension Compiler {
    static let helperNames: [Int32: String] = [
        1: "map_lookup_elem", 2: "map_update_elem", 3: "map_delete_elem", 4: "probe_read", 45: "probe_read_str",
        112: "probe_read_user", 113: "probe_read_kernel", 114: "probe_read_user_str", 115: "probe_read_kernel_str",
    ]

    /// Whether a failure of `counter`'s kind is reported at this -k level.
    func reportsHelperFailure(_ counter: RuntimeCounter) -> Bool {
        options.reportHelperErrors && (counter != .probeReadFailed || options.reportReadErrors)
    }

    /// Where a failing helper is blamed, as bpftrace points: a dereference's `*`, an assignment's
    /// `=`, else the innermost expression being compiled, else the statement.
    func helperSiteRange() -> SourceRange {
        if let e = siteExpr {
            if case .unary(.dereference, _) = e.kind { return SourceRange(e.range.start, e.range.start + 1) }
            return e.range
        }
        // A statement: its assignment operator when it has one (`@m[k] = v`).
        let bytes = Array(file.text.utf8)
        let r = currentStatement
        guard r.start < r.end, r.end <= bytes.count else { return r }
        var depth = 0
        var i = r.start
        while i < r.end {
            let c = bytes[i]
            if c == UInt8(ascii: "(") || c == UInt8(ascii: "[") || c == UInt8(ascii: "{") { depth += 1 }
            if c == UInt8(ascii: ")") || c == UInt8(ascii: "]") || c == UInt8(ascii: "}") { depth -= 1 }
            if depth == 0, c == UInt8(ascii: "="), i + 1 < bytes.count, bytes[i + 1] != UInt8(ascii: "=") {
                return SourceRange(i, i + 1)
            }
            i += 1
        }
        return r
    }

    /// The action a failure at the current site reports: its id (in `actions`).
    func helperErrorAction(_ helper: Int32, site: SourceRange? = nil) -> Int {
        let range = site ?? helperSiteRange()
        let (line, column) = file.location(of: range.start)
        let (endLine, endColumn) = file.location(of: max(range.start, range.end))
        let source = file.line(line)
        let location = endLine == line ? "\(file.name):\(line):\(column)-\(max(endColumn, column + 1))" : "\(file.name):\(line)-\(endLine)"
        let width = endLine == line ? max(1, endColumn - column) : max(1, source.utf8.count - column + 1)
        let excerpt = source + "\n" + String(repeating: " ", count: max(0, column - 1)) + String(repeating: "~", count: width) + "\n"
        actions.append(.helperError(helper: Self.helperNames[helper] ?? "helper \(helper)", location: location,
                                    line: line, column: column, excerpt: excerpt))
        useEvents("-k/-kk (a report of each failed helper call)")
        return actions.count - 1
    }

    /// The failure branch of a checked helper (r0 its negative result): the counter stub bumps
    /// `counter` and, given a site (r1 = counter | (action + 1) << 8), sends the record.
    func reportHelperFailure(_ helper: Int32, _ counter: RuntimeCounter, site: SourceRange? = nil) {
        usesCounters = true
        let stub = counterStub ?? b.newLabel("count_error")
        counterStub = stub
        let action = helperErrorAction(helper, site: site)
        b.emit(.mov64(.r2, .r0))
        b.emit(.loadImm64(.r1, Int64(counter.rawValue) | Int64(action + 1) << 8))
        b.call(stub)
    }

    /// A map lookup; with -kk a missing element is reported as bpftrace does ("Failed to
    /// map_lookup_elem: 0") at `site`: the map read, its `++`, or the aggregation call.
    func checkedLookup(_ name: String, key: Int, site: Expr) {
        lookup(name, key: key)
        guard options.reportHelperErrors, options.reportReadErrors else { return }
        var range = site.range
        if let e = siteExpr, case .increment = e.kind { range = e.range }
        let ok = b.newLabel()
        b.jump(.jne, .r0, imm: 0, to: ok)
        reportHelperFailure(H.mapLookup, .helperFailed, site: range)
        b.bind(ok)
    }

    /// The record part of the counter stub (r1 packed as above saved at r10-8, r2 at r10-16).
    func emitHelperErrorRecord() {
        guard options.reportHelperErrors else { return }
        let done = b.newLabel()
        b.emit(.load(.r1, .r10, offset: -16, size: .doubleWord))
        b.emit(.rsh64(.r1, 8))
        b.jump(.jeq, .r1, imm: 0, to: done)
        b.emit(.sub64(.r1, 1))
        b.emit(.store(.r10, offset: -16, .r1, size: .doubleWord))
        reserveEvent(size: 16, action: nil, orElse: done)
        b.emit(.load(.r1, .r10, offset: -16, size: .doubleWord))
        b.emit(.store(.r0, offset: 0, .r1, size: .doubleWord))
        b.emit(.load(.r1, .r10, offset: -24, size: .doubleWord))
        b.emit(.store(.r0, offset: 8, .r1, size: .doubleWord))
        submitEvent(.r0)
        b.bind(done)
    }
}
