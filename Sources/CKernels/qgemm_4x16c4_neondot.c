// int8 GEMM with the Armv8.2 dot product (sdot): a 4×16 tile of int32 sums in 16
// q registers. sdot multiplies signed by signed bytes, so activations are flipped
// to a − 128 (XOR 0x80) and the set reports a_shift = 128; the caller folds
// 128·Σb into the offsets. Per group of 4 k: four 16-byte loads of packed B and,
// per row, one lane of a 16-byte load of A (4 groups at once) via sdot-by-lane.
#if defined(__aarch64__)
#include "qgemm_few_neon.h"
#include "qgemm_internal.h"

#include <arm_neon.h>

#pragma clang fp contract(off)
#pragma STDC FP_CONTRACT OFF

#define TARGET __attribute__((target("arch=armv8.2-a+dotprod")))
#define INLINE static inline __attribute__((always_inline))

enum { MR = 4, NR = 16, NB = 16 };

// At most CKQ_FEW_NEON columns (a classifier of a few classes): qgemm_few_neon.c's layout and product.
static size_t packed_size(size_t n, size_t k) {
    return n <= CKQ_FEW_NEON ? ckq_few_neondot_packed_size(n, k) : ckq_packed_size_c4(n, k, NR);
}
static void pack(const int8_t *b, size_t n, size_t k, size_t ldb, void *packed) {
    if (n <= CKQ_FEW_NEON) ckq_few_neondot_pack(b, n, k, ldb, packed);
    else ckq_pack_c4(b, n, k, ldb, NR, packed);
}

#include "qgemm_store_neon.h"

TARGET INLINE void tile(size_t mvalid, size_t nvalid, size_t kq, const uint8_t *a, size_t lda, const int8_t *bp,
                        const ckq_panel_params *p, const ck_qgemm_epilogue *ep, ck_qgemm_output output, char *c,
                        size_t ldc_bytes) {
    const size_t esize = output == CK_QGEMM_OUT_U8 ? 1 : 4;
    // Ragged m: the missing rows repeat the last real one (only m rows are readable).
    const uint8_t *ar[MR];
    for (size_t r = 0; r < MR; r++) ar[r] = a + (r < mvalid ? r : mvalid - 1) * lda;
    const uint8x16_t flip = vdupq_n_u8(0x80);

    int32x4_t acc[MR][4];
    for (size_t r = 0; r < MR; r++)
        for (size_t q = 0; q < 4; q++) acc[r][q] = vdupq_n_s32(0);
    size_t g = 0;
    // Four groups (16 bytes of each A row) at a time: stays inside roundup(k, 4).
    for (; g + 4 <= kq; g += 4) {
        int8x16_t av[MR];
        for (size_t r = 0; r < MR; r++) av[r] = vreinterpretq_s8_u8(veorq_u8(vld1q_u8(ar[r] + 4 * g), flip));
#define CKQ_GROUP(lane)                                                                                            \
    do {                                                                                                           \
        int8x16_t b0 = vld1q_s8(bp), b1 = vld1q_s8(bp + 16), b2 = vld1q_s8(bp + 32), b3 = vld1q_s8(bp + 48);        \
        bp += 64;                                                                                                  \
        for (size_t r = 0; r < MR; r++) {                                                                          \
            acc[r][0] = vdotq_laneq_s32(acc[r][0], b0, av[r], lane);                                               \
            acc[r][1] = vdotq_laneq_s32(acc[r][1], b1, av[r], lane);                                               \
            acc[r][2] = vdotq_laneq_s32(acc[r][2], b2, av[r], lane);                                               \
            acc[r][3] = vdotq_laneq_s32(acc[r][3], b3, av[r], lane);                                               \
        }                                                                                                          \
    } while (0)
        CKQ_GROUP(0);
        CKQ_GROUP(1);
        CKQ_GROUP(2);
        CKQ_GROUP(3);
#undef CKQ_GROUP
    }
    for (; g < kq; g++) {
        int8x16_t b0 = vld1q_s8(bp), b1 = vld1q_s8(bp + 16), b2 = vld1q_s8(bp + 32), b3 = vld1q_s8(bp + 48);
        bp += 64;
        for (size_t r = 0; r < MR; r++) {
            int8x16_t av = vreinterpretq_s8_u8(veorq_u8(vreinterpretq_u8_u32(vdupq_n_u32(ckq_load_u32(ar[r] + 4 * g))), flip));
            acc[r][0] = vdotq_s32(acc[r][0], b0, av);
            acc[r][1] = vdotq_s32(acc[r][1], b1, av);
            acc[r][2] = vdotq_s32(acc[r][2], b2, av);
            acc[r][3] = vdotq_s32(acc[r][3], b3, av);
        }
    }
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

#define CKQ_PACKED_T int8_t
#include "qgemm_driver.h"

// The set's entry: the few-columns product or the tiles.
TARGET static void gemm_entry(size_t m, size_t n, size_t k, const uint8_t *a, size_t lda, const void *packed_b,
                              const ck_qgemm_epilogue *ep, void *c, size_t ldc) {
    if (n <= CKQ_FEW_NEON) ckq_few_neondot_gemm(m, n, k, a, lda, packed_b, ep, c, ldc);
    else gemm(m, n, k, a, lda, packed_b, ep, c, ldc);
}

const ck_qgemm_kernels ckq_neondot_4x16c4 = {
    .name = "neondot-4x16c4",
    .isa = "neondot",
    .mr = MR,
    .nr = NR,
    .k_group = 4,
    .a_shift = 128,
    .packed_size = packed_size,
    .pack = pack,
    .gemm = gemm_entry,
};
#endif
