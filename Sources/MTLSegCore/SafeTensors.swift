#if canImport(FoundationEssentials)
import FoundationEssentials
import Glibc
#else
import Foundation
#endif
import MTLSegEssentials

/// Element types a safetensors file may declare (the format's full list as HF
/// checkpoints use it).
public enum SafeTensorsDType: String, CaseIterable, Sendable {
    case BOOL, U8, I8, U16, I16, F16, BF16, U32, I32, F32, U64, I64, F64, F8_E4M3, F8_E5M2

    public var byteSize: Int {
        switch self {
        case .BOOL, .U8, .I8, .F8_E4M3, .F8_E5M2: return 1
        case .U16, .I16, .F16, .BF16: return 2
        case .U32, .I32, .F32: return 4
        case .U64, .I64, .F64: return 8
        }
    }

    /// Types whose values widen to fp32 without loss of meaning (weights).
    public var isFloatingPoint: Bool { [.F16, .BF16, .F32, .F64].contains(self) }
}

/// One tensor's entry in the header: where its bytes are and what they mean.
public struct SafeTensorsEntry: Sendable {
    public let name: String
    public let dtype: SafeTensorsDType
    public let shape: [Int]
    /// Byte range inside the data section (which starts after the header).
    public let byteRange: Range<Int>

    public var elementCount: Int { shape.reduce(1, *) }
}

/// A parsed, validated safetensors file. Parsing checks every header field
/// against the file, so reading a tensor afterwards cannot go out of bounds.
public struct SafeTensorsFile {
    public let path: String
    public let metadata: [String: String]
    /// Entries in the order of their data offsets.
    public let entries: [SafeTensorsEntry]
    private let index: [String: Int]
    private let bytes: Data
    private let dataStart: Int

    /// Largest header accepted; the format's own reference implementation uses 100 MB.
    static let maxHeaderBytes = 100_000_000

    public init(path: String) throws {
        try RegularFile.check(path)
        let data: Data
        do {
            data = try Data(contentsOf: URL(fileURLWithPath: path), options: .alwaysMapped)
        } catch {
            throw ModelError.unreadable(path: path, reason: Self.reason(error))
        }
        try self.init(bytes: data, path: path)
    }

    public init(bytes: Data, path: String = "<memory>") throws {
        self.path = path
        self.bytes = bytes
        guard bytes.count >= 8 else {
            throw ModelError.truncated(path: path, reason: "\(bytes.count) bytes, shorter than the 8-byte header length")
        }
        // What users give instead of a safetensors file, named, so that the next step is clear. (A safetensors header
        // length may begin with any byte, 0x80 included; its JSON header begins with '{' at byte 8.)
        let start = Array(bytes.prefix(4))
        let jsonFollows = bytes.count > 8 && bytes[bytes.startIndex + 8] == UInt8(ascii: "{")
        if !jsonFollows && (start == [0x50, 0x4B, 0x03, 0x04] || (start.first == 0x80 && (2 ... 5).contains(start.dropFirst().first ?? 0))) {
            let kind = start.first == 0x80 ? "a Python pickle" : "a zip archive"
            throw ModelError.badHeader(path: path, reason: "\(kind) (a PyTorch .pt/.pth checkpoint?), not a safetensors file: export the model "
                + "to an mtlseg model file with calibration/export.py (calibration/README.md)")
        }
        let headerLength = bytes.withUnsafeBytes { raw -> UInt64 in
            UInt64(littleEndian: raw.loadUnaligned(fromByteOffset: 0, as: UInt64.self))
        }
        guard headerLength <= UInt64(Self.maxHeaderBytes) else {
            throw ModelError.badHeader(path: path, reason: "header length \(headerLength) is over the \(Self.maxHeaderBytes)-byte limit")
        }
        guard headerLength <= UInt64(bytes.count - 8) else {
            throw ModelError.truncated(path: path, reason: "header length \(headerLength) passes the end of the file (\(bytes.count) bytes)")
        }
        dataStart = 8 + Int(headerLength)
        let headerBytes = bytes.subdata(in: bytes.startIndex + 8 ..< bytes.startIndex + dataStart)
        let json: Any
        do {
            json = try JSONObject.parse(headerBytes)
        } catch {
            throw ModelError.badHeader(path: path, reason: "not valid JSON (\(Self.reason(error)))")
        }
        guard let header = json as? [String: Any] else {
            throw ModelError.badHeader(path: path, reason: "the header is not a JSON object")
        }
        var metadata: [String: String] = [:]
        var entries: [SafeTensorsEntry] = []
        let dataLength = bytes.count - dataStart
        for (name, value) in header {
            if name == "__metadata__" {
                guard let map = value as? [String: Any] else {
                    throw ModelError.badMetadata(path: path, field: "__metadata__", reason: "not a JSON object")
                }
                for (key, item) in map {
                    guard let text = item as? String else {
                        throw ModelError.badMetadata(path: path, field: "__metadata__.\(key)", reason: "not a string")
                    }
                    metadata[key] = text
                }
                continue
            }
            entries.append(try Self.parseEntry(name: name, value: value, dataLength: dataLength, path: path))
        }
        entries.sort { ($0.byteRange.lowerBound, $0.byteRange.upperBound, $0.name) < ($1.byteRange.lowerBound, $1.byteRange.upperBound, $1.name) }
        for (previous, next) in zip(entries, entries.dropFirst()) where previous.byteRange.upperBound > next.byteRange.lowerBound {
            throw ModelError.overlappingTensors(path: path, first: previous.name, second: next.name)
        }
        self.metadata = metadata
        self.entries = entries
        var index: [String: Int] = [:]
        for (i, entry) in entries.enumerated() { index[entry.name] = i }
        self.index = index
    }

