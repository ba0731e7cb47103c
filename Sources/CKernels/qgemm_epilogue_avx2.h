#ifndef CKERNELS_QGEMM_EPILOGUE_AVX2_H
#define CKERNELS_QGEMM_EPILOGUE_AVX2_H
// The exact qgemm epilogue on one 16-column row (two ymm of int32 sums), shared by
// the AVX2 and AVX-VNNI sets. AVX2 has no byte masks: ragged float stores use
// vmaskmovps, ragged byte stores a small copy.
#include "qgemm_internal.h"

#include <immintrin.h>

#pragma clang fp contract(off)
#pragma STDC FP_CONTRACT OFF

#define CKQ_AVX2_INLINE static inline __attribute__((always_inline, target("avx2")))

CKQ_AVX2_INLINE __m256 ckq_avx2_value8(__m256i acc, const int32_t *offset, const float *scale, const float *bias,
                                       int relu) {
    __m256i d = _mm256_sub_epi32(acc, _mm256_loadu_si256((const __m256i *)offset));
    __m256 v = _mm256_add_ps(_mm256_mul_ps(_mm256_cvtepi32_ps(d), _mm256_loadu_ps(scale)), _mm256_loadu_ps(bias));
    return relu ? _mm256_max_ps(v, _mm256_setzero_ps()) : v;
}

// round_even(v·inv) + zp as int32. Only the upper bound is clamped in float (cvtps
// turns anything ≥ 2³¹ into INT_MIN); the signed saturating packs that follow do
// the [0, 255] clamp, which equals the scalar definition.
CKQ_AVX2_INLINE __m256i ckq_avx2_u8_lanes(__m256 v, const ck_qgemm_epilogue *ep) {
    __m256 w = _mm256_mul_ps(v, _mm256_set1_ps(ep->out_scale_inv));
    w = _mm256_min_ps(_mm256_set1_ps((float)(255 - ep->out_zero_point)), w); // NaN stays NaN → INT_MIN → 0
    return _mm256_add_epi32(_mm256_cvtps_epi32(w), _mm256_set1_epi32(ep->out_zero_point));
}

CKQ_AVX2_INLINE void ckq_avx2_store_f32x8(float *c, __m256 v, ck_qgemm_output output, size_t valid) {
    if (valid >= 8) {
        if (output == CK_QGEMM_OUT_F32_ACCUMULATE) v = _mm256_add_ps(_mm256_loadu_ps(c), v);
        _mm256_storeu_ps(c, v);
    } else if (valid > 0) {
        __m256i mask = _mm256_cmpgt_epi32(_mm256_set1_epi32((int)valid), _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7));
        if (output == CK_QGEMM_OUT_F32_ACCUMULATE) v = _mm256_add_ps(_mm256_maskload_ps(c, mask), v);
        _mm256_maskstore_ps(c, mask, v);
    }
}

/// Applies the epilogue to the 16 columns of one row and stores the first `valid` (1–16).
/// offset/scale/bias are readable for all 16 columns (ckq_panel_params).
CKQ_AVX2_INLINE void ckq_avx2_store_row16(__m256i acc0, __m256i acc1, const int32_t *offset, const float *scale,
                                          const float *bias, const ck_qgemm_epilogue *ep, ck_qgemm_output output,
                                          void *c, size_t valid) {
    __m256 v0 = ckq_avx2_value8(acc0, offset, scale, bias, ep->relu);
    __m256 v1 = ckq_avx2_value8(acc1, offset + 8, scale + 8, bias + 8, ep->relu);
    if (output != CK_QGEMM_OUT_U8) {
        ckq_avx2_store_f32x8(c, v0, output, valid);
        ckq_avx2_store_f32x8((float *)c + 8, v1, output, valid > 8 ? valid - 8 : 0);
        return;
    }
    // Per 128-bit lane the packs leave dwords [v0 0–3, v1 0–3, …] and [v0 4–7, v1 4–7, …];
    // one dword permute puts the 16 bytes in column order.
    __m256i w = _mm256_packs_epi32(ckq_avx2_u8_lanes(v0, ep), ckq_avx2_u8_lanes(v1, ep));
    w = _mm256_packus_epi16(w, w);
    w = _mm256_permutevar8x32_epi32(w, _mm256_setr_epi32(0, 4, 1, 5, 0, 0, 0, 0));
    if (valid >= 16) {
        _mm_storeu_si128((__m128i *)c, _mm256_castsi256_si128(w));
    } else {
        uint8_t bytes[16];
        _mm_storeu_si128((__m128i *)bytes, _mm256_castsi256_si128(w));
        memcpy(c, bytes, valid);
    }
}

#endif
