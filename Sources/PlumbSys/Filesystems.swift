import Glibc

/// Reads a whole (small, /sys or /proc) file.
func readFile(_ path: String) throws(SysError) -> [UInt8] {
    let fd = open(path, O_RDONLY | O_CLOEXEC)
    if fd < 0 { throw .file(path: path, errno: .current) }
    defer { close(fd) }
    var out: [UInt8] = []
    var chunk = [UInt8](repeating: 0, count: 4096)
    while true {
        let n = chunk.withUnsafeMutableBytes { read(fd, $0.baseAddress, $0.count) }
        if n < 0 {
            if errno == EINTR { continue }
            throw .file(path: path, errno: .current)
        }
        if n == 0 { return out }
        out.append(contentsOf: chunk[0..<n])
    }
}

package func readText(_ path: String) throws(SysError) -> String {
    String(decoding: try readFile(path), as: UTF8.self)
}

/// Runs `/bin/sh -c command` and returns what it wrote to stdout with its pclose status, or
/// nil when it could not be started.
package func commandOutput(_ command: String) -> (text: String, status: Int32)? {
    guard let pipe = popen(command, "r") else { return nil }
    var data: [UInt8] = []
    var chunk = [UInt8](repeating: 0, count: 65536)
    while true {
        let n = fread(&chunk, 1, chunk.count, pipe)
        if n <= 0 { break }
        data.append(contentsOf: chunk[0..<n])
    }
    let status = pclose(pipe)
    return (String(decoding: data, as: UTF8.self), status)
}

func isDirectory(_ path: String) -> Bool {
    var st = stat()
    return stat(path, &st) == 0 && (st.st_mode & S_IFMT) == S_IFDIR
}

func fileExists(_ path: String) -> Bool {
    access(path, F_OK) == 0
}

/// Mount points by filesystem type, from /proc/mounts (octal escapes like \040 decoded).
func mountPoints(ofType type: String) -> [String] {
    guard let text = try? readText("/proc/mounts") else { return [] }
    var out: [String] = []
    for line in text.split(separator: "\n") {
        let fields = line.split(separator: " ")
        guard fields.count >= 3, fields[2] == type else { continue }
        out.append(unescapeMount(String(fields[1])))
    }
    return out
}

private func unescapeMount(_ s: String) -> String {
    var bytes: [UInt8] = []
    let u = Array(s.utf8)
    var i = 0
    while i < u.count {
        if u[i] == 0x5c, i + 3 < u.count,
           let v = UInt8(String(decoding: u[(i + 1)...(i + 3)], as: UTF8.self), radix: 8) {
            bytes.append(v)
            i += 4
        } else {
            bytes.append(u[i])
            i += 1
        }
    }
    return String(decoding: bytes, as: UTF8.self)
}

private func mountFS(type: String, at path: String) throws(SysError) {
    if !isDirectory(path) && mkdir(path, 0o755) != 0 && errno != EEXIST {
        throw .filesystemUnavailable(kind: type == "bpf" ? "bpffs" : type, path: path, errno: .current)
    }
    if mount(type, path, type, 0, nil) != 0 && errno != EBUSY {
        throw .filesystemUnavailable(kind: type == "bpf" ? "bpffs" : type, path: path, errno: .current)
    }
}

/// tracefs: where tracepoint ids and uprobe/kprobe event files live.
public enum Tracefs {
    public static let defaultPath = "/sys/kernel/tracing"

    /// The tracefs mount point; mounts it at /sys/kernel/tracing when nothing is mounted and `mount` is true.
    public static func path(mount: Bool = true) throws(SysError) -> String {
        // The usual place first: one stat instead of reading all of /proc/mounts (the events
        // directory exists only while tracefs is mounted there).
        if isDirectory(defaultPath + "/events") { return defaultPath }
        if let p = mountPoints(ofType: "tracefs").first(where: { isDirectory($0 + "/events") }) { return p }
        // debugfs exposes tracefs under tracing/ via an automount.
        for d in mountPoints(ofType: "debugfs") where isDirectory(d + "/tracing/events") {
            return d + "/tracing"
        }
        guard mount else { throw .filesystemUnavailable(kind: "tracefs", path: defaultPath, errno: .noSuchFileOrDirectory) }
        try mountFS(type: "tracefs", at: defaultPath)
        guard isDirectory(defaultPath + "/events") else {
            throw .filesystemUnavailable(kind: "tracefs", path: defaultPath, errno: .noSuchFileOrDirectory)
        }
        return defaultPath
    }

