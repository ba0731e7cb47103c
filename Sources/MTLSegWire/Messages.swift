#if canImport(FoundationEssentials)
import FoundationEssentials
import Glibc
#else
import Foundation
#endif

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

/// Client → server, first message: what the client wants.
public struct Hello: Codable, Equatable, Sendable {
    public var `protocol`: Int
    public var encoding: MaskEncoding?
    /// Names of the tasks to receive; nil or absent: all.
    public var tasks: [String]?
    /// Free text for the daemon's logs.
    public var name: String?

    public init(protocol: Int = wireProtocolVersion, encoding: MaskEncoding? = .raw, tasks: [String]? = nil, name: String? = nil) {
        self.protocol = `protocol`
        self.encoding = encoding
        self.tasks = tasks
        self.name = name
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

    enum CodingKeys: String, CodingKey {
        case `protocol`, model, maskWidth = "mask_width", maskHeight = "mask_height", tasks, encoding, latencies
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
}
