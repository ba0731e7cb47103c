import Foundation
import MTLSegEssentials
import MTLSegCapture
import XCTest
@testable import MTLSegDaemon

/// The daemon's messages to systemd, caught on a real datagram socket.
final class ServiceNotifierTests: XCTestCase {
    private var directory: URL!

    override func setUpWithError() throws {
        directory = URL(fileURLWithPath: "/tmp").appendingPathComponent("mtlsegd-notify-\(UUID().uuidString.prefix(8))")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
    }

    override func tearDownWithError() throws {
        unsetenv("NOTIFY_SOCKET")
        unsetenv("WATCHDOG_USEC")
        unsetenv("WATCHDOG_PID")
        try? FileManager.default.removeItem(at: directory)
    }

    /// A datagram socket where this process's sd_notify messages arrive, as systemd's with WatchdogSec=0.4 would
    /// (the notifier ticks every 0.2 s).
    private func listenAsSystemd() throws -> NotifySocket {
        let notify = try NotifySocket(path: directory.appendingPathComponent("notify").path)
        setenv("NOTIFY_SOCKET", notify.path, 1)
        setenv("WATCHDOG_USEC", "400000", 1)
        setenv("WATCHDOG_PID", "\(getpid())", 1)
        return notify
    }

    func testWatchdogWhileFramesFlowOrTheCameraIsAwaitedAndReloadCarriesItsTime() throws {
        let notify = try listenAsSystemd()
        var config = DaemonConfig()
        config.model = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .appendingPathComponent("MTLSegCoreTests/Fixtures/mtl2-tiny.safetensors").path
        config.threads = 1
        config.fps = 30
        config.stallTimeout = 0.5
        config.socketPath = directory.appendingPathComponent("mtlsegd.sock").path
        let source = PausableSource(TestFrameSource(width: 160, height: 120, fps: 30))
        let daemon = try Daemon(config: config) { _ in source }
        try daemon.start()
        defer { daemon.stop() }

        func isWatchdog(_ message: String) -> Bool { message.contains("WATCHDOG=1") }
        func isStatus(_ message: String) -> Bool { message.contains("STATUS=") && message.contains("fps") }
        let flowing = notify.collect(until: { $0.contains { $0.contains("READY=1") } && $0.filter(isWatchdog).count >= 3 })
        XCTAssertTrue(flowing.contains { $0.contains("READY=1") })
        XCTAssertGreaterThanOrEqual(flowing.filter(isWatchdog).count, 3, "\(flowing)")
        XCTAssertTrue(flowing.contains(where: isStatus))

        source.paused = true
        // Frames stop; once the last ones age past the stall timeout, a tick's STATUS comes without WATCHDOG.
        let stalling = notify.collect(until: { $0.last.map { isStatus($0) && !isWatchdog($0) } ?? false })
        XCTAssertFalse(stalling.last.map(isWatchdog) ?? true, "the watchdog never paused: \(stalling)")
        // Then the next ticks, counted (not timed), carry none.
        let stalled = notify.collect(until: { $0.filter(isStatus).count >= 4 })
        XCTAssertEqual(stalled.filter(isStatus).count, 4, "STATUS goes on: \(stalled)")
        XCTAssertFalse(stalled.contains(where: isWatchdog), "no watchdog while no frame flows: \(stalled)")

        source.paused = false
        let recovered = notify.collect(until: { $0.contains(where: isWatchdog) })
        XCTAssertTrue(recovered.contains(where: isWatchdog), "watchdog resumes: \(recovered)")

        // A camera that is unplugged (the source reconnecting with backoff) is waited for: the watchdog is fed, else
        // systemd would restart the daemon every WatchdogSec until its start limit, and then never again.
        source.pausedState = .reconnecting(reason: "unplugged by the test", retryInSeconds: 8)
        source.paused = true
        let unplugged = notify.collect(until: { $0.filter { isStatus($0) && $0.contains("reconnecting") }.count >= 6 })
        let reconnecting = unplugged.filter { isStatus($0) && $0.contains("reconnecting") }
        XCTAssertEqual(reconnecting.count, 6, "\(unplugged)")
        XCTAssertTrue(reconnecting.allSatisfy(isWatchdog), "the watchdog is fed while the source waits for its camera: \(reconnecting)")
        source.paused = false

        let before = Clock.monotonicNanoseconds() / 1000
        daemon.reload(config: config)
        let after = Clock.monotonicNanoseconds() / 1000
        let reload = notify.collect(until: { $0.contains { $0.contains("RELOADING=1") } }).first { $0.contains("RELOADING=1") }
        let stamp = reload?.split(separator: "\n").first { $0.hasPrefix("MONOTONIC_USEC=") }.flatMap { UInt64($0.dropFirst("MONOTONIC_USEC=".count)) }
        XCTAssertNotNil(stamp, "RELOADING=1 carries MONOTONIC_USEC: \(reload ?? "nothing")")
        if let stamp { XCTAssertTrue((before ... after).contains(stamp)) }
    }
}

