// int8 GEMM for AArch64 cores without the dot product (Cortex-A72, A53): a 2×32 tile of int32
// sums in 16 q registers, fed by 8-bit widening multiplies (smull/smull2) of pairs of k.
//
// Activations are flipped to s8 (a XOR 0x80 = a − 128; the set reports a_shift = 128 and the
// caller folds 128·Σb into the offsets). B is packed as pairs of k per column, so adjacent bytes
// of a B register hold one output column's k and k+1, and A's 2-byte pair of a row is broadcast
// over the register (dup by 16-bit lane). smull then gives 8 int16 products (4 columns × 2 k),
// smlal adds the next pair's products into the same lanes, and sadalp adds neighbouring int16
// lanes (one column's two k) into the int32 sums: 16 multiply-accumulates per smull + smlal +
// sadalp, against 4 per smlal by lane in 16-bit lanes (neon-4x16, the set this replaced).
//
// Why that is exact only without −128 in B: a product (a − 128)·b lies in [−16256, 16256] when
// b ≥ −127, so two fit an int16 lane (|sum| ≤ 32512); with b = −128 one product can be 16384
// and two 32768, one past int16. The project's quantizers write weights in [−127, 127] and the
// attention's keys and values in [−127, 127] too, but a weight file made elsewhere may hold −128:
// `pack` records whether B holds −128 in a header, and such a matrix runs the same tile with a
// sadalp after every smull (each lane then holds a single product, exact for every s8 b: 16 MACs
// per 4 instructions, as many as neon-4x16's smlal by lane).
// The header's flag is per matrix: the engine's own weights, keys and values all take the paired loop.
//
// Why 2×32: a broadcast of A serves every column of the tile, so wider tiles need fewer; 16
// accumulators (2 rows × 32 columns), the 2 rows' A registers (16 k each, flipped once: one load,
// one eor and 8 dups per row per 16 k), 4 broadcasts (both rows' two pairs of k), 4 B registers
// (one half's two pairs of k for 16 columns) and 4 products fit the 32 registers. Per 16 k of a
// tile: 192 multiply instructions for 1024 multiply-accumulates, plus 20 for A, 16 loads of B and
// 3 of loop: 0.226 instructions per MAC (4×16: 0.237, its A 40; 1×64 would be 0.231, its B loads
// 32; neon-4x16: ~0.29). The stores go a
// half (16 columns) at a time, those of the other 16-column sets. Why the loop over 16 k is
// assembly (below): see there.
//
// Measured with Tests/ARM64/cost.sh's gemm step (all of SegFormer-b0's int8 GEMMs at 256², weights
// in [−127, 127]; guest instructions under qemu-user -cpu cortex-a72, not time on a board):
//   neon-4x16 (16-bit smlal by lane, int16 B; the set this replaced)              214.6 M
//   4×16 of this scheme, the loop with intrinsics (clang spilled, see below)      215.0 M
//     the same with empty-asm register pins on the accumulators                   198.2 M
//   4×16, the loop in assembly                                                    182.8 M
//   2×32, the loop in assembly (this set)                                         177.7 M
//   2×32 on weights with −128 (every matrix on the single-product loop)           214.0 M (4×16: 219.7)
// B takes half neon-4x16's memory (int8 instead of int16). A whole inference of the demo MTLSegFormer
// (Tests/ARM64/inference_cost.sh, cortex-a72): 834.6 M with neon-4x16, 713.1 M with 4×16, 697.9 M.
#if defined(__aarch64__)
#include "qgemm_few_neon.h"
#include "qgemm_internal.h"

#include <arm_neon.h>

#pragma clang fp contract(off)
#pragma STDC FP_CONTRACT OFF

#define TARGET
#define INLINE static inline __attribute__((always_inline))

enum { MR = 2, NR = 32, NB = 8, HALVES = NR / 16 };

/// Bytes before the panels: an int32 at 0 says whether B holds −128 (then the single-product
/// tile runs); 64 keeps the panels 64-byte aligned.
enum { HEADER = 64 };

