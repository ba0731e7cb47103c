#if canImport(FoundationEssentials)
import FoundationEssentials
import Glibc
#else
import Foundation
#endif
import MTLSegEssentials

/// Why bytes could not be read as a message.
public enum DecodeError: Error, Equatable, CustomStringConvertible {
    case tooLarge(length: Int, limit: Int)
    case empty
    case unknownType(UInt8)
    case malformed(type: String, reason: String)
    /// HTTP where a message's length should be: a mask client at the metrics socket ("HTTP/1.1 …"), or curl at the
    /// mask socket ("GET / …"). Its first four bytes, as text.
    case http(String)

    public var description: String {
        switch self {
        case let .http(start) where start == "HTTP":
            return "an HTTP reply, not mtlseg's protocol: this is an HTTP socket (mtlsegd's [metrics] socket?), not the mask socket"
        case .http:
            return "an HTTP request, not mtlseg's protocol (PROTOCOL.md): metrics are served on the [metrics] socket"
        case let .tooLarge(length, limit): return "message of \(length) bytes is over the \(limit)-byte limit"
        case .empty: return "message has no type byte"
        case let .unknownType(type): return String(cFormat: "unknown message type 0x%02x", type)
        case let .malformed(type, reason): return "malformed \(type) message: \(reason)"
        }
    }

    /// An HTTP request (curl or a browser at the mask socket), which the server answers in HTTP.
    public var isHTTPRequest: Bool {
        if case let .http(start) = self { return start != "HTTP" }
        return false
    }

    /// The ERROR code the server answers with.
    public var wireCode: String {
        if case .tooLarge = self { return WireError.tooLarge }
        return WireError.badMessage
    }
}

/// Messages to bytes: [u32 LE length of type + payload][u8 type][payload] (PROTOCOL.md).
public enum MessageEncoder {
    public static func encode(_ message: Message) -> [UInt8] {
        var payload: [UInt8]
        let type: MessageType
        switch message {
        case let .hello(hello): type = .hello; payload = json(hello)
        case let .stream(stream): type = .stream; payload = json(stream)
        case let .streamChanged(stream): type = .streamChanged; payload = json(stream)
        case let .error(error): type = .error; payload = json(error)
        case .statsRequest: type = .statsRequest; payload = []
        case let .stats(bytes): type = .stats; payload = bytes
        case let .frame(frame): return encodeFrame(frame)
        }
        var out: [UInt8] = []
        out.reserveCapacity(5 + payload.count)
        appendLE(UInt32(payload.count + 1), to: &out)
        out.append(type.rawValue)
        out.append(contentsOf: payload)
        return out
    }

    static func json<T: Encodable>(_ value: T) -> [UInt8] {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        return Array(try! encoder.encode(value))
    }

    /// A whole FRAME message (framing included), through `appendFrame`'s layout.
    static func encodeFrame(_ f: FrameMessage) -> [UInt8] {
        var out: [UInt8] = []
        out.reserveCapacity(frameSize(latencies: f.latenciesMicroseconds.count, masks: 0, maskBytes: 0)
            + f.masks.reduce(0) { $0 + 6 + $1.data.count })
        appendFrame(sequence: f.sequence, captureMonotonicNanoseconds: f.captureMonotonicNanoseconds,
                    captureRealtimeNanoseconds: f.captureRealtimeNanoseconds, dropped: f.droppedForClient,
                    latenciesMicroseconds: f.latenciesMicroseconds, maskCount: f.masks.count, to: &out) { i, out in
            let mask = f.masks[i]
            out.append(contentsOf: mask.data)
            return (mask.taskIndex, mask.encoding)
        }
        return out
    }

