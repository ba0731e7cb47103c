// int8 GEMM with plain AVX2, exact: vpmaddubsw would saturate its int16 pair sums
// (255·127·2 > 32767), so B is packed pre-widened to int16 pairs ("c2") and A is
// widened in registers; vpmaddwd then gives exact int32 pair sums. A 4×16 tile in
// 8 ymm accumulators; per group of 4 k, four 32-byte loads of B and, per row, one
// 4-byte broadcast of A split by vpshufb into its two zero-extended u8 pairs.
#if defined(__x86_64__)
#include "qgemm_epilogue_avx2.h"

#pragma clang fp contract(off)
#pragma STDC FP_CONTRACT OFF

#define TARGET __attribute__((target("avx2")))
#define INLINE static inline __attribute__((always_inline))

enum { MR = 4, NR = 16, NB = 16 };

// Layout: panels of NR columns; per group g of 4 k, four 32-byte blocks [pair t][half h],
// each 8 columns × int16 pair: int16 (panel, g, t, h, jj, s) = B[panel·NR + 8h + jj][4g + 2t + s].
static size_t packed_size(size_t n, size_t k) { return ckq_round_up(n, NR) * ckq_round_up(k, 4) * 2; }

static void pack(const int8_t *b, size_t n, size_t k, size_t ldb, void *packed) {
    int16_t *out = packed;
    size_t kq = ckq_round_up(k, 4) / 4;
    for (size_t j0 = 0; j0 < n; j0 += NR)
        for (size_t g = 0; g < kq; g++)
            for (size_t t = 0; t < 2; t++)
                for (size_t h = 0; h < 2; h++)
                    for (size_t jj = 0; jj < 8; jj++)
                        for (size_t s = 0; s < 2; s++) {
                            size_t j = j0 + 8 * h + jj, kk = 4 * g + 2 * t + s;
                            *out++ = (j < n && kk < k) ? b[j * ldb + kk] : 0;
                        }
}

TARGET INLINE void tile(size_t mvalid, size_t nvalid, size_t kq, const uint8_t *a, size_t lda, const int16_t *bp,
                        const ckq_panel_params *p, const ck_qgemm_epilogue *ep, ck_qgemm_output output, char *c,
                        size_t ldc_bytes) {
    // Ragged m: the missing rows repeat the last real one (only m rows are readable).
    const uint8_t *ar[MR];
    for (size_t r = 0; r < MR; r++) ar[r] = a + (r < mvalid ? r : mvalid - 1) * lda;
    // Bytes a0 a1 a2 a3 of a broadcast dword → int16 pairs (a0, a1) and (a2, a3).
    const __m256i pair0 = _mm256_setr_epi8(0, -1, 1, -1, 0, -1, 1, -1, 0, -1, 1, -1, 0, -1, 1, -1, 0, -1, 1, -1, 0,
                                           -1, 1, -1, 0, -1, 1, -1, 0, -1, 1, -1);
    const __m256i pair1 = _mm256_setr_epi8(2, -1, 3, -1, 2, -1, 3, -1, 2, -1, 3, -1, 2, -1, 3, -1, 2, -1, 3, -1, 2,
                                           -1, 3, -1, 2, -1, 3, -1, 2, -1, 3, -1);

    __m256i acc[MR][2];
    for (size_t r = 0; r < MR; r++) acc[r][0] = acc[r][1] = _mm256_setzero_si256();
    for (size_t g = 0; g < kq; g++) {
        __m256i b00 = _mm256_load_si256((const __m256i *)bp);
        __m256i b01 = _mm256_load_si256((const __m256i *)(bp + 16));
        __m256i b10 = _mm256_load_si256((const __m256i *)(bp + 32));
        __m256i b11 = _mm256_load_si256((const __m256i *)(bp + 48));
        bp += 64;
        for (size_t r = 0; r < MR; r++) {
            __m256i q = _mm256_set1_epi32((int)ckq_load_u32(ar[r] + 4 * g));
            __m256i a0 = _mm256_shuffle_epi8(q, pair0), a1 = _mm256_shuffle_epi8(q, pair1);
            acc[r][0] = _mm256_add_epi32(acc[r][0], _mm256_madd_epi16(a0, b00));
            acc[r][1] = _mm256_add_epi32(acc[r][1], _mm256_madd_epi16(a0, b01));
            acc[r][0] = _mm256_add_epi32(acc[r][0], _mm256_madd_epi16(a1, b10));
            acc[r][1] = _mm256_add_epi32(acc[r][1], _mm256_madd_epi16(a1, b11));
        }
    }
    // Fully unrolled so that acc[] stays in registers (a loop with a break would spill it).
#pragma clang loop unroll(full)
    for (size_t r = 0; r < MR; r++)
        if (r < mvalid)
            ckq_avx2_store_row16(acc[r][0], acc[r][1], p->offset, p->scale, p->bias, ep, output, c + r * ldc_bytes,
                                 nvalid);
}

#define CKQ_PACKED_T int16_t
#include "qgemm_driver.h"

const ck_qgemm_kernels ckq_avx2_4x16c2 = {
    .name = "avx2-4x16c2",
    .isa = "avx2",
    .mr = MR,
    .nr = NR,
    .k_group = 4,
    .a_shift = 0,
    .packed_size = packed_size,
    .pack = pack,
    .gemm = gemm,
};
#endif
