// The AArch64 int8 product for at most CKQ_FEW_NEON (4) output columns, with and without the dot product (see
// qgemm_few_neon.h). In the 4×16 tiles a 2-class classifier wastes 14 of 16 columns: every k still costs each row 4
// sdot (16 smlal without the dot product) for 2 useful columns. Here B is kept as rows of k values, and each of 4 rows
// of A takes per column a dot product of 16 k at a time in the 4 lanes of one q register, added across lanes at the
// end: 4·n sdot (12·n smull, smlal2 and sadalp without the dot product) per 16 k for the 4 rows. The sums are exact integers, so their order is free; the
// epilogue is the scalar definition's (this file contracts no multiply-add), as the AVX-512 VNNI set's few-column
// product does.
#if defined(__aarch64__)
#include "qgemm_few_neon.h"

#include <arm_neon.h>

#pragma clang fp contract(off)
#pragma STDC FP_CONTRACT OFF

#define DOT __attribute__((target("arch=armv8.2-a+dotprod")))
#define INLINE static inline __attribute__((always_inline))

enum { ROWS = 4, FEW = CKQ_FEW_NEON };

/// Both layouts pad each row of B to a multiple of 16 values (zeros), so that a 16-value block never reads past it.
static size_t row_values(size_t k) { return ckq_round_up(k, 16); }

/// The `rem` (4, 8 or 12) readable bytes at `a` and zeros after them: A's rows are readable only up to k rounded
/// to 4, the last 16-byte block may reach past that. (B is zero there, so the zeros meet zeros.)
INLINE uint8x16_t load_tail(const uint8_t *a, size_t rem) {
    if (rem == 4) return vreinterpretq_u8_u32(vsetq_lane_u32(ckq_load_u32(a), vdupq_n_u32(0), 0));
    const uint8x8_t lo = vld1_u8(a);
    if (rem == 8) return vcombine_u8(lo, vdup_n_u8(0));
    return vcombine_u8(lo, vreinterpret_u8_u32(vset_lane_u32(ckq_load_u32(a + 8), vdup_n_u32(0), 0)));
}

/// Rows i0 … i0 + rows − 1 of C from their 32-bit sums, by the scalar definition.
INLINE void store_rows(size_t i0, size_t rows, size_t n, int32_t sums[ROWS][FEW], const ck_qgemm_epilogue *ep, void *c,
                       size_t ldc) {
    for (size_t r = 0; r < rows; r++)
        for (size_t j = 0; j < n; j++) {
            const float v = ckq_value(sums[r][j], ep->offset[j], ep->scale[j], ep->bias ? ep->bias[j] : 0.0f, ep->relu);
            ckq_store(ep, c, ldc, i0 + r, j, v);
        }
}

// ---- With the dot product (the neondot set: activations flipped to a − 128, a_shift 128).

size_t ckq_few_neondot_packed_size(size_t n, size_t k) { return n * row_values(k); }

void ckq_few_neondot_pack(const int8_t *b, size_t n, size_t k, size_t ldb, void *packed) {
    int8_t *rows = packed;
    memset(rows, 0, n * row_values(k));
    for (size_t j = 0; j < n; j++) memcpy(rows + j * row_values(k), b + j * ldb, k);
}