// Layout after the header: panels of NR columns; inside, for each group of 4 k up to roundup(k, 4),
// for each half (columns 0–15, 16–31), its two pairs of k, each 16 columns × 2 bytes:
// byte (panel, g, h, t, jj, u) = B[panel·NR + 16·h + jj][4·g + 2·t + u], zero outside B. A panel is
// roundup(k, 4)·NR bytes, the stride qgemm_driver.h assumes.
static size_t packed_size(size_t n, size_t k) { return HEADER + ckq_round_up(n, NR) * ckq_round_up(k, 4); }

static void pack(const int8_t *b, size_t n, size_t k, size_t ldb, void *packed) {
    int8_t *out = (int8_t *)packed + HEADER;
    const size_t kpad = ckq_round_up(k, 4);
    int32_t has_min = 0;
    for (size_t j0 = 0; j0 < n; j0 += NR)
        for (size_t kk = 0; kk < kpad; kk += 4)
            for (size_t h = 0; h < HALVES; h++)
                for (size_t t = 0; t < 4; t += 2)
                    for (size_t jj = 0; jj < 16; jj++)
                        for (size_t u = 0; u < 2; u++) {
                            const size_t j = j0 + 16 * h + jj, kt = kk + t + u;
                            const int8_t v = j < n && kt < k ? b[j * ldb + kt] : 0;
                            has_min |= v == INT8_MIN;
                            *out++ = v;
                        }
    memset(packed, 0, HEADER);
    memcpy(packed, &has_min, sizeof has_min);
}

#include "qgemm_store_neon.h"

/// Adds two pairs of k of 4 columns into `acc`: a0·b0 + a1·b1 (8-bit lanes, products in 16-bit lanes,
/// neighbours summed into 32). `paired`: both products in one int16 lane (B without −128), else each
/// product widened on its own.
TARGET INLINE int32x4_t mac_lo(int paired, int32x4_t acc, int8x16_t a0, int8x16_t b0, int8x16_t a1, int8x16_t b1) {
    int16x8_t t = vmull_s8(vget_low_s8(a0), vget_low_s8(b0));
    if (paired) return vpadalq_s16(acc, vmlal_s8(t, vget_low_s8(a1), vget_low_s8(b1)));
    return vpadalq_s16(vpadalq_s16(acc, t), vmull_s8(vget_low_s8(a1), vget_low_s8(b1)));
}
TARGET INLINE int32x4_t mac_hi(int paired, int32x4_t acc, int8x16_t a0, int8x16_t b0, int8x16_t a1, int8x16_t b1) {
    int16x8_t t = vmull_high_s8(a0, b0);
    if (paired) return vpadalq_s16(acc, vmlal_high_s8(t, a1, b1));
    return vpadalq_s16(vpadalq_s16(acc, t), vmull_high_s8(a1, b1));
}

// The loop over 16 k at a time, in assembly. Written with intrinsics (CKQ_PAIRS below, which still
// runs the last 4–12 k), clang's scheduler put all the broadcasts and products of 16 k in flight at
// once and spilled accumulators and A registers to the stack inside the loop: as many instructions
// as neon-4x16 (table above). Here the registers are fixed: A rows in v0–v1 (16 k each, flipped),
// row 0's broadcasts of two pairs of k in v8–v9, row 1's in v2–v3, B in v4–v7 (one half's two
// pairs: v4, v5 the first pair's columns 0–7 and 8–15 of the half, v6, v7 the second's), the four
// products of a row in v10–v13, the 16 accumulators in registers clang picks (operands, so they
// stay in registers across the loop).
#define CKQ_ROW(D0, D1, C0, C1, C2, C3)                                                                            \
    "smull v10.8h, " D0 ".8b, v4.8b\n"                                                                                \
    "smull2 v11.8h, " D0 ".16b, v4.16b\n"                                                                             \
    "smull v12.8h, " D0 ".8b, v5.8b\n"                                                                                \
    "smull2 v13.8h, " D0 ".16b, v5.16b\n"                                                                             \
    "smlal v10.8h, " D1 ".8b, v6.8b\n"                                                                                \
    "smlal2 v11.8h, " D1 ".16b, v6.16b\n"                                                                             \
    "smlal v12.8h, " D1 ".8b, v7.8b\n"                                                                                \
    "smlal2 v13.8h, " D1 ".16b, v7.16b\n"                                                                             \
    "sadalp %[" C0 "].4s, v10.8h\n"                                                                               \
    "sadalp %[" C1 "].4s, v11.8h\n"                                                                               \
    "sadalp %[" C2 "].4s, v12.8h\n"                                                                               \
    "sadalp %[" C3 "].4s, v13.8h\n"
