// AVX2 + FMA version of the attention softmax's exponentials (see ck_softmax_exp_u8 in
// ckernels_attention_q8.h); chosen by ops_dispatch.c on CPUs without AVX-512.
#include "ops_dispatch.h"

#if defined(CK_HAVE_X86_KERNELS)
#include <immintrin.h>
#include <math.h>
#include <string.h>

#define CK_AVX2 __attribute__((target("avx2,fma")))

/// e^x for x ≤ 0, the same steps as attention_expf in attention_q8.c.
static inline CK_AVX2 __m256 exp_nonpositive(__m256 x) {
    x = _mm256_max_ps(x, _mm256_set1_ps(-87.0f));
    const __m256 n = _mm256_round_ps(_mm256_mul_ps(x, _mm256_set1_ps(1.44269504088896341f)),
                                     _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
    __m256 r = _mm256_fnmadd_ps(n, _mm256_set1_ps(0.693145751953125f), x);
    r = _mm256_fnmadd_ps(n, _mm256_set1_ps(1.428606765330187045e-06f), r);
    __m256 p = _mm256_set1_ps(1.0f / 720.0f);
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.0f / 120.0f));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.0f / 24.0f));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.0f / 6.0f));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(0.5f));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.0f));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.0f));
    const __m256i e = _mm256_slli_epi32(_mm256_add_epi32(_mm256_cvtps_epi32(n), _mm256_set1_epi32(127)), 23);
    return _mm256_mul_ps(p, _mm256_castsi256_ps(e));
}

/// 8 scores → 8 bytes round_even(255·exp(s − max)) in the low half of the result's
/// low 64 bits; adds the values to *sum.
static inline CK_AVX2 __m128i exp8(__m256 s, __m256 vmax, __m256i *sum) {
    const __m256i v = _mm256_cvtps_epi32(_mm256_mul_ps(exp_nonpositive(_mm256_sub_ps(s, vmax)), _mm256_set1_ps(255.0f)));
    *sum = _mm256_add_epi32(*sum, v);
    const __m128i w = _mm_packus_epi32(_mm256_castsi256_si128(v), _mm256_extracti128_si256(v, 1)); // 0..255: exact
    return _mm_packus_epi16(w, w);
}

CK_AVX2
void ck_softmax_exp_u8_avx2(const float *scores, size_t lds, size_t rows, size_t cols, uint8_t *out, size_t ldo,
                            float *inv_sums) {
    const __m256 ninf = _mm256_set1_ps(-INFINITY);
    for (size_t r = 0; r < rows; r++) {
        const float *s = scores + r * lds;
        uint8_t *q = out + r * ldo;
        const size_t full = cols & ~(size_t)7;
        // The tail, padded with −∞: it never raises the max, and its exponentials round to 0.
        float tail[8];
        for (int k = 0; k < 8; k++) tail[k] = -INFINITY;
        memcpy(tail, s + full, (cols - full) * sizeof(float));
        __m256 m0 = _mm256_loadu_ps(tail), m1 = ninf, m2 = ninf, m3 = ninf;
        size_t c = 0;
        for (; c + 32 <= full; c += 32) {
            m0 = _mm256_max_ps(m0, _mm256_loadu_ps(s + c));
            m1 = _mm256_max_ps(m1, _mm256_loadu_ps(s + c + 8));
            m2 = _mm256_max_ps(m2, _mm256_loadu_ps(s + c + 16));
            m3 = _mm256_max_ps(m3, _mm256_loadu_ps(s + c + 24));
        }
        for (; c < full; c += 8) m0 = _mm256_max_ps(m0, _mm256_loadu_ps(s + c));
        __m256 m = _mm256_max_ps(_mm256_max_ps(m0, m1), _mm256_max_ps(m2, m3));
        __m128 h = _mm_max_ps(_mm256_castps256_ps128(m), _mm256_extractf128_ps(m, 1));
        h = _mm_max_ps(h, _mm_movehl_ps(h, h));
        h = _mm_max_ss(h, _mm_shuffle_ps(h, h, 1));
        const __m256 vmax = _mm256_set1_ps(_mm_cvtss_f32(h));
        __m256i sum = _mm256_setzero_si256();
        for (c = 0; c < full; c += 8) _mm_storel_epi64((__m128i *)(q + c), exp8(_mm256_loadu_ps(s + c), vmax, &sum));
        if (full < cols) {
            uint8_t bytes[16];
            _mm_storeu_si128((__m128i *)bytes, exp8(_mm256_loadu_ps(tail), vmax, &sum));
            memcpy(q + full, bytes, cols - full);
        }
        __m128i t = _mm_add_epi32(_mm256_castsi256_si128(sum), _mm256_extracti128_si256(sum, 1));
        t = _mm_add_epi32(t, _mm_shuffle_epi32(t, 0x4E));
        t = _mm_add_epi32(t, _mm_shuffle_epi32(t, 0xB1));
        inv_sums[r] = 1.0f / (float)_mm_cvtsi128_si32(t);
    }
}

#endif
