#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif

/// JSON as plain Swift values, for the places that read or write JSON of loose shape: objects are
/// `[String: Any]`, arrays `[Any]`, then `String`, `Bool`, `Int` (integers that fit), `Double`, and
/// `JSONObject.null`. It stands in for JSONSerialization, which is in the full Foundation (and links
/// ICU's data into the binary); the parsing and printing are JSONDecoder's and JSONEncoder's.
public enum JSONObject {
    /// JSON's `null`.
    public struct Null: Equatable, Sendable {}
    public static let null = Null()

    public struct UnsupportedValue: Error, CustomStringConvertible {
        public let value: String
        public var description: String { "cannot be written as JSON: \(value)" }
    }

    /// Parses a JSON text; the error is JSONDecoder's.
    public static func parse(_ data: Data) throws -> Any {
        try JSONDecoder().decode(Value.self, from: data).plain
    }

    /// Writes `object` (made of the types above, any integer or floating-point type, and
    /// `[String: T]`/`[T]` of them) with its keys sorted, on one line or indented.
    public static func data(_ object: Any, prettyPrinted: Bool = false) throws -> Data {
        let encoder = JSONEncoder()
        encoder.outputFormatting = prettyPrinted ? [.sortedKeys, .prettyPrinted] : [.sortedKeys]
        return try encoder.encode(try Value(object))
    }

    /// A number as a Double (Int or Double); nil for anything else, booleans included.
    public static func double(_ value: Any?) -> Double? {
        switch value {
        case let number as Int: return Double(number)
        case let number as Double: return number
        default: return nil
        }
    }

    /// A number as an Int, a fraction cut off as NSNumber.intValue does; nil for anything else,
    /// booleans included.
    public static func int(_ value: Any?) -> Int? {
        switch value {
        case let number as Int: return number
        case let number as Double where number.isFinite && abs(number) < 9.2e18: return Int(number)
        default: return nil
        }
    }

    private enum Value: Codable {
        case null, bool(Bool), int(Int), double(Double), string(String), array([Value]), object([String: Value])

        init(from decoder: Decoder) throws {
            let container = try decoder.singleValueContainer()
            if container.decodeNil() { self = .null }
            else if let value = try? container.decode(Bool.self) { self = .bool(value) }
            else if let value = try? container.decode(Int.self) { self = .int(value) }
            else if let value = try? container.decode(Double.self) { self = .double(value) }
            else if let value = try? container.decode(String.self) { self = .string(value) }
            else if let value = try? container.decode([Value].self) { self = .array(value) }
            else { self = .object(try container.decode([String: Value].self)) }
        }

        func encode(to encoder: Encoder) throws {
            var container = encoder.singleValueContainer()
            switch self {
            case .null: try container.encodeNil()
            case let .bool(value): try container.encode(value)
            case let .int(value): try container.encode(value)
            case let .double(value): try container.encode(value)
            case let .string(value): try container.encode(value)
            case let .array(value): try container.encode(value)
            case let .object(value): try container.encode(value)
            }
        }

        var plain: Any {
            switch self {
            case .null: return JSONObject.null
            case let .bool(value): return value
            case let .int(value): return value
            case let .double(value): return value
            case let .string(value): return value
            case let .array(value): return value.map(\.plain)
            case let .object(value): return value.mapValues(\.plain)
            }
        }

        init(_ object: Any) throws {
            switch object {
            case is Null: self = .null
            case let value as Bool: self = .bool(value)
            case let value as String: self = .string(value)
            case let value as Substring: self = .string(String(value))
            case let value as any BinaryInteger:
                guard let int = Int(exactly: value) else { throw UnsupportedValue(value: "\(value)") }
                self = .int(int)
            case let value as any BinaryFloatingPoint: self = .double(Double(value))
            case let value as [String: Any]: self = .object(try value.mapValues(Value.init))
            case let value as [Any]: self = .array(try value.map(Value.init))
            case let value as Value: self = value
            default: throw UnsupportedValue(value: "\(type(of: object))")
            }
        }
    }
}
