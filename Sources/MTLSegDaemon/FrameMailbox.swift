/// The frames published for one client that it has not been sent yet, which of them it gets next, and
/// the account of the ones it never gets.
///
/// A frame is taken when the client has read the one before. The client kept up if it had read everything
/// before a newer frame came (`put`'s `whileClientReads` is false for every frame since the last take). One
/// that kept up this time or the time before gets every frame, even across a short stall of its own (a busy
/// machine can hold a reader back for a few frame intervals): frames captured up to `catchUpWindowNanoseconds`
/// before the newest wait for it, and it is sent the oldest. Two slow reads in a row make a slow reader: it
/// gets the newest frame; the older ones are dropped. (Counting frames instead, "at most one came since the
/// last take", took a reader slightly slower than the camera for one that keeps up: one frame and two came in
/// turn, and it was sent the oldest every time, older and older, up to the window.)
struct FrameMailbox {
    /// How far back frames wait for a client that keeps up; also the most a frame it is sent can lag the newest.
    static let catchUpWindowNanoseconds: UInt64 = 250_000_000
    /// At most this many frames wait (the window at 128 fps).
    static let capacity = 32

    private var waiting: [PublishedFrame] = []
    /// Published frames this client was never sent (not keeping up, or of a model it had been told was gone).
    private(set) var discarded: UInt64 = 0
    private var firstSequence: UInt64?
    private var lastSentSequence: UInt64?
    /// A frame was taken before: the client has read one.
    private var hasTaken = false
    /// A frame came, since the last take, while the client was still reading what it had been sent.
    private var cameWhileReading = false
    private var previousReadKeptUp = false

    init() {
        waiting.reserveCapacity(Self.capacity + 1)
    }

    var isEmpty: Bool { waiting.isEmpty }

    /// Leaves a published frame; `whileClientReads`: the client had not yet read everything it was sent.
    mutating func put(_ frame: PublishedFrame, whileClientReads: Bool) {
        if firstSequence == nil { firstSequence = frame.sequence }
        if whileClientReads { cameWhileReading = true }
        waiting.append(frame)
        let newest = frame.captureMonotonicNanoseconds
        while waiting.count > Self.capacity || waiting[0].captureMonotonicNanoseconds &+ Self.catchUpWindowNanoseconds < newest {
            waiting.removeFirst()
            discarded += 1
        }
    }

    /// A published frame the client is not to get (of a model it has been told is gone).
    mutating func discard(_ frame: PublishedFrame) {
        if firstSequence == nil { firstSequence = frame.sequence }
        discarded += 1
    }

    /// Every waiting frame is of a model the client is being told is gone.
    mutating func discardWaiting() {
        discarded += UInt64(waiting.count)
        waiting.removeAll(keepingCapacity: true)
    }

    /// The frame to send now that the client has read everything before (the oldest waiting when it is
    /// keeping up, else the newest, the rest dropped) and its FRAME `dropped`: every frame since the
    /// previous one sent (or since the first published for this client) that it does not get, so
    /// consecutive FRAMEs' `dropped` add up to the gaps in their sequence numbers, frames the source lost
    /// or the pipeline skipped included.
    mutating func take() -> (frame: PublishedFrame, dropped: UInt64)? {
        guard !waiting.isEmpty else { return nil }
        let keptUp = hasTaken && !cameWhileReading
        let catchingUp = keptUp || previousReadKeptUp
        previousReadKeptUp = keptUp
        hasTaken = true
        cameWhileReading = false
        let frame: PublishedFrame
        if catchingUp {
            frame = waiting.removeFirst()
        } else {
            frame = waiting.removeLast()
            discarded += UInt64(waiting.count)
            waiting.removeAll(keepingCapacity: true)
        }
        let expected = lastSentSequence.map { $0 &+ 1 } ?? firstSequence ?? frame.sequence
        lastSentSequence = frame.sequence
        return (frame, frame.sequence >= expected ? frame.sequence - expected : 0)
    }
}
