import CKernels
#if canImport(FoundationEssentials)
import FoundationEssentials
import Glibc
#else
import Foundation
#endif
import Dispatch
import MTLSegEssentials
import Synchronization

/// A fixed set of worker threads that run the parts of one operation at a time.
/// `run` blocks until every part is done; the calling thread works too, so a
/// pool of one thread is just a loop. Nothing is allocated per call.
///
/// A forward pass is a hundred or so short operations. Waking a sleeping thread
/// through the kernel costs tens of microseconds each time (more in a VM), which
/// at two threads added a fifth to a 512² frame; so between operations the
/// workers, and the caller waiting for them, spin for a while before they sleep.
public final class ThreadPool: @unchecked Sendable {
    public let threadCount: Int
    private let shared: Shared

    /// `spinMicroseconds`: how long an idle thread polls for work (or the caller for the
    /// last part) before it sleeps; by default 200 µs, or none when there are more threads
    /// than CPUs (a spinning thread would then take turns from a working one).
    public init(threads: Int, spinMicroseconds: Int? = nil) {
        threadCount = max(1, threads)
        let spin = spinMicroseconds ?? (threadCount <= ProcessInfo.processInfo.activeProcessorCount ? 200 : 0)
        shared = Shared(threads: threadCount, spinNanoseconds: UInt64(max(0, spin)) * 1000)
        for index in 1 ..< threadCount {
            let shared = self.shared
            let thread = SystemThread { shared.workerLoop(thread: index) }
            thread.name = "worker-\(index)"
            thread.start()
        }
    }

    deinit { shared.stop() }

    /// Calls `body(part, thread)` for every part in 0..<parts, spread over the threads; `thread`
    /// (below `threadCount`) is the one running the part, which runs its parts one after another.
    public func run(parts: Int, _ body: (_ part: Int, _ thread: Int) -> Void) {
        guard parts > 0 else { return }
        if threadCount == 1 || parts == 1 {
            for part in 0 ..< parts { body(part, 0) }
            return
        }
        withoutActuallyEscaping(body) { shared.run(parts: parts, $0) }
    }

    /// How many chunks each thread's share is cut into: a thread runs its own chunks first,
    /// then takes what is left of the others', so one that is held up (by the daemon's other
    /// threads, by the memory bus) hands work to the others instead of keeping them waiting at
    /// the end of the operation.
    private static let chunksPerThread = 4

    /// Splits `count` items into contiguous ranges, each starting at a multiple of `alignment`.
    public func runRanges(count: Int, alignment: Int = 1, _ body: (Range<Int>) -> Void) {
        runSlots(count: count, alignment: alignment) { range, _ in body(range) }
    }

    /// As `runRanges`, also passing the index of the thread running the range (below
    /// `threadCount`), so each can use scratch memory of its own.
    ///
    /// The chunks differ by one aligned unit at most: cut by rounding up instead, 57 items made seven chunks
    /// of 8 and one of 1, so one thread's share was 32 items and the other's 25.
    public func runSlots(count: Int, alignment: Int = 1, _ body: (Range<Int>, Int) -> Void) {
        guard count > 0 else { return }
        let units = (count + alignment - 1) / alignment
        let most = threadCount == 1 ? 1 : threadCount * Self.chunksPerThread
        let chunks = min(most, units)
        run(parts: chunks) { part, thread in
            let start = part * units / chunks * alignment
            let end = min(count, (part + 1) * units / chunks * alignment)
            body(start ..< end, thread)
        }
    }

    /// The state the workers share with the pool; it outlives the pool until the workers stop.
    ///
    /// The parts of an operation are cut into one contiguous share per thread, in thread
    /// order, so that consecutive operations over the same rows (a GEMM writing them, the
    /// LayerNorm reading them) give each thread the same rows, still in its own cache: with
    /// parts handed out first come, first served, the rows moved between cores' caches at
    /// every operation, and at two threads that cost a fifth of a frame. Each share is an
    /// atomic word: the generation of its operation (upper bits), its end and its next
    /// unclaimed part. Its thread claims parts from it by compare-and-swap, and so do the
    /// others once their own share is done. A thread still looking for work from an
    /// earlier operation sees another generation and claims nothing of a later one, and
    /// `job` is only read while a claimed part of its own operation is unfinished (so `run`
    /// has not returned and not replaced it).
    private final class Shared: @unchecked Sendable {
        private static let partBits = 16
        private static let partMask = (1 << partBits) - 1

