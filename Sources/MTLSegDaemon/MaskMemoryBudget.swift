/// The memory the masks made at clients' own sizes (HELLO `mask_size`) may take, and the clients holding some:
/// a client is admitted at a size of its own only while a bound on all of them stays within the budget
/// ([socket] mask_memory_mb), so that clients cannot take the daemon past its unit's MemoryMax=.
struct MaskMemoryBudget {
    var bytes: Int
    /// The size each such client takes masks at, by session id.
    private var holders: [Int: MaskGrid] = [:]

    init(bytes: Int) {
        self.bytes = bytes
    }

    /// A bound on the memory of masks at `grids` (one per client) of `taskCount` tasks each: per size, the frames
    /// that may wait in mailboxes (FrameMailbox's window at this frame rate, shared by the clients of that size, and
    /// two more the pipeline is writing), and per client one frame it holds back and the copy being written to it.
    /// The model's own grid is not counted: it is made for every frame anyway.
    static func bound(of grids: [MaskGrid], taskCount: Int, framesPerSecond: Double) -> Int {
        let windowSeconds = Double(FrameMailbox.catchUpWindowNanoseconds) / 1e9
        let window = min(FrameMailbox.capacity, Int((framesPerSecond * windowSeconds).rounded(.up))) + 2
        var clients: [MaskGrid: Int] = [:]
        for grid in grids { clients[grid, default: 0] += 1 }
        return clients.reduce(0) { total, entry in total + entry.key.width * entry.key.height * taskCount * (window + 2 * entry.value) }
    }

    /// Admits client `id` at `grid` when the bound with it stays within the budget; else returns the bound it would reach.
    mutating func admit(_ id: Int, at grid: MaskGrid, taskCount: Int, framesPerSecond: Double) -> Int? {
        let bound = Self.bound(of: Array(holders.values) + [grid], taskCount: taskCount, framesPerSecond: framesPerSecond)
        guard bound <= bytes else { return bound }
        holders[id] = grid
        return nil
    }

    mutating func release(_ id: Int) {
        holders[id] = nil
    }
}
