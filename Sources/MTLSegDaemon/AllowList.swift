/// Who may connect to the mask socket, by the peer's credentials at connect time.
struct AllowList: Sendable {
    var uids: [UInt32]
    var gids: [UInt32]
    /// The daemon's own user, always admitted (as root is).
    var ownUID: UInt32

    /// Admitted: root, the daemon's own user, anyone when both lists are empty, a listed uid, or a listed
    /// group among the peer's primary and supplementary groups (a user added with `usermod -aG` has it
    /// only as a supplementary one).
    func admits(uid: UInt32, gid: UInt32, supplementaryGroups: [UInt32]) -> Bool {
        if uid == 0 || uid == ownUID { return true }
        if uids.isEmpty && gids.isEmpty { return true }
        if uids.contains(uid) || gids.contains(gid) { return true }
        return supplementaryGroups.contains { gids.contains($0) }
    }
}
