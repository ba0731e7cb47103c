#ifndef CKERNELS_VECTORS_AVX512_H
#define CKERNELS_VECTORS_AVX512_H
// Helpers shared by the AVX-512 (F, BW, VL, DQ) versions of the operations
// (<operation>_<type>_avx512.c): tail masks, 16-row transposing reductions, and the u8
// quantization of 16 lanes. Include only on x86 (CK_HAVE_X86_KERNELS).
#include <immintrin.h>
#include <stddef.h>
#include <stdint.h>

#define CK_AVX512 __attribute__((target("avx512f,avx512bw,avx512vl,avx512dq,fma")))

static inline CK_AVX512 __mmask16 tail_mask(size_t n) { return n >= 16 ? (__mmask16)0xFFFF : (__mmask16)((1u << n) - 1); }

/// Lane r of the result is OP over the 16 lanes of v[r] (OP an _mm512 add or max): a transposing
/// tree, 15 OPs and 30 shuffles for 16 rows instead of a chain of shuffles per row.
#define TRANSPOSE_REDUCE16(name, OP)                                                                                    \
    static inline CK_AVX512 __m512 name(const __m512 v[16]) {                                                           \
        __m512 pairs[8], quads[4], halves[2];                                                                           \
        for (int i = 0; i < 8; i++) /* per 128-bit block: (a0∘a2, b0∘b2, a1∘a3, b1∘b3) */                              \
            pairs[i] = OP(_mm512_unpacklo_ps(v[2 * i], v[2 * i + 1]), _mm512_unpackhi_ps(v[2 * i], v[2 * i + 1]));      \
        for (int i = 0; i < 4; i++) { /* per 128-bit block: rows 4i…4i+3, one partial each */                          \
            const __m512d a = _mm512_castps_pd(pairs[2 * i]), b = _mm512_castps_pd(pairs[2 * i + 1]);                   \
            quads[i] = OP(_mm512_castpd_ps(_mm512_unpacklo_pd(a, b)), _mm512_castpd_ps(_mm512_unpackhi_pd(a, b)));      \
        }                                                                                                               \
        for (int i = 0; i < 2; i++) /* blocks: (q0 0∘1, q0 2∘3, q1 0∘1, q1 2∘3) */                                     \
            halves[i] = OP(_mm512_shuffle_f32x4(quads[2 * i], quads[2 * i + 1], _MM_SHUFFLE(2, 0, 2, 0)),               \
                           _mm512_shuffle_f32x4(quads[2 * i], quads[2 * i + 1], _MM_SHUFFLE(3, 1, 3, 1)));              \
        return OP(_mm512_shuffle_f32x4(halves[0], halves[1], _MM_SHUFFLE(2, 0, 2, 0)),                                  \
                  _mm512_shuffle_f32x4(halves[0], halves[1], _MM_SHUFFLE(3, 1, 3, 1)));                                 \
    }
TRANSPOSE_REDUCE16(transpose_sum16, _mm512_add_ps)
TRANSPOSE_REDUCE16(transpose_max16, _mm512_max_ps)
#undef TRANSPOSE_REDUCE16

/// clamp(round_even(v) + zp, 0, 255) as bytes in the low 16 of 64: v·inv is formed by
/// the caller. The int conversion rounds half-even (MXCSR default); above 255 the
/// saturating vpmovusdb clamps. v is first held below 256: from 2³¹ on the conversion
/// gives INT_MIN, which came out as byte 0 where the portable versions write 255 (the
/// harness's GELU check found it with a bias of 1e30).
static inline CK_AVX512 __m128i quantize_scaled_u8(__m512 v, __m512i zp) {
    __m512i q = _mm512_add_epi32(_mm512_cvtps_epi32(_mm512_min_ps(v, _mm512_set1_ps(256.0f))), zp);
    q = _mm512_max_epi32(q, _mm512_setzero_si512());
    return _mm512_cvtusepi32_epi8(q);
}


#endif
