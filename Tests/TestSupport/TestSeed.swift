import Foundation

/// Shared by the test targets. The seed of a randomised test: `fallback`, or MTLSEG_TEST_SEED to try others. Printed, so that
/// a failure can be replayed.
public func testSeed(_ test: String, fallback: UInt64) -> UInt64 {
    let seed = ProcessInfo.processInfo.environment["MTLSEG_TEST_SEED"].flatMap { UInt64($0) } ?? fallback
    print("\(test): seed \(seed) (MTLSEG_TEST_SEED=\(seed) replays it)")
    return seed
}
