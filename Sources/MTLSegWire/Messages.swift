#if canImport(FoundationEssentials)
import FoundationEssentials
import Glibc
#else
import Foundation
#endif
import MTLSegEssentials

/// The protocol version this build speaks (PROTOCOL.md).
public let wireProtocolVersion = 1

/// The one-byte type of every message (PROTOCOL.md, "Messages").
public enum MessageType: UInt8, Sendable {
    case hello = 0x01
    case stream = 0x02
    case frame = 0x03
    case streamChanged = 0x04
    case error = 0x05
    case statsRequest = 0x06
    case stats = 0x07
}

/// How a mask's class ids travel.
public enum MaskEncoding: String, Codable, Sendable {
    /// width × height bytes, row-major.
    case raw
    /// Runs of (u8 class, u16 little-endian length) covering the mask row-major.
    case rle

    var code: UInt8 { self == .raw ? 0 : 1 }
    init?(code: UInt8) {
        switch code {
        case 0: self = .raw
        case 1: self = .rle
        default: return nil
        }
    }
}

/// The size a client wants its masks at (HELLO `mask_size`).
public enum MaskSize: Equatable, Hashable, Sendable, Codable, CustomStringConvertible {
    /// The model's output grid (STREAM's `mask_width` × `mask_height` without the option).
    case model
    /// The capture size the daemon is configured for.
    case source
    /// Any size: the logits are resized bilinearly to it before the argmax.
    case pixels(width: Int, height: Int)

    /// The largest width or height a client may ask for.
    public static let maxSide = 8192
    /// The most pixels a mask may have (3840 × 2160): every frame carries one such mask per task and client size.
    public static let maxPixels = 3840 * 2160
    /// What a bad value is told.
    public static let expectation = "\"model\", \"source\" or \"<width>x<height>\" (each 1 to \(maxSide), at most 3840x2160 pixels in all)"

    /// "model", "source" or "<width>x<height>" (decimal, e.g. "1280x720"); nil for anything else or a size out of bounds.
    public init?(_ text: String) {
        switch text {
        case "model": self = .model
        case "source": self = .source
        default:
            // Digits only (at most 5 a side), the lowercase x, nothing else.
            guard let size = WidthByHeight.parse(text, sides: 1 ... Self.maxSide, maxPixels: Self.maxPixels) else { return nil }
            self = .pixels(width: size.width, height: size.height)
        }
    }

    public var description: String {
        switch self {
        case .model: return "model"
        case .source: return "source"
        case let .pixels(width, height): return "\(width)x\(height)"
        }
    }

    public init(from decoder: Decoder) throws {
        let container = try decoder.singleValueContainer()
        let text = try container.decode(String.self)
        guard let size = MaskSize(text) else {
            throw DecodingError.dataCorruptedError(in: container, debugDescription: "must be \(Self.expectation), not \"\(text.prefix(40))\"")
        }
        self = size
    }

    public func encode(to encoder: Encoder) throws {
        var container = encoder.singleValueContainer()
        try container.encode(description)
    }
}

/// Client → server, first message: what the client wants.
public struct Hello: Codable, Equatable, Sendable {
    public var `protocol`: Int
    public var encoding: MaskEncoding?
    /// Names of the tasks to receive; nil or absent: all.
    public var tasks: [String]?
    /// Free text for the daemon's logs.
    public var name: String?
    /// The size of the masks; nil or absent: the model's output grid.
    public var maskSize: MaskSize?

    enum CodingKeys: String, CodingKey {
        case `protocol`, encoding, tasks, name, maskSize = "mask_size"
    }

    public init(protocol: Int = wireProtocolVersion, encoding: MaskEncoding? = .raw, tasks: [String]? = nil, name: String? = nil,
                maskSize: MaskSize? = nil) {
        self.protocol = `protocol`
        self.encoding = encoding
        self.tasks = tasks
        self.name = name
        self.maskSize = maskSize
    }
}

/// Server → client: what the frames that follow contain (STREAM and STREAM_CHANGED).
public struct StreamDescription: Codable, Equatable, Sendable {
    public struct Model: Codable, Equatable, Sendable {
        public var name: String
        public var variant: String
        public var precision: String
        /// SHA-256 of the model file, hex: which model exactly.
        public var sha256: String

        public init(name: String, variant: String, precision: String, sha256: String) {
            self.name = name
            self.variant = variant
            self.precision = precision
            self.sha256 = sha256
        }
    }

