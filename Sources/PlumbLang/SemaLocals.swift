// Statement probes with locals, as SystemTap has them: `uprobe:PATH@FILE:LINE` (or
// `uprobe:PATH:FUNC@FILE:LINE`) probes the first statement address of the line in each function
// and inlined copy (one program per site, like wildcard matches, so each site's locations
// compile on their own), and `$name`, when the script never assigns it, is the DWARF
// parameter or local visible at that pc (else a global or static of the binary), typed by DWARF. Where its value lives comes
// from its location expression at that pc (PlumbDWARF/LocalsAtPC.swift), compiled to loads by
// CodegenLocals.swift; a variable with no location there is a type error naming the line.
import PlumbBPF
import PlumbDWARF
import PlumbELF

/// The statement probes of one compile, and the site of the program being compiled.
final class StatementProbes {
    struct Site {
        var path: String
        /// Index of the binary in `UserTypes.loaded`.
        var binary: Int
        var address: UInt64
        var function: String
        var inlined: String?
        /// FILE and LINE as the script wrote them (for messages).
        var file: String
        var line: Int
        var isExecutable: Bool
        var siteCount: Int
        var position: String { "\(file):\(line)" }
    }
    /// Expanded probe name -> its sites (one program each).
    var sites: [String: [Site]] = [:]
    /// The site of the program being compiled (nil outside statement probes).
    var current: Site?
}

extension Compiler {
    /// `uprobe:PATH@FILE:LINE` / `uprobe:PATH:FUNC@FILE:LINE`: the expansions (one per site), or
    /// nil when the attach point is not of that form.
    func statementProbe(_ ap: AttachPoint) -> [Expansion]? {
        let f = ap.fields
        guard f.count >= 2, let lineText = f.last, !lineText.isEmpty, lineText.allSatisfy(\.isNumber) else { return nil }
        let head = f.dropLast().joined(separator: ":")
        guard let at = head.lastIndex(of: "@") else { return nil }
        var path = String(head[..<at])
        let file = String(head[head.index(after: at)...])
        var function: String?
        // PATH:FUNC — a FUNC has no '/', a path's last part may (or be a bare program name with no FUNC).
        if let colon = path.lastIndex(of: ":") {
            function = String(path[path.index(after: colon)...])
            path = String(path[..<colon])
        }
        let usage = "statement probes are written uprobe:PATH@FILE:LINE or uprobe:PATH:FUNCTION@FILE:LINE"
        guard ap.provider == "uprobe" else {
            error("\(ap.provider) cannot probe a source line; \(usage) (a line has no return)", ap.range)
            return []
        }
        guard !path.isEmpty, !file.isEmpty, function?.isEmpty != true, let line = Int(lineText), line > 0 else {
            error(usage, ap.range)
            return []
        }
        guard let resolved = env.resolveBinary(path) else { error("binary '\(path)' not found", ap.range); return [] }
        let k: Int
        switch userDWARF(resolved) {
        case .failure(let err):
            error("statement probe '\(ap.text)' needs the line table of \(resolved): \(err)", ap.range)
            return []
        case .success(let i): k = i
        }
        let d = userTypes.loaded[k].dwarf
        let found: [DWARFStatementSite]
        do { found = try d.statementSites(file: file, line: line, function: function) } catch {
            self.error("cannot read the line table of \(resolved): \(error)", ap.range)
            return []
        }
        if found.isEmpty {
            error(noCodeMessage(d, file: file, line: line, function: function, binary: resolved), ap.range,
                  notes: noCodeNotes(d, file: file, line: line))
            return []
        }
        let elf = try? ELFFile(path: resolved)
        if let elf, elf.machine != 62 {
            error("statement probes read registers as x86-64 numbers them; \(resolved) is for another machine (e_machine \(elf.machine))", ap.range)
            return []
        }
        let isExec = elf?.type == ELFFile.ET_EXEC
        let name = "uprobe:\(resolved)" + (function.map { ":" + $0 } ?? "") + "@\(file):\(line)"
        statementProbes.sites[name] = found.map {
            StatementProbes.Site(path: resolved, binary: k, address: $0.address, function: $0.function, inlined: $0.inlined,
                                 file: file, line: line, isExecutable: isExec, siteCount: found.count)
        }
        return found.map { s in
            (.uprobe(path: resolved, symbol: nil, address: s.address, isReturn: false, pid: nil), name, kind("uprobe"),
             .registers(isReturn: false, user: true))
        }
    }

    private func noCodeMessage(_ d: DWARF, file: String, line: Int, function: String?, binary: String) -> String {
        if let files = try? d.sourceFiles(matching: file), files.isEmpty {
            return "no source file '\(file)' in the line table of \(binary)"
        }
        if let function, let elsewhere = try? d.statementSites(file: file, line: line), !elsewhere.isEmpty {
            let names = Set(elsewhere.map { $0.inlined ?? $0.function }).sorted().map { "'\($0)'" }
            return "\(file):\(line) has code, but none of it in '\(function)' (it is in \(names.joined(separator: ", ")))"
        }
        return "no code at \(file):\(line) in \(binary)"
    }

    private func noCodeNotes(_ d: DWARF, file: String, line: Int) -> [Diagnostic.Note] {
        guard let lines = try? d.linesWithCode(file: file), !lines.isEmpty else {
            let all = ((try? d.sourceFiles(matching: "")) ?? []).map { $0.split(separator: "/").last.map(String.init) ?? $0 }
            if let near = nearest(file, in: Array(Set(all))) { return [.init("did you mean '\(near)'?")] }
            return []
        }
        let before = lines.last { $0 < line }, after = lines.first { $0 > line }
        if lines.contains(line) { return [] }
        let near = [before, after].compactMap { $0 }.map { "\(file):\($0)" }
        if near.count == 1 { return [.init("the nearest line with code is \(near[0])")] }
        return near.isEmpty ? [] : [.init("the nearest lines with code are \(near.joined(separator: " and "))")]
    }

