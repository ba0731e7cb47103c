import CV4L2
import Foundation
import MTLSegEssentials
@testable import MTLSegCapture
import XCTest

/// The camera's state machine against a scripted device: negotiation, draining, EAGAIN, sequence
/// gaps, loss and reopen with backoff, stop.
final class V4L2CameraTests: XCTestCase {
    private let fast = V4L2Camera.Timing(timeout: 0.3, initialBackoff: 0.01, maximumBackoff: 0.04, pollMilliseconds: 5)

    private func makeDevice() -> FakeVideoDevice {
        FakeVideoDevice(offers: [
            .init(fourcc: .yuyv, sizes: [(320, 240), (640, 480), (1280, 720)],
                  intervals: [FrameInterval(numerator: 1, denominator: 30), FrameInterval(numerator: 1, denominator: 15)]),
            .init(fourcc: .mjpeg, sizes: [(1920, 1080)], intervals: [FrameInterval(numerator: 1, denominator: 30)]),
        ])
    }

    func testNegotiatesNearestSizeRateAndNamesTheNativeFormat() {
        let device = makeDevice()
        device.script([.frame(0)])
        let camera = V4L2Camera(path: "/dev/fake0", request: CameraRequest(width: 600, height: 400, framesPerSecond: 20),
                                timing: fast, device: device)
        let recorder = Recorder()
        recorder.start(camera)
        recorder.wait("a frame") { !$0.frames.isEmpty }
        camera.stop()
        XCTAssertEqual(device.setFormat?.width, 640)
        XCTAssertEqual(device.setFormat?.height, 480)
        XCTAssertEqual(device.setFormat.map { FourCC(rawValue: $0.pixelformat) }, .yuyv)
        XCTAssertEqual(device.setInterval, FrameInterval(numerator: 1, denominator: 15), "20 fps is nearer 15 than 30")
        XCTAssertEqual(camera.name, "/dev/fake0 YUYV 640x480 @15")
        XCTAssertEqual(recorder.frames.first?.width, 640)
        XCTAssertEqual(recorder.frames.first?.pixels.count, 640 * 480 * 3)
        XCTAssertEqual(recorder.states.first, .starting)
        XCTAssertEqual(recorder.states.last, .stopped)
    }

    func testRequestedNativeFormatIsUsedAndAMissingOneIsReportedWithTheOffers() {
        let device = makeDevice()
        device.script([.frame(0)])
        let camera = V4L2Camera(path: "/dev/fake0", request: CameraRequest(width: 640, height: 480, nativeFormat: .mjpeg),
                                timing: fast, device: device)
        let recorder = Recorder()
        recorder.start(camera)
        recorder.wait("a frame") { !$0.frames.isEmpty }
        camera.stop()
        XCTAssertEqual(camera.name, "/dev/fake0 MJPG 1920x1080 @30")

        let missing = V4L2Camera(path: "/dev/fake0", request: CameraRequest(nativeFormat: FourCC("NV12")), timing: fast, device: makeDevice())
        let failures = Recorder()
        failures.start(missing)
        failures.wait("reconnecting") { $0.states.contains { if case .reconnecting = $0 { return true }; return false } }
        missing.stop()
        guard case let .reconnecting(reason, _)? = failures.states.first(where: { if case .reconnecting = $0 { return true }; return false }) else {
            return XCTFail("no reconnecting state")
        }
        XCTAssertEqual(reason, "/dev/fake0: not usable as a camera: no NV12 format (offers YUYV, MJPG)")
    }

    func testEAGAINIsNotAnErrorAndTimestampsComeFromTheDriver() {
        let device = makeDevice()
        device.script([.pause, .frame(0), .pause, .pause, .frame(1), .pause])
        let camera = V4L2Camera(path: "/dev/fake0", timing: fast, device: device)
        let recorder = Recorder()
        let before = Clock.monotonicNanoseconds()
        recorder.start(camera)
        recorder.wait("two frames") { $0.frames.count == 2 }
        camera.stop()
        XCTAssertEqual(recorder.sequences, [0, 1])
        XCTAssertEqual(camera.counters.reopened, 0)
        XCTAssertEqual(camera.counters.captured, 2)
        XCTAssertFalse(recorder.states.contains { if case .reconnecting = $0 { return true }; return false })
        let frame = recorder.frames[1]
        XCTAssertGreaterThanOrEqual(frame.monotonicNanoseconds, before)
        XCTAssertLessThanOrEqual(frame.monotonicNanoseconds, Clock.monotonicNanoseconds())
        XCTAssertEqual(frame.pixels.first, 1, "the pixels of the buffer dequeued with sequence 1")
    }

