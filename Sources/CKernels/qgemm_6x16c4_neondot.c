// int8 GEMM with the Armv8.2 dot product (sdot): a 6×16 tile of int32 sums in 24 q registers. sdot multiplies
// signed by signed bytes, so activations are flipped to a − 128 (XOR 0x80) and the set reports a_shift = 128; the
// caller folds 128·Σb into the offsets. B is packed as the other "c4" sets pack it (16-column panels, 4 k per
// column group); per group of 4 k, four 16-byte registers of B meet, per row, one 4-byte lane of A (sdot by lane).
//
// Why this shape (counted as guest instructions under qemu-user -cpu cortex-a76, not time on a board): the 4×16 tile
// it replaced ran 88 instructions per 64 sdot in its 16-k loop: 4 loads and 4 eor of A (the flip, repeated for every
// 16-column panel although A is the same), 8 ldp of B and 8 of address and loop arithmetic. Here A is flipped once
// per 6 rows and block of 16 panels into a packed copy on the stack, laid out the way the loop reads it, and the
// loop is inline assembly with post-indexed loads (the intrinsics loop's address arithmetic above is gone): per 16 k
// 3 ldp of A, 8 ldp of B, 96 sdot, and a subs and a branch per 32 k, ~1.13 instructions per sdot instead of 1.375.
// Six rows is what 32 registers allow (24 accumulators, 6 of A, 2 of B); 8×8 (16 accumulators) would load about as
// much per sdot (1.125) with B repacked in 8-column panels. The sums start at −offset (the epilogue's acc − offset,
// which wraps as sdot's sums do), the epilogue tests ReLU once per tile, and u8 rows add the zero point after
// narrowing. SegFormer-b0's int8 GEMMs at 256² (Tests/ARM64/cost.sh, gemm step): 86.4 → 72.9 M instructions per
// pass; whole inferences (Tests/ARM64/inference_cost.sh, 1 thread, ONNX Runtime 391.4 M and 584.1 M): the b0 189.5 →
// 179.6 M, the demo MTLSegFormer 357.8 → 320.8 M (its task heads are two thirds of its multiply-accumulates and run
// here; their bands of 72 pixels are whole 6-row tiles).
#if defined(__aarch64__)
#include "qgemm_few_neon.h"
#include "qgemm_internal.h"

#include <arm_neon.h>

#pragma clang fp contract(off)
#pragma STDC FP_CONTRACT OFF

#define TARGET __attribute__((target("arch=armv8.2-a+dotprod")))
#define INLINE static inline __attribute__((always_inline))

enum { MR = 6, NR = 16, NB = 16, KC = 2048 };

// At most CKQ_FEW_NEON columns (a classifier of a few classes): qgemm_few_neon.c's layout and product.
static size_t packed_size(size_t n, size_t k) {
    return n <= CKQ_FEW_NEON ? ckq_few_neondot_packed_size(n, k) : ckq_packed_size_c4(n, k, NR);
}
static void pack(const int8_t *b, size_t n, size_t k, size_t ldb, void *packed) {
    if (n <= CKQ_FEW_NEON) ckq_few_neondot_pack(b, n, k, ldb, packed);
    else ckq_pack_c4(b, n, k, ldb, NR, packed);
}

#include "qgemm_store_neon.h"

/// The tile's A for groups g0 … g0 + gc − 1 of k, flipped to a − 128, in the order the product reads it: per
/// block of 4 groups (16 k) the 16 bytes of each of the MR rows, then per remaining group the 4 bytes of each
/// row. Missing rows (ragged m) repeat the last real one: only m rows are readable.
INLINE void pack_a(size_t mvalid, size_t g0, size_t gc, const uint8_t *a, size_t lda, uint8_t *dst) {
    const uint8_t *ar[MR];
    for (size_t r = 0; r < MR; r++) ar[r] = a + (r < mvalid ? r : mvalid - 1) * lda + 4 * g0;
    const uint8x16_t flip = vdupq_n_u8(0x80);
    size_t g = 0;
    for (; g + 4 <= gc; g += 4, dst += 16 * MR)
        for (size_t r = 0; r < MR; r++) vst1q_u8(dst + 16 * r, veorq_u8(vld1q_u8(ar[r] + 4 * g), flip));
    for (; g < gc; g++, dst += 4 * MR)
        for (size_t r = 0; r < MR; r++) {
            uint32_t v = ckq_load_u32(ar[r] + 4 * g) ^ 0x80808080u;
            memcpy(dst + 4 * r, &v, 4);
        }
}