    /// Bytes of a FRAME message (framing included) with `latencies` stage latencies and `masks` masks of `maskBytes`
    /// bytes each: the 5 bytes of framing, 29 of header (sequence, two capture times, dropped, the latency count),
    /// 4 per latency, the mask count, and per mask 6 (task, encoding, length) and its bytes.
    public static func frameSize(latencies: Int, masks: Int, maskBytes: Int) -> Int {
        5 + 29 + 4 * latencies + 1 + masks * (6 + maskBytes)
    }

    /// A whole FRAME message (framing included) added to the end of `out`, each mask read where `mask(i)` points
    /// (`i` in 0..<maskCount) and encoded as `encoding`: the bytes `encode(.frame(...))` makes, without the copies
    /// in between, so a sender that keeps `out` allocates nothing per frame.
    public static func appendFrame(sequence: UInt64, captureMonotonicNanoseconds: UInt64, captureRealtimeNanoseconds: UInt64,
                                   dropped: UInt32, latenciesMicroseconds: [UInt32], maskCount: Int, encoding: MaskEncoding,
                                   to out: inout [UInt8], mask: (Int) -> (taskIndex: UInt8, pixels: UnsafeBufferPointer<UInt8>)) {
        appendFrame(sequence: sequence, captureMonotonicNanoseconds: captureMonotonicNanoseconds,
                    captureRealtimeNanoseconds: captureRealtimeNanoseconds, dropped: dropped,
                    latenciesMicroseconds: latenciesMicroseconds, maskCount: maskCount, to: &out) { i, out in
            let (taskIndex, pixels) = mask(i)
            if encoding == .raw { out.append(contentsOf: pixels) } else { RunLength.append(pixels, to: &out) }
            return (taskIndex, encoding)
        }
    }

    /// FRAME's layout (PROTOCOL.md), written in this one place: the framing and header, then for each mask its task
    /// index, encoding and length around the bytes `appendMask(i, &out)` adds to the end of `out` (it returns the
    /// mask's task index and encoding). Allocates nothing beyond what `out` and `appendMask` take.
    @inline(__always)
    private static func appendFrame(sequence: UInt64, captureMonotonicNanoseconds: UInt64, captureRealtimeNanoseconds: UInt64,
                                    dropped: UInt32, latenciesMicroseconds: [UInt32], maskCount: Int, to out: inout [UInt8],
                                    appendMask: (Int, inout [UInt8]) -> (taskIndex: UInt8, encoding: MaskEncoding)) {
        let start = out.count
        appendLE(UInt32(0), to: &out)  // the length, set at the end
        out.append(MessageType.frame.rawValue)
        appendLE(sequence, to: &out)
        appendLE(captureMonotonicNanoseconds, to: &out)
        appendLE(captureRealtimeNanoseconds, to: &out)
        appendLE(dropped, to: &out)
        out.append(UInt8(latenciesMicroseconds.count))
        for latency in latenciesMicroseconds { appendLE(latency, to: &out) }
        out.append(UInt8(maskCount))
        for i in 0 ..< maskCount {
            // Task index, encoding and length, set once the mask's bytes are in.
            let headerAt = out.count
            out.append(0)
            out.append(0)
            appendLE(UInt32(0), to: &out)
            let (taskIndex, encoding) = appendMask(i, &out)
            out[headerAt] = taskIndex
            out[headerAt + 1] = encoding.code
            setLE(UInt32(out.count - headerAt - 6), at: headerAt + 2, in: &out)
        }
        setLE(UInt32(out.count - start - 4), at: start, in: &out)
    }

    static func setLE(_ value: UInt32, at offset: Int, in out: inout [UInt8]) {
        for k in 0 ..< 4 { out[offset + k] = UInt8(truncatingIfNeeded: value >> (8 * k)) }
    }

    static func appendLE<T: FixedWidthInteger>(_ value: T, to out: inout [UInt8]) {
        withUnsafeBytes(of: value.littleEndian) { out.append(contentsOf: $0) }
    }
}

/// Bytes to messages, incrementally: feed what the socket gave, take whole messages out.
public struct MessageDecoder {
    /// The largest message accepted (type byte + payload).
    public let limit: Int
    private var buffer: [UInt8] = []
    private var start = 0

