// int8 GEMM with AVX-512 VNNI: an 8×32 tile of int32 sums in 16 zmm registers.
// Per group of 4 k: two 64-byte loads of packed B (32 columns × 4 k) and, per row,
// a broadcast of 4 bytes of A; vpdpbusd multiplies u8 A by s8 B exactly (no
// saturation) and adds into int32. 16 independent accumulators hide its latency
// at two instructions per cycle. The epilogue is fused: the tile never leaves registers.
#if defined(__x86_64__)
#include "qgemm_internal.h"

#include <immintrin.h>

#pragma clang fp contract(off)
#pragma STDC FP_CONTRACT OFF

#define TARGET __attribute__((target("avx512f,avx512bw,avx512vnni")))
#define INLINE static inline __attribute__((always_inline))

enum { MR = 8, NR = 32, NB = 16 }; // 12×32 measured no faster // NB: panels per block, ~k·512 bytes of B kept hot while A streams

// A product of at most FEW columns (a classifier of a few classes) keeps B as rows of k bytes padded to 64,
// and takes per row and column dot products of 64 bytes at a time (gemm_few below): in the c4 tile, each
// vpdpbusd would compute 16 columns for FEW.
enum { FEW = 4 };

static size_t few_row_bytes(size_t k) { return ckq_round_up(k, 64); }

static size_t packed_size(size_t n, size_t k) { return n <= FEW ? n * few_row_bytes(k) : ckq_packed_size_c4(n, k, NR); }

static void pack(const int8_t *b, size_t n, size_t k, size_t ldb, void *packed) {
    if (n > FEW) {
        ckq_pack_c4(b, n, k, ldb, NR, packed);
        return;
    }
    int8_t *rows = packed;
    memset(rows, 0, n * few_row_bytes(k));
    for (size_t j = 0; j < n; j++) memcpy(rows + j * few_row_bytes(k), b + j * ldb, k);
}

// The exact epilogue with separate mul and add, on 16 columns.
TARGET INLINE __m512 value16(__m512i acc, __m512i off, __m512 scale, __m512 bias, int relu) {
    __m512 v = _mm512_add_ps(_mm512_mul_ps(_mm512_cvtepi32_ps(_mm512_sub_epi32(acc, off)), scale), bias);
    return relu ? _mm512_max_ps(v, _mm512_setzero_ps()) : v;
}

// v·inv rounded to nearest even, plus the zero point, as int32. Only the upper bound
// is clamped in float (cvtps turns anything ≥ 2³¹ into INT_MIN); below, the signed
// saturating packs do the [0, 255] clamp, which equals the scalar definition.
TARGET INLINE __m512i to_u8_lanes(__m512 v, const ck_qgemm_epilogue *ep) {
    __m512 w = _mm512_mul_ps(v, _mm512_set1_ps(ep->out_scale_inv));
    w = _mm512_min_ps(_mm512_set1_ps((float)(255 - ep->out_zero_point)), w); // NaN stays NaN → INT_MIN → 0
    return _mm512_add_epi32(_mm512_cvtps_epi32(w), _mm512_set1_epi32(ep->out_zero_point));
}