    func testDrainDeliversOnlyTheNewestReadyBuffer() {
        let device = makeDevice()
        device.script([.frame(0), .frame(1), .frame(2), .pause, .frame(3)])
        let camera = V4L2Camera(path: "/dev/fake0", timing: fast, device: device)
        let recorder = Recorder()
        recorder.start(camera)
        recorder.wait("frame 3") { $0.sequences.last == 3 }
        camera.stop()
        XCTAssertEqual(recorder.sequences, [2, 3], "0 and 1 were older than 2 when they were dequeued")
        XCTAssertEqual(camera.counters.droppedByDriver, 0, "skipping frames ourselves is not a driver drop")
        XCTAssertEqual(recorder.frames[0].pixels.first, 2)
    }

    func testSequenceGapsCountAsDroppedByDriver() {
        let device = makeDevice()
        device.script([.frame(0), .pause, .frame(1), .pause, .frame(5), .pause, .frame(6), .pause, .frame(9)])
        let camera = V4L2Camera(path: "/dev/fake0", timing: fast, device: device)
        let recorder = Recorder()
        recorder.start(camera)
        recorder.wait("frame 9") { $0.sequences.last == 9 }
        camera.stop()
        XCTAssertEqual(recorder.sequences, [0, 1, 5, 6, 9])
        XCTAssertEqual(camera.counters.droppedByDriver, 3 + 2)
        XCTAssertEqual(camera.counters.captured, 5)
    }

    func testDeviceLostMidStreamIsTornDownAndReopened() {
        let device = makeDevice()
        // The driver restarts its sequence at 0 after the reopen; the camera's continues from 2.
        device.script([.frame(0), .pause, .frame(1), .pause, .failure(ENODEV), .frame(0), .pause, .frame(1)])
        let camera = V4L2Camera(path: "/dev/fake0", timing: fast, device: device)
        let recorder = Recorder()
        recorder.start(camera)
        recorder.wait("four frames") { $0.frames.count == 4 }
        camera.stop()
        XCTAssertEqual(recorder.sequences, [0, 1, 2, 3])
        XCTAssertEqual(camera.counters.reopened, 1)
        XCTAssertEqual(camera.counters.droppedByDriver, 0)
        XCTAssertEqual(recorder.states.filter { $0 == .streaming }.count, 2)
        XCTAssertTrue(recorder.states.contains(.reconnecting(reason: "/dev/fake0: VIDIOC_DQBUF failed: No such device (errno 19)",
                                                             retryInSeconds: 0.01)), "\(recorder.states)")
        // Full teardown each time: STREAMOFF, every buffer unmapped, the node closed.
        XCTAssertEqual(device.opens, 2)
        XCTAssertEqual(device.closes, 2)
        XCTAssertEqual(device.streamOns, 2)
        XCTAssertEqual(device.streamOffs, 2)
        XCTAssertEqual(device.mapped, device.unmapped)
    }

    func testFailedOpensBackOffExponentiallyUpToTheMaximum() {
        let device = makeDevice()
        device.failOpens([EIO, ENOENT, ENOENT, ENOENT])
        device.script([.frame(7)])
        let camera = V4L2Camera(path: "/dev/fake0", timing: fast, device: device)
        let recorder = Recorder()
        recorder.start(camera)
        recorder.wait("a frame") { !$0.frames.isEmpty }
        camera.stop()
        let retries = recorder.states.compactMap { state -> Double? in
            if case let .reconnecting(_, retry) = state { return retry }
            return nil
        }
        // The fourth failure repeats the third's state exactly, so it is not reported again.
        XCTAssertEqual(retries, [0.01, 0.02, 0.04])
        XCTAssertTrue(recorder.states.contains(.reconnecting(
            reason: "/dev/fake0: open failed: No such file or directory (errno 2)", retryInSeconds: 0.02)))
        XCTAssertEqual(recorder.sequences, [7], "the first stream keeps the driver's numbers")
        XCTAssertEqual(camera.counters.reopened, 0, "opening late is not a reopen")
    }

