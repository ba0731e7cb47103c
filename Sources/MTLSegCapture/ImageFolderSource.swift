#if canImport(FoundationEssentials)
import FoundationEssentials
import Glibc
#else
import Foundation
#endif
import MTLSegEssentials
import MTLSegImage

/// The PNG and JPEG files of a folder (sorted by name) as frames at a fixed rate, looping forever.
/// Each frame keeps its image's own size. Only regular files are taken (a FIFO or a device named
/// `x.png` could block a read forever). A file that cannot be read, or whose header declares more
/// pixels than the budget, is skipped with one warning and not tried again while others read; when
/// none does (the files replaced or removed meanwhile), the folder is listed again every
/// `rescanInterval` and every file tried anew, so images put there then are taken up.
public final class ImageFolderSource: FrameSource {
    public static let extensions: Set<String> = ["png", "jpg", "jpeg"]
    /// Seconds between listings of a folder none of whose images reads.
    public static let rescanInterval = 2.0

    public let folder: String
    public let framesPerSecond: Double
    public let paths: [String]
    public let pixelBudget: PixelBudget
    private let warn: @Sendable (String) -> Void
    private let thread = StoppableThread()
    private let status = SourceStatus()

    /// Throws `CaptureError.noImages` if the folder cannot be listed, holds no PNG/JPEG, or none of them reads
    /// (the first that does is found by reading them in order). `warn` receives one line per unreadable file
    /// (standard error by default).
    public init(folder: String, framesPerSecond: Double = 15, pixelBudget: PixelBudget = PixelBudget(raisedBy: "--max-image-pixels N"),
                warn: @escaping @Sendable (String) -> Void = { writeToStandardError("warning: " + $0 + "\n") }) throws {
        let listed = try Self.regularImagePaths(in: folder)
        var firstFailure: Error?
        guard listed.contains(where: { path in
            do {
                _ = try ImageFile.read(path: path, budget: pixelBudget)
                return true
            } catch {
                firstFailure = firstFailure ?? error
                return false
            }
        }) else {
            throw CaptureError.noImages(folder: folder, reason: "none of its \(listed.count) images reads (\(firstFailure.map { "\($0)" } ?? ""))")
        }
        paths = listed
        self.pixelBudget = pixelBudget
        self.folder = folder
        self.framesPerSecond = framesPerSecond
        self.warn = warn
    }

    /// imagePaths, regular files only; `CaptureError.noImages` when the folder cannot be listed or there are none.
    static func regularImagePaths(in folder: String) throws -> [String] {
        let paths: [String]
        do {
            paths = try imagePaths(in: folder).filter(RegularFileReader.isRegularFile)
        } catch {
            throw CaptureError.noImages(folder: folder, reason: "cannot list folder: \(errorReason(error))")
        }
        guard !paths.isEmpty else { throw CaptureError.noImages(folder: folder, reason: "no .png, .jpg or .jpeg files") }
        return paths
    }

    /// The PNG and JPEG files of `folder` (by extension, in any case), sorted by name, as paths under it; throws
    /// when the folder cannot be listed. (`mtlseg`'s image lists take them from here too.)
    public static func imagePaths(in folder: String) throws -> [String] {
        try FileManager.default.contentsOfDirectory(atPath: folder)
            .filter { extensions.contains(Path.pathExtension($0).lowercased()) }.sorted()
            .map { Path.appending(folder, $0) }
    }

    public var name: String { "folder \(folder) (\(paths.count) images) @\(FrameInterval(numerator: 1000, denominator: UInt32((framesPerSecond * 1000).rounded())))" }
    public var counters: SourceCounters { status.counters }
    public var state: SourceState { status.state }

    public func start(deliver: @escaping @Sendable (Frame) -> Void, stateChanged: @escaping @Sendable (SourceState) -> Void) {
        status.reset(stateChanged: stateChanged)
        status.set(.starting)
        thread.start(name: SystemThread.name("cap-", Path.lastComponent(folder))) { [self] thread in
            run(thread, deliver: deliver)
            status.set(.stopped)
        }
    }

    public func stop() { thread.stop() }

    private func run(_ thread: StoppableThread, deliver: (Frame) -> Void) {
        var clock = PacedFrameLoop(framesPerSecond: framesPerSecond)
        var paths = self.paths
        var unreadable = Set<String>()
        var warned = Set<String>()  // each file's failure is said once, however often it is tried again
        var lastListing = Clock.monotonicNanoseconds()
        var sequence: UInt64 = 0
        var index = 0
        while clock.waitForNext(thread) {
            // Find the next readable file, at most one full lap from here.
            var image: RGBImage?
            for _ in 0 ..< paths.count {
                let path = paths[index % paths.count]
                index = (index + 1) % paths.count
                if unreadable.contains(path) { continue }
                do {
                    image = try ImageFile.read(path: path, budget: pixelBudget)
                    break
                } catch {
                    unreadable.insert(path)
                    if warned.insert(path).inserted { warn("skipping \(error)") }
                }
            }
            guard let image else {
                status.set(.stalled(reason: "\(folder): none of its \(paths.count) images is readable"))
                let now = Clock.monotonicNanoseconds()
                if Double(now &- lastListing) / 1e9 >= Self.rescanInterval {
                    lastListing = now
                    paths = (try? Self.regularImagePaths(in: folder)) ?? paths
                    unreadable.removeAll()
                }
                continue
            }
            let now = Clock.monotonicNanoseconds()
            let frame = Frame(width: image.width, height: image.height, pixels: image.pixels, sequence: sequence,
                              monotonicNanoseconds: now, realtimeNanoseconds: Clock.realtimeNanoseconds())
            sequence += 1
            status.update { $0.captured += 1 }
            status.set(.streaming)
            deliver(frame)
        }
    }
}
