#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif

/// Where a JSON text holds a number that an integer field cannot hold (256.5, 1e30). Foundation's JSONDecoder reports
/// such a number as "not valid JSON" with no coding path, in the same words as text that is not JSON at all, so a
/// reader's error would name neither the field nor the value. When the text is valid JSON, every number in it that is
/// not an Int is written as a string, and the text decoded again: the decoder now stops at the first such field with
/// the path it lacked. A field that takes fractions (a Float) also stops it; then every number under that field's
/// name (`scale` of every activation, every element of `mean`) gets its number back and the text is decoded once more.
public enum UnfitNumber {
    /// One step of a path into JSON: an object's key or an array's index.
    private enum Step: Hashable {
        case key(String), index(Int)
    }

    /// Decodings tried at most: one, plus one per name of a fraction-taking field met before the culprit (a model
    /// description has three). Each decodes the whole text again, and a client's HELLO is up to 64 KiB.
    static let maxTries = 16

    /// The coding path of the first number in `json` that `type` needs as an integer and that is not one (the decoder's
    /// own, for the caller to write as it writes its other errors' fields), and the number as written back; nil when
    /// the text is not JSON or no such number is found.
    public static func find<T: Decodable>(decoding type: T.Type, in json: Data) -> (codingPath: [CodingKey], value: String)? {
        guard let tree = try? JSONObject.parse(json) else { return nil }
        var numbers: [[Step]: Double] = [:]
        collectNonIntegers(tree, at: [], into: &numbers)
        var kept = Set<[Step]>()  // numbers left as numbers: their fields take fractions
        for _ in 0 ..< maxTries {
            guard let marked = try? JSONObject.data(stringifying(tree, at: [], except: kept)) else { return nil }
            do {
                _ = try JSONDecoder().decode(type, from: marked)
                return nil
            } catch let DecodingError.typeMismatch(expected, context) {
                let path = context.codingPath.map(step)
                guard let number = numbers[path], !kept.contains(path) else { return nil }
                if "\(expected)".contains("Int") { return (context.codingPath, "\(number)") }
                let name = fieldName(path)
                kept.formUnion(numbers.keys.filter { fieldName($0) == name })
            } catch {
                return nil
            }
        }
        return nil
    }

    private static func step(_ key: CodingKey) -> Step { key.intValue.map(Step.index) ?? .key(key.stringValue) }

    /// The last key on a path (an array element's is its array's).
    private static func fieldName(_ path: [Step]) -> String? {
        for step in path.reversed() { if case let .key(key) = step { return key } }
        return nil
    }

    private static func collectNonIntegers(_ value: Any, at path: [Step], into found: inout [[Step]: Double]) {
        switch value {
        case let object as [String: Any]:
            for (key, child) in object { collectNonIntegers(child, at: path + [.key(key)], into: &found) }
        case let array as [Any]:
            for (index, child) in array.enumerated() { collectNonIntegers(child, at: path + [.index(index)], into: &found) }
        case let number as Double:
            found[path] = number
        default:
            break
        }
    }

    /// `value` with every non-Int number written as a string, but those at the paths in `kept`.
    private static func stringifying(_ value: Any, at path: [Step], except kept: Set<[Step]>) -> Any {
        switch value {
        case let object as [String: Any]:
            return object.reduce(into: [String: Any]()) { $0[$1.key] = stringifying($1.value, at: path + [.key($1.key)], except: kept) }
        case let array as [Any]:
            return array.enumerated().map { stringifying($1, at: path + [.index($0)], except: kept) }
        case let number as Double where !kept.contains(path):
            return "\(number)"
        default:
            return value
        }
    }
}
