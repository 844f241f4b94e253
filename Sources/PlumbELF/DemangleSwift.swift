extension Demangler {
    public static func demangleSwift(_ symbol: String) -> String? { nil }
}
