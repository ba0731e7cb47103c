#if canImport(FoundationEssentials)
import FoundationEssentials
import Glibc
#else
import Foundation
#endif
import MTLSegEssentials

/// A UAV's view of a crop field, made up: rows of plants on soil scrolling past a few pixels a
/// frame, with a slow sideways drift. Deterministic for a seed (frame n is always the same image),
/// and cheap: the field is drawn once, each frame is a crop of it.
public final class SyntheticFieldSource: FrameSource {
    public let width: Int
    public let height: Int
    public let framesPerSecond: Double
    public let seed: UInt64
    /// Pixels the field moves down the image each frame.
    public let pixelsPerFrame: Int
    private let tile: CropFieldTile
    private let margin: Int
    private let thread = StoppableThread()
    private let status = SourceStatus()

    public init(width: Int = 640, height: Int = 480, framesPerSecond: Double = 15, seed: UInt64 = 1, pixelsPerFrame: Int = 3) {
        precondition(width > 0 && height > 0, "SyntheticFieldSource: size \(width)x\(height)")
        self.width = width
        self.height = height
        self.framesPerSecond = framesPerSecond
        self.seed = seed
        self.pixelsPerFrame = pixelsPerFrame
        margin = max(4, width / 16)
        tile = CropFieldTile(width: width + 2 * margin, height: max(2 * height, 256), rowSpacing: max(12, width / 10), seed: seed)
    }

    public var name: String {
        "synthetic \(width)x\(height) @\(FrameInterval(numerator: 1000, denominator: UInt32((framesPerSecond * 1000).rounded()))) seed \(seed)"
    }
    public var counters: SourceCounters { status.counters }
    public var state: SourceState { status.state }

    /// Frame `index` of the flight, without the thread: what `start` delivers as frame `index`.
    public func render(frame index: UInt64) -> [UInt8] {
        let scroll = Int((index &* UInt64(pixelsPerFrame)) % UInt64(tile.height))
        // A slow, small sideways sway, as a pilot or the wind would cause.
        let drift = margin + Int((Double(margin) * 0.8 * sin(Double(index) * 0.02)).rounded())
        var out = [UInt8](repeating: 0, count: width * height * 3)
        tile.pixels.withUnsafeBufferPointer { source in
            out.withUnsafeMutableBufferPointer { target in
                for y in 0 ..< height {
                    let tileRow = ((y - scroll) % tile.height + tile.height) % tile.height
                    let from = source.baseAddress! + (tileRow * tile.width + drift) * 3
                    (target.baseAddress! + y * width * 3).update(from: from, count: width * 3)
                }
            }
        }
        return out
    }

    public func start(deliver: @escaping @Sendable (Frame) -> Void, stateChanged: @escaping @Sendable (SourceState) -> Void) {
        status.reset(stateChanged: stateChanged)
        status.set(.starting)
        thread.start(name: "cap-synthetic") { [self] thread in
            var clock = PacedFrameLoop(framesPerSecond: framesPerSecond)
            var index: UInt64 = 0
            status.set(.streaming)
            while clock.waitForNext(thread) {
                let frame = Frame(width: width, height: height, pixels: render(frame: index), sequence: index,
                                  monotonicNanoseconds: Clock.monotonicNanoseconds(), realtimeNanoseconds: Clock.realtimeNanoseconds())
                index += 1
                status.update { $0.captured += 1 }
                deliver(frame)
            }
            status.set(.stopped)
        }
    }

    public func stop() { thread.stop() }
}
