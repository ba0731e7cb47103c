#if canImport(FoundationEssentials)
import FoundationEssentials
import Glibc
#else
import Foundation
#endif
import MTLSegEssentials

/// Lines on stderr: in the journal, in the form journald reads priorities from ("<6>message"); elsewhere
/// (an operator's terminal, `mtlsegd --check-config`, a pipe) errors and warnings say so in words
/// ("error: message") and the rest is the message alone. Messages carry text from outside (client names,
/// file names, task names, configuration values): every control character in them is escaped here, so
/// that no message can end its line early and forge another (a "\n<0>" in a client's name would otherwise
/// be an emergency-priority journal entry).
public enum DaemonLog {
    public enum Level: Int { case error = 3, warning = 4, notice = 5, info = 6, debug = 7 }

    private static let lock = Lock()

    /// Whether stderr is the journal's stream. systemd sets JOURNAL_STREAM to the device and inode of the
    /// stream it connects stdout/stderr to; a child that inherits the variable with stderr elsewhere does not match.
    static let writesToJournal: Bool = {
        guard let value = getenv("JOURNAL_STREAM") else { return false }
        let parts = String(cString: value).split(separator: ":")
        guard parts.count == 2, let device = UInt64(parts[0]), let inode = UInt64(parts[1]) else { return false }
        var status = stat()
        guard fstat(2, &status) == 0 else { return false }
        return UInt64(status.st_dev) == device && UInt64(status.st_ino) == inode
    }()

    public static func write(_ level: Level, _ message: String) {
        let prefix: String
        if writesToJournal {
            prefix = "<\(level.rawValue)>"
        } else {
            switch level {
            case .error: prefix = "error: "
            case .warning: prefix = "warning: "
            case .notice, .info, .debug: prefix = ""
            }
        }
        lock.lock()
        defer { lock.unlock() }
        writeToStandardError(prefix + LogText.escaped(message) + "\n")
    }

    public static func info(_ message: String) { write(.info, message) }
    public static func warning(_ message: String) { write(.warning, message) }
    public static func error(_ message: String) { write(.error, message) }
}
