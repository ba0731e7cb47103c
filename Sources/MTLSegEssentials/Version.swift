/// mtlseg's version, in one place: what `mtlseg --version` and `mtlsegd --version` print, what the
/// daemon logs when it starts serving and reports in STATS (`version`) and its metrics
/// (`mtlseg_build_info`), and the Debian package's version (systemd/build-deb.sh reads this line
/// when it is given none), so that an operator can tell which build a device runs.
public enum MTLSegVersion {
    public static let string = "0.1.0"
}