    public init(limit: Int) { self.limit = limit }

    public mutating func append(_ bytes: UnsafeRawBufferPointer) {
        if start > 0 && start >= buffer.count / 2 {
            buffer.removeFirst(start)
            start = 0
        }
        buffer.append(contentsOf: bytes)
    }

    public mutating func append(_ bytes: [UInt8]) {
        bytes.withUnsafeBytes { append($0) }
    }

    /// Bytes received but not yet part of a whole message.
    public var pendingCount: Int { buffer.count - start }

    /// What HTTP begins with (a reply, or a request's method): read as a length, each is over a gigabyte, never a message.
    static let httpStarts: Set<String> = ["HTTP", "GET ", "POST", "HEAD", "PUT "]

    /// The next whole message, nil if more bytes are needed; throws on bytes that can never become a valid message.
    public mutating func next() throws -> Message? {
        guard buffer.count - start >= 4 else { return nil }
        let length = Int(UInt32(buffer[start]) | UInt32(buffer[start + 1]) << 8 | UInt32(buffer[start + 2]) << 16 | UInt32(buffer[start + 3]) << 24)
        let head = String(decoding: buffer[start ..< start + 4], as: UTF8.self)
        if Self.httpStarts.contains(head) { throw DecodeError.http(head) }
        guard length >= 1 else { throw DecodeError.empty }
        guard length <= limit else { throw DecodeError.tooLarge(length: length, limit: limit) }
        guard buffer.count - start >= 4 + length else { return nil }
        let type = buffer[start + 4]
        let payload = Array(buffer[(start + 5) ..< (start + 4 + length)])
        start += 4 + length
        return try Self.decode(type: type, payload: payload)
    }

    static func decode(type code: UInt8, payload: [UInt8]) throws -> Message {
        guard let type = MessageType(rawValue: code) else { throw DecodeError.unknownType(code) }
        switch type {
        case .hello: return .hello(try json(Hello.self, payload, "HELLO"))
        case .stream: return .stream(try json(StreamDescription.self, payload, "STREAM"))
        case .streamChanged: return .streamChanged(try json(StreamDescription.self, payload, "STREAM_CHANGED"))
        case .error: return .error(try json(WireError.self, payload, "ERROR"))
        case .statsRequest:
            guard payload.isEmpty else { throw DecodeError.malformed(type: "STATS_REQUEST", reason: "carries a payload") }
            return .statsRequest
        case .stats: return .stats(payload)
        case .frame: return .frame(try decodeFrame(payload))
        }
    }

    static func json<T: Decodable>(_ type: T.Type, _ payload: [UInt8], _ name: String) throws -> T {
        do {
            return try JSONDecoder().decode(type, from: Data(payload))
        } catch let error as DecodingError {
            if case let .dataCorrupted(context) = error, context.codingPath.isEmpty,
               let unfit = UnfitNumber.find(decoding: type, in: Data(payload)) {
                throw DecodeError.malformed(type: name, reason: "\(field(unfit.codingPath)) must be an integer its field can hold, not \(unfit.value)")
            }
            throw DecodeError.malformed(type: name, reason: reason(error))
        } catch {
            throw DecodeError.malformed(type: name, reason: "payload is not a JSON object")
        }
    }

    /// Which field was wrong, for the ERROR a client gets (a bad `encoding`, a number where a list belongs …).
    /// A coding path as the ERROR names a field: `'tasks.1'`; the whole payload for none.
    private static func field(_ path: [CodingKey]) -> String {
        path.isEmpty ? "the payload" : "'" + path.map { $0.intValue.map(String.init) ?? $0.stringValue }.joined(separator: ".") + "'"
    }

