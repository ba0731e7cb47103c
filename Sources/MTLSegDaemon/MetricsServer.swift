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
/// and the unit's hardening stays as it is). Every connection gets one response,
/// to `GET /metrics` (or `/`; `HEAD` too) the metrics, to anything else an error
/// status; connections are answered one at a time, each given at most
/// `requestTimeout` to send its request head.
public final class MetricsServer: @unchecked Sendable {
    private let path: String
    private let render: @Sendable () -> String
    private var listener: UnixSocket?
    private let thread = StoppableThread()

    public init(path: String, render: @escaping @Sendable () -> String) {
        self.path = path
        self.render = render
    }

    /// Seconds a connection has to send its whole request head.
    static let requestTimeout = 1.0
    /// Longest request head read; a longer one is answered 431.
    static let requestHeadLimit = 8192

    public func start() throws {
        let socket = try UnixSocket.listen(at: path, mode: 0o660)
        listener = socket
        thread.start(name: "metrics") { [render] thread in
            while !thread.shouldStop {
                guard socket.wait(for: Int16(POLLIN), timeout: 0.2) else { continue }
                // Out of descriptors, the scrape waits in the backlog: retried at the next poll, not in a busy loop.
                guard let client = socket.acceptClient() else { thread.sleep(seconds: 0.1); continue }
                let response = Self.response(to: Self.readHead(client), metrics: render)
                _ = client.writeAll(response, timeout: 1)
            }
        }
    }

    /// The request head (up to the blank line), as far as it came within `requestTimeout`; nil past
    /// `requestHeadLimit`.
    static func readHead(_ client: UnixSocket) -> [UInt8]? {
        var head: [UInt8] = [], buffer = [UInt8](repeating: 0, count: 2048)
        let deadline = Clock.monotonicDeadline(in: requestTimeout)
        while !head.holdsHeadEnd {
            let left = Double(deadline &- Clock.monotonicNanoseconds()) / 1e9
            guard left > 0, let count = client.read(into: &buffer, timeout: left), count > 0 else { break }
            head += buffer[0 ..< count]
            if head.count > requestHeadLimit { return nil }
        }
        return head
    }

    /// The whole HTTP/1.0 response to a request head: the metrics for GET or HEAD of /metrics or /.
    static func response(to head: [UInt8]?, metrics: () -> String) -> [UInt8] {
        func reply(_ status: String, _ body: String, extra: String = "") -> [UInt8] {
            Array(("HTTP/1.0 \(status)\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Length: \(body.utf8.count)\r\n"
                + extra + "Connection: close\r\n\r\n" + body).utf8)
        }
        guard let head else { return reply("431 Request Header Fields Too Large", "request head over \(requestHeadLimit) bytes\n") }
        guard head.holdsHeadEnd else { return reply("400 Bad Request", "no complete request head within \(requestTimeout) s\n") }
        let line = String(decoding: head.prefix { $0 != UInt8(ascii: "\r") && $0 != UInt8(ascii: "\n") }, as: UTF8.self)
        let parts = line.split(separator: " ", omittingEmptySubsequences: true)
        guard parts.count == 3, parts[2].hasPrefix("HTTP/") else { return reply("400 Bad Request", "not an HTTP request line: \(line.debugDescription)\n") }
        guard parts[0] == "GET" || parts[0] == "HEAD" else {
            return reply("405 Method Not Allowed", "only GET and HEAD\n", extra: "Allow: GET, HEAD\r\n")
        }
        let target = parts[1].split(separator: "?", maxSplits: 1, omittingEmptySubsequences: false)[0]
        guard target == "/metrics" || target == "/" else { return reply("404 Not Found", "the metrics are at /metrics\n") }
        let body = Array(metrics().utf8)
        let status = "HTTP/1.0 200 OK\r\nContent-Type: text/plain; version=0.0.4\r\nContent-Length: \(body.count)\r\nConnection: close\r\n\r\n"
        return Array(status.utf8) + (parts[0] == "HEAD" ? [] : body)
    }

    public func stop() {
        thread.stop(wake: { listener?.shutdownBoth() })
        listener?.removeBoundFile()
    }
}

private extension [UInt8] {
    /// Whether this holds the blank line that ends an HTTP request head (CRLF CRLF, or LF LF as lenient servers take).
    var holdsHeadEnd: Bool {
        indices.contains { self[$0...].starts(with: [13, 10, 13, 10]) || self[$0...].starts(with: [10, 10]) }
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
