/// Where calibration smooths activations per channel before quantizing: attention's output (`AttentionSmoothing`),
/// the decoder's inputs and fused map (`DecoderSmoothing`). Each rewrite leaves the fp32 function unchanged.
public struct SmoothingSites: OptionSet, Sendable, CustomStringConvertible {
    public let rawValue: Int
    public init(rawValue: Int) { self.rawValue = rawValue }

    public static let attention = SmoothingSites(rawValue: 1)
    public static let decoder = SmoothingSites(rawValue: 2)

    private static let names: [(String, SmoothingSites)] = [("attention", .attention), ("decoder", .decoder)]

    /// "none", or a comma-separated list of "attention" and "decoder"; nil for anything else.
    public init?(parsing text: String) {
        self = []
        guard text != "none" else { return }
        for word in text.split(separator: ",", omittingEmptySubsequences: false) {
            guard let site = Self.names.first(where: { $0.0 == word })?.1 else { return nil }
            insert(site)
        }
    }

    /// As `init(parsing:)` reads it: "none", or the sites separated by commas.
    public var description: String {
        isEmpty ? "none" : Self.names.filter { contains($0.1) }.map(\.0).joined(separator: ",")
    }
}