        /// One thread's share of the current operation.
        private final class Share: @unchecked Sendable {
            let word = Atomic<Int>(0)
        }

        private let spinNanoseconds: UInt64
        /// The generation of the current operation.
        private let state = Atomic<Int>(0)
        private let shares: [Share]
        private let unfinished = Atomic<Int>(0)
        private let stopping = Atomic<Bool>(false)
        private var job: ((Int, Int) -> Void)?
        /// Sleepers: workers waiting for a new generation, the caller waiting for the last part.
        private let lock = Condition()
        private var sleepingWorkers = 0
        private var callerSleeps = false

        init(threads: Int, spinNanoseconds: UInt64) {
            self.spinNanoseconds = spinNanoseconds
            shares = (0 ..< threads).map { _ in Share() }
        }

        private static func generation(_ word: Int) -> Int { word >> (2 * partBits) }

        func run(parts: Int, _ body: @escaping (Int, Int) -> Void) {
            precondition(parts <= Self.partMask, "too many parts")
            job = body
            unfinished.store(parts, ordering: .relaxed)
            // 31 bits of generation fit above a share's end and next part in a 64-bit word.
            let generation = (state.load(ordering: .relaxed) &+ 1) & Int(Int32.max)
            let threads = shares.count
            for (t, share) in shares.enumerated() {
                let start = t * parts / threads, end = (t + 1) * parts / threads
                share.word.store(generation << (2 * Self.partBits) | end << Self.partBits | start, ordering: .relaxed)
            }
            state.store(generation, ordering: .releasing)  // publishes job, unfinished and the shares
            lock.lock()
            if sleepingWorkers > 0 { lock.broadcast() }
            lock.unlock()
            work(thread: 0, generation: generation)
            if unfinished.load(ordering: .acquiring) > 0 && !spin(until: { self.unfinished.load(ordering: .acquiring) == 0 }) {
                lock.lock()
                callerSleeps = true
                while unfinished.load(ordering: .acquiring) > 0 { lock.wait() }
                callerSleeps = false
                lock.unlock()
            }
            job = nil
        }

        func stop() {
            stopping.store(true, ordering: .releasing)
            lock.lock()
            lock.broadcast()
            lock.unlock()
        }

        /// Polls `done` for up to the spin time; true once it holds.
        private func spin(until done: () -> Bool) -> Bool {
            guard spinNanoseconds > 0 else { return done() }
            let deadline = DispatchTime.now().uptimeNanoseconds + spinNanoseconds
            while true {
                for _ in 0 ..< 64 {
                    if done() { return true }
                    ck_cpu_relax()
                }
                if DispatchTime.now().uptimeNanoseconds > deadline { return done() }
            }
        }

        /// Claims and runs parts of operation `generation`: its own share first, then the others' in turn.
        private func work(thread: Int, generation: Int) {
            for offset in 0 ..< shares.count {
                let share = shares[(thread + offset) % shares.count]
                var current = share.word.load(ordering: .acquiring)
                while true {
                    let end = (current >> Self.partBits) & Self.partMask, part = current & Self.partMask
                    guard Self.generation(current) == generation else { return }  // that operation is over
                    guard part < end else { break }
                    let (claimed, seen) = share.word.compareExchange(expected: current, desired: current + 1, ordering: .acquiring)
                    guard claimed else {
                        current = seen
                        continue
                    }
                    do {  // the closure is only borrowed: drop it before the part counts as done
                        let body = job!
                        body(part, thread)
                    }
                    if unfinished.subtract(1, ordering: .acquiringAndReleasing).newValue == 0 {
                        lock.lock()
                        if callerSleeps { lock.broadcast() }
                        lock.unlock()
                    }
                    current = share.word.load(ordering: .acquiring)
                }
            }
        }

        /// A new operation has started since generation `seen`, or the pool is stopping.
        private func hasNews(since seen: Int) -> Bool {
            state.load(ordering: .acquiring) != seen || stopping.load(ordering: .relaxed)
        }

        func workerLoop(thread: Int) {
            var seen = 0
            while true {
                if !spin(until: { hasNews(since: seen) }) {
                    lock.lock()
                    sleepingWorkers += 1
                    while !hasNews(since: seen) { lock.wait() }
                    sleepingWorkers -= 1
                    lock.unlock()
                }
                if stopping.load(ordering: .acquiring) { return }
                seen = state.load(ordering: .acquiring)
                work(thread: thread, generation: seen)
            }
        }
    }
}
