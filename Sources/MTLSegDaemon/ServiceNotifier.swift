import CSystemd
#if canImport(FoundationEssentials)
import FoundationEssentials
import Glibc
#else
import Foundation
#endif
import MTLSegEssentials

/// Talks to systemd (sd_notify; a no-op when not started by systemd): READY,
/// STATUS with fps, clients and the source's state, RELOADING, STOPPING, and WATCHDOG=1
/// while frames flow or the source is waiting for its camera (opening it, or
/// reconnecting with backoff, and trying again within `waitingHeartbeat`). A
/// daemon whose source streams but which publishes nothing, or whose source has
/// stopped trying (stuck in a call into the driver), is not healthy, and systemd
/// should restart it; a camera that is not plugged in is the source's to wait
/// for: restarting the daemon every WatchdogSec would not bring it, and would hit
/// the unit's start limit, after which systemd gives up and a camera plugged in
/// later is never served.
public final class ServiceNotifier: @unchecked Sendable {
    /// What the notifier reads each tick.
    public struct Health: Sendable {
        public var lastFrameNanoseconds: UInt64
        public var published: UInt64
        public var clients: Int
        public var sourceState: String
        /// The source is opening its camera or waiting to reopen it.
        public var sourceWaiting: Bool
        /// The source's open attempts so far (SourceCounters.openAttempts): while it waits, they must advance.
        public var sourceOpenAttempts: UInt64

        public init(lastFrameNanoseconds: UInt64, published: UInt64, clients: Int, sourceState: String, sourceWaiting: Bool = false,
                    sourceOpenAttempts: UInt64 = 0) {
            self.lastFrameNanoseconds = lastFrameNanoseconds
            self.published = published
            self.clients = clients
            self.sourceState = sourceState
            self.sourceWaiting = sourceWaiting
            self.sourceOpenAttempts = sourceOpenAttempts
        }
    }

    /// Frames older than this mean "not flowing".
    public let stallAfter: Double
    /// A waiting source that has not tried to open its camera for this long is stuck, not waiting (its backoff
    /// between tries is at most 8 s).
    public let waitingHeartbeat: Double
    private let health: @Sendable () -> Health
    private let thread = StoppableThread()

    public init(stallAfter: Double, waitingHeartbeat: Double = 20, health: @escaping @Sendable () -> Health) {
        self.stallAfter = stallAfter
        self.waitingHeartbeat = waitingHeartbeat
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

    /// Starts the thread that sends STATUS every second and WATCHDOG=1 at half the watchdog interval while frames flow
    /// or the source waits for its camera.
    public func start() {
        let tick = min(1, (Self.watchdogInterval ?? 2) / 2)
        thread.start(name: "notify") { [self] thread in
            var lastPublished: UInt64 = 0
            var lastTick = Clock.monotonicNanoseconds()
            var flowing = true, fed = true
            var attempts: UInt64 = 0, attemptedAt = lastTick
            let underWatchdog = Self.watchdogInterval != nil
            while thread.sleep(seconds: tick) {
                // Health first: a frame published between the two reads is then not newer than `now`.
                let h = health()
                let now = Clock.monotonicNanoseconds()
                let fps = Double(h.published &- lastPublished) / max(Double(now - lastTick) / 1e9, 1e-9)
                lastPublished = h.published
                lastTick = now
                let age = h.lastFrameNanoseconds == 0 ? Double.infinity : Double(now &- h.lastFrameNanoseconds) / 1e9
                let isFlowing = age <= stallAfter
                if h.sourceOpenAttempts != attempts { (attempts, attemptedAt) = (h.sourceOpenAttempts, now) }
                let trying = Double(now - attemptedAt) / 1e9 <= waitingHeartbeat
                let feed = isFlowing || (h.sourceWaiting && trying)
                if isFlowing != flowing || feed != fed {
                    let silence = age.isFinite ? String(cFormat: "no frame for %.1f s", age) : "no frame yet"
                    if isFlowing {
                        DaemonLog.info("frames flow again")
                    } else if feed {
                        DaemonLog.warning("\(silence) (source \(h.sourceState)): waiting for the camera")
                    } else {
                        let stuck = h.sourceWaiting ? String(cFormat: ", and it has not tried to open the camera for %.0f s", Double(now - attemptedAt) / 1e9) : ""
                        DaemonLog.warning("\(silence) (source \(h.sourceState))\(stuck)"
                            + (underWatchdog ? ": watchdog paused, systemd restarts the daemon after WatchdogSec" : ""))
                    }
                    flowing = isFlowing
                    fed = feed
                }
                var message = String(cFormat: "STATUS=%.1f fps, %d client%@, source %@", fps, h.clients, h.clients == 1 ? "" : "s", h.sourceState)
                if feed { message += "\nWATCHDOG=1" }
                Self.send(message)
            }
        }
    }

    /// Ends the thread at once (a tick under way finishes first).
    public func stop() {
        thread.stop()
    }
}
