import Foundation
import MTLSegEssentials
import XCTest

/// The stand-ins for full-Foundation APIs give what those APIs gave (the full Foundation is
/// linked into this test only, to compare against).
final class EssentialsTests: XCTestCase {
    func testCFormatWritesWhatStringFormatWrote() {
        // Every kind of conversion the sources use, at awkward values (rounding, negatives, wide numbers).
        let cases: [(String, [Any], [CVarArg])] = [
            ("%.1f fps, %d client%@, source %@", [14.95, 3, "s", "streaming"], [14.95, 3, "s" as NSString, "streaming" as NSString]),
            ("%.2f%%, %.0f%%", [99.995, 0.5], [99.995, 0.5]),
            ("p50 %6.2f  p90 %6.2f", [3.14159, -0.004], [3.14159, -0.004]),
            ("%@ %.4g", ["x", 1.23456e-7], ["x" as NSString, 1.23456e-7]),
            ("#%llu lost %u", [UInt64(18_000_000_000), UInt32(7)], [UInt64(18_000_000_000), UInt32(7)]),
            ("%02x|%04x|%06d", [UInt8(10), UInt32(0x1f), 42], [UInt8(10), UInt32(0x1f), 42]),
            ("%d frames (%.3f×)", [Int(Int32.max), 2.0], [Int(Int32.max), 2.0]),
            ("unknown message type 0x%02x", [UInt8(0xfe)], [UInt8(0xfe)]),
        ]
        for (format, ours, foundations) in cases {
            XCTAssertEqual(String(cFormat: format, ours), String(format: format, arguments: foundations), format)
        }
    }

    /// Where Foundation on Linux went wrong, printf's meaning: the width of `%-11@` pads (Foundation
    /// ignored it, so `mtlseg status` columns did not line up), and `%d` prints a whole Int (Foundation
    /// printed its low 32 bits).
    func testCFormatPadsStringsAndKeepsWideIntegers() {
        XCTAssertEqual(String(cFormat: "[%-11@] [%6@]", "inference", "ab"), "[inference  ] [    ab]")
        XCTAssertEqual(String(cFormat: "%d frames", Int(Int32.max) + 5), "2147483652 frames")
    }

    func testPathsMatchNSString() {
        for path in ["/a/b.png", "a/b", "b.tar.gz", "/a/b/", "/", "", "a/.hidden", "/a", "dir/", "a//b.png", "x.y/z"] {
            let ns = path as NSString
            XCTAssertEqual(Path.lastComponent(path), ns.lastPathComponent, path)
            XCTAssertEqual(Path.deletingLastComponent(path), ns.deletingLastPathComponent, path)
            XCTAssertEqual(Path.pathExtension(path), ns.pathExtension, path)
            XCTAssertEqual(Path.deletingPathExtension(path), ns.deletingPathExtension, path)
            for component in ["c.png", "", "/d"] where !path.isEmpty {
                XCTAssertEqual(Path.appending(path, component), ns.appendingPathComponent(component), "\(path) + \(component)")
            }
        }
        XCTAssertEqual(Path.isDirectory("/"), true)
        XCTAssertEqual(Path.isDirectory("/proc/self/status"), false)
        XCTAssertNil(Path.isDirectory("/no/such/path"))
    }

    func testJSONKeepsIntegersBooleansAndNullApart() throws {
        let parsed = try XCTUnwrap(try JSONObject.parse(Data(#"{"i": 3, "f": 2.5, "e": 1e2, "b": true, "n": null, "s": "x", "a": [1, false]}"#.utf8)) as? [String: Any])
        XCTAssertEqual(parsed["i"] as? Int, 3)
        XCTAssertEqual(JSONObject.double(parsed["f"]), 2.5)
        XCTAssertEqual(JSONObject.double(parsed["e"]), 100)
        XCTAssertEqual(parsed["b"] as? Bool, true)
        XCTAssertNil(JSONObject.double(parsed["b"]), "a boolean is not a number")
        XCTAssertNil(JSONObject.int(parsed["s"]))
        XCTAssertTrue(parsed["n"] is JSONObject.Null)
        XCTAssertEqual((parsed["a"] as? [Any])?.count, 2)
        XCTAssertThrowsError(try JSONObject.parse(Data("{\"w\": ".utf8)))
    }

    func testJSONWritesSortedKeysAndReadsBack() throws {
        let object: [String: Any] = ["b": [1, 2.5, "t"], "a": ["x": UInt64(7), "y": Float(0.5), "z": JSONObject.null], "c": true]
        let text = String(decoding: try JSONObject.data(object), as: UTF8.self)
        XCTAssertEqual(text, #"{"a":{"x":7,"y":0.5,"z":null},"b":[1,2.5,"t"],"c":true}"#)
        // Foundation reads it as the same object.
        let back = try XCTUnwrap(JSONSerialization.jsonObject(with: Data(text.utf8)) as? NSDictionary)
        XCTAssertEqual(back, ["a": ["x": 7, "y": 0.5, "z": NSNull()], "b": [1, 2.5, "t"], "c": true] as NSDictionary)
        XCTAssertThrowsError(try JSONObject.data(["d": Date()]), "a type JSON has no form for")
    }

    func testErrorReasonIsTheSystemsWord() {
        XCTAssertThrowsError(try Data(contentsOf: URL(fileURLWithPath: "/no/such/file"))) {
            XCTAssertEqual(errorReason($0), "No such file or directory")
        }
    }

    func testThreadRunsItsBlockAndConditionWakesTheWaiter() {
        let condition = Condition()
        var done = false, nameSeen = ""
        let thread = SystemThread {
            let name = (try? String(contentsOfFile: "/proc/thread-self/comm", encoding: .utf8)) ?? "(unreadable)"
            condition.lock()
            nameSeen = name
            done = true
            condition.signal()
            condition.unlock()
        }
        thread.name = "a-name-longer-than-fifteen-bytes"
        // Locked before the thread starts, so that its block can set `done` only once this thread waits: the wake-up
        // below is the signal's, never a `done` already set. A wait that times out (a lost signal, a block that never
        // ran) fails the test instead of hanging it.
        condition.lock()
        thread.start()
        let deadline = Clock.monotonicDeadline(in: 10)
        var timedOut = false
        while !done && !timedOut { timedOut = !condition.wait(until: deadline) }
        let name = nameSeen
        condition.unlock()
        XCTAssertFalse(timedOut, "the block did not run, or its signal did not wake the waiter, within 10 s")
        XCTAssertEqual(name, "a-name-longer-t\n", "the thread runs under its name, cut to the 15 bytes Linux keeps")
        // A deadline already past returns at once, reporting the timeout.
        condition.lock()
        XCTAssertFalse(condition.wait(until: Clock.monotonicNanoseconds() - 1_000_000_000))
        // Deadlines are CLOCK_MONOTONIC's (a wait on the wall clock would take this one, seconds since boot, for a
        // time in 1970, and return at once): a wait 0.3 s ahead lasts that long, unsignalled.
        let started = Clock.monotonicNanoseconds()
        while condition.wait(until: Clock.monotonicDeadline(in: 0.3)) {}
        condition.unlock()
        XCTAssertGreaterThanOrEqual(Double(Clock.monotonicNanoseconds() - started) / 1e9, 0.29)
    }

    func testTrimming() {
        XCTAssertEqual(".a.b.".trimmingCharacters(where: { $0 == "." }), "a.b")
        XCTAssertEqual("...".trimmingCharacters(where: { $0 == "." }), "")
        XCTAssertEqual(" \tx y \u{00A0}".trimmingCharacters(where: \.isWhitespace), "x y")
    }
}
