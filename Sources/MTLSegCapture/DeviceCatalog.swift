import CV4L2
#if canImport(FoundationEssentials)
import FoundationEssentials
import Glibc
#else
import Foundation
#endif
import MTLSegEssentials

/// One /dev/video* node as `mtlseg devices` shows it.
public struct VideoDeviceInfo: Sendable {
    public struct Format: Sendable {
        public var format: PixelFormatDescription
        public var sizes: FrameSizes
        /// Frame rates per discrete size, in the order of `sizes`; empty for stepwise sizes.
        public var intervals: [FrameIntervals]
    }

    public var path: String
    /// /dev/v4l/by-id and by-path links that point at this node.
    public var links: [String]
    public var driver = ""
    public var card = ""
    public var busInfo = ""
    /// The node's own capabilities (device_caps), as names ("video-capture", "streaming", ...).
    public var capabilities: [String] = []
    public var isCaptureDevice = false
    /// Native capture formats (libv4l2 can convert each to RGB24).
    public var formats: [Format] = []
    /// Set when the node could not be opened or queried; the fields above are then partly empty.
    public var error: String?
    /// Another camera of the same model (driver and card) lacks a by-id link: the two have no serials, so udev
    /// gave both one by-id name, and the link points at whichever camera udev saw last; it may move to the
    /// other at the next boot or replug (DeviceCatalog.markSharedIdLinks).
    public var idLinkShared = false

    /// The name to put in a configuration: the node's /dev/v4l/by-id/ link (made by udev from the camera's
    /// model and serial: it follows the camera to any port), else its /dev/v4l/by-path/ link (the port
    /// it is plugged into: what tells two cameras of one model without serials apart, so the port comes first
    /// for both of them); nil when udev made neither. /dev/videoN numbers follow the order the drivers probed in,
    /// which may change between boots.
    public var stablePath: String? {
        let byID = links.first { $0.contains("/v4l/by-id/") }, byPath = links.first { $0.contains("/v4l/by-path/") }
        return idLinkShared ? byPath ?? byID : byID ?? byPath
    }
}

/// Finds and describes the V4L2 nodes of this machine.
public enum DeviceCatalog {
    /// Every /dev/video*, in numeric order, each with its by-id/by-path links, capabilities and (for
    /// capture nodes) formats, sizes and rates.
    public static func list(deviceDirectory: String = "/dev") -> [VideoDeviceInfo] {
        let names = (try? FileManager.default.contentsOfDirectory(atPath: deviceDirectory)) ?? []
        let nodes = names.filter { $0.hasPrefix("video") && Int($0.dropFirst(5)) != nil }
            .sorted { Int($0.dropFirst(5))! < Int($1.dropFirst(5))! }
            .map { Path.appending(deviceDirectory, $0) }
        let links = symbolicLinks(in: ["\(deviceDirectory)/v4l/by-id", "\(deviceDirectory)/v4l/by-path"])
        return markSharedIdLinks(nodes.map { describe(path: $0, links: links[$0] ?? []) })
    }

    /// Sets `idLinkShared` on the capture nodes of every model (driver and card) of which one capture node has no
    /// by-id link while another has: two cameras without serials, between which udev's one by-id name may move.
    /// (One camera's several capture nodes all have by-id links, index0, index1, …, and are left as they are.)
    static func markSharedIdLinks(_ devices: [VideoDeviceInfo]) -> [VideoDeviceInfo] {
        func model(_ device: VideoDeviceInfo) -> String? {
            device.isCaptureDevice && !device.card.isEmpty ? device.driver + "\u{0}" + device.card : nil
        }
        func hasIdLink(_ device: VideoDeviceInfo) -> Bool { device.links.contains { $0.contains("/v4l/by-id/") } }
        let groups = Dictionary(grouping: devices.filter { model($0) != nil }, by: { model($0)! })
        let shared = Set(groups.filter { $0.value.contains(where: hasIdLink) && !$0.value.allSatisfy(hasIdLink) }.keys)
        return devices.map { device in
            var device = device
            if let key = model(device), shared.contains(key) { device.idLinkShared = true }
            return device
        }
    }

    /// One node (a /dev/video* path or a link to one).
    public static func describe(path: String, links: [String] = [], device: VideoDevice = LibV4L2Device()) -> VideoDeviceInfo {
        var info = VideoDeviceInfo(path: path, links: links)
        do {
            try device.open(path: path)
        } catch {
            info.error = String(describing: error)
            return info
        }
        defer { device.close() }
        var capability = v4l2_capability()
        do {
            try device.call(CV4L2_VIDIOC_QUERYCAP, "VIDIOC_QUERYCAP", &capability, device: path)
        } catch {
            info.error = String(describing: error)
            return info
        }
        info.driver = cString(capability.driver)
        info.card = cString(capability.card)
        info.busInfo = cString(capability.bus_info)
        let caps = capability.capabilities & UInt32(V4L2_CAP_DEVICE_CAPS) != 0 ? capability.device_caps : capability.capabilities
        info.capabilities = capabilityNames.filter { caps & $0.bit != 0 }.map(\.name)
        info.isCaptureDevice = caps & UInt32(V4L2_CAP_VIDEO_CAPTURE) != 0
        guard info.isCaptureDevice else { return info }
        for format in V4L2Enumeration.formats(device) {
            let sizes = V4L2Enumeration.sizes(device, format: format.fourcc)
            var intervals: [FrameIntervals] = []
            if case let .discrete(list) = sizes {
                intervals = list.map { V4L2Enumeration.intervals(device, format: format.fourcc, width: $0.width, height: $0.height) }
            }
            info.formats.append(.init(format: format, sizes: sizes, intervals: intervals))
        }
        return info
    }

    /// link target (resolved, absolute) → the links pointing at it.
    private static func symbolicLinks(in directories: [String]) -> [String: [String]] {
        var result: [String: [String]] = [:]
        for directory in directories {
            for name in ((try? FileManager.default.contentsOfDirectory(atPath: directory)) ?? []).sorted() {
                let link = Path.appending(directory, name)
                let target = URL(fileURLWithPath: link).resolvingSymlinksInPath().path
                result[target, default: []].append(link)
            }
        }
        return result
    }

    private static let capabilityNames: [(bit: UInt32, name: String)] = [
        (UInt32(V4L2_CAP_VIDEO_CAPTURE), "video-capture"), (UInt32(V4L2_CAP_VIDEO_CAPTURE_MPLANE), "video-capture-mplane"),
        (UInt32(V4L2_CAP_VIDEO_OUTPUT), "video-output"), (UInt32(V4L2_CAP_VIDEO_OUTPUT_MPLANE), "video-output-mplane"),
        (UInt32(V4L2_CAP_VIDEO_M2M), "video-m2m"), (UInt32(V4L2_CAP_VIDEO_M2M_MPLANE), "video-m2m-mplane"),
        (UInt32(V4L2_CAP_META_CAPTURE), "metadata-capture"), (UInt32(V4L2_CAP_VBI_CAPTURE), "vbi-capture"),
        (UInt32(V4L2_CAP_READWRITE), "read-write"), (UInt32(V4L2_CAP_STREAMING), "streaming"),
        (UInt32(V4L2_CAP_TOUCH), "touch"), (UInt32(V4L2_CAP_IO_MC), "io-mc"),
    ]
}
