// int8 GEMM with AVX-VNNI (VEX vpdpbusd on ymm, for CPUs without AVX-512): a
// 4×16 tile of int32 sums in 8 ymm registers; per group of 4 k, two 32-byte loads
// of packed B and one 4-byte broadcast of A per row. Only 16 ymm registers exist,
// so the tile stays small enough that accumulators, B and A never spill.
#if defined(__x86_64__)
#include "qgemm_epilogue_avx2.h"

#pragma clang fp contract(off)
#pragma STDC FP_CONTRACT OFF

#define TARGET __attribute__((target("avx2,avxvnni")))
#define INLINE static inline __attribute__((always_inline))

enum { MR = 4, NR = 16, NB = 32 }; // 6×16 (12 accumulators) measured no faster

static size_t packed_size(size_t n, size_t k) { return ckq_packed_size_c4(n, k, NR); }
static void pack(const int8_t *b, size_t n, size_t k, size_t ldb, void *packed) { ckq_pack_c4(b, n, k, ldb, NR, packed); }

TARGET INLINE void tile(size_t mvalid, size_t nvalid, size_t kq, const uint8_t *a, size_t lda, const int8_t *bp,
                        const ckq_panel_params *p, const ck_qgemm_epilogue *ep, ck_qgemm_output output, char *c,
                        size_t ldc_bytes) {
    // Ragged m: the missing rows repeat the last real one (only m rows are readable).
    const uint8_t *ar[MR];
    for (size_t r = 0; r < MR; r++) ar[r] = a + (r < mvalid ? r : mvalid - 1) * lda;

    __m256i acc[MR][2];
    for (size_t r = 0; r < MR; r++) acc[r][0] = acc[r][1] = _mm256_setzero_si256();
    for (size_t g = 0; g < kq; g++) {
        __m256i b0 = _mm256_load_si256((const __m256i *)bp);
        __m256i b1 = _mm256_load_si256((const __m256i *)(bp + 32));
        bp += 64;
        for (size_t r = 0; r < MR; r++) {
            __m256i av = _mm256_set1_epi32((int)ckq_load_u32(ar[r] + 4 * g));
            acc[r][0] = _mm256_dpbusd_avx_epi32(acc[r][0], av, b0);
            acc[r][1] = _mm256_dpbusd_avx_epi32(acc[r][1], av, b1);
        }
    }
    // Fully unrolled so that acc[] stays in registers (a loop with a break would spill it).
#pragma clang loop unroll(full)
    for (size_t r = 0; r < MR; r++)
        if (r < mvalid)
            ckq_avx2_store_row16(acc[r][0], acc[r][1], p->offset, p->scale, p->bias, ep, output, c + r * ldc_bytes,
                                 nvalid);
}

#define CKQ_PACKED_T int8_t
#include "qgemm_driver.h"

const ck_qgemm_kernels ckq_avxvnni_4x16c4 = {
    .name = "avxvnni-4x16c4",
    .isa = "avxvnni",
    .mr = MR,
    .nr = NR,
    .k_group = 4,
    .a_shift = 0,
    .packed_size = packed_size,
    .pack = pack,
    .gemm = gemm,
};
#endif
