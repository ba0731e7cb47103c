import ArgumentParser
#if canImport(FoundationEssentials)
import FoundationEssentials
import Glibc
#else
import Foundation
#endif
import MTLSegEssentials
import MTLSegCapture
import MTLSegImage

/// `mtlseg capture`: save frames from a camera (or the synthetic field, or an image folder) as PNG,
/// e.g. to collect calibration images from the camera the daemon will use.
struct CaptureCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "capture",
        abstract: "Save frames from a camera as PNG (e.g. calibration images for `mtlseg calibrate`).",
        discussion: """
        --device is a V4L2 node (/dev/video0, or a /dev/v4l/by-id/... link; see `mtlseg devices`), \
        `synthetic` (a made-up crop field seen from a UAV), or a folder of PNG/JPEG images.
        """)

    @Option(name: .long, help: "/dev/videoN, a /dev/v4l/by-id link, `synthetic`, or an image folder.")
    var device: String

    @Option(name: .long, help: "Number of frames to save.")
    var count: Int

    @Option(name: .long, help: "Folder for frame-NNNNNN.png (created if missing; numbering continues after the frames already there).")
    var out: String

    @Option(name: .long, help: "Seconds between saved frames (default: every frame the source delivers).")
    var every: Double = 0

    @Option(name: .long, help: "Frame size WxH to ask a camera (the nearest it supports is used) or the synthetic field for (default 640x480).", transform: ImageSize.parse)
    var size: ImageSize?

    @Option(name: .long, help: "Frame rate to ask for.")
    var fps: Double = 15

    @Option(name: .long, help: "Seconds without a frame before giving up.")
    var timeout: Double = 10

    func validate() throws {
        guard count > 0 else { throw ValidationError("--count must be at least 1") }
        guard every >= 0 else { throw ValidationError("--every must not be negative") }
        guard fps > 0 else { throw ValidationError("--fps must be positive") }
        guard timeout > 0 else { throw ValidationError("--timeout must be positive") }
    }

    func run() throws {
        let (width, height) = (size?.width ?? 640, size?.height ?? 480)
        let source = try makeSource(width: width, height: height)
        try OutputPaths.makeFolder(out, option: "--out")
        // A second capture into a folder adds to the set there (e.g. calibration images from two sessions)
        // instead of replacing its first frames.
        let earlier = Self.lastFrameNumber(in: out)
        let inbox = FrameInbox()
        source.start(deliver: { inbox.put($0) }, stateChanged: { inbox.note($0) })
        defer { source.stop() }
        print("capturing \(count) frames from \(source.name) into \(out)"
            + (earlier > 0 ? String(cFormat: " (it holds frames up to frame-%06d.png: numbering goes on from there)", earlier) : ""))
        var saved = 0
        var lastSavedAt: UInt64?
        while saved < count {
            guard let frame = inbox.take(timeout: timeout) else {
                throw ToolError("\(device): no frame within \(timeout) s" + (inbox.lastProblem.map { ": \($0)" } ?? ""))
            }
            if let last = lastSavedAt, Double(frame.monotonicNanoseconds &- last) / 1e9 < every { continue }
            lastSavedAt = frame.monotonicNanoseconds
            saved += 1
            let path = Path.appending(out, String(cFormat: "frame-%06d.png", earlier + saved))
            try ImageFile.writePNG(RGBImage(width: frame.width, height: frame.height, pixels: frame.pixels), path: path)
            print("\(path)  \(frame.width)x\(frame.height)  sequence \(frame.sequence)")
        }
        let c = source.counters
        print("\(source.name): \(c.captured) frames captured, \(c.droppedByDriver) dropped by the driver, \(c.reopened) reopens")
    }

    /// The highest N of the frame-N.png files in `folder` (six digits or more), 0 if none.
    static func lastFrameNumber(in folder: String) -> Int {
        let names = (try? FileManager.default.contentsOfDirectory(atPath: folder)) ?? []
        return names.compactMap { name -> Int? in
            guard name.hasPrefix("frame-"), name.hasSuffix(".png") else { return nil }
            let digits = name.dropFirst("frame-".count).dropLast(".png".count)
            guard digits.count >= 6, digits.allSatisfy({ ("0" ... "9").contains($0) }), let number = Int(digits) else { return nil }
            return number
        }.max() ?? 0
    }

    private func makeSource(width: Int, height: Int) throws -> FrameSource {
        if device == "synthetic" {
            return SyntheticFieldSource(width: width, height: height, framesPerSecond: fps)
        }
        guard let isDirectory = Path.isDirectory(device) else {
            throw ToolError("\(device): no such device or folder (see `mtlseg devices`)")
        }
        if isDirectory {
            return try ImageFolderSource(folder: device, framesPerSecond: fps)
        }
        if let problem = CameraPath.problem(device) {
            throw ToolError("\(device): not a camera: \(problem); --device also takes a folder of images or 'synthetic' (see `mtlseg devices`)")
        }
        return V4L2Camera(path: device, request: CameraRequest(width: width, height: height, framesPerSecond: fps),
                          timing: V4L2Camera.Timing(timeout: timeout))
    }
}

/// Hands the newest frame from the source's thread to the command's; remembers why the source is
/// not streaming, so a failure can say so.
private final class FrameInbox: @unchecked Sendable {
    private let condition = Condition()
    private var frame: Frame?
    private var problem: String?

    func put(_ newest: Frame) {
        condition.lock()
        frame = newest
        condition.signal()
        condition.unlock()
    }

    func note(_ state: SourceState) {
        condition.lock()
        switch state {
        case let .reconnecting(reason, _), let .stalled(reason): problem = reason
        default: break
        }
        condition.unlock()
    }

    var lastProblem: String? {
        condition.lock()
        defer { condition.unlock() }
        return problem
    }

    func take(timeout: Double) -> Frame? {
        let deadline = Clock.monotonicDeadline(in: timeout)
        condition.lock()
        defer { condition.unlock() }
        while frame == nil {
            if !condition.wait(until: deadline) { break }
        }
        defer { frame = nil }
        return frame
    }
}