// The same for a B with −128: a sadalp after every smull.
#define CKQ_ROW_SINGLE(D0, D1, C0, C1, C2, C3)                                                                     \
    "smull v10.8h, " D0 ".8b, v4.8b\n"                                                                                \
    "smull2 v11.8h, " D0 ".16b, v4.16b\n"                                                                             \
    "smull v12.8h, " D0 ".8b, v5.8b\n"                                                                                \
    "smull2 v13.8h, " D0 ".16b, v5.16b\n"                                                                             \
    "sadalp %[" C0 "].4s, v10.8h\n"                                                                               \
    "sadalp %[" C1 "].4s, v11.8h\n"                                                                               \
    "sadalp %[" C2 "].4s, v12.8h\n"                                                                               \
    "sadalp %[" C3 "].4s, v13.8h\n"                                                                               \
    "smull v10.8h, " D1 ".8b, v6.8b\n"                                                                                \
    "smull2 v11.8h, " D1 ".16b, v6.16b\n"                                                                             \
    "smull v12.8h, " D1 ".8b, v7.8b\n"                                                                                \
    "smull2 v13.8h, " D1 ".16b, v7.16b\n"                                                                             \
    "sadalp %[" C0 "].4s, v10.8h\n"                                                                               \
    "sadalp %[" C1 "].4s, v11.8h\n"                                                                               \
    "sadalp %[" C2 "].4s, v12.8h\n"                                                                               \
    "sadalp %[" C3 "].4s, v13.8h\n"
#define CKQ_PAIRS_ASM(ROW, L0, L1)                                                                                 \
    "dup v8.8h, v0.h[" #L0 "]\n"                                                                                  \
    "dup v9.8h, v0.h[" #L1 "]\n"                                                                                  \
    "dup v2.8h, v1.h[" #L0 "]\n"                                                                                  \
    "dup v3.8h, v1.h[" #L1 "]\n"                                                                                  \
    "ldp q4, q5, [%[bp]], #32\n"                                                                                  \
    "ldp q6, q7, [%[bp]], #32\n"                                                                                  \
    ROW("v8", "v9", "c00", "c01", "c02", "c03")                                                                    \
    ROW("v2", "v3", "c10", "c11", "c12", "c13")                                                                    \
    "ldp q4, q5, [%[bp]], #32\n"                                                                                  \
    "ldp q6, q7, [%[bp]], #32\n"                                                                                  \
    ROW("v8", "v9", "c04", "c05", "c06", "c07")                                                                    \
    ROW("v2", "v3", "c14", "c15", "c16", "c17")
#define CKQ_K16_ASM(ROW)                                                                                           \
    __asm__ volatile("1:\n"                                                                                       \
                     "ldr q0, [%[a0], %[kk]]\n"                                                                   \
                     "ldr q1, [%[a1], %[kk]]\n"                                                                   \
                     "add %[kk], %[kk], #16\n"                                                                    \
                     "eor v0.16b, v0.16b, %[flip].16b\n"                                                          \
                     "eor v1.16b, v1.16b, %[flip].16b\n"                                                          \
                     CKQ_PAIRS_ASM(ROW, 0, 1) CKQ_PAIRS_ASM(ROW, 2, 3) CKQ_PAIRS_ASM(ROW, 4, 5)                    \
                     CKQ_PAIRS_ASM(ROW, 6, 7)                                                                      \
                     "cmp %[kk], %[kend]\n"                                                                       \
                     "b.lo 1b\n"                                                                                  \
                     : [c00] "+w"(acc[0][0]), [c01] "+w"(acc[0][1]), [c02] "+w"(acc[0][2]), [c03] "+w"(acc[0][3]), \
                       [c04] "+w"(acc[0][4]), [c05] "+w"(acc[0][5]), [c06] "+w"(acc[0][6]), [c07] "+w"(acc[0][7]), \
                       [c10] "+w"(acc[1][0]), [c11] "+w"(acc[1][1]), [c12] "+w"(acc[1][2]), [c13] "+w"(acc[1][3]), \
                       [c14] "+w"(acc[1][4]), [c15] "+w"(acc[1][5]), [c16] "+w"(acc[1][6]), [c17] "+w"(acc[1][7]), \
                       [bp] "+r"(bp), [kk] "+r"(kk)                                                                \
                     : [a0] "r"(ar[0]), [a1] "r"(ar[1]), [kend] "r"(kend), [flip] "w"(flip)                        \
                     : "v0", "v1", "v2", "v3", "v4", "v5", "v6", "v7", "v8", "v9", "v10", "v11", "v12", "v13",     \
                       "cc", "memory")

