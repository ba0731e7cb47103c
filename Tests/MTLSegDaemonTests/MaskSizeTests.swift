import Foundation
import MTLSegCapture
import MTLSegCore
@testable import MTLSegDaemon
import MTLSegImage
import MTLSegSocket
import MTLSegWire
import XCTest

/// HELLO `mask_size`: each client gets its masks at the size it asked for, from the same daemon; a client
/// that does not ask gets what it got before the option existed.
final class MaskSizeTests: XCTestCase {
    private var directory: URL!
    private static let fixtures = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .appendingPathComponent("MTLSegCoreTests/Fixtures")

    override func setUpWithError() throws {
        directory = URL(fileURLWithPath: "/tmp").appendingPathComponent("mtlsegd-sizes-\(UUID().uuidString.prefix(8))")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
    }

    override func tearDownWithError() throws {
        try? FileManager.default.removeItem(at: directory)
    }

    /// The test source's 160×120 frames; the model (mtl2-tiny, input 102×75) makes 26×19 masks.
    private func startDaemon(maskMemoryMB: Int = 1024) throws -> Daemon {
        var config = DaemonConfig()
        config.maskMemoryMB = maskMemoryMB
        config.model = Self.fixtures.appendingPathComponent("mtl2-tiny.safetensors").path
        config.threads = 1
        config.socketPath = directory.appendingPathComponent("mtlsegd.sock").path
        config.fps = 30
        config.width = 160
        config.height = 120
        // The clients sit unread while the test computes the reference masks (seconds in a debug build under
        // qemu-user): the daemon's 2 s default would drop them; dropping is not what these tests check.
        config.clientTimeout = 60
        let daemon = try Daemon(config: config) { _ in TestFrameSource(width: 160, height: 120, fps: 30) }
        try daemon.start()
        return daemon
    }

    /// A connection that speaks the protocol byte by byte, as a client written before `mask_size` does.
    private final class OldClient {
        let socket: UnixSocket
        var received: [UInt8] = []
        var buffer = [UInt8](repeating: 0, count: 1 << 16)

        init(path: String, hello: String) throws {
            socket = try UnixSocket.connect(to: path)
            let payload = Array(hello.utf8)
            var bytes = withUnsafeBytes(of: UInt32(payload.count + 1).littleEndian, Array.init)
            bytes.append(MessageType.hello.rawValue)
            bytes += payload
            XCTAssertTrue(socket.writeAll(bytes, timeout: 2))
        }

        /// The next message's type and raw payload.
        func next() throws -> (UInt8, [UInt8]) {
            let deadline = Date().addingTimeInterval(10)
            while Date() < deadline {
                if received.count >= 5 {
                    let length = Int(received[0]) | Int(received[1]) << 8 | Int(received[2]) << 16 | Int(received[3]) << 24
                    if received.count >= 4 + length {
                        let message = (received[4], Array(received[5 ..< 4 + length]))
                        received.removeFirst(4 + length)
                        return message
                    }
                }
                guard let count = socket.read(into: &buffer, timeout: 2), count > 0 else { throw WireClient.Failure.closed }
                received += buffer[0 ..< count]
            }
            throw WireClient.Failure.timeout
        }

        static func decodeFrame(_ payload: [UInt8]) throws -> FrameMessage? {
            var decoder = MessageDecoder(limit: 1 << 24)
            decoder.append(withUnsafeBytes(of: UInt32(payload.count + 1).littleEndian, Array.init) + [MessageType.frame.rawValue] + payload)
            guard case let .frame(frame)? = try decoder.next() else { return nil }
            return frame
        }
    }

    /// Frames until each client has one of the same sequence number: [client][sequence] = masks by task name.
    private func framesOfOneSequence(_ clients: [WireClient]) throws -> (UInt64, [[String: [UInt8]]]) {
        var seen: [[UInt64: [String: [UInt8]]]] = Array(repeating: [:], count: clients.count)
        let deadline = Date().addingTimeInterval(60)
        while Date() < deadline {
            for (i, client) in clients.enumerated() {
                guard case let .frame(frame) = try client.next() else { continue }
                seen[i][frame.sequence] = try client.masks(of: frame)
                let common = Set(seen[0].keys).filter { sequence in seen.allSatisfy { $0[sequence] != nil } }
                if let sequence = common.min() { return (sequence, seen.map { $0[sequence]! }) }
            }
        }
        throw WireClient.Failure.timeout
    }