/// `n` is a constant at each call (ckq_few_neondot_gemm's switch), so that the column loops unroll and the
/// accumulators stay in registers.
DOT INLINE void few_dot(size_t m, size_t n, size_t k, const uint8_t *a, size_t lda, const int8_t *b,
                        const ck_qgemm_epilogue *ep, void *c, size_t ldc) {
    const size_t stride = row_values(k), readable = ckq_round_up(k, 4);
    const uint8x16_t flip = vdupq_n_u8(0x80);
    for (size_t i0 = 0; i0 < m; i0 += ROWS) {
        const size_t rows = m - i0 < ROWS ? m - i0 : ROWS;
        // Missing rows repeat the last real one (only m rows are readable); their sums are not stored.
        const uint8_t *ar[ROWS];
        for (size_t r = 0; r < ROWS; r++) ar[r] = a + (i0 + (r < rows ? r : rows - 1)) * lda;
        int32x4_t acc[ROWS][FEW];
        for (size_t r = 0; r < ROWS; r++)
            for (size_t j = 0; j < n; j++) acc[r][j] = vdupq_n_s32(0);
        size_t k0 = 0;
        for (; k0 + 16 <= readable; k0 += 16) {
            int8x16_t bj[FEW];
            for (size_t j = 0; j < n; j++) bj[j] = vld1q_s8(b + j * stride + k0);
            for (size_t r = 0; r < ROWS; r++) {
                const int8x16_t av = vreinterpretq_s8_u8(veorq_u8(vld1q_u8(ar[r] + k0), flip));
                for (size_t j = 0; j < n; j++) acc[r][j] = vdotq_s32(acc[r][j], av, bj[j]);
            }
        }
        if (k0 < readable) {
            int8x16_t bj[FEW];
            for (size_t j = 0; j < n; j++) bj[j] = vld1q_s8(b + j * stride + k0);
            for (size_t r = 0; r < ROWS; r++) {
                const int8x16_t av = vreinterpretq_s8_u8(veorq_u8(load_tail(ar[r] + k0, readable - k0), flip));
                for (size_t j = 0; j < n; j++) acc[r][j] = vdotq_s32(acc[r][j], av, bj[j]);
            }
        }
        int32_t sums[ROWS][FEW];
        for (size_t r = 0; r < ROWS; r++)
            for (size_t j = 0; j < n; j++) sums[r][j] = vaddvq_s32(acc[r][j]);
        store_rows(i0, rows, n, sums, ep, c, ldc);
    }
}

DOT void ckq_few_neondot_gemm(size_t m, size_t n, size_t k, const uint8_t *a, size_t lda, const void *packed_b,
                              const ck_qgemm_epilogue *ep, void *c, size_t ldc) {
    switch (n) {
    case 1: few_dot(m, 1, k, a, lda, packed_b, ep, c, ldc); break;
    case 2: few_dot(m, 2, k, a, lda, packed_b, ep, c, ldc); break;
    case 3: few_dot(m, 3, k, a, lda, packed_b, ep, c, ldc); break;
    case 4: few_dot(m, 4, k, a, lda, packed_b, ep, c, ldc); break;
    default: break; // n = 0: nothing to compute
    }
}

// ---- Without (the neon set: activations flipped to a − 128 like the set's tile, its a_shift 128). B is kept as
// int8 rows, as with the dot product, after a header that says whether it holds −128. Per 16 k, row and column:
// smull multiplies the low 8 values, smlal2 adds the high 8's products into the same int16 lanes, sadalp adds
// neighbouring lanes into the int32 sums: 3 instructions per 16 multiply-accumulates, exact because a product
// (a − 128)·b lies in [−16256, 16256] when b ≥ −127, so two fit an int16 lane (as in qgemm_4x16c2_neon.c); B with
// −128 takes a sadalp after each multiply. (With B widened to int16 and 4 smlal per 16 products, as before, the
// demo's two 2-class classifiers took 2.36 M instructions per inference on cortex-a72, 1.77 M now.)

enum { FEW_HEADER = 16 }; // an int32 at 0: whether B holds −128; 16 keeps the rows 16-byte aligned

size_t ckq_few_neon_packed_size(size_t n, size_t k) { return FEW_HEADER + n * row_values(k); }

void ckq_few_neon_pack(const int8_t *b, size_t n, size_t k, size_t ldb, void *packed) {
    memset(packed, 0, ckq_few_neon_packed_size(n, k));
    int8_t *rows = (int8_t *)packed + FEW_HEADER;
    int32_t has_min = 0;
    for (size_t j = 0; j < n; j++) {
        memcpy(rows + j * row_values(k), b + j * ldb, k);
        for (size_t kk = 0; kk < k; kk++) has_min |= b[j * ldb + kk] == -128;
    }
    memcpy(packed, &has_min, sizeof has_min);
}

