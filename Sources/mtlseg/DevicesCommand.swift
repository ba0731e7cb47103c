import ArgumentParser
#if canImport(FoundationEssentials)
import FoundationEssentials
import Glibc
#else
import Foundation
#endif
import MTLSegEssentials
import MTLSegCapture

/// `mtlseg devices`: the V4L2 nodes of this machine, and what each capture node can deliver.
struct DevicesCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "devices",
        abstract: "List V4L2 video devices: driver, card, capabilities, and per capture format its sizes and frame rates.",
        discussion: """
        Any capture format listed works with mtlsegd and `mtlseg capture`: libv4lconvert turns it into RGB. \
        Each capture node's stable name (its /dev/v4l/by-id/ link, else its /dev/v4l/by-path/ one) is shown as \
        the `device =` line for a camera's configuration: /dev/videoN numbers may change between boots.
        """)

    @Flag(name: .long, help: "Print JSON instead of text.")
    var json = false

    func run() throws {
        let devices = DeviceCatalog.list()
        if json {
            let data = try JSONObject.data(devices.map(Self.jsonObject), prettyPrinted: true)
            print(String(decoding: data, as: UTF8.self))
            return
        }
        guard !devices.isEmpty else {
            print("no video devices (/dev/video* is empty): no camera is connected, or its driver is not loaded")
            return
        }
        for device in devices {
            print(device.path + (device.links.isEmpty ? "" : "  (" + device.links.joined(separator: ", ") + ")"))
            if let error = device.error {
                print("  error: \(error)")
                continue
            }
            print("  driver \(device.driver), card \"\(device.card)\", bus \(device.busInfo)")
            print("  capabilities: \(device.capabilities.joined(separator: ", "))")
            if !device.isCaptureDevice {
                print("  not a video capture node")
            } else if let stable = device.stablePath {
                print("  configuration: device = \"\(stable)\"")
            } else {
                print("  configuration: device = \"\(device.path)\"  (no /dev/v4l/by-id or by-path link: udev did not name it; the number may change between boots)")
            }
            for format in device.formats {
                print("  \(format.format.fourcc) (\(format.format.description))\(format.format.compressed ? ", compressed" : "")")
                for line in Self.sizeLines(format) { print("    \(line)") }
            }
        }
    }

    private static func sizeLines(_ format: VideoDeviceInfo.Format) -> [String] {
        switch format.sizes {
        case let .discrete(sizes):
            return zip(sizes, format.intervals).map { size, intervals in "\(size.width)x\(size.height) @ \(rates(intervals))" }
        case let .stepwise(minW, maxW, stepW, minH, maxH, stepH):
            return ["\(minW)-\(maxW) (step \(stepW)) x \(minH)-\(maxH) (step \(stepH))"]
        case .unknown:
            return ["sizes not listed by the driver"]
        }
    }

    private static func rates(_ intervals: FrameIntervals) -> String {
        switch intervals {
        case let .discrete(list): return list.map(\.description).joined(separator: ", ") + " fps"
        case let .stepwise(low, high, _): return "\(high)-\(low) fps"
        case .unknown: return "rates not listed"
        }
    }

    private static func jsonObject(_ device: VideoDeviceInfo) -> [String: Any] {
        func intervalsJSON(_ intervals: FrameIntervals) -> Any {
            switch intervals {
            case let .discrete(list): return list.map { ["numerator": $0.numerator, "denominator": $0.denominator, "fps": $0.framesPerSecond] }
            case let .stepwise(low, high, _): return ["min_fps": high.framesPerSecond, "max_fps": low.framesPerSecond]
            case .unknown: return JSONObject.null
            }
        }
        let formats: [[String: Any]] = device.formats.map { format in
            var sizes: Any
            switch format.sizes {
            case let .discrete(list):
                sizes = zip(list, format.intervals).map { size, intervals -> [String: Any] in
                    ["width": size.width, "height": size.height, "intervals": intervalsJSON(intervals)]
                }
            case let .stepwise(minW, maxW, stepW, minH, maxH, stepH):
                sizes = ["min_width": minW, "max_width": maxW, "step_width": stepW, "min_height": minH, "max_height": maxH, "step_height": stepH]
            case .unknown:
                sizes = JSONObject.null
            }
            return ["fourcc": format.format.fourcc.description, "description": format.format.description,
                    "compressed": format.format.compressed, "sizes": sizes]
        }
        return ["path": device.path, "links": device.links, "stable_path": device.stablePath ?? JSONObject.null, "driver": device.driver, "card": device.card, "bus_info": device.busInfo,
                "capabilities": device.capabilities, "capture": device.isCaptureDevice, "formats": formats,
                "error": device.error ?? JSONObject.null]
    }
}