// Accumulator of row r, columns 4q … 4q+3: v(8 + 4r + q). A's 6 rows of a block: v0–v5; B, 8 columns: v6, v7.
#define CKQ_SDOT(acc, b, a, lane) "sdot v" #acc ".4s, v" #b ".16b, v" #a ".4b[" #lane "]\n\t"
#define CKQ_GROUP(lane)                                                                                           \
    "ldp q6, q7, [%[b]], #32\n\t" CKQ_SDOT(8, 6, 0, lane) CKQ_SDOT(9, 7, 0, lane) CKQ_SDOT(12, 6, 1, lane)          \
        CKQ_SDOT(13, 7, 1, lane) CKQ_SDOT(16, 6, 2, lane) CKQ_SDOT(17, 7, 2, lane) CKQ_SDOT(20, 6, 3, lane)         \
            CKQ_SDOT(21, 7, 3, lane) CKQ_SDOT(24, 6, 4, lane) CKQ_SDOT(25, 7, 4, lane) CKQ_SDOT(28, 6, 5, lane)     \
                CKQ_SDOT(29, 7, 5, lane) "ldp q6, q7, [%[b]], #32\n\t" CKQ_SDOT(10, 6, 0, lane)                    \
                    CKQ_SDOT(11, 7, 0, lane) CKQ_SDOT(14, 6, 1, lane) CKQ_SDOT(15, 7, 1, lane)                     \
                        CKQ_SDOT(18, 6, 2, lane) CKQ_SDOT(19, 7, 2, lane) CKQ_SDOT(22, 6, 3, lane)                 \
                            CKQ_SDOT(23, 7, 3, lane) CKQ_SDOT(26, 6, 4, lane) CKQ_SDOT(27, 7, 4, lane)             \
                                CKQ_SDOT(30, 6, 5, lane) CKQ_SDOT(31, 7, 5, lane)
#define CKQ_ROW_PAIR(x, y, off) "ldp q" #x ", q" #y ", [%[from], #" #off "]\n\t"
#define CKQ_ROW_PAIR_ST(x, y, off) "stp q" #x ", q" #y ", [%[s], #" #off "]\n\t"
#define CKQ_SUMS(OP)                                                                                              \
    OP(8, 9, 0) OP(10, 11, 32) OP(12, 13, 64) OP(14, 15, 96) OP(16, 17, 128) OP(18, 19, 160) OP(20, 21, 192)      \
        OP(22, 23, 224) OP(24, 25, 256) OP(26, 27, 288) OP(28, 29, 320) OP(30, 31, 352)

#define CKQ_BLOCK                                                                                                 \
    "ldp q0, q1, [%[a]], #32\n\t"                                                                                 \
    "ldp q2, q3, [%[a]], #32\n\t"                                                                                 \
    "ldp q4, q5, [%[a]], #32\n\t" CKQ_GROUP(0) CKQ_GROUP(1) CKQ_GROUP(2) CKQ_GROUP(3)

/// sums[r][j] = from[r][j] + Σ over the packed groups of A'[r]·B[j] for one panel (`from`: `sums`, or −offset[j] in
/// every row for the first values of k): the `groups` groups of 4 k as blocks of 16 k (two per pass of the loop),
/// then the last groups % 4 one by one (pack_a's order; B advances 64 bytes a group). In assembly so that the loads
/// advance their own pointers (the 4×16 intrinsics loop spent 8 instructions per 16 k on addresses and counters).
/// Per 16 k: 3 ldp of A, 8 of B, 96 sdot, and a subs and a branch per 32 k.
TARGET INLINE void product(int variant, const uint8_t *a, const int8_t *b, size_t groups, const int32_t (*from)[NR],
                           int32_t (*sums)[NR]) {
    (void)variant; // one loop (sdot's 32-bit sums hold any s8 product)
    size_t blocks = groups / 4, tail = groups % 4;
    __asm__ volatile(CKQ_SUMS(CKQ_ROW_PAIR)
                     "tbz %[n], #0, 5f\n\t" CKQ_BLOCK
                     "\n"
                     "5:\n\t"
                     "lsr %[n], %[n], #1\n\t"
                     "cbz %[n], 2f\n"
                     "1:\n\t" CKQ_BLOCK CKQ_BLOCK
                     "subs %[n], %[n], #1\n\t"
                     "b.ne 1b\n"
                     "2:\n\t"
                     "cbz %[t], 4f\n"
                     "3:\n\t"
                     "ldp s0, s1, [%[a]], #8\n\t"
                     "ldp s2, s3, [%[a]], #8\n\t"
                     "ldp s4, s5, [%[a]], #8\n\t" CKQ_GROUP(0)
                     "subs %[t], %[t], #1\n\t"
                     "b.ne 3b\n"
                     "4:\n\t" CKQ_SUMS(CKQ_ROW_PAIR_ST)
                     : [a] "+r"(a), [b] "+r"(b), [n] "+r"(blocks), [t] "+r"(tail)
                     : [from] "r"(from), [s] "r"(sums)
                     : "cc", "memory", "v0", "v1", "v2", "v3", "v4", "v5", "v6", "v7", "v8", "v9", "v10", "v11", "v12",
                       "v13", "v14", "v15", "v16", "v17", "v18", "v19", "v20", "v21", "v22", "v23", "v24", "v25",
                       "v26", "v27", "v28", "v29", "v30", "v31");
}

#define CKQ_A_BYTES 1
#include "qgemm_driver_neon.h"
#undef CKQ_A_BYTES

// The set's entry: the few-columns product or the tiles.
TARGET static void gemm_entry(size_t m, size_t n, size_t k, const uint8_t *a, size_t lda, const void *packed_b,
                              const ck_qgemm_epilogue *ep, void *c, size_t ldc) {
    if (n <= CKQ_FEW_NEON) ckq_few_neondot_gemm(m, n, k, a, lda, packed_b, ep, c, ldc);
    else gemm_loop(0, m, n, k, a, lda, packed_b, ep, c, ldc);
}

const ck_qgemm_kernels ckq_neondot_6x16c4 = {
    .name = "neondot-6x16c4",
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
