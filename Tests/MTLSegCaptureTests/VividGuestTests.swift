import Foundation
@testable import MTLSegCapture
import XCTest

/// Real capture from vivid, the kernel's virtual camera. These run only inside the VM that
/// `VividVMTests` boots (where MTLSEG_VIVID_GUEST=1 and /dev/video0 is vivid); elsewhere they skip.
final class VividGuestTests: XCTestCase {
    override func setUpWithError() throws {
        try XCTSkipUnless(ProcessInfo.processInfo.environment["MTLSEG_VIVID_GUEST"] == "1", "runs inside the vivid VM only")
    }

    func testListsVividWithItsFormatsSizesAndRates() throws {
        let devices = DeviceCatalog.list()
        let video0 = try XCTUnwrap(devices.first { $0.path == "/dev/video0" }, "\(devices.map(\.path))")
        XCTAssertNil(video0.error)
        XCTAssertEqual(video0.driver, "vivid")
        XCTAssertTrue(video0.isCaptureDevice)
        XCTAssertTrue(video0.capabilities.contains("streaming"))
        let yuyv = try XCTUnwrap(video0.formats.first { $0.format.fourcc == .yuyv })
        guard case let .discrete(sizes) = yuyv.sizes else { return XCTFail("webcam input sizes should be discrete: \(yuyv.sizes)") }
        XCTAssertTrue(sizes.contains { $0 == (640, 360) }, "\(sizes)")
        XCTAssertEqual(yuyv.intervals.count, sizes.count)
        XCTAssertTrue(devices.contains { !$0.isCaptureDevice }, "vivid also makes output/metadata nodes")
        print("vivid formats: " + video0.formats.map(\.format.fourcc.description).joined(separator: " "))
    }

    /// Captures in each native format, converted to RGB24: frames arrive with increasing sequence
    /// numbers, and the picture is vivid's default 75% colour bars.
    func testCapturesColourBarsInSeveralNativeFormats() throws {
        for native in [FourCC.yuyv, FourCC("UYVY"), FourCC("NV12"), nil] {
            let camera = V4L2Camera(path: "/dev/video0", request: CameraRequest(width: 640, height: 360, framesPerSecond: 30, nativeFormat: native))
            let recorder = Recorder()
            recorder.start(camera)
            recorder.wait("5 frames in \(native?.description ?? "automatic")", seconds: 20) { $0.frames.count >= 5 }
            camera.stop()
            print("\(camera.name): sequences \(recorder.sequences), states \(recorder.states)")
            let frames = recorder.frames
            guard frames.count >= 5 else { continue }
            XCTAssertTrue(camera.name.hasPrefix("/dev/video0 \(native?.description ?? "")"), camera.name)
            XCTAssertTrue(zip(frames, frames.dropFirst()).allSatisfy { $0.sequence < $1.sequence }, "\(recorder.sequences)")
            XCTAssertTrue(zip(frames, frames.dropFirst()).allSatisfy { $0.monotonicNanoseconds < $1.monotonicNanoseconds })
            XCTAssertFalse(recorder.states.contains { if case .reconnecting = $0 { return true }; return false }, "\(recorder.states)")
            let frame = frames.last!
            XCTAssertEqual(frame.width, 640)
            XCTAssertEqual(frame.height, 360)
            assertColourBars(frame, label: camera.name)
        }
    }

    /// 75% bars, left to right: white, yellow, cyan, green, magenta, red, blue, black (75% = 191/255).
    private func assertColourBars(_ frame: Frame, label: String, file: StaticString = #filePath, line: UInt = #line) {
        let bars: [(String, [Int])] = [("white", [191, 191, 191]), ("yellow", [191, 191, 0]), ("cyan", [0, 191, 191]),
                                       ("green", [0, 191, 0]), ("magenta", [191, 0, 191]), ("red", [191, 0, 0]),
                                       ("blue", [0, 0, 191]), ("black", [0, 0, 0])]
        let y = frame.height * 2 / 3  // below vivid's text overlay
        var seen: [String] = []
        for (index, (name, expected)) in bars.enumerated() {
            let x = (2 * index + 1) * frame.width / 16
            let o = (y * frame.width + x) * 3
            let rgb = (0 ..< 3).map { Int(frame.pixels[o + $0]) }
            seen.append("\(name) \(rgb)")
            XCTAssertTrue(zip(rgb, expected).allSatisfy { abs($0 - $1) <= 24 }, "\(label): \(name) bar is \(rgb), expected ≈\(expected)",
                          file: file, line: line)
        }
        print("\(label): " + seen.joined(separator: ", "))
    }
}
