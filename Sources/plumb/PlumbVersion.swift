import Glibc
import PlumbSys

/// `plumb --version`: the version, and the commit when it can be known honestly.
///
/// SwiftPM has no simple way to stamp a build with its commit, so the commit is read at run
/// time with `git describe` from the checkout this binary was compiled in (its path is known
/// at compile time). The output says so: it is the checkout's commit now, which is the
/// binary's as long as the checkout was not changed after the build.
enum PlumbVersion {
    static let number = "0.1.0"

    /// The repository root: this file is Sources/plumb/PlumbVersion.swift.
    static var sourceRoot: String {
        var parts = "\(#filePath)".split(separator: "/", omittingEmptySubsequences: false)
        parts.removeLast(3)
        return parts.joined(separator: "/")
    }

    static var description: String {
        if let commit = commit() {
            return "plumb \(number) (commit \(commit), read from the source checkout \(sourceRoot) at run time)"
        }
        return "plumb \(number) (commit unknown: the source checkout \(sourceRoot) is not available here)"
    }

    /// `git describe --always --dirty` in the source checkout, or nil.
    static func commit() -> String? {
        let root = sourceRoot
        guard !root.contains("'"), access(root + "/.git", F_OK) == 0 else { return nil }
        guard let run = commandOutput("git -C '\(root)' describe --always --dirty --abbrev=12 2>/dev/null"), run.status == 0 else { return nil }
        let text = run.text.split(separator: "\n").first.map(String.init) ?? ""
        return text.isEmpty ? nil : text
    }
}
