// Diagnostics are values with source ranges; one printer renders them the way the Swift
// compiler does: `file:line:col: error: message`, the source line, a caret under the range,
// then notes (each with its own location when it has one).

public struct Diagnostic: Sendable, Error, CustomStringConvertible {
    public enum Severity: String, Sendable { case error, warning, note }
    public struct Note: Sendable {
        public var message: String
        public var range: SourceRange?
        public init(_ message: String, range: SourceRange? = nil) { self.message = message; self.range = range }
    }
    public var severity: Severity
    public var message: String
    public var range: SourceRange
    public var notes: [Note]
    public init(_ severity: Severity, _ message: String, at range: SourceRange, notes: [Note] = []) {
        self.severity = severity; self.message = message; self.range = range; self.notes = notes
    }
    public static func error(_ message: String, at range: SourceRange, notes: [Note] = []) -> Diagnostic {
        Diagnostic(.error, message, at: range, notes: notes)
    }
    public static func warning(_ message: String, at range: SourceRange, notes: [Note] = []) -> Diagnostic {
        Diagnostic(.warning, message, at: range, notes: notes)
    }
    public var description: String { "\(severity.rawValue): \(message)" }
}

/// The script text with its name (`-e` scripts are called `stdin` as bpftrace calls them... we
/// use `<command line>`), and line starts for offset -> line:column.
public struct SourceFile: Sendable {
    public let name: String
    public let text: String
    private let utf8: [UInt8]
    private let lineStarts: [Int]

    public init(name: String, text: String) {
        self.name = name
        self.text = text
        utf8 = Array(text.utf8)
        var starts = [0]
        for (i, b) in utf8.enumerated() where b == UInt8(ascii: "\n") { starts.append(i + 1) }
        lineStarts = starts
    }

    public var bytes: [UInt8] { utf8 }

    /// 1-based line and column (columns count bytes, as the Swift compiler's do for ASCII).
    public func location(of offset: Int) -> (line: Int, column: Int) {
        let o = min(max(0, offset), utf8.count)
        var lo = 0, hi = lineStarts.count - 1
        while lo < hi {
            let mid = (lo + hi + 1) / 2
            if lineStarts[mid] <= o { lo = mid } else { hi = mid - 1 }
        }
        return (lo + 1, o - lineStarts[lo] + 1)
    }

    /// The text of 1-based line `n`, without its newline.
    public func line(_ n: Int) -> String {
        guard n >= 1, n <= lineStarts.count else { return "" }
        let start = lineStarts[n - 1]
        var end = n < lineStarts.count ? lineStarts[n] - 1 : utf8.count
        if end > start, utf8[end - 1] == UInt8(ascii: "\r") { end -= 1 }
        return String(decoding: utf8[start..<max(start, end)], as: UTF8.self)
    }

    /// The script text in `range`.
    public func text(in range: SourceRange) -> String {
        let s = min(max(0, range.start), utf8.count), e = min(max(s, range.end), utf8.count)
        return String(decoding: utf8[s..<e], as: UTF8.self)
    }
}

/// Renders diagnostics as the Swift compiler does.
public struct DiagnosticPrinter: Sendable {
    public var file: SourceFile
    public init(file: SourceFile) { self.file = file }

    public func render(_ diagnostic: Diagnostic) -> String {
        var out = block(diagnostic.severity.rawValue, diagnostic.message, diagnostic.range)
        for note in diagnostic.notes {
            if let r = note.range {
                out += block("note", note.message, r)
            } else {
                out += "note: \(note.message)\n"
            }
        }
        return out
    }

    public func render(_ diagnostics: [Diagnostic]) -> String { diagnostics.map(render).joined() }

    private func block(_ severity: String, _ message: String, _ range: SourceRange) -> String {
        let (line, column) = file.location(of: range.start)
        let source = file.line(line)
        var out = "\(file.name):\(line):\(column): \(severity): \(message)\n"
        out += source + "\n"
        // Caret under the first character, tildes under the rest of the range on this line.
        let (endLine, endColumn) = file.location(of: max(range.start, range.end - 1))
        let lastColumn = endLine == line ? endColumn : max(column, source.utf8.count)
        var marker = ""
        // Keep tabs so the caret lines up under tab-indented source.
        for (i, b) in source.utf8.prefix(column - 1).enumerated() where i < column - 1 {
            marker += b == UInt8(ascii: "\t") ? "\t" : " "
        }
        marker += "^"
        if lastColumn > column { marker += String(repeating: "~", count: lastColumn - column) }
        out += marker + "\n"
        return out
    }
}
