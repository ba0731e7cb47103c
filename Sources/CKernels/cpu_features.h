#ifndef CKERNELS_CPU_FEATURES_H
#define CKERNELS_CPU_FEATURES_H
// The one place that asks the CPU what it runs and reads MTLSEG_KERNELS. Both kernel
// dispatches decide from what it says: qgemm_dispatch.c (the GEMM kernel set) and
// ops_dispatch.c (every other operation's version).

/// The kernel tiers, best first. Each names a GEMM kernel set (qgemm_<tile>_<tier>.c);
/// MTLSEG_KERNELS=<name> caps every kernel at that tier.
typedef enum {
    CK_TIER_AVX512VNNI,
    CK_TIER_AVXVNNI,
    CK_TIER_AVX2,
    CK_TIER_NEONDOT,
    CK_TIER_NEON, // AArch64 without the dot product (Cortex-A72, A53): widening multiply-accumulate
    CK_TIER_SCALAR,
    CK_TIER_COUNT
} ck_tier;

/// How wide the hand-vectorised versions of the operations other than the GEMMs may be
/// (the files named <operation>_<type>_<isa>.c): x86's AVX2 and AVX-512, AArch64's NEON
/// (Advanced SIMD, which every AArch64 CPU has).
typedef enum { CK_VECTORS_PORTABLE, CK_VECTORS_AVX2, CK_VECTORS_AVX512, CK_VECTORS_NEON, CK_VECTORS_COUNT } ck_vectors;

typedef struct {
    /// Per tier: 1 when this build has its kernels and this CPU (and OS) runs them, whatever MTLSEG_KERNELS says.
    unsigned char runs[CK_TIER_COUNT];
    /// The tier the GEMMs run: the best the CPU runs at or below the cap.
    ck_tier gemm;
    /// The widest operation versions the CPU runs, at most the cap's.
    ck_vectors vectors;
    /// 1 when the CPU runs AVX-512 F (whatever the cap): for configuring BLAS.
    int avx512f;
    /// 1 when the CPU (and the OS) run AArch64's SVE, and its SME (Scalable Matrix Extension): for configuring BLAS.
    int sve, sme;
} ck_cpu_features;

/// Probed and capped once (the first call, from any thread); never NULL.
const ck_cpu_features *ck_cpu_features_get(void);

/// "avx512vnni", "avxvnni", "avx2", "neondot", "neon" or "scalar": the names MTLSEG_KERNELS takes.
const char *ck_tier_name(ck_tier tier);

#endif
