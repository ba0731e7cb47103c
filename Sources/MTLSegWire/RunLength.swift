/// Run-length coding of class-id masks: runs of (u8 class, u16 LE length ≥ 1),
/// row-major. Masks of a few classes in large regions shrink by 10–100×.
public enum RunLength {
    public static func encode(_ mask: UnsafeBufferPointer<UInt8>) -> [UInt8] {
        var out: [UInt8] = []
        out.reserveCapacity(64)
        append(mask, to: &out)
        return out
    }

    /// The runs of `mask` added to the end of `out`.
    public static func append(_ mask: UnsafeBufferPointer<UInt8>, to out: inout [UInt8]) {
        var i = 0
        while i < mask.count {
            let value = mask[i]
            var run = 1
            while i + run < mask.count && run < 65535 && mask[i + run] == value { run += 1 }
            out.append(value)
            out.append(UInt8(run & 0xFF))
            out.append(UInt8(run >> 8))
            i += run
        }
    }

    public static func encode(_ mask: [UInt8]) -> [UInt8] {
        mask.withUnsafeBufferPointer { encode($0) }
    }

    /// The mask, or nil when the runs are malformed or do not cover exactly `count` pixels.
    public static func decode(_ data: [UInt8], count: Int) -> [UInt8]? {
        guard data.count % 3 == 0 else { return nil }
        var out: [UInt8] = []
        out.reserveCapacity(count)
        var i = 0
        while i < data.count {
            let run = Int(data[i + 1]) | Int(data[i + 2]) << 8
            guard run >= 1, out.count + run <= count else { return nil }
            out.append(contentsOf: repeatElement(data[i], count: run))
            i += 3
        }
        return out.count == count ? out : nil
    }
}
