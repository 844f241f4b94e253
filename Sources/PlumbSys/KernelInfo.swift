import Glibc

/// Facts about the running kernel: its release, version code and build configuration.
public enum KernelInfo {
    /// uname's release string, e.g. "6.18.44-fc".
    public static var release: String {
        var u = utsname()
        uname(&u)
        return withUnsafeBytes(of: u.release) { String(decoding: $0.prefix { $0 != 0 }, as: UTF8.self) }
    }

    /// LINUX_VERSION_CODE for the running kernel (a.b.c -> a<<16 | b<<8 | min(c, 255)).
    public static var versionCode: UInt32 {
        let parts = release.split(whereSeparator: { !$0.isNumber }).prefix(3).map { UInt32($0) ?? 0 }
        let p = parts + [0, 0, 0]
        return p[0] << 16 | p[1] << 8 | min(p[2], 255)
    }

    /// The kernel config as NAME -> value, from /boot/config-<release> or /proc/config.gz
    /// (empty when neither is readable).
    public static func config() -> [String: String] {
        var text: String?
        if let b = try? readText("/boot/config-\(release)") {
            text = b
        } else if access("/proc/config.gz", R_OK) == 0, let gunzipped = commandOutput("gzip -dc /proc/config.gz 2>/dev/null") {
            text = gunzipped.text
        }
        var out: [String: String] = [:]
        for line in (text ?? "").split(separator: "\n") where line.hasPrefix("CONFIG_") {
            guard let eq = line.firstIndex(of: "=") else { continue }
            var value = line[line.index(after: eq)...]
            if value.hasPrefix("\"") && value.hasSuffix("\"") && value.count >= 2 { value = value.dropFirst().dropLast() }
            out[String(line[..<eq])] = String(value)
        }
        return out
    }
}
