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
        // (A Character: the String overload is Foundation's here, which would link its whole ICU into the package.)
        if !source.contains("/" as Character), let meant = keywords.first(where: { typoDistance(source.lowercased(), $0) <= 2 }) {
            throw CaptureError.unsupportedDevice(device: source, reason: "did you mean \"\(meant)\"?")
        }
        if let problem = CameraPath.problem(source) {
            throw CaptureError.unsupportedDevice(device: source, reason: "\(problem); [source] device takes a V4L2 device, a folder of "
                + "images, \"synthetic\" or \"auto\"")
        }
        return V4L2Camera(path: source, request: CameraRequest(width: config.width, height: config.height, framesPerSecond: config.fps),
                          timing: V4L2Camera.Timing(timeout: config.stallTimeout))
    }
}
