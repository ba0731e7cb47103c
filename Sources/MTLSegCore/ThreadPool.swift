import Foundation

/// A fixed set of worker threads that run the parts of one operation at a time.
/// `run` blocks until every part is done; the calling thread works too, so a
/// pool of one thread is just a loop. Nothing is allocated per call.
public final class ThreadPool: @unchecked Sendable {
    public let threadCount: Int
    private let shared = Shared()

    public init(threads: Int) {
        threadCount = max(1, threads)
        for index in 1 ..< threadCount {
            let shared = self.shared
            let thread = Thread { shared.workerLoop() }
            thread.name = "mtlseg-worker-\(index)"
            thread.start()
        }
    }

    deinit { shared.stop() }

    /// Calls `body(part)` for every part in 0..<parts, spread over the threads.
    public func run(parts: Int, _ body: (Int) -> Void) {
        guard parts > 0 else { return }
        if threadCount == 1 || parts == 1 {
            for part in 0 ..< parts { body(part) }
            return
        }
        withoutActuallyEscaping(body) { shared.run(parts: parts, $0) }
    }

    /// Splits `count` items into one contiguous range per thread, each starting at a multiple of `alignment`.
    public func runRanges(count: Int, alignment: Int = 1, _ body: (Range<Int>) -> Void) {
        runSlots(count: count, alignment: alignment) { range, _ in body(range) }
    }

    /// As `runRanges`, also passing the chunk's index (below `threadCount`), so each chunk can use scratch memory of its own.
    public func runSlots(count: Int, alignment: Int = 1, _ body: (Range<Int>, Int) -> Void) {
        let chunks = max(1, min(threadCount, (count + alignment - 1) / alignment))
        let perChunk = ((count + chunks - 1) / chunks + alignment - 1) / alignment * alignment
        run(parts: chunks) { part in
            let start = part * perChunk
            let end = min(count, start + perChunk)
            if start < end { body(start ..< end, part) }
        }
    }

    /// The state the workers share with the pool; it outlives the pool until the workers stop.
    private final class Shared: @unchecked Sendable {
        private let lock = NSCondition()
        private var job: ((Int) -> Void)?
        private var partCount = 0
        private var nextPart = 0
        private var unfinished = 0
        private var generation = 0
        private var stopping = false

        func run(parts: Int, _ body: @escaping (Int) -> Void) {
            lock.lock()
            job = body
            partCount = parts
            nextPart = 0
            unfinished = parts
            generation &+= 1
            lock.broadcast()
            lock.unlock()
            work()
            lock.lock()
            while unfinished > 0 { lock.wait() }
            job = nil
            lock.unlock()
        }

        func stop() {
            lock.lock()
            stopping = true
            lock.broadcast()
            lock.unlock()
        }

        /// Takes parts until none are left. The closure is only borrowed: every
        /// reference to it is dropped before its part is counted as done, since
        /// `run` hands out a non-escaping closure.
        private func work() {
            while true {
                lock.lock()
                guard nextPart < partCount else {
                    lock.unlock()
                    return
                }
                let part = nextPart
                nextPart += 1
                var body = job
                lock.unlock()
                body?(part)
                body = nil
                lock.lock()
                unfinished -= 1
                if unfinished == 0 { lock.broadcast() }
                lock.unlock()
            }
        }

        func workerLoop() {
            var seen = 0
            while true {
                lock.lock()
                while generation == seen && !stopping { lock.wait() }
                if stopping {
                    lock.unlock()
                    return
                }
                seen = generation
                lock.unlock()
                work()
            }
        }
    }
}
