// AVX-512 version of the folded decoder's sum (see ck_decoder_sum_quantize_u8 in ckernels_q8.h);
// chosen by ops_dispatch.c.
//
// Bit for bit the portable version as clang builds its x86-64-v4 clone (the one every AVX-512
// CPU runs): the same taps and weights (ck_bilinear_taps), each map's rows blended vertically
// as w0·r0 + wy·r1 with the second product rounded and the first fused onto it (clang contracts
// a + b of two products into fma(left factors, right product)), each pixel's channels summed map
// by map in the same order (v + (w0·a + w1·b), the inner sum contracted the same way), then
// + bias, ReLU and the u8 quantization. What changes: 64 channels at a time in zmm registers
// (the compiler's clone uses 256-bit vectors, with aliasing checks per pixel), every map count's
// sum kept in registers (the portable loop adds into the band when there are not 3 maps), and
// the quantization as integer conversion + saturating packs. The band is only read.
#include "ops_dispatch.h"

#if defined(CK_HAVE_X86_KERNELS)
#include "ck_math.h"
#include "ckernels_q8.h"
#include "vectors_avx512.h"

/// The 16 channels at k of one pixel (lanes past `m` are zero): band + Σ_i (w0_i·a_i + w1_i·b_i)
/// + bias, ReLU, ·inv_scale, as int32 lanes round_even(·) + zero_point. ReLU as max(v, 0): a NaN
/// or −0 sum gives +0, as `v > 0 ? v : 0` does. The product is capped at 2³⁰ so that the
/// conversion cannot overflow; the packs clamp it to 255 as the portable clamp does.
static inline CK_AVX512 __m512i pixel16(const float *o, size_t map_count, const float *const *a, const float *const *b,
                                        const __m512 *w0, const __m512 *w1, const float *bias, size_t k, __mmask16 m,
                                        __m512 inv, __m512i zp) {
    __m512 v = _mm512_maskz_loadu_ps(m, o + k);
    for (size_t i = 0; i < map_count; i++)
        v = _mm512_add_ps(v, _mm512_fmadd_ps(w0[i], _mm512_maskz_loadu_ps(m, a[i] + k),
                                             _mm512_mul_ps(w1[i], _mm512_maskz_loadu_ps(m, b[i] + k))));
    v = _mm512_add_ps(v, _mm512_maskz_loadu_ps(m, bias + k));
    v = _mm512_max_ps(v, _mm512_setzero_ps()); // (the second operand when either is NaN or both are zeros)
    v = _mm512_min_ps(_mm512_mul_ps(v, inv), _mm512_set1_ps(1073741824.0f));
    return _mm512_add_epi32(_mm512_cvtps_epi32(v), zp);
}

/// One output pixel's channels; map_count is a constant where the caller passes one (3: the
/// four-stage encoders), so the loop over maps unrolls.
static inline CK_AVX512 __attribute__((always_inline)) void pixel(const float *o, size_t map_count, const float *const *a,
                                                                  const float *const *b, const float *w0s, const float *w1s,
                                                                  size_t channels, const float *bias, __m512 inv, __m512i zp,
                                                                  uint8_t *q) {
    __m512 w0[CK_DECODER_MAPS_MAX], w1[CK_DECODER_MAPS_MAX];
    for (size_t i = 0; i < map_count; i++) w0[i] = _mm512_set1_ps(w0s[i]), w1[i] = _mm512_set1_ps(w1s[i]);
    size_t k = 0;
    for (; k + 64 <= channels; k += 64) {
        const __m512i r0 = pixel16(o, map_count, a, b, w0, w1, bias, k, 0xFFFF, inv, zp);
        const __m512i r1 = pixel16(o, map_count, a, b, w0, w1, bias, k + 16, 0xFFFF, inv, zp);
        const __m512i r2 = pixel16(o, map_count, a, b, w0, w1, bias, k + 32, 0xFFFF, inv, zp);
        const __m512i r3 = pixel16(o, map_count, a, b, w0, w1, bias, k + 48, 0xFFFF, inv, zp);
        // Per 128-bit block j the packs hold dwords j of r0, r1, r2, r3: put r0's first, then r1's, …
        const __m512i bytes = _mm512_packus_epi16(_mm512_packs_epi32(r0, r1), _mm512_packs_epi32(r2, r3));
        _mm512_storeu_si512(q + k, _mm512_permutexvar_epi32(
                                       _mm512_setr_epi32(0, 4, 8, 12, 1, 5, 9, 13, 2, 6, 10, 14, 3, 7, 11, 15), bytes));
    }
    for (; k < channels; k += 16) {
        const __mmask16 m = tail_mask(channels - k);
        const __m512i r = _mm512_max_epi32(pixel16(o, map_count, a, b, w0, w1, bias, k, m, inv, zp), _mm512_setzero_si512());
        const __m128i bytes = _mm512_cvtusepi32_epi8(r);
        if (m == 0xFFFF) _mm_storeu_si128((__m128i *)(q + k), bytes); // (masked stores are slow on AMD)
        else _mm_mask_storeu_epi8(q + k, m, bytes);
    }
}