/// The opening attempts of a source waiting for its camera, as a test sets them (read by the notifier's thread).
private final class Attempts: @unchecked Sendable {
    private let lock = NSLock()
    private var count: UInt64 = 0
    var value: UInt64 { lock.lock(); defer { lock.unlock() }; return count }
    func advance() { lock.lock(); count += 1; lock.unlock() }
}

extension ServiceNotifierTests {
    /// A source waiting for its camera is fed to the watchdog only while it keeps trying to open it: one whose tries
    /// stop (stuck in a call into the driver) is as hung as a pipeline that publishes nothing, and systemd must
    /// restart the daemon.
    func testAWaitingSourceThatStopsTryingStarvesTheWatchdog() throws {
        let notify = try listenAsSystemd()
        let attempts = Attempts()
        let notifier = ServiceNotifier(stallAfter: 0.5, waitingHeartbeat: 1) {
            ServiceNotifier.Health(lastFrameNanoseconds: 0, published: 0, clients: 0, sourceState: "reconnecting in 8.0 s (test)",
                                   sourceWaiting: true, sourceOpenAttempts: attempts.value)
        }
        notifier.start()
        defer { notifier.stop() }
        func isStatus(_ message: String) -> Bool { message.contains("STATUS=") }
        // Trying every 0.5 s (within the 1 s heartbeat): every tick feeds the watchdog.
        var trying: [String] = []
        for _ in 0 ..< 6 {
            attempts.advance()
            trying += notify.collect(until: { $0.filter(isStatus).count >= 2 })
        }
        XCTAssertGreaterThanOrEqual(trying.filter(isStatus).count, 10, "\(trying)")
        XCTAssertTrue(trying.filter(isStatus).allSatisfy { $0.contains("WATCHDOG=1") }, "fed while the source tries: \(trying)")
        // The tries stop: once the heartbeat has passed, ticks come without WATCHDOG=1, and stay so.
        let stopping = notify.collect(until: { $0.last.map { isStatus($0) && !$0.contains("WATCHDOG=1") } ?? false })
        XCTAssertFalse(stopping.last?.contains("WATCHDOG=1") ?? true, "the watchdog was fed on: \(stopping)")
        let stuck = notify.collect(until: { $0.filter(isStatus).count >= 4 })
        XCTAssertFalse(stuck.contains { $0.contains("WATCHDOG=1") }, "\(stuck)")
    }
}

/// Passes frames on, or swallows them while paused (a camera that stalls).
final class PausableSource: FrameSource, @unchecked Sendable {
    private let inner: TestFrameSource
    private let lock = NSLock()
    private var isPaused = false
    private var delivered: UInt64 = 0

    init(_ inner: TestFrameSource) { self.inner = inner }

    var paused: Bool {
        get { lock.lock(); defer { lock.unlock() }; return isPaused }
        set { lock.lock(); isPaused = newValue; lock.unlock() }
    }

    var name: String { inner.name }
    /// Only the frames passed on count as captured.
    var counters: SourceCounters {
        lock.lock()
        defer { lock.unlock() }
        var counters = SourceCounters()
        counters.captured = delivered
        // Paused as reconnecting, it tries to open its camera twice a second, as a camera source does at its shortest
        // backoff.
        if isPaused, case .reconnecting = statePaused { counters.openAttempts = UInt64(Date().timeIntervalSince1970 * 2) }
        return counters
    }
    /// The state reported while paused.
    var pausedState: SourceState {
        get { lock.lock(); defer { lock.unlock() }; return statePaused }
        set { lock.lock(); statePaused = newValue; lock.unlock() }
    }
    private var statePaused = SourceState.stalled(reason: "paused by the test")

    var state: SourceState { paused ? pausedState : .streaming }

    func start(deliver: @escaping @Sendable (Frame) -> Void, stateChanged: @escaping @Sendable (SourceState) -> Void) {
        inner.start(deliver: { [weak self] frame in
            guard let self, !self.paused else { return }
            self.lock.lock()
            self.delivered += 1
            self.lock.unlock()
            deliver(frame)
        }, stateChanged: stateChanged)
    }

    func stop() { inner.stop() }
}
