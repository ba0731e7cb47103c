#if canImport(FoundationEssentials)
import FoundationEssentials
import Glibc
#else
import Foundation
#endif

/// Task names become parts of file names (`infer` writes `<image>.<task>.mask.png`, `subscribe --png`
/// writes `<sequence>.<task>.png`) and appear in logs, so a model may only name its tasks with text that
/// is safe in both: refused at load otherwise.
public enum TaskNameRules {
    public static let maxBytes = 64

    /// Why `name` cannot name a task; nil when it can.
    public static func problem(_ name: String) -> String? {
        if name.isEmpty { return "empty" }
        if name.utf8.count > maxBytes { return "longer than \(maxBytes) bytes" }
        // By scalar, not by Character: "/" followed by a combining mark is one Character that is not "/", but the file
        // system sees the slash.
        let scalars = Array(name.unicodeScalars)
        if scalars.contains("/") || scalars.contains("\\") { return "\(name.debugDescription) contains a path separator; task names become file names" }
        if zip(scalars, scalars.dropFirst()).contains(where: { $0 == "." && $1 == "." }) {
            return "\(name.debugDescription) contains '..'; task names become file names"
        }
        if name.unicodeScalars.contains(where: isUnsafe) { return "\(name.debugDescription) contains a control character" }
        return nil
    }

    /// `name` with every character a file name or a log line should not hold replaced by '_' (for names
    /// that come from elsewhere than a loaded model, e.g. a daemon's stream description).
    public static func safeFileComponent(_ name: String) -> String {
        var scalars = String.UnicodeScalarView()
        for scalar in name.unicodeScalars.prefix(maxBytes) {
            scalars.append(isUnsafe(scalar) || scalar == "/" || scalar == "\\" ? "_" : scalar)
        }
        // '..' by scalar too (a dot with a combining mark is still a dot to the file system).
        var kept = Array(scalars)
        for i in kept.indices.dropFirst() where kept[i] == "." && kept[i - 1] == "." { (kept[i - 1], kept[i]) = ("_", "_") }
        var safe = String(String.UnicodeScalarView(kept))
        while safe.utf8.count > maxBytes { safe.removeLast() }
        return safe.isEmpty ? "_" : safe
    }

    /// Control characters (C0, DEL, C1) and the Unicode line and paragraph separators.
    static func isUnsafe(_ scalar: Unicode.Scalar) -> Bool {
        scalar.value < 0x20 || (0x7F ... 0x9F).contains(scalar.value) || scalar.value == 0x2028 || scalar.value == 0x2029
    }
}
