#if canImport(FoundationEssentials)
import FoundationEssentials
import Glibc
#else
import Foundation
#endif
import MTLSegSocket

/// A consumer of mtlsegd's stream: connects, says HELLO, and reads frames.
public final class WireClient {
    public enum Event: Equatable {
        case frame(FrameMessage)
        /// The daemon switched models; frames from now on follow this description.
        case streamChanged(StreamDescription)
        case stats([UInt8])
    }

    public enum Failure: Error, CustomStringConvertible {
        case refused(WireError)
        case closed
        case timeout
        case protocolViolation(String)

        public var description: String {
            switch self {
            case let .refused(error): return "the daemon refused: \(error)"
            case .closed: return "the daemon closed the connection"
            case .timeout: return "no message from the daemon in time"
            case let .protocolViolation(reason): return "unexpected data from the daemon: \(reason)"
            }
        }
    }

    public private(set) var stream: StreamDescription
    private let socket: UnixSocket
    private var decoder = MessageDecoder(limit: 1 << 26)
    private var buffer = [UInt8](repeating: 0, count: 1 << 16)

    /// Connects to the daemon at `path` and completes the handshake.
    public init(path: String, hello: Hello = Hello(), timeout: Double = 5) throws {
        socket = try UnixSocket.connect(to: path)
        stream = StreamDescription(model: .init(name: "", variant: "", precision: "", sha256: ""), maskWidth: 0, maskHeight: 0,
                                   tasks: [], encoding: .raw, latencies: [])
        // The daemon refuses a client it will not serve (not_allowed, server_full) as it accepts it, before HELLO,
        // and closes: then HELLO may fail to go out, but the ERROR is there to read.
        _ = socket.writeAll(MessageEncoder.encode(.hello(hello)), timeout: timeout)
        switch try readMessage(timeout: timeout) {
        case let .stream(description): stream = description
        case let .error(error): throw Failure.refused(error)
        default: throw Failure.protocolViolation("the first message was not STREAM")
        }
    }

    /// The next frame or stream change.
    public func next(timeout: Double = 10) throws -> Event {
        while true {
            switch try readMessage(timeout: timeout) {
            case let .frame(frame): return .frame(frame)
            case let .streamChanged(description):
                stream = description
                return .streamChanged(description)
            case let .stats(bytes): return .stats(bytes)
            case let .error(error): throw Failure.refused(error)
            default: throw Failure.protocolViolation("a client-side message type arrived")
            }
        }
    }

    /// Asks for the daemon's counters; the answer arrives as `.stats` from `next`.
    public func requestStats(timeout: Double = 5) throws {
        guard socket.writeAll(MessageEncoder.encode(.statsRequest), timeout: timeout) else { throw Failure.closed }
    }

    /// The masks of a frame as class ids (width × height, row-major), by task name.
    public func masks(of frame: FrameMessage) throws -> [String: [UInt8]] {
        let pixels = stream.maskWidth * stream.maskHeight
        var out: [String: [UInt8]] = [:]
        for mask in frame.masks {
            guard let task = stream.tasks.first(where: { $0.index == Int(mask.taskIndex) }) else {
                throw Failure.protocolViolation("a mask for task index \(mask.taskIndex), which the stream does not describe")
            }
            switch mask.encoding {
            case .raw:
                guard mask.data.count == pixels else { throw Failure.protocolViolation("raw mask of \(mask.data.count) bytes, expected \(pixels)") }
                out[task.name] = mask.data
            case .rle:
                guard let decoded = RunLength.decode(mask.data, count: pixels) else {
                    throw Failure.protocolViolation("run-length mask does not cover \(pixels) pixels")
                }
                out[task.name] = decoded
            }
        }
        return out
    }

    private func readMessage(timeout: Double) throws -> Message {
        while true {
            do {
                if let message = try decoder.next() { return message }
            } catch {
                throw Failure.protocolViolation("\(error)")
            }
            guard let count = socket.read(into: &buffer, timeout: timeout) else { throw Failure.timeout }
            guard count > 0 else { throw Failure.closed }
            buffer.withUnsafeBytes { decoder.append(UnsafeRawBufferPointer(rebasing: $0[0 ..< count])) }
        }
    }
}
