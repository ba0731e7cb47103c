#if canImport(FoundationEssentials)
import FoundationEssentials
import Glibc
#else
import Foundation
#endif

/// The account the systemd units run the daemon as (User=mtlseg, Group=mtlseg-clients, SupplementaryGroups=video,
/// and the groups that list the user), and the parts of the file system their sandbox hides, so that `--check-config` run
/// by an administrator (as root, who reads everything) finds what the service itself could not read: a model copied
/// with mode 0600, a folder of images under /home.
public struct ServiceAccount {
    public static let user = "mtlseg"
    public let uid: uid_t
    public let groups: Set<gid_t>

    public init(uid: uid_t, groups: Set<gid_t>) {
        self.uid = uid
        self.groups = groups
    }

    /// The account as this system has it; nil where the package's sysusers entry has not made it. Its groups are
    /// those systemd gives the unit's process: Group= (mtlseg-clients, in place of the user's own primary group),
    /// the groups that list the user as a member, and SupplementaryGroups= (video).
    public static func lookup() -> ServiceAccount? {
        guard let entry = getpwnam(user) else { return nil }
        let uid = entry.pointee.pw_uid
        let base = getgrnam("mtlseg-clients")?.pointee.gr_gid ?? entry.pointee.pw_gid
        var count: Int32 = 64
        var list = [gid_t](repeating: 0, count: Int(count))
        if getgrouplist(user, base, &list, &count) < 0 {
            list = [gid_t](repeating: 0, count: Int(count))
            _ = getgrouplist(user, base, &list, &count)
        }
        var groups = Set(list.prefix(Int(max(count, 0))))
        groups.insert(base)
        if let video = getgrnam("video") { groups.insert(video.pointee.gr_gid) }
        return ServiceAccount(uid: uid, groups: groups)
    }

    /// Folders the units' sandbox replaces or hides, with the setting that does it.
    static let hidden = [("/home/", "ProtectHome=yes"), ("/root/", "ProtectHome=yes"), ("/run/user/", "ProtectHome=yes"),
                         ("/tmp/", "PrivateTmp=yes"), ("/var/tmp/", "PrivateTmp=yes")]

    /// Why the service could not read `path` (a file, or a folder and what it lists); nil when it can.
    public func cannotRead(_ path: String) -> String? {
        guard let real = realpath(path, nil) else { return nil }  // a missing path is start-up's own error
        let resolved = String(cString: real)
        free(real)
        if let (folder, setting) = Self.hidden.first(where: { resolved.hasPrefix($0.0) }) {
            return "it lies under \(folder), which the unit's sandbox hides (\(setting)); keep it under /var/lib/mtlseg or /srv"
        }
        var info = stat()
        var prefix = ""
        for component in resolved.split(separator: "/").dropLast() {
            prefix += "/" + component
            guard stat(prefix, &info) == 0 else { return nil }
            if !permits(info, S_IXOTH) { return "\(Self.user) may not pass through \(prefix) (\(Self.modeText(info)))" }
        }
        guard stat(resolved, &info) == 0 else { return nil }
        if (info.st_mode & S_IFMT) == S_IFDIR {
            if !permits(info, S_IROTH) || !permits(info, S_IXOTH) { return "\(Self.user) may not list \(resolved) (\(Self.modeText(info)))" }
        } else if !permits(info, S_IROTH) {
            return "\(Self.user) may not read it (\(Self.modeText(info)))"
        }
        return nil
    }

    /// Whether the account has `bit` (given as the "others" bit: S_IROTH, S_IXOTH) on a file with `info`, by its mode
    /// bits (ACLs are not read).
    private func permits(_ info: stat, _ bit: mode_t) -> Bool {
        if info.st_uid == uid { return info.st_mode & (bit << 6) != 0 }
        if groups.contains(info.st_gid) { return info.st_mode & (bit << 3) != 0 }
        return info.st_mode & bit != 0
    }

    private static func modeText(_ info: stat) -> String {
        let owner = getpwuid(info.st_uid).map { String(cString: $0.pointee.pw_name) } ?? "\(info.st_uid)"
        let group = getgrgid(info.st_gid).map { String(cString: $0.pointee.gr_name) } ?? "\(info.st_gid)"
        return "\(owner):\(group), mode \(String(info.st_mode & 0o7777, radix: 8))"
    }
}