    private static func parseEntry(name: String, value: Any, dataLength: Int, path: String) throws -> SafeTensorsEntry {
        func fail(_ reason: String) -> ModelError { .badTensorEntry(path: path, tensor: name, reason: reason) }
        guard let fields = value as? [String: Any] else { throw fail("header entry is not a JSON object") }
        guard let dtypeName = fields["dtype"] as? String else { throw fail("no 'dtype' string") }
        guard let dtype = SafeTensorsDType(rawValue: dtypeName) else { throw fail("unknown dtype '\(dtypeName)'") }
        guard let shapeValues = fields["shape"] as? [Any], let shape = integers(shapeValues) else {
            throw fail("'shape' is not a list of integers")
        }
        guard shape.allSatisfy({ $0 >= 0 }) else { throw fail("negative dimension in shape \(shape)") }
        guard let offsetValues = fields["data_offsets"] as? [Any], let offsets = integers(offsetValues), offsets.count == 2 else {
            throw fail("'data_offsets' is not a pair of integers")
        }
        let (begin, end) = (offsets[0], offsets[1])
        guard begin >= 0, begin <= end else { throw fail("data_offsets [\(begin), \(end)] are not an ascending pair") }
        guard end <= dataLength else {
            throw fail("data_offsets [\(begin), \(end)] pass the end of the data section (\(dataLength) bytes)")
        }
        var elements = 1
        for dimension in shape {
            let (product, overflow) = elements.multipliedReportingOverflow(by: dimension)
            guard !overflow else { throw fail("shape \(shape) is too large") }
            elements = product
        }
        let (needed, overflow) = elements.multipliedReportingOverflow(by: dtype.byteSize)
        guard !overflow, needed == end - begin else {
            throw fail("data_offsets span \(end - begin) bytes but shape \(shape) of \(dtype.rawValue) needs \(elements * dtype.byteSize)")
        }
        return SafeTensorsEntry(name: name, dtype: dtype, shape: shape, byteRange: begin ..< end)
    }

    /// JSON integers arrive as Int (or Double when written with a fraction or exponent); reject
    /// fractions, booleans and anything else.
    private static func integers(_ values: [Any]) -> [Int]? {
        var result: [Int] = []
        for value in values {
            guard let double = JSONObject.double(value), let integer = JSONObject.int(value) else { return nil }
            guard double.rounded() == double, abs(double) < 9.0e15 else { return nil }
            result.append(integer)
        }
        return result
    }

