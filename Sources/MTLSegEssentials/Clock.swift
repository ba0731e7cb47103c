#if canImport(FoundationEssentials)
import FoundationEssentials
import Glibc
#else
import Foundation
#endif

/// CLOCK_MONOTONIC and CLOCK_REALTIME now, in nanoseconds.
public enum Clock {
    public static func monotonicNanoseconds() -> UInt64 { read(CLOCK_MONOTONIC) }
    public static func realtimeNanoseconds() -> UInt64 { read(CLOCK_REALTIME) }

    /// CLOCK_MONOTONIC `seconds` from now (negative or NaN: now), for Condition.wait(until:).
    public static func monotonicDeadline(in seconds: Double) -> UInt64 {
        monotonicNanoseconds() &+ UInt64(min(max(seconds.isNaN ? 0 : seconds, 0), 1e9) * 1e9)
    }

    private static func read(_ clock: clockid_t) -> UInt64 {
        var t = timespec()
        clock_gettime(clock, &t)
        return UInt64(t.tv_sec) * 1_000_000_000 + UInt64(t.tv_nsec)
    }
}
