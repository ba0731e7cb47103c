// int8 GEMM for AArch64 cores without the dot product (Cortex-A72, A53): a 4×16 tile of int32 sums in 16 q
// registers, fed by 8-bit widening multiplies (smull/smlal2) of pairs of k.
//
// Activations are flipped to s8 (a XOR 0x80 = a − 128; the set reports a_shift = 128 and the caller folds 128·Σb
// into the offsets). Per group of 4 k, one B register holds 4 columns: their pairs (k, k+1) in the low 8 bytes and
// (k+2, k+3) in the high 8. The A register of a row holds its pair (k, k+1) four times, then (k+2, k+3) four times.
// smull multiplies the low halves (8 int16 products: 4 columns × 2 k), smlal2 adds the high halves' products into
// the same lanes, and sadalp adds neighbouring int16 lanes (one column's) into the column's int32 sum: 16
// multiply-accumulates per smull + smlal2 + sadalp.
//
// Why that is exact only without −128 in B: a product (a − 128)·b lies in [−16256, 16256] when b ≥ −127, so two fit
// an int16 lane (|sum| ≤ 32512); with b = −128 one product can be 16384 and two 32768, one past int16. The project's
// quantizers write weights in [−127, 127] and the attention's keys and values in [−127, 127] too, but a weight file
// made elsewhere may hold −128: `pack` records whether B holds −128 in a header, and such a matrix runs the same
// tile with a sadalp after each multiply (smull, smull2: each lane then holds a single product, exact for every s8 b;
// 16 multiply-accumulates per 4 instructions).
//
// Why A is spread in a packed copy: the set this replaced (neon-2x32c2, 2 rows × 32 columns) read A rows as they
// are and broadcast each pair of k over a register in the loop: per 16 k and row one load, one eor and 8 dups, for
// every 32-column panel again. Here A is flipped and spread once per 4 rows and block of 16 panels (a tbl per group
// of 4 k), so the loop only loads it: per group of 4 k, one ld1 of the 4 rows' A, one ld1 of the panel's B (4
// registers each), 16 × (smull, smlal2, sadalp); 50 instructions per 256 multiply-accumulates, plus the loop's
// subs and branch per 8 groups: 0.196 per MAC (the replaced loop: 0.226; the multiplies and sadalps alone: 0.1875).
// 16 accumulators, 4 A, 4 B and 8 products fill the 32 registers; 6 rows would need 24 accumulators, leave 2
// registers for products and load as much per MAC (A two rows at a time). As in neondot-6x16c4, the sums start at
// −offset and wait in memory between blocks of k, and whole u8 rows with ReLU go through ckq_relu_u8x16_neon.
//
// Measured as guest instructions under qemu-user -cpu cortex-a72 (not time on a board): SegFormer-b0's int8 GEMMs at
// 256² (Tests/ARM64/cost.sh, gemm step) 171.5 M per pass with neon-2x32c2, 148.9 M with this set; whole
// inferences (Tests/ARM64/inference_cost.sh) the b0 247.6 → 227.3 M, the demo MTLSegFormer 640.5 → 572.2 M (with
// 2 groups per pass of the loop 579.3 M, with 4 575.2 M).
//
// The loop is inline assembly: written with intrinsics, clang spilled the accumulators of such tiles inside the
// loop (neon-2x32c2's measurements: 215.0 M instructions with intrinsics against 182.8 M in assembly for the same
// tile, SegFormer-b0's GEMMs at 256²).
#if defined(__aarch64__)
#include "qgemm_few_neon.h"
#include "qgemm_internal.h"

#include <arm_neon.h>

#pragma clang fp contract(off)
#pragma STDC FP_CONTRACT OFF

#define TARGET
#define INLINE static inline __attribute__((always_inline))

enum { MR = 4, NR = 16, NB = 16, KC = 1024 }; // NB: panels per block; KC: k per packed copy of A
_Static_assert(MR == 4, "pack_a and the loop's registers hold 4 rows");

/// Bytes before the panels: an int32 at 0 says whether B holds −128 (then the single-product loop runs); 64 keeps
/// the panels 64-byte aligned.
enum { HEADER = 64 };

// Layout after the header: panels of NR columns; inside, for each group g of 4 k up to roundup(k, 4), 4 registers of
// 4 columns: byte (panel, g, q, t, jj, u) = B[panel·NR + 4q + jj][4g + 2t + u], zero outside B. A panel is
// roundup(k, 4)·NR bytes.
static size_t packed_size(size_t n, size_t k) { return HEADER + ckq_round_up(n, NR) * ckq_round_up(k, 4); }