    private static func reason(_ error: Error) -> String {
        errorReason(error)
    }

    public func entry(_ name: String) -> SafeTensorsEntry? {
        index[name].map { entries[$0] }
    }

    public var names: [String] { entries.map(\.name) }

    /// The tensor's raw little-endian bytes.
    public func rawBytes(_ entry: SafeTensorsEntry) -> Data {
        bytes.subdata(in: bytes.startIndex + dataStart + entry.byteRange.lowerBound ..< bytes.startIndex + dataStart + entry.byteRange.upperBound)
    }

    /// The tensor widened to fp32 into an aligned buffer. Only floating-point dtypes qualify.
    public func floats(_ entry: SafeTensorsEntry) throws -> FloatBuffer {
        guard entry.dtype.isFloatingPoint else {
            throw ModelError.wrongDType(path: path, tensor: entry.name, expected: "F32, F16, BF16 or F64", found: entry.dtype.rawValue)
        }
        let buffer = FloatBuffer(count: entry.elementCount)
        let out = buffer.pointer
        let start = dataStart + entry.byteRange.lowerBound
        bytes.withUnsafeBytes { raw in
            let base = raw.baseAddress!.advanced(by: start)
            for i in 0 ..< entry.elementCount {
                switch entry.dtype {
                case .F32:
                    out[i] = Float(bitPattern: UInt32(littleEndian: base.loadUnaligned(fromByteOffset: i * 4, as: UInt32.self)))
                case .F16:
                    out[i] = Float(Self.halfToFloat(UInt16(littleEndian: base.loadUnaligned(fromByteOffset: i * 2, as: UInt16.self))))
                case .BF16:
                    out[i] = Float(bitPattern: UInt32(UInt16(littleEndian: base.loadUnaligned(fromByteOffset: i * 2, as: UInt16.self))) << 16)
                case .F64:
                    out[i] = Float(Double(bitPattern: UInt64(littleEndian: base.loadUnaligned(fromByteOffset: i * 8, as: UInt64.self))))
                default:
                    break
                }
            }
        }
        return buffer
    }

    /// The tensor as signed integers (I8…I64, U8…U32, BOOL).
    public func integers(_ entry: SafeTensorsEntry) throws -> [Int64] {
        let start = dataStart + entry.byteRange.lowerBound
        return try bytes.withUnsafeBytes { raw -> [Int64] in
            let base = raw.baseAddress!.advanced(by: start)
            return try (0 ..< entry.elementCount).map { i -> Int64 in
                switch entry.dtype {
                case .BOOL, .U8: return Int64(base.load(fromByteOffset: i, as: UInt8.self))
                case .I8: return Int64(base.load(fromByteOffset: i, as: Int8.self))
                case .U16: return Int64(UInt16(littleEndian: base.loadUnaligned(fromByteOffset: i * 2, as: UInt16.self)))
                case .I16: return Int64(Int16(littleEndian: base.loadUnaligned(fromByteOffset: i * 2, as: Int16.self)))
                case .U32: return Int64(UInt32(littleEndian: base.loadUnaligned(fromByteOffset: i * 4, as: UInt32.self)))
                case .I32: return Int64(Int32(littleEndian: base.loadUnaligned(fromByteOffset: i * 4, as: Int32.self)))
                case .I64: return Int64(littleEndian: base.loadUnaligned(fromByteOffset: i * 8, as: Int64.self))
                default:
                    throw ModelError.wrongDType(path: path, tensor: entry.name, expected: "an integer type", found: entry.dtype.rawValue)
                }
            }
        }
    }

