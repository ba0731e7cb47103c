// AVX-512 version of the attention output's per-head division by the softmax sums, and its
// quantization (see ck_scale_heads_quantize_u8 in ckernels_attention_q8.h); chosen by ops_dispatch.c.
#include "ops_dispatch.h"

#if defined(CK_HAVE_X86_KERNELS)
#include "vectors_avx512.h"

// The same steps as ck_scale_heads_quantize_u8's portable version: (x·f)·inv_scale rounded half
// to even, + zero point, clamped to a byte (values past 2³⁰ clamp to 255 there as here).
CK_AVX512
void ck_scale_heads_quantize_u8_avx512(const float *in, size_t ldi, size_t rows, size_t heads, size_t head_dim,
                                       const float *factors, uint8_t *out, size_t ldo, float inv_scale, int32_t zero_point) {
    const __m512 inv = _mm512_set1_ps(inv_scale), big = _mm512_set1_ps(1073741824.0f);
    const __m512i zp = _mm512_set1_epi32(zero_point);
    for (size_t r = 0; r < rows; r++)
        for (size_t h = 0; h < heads; h++) {
            const float *x = in + r * ldi + h * head_dim;
            uint8_t *q = out + r * ldo + h * head_dim;
            const __m512 f = _mm512_set1_ps(factors[h * rows + r]);
            for (size_t c = 0; c < head_dim; c += 16) {
                const __mmask16 m = tail_mask(head_dim - c);
                const __m512 v = _mm512_min_ps(_mm512_mul_ps(_mm512_mul_ps(_mm512_maskz_loadu_ps(m, x + c), f), inv), big);
                const __m128i b = quantize_scaled_u8(v, zp);
                if (m == 0xFFFF) _mm_storeu_si128((__m128i *)(q + c), b);
                else _mm_mask_storeu_epi8(q + c, m, b);
            }
        }
}
#endif
