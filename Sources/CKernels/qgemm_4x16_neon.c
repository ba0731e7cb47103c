// int8 GEMM for AArch64 cores without the dot product (Cortex-A72, A53): a 4×16 tile of
// int32 sums in 16 q registers, one 16-bit widening multiply-accumulate (smlal/smlal2 by
// lane) per 4 columns per k.
//
// Why 16-bit lanes: u8 × s8 products (−32640 … 32385) each fit an int16, but a sum of two does
// not, so the 8-bit smull + smlal + sadalp sequence is only exact for weights above −128 (or
// activations shifted to s8, where (−128)·(−128) twice overflows too). smlal by lane widens
// each product straight into int32: exact for every input, like the scalar reference.
// Why B is packed as int16: widening B at pack time saves two sxtl per k in the loop (the
// weights are read many times, widened once); A is widened once per 8 k (one uxtl per row).
// Why 4×16: 16 accumulators + 4 A registers (by-lane operands must sit in v0–v15) + 2 B
// registers fit the 32 registers without spills, and 16 smlal per k share 2 B loads and the
// loop overhead. Measured with Tests/ARM64/cost.sh's gemm step (all of SegFormer-b0's int8
// GEMMs at 256², guest instructions under qemu -cpu cortex-a72): 4×16 with int16 B 226.9 M,
// 6×16 241.5 M (spills), 2×16 246.5 M, 4×16 with int8 B widened in the loop 243.2 M.
#if defined(__aarch64__)
#include "qgemm_few_neon.h"
#include "qgemm_internal.h"

#include <arm_neon.h>

#pragma clang fp contract(off)
#pragma STDC FP_CONTRACT OFF

#define TARGET
#define INLINE static inline __attribute__((always_inline))

enum { MR = 4, NR = 16, NB = 16 };

// Layout: panels of NR columns; inside, for each k up to roundup(k, 4), NR int16 weights:
// element (panel, kk, jj) = B[panel·NR + jj][kk], zero outside B. A panel is kq·NR·4 elements,
// the stride qgemm_driver.h assumes.
static size_t packed_size(size_t n, size_t k) { return ckq_round_up(n, NR) * ckq_round_up(k, 4) * sizeof(int16_t); }

static void pack(const int8_t *b, size_t n, size_t k, size_t ldb, void *packed) {
    int16_t *out = packed;
    const size_t kpad = ckq_round_up(k, 4);
    for (size_t j0 = 0; j0 < n; j0 += NR)
        for (size_t kk = 0; kk < kpad; kk++)
            for (size_t jj = 0; jj < NR; jj++) *out++ = j0 + jj < n && kk < k ? b[(j0 + jj) * ldb + kk] : 0;
}

#include "qgemm_store_neon.h"

