// AVX-512 version of the attention softmax's exponentials (see ck_softmax_exp_u8 in
// ckernels_attention_q8.h); chosen by ops_dispatch.c.
#include "ops_dispatch.h"

#if defined(CK_HAVE_X86_KERNELS)
#include "vectors_avx512.h"

#include <math.h>

/// 255·2^t for t ≤ 0 (clamped at −126, where 2^t is still a normal float): t = n + f with
/// n an integer and |f| ≤ ½, 2^f by a degree-4 polynomial fitted for least relative
/// error (2.7e-6 in float; the portable version's e^x is good to ~1e-7), its
/// coefficients scaled by 255. At 255·2.7e-6 = 7e-4 of a step, the byte written differs
/// from the portable one only where 255·e lies that close to a rounding boundary, by 1.
/// Half the operations of the portable steps, which this loop was bound by.
static inline CK_AVX512 __m512 exp2_times255(__m512 t) {
    t = _mm512_max_ps(t, _mm512_set1_ps(-126.0f));
    const __m512 n = _mm512_roundscale_ps(t, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
    const __m512 f = _mm512_sub_ps(t, n);
    __m512 p = _mm512_set1_ps(255.0f * 0.009570101276040077f);
    p = _mm512_fmadd_ps(p, f, _mm512_set1_ps(255.0f * 0.05591786280274391f));
    p = _mm512_fmadd_ps(p, f, _mm512_set1_ps(255.0f * 0.240247443318367f));
    p = _mm512_fmadd_ps(p, f, _mm512_set1_ps(255.0f * 0.6931217908859253f));
    p = _mm512_fmadd_ps(p, f, _mm512_set1_ps(255.0f * 0.9999992847442627f));
    return _mm512_scalef_ps(p, n);
}

// Rows go 16 at a time: each row's max and sum are first kept lane-wise, and one transposing
// tree per group turns them into the 16 rows' values (the sums are whole numbers below 2²⁴,
// exact in float in any order), so no row ends on a chain of shuffles and a division.
CK_AVX512
void ck_softmax_exp_u8_avx512(const float *scores, size_t lds, size_t rows, size_t cols, uint8_t *out, size_t ldo,
                              float *inv_sums) {
    const __m512 ninf = _mm512_set1_ps(-INFINITY), log2e = _mm512_set1_ps(1.44269504088896341f);
    // Bytes by packing (vpmovdb to memory is slow on Zen 4/5): packus(packus(v0, v1),
    // packus(v2, v3)) holds, in 128-bit lane j, dword k = lane j of v_k; one permute
    // puts them in order. Values are in 0...255, so the saturating packs are exact.
    const __m512i order = _mm512_setr_epi32(0, 4, 8, 12, 1, 5, 9, 13, 2, 6, 10, 14, 3, 7, 11, 15);
    float maxima[16];
    __m512 lanes[16];
    for (size_t r0 = 0; r0 < rows; r0 += 16) {
        const size_t count = rows - r0 < 16 ? rows - r0 : 16;
        // Row maxima, four accumulators per row.
        for (size_t i = 0; i < count; i++) {
            const float *s = scores + (r0 + i) * lds;
            __m512 m0 = ninf, m1 = ninf, m2 = ninf, m3 = ninf;
            size_t c = 0;
            for (; c + 64 <= cols; c += 64) {
                m0 = _mm512_max_ps(m0, _mm512_loadu_ps(s + c));
                m1 = _mm512_max_ps(m1, _mm512_loadu_ps(s + c + 16));
                m2 = _mm512_max_ps(m2, _mm512_loadu_ps(s + c + 32));
                m3 = _mm512_max_ps(m3, _mm512_loadu_ps(s + c + 48));
            }
            for (; c < cols; c += 16) m0 = _mm512_max_ps(m0, _mm512_mask_loadu_ps(ninf, tail_mask(cols - c), s + c));
            lanes[i] = _mm512_max_ps(_mm512_max_ps(m0, m1), _mm512_max_ps(m2, m3));
        }
        for (size_t k = count; k < 16; k++) lanes[k] = lanes[0]; // rows past the last: not used
        _mm512_storeu_ps(maxima, transpose_max16(lanes));
        for (size_t i = 0; i < count; i++) {
            const float *s = scores + (r0 + i) * lds;
            uint8_t *q = out + (r0 + i) * ldo;
            // t = (s − max)·log2 e. (As s·log2 e − max·log2 e in one FMA, the rounding of the
            // second product is amplified past any use for scores around 1e30.)
            const __m512 vmax = _mm512_set1_ps(maxima[i]);
#define EXP_BYTES(x) _mm512_cvtps_epi32(exp2_times255(_mm512_mul_ps(_mm512_sub_ps((x), vmax), log2e)))
            // e = round_even(255·exp(s − max)), written as bytes and summed.
            __m512i sum0 = _mm512_setzero_si512(), sum1 = _mm512_setzero_si512();
            size_t c = 0;
            for (; c + 64 <= cols; c += 64) {
                const __m512i v0 = EXP_BYTES(_mm512_loadu_ps(s + c));
                const __m512i v1 = EXP_BYTES(_mm512_loadu_ps(s + c + 16));
                const __m512i v2 = EXP_BYTES(_mm512_loadu_ps(s + c + 32));
                const __m512i v3 = EXP_BYTES(_mm512_loadu_ps(s + c + 48));
                sum0 = _mm512_add_epi32(sum0, _mm512_add_epi32(v0, v1));
                sum1 = _mm512_add_epi32(sum1, _mm512_add_epi32(v2, v3));
                const __m512i bytes = _mm512_packus_epi16(_mm512_packus_epi32(v0, v1), _mm512_packus_epi32(v2, v3));
                _mm512_storeu_si512((void *)(q + c), _mm512_permutexvar_epi32(order, bytes));
            }
            for (; c < cols; c += 16) {
                const __mmask16 m = tail_mask(cols - c);
                const __m512i v = _mm512_maskz_mov_epi32(m, EXP_BYTES(_mm512_maskz_loadu_ps(m, s + c)));
                sum0 = _mm512_add_epi32(sum0, v);
                _mm512_mask_cvtepi32_storeu_epi8(q + c, m, v);
            }
#undef EXP_BYTES
            lanes[i] = _mm512_cvtepi32_ps(_mm512_add_epi32(sum0, sum1)); // each lane below 2²⁴: exact
        }
        for (size_t k = count; k < 16; k++) lanes[k] = lanes[0];
        // The maximum writes 255, so every sum is at least 255.
        _mm512_mask_storeu_ps(inv_sums + r0, tail_mask(count), _mm512_div_ps(_mm512_set1_ps(1.0f), transpose_sum16(lanes)));
    }
}
#endif
