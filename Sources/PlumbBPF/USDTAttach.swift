import PlumbELF
import PlumbSys
import Glibc

/// One attached USDT site: the probe (with its argument specs), the binary, and the cookie the
/// program reads with bpf_get_attach_cookie() to tell this site from the others.
public struct USDTSite: Sendable {
    public var path: String
    public var probe: USDTProbe
    public var cookie: UInt64
}

/// A program attached to every site of one or more USDT probes: either one uprobe_multi link for
/// all sites (programs loaded with expected attach type `.traceUprobeMulti`), or one uprobe
/// (perf event and bpf link) per site, `links[i]` for `sites[i]`. `detach()` — or releasing this
/// object — detaches every site and lowers the semaphores again. Per-site links are detached in
/// parallel, though the kernel still waits a grace period per uprobe (~0.1 s each, serialized);
/// a uprobe_multi link waits once for all of them.
public final class USDTAttachment: CustomStringConvertible, @unchecked Sendable {
    public let links: [Link]
    public let sites: [USDTSite]
    /// E.g. "usdt /usr/bin/postgres:postgresql:* (71 sites)".
    public let description: String

    init(links: [Link], sites: [USDTSite], description: String) {
        self.links = links
        self.sites = sites
        self.description = description
    }

    public var isAttached: Bool { links.contains { $0.isAttached } }

    /// Detaches every site now. Throws `.detached` when already detached.
    public func detach() throws(BPFError) {
        guard isAttached else { throw .detached(description) }
        Self.detachConcurrently(links)
    }

    deinit { Self.detachConcurrently(links) }

    /// One thread per link (at most 64 at a time) so the kernel's grace-period waits overlap.
    static func detachConcurrently(_ links: [Link]) {
        let live = links.filter(\.isAttached)
        guard live.count > 1 else { for l in live { try? l.detach() }; return }
        var start = 0
        while start < live.count {
            let batch = live[start..<min(start + 64, live.count)]
            start += batch.count
            var threads: [pthread_t] = []
            for link in batch {
                let context = Unmanaged.passRetained(link).toOpaque()
                var thread = pthread_t()
                let rc = pthread_create(&thread, nil, { p in
                    guard let p else { return nil }
                    try? Unmanaged<Link>.fromOpaque(p).takeRetainedValue().detach()
                    return nil
                }, context)
                if rc == 0 {
                    threads.append(thread)
                } else {
                    // No thread to spare: detach here, in turn.
                    Unmanaged<Link>.fromOpaque(context).release()
                    try? link.detach()
                }
            }
            for t in threads { pthread_join(t, nil) }
        }
    }
}

/// One USDT probe of a binary as `-l` lists it: all sites of provider:name together.
public struct USDTListing: Sendable, CustomStringConvertible {
    public var path: String
    public var provider: String
    public var name: String
    /// The sites, in note order (each with its own argument specs).
    public var sites: [USDTProbe]
    public var hasSemaphore: Bool { sites.contains { $0.semaphoreAddress != nil } }

    /// bpftrace's spelling: `usdt:/path:provider:name`.
    public var description: String { "usdt:\(path):\(provider):\(name)" }

    /// The listing with its detail: site count, semaphore, and each distinct argument string.
    public var verboseDescription: String {
        var lines = ["\(description)  (\(sites.count) site\(sites.count == 1 ? "" : "s")\(hasSemaphore ? ", semaphore" : ""))"]
        var seen = Set<String>()
        for s in sites where seen.insert(s.argumentText).inserted {
            lines.append("    args: \(s.argumentText.isEmpty ? "(none)" : s.argumentText)")
        }
        return lines.joined(separator: "\n")
    }
}

/// Finds USDT probes in binaries for attaching and listing.
public enum USDTResolver {
    /// The binary's absolute path and all its probe sites (`binary`: a path, a library short
    /// name or a program in PATH, as for uprobes).
    public static func probes(binary: String) throws(BPFError) -> (path: String, probes: [USDTProbe]) {
        let path = try UprobeResolver.resolveBinary(binary)
        let elf: ELFFile
        do { elf = try ELFFile(path: path) } catch { throw .elf(path: path, error) }
        do { return (path, try USDT.probes(in: elf)) } catch { throw .elf(path: path, error) }
    }

