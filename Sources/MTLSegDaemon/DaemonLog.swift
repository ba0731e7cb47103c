#if canImport(FoundationEssentials)
import FoundationEssentials
import Glibc
#else
import Foundation
#endif
import MTLSegEssentials

/// Lines on stderr in the form journald reads priorities from ("<6>message"),
/// which plain terminals show as is. Messages carry text from outside (client names, file names,
/// task names, configuration values): every control character in them is escaped here, so that no
/// message can end its line early and forge another (a "\n<0>" in a client's name would otherwise be an
/// emergency-priority journal entry).
public enum DaemonLog {
    public enum Level: Int { case error = 3, warning = 4, notice = 5, info = 6, debug = 7 }

    private static let lock = Lock()

    public static func write(_ level: Level, _ message: String) {
        lock.lock()
        defer { lock.unlock() }
        writeToStandardError("<\(level.rawValue)>\(LogText.escaped(message))\n")
    }

    public static func info(_ message: String) { write(.info, message) }
    public static func warning(_ message: String) { write(.warning, message) }
    public static func error(_ message: String) { write(.error, message) }
}