/// Whether one of the 4 bytes of w is −128 (0x80): w XOR 0x80808080 has a zero byte (the usual exact test).
static inline uint32_t has_min_byte(uint32_t w) {
    const uint32_t v = w ^ 0x80808080u;
    return (v - 0x01010101u) & ~v & 0x80808080u;
}

/// One group of 4 k (from kk) of 4 columns (from j) into dst's 16 bytes: the columns' 4 bytes as words w0 … w3 (zero
/// outside B), written as their low halves (k, k+1) then their high halves (k+2, k+3). Notes −128 in *has_min.
static inline void pack_group(const int8_t *b, size_t n, size_t k, size_t ldb, size_t j, size_t kk, uint8_t *dst,
                              uint32_t *has_min) {
    uint64_t lo = 0, hi = 0;
    for (size_t jj = 0; jj < 4; jj++, j++) {
        uint32_t w = 0;
        if (j < n && kk + 4 <= k) w = ckq_load_u32(b + j * ldb + kk);
        else if (j < n)
            for (size_t u = 0; kk + u < k; u++) w |= (uint32_t)(uint8_t)b[j * ldb + kk + u] << (8 * u);
        *has_min |= has_min_byte(w);
        lo |= (uint64_t)(w & 0xFFFFu) << (16 * jj);
        hi |= (uint64_t)(w >> 16) << (16 * jj);
    }
    memcpy(dst, &lo, 8); // little-endian: the pairs in the layout's byte order
    memcpy(dst + 8, &hi, 8);
}

/// Packs B: per 4 columns and group of 4 k, pack_group's 16 bytes. Where 4 columns have 16 k left, their 4 groups at
/// once: one load per column, and the pairs of k interleaved by two rounds of zips (16-bit, then 32-bit lanes), the
/// layout's words exactly; −128 found by a running minimum. (The attention's keys and values are packed for every
/// frame: 1.3 M instructions per demo inference on cortex-a72 byte by byte, 0.49 M word by word, 0.07 M so.)
static void pack(const int8_t *b, size_t n, size_t k, size_t ldb, void *packed) {
    uint8_t *out = (uint8_t *)packed + HEADER;
    const size_t kq = ckq_round_up(k, 4) / 4, panels = (n + NR - 1) / NR;
    uint32_t has_min = 0;
    int8x16_t smallest = vdupq_n_s8(0);
    for (size_t p = 0; p < panels; p++)
        for (size_t g = 0; g < kq;) {
            // group g of columns 4q … 4q + 3 of panel p: byte ((p·kq + g)·4 + q)·16
            uint8_t *at = out + (p * kq + g) * 4 * 16;
            if (4 * g + 16 <= k) {
                for (size_t q = 0; q < NR / 4; q++) {
                    const size_t j = p * NR + 4 * q;
                    if (j + 4 > n) {
                        for (size_t i = 0; i < 4; i++) pack_group(b, n, k, ldb, j, 4 * (g + i), at + (4 * i + q) * 16, &has_min);
                        continue;
                    }
                    const int8_t *col = b + j * ldb + 4 * g;
                    const int8x16_t c0 = vld1q_s8(col), c1 = vld1q_s8(col + ldb), c2 = vld1q_s8(col + 2 * ldb),
                                    c3 = vld1q_s8(col + 3 * ldb);
                    smallest = vminq_s8(vminq_s8(smallest, vminq_s8(c0, c1)), vminq_s8(c2, c3));
                    const int16x8_t t0 = vzip1q_s16(vreinterpretq_s16_s8(c0), vreinterpretq_s16_s8(c1)),
                                    t1 = vzip2q_s16(vreinterpretq_s16_s8(c0), vreinterpretq_s16_s8(c1)),
                                    u0 = vzip1q_s16(vreinterpretq_s16_s8(c2), vreinterpretq_s16_s8(c3)),
                                    u1 = vzip2q_s16(vreinterpretq_s16_s8(c2), vreinterpretq_s16_s8(c3));
                    const int32x4_t groups[4] = {
                        vzip1q_s32(vreinterpretq_s32_s16(t0), vreinterpretq_s32_s16(u0)),
                        vzip2q_s32(vreinterpretq_s32_s16(t0), vreinterpretq_s32_s16(u0)),
                        vzip1q_s32(vreinterpretq_s32_s16(t1), vreinterpretq_s32_s16(u1)),
                        vzip2q_s32(vreinterpretq_s32_s16(t1), vreinterpretq_s32_s16(u1))};
                    for (size_t i = 0; i < 4; i++) vst1q_s32((int32_t *)(void *)(at + (4 * i + q) * 16), groups[i]);
                }
                g += 4;
            } else {
                for (size_t q = 0; q < NR / 4; q++) pack_group(b, n, k, ldb, p * NR + 4 * q, 4 * g, at + q * 16, &has_min);
                g += 1;
            }
        }
    const int32_t flag = has_min != 0 || vminvq_s8(smallest) == -128;
    memset(packed, 0, HEADER);
    memcpy(packed, &flag, sizeof flag);
}

