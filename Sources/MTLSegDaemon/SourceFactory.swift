#if canImport(FoundationEssentials)
import FoundationEssentials
import Glibc
#else
import Foundation
#endif
import MTLSegEssentials
import MTLSegCapture

/// Opens the source a configuration names.
public enum SourceFactory {
    /// The sources named by a word rather than a path.
    static let keywords = ["auto", "synthetic"]

    /// Why `source`, which is neither a keyword nor a folder, can never be a camera (a misspelt keyword, a path outside
    /// /dev to nothing, a file or device that is no V4L2 node); nil when it is one or may become one (not plugged in).
    public static func cameraProblem(_ source: String) -> CaptureError? {
        guard !keywords.contains(source), Path.isDirectory(source) != true else { return nil }
        // (A Character: the String overload is Foundation's here, which would link its whole ICU into the package.)
        if !source.contains("/" as Character), let meant = keywords.first(where: { typoDistance(source.lowercased(), $0) <= 2 }) {
            return CaptureError.unsupportedDevice(device: source, reason: "did you mean \"\(meant)\"?")
        }
        return CameraPath.problem(source).map {
            CaptureError.unsupportedDevice(device: source, reason: "\($0); [source] device takes a V4L2 device, a folder of images, "
                + "\"synthetic\" or \"auto\"")
        }
    }

    /// Why starting with `config`'s source would fail (a folder with no image that reads, something that can never
    /// be a camera), found without starting it; nil when it would start (a camera not plugged in is waited for).
    public static func startProblem(_ config: DaemonConfig) -> Error? {
        guard Path.isDirectory(config.source) == true else { return cameraProblem(config.source) }
        do {
            _ = try ImageFolderSource(folder: config.source, framesPerSecond: config.fps, pixelBudget: config.pixelBudget) { _ in }
            return nil
        } catch {
            return error
        }
    }

    /// `source`: "synthetic"; a folder of images; a V4L2 device path; or "auto" — the first
    /// camera (/dev/video0) when there is one, else the synthetic field.
    public static func make(_ config: DaemonConfig) throws -> FrameSource {
        var source = config.source
        if source == "auto" {
            source = FileManager.default.fileExists(atPath: "/dev/video0") ? "/dev/video0" : "synthetic"
        }
        if source == "synthetic" {
            return SyntheticFieldSource(width: config.width, height: config.height, framesPerSecond: config.fps)
        }
        if Path.isDirectory(source) == true {
            return try ImageFolderSource(folder: source, framesPerSecond: config.fps, pixelBudget: config.pixelBudget) { DaemonLog.warning($0) }
        }
        // A camera that is not there yet (unplugged) is waited for; something that can never become one is refused
        // now, so that --check-config and start fail instead of retrying forever.
        if let problem = cameraProblem(source) { throw problem }
        return V4L2Camera(path: source, request: CameraRequest(width: config.width, height: config.height, framesPerSecond: config.fps),
                          timing: V4L2Camera.Timing(timeout: config.stallTimeout))
    }
}
