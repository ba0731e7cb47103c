#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif

/// Where a JSON text holds a number that an integer field cannot hold (256.5, 1e30). Foundation's JSONDecoder reports
/// such a number as "not valid JSON" with no coding path, in the same words as text that is not JSON at all, so a
/// reader's error would name neither the field nor the value. When the text is valid JSON, each number in it that is
/// not an Int is written as a string in turn, and the one whose field then fails to decode as an integer is it.
public enum UnfitNumber {
    /// One step of a path into JSON: an object's key or an array's index.
    public enum Step: Equatable, Sendable {
        case key(String), index(Int)
    }

    /// Numbers tried at most: each try decodes the whole text again, and a client's HELLO (64 KiB) could hold
    /// thousands of fractions.
    static let maxTries = 32

    /// The path to the first number in `json` that `type` needs as an integer and that is not one, and the number as
    /// written back; nil when the text is not JSON or has no such number among its first `maxTries` non-integers.
    public static func find<T: Decodable>(decoding type: T.Type, in json: Data) -> (path: [Step], value: String)? {
        guard let tree = try? JSONObject.parse(json) else { return nil }
        var candidates: [([Step], Double)] = []
        collectNonIntegers(tree, at: [], into: &candidates)
        for (path, number) in candidates.prefix(maxTries) {
            let value = "\(number)"
            guard let marked = try? JSONObject.data(replacing(path, in: tree, with: value)) else { continue }
            do {
                _ = try JSONDecoder().decode(type, from: marked)
            } catch let DecodingError.typeMismatch(expected, context) where "\(expected)".contains("Int") {
                if context.codingPath.map(step) == path { return (path, value) }
            } catch {}
        }
        return nil
    }

    private static func step(_ key: CodingKey) -> Step { key.intValue.map(Step.index) ?? .key(key.stringValue) }

    private static func collectNonIntegers(_ value: Any, at path: [Step], into found: inout [([Step], Double)]) {
        switch value {
        case let object as [String: Any]:
            for key in object.keys.sorted() { collectNonIntegers(object[key]!, at: path + [.key(key)], into: &found) }
        case let array as [Any]:
            for (index, child) in array.enumerated() { collectNonIntegers(child, at: path + [.index(index)], into: &found) }
        case let number as Double:
            found.append((path, number))
        default:
            break
        }
    }

    private static func replacing(_ path: [Step], in value: Any, with replacement: String) -> Any {
        guard let first = path.first else { return replacement }
        let rest = Array(path.dropFirst())
        switch (first, value) {
        case let (.key(key), object as [String: Any]):
            var copy = object
            copy[key] = object[key].map { replacing(rest, in: $0, with: replacement) }
            return copy
        case let (.index(index), array as [Any]) where array.indices.contains(index):
            var copy = array
            copy[index] = replacing(rest, in: array[index], with: replacement)
            return copy
        default:
            return value
        }
    }
}