    /// The perf event id of tracepoint `category:name` (e.g. "syscalls", "sys_enter_getpid").
    public static func tracepointID(category: String, name: String) throws(SysError) -> UInt32 {
        for part in [category, name] where part.isEmpty || part.contains("/") || part == "." || part == ".." {
            throw .invalidArgument("tracepoint component '\(part)' must be a plain name")
        }
        let root = try path()
        let file = "\(root)/events/\(category)/\(name)/id"
        let text: String
        do {
            text = try readText(file)
        } catch {
            if error.errno == .noSuchFileOrDirectory { throw .tracepointNotFound(category: category, name: name, path: file) }
            throw error
        }
        guard let id = UInt32(text.trimmingCharacters(in: .whitespacesAndNewlines)) else {
            throw .malformedKernelOutput("\(file) holds '\(text)', not an id")
        }
        return id
    }
}

/// bpffs: where objects are pinned.
public enum BPFFS {
    public static let defaultPath = "/sys/fs/bpf"

    /// The first bpffs mount; mounts one at /sys/fs/bpf when none exists and `mount` is true.
    public static func path(mount: Bool = true) throws(SysError) -> String {
        if let p = mountPoints(ofType: "bpf").first { return p }
        guard mount else { throw .filesystemUnavailable(kind: "bpffs", path: defaultPath, errno: .noSuchFileOrDirectory) }
        try mountFS(type: "bpf", at: defaultPath)
        return defaultPath
    }
}

/// CPU lists from /sys/devices/system/cpu.
public enum CPUs {
    /// CPUs online now: where per-CPU perf events can be opened.
    public static func online() throws(SysError) -> [Int] {
        try list("/sys/devices/system/cpu/online")
    }

    /// CPUs that may ever exist: the slot count of per-CPU map values.
    public static func possible() throws(SysError) -> [Int] {
        try list("/sys/devices/system/cpu/possible")
    }

    private static func list(_ file: String) throws(SysError) -> [Int] {
        let text = try readText(file)
        guard let cpus = parse(text) else { throw .malformedKernelOutput("\(file): '\(text)' is not a CPU list") }
        return cpus
    }

    /// Parses the kernel's list format, e.g. "0-1,3\n" → [0, 1, 3]. Nil when malformed.
    package static func parse(_ text: String) -> [Int]? {
        let trimmed = text.trimmingCharacters(in: .whitespacesAndNewlines)
        if trimmed.isEmpty { return [] }
        var out: [Int] = []
        for range in trimmed.split(separator: ",", omittingEmptySubsequences: false) {
            let ends = range.split(separator: "-", omittingEmptySubsequences: false)
            switch ends.count {
            case 1:
                guard let v = Int(ends[0]), v >= 0 else { return nil }
                out.append(v)
            case 2:
                // Cap the span so a corrupt file cannot make us allocate without bound.
                guard let lo = Int(ends[0]), let hi = Int(ends[1]), lo >= 0, lo <= hi, hi - lo < 1 << 16 else { return nil }
                out.append(contentsOf: lo...hi)
            default:
                return nil
            }
        }
        return out
    }
}

extension String {
    /// Foundation-free trim for the short strings /sys hands back.
    func trimmingCharacters(in _: WhitespaceSet) -> String {
        let ws: Set<Character> = [" ", "\n", "\t", "\r"]
        var s = Substring(self)
        while let f = s.first, ws.contains(f) { s = s.dropFirst() }
        while let l = s.last, ws.contains(l) { s = s.dropLast() }
        return String(s)
    }
}

enum WhitespaceSet { case whitespacesAndNewlines }