    func testNoFrameWithinTheTimeoutCountsAsLost() {
        let device = makeDevice()
        let camera = V4L2Camera(path: "/dev/fake0", timing: fast, device: device)
        let recorder = Recorder()
        recorder.start(camera)
        recorder.wait("reconnecting") { $0.states.contains { if case .reconnecting = $0 { return true }; return false } }
        camera.stop()
        guard case let .reconnecting(reason, _)? = recorder.states.first(where: { if case .reconnecting = $0 { return true }; return false }) else {
            return XCTFail("no reconnecting state")
        }
        XCTAssertTrue(reason.hasPrefix("/dev/fake0: no frame for 0."), reason)
    }

    func testANodeWithoutVideoCaptureIsRefused() {
        let device = makeDevice()
        device.capabilities = UInt32(V4L2_CAP_META_CAPTURE | V4L2_CAP_STREAMING)
        let camera = V4L2Camera(path: "/dev/fake3", timing: fast, device: device)
        let recorder = Recorder()
        recorder.start(camera)
        recorder.wait("reconnecting") { $0.states.contains { if case .reconnecting = $0 { return true }; return false } }
        camera.stop()
        guard case let .reconnecting(reason, _)? = recorder.states.first(where: { if case .reconnecting = $0 { return true }; return false }) else {
            return XCTFail("no reconnecting state")
        }
        XCTAssertEqual(reason, "/dev/fake3: not usable as a camera: no video capture capability (fake \"\")")
    }

    func testStopJoinsAndNothingArrivesAfterIt() {
        let device = makeDevice()
        device.script((0 ..< 3).flatMap { [FakeVideoDevice.Event.frame(UInt32($0)), .pause] })
        let camera = V4L2Camera(path: "/dev/fake0", timing: fast, device: device)
        let recorder = Recorder()
        recorder.start(camera)
        recorder.wait("a frame") { !$0.frames.isEmpty }
        camera.stop()
        recorder.markStopped()
        let count = recorder.frames.count
        XCTAssertEqual(camera.state, .stopped)
        device.script([.frame(10), .frame(11)])
        XCTAssertTrue(Recorder.threadEnds("cap-fake0"), "the capture thread outlived stop")
        XCTAssertEqual(recorder.lateFrames, 0, "nothing after stop")
        XCTAssertEqual(recorder.frames.count, count)
        XCTAssertEqual(device.closes, device.opens)
    }

    func testFormatNegotiationPicksNearest() {
        XCTAssertEqual(FormatNegotiation.nearestSize(to: 1000, 600, in: .discrete([(640, 480), (1280, 720), (1920, 1080)]))?.width, 1280)
        let stepwise = FormatNegotiation.nearestSize(to: 641, 5000, in: .stepwise(minWidth: 16, maxWidth: 1920, stepWidth: 8,
                                                                                  minHeight: 16, maxHeight: 1080, stepHeight: 2))
        XCTAssertEqual(stepwise?.width, 640)
        XCTAssertEqual(stepwise?.height, 1080)
        let rates: FrameIntervals = .discrete([FrameInterval(numerator: 1, denominator: 5), FrameInterval(numerator: 1, denominator: 60)])
        XCTAssertEqual(FormatNegotiation.nearestInterval(toFPS: 40, in: rates), FrameInterval(numerator: 1, denominator: 60))
        let range: FrameIntervals = .stepwise(min: FrameInterval(numerator: 1, denominator: 60), max: FrameInterval(numerator: 1, denominator: 1),
                                              step: FrameInterval(numerator: 1, denominator: 1))
        XCTAssertEqual(FormatNegotiation.nearestInterval(toFPS: 120, in: range), FrameInterval(numerator: 1, denominator: 60))
        XCTAssertEqual(FormatNegotiation.nearestInterval(toFPS: 25, in: range)?.framesPerSecond, 25)
    }

    func testFourCCText() {
        XCTAssertEqual(FourCC("YUYV").description, "YUYV")
        XCTAssertEqual(FourCC.rgb24.rawValue, 0x3342_4752, "RGB3, V4L2_PIX_FMT_RGB24")
        XCTAssertEqual(FourCC("Y8").description, "Y8")
    }
}