// One row of the tile (32 columns, `mask` bit j = column j valid).
TARGET INLINE void store_row(__m512 v0, __m512 v1, const ck_qgemm_epilogue *ep, ck_qgemm_output output, void *c,
                             uint32_t mask) {
    float *cf = c;
    __mmask16 m0 = (__mmask16)mask, m1 = (__mmask16)(mask >> 16);
    if (output == CK_QGEMM_OUT_F32) {
        if (mask == 0xFFFFFFFFu) {
            _mm512_storeu_ps(cf, v0);
            _mm512_storeu_ps(cf + 16, v1);
        } else {
            _mm512_mask_storeu_ps(cf, m0, v0);
            _mm512_mask_storeu_ps(cf + 16, m1, v1);
        }
    } else if (output == CK_QGEMM_OUT_F32_ACCUMULATE) {
        if (mask == 0xFFFFFFFFu) { // masked stores are slower on AMD; use them only on the ragged edge
            _mm512_storeu_ps(cf, _mm512_add_ps(_mm512_loadu_ps(cf), v0));
            _mm512_storeu_ps(cf + 16, _mm512_add_ps(_mm512_loadu_ps(cf + 16), v1));
        } else {
            _mm512_mask_storeu_ps(cf, m0, _mm512_add_ps(_mm512_maskz_loadu_ps(m0, cf), v0));
            _mm512_mask_storeu_ps(cf + 16, m1, _mm512_add_ps(_mm512_maskz_loadu_ps(m1, cf + 16), v1));
        }
    } else {
        // int32 → int16 → u8 with signed saturation (the clamp), then one dword
        // permute puts the 32 bytes in order.
        __m512i w = _mm512_packs_epi32(to_u8_lanes(v0, ep), to_u8_lanes(v1, ep));
        w = _mm512_packus_epi16(w, w);
        w = _mm512_permutexvar_epi32(_mm512_setr_epi32(0, 4, 8, 12, 1, 5, 9, 13, 0, 0, 0, 0, 0, 0, 0, 0), w);
        if (mask == 0xFFFFFFFFu)
            _mm256_storeu_si256(c, _mm512_castsi512_si256(w));
        else
            _mm512_mask_storeu_epi8(c, (__mmask64)mask, w);
    }
}

// C tile at (i0, j0) for one panel; `output` is a constant at each call site so the
// store code is specialised.
TARGET INLINE void tile(size_t mvalid, size_t nvalid, size_t kq, const uint8_t *a, size_t lda, const int8_t *bp,
                        const ckq_panel_params *p, const ck_qgemm_epilogue *ep, ck_qgemm_output output, char *c,
                        size_t ldc_bytes) {
    // Ragged m: the missing rows repeat the last real one (only m rows are readable).
    const uint8_t *ar[MR];
    for (size_t r = 0; r < MR; r++) ar[r] = a + (r < mvalid ? r : mvalid - 1) * lda;

    __m512i acc[MR][2];
    for (size_t r = 0; r < MR; r++) acc[r][0] = acc[r][1] = _mm512_setzero_si512();
    if (nvalid > 16) {
        for (size_t g = 0; g < kq; g++) {
            __m512i b0 = _mm512_load_si512(bp);
            __m512i b1 = _mm512_load_si512(bp + 64);
            bp += 128;
            for (size_t r = 0; r < MR; r++) {
                __m512i av = _mm512_set1_epi32((int)ckq_load_u32(ar[r] + 4 * g));
                acc[r][0] = _mm512_dpbusd_epi32(acc[r][0], av, b0);
                acc[r][1] = _mm512_dpbusd_epi32(acc[r][1], av, b1);
            }
        }
    } else {
        // At most 16 columns (a classifier of a few classes, a ragged last panel): the second
        // half of the panel is zero, and its products would only add zeros.
        for (size_t g = 0; g < kq; g++) {
            __m512i b0 = _mm512_load_si512(bp);
            bp += 128;
            for (size_t r = 0; r < MR; r++)
                acc[r][0] = _mm512_dpbusd_epi32(acc[r][0], _mm512_set1_epi32((int)ckq_load_u32(ar[r] + 4 * g)), b0);
        }
    }

    __m512i off0 = _mm512_loadu_si512(p->offset), off1 = _mm512_loadu_si512(p->offset + 16);
    __m512 sc0 = _mm512_loadu_ps(p->scale), sc1 = _mm512_loadu_ps(p->scale + 16);
    __m512 bi0 = _mm512_loadu_ps(p->bias), bi1 = _mm512_loadu_ps(p->bias + 16);
    uint32_t mask = nvalid >= 32 ? 0xFFFFFFFFu : (1u << nvalid) - 1;
    // Fully unrolled so that acc[] stays in registers (a loop with a break would spill it).
#pragma clang loop unroll(full)
    for (size_t r = 0; r < MR; r++) {
        if (r >= mvalid) continue;
        store_row(value16(acc[r][0], off0, sc0, bi0, ep->relu), value16(acc[r][1], off1, sc1, bi1, ep->relu), ep,
                  output, c + r * ldc_bytes, mask);
    }
}