/// acc + the 16 products of a and b (a − 128 and a row of B): both products of a lane in 16 bits (`paired`, B without
/// −128), else each on its own.
INLINE int32x4_t mla16(int paired, int32x4_t acc, int8x16_t a, int8x16_t b) {
    if (paired) return vpadalq_s16(acc, vmlal_high_s8(vmull_s8(vget_low_s8(a), vget_low_s8(b)), a, b));
    acc = vpadalq_s16(acc, vmull_s8(vget_low_s8(a), vget_low_s8(b)));
    return vpadalq_s16(acc, vmull_high_s8(a, b));
}

/// One block of 16 k (or the last `rem` readable bytes, rem ≠ 0) of the 4 rows into their sums.
INLINE void s8_block(int paired, int32x4_t acc[ROWS][FEW], const uint8_t *const ar[ROWS], size_t k0, size_t rem,
                     const int8_t *b, size_t stride, size_t n) {
    int8x16_t bj[FEW];
    for (size_t j = 0; j < n; j++) bj[j] = vld1q_s8(b + j * stride + k0);
    for (size_t r = 0; r < ROWS; r++) {
        // a XOR 0x80 read as signed is a − 128 (the tail's zero bytes become −128 and meet zeros of B).
        const uint8x16_t av = rem ? load_tail(ar[r] + k0, rem) : vld1q_u8(ar[r] + k0);
        const int8x16_t as = vreinterpretq_s8_u8(veorq_u8(av, vdupq_n_u8(0x80)));
        for (size_t j = 0; j < n; j++) acc[r][j] = mla16(paired, acc[r][j], as, bj[j]);
    }
}

/// `n` and `paired` are constants at each call, as in few_dot.
INLINE void few_s8(int paired, size_t m, size_t n, size_t k, const uint8_t *a, size_t lda, const int8_t *b,
                   const ck_qgemm_epilogue *ep, void *c, size_t ldc) {
    const size_t stride = row_values(k), readable = ckq_round_up(k, 4);
    for (size_t i0 = 0; i0 < m; i0 += ROWS) {
        const size_t rows = m - i0 < ROWS ? m - i0 : ROWS;
        const uint8_t *ar[ROWS];
        for (size_t r = 0; r < ROWS; r++) ar[r] = a + (i0 + (r < rows ? r : rows - 1)) * lda;
        int32x4_t acc[ROWS][FEW];
        for (size_t r = 0; r < ROWS; r++)
            for (size_t j = 0; j < n; j++) acc[r][j] = vdupq_n_s32(0);
        size_t k0 = 0;
        for (; k0 + 16 <= readable; k0 += 16) s8_block(paired, acc, ar, k0, 0, b, stride, n);
        if (k0 < readable) s8_block(paired, acc, ar, k0, readable - k0, b, stride, n);
        int32_t sums[ROWS][FEW];
        for (size_t r = 0; r < ROWS; r++)
            for (size_t j = 0; j < n; j++) sums[r][j] = vaddvq_s32(acc[r][j]);
        store_rows(i0, rows, n, sums, ep, c, ldc);
    }
}

void ckq_few_neon_gemm(size_t m, size_t n, size_t k, const uint8_t *a, size_t lda, const void *packed_b,
                       const ck_qgemm_epilogue *ep, void *c, size_t ldc) {
    int32_t has_min;
    memcpy(&has_min, packed_b, sizeof has_min);
    const int8_t *b = (const int8_t *)packed_b + FEW_HEADER;
    switch (n + (has_min ? 0 : 4)) { // the paired loop where B has no −128
    case 1: few_s8(0, m, 1, k, a, lda, b, ep, c, ldc); break;
    case 2: few_s8(0, m, 2, k, a, lda, b, ep, c, ldc); break;
    case 3: few_s8(0, m, 3, k, a, lda, b, ep, c, ldc); break;
    case 4: few_s8(0, m, 4, k, a, lda, b, ep, c, ldc); break;
    case 5: few_s8(1, m, 1, k, a, lda, b, ep, c, ldc); break;
    case 6: few_s8(1, m, 2, k, a, lda, b, ep, c, ldc); break;
    case 7: few_s8(1, m, 3, k, a, lda, b, ep, c, ldc); break;
    case 8: few_s8(1, m, 4, k, a, lda, b, ep, c, ldc); break;
    default: break; // n = 0: nothing to compute
    }
}
#endif
