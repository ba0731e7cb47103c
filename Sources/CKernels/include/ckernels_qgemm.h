#ifndef CKERNELS_QGEMM_H
#define CKERNELS_QGEMM_H
// int8 matrix products: C[m×n] = epilogue(A[m×k] · B[n×k]ᵀ) with A unsigned
// 8-bit activations (asymmetric, per tensor) and B signed 8-bit weights
// (symmetric, per output column), summed exactly in 32 bits.
//
// One kernel set per instruction set (one file each, named by tile and ISA);
// ck_qgemm_select() picks the best one the CPU runs, once. B is packed at load
// time into the layout of the chosen set.
#include <stddef.h>
#include <stdint.h>

typedef enum {
    CK_QGEMM_OUT_F32 = 0,            // C = v
    CK_QGEMM_OUT_F32_ACCUMULATE = 1, // C += v (residual connections)
    CK_QGEMM_OUT_U8 = 2,             // C = clamp(round_even(v · out_scale_inv) + out_zero_point, 0, 255)
} ck_qgemm_output;

/// What happens to each 32-bit sum `acc` of column j:
///   t = (float)(acc − offset[j]) · scale[j];   (one rounding)
///   v = t + bias[j];                           (a second rounding; never fused into an FMA)
///   v = max(v, 0) when relu;
/// then stored as `output` says. Kernels reproduce exactly these roundings, so
/// every ISA equals the scalar reference bit for bit.
typedef struct {
    const int32_t *offset; // [n] zero point × column sum, adjusted by the set's a_shift (see below)
    const float *scale;    // [n] activation scale × weight scale of column j
    const float *bias;     // [n], or NULL for none (then bias[j] is +0.0f: the add still happens, so −0 becomes +0)
    int relu;
    ck_qgemm_output output;
    float out_scale_inv;   // CK_QGEMM_OUT_U8 only
    int32_t out_zero_point; // 0–255
} ck_qgemm_epilogue;

typedef struct ck_qgemm_kernels {
    const char *name;  // e.g. "avx512vnni-8x32c4"
    const char *isa;   // "avx512vnni", "avxvnni", "avx2", "neondot", "neon", "scalar"
    size_t mr, nr;     // tile rows and columns
    size_t k_group;    // A's rows are read in whole groups of this many bytes (lda ≥ k rounded up to it)
    /// Kernels that multiply signed activations compute Σ (a − a_shift)·b; callers
    /// fold that into offset: offset[j] = (zero_point − a_shift) · Σ_k b[j][k].
    int32_t a_shift;
    /// Bytes of packed B for an n×k matrix.
    size_t (*packed_size)(size_t n, size_t k);
    /// Packs row-major B[n][k] (row stride ldb) into `packed` (64-byte aligned).
    void (*pack)(const int8_t *b, size_t n, size_t k, size_t ldb, void *packed);
    /// C = epilogue(A · Bᵀ). A: m rows of lda bytes, each readable up to k
    /// rounded up to k_group (the bytes past k may hold anything). C: rows of
    /// ldc elements (float or uint8_t as the epilogue's output says).
    void (*gemm)(size_t m, size_t n, size_t k, const uint8_t *a, size_t lda, const void *packed_b,
                 const ck_qgemm_epilogue *epilogue, void *c, size_t ldc);
} ck_qgemm_kernels;

/// The best kernel set this CPU runs, chosen once from its features. The
/// environment variable MTLSEG_KERNELS=<isa> caps the choice at that tier (for
/// tests, and CPUs that misreport): a tier the CPU lacks gives the best one below
/// it, an unknown name is ignored; both with a message on stderr.
const ck_qgemm_kernels *ck_qgemm_select(void);

/// Every kernel set this CPU can run, best first; returns how many (≤ capacity).
size_t ck_qgemm_available(const ck_qgemm_kernels **sets, size_t capacity);

/// The exact scalar reference on unpacked B[n][k] (row stride ldb), with
/// a_shift 0. Slow; for tests.
void ck_qgemm_reference(size_t m, size_t n, size_t k, const uint8_t *a, size_t lda, const int8_t *b, size_t ldb,
                        const ck_qgemm_epilogue *epilogue, void *c, size_t ldc);

#endif
