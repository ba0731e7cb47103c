import CKernels
#if canImport(FoundationEssentials)
import FoundationEssentials
import Glibc
#else
import Foundation
#endif

/// OpenBLAS reads its settings from the environment when it loads, before
/// `main` runs; setting them from inside the process is too late. So when they
/// are unset, the program (mtlseg, mtlsegd) sets them and starts itself again, once:
/// - OPENBLAS_NUM_THREADS=1: the engines spread their work over their own
///   threads, and idle OpenBLAS workers would spin against them.
/// - OPENBLAS_CORETYPE=SkylakeX where the CPU has AVX-512: Debian's OpenBLAS
///   0.3.21 takes Zen 4/5 for Haswell and runs its AVX2 kernels at half speed.
/// A value the user set is kept as it is.
public enum BLASEnvironment {
    /// Call first thing in `main`.
    public static func prepare() {
        guard getenv("MTLSEG_BLAS_PREPARED") == nil else { return }
        var changed = false
        if getenv("OPENBLAS_NUM_THREADS") == nil {
            setenv("OPENBLAS_NUM_THREADS", "1", 1)
            changed = true
        }
        if getenv("OPENBLAS_CORETYPE") == nil && ck_cpu_has_avx512f() != 0 {
            setenv("OPENBLAS_CORETYPE", "SkylakeX", 1)
            changed = true
        }
        guard changed else { return }
        setenv("MTLSEG_BLAS_PREPARED", "1", 1)
        execv("/proc/self/exe", CommandLine.unsafeArgv)
        // Only reached if the exec failed: carry on with OpenBLAS as it loaded.
    }
}
