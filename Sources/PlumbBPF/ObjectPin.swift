import PlumbSys
import Glibc

/// What `Object.attachAndPin(under:)` left on bpffs.
public struct PinnedObject: Sendable {
    /// The folder holding `progs/`, `maps/` and `links/`.
    public var directory: String
    public var programs: [String: String] = [:]
    public var maps: [String: String] = [:]
    public var links: [String: String] = [:]
    /// Programs that were not attached, and why (no target in their section, or a failure).
    public var notAttached: [String: String] = [:]

    /// Every pinned path.
    public var paths: [String] { Array(programs.values) + Array(maps.values) + Array(links.values) }
}

extension Object {
    /// Attaches every program whose section names its target and pins programs, maps and links
    /// under `directory` (on a bpffs mount; created if missing) as `progs/NAME`, `maps/NAME`,
    /// `links/NAME` (dots in names become underscores: bpffs reserves them), so they outlive this process — as `bpftool prog loadall ... autoattach` does.
    /// Removing the folder (or the link pins) detaches them. On failure nothing stays pinned.
    public func attachAndPin(under directory: String, options: AttachOptions = AttachOptions()) throws(BPFError) -> PinnedObject {
        var out = PinnedObject(directory: directory)
        var created: [String] = []
        func mkdirs(_ path: String) throws(BPFError) {
            var cur = ""
            for part in path.split(separator: "/") {
                cur += "/" + part
                if mkdir(cur, 0o700) != 0 && errno != EEXIST { throw .system(.file(path: cur, errno: .current)) }
            }
        }
        func safe(_ name: String) -> String { name.replacingSlashes }
        do throws(BPFError) {
            try mkdirs(directory)
            for sub in ["progs", "maps", "links"] { try mkdirs(directory + "/" + sub) }
            var links: [String: Link] = [:]
            for name in programs.keys.sorted() {
                if let link = try attach(name, options: options) { links[name] = link }
                else { out.notAttached[name] = "its section names no attach target" }
            }
            for (name, program) in programs.sorted(by: { $0.key < $1.key }) {
                let path = directory + "/progs/" + safe(name)
                try program.pin(path)
                created.append(path)
                out.programs[name] = path
            }
            for (name, map) in maps.sorted(by: { $0.key < $1.key }) {
                let path = directory + "/maps/" + safe(name)
                do throws(SysError) { try Sys.objPin(map.fd, path: path) } catch { throw BPFError.system(error) }
                created.append(path)
                out.maps[name] = path
            }
            for (name, link) in links.sorted(by: { $0.key < $1.key }) {
                let path = directory + "/links/" + safe(name)
                try link.pin(path)
                created.append(path)
                out.links[name] = path
            }
        } catch {
            for p in created.reversed() { unlink(p) }
            for sub in ["links", "maps", "progs"] { rmdir(directory + "/" + sub) }
            rmdir(directory)
            throw error
        }
        return out
    }
}

extension String {
    /// bpffs reserves dots in names (and a slash would be a folder): both become underscores.
    var replacingSlashes: String { String(map { $0 == "/" || $0 == "." ? "_" : $0 }) }
}
