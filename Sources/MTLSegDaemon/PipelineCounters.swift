#if canImport(FoundationEssentials)
import FoundationEssentials
import Glibc
#else
import Foundation
#endif

/// The pipeline's counters. They add up: every captured frame is either
/// skipped before inference (a newer one replaced it), inferred, or still in
/// flight; every inferred frame is published.
public struct PipelineCounters: Equatable, Sendable, Codable {
    public var captured: UInt64 = 0
    public var droppedByDriver: UInt64 = 0
    public var skippedBeforeInference: UInt64 = 0
    public var inferred: UInt64 = 0
    public var published: UInt64 = 0

    enum CodingKeys: String, CodingKey {
        case captured, droppedByDriver = "dropped_by_driver", skippedBeforeInference = "skipped_before_inference", inferred, published
    }

    public init() {}
}

/// Per client: frames written to it, and published frames it was never sent (it fell behind, or a reload replaced their model).
public struct ClientCounters: Equatable, Sendable, Codable {
    public var id: Int
    public var name: String
    public var uid: UInt32
    public var delivered: UInt64 = 0
    public var dropped: UInt64 = 0
    /// Set when the client was disconnected for reading nothing for the client timeout.
    public var readTimeout: ReadTimeout?

    /// What the timeout rule compared, in seconds on CLOCK_MONOTONIC: the last time the client made progress (read
    /// something, or had a frame written into its empty queue), and when the daemon gave up on it.
    public struct ReadTimeout: Equatable, Sendable, Codable {
        public var lastProgress: Double
        public var disconnected: Double
    }

    public init(id: Int, name: String, uid: UInt32) {
        self.id = id
        self.name = name
        self.uid = uid
    }
}