CK_AVX512
void ck_decoder_sum_quantize_u8_avx512(float *band, size_t map_count, const float *const *maps, const size_t *heights,
                                       const size_t *widths, size_t channels, size_t out_height, size_t out_width,
                                       size_t first_row, size_t row_count, const float *bias, float inv_scale,
                                       int32_t zero_point, uint8_t *out, size_t ldo, float *scratch) {
    const __m512 inv = _mm512_set1_ps(inv_scale);
    const __m512i zp = _mm512_set1_epi32(zero_point);
    const size_t end_row = first_row + row_count < out_height ? first_row + row_count : out_height;
    for (size_t y = first_row; y < end_row; y++) {
        // Each map's two source rows blended vertically for this output row.
        float *blended[CK_DECODER_MAPS_MAX];
        float *next = scratch;
        for (size_t i = 0; i < map_count; i++) {
            size_t y0, y1;
            float wy;
            ck_bilinear_taps(out_height, heights[i], y, &y0, &y1, &wy);
            const float *r0 = maps[i] + y0 * widths[i] * channels, *r1 = maps[i] + y1 * widths[i] * channels;
            const __m512 v0 = _mm512_set1_ps(1.0f - wy), vy = _mm512_set1_ps(wy);
            const size_t n = widths[i] * channels;
            size_t k = 0;
            for (; k + 32 <= n; k += 32) {
                _mm512_storeu_ps(next + k, _mm512_fmadd_ps(v0, _mm512_loadu_ps(r0 + k), _mm512_mul_ps(vy, _mm512_loadu_ps(r1 + k))));
                _mm512_storeu_ps(next + k + 16, _mm512_fmadd_ps(v0, _mm512_loadu_ps(r0 + k + 16),
                                                                _mm512_mul_ps(vy, _mm512_loadu_ps(r1 + k + 16))));
            }
            for (; k < n; k += 16) {
                const __mmask16 m = tail_mask(n - k);
                _mm512_mask_storeu_ps(next + k, m, _mm512_fmadd_ps(v0, _mm512_maskz_loadu_ps(m, r0 + k),
                                                                   _mm512_mul_ps(vy, _mm512_maskz_loadu_ps(m, r1 + k))));
            }
            blended[i] = next;
            next += n;
        }
        for (size_t x = 0; x < out_width; x++) {
            const float *o = band + ((y - first_row) * out_width + x) * channels;
            const float *a[CK_DECODER_MAPS_MAX], *b[CK_DECODER_MAPS_MAX];
            float w0[CK_DECODER_MAPS_MAX], w1[CK_DECODER_MAPS_MAX];
            ck_decoder_column_taps(map_count, blended, widths, channels, out_width, x, a, b, w0, w1);
            uint8_t *q = out + (y * out_width + x) * ldo;
            if (map_count == 3) pixel(o, 3, a, b, w0, w1, channels, bias, inv, zp, q);
            else pixel(o, map_count, a, b, w0, w1, channels, bias, inv, zp, q);
        }
    }
}
#endif
