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

    private static func read(_ clock: clockid_t) -> UInt64 {
        var t = timespec()
        clock_gettime(clock, &t)
        return UInt64(t.tv_sec) * 1_000_000_000 + UInt64(t.tv_nsec)
    }
}