#include "qgemm_store_neon.h"

/// tbl indices that spread group j's 4 bytes of a 16-byte A register: (k, k+1) four times, (k+2, k+3) four times.
static const uint8_t spread_index[4][16] = {
    {0, 1, 0, 1, 0, 1, 0, 1, 2, 3, 2, 3, 2, 3, 2, 3},
    {4, 5, 4, 5, 4, 5, 4, 5, 6, 7, 6, 7, 6, 7, 6, 7},
    {8, 9, 8, 9, 8, 9, 8, 9, 10, 11, 10, 11, 10, 11, 10, 11},
    {12, 13, 12, 13, 12, 13, 12, 13, 14, 15, 14, 15, 14, 15, 14, 15},
};

/// The tile's A for groups g0 … g0 + gc − 1 of k, flipped to a − 128 and spread, in the order the product reads it:
/// per group, the 16 bytes of each of the MR rows. Missing rows (ragged m) repeat the last real one: only m rows
/// are readable, each up to roundup(k, 4).
INLINE void pack_a(size_t mvalid, size_t g0, size_t gc, const uint8_t *a, size_t lda, uint8_t *dst) {
    const uint8_t *ar[MR];
    for (size_t r = 0; r < MR; r++) ar[r] = a + (r < mvalid ? r : mvalid - 1) * lda + 4 * g0;
    const uint8x16_t flip = vdupq_n_u8(0x80);
    const uint8x16x4_t spread = vld1q_u8_x4(spread_index[0]);
    size_t g = 0;
    for (; g + 4 <= gc; g += 4) {
        uint8x16_t v[MR];
        for (size_t r = 0; r < MR; r++) v[r] = veorq_u8(vld1q_u8(ar[r] + 4 * g), flip);
        for (size_t j = 0; j < 4; j++, dst += 16 * MR) {
            const uint8x16x4_t rows = {{vqtbl1q_u8(v[0], spread.val[j]), vqtbl1q_u8(v[1], spread.val[j]),
                                        vqtbl1q_u8(v[2], spread.val[j]), vqtbl1q_u8(v[3], spread.val[j])}};
            vst1q_u8_x4(dst, rows);
        }
    }
    for (; g < gc; g++, dst += 16 * MR)
        for (size_t r = 0; r < MR; r++) {
            const uint8x16_t v = veorq_u8(vreinterpretq_u8_u32(vdupq_n_u32(ckq_load_u32(ar[r] + 4 * g))), flip);
            vst1q_u8(dst + 16 * r, vqtbl1q_u8(v, spread.val[0]));
        }
}

// One group of 4 k. Registers: A's 4 rows v0–v3, B's 4 registers v4–v7 (columns 0–3, …, 12–15), products v8–v15,
// the sum of row r, columns 4q … 4q+3 in v(16 + 4r + q).
#define CKQ_LOADS "ld1 {v0.16b, v1.16b, v2.16b, v3.16b}, [%[a]], #64\n\t" \
                  "ld1 {v4.16b, v5.16b, v6.16b, v7.16b}, [%[b]], #64\n\t"
