import XCTest
@testable import MTLSegDaemon

/// Which frame a client is sent next, and the `dropped` it is told, for readers of every pace.
final class FrameMailboxTests: XCTestCase {
    /// Frame `sequence`, captured at 15 fps from 0.
    private func frame(_ sequence: UInt64) -> PublishedFrame {
        PublishedFrame(sequence: sequence, captureMonotonicNanoseconds: sequence * 66_666_667, captureRealtimeNanoseconds: 0,
                       latenciesMicroseconds: [], masks: [])
    }

    func testASlowReaderGetsTheNewestFrameAndIsToldOfTheRest() throws {
        var mailbox = FrameMailbox()
        var sent: [(UInt64, UInt64)] = []
        var next: UInt64 = 0
        // It reads one frame for every 7 published (they come while it reads the one before).
        for _ in 0 ..< 10 {
            for _ in 0 ..< 7 { mailbox.put(frame(next), whileClientReads: true); next += 1 }
            let (taken, dropped) = try XCTUnwrap(mailbox.take())
            sent.append((taken.sequence, dropped))
        }
        XCTAssertEqual(sent.map(\.0), (0 ..< 10).map { UInt64($0 * 7 + 6) }, "always the newest")
        XCTAssertEqual(sent.map(\.1), [6] + Array(repeating: 6, count: 9), "the frames before it since the last one")
        XCTAssertEqual(mailbox.discarded, 70 - 10)
    }

    func testAReaderThatKeepsUpLosesNothingAcrossAShortStall() throws {
        var mailbox = FrameMailbox()
        var sequences: [UInt64] = []
        var next: UInt64 = 0
        func publish(_ count: Int, whileReading: Bool = false) {
            for _ in 0 ..< count { mailbox.put(frame(next), whileClientReads: whileReading); next += 1 }
        }
        func read() throws {
            let (taken, dropped) = try XCTUnwrap(mailbox.take())
            XCTAssertEqual(dropped, 0, "frame \(taken.sequence)")
            sequences.append(taken.sequence)
        }
        for _ in 0 ..< 5 { publish(1); try read() }
        publish(3, whileReading: true)  // a stall of three frame intervals (0.2 s, inside the 0.25 s window)
        try read()
        while !mailbox.isEmpty { try read() }  // it catches up, reading as fast as it can
        for _ in 0 ..< 5 { publish(1); try read() }
        XCTAssertEqual(sequences, Array(0 ..< next))
        XCTAssertEqual(mailbox.discarded, 0)
    }

    /// A reader a little slower than the camera (15 fps, a frame read every 0.1 s): one frame and then two come while it
    /// reads, in turn. It is a slow reader, sent the newest frame, so what it reads is never older than its own absence
    /// plus a frame interval; it used to count as keeping up and was sent the oldest, older every time (up to the window).
    func testAReaderSlightlySlowerThanTheCameraGetsTheNewestFrame() throws {
        var mailbox = FrameMailbox()
        mailbox.put(frame(0), whileClientReads: false)
        _ = try XCTUnwrap(mailbox.take())
        var next: UInt64 = 1
        var lags: [UInt64] = []
        for round in 0 ..< 20 {
            for _ in 0 ..< (round % 2 == 0 ? 1 : 2) { mailbox.put(frame(next), whileClientReads: true); next += 1 }
            let (taken, _) = try XCTUnwrap(mailbox.take())
            lags.append(next - 1 - taken.sequence)
        }
        XCTAssertLessThanOrEqual(lags.dropFirst(2).max() ?? 99, 0, "behind the newest by \(lags) frames")
    }

    func testAStallLongerThanTheWindowLosesOnlyWhatFellOutOfIt() throws {
        var mailbox = FrameMailbox()
        mailbox.put(frame(0), whileClientReads: false)
        _ = mailbox.take()
        mailbox.put(frame(1), whileClientReads: false)
        _ = mailbox.take()  // kept up so far
        for sequence: UInt64 in 2 ... 11 { mailbox.put(frame(sequence), whileClientReads: true) }  // 0.67 s without reading
        let (first, dropped) = try XCTUnwrap(mailbox.take())
        // Frames captured more than 0.25 s before the newest (#11) are gone: #8 is the oldest left.
        XCTAssertEqual(first.sequence, 8)
        XCTAssertEqual(dropped, 6, "#2 … #7")
        XCTAssertEqual(mailbox.discarded, 6)
    }

    func testTheFirstFrameCountsWhatCameBeforeItAndAReloadsDiscardedFramesCount() throws {
        var mailbox = FrameMailbox()
        mailbox.put(frame(40), whileClientReads: false)
        mailbox.put(frame(42), whileClientReads: false)  // #41 the pipeline skipped
        mailbox.put(frame(43), whileClientReads: false)
        let (first, dropped) = try XCTUnwrap(mailbox.take())
        XCTAssertEqual([first.sequence, dropped], [43, 3], "a new client's first frame: #40 … #42 published for it before")
        mailbox.put(frame(44), whileClientReads: true)
        mailbox.discardWaiting()  // a reload: #44 was of the old model
        mailbox.discard(frame(45))  // so was #45, published after the client was told
        mailbox.put(frame(46), whileClientReads: false)
        let (after, droppedAcross) = try XCTUnwrap(mailbox.take())
        XCTAssertEqual([after.sequence, droppedAcross], [46, 2])
        XCTAssertEqual(mailbox.discarded, 2 + 2, "published frames never sent: #40, #42, #44, #45")
    }
}
