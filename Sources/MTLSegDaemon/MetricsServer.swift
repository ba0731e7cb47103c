#if canImport(FoundationEssentials)
import FoundationEssentials
import Glibc
#else
import Foundation
#endif
import MTLSegEssentials
import MTLSegSocket

/// The daemon's counters and histograms in the Prometheus text format, served
/// over HTTP on a Unix socket (off unless configured: no new network exposure,
/// and the unit's hardening stays as it is). Every connection gets one response.
public final class MetricsServer: @unchecked Sendable {
    private let path: String
    private let render: @Sendable () -> String
    private var listener: UnixSocket?
    private let thread = StoppableThread()

    public init(path: String, render: @escaping @Sendable () -> String) {
        self.path = path
        self.render = render
    }

    public func start() throws {
        let socket = try UnixSocket.listen(at: path, mode: 0o660)
        listener = socket
        thread.start(name: "metrics") { [render] thread in
            var request = [UInt8](repeating: 0, count: 4096)
            while !thread.shouldStop {
                guard socket.wait(for: Int16(POLLIN), timeout: 0.2) else { continue }
                // Out of descriptors, the scrape waits in the backlog: retried at the next poll, not in a busy loop.
                guard let client = socket.acceptClient() else { thread.sleep(seconds: 0.1); continue }
                // Read the request head (whatever it asks, the answer is the metrics), then answer and close.
                _ = client.read(into: &request, timeout: 1)
                let body = Array(render().utf8)
                let head = "HTTP/1.0 200 OK\r\nContent-Type: text/plain; version=0.0.4\r\nContent-Length: \(body.count)\r\nConnection: close\r\n\r\n"
                _ = client.writeAll(Array(head.utf8) + body, timeout: 1)
            }
        }
    }

    public func stop() {
        thread.stop(wake: { listener?.shutdownBoth() })
        listener?.removeBoundFile()
    }
}

/// Writes Prometheus text exposition lines.
struct PrometheusText {
    private(set) var text = ""

    mutating func metric(_ name: String, _ type: String, _ help: String, _ samples: [(labels: String, value: Double)]) {
        text += "# HELP \(name) \(help)\n# TYPE \(name) \(type)\n"
        for sample in samples { text += "\(name)\(sample.labels) \(Self.format(sample.value))\n" }
    }

    static func format(_ value: Double) -> String {
        if value.isInfinite { return value > 0 ? "+Inf" : "-Inf" }
        if value == value.rounded() && abs(value) < 1e15 { return String(Int64(value)) }
        return String(value)
    }

    /// A label value with \, " and newlines escaped.
    static func label(_ value: String) -> String {
        // Scalar by scalar: a "\r\n" is one Character, which a Character-wise replace of "\n" would miss.
        value.unicodeScalars.map { $0 == "\\" ? "\\\\" : $0 == "\"" ? "\\\"" : $0 == "\n" ? "\\n" : String($0) }.joined()
    }
}