#define CKQ_PACKED_T int8_t
#include "qgemm_driver.h"

// The few-columns product: 4 rows at a time, each row's and column's 32-bit sums in the 16 lanes of one zmm
// (a dword lane per group of 4 k), added across lanes at the end. The sums are exact, so the order is free;
// the epilogue is the scalar definition's (this file contracts no multiply-add).
TARGET static void gemm_few(size_t m, size_t n, size_t k, const uint8_t *a, size_t lda, const int8_t *b,
                            const ck_qgemm_epilogue *ep, void *c, size_t ldc) {
    enum { ROWS = 4 };
    const size_t row_bytes = few_row_bytes(k), readable = ckq_round_up(k, 4); // A is readable up to k rounded to 4
    for (size_t i0 = 0; i0 < m; i0 += ROWS) {
        const size_t rows = m - i0 < ROWS ? m - i0 : ROWS;
        // Missing rows repeat the last real one (only m rows are readable); their sums are not stored.
        const uint8_t *ar[ROWS];
        for (size_t r = 0; r < ROWS; r++) ar[r] = a + (i0 + (r < rows ? r : rows - 1)) * lda;
        __m512i acc[ROWS][FEW];
        for (size_t r = 0; r < ROWS; r++)
            for (size_t j = 0; j < FEW; j++) acc[r][j] = _mm512_setzero_si512();
        for (size_t k0 = 0; k0 < readable; k0 += 64) {
            const __mmask64 mask = readable - k0 >= 64 ? ~(__mmask64)0 : (((__mmask64)1 << (readable - k0)) - 1);
            __m512i bj[FEW];
            for (size_t j = 0; j < FEW; j++) bj[j] = j < n ? _mm512_load_si512(b + j * row_bytes + k0) : _mm512_setzero_si512();
            for (size_t r = 0; r < ROWS; r++) {
                // Bytes of A past k (up to the group of 4) meet B's zero padding.
                const __m512i av = _mm512_maskz_loadu_epi8(mask, ar[r] + k0);
                for (size_t j = 0; j < FEW; j++)
                    if (j < n) acc[r][j] = _mm512_dpbusd_epi32(acc[r][j], av, bj[j]);
            }
        }
        for (size_t r = 0; r < rows; r++)
            for (size_t j = 0; j < n; j++) {
                const float v = ckq_value(_mm512_reduce_add_epi32(acc[r][j]), ep->offset[j], ep->scale[j],
                                          ep->bias ? ep->bias[j] : 0.0f, ep->relu);
                ckq_store(ep, c, ldc, i0 + r, j, v);
            }
    }
}

// The set's entry: the few-columns product or the tiles.
TARGET static void gemm_entry(size_t m, size_t n, size_t k, const uint8_t *a, size_t lda, const void *packed_b,
                              const ck_qgemm_epilogue *ep, void *c, size_t ldc) {
    if (n <= FEW) gemm_few(m, n, k, a, lda, packed_b, ep, c, ldc);
    else gemm(m, n, k, a, lda, packed_b, ep, c, ldc);
}

const ck_qgemm_kernels ckq_avx512vnni_8x32c4 = {
    .name = "avx512vnni-8x32c4",
    .isa = "avx512vnni",
    .mr = MR,
    .nr = NR,
    .k_group = 4,
    .a_shift = 0,
    .packed_size = packed_size,
    .pack = pack,
    .gemm = gemm_entry,
};
#endif