// Rows A0 and A1 (registers) into sums S0 … S0+7: both products of a lane in 16 bits, then one sadalp.
#define CKQ_ROWS_PAIRED(A0, A1, S0, S1, S2, S3, S4, S5, S6, S7)                                                 \
    "smull v8.8h, v" #A0 ".8b, v4.8b\n\t"                                                                       \
    "smull v9.8h, v" #A0 ".8b, v5.8b\n\t"                                                                       \
    "smull v10.8h, v" #A0 ".8b, v6.8b\n\t"                                                                      \
    "smull v11.8h, v" #A0 ".8b, v7.8b\n\t"                                                                      \
    "smull v12.8h, v" #A1 ".8b, v4.8b\n\t"                                                                      \
    "smull v13.8h, v" #A1 ".8b, v5.8b\n\t"                                                                      \
    "smull v14.8h, v" #A1 ".8b, v6.8b\n\t"                                                                      \
    "smull v15.8h, v" #A1 ".8b, v7.8b\n\t"                                                                      \
    "smlal2 v8.8h, v" #A0 ".16b, v4.16b\n\t"                                                                    \
    "smlal2 v9.8h, v" #A0 ".16b, v5.16b\n\t"                                                                    \
    "smlal2 v10.8h, v" #A0 ".16b, v6.16b\n\t"                                                                   \
    "smlal2 v11.8h, v" #A0 ".16b, v7.16b\n\t"                                                                   \
    "smlal2 v12.8h, v" #A1 ".16b, v4.16b\n\t"                                                                   \
    "smlal2 v13.8h, v" #A1 ".16b, v5.16b\n\t"                                                                   \
    "smlal2 v14.8h, v" #A1 ".16b, v6.16b\n\t"                                                                   \
    "smlal2 v15.8h, v" #A1 ".16b, v7.16b\n\t"                                                                   \
    "sadalp v" #S0 ".4s, v8.8h\n\t"                                                                             \
    "sadalp v" #S1 ".4s, v9.8h\n\t"                                                                             \
    "sadalp v" #S2 ".4s, v10.8h\n\t"                                                                            \
    "sadalp v" #S3 ".4s, v11.8h\n\t"                                                                            \
    "sadalp v" #S4 ".4s, v12.8h\n\t"                                                                            \
    "sadalp v" #S5 ".4s, v13.8h\n\t"                                                                            \
    "sadalp v" #S6 ".4s, v14.8h\n\t"                                                                            \
    "sadalp v" #S7 ".4s, v15.8h\n\t"
#define CKQ_GROUP_PAIRED                                                                                        \
    CKQ_LOADS CKQ_ROWS_PAIRED(0, 1, 16, 17, 18, 19, 20, 21, 22, 23)                                             \
        CKQ_ROWS_PAIRED(2, 3, 24, 25, 26, 27, 28, 29, 30, 31)
// Row A (register) into sums S0 … S0+3, each product added on its own (B with −128).
#define CKQ_ROW_SINGLE(A, S0, S1, S2, S3)                                                                       \
    "smull v8.8h, v" #A ".8b, v4.8b\n\t"                                                                        \
    "smull v9.8h, v" #A ".8b, v5.8b\n\t"                                                                        \
    "smull v10.8h, v" #A ".8b, v6.8b\n\t"                                                                       \
    "smull v11.8h, v" #A ".8b, v7.8b\n\t"                                                                       \
    "smull2 v12.8h, v" #A ".16b, v4.16b\n\t"                                                                    \
    "smull2 v13.8h, v" #A ".16b, v5.16b\n\t"                                                                    \
    "smull2 v14.8h, v" #A ".16b, v6.16b\n\t"                                                                    \
    "smull2 v15.8h, v" #A ".16b, v7.16b\n\t"                                                                    \
    "sadalp v" #S0 ".4s, v8.8h\n\t"                                                                             \
    "sadalp v" #S1 ".4s, v9.8h\n\t"                                                                             \
    "sadalp v" #S2 ".4s, v10.8h\n\t"                                                                            \
    "sadalp v" #S3 ".4s, v11.8h\n\t"                                                                            \
    "sadalp v" #S0 ".4s, v12.8h\n\t"                                                                            \
    "sadalp v" #S1 ".4s, v13.8h\n\t"                                                                            \
    "sadalp v" #S2 ".4s, v14.8h\n\t"                                                                            \
    "sadalp v" #S3 ".4s, v15.8h\n\t"
#define CKQ_GROUP_SINGLE                                                                                        \
    CKQ_LOADS CKQ_ROW_SINGLE(0, 16, 17, 18, 19) CKQ_ROW_SINGLE(1, 20, 21, 22, 23)                                \
        CKQ_ROW_SINGLE(2, 24, 25, 26, 27) CKQ_ROW_SINGLE(3, 28, 29, 30, 31)
#define CKQ_SUMS_LOAD                                                                                           \
    "ld1 {v16.4s, v17.4s, v18.4s, v19.4s}, [%[from]], #64\n\t"                                                  \
    "ld1 {v20.4s, v21.4s, v22.4s, v23.4s}, [%[from]], #64\n\t"                                                  \
    "ld1 {v24.4s, v25.4s, v26.4s, v27.4s}, [%[from]], #64\n\t"                                                  \
    "ld1 {v28.4s, v29.4s, v30.4s, v31.4s}, [%[from]]\n\t"
#define CKQ_SUMS_STORE                                                                                          \
    "st1 {v16.4s, v17.4s, v18.4s, v19.4s}, [%[s]], #64\n\t"                                                     \
    "st1 {v20.4s, v21.4s, v22.4s, v23.4s}, [%[s]], #64\n\t"                                                     \
    "st1 {v24.4s, v25.4s, v26.4s, v27.4s}, [%[s]], #64\n\t"                                                     \
    "st1 {v28.4s, v29.4s, v30.4s, v31.4s}, [%[s]]\n\t"
