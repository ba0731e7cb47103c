import CKernels
import MTLSegEssentials
#if canImport(FoundationEssentials)
import FoundationEssentials
import Glibc
#else
import Foundation
#endif

/// The environment OpenBLAS should load with. It reads its settings when it loads, before `main`
/// runs, so setting them from inside the process is too late: the executables (mtlseg, mtlsegd)
/// set what is missing and start themselves again, once, first thing in `main`.
/// - OPENBLAS_NUM_THREADS=1: the int8 engine spreads its work over its own pool (`ThreadPool`),
///   and idle OpenBLAS workers would spin against it; the fp32 engine raises OpenBLAS's count
///   itself with `setMatrixThreads`.
/// - OPENBLAS_CORETYPE=SkylakeX where the CPU has AVX-512: Debian's OpenBLAS 0.3.21 takes Zen 4/5
///   for Haswell and runs its AVX2 kernels at half speed.
/// - OPENBLAS_CORETYPE=ARMV8SVE (ARMV8 without SVE) where an AArch64 CPU has SME: OpenBLAS (Debian
///   sid's 0.3.34) takes such a CPU, unless it knows its part number, for its ARMV9SME kernels,
///   whose sgemm allocates on every call, and a frame must not allocate: the daemon
///   runs it on its real-time path (`Int8Engine` calls sgemm for fp32 attention and
///   layers kept in fp32). These two are the cores OpenBLAS itself falls back to after SME.
/// A value the user set is kept as it is.
public enum BLASEnvironment {
    /// Set with the others, so that the restarted process does not restart again.
    public static let marker = "MTLSEG_BLAS_PREPARED"

    /// The variables to set before OpenBLAS loads (the marker last); empty when nothing is missing
    /// or the process was already restarted for them.
    public static func missingSettings() -> [(name: String, value: String)] {
        guard getenv(marker) == nil else { return [] }
        var settings: [(name: String, value: String)] = []
        if getenv("OPENBLAS_NUM_THREADS") == nil { settings.append(("OPENBLAS_NUM_THREADS", "1")) }
        if getenv("OPENBLAS_CORETYPE") == nil, let core = coreType { settings.append(("OPENBLAS_CORETYPE", core)) }
        if !settings.isEmpty { settings.append((marker, "1")) }
        return settings
    }

    /// First thing in `main`: sets what is missing and starts the process again (`execv` returns only when it failed:
    /// then OpenBLAS runs as it loaded). The restarted process is the file /proc/self/exe, which the kernel names it
    /// after ("exe"): every start takes back the name it was started by, so `ps`, `pgrep mtlsegd`, `top` and the
    /// journal's _COMM show `mtlsegd` or `mtlseg`.
    public static func prepareProcess() {
        if let invoked = CommandLine.arguments.first.map(Path.lastComponent), !invoked.isEmpty {
            SystemThread.setName(invoked)
        }
        let settings = missingSettings()
        guard !settings.isEmpty else { return }
        for setting in settings { setenv(setting.name, setting.value, 1) }
        execv("/proc/self/exe", CommandLine.unsafeArgv)
    }

    /// The OpenBLAS core this CPU should run instead of the one OpenBLAS would pick; nil: OpenBLAS's own choice.
    static var coreType: String? {
        if ck_cpu_has_avx512f() != 0 { return "SkylakeX" }
        if ck_cpu_has_sme() != 0 { return ck_cpu_has_sve() != 0 ? "ARMV8SVE" : "ARMV8" }
        return nil
    }
}