    /// Sites whose provider and name match the patterns (shell wildcards `*`, `?`, `[...]`);
    /// a nil provider matches any.
    public static func matching(_ probes: [USDTProbe], provider: String?, name: String) -> [USDTProbe] {
        probes.filter { p in
            (provider.map { glob($0, p.provider) } ?? true) && glob(name, p.name)
        }
    }

    /// The probes of `binary` grouped by provider:name in first-site order, for `-l`.
    public static func list(binary: String, provider: String? = nil, name: String = "*") throws(BPFError) -> [USDTListing] {
        let (path, all) = try probes(binary: binary)
        var order: [String] = []
        var groups: [String: USDTListing] = [:]
        for p in matching(all, provider: provider, name: name) {
            let key = p.qualifiedName
            if groups[key] == nil {
                order.append(key)
                groups[key] = USDTListing(path: path, provider: p.provider, name: p.name, sites: [])
            }
            groups[key]?.sites.append(p)
        }
        return order.compactMap { groups[$0] }
    }

    /// Where `binary` is loaded in process `pid`: the amount to add to the file's virtual
    /// addresses (`USDTSymbol.address` + offset) to get run-time addresses. 0 for non-PIE
    /// executables. Reads /proc/pid/maps.
    public static func loadBias(pid: Int32, binary: String) throws(BPFError) -> UInt64 {
        let path = try UprobeResolver.resolveBinary(binary)
        let elf: ELFFile
        do { elf = try ELFFile(path: path) } catch { throw .elf(path: path, error) }
        var target = stat()
        guard stat(path, &target) == 0 else { throw .system(.file(path: path, errno: Errno(rawValue: errno))) }
        let maps = "/proc/\(pid)/maps"
        let text: String
        do {
            let bytes = try Bytes.read(path: maps)
            text = withExtendedLifetime(bytes) { String(decoding: bytes.buffer, as: UTF8.self) }
        } catch {
            throw .invalidArgument("cannot read \(maps): \(error); is process \(pid) running?")
        }
        for line in text.split(separator: "\n") {
            // start-end perms offset major:minor inode path
            let f = line.split(separator: " ", maxSplits: 5, omittingEmptySubsequences: true)
            guard f.count == 6, let inode = UInt64(f[4]), inode == UInt64(target.st_ino) else { continue }
            let file = String(f[5].drop(while: { $0 == " " }))
            var st = stat()
            guard stat(file, &st) == 0, st.st_dev == target.st_dev else { continue }
            let range = f[0].split(separator: "-")
            guard range.count == 2, let start = UInt64(range[0], radix: 16), let offset = UInt64(f[2], radix: 16) else { continue }
            let page = UInt64(Perf.pageSize)
            // The PT_LOAD this mapping's file offset belongs to gives the vaddr mapped at `start`.
            for p in elf.programHeaders where p.type == ELFProgramHeader.PT_LOAD {
                let alignedOffset = p.offset & ~(page - 1)
                guard offset >= alignedOffset, offset < p.offset &+ max(p.fileSize, 1) else { continue }
                let vaddr = p.virtualAddress &- p.offset &+ offset
                return start &- vaddr
            }
        }
        throw .invalidArgument("\(path) is not mapped in process \(pid) (see \(maps)); is the pid right and the library loaded?")
    }

    static func glob(_ pattern: String, _ s: String) -> Bool { fnmatch(pattern, s, 0) == 0 }
}

