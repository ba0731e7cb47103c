import Foundation
import XCTest
@testable import MTLSegCore

/// Masks at another size than the logits' (MaskUpsampler) against PyTorch's: F.interpolate(mode="bilinear",
/// align_corners=False) then argmax, as calibration/make_upsample_fixture.py computed them with torch.
final class UpsampledMaskTests: XCTestCase {
    struct Case {
        let logits: Tensor
        let width: Int
        let height: Int
        let reference: [UInt8]
    }

    func cases() throws -> [Case] {
        let file = try SafeTensorsFile(path: Fixtures.path("upsample-argmax.safetensors"))
        var cases: [Case] = []
        var i = 0
        while let size = file.entry("case\(i).size") {
            let logits = try XCTUnwrap(file.entry("case\(i).logits"))
            let runs = try XCTUnwrap(file.entry("case\(i).mask"))
            let wh = try file.integers(size)
            let width = Int(wh[0]), height = Int(wh[1])
            let mask = try XCTUnwrap(Self.decodeRuns([UInt8](file.rawBytes(runs)), count: width * height), "case \(i): bad runs")
            cases.append(Case(logits: Tensor(shape: logits.shape, storage: try file.floats(logits)), width: width, height: height, reference: mask))
            i += 1
        }
        XCTAssertEqual(cases.count, 6, "the fixture's cases")
        return cases
    }

    static func decodeRuns(_ data: [UInt8], count: Int) -> [UInt8]? {
        var out: [UInt8] = []
        out.reserveCapacity(count)
        for i in stride(from: 0, to: data.count - 2, by: 3) {
            out.append(contentsOf: repeatElement(data[i], count: Int(data[i + 1]) | Int(data[i + 2]) << 8))
        }
        return out.count == count ? out : nil
    }

    /// The resized logit of class `c` at (x, y), in double precision: what both sides round.
    static func resized(_ logits: Tensor, _ c: Int, x: Int, y: Int, width: Int, height: Int) -> Double {
        let h = logits.shape[1], w = logits.shape[2]
        func taps(_ i: Int, _ input: Int, _ output: Int) -> (Int, Int, Double) {
            if input == output { return (i, i, 0) }
            let source = max(0, (Double(i) + 0.5) * Double(input) / Double(output) - 0.5)
            let lo = min(Int(source.rounded(.down)), input - 1)
            return (lo, min(lo + 1, input - 1), min(max(source - Double(lo), 0), 1))
        }
        let (x0, x1, wx) = taps(x, w, width), (y0, y1, wy) = taps(y, h, height)
        let plane = logits.pointer + c * w * h
        func at(_ yy: Int, _ xx: Int) -> Double { Double(plane[yy * w + xx]) }
        return (at(y0, x0) * (1 - wx) + at(y0, x1) * wx) * (1 - wy) + (at(y1, x0) * (1 - wx) + at(y1, x1) * wx) * wy
    }

    /// Pixel for pixel equal to torch's, except where the two classes' resized logits tie within float rounding.
    func testMatchesPyTorchExceptTies() throws {
        var totalTies = 0, totalPixels = 0
        for (n, item) in try cases().enumerated() {
            let k = item.logits.shape[0], h = item.logits.shape[1], w = item.logits.shape[2]
            let upsampler = MaskUpsampler(logitsWidth: w, logitsHeight: h, maxClasses: k, width: item.width, height: item.height)
            let ours = upsampler.mask(logits: item.logits)
            var ties = 0, differences: [String] = []
            for p in 0 ..< ours.count where ours[p] != item.reference[p] {
                let x = p % item.width, y = p / item.width
                let mine = Self.resized(item.logits, Int(ours[p]), x: x, y: y, width: item.width, height: item.height)
                let theirs = Self.resized(item.logits, Int(item.reference[p]), x: x, y: y, width: item.width, height: item.height)
                // float32 rounding of a few operations on values of a few units: well under 1e-5 relative.
                if abs(mine - theirs) <= 1e-5 * max(1, abs(mine)) {
                    ties += 1
                } else if differences.count < 5 {
                    differences.append("(\(x), \(y)): ours \(ours[p]) (\(mine)), torch \(item.reference[p]) (\(theirs))")
                }
            }
            XCTAssertTrue(differences.isEmpty, "case \(n) \(w)x\(h) -> \(item.width)x\(item.height): \(differences.joined(separator: "; "))")
            print("case \(n): \(k) classes \(w)x\(h) -> \(item.width)x\(item.height): \(ties) tie(s) of \(ours.count) pixels differ from torch")
            totalTies += ties
            totalPixels += ours.count
        }
        print("upsampled masks vs torch: \(totalTies) tie(s) in \(totalPixels) pixels, no other difference")
    }

    /// SegmentationMask's resizing initialiser (mtlseg infer, evaluation) is the upsampler; at the logits' own size, the plain argmax.
    func testSegmentationMaskResizesAsTheUpsampler() throws {
        for item in try cases() {
            let k = item.logits.shape[0], h = item.logits.shape[1], w = item.logits.shape[2]
            let upsampler = MaskUpsampler(logitsWidth: w, logitsHeight: h, maxClasses: k, width: item.width, height: item.height)
            XCTAssertEqual(SegmentationMask(logits: item.logits, width: item.width, height: item.height).classes, upsampler.mask(logits: item.logits))
            let same = MaskUpsampler(logitsWidth: w, logitsHeight: h, maxClasses: k, width: w, height: h)
            XCTAssertEqual(same.mask(logits: item.logits), SegmentationMask(logits: item.logits).classes)
        }
    }

    /// One upsampler serves tasks of fewer classes than its most, with the same results as one made for them.
    func testFewerClassesThanTheMost() throws {
        let item = try cases()[0]
        let h = item.logits.shape[1], w = item.logits.shape[2]
        let two = Tensor(shape: [2, h, w], values: Array(UnsafeBufferPointer(start: item.logits.pointer, count: 2 * h * w)))
        let wide = MaskUpsampler(logitsWidth: w, logitsHeight: h, maxClasses: 7, width: item.width, height: item.height)
        let exact = MaskUpsampler(logitsWidth: w, logitsHeight: h, maxClasses: 2, width: item.width, height: item.height)
        XCTAssertEqual(wide.mask(logits: two), exact.mask(logits: two))
        XCTAssertEqual(Set(wide.mask(logits: two)), [0, 1])
    }
}