/// acc += the products of k = 0 … kend − 1 (kend a multiple of 16, > 0); *bpp moves past them.
TARGET INLINE void ckq_k16(int paired, int32x4_t acc[MR][4 * HALVES], const uint8_t *const ar[MR], size_t kend,
                           const int8_t **bpp, uint8x16_t flip) {
    const int8_t *bp = *bpp;
    size_t kk = 0;
    if (paired) CKQ_K16_ASM(CKQ_ROW);
    else CKQ_K16_ASM(CKQ_ROW_SINGLE);
    *bpp = bp;
}
#undef CKQ_K16_ASM
#undef CKQ_PAIRS_ASM
#undef CKQ_ROW_SINGLE
#undef CKQ_ROW

TARGET INLINE void tile_any(int paired, size_t mvalid, size_t nvalid, size_t kq, const uint8_t *a, size_t lda,
                            const int8_t *bp, const ckq_panel_params *p, const ck_qgemm_epilogue *ep,
                            ck_qgemm_output output, char *c, size_t ldc_bytes) {
    const size_t esize = output == CK_QGEMM_OUT_U8 ? 1 : 4;
    // Ragged m: the missing rows repeat the last real one (only m rows are readable).
    const uint8_t *ar[MR];
    for (size_t r = 0; r < MR; r++) ar[r] = a + (r < mvalid ? r : mvalid - 1) * lda;
    const uint8x16_t flip = vdupq_n_u8(0x80);

    int32x4_t acc[MR][4 * HALVES];
    for (size_t r = 0; r < MR; r++)
        for (size_t q = 0; q < 4 * HALVES; q++) acc[r][q] = vdupq_n_s32(0);
    // Pairs `lane` and lane + 1 of the rows' flipped A registers av[] (4 k): 64 bytes of B per half.
#define CKQ_PAIRS(lane)                                                                                            \
    do {                                                                                                           \
        for (size_t h = 0; h < HALVES; h++) {                                                                      \
            const int8x16_t b0 = vld1q_s8(bp), b1 = vld1q_s8(bp + 16), b2 = vld1q_s8(bp + 32),                     \
                            b3 = vld1q_s8(bp + 48);                                                                \
            bp += 64;                                                                                              \
            for (size_t r = 0; r < MR; r++) {                                                                      \
                const int8x16_t a0 = vreinterpretq_s8_s16(vdupq_laneq_s16(av[r], lane));                           \
                const int8x16_t a1 = vreinterpretq_s8_s16(vdupq_laneq_s16(av[r], lane + 1));                       \
                int32x4_t *q = acc[r] + 4 * h;                                                                     \
                q[0] = mac_lo(paired, q[0], a0, b0, a1, b2);                                                       \
                q[1] = mac_hi(paired, q[1], a0, b0, a1, b2);                                                       \
                q[2] = mac_lo(paired, q[2], a0, b1, a1, b3);                                                       \
                q[3] = mac_hi(paired, q[3], a0, b1, a1, b3);                                                       \
            }                                                                                                      \
        }                                                                                                          \
    } while (0)
    size_t kk = 0;
    const size_t kpad = kq * 4;
    // 16 k at a time (16 bytes of each A row, flipped once): stays inside roundup(k, 4).
    if (kpad >= 16) {
        kk = kpad / 16 * 16;
        ckq_k16(paired, acc, ar, kk, &bp, flip);
    }
    if (kk + 8 <= kpad) {
        int16x8_t av[MR];
        for (size_t r = 0; r < MR; r++)
            av[r] = vreinterpretq_s16_u8(veorq_u8(vcombine_u8(vld1_u8(ar[r] + kk), vdup_n_u8(0)), flip));
        CKQ_PAIRS(0); CKQ_PAIRS(2);
        kk += 8;
    }
    if (kk < kpad) { // the last 4 (A is readable only up to roundup(k, 4))
        int16x8_t av[MR];
        for (size_t r = 0; r < MR; r++)
            av[r] = vreinterpretq_s16_u8(veorq_u8(vreinterpretq_u8_u32(vdupq_n_u32(ckq_load_u32(ar[r] + kk))), flip));
        CKQ_PAIRS(0);
    }
#undef CKQ_PAIRS
    // One half (16 columns) at a time: its epilogue parameters, then its rows.
#pragma clang loop unroll(full)
    for (size_t h = 0; h < HALVES; h++) {
        if (16 * h >= nvalid) break;
        ckq_epi_neon e;
        ckq_epi_neon_load_at(&e, p, ep, 16 * h);
        const size_t hvalid = nvalid - 16 * h;
#pragma clang loop unroll(full)
        for (size_t r = 0; r < MR; r++) {
            if (r >= mvalid) continue;
            char *cr = c + r * ldc_bytes + 16 * h * esize;
            const int32x4_t *q = acc[r] + 4 * h;
            if (hvalid >= 16) {
                if (output == CK_QGEMM_OUT_U8) ckq_store16_u8_neon(q, &e, (uint8_t *)cr);
                else ckq_store16_f32_neon(q, &e, output == CK_QGEMM_OUT_F32_ACCUMULATE, (float *)cr);
                continue;
            }
            for (int g = 0; g < 4; g++) {
                size_t valid = hvalid > 4 * (size_t)g ? (hvalid - 4 * g < 4 ? hvalid - 4 * g : 4) : 0;
                ckq_store4_neon(q[g], &e, g, output, cr + 4 * g * esize, valid);
            }
        }
    }
}

