#if canImport(FoundationEssentials)
import FoundationEssentials
import Glibc
#else
import Foundation
#endif
import MTLSegEssentials

/// TOMLKit's parser (toml++) aborts the whole process on some malformed keys and table
/// headers (found by fuzzing: `[\u{FFFD}ource]`, `[{oue = …`). mtlsegd's configuration
/// needs only a small part of TOML, so each line is checked against that part first, and
/// only text that passes reaches the parser:
///
///     # comment
///     key = value          # value: "string", 'string', integer, float, true/false, or a one-line [array] of them
///     [table]
enum TOMLPrecheck {
    private static let key = #"[A-Za-z0-9_-]+"#
    private static let scalar = #"("([^"\\]|\\.)*"|'[^']*'|[+-]?[0-9][0-9_]*(\.[0-9_]+)?([eE][+-]?[0-9]+)?|true|false)"#
    // Whitespace is what TOML calls whitespace: space and tab only (the parser asserts on others, e.g. form feed).
    private static let value = "(\(scalar)|\\[[ \\t]*(\(scalar)[ \\t]*(,[ \\t]*\(scalar)[ \\t]*)*,?[ \\t]*)?\\])"
    private static let table = pattern("^[ \\t]*\\[[ \\t]*\(key)([ \\t]*\\.[ \\t]*\(key))*[ \\t]*\\][ \\t]*(#.*)?$")
    private static let assignment = pattern("^[ \\t]*\(key)[ \\t]*=[ \\t]*\(value)[ \\t]*(#.*)?$")
    private static let blank = pattern("^[ \\t]*(#.*)?$")

    /// Swift Regex matching Unicode scalar by scalar, as NSRegularExpression (ICU) did, not by
    /// grapheme: a quote followed by a combining mark is still a quote.
    private static func pattern(_ text: String) -> Regex<AnyRegexOutput> {
        try! Regex(text).matchingSemantics(.unicodeScalar)
    }

    /// The first line outside the supported subset, with its number; nil when every line is fine.
    static func firstUnsupportedLine(_ text: String) -> (number: Int, line: String)? {
        for (index, line) in text.split(separator: "\n", omittingEmptySubsequences: false).enumerated() {
            let line = line.trimmingCharacters(where: { $0 == "\r" })
            let matches = [blank, table, assignment].contains { line.firstMatch(of: $0) != nil }
            if !matches { return (index + 1, line) }
        }
        return nil
    }
}
