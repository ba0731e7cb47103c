// AVX-512 versions of LayerNorm, into floats and into quantized bytes (see ck_layer_norm_f32
// and ck_layer_norm_quantize_u8); chosen by ops_dispatch.c.
#include "ops_dispatch.h"

#if defined(CK_HAVE_X86_KERNELS)
#include "vectors_avx512.h"

// ---- LayerNorm over rows of `channels` floats, 16 rows at a time.
//
// Per row the work is two sums and one pass of arithmetic; with 32 to 256 channels a
// row is 2 to 16 vectors, and reducing each row's sum across lanes on its own (a
// chain of shuffles per row, twice) cost more than the arithmetic. Here each of 16
// rows is first summed lane-wise, then one transposing tree turns the 16 partial
// vectors into one vector of 16 row sums. Sums run in float, two-pass (mean first,
// then Σ(x − mean)²), which is within a few ulp of the portable version's double sums;
// the bytes written differ from it by one at most, at rounding boundaries.

/// Means and 1/√(variance + eps) of `count` (1…16) rows of `channels` floats (row stride ld).
static inline CK_AVX512 void layer_norm_stats16(const float *in, size_t ld, size_t count, size_t channels, float eps,
                                                float mean[16], float inv[16]) {
    const __mmask16 tail = tail_mask(channels % 16 ? channels % 16 : 16);
    const size_t full = (channels - 1) / 16; // whole vectors before the last (possibly partial) one
    // The first sum is of x − x₀ (x₀ the row's first value): rows far from zero, as
    // residual streams can be, then lose nothing to float rounding of a large sum.
    __m512 partial[16];
    float first[16];
    for (size_t r = 0; r < 16; r++) {
        const float *x = in + (r < count ? r : count - 1) * ld;
        first[r] = x[0];
        const __m512 x0 = _mm512_set1_ps(x[0]);
        __m512 a = _mm512_maskz_sub_ps(tail, _mm512_maskz_loadu_ps(tail, x + full * 16), x0), b = _mm512_setzero_ps();
        size_t k = 0;
        for (; k + 2 <= full; k += 2) {
            a = _mm512_add_ps(a, _mm512_sub_ps(_mm512_loadu_ps(x + k * 16), x0));
            b = _mm512_add_ps(b, _mm512_sub_ps(_mm512_loadu_ps(x + k * 16 + 16), x0));
        }
        if (k < full) a = _mm512_add_ps(a, _mm512_sub_ps(_mm512_loadu_ps(x + k * 16), x0));
        partial[r] = _mm512_add_ps(a, b);
    }
    const __m512 n = _mm512_set1_ps((float)channels);
    _mm512_storeu_ps(mean, _mm512_add_ps(_mm512_loadu_ps(first), _mm512_div_ps(transpose_sum16(partial), n)));
    for (size_t r = 0; r < 16; r++) {
        const float *x = in + (r < count ? r : count - 1) * ld;
        const __m512 m = _mm512_set1_ps(mean[r]);
        const __m512 last = _mm512_maskz_sub_ps(tail, _mm512_maskz_loadu_ps(tail, x + full * 16), m);
        __m512 a = _mm512_mul_ps(last, last), b = _mm512_setzero_ps();
        size_t k = 0;
        for (; k + 2 <= full; k += 2) {
            const __m512 d0 = _mm512_sub_ps(_mm512_loadu_ps(x + k * 16), m), d1 = _mm512_sub_ps(_mm512_loadu_ps(x + k * 16 + 16), m);
            a = _mm512_fmadd_ps(d0, d0, a);
            b = _mm512_fmadd_ps(d1, d1, b);
        }
        if (k < full) {
            const __m512 d = _mm512_sub_ps(_mm512_loadu_ps(x + k * 16), m);
            a = _mm512_fmadd_ps(d, d, a);
        }
        partial[r] = _mm512_add_ps(a, b);
    }
    const __m512 variance = _mm512_div_ps(transpose_sum16(partial), n);
    _mm512_storeu_ps(inv, _mm512_div_ps(_mm512_set1_ps(1.0f), _mm512_sqrt_ps(_mm512_add_ps(variance, _mm512_set1_ps(eps)))));
}

/// LayerNorm of `rows` rows into floats (`out_q` NULL) or quantized bytes (rows ldo apart in out_q).
static inline CK_AVX512 __attribute__((always_inline)) void
layer_norm_rows(const float *in, float *out_f, uint8_t *out_q, size_t ldo, size_t rows, size_t channels, const float *gamma,
                const float *beta, float eps, float inv_scale, int32_t zero_point) {
    const __m512 scale = _mm512_set1_ps(inv_scale);
    const __m512i zp = _mm512_set1_epi32(zero_point);
    float mean[16], inv[16];
    for (size_t r0 = 0; r0 < rows; r0 += 16) {
        const size_t count = rows - r0 < 16 ? rows - r0 : 16;
        layer_norm_stats16(in + r0 * channels, channels, count, channels, eps, mean, inv);
        for (size_t r = 0; r < count; r++) {
            const float *x = in + (r0 + r) * channels;
            const __m512 m = _mm512_set1_ps(mean[r]), s = _mm512_set1_ps(inv[r]);
            // Whole vectors with plain loads and stores (AMD cores run masked stores much slower), then the tail.
            size_t c = 0;
            for (; c + 16 <= channels; c += 16) {
                const __m512 y = _mm512_fmadd_ps(_mm512_mul_ps(_mm512_sub_ps(_mm512_loadu_ps(x + c), m), s),
                                                 _mm512_loadu_ps(gamma + c), _mm512_loadu_ps(beta + c));
                if (out_q) _mm_storeu_si128((__m128i *)(out_q + (r0 + r) * ldo + c), quantize_scaled_u8(_mm512_mul_ps(y, scale), zp));
                else _mm512_storeu_ps(out_f + (r0 + r) * channels + c, y);
            }
            if (c < channels) {
                const __mmask16 k = tail_mask(channels - c);
                const __m512 y = _mm512_fmadd_ps(_mm512_mul_ps(_mm512_sub_ps(_mm512_maskz_loadu_ps(k, x + c), m), s),
                                                 _mm512_maskz_loadu_ps(k, gamma + c), _mm512_maskz_loadu_ps(k, beta + c));
                if (out_q) _mm_mask_storeu_epi8(out_q + (r0 + r) * ldo + c, k, quantize_scaled_u8(_mm512_mul_ps(y, scale), zp));
                else _mm512_mask_storeu_ps(out_f + (r0 + r) * channels + c, k, y);
            }
        }
    }
}

CK_AVX512
void ck_layer_norm_quantize_u8_avx512(const float *in, uint8_t *out, size_t ldo, size_t rows, size_t channels,
                                      const float *gamma, const float *beta, float eps, float inv_scale, int32_t zero_point) {
    layer_norm_rows(in, NULL, out, ldo, rows, channels, gamma, beta, eps, inv_scale, zero_point);
}

CK_AVX512
void ck_layer_norm_f32_avx512(const float *in, float *out, size_t rows, size_t channels, const float *gamma, const float *beta,
                              float eps) {
    layer_norm_rows(in, out, NULL, 0, rows, channels, gamma, beta, eps, 1.0f, 0);
}

#endif