/// sums = from + the products of `groups` groups of 4 k (eight per pass of the loop: its subs and branch are 0.5 %
/// of the instructions; per four groups 1 %, per two 2 %).
#define CKQ_PRODUCT_ASM(GROUP)                                                                                  \
    __asm__ volatile(CKQ_SUMS_LOAD                                                                              \
                     "tbz %[n], #0, 1f\n\t" GROUP                                                                \
                     "\n"                                                                                       \
                     "1:\n\t"                                                                                   \
                     "tbz %[n], #1, 2f\n\t" GROUP GROUP                                                          \
                     "\n"                                                                                       \
                     "2:\n\t"                                                                                   \
                     "tbz %[n], #2, 3f\n\t" GROUP GROUP GROUP GROUP                                              \
                     "\n"                                                                                       \
                     "3:\n\t"                                                                                   \
                     "lsr %[n], %[n], #3\n\t"                                                                   \
                     "cbz %[n], 5f\n"                                                                           \
                     "4:\n\t" GROUP GROUP GROUP GROUP GROUP GROUP GROUP GROUP                                    \
                     "subs %[n], %[n], #1\n\t"                                                                  \
                     "b.ne 4b\n"                                                                                \
                     "5:\n\t" CKQ_SUMS_STORE                                                                     \
                     : [a] "+r"(a), [b] "+r"(b), [n] "+r"(groups), [from] "+r"(from), [s] "+r"(sums)            \
                     :                                                                                          \
                     : "cc", "memory", "v0", "v1", "v2", "v3", "v4", "v5", "v6", "v7", "v8", "v9", "v10", "v11",  \
                       "v12", "v13", "v14", "v15", "v16", "v17", "v18", "v19", "v20", "v21", "v22", "v23", "v24",  \
                       "v25", "v26", "v27", "v28", "v29", "v30", "v31")

/// sums[r][j] = from[r][j] + Σ over the packed groups of A'[r]·B[j] for one panel (`from`: `sums`, or −offset[j] in
/// every row for the first values of k). `paired`: B has no −128 (both products of a lane in 16 bits).
TARGET INLINE void product(int paired, const uint8_t *a, const int8_t *b, size_t groups, const int32_t (*from)[NR],
                           int32_t (*sums)[NR]) {
    if (paired) CKQ_PRODUCT_ASM(CKQ_GROUP_PAIRED);
    else CKQ_PRODUCT_ASM(CKQ_GROUP_SINGLE);
}
#undef CKQ_PRODUCT_ASM
#undef CKQ_SUMS_STORE
#undef CKQ_SUMS_LOAD
#undef CKQ_GROUP_SINGLE
#undef CKQ_ROW_SINGLE
#undef CKQ_GROUP_PAIRED
#undef CKQ_ROWS_PAIRED
#undef CKQ_LOADS

#define CKQ_A_BYTES 4 // pack_a writes each value of A four times
#include "qgemm_driver_neon.h"
#undef CKQ_A_BYTES

TARGET static void gemm_paired(size_t m, size_t n, size_t k, const uint8_t *a, size_t lda, const int8_t *panels,
                               const ck_qgemm_epilogue *ep, void *c, size_t ldc) {
    gemm_loop(1, m, n, k, a, lda, panels, ep, c, ldc);
}
TARGET static void gemm_single(size_t m, size_t n, size_t k, const uint8_t *a, size_t lda, const int8_t *panels,
                               const ck_qgemm_epilogue *ep, void *c, size_t ldc) {
    gemm_loop(0, m, n, k, a, lda, panels, ep, c, ldc);
}

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
    if (n <= CKQ_FEW_NEON) {
        ckq_few_neon_gemm(m, n, k, a, lda, packed_b, ep, c, ldc);
        return;
    }
    int32_t has_min;
    memcpy(&has_min, packed_b, sizeof has_min);
    const int8_t *panels = (const int8_t *)packed_b + HEADER;
    if (has_min) gemm_single(m, n, k, a, lda, panels, ep, c, ldc);
    else gemm_paired(m, n, k, a, lda, panels, ep, c, ldc);
}

const ck_qgemm_kernels ckq_neon_4x16c2 = {
    .name = "neon-4x16c2",
    .isa = "neon",
    .mr = MR,
    .nr = NR,
    .k_group = 4,
    .a_shift = 128,
    .packed_size = entry_packed_size,
    .pack = entry_pack,
    .gemm = gemm_entry,
};
#endif