// The driver twice, once per tile, each specialised (the driver names its functions tile,
// gemm_output and gemm; the defines below rename them per copy).
#define CKQ_PACKED_T int8_t
TARGET INLINE void tile_paired(size_t mvalid, size_t nvalid, size_t kq, const uint8_t *a, size_t lda, const int8_t *bp,
                               const ckq_panel_params *p, const ck_qgemm_epilogue *ep, ck_qgemm_output output, char *c,
                               size_t ldc_bytes) {
    tile_any(1, mvalid, nvalid, kq, a, lda, bp, p, ep, output, c, ldc_bytes);
}
TARGET INLINE void tile_single(size_t mvalid, size_t nvalid, size_t kq, const uint8_t *a, size_t lda, const int8_t *bp,
                               const ckq_panel_params *p, const ck_qgemm_epilogue *ep, ck_qgemm_output output, char *c,
                               size_t ldc_bytes) {
    tile_any(0, mvalid, nvalid, kq, a, lda, bp, p, ep, output, c, ldc_bytes);
}
#define tile tile_paired
#define gemm_output gemm_output_paired
#define gemm gemm_paired
#include "qgemm_driver.h"
#undef tile
#undef gemm_output
#undef gemm
#define tile tile_single
#define gemm_output gemm_output_single
#define gemm gemm_single
#include "qgemm_driver.h"
#undef tile
#undef gemm_output
#undef gemm

static void gemm(size_t m, size_t n, size_t k, const uint8_t *a, size_t lda, const void *packed_b,
                 const ck_qgemm_epilogue *ep, void *c, size_t ldc) {
    int32_t has_min;
    memcpy(&has_min, packed_b, sizeof has_min);
    const int8_t *panels = (const int8_t *)packed_b + HEADER;
    if (has_min) gemm_single(m, n, k, a, lda, panels, ep, c, ldc);
    else gemm_paired(m, n, k, a, lda, panels, ep, c, ldc);
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
    if (n <= CKQ_FEW_NEON) ckq_few_neon_gemm(m, n, k, a, lda, packed_b, ep, c, ldc);
    else gemm(m, n, k, a, lda, packed_b, ep, c, ldc);
}

const ck_qgemm_kernels ckq_neon_2x32c2 = {
    .name = "neon-2x32c2",
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
