import MTLSegEssentials

/// One frame's masks at one size: every task's plane of class ids in one block. A block comes from its
/// size's pool and goes back to it when the last holder of the frame (the server's mailboxes, the client
/// threads writing it) lets go, so in the steady state a frame's masks reuse the memory of frames
/// already sent instead of mapping fresh pages (glibc maps blocks this large on their own).
public final class MaskPlanes: @unchecked Sendable {
    public let grid: MaskGrid
    public let taskCount: Int
    private let base: UnsafeMutablePointer<UInt8>
    private let pool: MaskPlanePool?

    /// A block from `pool` (its grid and task count), contents undefined until written.
    init(from pool: MaskPlanePool) {
        grid = pool.grid
        taskCount = pool.taskCount
        base = pool.take()
        self.pool = pool
    }

    /// A block of its own holding copies of `masks` (each grid.width × grid.height class ids).
    public init(grid: MaskGrid, masks: [[UInt8]]) {
        let pixels = grid.width * grid.height
        precondition(masks.allSatisfy { $0.count == pixels }, "masks of \(pixels) class ids for \(grid)")
        self.grid = grid
        taskCount = masks.count
        base = .allocate(capacity: max(1, masks.count * pixels))
        pool = nil
        for (t, mask) in masks.enumerated() { mask.withUnsafeBufferPointer { (base + t * pixels).update(from: $0.baseAddress!, count: pixels) } }
    }

    deinit {
        if let pool { pool.giveBack(base) } else { base.deallocate() }
    }

    /// Task `t`'s class ids, row-major (grid.width × grid.height).
    public func plane(_ t: Int) -> UnsafeMutableBufferPointer<UInt8> {
        precondition(t >= 0 && t < taskCount, "task \(t) of \(taskCount)")
        let pixels = grid.width * grid.height
        return UnsafeMutableBufferPointer(start: base + t * pixels, count: pixels)
    }

    /// Task `t`'s class ids as an array (a copy).
    public subscript(t: Int) -> [UInt8] { Array(plane(t)) }
}

/// The blocks of one mask size: handed out, taken back, kept for the next frames (up to `keep` of them).
final class MaskPlanePool: @unchecked Sendable {
    let grid: MaskGrid
    let taskCount: Int
    private let bytes: Int
    private let lock = Lock()
    private var free: [UnsafeMutablePointer<UInt8>] = []
    /// Blocks kept for reuse: the frames in flight at once (a mailbox holds up to 0.25 s of them), but no more
    /// than about 32 MB of large ones (a 3840×2160 size of two tasks keeps 4); beyond, blocks are freed.
    private let keep: Int

    init(grid: MaskGrid, taskCount: Int) {
        self.grid = grid
        self.taskCount = taskCount
        bytes = max(1, grid.width * grid.height * taskCount)
        keep = max(4, min(32, (32 << 20) / bytes))
        free.reserveCapacity(keep)
    }

    deinit {
        for block in free { block.deallocate() }
    }

    fileprivate func take() -> UnsafeMutablePointer<UInt8> {
        lock.lock()
        let block = free.popLast()
        lock.unlock()
        return block ?? .allocate(capacity: bytes)
    }

    fileprivate func giveBack(_ block: UnsafeMutablePointer<UInt8>) {
        lock.lock()
        if free.count < keep {
            free.append(block)
            lock.unlock()
        } else {
            lock.unlock()
            block.deallocate()
        }
    }
}
