import MTLSegEssentials
import MTLSegTestSupport
import XCTest
@testable import MTLSegWire

final class MessageCodecTests: XCTestCase {
    private func roundTrip(_ message: Message, file: StaticString = #filePath, line: UInt = #line) throws {
        var decoder = MessageDecoder(limit: 1 << 24)
        let bytes = MessageEncoder.encode(message)
        // Fed one byte at a time, the message appears exactly when its last byte arrives.
        for (i, byte) in bytes.enumerated() {
            decoder.append([byte])
            let decoded = try decoder.next()
            if i < bytes.count - 1 {
                XCTAssertNil(decoded, file: file, line: line)
            } else {
                XCTAssertEqual(decoded, message, file: file, line: line)
            }
        }
        XCTAssertEqual(decoder.pendingCount, 0, file: file, line: line)
    }

    func testEveryMessageRoundTrips() throws {
        let stream = StreamDescription(model: .init(name: "demo", variant: "b0", precision: "int8", sha256: "ab12"),
                                       maskWidth: 64, maskHeight: 48,
                                       tasks: [.init(index: 0, name: "plants", classes: ["soil", "plant"], colors: [[0, 0, 0], [0, 200, 0]])],
                                       encoding: .rle, latencies: ["wait", "inference"])
        try roundTrip(.hello(Hello(encoding: .rle, tasks: ["rows"], name: "logger")))
        try roundTrip(.stream(stream))
        try roundTrip(.streamChanged(stream))
        try roundTrip(.error(WireError(code: WireError.badMessage, message: "unknown message type 0x09")))
        try roundTrip(.statsRequest)
        try roundTrip(.stats(Array(#"{"fps":12.5}"#.utf8)))
        try roundTrip(.frame(FrameMessage(sequence: 1 << 40, captureMonotonicNanoseconds: 123_456_789, captureRealtimeNanoseconds: 1_700_000_000_000_000_000,
                                          droppedForClient: 3, latenciesMicroseconds: [10, 20_000],
                                          masks: [EncodedMask(taskIndex: 0, encoding: .raw, data: [0, 1, 1, 0]),
                                                  EncodedMask(taskIndex: 2, encoding: .rle, data: RunLength.encode([5, 5, 5, 1]))])))
    }

    func testFrameLayoutIsTheDocumentedOne() {
        let frame = FrameMessage(sequence: 7, captureMonotonicNanoseconds: 8, captureRealtimeNanoseconds: 9, droppedForClient: 2,
                                 latenciesMicroseconds: [300], masks: [EncodedMask(taskIndex: 1, encoding: .raw, data: [4, 5])])
        let bytes = MessageEncoder.encode(.frame(frame))
        // length, type, sequence, monotonic, realtime, dropped, 1 latency, 1 mask: task, encoding, length, data
        let expected: [UInt8] = [43, 0, 0, 0, 0x03,
                                 7, 0, 0, 0, 0, 0, 0, 0, 8, 0, 0, 0, 0, 0, 0, 0, 9, 0, 0, 0, 0, 0, 0, 0,
                                 2, 0, 0, 0,
                                 1, 44, 1, 0, 0,
                                 1, 1, 0, 2, 0, 0, 0, 4, 5]
        XCTAssertEqual(bytes, expected)
    }

    func testRunLengthCoding() {
        let mask: [UInt8] = Array(repeating: 0, count: 70_000) + [1, 1, 2] + Array(repeating: 3, count: 5)
        let encoded = RunLength.encode(mask)
        XCTAssertEqual(encoded.count, 3 * 5, "a 70000-pixel run splits at 65535")
        XCTAssertEqual(RunLength.decode(encoded, count: mask.count), mask)
        XCTAssertNil(RunLength.decode(encoded, count: mask.count - 1), "runs covering more pixels than the mask")
        XCTAssertNil(RunLength.decode(encoded, count: mask.count + 1), "runs covering fewer pixels")
        XCTAssertNil(RunLength.decode([1, 0, 0], count: 0), "a zero-length run")
        XCTAssertNil(RunLength.decode([1, 2], count: 2), "a partial run")
    }

    func testGarbageIsRejectedWithAReason() {
        func decodeError(_ bytes: [UInt8], limit: Int = 1024) -> DecodeError? {
            var decoder = MessageDecoder(limit: limit)
            decoder.append(bytes)
            do {
                _ = try decoder.next()
                return nil
            } catch {
                return error as? DecodeError
            }
        }
        XCTAssertEqual(decodeError([0, 0, 0, 0]), .empty)
        XCTAssertEqual(decodeError([0xFF, 0xFF, 0xFF, 0x7F, 1]), .tooLarge(length: 0x7FFF_FFFF, limit: 1024))
        XCTAssertEqual(decodeError([1, 0, 0, 0, 0x42]), .unknownType(0x42))
        // HTTP where a length should be: a client at the metrics socket, or curl at the mask socket, is told so (not of a
        // message over a gigabyte).
        XCTAssertEqual(decodeError(Array("HTTP/1.1 200 OK\r\n".utf8)), .http("HTTP"))
        XCTAssertTrue(decodeError(Array("HTTP/1.1 200 OK\r\n".utf8))?.description.contains("[metrics] socket") == true)
        XCTAssertEqual(decodeError(Array("GET / HTTP/1.1\r\n".utf8)), .http("GET "))
        if case .malformed(let type, _)? = decodeError([3, 0, 0, 0, 0x01, 0x7B, 0x7D]) { XCTAssertEqual(type, "HELLO") }  // {} lacks "protocol"
        else { XCTFail("an empty HELLO object is malformed") }
        if case .malformed(let type, _)? = decodeError([4, 0, 0, 0, 0x03, 1, 2, 3]) { XCTAssertEqual(type, "FRAME") }
        else { XCTFail("a truncated FRAME is malformed") }
        // A mask that claims more bytes than the message holds.
        var frame = MessageEncoder.encode(.frame(FrameMessage(sequence: 1, captureMonotonicNanoseconds: 0, captureRealtimeNanoseconds: 0,
                                                               droppedForClient: 0, latenciesMicroseconds: [],
                                                               masks: [EncodedMask(taskIndex: 0, encoding: .raw, data: [1])])))
        frame[frame.count - 5] = 200
        if case .malformed? = decodeError(frame) {} else { XCTFail("a lying mask length is malformed") }
    }

    func testAHelloWithABadFieldIsRejectedNamingTheField() {
        func reason(_ json: String) -> String? {
            let payload = Array(json.utf8)
            var decoder = MessageDecoder(limit: 1024)
            decoder.append(withUnsafeBytes(of: UInt32(payload.count + 1).littleEndian, Array.init) + [0x01] + payload)
            do {
                _ = try decoder.next()
                return nil
            } catch let DecodeError.malformed(type, reason) {
                XCTAssertEqual(type, "HELLO")
                return reason
            } catch {
                return "\(error)"
            }
        }
        XCTAssertEqual(reason(#"{"protocol": 1, "encoding": "png"}"#), #"'encoding' must be "raw" or "rle""#)
        XCTAssertEqual(reason(#"{"protocol": 1, "encoding": 1}"#), "'encoding' must be a string")
        XCTAssertEqual(reason(#"{"protocol": "1"}"#), "'protocol' must be an integer")
        XCTAssertEqual(reason(#"{"encoding": "raw"}"#), "'protocol' is missing")
        XCTAssertEqual(reason(#"{"protocol": 1, "tasks": "rows"}"#), "'tasks' must be a list")
        XCTAssertEqual(reason(#"{"protocol": 1, "tasks": ["rows", 2]}"#), "'tasks.1' must be a string")
        XCTAssertEqual(reason(#"{"protocol": 1, "name": ["x"]}"#), "'name' must be a string")
        XCTAssertEqual(reason(#"[1]"#), "the payload must be an object")
        XCTAssertEqual(reason(#"{"protocol": 1e100}"#), "'protocol' must be an integer its field can hold, not 1e+100")
        XCTAssertEqual(reason(#"{"protocol": 1.5}"#), "'protocol' must be an integer its field can hold, not 1.5")
        XCTAssertEqual(reason(#"{"future": [0.5, 0.25], "protocol": 2.5}"#), "'protocol' must be an integer its field can hold, not 2.5",
                       "fractions under a key the decoder ignores do not hide the field")
        XCTAssertNil(reason(#"{"protocol": 1, "tasks": null, "future": {"a": 1}}"#), "null tasks and unknown keys are fine")
        let expectation = MaskSize.expectation
        XCTAssertEqual(reason(#"{"protocol": 1, "mask_size": "camera"}"#), "'mask_size' must be \(expectation), not \"camera\"")
        XCTAssertEqual(reason(#"{"protocol": 1, "mask_size": "0x480"}"#), "'mask_size' must be \(expectation), not \"0x480\"")
        XCTAssertEqual(reason(#"{"protocol": 1, "mask_size": "4000x3000"}"#), "'mask_size' must be \(expectation), not \"4000x3000\"")
        XCTAssertEqual(reason(#"{"protocol": 1, "mask_size": [640, 480]}"#), "'mask_size' must be a string")
        XCTAssertNil(reason(#"{"protocol": 1, "mask_size": null}"#))
    }

    /// The daemon's way of writing FRAME (straight into its send buffer) makes the same bytes as encoding a FrameMessage.
    func testAppendFrameMakesTheEncodedBytes() throws {
        let masks: [[UInt8]] = [Array(repeating: 0, count: 70_000) + [1, 1, 2], [3, 3, 3, 4, 4] + Array(repeating: 0, count: 69_998)]
        let planes = masks.map { mask -> UnsafeMutableBufferPointer<UInt8> in
            let plane = UnsafeMutableBufferPointer<UInt8>.allocate(capacity: mask.count)
            _ = plane.initialize(from: mask)
            return plane
        }
        defer { planes.forEach { $0.deallocate() } }
        for encoding in [MaskEncoding.raw, .rle] {
            let message = FrameMessage(sequence: 7, captureMonotonicNanoseconds: 1 << 40, captureRealtimeNanoseconds: 99, droppedForClient: 3,
                                       latenciesMicroseconds: [1, 2, 3, 4],
                                       masks: [EncodedMask(taskIndex: 2, encoding: encoding, data: encoding == .raw ? masks[1] : RunLength.encode(masks[1])),
                                               EncodedMask(taskIndex: 0, encoding: encoding, data: encoding == .raw ? masks[0] : RunLength.encode(masks[0]))])
            var out: [UInt8] = [9, 9]  // bytes already there stay
            MessageEncoder.appendFrame(sequence: 7, captureMonotonicNanoseconds: 1 << 40, captureRealtimeNanoseconds: 99, dropped: 3,
                                       latenciesMicroseconds: [1, 2, 3, 4], maskCount: 2, encoding: encoding, to: &out) { i in
                let task = i == 0 ? 2 : 0
                return (UInt8(task), UnsafeBufferPointer(planes[task == 2 ? 1 : 0]))
            }
            XCTAssertEqual(out, [9, 9] + MessageEncoder.encode(.frame(message)), "\(encoding)")
            if encoding == .raw {
                // What the daemon sizes a client's send buffer by.
                XCTAssertEqual(MessageEncoder.frameSize(latencies: 4, masks: 2, maskBytes: masks[0].count), out.count - 2)
            }
        }
    }

    /// `mask_size` values, and a HELLO without it is byte for byte the HELLO of before the option.
    func testMaskSizes() throws {
        XCTAssertEqual(MaskSize("model"), .model)
        XCTAssertEqual(MaskSize("source"), .source)
        XCTAssertEqual(MaskSize("1280x720"), .pixels(width: 1280, height: 720))
        XCTAssertEqual(MaskSize("8192x1"), .pixels(width: 8192, height: 1))
        for bad in ["", "x", "640x", "x480", "640X480", "640x480x1", "+640x480", "640 x480", "8193x1", "3841x2160", "00000000001x1", "Model"] {
            XCTAssertNil(MaskSize(bad), bad)
        }
        XCTAssertEqual(MaskSize.pixels(width: 640, height: 480).description, "640x480")
        XCTAssertFalse(String(decoding: MessageEncoder.encode(.hello(Hello(name: "a"))), as: UTF8.self).contains("mask_size"))
        try roundTrip(.hello(Hello(encoding: .rle, tasks: ["rows"], name: "x", maskSize: .pixels(width: 640, height: 480))))
        try roundTrip(.hello(Hello(maskSize: .source)))
        var description = StreamDescription(model: .init(name: "m", variant: "b0", precision: "int8", sha256: "00"), maskWidth: 640, maskHeight: 480,
                                            tasks: [], encoding: .raw, latencies: [])
        XCTAssertFalse(String(decoding: MessageEncoder.encode(.stream(description)), as: UTF8.self).contains("mask_size"))
        description.maskSize = .source
        XCTAssertTrue(String(decoding: MessageEncoder.encode(.stream(description)), as: UTF8.self).contains(#""mask_size":"source""#))
        try roundTrip(.stream(description))
    }

    /// Whatever the bytes, the decoder returns a message, rejects them with a reason, or waits for
    /// more only while the message is incomplete; and a message it returns is one the encoder writes
    /// back to the same message.
    func testRandomBytesAreDecodedRejectedOrAwaitedNeverMisread() {
        let seed = testSeed("testRandomBytesAreDecodedRejectedOrAwaitedNeverMisread", fallback: 0x5EED_0001)
        var generator = SplitMix64(seed: seed)
        // Random bytes rarely make a whole message (a STATS, type 7, now and then): every fourth round starts from a
        // real one, a byte of it changed half the time, random bytes after it, so that the round trip is exercised.
        let real = ([
            .hello(Hello(encoding: .rle, tasks: ["rows"], name: "fuzz")),
            .error(WireError(code: WireError.badMessage, message: "x")),
            .statsRequest,
            .stats(Array(#"{"fps":1}"#.utf8)),
            .frame(FrameMessage(sequence: 3, captureMonotonicNanoseconds: 4, captureRealtimeNanoseconds: 5, droppedForClient: 1,
                                latenciesMicroseconds: [6], masks: [EncodedMask(taskIndex: 0, encoding: .raw, data: [0, 1, 2, 3])])),
        ] as [Message]).map { MessageEncoder.encode($0) }
        var decoded = 0, rejected = 0, awaited = 0
        for round in 0 ..< 2000 {
            let count = Int.random(in: 0 ... 64, using: &generator)
            var bytes = (0 ..< count).map { _ in UInt8.random(in: 0 ... 255, using: &generator) }
            if round % 4 == 0 {
                var message = real[Int.random(in: 0 ..< real.count, using: &generator)]
                if Bool.random(using: &generator) { message[Int.random(in: 0 ..< message.count, using: &generator)] = UInt8.random(in: 0 ... 255, using: &generator) }
                bytes = message + bytes.prefix(16)
            } else if count >= 4 && Bool.random(using: &generator) {  // plausible small lengths reach the payload parsers
                bytes[0] = UInt8(count - 4); bytes[1] = 0; bytes[2] = 0; bytes[3] = 0
            }
            let context = "seed \(seed), round \(round): \(bytes)"
            var decoder = MessageDecoder(limit: 4096)
            decoder.append(bytes)
            while true {
                let pending = decoder.pendingCount
                do {
                    guard let message = try decoder.next() else {
                        // Waiting is right only when the header or the message it announces is not all here.
                        let head = Array(bytes.suffix(pending).prefix(4))
                        let length = head.count < 4 ? nil : head.enumerated().reduce(0) { $0 | Int($1.element) << (8 * $1.offset) }
                        XCTAssertTrue(length.map { pending < 4 + $0 } ?? true, "waited on a whole message: \(context)")
                        awaited += 1
                        break
                    }
                    XCTAssertLessThan(decoder.pendingCount, pending - 4, "a message consumed nothing: \(context)")
                    var again = MessageDecoder(limit: 1 << 20)
                    again.append(MessageEncoder.encode(message))
                    XCTAssertEqual(try again.next(), message, "the encoder writes back a different message: \(context)")
                    decoded += 1
                } catch {
                    // With a reason: what was wrong, in terms of the message (its type, the limit, the byte).
                    guard let error = error as? DecodeError else {
                        XCTFail("not a DecodeError: \(error): \(context)")
                        break
                    }
                    let text = error.description
                    switch error {
                    case let .tooLarge(length, limit): XCTAssertTrue(text.contains("\(length)") && text.contains("\(limit)"), "\(text): \(context)")
                    case .empty: XCTAssertTrue(text.contains("no type byte"), "\(text): \(context)")
                    case let .unknownType(type): XCTAssertTrue(text.contains(String(cFormat: "0x%02x", type)), "\(text): \(context)")
                    case let .malformed(type, reason):
                        XCTAssertTrue(["HELLO", "STREAM", "STREAM_CHANGED", "ERROR", "STATS_REQUEST", "FRAME"].contains(type), "\(text): \(context)")
                        XCTAssertFalse(reason.isEmpty, "\(text): \(context)")
                        XCTAssertTrue(text.contains(type) && text.contains(reason), "\(text): \(context)")
                    case .http: XCTAssertTrue(text.contains("HTTP"), "\(text): \(context)")
                    }
                    rejected += 1
                    break
                }
            }
        }
        print("decoded \(decoded), rejected \(rejected), awaited \(awaited)")
        XCTAssertGreaterThan(decoded, 0, "the round trip was never exercised")
        XCTAssertGreaterThan(rejected, 0)
        XCTAssertGreaterThan(awaited, 0)
    }
}
