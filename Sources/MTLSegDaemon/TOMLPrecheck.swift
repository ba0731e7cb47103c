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
///     key = value          # value: "string", 'string', integer, float, true/false, or an [array] of them
///     [table]
///
/// An array may go over several lines, with comments after its values (a long allow-list); its lines are
/// checked as the one line they make, comments taken out.
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

    private static let arrayStart = pattern("^[ \\t]*\(key)[ \\t]*=[ \\t]*\\[")

    /// The first line outside the supported subset, with its number; nil when every line is fine.
    static func firstUnsupportedLine(_ text: String) -> (number: Int, line: String)? {
        for (number, line) in logicalLines(text) {
            let matches = [blank, table, assignment].contains { line.firstMatch(of: $0) != nil }
            if !matches { return (number, line) }
        }
        return nil
    }

    /// The text's lines, numbered from 1, with an array that is still open at the end of its line joined with the
    /// lines that close it (their comments taken out); one left open at the end of the text is returned as it stands.
    static func logicalLines(_ text: String) -> [(number: Int, line: String)] {
        var lines: [(number: Int, line: String)] = []
        var open: (number: Int, line: String, depth: Int)?
        for (index, raw) in text.split(separator: "\n", omittingEmptySubsequences: false).enumerated() {
            let line = raw.trimmingCharacters(where: { $0 == "\r" })
            let (code, depth) = codeAndBracketDepth(line)
            if var array = open {
                array.line += " " + code
                array.depth += depth
                if array.depth <= 0 { lines.append((array.number, array.line)) }
                open = array.depth > 0 ? array : nil
            } else if depth > 0, line.firstMatch(of: arrayStart) != nil {
                open = (index + 1, code, depth)
            } else {
                lines.append((index + 1, line))
            }
        }
        if let array = open { lines.append((array.number, array.line)) }
        return lines
    }

    /// `line` without its comment, and its brackets opened less closed, both outside strings. Scalar by scalar, as
    /// the patterns match (a quote followed by a combining mark is still a quote).
    private static func codeAndBracketDepth(_ line: String) -> (code: String, depth: Int) {
        let scalars = line.unicodeScalars
        var depth = 0
        var quote: Unicode.Scalar?
        var escaped = false
        for index in scalars.indices {
            let scalar = scalars[index]
            if let open = quote {
                if escaped { escaped = false } else if open == "\"" && scalar == "\\" { escaped = true } else if scalar == open { quote = nil }
                continue
            }
            switch scalar {
            case "\"", "'": quote = scalar
            case "[": depth += 1
            case "]": depth -= 1
            case "#": return (String(scalars[..<index]), depth)
            default: break
            }
        }
        return (line, depth)
    }
}
