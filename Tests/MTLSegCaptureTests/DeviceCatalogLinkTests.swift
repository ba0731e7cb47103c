import Foundation
@testable import MTLSegCapture
import XCTest

/// The stable names `mtlseg devices` offers for a camera's configuration, on a made-up /dev tree laid out as udev
/// lays out two cameras of one model: by-id links from model and serial, by-path links from the USB port.
final class DeviceCatalogLinkTests: XCTestCase {
    private var dev: String!

    override func setUpWithError() throws {
        dev = "/tmp/mtlseg-dev-\(UUID().uuidString.prefix(8))"
        let files = FileManager.default
        try files.createDirectory(atPath: dev + "/v4l/by-id", withIntermediateDirectories: true)
        try files.createDirectory(atPath: dev + "/v4l/by-path", withIntermediateDirectories: true)
        // Regular files stand in for the nodes: opening them as V4L2 devices fails, which the listing reports per node.
        for node in ["video0", "video1", "video2", "video3", "video10"] { _ = files.createFile(atPath: "\(dev!)/\(node)", contents: nil) }
        let links = [
            "v4l/by-id/usb-Acme_Cam_A1-video-index0": "../../video0", "v4l/by-id/usb-Acme_Cam_A1-video-index1": "../../video1",
            "v4l/by-path/pci-0000:00:14.0-usb-0:1:1.0-video-index0": "../../video0",
            "v4l/by-path/pci-0000:00:14.0-usb-0:2:1.0-video-index0": "../../video2",
        ]
        for (link, target) in links { try files.createSymbolicLink(atPath: "\(dev!)/\(link)", withDestinationPath: target) }
    }

    override func tearDownWithError() throws {
        try? FileManager.default.removeItem(atPath: dev)
    }

    func testEachNodeGetsItsLinksAndTheStablestOneToConfigure() throws {
        let devices = DeviceCatalog.list(deviceDirectory: dev)
        XCTAssertEqual(devices.map(\.path), ["video0", "video1", "video2", "video3", "video10"].map { "\(dev!)/\($0)" }, "in numeric order")
        let byPath = Dictionary(uniqueKeysWithValues: devices.map { ($0.path, $0) })
        let first = try XCTUnwrap(byPath[dev + "/video0"])
        XCTAssertEqual(first.links.count, 2, "\(first.links)")
        // by-id (follows the camera to any port) before by-path (the port).
        XCTAssertEqual(first.stablePath, dev + "/v4l/by-id/usb-Acme_Cam_A1-video-index0")
        XCTAssertEqual(byPath[dev + "/video1"]?.stablePath, dev + "/v4l/by-id/usb-Acme_Cam_A1-video-index1")
        // A second camera of the model without a serial: only its port names it.
        XCTAssertEqual(byPath[dev + "/video2"]?.stablePath, dev + "/v4l/by-path/pci-0000:00:14.0-usb-0:2:1.0-video-index0")
        XCTAssertNil(byPath[dev + "/video3"]?.stablePath, "no link: udev did not name it")
        XCTAssertNotNil(first.error, "a regular file is no V4L2 device")
    }

    /// Two cameras of one model without serials: udev gives both one by-id name, which points at one of them and may
    /// move to the other; both are named by their ports. One camera's two capture nodes keep their by-id links.
    func testCamerasOfOneModelWithoutSerialsAreNamedByTheirPorts() {
        func camera(_ node: String, card: String, _ links: [String]) -> VideoDeviceInfo {
            var info = VideoDeviceInfo(path: "/dev/\(node)", links: links.map { "/dev/v4l/\($0)" })
            info.driver = "uvcvideo"
            info.card = card
            info.isCaptureDevice = true
            return info
        }
        let devices = DeviceCatalog.markSharedIdLinks([
            camera("video0", card: "Acme Cam", ["by-id/usb-Acme_Cam-video-index0", "by-path/pci-0:1-video-index0"]),
            camera("video2", card: "Acme Cam", ["by-path/pci-0:2-video-index0"]),
            camera("video4", card: "Other Cam", ["by-id/usb-Other_Cam_SN1-video-index0", "by-path/pci-0:3-video-index0"]),
            camera("video5", card: "Other Cam", ["by-id/usb-Other_Cam_SN1-video-index1", "by-path/pci-0:3-video-index1"]),
        ])
        XCTAssertEqual(devices.map(\.stablePath), ["/dev/v4l/by-path/pci-0:1-video-index0", "/dev/v4l/by-path/pci-0:2-video-index0",
                                                   "/dev/v4l/by-id/usb-Other_Cam_SN1-video-index0", "/dev/v4l/by-id/usb-Other_Cam_SN1-video-index1"])
    }
}
