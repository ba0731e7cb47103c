import Foundation

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
    private static let table = try! NSRegularExpression(pattern: "^[ \\t]*\\[[ \\t]*\(key)([ \\t]*\\.[ \\t]*\(key))*[ \\t]*\\][ \\t]*(#.*)?$")
    private static let assignment = try! NSRegularExpression(pattern: "^[ \\t]*\(key)[ \\t]*=[ \\t]*\(value)[ \\t]*(#.*)?$")
    private static let blank = try! NSRegularExpression(pattern: "^[ \\t]*(#.*)?$")

    /// The first line outside the supported subset, with its number; nil when every line is fine.
    static func firstUnsupportedLine(_ text: String) -> (number: Int, line: String)? {
        for (index, line) in text.split(separator: "\n", omittingEmptySubsequences: false).enumerated() {
            let line = String(line).trimmingCharacters(in: CharacterSet(charactersIn: "\r"))
            let range = NSRange(line.startIndex..., in: line)
            let matches = [blank, table, assignment].contains { $0.firstMatch(in: line, range: range) != nil }
            if !matches { return (index + 1, line) }
        }
        return nil
    }
}