    /// The masks the daemon should send for the test source's frame `sequence`: the model's own, and at `width`×`height`
    /// the argmax of the bilinearly resized logits (MaskUpsampler, checked against PyTorch in UpsampledMaskTests).
    private func expectedMasks(sequence: UInt64, width: Int, height: Int) throws -> (model: [String: [UInt8]], sized: [String: [UInt8]]) {
        let model = try LoadedModel.load(path: Self.fixtures.appendingPathComponent("mtl2-tiny.safetensors").path, threads: 1,
                                         fallbackSize: InputSize(width: 160, height: 120))
        var pixels = [UInt8](repeating: 0, count: 160 * 120 * 3)
        for i in 0 ..< pixels.count { pixels[i] = UInt8(truncatingIfNeeded: i / 3 + Int(sequence) * 7) }
        let engine = model.engine
        let preprocessor = ModelInputPreprocessor(targetWidth: engine.plan.input.width, targetHeight: engine.plan.input.height,
                                                  mean: model.description.mean, std: model.description.std)
        let input = FloatBuffer(count: preprocessor.outputCount)
        pixels.withUnsafeBufferPointer {
            preprocessor.process(rgbPixels: $0.baseAddress!, width: 160, height: 120, rowStride: 160 * 3, into: input.pointer)
        }
        engine.writesLogits = true
        engine.run(input: input.pointer)
        var own: [String: [UInt8]] = [:], sized: [String: [UInt8]] = [:]
        for (t, task) in model.description.tasks.enumerated() {
            own[task.name] = engine.mask(task: t).classes
            sized[task.name] = SegmentationMask(logits: engine.logits[t], width: width, height: height).classes
        }
        return (own, sized)
    }

