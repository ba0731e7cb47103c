import ArgumentParser
#if canImport(FoundationEssentials)
import FoundationEssentials
import Glibc
#else
import Foundation
#endif
import Dispatch
import MTLSegEssentials
import MTLSegCore
import MTLSegImage
import MTLSegWire

struct SubscribeCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "subscribe",
        abstract: "Read masks from a running mtlsegd: per-frame statistics, optionally the masks as PNG.",
        discussion: """
        Each line: sequence, frames this client did not get since the previous line (the daemon's `dropped`: \
        they add up to the gaps in the sequence numbers), the pipeline's latencies, the end-to-end latency \
        (capture to receipt, CLOCK_MONOTONIC: the frame's age), and per task the share of each class. With \
        --png DIR each mask is written as DIR/<sequence>.<task>.png, an 8-bit grey image whose values are \
        the class ids. A model reload is announced (STREAM_CHANGED); a reload to a model without a task \
        asked for with --tasks ends the subscription with the daemon's unknown_task error.
        """)

    @Option(name: .long, help: "The daemon's socket.")
    var socket: String = "/run/mtlseg/mtlsegd.sock"

    @Option(name: .long, help: "Frames to read (0: until interrupted).")
    var count: Int = 0

    @Option(name: .long, help: "Write masks as PNG (class ids as grey levels) into this folder.")
    var png: String?

    @Flag(name: .long, help: "With --png: draw masks in their class colours instead of class ids as grey levels.")
    var color = false

    @Option(name: .long, help: "Mask encoding on the wire: raw or rle.")
    var encoding: String = "rle"

    @Option(name: .long, help: "Comma-separated task names to receive (default: all).")
    var tasks: String?

    @Option(name: .customLong("mask-size"), help: ArgumentHelp(
        "Size of the masks: model (the model's output grid, the default), source (the camera's size) or WxH.",
        discussion: "Masks at another size than the model's are the bilinearly resized logits' argmax, as HF's post-processing makes them."))
    var maskSize: String?

    @Flag(name: .long, help: "One JSON object per frame instead of text.")
    var json = false

    func validate() throws {
        guard count >= 0 else { throw ValidationError("--count must not be negative (0: until interrupted)") }
        guard png != nil || !color else { throw ValidationError("--color draws the masks written by --png; give --png DIR too") }
        _ = try parsedOptions()
    }

    /// The options the daemon is told in HELLO, checked (in validate, so that an error shows this command's usage).
    private func parsedOptions() throws -> (encoding: MaskEncoding, tasks: [String]?, maskSize: MaskSize?) {
        guard let wireEncoding = MaskEncoding(rawValue: encoding) else { throw ValidationError("--encoding must be raw or rle") }
        let wanted = tasks?.split(separator: ",").map { $0.trimmingCharacters(where: \.isWhitespace) }
        // An empty list would ask the daemon for no frames at all (a control connection, as `mtlseg status` makes).
        if let wanted, wanted.isEmpty || wanted.contains("") { throw ValidationError("--tasks must name at least one task, e.g. --tasks rows,plants") }
        let size = try maskSize.map { text -> MaskSize in
            guard let size = MaskSize(text) else { throw ValidationError("--mask-size must be \(MaskSize.expectation), not '\(text)'") }
            return size
        }
        return (wireEncoding, wanted, size)
    }

    func run() throws {
        let (wireEncoding, wanted, size) = try parsedOptions()
        if let png { try OutputPaths.makeFolder(png, option: "--png") }
        let client = try connectToDaemon(socket: socket, hello: Hello(encoding: wireEncoding, tasks: wanted, name: "mtlseg subscribe", maskSize: size))
        let stream = client.stream
        if !json {
            print("\(stream.model.name) (\(stream.model.precision), \(stream.model.sha256.prefix(12))): masks \(stream.maskWidth)x\(stream.maskHeight), "
                + "tasks \(stream.tasks.map(\.name).joined(separator: ", "))")
        }
        var received = 0
        var endToEnd: [Double] = [], overhead: [Double] = [], lost: UInt64 = 0
        let started = Date()
        // The rate is taken between the first frame and the last: the first may have been waiting at connect.
        var firstFrameAt: Date?, lastFrameAt: Date?
        // Ctrl-C (or SIGTERM) ends the loop, so that the summary is printed: the way a run without --count ends.
        let interrupt = InterruptFlag(signals: [SIGINT, SIGTERM])
        var lastMessage = Date()
        // Why the stream ended before --count, if it did (the daemon stopping, gone, silent): said after the summary of
        // the frames that came.
        var ending: Error?
        while (count == 0 || received < count) && !interrupt.isRaised {
            let event: WireClient.Event
            do {
                // Short waits, so that an interrupt is seen within a quarter second; silence for 10 s is still an error.
                event = try client.next(timeout: 0.25)
            } catch WireClient.Failure.timeout {
                if Date().timeIntervalSince(lastMessage) >= 10 {
                    ending = WireClient.Failure.timeout
                    break
                }
                continue
            } catch {
                ending = error
                break
            }
            lastMessage = Date()
            switch event {
            case let .streamChanged(description):
                if json {
                    let line: [String: Any] = ["stream_changed": true, "model": description.model.name, "sha256": description.model.sha256,
                                               "precision": description.model.precision,
                                               "mask_width": description.maskWidth, "mask_height": description.maskHeight]
                    print(String(decoding: try JSONObject.data(line), as: UTF8.self))
                } else {
                    print("stream changed: \(description.model.name) (\(description.model.precision), \(description.model.sha256.prefix(12))): "
                        + "masks \(description.maskWidth)x\(description.maskHeight), tasks \(description.tasks.map(\.name).joined(separator: ", "))")
                }
            case .stats:
                break
            case let .frame(frame):
                received += 1
                if firstFrameAt == nil { firstFrameAt = Date() }
                lastFrameAt = Date()
                let latency = Double(Clock.monotonicNanoseconds() &- frame.captureMonotonicNanoseconds) / 1e6
                lost += UInt64(frame.droppedForClient)
                let masks = try client.masks(of: frame)
                var fractions: [String: [Double]] = [:]
                for task in client.stream.tasks {
                    guard let mask = masks[task.name] else { continue }
                    var counts = [Int](repeating: 0, count: task.classes.count)
                    for id in mask where Int(id) < counts.count { counts[Int(id)] += 1 }
                    fractions[task.name] = counts.map { Double($0) / Double(max(mask.count, 1)) }
                    if let png {
                        let path = Path.appending(png, "\(frame.sequence).\(TaskNameRules.safeFileComponent(task.name)).png")
                        let (w, h) = (client.stream.maskWidth, client.stream.maskHeight)
                        if color {
                            try ImageFile.writePNG(colorize(mask: mask, width: w, height: h, colors: task.colors.map { $0.map { UInt8(clamping: $0) } }), path: path)
                        } else {
                            try ImageFile.writeGrayPNG(width: w, height: h, pixels: mask, path: path)
                        }
                    }
                }
                let latencies = Dictionary(uniqueKeysWithValues: zip(client.stream.latencies, frame.latenciesMicroseconds.map { Double($0) / 1000 }))
                endToEnd.append(latency)
                overhead.append(latency - (latencies["inference"] ?? 0))
                if json {
                    let line: [String: Any] = ["sequence": frame.sequence, "dropped": frame.droppedForClient, "latency_ms": latencies,
                                               "end_to_end_ms": latency, "class_fractions": fractions,
                                               "capture_realtime_ns": frame.captureRealtimeNanoseconds]
                    print(String(decoding: try JSONObject.data(line), as: UTF8.self))
                } else {
                    let timing = client.stream.latencies.map { String(cFormat: "%@ %.1f", $0, latencies[$0] ?? 0) }.joined(separator: ", ")
                    let shares = fractions.keys.sorted().map { name in
                        "\(name) " + fractions[name]!.map { String(cFormat: "%.0f%%", $0 * 100) }.joined(separator: "/")
                    }.joined(separator: "  ")
                    print(String(cFormat: "#%llu lost %u  %@ ms  end-to-end %.1f ms  %@", frame.sequence, frame.droppedForClient, timing, latency, shares))
                }
                fflush(stdout)
            }
        }
        let seconds = Date().timeIntervalSince(started)
        let fps = received < 2 ? 0 : Double(received - 1) / max(lastFrameAt!.timeIntervalSince(firstFrameAt!), 1e-9)
        let median = { (values: [Double]) -> Double in values.isEmpty ? 0 : values.sorted()[values.count / 2] }
        if json {
            let summary: [String: Any] = ["summary": true, "frames": received, "lost": lost, "seconds": seconds,
                                          "fps": fps, "end_to_end_median_ms": median(endToEnd),
                                          "pipeline_overhead_median_ms": median(overhead)]
            print(String(decoding: try JSONObject.data(summary), as: UTF8.self))
        } else {
            print(String(cFormat: "%d frames in %.1f s (%.1f fps), %llu lost; end-to-end median %.2f ms, of which outside inference %.2f ms",
                         received, seconds, fps, lost, median(endToEnd), median(overhead)))
        }
        if let ending { throw ending }
        // Interrupted before --count frames: the summary is there, but the run did not do what was asked.
        if count > 0 && received < count { throw ExitCode(130) }
    }
}

/// Raised once one of `signals` arrives (which then no longer ends the process): read between blocking calls.
final class InterruptFlag: @unchecked Sendable {
    private let lock = Lock()
    private var raised = false
    private var sources: [DispatchSourceSignal] = []

    init(signals: [Int32]) {
        for number in signals {
            signal(number, SIG_IGN)
            let source = DispatchSource.makeSignalSource(signal: number, queue: .global())
            source.setEventHandler { [unowned self] in
                lock.lock()
                raised = true
                lock.unlock()
            }
            source.resume()
            sources.append(source)
        }
    }

    var isRaised: Bool {
        lock.lock()
        defer { lock.unlock() }
        return raised
    }
}
