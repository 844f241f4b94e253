// USDT attach points: `usdt:PATH:[PROVIDER:]NAME` (`U:` for short). PATH may be a library short
// name or a program in PATH; with -p/-c, PATH may be omitted or `*` to mean the process's
// binary and every library it has mapped. Each distinct provider:name becomes one program
// (so `probe` names it) attached to all of its sites; arguments are typed per site from the
// note's argument specs (see CodegenUser.swift).
import Glibc
import PlumbBPF
import PlumbELF

extension Compiler {
    /// The pid whose binary and libraries `usdt:*:...` means (-p, else the -c child).
    var targetPID: Int32? { options.pid ?? options.childPID }

    func usdt(_ ap: AttachPoint) -> [Expansion] {
        let f = ap.fields
        let usage = "usdt probes are written usdt:PATH:[PROVIDER:]NAME (PATH may be left out or '*' with -p PID or -c CMD)"
        guard !f.isEmpty, f.count <= 3, let last = f.last, !last.isEmpty else { error(usage, ap.range); return [] }
        var binary: String?, provider: String?
        let name = last
        switch f.count {
        case 3: binary = f[0]; provider = f[1]
        case 2:
            // usdt:PATH:NAME, or usdt:PROVIDER:NAME in the -p process when the first part is no binary.
            if targetPID != nil, !f[0].isEmpty, f[0] != "*", (try? UprobeResolver.resolveBinary(f[0])) == nil {
                provider = f[0]
            } else {
                binary = f[0]
            }
        default: break
        }
        if provider == "*" || provider == "" { provider = nil }
        var binaries: [String] = []
        if let binary, !binary.isEmpty, binary != "*" {
            binaries = [binary]
        } else {
            guard let pid = targetPID else {
                error("usdt probe '\(ap.text)' names no binary; give a path or trace a process with -p PID or -c CMD", ap.range)
                return []
            }
            if options.pid == nil, let command = options.childCommand,
               let word = command.split(separator: " ").first, let path = try? UprobeResolver.resolveBinary(String(word)) {
                // The -c child waits before exec: its program is the command's first word (libraries are not loaded yet).
                binaries = [path]
            } else {
                binaries = Compiler.mappedBinaries(pid: pid)
            }
            if binaries.isEmpty { error("cannot read the binaries of process \(pid) from /proc/\(pid)/maps", ap.range); return [] }
        }
        var out: [Expansion] = []
        var seenAny = false
        var lastError: String?
        for bin in binaries {
            let found: (path: String, probes: [USDTProbe])
            do { found = try USDTResolver.probes(binary: bin) } catch {
                if binaries.count == 1 { lastError = "\(error)" }
                continue
            }
            if !found.probes.isEmpty { seenAny = true }
            var order: [String] = []
            var groups: [String: [USDTProbe]] = [:]
            for p in USDTResolver.matching(found.probes, provider: provider, name: name) {
                if groups[p.qualifiedName] == nil { order.append(p.qualifiedName) }
                groups[p.qualifiedName, default: []].append(p)
            }
            for key in order {
                guard let sites = groups[key], let first = sites.first else { continue }
                let probeName = "usdt:\(found.path):\(first.provider):\(first.name)"
                usdtSites[probeName] = sites
                userTypes.usdtPaths[probeName] = found.path
                if sites.count == 1 { userTypes.probeSites[probeName] = (found.path, first.address) }
                out.append((.usdt(path: found.path, provider: first.provider, name: first.name, pid: options.pid),
                            probeName, kind(Compiler.usdtSection), .registers(isReturn: false, user: true)))
            }
        }
        if out.isEmpty {
            if let lastError { error("cannot attach usdt '\(ap.text)': \(lastError)", ap.range); return [] }
            var notes: [Diagnostic.Note] = []
            if binaries.count == 1, let all = try? USDTResolver.probes(binary: binaries[0]).probes {
                if let near = nearest(name, in: Array(Set(all.map(\.name))).sorted()) { notes.append(.init("did you mean '\(near)'?")) }
            }
            let whereText = binaries.count == 1 ? binaries[0] : "process \(targetPID ?? 0)"
            error(seenAny || binaries.count == 1 ? "no USDT probe matches '\(ap.text)' in \(whereText)"
                  : "no USDT probes in \(whereText) (its binaries have no .note.stapsdt notes)", ap.range, notes: notes)
        }
        return out
    }

    /// uprobe_multi links attach every site at once (and detach in one grace period) where the
    /// kernel has them; one perf-event link per site otherwise (PLUMB_USDT_PER_SITE=1 forces
    /// that, to compare or to test the fallback).
    static let usdtSection: String = {
        if let v = getenv("PLUMB_USDT_PER_SITE"), String(cString: v) == "1" { return "usdt" }
        return Features.uprobeMultiLinks().isSupported ? "uprobe.multi" : "usdt"
    }()

    /// The executable and the ELF files mapped into `pid`, executable first, each once.
    static func mappedBinaries(pid: Int32) -> [String] {
        var out: [String] = []
        var buffer = [CChar](repeating: 0, count: 4096)
        let n = readlink("/proc/\(pid)/exe", &buffer, buffer.count - 1)
        if n > 0 { out.append(String(decoding: buffer[0..<n].map { UInt8(bitPattern: $0) }, as: UTF8.self)) }
        guard let fp = fopen("/proc/\(pid)/maps", "r") else { return out }
        defer { fclose(fp) }
        var line = [CChar](repeating: 0, count: 4096)
        while fgets(&line, Int32(line.count), fp) != nil {
            let text = String(decoding: line.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
            guard let slash = text.firstIndex(of: "/") else { continue }
            let path = text[slash...].trimmingCharacters(in: "\n ")
            if !path.hasSuffix("(deleted)"), !out.contains(path) { out.append(path) }
        }
        return out
    }
}

private extension Substring {
    func trimmingCharacters(in set: String) -> String {
        var s = self[...]
        while let c = s.last, set.contains(c) { s = s.dropLast() }
        while let c = s.first, set.contains(c) { s = s.dropFirst() }
        return String(s)
    }
}
