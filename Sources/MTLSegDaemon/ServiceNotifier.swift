import CSystemd
#if canImport(FoundationEssentials)
import FoundationEssentials
import Glibc
#else
import Foundation
#endif
import MTLSegEssentials

/// Talks to systemd (sd_notify; a no-op when not started by systemd): READY,
/// STATUS with fps, latency and clients, RELOADING, STOPPING, and WATCHDOG=1
/// only while frames actually flow — a daemon that is up but publishing
/// nothing is not healthy, and systemd should restart it.
public final class ServiceNotifier: @unchecked Sendable {
    /// What the notifier reads each tick.
    public struct Health: Sendable {
        public var lastFrameNanoseconds: UInt64
        public var published: UInt64
        public var clients: Int
        public var sourceState: String

        public init(lastFrameNanoseconds: UInt64, published: UInt64, clients: Int, sourceState: String) {
            self.lastFrameNanoseconds = lastFrameNanoseconds
            self.published = published
            self.clients = clients
            self.sourceState = sourceState
        }
    }

    /// Frames older than this mean "not flowing".
    public let stallAfter: Double
    private let health: @Sendable () -> Health
    private let thread = StoppableThread()

    public init(stallAfter: Double, health: @escaping @Sendable () -> Health) {
        self.stallAfter = stallAfter
        self.health = health
    }

    public static func send(_ state: String) {
        _ = sd_notify(0, state)
    }

    /// The watchdog interval systemd asked for (WatchdogSec=), if any.
    public static var watchdogInterval: Double? {
        var usec: UInt64 = 0
        return sd_watchdog_enabled(0, &usec) > 0 ? Double(usec) / 1e6 : nil
    }

    /// Starts the thread that sends STATUS every second and WATCHDOG=1 at half the watchdog interval while frames flow.
    public func start() {
        let tick = min(1, (Self.watchdogInterval ?? 2) / 2)
        thread.start(name: "notify") { [self] thread in
            var lastPublished: UInt64 = 0
            var lastTick = Clock.monotonicNanoseconds()
            var flowing = true
            while thread.sleep(seconds: tick) {
                let now = Clock.monotonicNanoseconds()
                let h = health()
                let fps = Double(h.published &- lastPublished) / max(Double(now - lastTick) / 1e9, 1e-9)
                lastPublished = h.published
                lastTick = now
                let age = h.lastFrameNanoseconds == 0 ? Double.infinity : Double(now &- h.lastFrameNanoseconds) / 1e9
                let isFlowing = age <= stallAfter
                if isFlowing != flowing {
                    let silence = age.isFinite ? String(cFormat: "no frame for %.1f s", age) : "no frame yet"
                    DaemonLog.write(isFlowing ? .info : .warning,
                                    isFlowing ? "frames flow again" : "\(silence) (source \(h.sourceState)): watchdog paused")
                    flowing = isFlowing
                }
                var message = String(cFormat: "STATUS=%.1f fps, %d client%@, source %@", fps, h.clients, h.clients == 1 ? "" : "s", h.sourceState)
                if isFlowing { message += "\nWATCHDOG=1" }
                Self.send(message)
            }
        }
    }

    /// Ends the thread at once (a tick under way finishes first).
    public func stop() {
        thread.stop()
    }
}