extension Program {
    /// Attaches this kprobe-type program to every site of the USDT probes `provider:name` in
    /// `binary` (shell wildcards; nil provider = any). Each site gets the cookie `cookie(i, site)`
    /// returns — by default its index in the returned `sites` — so the program can pick that
    /// site's argument specs via bpf_get_attach_cookie(). Semaphores are raised through the
    /// kernel's uprobe reference counter (ref_ctr_offset): gated probes fire in processes started
    /// before and after attaching, and the counters drop again on detach. `pid` > 0 limits the
    /// probes (and the semaphore raising) to that process, 0 to this one, -1 means all.
    ///
    /// Programs loaded with expected attach type `.traceUprobeMulti` (Linux 6.6+, see
    /// `Features.uprobeMultiLinks()`) get one uprobe_multi link for all sites — detaching 71
    /// PostgreSQL sites takes ~30 ms that way against ~6 s for per-site perf-event links.
    public func attachUSDT(binary: String, provider: String? = nil, name: String, pid: Int32 = -1,
                           cookie: (Int, USDTProbe) -> UInt64 = { i, _ in UInt64(i) }) throws(BPFError) -> USDTAttachment {
        guard type == .kprobe else {
            throw .programMismatch(program: label, reason: "a \(type) program cannot be attached to USDT probes; load it as kprobe (uprobes use that type)")
        }
        let support = Features.uprobes()
        guard support.isSupported else {
            throw .unsupported(feature: "uprobes", reason: "\(support)", suggestion: "enable CONFIG_UPROBE_EVENTS")
        }
        // pid 0 means "this process" to perf_event_open but "every process" to uprobe_multi: say it outright.
        let pid = pid == 0 ? getpid() : pid
        let (path, all) = try USDTResolver.probes(binary: binary)
        let wanted = (provider.map { "\($0):" } ?? "") + name
        let sites = USDTResolver.matching(all, provider: provider, name: name)
        guard !sites.isEmpty else {
            let known = Set(all.map(\.qualifiedName)).sorted().prefix(8).joined(separator: ", ")
            throw .invalidArgument("no USDT probe '\(wanted)' in \(path)"
                + (all.isEmpty ? " (it has no .note.stapsdt notes: built without <sys/sdt.h> probes?)" : "; it has \(known)\(all.count > 8 ? ", ..." : "")")
                + "; list them with `readelf -n \(path)`")
        }
        if sites.contains(where: { $0.semaphoreFileOffset != nil }), (try? Perf.pmuFormatBit("uprobe", "ref_ctr_offset")) == nil {
            throw .unsupported(feature: "USDT semaphores", reason: "the uprobe PMU has no ref_ctr_offset format (kernels before 4.20)",
                               suggestion: "attach to probes without semaphores")
        }
        let multi = expectedAttachType == .traceUprobeMulti
        let description = "usdt \(path):\(wanted) (\(sites.count) site\(sites.count == 1 ? "" : "s")\(multi ? ", uprobe_multi" : ""))\(pid >= 0 ? " pid \(pid)" : "")"
        if multi {
            let cookies = sites.enumerated().map { cookie($0.offset, $0.element) }
            let fd: OwnedFD
            do {
                fd = try Sys.linkCreateUprobeMulti(self.fd, path: path, offsets: sites.map(\.fileOffset),
                                                   refCounterOffsets: sites.map { $0.semaphoreFileOffset ?? 0 }, cookies: cookies, pid: pid)
            } catch { throw failure(error) }
            let link = Link(kind: .uprobe, program: self, description: description)
            link.add(link: fd)
            return USDTAttachment(links: [link], sites: zip(sites, cookies).map { USDTSite(path: path, probe: $0, cookie: $1) },
                                  description: description)
        }
        var links: [Link] = []
        var attached: [USDTSite] = []
        links.reserveCapacity(sites.count)
        attached.reserveCapacity(sites.count)
        // A failure part-way detaches the sites attached so far.
        var done = false
        defer { if !done { USDTAttachment.detachConcurrently(links) } }
        for (i, probe) in sites.enumerated() {
            let c = cookie(i, probe)
            let what = "usdt \(path):\(probe.qualifiedName) site \(i) (offset 0x\(String(probe.fileOffset, radix: 16)))"
            let event: OwnedFD
            do {
                event = try Perf.openUprobe(path: path, offset: probe.fileOffset, refCounterOffset: probe.semaphoreFileOffset ?? 0,
                                            pid: pid < 0 ? -1 : pid, cpu: pid < 0 ? 0 : -1)
            } catch { throw failure(error) }
            let bpfLink: OwnedFD
            do { bpfLink = try Sys.linkCreatePerfEvent(fd, perfEvent: event, cookie: c) } catch { throw failure(error) }
            let link = Link(kind: .uprobe, program: self, description: what + " cookie \(c)" + (pid >= 0 ? " pid \(pid)" : ""))
            link.add(link: bpfLink, perfEvent: event)
            links.append(link)
            attached.append(USDTSite(path: path, probe: probe, cookie: c))
        }
        done = true
        return USDTAttachment(links: links, sites: attached, description: description)
    }
}