    public struct Task: Codable, Equatable, Sendable {
        /// The index FRAME messages use for this task.
        public var index: Int
        public var name: String
        public var classes: [String]
        /// [r, g, b] per class.
        public var colors: [[Int]]

        public init(index: Int, name: String, classes: [String], colors: [[Int]]) {
            self.index = index
            self.name = name
            self.classes = classes
            self.colors = colors
        }
    }

    public var `protocol`: Int
    public var model: Model
    public var maskWidth: Int
    public var maskHeight: Int
    /// The tasks this client receives (its HELLO's subset), in index order.
    public var tasks: [Task]
    public var encoding: MaskEncoding
    /// Names of the latencies each FRAME carries, in order.
    public var latencies: [String]
    /// The client's HELLO `mask_size`, when it gave one (`mask_width` × `mask_height` is then that size).
    public var maskSize: MaskSize?

    enum CodingKeys: String, CodingKey {
        case `protocol`, model, maskWidth = "mask_width", maskHeight = "mask_height", tasks, encoding, latencies, maskSize = "mask_size"
    }

    public init(protocol: Int = wireProtocolVersion, model: Model, maskWidth: Int, maskHeight: Int, tasks: [Task],
                encoding: MaskEncoding, latencies: [String]) {
        self.protocol = `protocol`
        self.model = model
        self.maskWidth = maskWidth
        self.maskHeight = maskHeight
        self.tasks = tasks
        self.encoding = encoding
        self.latencies = latencies
    }
}

/// Server → client, then the connection closes.
public struct WireError: Codable, Equatable, Error, Sendable, CustomStringConvertible {
    public var code: String
    public var message: String

    public init(code: String, message: String) {
        self.code = code
        self.message = message
    }

    public var description: String { "\(code): \(message)" }

    public static let badMessage = "bad_message"
    public static let tooLarge = "too_large"
    public static let unsupportedProtocol = "unsupported_protocol"
    public static let unknownTask = "unknown_task"
    public static let notAllowed = "not_allowed"
    public static let serverFull = "server_full"
    public static let overBudget = "over_budget"
    public static let timeout = "timeout"
    public static let shuttingDown = "shutting_down"
}

/// One task's mask inside a FRAME.
public struct EncodedMask: Equatable, Sendable {
    public var taskIndex: UInt8
    public var encoding: MaskEncoding
    public var data: [UInt8]

    public init(taskIndex: UInt8, encoding: MaskEncoding, data: [UInt8]) {
        self.taskIndex = taskIndex
        self.encoding = encoding
        self.data = data
    }
}

/// Server → client: the masks of one frame.
public struct FrameMessage: Equatable, Sendable {
    /// The capture source's sequence number of the frame.
    public var sequence: UInt64
    /// Capture time, CLOCK_MONOTONIC, nanoseconds.
    public var captureMonotonicNanoseconds: UInt64
    /// Capture time, wall clock, nanoseconds since 1970.
    public var captureRealtimeNanoseconds: UInt64
    /// Frames published since this client's previous FRAME that it did not get.
    public var droppedForClient: UInt32
    /// Microseconds, in the order STREAM's `latencies` names.
    public var latenciesMicroseconds: [UInt32]
    public var masks: [EncodedMask]

    public init(sequence: UInt64, captureMonotonicNanoseconds: UInt64, captureRealtimeNanoseconds: UInt64, droppedForClient: UInt32,
                latenciesMicroseconds: [UInt32], masks: [EncodedMask]) {
        self.sequence = sequence
        self.captureMonotonicNanoseconds = captureMonotonicNanoseconds
        self.captureRealtimeNanoseconds = captureRealtimeNanoseconds
        self.droppedForClient = droppedForClient
        self.latenciesMicroseconds = latenciesMicroseconds
        self.masks = masks
    }
}

/// Any message, decoded.
public enum Message: Equatable, Sendable {
    case hello(Hello)
    case stream(StreamDescription)
    case frame(FrameMessage)
    case streamChanged(StreamDescription)
    case error(WireError)
    case statsRequest
    /// A JSON object of the daemon's counters (its keys are documented in PROTOCOL.md).
    case stats([UInt8])

    /// The message's name in PROTOCOL.md, for errors.
    public var typeName: String {
        switch self {
        case .hello: return "HELLO"
        case .stream: return "STREAM"
        case .frame: return "FRAME"
        case .streamChanged: return "STREAM_CHANGED"
        case .error: return "ERROR"
        case .statsRequest: return "STATS_REQUEST"
        case .stats: return "STATS"
        }
    }
}
