import Foundation

/// The sanitizer the tests were built with, as `.ci/sanitize` tells them (MTLSEG_SANITIZER).
public enum Sanitizer {
    public static var name: String? { ProcessInfo.processInfo.environment["MTLSEG_SANITIZER"] }

    /// AddressSanitizer holds freed memory back (its quarantine) and pads every allocation: resident memory then says
    /// nothing about a leak, and the tests that bound its growth print it instead.
    public static var keepsFreedMemory: Bool { name == "address" }
}
