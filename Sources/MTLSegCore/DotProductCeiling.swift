import CKernels

/// One core's ceiling for 8-bit multiply-adds: the widest dot-product instruction the CPU runs, issued back to back
/// with nothing else (`ck_dot_ceiling_gmacs`). No int8 product can run faster, so `mtlseg bench` states the heads'
/// rate as a share of it: how much of the hardware the engine uses, whatever the peers do.
public struct DotProductCeiling: Sendable {
    /// The instruction measured, e.g. "vpdpbusd zmm" or "sdot".
    public let instruction: String
    /// Multiply-adds per second of one core, in GMAC/s.
    public let gmacsPerCore: Double

    /// Measures it (a few tens of milliseconds); nil on a CPU without an 8-bit dot-product instruction.
    public static func measure() -> DotProductCeiling? {
        var name: UnsafePointer<CChar>?
        let gmacs = ck_dot_ceiling_gmacs(&name)
        guard let name, gmacs > 0 else { return nil }
        return DotProductCeiling(instruction: String(cString: name), gmacsPerCore: gmacs)
    }
}