    /// Called as each program starts: the statement site it probes (by its address), so `$name`
    /// reads that site's locations and var() relocates by that site's address.
    func enterStatementSite(_ target: ProbeTarget) {
        statementProbes.current = nil
        guard let sites = statementProbes.sites[probeName], case .uprobe(_, _, let address, _, _) = target,
              let s = sites.first(where: { $0.address == address }) else { return }
        statementProbes.current = s
        userTypes.probeSites[probeName] = (s.path, address)
    }

    /// `$name` not assigned in the script, in a statement probe: the DWARF variable visible at
    /// the site. nil outside statement probes (the caller reports an undefined variable).
    func statementLocal(_ name: String, _ e: Expr) -> Val? {
        guard let s = statementProbes.current else { return nil }
        let d = userTypes.loaded[s.binary].dwarf
        let local: DWARFLocal?
        do { local = try d.local(named: name, at: s.address) } catch {
            self.error("cannot read the variables at \(s.position): \(error)", e.range)
            return .poison
        }
        var siteNotes: [Diagnostic.Note] = []
        if s.siteCount > 1 {
            siteNotes.append(.init("at the site 0x\(String(s.address, radix: 16)) in '\(s.function)'" + (s.inlined.map { " (inlined '\($0)')" } ?? "")
                                   + ", one of \(s.siteCount) for this line"))
        }
        // As SystemTap: a name no scope declares may be a global or static of the binary.
        if local == nil, let g = try? d.variable(named: name), g.tlsOffset == nil, let a = g.address {
            return loadLocal(.memory(.linkAddress(a)), type: userSType(g.type, binary: s.binary), name: name, site: s, e)
        }
        guard let local else {
            let names = ((try? d.localNames(at: s.address)) ?? []).sorted()
            var notes = nearest(name, in: names).map { [Diagnostic.Note("did you mean '$\($0)'?")] } ?? []
            if !names.isEmpty { notes.append(.init("visible at \(s.position): " + names.map { "$" + $0 }.joined(separator: ", "))) }
            error("Undefined or undeclared variable: $\(name) (the script does not assign it and no variable of that name is visible at \(s.position))",
                  e.range, notes: notes + siteNotes)
            return .poison
        }
        switch local.place {
        case .failure(let why):
            var notes: [Diagnostic.Note] = []
            if case .optimizedOut(let ranges) = why {
                if ranges.isEmpty {
                    notes.append(.init("the compiler kept no location for '\(name)' at any address of '\(local.inlinedFrom ?? local.function)'"))
                } else {
                    let shown = ranges.prefix(4).map { r -> String in
                        var text = "0x\(String(r.lowerBound, radix: 16))-0x\(String(r.upperBound, radix: 16))"
                        if let a = try? d.sourceLocation(address: r.lowerBound), let b = try? d.sourceLocation(address: r.upperBound &- 1) {
                            text += a.line == b.line ? " (line \(a.line))" : " (lines \(a.line)-\(b.line))"
                        }
                        return text
                    }
                    notes.append(.init("'\(name)' has a location only at " + shown.joined(separator: ", ") + (ranges.count > 4 ? " and \(ranges.count - 4) more ranges" : "")))
                }
            }
            error("'$\(name)' is \(why) at \(s.position)", e.range, notes: notes + siteNotes)
            return .poison
        case .success(let place):
            let type = userSType(local.variable.type, binary: s.binary)
            return loadLocal(place, type: type, name: name, site: s, e)
        }
    }
}

extension UserDebugInfo {
    /// `-l`/`-lv uprobe:PATH[:FUNC]@FILE:LINE` (REST is what follows `uprobe:`): the probe, and with
    /// `verbose` each site and the variables visible there (`int i`, `long total (optimized out)`).
    /// nil when REST is not a statement probe; empty when the line has no code.
    public static func statementListing(_ rest: String, verbose: Bool) -> String? {
        guard let colon = rest.lastIndex(of: ":"), let line = Int(rest[rest.index(after: colon)...]),
              let at = rest[..<colon].lastIndex(of: "@") else { return nil }
        var path = String(rest[..<at])
        let file = String(rest[rest.index(after: at)..<colon])
        var function: String?
        if let c = path.lastIndex(of: ":") {
            function = String(path[path.index(after: c)...])
            path = String(path[..<c])
        }
        guard let resolved = try? UprobeResolver.resolveBinary(path), let d = try? DWARF.load(binary: resolved),
              let sites = try? d.statementSites(file: file, line: line, function: function), !sites.isEmpty else { return "" }
        var out = "uprobe:\(resolved)" + (function.map { ":" + $0 } ?? "") + "@\(file):\(line)\n"
        guard verbose else { return out }
        for s in sites {
            if sites.count > 1 {
                out += "  site 0x\(String(s.address, radix: 16)) in \(s.function)" + (s.inlined.map { " (inlined \($0))" } ?? "") + "\n"
            }
            var lines: [String] = []
            for name in (try? d.localNames(at: s.address)) ?? [] {
                guard let l = try? d.local(named: name, at: s.address), let btf = try? d.btf() else { continue }
                var text = "    " + btf.cTypeName(l.variable.type) + " " + name
                if case .failure(let why) = l.place { text += " (\(why))" }
                lines.append(text)
            }
            out += lines.map { $0 + "\n" }.joined()
        }
        return out
    }
}