    /// IEEE binary16 to binary32, written out because Float16 is not available on every platform Swift targets.
    static func halfToFloat(_ bits: UInt16) -> Float {
        let sign = UInt32(bits & 0x8000) << 16
        let exponent = Int((bits >> 10) & 0x1F)
        let mantissa = UInt32(bits & 0x3FF)
        if exponent == 0 {
            let magnitude = Float(mantissa) * Float(sign: .plus, exponent: -24, significand: 1)
            return sign != 0 ? -magnitude : magnitude
        }
        if exponent == 31 {
            return Float(bitPattern: sign | 0x7F80_0000 | (mantissa << 13))
        }
        return Float(bitPattern: sign | UInt32(exponent - 15 + 127) << 23 | (mantissa << 13))
    }
}

/// Builds a safetensors file: tensors in the order they are added, each aligned
/// to 8 bytes past the start of the data section (as the reference writer does).
public struct SafeTensorsWriter {
    private struct Pending {
        let name: String
        let dtype: SafeTensorsDType
        let shape: [Int]
        let bytes: Data
    }

    private var tensors: [Pending] = []
    public var metadata: [String: String] = [:]

    public init() {}

    public mutating func add(_ name: String, dtype: SafeTensorsDType, shape: [Int], bytes: Data) {
        precondition(shape.reduce(1, *) * dtype.byteSize == bytes.count, "\(name): \(bytes.count) bytes do not fit shape \(shape) of \(dtype)")
        tensors.append(Pending(name: name, dtype: dtype, shape: shape, bytes: bytes))
    }

    public mutating func add(_ name: String, shape: [Int], floats: UnsafeBufferPointer<Float>) {
        var data = Data(capacity: floats.count * 4)
        for value in floats { withUnsafeBytes(of: value.bitPattern.littleEndian) { data.append(contentsOf: $0) } }
        add(name, dtype: .F32, shape: shape, bytes: data)
    }

    public mutating func add(_ name: String, shape: [Int], floats: [Float]) {
        floats.withUnsafeBufferPointer { add(name, shape: shape, floats: $0) }
    }

    public mutating func add(_ name: String, shape: [Int], int8s: [Int8]) {
        add(name, dtype: .I8, shape: shape, bytes: int8s.withUnsafeBytes { Data($0) })
    }

    public func serialized() -> Data {
        var header = "{"
        var fields: [String] = []
        if !metadata.isEmpty {
            let items = metadata.keys.sorted().map { "\(JSONText.quote($0)):\(JSONText.quote(metadata[$0]!))" }
            fields.append("\"__metadata__\":{\(items.joined(separator: ","))}")
        }
        var offset = 0
        for tensor in tensors {
            let end = offset + tensor.bytes.count
            let shape = tensor.shape.map(String.init).joined(separator: ",")
            fields.append("\(JSONText.quote(tensor.name)):{\"dtype\":\"\(tensor.dtype.rawValue)\",\"shape\":[\(shape)],\"data_offsets\":[\(offset),\(end)]}")
            offset = end
        }
        header += fields.joined(separator: ",") + "}"
        // Pad the header with spaces so the data section starts 8-byte aligned.
        while (header.utf8.count % 8) != 0 { header += " " }
        var out = Data()
        withUnsafeBytes(of: UInt64(header.utf8.count).littleEndian) { out.append(contentsOf: $0) }
        out.append(contentsOf: Array(header.utf8))
        for tensor in tensors { out.append(tensor.bytes) }
        return out
    }

    public func write(to path: String) throws {
        try FileReplacement.replace(path, with: serialized())
    }
}

/// Minimal JSON string quoting for hand-assembled JSON whose key order matters.
enum JSONText {
    static func quote(_ text: String) -> String {
        var out = "\""
        for scalar in text.unicodeScalars {
            switch scalar {
            case "\"": out += "\\\""
            case "\\": out += "\\\\"
            case "\n": out += "\\n"
            case "\r": out += "\\r"
            case "\t": out += "\\t"
            default:
                if scalar.value < 0x20 {
                    out += String(cFormat: "\\u%04x", scalar.value)
                } else {
                    out.unicodeScalars.append(scalar)
                }
            }
        }
        return out + "\""
    }
}