TARGET INLINE void tile(size_t mvalid, size_t nvalid, size_t kq, const uint8_t *a, size_t lda, const int16_t *bp,
                        const ckq_panel_params *p, const ck_qgemm_epilogue *ep, ck_qgemm_output output, char *c,
                        size_t ldc_bytes) {
    const size_t esize = output == CK_QGEMM_OUT_U8 ? 1 : 4;
    // Ragged m: the missing rows repeat the last real one (only m rows are readable).
    const uint8_t *ar[MR];
    for (size_t r = 0; r < MR; r++) ar[r] = a + (r < mvalid ? r : mvalid - 1) * lda;

    int32x4_t acc[MR][4];
    for (size_t r = 0; r < MR; r++)
        for (size_t q = 0; q < 4; q++) acc[r][q] = vdupq_n_s32(0);
#define CKQ_K(lane)                                                                                                \
    do {                                                                                                           \
        int16x8_t b0 = vld1q_s16(bp), b1 = vld1q_s16(bp + 8);                                                      \
        bp += 16;                                                                                                  \
        for (size_t r = 0; r < MR; r++) {                                                                          \
            acc[r][0] = vmlal_laneq_s16(acc[r][0], vget_low_s16(b0), av[r], lane);                                 \
            acc[r][1] = vmlal_high_laneq_s16(acc[r][1], b0, av[r], lane);                                          \
            acc[r][2] = vmlal_laneq_s16(acc[r][2], vget_low_s16(b1), av[r], lane);                                 \
            acc[r][3] = vmlal_high_laneq_s16(acc[r][3], b1, av[r], lane);                                          \
        }                                                                                                          \
    } while (0)
    size_t kk = 0;
    const size_t kpad = kq * 4;
    // Eight k at a time (8 bytes of each A row): stays inside roundup(k, 4).
    for (; kk + 8 <= kpad; kk += 8) {
        int16x8_t av[MR];
        for (size_t r = 0; r < MR; r++) av[r] = vreinterpretq_s16_u16(vmovl_u8(vld1_u8(ar[r] + kk)));
        CKQ_K(0); CKQ_K(1); CKQ_K(2); CKQ_K(3); CKQ_K(4); CKQ_K(5); CKQ_K(6); CKQ_K(7);
    }
    if (kk < kpad) { // the last 4 (A is readable only up to roundup(k, 4))
        int16x8_t av[MR];
        for (size_t r = 0; r < MR; r++)
            av[r] = vreinterpretq_s16_u16(vmovl_u8(vreinterpret_u8_u32(vdup_n_u32(ckq_load_u32(ar[r] + kk)))));
        CKQ_K(0); CKQ_K(1); CKQ_K(2); CKQ_K(3);
    }
#undef CKQ_K
    ckq_epi_neon e;
    ckq_epi_neon_load(&e, p, ep);
    // Fully unrolled so that acc[] stays in registers (a loop with a break would spill it).
#pragma clang loop unroll(full)
    for (size_t r = 0; r < MR; r++) {
        if (r >= mvalid) continue;
        char *cr = c + r * ldc_bytes;
        if (nvalid >= NR) {
            if (output == CK_QGEMM_OUT_U8) ckq_store16_u8_neon(acc[r], &e, (uint8_t *)cr);
            else ckq_store16_f32_neon(acc[r], &e, output == CK_QGEMM_OUT_F32_ACCUMULATE, (float *)cr);
            continue;
        }
        for (int q = 0; q < 4; q++) {
            size_t valid = nvalid > 4 * (size_t)q ? (nvalid - 4 * q < 4 ? nvalid - 4 * q : 4) : 0;
            ckq_store4_neon(acc[r][q], &e, q, output, cr + 4 * q * esize, valid);
        }
    }
}

#define CKQ_PACKED_T int16_t
#include "qgemm_driver.h"

// At most CKQ_FEW_NEON columns (a classifier of a few classes): qgemm_few_neon.c's layout and product.
static size_t entry_packed_size(size_t n, size_t k) {
    return n <= CKQ_FEW_NEON ? ckq_few_neon_packed_size(n, k) : packed_size(n, k);
}
static void entry_pack(const int8_t *b, size_t n, size_t k, size_t ldb, void *packed) {
    if (n <= CKQ_FEW_NEON) ckq_few_neon_pack(b, n, k, ldb, packed);
    else pack(b, n, k, ldb, packed);
}
static void gemm_entry(size_t m, size_t n, size_t k, const uint8_t *a, size_t lda, const void *packed_b,
                       const ck_qgemm_epilogue *ep, void *c, size_t ldc) {
    if (n <= CKQ_FEW_NEON) ckq_few_neon_gemm(m, n, k, a, lda, packed_b, ep, c, ldc);
    else gemm(m, n, k, a, lda, packed_b, ep, c, ldc);
}

const ck_qgemm_kernels ckq_neon_4x16 = {
    .name = "neon-4x16",
    .isa = "neon",
    .mr = MR,
    .nr = NR,
    .k_group = 4,
    .a_shift = 0,
    .packed_size = entry_packed_size,
    .pack = entry_pack,
    .gemm = gemm_entry,
};
#endif
