/// "Did you mean": the closest name by edit distance, when it is close enough to be a typo.
/// Public for the CLI (subcommands, type names) and the generated code's users.
public enum Suggestion {
    public static func closest<S: Sequence<String>>(to word: String, in candidates: S) -> String? {
        let w = Array(word.utf8)
        var best: (name: String, distance: Int)?
        for c in candidates where c != word {
            // A length difference alone past the limit rules a name out: cheap over 100k BTF names.
            let n = c.utf8.count
            if abs(n - w.count) > max(1, min(w.count, n) / 3) { continue }
            let d = distance(w, Array(c.utf8))
            if d <= max(1, min(w.count, c.utf8.count) / 3), d < (best?.distance ?? .max) { best = (c, d) }
        }
        return best?.name
    }

    /// Levenshtein distance, with a swap of two neighbours counting as one edit.
    static func distance(_ a: [UInt8], _ b: [UInt8]) -> Int {
        if a.isEmpty { return b.count }
        if b.isEmpty { return a.count }
        var previous2 = [Int](repeating: 0, count: b.count + 1)
        var previous = Array(0 ... b.count)
        var current = [Int](repeating: 0, count: b.count + 1)
        for i in 1 ... a.count {
            current[0] = i
            for j in 1 ... b.count {
                let cost = a[i - 1] == b[j - 1] ? 0 : 1
                var d = min(previous[j] + 1, current[j - 1] + 1, previous[j - 1] + cost)
                if i > 1, j > 1, a[i - 1] == b[j - 2], a[i - 2] == b[j - 1] { d = min(d, previous2[j - 2] + 1) }
                current[j] = d
            }
            (previous2, previous, current) = (previous, current, previous2)
        }
        return previous[b.count]
    }
}
