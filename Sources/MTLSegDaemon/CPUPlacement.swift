#if canImport(FoundationEssentials)
import FoundationEssentials
import Glibc
#else
import Foundation
#endif
import MTLSegEssentials

/// The CPUs this process may run on. With several cameras each daemon is pinned to its own cores
/// (`CPUAffinity=` in a drop-in of its unit); more inference threads than those cores only take turns
/// on them, each waiting for the slowest band of rows.
public enum CPUPlacement {
    /// How many CPUs the affinity mask allows (what CPUAffinity= and taskset set), from /proc/self/status's
    /// Cpus_allowed_list (Glibc's module leaves out sched_getaffinity); nil if unknown.
    public static func allowedCPUs(statusFile: String = "/proc/self/status") -> Int? {
        guard let file = fopen(statusFile, "r") else { return nil }
        defer { fclose(file) }
        var line: UnsafeMutablePointer<CChar>?
        var capacity = 0
        defer { free(line) }
        while getline(&line, &capacity, file) > 0, let line {
            let text = String(cString: line)
            guard text.hasPrefix("Cpus_allowed_list:") else { continue }
            return count(cpuList: String(text.dropFirst("Cpus_allowed_list:".count)))
        }
        return nil
    }

    /// The CPUs in a kernel CPU list such as "0-3,6" (4 + 1); nil if it does not read as one.
    static func count(cpuList: String) -> Int? {
        var total = 0
        for part in cpuList.split(separator: ",") {
            let bounds = part.split(separator: "-").map { Int($0.trimmingCharacters(where: \.isWhitespace)) }
            guard (1 ... 2).contains(bounds.count), let low = bounds.first!, let high = bounds.last!, low <= high else { return nil }
            total += high - low + 1
        }
        return total == 0 ? nil : total
    }

    /// A warning when `threads` exceeds the CPUs allowed; nil when it fits.
    public static func oversubscription(threads: Int, allowed: Int?) -> String? {
        guard let allowed, threads > allowed else { return nil }
        return "threads = \(threads) but this process may run on \(allowed) CPU\(allowed == 1 ? "" : "s") (CPUAffinity=, taskset): "
            + "the inference threads will take turns; set threads to at most \(allowed)"
    }
}