    func testEachClientGetsTheSizeItAskedForAndAnOldClientTodaysBytes() throws {
        let daemon = try startDaemon()
        defer { daemon.stop() }
        let path = daemon.config.socketPath
        let source = try WireClient(path: path, hello: Hello(encoding: .rle, name: "source", maskSize: .source))
        let model = try WireClient(path: path, hello: Hello(encoding: .raw, name: "model", maskSize: .model))
        let fixed = try WireClient(path: path, hello: Hello(encoding: .raw, tasks: ["rows"], name: "fixed", maskSize: .pixels(width: 64, height: 48)))
        XCTAssertEqual([source.stream.maskWidth, source.stream.maskHeight], [160, 120], "source: the configured capture size")
        XCTAssertEqual(source.stream.maskSize, .source)
        XCTAssertEqual([model.stream.maskWidth, model.stream.maskHeight], [26, 19], "model: the model's output grid")
        XCTAssertEqual([fixed.stream.maskWidth, fixed.stream.maskHeight], [64, 48])
        XCTAssertEqual(fixed.stream.maskSize, .pixels(width: 64, height: 48))

        // A client that predates the option: today's HELLO, today's STREAM (no mask_size), today's FRAME layout.
        let old = try OldClient(path: path, hello: #"{"protocol": 1, "encoding": "raw", "name": "old"}"#)
        let (streamType, streamPayload) = try old.next()
        XCTAssertEqual(streamType, MessageType.stream.rawValue)
        let stream = try XCTUnwrap(JSONSerialization.jsonObject(with: Data(streamPayload)) as? [String: Any])
        XCTAssertEqual(Set(stream.keys), ["protocol", "model", "mask_width", "mask_height", "tasks", "encoding", "latencies"])
        XCTAssertEqual(stream["mask_width"] as? Int, 26)
        XCTAssertEqual(stream["mask_height"] as? Int, 19)
        var oldFrame: FrameMessage?
        while oldFrame == nil {
            let (type, payload) = try old.next()
            guard type == MessageType.frame.rawValue else { continue }
            // sequence, two times, dropped, 4 latencies, 2 masks of (task, encoding, length, 26×19 bytes).
            XCTAssertEqual(payload.count, 8 + 8 + 8 + 4 + 1 + 4 * 4 + 1 + 2 * (1 + 1 + 4 + 26 * 19))
            oldFrame = try XCTUnwrap(OldClient.decodeFrame(payload))
        }
        let oldMasks = try XCTUnwrap(oldFrame).masks
        XCTAssertEqual(oldMasks.map(\.data.count), [26 * 19, 26 * 19])

        // One frame seen by the three: each at its size, and the masks are those of the model and the resized logits.
        let (sequence, masks) = try framesOfOneSequence([source, model, fixed])
        XCTAssertEqual(masks[0]["plants"]?.count, 160 * 120)
        XCTAssertEqual(masks[1]["plants"]?.count, 26 * 19)
        XCTAssertEqual(Array(masks[2].keys), ["rows"])
        XCTAssertEqual(masks[2]["rows"]?.count, 64 * 48)
        let expected = try expectedMasks(sequence: sequence, width: 160, height: 120)
        XCTAssertEqual(masks[1], expected.model, "the model-size client's masks are the engine's")
        XCTAssertEqual(masks[0], expected.sized, "the source-size client's masks are the resized logits' argmax")
        let expected64 = try expectedMasks(sequence: sequence, width: 64, height: 48)
        XCTAssertEqual(masks[2]["rows"], expected64.sized["rows"])
        // The daemon makes each wanted size once per frame; the old client and "model" need none of their own.
        XCTAssertEqual(Set(daemon.wantedMaskGrids), [MaskGrid(width: 160, height: 120), MaskGrid(width: 64, height: 48)])
    }

    func testBadMaskSizesAreRefusedNamingTheFieldAndValue() throws {
        let daemon = try startDaemon()
        defer { daemon.stop() }
        for value in [#""huge""#, #""0x10""#, #""9000x10""#, #""4000x4000""#, #""64x""#, #""-64x48""#, "64"] {
            let client = try OldClient(path: daemon.config.socketPath, hello: #"{"protocol": 1, "mask_size": \#(value)}"#)
            let (type, payload) = try client.next()
            XCTAssertEqual(type, MessageType.error.rawValue, value)
            let error = try JSONDecoder().decode(WireError.self, from: Data(payload))
            XCTAssertEqual(error.code, WireError.badMessage, value)
            XCTAssertTrue(error.message.contains("'mask_size'"), error.message)
            if value.hasPrefix("\"") { XCTAssertTrue(error.message.contains(value.dropFirst().dropLast()), error.message) }
        }
        // The daemon kept serving.
        let client = try WireClient(path: daemon.config.socketPath, hello: Hello(maskSize: .pixels(width: 3840, height: 2160)))
        XCTAssertEqual([client.stream.maskWidth, client.stream.maskHeight], [3840, 2160])
    }

    /// The bound on the masks' memory: per size the mailbox window's frames (7.5 frames in 0.25 s at 30 fps: 8) and two
    /// more, and two per client of that size; the model's own grid is not a client size.
    func testTheMaskMemoryBoundCountsWindowFramesPerSizeAndTwoPerClient() {
        let big = MaskGrid(width: 1000, height: 100), small = MaskGrid(width: 10, height: 10)
        XCTAssertEqual(MaskMemoryBudget.bound(of: [], taskCount: 2, framesPerSecond: 30), 0)
        XCTAssertEqual(MaskMemoryBudget.bound(of: [big], taskCount: 2, framesPerSecond: 30), 100_000 * 2 * (10 + 2))
        XCTAssertEqual(MaskMemoryBudget.bound(of: [big, big, small], taskCount: 3, framesPerSecond: 30),
                       100_000 * 3 * (10 + 4) + 100 * 3 * (10 + 2))
        XCTAssertEqual(MaskMemoryBudget.bound(of: [big], taskCount: 1, framesPerSecond: 1000), 100_000 * (32 + 2 + 2), "the mailbox holds 32 at most")
    }

    /// Clients' own mask sizes are admitted while their masks fit mask_memory_mb; one that would pass it gets
    /// over_budget, the others keep their frames, and a client at the model's grid is never refused for it.
    func testMaskSizesPastTheMaskMemoryBudgetAreRefused() throws {
        // 1 MiB: the mtl2-tiny's 2 tasks at 160×120 with 12 frames' room (0.46 MB) fit; 320×240 beside them (1.84 MB) does not.
        let daemon = try startDaemon(maskMemoryMB: 1)
        defer { daemon.stop() }
        let path = daemon.config.socketPath
        let source = try WireClient(path: path, hello: Hello(name: "source", maskSize: .source))
        XCTAssertEqual([source.stream.maskWidth, source.stream.maskHeight], [160, 120])
        XCTAssertThrowsError(try WireClient(path: path, hello: Hello(name: "large", maskSize: .pixels(width: 320, height: 240)))) { error in
            guard case let WireClient.Failure.refused(refusal)? = error as? WireClient.Failure else { return XCTFail("\(error)") }
            XCTAssertEqual(refusal.code, WireError.overBudget)
            XCTAssertTrue(refusal.message.contains("320x240") && refusal.message.contains("mask_memory_mb"), refusal.message)
        }
        let model = try WireClient(path: path, hello: Hello(name: "model"))
        for client in [source, model] {
            var frames = 0
            while frames < 3 { if case .frame = try client.next(timeout: 10) { frames += 1 } }
        }
        XCTAssertEqual(Set(daemon.clients.map(\.name)), ["source", "model"])
    }
}