    static func reason(_ error: DecodingError) -> String {
        switch error {
        case let .keyNotFound(key, context): return "\(field(context.codingPath + [key])) is missing"
        case let .typeMismatch(type, context): return "\(field(context.codingPath)) must be \(expected(type))"
        case let .valueNotFound(type, context): return "\(field(context.codingPath)) must be \(expected(type)), not null"
        case let .dataCorrupted(context):
            if context.codingPath.last?.stringValue == "encoding" { return "'encoding' must be \"raw\" or \"rle\"" }
            if context.codingPath.last?.stringValue == "mask_size" { return "'mask_size' \(context.debugDescription)" }
            guard context.codingPath.isEmpty else { return "\(field(context.codingPath)) has an invalid value" }
            // The decoder reports a number no integer field can hold (1e100, 1.5) with no path and in the same words as
            // text that is not JSON at all; `json` names the field where it can find it (UnfitNumber), else both causes.
            return "payload is not a JSON object, or a number in it is not an integer its field can hold (e.g. 'protocol': 1e100)"
        @unknown default: return "payload is not the expected JSON object"
        }
    }

    private static func expected(_ type: Any.Type) -> String {
        switch type {
        case is String.Type, is MaskEncoding.Type, is MaskSize.Type: return "a string"
        case is Int.Type: return "an integer"
        case is [String].Type: return "a list of strings"
        case is [Any].Type: return "a list"
        default: return type == [String: Any].self ? "an object" : "a \(type)"
        }
    }

    static func decodeFrame(_ p: [UInt8]) throws -> FrameMessage {
        var reader = ByteReader(bytes: p)
        func fail(_ reason: String) -> DecodeError { .malformed(type: "FRAME", reason: reason) }
        guard let sequence = reader.u64(), let monotonic = reader.u64(), let realtime = reader.u64(), let dropped = reader.u32(),
              let latencyCount = reader.u8() else { throw fail("truncated header") }
        var latencies: [UInt32] = []
        for _ in 0 ..< latencyCount {
            guard let value = reader.u32() else { throw fail("truncated latencies") }
            latencies.append(value)
        }
        guard let maskCount = reader.u8() else { throw fail("truncated mask count") }
        var masks: [EncodedMask] = []
        for _ in 0 ..< maskCount {
            guard let task = reader.u8(), let code = reader.u8(), let length = reader.u32() else { throw fail("truncated mask header") }
            guard let encoding = MaskEncoding(code: code) else { throw fail("unknown mask encoding \(code)") }
            guard let data = reader.bytes(Int(length)) else { throw fail("mask data shorter than its length") }
            masks.append(EncodedMask(taskIndex: task, encoding: encoding, data: data))
        }
        guard reader.remaining == 0 else { throw fail("\(reader.remaining) bytes after the last mask") }
        return FrameMessage(sequence: sequence, captureMonotonicNanoseconds: monotonic, captureRealtimeNanoseconds: realtime,
                            droppedForClient: dropped, latenciesMicroseconds: latencies, masks: masks)
    }
}

/// Little-endian reads that return nil instead of reading past the end.
struct ByteReader {
    let bytes: [UInt8]
    var offset = 0

    var remaining: Int { bytes.count - offset }

    mutating func u8() -> UInt8? {
        guard remaining >= 1 else { return nil }
        defer { offset += 1 }
        return bytes[offset]
    }

    mutating func u32() -> UInt32? { integer(UInt32.self) }
    mutating func u64() -> UInt64? { integer(UInt64.self) }

    mutating func integer<T: FixedWidthInteger>(_ type: T.Type) -> T? {
        let size = MemoryLayout<T>.size
        guard remaining >= size else { return nil }
        var value: T = 0
        for i in 0 ..< size { value |= T(bytes[offset + i]) << (8 * i) }
        offset += size
        return value
    }

    mutating func bytes(_ count: Int) -> [UInt8]? {
        guard count >= 0, remaining >= count else { return nil }
        defer { offset += count }
        return Array(bytes[offset ..< offset + count])
    }
}
